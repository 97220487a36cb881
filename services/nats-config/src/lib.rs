//! The NATS side of access control: who may publish and subscribe to what, enforced by the server.
//!
//! [`generate`] writes, into one folder:
//! - `nats-server.conf`: listen address, JetStream store, and an `authorization` block with one NKEY user per
//!   platform service ([`SERVICES`]) and one per provider, each with exact allow-lists ([`service_permissions`],
//!   [`provider_permissions`]). No deny rules, and no `$JS.>` for providers (DESIGN §4: nats-server before 2.10
//!   let a user allowed on `$JS.>` reach admin APIs, and queue subscriptions bypassed deny rules). There is no
//!   `no_auth_user`: a connection without a known NKEY is refused;
//!   The gateway has a user too ([`GATEWAY`], [`gateway_permissions`]): it only subscribes to the few subjects of
//!   its live updates and to membership's access revocations;
//! - `<user>.nk`: each user's NKEY seed (mode 0600), `membership.nk` ... `billing.nk`, `gateway.nk` and
//!   `provider-<code>.nk`.
//!   Seeds already in the folder are reused, so re-running gives the same configuration and never rotates a
//!   credential; delete a seed file to rotate that user's key;
//! - `users.json`: user → kind, provider code, public key and seed file name (no secrets);
//! - `authorization.conf`: the `authorization` block alone ([`AUTHORIZATION_CONF`]), for a server configured
//!   elsewhere (the official NATS Helm chart includes it, `deploy/nats/values.yaml`).
//!
//! With [`Tls`] ([`Options::with_tls`]), the client listener gets a `tls` block: partners connect from outside with
//! `tls://` and the CA, still as their NKEY user, and a client that does not do TLS is refused (ADR 0014,
//! "Partners over TLS").
//!
//! The providers come from the platform image alone ([`ProviderSources`]): codes given (`--provider`,
//! `ID77_PROVIDERS`, e.g. the chart's `providers:`), the catalogue's database ([`providers_from_database`]) or a
//! seed file; a source checkout's seed ([`DEV_CATALOGUE_SEED`]) only as the development default.
//!
//! A provider's user can only read its own referrals, through its own durable consumer `provider-<code>`, and
//! publish on its own reply subject; it has no create permission, so [`ensure_consumers`] (run as a service user)
//! creates the consumers beforehand with the same definition the referral consumer uses.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use async_nats::jetstream;
use id77_platform::Namespace;
use id77_platform::streams::{
    BILLING, CATALOGUE, LIVE_SUBJECTS, MEMBERSHIP, REFERRALS, REQUESTS, ROUTING, StreamDef, is_valid_subject_token,
    referral_reply_subject,
};
use id77_referral_consumer::{consumer_config, durable_name, inbox_prefix};
use nkeys::{KeyPair, KeyPairType};
use serde::{Deserialize, Serialize};

/// The platform services that get a NATS user, in the order they appear in the configuration.
pub const SERVICES: [&str; 5] = ["membership", "catalogue", "requests", "routing", "billing"];

/// What one platform service publishes (the event catalogue, `docs/asyncapi.yaml`): the source of its publish
/// allow-list ([`service_permissions`]).
#[derive(Debug, Clone, Copy)]
pub struct ServiceEvents {
    pub service: &'static str,
    /// Its own stream: it publishes its events on the stream's subjects (`id77.<service>.>`), and no other
    /// service does.
    pub stream: StreamDef,
    /// Other subjects it publishes on (logical, before the deployment's prefix).
    pub also: &'static [&'static str],
    /// Its durable consumers: each dead-letters on `id77.deadletter.<durable>` (`id77_platform::consumer`).
    pub durables: &'static [&'static str],
}

/// The event catalogue of the platform services, in [`SERVICES`] order. A service that gets a new durable
/// consumer must be listed here, or its dead letters are refused (the unit test
/// `every_durable_of_the_sources_is_in_the_catalogue` reads the services' sources to catch it).
pub const CATALOGUE_OF_EVENTS: [ServiceEvents; 5] = [
    ServiceEvents { service: "membership", stream: MEMBERSHIP, also: &[], durables: &[] },
    ServiceEvents {
        service: "catalogue",
        stream: CATALOGUE,
        also: &[],
        durables: &["catalogue-members", "catalogue-referrals"],
    },
    ServiceEvents {
        service: "requests",
        stream: REQUESTS,
        also: &[],
        durables: &["requests-members", "requests-offers", "requests-referrals", "requests-users", "requests-quotes"],
    },
    ServiceEvents {
        service: "routing",
        stream: ROUTING,
        // The referrals it hands to providers (stream REFERRALS); never their replies.
        also: &["id77.referrals.*.offered"],
        durables: &[
            "routing-offers",
            "routing-requests",
            "routing-cancellations",
            "routing-replies",
            "routing-members",
            "routing-quotes",
        ],
    },
    ServiceEvents {
        service: "billing",
        stream: BILLING,
        also: &[],
        durables: &[
            "billing-offers",
            "billing-referrals",
            "billing-request-completions",
            "billing-request-cancellations",
            "billing-members",
        ],
    },
];

/// The catalogue entry of a service.
pub fn service_events(service: &str) -> Option<&'static ServiceEvents> {
    CATALOGUE_OF_EVENTS.iter().find(|e| e.service == service)
}

/// The gateway's user: subscribe-only, to the subjects of its live updates.
pub const GATEWAY: &str = "gateway";
/// The one subject the gateway may publish on, which nothing reads (an empty allow-list would not restrict).
pub const GATEWAY_PUBLISH_NOTHING: &str = "_id77_gateway.none";

