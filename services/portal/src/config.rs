//! Portal configuration from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use id77_platform::config::{env_or, env_parse};

/// Where the portal listens, where the public gateway is, and how sessions behave.
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
    /// `ID77_PORTAL_MAX_SESSIONS` (default 10 000): beyond, the least recently used sessions are dropped.
    pub max_sessions: usize,
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
            max_sessions: env_parse("ID77_PORTAL_MAX_SESSIONS", 10_000usize)?,
            request_timeout: Duration::from_millis(env_parse("ID77_UPSTREAM_TIMEOUT_MS", 15_000u64)?),
        })
    }

    /// Defaults pointing at `gateway_url` (tests).
    pub fn for_gateway(gateway_url: &str) -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            gateway_url: gateway_url.trim_end_matches('/').to_owned(),
            secure_cookie: false,
            session_idle: Duration::from_secs(7200),
            max_sessions: 10_000,
            request_timeout: Duration::from_secs(15),
        }
    }
}
