//! Gateway configuration from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use id77_platform::config::{env_or, env_parse};

use crate::ratelimit::{ForwardedFor, TrustedProxies};

/// Where the gateway listens, where it finds the five services, how it verifies tokens, and its hardening.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ID77_HTTP_ADDR` (default `127.0.0.1:8080`).
    pub http_addr: SocketAddr,
    /// `ID77_MEMBERSHIP_URL` (default `http://127.0.0.1:7051`); also where the token verification keys are
    /// published (`IdentityService.GetJwks`) unless `jwks_file` is set.
    pub membership_url: String,
    /// `ID77_CATALOGUE_URL` (default `http://127.0.0.1:7052`).
    pub catalogue_url: String,
    /// `ID77_REQUESTS_URL` (default `http://127.0.0.1:7053`).
    pub requests_url: String,
    /// `ID77_ROUTING_URL` (default `http://127.0.0.1:7054`).
    pub routing_url: String,
    /// `ID77_BILLING_URL` (default `http://127.0.0.1:7055`).
    pub billing_url: String,
    /// `ID77_JWKS_FILE`: verify access tokens with the keys of this JWKS file instead of membership's.
    pub jwks_file: Option<PathBuf>,
    /// `ID77_TRUSTED_PROXIES`: comma-separated addresses and CIDR blocks of the proxies in front of the gateway
    /// (the ingress controller, the portal; in Kubernetes the pod CIDR). From those peers only, the client
    /// address is read from `X-Forwarded-For`: its rightmost entry that is not itself a trusted proxy (see
    /// [`crate::ratelimit`]). Empty by default: the peer address is used, since anyone can send the header.
    pub trusted_proxies: TrustedProxies,
    /// `ID77_TRUST_FORWARDED_FOR=1` (former setting, used only when `ID77_TRUSTED_PROXIES` is empty): the last
    /// `X-Forwarded-For` entry from any peer, one hop only. Prefer `ID77_TRUSTED_PROXIES`.
    pub trust_forwarded_for: bool,
    /// `ID77_WEB_ORIGINS`: comma-separated origins (`https://app.example.fr`) allowed by CORS; none by default.
    pub web_origins: Vec<String>,
    /// `ID77_HSTS=1`: send `Strict-Transport-Security` (only behind TLS).
    pub hsts: bool,
    /// `ID77_AUTH_RATE_LIMIT_PER_MINUTE` (default 10, burst as many): login, refresh and invitation acceptance
    /// per client address. 0 disables.
    pub auth_rate_per_minute: u32,
    /// `ID77_RATE_LIMIT_PER_MINUTE` (default 600, burst as many): every other call per client address.
    /// 0 disables.
    pub rate_per_minute: u32,
    /// `ID77_RATE_LIMIT_MAX_CLIENTS` (default 50 000): client addresses tracked per limiter; beyond, new
    /// clients share one bucket until idle ones are forgotten.
    pub rate_limit_max_clients: usize,
    /// `ID77_UPSTREAM_CONNECT_TIMEOUT_MS` (default 2 000).
    pub connect_timeout: Duration,
    /// `ID77_UPSTREAM_TIMEOUT_MS`: deadline of one gRPC call (default 10 000).
    pub request_timeout: Duration,
    /// `ID77_METRICS_ADDR`: where Prometheus metrics are served (`/metrics`); unset: not served.
    pub metrics_addr: Option<SocketAddr>,
    /// `ID77_SEARCH_CACHE_MS` (default 1 000): how long a catalogue search answer is served from the gateway's
    /// memory (src/edge_cache.rs): an anonymous one to anyone, a member's "eligible" one to that member's users
    /// only. 0 disables.
    pub search_cache_ttl: Duration,
    /// `ID77_UPSTREAM_BALANCE=dns`: each upstream URL's host is resolved every few seconds and the calls are
    /// balanced over every address (a headless Service: every ready pod); otherwise one connection per URL.
    pub balance_dns: bool,
    /// `ID77_NATS_URL` (with `ID77_NATS_PREFIX` and `ID77_NATS_NKEY_FILE`): where the live updates of
    /// `GET /v1/events` come from; unset: that endpoint answers 503.
    pub nats: Option<crate::live::NatsSettings>,
    /// `ID77_OPERATIONS_METRICS`: `service=url` of each service's metrics endpoint, where `GET /v1/operations`
    /// reads the outbox backlogs; unset: those figures are `not_configured`.
    pub operations_metrics: Vec<(String, String)>,
    /// `ID77_PUBLIC_URL`: the gateway's public base URL (`https://api.id77.seine-et-marne.fr`, optionally with a
    /// path prefix), for the absolute URLs it answers (a calendar feed's). Unset: the request's `Host`, over
    /// https when a trusted proxy says so.
    pub public_url: Option<String>,
}

