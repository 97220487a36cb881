//! Mail notifications (ADR 0012). A status change or a posted message writes, in its own transaction, one row per
//! recipient into `mail_outbox` (unique per event and recipient); [`sender`] drains it over SMTP. Recipients come
//! from the `notification_recipient` read model (membership's accounts, [`UserEvents`]) and their
//! `notification_preference`s.

pub mod domain;
pub mod sender;
pub mod store;

use anyhow::anyhow;
use id77_platform::{Event, EventHandler, HandleError, time};
use id77_proto::membership::v1::UserChanged;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::lifecycle::{Actor, Step};
use crate::store::RequestRow;
use domain::{Notice, StatusMail};

/// Subject of membership's `UserChanged`.
pub const SUBJECT_USER_CHANGED: &str = "id77.membership.user.changed";

/// Queues the mails telling the member's users that `row` moved (`event_id`: its `request.status_changed`).
pub async fn status_changed(
    conn: &mut PgConnection,
    event_id: Uuid,
    row: &RequestRow,
    step: &Step,
    actor: &Actor,
) -> Result<(), sqlx::Error> {
    let candidates = store::candidates(conn, row.member_id, None).await?;
    let notice = Notice::StatusChanged { member_id: row.member_id, actor: actor.user_id() };
    let mail = StatusMail {
        request_subject: &row.subject,
        from: step.from.as_str(),
        to: step.to.as_str(),
        reason: &step.reason,
        provider: step.provider.as_deref(),
    };
    for recipient in domain::recipients(&notice, &candidates) {
        let (subject, body) = domain::status_mail(&recipient.display_name, &mail);
        let queued = store::QueuedMail {
            event_id,
            recipient,
            kind: domain::KIND_STATUS_CHANGED,
            request_id: row.id,
            subject: &subject,
            body: &body,
            link_path: &domain::request_path(row.id),
            at: step.at,
        };
        store::queue(conn, &queued).await?;
    }
    Ok(())
}

/// What a posted message's mails say.
pub struct PostedMessage<'a> {
    pub event_id: Uuid,
    pub request_id: Uuid,
    pub member_id: Uuid,
    /// The provider whose agents take part (None: none).
    pub provider_code: Option<&'a str>,
    pub author: Uuid,
    /// The author writes as one of the member's users.
    pub author_is_member: bool,
    pub author_name: &'a str,
    pub request_subject: &'a str,
    pub excerpt: &'a str,
    pub attachment_count: u32,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Queues the mails about a posted message: to the provider's agents when a member's user wrote, to the member's
/// users otherwise; never to the author.
pub async fn message_posted(conn: &mut PgConnection, m: &PostedMessage<'_>) -> Result<(), sqlx::Error> {
    let candidates = store::candidates(conn, m.member_id, m.provider_code).await?;
    let notice = Notice::MessagePosted {
        member_id: m.member_id,
        provider_code: m.provider_code,
        author: m.author,
        author_is_member: m.author_is_member,
    };
    for recipient in domain::recipients(&notice, &candidates) {
        let (subject, body) = domain::message_mail(
            &recipient.display_name,
            m.request_subject,
            m.author_name,
            m.excerpt,
            m.attachment_count,
        );
        let queued = store::QueuedMail {
            event_id: m.event_id,
            recipient,
            kind: domain::KIND_MESSAGE_POSTED,
            request_id: m.request_id,
            subject: &subject,
            body: &body,
            link_path: &domain::request_path(m.request_id),
            at: m.at,
        };
        store::queue(conn, &queued).await?;
    }
    Ok(())
}

/// Keeps `notification_recipient` from membership's `user.changed` (an older version changes nothing).
pub struct UserEvents;

impl EventHandler for UserEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.subject != SUBJECT_USER_CHANGED {
            return Ok(());
        }
        let e: UserChanged = event.decode()?;
        let user_id = Uuid::parse_str(&e.user_id)
            .map_err(|_| HandleError::Reject(anyhow!("user_id {:?} is not a UUID", e.user_id)))?;
        let member_id = match e.member_id.trim() {
            "" => None,
            raw => Some(
                Uuid::parse_str(raw).map_err(|_| HandleError::Reject(anyhow!("member_id {raw:?} is not a UUID")))?,
            ),
        };
        let recipient = store::Recipient {
            user_id,
            email: e.email.trim().to_owned(),
            display_name: e.display_name.trim().to_owned(),
            role: e.role.clone(),
            member_id,
            provider_code: Some(e.provider_code.trim().to_owned()).filter(|c| !c.is_empty()),
            active: e.active,
            version: e.version,
        };
        let applied = store::upsert_recipient(conn, &recipient).await?;
        tracing::debug!(%user_id, version = e.version, applied, at = ?e.occurred_at.as_ref().and_then(time::from_proto), "recipient");
        Ok(())
    }
}
