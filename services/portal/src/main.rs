use id77_portal::{Config, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    id77_platform::telemetry::init("portal");
    let config = Config::from_env()?;
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let result = run(config, listener, id77_platform::shutdown::on_signal()).await;
    // Sends the spans still buffered for the OTLP collector.
    id77_platform::telemetry::shutdown().await;
    result
}
