//! The requests service against the real PostgreSQL and NATS: read models fed by events, the submission
//! rules, the outbox event, and status moves driven by routing's events; every call carries an access token and
//! the service decides, on its own rows, who sees what (docs/authorization.md).

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use id77_platform::auth::{Claims, Role};
use id77_platform::testing::TestKeys;
use id77_platform::{Namespace, testing};
use id77_proto::catalogue::v1::{Offer, OfferPublished, Provider};
use id77_proto::membership::v1::{MemberApplied, MemberApproved, MemberUpdated};
use id77_proto::requests::v1::requests_service_client::RequestsServiceClient;
use id77_proto::requests::v1::{
    GetRequestRequest, ListRequestsRequest, Request as RequestPb, RequestStatus, SubmitRequestRequest,
};
use id77_proto::routing::v1::{ReferralAccepted, ReferralOffered};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

mod support;

struct Service {
    url: String,
    js: jetstream::Context,
    ns: Namespace,
    client: RequestsServiceClient<Channel>,
    keys: TestKeys,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start() -> Service {
    let support::Running { url, js, ns, channel, keys, shutdown, task } = support::run_requests("requests-test").await;
    Service { url, js, ns, client: RequestsServiceClient::new(channel), keys, shutdown, task }
}

impl Service {
    async fn publish<M: Message>(&self, subject: &str, id: &str, message: &M) {
        let msg = PublishMessage::build().payload(message.encode_to_vec().into()).message_id(id);
        self.js.send_publish(self.ns.subject(subject), msg).await.expect("publish").await.expect("ack");
    }

    /// A member user of `member`.
    fn member_user(&self, member: Uuid) -> String {
        self.keys.token(Role::MemberUser, Some(member), None)
    }

    async fn approve(&self, member: Uuid) {
        let at = Some(id77_platform::time::to_proto(id77_platform::time::now()));
        let approved = MemberApproved { member_id: member.to_string(), occurred_at: at, ..Default::default() };
        self.publish("id77.membership.member.approved", &format!("approved-{member}"), &approved).await;
    }

    async fn publish_offer(&self, offer: Uuid, provider: &str) {
        let offer_msg = Offer {
            id: offer.to_string(),
            code: format!("offer-{provider}"),
            title: "City-stade".into(),
            provider_code: provider.into(),
            version: 1,
            ..Default::default()
        };
        let event = OfferPublished { offer: Some(offer_msg), provider: None };
        self.publish("id77.catalogue.offer.published", &format!("offer-{offer}"), &event).await;
    }

    /// Publishes `member.updated` assigning `referent` (None: nobody) to `member`, as of `at`.
    async fn assign_referent(&self, member: Uuid, referent: Option<Uuid>, at: chrono::DateTime<chrono::Utc>) {
        let event = MemberUpdated {
            member_id: member.to_string(),
            referent_user_id: referent.map(|r| r.to_string()).unwrap_or_default(),
            occurred_at: Some(id77_platform::time::to_proto(at)),
            ..Default::default()
        };
        self.publish("id77.membership.member.updated", &Uuid::now_v7().to_string(), &event).await;
    }

