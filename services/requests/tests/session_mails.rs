//! Mails of training sessions (issue 22, ADR 0016) on the real PostgreSQL, NATS and an SMTP sink: the catalogue's
//! session and registration events, each published twice (as a republished event would come, with another
//! message id), queue exactly one mail per participant and fact, in French with the Paris date, and the sender
//! delivers it with the link to « Mes inscriptions »; the handlers themselves refuse what can never be mailed and
//! wait for a session they do not know yet.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use chrono::{DateTime, TimeZone, Utc};
use id77_platform::testing::{self, SmtpSink};
use id77_platform::{Event, EventHandler, HandleError, Namespace, nats, streams, time};
use id77_proto::catalogue::v1::{
    Participant, Registration, RegistrationCancelled, RegistrationConfirmed, RegistrationPromoted, RegistrationStatus,
    RegistrationWaitlisted, Session, SessionCancelled, SessionPlace, SessionReminderDue, SessionScheduled,
    SessionStatus,
};
use id77_proto::events::IntegrationEvent;
use id77_requests::notify::sender::MailConfig;
use id77_requests::notify::store::{Recipient, upsert_recipient};
use id77_requests::session_events::{RegistrationEvents, SessionEvents};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const PORTAL: &str = "https://portail.id77.test";
/// Tuesday 12 January 2027, 9:30 to 12:30 in Paris (UTC+1).
const DATE: &str = "mardi 12 janvier 2027 de 9 h 30 à 12 h 30";

fn ts(at: DateTime<Utc>) -> Option<id77_proto::prost_types::Timestamp> {
    Some(time::to_proto(at))
}

fn utc(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 12, h, m, 0).single().expect("a date")
}

fn session(id: Uuid, place: SessionPlace) -> Session {
    Session {
        id: id.to_string(),
        offer_title: "Urbanisme durable".into(),
        provider_name: "CAUE de Seine-et-Marne".into(),
        starts_at: ts(utc(8, 30)),
        ends_at: ts(utc(11, 30)),
        place: Some(place),
        status: SessionStatus::Scheduled.into(),
        capacity: 1,
        ..Default::default()
    }
}

fn online() -> SessionPlace {
    SessionPlace { online: true, online_link: "https://visio.example.fr/urba".into(), ..Default::default() }
}

fn registration(session_id: Uuid, name: &str, email: &str, status: RegistrationStatus, position: u32) -> Registration {
    Registration {
        id: Uuid::now_v7().to_string(),
        session_id: session_id.to_string(),
        member_id: Uuid::now_v7().to_string(),
        member_name: "Commune de Meaux".into(),
        participant: Some(Participant { name: name.into(), function: "Maire adjoint".into(), email: email.into() }),
        status: status.into(),
        waitlist_position: position,
        ..Default::default()
    }
}

fn event<E: IntegrationEvent>(message: &E) -> Event {
    Event {
        subject: E::SUBJECT.to_owned(),
        message_id: Uuid::now_v7().to_string(),
        event_type: <E as prost::Name>::full_name(),
        payload: prost::bytes::Bytes::from(message.encode_to_vec()),
        headers: async_nats::HeaderMap::new(),
        delivered: 1,
    }
}

struct Service {
    url: String,
    js: jetstream::Context,
    ns: Namespace,
    sink: SmtpSink,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    published: usize,
}

impl Service {
    async fn start() -> Self {
        let url = testing::fresh_database_url("sessionmails");
        let prefix = testing::fresh_prefix();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let sink = SmtpSink::start().await.expect("smtp sink");
        let platform = testing::platform_config("requests", &url, &prefix, addr);
        let mail = MailConfig { smtp_url: Some(sink.url()), portal_url: PORTAL.to_owned(), ..MailConfig::queue_only() };
        let shutdown = CancellationToken::new();
        let config = id77_requests::Config { platform, mail };
        let task = tokio::spawn(id77_requests::run(config, listener, shutdown.clone()));
        let (_, js) = nats::connect(&testing::nats_url(), "requests-session-mails-test").await.expect("nats");
        let ns = Namespace::new(prefix);
        nats::ensure_stream(&js, &ns, streams::CATALOGUE).await.expect("stream");
        Self { url, js, ns, sink, shutdown, task, published: 0 }
    }

