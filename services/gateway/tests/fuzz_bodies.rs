//! The gateway's JSON bodies under arbitrary input: every route that reads a body gets random bytes and random
//! JSON (with the field names the routes read), from a caller whose role the route admits, through the whole
//! axum app (`oneshot`, upstreams on a closed port). Whatever comes in, the answer is a problem+json with a
//! 4xx, or the 503 that proves validation passed and the call went out; never a panic, never another 5xx.
//! `make fuzz` runs the same through libFuzzer (fuzz/fuzz_targets/gateway_json.rs).

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use id77_gateway::{AppState, Config, router};
use id77_platform::auth::Role;
use id77_platform::testing::TestKeys;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use tower::ServiceExt;
use uuid::Uuid;

const ID: &str = "01a2263d-824a-72aa-9adf-e2b3bd999cae";

/// Every route with a JSON body, and a role it admits.
fn routes() -> Vec<(Method, String, Role)> {
    let post = |path: &str, role| (Method::POST, path.replace("{id}", ID), role);
    let put = |path: &str, role| (Method::PUT, path.replace("{id}", ID), role);
    vec![
        post("/v1/auth/token", Role::MemberUser),
        post("/v1/auth/refresh", Role::MemberUser),
        post("/v1/auth/logout", Role::MemberUser),
        post("/v1/auth/invitations/accept", Role::MemberUser),
        post("/v1/users", Role::Coordinator),
        post("/v1/memberships", Role::MemberUser),
        post("/v1/memberships/{id}/approve", Role::Coordinator),
        put("/v1/memberships/{id}/referent", Role::Coordinator),
        post("/v1/offers", Role::Coordinator),
        put("/v1/offers/{id}", Role::Coordinator),
        post("/v1/providers", Role::Coordinator),
        put("/v1/providers/caue77", Role::Coordinator),
        post("/v1/exhibitions/{id}/bookings", Role::MemberAdmin),
        post("/v1/bookings/{id}/release", Role::Coordinator),
        post("/v1/requests", Role::MemberAdmin),
        put("/v1/me/notification-preferences", Role::MemberUser),
        post("/v1/referrals/reassign", Role::Coordinator),
        post("/v1/referrals/{id}/reassign", Role::Coordinator),
        post("/v1/referrals/{id}/withdraw", Role::Coordinator),
        post("/v1/routing/rules", Role::Coordinator),
        post("/v1/routing/rules/reorder", Role::Coordinator),
        put("/v1/routing/rules/{id}", Role::Coordinator),
        put("/v1/routing/providers/caue77/sla", Role::Coordinator),
        post("/v1/invoices/{id}/credit-note", Role::Coordinator),
        post("/v1/quotes/{id}/accept", Role::MemberAdmin),
        post("/v1/quotes/{id}/refuse", Role::MemberAdmin),
    ]
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::from(ID)),
        Just(serde_json::Value::from("2026-12-01")),
        Just(serde_json::Value::from("217702844")),
    ];
    let field = prop_oneof![
        "[a-z_]{1,16}",
        proptest::sample::select(vec![
            "offer_id",
            "subject",
            "description",
            "email",
            "password",
            "siren",
            "contact_name",
            "contact_email",
            "role",
            "member_id",
            "display_name",
            "from",
            "to",
            "reason",
            "provider_code",
            "referent_user_id",
            "code",
            "title",
            "category",
            "price",
            "condition",
            "rules",
            "ids",
            "business_days",
            "refresh_token",
            "invitation_token",
            "name",
            "themes",
            "amount_cents",
            "kind",
            "signatory_name",
            "purchase_order_number",
        ])
        .prop_map(str::to_owned),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(field.clone(), inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => json().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

async fn answer(app: &Router, method: Method, uri: &str, token: &str, body: Vec<u8>) -> Result<(), String> {
    let request = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("Idempotency-Key", "fuzz")
        .body(Body::from(body))
        .map_err(|e| e.to_string())?;
    let response = match app.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let kind = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&bytes);
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        return Err(format!("{method} {uri}: {status} {text}"));
    }
    if status.is_client_error() || status.is_server_error() {
        if kind.as_deref() != Some("application/problem+json") {
            return Err(format!("{method} {uri}: {status} without problem+json: {text}"));
        }
        let problem: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| format!("{e}: {text}"))?;
        if problem["status"] != status.as_u16() {
            return Err(format!("{method} {uri}: {status} but the problem says {text}"));
        }
    }
    Ok(())
}

#[test]
fn any_body_on_any_route_is_a_problem_or_reaches_the_upstream() {
    let keys = TestKeys::new().unwrap_or_else(|e| panic!("test keys: {e:#}"));
    let mut config = Config::with_all_upstreams("http://127.0.0.1:1");
    config.jwks_file = Some(keys.jwks_file.clone());
    config.rate_per_minute = 0;
    config.auth_rate_per_minute = 0;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    // The upstream channels connect lazily, on the runtime's reactor.
    let _entered = runtime.enter();
    let app = router(AppState::new(&config).unwrap_or_else(|e| panic!("state: {e:#}")));
    let member = Uuid::now_v7();
    let routes = routes();
    let mut runner = TestRunner::new(RunnerConfig { cases: 400, failure_persistence: None, ..RunnerConfig::default() });
    let outcome = runner.run(&(0..routes.len(), body()), |(route, body)| {
        let (method, uri, role) = routes[route].clone();
        let token = match role {
            Role::MemberAdmin | Role::MemberUser => keys.token(role, Some(member), None),
            _ => keys.token(role, None, None),
        };
        runtime.block_on(answer(&app, method, &uri, &token, body)).map_err(TestCaseError::fail)
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}
