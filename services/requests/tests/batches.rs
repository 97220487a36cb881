//! A batch of routing's referral events applied by requests' consumer in one transaction, its requests locked and
//! its providers' names read once for the batch (issue 23): each request moves as it would one event at a time, a
//! request's second event sees what its first did, a bad event sends the batch back to one event per transaction,
//! and a batch delivered again changes nothing. Its mails are written together, to whom each would have gone one
//! event at a time, once; the quotes' consumer batches the same way.

use id77_platform::consumer::{self, Outcome};
use id77_platform::{Event, HandleError};
use id77_proto::billing::v1::{Quote, QuoteIssued, QuoteRefused};
use id77_proto::catalogue::v1::OfferCategory;
use id77_proto::requests::v1::RequestStatus;
use id77_proto::routing::v1::ReferralAccepted;
use id77_requests::events::ReferralEvents;
use id77_requests::notify::store::{Recipient, upsert_recipient};
use id77_requests::quotes::QuoteEvents;
use prost::Message;
use uuid::Uuid;

mod support;

use support::*;

fn event(subject: &str, message: &impl Message) -> Event {
    id77_platform::testing::first_delivery(subject, message)
}

fn accepted(request: &str, secs: i64) -> ReferralAccepted {
    ReferralAccepted {
        request_id: request.into(),
        provider_code: "caue77".into(),
        occurred_at: at(secs),
        ..Default::default()
    }
}

fn id(raw: &str) -> Uuid {
    Uuid::parse_str(raw).expect("request id")
}

#[tokio::test]
async fn a_batch_of_referral_events_moves_each_request_as_one_at_a_time_would_in_one_transaction() {
    let mut s = start().await;
    let (_, offer, user) = s.member_with_offer("caue77", OfferCategory::IntegratedEngineering).await;
    let a = s.submit(&user, submission(offer, "batch-a")).await.id;
    let b = s.submit(&user, submission(offer, "batch-b")).await.id;
    let pool = sqlx::PgPool::connect(&s.url).await.expect("database");

    // a offered then accepted, b offered, in one batch: a's acceptance finds a as its offer left it.
    let first = vec![
        event("id77.routing.referral.offered", &offered(&a, "caue77", 1)),
        event("id77.routing.referral.offered", &offered(&b, "caue77", 1)),
        event("id77.routing.referral.accepted", &accepted(&a, 2)),
    ];
    let results = consumer::apply_batch(&pool, "test-referrals", &ReferralEvents, &first, &[]).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Outcome::Applied))), "{results:?}");
    let writers: Vec<String> = sqlx::query_scalar("SELECT DISTINCT xmin::text FROM request WHERE id = ANY($1)")
        .bind([id(&a), id(&b)])
        .fetch_all(&pool)
        .await
        .expect("xmin");
    assert_eq!(writers.len(), 1, "both requests written by one transaction: {writers:?}");
    let got_a = s.get(&a).await;
    assert_eq!(got_a.status(), RequestStatus::Accepted, "{:?}", got_a.history);
    let reasons: Vec<&str> = got_a.history.iter().map(|h| h.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[1..].iter().all(|r| r.contains("CAUE 77")), "the provider named in each line: {reasons:?}");
    assert_eq!(s.get(&b).await.status(), RequestStatus::Referred);

    // An event for a request requests does not know fails the batch; one by one, the other still applies.
    let unknown = Uuid::now_v7().to_string();
    let second = vec![
        event("id77.routing.referral.accepted", &accepted(&b, 3)),
        event("id77.routing.referral.offered", &offered(&unknown, "caue77", 3)),
    ];
    let results = consumer::apply_batch(&pool, "test-referrals", &ReferralEvents, &second, &[]).await;
    assert!(matches!(results[0], Ok(Outcome::Applied)), "{:?}", results[0]);
    assert!(matches!(results[1], Err(HandleError::Reject(_))), "{:?}", results[1]);
    assert_eq!(s.get(&b).await.status(), RequestStatus::Accepted);

    // The first batch delivered again: every event a duplicate, nothing written.
    let results = consumer::apply_batch(&pool, "test-referrals", &ReferralEvents, &first, &[]).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Outcome::Duplicate))), "{results:?}");
    assert_eq!(s.get(&a).await.history.len(), 3);
    assert_eq!(s.get(&b).await.history.len(), 3);
    pool.close().await;
    s.stop().await;
}

