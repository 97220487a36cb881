//! The gateway against an in-process fake of membership's `IdentityService`: what reaches the service (the
//! caller's token as `authorization` metadata, the client address, nothing on public calls), the JSON shapes
//! of the identity endpoints, and how service errors come back (NOT_FOUND → 404, UNAUTHENTICATED → 401).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use id77_gateway::{AppState, Config, router};
use id77_platform::auth::Role;
use id77_platform::testing::TestKeys;
use id77_proto::membership::v1 as pb;
use id77_proto::membership::v1::identity_service_server::{IdentityService, IdentityServiceServer};
use id77_proto::prost_types::Timestamp;
use serde_json::{Value, json};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::ServiceExt;
use uuid::Uuid;

/// One call as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    rpc: &'static str,
    authorization: Option<String>,
    client: String,
}

#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn record<T>(&self, rpc: &'static str, request: &GrpcRequest<T>, client: &str) {
        let authorization = request.metadata().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(Seen { rpc, authorization, client: client.to_owned() });
        }
    }

    fn last(&self) -> Option<Seen> {
        self.seen.lock().ok().and_then(|s| s.last().cloned())
    }
}

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

#[tonic::async_trait]
impl IdentityService for Fake {
    async fn issue_token(&self, r: GrpcRequest<pb::IssueTokenRequest>) -> Result<GrpcResponse<pb::TokenPair>, Status> {
        self.record("IssueToken", &r, &r.get_ref().client);
        if r.get_ref().password == "wrong" {
            return Err(Status::unauthenticated("wrong email or password"));
        }
        if r.get_ref().password == "too-soon" {
            // Membership's login throttling: RESOURCE_EXHAUSTED with a RetryInfo, before the password is checked.
            let mut details = ErrorDetails::new();
            details.set_error_info(
                "LOGIN_THROTTLED",
                id77_platform::error::ERROR_DOMAIN,
                std::collections::HashMap::new(),
            );
            details.set_retry_info(Some(std::time::Duration::from_millis(3_500)));
            let message = "too many sign-in attempts: retry in 4 s";
            return Err(Status::with_error_details(tonic::Code::ResourceExhausted, message, details));
        }
        Ok(GrpcResponse::new(pair()))
    }

    async fn refresh_token(
        &self,
        r: GrpcRequest<pb::RefreshTokenRequest>,
    ) -> Result<GrpcResponse<pb::TokenPair>, Status> {
        self.record("RefreshToken", &r, &r.get_ref().client);
        Ok(GrpcResponse::new(pair()))
    }

    async fn revoke_token(
        &self,
        r: GrpcRequest<pb::RevokeTokenRequest>,
    ) -> Result<GrpcResponse<pb::RevokeTokenResponse>, Status> {
        self.record("RevokeToken", &r, "");
        Ok(GrpcResponse::new(pb::RevokeTokenResponse {}))
    }

    async fn get_jwks(&self, r: GrpcRequest<pb::GetJwksRequest>) -> Result<GrpcResponse<pb::Jwks>, Status> {
        self.record("GetJwks", &r, "");
        Ok(GrpcResponse::new(pb::Jwks {
            json: r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AA","kid":"k1","alg":"EdDSA","use":"sig"}]}"#.into(),
        }))
    }

    async fn rotate_signing_key(
        &self,
        r: GrpcRequest<pb::RotateSigningKeyRequest>,
    ) -> Result<GrpcResponse<pb::RotateSigningKeyResponse>, Status> {
        self.record("RotateSigningKey", &r, "");
        Ok(GrpcResponse::new(pb::RotateSigningKeyResponse { kid: "k2".into() }))
    }

    async fn get_me(&self, r: GrpcRequest<pb::GetMeRequest>) -> Result<GrpcResponse<pb::Me>, Status> {
        self.record("GetMe", &r, "");
        let referent = pb::Referent {
            user_id: "0190a1b2-c3d4-7e5f-8a9b-000000000009".into(),
            display_name: "Référente".into(),
            email: "referente@departement77.fr".into(),
        };
        Ok(GrpcResponse::new(pb::Me { user: Some(user(pb::Role::MemberAdmin)), referent: Some(referent) }))
    }

