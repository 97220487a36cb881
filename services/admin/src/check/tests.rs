//! The reconciler's rules, case by case.

use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::model::{Agreement as A, InvoiceStatus as I, QuoteStatus as Q, ReferralStatus as R, RequestStatus as S};

const REQ: &str = "0196a000-0000-7000-8000-000000000001";

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default()
}

fn request(status: S) -> RequestRecord {
    RequestRecord { id: REQ.into(), status }
}

/// Referral `n` (attempt n, offered n hours after t0).
fn referral(n: i32, status: R) -> ReferralRecord {
    ReferralRecord {
        id: format!("ref-{n}"),
        request_id: REQ.into(),
        provider_code: format!("prov{n}"),
        status,
        attempt: n,
        offered_at: Some(t0() + Duration::hours(i64::from(n))),
        completed_at: None,
        agreement: A::NotRequired,
    }
}

fn completed(mut r: ReferralRecord) -> ReferralRecord {
    r.completed_at = r.offered_at.map(|at| at + Duration::days(3));
    r
}

fn agreement(mut r: ReferralRecord, agreement: A) -> ReferralRecord {
    r.agreement = agreement;
    r
}

fn quote(n: i32, referral: i32, status: Q) -> QuoteRecord {
    QuoteRecord {
        id: format!("quote-{n}"),
        number: format!("D-prov{referral}-2026-{n:06}"),
        request_id: REQ.into(),
        referral_id: format!("ref-{referral}"),
        status,
    }
}

fn invoice(n: i32, quote: i32, referral: i32, status: I) -> InvoiceRecord {
    InvoiceRecord {
        id: format!("inv-{n}"),
        number: format!("F-prov{referral}-2026-{n:06}"),
        request_id: REQ.into(),
        referral_id: format!("ref-{referral}"),
        quote_id: if quote == 0 { String::new() } else { format!("quote-{quote}") },
        status,
    }
}

fn snapshot(
    request: Option<RequestRecord>,
    referrals: Vec<ReferralRecord>,
    quotes: Vec<QuoteRecord>,
    invoices: Vec<InvoiceRecord>,
) -> Snapshot {
    Snapshot { requests: request.into_iter().collect(), referrals, quotes, invoices }
}

fn kinds(snapshot: &Snapshot) -> Vec<FindingKind> {
    let mut kinds: Vec<FindingKind> = check(snapshot).into_iter().map(|f| f.kind).collect();
    kinds.sort();
    kinds
}

#[track_caller]
fn consistent(snapshot: Snapshot) {
    let findings = check(&snapshot);
    assert!(findings.is_empty(), "expected no finding for {snapshot:#?}, got {findings:#?}");
}

/// The one finding of a snapshot, checked to be of `kind`.
#[track_caller]
fn only(snapshot: Snapshot, kind: FindingKind) -> Finding {
    let mut findings = check(&snapshot);
    assert_eq!(findings.len(), 1, "expected one {kind} for {snapshot:#?}, got {findings:#?}");
    let finding = findings.remove(0);
    assert_eq!(finding.kind, kind, "{finding:#?}");
    finding
}

// ---- every allowed combination of the table: no finding -------------------------------------------------

#[test]
fn row_submitted_and_triage_without_referral_or_after_an_ended_one() {
    for status in [S::Submitted, S::Triage] {
        consistent(snapshot(Some(request(status)), vec![], vec![], vec![]));
        for ended in [R::Declined, R::Expired, R::Withdrawn] {
            consistent(snapshot(Some(request(status)), vec![referral(1, ended)], vec![], vec![]));
            // Earlier attempts ended too.
            consistent(snapshot(
                Some(request(status)),
                vec![referral(1, R::Declined), referral(2, R::Expired), referral(3, ended)],
                vec![],
                vec![],
            ));
        }
    }
}

#[test]
fn row_referred_with_an_offered_referral() {
    consistent(snapshot(Some(request(S::Referred)), vec![referral(1, R::Offered)], vec![], vec![]));
    consistent(snapshot(
        Some(request(S::Referred)),
        vec![referral(1, R::Declined), referral(2, R::Expired), referral(3, R::Offered)],
        vec![],
        vec![],
    ));
}