/// An account as membership would tell it (`member`: a member's user; else an agent of `provider`).
async fn account(
    pool: &sqlx::PgPool,
    email: &str,
    role: &str,
    member: Option<Uuid>,
    provider: Option<&str>,
    active: bool,
) {
    let mut conn = pool.acquire().await.expect("connection");
    let r = Recipient {
        user_id: Uuid::now_v7(),
        email: email.into(),
        display_name: email.split('@').next().unwrap_or_default().into(),
        role: role.into(),
        member_id: member,
        provider_code: provider.map(str::to_owned),
        active,
        version: 1,
    };
    upsert_recipient(&mut conn, &r).await.expect("account");
    if email.starts_with("quiet") {
        sqlx::query(
            "INSERT INTO notification_preference (user_id, status_changed, updated_at) VALUES ($1, false, now())",
        )
        .bind(r.user_id)
        .execute(&mut *conn)
        .await
        .expect("preference");
    }
}

/// The mails queued since `after` (a count of rows), as (kind, request, address), in queueing order.
async fn mails_since(pool: &sqlx::PgPool, after: i64) -> Vec<(String, Option<Uuid>, String)> {
    sqlx::query_as("SELECT kind, request_id, email FROM mail_outbox ORDER BY id OFFSET $1")
        .bind(after)
        .fetch_all(pool)
        .await
        .expect("mails")
}

async fn mail_count(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM mail_outbox").fetch_one(pool).await.expect("count")
}