/// File name of the generated server configuration.
pub const SERVER_CONF: &str = "nats-server.conf";
/// File name of the users' summary.
pub const USERS_JSON: &str = "users.json";
/// File name of the `authorization { ... }` block alone, for a server whose configuration is made elsewhere (the
/// official NATS Helm chart includes it: `deploy/nats/values.yaml`).
pub const AUTHORIZATION_CONF: &str = "authorization.conf";

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the server listens, e.g. `127.0.0.1:4223`.
    pub listen: SocketAddr,
    /// JetStream store folder (made absolute).
    pub store_dir: PathBuf,
    /// Subject and stream prefix of the deployment (`ID77_NATS_PREFIX`, empty in production).
    pub prefix: String,
    /// Provider codes (validated, deduplicated and sorted by [`Options::new`]).
    pub providers: Vec<String>,
    /// TLS on the client listener ([`Options::with_tls`]): how partners connect from outside. None: plain.
    pub tls: Option<Tls>,
}

/// The client listener's TLS (`tls { ... }` of the server configuration), the way partners reach NATS from
/// outside (`tls://`, with the CA that signed `cert_file`). Authentication stays the NKEY users'. Unless
/// `allow_non_tls`, the listener is TLS only: a client that does not do TLS is refused before it can send anything
/// (credentials, subjects, payloads), and that holds for the in-cluster services too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// The server's certificate chain (PEM), for the names partners connect to.
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
    /// CA certificates that client certificates are checked against; only used with `verify`.
    pub ca_file: Option<PathBuf>,
    /// Require a client certificate signed by `ca_file` as well as the NKEY (mutual TLS).
    pub verify: bool,
    /// TLS before anything else (`handshake_first`, nats-server 2.10.4 and later): not even the server's INFO
    /// goes out in clear; clients must start with TLS (async-nats `tls_first`, the consumer's `--nats-tls-first`).
    pub handshake_first: bool,
    /// `allow_non_tls`: clients that do not do TLS are accepted too, on the same port (nats-server has one client
    /// listener). A transition setting for in-cluster services without the CA: the server then no longer enforces
    /// TLS for anyone (the referral consumer still refuses clear text on its side).
    pub allow_non_tls: bool,
}

impl Tls {
    /// Checks the combination and makes the paths absolute.
    pub fn validated(mut self) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !self.cert_file.as_os_str().is_empty() && !self.key_file.as_os_str().is_empty(),
            "TLS needs a certificate file and a key file"
        );
        anyhow::ensure!(!self.verify || self.ca_file.is_some(), "TLS verify (client certificates) needs a CA file");
        anyhow::ensure!(
            !(self.handshake_first && self.allow_non_tls),
            "TLS handshake first and allow-non-TLS exclude each other: a plain client would wait forever"
        );
        let absolute =
            |p: &Path| std::path::absolute(p).with_context(|| format!("making the TLS file {} absolute", p.display()));
        self.cert_file = absolute(&self.cert_file)?;
        self.key_file = absolute(&self.key_file)?;
        self.ca_file = self.ca_file.as_deref().map(absolute).transpose()?;
        Ok(self)
    }
}

impl Options {
    pub fn new(
        listen: SocketAddr,
        store_dir: &Path,
        prefix: &str,
        providers: impl IntoIterator<Item = String>,
    ) -> anyhow::Result<Self> {
        let providers = validate_providers(providers)?;
        validate_prefix(prefix)?;
        let store_dir = std::path::absolute(store_dir)
            .with_context(|| format!("making the store folder {} absolute", store_dir.display()))?;
        Ok(Self { listen, store_dir, prefix: prefix.to_owned(), providers, tls: None })
    }

    /// The same, with TLS on the client listener (validated, [`Tls::validated`]).
    pub fn with_tls(mut self, tls: Tls) -> anyhow::Result<Self> {
        self.tls = Some(tls.validated()?);
        Ok(self)
    }
}

/// Checks, deduplicates and sorts provider codes (each is a subject token and a file name).
pub fn validate_providers(providers: impl IntoIterator<Item = String>) -> anyhow::Result<Vec<String>> {
    let mut codes = BTreeSet::new();
    for code in providers {
        anyhow::ensure!(
            is_valid_subject_token(&code),
            "provider code {code:?} must be 1 to 64 lowercase letters, digits or dashes"
        );
        codes.insert(code);
    }
    Ok(codes.into_iter().collect())
}

fn validate_prefix(prefix: &str) -> anyhow::Result<()> {
    let token_ok = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    anyhow::ensure!(
        prefix.is_empty() || prefix.split('.').all(token_ok),
        "prefix {prefix:?} must be dot-separated tokens of letters, digits, '-' or '_'"
    );
    Ok(())
}

/// The provider codes of a catalogue seed file (`{"providers": [{"code": ...}, ...], ...}`).
pub fn providers_from_catalogue(path: &Path) -> anyhow::Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Seed {
        providers: Vec<Provider>,
    }
    #[derive(Deserialize)]
    struct Provider {
        code: String,
    }
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let seed: Seed = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    validate_providers(seed.providers.into_iter().map(|p| p.code)).with_context(|| format!("in {}", path.display()))
}

/// The catalogue seed file of a source checkout, relative to its root: the providers' development default
/// (the platform image does not ship it).
pub const DEV_CATALOGUE_SEED: &str = "services/catalogue/seed/catalogue.json";