/// Default per-client limit of login, refresh and invitation acceptance calls per minute.
pub const DEFAULT_AUTH_RATE_PER_MINUTE: u32 = 10;
/// Default per-client limit of every other call per minute.
pub const DEFAULT_RATE_PER_MINUTE: u32 = 600;
/// Default number of client addresses a limiter tracks.
pub const DEFAULT_RATE_LIMIT_MAX_CLIENTS: usize = 50_000;

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            http_addr: env_parse("ID77_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            membership_url: env_or("ID77_MEMBERSHIP_URL", "http://127.0.0.1:7051"),
            catalogue_url: env_or("ID77_CATALOGUE_URL", "http://127.0.0.1:7052"),
            requests_url: env_or("ID77_REQUESTS_URL", "http://127.0.0.1:7053"),
            routing_url: env_or("ID77_ROUTING_URL", "http://127.0.0.1:7054"),
            billing_url: env_or("ID77_BILLING_URL", "http://127.0.0.1:7055"),
            jwks_file: std::env::var_os("ID77_JWKS_FILE").filter(|f| !f.is_empty()).map(Into::into),
            trusted_proxies: TrustedProxies::parse(&env_or("ID77_TRUSTED_PROXIES", ""))?,
            trust_forwarded_for: is_on(&env_or("ID77_TRUST_FORWARDED_FOR", "0")),
            web_origins: parse_origins(&env_or("ID77_WEB_ORIGINS", ""))?,
            hsts: is_on(&env_or("ID77_HSTS", "0")),
            auth_rate_per_minute: env_parse("ID77_AUTH_RATE_LIMIT_PER_MINUTE", DEFAULT_AUTH_RATE_PER_MINUTE)?,
            rate_per_minute: env_parse("ID77_RATE_LIMIT_PER_MINUTE", DEFAULT_RATE_PER_MINUTE)?,
            rate_limit_max_clients: env_parse("ID77_RATE_LIMIT_MAX_CLIENTS", DEFAULT_RATE_LIMIT_MAX_CLIENTS)?,
            connect_timeout: Duration::from_millis(env_parse("ID77_UPSTREAM_CONNECT_TIMEOUT_MS", 2_000)?),
            request_timeout: Duration::from_millis(env_parse("ID77_UPSTREAM_TIMEOUT_MS", 10_000)?),
            metrics_addr: id77_platform::metrics::addr_from_env()?,
            search_cache_ttl: Duration::from_millis(env_parse("ID77_SEARCH_CACHE_MS", 1_000)?),
            balance_dns: match env_or("ID77_UPSTREAM_BALANCE", "").trim() {
                "" | "none" => false,
                "dns" => true,
                other => bail!("invalid ID77_UPSTREAM_BALANCE={other:?}: expected dns or none"),
            },
            nats: std::env::var("ID77_NATS_URL").ok().map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()).map(
                |url| crate::live::NatsSettings {
                    url,
                    prefix: env_or("ID77_NATS_PREFIX", ""),
                    nkey_file: std::env::var_os("ID77_NATS_NKEY_FILE").filter(|f| !f.is_empty()).map(Into::into),
                },
            ),
            public_url: parse_public_url(&env_or("ID77_PUBLIC_URL", ""))?,
            operations_metrics: crate::routes::operations::parse_targets(&env_or("ID77_OPERATIONS_METRICS", ""))?,
        })
    }

    /// The defaults, with every upstream at `url` (tests point them at a closed port). Tokens are verified
    /// with membership's keys unless `jwks_file` is set.
    pub fn with_all_upstreams(url: &str) -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            membership_url: url.to_owned(),
            catalogue_url: url.to_owned(),
            requests_url: url.to_owned(),
            routing_url: url.to_owned(),
            billing_url: url.to_owned(),
            jwks_file: None,
            trusted_proxies: TrustedProxies::default(),
            trust_forwarded_for: false,
            web_origins: Vec::new(),
            hsts: false,
            auth_rate_per_minute: DEFAULT_AUTH_RATE_PER_MINUTE,
            rate_per_minute: DEFAULT_RATE_PER_MINUTE,
            rate_limit_max_clients: DEFAULT_RATE_LIMIT_MAX_CLIENTS,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            metrics_addr: None,
            search_cache_ttl: Duration::ZERO,
            balance_dns: false,
            nats: None,
            public_url: None,
            operations_metrics: Vec::new(),
        }
    }
}

