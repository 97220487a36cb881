//! Backpressure and limits, through the real binaries:
//! - the provider's consumer is down for its whole deadline (routing's clock moved forward): the referrals wait
//!   in the stream, the SLA escalates them, and once the consumer comes back every one is answered and quoted;
//! - NATS is unreachable (a private nats-server, stopped): submissions still commit, their events wait in the
//!   outbox, and the outbox drains once NATS is back (the referrals follow);
//! - PostgreSQL is slow (a lock held on the requests table): the gateway answers a 503 problem within its
//!   upstream timeout, never hangs, and a retry with the same `Idempotency-Key` once the lock is gone files each
//!   request exactly once.

use std::time::{Duration, Instant};

use id77_e2e::load::{self, Member};
use id77_e2e::{Api, NatsServer, Options, Platform, eventually};
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{Connection, PgConnection};

const WAIT: Duration = Duration::from_secs(60);

/// One member that requests already knows (a first submission went through), and a billed offer's id and provider.
async fn member_and_offer(api: &Api) -> (Member, String, String) {
    let mut members = load::join_communes(api, 1).await.expect("a commune joins");
    let mut member = members.remove(0);
    let (offer_id, provider) = load::billed_offer(api, "integrated_engineering").await.expect("a billed offer");
    let body = load::request_body(&offer_id, 0);
    let started = Instant::now();
    loop {
        let s = load::submit(api, &mut member, "first", &body, Duration::from_secs(10)).await;
        if s.request_id.is_some() {
            break;
        }
        assert!(started.elapsed() < WAIT, "the member never could submit: {s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (member, offer_id, provider)
}

async fn request_ids(api: &Api, member: &mut Member, offer_id: &str, keys: &[String]) -> Vec<String> {
    let mut ids = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        let s = load::submit(api, member, key, &load::request_body(offer_id, n as u64), Duration::from_secs(30)).await;
        let id = s.request_id.clone();
        ids.push(id.unwrap_or_else(|| panic!("{key} refused: {s:?}")));
    }
    ids
}

async fn referral_of(api: &Api, coordinator: &str, request_id: &str) -> Value {
    let path = format!("/v1/referrals?request_id={request_id}");
    eventually(&format!("a referral for {request_id}"), WAIT, || async {
        let (status, page) = api.get(&path, Some(coordinator)).await;
        (status == StatusCode::OK).then(|| page["items"].as_array().and_then(|i| i.first().cloned())).flatten()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_down_for_its_whole_deadline_loses_nothing_and_is_escalated() {
    // A one-business-day deadline, so that the consumer's absence outlasts it.
    let options = Options {
        service_env: vec![("routing".into(), "ID77_ROUTING_SLA_DAYS".into(), "1".into())],
        ..Options::default()
    };
    let mut platform = Platform::start_with(options).await.expect("platform starts");
    let api = Api::new(&platform.gateway);
    let coordinator = load::coordinator_token(&api).await.expect("coordinator");
    let (mut member, offer_id, provider) = member_and_offer(&api).await;
    let keys: Vec<String> = (1..=5).map(|n| format!("while-down-{n}")).collect();
    let ids = request_ids(&api, &mut member, &offer_id, &keys).await;

    // Nobody consumes: the referrals wait, offered. The clock passes their deadline: each is escalated.
    let mut referrals = Vec::new();
    for id in &ids {
        referrals.push(referral_of(&api, &coordinator, id).await);
    }
    let latest = referrals
        .iter()
        .filter_map(|r| r["respond_by"].as_str())
        .filter_map(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .max()
        .expect("deadlines");
    let offset = (latest.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds().max(0) as u64 + 120;
    assert!(offset >= 12 * 3600, "a one-business-day deadline is at least half a day away: {offset} s");
    platform.set_clock_offset(Duration::from_secs(offset)).expect("clock");
    for referral in &referrals {
        let id = referral["id"].as_str().expect("referral id");
        let path = format!("/v1/referrals/{id}");
        let escalated = eventually("the escalation", WAIT, || async {
            let (status, r) = api.get(&path, Some(&coordinator)).await;
            (status == StatusCode::OK && r["escalated_at"].is_string()).then_some(r)
        })
        .await;
        assert_eq!(escalated["status"], "offered", "still waiting for its provider: {escalated}");
    }

    // The consumer comes back: every referral is answered and quoted, exactly once.
    platform.start_referral_consumer(&provider, &["--rule", "accept-all"]).expect("referral consumer");
    for (id, referral) in ids.iter().zip(&referrals) {
        let path = format!("/v1/requests/{id}");
        load::wait_for(&api, &path, &member.token, WAIT, |r| r["status"] == "accepted").await.expect("accepted");
        let quotes = format!("/v1/quotes?request_id={id}");
        let page = load::wait_for(&api, &quotes, &member.token, WAIT, |p| {
            p["items"].as_array().is_some_and(|i| !i.is_empty())
        })
        .await
        .expect("a quote");
        assert_eq!(page["items"].as_array().map(Vec::len), Some(1), "{page}");
        assert_eq!(page["items"][0]["referral_id"], referral["id"], "{page}");
    }
    let (status, all) = api.get("/v1/referrals?limit=100", Some(&coordinator)).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    // One referral per request (and the member's first one, filed before).
    assert_eq!(all["items"].as_array().map(Vec::len), Some(ids.len() + 1), "one referral per request: {all}");
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nats_unreachable_writes_commit_and_the_outbox_drains_afterwards() {
    let store = std::env::temp_dir().join(format!("id77-bp-nats-{}", uuid::Uuid::new_v4().simple()));
    let mut nats = NatsServer::start(&store).await.expect("private nats-server");
    let options = Options { nats_url: Some(nats.url.clone()), ..Options::default() };
    let mut platform = Platform::start_with(options).await.expect("platform starts");
    let api = Api::new(&platform.gateway);
    let (mut member, offer_id, provider) = member_and_offer(&api).await;
    platform.start_referral_consumer(&provider, &["--rule", "accept-all"]).expect("referral consumer");
    // The consumer treats a failure before its first pull as a configuration error (it exits): NATS goes away
    // only once it is pulling.
    let log = platform.logs.join(format!("referral-consumer-{provider}.log"));
    eventually("the consumer to pull", WAIT, || async {
        std::fs::read_to_string(&log).unwrap_or_default().contains("waiting for referrals").then_some(())
    })
    .await;
    let requests_db = platform.database_url("requests").expect("requests db").to_owned();

    nats.stop();
    let keys: Vec<String> = (1..=5).map(|n| format!("without-nats-{n}")).collect();
    let started = Instant::now();
    let ids = request_ids(&api, &mut member, &offer_id, &keys).await;
    assert!(started.elapsed() < Duration::from_secs(20), "submissions without NATS took {:?}", started.elapsed());
    // Committed, and their events wait in the outbox.
    let mut conn = PgConnection::connect(&requests_db).await.expect("requests db");
    let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(&mut conn)
        .await
        .expect("outbox");
    assert!(pending >= ids.len() as i64, "{pending} events pending for {} submissions", ids.len());
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in &ids {
        let (status, request) = api.get(&format!("/v1/requests/{id}"), Some(&member.token)).await;
        assert_eq!(status, StatusCode::OK, "{request}");
        assert_eq!(request["status"], "submitted", "nothing can move without NATS: {request}");
    }

    // NATS is back: the outbox drains and the journey goes on.
    nats.start_again().await.expect("nats-server restarts");
    let started = Instant::now();
    loop {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&mut conn)
            .await
            .expect("outbox");
        if pending == 0 {
            break;
        }
        assert!(started.elapsed() < WAIT, "{pending} events still in the outbox after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in &ids {
        load::wait_for(&api, &format!("/v1/requests/{id}"), &member.token, WAIT, |r| r["status"] == "accepted")
            .await
            .expect("accepted once NATS is back");
    }
    platform.stop().await;
    drop(nats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_database_gives_a_503_problem_within_the_timeout_and_retries_file_each_request_once() {
    let mut platform = Platform::start().await.expect("platform starts");
    let api = Api::new(&platform.gateway);
    let (mut member, offer_id, _) = member_and_offer(&api).await;
    // The gateway gives up on an upstream call after 1.5 s (set after the set-up: password hashing is slow in
    // debug builds on a loaded machine).
    platform.set_env("gateway", "ID77_UPSTREAM_TIMEOUT_MS", "1500").expect("gateway env");
    platform.kill("gateway").expect("gateway stops");
    platform.restart("gateway").expect("gateway restarts");
    platform.wait_ready(WAIT).await.expect("gateway ready");
    let requests_db = platform.database_url("requests").expect("requests db").to_owned();

    // A transaction holds an exclusive lock on the requests table: every read and write of it waits.
    let mut locker = PgConnection::connect(&requests_db).await.expect("requests db");
    sqlx::raw_sql("BEGIN; LOCK TABLE request IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.expect("lock");

    let keys: Vec<String> = (1..=12).map(|n| format!("slow-{n}")).collect();
    let attempts = keys.iter().enumerate().map(|(n, key)| {
        let (http, url, token, body) = (
            api.http.clone(),
            format!("{}/v1/requests", api.base),
            member.token.clone(),
            load::request_body(&offer_id, n as u64),
        );
        let key = key.clone();
        async move {
            let started = Instant::now();
            let response = http
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", key)
                .timeout(Duration::from_secs(30))
                .json(&body)
                .send()
                .await
                .expect("the gateway answers");
            let status = response.status();
            let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let problem = response.json::<Value>().await.unwrap_or_default();
            (status, kind, problem, started.elapsed())
        }
    });
    let answers = futures::future::join_all(attempts).await;
    for (status, kind, problem, took) in &answers {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
        assert_eq!(kind.as_deref(), Some("application/problem+json"), "{problem}");
        assert_eq!(problem["status"], 503, "{problem}");
        assert!(problem["type"].as_str().is_some_and(|t| t.ends_with("unavailable")), "{problem}");
        assert!(*took < Duration::from_secs(6), "answered after {took:?}: the timeout is 1.5 s");
    }
    // Reading waits on the lock too: also a clear 503, not a hang.
    let started = Instant::now();
    let (status, problem) = api.get("/v1/requests", Some(&member.token)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    assert!(started.elapsed() < Duration::from_secs(6));

    // The lock goes: retrying each key files each request exactly once.
    sqlx::raw_sql("ROLLBACK").execute(&mut locker).await.expect("unlock");
    let ids = request_ids(&api, &mut member, &offer_id, &keys).await;
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len(), "{ids:?}");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM request WHERE idempotency_key LIKE 'slow-%'")
        .fetch_one(&mut locker)
        .await
        .expect("count");
    assert_eq!(rows, keys.len() as i64);
    let again = load::submit(&api, &mut member, &keys[0], &load::request_body(&offer_id, 0), WAIT).await;
    assert_eq!(again.request_id.as_deref(), Some(ids[0].as_str()), "same key, same request");
    platform.stop().await;
}
