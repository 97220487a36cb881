//! The outbox and inbox against the real PostgreSQL and NATS of this machine. Each test has its own database
//! and subject prefix.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, message::PublishMessage};
use futures::StreamExt;
use id77_platform::consumer::{self, ConsumerSpec, Event, EventHandler, HandleError, Outcome};
use id77_platform::outbox::{self, BindEvents, Relay};
use id77_platform::{Namespace, db, nats, streams, testing};
use id77_proto::membership::v1::MemberApplied;
use sqlx::migrate::Migrator;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

struct Fixture {
    url: String,
    pool: PgPool,
    js: jetstream::Context,
    ns: Namespace,
}

impl Fixture {
    async fn new(label: &str) -> Self {
        let url = testing::fresh_database_url(label);
        let empty = Migrator::with_migrations(Vec::new());
        let pool = db::connect(&url, &empty, 10).await.expect("database");
        sqlx::query("CREATE TABLE effect (id bigserial PRIMARY KEY, note text NOT NULL)")
            .execute(&pool)
            .await
            .expect("effect table");
        let (_, js) = nats::connect(&testing::nats_url(), "platform-test").await.expect("nats");
        let ns = Namespace::new(testing::fresh_prefix());
        Self { url, pool, js, ns }
    }

    async fn cleanup(self) {
        testing::delete_streams(&self.js, &self.ns).await;
        self.pool.close().await;
        testing::drop_database(&self.url).await;
    }

    async fn effects(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM effect").fetch_one(&self.pool).await.expect("count")
    }

