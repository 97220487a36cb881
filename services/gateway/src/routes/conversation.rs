//! `/v1/requests/{id}/messages` and `/v1/requests/{id}/attachments`: the conversation on a request, between the
//! member's users, the member's referent or the coordinator, and the agents of the provider the request is
//! referred to. The requests service decides who takes part (on its rows); the gateway only refuses roles that
//! never do (operators).
//!
//! Attachments travel as raw bodies, never buffered whole: an upload is `POST .../attachments` with the file as
//! the body, its type in `Content-Type` and its name in `X-Filename` (percent-encoded UTF-8 allowed), the
//! optional text of the message in `?message=`; the gateway forwards the body to the service chunk by chunk
//! as it arrives (gRPC client streaming) and the service refuses it as a whole if its type (checked by its
//! first bytes) or size (10 MiB) is not allowed. A download streams the stored chunks back.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use id77_platform::auth::Role;
use id77_proto::requests::v1 as pb;
use id77_proto::requests::v1::download_attachment_chunk::Part as DownloadPart;
use id77_proto::requests::v1::upload_attachment_chunk::Part as UploadPart;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::common::{created, upstream};
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, P, Q, json_problem, path_id};
use crate::problem::Problem;
use crate::views::timestamp;

/// This module's operations and views in the OpenAPI document (`crate::api_docs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, post, mark_read, upload, download),
    components(schemas(
        Attachment,
        ConversationMessage,
        Thread,
        ReadState,
        NewMessage,
        ReadMarker,
        AttachmentTypeDoc
    )),
    modifiers(&RawBodies)
)]
pub struct Api;

/// What the annotations cannot say: an upload's and a download's content is the raw file (a string of its media
/// type, not JSON), and the read marker's body is optional (absent or empty, never `null`).
struct RawBodies;

fn raw_file(content: &mut utoipa::openapi::Content, media_type: &str) {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    // An empty file is refused (`attachment-empty`): at least one byte.
    content.schema =
        Some(ObjectBuilder::new().schema_type(Type::String).content_media_type(media_type).min_length(Some(1)).into());
}

impl utoipa::Modify for RawBodies {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{Ref, Required};
        let paths = &mut doc.paths.paths;
        if let Some(body) = paths
            .get_mut("/v1/requests/{id}/attachments")
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.request_body.as_mut())
        {
            body.required = Some(Required::True);
            for (media_type, content) in body.content.iter_mut() {
                raw_file(content, media_type);
            }
        }
        if let Some(utoipa::openapi::RefOr::T(ok)) = paths
            .get_mut("/v1/requests/{id}/attachments/{attachment_id}")
            .and_then(|item| item.get.as_mut())
            .and_then(|op| op.responses.responses.get_mut("200"))
        {
            for (media_type, content) in ok.content.iter_mut() {
                raw_file(content, media_type);
            }
        }
        if let Some(body) = paths
            .get_mut("/v1/requests/{id}/messages/read")
            .and_then(|item| item.post.as_mut())
            .and_then(|op| op.request_body.as_mut())
        {
            body.required = Some(Required::False);
            for content in body.content.values_mut() {
                content.schema = Some(Ref::from_schema_name("ReadMarker").into());
            }
        }
    }
}

/// The media type of an attachment, checked against the file's first bytes.
#[derive(utoipa::ToSchema)]
#[schema(as = AttachmentType)]
#[allow(dead_code)]
pub enum AttachmentTypeDoc {
    #[schema(rename = "application/pdf")]
    Pdf,
    #[schema(rename = "image/png")]
    Png,
    #[schema(rename = "image/jpeg")]
    Jpeg,
    #[schema(rename = "application/vnd.oasis.opendocument.text")]
    Odt,
    #[schema(rename = "application/vnd.oasis.opendocument.spreadsheet")]
    Ods,
    #[schema(rename = "application/vnd.openxmlformats-officedocument.wordprocessingml.document")]
    Docx,
    #[schema(rename = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")]
    Xlsx,
    #[schema(rename = "text/plain")]
    Text,
}

/// Longest attachment name, in characters once decoded (the service stores at most as much).
pub const MAX_FILENAME_CHARS: usize = 200;