#[test]
fn row_accepted_and_in_progress_billed_or_free() {
    for status in [S::Accepted, S::InProgress] {
        // Free offer.
        consistent(snapshot(Some(request(status)), vec![referral(1, R::Accepted)], vec![], vec![]));
        // Billed, recorded before the agreement existed: proposed or accepted.
        for q in [Q::Proposed, Q::Accepted] {
            consistent(snapshot(Some(request(status)), vec![referral(1, R::Accepted)], vec![quote(1, 1, q)], vec![]));
        }
        // Billed, the member agreed.
        consistent(snapshot(
            Some(request(status)),
            vec![referral(1, R::Declined), agreement(referral(2, R::Accepted), A::Agreed)],
            vec![quote(1, 2, Q::Accepted)],
            vec![],
        ));
    }
    // Billed, waiting for the member: only before any work.
    consistent(snapshot(
        Some(request(S::Accepted)),
        vec![agreement(referral(1, R::Accepted), A::AwaitingMember)],
        vec![quote(1, 1, Q::Proposed)],
        vec![],
    ));
}

#[test]
fn row_completed_and_closed_billed_or_free() {
    for status in [S::Completed, S::Closed] {
        // Free offer.
        consistent(snapshot(Some(request(status)), vec![completed(referral(1, R::Accepted))], vec![], vec![]));
        // Billed: one invoice from the accepted quote, whatever its status (credited included).
        for i in [I::Issued, I::Sent, I::Paid, I::Cancelled] {
            for a in [A::Agreed, A::NotRequired, A::Unknown(0)] {
                consistent(snapshot(
                    Some(request(status)),
                    vec![referral(1, R::Expired), agreement(completed(referral(2, R::Accepted)), a)],
                    vec![quote(1, 2, Q::Accepted)],
                    vec![invoice(1, 1, 2, i)],
                ));
            }
        }
    }
}

#[test]
fn row_cancelled() {
    let referrals: Vec<Vec<ReferralRecord>> = vec![
        vec![],
        vec![referral(1, R::Withdrawn)],
        // Withdrawn after the provider's completion requests never applied (ADR 0013).
        vec![completed(agreement(referral(1, R::Withdrawn), A::Agreed))],
        vec![referral(1, R::Declined)],
        vec![referral(1, R::Expired)],
        vec![referral(1, R::Declined), referral(2, R::Withdrawn)],
    ];
    for referrals in referrals {
        let with_referral = !referrals.is_empty();
        consistent(snapshot(Some(request(S::Cancelled)), referrals.clone(), vec![], vec![]));
        if !with_referral {
            continue;
        }
        let last = referrals.last().map_or(1, |r| r.attempt);
        for q in [Q::Voided, Q::Refused, Q::Expired] {
            consistent(snapshot(Some(request(S::Cancelled)), referrals.clone(), vec![quote(1, last, q)], vec![]));
            // An invoice cancelled by a credit note.
            consistent(snapshot(
                Some(request(S::Cancelled)),
                referrals.clone(),
                vec![quote(1, last, q)],
                vec![invoice(1, 1, last, I::Cancelled)],
            ));
        }
    }
}

#[test]
fn row_declined() {
    for ended in [R::Declined, R::Expired] {
        consistent(snapshot(Some(request(S::Declined)), vec![referral(1, ended)], vec![], vec![]));
    }
}

#[test]
fn many_consistent_requests_together() {
    let mut all = Snapshot::default();
    let mut other = |id: &str, status: S, referrals: Vec<ReferralRecord>| {
        let retag = |mut r: ReferralRecord| {
            r.request_id = id.into();
            r.id = format!("{id}-{}", r.id);
            r
        };
        all.requests.push(RequestRecord { id: id.into(), status });
        all.referrals.extend(referrals.into_iter().map(retag));
    };
    other("a", S::Submitted, vec![]);
    other("b", S::Referred, vec![referral(1, R::Offered)]);
    other("c", S::Completed, vec![completed(referral(1, R::Accepted))]);
    other("d", S::Cancelled, vec![referral(1, R::Withdrawn)]);
    consistent(all);
}

// ---- one test per kind: the rule catches it ----------------------------------------------------------------

