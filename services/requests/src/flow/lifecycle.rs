//! Recording a step of a request's lifecycle: its status and history row, the integration events it emits
//! through the outbox, and the mails it brings, in the caller's transaction. Submissions, users' commands,
//! routing's referral events and billing's quote decisions all record their steps here.

use id77_platform::auth::{Caller, Role};
use id77_platform::{outbox, time};
use id77_proto::requests::v1::{RequestCancelled, RequestCompleted, RequestStatusChanged};
use sqlx::PgConnection;

use crate::domain::lifecycle::{Actor, RequestStatus, State, Step};
use crate::notify::Mailbag;
use crate::notify::domain::CancelCause;
use crate::store::{RequestRow, Steps};

/// The lifecycle state of a stored request.
pub fn state_of(row: &RequestRow) -> Result<State, String> {
    let status = RequestStatus::parse(&row.status)
        .ok_or_else(|| format!("request {} has an unknown status {}", row.id, row.status))?;
    Ok(State { status, provider: row.provider_code.clone(), updated_at: row.updated_at })
}

/// The user as the actor of a change, in the first of `roles` it has, with its display name
/// ([`crate::notify::name_of`]).
pub async fn actor(conn: &mut PgConnection, caller: &Caller, roles: &[Role]) -> Result<Actor, sqlx::Error> {
    let role = roles.iter().find(|r| caller.has(**r)).map_or("unknown", |r| r.as_str());
    let name = crate::notify::name_of(conn, caller).await?;
    Ok(Actor::User { id: caller.user_id, role: role.to_owned(), name })
}

/// What a step tells beyond itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cause<'a> {
    /// The referral whose event made the step: `request.completed` carries it (billing invoices its accepted
    /// quote).
    pub referral_id: &'a str,
    /// Why a cancellation happened (a person, a refused or expired quote): the provider's mail says it.
    pub cancel: CancelCause<'a>,
    /// The provider known to hold the request when requests' own state does not say so yet (a quote's issuer
    /// whose acceptance requests has not consumed yet): told of a cancellation all the same.
    pub provider: Option<&'a str>,
    /// When a provider answered (accepted, declined), if the step is its answer: dates the first answer in the
    /// step's own statement.
    pub answered_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Records a step (status, history row by `actor`) and the events it emits through the outbox, in one statement:
/// `request.status_changed` on every step (and the member's users' mails), `request.completed` on completion
/// (with the referral), `request.cancelled` on cancellation (with who and the provider that held the request,
/// whose agents get a mail).
pub async fn record(
    conn: &mut PgConnection,
    row: &RequestRow,
    step: &Step,
    actor: &Actor,
    cause: &Cause<'_>,
) -> Result<(), sqlx::Error> {
    let (mut mails, mut steps) = (Mailbag::default(), Steps::default());
    record_into(conn, &mut mails, &mut steps, row, step, actor, cause).await?;
    steps.write(conn).await?;
    mails.write(conn).await?;
    Ok(())
}

/// [`record`], the step gathered in `steps` and its mails in `mails`, for the caller to write before its commit (a
/// consumer's batch writes its steps together, and its mails).
pub async fn record_into(
    conn: &mut PgConnection,
    mails: &mut Mailbag,
    steps: &mut Steps,
    row: &RequestRow,
    step: &Step,
    actor: &Actor,
    cause: &Cause<'_>,
) -> Result<(), sqlx::Error> {
    let changed = RequestStatusChanged {
        request_id: row.id.to_string(),
        member_id: row.member_id.to_string(),
        provider_code: step.provider.clone().unwrap_or_default(),
        referent_user_id: row.referent_user_id.map(|r| r.to_string()).unwrap_or_default(),
        from_status: step.from.as_str().to_owned(),
        to_status: step.to.as_str().to_owned(),
        reason: step.reason.clone(),
        request_subject: row.subject.clone(),
        occurred_at: Some(time::to_proto(step.at)),
    };
    let mut events = outbox::Outgoing::new();
    let event_id = events.event(&changed);
    // The provider that held a cancelled request (its agents are told).
    let mut told = None;
    match step.to {
        RequestStatus::Completed => {
            events.event(&completed(row, step, cause));
        }
        RequestStatus::Cancelled => {
            let (event, provider) = cancelled(row, step, actor, cause);
            events.event(&event);
            told = provider;
        }
        _ => {}
    }
    steps.push(row, step, actor, cause.answered_at, events);
    crate::notify::status_changed(conn, mails, event_id, row, step, actor).await?;
    if let Some(provider) = told {
        let agents =
            crate::notify::cancelled_for_provider(conn, mails, event_id, row, provider, step, actor, cause.cancel)
                .await?;
        tracing::info!(request_id = %row.id, provider, agents, "provider told of the cancellation");
    }
    tracing::info!(request_id = %row.id, from = step.from.as_str(), to = step.to.as_str(), actor = actor.role(), reason = %step.reason, "request moved");
    Ok(())
}

/// `request.completed`, with the referral whose completion requests applied (billing invoices on it).
fn completed(row: &RequestRow, step: &Step, cause: &Cause<'_>) -> RequestCompleted {
    RequestCompleted {
        request_id: row.id.to_string(),
        member_id: row.member_id.to_string(),
        offer_id: row.offer_id.map(|id| id.to_string()).unwrap_or_default(),
        provider_code: step.provider.clone().unwrap_or_default(),
        occurred_at: Some(time::to_proto(step.at)),
        referral_id: cause.referral_id.trim().to_owned(),
    }
}

/// `request.cancelled`, naming who cancelled and the provider that held the request (returned too: its agents get
/// a mail).
fn cancelled<'a>(
    row: &RequestRow,
    step: &'a Step,
    actor: &Actor,
    cause: &Cause<'a>,
) -> (RequestCancelled, Option<&'a str>) {
    let provider = step.provider_before().or(cause.provider.map(str::trim).filter(|p| !p.is_empty()));
    let event = RequestCancelled {
        request_id: row.id.to_string(),
        member_id: row.member_id.to_string(),
        reason: step.reason.clone(),
        occurred_at: Some(time::to_proto(step.at)),
        actor_user_id: actor.user_id().map(|id| id.to_string()).unwrap_or_default(),
        actor_role: actor.role().to_owned(),
        actor_name: actor.name().to_owned(),
        provider_code: provider.unwrap_or_default().to_owned(),
    };
    (event, provider)
}
