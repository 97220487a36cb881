//! Requests as the arbiter of a request's fate (docs/adr/0013-one-truth-across-services.md), against the real
//! PostgreSQL and NATS: a cancellation recorded first makes routing's later completion stale; the completion
//! carries its referral; a cancellation names who did it and tells the provider's agents; billing's quote
//! decisions (proposed, accepted, refused, expired, voided) mail the right people once and cancel the request
//! through the ordinary cancellation; history rows, messages and mails name people, not `system` or addresses.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use id77_platform::auth::{Claims, Role};
use id77_platform::testing::TestKeys;
use id77_platform::{Namespace, nats, streams, testing, time};
use id77_proto::billing::v1::{
    Invoice, InvoiceIssued, QuoteAccepted, QuoteExpired, QuoteIssued, QuoteRefused, QuoteStatus, QuoteVoided,
};
use id77_proto::catalogue::v1::{Offer, OfferCategory, OfferPublished, Provider};
use id77_proto::membership::v1::{CollectivityKind, MemberApproved, UserChanged};
use id77_proto::requests::v1::conversation_service_client::ConversationServiceClient;
use id77_proto::requests::v1::requests_service_client::RequestsServiceClient;
use id77_proto::requests::v1::{
    CancelRequestRequest, GetRequestRequest, ListMessagesRequest, ListRequestsRequest, PostMessageRequest,
    Request as RequestPb, RequestCancelled, RequestCompleted, RequestStatus, StatusChange, SubmitRequestRequest,
};
use id77_proto::routing::v1::{ReferralAccepted, ReferralCompleted, ReferralOffered};
use id77_requests::notify::sender::MailConfig;
use prost::Message;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

mod support;

const SUBJECT: &str = "Requalification de la place du marché";

struct Service {
    url: String,
    pool: PgPool,
    js: jetstream::Context,
    ns: Namespace,
    requests: RequestsServiceClient<Channel>,
    conversation: ConversationServiceClient<Channel>,
    keys: TestKeys,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn at(offset_secs: i64) -> Option<id77_proto::prost_types::Timestamp> {
    Some(time::to_proto(time::now() + chrono::Duration::seconds(offset_secs)))
}

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", TestKeys::bearer(token));
    request
}

