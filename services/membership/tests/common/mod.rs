//! Starts membership in-process against the real PostgreSQL and NATS, each test with its own database and
//! subject prefix, with the demo accounts of `ID77_DEMO_PASSWORD`-style settings.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use id77_platform::auth::{Claims, Jwks, Verifier};
use id77_platform::{Namespace, nats, testing};
use id77_proto::membership::v1::identity_service_client::IdentityServiceClient;
use id77_proto::membership::v1::membership_service_client::MembershipServiceClient;
use id77_proto::membership::v1::{
    AcceptInvitationRequest, ApplyForMembershipRequest, ApproveMembershipRequest, GetJwksRequest, GetMeRequest,
    InviteUserRequest, IssueTokenRequest, Member, Role, TokenPair, User,
};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// Password of the demo accounts.
pub const DEMO_PASSWORD: &str = "Essai-ID77-2026!";
/// Password given to invited users.
pub const USER_PASSWORD: &str = "Mot2passe-Solide!";
/// Providers with a demo agent.
pub const PROVIDERS: [&str; 2] = ["caue77", "dir-routes"];
pub const OPERATOR: &str = "operateur@id77.demo";
pub const COORDINATOR: &str = "coordination@id77.demo";
pub const REFERENT: &str = "referent@id77.demo";
pub const AGENT: &str = "agent.caue77@id77.demo";
/// Meaux, Achères-la-Forêt, Provins: collectivités of the directory.
pub const MEAUX: &str = "217702844";
pub const ACHERES: &str = "217700012";
pub const PROVINS: &str = "217703792";

pub fn directory_dir() -> PathBuf {
    let dir = std::env::var_os("ID77_DIRECTORY_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/decoupage-administratif/data"));
    assert!(dir.join("communes.json").exists(), "{} missing: run `make test`", dir.display());
    dir
}

/// The configuration of a test service: the real directory, the demo accounts.
pub fn config(url: &str, prefix: &str, addr: std::net::SocketAddr) -> id77_membership::Config {
    id77_membership::Config {
        platform: testing::platform_config("membership", url, prefix, addr),
        directory_dir: Some(directory_dir()),
        departement: "77".into(),
        demo_password: Some(DEMO_PASSWORD.into()),
        demo_providers: PROVIDERS.iter().map(|p| (*p).to_owned()).collect(),
        bootstrap_operator_email: None,
        mail: id77_membership::mail::MailConfig::queue_only(),
    }
}

pub struct Service {
    pub url: String,
    pub prefix: String,
    pub js: jetstream::Context,
    pub ns: Namespace,
    pub client: MembershipServiceClient<Channel>,
    pub identity: IdentityServiceClient<Channel>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn start(url: &str, prefix: &str) -> Service {
    start_with(url, prefix, |_| {}).await
}

pub async fn start_with(url: &str, prefix: &str, adjust: impl FnOnce(&mut id77_membership::Config)) -> Service {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = config(url, prefix, addr);
    adjust(&mut config);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(id77_membership::run(config, listener, shutdown.clone()));
    let (_, js) = nats::connect(&testing::nats_url(), "membership-test").await.expect("nats");
    let mut channel = None;
    for _ in 0..600 {
        if let Ok(c) = Channel::from_shared(format!("http://{addr}")).expect("url").connect().await {
            channel = Some(c);
            break;
        }
        assert!(!task.is_finished(), "membership stopped while starting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let channel = channel.expect("membership answers");
    Service {
        url: url.to_owned(),
        prefix: prefix.to_owned(),
        js,
        ns: Namespace::new(prefix),
        client: MembershipServiceClient::new(channel.clone()),
        identity: IdentityServiceClient::new(channel),
        shutdown,
        task,
    }
}

/// A fresh database and prefix, and the service on them.
pub async fn fresh(label: &str) -> Service {
    start(&testing::fresh_database_url(label), &testing::fresh_prefix()).await
}

/// A request carrying `token` as its bearer token.
pub fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", testing::TestKeys::bearer(token));
    request
}

/// The claims of a token, unverified.
pub fn claims(token: &str) -> Claims {
    let payload = token.split('.').nth(1).expect("a JWS");
    serde_json::from_slice(&B64.decode(payload).expect("base64")).expect("claims")
}

/// The `kid` of a token's header.
pub fn kid(token: &str) -> String {
    let header = token.split('.').next().expect("a JWS");
    let header: serde_json::Value = serde_json::from_slice(&B64.decode(header).expect("base64")).expect("header");
    header["kid"].as_str().expect("kid").to_owned()
}

pub fn code<T: std::fmt::Debug>(result: Result<T, Status>) -> Code {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(status) => status.code(),
    }
}

impl Service {
    pub async fn stop(self) -> (String, jetstream::Context, Namespace) {
        self.shutdown.cancel();
        self.task.await.expect("join").expect("clean stop");
        (self.url, self.js, self.ns)
    }

