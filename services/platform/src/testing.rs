//! Test isolation: each test gets its own database and its own NATS subject prefix, so tests run in parallel
//! and again and again on one PostgreSQL and one NATS.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::config::{DEFAULT_NATS_URL, DEFAULT_PG_URL, env_or};

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

pub fn nats_url() -> String {
    env_or("ID77_NATS_URL", DEFAULT_NATS_URL)
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
