//! SQL of the membership service.

use chrono::{DateTime, Utc};
use id77_proto::vocabulary::MemberKind;
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct CollectivityRow {
    pub siren: String,
    pub name: String,
    pub kind: String,
    pub insee_code: Option<String>,
    pub departement: String,
    pub population: i64,
    pub postal_codes: Vec<String>,
    pub epci_siren: Option<String>,
    pub legal_form: Option<String>,
    pub search_name: String,
}

const COLLECTIVITY_COLUMNS: &str =
    "siren, name, kind, insee_code, departement, population, postal_codes, epci_siren, legal_form, search_name";

#[derive(Debug, Clone, FromRow)]
pub struct MemberRow {
    pub id: Uuid,
    pub siren: String,
    pub name: String,
    pub kind: String,
    pub population: i64,
    pub status: String,
    pub contact_name: String,
    pub contact_email: String,
    pub applied_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    /// The referent (a Département agent) who follows this member.
    pub referent_user_id: Option<Uuid>,
    /// Why the coordinator refused the application (refused members only).
    pub refusal_reason: Option<String>,
    pub refused_at: Option<DateTime<Utc>>,
}

/// Directory search: by SIREN or INSEE code when the query is one, else by folded name containing the query.
/// The exact name comes first, then names starting with the query, then the others, each alphabetically;
/// keyset-paginated on (rank, search_name, siren).
pub async fn search_collectivities(
    pool: &PgPool,
    folded_query: &str,
    kind: Option<MemberKind>,
    after: Option<(i32, String, String)>,
    limit: i64,
) -> Result<Vec<(i32, CollectivityRow)>, sqlx::Error> {
    let (after_rank, after_name, after_siren) = after.unwrap_or((-1, String::new(), String::new()));
    let rows: Vec<RankedRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT * FROM (
           SELECT CASE WHEN search_name = $6 OR siren = $6 OR insee_code = $6 THEN 0
                       WHEN search_name LIKE $1 || '%' THEN 1 ELSE 2 END AS rank,
                  {COLLECTIVITY_COLUMNS}
           FROM collectivity
           WHERE ($1 = '' OR search_name LIKE '%' || $1 || '%' OR siren = $6 OR insee_code = $6)
             AND ($2::text IS NULL OR kind = $2)
         ) ranked
         WHERE (rank, search_name, siren) > ($3, $4, $5)
         ORDER BY rank, search_name, siren
         LIMIT $7"
    )))
    .bind(escape_like(folded_query))
    .bind(kind.map(MemberKind::as_str))
    .bind(after_rank)
    .bind(after_name)
    .bind(after_siren)
    .bind(folded_query)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.rank, r.row)).collect())
}

#[derive(FromRow)]
struct RankedRow {
    rank: i32,
    #[sqlx(flatten)]
    row: CollectivityRow,
}

/// `%` and `_` in a query are literal characters, not wildcards.
fn escape_like(q: &str) -> String {
    q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

pub async fn get_collectivity(conn: &mut PgConnection, siren: &str) -> Result<Option<CollectivityRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {COLLECTIVITY_COLUMNS} FROM collectivity WHERE siren = $1")))
        .bind(siren)
        .fetch_optional(conn)
        .await
}

const MEMBER_COLUMNS: &str = "id, siren, name, kind, population, status, contact_name, contact_email, applied_at, approved_at, referent_user_id, \
     refusal_reason, refused_at";

pub async fn member_by_siren_for_update(
    conn: &mut PgConnection,
    siren: &str,
) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {MEMBER_COLUMNS} FROM member WHERE siren = $1 FOR UPDATE")))
        .bind(siren)
        .fetch_optional(conn)
        .await
}

