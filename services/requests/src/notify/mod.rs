//! Mail notifications (ADR 0012). A status change or a posted message writes, in its own transaction, one row per
//! recipient into `mail_outbox` (unique per event and recipient); [`sender`] drains it over SMTP. Recipients come
//! from the `notification_recipient` read model (membership's accounts, [`UserEvents`]) and their
//! `notification_preference`s.

pub mod agents;
pub mod api;
pub mod domain;
pub mod inbox;
pub mod mailbag;
pub mod money;
pub mod sender;
pub mod session_mails;
pub mod sessions;
pub mod store;

use anyhow::anyhow;
use id77_platform::auth::Caller;
use id77_platform::{Event, EventHandler, HandleError, time};
use id77_proto::membership::v1::UserChanged;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::lifecycle::{Actor, Step};
use crate::domain::names::ProviderNames;
use crate::store::RequestRow;
use domain::{CancelCause, Notice, QuoteMail, StatusMail};
pub use mailbag::{Mail, Mailbag};

/// Queues the mails telling the member's users that `row` moved (`event_id`: its `request.status_changed`).
pub async fn status_changed(
    conn: &mut PgConnection,
    mails: &mut Mailbag,
    event_id: Uuid,
    row: &RequestRow,
    step: &Step,
    actor: &Actor,
) -> Result<(), sqlx::Error> {
    let notice = Notice::StatusChanged { member_id: row.member_id, actor: actor.user_id() };
    // The name the step's history line used; read only when the step did not know it.
    let names = match &step.provider_name {
        Some(_) => ProviderNames::default(),
        None => provider_names(conn, step.provider.as_deref()).await?,
    };
    let mail = StatusMail {
        request_subject: &row.subject,
        from: step.from.as_str(),
        to: step.to.as_str(),
        reason: &step.reason,
        provider: step.provider_name.as_deref().or_else(|| step.provider.as_deref().and_then(|c| names.known(c))),
    };
    queue_to(conn, mails, event_id, row, &notice, domain::KIND_STATUS_CHANGED, step.at, |name| {
        domain::status_mail(name, &mail)
    })
    .await?;
    Ok(())
}

/// The name of `provider` (a code) as requests knows it: the texts name providers, never code them (issue 21).
async fn provider_names(conn: &mut PgConnection, provider: Option<&str>) -> Result<ProviderNames, sqlx::Error> {
    crate::store::provider_names(conn, provider.as_slice()).await
}

/// The name to show for `caller` (history rows, messages, mails): the display name of its token, else the one
/// membership gave the account (`notification_recipient`, for tokens issued before names were carried), else its
/// e-mail address ([`Caller::display_name`]); empty when none is known.
pub async fn name_of(conn: &mut PgConnection, caller: &Caller) -> Result<String, sqlx::Error> {
    if !caller.name.trim().is_empty() {
        return Ok(caller.name.trim().to_owned());
    }
    if let Some(name) = store::display_name(conn, caller.user_id).await? {
        return Ok(name);
    }
    Ok(caller.display_name().trim().to_owned())
}

/// Queues one mail per recipient of `notice` about `row` in `mails`, keyed by (`event_id`, recipient): a second
/// call for the same event sends nothing more. `write` makes the subject and body for a recipient's display name.
#[allow(clippy::too_many_arguments)]
async fn queue_to(
    conn: &mut PgConnection,
    mails: &mut Mailbag,
    event_id: Uuid,
    row: &RequestRow,
    notice: &Notice<'_>,
    kind: &str,
    at: chrono::DateTime<chrono::Utc>,
    write: impl Fn(&str) -> (String, String),
) -> Result<usize, sqlx::Error> {
    let provider = match notice {
        Notice::ProviderStatus { provider_code, .. } => Some(*provider_code),
        Notice::MessagePosted { provider_code, .. } => *provider_code,
        Notice::StatusChanged { .. } => None,
    };
    let candidates = mails.candidates(conn, row.member_id, provider).await?;
    let recipients = domain::recipients(notice, &candidates);
    for recipient in &recipients {
        mails.push(mail(
            event_id,
            recipient,
            kind,
            Some(row.id),
            write(&recipient.display_name),
            &domain::request_path(row.id),
            at,
        ));
    }
    Ok(recipients.len())
}

