//! A quote's life, free of I/O (ADR 0013): proposed to the member, then accepted or refused by a member admin,
//! voided when the request is cancelled before its completion, expired when nobody answered in time.
//!
//! ```text
//! proposed ─┬─ accept ──→ accepted ── void ──→ voided
//!           ├─ refuse ──→ refused
//!           ├─ void ────→ voided
//!           └─ expire ──→ expired
//! ```
//!
//! Every other status is final. Also the checks of what a member admin types when deciding, and who acted.

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::invoice::{Totals, totals};
use super::pricing::Vat;

/// Where a quote stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuoteStatus {
    /// Waiting for a member admin's answer (`QUOTE_STATUS_ISSUED` on the wire).
    Proposed,
    Accepted,
    Refused,
    Voided,
    Expired,
}

/// What happens to a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuoteEvent {
    /// A member admin agrees to it.
    Accept,
    /// A member admin turns it down.
    Refuse,
    /// The request was cancelled before its completion.
    Void,
    /// Nobody answered before its expiry.
    Expire,
}

/// A transition the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition {
    pub from: QuoteStatus,
    pub event: QuoteEvent,
}

impl std::fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot {} a quote that {}", self.event.verb(), self.from.explain())
    }
}

impl std::error::Error for InvalidTransition {}

impl QuoteStatus {
    pub const ALL: [Self; 5] = [Self::Proposed, Self::Accepted, Self::Refused, Self::Voided, Self::Expired];

    /// Value of `quote.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Accepted => "accepted",
            Self::Refused => "refused",
            Self::Voided => "voided",
            Self::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// No event changes it any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Refused | Self::Voided | Self::Expired)
    }

    /// The status after `event`, or why it cannot happen.
    pub fn apply(self, event: QuoteEvent) -> Result<Self, InvalidTransition> {
        match (self, event) {
            (Self::Proposed, QuoteEvent::Accept) => Ok(Self::Accepted),
            (Self::Proposed, QuoteEvent::Refuse) => Ok(Self::Refused),
            (Self::Proposed | Self::Accepted, QuoteEvent::Void) => Ok(Self::Voided),
            (Self::Proposed, QuoteEvent::Expire) => Ok(Self::Expired),
            (from, event) => Err(InvalidTransition { from, event }),
        }
    }

    /// What a quote in this status is, for a message: "is voided: the request was cancelled".
    pub fn explain(self) -> &'static str {
        match self {
            Self::Proposed => "is proposed, waiting for a member admin's answer",
            Self::Accepted => "is already accepted",
            Self::Refused => "is refused",
            Self::Voided => "is voided: the request was cancelled",
            Self::Expired => "expired: nobody answered in time",
        }
    }
}

impl QuoteEvent {
    fn verb(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Refuse => "refuse",
            Self::Void => "void",
            Self::Expire => "expire",
        }
    }
}

/// Default validity of a proposed quote (`ID77_QUOTE_VALIDITY_DAYS`).
pub const DEFAULT_VALIDITY_DAYS: i64 = 30;
/// Longest validity accepted from the configuration.
pub const MAX_VALIDITY_DAYS: i64 = 3650;

