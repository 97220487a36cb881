//! Billing's quote events (docs/adr/0013-one-truth-across-services.md), consumed through the inbox:
//! - `quote.issued` (proposed): the member's users are mailed (a member admin accepts or refuses it);
//! - `quote.accepted`: the provider's agents are mailed (they may start);
//! - `quote.refused` / `quote.expired`: the request is cancelled through its ordinary cancellation (history row
//!   naming the admin who refused, or `system` for an expiry; `request.cancelled`; mails, the provider's agents
//!   included), unless it can no longer be cancelled;
//! - `quote.voided`: nothing (billing voids a quote because requests cancelled the request).
//!
//! The mails of one quote decision are keyed by (the decision, recipient): a redelivery, or the same decision
//! published twice, sends no second mail.

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use id77_platform::{Event, EventHandler, HandleError, time};
use id77_proto::billing::v1::{Quote, QuoteAccepted, QuoteExpired, QuoteIssued, QuoteRefused, QuoteVoided};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::lifecycle::{self, Actor, Trigger};
use crate::events::{self, Cause};
use crate::notify::domain::{CancelCause, QuoteMail};
use crate::store::{self, RequestRow};

pub const SUBJECT_QUOTE_ISSUED: &str = "id77.billing.quote.issued";
pub const SUBJECT_QUOTE_ACCEPTED: &str = "id77.billing.quote.accepted";
pub const SUBJECT_QUOTE_REFUSED: &str = "id77.billing.quote.refused";
pub const SUBJECT_QUOTE_EXPIRED: &str = "id77.billing.quote.expired";
pub const SUBJECT_QUOTE_VOIDED: &str = "id77.billing.quote.voided";
/// What requests' durable consumer reads.
pub const FILTER: &str = "id77.billing.quote.>";

