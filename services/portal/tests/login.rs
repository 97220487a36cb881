//! Signing in through the portal, end to end: browsers → a real portal (`id77_portal::run`, its own fresh
//! database) → a real gateway (`id77_gateway::run`, default limits: 10 logins per minute per client) → a fake of
//! membership's `IdentityService` that accepts every login, mints a real token and records the client address
//! it was given.
//!
//! Issue 19: after login the portal follows `suite` only to a path of its own (item 2: no open redirect, no
//! 500 on control characters); the portal's users each have their own login limit when the gateway trusts
//! the portal (item 7, `ID77_TRUSTED_PROXIES`). Each browser connects from its own loopback address
//! (127.0.0.x), as different users would from their own machines.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use id77_gateway::ratelimit::TrustedProxies;
use id77_platform::auth::Role;
use id77_platform::testing::{TestKeys, drop_database, fresh_database_url};
use id77_portal::session;
use id77_proto::membership::v1 as pb;
use id77_proto::membership::v1::identity_service_server::{IdentityService, IdentityServiceServer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

const PASSWORD: &str = "Correct-Horse-77!";
const USERS: u8 = 50;

// --- A fake membership ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Membership {
    keys: Arc<TestKeys>,
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
        if r.get_ref().password != PASSWORD {
            return Err(Status::unauthenticated("wrong email or password"));
        }
        Ok(GrpcResponse::new(pb::TokenPair {
            access_token: self.keys.token(Role::Coordinator, None, None),
            token_type: "Bearer".into(),
            expires_in: 600,
            refresh_token: "refresh".into(),
            refresh_expires_in: 2_592_000,
        }))
    }
    async fn get_me(&self, _: GrpcRequest<pb::GetMeRequest>) -> Result<GrpcResponse<pb::Me>, Status> {
        let user = pb::User {
            id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into(),
            email: "coordination@id77.test".into(),
            display_name: "Camille Coordination".into(),
            role: pb::Role::Coordinator.into(),
            active: true,
            ..Default::default()
        };
        Ok(GrpcResponse::new(pb::Me { user: Some(user), referent: None }))
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

// --- The platform: membership, gateway, portal -------------------------------------------------------------------

struct Platform {
    portal: SocketAddr,
    membership: Membership,
    db: String,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Platform {
    /// Everything up, the gateway trusting `proxies` (`ID77_TRUSTED_PROXIES`).
    async fn start(label: &str, proxies: &str) -> Self {
        let keys = Arc::new(TestKeys::new().expect("test keys"));
        let membership = Membership { keys: keys.clone(), clients: Arc::default() };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind membership");
        let membership_addr = listener.local_addr().expect("address");
        let service = IdentityServiceServer::new(membership.clone());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let mut tasks = vec![tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                .await?;
            Ok(())
        })];

        let mut gateway = id77_gateway::Config::with_all_upstreams("http://127.0.0.1:1");
        gateway.membership_url = format!("http://{membership_addr}");
        gateway.jwks_file = Some(keys.jwks_file.clone());
        gateway.trusted_proxies = TrustedProxies::parse(proxies).expect("trusted proxies");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the gateway");
        let gateway_url = format!("http://{}", listener.local_addr().expect("address"));
        tasks.push(tokio::spawn(id77_gateway::run(gateway, listener, shutdown.clone())));

        let db = fresh_database_url(label);
        let config = id77_portal::Config::for_gateway(&gateway_url, &db);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the portal");
        let portal = listener.local_addr().expect("address");
        tasks.push(tokio::spawn(id77_portal::run(config, listener, shutdown.clone())));
        let client = reqwest::Client::new();
        for _ in 0..200 {
            let up = client.get(format!("{gateway_url}/healthz")).send().await.is_ok_and(|r| r.status().is_success())
                && client.get(format!("http://{portal}/healthz")).send().await.is_ok_and(|r| r.status().is_success());
            if up {
                return Self { portal, membership, db, shutdown, tasks };
            }
            assert!(tasks.iter().all(|t| !t.is_finished()), "a process stopped at start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the platform did not start");
    }

    async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            task.await.expect("task").expect("stopped cleanly");
        }
        drop_database(&self.db).await;
    }
}

// --- Browsers ------------------------------------------------------------------------------------------------------

/// One browser on its own address: keeps the session cookie, follows no redirect.
struct Browser {
    client: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: StatusCode,
    location: String,
    body: String,
}

