//! The requests service started in-process on a fresh database and NATS prefix, with routing's, membership's and
//! the catalogue's events published on the real streams: [`run_requests`] for every test of the service, the
//! [`Service`] of the lifecycle and batch tests.
#![allow(dead_code)] // each test file uses its part

use async_nats::jetstream::{self, message::PublishMessage};
use id77_platform::auth::Role;
use id77_platform::testing::TestKeys;
use id77_platform::{Namespace, ServiceError, nats, streams, testing, time};
use id77_proto::catalogue::v1::{Offer, OfferCategory, OfferPublished, Provider};
use id77_proto::membership::v1::{CollectivityKind, MemberApproved};
use id77_proto::requests::v1::requests_service_client::RequestsServiceClient;
use id77_proto::requests::v1::{GetRequestRequest, Request as RequestPb, RequestStatus, SubmitRequestRequest};
use id77_proto::routing::v1::ReferralOffered;
use prost::Message;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

pub struct Service {
    pub url: String,
    pub js: jetstream::Context,
    pub ns: Namespace,
    pub client: RequestsServiceClient<Channel>,
    pub keys: TestKeys,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The requests service running in-process on a fresh database and NATS prefix, answering gRPC on `channel`,
/// with the streams its consumers read (`nats_name`: the test's NATS connection name).
pub struct Running {
    pub url: String,
    pub js: jetstream::Context,
    pub ns: Namespace,
    pub channel: Channel,
    pub keys: TestKeys,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn run_requests(nats_name: &str) -> Running {
    let url = testing::fresh_database_url("requests");
    let prefix = testing::fresh_prefix();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let keys = TestKeys::new().expect("test keys");
    let mut platform = testing::platform_config("requests", &url, &prefix, addr);
    platform.jwks_file = Some(keys.jwks_file.clone());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(id77_requests::run(
        id77_requests::Config { platform, mail: id77_requests::notify::sender::MailConfig::queue_only() },
        listener,
        shutdown.clone(),
    ));
    let (_, js) = nats::connect(&testing::nats_url(), nats_name).await.expect("nats");
    let ns = Namespace::new(prefix);
    for def in [streams::MEMBERSHIP, streams::CATALOGUE, streams::ROUTING] {
        nats::ensure_stream(&js, &ns, def).await.expect("stream");
    }
    let mut channel = None;
    for _ in 0..100 {
        if let Ok(c) = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).expect("url").connect().await {
            channel = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Running { url, js, ns, channel: channel.expect("requests answers"), keys, shutdown, task }
}

pub async fn start() -> Service {
    let Running { url, js, ns, channel, keys, shutdown, task } = run_requests("requests-lifecycle-test").await;
    Service { url, js, ns, client: RequestsServiceClient::new(channel), keys, shutdown, task }
}

pub fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", TestKeys::bearer(token));
    request
}

pub fn reason(status: &tonic::Status) -> String {
    ServiceError::from_status(status).reason.to_string()
}

pub fn at(offset_secs: i64) -> Option<id77_proto::prost_types::Timestamp> {
    Some(time::to_proto(time::now() + chrono::Duration::seconds(offset_secs)))
}

impl Service {
    pub async fn publish<M: Message>(&self, subject: &str, message: &M) {
        let msg =
            PublishMessage::build().payload(message.encode_to_vec().into()).message_id(Uuid::now_v7().to_string());
        self.js.send_publish(self.ns.subject(subject), msg).await.expect("publish").await.expect("ack");
    }

    /// An active commune (Meaux: INSEE 77284, CA du Pays de Meaux, arrondissement 771) or EPCI member.
    pub async fn approve(&self, member: Uuid, commune: bool) {
        let approved = MemberApproved {
            member_id: member.to_string(),
            occurred_at: at(0),
            kind: if commune { CollectivityKind::Commune } else { CollectivityKind::Epci }.into(),
            insee_code: if commune { "77284" } else { "" }.into(),
            epci_siren: "200072130".into(),
            arrondissement: if commune { "771" } else { "" }.into(),
            ..Default::default()
        };
        self.publish("id77.membership.member.approved", &approved).await;
    }

    pub async fn offer(&self, provider: &str, category: OfferCategory) -> Uuid {
        let id = Uuid::now_v7();
        let offer = Offer {
            id: id.to_string(),
            code: format!("offre-{id}"),
            title: "Offre".into(),
            provider_code: provider.into(),
            category: category.into(),
            version: 3,
            ..Default::default()
        };
        // caue77 is named by the catalogue; other providers are not (their history lines say « le partenaire »).
        let named = (provider == "caue77").then(|| Provider {
            code: provider.into(),
            name: "CAUE 77".into(),
            ..Default::default()
        });
        self.publish("id77.catalogue.offer.published", &OfferPublished { offer: Some(offer), provider: named }).await;
        id
    }

