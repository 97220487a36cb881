//! `id77-admin`: operator tools. `reconcile` (ADR 0013, "A reconciler") reads requests, routing and billing
//! through their gRPC read APIs as a coordinator and checks each request against its referrals, quotes and
//! invoices ([`check`]); since the services converge through events, it waits a settle period and re-reads the
//! requests it found before reporting them.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use serde::Serialize;

pub mod bootstrap;
pub mod check;
pub mod cli;
pub mod model;
pub mod reader;

pub use check::{Finding, FindingKind, check};
pub use model::Snapshot;
pub use reader::{Credentials, Reader, ReaderConfig};

/// Exit status when every request is consistent.
pub const EXIT_CONSISTENT: u8 = 0;
/// Exit status when something is still inconsistent after the settle period.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status when a service cannot be read (or the command is misused).
pub const EXIT_UNREADABLE: u8 = 2;

/// What a reconciliation checked and found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Records read in the first, full read.
    pub requests: usize,
    pub referrals: usize,
    pub quotes: usize,
    pub invoices: usize,
    /// Requests read again after the settle period (those the first read found inconsistent).
    pub rechecked: usize,
    /// What is still inconsistent after the re-read.
    pub findings: Vec<Finding>,
}

impl Report {
    /// [`EXIT_CONSISTENT`] or [`EXIT_FINDINGS`].
    pub fn exit_code(&self) -> u8 {
        if self.findings.is_empty() { EXIT_CONSISTENT } else { EXIT_FINDINGS }
    }

    /// One line per finding (`request <id>: <kind>: <detail>`), then the closing count line.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for finding in &self.findings {
            let _ = writeln!(text, "{finding}");
        }
        let _ = writeln!(
            text,
            "reconcile: {} requests, {} referrals, {} quotes, {} invoices checked, {} findings",
            self.requests,
            self.referrals,
            self.quotes,
            self.invoices,
            self.findings.len()
        );
        text
    }

    /// The report as one JSON document (and a newline).
    pub fn json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        json.push('\n');
        json
    }
}

/// Where the reconciler reads from: the services ([`Reader`]), or a fixture in tests.
pub(crate) trait Source {
    /// Every request, referral, quote and invoice.
    fn everything(&self) -> impl Future<Output = anyhow::Result<Snapshot>>;
    /// One request (absent when requests does not have it) and its referrals, quotes and invoices.
    fn one_request(&self, id: &str) -> impl Future<Output = anyhow::Result<Snapshot>>;
}

/// Reads every service, checks, and after `config.settle` re-reads the requests found inconsistent: the report
/// keeps only what is still inconsistent then. An error means a service could not be read (exit 2).
pub async fn reconcile(config: &ReaderConfig) -> anyhow::Result<Report> {
    let reader = Reader::connect(config).await?;
    reconcile_from(&reader, config.settle).await
}

pub(crate) async fn reconcile_from(source: &impl Source, settle: Duration) -> anyhow::Result<Report> {
    let first = source.everything().await?;
    let mut report = Report {
        requests: distinct(first.requests.iter().map(|r| &r.id)),
        referrals: distinct(first.referrals.iter().map(|r| &r.id)),
        quotes: distinct(first.quotes.iter().map(|q| &q.id)),
        invoices: distinct(first.invoices.iter().map(|i| &i.id)),
        rechecked: 0,
        findings: check(&first),
    };
    if report.findings.is_empty() {
        return Ok(report);
    }
    let concerned: BTreeSet<String> = report.findings.iter().filter_map(|f| f.request_id.clone()).collect();
    // A document that names no request at all cannot converge: it stays reported.
    let mut findings: Vec<Finding> = report.findings.drain(..).filter(|f| f.request_id.is_none()).collect();
    tokio::time::sleep(settle).await;
    for id in &concerned {
        let again = source.one_request(id).await?;
        findings.extend(check(&again));
    }
    report.rechecked = concerned.len();
    report.findings = findings;
    Ok(report)
}

