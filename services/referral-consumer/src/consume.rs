//! A run: referrals and notices handed to the [`Handler`] until shutdown or the configured number of answers,
//! each referral answered, deferred or left to an agent, and the durable consumer recreated after a failure.

use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::connect::Connection;
use crate::decision::Decision;
use crate::durable::pull_consumer;
use crate::handler::Handler;
use crate::incoming::{Incoming, PendingReferral, Referrals, nak};
use crate::summary::Summary;

/// Answers referrals until `shutdown` is cancelled or `max` referrals are answered.
pub(crate) async fn run<H: Handler + ?Sized>(
    conn: &Connection,
    handler: &H,
    shutdown: CancellationToken,
) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    // A first failure is a configuration problem (wrong URL, permissions, no stream): report it.
    let mut consumer = pull_consumer(conn).await?;
    let mut backoff = Duration::from_millis(100);
    loop {
        match consume(conn, &consumer, handler, &shutdown, &mut summary).await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "consumer failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                match pull_consumer(conn).await {
                    Ok(c) => consumer = c,
                    Err(error) => tracing::warn!(error = format!("{error:#}"), "consumer not available"),
                }
            }
        }
    }
    tracing::info!(
        provider = %conn.config.provider,
        accepted = summary.accepted,
        declined = summary.declined,
        terminated = summary.terminated,
        "referral consumer stopped"
    );
    Ok(summary)
}

fn done(conn: &Connection, summary: &Summary) -> bool {
    conn.config.max.is_some_and(|max| summary.answered() >= max)
}

async fn consume<H: Handler + ?Sized>(
    conn: &Connection,
    consumer: &PullConsumer,
    handler: &H,
    shutdown: &CancellationToken,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    // With a limit, never hold more referrals than will be answered.
    let batch = conn.config.max.map_or(64, |max| max.saturating_sub(summary.answered()).clamp(1, 64));
    let mut referrals = Referrals::open(conn, consumer, usize::try_from(batch).unwrap_or(64)).await?;
    tracing::info!(provider = %conn.config.provider, durable = %conn.config.durable(), "waiting for referrals");
    loop {
        if done(conn, summary) {
            return Ok(());
        }
        let next = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = referrals.next(summary) => next,
        };
        match next {
            None => anyhow::bail!("the referral stream ended"),
            Some(Incoming::Notice(notice, message)) => {
                if handler.notice(&notice).await {
                    summary.notices += 1;
                    if let Err(error) = message.ack().await {
                        tracing::warn!(%error, "ack of a notice failed");
                    }
                } else {
                    nak(&message, Duration::from_secs(5)).await;
                }
            }
            Some(Incoming::Offered(pending)) => {
                let span = tracing::info_span!(
                    "referral",
                    otel.kind = "consumer",
                    referral_id = %pending.referral.referral_id,
                    request_id = %pending.referral.request_id,
                    offer = %pending.referral.offer_code,
                );
                // Continues the platform's trace (routing's outbox relay set `traceparent`).
                if let Some(headers) = pending.message.headers.as_ref() {
                    id77_bus::telemetry::extract_nats(headers, &span);
                }
                referral(conn, pending, handler, summary).instrument(span).await;
            }
        }
    }
}

/// One referral: the handler's decision, priced for the offer, answered; or deferred (no answer yet), or
/// acknowledged unanswered for an agent (an offer priced on quote and no amount to state).
async fn referral<H: Handler + ?Sized>(
    conn: &Connection,
    pending: PendingReferral<'_>,
    handler: &H,
    summary: &mut Summary,
) {
    tracing::info!(member_id = %pending.referral.member_id, "referral received");
    let decision = handler.referral(&pending.referral).await;
    let priced = decision.clone().and_then(|d| d.for_offer(&pending.referral, conn.config.quote.as_ref()));
    if decision.is_some() && priced.is_none() {
        tracing::warn!(
            "offer priced on quote and no amount to state (--quote-amount-cents): referral left to an agent, who \
             accepts it with its amount in the portal or the API"
        );
        summary.left_to_agent += 1;
        if let Err(error) = pending.message.ack().await {
            tracing::warn!(%error, "ack of a referral left to an agent failed");
        }
        return;
    }
    match priced {
        Some(decision) => match pending.answer(&decision).await {
            Ok(()) => {
                match decision {
                    Decision::Accept | Decision::AcceptQuoted(_) => summary.accepted += 1,
                    Decision::Decline(_) => summary.declined += 1,
                }
                tracing::info!(decision = decision.name(), "referral answered");
            }
            Err(error) => tracing::warn!(error = format!("{error:#}"), "referral left for later"),
        },
        None => {
            summary.deferred += 1;
            pending.later(handler.retry_later()).await;
        }
    }
}