    /// All messages of a stream, in order, as (Nats-Msg-Id, payload).
    async fn read_stream(&self, stream: &str, expected: usize) -> Vec<(String, Vec<u8>)> {
        let stream = self.js.get_stream(self.ns.stream(stream)).await.expect("stream");
        let consumer = stream.create_consumer(pull::OrderedConfig::default()).await.expect("ordered consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let mut out = Vec::new();
        while out.len() < expected {
            match tokio::time::timeout(Duration::from_secs(5), messages.next()).await {
                Ok(Some(Ok(m))) => {
                    let id = m
                        .headers
                        .as_ref()
                        .and_then(|h| h.get("Nats-Msg-Id"))
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    out.push((id, m.payload.to_vec()));
                }
                _ => break,
            }
        }
        out
    }
}

fn event(n: usize) -> MemberApplied {
    MemberApplied {
        member_id: format!("m{n}"),
        siren: "217702844".into(),
        name: format!("Meaux {n}"),
        ..Default::default()
    }
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn two_relays_on_one_outbox_publish_each_event_exactly_once_and_in_order() {
    let f = Fixture::new("relays").await;
    nats::ensure_stream(&f.js, &f.ns, streams::MEMBERSHIP).await.expect("stream");
    let shutdown = CancellationToken::new();
    let mut relays = Vec::new();
    for _ in 0..2 {
        let mut relay = Relay::new(f.pool.clone(), f.js.clone(), f.ns.clone());
        relay.batch_size = 16;
        relays.push(tokio::spawn(relay.run(shutdown.clone())));
    }
    // Writers commit while both relays run.
    let total = 300;
    let mut ids = Vec::new();
    for chunk in 0..30 {
        let mut tx = f.pool.begin().await.expect("tx");
        for i in 0..10 {
            ids.push(outbox::enqueue(&mut tx, &event(chunk * 10 + i)).await.expect("enqueue"));
        }
        tx.commit().await.expect("commit");
    }
    wait_until("outbox drained", || async { outbox::pending_count(&f.pool).await.ok() == Some(0) }).await;
    let published = f.read_stream("MEMBERSHIP", total + 1).await;
    assert_eq!(published.len(), total, "each event published once");
    let published_ids: Vec<String> = published.iter().map(|(id, _)| id.clone()).collect();
    let expected_ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    assert_eq!(published_ids, expected_ids, "published in commit order with the row id as Nats-Msg-Id");

    // A relay that died after publishing but before marking: rows are pending again and get republished
    // with the same message ids, which JetStream drops.
    shutdown.cancel();
    for r in relays {
        r.await.expect("relay stopped");
    }
    sqlx::query("UPDATE outbox SET published_at = NULL").execute(&f.pool).await.expect("reset");
    let relay = Relay::new(f.pool.clone(), f.js.clone(), f.ns.clone());
    while relay.publish_pending().await.expect("republish") > 0 {}
    let info =
        f.js.get_stream(f.ns.stream("MEMBERSHIP")).await.expect("stream").info().await.expect("info").state.messages;
    assert_eq!(info, total as u64, "republished events were duplicates");
    f.cleanup().await;
}

#[tokio::test]
async fn a_relay_publishes_the_events_of_many_transactions_in_one_pass_after_its_linger() {
    let f = Fixture::new("linger").await;
    nats::ensure_stream(&f.js, &f.ns, streams::MEMBERSHIP).await.expect("stream");
    let shutdown = CancellationToken::new();
    let mut relay = Relay::new(f.pool.clone(), f.js.clone(), f.ns.clone());
    // Long enough for every write below to land in the first pass's batch, on a loaded machine too (CI runs the
    // chaos tests beside this one: 400 ms once saw the twenty commits spread over three passes).
    relay.linger = Duration::from_millis(2_000);
    let running = tokio::spawn(relay.run(shutdown.clone()));
    // Let the relay listen before the writes, and its first pass (which finds nothing) end.
    wait_until("the relay listening", || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'",
        )
        .fetch_one(&f.pool)
        .await
        .is_ok_and(|n| n > 0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        let mut tx = f.pool.begin().await.expect("tx");
        ids.push(outbox::enqueue(&mut tx, &event(n)).await.expect("enqueue"));
        tx.commit().await.expect("commit");
    }
    wait_until("outbox drained", || async { outbox::pending_count(&f.pool).await.ok() == Some(0) }).await;
    // One pass marks its whole batch in one transaction: one `published_at` per pass.
    let passes: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT published_at) FROM outbox").fetch_one(&f.pool).await.expect("passes");
    assert!(passes <= 2, "20 notifications took {passes} passes");
    let published = f.read_stream("MEMBERSHIP", 20).await;
    let stored =
        f.js.get_stream(f.ns.stream("MEMBERSHIP")).await.expect("stream").info().await.expect("info").state.messages;
    assert_eq!(stored, 20);
    let published_ids: Vec<String> = published.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(published_ids, ids.iter().map(ToString::to_string).collect::<Vec<_>>(), "each once, in order");
    shutdown.cancel();
    running.await.expect("relay stopped");
    f.cleanup().await;
}

#[tokio::test]
async fn events_written_together_publish_in_order_and_only_with_the_change_they_announce() {
    let f = Fixture::new("outgoing").await;
    nats::ensure_stream(&f.js, &f.ns, streams::MEMBERSHIP).await.expect("stream");
    // Written on their own: one statement for three rows.
    let mut tx = f.pool.begin().await.expect("tx");
    let mut events = outbox::Outgoing::new();
    let ids: Vec<_> = (0..3).map(|n| events.event(&event(n))).collect();
    assert_eq!(events.len(), 3);
    events.write(&mut tx).await.expect("write");
    // Folded into a change's statement: written when the change is, not when it is not.
    for (note, changes) in [("kept", true), ("skipped", false)] {
        let mut folded = outbox::Outgoing::new();
        let id = folded.event(&event(9));
        let woke: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "WITH changed AS (INSERT INTO effect (note) SELECT $1 WHERE $2 RETURNING id),
                  events AS ({})
             SELECT {} FROM changed",
            outbox::Outgoing::insert_sql(3, "EXISTS (SELECT 1 FROM changed)"),
            outbox::NOTIFY_SQL
        )))
        .bind(note)
        .bind(changes)
        .bind_events(folded)
        .fetch_optional(&mut *tx)
        .await
        .expect("folded");
        assert_eq!(woke.is_some(), changes, "{note}");
        let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .expect("count");
        assert_eq!(stored, i64::from(changes), "{note}: the event goes with its change");
    }
    tx.commit().await.expect("commit");
    let relay = Relay::new(f.pool.clone(), f.js.clone(), f.ns.clone());
    while relay.publish_pending().await.expect("publish") > 0 {}
    let published = f.read_stream("MEMBERSHIP", 5).await;
    assert_eq!(published.len(), 4, "three written together and the folded one");
    let published_ids: Vec<String> = published.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(published_ids[..3], ids.iter().map(ToString::to_string).collect::<Vec<_>>()[..], "in order");
    f.cleanup().await;
}

