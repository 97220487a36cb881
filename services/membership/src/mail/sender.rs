//! Drains membership's `mail_outbox` over SMTP (lettre). Rows are claimed with `FOR UPDATE SKIP LOCKED` and a lease, so every
//! replica runs a sender; a failed try is retried with backoff ([`super::backoff`]) up to
//! [`MAX_ATTEMPTS`], recording `attempts` and `last_error`; a sent mail gets `sent_at`.

use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{MailConfig, full_body, store};

/// Tries per mail before it is left (with its `last_error`) for an operator to look at.
pub const MAX_ATTEMPTS: i32 = 10;
/// Mails claimed per round.
const BATCH: i64 = 16;
/// How long a claimed mail is left to its sender before another one may take it.
const LEASE: Duration = Duration::from_secs(120);
/// Wait between rounds when nothing is due.
const IDLE: Duration = Duration::from_millis(500);

/// Sends the queued mails until `shutdown`. Without an SMTP URL, logs once that mails stay queued and only keeps
/// the backlog metric.
pub async fn run(pool: PgPool, config: MailConfig, shutdown: CancellationToken) {
    let metrics = id77_platform::metrics::global();
    let labels = id77_platform::metrics::ServiceLabels { service: "membership".to_owned() };
    let transport = match config.smtp_url.as_deref().map(transport).transpose() {
        Ok(t) => t,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "mail sender not started: mails stay queued");
            None
        }
    };
    let Some(transport) = transport else {
        tracing::warn!(
            "ID77_SMTP_URL is not set: mails (invitations, password resets) are queued in mail_outbox and not sent"
        );
        while !shutdown.is_cancelled() {
            if let Ok(backlog) = store::backlog(&pool, MAX_ATTEMPTS).await {
                metrics.mail_backlog.get_or_create(&labels).set(backlog);
            }
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(Duration::from_secs(15)) => {}
            }
        }
        return;
    };
    let from: Mailbox = match config.from.parse() {
        Ok(from) => from,
        Err(error) => {
            tracing::error!(%error, from = %config.from, "invalid sender address: mails stay queued");
            return;
        }
    };
    tracing::info!(portal = %config.portal_url, "mail sender started");
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        let sent = match round(&pool, &transport, &from, &config.portal_url).await {
            Ok(n) => {
                failures = 0;
                n
            }
            Err(error) => {
                failures = failures.saturating_add(1);
                tracing::warn!(error = format!("{error:#}"), "mail round failed");
                0
            }
        };
        if let Ok(backlog) = store::backlog(&pool, MAX_ATTEMPTS).await {
            metrics.mail_backlog.get_or_create(&labels).set(backlog);
        }
        if sent == 0 {
            let wait = IDLE * 2u32.pow(failures.min(5));
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

fn transport(url: &str) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .with_context(|| format!("invalid ID77_SMTP_URL {:?}", redact(url)))?
        .timeout(Some(Duration::from_secs(30)))
        .build())
}

/// The URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***@{}", &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Sends the due mails of one claim; returns how many were tried.
async fn round(
    pool: &PgPool,
    transport: &AsyncSmtpTransport<Tokio1Executor>,
    from: &Mailbox,
    portal_url: &str,
) -> anyhow::Result<usize> {
    let metrics = id77_platform::metrics::global();
    let claimed = store::claim(pool, BATCH, MAX_ATTEMPTS, LEASE).await.context("claiming mails")?;
    for mail in &claimed {
        let outcome = match message(mail, from, portal_url) {
            Ok(message) => transport.send(message).await.map(|_| ()).map_err(|e| format!("{e}")),
            Err(e) => Err(format!("{e:#}")),
        };
        let labels = id77_platform::metrics::OutcomeLabels {
            service: "membership".to_owned(),
            durable: "mail".to_owned(),
            outcome: if outcome.is_ok() { "sent" } else { "failed" }.to_owned(),
        };
        metrics.mails.get_or_create(&labels).inc();
        match outcome {
            Ok(()) => {
                store::mark_sent(pool, mail.id).await.context("marking a mail sent")?;
                tracing::info!(mail_id = %mail.id, attempts = mail.attempts, "mail sent");
            }
            Err(error) => {
                let retry_in = super::backoff(mail.attempts);
                tracing::warn!(mail_id = %mail.id, attempts = mail.attempts, %error, ?retry_in, "mail not sent");
                store::mark_failed(pool, mail.id, &error, retry_in).await.context("recording a mail failure")?;
            }
        }
    }
    Ok(claimed.len())
}

fn message(mail: &store::Claimed, from: &Mailbox, portal_url: &str) -> anyhow::Result<Message> {
    let to: Mailbox = mail.email.parse().with_context(|| format!("invalid recipient address {:?}", mail.email))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(full_body(&mail.body, portal_url, &mail.link_path))
        .context("building the mail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_the_logs() {
        assert_eq!(
            redact("smtp://user:secret@relay.example.fr:587?tls=required"),
            "smtp://***@relay.example.fr:587?tls=required"
        );
        assert_eq!(redact("smtp://127.0.0.1:2525"), "smtp://127.0.0.1:2525");
    }

    #[test]
    fn smtp_urls_are_checked() {
        assert!(transport("smtp://127.0.0.1:2525").is_ok());
        assert!(transport("smtps://relay.example.fr:465").is_ok());
        assert!(transport("http://relay.example.fr").is_err());
    }
}
