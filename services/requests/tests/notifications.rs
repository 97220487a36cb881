//! Mail notifications against the real PostgreSQL, NATS and a real SMTP server (the platform's sink): accounts
//! arrive as membership's `user.changed` events (a stale version changes nothing), a status change and a posted
//! message queue one mail per recipient in `mail_outbox`, the sender delivers them over SMTP with lettre, and
//! preferences are honoured.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use id77_platform::auth::{Claims, Role};
use id77_platform::testing::{SmtpSink, TestKeys};
use id77_platform::{Namespace, nats, streams, testing, time};
use id77_proto::catalogue::v1::{Offer, OfferCategory, OfferPublished, Provider};
use id77_proto::membership::v1::{CollectivityKind, MemberApproved, UserChanged};
use id77_proto::requests::v1::conversation_service_client::ConversationServiceClient;
use id77_proto::requests::v1::requests_service_client::RequestsServiceClient;
use id77_proto::requests::v1::{
    GetNotificationPreferencesRequest, GetRequestRequest, PostMessageRequest, RequestStatus, SubmitRequestRequest,
    UpdateNotificationPreferencesRequest,
};
use id77_proto::routing::v1::{ReferralAccepted, ReferralOffered};
use id77_requests::notify::sender::MailConfig;
use prost::Message;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

const PORTAL: &str = "https://portail.id77.test";

struct Service {
    url: String,
    js: jetstream::Context,
    ns: Namespace,
    requests: RequestsServiceClient<Channel>,
    conversation: ConversationServiceClient<Channel>,
    keys: TestKeys,
    sink: SmtpSink,
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
    let sink = SmtpSink::start().await.expect("smtp sink");
    let mut platform = testing::platform_config("requests", &url, &prefix, addr);
    platform.jwks_file = Some(keys.jwks_file.clone());
    let mail = MailConfig { smtp_url: Some(sink.url()), portal_url: PORTAL.to_owned(), ..MailConfig::queue_only() };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(id77_requests::run(id77_requests::Config { platform, mail }, listener, shutdown.clone()));
    let (_, js) = nats::connect(&testing::nats_url(), "requests-notifications-test").await.expect("nats");
    let ns = Namespace::new(prefix);
    for def in [streams::MEMBERSHIP, streams::CATALOGUE, streams::ROUTING] {
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
    Service {
        url,
        js,
        ns,
        requests: RequestsServiceClient::new(channel.clone()),
        conversation: ConversationServiceClient::new(channel),
        keys,
        sink,
        shutdown,
        task,
    }
}

impl Service {
    async fn publish<M: Message>(&self, subject: &str, message: &M) {
        let msg =
            PublishMessage::build().payload(message.encode_to_vec().into()).message_id(Uuid::now_v7().to_string());
        self.js.send_publish(self.ns.subject(subject), msg).await.expect("publish").await.expect("ack");
    }

    /// A token for this very user.
    fn token(&self, user: Uuid, role: Role, member: Option<Uuid>, provider: Option<&str>) -> String {
        let mut claims = Claims::new(user, role, time::now().timestamp());
        claims.member_id = member.map(|m| m.to_string());
        claims.provider_code = provider.map(str::to_owned);
        self.keys.sign(&claims)
    }

    async fn user(&self, user: Uuid, email: &str, role: &str, member: Option<Uuid>, provider: &str, version: i64) {
        let changed = UserChanged {
            user_id: user.to_string(),
            email: email.into(),
            display_name: format!("Personne {email}"),
            role: role.into(),
            member_id: member.map(|m| m.to_string()).unwrap_or_default(),
            provider_code: provider.into(),
            active: true,
            version,
            occurred_at: at(0),
        };
        self.publish("id77.membership.user.changed", &changed).await;
    }

