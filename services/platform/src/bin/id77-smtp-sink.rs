//! A local SMTP sink for `make run`: accepts every mail on `ID77_SMTP_SINK_ADDR` (default 127.0.0.1:2525) and
//! writes each one to `ID77_SMTP_SINK_DIR` (default `.cache/mail`) as `<n>.eml`, logging recipient and subject.
//! Never a relay: nothing leaves the machine. Stops on Ctrl-C / SIGTERM.

use anyhow::Context;
use id77_platform::config::env_or;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(env_or("ID77_LOG", "info")).init();
    let addr = env_or("ID77_SMTP_SINK_ADDR", "127.0.0.1:2525").parse().context("ID77_SMTP_SINK_ADDR")?;
    let dir = std::path::PathBuf::from(env_or("ID77_SMTP_SINK_DIR", ".cache/mail"));
    let sink = id77_platform::testing::SmtpSink::start_on(addr, Some(dir.clone())).await?;
    tracing::info!(url = %sink.url(), dir = %dir.display(), "SMTP sink listening; mails are written there");
    id77_platform::shutdown::on_signal().cancelled().await;
    Ok(())
}