    async fn invite_user(&self, r: GrpcRequest<pb::InviteUserRequest>) -> Result<GrpcResponse<pb::Invitation>, Status> {
        self.record("InviteUser", &r, "");
        let mut invited = user(pb::Role::try_from(r.get_ref().role).unwrap_or(pb::Role::Unspecified));
        invited.member_id = r.get_ref().member_id.clone();
        invited.active = false;
        Ok(GrpcResponse::new(pb::Invitation {
            user: Some(invited),
            invitation_token: "invite-1".into(),
            expires_at: at(),
        }))
    }

    async fn accept_invitation(
        &self,
        r: GrpcRequest<pb::AcceptInvitationRequest>,
    ) -> Result<GrpcResponse<pb::TokenPair>, Status> {
        self.record("AcceptInvitation", &r, "");
        Ok(GrpcResponse::new(pair()))
    }

    async fn list_users(
        &self,
        r: GrpcRequest<pb::ListUsersRequest>,
    ) -> Result<GrpcResponse<pb::ListUsersResponse>, Status> {
        let member = r.get_ref().member_id.clone();
        self.record("ListUsers", &r, &member);
        Ok(GrpcResponse::new(pb::ListUsersResponse {
            users: vec![user(pb::Role::MemberUser)],
            next_page_token: "n".into(),
        }))
    }

    async fn remove_user(
        &self,
        r: GrpcRequest<pb::RemoveUserRequest>,
    ) -> Result<GrpcResponse<pb::RemoveUserResponse>, Status> {
        self.record("RemoveUser", &r, "");
        if r.get_ref().user_id.ends_with('0') {
            return Err(Status::not_found("user not found"));
        }
        Ok(GrpcResponse::new(pb::RemoveUserResponse {}))
    }

    async fn assign_referent(
        &self,
        r: GrpcRequest<pb::AssignReferentRequest>,
    ) -> Result<GrpcResponse<pb::Member>, Status> {
        self.record("AssignReferent", &r, "");
        Ok(GrpcResponse::new(pb::Member {
            id: r.get_ref().member_id.clone(),
            referent_user_id: r.get_ref().referent_user_id.clone(),
            status: pb::MemberStatus::Active.into(),
            ..Default::default()
        }))
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
        r: GrpcRequest<pb::ListAuditEventsRequest>,
    ) -> Result<GrpcResponse<pb::ListAuditEventsResponse>, Status> {
        self.record("ListAuditEvents", &r, "");
        // A token the service refuses (e.g. just revoked): the gateway answers 401.
        if r.get_ref().kind == "refuse" {
            return Err(Status::unauthenticated("session revoked"));
        }
        Ok(GrpcResponse::new(pb::ListAuditEventsResponse {
            events: vec![pb::AuditEvent {
                id: "e1".into(),
                kind: "login.failed".into(),
                actor_user_id: String::new(),
                subject: "dgs@meaux.fr".into(),
                client: "192.0.2.7".into(),
                detail: "wrong password".into(),
                at: at(),
            }],
            next_page_token: String::new(),
        }))
    }
}

struct Harness {
    app: Router,
    fake: Fake,
    keys: TestKeys,
    _server: tokio::task::JoinHandle<()>,
}

