//! SQL of accounts, sessions, invitations and the audit log.

use chrono::{DateTime, Utc};
use id77_platform::ServiceError;
use id77_platform::auth::{Caller, Role, unauthenticated};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub member_id: Option<Uuid>,
    pub provider_code: Option<String>,
    pub password_hash: Option<String>,
    pub active: bool,
    pub failed_logins: Vec<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
    /// The SIREN of the user's member, for member users.
    pub member_siren: Option<String>,
}

impl UserRow {
    /// Whether the account can act: activated and not removed.
    pub fn is_live(&self) -> bool {
        self.active && self.removed_at.is_none()
    }

    /// The account's role (an unknown stored role is an internal error).
    pub fn typed_role(&self) -> Result<Role, ServiceError> {
        Role::parse(&self.role)
            .ok_or_else(|| ServiceError::internal("reading an account", format!("role {}", self.role)))
    }
}

const USER_COLUMNS: &str = "u.id, u.email, u.display_name, u.role, u.member_id, u.provider_code, u.password_hash, \
     u.active, u.failed_logins, u.locked_until, u.created_at, u.removed_at, m.siren AS member_siren";
const USER_FROM: &str = "app_user u LEFT JOIN member m ON m.id = u.member_id";

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub id: Uuid,
    pub email: &'a str,
    pub display_name: &'a str,
    pub role: &'a str,
    pub member_id: Option<Uuid>,
    pub provider_code: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

/// Whether an error is the violation of a unique constraint.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("23505"))
}

/// The live (not removed) account with this email.
pub async fn user_by_email(pool: &PgPool, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM {USER_FROM} WHERE u.email = $1 AND u.removed_at IS NULL"
    )))
    .bind(email)
    .fetch_optional(pool)
    .await
}