#[test]
fn request_referral_mismatch_for_every_row() {
    let cases: Vec<(S, Vec<ReferralRecord>)> = vec![
        (S::Submitted, vec![referral(1, R::Accepted)]),
        (S::Triage, vec![referral(1, R::Offered)]),
        (S::Referred, vec![]),
        (S::Referred, vec![referral(1, R::Declined)]),
        (S::Accepted, vec![referral(1, R::Offered)]),
        (S::Accepted, vec![completed(referral(1, R::Accepted))]),
        (S::InProgress, vec![referral(1, R::Withdrawn)]),
        (S::Completed, vec![referral(1, R::Accepted)]),
        (S::Closed, vec![completed(referral(1, R::Withdrawn))]),
        // Issue 15: the member cancelled, routing kept the referral accepted.
        (S::Cancelled, vec![referral(1, R::Accepted)]),
        (S::Cancelled, vec![completed(referral(1, R::Accepted))]),
        (S::Cancelled, vec![referral(1, R::Offered)]),
        (S::Declined, vec![]),
        (S::Declined, vec![referral(1, R::Withdrawn)]),
    ];
    for (status, referrals) in cases {
        let finding = only(
            snapshot(Some(request(status)), referrals.clone(), vec![], vec![]),
            FindingKind::RequestReferralMismatch,
        );
        assert_eq!(finding.request_id.as_deref(), Some(REQ));
        assert!(finding.detail.contains(&format!("requests: {status};")), "{finding:#?}");
        let expected = referrals
            .last()
            .map_or("routing: no referral".to_owned(), |r| format!("to {} {}", r.provider_code, r.status));
        assert!(finding.detail.contains(&expected), "{finding:#?}");
    }
}

#[test]
fn request_referral_mismatch_when_an_earlier_referral_is_still_open() {
    let finding = only(
        snapshot(Some(request(S::Triage)), vec![referral(1, R::Offered), referral(2, R::Declined)], vec![], vec![]),
        FindingKind::RequestReferralMismatch,
    );
    assert!(finding.detail.contains("earlier referral ref-1 is still offered"), "{finding:#?}");
}

#[test]
fn the_current_referral_is_the_latest_offered_not_the_first_listed() {
    // Listed newest first: the declined one is older.
    let referrals = vec![referral(2, R::Offered), referral(1, R::Declined)];
    consistent(snapshot(Some(request(S::Referred)), referrals.clone(), vec![], vec![]));
    // Same offered_at: the attempt decides.
    let mut first = referral(1, R::Declined);
    let mut second = referral(2, R::Offered);
    first.offered_at = Some(t0());
    second.offered_at = Some(t0());
    consistent(snapshot(Some(request(S::Referred)), vec![second, first], vec![], vec![]));
}

#[test]
fn quote_mismatch_for_a_status_the_request_does_not_allow() {
    let cases: Vec<(S, Vec<ReferralRecord>, Q)> = vec![
        (S::Referred, vec![referral(1, R::Offered)], Q::Proposed),
        (S::Triage, vec![referral(1, R::Withdrawn)], Q::Voided),
        (S::Declined, vec![referral(1, R::Declined)], Q::Proposed),
        (S::Accepted, vec![referral(1, R::Accepted)], Q::Voided),
        (S::InProgress, vec![referral(1, R::Accepted)], Q::Refused),
        (S::Completed, vec![completed(referral(1, R::Accepted))], Q::Proposed),
        (S::Closed, vec![completed(referral(1, R::Accepted))], Q::Expired),
        // A proposed or accepted quote on a cancelled request: billing did not void it.
        (S::Cancelled, vec![referral(1, R::Withdrawn)], Q::Proposed),
        (S::Cancelled, vec![referral(1, R::Withdrawn)], Q::Accepted),
    ];
    for (status, referrals, q) in cases {
        let finding =
            only(snapshot(Some(request(status)), referrals, vec![quote(1, 1, q)], vec![]), FindingKind::QuoteMismatch);
        assert!(
            finding.detail.contains(&format!("quote D-prov1-2026-000001 (quote-1) is {q}; the request is {status}:")),
            "{finding:#?}"
        );
    }
}

#[test]
fn quote_mismatch_for_an_accepted_quote_never_invoiced() {
    let finding = only(
        snapshot(
            Some(request(S::Completed)),
            vec![completed(referral(1, R::Accepted))],
            vec![quote(1, 1, Q::Accepted)],
            vec![],
        ),
        FindingKind::QuoteMismatch,
    );
    assert!(finding.detail.contains("nothing invoices it"), "{finding:#?}");
    // A completed request without any quote is not judged (free or billed is not known here).
    consistent(snapshot(Some(request(S::Closed)), vec![completed(referral(1, R::Accepted))], vec![], vec![]));
}

#[test]
fn quote_mismatch_for_a_quote_of_an_earlier_referral() {
    let finding = only(
        snapshot(
            Some(request(S::Accepted)),
            vec![referral(1, R::Withdrawn), referral(2, R::Accepted)],
            vec![quote(1, 1, Q::Proposed)],
            vec![],
        ),
        FindingKind::QuoteMismatch,
    );
    assert!(finding.detail.contains("is for referral ref-1, not the current referral ref-2"), "{finding:#?}");
}

