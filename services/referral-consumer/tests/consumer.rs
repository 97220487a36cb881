//! The referral consumer on the real local NATS, with a fresh subject prefix per test.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, message::PublishMessage};
use id77_bus::Namespace;
use id77_platform::testing;
use id77_proto::events::provider::{offered as referral_offered_subject, reply as referral_reply_subject};
use id77_proto::events::streams;
use id77_proto::routing::v1::{ReferralOffered, ReferralReply, ReplyDecision};
use id77_referral_consumer::{Config, MessageIds, Quote, Rule, RuleKind, Summary, run};
use prost::{Message, Name};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type TestResult = Result<(), BoxError>;

const PROVIDER: &str = "caue77";
const OTHER: &str = "autre77";

struct Env {
    ns: Namespace,
    js: jetstream::Context,
}

impl Env {
    async fn new() -> Result<Self, BoxError> {
        if std::env::var_os("ID77_LOG").is_some() {
            id77_bus::telemetry::init("referral-consumer-tests");
        }
        let client = async_nats::connect(testing::nats_url()).await?;
        let js = jetstream::new(client);
        let ns = Namespace::new(testing::fresh_prefix());
        id77_bus::nats::ensure_stream(&js, &ns, streams::REFERRALS).await?;
        Ok(Self { ns, js })
    }

    fn config(&self, max: Option<u64>) -> Result<Config, BoxError> {
        let mut config = Config::new(testing::nats_url(), PROVIDER)?;
        config.prefix = self.ns.prefix().to_owned();
        config.max = max;
        Ok(config)
    }

    async fn publish<M: Message + Name>(&self, subject: &str, message: &M, id: &str) -> TestResult {
        self.publish_raw(subject, message.encode_to_vec(), &M::full_name(), id).await
    }

    async fn publish_raw(&self, subject: &str, payload: Vec<u8>, event_type: &str, id: &str) -> TestResult {
        let mut headers = HeaderMap::new();
        headers.insert("Id77-Event-Type", event_type);
        headers.insert("Content-Type", "application/protobuf");
        let publish = PublishMessage::build().payload(payload.into()).headers(headers).message_id(id);
        self.js.send_publish(self.ns.subject(subject), publish).await?.await?;
        Ok(())
    }

    /// Publishes a referral to `provider`, as routing's outbox relay would. Returns its id.
    async fn offer(&self, provider: &str) -> Result<String, BoxError> {
        let referral = ReferralOffered {
            referral_id: Uuid::now_v7().to_string(),
            request_id: Uuid::now_v7().to_string(),
            offer_id: Uuid::now_v7().to_string(),
            offer_code: "caue-conseil-archi".into(),
            offer_title: "Conseil architectural".into(),
            member_id: Uuid::now_v7().to_string(),
            provider_code: provider.into(),
            subject: "Réhabilitation de l'école".into(),
            description: "Nous voulons rénover l'école communale.".into(),
            occurred_at: None,
            attempt: 1,
            ..Default::default()
        };
        self.publish(&referral_offered_subject(provider), &referral, &Uuid::now_v7().to_string()).await?;
        Ok(referral.referral_id)
    }

    /// Every message stored on `subject`, oldest first.
    async fn messages(&self, subject: &str) -> Result<Vec<jetstream::Message>, BoxError> {
        let stream = self.js.get_stream(self.ns.stream(streams::REFERRALS.name)).await?;
        let reader: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subject: self.ns.subject(subject),
                deliver_policy: consumer::DeliverPolicy::All,
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(10),
                ..Default::default()
            })
            .await?;
        let pending = reader.cached_info().num_pending;
        let mut out = Vec::new();
        if pending == 0 {
            return Ok(out);
        }
        let mut batch =
            reader.batch().max_messages(usize::try_from(pending)?).expires(Duration::from_secs(2)).messages().await?;
        while let Some(message) = futures::StreamExt::next(&mut batch).await {
            out.push(message?);
        }
        Ok(out)
    }

    /// The provider's durable consumer, as the server sees it.
    async fn durable_info(&self, provider: &str) -> Result<Option<consumer::Info>, BoxError> {
        let stream = self.js.get_stream(self.ns.stream(streams::REFERRALS.name)).await?;
        Ok(stream.consumer_info(format!("provider-{provider}")).await.ok())
    }

    async fn cleanup(self) {
        testing::delete_streams(&self.js, &self.ns).await;
    }
}

fn header(message: &jetstream::Message, name: &str) -> String {
    message.headers.as_ref().and_then(|h| h.get(name)).map(|v| v.as_str().to_owned()).unwrap_or_default()
}

async fn run_with_timeout(config: Config, rule: Rule, token: CancellationToken) -> Result<Summary, BoxError> {
    Ok(tokio::time::timeout(Duration::from_secs(20), run(config, rule, token)).await??)
}

