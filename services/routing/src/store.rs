//! SQL of the routing service.

use chrono::{DateTime, Utc};
use id77_platform::outbox::{self, BindEvents};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::Actor;
use crate::domain::calendar::Schedule;
use crate::store_names::Requester;

#[derive(Debug, Clone, FromRow)]
pub struct OfferRow {
    pub offer_id: Uuid,
    pub code: String,
    pub title: String,
    pub provider_code: String,
    pub version: i32,
    pub themes: Vec<String>,
    /// The spelling of its [`PriceKind`](id77_proto::vocabulary::PriceKind), or empty when unknown (an offer
    /// read before routing kept it, or a kind this build does not know).
    pub price_kind: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct ReferralRow {
    pub id: Uuid,
    pub request_id: Uuid,
    pub offer_id: Uuid,
    pub member_id: Uuid,
    pub provider_code: String,
    pub status: String,
    pub reason: String,
    pub assignment: String,
    pub offered_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
    pub attempt: i32,
    pub rule_id: Option<Uuid>,
    pub rule_version: Option<i32>,
    pub respond_by: Option<DateTime<Utc>>,
    pub remind_at: Option<DateTime<Utc>>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub progress: String,
    /// "not_required", "awaiting_member" or "agreed" ([`crate::domain::Agreement`]).
    pub agreement: String,
    /// Who accepted, declined or withdrew it (see [`crate::domain::Actor`]).
    pub decided_by_user_id: Option<Uuid>,
    pub decided_by_role: String,
    pub decided_by_name: String,
    /// Its offer's price kind, as [`lock_referral`] reads it with the row ("" for an offer routing does not know);
    /// `None` from every other read (issue 23: an accept's quote gate without a read of its own).
    #[sqlx(default)]
    pub offer_price_kind: Option<String>,
}

const REFERRAL_COLUMNS: &str = "id, request_id, offer_id, member_id, provider_code, status, reason, assignment, \
     offered_at, decided_at, attempt, rule_id, rule_version, respond_by, remind_at, escalated_at, expires_at, \
     completed_at, progress, agreement, decided_by_user_id, decided_by_role, decided_by_name";

/// Inserts or updates an offer of the read model. A version older than (or equal to) the stored one changes
/// nothing, except that the same version fills a price kind the row does not have yet (rows read before routing
/// kept it). Returns whether the row changed.
pub async fn upsert_offer(conn: &mut PgConnection, offer: &OfferRow) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "INSERT INTO offer (offer_id, code, title, provider_code, version, themes, price_kind, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now())
         ON CONFLICT (offer_id) DO UPDATE SET code = EXCLUDED.code, title = EXCLUDED.title,
           provider_code = EXCLUDED.provider_code, version = EXCLUDED.version, themes = EXCLUDED.themes,
           price_kind = EXCLUDED.price_kind, updated_at = now()
         WHERE offer.version < EXCLUDED.version
            OR (offer.version = EXCLUDED.version AND offer.price_kind = '' AND EXCLUDED.price_kind <> '')",
    )
    .bind(offer.offer_id)
    .bind(&offer.code)
    .bind(&offer.title)
    .bind(&offer.provider_code)
    .bind(offer.version)
    .bind(&offer.themes)
    .bind(&offer.price_kind)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(changed > 0)
}

pub async fn get_offer(conn: &mut PgConnection, offer_id: Uuid) -> Result<Option<OfferRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT offer_id, code, title, provider_code, version, themes, price_kind FROM offer WHERE offer_id = $1",
    )
    .bind(offer_id)
    .fetch_optional(conn)
    .await
}

