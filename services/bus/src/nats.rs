//! NATS connection, subject namespace and stream set-up, and the last flush on stop.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream::{self, stream};

use id77_proto::events::StreamDef;

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

/// The servers of `ID77_NATS_URL`: one URL, or several separated by commas (the nodes of a cluster, e.g.
/// `nats://nats-0:4222,nats://nats-1:4222,nats://nats-2:4222`). The client connects to any of them, learns the
/// cluster's other nodes from the server, and reconnects to any node, without limit, after a loss.
pub fn server_addrs(urls: &str) -> anyhow::Result<Vec<async_nats::ServerAddr>> {
    let addrs = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| url.parse::<async_nats::ServerAddr>().with_context(|| format!("invalid NATS URL {url:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!addrs.is_empty(), "no NATS URL in {urls:?}");
    Ok(addrs)
}

/// Connects to NATS and returns the client and its JetStream context.
pub async fn connect(url: &str, name: &str) -> anyhow::Result<(async_nats::Client, jetstream::Context)> {
    connect_with(url, name, None).await
}

/// Connects to NATS, authenticating with the NKEY seed in `nkey_file` when given (`ID77_NATS_NKEY_FILE`: the
/// service's user in the generated server configuration), over TLS with the CA of `ID77_NATS_CA_FILE` when that is
/// set ([`crate::config::NATS_CA_FILE_ENV`], [`connect_with_tls`]), and returns the client and its JetStream context.
pub async fn connect_with(
    url: &str,
    name: &str,
    nkey_file: Option<&Path>,
) -> anyhow::Result<(async_nats::Client, jetstream::Context)> {
    connect_with_tls(url, name, nkey_file, crate::config::nats_ca_file().as_deref()).await
}

/// How long start-up waits for a first connection before it fails.
const FIRST_CONNECTION: Duration = Duration::from_secs(10);

/// [`connect_with`] with the CA file given (the value of `ID77_NATS_CA_FILE`; tests pass it directly). With a CA
/// file, TLS is required (also with a `nats://` URL) and the server's certificate must chain to that CA, which
/// async-nats then trusts instead of the system's roots, and name the URL's host. Without one, TLS happens when the
/// URL says `tls://` or the server requires it, checked against the system's roots.
///
/// The first connection is tried until it succeeds, for at most 10 s (NATS may be starting too), except when TLS
/// fails (a certificate the CA did not sign, a name it does not carry, TLS asked of a server without it): that
/// cannot cure itself, and start-up fails at once with one line naming `ID77_NATS_CA_FILE` and the URL. Once
/// connected, the client reconnects without limit to any server.
pub async fn connect_with_tls(
    url: &str,
    name: &str,
    nkey_file: Option<&Path>,
    ca_file: Option<&Path>,
) -> anyhow::Result<(async_nats::Client, jetstream::Context)> {
    connect_with_inbox(url, name, nkey_file, ca_file, None).await
}

/// The gateway's inbox prefix: the replies to its JetStream reads come there, the only inbox its NATS user may read
/// (`id77-nats-config`'s gateway permissions).
pub const GATEWAY_INBOX_PREFIX: &str = "_INBOX_gateway";

/// [`connect_with_tls`] with the client's replies on `inbox_prefix` instead of `_INBOX`: a user allowed to read its
/// own inbox prefix only (the gateway's JetStream reads, `/v1/operations`) never reads another client's replies.
pub async fn connect_with_inbox(
    url: &str,
    name: &str,
    nkey_file: Option<&Path>,
    ca_file: Option<&Path>,
    inbox_prefix: Option<&str>,
) -> anyhow::Result<(async_nats::Client, jetstream::Context)> {
    let servers = server_addrs(url)?;
    let mut options = async_nats::ConnectOptions::new();
    if let Some(prefix) = inbox_prefix {
        options = options.custom_inbox_prefix(prefix);
    }
    if let Some(path) = nkey_file {
        options = options.nkey(read_nkey_seed(path)?);
    }
    if let Some(path) = ca_file {
        check_ca_file(path)?;
        options = options.add_root_certificates(path.to_path_buf()).require_tls(true);
    }
    let options = options
        .name(name)
        .event_callback(|event| async move {
            // Permission violations and the like: otherwise silently dropped by the client.
            if let async_nats::Event::ServerError(error) = event {
                tracing::warn!(%error, "NATS server error");
            }
        })
        .connection_timeout(Duration::from_secs(5))
        // Unlimited reconnects (the default) to any server, the configured ones and those the cluster announces.
        .max_reconnects(None);
    // One attempt at a time (each tries every server once), so that each failure is seen and a TLS refusal is
    // reported at once rather than retried in the background until a timeout that says nothing of the cause.
    let deadline = tokio::time::Instant::now() + FIRST_CONNECTION;
    let client = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now()).max(Duration::from_secs(1));
        let error = match tokio::time::timeout(left, options.clone().connect(servers.clone())).await {
            Ok(Ok(client)) => break client,
            Ok(Err(error)) => error_chain(&error),
            Err(_) => "no answer".to_owned(),
        };
        if is_tls_failure(&error) {
            anyhow::bail!("{}", tls_failure(url, ca_file, &error));
        }
        if tokio::time::Instant::now() >= deadline {
            let auth = if nkey_file.is_some() { " (or refused the NKEY)" } else { "" };
            anyhow::bail!("NATS at {url} did not answer within 10 s{auth}: {error}");
        }
        tracing::debug!(%url, %error, "NATS does not answer yet, retrying");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let js = jetstream::new(client.clone());
    Ok((client, js))
}

/// How long the last NATS flush may take ([`close`]).
pub const FLUSH_TIMEOUT: Duration = Duration::from_millis(500);

/// Sends what the NATS client still buffers, if it is connected, within [`FLUSH_TIMEOUT`]. Everything that
/// matters was acknowledged already (outbox publishes, a provider's replies); what is left is consumers' acks,
/// which are not confirmed one by one: an ack lost here only brings a redelivery, which the inbox drops. Skipped while disconnected: the client answers a flush only once it has reconnected, so with NATS
/// gone an unbounded flush never ends.
pub async fn close(client: &async_nats::Client) {
    if client.connection_state() != async_nats::connection::State::Connected {
        tracing::debug!("NATS disconnected: nothing flushed");
        return;
    }
    match tokio::time::timeout(FLUSH_TIMEOUT, client.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "NATS flush on stop"),
        Err(_) => tracing::warn!("NATS flush did not finish within {FLUSH_TIMEOUT:?}"),
    }
}

