//! The pure checker: each request against its referrals, quotes and invoices, by the table of allowed
//! combinations of ADR 0013 ("A reconciler"):
//!
//! | request | current referral | quote (billed offer) | invoice |
//! |---|---|---|---|
//! | submitted, triage | —, or the last one declined / expired / withdrawn | — | — |
//! | referred | offered | — | — |
//! | accepted, in_progress | accepted, not completed | proposed or accepted (billed); — (free) | — |
//! | completed, closed | accepted and completed | accepted (billed); — (free) | one, from that quote (billed), possibly cancelled by a credit note; — (free) |
//! | cancelled | none, or withdrawn / declined / expired | — or voided / refused / expired | — (or cancelled by a credit note) |
//! | declined | declined / expired | — | — |
//!
//! Plus: a referral, quote or invoice whose request does not exist; more than one open referral for a request;
//! more than one live quote or invoice for a referral; an invoice whose quote is not accepted (or that has none).
//!
//! The current referral is the latest by `offered_at`, then `attempt`. Whether an offer is billed is not known
//! here (no tariffs): a request with no quote at all is taken as free, except when routing itself says the
//! referral waits for, or has, the member's agreement to a quote (`Referral.agreement`, ADR 0013 "Routing gates
//! the work"), which only a billed offer has.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde::Serialize;

use crate::model::{
    Agreement, InvoiceRecord, InvoiceStatus, QuoteRecord, QuoteStatus, ReferralRecord, ReferralStatus, RequestRecord,
    RequestStatus, Snapshot, format_time,
};

/// What is wrong with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The request's status and its current referral's are not an allowed combination (or an earlier referral
    /// is still open).
    RequestReferralMismatch,
    /// A quote whose status the request's status does not allow, that belongs to another referral than the
    /// current one, or an accepted quote of a completed request that was never invoiced.
    QuoteMismatch,
    /// An invoice the request's status does not allow, without a quote, billing a quote that is not accepted,
    /// or for another referral than the current one.
    InvoiceMismatch,
    /// Routing's agreement (`awaiting_member` / `agreed`) contradicts billing's quote or the work reported.
    AgreementMismatch,
    /// A referral whose request requests does not have.
    OrphanReferral,
    /// A quote whose request requests does not have, or whose referral is not one of its request's.
    OrphanQuote,
    /// An invoice whose request requests does not have, or whose referral is not one of its request's.
    OrphanInvoice,
    /// More than one offered or accepted referral for a request.
    DuplicateOpenReferral,
    /// More than one live (proposed or accepted) quote, or live (not credited) invoice, for a referral.
    DuplicateDocument,
    /// A status this tool does not know: the request is not judged.
    UnknownStatus,
}

impl FindingKind {
    /// Every kind, in order.
    pub const ALL: [Self; 10] = [
        Self::RequestReferralMismatch,
        Self::QuoteMismatch,
        Self::InvoiceMismatch,
        Self::AgreementMismatch,
        Self::OrphanReferral,
        Self::OrphanQuote,
        Self::OrphanInvoice,
        Self::DuplicateOpenReferral,
        Self::DuplicateDocument,
        Self::UnknownStatus,
    ];

    /// The name printed and serialised (snake case).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RequestReferralMismatch => "request_referral_mismatch",
            Self::QuoteMismatch => "quote_mismatch",
            Self::InvoiceMismatch => "invoice_mismatch",
            Self::AgreementMismatch => "agreement_mismatch",
            Self::OrphanReferral => "orphan_referral",
            Self::OrphanQuote => "orphan_quote",
            Self::OrphanInvoice => "orphan_invoice",
            Self::DuplicateOpenReferral => "duplicate_open_referral",
            Self::DuplicateDocument => "duplicate_document",
            Self::UnknownStatus => "unknown_status",
        }
    }
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One inconsistency: the request (None when a document names no request at all), the kind, and a detail that
/// says what is wrong and what each service says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub request_id: Option<String>,
    pub kind: FindingKind,
    pub detail: String,
}

