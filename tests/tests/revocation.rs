//! Revocation reaches every service within seconds (issue 19, item 1): after a logout, a refresh-token reuse or
//! the removal of the account, the same access token, still unexpired and correctly signed, is refused with 401
//! through the gateway (requests, messages, attachments, quotes, invoice.pdf, filing a request) and with
//! UNAUTHENTICATED directly on the gRPC API of each of the five services. The delay between the revoking call's
//! answer and the first moment every check refuses is measured and printed; it must stay under 5 s.
//!
//! Before the fix, each of these tokens kept working everywhere but `/v1/me` until it expired (10 minutes).

use std::time::{Duration, Instant};

use id77_e2e::{Api, DEMO_PASSWORD, Platform, USER_PASSWORD, eventually, onboard_member};
use id77_proto::billing::v1::ListQuotesRequest;
use id77_proto::billing::v1::billing_service_client::BillingServiceClient;
use id77_proto::catalogue::v1::ListProvidersRequest;
use id77_proto::catalogue::v1::catalogue_service_client::CatalogueServiceClient;
use id77_proto::membership::v1::GetMeRequest;
use id77_proto::membership::v1::identity_service_client::IdentityServiceClient;
use id77_proto::requests::v1::ListRequestsRequest;
use id77_proto::requests::v1::requests_service_client::RequestsServiceClient;
use id77_proto::routing::v1::ListReferralsRequest;
use id77_proto::routing::v1::routing_service_client::RoutingServiceClient;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tonic::transport::Channel;

/// The bound of issue 19.
const LIMIT: Duration = Duration::from_secs(5);

/// A gRPC request carrying the bearer token.
fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The five services' gRPC channels, by name.
struct Services {
    channels: Vec<(&'static str, Channel)>,
}

impl Services {
    async fn connect(platform: &Platform) -> Self {
        let mut channels = Vec::new();
        for (name, var) in [
            ("membership", "ID77_MEMBERSHIP_URL"),
            ("catalogue", "ID77_CATALOGUE_URL"),
            ("requests", "ID77_REQUESTS_URL"),
            ("routing", "ID77_ROUTING_URL"),
            ("billing", "ID77_BILLING_URL"),
        ] {
            let url = platform.upstreams.iter().find(|(v, _)| v == var).map(|(_, u)| u.clone()).expect(var);
            let channel = Channel::from_shared(url).expect("url").connect().await.expect(name);
            channels.push((name, channel));
        }
        Self { channels }
    }

    /// One simple authenticated call per service: (service, the outcome's code and message).
    async fn probe(&self, token: &str) -> Vec<(&'static str, tonic::Code, String)> {
        let mut out = Vec::new();
        for (name, channel) in &self.channels {
            let channel = channel.clone();
            let result: Result<(), tonic::Status> = match *name {
                "membership" => {
                    IdentityServiceClient::new(channel).get_me(bearer(GetMeRequest {}, token)).await.map(|_| ())
                }
                "catalogue" => CatalogueServiceClient::new(channel)
                    .list_providers(bearer(ListProvidersRequest {}, token))
                    .await
                    .map(|_| ()),
                "requests" => RequestsServiceClient::new(channel)
                    .list_requests(bearer(ListRequestsRequest::default(), token))
                    .await
                    .map(|_| ()),
                "routing" => RoutingServiceClient::new(channel)
                    .list_referrals(bearer(ListReferralsRequest::default(), token))
                    .await
                    .map(|_| ()),
                _ => BillingServiceClient::new(channel)
                    .list_quotes(bearer(ListQuotesRequest::default(), token))
                    .await
                    .map(|_| ()),
            };
            out.push(match result {
                Ok(()) => (*name, tonic::Code::Ok, String::new()),
                Err(status) => (*name, status.code(), status.message().to_owned()),
            });
        }
        out
    }
}

/// What the user works on: its member's request.
struct Fixture {
    api: Api,
    services: Services,
    request_id: String,
    offer_id: String,
}

impl Fixture {
    /// The gateway calls of the issue, each with its answer status.
    async fn gateway(&self, token: &str) -> Vec<(String, StatusCode)> {
        let r = &self.request_id;
        let invoice = uuid::Uuid::now_v7();
        let calls: Vec<(Method, String, Option<Value>)> = vec![
            (Method::GET, "/v1/requests".into(), None),
            (Method::GET, format!("/v1/requests/{r}"), None),
            (Method::POST, format!("/v1/requests/{r}/messages"), Some(json!({"body": "Toujours là ?"}))),
            (Method::GET, format!("/v1/quotes?request_id={r}"), None),
            // An unknown invoice: 404 for a caller who may read invoices, 401 for a refused token.
            (Method::GET, format!("/v1/invoices/{invoice}.pdf"), None),
            (Method::GET, "/v1/me".into(), None),
        ];
        let mut out = Vec::new();
        for (method, path, body) in calls {
            let (status, _) = self.api.call(method.clone(), &path, Some(token), body.as_ref()).await;
            out.push((format!("{method} {path}"), status));
        }
        let (status, _) = self
            .api
            .upload(&format!("/v1/requests/{r}/attachments"), Some(token), "text/plain", "note.txt", b"Note".to_vec())
            .await;
        out.push((format!("POST /v1/requests/{r}/attachments"), status));
        out
    }

    /// Filing a request (a write that creates something: only tried once the token should be refused, or once
    /// to show it works).
    async fn file(&self, token: &str) -> StatusCode {
        let body = json!({"offer_id": self.offer_id, "subject": "Encore une demande", "description": ""});
        self.api.post("/v1/requests", Some(token), &body).await.0
    }