/// A mail to `recipient`, (subject, body) as written for them.
fn mail(
    event_id: Uuid,
    recipient: &domain::Candidate,
    kind: &str,
    request_id: Option<Uuid>,
    (subject, body): (String, String),
    link_path: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Mail {
    Mail {
        event_id,
        recipient: recipient.user_id,
        email: recipient.email.clone(),
        kind: kind.to_owned(),
        request_id,
        subject,
        body,
        link_path: link_path.to_owned(),
        at,
    }
}

/// Queues the mails telling the agents of `provider` (which held `row`) that `actor` cancelled it, `cause` saying
/// whether a person did or its quote's refusal or expiry (`event_id`: the cancellation's `request.status_changed`).
#[allow(clippy::too_many_arguments)]
pub async fn cancelled_for_provider(
    conn: &mut PgConnection,
    mails: &mut Mailbag,
    event_id: Uuid,
    row: &RequestRow,
    provider: &str,
    step: &Step,
    actor: &Actor,
    cause: CancelCause<'_>,
) -> Result<usize, sqlx::Error> {
    let notice = Notice::ProviderStatus { provider_code: provider, actor: actor.user_id() };
    queue_to(conn, mails, event_id, row, &notice, domain::KIND_REQUEST_CANCELLED, step.at, |name| {
        domain::cancelled_mail(name, &row.subject, actor.name(), &step.reason, cause)
    })
    .await
}

/// Queues the mails proposing a quote to the member's users (`event_id`: the quote's proposal; `names`: those of
/// at least the quote's provider).
pub async fn quote_proposed(
    conn: &mut PgConnection,
    mails: &mut Mailbag,
    event_id: Uuid,
    row: &RequestRow,
    quote: &QuoteMail<'_>,
    names: &ProviderNames,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<usize, sqlx::Error> {
    let notice = Notice::StatusChanged { member_id: row.member_id, actor: None };
    queue_to(conn, mails, event_id, row, &notice, domain::KIND_QUOTE_PROPOSED, at, |name| {
        domain::quote_proposed_mail(name, quote, names.known(quote.provider))
    })
    .await
}

/// Queues the mails telling the agents of the quote's provider that `actor` accepted it (`event_id`: the
/// quote's acceptance).
#[allow(clippy::too_many_arguments)]
pub async fn quote_accepted(
    conn: &mut PgConnection,
    mails: &mut Mailbag,
    event_id: Uuid,
    row: &RequestRow,
    quote: &QuoteMail<'_>,
    actor: &Actor,
    purchase_order: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<usize, sqlx::Error> {
    let notice = Notice::ProviderStatus { provider_code: quote.provider, actor: actor.user_id() };
    queue_to(conn, mails, event_id, row, &notice, domain::KIND_QUOTE_ACCEPTED, at, |name| {
        domain::quote_accepted_mail(name, quote, actor.name(), purchase_order)
    })
    .await
}

/// Queues the mails telling the member's users (those who want status mails) that an invoice was issued for
/// `row` (`event_id`: the invoice's issue; a second call sends nothing more).
pub async fn invoice_issued(
    conn: &mut PgConnection,
    mails: &mut Mailbag,
    event_id: Uuid,
    row: &RequestRow,
    invoice: &money::InvoiceMail<'_>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<usize, sqlx::Error> {
    let notice = Notice::StatusChanged { member_id: row.member_id, actor: None };
    let names = provider_names(conn, Some(invoice.provider_code)).await?;
    queue_to(conn, mails, event_id, row, &notice, money::KIND_INVOICE_ISSUED, at, |name| {
        money::invoice_issued_mail(name, invoice, names.known(invoice.provider_code))
    })
    .await
}

/// Queues the mails telling the member's users that an invoice of a held training session was issued
/// (`label`: the session, as the invoice's line names it). It bills no request: the mail links to the member's
/// invoices.
pub async fn session_invoice_issued(
    conn: &mut PgConnection,
    event_id: Uuid,
    member_id: Uuid,
    invoice: &money::InvoiceMail<'_>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<usize, sqlx::Error> {
    let notice = Notice::StatusChanged { member_id, actor: None };
    let names = provider_names(conn, Some(invoice.provider_code)).await?;
    let mut mails = Mailbag::default();
    let candidates = mails.candidates(conn, member_id, None).await?;
    let recipients = domain::recipients(&notice, &candidates);
    for recipient in &recipients {
        let text =
            money::session_invoice_issued_mail(&recipient.display_name, invoice, names.known(invoice.provider_code));
        mails.push(mail(event_id, recipient, money::KIND_INVOICE_ISSUED, None, text, money::INVOICES_PATH, at));
    }
    mails.write(conn).await?;
    Ok(recipients.len())
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
    let mut mails = Mailbag::default();
    let candidates = mails.candidates(conn, m.member_id, m.provider_code).await?;
    let notice = Notice::MessagePosted {
        member_id: m.member_id,
        provider_code: m.provider_code,
        author: m.author,
        author_is_member: m.author_is_member,
    };
    let link = domain::request_path(m.request_id);
    for recipient in domain::recipients(&notice, &candidates) {
        let text = domain::message_mail(
            &recipient.display_name,
            m.request_subject,
            m.author_name,
            m.excerpt,
            m.attachment_count,
        );
        mails.push(mail(m.event_id, recipient, domain::KIND_MESSAGE_POSTED, Some(m.request_id), text, &link, m.at));
    }
    mails.write(conn).await?;
    Ok(())
}

/// Keeps `notification_recipient` from membership's `user.changed` (an older version changes nothing).
pub struct UserEvents;

impl EventHandler for UserEvents {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some(e) = event.decode_as::<UserChanged>()? else {
            return Ok(());
        };
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
