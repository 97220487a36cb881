//! Routing: hands each submitted request to one provider (a referral) chosen by the coordinator's ordered
//! rules, on the provider's own NATS subject; applies the provider's reply once; re-routes after a decline or
//! an expiry; reminds, escalates and expires by durable SLA timers. ADR 0013: a cancelled request's referral is
//! withdrawn whatever its status (requests decides a request's fate); the work on a billed offer waits for the
//! member's agreement to its quote (billing's `quote.accepted`); every event names who did it.
//!
//! `run` starts the whole service on a bound listener, so tests start it in-process.

pub mod access;
pub mod clock;
pub mod domain;
pub mod error;
pub mod events;
pub mod flow;
pub mod grpc;
pub mod store;
pub mod store_names;
pub mod store_rules;
pub mod store_submissions;
pub mod timers;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use id77_platform::{PlatformConfig, ServiceContext, streams};
use id77_proto::routing::v1::routing_service_server::RoutingServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::clock::{Clock, FileOffsetClock, SystemClock};
use crate::flow::{Lifecycle, Sla};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Default gRPC port.
pub const PORT: u16 = 7054;

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
    /// The time routing lives by (tests pass a clock they advance).
    pub clock: Arc<dyn Clock>,
    pub sla: Sla,
    /// How often the SLA timers are scanned.
    pub timer_interval: Duration,
    /// Lanes of the submitted requests' consumer ([`events::REQUEST_LANES`] unless set).
    pub request_lanes: usize,
}

fn env_u32(name: &str, default: u32) -> anyhow::Result<u32> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().with_context(|| format!("{name} must be a number")),
        _ => Ok(default),
    }
}

impl Config {
    /// A configuration with the system clock and the default SLA.
    pub fn new(platform: PlatformConfig) -> Self {
        Self {
            platform,
            clock: Arc::new(SystemClock),
            sla: Sla::default(),
            timer_interval: Duration::from_secs(1),
            request_lanes: events::REQUEST_LANES,
        }
    }

    /// Reads `ID77_ROUTING_SLA_DAYS`, `ID77_ROUTING_REMIND_DAYS`, `ID77_ROUTING_GRACE_DAYS` (business days),
    /// `ID77_ROUTING_TIMER_INTERVAL_MS`, `ID77_ROUTING_REQUEST_LANES` (1 to 64), and (test only)
    /// `ID77_TEST_CLOCK_FILE`.
    pub fn from_env() -> anyhow::Result<Self> {
        let mut config = Self::new(PlatformConfig::from_env("routing", PORT)?);
        let defaults = Sla::default();
        config.sla = Sla {
            default_business_days: env_u32("ID77_ROUTING_SLA_DAYS", defaults.default_business_days)?.clamp(1, 60),
            remind_business_days: env_u32("ID77_ROUTING_REMIND_DAYS", defaults.remind_business_days)?.min(60),
            grace_business_days: env_u32("ID77_ROUTING_GRACE_DAYS", defaults.grace_business_days)?.min(60),
        };
        config.timer_interval =
            Duration::from_millis(u64::from(env_u32("ID77_ROUTING_TIMER_INTERVAL_MS", 1000)?.clamp(10, 60_000)));
        let lanes = env_u32("ID77_ROUTING_REQUEST_LANES", events::REQUEST_LANES as u32)?.clamp(1, 64);
        config.request_lanes = usize::try_from(lanes).unwrap_or(events::REQUEST_LANES);
        if let Some(path) = std::env::var_os("ID77_TEST_CLOCK_FILE").filter(|p| !p.is_empty()) {
            tracing::warn!(path = %std::path::Path::new(&path).display(), "TEST CLOCK: time is offset by a file");
            config.clock = Arc::new(FileOffsetClock::new(path));
        }
        Ok(config)
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let ctx =
        ServiceContext::start(config.platform, &MIGRATOR, &[streams::ROUTING, streams::REFERRALS], shutdown).await?;
    let lifecycle = Lifecycle { clock: config.clock, sla: config.sla };
    ctx.spawn_outbox_relay();
    // Revoked sessions and users (membership's `access.revoked`): `ctx.auth` refuses their tokens.
    ctx.spawn(id77_platform::revocation::follow(
        ctx.js.clone(),
        ctx.ns.clone(),
        ctx.auth.revocations().clone(),
        ctx.shutdown.clone(),
    ));
    ctx.spawn_consumer(events::offers_spec(), Arc::new(events::OfferHandler));
    ctx.spawn_consumer(events::members_spec(), Arc::new(events::MemberHandler));
    ctx.spawn_consumer(
        events::requests_spec().with_lanes(config.request_lanes),
        Arc::new(events::RequestHandler(lifecycle.clone())),
    );
    ctx.spawn_consumer(events::cancellations_spec(), Arc::new(events::CancelHandler(lifecycle.clone())));
    ctx.spawn_consumer(events::replies_spec(), Arc::new(events::ReplyHandler(lifecycle.clone())));
    ctx.spawn_consumer(events::quotes_spec(), Arc::new(events::QuoteHandler(lifecycle.clone())));
    ctx.spawn(timers::run(ctx.pool.clone(), lifecycle.clone(), config.timer_interval, ctx.shutdown.clone()));
    let api = RoutingServiceServer::new(grpc::RoutingApi::new(ctx.pool.clone(), lifecycle))
        .max_decoding_message_size(id77_platform::grpc::MAX_MESSAGE_BYTES);
    let routes = Routes::new(api);
    ctx.serve(listener, routes, &[RoutingServiceServer::<grpc::RoutingApi>::NAME]).await
}
