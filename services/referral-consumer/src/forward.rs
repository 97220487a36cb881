//! The CLI's `forward` and `print` modes.
//!
//! `forward` POSTs each referral as JSON to the organisation's own HTTP endpoint, signed with HMAC-SHA256 of
//! the exact body (`X-Id77-Signature: sha256=<hex>`), and retries with exponential backoff until the endpoint
//! answers 2xx. The 2xx answer decides: `{"decision": "accept"}` or `{"decision": "decline", "reason": "..."}`;
//! `{"decision": "later"}` (or an empty body) leaves the referral unanswered for now. Withdrawals and reminders
//! are POSTed the same way (`"type": "referral.withdrawn"` / `"referral.reminded"`); their answer is ignored.
//!
//! The endpoint is reached over `https://` (rustls; the system's roots plus the CA certificates of `--ca-file`).
//! Plain `http://` goes only to a loopback address (a local reverse proxy or sidecar) unless
//! `--allow-insecure-http` says otherwise. Redirects are not followed.
//!
//! A referral is answered at most once: the reply carries `Nats-Msg-Id: reply-<provider>-<referral_id>-<tag>`
//! ([`crate::MessageIds`]: JetStream drops a repeat, and no other provider can predict the id) and routing
//! ignores a reply to a decided referral. The endpoint may still see a referral twice
//! (after a crash between its answer and the ack): it should treat `referral_id` as an idempotency key.

use std::collections::HashSet;
use std::error::Error as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use hmac::{Hmac, KeyInit, Mac};
use id77_proto::routing::v1::ReferralOffered;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::decision::{Decision, Quote};
use crate::handler::Handler;
use crate::incoming::Notice;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Id77-Signature";

/// `sha256=<lowercase hex of HMAC-SHA256(key, body)>`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this cannot happen.
        Err(_) => return String::new(),
    };
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + bytes.len() * 2);
    hex.push_str("sha256=");
    for b in bytes.iter() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// The JSON a referral is forwarded as.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ForwardedReferral {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub referral_id: String,
    pub request_id: String,
    pub offer_id: String,
    pub offer_code: String,
    pub offer_title: String,
    pub member_id: String,
    pub provider_code: String,
    pub subject: String,
    pub description: String,
    pub attempt: i32,
    pub respond_by: Option<String>,
    pub assignment: String,
    /// "free", "flat", "daily_rate", "per_inhabitant", "on_quote" (accept with `amount_cents`), or "" if unknown.
    pub price_kind: String,
}

impl ForwardedReferral {
    pub fn new(r: &ReferralOffered) -> Self {
        Self {
            kind: "referral.offered",
            referral_id: r.referral_id.clone(),
            request_id: r.request_id.clone(),
            offer_id: r.offer_id.clone(),
            offer_code: r.offer_code.clone(),
            offer_title: r.offer_title.clone(),
            member_id: r.member_id.clone(),
            provider_code: r.provider_code.clone(),
            subject: r.subject.clone(),
            description: r.description.clone(),
            attempt: r.attempt,
            respond_by: r.respond_by.as_ref().and_then(id77_bus::time::from_proto).map(|t| t.to_rfc3339()),
            assignment: r.assignment.clone(),
            price_kind: r.price_kind.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct ForwardedNotice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    referral_id: &'a str,
    request_id: &'a str,
    reason: &'a str,
    /// A withdrawal of a referral the provider had accepted (the member cancelled the request before its
    /// completion): stop the work. False for a reminder or a withdrawal of an unanswered referral.
    after_acceptance: bool,
}

impl<'a> ForwardedNotice<'a> {
    fn new(notice: &'a Notice) -> Self {
        match notice {
            Notice::Withdrawn(w) => Self {
                kind: "referral.withdrawn",
                referral_id: &w.referral_id,
                request_id: &w.request_id,
                reason: &w.reason,
                after_acceptance: w.after_acceptance,
            },
            Notice::Reminded(r) => Self {
                kind: "referral.reminded",
                referral_id: &r.referral_id,
                request_id: &r.request_id,
                reason: "",
                after_acceptance: false,
            },
        }
    }
}

/// The endpoint's answer.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
struct EndpointAnswer {
    decision: String,
    #[serde(default)]
    reason: Option<String>,
    /// With an accept of an offer priced on quote: the amount in euro cents, VAT excluded.
    #[serde(default)]
    amount_cents: Option<i64>,
    #[serde(default)]
    quote_note: Option<String>,
}

/// The decision in an endpoint's 2xx body: `Ok(None)` for "later" (or an empty body).
pub fn parse_answer(body: &[u8]) -> Result<Option<Decision>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let answer: EndpointAnswer =
        serde_json::from_slice(body).map_err(|e| format!("the endpoint's answer is not the expected JSON: {e}"))?;
    match answer.decision.as_str() {
        "accept" => match answer.amount_cents {
            None if answer.quote_note.is_some() => Err("quote_note goes with amount_cents".to_owned()),
            None => Ok(Some(Decision::Accept)),
            Some(amount) => Quote::new(amount, answer.quote_note.as_deref().unwrap_or_default())
                .map(|q| Some(Decision::AcceptQuoted(q))),
        },
        "decline" => Decision::decline(answer.reason.as_deref().unwrap_or_default()).map(Some),
        "later" => Ok(None),
        other => Err(format!("unknown decision {other:?} (accept, decline or later)")),
    }
}

/// How the forwarder reaches its endpoint (`--ca-file`, `--allow-insecure-http`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardOptions {
    /// PEM file of CA certificates trusted for `https://` besides the system's roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Accept a plain `http://` URL to a host that is not a loopback address (referrals then cross the network
    /// unencrypted).
    pub allow_insecure_http: bool,
}