/// Longest message, in characters (the service checks the same).
pub const MAX_MESSAGE_CHARS: usize = 5_000;
/// Largest attachment, in bytes (10 MiB; the service checks the same).
pub const MAX_ATTACHMENT_BYTES: u64 = 10 * 1024 * 1024;
/// Largest piece forwarded in one gRPC message.
pub const FORWARD_CHUNK_BYTES: usize = 256 * 1024;
/// Header naming an uploaded file.
pub const FILENAME_HEADER: &str = "x-filename";
/// Longest `X-Filename`, in bytes (percent-encoded).
pub const MAX_FILENAME_HEADER_BYTES: usize = 1024;

/// Roles that may take part in a thread (each then only on the requests it may read).
pub const PARTICIPANTS: [Role; 5] =
    [Role::MemberAdmin, Role::MemberUser, Role::ProviderAgent, Role::Referent, Role::Coordinator];

/// A file attached to a message.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Attachment {
    pub id: String,
    #[schema(max_length = 200)]
    pub filename: String,
    /// The type checked against the file's first bytes.
    #[schema(value_type = AttachmentTypeDoc)]
    pub content_type: String,
    #[schema(minimum = 0, maximum = 10485760)]
    pub size_bytes: i64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    /// Where to download it: /v1/requests/{id}/attachments/{attachment_id}.
    pub href: String,
}

/// A message of a request's thread.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConversationMessage {
    pub id: String,
    pub request_id: String,
    pub author_user_id: String,
    /// The role the author wrote as: member_admin, member_user, provider_agent, referent or coordinator.
    pub author_role: String,
    pub author_name: String,
    #[schema(max_length = 5000)]
    pub body: String,
    /// RFC 3339, UTC.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    pub created_at: Option<String>,
    pub attachments: Vec<Attachment>,
}

impl From<pb::ConversationMessage> for ConversationMessage {
    fn from(m: pb::ConversationMessage) -> Self {
        let request_id = m.request_id.clone();
        Self {
            created_at: timestamp(m.created_at.as_ref()),
            attachments: m
                .attachments
                .into_iter()
                .map(|a| Attachment {
                    href: format!("/v1/requests/{request_id}/attachments/{}", a.id),
                    id: a.id,
                    filename: a.filename,
                    content_type: a.content_type,
                    size_bytes: a.size_bytes,
                    sha256: a.sha256,
                })
                .collect(),
            id: m.id,
            request_id: m.request_id,
            author_user_id: m.author_user_id,
            author_role: m.author_role,
            author_name: m.author_name,
            body: m.body,
        }
    }
}

/// A page of a thread, oldest first, with the caller's unread count on the whole thread.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Thread {
    /// Oldest first.
    pub items: Vec<ConversationMessage>,
    /// Pass as `?cursor=` for the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// Messages of others the caller has not marked read, on the whole thread.
    pub unread_count: u32,
}

/// The caller's unread count on the thread.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReadState {
    pub unread_count: u32,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Only messages posted strictly after this instant (RFC 3339 with its offset, e.g.
    /// `2026-12-06T10:00:00Z`); use the `Date` of your last sync's response, or your last sync time.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40, pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$")]
    updated_since: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    cursor: Option<String>,
}

/// The thread of a request.
#[utoipa::path(
    get,
    path = "/v1/requests/{id}/messages",
    tag = "conversation",
    operation_id = "listMessages",
    summary = "The thread of a request (its member's users, the provider it is referred to, its referent, \
        coordinator)",
    description = "Oldest first, with the caller's unread count. A provider that declined, was withdrawn or \
        re-routed away no longer reads the thread (404), like another member's user.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The request's id."), PageParams),
    responses((status = 200, description = "OK", body = Thread)),
    security(("bearerAuth" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    Q(params): Q<PageParams>,
) -> Result<Json<Thread>, Problem> {
    caller.allow(&PARTICIPANTS)?;
    path_id("id", &id)?;
    let mut checks = Checks::new();
    let updated_since = super::requests::updated_since(&mut checks, params.updated_since);
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    checks.finish()?;
    let request = pb::ListMessagesRequest { request_id: id, page_size, page_token, updated_since };
    let response =
        state.conversation().list_messages(caller.grpc(request)).await.map_err(upstream("requests"))?.into_inner();
    Ok(Json(Thread {
        items: response.messages.into_iter().map(ConversationMessage::from).collect(),
        next_cursor: Some(response.next_page_token).filter(|t| !t.is_empty()),
        unread_count: response.unread_count,
    }))
}

/// A text message.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewMessage {
    /// Not blank; no control characters but tabs and line breaks.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 5000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    body: Option<String>,
}

