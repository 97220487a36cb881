//! Billing's `invoice.issued` (issue 21): the member's users who want status mails are told, in the consumer's
//! transaction. The mails are keyed by (the invoice's issue, recipient): a redelivery, or the event published
//! twice, sends no second mail.

use id77_platform::time;
use id77_proto::billing::v1::{Invoice, InvoiceIssued};
use sqlx::PgConnection;
use uuid::Uuid;

use super::FlowError;
use super::quotes::mail_event_id;
use crate::notify::money::InvoiceMail;
use crate::store;

/// What the mails say of an invoice.
fn facts<'a>(invoice: &'a Invoice, request_subject: &'a str) -> InvoiceMail<'a> {
    // The directorate that delivers (trading name) reads better than the Département's legal name.
    let seller = invoice
        .seller
        .as_ref()
        .map_or("", |s| if s.trading_name.trim().is_empty() { s.name.trim() } else { s.trading_name.trim() });
    InvoiceMail {
        number: invoice.number.trim(),
        request_subject,
        provider_code: invoice.issuer_code.trim(),
        seller,
        net_cents: invoice.total_net_cents,
        vat_cents: invoice.total_vat_cents,
        gross_cents: invoice.total_gross_cents,
        vat_rate_bp: invoice.vat_rate_bp,
        vat_note: invoice.vat_note.trim(),
        quote_number: invoice.quote_number.trim(),
        due_on: chrono::NaiveDate::parse_from_str(invoice.due_date.trim(), "%Y-%m-%d").ok(),
    }
}

/// An invoice issued for `request_id`: the member's users are mailed.
pub async fn issued(
    conn: &mut PgConnection,
    invoice: &Invoice,
    invoice_id: Uuid,
    request_id: Uuid,
) -> Result<(), FlowError> {
    let row = store::request_for_update(conn, request_id)
        .await?
        .ok_or_else(|| FlowError::Refused(format!("invoice {} of unknown request {request_id}", invoice.number)))?;
    let at = invoice.issued_at.as_ref().and_then(time::from_proto).unwrap_or_else(time::now);
    let key = mail_event_id::<InvoiceIssued>(invoice_id);
    let mut bag = crate::notify::Mailbag::default();
    let mails = crate::notify::invoice_issued(conn, &mut bag, key, &row, &facts(invoice, &row.subject), at).await?;
    bag.write(conn).await?;
    tracing::info!(%request_id, invoice = %invoice.number, mails, "member told of the invoice");
    Ok(())
}

/// An invoice of a held training session (it bills no request): the member's users are mailed, what it bills
/// named by its first line.
pub async fn issued_for_session(
    conn: &mut PgConnection,
    invoice: &Invoice,
    invoice_id: Uuid,
    member_id: Uuid,
) -> Result<(), FlowError> {
    let label = invoice.lines.first().map_or("", |l| l.label.trim());
    let at = invoice.issued_at.as_ref().and_then(time::from_proto).unwrap_or_else(time::now);
    let key = mail_event_id::<InvoiceIssued>(invoice_id);
    let mails = crate::notify::session_invoice_issued(conn, key, member_id, &facts(invoice, label), at).await?;
    tracing::info!(%member_id, session_id = %invoice.session_id, invoice = %invoice.number, mails,
        "member told of the session's invoice");
    Ok(())
}
