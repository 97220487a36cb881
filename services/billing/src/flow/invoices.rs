//! Invoicing: an invoice for a completed request (its accepted quote), a credit note cancelling an invoice, an
//! invoice marked sent or paid. Issuing (`issue`, also used for held sessions by `flow::sessions`) takes the
//! issuer's next number, stores the document and announces it, all in one transaction (a rollback gives the
//! number back); each change is announced through the outbox.

use chrono::{DateTime, Utc};
use id77_platform::auth::Caller;
use id77_platform::{outbox, time};
use id77_proto::billing::v1 as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{FlowError, seller};
use crate::access;
use crate::domain::{self, CURRENCY, Document, Line, Mark, PriceRule, QuoteStatus, Vat};
use crate::error::BillingError;
use crate::parties::{self, Issuers, Party};
use crate::proto_map::{credit_note_to_proto, invoice_to_proto};
use crate::store::{self, CreditNoteRow, InvoiceRow, QuoteRow};

/// What an invoice bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceSource {
    /// A completed request, through the referral that completed it (its accepted quote).
    Request { request_id: Uuid, referral_id: Uuid },
    /// The participants of one member at a held training session (`flow::sessions`).
    Session { session_id: Uuid },
}

impl InvoiceSource {
    /// `invoice.source_kind`, `request_id`, `referral_id`, `session_id`.
    fn columns(self) -> (&'static str, Option<Uuid>, Option<Uuid>, Option<Uuid>) {
        match self {
            Self::Request { request_id, referral_id } => ("request", Some(request_id), Some(referral_id), None),
            Self::Session { session_id } => ("session", None, None, Some(session_id)),
        }
    }
}

/// What an invoice is for, before it has a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceDraft {
    pub issuer_code: String,
    pub member_id: Uuid,
    pub buyer_siren: String,
    pub source: InvoiceSource,
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
    let (source_kind, request_id, referral_id, session_id) = draft.source.columns();
    let row = InvoiceRow {
        id: Uuid::now_v7(),
        number: Document::Invoice.number(&draft.issuer_code, year, sequence),
        issuer_code: draft.issuer_code,
        year,
        sequence,
        member_id: draft.member_id,
        buyer_siren: draft.buyer_siren,
        source_kind: source_kind.to_owned(),
        request_id,
        referral_id,
        session_id,
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
    outbox::enqueue(conn, &pb::InvoiceIssued { invoice: Some(invoice_to_proto(invoice.clone())) }).await?;
    Ok(invoice)
}

/// A request completed (requests' `request.completed`), as billing needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    pub request_id: Uuid,
    pub member_id: Uuid,
    /// `None`: an event from before requests named the referral (billing then looks for the request's
    /// accepted quote).
    pub referral_id: Option<Uuid>,
}

/// Invoices a completed request (ADR 0013: requests is the arbiter of a request's fate; billing invoices on
/// its `request.completed`, never on routing's claim alone): the *accepted* quote of the referral that
/// completed it, at the quote's amounts, with the quote's number (EN 16931 BT-11) and the member's purchase
/// order number (BT-13). A request without a quote (free offer, orientation) has nothing to bill; a quote not
/// accepted is not invoiced (logged: routing lets no one complete before the member's agreement). Returns the
/// invoice issued, `None` when there is none to issue.
pub async fn invoice_completed(
    conn: &mut PgConnection,
    issuers: &Issuers,
    done: &Completion,
) -> Result<Option<InvoiceRow>, FlowError> {
    let Some(quote) = quote_of(conn, done).await? else {
        tracing::info!(request_id = %done.request_id, referral_id = ?done.referral_id,
            "completed request without a quote (free offer or orientation): nothing to bill");
        return Ok(None);
    };
    if quote.request_id != done.request_id || quote.member_id != done.member_id {
        return Err(FlowError::Rejected(format!(
            "request {} completed by referral {}, whose quote {} belongs to request {} of member {}",
            done.request_id, quote.referral_id, quote.number, quote.request_id, quote.member_id
        )));
    }
    // A replay under another message id: the quote is already invoiced.
    if let Some(invoice) = store::invoice_for_referral(conn, quote.referral_id).await? {
        tracing::info!(request_id = %done.request_id, number = %invoice.number, "request already invoiced");
        return Ok(None);
    }
    if quote.status != QuoteStatus::Accepted.as_str() {
        tracing::warn!(request_id = %done.request_id, quote = %quote.number, status = %quote.status,
            "completed request whose quote is not accepted: no invoice");
        return Ok(None);
    }
    if quote.amount_to_be_stated {
        tracing::warn!(request_id = %done.request_id, quote = %quote.number,
            "completed on an offer priced on quote whose amount was never stated: no invoice");
        return Ok(None);
    }
    let draft = draft(conn, issuers, &quote).await?;
    let invoice = issue(conn, draft, time::now()).await.map_err(|e| match e {
        IssueError::Db(e) => FlowError::Db(e),
        IssueError::Overflow => FlowError::Rejected(format!("quote {}: {e}", quote.number)),
    })?;
    tracing::info!(invoice_id = %invoice.id, number = %invoice.number, quote = %quote.number,
        request_id = %done.request_id, gross_cents = invoice.gross_cents, "invoice issued");
    Ok(Some(invoice))
}

