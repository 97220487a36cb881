//! SQL of the requests service.

use chrono::{DateTime, Utc};
use id77_platform::outbox::{self, BindEvents};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::names::ProviderNames;
use crate::domain::{Actor, Details, Step};

#[derive(Debug, Clone, FromRow)]
pub struct RequestRow {
    pub id: Uuid,
    pub member_id: Uuid,
    /// `None`: an open orientation request not placed yet.
    pub offer_id: Option<Uuid>,
    pub subject: String,
    pub description: String,
    pub status: String,
    pub provider_code: Option<String>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub offer_version: Option<i32>,
    pub offer_category: Option<String>,
    pub orientation: bool,
    pub details: Json<Details>,
    pub idempotency_fingerprint: Option<String>,
    pub first_answered_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The referent following the request's member (`request.status_changed` names it), read with the request by
    /// [`request_for_update`] and [`get_request`]; None from the other reads.
    #[sqlx(default)]
    pub referent_user_id: Option<Uuid>,
}

#[derive(Debug, Clone, FromRow)]
pub struct HistoryRow {
    pub status: String,
    pub reason: String,
    pub at: DateTime<Utc>,
    pub from_status: Option<String>,
    pub actor_user_id: Option<Uuid>,
    pub actor_role: String,
    /// The actor's display name when it acted (empty: the platform, or a row written before names were kept).
    pub actor_name: String,
    pub provider_code: Option<String>,
}