/// Inserts a new referral unless the request already has this attempt, with its first timer (the reminder of
/// `schedule`; each timer arms the next when it fires, [`TimerKind::next`]) and its `events`, in one statement
/// (issue 23: one round trip where four were). Returns the row only when inserted (nothing else is written
/// otherwise).
pub async fn insert_referral(
    conn: &mut PgConnection,
    r: &ReferralRow,
    schedule: &Schedule,
    events: outbox::Outgoing,
) -> Result<Option<ReferralRow>, sqlx::Error> {
    // One timer, not three: most referrals are answered before their reminder, and each row cost an insert into
    // three indexes and a delete (issue 23).
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH written AS (
           INSERT INTO referral (id, request_id, offer_id, member_id, provider_code, status, reason, assignment,
                                 offered_at, decided_at, updated_at, attempt, rule_id, rule_version, respond_by,
                                 remind_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9, $11, $12, $13, $14, $15, $16)
           ON CONFLICT (request_id, attempt) DO NOTHING
           RETURNING {REFERRAL_COLUMNS}),
         armed AS (
           INSERT INTO timer (id, referral_id, kind, due_at) SELECT $17, written.id, $18, $19 FROM written),
         events AS ({})
         SELECT written.*, {} AS woke FROM written",
        outbox::Outgoing::insert_sql(20, "EXISTS (SELECT 1 FROM written)"),
        outbox::NOTIFY_SQL,
    )))
    .bind(r.id)
    .bind(r.request_id)
    .bind(r.offer_id)
    .bind(r.member_id)
    .bind(&r.provider_code)
    .bind(&r.status)
    .bind(&r.reason)
    .bind(&r.assignment)
    .bind(r.offered_at)
    .bind(r.decided_at)
    .bind(r.attempt)
    .bind(r.rule_id)
    .bind(r.rule_version)
    .bind(r.respond_by)
    .bind(r.remind_at)
    .bind(r.expires_at)
    .bind(Uuid::now_v7())
    .bind(TimerKind::Remind.as_str())
    .bind(schedule.remind_at)
    .bind_events(events)
    .fetch_optional(conn)
    .await
}

pub async fn referral_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {REFERRAL_COLUMNS} FROM referral WHERE id = $1 FOR UPDATE")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// A referral locked in the order of every path ([`lock_request`] on its request, then its row), in one statement
/// where three were (issue 23). None: no such referral.
pub async fn lock_referral(conn: &mut PgConnection, id: Uuid) -> Result<Option<ReferralRow>, sqlx::Error> {
    // The CTE takes the request's lock while scanning; the row lock is taken last, on top of the join, and reads
    // the row as the lock holder left it.
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH request_locked AS (
           SELECT pg_advisory_xact_lock(hashtextextended(request_id::text, 77))::text FROM referral WHERE id = $1)
         SELECT {REFERRAL_COLUMNS},
                COALESCE((SELECT price_kind FROM offer o WHERE o.offer_id = referral.offer_id), '') AS offer_price_kind
         FROM referral, request_locked WHERE id = $1 FOR UPDATE OF referral"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The referrals of `ids` that exist, locked as [`lock_referral`] locks one: every request's lock first, in the
/// order of the requests' ids (the same order in every batch), then the rows. One statement for a consumer's batch
/// of replies (issue 23).
pub async fn lock_referrals(conn: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<ReferralRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH requests_locked AS MATERIALIZED (
           SELECT count(pg_advisory_xact_lock(hashtextextended(r.request_id::text, 77))) AS locks
           FROM (SELECT DISTINCT request_id FROM referral WHERE id = ANY($1) ORDER BY request_id) r)
         SELECT {REFERRAL_COLUMNS},
                COALESCE((SELECT price_kind FROM offer o WHERE o.offer_id = referral.offer_id), '') AS offer_price_kind
         FROM referral, requests_locked WHERE id = ANY($1) ORDER BY id FOR UPDATE OF referral"
    )))
    .bind(ids)
    .fetch_all(conn)
    .await
}

pub async fn get_referral_conn(conn: &mut PgConnection, id: Uuid) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {REFERRAL_COLUMNS} FROM referral WHERE id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn get_referral(pool: &PgPool, id: Uuid) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {REFERRAL_COLUMNS} FROM referral WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// A decision on a referral: its new status, why, when, by whom, and its agreement when it changes.
#[derive(Debug, Clone, Copy)]
pub struct Decision<'a> {
    pub status: &'a str,
    pub reason: &'a str,
    pub at: DateTime<Utc>,
    pub by: &'a Actor,
    /// `None` keeps the referral's agreement.
    pub agreement: Option<&'a str>,
}