impl Browser {
    fn at(address: IpAddr) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .local_address(address)
            .build()
            .expect("client");
        Self { client, cookie: None }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(id) => request.header("cookie", format!("{}={id}", session::COOKIE)),
            None => request,
        };
        let response = request.send().await.expect("the portal answers");
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap_or_default();
            if let Some(id) = session::cookie_value(value.split(';').next().unwrap_or_default(), false) {
                self.cookie = Some(id.to_owned());
            }
        }
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        let location = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        Page { status, location, body: response.text().await.unwrap_or_default() }
    }

    /// The login form, then its POST with `suite`; `forwarded_for` is sent with the POST, as a browser may.
    async fn sign_in(&mut self, portal: SocketAddr, suite: &str, forwarded_for: Option<&str>) -> Page {
        let form = self.send(self.client.get(format!("http://{portal}/connexion"))).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let csrf = csrf_of(&form.body);
        let fields =
            [("_csrf", csrf.as_str()), ("email", "coordination@id77.test"), ("password", PASSWORD), ("suite", suite)];
        let mut post = self.client.post(format!("http://{portal}/connexion")).form(&fields);
        if let Some(xff) = forwarded_for {
            post = post.header("x-forwarded-for", xff);
        }
        self.send(post).await
    }
}

fn csrf_of(body: &str) -> String {
    let marker = r#"name="_csrf" value=""#;
    let start = body.find(marker).expect("a form with a CSRF token") + marker.len();
    body[start..].split('"').next().unwrap_or_default().to_owned()
}

/// User `i`'s own address.
fn user(i: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, 10 + i])
}

// --- Tests ---------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn after_login_suite_is_followed_only_to_a_path_of_the_portal() {
    let platform = Platform::start("portal_suite", "127.0.0.1").await;
    let attacks = [
        "/\t/evil.example",
        "/\n/evil.example",
        "/\r\n/evil.example",
        "/\0/evil.example",
        "//evil.example",
        "/\\evil.example",
        "/%2f%2fevil.example",
        "/%5cevil.example",
        "/%09/evil.example",
        "https://evil.example/",
    ];
    for (i, suite) in attacks.iter().enumerate() {
        let mut browser = Browser::at(user(u8::try_from(i).unwrap_or(0)));
        let done = browser.sign_in(platform.portal, suite, None).await;
        assert_eq!((done.status, done.location.as_str()), (StatusCode::SEE_OTHER, "/"), "{suite:?}: {}", done.body);
        let home = browser.send(browser.client.get(format!("http://{}/", platform.portal))).await;
        assert!(home.body.contains("Bienvenue, Camille Coordination."), "signed in all the same ({suite:?})");
    }
    let mut browser = Browser::at(user(40));
    let done = browser.sign_in(platform.portal, "/demandes?statut=ouverte", None).await;
    assert_eq!((done.status, done.location.as_str()), (StatusCode::SEE_OTHER, "/demandes?statut=ouverte"));
    platform.stop().await;
}

#[tokio::test]
async fn fifty_users_sign_in_through_the_portal_within_a_minute() {
    // The gateway trusts the portal (here, on 127.0.0.1) and nobody else.
    let platform = Platform::start("portal_fifty", "127.0.0.1").await;
    for i in 0..USERS {
        let mut browser = Browser::at(user(i));
        let done = browser.sign_in(platform.portal, "/", None).await;
        assert_eq!((done.status, done.location.as_str()), (StatusCode::SEE_OTHER, "/"), "user {i}: {}", done.body);
    }
    // Membership throttled and audited each on its own address.
    let expected: Vec<String> = (0..USERS).map(|i| user(i).to_string()).collect();
    assert_eq!(platform.membership.clients(), expected);

    // A browser forging X-Forwarded-For (another user's address, or the portal's) is still itself: after its
    // 10 logins it is limited, whatever it claims, and the user it names is not.
    let forger = IpAddr::from([127, 0, 0, 99]);
    for claim in ["127.0.0.10", "127.0.0.1", "6.6.6.6, 127.0.0.11"].iter().cycle().take(10) {
        let done = Browser::at(forger).sign_in(platform.portal, "/", Some(claim)).await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{claim}: {}", done.body);
    }
    assert!(platform.membership.clients()[usize::from(USERS)..].iter().all(|c| c == "127.0.0.99"));
    let refused = Browser::at(forger).sign_in(platform.portal, "/", Some("127.0.0.12")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    let done = Browser::at(user(2)).sign_in(platform.portal, "/", None).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "the user the forger named is untouched: {}", done.body);
    platform.stop().await;
}

#[tokio::test]
async fn without_trusting_the_portal_its_users_share_one_login_limit() {
    // The reviewer's finding, which stays the behaviour of a gateway trusting no proxy.
    let platform = Platform::start("portal_shared_limit", "").await;
    let mut signed_in = 0;
    for i in 0..15 {
        if Browser::at(user(i)).sign_in(platform.portal, "/", None).await.status == StatusCode::SEE_OTHER {
            signed_in += 1;
        }
    }
    assert_eq!(signed_in, 10);
    assert!(platform.membership.clients().iter().all(|c| c == "127.0.0.1"));
    platform.stop().await;
}