#[tokio::test]
async fn rolled_back_transactions_publish_nothing() {
    let f = Fixture::new("rollback").await;
    nats::ensure_stream(&f.js, &f.ns, streams::MEMBERSHIP).await.expect("stream");
    let mut tx = f.pool.begin().await.expect("tx");
    outbox::enqueue(&mut tx, &event(1)).await.expect("enqueue");
    tx.rollback().await.expect("rollback");
    let relay = Relay::new(f.pool.clone(), f.js.clone(), f.ns.clone());
    assert_eq!(relay.publish_pending().await.expect("publish"), 0);
    f.cleanup().await;
}

/// Records one effect per message; fails or stalls on demand.
struct Recorder {
    calls: AtomicUsize,
    stall_first: Option<Duration>,
    reject: bool,
}

impl EventHandler for Recorder {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.reject {
            return Err(HandleError::Reject(anyhow::anyhow!("never valid")));
        }
        let e: MemberApplied = event.decode()?;
        sqlx::query("INSERT INTO effect (note) VALUES ($1)").bind(&e.name).execute(&mut *conn).await?;
        if call == 0
            && let Some(stall) = self.stall_first
        {
            // Longer than ack_wait: the server redelivers while this first attempt is still running.
            tokio::time::sleep(stall).await;
        }
        Ok(())
    }
}

/// Publishes a `MemberApplied` for `member_id` under `message_id`, as another service's relay would.
async fn publish_applied(f: &Fixture, member_id: &str, message_id: &str) {
    use prost::Message;
    let payload = MemberApplied { member_id: member_id.to_owned(), ..Default::default() };
    let msg = PublishMessage::build().payload(payload.encode_to_vec().into()).message_id(message_id);
    f.js.send_publish(f.ns.subject("id77.membership.member.applied"), msg).await.expect("publish").await.expect("ack");
}

/// Runs `handler` as the durable consumer `spec` until the returned token is cancelled.
fn spawn_consumer<H: EventHandler>(
    f: &Fixture,
    spec: ConsumerSpec,
    handler: Arc<H>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(consumer::run(f.pool.clone(), f.js.clone(), f.ns.clone(), spec, handler, shutdown.clone()));
    (shutdown, task)
}

async fn publish(f: &Fixture, subject: &str, id: &str, n: usize) {
    use prost::Message;
    let msg = PublishMessage::build().payload(event(n).encode_to_vec().into()).message_id(id);
    f.js.send_publish(f.ns.subject(subject), msg).await.expect("publish").await.expect("ack");
}

#[tokio::test]
async fn the_same_message_applied_twice_has_one_effect() {
    let f = Fixture::new("inbox").await;
    let handler = Recorder { calls: AtomicUsize::new(0), stall_first: None, reject: false };
    use prost::Message;
    let e = Event {
        subject: "id77.membership.member.applied".into(),
        message_id: "same-id".into(),
        event_type: String::new(),
        payload: event(1).encode_to_vec().into(),
        headers: Default::default(),
        delivered: 1,
    };
    assert_eq!(consumer::apply(&f.pool, "test", &handler, &e).await.ok(), Some(Outcome::Applied));
    assert_eq!(consumer::apply(&f.pool, "test", &handler, &e).await.ok(), Some(Outcome::Duplicate));
    // Another consumer keeps its own record.
    assert_eq!(consumer::apply(&f.pool, "other", &handler, &e).await.ok(), Some(Outcome::Applied));
    assert_eq!(f.effects().await, 2);
    f.cleanup().await;
}