/// When a quote proposed at `issued_at` expires.
pub fn expires_at(issued_at: DateTime<Utc>, validity: Duration) -> DateTime<Utc> {
    issued_at.checked_add_signed(validity).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A proposed quote past its expiry at `now`.
pub fn is_due(status: QuoteStatus, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    status == QuoteStatus::Proposed && expires_at <= now
}

/// A quote's totals from its stored terms (`amount_cents` excluding VAT, `vat_rate_bp`, `vat_note`): the VAT
/// rounded half up exactly as the invoice billing the quote will compute it ([`totals`]). Stored terms were
/// validated when the quote was issued; should they not read (a rate out of 0..=10000) or overflow, the quote
/// shows no VAT rather than failing to show at all.
pub fn quote_totals(amount_cents: i64, vat_rate_bp: Option<i32>, vat_note: &str) -> Totals {
    let vat = Vat::parse(vat_rate_bp, vat_note).unwrap_or_else(|_| Vat::NotApplicable(vat_note.to_owned()));
    totals(amount_cents, &vat).unwrap_or(Totals { net_cents: amount_cents, vat_cents: 0, gross_cents: amount_cents })
}

/// Longest signatory name.
pub const MAX_SIGNATORY_CHARS: usize = 200;
/// Longest purchase order number.
pub const MAX_PURCHASE_ORDER_CHARS: usize = 50;
/// Longest refusal reason.
pub const MAX_REFUSAL_CHARS: usize = 1000;

/// Who signs for the member: trimmed, 1 to 200 characters, no control character.
pub fn signatory_name(raw: &str) -> Result<String, &'static str> {
    let name = raw.trim();
    let count = name.chars().count();
    if count == 0 {
        return Err("is required");
    }
    if count > MAX_SIGNATORY_CHARS {
        return Err("must be at most 200 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(name.to_owned())
}

/// The member's purchase order number, optional: trimmed, `None` when empty, at most 50 characters, no
/// control character.
pub fn purchase_order_number(raw: &str) -> Result<Option<String>, &'static str> {
    let number = raw.trim();
    if number.is_empty() {
        return Ok(None);
    }
    if number.chars().count() > MAX_PURCHASE_ORDER_CHARS {
        return Err("must be at most 50 characters");
    }
    if number.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(Some(number.to_owned()))
}

/// Why the member refuses: trimmed, 1 to 1000 characters; line breaks and tabs are kept, no other control
/// character.
pub fn refusal_reason(raw: &str) -> Result<String, &'static str> {
    let reason = raw.trim();
    let count = reason.chars().count();
    if count == 0 {
        return Err("is required");
    }
    if count > MAX_REFUSAL_CHARS {
        return Err("must be at most 1000 characters");
    }
    if reason.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err("must not contain control characters other than line breaks");
    }
    Ok(reason.to_owned())
}

/// The reason recorded on a quote voided by a cancellation.
pub fn void_reason(cancellation_reason: &str) -> String {
    let reason: String = cancellation_reason.trim().chars().filter(|c| !c.is_control()).take(500).collect();
    if reason.is_empty() { "request cancelled".to_owned() } else { format!("request cancelled: {reason}") }
}

/// Who acted on a quote: a user (`None`: the system), the role they acted in, their display name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub role: String,
    pub name: String,
}

/// A member admin's answer to a proposed quote, its fields already checked ([`signatory_name`]...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberDecision {
    Accept { signatory_name: String, purchase_order_number: Option<String> },
    Refuse { reason: String },
}

