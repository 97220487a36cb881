//! Drains `mail_outbox` over SMTP (lettre). Rows are claimed with `FOR UPDATE SKIP LOCKED` and a lease, so every
//! replica runs a sender; a failed try is retried with backoff ([`super::domain::backoff`]) up to
//! [`MAX_ATTEMPTS`], recording `attempts` and `last_error`; a sent mail gets `sent_at`.

use std::time::Duration;

use anyhow::Context;
use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{domain, session_mails, store};

/// Tries per mail before it is left (with its `last_error`) for an operator to look at.
pub const MAX_ATTEMPTS: i32 = 10;
/// Mails claimed per round.
const BATCH: i64 = 16;
/// How long a claimed mail is left to its sender before another one may take it.
const LEASE: Duration = Duration::from_secs(120);
/// Wait between rounds when nothing is due.
const IDLE: Duration = Duration::from_millis(500);
/// How often a busy sender recounts its backlog for the metric.
const BACKLOG_EVERY: Duration = Duration::from_secs(5);

/// Mail settings of the requests service.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `ID77_SMTP_URL`: `smtp://host:port` (plain, for a local relay or sink), `smtp://host:587?tls=required`
    /// (STARTTLS), `smtps://host:465` (TLS), with `user:password@` when the relay wants it. None: mails stay
    /// queued.
    pub smtp_url: Option<String>,
    /// `ID77_MAIL_FROM` (default `ID 77 <ne-pas-repondre@id77.seine-et-marne.fr>`).
    pub from: String,
    /// `ID77_PORTAL_URL`: base of the links in the mails (default `http://127.0.0.1:8090`).
    pub portal_url: String,
}

impl MailConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        use id77_platform::config::env_or;
        let config = Self {
            smtp_url: std::env::var("ID77_SMTP_URL").ok().map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()),
            from: env_or("ID77_MAIL_FROM", "ID 77 <ne-pas-repondre@id77.seine-et-marne.fr>"),
            portal_url: env_or("ID77_PORTAL_URL", "http://127.0.0.1:8090"),
        };
        config.from.parse::<Mailbox>().with_context(|| format!("invalid ID77_MAIL_FROM={:?}", config.from))?;
        anyhow::ensure!(
            config.portal_url.starts_with("http://") || config.portal_url.starts_with("https://"),
            "invalid ID77_PORTAL_URL={:?}: expected http(s)://...",
            config.portal_url
        );
        Ok(config)
    }

    /// No relay, links to a local portal (tests that look at the queued mails only).
    pub fn queue_only() -> Self {
        Self {
            smtp_url: None,
            from: "ID 77 <ne-pas-repondre@id77.seine-et-marne.fr>".to_owned(),
            portal_url: "http://127.0.0.1:8090".to_owned(),
        }
    }
}

/// Sends the queued mails until `shutdown`. Without an SMTP URL, logs once that mails stay queued and only keeps
/// the backlog metric.
pub async fn run(pool: PgPool, config: MailConfig, shutdown: CancellationToken) {
    let metrics = id77_platform::metrics::global();
    let labels = id77_platform::metrics::ServiceLabels { service: "requests".to_owned() };
    let transport = match config.smtp_url.as_deref().map(transport).transpose() {
        Ok(t) => t,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "mail sender not started: mails stay queued");
            None
        }
    };
    let Some(transport) = transport else {
        tracing::warn!("ID77_SMTP_URL is not set: notification mails are queued in mail_outbox and not sent");
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
    let mut backlog_at: Option<tokio::time::Instant> = None;
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
        // The backlog gauge is a count over the table: a busy sender refreshes it now and then, not every round.
        if sent == 0 || backlog_at.is_none_or(|at| at.elapsed() >= BACKLOG_EVERY) {
            if let Ok(backlog) = store::backlog(&pool, MAX_ATTEMPTS).await {
                metrics.mail_backlog.get_or_create(&labels).set(backlog);
            }
            backlog_at = Some(tokio::time::Instant::now());
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
    // The round's sent mails are marked together, in one transaction after the round (a sender that dies before
    // it leaves them claimed: they go again after the lease, as a mail whose marking failed always did).
    let mut sent = Vec::with_capacity(claimed.len());
    for mail in &claimed {
        let outcome = match message(mail, from, portal_url) {
            Ok(message) => transport.send(message).await.map(|_| ()).map_err(|e| format!("{e}")),
            Err(e) => Err(format!("{e:#}")),
        };
        let labels = id77_platform::metrics::OutcomeLabels {
            service: "requests".to_owned(),
            durable: "mail".to_owned(),
            outcome: if outcome.is_ok() { "sent" } else { "failed" }.to_owned(),
        };
        metrics.mails.get_or_create(&labels).inc();
        match outcome {
            Ok(()) => {
                sent.push(mail.id);
                tracing::info!(mail_id = %mail.id, attempts = mail.attempts, "mail sent");
            }
            Err(error) => {
                let retry_in = domain::backoff(mail.attempts);
                tracing::warn!(mail_id = %mail.id, attempts = mail.attempts, %error, ?retry_in, "mail not sent");
                store::mark_failed(pool, mail.id, &error, retry_in).await.context("recording a mail failure")?;
            }
        }
    }
    store::mark_sent(pool, &sent).await.context("marking the mails sent")?;
    Ok(claimed.len())
}

fn message(mail: &store::Claimed, from: &Mailbox, portal_url: &str) -> anyhow::Result<Message> {
    let to: Mailbox = mail.email.parse().with_context(|| format!("invalid recipient address {:?}", mail.email))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .header(ContentType::TEXT_PLAIN)
        .body(if session_mails::is_session_kind(&mail.kind) {
            session_mails::full_body(&mail.body, portal_url, &mail.link_path)
        } else {
            domain::full_body(&mail.body, portal_url, &mail.link_path)
        })
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
