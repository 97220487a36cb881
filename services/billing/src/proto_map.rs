//! Billing's rows on the wire: quotes, invoices, credit notes and their parties as protobuf messages, for the
//! gRPC answers and the integration events alike.

use id77_platform::time;
use id77_proto::billing::v1 as pb;

use crate::domain::{self, QuoteStatus};
use crate::parties::Party;
use crate::store::{CreditNoteRow, InvoiceRow, QuoteRow};

/// A quote's status on the wire: proposed is `ISSUED` (kept for compatibility).
pub fn status_to_proto(status: &str) -> pb::QuoteStatus {
    match QuoteStatus::parse(status) {
        Some(QuoteStatus::Proposed) => pb::QuoteStatus::Issued,
        Some(QuoteStatus::Accepted) => pb::QuoteStatus::Accepted,
        Some(QuoteStatus::Refused) => pb::QuoteStatus::Refused,
        Some(QuoteStatus::Voided) => pb::QuoteStatus::Voided,
        Some(QuoteStatus::Expired) => pb::QuoteStatus::Expired,
        None => pb::QuoteStatus::Unspecified,
    }
}

pub fn party_to_proto(p: &Party) -> pb::Party {
    pb::Party {
        name: p.name.clone(),
        trading_name: p.trading_name.clone(),
        siren: p.siren.clone(),
        siret: p.siret.clone(),
        vat_id: p.vat_id.clone(),
        address_line: p.address_line.clone(),
        postcode: p.postcode.clone(),
        city: p.city.clone(),
        country_code: p.country_code.clone(),
    }
}

pub fn quote_to_proto(q: QuoteRow) -> pb::Quote {
    let totals = domain::quote_totals(q.amount_cents, q.vat_rate_bp, &q.vat_note);
    pb::Quote {
        vat_cents: totals.vat_cents,
        total_incl_vat_cents: totals.gross_cents,
        id: q.id.to_string(),
        status: status_to_proto(&q.status).into(),
        number: q.number,
        issuer_code: q.issuer_code,
        year: q.year,
        sequence: q.sequence,
        member_id: q.member_id.to_string(),
        request_id: q.request_id.to_string(),
        referral_id: q.referral_id.to_string(),
        offer_id: q.offer_id.to_string(),
        label: q.label,
        amount_cents: q.amount_cents,
        currency: q.currency,
        issued_at: Some(time::to_proto(q.issued_at)),
        amount_to_be_stated: q.amount_to_be_stated,
        vat_rate_bp: q.vat_rate_bp,
        vat_note: q.vat_note,
        seller: Some(party_to_proto(&q.seller)),
        buyer: Some(party_to_proto(&q.buyer)),
        decided_at: time::to_proto_opt(q.decided_at),
        decided_by_user_id: q.decided_by_user_id.map(|u| u.to_string()).unwrap_or_default(),
        decided_by_name: q.decided_by_name,
        signatory_name: q.signatory_name,
        purchase_order_number: q.purchase_order_number,
        decision_reason: q.decision_reason,
        expires_at: Some(time::to_proto(q.expires_at)),
    }
}

fn invoice_status_to_proto(status: &str) -> pb::InvoiceStatus {
    match status {
        "issued" => pb::InvoiceStatus::Issued,
        "sent" => pb::InvoiceStatus::Sent,
        "paid" => pb::InvoiceStatus::Paid,
        "cancelled" => pb::InvoiceStatus::Cancelled,
        _ => pb::InvoiceStatus::Unspecified,
    }
}

fn line_of(i: &InvoiceRow) -> pb::InvoiceLine {
    pb::InvoiceLine {
        label: i.label.clone(),
        quantity: i.quantity,
        unit_price_cents: i.unit_price_cents,
        net_cents: i.net_cents,
    }
}

pub fn invoice_to_proto(i: InvoiceRow) -> pb::Invoice {
    pb::Invoice {
        seller: Some(party_to_proto(&i.seller)),
        buyer: Some(party_to_proto(&i.buyer)),
        sent_on: i.sent_on.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        paid_on: i.paid_on.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
        payment_reference: i.payment_reference.clone(),
        id: i.id.to_string(),
        status: invoice_status_to_proto(&i.status).into(),
        lines: vec![line_of(&i)],
        number: i.number,
        issuer_code: i.issuer_code,
        year: i.year,
        sequence: i.sequence,
        member_id: i.member_id.to_string(),
        buyer_siren: i.buyer_siren,
        // Empty for the invoice of a held session, which bills no request (its line names the session).
        request_id: i.request_id.map(|id| id.to_string()).unwrap_or_default(),
        referral_id: i.referral_id.map(|id| id.to_string()).unwrap_or_default(),
        offer_id: i.offer_id.to_string(),
        offer_version: i.offer_version,
        total_net_cents: i.net_cents,
        total_vat_cents: i.vat_cents,
        total_gross_cents: i.gross_cents,
        vat_rate_bp: i.vat_rate_bp,
        vat_note: i.vat_note,
        currency: i.currency,
        issued_at: Some(time::to_proto(i.issued_at)),
        due_date: i.due_date.format("%Y-%m-%d").to_string(),
        credit_note_id: i.credit_note_id.map(|id| id.to_string()).unwrap_or_default(),
        quote_id: i.quote_id.map(|id| id.to_string()).unwrap_or_default(),
        quote_number: i.quote_number,
        purchase_order_number: i.purchase_order_number,
        session_id: i.session_id.map(|id| id.to_string()).unwrap_or_default(),
    }
}

/// A credit note carries the lines and totals of the invoice it cancels.
pub fn credit_note_to_proto(c: &CreditNoteRow, i: &InvoiceRow) -> pb::CreditNote {
    pb::CreditNote {
        id: c.id.to_string(),
        number: c.number.clone(),
        issuer_code: c.issuer_code.clone(),
        year: c.year,
        sequence: c.sequence,
        invoice_id: i.id.to_string(),
        invoice_number: i.number.clone(),
        member_id: i.member_id.to_string(),
        buyer_siren: i.buyer_siren.clone(),
        lines: vec![line_of(i)],
        total_net_cents: i.net_cents,
        total_vat_cents: i.vat_cents,
        total_gross_cents: i.gross_cents,
        vat_rate_bp: i.vat_rate_bp,
        vat_note: i.vat_note.clone(),
        currency: i.currency.clone(),
        reason: c.reason.clone(),
        issued_at: Some(time::to_proto(c.issued_at)),
        seller: Some(party_to_proto(&i.seller)),
        buyer: Some(party_to_proto(&i.buyer)),
    }
}
