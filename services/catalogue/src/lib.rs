//! Catalogue: the providers (directorates of the Département, associated organisations) and the offers they
//! deliver to member collectivités, with their eligibility and price rules, French full-text search with
//! facets, exhibition loans (copies held for a date range, never lent twice), and the dated sessions of
//! awareness and training offers with their registrations (seats never over-booked, a waiting list;
//! [`grpc::SessionApi`]). Loaded from a seed at start-up and edited by the operator (draft → published → archived, versions); every version that becomes the
//! published one is announced with `OfferPublished` so that routing and billing keep their read models without
//! calling back.
//!
//! `run` starts the whole service on a bound listener, so tests start it in-process.

pub mod access;
pub mod booking;
pub mod demo_sessions;
pub mod documents;
pub mod domain;
pub mod error;
pub mod events;
pub mod flow;
pub mod grpc;
pub mod proto_map;
pub mod proto_map_sessions;
pub mod search;
pub mod seed;
pub mod session_docs;
pub mod session_store;
pub mod store;
pub mod timers;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use id77_platform::{PlatformConfig, ServiceContext, streams};
use id77_proto::catalogue::v1::catalogue_service_server::CatalogueServiceServer;
use id77_proto::catalogue::v1::session_service_server::SessionServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Default gRPC port.
pub const PORT: u16 = 7052;

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
    /// `ID77_CATALOGUE_SEED`: a seed file to load instead of the embedded `seed/catalogue.json`.
    pub seed_path: Option<PathBuf>,
    /// `ID77_SESSION_TIMER_MS`: how often due session reminders are looked for.
    pub session_timer: Duration,
    /// `ID77_DEMO_SESSIONS=1`: at start, schedule demo sessions if there is none yet.
    pub demo_sessions: bool,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            platform: PlatformConfig::from_env("catalogue", PORT)?,
            seed_path: std::env::var_os("ID77_CATALOGUE_SEED").filter(|p| !p.is_empty()).map(PathBuf::from),
            session_timer: timers::interval_from(std::env::var("ID77_SESSION_TIMER_MS").ok().as_deref())?,
            demo_sessions: std::env::var("ID77_DEMO_SESSIONS").is_ok_and(|v| v.trim() == "1"),
        })
    }

    /// Defaults for everything but the platform (tests).
    pub fn new(platform: PlatformConfig) -> Self {
        Self { platform, seed_path: None, session_timer: timers::DEFAULT_INTERVAL, demo_sessions: false }
    }
}

/// Runs the service until `shutdown` is cancelled. Fails at start-up if the seed is invalid.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Validate the seed before touching anything, so that a bad seed fails fast and clearly.
    let catalogue = seed::read(config.seed_path.as_deref()).await?;
    let ctx = ServiceContext::start(config.platform, &MIGRATOR, &[streams::CATALOGUE], shutdown).await?;
    let loaded = flow::seed::load(&ctx.pool, &catalogue).await?;
    tracing::info!(
        providers = catalogue.providers.len(),
        offers = catalogue.offers.len(),
        providers_written = loaded.providers_written,
        offers_created = loaded.offers_created,
        offers_updated = loaded.offers_updated,
        "catalogue seed loaded"
    );
    if config.demo_sessions {
        let scheduled = demo_sessions::schedule(&ctx.pool, id77_platform::time::now()).await?;
        tracing::info!(scheduled, "demo sessions");
    }
    ctx.spawn_outbox_relay();
    ctx.spawn(timers::run(ctx.pool.clone(), config.session_timer, ctx.shutdown.clone()));
    // Revoked sessions and users (membership's `access.revoked`): `ctx.auth` refuses their tokens.
    ctx.spawn(id77_platform::revocation::follow(
        ctx.js.clone(),
        ctx.ns.clone(),
        ctx.auth.revocations().clone(),
        ctx.shutdown.clone(),
    ));
    let catalogue = grpc::CatalogueApi::new(ctx.pool.clone());
    ctx.spawn_consumer(events::members_spec(), Arc::new(events::MemberEvents::new(catalogue.member_profiles())));
    ctx.spawn_consumer(events::referrals_spec(), Arc::new(events::ReferralEvents));
    let api = CatalogueServiceServer::new(catalogue).max_decoding_message_size(id77_platform::grpc::MAX_MESSAGE_BYTES);
    let sessions = SessionServiceServer::new(grpc::SessionApi::new(ctx.pool.clone()))
        .max_decoding_message_size(id77_platform::grpc::MAX_MESSAGE_BYTES);
    let routes = Routes::new(api).add_service(sessions);
    let names = [CatalogueServiceServer::<grpc::CatalogueApi>::NAME, SessionServiceServer::<grpc::SessionApi>::NAME];
    ctx.serve(listener, routes, &names).await
}