impl MemberDecision {
    /// The event it applies to the quote.
    pub fn event(&self) -> QuoteEvent {
        match self {
            Self::Accept { .. } => QuoteEvent::Accept,
            Self::Refuse { .. } => QuoteEvent::Refuse,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::QuoteEvent::{Accept, Expire, Refuse, Void};
    use super::QuoteStatus::{Accepted, Expired, Proposed, Refused, Voided};
    use super::*;

    #[test]
    fn the_transition_table_is_the_adr_one() {
        let events = [Accept, Refuse, Void, Expire];
        let table: [(QuoteStatus, [Option<QuoteStatus>; 4]); 5] = [
            (Proposed, [Some(Accepted), Some(Refused), Some(Voided), Some(Expired)]),
            (Accepted, [None, None, Some(Voided), None]),
            (Refused, [None, None, None, None]),
            (Voided, [None, None, None, None]),
            (Expired, [None, None, None, None]),
        ];
        for (from, row) in table {
            for (event, to) in events.into_iter().zip(row) {
                assert_eq!(from.apply(event).ok(), to, "{from:?} + {event:?}");
                if let Err(e) = from.apply(event) {
                    assert_eq!(e, InvalidTransition { from, event });
                }
            }
            assert_eq!(from.is_final(), row.iter().all(Option::is_none), "{from:?}");
        }
    }

    #[test]
    fn statuses_round_trip_and_explain_themselves() {
        for status in QuoteStatus::ALL {
            assert_eq!(QuoteStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(QuoteStatus::parse("issued"), None);
        let err = Voided.apply(Accept).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("cannot accept a quote that is voided: the request was cancelled"));
        let err = Accepted.apply(Refuse).err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("cannot refuse a quote that is already accepted"));
    }

    #[test]
    fn a_quote_expires_after_its_validity() {
        let issued = Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).single().unwrap_or_default();
        let at = expires_at(issued, Duration::days(DEFAULT_VALIDITY_DAYS));
        assert_eq!(at, Utc.with_ymd_and_hms(2026, 3, 31, 10, 0, 0).single().unwrap_or_default());
        assert!(!is_due(Proposed, at, at - Duration::seconds(1)));
        assert!(is_due(Proposed, at, at));
        assert!(!is_due(Accepted, at, at + Duration::days(1)), "only a proposed quote expires");
        assert_eq!(expires_at(DateTime::<Utc>::MAX_UTC, Duration::days(1)), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn a_quote_totals_like_the_invoice_that_will_bill_it() {
        let t = |net, bp, note| {
            let q = quote_totals(net, bp, note);
            (q.net_cents, q.vat_cents, q.gross_cents)
        };
        assert_eq!(t(120_000, Some(2000), ""), (120_000, 24_000, 144_000));
        // Rounded half up, like the invoice: 1 005 × 5.5 % = 55.275 → 55; 1 010 × 5.5 % = 55.55 → 56.
        assert_eq!(t(12_345, Some(2000), ""), (12_345, 2_469, 14_814));
        assert_eq!(t(1_005, Some(550), ""), (1_005, 55, 1_060));
        assert_eq!(t(1_010, Some(550), ""), (1_010, 56, 1_066));
        assert_eq!(t(99_999, Some(0), ""), (99_999, 0, 99_999));
        assert_eq!(t(120_000, None, "TVA non applicable, art. 256 B du CGI"), (120_000, 0, 120_000));
        assert_eq!(t(0, Some(2000), ""), (0, 0, 0), "an amount still to be stated");
        for (net, bp) in [(12_345, 2000), (1_005, 550), (7, 1000), (1_000_000_000, 2000)] {
            let vat = Vat::Rate(bp);
            assert_eq!(Some(quote_totals(net, Some(bp), "")), totals(net, &vat), "{net} at {bp} bp");
        }
        // Unreadable stored terms show no VAT instead of failing.
        assert_eq!(t(1_000, Some(20_000), ""), (1_000, 0, 1_000));
        assert_eq!(t(i64::MAX, Some(2000), ""), (i64::MAX, 0, i64::MAX));
    }

    #[test]
    fn decision_fields_are_checked() {
        assert_eq!(signatory_name("  Marie Dupont, maire "), Ok("Marie Dupont, maire".to_owned()));
        assert_eq!(signatory_name(" \t "), Err("is required"));
        assert!(signatory_name(&"é".repeat(200)).is_ok());
        assert!(signatory_name(&"é".repeat(201)).is_err());
        assert!(signatory_name("Marie\u{7}Dupont").is_err());
        assert!(signatory_name("Marie\nDupont").is_err());

        assert_eq!(purchase_order_number(""), Ok(None));
        assert_eq!(purchase_order_number("  "), Ok(None));
        assert_eq!(purchase_order_number(" EJ-2026-0042 "), Ok(Some("EJ-2026-0042".to_owned())));
        assert!(purchase_order_number(&"9".repeat(50)).is_ok_and(|n| n.is_some()));
        assert!(purchase_order_number(&"9".repeat(51)).is_err());
        assert!(purchase_order_number("EJ\u{0}42").is_err());
        assert!(purchase_order_number("EJ\n42").is_err());

        assert_eq!(refusal_reason(" Trop cher.\nNous reviendrons. "), Ok("Trop cher.\nNous reviendrons.".to_owned()));
        assert_eq!(refusal_reason(""), Err("is required"));
        assert!(refusal_reason(&"x".repeat(1000)).is_ok());
        assert!(refusal_reason(&"x".repeat(1001)).is_err());
        assert!(refusal_reason("non\u{1b}[31m").is_err());

        assert_eq!(void_reason(" le membre a renoncé "), "request cancelled: le membre a renoncé");
        assert_eq!(void_reason(""), "request cancelled");
    }
}