impl fmt::Display for Finding {
    /// `request <id>: <kind>: <detail>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = self.request_id.as_deref().unwrap_or("(none)");
        write!(f, "request {id}: {}: {}", self.kind, self.detail)
    }
}

/// Checks every request of the snapshot, then the documents whose request is missing. Records listed twice
/// (by id) count once.
pub fn check(snapshot: &Snapshot) -> Vec<Finding> {
    let index = Index::new(snapshot);
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for request in &snapshot.requests {
        if seen.insert(request.id.as_str()) {
            let empty = Docs::default();
            let docs = index.by_request.get(request.id.as_str()).unwrap_or(&empty);
            check_request(request, docs, &index, &mut out);
        }
    }
    for (request_id, docs) in &index.by_request {
        if !index.requests.contains_key(request_id) {
            orphans(request_id, docs, &mut out);
        }
    }
    out
}

/// A request's documents; referrals oldest first (the current one last).
#[derive(Default)]
struct Docs<'a> {
    referrals: Vec<&'a ReferralRecord>,
    quotes: Vec<&'a QuoteRecord>,
    invoices: Vec<&'a InvoiceRecord>,
}

impl<'a> Docs<'a> {
    fn current(&self) -> Option<&'a ReferralRecord> {
        self.referrals.last().copied()
    }
}

struct Index<'a> {
    requests: HashMap<&'a str, &'a RequestRecord>,
    referrals: HashMap<&'a str, &'a ReferralRecord>,
    quotes: HashMap<&'a str, &'a QuoteRecord>,
    by_request: BTreeMap<&'a str, Docs<'a>>,
}

impl<'a> Index<'a> {
    fn new(snapshot: &'a Snapshot) -> Self {
        let requests = snapshot.requests.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut referrals = HashMap::new();
        let mut quotes = HashMap::new();
        let mut invoices = HashSet::new();
        let mut by_request: BTreeMap<&str, Docs> = BTreeMap::new();
        for referral in &snapshot.referrals {
            if referrals.insert(referral.id.as_str(), referral).is_none() {
                by_request.entry(referral.request_id.as_str()).or_default().referrals.push(referral);
            }
        }
        for quote in &snapshot.quotes {
            if quotes.insert(quote.id.as_str(), quote).is_none() {
                by_request.entry(quote.request_id.as_str()).or_default().quotes.push(quote);
            }
        }
        for invoice in &snapshot.invoices {
            if invoices.insert(invoice.id.as_str()) {
                by_request.entry(invoice.request_id.as_str()).or_default().invoices.push(invoice);
            }
        }
        for docs in by_request.values_mut() {
            docs.referrals.sort_by(|a, b| (a.offered_at, a.attempt, &a.id).cmp(&(b.offered_at, b.attempt, &b.id)));
        }
        Self { requests, referrals, quotes, by_request }
    }
}

/// Collects a request's findings, each with the same account of what the services say.
struct Out<'o> {
    request_id: Option<String>,
    says: String,
    out: &'o mut Vec<Finding>,
}

impl Out<'_> {
    fn push(&mut self, kind: FindingKind, problem: impl Into<String>) {
        let detail = format!("{} [{}]", problem.into(), self.says);
        self.out.push(Finding { request_id: self.request_id.clone(), kind, detail });
    }
}