/// Posts a text message.
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/messages",
    tag = "conversation",
    operation_id = "postMessage",
    summary = "Post a message on a request's thread (its member's users, the provider it is referred to, its \
        referent, coordinator)",
    description = "Publishes `id77.requests.message.posted`: the thread's other participants get it on \
        `GET /v1/events` and, if they chose so, by e-mail.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The request's id.")),
    request_body = NewMessage,
    responses((status = 201, description = "Posted.", body = ConversationMessage,
        headers(("Location" = String, description = "/v1/requests/{id}/messages")))),
    security(("bearerAuth" = [])),
)]
pub async fn post(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<NewMessage>, JsonRejection>,
) -> Result<Response, Problem> {
    caller.allow(&PARTICIPANTS)?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let text = checks.required("body", body.body, MAX_MESSAGE_CHARS);
    checks.finish()?;
    let request = pb::PostMessageRequest { request_id: id.clone(), body: text };
    let message =
        state.conversation().post_message(caller.grpc(request)).await.map_err(upstream("requests"))?.into_inner();
    Ok(created(format!("/v1/requests/{id}/messages"), ConversationMessage::from(message)))
}

/// How far the caller has read.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct ReadMarker {
    /// Read up to and including this message; absent: the whole thread.
    #[schema(format = "uuid", max_length = 100)]
    up_to_message_id: Option<String>,
}

/// Marks the thread read, up to a message or entirely (empty body or no `up_to_message_id`).
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/messages/read",
    tag = "conversation",
    operation_id = "markMessagesRead",
    summary = "Move the caller's read marker on a request's thread",
    description = "An empty body marks the whole thread read. A marker never moves back.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The request's id.")),
    request_body(content = Option<ReadMarker>, content_type = "application/json",
        description = "Optional: an empty body marks the whole thread read."),
    responses((status = 200, description = "OK", body = ReadState)),
    security(("bearerAuth" = [])),
)]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Bytes,
) -> Result<Json<ReadState>, Problem> {
    caller.allow(&PARTICIPANTS)?;
    path_id("id", &id)?;
    let marker: ReadMarker = if body.iter().all(u8::is_ascii_whitespace) {
        ReadMarker::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Problem::bad_request("INVALID_BODY", e.to_string()))?
    };
    let mut checks = Checks::new();
    let up_to = checks.uuid_filter("up_to_message_id", marker.up_to_message_id);
    checks.finish()?;
    let request = pb::MarkReadRequest { request_id: id, up_to_message_id: up_to };
    let response =
        state.conversation().mark_read(caller.grpc(request)).await.map_err(upstream("requests"))?.into_inner();
    Ok(Json(ReadState { unread_count: response.unread_count }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// Text of the message that carries the attachment (no control characters but tabs and line breaks).
    #[param(max_length = 5000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    message: Option<String>,
}

/// Decodes `%XX` escapes (UTF-8); `None` when malformed.
pub fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `Content-Disposition: attachment` naming `filename`: an ASCII fallback and the exact UTF-8 name (RFC 6266).
pub fn content_disposition(filename: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The body's bytes as upload chunks of at most [`FORWARD_CHUNK_BYTES`], as they arrive. Past
/// [`MAX_ATTACHMENT_BYTES`], or when the client's body fails, it reports a problem on `abort` and stalls: the
/// caller then drops the gRPC call, which the service sees as cancelled and rolls back.
fn forward(
    body: Body,
    abort: oneshot::Sender<Problem>,
) -> impl Stream<Item = pb::UploadAttachmentChunk> + Send + 'static {
    let data = body.into_data_stream();
    futures::stream::unfold(
        (data, Some(abort), Bytes::new(), 0u64),
        |(mut data, mut abort, mut rest, mut total)| async move {
            loop {
                if !rest.is_empty() {
                    let piece = rest.split_to(rest.len().min(FORWARD_CHUNK_BYTES));
                    let chunk = pb::UploadAttachmentChunk { part: Some(UploadPart::Data(piece.to_vec())) };
                    return Some((chunk, (data, abort, rest, total)));
                }
                let problem = match data.next().await {
                    None => return None,
                    Some(Ok(bytes)) => {
                        total += bytes.len() as u64;
                        if total <= MAX_ATTACHMENT_BYTES {
                            rest = bytes;
                            continue;
                        }
                        too_large()
                    }
                    Some(Err(e)) => Problem::bad_request("UNREADABLE_BODY", format!("the upload failed: {e}")),
                };
                if let Some(abort) = abort.take() {
                    let _ = abort.send(problem);
                }
                std::future::pending::<()>().await;
            }
        },
    )
}

fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "ATTACHMENT_TOO_LARGE",
        "Payload too large",
        format!("attachments must be at most {MAX_ATTACHMENT_BYTES} bytes (10 MiB)"),
    )
}

