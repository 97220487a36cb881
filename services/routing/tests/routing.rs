//! Routing on the real local PostgreSQL and NATS: each test has its own database and subject prefix, and
//! starts the service in-process. Every call carries an access token: the coordinator sees every referral, a
//! provider's agents only their provider's, everybody else nothing (docs/authorization.md).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, message::PublishMessage};
use id77_platform::auth::{Claims, Role};
use id77_platform::streams::{self, StreamDef};
use id77_platform::testing::TestKeys;
use id77_platform::{Namespace, testing};
use id77_proto::catalogue::v1::{Offer, OfferPublished, PriceKind, PriceRule, Provider};
use id77_proto::membership::v1::{CollectivityKind, MemberApproved};
use id77_proto::requests::v1::RequestSubmitted;
use id77_proto::routing::v1 as pb;
use id77_proto::routing::v1::routing_service_client::RoutingServiceClient;
use id77_routing::clock::TestClock;
use id77_routing::{Config, run};
use prost::{Message, Name};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

const PROVIDER: &str = "caue77";
const WAIT: Duration = Duration::from_secs(20);

/// One test's world: a database, a subject prefix, a NATS connection.
struct Env {
    db: String,
    ns: Namespace,
    js: jetstream::Context,
    keys: TestKeys,
    /// Routing's clock, shared by every start of the service in this test.
    clock: TestClock,
}

/// A routing instance started in-process.
struct Running {
    token: CancellationToken,
    handle: JoinHandle<anyhow::Result<()>>,
    grpc: RoutingServiceClient<Channel>,
    pool: PgPool,
    /// A coordinator's access token: sees every referral.
    coordinator: String,
}

/// `message` with `authorization: Bearer <token>`.
fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", TestKeys::bearer(token));
    request
}

impl Running {
    async fn stop(self) -> TestResult {
        self.token.cancel();
        self.pool.close().await;
        tokio::time::timeout(WAIT, self.handle).await???;
        Ok(())
    }

    async fn referrals(&mut self, request_id: &str) -> Result<Vec<pb::Referral>, tonic::Status> {
        let req = pb::ListReferralsRequest { request_id: request_id.to_owned(), ..Default::default() };
        Ok(self.grpc.list_referrals(with_token(req, &self.coordinator)).await?.into_inner().referrals)
    }

    async fn referral(&mut self, id: &str) -> Result<pb::Referral, tonic::Status> {
        let token = self.coordinator.clone();
        self.referral_as(&token, id).await
    }

    async fn referral_as(&mut self, token: &str, id: &str) -> Result<pb::Referral, tonic::Status> {
        let req = pb::GetReferralRequest { id: id.to_owned() };
        Ok(self.grpc.get_referral(with_token(req, token)).await?.into_inner())
    }

    async fn list_as(&mut self, token: &str, provider_code: &str) -> Result<Vec<pb::Referral>, tonic::Status> {
        let req = pb::ListReferralsRequest { provider_code: provider_code.to_owned(), ..Default::default() };
        Ok(self.grpc.list_referrals(with_token(req, token)).await?.into_inner().referrals)
    }

    /// Waits until the request has its referral.
    async fn wait_referral(&mut self, request_id: &str) -> Result<pb::Referral, BoxError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(r) = self.referrals(request_id).await?.into_iter().next() {
                return Ok(r);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("no referral for request {request_id}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `consumer` has recorded `message_id` in its inbox (the message was applied or deliberately
    /// ignored, and committed).
    async fn wait_inbox(&self, consumer: &str, message_id: &str) -> TestResult {
        wait_until(|| async {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE consumer = $1 AND message_id = $2")
                .bind(consumer)
                .bind(message_id)
                .fetch_one(&self.pool)
                .await?;
            Ok(n == 1)
        })
        .await
    }

    async fn outbox_rows(&self) -> Result<(i64, i64), sqlx::Error> {
        sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE published_at IS NULL) FROM outbox")
            .fetch_one(&self.pool)
            .await
    }
}

async fn wait_until<F, Fut>(mut check: F) -> TestResult
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, BoxError>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await? {
        if tokio::time::Instant::now() > deadline {
            return Err("condition not met in time".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

impl Env {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        id77_routing::clock::Clock::now(&self.clock)
    }

    async fn new(label: &str) -> Result<Self, BoxError> {
        if std::env::var_os("ID77_LOG").is_some() {
            id77_platform::telemetry::init("routing-tests");
        }
        let client = async_nats::connect(testing::nats_url()).await?;
        let js = jetstream::new(client);
        let ns = Namespace::new(testing::fresh_prefix());
        for def in [
            streams::MEMBERSHIP,
            streams::CATALOGUE,
            streams::REQUESTS,
            streams::ROUTING,
            streams::REFERRALS,
            streams::BILLING,
            streams::DEADLETTER,
        ] {
            id77_platform::nats::ensure_stream(&js, &ns, def).await?;
        }
        Ok(Self { db: testing::fresh_database_url(label), ns, js, keys: TestKeys::new()?, clock: TestClock::new() })
    }

    fn config(&self) -> Config {
        let mut platform = testing::platform_config("routing", &self.db, self.ns.prefix(), ([127, 0, 0, 1], 0).into());
        platform.jwks_file = Some(self.keys.jwks_file.clone());
        let mut config = Config::new(platform);
        config.clock = Arc::new(self.clock.clone());
        config.timer_interval = Duration::from_millis(50);
        config
    }

    async fn start(&self) -> Result<Running, BoxError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let token = CancellationToken::new();
        let handle = tokio::spawn(run(self.config(), listener, token.clone()));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?.connect_lazy();
        let mut grpc = RoutingServiceClient::new(channel);
        let coordinator = self.keys.token(Role::Coordinator, None, None);
        // Ready once the API answers (database migrated, NATS connected).
        let deadline = tokio::time::Instant::now() + WAIT;
        while let Err(status) = grpc.list_referrals(with_token(pb::ListReferralsRequest::default(), &coordinator)).await
        {
            if handle.is_finished() {
                return Err(format!("routing stopped: {:?}", handle.await?).into());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("routing did not start in time: {status}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let pool = PgPool::connect(&self.db).await?;
        Ok(Running { token, handle, grpc, pool, coordinator })
    }

    /// Publishes like a service's outbox relay: protobuf, event type, message id, with ack.
    async fn publish<M: Message + Name>(
        &self,
        subject: &str,
        message: &M,
        message_id: &str,
    ) -> Result<jetstream::publish::PublishAck, BoxError> {
        let mut headers = HeaderMap::new();
        headers.insert("Id77-Event-Type", M::full_name().as_str());
        headers.insert("Content-Type", "application/protobuf");
        let publish =
            PublishMessage::build().payload(message.encode_to_vec().into()).headers(headers).message_id(message_id);
        Ok(self.js.send_publish(self.ns.subject(subject), publish).await?.await?)
    }

    async fn publish_offer(&self, offer_id: &str, version: i32) -> TestResult {
        self.publish_offer_of(offer_id, PROVIDER, version).await
    }

    async fn publish_offer_of(&self, offer_id: &str, provider: &str, version: i32) -> TestResult {
        let code = if provider == PROVIDER { "caue-conseil-archi".to_owned() } else { format!("{provider}-offre") };
        let event = OfferPublished {
            offer: Some(Offer {
                id: offer_id.to_owned(),
                code,
                title: "Conseil architectural".into(),
                provider_code: provider.into(),
                version,
                ..Default::default()
            }),
            provider: Some(Provider { code: provider.into(), name: provider.into(), ..Default::default() }),
        };
        self.publish("id77.catalogue.offer.published", &event, &format!("offer-{offer_id}-{version}")).await?;
        Ok(())
    }

    fn request(offer_id: &str) -> RequestSubmitted {
        RequestSubmitted {
            request_id: Uuid::now_v7().to_string(),
            member_id: Uuid::now_v7().to_string(),
            offer_id: offer_id.to_owned(),
            subject: "Réhabilitation de l'école".into(),
            description: "Nous voulons rénover l'école communale.".into(),
            occurred_at: None,
            ..Default::default()
        }
    }

    /// Publishes the request, after its member's approval (once per member: the same message id is a
    /// duplicate), so that routing knows the member.
    async fn publish_request(&self, request: &RequestSubmitted, message_id: &str) -> TestResult {
        self.publish_member(&request.member_id, "772", 1200).await?;
        self.publish("id77.requests.request.submitted", request, message_id).await?;
        Ok(())
    }

    async fn publish_member(&self, member_id: &str, arrondissement: &str, population: i64) -> TestResult {
        let approved = MemberApproved {
            member_id: member_id.to_owned(),
            siren: "217700012".into(),
            name: "Commune".into(),
            kind: CollectivityKind::Commune.into(),
            population,
            insee_code: "77001".into(),
            epci_siren: "200072130".into(),
            arrondissement: arrondissement.into(),
            occurred_at: None,
        };
        self.publish("id77.membership.member.approved", &approved, &format!("member-{member_id}")).await?;
        Ok(())
    }

    async fn reply(&self, provider: &str, referral_id: &str, decision: pb::ReplyDecision, reason: &str) -> TestResult {
        let reply = pb::ReferralReply {
            referral_id: referral_id.to_owned(),
            decision: decision.into(),
            reason: reason.to_owned(),
            ..Default::default()
        };
        // Each test reply gets its own id, so that JetStream's window does not hide it from routing.
        let id = format!("reply-{referral_id}-{}", Uuid::now_v7());
        self.publish(&streams::referral_reply_subject(provider), &reply, &id).await?;
        Ok(())
    }

    /// Every message currently stored on `subject` in `stream`, oldest first.
    async fn messages(&self, stream: StreamDef, subject: &str) -> Result<Vec<jetstream::Message>, BoxError> {
        let stream = self.js.get_stream(self.ns.stream(stream.name)).await?;
        let consumer: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subject: self.ns.subject(subject),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(10),
                ..Default::default()
            })
            .await?;
        let pending = consumer.cached_info().num_pending;
        let mut out = Vec::new();
        if pending == 0 {
            return Ok(out);
        }
        let mut batch =
            consumer.batch().max_messages(usize::try_from(pending)?).expires(Duration::from_secs(2)).messages().await?;
        while let Some(message) = futures::StreamExt::next(&mut batch).await {
            out.push(message?);
        }
        Ok(out)
    }

    /// Waits until at least `n` messages are stored on `subject`, and returns them all.
    async fn wait_messages(
        &self,
        stream: StreamDef,
        subject: &str,
        n: usize,
    ) -> Result<Vec<jetstream::Message>, BoxError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let messages = self.messages(stream, subject).await?;
            if messages.len() >= n {
                return Ok(messages);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("{} message(s) on {subject}, expected {n}", messages.len()).into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn cleanup(self) {
        testing::delete_streams(&self.js, &self.ns).await;
        testing::drop_database(&self.db).await;
    }
}

fn header(message: &jetstream::Message, name: &str) -> String {
    message.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn a_referral_reaches_its_provider_and_only_that_provider_can_answer_it_once() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    let request = Env::request(&offer_id);
    env.publish_request(&request, &Uuid::now_v7().to_string()).await?;

    // The provider receives the referral on its own subject; requests gets the integration event.
    let provider_subject = streams::referral_offered_subject(PROVIDER);
    let offered = env.wait_messages(streams::REFERRALS, &provider_subject, 1).await?;
    assert_eq!(offered.len(), 1);
    assert_eq!(header(&offered[0], "Id77-Event-Type"), "id77.routing.v1.ReferralOffered");
    let referral = pb::ReferralOffered::decode(offered[0].payload.clone())?;
    assert_eq!(referral.request_id, request.request_id);
    assert_eq!(referral.offer_code, "caue-conseil-archi");
    assert_eq!(referral.provider_code, PROVIDER);
    assert_eq!(referral.subject, request.subject);
    let integration = env.wait_messages(streams::ROUTING, "id77.routing.referral.offered", 1).await?;
    assert_eq!(pb::ReferralOffered::decode(integration[0].payload.clone())?.referral_id, referral.referral_id);

    let stored = routing.referral(&referral.referral_id).await?;
    assert_eq!(stored.status(), pb::ReferralStatus::Offered);
    assert_eq!(
        stored.assignment,
        "Orientation automatique : aucune règle n'a choisi de partenaire : caue77, partenaire par défaut de l'offre"
    );
    assert_eq!((stored.attempt, stored.rule_id.as_str()), (1, ""));
    assert!(stored.respond_by.is_some() && stored.remind_at.is_some() && stored.expires_at.is_some());
    assert_eq!(stored.member_id, request.member_id);

    // Another provider cannot answer it: dead-lettered, nothing changes.
    env.reply("intrus", &referral.referral_id, pb::ReplyDecision::Decline, "pas pour nous").await?;
    let dead = env.wait_messages(streams::DEADLETTER, "id77.deadletter.routing-replies", 1).await?;
    assert!(header(&dead[0], "Id77-Dead-Letter-Reason").contains("offered to caue77"), "{:?}", dead[0].headers);
    assert_eq!(routing.referral(&referral.referral_id).await?.status(), pb::ReferralStatus::Offered);

    // The provider accepts.
    env.reply(PROVIDER, &referral.referral_id, pb::ReplyDecision::Accept, "").await?;
    let accepted = env.wait_messages(streams::ROUTING, "id77.routing.referral.accepted", 1).await?;
    let accepted = pb::ReferralAccepted::decode(accepted[0].payload.clone())?;
    assert_eq!(accepted.referral_id, referral.referral_id);
    assert_eq!(accepted.request_id, request.request_id);
    let stored = routing.referral(&referral.referral_id).await?;
    assert_eq!(stored.status(), pb::ReferralStatus::Accepted);
    assert!(stored.decided_at.is_some());

    // A late decline changes nothing.
    let late = pb::ReferralReply {
        referral_id: referral.referral_id.clone(),
        decision: pb::ReplyDecision::Decline.into(),
        reason: "finalement non".into(),
        ..Default::default()
    };
    let late_id = format!("late-{}", Uuid::now_v7());
    env.publish(&streams::referral_reply_subject(PROVIDER), &late, &late_id).await?;
    routing.wait_inbox("routing-replies", &late_id).await?;
    let stored = routing.referral(&referral.referral_id).await?;
    assert_eq!(stored.status(), pb::ReferralStatus::Accepted);
    assert_eq!(stored.reason, "");
    assert_eq!(routing.outbox_rows().await?.0, 3, "offered twice, accepted once, nothing for the late reply");
    assert!(env.messages(streams::ROUTING, "id77.routing.referral.declined").await?.is_empty());

    // The provider completes the work: one ReferralCompleted, also when the completion is sent twice.
    env.reply(PROVIDER, &referral.referral_id, pb::ReplyDecision::Complete, "").await?;
    env.reply(PROVIDER, &referral.referral_id, pb::ReplyDecision::Complete, "").await?;
    let completed = env.wait_messages(streams::ROUTING, "id77.routing.referral.completed", 1).await?;
    let completed = pb::ReferralCompleted::decode(completed[0].payload.clone())?;
    assert_eq!(completed.referral_id, referral.referral_id);
    assert_eq!(
        (completed.request_id.as_str(), completed.member_id.as_str()),
        (request.request_id.as_str(), request.member_id.as_str())
    );
    assert_eq!(completed.provider_code, PROVIDER);
    assert!(completed.occurred_at.is_some());
    wait_until(|| async { Ok(routing.outbox_rows().await?.0 == 4) }).await?;
    assert!(routing.referral(&referral.referral_id).await?.completed_at.is_some());
    assert_eq!(env.messages(streams::ROUTING, "id77.routing.referral.completed").await?.len(), 1);

    // Bad arguments are typed errors.
    let bad = routing.referral("not-a-uuid").await.err().map(|s| s.code());
    assert_eq!(bad, Some(tonic::Code::InvalidArgument));
    let missing = routing.referral(&Uuid::now_v7().to_string()).await.err().map(|s| s.code());
    assert_eq!(missing, Some(tonic::Code::NotFound));
    let bad_provider = routing.list_as(&routing.coordinator.clone(), "a.>").await.err().map(|s| s.code());
    assert_eq!(bad_provider, Some(tonic::Code::InvalidArgument));

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_redelivered_or_replayed_request_yields_one_referral() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    let request = Env::request(&offer_id);
    let first_id = Uuid::now_v7().to_string();
    env.publish_request(&request, &first_id).await?;
    // Same message id: JetStream's duplicate window drops it.
    let again = env.publish("id77.requests.request.submitted", &request, &first_id).await?;
    assert!(again.duplicate);
    routing.wait_referral(&request.request_id).await?;
    // Another message id (a replay hours later): routing's own uniqueness drops it.
    let replay_id = Uuid::now_v7().to_string();
    env.publish_request(&request, &replay_id).await?;
    routing.wait_inbox("routing-requests", &replay_id).await?;

    assert_eq!(routing.referrals(&request.request_id).await?.len(), 1);
    wait_until(|| async { Ok(routing.outbox_rows().await? == (2, 0)) }).await?;
    let offered = env.messages(streams::REFERRALS, &streams::referral_offered_subject(PROVIDER)).await?;
    assert_eq!(offered.len(), 1);

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

/// A consumer's batch of submissions (issue 23: their offers, members and the policy read in one statement) routes
/// each request as one at a time would, in one transaction: an open request goes to the triage queue; the batch
/// delivered again changes nothing; a request whose offer routing does not know yet sends the batch back to one
/// event per transaction, where the others are routed.
#[tokio::test]
async fn a_batch_of_submissions_is_routed_as_one_at_a_time_would_in_one_transaction() -> TestResult {
    use id77_platform::consumer::{self, HandleError, Outcome};
    use id77_routing::events::RequestHandler;
    use id77_routing::flow::{Lifecycle, Sla};
    let env = Env::new("routing").await?;
    let routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    routing.wait_inbox("routing-offers", &format!("offer-{offer_id}-1")).await?;
    let (a, b, late) = (Env::request(&offer_id), Env::request(&offer_id), Env::request(&offer_id));
    for request in [&a, &b, &late] {
        env.publish_member(&request.member_id, "772", 1200).await?;
        routing.wait_inbox("routing-members", &format!("member-{}", request.member_id)).await?;
    }
    let open = Env::request("");
    let event = |request: &RequestSubmitted| testing::first_delivery("id77.requests.request.submitted", request);
    let handler = RequestHandler(Lifecycle { clock: Arc::new(env.clock.clone()), sla: Sla::default() });

    let batch = [event(&a), event(&open), event(&b)];
    let results = consumer::apply_batch(&routing.pool, "test-requests", &handler, &batch, &[]).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Outcome::Applied))), "{results:?}");
    let ids = [Uuid::parse_str(&a.request_id)?, Uuid::parse_str(&b.request_id)?];
    let providers: Vec<(String, String)> =
        sqlx::query_as("SELECT provider_code, xmin::text FROM referral WHERE request_id = ANY($1)")
            .bind(ids)
            .fetch_all(&routing.pool)
            .await?;
    assert_eq!(providers.len(), 2, "one referral each: {providers:?}");
    assert!(providers.iter().all(|(p, _)| p == PROVIDER), "{providers:?}");
    assert_eq!(providers[0].1, providers[1].1, "both written by the batch's transaction");
    let triaged: i64 = sqlx::query_scalar("SELECT count(*) FROM triage WHERE request_id = $1")
        .bind(Uuid::parse_str(&open.request_id)?)
        .fetch_one(&routing.pool)
        .await?;
    assert_eq!(triaged, 1, "the open request waits in the triage queue");

    let results = consumer::apply_batch(&routing.pool, "test-requests", &handler, &batch, &[]).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Outcome::Duplicate))), "{results:?}");

    // An offer routing does not know yet: retried alone; the other request of the batch is routed.
    let unknown = Env::request(&Uuid::now_v7().to_string());
    let results =
        consumer::apply_batch(&routing.pool, "test-requests", &handler, &[event(&unknown), event(&late)], &[]).await;
    assert!(matches!(results[0], Err(HandleError::Retry(_))), "{:?}", results[0]);
    assert!(matches!(results[1], Ok(Outcome::Applied)), "{:?}", results[1]);
    let referrals: i64 = sqlx::query_scalar("SELECT count(*) FROM referral WHERE request_id = $1")
        .bind(Uuid::parse_str(&late.request_id)?)
        .fetch_one(&routing.pool)
        .await?;
    assert_eq!(referrals, 1);

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

