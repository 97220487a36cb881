//! Invoicing held training sessions (issue 22 item 6, ADR 0016): on the catalogue's `session.held`, one invoice per
//! member with attendees, issued like every invoice (`invoices::issue`: the issuer's gapless numbers, the parties
//! fixed at issue, `invoice.issued` through the outbox), at the offer's VAT terms, with one line per session
//! (`domain::session_line`). The invoice bills no request: its source is the session (`InvoiceSource::Session`).

use id77_platform::time;
use sqlx::PgConnection;

use super::invoices::{InvoiceDraft, InvoiceSource, IssueError, issue};
use super::{FlowError, seller};
use crate::domain::HeldSession;
use crate::parties::{self, Issuers};
use crate::store::{self, InvoiceRow};

/// Invoices the members of a held session in the consumer's transaction: nothing for a free session or a member
/// none of whose participants came; a member already invoiced for the session (a redelivery, or the event
/// published twice) is not invoiced again (UNIQUE (session_id, member_id) guards concurrent deliveries too).
/// Waits (retry) for what billing does not know yet: the offer's VAT terms, the provider's legal identity, a
/// member's SIREN — all or nothing, so a retry issues every invoice at once. Returns the invoices issued now.
pub async fn invoice_held(
    conn: &mut PgConnection,
    issuers: &Issuers,
    held: &HeldSession,
) -> Result<Vec<InvoiceRow>, FlowError> {
    let charges = held
        .charges()
        .ok_or_else(|| FlowError::Rejected(format!("session {}: the invoice amounts overflow", held.session_id)))?;
    let mut pending = Vec::with_capacity(charges.len());
    for (member, line) in charges {
        match store::invoice_for_session_member(conn, held.session_id, member.member_id).await? {
            Some(invoice) => tracing::info!(session_id = %held.session_id, member_id = %member.member_id,
                number = %invoice.number, "session already invoiced to the member"),
            None => pending.push((member, line)),
        }
    }
    if pending.is_empty() {
        tracing::info!(session_id = %held.session_id, price_cents = held.price_per_participant_cents,
            "held session: nothing (more) to invoice");
        return Ok(Vec::new());
    }
    let tariff = store::tariff(conn, held.offer_id).await?.ok_or_else(|| {
        FlowError::NotYet(format!(
            "offer {} of session {} not known yet (its VAT terms)",
            held.offer_id, held.session_id
        ))
    })?;
    let seller = seller(conn, issuers, &held.provider_code).await?;
    let issued_at = time::now();
    let mut issued = Vec::with_capacity(pending.len());
    for (member, line) in pending {
        let known = store::member(conn, member.member_id)
            .await?
            .filter(|m| !m.siren.is_empty())
            .ok_or_else(|| FlowError::NotYet(format!("SIREN of member {} not known yet", member.member_id)))?;
        let name = if known.name.is_empty() { member.member_name.trim() } else { known.name.as_str() };
        let draft = InvoiceDraft {
            issuer_code: held.provider_code.clone(),
            member_id: member.member_id,
            buyer: parties::buyer(name, &known.siren),
            buyer_siren: known.siren,
            source: InvoiceSource::Session { session_id: held.session_id },
            offer_id: held.offer_id,
            offer_version: tariff.version,
            line,
            vat: tariff.vat.clone(),
            seller: seller.clone(),
            quote_id: None,
            quote_number: String::new(),
            purchase_order_number: String::new(),
        };
        let invoice = issue(conn, draft, issued_at).await.map_err(|e| match e {
            IssueError::Db(e) => FlowError::Db(e),
            IssueError::Overflow => FlowError::Rejected(format!("session {}: {e}", held.session_id)),
        })?;
        tracing::info!(invoice_id = %invoice.id, number = %invoice.number, session_id = %held.session_id,
            member_id = %invoice.member_id, participants = invoice.quantity, gross_cents = invoice.gross_cents,
            "session invoice issued");
        issued.push(invoice);
    }
    Ok(issued)
}