fn check_request(request: &RequestRecord, docs: &Docs<'_>, index: &Index<'_>, out: &mut Vec<Finding>) {
    let mut out = Out { request_id: Some(request.id.clone()), says: says(Some(request), docs), out };
    let status = request.status;
    let current = docs.current();

    if let Some(unknown) = unknown_statuses(request, docs) {
        out.push(FindingKind::UnknownStatus, format!("cannot judge the request: {unknown}"));
        return;
    }

    // Documents that point at a referral of another request (or at none).
    for quote in &docs.quotes {
        if let Some(problem) = foreign_referral(&quote.referral_id, &request.id, index) {
            out.push(FindingKind::OrphanQuote, format!("{} {problem}", quote_name(quote)));
        }
    }
    for invoice in &docs.invoices {
        if let Some(problem) = foreign_referral(&invoice.referral_id, &request.id, index) {
            out.push(FindingKind::OrphanInvoice, format!("{} {problem}", invoice_name(invoice)));
        }
    }

    // Referrals.
    let open: Vec<&ReferralRecord> = docs.referrals.iter().copied().filter(|r| r.status.is_open()).collect();
    if open.len() > 1 {
        let list: Vec<String> = open.iter().map(|r| format!("{} {}", r.id, r.status)).collect();
        out.push(FindingKind::DuplicateOpenReferral, format!("{} open referrals: {}", open.len(), list.join(", ")));
    } else if let (Some(open), Some(current)) = (open.first(), current)
        && open.id != current.id
    {
        out.push(
            FindingKind::RequestReferralMismatch,
            format!(
                "earlier referral {} is still {} while the current one, {}, is {}",
                open.id, open.status, current.id, current.status
            ),
        );
    }
    if !referral_allowed(status, current) {
        let actual = current.map_or_else(|| "there is none".to_owned(), |r| format!("it is {}", referral_state(r)));
        out.push(
            FindingKind::RequestReferralMismatch,
            format!(
                "the request is {status}: it allows {} as its current referral; {actual}",
                expected_referral(status)
            ),
        );
    }

    // More than one live document per referral.
    let mut live_quotes: BTreeMap<&str, Vec<&QuoteRecord>> = BTreeMap::new();
    for quote in docs.quotes.iter().filter(|q| q.status.is_live()) {
        live_quotes.entry(quote.referral_id.as_str()).or_default().push(quote);
    }
    for (referral, quotes) in live_quotes.iter().filter(|(_, q)| q.len() > 1) {
        let list: Vec<String> = quotes.iter().map(|q| format!("{} {}", quote_name(q), q.status)).collect();
        out.push(
            FindingKind::DuplicateDocument,
            format!("referral {referral} has {} live quotes: {}", quotes.len(), list.join(", ")),
        );
    }
    let mut live_invoices: BTreeMap<&str, Vec<&InvoiceRecord>> = BTreeMap::new();
    for invoice in docs.invoices.iter().filter(|i| i.status.is_live()) {
        live_invoices.entry(invoice.referral_id.as_str()).or_default().push(invoice);
    }
    for (referral, invoices) in live_invoices.iter().filter(|(_, i)| i.len() > 1) {
        let list: Vec<String> = invoices.iter().map(|i| format!("{} {}", invoice_name(i), i.status)).collect();
        out.push(
            FindingKind::DuplicateDocument,
            format!("referral {referral} has {} live invoices: {}", invoices.len(), list.join(", ")),
        );
    }

    // Quotes against the table.
    let works = matches!(
        status,
        RequestStatus::Accepted | RequestStatus::InProgress | RequestStatus::Completed | RequestStatus::Closed
    );
    let done = matches!(status, RequestStatus::Completed | RequestStatus::Closed);
    for quote in &docs.quotes {
        if !quote_allowed(status, quote.status) {
            out.push(
                FindingKind::QuoteMismatch,
                format!(
                    "{} is {}; the request is {status}: it allows {}",
                    quote_name(quote),
                    quote.status,
                    expected_quote(status)
                ),
            );
        } else if works
            && let Some(current) = current
            && quote.referral_id != current.id
        {
            out.push(
                FindingKind::QuoteMismatch,
                format!(
                    "{} ({}) is for referral {}, not the current referral {}",
                    quote_name(quote),
                    quote.status,
                    quote.referral_id,
                    current.id
                ),
            );
        }
    }
    if done && let Some(current) = current {
        for quote in docs.quotes.iter().filter(|q| q.status == QuoteStatus::Accepted && q.referral_id == current.id) {
            let invoiced = docs
                .invoices
                .iter()
                .any(|i| i.quote_id == quote.id || (i.quote_id.is_empty() && i.referral_id == quote.referral_id));
            if !invoiced {
                out.push(
                    FindingKind::QuoteMismatch,
                    format!("{} is accepted and the request {status}, but nothing invoices it", quote_name(quote)),
                );
            }
        }
    }

    // Invoices against the table, and their quotes.
    for invoice in &docs.invoices {
        let name = invoice_name(invoice);
        if !invoice_allowed(status, invoice.status) {
            out.push(
                FindingKind::InvoiceMismatch,
                format!(
                    "{name} is {}; the request is {status}: it allows {}",
                    invoice.status,
                    expected_invoice(status)
                ),
            );
        }
        if !invoice.status.is_live() {
            // Cancelled by a credit note: whatever it billed is settled.
            continue;
        }
        if invoice.quote_id.is_empty() {
            out.push(FindingKind::InvoiceMismatch, format!("{name} ({}) bills no quote", invoice.status));
        } else {
            match index.quotes.get(invoice.quote_id.as_str()) {
                None => out.push(
                    FindingKind::InvoiceMismatch,
                    format!(
                        "{name} ({}) bills quote {}, which billing does not list",
                        invoice.status, invoice.quote_id
                    ),
                ),
                Some(quote) if quote.status != QuoteStatus::Accepted => out.push(
                    FindingKind::InvoiceMismatch,
                    format!("{name} ({}) bills {}, which is {}", invoice.status, quote_name(quote), quote.status),
                ),
                Some(quote) if quote.referral_id != invoice.referral_id => out.push(
                    FindingKind::InvoiceMismatch,
                    format!(
                        "{name} is for referral {} but bills {} of referral {}",
                        invoice.referral_id,
                        quote_name(quote),
                        quote.referral_id
                    ),
                ),
                Some(_) => {}
            }
        }
        if done
            && let Some(current) = current
            && invoice.referral_id != current.id
        {
            out.push(
                FindingKind::InvoiceMismatch,
                format!("{name} is for referral {}, not the current referral {}", invoice.referral_id, current.id),
            );
        }
    }

    // Routing's agreement against billing's quote (billed offers only).
    if works
        && let Some(current) = current
        && current.status == ReferralStatus::Accepted
    {
        let quotes: Vec<&QuoteRecord> = docs.quotes.iter().copied().filter(|q| q.referral_id == current.id).collect();
        let accepted = quotes.iter().find(|q| q.status == QuoteStatus::Accepted);
        let worked = current.completed_at.is_some() || status != RequestStatus::Accepted;
        match (current.agreement, accepted) {
            (Agreement::Agreed, None) => out.push(
                FindingKind::AgreementMismatch,
                format!(
                    "routing says the member agreed to the quote of referral {}; billing has no accepted quote for it",
                    current.id
                ),
            ),
            (Agreement::AwaitingMember, Some(quote)) => out.push(
                FindingKind::AgreementMismatch,
                format!(
                    "routing still waits for the member's agreement on referral {}; billing says {} is accepted",
                    current.id,
                    quote_name(quote)
                ),
            ),
            (Agreement::AwaitingMember, None) if worked => out.push(
                FindingKind::AgreementMismatch,
                format!(
                    "work was reported on referral {} (request {status}{}) while routing waits for the member's \
                     agreement",
                    current.id,
                    if current.completed_at.is_some() { ", referral completed" } else { "" }
                ),
            ),
            (Agreement::AwaitingMember, None) if !quotes.iter().any(|q| q.status.is_live()) => out.push(
                FindingKind::AgreementMismatch,
                format!(
                    "routing waits for the member's agreement on referral {}; billing has no proposed quote for it",
                    current.id
                ),
            ),
            _ => {}
        }
    }
}

