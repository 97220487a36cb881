//! What the reconciler compares: each service's view of a request, as plain values. The gRPC messages are
//! converted at the edge ([`crate::reader`]); the checker ([`crate::check`]) never sees a protobuf type.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use id77_proto::billing::v1 as billing;
use id77_proto::prost_types::Timestamp;
use id77_proto::requests::v1 as requests;
use id77_proto::routing::v1 as routing;

/// A request's status at requests (the arbiter of its fate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestStatus {
    Submitted,
    Triage,
    Referred,
    Accepted,
    InProgress,
    Completed,
    Closed,
    Cancelled,
    Declined,
    /// A value this tool does not know (`UNSPECIFIED` or newer than it).
    Unknown(i32),
}

/// A referral's status at routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReferralStatus {
    Offered,
    Accepted,
    Declined,
    Expired,
    Withdrawn,
    Unknown(i32),
}

/// Whether routing lets the provider work on an accepted referral (`Referral.agreement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Agreement {
    /// Free offer, or not accepted yet.
    NotRequired,
    /// Billed offer: waiting for a member admin to accept the quote.
    AwaitingMember,
    /// The member accepted the quote.
    Agreed,
    /// `UNSPECIFIED` (referrals recorded before the agreement existed) or a newer value.
    Unknown(i32),
}

/// A quote's status at billing (`proposed` is `QUOTE_STATUS_ISSUED` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuoteStatus {
    Proposed,
    Accepted,
    Refused,
    Voided,
    Expired,
    Unknown(i32),
}

/// An invoice's status at billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceStatus {
    Issued,
    Sent,
    Paid,
    /// Cancelled by a credit note.
    Cancelled,
    Unknown(i32),
}

impl RequestStatus {
    pub fn is_known(self) -> bool {
        !matches!(self, Self::Unknown(_))
    }
}

impl ReferralStatus {
    pub fn is_known(self) -> bool {
        !matches!(self, Self::Unknown(_))
    }

    /// Offered or accepted: the request is (or may be) with this provider.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Offered | Self::Accepted)
    }
}

impl QuoteStatus {
    pub fn is_known(self) -> bool {
        !matches!(self, Self::Unknown(_))
    }

    /// Proposed or accepted: the quote still binds someone.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Proposed | Self::Accepted)
    }
}

impl InvoiceStatus {
    pub fn is_known(self) -> bool {
        !matches!(self, Self::Unknown(_))
    }

    /// Not cancelled by a credit note.
    pub fn is_live(self) -> bool {
        !matches!(self, Self::Cancelled)
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Submitted => "submitted",
            Self::Triage => "triage",
            Self::Referred => "referred",
            Self::Accepted => "accepted",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Closed => "closed",
            Self::Cancelled => "cancelled",
            Self::Declined => "declined",
            Self::Unknown(n) => return write!(f, "unknown status {n}"),
        })
    }
}

impl fmt::Display for ReferralStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Offered => "offered",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Expired => "expired",
            Self::Withdrawn => "withdrawn",
            Self::Unknown(n) => return write!(f, "unknown status {n}"),
        })
    }
}

impl fmt::Display for Agreement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotRequired => "not_required",
            Self::AwaitingMember => "awaiting_member",
            Self::Agreed => "agreed",
            Self::Unknown(0) => "unspecified",
            Self::Unknown(n) => return write!(f, "unknown agreement {n}"),
        })
    }
}

impl fmt::Display for QuoteStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Proposed => "proposed",
            Self::Accepted => "accepted",
            Self::Refused => "refused",
            Self::Voided => "voided",
            Self::Expired => "expired",
            Self::Unknown(n) => return write!(f, "unknown status {n}"),
        })
    }
}

impl fmt::Display for InvoiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Issued => "issued",
            Self::Sent => "sent",
            Self::Paid => "paid",
            Self::Cancelled => "cancelled by a credit note",
            Self::Unknown(n) => return write!(f, "unknown status {n}"),
        })
    }
}

/// A request as requests tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: String,
    pub status: RequestStatus,
}

