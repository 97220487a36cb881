//! NATS connection, subject namespace and stream set-up.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, stream};

use crate::streams::StreamDef;

/// A deployment's subject and stream namespace. Empty in production; tests use a random prefix so that
/// they can share one NATS server and run in parallel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespace {
    prefix: String,
}

impl Namespace {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The wire subject for a logical subject.
    pub fn subject(&self, logical: &str) -> String {
        if self.prefix.is_empty() { logical.to_owned() } else { format!("{}.{logical}", self.prefix) }
    }

    /// The logical subject for a wire subject.
    pub fn logical<'a>(&self, wire: &'a str) -> &'a str {
        if self.prefix.is_empty() {
            return wire;
        }
        wire.strip_prefix(self.prefix.as_str()).and_then(|s| s.strip_prefix('.')).unwrap_or(wire)
    }

    /// The stream name for a logical stream name.
    pub fn stream(&self, logical: &str) -> String {
        if self.prefix.is_empty() {
            logical.to_owned()
        } else {
            format!("{}_{logical}", self.prefix.to_ascii_uppercase().replace(['.', '-'], "_"))
        }
    }
}

/// Connects to NATS and returns the client and its JetStream context.
pub async fn connect(url: &str, name: &str) -> anyhow::Result<(async_nats::Client, jetstream::Context)> {
    connect_with(url, name, None).await
}

/// Connects to NATS, authenticating with the NKEY seed in `nkey_file` when given (`ID77_NATS_NKEY_FILE`: the
/// service's user in the generated server configuration), and returns the client and its JetStream context.
pub async fn connect_with(
    url: &str,
    name: &str,
    nkey_file: Option<&Path>,
) -> anyhow::Result<(async_nats::Client, jetstream::Context)> {
    let mut options = async_nats::ConnectOptions::new();
    if let Some(path) = nkey_file {
        options = options.nkey(read_nkey_seed(path)?);
    }
    let client = options
        .name(name)
        .event_callback(|event| async move {
            // Permission violations and the like: otherwise silently dropped by the client.
            if let async_nats::Event::ServerError(error) = event {
                tracing::warn!(%error, "NATS server error");
            }
        })
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .with_context(|| format!("connecting to NATS at {url}"))?;
    // Wait for the first connection so that start-up fails fast when NATS is unreachable.
    tokio::time::timeout(Duration::from_secs(10), async {
        while client.connection_state() != async_nats::connection::State::Connected {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .with_context(|| {
        let auth = if nkey_file.is_some() { " (or refused the NKEY)" } else { "" };
        format!("NATS at {url} did not answer within 10 s{auth}")
    })?;
    let js = jetstream::new(client.clone());
    Ok((client, js))
}

/// Reads a NATS user NKEY seed (`SU...`, one line) from `path`.
pub fn read_nkey_seed(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading the NATS NKEY seed {}", path.display()))?;
    let seed = text.trim();
    anyhow::ensure!(
        seed.len() > 2 && seed.starts_with("SU") && seed.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{} does not hold a NATS user NKEY seed (one line starting with SU)",
        path.display()
    );
    Ok(seed.to_owned())
}

/// Creates the stream if it does not exist (file storage, 2-minute duplicate window, limits retention).
pub async fn ensure_stream(js: &jetstream::Context, ns: &Namespace, def: StreamDef) -> anyhow::Result<stream::Stream> {
    let config = stream::Config {
        name: ns.stream(def.name),
        subjects: def.subjects.iter().map(|s| ns.subject(s)).collect(),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: Duration::from_secs(120),
        max_age: Duration::from_secs(30 * 24 * 3600),
        ..Default::default()
    };
    js.get_or_create_stream(config).await.with_context(|| format!("ensuring stream {}", ns.stream(def.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_prefixes_and_strips() {
        let ns = Namespace::new("t-1a2b");
        assert_eq!(ns.subject("id77.requests.request.submitted"), "t-1a2b.id77.requests.request.submitted");
        assert_eq!(ns.logical("t-1a2b.id77.requests.request.submitted"), "id77.requests.request.submitted");
        assert_eq!(ns.stream("REQUESTS"), "T_1A2B_REQUESTS");
        let prod = Namespace::default();
        assert_eq!(prod.subject("id77.x"), "id77.x");
        assert_eq!(prod.stream("REQUESTS"), "REQUESTS");
    }

    #[test]
    fn nkey_seeds_are_checked() -> anyhow::Result<()> {
        let path = std::env::temp_dir().join(format!("id77-nkey-{}.nk", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, "SUAGC3IXZ2RXGSXMJOFU4GKTTSQZFHPHXIZ2BA6NIMHB6UBHDKUYXLEYOI\n")?;
        assert!(read_nkey_seed(&path)?.starts_with("SUAG"));
        for bad in ["", "UAXYZ", "SU\nSU", "SA1234 x"] {
            std::fs::write(&path, bad)?;
            assert!(read_nkey_seed(&path).is_err(), "{bad:?}");
        }
        std::fs::remove_file(&path)?;
        assert!(read_nkey_seed(&path).is_err(), "missing file");
        Ok(())
    }
}
