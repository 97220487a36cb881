//! Where a provider's consumer connects and who it is: its validated configuration, and the names the platform and
//! the provider agree on (durable consumer, inbox prefix, the consumer's definition).

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use id77_bus::Namespace;
use id77_proto::events::is_valid_subject_token;
use id77_proto::events::provider::offered;

use crate::decision::Quote;

/// How long the referral stays with this consumer before JetStream redelivers it.
const ACK_WAIT: Duration = Duration::from_secs(60);

/// Where to connect and who we are.
#[derive(Debug, Clone)]
pub struct Config {
    pub nats_url: String,
    /// A `.creds` file (JWT + nkey seed) issued to the provider.
    pub credentials: Option<PathBuf>,
    /// A file holding the provider's NKEY user seed (`SU...`), e.g. `provider-<code>.nk` from `id77-nats-config`.
    /// Exclusive with `credentials`.
    pub nkey_file: Option<PathBuf>,
    /// PEM file of the CA certificates that signed the NATS server's (`--nats-ca-file`), for a `tls://` listener
    /// whose certificate the system does not trust (the platform's own CA). With it, TLS is required.
    pub nats_ca_file: Option<PathBuf>,
    /// TLS before anything else (`--nats-tls-first`), for a listener with `handshake_first`.
    pub nats_tls_first: bool,
    /// Subject and stream prefix of the deployment (empty in production).
    pub prefix: String,
    /// The provider code: also the subject token of its two subjects.
    pub provider: String,
    /// Stop after this many answered referrals.
    pub max: Option<u64>,
    /// Create the `REFERRALS` stream if it is missing (development). A permission error is tolerated.
    pub ensure_stream: bool,
    /// Create the durable consumer if it is missing (development). When false, the consumer must exist: the
    /// platform creates it (`id77-nats-config ensure-consumers`) and the provider needs no create permission.
    pub create_consumer: bool,
    /// The amount stated when a plain accept meets an offer priced on quote (`--quote-amount-cents`). Without
    /// it such a referral is acknowledged unanswered, for an agent to accept with an amount (portal or API).
    pub quote: Option<Quote>,
}

impl Config {
    /// A configuration for `provider`, validated, with no credentials, no prefix and no limit.
    pub fn new(nats_url: impl Into<String>, provider: impl Into<String>) -> anyhow::Result<Self> {
        let config = Self {
            nats_url: nats_url.into(),
            credentials: None,
            nkey_file: None,
            nats_ca_file: None,
            nats_tls_first: false,
            prefix: String::new(),
            provider: provider.into(),
            max: None,
            ensure_stream: true,
            create_consumer: true,
            quote: None,
        };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            is_valid_subject_token(&self.provider),
            "provider code {:?} must be 1 to 64 lowercase letters, digits or dashes",
            self.provider
        );
        anyhow::ensure!(
            self.prefix.is_empty() || self.prefix.split('.').all(is_valid_prefix_token),
            "prefix {:?} must be dot-separated tokens of letters, digits, '-' or '_'",
            self.prefix
        );
        anyhow::ensure!(
            self.credentials.is_none() || self.nkey_file.is_none(),
            "give either a credentials file or an NKEY seed file, not both"
        );
        Ok(())
    }

    /// Whether the NATS connection must be TLS: a `tls://` URL, a CA file or TLS first. (Without it, the client
    /// still upgrades to TLS when the server requires it.)
    pub fn requires_tls(&self) -> bool {
        self.nats_url.trim_start().to_ascii_lowercase().starts_with("tls://")
            || self.nats_ca_file.is_some()
            || self.nats_tls_first
    }

    /// The durable consumer's name.
    pub fn durable(&self) -> String {
        durable_name(&self.provider)
    }
}

/// The name of a provider's durable consumer on the `REFERRALS` stream.
pub fn durable_name(provider: &str) -> String {
    format!("provider-{provider}")
}

/// The inbox prefix of a provider's connections: its credentials may subscribe to `<prefix>.>` and nothing else.
pub fn inbox_prefix(provider: &str) -> String {
    format!("_INBOX_provider_{provider}")
}

/// The definition of a provider's durable pull consumer (explicit ack, filtered on its offered subject), as the
/// platform creates it beforehand and as this client creates it in development.
pub fn consumer_config(ns: &Namespace, provider: &str) -> pull::Config {
    pull::Config {
        durable_name: Some(durable_name(provider)),
        filter_subject: ns.subject(&offered(provider)),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        ..Default::default()
    }
}

fn is_valid_prefix_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_validated() {
        assert!(Config::new("nats://127.0.0.1:4222", "caue77").is_ok());
        for bad in ["", "caue.77", "*", ">", "CAUE"] {
            assert!(Config::new("nats://x", bad).is_err(), "{bad:?}");
        }
        let config = Config::new("nats://x", "caue77").map(|c| c.durable());
        assert_eq!(config.ok().as_deref(), Some("provider-caue77"));
        let mut config = Config::new("nats://x", "caue77").map_err(|e| e.to_string());
        if let Ok(c) = config.as_mut() {
            c.prefix = "t1.a*".into();
        }
        assert!(config.map(|c| c.validate().is_err()).unwrap_or(false));
        let mut both = Config::new("nats://x", "caue77").map_err(|e| e.to_string());
        if let Ok(c) = both.as_mut() {
            c.credentials = Some("/a.creds".into());
            c.nkey_file = Some("/a.nk".into());
        }
        assert!(both.map(|c| c.validate().is_err()).unwrap_or(false), "creds and nkey are exclusive");
    }

    #[test]
    fn the_platform_and_the_client_agree_on_the_consumer() {
        assert_eq!(inbox_prefix("caue77"), "_INBOX_provider_caue77");
        let config = consumer_config(&Namespace::new("t1"), "caue77");
        assert_eq!(config.durable_name.as_deref(), Some("provider-caue77"));
        assert_eq!(config.filter_subject, "t1.id77.referrals.caue77.offered");
        assert_eq!(config.ack_policy, jetstream::consumer::AckPolicy::Explicit);
        assert_eq!(config.ack_wait, ACK_WAIT);
    }
}