impl Config {
    /// Whose `X-Forwarded-For` is believed, from `trusted_proxies` and `trust_forwarded_for`.
    pub fn forwarded_for(&self) -> ForwardedFor {
        ForwardedFor::new(self.trust_forwarded_for, &self.trusted_proxies)
    }
}

/// `1`, `true`, `yes`, `on` (any case) switch a flag on; anything else leaves it off.
fn is_on(value: &str) -> bool {
    matches!(value.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// Comma-separated origins: `scheme://host[:port]`, nothing after (a trailing `/` is dropped); no wildcard.
pub fn parse_origins(value: &str) -> anyhow::Result<Vec<String>> {
    let mut origins = Vec::new();
    for origin in value.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let origin = origin.strip_suffix('/').unwrap_or(origin);
        let Some((scheme, host)) = origin.split_once("://") else {
            bail!("invalid ID77_WEB_ORIGINS entry {origin:?}: expected scheme://host[:port]");
        };
        let valid_host = !host.is_empty()
            && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !matches!(scheme, "http" | "https") || !valid_host {
            bail!("invalid ID77_WEB_ORIGINS entry {origin:?}: expected http(s)://host[:port], no path, no wildcard");
        }
        origins.push(origin.to_ascii_lowercase());
    }
    Ok(origins)
}

/// `http(s)://host[:port][/prefix]`, without its trailing `/`; empty: none.
pub fn parse_public_url(value: &str) -> anyhow::Result<Option<String>> {
    let value = value.trim().trim_end_matches('/');
    if value.is_empty() {
        return Ok(None);
    }
    let Some((scheme, rest)) = value.split_once("://") else {
        bail!("invalid ID77_PUBLIC_URL {value:?}: expected http(s)://host[:port][/prefix]");
    };
    let host = rest.split('/').next().unwrap_or_default();
    let valid = matches!(scheme, "http" | "https")
        && !host.is_empty()
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        && rest.chars().all(|c| c.is_ascii_graphic() && !matches!(c, '?' | '#' | '"' | '<' | '>' | '\\'));
    if !valid {
        bail!("invalid ID77_PUBLIC_URL {value:?}: expected http(s)://host[:port][/prefix], no query");
    }
    Ok(Some(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_url_is_a_base_without_its_trailing_slash() {
        assert_eq!(parse_public_url(" ").ok(), Some(None));
        assert_eq!(parse_public_url("https://api.id77.fr/").ok(), Some(Some("https://api.id77.fr".to_owned())));
        assert_eq!(
            parse_public_url("http://localhost:8080/api").ok(),
            Some(Some("http://localhost:8080/api".to_owned()))
        );
        for bad in ["api.id77.fr", "ftp://x", "https://", "https://a b", "https://x/?q=1", "https://x/#f"] {
            assert!(parse_public_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_are_off_unless_clearly_on() {
        for on in ["1", "true", "YES", " on "] {
            assert!(is_on(on), "{on:?}");
        }
        for off in ["", "0", "false", "no", "2", "enabled"] {
            assert!(!is_on(off), "{off:?}");
        }
    }

    #[test]
    fn origins_are_exact_scheme_host_port() {
        assert_eq!(parse_origins("").ok(), Some(vec![]));
        assert_eq!(
            parse_origins(" https://app.id77.fr/ , http://localhost:5173").ok(),
            Some(vec!["https://app.id77.fr".to_owned(), "http://localhost:5173".to_owned()])
        );
        for bad in ["*", "app.id77.fr", "https://*.id77.fr", "https://app.id77.fr/path", "ftp://x", "https://"] {
            assert!(parse_origins(bad).is_err(), "{bad:?}");
        }
    }
}
