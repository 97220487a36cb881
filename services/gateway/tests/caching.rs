//! Strong ETags and conditional GET (issue 20, item 4), through the whole router driven with `oneshot`: the
//! identity endpoints answer from an in-process fake of membership's `IdentityService` (a resource, `/v1/me`,
//! and a list, `/v1/users`), the other upstreams are a closed port (127.0.0.1:1). What is checked: the tag of
//! a 200 JSON answer, the 304 to a matching `If-None-Match` (exact, weak, `*`, in a list), the caching headers
//! a 304 keeps, the privacy of authenticated answers, and what is left untouched (other methods, errors, the
//! server-sent events stream).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use id77_gateway::{AppState, Config, router};
use id77_platform::auth::Role;
use id77_platform::testing::TestKeys;
use id77_proto::membership::v1 as pb;
use id77_proto::membership::v1::identity_service_server::{IdentityService, IdentityServiceServer};
use id77_proto::prost_types::Timestamp;
use serde_json::json;
use sha2::{Digest, Sha256};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};
use tower::ServiceExt;
use uuid::Uuid;

const ORIGIN: &str = "https://app.id77.example";

fn at() -> Option<Timestamp> {
    Some(Timestamp { seconds: 1_700_000_000, nanos: 0 })
}

fn user(role: pb::Role) -> pb::User {
    pb::User {
        id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
        email: "dgs@meaux.fr".into(),
        display_name: "DGS de Meaux".into(),
        role: role.into(),
        member_id: "0190a1b2-c3d4-7e5f-8a9b-000000000001".into(),
        provider_code: String::new(),
        active: true,
        created_at: at(),
    }
}

fn pair() -> pb::TokenPair {
    pb::TokenPair {
        access_token: "header.payload.signature".into(),
        token_type: "Bearer".into(),
        expires_in: 600,
        refresh_token: "refresh-1".into(),
        refresh_expires_in: 2_592_000,
    }
}

/// Answers the calls these tests make, always the same way (so the same body comes back).
struct Fake;

#[tonic::async_trait]
impl IdentityService for Fake {
    async fn issue_token(&self, _: GrpcRequest<pb::IssueTokenRequest>) -> Result<GrpcResponse<pb::TokenPair>, Status> {
        Ok(GrpcResponse::new(pair()))
    }

    async fn refresh_token(
        &self,
        _: GrpcRequest<pb::RefreshTokenRequest>,
    ) -> Result<GrpcResponse<pb::TokenPair>, Status> {
        Ok(GrpcResponse::new(pair()))
    }

    async fn revoke_token(
        &self,
        _: GrpcRequest<pb::RevokeTokenRequest>,
    ) -> Result<GrpcResponse<pb::RevokeTokenResponse>, Status> {
        Ok(GrpcResponse::new(pb::RevokeTokenResponse {}))
    }

    async fn get_jwks(&self, _: GrpcRequest<pb::GetJwksRequest>) -> Result<GrpcResponse<pb::Jwks>, Status> {
        Ok(GrpcResponse::new(pb::Jwks {
            json: r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA","kid":"k1","alg":"EdDSA","use":"sig"}]}"#.into(),
        }))
    }

    async fn rotate_signing_key(
        &self,
        _: GrpcRequest<pb::RotateSigningKeyRequest>,
    ) -> Result<GrpcResponse<pb::RotateSigningKeyResponse>, Status> {
        Ok(GrpcResponse::new(pb::RotateSigningKeyResponse { kid: "k2".into() }))
    }

    async fn get_me(&self, _: GrpcRequest<pb::GetMeRequest>) -> Result<GrpcResponse<pb::Me>, Status> {
        Ok(GrpcResponse::new(pb::Me { user: Some(user(pb::Role::MemberAdmin)), referent: None }))
    }

    async fn invite_user(&self, _: GrpcRequest<pb::InviteUserRequest>) -> Result<GrpcResponse<pb::Invitation>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn accept_invitation(
        &self,
        _: GrpcRequest<pb::AcceptInvitationRequest>,
    ) -> Result<GrpcResponse<pb::TokenPair>, Status> {
        Ok(GrpcResponse::new(pair()))
    }

