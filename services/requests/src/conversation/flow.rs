//! The conversation's use cases, each in its own transaction: who takes part in a thread, posting a message
//! (with its `message.posted` event and its mails), receiving a message with an attachment, and moving a
//! reader's marker.

use id77_platform::auth::{Caller, Role};
use id77_platform::{ServiceError, outbox, time};
use id77_proto::requests::v1::MessagePosted;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use super::domain;
use super::store::{self, AttachmentRow, MessageRow, NewMessage, ThreadFacts};
use crate::access::{self, RequestFacts};

/// A caller allowed on a thread, and the role it writes as.
pub struct Participant {
    pub thread: ThreadFacts,
    pub role: Role,
}

impl Participant {
    /// The provider whose agents currently take part.
    fn provider(&self) -> Option<&str> {
        domain::participating_provider(self.thread.provider_code.as_deref(), &self.thread.status)
    }
}

/// Whether `caller` takes part in the thread of `request_id`: the request's readers (access.rs), except the
/// agents of a provider that left it (declined, withdrawn, re-routed away). Anyone else: not found.
pub async fn participant(
    conn: &mut PgConnection,
    caller: &Caller,
    request_id: Uuid,
) -> Result<Participant, ServiceError> {
    access::may_read(caller).map_err(|d| d.into_error("request", &request_id.to_string()))?;
    let not_found = || ServiceError::not_found("request", &request_id.to_string());
    let thread = store::thread_facts(conn, request_id).await?.ok_or_else(not_found)?;
    let facts = RequestFacts {
        member_id: thread.member_id,
        provider_code: domain::participating_provider(thread.provider_code.as_deref(), &thread.status),
        referent: thread.referent_user_id,
    };
    access::read_request(caller, &facts).map_err(|d| d.into_error("request", &request_id.to_string()))?;
    let role = domain::author_role(caller, &facts);
    Ok(Participant { thread, role })
}

/// Posts a message (`body`: as sent, required) on the thread of `request_id`.
pub async fn post(pool: &PgPool, caller: &Caller, request_id: Uuid, body: &str) -> Result<MessageRow, ServiceError> {
    let body = domain::body(body, true)?;
    let mut tx = pool.begin().await?;
    let who = participant(&mut tx, caller, request_id).await?;
    let row = post_in(&mut tx, caller, &who, Uuid::now_v7(), &body, 0).await?;
    tx.commit().await?;
    Ok(row)
}

/// Inserts a message and its `message.posted` event in the caller's transaction, and queues its mails.
async fn post_in(
    tx: &mut PgConnection,
    caller: &Caller,
    who: &Participant,
    id: Uuid,
    body: &str,
    attachment_count: u32,
) -> Result<MessageRow, ServiceError> {
    let now = time::now();
    let name = domain::author_name(&crate::notify::name_of(tx, caller).await?, who.role);
    let message = NewMessage {
        id,
        request_id: who.thread.id,
        author_user_id: caller.user_id,
        author_role: who.role.as_str(),
        author_name: &name,
        body,
        created_at: now,
    };
    let row = store::insert_message(tx, &message).await?;
    // The author has read what it wrote (and everything before it).
    store::mark_read(tx, who.thread.id, caller.user_id, row.seq).await?;
    let event = MessagePosted {
        message_id: row.id.to_string(),
        request_id: who.thread.id.to_string(),
        member_id: who.thread.member_id.to_string(),
        provider_code: who.provider().unwrap_or_default().to_owned(),
        referent_user_id: who.thread.referent_user_id.map(|r| r.to_string()).unwrap_or_default(),
        author_user_id: caller.user_id.to_string(),
        author_role: who.role.as_str().to_owned(),
        author_name: name.clone(),
        excerpt: domain::excerpt(body),
        attachment_count,
        occurred_at: Some(time::to_proto(now)),
        request_subject: who.thread.subject.clone(),
    };
    let event_id = outbox::enqueue(tx, &event).await?;
    let posted = crate::notify::PostedMessage {
        event_id,
        request_id: who.thread.id,
        member_id: who.thread.member_id,
        provider_code: who.provider(),
        author: caller.user_id,
        author_is_member: who.role.is_member_role(),
        author_name: &name,
        request_subject: &who.thread.subject,
        excerpt: &event.excerpt,
        attachment_count,
        at: now,
    };
    crate::notify::message_posted(tx, &posted).await?;
    tracing::info!(request_id = %who.thread.id, message_id = %row.id, role = who.role.as_str(), "message posted");
    Ok(row)
}