impl HistoryRow {
    /// The first row of a new request, as [`insert_request`] writes it.
    pub fn first(request: &RequestRow, by: &Actor) -> Self {
        Self {
            status: request.status.clone(),
            reason: String::new(),
            at: request.submitted_at,
            from_status: None,
            actor_user_id: by.user_id(),
            actor_role: by.role().to_owned(),
            actor_name: by.name().to_owned(),
            provider_code: None,
        }
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct OfferRow {
    pub offer_id: Uuid,
    pub provider_code: String,
    pub version: i32,
    pub category: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct FeedbackRow {
    pub rating: i16,
    pub comment: String,
    pub given_by: Uuid,
    pub given_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// [`RequestRow::referent_user_id`], for a read of one request.
const REFERENT_COLUMN: &str =
    "(SELECT referent_user_id FROM member_referent m WHERE m.member_id = request.member_id) AS referent_user_id";

const REQUEST_COLUMNS: &str = "id, member_id, offer_id, subject, description, status, provider_code, submitted_at, \
     updated_at, offer_version, offer_category, orientation, details, idempotency_fingerprint, first_answered_at, \
     completed_at";

/// Records a member's status if the event is newer than what is stored.
pub async fn upsert_member_status(
    conn: &mut PgConnection,
    member_id: Uuid,
    status: &str,
    as_of: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO member_status (member_id, status, as_of) VALUES ($1, $2, $3)
         ON CONFLICT (member_id) DO UPDATE SET status = EXCLUDED.status, as_of = EXCLUDED.as_of
         WHERE member_status.as_of <= EXCLUDED.as_of",
    )
    .bind(member_id)
    .bind(status)
    .bind(as_of)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records who follows a member if the event is not older than what is stored (`None`: nobody).
pub async fn upsert_member_referent(
    conn: &mut PgConnection,
    member_id: Uuid,
    referent_user_id: Option<Uuid>,
    as_of: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO member_referent (member_id, referent_user_id, as_of) VALUES ($1, $2, $3)
         ON CONFLICT (member_id) DO UPDATE SET referent_user_id = EXCLUDED.referent_user_id, as_of = EXCLUDED.as_of
         WHERE member_referent.as_of <= EXCLUDED.as_of",
    )
    .bind(member_id)
    .bind(referent_user_id)
    .bind(as_of)
    .execute(conn)
    .await?;
    Ok(())
}

/// A member's territory facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Territory {
    pub kind: String,
    pub insee_code: String,
    pub epci_siren: String,
    pub arrondissement: String,
}

/// Records where a member is, if the event is not older than what is stored. An empty fact keeps the stored one
/// (`member.updated` repeats the facts, empty when its publisher did not know them).
pub async fn upsert_member_territory(
    conn: &mut PgConnection,
    member_id: Uuid,
    t: &Territory,
    as_of: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO member_territory (member_id, kind, insee_code, epci_siren, arrondissement, as_of)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (member_id) DO UPDATE SET
           kind = COALESCE(NULLIF(EXCLUDED.kind, ''), member_territory.kind),
           insee_code = COALESCE(NULLIF(EXCLUDED.insee_code, ''), member_territory.insee_code),
           epci_siren = COALESCE(NULLIF(EXCLUDED.epci_siren, ''), member_territory.epci_siren),
           arrondissement = COALESCE(NULLIF(EXCLUDED.arrondissement, ''), member_territory.arrondissement),
           as_of = EXCLUDED.as_of
         WHERE member_territory.as_of <= EXCLUDED.as_of",
    )
    .bind(member_id)
    .bind(&t.kind)
    .bind(&t.insee_code)
    .bind(&t.epci_siren)
    .bind(&t.arrondissement)
    .bind(as_of)
    .execute(conn)
    .await?;
    Ok(())
}

/// What a submission checks before it is filed, read in one statement (issue 23): the member's status and own
/// INSEE code (a commune's) from the read models, and the offer asked for (None: unknown, or none asked).
#[derive(Debug, Clone, Default)]
pub struct SubmissionContext {
    pub member_status: Option<String>,
    pub member_commune: Option<String>,
    pub offer: Option<OfferRow>,
}

pub async fn submission_context(
    conn: &mut PgConnection,
    member_id: Uuid,
    offer_id: Option<Uuid>,
) -> Result<SubmissionContext, sqlx::Error> {
    type Row = (Option<String>, Option<String>, Option<Uuid>, Option<String>, Option<i32>, Option<String>);
    let (member_status, member_commune, offer_id, provider_code, version, category): Row = sqlx::query_as(
        "SELECT (SELECT status FROM member_status WHERE member_id = $1),
                (SELECT NULLIF(insee_code, '') FROM member_territory WHERE member_id = $1),
                o.offer_id, o.provider_code, o.version, o.category
         FROM (SELECT 1) AS one LEFT JOIN offer o ON o.offer_id = $2",
    )
    .bind(member_id)
    .bind(offer_id)
    .fetch_one(conn)
    .await?;
    let offer = match (offer_id, provider_code, version, category) {
        (Some(offer_id), Some(provider_code), Some(version), Some(category)) => {
            Some(OfferRow { offer_id, provider_code, version, category })
        }
        _ => None,
    };
    Ok(SubmissionContext { member_status, member_commune, offer })
}

/// The referent following a member, if any.
pub async fn referent_of(pool: &PgPool, member_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<Option<Uuid>> =
        sqlx::query_scalar("SELECT referent_user_id FROM member_referent WHERE member_id = $1")
            .bind(member_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.flatten())
}

/// Records an offer version if it is not older than the stored one.
pub async fn upsert_offer(
    conn: &mut PgConnection,
    offer_id: Uuid,
    code: &str,
    title: &str,
    provider_code: &str,
    version: i32,
    category: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO offer (offer_id, code, title, provider_code, version, category) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (offer_id) DO UPDATE SET code = EXCLUDED.code, title = EXCLUDED.title,
           provider_code = EXCLUDED.provider_code, version = EXCLUDED.version, category = EXCLUDED.category
         WHERE offer.version <= EXCLUDED.version",
    )
    .bind(offer_id)
    .bind(code)
    .bind(title)
    .bind(provider_code)
    .bind(version)
    .bind(category)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records the name the catalogue gives a provider (an empty name keeps the one known; issue 21).
pub async fn upsert_provider(conn: &mut PgConnection, code: &str, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO provider (code, name) VALUES ($1, $2)
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
         WHERE EXCLUDED.name <> '' AND provider.name IS DISTINCT FROM EXCLUDED.name",
    )
    .bind(code.trim())
    .bind(name.trim())
    .execute(conn)
    .await?;
    Ok(())
}

