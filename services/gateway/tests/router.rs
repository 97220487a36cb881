//! Router-level tests: the whole axum app driven with `oneshot`, every upstream pointed at a closed port
//! (127.0.0.1:1), so what is tested is the gateway's own behaviour: routing, identity, validation, limits and
//! problem+json. The end-to-end suite drives the real services through it.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use id77_gateway::{AppState, Config, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const CLOSED: &str = "http://127.0.0.1:1";
const MEMBER: &str = "member:0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
const DEV: &str = "x-id77-dev-identity";

fn app(dev_identity: bool) -> Router {
    let config = Config::with_all_upstreams(CLOSED, dev_identity);
    match AppState::new(&config) {
        Ok(state) => router(state),
        Err(error) => panic!("state: {error:#}"),
    }
}

struct Reply {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts a problem+json with this status and returns its body.
    fn problem(&self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.content_type, "application/problem+json", "{}", self.text);
        let body = self.json();
        assert_eq!(body["status"], status, "{body}");
        assert!(
            body["type"].as_str().is_some_and(|t| t.starts_with("https://id77.seine-et-marne.fr/problems/")),
            "{body}"
        );
        assert!(body["title"].is_string() && body["detail"].is_string() && body["errors"].is_array(), "{body}");
        body
    }

    fn field_errors(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }
}

async fn send(app: Router, request: Request<Body>) -> Reply {
    let response = match app.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let content_type =
        response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let bytes = match axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await {
        Ok(bytes) => bytes,
        Err(error) => panic!("body: {error}"),
    };
    Reply { status, content_type, text: String::from_utf8_lossy(&bytes).into_owned() }
}

fn get(uri: &str, identity: Option<&str>) -> Request<Body> {
    let mut builder = Request::get(uri);
    if let Some(identity) = identity {
        builder = builder.header(DEV, identity);
    }
    builder.body(Body::empty()).unwrap_or_else(|e| panic!("{e}"))
}

