//! Idempotent JetStream consumers. Each message is handled inside a database transaction that also records
//! its message id in the `inbox` table; the message is acked only after that transaction commits. A redelivery
//! (lost ack, restart, replay hours later) finds its id in the inbox and has no second effect.
//!
//! Batches: the messages waiting when a lane takes one, or arriving within [`LINGER`] after it (at most
//! [`BATCH_MAX`]), are applied in one transaction, in order, inbox rows and effects together, and acked after its
//! commit. A busy consumer so commits once per batch instead of once per message (docs/benchmarks.md, issue 23);
//! an idle one applies each message [`LINGER`] after it came. If any message of a batch fails, the batch is rolled back and
//! its messages are applied one per transaction, so that one bad message neither holds back nor undoes the others.
//!
//! Failures: a [`HandleError::Retry`] naks with a growing delay until `max_deliver`, then the message goes to
//! the dead-letter subject `id77.deadletter.<durable>` and is terminated; a [`HandleError::Reject`] (a message
//! that can never succeed, e.g. undecodable) goes there at once.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::pull, message::PublishMessage};
use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use id77_proto::events::{Durable, IntegrationEvent};

use crate::Namespace;
use crate::nats::{ensure_stream, pull_is_lost};
use crate::streams::{DEADLETTER, StreamDef};

/// Why a handler did not apply a message.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Transient (database down, a read model not yet fed): try again later.
    #[error("retry: {0:#}")]
    Retry(anyhow::Error),
    /// Can never succeed: dead-letter it now.
    #[error("reject: {0:#}")]
    Reject(anyhow::Error),
}

impl From<sqlx::Error> for HandleError {
    fn from(error: sqlx::Error) -> Self {
        Self::Retry(error.into())
    }
}

/// A message as a handler sees it.
#[derive(Debug, Clone)]
pub struct Event {
    /// Logical subject (the deployment prefix removed).
    pub subject: String,
    /// `Nats-Msg-Id`, or `<stream>:<sequence>` when the publisher set none.
    pub message_id: String,
    /// `Id77-Event-Type`, empty if absent.
    pub event_type: String,
    pub payload: Bytes,
    pub headers: HeaderMap,
    /// Delivery attempt, from 1.
    pub delivered: i64,
}

impl Event {
    /// Decodes the protobuf payload; a payload that does not decode is rejected (dead-lettered).
    pub fn decode<M: prost::Message + Default>(&self) -> Result<M, HandleError> {
        M::decode(self.payload.clone()).map_err(|e| {
            HandleError::Reject(anyhow::anyhow!("undecodable {} on {}: {e}", self.event_type, self.subject))
        })
    }

    /// Whether this is an `E` (it came on `E`'s catalogue subject).
    pub fn is<E: IntegrationEvent>(&self) -> bool {
        self.subject == E::SUBJECT
    }

    /// The event as an `E` if it is one, `None` if it is another event: consumers dispatch by type with
    /// `if let Some(e) = event.decode_as::<E>()? { .. }`. An `E` that does not decode is rejected.
    pub fn decode_as<E: IntegrationEvent>(&self) -> Result<Option<E>, HandleError> {
        if self.is::<E>() { self.decode().map(Some) } else { Ok(None) }
    }

    /// For a subject that carries several types (a provider's hand-off subject): the message as an `M` if its
    /// `Id77-Event-Type` names `M`, `None` otherwise.
    pub fn decode_typed<M: prost::Message + prost::Name + Default>(&self) -> Result<Option<M>, HandleError> {
        if self.event_type == M::full_name() { self.decode().map(Some) } else { Ok(None) }
    }
}

