//! The notices beyond a request's status (issue 21) against the real PostgreSQL, NATS and SMTP sink: a provider's
//! agents get a mail when a referral is offered to their provider and when its deadline approaches, the
//! coordinators on an escalation and on a membership application, preferences honoured; every notice is also a
//! notification its recipient lists (newest first, paginated, `updated_since`) and marks read.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use id77_platform::auth::{Claims, Role};
use id77_platform::testing::{SmtpSink, TestKeys};
use id77_platform::{Namespace, nats, streams, testing, time};
use id77_proto::catalogue::v1::{Offer, OfferCategory, OfferPublished, Provider};
use id77_proto::membership::v1::{CollectivityKind, MemberApplied, MemberApproved, UserChanged};
use id77_proto::requests::v1::requests_service_client::RequestsServiceClient;
use id77_proto::requests::v1::{
    ListNotificationsRequest, MarkNotificationsReadRequest, SubmitRequestRequest, UpdateNotificationPreferencesRequest,
};
use id77_proto::routing::v1::{ReferralEscalated, ReferralOffered, ReferralReminded};
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
    Service { url, js, ns, requests: RequestsServiceClient::new(channel), keys, sink, shutdown, task }
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
async fn agents_and_coordinators_get_their_notices_and_read_them_in_the_portal() {
    let mut s = start().await;
    let member = Uuid::now_v7();
    let (admin, agent, quiet_agent, other_agent, coordinator) =
        (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    s.user(admin, "dgs@meaux.fr", "member_admin", Some(member), "", 1).await;
    s.user(agent, "agent@caue77.fr", "provider_agent", None, "caue77", 1).await;
    s.user(quiet_agent, "silence@caue77.fr", "provider_agent", None, "caue77", 1).await;
    s.user(other_agent, "agent@dir-routes.fr", "provider_agent", None, "dir-routes", 1).await;
    s.user(coordinator, "guichet@id77.fr", "coordinator", None, "", 1).await;
    let approved = MemberApproved {
        member_id: member.to_string(),
        occurred_at: at(0),
        kind: CollectivityKind::Commune.into(),
        insee_code: "77284".into(),
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
    // The catalogue names the provider: the coordinators' mails use that name (issue 21).
    let provider = Provider { code: "caue77".into(), name: "CAUE 77".into(), ..Default::default() };
    s.publish("id77.catalogue.offer.published", &OfferPublished { offer: Some(offer), provider: Some(provider) }).await;
    let pool = migrated_pool(&s.url).await;
    recipients_known(&pool, 5).await;

    // One agent turned status mails off: it gets neither the mail nor the notification.
    let quiet_token = s.token(quiet_agent, Role::ProviderAgent, None, Some("caue77"));
    let off = UpdateNotificationPreferencesRequest { status_changed: Some(false), message_posted: None };
    s.requests.update_notification_preferences(with_token(off, &quiet_token)).await.expect("preferences");

    let admin_token = s.token(admin, Role::MemberAdmin, Some(member), None);
    let submission = SubmitRequestRequest {
        offer_id: offer_id.to_string(),
        subject: "Requalification de la place du marché".into(),
        description: "Étude".into(),
        ..Default::default()
    };
    let mut request = None;
    for _ in 0..200 {
        match s.requests.submit_request(with_token(submission.clone(), &admin_token)).await {
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
    let referral = Uuid::now_v7().to_string();
    // 7 December 2026, 16:00 UTC: 17:00 in Paris.
    let respond_by = Some(id77_proto::prost_types::Timestamp { seconds: 1_796_659_200, nanos: 0 });
    let offered = ReferralOffered {
        referral_id: referral.clone(),
        request_id: id.clone(),
        provider_code: "caue77".into(),
        offer_title: "Diagnostic".into(),
        subject: "Requalification de la place du marché".into(),
        respond_by,
        occurred_at: at(1),
        ..Default::default()
    };
    s.publish("id77.routing.referral.offered", &offered).await;
    let limit = Duration::from_secs(20);
    let mails = s.sink.wait_for("agent@caue77.fr", "Nouvelle demande à traiter", 1, limit).await;
    assert_eq!(mails.len(), 1, "{:?}", s.sink.mails_to("agent@caue77.fr"));
    assert_eq!(mails[0].subject(), "[ID 77] Nouvelle demande à traiter : « Requalification de la place du marché »");
    let body = mails[0].body();
    assert!(body.contains("Réponse attendue avant le 7 décembre 2026 à 17 h 00 (heure de Paris)"), "{body}");
    assert!(body.contains(&format!("{PORTAL}/orientations/{referral}")), "{body}");

    let reminded = ReferralReminded {
        referral_id: referral.clone(),
        request_id: id.clone(),
        provider_code: "caue77".into(),
        respond_by,
        occurred_at: at(2),
    };
    s.publish("id77.routing.referral.reminded", &reminded).await;
    let mails = s.sink.wait_for("agent@caue77.fr", "Rappel", 1, limit).await;
    assert_eq!(mails[0].subject(), "[ID 77] Rappel : réponse attendue pour « Requalification de la place du marché »");

    let escalated = ReferralEscalated {
        referral_id: referral.clone(),
        request_id: id.clone(),
        member_id: member.to_string(),
        provider_code: "caue77".into(),
        occurred_at: at(3),
        ..Default::default()
    };
    s.publish("id77.routing.referral.escalated", &escalated).await;
    let applied = MemberApplied {
        member_id: Uuid::now_v7().to_string(),
        siren: "217702885".into(),
        name: "Commune de Melun".into(),
        occurred_at: at(4),
        ..Default::default()
    };
    s.publish("id77.membership.member.applied", &applied).await;
    let mails = s.sink.wait_for("guichet@id77.fr", "adhésion", 1, limit).await;
    assert_eq!(mails[0].subject(), "[ID 77] Nouvelle demande d'adhésion : Commune de Melun");
    let mails = s.sink.wait_for("guichet@id77.fr", "sans réponse", 1, limit).await;
    assert!(mails[0].body().contains("Le partenaire CAUE 77 n'a pas répondu"), "{}", mails[0].body());
    assert!(!mails[0].body().contains("caue77"), "{}", mails[0].body());
    assert!(s.sink.mails_to("silence@caue77.fr").is_empty());
    assert!(s.sink.mails_to("agent@dir-routes.fr").is_empty());

    // The agent's notifications: newest first, paginated, with the unread count.
    let agent_token = s.token(agent, Role::ProviderAgent, None, Some("caue77"));
    let first = ListNotificationsRequest { page_size: 1, ..Default::default() };
    let page = s.requests.list_notifications(with_token(first, &agent_token)).await.expect("list").into_inner();
    assert_eq!(page.unread_count, 2);
    assert_eq!(page.notifications.len(), 1);
    assert_eq!(page.notifications[0].kind, "referral_reminder");
    assert!(page.notifications[0].read_at.is_none());
    assert!(!page.next_page_token.is_empty());
    let next = ListNotificationsRequest { page_size: 1, page_token: page.next_page_token, ..Default::default() };
    let page2 = s.requests.list_notifications(with_token(next, &agent_token)).await.expect("page 2").into_inner();
    assert_eq!(page2.notifications.len(), 1);
    let offered_notice = page2.notifications[0].clone();
    assert_eq!(offered_notice.kind, "referral_offered");
    assert_eq!(offered_notice.link_path, format!("/orientations/{referral}"));
    let since = ListNotificationsRequest { updated_since: offered_notice.created_at, ..Default::default() };
    let recent = s.requests.list_notifications(with_token(since, &agent_token)).await.expect("since").into_inner();
    assert_eq!(recent.notifications.len(), 1, "only the reminder is newer");
    let count = ListNotificationsRequest { count_only: true, ..Default::default() };
    let counted = s.requests.list_notifications(with_token(count, &agent_token)).await.expect("count").into_inner();
    assert_eq!((counted.notifications.len(), counted.unread_count), (0, 2));

    // Marking read: one's own (404 for anyone else's), then all.
    let coordinator_token = s.token(coordinator, Role::Coordinator, None, None);
    let theirs = MarkNotificationsReadRequest { id: offered_notice.id.clone(), all: false };
    let refused = s.requests.mark_notifications_read(with_token(theirs.clone(), &coordinator_token)).await;
    assert_eq!(refused.expect_err("not theirs").code(), Code::NotFound);
    let left = s.requests.mark_notifications_read(with_token(theirs, &agent_token)).await.expect("read").into_inner();
    assert_eq!(left.unread_count, 1);
    let all = MarkNotificationsReadRequest { id: String::new(), all: true };
    let left = s.requests.mark_notifications_read(with_token(all, &coordinator_token)).await.expect("all").into_inner();
    assert_eq!(left.unread_count, 0);
    let quiet = ListNotificationsRequest::default();
    let none = s.requests.list_notifications(with_token(quiet, &quiet_token)).await.expect("quiet").into_inner();
    assert!(none.notifications.is_empty());
    s.stop(pool).await;
}
