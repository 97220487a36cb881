//! Routing: hands each submitted request to one provider (a referral), on the provider's own NATS subject, and
//! applies the provider's reply (accept or decline) once.
//!
//! `run` starts the whole service on a bound listener, so tests start it in-process.

pub mod access;
pub mod domain;
pub mod events;
pub mod grpc;
pub mod store;

use std::sync::Arc;

use id77_platform::{PlatformConfig, ServiceContext, streams};
use id77_proto::routing::v1::routing_service_server::RoutingServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Default gRPC port.
pub const PORT: u16 = 50054;

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self { platform: PlatformConfig::from_env("routing", PORT)? })
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let ctx =
        ServiceContext::start(config.platform, &MIGRATOR, &[streams::ROUTING, streams::REFERRALS], shutdown).await?;
    ctx.spawn_outbox_relay();
    ctx.spawn_consumer(events::offers_spec(), Arc::new(events::OfferHandler));
    ctx.spawn_consumer(events::requests_spec(), Arc::new(events::RequestHandler));
    ctx.spawn_consumer(events::replies_spec(), Arc::new(events::ReplyHandler));
    let api = RoutingServiceServer::new(grpc::RoutingApi::new(ctx.pool.clone(), ctx.auth.clone()))
        .max_decoding_message_size(id77_platform::grpc::MAX_MESSAGE_BYTES);
    let routes = Routes::new(api);
    ctx.serve(listener, routes, &[RoutingServiceServer::<grpc::RoutingApi>::NAME]).await
}