/// Posts a message with one attachment: the raw body is the file (see the module's documentation).
#[utoipa::path(
    post,
    path = "/v1/requests/{id}/attachments",
    tag = "conversation",
    operation_id = "uploadAttachment",
    summary = "Post a message with one attachment (the raw body is the file)",
    description = "The body is the file itself (not multipart/form-data), streamed to the service as it arrives \
        (never buffered whole). `Content-Type` is the file's type, one of application/pdf, image/png, image/jpeg, \
        application/vnd.oasis.opendocument.text, application/vnd.oasis.opendocument.spreadsheet, \
        application/vnd.openxmlformats-officedocument.wordprocessingml.document, \
        application/vnd.openxmlformats-officedocument.spreadsheetml.sheet, text/plain; it must match the file's \
        first bytes (magic numbers) — a mismatch is 400 `attachment-content-mismatch`, another type 400 \
        `attachment-type-not-allowed`. The file's name is in `X-Filename` (percent-encoded UTF-8, at most 200 \
        characters once decoded). At most 10 MiB (413 `attachment-too-large`, also when `Content-Length` says so \
        before any byte is read). A refused or interrupted upload stores nothing.",
    params(
        ("id" = String, Path, format = "uuid", max_length = 100, description = "The request's id."),
        ("X-Filename" = String, Header, min_length = 1, max_length = 200, pattern = r"^(?:[\x21\x23\x24\x26-\x7E]| |%20|%2[13-9A-Fa-f]|%[3-6][0-9A-Fa-f]|%7[0-9A-Ea-e]|%[Cc]2%[AaBb][0-9A-Fa-f]|%[Cc][3-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Dd][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ee]0%[AaBb][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ee][1-9A-Ca-cEeFf]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ee][Dd]%[89][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ff]0%[9AaBb][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ff][1-3]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ff]4%8[0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f])*(?:[\x21\x23\x24\x26-\x7E]|%2[13-9A-Fa-f]|%[3-6][0-9A-Fa-f]|%7[0-9A-Ea-e]|%[Cc]2%[AaBb][0-9A-Fa-f]|%[Cc][3-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Dd][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ee]0%[AaBb][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ee][1-9A-Ca-cEeFf]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ee][Dd]%[89][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ff]0%[9AaBb][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ff][1-3]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ff]4%8[0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f])(?:[\x21\x23\x24\x26-\x7E]| |%20|%2[13-9A-Fa-f]|%[3-6][0-9A-Fa-f]|%7[0-9A-Ea-e]|%[Cc]2%[AaBb][0-9A-Fa-f]|%[Cc][3-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Dd][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ee]0%[AaBb][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ee][1-9A-Ca-cEeFf]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ee][Dd]%[89][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ff]0%[9AaBb][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ff][1-3]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f]|%[Ff]4%8[0-9A-Fa-f]%[89ABab][0-9A-Fa-f]%[89ABab][0-9A-Fa-f])*$",
            description = "The file's name, at most 200 characters once decoded; percent-encode non-ASCII \
            characters (UTF-8); not blank, no control characters or double quotes (the pattern says it of the \
            percent-encoded form)."),
        UploadParams,
    ),
    request_body(description = "The file (at most 10 MiB).", content(
        (String = "application/pdf"),
        (String = "image/png"),
        (String = "image/jpeg"),
        (String = "application/vnd.oasis.opendocument.text"),
        (String = "application/vnd.oasis.opendocument.spreadsheet"),
        (String = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (String = "text/plain"),
    )),
    responses(
        (status = 201, description = "Posted with its attachment (size and SHA-256 recorded).",
            body = ConversationMessage,
            headers(("Location" = String, description = "/v1/requests/{id}/messages"))),
        (status = 413, description = "`attachment-too-large`: over 10 MiB.", body = crate::api_docs::ProblemDoc,
            content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = [])),
)]
pub async fn upload(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    Q(params): Q<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    caller.allow(&PARTICIPANTS)?;
    path_id("id", &id)?;
    let mut checks = Checks::new();
    let message = checks.optional("message", params.message, MAX_MESSAGE_CHARS);
    let content_type = match headers.get(header::CONTENT_TYPE).map(HeaderValue::to_str) {
        Some(Ok(value)) if !value.trim().is_empty() => value.trim().to_owned(),
        _ => {
            checks.fail("Content-Type", "is required: the file's media type");
            String::new()
        }
    };
    let filename = match headers.get(FILENAME_HEADER).map(HeaderValue::to_str) {
        Some(Ok(raw)) if raw.len() <= MAX_FILENAME_HEADER_BYTES => match percent_decode(raw.trim()) {
            Some(name) if name.trim().is_empty() => {
                checks.fail("X-Filename", "is required: the file's name");
                name
            }
            Some(name) => {
                checks.max_chars("X-Filename", &name, MAX_FILENAME_CHARS);
                name
            }
            None => {
                checks.fail("X-Filename", "must be percent-encoded UTF-8");
                String::new()
            }
        },
        Some(Ok(_)) => {
            checks.fail("X-Filename", format!("must be at most {MAX_FILENAME_HEADER_BYTES} bytes"));
            String::new()
        }
        Some(Err(_)) => {
            checks.fail("X-Filename", "must be visible ASCII (percent-encode other characters)");
            String::new()
        }
        None => {
            checks.fail("X-Filename", "is required: the file's name");
            String::new()
        }
    };
    checks.finish()?;
    let declared_length =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if declared_length.is_some_and(|n| n > MAX_ATTACHMENT_BYTES) {
        return Err(too_large());
    }
    let head = pb::UploadAttachmentChunk {
        part: Some(UploadPart::Header(pb::AttachmentHeader {
            request_id: id.clone(),
            filename,
            content_type,
            body: message,
        })),
    };
    let (abort_tx, abort_rx) = oneshot::channel();
    let chunks = futures::stream::iter([head]).chain(forward(body, abort_tx));
    let mut client = state.conversation_streams();
    let call = client.upload_attachment(caller.grpc(chunks));
    let message = tokio::select! {
        result = call => result.map_err(|status| {
            let problem = upstream("requests")(status);
            if problem.reason == "ATTACHMENT_TOO_LARGE" { too_large() } else { problem }
        })?.into_inner(),
        Ok(problem) = abort_rx => return Err(problem),
    };
    Ok(created(format!("/v1/requests/{id}/messages"), ConversationMessage::from(message)))
}