/// A consumer's batch of providers' replies (issue 23: the referrals they answer locked in one statement) decides
/// each referral as one reply at a time would, in one transaction: a referral's second reply in the batch finds it
/// as the first left it; the batch delivered again changes nothing; a reply to an unknown referral sends the batch
/// back to one reply per transaction, where the others apply.
#[tokio::test]
async fn a_batch_of_replies_decides_each_referral_as_one_at_a_time_would_in_one_transaction() -> TestResult {
    use id77_platform::consumer::{self, HandleError, Outcome};
    use id77_routing::events::ReplyHandler;
    use id77_routing::flow::{Lifecycle, Sla};
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    let mut referrals = Vec::new();
    for _ in 0..3 {
        let request = Env::request(&offer_id);
        env.publish_request(&request, &Uuid::now_v7().to_string()).await?;
        referrals.push(routing.wait_referral(&request.request_id).await?.id);
    }
    let (x, y, z) = (&referrals[0], &referrals[1], &referrals[2]);
    let reply = |referral_id: &str, decision: pb::ReplyDecision, reason: &str| {
        let reply = pb::ReferralReply {
            referral_id: referral_id.to_owned(),
            decision: decision.into(),
            reason: reason.to_owned(),
            ..Default::default()
        };
        testing::first_delivery(&streams::referral_reply_subject(PROVIDER), &reply)
    };
    let handler = ReplyHandler(Lifecycle { clock: Arc::new(env.clock.clone()), sla: Sla::default() });

    let batch = [
        reply(x, pb::ReplyDecision::Accept, ""),
        reply(y, pb::ReplyDecision::Decline, "Hors de notre périmètre"),
        // x again: already accepted, so ignored (acked), as one at a time.
        reply(x, pb::ReplyDecision::Decline, "Changement d'avis"),
    ];
    let results = consumer::apply_batch(&routing.pool, "test-replies", &handler, &batch, &[]).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Outcome::Applied))), "{results:?}");
    assert_eq!(routing.referral(x).await?.status(), pb::ReferralStatus::Accepted);
    assert_eq!(routing.referral(y).await?.status(), pb::ReferralStatus::Declined);
    let writers: Vec<String> = sqlx::query_scalar("SELECT DISTINCT xmin::text FROM referral WHERE id = ANY($1)")
        .bind([Uuid::parse_str(x)?, Uuid::parse_str(y)?])
        .fetch_all(&routing.pool)
        .await?;
    assert_eq!(writers.len(), 1, "both decided by the batch's transaction: {writers:?}");

    let results = consumer::apply_batch(&routing.pool, "test-replies", &handler, &batch, &[]).await;
    assert!(results.iter().all(|r| matches!(r, Ok(Outcome::Duplicate))), "{results:?}");

    let unknown = Uuid::now_v7().to_string();
    let results = consumer::apply_batch(
        &routing.pool,
        "test-replies",
        &handler,
        &[reply(z, pb::ReplyDecision::Accept, ""), reply(&unknown, pb::ReplyDecision::Accept, "")],
        &[],
    )
    .await;
    assert!(matches!(results[0], Ok(Outcome::Applied)), "{:?}", results[0]);
    assert!(matches!(results[1], Err(HandleError::Reject(_))), "{:?}", results[1]);
    assert_eq!(routing.referral(z).await?.status(), pb::ReferralStatus::Accepted);

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_request_for_an_unknown_offer_is_retried_until_the_offer_arrives() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    let request = Env::request(&offer_id);
    let message_id = Uuid::now_v7().to_string();
    env.publish_request(&request, &message_id).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(routing.referrals(&request.request_id).await?.is_empty());
    let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE message_id = $1")
        .bind(&message_id)
        .fetch_one(&routing.pool)
        .await?;
    assert_eq!(inbox, 0, "a retried message is not recorded as processed");

    env.publish_offer(&offer_id, 1).await?;
    let referral = routing.wait_referral(&request.request_id).await?;
    assert_eq!(referral.provider_code, PROVIDER);
    assert!(env.messages(streams::DEADLETTER, "id77.deadletter.routing-requests").await?.is_empty());

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn an_older_offer_version_does_not_overwrite_a_newer_one() -> TestResult {
    let env = Env::new("routing").await?;
    let routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 3).await?;
    let mut older = OfferPublished {
        offer: Some(Offer {
            id: offer_id.clone(),
            code: "old-code".into(),
            title: "Ancien".into(),
            provider_code: "autre".into(),
            version: 2,
            ..Default::default()
        }),
        provider: None,
    };
    env.publish("id77.catalogue.offer.published", &older, "old-2").await?;
    routing.wait_inbox("routing-offers", "old-2").await?;
    let stored: (String, String, i32) =
        sqlx::query_as("SELECT code, provider_code, version FROM offer WHERE offer_id = $1::uuid")
            .bind(&offer_id)
            .fetch_one(&routing.pool)
            .await?;
    assert_eq!(stored, ("caue-conseil-archi".to_owned(), PROVIDER.to_owned(), 3));
    if let Some(offer) = older.offer.as_mut() {
        offer.version = 4;
    }
    env.publish("id77.catalogue.offer.published", &older, "new-4").await?;
    routing.wait_inbox("routing-offers", "new-4").await?;
    let version: i32 = sqlx::query_scalar("SELECT version FROM offer WHERE offer_id = $1::uuid")
        .bind(&offer_id)
        .fetch_one(&routing.pool)
        .await?;
    assert_eq!(version, 4);

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn routing_resumes_from_its_durable_consumers_after_a_restart() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    let first = Env::request(&offer_id);
    env.publish_request(&first, &Uuid::now_v7().to_string()).await?;
    routing.wait_referral(&first.request_id).await?;
    routing.stop().await?;

    // Submitted while routing is down.
    let mut requests = Vec::new();
    for _ in 0..5 {
        let request = Env::request(&offer_id);
        env.publish_request(&request, &Uuid::now_v7().to_string()).await?;
        requests.push(request);
    }

    let mut routing = env.start().await?;
    for request in &requests {
        routing.wait_referral(&request.request_id).await?;
    }
    let offered = env.wait_messages(streams::REFERRALS, &streams::referral_offered_subject(PROVIDER), 6).await?;
    let mut ids: Vec<String> = offered
        .iter()
        .map(|m| pb::ReferralOffered::decode(m.payload.clone()).map(|r| r.request_id))
        .collect::<Result<_, _>>()?;
    ids.sort();
    ids.dedup();
    assert_eq!((offered.len(), ids.len()), (6, 6), "one referral per request, no duplicates");

    // Paginated listing of the provider's referrals.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let req = pb::ListReferralsRequest {
            provider_code: PROVIDER.into(),
            page_size: 4,
            page_token: token.clone(),
            ..Default::default()
        };
        let page = routing.grpc.list_referrals(with_token(req, &routing.coordinator)).await?.into_inner();
        seen.extend(page.referrals.into_iter().map(|r| r.request_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    seen.sort();
    assert_eq!(seen, ids);

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Result<tonic::Code, BoxError> {
    match result {
        Ok(value) => Err(format!("expected an error, got {value:?}").into()),
        Err(status) => Ok(status.code()),
    }
}

#[tokio::test]
async fn a_provider_agent_sees_only_its_providers_referrals() -> TestResult {
    const OTHER: &str = "dir-routes";
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let (offer_p, offer_q) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    env.publish_offer_of(&offer_p, PROVIDER, 1).await?;
    env.publish_offer_of(&offer_q, OTHER, 1).await?;
    let (to_p, to_q) = (Env::request(&offer_p), Env::request(&offer_q));
    env.publish_request(&to_p, &Uuid::now_v7().to_string()).await?;
    env.publish_request(&to_q, &Uuid::now_v7().to_string()).await?;
    let referral_p = routing.wait_referral(&to_p.request_id).await?;
    let referral_q = routing.wait_referral(&to_q.request_id).await?;
    assert_eq!((referral_p.provider_code.as_str(), referral_q.provider_code.as_str()), (PROVIDER, OTHER));

    let agent = env.keys.token(Role::ProviderAgent, None, Some(PROVIDER));
    // Its own referral; another provider's is answered like an unknown id.
    assert_eq!(routing.referral_as(&agent, &referral_p.id).await?, referral_p);
    assert_eq!(code(routing.referral_as(&agent, &referral_q.id).await)?, tonic::Code::NotFound);
    assert_eq!(code(routing.referral_as(&agent, &Uuid::now_v7().to_string()).await)?, tonic::Code::NotFound);
    // Its list is forced to its provider: empty is filled in, another provider's list is not found.
    assert_eq!(routing.list_as(&agent, "").await?, vec![referral_p.clone()]);
    assert_eq!(routing.list_as(&agent, PROVIDER).await?, vec![referral_p.clone()]);
    assert_eq!(code(routing.list_as(&agent, OTHER).await)?, tonic::Code::NotFound);
    // A request id does not widen it.
    let by_request = pb::ListReferralsRequest { request_id: to_q.request_id.clone(), ..Default::default() };
    assert!(routing.grpc.list_referrals(with_token(by_request, &agent)).await?.into_inner().referrals.is_empty());

    // The coordinator sees both.
    let coordinator = routing.coordinator.clone();
    assert_eq!(routing.list_as(&coordinator, "").await?.len(), 2);
    assert_eq!(routing.list_as(&coordinator, OTHER).await?, vec![referral_q.clone()]);

    // Roles that never see referrals: forbidden, whatever the id.
    let member = Uuid::parse_str(&to_p.member_id)?;
    for token in [
        env.keys.token(Role::MemberAdmin, Some(member), None),
        env.keys.token(Role::MemberUser, Some(member), None),
        env.keys.token(Role::Referent, None, None),
        env.keys.token(Role::Operator, None, None),
    ] {
        assert_eq!(code(routing.referral_as(&token, &referral_p.id).await)?, tonic::Code::PermissionDenied);
        assert_eq!(code(routing.list_as(&token, "").await)?, tonic::Code::PermissionDenied);
    }

    // No token, or one that does not verify.
    let anonymous = routing.grpc.get_referral(pb::GetReferralRequest { id: referral_p.id.clone() }).await;
    assert_eq!(code(anonymous)?, tonic::Code::Unauthenticated);
    assert_eq!(
        code(routing.grpc.list_referrals(pb::ListReferralsRequest::default()).await)?,
        tonic::Code::Unauthenticated
    );
    let mut expired = Claims::new(Uuid::now_v7(), Role::ProviderAgent, id77_platform::time::now().timestamp() - 3600);
    expired.provider_code = Some(PROVIDER.into());
    let foreign = TestKeys::new()?;
    for token in [env.keys.sign(&expired), foreign.token(Role::Coordinator, None, None)] {
        assert_eq!(code(routing.referral_as(&token, &referral_p.id).await)?, tonic::Code::Unauthenticated);
        assert_eq!(code(routing.list_as(&token, "").await)?, tonic::Code::Unauthenticated);
    }

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

impl Running {
    async fn create_rule(&mut self, name: &str, condition: &str, provider: &str) -> Result<pb::RuleSet, tonic::Status> {
        let rule =
            pb::RuleInput { name: name.into(), condition_json: condition.into(), provider_code: provider.into() };
        let req = pb::CreateRuleRequest { rule: Some(rule), position: 0, expected_version: 0 };
        Ok(self.grpc.create_rule(with_token(req, &self.coordinator)).await?.into_inner())
    }

    /// Waits until the request has `n` referrals, and returns them (first attempt first).
    async fn wait_referrals(&mut self, request_id: &str, n: usize) -> Result<Vec<pb::Referral>, BoxError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let mut referrals = self.referrals(request_id).await?;
            referrals.sort_by_key(|r| r.attempt);
            if referrals.len() >= n {
                return Ok(referrals);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("{} referral(s) for {request_id}, expected {n}", referrals.len()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn wait_status(&mut self, id: &str, status: pb::ReferralStatus) -> Result<pb::Referral, BoxError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let referral = self.referral(id).await?;
            if referral.status() == status {
                return Ok(referral);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("referral {id} is {:?}, expected {status:?}", referral.status()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn in_triage(&self, request_id: &str) -> Result<bool, BoxError> {
        Ok(sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM triage WHERE request_id = $1::uuid AND resolved_at IS NULL)",
        )
        .bind(request_id)
        .fetch_one(&self.pool)
        .await?)
    }
}

const NORD: &str = "agence-nord";

#[tokio::test]
async fn rules_route_declines_reroute_and_the_choice_is_explained() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    env.publish_offer_of(&Uuid::now_v7().to_string(), NORD, 1).await?;
    routing.wait_inbox("routing-offers", &format!("offer-{offer_id}-1")).await?;
    wait_until(|| async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM provider").fetch_one(&routing.pool).await?;
        Ok(n == 2)
    })
    .await?;

    // Validation: unknown provider, unreachable rule, malformed condition; only the coordinator edits.
    let unknown = routing.create_rule("x", "", "nobody").await.err().map(|s| s.code());
    assert_eq!(unknown, Some(tonic::Code::InvalidArgument));
    let malformed = routing.create_rule("x", r#"{"colour":["red"]}"#, NORD).await.err().map(|s| s.code());
    assert_eq!(malformed, Some(tonic::Code::InvalidArgument));
    let agent = env.keys.token(Role::ProviderAgent, None, Some(PROVIDER));
    let denied = routing.grpc.list_rules(with_token(pb::ListRulesRequest {}, &agent)).await.err().map(|s| s.code());
    assert_eq!(denied, Some(tonic::Code::PermissionDenied));

    let set = routing.create_rule("Nord: arrondissement de Meaux", r#"{"arrondissement":["771"]}"#, NORD).await?;
    assert_eq!((set.version, set.rules.len()), (1, 1));
    let rule_id = set.rules[0].id.clone();
    let shadowed = routing.create_rule("copie", r#"{"arrondissement":["771"]}"#, PROVIDER).await.err();
    assert_eq!(shadowed.as_ref().map(|s| s.code()), Some(tonic::Code::InvalidArgument), "{shadowed:?}");

    // A member of arrondissement 771: the rule sends its request to agence-nord.
    let request = Env::request(&offer_id);
    env.publish_member(&request.member_id, "771", 56_905).await?;
    env.publish("id77.requests.request.submitted", &request, &Uuid::now_v7().to_string()).await?;
    let first = routing.wait_referral(&request.request_id).await?;
    assert_eq!(first.provider_code, NORD);
    assert_eq!((first.rule_id.as_str(), first.rule_version, first.attempt), (rule_id.as_str(), 1, 1));
    let offered = env.wait_messages(streams::REFERRALS, &streams::referral_offered_subject(NORD), 1).await?;
    let offered = pb::ReferralOffered::decode(offered[0].payload.clone())?;
    assert_eq!((offered.rule_id.as_str(), offered.rule_version), (rule_id.as_str(), 1));
    assert!(offered.respond_by.is_some());

    // The explanation: the rule, why it matched, the facts used.
    let explain = pb::ExplainRoutingRequest { request_id: request.request_id.clone() };
    let why = routing.grpc.explain_routing(with_token(explain.clone(), &routing.coordinator)).await?.into_inner();
    assert_eq!((why.outcome.as_str(), why.provider_code.as_str()), ("rule", NORD));
    assert_eq!(why.chosen_rule_id, rule_id);
    assert!(why.rules[0].matched);
    assert_eq!(why.rules[0].reasons, vec!["member arrondissement 771 is one of [771]".to_owned()]);
    assert!(why.facts.contains(&"arrondissement=771".to_owned()), "{:?}", why.facts);
    // A referent who does not follow the member does not see it.
    let referent = env.keys.token(Role::Referent, None, None);
    let hidden = routing.grpc.explain_routing(with_token(explain.clone(), &referent)).await.err().map(|s| s.code());
    assert_eq!(hidden, Some(tonic::Code::NotFound));

    // agence-nord declines: the next candidate is the offer's own provider (attempt 2).
    env.reply(NORD, &first.id, pb::ReplyDecision::Decline, "hors de nos compétences").await?;
    let referrals = routing.wait_referrals(&request.request_id, 2).await?;
    assert_eq!(referrals[0].status(), pb::ReferralStatus::Declined);
    assert_eq!((referrals[1].provider_code.as_str(), referrals[1].attempt), (PROVIDER, 2));
    assert!(
        referrals[1].assignment.starts_with("Orientation automatique : réorientation : aucune règle n'a choisi"),
        "{}",
        referrals[1].assignment
    );
    let declined = env.wait_messages(streams::ROUTING, "id77.routing.referral.declined", 1).await?;
    let declined = pb::ReferralDeclined::decode(declined[0].payload.clone())?;
    assert!(declined.rerouted);
    assert_eq!(declined.next_provider_code, PROVIDER);
    let why = routing.grpc.explain_routing(with_token(explain, &routing.coordinator)).await?.into_inner();
    assert_eq!((why.outcome.as_str(), why.provider_code.as_str()), ("offer_default", PROVIDER));
    assert!(why.rules[0].skipped.contains("already tried"), "{:?}", why.rules[0]);
    assert_eq!(why.referrals.len(), 2);

    // caue77 declines too: nobody is left, the request goes to the coordinator's triage queue.
    env.reply(PROVIDER, &referrals[1].id, pb::ReplyDecision::Decline, "complet").await?;
    routing.wait_status(&referrals[1].id, pb::ReferralStatus::Declined).await?;
    assert!(routing.in_triage(&request.request_id).await?);
    assert_eq!(routing.referrals(&request.request_id).await?.len(), 2);

    // The coordinator reassigns by hand (from any referral of the request).
    let req = pb::ReassignReferralRequest {
        referral_id: referrals[1].id.clone(),
        provider_code: NORD.into(),
        reason: "après échange téléphonique".into(),
    };
    let manual = routing.grpc.reassign_referral(with_token(req, &routing.coordinator)).await?.into_inner();
    assert_eq!((manual.provider_code.as_str(), manual.attempt), (NORD, 3));
    assert!(manual.assignment.starts_with("Orientation manuelle : confiée à agence-nord"), "{}", manual.assignment);
    assert!(!routing.in_triage(&request.request_id).await?);

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn the_sla_reminds_escalates_then_expires_and_timers_survive_a_restart() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    env.publish_offer_of(&Uuid::now_v7().to_string(), NORD, 1).await?;
    let request = Env::request(&offer_id);
    env.publish_request(&request, &Uuid::now_v7().to_string()).await?;
    let first = routing.wait_referral(&request.request_id).await?;
    assert_eq!(first.provider_code, PROVIDER);
    // One timer at a time: the reminder, which arms the deadline, which arms the expiry.
    let armed: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM timer ORDER BY due_at").fetch_all(&routing.pool).await?;
    assert_eq!(armed, vec!["remind".to_owned()]);
    let at_risk = pb::ListReferralsRequest { at_risk: true, ..Default::default() };
    let none = routing.grpc.list_referrals(with_token(at_risk.clone(), &routing.coordinator)).await?.into_inner();
    assert!(none.referrals.is_empty());

    // Routing is down while time passes beyond the deadline (5 business days, holidays excluded).
    let until = |ts: Option<&id77_proto::prost_types::Timestamp>| -> Result<chrono::Duration, BoxError> {
        let at = ts.and_then(id77_platform::time::from_proto).ok_or("missing deadline")?;
        Ok(at - env.clock_now() + chrono::Duration::minutes(5))
    };
    routing.stop().await?;
    env.clock.advance(until(first.respond_by.as_ref())?);
    let mut routing = env.start().await?;
    env.wait_messages(streams::ROUTING, "id77.routing.referral.escalated", 1).await?;
    let reminded = env.wait_messages(streams::REFERRALS, &streams::referral_offered_subject(PROVIDER), 2).await?;
    assert_eq!(header(&reminded[1], "Id77-Event-Type"), "id77.routing.v1.ReferralReminded");
    let escalated = routing.referral(&first.id).await?;
    assert_eq!(escalated.status(), pb::ReferralStatus::Offered, "escalated, not yet expired");
    assert!(escalated.escalated_at.is_some());
    let armed: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM timer ORDER BY due_at").fetch_all(&routing.pool).await?;
    assert_eq!(armed, vec!["expire".to_owned()], "the deadline armed the expiry");
    let risky = routing.grpc.list_referrals(with_token(at_risk, &routing.coordinator)).await?.into_inner();
    assert_eq!(risky.referrals.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), vec![first.id.clone()]);

    // After the grace period: expired, and re-routed to the next candidate (none: triage).
    assert!(escalated.expires_at.as_ref().map(|t| t.seconds) > escalated.respond_by.as_ref().map(|t| t.seconds));
    env.clock.advance(until(escalated.expires_at.as_ref())?);
    routing.wait_status(&first.id, pb::ReferralStatus::Expired).await?;
    let expired = env.wait_messages(streams::ROUTING, "id77.routing.referral.expired", 1).await?;
    let expired = pb::ReferralExpired::decode(expired[0].payload.clone())?;
    assert_eq!((expired.rerouted, expired.next_provider_code.as_str()), (true, ""));
    assert!(routing.in_triage(&request.request_id).await?);
    let timers: i64 = sqlx::query_scalar("SELECT count(*) FROM timer").fetch_one(&routing.pool).await?;
    assert_eq!(timers, 0, "every timer fired or was disarmed");

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_withdrawal_or_a_cancellation_tells_the_provider() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    let (one, two) = (Env::request(&offer_id), Env::request(&offer_id));
    env.publish_request(&one, &Uuid::now_v7().to_string()).await?;
    env.publish_request(&two, &Uuid::now_v7().to_string()).await?;
    let first = routing.wait_referral(&one.request_id).await?;
    let second = routing.wait_referral(&two.request_id).await?;

    // The coordinator withdraws one.
    let req = pb::WithdrawReferralRequest { referral_id: first.id.clone(), reason: "demande en doublon".into() };
    let withdrawn = routing.grpc.withdraw_referral(with_token(req.clone(), &routing.coordinator)).await?.into_inner();
    assert_eq!((withdrawn.status(), withdrawn.reason.as_str()), (pb::ReferralStatus::Withdrawn, "demande en doublon"));
    let again = routing.grpc.withdraw_referral(with_token(req, &routing.coordinator)).await.err().map(|s| s.code());
    assert_eq!(again, Some(tonic::Code::FailedPrecondition));

    // The other request is cancelled (request.cancelled).
    let cancelled = id77_proto::requests::v1::RequestCancelled {
        request_id: two.request_id.clone(),
        member_id: two.member_id.clone(),
        reason: "projet abandonné".into(),
        occurred_at: None,
        ..Default::default()
    };
    env.publish("id77.requests.request.cancelled", &cancelled, "cancel-two").await?;
    routing.wait_status(&second.id, pb::ReferralStatus::Withdrawn).await?;

    // The provider hears of both on its own subject, typed by the event header.
    let messages = env.wait_messages(streams::REFERRALS, &streams::referral_offered_subject(PROVIDER), 4).await?;
    let withdrawals: Vec<pb::ReferralWithdrawn> = messages
        .iter()
        .filter(|m| header(m, "Id77-Event-Type") == "id77.routing.v1.ReferralWithdrawn")
        .map(|m| pb::ReferralWithdrawn::decode(m.payload.clone()))
        .collect::<Result<_, _>>()?;
    let ids: Vec<&str> = withdrawals.iter().map(|w| w.referral_id.as_str()).collect();
    assert_eq!(ids, vec![first.id.as_str(), second.id.as_str()]);
    assert_eq!(withdrawals[1].reason, "request cancelled: projet abandonné");
    // Who did it: the coordinator for the first, the cancellation's actor (none given here) for the second; the
    // provider had not accepted either.
    assert_eq!(withdrawals[0].actor_role, "coordinator");
    assert!(!withdrawals[0].actor_user_id.is_empty());
    assert!(withdrawals.iter().all(|w| !w.after_acceptance));
    env.wait_messages(streams::ROUTING, "id77.routing.referral.withdrawn", 2).await?;

    // A late accept of a withdrawn referral changes nothing.
    env.reply(PROVIDER, &first.id, pb::ReplyDecision::Accept, "").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(routing.referral(&first.id).await?.status(), pb::ReferralStatus::Withdrawn);

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn the_coordinator_places_triaged_requests_and_progress_is_published() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    let other_offer = Uuid::now_v7().to_string();
    env.publish_offer_of(&other_offer, "dir-routes", 1).await?;
    // Routing must know both offers (their own durable) before the coordinator places anything.
    routing.wait_inbox("routing-offers", &format!("offer-{offer_id}-1")).await?;
    routing.wait_inbox("routing-offers", &format!("offer-{other_offer}-1")).await?;
    // An open orientation request: no offer.
    let open = RequestSubmitted { offer_id: String::new(), ..Env::request("") };
    env.publish_request(&open, &Uuid::now_v7().to_string()).await?;
    let coordinator = routing.coordinator.clone();
    let list = |token: &str| with_token(pb::ListTriageRequest::default(), token);
    let mut grpc = routing.grpc.clone();
    wait_until(|| {
        let mut grpc = grpc.clone();
        let request = list(&coordinator);
        let id = open.request_id.clone();
        async move {
            Ok(grpc
                .list_triage(request)
                .await?
                .into_inner()
                .items
                .iter()
                .any(|i| i.request_id == id && i.offer_id.is_empty()))
        }
    })
    .await?;
    let agent = env.keys.token(Role::ProviderAgent, None, Some(PROVIDER));
    assert_eq!(grpc.list_triage(list(&agent)).await.err().map(|s| s.code()), Some(tonic::Code::PermissionDenied));

    // It needs an offer; with one, the rules (here: the offer's provider) place it, and it leaves the queue.
    let assign = |offer: &str, provider: &str| pb::AssignTriagedRequest {
        request_id: open.request_id.clone(),
        offer_id: offer.to_owned(),
        provider_code: provider.to_owned(),
        note: "vu en réunion".into(),
    };
    let refused = grpc.assign_triaged(with_token(assign("", ""), &coordinator)).await.err().map(|s| s.code());
    assert_eq!(refused, Some(tonic::Code::InvalidArgument));
    let refused = grpc.assign_triaged(with_token(assign(&offer_id, ""), &agent)).await.err().map(|s| s.code());
    assert_eq!(refused, Some(tonic::Code::PermissionDenied));
    let placed = grpc.assign_triaged(with_token(assign(&offer_id, ""), &coordinator)).await?.into_inner();
    assert_eq!(
        (placed.offer_id.as_str(), placed.provider_code.as_str(), placed.attempt),
        (offer_id.as_str(), PROVIDER, 1)
    );
    assert!(grpc.list_triage(list(&coordinator)).await?.into_inner().items.is_empty());
    let twice = grpc.assign_triaged(with_token(assign(&offer_id, ""), &coordinator)).await.err().map(|s| s.code());
    assert_eq!(twice, Some(tonic::Code::NotFound), "no longer in the queue");
    let offered = env.wait_messages(streams::ROUTING, "id77.routing.referral.offered", 1).await?;
    let event = pb::ReferralOffered::decode(offered[0].payload.clone())?;
    assert_eq!((event.request_id.as_str(), event.offer_id.as_str()), (open.request_id.as_str(), offer_id.as_str()));

    // Withdrawn by the coordinator: back in the queue; placed by hand with a provider this time.
    let withdraw =
        pb::WithdrawReferralRequest { referral_id: placed.id.clone(), reason: "mauvais interlocuteur".into() };
    grpc.withdraw_referral(with_token(withdraw, &coordinator)).await?;
    let queued = grpc.list_triage(list(&coordinator)).await?.into_inner().items;
    assert_eq!(queued.len(), 1);
    assert_eq!(
        (queued[0].offer_id.as_str(), queued[0].reason.as_str()),
        (offer_id.as_str(), "orientation retirée : mauvais interlocuteur")
    );
    let unknown = grpc.assign_triaged(with_token(assign("", "nobody-77"), &coordinator)).await.err().map(|s| s.code());
    assert_eq!(unknown, Some(tonic::Code::NotFound));
    let manual = grpc.assign_triaged(with_token(assign("", "dir-routes"), &coordinator)).await?.into_inner();
    assert_eq!((manual.provider_code.as_str(), manual.attempt), ("dir-routes", 2));
    assert!(manual.assignment.starts_with("Orientation manuelle : orientée vers dir-routes"), "{}", manual.assignment);

    // The provider accepts and reports progress: routing publishes referral.progressed once per sequence.
    env.reply("dir-routes", &manual.id, pb::ReplyDecision::Accept, "").await?;
    routing.wait_status(&manual.id, pb::ReferralStatus::Accepted).await?;
    let progress = pb::ReferralProgress {
        referral_id: manual.id.clone(),
        sequence: 1,
        note: "relevés faits".into(),
        percent: 30,
        reported_at: None,
    };
    env.publish(&streams::referral_reply_subject("dir-routes"), &progress, "progress-1").await?;
    env.publish(&streams::referral_reply_subject("dir-routes"), &progress, "progress-1-again").await?;
    let events = env.wait_messages(streams::ROUTING, "id77.routing.referral.progressed", 1).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events_after = env.messages(streams::ROUTING, "id77.routing.referral.progressed").await?;
    assert_eq!(events_after.len(), 1, "a repeated sequence is not published twice");
    let event = pb::ReferralProgressed::decode(events[0].payload.clone())?;
    assert_eq!(
        (event.request_id.as_str(), event.note.as_str(), event.percent),
        (open.request_id.as_str(), "relevés faits", 30)
    );
    routing.grpc = grpc;
    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

impl Env {
    /// Publishes an offer of `provider` priced by `kind` (version 1).
    async fn publish_priced_offer(&self, offer_id: &str, provider: &str, kind: PriceKind) -> TestResult {
        let event = OfferPublished {
            offer: Some(Offer {
                id: offer_id.to_owned(),
                code: format!("offre-{offer_id}"),
                title: "Rénovation de l'éclairage public".into(),
                provider_code: provider.into(),
                version: 1,
                price_rule: Some(PriceRule { kind: kind.into(), amount_cents: 90_000, ..Default::default() }),
                billed: kind == PriceKind::Flat,
                price_cents: if kind == PriceKind::Flat { 90_000 } else { 0 },
                ..Default::default()
            }),
            provider: Some(Provider { code: provider.into(), name: provider.into(), ..Default::default() }),
        };
        self.publish("id77.catalogue.offer.published", &event, &format!("offer-{offer_id}-1")).await?;
        Ok(())
    }

    async fn reply_quoted(&self, referral_id: &str, amount_cents: i64, message_id: &str) -> TestResult {
        let reply = pb::ReferralReply {
            referral_id: referral_id.to_owned(),
            decision: pb::ReplyDecision::Accept.into(),
            amount_cents,
            ..Default::default()
        };
        self.publish(&streams::referral_reply_subject(PROVIDER), &reply, message_id).await?;
        Ok(())
    }
}

impl Running {
    async fn accept_as(
        &mut self,
        token: &str,
        referral_id: &str,
        amount_cents: i64,
        quote_note: &str,
    ) -> Result<pb::Referral, tonic::Status> {
        let request = pb::ReplyToReferralRequest {
            referral_id: referral_id.to_owned(),
            decision: pb::ReplyDecision::Accept.into(),
            amount_cents,
            quote_note: quote_note.to_owned(),
            ..Default::default()
        };
        self.grpc.reply_to_referral(with_token(request, token)).await.map(|r| r.into_inner())
    }
}

/// The field an INVALID_ARGUMENT status names (its first `google.rpc.BadRequest` violation).
fn invalid_field<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Result<String, BoxError> {
    match result {
        Ok(value) => Err(format!("expected INVALID_ARGUMENT, got {value:?}").into()),
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            let error = id77_platform::ServiceError::from_status(&status);
            Ok(error.violations.first().map(|v| v.field.clone()).unwrap_or_default())
        }
        Err(status) => Err(format!("expected INVALID_ARGUMENT, got {status:?}").into()),
    }
}

#[tokio::test]
async fn an_offer_on_quote_is_accepted_with_its_amount_and_only_it_takes_one() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let (on_quote, flat) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    env.publish_priced_offer(&on_quote, PROVIDER, PriceKind::OnQuote).await?;
    env.publish_priced_offer(&flat, PROVIDER, PriceKind::Flat).await?;
    let (quoted_request, flat_request) = (Env::request(&on_quote), Env::request(&flat));
    env.publish_request(&quoted_request, &Uuid::now_v7().to_string()).await?;
    let quoted = routing.wait_referral(&quoted_request.request_id).await?;
    env.publish_request(&flat_request, &Uuid::now_v7().to_string()).await?;
    let set = routing.wait_referral(&flat_request.request_id).await?;

    // The provider learns the price kind with the referral.
    let offered = env.wait_messages(streams::REFERRALS, &streams::referral_offered_subject(PROVIDER), 2).await?;
    let kinds: Vec<(String, String)> = offered
        .iter()
        .map(|m| pb::ReferralOffered::decode(m.payload.clone()).map(|r| (r.referral_id, r.price_kind)))
        .collect::<Result<_, _>>()?;
    assert!(kinds.contains(&(quoted.id.clone(), "on_quote".into())), "{kinds:?}");
    assert!(kinds.contains(&(set.id.clone(), "flat".into())), "{kinds:?}");
    // The accept's quote gate reads the price kind with the locked referral, not in a read of its own.
    let mut tx = routing.pool.begin().await?;
    let locked = id77_routing::store::lock_referral(&mut tx, Uuid::parse_str(&quoted.id)?).await?;
    assert_eq!(locked.and_then(|r| r.offer_price_kind).as_deref(), Some("on_quote"));
    tx.rollback().await?;

    // On NATS: a plain accept of the offer on quote, an amount for the flat offer, an absurd amount: each is
    // dead-lettered and changes nothing.
    env.reply(PROVIDER, &quoted.id, pb::ReplyDecision::Accept, "").await?;
    env.reply_quoted(&set.id, 50_000, &format!("flat-{}", Uuid::now_v7())).await?;
    env.reply_quoted(&quoted.id, 1_000_000_001, &format!("absurd-{}", Uuid::now_v7())).await?;
    let dead = env.wait_messages(streams::DEADLETTER, "id77.deadletter.routing-replies", 3).await?;
    let reasons: Vec<String> = dead.iter().map(|m| header(m, "Id77-Dead-Letter-Reason")).collect();
    assert!(reasons.iter().all(|r| r.contains("amount_cents")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("priced on quote: state the amount")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("set price")), "{reasons:?}");
    assert_eq!(routing.referral(&quoted.id).await?.status(), pb::ReferralStatus::Offered);
    assert_eq!(routing.referral(&set.id).await?.status(), pb::ReferralStatus::Offered);

    // Through the API: typed INVALID_ARGUMENT naming the field, nothing written.
    let agent = env.keys.token(Role::ProviderAgent, None, Some(PROVIDER));
    assert_eq!(invalid_field(routing.accept_as(&agent, &quoted.id, 0, "").await)?, "amount_cents");
    assert_eq!(invalid_field(routing.accept_as(&agent, &quoted.id, -245_000, "").await)?, "amount_cents");
    assert_eq!(invalid_field(routing.accept_as(&agent, &quoted.id, 1_000_000_001, "").await)?, "amount_cents");
    assert_eq!(invalid_field(routing.accept_as(&agent, &quoted.id, 0, "sans montant").await)?, "quote_note");
    assert_eq!(invalid_field(routing.accept_as(&agent, &set.id, 50_000, "").await)?, "amount_cents");
    let decline_with_amount = pb::ReplyToReferralRequest {
        referral_id: quoted.id.clone(),
        decision: pb::ReplyDecision::Decline.into(),
        reason: "non".into(),
        amount_cents: 100,
        ..Default::default()
    };
    assert_eq!(
        invalid_field(routing.grpc.reply_to_referral(with_token(decline_with_amount, &agent)).await)?,
        "amount_cents"
    );
    assert_eq!(routing.referral(&quoted.id).await?.status(), pb::ReferralStatus::Offered);
    assert!(env.messages(streams::ROUTING, "id77.routing.referral.accepted").await?.is_empty());

    // The amount stated: accepted, and the event carries it to billing.
    let accepted = routing.accept_as(&agent, &quoted.id, 245_000, "  Devis n° 2026-12 ").await?;
    assert_eq!(accepted.status(), pb::ReferralStatus::Accepted);
    // The flat offer: a plain accept, no amount.
    let plain = pb::ReferralReply {
        referral_id: set.id.clone(),
        decision: pb::ReplyDecision::Accept.into(),
        ..Default::default()
    };
    env.publish(&streams::referral_reply_subject(PROVIDER), &plain, &format!("plain-{}", Uuid::now_v7())).await?;
    let events = env.wait_messages(streams::ROUTING, "id77.routing.referral.accepted", 2).await?;
    let events: Vec<pb::ReferralAccepted> =
        events.iter().map(|m| pb::ReferralAccepted::decode(m.payload.clone())).collect::<Result<_, _>>()?;
    let quoted_event = events.iter().find(|e| e.referral_id == quoted.id).ok_or("no accept of the quote")?;
    assert_eq!((quoted_event.amount_cents, quoted_event.quote_note.as_str()), (245_000, "Devis n° 2026-12"));
    let flat_event = events.iter().find(|e| e.referral_id == set.id).ok_or("no accept of the flat offer")?;
    assert_eq!((flat_event.amount_cents, flat_event.quote_note.as_str()), (0, ""));

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

// ---- ADR 0013: requests decides a request's fate, the member agrees to the quote, who did it -----------------

use id77_proto::billing::v1::{Quote, QuoteAccepted};
use id77_proto::requests::v1::RequestCancelled;

impl Env {
    /// An access token of a named user (`name` claim) with `role`, of `provider` when given; and its user id.
    fn named_token(&self, role: Role, provider: Option<&str>, name: &str) -> (String, Uuid) {
        let user = Uuid::now_v7();
        let mut claims = Claims::new(user, role, id77_platform::time::now().timestamp());
        claims.provider_code = provider.map(str::to_owned);
        claims.name = name.to_owned();
        (self.keys.sign(&claims), user)
    }

    /// Billing's `quote.accepted` for `referral`, as billing's outbox publishes it (here: `message_id`).
    async fn publish_quote_accepted(&self, referral: &pb::Referral, message_id: &str) -> TestResult {
        let event = QuoteAccepted {
            quote: Some(Quote {
                id: Uuid::now_v7().to_string(),
                number: "D-caue77-2026-000001".into(),
                issuer_code: referral.provider_code.clone(),
                member_id: referral.member_id.clone(),
                request_id: referral.request_id.clone(),
                referral_id: referral.id.clone(),
                offer_id: referral.offer_id.clone(),
                amount_cents: 90_000,
                signatory_name: "Jeanne Maire".into(),
                ..Default::default()
            }),
            actor_user_id: Uuid::now_v7().to_string(),
            actor_role: "member_admin".into(),
            actor_name: "Jeanne Maire".into(),
        };
        self.publish("id77.billing.quote.accepted", &event, message_id).await?;
        Ok(())
    }

    /// Requests' `request.cancelled` of `request`, by a named member user.
    fn cancellation(request: &RequestSubmitted, user: Uuid, reason: &str) -> RequestCancelled {
        RequestCancelled {
            request_id: request.request_id.clone(),
            member_id: request.member_id.clone(),
            reason: reason.to_owned(),
            occurred_at: None,
            actor_user_id: user.to_string(),
            actor_role: "member_user".into(),
            actor_name: "Marie Dupont".into(),
            provider_code: PROVIDER.into(),
        }
    }
}

impl Running {
    async fn progress_as(&mut self, token: &str, referral_id: &str, note: &str) -> Result<pb::Referral, tonic::Status> {
        let request = pb::ReportReferralProgressRequest {
            referral_id: referral_id.to_owned(),
            note: note.to_owned(),
            percent: 40,
        };
        self.grpc.report_referral_progress(with_token(request, token)).await.map(|r| r.into_inner())
    }

    async fn complete_as(&mut self, token: &str, referral_id: &str) -> Result<pb::Referral, tonic::Status> {
        let request = pb::ReplyToReferralRequest {
            referral_id: referral_id.to_owned(),
            decision: pb::ReplyDecision::Complete.into(),
            ..Default::default()
        };
        self.grpc.reply_to_referral(with_token(request, token)).await.map(|r| r.into_inner())
    }

    /// Waits until the referral's agreement is `agreement`.
    async fn wait_agreement(&mut self, id: &str, agreement: pb::QuoteAgreement) -> Result<pb::Referral, BoxError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let referral = self.referral(id).await?;
            if referral.agreement() == agreement {
                return Ok(referral);
            }
            if tokio::time::Instant::now() > deadline {
                return Err(format!("referral {id} is {:?}, expected {agreement:?}", referral.agreement()).into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The code, machine-readable reason and message of a refusal.
fn refusal<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> Result<(tonic::Code, String, String), BoxError> {
    match result {
        Ok(value) => Err(format!("expected a refusal, got {value:?}").into()),
        Err(status) => {
            let error = id77_platform::ServiceError::from_status(&status);
            Ok((status.code(), error.reason.into_owned(), error.message))
        }
    }
}

/// The messages of `subject` whose `Id77-Event-Type` is `M`, decoded.
async fn typed<M: Message + Name + Default>(env: &Env, stream: StreamDef, subject: &str) -> Result<Vec<M>, BoxError> {
    let mut out = Vec::new();
    for message in env.messages(stream, subject).await? {
        if header(&message, "Id77-Event-Type") == M::full_name() {
            out.push(M::decode(message.payload.clone())?);
        }
    }
    Ok(out)
}

#[tokio::test]
async fn a_cancellation_withdraws_an_accepted_and_completed_referral_and_its_work_is_then_refused() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    let request = Env::request(&offer_id);
    env.publish_request(&request, &Uuid::now_v7().to_string()).await?;
    let referral = routing.wait_referral(&request.request_id).await?;

    // An agent accepts through the portal: named on the referral and on the event; a free offer needs no quote.
    let (agent, agent_id) = env.named_token(Role::ProviderAgent, Some(PROVIDER), "Claire Martin");
    let accepted = routing.accept_as(&agent, &referral.id, 0, "").await?;
    assert_eq!(
        (accepted.status(), accepted.agreement()),
        (pb::ReferralStatus::Accepted, pb::QuoteAgreement::NotRequired)
    );
    assert_eq!(
        (accepted.decided_by_user_id.as_str(), accepted.decided_by_role.as_str(), accepted.decided_by_name.as_str()),
        (agent_id.to_string().as_str(), "provider_agent", "Claire Martin")
    );
    let event = env.wait_messages(streams::ROUTING, "id77.routing.referral.accepted", 1).await?;
    let event = pb::ReferralAccepted::decode(event[0].payload.clone())?;
    assert_eq!(
        (event.actor_user_id.as_str(), event.actor_role.as_str(), event.actor_name.as_str()),
        (agent_id.to_string().as_str(), "provider_agent", "Claire Martin")
    );
    // Progress and the provider's completion (a claim requests has not applied: it cancels first).
    let progressed = routing.progress_as(&agent, &referral.id, "Visite faite").await?;
    assert_eq!(progressed.progress, "Visite faite");
    let completed = routing.complete_as(&agent, &referral.id).await?;
    assert!(completed.completed_at.is_some());
    let event = env.wait_messages(streams::ROUTING, "id77.routing.referral.progressed", 1).await?;
    let event = pb::ReferralProgressed::decode(event[0].payload.clone())?;
    assert_eq!((event.actor_role.as_str(), event.actor_name.as_str()), ("provider_agent", "Claire Martin"));

    // Requests cancelled the request first: the referral is withdrawn, after acceptance, naming who cancelled.
    let member_user = Uuid::now_v7();
    let cancellation = Env::cancellation(&request, member_user, "projet abandonné");
    env.publish("id77.requests.request.cancelled", &cancellation, "cancel-1").await?;
    let withdrawn = routing.wait_status(&referral.id, pb::ReferralStatus::Withdrawn).await?;
    assert_eq!(withdrawn.reason, "request cancelled: projet abandonné");
    assert!(withdrawn.completed_at.is_some(), "the completion time stays, overruled");
    assert_eq!(
        (withdrawn.decided_by_user_id.as_str(), withdrawn.decided_by_role.as_str(), withdrawn.decided_by_name.as_str()),
        (member_user.to_string().as_str(), "member_user", "Marie Dupont")
    );
    // The provider is told on its own subject, typed by the header, and everybody else on routing's subject.
    let provider_subject = streams::referral_offered_subject(PROVIDER);
    env.wait_messages(streams::REFERRALS, &provider_subject, 2).await?;
    let told: Vec<pb::ReferralWithdrawn> = typed(&env, streams::REFERRALS, &provider_subject).await?;
    assert_eq!(told.len(), 1);
    let integration = env.wait_messages(streams::ROUTING, "id77.routing.referral.withdrawn", 1).await?;
    let integration = pb::ReferralWithdrawn::decode(integration[0].payload.clone())?;
    for event in [&told[0], &integration] {
        assert_eq!((event.referral_id.as_str(), event.after_acceptance), (referral.id.as_str(), true));
        assert_eq!(
            (event.actor_user_id.as_str(), event.actor_role.as_str(), event.actor_name.as_str()),
            (member_user.to_string().as_str(), "member_user", "Marie Dupont")
        );
        assert_eq!(event.reason, "request cancelled: projet abandonné");
    }

    // Progress and completion are refused from now on: FAILED_PRECONDITION / INVALID_TRANSITION (409).
    let expected = format!("referral {} was withdrawn: the request was cancelled (projet abandonné)", referral.id);
    for result in
        [routing.progress_as(&agent, &referral.id, "Encore").await, routing.complete_as(&agent, &referral.id).await]
    {
        assert_eq!(refusal(result)?, (tonic::Code::FailedPrecondition, "INVALID_TRANSITION".into(), expected.clone()));
    }
    // On NATS too: not applied, dead-lettered with the reason.
    env.reply(PROVIDER, &referral.id, pb::ReplyDecision::Complete, "").await?;
    let dead = env.wait_messages(streams::DEADLETTER, "id77.deadletter.routing-replies", 1).await?;
    let why = header(&dead[0], "Id77-Dead-Letter-Reason");
    assert!(why.contains("INVALID_TRANSITION") && why.contains("was withdrawn"), "{why}");

    // A redelivered (or replayed) cancellation changes nothing: one withdrawal, told once.
    env.publish("id77.requests.request.cancelled", &cancellation, "cancel-1-replayed").await?;
    routing.wait_inbox("routing-cancellations", "cancel-1-replayed").await?;
    wait_until(|| async { Ok(routing.outbox_rows().await?.1 == 0) }).await?;
    assert_eq!(typed::<pb::ReferralWithdrawn>(&env, streams::REFERRALS, &provider_subject).await?.len(), 1);
    assert_eq!(env.messages(streams::ROUTING, "id77.routing.referral.withdrawn").await?.len(), 1);
    assert_eq!(env.messages(streams::ROUTING, "id77.routing.referral.completed").await?.len(), 1);
    let again = routing.referral(&referral.id).await?;
    assert_eq!((again.status(), again.decided_at), (pb::ReferralStatus::Withdrawn, withdrawn.decided_at));

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_billed_referral_waits_for_the_members_agreement_to_its_quote() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let (flat, free) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    env.publish_priced_offer(&flat, PROVIDER, PriceKind::Flat).await?;
    env.publish_priced_offer(&free, PROVIDER, PriceKind::Free).await?;
    let (billed_request, free_request, cancelled_request) =
        (Env::request(&flat), Env::request(&free), Env::request(&flat));
    for request in [&billed_request, &free_request, &cancelled_request] {
        env.publish_request(request, &Uuid::now_v7().to_string()).await?;
    }
    let billed = routing.wait_referral(&billed_request.request_id).await?;
    let free_referral = routing.wait_referral(&free_request.request_id).await?;
    let cancelled = routing.wait_referral(&cancelled_request.request_id).await?;
    assert_eq!(billed.agreement(), pb::QuoteAgreement::NotRequired, "not accepted yet: nothing to agree");

    // The provider's connector accepts the billed offer on NATS: named as such; the work waits for the member.
    env.reply(PROVIDER, &billed.id, pb::ReplyDecision::Accept, "").await?;
    let waiting = routing.wait_agreement(&billed.id, pb::QuoteAgreement::AwaitingMember).await?;
    assert_eq!(waiting.status(), pb::ReferralStatus::Accepted);
    assert_eq!(
        (waiting.decided_by_user_id.as_str(), waiting.decided_by_role.as_str(), waiting.decided_by_name.as_str()),
        ("", "provider_consumer", "connecteur caue77")
    );
    let event = env.wait_messages(streams::ROUTING, "id77.routing.referral.accepted", 1).await?;
    let event = pb::ReferralAccepted::decode(event[0].payload.clone())?;
    assert_eq!(
        (event.actor_user_id.as_str(), event.actor_role.as_str(), event.actor_name.as_str()),
        ("", "provider_consumer", "connecteur caue77")
    );

    // Progress and completion are refused until the member accepts the quote: QUOTE_NOT_ACCEPTED (409).
    let (agent, _) = env.named_token(Role::ProviderAgent, Some(PROVIDER), "Claire Martin");
    for result in
        [routing.progress_as(&agent, &billed.id, "Commencé").await, routing.complete_as(&agent, &billed.id).await]
    {
        let (code, reason, message) = refusal(result)?;
        assert_eq!((code, reason.as_str()), (tonic::Code::FailedPrecondition, "QUOTE_NOT_ACCEPTED"));
        assert!(message.contains("the member has not accepted the quote yet"), "{message}");
    }
    // On NATS: not applied, dead-lettered with the reason.
    env.reply(PROVIDER, &billed.id, pb::ReplyDecision::Complete, "").await?;
    let progress = pb::ReferralProgress {
        referral_id: billed.id.clone(),
        sequence: 1,
        note: "Commencé".into(),
        percent: 10,
        reported_at: None,
    };
    env.publish(&streams::referral_reply_subject(PROVIDER), &progress, "early-progress").await?;
    let dead = env.wait_messages(streams::DEADLETTER, "id77.deadletter.routing-replies", 2).await?;
    for message in &dead {
        let why = header(message, "Id77-Dead-Letter-Reason");
        assert!(why.contains("QUOTE_NOT_ACCEPTED"), "{why}");
    }
    let still = routing.referral(&billed.id).await?;
    assert!(still.completed_at.is_none() && still.progress.is_empty());
    assert!(env.messages(streams::ROUTING, "id77.routing.referral.completed").await?.is_empty());
    assert!(env.messages(streams::ROUTING, "id77.routing.referral.progressed").await?.is_empty());

    // Billing's quote.accepted: the referral is agreed; a redelivery (another message id) changes nothing.
    env.publish_quote_accepted(&billed, "quote-accepted-1").await?;
    let agreed = routing.wait_agreement(&billed.id, pb::QuoteAgreement::Agreed).await?;
    assert_eq!(agreed.decided_by_role, "provider_consumer", "the member's agreement is not a referral decision");
    let outbox_before = routing.outbox_rows().await?.0;
    env.publish_quote_accepted(&billed, "quote-accepted-1-again").await?;
    routing.wait_inbox("routing-quotes", "quote-accepted-1-again").await?;
    let again = routing.referral(&billed.id).await?;
    assert_eq!((again.agreement(), again.status()), (pb::QuoteAgreement::Agreed, pb::ReferralStatus::Accepted));
    assert_eq!(routing.outbox_rows().await?.0, outbox_before, "an agreement publishes nothing");

    // Now the work goes on.
    assert_eq!(routing.progress_as(&agent, &billed.id, "Commencé").await?.progress, "Commencé");
    assert!(routing.complete_as(&agent, &billed.id).await?.completed_at.is_some());
    let event = env.wait_messages(streams::ROUTING, "id77.routing.referral.completed", 1).await?;
    let event = pb::ReferralCompleted::decode(event[0].payload.clone())?;
    assert_eq!((event.referral_id.as_str(), event.actor_name.as_str()), (billed.id.as_str(), "Claire Martin"));

    // A free offer: nothing to agree, the work starts at once.
    let accepted = routing.accept_as(&agent, &free_referral.id, 0, "").await?;
    assert_eq!(accepted.agreement(), pb::QuoteAgreement::NotRequired);
    assert_eq!(routing.progress_as(&agent, &free_referral.id, "Relevés").await?.progress, "Relevés");

    // A quote accepted after the request was cancelled: the withdrawn referral is left as it is.
    routing.accept_as(&agent, &cancelled.id, 0, "").await?;
    let cancellation = Env::cancellation(&cancelled_request, Uuid::now_v7(), "");
    env.publish("id77.requests.request.cancelled", &cancellation, "cancel-billed").await?;
    routing.wait_status(&cancelled.id, pb::ReferralStatus::Withdrawn).await?;
    env.publish_quote_accepted(&cancelled, "quote-accepted-late").await?;
    routing.wait_inbox("routing-quotes", "quote-accepted-late").await?;
    let late = routing.referral(&cancelled.id).await?;
    assert_eq!((late.status(), late.agreement()), (pb::ReferralStatus::Withdrawn, pb::QuoteAgreement::AwaitingMember));
    let (code, reason, message) = refusal(routing.progress_as(&agent, &cancelled.id, "Trop tard").await)?;
    assert_eq!((code, reason.as_str()), (tonic::Code::FailedPrecondition, "INVALID_TRANSITION"));
    assert_eq!(message, format!("referral {} was withdrawn: the request was cancelled", cancelled.id));

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn the_coordinator_and_routing_itself_are_named_on_what_they_decide() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    env.publish_offer_of(&Uuid::now_v7().to_string(), NORD, 1).await?;
    wait_until(|| async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM provider").fetch_one(&routing.pool).await?;
        Ok(n == 2)
    })
    .await?;
    routing.create_rule("Arrondissement de Provins", r#"{"arrondissement":["772"]}"#, NORD).await?;
    // Routed by routing's rules: "system".
    let routed = Env::request(&offer_id);
    env.publish_request(&routed, &Uuid::now_v7().to_string()).await?;
    routing.wait_referral(&routed.request_id).await?;
    // An open request the coordinator places by hand, with a note.
    let open = RequestSubmitted { offer_id: String::new(), ..Env::request("") };
    env.publish_request(&open, &Uuid::now_v7().to_string()).await?;
    wait_until(|| async { routing.in_triage(&open.request_id).await }).await?;
    let (coordinator, coordinator_id) = env.named_token(Role::Coordinator, None, "Paul Bernard");
    let assign = pb::AssignTriagedRequest {
        request_id: open.request_id.clone(),
        offer_id: offer_id.clone(),
        provider_code: PROVIDER.into(),
        note: "vu en réunion".into(),
    };
    let placed = routing.grpc.assign_triaged(with_token(assign, &coordinator)).await?.into_inner();
    // Then reassigns it (the offered referral is withdrawn by the coordinator), then withdraws the new one.
    let reassign = pb::ReassignReferralRequest {
        referral_id: placed.id.clone(),
        provider_code: NORD.into(),
        reason: "plus proche".into(),
    };
    let moved = routing.grpc.reassign_referral(with_token(reassign, &coordinator)).await?.into_inner();
    let withdraw = pb::WithdrawReferralRequest { referral_id: moved.id.clone(), reason: "doublon".into() };
    let withdrawn = routing.grpc.withdraw_referral(with_token(withdraw, &coordinator)).await?.into_inner();
    let me = coordinator_id.to_string();
    assert_eq!(
        (withdrawn.decided_by_user_id.as_str(), withdrawn.decided_by_role.as_str(), withdrawn.decided_by_name.as_str()),
        (me.as_str(), "coordinator", "Paul Bernard")
    );
    assert_eq!(routing.referral(&placed.id).await?.decided_by_name, "Paul Bernard");

    let offered = env.wait_messages(streams::ROUTING, "id77.routing.referral.offered", 3).await?;
    let offered: Vec<pb::ReferralOffered> =
        offered.iter().map(|m| pb::ReferralOffered::decode(m.payload.clone())).collect::<Result<_, _>>()?;
    let by_rule = offered.iter().find(|o| o.request_id == routed.request_id).ok_or("no routed offer")?;
    assert_eq!(
        (
            by_rule.actor_user_id.as_str(),
            by_rule.actor_role.as_str(),
            by_rule.actor_name.as_str(),
            by_rule.note.as_str()
        ),
        ("", "system", "", "")
    );
    let by_hand: Vec<_> = offered.iter().filter(|o| o.request_id == open.request_id).collect();
    assert_eq!(by_hand.len(), 2);
    for (event, note) in by_hand.iter().zip(["vu en réunion", "plus proche"]) {
        assert_eq!(
            (event.actor_user_id.as_str(), event.actor_role.as_str(), event.actor_name.as_str(), event.note.as_str()),
            (me.as_str(), "coordinator", "Paul Bernard", note)
        );
    }
    // The provider is told of the triaged placement by name, on its own subject.
    let told: Vec<pb::ReferralOffered> =
        typed(&env, streams::REFERRALS, &streams::referral_offered_subject(PROVIDER)).await?;
    let triaged = told.iter().find(|o| o.referral_id == placed.id).ok_or("provider not told")?;
    assert_eq!((triaged.actor_name.as_str(), triaged.note.as_str()), ("Paul Bernard", "vu en réunion"));
    let withdrawals = env.wait_messages(streams::ROUTING, "id77.routing.referral.withdrawn", 2).await?;
    for message in &withdrawals {
        let event = pb::ReferralWithdrawn::decode(message.payload.clone())?;
        assert_eq!((event.actor_role.as_str(), event.actor_name.as_str()), ("coordinator", "Paul Bernard"));
        assert!(!event.after_acceptance);
    }

    // A decline on NATS is the provider's connector; the re-routing after it is routing's own.
    let first = routing.wait_referral(&routed.request_id).await?;
    assert_eq!(first.provider_code, NORD);
    env.reply(NORD, &first.id, pb::ReplyDecision::Decline, "complet").await?;
    let declined = routing.wait_status(&first.id, pb::ReferralStatus::Declined).await?;
    assert_eq!(
        (declined.decided_by_role.as_str(), declined.decided_by_name.as_str()),
        ("provider_consumer", "connecteur agence-nord")
    );
    let event = env.wait_messages(streams::ROUTING, "id77.routing.referral.declined", 1).await?;
    let event = pb::ReferralDeclined::decode(event[0].payload.clone())?;
    assert_eq!((event.actor_role.as_str(), event.actor_name.as_str()), ("provider_consumer", "connecteur agence-nord"));
    let rerouted = routing.wait_referrals(&routed.request_id, 2).await?;
    assert_eq!(rerouted[1].provider_code, PROVIDER);
    let offered = env.wait_messages(streams::ROUTING, "id77.routing.referral.offered", 4).await?;
    let next = offered
        .iter()
        .map(|m| pb::ReferralOffered::decode(m.payload.clone()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|o| o.referral_id == rerouted[1].id)
        .ok_or("no re-routed offer")?;
    assert_eq!((next.actor_role.as_str(), next.actor_name.as_str()), ("system", ""));

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn the_coordinator_lists_every_referral_page_by_page() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let (offer_p, offer_q) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    env.publish_offer_of(&offer_p, PROVIDER, 1).await?;
    env.publish_offer_of(&offer_q, NORD, 1).await?;
    let mut expected = Vec::new();
    for offer in [&offer_p, &offer_q, &offer_p, &offer_q, &offer_p] {
        let request = Env::request(offer);
        env.publish_request(&request, &Uuid::now_v7().to_string()).await?;
        expected.push(routing.wait_referral(&request.request_id).await?.id);
    }
    // One of them decided, so that the list is not only offered referrals.
    env.reply(PROVIDER, &expected[0], pb::ReplyDecision::Accept, "").await?;
    routing.wait_status(&expected[0], pb::ReferralStatus::Accepted).await?;

    // No request, no provider: everything, oldest first, two by two (what a reconciler reads).
    let (coordinator, _) = env.named_token(Role::Coordinator, None, "Réconciliateur");
    let (mut seen, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let req = pb::ListReferralsRequest { page_size: 2, page_token: token.clone(), ..Default::default() };
        let page = routing.grpc.list_referrals(with_token(req, &coordinator)).await?.into_inner();
        assert!(page.referrals.len() <= 2);
        seen.extend(page.referrals.into_iter().map(|r| r.id));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    expected.sort();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "every referral of every provider, once");
    assert_eq!(pages, 3);
    // The operator sees no operational data; an agent's "everything" is its own provider's.
    let operator = env.keys.token(Role::Operator, None, None);
    assert_eq!(code(routing.list_as(&operator, "").await)?, tonic::Code::PermissionDenied);
    let agent = env.keys.token(Role::ProviderAgent, None, Some(NORD));
    assert_eq!(routing.list_as(&agent, "").await?.len(), 2);

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

impl Running {
    async fn sla_as(&mut self, token: &str, provider_code: &str) -> Result<u32, tonic::Status> {
        let req = pb::GetProviderSlaRequest { provider_code: provider_code.to_owned() };
        let sla = self.grpc.get_provider_sla(with_token(req, token)).await?.into_inner();
        assert_eq!(sla.provider_code, provider_code);
        Ok(sla.business_days)
    }

    async fn wait_provider(&self, code: &str) -> TestResult {
        wait_until(|| async {
            let known: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM provider WHERE code = $1)")
                .bind(code)
                .fetch_one(&self.pool)
                .await?;
            Ok(known)
        })
        .await
    }
}

#[tokio::test]
async fn a_providers_sla_is_read_by_the_coordinator_and_its_own_agents_only() -> TestResult {
    const OTHER: &str = "dir-routes";
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    env.publish_offer_of(&Uuid::now_v7().to_string(), PROVIDER, 1).await?;
    env.publish_offer_of(&Uuid::now_v7().to_string(), OTHER, 1).await?;
    routing.wait_provider(PROVIDER).await?;
    routing.wait_provider(OTHER).await?;
    let coordinator = routing.coordinator.clone();

    // The default, then what the coordinator sets.
    assert_eq!(routing.sla_as(&coordinator, PROVIDER).await?, 5);
    let set = pb::SetProviderSlaRequest { provider_code: PROVIDER.into(), business_days: 3 };
    assert_eq!(routing.grpc.set_provider_sla(with_token(set, &coordinator)).await?.into_inner().business_days, 3);
    assert_eq!(routing.sla_as(&coordinator, PROVIDER).await?, 3);
    assert_eq!(routing.sla_as(&coordinator, OTHER).await?, 5);

    // The provider's agents read theirs; another provider's agent is refused (as for its referrals).
    let agent = env.keys.token(Role::ProviderAgent, None, Some(PROVIDER));
    let other_agent = env.keys.token(Role::ProviderAgent, None, Some(OTHER));
    assert_eq!(routing.sla_as(&agent, PROVIDER).await?, 3);
    assert_eq!(routing.sla_as(&other_agent, OTHER).await?, 5);
    assert_eq!(code(routing.sla_as(&other_agent, PROVIDER).await)?, tonic::Code::NotFound);
    assert_eq!(code(routing.sla_as(&agent, OTHER).await)?, tonic::Code::NotFound);

    // An unknown provider is not found; a code that is no provider code is invalid.
    assert_eq!(code(routing.sla_as(&coordinator, "inconnu").await)?, tonic::Code::NotFound);
    assert_eq!(code(routing.sla_as(&coordinator, "Not A Code").await)?, tonic::Code::InvalidArgument);

    // Other roles never read it.
    for token in [
        env.keys.token(Role::MemberAdmin, Some(Uuid::now_v7()), None),
        env.keys.token(Role::Referent, None, None),
        env.keys.token(Role::Operator, None, None),
    ] {
        assert_eq!(code(routing.sla_as(&token, PROVIDER).await)?, tonic::Code::PermissionDenied);
    }
    let anonymous = routing.grpc.get_provider_sla(pb::GetProviderSlaRequest { provider_code: PROVIDER.into() }).await;
    assert_eq!(code(anonymous)?, tonic::Code::Unauthenticated);

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_list_synced_since_an_instant_gives_the_referrals_changed_after_it_whatever_routings_clock() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer = Uuid::now_v7().to_string();
    env.publish_offer_of(&offer, PROVIDER, 1).await?;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let request = Env::request(&offer);
        env.publish_request(&request, &Uuid::now_v7().to_string()).await?;
        ids.push(routing.wait_referral(&request.request_id).await?.id);
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let synced = id77_platform::time::now();
    // Routing's clock runs an hour ahead (as an end-to-end test's may): the referral's own times follow it, the
    // sync goes by when the change was written.
    env.clock.advance(chrono::Duration::hours(1));
    env.reply(PROVIDER, &ids[0], pb::ReplyDecision::Accept, "").await?;
    let accepted = routing.wait_status(&ids[0], pb::ReferralStatus::Accepted).await?;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let later = id77_platform::time::now();
    assert!(accepted.decided_at.as_ref().is_some_and(|t| t.seconds > later.timestamp()), "routing's clock leads");

    let since = |at: chrono::DateTime<chrono::Utc>, page_size: u32, page_token: String| pb::ListReferralsRequest {
        updated_since: Some(id77_platform::time::to_proto(at)),
        page_size,
        page_token,
        ..Default::default()
    };
    let coordinator = routing.coordinator.clone();
    let agent = env.keys.token(Role::ProviderAgent, None, Some(PROVIDER));
    for token in [&coordinator, &agent] {
        let listed = routing.grpc.list_referrals(with_token(since(synced, 0, String::new()), token)).await?;
        assert_eq!(listed.into_inner().referrals.into_iter().map(|r| r.id).collect::<Vec<_>>(), [ids[0].clone()]);
        let none = routing.grpc.list_referrals(with_token(since(later, 0, String::new()), token)).await?;
        assert!(none.into_inner().referrals.is_empty(), "nothing changed since");
    }
    // Still paged, oldest first.
    let long_ago = synced - chrono::Duration::hours(1);
    let first = routing.grpc.list_referrals(with_token(since(long_ago, 1, String::new()), &coordinator)).await?;
    let first = first.into_inner();
    assert_eq!(first.referrals.iter().map(|r| &r.id).collect::<Vec<_>>(), [&ids[0]]);
    let next = since(long_ago, 1, first.next_page_token);
    let second = routing.grpc.list_referrals(with_token(next, &coordinator)).await?.into_inner();
    assert_eq!(second.referrals.iter().map(|r| &r.id).collect::<Vec<_>>(), [&ids[1]]);
    let bad = pb::ListReferralsRequest {
        updated_since: Some(id77_proto::prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }),
        ..Default::default()
    };
    assert_eq!(code(routing.grpc.list_referrals(with_token(bad, &coordinator)).await)?, tonic::Code::InvalidArgument);

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

/// The coordinator edits the rule set (issue 21): change a rule, reorder, delete; each makes a new version, a
/// stale `expected_version` is refused, only the coordinator edits, and routing follows the edited rules.
#[tokio::test]
async fn the_coordinator_edits_reorders_and_deletes_rules_and_routing_follows() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    env.publish_offer_of(&Uuid::now_v7().to_string(), NORD, 1).await?;
    wait_until(|| async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM provider").fetch_one(&routing.pool).await?;
        Ok(n == 2)
    })
    .await?;
    let set = routing.create_rule("Meaux", r#"{"arrondissement":["771"]}"#, NORD).await?;
    let set2 = routing.create_rule("Grandes communes", r#"{"population":{"min":50000}}"#, PROVIDER).await?;
    assert_eq!((set2.version, set2.rules.len()), (2, 2));
    let (meaux, big) = (set.rules[0].id.clone(), set2.rules[1].id.clone());
    let coordinator = routing.coordinator.clone();

    // Edit: the first rule now covers Provins (772) under a new name; the rule keeps its id and its place.
    let rule = pb::RuleInput {
        name: "Provins".into(),
        condition_json: r#"{"arrondissement":["772"]}"#.into(),
        provider_code: NORD.into(),
    };
    let update = pb::UpdateRuleRequest { id: meaux.clone(), rule: Some(rule.clone()), expected_version: 2 };
    let edited = routing.grpc.update_rule(with_token(update.clone(), &coordinator)).await?.into_inner();
    assert_eq!(edited.version, 3);
    assert_eq!((edited.rules[0].id.as_str(), edited.rules[0].name.as_str()), (meaux.as_str(), "Provins"));
    assert_eq!(edited.rules[0].condition_json, r#"{"arrondissement":["772"]}"#);
    // The same edit against version 2 again: the rule set changed meanwhile.
    let stale = routing.grpc.update_rule(with_token(update, &coordinator)).await.err();
    assert_eq!(stale.as_ref().map(|s| s.code()), Some(tonic::Code::FailedPrecondition), "{stale:?}");
    // An unknown rule, an agent: refused.
    let unknown = pb::UpdateRuleRequest { id: Uuid::now_v7().to_string(), rule: Some(rule), expected_version: 0 };
    let missing = routing.grpc.update_rule(with_token(unknown, &coordinator)).await.err().map(|s| s.code());
    assert_eq!(missing, Some(tonic::Code::NotFound));
    let agent = env.keys.token(Role::ProviderAgent, None, Some(PROVIDER));
    let delete_big = pb::DeleteRuleRequest { id: big.clone(), expected_version: 0 };
    let denied = routing.grpc.delete_rule(with_token(delete_big.clone(), &agent)).await.err().map(|s| s.code());
    assert_eq!(denied, Some(tonic::Code::PermissionDenied));

    // Reorder: the population rule first; a list that is not every rule once is refused.
    let partial = pb::ReorderRulesRequest { rule_ids: vec![big.clone()], expected_version: 0 };
    let refused = routing.grpc.reorder_rules(with_token(partial, &coordinator)).await.err().map(|s| s.code());
    assert_eq!(refused, Some(tonic::Code::InvalidArgument));
    let swap = pb::ReorderRulesRequest { rule_ids: vec![big.clone(), meaux.clone()], expected_version: 3 };
    let reordered = routing.grpc.reorder_rules(with_token(swap, &coordinator)).await?.into_inner();
    assert_eq!(reordered.version, 4);
    let order: Vec<(&str, u32)> = reordered.rules.iter().map(|r| (r.id.as_str(), r.position)).collect();
    assert_eq!(order, vec![(big.as_str(), 1), (meaux.as_str(), 2)]);

    // Delete the population rule: only « Provins » is left, and a member of 772 is routed by it.
    let deleted = routing.grpc.delete_rule(with_token(delete_big, &coordinator)).await?.into_inner();
    assert_eq!(deleted.version, 5);
    assert_eq!(deleted.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), vec![meaux.as_str()]);
    let listed = routing.grpc.list_rules(with_token(pb::ListRulesRequest {}, &coordinator)).await?.into_inner();
    assert_eq!((listed.version, listed.rules.len()), (5, 1));
    let request = Env::request(&offer_id);
    env.publish_member(&request.member_id, "772", 80_000).await?;
    env.publish("id77.requests.request.submitted", &request, &Uuid::now_v7().to_string()).await?;
    let referral = routing.wait_referral(&request.request_id).await?;
    assert_eq!(
        (referral.provider_code.as_str(), referral.rule_id.as_str(), referral.rule_version),
        (NORD, meaux.as_str(), 5)
    );

    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_referral_names_the_collectivite_its_contact_the_offer_and_the_provider_in_list_and_detail() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    let request = RequestSubmitted {
        requester_user_id: Uuid::now_v7().to_string(),
        requester_name: "Marie Dupont".into(),
        requester_email: "marie.dupont@meaux.fr".into(),
        ..Env::request(&offer_id)
    };
    env.publish_request(&request, &Uuid::now_v7().to_string()).await?;
    let referral = routing.wait_referral(&request.request_id).await?;
    let names = |r: &pb::Referral| {
        (
            r.member_name.clone(),
            r.offer_title.clone(),
            r.provider_name.clone(),
            r.requester_name.clone(),
            r.requester_email.clone(),
            r.request_subject.clone(),
        )
    };
    let expected = (
        "Commune".to_owned(),
        "Conseil architectural".to_owned(),
        PROVIDER.to_owned(),
        "Marie Dupont".to_owned(),
        "marie.dupont@meaux.fr".to_owned(),
        request.subject.clone(),
    );
    assert_eq!(names(&referral), expected, "the list answer names everything (no call per line)");
    assert_eq!(names(&routing.referral(&referral.id).await?), expected, "and the referral's own answer");
    // A request published before the requester was carried: empty contact, the rest still named.
    let older = Env::request(&offer_id);
    env.publish_request(&older, &Uuid::now_v7().to_string()).await?;
    let referral = routing.wait_referral(&older.request_id).await?;
    assert_eq!((referral.requester_name.as_str(), referral.requester_email.as_str()), ("", ""));
    assert_eq!(referral.offer_title, "Conseil architectural");
    routing.stop().await
}

impl Running {
    async fn set_sla(&mut self, provider_code: &str, business_days: u32) -> TestResult {
        let req = pb::SetProviderSlaRequest { provider_code: provider_code.to_owned(), business_days };
        let set = self.grpc.set_provider_sla(with_token(req, &self.coordinator)).await?.into_inner();
        assert_eq!(set.business_days, business_days);
        Ok(())
    }

    /// Who submitted the request, as routing keeps it: (name, e-mail), one row at most.
    async fn contacts(&self, request_id: &str) -> Result<Vec<(String, String)>, BoxError> {
        Ok(sqlx::query_as("SELECT requester_name, requester_email FROM request_contact WHERE request_id = $1::uuid")
            .bind(request_id)
            .fetch_all(&self.pool)
            .await?)
    }
}

impl Env {
    /// Submits a request of a member of `arrondissement` for `offer_id`.
    async fn submit_from(&self, offer_id: &str, arrondissement: &str) -> Result<RequestSubmitted, BoxError> {
        let request = Env::request(offer_id);
        self.publish_member(&request.member_id, arrondissement, 1200).await?;
        self.publish("id77.requests.request.submitted", &request, &Uuid::now_v7().to_string()).await?;
        Ok(request)
    }
}

/// The business days a referral was given to answer: its deadline, counted from when it was offered.
fn sla_days_of(referral: &pb::Referral) -> Result<u32, BoxError> {
    let at = |ts: Option<&id77_proto::prost_types::Timestamp>| {
        ts.and_then(id77_platform::time::from_proto).ok_or_else(|| format!("referral {} misses a time", referral.id))
    };
    let (offered_at, respond_by) = (at(referral.offered_at.as_ref())?, at(referral.respond_by.as_ref())?);
    let schedule = |days| id77_routing::domain::calendar::schedule(offered_at, days, 1, 2);
    (1..=60)
        .find(|&days| schedule(days).respond_by == respond_by)
        .ok_or_else(|| format!("respond_by {respond_by} is no deadline from {offered_at}").into())
}

/// A submitted request is routed by the rule set and offered with the deadline of the provider the rules chose,
/// as the coordinator set them just before (read with the request's offer and member, issue 23), and an edit
/// made between two submissions applies to the next one (nothing kept in memory).
#[tokio::test]
async fn a_submitted_request_is_routed_by_the_rules_and_slas_set_just_before_it() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    env.publish_offer_of(&Uuid::now_v7().to_string(), NORD, 1).await?;
    routing.wait_provider(PROVIDER).await?;
    routing.wait_provider(NORD).await?;
    routing.set_sla(PROVIDER, 2).await?;
    routing.set_sla(NORD, 10).await?;
    let set = routing.create_rule("Meaux", r#"{"arrondissement":["771"]}"#, NORD).await?;

    // The offer's own provider (no rule matches 772), and the rule's (771): each with its own deadline.
    let by_default = env.submit_from(&offer_id, "772").await?;
    let referral = routing.wait_referral(&by_default.request_id).await?;
    assert_eq!((referral.provider_code.as_str(), referral.rule_version), (PROVIDER, 0));
    assert_eq!(sla_days_of(&referral)?, 2);
    let by_rule = env.submit_from(&offer_id, "771").await?;
    let referral = routing.wait_referral(&by_rule.request_id).await?;
    assert_eq!((referral.provider_code.as_str(), referral.rule_id.as_str()), (NORD, set.rules[0].id.as_str()));
    assert_eq!((referral.rule_version, sla_days_of(&referral)?), (1, 10));

    // Edited between two submissions: a new rule for 772 and another deadline, both followed at once.
    routing.set_sla(NORD, 3).await?;
    let set = routing.create_rule("Provins", r#"{"arrondissement":["772"]}"#, NORD).await?;
    let edited = env.submit_from(&offer_id, "772").await?;
    let referral = routing.wait_referral(&edited.request_id).await?;
    assert_eq!((referral.provider_code.as_str(), referral.rule_version), (NORD, set.version));
    assert_eq!(sla_days_of(&referral)?, 3);
    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}

/// Who submitted a request is kept once (issue 21), written with the routed request (issue 23): a replay changes
/// nothing but still records a contact routing did not keep yet; an open request keeps it too (it goes to
/// triage); an event without a requester keeps none.
#[tokio::test]
async fn a_requesters_contact_is_kept_once_whether_the_request_is_routed_replayed_or_triaged() -> TestResult {
    let env = Env::new("routing").await?;
    let mut routing = env.start().await?;
    let offer_id = Uuid::now_v7().to_string();
    env.publish_offer(&offer_id, 1).await?;
    let with_requester = |offer_id: &str| RequestSubmitted {
        requester_user_id: Uuid::now_v7().to_string(),
        requester_name: " Marie Dupont ".into(),
        requester_email: "marie.dupont@meaux.fr".into(),
        ..Env::request(offer_id)
    };
    let marie = || vec![("Marie Dupont".to_owned(), "marie.dupont@meaux.fr".to_owned())];
    let request = with_requester(&offer_id);
    env.publish_request(&request, &Uuid::now_v7().to_string()).await?;
    routing.wait_referral(&request.request_id).await?;
    assert_eq!(routing.contacts(&request.request_id).await?, marie());

    // A replay (another message id, another name): nothing changes.
    let replay = RequestSubmitted { requester_name: "Quelqu'un d'autre".into(), ..request.clone() };
    let replay_id = Uuid::now_v7().to_string();
    env.publish_request(&replay, &replay_id).await?;
    routing.wait_inbox("routing-requests", &replay_id).await?;
    assert_eq!(routing.contacts(&request.request_id).await?, marie());
    // A request routed before routing kept contacts: its replay records it, once, and routes nothing more.
    sqlx::query("DELETE FROM request_contact WHERE request_id = $1::uuid")
        .bind(&request.request_id)
        .execute(&routing.pool)
        .await?;
    let replay_id = Uuid::now_v7().to_string();
    env.publish_request(&request, &replay_id).await?;
    routing.wait_inbox("routing-requests", &replay_id).await?;
    assert_eq!(routing.contacts(&request.request_id).await?, marie());
    assert_eq!(routing.referrals(&request.request_id).await?.len(), 1);

    // An open request (no offer) waits in triage with its contact; a request without a requester has none.
    let open = with_requester("");
    let open_id = Uuid::now_v7().to_string();
    env.publish_request(&open, &open_id).await?;
    routing.wait_inbox("routing-requests", &open_id).await?;
    assert!(routing.in_triage(&open.request_id).await?);
    assert_eq!(routing.contacts(&open.request_id).await?, marie());
    let anonymous = Env::request(&offer_id);
    env.publish_request(&anonymous, &Uuid::now_v7().to_string()).await?;
    routing.wait_referral(&anonymous.request_id).await?;
    assert!(routing.contacts(&anonymous.request_id).await?.is_empty());
    routing.stop().await?;
    env.cleanup().await;
    Ok(())
}
