//! Gateway configuration from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use id77_platform::config::{env_or, env_parse};

/// Where the gateway listens and where it finds the five services.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ID77_HTTP_ADDR` (default `127.0.0.1:8080`).
    pub http_addr: SocketAddr,
    /// `ID77_MEMBERSHIP_URL` (default `http://127.0.0.1:50051`).
    pub membership_url: String,
    /// `ID77_CATALOGUE_URL` (default `http://127.0.0.1:50052`).
    pub catalogue_url: String,
    /// `ID77_REQUESTS_URL` (default `http://127.0.0.1:50053`).
    pub requests_url: String,
    /// `ID77_ROUTING_URL` (default `http://127.0.0.1:50054`).
    pub routing_url: String,
    /// `ID77_BILLING_URL` (default `http://127.0.0.1:50055`).
    pub billing_url: String,
    /// `ID77_DEV_IDENTITY=1`: honour the development-only `X-Id77-Dev-Identity` header
    /// (see [`crate::dev_identity`]). Off by default; never enable it in production.
    pub dev_identity: bool,
    /// `ID77_UPSTREAM_CONNECT_TIMEOUT_MS` (default 2 000).
    pub connect_timeout: Duration,
    /// `ID77_UPSTREAM_TIMEOUT_MS`: deadline of one gRPC call (default 10 000).
    pub request_timeout: Duration,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            http_addr: env_parse("ID77_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            membership_url: env_or("ID77_MEMBERSHIP_URL", "http://127.0.0.1:50051"),
            catalogue_url: env_or("ID77_CATALOGUE_URL", "http://127.0.0.1:50052"),
            requests_url: env_or("ID77_REQUESTS_URL", "http://127.0.0.1:50053"),
            routing_url: env_or("ID77_ROUTING_URL", "http://127.0.0.1:50054"),
            billing_url: env_or("ID77_BILLING_URL", "http://127.0.0.1:50055"),
            dev_identity: is_on(&env_or("ID77_DEV_IDENTITY", "0")),
            connect_timeout: Duration::from_millis(env_parse("ID77_UPSTREAM_CONNECT_TIMEOUT_MS", 2_000)?),
            request_timeout: Duration::from_millis(env_parse("ID77_UPSTREAM_TIMEOUT_MS", 10_000)?),
        })
    }

    /// The defaults, with every upstream at `url` (tests point them at a closed port).
    pub fn with_all_upstreams(url: &str, dev_identity: bool) -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            membership_url: url.to_owned(),
            catalogue_url: url.to_owned(),
            requests_url: url.to_owned(),
            routing_url: url.to_owned(),
            billing_url: url.to_owned(),
            dev_identity,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// `1`, `true`, `yes`, `on` (any case) switch a flag on; anything else leaves it off.
fn is_on(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_off_unless_clearly_on() {
        for on in ["1", "true", "YES", " on "] {
            assert!(is_on(on), "{on:?}");
        }
        for off in ["", "0", "false", "no", "2", "enabled"] {
            assert!(!is_on(off), "{off:?}");
        }
    }
}
