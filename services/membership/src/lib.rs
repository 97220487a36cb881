//! Membership: the directory of collectivités of one département, and which of them joined ID 77.
//!
//! `run` starts the whole service on a bound listener, so tests start it in-process.

pub mod directory;
pub mod domain;
pub mod grpc;
pub mod store;

use std::path::PathBuf;

use id77_platform::config::env_or;
use id77_platform::{PlatformConfig, ServiceContext, streams};
use id77_proto::membership::v1::membership_service_server::MembershipServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Default gRPC port.
pub const PORT: u16 = 50051;

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
    /// `ID77_DIRECTORY_DIR`: folder with `communes.json` and `epci.json` of `@etalab/decoupage-administratif`.
    /// Imported at start-up when set.
    pub directory_dir: Option<PathBuf>,
    /// `ID77_DEPARTEMENT`: the département whose collectivités make the directory (default 77).
    pub departement: String,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            platform: PlatformConfig::from_env("membership", PORT)?,
            directory_dir: std::env::var_os("ID77_DIRECTORY_DIR").filter(|d| !d.is_empty()).map(PathBuf::from),
            departement: env_or("ID77_DEPARTEMENT", "77"),
        })
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let ctx = ServiceContext::start(config.platform, &MIGRATOR, &[streams::MEMBERSHIP], shutdown).await?;
    if let Some(dir) = &config.directory_dir {
        let imported = directory::import_from_dir(&ctx.pool, dir, &config.departement).await?;
        tracing::info!(departement = %config.departement, communes = imported.communes, epci = imported.epci, "directory imported");
    }
    ctx.spawn_outbox_relay();
    let api = MembershipServiceServer::new(grpc::MembershipApi::new(ctx.pool.clone()))
        .max_decoding_message_size(id77_platform::grpc::MAX_MESSAGE_BYTES);
    let routes = Routes::new(api);
    ctx.serve(listener, routes, &[MembershipServiceServer::<grpc::MembershipApi>::NAME]).await
}
