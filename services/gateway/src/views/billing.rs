//! Billing as JSON: quotes (and who decided on them), invoices with their lines, credit notes, and the
//! parties as they stood when each document was issued.

use id77_proto::billing::v1 as billing;
use serde::Serialize;

use super::common::{UNSPECIFIED, non_empty, timestamp};

/// A quote's status: `proposed` (`QUOTE_STATUS_ISSUED` on the wire) → `accepted` | `refused` | `voided` |
/// `expired` (ADR 0013).
pub fn quote_status(status: i32) -> &'static str {
    match billing::QuoteStatus::try_from(status) {
        Ok(billing::QuoteStatus::Issued) => "proposed",
        Ok(billing::QuoteStatus::Accepted) => "accepted",
        Ok(billing::QuoteStatus::Refused) => "refused",
        Ok(billing::QuoteStatus::Voided) => "voided",
        Ok(billing::QuoteStatus::Expired) => "expired",
        _ => UNSPECIFIED,
    }
}

/// A seller or buyer of a billing document, as it stood when the document was issued.
#[derive(Debug, Default, Serialize)]
pub struct Party {
    pub name: String,
    pub trading_name: String,
    pub siren: String,
    pub siret: String,
    pub vat_id: String,
    pub address_line: String,
    pub postcode: String,
    pub city: String,
    pub country_code: String,
}