/// Records a decision (accepted, declined...) on a referral, disarms its timers and writes the `events` that
/// announce it, in one statement.
pub async fn decide(
    conn: &mut PgConnection,
    id: Uuid,
    d: Decision<'_>,
    events: outbox::Outgoing,
) -> Result<ReferralRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH decided AS (
           UPDATE referral SET status = $2, reason = $3, decided_at = $4, updated_at = $4, decided_by_user_id = $5,
             decided_by_role = $6, decided_by_name = $7, agreement = COALESCE($8, agreement)
           WHERE id = $1
           RETURNING {REFERRAL_COLUMNS}),
         disarmed AS (DELETE FROM timer WHERE referral_id = $1),
         events AS ({})
         SELECT decided.*, {} AS woke FROM decided",
        outbox::Outgoing::insert_sql(9, "EXISTS (SELECT 1 FROM decided)"),
        outbox::NOTIFY_SQL,
    )))
    .bind(id)
    .bind(d.status)
    .bind(d.reason)
    .bind(d.at)
    .bind(d.by.user_id)
    .bind(&d.by.role)
    .bind(&d.by.name)
    .bind(d.agreement)
    .bind_events(events)
    .fetch_one(conn)
    .await
}

/// The member accepted the quote of an accepted referral: its work may start. Returns whether it changed (a
/// referral already agreed, or no longer accepted, is left as it is).
pub async fn mark_agreed(conn: &mut PgConnection, id: Uuid, at: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE referral SET agreement = 'agreed', updated_at = $2
         WHERE id = $1 AND status = 'accepted' AND agreement <> 'agreed'",
    )
    .bind(id)
    .bind(at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Which referrals a list shows (every field optional).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReferralFilter<'a> {
    pub request_id: Option<Uuid>,
    pub provider_code: Option<&'a str>,
    /// Only open referrals whose reminder is due at this instant.
    pub at_risk_at: Option<DateTime<Utc>>,
    /// Only referrals changed (`changed_at`, any write) strictly after this instant: a list's sync.
    pub changed_since: Option<DateTime<Utc>>,
}

/// Referrals, oldest first, optionally of one request and/or one provider, keyset-paginated on
/// (offered_at, id).
pub async fn list_referrals(
    pool: &PgPool,
    filter: ReferralFilter<'_>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<ReferralRow>, sqlx::Error> {
    // No cursor on the first page (chrono's minimum date is outside PostgreSQL's timestamp range).
    let (after_at, after_id) = after.map_or((None, Uuid::nil()), |(at, id)| (Some(at), id));
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REFERRAL_COLUMNS} FROM referral
         WHERE ($1::uuid IS NULL OR request_id = $1) AND ($2::text IS NULL OR provider_code = $2)
           AND ($3::timestamptz IS NULL OR (offered_at, id) > ($3, $4))
           AND ($6::timestamptz IS NULL OR (status = 'offered' AND remind_at <= $6))
           AND ($7::timestamptz IS NULL OR changed_at > $7)
         ORDER BY offered_at, id LIMIT $5"
    )))
    .bind(filter.request_id)
    .bind(filter.provider_code)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .bind(filter.at_risk_at)
    .bind(filter.changed_since)
    .fetch_all(pool)
    .await
}

