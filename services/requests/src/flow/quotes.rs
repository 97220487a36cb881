//! Billing's quote decisions on a request (docs/adr/0013-one-truth-across-services.md), in the consumer's
//! transaction, the request's row locked so its fate and its quote's are decided one at a time:
//! - proposed: the member's users are mailed (a member admin accepts or refuses it);
//! - accepted: the provider's agents are mailed (they may start);
//! - refused / expired: the request is cancelled through its ordinary cancellation (history row naming the admin
//!   who refused, or `system` for an expiry; `request.cancelled`; mails, the provider's agents included), unless
//!   it can no longer be cancelled.
//!
//! The mails of one quote decision are keyed by (the decision, recipient): a redelivery, or the same decision
//! published twice, sends no second mail.

use chrono::{DateTime, Utc};
use id77_platform::time;
use id77_proto::billing::v1::{Quote, QuoteAccepted, QuoteIssued};
use id77_proto::events::IntegrationEvent;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::FlowError;
use super::lifecycle::{self, Cause};
use crate::domain::lifecycle::{Actor, Trigger};
use crate::domain::names::ProviderNames;
use crate::notify::Mailbag;
use crate::notify::domain::{CancelCause, QuoteMail};
use crate::store::{RequestRow, Steps};

/// The identity of one decision (`E`, by its subject) on one quote, as the event id of its mails: each quote is
/// proposed once and decided at most once, so any copy of the event keys the same mails.
pub fn mail_event_id<E: IntegrationEvent>(quote_id: Uuid) -> Uuid {
    let digest = Sha256::digest(format!("{}\n{quote_id}", E::SUBJECT).as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// What the mails say of a quote.
fn facts<'a>(quote: &'a Quote, row: &'a RequestRow) -> QuoteMail<'a> {
    QuoteMail {
        number: quote.number.trim(),
        request_subject: &row.subject,
        amount_cents: quote.amount_cents,
        amount_to_be_stated: quote.amount_to_be_stated,
        vat_cents: quote.vat_cents,
        total_incl_vat_cents: quote.total_incl_vat_cents,
        vat_rate_bp: quote.vat_rate_bp,
        vat_note: quote.vat_note.trim(),
        label: quote.label.trim(),
        provider: quote.issuer_code.trim(),
        expires_on: quote.expires_at.as_ref().and_then(time::from_proto).map(|at| at.date_naive()),
    }
}

/// When the quote was decided (else proposed, else now).
fn decided_at(quote: &Quote) -> DateTime<Utc> {
    quote.decided_at.as_ref().or(quote.issued_at.as_ref()).and_then(time::from_proto).unwrap_or_else(time::now)
}

/// The request of a quote, as the caller locked it (`None`: unknown): the quote's fate and the request's are
/// decided one at a time.
fn request_of(row: Option<RequestRow>, request_id: Uuid, quote: &Quote) -> Result<RequestRow, FlowError> {
    let row =
        row.ok_or_else(|| FlowError::Refused(format!("quote {} of unknown request {request_id}", quote.number)))?;
    if quote.member_id.trim() != row.member_id.to_string() {
        tracing::warn!(request_id = %row.id, quote = %quote.number, quote_member = %quote.member_id,
            "quote names another member than its request; the request's is used");
    }
    Ok(row)
}

/// Whether the request still waits on its quote (not cancelled, declined, completed or closed).
fn is_open(row: &RequestRow) -> Result<bool, FlowError> {
    let state = lifecycle::state_of(row).map_err(FlowError::Refused)?;
    Ok(state.status.is_cancellable())
}

/// One of billing's decisions on a quote, as requests applies it.
#[derive(Debug, Clone)]
pub enum Decision {
    Proposed,
    Accepted(Actor),
    Refused(Actor),
    Expired,
}

/// What the caller read for a batch of decisions, in the consumer's transaction: the names of (at least) the
/// quotes' issuers; and the steps and mails to write before the commit.
pub struct Batch<'a> {
    pub names: &'a ProviderNames,
    pub mails: &'a mut Mailbag,
    pub steps: &'a mut Steps,
}

/// Applies `decision` on `quote` (its id `quote_id`) to `request_id`, locked by the caller as `row` (`None`:
/// unknown).
pub async fn decide(
    conn: &mut PgConnection,
    batch: &mut Batch<'_>,
    decision: &Decision,
    quote: &Quote,
    quote_id: Uuid,
    request_id: Uuid,
    row: Option<RequestRow>,
) -> Result<(), FlowError> {
    let row = request_of(row, request_id, quote)?;
    match decision {
        Decision::Proposed => proposed(conn, batch, quote, quote_id, &row).await,
        Decision::Accepted(actor) => accepted(conn, batch.mails, quote, quote_id, &row, actor).await,
        Decision::Refused(actor) => {
            let trigger = Trigger::QuoteRefused { number: quote.number.clone(), reason: quote.decision_reason.clone() };
            let cause = CancelCause::QuoteRefused(quote.number.trim());
            cancel(conn, batch, &row, quote, trigger, actor, cause).await
        }
        Decision::Expired => {
            let trigger = Trigger::QuoteExpired { number: quote.number.clone() };
            let cause = CancelCause::QuoteExpired(quote.number.trim());
            cancel(conn, batch, &row, quote, trigger, &Actor::System, cause).await
        }
    }
}

/// A quote proposed for `row`: the member's users are mailed, unless the request is closed.
async fn proposed(
    conn: &mut PgConnection,
    batch: &mut Batch<'_>,
    quote: &Quote,
    quote_id: Uuid,
    row: &RequestRow,
) -> Result<(), FlowError> {
    if !is_open(row)? {
        tracing::info!(request_id = %row.id, quote = %quote.number, status = %row.status, "quote proposed for a closed request: no mail");
        return Ok(());
    }
    let key = mail_event_id::<QuoteIssued>(quote_id);
    let facts = facts(quote, row);
    let mails =
        crate::notify::quote_proposed(conn, batch.mails, key, row, &facts, batch.names, decided_at(quote)).await?;
    tracing::info!(request_id = %row.id, quote = %quote.number, mails, "quote proposed to the member");
    Ok(())
}

/// A quote `actor` accepted: the provider's agents are mailed (they may start), unless the request is closed.
async fn accepted(
    conn: &mut PgConnection,
    mails: &mut Mailbag,
    quote: &Quote,
    quote_id: Uuid,
    row: &RequestRow,
    actor: &Actor,
) -> Result<(), FlowError> {
    if !is_open(row)? {
        // Cancelled meanwhile: billing voids the quote; nobody should start.
        tracing::info!(request_id = %row.id, quote = %quote.number, status = %row.status, "quote accepted for a closed request: no mail");
        return Ok(());
    }
    let key = mail_event_id::<QuoteAccepted>(quote_id);
    let at = decided_at(quote);
    let facts = facts(quote, row);
    let order = &quote.purchase_order_number;
    let mails = crate::notify::quote_accepted(conn, mails, key, row, &facts, actor, order, at).await?;
    tracing::info!(request_id = %row.id, quote = %quote.number, mails, "provider told the quote is accepted");
    Ok(())
}

/// Cancels the request because of its quote, through the ordinary cancellation; nothing when the request can no
/// longer be cancelled (already cancelled, or completed first: requests decides, ADR 0013).
async fn cancel(
    conn: &mut PgConnection,
    batch: &mut Batch<'_>,
    row: &RequestRow,
    quote: &Quote,
    trigger: Trigger,
    actor: &Actor,
    cancel: CancelCause<'_>,
) -> Result<(), FlowError> {
    let state = lifecycle::state_of(row).map_err(FlowError::Refused)?;
    match crate::domain::lifecycle::apply(&state, &trigger, decided_at(quote)) {
        Ok(Some(step)) => {
            let cause = Cause { cancel, provider: Some(quote.issuer_code.as_str()), ..Cause::default() };
            lifecycle::record_into(conn, batch.mails, batch.steps, row, &step, actor, &cause).await?;
            tracing::info!(request_id = %row.id, quote = %quote.number, trigger = trigger.name(), "request cancelled by its quote");
        }
        Ok(None) | Err(_) => {
            tracing::info!(request_id = %row.id, quote = %quote.number, status = state.status.as_str(),
                trigger = trigger.name(), "request no longer cancellable: quote decision changes nothing");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use id77_proto::billing::v1::QuoteRefused;

    use super::*;

    #[test]
    fn each_decision_on_each_quote_keys_its_own_mails() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(mail_event_id::<QuoteIssued>(a), mail_event_id::<QuoteIssued>(a));
        assert_ne!(mail_event_id::<QuoteIssued>(a), mail_event_id::<QuoteAccepted>(a));
        assert_ne!(mail_event_id::<QuoteAccepted>(a), mail_event_id::<QuoteRefused>(a));
        assert_ne!(mail_event_id::<QuoteIssued>(a), mail_event_id::<QuoteIssued>(b));
    }

    #[test]
    fn the_key_of_a_decision_is_the_one_it_always_had() {
        // Mails already queued were keyed by the subject's spelling: the key must not move across versions.
        let quote = Uuid::from_u128(7);
        let digest = Sha256::digest(format!("id77.billing.quote.issued\n{quote}").as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        assert_eq!(mail_event_id::<QuoteIssued>(quote), uuid::Builder::from_custom_bytes(bytes).into_uuid());
    }
}
