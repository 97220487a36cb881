//! gRPC transport of the conversation (`id77.requests.v1.ConversationService`).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use id77_platform::auth::{Authenticator, Caller, Role};
use id77_platform::{ServiceError, outbox, page, time};
use id77_proto::requests::v1 as pb;
use id77_proto::requests::v1::conversation_service_server::ConversationService;
use id77_proto::requests::v1::download_attachment_chunk::Part as DownloadPart;
use id77_proto::requests::v1::upload_attachment_chunk::Part as UploadPart;
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use super::SUBJECT_MESSAGE_POSTED;
use super::domain;
use super::store::{self, AttachmentRow, MessageRow, NewMessage, ThreadFacts};
use crate::access::{self, RequestFacts};

pub struct ConversationApi {
    pool: PgPool,
    auth: Authenticator,
}

impl ConversationApi {
    pub fn new(pool: PgPool, auth: Authenticator) -> Self {
        Self { pool, auth }
    }
}

fn uuid(field: &str, raw: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw.trim()).map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

fn attachment_to_proto(a: &AttachmentRow) -> pb::Attachment {
    pb::Attachment {
        id: a.id.to_string(),
        filename: a.filename.clone(),
        content_type: a.content_type.clone(),
        size_bytes: a.size_bytes,
        sha256: a.sha256.clone(),
    }
}

fn message_to_proto(m: MessageRow, attachments: &[AttachmentRow]) -> pb::ConversationMessage {
    pb::ConversationMessage {
        id: m.id.to_string(),
        request_id: m.request_id.to_string(),
        author_user_id: m.author_user_id.to_string(),
        author_role: m.author_role,
        author_name: m.author_name,
        body: m.body,
        created_at: Some(time::to_proto(m.created_at)),
        attachments: attachments.iter().filter(|a| a.message_id == m.id).map(attachment_to_proto).collect(),
    }
}

/// A caller allowed on a thread, and the role it writes as.
struct Participant {
    thread: ThreadFacts,
    role: Role,
}

impl Participant {
    /// The provider whose agents currently take part.
    fn provider(&self) -> Option<&str> {
        domain::participating_provider(self.thread.provider_code.as_deref(), &self.thread.status)
    }
}