fn post_json(uri: &str, identity: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(identity) = identity {
        builder = builder.header(DEV, identity);
    }
    builder.body(body.into()).unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn healthz_is_ok() {
    let reply = send(app(false), get("/healthz", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text, "ok");
}

#[tokio::test]
async fn openapi_is_3_1_and_describes_every_route() {
    let reply = send(app(false), get("/openapi.json", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type.starts_with("application/json"));
    let doc = reply.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let operations = [
        ("get", "/v1/collectivities"),
        ("get", "/v1/collectivities/{siren}"),
        ("post", "/v1/memberships"),
        ("get", "/v1/memberships"),
        ("get", "/v1/memberships/{id}"),
        ("post", "/v1/memberships/{id}/approve"),
        ("get", "/v1/offers"),
        ("get", "/v1/offers/{id}"),
        ("get", "/v1/providers"),
        ("post", "/v1/requests"),
        ("get", "/v1/requests"),
        ("get", "/v1/requests/{id}"),
        ("get", "/v1/referrals"),
        ("get", "/v1/referrals/{id}"),
        ("get", "/v1/quotes"),
        ("get", "/v1/quotes/{id}"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
    ];
    for (method, path) in operations {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "no {method} {path} in /openapi.json");
        assert!(op["responses"].is_object(), "{method} {path} has no responses");
    }
    let paths = doc["paths"].as_object().map(|p| p.len()).unwrap_or_default();
    assert_eq!(paths, 18, "a path in /openapi.json that the router does not serve?");

    // Every $ref resolves.
    fn refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r.clone());
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let pointer = r.trim_start_matches('#');
        assert!(doc.pointer(pointer).is_some(), "dangling {r}");
    }
    // Error responses are problem+json.
    assert!(doc.pointer("/components/responses/BadRequest/content/application~1problem+json").is_some());
}

#[tokio::test]
async fn docs_page_is_self_contained_html() {
    let reply = send(app(false), get("/docs", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type.starts_with("text/html"));
    assert!(reply.text.contains("/openapi.json"));
    assert!(!reply.text.contains("<script src"), "no external scripts: the machine has no internet");
    assert!(!reply.text.contains("https://cdn"), "no CDN");
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let reply = send(app(false), post_json("/v1/memberships", None, "{\"siren\": ")).await;
    let body = reply.problem(400);
    assert_eq!(body["type"], "https://id77.seine-et-marne.fr/problems/malformed-json");
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_400_problems() {
    let reply = send(app(false), post_json("/v1/memberships", None, r#"{"siren": 217700014}"#)).await;
    reply.problem(400);
    let reply = send(app(false), post_json("/v1/memberships", None, "{}")).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["siren", "contact_name", "contact_email"]);
    let reply = send(app(false), post_json("/v1/memberships", None, "[]")).await;
    reply.problem(400);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415_problem() {
    let request = Request::post("/v1/memberships")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("siren=1"))
        .unwrap_or_else(|e| panic!("{e}"));
    send(app(false), request).await.problem(415);
}

#[tokio::test]
async fn an_oversized_body_is_a_413_problem() {
    let big = json!({ "siren": "217700014", "contact_name": "x".repeat(70 * 1024), "contact_email": "a@b.fr" });
    let reply = send(app(false), post_json("/v1/memberships", None, big.to_string())).await;
    reply.problem(413);
    // Also when the client does not announce the length.
    let stream = futures_like_chunks(vec![b'{'; 80 * 1024]);
    let reply = send(app(true), post_json("/v1/requests", Some(MEMBER), stream)).await;
    reply.problem(413);
}

/// A body without Content-Length.
fn futures_like_chunks(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes.chunks(8 * 1024).map(|c| Ok(c.to_vec())).collect();
    Body::from_stream(futures::stream::iter(chunks))
}

#[tokio::test]
async fn anonymous_submission_is_a_401_problem() {
    let body = json!({ "offer_id": "voirie-diagnostic", "subject": "s", "description": "d" }).to_string();
    let reply = send(app(true), post_json("/v1/requests", None, body.clone())).await;
    let problem = reply.problem(401);
    assert_eq!(problem["type"], "https://id77.seine-et-marne.fr/problems/unauthenticated");
    // Authentication comes before the body is even read.
    send(app(true), post_json("/v1/requests", None, "{nope")).await.problem(401);
    // With the dev identity off, the header is ignored: still anonymous.
    send(app(false), post_json("/v1/requests", Some(MEMBER), body)).await.problem(401);
}

#[tokio::test]
async fn only_members_submit_requests() {
    let body = json!({ "offer_id": "o", "subject": "s", "description": "d" }).to_string();
    for who in ["coordinator", "operator", "provider:caue77"] {
        send(app(true), post_json("/v1/requests", Some(who), body.clone())).await.problem(403);
    }
    send(app(true), post_json("/v1/requests", Some("member:not-a-uuid"), body)).await.problem(401);
}

#[tokio::test]
async fn a_too_long_subject_is_a_field_error() {
    let body = json!({ "offer_id": "o", "subject": "é".repeat(201), "description": "d".repeat(10_000) });
    let reply = send(app(true), post_json("/v1/requests", Some(MEMBER), body.to_string())).await;
    let problem = reply.problem(400);
    assert_eq!(problem["type"], "https://id77.seine-et-marne.fr/problems/invalid-argument");
    assert_eq!(reply.field_errors(), ["subject"]);
    assert_eq!(problem["errors"][0]["detail"], "must be at most 200 characters");

    let body = json!({ "offer_id": "o", "subject": "s", "description": "d".repeat(10_001) });
    let reply = send(app(true), post_json("/v1/requests", Some(MEMBER), body.to_string())).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["description"]);

    let request = Request::post("/v1/requests")
        .header(header::CONTENT_TYPE, "application/json")
        .header(DEV, MEMBER)
        .header("Idempotency-Key", "k".repeat(129))
        .body(Body::from(json!({ "offer_id": "o", "subject": "s" }).to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    let reply = send(app(true), request).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["Idempotency-Key"]);
}

#[tokio::test]
async fn query_parameters_are_checked_before_forwarding() {
    let reply = send(app(false), get(&format!("/v1/collectivities?q={}", "a".repeat(101)), None)).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["q"]);
    let reply = send(app(false), get("/v1/collectivities?kind=region&limit=0", None)).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["kind", "limit"]);
    let reply = send(app(false), get("/v1/offers?category=food&limit=101", None)).await;
    assert_eq!(reply.field_errors(), ["category", "limit"]);
    let reply = send(app(true), get("/v1/memberships?status=gone", Some("operator"))).await;
    assert_eq!(reply.field_errors(), ["status"]);
    // Staff must say whose requests they want.
    let reply = send(app(true), get("/v1/requests", Some("coordinator"))).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["member_id"]);
    // Duplicate parameters are a problem, not a plain-text rejection.
    send(app(false), get("/v1/offers?limit=1&limit=2", None)).await.problem(400);
}

#[tokio::test]
async fn roles_are_checked_per_route() {
    let cases: &[(&str, Option<&str>, u16)] = &[
        ("/v1/memberships", None, 401),
        ("/v1/memberships", Some(MEMBER), 403),
        ("/v1/memberships", Some("provider:caue77"), 403),
        ("/v1/memberships/0190a1b2-c3d4-7e5f-8a9b-000000000000", Some(MEMBER), 403),
        ("/v1/requests", None, 401),
        ("/v1/requests", Some("provider:caue77"), 403),
        ("/v1/requests?member_id=0190a1b2-c3d4-7e5f-8a9b-000000000000", Some(MEMBER), 403),
        ("/v1/requests/x", Some("provider:caue77"), 403),
        ("/v1/referrals", None, 401),
        ("/v1/referrals", Some(MEMBER), 403),
        ("/v1/referrals?provider=other", Some("provider:caue77"), 403),
        ("/v1/referrals/x", Some(MEMBER), 403),
        ("/v1/quotes", None, 401),
        ("/v1/quotes", Some("provider:caue77"), 403),
        ("/v1/quotes?member_id=0190a1b2-c3d4-7e5f-8a9b-000000000000", Some(MEMBER), 403),
    ];
    for (uri, who, status) in cases {
        let reply = send(app(true), get(uri, *who)).await;
        assert_eq!(reply.status.as_u16(), *status, "{who:?} GET {uri}: {}", reply.text);
        reply.problem(*status);
    }
    let approve = |who: Option<&str>| {
        let mut builder = Request::post("/v1/memberships/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/approve");
        if let Some(who) = who {
            builder = builder.header(DEV, who);
        }
        builder.body(Body::empty()).unwrap_or_else(|e| panic!("{e}"))
    };
    send(app(true), approve(None)).await.problem(401);
    send(app(true), approve(Some("operator"))).await.problem(403);
    send(app(true), approve(Some(MEMBER))).await.problem(403);
}

#[tokio::test]
async fn a_malformed_dev_identity_is_a_401_problem() {
    send(app(true), get("/v1/memberships", Some("root"))).await.problem(401);
    // Ignored when the feature is off: the public routes still work as anonymous.
    let reply = send(app(false), get("/v1/memberships", Some("root"))).await;
    reply.problem(401);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problems() {
    let reply = send(app(false), get("/v1/nothing-here", None)).await;
    let body = reply.problem(404);
    assert_eq!(body["type"], "https://id77.seine-et-marne.fr/problems/not-found");
    send(app(false), get("/", None)).await.problem(404);
    let delete = Request::delete("/v1/offers").body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
    send(app(false), delete).await.problem(405);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_503_problem() {
    let reply = send(app(false), get("/v1/offers?category=exhibition_loan&limit=5", None)).await;
    let body = reply.problem(503);
    assert_eq!(body["type"], "https://id77.seine-et-marne.fr/problems/unavailable");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("catalogue")), "{body}");

    let reply = send(app(true), get("/v1/requests/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", Some(MEMBER))).await;
    reply.problem(503);
    let valid = json!({ "siren": "217700014", "contact_name": "M. D", "contact_email": "m@d.fr" }).to_string();
    send(app(false), post_json("/v1/memberships", None, valid)).await.problem(503);
}

#[tokio::test]
async fn readiness_lists_the_upstreams_that_do_not_serve() {
    let reply = send(app(false), get("/readyz", None)).await;
    let body = reply.problem(503);
    let mut fields = reply.field_errors();
    fields.sort();
    assert_eq!(fields, ["billing", "catalogue", "membership", "requests", "routing"], "{body}");
}

#[tokio::test]
async fn run_serves_until_shutdown() {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(error) => panic!("bind: {error}"),
    };
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(id77_gateway::run(Config::with_all_upstreams(CLOSED, true), listener, shutdown.clone()));
    let client = reqwest::Client::new();
    let response = client.get(format!("http://{addr}/healthz")).send().await;
    let response = response.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status().as_u16(), 200);
    let response = client.get(format!("http://{addr}/v1/providers")).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
    shutdown.cancel();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(15), server).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
}
