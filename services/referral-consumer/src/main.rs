use std::sync::{Arc, OnceLock};

use clap::Parser;
use id77_referral_consumer::ReferralConsumer;
use id77_referral_consumer::cli::{Cli, Plan};
use id77_referral_consumer::forward::{Forwarder, Printer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    id77_bus::telemetry::init("referral-consumer");
    let cli = Cli::parse();
    let health_addr = cli.health_addr;
    let (config, plan) = cli.into_plan()?;
    let shutdown = id77_bus::shutdown::on_signal();
    // Probes: /livez answers while the process runs; /readyz while the NATS connection is up (not before it
    // is made, not while the client reconnects).
    let nats = Arc::new(OnceLock::<async_nats::Client>::new());
    if let Some(addr) = health_addr {
        let nats = nats.clone();
        let ready =
            move || nats.get().is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected);
        id77_bus::probe::serve(addr, ready, shutdown.clone()).await?;
    }
    let consumer = ReferralConsumer::connect(config).await?;
    let _ = nats.set(consumer.client());
    let result = match plan {
        Plan::Rules(rule) => consumer.run(&rule, shutdown).await,
        Plan::Print => consumer.run(&Printer, shutdown).await,
        Plan::Forward { url, hmac_key_file, options } => {
            let key = Forwarder::read_key(&hmac_key_file)?;
            let forwarder = Forwarder::with_options(&url, key, &options, shutdown.clone())?;
            consumer.run(&forwarder, shutdown).await
        }
    };
    consumer.close().await;
    result?;
    // Sends the spans still buffered for the OTLP collector.
    id77_bus::telemetry::shutdown().await;
    Ok(())
}