    /// Publishes `message` twice, with two message ids: the second is a new delivery of the same fact.
    async fn publish_twice<E: IntegrationEvent>(&mut self, message: &E) {
        for _ in 0..2 {
            let msg =
                PublishMessage::build().payload(message.encode_to_vec().into()).message_id(Uuid::now_v7().to_string());
            self.js.send_publish(self.ns.subject(E::SUBJECT), msg).await.expect("publish").await.expect("ack");
            self.published += 1;
        }
    }

    /// Waits until the two consumers applied every message published.
    async fn caught_up(&self, pool: &PgPool) {
        for _ in 0..400 {
            let applied: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM inbox WHERE consumer IN ('requests-sessions', 'requests-registrations')",
            )
            .fetch_one(pool)
            .await
            .unwrap_or_default();
            if applied >= self.published as i64 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the consumers never applied the {} messages", self.published);
    }

    async fn stop(self, pool: PgPool) {
        pool.close().await;
        self.shutdown.cancel();
        let _ = self.task.await;
        testing::drop_database(&self.url).await;
        testing::delete_streams(&self.js, &self.ns).await;
    }
}

async fn migrated_pool(url: &str) -> PgPool {
    for _ in 0..400 {
        if let Ok(p) = PgPool::connect(url).await
            && sqlx::query("SELECT 1 FROM training_session LIMIT 1").execute(&p).await.is_ok()
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} never came up migrated");
}

/// The queued mails as (kind, email, subject, body), in a stable order.
async fn queued(pool: &PgPool) -> Vec<(String, String, String, String)> {
    sqlx::query_as("SELECT kind, email, subject, body FROM mail_outbox ORDER BY kind, email")
        .fetch_all(pool)
        .await
        .expect("mail_outbox")
}