#[test]
fn invoice_mismatch_on_a_request_not_completed() {
    for status in [S::Accepted, S::InProgress] {
        let finding = only(
            snapshot(
                Some(request(status)),
                vec![referral(1, R::Accepted)],
                vec![quote(1, 1, Q::Accepted)],
                vec![invoice(1, 1, 1, I::Issued)],
            ),
            FindingKind::InvoiceMismatch,
        );
        assert!(
            finding.detail.contains(&format!("is issued; the request is {status}: it allows no invoice")),
            "{finding:#?}"
        );
    }
    // Issue 15: invoiced after the cancellation, not credited. The quote was voided, so the invoice bills a
    // voided quote too.
    let findings = check(&snapshot(
        Some(request(S::Cancelled)),
        vec![completed(referral(1, R::Withdrawn))],
        vec![quote(1, 1, Q::Voided)],
        vec![invoice(1, 1, 1, I::Paid)],
    ));
    assert_eq!(findings.iter().map(|f| f.kind).collect::<Vec<_>>(), [FindingKind::InvoiceMismatch; 2], "{findings:#?}");
    assert!(
        findings[0]
            .detail
            .contains("is paid; the request is cancelled: it allows no invoice, or one cancelled by a credit note")
    );
    assert!(findings[1].detail.contains("bills quote D-prov1-2026-000001 (quote-1), which is voided"));
}

#[test]
fn invoice_mismatch_for_an_invoice_whose_quote_is_not_accepted() {
    // Completed, but billing still has the quote proposed: both documents are wrong.
    let findings = check(&snapshot(
        Some(request(S::Completed)),
        vec![completed(referral(1, R::Accepted))],
        vec![quote(1, 1, Q::Proposed)],
        vec![invoice(1, 1, 1, I::Issued)],
    ));
    let kinds: Vec<FindingKind> = findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FindingKind::QuoteMismatch, FindingKind::InvoiceMismatch], "{findings:#?}");
    assert!(findings[1].detail.contains("which is proposed"), "{findings:#?}");
}

#[test]
fn invoice_mismatch_for_an_invoice_without_quote_or_with_an_unknown_one() {
    let finding = only(
        snapshot(
            Some(request(S::Completed)),
            vec![completed(referral(1, R::Accepted))],
            vec![],
            vec![invoice(1, 0, 1, I::Issued)],
        ),
        FindingKind::InvoiceMismatch,
    );
    assert!(finding.detail.contains("bills no quote"), "{finding:#?}");
    let finding = only(
        snapshot(
            Some(request(S::Completed)),
            vec![completed(referral(1, R::Accepted))],
            vec![],
            vec![invoice(1, 7, 1, I::Sent)],
        ),
        FindingKind::InvoiceMismatch,
    );
    assert!(finding.detail.contains("bills quote quote-7, which billing does not list"), "{finding:#?}");
    // Credited: settled, not judged further.
    consistent(snapshot(
        Some(request(S::Completed)),
        vec![completed(referral(1, R::Accepted))],
        vec![],
        vec![invoice(1, 0, 1, I::Cancelled)],
    ));
}

#[test]
fn invoice_mismatch_for_an_invoice_of_another_referral_than_its_quote() {
    let mut wrong = invoice(1, 1, 1, I::Issued);
    wrong.referral_id = "ref-2".into();
    let findings = check(&snapshot(
        Some(request(S::Completed)),
        vec![referral(1, R::Withdrawn), completed(referral(2, R::Accepted))],
        vec![quote(1, 1, Q::Accepted)],
        vec![wrong],
    ));
    let kinds: Vec<FindingKind> = findings.iter().map(|f| f.kind).collect();
    // The quote is of the withdrawn referral (QuoteMismatch), and the invoice does not bill its own.
    assert_eq!(kinds, [FindingKind::QuoteMismatch, FindingKind::InvoiceMismatch], "{findings:#?}");
    assert!(findings[1].detail.contains("is for referral ref-2 but bills"), "{findings:#?}");
}

#[test]
fn invoice_mismatch_for_an_invoice_of_an_earlier_referral() {
    let kinds = kinds(&snapshot(
        Some(request(S::Completed)),
        vec![completed(referral(1, R::Withdrawn)), completed(referral(2, R::Accepted))],
        vec![quote(1, 1, Q::Accepted)],
        vec![invoice(1, 1, 1, I::Issued)],
    ));
    assert_eq!(kinds, [FindingKind::QuoteMismatch, FindingKind::InvoiceMismatch]);
}