/// Applies one message's effect inside the consumer's transaction. Implementations may write their own
/// tables and enqueue outbox events on `conn`; everything commits together with the inbox record.
pub trait EventHandler: Send + Sync + 'static {
    fn handle(&self, conn: &mut PgConnection, event: &Event) -> impl Future<Output = Result<(), HandleError>> + Send;

    /// The entity whose events must be applied in order (e.g. the request), for a consumer with several
    /// [`ConsumerSpec::lanes`]: events with the same key go to the same lane, one after the other; events of
    /// different keys may be applied at the same time. `None` (the default) keeps every event in one lane, in
    /// the order of the stream.
    fn ordering_key(&self, _event: &Event) -> Option<u64> {
        None
    }

    /// Whether the handler applies a batch itself with [`Self::handle_batch`]. By default (`false`) a batch's
    /// events go one by one through [`Self::handle`], each in its own span.
    const BATCHES: bool = false;

    /// Applies a batch's new events, in order, in the batch's transaction: a handler that sets [`Self::BATCHES`]
    /// reads once for the batch what its events need (docs/benchmarks.md, issue 23). Any error undoes the batch,
    /// whose events are then applied one per transaction with [`Self::handle`], so both must have the same effect.
    fn handle_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&Event],
    ) -> impl Future<Output = Result<(), HandleError>> + Send {
        async move {
            for event in events {
                self.handle(conn, event).await?;
            }
            Ok(())
        }
    }
}

/// An id field of an event that must be a UUID; an event without one can never apply (rejected).
pub fn event_uuid(field: &str, raw: &str) -> Result<uuid::Uuid, HandleError> {
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| {
        HandleError::Reject(anyhow::anyhow!("{field} {:?} is not a UUID", raw.chars().take(64).collect::<String>()))
    })
}

/// A stable 64-bit key for [`EventHandler::ordering_key`] (FNV-1a: the same on every replica and restart).
pub fn key_of(entity: &str) -> u64 {
    entity.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// Where a consumer reads from.
#[derive(Debug, Clone)]
pub struct ConsumerSpec {
    pub stream: StreamDef,
    /// Durable name, shared by all replicas of the consuming service (they split the work).
    pub durable: String,
    /// Logical filter subject.
    pub filter_subject: String,
    pub max_deliver: i64,
    pub ack_wait: Duration,
    /// Events applied at the same time by one replica, each lane in order (see [`EventHandler::ordering_key`]).
    /// One lane applies one event after the other: each waits for the previous one's commit and ack, which caps
    /// a consumer near one event per commit latency (docs/benchmarks.md).
    pub lanes: usize,
}

impl From<Durable> for ConsumerSpec {
    /// The consumer the event catalogue declares ([`id77_proto::events::durables`]).
    fn from(durable: Durable) -> Self {
        Self::new(durable.reads.stream, durable.name, durable.reads.filter)
    }
}

impl ConsumerSpec {
    pub fn new(stream: StreamDef, durable: &str, filter_subject: &str) -> Self {
        Self {
            stream,
            durable: durable.to_owned(),
            filter_subject: filter_subject.to_owned(),
            max_deliver: 10,
            ack_wait: Duration::from_secs(30),
            lanes: 1,
        }
    }

    /// With `lanes` events applied at the same time (at least 1).
    pub fn with_lanes(mut self, lanes: usize) -> Self {
        self.lanes = lanes.max(1);
        self
    }
}

/// What happened to one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Duplicate,
}

/// Runs the consumer until `shutdown`, reconnecting with backoff on errors.
pub async fn run<H: EventHandler>(
    pool: PgPool,
    js: jetstream::Context,
    ns: Namespace,
    spec: ConsumerSpec,
    handler: Arc<H>,
    shutdown: CancellationToken,
) {
    run_for("", pool, js, ns, spec, handler, shutdown).await
}