/// The names of the providers `codes` that requests knows (the texts it writes name them, never code them).
pub async fn provider_names(conn: &mut PgConnection, codes: &[&str]) -> Result<ProviderNames, sqlx::Error> {
    let codes: Vec<String> = codes.iter().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect();
    if codes.is_empty() {
        return Ok(ProviderNames::default());
    }
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT code, name FROM provider WHERE code = ANY($1) AND name <> ''")
            .bind(&codes)
            .fetch_all(conn)
            .await?;
    Ok(ProviderNames::new(rows))
}

/// The current version of an offer, as requests knows it.
pub async fn offer(conn: &mut PgConnection, offer_id: Uuid) -> Result<Option<OfferRow>, sqlx::Error> {
    sqlx::query_as("SELECT offer_id, provider_code, version, category FROM offer WHERE offer_id = $1")
        .bind(offer_id)
        .fetch_optional(conn)
        .await
}

pub async fn by_idempotency_key(
    conn: &mut PgConnection,
    member_id: Uuid,
    key: &str,
) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS} FROM request WHERE member_id = $1 AND idempotency_key = $2"
    )))
    .bind(member_id)
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// Inserts a new request, its first history row (`submitted`, by `actor`) and its `events`, in one statement, and
/// returns the request as stored; None (nothing written) when the member already filed a request with this
/// idempotency key.
pub async fn insert_request(
    conn: &mut PgConnection,
    r: &RequestRow,
    key: Option<&str>,
    actor: &Actor,
    events: outbox::Outgoing,
) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH filed AS (
           INSERT INTO request (id, member_id, offer_id, subject, description, status, provider_code,
                                idempotency_key, submitted_at, updated_at, offer_version, offer_category, orientation,
                                details, idempotency_fingerprint)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
           ON CONFLICT (member_id, idempotency_key) DO NOTHING
           RETURNING {REQUEST_COLUMNS}),
         written AS (
           INSERT INTO request_history (request_id, from_status, status, provider_code, reason, at, actor_user_id,
                                        actor_role, actor_name)
           SELECT id, NULL, status, NULL, '', submitted_at, $16, $17, $18 FROM filed),
         events AS ({})
         SELECT filed.*, {} AS woke FROM filed",
        outbox::Outgoing::insert_sql(19, "EXISTS (SELECT 1 FROM filed)"),
        outbox::NOTIFY_SQL,
    )))
    .bind(r.id)
    .bind(r.member_id)
    .bind(r.offer_id)
    .bind(&r.subject)
    .bind(&r.description)
    .bind(&r.status)
    .bind(&r.provider_code)
    .bind(key)
    .bind(r.submitted_at)
    .bind(r.updated_at)
    .bind(r.offer_version)
    .bind(&r.offer_category)
    .bind(r.orientation)
    .bind(&r.details)
    .bind(&r.idempotency_fingerprint)
    .bind(actor.user_id())
    .bind(actor.role())
    .bind(actor.name())
    .bind_events(events)
    .fetch_optional(conn)
    .await
}

pub async fn request_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS}, {REFERENT_COLUMN} FROM request WHERE id = $1 FOR UPDATE OF request"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The requests of `ids` that exist, locked in the order of their ids: one statement for a consumer's batch
/// (issue 23), and the same lock order in every batch.
pub async fn requests_for_update(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<RequestRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS}, {REFERENT_COLUMN} FROM request WHERE id = ANY($1) ORDER BY id FOR UPDATE OF request"
    )))
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Steps of the lifecycle a transaction recorded, written together by [`Steps::write`]: each request's status and
/// provider as its last step left them, a history row per step and the steps' events, in one statement (issue 23:
/// a consumer's batch moved each request in a statement of its own). A request moved twice in one batch (offered,
/// then accepted) is updated once; [`Steps::moved`] gives it as it stands to the batch's later events.
#[derive(Debug, Default)]
pub struct Steps {
    /// The requests as their recorded steps left them, in the order first moved.
    moved: Vec<RequestRow>,
    history: Vec<HistoryLine>,
    events: outbox::Outgoing,
}