#[tokio::test]
async fn a_redelivery_after_a_late_ack_has_no_second_effect() {
    let f = Fixture::new("redeliver").await;
    let handler = Arc::new(Recorder {
        calls: AtomicUsize::new(0),
        stall_first: Some(Duration::from_millis(1500)),
        reject: false,
    });
    let mut spec = ConsumerSpec::new(streams::MEMBERSHIP, "test-redeliver", "id77.membership.member.>");
    spec.ack_wait = Duration::from_secs(1);
    let (shutdown, task) = spawn_consumer(&f, spec, handler.clone());
    wait_until("stream", || async { f.js.get_stream(f.ns.stream("MEMBERSHIP")).await.is_ok() }).await;
    publish(&f, "id77.membership.member.applied", "evt-1", 1).await;
    wait_until("redelivery handled", || async { handler.calls.load(Ordering::SeqCst) >= 1 && f.effects().await == 1 })
        .await;
    // Give the server time to redeliver the message whose ack came too late.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(f.effects().await, 1, "one effect whatever the deliveries");
    let processed: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = 'test-redeliver'")
        .fetch_one(&f.pool)
        .await
        .expect("inbox");
    assert_eq!(processed, 1);
    // The server did deliver it twice (consumer sequence 2 for stream sequence 1), and the second one was acked.
    let mut consumer: jetstream::consumer::PullConsumer =
        f.js.get_stream(f.ns.stream("MEMBERSHIP"))
            .await
            .expect("stream")
            .get_consumer("test-redeliver")
            .await
            .expect("consumer");
    let info = consumer.info().await.expect("consumer info");
    assert!(info.delivered.consumer_sequence >= 2, "redelivered: {:?}", info.delivered);
    assert_eq!(info.ack_floor.stream_sequence, 1, "acked in the end");
    shutdown.cancel();
    task.await.expect("consumer stopped");
    f.cleanup().await;
}