    /// An approved commune member, an offer of `provider` in `category`, and a token of one of the member's users.
    pub async fn member_with_offer(&self, provider: &str, category: OfferCategory) -> (Uuid, Uuid, String) {
        let member = Uuid::now_v7();
        self.approve(member, true).await;
        let offer = self.offer(provider, category).await;
        (member, offer, self.user(member))
    }

    pub fn user(&self, member: Uuid) -> String {
        self.keys.token(Role::MemberUser, Some(member), None)
    }

    pub fn coordinator(&self) -> String {
        self.keys.token(Role::Coordinator, None, None)
    }

    /// Submits until the read models know the member and the offer.
    pub async fn submit(&mut self, token: &str, submission: SubmitRequestRequest) -> RequestPb {
        for _ in 0..200 {
            match self.client.submit_request(with_token(submission.clone(), token)).await {
                Ok(r) => return r.into_inner(),
                // Unavailable: the database pool is saturated on a loaded machine; a client retries.
                Err(e) if matches!(e.code(), Code::FailedPrecondition | Code::NotFound | Code::Unavailable) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        panic!("the read models did not catch up")
    }

    pub async fn get(&mut self, id: &str) -> RequestPb {
        let token = self.coordinator();
        self.client
            .get_request(with_token(GetRequestRequest { id: id.into() }, &token))
            .await
            .expect("get")
            .into_inner()
    }

    /// Waits until the request reaches `status`.
    pub async fn wait_status(&mut self, id: &str, status: RequestStatus) -> RequestPb {
        for _ in 0..200 {
            let r = self.get(id).await;
            if r.status() == status {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = self.get(id).await;
        panic!("request {id} never became {status:?}: {:?} {:?}", r.status(), r.history)
    }

    /// The events requests published on `subject` (waits until `expected` are there).
    pub async fn published(&self, subject: &str, expected: usize) -> Vec<Vec<u8>> {
        let mut stream = self.js.get_stream(self.ns.stream("REQUESTS")).await.expect("stream");
        let subject = self.ns.subject(subject);
        for _ in 0..100 {
            let total = stream.info().await.expect("info").state.messages;
            let mut found = Vec::new();
            for seq in 1..=total {
                if let Ok(m) = stream.get_raw_message(seq).await
                    && m.subject.as_str() == subject
                {
                    found.push(m.payload.to_vec());
                }
            }
            if found.len() >= expected {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("fewer than {expected} events on {subject}")
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("join").expect("clean stop");
        testing::delete_streams(&self.js, &self.ns).await;
        testing::drop_database(&self.url).await;
    }
}

pub fn submission(offer: Uuid, key: &str) -> SubmitRequestRequest {
    SubmitRequestRequest {
        offer_id: offer.to_string(),
        subject: "Requalification de la place du marché".into(),
        description: "Étude de programmation".into(),
        idempotency_key: key.into(),
        ..Default::default()
    }
}

pub fn offered(request: &str, provider: &str, secs: i64) -> ReferralOffered {
    ReferralOffered {
        request_id: request.into(),
        provider_code: provider.into(),
        occurred_at: at(secs),
        ..Default::default()
    }
}

/// A quote billing would issue for `request` (as requests answered it) of `member` by `provider`: 2 500 € HT, VAT
/// 20 %, valid 30 days.
pub fn quote(request: &RequestPb, member: Uuid, provider: &str, number: &str) -> id77_proto::billing::v1::Quote {
    id77_proto::billing::v1::Quote {
        id: Uuid::now_v7().to_string(),
        number: number.into(),
        issuer_code: provider.into(),
        member_id: member.to_string(),
        request_id: request.id.clone(),
        referral_id: Uuid::now_v7().to_string(),
        offer_id: request.offer_id.clone(),
        label: "Étude préalable".into(),
        amount_cents: 250_000,
        vat_rate_bp: Some(2000),
        vat_cents: 50_000,
        total_incl_vat_cents: 300_000,
        currency: "EUR".into(),
        status: id77_proto::billing::v1::QuoteStatus::Issued.into(),
        issued_at: at(0),
        expires_at: at(30 * 86_400),
        ..Default::default()
    }
}