    async fn list_users(
        &self,
        _: GrpcRequest<pb::ListUsersRequest>,
    ) -> Result<GrpcResponse<pb::ListUsersResponse>, Status> {
        Ok(GrpcResponse::new(pb::ListUsersResponse {
            users: vec![user(pb::Role::MemberUser), user(pb::Role::MemberAdmin)],
            next_page_token: "n".into(),
        }))
    }

    async fn remove_user(
        &self,
        _: GrpcRequest<pb::RemoveUserRequest>,
    ) -> Result<GrpcResponse<pb::RemoveUserResponse>, Status> {
        Err(Status::not_found("user not found"))
    }

    async fn assign_referent(
        &self,
        _: GrpcRequest<pb::AssignReferentRequest>,
    ) -> Result<GrpcResponse<pb::Member>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn request_password_reset(
        &self,
        _: GrpcRequest<pb::RequestPasswordResetRequest>,
    ) -> Result<GrpcResponse<pb::RequestPasswordResetResponse>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn reset_password(
        &self,
        _: GrpcRequest<pb::ResetPasswordRequest>,
    ) -> Result<GrpcResponse<pb::ResetPasswordResponse>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn change_password(
        &self,
        _: GrpcRequest<pb::ChangePasswordRequest>,
    ) -> Result<GrpcResponse<pb::ChangePasswordResponse>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }

    async fn list_audit_events(
        &self,
        _: GrpcRequest<pb::ListAuditEventsRequest>,
    ) -> Result<GrpcResponse<pb::ListAuditEventsResponse>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }
}

struct Harness {
    app: Router,
    keys: TestKeys,
    _server: tokio::task::JoinHandle<()>,
}

impl Harness {
    fn coordinator(&self) -> String {
        self.keys.token(Role::Coordinator, None, None)
    }
}

/// The router with membership served by [`Fake`], CORS open to [`ORIGIN`], and live updates "configured"
/// (a NATS address nothing listens on: `/v1/events` answers its stream, which stays quiet).
async fn harness() -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let service = IdentityServiceServer::new(Fake);
    let server = tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
    });
    let keys = TestKeys::new().unwrap_or_else(|e| panic!("{e:#}"));
    let mut config = Config::with_all_upstreams("http://127.0.0.1:1");
    config.membership_url = format!("http://{addr}");
    config.jwks_file = Some(keys.jwks_file.clone());
    config.web_origins = vec![ORIGIN.to_owned()];
    config.nats = Some(id77_gateway::live::NatsSettings {
        url: "nats://127.0.0.1:1".into(),
        prefix: String::new(),
        nkey_file: None,
    });
    let app = router(AppState::new(&config).unwrap_or_else(|e| panic!("{e:#}")));
    Harness { app, keys, _server: server }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn etag(&self) -> Option<&str> {
        self.header(header::ETAG)
    }

    /// Every `Vary` line, split on commas.
    fn vary(&self) -> Vec<String> {
        self.headers
            .get_all(header::VARY)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|v| v.trim().to_owned())
            .collect()
    }
}

/// A request with an optional token and extra headers, from a fixed peer address.
fn request(method: Method, uri: &str, token: Option<&str>, extra: &[(header::HeaderName, &str)]) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    for (name, value) in extra {
        builder = builder.header(name, *value);
    }
    let mut request = builder.body(Body::empty()).unwrap_or_else(|e| panic!("{e}"));
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 77], 51_000))));
    request
}

async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = match app.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 16 << 20).await.unwrap_or_else(|e| panic!("body: {e}"));
    Reply { status, headers, body: body.to_vec() }
}

async fn get(app: &Router, uri: &str, token: Option<&str>, extra: &[(header::HeaderName, &str)]) -> Reply {
    send(app, request(Method::GET, uri, token, extra)).await
}

/// The tag the gateway documents: `"` + URL-safe base64 of the first 16 bytes of the body's SHA-256 + `"`.
fn expected_tag(body: &[u8]) -> String {
    format!("\"{}\"", B64.encode(&Sha256::digest(body)[..16]))
}