/// The quote a completion bills, locked: the referral's, or for an event that names none, the request's
/// accepted quote (else its latest, to say why it is not invoiced).
async fn quote_of(conn: &mut PgConnection, done: &Completion) -> Result<Option<QuoteRow>, sqlx::Error> {
    Ok(match done.referral_id {
        Some(referral_id) => store::quote_for_referral_for_update(conn, referral_id).await?,
        None => {
            let quotes = store::quotes_of_request_for_update(conn, done.request_id).await?;
            let accepted = quotes.iter().position(|q| q.status == QuoteStatus::Accepted.as_str());
            match accepted {
                Some(i) => quotes.into_iter().nth(i),
                None => quotes.into_iter().last(),
            }
        }
    })
}

/// The invoice of an accepted quote, with the parties as billing knows them now; waits for the member's SIREN.
async fn draft(conn: &mut PgConnection, issuers: &Issuers, quote: &QuoteRow) -> Result<InvoiceDraft, FlowError> {
    let member = store::member(conn, quote.member_id)
        .await?
        .filter(|m| !m.siren.is_empty())
        .ok_or_else(|| FlowError::NotYet(format!("SIREN of member {} not known yet", quote.member_id)))?;
    // The offer's rule only shapes the line (a daily rate shows its days); the quote's amount is billed.
    let rule = store::tariff(conn, quote.offer_id).await?.map(|t| t.price_rule).unwrap_or(PriceRule::Free);
    let vat = Vat::parse(quote.vat_rate_bp, &quote.vat_note).map_err(FlowError::Rejected)?;
    let seller = seller(conn, issuers, &quote.issuer_code).await?;
    Ok(InvoiceDraft {
        seller,
        buyer: parties::buyer(&member.name, &member.siren),
        issuer_code: quote.issuer_code.clone(),
        member_id: quote.member_id,
        buyer_siren: member.siren,
        source: InvoiceSource::Request { request_id: quote.request_id, referral_id: quote.referral_id },
        offer_id: quote.offer_id,
        offer_version: quote.offer_version,
        line: domain::invoice_line(&rule, &quote.label, quote.amount_cents),
        vat,
        quote_id: Some(quote.id),
        quote_number: quote.number.clone(),
        purchase_order_number: quote.purchase_order_number.clone(),
    })
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
    outbox::enqueue(conn, &event).await?;
    Ok((note, invoice))
}

/// IssueCreditNote (the caller's role and the reason were checked): cancels invoice `id` by a credit note,
/// unless a credit note cancels it already.
pub async fn cancel_invoice(pool: &PgPool, id: Uuid, reason: &str) -> Result<(CreditNoteRow, InvoiceRow), FlowError> {
    let mut tx = pool.begin().await?;
    let invoice = store::invoice_for_update(&mut tx, id).await?.ok_or(FlowError::not_found("invoice", id))?;
    if invoice.status == "cancelled" {
        return Err(BillingError::InvoiceCancelled { number: invoice.number }.into());
    }
    let (note, invoice) = credit(&mut tx, invoice, reason, time::now()).await?;
    tx.commit().await?;
    tracing::info!(credit_note = %note.number, invoice = %invoice.number, "credit note issued");
    Ok((note, invoice))
}

/// What MarkInvoice records: the mark, its date as typed (YYYY-MM-DD) and, for a payment, its reference
/// (checked by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marking<'a> {
    pub mark: Mark,
    pub date: &'a str,
    pub payment_reference: &'a str,
}

/// MarkInvoice (the caller's role was checked, `access::may_mark`): the coordinator, or an agent of the
/// issuing provider (another provider's invoice is "not found" to it), marks invoice `id` sent or paid; the
/// state machine is `domain::mark`. Announced by `invoice.sent` or `invoice.paid` in the same transaction.
pub async fn mark(pool: &PgPool, caller: &Caller, id: Uuid, marking: Marking<'_>) -> Result<InvoiceRow, FlowError> {
    let mut tx = pool.begin().await?;
    let invoice = store::invoice_for_update(&mut tx, id).await?.ok_or(FlowError::not_found("invoice", id))?;
    access::mark_invoice(caller, &invoice.issuer_code).map_err(|denied| FlowError::Denied {
        denied,
        what: "invoice",
        id,
    })?;
    let now = time::now();
    let date = domain::mark_date(marking.date, domain::french_date(invoice.issued_at), domain::french_date(now))
        .map_err(|description| FlowError::Invalid { field: "date", description })?;
    let status = domain::mark(&invoice.status, marking.mark)
        .map_err(|reason| BillingError::InvoiceStatus { number: invoice.number.clone(), reason })?;
    let (sent_on, paid_on, reference) = match marking.mark {
        Mark::Sent => (Some(date), None, ""),
        Mark::Paid => (None, Some(date), marking.payment_reference),
    };
    let row = store::mark_invoice(&mut tx, id, status, sent_on, paid_on, reference).await?;
    let invoice = Some(invoice_to_proto(row.clone()));
    match marking.mark {
        Mark::Sent => outbox::enqueue(&mut tx, &pb::InvoiceSent { invoice }).await?,
        Mark::Paid => outbox::enqueue(&mut tx, &pb::InvoicePaid { invoice }).await?,
    };
    tx.commit().await?;
    tracing::info!(invoice = %row.number, status, "invoice marked");
    Ok(row)
}