    /// Stops the service and deletes its streams and database.
    pub async fn cleanup(self) {
        let (url, js, ns) = self.stop().await;
        testing::delete_streams(&js, &ns).await;
        testing::drop_database(&url).await;
    }

    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.url).await.expect("pool")
    }

    pub async fn login(&self, email: &str, password: &str) -> Result<TokenPair, Status> {
        let request = IssueTokenRequest { email: email.into(), password: password.into(), client: "192.0.2.7".into() };
        self.identity.clone().issue_token(request).await.map(|r| r.into_inner())
    }

    /// An access token of a demo account.
    pub async fn token(&self, email: &str) -> String {
        self.login(email, DEMO_PASSWORD).await.expect("demo login").access_token
    }

    pub async fn me(&self, token: &str) -> Result<id77_proto::membership::v1::Me, Status> {
        self.identity.clone().get_me(authed(GetMeRequest {}, token)).await.map(|r| r.into_inner())
    }

    /// The keys the service publishes.
    pub async fn jwks(&self) -> Jwks {
        let json = self.identity.clone().get_jwks(GetJwksRequest {}).await.expect("jwks").into_inner().json;
        serde_json::from_str(&json).expect("jwks json")
    }

    /// Checks a token against the published keys, as another service would.
    pub async fn verify(&self, token: &str) -> Claims {
        Verifier::from_jwks(&self.jwks().await).verify(token, chrono::Utc::now().timestamp()).expect("verifies")
    }

    /// A collectivité applies and the coordinator approves it.
    pub async fn approved_member(&self, coordinator: &str, siren: &str) -> Member {
        let apply = ApplyForMembershipRequest {
            siren: siren.into(),
            contact_name: "Mairie".into(),
            contact_email: format!("mairie.{siren}@example.fr"),
        };
        let member = self.client.clone().apply_for_membership(apply).await.expect("apply").into_inner();
        self.client
            .clone()
            .approve_membership(authed(ApproveMembershipRequest { member_id: member.id }, coordinator))
            .await
            .expect("approve")
            .into_inner()
    }

    /// Invites an account as `inviter` and accepts the invitation with [`USER_PASSWORD`].
    pub async fn invite_and_accept(
        &self,
        inviter: &str,
        email: &str,
        role: Role,
        member_id: &str,
        provider_code: &str,
    ) -> (User, TokenPair) {
        let invite = InviteUserRequest {
            email: email.into(),
            display_name: format!("Compte {email}"),
            role: role.into(),
            member_id: member_id.into(),
            provider_code: provider_code.into(),
        };
        let invitation = self.identity.clone().invite_user(authed(invite, inviter)).await.expect("invite").into_inner();
        let pair = self
            .identity
            .clone()
            .accept_invitation(AcceptInvitationRequest {
                invitation_token: invitation.invitation_token,
                password: USER_PASSWORD.into(),
            })
            .await
            .expect("accept")
            .into_inner();
        (invitation.user.expect("user"), pair)
    }
}
