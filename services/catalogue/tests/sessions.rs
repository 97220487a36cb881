//! Training sessions against the local PostgreSQL and NATS, through the gRPC API of a catalogue started
//! in-process: 50 concurrent registrations for 10 seats (exactly 10 confirmed, the rest waitlisted in arrival
//! order, promotion on cancellation), quotas, deadlines, duplicates, who sees and cancels what, the online link,
//! the reminder timer, attendance, documents, calendar feeds and statistics.

mod common;

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use id77_catalogue::Config;
use id77_platform::ServiceError;
use id77_platform::auth::Role;
use id77_platform::testing::TestKeys;
use id77_platform::{streams, time};
use id77_proto::catalogue::v1 as pb;
use id77_proto::catalogue::v1::session_service_client::SessionServiceClient;
use id77_proto::membership::v1 as membership;
use prost::Message;
use tonic::transport::Channel;
use uuid::Uuid;

/// The catalogue under test (its session timer fast), a pool on its database, and the helpers its tests share.
struct Env {
    running: common::Running,
    pool: sqlx::PgPool,
}

impl std::ops::Deref for Env {
    type Target = common::Running;
    fn deref(&self) -> &common::Running {
        &self.running
    }
}

impl Env {
    async fn start(label: &str) -> anyhow::Result<Self> {
        Self::start_with(label, false).await
    }

    async fn start_with(label: &str, demo_sessions: bool) -> anyhow::Result<Self> {
        let running = common::Running::start(label, 10, |config| Config {
            session_timer: Duration::from_millis(100),
            demo_sessions,
            ..config
        })
        .await?;
        let pool = sqlx::PgPool::connect(&running.database_url).await?;
        Ok(Self { running, pool })
    }

    fn client(&self) -> SessionServiceClient<Channel> {
        SessionServiceClient::new(self.channel.clone())
    }

    fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    async fn stop(self) {
        self.pool.close().await;
        self.running.stop().await;
    }

    /// Publishes an event of another service on its (prefixed) stream.
    async fn publish<M: Message + prost::Name>(&self, stream: streams::StreamDef, subject: &str, id: &str, event: &M) {
        common::publish(&self.js, &self.ns, stream, subject, id, event).await;
    }

    /// The payloads published on `subject` so far, in order.
    async fn events<M: Message + Default>(&self, subject: &str) -> anyhow::Result<Vec<M>> {
        common::events(&self.js, &self.ns, subject).await
    }

    async fn wait_events<M: Message + Default>(
        &self,
        subject: &str,
        found: impl Fn(&[M]) -> bool,
    ) -> anyhow::Result<Vec<M>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let events = self.events::<M>(subject).await.unwrap_or_default();
            if found(&events) {
                return Ok(events);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{} events on {subject}, not the ones awaited", events.len());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn member(&self, member: Uuid) -> String {
        self.keys.token(Role::MemberUser, Some(member), None)
    }
}

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", TestKeys::bearer(token));
    request
}

/// The code and reason of a refusal.
fn refusal<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> (tonic::Code, String) {
    match r {
        Ok(ok) => panic!("expected a refusal, got {ok:?}"),
        Err(status) => (status.code(), ServiceError::from_status(&status).reason.into_owned()),
    }
}

fn in_days(days: i64, hours: i64) -> Option<id77_proto::prost_types::Timestamp> {
    Some(time::to_proto(time::now() + chrono::Duration::days(days) + chrono::Duration::hours(hours)))
}

fn in_person(offer: &str, capacity: u32, quota: u32) -> pb::ScheduleSessionRequest {
    pb::ScheduleSessionRequest {
        offer_id: offer.into(),
        starts_at: in_days(10, 0),
        ends_at: in_days(10, 3),
        place: Some(pb::SessionPlace {
            online: false,
            commune_insee: "77288".into(),
            commune_name: "Melun".into(),
            address: "Hôtel du Département, 12 rue des Saints-Pères".into(),
            online_link: String::new(),
        }),
        capacity,
        member_quota: quota,
        details: "Programme de la journée".into(),
        ..Default::default()
    }
}