/// A referral as routing tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralRecord {
    pub id: String,
    pub request_id: String,
    pub provider_code: String,
    pub status: ReferralStatus,
    pub attempt: i32,
    pub offered_at: Option<DateTime<Utc>>,
    /// Set once the provider completed the work (kept when the referral is later withdrawn).
    pub completed_at: Option<DateTime<Utc>>,
    pub agreement: Agreement,
}

/// A quote as billing tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteRecord {
    pub id: String,
    pub number: String,
    pub request_id: String,
    pub referral_id: String,
    pub status: QuoteStatus,
}

/// An invoice as billing tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRecord {
    pub id: String,
    pub number: String,
    pub request_id: String,
    pub referral_id: String,
    /// The accepted quote it bills (empty for an invoice made without one).
    pub quote_id: String,
    pub status: InvoiceStatus,
}

/// Everything read from the services (all of it, or one request's share).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub requests: Vec<RequestRecord>,
    pub referrals: Vec<ReferralRecord>,
    pub quotes: Vec<QuoteRecord>,
    pub invoices: Vec<InvoiceRecord>,
}

impl Snapshot {
    /// Adds another snapshot's records.
    pub fn extend(&mut self, other: Snapshot) {
        self.requests.extend(other.requests);
        self.referrals.extend(other.referrals);
        self.quotes.extend(other.quotes);
        self.invoices.extend(other.invoices);
    }
}

/// RFC 3339 to the second, for details.
pub fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn time(ts: Option<&Timestamp>) -> Option<DateTime<Utc>> {
    let ts = ts?;
    DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).unwrap_or(0))
}

impl From<i32> for RequestStatus {
    fn from(value: i32) -> Self {
        use requests::RequestStatus as P;
        match P::try_from(value) {
            Ok(P::Submitted) => Self::Submitted,
            Ok(P::Triage) => Self::Triage,
            Ok(P::Referred) => Self::Referred,
            Ok(P::Accepted) => Self::Accepted,
            Ok(P::InProgress) => Self::InProgress,
            Ok(P::Completed) => Self::Completed,
            Ok(P::Closed) => Self::Closed,
            Ok(P::Cancelled) => Self::Cancelled,
            Ok(P::Declined) => Self::Declined,
            Ok(P::Unspecified) | Err(_) => Self::Unknown(value),
        }
    }
}

impl From<i32> for ReferralStatus {
    fn from(value: i32) -> Self {
        use routing::ReferralStatus as P;
        match P::try_from(value) {
            Ok(P::Offered) => Self::Offered,
            Ok(P::Accepted) => Self::Accepted,
            Ok(P::Declined) => Self::Declined,
            Ok(P::Expired) => Self::Expired,
            Ok(P::Withdrawn) => Self::Withdrawn,
            Ok(P::Unspecified) | Err(_) => Self::Unknown(value),
        }
    }
}

impl From<i32> for Agreement {
    fn from(value: i32) -> Self {
        use routing::QuoteAgreement as P;
        match P::try_from(value) {
            Ok(P::NotRequired) => Self::NotRequired,
            Ok(P::AwaitingMember) => Self::AwaitingMember,
            Ok(P::Agreed) => Self::Agreed,
            Ok(P::Unspecified) | Err(_) => Self::Unknown(value),
        }
    }
}

impl From<i32> for QuoteStatus {
    fn from(value: i32) -> Self {
        use billing::QuoteStatus as P;
        match P::try_from(value) {
            Ok(P::Issued) => Self::Proposed,
            Ok(P::Accepted) => Self::Accepted,
            Ok(P::Refused) => Self::Refused,
            Ok(P::Voided) => Self::Voided,
            Ok(P::Expired) => Self::Expired,
            Ok(P::Unspecified) | Err(_) => Self::Unknown(value),
        }
    }
}

impl From<i32> for InvoiceStatus {
    fn from(value: i32) -> Self {
        use billing::InvoiceStatus as P;
        match P::try_from(value) {
            Ok(P::Issued) => Self::Issued,
            Ok(P::Sent) => Self::Sent,
            Ok(P::Paid) => Self::Paid,
            Ok(P::Cancelled) => Self::Cancelled,
            Ok(P::Unspecified) | Err(_) => Self::Unknown(value),
        }
    }
}

impl From<requests::Request> for RequestRecord {
    fn from(r: requests::Request) -> Self {
        Self { status: r.status.into(), id: r.id }
    }
}