#[tokio::test]
async fn a_batch_writes_its_mails_in_its_transaction_to_whom_each_event_would_and_once() {
    let mut s = start().await;
    let (member, offer, user) = s.member_with_offer("caue77", OfferCategory::IntegratedEngineering).await;
    let (filed_a, filed_b) =
        (s.submit(&user, submission(offer, "mails-a")).await, s.submit(&user, submission(offer, "mails-b")).await);
    let (a, b) = (filed_a.id.clone(), filed_b.id.clone());
    let pool = sqlx::PgPool::connect(&s.url).await.expect("database");
    account(&pool, "dgs@meaux.fr", "member_admin", Some(member), None, true).await;
    account(&pool, "quiet@meaux.fr", "member_user", Some(member), None, true).await;
    account(&pool, "former@meaux.fr", "member_user", Some(member), None, false).await;
    account(&pool, "agent@caue77.fr", "provider_agent", None, Some("caue77"), true).await;
    account(&pool, "agent@other.fr", "provider_agent", None, Some("sde77"), true).await;
    let before = mail_count(&pool).await;

    let referrals = vec![
        event("id77.routing.referral.offered", &offered(&a, "caue77", 1)),
        event("id77.routing.referral.offered", &offered(&b, "caue77", 1)),
        event("id77.routing.referral.accepted", &accepted(&a, 2)),
    ];
    let results = consumer::apply_batch(&pool, "test-referrals", &ReferralEvents, &referrals, &[]).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Outcome::Applied))), "{results:?}");
    let (a_id, b_id) = (id(&a), id(&b));
    let got = mails_since(&pool, before).await;
    let expect = |kind: &str, request: Uuid, email: &str| (kind.to_owned(), Some(request), email.to_owned());
    assert_eq!(
        got,
        vec![
            expect("referral_offered", a_id, "agent@caue77.fr"),
            expect("status_changed", a_id, "dgs@meaux.fr"),
            expect("referral_offered", b_id, "agent@caue77.fr"),
            expect("status_changed", b_id, "dgs@meaux.fr"),
            expect("status_changed", a_id, "dgs@meaux.fr"),
        ],
        "the agents of the provider offered, the member's users who want status mails; nobody else"
    );
    let writers: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT xmin::text FROM mail_outbox WHERE request_id = ANY($1)
         UNION SELECT DISTINCT xmin::text FROM request WHERE id = ANY($1)",
    )
    .bind([a_id, b_id])
    .fetch_all(&pool)
    .await
    .expect("xmin");
    assert_eq!(writers.len(), 1, "the mails and their requests written by one transaction: {writers:?}");
    let again = consumer::apply_batch(&pool, "test-referrals", &ReferralEvents, &referrals, &[]).await;
    assert!(again.iter().all(|r| matches!(r, Ok(Outcome::Duplicate))), "{again:?}");
    assert_eq!(mail_count(&pool).await, before + 5, "a redelivery queues no mail");

    // Quotes: a proposal for each request and b's refusal, in one batch; b's refusal finds b as its proposal left
    // it, and cancels it, its provider's agents told.
    let (qa, qb) = (
        quote(&filed_a, member, "caue77", "D-caue77-2026-000001"),
        quote(&filed_b, member, "caue77", "D-caue77-2026-000002"),
    );
    let refused =
        Quote { decided_by_user_id: Uuid::now_v7().to_string(), decided_by_name: "Marie Dupont".into(), ..qb.clone() };
    let quotes = vec![
        event("id77.billing.quote.issued", &QuoteIssued { quote: Some(qa) }),
        event("id77.billing.quote.issued", &QuoteIssued { quote: Some(qb) }),
        event("id77.billing.quote.refused", &QuoteRefused { quote: Some(refused), ..Default::default() }),
    ];
    let before = mail_count(&pool).await;
    let results = consumer::apply_batch(&pool, "test-quotes", &QuoteEvents, &quotes, &[]).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Outcome::Applied))), "{results:?}");
    assert_eq!(s.get(&b).await.status(), RequestStatus::Cancelled);
    assert_eq!(s.get(&a).await.status(), RequestStatus::Accepted);
    assert_eq!(
        mails_since(&pool, before).await,
        vec![
            expect("quote_proposed", a_id, "dgs@meaux.fr"),
            expect("quote_proposed", b_id, "dgs@meaux.fr"),
            expect("status_changed", b_id, "dgs@meaux.fr"),
            expect("request_cancelled", b_id, "agent@caue77.fr"),
        ]
    );
    let writers: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT xmin::text FROM mail_outbox WHERE kind IN ('quote_proposed', 'request_cancelled')
         UNION SELECT DISTINCT xmin::text FROM request WHERE id = $1",
    )
    .bind(b_id)
    .fetch_all(&pool)
    .await
    .expect("xmin");
    assert_eq!(writers.len(), 1, "the quotes' batch written by one transaction: {writers:?}");
    let again = consumer::apply_batch(&pool, "test-quotes", &QuoteEvents, &quotes, &[]).await;
    assert!(again.iter().all(|r| matches!(r, Ok(Outcome::Duplicate))), "{again:?}");
    assert_eq!(mail_count(&pool).await, before + 4);
    pool.close().await;
    s.stop().await;
}