/// The provider codes of the catalogue's database (its `provider` table), e.g. the catalogue service's
/// `ID77_DATABASE_URL`; a role that may read that table is enough.
pub async fn providers_from_database(url: &str) -> anyhow::Result<Vec<String>> {
    use sqlx::{ConnectOptions, Connection};
    let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url)
        .context("the catalogue's database URL is not valid")?
        .disable_statement_logging();
    let what = format!(
        "the catalogue's database {} at {}:{}",
        options.get_database().unwrap_or_default(),
        options.get_host(),
        options.get_port()
    );
    let connect = sqlx::PgConnection::connect_with(&options);
    let mut conn = tokio::time::timeout(std::time::Duration::from_secs(30), connect)
        .await
        .map_err(|_| anyhow::anyhow!("connecting to {what}: no answer within 30s"))?
        .with_context(|| format!("connecting to {what}"))?;
    let codes: Vec<String> = sqlx::query_scalar("SELECT code FROM provider ORDER BY code")
        .fetch_all(&mut conn)
        .await
        .with_context(|| format!("reading the providers of {what}"))?;
    conn.close().await.ok();
    validate_providers(codes).with_context(|| format!("in {what}"))
}

/// Where the provider codes come from; every source given adds its codes.
#[derive(Debug, Clone, Default)]
pub struct ProviderSources {
    /// Codes given as such (`--provider`, `ID77_PROVIDERS`: e.g. the keys of the chart's `providers:`).
    pub codes: Vec<String>,
    /// The catalogue's database (`--catalogue-database-url`).
    pub catalogue_database_url: Option<String>,
    /// A catalogue seed file (`--catalogue`).
    pub catalogue_file: Option<PathBuf>,
}

/// The providers found, and where from (for the log).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedProviders {
    pub codes: Vec<String>,
    pub sources: Vec<String>,
}

impl ProviderSources {
    /// Whether no source is given.
    pub fn is_empty(&self) -> bool {
        self.codes.iter().all(|c| c.trim().is_empty())
            && self.catalogue_database_url.as_deref().is_none_or(|u| u.trim().is_empty())
            && self.catalogue_file.is_none()
    }

    /// The codes of every source given, validated, deduplicated and sorted. With none given, the development
    /// default: `dev_seed` (a source checkout's [`DEV_CATALOGUE_SEED`]) when that file exists; else no provider.
    pub async fn resolve(&self, dev_seed: &Path) -> anyhow::Result<ResolvedProviders> {
        let mut codes = Vec::new();
        let mut sources = Vec::new();
        let given: Vec<String> = self.codes.iter().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect();
        if !given.is_empty() {
            sources.push(format!("{} given", given.iter().collect::<BTreeSet<_>>().len()));
            codes.extend(given);
        }
        if let Some(url) = self.catalogue_database_url.as_deref().filter(|u| !u.trim().is_empty()) {
            let found = providers_from_database(url).await?;
            sources.push(format!("{} from the catalogue's database", found.len()));
            codes.extend(found);
        }
        if let Some(path) = &self.catalogue_file {
            let found = providers_from_catalogue(path)?;
            sources.push(format!("{} from {}", found.len(), path.display()));
            codes.extend(found);
        }
        if self.is_empty() && dev_seed.is_file() {
            let found = providers_from_catalogue(dev_seed)?;
            sources.push(format!("{} from {} (development default: no source given)", found.len(), dev_seed.display()));
            codes.extend(found);
        }
        Ok(ResolvedProviders { codes: validate_providers(codes)?, sources })
    }
}

/// Subject permissions of one user: allow-lists only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// A platform service ([`CATALOGUE_OF_EVENTS`]): it publishes only its own subjects under the deployment's prefix
/// (its stream's, the others of its entry, and the dead-letter subject of each of its durables), plus the
/// JetStream API, acks and inboxes (a publish's ack comes back on an `_INBOX`); it reads every service's events
/// (`id77.>`). Services are trusted with the whole JetStream API of the account (they create streams and
/// consumers); they answer no core NATS requests, so no `allow_responses`. An unknown service gets no event
/// subject at all.
pub fn service_permissions(ns: &Namespace, service: &str) -> Permissions {
    let mut publish = Vec::new();
    if let Some(events) = service_events(service) {
        publish.extend(events.stream.subjects.iter().chain(events.also).map(|s| ns.subject(s)));
        publish.extend(events.durables.iter().map(|d| ns.subject(&format!("id77.deadletter.{d}"))));
    }
    publish.extend(["$JS.API.>".to_owned(), "$JS.ACK.>".to_owned(), "_INBOX.>".to_owned()]);
    let mut subscribe = vec!["id77.>".to_owned()];
    if !ns.prefix().is_empty() {
        subscribe.push(ns.subject("id77.>"));
    }
    subscribe.push("_INBOX.>".to_owned());
    Permissions { publish, subscribe }
}

/// A provider: publish its replies and the three JetStream subjects of its own durable consumer (info, pull next,
/// ack), and subscribe only to its own inbox prefix, on which its pulled messages and API answers arrive. Exact
/// subjects; the only wildcards are under its own ack subject and its own inbox. No `allow_responses`: its
/// acks are already allowed by subject, and it answers no requests.
pub fn provider_permissions(ns: &Namespace, code: &str) -> Permissions {
    let stream = ns.stream(REFERRALS.name);
    let durable = durable_name(code);
    Permissions {
        publish: vec![
            ns.subject(&referral_reply_subject(code)),
            format!("$JS.API.CONSUMER.INFO.{stream}.{durable}"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"),
            format!("$JS.ACK.{stream}.{durable}.>"),
        ],
        subscribe: vec![format!("{}.>", inbox_prefix(code))],
    }
}

/// The gateway: core subscriptions to the live update subjects ([`LIVE_SUBJECTS`]) and to membership's access
/// revocations ([`id77_platform::revocation::SUBJECT`], refused tokens) under the deployment's prefix, exactly; no
/// JetStream API, no inbox, nothing to publish but an inert subject.
pub fn gateway_permissions(ns: &Namespace) -> Permissions {
    let subjects = LIVE_SUBJECTS.iter().copied().chain([id77_platform::revocation::SUBJECT]);
    Permissions {
        publish: vec![GATEWAY_PUBLISH_NOTHING.to_owned()],
        subscribe: subjects.map(|s| ns.subject(s)).collect(),
    }
}

/// One user of the generated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// `membership`, ..., or `provider-<code>`; also the seed file's stem.
    pub name: String,
    /// The provider code, for a provider's user.
    pub provider: Option<String>,
    /// The NKEY public key (`U...`).
    pub public_key: String,
    pub permissions: Permissions,
}

