//! Billing: keeps the catalogue's tariffs (price rule and VAT) and the members' SIREN and population; issues a
//! quote when a provider accepts a referral for a billed offer and an invoice when it completes it, a credit
//! note when the coordinator cancels an invoice, each with a gapless number per issuer and year; exports
//! invoices as Factur-X / CII XML (EN 16931) and CSV. Quotes are read only by whom `access` allows, from the
//! caller's verified token; who follows which member comes from membership's `member.updated` events.
//!
//! `run` starts the whole service on a bound listener, so tests start it in-process.

pub mod access;
pub mod domain;
pub mod events;
pub mod export;
pub mod grpc;
pub mod invoices;
pub mod quotes;
pub mod store;

use std::sync::Arc;

use id77_platform::{PlatformConfig, ServiceContext, streams};
use id77_proto::billing::v1::billing_service_server::BillingServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Default gRPC port.
pub const PORT: u16 = 7055;

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self { platform: PlatformConfig::from_env("billing", PORT)? })
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let ctx = ServiceContext::start(config.platform, &MIGRATOR, &[streams::BILLING], shutdown).await?;
    ctx.spawn_outbox_relay();
    ctx.spawn_consumer(events::offers_consumer(), Arc::new(events::OfferHandler));
    ctx.spawn_consumer(events::referrals_consumer(), Arc::new(events::ReferralAcceptedHandler));
    ctx.spawn_consumer(events::members_consumer(), Arc::new(events::MemberHandler));
    ctx.spawn_consumer(events::completions_consumer(), Arc::new(events::ReferralCompletedHandler));
    let api = BillingServiceServer::new(grpc::BillingApi::new(ctx.pool.clone(), ctx.auth.clone()))
        .max_decoding_message_size(id77_platform::grpc::MAX_MESSAGE_BYTES);
    let routes = Routes::new(api);
    ctx.serve(listener, routes, &[BillingServiceServer::<grpc::BillingApi>::NAME]).await
}