#[derive(Debug)]
struct HistoryLine {
    request_id: Uuid,
    from: String,
    to: String,
    provider: Option<String>,
    reason: String,
    at: DateTime<Utc>,
    actor: Actor,
}

impl Steps {
    /// Records `step` of `row` by `actor` with its `events`; `answered_at`: a provider's answer made the step (the
    /// earliest answer is kept, as [`mark_answered`]).
    pub fn push(
        &mut self,
        row: &RequestRow,
        step: &Step,
        actor: &Actor,
        answered_at: Option<DateTime<Utc>>,
        events: outbox::Outgoing,
    ) {
        let mut moved = row.clone();
        moved.status = step.to.as_str().to_owned();
        moved.provider_code.clone_from(&step.provider);
        moved.updated_at = step.at;
        if step.to == crate::domain::RequestStatus::Completed {
            moved.completed_at = Some(step.at);
        }
        moved.first_answered_at = match (moved.first_answered_at, answered_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match self.moved.iter_mut().find(|m| m.id == row.id) {
            Some(earlier) => *earlier = moved,
            None => self.moved.push(moved),
        }
        self.history.push(HistoryLine {
            request_id: row.id,
            from: step.from.as_str().to_owned(),
            to: step.to.as_str().to_owned(),
            provider: step.provider.clone(),
            reason: step.reason.clone(),
            at: step.at,
            actor: actor.clone(),
        });
        self.events.extend(events);
    }

    /// The request as the steps recorded so far left it (`None`: not moved by them).
    pub fn moved(&self, id: Uuid) -> Option<&RequestRow> {
        self.moved.iter().find(|m| m.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.moved.is_empty()
    }

    /// Writes the steps and their events, and wakes the relay, in one statement in the caller's transaction
    /// (nothing when no step was recorded).
    pub async fn write(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.is_empty() {
            return Ok(());
        }
        let r = &self.moved;
        let h = &self.history;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH moved AS (
               UPDATE request r SET status = m.status, provider_code = m.provider, updated_at = m.at,
                 completed_at = COALESCE(m.completed_at, r.completed_at),
                 -- LEAST ignores nulls: an answer marked by this transaction meanwhile (`mark_answered`) stays.
                 first_answered_at = LEAST(r.first_answered_at, m.answered_at)
               FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                           $6::timestamptz[]) AS m(id, status, provider, at, completed_at, answered_at)
               WHERE r.id = m.id
               RETURNING r.id),
             written AS (
               INSERT INTO request_history (request_id, from_status, status, provider_code, reason, at, actor_user_id,
                                            actor_role, actor_name)
               SELECT h.request_id, h.from_status, h.status, h.provider_code, h.reason, h.at, h.actor_user_id,
                      h.actor_role, h.actor_name
               FROM unnest($7::uuid[], $8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[],
                           $13::uuid[], $14::text[], $15::text[])
                    WITH ORDINALITY AS h(request_id, from_status, status, provider_code, reason, at, actor_user_id,
                                         actor_role, actor_name, n)
               WHERE h.request_id IN (SELECT id FROM moved)
               ORDER BY h.n),
             events AS ({})
             SELECT {} FROM (SELECT 1 FROM moved LIMIT 1) AS any_moved",
            outbox::Outgoing::insert_sql(16, "EXISTS (SELECT 1 FROM moved)"),
            outbox::NOTIFY_SQL,
        )))
        .bind(r.iter().map(|m| m.id).collect::<Vec<_>>())
        .bind(r.iter().map(|m| m.status.as_str()).collect::<Vec<_>>())
        .bind(r.iter().map(|m| m.provider_code.as_deref()).collect::<Vec<_>>())
        .bind(r.iter().map(|m| m.updated_at).collect::<Vec<_>>())
        .bind(r.iter().map(|m| m.completed_at).collect::<Vec<_>>())
        .bind(r.iter().map(|m| m.first_answered_at).collect::<Vec<_>>())
        .bind(h.iter().map(|l| l.request_id).collect::<Vec<_>>())
        .bind(h.iter().map(|l| l.from.as_str()).collect::<Vec<_>>())
        .bind(h.iter().map(|l| l.to.as_str()).collect::<Vec<_>>())
        .bind(h.iter().map(|l| l.provider.as_deref()).collect::<Vec<_>>())
        .bind(h.iter().map(|l| l.reason.as_str()).collect::<Vec<_>>())
        .bind(h.iter().map(|l| l.at).collect::<Vec<_>>())
        .bind(h.iter().map(|l| l.actor.user_id()).collect::<Vec<_>>())
        .bind(h.iter().map(|l| l.actor.role()).collect::<Vec<_>>())
        .bind(h.iter().map(|l| l.actor.name()).collect::<Vec<_>>())
        .bind_events(self.events)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// A provider answered (accepted or declined) at `at`: keeps the earliest answer.
