//! NATS errors told in terms an organisation can act on: its TLS CA, its credentials, its permissions, the
//! address.

use id77_bus::config::NATS_CA_FILE_ENV;
use id77_bus::nats::is_tls_failure;
use id77_proto::events::provider::reply;
use id77_proto::events::streams::REFERRALS;

use crate::config::Config;

/// A NATS error turned into what an organisation can act on (credentials, permissions, address).
pub fn explain_nats_error(config: &Config, doing: &str, error: &str) -> anyhow::Error {
    let lower = error.to_lowercase();
    let hint = if is_tls_failure(error) {
        let ca = match &config.nats_ca_file {
            Some(path) => format!("--nats-ca-file {} did not sign it", path.display()),
            None => format!("no --nats-ca-file ({NATS_CA_FILE_ENV}) was given"),
        };
        format!(
            "TLS with NATS at {} failed: the server's certificate must be signed by a CA this consumer trusts ({ca}: \
             give the CA certificate the platform sent you) and name the host of the URL; connect with tls:// (and \
             --nats-tls-first only if the platform says its listener does TLS first)",
            config.nats_url
        )
    } else if lower.contains("authorization violation") || lower.contains("authentication") {
        format!(
            "NATS refused the credentials: check the NKEY seed (--nkey) or .creds file (--creds) issued for provider \
             {} and that it is the one the platform registered",
            config.provider
        )
    } else if lower.contains("permission") || lower.contains("timed out") || lower.contains("timeout") {
        format!(
            "the credentials may lack a permission: provider {p} needs to publish on {reply} and to pull from the \
             durable consumer {durable} on stream {stream} (see `id77-nats-config`); a server that silently refuses \
             shows up as a timeout",
            p = config.provider,
            reply = reply(&config.provider),
            durable = config.durable(),
            stream = REFERRALS.name,
        )
    } else if lower.contains("connection refused") || lower.contains("connect") {
        format!("NATS at {} does not answer: check --nats-url and the network", config.nats_url)
    } else {
        String::new()
    };
    if hint.is_empty() { anyhow::anyhow!("{doing}: {error}") } else { anyhow::anyhow!("{doing}: {error} — {hint}") }
}