/// A readable PEM file with at least one certificate: the CA of `ID77_NATS_CA_FILE`, checked before connecting so
/// that a wrong path or an empty Secret key is said at start, in one line naming the variable.
pub fn check_ca_file(path: &Path) -> anyhow::Result<()> {
    let env = crate::config::NATS_CA_FILE_ENV;
    let text = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("NATS TLS: cannot read the CA file of {env} ({}): {e}", path.display()))?;
    anyhow::ensure!(
        String::from_utf8_lossy(&text).contains("-----BEGIN CERTIFICATE-----"),
        "NATS TLS: the CA file of {env} ({}) holds no PEM certificate",
        path.display()
    );
    Ok(())
}

/// The error and its sources, on one line.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = inner.source();
    }
    text
}

/// Whether a connection error is TLS failing (certificate, name, handshake), which retrying cannot cure.
pub fn is_tls_failure(error: &str) -> bool {
    let lower = error.to_lowercase();
    ["certificate", "tls", "handshake", "corrupt message", "unknownissuer", "notvalidforname"]
        .iter()
        .any(|w| lower.contains(w))
}

/// The one line a TLS failure stops start-up with: what failed, and the setting to fix.
fn tls_failure(url: &str, ca_file: Option<&Path>, error: &str) -> String {
    let env = crate::config::NATS_CA_FILE_ENV;
    let lower = error.to_lowercase();
    if lower.contains("corrupt message") || lower.contains("invalidcontenttype") {
        // A TLS handshake answered in clear text: a CA file (or tls://) asked for TLS of a server without it.
        return format!(
            "NATS TLS with {url} failed: {error}: the server does not speak TLS, which {env} (or a tls:// URL) \
             requires; point ID77_NATS_URL at the TLS listener, or unset {env} for a server without TLS"
        );
    }
    let ca = match ca_file {
        Some(path) => format!("the CA in {env} ({})", path.display()),
        None => format!("a CA of the system's roots ({env} is not set)"),
    };
    format!(
        "NATS TLS with {url} failed: {error}: the server's certificate must be signed by {ca} and name the host \
         of the URL; set {env} to the CA that signed it (and ID77_NATS_URL to a name the certificate carries)"
    )
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

/// What every stream of the platform is given besides its name and subjects: one setting for the whole
/// platform, `ID77_STREAM_REPLICAS` ([`crate::config::stream_replicas`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// Copies of each message in a clustered JetStream (1 to 5; 3 in production, 1 on a single server).
    pub replicas: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self { replicas: crate::config::DEFAULT_STREAM_REPLICAS }
    }
}

