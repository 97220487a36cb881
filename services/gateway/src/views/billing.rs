//! Billing as JSON: quotes (and who decided on them), invoices with their lines, credit notes, and the
//! parties as they stood when each document was issued.
//!
//! Every amount is in euro cents. VAT is a rate in basis points (`vat_rate_bp`, 2000 = 20 %, the form billing
//! stores and the offer states), null when VAT does not apply (`vat_note` then says why); billing computes the
//! VAT (rounded half up) and the total including VAT, so clients never compute them: `vat_cents` and
//! `total_incl_vat_cents` on a quote, `total_vat_cents` and `total_gross_cents` on invoices and credit notes.

use id77_proto::billing::v1 as billing;
use serde::Serialize;

use super::common::{UNSPECIFIED, non_empty, timestamp};

/// A quote's status: proposed → accepted | refused | voided | expired; accepted → voided (the request was
/// cancelled before its completion). Every other status is final. A member admin of the quote's member accepts or
/// refuses a proposed quote; a proposed quote expires at `expires_at`.
#[derive(utoipa::ToSchema)]
#[schema(as = QuoteStatus, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum QuoteStatusDoc {
    Proposed,
    Accepted,
    Refused,
    Voided,
    Expired,
}

/// An invoice's status: issued → sent → paid (or issued → paid); `cancelled` once a credit note cancelled it.
#[derive(utoipa::ToSchema)]
#[schema(as = InvoiceStatus, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum InvoiceStatusDoc {
    Issued,
    Sent,
    Paid,
    Cancelled,
    /// A status this gateway does not know yet (a newer billing service).
    Unspecified,
}

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

/// A seller or buyer of a billing document as it stood when the document was issued; empty strings are unknown
/// facts. The seller's SIRET is its electronic address for Chorus Pro (scheme 0009).
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Party {
    /// Legal name.
    pub name: String,
    /// The directorate or service that delivers, when it differs from the legal name.
    pub trading_name: String,
    #[schema(pattern = "^([0-9]{9})?$", examples("217702846"))]
    pub siren: String,
    #[schema(pattern = "^([0-9]{14})?$")]
    pub siret: String,
    /// Intra-community VAT number.
    pub vat_id: String,
    pub address_line: String,
    pub postcode: String,
    pub city: String,
    /// ISO 3166-1 alpha-2.
    #[schema(examples("FR"))]
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

/// A quote a provider issued for a request, proposed to the member's admins (ADR 0013).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Quote {
    #[schema(format = "uuid")]
    pub id: String,
    /// Gapless per issuer and year: D-<issuer>-<year>-<seq:06>.
    #[schema(examples("D-caue77-2026-000001"))]
    pub number: String,
    /// The provider that issues it.
    pub issuer_code: String,
    pub year: i32,
    pub sequence: i64,
    #[schema(format = "uuid")]
    pub member_id: String,
    #[schema(format = "uuid")]
    pub request_id: String,
    #[schema(format = "uuid")]
    pub referral_id: String,
    pub offer_id: String,
    pub label: String,
    /// Euro cents, VAT excluded (HT).
    #[schema(examples(120_000))]
    pub amount_cents: i64,
    #[schema(examples("EUR"))]
    pub currency: String,
    #[schema(value_type = QuoteStatusDoc)]
    pub status: &'static str,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(format = DateTime, required = true)]
    pub issued_at: Option<String>,
    /// An offer priced on quote whose amount the provider has still to state (amount_cents is then 0).
    pub amount_to_be_stated: bool,
    /// VAT rate in basis points (2000 = 20 %); null when VAT does not apply (vat_note says why).
    #[schema(required = true, minimum = 0, maximum = 10_000, examples(2000))]
    pub vat_rate_bp: Option<i32>,
    /// Why VAT does not apply, when it does not.
    #[schema(required = true)]
    pub vat_note: Option<String>,
    /// VAT in euro cents: `amount_cents` at `vat_rate_bp`, rounded half up, as the invoice billing this quote
    /// will compute it; 0 when VAT does not apply or the amount is still to be stated.
    #[schema(examples(24_000))]
    pub vat_cents: i64,
    /// `amount_cents` + `vat_cents`: euro cents, VAT included (TTC).
    #[schema(examples(144_000))]
    pub total_incl_vat_cents: i64,
    /// A proposed quote expires at this instant unless a member admin accepts or refuses it.
    #[schema(format = DateTime, required = true)]
    pub expires_at: Option<String>,
    /// When the status left `proposed` (accepted, refused, voided or expired); null while proposed.
    #[schema(format = DateTime, required = true)]
    pub decided_at: Option<String>,
    /// The display name of who accepted or refused it; null while proposed and for the platform's own decisions
    /// (voided, expired).
    #[schema(required = true)]
    pub decided_by_name: Option<String>,
    /// Accepted: who signs for the member (e.g. "Marie Dupont, maire").
    #[schema(required = true)]
    pub signatory_name: Option<String>,
    /// Accepted: the member's purchase order number (numéro d'engagement), printed on the invoice (EN 16931
    /// BT-13); null when none was given.
    #[schema(required = true)]
    pub purchase_order_number: Option<String>,
    /// Refused: the member's reason; voided or expired: why.
    #[schema(required = true)]
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
            vat_cents: q.vat_cents,
            total_incl_vat_cents: q.total_incl_vat_cents,
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

/// One line of an invoice or credit note. Euro cents, VAT excluded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoiceLine {
    pub label: String,
    /// Days for a daily rate, otherwise 1.
    pub quantity: i64,
    /// Euro cents, VAT excluded.
    pub unit_price_cents: i64,
    /// `quantity` × `unit_price_cents`, VAT excluded.
    pub net_cents: i64,
}