/// The identity of one decision on one quote (`subject`: which decision), as the event id of its mails: each
/// quote is proposed once and decided at most once, so any copy of the event keys the same mails.
pub fn mail_event_id(subject: &str, quote_id: Uuid) -> Uuid {
    let digest = Sha256::digest(format!("{subject}\n{quote_id}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

fn quote_of(quote: Option<Quote>, subject: &str) -> Result<(Quote, Uuid, Uuid), HandleError> {
    let quote = quote.ok_or_else(|| HandleError::Reject(anyhow!("{subject} without a quote")))?;
    let id = Uuid::parse_str(quote.id.trim())
        .map_err(|_| HandleError::Reject(anyhow!("{subject}: quote id {:?} is not a UUID", quote.id)))?;
    let request_id = Uuid::parse_str(quote.request_id.trim())
        .map_err(|_| HandleError::Reject(anyhow!("{subject}: request_id {:?} is not a UUID", quote.request_id)))?;
    Ok((quote, id, request_id))
}

/// What the mails say of a quote.
fn facts<'a>(quote: &'a Quote, row: &'a RequestRow) -> QuoteMail<'a> {
    QuoteMail {
        number: quote.number.trim(),
        request_subject: &row.subject,
        amount_cents: quote.amount_cents,
        amount_to_be_stated: quote.amount_to_be_stated,
        label: quote.label.trim(),
        provider: quote.issuer_code.trim(),
        expires_on: quote.expires_at.as_ref().and_then(time::from_proto).map(|at| at.date_naive()),
    }
}

/// When the quote was decided (else proposed, else now).
fn decided_at(quote: &Quote) -> DateTime<Utc> {
    quote.decided_at.as_ref().or(quote.issued_at.as_ref()).and_then(time::from_proto).unwrap_or_else(time::now)
}

/// Who decided: the event's actor, else the quote's `decided_by_*` (a member admin: only they decide).
fn decider(user_id: &str, role: &str, name: &str, quote: &Quote) -> Actor {
    if !user_id.trim().is_empty() || !role.trim().is_empty() {
        return Actor::from_event(user_id, role, name);
    }
    if quote.decided_by_user_id.trim().is_empty() {
        return Actor::System;
    }
    let name = if quote.decided_by_name.trim().is_empty() { &quote.signatory_name } else { &quote.decided_by_name };
    Actor::from_event(&quote.decided_by_user_id, "member_admin", name)
}

/// The request of a quote, locked: the quote's fate and the request's are decided one at a time.
async fn request_of(conn: &mut PgConnection, request_id: Uuid, quote: &Quote) -> Result<RequestRow, HandleError> {
    let row = store::request_for_update(conn, request_id)
        .await?
        .ok_or_else(|| HandleError::Reject(anyhow!("quote {} of unknown request {request_id}", quote.number)))?;
    if quote.member_id.trim() != row.member_id.to_string() {
        tracing::warn!(request_id = %row.id, quote = %quote.number, quote_member = %quote.member_id,
            "quote names another member than its request; the request's is used");
    }
    Ok(row)
}

/// Whether the request still waits on its quote (not cancelled, declined, completed or closed).
fn is_open(row: &RequestRow) -> Result<bool, HandleError> {
    let state = events::state_of(row).map_err(|e| HandleError::Reject(anyhow!(e)))?;
    Ok(state.status.is_cancellable())
}

/// Cancels the request because of its quote, through the ordinary cancellation; nothing when the request can no
/// longer be cancelled (already cancelled, or completed first: requests decides, ADR 0013).
async fn cancel(
    conn: &mut PgConnection,
    row: &RequestRow,
    quote: &Quote,
    trigger: Trigger,
    actor: &Actor,
    cancel: CancelCause<'_>,
) -> Result<(), HandleError> {
    let state = events::state_of(row).map_err(|e| HandleError::Reject(anyhow!(e)))?;
    match lifecycle::apply(&state, &trigger, decided_at(quote)) {
        Ok(Some(step)) => {
            let cause = Cause { cancel, provider: Some(quote.issuer_code.as_str()), ..Cause::default() };
            events::record(conn, row, &step, actor, &cause).await?;
            tracing::info!(request_id = %row.id, quote = %quote.number, trigger = trigger.name(), "request cancelled by its quote");
        }
        Ok(None) | Err(_) => {
            tracing::info!(request_id = %row.id, quote = %quote.number, status = state.status.as_str(),
                trigger = trigger.name(), "request no longer cancellable: quote decision changes nothing");
        }
    }
    Ok(())
}

/// Consumes billing's quote events.
pub struct QuoteEvents;

impl EventHandler for QuoteEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let subject = event.subject.as_str();
        match subject {
            SUBJECT_QUOTE_ISSUED => {
                let e: QuoteIssued = event.decode()?;
                let (quote, quote_id, request_id) = quote_of(e.quote, subject)?;
                let row = request_of(conn, request_id, &quote).await?;
                if !is_open(&row)? {
                    tracing::info!(%request_id, quote = %quote.number, status = %row.status, "quote proposed for a closed request: no mail");
                    return Ok(());
                }
                let key = mail_event_id(subject, quote_id);
                let mails =
                    crate::notify::quote_proposed(conn, key, &row, &facts(&quote, &row), decided_at(&quote)).await?;
                tracing::info!(%request_id, quote = %quote.number, mails, "quote proposed to the member");
            }
            SUBJECT_QUOTE_ACCEPTED => {
                let e: QuoteAccepted = event.decode()?;
                let (quote, quote_id, request_id) = quote_of(e.quote, subject)?;
                let actor = decider(&e.actor_user_id, &e.actor_role, &e.actor_name, &quote);
                let row = request_of(conn, request_id, &quote).await?;
                if !is_open(&row)? {
                    // Cancelled meanwhile: billing voids the quote; nobody should start.
                    tracing::info!(%request_id, quote = %quote.number, status = %row.status, "quote accepted for a closed request: no mail");
                    return Ok(());
                }
                let key = mail_event_id(subject, quote_id);
                let at = decided_at(&quote);
                let mails = crate::notify::quote_accepted(
                    conn,
                    key,
                    &row,
                    &facts(&quote, &row),
                    &actor,
                    &quote.purchase_order_number,
                    at,
                )
                .await?;
                tracing::info!(%request_id, quote = %quote.number, mails, "provider told the quote is accepted");
            }
            SUBJECT_QUOTE_REFUSED => {
                let e: QuoteRefused = event.decode()?;
                let (quote, _, request_id) = quote_of(e.quote, subject)?;
                let actor = decider(&e.actor_user_id, &e.actor_role, &e.actor_name, &quote);
                let row = request_of(conn, request_id, &quote).await?;
                let trigger =
                    Trigger::QuoteRefused { number: quote.number.clone(), reason: quote.decision_reason.clone() };
                cancel(conn, &row, &quote, trigger, &actor, CancelCause::QuoteRefused(quote.number.trim())).await?;
            }
            SUBJECT_QUOTE_EXPIRED => {
                let e: QuoteExpired = event.decode()?;
                let (quote, _, request_id) = quote_of(e.quote, subject)?;
                let row = request_of(conn, request_id, &quote).await?;
                let trigger = Trigger::QuoteExpired { number: quote.number.clone() };
                cancel(conn, &row, &quote, trigger, &Actor::System, CancelCause::QuoteExpired(quote.number.trim()))
                    .await?;
            }
            SUBJECT_QUOTE_VOIDED => {
                let e: QuoteVoided = event.decode()?;
                let quote = e.quote.unwrap_or_default();
                tracing::info!(request_id = %quote.request_id, quote = %quote.number, "quote voided: nothing to do");
            }
            other => tracing::debug!(subject = other, "billing event not used by requests"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_decision_on_each_quote_keys_its_own_mails() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(mail_event_id(SUBJECT_QUOTE_ISSUED, a), mail_event_id(SUBJECT_QUOTE_ISSUED, a));
        assert_ne!(mail_event_id(SUBJECT_QUOTE_ISSUED, a), mail_event_id(SUBJECT_QUOTE_ACCEPTED, a));
        assert_ne!(mail_event_id(SUBJECT_QUOTE_ISSUED, a), mail_event_id(SUBJECT_QUOTE_ISSUED, b));
    }

    #[test]
    fn the_decider_is_the_events_actor_else_the_quotes() {
        let admin = Uuid::from_u128(3);
        let quote = Quote {
            decided_by_user_id: admin.to_string(),
            decided_by_name: "Marie Dupont".into(),
            ..Default::default()
        };
        assert_eq!(
            decider("", "", "", &quote),
            Actor::User { id: admin, role: "member_admin".into(), name: "Marie Dupont".into() }
        );
        let other = Uuid::from_u128(4);
        assert_eq!(decider(&other.to_string(), "member_admin", "Paul", &quote).user_id(), Some(other));
        assert_eq!(decider("", "", "", &Quote::default()), Actor::System);
    }
}
