//! Billing's `invoice.issued`, consumed through the inbox (durable requests-invoices) and handed to its flow
//! ([`crate::flow::invoices`]): the member's users are mailed, about a request's invoice or a held training
//! session's (no request; `session_id` set).

use anyhow::anyhow;
use id77_platform::{Event, EventHandler, HandleError};
use id77_proto::billing::v1::InvoiceIssued;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::flow::invoices;

/// Consumes billing's invoice events (only `invoice.issued` is read).
pub struct InvoiceEvents;

impl EventHandler for InvoiceEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some(e) = event.decode_as::<InvoiceIssued>()? else {
            tracing::debug!(subject = %event.subject, "billing event not used by requests");
            return Ok(());
        };
        let invoice = e.invoice.ok_or_else(|| HandleError::Reject(anyhow!("invoice.issued without an invoice")))?;
        let id = Uuid::parse_str(invoice.id.trim())
            .map_err(|_| HandleError::Reject(anyhow!("invoice.issued: id {:?} is not a UUID", invoice.id)))?;
        if invoice.request_id.trim().is_empty() && !invoice.session_id.trim().is_empty() {
            let member_id = Uuid::parse_str(invoice.member_id.trim()).map_err(|_| {
                HandleError::Reject(anyhow!("invoice.issued: member_id {:?} is not a UUID", invoice.member_id))
            })?;
            invoices::issued_for_session(conn, &invoice, id, member_id).await?;
            return Ok(());
        }
        let request_id = Uuid::parse_str(invoice.request_id.trim()).map_err(|_| {
            HandleError::Reject(anyhow!("invoice.issued: request_id {:?} is not a UUID", invoice.request_id))
        })?;
        invoices::issued(conn, &invoice, id, request_id).await?;
        Ok(())
    }
}
