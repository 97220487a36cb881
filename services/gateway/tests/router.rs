//! Router-level tests: the whole axum app driven with `oneshot`, tokens minted with `TestKeys` (the gateway
//! verifies them with the test JWKS file), every upstream pointed at a closed port (127.0.0.1:1). So what is
//! tested is the gateway's own behaviour: authentication, the role checks it makes before calling a service
//! (a 503 proves a check passed and the call went out), validation, limits, hardening and problem+json. The
//! end-to-end suite drives the real services through it.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use id77_gateway::{AppState, Config, router};
use id77_platform::auth::{Claims, KeyPair, Role};
use id77_platform::testing::TestKeys;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

const CLOSED: &str = "http://127.0.0.1:1";
const PROVIDER: &str = "caue77";

fn keys() -> TestKeys {
    TestKeys::new().unwrap_or_else(|e| panic!("test keys: {e:#}"))
}

fn config(keys: &TestKeys) -> Config {
    let mut config = Config::with_all_upstreams(CLOSED);
    config.jwks_file = Some(keys.jwks_file.clone());
    config
}

fn app_with(config: &Config) -> Router {
    match AppState::new(config) {
        Ok(state) => router(state),
        Err(error) => panic!("state: {error:#}"),
    }
}

fn app(keys: &TestKeys) -> Router {
    app_with(&config(keys))
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    content_type: String,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
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
    let headers = response.headers().clone();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let bytes = match axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024).await {
        Ok(bytes) => bytes,
        Err(error) => panic!("body: {error}"),
    };
    Reply { status, headers, content_type, text: String::from_utf8_lossy(&bytes).into_owned() }
}

/// A request with an optional bearer token and JSON body.
fn call(method: Method, uri: &str, token: Option<&str>, body: Option<Value>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    builder.body(body).unwrap_or_else(|e| panic!("{e}"))
}

fn get(uri: &str, token: Option<&str>) -> Request<Body> {
    call(Method::GET, uri, token, None)
}

fn post_json(uri: &str, token: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut builder = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    builder.body(body.into()).unwrap_or_else(|e| panic!("{e}"))
}

/// The request as if it came from this peer address.
fn from_peer(mut request: Request<Body>, peer: [u8; 4]) -> Request<Body> {
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from((peer, 40_000))));
    request
}

fn member_user(keys: &TestKeys, member: Uuid) -> String {
    keys.token(Role::MemberUser, Some(member), None)
}

// ---- basics ------------------------------------------------------------------------------------------------