/// Downloads an attachment, streamed from the stored chunks.
#[utoipa::path(
    get,
    path = "/v1/requests/{id}/attachments/{attachment_id}",
    tag = "conversation",
    operation_id = "downloadAttachment",
    summary = "Download an attachment (its member's users, the provider it is referred to, its referent, \
        coordinator)",
    description = "Streamed from the stored chunks, with `Content-Type`, `Content-Length`, `Content-Disposition: \
        attachment` (the file name) and the SHA-256 as `ETag`.",
    params(
        ("id" = String, Path, format = "uuid", max_length = 100, description = "The request's id."),
        ("attachment_id" = String, Path, format = "uuid", max_length = 100, description = "The attachment's id."),
    ),
    responses((status = 200, description = "The file.",
        headers(
            ("Content-Disposition" = String, description = "`attachment` with the file's name (RFC 6266)."),
            ("ETag" = String, description = "The SHA-256 of the content, quoted."),
            ("Cache-Control" = String, description = "`private, no-store`."),
        ),
        content(
            (String = "application/pdf"),
            (String = "image/png"),
            (String = "image/jpeg"),
            (String = "application/vnd.oasis.opendocument.text"),
            (String = "application/vnd.oasis.opendocument.spreadsheet"),
            (String = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            (String = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (String = "text/plain"),
        ))),
    security(("bearerAuth" = [])),
)]
pub async fn download(
    State(state): State<AppState>,
    caller: Authenticated,
    P((id, attachment_id)): P<(String, String)>,
) -> Result<Response, Problem> {
    caller.allow(&PARTICIPANTS)?;
    path_id("id", &id)?;
    path_id("attachment_id", &attachment_id)?;
    let request = pb::DownloadAttachmentRequest { request_id: id, attachment_id };
    let mut stream = state
        .conversation_streams()
        .download_attachment(caller.grpc(request))
        .await
        .map_err(upstream("requests"))?
        .into_inner();
    let attachment = match stream.message().await.map_err(upstream("requests"))? {
        Some(pb::DownloadAttachmentChunk { part: Some(DownloadPart::Attachment(a)) }) => a,
        _ => return Err(Problem::unavailable("requests sent no attachment description")),
    };
    let bytes = stream.filter_map(|item| async move {
        match item {
            Ok(pb::DownloadAttachmentChunk { part: Some(DownloadPart::Data(data)) }) => Some(Ok(Bytes::from(data))),
            Ok(_) => None,
            Err(status) => Some(Err(status)),
        }
    });
    let mut response = Body::from_stream(bytes).into_response();
    let headers = response.headers_mut();
    let content_type =
        HeaderValue::from_str(&attachment.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(attachment.size_bytes.max(0) as u64));
    if let Ok(value) = HeaderValue::from_str(&content_disposition(&attachment.filename)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", attachment.sha256)) {
        headers.insert(header::ETAG, etag);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_are_percent_decoded_and_encoded_back() {
        assert_eq!(percent_decode("plan%20masse%20%C3%A9t%C3%A9.pdf").as_deref(), Some("plan masse été.pdf"));
        assert_eq!(percent_decode("simple.pdf").as_deref(), Some("simple.pdf"));
        for bad in ["%", "%4", "%zz", "%FF"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
        assert_eq!(
            content_disposition("plan été \"v2\".pdf"),
            "attachment; filename=\"plan _t_ _v2_.pdf\"; filename*=UTF-8''plan%20%C3%A9t%C3%A9%20%22v2%22.pdf"
        );
    }

    #[tokio::test]
    async fn bodies_are_forwarded_in_bounded_pieces_and_cut_past_the_limit() {
        let (tx, mut rx) = oneshot::channel();
        let body = Body::from(vec![7u8; FORWARD_CHUNK_BYTES * 2 + 5]);
        let pieces: Vec<usize> = forward(body, tx)
            .map(|c| match c.part {
                Some(UploadPart::Data(d)) => d.len(),
                _ => 0,
            })
            .collect()
            .await;
        assert_eq!(pieces, [FORWARD_CHUNK_BYTES, FORWARD_CHUNK_BYTES, 5]);
        assert!(rx.try_recv().is_err(), "no problem reported");

        let (tx, rx) = oneshot::channel();
        let too_big = Body::from(vec![0u8; MAX_ATTACHMENT_BYTES as usize + 1]);
        let mut stream = Box::pin(forward(too_big, tx));
        // The stream stalls instead of ending (ending would let the service accept a truncated file).
        let next = tokio::time::timeout(std::time::Duration::from_millis(200), stream.next()).await;
        assert!(next.is_err(), "stalled");
        assert_eq!(
            rx.await.map(|p| (p.status, p.reason)).ok(),
            Some((StatusCode::PAYLOAD_TOO_LARGE, "ATTACHMENT_TOO_LARGE".into()))
        );
    }
}
