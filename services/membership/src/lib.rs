//! Membership: the directory of collectivités of one département, and which of them joined ID 77.
//!
//! `run` starts the whole service on a bound listener, so tests start it in-process.

pub mod directory;
pub mod domain;
pub mod error;
pub mod flow;
pub mod grpc;
pub mod identity;
pub mod mail;
pub mod mapping;
pub mod store;

use std::path::PathBuf;

use id77_platform::config::env_or;
use id77_platform::{PlatformConfig, ServiceContext, streams};
use id77_proto::membership::v1::identity_service_server::IdentityServiceServer;
use id77_proto::membership::v1::membership_service_server::MembershipServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Default gRPC port.
pub const PORT: u16 = 7051;

#[derive(Clone)]
pub struct Config {
    pub platform: PlatformConfig,
    /// `ID77_DIRECTORY_DIR`: folder with `communes.json` and `epci.json` of `@etalab/decoupage-administratif`.
    /// Imported at start-up when set.
    pub directory_dir: Option<PathBuf>,
    /// `ID77_DEPARTEMENT`: the département whose collectivités make the directory (default 77).
    pub departement: String,
    /// `ID77_DEMO_PASSWORD`: when set, the demo accounts (operator, coordinator, referent, one agent per demo
    /// provider) exist, active, with this password, which must satisfy the password policy.
    pub demo_password: Option<String>,
    /// `ID77_DEMO_PROVIDERS`: comma-separated provider codes that get a demo agent (`agent.<code>@id77.demo`).
    pub demo_providers: Vec<String>,
    /// `ID77_BOOTSTRAP_OPERATOR_EMAIL`: when no operator account exists, one is created for this email and its
    /// invitation token logged once.
    pub bootstrap_operator_email: Option<String>,
    /// Mails (invitations, password resets, refusals): `ID77_SMTP_URL`, `ID77_MAIL_FROM`, `ID77_PORTAL_URL`.
    pub mail: mail::MailConfig,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("platform", &self.platform)
            .field("directory_dir", &self.directory_dir)
            .field("departement", &self.departement)
            .field("demo_password", &self.demo_password.as_ref().map(|_| "<redacted>"))
            .field("demo_providers", &self.demo_providers)
            .field("bootstrap_operator_email", &self.bootstrap_operator_email)
            .field("mail_relay", &self.mail.smtp_url.as_ref().map(|_| "<set>"))
            .field("portal_url", &self.mail.portal_url)
            .finish()
    }
}

fn env_opt(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// Comma-separated values, trimmed, empty ones dropped.
pub fn split_list(raw: &str) -> Vec<String> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            platform: PlatformConfig::from_env("membership", PORT)?,
            directory_dir: std::env::var_os("ID77_DIRECTORY_DIR").filter(|d| !d.is_empty()).map(PathBuf::from),
            departement: env_or("ID77_DEPARTEMENT", "77"),
            // The password is taken as is (spaces included).
            demo_password: std::env::var("ID77_DEMO_PASSWORD").ok().filter(|p| !p.is_empty()),
            demo_providers: env_opt("ID77_DEMO_PROVIDERS").map(|p| split_list(&p)).unwrap_or_default(),
            bootstrap_operator_email: env_opt("ID77_BOOTSTRAP_OPERATOR_EMAIL").map(|e| e.trim().to_owned()),
            mail: mail::MailConfig::from_env()?,
        })
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    // Refuse a bad demo set-up before touching anything.
    if let Some(password) = &config.demo_password {
        identity::check_demo_settings(password, &config.demo_providers)?;
    }
    config.mail.check()?;
    let mut ctx = ServiceContext::start(config.platform, &MIGRATOR, &[streams::MEMBERSHIP], shutdown).await?;
    if let Some(dir) = &config.directory_dir {
        let imported = directory::import_from_dir(&ctx.pool, dir, &config.departement).await?;
        tracing::info!(departement = %config.departement, communes = imported.communes, epci = imported.epci, "directory imported");
    }
    identity::keys::ensure_signing_key(&ctx.pool).await?;
    if let Some(password) = &config.demo_password {
        identity::ensure_demo_accounts(&ctx.pool, password, &config.demo_providers).await?;
    }
    if let Some(email) = &config.bootstrap_operator_email {
        identity::bootstrap_operator(&ctx.pool, email).await?;
    }
    identity::announce_pending_users(&ctx.pool).await?;
    ctx.spawn_outbox_relay();
    ctx.spawn(mail::sender::run(ctx.pool.clone(), config.mail.clone(), ctx.shutdown.clone()));
    // Membership verifies access tokens with its own key table (the platform's authenticator would ask itself
    // over the network): the gRPC server's authentication layer uses it; a rotation drops its cached keys.
    let auth = identity::keys::LocalAuthenticator::new(ctx.pool.clone());
    ctx.auth = auth.authenticator();
    // Revoked sessions and users (its own `access.revoked` events): refused here like in every service.
    ctx.spawn(id77_platform::revocation::follow(
        ctx.js.clone(),
        ctx.ns.clone(),
        auth.revocations().clone(),
        ctx.shutdown.clone(),
    ));
    let membership = MembershipServiceServer::new(grpc::MembershipApi::new(ctx.pool.clone()))
        .max_decoding_message_size(id77_platform::grpc::MAX_MESSAGE_BYTES);
    let identity = IdentityServiceServer::new(identity::grpc::IdentityApi::new(ctx.pool.clone(), auth.clone()))
        .max_decoding_message_size(id77_platform::grpc::MAX_MESSAGE_BYTES);
    let routes = Routes::new(membership).add_service(identity);
    ctx.serve(
        listener,
        routes,
        &[
            MembershipServiceServer::<grpc::MembershipApi>::NAME,
            IdentityServiceServer::<identity::grpc::IdentityApi>::NAME,
        ],
    )
    .await
}