impl From<billing::InvoiceLine> for InvoiceLine {
    fn from(l: billing::InvoiceLine) -> Self {
        Self { label: l.label, quantity: l.quantity, unit_price_cents: l.unit_price_cents, net_cents: l.net_cents }
    }
}

/// An invoice, issued when a provider completes a referral of a billed offer (EN 16931).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Invoice {
    #[schema(format = "uuid")]
    pub id: String,
    /// Gapless per issuer and year: F-<issuer>-<year>-<seq:06>.
    #[schema(examples("F-caue77-2026-000001"))]
    pub number: String,
    pub issuer_code: String,
    pub year: i32,
    pub sequence: i64,
    #[schema(format = "uuid")]
    pub member_id: String,
    /// The buyer's SIREN.
    pub buyer_siren: String,
    /// The request it bills; null for a held training session's invoice (`session_id` set instead).
    #[schema(format = "uuid", required = true)]
    pub request_id: Option<String>,
    #[schema(format = "uuid", required = true)]
    pub referral_id: Option<String>,
    /// The held training session whose participants it bills; null for a request's invoice.
    #[schema(format = "uuid", required = true)]
    pub session_id: Option<String>,
    pub offer_id: String,
    pub lines: Vec<InvoiceLine>,
    /// Euro cents, VAT excluded (HT).
    #[schema(examples(120_000))]
    pub total_net_cents: i64,
    /// VAT (TVA) in euro cents: `total_net_cents` at `vat_rate_bp`, rounded half up; 0 when VAT does not apply.
    #[schema(examples(24_000))]
    pub total_vat_cents: i64,
    /// Including VAT (TTC): `total_net_cents` + `total_vat_cents`.
    #[schema(examples(144_000))]
    pub total_gross_cents: i64,
    /// VAT rate in basis points (2000 = 20 %); null when VAT does not apply (vat_note says why).
    #[schema(required = true, minimum = 0, maximum = 10_000, examples(2000))]
    pub vat_rate_bp: Option<i32>,
    /// Why VAT does not apply, when it does not (empty otherwise).
    pub vat_note: String,
    #[schema(examples("EUR"))]
    pub currency: String,
    #[schema(value_type = InvoiceStatusDoc)]
    pub status: &'static str,
    #[schema(format = DateTime, required = true)]
    pub issued_at: Option<String>,
    /// 30 days after issue (YYYY-MM-DD).
    #[schema(format = Date)]
    pub due_date: String,
    /// The credit note that cancelled it.
    #[schema(format = "uuid", required = true)]
    pub credit_note_id: Option<String>,
    pub seller: Party,
    pub buyer: Party,
    /// When it was marked sent (YYYY-MM-DD).
    #[schema(format = Date, required = true)]
    pub sent_on: Option<String>,
    /// When it was marked paid (YYYY-MM-DD).
    #[schema(format = Date, required = true)]
    pub paid_on: Option<String>,
    /// The payment's reference (e.g. the treasury's mandate number), once paid.
    #[schema(required = true)]
    pub payment_reference: Option<String>,
    /// The accepted quote the invoice bills.
    #[schema(format = "uuid", required = true)]
    pub quote_id: Option<String>,
    /// That quote's number (EN 16931 BT-11, project reference).
    #[schema(required = true)]
    pub quote_number: Option<String>,
    /// The member's purchase order number (numéro d'engagement) given when it accepted the quote (EN 16931
    /// BT-13); null when none was given.
    #[schema(required = true)]
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
            request_id: Some(i.request_id).filter(|r| !r.is_empty()),
            referral_id: Some(i.referral_id).filter(|r| !r.is_empty()),
            session_id: Some(i.session_id).filter(|r| !r.is_empty()),
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