#[tokio::test]
async fn each_participant_gets_one_french_mail_per_fact_however_often_it_comes() {
    let mut s = Service::start().await;
    let pool = migrated_pool(&s.url).await;
    let id = Uuid::now_v7();
    s.publish_twice(&SessionScheduled { session: Some(session(id, online())), occurred_at: ts(utc(6, 0)) }).await;
    // Registration events carry their session, as the catalogue publishes them.
    let mut camille = registration(id, "Camille Martin", "camille@meaux.fr", RegistrationStatus::Confirmed, 0);
    camille.session = Some(session(id, online()));
    let mut dominique = registration(id, "Dominique Petit", "dominique@meaux.fr", RegistrationStatus::Waitlisted, 1);
    dominique.session = Some(session(id, online()));
    s.publish_twice(&RegistrationConfirmed { registration: Some(camille.clone()), occurred_at: ts(utc(6, 1)) }).await;
    s.publish_twice(&RegistrationWaitlisted { registration: Some(dominique.clone()), occurred_at: ts(utc(6, 2)) })
        .await;
    let cancelled = RegistrationCancelled {
        registration: Some(camille.clone()),
        reason: "Empêchement".into(),
        occurred_at: ts(utc(6, 3)),
    };
    s.publish_twice(&cancelled).await;
    let mut promoted = dominique.clone();
    promoted.status = RegistrationStatus::Confirmed.into();
    promoted.waitlist_position = 0;
    s.publish_twice(&RegistrationPromoted { registration: Some(promoted.clone()), occurred_at: ts(utc(6, 4)) }).await;
    // The registrations are told before the session's end (the two durables are not ordered with each other).
    s.caught_up(&pool).await;
    // The reminder names the confirmed only; a waitlisted one slipped in is not reminded.
    let late = registration(id, "Sacha Leroy", "sacha@meaux.fr", RegistrationStatus::Waitlisted, 1);
    let reminder = SessionReminderDue {
        session: Some(session(id, online())),
        registrations: vec![promoted.clone(), late.clone()],
        occurred_at: ts(utc(6, 5)),
    };
    s.publish_twice(&reminder).await;
    let mut gone = session(id, online());
    gone.status = SessionStatus::Cancelled.into();
    let session_cancelled = SessionCancelled {
        session: Some(gone),
        reason: "Intervenant indisponible".into(),
        registrations: vec![promoted, late],
        occurred_at: ts(utc(6, 6)),
    };
    s.publish_twice(&session_cancelled).await;
    s.caught_up(&pool).await;

    let mails = queued(&pool).await;
    let keys: Vec<(&str, &str)> = mails.iter().map(|(k, e, _, _)| (k.as_str(), e.as_str())).collect();
    assert_eq!(
        keys,
        [
            ("session_cancelled", "dominique@meaux.fr"),
            ("session_cancelled", "sacha@meaux.fr"),
            ("session_registration_cancelled", "camille@meaux.fr"),
            ("session_registration_confirmed", "camille@meaux.fr"),
            ("session_registration_promoted", "dominique@meaux.fr"),
            ("session_registration_waitlisted", "dominique@meaux.fr"),
            ("session_reminder", "dominique@meaux.fr"),
        ],
        "one mail per participant and fact"
    );
    let subject_of = |kind: &str, email: &str| {
        let (_, _, subject, body) = mails.iter().find(|(k, e, _, _)| k == kind && e == email).expect("queued");
        assert!(body.contains(&format!("Date : {DATE}\n")), "{body}");
        subject.clone()
    };
    let day = "« Urbanisme durable » le mardi 12 janvier 2027";
    assert_eq!(
        subject_of("session_registration_confirmed", "camille@meaux.fr"),
        format!("[ID 77] Inscription confirmée : {day}")
    );
    assert_eq!(
        subject_of("session_registration_waitlisted", "dominique@meaux.fr"),
        format!("[ID 77] Liste d'attente : {day}")
    );
    assert_eq!(
        subject_of("session_registration_promoted", "dominique@meaux.fr"),
        format!("[ID 77] Une place s'est libérée : {day}")
    );
    assert_eq!(
        subject_of("session_registration_cancelled", "camille@meaux.fr"),
        format!("[ID 77] Inscription annulée : {day}")
    );
    assert_eq!(subject_of("session_reminder", "dominique@meaux.fr"), format!("[ID 77] Rappel : {day}"));
    assert_eq!(subject_of("session_cancelled", "sacha@meaux.fr"), format!("[ID 77] Session annulée : {day}"));

    // Sent over SMTP: the link for a seat, none on the waiting list, « Mes inscriptions » at the end.
    let limit = Duration::from_secs(20);
    let promotion = s.sink.wait_for("dominique@meaux.fr", "Une place s'est libérée", 1, limit).await;
    let body = promotion[0].body();
    assert!(body.contains("Lieu : en ligne, https://visio.example.fr/urba"), "{body}");
    assert!(body.contains(&format!("Mes inscriptions : {PORTAL}/inscriptions")), "{body}");
    assert!(!body.contains("Voir la demande"), "{body}");
    let waiting = s.sink.wait_for("dominique@meaux.fr", "Liste d'attente", 1, limit).await;
    let body = waiting[0].body();
    assert!(body.contains("en 1re position sur la liste d'attente") && !body.contains("visio"), "{body}");
    let cancelled = s.sink.wait_for("sacha@meaux.fr", "Session annulée", 1, limit).await;
    assert!(cancelled[0].body().contains("Motif : Intervenant indisponible"), "{}", cancelled[0].body());
    s.sink.wait_for("camille@meaux.fr", "Inscription", 2, limit).await;
    assert_eq!(s.sink.mails_to("camille@meaux.fr").len(), 2, "confirmed, then cancelled: nothing twice");
    assert_eq!(s.sink.mails_to("sacha@meaux.fr").len(), 1, "a waitlisted participant is not reminded");
    s.stop(pool).await;
}