impl ForwardOptions {
    /// Checks what can be checked before the first POST (at start, before connecting to NATS): the CA file is
    /// readable and holds certificates.
    pub fn check(&self) -> anyhow::Result<()> {
        if let Some(path) = &self.ca_file {
            read_ca_file(path)?;
        }
        Ok(())
    }
}

/// Whether a URL's host is a loopback address (`127.0.0.0/8`, `::1`, `::ffff:127.x.y.z`) or `localhost`.
pub fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback(),
        Err(_) => false,
    }
}

/// The endpoint's URL, checked: `https://`, or `http://` to a loopback address (to any host with
/// `allow_insecure_http`).
pub fn check_url(url: &str, allow_insecure_http: bool) -> anyhow::Result<reqwest::Url> {
    let parsed = reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("--url {url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if is_loopback(&parsed) || allow_insecure_http => Ok(parsed),
        "http" => anyhow::bail!(
            "--url {url}: plain http:// is only accepted to a loopback address (127.0.0.1, ::1, localhost): use \
             https://, or give --allow-insecure-http (ID77_FORWARD_ALLOW_INSECURE_HTTP=true) to send referrals \
             unencrypted over the network"
        ),
        other => anyhow::bail!(
            "--url {url}: must be an https:// endpoint (or http:// to a loopback address), not {other}://"
        ),
    }
}