/// Findings for documents whose request requests does not have.
fn orphans(request_id: &str, docs: &Docs<'_>, out: &mut Vec<Finding>) {
    let request = (!request_id.is_empty()).then(|| request_id.to_owned());
    let mut out = Out { request_id: request, says: says(None, docs), out };
    let missing =
        if request_id.is_empty() { "names no request" } else { "names a request that requests does not have" };
    for referral in &docs.referrals {
        out.push(FindingKind::OrphanReferral, format!("referral {} ({}) {missing}", referral.id, referral.status));
    }
    for quote in &docs.quotes {
        out.push(FindingKind::OrphanQuote, format!("{} ({}) {missing}", quote_name(quote), quote.status));
    }
    for invoice in &docs.invoices {
        out.push(FindingKind::OrphanInvoice, format!("{} ({}) {missing}", invoice_name(invoice), invoice.status));
    }
}

/// Why a document's referral is not one of its request's, if it is not.
fn foreign_referral(referral_id: &str, request_id: &str, index: &Index<'_>) -> Option<String> {
    if referral_id.is_empty() {
        return Some("names no referral".to_owned());
    }
    match index.referrals.get(referral_id) {
        None => Some(format!("names referral {referral_id}, which routing does not list for this request")),
        Some(referral) if referral.request_id != request_id => {
            Some(format!("names referral {referral_id}, which is of request {}", referral.request_id))
        }
        Some(_) => None,
    }
}