impl StreamSettings {
    /// The settings of `ID77_STREAM_REPLICAS` (an invalid value is an error naming the variable).
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self { replicas: crate::config::stream_replicas()? })
    }
}

/// The configuration the platform wants for a stream: file storage, limits retention, 30 days, a 2-minute
/// duplicate window (the relay's `Nats-Msg-Id` dedup: a publish retried after a lost ack counts once), and the
/// configured replicas.
pub fn stream_config(ns: &Namespace, def: StreamDef, settings: StreamSettings) -> stream::Config {
    stream::Config {
        name: ns.stream(def.name),
        subjects: def.subjects.iter().map(|s| ns.subject(s)).collect(),
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: Duration::from_secs(120),
        max_age: Duration::from_secs(30 * 24 * 3600),
        num_replicas: settings.replicas,
        ..Default::default()
    }
}

/// One setting of an existing stream that differs from what the platform wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// The setting's name in JetStream's stream configuration (`num_replicas`, `storage`...).
    pub setting: &'static str,
    pub found: String,
    pub wanted: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is {} on the server, wanted {}", self.setting, self.found, self.wanted)
    }
}

/// What [`ensure_stream`] does with a stream that exists: the outcome of [`compare_stream`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamPlan {
    /// Settings JetStream changes in place (`STREAM.UPDATE`): raised replicas, subjects, limits.
    pub update: Vec<Difference>,
    /// Settings JetStream cannot change in place (storage type, retention): reported at start, never "fixed" by
    /// deleting the stream (its messages would go with it).
    pub refuse: Vec<Difference>,
    /// More replicas on the server than configured: kept (lowering is an operator's decision, `nats stream edit`),
    /// with a warning. A service started with the default (1) against a cluster's R3 streams never scales them down.
    pub keep: Vec<Difference>,
}

impl StreamPlan {
    /// Nothing to change and nothing to report.
    pub fn is_nothing(&self) -> bool {
        self.update.is_empty() && self.refuse.is_empty() && self.keep.is_empty()
    }
}