fn distinct<'a>(ids: impl Iterator<Item = &'a String>) -> usize {
    ids.collect::<BTreeSet<_>>().len()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::time::Instant;

    use anyhow::bail;

    use super::*;
    use crate::model::{
        Agreement, QuoteRecord, QuoteStatus, ReferralRecord, ReferralStatus, RequestRecord, RequestStatus,
    };

    /// A fixture: the first read, then what each request looks like when read again.
    struct Fixture {
        first: Snapshot,
        later: HashMap<String, Snapshot>,
        reread: RefCell<Vec<String>>,
    }

    impl Source for Fixture {
        async fn everything(&self) -> anyhow::Result<Snapshot> {
            Ok(self.first.clone())
        }

        async fn one_request(&self, id: &str) -> anyhow::Result<Snapshot> {
            self.reread.borrow_mut().push(id.to_owned());
            match self.later.get(id) {
                Some(snapshot) => Ok(snapshot.clone()),
                None => bail!("routing (http://127.0.0.1:7054): ListReferrals (page 1): Unavailable: down"),
            }
        }
    }

    fn request(id: &str, status: RequestStatus) -> RequestRecord {
        RequestRecord { id: id.into(), status }
    }

    fn referral(request: &str, status: ReferralStatus) -> ReferralRecord {
        ReferralRecord {
            id: format!("{request}-ref"),
            request_id: request.into(),
            provider_code: "caue77".into(),
            status,
            attempt: 1,
            offered_at: None,
            completed_at: None,
            agreement: Agreement::NotRequired,
        }
    }

    fn quote(request: &str, status: QuoteStatus) -> QuoteRecord {
        QuoteRecord {
            id: format!("{request}-quote"),
            number: String::new(),
            request_id: request.into(),
            referral_id: format!("{request}-ref"),
            status,
        }
    }

    /// "ok" is consistent; "late" was cancelled but routing has not withdrawn yet; "stuck" likewise, and its
    /// quote is still proposed.
    fn first_read() -> Snapshot {
        Snapshot {
            requests: vec![
                request("ok", RequestStatus::Referred),
                request("late", RequestStatus::Cancelled),
                request("stuck", RequestStatus::Cancelled),
            ],
            referrals: vec![
                referral("ok", ReferralStatus::Offered),
                referral("late", ReferralStatus::Accepted),
                referral("stuck", ReferralStatus::Accepted),
            ],
            quotes: vec![quote("late", QuoteStatus::Proposed), quote("stuck", QuoteStatus::Proposed)],
            invoices: vec![],
        }
    }

    fn cancelled(id: &str, referral: ReferralStatus, quote_status: QuoteStatus) -> Snapshot {
        Snapshot {
            requests: vec![request(id, RequestStatus::Cancelled)],
            referrals: vec![self::referral(id, referral)],
            quotes: vec![quote(id, quote_status)],
            invoices: vec![],
        }
    }

    #[tokio::test]
    async fn a_consistent_platform_is_read_once() {
        let fixture = Fixture {
            first: Snapshot {
                requests: vec![request("ok", RequestStatus::Referred)],
                referrals: vec![referral("ok", ReferralStatus::Offered)],
                ..Snapshot::default()
            },
            later: HashMap::new(),
            reread: RefCell::new(Vec::new()),
        };
        let started = Instant::now();
        let report = reconcile_from(&fixture, Duration::from_secs(60)).await.ok();
        assert!(started.elapsed() < Duration::from_secs(30), "no settle wait without findings");
        let report = report.unwrap_or_else(|| panic!("the fixture reads"));
        assert_eq!((report.requests, report.referrals, report.quotes, report.invoices), (1, 1, 0, 0));
        assert_eq!(report.rechecked, 0);
        assert!(report.findings.is_empty());
        assert!(fixture.reread.borrow().is_empty());
        assert_eq!(report.exit_code(), EXIT_CONSISTENT);
        assert_eq!(report.text(), "reconcile: 1 requests, 1 referrals, 0 quotes, 0 invoices checked, 0 findings\n");
    }

    #[tokio::test]
    async fn only_what_is_still_inconsistent_after_the_settle_period_is_reported() {
        let later = HashMap::from([
            // Converged: routing withdrew, billing voided.
            ("late".to_owned(), cancelled("late", ReferralStatus::Withdrawn, QuoteStatus::Voided)),
            // Routing withdrew, billing never voided.
            ("stuck".to_owned(), cancelled("stuck", ReferralStatus::Withdrawn, QuoteStatus::Proposed)),
        ]);
        let fixture = Fixture { first: first_read(), later, reread: RefCell::new(Vec::new()) };
        let settle = Duration::from_millis(200);
        let started = Instant::now();
        let report = reconcile_from(&fixture, settle).await;
        assert!(started.elapsed() >= settle, "waited the settle period");
        let report = report.unwrap_or_else(|e| panic!("{e:#}"));
        // Only the two requests found inconsistent were read again.
        assert_eq!(*fixture.reread.borrow(), ["late", "stuck"]);
        assert_eq!(report.rechecked, 2);
        assert_eq!((report.requests, report.referrals, report.quotes, report.invoices), (3, 3, 2, 0));
        let kinds: Vec<(Option<&str>, FindingKind)> =
            report.findings.iter().map(|f| (f.request_id.as_deref(), f.kind)).collect();
        assert_eq!(kinds, [(Some("stuck"), FindingKind::QuoteMismatch)]);
        assert_eq!(report.exit_code(), EXIT_FINDINGS);
        let text = report.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0]
                .starts_with("request stuck: quote_mismatch: quote stuck-quote is proposed; the request is cancelled:")
        );
        assert!(lines[0].contains("[requests: cancelled; routing: referral stuck-ref attempt 1 to caue77 withdrawn"));
        assert_eq!(lines[1], "reconcile: 3 requests, 3 referrals, 2 quotes, 0 invoices checked, 1 findings");
    }

    #[tokio::test]
    async fn a_request_gone_from_requests_on_the_re_read_leaves_its_documents_orphans() {
        let mut first = first_read();
        first.requests.retain(|r| r.id != "late");
        let mut gone = cancelled("late", ReferralStatus::Accepted, QuoteStatus::Proposed);
        gone.requests.clear();
        let later = HashMap::from([
            ("late".to_owned(), gone),
            ("stuck".to_owned(), cancelled("stuck", ReferralStatus::Withdrawn, QuoteStatus::Voided)),
        ]);
        let fixture = Fixture { first, later, reread: RefCell::new(Vec::new()) };
        let report = reconcile_from(&fixture, Duration::ZERO).await.unwrap_or_else(|e| panic!("{e:#}"));
        let kinds: Vec<FindingKind> = report.findings.iter().map(|f| f.kind).collect();
        assert_eq!(kinds, [FindingKind::OrphanReferral, FindingKind::OrphanQuote]);
    }

    #[tokio::test]
    async fn a_failed_re_read_is_an_error_not_a_verdict() {
        let fixture = Fixture { first: first_read(), later: HashMap::new(), reread: RefCell::new(Vec::new()) };
        let error = reconcile_from(&fixture, Duration::ZERO).await.err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("routing (http://127.0.0.1:7054): ListReferrals (page 1): Unavailable: down")
        );
    }

    #[test]
    fn the_json_report_lists_counts_and_findings() {
        let report = Report {
            requests: 2,
            referrals: 1,
            quotes: 0,
            invoices: 0,
            rechecked: 1,
            findings: vec![Finding {
                request_id: Some("r1".into()),
                kind: FindingKind::OrphanReferral,
                detail: "referral f1 (offered) names a request that requests does not have".into(),
            }],
        };
        let value: serde_json::Value = serde_json::from_str(&report.json()).unwrap_or_default();
        assert_eq!(
            value,
            serde_json::json!({
                "requests": 2, "referrals": 1, "quotes": 0, "invoices": 0, "rechecked": 1,
                "findings": [{
                    "request_id": "r1",
                    "kind": "orphan_referral",
                    "detail": "referral f1 (offered) names a request that requests does not have",
                }],
            })
        );
        assert_eq!(report.exit_code(), EXIT_FINDINGS);
    }
}
