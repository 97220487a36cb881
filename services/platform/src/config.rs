//! Configuration from environment variables, with defaults that work on a developer machine.

use std::net::SocketAddr;

use anyhow::Context;

/// The NATS settings, which `id77-bus` reads (re-exported under their usual paths).
pub use id77_bus::config::{
    DEFAULT_NATS_URL, DEFAULT_STREAM_REPLICAS, MAX_STREAM_REPLICAS, NATS_CA_FILE_ENV, STREAM_REPLICAS_ENV,
    nats_ca_file, stream_replicas,
};

/// What every service needs to reach its database, NATS, and to serve gRPC.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// Short service name, e.g. `membership`; also the default database name suffix.
    pub service: &'static str,
    /// `ID77_DATABASE_URL`, else `ID77_PG_URL` + `/id77_<service>`. TLS is asked for in the URL, as with libpq:
    /// `?sslmode=verify-full` (or `verify-ca`, `require`, `prefer` (the default), `disable`); the CA the server's
    /// certificate must chain to is [`DATABASE_CA_FILE_ENV`], read by [`crate::db`] (see [`database_ca_file`]).
    pub database_url: String,
    /// `ID77_NATS_URL`.
    pub nats_url: String,
    /// `ID77_NATS_PREFIX`: prepended to every subject and stream name (tests use a random one).
    pub nats_prefix: String,
    /// `ID77_GRPC_ADDR`.
    pub grpc_addr: SocketAddr,
    /// `ID77_DB_MAX_CONNECTIONS`.
    pub db_max_connections: u32,
    /// `ID77_MEMBERSHIP_URL`: where the public keys that verify access tokens are published.
    pub membership_url: String,
    /// `ID77_JWKS_FILE`: read the token verification keys from this JWKS file instead (keys provisioned by
    /// the operator; re-read on rotation like the published ones).
    pub jwks_file: Option<std::path::PathBuf>,
    /// `ID77_NATS_NKEY_FILE`: the NKEY seed this service authenticates to NATS with (its user in the generated
    /// server configuration, see `id77-nats-config`); none: connect without credentials.
    pub nats_nkey_file: Option<std::path::PathBuf>,
    /// `ID77_METRICS_ADDR`: where Prometheus metrics are served (`/metrics`); unset: not served.
    pub metrics_addr: Option<SocketAddr>,
    /// `ID77_STREAM_REPLICAS` ([`stream_replicas`]): replicas of every stream the platform ensures.
    pub stream_replicas: usize,
}

/// Default PostgreSQL server, without a database name.
pub const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432";
/// The database's CA: `ID77_DATABASE_CA_FILE`, the path of a PEM file with the certificate(s) of the CA that
/// signed the PostgreSQL server's certificate (the chart mounts it from `postgresql.tls`). It is the one way to
/// name the CA: when set it wins over the URL's `sslrootcert` and over `PGSSLROOTCERT` (both still honoured
/// when it is unset). It needs `sslmode=verify-full` (or `verify-ca`; `require` is then checked like
/// `verify-ca`, as libpq does) in the database URL: with `prefer`, `allow` or `disable` the service refuses to
/// start rather than ignore the CA. The CA is trusted in addition to the system's roots. A certificate that
/// does not chain to it, or that does not name the URL's host, stops the service at start with one line naming
/// the setting to fix (see [`crate::db`]).
pub const DATABASE_CA_FILE_ENV: &str = "ID77_DATABASE_CA_FILE";

/// The CA file of [`DATABASE_CA_FILE_ENV`], if set and not empty.
pub fn database_ca_file() -> Option<std::path::PathBuf> {
    std::env::var_os(DATABASE_CA_FILE_ENV).filter(|f| !f.is_empty()).map(Into::into)
}

/// Default address of membership's gRPC API.
pub const DEFAULT_MEMBERSHIP_URL: &str = "http://127.0.0.1:7051";

/// Reads `key`, or returns `default` when it is unset or empty.
pub fn env_or(key: &str, default: &str) -> String {
    match std::env::var(key) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => default.to_owned(),
    }
}

/// Reads and parses `key`, or returns `default`.
pub fn env_parse<T>(key: &str, default: T) -> anyhow::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    match std::env::var(key) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().with_context(|| format!("invalid {key}={v:?}")),
        _ => Ok(default),
    }
}

/// The database URL a service uses by default: one database per service on the shared server.
pub fn default_database_url(service: &str) -> String {
    format!("{}/id77_{}", env_or("ID77_PG_URL", DEFAULT_PG_URL).trim_end_matches('/'), service.replace('-', "_"))
}

impl PlatformConfig {
    /// How this service verifies access tokens: a JWKS file if configured, else membership's published keys.
    pub fn authenticator(&self) -> anyhow::Result<crate::auth::Authenticator> {
        match &self.jwks_file {
            Some(path) => Ok(crate::auth::Authenticator::from_file(path.clone())),
            None => crate::auth::Authenticator::from_membership(&self.membership_url),
        }
    }

    /// Reads the platform part of a service's configuration from the environment.
    pub fn from_env(service: &'static str, default_grpc_port: u16) -> anyhow::Result<Self> {
        Ok(Self {
            service,
            database_url: env_or("ID77_DATABASE_URL", &default_database_url(service)),
            nats_url: env_or("ID77_NATS_URL", DEFAULT_NATS_URL),
            nats_prefix: env_or("ID77_NATS_PREFIX", ""),
            grpc_addr: env_parse("ID77_GRPC_ADDR", SocketAddr::from(([127, 0, 0, 1], default_grpc_port)))?,
            db_max_connections: env_parse("ID77_DB_MAX_CONNECTIONS", 10)?,
            membership_url: env_or("ID77_MEMBERSHIP_URL", DEFAULT_MEMBERSHIP_URL),
            jwks_file: std::env::var_os("ID77_JWKS_FILE").filter(|f| !f.is_empty()).map(Into::into),
            nats_nkey_file: std::env::var_os("ID77_NATS_NKEY_FILE").filter(|f| !f.is_empty()).map(Into::into),
            metrics_addr: crate::metrics::addr_from_env()?,
            stream_replicas: stream_replicas()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_database_is_one_per_service() {
        let url = default_database_url("referral-consumer");
        assert!(url.ends_with("/id77_referral_consumer"), "{url}");
    }
}