/// The CA certificates of a PEM file (one or more `-----BEGIN CERTIFICATE-----` blocks).
fn read_ca_file(path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("--ca-file {}: {e}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| anyhow::anyhow!("--ca-file {}: not a PEM certificate bundle: {}", path.display(), chain(&e)))?;
    anyhow::ensure!(
        !certificates.is_empty(),
        "--ca-file {}: no PEM certificate in it (expected -----BEGIN CERTIFICATE----- blocks)",
        path.display()
    );
    Ok(certificates)
}

/// An error and its sources on one line (reqwest's own message is only "error sending request for url").
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// A URL for the logs: without a password it may carry.
fn shown(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

/// A failed POST, in words an operator can act on.
fn explain_send_error(url: &reqwest::Url, error: &reqwest::Error) -> String {
    // reqwest's own message ("error sending request for url (...)") says nothing its sources do not.
    let cause = error.source().map(chain).unwrap_or_else(|| chain(error));
    let lower = cause.to_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        format!(
            "TLS with {} failed: {cause} — the endpoint's certificate must be valid for {host} and signed by a CA \
             of the system's roots or of --ca-file (ID77_FORWARD_CA_FILE)",
            shown(url),
            host = url.host_str().unwrap_or_default()
        )
    } else {
        format!("POST {}: {cause}", shown(url))
    }
}

/// Forwards referrals to an HTTP endpoint.
pub struct Forwarder {
    client: reqwest::Client,
    url: reqwest::Url,
    key: Vec<u8>,
    /// First retry delay; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    shutdown: CancellationToken,
    /// Referrals answered by this process (a redelivery within one run is not forwarded again).
    answered: Mutex<HashSet<String>>,
}

impl Forwarder {
    /// `key` is the HMAC key shared with the endpoint (at least 16 bytes). Default options: the system's roots,
    /// `http://` to loopback only.
    pub fn new(url: &str, key: Vec<u8>, shutdown: CancellationToken) -> anyhow::Result<Self> {
        Self::with_options(url, key, &ForwardOptions::default(), shutdown)
    }

    /// As [`Forwarder::new`], with a CA file and the `http://` policy.
    pub fn with_options(
        url: &str,
        key: Vec<u8>,
        options: &ForwardOptions,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let url = check_url(url, options.allow_insecure_http)?;
        anyhow::ensure!(key.len() >= 16, "the HMAC key must be at least 16 bytes");
        if url.scheme() == "http" && !is_loopback(&url) {
            let url = shown(&url);
            tracing::warn!(%url, "forwarding over plain http:// to a remote host (--allow-insecure-http)");
        }
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            // A redirect could lead to another host or to http://: the endpoint's URL is the one configured.
            .redirect(reqwest::redirect::Policy::none())
            .use_rustls_tls();
        if let Some(path) = &options.ca_file {
            for certificate in read_ca_file(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder.build().map_err(|e| {
            let hint = if options.ca_file.is_some() { " (check --ca-file)" } else { "" };
            anyhow::anyhow!("HTTP client: {}{hint}", chain(&e))
        })?;
        Ok(Self {
            client,
            url,
            key,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            shutdown,
            answered: Mutex::new(HashSet::new()),
        })
    }

    /// POSTs a referral once, without retrying: the endpoint's decision (`None`: "later"), or why it failed
    /// (unreachable, TLS refused, non-2xx answer, unusable answer).
    pub async fn offer_once(&self, referral: &ReferralOffered) -> anyhow::Result<Option<Decision>> {
        let body = serde_json::to_vec(&ForwardedReferral::new(referral))?;
        let answer = self.post_once(&referral.referral_id, &body).await.map_err(anyhow::Error::msg)?;
        parse_answer(&answer).map_err(anyhow::Error::msg)
    }

    /// One POST: the 2xx body, or why not.
    async fn post_once(&self, referral_id: &str, body: &[u8]) -> Result<Vec<u8>, String> {
        let response = self
            .client
            .post(self.url.clone())
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, signature(&self.key, body))
            .header("X-Id77-Referral-Id", referral_id)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| explain_send_error(&self.url, &e))?;
        let status = response.status();
        if status.is_success() {
            return response.bytes().await.map(|b| b.to_vec()).map_err(|e| explain_send_error(&self.url, &e));
        }
        if status.is_redirection() {
            let location = response.headers().get("Location").and_then(|l| l.to_str().ok()).unwrap_or_default();
            return Err(format!(
                "the endpoint answered {status} to {location:?}: redirects are not followed, give that URL to --url"
            ));
        }
        Err(format!("the endpoint answered {status}"))
    }

    /// Reads the key from a file (trailing newline removed).
    pub fn read_key(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
        let mut key =
            std::fs::read(path).map_err(|e| anyhow::anyhow!("reading the HMAC key {}: {e}", path.display()))?;
        while key.last().is_some_and(|b| b.is_ascii_whitespace()) {
            key.pop();
        }
        Ok(key)
    }

    /// POSTs `body` until a 2xx answer (or shutdown: `None`), with exponential backoff.
    async fn post_until_ok(&self, referral_id: &str, body: &[u8]) -> Option<Vec<u8>> {
        let mut delay = self.initial_backoff;
        let mut attempt = 1u32;
        loop {
            match self.post_once(referral_id, body).await {
                Ok(answer) => return Some(answer),
                Err(error) => {
                    tracing::warn!(%error, attempt, ?delay, "referral not delivered to the endpoint; retrying")
                }
            }
            tokio::select! {
                _ = self.shutdown.cancelled() => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(self.max_backoff);
            attempt = attempt.saturating_add(1);
        }
    }
}

impl Handler for Forwarder {
    fn referral<'a>(&'a self, referral: &'a ReferralOffered) -> BoxFuture<'a, Option<Decision>> {
        Box::pin(async move {
            if self.answered.lock().is_ok_and(|a| a.contains(&referral.referral_id)) {
                tracing::info!("already answered in this run; not forwarded again");
                return None;
            }
            let body = serde_json::to_vec(&ForwardedReferral::new(referral)).ok()?;
            let answer = self.post_until_ok(&referral.referral_id, &body).await?;
            match parse_answer(&answer) {
                Ok(Some(decision)) => {
                    if let Ok(mut answered) = self.answered.lock() {
                        answered.insert(referral.referral_id.clone());
                    }
                    Some(decision)
                }
                Ok(None) => {
                    tracing::info!("the endpoint will answer later");
                    None
                }
                Err(error) => {
                    tracing::error!(%error, "the endpoint's answer is unusable; referral left for later");
                    None
                }
            }
        })
    }

    fn notice<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let body = ForwardedNotice::new(notice);
            let Ok(json) = serde_json::to_vec(&body) else {
                return true;
            };
            self.post_until_ok(body.referral_id, &json).await.is_some()
        })
    }
}

/// Prints each referral and notice as one JSON line on stdout and answers nothing: the referrals stay
/// pending (delivered again later) for another mode, or for an agent, to answer.
pub struct Printer;

impl Handler for Printer {
    fn referral<'a>(&'a self, referral: &'a ReferralOffered) -> BoxFuture<'a, Option<Decision>> {
        if let Ok(line) = serde_json::to_string(&ForwardedReferral::new(referral)) {
            println!("{line}");
        }
        Box::pin(async { None })
    }

