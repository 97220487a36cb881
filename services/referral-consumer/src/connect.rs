//! The provider's NATS connection: its credentials (NKEY seed or `.creds` file), TLS, its own inbox prefix, and a
//! first connection that reports at once what retrying cannot cure.

use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use id77_bus::Namespace;
use id77_bus::nats::{error_chain, is_tls_failure};

use crate::config::{Config, inbox_prefix};
use crate::explain::explain_nats_error;
use crate::message_ids::MessageIds;
use crate::tls::tls_options;

/// A provider's open connection: its configuration, the client and its JetStream context, the deployment's
/// namespace, and the message ids keyed with its secret.
pub(crate) struct Connection {
    pub(crate) config: Config,
    pub(crate) client: async_nats::Client,
    pub(crate) js: jetstream::Context,
    pub(crate) ns: Namespace,
    pub(crate) ids: MessageIds,
}

impl Connection {
    /// Connects to NATS with the provider's credentials (if any), under the provider's own inbox prefix.
    pub(crate) async fn open(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let (options, secret) = credentials(&config).await?;
        let ids = MessageIds::new(&config.provider, secret.as_deref());
        let options = tls_options(options, &config)?;
        let options = options
            .name(format!("id77-referral-consumer-{}", config.provider))
            .custom_inbox_prefix(inbox_prefix(&config.provider))
            .event_callback(|event| async move {
                // Permission violations: the server refuses silently otherwise (a request just times out).
                if let async_nats::Event::ServerError(error) = event {
                    tracing::warn!(%error, "NATS server error");
                }
            })
            .connection_timeout(Duration::from_secs(5));
        let client = first_connection(options, &config).await?;
        if !client.server_info().tls_required && !config.requires_tls() {
            tracing::warn!(
                url = %config.nats_url,
                "the NATS connection is not encrypted: from outside the platform, connect with tls:// (ADR 0014)"
            );
        }
        let js = jetstream::new(client.clone());
        let ns = Namespace::new(config.prefix.clone());
        Ok(Self { config, client, js, ns, ids })
    }
}

/// The connect options of the provider's credentials, and its secret (the bytes of its `.creds` file or NKEY seed,
/// which key its message ids); none without credentials.
async fn credentials(config: &Config) -> anyhow::Result<(async_nats::ConnectOptions, Option<Vec<u8>>)> {
    Ok(match (&config.credentials, &config.nkey_file) {
        (Some(path), _) => {
            let options = async_nats::ConnectOptions::with_credentials_file(path)
                .await
                .with_context(|| format!("reading NATS credentials {}", path.display()))?;
            let secret = std::fs::read(path).with_context(|| format!("reading NATS credentials {}", path.display()))?;
            (options, Some(secret))
        }
        (None, Some(path)) => {
            let seed = id77_bus::nats::read_nkey_seed(path)?;
            (async_nats::ConnectOptions::new().nkey(seed.clone()), Some(seed.into_bytes()))
        }
        (None, None) => (async_nats::ConnectOptions::new(), None),
    })
}

/// One attempt first: a refusal that retrying cannot cure (a certificate not trusted, TLS refused, the credentials
/// refused) is reported at once, with what to do; a server that does not answer yet is retried, for 10 s.
async fn first_connection(options: async_nats::ConnectOptions, config: &Config) -> anyhow::Result<async_nats::Client> {
    // One URL or several separated by commas (a cluster's nodes): the client reconnects to any of them.
    let servers = id77_bus::nats::server_addrs(&config.nats_url)?;
    match options.clone().connect(servers.clone()).await {
        Ok(client) => Ok(client),
        Err(error) if is_final_connect_error(&error) => {
            Err(explain_nats_error(config, "connecting to NATS", &error_chain(&error)))
        }
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), url = %config.nats_url, "NATS does not answer yet, retrying");
            let client = options
                .retry_on_initial_connect()
                .connect(servers)
                .await
                .with_context(|| format!("connecting to NATS at {}", config.nats_url))?;
            tokio::time::timeout(Duration::from_secs(10), async {
                while client.connection_state() != async_nats::connection::State::Connected {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .with_context(|| {
                format!("NATS at {} did not answer (or refused the credentials) within 10 s", config.nats_url)
            })?;
            Ok(client)
        }
    }
}

/// Whether retrying cannot help: TLS failed (certificate, handshake) or the server refused the credentials.
fn is_final_connect_error(error: &async_nats::ConnectError) -> bool {
    use async_nats::ConnectErrorKind as Kind;
    match error.kind() {
        Kind::Tls | Kind::AuthorizationViolation | Kind::Authentication => true,
        Kind::Io => is_tls_failure(&error_chain(error)),
        _ => false,
    }
}
