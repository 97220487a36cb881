//! Transactional outbox. A service writes its event with [`enqueue`] in the transaction that changes its
//! state; the [`Relay`] publishes pending rows to JetStream in order, with `Nats-Msg-Id` set to the row id,
//! waits for each ack, then marks the rows published. It wakes on `LISTEN outbox` and also polls, so rows
//! committed while no relay listened (a crash, a restart) are published too.
//!
//! Several relays may run on one database (one per replica): a transaction-scoped advisory lock lets one of
//! them publish at a time, which keeps publication order. A relay that dies after publishing but before
//! marking leaves the rows pending; the next relay publishes them again with the same message id, which
//! JetStream drops as duplicates inside its window, and consumers drop through their inbox after it.
//!
//! Traces: [`enqueue`] stores the current span's W3C `traceparent` in the row (`trace_context`); the relay
//! publishes each such row inside an `outbox publish` span, child of it, and sends that span's context as the
//! message's `traceparent` header.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use futures::FutureExt;
use id77_proto::events::IntegrationEvent;
use sqlx::postgres::PgArguments;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Postgres, Row};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::Namespace;

/// Channel notified on every enqueue (a macro, so that [`NOTIFY_SQL`] is built from it).
macro_rules! channel {
    () => {
        "id77_outbox"
    };
}
const CHANNEL: &str = channel!();
/// Most notifications taken at once before a pass (more keep for the next one).
const MAX_DRAINED: usize = 4096;
/// Advisory lock key held by the relay that is publishing (per database).
const RELAY_LOCK: i64 = 0x1d77_0a7b_0001;

/// Writes an integration event to the outbox inside the caller's transaction, on its catalogue subject
/// ([`IntegrationEvent::SUBJECT`]). Returns the event id (the message id). The event type is the message's
/// protobuf name, e.g. `id77.requests.v1.RequestSubmitted`.
pub async fn enqueue<E: IntegrationEvent>(conn: &mut PgConnection, event: &E) -> Result<Uuid, sqlx::Error> {
    let mut events = Outgoing::new();
    let id = events.event(event);
    events.write(conn).await?;
    Ok(id)
}

/// Several events written in one statement (issue 23: a round trip per event cost as much PostgreSQL time as the
/// row): [`Outgoing::write`] on its own, or folded by a flow into the statement of the change they announce, with
/// [`Outgoing::insert_sql`] as one of its data-modifying CTEs, its parameters bound by [`BindEvents::bind_events`]
/// and [`NOTIFY_SQL`] in its final `SELECT`. Rows keep the order they were added in.
#[derive(Debug, Default)]
pub struct Outgoing {
    ids: Vec<Uuid>,
    subjects: Vec<String>,
    event_types: Vec<String>,
    payloads: Vec<Vec<u8>>,
}

/// Wakes the relays when the transaction commits: an expression for a statement's final `SELECT` (text, so that a
/// row holding it decodes like any other).
pub const NOTIFY_SQL: &str = concat!("pg_notify('", channel!(), "', '')::text");

impl Outgoing {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an integration event on its catalogue subject; returns its id (the message id).
    pub fn event<E: IntegrationEvent>(&mut self, event: &E) -> Uuid {
        self.push(E::SUBJECT.to_owned(), event)
    }

    /// Adds a message for one provider, on that provider's subject ([`id77_proto::events::provider::offered`]; its type travels in `Id77-Event-Type`).
    pub fn for_provider<M: prost::Message + prost::Name>(&mut self, provider_code: &str, message: &M) -> Uuid {
        self.push(id77_proto::events::provider::offered(provider_code), message)
    }

