//! SQL of the conversation: messages, attachments (content in chunks) and read markers.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

/// What the conversation needs of a request to decide who takes part.
#[derive(Debug, Clone, FromRow)]
pub struct ThreadFacts {
    pub id: Uuid,
    pub member_id: Uuid,
    pub provider_code: Option<String>,
    pub status: String,
    pub subject: String,
    /// The member's referent (read model fed by `member.updated`).
    pub referent_user_id: Option<Uuid>,
}

pub async fn thread_facts(conn: &mut PgConnection, request_id: Uuid) -> Result<Option<ThreadFacts>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.member_id, r.provider_code, r.status, r.subject, mr.referent_user_id
         FROM request r LEFT JOIN member_referent mr ON mr.member_id = r.member_id
         WHERE r.id = $1",
    )
    .bind(request_id)
    .fetch_optional(conn)
    .await
}

#[derive(Debug, Clone, FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub request_id: Uuid,
    pub seq: i64,
    pub author_user_id: Uuid,
    pub author_role: String,
    pub author_name: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, FromRow)]
pub struct AttachmentRow {
    pub id: Uuid,
    pub message_id: Uuid,
    pub request_id: Uuid,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
}

/// A new message (its `seq` is assigned by the insert and returned).
pub struct NewMessage<'a> {
    pub id: Uuid,
    pub request_id: Uuid,
    pub author_user_id: Uuid,
    pub author_role: &'a str,
    pub author_name: &'a str,
    pub body: &'a str,
    pub created_at: DateTime<Utc>,
}

pub async fn insert_message(conn: &mut PgConnection, m: &NewMessage<'_>) -> Result<MessageRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO message (id, request_id, author_user_id, author_role, author_name, body, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         RETURNING id, request_id, seq, author_user_id, author_role, author_name, body, created_at",
    )
    .bind(m.id)
    .bind(m.request_id)
    .bind(m.author_user_id)
    .bind(m.author_role)
    .bind(m.author_name)
    .bind(m.body)
    .bind(m.created_at)
    .fetch_one(conn)
    .await
}

/// Starts an attachment of a message not inserted yet (the foreign key is checked at commit).
pub async fn insert_attachment(
    conn: &mut PgConnection,
    a: &AttachmentRow,
    created_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO attachment (id, message_id, request_id, filename, content_type, size_bytes, sha256, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.id)
    .bind(a.message_id)
    .bind(a.request_id)
    .bind(&a.filename)
    .bind(&a.content_type)
    .bind(a.size_bytes)
    .bind(&a.sha256)
    .bind(created_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_chunk(
    conn: &mut PgConnection,
    attachment_id: Uuid,
    seq: i32,
    data: &[u8],
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO attachment_chunk (attachment_id, seq, data) VALUES ($1, $2, $3)")
        .bind(attachment_id)
        .bind(seq)
        .bind(data)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the size and digest once the whole content is stored.
pub async fn complete_attachment(
    conn: &mut PgConnection,
    attachment_id: Uuid,
    size_bytes: i64,
    sha256: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE attachment SET size_bytes = $2, sha256 = $3 WHERE id = $1")
        .bind(attachment_id)
        .bind(size_bytes)
        .bind(sha256)
        .execute(conn)
        .await?;
    Ok(())
}

/// A page of a thread, oldest first, after `after_seq`; with `posted_since`, only the messages posted strictly after
/// it (messages never change: posted is their only change).
pub async fn messages(
    pool: &PgPool,
    request_id: Uuid,
    after_seq: Option<i64>,
    posted_since: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<MessageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, request_id, seq, author_user_id, author_role, author_name, body, created_at FROM message
         WHERE request_id = $1 AND seq > $2 AND ($4::timestamptz IS NULL OR created_at > $4) ORDER BY seq LIMIT $3",
    )
    .bind(request_id)
    .bind(after_seq.unwrap_or(0))
    .bind(limit)
    .bind(posted_since)
    .fetch_all(pool)
    .await
}

/// The attachments of some messages.
pub async fn attachments_of(pool: &PgPool, message_ids: &[Uuid]) -> Result<Vec<AttachmentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, message_id, request_id, filename, content_type, size_bytes, sha256 FROM attachment
         WHERE message_id = ANY($1) ORDER BY created_at, id",
    )
    .bind(message_ids)
    .fetch_all(pool)
    .await
}

pub async fn attachment(
    pool: &PgPool,
    request_id: Uuid,
    attachment_id: Uuid,
) -> Result<Option<AttachmentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, message_id, request_id, filename, content_type, size_bytes, sha256 FROM attachment
         WHERE id = $1 AND request_id = $2",
    )
    .bind(attachment_id)
    .bind(request_id)
    .fetch_optional(pool)
    .await
}

/// One stored chunk of an attachment (None after the last).
pub async fn chunk(pool: &PgPool, attachment_id: Uuid, seq: i32) -> Result<Option<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar("SELECT data FROM attachment_chunk WHERE attachment_id = $1 AND seq = $2")
        .bind(attachment_id)
        .bind(seq)
        .fetch_optional(pool)
        .await
}

/// Messages of others after the user's read marker.
pub async fn unread_count(conn: &mut PgConnection, request_id: Uuid, user_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM message m
         WHERE m.request_id = $1 AND m.author_user_id <> $2
           AND m.seq > COALESCE((SELECT read_seq FROM message_read WHERE request_id = $1 AND user_id = $2), 0)",
    )
    .bind(request_id)
    .bind(user_id)
    .fetch_one(conn)
    .await
}

/// The seq of a message of the thread (None: not one of its messages).
pub async fn message_seq(
    conn: &mut PgConnection,
    request_id: Uuid,
    message_id: Uuid,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT seq FROM message WHERE id = $1 AND request_id = $2")
        .bind(message_id)
        .bind(request_id)
        .fetch_optional(conn)
        .await
}

/// The last seq of the thread (0 when empty).
pub async fn last_seq(conn: &mut PgConnection, request_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(max(seq), 0) FROM message WHERE request_id = $1")
        .bind(request_id)
        .fetch_one(conn)
        .await
}

/// Moves a read marker forward only (marking an older message read never un-reads newer ones).
pub async fn mark_read(conn: &mut PgConnection, request_id: Uuid, user_id: Uuid, seq: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO message_read (request_id, user_id, read_seq) VALUES ($1, $2, $3)
         ON CONFLICT (request_id, user_id) DO UPDATE SET read_seq = GREATEST(message_read.read_seq, EXCLUDED.read_seq)",
    )
    .bind(request_id)
    .bind(user_id)
    .bind(seq)
    .execute(conn)
    .await?;
    Ok(())
}