/// Moves the caller's read marker on the thread of `request_id` up to a message (`up_to_message_id`, as sent;
/// empty: the last one). Returns how many messages the caller has not read.
pub async fn mark_read(
    pool: &PgPool,
    caller: &Caller,
    request_id: Uuid,
    up_to_message_id: &str,
) -> Result<i64, ServiceError> {
    let mut tx = pool.begin().await?;
    participant(&mut tx, caller, request_id).await?;
    let seq = match up_to_message_id.trim() {
        "" => store::last_seq(&mut tx, request_id).await?,
        raw => {
            let message_id =
                Uuid::parse_str(raw).map_err(|_| ServiceError::invalid("up_to_message_id", "must be a UUID"))?;
            store::message_seq(&mut tx, request_id, message_id)
                .await?
                .ok_or_else(|| ServiceError::not_found("message", &message_id.to_string()))?
        }
    };
    store::mark_read(&mut tx, request_id, caller.user_id, seq).await?;
    let unread = store::unread_count(&mut tx, request_id, caller.user_id).await?;
    tx.commit().await?;
    Ok(unread)
}

/// What a message with an attachment declares before its content, as sent.
#[derive(Debug, Clone, Copy)]
pub struct NewAttachment<'a> {
    pub request_id: Uuid,
    pub filename: &'a str,
    pub content_type: &'a str,
    /// The message's body (optional with an attachment).
    pub body: &'a str,
}

/// A message with one attachment being received. Everything (content chunks, attachment, message, event) is
/// written in one transaction, committed by [`AttachmentUpload::finish`]: a refused or interrupted upload
/// (dropped) leaves nothing behind.
pub struct AttachmentUpload<'c> {
    tx: Transaction<'static, Postgres>,
    caller: &'c Caller,
    who: Participant,
    body: String,
    content: domain::Upload,
    attachment: AttachmentRow,
    /// Sequence number of the next stored chunk.
    seq: i32,
}

impl<'c> AttachmentUpload<'c> {
    /// Checks what the header declares and that the caller takes part in the thread.
    pub async fn start(pool: &PgPool, caller: &'c Caller, new: NewAttachment<'_>) -> Result<Self, ServiceError> {
        let filename = domain::filename(new.filename)?;
        let body = domain::body(new.body, false)?;
        let content = domain::Upload::new(new.content_type)?;
        let mut tx = pool.begin().await?;
        let who = participant(&mut tx, caller, new.request_id).await?;
        let message_id = Uuid::now_v7();
        let attachment = AttachmentRow {
            id: Uuid::now_v7(),
            message_id,
            request_id: new.request_id,
            filename,
            content_type: content.kind().content_type().to_owned(),
            size_bytes: 0,
            sha256: String::new(),
        };
        store::insert_attachment(&mut tx, &attachment, time::now()).await?;
        Ok(Self { tx, caller, who, body, content, attachment, seq: 0 })
    }

    /// Takes the next bytes of the content; stores the chunks now complete.
    pub async fn push(&mut self, data: &[u8]) -> Result<(), ServiceError> {
        for complete in self.content.push(data)? {
            store::insert_chunk(&mut self.tx, self.attachment.id, self.seq, &complete).await?;
            self.seq += 1;
        }
        Ok(())
    }

    /// Ends the content: checks it, stores its last chunk, posts the message and commits.
    pub async fn finish(self) -> Result<(MessageRow, AttachmentRow), ServiceError> {
        let Self { mut tx, caller, who, body, content, mut attachment, seq } = self;
        let done = content.finish()?;
        if !done.last_chunk.is_empty() {
            store::insert_chunk(&mut tx, attachment.id, seq, &done.last_chunk).await?;
        }
        attachment.size_bytes = i64::try_from(done.size_bytes).map_err(|_| domain::too_large())?;
        attachment.sha256 = done.sha256;
        store::complete_attachment(&mut tx, attachment.id, attachment.size_bytes, &attachment.sha256).await?;
        let row = post_in(&mut tx, caller, &who, attachment.message_id, &body, 1).await?;
        tx.commit().await?;
        tracing::info!(request_id = %attachment.request_id, attachment_id = %attachment.id, size = attachment.size_bytes,
            content_type = attachment.content_type, "attachment stored");
        Ok((row, attachment))
    }
}