#[tokio::test]
async fn answers_only_its_own_referrals_once_and_resumes_where_it_stopped() -> TestResult {
    let env = Env::new().await?;
    let first = env.offer(PROVIDER).await?;
    let second = env.offer(PROVIDER).await?;
    let others = env.offer(OTHER).await?;

    let rule = Rule::new(RuleKind::AcceptAll, None)?;
    let summary = run_with_timeout(env.config(Some(2))?, rule.clone(), CancellationToken::new()).await?;
    assert_eq!(summary, Summary { accepted: 2, declined: 0, terminated: 0, ..Default::default() });

    let replies = env.messages(&referral_reply_subject(PROVIDER)).await?;
    assert_eq!(replies.len(), 2);
    let mut answered = Vec::new();
    for message in &replies {
        assert_eq!(header(message, "Id77-Event-Type"), "id77.routing.v1.ReferralReply");
        assert_eq!(header(message, "Content-Type"), "application/protobuf");
        let reply = ReferralReply::decode(message.payload.clone())?;
        assert_eq!(header(message, "Nats-Msg-Id"), MessageIds::new(PROVIDER, None).reply(&reply.referral_id));
        assert_eq!(reply.decision(), ReplyDecision::Accept);
        assert!(reply.replied_at.is_some());
        answered.push(reply.referral_id);
    }
    answered.sort();
    let mut expected = vec![first, second];
    expected.sort();
    assert_eq!(answered, expected);

    // The other provider's referral was neither answered nor consumed.
    assert!(env.messages(&referral_reply_subject(OTHER)).await?.is_empty());
    assert!(env.durable_info(OTHER).await?.is_none());
    let offered_to_other = env.messages(&referral_offered_subject(OTHER)).await?;
    assert_eq!(offered_to_other.len(), 1);
    assert_eq!(ReferralOffered::decode(offered_to_other[0].payload.clone())?.referral_id, others);
    let info = env.durable_info(PROVIDER).await?.ok_or("durable consumer missing")?;
    assert_eq!((info.delivered.consumer_sequence, info.num_pending, info.num_ack_pending), (2, 0, 0));

    // A second run resumes the durable consumer: nothing is pending, nothing is answered again.
    let token = CancellationToken::new();
    let stopper = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        stopper.cancel();
    });
    let summary = run_with_timeout(env.config(None)?, rule, token).await?;
    assert_eq!(summary, Summary::default());
    assert_eq!(env.messages(&referral_reply_subject(PROVIDER)).await?.len(), 2);

    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_pull_request_lost_on_its_way_is_renewed_after_missed_heartbeats() -> TestResult {
    let env = Env::new().await?;
    let referral = env.offer(PROVIDER).await?;
    // The consumer's connection loses its first pull request; async-nats alone would pull again only at 35 s,
    // past this run's 20 s.
    let (url, dropped) = testing::pull_dropping_proxy(&testing::nats_url(), 1).await?;
    let mut config = env.config(Some(1))?;
    config.nats_url = url;
    let rule = Rule::new(RuleKind::AcceptAll, None)?;
    let summary = run_with_timeout(config, rule, CancellationToken::new()).await?;
    assert_eq!(dropped.load(std::sync::atomic::Ordering::SeqCst), 1, "the first pull request was lost");
    assert_eq!(summary, Summary { accepted: 1, ..Default::default() });
    let replies = env.messages(&referral_reply_subject(PROVIDER)).await?;
    assert_eq!(ReferralReply::decode(replies[0].payload.clone())?.referral_id, referral);
    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_reply_sent_before_a_crash_is_not_sent_twice_and_garbage_is_terminated() -> TestResult {
    let env = Env::new().await?;
    env.publish_raw(&referral_offered_subject(PROVIDER), b"not a protobuf".to_vec(), "x", "garbage").await?;
    let referral_id = env.offer(PROVIDER).await?;
    // An earlier run replied, then died before acking the referral.
    let earlier = ReferralReply {
        referral_id: referral_id.clone(),
        decision: ReplyDecision::Accept.into(),
        reason: String::new(),
        ..Default::default()
    };
    let id = MessageIds::new(PROVIDER, None).reply(&referral_id);
    env.publish(&referral_reply_subject(PROVIDER), &earlier, &id).await?;

    let rule = Rule::new(RuleKind::DeclineAll, Some("plus de disponibilité"))?;
    let summary = run_with_timeout(env.config(Some(1))?, rule, CancellationToken::new()).await?;
    assert_eq!(summary, Summary { accepted: 0, declined: 1, terminated: 1, ..Default::default() });

    // The redelivered referral's reply was a duplicate: still one reply, the first one.
    let replies = env.messages(&referral_reply_subject(PROVIDER)).await?;
    assert_eq!(replies.len(), 1);
    assert_eq!(ReferralReply::decode(replies[0].payload.clone())?.decision(), ReplyDecision::Accept);
    let info = env.durable_info(PROVIDER).await?.ok_or("durable consumer missing")?;
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 0));

    env.cleanup().await;
    Ok(())
}