#[tokio::test]
async fn the_handlers_wait_for_an_unknown_session_and_refuse_what_can_never_be_mailed() {
    let url = testing::fresh_database_url("sessionmails");
    let pool = id77_platform::db::connect(&url, &id77_requests::MIGRATOR, 2).await.expect("migrated database");
    let mut conn = pool.acquire().await.expect("connection");
    let id = Uuid::now_v7();
    let in_person = SessionPlace {
        commune_name: "Melun".into(),
        address: "Hôtel du Département, 12 rue des Saints-Pères".into(),
        ..Default::default()
    };

    // A registration of a session requests has not heard of, without the session: retried later.
    let mut first = registration(id, "Camille Martin", "Camille@Meaux.fr", RegistrationStatus::Confirmed, 0);
    let confirmed = RegistrationConfirmed { registration: Some(first.clone()), occurred_at: ts(utc(6, 0)) };
    let outcome = RegistrationEvents.handle(&mut conn, &event(&confirmed)).await;
    assert!(matches!(outcome, Err(HandleError::Retry(_))), "{outcome:?}");
    assert!(queued(&pool).await.is_empty());

    // The same registration carrying its session: mailed once, whatever the delivery.
    first.session = Some(session(id, in_person.clone()));
    let confirmed = RegistrationConfirmed { registration: Some(first.clone()), occurred_at: ts(utc(6, 0)) };
    let delivery = event(&confirmed);
    for e in [&delivery, &delivery, &event(&confirmed)] {
        RegistrationEvents.handle(&mut conn, e).await.expect("mailed");
    }
    let mails = queued(&pool).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let body = &mails[0].3;
    assert!(body.contains("Lieu : Hôtel du Département, 12 rue des Saints-Pères, Melun\n"), "{body}");

    // A participant who also has an account (any case of the address) finds it among their notifications.
    let user = Uuid::now_v7();
    let account = Recipient {
        user_id: user,
        email: "dominique@meaux.fr".into(),
        display_name: "Dominique Petit".into(),
        role: "member_user".into(),
        member_id: Some(Uuid::now_v7()),
        provider_code: None,
        active: true,
        version: 1,
    };
    upsert_recipient(&mut conn, &account).await.expect("account");
    SessionEvents
        .handle(
            &mut conn,
            &event(&SessionScheduled { session: Some(session(id, in_person.clone())), occurred_at: ts(utc(5, 0)) }),
        )
        .await
        .expect("session kept");
    let second = registration(id, "Dominique Petit", "Dominique@meaux.fr", RegistrationStatus::Waitlisted, 2);
    let waitlisted = RegistrationWaitlisted { registration: Some(second), occurred_at: ts(utc(6, 1)) };
    RegistrationEvents.handle(&mut conn, &event(&waitlisted)).await.expect("mailed");
    let owner: Option<Uuid> = sqlx::query_scalar("SELECT recipient_user_id FROM mail_outbox WHERE kind = $1")
        .bind("session_registration_waitlisted")
        .fetch_one(&pool)
        .await
        .expect("queued");
    assert_eq!(owner, Some(user));
    let (subject, body): (String, String) =
        sqlx::query_as("SELECT subject, body FROM mail_outbox WHERE kind = 'session_registration_waitlisted'")
            .fetch_one(&pool)
            .await
            .expect("queued");
    assert!(subject.starts_with("[ID 77] Liste d'attente : "), "{subject}");
    assert!(body.contains("en 2e position") && body.contains(DATE), "{body}");

    // A participant without a valid address: nothing to send, nothing to retry.
    let nowhere = registration(id, "Sans adresse", "pas une adresse", RegistrationStatus::Confirmed, 0);
    let confirmed = RegistrationConfirmed { registration: Some(nowhere), occurred_at: ts(utc(6, 2)) };
    RegistrationEvents.handle(&mut conn, &event(&confirmed)).await.expect("skipped");
    assert_eq!(queued(&pool).await.len(), 2);

    // Once the session is cancelled, a late promotion says nothing more: the cancellation told everyone.
    let mut gone = session(id, in_person);
    gone.status = SessionStatus::Cancelled.into();
    let cancelled = SessionCancelled { session: Some(gone), occurred_at: ts(utc(7, 0)), ..Default::default() };
    SessionEvents.handle(&mut conn, &event(&cancelled)).await.expect("session kept");
    let mut late = registration(id, "Dominique Petit", "dominique@meaux.fr", RegistrationStatus::Confirmed, 0);
    late.session = Some(session(id, online()));
    let promoted = RegistrationPromoted { registration: Some(late), occurred_at: ts(utc(6, 30)) };
    RegistrationEvents.handle(&mut conn, &event(&promoted)).await.expect("nothing to tell");
    assert_eq!(queued(&pool).await.len(), 2);

    // What can never apply is rejected (dead-lettered), never a panic.
    let broken =
        SessionScheduled { session: Some(Session { id: "x".into(), ..Default::default() }), occurred_at: None };
    assert!(matches!(SessionEvents.handle(&mut conn, &event(&broken)).await, Err(HandleError::Reject(_))));
    let timeless = SessionScheduled {
        session: Some(Session { id: Uuid::now_v7().to_string(), ..Default::default() }),
        occurred_at: None,
    };
    assert!(matches!(SessionEvents.handle(&mut conn, &event(&timeless)).await, Err(HandleError::Reject(_))));
    let empty = RegistrationPromoted { registration: None, occurred_at: None };
    assert!(matches!(RegistrationEvents.handle(&mut conn, &event(&empty)).await, Err(HandleError::Reject(_))));
    drop(conn);
    pool.close().await;
    testing::drop_database(&url).await;
}
