//! A batch of routing's referral events applied by requests' consumer in one transaction, its requests locked and
//! its providers' names read once for the batch (issue 23): each request moves as it would one event at a time, a
//! request's second event sees what its first did, a bad event sends the batch back to one event per transaction,
//! and a batch delivered again changes nothing.

use id77_platform::consumer::{self, Outcome};
use id77_platform::{Event, HandleError};
use id77_proto::catalogue::v1::OfferCategory;
use id77_proto::requests::v1::RequestStatus;
use id77_proto::routing::v1::ReferralAccepted;
use id77_requests::events::ReferralEvents;
use prost::Message;
use uuid::Uuid;

mod support;

use support::*;

fn event(subject: &str, message: &impl Message) -> Event {
    Event {
        subject: subject.into(),
        message_id: Uuid::now_v7().to_string(),
        event_type: String::new(),
        payload: message.encode_to_vec().into(),
        headers: Default::default(),
        delivered: 1,
    }
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
    let member = Uuid::now_v7();
    s.approve(member, true).await;
    let offer = s.offer("caue77", OfferCategory::IntegratedEngineering).await;
    let user = s.user(member);
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
