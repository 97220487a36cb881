//! The gateway's JSON bodies: the whole axum app (`oneshot`, upstreams on a closed port) gets any bytes as the
//! body of a route that reads one, from a caller whose role the route admits. The answer must be a
//! problem+json 4xx, or the 503 that proves validation passed and the call went out; never a panic, never
//! another 5xx. Same check as services/gateway/tests/fuzz_bodies.rs, coverage-guided.
#![no_main]

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use id77_gateway::{AppState, Config, router};
use id77_platform::auth::Role;
use id77_platform::testing::TestKeys;
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

const ID: &str = "01a2263d-824a-72aa-9adf-e2b3bd999cae";
const MEMBER: &str = "01a2263d-824a-72aa-9adf-e2b3bd999caf";

/// Every route with a JSON body, and a role it admits.
const ROUTES: &[(&str, &str, Role)] = &[
    ("POST", "/v1/auth/token", Role::MemberUser),
    ("POST", "/v1/auth/refresh", Role::MemberUser),
    ("POST", "/v1/auth/logout", Role::MemberUser),
    ("POST", "/v1/auth/invitations/accept", Role::MemberUser),
    ("POST", "/v1/users", Role::Coordinator),
    ("POST", "/v1/memberships", Role::MemberUser),
    ("POST", "/v1/memberships/{id}/approve", Role::Coordinator),
    ("PUT", "/v1/memberships/{id}/referent", Role::Coordinator),
    ("POST", "/v1/offers", Role::Coordinator),
    ("PUT", "/v1/offers/{id}", Role::Coordinator),
    ("POST", "/v1/providers", Role::Coordinator),
    ("PUT", "/v1/providers/caue77", Role::Coordinator),
    ("POST", "/v1/exhibitions/{id}/bookings", Role::MemberAdmin),
    ("POST", "/v1/bookings/{id}/release", Role::Coordinator),
    ("POST", "/v1/requests", Role::MemberAdmin),
    ("PUT", "/v1/me/notification-preferences", Role::MemberUser),
    ("PUT", "/v1/requests/{id}/feedback", Role::MemberAdmin),
    ("POST", "/v1/requests/{id}/cancel", Role::MemberAdmin),
    ("POST", "/v1/requests/{id}/messages", Role::MemberAdmin),
    ("POST", "/v1/triage/{id}/assign", Role::Coordinator),
    ("POST", "/v1/referrals/reassign", Role::Coordinator),
    ("POST", "/v1/referrals/{id}/reassign", Role::Coordinator),
    ("POST", "/v1/referrals/{id}/withdraw", Role::Coordinator),
    ("POST", "/v1/referrals/{id}/accept", Role::ProviderAgent),
    ("POST", "/v1/referrals/{id}/decline", Role::ProviderAgent),
    ("POST", "/v1/referrals/{id}/progress", Role::ProviderAgent),
    ("POST", "/v1/routing/rules", Role::Coordinator),
    ("POST", "/v1/routing/rules/reorder", Role::Coordinator),
    ("PUT", "/v1/routing/rules/{id}", Role::Coordinator),
    ("PUT", "/v1/routing/providers/caue77/sla", Role::Coordinator),
    ("POST", "/v1/invoices/{id}/credit-note", Role::Coordinator),
];

struct World {
    runtime: tokio::runtime::Runtime,
    app: Router,
    tokens: Vec<String>,
    _keys: TestKeys,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let keys = TestKeys::new().expect("test keys");
        let mut config = Config::with_all_upstreams("http://127.0.0.1:1");
        config.jwks_file = Some(keys.jwks_file.clone());
        config.rate_per_minute = 0;
        config.auth_rate_per_minute = 0;
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
        let app = {
            // The upstream channels connect lazily, on the runtime's reactor.
            let _entered = runtime.enter();
            router(AppState::new(&config).expect("gateway state"))
        };
        let member = MEMBER.parse().expect("a valid constant uuid");
        let tokens = ROUTES
            .iter()
            .map(|(_, _, role)| match role {
                Role::MemberAdmin | Role::MemberUser => keys.token(*role, Some(member), None),
                Role::ProviderAgent => keys.token(*role, None, Some("caue77")),
                _ => keys.token(*role, None, None),
            })
            .collect();
        World { runtime, app, tokens, _keys: keys }
    })
}

fuzz_target!(|input: (u8, &[u8])| {
    let (route, body) = input;
    let w = world();
    let index = usize::from(route) % ROUTES.len();
    let (method, path, _) = ROUTES[index];
    let uri = path.replace("{id}", ID);
    let request = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("a valid constant method"))
        .uri(&uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {}", w.tokens[index]))
        .header("Idempotency-Key", "fuzz")
        .body(Body::from(body.to_vec()))
        .expect("a valid request");
    let (status, kind, bytes) = w.runtime.block_on(async {
        let response = match w.app.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let kind = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("a readable answer");
        (status, kind, bytes)
    });
    let text = String::from_utf8_lossy(&bytes);
    assert!(!status.is_server_error() || status == StatusCode::SERVICE_UNAVAILABLE, "{method} {uri}: {status} {text}");
    if status.is_client_error() || status.is_server_error() {
        assert_eq!(kind.as_deref(), Some("application/problem+json"), "{method} {uri}: {status} {text}");
        let problem: serde_json::Value = serde_json::from_slice(&bytes).expect("a JSON problem");
        assert_eq!(problem["status"], status.as_u16(), "{method} {uri}: {text}");
    }
});
