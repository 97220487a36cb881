//! Issue 19, item 7: the login limit is per end user behind the trusted proxies (`ID77_TRUSTED_PROXIES`: the
//! portal, the ingress), and `X-Forwarded-For` from anybody else changes nothing. The gateway runs in process
//! against a fake of membership's `IdentityService` that accepts every login and records the client address it
//! was given (the address membership throttles and audits on).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use id77_gateway::ratelimit::TrustedProxies;
use id77_gateway::{AppState, Config, router};
use id77_platform::testing::TestKeys;
use id77_proto::membership::v1 as pb;
use id77_proto::membership::v1::identity_service_server::{IdentityService, IdentityServiceServer};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};
use tower::ServiceExt;

/// The portal's pods and the ingress controller, as a chart would list them.
const PROXIES: &str = "10.42.0.0/16, fd00:42::/32";
const PORTAL: [u8; 4] = [10, 42, 3, 4];
const STRANGER: [u8; 4] = [203, 0, 113, 9];
const USERS: usize = 50;

#[derive(Clone, Default)]
struct Membership {
    clients: Arc<Mutex<Vec<String>>>,
}

impl Membership {
    fn clients(&self) -> Vec<String> {
        self.clients.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

fn unimplemented<T>() -> Result<GrpcResponse<T>, Status> {
    Err(Status::unimplemented("not in this fake"))
}

#[tonic::async_trait]
impl IdentityService for Membership {
    async fn issue_token(&self, r: GrpcRequest<pb::IssueTokenRequest>) -> Result<GrpcResponse<pb::TokenPair>, Status> {
        if let Ok(mut clients) = self.clients.lock() {
            clients.push(r.get_ref().client.clone());
        }
        Ok(GrpcResponse::new(pb::TokenPair {
            access_token: "header.payload.signature".into(),
            token_type: "Bearer".into(),
            expires_in: 600,
            refresh_token: "refresh".into(),
            refresh_expires_in: 2_592_000,
        }))
    }
    async fn refresh_token(
        &self,
        _: GrpcRequest<pb::RefreshTokenRequest>,
    ) -> Result<GrpcResponse<pb::TokenPair>, Status> {
        unimplemented()
    }
    async fn revoke_token(
        &self,
        _: GrpcRequest<pb::RevokeTokenRequest>,
    ) -> Result<GrpcResponse<pb::RevokeTokenResponse>, Status> {
        unimplemented()
    }
    async fn get_jwks(&self, _: GrpcRequest<pb::GetJwksRequest>) -> Result<GrpcResponse<pb::Jwks>, Status> {
        unimplemented()
    }
    async fn rotate_signing_key(
        &self,
        _: GrpcRequest<pb::RotateSigningKeyRequest>,
    ) -> Result<GrpcResponse<pb::RotateSigningKeyResponse>, Status> {
        unimplemented()
    }
    async fn get_me(&self, _: GrpcRequest<pb::GetMeRequest>) -> Result<GrpcResponse<pb::Me>, Status> {
        unimplemented()
    }
    async fn invite_user(&self, _: GrpcRequest<pb::InviteUserRequest>) -> Result<GrpcResponse<pb::Invitation>, Status> {
        unimplemented()
    }
    async fn accept_invitation(
        &self,
        _: GrpcRequest<pb::AcceptInvitationRequest>,
    ) -> Result<GrpcResponse<pb::TokenPair>, Status> {
        unimplemented()
    }
    async fn list_users(
        &self,
        _: GrpcRequest<pb::ListUsersRequest>,
    ) -> Result<GrpcResponse<pb::ListUsersResponse>, Status> {
        unimplemented()
    }
    async fn remove_user(
        &self,
        _: GrpcRequest<pb::RemoveUserRequest>,
    ) -> Result<GrpcResponse<pb::RemoveUserResponse>, Status> {
        unimplemented()
    }
    async fn assign_referent(
        &self,
        _: GrpcRequest<pb::AssignReferentRequest>,
    ) -> Result<GrpcResponse<pb::Member>, Status> {
        unimplemented()
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
        unimplemented()
    }
}

struct Harness {
    app: Router,
    membership: Membership,
    _keys: TestKeys,
    _server: tokio::task::JoinHandle<()>,
}

/// A gateway (default limits: 10 logins per minute per client) trusting `proxies`, in front of the fake.
async fn harness(proxies: &str) -> Harness {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let membership = Membership::default();
    let service = IdentityServiceServer::new(membership.clone());
    let server = tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = tonic::transport::Server::builder().add_service(service).serve_with_incoming(incoming).await;
    });
    let keys = TestKeys::new().unwrap_or_else(|e| panic!("{e:#}"));
    let mut config = Config::with_all_upstreams("http://127.0.0.1:1");
    config.membership_url = format!("http://{addr}");
    config.jwks_file = Some(keys.jwks_file.clone());
    config.trusted_proxies = TrustedProxies::parse(proxies).unwrap_or_else(|e| panic!("{e:#}"));
    let app = router(AppState::new(&config).unwrap_or_else(|e| panic!("{e:#}")));
    Harness { app, membership, _keys: keys, _server: server }
}