/// Whether `caller` takes part in the thread of `request_id`: the request's readers (access.rs), except the
/// agents of a provider that left it (declined, withdrawn, re-routed away). Anyone else: not found.
async fn participant(conn: &mut PgConnection, caller: &Caller, request_id: Uuid) -> Result<Participant, ServiceError> {
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

/// Inserts a message and its `message.posted` event in the caller's transaction.
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
    let event = pb::MessagePosted {
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
    let event_id = outbox::enqueue(tx, SUBJECT_MESSAGE_POSTED, &event).await?;
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

impl ConversationApi {
    async fn post(
        &self,
        caller: &Caller,
        req: pb::PostMessageRequest,
    ) -> Result<pb::ConversationMessage, ServiceError> {
        let request_id = uuid("request_id", &req.request_id)?;
        let body = domain::body(&req.body, true)?;
        let mut tx = self.pool.begin().await?;
        let who = participant(&mut tx, caller, request_id).await?;
        let row = post_in(&mut tx, caller, &who, Uuid::now_v7(), &body, 0).await?;
        tx.commit().await?;
        Ok(message_to_proto(row, &[]))
    }

    async fn list(
        &self,
        caller: &Caller,
        req: pb::ListMessagesRequest,
    ) -> Result<pb::ListMessagesResponse, ServiceError> {
        let request_id = uuid("request_id", &req.request_id)?;
        let mut conn = self.pool.acquire().await?;
        participant(&mut conn, caller, request_id).await?;
        let after: Option<i64> = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let rows = store::messages(&self.pool, request_id, after, limit + 1).await?;
        let (rows, next_page_token) = page::split(rows, limit, |m| page::encode(&m.seq));
        let ids: Vec<Uuid> = rows.iter().map(|m| m.id).collect();
        let attachments = store::attachments_of(&self.pool, &ids).await?;
        let unread = store::unread_count(&mut conn, request_id, caller.user_id).await?;
        Ok(pb::ListMessagesResponse {
            messages: rows.into_iter().map(|m| message_to_proto(m, &attachments)).collect(),
            next_page_token,
            unread_count: u32::try_from(unread).unwrap_or(u32::MAX),
        })
    }

    async fn mark_read(&self, caller: &Caller, req: pb::MarkReadRequest) -> Result<pb::MarkReadResponse, ServiceError> {
        let request_id = uuid("request_id", &req.request_id)?;
        let mut tx = self.pool.begin().await?;
        participant(&mut tx, caller, request_id).await?;
        let seq = match req.up_to_message_id.trim() {
            "" => store::last_seq(&mut tx, request_id).await?,
            raw => {
                let message_id = uuid("up_to_message_id", raw)?;
                store::message_seq(&mut tx, request_id, message_id)
                    .await?
                    .ok_or_else(|| ServiceError::not_found("message", &message_id.to_string()))?
            }
        };
        store::mark_read(&mut tx, request_id, caller.user_id, seq).await?;
        let unread = store::unread_count(&mut tx, request_id, caller.user_id).await?;
        tx.commit().await?;
        Ok(pb::MarkReadResponse { unread_count: u32::try_from(unread).unwrap_or(u32::MAX) })
    }

    /// Receives a message with one attachment. Everything (content chunks, attachment, message, event) is
    /// written in one transaction, so a refused or interrupted upload leaves nothing behind.
    async fn upload(
        &self,
        caller: &Caller,
        mut stream: Streaming<pb::UploadAttachmentChunk>,
    ) -> Result<pb::ConversationMessage, ServiceError> {
        let received =
            |r: Result<Option<pb::UploadAttachmentChunk>, Status>| r.map_err(|s| ServiceError::from_status(&s));
        let header = match received(stream.message().await)? {
            Some(pb::UploadAttachmentChunk { part: Some(UploadPart::Header(header)) }) => header,
            _ => return Err(ServiceError::invalid("header", "the first chunk must be the attachment's header")),
        };
        let request_id = uuid("request_id", &header.request_id)?;
        let filename = domain::filename(&header.filename)?;
        let body = domain::body(&header.body, false)?;
        let mut upload = domain::Upload::new(&header.content_type)?;
        let mut tx = self.pool.begin().await?;
        let who = participant(&mut tx, caller, request_id).await?;
        let message_id = Uuid::now_v7();
        let mut attachment = AttachmentRow {
            id: Uuid::now_v7(),
            message_id,
            request_id,
            filename,
            content_type: upload.kind().content_type().to_owned(),
            size_bytes: 0,
            sha256: String::new(),
        };
        store::insert_attachment(&mut tx, &attachment, time::now()).await?;
        let mut seq = 0i32;
        while let Some(chunk) = received(stream.message().await)? {
            match chunk.part {
                Some(UploadPart::Data(data)) => {
                    for complete in upload.push(&data)? {
                        store::insert_chunk(&mut tx, attachment.id, seq, &complete).await?;
                        seq += 1;
                    }
                }
                Some(UploadPart::Header(_)) => {
                    return Err(ServiceError::invalid("header", "only the first chunk carries the header"));
                }
                None => {}
            }
        }
        let done = upload.finish()?;
        if !done.last_chunk.is_empty() {
            store::insert_chunk(&mut tx, attachment.id, seq, &done.last_chunk).await?;
        }
        attachment.size_bytes = i64::try_from(done.size_bytes).map_err(|_| domain::too_large())?;
        attachment.sha256 = done.sha256;
        store::complete_attachment(&mut tx, attachment.id, attachment.size_bytes, &attachment.sha256).await?;
        let row = post_in(&mut tx, caller, &who, message_id, &body, 1).await?;
        tx.commit().await?;
        tracing::info!(%request_id, attachment_id = %attachment.id, size = attachment.size_bytes,
            content_type = attachment.content_type, "attachment stored");
        Ok(message_to_proto(row, std::slice::from_ref(&attachment)))
    }

    async fn download(
        &self,
        caller: &Caller,
        req: pb::DownloadAttachmentRequest,
    ) -> Result<DownloadStream, ServiceError> {
        let request_id = uuid("request_id", &req.request_id)?;
        let attachment_id = uuid("attachment_id", &req.attachment_id)?;
        {
            let mut conn = self.pool.acquire().await?;
            participant(&mut conn, caller, request_id).await?;
        }
        let attachment = store::attachment(&self.pool, request_id, attachment_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("attachment", &attachment_id.to_string()))?;
        let first =
            pb::DownloadAttachmentChunk { part: Some(DownloadPart::Attachment(attachment_to_proto(&attachment))) };
        let pool = self.pool.clone();
        // One chunk read at a time: a download holds at most one chunk in memory.
        let chunks = futures::stream::unfold(Some(0i32), move |next| {
            let pool = pool.clone();
            async move {
                let seq = next?;
                match store::chunk(&pool, attachment_id, seq).await {
                    Ok(Some(data)) => {
                        Some((Ok(pb::DownloadAttachmentChunk { part: Some(DownloadPart::Data(data)) }), Some(seq + 1)))
                    }
                    Ok(None) => None,
                    Err(e) => Some((Err(Status::from(ServiceError::from(e))), None)),
                }
            }
        });
        Ok(Box::pin(futures::stream::once(async move { Ok(first) }).chain(chunks)))
    }
}

type DownloadStream = Pin<Box<dyn Stream<Item = Result<pb::DownloadAttachmentChunk, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ConversationService for ConversationApi {
    async fn post_message(
        &self,
        request: Request<pb::PostMessageRequest>,
    ) -> Result<Response<pb::ConversationMessage>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.post(&caller, request.into_inner()).await?))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.list(&caller, request.into_inner()).await?))
    }

    async fn mark_read(&self, request: Request<pb::MarkReadRequest>) -> Result<Response<pb::MarkReadResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(ConversationApi::mark_read(self, &caller, request.into_inner()).await?))
    }

    async fn upload_attachment(
        &self,
        request: Request<Streaming<pb::UploadAttachmentChunk>>,
    ) -> Result<Response<pb::ConversationMessage>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.upload(&caller, request.into_inner()).await?))
    }

    type DownloadAttachmentStream = DownloadStream;

    async fn download_attachment(
        &self,
        request: Request<pb::DownloadAttachmentRequest>,
    ) -> Result<Response<Self::DownloadAttachmentStream>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.download(&caller, request.into_inner()).await?))
    }
}