    /// Asserts the token works everywhere: no 401 through the gateway, no UNAUTHENTICATED on any service.
    async fn assert_works(&self, token: &str, what: &str) {
        for (call, status) in self.gateway(token).await {
            assert_ne!(status, StatusCode::UNAUTHORIZED, "{what}: {call} refused before any revocation");
            assert!(status.is_success() || status == StatusCode::NOT_FOUND, "{what}: {call} answered {status}");
        }
        for (service, code, message) in self.services.probe(token).await {
            assert_ne!(code, tonic::Code::Unauthenticated, "{what}: {service} refused the token: {message}");
        }
    }

    /// Waits until the token is refused by every check; returns how long that took from `since`, and asserts it
    /// stays refused (filing a request included).
    async fn assert_refused_within(&self, token: &str, what: &str, since: Instant) -> Duration {
        loop {
            let gateway = self.gateway(token).await;
            let services = self.services.probe(token).await;
            let open: Vec<String> = gateway
                .iter()
                .filter(|(_, s)| *s != StatusCode::UNAUTHORIZED)
                .map(|(call, s)| format!("{call} → {s}"))
                .chain(
                    services
                        .iter()
                        .filter(|(_, c, _)| *c != tonic::Code::Unauthenticated)
                        .map(|(name, c, _)| format!("{name} gRPC → {c:?}")),
                )
                .collect();
            let elapsed = since.elapsed();
            if open.is_empty() {
                for (name, _, message) in &services {
                    assert!(message.contains("revoked") || message.contains("no longer exists"), "{name}: {message}");
                }
                assert_eq!(self.file(token).await, StatusCode::UNAUTHORIZED, "{what}: filing a request");
                return elapsed;
            }
            let open = open.join(", ");
            assert!(elapsed < LIMIT + Duration::from_secs(5), "{what}: still accepted after {elapsed:?}: {open}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn login(api: &Api, email: &str) -> (String, String) {
    let pair = api.login(email, USER_PASSWORD).await.expect("login");
    (
        pair["access_token"].as_str().expect("access").to_owned(),
        pair["refresh_token"].as_str().expect("refresh").to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_refresh_reuse_and_removal_revoke_access_tokens_everywhere_within_seconds() {
    let platform = Platform::start().await.expect("platform starts");
    let api = Api::new(&platform.gateway);
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator");
    let (member_id, admin) = onboard_member(&api, &coordinator, "217702844", "dgs@meaux.fr").await.expect("member");
    let email = "agent@meaux.fr";
    let invite = json!({"email": email, "display_name": "Agent", "role": "member_user", "member_id": member_id});
    let (first_token, user_id) = api.invite_and_accept(&admin, &invite).await.expect("member user");

    // A request of the member, filed by the user, for the message, quote and attachment calls.
    let (_, offers) = api.get("/v1/offers?category=integrated_engineering&limit=100", None).await;
    let offer =
        offers["items"].as_array().and_then(|o| o.iter().find(|o| o["billed"] == true).cloned()).expect("billed offer");
    let offer_id = offer["id"].as_str().expect("an offer").to_owned();
    let body = json!({"offer_id": offer_id, "subject": "Diagnostic voirie", "description": ""});
    let request = eventually("filing a request", Duration::from_secs(30), || async {
        let (status, value) = api.post("/v1/requests", Some(&first_token), &body).await;
        (status == StatusCode::CREATED).then_some(value)
    })
    .await;
    let request_id = request["id"].as_str().expect("request id").to_owned();
    let services = Services::connect(&platform).await;
    let f = Fixture { api: api.clone(), services, request_id, offer_id };
    f.assert_works(&first_token, "the first session").await;
    let mut delays = Vec::new();

    // (a) Logout: the session's access token ends; another session of the same user goes on.
    let (access, refresh) = login(&api, email).await;
    let (other, _) = login(&api, email).await;
    f.assert_works(&access, "before logout").await;
    assert_eq!(f.file(&access).await, StatusCode::CREATED, "filing works before logout");
    let (status, body) = api.post("/v1/auth/logout", None, &json!({"refresh_token": refresh})).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let delay = f.assert_refused_within(&access, "after logout", Instant::now()).await;
    delays.push(("logout", delay));
    f.assert_works(&other, "another session after the logout").await;

    // (c) Refresh-token reuse: the whole family ends, the token issued by the legitimate refresh included.
    let (stolen_access, first_refresh) = login(&api, email).await;
    let (status, pair) = api.post("/v1/auth/refresh", None, &json!({"refresh_token": first_refresh})).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let refreshed_access = pair["access_token"].as_str().expect("access").to_owned();
    f.assert_works(&refreshed_access, "before the reuse").await;
    let (status, body) = api.post("/v1/auth/refresh", None, &json!({"refresh_token": first_refresh})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the reuse is refused: {body}");
    let since = Instant::now();
    let delay = f.assert_refused_within(&refreshed_access, "after refresh reuse", since).await;
    delays.push(("refresh reuse", delay));
    f.assert_refused_within(&stolen_access, "the family's first token after reuse", since).await;
    f.assert_works(&other, "another session after the reuse").await;

    // (b) The admin removes the user: every token of every session ends.
    let (status, body) = api.call(Method::DELETE, &format!("/v1/users/{user_id}"), Some(&admin), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let since = Instant::now();
    let delay = f.assert_refused_within(&other, "after removal", since).await;
    delays.push(("user removed", delay));
    f.assert_refused_within(&first_token, "the first session after removal", since).await;
    // Nobody else is concerned.
    f.assert_works(&admin, "the admin after removing the user").await;

    for (what, delay) in &delays {
        println!("revocation delay ({what}): {} ms (gateway and the five services' gRPC)", delay.as_millis());
    }
    for (what, delay) in delays {
        assert!(delay < LIMIT, "{what}: revocation took {delay:?}, more than {LIMIT:?}");
    }
    platform.stop().await;
}