    fn push<M: prost::Message + prost::Name>(&mut self, subject: String, message: &M) -> Uuid {
        let id = Uuid::now_v7();
        self.ids.push(id);
        self.subjects.push(subject);
        self.event_types.push(M::full_name());
        self.payloads.push(message.encode_to_vec());
        id
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Adds `other`'s rows after these, in their order (a batch gathering the events of its steps).
    pub fn extend(&mut self, other: Outgoing) {
        self.ids.extend(other.ids);
        self.subjects.extend(other.subjects);
        self.event_types.extend(other.event_types);
        self.payloads.extend(other.payloads);
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// `INSERT INTO outbox …` of these rows, reading its five parameters from `$first` on
    /// ([`BindEvents::bind_events`]), for a flow's own statement (`WITH …, events AS (<this>) SELECT …, <NOTIFY_SQL>`).
    /// `only_if`: a condition the rows are written under (e.g. `EXISTS (SELECT 1 FROM written)`), or `"true"`.
    pub fn insert_sql(first: usize, only_if: &str) -> String {
        let [ids, subjects, types, payloads, trace] = [first, first + 1, first + 2, first + 3, first + 4];
        format!(
            "INSERT INTO outbox (id, subject, event_type, payload, trace_context)
             SELECT e.id, e.subject, e.event_type, e.payload, ${trace}::text
             FROM unnest(${ids}::uuid[], ${subjects}::text[], ${types}::text[], ${payloads}::bytea[])
                  WITH ORDINALITY AS e(id, subject, event_type, payload, n)
             WHERE {only_if}
             ORDER BY e.n"
        )
    }

    /// Writes the rows and wakes the relay, in one statement in the caller's transaction. Nothing when empty.
    pub async fn write(self, conn: &mut PgConnection) -> Result<(), sqlx::Error> {
        if self.is_empty() {
            return Ok(());
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "WITH written AS ({}) SELECT {NOTIFY_SQL}",
            Self::insert_sql(1, "true")
        )))
        .bind_events(self)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// Binds the five parameters of [`Outgoing::insert_sql`] (ids, subjects, event types, payloads, then the current
/// span's trace context shared by the rows), next in the query's order.
pub trait BindEvents: Sized {
    fn bind_events(self, events: Outgoing) -> Self;
}

/// The binds of [`BindEvents::bind_events`], the same on each kind of query.
macro_rules! bind_all {
    ($query:expr, $events:expr) => {
        $query
            .bind($events.ids)
            .bind($events.subjects)
            .bind($events.event_types)
            .bind($events.payloads)
            .bind(crate::telemetry::current_traceparent())
    };
}

impl<'q> BindEvents for sqlx::query::Query<'q, Postgres, PgArguments> {
    fn bind_events(self, events: Outgoing) -> Self {
        bind_all!(self, events)
    }
}

impl<'q, O> BindEvents for sqlx::query::QueryAs<'q, Postgres, O, PgArguments> {
    fn bind_events(self, events: Outgoing) -> Self {
        bind_all!(self, events)
    }
}

impl<'q, O> BindEvents for sqlx::query::QueryScalar<'q, Postgres, O, PgArguments> {
    fn bind_events(self, events: Outgoing) -> Self {
        bind_all!(self, events)
    }
}

/// Publishes the outbox of one database.
#[derive(Clone)]
pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    ns: Namespace,
    /// Longest wait between two looks at the table when no notification arrives.
    pub poll_interval: Duration,
    /// Rows published per transaction.
    pub batch_size: i64,
    /// How long a notification waits for others before its pass: a busy service publishes many events per
    /// transaction for at most this much latency per hop.
    pub linger: Duration,
    /// The service, for the metrics.
    service: &'static str,
}

impl Relay {
    pub fn new(pool: PgPool, js: jetstream::Context, ns: Namespace) -> Self {
        Self {
            pool,
            js,
            ns,
            poll_interval: Duration::from_millis(500),
            batch_size: 256,
            linger: Duration::from_millis(2),
            service: "",
        }
    }

    /// Names the service in the relay's metrics.
    pub fn for_service(mut self, service: &'static str) -> Self {
        self.service = service;
        self
    }