/// The statuses this tool does not know, if any.
fn unknown_statuses(request: &RequestRecord, docs: &Docs<'_>) -> Option<String> {
    let mut unknown = Vec::new();
    if !request.status.is_known() {
        unknown.push(format!("requests says {}", request.status));
    }
    for referral in docs.referrals.iter().filter(|r| !r.status.is_known()) {
        unknown.push(format!("routing says referral {} has {}", referral.id, referral.status));
    }
    for quote in docs.quotes.iter().filter(|q| !q.status.is_known()) {
        unknown.push(format!("billing says {} has {}", quote_name(quote), quote.status));
    }
    for invoice in docs.invoices.iter().filter(|i| !i.status.is_known()) {
        unknown.push(format!("billing says {} has {}", invoice_name(invoice), invoice.status));
    }
    (!unknown.is_empty()).then(|| unknown.join(", "))
}

/// The "current referral" column.
fn referral_allowed(status: RequestStatus, current: Option<&ReferralRecord>) -> bool {
    use ReferralStatus as R;
    let ended = |r: &ReferralRecord| matches!(r.status, R::Declined | R::Expired | R::Withdrawn);
    match status {
        RequestStatus::Submitted | RequestStatus::Triage | RequestStatus::Cancelled => current.is_none_or(ended),
        RequestStatus::Referred => current.is_some_and(|r| r.status == R::Offered),
        RequestStatus::Accepted | RequestStatus::InProgress => {
            current.is_some_and(|r| r.status == R::Accepted && r.completed_at.is_none())
        }
        RequestStatus::Completed | RequestStatus::Closed => {
            current.is_some_and(|r| r.status == R::Accepted && r.completed_at.is_some())
        }
        RequestStatus::Declined => current.is_some_and(|r| matches!(r.status, R::Declined | R::Expired)),
        RequestStatus::Unknown(_) => true,
    }
}

/// The "quote" column, for one quote of the request.
fn quote_allowed(status: RequestStatus, quote: QuoteStatus) -> bool {
    use QuoteStatus as Q;
    match status {
        RequestStatus::Submitted | RequestStatus::Triage | RequestStatus::Referred | RequestStatus::Declined => false,
        RequestStatus::Accepted | RequestStatus::InProgress => matches!(quote, Q::Proposed | Q::Accepted),
        RequestStatus::Completed | RequestStatus::Closed => quote == Q::Accepted,
        RequestStatus::Cancelled => matches!(quote, Q::Voided | Q::Refused | Q::Expired),
        RequestStatus::Unknown(_) => true,
    }
}