fn is_strong_tag(tag: &str) -> bool {
    tag.len() == 24 && tag.starts_with('"') && tag.ends_with('"') && !tag.starts_with("W/")
}

/// A 304 as the gateway sends it: no body, no content headers, the tag of the 200.
fn assert_not_modified(reply: &Reply, etag: &str) {
    assert_eq!(reply.status, StatusCode::NOT_MODIFIED, "{}", String::from_utf8_lossy(&reply.body));
    assert!(reply.body.is_empty(), "a 304 has no body");
    assert_eq!(reply.etag(), Some(etag));
    for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::TRANSFER_ENCODING] {
        assert_eq!(reply.header(name.clone()), None, "{name}");
    }
}

#[tokio::test]
async fn a_resource_and_a_list_carry_a_strong_etag_of_their_body() {
    let h = harness().await;
    let token = h.coordinator();
    for uri in ["/v1/me", "/v1/users", "/openapi.json"] {
        let token = (uri != "/openapi.json").then_some(token.as_str());
        let first = get(&h.app, uri, token, &[]).await;
        assert_eq!(first.status, StatusCode::OK, "{uri}: {}", String::from_utf8_lossy(&first.body));
        assert!(first.header(header::CONTENT_TYPE).is_some_and(|t| t.starts_with("application/json")), "{uri}");
        let etag = first.etag().unwrap_or_else(|| panic!("{uri}: no ETag")).to_owned();
        assert!(is_strong_tag(&etag), "{uri}: {etag}");
        assert_eq!(etag, expected_tag(&first.body), "{uri}");
        let again = get(&h.app, uri, token, &[]).await;
        assert_eq!(again.body, first.body, "{uri}");
        assert_eq!(again.etag(), Some(etag.as_str()), "{uri}: same body, same tag");
    }
    // Another body, another tag.
    let me = get(&h.app, "/v1/me", Some(&token), &[]).await;
    let users = get(&h.app, "/v1/users", Some(&token), &[]).await;
    assert_ne!(me.etag(), users.etag());
}

#[tokio::test]
async fn a_matching_if_none_match_gets_a_304_keeping_the_caching_headers() {
    let h = harness().await;
    let token = h.coordinator();
    let fresh = get(&h.app, "/v1/users", Some(&token), &[(header::ORIGIN, ORIGIN)]).await;
    assert_eq!(fresh.status, StatusCode::OK);
    let etag = fresh.etag().unwrap_or_else(|| panic!("no ETag")).to_owned();
    let weak = format!("W/{etag}");
    let listed = format!("\"other\", {weak}");
    for condition in [etag.as_str(), "*", weak.as_str(), listed.as_str()] {
        let reply =
            get(&h.app, "/v1/users", Some(&token), &[(header::IF_NONE_MATCH, condition), (header::ORIGIN, ORIGIN)])
                .await;
        assert_not_modified(&reply, &etag);
        // The headers the 200 had: caching, CORS, security.
        for name in [
            header::CACHE_CONTROL,
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            header::X_CONTENT_TYPE_OPTIONS,
            header::CONTENT_SECURITY_POLICY,
        ] {
            assert_eq!(reply.header(name.clone()), fresh.header(name.clone()), "{condition}: {name}");
        }
        assert_eq!(reply.vary(), fresh.vary(), "{condition}");
    }
    // HEAD: the same tag, and the same 304.
    let head = send(&h.app, request(Method::HEAD, "/v1/users", Some(&token), &[])).await;
    assert_eq!((head.status, head.etag()), (StatusCode::OK, Some(etag.as_str())));
    assert!(head.body.is_empty());
    let head = send(&h.app, request(Method::HEAD, "/v1/users", Some(&token), &[(header::IF_NONE_MATCH, &etag)])).await;
    assert_not_modified(&head, &etag);
    // Anonymous: the public document too.
    let doc = get(&h.app, "/openapi.json", None, &[]).await;
    let doc_tag = doc.etag().unwrap_or_else(|| panic!("no ETag")).to_owned();
    assert_not_modified(&get(&h.app, "/openapi.json", None, &[(header::IF_NONE_MATCH, &doc_tag)]).await, &doc_tag);
}