    /// Runs until `shutdown`; errors are logged and retried with backoff.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            // A batch being published on shutdown gets IN_FLIGHT_GRACE to finish; then it is dropped: its
            // transaction rolls back, the rows stay pending and the next relay publishes them again under the same
            // message ids (JetStream drops the duplicates). Unbounded, a NATS gone held the stop on the acks.
            let stopped = async {
                shutdown.cancelled().await;
                tokio::time::sleep(crate::consumer::IN_FLIGHT_GRACE).await;
            };
            let outcome = tokio::select! {
                outcome = self.run_once(&shutdown) => outcome,
                () = stopped => {
                    tracing::warn!("outbox relay stopped with a batch in flight (it stays pending)");
                    return;
                }
            };
            match outcome {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "outbox relay failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn run_once(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&self.pool).await.context("outbox listener")?;
        listener.listen(CHANNEL).await.context("LISTEN outbox")?;
        let mut last_cleanup = tokio::time::Instant::now();
        loop {
            // Drain everything pending, a batch per transaction.
            loop {
                let published = self.publish_pending().await?;
                if published < self.batch_size as usize {
                    break;
                }
            }
            if last_cleanup.elapsed() > Duration::from_secs(600) {
                self.delete_old().await?;
                last_cleanup = tokio::time::Instant::now();
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                notification = listener.recv() => {
                    notification.context("outbox notification")?;
                    // Let the writes of the next moment join this batch, then take every notification already
                    // here: one pass publishes them all (a pass per notification cost a transaction each).
                    // (`next_buffered` only sees what a query on the listener buffered: read the socket.)
                    tokio::time::sleep(self.linger).await;
                    for _ in 0..MAX_DRAINED {
                        match listener.recv().now_or_never() {
                            Some(notification) => { notification.context("outbox notification")?; }
                            None => break,
                        }
                    }
                }
                _ = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// Publishes one batch of pending rows if this relay gets the lock. Returns how many it published.
    pub async fn publish_pending(&self) -> anyhow::Result<usize> {
        let mut tx = self.pool.begin().await?;
        // The lock and the rows in one statement: no rows when another relay holds the lock.
        let rows = sqlx::query(
            "WITH relay AS (SELECT pg_try_advisory_xact_lock($2) AS leads)
             SELECT o.seq, o.id, o.subject, o.event_type, o.payload, o.headers, o.trace_context
             FROM relay, LATERAL (SELECT * FROM outbox WHERE published_at IS NULL AND relay.leads
                                  ORDER BY seq LIMIT $1) o
             ORDER BY o.seq",
        )
        .bind(self.batch_size)
        .bind(RELAY_LOCK)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // Send the whole batch, then wait for the acks: one round trip per batch, order kept by the server.
        let mut acks = Vec::with_capacity(rows.len());
        let mut marked: Vec<i64> = Vec::with_capacity(rows.len());
        for row in &rows {
            marked.push(row.try_get("seq")?);
            let id: Uuid = row.try_get("id")?;
            let subject: String = row.try_get("subject")?;
            let event_type: String = row.try_get("event_type")?;
            let payload: Vec<u8> = row.try_get("payload")?;
            let extra: sqlx::types::Json<HashMap<String, String>> = row.try_get("headers")?;
            let mut headers = HeaderMap::new();
            headers.insert(id77_proto::events::EVENT_TYPE_HEADER, event_type.as_str());
            headers.insert("Content-Type", "application/protobuf");
            for (k, v) in extra.0.iter() {
                headers.insert(k.as_str(), v.as_str());
            }
            let trace_context: Option<String> = row.try_get("trace_context")?;
            if let Some(parent) = trace_context.as_deref() {
                let span = tracing::info_span!("outbox publish", otel.name = %format!("publish {subject}"),
                    otel.kind = "producer", messaging.system = "nats", messaging.destination.name = %subject);
                crate::telemetry::extract_traceparent(parent, &span);
                let _entered = span.enter();
                if let Some(traceparent) = crate::telemetry::current_traceparent() {
                    headers.insert(crate::telemetry::TRACEPARENT, traceparent.as_str());
                }
            }
            let publish =
                PublishMessage::build().payload(Bytes::from(payload)).headers(headers).message_id(id.to_string());
            let ack = self
                .js
                .send_publish(self.ns.subject(&subject), publish)
                .await
                .with_context(|| format!("publishing outbox event {id} on {subject}"))?;
            acks.push((id, subject, ack));
        }
        for (id, subject, ack) in acks {
            let ack = ack.await.with_context(|| format!("ack of outbox event {id} on {subject}"))?;
            if ack.duplicate {
                tracing::debug!(%id, subject, "event was already published");
            }
        }
        // By the key (`seq`): the only index the mark writes into (0003_outbox_keyed_by_seq.sql).
        sqlx::query("UPDATE outbox SET published_at = now() WHERE seq = ANY($1)")
            .bind(&marked)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::debug!(count = marked.len(), "outbox events published");
        crate::metrics::global()
            .outbox_published
            .get_or_create(&crate::metrics::ServiceLabels { service: self.service.to_owned() })
            .inc_by(marked.len() as u64);
        Ok(marked.len())
    }

    /// Published rows are kept a day (well past JetStream's duplicate window) for inspection, then deleted.
    async fn delete_old(&self) -> anyhow::Result<()> {
        sqlx::query("DELETE FROM outbox WHERE published_at < now() - interval '1 day'").execute(&self.pool).await?;
        Ok(())
    }
}

/// Rows not yet published (for readiness and tests).
pub async fn pending_count(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetch_one(pool).await
}
