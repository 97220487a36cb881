//! `/v1/notifications`: the caller's own notifications (each mail notice it was sent, ADR 0012 and issue 21),
//! newest first, with its unread count; marking one or all read. Any signed-in user, its own only.

use axum::Json;
use axum::extract::State;
use id77_proto::requests::v1 as pb;
use serde::{Deserialize, Serialize};

use super::common::upstream;
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, P, Q, path_id};
use crate::problem::Problem;
use crate::views::timestamp;

/// This module's operations and views in the OpenAPI document (`crate::api_docs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, mark_read, mark_all_read), components(schemas(Notification, NotificationPage, UnreadCount)))]
pub struct Api;

/// A notice the caller was sent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Notification {
    #[schema(format = "uuid")]
    pub id: String,
    /// `status_changed`, `message_posted`, `quote_proposed`, `quote_accepted`, `request_cancelled`,
    /// `referral_offered`, `referral_reminder`, `referral_escalated`, `member_applied`…
    pub kind: String,
    pub subject: String,
    /// Plain text (French).
    pub body: String,
    /// The portal page it is about (e.g. `/demandes/{id}`).
    pub link_path: String,
    #[schema(format = "date-time")]
    pub created_at: Option<String>,
    /// Null: unread.
    #[schema(format = "date-time", required = true)]
    pub read_at: Option<String>,
}

impl From<pb::Notification> for Notification {
    fn from(n: pb::Notification) -> Self {
        Self {
            id: n.id,
            kind: n.kind,
            subject: n.subject,
            body: n.body,
            link_path: n.link_path,
            created_at: timestamp(n.created_at.as_ref()),
            read_at: timestamp(n.read_at.as_ref()),
        }
    }
}

/// A page of the caller's notifications, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Pass as `?cursor=` for the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
    /// All the caller's unread notifications (not only this page's).
    pub unread_count: u32,
}

/// The caller's unread count.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnreadCount {
    pub unread_count: u32,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1 to 100 (default 20); `0`: only the unread count (no item).
    #[param(value_type = Option<u32>, minimum = 0, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    cursor: Option<String>,
    /// Only those created strictly after this instant: an RFC 3339 time with its offset.
    #[param(value_type = Option<String>, max_length = 40, pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$")]
    updated_since: Option<String>,
}

/// The caller's notifications.
#[utoipa::path(
    get,
    path = "/v1/notifications",
    tag = "auth",
    operation_id = "listNotifications",
    summary = "The caller's own notifications, newest first (any authenticated caller)",
    description = "One per mail notice the caller was sent (a kind it turned off in its preferences sends none), \
        with the unread count of all of them. `limit=0` answers only the count (the portal's badge).",
    params(ListParams),
    responses((status = 200, description = "OK", body = NotificationPage)),
    security(("bearerAuth" = [])),
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<ListParams>,
) -> Result<Json<NotificationPage>, Problem> {
    let count_only = params.limit.as_deref().map(str::trim) == Some("0");
    let mut checks = Checks::new();
    let limit = if count_only { None } else { params.limit };
    let (page_size, page_token) = checks.page(limit.as_deref(), params.cursor);
    let since = super::requests::updated_since(&mut checks, params.updated_since);
    checks.finish()?;
    let request = pb::ListNotificationsRequest { page_size, page_token, updated_since: since, count_only };
    let response =
        state.requests().list_notifications(caller.grpc(request)).await.map_err(upstream("requests"))?.into_inner();
    Ok(Json(NotificationPage {
        items: response.notifications.into_iter().map(Notification::from).collect(),
        next_cursor: Some(response.next_page_token).filter(|t| !t.is_empty()),
        unread_count: response.unread_count,
    }))
}

/// Marks one of the caller's notifications read.
#[utoipa::path(
    post,
    path = "/v1/notifications/{id}/read",
    tag = "auth",
    operation_id = "markNotificationRead",
    summary = "Mark one of the caller's notifications read (any authenticated caller)",
    description = "Idempotent. Someone else's notification is 404, like an unknown one.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The notification's id.")),
    responses((status = 200, description = "OK", body = UnreadCount)),
    security(("bearerAuth" = [])),
)]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Json<UnreadCount>, Problem> {
    path_id("id", &id)?;
    let request = pb::MarkNotificationsReadRequest { id, all: false };
    let response = state
        .requests()
        .mark_notifications_read(caller.grpc(request))
        .await
        .map_err(upstream("requests"))?
        .into_inner();
    Ok(Json(UnreadCount { unread_count: response.unread_count }))
}

/// Marks all the caller's notifications read.
#[utoipa::path(
    post,
    path = "/v1/notifications/read-all",
    tag = "auth",
    operation_id = "markAllNotificationsRead",
    summary = "Mark all the caller's notifications read (any authenticated caller)",
    responses((status = 200, description = "OK", body = UnreadCount)),
    security(("bearerAuth" = [])),
)]
pub async fn mark_all_read(State(state): State<AppState>, caller: Authenticated) -> Result<Json<UnreadCount>, Problem> {
    let request = pb::MarkNotificationsReadRequest { id: String::new(), all: true };
    let response = state
        .requests()
        .mark_notifications_read(caller.grpc(request))
        .await
        .map_err(upstream("requests"))?
        .into_inner();
    Ok(Json(UnreadCount { unread_count: response.unread_count }))
}