impl User {
    pub fn seed_file(&self) -> String {
        seed_file_name(&self.name)
    }

    pub fn kind(&self) -> &'static str {
        if self.provider.is_some() {
            "provider"
        } else if self.name == GATEWAY {
            "gateway"
        } else {
            "service"
        }
    }
}

/// The seed file name of a user.
pub fn seed_file_name(user: &str) -> String {
    format!("{user}.nk")
}

/// The user name of a provider (its seed file is `provider-<code>.nk`).
pub fn provider_user(code: &str) -> String {
    format!("provider-{code}")
}

/// What [`generate`] wrote.
#[derive(Debug, Clone)]
pub struct Generated {
    pub dir: PathBuf,
    pub users: Vec<User>,
    /// Users whose seed was created by this run (the others were reused).
    pub created: Vec<String>,
}

/// Generates the configuration, seeds and summary into `dir` (created, mode 0700), reusing existing seeds.
pub fn generate(dir: &Path, options: &Options) -> anyhow::Result<Generated> {
    create_private_dir(dir)?;
    let ns = Namespace::new(options.prefix.clone());
    let mut wanted: Vec<(String, Option<String>, Permissions)> =
        SERVICES.iter().map(|s| ((*s).to_owned(), None, service_permissions(&ns, s))).collect();
    wanted.push((GATEWAY.to_owned(), None, gateway_permissions(&ns)));
    for code in &options.providers {
        wanted.push((provider_user(code), Some(code.clone()), provider_permissions(&ns, code)));
    }
    let mut users = Vec::with_capacity(wanted.len());
    let mut created = Vec::new();
    for (name, provider, permissions) in wanted {
        let (key, new) = load_or_create_seed(&dir.join(seed_file_name(&name)))?;
        if new {
            created.push(name.clone());
        }
        users.push(User { name, provider, public_key: key.public_key(), permissions });
    }
    write_atomically(&dir.join(SERVER_CONF), render_server_conf(options, &users)?.as_bytes())?;
    write_atomically(&dir.join(AUTHORIZATION_CONF), render_authorization_conf(&users)?.as_bytes())?;
    write_atomically(&dir.join(USERS_JSON), render_users_json(&users)?.as_bytes())?;
    Ok(Generated { dir: dir.to_owned(), users, created })
}

/// The `nats-server.conf` text.
pub fn render_server_conf(options: &Options, users: &[User]) -> anyhow::Result<String> {
    let store = options
        .store_dir
        .to_str()
        .with_context(|| format!("the store folder {} is not UTF-8", options.store_dir.display()))?;
    let mut out = String::new();
    out.push_str("# Generated by id77-nats-config: do not edit, re-run it (the seeds in this folder are kept).\n");
    out.push_str("# One NKEY user per platform service and per provider; allow-lists only, no deny rules.\n");
    out.push_str(&format!("listen: {}\n\n", quote(&options.listen.to_string())?));
    if let Some(tls) = &options.tls {
        out.push_str(&render_tls(tls)?);
    }
    out.push_str(&format!("jetstream {{\n  store_dir: {}\n}}\n\n", quote(store)?));
    out.push_str(&render_authorization(users)?);
    Ok(out)
}

/// The `tls { ... }` block of the client listener (and `allow_non_tls` when asked).
pub fn render_tls(tls: &Tls) -> anyhow::Result<String> {
    let path =
        |p: &Path| p.to_str().with_context(|| format!("the TLS file {} is not UTF-8", p.display())).and_then(quote);
    let mut out = String::new();
    if tls.allow_non_tls {
        out.push_str(
            "# TLS offered, not required (allow_non_tls): clear-text clients are accepted on this port too.\n",
        );
    } else {
        out.push_str("# The client listener is TLS only: a client that does not do TLS is refused.\n");
    }
    out.push_str("tls {\n");
    out.push_str(&format!("  cert_file: {}\n  key_file: {}\n", path(&tls.cert_file)?, path(&tls.key_file)?));
    if let Some(ca) = &tls.ca_file {
        out.push_str(&format!("  ca_file: {}\n", path(ca)?));
    }
    if tls.verify {
        out.push_str("  verify: true\n");
    }
    if tls.handshake_first {
        out.push_str("  handshake_first: true\n");
    }
    out.push_str("}\n");
    if tls.allow_non_tls {
        out.push_str("allow_non_tls: true\n");
    }
    out.push('\n');
    Ok(out)
}

/// [`AUTHORIZATION_CONF`]: the `authorization` block alone, to include in a configuration made elsewhere.
pub fn render_authorization_conf(users: &[User]) -> anyhow::Result<String> {
    let mut out = String::new();
    out.push_str("# Generated by id77-nats-config: do not edit, re-run it (the seeds in its folder are kept).\n");
    out.push_str("# Include it in the server configuration (the official chart: config.merge \"$include\").\n");
    out.push_str(&render_authorization(users)?);
    Ok(out)
}

/// The `authorization { users: [...] }` block.
fn render_authorization(users: &[User]) -> anyhow::Result<String> {
    let mut out = String::new();
    out.push_str("authorization {\n  users: [\n");
    for user in users {
        let what = match &user.provider {
            Some(code) => format!("provider {code}"),
            None if user.name == GATEWAY => "gateway: live updates, subscribe only".to_owned(),
            None => "platform service".to_owned(),
        };
        out.push_str(&format!("    # {} ({what})\n", user.name));
        out.push_str(&format!("    {{\n      nkey: {}\n      permissions: {{\n", quote(&user.public_key)?));
        out.push_str(&format!("        publish: {{ allow: {} }}\n", quote_list(&user.permissions.publish)?));
        out.push_str(&format!("        subscribe: {{ allow: {} }}\n", quote_list(&user.permissions.subscribe)?));
        out.push_str("      }\n    }\n");
    }
    out.push_str("  ]\n}\n");
    Ok(out)
}