async fn start() -> Service {
    let url = testing::fresh_database_url("requests");
    let prefix = testing::fresh_prefix();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let keys = TestKeys::new().expect("test keys");
    let mut platform = testing::platform_config("requests", &url, &prefix, addr);
    platform.jwks_file = Some(keys.jwks_file.clone());
    let shutdown = CancellationToken::new();
    let config = id77_requests::Config { platform, mail: MailConfig::queue_only() };
    let task = tokio::spawn(id77_requests::run(config, listener, shutdown.clone()));
    let (_, js) = nats::connect(&testing::nats_url(), "requests-arbiter-test").await.expect("nats");
    let ns = Namespace::new(prefix);
    for def in [streams::MEMBERSHIP, streams::CATALOGUE, streams::ROUTING, streams::BILLING] {
        nats::ensure_stream(&js, &ns, def).await.expect("stream");
    }
    let mut channel = None;
    for _ in 0..100 {
        if let Ok(c) = Channel::from_shared(format!("http://{addr}")).expect("url").connect().await {
            channel = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let channel = channel.expect("requests answers");
    let pool = migrated_pool(&url).await;
    Service {
        url,
        pool,
        js,
        ns,
        requests: RequestsServiceClient::new(channel.clone()),
        conversation: ConversationServiceClient::new(channel),
        keys,
        shutdown,
        task,
    }
}

/// The service's database once it is created and migrated.
async fn migrated_pool(url: &str) -> PgPool {
    for _ in 0..400 {
        if let Ok(p) = PgPool::connect(url).await
            && sqlx::query("SELECT actor_name FROM request_history LIMIT 1").execute(&p).await.is_ok()
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never came up migrated");
}

/// People of the tests: their user id, the display name membership knows, their e-mail address.
#[derive(Clone)]
struct Person {
    id: Uuid,
    name: &'static str,
    email: &'static str,
}

impl Person {
    fn new(name: &'static str, email: &'static str) -> Self {
        Self { id: Uuid::now_v7(), name, email }
    }
}

/// A queued mail.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Mail {
    email: String,
    subject: String,
    body: String,
}

impl Service {
    /// Publishes with its own message id (a copy of an event published again is another message).
    async fn publish<M: Message>(&self, subject: &str, message: &M) -> String {
        let id = Uuid::now_v7().to_string();
        let msg = PublishMessage::build().payload(message.encode_to_vec().into()).message_id(id.clone());
        self.js.send_publish(self.ns.subject(subject), msg).await.expect("publish").await.expect("ack");
        id
    }

    /// Waits until the service's consumer recorded the message in its inbox (handled, whatever its effect).
    async fn handled(&self, message_id: &str) {
        for _ in 0..300 {
            let done: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE message_id = $1")
                .bind(message_id)
                .fetch_one(&self.pool)
                .await
                .unwrap_or_default();
            if done > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("message {message_id} was never handled");
    }

    /// A token for `person` with its display name (claim `name`).
    fn token(&self, person: &Person, role: Role, member: Option<Uuid>, provider: Option<&str>) -> String {
        let mut claims = Claims::new(person.id, role, time::now().timestamp());
        claims.member_id = member.map(|m| m.to_string());
        claims.provider_code = provider.map(str::to_owned);
        claims.email = person.email.to_owned();
        claims.name = person.name.to_owned();
        self.keys.sign(&claims)
    }

    /// Membership's account of `person` (the mail recipients' read model).
    async fn account(&self, person: &Person, role: &str, member: Option<Uuid>, provider: &str) {
        let changed = UserChanged {
            user_id: person.id.to_string(),
            email: person.email.into(),
            display_name: person.name.into(),
            role: role.into(),
            member_id: member.map(|m| m.to_string()).unwrap_or_default(),
            provider_code: provider.into(),
            active: true,
            version: 1,
            occurred_at: at(0),
        };
        self.publish("id77.membership.user.changed", &changed).await;
    }

    async fn recipients_known(&self, count: i64) {
        for _ in 0..300 {
            let known: i64 = sqlx::query_scalar("SELECT count(*) FROM notification_recipient")
                .fetch_one(&self.pool)
                .await
                .unwrap_or_default();
            if known >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the recipients never arrived");
    }

    /// An active member and an offer of `provider`, named as the catalogue names it ([`provider_name`]).
    async fn member_and_offer(&self, member: Uuid, provider: &str) -> Uuid {
        let approved = MemberApproved {
            member_id: member.to_string(),
            occurred_at: at(0),
            kind: CollectivityKind::Commune.into(),
            insee_code: "77284".into(),
            epci_siren: "200072130".into(),
            arrondissement: "771".into(),
            ..Default::default()
        };
        self.publish("id77.membership.member.approved", &approved).await;
        let offer_id = Uuid::now_v7();
        let offer = Offer {
            id: offer_id.to_string(),
            code: format!("offre-{offer_id}"),
            title: "Diagnostic".into(),
            provider_code: provider.into(),
            category: OfferCategory::AwarenessTraining.into(),
            version: 1,
            ..Default::default()
        };
        let named = Provider { code: provider.into(), name: provider_name(provider).into(), ..Default::default() };
        self.publish("id77.catalogue.offer.published", &OfferPublished { offer: Some(offer), provider: Some(named) })
            .await;
        offer_id
    }

    /// Submits until the read models know the member and the offer.
    async fn submit(&mut self, token: &str, offer: Uuid) -> RequestPb {
        let submission = SubmitRequestRequest {
            offer_id: offer.to_string(),
            subject: SUBJECT.into(),
            description: "Étude de programmation".into(),
            ..Default::default()
        };
        for _ in 0..200 {
            match self.requests.submit_request(with_token(submission.clone(), token)).await {
                Ok(r) => return r.into_inner(),
                Err(e) if matches!(e.code(), Code::FailedPrecondition | Code::NotFound | Code::Unavailable) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        panic!("the read models did not catch up")
    }

    async fn get(&mut self, id: &str) -> RequestPb {
        let token = self.keys.token(Role::Coordinator, None, None);
        self.requests
            .get_request(with_token(GetRequestRequest { id: id.into() }, &token))
            .await
            .expect("get")
            .into_inner()
    }

    async fn wait_status(&mut self, id: &str, status: RequestStatus) -> RequestPb {
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

    /// Referred to `provider` by the routing rules, then accepted by `agent` through the portal.
    async fn referred_and_accepted(&mut self, id: &str, provider: &str, agent: &Person) {
        let offered = ReferralOffered {
            referral_id: Uuid::now_v7().to_string(),
            request_id: id.into(),
            provider_code: provider.into(),
            occurred_at: at(1),
            ..Default::default()
        };
        self.publish("id77.routing.referral.offered", &offered).await;
        let accepted = ReferralAccepted {
            referral_id: offered.referral_id.clone(),
            request_id: id.into(),
            provider_code: provider.into(),
            occurred_at: at(2),
            actor_user_id: agent.id.to_string(),
            actor_role: "provider_agent".into(),
            actor_name: agent.name.into(),
            ..Default::default()
        };
        self.publish("id77.routing.referral.accepted", &accepted).await;
        self.wait_status(id, RequestStatus::Accepted).await;
    }

    /// The events requests queued on `subject` for `request_id` (its outbox keeps published rows a day).
    async fn outbox<M: Message + Default>(&self, subject: &str) -> Vec<M> {
        let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM outbox WHERE subject = $1 ORDER BY seq")
            .bind(subject)
            .fetch_all(&self.pool)
            .await
            .expect("outbox");
        rows.iter().map(|p| M::decode(p.as_slice()).expect("decode")).collect()
    }

    /// The mails queued about `request_id` whose kind is `kind`.
    async fn mails(&self, request_id: &str, kind: &str) -> Vec<Mail> {
        sqlx::query_as(
            "SELECT email, subject, body FROM mail_outbox WHERE request_id = $1 AND kind = $2 ORDER BY email",
        )
        .bind(Uuid::parse_str(request_id).expect("uuid"))
        .bind(kind)
        .fetch_all(&self.pool)
        .await
        .expect("mail_outbox")
    }

    async fn stop(self) {
        self.pool.close().await;
        self.shutdown.cancel();
        self.task.await.expect("join").expect("clean stop");
        testing::delete_streams(&self.js, &self.ns).await;
        testing::drop_database(&self.url).await;
    }
}

fn last(r: &RequestPb) -> StatusChange {
    r.history.last().cloned().unwrap_or_default()
}

fn who(h: &StatusChange) -> (&str, &str, &str) {
    (h.actor_user_id.as_str(), h.actor_role.as_str(), h.actor_name.as_str())
}

/// The catalogue's name of a provider of these tests.
fn provider_name(code: &str) -> &'static str {
    match code {
        "caue77" => "CAUE 77",
        "dir-routes" => "Direction des routes",
        _ => "",
    }
}

use support::quote;

#[tokio::test]
async fn a_cancellation_after_acceptance_names_its_author_tells_the_provider_and_makes_the_completion_stale() {
    let mut s = start().await;
    let member = Uuid::now_v7();
    let user = Person::new("Paul Martin", "urbanisme@meaux.fr");
    let agent = Person::new("Agnès Caue", "agent@caue77.fr");
    let other_agent = Person::new("Rémi Routes", "agent@dir-routes.fr");
    let coordinator = Person::new("Claire Coordination", "coordination@id77.fr");
    s.account(&user, "member_user", Some(member), "").await;
    s.account(&agent, "provider_agent", None, "caue77").await;
    s.account(&other_agent, "provider_agent", None, "dir-routes").await;
    let offer = s.member_and_offer(member, "caue77").await;
    s.recipients_known(3).await;
    let user_token = s.token(&user, Role::MemberUser, Some(member), None);
    let request = s.submit(&user_token, offer).await;
    let id = request.id.clone();
    assert_eq!(who(&request.history[0]), (user.id.to_string().as_str(), "member_user", "Paul Martin"));

    // The coordinator places it by hand with a note: the history names the coordinator, not `system`.
    let offered = ReferralOffered {
        referral_id: Uuid::now_v7().to_string(),
        request_id: id.clone(),
        provider_code: "caue77".into(),
        occurred_at: at(1),
        actor_user_id: coordinator.id.to_string(),
        actor_role: "coordinator".into(),
        actor_name: coordinator.name.into(),
        note: "à traiter avant l'été".into(),
        ..Default::default()
    };
    s.publish("id77.routing.referral.offered", &offered).await;
    let referred = s.wait_status(&id, RequestStatus::Referred).await;
    let step = last(&referred);
    assert_eq!(who(&step), (coordinator.id.to_string().as_str(), "coordinator", "Claire Coordination"));
    assert_eq!(step.reason, "Orientée vers CAUE 77 : à traiter avant l'été");
    // The provider's connector accepts on its NATS subject: named as such.
    let accepted = ReferralAccepted {
        referral_id: offered.referral_id.clone(),
        request_id: id.clone(),
        provider_code: "caue77".into(),
        occurred_at: at(2),
        actor_role: "provider_consumer".into(),
        actor_name: "connecteur caue77".into(),
        ..Default::default()
    };
    s.publish("id77.routing.referral.accepted", &accepted).await;
    let step = last(&s.wait_status(&id, RequestStatus::Accepted).await);
    assert_eq!(who(&step), ("", "provider_consumer", "connecteur caue77"));

    // The member's user cancels after the acceptance: allowed; the event names who and the provider.
    let cancel = CancelRequestRequest { id: id.clone(), reason: "projet reporté".into() };
    let cancelled = s.requests.cancel_request(with_token(cancel, &user_token)).await.expect("cancel").into_inner();
    assert_eq!(cancelled.status(), RequestStatus::Cancelled);
    let step = last(&cancelled);
    assert_eq!(who(&step), (user.id.to_string().as_str(), "member_user", "Paul Martin"));
    let events: Vec<RequestCancelled> = s.outbox("id77.requests.request.cancelled").await;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(
        (e.request_id.as_str(), e.actor_user_id.as_str(), e.actor_role.as_str(), e.actor_name.as_str()),
        (id.as_str(), user.id.to_string().as_str(), "member_user", "Paul Martin")
    );
    assert_eq!((e.provider_code.as_str(), e.reason.as_str()), ("caue77", "projet reporté"));
    // ...and it reached the stream.
    let stream = s.js.get_stream(s.ns.stream("REQUESTS")).await.expect("stream");
    let mut on_stream = false;
    for _ in 0..100 {
        let subject = s.ns.subject("id77.requests.request.cancelled");
        if stream.get_last_raw_message_by_subject(&subject).await.is_ok() {
            on_stream = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(on_stream, "request.cancelled published");
    // The provider's agents get a mail in the same transaction; nobody else's.
    let mails = s.mails(&id, "request_cancelled").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].email, "agent@caue77.fr");
    assert_eq!(mails[0].subject, format!("[ID 77] Demande « {SUBJECT} » annulée"));
    assert!(mails[0].body.contains("a été annulée par Paul Martin : projet reporté"), "{}", mails[0].body);
    assert!(mails[0].body.starts_with("Bonjour Agnès Caue,"), "{}", mails[0].body);

    // The provider's completion arrives after requests decided: stale, no request.completed.
    let completed = ReferralCompleted {
        referral_id: offered.referral_id.clone(),
        request_id: id.clone(),
        provider_code: "caue77".into(),
        occurred_at: at(3),
        actor_user_id: agent.id.to_string(),
        actor_role: "provider_agent".into(),
        actor_name: agent.name.into(),
        ..Default::default()
    };
    let message = s.publish("id77.routing.referral.completed", &completed).await;
    s.handled(&message).await;
    let after = s.get(&id).await;
    assert_eq!(after.status(), RequestStatus::Cancelled);
    assert_eq!(after.history.len(), cancelled.history.len(), "{:?}", after.history);
    assert!(after.completed_at.is_none());
    assert!(s.outbox::<RequestCompleted>("id77.requests.request.completed").await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn a_completion_carries_its_referral_and_the_agent_who_reported_it() {
    let mut s = start().await;
    let member = Uuid::now_v7();
    let user = Person::new("Paul Martin", "urbanisme@meaux.fr");
    let agent = Person::new("Agnès Caue", "agent@caue77.fr");
    let offer = s.member_and_offer(member, "caue77").await;
    let user_token = s.token(&user, Role::MemberUser, Some(member), None);
    let request = s.submit(&user_token, offer).await;
    let id = request.id.clone();
    s.referred_and_accepted(&id, "caue77", &agent).await;
    let referral = Uuid::now_v7().to_string();
    let completed = ReferralCompleted {
        referral_id: referral.clone(),
        request_id: id.clone(),
        provider_code: "caue77".into(),
        occurred_at: at(3),
        actor_user_id: agent.id.to_string(),
        actor_role: "provider_agent".into(),
        actor_name: agent.name.into(),
        ..Default::default()
    };
    s.publish("id77.routing.referral.completed", &completed).await;
    let done = s.wait_status(&id, RequestStatus::Completed).await;
    assert_eq!(who(&last(&done)), (agent.id.to_string().as_str(), "provider_agent", "Agnès Caue"));
    let events: Vec<RequestCompleted> = s.outbox("id77.requests.request.completed").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].request_id.as_str(), events[0].referral_id.as_str(), events[0].provider_code.as_str()),
        (id.as_str(), referral.as_str(), "caue77")
    );
    // Completed first: a cancellation is refused.
    let cancel = CancelRequestRequest { id: id.clone(), reason: "trop tard".into() };
    let refused = s.requests.cancel_request(with_token(cancel, &user_token)).await.expect_err("refused");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    s.stop().await;
}

#[tokio::test]
async fn a_proposed_quote_mails_the_members_users_and_its_refusal_cancels_the_request_naming_the_admin_once() {
    let mut s = start().await;
    let member = Uuid::now_v7();
    let admin = Person::new("Marie Dupont", "dgs@meaux.fr");
    let user = Person::new("Paul Martin", "urbanisme@meaux.fr");
    let agent = Person::new("Agnès Caue", "agent@caue77.fr");
    s.account(&admin, "member_admin", Some(member), "").await;
    s.account(&user, "member_user", Some(member), "").await;
    s.account(&agent, "provider_agent", None, "caue77").await;
    let offer = s.member_and_offer(member, "caue77").await;
    s.recipients_known(3).await;
    let user_token = s.token(&user, Role::MemberUser, Some(member), None);
    let request = s.submit(&user_token, offer).await;
    let id = request.id.clone();
    s.referred_and_accepted(&id, "caue77", &agent).await;

    // Proposed, published twice (billing's relay may publish again): one mail per member's user.
    let q = quote(&request, member, "caue77", "D-caue77-2026-000001");
    let issued = QuoteIssued { quote: Some(q.clone()) };
    s.publish("id77.billing.quote.issued", &issued).await;
    let again = s.publish("id77.billing.quote.issued", &issued).await;
    s.handled(&again).await;
    let mails = s.mails(&id, "quote_proposed").await;
    let to: Vec<&str> = mails.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(to, vec!["dgs@meaux.fr", "urbanisme@meaux.fr"], "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail.subject, format!("[ID 77] Devis D-caue77-2026-000001 proposé pour votre demande « {SUBJECT} »"));
    assert!(
        mail.body.contains(&format!(
            "Devis D-caue77-2026-000001 proposé pour votre demande « {SUBJECT} » : Étude préalable.\n\
             Partenaire : CAUE 77\n\nMontant HT : 2\u{202f}500,00\u{a0}€\nTVA (20\u{a0}%) : 500,00\u{a0}€\n\
             Montant TTC : 3\u{202f}000,00\u{a0}€\n"
        )),
        "{}",
        mail.body
    );
    assert!(mail.body.contains("à accepter ou refuser par un administrateur"), "{}", mail.body);
    assert!(mail.body.starts_with("Bonjour Marie Dupont,"), "{}", mail.body);

    // The admin refuses it (published twice too): the request is cancelled once, naming her and the quote.
    let mut refused_quote = q.clone();
    refused_quote.status = QuoteStatus::Refused.into();
    refused_quote.decided_at = at(5);
    refused_quote.decided_by_user_id = admin.id.to_string();
    refused_quote.decided_by_name = admin.name.into();
    refused_quote.decision_reason = "budget épuisé".into();
    let refused = QuoteRefused {
        quote: Some(refused_quote),
        actor_user_id: admin.id.to_string(),
        actor_role: "member_admin".into(),
        actor_name: admin.name.into(),
    };
    s.publish("id77.billing.quote.refused", &refused).await;
    let cancelled = s.wait_status(&id, RequestStatus::Cancelled).await;
    let again = s.publish("id77.billing.quote.refused", &refused).await;
    s.handled(&again).await;
    let step = last(&cancelled);
    assert_eq!(who(&step), (admin.id.to_string().as_str(), "member_admin", "Marie Dupont"));
    assert_eq!(step.reason, "Devis D-caue77-2026-000001 refusé : budget épuisé");
    assert_eq!(s.get(&id).await.history.len(), cancelled.history.len(), "cancelled once");
    let events: Vec<RequestCancelled> = s.outbox("id77.requests.request.cancelled").await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].actor_user_id.as_str(), events[0].actor_role.as_str(), events[0].actor_name.as_str()),
        (admin.id.to_string().as_str(), "member_admin", "Marie Dupont")
    );
    assert_eq!(events[0].provider_code, "caue77");
    // The provider's agents learn it once, the refusal and its reason in the mail.
    let mails = s.mails(&id, "request_cancelled").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].email, "agent@caue77.fr");
    assert_eq!(mails[0].subject, format!("[ID 77] Devis D-caue77-2026-000001 refusé : demande « {SUBJECT} » annulée"));
    assert!(
        mails[0].body.contains("annulée par Marie Dupont : Devis D-caue77-2026-000001 refusé : budget épuisé"),
        "{}",
        mails[0].body
    );
    // The member's other user gets the status mail; the admin who acted does not.
    let status: Vec<String> = s
        .mails(&id, "status_changed")
        .await
        .into_iter()
        .filter(|m| m.subject.ends_with("est annulée"))
        .map(|m| m.email)
        .collect();
    assert_eq!(status, vec!["urbanisme@meaux.fr".to_owned()]);

    // Billing voids nothing more here, and a voided quote changes nothing.
    let voided = QuoteVoided { quote: Some(q) };
    let message = s.publish("id77.billing.quote.voided", &voided).await;
    s.handled(&message).await;
    assert_eq!(s.get(&id).await.history.len(), cancelled.history.len());
    s.stop().await;
}

#[tokio::test]
async fn an_accepted_quote_tells_the_agents_once_and_an_expired_one_cancels_as_the_system() {
    let mut s = start().await;
    let member = Uuid::now_v7();
    let admin = Person::new("Marie Dupont", "dgs@meaux.fr");
    let agent = Person::new("Agnès Caue", "agent@caue77.fr");
    let other_agent = Person::new("Rémi Routes", "agent@dir-routes.fr");
    s.account(&admin, "member_admin", Some(member), "").await;
    s.account(&agent, "provider_agent", None, "caue77").await;
    s.account(&other_agent, "provider_agent", None, "dir-routes").await;
    let offer = s.member_and_offer(member, "caue77").await;
    s.recipients_known(3).await;
    let admin_token = s.token(&admin, Role::MemberAdmin, Some(member), None);

    // Accepted (delivered twice): one mail to caue77's agent, none to anyone else.
    let first = s.submit(&admin_token, offer).await;
    s.referred_and_accepted(&first.id, "caue77", &agent).await;
    let mut accepted_quote = quote(&first, member, "caue77", "D-caue77-2026-000002");
    accepted_quote.status = QuoteStatus::Accepted.into();
    accepted_quote.decided_at = at(5);
    accepted_quote.signatory_name = "Marie Dupont, DGS".into();
    accepted_quote.purchase_order_number = "ENG-2026-42".into();
    let accepted = QuoteAccepted {
        quote: Some(accepted_quote),
        actor_user_id: admin.id.to_string(),
        actor_role: "member_admin".into(),
        actor_name: admin.name.into(),
    };
    let one = s.publish("id77.billing.quote.accepted", &accepted).await;
    let two = s.publish("id77.billing.quote.accepted", &accepted).await;
    s.handled(&one).await;
    s.handled(&two).await;
    let mails = s.mails(&first.id, "quote_accepted").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].email, "agent@caue77.fr");
    assert_eq!(mails[0].subject, "[ID 77] Devis D-caue77-2026-000002 accepté : vous pouvez commencer");
    assert!(mails[0].body.contains("Devis D-caue77-2026-000002 accepté par Marie Dupont"), "{}", mails[0].body);
    assert!(mails[0].body.contains("vous pouvez commencer") && mails[0].body.contains("ENG-2026-42"));
    assert_eq!(s.get(&first.id).await.status(), RequestStatus::Accepted, "an acceptance moves nothing here");

    // Expired without an answer: cancelled by the system, the provider told; its late completion is stale.
    let second = s.submit(&admin_token, offer).await;
    s.referred_and_accepted(&second.id, "caue77", &agent).await;
    let mut expired_quote = quote(&second, member, "caue77", "D-caue77-2026-000003");
    expired_quote.status = QuoteStatus::Expired.into();
    expired_quote.decided_at = at(5);
    s.publish("id77.billing.quote.expired", &QuoteExpired { quote: Some(expired_quote.clone()) }).await;
    let cancelled = s.wait_status(&second.id, RequestStatus::Cancelled).await;
    let step = last(&cancelled);
    assert_eq!(who(&step), ("", "system", ""));
    assert_eq!(step.reason, "Devis D-caue77-2026-000003 expiré sans réponse");
    let again = s.publish("id77.billing.quote.expired", &QuoteExpired { quote: Some(expired_quote) }).await;
    s.handled(&again).await;
    let events: Vec<RequestCancelled> = s.outbox("id77.requests.request.cancelled").await;
    assert_eq!(events.len(), 1, "cancelled once");
    assert_eq!(
        (events[0].request_id.as_str(), events[0].actor_user_id.as_str(), events[0].actor_role.as_str()),
        (second.id.as_str(), "", "system")
    );
    assert_eq!(events[0].provider_code, "caue77");
    let mails = s.mails(&second.id, "request_cancelled").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].email, "agent@caue77.fr");
    assert!(mails[0].subject.starts_with("[ID 77] Devis D-caue77-2026-000003 expiré"), "{}", mails[0].subject);
    assert!(mails[0].body.contains("a été annulée : Devis D-caue77-2026-000003 expiré sans réponse"));
    let completed = ReferralCompleted {
        referral_id: Uuid::now_v7().to_string(),
        request_id: second.id.clone(),
        provider_code: "caue77".into(),
        occurred_at: at(6),
        ..Default::default()
    };
    let late = s.publish("id77.routing.referral.completed", &completed).await;
    s.handled(&late).await;
    assert_eq!(s.get(&second.id).await.status(), RequestStatus::Cancelled);
    assert!(s.outbox::<RequestCompleted>("id77.requests.request.completed").await.is_empty());
    // An acceptance of a request already cancelled tells nobody to start.
    let mut late_quote = quote(&second, member, "caue77", "D-caue77-2026-000004");
    late_quote.status = QuoteStatus::Accepted.into();
    let late_accept = QuoteAccepted { quote: Some(late_quote), ..accepted };
    let message = s.publish("id77.billing.quote.accepted", &late_accept).await;
    s.handled(&message).await;
    assert!(s.mails(&second.id, "quote_accepted").await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn messages_and_their_mails_show_display_names_and_the_coordinator_lists_everything_page_by_page() {
    let mut s = start().await;
    let (member, other_member) = (Uuid::now_v7(), Uuid::now_v7());
    let admin = Person::new("Marie Dupont", "dgs@meaux.fr");
    let agent = Person::new("Agnès Caue", "agent@caue77.fr");
    let other = Person::new("Jean Melun", "dgs@melun.fr");
    s.account(&admin, "member_admin", Some(member), "").await;
    s.account(&agent, "provider_agent", None, "caue77").await;
    let offer = s.member_and_offer(member, "caue77").await;
    s.member_and_offer(other_member, "caue77").await;
    s.recipients_known(2).await;
    let admin_token = s.token(&admin, Role::MemberAdmin, Some(member), None);
    let request = s.submit(&admin_token, offer).await;
    let id = request.id.clone();
    s.referred_and_accepted(&id, "caue77", &agent).await;

    // The admin writes: the message and the agent's mail show her name, not her address.
    let post = PostMessageRequest { request_id: id.clone(), body: "La place et ses abords.".into() };
    let posted = s.conversation.post_message(with_token(post, &admin_token)).await.expect("post").into_inner();
    assert_eq!(posted.author_name, "Marie Dupont");
    let mails = s.mails(&id, "message_posted").await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(mails[0].email, "agent@caue77.fr");
    assert!(mails[0].body.contains("Marie Dupont a écrit"), "{}", mails[0].body);
    assert!(!mails[0].body.contains("dgs@meaux.fr"), "{}", mails[0].body);
    // A token issued before names were carried: the name membership gave the account.
    let mut claims = Claims::new(agent.id, Role::ProviderAgent, time::now().timestamp());
    claims.provider_code = Some("caue77".into());
    claims.email = agent.email.into();
    let old_token = s.keys.sign(&claims);
    let post = PostMessageRequest { request_id: id.clone(), body: "Bien noté.".into() };
    let answer = s.conversation.post_message(with_token(post, &old_token)).await.expect("post").into_inner();
    assert_eq!(answer.author_name, "Agnès Caue");
    let listed = s
        .conversation
        .list_messages(with_token(ListMessagesRequest { request_id: id.clone(), ..Default::default() }, &admin_token))
        .await
        .expect("list")
        .into_inner();
    let names: Vec<&str> = listed.messages.iter().map(|m| m.author_name.as_str()).collect();
    assert_eq!(names, vec!["Marie Dupont", "Agnès Caue"]);

    // The coordinator (no member named) lists every member's requests, one page at a time, with named history.
    let other_token = s.token(&other, Role::MemberUser, Some(other_member), None);
    let mut expected = vec![id.clone(), s.submit(&other_token, offer).await.id, s.submit(&admin_token, offer).await.id];
    expected.sort();
    let coordinator = s.keys.token(Role::Coordinator, None, None);
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = ListRequestsRequest { page_size: 1, page_token: token.clone(), ..Default::default() };
        let page = s.requests.list_requests(with_token(page, &coordinator)).await.expect("list").into_inner();
        assert!(page.requests.len() <= 1);
        for r in page.requests {
            assert!(!r.history.is_empty() && !r.history[0].actor_name.is_empty(), "{:?}", r.history);
            seen.push(r.id);
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    seen.sort();
    assert_eq!(seen, expected);
    let named = s.get(&id).await;
    let steps: Vec<(&str, &str)> =
        named.history.iter().map(|h| (h.actor_role.as_str(), h.actor_name.as_str())).collect();
    assert_eq!(
        steps,
        vec![("member_admin", "Marie Dupont"), ("system", ""), ("provider_agent", "Agnès Caue")],
        "submitted by the admin, referred by routing's rules, accepted by the agent"
    );
    s.stop().await;
}

#[tokio::test]
async fn an_issued_invoice_mails_the_members_users_who_want_status_mails_once_with_ht_vat_and_ttc() {
    let mut s = start().await;
    let member = Uuid::now_v7();
    let (admin, user) = (Person::new("Marie Dupont", "dgs@meaux.fr"), Person::new("Paul Martin", "urbanisme@meaux.fr"));
    s.account(&admin, "member_admin", Some(member), "").await;
    s.account(&user, "member_user", Some(member), "").await;
    let offer = s.member_and_offer(member, "caue77").await;
    s.recipients_known(2).await;
    sqlx::query("INSERT INTO notification_preference (user_id, status_changed, updated_at) VALUES ($1, false, now())")
        .bind(user.id)
        .execute(&s.pool)
        .await
        .expect("preference");
    let admin_token = s.token(&admin, Role::MemberAdmin, Some(member), None);
    let request = s.submit(&admin_token, offer).await;
    let invoice = Invoice {
        id: Uuid::now_v7().to_string(),
        number: "F-caue77-2026-000001".into(),
        issuer_code: "caue77".into(),
        member_id: member.to_string(),
        request_id: request.id.clone(),
        total_net_cents: 1_845_050,
        total_vat_cents: 369_010,
        total_gross_cents: 2_214_060,
        vat_rate_bp: Some(2000),
        quote_number: "D-caue77-2026-000001".into(),
        due_date: "2027-01-05".into(),
        issued_at: at(0),
        ..Default::default()
    };
    // Published twice (billing's relay may publish again): one mail, to the admin only (the user opted out).
    let issued = InvoiceIssued { invoice: Some(invoice) };
    s.publish("id77.billing.invoice.issued", &issued).await;
    let again = s.publish("id77.billing.invoice.issued", &issued).await;
    s.handled(&again).await;
    let mails = s.mails(&request.id, "invoice_issued").await;
    assert_eq!(mails.iter().map(|m| m.email.as_str()).collect::<Vec<_>>(), vec!["dgs@meaux.fr"], "{mails:?}");
    assert_eq!(
        mails[0].subject,
        format!("[ID 77] Facture F-caue77-2026-000001 émise pour votre demande « {SUBJECT} »")
    );
    let money = |cents| id77_requests::notify::domain::euros(cents);
    let amounts = format!(
        "Montant HT : {}\nTVA (20\u{a0}%) : {}\nMontant TTC : {}\n",
        money(1_845_050),
        money(369_010),
        money(2_214_060)
    );
    assert!(mails[0].body.contains(&amounts) && mails[0].body.contains("5 janvier 2027"), "{}", mails[0].body);
    // By the provider's name (the invoice states no seller here), never its code.
    assert!(mails[0].body.contains(&format!("« {SUBJECT} » par CAUE 77, au montant")), "{}", mails[0].body);
    s.stop().await;
}

/// A held training session's invoice (billing's `session.held`) bills no request: the member's users are still
/// told, once, with what it bills and a link to their invoices (ADR 0016).
#[tokio::test]
async fn a_session_invoice_mails_the_members_users_once_without_a_request() {
    let s = start().await;
    let member = Uuid::now_v7();
    let admin = Person::new("Marie Dupont", "dgs@meaux.fr");
    s.account(&admin, "member_admin", Some(member), "").await;
    s.member_and_offer(member, "caue77").await;
    s.recipients_known(1).await;
    let label = "Participation à la session « Urbanisme durable » du 12 janvier 2027 — 2 participants";
    let invoice = Invoice {
        id: Uuid::now_v7().to_string(),
        number: "F-caue77-2027-000001".into(),
        issuer_code: "caue77".into(),
        member_id: member.to_string(),
        session_id: Uuid::now_v7().to_string(),
        lines: vec![id77_proto::billing::v1::InvoiceLine {
            label: label.into(),
            quantity: 2,
            unit_price_cents: 12_000,
            net_cents: 24_000,
        }],
        total_net_cents: 24_000,
        total_vat_cents: 4_800,
        total_gross_cents: 28_800,
        vat_rate_bp: Some(2000),
        due_date: "2027-02-11".into(),
        issued_at: at(0),
        ..Default::default()
    };
    let issued = InvoiceIssued { invoice: Some(invoice) };
    s.publish("id77.billing.invoice.issued", &issued).await;
    let again = s.publish("id77.billing.invoice.issued", &issued).await;
    s.handled(&again).await;
    let mails: Vec<(String, String, String, Option<Uuid>)> = sqlx::query_as(
        "SELECT email, subject, link_path, request_id FROM mail_outbox WHERE kind = 'invoice_issued' ORDER BY email",
    )
    .fetch_all(&s.pool)
    .await
    .expect("mail_outbox");
    assert_eq!(mails.len(), 1, "one mail however often the event comes: {mails:?}");
    let (email, subject, link, request) = &mails[0];
    assert_eq!(email, "dgs@meaux.fr");
    assert_eq!(subject, &format!("[ID 77] Facture F-caue77-2027-000001 émise : {label}"));
    assert_eq!((link.as_str(), *request), ("/factures", None));
    s.stop().await;
}