pub async fn mark_answered(conn: &mut PgConnection, id: Uuid, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE request SET first_answered_at = LEAST(COALESCE(first_answered_at, $2), $2) WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// An open orientation request got an offer (the coordinator attached one at triage).
pub async fn attach_offer(conn: &mut PgConnection, id: Uuid, offer: &OfferRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE request SET offer_id = $2, offer_version = $3, offer_category = NULLIF($4, '')
         WHERE id = $1 AND offer_id IS NULL",
    )
    .bind(id)
    .bind(offer.offer_id)
    .bind(offer.version)
    .bind(&offer.category)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn get_request<'c>(db: impl sqlx::PgExecutor<'c>, id: Uuid) -> Result<Option<RequestRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS}, {REFERENT_COLUMN} FROM request WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn history<'c>(db: impl sqlx::PgExecutor<'c>, id: Uuid) -> Result<Vec<HistoryRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT status, reason, at, from_status, actor_user_id, actor_role, actor_name, provider_code
         FROM request_history WHERE request_id = $1 ORDER BY seq",
    )
    .bind(id)
    .fetch_all(db)
    .await
}

/// Whose requests a dashboard shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Member(Uuid),
    /// Every member this referent follows.
    FollowedBy(Uuid),
    /// Requests referred to this provider.
    Provider(String),
    All,
}

/// A dashboard's filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub status: Option<String>,
    pub category: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Only requests changed (`changed_at`, any write) strictly after this instant: a list's sync. Lists only.
    pub changed_since: Option<DateTime<Utc>>,
}

const SCOPED: &str = "($1::uuid IS NULL OR member_id = $1)
  AND ($2::uuid IS NULL OR member_id IN (SELECT member_id FROM member_referent WHERE referent_user_id = $2))
  AND ($3::text IS NULL OR provider_code = $3)
  AND ($4::text IS NULL OR status = $4)
  AND ($5::text IS NULL OR offer_category = $5)
  AND ($6::timestamptz IS NULL OR submitted_at >= $6)
  AND ($7::timestamptz IS NULL OR submitted_at < $7)";

fn scope_params(scope: &Scope) -> (Option<Uuid>, Option<Uuid>, Option<&str>) {
    match scope {
        Scope::Member(m) => (Some(*m), None, None),
        Scope::FollowedBy(r) => (None, Some(*r), None),
        Scope::Provider(p) => (None, None, Some(p.as_str())),
        Scope::All => (None, None, None),
    }
}

/// Requests in a scope, newest first, keyset-paginated on (submitted_at, id) descending; with `changed_since`, only
/// those changed strictly after it.
pub async fn list(
    pool: &PgPool,
    scope: &Scope,
    filter: &Filter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<RequestRow>, sqlx::Error> {
    let (member, referent, provider) = scope_params(scope);
    // No cursor: NULL, the first page (chrono's MIN is outside PostgreSQL's range).
    let (after_at, after_id) = (after.map(|a| a.0), after.map(|a| a.1).unwrap_or_default());
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REQUEST_COLUMNS} FROM request WHERE {SCOPED}
           AND ($8::timestamptz IS NULL OR (submitted_at, id) < ($8, $9))
           AND ($11::timestamptz IS NULL OR changed_at > $11)
         ORDER BY submitted_at DESC, id DESC LIMIT $10"
    )))
    .bind(member)
    .bind(referent)
    .bind(provider)
    .bind(&filter.status)
    .bind(&filter.category)
    .bind(filter.from)
    .bind(filter.to)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .bind(filter.changed_since)
    .fetch_all(pool)
    .await
}