/// A step that keeps the request's provider (its acceptance after its offer) rewrites the row in place, a
/// heap-only update that adds no entry to the request's indexes (issue 23: no index holds `changed_at`, which
/// every update rewrites, and pages keep room for new versions).
#[tokio::test]
async fn a_step_that_keeps_the_provider_rewrites_the_request_without_touching_its_indexes() {
    use id77_platform::consumer::EventHandler;
    let mut s = start().await;
    let (_, offer, user) = s.member_with_offer("caue77", OfferCategory::IntegratedEngineering).await;
    let a = s.submit(&user, submission(offer, "in-place")).await.id;
    let pool = sqlx::PgPool::connect(&s.url).await.expect("database");
    let offered = vec![event("id77.routing.referral.offered", &offered(&a, "caue77", 1))];
    let results = consumer::apply_batch(&pool, "test-referrals", &ReferralEvents, &offered, &[]).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Outcome::Applied))), "{results:?}");

    let mut tx = pool.begin().await.expect("begin");
    ReferralEvents.handle(&mut tx, &event("id77.routing.referral.accepted", &accepted(&a, 2))).await.expect("accept");
    // This transaction's own counts of the request table's updates, all and heap-only.
    let (updated, in_place): (i64, i64) = sqlx::query_as(
        "SELECT pg_stat_get_xact_tuples_updated('request'::regclass),
                pg_stat_get_xact_tuples_hot_updated('request'::regclass)",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("counts");
    tx.commit().await.expect("commit");
    assert_eq!((updated, in_place), (1, 1), "the acceptance rewrote the request in place");
    assert_eq!(s.get(&a).await.status(), RequestStatus::Accepted);
    pool.close().await;
    s.stop().await;
}

#[tokio::test]
async fn a_batch_writes_each_request_once_as_its_last_step_left_it_with_every_steps_history_and_events_in_order() {
    use id77_platform::consumer::EventHandler;
    use id77_proto::requests::v1::RequestStatusChanged;
    let mut s = start().await;
    let (_, offer, user) = s.member_with_offer("caue77", OfferCategory::IntegratedEngineering).await;
    let a = s.submit(&user, submission(offer, "once-a")).await.id;
    let b = s.submit(&user, submission(offer, "once-b")).await.id;
    let pool = sqlx::PgPool::connect(&s.url).await.expect("database");
    let seq_before: i64 =
        sqlx::query_scalar("SELECT coalesce(max(seq), 0) FROM outbox").fetch_one(&pool).await.expect("outbox");

    // a offered then accepted, b offered: three steps, two requests.
    let batch = [
        event("id77.routing.referral.offered", &offered(&a, "caue77", 1)),
        event("id77.routing.referral.offered", &offered(&b, "caue77", 1)),
        event("id77.routing.referral.accepted", &accepted(&a, 2)),
    ];
    let mut tx = pool.begin().await.expect("begin");
    ReferralEvents.handle_batch(&mut tx, &batch.iter().collect::<Vec<_>>()).await.expect("batch");
    let updated: i64 = sqlx::query_scalar("SELECT pg_stat_get_xact_tuples_updated('request'::regclass)")
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    tx.commit().await.expect("commit");
    assert_eq!(updated, 2, "one update per request, not one per step");

    let got_a = s.get(&a).await;
    assert_eq!(got_a.status(), RequestStatus::Accepted);
    assert_eq!(got_a.provider_code, "caue77");
    let statuses: Vec<RequestStatus> = got_a.history.iter().map(|h| h.status()).collect();
    assert_eq!(statuses, [RequestStatus::Submitted, RequestStatus::Referred, RequestStatus::Accepted]);
    assert_eq!(s.get(&b).await.status(), RequestStatus::Referred);
    let answered: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT first_answered_at FROM request WHERE id = $1")
            .bind(id(&a))
            .fetch_one(&pool)
            .await
            .expect("answered");
    assert!(answered.is_some(), "the acceptance dated the first answer");

    // The steps' events, in the order of the steps.
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT payload FROM outbox WHERE seq > $1 AND subject = 'id77.requests.request.status_changed' ORDER BY seq",
    )
    .bind(seq_before)
    .fetch_all(&pool)
    .await
    .expect("events");
    let moves: Vec<(String, String)> = payloads
        .iter()
        .map(|p| RequestStatusChanged::decode(p.as_slice()).expect("event"))
        .map(|e| (e.request_id, e.to_status))
        .collect();
    assert_eq!(
        moves,
        [(a.clone(), "referred".to_owned()), (b.clone(), "referred".to_owned()), (a.clone(), "accepted".to_owned())]
    );
    pool.close().await;
    s.stop().await;
}