#[tokio::test]
async fn a_different_or_malformed_tag_gets_the_200() {
    let h = harness().await;
    let token = h.coordinator();
    let fresh = get(&h.app, "/v1/me", Some(&token), &[]).await;
    let etag = fresh.etag().unwrap_or_else(|| panic!("no ETag")).to_owned();
    let unquoted = etag.trim_matches('"').to_owned();
    let other_resource = get(&h.app, "/v1/users", Some(&token), &[]).await.etag().unwrap_or_default().to_owned();
    for condition in ["\"AAAAAAAAAAAAAAAAAAAAAA\"", "W/\"nope\"", unquoted.as_str(), other_resource.as_str(), ""] {
        let reply = get(&h.app, "/v1/me", Some(&token), &[(header::IF_NONE_MATCH, condition)]).await;
        assert_eq!(reply.status, StatusCode::OK, "{condition}");
        assert_eq!(reply.body, fresh.body, "{condition}");
        assert_eq!(reply.etag(), Some(etag.as_str()), "{condition}");
    }
}

#[tokio::test]
async fn authenticated_answers_are_private_to_their_caller() {
    let h = harness().await;
    let token = h.coordinator();
    let users = get(&h.app, "/v1/users", Some(&token), &[]).await;
    assert_eq!(users.header(header::CACHE_CONTROL), Some("private, no-cache"));
    assert!(users.vary().contains(&"Authorization".to_owned()), "{:?}", users.vary());
    // Appended to the Vary CORS sets, once.
    let cors = get(&h.app, "/v1/users", Some(&token), &[(header::ORIGIN, ORIGIN)]).await;
    let vary = cors.vary();
    assert!(vary.contains(&"Origin".to_owned()), "{vary:?}");
    assert_eq!(vary.iter().filter(|v| v.eq_ignore_ascii_case("authorization")).count(), 1, "{vary:?}");
    // `/v1/me` stays `no-store` (security headers), and varies too.
    let me = get(&h.app, "/v1/me", Some(&token), &[]).await;
    assert_eq!(me.header(header::CACHE_CONTROL), Some("no-store"));
    assert!(me.vary().contains(&"Authorization".to_owned()));
    // A Cache-Control the handler set is kept (the key set is public whoever asks).
    let jwks = get(&h.app, "/.well-known/jwks.json", Some(&token), &[]).await;
    assert_eq!(jwks.status, StatusCode::OK);
    assert_eq!(jwks.header(header::CACHE_CONTROL), Some("public, max-age=300"));
    assert!(jwks.vary().contains(&"Authorization".to_owned()));
    assert!(jwks.etag().is_some());
    // Anonymous answers get no Cache-Control and no Vary: Authorization from the gateway.
    let doc = get(&h.app, "/openapi.json", None, &[]).await;
    assert_eq!(doc.header(header::CACHE_CONTROL), None);
    assert!(!doc.vary().contains(&"Authorization".to_owned()));
    let jwks = get(&h.app, "/.well-known/jwks.json", None, &[]).await;
    assert_eq!(jwks.header(header::CACHE_CONTROL), Some("public, max-age=300"));
    assert_eq!(jwks.vary(), ["Origin"], "CORS' own only");
}

#[tokio::test]
async fn other_methods_are_untouched() {
    let h = harness().await;
    let operator = h.keys.token(Role::Operator, None, None);
    let rotate = request(Method::POST, "/v1/auth/keys/rotate", Some(&operator), &[(header::IF_NONE_MATCH, "*")]);
    let reply = send(&h.app, rotate).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.etag(), None);
    assert!(!reply.vary().contains(&"Authorization".to_owned()));
    assert_eq!(reply.header(header::CACHE_CONTROL), Some("no-store"), "the security headers' own");
    let mut refresh = request(Method::POST, "/v1/auth/refresh", None, &[(header::IF_NONE_MATCH, "*")]);
    refresh.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    *refresh.body_mut() = Body::from(json!({"refresh_token": "r"}).to_string());
    let reply = send(&h.app, refresh).await;
    assert_eq!((reply.status, reply.etag()), (StatusCode::OK, None));
    assert!(!reply.body.is_empty());
}