impl From<Option<billing::Party>> for Party {
    fn from(p: Option<billing::Party>) -> Self {
        let p = p.unwrap_or_default();
        Self {
            name: p.name,
            trading_name: p.trading_name,
            siren: p.siren,
            siret: p.siret,
            vat_id: p.vat_id,
            address_line: p.address_line,
            postcode: p.postcode,
            city: p.city,
            country_code: p.country_code,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Quote {
    pub id: String,
    pub number: String,
    pub issuer_code: String,
    pub year: i32,
    pub sequence: i64,
    pub member_id: String,
    pub request_id: String,
    pub referral_id: String,
    pub offer_id: String,
    pub label: String,
    pub amount_cents: i64,
    pub currency: String,
    pub status: &'static str,
    pub issued_at: Option<String>,
    /// An offer priced on quote whose amount the provider has still to state (amount_cents is then 0).
    pub amount_to_be_stated: bool,
    /// VAT rate in basis points (2000 = 20 %); null when VAT does not apply (vat_note says why).
    pub vat_rate_bp: Option<i32>,
    pub vat_note: Option<String>,
    /// A proposed quote expires at this instant unless a member admin accepts or refuses it.
    pub expires_at: Option<String>,
    /// When the status left `proposed`, and who decided (null for the platform: a voided or expired quote).
    pub decided_at: Option<String>,
    pub decided_by_name: Option<String>,
    /// Accepted: who signs for the member, and the member's purchase order number (numéro d'engagement).
    pub signatory_name: Option<String>,
    pub purchase_order_number: Option<String>,
    /// Refused: the member's reason; voided or expired: why.
    pub decision_reason: Option<String>,
    pub seller: Party,
    pub buyer: Party,
}

impl From<billing::Quote> for Quote {
    fn from(q: billing::Quote) -> Self {
        Self {
            seller: q.seller.into(),
            buyer: q.buyer.into(),
            status: quote_status(q.status),
            issued_at: timestamp(q.issued_at.as_ref()),
            amount_to_be_stated: q.amount_to_be_stated,
            vat_rate_bp: q.vat_rate_bp,
            vat_note: non_empty(q.vat_note),
            expires_at: timestamp(q.expires_at.as_ref()),
            decided_at: timestamp(q.decided_at.as_ref()),
            decided_by_name: non_empty(q.decided_by_name),
            signatory_name: non_empty(q.signatory_name),
            purchase_order_number: non_empty(q.purchase_order_number),
            decision_reason: non_empty(q.decision_reason),
            id: q.id,
            number: q.number,
            issuer_code: q.issuer_code,
            year: q.year,
            sequence: q.sequence,
            member_id: q.member_id,
            request_id: q.request_id,
            referral_id: q.referral_id,
            offer_id: q.offer_id,
            label: q.label,
            amount_cents: q.amount_cents,
            currency: q.currency,
        }
    }
}

fn invoice_status(status: i32) -> &'static str {
    match billing::InvoiceStatus::try_from(status) {
        Ok(billing::InvoiceStatus::Issued) => "issued",
        Ok(billing::InvoiceStatus::Sent) => "sent",
        Ok(billing::InvoiceStatus::Paid) => "paid",
        Ok(billing::InvoiceStatus::Cancelled) => "cancelled",
        _ => UNSPECIFIED,
    }
}

#[derive(Debug, Serialize)]
pub struct InvoiceLine {
    pub label: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub net_cents: i64,
}

impl From<billing::InvoiceLine> for InvoiceLine {
    fn from(l: billing::InvoiceLine) -> Self {
        Self { label: l.label, quantity: l.quantity, unit_price_cents: l.unit_price_cents, net_cents: l.net_cents }
    }
}

#[derive(Debug, Serialize)]
pub struct Invoice {
    pub id: String,
    pub number: String,
    pub issuer_code: String,
    pub year: i32,
    pub sequence: i64,
    pub member_id: String,
    pub buyer_siren: String,
    pub request_id: String,
    pub referral_id: String,
    pub offer_id: String,
    pub lines: Vec<InvoiceLine>,
    pub total_net_cents: i64,
    pub total_vat_cents: i64,
    pub total_gross_cents: i64,
    pub vat_rate_bp: Option<i32>,
    pub vat_note: String,
    pub currency: String,
    pub status: &'static str,
    pub issued_at: Option<String>,
    pub due_date: String,
    pub credit_note_id: Option<String>,
    pub seller: Party,
    pub buyer: Party,
    pub sent_on: Option<String>,
    pub paid_on: Option<String>,
    pub payment_reference: Option<String>,
    /// The accepted quote the invoice bills (its number is the EN 16931 project reference, BT-11).
    pub quote_id: Option<String>,
    pub quote_number: Option<String>,
    /// The member's purchase order number from the quote's acceptance (BT-13); null when none was given.
    pub purchase_order_number: Option<String>,
}

impl From<billing::Invoice> for Invoice {
    fn from(i: billing::Invoice) -> Self {
        Self {
            quote_id: non_empty(i.quote_id),
            quote_number: non_empty(i.quote_number),
            purchase_order_number: non_empty(i.purchase_order_number),
            sent_on: Some(i.sent_on).filter(|d| !d.is_empty()),
            paid_on: Some(i.paid_on).filter(|d| !d.is_empty()),
            payment_reference: Some(i.payment_reference).filter(|r| !r.is_empty()),
            seller: i.seller.into(),
            buyer: i.buyer.into(),
            status: invoice_status(i.status),
            issued_at: timestamp(i.issued_at.as_ref()),
            lines: i.lines.into_iter().map(InvoiceLine::from).collect(),
            credit_note_id: Some(i.credit_note_id).filter(|c| !c.is_empty()),
            id: i.id,
            number: i.number,
            issuer_code: i.issuer_code,
            year: i.year,
            sequence: i.sequence,
            member_id: i.member_id,
            buyer_siren: i.buyer_siren,
            request_id: i.request_id,
            referral_id: i.referral_id,
            offer_id: i.offer_id,
            total_net_cents: i.total_net_cents,
            total_vat_cents: i.total_vat_cents,
            total_gross_cents: i.total_gross_cents,
            vat_rate_bp: i.vat_rate_bp,
            vat_note: i.vat_note,
            currency: i.currency,
            due_date: i.due_date,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CreditNote {
    pub id: String,
    pub number: String,
    pub issuer_code: String,
    pub invoice_id: String,
    pub invoice_number: String,
    pub member_id: String,
    pub buyer_siren: String,
    pub lines: Vec<InvoiceLine>,
    pub total_net_cents: i64,
    pub total_vat_cents: i64,
    pub total_gross_cents: i64,
    pub vat_rate_bp: Option<i32>,
    pub vat_note: String,
    pub currency: String,
    pub reason: String,
    pub issued_at: Option<String>,
    pub seller: Party,
    pub buyer: Party,
}

impl From<billing::CreditNote> for CreditNote {
    fn from(c: billing::CreditNote) -> Self {
        Self {
            seller: c.seller.into(),
            buyer: c.buyer.into(),
            issued_at: timestamp(c.issued_at.as_ref()),
            lines: c.lines.into_iter().map(InvoiceLine::from).collect(),
            id: c.id,
            number: c.number,
            issuer_code: c.issuer_code,
            invoice_id: c.invoice_id,
            invoice_number: c.invoice_number,
            member_id: c.member_id,
            buyer_siren: c.buyer_siren,
            total_net_cents: c.total_net_cents,
            total_vat_cents: c.total_vat_cents,
            total_gross_cents: c.total_gross_cents,
            vat_rate_bp: c.vat_rate_bp,
            vat_note: c.vat_note,
            currency: c.currency,
            reason: c.reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use id77_proto::prost_types::Timestamp;

    fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    #[test]
    fn quote_statuses_are_lowercase_strings() {
        let statuses: Vec<_> = (1..=5).map(quote_status).collect();
        assert_eq!(statuses, ["proposed", "accepted", "refused", "voided", "expired"]);
        assert_eq!(quote_status(0), UNSPECIFIED);
    }

    #[test]
    fn quotes_say_who_decided_and_invoices_which_quote_they_bill() {
        let accepted = Quote::from(billing::Quote {
            id: "q1".into(),
            number: "D-caue77-2026-000001".into(),
            status: billing::QuoteStatus::Accepted.into(),
            amount_cents: 120_000,
            vat_rate_bp: Some(2000),
            expires_at: ts(1_702_592_000, 0),
            decided_at: ts(1_700_000_000, 0),
            decided_by_user_id: "u1".into(),
            decided_by_name: "Marie Dupont".into(),
            signatory_name: "Marie Dupont, maire".into(),
            purchase_order_number: "EJ-2026-0042".into(),
            ..Default::default()
        });
        let value = serde_json::to_value(accepted).unwrap_or_default();
        assert_eq!(value["status"], "accepted");
        assert_eq!(value["decided_at"], "2023-11-14T22:13:20Z");
        assert_eq!(value["expires_at"], "2023-12-14T22:13:20Z");
        assert_eq!(value["decided_by_name"], "Marie Dupont");
        assert_eq!(value["signatory_name"], "Marie Dupont, maire");
        assert_eq!(value["purchase_order_number"], "EJ-2026-0042");
        assert_eq!(value["decision_reason"], serde_json::Value::Null);
        assert_eq!((value["vat_rate_bp"].as_i64(), value["vat_note"].is_null()), (Some(2000), true));
        let refused = Quote::from(billing::Quote {
            status: billing::QuoteStatus::Refused.into(),
            decision_reason: "Budget non voté".into(),
            vat_note: "TVA non applicable, art. 256 B du CGI".into(),
            ..Default::default()
        });
        let value = serde_json::to_value(refused).unwrap_or_default();
        assert_eq!(
            (value["status"].as_str(), value["decision_reason"].as_str()),
            (Some("refused"), Some("Budget non voté"))
        );
        assert_eq!((value["signatory_name"].is_null(), value["purchase_order_number"].is_null()), (true, true));
        assert_eq!(
            (value["vat_rate_bp"].is_null(), value["vat_note"].as_str()),
            (true, Some("TVA non applicable, art. 256 B du CGI"))
        );

        let invoice = Invoice::from(billing::Invoice {
            quote_id: "q1".into(),
            quote_number: "D-caue77-2026-000001".into(),
            purchase_order_number: "EJ-2026-0042".into(),
            ..Default::default()
        });
        let value = serde_json::to_value(invoice).unwrap_or_default();
        assert_eq!(
            (value["quote_id"].as_str(), value["quote_number"].as_str(), value["purchase_order_number"].as_str()),
            (Some("q1"), Some("D-caue77-2026-000001"), Some("EJ-2026-0042"))
        );
        let value = serde_json::to_value(Invoice::from(billing::Invoice::default())).unwrap_or_default();
        assert_eq!(value["purchase_order_number"], serde_json::Value::Null, "no purchase order: null");
    }
}
