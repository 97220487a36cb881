use clap::Parser;
use id77_referral_consumer::cli::Cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    id77_platform::telemetry::init("referral-consumer");
    let (config, rule) = Cli::parse().into_parts()?;
    id77_referral_consumer::run(config, rule, id77_platform::shutdown::on_signal()).await?;
    Ok(())
}