#[tokio::test]
async fn a_message_that_can_never_succeed_goes_to_the_dead_letter_stream() {
    let f = Fixture::new("deadletter").await;
    let handler = Arc::new(Recorder { calls: AtomicUsize::new(0), stall_first: None, reject: true });
    let spec = ConsumerSpec::new(streams::MEMBERSHIP, "test-dlq", "id77.membership.member.>");
    let (shutdown, task) = spawn_consumer(&f, spec, handler.clone());
    wait_until("stream", || async { f.js.get_stream(f.ns.stream("DEADLETTER")).await.is_ok() }).await;
    publish(&f, "id77.membership.member.applied", "poison-1", 7).await;
    let dead = f.read_stream("DEADLETTER", 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, "test-dlq:poison-1");
    assert_eq!(f.effects().await, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(handler.calls.load(Ordering::SeqCst), 1, "terminated, not redelivered");
    shutdown.cancel();
    task.await.expect("consumer stopped");
    f.cleanup().await;
}

/// Records each event's entity and number, how many run at once, and any event applied before an earlier one
/// of its entity.
struct Laned {
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    last: std::sync::Mutex<std::collections::HashMap<String, usize>>,
    out_of_order: AtomicUsize,
}

/// `member_id` is `<entity>/<n>`.
fn entity_and_number(event: &Event) -> Option<(String, usize)> {
    let e: MemberApplied = event.decode().ok()?;
    let (entity, n) = e.member_id.split_once('/')?;
    Some((entity.to_owned(), n.parse().ok()?))
}

impl EventHandler for Laned {
    fn ordering_key(&self, event: &Event) -> Option<u64> {
        entity_and_number(event).map(|(entity, _)| consumer::key_of(&entity))
    }

    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let (entity, n) =
            entity_and_number(event).ok_or_else(|| HandleError::Reject(anyhow::anyhow!("not a test event")))?;
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        if let Ok(mut last) = self.last.lock() {
            let previous = last.insert(entity.clone(), n);
            if previous.is_some_and(|p| p >= n) {
                self.out_of_order.fetch_add(1, Ordering::SeqCst);
            }
        }
        // Long enough for the other lanes to start meanwhile.
        tokio::time::sleep(Duration::from_millis(20)).await;
        sqlx::query("INSERT INTO effect (note) VALUES ($1)").bind(format!("{entity}/{n}")).execute(&mut *conn).await?;
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn lanes_apply_different_entities_at_once_and_each_entity_in_order() {
    let f = Fixture::new("lanes").await;
    const LANES: usize = 4;
    // Four entities that fall in four different lanes.
    let mut entities: Vec<String> = Vec::new();
    let mut used = std::collections::HashSet::new();
    for i in 0.. {
        let name = format!("entity{i}");
        if used.insert(consumer::key_of(&name) % LANES as u64) {
            entities.push(name);
        }
        if entities.len() == LANES {
            break;
        }
    }
    let handler = Arc::new(Laned {
        running: AtomicUsize::new(0),
        most_at_once: AtomicUsize::new(0),
        last: Default::default(),
        out_of_order: AtomicUsize::new(0),
    });
    let spec = ConsumerSpec::new(streams::MEMBERSHIP, "test-lanes", "id77.membership.member.>").with_lanes(LANES);
    // Published before the consumer starts, interleaved: entity0/1, entity1/1, ..., entity0/2, ...
    nats::ensure_stream(&f.js, &f.ns, streams::MEMBERSHIP).await.expect("stream");
    for n in 1..=10 {
        for entity in &entities {
            publish_applied(&f, &format!("{entity}/{n}"), &format!("{entity}-{n}")).await;
        }
    }
    let (shutdown, task) = spawn_consumer(&f, spec, handler.clone());
    wait_until("every event applied", || async { f.effects().await == 40 }).await;
    shutdown.cancel();
    task.await.expect("consumer stopped");
    let distinct: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT note) FROM effect").fetch_one(&f.pool).await.expect("notes");
    assert_eq!(distinct, 40, "each event once");
    assert_eq!(handler.out_of_order.load(Ordering::SeqCst), 0, "an entity's events applied out of order");
    let most = handler.most_at_once.load(Ordering::SeqCst);
    assert!(most >= 2, "the lanes never applied two events at once (at most {most})");
    assert!(most <= LANES, "more events at once ({most}) than lanes");
    f.cleanup().await;
}

/// Writes `<member_id>|<transaction id>` per event, so that a test sees which events shared a transaction;
/// rejects the events whose member id starts with `bad`.
struct Batched;

impl EventHandler for Batched {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let e: MemberApplied = event.decode()?;
        if e.member_id.starts_with("bad") {
            return Err(HandleError::Reject(anyhow::anyhow!("a bad event")));
        }
        sqlx::query("INSERT INTO effect (note) SELECT $1 || '|' || txid_current()")
            .bind(&e.member_id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

fn test_event(member_id: &str, message_id: &str) -> Event {
    use prost::Message;
    Event {
        subject: "id77.membership.member.applied".into(),
        message_id: message_id.into(),
        event_type: String::new(),
        payload: MemberApplied { member_id: member_id.into(), ..Default::default() }.encode_to_vec().into(),
        headers: Default::default(),
        delivered: 1,
    }
}

/// (member id, transaction id) of every effect, in the order they were written.
async fn effects_by_transaction(f: &Fixture) -> Vec<(String, String)> {
    let notes: Vec<String> =
        sqlx::query_scalar("SELECT note FROM effect ORDER BY id").fetch_all(&f.pool).await.expect("notes");
    notes.iter().filter_map(|n| n.split_once('|')).map(|(m, t)| (m.to_owned(), t.to_owned())).collect()
}

#[tokio::test]
async fn a_batch_commits_once_and_a_bad_message_in_it_undoes_none_of_the_others() {
    let f = Fixture::new("batch").await;
    // The same message twice in one batch (a redelivery pulled beside the first delivery) is applied once.
    let ok = ["m1", "m2", "m3", "m2"].map(|m| test_event(m, &format!("id-{m}")));
    let results = consumer::apply_batch(&f.pool, "test", &Batched, &ok, &[]).await;
    assert!(results[..3].iter().all(|r| matches!(r, Ok(Outcome::Applied))), "{results:?}");
    assert!(matches!(results[3], Ok(Outcome::Duplicate)), "{results:?}");
    let written = effects_by_transaction(&f).await;
    assert_eq!(written.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>(), ["m1", "m2", "m3"], "in order");
    let transactions: std::collections::HashSet<_> = written.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(transactions.len(), 1, "one transaction for the batch: {written:?}");

    // A bad message, then the same message id twice: each gets its own outcome, the good ones their effect once.
    let mixed = [
        test_event("m4", "id-m4"),
        test_event("bad5", "id-bad5"),
        test_event("m6", "id-m6"),
        test_event("m4", "id-m4"),
        test_event("m1", "id-m1"),
    ];
    let results = consumer::apply_batch(&f.pool, "test", &Batched, &mixed, &[]).await;
    assert!(matches!(results[0], Ok(Outcome::Applied)), "{:?}", results[0]);
    assert!(matches!(results[1], Err(HandleError::Reject(_))), "{:?}", results[1]);
    assert!(matches!(results[2], Ok(Outcome::Applied)), "{:?}", results[2]);
    assert!(matches!(results[3], Ok(Outcome::Duplicate)), "{:?}", results[3]);
    assert!(matches!(results[4], Ok(Outcome::Duplicate)), "an earlier batch's message: {:?}", results[4]);
    let written = effects_by_transaction(&f).await;
    assert_eq!(written.iter().map(|(m, _)| m.as_str()).collect::<Vec<_>>(), ["m1", "m2", "m3", "m4", "m6"]);
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = 'test'")
        .fetch_one(&f.pool)
        .await
        .expect("inbox");
    assert_eq!(inbox, 5, "the rejected message left no inbox row (it is dead-lettered, not applied)");
    f.cleanup().await;
}

#[tokio::test]
async fn a_busy_consumer_applies_what_waits_in_few_transactions_each_message_once_and_in_order() {
    let f = Fixture::new("batches").await;
    nats::ensure_stream(&f.js, &f.ns, streams::MEMBERSHIP).await.expect("stream");
    const COUNT: usize = 40;
    for n in 0..COUNT {
        publish_applied(&f, &format!("m{n:02}"), &format!("batch-{n}")).await;
    }
    let spec = ConsumerSpec::new(streams::MEMBERSHIP, "test-batches", "id77.membership.member.>");
    let (shutdown, task) = spawn_consumer(&f, spec, Arc::new(Batched));
    wait_until("every event applied", || async { f.effects().await == COUNT as i64 }).await;
    // Acked after the commit: nothing is left to redeliver.
    wait_until("every message acked", || async {
        let stream = f.js.get_stream(f.ns.stream("MEMBERSHIP")).await.expect("stream");
        let info = stream.consumer_info("test-batches").await.expect("consumer info");
        info.num_ack_pending == 0 && info.num_pending == 0
    })
    .await;
    shutdown.cancel();
    task.await.expect("consumer stopped");
    let written = effects_by_transaction(&f).await;
    let expected: Vec<String> = (0..COUNT).map(|n| format!("m{n:02}")).collect();
    assert_eq!(written.iter().map(|(m, _)| m.clone()).collect::<Vec<_>>(), expected, "each once, in order");
    let transactions: std::collections::HashSet<_> = written.iter().map(|(_, t)| t.clone()).collect();
    assert!(transactions.len() < COUNT, "{COUNT} waiting messages took {} transactions", transactions.len());
    f.cleanup().await;
}

#[tokio::test]
async fn a_pull_request_lost_on_its_way_is_renewed_after_missed_heartbeats_not_at_its_expiry() {
    let f = Fixture::new("lostpull").await;
    nats::ensure_stream(&f.js, &f.ns, streams::MEMBERSHIP).await.expect("stream");
    // The consumer's connection goes through a proxy that loses its first pull request.
    let (url, dropped) = testing::pull_dropping_proxy(&testing::nats_url(), 1).await.expect("proxy");
    let (_, proxied) = nats::connect(&url, "platform-test-lost-pull").await.expect("nats through the proxy");
    let handler = Arc::new(Recorder { calls: AtomicUsize::new(0), stall_first: None, reject: false });
    let spec = ConsumerSpec::new(streams::MEMBERSHIP, "test-lost-pull", "id77.membership.member.>");
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(consumer::run(f.pool.clone(), proxied, f.ns.clone(), spec, handler, shutdown.clone()));
    wait_until("the lost pull request", || async { dropped.load(Ordering::SeqCst) == 1 }).await;
    publish(&f, "id77.membership.member.applied", "evt-lost-pull", 1).await;
    // Missed heartbeats show in 10 s (5 s heartbeat); async-nats alone would pull again only at 35 s.
    let started = std::time::Instant::now();
    while f.effects().await == 0 {
        assert!(started.elapsed() < Duration::from_secs(25), "the event waited for the pull's expiry");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shutdown.cancel();
    task.await.expect("consumer stopped");
    f.cleanup().await;
}