async fn harness() -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let fake = Fake::default();
    let service = IdentityServiceServer::new(fake.clone());
    let server = tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
    });
    let keys = TestKeys::new().unwrap_or_else(|e| panic!("{e:#}"));
    let mut config = Config::with_all_upstreams("http://127.0.0.1:1");
    config.membership_url = format!("http://{addr}");
    config.jwks_file = Some(keys.jwks_file.clone());
    let app = router(AppState::new(&config).unwrap_or_else(|e| panic!("{e:#}")));
    Harness { app, fake, keys, _server: server }
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
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
    let mut request = builder.body(body).unwrap_or_else(|e| panic!("{e}"));
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 77], 51_000))));
    let response = match app.clone().oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_caller_s_token_is_forwarded_and_public_calls_carry_none() {
    let h = harness().await;
    let member = Uuid::now_v7();
    let token = h.keys.token(Role::MemberAdmin, Some(member), None);
    let (status, headers, me) = send(&h.app, Method::GET, "/v1/me", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(h.fake.last().and_then(|s| s.authorization), Some(format!("Bearer {token}")));
    assert_eq!(headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
    assert_eq!(
        me,
        json!({
            "user": {"id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "email": "dgs@meaux.fr",
                     "display_name": "DGS de Meaux", "role": "member_admin",
                     "member_id": "0190a1b2-c3d4-7e5f-8a9b-000000000001", "provider_code": null,
                     "active": true, "created_at": "2023-11-14T22:13:20Z"},
            "referent": {"user_id": "0190a1b2-c3d4-7e5f-8a9b-000000000009", "display_name": "Référente",
                         "email": "referente@departement77.fr"}
        })
    );

    // A member_admin's user list is forced to its member.
    let (status, _, page) = send(&h.app, Method::GET, "/v1/users", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let seen = h.fake.last();
    assert_eq!(seen.as_ref().map(|s| (s.rpc, s.client.clone())), Some(("ListUsers", member.to_string())));
    assert_eq!(page["next_cursor"], "n");
    assert_eq!(page["items"][0]["role"], "member_user");

    // Login: the client address goes to membership, no token does (even if the client sends one).
    let credentials = json!({"email": "dgs@meaux.fr", "password": "Correct-Horse-9"});
    let (status, headers, pair) = send(&h.app, Method::POST, "/v1/auth/token", Some(&token), Some(credentials)).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let seen = h.fake.last();
    assert_eq!(
        seen.as_ref().map(|s| (s.rpc, s.authorization.clone(), s.client.as_str())),
        Some(("IssueToken", None, "192.0.2.77"))
    );
    assert_eq!(headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("no-store"));
    assert_eq!(
        pair,
        json!({"access_token": "header.payload.signature", "token_type": "Bearer", "expires_in": 600,
               "refresh_token": "refresh-1", "refresh_expires_in": 2_592_000})
    );
    let (status, _, _) =
        send(&h.app, Method::POST, "/v1/auth/refresh", None, Some(json!({"refresh_token": "r"}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.fake.last().map(|s| s.client), Some("192.0.2.77".to_owned()));
    let (status, _, body) =
        send(&h.app, Method::POST, "/v1/auth/logout", None, Some(json!({"refresh_token": "r"}))).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let accept = json!({"invitation_token": "invite-1", "password": "Correct-Horse-9"});
    let (status, _, pair) = send(&h.app, Method::POST, "/v1/auth/invitations/accept", None, Some(accept)).await;
    assert_eq!((status, pair["token_type"].as_str()), (StatusCode::OK, Some("Bearer")));
    assert_eq!(h.fake.last().and_then(|s| s.authorization), None);

    // A wrong password is the service's 401.
    let wrong = json!({"email": "dgs@meaux.fr", "password": "wrong"});
    let (status, headers, problem) = send(&h.app, Method::POST, "/v1/auth/token", None, Some(wrong)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert!(headers.get(header::WWW_AUTHENTICATE).is_some());
}

#[tokio::test]
async fn identity_endpoints_have_their_documented_shapes() {
    let h = harness().await;
    let (status, headers, jwks) = send(&h.app, Method::GET, "/.well-known/jwks.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"][0]["kid"], "k1");
    assert_eq!(headers.get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()), Some("public, max-age=300"));
    assert_eq!(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("application/json"));

    let operator = h.keys.token(Role::Operator, None, None);
    let (status, _, rotated) = send(&h.app, Method::POST, "/v1/auth/keys/rotate", Some(&operator), None).await;
    assert_eq!((status, rotated), (StatusCode::OK, json!({"kid": "k2"})));

    let (status, _, events) =
        send(&h.app, Method::GET, "/v1/audit-events?kind=login.failed", Some(&operator), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        events,
        json!({"items": [{"id": "e1", "kind": "login.failed", "actor_user_id": null, "subject": "dgs@meaux.fr",
                          "client": "192.0.2.7", "detail": "wrong password", "at": "2023-11-14T22:13:20Z"}],
               "next_cursor": null})
    );

    let coordinator = h.keys.token(Role::Coordinator, None, None);
    let member = Uuid::now_v7();
    let invite = json!({"email": "dgs@meaux.fr", "display_name": "DGS", "role": "member_admin", "member_id": member});
    let (status, _, invitation) = send(&h.app, Method::POST, "/v1/users", Some(&coordinator), Some(invite)).await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    assert_eq!(invitation["invitation_token"], "invite-1");
    assert_eq!(invitation["expires_at"], "2023-11-14T22:13:20Z");
    assert_eq!(invitation["user"]["role"], "member_admin");
    assert_eq!(invitation["user"]["member_id"], member.to_string());
    assert_eq!(invitation["user"]["active"], false);

    let referent = Uuid::now_v7();
    let uri = format!("/v1/memberships/{member}/referent");
    let body = json!({"referent_user_id": referent});
    let (status, _, updated) = send(&h.app, Method::PUT, &uri, Some(&coordinator), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["referent_user_id"], referent.to_string());
    assert_eq!(updated["status"], "active");
    assert_eq!(h.fake.last().and_then(|s| s.authorization), Some(format!("Bearer {coordinator}")));
}

#[tokio::test]
async fn service_errors_come_back_as_404_and_401() {
    let h = harness().await;
    let admin = h.keys.token(Role::MemberAdmin, Some(Uuid::now_v7()), None);
    // Another member's user: membership answers NOT_FOUND.
    let (status, _, problem) =
        send(&h.app, Method::DELETE, "/v1/users/0190a1b2-c3d4-7e5f-8a9b-000000000000", Some(&admin), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    assert_eq!(problem["type"], "https://id77.seine-et-marne.fr/problems/not-found");
    let (status, _, body) =
        send(&h.app, Method::DELETE, "/v1/users/0190a1b2-c3d4-7e5f-8a9b-000000000001", Some(&admin), None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    // The service refuses the forwarded token.
    let operator = h.keys.token(Role::Operator, None, None);
    let (status, headers, _) = send(&h.app, Method::GET, "/v1/audit-events?kind=refuse", Some(&operator), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers.get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()),
        Some("Bearer error=\"invalid_token\"")
    );
}

#[tokio::test]
async fn a_throttled_login_is_a_429_problem_with_the_services_retry_after() {
    let h = harness().await;
    let credentials = json!({"email": "dgs@meaux.fr", "password": "too-soon"});
    let (status, headers, problem) = send(&h.app, Method::POST, "/v1/auth/token", None, Some(credentials)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{problem}");
    let header_of = |name| headers.get(name).and_then(|v| v.to_str().ok());
    assert_eq!(header_of(header::CONTENT_TYPE), Some("application/problem+json"));
    assert_eq!(header_of(header::RETRY_AFTER), Some("4"), "3.5 s rounded up");
    assert_eq!(header_of(header::WWW_AUTHENTICATE), None, "not a credentials failure");
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["type"], "https://id77.seine-et-marne.fr/problems/rate-limited");
    assert_eq!(problem["detail"], "too many sign-in attempts: retry in 4 s");
    assert_eq!(h.fake.last().map(|s| (s.rpc, s.client)), Some(("IssueToken", "192.0.2.77".to_owned())));
}