#[test]
fn agreement_mismatch_when_routing_and_billing_disagree() {
    // Routing says agreed, billing's quote is still proposed.
    let finding = only(
        snapshot(
            Some(request(S::Accepted)),
            vec![agreement(referral(1, R::Accepted), A::Agreed)],
            vec![quote(1, 1, Q::Proposed)],
            vec![],
        ),
        FindingKind::AgreementMismatch,
    );
    assert!(finding.detail.contains("billing has no accepted quote"), "{finding:#?}");
    // Billing says accepted, routing still waits (missed quote.accepted).
    let finding = only(
        snapshot(
            Some(request(S::Accepted)),
            vec![agreement(referral(1, R::Accepted), A::AwaitingMember)],
            vec![quote(1, 1, Q::Accepted)],
            vec![],
        ),
        FindingKind::AgreementMismatch,
    );
    assert!(finding.detail.contains("routing still waits"), "{finding:#?}");
    // Work reported while waiting.
    let finding = only(
        snapshot(
            Some(request(S::InProgress)),
            vec![agreement(referral(1, R::Accepted), A::AwaitingMember)],
            vec![quote(1, 1, Q::Proposed)],
            vec![],
        ),
        FindingKind::AgreementMismatch,
    );
    assert!(finding.detail.contains("work was reported"), "{finding:#?}");
    // Waiting for a quote billing never issued.
    let finding = only(
        snapshot(
            Some(request(S::Accepted)),
            vec![agreement(referral(1, R::Accepted), A::AwaitingMember)],
            vec![],
            vec![],
        ),
        FindingKind::AgreementMismatch,
    );
    assert!(finding.detail.contains("no proposed quote"), "{finding:#?}");
    // Agreed, completed, but no quote at all (not judged by the table without tariffs).
    only(
        snapshot(
            Some(request(S::Closed)),
            vec![agreement(completed(referral(1, R::Accepted)), A::Agreed)],
            vec![],
            vec![],
        ),
        FindingKind::AgreementMismatch,
    );
}

#[test]
fn orphan_documents_name_their_missing_request() {
    let referrals = vec![referral(1, R::Accepted)];
    let quotes = vec![quote(1, 1, Q::Accepted)];
    let invoices = vec![invoice(1, 1, 1, I::Issued)];
    let findings = check(&snapshot(None, referrals, quotes, invoices));
    let kinds: Vec<FindingKind> = findings.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FindingKind::OrphanReferral, FindingKind::OrphanQuote, FindingKind::OrphanInvoice]);
    for finding in &findings {
        assert_eq!(finding.request_id.as_deref(), Some(REQ));
        assert!(finding.detail.contains("names a request that requests does not have"), "{finding:#?}");
        assert!(finding.detail.contains("requests: no such request;"), "{finding:#?}");
    }
    // A document with no request id at all.
    let mut nowhere = quote(2, 1, Q::Proposed);
    nowhere.request_id.clear();
    let finding = only(snapshot(None, vec![], vec![nowhere], vec![]), FindingKind::OrphanQuote);
    assert_eq!(finding.request_id, None);
    assert!(finding.to_string().starts_with("request (none): orphan_quote: "), "{finding}");
}

#[test]
fn orphan_quote_and_invoice_whose_referral_is_not_their_requests() {
    let mut foreign = referral(9, R::Accepted);
    foreign.request_id = "another".into();
    let snapshot = Snapshot {
        requests: vec![request(S::Accepted), RequestRecord { id: "another".into(), status: S::Accepted }],
        referrals: vec![referral(1, R::Accepted), foreign],
        quotes: vec![quote(1, 9, Q::Proposed)],
        invoices: vec![],
    };
    let findings = check(&snapshot);
    let kinds: Vec<FindingKind> = findings.iter().map(|f| f.kind).collect();
    // The quote names a referral of another request (and so is not the current referral's).
    assert_eq!(kinds, [FindingKind::OrphanQuote, FindingKind::QuoteMismatch], "{findings:#?}");
    assert!(findings[0].detail.contains("names referral ref-9, which is of request another"), "{findings:#?}");

    let finding = only(
        Snapshot {
            requests: vec![request(S::Cancelled)],
            referrals: vec![referral(1, R::Withdrawn)],
            quotes: vec![quote(1, 1, Q::Voided)],
            invoices: vec![{
                let mut i = invoice(1, 1, 1, I::Cancelled);
                i.referral_id = "ref-404".into();
                i
            }],
        },
        FindingKind::OrphanInvoice,
    );
    assert!(finding.detail.contains("names referral ref-404, which routing does not list"), "{finding:#?}");
}