/// An account by id, removed or not.
pub async fn user_by_id(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {USER_COLUMNS} FROM {USER_FROM} WHERE u.id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The live account behind a caller's token: a removed (or never activated) account's access tokens stop working
/// for everything that reads or changes accounts, even before they expire.
pub async fn live_user(conn: &mut PgConnection, caller: &Caller) -> Result<UserRow, ServiceError> {
    user_by_id(conn, caller.user_id)
        .await?
        .filter(UserRow::is_live)
        .ok_or_else(|| unauthenticated("the account no longer exists"))
}

/// An account by id, locked for the rest of the transaction.
pub async fn user_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM {USER_FROM} WHERE u.id = $1 FOR UPDATE OF u"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

pub async fn insert_user(conn: &mut PgConnection, user: &NewUser<'_>) -> Result<UserRow, sqlx::Error> {
    sqlx::query(
        "INSERT INTO app_user (id, email, display_name, role, member_id, provider_code, password_hash, active, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(user.id)
    .bind(user.email)
    .bind(user.display_name)
    .bind(user.role)
    .bind(user.member_id)
    .bind(user.provider_code)
    .bind(user.password_hash)
    .bind(user.active)
    .bind(user.created_at)
    .execute(&mut *conn)
    .await?;
    user_by_id(conn, user.id).await?.ok_or(sqlx::Error::RowNotFound)
}

/// Creates the account, or (same email, live) makes it active with this role and password hash.
pub async fn upsert_active_user(conn: &mut PgConnection, user: &NewUser<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO app_user (id, email, display_name, role, member_id, provider_code, password_hash, active, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8)
         ON CONFLICT (email) WHERE removed_at IS NULL DO UPDATE SET
           role = EXCLUDED.role, member_id = EXCLUDED.member_id, provider_code = EXCLUDED.provider_code,
           password_hash = EXCLUDED.password_hash, active = true, failed_logins = '{}', locked_until = NULL",
    )
    .bind(user.id)
    .bind(user.email)
    .bind(user.display_name)
    .bind(user.role)
    .bind(user.member_id)
    .bind(user.provider_code)
    .bind(user.password_hash)
    .bind(user.created_at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// Records the failed logins kept and, if the account just locked, until when.
pub async fn set_login_failures(
    conn: &mut PgConnection,
    id: Uuid,
    recent: &[DateTime<Utc>],
    locked_until: Option<DateTime<Utc>>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE app_user SET failed_logins = $2, locked_until = COALESCE($3, locked_until) WHERE id = $1")
        .bind(id)
        .bind(recent)
        .bind(locked_until)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn clear_login_failures(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE app_user SET failed_logins = '{}', locked_until = NULL WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn activate_user(conn: &mut PgConnection, id: Uuid, password_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE app_user SET password_hash = $2, active = true, failed_logins = '{}', locked_until = NULL WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Removes an account: it can no longer log in, its email is free again, its invitations end.
pub async fn remove_user(conn: &mut PgConnection, id: Uuid, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE app_user SET removed_at = $2, active = false WHERE id = $1 AND removed_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE invitation SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Whether a live operator account exists (active or invited).
pub async fn operator_exists(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM app_user WHERE role = 'operator' AND removed_at IS NULL)")
        .fetch_one(conn)
        .await
}

/// Live accounts matching the filter, oldest first, keyset-paginated on (created_at, id).
pub async fn list_users(
    pool: &PgPool,
    member_id: Option<Uuid>,
    provider_code: Option<&str>,
    roles: Option<Vec<String>>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<UserRow>, sqlx::Error> {
    let (after_at, after_id) = (after.map(|a| a.0), after.map(|a| a.1).unwrap_or_default());
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {USER_COLUMNS} FROM {USER_FROM}
         WHERE u.removed_at IS NULL
           AND ($1::uuid IS NULL OR u.member_id = $1)
           AND ($2::text IS NULL OR u.provider_code = $2)
           AND ($3::text[] IS NULL OR u.role = ANY($3))
           AND ($4::timestamptz IS NULL OR (u.created_at, u.id) > ($4, $5))
         ORDER BY u.created_at, u.id LIMIT $6"
    )))
    .bind(member_id)
    .bind(provider_code)
    .bind(roles)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

// Sessions.

/// A refresh-token family (one login session).
#[derive(Debug, Clone, FromRow)]
pub struct FamilyRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, FromRow)]
pub struct RefreshRow {
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

pub async fn insert_family(
    conn: &mut PgConnection,
    id: Uuid,
    user_id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO refresh_family (id, user_id, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(user_id)
        .bind(at)
        .execute(conn)
        .await
        .map(|_| ())
}

/// The family, locked: every change to a family's tokens goes through this lock, so a rotation and a
/// revocation of the same family never interleave.
pub async fn family_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<FamilyRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, user_id, revoked_at FROM refresh_family WHERE id = $1 FOR UPDATE")
        .bind(id)
        .fetch_optional(conn)
        .await
}

pub async fn revoke_family(conn: &mut PgConnection, id: Uuid, at: DateTime<Utc>, why: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_family SET revoked_at = $2, revoked_why = $3 WHERE id = $1 AND revoked_at IS NULL")
        .bind(id)
        .bind(at)
        .bind(why)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn revoke_user_families(
    conn: &mut PgConnection,
    user_id: Uuid,
    at: DateTime<Utc>,
    why: &str,
) -> Result<u64, sqlx::Error> {
    sqlx::query("UPDATE refresh_family SET revoked_at = $2, revoked_why = $3 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id)
        .bind(at)
        .bind(why)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
}

pub async fn insert_refresh_token(
    conn: &mut PgConnection,
    token_hash: &[u8],
    family_id: Uuid,
    at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO refresh_token (token_hash, family_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(family_id)
        .bind(at)
        .bind(expires_at)
        .execute(conn)
        .await
        .map(|_| ())
}

pub async fn refresh_token(conn: &mut PgConnection, token_hash: &[u8]) -> Result<Option<RefreshRow>, sqlx::Error> {
    sqlx::query_as("SELECT family_id, expires_at, used_at FROM refresh_token WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(conn)
        .await
}

pub async fn mark_refresh_token_used(
    conn: &mut PgConnection,
    token_hash: &[u8],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE refresh_token SET used_at = $2 WHERE token_hash = $1")
        .bind(token_hash)
        .bind(at)
        .execute(conn)
        .await
        .map(|_| ())
}

// Invitations.

#[derive(Debug, Clone, FromRow)]
pub struct InvitationRow {
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

pub async fn insert_invitation(
    conn: &mut PgConnection,
    token_hash: &[u8],
    user_id: Uuid,
    invited_by: Option<Uuid>,
    at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO invitation (token_hash, user_id, invited_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(invited_by)
    .bind(at)
    .bind(expires_at)
    .execute(conn)
    .await
    .map(|_| ())
}

pub async fn invitation(conn: &mut PgConnection, token_hash: &[u8]) -> Result<Option<InvitationRow>, sqlx::Error> {
    sqlx::query_as("SELECT user_id, expires_at, used_at FROM invitation WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(conn)
        .await
}

pub async fn invitation_for_update(
    conn: &mut PgConnection,
    token_hash: &[u8],
) -> Result<Option<InvitationRow>, sqlx::Error> {
    sqlx::query_as("SELECT user_id, expires_at, used_at FROM invitation WHERE token_hash = $1 FOR UPDATE")
        .bind(token_hash)
        .fetch_optional(conn)
        .await
}

pub async fn mark_invitation_used(
    conn: &mut PgConnection,
    token_hash: &[u8],
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE invitation SET used_at = $2 WHERE token_hash = $1")
        .bind(token_hash)
        .bind(at)
        .execute(conn)
        .await
        .map(|_| ())
}

// Passwords.

#[derive(Debug, Clone, FromRow)]
pub struct ResetRow {
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

pub async fn insert_password_reset(
    conn: &mut PgConnection,
    token_hash: &[u8],
    user_id: Uuid,
    at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO password_reset (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(user_id)
        .bind(at)
        .bind(expires_at)
        .execute(conn)
        .await
        .map(|_| ())
}

/// How many reset links the account was given since `since`.
pub async fn resets_since(conn: &mut PgConnection, user_id: Uuid, since: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM password_reset WHERE user_id = $1 AND created_at > $2")
        .bind(user_id)
        .bind(since)
        .fetch_one(conn)
        .await
}

/// A reset by the hash of its token (locked for the transaction when `lock`).
pub async fn password_reset(
    conn: &mut PgConnection,
    token_hash: &[u8],
    lock: bool,
) -> Result<Option<ResetRow>, sqlx::Error> {
    let sql = if lock {
        "SELECT user_id, expires_at, used_at FROM password_reset WHERE token_hash = $1 FOR UPDATE"
    } else {
        "SELECT user_id, expires_at, used_at FROM password_reset WHERE token_hash = $1"
    };
    sqlx::query_as(sql).bind(token_hash).fetch_optional(conn).await
}

/// Every unused reset link of the account stops working.
pub async fn use_password_resets(conn: &mut PgConnection, user_id: Uuid, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE password_reset SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .bind(at)
        .execute(conn)
        .await
        .map(|_| ())
}

/// A new password for a live account (login failures forgotten).
pub async fn set_password(conn: &mut PgConnection, id: Uuid, password_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE app_user SET password_hash = $2, failed_logins = '{}', locked_until = NULL WHERE id = $1")
        .bind(id)
        .bind(password_hash)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Revokes the account's sessions but `keep`; returns the ones revoked.
pub async fn revoke_other_families(
    conn: &mut PgConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
    at: DateTime<Utc>,
    why: &str,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE refresh_family SET revoked_at = $3, revoked_why = $4
         WHERE user_id = $1 AND revoked_at IS NULL AND ($2::uuid IS NULL OR id <> $2) RETURNING id",
    )
    .bind(user_id)
    .bind(keep)
    .bind(at)
    .bind(why)
    .fetch_all(conn)
    .await
}

/// Live administrators of a member, activated or invited.
pub async fn member_admins(conn: &mut PgConnection, member_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM app_user WHERE member_id = $1 AND role = 'member_admin' AND removed_at IS NULL AND active",
    )
    .bind(member_id)
    .fetch_one(conn)
    .await
}

// Audit log.

#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub id: Uuid,
    pub kind: String,
    pub actor_user_id: Option<Uuid>,
    pub subject: String,
    pub client: String,
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// An event to record.
#[derive(Debug, Clone, Default)]
pub struct Audit<'a> {
    pub kind: &'a str,
    pub actor_user_id: Option<Uuid>,
    pub subject: &'a str,
    pub client: &'a str,
    pub detail: &'a str,
}

pub async fn audit(conn: &mut PgConnection, event: &Audit<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_event (id, kind, actor_user_id, subject, client, detail, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::now_v7())
    .bind(event.kind)
    .bind(event.actor_user_id)
    .bind(event.subject)
    .bind(event.client)
    .bind(event.detail)
    .bind(id77_platform::time::now())
    .execute(conn)
    .await
    .map(|_| ())
}

/// Audit events, newest first, keyset-paginated on (at, id) descending.
pub async fn list_audit(
    pool: &PgPool,
    kind: Option<&str>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    let (before_at, before_id) = (before.map(|b| b.0), before.map(|b| b.1).unwrap_or_default());
    sqlx::query_as(
        "SELECT id, kind, actor_user_id, subject, client, detail, at FROM audit_event
         WHERE ($1::text IS NULL OR kind = $1) AND ($2::timestamptz IS NULL OR (at, id) < ($2, $3))
         ORDER BY at DESC, id DESC LIMIT $4",
    )
    .bind(kind)
    .bind(before_at)
    .bind(before_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// An account changed since it was last announced (`user.changed`).
#[derive(Debug, Clone, FromRow)]
pub struct ChangedUser {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub member_id: Option<Uuid>,
    pub provider_code: Option<String>,
    pub active: bool,
    pub removed: bool,
    pub version: i64,
}

/// The accounts changed since they were last announced, locked for the rest of the transaction. Accounts another
/// transaction holds are left to it (it announces them itself before it commits).
pub async fn unannounced_users(conn: &mut PgConnection) -> Result<Vec<ChangedUser>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, email, display_name, role, member_id, provider_code, active, removed_at IS NOT NULL AS removed,
                version
         FROM app_user WHERE version > announced_version ORDER BY id FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(conn)
    .await
}

/// Records that `version` of the account was announced.
pub async fn mark_announced(conn: &mut PgConnection, id: Uuid, version: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE app_user SET announced_version = $2 WHERE id = $1")
        .bind(id)
        .bind(version)
        .execute(conn)
        .await
        .map(|_| ())
}