/// Counts by status in a scope (the status filter is ignored).
pub async fn count_by_status(pool: &PgPool, scope: &Scope, filter: &Filter) -> Result<Vec<(String, i64)>, sqlx::Error> {
    let (member, referent, provider) = scope_params(scope);
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT status, count(*) FROM request WHERE {SCOPED} GROUP BY status")))
        .bind(member)
        .bind(referent)
        .bind(provider)
        .bind(None::<String>)
        .bind(&filter.category)
        .bind(filter.from)
        .bind(filter.to)
        .fetch_all(pool)
        .await
}

pub async fn feedback(pool: &PgPool, request_id: Uuid) -> Result<Option<FeedbackRow>, sqlx::Error> {
    sqlx::query_as("SELECT rating, comment, given_by, given_at, updated_at FROM feedback WHERE request_id = $1")
        .bind(request_id)
        .fetch_optional(pool)
        .await
}

/// Records or revises the feedback of a request.
pub async fn upsert_feedback(
    conn: &mut PgConnection,
    request_id: Uuid,
    rating: i16,
    comment: &str,
    given_by: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO feedback (request_id, rating, comment, given_by, given_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5)
         ON CONFLICT (request_id) DO UPDATE SET rating = EXCLUDED.rating, comment = EXCLUDED.comment,
           given_by = EXCLUDED.given_by, updated_at = EXCLUDED.updated_at",
    )
    .bind(request_id)
    .bind(rating)
    .bind(comment)
    .bind(given_by)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Aggregates over the requests submitted in [from, to).
#[derive(Debug, Clone, Default)]
pub struct Statistics {
    pub by_status: Vec<(String, i64)>,
    pub by_category: Vec<(String, i64)>,
    pub by_provider: Vec<(String, i64)>,
    pub by_epci: Vec<(String, i64)>,
    pub by_arrondissement: Vec<(String, i64)>,
    /// (count, median seconds)
    pub first_answer: (i64, Option<f64>),
    pub completion: (i64, Option<f64>),
    pub ratings: Vec<(i16, i64)>,
}

const IN_PERIOD: &str = "r.submitted_at >= $1 AND r.submitted_at < $2";

async fn grouped(
    pool: &PgPool,
    key: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COALESCE({key}, '') AS key, count(*) FROM request r
           LEFT JOIN member_territory t ON t.member_id = r.member_id
         WHERE {IN_PERIOD} GROUP BY 1"
    )))
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

async fn median(
    pool: &PgPool,
    until: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(i64, Option<f64>), sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM ({until} - r.submitted_at))::float8)
         FROM request r WHERE {IN_PERIOD} AND {until} IS NOT NULL"
    )))
    .bind(from)
    .bind(to)
    .fetch_one(pool)
    .await
}

pub async fn statistics(pool: &PgPool, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Statistics, sqlx::Error> {
    Ok(Statistics {
        by_status: grouped(pool, "r.status", from, to).await?,
        by_category: grouped(pool, "r.offer_category", from, to).await?,
        by_provider: grouped(pool, "r.provider_code", from, to).await?,
        by_epci: grouped(pool, "NULLIF(t.epci_siren, '')", from, to).await?,
        by_arrondissement: grouped(pool, "NULLIF(t.arrondissement, '')", from, to).await?,
        first_answer: median(pool, "r.first_answered_at", from, to).await?,
        completion: median(pool, "r.completed_at", from, to).await?,
        ratings: sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT f.rating, count(*) FROM feedback f JOIN request r ON r.id = f.request_id
             WHERE {IN_PERIOD} GROUP BY f.rating"
        )))
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await?,
    })
}
