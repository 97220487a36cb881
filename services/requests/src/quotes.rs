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

use std::collections::{HashMap, HashSet};

use crate::domain::lifecycle::Actor;
use crate::flow::quotes::{self, Decision};
use crate::notify::Mailbag;
use crate::store::{self, RequestRow, Steps};

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

/// A quote decision requests applies: the decision, the quote, its id and its request's.
struct Decided {
    decision: Decision,
    quote: Quote,
    quote_id: Uuid,
    request_id: Uuid,
}

/// What requests takes from one of billing's quote events (`None`: nothing to do).
fn decided(event: &Event) -> Result<Option<Decided>, HandleError> {
    let (decision, (quote, quote_id, request_id)) = if let Some(e) = event.decode_as::<QuoteIssued>()? {
        (Decision::Proposed, quote_of::<QuoteIssued>(e.quote)?)
    } else if let Some(e) = event.decode_as::<QuoteAccepted>()? {
        let quote = quote_of::<QuoteAccepted>(e.quote)?;
        (Decision::Accepted(decider(&e.actor_user_id, &e.actor_role, &e.actor_name, &quote.0)), quote)
    } else if let Some(e) = event.decode_as::<QuoteRefused>()? {
        let quote = quote_of::<QuoteRefused>(e.quote)?;
        (Decision::Refused(decider(&e.actor_user_id, &e.actor_role, &e.actor_name, &quote.0)), quote)
    } else if let Some(e) = event.decode_as::<QuoteExpired>()? {
        (Decision::Expired, quote_of::<QuoteExpired>(e.quote)?)
    } else if let Some(e) = event.decode_as::<QuoteVoided>()? {
        let quote = e.quote.unwrap_or_default();
        tracing::info!(request_id = %quote.request_id, quote = %quote.number, "quote voided: nothing to do");
        return Ok(None);
    } else {
        tracing::debug!(subject = %event.subject, "billing event not used by requests");
        return Ok(None);
    };
    Ok(Some(Decided { decision, quote, quote_id, request_id }))
}

/// Consumes billing's quote events.
pub struct QuoteEvents;

impl EventHandler for QuoteEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        self.handle_batch(conn, &[event]).await
    }

    const BATCHES: bool = true;

    /// Each decision in order, with the batch's requests locked (in id order), its issuers' names and its mails'
    /// recipients read, and its steps and mails written, in one statement each, not per event (issue 23). A
    /// request's second decision in the batch finds it as the first left it.
    async fn handle_batch(&self, conn: &mut PgConnection, events: &[&Event]) -> Result<(), HandleError> {
        let decided = events.iter().map(|event| decided(event)).collect::<Result<Vec<_>, _>>()?;
        let decided: Vec<Decided> = decided.into_iter().flatten().collect();
        if decided.is_empty() {
            return Ok(());
        }
        let mut ids: Vec<Uuid> = decided.iter().map(|d| d.request_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut locked: HashMap<Uuid, RequestRow> =
            store::requests_for_update(conn, &ids).await?.into_iter().map(|row| (row.id, row)).collect();
        let issuers: Vec<&str> = decided.iter().map(|d| d.quote.issuer_code.trim()).collect();
        let names = store::provider_names(conn, &issuers).await?;
        let mut mails = Mailbag::default();
        let members: Vec<Uuid> = locked.values().map(|row| row.member_id).collect();
        mails.load(conn, &members, &issuers).await?;
        let mut steps = Steps::default();
        let mut batch = quotes::Batch { names: &names, mails: &mut mails, steps: &mut steps };
        let mut seen = HashSet::new();
        for d in &decided {
            let row = crate::events::again(conn, &mut locked, &mut seen, batch.steps, d.request_id).await?;
            quotes::decide(conn, &mut batch, &d.decision, &d.quote, d.quote_id, d.request_id, row).await?;
        }
        steps.write(conn).await?;
        mails.write(conn).await?;
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