fn participant(name: &str) -> pb::Participant {
    pb::Participant { name: name.into(), function: "conseiller municipal".into(), email: format!("{name}@mairie.fr") }
}

fn register(session: &str, names: &[&str]) -> pb::RegisterRequest {
    pb::RegisterRequest {
        session_id: session.into(),
        participants: names.iter().map(|n| participant(n)).collect(),
        member_id: String::new(),
    }
}

const CONFIRMED: i32 = pb::RegistrationStatus::Confirmed as i32;
const WAITLISTED: i32 = pb::RegistrationStatus::Waitlisted as i32;

#[tokio::test]
async fn fifty_concurrent_registrations_fill_ten_seats_and_promote_in_arrival_order() -> anyhow::Result<()> {
    let env = Env::start("catalogue-sessions-seats").await?;
    let result = seats_scenario(&env).await;
    env.stop().await;
    result
}

async fn seats_scenario(env: &Env) -> anyhow::Result<()> {
    let mut client = env.client();
    let agent = env.keys.token(Role::ProviderAgent, None, Some("caue77"));
    let coordinator = env.keys.token(Role::Coordinator, None, None);
    let session = client.schedule_session(with_token(in_person("formation-plu", 10, 0), &agent)).await?.into_inner();
    ensure!(session.capacity == 10 && session.seats_left == 10 && session.offer_code == "formation-plu");

    // 50 members register one participant each, all at once.
    let members: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
    let mut tasks = Vec::new();
    for (i, member) in members.iter().enumerate() {
        let mut client = client.clone();
        let token = env.member(*member);
        let request = register(&session.id, &[&format!("participant{i}")]);
        tasks.push(tokio::spawn(async move { client.register(with_token(request, &token)).await }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await?.context("register")?.into_inner().registrations);
    }
    let statuses: Vec<i32> = answers.iter().flatten().map(|r| r.status).collect();
    ensure!(statuses.iter().filter(|s| **s == CONFIRMED).count() == 10, "confirmed: {statuses:?}");
    ensure!(statuses.iter().filter(|s| **s == WAITLISTED).count() == 40, "waitlisted: {statuses:?}");

    // The provider's view: arrival order, 10 confirmed first, then the waiting list 1..40.
    let all = client
        .list_registrations(with_token(
            pb::ListRegistrationsRequest { session_id: session.id.clone(), page_size: 100, ..Default::default() },
            &agent,
        ))
        .await?
        .into_inner()
        .registrations;
    ensure!(all.len() == 50);
    ensure!(all[..10].iter().all(|r| r.status == CONFIRMED), "the first ten arrivals are confirmed");
    let positions: Vec<u32> = all[10..].iter().map(|r| r.waitlist_position).collect();
    ensure!(positions == (1..=40).collect::<Vec<u32>>(), "waiting list order: {positions:?}");
    let s = client.get_session(pb::GetSessionRequest { id: session.id.clone() }).await?.into_inner();
    ensure!((s.confirmed, s.waitlisted, s.seats_left) == (10, 40, 0), "{s:?}");

    // The database itself never confirms an eleventh: the deferred backstop refuses it at commit.
    let mut tx = env.pool().begin().await?;
    sqlx::query("UPDATE registration SET status = 'confirmed' WHERE id = $1")
        .bind(Uuid::parse_str(&all[10].id)?)
        .execute(&mut *tx)
        .await?;
    let commit = tx.commit().await;
    ensure!(
        matches!(&commit, Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("P7709")),
        "backstop: {commit:?}"
    );

    // Another member neither sees nor cancels this registration.
    let first = &all[0];
    let owner = Uuid::parse_str(&first.member_id)?;
    let stranger = env.member(Uuid::now_v7());
    let cancel = |id: &str| pb::CancelRegistrationRequest { id: id.into(), reason: "empêchement".into() };
    ensure!(
        refusal(client.cancel_registration(with_token(cancel(&first.id), &stranger)).await).0 == tonic::Code::NotFound
    );
    let seen = client
        .list_registrations(with_token(
            pb::ListRegistrationsRequest { session_id: session.id.clone(), ..Default::default() },
            &stranger,
        ))
        .await?
        .into_inner();
    ensure!(seen.registrations.is_empty(), "a member sees only its own registrations");
    let own = client
        .list_registrations(with_token(pb::ListRegistrationsRequest::default(), &env.member(owner)))
        .await?
        .into_inner();
    ensure!(own.registrations.len() == 1 && own.registrations[0].session.is_some(), "« Mes inscriptions »");

    // Another provider's agent cannot manage the session.
    let other_agent = env.keys.token(Role::ProviderAgent, None, Some("dir-eau"));
    let foreign = pb::CancelSessionRequest { id: session.id.clone(), reason: String::new() };
    ensure!(refusal(client.cancel_session(with_token(foreign, &other_agent)).await).0 == tonic::Code::NotFound);
    let foreign = in_person("formation-plu", 5, 0);
    ensure!(refusal(client.schedule_session(with_token(foreign, &other_agent)).await).0 == tonic::Code::NotFound);
    let list = pb::ListRegistrationsRequest { session_id: session.id.clone(), ..Default::default() };
    ensure!(refusal(client.list_registrations(with_token(list, &other_agent)).await).0 == tonic::Code::NotFound);

    // The owner cancels its confirmed seat: the first on the waiting list is promoted, and told.
    let cancelled = client.cancel_registration(with_token(cancel(&first.id), &env.member(owner))).await?.into_inner();
    ensure!(cancelled.status == pb::RegistrationStatus::Cancelled as i32);
    let promoted_id = all[10].id.clone();
    let promoted: Vec<pb::RegistrationPromoted> =
        env.wait_events("id77.catalogue.registration.promoted", |e: &[pb::RegistrationPromoted]| !e.is_empty()).await?;
    ensure!(promoted.len() == 1);
    let p = promoted[0].registration.as_ref().context("registration")?;
    ensure!(p.id == promoted_id && p.status == CONFIRMED && p.session.is_some(), "{p:?}");
    let s = client.get_session(pb::GetSessionRequest { id: session.id.clone() }).await?.into_inner();
    ensure!((s.confirmed, s.waitlisted) == (10, 39), "{s:?}");
    let again = client
        .list_registrations(with_token(
            pb::ListRegistrationsRequest {
                session_id: session.id.clone(),
                statuses: vec![WAITLISTED],
                page_size: 5,
                ..Default::default()
            },
            &coordinator,
        ))
        .await?
        .into_inner();
    ensure!(again.registrations.iter().map(|r| r.waitlist_position).collect::<Vec<_>>() == [1, 2, 3, 4, 5]);
    ensure!(again.registrations[0].id == all[11].id && !again.next_page_token.is_empty());
    let confirmed: Vec<pb::RegistrationConfirmed> = env
        .wait_events("id77.catalogue.registration.confirmed", |e: &[pb::RegistrationConfirmed]| e.len() >= 10)
        .await?;
    let waitlisted: Vec<pb::RegistrationWaitlisted> = env
        .wait_events("id77.catalogue.registration.waitlisted", |e: &[pb::RegistrationWaitlisted]| e.len() >= 40)
        .await?;
    ensure!(confirmed.len() == 10 && waitlisted.len() == 40);
    Ok(())
}

#[tokio::test]
async fn quotas_deadlines_duplicates_and_the_online_link() -> anyhow::Result<()> {
    let env = Env::start("catalogue-sessions-rules").await?;
    let result = rules_scenario(&env).await;
    env.stop().await;
    result
}

async fn rules_scenario(env: &Env) -> anyhow::Result<()> {
    let mut client = env.client();
    let agent = env.keys.token(Role::ProviderAgent, None, Some("caue77"));
    let session = client.schedule_session(with_token(in_person("formation-plu", 5, 2), &agent)).await?.into_inner();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());

    // Quota: two per member, the third refused, nothing of a refused call kept.
    let two = client.register(with_token(register(&session.id, &["anne", "paul"]), &env.member(a))).await?;
    ensure!(two.into_inner().registrations.len() == 2);
    let third = client.register(with_token(register(&session.id, &["zoe"]), &env.member(a))).await;
    ensure!(refusal(third) == (tonic::Code::FailedPrecondition, "QUOTA_REACHED".to_owned()));
    let over = client.register(with_token(register(&session.id, &["jean", "lea", "marc"]), &env.member(b))).await;
    ensure!(refusal(over).1 == "QUOTA_REACHED");
    // The same e-mail twice for a member: ALREADY_EXISTS.
    client.register(with_token(register(&session.id, &["jean"]), &env.member(b))).await?;
    let dup = client.register(with_token(register(&session.id, &["jean"]), &env.member(b))).await;
    ensure!(refusal(dup) == (tonic::Code::AlreadyExists, "ALREADY_REGISTERED".to_owned()));
    // A member that is no longer active (the read model says so) registers nobody.
    let suspended = Uuid::now_v7();
    sqlx::query("INSERT INTO member (member_id, kind, status, occurred_at) VALUES ($1, 'commune', 'suspended', now())")
        .bind(suspended)
        .execute(env.pool())
        .await?;
    let refused = client.register(with_token(register(&session.id, &["ines"]), &env.member(suspended))).await;
    ensure!(refusal(refused) == (tonic::Code::FailedPrecondition, "MEMBER_NOT_ACTIVE".to_owned()));
    // A member's user cannot register for another member.
    let mut for_other = register(&session.id, &["lucie"]);
    for_other.member_id = a.to_string();
    ensure!(refusal(client.register(with_token(for_other, &env.member(b))).await).0 == tonic::Code::NotFound);
    // Bad participants are field errors.
    let bad = pb::RegisterRequest {
        session_id: session.id.clone(),
        participants: vec![pb::Participant { name: String::new(), function: String::new(), email: "x".into() }],
        member_id: String::new(),
    };
    ensure!(refusal(client.register(with_token(bad, &env.member(b))).await).0 == tonic::Code::InvalidArgument);

    // The quota holds under concurrency too: six calls at once from one member, exactly two pass.
    let racing = client.schedule_session(with_token(in_person("formation-plu", 10, 2), &agent)).await?.into_inner();
    let c = Uuid::now_v7();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (mut client, token) = (client.clone(), env.member(c));
        let request = register(&racing.id, &[&format!("agent{i}")]);
        tasks.push(tokio::spawn(async move { client.register(with_token(request, &token)).await }));
    }
    let mut passed = 0;
    for task in tasks {
        match task.await? {
            Ok(_) => passed += 1,
            Err(s) => ensure!(ServiceError::from_status(&s).reason == "QUOTA_REACHED", "{s:?}"),
        }
    }
    ensure!(passed == 2, "{passed} registrations passed a quota of 2");

    // Past the deadline, registration is closed (by the database).
    sqlx::query("UPDATE session SET registration_deadline = now() - interval '1 minute' WHERE id = $1")
        .bind(Uuid::parse_str(&session.id)?)
        .execute(env.pool())
        .await?;
    let late = client.register(with_token(register(&session.id, &["tardif"]), &env.member(Uuid::now_v7()))).await;
    ensure!(refusal(late) == (tonic::Code::FailedPrecondition, "REGISTRATION_CLOSED".to_owned()));

    // Only training offers have sessions; places are in Seine-et-Marne.
    let expo = in_person("expo-grande-guerre-77", 5, 0);
    let refused = client.schedule_session(with_token(expo, &env.keys.token(Role::Coordinator, None, None))).await;
    ensure!(refusal(refused) == (tonic::Code::FailedPrecondition, "NOT_A_TRAINING_OFFER".to_owned()));
    let mut paris = in_person("formation-plu", 5, 0);
    paris.place.as_mut().context("place")?.commune_insee = "75056".into();
    ensure!(refusal(client.schedule_session(with_token(paris, &agent)).await).0 == tonic::Code::InvalidArgument);
    let member_schedules = client.schedule_session(with_token(in_person("formation-plu", 5, 0), &env.member(a))).await;
    ensure!(refusal(member_schedules).0 == tonic::Code::PermissionDenied);

    // The online link: the provider and registered members see it, nobody else.
    let mut online = in_person("formation-plu", 5, 0);
    online.place = Some(pb::SessionPlace {
        online: true,
        online_link: "https://visio.seine-et-marne.fr/id77/plu".into(),
        ..Default::default()
    });
    let online = client.schedule_session(with_token(online, &agent)).await?.into_inner();
    let link = |s: pb::Session| s.place.map(|p| p.online_link).unwrap_or_default();
    let get = |id: &str| pb::GetSessionRequest { id: id.into() };
    ensure!(link(client.get_session(get(&online.id)).await?.into_inner()).is_empty());
    ensure!(link(client.get_session(with_token(get(&online.id), &env.member(a))).await?.into_inner()).is_empty());
    client.register(with_token(register(&online.id, &["anne"]), &env.member(a))).await?;
    let shown = link(client.get_session(with_token(get(&online.id), &env.member(a))).await?.into_inner());
    ensure!(shown == "https://visio.seine-et-marne.fr/id77/plu", "{shown:?}");
    ensure!(!link(client.get_session(with_token(get(&online.id), &agent)).await?.into_inner()).is_empty());
    let public = client.list_sessions(pb::ListSessionsRequest::default()).await?.into_inner();
    ensure!(
        public.sessions.iter().any(|s| s.id == online.id) && public.sessions.iter().all(|s| link(s.clone()).is_empty())
    );

    // Cancelling the session cancels every registration, carried by the event.
    let cancelled = client
        .cancel_session(with_token(
            pb::CancelSessionRequest { id: session.id.clone(), reason: "formateur absent".into() },
            &agent,
        ))
        .await?
        .into_inner();
    ensure!(cancelled.status == pb::SessionStatus::Cancelled as i32 && cancelled.confirmed == 0);
    let events: Vec<pb::SessionCancelled> =
        env.wait_events("id77.catalogue.session.cancelled", |e: &[pb::SessionCancelled]| !e.is_empty()).await?;
    ensure!(events[0].registrations.len() == 3 && events[0].reason == "formateur absent", "{:?}", events[0]);
    let after = client.register(with_token(register(&session.id, &["x"]), &env.member(Uuid::now_v7()))).await;
    ensure!(refusal(after).1 == "SESSION_NOT_SCHEDULED");
    let public = client.list_sessions(pb::ListSessionsRequest::default()).await?.into_inner();
    ensure!(public.sessions.iter().all(|s| s.id != session.id), "cancelled sessions are not listed publicly");
    Ok(())
}

