//! A member's submission: who may file it, what it must carry for its offer, its idempotency key, and
//! `request.submitted` in the same transaction as the request (an open orientation request goes straight to the
//! coordinator's triage).

use id77_platform::auth::Caller;
use id77_platform::{ServiceError, outbox, time};
use id77_proto::requests::v1::RequestSubmitted;
use id77_proto::vocabulary::Category;
use sqlx::types::Json;
use sqlx::{Connection, PgPool};
use uuid::Uuid;

use super::lifecycle::{self, Cause};
use crate::access;
use crate::domain::lifecycle::{Actor, RequestStatus, Trigger};
use crate::domain::{self, Details, RawSubmission, Submission};
use crate::error::RequestsError;
use crate::store::{self, OfferRow, RequestRow};

/// What a submission answered: the stored request, and whether it was filed by an earlier call with the same
/// idempotency key (a replay) rather than by this one.
pub struct Filed {
    pub row: RequestRow,
    pub replayed: bool,
    /// A new request's history, read in its transaction (a replay's is read after, by the caller).
    pub history: Option<Vec<store::HistoryRow>>,
}

/// Files a submission for the caller's member (`raw.member_id` empty: the caller's own) and returns the stored
/// request; a retry with the same idempotency key returns the request it filed (another body is a conflict).
pub async fn submit(pool: &PgPool, caller: &Caller, mut raw: RawSubmission) -> Result<Filed, ServiceError> {
    // Only a member's users, for their own member; an empty member_id is theirs.
    let own = access::submission_member(caller, None).map_err(|d| d.into_error("member", ""))?;
    if raw.member_id.trim().is_empty() {
        raw.member_id = own.to_string();
    }
    let s = domain::validate_submission(raw)?;
    access::submission_member(caller, Some(s.member_id))
        .map_err(|d| d.into_error("member", &s.member_id.to_string()))?;
    // Its checks and its insert need no transaction of their own (issue 23): the checks take no lock (as they did
    // in one, at read committed) and the insert is one statement, which commits alone. Only an orientation
    // request, whose triage step follows its insert, takes one.
    let mut conn = pool.acquire().await?;
    let now = time::now();
    let (offer, details) = match checks(&mut conn, &s, now.date_naive()).await {
        Ok(checked) => checked,
        Err(error) => {
            // A retry of a request filed earlier is answered from it, whatever changed since (the member, the
            // offer, today's date against its loan dates).
            if let Some(key) = &s.idempotency_key
                && let Some(existing) = store::by_idempotency_key(&mut conn, s.member_id, key).await?
            {
                return replay(existing, &s).map(|row| Filed { row, replayed: true, history: None });
            }
            return Err(error);
        }
    };
    let row = new_row(&s, offer.as_ref(), details, now);
    let submitter = lifecycle::actor(&mut conn, caller, &access::SUBMITTERS).await?;
    // The insert is the idempotency check (one statement, on the key's unique index): a key already used, by an
    // earlier call or a concurrent one that committed first, files nothing and answers what that one filed.
    let mut events = outbox::Outgoing::new();
    events.event(&submitted(&row, now, &submitter, &caller.email));
    if !row.orientation {
        let Some(filed) =
            store::insert_request(&mut conn, &row, s.idempotency_key.as_deref(), &submitter, events).await?
        else {
            return earlier(&mut conn, &s).await.map(|row| Filed { row, replayed: true, history: None });
        };
        // The insert returned the request as stored; its history is the one row it wrote.
        let history = vec![store::HistoryRow::first(&filed, &submitter)];
        tracing::info!(request_id = %filed.id, member_id = %filed.member_id, offer_id = ?filed.offer_id, "request submitted");
        return Ok(Filed { row: filed, replayed: false, history: Some(history) });
    }
    let mut tx = conn.begin().await?;
    let Some(filed) = store::insert_request(&mut tx, &row, s.idempotency_key.as_deref(), &submitter, events).await?
    else {
        tx.rollback().await?;
        return earlier(&mut conn, &s).await.map(|row| Filed { row, replayed: true, history: None });
    };
    // Routing queues every request without an offer for the coordinator's triage. Read with its member's referent,
    // whom the step's event names.
    let filed = store::request_for_update(&mut tx, filed.id)
        .await?
        .ok_or_else(|| ServiceError::internal("reading back", "request vanished"))?;
    let state = lifecycle::state_of(&filed).map_err(|e| ServiceError::internal("new request", e))?;
    if let Some(step) = crate::domain::lifecycle::apply(&state, &Trigger::Queued, now)? {
        lifecycle::record(&mut tx, &filed, &step, &Actor::System, &Cause::default()).await?;
    }
    // Read back with its second step, in the same transaction.
    let row = store::get_request(&mut *tx, filed.id)
        .await?
        .ok_or_else(|| ServiceError::internal("reading back", "request vanished"))?;
    let history = store::history(&mut *tx, row.id).await?;
    tx.commit().await?;
    tracing::info!(request_id = %row.id, member_id = %row.member_id, offer_id = ?row.offer_id, "request submitted");
    Ok(Filed { row, replayed: false, history: Some(history) })
}

