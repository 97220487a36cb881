//! `GET /v1/operations` through the whole router, on the real NATS (`ID77_NATS_URL`, a fresh prefix): only the
//! operator reads it (401 without a token, 403 for every other role); the outbox backlog comes from a service's
//! metrics endpoint, the dead letters from the DEADLETTER stream, a durable consumer's lag from JetStream.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use id77_gateway::{AppState, Config, router};
use id77_platform::Namespace;
use id77_platform::auth::Role;
use id77_platform::testing::{self, TestKeys};
use id77_proto::events::{self, durables, streams};
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const METRICS: &str = "# TYPE id77_outbox_pending gauge\nid77_outbox_pending{service=\"routing\"} 4\n\
id77_outbox_oldest_pending_age_seconds{service=\"routing\"} 2.5\n";

async fn call(app: axum::Router, token: Option<&str>) -> Result<(StatusCode, Value), Box<dyn std::error::Error>> {
    let mut request = Request::get("/v1/operations");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app.oneshot(request.body(Body::empty())?).await?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await?;
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}

#[tokio::test]
async fn only_the_operator_reads_the_backlogs_the_lag_and_the_dead_letters() -> TestResult {
    let keys = TestKeys::new()?;
    // A routing metrics endpoint.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let metrics = format!("http://{}/metrics", listener.local_addr()?);
    let page = axum::Router::new().route("/metrics", axum::routing::get(|| async { METRICS }));
    tokio::spawn(async move { axum::serve(listener, page).await });
    // JetStream under a fresh prefix: two dead letters of routing-requests, and routing-requests' consumer with
    // one message waiting.
    let prefix = testing::fresh_prefix();
    let ns = Namespace::new(prefix.clone());
    let (_client, js) = id77_platform::nats::connect(&testing::nats_url(), "test").await?;
    for def in [streams::DEADLETTER, streams::REQUESTS] {
        id77_platform::nats::ensure_stream(&js, &ns, def).await?;
    }
    let durable = durables::ROUTING_REQUESTS;
    for _ in 0..2 {
        js.publish(ns.subject(&events::deadletter(durable.name)), "x".into()).await?.await?;
    }
    let requests = js.get_stream(ns.stream(streams::REQUESTS.name)).await?;
    requests
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some(durable.name.to_owned()),
            filter_subject: ns.subject(durable.reads.filter),
            ..Default::default()
        })
        .await?;
    js.publish(ns.subject(durable.reads.filter), "x".into()).await?.await?;

    let mut config = Config::with_all_upstreams("http://127.0.0.1:1");
    config.jwks_file = Some(keys.jwks_file.clone());
    config.operations_metrics = vec![("routing".to_owned(), metrics)];
    config.nats = Some(id77_gateway::live::NatsSettings { url: testing::nats_url(), prefix, nkey_file: None });
    let app = router(AppState::new(&config)?);

    assert_eq!(call(app.clone(), None).await?.0, StatusCode::UNAUTHORIZED);
    let member = Some(Uuid::now_v7());
    for (role, member, provider) in [
        (Role::MemberAdmin, member, None),
        (Role::MemberUser, member, None),
        (Role::ProviderAgent, None, Some("caue77")),
        (Role::Referent, None, None),
        (Role::Coordinator, None, None),
    ] {
        let (status, body) = call(app.clone(), Some(&keys.token(role, member, provider))).await?;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}: {body}");
    }

    let (status, body) = call(app, Some(&keys.token(Role::Operator, None, None))).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outbox = |service: &str| body["outboxes"].as_array().and_then(|l| l.iter().find(|o| o["service"] == service));
    let routing = outbox("routing").ok_or("routing's outbox")?;
    assert_eq!(
        (&routing["state"], &routing["pending"], &routing["oldest_pending_age_seconds"]),
        (&"ok".into(), &4.into(), &2.5.into())
    );
    assert_eq!(outbox("billing").ok_or("billing's outbox")?["state"], "not_configured");
    assert_eq!(body["jetstream"], "ok", "{body}");
    assert_eq!(body["dead_letters_total"], 2, "{body}");
    let consumer =
        |name: &str| body["consumers"].as_array().and_then(|l| l.iter().find(|c| c["durable"] == name)).cloned();
    let lag = consumer(durable.name).ok_or("routing-requests")?;
    assert_eq!(
        (&lag["state"], &lag["pending"], &lag["ack_pending"], &lag["dead_letters"]),
        (&"ok".into(), &1.into(), &0.into(), &2.into())
    );
    let absent = consumer(durables::BILLING_OFFERS.name).ok_or("billing-offers")?;
    assert_eq!(
        (&absent["state"], &absent["pending"], &absent["dead_letters"]),
        (&"missing".into(), &Value::Null, &0.into())
    );
    assert_eq!(body["consumers"].as_array().map(Vec::len), Some(durables::ALL.len()));
    testing::delete_streams(&js, &ns).await;
    Ok(())
}