/// Queues an open request (no offer) for the coordinator. A replay changes nothing. Returns whether it was new.
pub async fn queue_for_triage(
    conn: &mut PgConnection,
    request_id: Uuid,
    member_id: Uuid,
    subject: &str,
    description: &str,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO triage (request_id, member_id, subject, description, received_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(request_id)
    .bind(member_id)
    .bind(subject)
    .bind(description)
    .bind(at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// Puts a request on the coordinator's triage queue because no candidate is left (or reopens it there).
pub async fn queue_unplaced(
    conn: &mut PgConnection,
    request: &RoutedRequestRow,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO triage (request_id, member_id, subject, description, received_at, offer_id, reason)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (request_id) DO UPDATE SET reason = EXCLUDED.reason, received_at = EXCLUDED.received_at,
           resolved_at = NULL",
    )
    .bind(request.request_id)
    .bind(request.member_id)
    .bind(&request.subject)
    .bind(&request.description)
    .bind(at)
    .bind(request.offer_id)
    .bind(reason)
    .execute(conn)
    .await?;
    Ok(())
}

/// The request left the triage queue (the coordinator placed it).
pub async fn resolve_triage(conn: &mut PgConnection, request_id: Uuid, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE triage SET resolved_at = $2 WHERE request_id = $1 AND resolved_at IS NULL")
        .bind(request_id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// A request in the coordinator's triage queue.
#[derive(Debug, Clone, FromRow)]
pub struct TriageRow {
    pub request_id: Uuid,
    pub member_id: Uuid,
    pub subject: String,
    pub description: String,
    pub offer_id: Option<Uuid>,
    pub reason: String,
    pub received_at: DateTime<Utc>,
}

const TRIAGE_COLUMNS: &str = "request_id, member_id, subject, description, offer_id, reason, received_at";

/// The open queue, oldest first, keyset-paginated on (received_at, request_id).
pub async fn list_triage(
    pool: &PgPool,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<TriageRow>, sqlx::Error> {
    let (after_at, after_id) = after.map_or((None, Uuid::nil()), |(at, id)| (Some(at), id));
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TRIAGE_COLUMNS} FROM triage WHERE resolved_at IS NULL
           AND ($1::timestamptz IS NULL OR (received_at, request_id) > ($1, $2))
         ORDER BY received_at, request_id LIMIT $3"
    )))
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A request still in the queue, locked.
pub async fn open_triage_item(conn: &mut PgConnection, request_id: Uuid) -> Result<Option<TriageRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TRIAGE_COLUMNS} FROM triage WHERE request_id = $1 AND resolved_at IS NULL FOR UPDATE"
    )))
    .bind(request_id)
    .fetch_optional(conn)
    .await
}

/// The triaged request is now for `offer_id` (routing's copy and its triage row, should it come back to the
/// queue).
pub async fn set_triaged_offer(conn: &mut PgConnection, request_id: Uuid, offer_id: Uuid) -> Result<(), sqlx::Error> {
    for table in ["routed_request", "triage"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("UPDATE {table} SET offer_id = $2 WHERE request_id = $1")))
            .bind(request_id)
            .bind(offer_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub async fn is_in_triage(pool: &PgPool, request_id: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM triage WHERE request_id = $1 AND resolved_at IS NULL)")
        .bind(request_id)
        .fetch_one(pool)
        .await
}

// ---- providers ---------------------------------------------------------------------------------------------

/// Records a provider named by an offer (its SLA keeps its value).
pub async fn upsert_provider(conn: &mut PgConnection, code: &str, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO provider (code, name) VALUES ($1, $2)
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
         WHERE EXCLUDED.name <> '' AND provider.name IS DISTINCT FROM EXCLUDED.name",
    )
    .bind(code)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn provider_codes(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT code FROM provider ORDER BY code").fetch_all(conn).await
}

/// A provider's response deadline in business days (`None`: unknown provider).
pub async fn provider_sla(conn: &mut PgConnection, code: &str) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar("SELECT sla_business_days FROM provider WHERE code = $1").bind(code).fetch_optional(conn).await
}

/// [`provider_sla`] outside a transaction.
pub async fn read_provider_sla(pool: &PgPool, code: &str) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar("SELECT sla_business_days FROM provider WHERE code = $1").bind(code).fetch_optional(pool).await
}

/// Sets a provider's deadline; `None` when the provider is unknown.
pub async fn set_provider_sla(pool: &PgPool, code: &str, days: i32) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE provider SET sla_business_days = $2, updated_at = now() WHERE code = $1 RETURNING sla_business_days",
    )
    .bind(code)
    .bind(days)
    .fetch_optional(pool)
    .await
}

