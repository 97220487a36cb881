//! The revocation feeds against the real NATS of this machine: a service's ordered consumer replays the
//! revocations already on stream MEMBERSHIP when it starts (a restarted service relearns them) and learns new
//! ones as they come; the gateway's core subscription learns new ones.

use std::time::Duration;

use id77_platform::auth::{Claims, Role};
use id77_platform::revocation::{self, Revocations};
use id77_platform::{Namespace, nats, streams, testing};
use id77_proto::membership::v1::AccessRevoked;
use prost::Message;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn event(user: &str, session: &str) -> AccessRevoked {
    let now = chrono::Utc::now();
    let until = now + chrono::TimeDelta::from_std(revocation::lifetime()).expect("delta");
    AccessRevoked {
        user_id: user.to_owned(),
        session_id: session.to_owned(),
        reason: revocation::reason::LOGOUT.to_owned(),
        revoked_at: Some(id77_platform::time::to_proto(now)),
        valid_until: Some(id77_platform::time::to_proto(until)),
    }
}

fn claims(user: &str, session: &str) -> Claims {
    let mut c = Claims::new(Uuid::now_v7(), Role::MemberUser, chrono::Utc::now().timestamp() - 5);
    c.sub = user.to_owned();
    c.sid = session.to_owned();
    c
}

async fn learns(revocations: &Revocations, claims: &Claims, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if revocations.is_revoked(claims, chrono::Utc::now().timestamp()) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn a_starting_service_replays_past_revocations_and_follows_new_ones() {
    let (client, js) = nats::connect(&testing::nats_url(), "platform-test").await.expect("nats");
    let ns = Namespace::new(testing::fresh_prefix());
    nats::ensure_stream(&js, &ns, streams::MEMBERSHIP).await.expect("stream");
    // Published before the service starts (it was down, or restarting).
    let (past_user, past_session) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    js.publish(ns.subject(revocation::SUBJECT), event(&past_user, &past_session).encode_to_vec().into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    let removed = Uuid::now_v7().to_string();
    js.publish(ns.subject(revocation::SUBJECT), event(&removed, "").encode_to_vec().into())
        .await
        .expect("publish")
        .await
        .expect("ack");

    let revocations = Revocations::new();
    let shutdown = CancellationToken::new();
    let feed = tokio::spawn(revocation::follow(js.clone(), ns.clone(), revocations.clone(), shutdown.clone()));
    assert!(learns(&revocations, &claims(&past_user, &past_session), Duration::from_secs(5)).await, "replayed");
    assert!(learns(&revocations, &claims(&removed, "any-session"), Duration::from_secs(1)).await, "user replayed");
    assert!(revocations.is_following());
    assert!(!revocations.is_revoked(&claims(&past_user, "another-session"), chrono::Utc::now().timestamp()));

    // The gateway's core subscription, next to it.
    let gateway = Revocations::new();
    let subscribed = tokio::spawn(revocation::follow_subscription(
        testing::nats_url(),
        "gateway-test",
        None,
        ns.clone(),
        gateway.clone(),
        shutdown.clone(),
    ));
    for _ in 0..100 {
        if gateway.is_following() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gateway.is_following());
    assert!(gateway.is_empty(), "a core subscription replays nothing");

    // A new revocation reaches both.
    let (user, session) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    let started = std::time::Instant::now();
    js.publish(ns.subject(revocation::SUBJECT), event(&user, &session).encode_to_vec().into())
        .await
        .expect("publish")
        .await
        .expect("ack");
    assert!(learns(&revocations, &claims(&user, &session), Duration::from_secs(5)).await, "followed");
    assert!(learns(&gateway, &claims(&user, &session), Duration::from_secs(5)).await, "subscribed");
    println!("new revocation learned by both feeds in {} ms", started.elapsed().as_millis());

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), feed).await.expect("the feed stops").expect("join");
    tokio::time::timeout(Duration::from_secs(5), subscribed).await.expect("the subscription stops").expect("join");
    testing::delete_streams(&js, &ns).await;
    drop(client);
}