/// The "invoice" column, for one invoice of the request.
fn invoice_allowed(status: RequestStatus, invoice: InvoiceStatus) -> bool {
    match status {
        RequestStatus::Completed | RequestStatus::Closed | RequestStatus::Unknown(_) => true,
        RequestStatus::Cancelled => invoice == InvoiceStatus::Cancelled,
        _ => false,
    }
}

fn expected_referral(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Submitted | RequestStatus::Triage | RequestStatus::Cancelled => {
            "none, or a declined, expired or withdrawn one,"
        }
        RequestStatus::Referred => "an offered referral",
        RequestStatus::Accepted | RequestStatus::InProgress => "an accepted referral not completed",
        RequestStatus::Completed | RequestStatus::Closed => "an accepted and completed referral",
        RequestStatus::Declined => "a declined or expired referral",
        RequestStatus::Unknown(_) => "anything",
    }
}

fn expected_quote(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Accepted | RequestStatus::InProgress => "a proposed or accepted quote, or none (free offer)",
        RequestStatus::Completed | RequestStatus::Closed => "an accepted quote, or none (free offer)",
        RequestStatus::Cancelled => "no quote, or a voided, refused or expired one",
        _ => "no quote",
    }
}

fn expected_invoice(status: RequestStatus) -> &'static str {
    match status {
        RequestStatus::Completed | RequestStatus::Closed => "one invoice from the accepted quote, or none (free offer)",
        RequestStatus::Cancelled => "no invoice, or one cancelled by a credit note",
        _ => "no invoice",
    }
}

fn quote_name(quote: &QuoteRecord) -> String {
    if quote.number.is_empty() {
        format!("quote {}", quote.id)
    } else {
        format!("quote {} ({})", quote.number, quote.id)
    }
}

fn invoice_name(invoice: &InvoiceRecord) -> String {
    if invoice.number.is_empty() {
        format!("invoice {}", invoice.id)
    } else {
        format!("invoice {} ({})", invoice.number, invoice.id)
    }
}

/// A referral's state: status, completion, agreement.
fn referral_state(referral: &ReferralRecord) -> String {
    let mut state = referral.status.to_string();
    if let Some(at) = referral.completed_at {
        state.push_str(&format!(", completed {}", format_time(at)));
    }
    if matches!(referral.agreement, Agreement::AwaitingMember | Agreement::Agreed) {
        state.push_str(&format!(", agreement {}", referral.agreement));
    }
    state
}

/// What each service says about a request: `requests: …; routing: …; billing: …`.
fn says(request: Option<&RequestRecord>, docs: &Docs<'_>) -> String {
    let requests = request.map_or_else(|| "no such request".to_owned(), |r| r.status.to_string());
    let current = docs.current().map(|r| r.id.as_str());
    let referrals: Vec<String> = docs
        .referrals
        .iter()
        .rev()
        .map(|r| {
            let mark = if Some(r.id.as_str()) == current { " (current)" } else { "" };
            format!("referral {} attempt {} to {} {}{mark}", r.id, r.attempt, r.provider_code, referral_state(r))
        })
        .collect();
    let routing = if referrals.is_empty() { "no referral".to_owned() } else { referrals.join(", ") };
    let mut billing: Vec<String> = docs.quotes.iter().map(|q| format!("{} {}", quote_name(q), q.status)).collect();
    billing.extend(docs.invoices.iter().map(|i| {
        let quote = if i.quote_id.is_empty() { "no quote".to_owned() } else { format!("quote {}", i.quote_id) };
        format!("{} {} for {quote}", invoice_name(i), i.status)
    }));
    let billing = if billing.is_empty() { "no quote, no invoice".to_owned() } else { billing.join(", ") };
    format!("requests: {requests}; routing: {routing}; billing: {billing}")
}

#[cfg(test)]
mod tests;