// ---- members -----------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, FromRow)]
pub struct MemberRow {
    pub member_id: Uuid,
    pub siren: String,
    /// The spelling of its [`MemberKind`](id77_proto::vocabulary::MemberKind), or empty when unknown.
    pub kind: String,
    pub population: i64,
    pub insee_code: String,
    pub epci_siren: String,
    pub arrondissement: String,
    pub referent_user_id: Option<Uuid>,
}

/// Records what membership says of a member. Empty facts keep the stored value (an older event may not carry
/// them); the referent is only changed when `set_referent`.
pub async fn upsert_member(
    conn: &mut PgConnection,
    m: &MemberRow,
    set_referent: bool,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO member (member_id, siren, kind, population, insee_code, epci_siren, arrondissement,
                             referent_user_id, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (member_id) DO UPDATE SET
           siren = COALESCE(NULLIF(EXCLUDED.siren, ''), member.siren),
           kind = COALESCE(NULLIF(EXCLUDED.kind, ''), member.kind),
           population = CASE WHEN EXCLUDED.population > 0 THEN EXCLUDED.population ELSE member.population END,
           insee_code = COALESCE(NULLIF(EXCLUDED.insee_code, ''), member.insee_code),
           epci_siren = COALESCE(NULLIF(EXCLUDED.epci_siren, ''), member.epci_siren),
           arrondissement = COALESCE(NULLIF(EXCLUDED.arrondissement, ''), member.arrondissement),
           referent_user_id = CASE WHEN $10 THEN EXCLUDED.referent_user_id ELSE member.referent_user_id END,
           updated_at = EXCLUDED.updated_at",
    )
    .bind(m.member_id)
    .bind(&m.siren)
    .bind(&m.kind)
    .bind(m.population)
    .bind(&m.insee_code)
    .bind(&m.epci_siren)
    .bind(&m.arrondissement)
    .bind(m.referent_user_id)
    .bind(at)
    .bind(set_referent)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get_member(conn: &mut PgConnection, member_id: Uuid) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT member_id, siren, kind, population, insee_code, epci_siren, arrondissement, referent_user_id
         FROM member WHERE member_id = $1",
    )
    .bind(member_id)
    .fetch_optional(conn)
    .await
}

// ---- rule sets: [`crate::store_rules`] -----------------------------------------------------------------------

pub use crate::store_rules::{Policy, RuleSetRow, current_rules, insert_rule_set, lock_rules, rules_at};

// ---- requests and referrals --------------------------------------------------------------------------------

#[derive(Debug, Clone, FromRow)]
pub struct RoutedRequestRow {
    pub request_id: Uuid,
    pub member_id: Uuid,
    pub offer_id: Uuid,
    pub subject: String,
    pub description: String,
}

/// Remembers a request, under the request's lock ([`lock_request`], taken by the same statement), and who
/// submitted it when `requester` names someone (issue 23: one statement where two were); a replay changes
/// nothing, but still records a requester not recorded yet. Returns whether the request was new.
pub async fn insert_routed_request(
    conn: &mut PgConnection,
    r: &RoutedRequestRow,
    requester: Option<&Requester>,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let contact = requester.filter(|c| !c.is_empty());
    let n = sqlx::query(
        "WITH request_locked AS (SELECT pg_advisory_xact_lock(hashtextextended($1::text, 77))::text),
         contact AS (
           INSERT INTO request_contact (request_id, requester_user_id, requester_name, requester_email, received_at)
           SELECT $1, $7, $8, $9, $6 FROM request_locked WHERE $10 ON CONFLICT (request_id) DO NOTHING)
         INSERT INTO routed_request (request_id, member_id, offer_id, subject, description, received_at)
         SELECT $1, $2, $3, $4, $5, $6 FROM request_locked ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(r.request_id)
    .bind(r.member_id)
    .bind(r.offer_id)
    .bind(&r.subject)
    .bind(&r.description)
    .bind(at)
    .bind(contact.and_then(|c| c.user_id))
    .bind(contact.map_or("", |c| c.name.trim()))
    .bind(contact.map_or("", |c| c.email.trim()))
    .bind(contact.is_some())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

pub async fn get_routed_request(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> Result<Option<RoutedRequestRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT request_id, member_id, offer_id, subject, description FROM routed_request WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_optional(conn)
    .await
}

/// Every referral of a request, first attempt first.
pub async fn referrals_of(conn: &mut PgConnection, request_id: Uuid) -> Result<Vec<ReferralRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REFERRAL_COLUMNS} FROM referral WHERE request_id = $1 ORDER BY attempt"
    )))
    .bind(request_id)
    .fetch_all(conn)
    .await
}