#[tokio::test]
async fn reminders_attendance_ratings_calendars_and_statistics() -> anyhow::Result<()> {
    let env = Env::start("catalogue-sessions-held").await?;
    let result = held_scenario(&env).await;
    env.stop().await;
    result
}

async fn held_scenario(env: &Env) -> anyhow::Result<()> {
    let mut client = env.client();
    let agent = env.keys.token(Role::ProviderAgent, None, Some("caue77"));
    let coordinator = env.keys.token(Role::Coordinator, None, None);
    let session = client.schedule_session(with_token(in_person("formation-plu", 2, 0), &agent)).await?.into_inner();
    let dropped = client.schedule_session(with_token(in_person("formation-plu", 2, 0), &agent)).await?.into_inner();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    // Membership names the member: registrations show its name (and its EPCI counts in the statistics).
    let approved = membership::MemberApproved {
        member_id: a.to_string(),
        siren: "217701804".into(),
        name: "Bois-le-Roi".into(),
        kind: membership::CollectivityKind::Commune.into(),
        population: 6000,
        occurred_at: Some(time::to_proto(time::now())),
        epci_siren: "200072346".into(),
        arrondissement: "772".into(),
        ..Default::default()
    };
    env.publish(streams::MEMBERSHIP, "id77.membership.member.approved", &format!("approved-{a}"), &approved).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while sqlx::query_as::<_, (String,)>("SELECT name FROM member WHERE member_id = $1")
        .bind(a)
        .fetch_optional(env.pool())
        .await?
        .is_none_or(|n| n.0 != "Bois-le-Roi")
    {
        ensure!(tokio::time::Instant::now() < deadline, "the member's name never reached the read model");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ra = client.register(with_token(register(&session.id, &["anne", "paul"]), &env.member(a))).await?.into_inner();
    let rb = client.register(with_token(register(&session.id, &["jean"]), &env.member(b))).await?.into_inner();
    ensure!(rb.registrations[0].status == WAITLISTED);
    ensure!(ra.registrations[0].member_name == "Bois-le-Roi", "{:?}", ra.registrations[0]);
    let early = pb::RecordAttendanceRequest { session_id: session.id.clone(), attended_registration_ids: vec![] };
    ensure!(refusal(client.record_attendance(with_token(early, &agent)).await).1 == "SESSION_NOT_STARTED");

    // The reminder timer fires once for the scheduled session, never for a cancelled one.
    client
        .cancel_session(with_token(pb::CancelSessionRequest { id: dropped.id.clone(), reason: String::new() }, &agent))
        .await?;
    sqlx::query("UPDATE session SET remind_at = now() - interval '1 minute' WHERE id = ANY($1)")
        .bind(vec![Uuid::parse_str(&session.id)?, Uuid::parse_str(&dropped.id)?])
        .execute(env.pool())
        .await?;
    let due: Vec<pb::SessionReminderDue> =
        env.wait_events("id77.catalogue.session.reminder_due", |e: &[pb::SessionReminderDue]| !e.is_empty()).await?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let due_later: Vec<pb::SessionReminderDue> = env.events("id77.catalogue.session.reminder_due").await?;
    ensure!(due.len() == 1 && due_later.len() == 1, "fired {} then {} times", due.len(), due_later.len());
    ensure!(due[0].session.as_ref().is_some_and(|s| s.id == session.id) && due[0].registrations.len() == 2);

    // The session starts; the provider records who came: held, with each member's attendance.
    sqlx::query(
        "UPDATE session SET registration_deadline = now() - interval '2 hours', starts_at = now() - interval '1 hour',
           ends_at = now() + interval '2 hours' WHERE id = $1",
    )
    .bind(Uuid::parse_str(&session.id)?)
    .execute(env.pool())
    .await?;
    let anne = ra.registrations[0].id.clone();
    let wrong = pb::RecordAttendanceRequest {
        session_id: session.id.clone(),
        attended_registration_ids: vec![rb.registrations[0].id.clone()],
    };
    ensure!(refusal(client.record_attendance(with_token(wrong, &agent)).await).0 == tonic::Code::InvalidArgument);
    let attendance =
        pb::RecordAttendanceRequest { session_id: session.id.clone(), attended_registration_ids: vec![anne.clone()] };
    let held = client.record_attendance(with_token(attendance, &agent)).await?.into_inner();
    ensure!(held.status == pb::SessionStatus::Held as i32 && held.attended == 1, "{held:?}");
    let events: Vec<pb::SessionHeld> =
        env.wait_events("id77.catalogue.session.held", |e: &[pb::SessionHeld]| !e.is_empty()).await?;
    let members = &events[0].members;
    ensure!(members.len() == 1 && members[0].member_id == a.to_string(), "{members:?}");
    ensure!((members[0].registered, members[0].attended) == (2, 1) && members[0].attendees[0].name == "anne");

    // Documents: the attestation of who came (for its member and the provider), the sheet for the provider.
    let attestation = |id: &str| pb::GetAttestationRequest { registration_id: id.into() };
    let pdf = client.get_attestation(with_token(attestation(&anne), &env.member(a))).await?.into_inner();
    ensure!(pdf.content_type == "application/pdf" && pdf.content.starts_with(b"%PDF"), "{}", pdf.filename);
    client.get_attestation(with_token(attestation(&anne), &agent)).await?;
    let stranger = env.member(Uuid::now_v7());
    ensure!(
        refusal(client.get_attestation(with_token(attestation(&anne), &stranger)).await).0 == tonic::Code::NotFound
    );
    let paul = ra.registrations[1].id.clone();
    ensure!(refusal(client.get_attestation(with_token(attestation(&paul), &env.member(a))).await).1 == "NOT_ATTENDED");
    let sheet = pb::GetAttendanceSheetRequest { session_id: session.id.clone() };
    let pdf = client.get_attendance_sheet(with_token(sheet.clone(), &agent)).await?.into_inner();
    ensure!(pdf.content.starts_with(b"%PDF"));
    ensure!(
        refusal(client.get_attendance_sheet(with_token(sheet, &env.member(a))).await).0
            == tonic::Code::PermissionDenied
    );

    // Ratings: the member that attended, once per member (replaced), 1..5.
    let rate = |score| pb::RateSessionRequest { session_id: session.id.clone(), score, comment: "Très utile".into() };
    let rating = client.rate_session(with_token(rate(5), &env.member(a))).await?.into_inner();
    ensure!(rating.score == 5 && rating.member_id == a.to_string());
    ensure!(refusal(client.rate_session(with_token(rate(4), &env.member(b))).await).1 == "NOT_ATTENDED");
    ensure!(refusal(client.rate_session(with_token(rate(6), &env.member(a))).await).0 == tonic::Code::InvalidArgument);

    // Calendars: one session for anyone; a member's feed by its secret token, revocable.
    let ics = client.get_session_calendar(pb::GetSessionRequest { id: session.id.clone() }).await?.into_inner();
    let text = String::from_utf8(ics.content)?;
    ensure!(ics.content_type.starts_with("text/calendar") && text.contains("BEGIN:VEVENT"), "{text}");
    let upcoming = client.schedule_session(with_token(in_person("formation-plu", 3, 0), &agent)).await?.into_inner();
    client.register(with_token(register(&upcoming.id, &["anne"]), &env.member(a))).await?;
    // One user of member a (each minted token is another user).
    let user_a = env.member(a);
    let feed = client.issue_calendar_feed(with_token(pb::IssueCalendarFeedRequest {}, &user_a)).await?.into_inner();
    ensure!(feed.token.len() == 43);
    let read = |token: &str| pb::GetCalendarFeedRequest { token: token.into() };
    let body = String::from_utf8(client.get_calendar_feed(read(&feed.token)).await?.into_inner().content)?;
    ensure!(
        body.contains(&format!("session-{}", upcoming.id)),
        "the member's confirmed session is in its feed: {body}"
    );
    // A cancelled session stays in the feed, marked cancelled, so that subscribed calendars drop it visibly.
    let doomed = client.schedule_session(with_token(in_person("formation-plu", 3, 0), &agent)).await?.into_inner();
    client.register(with_token(register(&doomed.id, &["anne"]), &env.member(a))).await?;
    let cancel = pb::CancelSessionRequest { id: doomed.id.clone(), reason: "salle indisponible".into() };
    client.cancel_session(with_token(cancel, &agent)).await?;
    let body = String::from_utf8(client.get_calendar_feed(read(&feed.token)).await?.into_inner().content)?;
    ensure!(body.contains(&format!("session-{}", doomed.id)) && body.contains("STATUS:CANCELLED"), "{body}");
    let stored: (Vec<u8>,) = sqlx::query_as("SELECT token_hash FROM calendar_feed").fetch_one(env.pool()).await?;
    ensure!(stored.0.len() == 32, "only the hash is kept");
    let renewed = client.issue_calendar_feed(with_token(pb::IssueCalendarFeedRequest {}, &user_a)).await?.into_inner();
    ensure!(
        refusal(client.get_calendar_feed(read(&feed.token)).await).0 == tonic::Code::NotFound,
        "the old token is replaced"
    );
    client.get_calendar_feed(read(&renewed.token)).await?;
    let revoked =
        client.revoke_calendar_feed(with_token(pb::RevokeCalendarFeedRequest {}, &user_a)).await?.into_inner();
    ensure!(revoked.revoked);
    ensure!(refusal(client.get_calendar_feed(read(&renewed.token)).await).0 == tonic::Code::NotFound);
    ensure!(
        refusal(client.issue_calendar_feed(pb::IssueCalendarFeedRequest {}).await).0 == tonic::Code::PermissionDenied
    );

    // Statistics for the coordinator: the held session's fill and attendance.
    let stats = client
        .session_statistics(with_token(pb::SessionStatisticsRequest::default(), &coordinator))
        .await?
        .into_inner();
    let plu = stats.by_offer.iter().find(|f| f.key == "formation-plu").context("by offer")?;
    ensure!(plu.attended == 1 && plu.sessions >= 2, "{plu:?}");
    ensure!(stats.overall.is_some_and(|o| o.confirmed >= 3));
    let epci = stats.by_epci.iter().find(|f| f.key == "200072346").context("by EPCI")?;
    ensure!((epci.confirmed, epci.attended) == (3, 1), "{epci:?}");
    ensure!(
        refusal(client.session_statistics(with_token(pb::SessionStatisticsRequest::default(), &agent)).await).0
            == tonic::Code::PermissionDenied
    );
    Ok(())
}

#[tokio::test]
async fn the_demo_schedules_sessions_once_through_the_flow() -> anyhow::Result<()> {
    let env = Env::start_with("catalogue-sessions-demo", true).await?;
    let result = demo_scenario(&env).await;
    env.stop().await;
    result
}

async fn demo_scenario(env: &Env) -> anyhow::Result<()> {
    let mut client = env.client();
    let request = pb::ListSessionsRequest { page_size: 100, ..Default::default() };
    let sessions = client.list_sessions(request).await?.into_inner().sessions;
    ensure!((20..=30).contains(&sessions.len()), "{} demo sessions", sessions.len());
    let offers: std::collections::HashSet<&str> = sessions.iter().map(|s| s.offer_code.as_str()).collect();
    ensure!(offers.len() == 10, "{offers:?}");
    ensure!(sessions.iter().any(|s| s.place.as_ref().is_some_and(|p| p.online)));
    ensure!(sessions.iter().any(|s| s.place.as_ref().is_some_and(|p| p.commune_name == "Melun")));
    let scheduled: Vec<pb::SessionScheduled> = env
        .wait_events("id77.catalogue.session.scheduled", |e: &[pb::SessionScheduled]| e.len() == sessions.len())
        .await?;
    ensure!(scheduled.len() == sessions.len());
    // A restart (or a second replica) schedules nothing more.
    ensure!(id77_catalogue::demo_sessions::schedule(env.pool(), time::now()).await? == 0);
    Ok(())
}