/// [`run`], naming the service in the metrics.
pub async fn run_for<H: EventHandler>(
    service: &'static str,
    pool: PgPool,
    js: jetstream::Context,
    ns: Namespace,
    spec: ConsumerSpec,
    handler: Arc<H>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        // On shutdown the consumer stops at its next wait; an event being applied gets IN_FLIGHT_GRACE to finish,
        // then is dropped where it is: its transaction rolls back (or committed without the ack), and the
        // message comes back to the next consumer (the inbox drops it if it was applied). Without that bound, a
        // NATS gone makes each ack wait for the client's request timeout, and the stop with it.
        let stopped = async {
            shutdown.cancelled().await;
            tokio::time::sleep(IN_FLIGHT_GRACE).await;
        };
        let outcome = tokio::select! {
            outcome = run_once(service, &pool, &js, &ns, &spec, &handler, &shutdown) => outcome,
            () = stopped => {
                tracing::warn!(durable = %spec.durable, "consumer stopped with an event in flight (it will be redelivered)");
                return;
            }
        };
        match outcome {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(durable = %spec.durable, error = format!("{error:#}"), "consumer failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn run_once<H: EventHandler>(
    service: &'static str,
    pool: &PgPool,
    js: &jetstream::Context,
    ns: &Namespace,
    spec: &ConsumerSpec,
    handler: &Arc<H>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let stream = ensure_stream(js, ns, spec.stream).await?;
    ensure_stream(js, ns, DEADLETTER).await?;
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &spec.durable,
            pull::Config {
                durable_name: Some(spec.durable.clone()),
                filter_subject: ns.subject(&spec.filter_subject),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: spec.ack_wait,
                max_deliver: spec.max_deliver,
                // 0: as many replicas as the stream (ID77_STREAM_REPLICAS), and the server scales the consumer
                // with the stream when the stream's replicas are raised.
                num_replicas: 0,
                ..Default::default()
            },
        )
        .await
        .with_context(|| format!("creating consumer {}", spec.durable))?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(64)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .with_context(|| format!("pulling from {}", spec.durable))?;
    tracing::info!(durable = %spec.durable, filter = %spec.filter_subject, lanes = spec.lanes, "consumer started");
    if spec.lanes <= 1 {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                next = messages.next() => next,
            };
            match next {
                None => anyhow::bail!("message stream of {} ended", spec.durable),
                Some(Err(error)) if pull_is_lost(&error) => return Err(lost_pull(&spec.durable, &error)),
                Some(Err(error)) => {
                    tracing::debug!(durable = %spec.durable, %error, "pull error");
                }
                Some(Ok(message)) => {
                    // What the pull holds after a short wait joins the batch.
                    tokio::time::sleep(LINGER).await;
                    let mut batch = vec![message];
                    while batch.len() < BATCH_MAX {
                        match messages.next().now_or_never() {
                            Some(Some(Ok(more))) => batch.push(more),
                            Some(Some(Err(error))) => tracing::debug!(durable = %spec.durable, %error, "pull error"),
                            Some(None) | None => break,
                        }
                    }
                    deliver(service, pool, js, ns, spec, handler.as_ref(), batch).await
                }
            }
        }
    }
    // Several lanes: a task per lane applies its events in order; the pull loop hands each event to the lane of
    // its key. A full lane holds the pull loop (bounded memory); JetStream's ack wait covers what waits there.
    let mut lanes = Vec::with_capacity(spec.lanes);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..spec.lanes {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<jetstream::Message>(LANE_QUEUE);
        lanes.push(tx);
        let (pool, js, ns, spec, handler) = (pool.clone(), js.clone(), ns.clone(), spec.clone(), handler.clone());
        tasks.spawn(async move {
            while let Some(message) = rx.recv().await {
                tokio::time::sleep(LINGER).await;
                let mut batch = vec![message];
                while batch.len() < BATCH_MAX {
                    match rx.try_recv() {
                        Ok(more) => batch.push(more),
                        Err(_) => break,
                    }
                }
                deliver(service, &pool, &js, &ns, &spec, handler.as_ref(), batch).await;
            }
        });
    }
    let outcome = loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => break Ok(()),
            next = messages.next() => next,
        };
        let message = match next {
            None => break Err(anyhow::anyhow!("message stream of {} ended", spec.durable)),
            Some(Err(error)) if pull_is_lost(&error) => break Err(lost_pull(&spec.durable, &error)),
            Some(Err(error)) => {
                tracing::debug!(durable = %spec.durable, %error, "pull error");
                continue;
            }
            Some(Ok(message)) => message,
        };
        let lane = lane_of(handler.as_ref(), ns, &message, lanes.len());
        if lanes[lane].send(message).await.is_err() {
            break Err(anyhow::anyhow!("lane {lane} of {} stopped", spec.durable));
        }
    };
    // Let the lanes finish what they hold (already pulled: applying it now saves a redelivery), then stop.
    drop(lanes);
    while tasks.join_next().await.is_some() {}
    outcome
}