/// The `users.json` text: `{"users": {"<name>": {"kind", "provider"?, "public_key", "seed_file"}}}`.
pub fn render_users_json(users: &[User]) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Entry<'a> {
        kind: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        provider: Option<&'a str>,
        public_key: &'a str,
        seed_file: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        inbox_prefix: Option<String>,
    }
    #[derive(Serialize)]
    struct Summary<'a> {
        users: BTreeMap<&'a str, Entry<'a>>,
    }
    let users = users
        .iter()
        .map(|u| {
            let entry = Entry {
                kind: u.kind(),
                provider: u.provider.as_deref(),
                public_key: &u.public_key,
                seed_file: u.seed_file(),
                inbox_prefix: u.provider.as_deref().map(inbox_prefix),
            };
            (u.name.as_str(), entry)
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&Summary { users })?;
    text.push('\n');
    Ok(text)
}

/// A double-quoted string of the NATS configuration language (JSON escaping; control characters refused).
fn quote(value: &str) -> anyhow::Result<String> {
    anyhow::ensure!(!value.chars().any(char::is_control), "{value:?} holds a control character");
    Ok(serde_json::to_string(value)?)
}

fn quote_list(values: &[String]) -> anyhow::Result<String> {
    let quoted = values.iter().map(|v| quote(v)).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(format!("[{}]", quoted.join(", ")))
}

/// Reads a user seed, or creates one (mode 0600) when the file does not exist. Returns whether it was created.
pub fn load_or_create_seed(path: &Path) -> anyhow::Result<(KeyPair, bool)> {
    match fs::read_to_string(path) {
        Ok(text) => {
            let key = KeyPair::from_seed(text.trim())
                .map_err(|e| anyhow::anyhow!("{} does not hold an NKEY seed: {e}", path.display()))?;
            anyhow::ensure!(
                key.key_pair_type() == KeyPairType::User,
                "{} holds an NKEY seed that is not a user's",
                path.display()
            );
            restrict_mode(path)?;
            Ok((key, false))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = KeyPair::new_user();
            let seed = key.seed().map_err(|e| anyhow::anyhow!("encoding an NKEY seed: {e}"))?;
            let mut file = private_options()
                .create_new(true)
                .write(true)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(format!("{seed}\n").as_bytes()).with_context(|| format!("writing {}", path.display()))?;
            file.sync_all().with_context(|| format!("writing {}", path.display()))?;
            Ok((key, true))
        }
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

fn private_options() -> fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

fn restrict_mode(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {} to mode 0600", path.display()))?;
        }
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).with_context(|| format!("creating {}", dir.display()))
}

/// Writes `path` through a temporary file and a rename, so a reader never sees half a file.
fn write_atomically(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).with_context(|| format!("bad path {}", path.display()))?;
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    fs::write(&tmp, contents).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// What [`ensure_consumers`] found or created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnsuredConsumers {
    /// The `REFERRALS` stream's name (with the deployment's prefix).
    pub stream: String,
    /// Durable names, one per provider, in provider order.
    pub durables: Vec<String>,
}