/// A credit note cancelling an invoice: the invoice's lines, totals and parties.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreditNote {
    #[schema(format = "uuid")]
    pub id: String,
    /// Gapless per issuer and year: A-<issuer>-<year>-<seq:06>.
    #[schema(examples("A-caue77-2026-000001"))]
    pub number: String,
    pub issuer_code: String,
    #[schema(format = "uuid")]
    pub invoice_id: String,
    pub invoice_number: String,
    #[schema(format = "uuid")]
    pub member_id: String,
    pub buyer_siren: String,
    pub lines: Vec<InvoiceLine>,
    /// Euro cents, VAT excluded (HT).
    pub total_net_cents: i64,
    /// VAT (TVA) in euro cents, as on the invoice it cancels.
    pub total_vat_cents: i64,
    /// Including VAT (TTC): `total_net_cents` + `total_vat_cents`.
    pub total_gross_cents: i64,
    /// VAT rate in basis points (2000 = 20 %); null when VAT does not apply (vat_note says why).
    #[schema(required = true, minimum = 0, maximum = 10_000, examples(2000))]
    pub vat_rate_bp: Option<i32>,
    /// Why VAT does not apply, when it does not (empty otherwise).
    pub vat_note: String,
    #[schema(examples("EUR"))]
    pub currency: String,
    /// Why the invoice was cancelled.
    pub reason: String,
    #[schema(format = DateTime, required = true)]
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
    use id77_proto::prost_types::Timestamp;
    use serde_json::{Value, json};

    use super::*;

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
    fn quotes_carry_their_vat_and_total_including_vat_as_billing_computed_them() {
        let value = serde_json::to_value(Quote::from(billing::Quote {
            amount_cents: 120_000,
            vat_rate_bp: Some(550),
            vat_cents: 6_600,
            total_incl_vat_cents: 126_600,
            ..Default::default()
        }))
        .unwrap_or_default();
        assert_eq!(
            (&value["amount_cents"], &value["vat_rate_bp"], &value["vat_cents"], &value["total_incl_vat_cents"]),
            (&json!(120_000), &json!(550), &json!(6_600), &json!(126_600))
        );
        assert_eq!(value["vat_note"], Value::Null);
        // VAT not applicable: a null rate, the mention, no VAT, the total is the amount.
        let value = serde_json::to_value(Quote::from(billing::Quote {
            amount_cents: 90_000,
            vat_note: "TVA non applicable, art. 256 B du CGI".into(),
            total_incl_vat_cents: 90_000,
            ..Default::default()
        }))
        .unwrap_or_default();
        assert_eq!(
            (&value["vat_rate_bp"], &value["vat_cents"], &value["total_incl_vat_cents"], &value["vat_note"]),
            (&Value::Null, &json!(0), &json!(90_000), &json!("TVA non applicable, art. 256 B du CGI"))
        );
        // Invoices and credit notes carry theirs as their EN 16931 totals.
        let totals = |value: &Value| {
            [&value["vat_rate_bp"], &value["total_net_cents"], &value["total_vat_cents"], &value["total_gross_cents"]]
                .map(Value::clone)
        };
        let invoice = serde_json::to_value(Invoice::from(billing::Invoice {
            total_net_cents: 245_000,
            total_vat_cents: 49_000,
            total_gross_cents: 294_000,
            vat_rate_bp: Some(2000),
            ..Default::default()
        }))
        .unwrap_or_default();
        assert_eq!(totals(&invoice), [json!(2000), json!(245_000), json!(49_000), json!(294_000)]);
        let note = serde_json::to_value(CreditNote::from(billing::CreditNote {
            total_net_cents: 245_000,
            total_vat_cents: 49_000,
            total_gross_cents: 294_000,
            vat_rate_bp: Some(2000),
            ..Default::default()
        }))
        .unwrap_or_default();
        assert_eq!(totals(&note), totals(&invoice));
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