/// An idempotent retry: the same body returns the stored request, another body is a conflict.
fn replay(existing: RequestRow, s: &Submission) -> Result<RequestRow, ServiceError> {
    if existing.idempotency_fingerprint.as_deref().is_some_and(|f| f != s.fingerprint()) {
        return Err(domain::idempotency_conflict(s.idempotency_key.as_deref().unwrap_or_default()));
    }
    Ok(existing)
}

/// What a submission must satisfy to be filed: its member active, its offer known, what its offer's category asks
/// for (the offer and the details, on success).
async fn checks(
    conn: &mut sqlx::PgConnection,
    s: &Submission,
    today: chrono::NaiveDate,
) -> Result<(Option<OfferRow>, Details), ServiceError> {
    let context = store::submission_context(conn, s.member_id, s.offer_id).await?;
    match context.member_status {
        Some(status) if status == "active" => {}
        status => return Err(RequestsError::MemberNotActive { member_id: s.member_id, status }.into()),
    }
    let offer = match s.offer_id {
        None => None,
        Some(offer_id) => Some(context.offer.ok_or(RequestsError::OfferNotFound(offer_id))?),
    };
    let details = details(s, offer.as_ref(), today, context.member_commune.as_deref())?;
    Ok((offer, details))
}

/// The request filed earlier (or concurrently, committed first) with the submission's key.
async fn earlier(conn: &mut sqlx::PgConnection, s: &Submission) -> Result<RequestRow, ServiceError> {
    let key = s.idempotency_key.clone().unwrap_or_default();
    let existing = store::by_idempotency_key(conn, s.member_id, &key)
        .await?
        .ok_or_else(|| ServiceError::internal("resolving an idempotency race", "request vanished"))?;
    replay(existing, s)
}

/// What the request must carry for its offer's category (`None`: an open orientation request); the member's own
/// commune is the site's default.
fn details(
    s: &Submission,
    offer: Option<&OfferRow>,
    today: chrono::NaiveDate,
    member_commune: Option<&str>,
) -> Result<Details, ServiceError> {
    // An offer whose category requests does not know yet needs nothing in particular.
    let category = offer.map(|o| Category::parse(&o.category).unwrap_or(Category::AwarenessTraining));
    domain::validate_details(category, s.dates.as_ref(), s.site.as_ref(), today, member_commune)
}

fn new_row(
    s: &Submission,
    offer: Option<&OfferRow>,
    details: Details,
    now: chrono::DateTime<chrono::Utc>,
) -> RequestRow {
    RequestRow {
        id: Uuid::now_v7(),
        member_id: s.member_id,
        offer_id: s.offer_id,
        subject: s.subject.clone(),
        description: s.description.clone(),
        status: RequestStatus::Submitted.as_str().to_owned(),
        provider_code: None,
        submitted_at: now,
        updated_at: now,
        offer_version: offer.map(|o| o.version),
        offer_category: offer.map(|o| o.category.clone()).filter(|c| !c.is_empty()),
        orientation: s.offer_id.is_none(),
        details: Json(details),
        idempotency_fingerprint: Some(s.fingerprint()),
        first_answered_at: None,
        completed_at: None,
        referent_user_id: None,
    }
}

/// The event, with who submitted it (routing shows the provider this contact).
fn submitted(row: &RequestRow, now: chrono::DateTime<chrono::Utc>, by: &Actor, email: &str) -> RequestSubmitted {
    RequestSubmitted {
        requester_user_id: by.user_id().map(|id| id.to_string()).unwrap_or_default(),
        requester_name: by.name().to_owned(),
        requester_email: email.trim().to_owned(),
        request_id: row.id.to_string(),
        member_id: row.member_id.to_string(),
        offer_id: row.offer_id.map(|id| id.to_string()).unwrap_or_default(),
        subject: row.subject.clone(),
        description: row.description.clone(),
        occurred_at: Some(time::to_proto(now)),
        offer_version: row.offer_version.unwrap_or(0),
        offer_category: row.offer_category.clone().unwrap_or_default(),
    }
}
