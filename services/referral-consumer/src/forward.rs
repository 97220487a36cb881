//! The CLI's `forward` and `print` modes.
//!
//! `forward` POSTs each referral as JSON to the organisation's own HTTP endpoint, signed with HMAC-SHA256 of
//! the exact body (`X-Id77-Signature: sha256=<hex>`), and retries with exponential backoff until the endpoint
//! answers 2xx. The 2xx answer decides: `{"decision": "accept"}` or `{"decision": "decline", "reason": "..."}`;
//! `{"decision": "later"}` (or an empty body) leaves the referral unanswered for now. Withdrawals and reminders
//! are POSTed the same way (`"type": "referral.withdrawn"` / `"referral.reminded"`); their answer is ignored.
//!
//! A referral is answered at most once: the reply carries `Nats-Msg-Id: reply-<referral_id>` (JetStream drops
//! a repeat) and routing ignores a reply to a decided referral. The endpoint may still see a referral twice
//! (after a crash between its answer and the ack): it should treat `referral_id` as an idempotency key.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use hmac::{Hmac, KeyInit, Mac};
use id77_proto::routing::v1::ReferralOffered;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::{Decision, Handler, Notice, Quote};

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
            respond_by: r.respond_by.as_ref().and_then(id77_platform::time::from_proto).map(|t| t.to_rfc3339()),
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

/// Forwards referrals to an HTTP endpoint.
pub struct Forwarder {
    client: reqwest::Client,
    url: String,
    key: Vec<u8>,
    /// First retry delay; doubles up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    shutdown: CancellationToken,
    /// Referrals answered by this process (a redelivery within one run is not forwarded again).
    answered: Mutex<HashSet<String>>,
}

impl Forwarder {
    /// `key` is the HMAC key shared with the endpoint (at least 16 bytes).
    pub fn new(url: &str, key: Vec<u8>, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(url).map_err(|e| anyhow::anyhow!("--url {url:?} is not a URL: {e}"))?;
        anyhow::ensure!(
            parsed.scheme() == "http",
            "--url must be an http:// endpoint (put TLS in a local reverse proxy)"
        );
        anyhow::ensure!(key.len() >= 16, "the HMAC key must be at least 16 bytes");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| anyhow::anyhow!("HTTP client: {e}"))?;
        Ok(Self {
            client,
            url: url.to_owned(),
            key,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(60),
            shutdown,
            answered: Mutex::new(HashSet::new()),
        })
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
        let signature = signature(&self.key, body);
        let mut delay = self.initial_backoff;
        let mut attempt = 1u32;
        loop {
            let sent = self
                .client
                .post(&self.url)
                .header("Content-Type", "application/json")
                .header(SIGNATURE_HEADER, &signature)
                .header("X-Id77-Referral-Id", referral_id)
                .body(body.to_vec())
                .send()
                .await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    return Some(response.bytes().await.map(|b| b.to_vec()).unwrap_or_default());
                }
                Ok(response) => {
                    tracing::warn!(status = %response.status(), attempt, ?delay, "endpoint refused the referral; retrying")
                }
                Err(error) => tracing::warn!(%error, attempt, ?delay, "endpoint unreachable; retrying"),
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
    fn forwarders_need_an_http_url_and_a_real_key() {
        let token = CancellationToken::new();
        assert!(Forwarder::new("http://127.0.0.1:9/hook", vec![7; 32], token.clone()).is_ok());
        assert!(Forwarder::new("ftp://x", vec![7; 32], token.clone()).is_err());
        assert!(Forwarder::new("not a url", vec![7; 32], token.clone()).is_err());
        assert!(Forwarder::new("http://127.0.0.1:9/hook", vec![7; 8], token).is_err());
    }
}