/// Compares an existing stream's configuration with the wanted one ([`stream_config`]), on the settings the
/// platform manages. Pure: [`ensure_stream`] acts on the result.
pub fn compare_stream(existing: &stream::Config, wanted: &stream::Config) -> StreamPlan {
    let mut plan = StreamPlan::default();
    let diff = |setting, found: String, wanted: String| Difference { setting, found, wanted };
    if existing.storage != wanted.storage {
        plan.refuse.push(diff("storage", storage_name(existing.storage), storage_name(wanted.storage)));
    }
    if existing.retention != wanted.retention {
        plan.refuse.push(diff("retention", retention_name(existing.retention), retention_name(wanted.retention)));
    }
    // The server reports an R1 stream as 1; 0 is "the default", also one.
    let (found_replicas, wanted_replicas) = (existing.num_replicas.max(1), wanted.num_replicas.max(1));
    if found_replicas < wanted_replicas {
        plan.update.push(diff("num_replicas", found_replicas.to_string(), wanted_replicas.to_string()));
    } else if found_replicas > wanted_replicas {
        plan.keep.push(diff("num_replicas", found_replicas.to_string(), wanted_replicas.to_string()));
    }
    let mut found_subjects = existing.subjects.clone();
    let mut wanted_subjects = wanted.subjects.clone();
    found_subjects.sort();
    wanted_subjects.sort();
    if found_subjects != wanted_subjects {
        plan.update.push(diff("subjects", found_subjects.join(","), wanted_subjects.join(",")));
    }
    if existing.duplicate_window != wanted.duplicate_window {
        plan.update.push(diff(
            "duplicate_window",
            format!("{:?}", existing.duplicate_window),
            format!("{:?}", wanted.duplicate_window),
        ));
    }
    if existing.max_age != wanted.max_age {
        plan.update.push(diff("max_age", format!("{:?}", existing.max_age), format!("{:?}", wanted.max_age)));
    }
    plan
}

/// The configuration to send with `STREAM.UPDATE`: the existing one (so that an operator's other settings, e.g.
/// `max_bytes` or placement, stay) with the differences of `plan.update` applied.
fn updated_config(existing: &stream::Config, wanted: &stream::Config) -> stream::Config {
    let mut config = existing.clone();
    config.num_replicas = existing.num_replicas.max(wanted.num_replicas);
    config.subjects = wanted.subjects.clone();
    config.duplicate_window = wanted.duplicate_window;
    config.max_age = wanted.max_age;
    config
}

fn storage_name(storage: stream::StorageType) -> String {
    match storage {
        stream::StorageType::File => "file",
        stream::StorageType::Memory => "memory",
    }
    .to_owned()
}

fn retention_name(retention: stream::RetentionPolicy) -> String {
    match retention {
        stream::RetentionPolicy::Limits => "limits",
        stream::RetentionPolicy::Interest => "interest",
        stream::RetentionPolicy::WorkQueue => "workqueue",
    }
    .to_owned()
}

/// How long a start waits for JetStream to answer a stream request while a cluster elects its leaders.
const STREAM_REQUEST_PATIENCE: Duration = Duration::from_secs(60);

/// Whether a JetStream request failed only because the cluster could not answer yet: a timeout, no responders,
/// JetStream "temporarily unavailable" (a meta leader election, a node restarting), or no placement because a peer
/// is offline (error 10005 "no suitable peers for placement, peer offline": a node of a cluster that is starting
/// or restarting; seen when a replicated stream was created before the third node joined). Anything else is final,
/// including a placement that no peer could ever satisfy.
fn transient_jetstream_error(error: &impl std::fmt::Display) -> bool {
    let text = error.to_string().to_ascii_lowercase();
    ["timed out", "no responders", "temporarily unavailable", "peer offline"].iter().any(|t| text.contains(t))
}