/// Why a consumer opens its pull again ([`pull_is_lost`]: missed heartbeats, or no responder).
fn lost_pull(durable: &str, error: &pull::MessagesError) -> anyhow::Error {
    anyhow::anyhow!("the pull of {durable} went unanswered ({error}): it is opened again")
}

/// Events a lane may hold waiting, beyond the ones it applies.
const LANE_QUEUE: usize = 32;

/// How long a consumer waits, once a message came, for the ones right behind it: they join its batch and its
/// transaction. Under load it is what makes batches (a commit and the inbox's statement per batch, not per
/// message); idle, it is what it adds to a hop's latency, as the outbox relay's own linger. Measured in
/// docs/benchmarks.md (issue 23, fourth session): 2 ms did best; 5 and 10 ms batched no more.
pub const LINGER: Duration = Duration::from_millis(2);

/// Most messages applied in one transaction.
pub const BATCH_MAX: usize = 64;

/// How long, after shutdown, a consumer or the outbox relay may finish the work in its hands (under the
/// service's [`crate::service::TASKS_TIMEOUT`]).
pub const IN_FLIGHT_GRACE: Duration = Duration::from_millis(1_500);

/// The lane of a message: by its handler's ordering key; lane 0 without one.
fn lane_of<H: EventHandler>(handler: &H, ns: &Namespace, message: &jetstream::Message, lanes: usize) -> usize {
    handler.ordering_key(&event_of(ns, message)).map_or(0, |key| (key % lanes as u64) as usize)
}

/// Samples the durable consumer's lag (`num_pending`, `num_ack_pending`) every `every`, until `shutdown`.
pub async fn sample_lag(
    service: &'static str,
    js: jetstream::Context,
    ns: Namespace,
    spec: ConsumerSpec,
    every: Duration,
    shutdown: CancellationToken,
) {
    let labels = crate::metrics::ConsumerLabels { service: service.to_owned(), durable: spec.durable.clone() };
    let metrics = crate::metrics::global();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let info = async {
            let stream = js.get_stream(ns.stream(spec.stream.name)).await?;
            anyhow::Ok(stream.consumer_info(&spec.durable).await?)
        };
        let info = tokio::select! {
            _ = shutdown.cancelled() => return,
            info = info => info,
        };
        match info {
            Ok(info) => {
                metrics
                    .consumer_pending
                    .get_or_create(&labels)
                    .set(i64::try_from(info.num_pending).unwrap_or(i64::MAX));
                metrics
                    .consumer_ack_pending
                    .get_or_create(&labels)
                    .set(i64::try_from(info.num_ack_pending).unwrap_or(i64::MAX));
            }
            Err(error) => tracing::debug!(durable = %spec.durable, error = format!("{error:#}"), "lag not sampled"),
        }
    }
}

/// The event a message carries, as handlers see it.
fn event_of(ns: &Namespace, message: &jetstream::Message) -> Event {
    let (delivered, fallback_id) = match message.info() {
        Ok(info) => (info.delivered, format!("{}:{}", info.stream, info.stream_sequence)),
        Err(_) => (1, String::new()),
    };
    let headers = message.headers.clone().unwrap_or_default();
    let header = |name: &str| headers.get(name).map(|v| v.as_str().to_owned());
    Event {
        subject: ns.logical(message.subject.as_str()).to_owned(),
        message_id: header("Nats-Msg-Id").filter(|id| !id.is_empty()).unwrap_or(fallback_id),
        event_type: header(id77_proto::events::EVENT_TYPE_HEADER).unwrap_or_default(),
        payload: message.payload.clone(),
        headers: headers.clone(),
        delivered,
    }
}