/// Creates the `REFERRALS` stream if it is missing (the platform's definition) and each provider's durable pull
/// consumer `provider-<code>` (filter `id77.referrals.<code>.offered`, explicit ack). An existing consumer is
/// kept, or updated to that definition where the server allows it. Run it as a platform service user.
pub async fn ensure_consumers(
    js: &jetstream::Context,
    ns: &Namespace,
    providers: &[String],
) -> anyhow::Result<EnsuredConsumers> {
    let providers = validate_providers(providers.iter().cloned())?;
    let stream = id77_platform::nats::ensure_stream(js, ns, REFERRALS).await?;
    let stream_name = ns.stream(REFERRALS.name);
    let mut durables = Vec::with_capacity(providers.len());
    for code in &providers {
        let config = consumer_config(ns, code);
        let durable = durable_name(code);
        let consumer: jetstream::consumer::PullConsumer = stream
            .create_consumer(config.clone())
            .await
            .with_context(|| format!("creating consumer {durable} on stream {stream_name}"))?;
        let info = consumer.cached_info();
        anyhow::ensure!(
            info.config.filter_subject == config.filter_subject
                && info.config.ack_policy == jetstream::consumer::AckPolicy::Explicit,
            "consumer {durable} on stream {stream_name} exists with another definition (filter {:?}); delete it \
             and run this again",
            info.config.filter_subject
        );
        tracing::info!(stream = %stream_name, durable = %durable, filter = %config.filter_subject, "consumer ready");
        durables.push(durable);
    }
    Ok(EnsuredConsumers { stream: stream_name, durables })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("id77-nats-config-unit-{}-{}", std::process::id(), uuid_like()))
    }

    fn uuid_like() -> String {
        KeyPair::new_user().public_key()[1..13].to_ascii_lowercase()
    }

    fn options(providers: &[&str], prefix: &str) -> anyhow::Result<Options> {
        Options::new(
            SocketAddr::from(([127, 0, 0, 1], 4223)),
            Path::new("/var/lib/id77/js"),
            prefix,
            providers.iter().map(|p| (*p).to_owned()),
        )
    }

    #[test]
    fn providers_get_exactly_their_own_subjects() {
        let permissions = provider_permissions(&Namespace::default(), "caue77");
        assert_eq!(
            permissions.publish,
            [
                "id77.referrals.caue77.reply",
                "$JS.API.CONSUMER.INFO.REFERRALS.provider-caue77",
                "$JS.API.CONSUMER.MSG.NEXT.REFERRALS.provider-caue77",
                "$JS.ACK.REFERRALS.provider-caue77.>",
            ]
        );
        assert_eq!(permissions.subscribe, ["_INBOX_provider_caue77.>"]);

        let prefixed = provider_permissions(&Namespace::new("t1"), "caue77");
        assert_eq!(
            prefixed.publish,
            [
                "t1.id77.referrals.caue77.reply",
                "$JS.API.CONSUMER.INFO.T1_REFERRALS.provider-caue77",
                "$JS.API.CONSUMER.MSG.NEXT.T1_REFERRALS.provider-caue77",
                "$JS.ACK.T1_REFERRALS.provider-caue77.>",
            ]
        );
        assert_eq!(prefixed.subscribe, ["_INBOX_provider_caue77.>"]);
    }

    #[test]
    fn no_provider_subject_reaches_beyond_its_own() {
        for ns in [Namespace::default(), Namespace::new("t1")] {
            let permissions = provider_permissions(&ns, "dir-eau");
            for subject in permissions.publish.iter().chain(&permissions.subscribe) {
                assert!(!subject.contains('*'), "{subject}");
                assert!(!subject.starts_with("$JS.>") && !subject.starts_with("$JS.API.>"), "{subject}");
                assert!(subject != ">" && !subject.starts_with("_INBOX."), "{subject}");
                if let Some(stem) = subject.strip_suffix(".>") {
                    assert!(
                        stem.ends_with("provider-dir-eau") || stem == "_INBOX_provider_dir-eau",
                        "only its own acks and inbox end in a wildcard: {subject}"
                    );
                } else {
                    assert!(subject.contains("dir-eau"), "{subject}");
                }
            }
        }
    }

    #[test]
    fn services_publish_only_their_own_subjects() {
        let requests = service_permissions(&Namespace::default(), "requests");
        assert_eq!(
            requests.publish,
            [
                "id77.requests.>",
                "id77.deadletter.requests-members",
                "id77.deadletter.requests-offers",
                "id77.deadletter.requests-referrals",
                "id77.deadletter.requests-users",
                "id77.deadletter.requests-quotes",
                "$JS.API.>",
                "$JS.ACK.>",
                "_INBOX.>"
            ]
        );
        assert_eq!(requests.subscribe, ["id77.>", "_INBOX.>"]);
        let routing = service_permissions(&Namespace::new("t1"), "routing");
        assert_eq!(
            &routing.publish[..3],
            ["t1.id77.routing.>", "t1.id77.referrals.*.offered", "t1.id77.deadletter.routing-offers"]
        );
        assert_eq!(routing.subscribe, ["id77.>", "t1.id77.>", "_INBOX.>"]);
        let membership = service_permissions(&Namespace::default(), "membership");
        assert_eq!(membership.publish, ["id77.membership.>", "$JS.API.>", "$JS.ACK.>", "_INBOX.>"]);
        assert_eq!(
            service_permissions(&Namespace::default(), "nobody").publish,
            ["$JS.API.>", "$JS.ACK.>", "_INBOX.>"]
        );

        // No service may publish another's events, a provider's reply, or on the whole tree.
        for ns in [Namespace::default(), Namespace::new("t1")] {
            for service in SERVICES {
                let publish = service_permissions(&ns, service).publish;
                assert!(!publish.iter().any(|s| s.ends_with("id77.>") || s == ">"), "{service}: {publish:?}");
                assert!(!publish.iter().any(|s| s.contains(".reply")), "{service}: {publish:?}");
                for other in SERVICES.iter().filter(|o| **o != service) {
                    let theirs = ns.subject(&format!("id77.{other}."));
                    assert!(!publish.iter().any(|s| s.starts_with(&theirs)), "{service} may publish {other}'s events");
                    assert!(!publish.iter().any(|s| s.contains(&format!("deadletter.{other}-"))), "{service}");
                }
            }
        }
        assert_eq!(CATALOGUE_OF_EVENTS.map(|e| e.service), SERVICES);
    }

    /// The durables of each service's sources (`ConsumerSpec::new(..., "<durable>" | DURABLE_X, ...)`, `const
    /// DURABLE_X: &str = "<durable>"`) are those of [`CATALOGUE_OF_EVENTS`]: a new consumer whose dead letters
    /// the server would refuse is caught here.
    #[test]
    fn every_durable_of_the_sources_is_in_the_catalogue() -> anyhow::Result<()> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for events in CATALOGUE_OF_EVENTS {
            let mut found = BTreeSet::new();
            let mut stack = vec![root.join(events.service).join("src")];
            while let Some(dir) = stack.pop() {
                for entry in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
                    let path = entry?.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path.extension().is_some_and(|e| e == "rs") {
                        let text = fs::read_to_string(&path)?;
                        for line in text.lines().filter(|l| l.contains("ConsumerSpec::new(") || l.contains("DURABLE")) {
                            let quoted = line.split('"').skip(1).step_by(2);
                            found.extend(
                                quoted
                                    .filter(|q| q.starts_with(&format!("{}-", events.service)))
                                    .filter(|q| q.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
                                    .map(str::to_owned),
                            );
                        }
                    }
                }
            }
            let listed: BTreeSet<String> = events.durables.iter().map(|d| (*d).to_owned()).collect();
            assert_eq!(found, listed, "durables of {} (services/{}/src)", events.service, events.service);
        }
        Ok(())
    }

    #[test]
    fn the_gateway_may_only_read_its_live_subjects() {
        let prefixed = gateway_permissions(&Namespace::new("t1"));
        assert_eq!(prefixed.publish, [GATEWAY_PUBLISH_NOTHING]);
        assert_eq!(
            prefixed.subscribe,
            [
                "t1.id77.requests.request.status_changed",
                "t1.id77.requests.message.posted",
                "t1.id77.routing.referral.offered",
                "t1.id77.membership.access.revoked"
            ]
        );
        assert!(prefixed.subscribe.iter().all(|s| !s.contains('>') && !s.contains('*')));
    }

    #[test]
    fn the_configuration_lists_every_user_with_allow_lists_only() -> anyhow::Result<()> {
        let dir = temp_dir();
        let generated = generate(&dir, &options(&["dir-eau", "caue77", "caue77"], "")?)?;
        let names: Vec<_> = generated.users.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "membership",
                "catalogue",
                "requests",
                "routing",
                "billing",
                "gateway",
                "provider-caue77",
                "provider-dir-eau"
            ]
        );
        assert_eq!(generated.created.len(), 8);
        let conf = fs::read_to_string(dir.join(SERVER_CONF))?;
        assert!(conf.contains("listen: \"127.0.0.1:4223\"\n"), "{conf}");
        assert!(conf.contains("jetstream {\n  store_dir: \"/var/lib/id77/js\"\n}"), "{conf}");
        let settings: Vec<&str> = conf.lines().filter(|l| !l.trim_start().starts_with('#')).collect();
        assert!(!settings.iter().any(|l| l.contains("deny")), "{conf}");
        assert!(!conf.contains("no_auth_user") && !conf.contains("password"), "{conf}");
        assert!(!conf.contains("\"$JS.>\""), "{conf}");
        assert_eq!(conf.matches("nkey: \"U").count(), 8);
        for user in &generated.users {
            assert!(conf.contains(&format!("nkey: \"{}\"", user.public_key)), "{}", user.name);
            let seed = fs::read_to_string(dir.join(user.seed_file()))?;
            assert!(seed.starts_with("SU") && seed.ends_with('\n'));
            assert!(!conf.contains(seed.trim()), "no seed in the configuration");
        }
        let caue = generated.users.iter().find(|u| u.name == "provider-caue77").map(|u| u.public_key.clone());
        let caue = caue.unwrap_or_default();
        let block = conf.split(&caue).nth(1).unwrap_or_default().split("    }\n").next().unwrap_or_default();
        assert!(block.contains(
            "publish: { allow: [\"id77.referrals.caue77.reply\", \"$JS.API.CONSUMER.INFO.REFERRALS.provider-caue77\", \
             \"$JS.API.CONSUMER.MSG.NEXT.REFERRALS.provider-caue77\", \"$JS.ACK.REFERRALS.provider-caue77.>\"] }"
        ));
        assert!(block.contains("subscribe: { allow: [\"_INBOX_provider_caue77.>\"] }"), "{block}");

        let users: serde_json::Value = serde_json::from_str(&fs::read_to_string(dir.join(USERS_JSON))?)?;
        assert_eq!(users["users"]["provider-caue77"]["public_key"].as_str(), Some(caue.as_str()));
        assert_eq!(users["users"]["provider-caue77"]["seed_file"].as_str(), Some("provider-caue77.nk"));
        assert_eq!(users["users"]["routing"]["kind"].as_str(), Some("service"));
        assert_eq!(users["users"]["gateway"]["kind"].as_str(), Some("gateway"));
        let gateway = generated.users.iter().find(|u| u.name == "gateway").map(|u| u.public_key.clone());
        let gateway = gateway.unwrap_or_default();
        let block = conf.split(&gateway).nth(1).unwrap_or_default().split("    }\n").next().unwrap_or_default();
        assert!(block.contains("publish: { allow: [\"_id77_gateway.none\"] }"), "{block}");
        assert!(
            block.contains(
                "subscribe: { allow: [\"id77.requests.request.status_changed\", \"id77.requests.message.posted\", \
                 \"id77.routing.referral.offered\", \"id77.membership.access.revoked\"] }"
            ),
            "{block}"
        );
        assert!(!fs::read_to_string(dir.join(USERS_JSON))?.contains("\"SU"), "no seed in users.json");
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn rerunning_keeps_the_seeds_and_the_output() -> anyhow::Result<()> {
        let dir = temp_dir();
        let first = generate(&dir, &options(&["caue77"], "")?)?;
        let conf = fs::read(dir.join(SERVER_CONF))?;
        let json = fs::read(dir.join(USERS_JSON))?;
        let second = generate(&dir, &options(&["caue77"], "")?)?;
        assert!(second.created.is_empty());
        assert_eq!(first.users, second.users);
        assert_eq!(fs::read(dir.join(SERVER_CONF))?, conf);
        assert_eq!(fs::read(dir.join(USERS_JSON))?, json);
        // A new provider gets a new seed; the others stay.
        let third = generate(&dir, &options(&["caue77", "dir-eau"], "")?)?;
        assert_eq!(third.created, ["provider-dir-eau"]);
        assert_eq!(&third.users[..7], &first.users[..]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for user in &third.users {
                let mode = fs::metadata(dir.join(user.seed_file()))?.permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", user.name);
            }
            assert_eq!(fs::metadata(&dir)?.permissions().mode() & 0o777, 0o700);
        }
        // A damaged seed is an error, never silently replaced.
        fs::write(dir.join("routing.nk"), "garbage")?;
        assert!(generate(&dir, &options(&["caue77"], "")?).is_err());
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn tls_makes_the_client_listener_tls_only_unless_told() -> anyhow::Result<()> {
        let dir = temp_dir();
        let tls = Tls {
            cert_file: "/etc/nats/tls/tls.crt".into(),
            key_file: "/etc/nats/tls/tls.key".into(),
            ..Default::default()
        };
        generate(&dir, &options(&["caue77"], "")?.with_tls(tls.clone())?)?;
        let conf = fs::read_to_string(dir.join(SERVER_CONF))?;
        assert!(
            conf.contains("tls {\n  cert_file: \"/etc/nats/tls/tls.crt\"\n  key_file: \"/etc/nats/tls/tls.key\"\n}\n"),
            "{conf}"
        );
        assert!(!conf.contains("allow_non_tls") && !conf.contains("verify") && !conf.contains("handshake_first"));
        assert!(conf.contains("# The client listener is TLS only"), "{conf}");
        // The users are the same with or without TLS, and authorization.conf holds them alone.
        let auth = fs::read_to_string(dir.join(AUTHORIZATION_CONF))?;
        assert!(auth.contains("authorization {") && !auth.contains("listen") && !auth.contains("tls"), "{auth}");
        assert_eq!(auth.matches("nkey: \"U").count(), 7);
        let block = conf.split("authorization {").nth(1).unwrap_or_default();
        assert_eq!(auth.split("authorization {").nth(1), Some(block));

        let every =
            Tls { ca_file: Some("/etc/nats/tls/ca.crt".into()), verify: true, handshake_first: true, ..tls.clone() };
        let text = render_tls(&every.validated()?)?;
        assert!(
            text.ends_with("  ca_file: \"/etc/nats/tls/ca.crt\"\n  verify: true\n  handshake_first: true\n}\n\n"),
            "{text}"
        );
        let mixed = render_tls(&Tls { allow_non_tls: true, ..tls.clone() }.validated()?)?;
        assert!(mixed.contains("}\nallow_non_tls: true\n"), "{mixed}");
        // Refused: verify without a CA, handshake first with clear text allowed, no certificate.
        assert!(Tls { verify: true, ..tls.clone() }.validated().is_err());
        assert!(Tls { handshake_first: true, allow_non_tls: true, ..tls.clone() }.validated().is_err());
        assert!(Tls::default().validated().is_err());
        // Relative paths are made absolute (nats-server would read them from its working directory).
        let relative = Tls { cert_file: "c.pem".into(), key_file: "k.pem".into(), ..Default::default() };
        assert!(relative.validated()?.cert_file.is_absolute());
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn bad_inputs_are_refused() -> anyhow::Result<()> {
        for bad in ["", "CAUE", "a.b", "*", ">", "a b", "../x"] {
            assert!(options(&[bad], "").is_err(), "{bad:?}");
        }
        for bad in ["a b", "a..b", "a.*", ">"] {
            assert!(options(&["caue77"], bad).is_err(), "{bad:?}");
        }
        assert!(quote("a\nb").is_err());
        assert_eq!(quote("/a \"b\"\\c")?, "\"/a \\\"b\\\"\\\\c\"");
        Ok(())
    }

    #[tokio::test]
    async fn providers_come_from_every_source_given_and_the_seed_only_by_default() -> anyhow::Result<()> {
        let dir = temp_dir();
        fs::create_dir_all(&dir)?;
        let seed = dir.join("catalogue.json");
        fs::write(&seed, r#"{"providers": [{"code": "from-seed"}]}"#)?;
        let missing = dir.join("no-such-seed.json");

        // Given codes (flags, or ID77_PROVIDERS split on commas): no file is read, even when present.
        let given =
            ProviderSources { codes: vec!["b".into(), " a ".into(), "".into(), "b".into()], ..Default::default() };
        let resolved = given.resolve(&seed).await?;
        assert_eq!(resolved.codes, ["a", "b"]);
        assert_eq!(resolved.sources, ["2 given"]);
        // A file given adds its codes.
        let both = ProviderSources { catalogue_file: Some(seed.clone()), ..given.clone() };
        assert_eq!(both.resolve(&missing).await?.codes, ["a", "b", "from-seed"]);
        // Nothing given: the development seed when there is one (a source checkout), else no provider (the image).
        let none = ProviderSources::default();
        let resolved = none.resolve(&seed).await?;
        assert_eq!(resolved.codes, ["from-seed"]);
        assert!(resolved.sources[0].ends_with("(development default: no source given)"), "{:?}", resolved.sources);
        assert_eq!(none.resolve(&missing).await?, ResolvedProviders::default());
        // Bad codes are refused, whatever their source.
        let bad = ProviderSources { codes: vec!["Bad.Code".into()], ..Default::default() };
        assert!(bad.resolve(&missing).await.is_err());
        // An unreachable database is an error, not an empty list.
        let down = ProviderSources {
            catalogue_database_url: Some("postgres://nobody@127.0.0.1:1/id77_catalogue".into()),
            ..Default::default()
        };
        let error = down.resolve(&missing).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(error.starts_with("connecting to the catalogue's database id77_catalogue at 127.0.0.1:1"), "{error}");
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn the_demo_catalogue_lists_the_providers() -> anyhow::Result<()> {
        let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(DEV_CATALOGUE_SEED);
        let providers = providers_from_catalogue(&seed)?;
        assert!(providers.contains(&"caue77".to_owned()), "{providers:?}");
        assert!(providers.iter().all(|p| is_valid_subject_token(p)));

        let dir = temp_dir();
        fs::create_dir_all(&dir)?;
        let file = dir.join("catalogue.json");
        fs::write(&file, r#"{"providers": [{"code": "b", "name": "B"}, {"code": "a"}], "offers": []}"#)?;
        assert_eq!(providers_from_catalogue(&file)?, ["a", "b"]);
        fs::write(&file, r#"{"providers": [{"code": "B.x"}]}"#)?;
        assert!(providers_from_catalogue(&file).is_err());
        fs::write(&file, r#"{"offers": []}"#)?;
        assert!(providers_from_catalogue(&file).is_err());
        fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