    async fn stop(self, pool: PgPool) {
        pool.close().await;
        self.shutdown.cancel();
        let _ = self.task.await;
        testing::drop_database(&self.url).await;
        testing::delete_streams(&self.js, &self.ns).await;
    }
}

/// The service's database once it is created and migrated.
async fn migrated_pool(url: &str) -> PgPool {
    for _ in 0..400 {
        if let Ok(p) = PgPool::connect(url).await
            && sqlx::query("SELECT 1 FROM mail_outbox LIMIT 1").execute(&p).await.is_ok()
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never came up migrated");
}

async fn recipients_known(pool: &PgPool, count: i64) {
    for _ in 0..200 {
        let known: i64 =
            sqlx::query_scalar("SELECT count(*) FROM notification_recipient").fetch_one(pool).await.unwrap_or_default();
        if known >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the recipients never arrived");
}

#[tokio::test]
async fn status_and_message_mails_reach_the_right_people_over_smtp() {
    let mut s = start().await;
    let member_a = Uuid::now_v7();
    let member_b = Uuid::now_v7();
    let (admin_a, user_a, agent_p, agent_q, admin_b) =
        (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    // Version 2 of admin A's account, then a stale version 1 with another address: ignored.
    s.user(admin_a, "dgs@meaux.fr", "member_admin", Some(member_a), "", 2).await;
    s.user(admin_a, "ancien@meaux.fr", "member_admin", Some(member_a), "", 1).await;
    s.user(user_a, "urbanisme@meaux.fr", "member_user", Some(member_a), "", 1).await;
    s.user(agent_p, "agent@caue77.fr", "provider_agent", None, "caue77", 1).await;
    s.user(agent_q, "agent@dir-routes.fr", "provider_agent", None, "dir-routes", 1).await;
    s.user(admin_b, "dgs@melun.fr", "member_admin", Some(member_b), "", 1).await;
    let approved = MemberApproved {
        member_id: member_a.to_string(),
        occurred_at: at(0),
        kind: CollectivityKind::Commune.into(),
        insee_code: "77284".into(),
        epci_siren: "200072130".into(),
        arrondissement: "771".into(),
        ..Default::default()
    };
    s.publish("id77.membership.member.approved", &approved).await;
    let offer_id = Uuid::now_v7();
    let offer = Offer {
        id: offer_id.to_string(),
        code: "diag".into(),
        title: "Diagnostic".into(),
        provider_code: "caue77".into(),
        category: OfferCategory::IntegratedEngineering.into(),
        version: 1,
        ..Default::default()
    };
    // The catalogue names the provider: requests keeps the name and writes it, never the code (issue 21).
    let provider = Provider { code: "caue77".into(), name: "CAUE de Seine-et-Marne".into(), ..Default::default() };
    s.publish("id77.catalogue.offer.published", &OfferPublished { offer: Some(offer), provider: Some(provider) }).await;

    let pool = migrated_pool(&s.url).await;
    recipients_known(&pool, 5).await;
    let email: String = sqlx::query_scalar("SELECT email FROM notification_recipient WHERE user_id = $1")
        .bind(admin_a)
        .fetch_one(&pool)
        .await
        .expect("admin A");
    assert_eq!(email, "dgs@meaux.fr", "a stale user.changed must not win");

    // The member's user turns message mails off (its own preferences; every kind on by default).
    let user_a_token = s.token(user_a, Role::MemberUser, Some(member_a), None);
    let prefs = s
        .requests
        .get_notification_preferences(with_token(GetNotificationPreferencesRequest {}, &user_a_token))
        .await
        .expect("get")
        .into_inner();
    assert!(prefs.status_changed && prefs.message_posted);
    let update = UpdateNotificationPreferencesRequest { status_changed: None, message_posted: Some(false) };
    let prefs = s
        .requests
        .update_notification_preferences(with_token(update, &user_a_token))
        .await
        .expect("update")
        .into_inner();
    assert!(prefs.status_changed && !prefs.message_posted);

    // Admin A submits; routing offers it to caue77, which accepts.
    let admin_a_token = s.token(admin_a, Role::MemberAdmin, Some(member_a), None);
    let submission = SubmitRequestRequest {
        offer_id: offer_id.to_string(),
        subject: "Requalification de la place du marché".into(),
        description: "Étude".into(),
        ..Default::default()
    };
    let mut request = None;
    for _ in 0..200 {
        match s.requests.submit_request(with_token(submission.clone(), &admin_a_token)).await {
            Ok(r) => {
                request = Some(r.into_inner());
                break;
            }
            Err(e) if matches!(e.code(), Code::FailedPrecondition | Code::NotFound | Code::Unavailable) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    let id = request.expect("the read models caught up").id;
    let offered = ReferralOffered {
        request_id: id.clone(),
        provider_code: "caue77".into(),
        occurred_at: at(1),
        ..Default::default()
    };
    s.publish("id77.routing.referral.offered", &offered).await;
    let accepted = ReferralAccepted {
        request_id: id.clone(),
        provider_code: "caue77".into(),
        occurred_at: at(2),
        ..Default::default()
    };
    s.publish("id77.routing.referral.accepted", &accepted).await;
    for _ in 0..200 {
        let r = s.requests.get_request(with_token(GetRequestRequest { id: id.clone() }, &admin_a_token)).await;
        if r.is_ok_and(|r| r.into_inner().status() == RequestStatus::Accepted) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let limit = Duration::from_secs(20);
    let link = format!("{PORTAL}/demandes/{id}");
    for address in ["dgs@meaux.fr", "urbanisme@meaux.fr"] {
        let mails = s.sink.wait_for(address, "est acceptée", 1, limit).await;
        assert_eq!(mails.len(), 1, "one acceptance mail to {address}: {:?}", s.sink.mails_to(address));
        let mail = &mails[0];
        assert_eq!(mail.subject(), "[ID 77] Votre demande « Requalification de la place du marché » est acceptée");
        let body = mail.body();
        assert!(body.contains(&format!("Voir la demande : {link}")), "{body}");
        assert!(body.contains("Partenaire : CAUE de Seine-et-Marne\n"), "{body}");
        assert!(body.contains("Motif : Acceptée par CAUE de Seine-et-Marne\n"), "{body}");
        assert!(!body.contains("caue77"), "no provider code in a mail: {body}");
        let referred = s.sink.wait_for(address, "est transmise", 1, limit).await;
        assert_eq!(referred.len(), 1, "the referral too");
        assert!(
            referred[0].body().contains("Motif : Orientée vers CAUE de Seine-et-Marne\n"),
            "{}",
            referred[0].body()
        );
    }
    // The history lines requests wrote, as the portal reads them: the name, not the code.
    let answer = s.requests.get_request(with_token(GetRequestRequest { id: id.clone() }, &admin_a_token)).await;
    let reasons: Vec<String> = answer.expect("request").into_inner().history.into_iter().map(|h| h.reason).collect();
    assert_eq!(reasons[1..], ["Orientée vers CAUE de Seine-et-Marne", "Acceptée par CAUE de Seine-et-Marne"]);
    // The queued mails and in-portal notifications of the member's users carry no provider code either.
    let coded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM mail_outbox WHERE kind = 'status_changed' AND (subject LIKE '%caue77%' OR body LIKE '%caue77%')",
    )
    .fetch_one(&pool)
    .await
    .expect("outbox");
    assert_eq!(coded, 0);

    // The provider's agent writes: admin A gets a mail, user A (message mails off) does not.
    let agent_token = s.token(agent_p, Role::ProviderAgent, None, Some("caue77"));
    let post =
        PostMessageRequest { request_id: id.clone(), body: "Bonjour, pouvez-vous préciser le périmètre ?".into() };
    s.conversation.post_message(with_token(post, &agent_token)).await.expect("agent posts");
    let mails = s.sink.wait_for("dgs@meaux.fr", "Nouveau message", 1, limit).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].body().contains("pouvez-vous préciser le périmètre ?"), "{}", mails[0].body());
    // The member answers: the agent of caue77 gets it, not the one of dir-routes, not the author.
    let post = PostMessageRequest { request_id: id.clone(), body: "La place et ses abords.".into() };
    s.conversation.post_message(with_token(post, &admin_a_token)).await.expect("admin posts");
    let mails = s.sink.wait_for("agent@caue77.fr", "Nouveau message", 1, limit).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].body().contains(&link), "{}", mails[0].body());

    // Let the sender drain, then check who got nothing and what the outbox recorded.
    for _ in 0..200 {
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM mail_outbox WHERE sent_at IS NULL")
            .fetch_one(&pool)
            .await
            .unwrap_or(1);
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(s.sink.mails_to("urbanisme@meaux.fr").iter().all(|m| !m.subject().contains("Nouveau message")));
    assert_eq!(s.sink.mails_to("dgs@meaux.fr").iter().filter(|m| m.subject().contains("Nouveau message")).count(), 1);
    assert!(s.sink.mails_to("agent@dir-routes.fr").is_empty());
    assert!(s.sink.mails_to("dgs@melun.fr").is_empty());
    assert!(s.sink.mails_to("ancien@meaux.fr").is_empty());
    // Agents get no status mails (only the new referral, issue 21).
    assert!(
        s.sink
            .mails_to("agent@caue77.fr")
            .iter()
            .all(|m| m.subject().contains("Nouveau message") || m.subject().contains("Nouvelle demande à traiter"))
    );
    let (rows, sent, attempts): (i64, i64, i64) =
        sqlx::query_as("SELECT count(*), count(sent_at), COALESCE(sum(attempts), 0) FROM mail_outbox")
            .fetch_one(&pool)
            .await
            .expect("outbox");
    // referred + accepted to two users, one message each way, the new referral to caue77's agent.
    assert_eq!((rows, sent, attempts), (7, 7, 7));
    assert_eq!(s.sink.mails().len(), 7);
    s.stop(pool).await;
}

#[tokio::test]
async fn without_a_relay_mails_stay_queued_and_failures_are_retried_with_backoff() {
    // A closed port as the relay: the sender records the failure and pushes the next try back.
    let url = testing::fresh_database_url("requests");
    let pool_url = url.clone();
    let prefix = testing::fresh_prefix();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr");
    let platform = testing::platform_config("requests", &url, &prefix, addr);
    let mail = MailConfig { smtp_url: Some(format!("smtp://{closed}")), ..MailConfig::queue_only() };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(id77_requests::run(id77_requests::Config { platform, mail }, listener, shutdown.clone()));
    let pool = migrated_pool(&pool_url).await;
    sqlx::query(
        "INSERT INTO mail_outbox (id, event_id, recipient_user_id, email, kind, request_id, subject, body, link_path,
                                  created_at, next_attempt_at)
         VALUES ($1, $2, $3, 'dgs@meaux.fr', 'status_changed', $4, 'Objet', 'Texte', '/demandes/x', now(), now())",
    )
    .bind(Uuid::now_v7())
    .bind(Uuid::now_v7())
    .bind(Uuid::now_v7())
    .bind(Uuid::now_v7())
    .execute(&pool)
    .await
    .expect("queued");
    let mut failed = None;
    for _ in 0..200 {
        let row: (i32, Option<String>, bool, f64) = sqlx::query_as(
            "SELECT attempts, last_error, sent_at IS NULL,
                    extract(epoch FROM next_attempt_at - now())::float8 FROM mail_outbox",
        )
        .fetch_one(&pool)
        .await
        .expect("row");
        if row.1.is_some() {
            failed = Some(row);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (attempts, error, unsent, retry_in) = failed.expect("the failure is recorded");
    assert_eq!(attempts, 1);
    assert!(unsent);
    assert!(!error.unwrap_or_default().is_empty());
    assert!((20.0..=31.0).contains(&retry_in), "first retry in about 30 s, not {retry_in}");
    pool.close().await;
    shutdown.cancel();
    let _ = task.await;
    testing::drop_database(&url).await;
}
