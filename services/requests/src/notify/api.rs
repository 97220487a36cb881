//! The gRPC calls of the in-portal notifications (`ListNotifications`, `MarkNotificationsRead`): the caller's own
//! notifications only, whatever its role.

use id77_platform::auth::Caller;
use id77_platform::{ServiceError, page, time};
use id77_proto::requests::v1 as pb;
use sqlx::PgPool;

use super::inbox::{self, NotificationRow};
use crate::proto_map::{parse_id, timestamp};

fn to_proto(row: NotificationRow) -> pb::Notification {
    pb::Notification {
        id: row.id.to_string(),
        kind: row.kind,
        subject: row.subject,
        body: row.body,
        link_path: row.link_path,
        created_at: Some(time::to_proto(row.created_at)),
        read_at: row.read_at.map(time::to_proto),
    }
}

fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// A page of the caller's notifications, newest first, with its unread count (only the count for `count_only`).
pub async fn list(
    pool: &PgPool,
    caller: &Caller,
    req: pb::ListNotificationsRequest,
) -> Result<pb::ListNotificationsResponse, ServiceError> {
    let unread_count = count(inbox::unread(pool, caller.user_id).await?);
    if req.count_only {
        return Ok(pb::ListNotificationsResponse {
            notifications: vec![],
            next_page_token: String::new(),
            unread_count,
        });
    }
    let since = timestamp("updated_since", req.updated_since.as_ref())?;
    let after = page::decode(&req.page_token)?;
    let limit = page::size(req.page_size);
    let rows = inbox::list(pool, caller.user_id, since, after, limit + 1).await?;
    let (rows, next_page_token) = page::split(rows, limit, |r| page::encode(&(r.created_at, r.id)));
    let notifications = rows.into_iter().map(to_proto).collect();
    Ok(pb::ListNotificationsResponse { notifications, next_page_token, unread_count })
}

/// Marks one of the caller's notifications read (404 when not theirs), or all of them.
pub async fn mark_read(
    pool: &PgPool,
    caller: &Caller,
    req: pb::MarkNotificationsReadRequest,
) -> Result<pb::MarkNotificationsReadResponse, ServiceError> {
    let id = if req.all { None } else { Some(parse_id("id", &req.id)?) };
    if !inbox::mark_read(pool, caller.user_id, id).await? {
        return Err(ServiceError::not_found("notification", &req.id));
    }
    let unread_count = count(inbox::unread(pool, caller.user_id).await?);
    Ok(pb::MarkNotificationsReadResponse { unread_count })
}