/// The open (offered or accepted) referral of a request, locked.
pub async fn open_referral_for_update(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> Result<Option<ReferralRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {REFERRAL_COLUMNS} FROM referral WHERE request_id = $1 AND status IN ('offered', 'accepted')
         FOR UPDATE"
    )))
    .bind(request_id)
    .fetch_optional(conn)
    .await
}

/// Serialises the routing of one request (decline, expiry, reassignment, withdrawal) for the transaction.
pub async fn lock_request(conn: &mut PgConnection, request_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 77))").bind(request_id).execute(conn).await?;
    Ok(())
}

pub async fn mark_escalated(conn: &mut PgConnection, id: Uuid, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE referral SET escalated_at = $2, updated_at = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn mark_completed(conn: &mut PgConnection, id: Uuid, at: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    let n =
        sqlx::query("UPDATE referral SET completed_at = $2, updated_at = $2 WHERE id = $1 AND completed_at IS NULL")
            .bind(id)
            .bind(at)
            .execute(conn)
            .await?
            .rows_affected();
    Ok(n > 0)
}

/// Records a progress report (a repeated sequence changes nothing). Returns whether it was new.
/// The sequence of the next progress report of a referral (reports through the API number themselves).
pub async fn next_progress_sequence(conn: &mut PgConnection, id: Uuid) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(MAX(sequence), 0) + 1 FROM referral_progress WHERE referral_id = $1")
        .bind(id)
        .fetch_one(conn)
        .await
}

pub async fn add_progress(
    conn: &mut PgConnection,
    id: Uuid,
    sequence: i32,
    note: &str,
    percent: i32,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "INSERT INTO referral_progress (referral_id, sequence, note, percent, reported_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(sequence)
    .bind(note)
    .bind(percent)
    .bind(at)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n > 0 {
        sqlx::query("UPDATE referral SET progress = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(note)
            .bind(at)
            .execute(conn)
            .await?;
    }
    Ok(n > 0)
}

// ---- timers ------------------------------------------------------------------------------------------------

/// What a timer does when due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerKind {
    Remind,
    Escalate,
    Expire,
}

impl TimerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Remind => "remind",
            Self::Escalate => "escalate",
            Self::Expire => "expire",
        }
    }

    /// The timer a fired one arms: the deadline after the reminder, the expiry after the deadline.
    pub fn next(self) -> Option<Self> {
        match self {
            Self::Remind => Some(Self::Escalate),
            Self::Escalate => Some(Self::Expire),
            Self::Expire => None,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "remind" => Self::Remind,
            "escalate" => Self::Escalate,
            "expire" => Self::Expire,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct TimerRow {
    pub id: Uuid,
    pub referral_id: Uuid,
    pub kind: String,
    pub due_at: DateTime<Utc>,
}

/// Timers due at `now`, earliest first, locked; timers another replica holds are skipped.
pub async fn due_timers(conn: &mut PgConnection, now: DateTime<Utc>, limit: i64) -> Result<Vec<TimerRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, referral_id, kind, due_at FROM timer WHERE due_at <= $1
         ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Arms a referral's timer of `kind` at `due_at` (a timer of that kind already armed is moved there).
pub async fn arm_timer(
    conn: &mut PgConnection,
    referral_id: Uuid,
    kind: TimerKind,
    due_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO timer (id, referral_id, kind, due_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (referral_id, kind) DO UPDATE SET due_at = EXCLUDED.due_at",
    )
    .bind(Uuid::now_v7())
    .bind(referral_id)
    .bind(kind.as_str())
    .bind(due_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_timer(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM timer WHERE id = $1").bind(id).execute(conn).await?;
    Ok(())
}
