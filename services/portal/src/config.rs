//! Portal configuration from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use id77_platform::config::{default_database_url, env_or, env_parse};

/// Where the portal listens, where the public gateway is, where sessions are kept and how they behave.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ID77_PORTAL_ADDR` (default `127.0.0.1:8090`).
    pub addr: SocketAddr,
    /// `ID77_GATEWAY_URL` (default `http://127.0.0.1:8080`): the public REST API, the portal's only upstream.
    pub gateway_url: String,
    /// `ID77_PORTAL_SECURE_COOKIE=1`: the session cookie is `Secure` (and named `__Host-id77_session`); set it
    /// whenever the portal is served over HTTPS (behind a TLS-terminating proxy).
    pub secure_cookie: bool,
    /// `ID77_PORTAL_SESSION_IDLE_MINUTES` (default 120): a session unused this long is forgotten.
    pub session_idle: Duration,
    /// `ID77_DATABASE_URL`, else `ID77_PG_URL` + `/id77_portal`: the portal's own database, where the sessions are
    /// kept (created and migrated at start, like the services' databases).
    pub database_url: String,
    /// `ID77_DB_MAX_CONNECTIONS` (default 10). A token refresh holds one connection while the gateway answers.
    pub db_max_connections: u32,
    /// `ID77_UPSTREAM_TIMEOUT_MS` (default 15 000): deadline of one gateway call.
    pub request_timeout: Duration,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            addr: env_parse("ID77_PORTAL_ADDR", SocketAddr::from(([127, 0, 0, 1], 8090)))?,
            gateway_url: env_or("ID77_GATEWAY_URL", "http://127.0.0.1:8080").trim_end_matches('/').to_owned(),
            secure_cookie: matches!(env_or("ID77_PORTAL_SECURE_COOKIE", "0").trim(), "1" | "true" | "yes" | "on"),
            session_idle: Duration::from_secs(60 * env_parse("ID77_PORTAL_SESSION_IDLE_MINUTES", 120u64)?),
            database_url: env_or("ID77_DATABASE_URL", &default_database_url("portal")),
            db_max_connections: env_parse("ID77_DB_MAX_CONNECTIONS", 10u32)?,
            request_timeout: Duration::from_millis(env_parse("ID77_UPSTREAM_TIMEOUT_MS", 15_000u64)?),
        })
    }

    /// Defaults pointing at `gateway_url`, sessions in `database_url` (tests).
    pub fn for_gateway(gateway_url: &str, database_url: &str) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            gateway_url: gateway_url.trim_end_matches('/').to_owned(),
            secure_cookie: false,
            session_idle: Duration::from_secs(7200),
            database_url: database_url.to_owned(),
            db_max_connections: 5,
            request_timeout: Duration::from_secs(15),
        }
    }
}