#[test]
fn duplicate_open_referral() {
    let finding = only(
        snapshot(Some(request(S::Referred)), vec![referral(1, R::Accepted), referral(2, R::Offered)], vec![], vec![]),
        FindingKind::DuplicateOpenReferral,
    );
    assert!(finding.detail.contains("2 open referrals: ref-1 accepted, ref-2 offered"), "{finding:#?}");
}

#[test]
fn duplicate_live_quotes_or_invoices_for_a_referral() {
    let finding = only(
        snapshot(
            Some(request(S::Accepted)),
            vec![referral(1, R::Accepted)],
            vec![quote(1, 1, Q::Proposed), quote(2, 1, Q::Accepted)],
            vec![],
        ),
        FindingKind::DuplicateDocument,
    );
    assert!(finding.detail.contains("referral ref-1 has 2 live quotes"), "{finding:#?}");
    let finding = only(
        snapshot(
            Some(request(S::Completed)),
            vec![completed(referral(1, R::Accepted))],
            vec![quote(1, 1, Q::Accepted)],
            vec![invoice(1, 1, 1, I::Paid), invoice(2, 1, 1, I::Issued)],
        ),
        FindingKind::DuplicateDocument,
    );
    assert!(finding.detail.contains("referral ref-1 has 2 live invoices"), "{finding:#?}");
    // A credited invoice and its replacement are not duplicates.
    consistent(snapshot(
        Some(request(S::Completed)),
        vec![completed(referral(1, R::Accepted))],
        vec![quote(1, 1, Q::Accepted)],
        vec![invoice(1, 1, 1, I::Cancelled), invoice(2, 1, 1, I::Issued)],
    ));
}

#[test]
fn unknown_statuses_are_reported_not_judged() {
    let finding = only(
        snapshot(Some(request(S::Unknown(0))), vec![referral(1, R::Offered)], vec![], vec![]),
        FindingKind::UnknownStatus,
    );
    assert!(finding.detail.contains("requests says unknown status 0"), "{finding:#?}");
    let finding = only(
        snapshot(Some(request(S::Cancelled)), vec![referral(1, R::Accepted)], vec![quote(1, 1, Q::Unknown(9))], vec![]),
        FindingKind::UnknownStatus,
    );
    assert!(finding.detail.contains("has unknown status 9"), "{finding:#?}");
}

#[test]
fn records_listed_twice_count_once() {
    let r = referral(1, R::Offered);
    consistent(snapshot(Some(request(S::Referred)), vec![r.clone(), r], vec![], vec![]));
    let q = quote(1, 1, Q::Proposed);
    let mut s = snapshot(Some(request(S::Accepted)), vec![referral(1, R::Accepted)], vec![q.clone(), q], vec![]);
    s.requests.push(request(S::Accepted));
    consistent(s);
}

#[test]
fn the_detail_says_what_each_service_says() {
    let finding = only(
        snapshot(
            Some(request(S::Cancelled)),
            vec![referral(1, R::Declined), completed(agreement(referral(2, R::Accepted), A::Agreed))],
            vec![quote(1, 2, Q::Voided)],
            vec![],
        ),
        FindingKind::RequestReferralMismatch,
    );
    assert_eq!(
        finding.detail,
        "the request is cancelled: it allows none, or a declined, expired or withdrawn one, as its current referral; it is \
         accepted, completed 2026-01-04T02:00:00Z, agreement agreed [requests: cancelled; routing: referral ref-2 \
         attempt 2 to prov2 accepted, completed 2026-01-04T02:00:00Z, agreement agreed (current), referral ref-1 \
         attempt 1 to prov1 declined; billing: quote D-prov2-2026-000001 (quote-1) voided]"
    );
}

#[test]
fn every_kind_has_a_distinct_name() {
    let names: HashSet<&str> = FindingKind::ALL.iter().map(|k| k.as_str()).collect();
    assert_eq!(names.len(), FindingKind::ALL.len());
    assert_eq!(serde_json::to_value(FindingKind::DuplicateOpenReferral).ok(), Some("duplicate_open_referral".into()));
}
