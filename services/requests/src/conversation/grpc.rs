//! gRPC transport of the conversation (`id77.requests.v1.ConversationService`): maps each call to its flow
//! ([`super::flow`]) or, for reads, to the store, and the rows back to protobuf ([`super::proto_map`]).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use id77_platform::auth::Caller;
use id77_platform::{CallerOf, ServiceError, page};
use id77_proto::requests::v1 as pb;
use id77_proto::requests::v1::conversation_service_server::ConversationService;
use id77_proto::requests::v1::download_attachment_chunk::Part as DownloadPart;
use id77_proto::requests::v1::upload_attachment_chunk::Part as UploadPart;
use sqlx::PgPool;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use super::flow::{self, AttachmentUpload, NewAttachment};
use super::proto_map::{attachment_to_proto, count, message_to_proto};
use super::store;
use id77_platform::validate::uuid;

pub struct ConversationApi {
    pool: PgPool,
}

impl ConversationApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// The next chunk of an upload, `None` at its end.
async fn next_chunk(
    stream: &mut Streaming<pb::UploadAttachmentChunk>,
) -> Result<Option<pb::UploadAttachmentChunk>, ServiceError> {
    stream.message().await.map_err(|s| ServiceError::from_status(&s))
}

impl ConversationApi {
    async fn post(
        &self,
        caller: &Caller,
        req: pb::PostMessageRequest,
    ) -> Result<pb::ConversationMessage, ServiceError> {
        let request_id = uuid("request_id", &req.request_id)?;
        let row = flow::post(&self.pool, caller, request_id, &req.body).await?;
        Ok(message_to_proto(row, &[]))
    }

    async fn list(
        &self,
        caller: &Caller,
        req: pb::ListMessagesRequest,
    ) -> Result<pb::ListMessagesResponse, ServiceError> {
        let request_id = uuid("request_id", &req.request_id)?;
        let mut conn = self.pool.acquire().await?;
        flow::participant(&mut conn, caller, request_id).await?;
        let after: Option<i64> = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let since = crate::proto_map::timestamp("updated_since", req.updated_since.as_ref())?;
        let rows = store::messages(&self.pool, request_id, after, since, limit + 1).await?;
        let (rows, next_page_token) = page::split(rows, limit, |m| page::encode(&m.seq));
        let ids: Vec<Uuid> = rows.iter().map(|m| m.id).collect();
        let attachments = store::attachments_of(&self.pool, &ids).await?;
        let unread = store::unread_count(&mut conn, request_id, caller.user_id).await?;
        Ok(pb::ListMessagesResponse {
            messages: rows.into_iter().map(|m| message_to_proto(m, &attachments)).collect(),
            next_page_token,
            unread_count: count(unread),
        })
    }

    async fn mark_read(&self, caller: &Caller, req: pb::MarkReadRequest) -> Result<pb::MarkReadResponse, ServiceError> {
        let request_id = uuid("request_id", &req.request_id)?;
        let unread = flow::mark_read(&self.pool, caller, request_id, &req.up_to_message_id).await?;
        Ok(pb::MarkReadResponse { unread_count: count(unread) })
    }

    /// Receives a message with one attachment: the header first, then the content ([`AttachmentUpload`]).
    async fn upload(
        &self,
        caller: &Caller,
        mut stream: Streaming<pb::UploadAttachmentChunk>,
    ) -> Result<pb::ConversationMessage, ServiceError> {
        let header = match next_chunk(&mut stream).await? {
            Some(pb::UploadAttachmentChunk { part: Some(UploadPart::Header(header)) }) => header,
            _ => return Err(ServiceError::invalid("header", "the first chunk must be the attachment's header")),
        };
        let new = NewAttachment {
            request_id: uuid("request_id", &header.request_id)?,
            filename: &header.filename,
            content_type: &header.content_type,
            body: &header.body,
        };
        let mut upload = AttachmentUpload::start(&self.pool, caller, new).await?;
        while let Some(chunk) = next_chunk(&mut stream).await? {
            match chunk.part {
                Some(UploadPart::Data(data)) => upload.push(&data).await?,
                Some(UploadPart::Header(_)) => {
                    return Err(ServiceError::invalid("header", "only the first chunk carries the header"));
                }
                None => {}
            }
        }
        let (row, attachment) = upload.finish().await?;
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
            flow::participant(&mut conn, caller, request_id).await?;
        }
        let attachment = store::attachment(&self.pool, request_id, attachment_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("attachment", &attachment_id.to_string()))?;
        let first =
            pb::DownloadAttachmentChunk { part: Some(DownloadPart::Attachment(attachment_to_proto(&attachment))) };
        let chunks = content(self.pool.clone(), attachment_id);
        Ok(Box::pin(futures::stream::once(async move { Ok(first) }).chain(chunks)))
    }
}

/// An attachment's content, one stored chunk read at a time: a download holds at most one chunk in memory.
fn content(
    pool: PgPool,
    attachment_id: Uuid,
) -> impl Stream<Item = Result<pb::DownloadAttachmentChunk, Status>> + Send + 'static {
    futures::stream::unfold(Some(0i32), move |next| {
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
    })
}

type DownloadStream = Pin<Box<dyn Stream<Item = Result<pb::DownloadAttachmentChunk, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl ConversationService for ConversationApi {
    async fn post_message(
        &self,
        request: Request<pb::PostMessageRequest>,
    ) -> Result<Response<pb::ConversationMessage>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.post(&caller, request.into_inner()).await?))
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.list(&caller, request.into_inner()).await?))
    }

    async fn mark_read(&self, request: Request<pb::MarkReadRequest>) -> Result<Response<pb::MarkReadResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(ConversationApi::mark_read(self, &caller, request.into_inner()).await?))
    }

    async fn upload_attachment(
        &self,
        request: Request<Streaming<pb::UploadAttachmentChunk>>,
    ) -> Result<Response<pb::ConversationMessage>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.upload(&caller, request.into_inner()).await?))
    }

    type DownloadAttachmentStream = DownloadStream;

    async fn download_attachment(
        &self,
        request: Request<pb::DownloadAttachmentRequest>,
    ) -> Result<Response<Self::DownloadAttachmentStream>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.download(&caller, request.into_inner()).await?))
    }
}