    fn notice<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, bool> {
        if let Ok(line) = serde_json::to_string(&ForwardedNotice::new(notice)) {
            println!("{line}");
        }
        Box::pin(async { true })
    }

    fn retry_later(&self) -> Duration {
        Duration::from_secs(300)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn endpoint_answers_are_parsed_strictly() {
        assert_eq!(parse_answer(br#"{"decision":"accept"}"#), Ok(Some(Decision::Accept)));
        assert_eq!(
            parse_answer(br#"{"decision":"accept","amount_cents":245000,"quote_note":" Devis 12 "}"#),
            Ok(Some(Decision::AcceptQuoted(Quote { amount_cents: 245_000, note: "Devis 12".into() })))
        );
        assert!(parse_answer(br#"{"decision":"accept","amount_cents":0}"#).is_err());
        assert!(parse_answer(br#"{"decision":"accept","amount_cents":1000000001}"#).is_err());
        assert!(parse_answer(br#"{"decision":"accept","quote_note":"x"}"#).is_err());
        assert_eq!(
            parse_answer(br#"{"decision":"decline","reason":" complet "}"#),
            Ok(Some(Decision::Decline("complet".into())))
        );
        assert_eq!(parse_answer(b""), Ok(None));
        assert_eq!(parse_answer(br#"{"decision":"later"}"#), Ok(None));
        assert!(parse_answer(br#"{"decision":"decline"}"#).is_err(), "a decline needs a reason");
        assert!(parse_answer(br#"{"decision":"maybe"}"#).is_err());
        assert!(parse_answer(b"OK").is_err());
    }

    #[test]
    fn a_withdrawal_after_acceptance_says_so() {
        use id77_proto::routing::v1::{ReferralReminded, ReferralWithdrawn};
        let withdrawn = Notice::Withdrawn(ReferralWithdrawn {
            referral_id: "r1".into(),
            request_id: "q1".into(),
            reason: "request cancelled: projet abandonné".into(),
            after_acceptance: true,
            ..Default::default()
        });
        let json = serde_json::to_value(ForwardedNotice::new(&withdrawn)).ok();
        assert_eq!(
            json,
            Some(serde_json::json!({"type": "referral.withdrawn", "referral_id": "r1", "request_id": "q1",
                "reason": "request cancelled: projet abandonné", "after_acceptance": true}))
        );
        let reminded = Notice::Reminded(ReferralReminded {
            referral_id: "r2".into(),
            request_id: "q2".into(),
            ..Default::default()
        });
        let json = serde_json::to_value(ForwardedNotice::new(&reminded)).ok();
        assert_eq!(
            json,
            Some(serde_json::json!({"type": "referral.reminded", "referral_id": "r2", "request_id": "q2",
                "reason": "", "after_acceptance": false}))
        );
    }

    #[test]
    fn forwarders_need_an_https_or_loopback_url_and_a_real_key() {
        let token = CancellationToken::new();
        assert!(Forwarder::new("http://127.0.0.1:9/hook", vec![7; 32], token.clone()).is_ok());
        assert!(Forwarder::new("https://caue77.example.fr/hook", vec![7; 32], token.clone()).is_ok());
        assert!(Forwarder::new("ftp://x", vec![7; 32], token.clone()).is_err());
        assert!(Forwarder::new("not a url", vec![7; 32], token.clone()).is_err());
        assert!(Forwarder::new("http://127.0.0.1:9/hook", vec![7; 8], token).is_err());
    }

    #[test]
    fn plain_http_goes_to_loopback_only_unless_allowed() {
        for loopback in [
            "http://127.0.0.1:9/h",
            "http://127.1.2.3/h",
            "http://[::1]:9/h",
            "http://localhost:9/h",
            "http://LOCALHOST/h",
            "http://[::ffff:127.0.0.1]/h",
        ] {
            assert!(check_url(loopback, false).is_ok(), "{loopback}");
        }
        for remote in [
            "http://10.0.0.1/h",
            "http://caue77.example.fr/h",
            "http://[2001:db8::1]/h",
            "http://localhost.example.fr/h",
            "http://0.0.0.0/h",
        ] {
            let refused = check_url(remote, false).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(refused.contains("--allow-insecure-http"), "{remote}: {refused}");
            assert!(check_url(remote, true).is_ok(), "{remote} allowed");
        }
        assert!(check_url("https://10.0.0.1/h", false).is_ok());
        assert!(check_url("ftp://127.0.0.1/h", true).is_err());
        let with_password = check_url("https://caue:s3cret@caue77.example.fr/h", false).map(|u| shown(&u)).ok();
        assert_eq!(with_password.as_deref(), Some("https://caue:***@caue77.example.fr/h"));
    }
}