/// Handles a batch of messages (in one transaction when it can) and acks, naks or dead-letters each.
async fn deliver<H: EventHandler>(
    service: &'static str,
    pool: &PgPool,
    js: &jetstream::Context,
    ns: &Namespace,
    spec: &ConsumerSpec,
    handler: &H,
    batch: Vec<jetstream::Message>,
) {
    let events: Vec<Event> = batch.iter().map(|m| event_of(ns, m)).collect();
    // Each event's span continues its publisher's trace (the `traceparent` header the outbox relay set).
    let spans: Vec<tracing::Span> = events
        .iter()
        .map(|event| {
            let span = tracing::info_span!("event", otel.name = %format!("handle {}", event.subject),
                otel.kind = "consumer", messaging.system = "nats", durable = %spec.durable,
                subject = %event.subject, id = %event.message_id, delivered = event.delivered,
                batch = events.len());
            crate::telemetry::extract_nats(&event.headers, &span);
            span
        })
        .collect();
    let results = apply_batch(pool, &spec.durable, handler, &events, &spans).await;
    let settled =
        batch.iter().zip(&events).zip(results).zip(&spans).map(|(((message, event), result), span)| async move {
            let outcome = settle(js, ns, spec, message, event, result).instrument(span.clone()).await;
            crate::metrics::global().consumer_event(service, &spec.durable, outcome, event.delivered);
        });
    futures::future::join_all(settled).await;
}

/// Acks, naks or dead-letters one message after its batch. Returns the outcome for the metrics.
async fn settle(
    js: &jetstream::Context,
    ns: &Namespace,
    spec: &ConsumerSpec,
    message: &jetstream::Message,
    event: &Event,
    result: Result<Outcome, HandleError>,
) -> &'static str {
    let delivered = event.delivered;
    match result {
        Ok(outcome) => {
            tracing::debug!(?outcome, "event handled");
            // A plain ack, not a double one: async-nats's double ack subscribes to a fresh inbox, publishes and
            // waits for the server's answer, three protocol operations and a round trip per message. An ack lost
            // on the way only brings a redelivery, which the inbox recognises (docs/benchmarks.md, issue 23).
            if let Err(error) = message.ack().await {
                // The effect is committed; a redelivery will be recognised as a duplicate.
                tracing::warn!(%error, "ack failed after commit");
            }
            match outcome {
                Outcome::Applied => "applied",
                Outcome::Duplicate => "duplicate",
            }
        }
        Err(HandleError::Retry(error)) if delivered < spec.max_deliver => {
            let delay = retry_delay(delivered);
            tracing::warn!(error = format!("{error:#}"), delivered, ?delay, "event will be retried");
            if let Err(error) = message.ack_with(AckKind::Nak(Some(delay))).await {
                tracing::warn!(%error, "nak failed");
            }
            "retry"
        }
        Err(error) => {
            tracing::error!(%error, delivered, "event dead-lettered");
            if let Err(e) = dead_letter(js, ns, &spec.durable, event, &error).await {
                // Leave it un-acked: it will come back and be dead-lettered again.
                tracing::error!(error = format!("{e:#}"), "dead-letter publish failed");
                return "retry";
            }
            if let Err(error) = message.ack_with(AckKind::Term).await {
                tracing::warn!(%error, "term failed");
            }
            "dead_letter"
        }
    }
}

/// Applies `events` in order in one transaction; if any fails (or the commit does), rolls it back and applies
/// them one per transaction with [`apply`], so that each gets its own outcome. One result per event, in order.
pub async fn apply_batch<H: EventHandler>(
    pool: &PgPool,
    consumer: &str,
    handler: &H,
    events: &[Event],
    spans: &[tracing::Span],
) -> Vec<Result<Outcome, HandleError>> {
    let span_of = |i: usize| spans.get(i).cloned().unwrap_or_else(tracing::Span::current);
    if events.len() > 1 && events.iter().all(|e| !e.message_id.is_empty()) {
        let together = async {
            let mut tx = pool.begin().await?;
            // Every inbox row in one statement; the messages it did not insert were applied before.
            let ids: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
            let subjects: Vec<&str> = events.iter().map(|e| e.subject.as_str()).collect();
            let mut new: std::collections::HashSet<String> = sqlx::query_scalar(
                "INSERT INTO inbox (consumer, message_id, subject)
                 SELECT $1, id, subject FROM unnest($2::text[], $3::text[]) AS m(id, subject)
                 ON CONFLICT DO NOTHING RETURNING message_id",
            )
            .bind(consumer)
            .bind(&ids)
            .bind(&subjects)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
            let mut outcomes = Vec::with_capacity(events.len());
            let mut fresh = Vec::with_capacity(events.len());
            for (i, event) in events.iter().enumerate() {
                // `remove`: the same message twice in a batch is applied once.
                if new.remove(&event.message_id) {
                    if H::BATCHES {
                        fresh.push(event);
                    } else {
                        handler.handle(&mut tx, event).instrument(span_of(i)).await?;
                    }
                    outcomes.push(Outcome::Applied);
                } else {
                    outcomes.push(Outcome::Duplicate);
                }
            }
            if !fresh.is_empty() {
                handler.handle_batch(&mut tx, &fresh).instrument(span_of(0)).await?;
            }
            tx.commit().await?;
            Ok::<_, HandleError>(outcomes)
        };
        match together.await {
            Ok(outcomes) => return outcomes.into_iter().map(Ok).collect(),
            Err(error) => tracing::debug!(%error, count = events.len(), "batch rolled back; applying one by one"),
        }
    }
    let mut results = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let result = if event.message_id.is_empty() {
            Err(HandleError::Reject(anyhow::anyhow!("message without id or JetStream metadata")))
        } else {
            apply(pool, consumer, handler, event).instrument(span_of(i)).await
        };
        results.push(result);
    }
    results
}

