//! What to generate: the listen address, the JetStream store, the deployment's prefix, the providers and the
//! client listener's TLS, each validated.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use id77_proto::events::is_valid_subject_token;

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

pub(crate) fn validate_prefix(prefix: &str) -> anyhow::Result<()> {
    let token_ok = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    anyhow::ensure!(
        prefix.is_empty() || prefix.split('.').all(token_ok),
        "prefix {prefix:?} must be dot-separated tokens of letters, digits, '-' or '_'"
    );
    Ok(())
}