impl From<routing::Referral> for ReferralRecord {
    fn from(r: routing::Referral) -> Self {
        Self {
            status: r.status.into(),
            attempt: r.attempt,
            offered_at: time(r.offered_at.as_ref()),
            completed_at: time(r.completed_at.as_ref()),
            agreement: r.agreement.into(),
            id: r.id,
            request_id: r.request_id,
            provider_code: r.provider_code,
        }
    }
}

impl From<billing::Quote> for QuoteRecord {
    fn from(q: billing::Quote) -> Self {
        Self {
            status: q.status.into(),
            id: q.id,
            number: q.number,
            request_id: q.request_id,
            referral_id: q.referral_id,
        }
    }
}

impl InvoiceRecord {
    /// Whether `invoice` bills a request (else a held training session's participants, with no request).
    pub fn bills_a_request(invoice: &billing::Invoice) -> bool {
        invoice.session_id.trim().is_empty()
    }
}

impl From<billing::Invoice> for InvoiceRecord {
    fn from(i: billing::Invoice) -> Self {
        Self {
            status: i.status.into(),
            id: i.id,
            number: i.number,
            request_id: i.request_id,
            referral_id: i.referral_id,
            quote_id: i.quote_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_statuses_map_to_their_names() {
        assert_eq!(RequestStatus::from(requests::RequestStatus::InProgress as i32), RequestStatus::InProgress);
        assert_eq!(RequestStatus::from(0), RequestStatus::Unknown(0));
        assert_eq!(RequestStatus::from(99), RequestStatus::Unknown(99));
        assert_eq!(QuoteStatus::from(billing::QuoteStatus::Issued as i32), QuoteStatus::Proposed);
        assert_eq!(QuoteStatus::Proposed.to_string(), "proposed");
        assert_eq!(InvoiceStatus::from(billing::InvoiceStatus::Cancelled as i32), InvoiceStatus::Cancelled);
        assert_eq!(ReferralStatus::from(routing::ReferralStatus::Withdrawn as i32), ReferralStatus::Withdrawn);
        assert_eq!(Agreement::from(routing::QuoteAgreement::AwaitingMember as i32), Agreement::AwaitingMember);
        assert_eq!(Agreement::from(0).to_string(), "unspecified");
    }

    #[test]
    fn a_referral_keeps_its_times_and_agreement() {
        let referral = routing::Referral {
            id: "f1".into(),
            request_id: "r1".into(),
            provider_code: "caue77".into(),
            status: routing::ReferralStatus::Accepted as i32,
            attempt: 2,
            offered_at: Some(Timestamp { seconds: 1_767_225_600, nanos: 0 }),
            completed_at: Some(Timestamp { seconds: 1_767_312_000, nanos: 500 }),
            agreement: routing::QuoteAgreement::Agreed as i32,
            ..Default::default()
        };
        let record = ReferralRecord::from(referral);
        assert_eq!(record.status, ReferralStatus::Accepted);
        assert_eq!(record.attempt, 2);
        assert_eq!(record.offered_at.map(format_time).as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(record.completed_at.map(format_time).as_deref(), Some("2026-01-02T00:00:00Z"));
        assert_eq!(record.agreement, Agreement::Agreed);
        assert_eq!(
            (record.id.as_str(), record.request_id.as_str(), record.provider_code.as_str()),
            ("f1", "r1", "caue77")
        );
    }

    #[test]
    fn an_invoice_keeps_its_quote() {
        let invoice = billing::Invoice {
            id: "i1".into(),
            number: "F-caue77-2026-000001".into(),
            request_id: "r1".into(),
            referral_id: "f1".into(),
            quote_id: "q1".into(),
            status: billing::InvoiceStatus::Paid as i32,
            ..Default::default()
        };
        assert!(InvoiceRecord::bills_a_request(&invoice));
        let session = billing::Invoice { request_id: String::new(), session_id: "s1".into(), ..invoice.clone() };
        assert!(!InvoiceRecord::bills_a_request(&session), "a session's invoice is not an orphan of a request");
        let record = InvoiceRecord::from(invoice);
        assert_eq!(record.quote_id, "q1");
        assert_eq!(record.status, InvoiceStatus::Paid);
        assert!(record.status.is_live());
    }
}