#[tokio::test]
async fn healthz_is_ok() {
    let keys = keys();
    let reply = send(app(&keys), get("/healthz", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text, "ok");
}

#[tokio::test]
async fn openapi_is_3_1_and_describes_every_route() {
    let keys = keys();
    let reply = send(app(&keys), get("/openapi.json", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type.starts_with("application/json"));
    let doc = reply.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let public = [
        ("get", "/v1/collectivities"),
        ("get", "/v1/collectivities/{siren}"),
        ("post", "/v1/memberships"),
        ("get", "/v1/offers/{id}"),
        ("get", "/v1/providers"),
        ("get", "/v1/exhibitions/{id}/availability"),
        ("post", "/v1/auth/token"),
        ("post", "/v1/auth/refresh"),
        ("post", "/v1/auth/logout"),
        ("post", "/v1/auth/invitations/accept"),
        ("post", "/v1/auth/password-reset"),
        ("post", "/v1/auth/password-reset/confirm"),
        ("get", "/.well-known/jwks.json"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
    ];
    let protected = [
        ("get", "/v1/me"),
        ("put", "/v1/me/password"),
        ("post", "/v1/memberships/{id}/refuse"),
        ("get", "/v1/me/notification-preferences"),
        ("put", "/v1/me/notification-preferences"),
        ("get", "/v1/events"),
        ("post", "/v1/auth/keys/rotate"),
        ("get", "/v1/users"),
        ("post", "/v1/users"),
        ("delete", "/v1/users/{id}"),
        ("get", "/v1/audit-events"),
        ("get", "/v1/operations"),
        ("get", "/v1/memberships"),
        ("get", "/v1/memberships/{id}"),
        ("post", "/v1/memberships/{id}/approve"),
        ("put", "/v1/memberships/{id}/referent"),
        ("post", "/v1/requests"),
        ("get", "/v1/requests"),
        ("get", "/v1/requests/{id}"),
        ("get", "/v1/requests/summary"),
        ("post", "/v1/requests/{id}/cancel"),
        ("post", "/v1/requests/{id}/close"),
        ("put", "/v1/requests/{id}/feedback"),
        ("get", "/v1/statistics/requests"),
        ("get", "/v1/triage"),
        ("post", "/v1/triage/{request_id}/assign"),
        ("get", "/v1/referrals"),
        ("get", "/v1/referrals/{id}"),
        ("post", "/v1/referrals/reassign"),
        ("post", "/v1/referrals/{id}/reassign"),
        ("post", "/v1/referrals/{id}/withdraw"),
        ("post", "/v1/referrals/{id}/accept"),
        ("post", "/v1/referrals/{id}/decline"),
        ("post", "/v1/referrals/{id}/complete"),
        ("post", "/v1/referrals/{id}/progress"),
        ("get", "/v1/requests/{id}/routing"),
        ("get", "/v1/requests/{id}/messages"),
        ("post", "/v1/requests/{id}/messages"),
        ("post", "/v1/requests/{id}/messages/read"),
        ("post", "/v1/requests/{id}/attachments"),
        ("get", "/v1/requests/{id}/attachments/{attachment_id}"),
        ("get", "/v1/routing/rules"),
        ("post", "/v1/routing/rules"),
        ("post", "/v1/routing/rules/reorder"),
        ("put", "/v1/routing/rules/{id}"),
        ("delete", "/v1/routing/rules/{id}"),
        ("put", "/v1/routing/providers/{code}/sla"),
        ("get", "/v1/quotes"),
        ("get", "/v1/quotes/{id}"),
        ("post", "/v1/quotes/{id}/accept"),
        ("post", "/v1/quotes/{id}/refuse"),
        ("get", "/v1/invoices"),
        ("get", "/v1/invoices/{id}"),
        ("post", "/v1/invoices/{id}/credit-note"),
        ("post", "/v1/invoices/{id}/sent"),
        ("post", "/v1/invoices/{id}/paid"),
        ("get", "/v1/credit-notes/{id}"),
        ("post", "/v1/offers"),
        ("put", "/v1/offers/{id}"),
        ("post", "/v1/offers/{id}/publish"),
        ("post", "/v1/offers/{id}/archive"),
        ("post", "/v1/providers"),
        ("put", "/v1/providers/{code}"),
        ("post", "/v1/exhibitions/{id}/bookings"),
        ("post", "/v1/bookings/{id}/confirm"),
        ("post", "/v1/bookings/{id}/release"),
        ("get", "/v1/notifications"),
        ("post", "/v1/notifications/{id}/read"),
        ("post", "/v1/notifications/read-all"),
        ("post", "/v1/offers/{id}/sessions"),
        ("post", "/v1/sessions/{id}/cancel"),
        ("get", "/v1/sessions/{id}/registrations"),
        ("post", "/v1/sessions/{id}/registrations"),
        ("post", "/v1/sessions/{id}/attendance"),
        ("post", "/v1/sessions/{id}/rating"),
        ("get", "/v1/sessions/{id}/attendance-sheet"),
        ("get", "/v1/registrations"),
        ("post", "/v1/registrations/{id}/cancel"),
        ("get", "/v1/registrations/{id}/attestation"),
        ("post", "/v1/me/calendar-feed"),
        ("delete", "/v1/me/calendar-feed"),
        ("get", "/v1/session-statistics"),
    ];
    // Training sessions: public reads (a token, when sent, shows more) and the calendars by id or feed token.
    for path in ["/v1/offers/{id}/sessions", "/v1/sessions", "/v1/sessions/{id}"] {
        assert_eq!(doc["paths"][path]["get"]["security"], json!([{}, {"bearerAuth": []}]), "{path}");
    }
    for path in ["/v1/sessions/{id}/calendar", "/v1/calendar-feeds/{token}"] {
        assert_eq!(doc["paths"][path]["get"]["security"], json!([{}]), "{path}");
    }
    // Search is public; `eligible=true` needs a member's token.
    assert_eq!(doc["paths"]["/v1/offers"]["get"]["security"], json!([{}, {"bearerAuth": []}]));
    for (method, path) in public {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "no {method} {path} in /openapi.json");
        assert!(op["responses"].is_object(), "{method} {path} has no responses");
        assert_eq!(op["security"], json!([{}]), "{method} {path} is public");
    }
    for (method, path) in protected {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "no {method} {path} in /openapi.json");
        assert_eq!(op["security"], json!([{"bearerAuth": []}]), "{method} {path} needs a token");
        assert!(op["responses"]["401"].is_object(), "{method} {path} has no 401");
        assert!(op["responses"]["429"].is_object(), "{method} {path} has no 429");
    }
    let paths = doc["paths"].as_object().map(|p| p.len()).unwrap_or_default();
    // 76, the 15 paths of training sessions, and the operator's GET /v1/operations.
    assert_eq!(paths, 76 + 15 + 1, "a path in /openapi.json that the router does not serve?");
    assert_eq!(
        doc["components"]["securitySchemes"],
        json!({"bearerAuth": {
            "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
            "description": "An access token from `POST /v1/auth/token` (EdDSA JWT, `typ: at+jwt`, 10 minutes)."
        }})
    );
    assert!(!reply.text.to_ascii_lowercase().contains(&format!("x-id77-dev-{}", "identity")));
    assert!(doc["components"]["schemas"]["Member"]["properties"]["referent_user_id"].is_object());

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
    assert!(doc.pointer("/components/responses/TooManyRequests/headers/Retry-After").is_some());
}

#[tokio::test]
async fn docs_page_is_self_contained_html_with_a_token_field_and_a_strict_policy() {
    let keys = keys();
    let reply = send(app(&keys), get("/docs", None)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type.starts_with("text/html"));
    assert!(reply.text.contains("/openapi.json"));
    assert!(reply.text.contains("id=\"token\"") && reply.text.contains("Authorization"));
    assert!(!reply.text.contains("<script src"), "no external scripts: the machine has no internet");
    assert!(!reply.text.contains("https://cdn"), "no CDN");
    assert!(!reply.text.to_ascii_lowercase().contains(&format!("dev-{}", "identity")));
    // The policy allows exactly the page's own inline script and style, by hash.
    let csp = reply.header("content-security-policy").unwrap_or_default().to_owned();
    let block = |tag: &str| {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        let start = reply.text.find(&open).map(|i| i + open.len()).unwrap_or_default();
        let end = reply.text[start..].find(&close).map(|i| start + i).unwrap_or(start);
        reply.text[start..end].to_owned()
    };
    for tag in ["script", "style"] {
        use sha2::Digest;
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(block(tag).as_bytes()));
        assert!(csp.contains(&format!("'sha256-{hash}'")), "{tag} hash not in {csp}");
    }
    assert_eq!(reply.text.matches("<script").count(), 1, "one inline script, covered by the hash");
    assert!(!csp.contains("unsafe-inline") && csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
}

// ---- authentication ----------------------------------------------------------------------------------------

/// Header, payload and signature of a compact JWS.
fn parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

#[tokio::test]
async fn bad_tokens_are_401_with_an_invalid_token_challenge() {
    let keys = keys();
    let now = chrono::Utc::now().timestamp();
    let member = Uuid::now_v7();
    let valid = member_user(&keys, member);

    let tampered = {
        let p = parts(&valid);
        let mut claims: Value = serde_json::from_slice(&B64.decode(&p[1]).unwrap_or_default()).unwrap_or_default();
        claims["roles"] = json!(["coordinator"]);
        format!("{}.{}.{}", p[0], B64.encode(claims.to_string()), p[2])
    };
    let claims = |f: &dyn Fn(&mut Claims)| {
        let mut c = Claims::new(Uuid::now_v7(), Role::Coordinator, now);
        f(&mut c);
        keys.sign(&c)
    };
    let expired = claims(&|c| {
        c.iat = now - 3_600;
        c.nbf = now - 3_600;
        c.exp = now - 600;
    });
    let not_yet = claims(&|c| c.nbf = now + 3_600);
    let wrong_issuer = claims(&|c| c.iss = "https://evil.example".into());
    let wrong_audience = claims(&|c| c.aud = "another-api".into());
    let alg_none = {
        let p = parts(&claims(&|_| {}));
        format!("{}.{}.", B64.encode(r#"{"alg":"none","typ":"at+jwt"}"#), p[1])
    };
    let hs256 = {
        let p = parts(&claims(&|_| {}));
        format!("{}.{}.{}", B64.encode(r#"{"alg":"HS256","typ":"at+jwt"}"#), p[1], p[2])
    };
    let wrong_type = {
        let p = parts(&claims(&|_| {}));
        let kid =
            serde_json::from_slice::<Value>(&B64.decode(&p[0]).unwrap_or_default()).unwrap_or_default()["kid"].clone();
        let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": kid});
        format!("{}.{}.{}", B64.encode(header.to_string()), p[1], p[2])
    };
    let unknown_key = KeyPair::generate().map(|k| k.sign(&Claims::new(Uuid::now_v7(), Role::Coordinator, now)));
    let unknown_key = unknown_key.unwrap_or_else(|e| panic!("{e:#}"));

    let cases = [
        ("tampered", tampered),
        ("expired", expired),
        ("not yet valid", not_yet),
        ("wrong issuer", wrong_issuer),
        ("wrong audience", wrong_audience),
        ("alg none", alg_none),
        ("HS256", hs256),
        ("wrong typ", wrong_type),
        ("unknown key", unknown_key),
        ("garbage", "not-a-token".to_owned()),
        ("oversized", "a".repeat(9 * 1024)),
    ];
    let app = app(&keys);
    // The valid token passes (the upstream is down: 503).
    send(app.clone(), get("/v1/memberships", Some(&keys.token(Role::Coordinator, None, None)))).await.problem(503);
    for (what, token) in cases {
        for uri in ["/v1/memberships", "/v1/me", "/v1/requests/x"] {
            let reply = send(app.clone(), get(uri, Some(&token))).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{what} on {uri}: {}", reply.text);
            let body = reply.problem(401);
            assert_eq!(body["type"], "https://id77.seine-et-marne.fr/problems/unauthenticated", "{what}");
            assert_eq!(reply.header("www-authenticate"), Some("Bearer error=\"invalid_token\""), "{what}");
        }
    }
    // Not a bearer token at all.
    let basic = Request::get("/v1/me").header(header::AUTHORIZATION, "Basic YTpi").body(Body::empty());
    let reply = send(app.clone(), basic.unwrap_or_else(|e| panic!("{e}"))).await;
    reply.problem(401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer error=\"invalid_token\""));
}

#[tokio::test]
async fn a_missing_token_on_a_protected_route_is_401_with_a_bare_challenge() {
    let keys = keys();
    let app = app(&keys);
    for (method, uri) in [
        (Method::GET, "/v1/me"),
        (Method::GET, "/v1/memberships"),
        (Method::POST, "/v1/memberships/x/approve"),
        (Method::PUT, "/v1/memberships/x/referent"),
        (Method::GET, "/v1/users"),
        (Method::POST, "/v1/users"),
        (Method::DELETE, "/v1/users/x"),
        (Method::GET, "/v1/audit-events"),
        (Method::POST, "/v1/auth/keys/rotate"),
        (Method::GET, "/v1/requests"),
        (Method::GET, "/v1/referrals/x"),
        (Method::GET, "/v1/quotes"),
    ] {
        let reply = send(app.clone(), call(method.clone(), uri, None, None)).await;
        reply.problem(401);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"), "{method} {uri}");
    }
}

#[tokio::test]
async fn the_development_identity_header_is_gone() {
    let keys = keys();
    let header_name = format!("x-id77-dev-{}", "identity");
    for (uri, value) in [
        ("/v1/memberships", "coordinator".to_owned()),
        ("/v1/audit-events", "operator".to_owned()),
        ("/v1/requests", format!("member:{}", Uuid::now_v7())),
    ] {
        let request = Request::get(uri).header(header_name.as_str(), value).body(Body::empty());
        let reply = send(app(&keys), request.unwrap_or_else(|e| panic!("{e}"))).await;
        reply.problem(401);
        assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    }
}

#[tokio::test]
async fn public_routes_ignore_the_authorization_header() {
    let keys = keys();
    let app = app(&keys);
    for token in [None, Some("garbage"), Some("a.b.c")] {
        send(app.clone(), get("/v1/offers", token)).await.problem(503);
        send(app.clone(), get("/.well-known/jwks.json", token)).await.problem(503);
    }
}

// ---- the gateway's role checks -----------------------------------------------------------------------------

/// Who calls, in the order of the table's columns.
const CALLERS: [&str; 7] =
    ["anonymous", "member_admin", "member_user", "provider_agent", "referent", "coordinator", "operator"];

/// Every gateway route × every kind of caller, per docs/authorization.md: what the gateway answers by itself
/// (401, 403, 404, 400), or 503 when its checks pass and it calls the (closed) upstream.
#[tokio::test]
async fn each_role_gets_what_the_policy_says_before_any_upstream_call() {
    let keys = keys();
    let mut config = config(&keys);
    config.auth_rate_per_minute = 0;
    config.rate_per_minute = 0;
    let app = app_with(&config);
    let (m, other) = (Uuid::now_v7(), Uuid::now_v7());
    let tokens: Vec<Option<String>> = vec![
        None,
        Some(keys.token(Role::MemberAdmin, Some(m), None)),
        Some(keys.token(Role::MemberUser, Some(m), None)),
        Some(keys.token(Role::ProviderAgent, None, Some(PROVIDER))),
        Some(keys.token(Role::Referent, None, None)),
        Some(keys.token(Role::Coordinator, None, None)),
        Some(keys.token(Role::Operator, None, None)),
    ];
    let id = Uuid::now_v7();
    let invite = |role: &str, member: Option<Uuid>| {
        let mut body = json!({"email": "new@meaux.fr", "display_name": "New", "role": role});
        if let Some(member) = member {
            body["member_id"] = json!(member);
        }
        if role == "provider_agent" {
            body["provider_code"] = json!(PROVIDER);
        }
        Some(body)
    };
    let submit = Some(json!({"offer_id": "voirie-diagnostic", "subject": "Diagnostic"}));
    let credentials = Some(json!({"email": "a@b.fr", "password": "Correct-Horse-9"}));
    let refresh = Some(json!({"refresh_token": "r"}));
    let application = Some(json!({"siren": "217700014", "contact_name": "M. D", "contact_email": "m@d.fr"}));
    let offer = Some(json!({"code": "x", "title": "X", "category": "awareness_training", "provider_code": "caue77",
                            "price": {"kind": "free"}}));
    let provider =
        Some(json!({"code": "x", "name": "X", "kind": "associated_organisation", "contact_email": "x@y.fr"}));
    let hold = Some(json!({"from": "2027-03-01", "to": "2027-03-20"}));
    const U: u16 = 503; // the checks passed: the gateway called the upstream, which is down.
    #[rustfmt::skip]
    let table: Vec<(Method, String, Option<Value>, [u16; 7])> = vec![
        //                                                                       anon admin user agent ref coord oper
        (Method::GET, "/v1/collectivities?q=meaux".into(), None,                  [U, U, U, U, U, U, U]),
        (Method::GET, "/v1/collectivities/217700014".into(), None,                [U, U, U, U, U, U, U]),
        (Method::GET, "/v1/offers".into(), None,                                  [U, U, U, U, U, U, U]),
        (Method::GET, "/v1/offers/x".into(), None,                                [U, U, U, U, U, U, U]),
        (Method::GET, "/v1/providers".into(), None,                               [U, U, U, U, U, U, U]),
        (Method::POST, "/v1/memberships".into(), application,                     [U, U, U, U, U, U, U]),
        (Method::POST, "/v1/auth/token".into(), credentials,                      [U, U, U, U, U, U, U]),
        (Method::POST, "/v1/auth/refresh".into(), refresh.clone(),                [U, U, U, U, U, U, U]),
        (Method::POST, "/v1/auth/logout".into(), refresh,                         [U, U, U, U, U, U, U]),
        (Method::POST, "/v1/auth/invitations/accept".into(),
            Some(json!({"invitation_token": "i", "password": "Correct-Horse-9"})), [U, U, U, U, U, U, U]),
        (Method::POST, "/v1/auth/password-reset".into(), Some(json!({"email": "a@b.fr"})), [U, U, U, U, U, U, U]),
        (Method::POST, "/v1/auth/password-reset/confirm".into(),
            Some(json!({"token": "t", "password": "Correct-Horse-9"})),            [U, U, U, U, U, U, U]),
        (Method::GET, "/.well-known/jwks.json".into(), None,                      [U, U, U, U, U, U, U]),
        (Method::GET, "/v1/me".into(), None,                                      [401, U, U, U, U, U, U]),
        (Method::PUT, "/v1/me/password".into(),
            Some(json!({"current_password": "a", "new_password": "Correct-Horse-9"})), [401, U, U, U, U, U, U]),
        (Method::GET, "/v1/memberships".into(), None,                             [401, 403, 403, 403, U, U, 403]),
        (Method::GET, format!("/v1/memberships/{m}"), None,                       [401, U, U, 403, U, U, 403]),
        (Method::GET, format!("/v1/memberships/{other}"), None,                   [401, 404, 404, 403, U, U, 403]),
        (Method::POST, format!("/v1/memberships/{m}/approve"), None,              [401, 403, 403, 403, 403, U, 403]),
        (Method::POST, format!("/v1/memberships/{m}/refuse"),
            Some(json!({"reason": "Hors périmètre"})),                             [401, 403, 403, 403, 403, U, 403]),
        (Method::PUT, format!("/v1/memberships/{m}/referent"),
            Some(json!({"referent_user_id": id})),                                 [401, 403, 403, 403, 403, U, 403]),
        (Method::GET, "/v1/users".into(), None,                                   [401, U, 403, 403, 403, U, U]),
        (Method::GET, format!("/v1/users?member_id={other}"), None,               [401, 404, 403, 403, 403, U, U]),
        (Method::GET, format!("/v1/users?provider_code={PROVIDER}"), None,        [401, 404, 403, 403, 403, U, U]),
        (Method::POST, "/v1/users".into(), invite("member_user", Some(m)),        [401, U, 403, 403, 403, U, 403]),
        (Method::POST, "/v1/users".into(), invite("member_admin", None),          [401, U, 403, 403, 403, 400, 403]),
        (Method::POST, "/v1/users".into(), invite("member_user", Some(other)),    [401, 404, 403, 403, 403, U, 403]),
        (Method::POST, "/v1/users".into(), invite("referent", None),              [401, 403, 403, 403, 403, 403, U]),
        (Method::POST, "/v1/users".into(), invite("provider_agent", None),        [401, 403, 403, 403, 403, 403, U]),
        (Method::DELETE, format!("/v1/users/{id}"), None,                         [401, U, 403, 403, 403, 403, U]),
        (Method::GET, "/v1/audit-events".into(), None,                            [401, 403, 403, 403, 403, 403, U]),
        (Method::POST, "/v1/auth/keys/rotate".into(), None,                       [401, 403, 403, 403, 403, 403, U]),
        (Method::POST, "/v1/requests".into(), submit,                             [401, U, U, 403, 403, 403, 403]),
        (Method::GET, "/v1/requests".into(), None,                                [401, U, U, U, U, U, 403]),
        (Method::GET, format!("/v1/requests?member_id={m}"), None,                [401, U, U, 404, U, U, 403]),
        (Method::GET, format!("/v1/requests?member_id={other}"), None,            [401, 404, 404, 404, U, U, 403]),
        (Method::GET, "/v1/requests/summary?status=completed".into(), None,       [401, U, U, U, U, U, 403]),
        (Method::GET, format!("/v1/requests/{id}"), None,                         [401, U, U, U, U, U, 403]),
        (Method::POST, format!("/v1/requests/{id}/cancel"), Some(json!({})),      [401, U, U, 403, 403, U, 403]),
        (Method::POST, format!("/v1/requests/{id}/close"), Some(json!({})),       [401, 403, 403, 403, 403, U, 403]),
        (Method::PUT, format!("/v1/requests/{id}/feedback"),
            Some(json!({"rating": 5, "comment": "Très utile"})),                   [401, U, U, 403, 403, 403, 403]),
        (Method::GET, "/v1/statistics/requests?from=2026-01-01&to=2026-12-31".into(), None,
                                                                                   [401, 403, 403, 403, 403, U, 403]),
        (Method::GET, "/v1/triage".into(), None,                                  [401, 403, 403, 403, 403, U, 403]),
        (Method::POST, format!("/v1/triage/{id}/assign"),
            Some(json!({"provider_code": PROVIDER})),                              [401, 403, 403, 403, 403, U, 403]),
        (Method::GET, format!("/v1/requests/{id}/messages"), None,                [401, U, U, U, U, U, 403]),
        (Method::POST, format!("/v1/requests/{id}/messages"), Some(json!({"body": "Bonjour"})),
                                                                                  [401, U, U, U, U, U, 403]),
        (Method::POST, format!("/v1/requests/{id}/messages/read"), None,          [401, U, U, U, U, U, 403]),
        // Without X-Filename: refused before any upstream call, by every role that may take part.
        (Method::POST, format!("/v1/requests/{id}/attachments"), Some(json!({})), [401, 400, 400, 400, 400, 400, 403]),
        (Method::GET, format!("/v1/requests/{id}/attachments/{id}"), None,        [401, U, U, U, U, U, 403]),
        (Method::GET, "/v1/referrals".into(), None,                               [401, 403, 403, U, 403, U, 403]),
        (Method::GET, "/v1/referrals?provider=other77".into(), None,              [401, 403, 403, 404, 403, U, 403]),
        (Method::GET, format!("/v1/referrals/{id}"), None,                        [401, 403, 403, U, 403, U, 403]),
        (Method::GET, "/v1/quotes".into(), None,                                  [401, U, U, U, 400, U, 403]),
        (Method::GET, "/v1/offers?eligible=true".into(), None,                    [401, U, U, 403, 403, 403, 403]),
        (Method::POST, "/v1/offers".into(), offer.clone(),                        [401, 403, 403, 403, 403, 403, U]),
        (Method::PUT, "/v1/offers/x".into(), offer,                               [401, 403, 403, 403, 403, 403, U]),
        (Method::POST, "/v1/offers/x/publish".into(), None,                       [401, 403, 403, 403, 403, 403, U]),
        (Method::POST, "/v1/offers/x/archive".into(), None,                       [401, 403, 403, 403, 403, 403, U]),
        (Method::POST, "/v1/providers".into(), provider.clone(),                  [401, 403, 403, 403, 403, 403, U]),
        (Method::PUT, "/v1/providers/x".into(), provider,                         [401, 403, 403, 403, 403, 403, U]),
        (Method::GET, "/v1/exhibitions/x/availability?from=2027-01-01&to=2027-01-31".into(), None,
                                                                                  [U, U, U, U, U, U, U]),
        (Method::POST, "/v1/exhibitions/x/bookings".into(), hold,                 [401, U, U, 403, 403, U, 403]),
        (Method::POST, format!("/v1/bookings/{id}/confirm"), None,                [401, 403, 403, U, 403, U, 403]),
        (Method::POST, format!("/v1/bookings/{id}/release"), None,                [401, U, U, U, 403, U, 403]),
        (Method::GET, format!("/v1/quotes?member_id={m}"), None,                  [401, U, U, U, U, U, 403]),
        (Method::GET, format!("/v1/quotes?member_id={other}"), None,              [401, 404, 404, U, U, U, 403]),
        (Method::GET, format!("/v1/quotes/{id}"), None,                           [401, U, U, U, U, U, 403]),
        (Method::GET, "/v1/invoices".into(), None,                                [401, U, U, U, 400, U, 403]),
        (Method::GET, format!("/v1/invoices?member_id={m}"), None,                [401, U, U, U, U, U, 403]),
        (Method::GET, format!("/v1/invoices?member_id={other}"), None,            [401, 404, 404, U, U, U, 403]),
        (Method::GET, format!("/v1/invoices/{id}"), None,                         [401, U, U, U, U, U, 403]),
        (Method::GET, format!("/v1/invoices/{id}.xml"), None,                     [401, U, U, U, U, U, 403]),
        (Method::GET, format!("/v1/invoices/{id}.csv"), None,                     [401, U, U, U, U, U, 403]),
        (Method::GET, format!("/v1/invoices/{id}.ubl.xml"), None,                 [401, U, U, U, U, U, 403]),
        (Method::GET, format!("/v1/invoices/{id}.pdf"), None,                     [401, U, U, U, U, U, 403]),
        (Method::GET, format!("/v1/credit-notes/{id}"), None,                     [401, U, U, U, U, U, 403]),
        (Method::GET, format!("/v1/credit-notes/{id}.pdf"), None,                 [401, U, U, U, U, U, 403]),
        (Method::GET, format!("/v1/quotes/{id}.pdf"), None,                       [401, U, U, U, U, U, 403]),
        // Only a member admin decides on a quote (billing keeps it to its own member's quotes).
        (Method::POST, format!("/v1/quotes/{id}/accept"),
            Some(json!({"signatory_name": "Marie Dupont, maire", "purchase_order_number": "EJ-1"})),
                                                                                  [401, U, 403, 403, 403, 403, 403]),
        (Method::POST, format!("/v1/quotes/{id}/refuse"), Some(json!({"reason": "Budget non voté"})),
                                                                                  [401, U, 403, 403, 403, 403, 403]),
        (Method::POST, format!("/v1/invoices/{id}/sent"), Some(json!({"date": "2026-01-10"})),
                                                                                  [401, 403, 403, U, 403, U, 403]),
        (Method::POST, format!("/v1/invoices/{id}/paid"), Some(json!({"date": "2026-01-10", "payment_reference": "M1"})),
                                                                                  [401, 403, 403, U, 403, U, 403]),
        (Method::POST, format!("/v1/invoices/{id}/paid"), Some(json!({"date": "2026-01-10"})),
                                                                                  [401, 403, 403, 400, 403, 400, 403]),
        (Method::POST, format!("/v1/invoices/{id}/credit-note"), Some(json!({"reason": "annulée"})),
                                                                                  [401, 403, 403, 403, 403, U, 403]),
    ];
    let mut failures = Vec::new();
    for (method, uri, body, expected) in &table {
        for (i, token) in tokens.iter().enumerate() {
            let reply = send(app.clone(), call(method.clone(), uri, token.as_deref(), body.clone())).await;
            if reply.status.as_u16() != expected[i] {
                failures
                    .push(format!("{method} {uri} as {}: expected {}, got {}", CALLERS[i], expected[i], reply.text));
                continue;
            }
            let problem = reply.problem(expected[i]);
            if expected[i] == U && !problem["detail"].as_str().is_some_and(|d| d.contains("service is unavailable")) {
                failures.push(format!("{method} {uri} as {}: 503 not from the upstream: {problem}", CALLERS[i]));
            }
        }
    }
    assert!(failures.is_empty(), "{} calls disagree with the policy:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn several_roles_give_the_union_of_their_rights() {
    let keys = keys();
    let member = Uuid::now_v7();
    let mut claims = Claims::new(Uuid::now_v7(), Role::MemberUser, chrono::Utc::now().timestamp());
    claims.roles.push(Role::ProviderAgent);
    claims.member_id = Some(member.to_string());
    claims.provider_code = Some(PROVIDER.into());
    let both = keys.sign(&claims);
    for uri in ["/v1/referrals", "/v1/requests", "/v1/quotes", &format!("/v1/memberships/{member}")] {
        send(app(&keys), get(uri, Some(&both))).await.problem(503);
    }
    send(app(&keys), get("/v1/memberships", Some(&both))).await.problem(403);
    send(app(&keys), get(&format!("/v1/requests?member_id={}", Uuid::now_v7()), Some(&both))).await.problem(404);
    // A member role without a member (not a token membership mints) acts for no member.
    let orphan = keys.token(Role::MemberAdmin, None, None);
    let submit = json!({"offer_id": "voirie-diagnostic", "subject": "s"});
    send(app(&keys), call(Method::POST, "/v1/requests", Some(&orphan), Some(submit))).await.problem(403);
    send(app(&keys), get("/v1/requests", Some(&orphan))).await.problem(404);
}

#[tokio::test]
async fn a_member_user_may_not_approve_and_an_operator_may_not_submit() {
    let keys = keys();
    let member = Uuid::now_v7();
    let approve =
        call(Method::POST, &format!("/v1/memberships/{member}/approve"), Some(&member_user(&keys, member)), None);
    let body = send(app(&keys), approve).await.problem(403);
    assert_eq!(body["type"], "https://id77.seine-et-marne.fr/problems/permission-denied");
    let operator = keys.token(Role::Operator, None, None);
    let submit = json!({"offer_id": "voirie-diagnostic", "subject": "s"});
    send(app(&keys), call(Method::POST, "/v1/requests", Some(&operator), Some(submit))).await.problem(403);
    // Authorization comes before the body is even read.
    send(app(&keys), post_json("/v1/requests", Some(&operator), "{nope")).await.problem(403);
    send(app(&keys), post_json("/v1/requests", None, "{nope")).await.problem(401);
}

// ---- input -------------------------------------------------------------------------------------------------

#[tokio::test]
async fn attachment_uploads_are_checked_before_any_byte_is_forwarded() {
    let keys = keys();
    let token = member_user(&keys, Uuid::now_v7());
    let uri = format!("/v1/requests/{}/attachments", Uuid::now_v7());
    // Neither a type nor a name: both reported.
    let request = Request::post(&uri).header("authorization", format!("Bearer {token}")).body(Body::from("%PDF-1.4"));
    let reply = send(app(&keys), request.expect("request")).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["Content-Type", "X-Filename"]);
    // A declared length over 10 MiB: 413 at once.
    let request = Request::post(&uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/pdf")
        .header("x-filename", "plan%20masse.pdf")
        .header("content-length", (10 * 1024 * 1024 + 1).to_string())
        .body(Body::from("%PDF-1.4"));
    let reply = send(app(&keys), request.expect("request")).await;
    assert_eq!(reply.problem(413)["type"], "https://id77.seine-et-marne.fr/problems/attachment-too-large");
    // A name that is not percent-encoded UTF-8.
    let request = Request::post(&uri)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/pdf")
        .header("x-filename", "plan%FF.pdf")
        .body(Body::from("%PDF-1.4"));
    let reply = send(app(&keys), request.expect("request")).await;
    assert_eq!(reply.field_errors(), ["X-Filename"]);
}

#[tokio::test]
async fn malformed_json_is_a_400_problem() {
    let keys = keys();
    let reply = send(app(&keys), post_json("/v1/memberships", None, "{\"siren\": ")).await;
    let body = reply.problem(400);
    assert_eq!(body["type"], "https://id77.seine-et-marne.fr/problems/malformed-json");
}

#[tokio::test]
async fn wrong_types_and_missing_fields_are_400_problems() {
    let keys = keys();
    let reply = send(app(&keys), post_json("/v1/memberships", None, r#"{"siren": 217700014}"#)).await;
    reply.problem(400);
    let reply = send(app(&keys), post_json("/v1/memberships", None, "{}")).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["siren", "contact_name", "contact_email"]);
    let reply = send(app(&keys), post_json("/v1/memberships", None, "[]")).await;
    reply.problem(400);
    let reply = send(app(&keys), post_json("/v1/auth/token", None, "{}")).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["email", "password"]);
    let coordinator = keys.token(Role::Coordinator, None, None);
    let reply = send(app(&keys), post_json("/v1/users", Some(&coordinator), r#"{"role": "king"}"#)).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["email", "display_name", "role"]);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415_problem() {
    let keys = keys();
    let request = Request::post("/v1/memberships")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("siren=1"))
        .unwrap_or_else(|e| panic!("{e}"));
    send(app(&keys), request).await.problem(415);
}

#[tokio::test]
async fn an_oversized_body_is_a_413_problem() {
    let keys = keys();
    let big = json!({ "siren": "217700014", "contact_name": "x".repeat(70 * 1024), "contact_email": "a@b.fr" });
    let reply = send(app(&keys), post_json("/v1/memberships", None, big.to_string())).await;
    reply.problem(413);
    // Also when the client does not announce the length.
    let stream = chunked(vec![b'{'; 80 * 1024]);
    let token = member_user(&keys, Uuid::now_v7());
    let reply = send(app(&keys), post_json("/v1/requests", Some(&token), stream)).await;
    reply.problem(413);
    let stream = chunked(vec![b'{'; 80 * 1024]);
    send(app(&keys), post_json("/v1/auth/token", None, stream)).await.problem(413);
}

/// A body without Content-Length.
fn chunked(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = bytes.chunks(8 * 1024).map(|c| Ok(c.to_vec())).collect();
    Body::from_stream(futures::stream::iter(chunks))
}

#[tokio::test]
async fn identity_fields_are_bounded() {
    let keys = keys();
    let app = app(&keys);
    let cases: Vec<(&str, Option<String>, Value, Vec<&str>)> = vec![
        (
            "/v1/auth/token",
            None,
            json!({"email": "a".repeat(255), "password": "p".repeat(129)}),
            vec!["email", "password"],
        ),
        ("/v1/auth/token", None, json!({"email": "a".repeat(254), "password": "p".repeat(128)}), vec![]),
        ("/v1/auth/refresh", None, json!({"refresh_token": "r".repeat(8 * 1024 + 1)}), vec!["refresh_token"]),
        ("/v1/auth/logout", None, json!({"refresh_token": ""}), vec!["refresh_token"]),
        (
            "/v1/auth/invitations/accept",
            None,
            json!({"invitation_token": "i".repeat(8 * 1024 + 1), "password": "p".repeat(129)}),
            vec!["invitation_token", "password"],
        ),
        (
            "/v1/auth/password-reset/confirm",
            None,
            json!({"token": "t".repeat(8 * 1024 + 1), "password": "p".repeat(129)}),
            vec!["token", "password"],
        ),
        ("/v1/auth/password-reset", None, json!({"email": ""}), vec!["email"]),
        (
            "/v1/users",
            Some(keys.token(Role::Operator, None, None)),
            json!({"email": "a".repeat(255), "display_name": "d".repeat(201), "role": "referent"}),
            vec!["email", "display_name"],
        ),
    ];
    for (uri, token, body, fields) in cases {
        let reply = send(app.clone(), call(Method::POST, uri, token.as_deref(), Some(body))).await;
        if fields.is_empty() {
            reply.problem(503);
        } else {
            reply.problem(400);
            assert_eq!(reply.field_errors(), fields, "{uri}");
        }
    }
    let coordinator = keys.token(Role::Coordinator, None, None);
    let referent = call(
        Method::PUT,
        "/v1/memberships/x/referent",
        Some(&coordinator),
        Some(json!({"referent_user_id": "r".repeat(101)})),
    );
    let reply = send(app.clone(), referent).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["referent_user_id"]);
}

#[tokio::test]
async fn a_too_long_subject_is_a_field_error() {
    let keys = keys();
    let token = member_user(&keys, Uuid::now_v7());
    let body = json!({ "offer_id": "o", "subject": "é".repeat(201), "description": "d".repeat(10_000) });
    let reply = send(app(&keys), post_json("/v1/requests", Some(&token), body.to_string())).await;
    let problem = reply.problem(400);
    assert_eq!(problem["type"], "https://id77.seine-et-marne.fr/problems/invalid-argument");
    assert_eq!(reply.field_errors(), ["subject"]);
    assert_eq!(problem["errors"][0]["detail"], "must be at most 200 characters");

    let body = json!({ "offer_id": "o", "subject": "s", "description": "d".repeat(10_001) });
    let reply = send(app(&keys), post_json("/v1/requests", Some(&token), body.to_string())).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["description"]);

    let request = Request::post("/v1/requests")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header("Idempotency-Key", "k".repeat(129))
        .body(Body::from(json!({ "offer_id": "o", "subject": "s" }).to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    let reply = send(app(&keys), request).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["Idempotency-Key"]);
}

#[tokio::test]
async fn query_parameters_are_checked_before_forwarding() {
    let keys = keys();
    let reply = send(app(&keys), get(&format!("/v1/collectivities?q={}", "a".repeat(101)), None)).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["q"]);
    let reply = send(app(&keys), get("/v1/collectivities?kind=region&limit=0", None)).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["kind", "limit"]);
    let reply = send(app(&keys), get("/v1/offers?category=food&limit=101", None)).await;
    assert_eq!(reply.field_errors(), ["category", "limit"]);
    let coordinator = keys.token(Role::Coordinator, None, None);
    let reply = send(app(&keys), get("/v1/memberships?status=gone", Some(&coordinator))).await;
    assert_eq!(reply.field_errors(), ["status"]);
    // Dashboard filters are checked before the service is called.
    let reply = send(app(&keys), get("/v1/requests?status=open&category=food&from=hier", Some(&coordinator))).await;
    reply.problem(400);
    assert_eq!(reply.field_errors(), ["status", "category", "from"]);
    let reply = send(app(&keys), get("/v1/requests/summary?from=2026-02-01&to=2026-01-01", Some(&coordinator))).await;
    assert_eq!(reply.field_errors(), ["to"]);
    let reply = send(app(&keys), get("/v1/statistics/requests?from=2026-01-01", Some(&coordinator))).await;
    assert_eq!(reply.field_errors(), ["to"]);
    let assign =
        call(Method::POST, &format!("/v1/triage/{}/assign", Uuid::now_v7()), Some(&coordinator), Some(json!({})));
    assert_eq!(send(app(&keys), assign).await.field_errors(), ["offer_id"]);
    let user = keys.token(Role::MemberUser, Some(Uuid::now_v7()), None);
    let rate = call(
        Method::PUT,
        &format!("/v1/requests/{}/feedback", Uuid::now_v7()),
        Some(&user),
        Some(json!({"rating": 9})),
    );
    assert_eq!(send(app(&keys), rate).await.field_errors(), ["rating"]);
    let orientation = json!({"kind": "orientation", "subject": "École"});
    let open = call(Method::POST, "/v1/requests", Some(&user), Some(orientation));
    assert_eq!(send(app(&keys), open).await.field_errors(), ["description"]);
    let loan = json!({"offer_id": "o", "subject": "Expo", "dates": {"start_date": "2027-01-01"}});
    let loan = call(Method::POST, "/v1/requests", Some(&user), Some(loan));
    assert_eq!(send(app(&keys), loan).await.field_errors(), ["dates.end_date"]);
    let operator = keys.token(Role::Operator, None, None);
    let reply = send(app(&keys), get("/v1/audit-events?limit=500", Some(&operator))).await;
    assert_eq!(reply.field_errors(), ["limit"]);
    // Duplicate parameters are a problem, not a plain-text rejection.
    send(app(&keys), get("/v1/offers?limit=1&limit=2", None)).await.problem(400);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problems() {
    let keys = keys();
    let reply = send(app(&keys), get("/v1/nothing-here", None)).await;
    let body = reply.problem(404);
    assert_eq!(body["type"], "https://id77.seine-et-marne.fr/problems/not-found");
    send(app(&keys), get("/", None)).await.problem(404);
    send(app(&keys), call(Method::DELETE, "/v1/offers", None, None)).await.problem(405);
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_503_problem() {
    let keys = keys();
    let reply = send(app(&keys), get("/v1/offers?category=exhibition_loan&limit=5", None)).await;
    let body = reply.problem(503);
    assert_eq!(body["type"], "https://id77.seine-et-marne.fr/problems/unavailable");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("catalogue")), "{body}");
    let member = Uuid::now_v7();
    let uri = format!("/v1/requests/{member}");
    send(app(&keys), get(&uri, Some(&member_user(&keys, member)))).await.problem(503);
    let reply = send(app(&keys), get("/.well-known/jwks.json", None)).await;
    assert!(reply.problem(503)["detail"].as_str().is_some_and(|d| d.contains("membership")));
}

#[tokio::test]
async fn without_a_jwks_file_the_keys_come_from_membership() {
    // Membership is down: the token cannot be checked, which is the service's fault, not the client's.
    let config = Config::with_all_upstreams(CLOSED);
    let keys = keys();
    let reply = send(app_with(&config), get("/v1/me", Some(&keys.token(Role::Coordinator, None, None)))).await;
    reply.problem(503);
}

#[tokio::test]
async fn readiness_lists_the_upstreams_that_do_not_serve() {
    let keys = keys();
    let reply = send(app(&keys), get("/readyz", None)).await;
    let body = reply.problem(503);
    let mut fields = reply.field_errors();
    fields.sort();
    assert_eq!(fields, ["billing", "catalogue", "membership", "requests", "routing"], "{body}");
}

// ---- hardening ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_eleventh_login_in_a_minute_from_one_client_is_429() {
    let keys = keys();
    let app = app(&keys);
    let login = || post_json("/v1/auth/token", None, json!({"email": "a@b.fr", "password": "x"}).to_string());
    for i in 1..=10 {
        let reply = send(app.clone(), from_peer(login(), [192, 0, 2, 1])).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "login {i}: {}", reply.text);
    }
    let reply = send(app.clone(), from_peer(login(), [192, 0, 2, 1])).await;
    let body = reply.problem(429);
    assert_eq!(body["type"], "https://id77.seine-et-marne.fr/problems/rate-limited");
    let retry: u64 = reply.header("retry-after").and_then(|v| v.parse().ok()).unwrap_or_default();
    assert!((1..=6).contains(&retry), "Retry-After {retry}");
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    // Refresh and invitation acceptance share the login budget.
    let refresh = post_json("/v1/auth/refresh", None, json!({"refresh_token": "r"}).to_string());
    send(app.clone(), from_peer(refresh, [192, 0, 2, 1])).await.problem(429);
    // Another client has its own budget; the same client's other calls have theirs.
    send(app.clone(), from_peer(login(), [192, 0, 2, 2])).await.problem(503);
    send(app.clone(), from_peer(get("/v1/offers", None), [192, 0, 2, 1])).await.problem(503);
    // Probes are never limited.
    let reply = send(app.clone(), from_peer(get("/healthz", None), [192, 0, 2, 1])).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn other_calls_have_their_own_limit_and_forwarded_for_counts_only_when_trusted() {
    let keys = keys();
    let mut config = config(&keys);
    config.rate_per_minute = 3;
    let untrusted = app_with(&config);
    let offers = |xff: &str| {
        let request = Request::get("/v1/offers").header("x-forwarded-for", xff).body(Body::empty());
        from_peer(request.unwrap_or_else(|e| panic!("{e}")), [10, 0, 0, 1])
    };
    for i in 0..3 {
        send(untrusted.clone(), offers(&format!("198.51.100.{i}"))).await.problem(503);
    }
    // The header is ignored: it is the same peer.
    send(untrusted.clone(), offers("198.51.100.99")).await.problem(429);

    config.trust_forwarded_for = true;
    let trusted = app_with(&config);
    for _ in 0..3 {
        send(trusted.clone(), offers("203.0.113.5, 198.51.100.1")).await.problem(503);
    }
    send(trusted.clone(), offers("203.0.113.5, 198.51.100.1")).await.problem(429);
    // The last entry is the client the proxy saw; a client-chosen first entry changes nothing.
    send(trusted.clone(), offers("203.0.113.6, 198.51.100.1")).await.problem(429);
    send(trusted.clone(), offers("198.51.100.2")).await.problem(503);
}

#[tokio::test]
async fn cors_answers_allowed_origins_only() {
    let keys = keys();
    let mut config = config(&keys);
    config.web_origins = vec!["https://app.id77.fr".into()];
    let app = app_with(&config);
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/v1/requests")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization, content-type, idempotency-key")
            .body(Body::empty())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let reply = send(app.clone(), preflight("https://app.id77.fr")).await;
    assert!(reply.status.is_success(), "{}", reply.status);
    assert_eq!(reply.header("access-control-allow-origin"), Some("https://app.id77.fr"));
    let methods = reply.header("access-control-allow-methods").unwrap_or_default().to_ascii_uppercase();
    for method in ["GET", "POST", "PUT", "DELETE"] {
        assert!(methods.contains(method), "{methods}");
    }
    let allowed = reply.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
    for name in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed.contains(name), "{allowed}");
    }
    assert_eq!(reply.header("access-control-allow-credentials"), None, "bearer tokens, no cookies");
    assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "preflights get the security headers");

    let reply = send(app.clone(), preflight("https://evil.example")).await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
    assert_eq!(reply.header("access-control-allow-methods"), None);

    // Actual calls: the allowed origin may read the answer (and its Retry-After or WWW-Authenticate).
    let call = |origin: &str| {
        let request = Request::get("/v1/me").header(header::ORIGIN, origin).body(Body::empty());
        request.unwrap_or_else(|e| panic!("{e}"))
    };
    let reply = send(app.clone(), call("https://app.id77.fr")).await;
    reply.problem(401);
    assert_eq!(reply.header("access-control-allow-origin"), Some("https://app.id77.fr"));
    assert!(
        reply
            .header("access-control-expose-headers")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .contains("www-authenticate")
    );
    let reply = send(app.clone(), call("https://evil.example")).await;
    assert_eq!(reply.header("access-control-allow-origin"), None);

    // No origin configured: no origin is allowed.
    let reply = send(app_with(&self::config(&keys)), preflight("https://app.id77.fr")).await;
    assert_eq!(reply.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let keys = keys();
    let token = keys.token(Role::Coordinator, None, None);
    for request in [
        get("/healthz", None),
        get("/v1/offers", None),
        get("/v1/nowhere", None),
        get("/v1/me", None),
        get("/v1/me", Some(&token)),
        post_json("/v1/auth/token", None, "{}"),
        get("/openapi.json", None),
    ] {
        let uri = request.uri().to_string();
        let reply = send(app(&keys), request).await;
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"), "{uri}");
        assert_eq!(reply.header("x-frame-options"), Some("DENY"), "{uri}");
        assert_eq!(reply.header("referrer-policy"), Some("no-referrer"), "{uri}");
        assert_eq!(
            reply.header("content-security-policy"),
            Some("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
            "{uri}"
        );
        assert_eq!(reply.header("strict-transport-security"), None, "{uri}: HSTS is off by default");
        let no_store = uri.starts_with("/v1/auth/") || uri == "/v1/me";
        assert_eq!(reply.header("cache-control") == Some("no-store"), no_store, "{uri}");
    }
    let mut config = config(&keys);
    config.hsts = true;
    let reply = send(app_with(&config), get("/v1/offers", None)).await;
    assert_eq!(reply.header("strict-transport-security"), Some("max-age=31536000; includeSubDomains"));
}

#[tokio::test]
async fn run_serves_until_shutdown() {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(error) => panic!("bind: {error}"),
    };
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let keys = keys();
    let mut config = config(&keys);
    config.auth_rate_per_minute = 1;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(id77_gateway::run(config, listener, shutdown.clone()));
    let client = reqwest::Client::new();
    let response = client.get(format!("http://{addr}/healthz")).send().await;
    let response = response.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status().as_u16(), 200);
    let response = client.get(format!("http://{addr}/v1/providers")).send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
    // The peer address reaches the limiter through a real socket.
    let login =
        || client.post(format!("http://{addr}/v1/auth/token")).json(&json!({"email": "a@b.fr", "password": "x"}));
    let first = login().send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.status().as_u16(), 503);
    let second = login().send().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(second.status().as_u16(), 429);
    assert!(second.headers().get("retry-after").is_some());
    shutdown.cancel();
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(15), server).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "{stopped:?}");
}