pub async fn member_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {MEMBER_COLUMNS} FROM member WHERE id = $1 FOR UPDATE")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn get_member(pool: &PgPool, id: Uuid) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {MEMBER_COLUMNS} FROM member WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Inserts a new application, or turns a withdrawn membership back into a pending one (same id).
pub async fn upsert_application(conn: &mut PgConnection, m: &MemberRow) -> Result<MemberRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO member (id, siren, name, kind, population, status, contact_name, contact_email, applied_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
         ON CONFLICT (siren) DO UPDATE SET status = EXCLUDED.status, contact_name = EXCLUDED.contact_name,
           contact_email = EXCLUDED.contact_email, applied_at = EXCLUDED.applied_at, approved_at = NULL,
           refusal_reason = NULL, refused_at = NULL, updated_at = EXCLUDED.updated_at
         RETURNING {MEMBER_COLUMNS}"
    )))
    .bind(m.id)
    .bind(&m.siren)
    .bind(&m.name)
    .bind(&m.kind)
    .bind(m.population)
    .bind(&m.status)
    .bind(&m.contact_name)
    .bind(&m.contact_email)
    .bind(m.applied_at)
    .fetch_one(conn)
    .await
}

pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    approved_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Result<MemberRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE member SET status = $2, approved_at = COALESCE($3, approved_at), updated_at = $4 WHERE id = $1
         RETURNING {MEMBER_COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .bind(approved_at)
    .bind(at)
    .fetch_one(conn)
    .await
}

/// A pending membership is refused, with its reason.
pub async fn refuse(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<MemberRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE member SET status = $2, refusal_reason = $3, refused_at = $4, updated_at = $4 WHERE id = $1
         RETURNING {MEMBER_COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .bind(reason)
    .bind(at)
    .fetch_one(conn)
    .await
}

/// Members (of one referent, if given), oldest application first, keyset-paginated on (applied_at, id).
pub async fn list_members(
    pool: &PgPool,
    status: Option<&str>,
    referent_user_id: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<MemberRow>, sqlx::Error> {
    // No cursor: NULL, the first page (chrono's MIN is outside PostgreSQL's range).
    let (after_at, after_id) = (after.map(|a| a.0), after.map(|a| a.1).unwrap_or_default());
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM member
         WHERE ($1::text IS NULL OR status = $1) AND ($2::timestamptz IS NULL OR (applied_at, id) > ($2, $3))
           AND ($5::uuid IS NULL OR referent_user_id = $5)
         ORDER BY applied_at, id LIMIT $4"
    )))
    .bind(status)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .bind(referent_user_id)
    .fetch_all(pool)
    .await
}

/// Sets (or clears) the referent of a member.
pub async fn set_referent(
    conn: &mut PgConnection,
    id: Uuid,
    referent_user_id: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<MemberRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE member SET referent_user_id = $2, updated_at = $3 WHERE id = $1 RETURNING {MEMBER_COLUMNS}"
    )))
    .bind(id)
    .bind(referent_user_id)
    .bind(at)
    .fetch_one(conn)
    .await
}

/// Clears a referent from every member it follows; returns those members.
pub async fn clear_referent(
    conn: &mut PgConnection,
    referent_user_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE member SET referent_user_id = NULL, updated_at = $2 WHERE referent_user_id = $1 RETURNING id",
    )
    .bind(referent_user_id)
    .bind(at)
    .fetch_all(conn)
    .await
}

/// A member's facts as routing rules see them (from the directory).
#[derive(Debug, Clone, Default, FromRow)]
pub struct Territory {
    pub siren: String,
    pub kind: String,
    pub population: i64,
    pub insee_code: String,
    /// A commune's EPCI; an EPCI's own SIREN.
    pub epci_siren: String,
    pub arrondissement: String,
}

/// The territory of a member (empty fields when the directory does not know them).
pub async fn territory(conn: &mut PgConnection, member_id: Uuid) -> Result<Territory, sqlx::Error> {
    let row: Option<Territory> = sqlx::query_as(
        "SELECT m.siren::text AS siren, m.kind, m.population,
                COALESCE(c.insee_code, '') AS insee_code,
                COALESCE(CASE WHEN m.kind = $2 THEN m.siren::text ELSE c.epci_siren::text END, '') AS epci_siren,
                COALESCE(c.arrondissement, '') AS arrondissement
         FROM member m LEFT JOIN collectivity c ON c.siren = m.siren WHERE m.id = $1",
    )
    .bind(member_id)
    .bind(MemberKind::Epci.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(row.unwrap_or_default())
}