/// Runs the handler and records the message in the inbox, in one transaction.
pub async fn apply<H: EventHandler>(
    pool: &PgPool,
    consumer: &str,
    handler: &H,
    event: &Event,
) -> Result<Outcome, HandleError> {
    let mut tx = pool.begin().await?;
    let outcome = apply_in(&mut tx, consumer, handler, event).await?;
    if outcome == Outcome::Applied {
        tx.commit().await?;
    }
    Ok(outcome)
}

/// Records the message in the inbox and, if it is new, runs the handler, on the caller's transaction.
async fn apply_in<H: EventHandler>(
    conn: &mut PgConnection,
    consumer: &str,
    handler: &H,
    event: &Event,
) -> Result<Outcome, HandleError> {
    let inserted =
        sqlx::query("INSERT INTO inbox (consumer, message_id, subject) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
            .bind(consumer)
            .bind(&event.message_id)
            .bind(&event.subject)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    if inserted == 0 {
        return Ok(Outcome::Duplicate);
    }
    handler.handle(conn, event).await?;
    Ok(Outcome::Applied)
}

/// 200 ms, 400 ms, 800 ms... capped at 30 s.
fn retry_delay(delivered: i64) -> Duration {
    let exp = u32::try_from(delivered.clamp(1, 8) - 1).unwrap_or(0);
    (Duration::from_millis(200) * 2u32.pow(exp)).min(Duration::from_secs(30))
}

async fn dead_letter(
    js: &jetstream::Context,
    ns: &Namespace,
    durable: &str,
    event: &Event,
    error: &HandleError,
) -> anyhow::Result<()> {
    let mut headers = event.headers.clone();
    headers.insert("Id77-Original-Subject", event.subject.as_str());
    headers.insert("Id77-Dead-Letter-Reason", error.to_string().replace(['\r', '\n'], " ").as_str());
    let publish = PublishMessage::build()
        .payload(event.payload.clone())
        .headers(headers)
        .message_id(format!("{durable}:{}", event.message_id));
    js.send_publish(ns.subject(&id77_proto::events::deadletter(durable)), publish).await?.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_spread() {
        assert_eq!(key_of(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(key_of("01a2263d-824a-72aa-9adf-e2b3bd999cae"), key_of("01a2263d-824a-72aa-9adf-e2b3bd999cae"));
        let lanes: std::collections::HashSet<u64> =
            (0..64).map(|_| key_of(&uuid::Uuid::now_v7().to_string()) % 8).collect();
        assert!(lanes.len() >= 6, "64 request ids fell in {} of 8 lanes", lanes.len());
    }

    #[test]
    fn retry_delay_grows_then_caps() {
        assert_eq!(retry_delay(1), Duration::from_millis(200));
        assert_eq!(retry_delay(2), Duration::from_millis(400));
        assert!(retry_delay(100) <= Duration::from_secs(30));
    }
}