impl Env {
    /// Publishes a referral to [`PROVIDER`] for an offer of `price_kind`. Returns its id.
    async fn offer_priced(&self, price_kind: &str) -> Result<String, BoxError> {
        let referral = ReferralOffered {
            referral_id: Uuid::now_v7().to_string(),
            request_id: Uuid::now_v7().to_string(),
            offer_id: Uuid::now_v7().to_string(),
            offer_code: "renovation-eclairage-public".into(),
            provider_code: PROVIDER.into(),
            attempt: 1,
            price_kind: price_kind.into(),
            ..Default::default()
        };
        self.publish(&referral_offered_subject(PROVIDER), &referral, &Uuid::now_v7().to_string()).await?;
        Ok(referral.referral_id)
    }
}

#[tokio::test]
async fn an_offer_on_quote_is_accepted_at_the_configured_amount_or_left_to_an_agent() -> TestResult {
    let env = Env::new().await?;
    let on_quote = env.offer_priced("on_quote").await?;
    let flat = env.offer_priced("flat").await?;

    // No amount configured: the flat offer is accepted as before; the offer on quote is acknowledged unanswered.
    let token = CancellationToken::new();
    let stopper = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        stopper.cancel();
    });
    let rule = Rule::new(RuleKind::AcceptAll, None)?;
    let summary = run_with_timeout(env.config(None)?, rule.clone(), token).await?;
    assert_eq!(summary, Summary { accepted: 1, left_to_agent: 1, ..Default::default() });
    let replies = env.messages(&referral_reply_subject(PROVIDER)).await?;
    let replies: Vec<ReferralReply> =
        replies.iter().map(|m| ReferralReply::decode(m.payload.clone())).collect::<Result<_, _>>()?;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!((replies[0].referral_id.as_str(), replies[0].amount_cents), (flat.as_str(), 0));
    assert!(!replies.iter().any(|r| r.referral_id == on_quote), "a reply routing would refuse was sent");
    let info = env.durable_info(PROVIDER).await?.ok_or("durable consumer missing")?;
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 0), "left to the agent, not redelivered");

    // With --quote-amount-cents: the next offer on quote is accepted at that amount.
    let next = env.offer_priced("on_quote").await?;
    let mut config = env.config(Some(1))?;
    config.quote = Some(Quote::new(245_000, "Devis type")?);
    let summary = run_with_timeout(config, rule, CancellationToken::new()).await?;
    assert_eq!(summary, Summary { accepted: 1, ..Default::default() });
    let replies = env.messages(&referral_reply_subject(PROVIDER)).await?;
    let quoted = replies
        .iter()
        .map(|m| ReferralReply::decode(m.payload.clone()))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|r| r.referral_id == next)
        .ok_or("no reply to the second offer on quote")?;
    assert_eq!(quoted.decision(), ReplyDecision::Accept);
    assert_eq!((quoted.amount_cents, quoted.quote_note.as_str()), (245_000, "Devis type"));

    env.cleanup().await;
    Ok(())
}

#[tokio::test]
async fn a_withdrawal_after_acceptance_is_handled_and_accept_all_never_completes_on_its_own() -> TestResult {
    use id77_proto::routing::v1::ReferralWithdrawn;
    let env = Env::new().await?;
    let referral_id = env.offer_priced("flat").await?;
    let rule = Rule::new(RuleKind::AcceptAll, None)?;
    let summary = run_with_timeout(env.config(Some(1))?, rule.clone(), CancellationToken::new()).await?;
    assert_eq!(summary, Summary { accepted: 1, ..Default::default() });

    // The member cancels the request after the acceptance: routing withdraws the accepted referral.
    let withdrawn = ReferralWithdrawn {
        referral_id: referral_id.clone(),
        request_id: Uuid::now_v7().to_string(),
        provider_code: PROVIDER.into(),
        reason: "request cancelled: projet reporté".into(),
        actor_role: "member_admin".into(),
        actor_name: "Marie Dupont".into(),
        after_acceptance: true,
        ..Default::default()
    };
    env.publish(&referral_offered_subject(PROVIDER), &withdrawn, "withdrawn-after-acceptance").await?;
    let token = CancellationToken::new();
    let stopper = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        stopper.cancel();
    });
    let summary = run_with_timeout(env.config(None)?, rule, token).await?;
    assert_eq!(summary, Summary { notices: 1, ..Default::default() }, "handled as a notice, acked");
    let info = env.durable_info(PROVIDER).await?.ok_or("durable consumer missing")?;
    assert_eq!((info.num_pending, info.num_ack_pending), (0, 0));

    // One reply ever: the accept. Accept-all neither completes nor answers the withdrawal.
    let replies = env.messages(&referral_reply_subject(PROVIDER)).await?;
    let replies: Vec<ReferralReply> =
        replies.iter().map(|m| ReferralReply::decode(m.payload.clone())).collect::<Result<_, _>>()?;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!((replies[0].referral_id.as_str(), replies[0].decision()), (referral_id.as_str(), ReplyDecision::Accept));

    env.cleanup().await;
    Ok(())
}