/// A login from `peer`, with `X-Forwarded-For: xff` when given; the status answered.
async fn login(app: &Router, peer: SocketAddr, xff: Option<&str>) -> StatusCode {
    let mut builder = Request::post("/v1/auth/token").header(header::CONTENT_TYPE, "application/json");
    if let Some(xff) = xff {
        builder = builder.header("x-forwarded-for", xff);
    }
    let body = Body::from(r#"{"email":"agent@meaux.fr","password":"Correct-Horse-77!"}"#);
    let mut request = builder.body(body).unwrap_or_else(|e| panic!("{e}"));
    request.extensions_mut().insert(ConnectInfo(peer));
    match app.clone().oneshot(request).await {
        Ok(response) => response.status(),
        Err(never) => match never {},
    }
}

fn user(i: usize) -> String {
    format!("198.51.100.{}", 10 + i)
}

#[tokio::test]
async fn fifty_users_behind_the_portal_each_have_their_own_login_limit() {
    let h = harness(PROXIES).await;
    let portal = SocketAddr::from((PORTAL, 41_000));
    // 50 different users sign in through the portal within the same second: none is limited.
    for i in 0..USERS {
        assert_eq!(login(&h.app, portal, Some(&user(i))).await, StatusCode::OK, "user {i}");
    }
    // Membership was told each user's own address, for its throttling and audit log.
    let expected: Vec<String> = (0..USERS).map(user).collect();
    assert_eq!(h.membership.clients(), expected);
    // The limit still holds per user: the first one gets 9 more, then 429.
    for _ in 0..9 {
        assert_eq!(login(&h.app, portal, Some(&user(0))).await, StatusCode::OK);
    }
    assert_eq!(login(&h.app, portal, Some(&user(0))).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login(&h.app, portal, Some(&user(1))).await, StatusCode::OK, "the others are untouched");
    // Through the ingress then the portal: the user's forged entries on the left change nothing; the user is the
    // rightmost address no trusted proxy vouches for.
    let chain = format!("6.6.6.6, {}, 10.42.0.1", user(0));
    assert_eq!(login(&h.app, portal, Some(&chain)).await, StatusCode::TOO_MANY_REQUESTS, "still user 0");
    let chain = "10.42.9.9, 6.6.6.6, 198.51.100.200, 10.42.0.1";
    assert_eq!(login(&h.app, portal, Some(chain)).await, StatusCode::OK);
    assert_eq!(h.membership.clients().last().map(String::as_str), Some("198.51.100.200"));
    // IPv6 proxies and users alike.
    let portal6 = SocketAddr::from(([0xfd00, 0x42, 0, 0, 0, 0, 0, 7], 41_000));
    assert_eq!(login(&h.app, portal6, Some("2001:db8:7::1")).await, StatusCode::OK);
    assert_eq!(h.membership.clients().last().map(String::as_str), Some("2001:db8:7::1"));
}

#[tokio::test]
async fn the_same_fifty_from_an_untrusted_address_are_one_client() {
    let h = harness(PROXIES).await;
    let stranger = SocketAddr::from((STRANGER, 50_000));
    let mut statuses = Vec::new();
    for i in 0..USERS {
        statuses.push(login(&h.app, stranger, Some(&user(i))).await);
    }
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((ok, limited), (10, 40), "one client, 10 per minute: {statuses:?}");
    assert!(statuses[..10].iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    // Membership only ever heard of the peer: the forged header changed nothing.
    assert_eq!(h.membership.clients(), vec!["203.0.113.9".to_owned(); 10]);
    // A stranger claiming to be a proxy's client, or a proxy, is still itself.
    let other = SocketAddr::from(([203, 0, 113, 10], 50_000));
    for _ in 0..10 {
        assert_eq!(login(&h.app, other, Some("10.42.0.1")).await, StatusCode::OK);
    }
    assert_eq!(login(&h.app, other, Some("198.51.100.99, 10.42.0.1")).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn without_trusted_proxies_the_portal_s_users_share_its_address() {
    // The reviewer's finding, kept as the documented default: no proxy configured, every portal sign-in counts
    // against the portal's own address.
    let h = harness("").await;
    let portal = SocketAddr::from((PORTAL, 41_000));
    let mut limited = 0;
    for i in 0..USERS {
        if login(&h.app, portal, Some(&user(i))).await == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert_eq!(limited, USERS - 10);
    assert!(h.membership.clients().iter().all(|c| c == "10.42.3.4"));
}
