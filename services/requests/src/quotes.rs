//! Billing's quote events, consumed through the inbox and dispatched by type to their flow ([`crate::flow::quotes`]):
//! `quote.issued` (proposed) and `quote.accepted` mail the member's users and the provider's agents;
//! `quote.refused` / `quote.expired` cancel the request; `quote.voided` changes nothing (billing voids a quote
//! because requests cancelled the request).

use anyhow::anyhow;
use id77_platform::{Event, EventHandler, HandleError};
use id77_proto::billing::v1::{Quote, QuoteAccepted, QuoteExpired, QuoteIssued, QuoteRefused, QuoteVoided};
use id77_proto::events::IntegrationEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::lifecycle::Actor;
use crate::flow::quotes;

/// The quote an `E` carries, its id and its request's.
fn quote_of<E: IntegrationEvent>(quote: Option<Quote>) -> Result<(Quote, Uuid, Uuid), HandleError> {
    let subject = E::SUBJECT;
    let quote = quote.ok_or_else(|| HandleError::Reject(anyhow!("{subject} without a quote")))?;
    let id = Uuid::parse_str(quote.id.trim())
        .map_err(|_| HandleError::Reject(anyhow!("{subject}: quote id {:?} is not a UUID", quote.id)))?;
    let request_id = Uuid::parse_str(quote.request_id.trim())
        .map_err(|_| HandleError::Reject(anyhow!("{subject}: request_id {:?} is not a UUID", quote.request_id)))?;
    Ok((quote, id, request_id))
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

/// Consumes billing's quote events.
pub struct QuoteEvents;

impl EventHandler for QuoteEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if let Some(e) = event.decode_as::<QuoteIssued>()? {
            let (quote, quote_id, request_id) = quote_of::<QuoteIssued>(e.quote)?;
            quotes::proposed(conn, &quote, quote_id, request_id).await?;
        } else if let Some(e) = event.decode_as::<QuoteAccepted>()? {
            let (quote, quote_id, request_id) = quote_of::<QuoteAccepted>(e.quote)?;
            let actor = decider(&e.actor_user_id, &e.actor_role, &e.actor_name, &quote);
            quotes::accepted(conn, &quote, quote_id, request_id, &actor).await?;
        } else if let Some(e) = event.decode_as::<QuoteRefused>()? {
            let (quote, _, request_id) = quote_of::<QuoteRefused>(e.quote)?;
            let actor = decider(&e.actor_user_id, &e.actor_role, &e.actor_name, &quote);
            quotes::refused(conn, &quote, request_id, &actor).await?;
        } else if let Some(e) = event.decode_as::<QuoteExpired>()? {
            let (quote, _, request_id) = quote_of::<QuoteExpired>(e.quote)?;
            quotes::expired(conn, &quote, request_id).await?;
        } else if let Some(e) = event.decode_as::<QuoteVoided>()? {
            let quote = e.quote.unwrap_or_default();
            tracing::info!(request_id = %quote.request_id, quote = %quote.number, "quote voided: nothing to do");
        } else {
            tracing::debug!(subject = %event.subject, "billing event not used by requests");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
