//! TLS towards NATS: the CA file an organisation was sent (checked at start) and whether TLS is required. From
//! outside the platform NATS is reached over TLS only (ADR 0014, "Partners over TLS").

use anyhow::Context;

use crate::config::Config;

/// The TLS options of the NATS connection: the CA file (checked now, so that a wrong path is said at start), TLS
/// first, and TLS required whenever [`Config::requires_tls`].
pub(crate) fn tls_options(
    mut options: async_nats::ConnectOptions,
    config: &Config,
) -> anyhow::Result<async_nats::ConnectOptions> {
    if let Some(path) = &config.nats_ca_file {
        check_ca_file(path)?;
        options = options.add_root_certificates(path.clone());
    }
    if config.nats_tls_first {
        options = options.tls_first();
    }
    Ok(options.require_tls(config.requires_tls()))
}

/// A readable PEM file holding at least one certificate.
pub fn check_ca_file(path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--nats-ca-file {}: cannot read the NATS CA file", path.display()))?;
    anyhow::ensure!(
        text.contains("-----BEGIN CERTIFICATE-----"),
        "--nats-ca-file {}: no PEM certificate in it",
        path.display()
    );
    Ok(())
}