    /// Submits as `token` until the read models know the member and the offer.
    async fn submit_when_ready(&mut self, token: &str, submission: SubmitRequestRequest) -> RequestPb {
        for _ in 0..200 {
            match self.client.submit_request(with_token(submission.clone(), token)).await {
                Ok(r) => return r.into_inner(),
                Err(e) if matches!(e.code(), Code::FailedPrecondition | Code::NotFound) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        panic!("the read models did not catch up")
    }

    async fn get_as(&mut self, token: &str, id: &str) -> Result<RequestPb, tonic::Status> {
        Ok(self.client.get_request(with_token(GetRequestRequest { id: id.to_owned() }, token)).await?.into_inner())
    }

    async fn list_as(&mut self, token: &str, member_id: &str) -> Result<Vec<RequestPb>, tonic::Status> {
        let req = ListRequestsRequest { member_id: member_id.to_owned(), ..Default::default() };
        Ok(self.client.list_requests(with_token(req, token)).await?.into_inner().requests)
    }

    /// Waits until `token` may get the request (an event it depends on was applied).
    async fn wait_visible(&mut self, token: &str, id: &str) -> RequestPb {
        for _ in 0..200 {
            match self.get_as(token, id).await {
                Ok(r) => return r,
                Err(e) if e.code() == Code::NotFound => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        panic!("request {id} never became visible")
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("join").expect("clean stop");
        testing::delete_streams(&self.js, &self.ns).await;
        testing::drop_database(&self.url).await;
    }
}

/// `message` with `authorization: Bearer <token>`.
fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", TestKeys::bearer(token));
    request
}

fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Code {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(status) => status.code(),
    }
}

fn submission(member: Uuid, offer: Uuid, key: &str) -> SubmitRequestRequest {
    SubmitRequestRequest {
        member_id: member.to_string(),
        offer_id: offer.to_string(),
        subject: "Aménagement d'un city-stade".into(),
        description: "Étude de faisabilité".into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn only_active_members_submit_and_referral_events_move_the_request() {
    let mut s = start().await;
    let (member, offer) = (Uuid::now_v7(), Uuid::now_v7());
    let user = s.member_user(member);
    let coordinator = s.keys.token(Role::Coordinator, None, None);

    // Unknown member: refused with a typed precondition error.
    let err =
        s.client.submit_request(with_token(submission(member, offer, "k1"), &user)).await.expect_err("not active");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(id77_platform::ServiceError::from_status(&err).reason, "MEMBER_NOT_ACTIVE");

    // Membership and catalogue events feed the read models.
    s.publish(
        "id77.membership.member.applied",
        "m-applied",
        &MemberApplied {
            member_id: member.to_string(),
            occurred_at: Some(id77_platform::time::to_proto(id77_platform::time::now())),
            ..Default::default()
        },
    )
    .await;
    s.publish(
        "id77.membership.member.approved",
        "m-approved",
        &MemberApproved {
            member_id: member.to_string(),
            occurred_at: Some(id77_platform::time::to_proto(id77_platform::time::now())),
            ..Default::default()
        },
    )
    .await;
    let offer_msg = Offer {
        id: offer.to_string(),
        code: "city-stade".into(),
        title: "City-stade".into(),
        provider_code: "dir-sport".into(),
        version: 1,
        ..Default::default()
    };
    // The catalogue names the provider: history lines use the name (issue 21).
    let provider = Provider { code: "dir-sport".into(), name: "Direction des sports".into(), ..Default::default() };
    s.publish(
        "id77.catalogue.offer.published",
        "o-1",
        &OfferPublished { offer: Some(offer_msg), provider: Some(provider) },
    )
    .await;

    let mut submitted = None;
    for _ in 0..100 {
        match s.client.submit_request(with_token(submission(member, offer, "k1"), &user)).await {
            Ok(r) => {
                // Filed by this call: not a replay.
                assert!(r.metadata().get(id77_proto::IDEMPOTENCY_REPLAYED_METADATA).is_none());
                submitted = Some(r.into_inner());
                break;
            }
            Err(e) if matches!(e.code(), Code::FailedPrecondition | Code::NotFound) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    let request = submitted.expect("submitted once the read models caught up");
    assert_eq!(request.status(), RequestStatus::Submitted);

    // Same idempotency key: the same request, and the answer says it is a replay.
    let again = s.client.submit_request(with_token(submission(member, offer, "k1"), &user)).await.expect("resubmit");
    assert_eq!(
        again.metadata().get(id77_proto::IDEMPOTENCY_REPLAYED_METADATA).and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let again = again.into_inner();
    assert_eq!(again.id, request.id);

    // Exactly one request.submitted event reached the REQUESTS stream.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut stream = s.js.get_stream(s.ns.stream("REQUESTS")).await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 1);

    // Routing's events move it along: offered to the CAUE, re-routed to the sports directorate (the CAUE
    // declined), accepted there; a late redelivery of the first offer changes nothing.
    let t0 = id77_platform::time::now();
    let first = ReferralOffered {
        request_id: request.id.clone(),
        provider_code: "caue77".into(),
        occurred_at: Some(id77_platform::time::to_proto(t0)),
        ..Default::default()
    };
    s.publish("id77.routing.referral.offered", "r-offered", &first).await;
    let offered = ReferralOffered {
        request_id: request.id.clone(),
        provider_code: "dir-sport".into(),
        occurred_at: Some(id77_platform::time::to_proto(t0 + chrono::TimeDelta::seconds(1))),
        ..Default::default()
    };
    s.publish("id77.routing.referral.offered", "r-rerouted", &offered).await;
    let accepted =
        ReferralAccepted { request_id: request.id.clone(), provider_code: "dir-sport".into(), ..Default::default() };
    s.publish("id77.routing.referral.accepted", "r-accepted", &accepted).await;
    s.publish("id77.routing.referral.offered", "r-offered-replayed", &first).await;

    let mut last = None;
    for _ in 0..100 {
        let r = s
            .client
            .get_request(with_token(GetRequestRequest { id: request.id.clone() }, &coordinator))
            .await
            .expect("get")
            .into_inner();
        if r.status() == RequestStatus::Accepted {
            last = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = s
        .client
        .get_request(with_token(GetRequestRequest { id: request.id.clone() }, &coordinator))
        .await
        .expect("get")
        .into_inner();
    assert!(last.is_some(), "accepted");
    assert_eq!(r.status(), RequestStatus::Accepted, "the replayed offered event is stale");
    assert_eq!(r.provider_code, "dir-sport");
    let steps: Vec<RequestStatus> = r.history.iter().map(|h| h.status()).collect();
    assert_eq!(
        steps,
        vec![RequestStatus::Submitted, RequestStatus::Referred, RequestStatus::Referred, RequestStatus::Accepted]
    );
    assert_eq!(r.history[2].reason, "Réorientée vers Direction des sports");

    // The same key with another body is a conflict, and files nothing.
    let mut other = submission(member, offer, "k1");
    other.subject = "Un autre objet".into();
    let refused = s.client.submit_request(with_token(other, &user)).await.map(|_| ()).map_err(|e| e.code());
    assert_eq!(refused, Err(Code::AlreadyExists));
    // Eight calls at once with a new key: one request filed, each call answered with it.
    let calls = (0..8).map(|_| {
        let mut client = s.client.clone();
        let req = with_token(submission(member, offer, "k-concurrent"), &user);
        async move { client.submit_request(req).await.map(|r| r.into_inner().id) }
    });
    let ids: Vec<String> =
        futures::future::join_all(calls).await.into_iter().collect::<Result<_, _>>().expect("every call answered");
    assert!(ids.iter().all(|id| *id == ids[0]), "one request for one key: {ids:?}");
    let listed = s
        .client
        .list_requests(with_token(ListRequestsRequest::default(), &coordinator))
        .await
        .expect("list")
        .into_inner()
        .requests;
    assert_eq!(listed.len(), 2, "k1 and k-concurrent, nothing more");
    s.stop().await;
}

#[tokio::test]
async fn bad_input_gets_field_errors_not_a_panic() {
    let mut s = start().await;
    let user = s.member_user(Uuid::now_v7());
    let bad = SubmitRequestRequest { member_id: "x".into(), subject: "s".repeat(201), ..Default::default() };
    let err = s.client.submit_request(with_token(bad, &user)).await.expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> =
        id77_platform::ServiceError::from_status(&err).violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, vec!["member_id", "offer_id", "subject"]);
    let err = s.get_as(&user, &Uuid::now_v7().to_string()).await.expect_err("missing");
    assert_eq!(err.code(), Code::NotFound);
    let err = s.get_as(&user, "not-a-uuid").await.expect_err("invalid id");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = s.list_as(&user, "not-a-uuid").await.expect_err("invalid member id");
    assert_eq!(err.code(), Code::InvalidArgument);
    s.stop().await;
}

#[tokio::test]
async fn members_submit_and_see_only_their_own_requests() {
    let mut s = start().await;
    let (a, b, offer) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    s.approve(a).await;
    s.approve(b).await;
    s.publish_offer(offer, "dir-sport").await;
    let (user_a, admin_b) = (s.member_user(a), s.keys.token(Role::MemberAdmin, Some(b), None));

    // An empty member_id is the caller's member.
    let empty = SubmitRequestRequest { member_id: String::new(), ..submission(a, offer, "a-1") };
    let request = s.submit_when_ready(&user_a, empty).await;
    assert_eq!(request.member_id, a.to_string());
    let of_b = s.submit_when_ready(&admin_b, submission(b, offer, "b-1")).await;

    // Submitting for another member: not found; for roles that never submit: forbidden.
    assert_eq!(code(s.client.submit_request(with_token(submission(a, offer, "b-2"), &admin_b)).await), Code::NotFound);
    for role in [Role::Coordinator, Role::Referent, Role::Operator] {
        let token = s.keys.token(role, None, None);
        let denied = s.client.submit_request(with_token(submission(a, offer, "x"), &token)).await;
        assert_eq!(code(denied), Code::PermissionDenied, "{role:?}");
    }
    let agent = s.keys.token(Role::ProviderAgent, None, Some("dir-sport"));
    let denied = s.client.submit_request(with_token(submission(a, offer, "x"), &agent)).await;
    assert_eq!(code(denied), Code::PermissionDenied);

    // A member's users read their own requests; another member's is answered like an unknown id.
    assert_eq!(s.get_as(&user_a, &request.id).await.map(|r| r.id).ok(), Some(request.id.clone()));
    let foreign = s.get_as(&admin_b, &request.id).await.expect_err("foreign");
    let unknown_id = Uuid::now_v7().to_string();
    let unknown = s.get_as(&admin_b, &unknown_id).await.expect_err("unknown");
    assert_eq!((foreign.code(), unknown.code()), (Code::NotFound, Code::NotFound));
    assert_eq!(foreign.message().replace(&request.id, "ID"), unknown.message().replace(&unknown_id, "ID"));

    // Lists are forced to the caller's member: empty is theirs, another member's is not found.
    let listed: Vec<String> = s.list_as(&user_a, "").await.expect("own list").into_iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![request.id.clone()]);
    let listed: Vec<String> =
        s.list_as(&admin_b, &b.to_string()).await.expect("own list").into_iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![of_b.id.clone()]);
    assert_eq!(code(s.list_as(&admin_b, &a.to_string()).await), Code::NotFound);

    // The coordinator sees everything operational: one member's requests, or every member's.
    let coordinator = s.keys.token(Role::Coordinator, None, None);
    assert!(s.get_as(&coordinator, &request.id).await.is_ok());
    assert_eq!(s.list_as(&coordinator, &a.to_string()).await.map(|l| l.len()).ok(), Some(1));
    assert_eq!(s.list_as(&coordinator, "").await.map(|l| l.len()).ok(), Some(2));

    // The operator sees no operational data; a provider agent lists only what was referred to it (nothing yet),
    // never a member's requests.
    let operator = s.keys.token(Role::Operator, None, None);
    assert_eq!(code(s.get_as(&operator, &request.id).await), Code::PermissionDenied);
    assert_eq!(code(s.get_as(&operator, &unknown_id).await), Code::PermissionDenied);
    assert_eq!(code(s.list_as(&operator, &a.to_string()).await), Code::PermissionDenied);
    assert_eq!(code(s.list_as(&agent, &a.to_string()).await), Code::NotFound);
    assert_eq!(s.list_as(&agent, "").await.map(|l| l.len()).ok(), Some(0));
    s.stop().await;
}

#[tokio::test]
async fn a_provider_agent_sees_a_request_once_it_is_referred_to_its_provider() {
    let mut s = start().await;
    let (member, offer) = (Uuid::now_v7(), Uuid::now_v7());
    s.approve(member).await;
    s.publish_offer(offer, "dir-sport").await;
    let user = s.member_user(member);
    let request = s.submit_when_ready(&user, submission(member, offer, "k")).await;
    let agent = s.keys.token(Role::ProviderAgent, None, Some("dir-sport"));
    let other_agent = s.keys.token(Role::ProviderAgent, None, Some("caue77"));

    // Not referred yet: not found, even for the offer's provider.
    assert_eq!(code(s.get_as(&agent, &request.id).await), Code::NotFound);

    let offered =
        ReferralOffered { request_id: request.id.clone(), provider_code: "dir-sport".into(), ..Default::default() };
    s.publish("id77.routing.referral.offered", "offered", &offered).await;
    let seen = s.wait_visible(&agent, &request.id).await;
    assert_eq!((seen.status(), seen.provider_code.as_str()), (RequestStatus::Referred, "dir-sport"));
    assert_eq!(code(s.get_as(&other_agent, &request.id).await), Code::NotFound);
    s.stop().await;
}

#[tokio::test]
async fn a_referent_sees_the_requests_of_the_members_it_follows() {
    let mut s = start().await;
    let (followed, other, offer) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    s.approve(followed).await;
    s.approve(other).await;
    s.publish_offer(offer, "dir-sport").await;
    let request = s.submit_when_ready(&s.member_user(followed), submission(followed, offer, "k")).await;
    let of_other = s.submit_when_ready(&s.member_user(other), submission(other, offer, "k")).await;
    let (referent, successor) = (Uuid::now_v7(), Uuid::now_v7());
    let mut claims = Claims::new(referent, Role::Referent, id77_platform::time::now().timestamp());
    let token = s.keys.sign(&claims);
    claims.sub = successor.to_string();
    let successor_token = s.keys.sign(&claims);

    // Before the coordinator assigns it: not found.
    assert_eq!(code(s.get_as(&token, &request.id).await), Code::NotFound);
    assert_eq!(code(s.list_as(&token, &followed.to_string()).await), Code::NotFound);

    let assigned_at = id77_platform::time::now();
    s.assign_referent(followed, Some(referent), assigned_at).await;
    let seen = s.wait_visible(&token, &request.id).await;
    assert_eq!(seen.member_id, followed.to_string());
    let listed: Vec<String> =
        s.list_as(&token, &followed.to_string()).await.expect("list").into_iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![request.id.clone()]);
    // Only the members it follows: naming none lists all of theirs.
    assert_eq!(code(s.get_as(&token, &of_other.id).await), Code::NotFound);
    assert_eq!(code(s.list_as(&token, &other.to_string()).await), Code::NotFound);
    let all: Vec<String> = s.list_as(&token, "").await.expect("followed").into_iter().map(|r| r.id).collect();
    assert_eq!(all, vec![request.id.clone()]);

    // A late, older assignment changes nothing; a newer one moves the member to another referent.
    s.assign_referent(followed, Some(successor), assigned_at - chrono::Duration::minutes(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s.get_as(&token, &request.id).await.is_ok(), "an older event overwrote a newer one");
    assert_eq!(code(s.get_as(&successor_token, &request.id).await), Code::NotFound);
    s.assign_referent(followed, Some(successor), assigned_at + chrono::Duration::seconds(1)).await;
    s.wait_visible(&successor_token, &request.id).await;
    assert_eq!(code(s.get_as(&token, &request.id).await), Code::NotFound);
    s.stop().await;
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let mut s = start().await;
    let member = Uuid::now_v7();
    let id = Uuid::now_v7().to_string();
    let now = id77_platform::time::now().timestamp();

    // No token at all.
    assert_eq!(code(s.client.submit_request(submission(member, member, "k")).await), Code::Unauthenticated);
    assert_eq!(code(s.client.get_request(GetRequestRequest { id: id.clone() }).await), Code::Unauthenticated);
    let list = ListRequestsRequest { member_id: member.to_string(), ..Default::default() };
    assert_eq!(code(s.client.list_requests(list).await), Code::Unauthenticated);

    // Tokens that fail verification.
    let mut expired = Claims::new(Uuid::now_v7(), Role::Coordinator, now - 3600);
    expired.member_id = None;
    let mut wrong_audience = Claims::new(Uuid::now_v7(), Role::Coordinator, now);
    wrong_audience.aud = "another-api".into();
    let other_keys = TestKeys::new().expect("keys");
    let mut tampered = s.keys.token(Role::MemberUser, Some(member), None);
    let last = tampered.pop();
    tampered.push(if last == Some('A') { 'Q' } else { 'A' });
    for token in [
        s.keys.sign(&expired),
        s.keys.sign(&wrong_audience),
        other_keys.token(Role::Coordinator, None, None),
        tampered,
        "garbage".to_owned(),
    ] {
        assert_eq!(code(s.get_as(&token, &id).await), Code::Unauthenticated, "{token}");
        assert_eq!(code(s.list_as(&token, &member.to_string()).await), Code::Unauthenticated);
        let submit = s.client.submit_request(with_token(submission(member, member, "k"), &token)).await;
        assert_eq!(code(submit), Code::Unauthenticated);
    }
    // A scheme other than Bearer is no token.
    let mut basic = tonic::Request::new(GetRequestRequest { id });
    basic.metadata_mut().insert("authorization", tonic::metadata::MetadataValue::from_static("Basic dXNlcjpwdw=="));
    assert_eq!(code(s.client.get_request(basic).await), Code::Unauthenticated);
    s.stop().await;
}
