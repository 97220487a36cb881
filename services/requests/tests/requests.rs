//! The requests service against the real PostgreSQL and NATS: read models fed by events, the submission
//! rules, the outbox event, and status moves driven by routing's events.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use id77_platform::{Namespace, nats, streams, testing};
use id77_proto::catalogue::v1::{Offer, OfferPublished};
use id77_proto::membership::v1::{MemberApplied, MemberApproved};
use id77_proto::requests::v1::requests_service_client::RequestsServiceClient;
use id77_proto::requests::v1::{GetRequestRequest, RequestStatus, SubmitRequestRequest};
use id77_proto::routing::v1::{ReferralAccepted, ReferralOffered};
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

struct Service {
    url: String,
    js: jetstream::Context,
    ns: Namespace,
    client: RequestsServiceClient<Channel>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start() -> Service {
    let url = testing::fresh_database_url("requests");
    let prefix = testing::fresh_prefix();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let config = id77_requests::Config { platform: testing::platform_config("requests", &url, &prefix, addr) };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(id77_requests::run(config, listener, shutdown.clone()));
    let (_, js) = nats::connect(&testing::nats_url(), "requests-test").await.expect("nats");
    let ns = Namespace::new(prefix);
    for def in [streams::MEMBERSHIP, streams::CATALOGUE, streams::ROUTING] {
        nats::ensure_stream(&js, &ns, def).await.expect("stream");
    }
    let mut client = None;
    for _ in 0..100 {
        if let Ok(c) = RequestsServiceClient::connect(format!("http://{addr}")).await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Service { url, js, ns, client: client.expect("requests answers"), shutdown, task }
}

impl Service {
    async fn publish<M: Message>(&self, subject: &str, id: &str, message: &M) {
        let msg = PublishMessage::build().payload(message.encode_to_vec().into()).message_id(id);
        self.js.send_publish(self.ns.subject(subject), msg).await.expect("publish").await.expect("ack");
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("join").expect("clean stop");
        testing::delete_streams(&self.js, &self.ns).await;
        testing::drop_database(&self.url).await;
    }
}

fn submission(member: Uuid, offer: Uuid, key: &str) -> SubmitRequestRequest {
    SubmitRequestRequest {
        member_id: member.to_string(),
        offer_id: offer.to_string(),
        subject: "Aménagement d'un city-stade".into(),
        description: "Étude de faisabilité".into(),
        idempotency_key: key.into(),
    }
}

#[tokio::test]
async fn only_active_members_submit_and_referral_events_move_the_request() {
    let mut s = start().await;
    let (member, offer) = (Uuid::now_v7(), Uuid::now_v7());

    // Unknown member: refused with a typed precondition error.
    let err = s.client.submit_request(submission(member, offer, "k1")).await.expect_err("not active");
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
    s.publish("id77.catalogue.offer.published", "o-1", &OfferPublished { offer: Some(offer_msg), provider: None })
        .await;

    let mut submitted = None;
    for _ in 0..100 {
        match s.client.submit_request(submission(member, offer, "k1")).await {
            Ok(r) => {
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

    // Same idempotency key: the same request.
    let again = s.client.submit_request(submission(member, offer, "k1")).await.expect("resubmit").into_inner();
    assert_eq!(again.id, request.id);

    // Exactly one request.submitted event reached the REQUESTS stream.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mut stream = s.js.get_stream(s.ns.stream("REQUESTS")).await.expect("stream");
    assert_eq!(stream.info().await.expect("info").state.messages, 1);

    // Routing's events move it along; a late `offered` after `accepted` changes nothing.
    let offered =
        ReferralOffered { request_id: request.id.clone(), provider_code: "dir-sport".into(), ..Default::default() };
    s.publish("id77.routing.referral.offered", "r-offered", &offered).await;
    let accepted =
        ReferralAccepted { request_id: request.id.clone(), provider_code: "dir-sport".into(), ..Default::default() };
    s.publish("id77.routing.referral.accepted", "r-accepted", &accepted).await;
    s.publish("id77.routing.referral.offered", "r-offered-replayed", &offered).await;

    let mut last = None;
    for _ in 0..100 {
        let r = s.client.get_request(GetRequestRequest { id: request.id.clone() }).await.expect("get").into_inner();
        if r.status() == RequestStatus::Accepted {
            last = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = s.client.get_request(GetRequestRequest { id: request.id.clone() }).await.expect("get").into_inner();
    assert!(last.is_some(), "accepted");
    assert_eq!(r.status(), RequestStatus::Accepted, "the replayed offered event is stale");
    assert_eq!(r.provider_code, "dir-sport");
    let steps: Vec<RequestStatus> = r.history.iter().map(|h| h.status()).collect();
    assert_eq!(steps, vec![RequestStatus::Submitted, RequestStatus::Referred, RequestStatus::Accepted]);
    s.stop().await;
}

#[tokio::test]
async fn bad_input_gets_field_errors_not_a_panic() {
    let mut s = start().await;
    let err = s
        .client
        .submit_request(SubmitRequestRequest { member_id: "x".into(), subject: "s".repeat(201), ..Default::default() })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields: Vec<String> =
        id77_platform::ServiceError::from_status(&err).violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, vec!["member_id", "offer_id", "subject"]);
    let err = s.client.get_request(GetRequestRequest { id: Uuid::now_v7().to_string() }).await.expect_err("missing");
    assert_eq!(err.code(), Code::NotFound);
    s.stop().await;
}
