use clap::Parser;
use id77_referral_consumer::cli::{Cli, Plan};
use id77_referral_consumer::forward::{Forwarder, Printer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    id77_platform::telemetry::init("referral-consumer");
    let (config, plan) = Cli::parse().into_plan()?;
    let shutdown = id77_platform::shutdown::on_signal();
    match plan {
        Plan::Rules(rule) => id77_referral_consumer::run(config, rule, shutdown).await?,
        Plan::Print => id77_referral_consumer::run(config, Printer, shutdown).await?,
        Plan::Forward { url, hmac_key_file } => {
            let key = Forwarder::read_key(&hmac_key_file)?;
            let forwarder = Forwarder::new(&url, key, shutdown.clone())?;
            id77_referral_consumer::run(config, forwarder, shutdown).await?
        }
    };
    // Sends the spans still buffered for the OTLP collector.
    id77_platform::telemetry::shutdown().await;
    Ok(())
}