#[tokio::test]
async fn errors_carry_no_tag_and_are_never_304() {
    let h = harness().await;
    let token = h.coordinator();
    for (uri, status) in [
        ("/v1/nothing-here", StatusCode::NOT_FOUND),
        ("/v1/users/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", StatusCode::METHOD_NOT_ALLOWED),
        ("/v1/quotes", StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let reply = get(&h.app, uri, Some(&token), &[(header::IF_NONE_MATCH, "*")]).await;
        assert_eq!(reply.status, status, "{uri}");
        assert_eq!(reply.header(header::CONTENT_TYPE), Some("application/problem+json"), "{uri}");
        assert_eq!(reply.etag(), None, "{uri}");
        assert_ne!(reply.header(header::CACHE_CONTROL), Some("private, no-cache"), "{uri}");
    }
    let unauthenticated = get(&h.app, "/v1/users", None, &[(header::IF_NONE_MATCH, "*")]).await;
    assert_eq!((unauthenticated.status, unauthenticated.etag()), (StatusCode::UNAUTHORIZED, None));
}

#[tokio::test]
async fn the_event_stream_is_untouched() {
    let h = harness().await;
    let member = Uuid::now_v7();
    let token = h.keys.token(Role::MemberUser, Some(member), None);
    let events = request(Method::GET, "/v1/events", Some(&token), &[(header::IF_NONE_MATCH, "*")]);
    let response = match h.app.clone().oneshot(events).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    // The stream never ends: only its head is looked at.
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert!(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream")),
        "{headers:?}"
    );
    assert_eq!(headers.get(header::ETAG), None);
    assert_ne!(headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("private, no-cache"));
    let vary: Vec<_> = headers.get_all(header::VARY).iter().filter_map(|v| v.to_str().ok()).collect();
    assert!(!vary.iter().any(|v| v.contains("Authorization")), "{vary:?}");
}

/// Over a real connection (hyper): the 304 carries no body and no `Content-Length: 0` (RFC 9110 §8.6), and
/// the connection stays usable for the next request.
#[tokio::test]
async fn over_the_wire_a_304_has_no_length_and_keeps_the_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let keys = TestKeys::new().unwrap_or_else(|e| panic!("{e:#}"));
    let mut config = Config::with_all_upstreams("http://127.0.0.1:1");
    config.jwks_file = Some(keys.jwks_file.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let limits = id77_platform::http_server::HttpLimits::default();
    let task = tokio::spawn(id77_gateway::run_with_limits(config, limits, listener, shutdown.clone()));
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/openapi.json");
    let fresh = client.get(&url).send().await.unwrap_or_else(|e| panic!("{e}"));
    let etag = fresh.headers().get("etag").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(is_strong_tag(&etag), "{etag}");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
    let head = format!("GET /openapi.json HTTP/1.1\r\nhost: x\r\nif-none-match: {etag}\r\n\r\n");
    let twice = format!("{head}GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
    stream.write_all(twice.as_bytes()).await.unwrap_or_else(|e| panic!("{e}"));
    let mut received = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut received)).await;
    assert!(matches!(read, Ok(Ok(_))), "{read:?}");
    let text = String::from_utf8_lossy(&received).to_ascii_lowercase();
    let (first, second) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{text}"));
    assert!(first.starts_with("http/1.1 304"), "{text}");
    assert!(first.contains(&format!("etag: {}", etag.to_ascii_lowercase())), "{text}");
    assert!(!first.contains("content-length") && !first.contains("transfer-encoding"), "{text}");
    assert!(second.starts_with("http/1.1 200") && second.ends_with("ok"), "the next answer follows: {text}");
    shutdown.cancel();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), task).await;
}
