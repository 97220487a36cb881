//! Issuing invoices and credit notes: take the issuer's next number, store the document and announce it, all
//! in the caller's transaction (a rollback gives the number back).

use chrono::{DateTime, Utc};
use id77_platform::outbox;
use id77_proto::billing::v1 as pb;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{self, CURRENCY, Document, Line, Vat};
use crate::grpc::{credit_note_to_proto, invoice_to_proto};
use crate::parties::Party;
use crate::store::{self, CreditNoteRow, InvoiceRow};

/// Subject of `InvoiceIssued`.
pub const SUBJECT_INVOICE_ISSUED: &str = "id77.billing.invoice.issued";
/// Subject of `InvoiceSent`.
pub const SUBJECT_INVOICE_SENT: &str = "id77.billing.invoice.sent";
/// Subject of `InvoicePaid`.
pub const SUBJECT_INVOICE_PAID: &str = "id77.billing.invoice.paid";
/// Subject of `CreditNoteIssued`.
pub const SUBJECT_CREDIT_NOTE_ISSUED: &str = "id77.billing.credit_note.issued";

/// What an invoice is for, before it has a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceDraft {
    pub issuer_code: String,
    pub member_id: Uuid,
    pub buyer_siren: String,
    pub request_id: Uuid,
    pub referral_id: Uuid,
    pub offer_id: Uuid,
    pub offer_version: i32,
    pub line: Line,
    pub vat: Vat,
    pub seller: Party,
    pub buyer: Party,
    /// The accepted quote it bills (EN 16931 BT-11) and the member's purchase order number (BT-13, '' when
    /// none).
    pub quote_id: Option<Uuid>,
    pub quote_number: String,
    pub purchase_order_number: String,
}

/// Why a document cannot be issued.
#[derive(Debug)]
pub enum IssueError {
    /// The amounts overflow.
    Overflow,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for IssueError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

impl std::fmt::Display for IssueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Overflow => f.write_str("the invoice amounts overflow"),
            Self::Db(e) => write!(f, "database: {e}"),
        }
    }
}

impl std::error::Error for IssueError {}

/// Numbers, stores and enqueues `InvoiceIssued` for an invoice issued at `issued_at`, due 30 days later.
pub async fn issue(
    conn: &mut PgConnection,
    draft: InvoiceDraft,
    issued_at: DateTime<Utc>,
) -> Result<InvoiceRow, IssueError> {
    let totals = domain::totals(draft.line.net_cents, &draft.vat).ok_or(IssueError::Overflow)?;
    let year = domain::billing_year(issued_at);
    let sequence = store::next_number(conn, Document::Invoice, &draft.issuer_code, year).await?;
    let row = InvoiceRow {
        id: Uuid::now_v7(),
        number: Document::Invoice.number(&draft.issuer_code, year, sequence),
        issuer_code: draft.issuer_code,
        year,
        sequence,
        member_id: draft.member_id,
        buyer_siren: draft.buyer_siren,
        request_id: draft.request_id,
        referral_id: draft.referral_id,
        offer_id: draft.offer_id,
        offer_version: draft.offer_version,
        label: draft.line.label,
        quantity: draft.line.quantity,
        unit_price_cents: draft.line.unit_price_cents,
        net_cents: totals.net_cents,
        vat_rate_bp: draft.vat.rate_bp(),
        vat_note: draft.vat.note().to_owned(),
        vat_cents: totals.vat_cents,
        gross_cents: totals.gross_cents,
        currency: CURRENCY.to_owned(),
        status: "issued".to_owned(),
        issued_at,
        due_date: domain::due_date(issued_at),
        credit_note_id: None,
        seller: sqlx::types::Json(draft.seller),
        buyer: sqlx::types::Json(draft.buyer),
        sent_on: None,
        paid_on: None,
        payment_reference: String::new(),
        quote_id: draft.quote_id,
        quote_number: draft.quote_number,
        purchase_order_number: draft.purchase_order_number,
    };
    let invoice = store::insert_invoice(conn, &row).await?;
    outbox::enqueue(
        conn,
        SUBJECT_INVOICE_ISSUED,
        &pb::InvoiceIssued { invoice: Some(invoice_to_proto(invoice.clone())) },
    )
    .await?;
    Ok(invoice)
}

/// Cancels a locked, issued `invoice` by a credit note of the same amounts: numbers and stores it, marks the
/// invoice cancelled and enqueues `CreditNoteIssued`. The caller checked the invoice is not cancelled yet.
pub async fn credit(
    conn: &mut PgConnection,
    invoice: InvoiceRow,
    reason: &str,
    issued_at: DateTime<Utc>,
) -> Result<(CreditNoteRow, InvoiceRow), sqlx::Error> {
    let year = domain::billing_year(issued_at);
    let sequence = store::next_number(conn, Document::CreditNote, &invoice.issuer_code, year).await?;
    let note = CreditNoteRow {
        id: Uuid::now_v7(),
        number: Document::CreditNote.number(&invoice.issuer_code, year, sequence),
        issuer_code: invoice.issuer_code.clone(),
        year,
        sequence,
        invoice_id: invoice.id,
        reason: reason.to_owned(),
        issued_at,
    };
    let note = store::insert_credit_note(conn, &note).await?;
    let invoice = InvoiceRow { status: "cancelled".to_owned(), credit_note_id: Some(note.id), ..invoice };
    let event = pb::CreditNoteIssued {
        credit_note: Some(credit_note_to_proto(&note, &invoice)),
        invoice: Some(invoice_to_proto(invoice.clone())),
    };
    outbox::enqueue(conn, SUBJECT_CREDIT_NOTE_ISSUED, &event).await?;
    Ok((note, invoice))
}