/// `get_or_create_stream`, tried again with a growing pause (0.5 s doubling to 4 s) for up to
/// [`STREAM_REQUEST_PATIENCE`] while the error is transient: a service that starts during an election (all the
/// pods of a rolling restart, a loaded cluster) waits for it instead of exiting and restarting in a loop.
async fn get_or_create_riding_elections(
    js: &jetstream::Context,
    wanted: &stream::Config,
) -> anyhow::Result<stream::Stream> {
    let started = tokio::time::Instant::now();
    let mut pause = Duration::from_millis(500);
    loop {
        match js.get_or_create_stream(wanted.clone()).await {
            Ok(stream) => return Ok(stream),
            Err(error) if transient_jetstream_error(&error) && started.elapsed() < STREAM_REQUEST_PATIENCE => {
                tracing::warn!(stream = %wanted.name, %error, "JetStream did not answer yet: trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(4));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Ensures a stream with the settings of `ID77_STREAM_REPLICAS` ([`ensure_stream_with`]).
pub async fn ensure_stream(js: &jetstream::Context, ns: &Namespace, def: StreamDef) -> anyhow::Result<stream::Stream> {
    ensure_stream_with(js, ns, def, StreamSettings::from_env()?).await
}

/// Creates the stream if it does not exist ([`stream_config`]); if it exists with other settings, updates it in
/// place where JetStream allows it (raised replicas, subjects, limits: [`compare_stream`]) and fails, naming the
/// stream, the setting, the value found and the value wanted, when it cannot (storage type, retention). Never
/// deletes a stream. More replicas than configured are kept, with a warning.
pub async fn ensure_stream_with(
    js: &jetstream::Context,
    ns: &Namespace,
    def: StreamDef,
    settings: StreamSettings,
) -> anyhow::Result<stream::Stream> {
    let wanted = stream_config(ns, def, settings);
    let name = wanted.name.clone();
    // get_or_create_stream returns an existing stream as it is, without comparing its configuration (async-nats
    // 0.51): the comparison is ours.
    let mut stream = get_or_create_riding_elections(js, &wanted)
        .await
        .with_context(|| format!("ensuring stream {name} ({} replica(s), ID77_STREAM_REPLICAS)", settings.replicas))?;
    let existing = stream.cached_info().config.clone();
    let plan = compare_stream(&existing, &wanted);
    if plan.is_nothing() {
        return Ok(stream);
    }
    if !plan.refuse.is_empty() {
        let found: Vec<String> = plan.refuse.iter().map(Difference::to_string).collect();
        anyhow::bail!(
            "stream {name}: {}; JetStream cannot change this in place and the platform never deletes a stream \
             (its events would go with it): move its messages to a new stream by hand (docs/adr/0014-replicated-jetstream.md)",
            found.join("; ")
        );
    }
    for keep in &plan.keep {
        tracing::warn!(stream = %name, setting = keep.setting, found = %keep.found, wanted = %keep.wanted,
            "stream has more replicas than ID77_STREAM_REPLICAS asks: kept (lower them by hand if that is meant)");
    }
    if !plan.update.is_empty() {
        let changes: Vec<String> = plan.update.iter().map(Difference::to_string).collect();
        js.update_stream(updated_config(&existing, &wanted))
            .await
            .with_context(|| format!("updating stream {name} in place ({})", changes.join("; ")))?;
        tracing::info!(stream = %name, changes = %changes.join("; "), "stream updated in place");
        stream = js.get_stream(&name).await.with_context(|| format!("reading stream {name} after its update"))?;
    }
    Ok(stream)
}

/// Whether a pull consumer's error means the server no longer holds its pull request (missed heartbeats, no
/// responders), so that the caller opens the pull again. async-nats renews a pull only 5 s after the pull's
/// expiry (35 s with a 30 s expiry): a pull request lost on its way, as when a replicated consumer was still
/// electing its leader as it was created, left a consumer idle that long while its stream filled (CI, on the
/// three-node cluster).
pub fn pull_is_lost(error: &jetstream::consumer::pull::MessagesError) -> bool {
    use jetstream::consumer::pull::MessagesErrorKind;
    matches!(error.kind(), MessagesErrorKind::MissingHeartbeat | MessagesErrorKind::NoResponders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_waits_out_an_election_but_not_a_refusal() {
        for transient in [
            "jetstream request timed out",
            "no responders",
            "JetStream system temporarily unavailable",
            "jetstream error: no suitable peers for placement, peer offline (code 400, error code 10005)",
        ] {
            assert!(transient_jetstream_error(&transient), "{transient}");
        }
        for final_error in [
            "insufficient resources",
            "stream name already in use with a different configuration",
            "no suitable peers for placement",
        ] {
            assert!(!transient_jetstream_error(&final_error), "{final_error}");
        }
    }

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

    fn wanted(replicas: usize) -> stream::Config {
        stream_config(&Namespace::new("t-1"), id77_proto::events::streams::REQUESTS, StreamSettings { replicas })
    }

    #[test]
    fn the_same_stream_needs_nothing() {
        assert!(compare_stream(&wanted(1), &wanted(1)).is_nothing());
        assert!(compare_stream(&wanted(3), &wanted(3)).is_nothing());
        // The server may report an R1 stream with 0 ("the default").
        assert!(compare_stream(&stream::Config { num_replicas: 0, ..wanted(1) }, &wanted(1)).is_nothing());
        // Subjects in another order are the same subjects.
        let mut two = wanted(1);
        two.subjects = vec!["b.>".into(), "a.>".into()];
        let mut swapped = two.clone();
        swapped.subjects.reverse();
        assert!(compare_stream(&two, &swapped).is_nothing());
        // Settings the platform does not manage (an operator's max_bytes) are not compared.
        assert!(compare_stream(&stream::Config { max_bytes: 1 << 30, ..wanted(3) }, &wanted(3)).is_nothing());
    }

    #[test]
    fn raised_replicas_and_limits_are_updated_in_place() {
        let plan = compare_stream(&wanted(1), &wanted(3));
        assert_eq!(plan.update, vec![Difference { setting: "num_replicas", found: "1".into(), wanted: "3".into() }]);
        assert!(plan.refuse.is_empty() && plan.keep.is_empty());
        let old = stream::Config {
            duplicate_window: Duration::from_secs(60),
            max_age: Duration::from_secs(3600),
            subjects: vec!["t-1.id77.requests.request.>".into()],
            ..wanted(1)
        };
        let plan = compare_stream(&old, &wanted(3));
        let settings: Vec<&str> = plan.update.iter().map(|d| d.setting).collect();
        assert_eq!(settings, ["num_replicas", "subjects", "duplicate_window", "max_age"]);
        // The update keeps what the platform does not manage and applies what it does.
        let existing = stream::Config { max_bytes: 1 << 30, ..old };
        let updated = updated_config(&existing, &wanted(3));
        assert_eq!(updated.max_bytes, 1 << 30);
        assert_eq!((updated.num_replicas, updated.subjects.clone()), (3, wanted(3).subjects));
        assert_eq!((updated.duplicate_window, updated.max_age), (wanted(3).duplicate_window, wanted(3).max_age));
        assert!(compare_stream(&updated, &wanted(3)).is_nothing());
    }

    #[test]
    fn storage_and_retention_are_reported_never_changed() {
        let memory = stream::Config {
            storage: stream::StorageType::Memory,
            retention: stream::RetentionPolicy::WorkQueue,
            ..wanted(1)
        };
        let plan = compare_stream(&memory, &wanted(3));
        assert_eq!(
            plan.refuse,
            vec![
                Difference { setting: "storage", found: "memory".into(), wanted: "file".into() },
                Difference { setting: "retention", found: "workqueue".into(), wanted: "limits".into() },
            ]
        );
        assert_eq!(plan.refuse[0].to_string(), "storage is memory on the server, wanted file");
        // The replicas are still planned (reported with the refusal, applied once the stream is fixed).
        assert_eq!(plan.update.len(), 1);
    }

    #[test]
    fn more_replicas_than_configured_are_kept() {
        let plan = compare_stream(&wanted(3), &wanted(1));
        assert!(plan.update.is_empty() && plan.refuse.is_empty());
        assert_eq!(plan.keep, vec![Difference { setting: "num_replicas", found: "3".into(), wanted: "1".into() }]);
        assert_eq!(updated_config(&wanted(3), &wanted(1)).num_replicas, 3);
    }

    #[test]
    fn several_urls_make_several_servers() -> anyhow::Result<()> {
        assert_eq!(server_addrs("nats://127.0.0.1:4230")?.len(), 1);
        let three = server_addrs("nats://n0:4222, nats://n1:4222,nats://n2:4222,")?;
        let hosts: Vec<String> = three.iter().map(|a| a.host().to_owned()).collect();
        assert_eq!(hosts, ["n0", "n1", "n2"]);
        assert!(server_addrs("").is_err());
        assert!(server_addrs(" , ").is_err());
        let error = server_addrs("nats://n0:4222,http://[::1").err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(error.contains("http://[::1"), "{error}");
        Ok(())
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
