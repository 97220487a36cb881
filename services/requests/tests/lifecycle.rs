//! The request lifecycle against the real PostgreSQL and NATS: routing's events (published on the real stream,
//! in and out of order) and users' commands move a request; cancellation and completion go out through the
//! outbox; feedback, dashboards and the coordinator's statistics read what was recorded; idempotent submission
//! holds under concurrent retries.

use std::time::Duration;

use id77_platform::auth::{Claims, Role};
use id77_platform::{ServiceError, time};
use id77_proto::catalogue::v1::OfferCategory;
use id77_proto::membership::v1::MemberUpdated;
use id77_proto::requests::v1::{
    CancelRequestRequest, CloseRequestRequest, GiveFeedbackRequest, ListRequestsRequest, LoanDates, RequestCancelled,
    RequestCompleted, RequestStatisticsRequest, RequestStatus, RequestStatusChanged, Site, SubmitRequestRequest,
};
use id77_proto::routing::v1::{
    ReferralAccepted, ReferralCompleted, ReferralDeclined, ReferralExpired, ReferralProgressed,
};
use prost::Message;
use tonic::Code;
use uuid::Uuid;

mod support;

use support::*;

#[tokio::test]
async fn a_request_goes_from_submission_to_closed_with_feedback_and_statistics() {
    let mut s = start().await;
    let (_, offer, user) = s.member_with_offer("caue77", OfferCategory::IntegratedEngineering).await;
    let request = s.submit(&user, submission(offer, "k-1")).await;
    // The site of a study defaults to the member's own commune; the offer's version and category are kept.
    assert_eq!(request.site.as_ref().map(|s| s.commune_insee.as_str()), Some("77284"));
    assert_eq!(
        (request.offer_version, request.offer_category.as_str(), request.kind.as_str()),
        (3, "integrated_engineering", "offer")
    );
    let id = request.id.clone();

    // Routing: offered to caue77, which declines; re-routed to dir-amenagement (its offer is consumed after the
    // decline here), which accepts, reports progress and completes.
    s.publish("id77.routing.referral.offered", &offered(&id, "caue77", 1)).await;
    s.wait_status(&id, RequestStatus::Referred).await;
    let declined = ReferralDeclined {
        request_id: id.clone(),
        provider_code: "caue77".into(),
        reason: "plan de charge complet".into(),
        rerouted: true,
        next_provider_code: "dir-amenagement".into(),
        occurred_at: at(2),
        ..Default::default()
    };
    s.publish("id77.routing.referral.declined", &declined).await;
    s.publish("id77.routing.referral.offered", &offered(&id, "dir-amenagement", 2)).await;
    let accepted = ReferralAccepted {
        request_id: id.clone(),
        provider_code: "dir-amenagement".into(),
        occurred_at: at(3),
        ..Default::default()
    };
    s.publish("id77.routing.referral.accepted", &accepted).await;
    let progress = ReferralProgressed {
        request_id: id.clone(),
        provider_code: "dir-amenagement".into(),
        sequence: 1,
        note: "visite de site faite".into(),
        occurred_at: at(4),
        ..Default::default()
    };
    s.publish("id77.routing.referral.progressed", &progress).await;
    s.wait_status(&id, RequestStatus::InProgress).await;

    // Feedback before completion is refused; so is closing.
    let early = s
        .client
        .give_feedback(with_token(
            GiveFeedbackRequest { request_id: id.clone(), rating: 5, comment: String::new() },
            &user,
        ))
        .await;
    assert_eq!(early.map_err(|e| reason(&e)).err().as_deref(), Some("FEEDBACK_NOT_OPEN"));
    let coordinator = s.coordinator();
    let close_early = s
        .client
        .close_request(with_token(CloseRequestRequest { id: id.clone(), reason: String::new() }, &coordinator))
        .await;
    assert_eq!(
        close_early.map_err(|e| (e.code(), reason(&e))).err(),
        Some((Code::FailedPrecondition, "INVALID_TRANSITION".into()))
    );

    let completed = ReferralCompleted {
        request_id: id.clone(),
        provider_code: "dir-amenagement".into(),
        occurred_at: at(5),
        ..Default::default()
    };
    s.publish("id77.routing.referral.completed", &completed).await;
    // A late redelivery of the acceptance changes nothing.
    s.publish("id77.routing.referral.accepted", &accepted).await;
    let done = s.wait_status(&id, RequestStatus::Completed).await;
    let path: Vec<(RequestStatus, RequestStatus, &str)> =
        done.history.iter().map(|h| (h.from(), h.status(), h.actor_role.as_str())).collect();
    use RequestStatus::*;
    assert_eq!(
        path,
        vec![
            (Unspecified, Submitted, "member_user"),
            (Submitted, Referred, "system"),
            (Referred, Referred, "system"),
            (Referred, Accepted, "system"),
            (Accepted, InProgress, "system"),
            (InProgress, Completed, "system"),
        ],
        "{:?}",
        done.history
    );
    assert_eq!(done.history[2].reason, "Déclinée par CAUE 77 : plan de charge complet ; réorientée vers le partenaire");
    assert!(
        done.history
            .windows(2)
            .all(|w| w[0].at.as_ref().map(|t| (t.seconds, t.nanos)) <= w[1].at.as_ref().map(|t| (t.seconds, t.nanos)))
    );
    assert!(done.first_answered_at.is_some() && done.completed_at.is_some());
    // request.completed went out through the outbox, once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = s.published("id77.requests.request.completed", 1).await;
    assert_eq!(events.len(), 1);
    let event = RequestCompleted::decode(events[0].as_slice()).expect("decode");
    assert_eq!((event.request_id.as_str(), event.provider_code.as_str()), (id.as_str(), "dir-amenagement"));

    // Completed: no cancellation any more.
    let cancel = s
        .client
        .cancel_request(with_token(CancelRequestRequest { id: id.clone(), reason: String::new() }, &user))
        .await;
    assert_eq!(
        cancel.map_err(|e| (e.code(), reason(&e))).err(),
        Some((Code::FailedPrecondition, "INVALID_TRANSITION".into()))
    );

    // The member rates, then revises; a provider agent or another member may not.
    let rate = |rating, comment: &str| GiveFeedbackRequest { request_id: id.clone(), rating, comment: comment.into() };
    let rated = s.client.give_feedback(with_token(rate(5, "Très utile"), &user)).await.expect("feedback").into_inner();
    assert_eq!(rated.feedback.as_ref().map(|f| f.rating), Some(5));
    let revised =
        s.client.give_feedback(with_token(rate(4, "Utile, un peu long"), &user)).await.expect("revise").into_inner();
    assert_eq!(revised.feedback.as_ref().map(|f| (f.rating, f.comment.as_str())), Some((4, "Utile, un peu long")));
    let agent = s.keys.token(Role::ProviderAgent, None, Some("dir-amenagement"));
    assert_eq!(
        s.client.give_feedback(with_token(rate(1, ""), &agent)).await.map(|_| ()).map_err(|e| e.code()),
        Err(Code::PermissionDenied)
    );
    let stranger = s.user(Uuid::now_v7());
    assert_eq!(
        s.client.give_feedback(with_token(rate(1, ""), &stranger)).await.map(|_| ()).map_err(|e| e.code()),
        Err(Code::NotFound)
    );
    assert_eq!(
        s.client.give_feedback(with_token(rate(6, ""), &user)).await.map(|_| ()).map_err(|e| e.code()),
        Err(Code::InvalidArgument)
    );

    // Only the coordinator closes; closed is final and freezes the feedback.
    let close = |token: &str| with_token(CloseRequestRequest { id: id.clone(), reason: "dossier soldé".into() }, token);
    assert_eq!(
        s.client.close_request(close(&user)).await.map(|_| ()).map_err(|e| e.code()),
        Err(Code::PermissionDenied)
    );
    let closed = s.client.close_request(close(&coordinator)).await.expect("close").into_inner();
    assert_eq!(closed.status(), RequestStatus::Closed);
    let last = closed.history.last().cloned().unwrap_or_default();
    assert_eq!((last.actor_role.as_str(), last.reason.as_str()), ("coordinator", "dossier soldé"));
    assert!(!last.actor_user_id.is_empty());
    let late = s.client.give_feedback(with_token(rate(1, ""), &user)).await;
    assert_eq!(late.map_err(|e| reason(&e)).err().as_deref(), Some("FEEDBACK_NOT_OPEN"));

    // The coordinator's statistics over the period see it all.
    let period = RequestStatisticsRequest { from: at(-3600), to: at(3600) };
    let stats = s.client.get_request_statistics(with_token(period, &coordinator)).await.expect("stats").into_inner();
    let count =
        |rows: &[id77_proto::requests::v1::KeyCount], key: &str| rows.iter().find(|k| k.key == key).map(|k| k.count);
    assert_eq!(stats.total, 1);
    assert_eq!(count(&stats.by_status, "closed"), Some(1));
    assert_eq!(count(&stats.by_status, "submitted"), Some(0), "every status is listed");
    assert_eq!(count(&stats.by_category, "integrated_engineering"), Some(1));
    assert_eq!(count(&stats.by_provider, "dir-amenagement"), Some(1));
    assert_eq!(count(&stats.by_epci, "200072130"), Some(1));
    assert_eq!(count(&stats.by_arrondissement, "771"), Some(1));
    let first = stats.time_to_first_answer.unwrap_or_default();
    let completion = stats.time_to_completion.unwrap_or_default();
    assert_eq!((first.count, completion.count), (1, 1));
    assert!(
        first.median_seconds > 0.0 && completion.median_seconds >= first.median_seconds,
        "{first:?} {completion:?}"
    );
    let satisfaction = stats.satisfaction.unwrap_or_default();
    assert_eq!((satisfaction.count, satisfaction.distribution), (1, vec![0, 0, 0, 1, 0]));
    assert!((satisfaction.mean - 4.0).abs() < 1e-9);
    // A period before it: nothing. Statistics are the coordinator's.
    let before = RequestStatisticsRequest { from: at(-7200), to: at(-3600) };
    assert_eq!(
        s.client.get_request_statistics(with_token(before, &coordinator)).await.expect("stats").into_inner().total,
        0
    );
    assert_eq!(
        s.client.get_request_statistics(with_token(period, &user)).await.map(|_| ()).map_err(|e| e.code()),
        Err(Code::PermissionDenied)
    );
    s.stop().await;
}

#[tokio::test]
async fn a_cancellation_goes_out_through_the_outbox_and_later_events_are_stale() {
    let mut s = start().await;
    let (member, offer, user) = s.member_with_offer("caue77", OfferCategory::AwarenessTraining).await;
    let request = s.submit(&user, submission(offer, "")).await;
    let id = request.id.clone();
    s.publish("id77.routing.referral.offered", &offered(&id, "caue77", 1)).await;
    s.wait_status(&id, RequestStatus::Referred).await;

    let cancel =
        |token: &str| with_token(CancelRequestRequest { id: id.clone(), reason: "projet reporté".into() }, token);
    // The provider's agent and a referent may read it but not cancel it; another member's user does not see it.
    let agent = s.keys.token(Role::ProviderAgent, None, Some("caue77"));
    assert_eq!(
        s.client.cancel_request(cancel(&agent)).await.map(|_| ()).map_err(|e| e.code()),
        Err(Code::PermissionDenied)
    );
    let referent = s.keys.sign(&Claims::new(Uuid::now_v7(), Role::Referent, time::now().timestamp()));
    assert_eq!(
        s.client.cancel_request(cancel(&referent)).await.map(|_| ()).map_err(|e| e.code()),
        Err(Code::PermissionDenied)
    );
    let stranger = s.user(Uuid::now_v7());
    assert_eq!(s.client.cancel_request(cancel(&stranger)).await.map(|_| ()).map_err(|e| e.code()), Err(Code::NotFound));
    let cancelled = s.client.cancel_request(cancel(&user)).await.expect("cancel").into_inner();
    assert_eq!(cancelled.status(), RequestStatus::Cancelled);
    // Twice: a typed error, not a second event.
    let again = s.client.cancel_request(cancel(&user)).await;
    assert_eq!(again.map_err(|e| reason(&e)).err().as_deref(), Some("INVALID_TRANSITION"));

    let events = s.published("id77.requests.request.cancelled", 1).await;
    let event = RequestCancelled::decode(events[0].as_slice()).expect("decode");
    assert_eq!((event.request_id.as_str(), event.member_id.as_str()), (id.as_str(), member.to_string().as_str()));
    assert_eq!(event.reason, "projet reporté");

    // The provider accepted meanwhile: too late, the request stays cancelled.
    let accepted = ReferralAccepted {
        request_id: id.clone(),
        provider_code: "caue77".into(),
        occurred_at: at(2),
        ..Default::default()
    };
    s.publish("id77.routing.referral.accepted", &accepted).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let r = s.get(&id).await;
    assert_eq!(r.status(), RequestStatus::Cancelled);
    assert_eq!(r.history.len(), 3, "{:?}", r.history);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.published("id77.requests.request.cancelled", 1).await.len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn an_open_request_waits_in_triage_then_takes_the_offer_routing_attached() {
    let mut s = start().await;
    let (_, offer, user) = s.member_with_offer("caue77", OfferCategory::IntegratedEngineering).await;
    let open = SubmitRequestRequest {
        subject: "Rénover l'école".into(),
        description: "Nous voulons rénover l'école : par où commencer ?".into(),
        orientation: true,
        ..Default::default()
    };
    let request = s.submit(&user, open).await;
    assert_eq!(
        (request.status(), request.kind.as_str(), request.offer_id.as_str()),
        (RequestStatus::Triage, "orientation", "")
    );
    let steps: Vec<RequestStatus> = request.history.iter().map(|h| h.status()).collect();
    assert_eq!(steps, vec![RequestStatus::Submitted, RequestStatus::Triage]);

    // The coordinator placed it with an offer: routing's referral carries it, and the request takes it.
    let mut referral = offered(&request.id, "caue77", 1);
    referral.offer_id = offer.to_string();
    s.publish("id77.routing.referral.offered", &referral).await;
    let routed = s.wait_status(&request.id, RequestStatus::Referred).await;
    assert_eq!(
        (routed.offer_id.as_str(), routed.offer_version, routed.offer_category.as_str()),
        (offer.to_string().as_str(), 3, "integrated_engineering")
    );

    // Expired with nobody left: back to triage; the coordinator's next placement refers it again.
    let expired = ReferralExpired {
        request_id: request.id.clone(),
        provider_code: "caue77".into(),
        rerouted: true,
        occurred_at: at(2),
        ..Default::default()
    };
    s.publish("id77.routing.referral.expired", &expired).await;
    s.wait_status(&request.id, RequestStatus::Triage).await;
    s.publish("id77.routing.referral.offered", &offered(&request.id, "dir-amenagement", 3)).await;
    let again = s.wait_status(&request.id, RequestStatus::Referred).await;
    assert_eq!(again.provider_code, "dir-amenagement");

    // An open request says what it wants and names no offer.
    let bad = SubmitRequestRequest {
        subject: "x".into(),
        orientation: true,
        offer_id: offer.to_string(),
        ..Default::default()
    };
    let err = s.client.submit_request(with_token(bad, &user)).await.expect_err("invalid");
    let fields: Vec<String> = ServiceError::from_status(&err).violations.into_iter().map(|v| v.field).collect();
    assert_eq!(fields, vec!["offer_id", "description"]);
    s.stop().await;
}

#[tokio::test]
async fn each_category_gets_the_fields_it_needs() {
    let mut s = start().await;
    let (commune, epci) = (Uuid::now_v7(), Uuid::now_v7());
    s.approve(commune, true).await;
    s.approve(epci, false).await;
    let expo = s.offer("agence-attractivite", OfferCategory::ExhibitionLoan).await;
    let study = s.offer("caue77", OfferCategory::IntegratedEngineering).await;
    let user = s.user(commune);
    // Wait for the read models with a valid loan, then check the refusals.
    let today = time::now().date_naive();
    let day = |d: i64| (today + chrono::Duration::days(d)).format("%Y-%m-%d").to_string();
    let loan = SubmitRequestRequest {
        dates: Some(LoanDates { start_date: day(10), end_date: day(30) }),
        ..submission(expo, "expo-1")
    };
    let lent = s.submit(&user, loan).await;
    assert_eq!(lent.dates.map(|d| d.end_date), Some(day(30)));
    let fields = |e: tonic::Status| -> Vec<String> {
        ServiceError::from_status(&e).violations.into_iter().map(|v| v.field).collect()
    };
    let err = s.client.submit_request(with_token(submission(expo, "expo-2"), &user)).await.expect_err("no dates");
    assert_eq!(fields(err), vec!["dates"]);
    let past = SubmitRequestRequest {
        dates: Some(LoanDates { start_date: day(-1), end_date: day(3) }),
        ..submission(expo, "expo-3")
    };
    let err = s.client.submit_request(with_token(past, &user)).await.expect_err("past");
    assert_eq!(fields(err), vec!["dates.start_date"]);
    // An EPCI has no commune of its own: its studies name the site.
    let epci_user = s.user(epci);
    let mut tries = 0;
    let err = loop {
        let e =
            s.client.submit_request(with_token(submission(study, "etude-1"), &epci_user)).await.expect_err("no site");
        if e.code() == Code::InvalidArgument || tries > 100 {
            break e;
        }
        tries += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(fields(err), vec!["site.commune_insee"]);
    let sited = SubmitRequestRequest {
        site: Some(Site { address: "Rue de la gare".into(), commune_insee: "77288".into() }),
        ..submission(study, "etude-2")
    };
    let r = s.client.submit_request(with_token(sited, &epci_user)).await.expect("sited").into_inner();
    assert_eq!(r.site.map(|s| (s.address, s.commune_insee)), Some(("Rue de la gare".into(), "77288".into())));
    s.stop().await;
}

#[tokio::test]
async fn the_same_key_gives_the_same_request_even_concurrently_and_another_body_conflicts() {
    let mut s = start().await;
    let (member, offer, user) = s.member_with_offer("caue77", OfferCategory::AwarenessTraining).await;
    s.submit(&user, submission(offer, "warm-up")).await;

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let mut client = s.client.clone();
        let request = with_token(submission(offer, "same-key"), &user);
        tasks.push(tokio::spawn(async move { client.submit_request(request).await.map(|r| r.into_inner().id) }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("join").expect("submitted"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "20 concurrent submissions with one key made {} requests", ids.len());
    let list = ListRequestsRequest { member_id: member.to_string(), page_size: 100, ..Default::default() };
    let listed = s.client.list_requests(with_token(list, &user)).await.expect("list").into_inner().requests;
    assert_eq!(listed.len(), 2, "the warm-up and one more");

    let other = SubmitRequestRequest { subject: "Un autre sujet".into(), ..submission(offer, "same-key") };
    let err = s.client.submit_request(with_token(other, &user)).await.expect_err("conflict");
    assert_eq!((err.code(), reason(&err)), (Code::AlreadyExists, "IDEMPOTENCY_KEY_REUSED".to_owned()));
    s.stop().await;
}

#[tokio::test]
async fn dashboards_filter_and_count_within_each_callers_scope() {
    let mut s = start().await;
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    s.approve(a, true).await;
    s.approve(b, true).await;
    let training = s.offer("caue77", OfferCategory::AwarenessTraining).await;
    let study = s.offer("dir-routes", OfferCategory::IntegratedEngineering).await;
    let (user_a, user_b) = (s.user(a), s.user(b));
    let a1 = s.submit(&user_a, submission(training, "a1")).await;
    let a2 = s.submit(&user_a, submission(study, "a2")).await;
    let b1 = s.submit(&user_b, submission(study, "b1")).await;
    s.publish("id77.routing.referral.offered", &offered(&a2.id, "dir-routes", 1)).await;
    s.publish("id77.routing.referral.offered", &offered(&b1.id, "dir-routes", 1)).await;
    let accepted = ReferralAccepted {
        request_id: b1.id.clone(),
        provider_code: "dir-routes".into(),
        occurred_at: at(2),
        ..Default::default()
    };
    s.publish("id77.routing.referral.accepted", &accepted).await;
    s.wait_status(&a2.id, RequestStatus::Referred).await;
    s.wait_status(&b1.id, RequestStatus::Accepted).await;
    let referent = Uuid::now_v7();
    let updated = MemberUpdated {
        member_id: a.to_string(),
        referent_user_id: referent.to_string(),
        occurred_at: at(0),
        ..Default::default()
    };
    s.publish("id77.membership.member.updated", &updated).await;

    let ids = |token: String, req: ListRequestsRequest| {
        let mut client = s.client.clone();
        async move {
            let mut r: Vec<String> = client
                .list_requests(with_token(req, &token))
                .await
                .expect("list")
                .into_inner()
                .requests
                .into_iter()
                .map(|r| r.id)
                .collect();
            r.sort();
            r
        }
    };
    let sorted = |mut v: Vec<&str>| {
        v.sort();
        v.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let all = ListRequestsRequest::default();
    let coordinator = s.coordinator();
    assert_eq!(ids(coordinator.clone(), all.clone()).await, sorted(vec![&a1.id, &a2.id, &b1.id]));
    assert_eq!(ids(user_a.clone(), all.clone()).await, sorted(vec![&a1.id, &a2.id]));
    let agent = s.keys.token(Role::ProviderAgent, None, Some("dir-routes"));
    assert_eq!(ids(agent, all.clone()).await, sorted(vec![&a2.id, &b1.id]), "referred to dir-routes");
    let referent_token = s.keys.sign(&Claims::new(referent, Role::Referent, time::now().timestamp()));
    let mut followed = Vec::new();
    for _ in 0..100 {
        followed = ids(referent_token.clone(), all.clone()).await;
        if !followed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(followed, sorted(vec![&a1.id, &a2.id]), "the members it follows");
    // Filters: status, category, period.
    let by_status = ListRequestsRequest { status: RequestStatus::Referred.into(), ..Default::default() };
    assert_eq!(ids(coordinator.clone(), by_status).await, vec![a2.id.clone()]);
    let by_category = ListRequestsRequest { offer_category: "integrated_engineering".into(), ..Default::default() };
    assert_eq!(ids(coordinator.clone(), by_category).await, sorted(vec![&a2.id, &b1.id]));
    let future = ListRequestsRequest { submitted_from: at(3600), ..Default::default() };
    assert!(ids(coordinator.clone(), future).await.is_empty());
    let bad = ListRequestsRequest { offer_category: "expo".into(), ..Default::default() };
    assert_eq!(
        s.client.list_requests(with_token(bad, &coordinator)).await.map(|_| ()).map_err(|e| e.code()),
        Err(Code::InvalidArgument)
    );
    // Counts by status in the same scope.
    let summary = s
        .client
        .summarize_requests(with_token(ListRequestsRequest::default(), &coordinator))
        .await
        .expect("summary")
        .into_inner();
    let count = |status: RequestStatus| summary.counts.iter().find(|c| c.status() == status).map(|c| c.count);
    assert_eq!(
        (
            summary.total,
            count(RequestStatus::Submitted),
            count(RequestStatus::Referred),
            count(RequestStatus::Accepted)
        ),
        (3, Some(1), Some(1), Some(1))
    );
    assert_eq!(count(RequestStatus::Closed), Some(0));
    let mine = s
        .client
        .summarize_requests(with_token(ListRequestsRequest::default(), &user_b))
        .await
        .expect("summary")
        .into_inner();
    assert_eq!(mine.total, 1);
    // Pagination still holds across the whole list.
    let page = ListRequestsRequest { page_size: 2, ..Default::default() };
    let first = s.client.list_requests(with_token(page.clone(), &coordinator)).await.expect("page").into_inner();
    assert_eq!(first.requests.len(), 2);
    let next = ListRequestsRequest { page_token: first.next_page_token, ..page };
    let second = s.client.list_requests(with_token(next, &coordinator)).await.expect("page 2").into_inner();
    assert_eq!((second.requests.len(), second.next_page_token.as_str()), (1, ""));
    // The next step of a followed member's request names its referent in `request.status_changed` (billing keeps
    // it from there); the step, its history row and the referent are one statement.
    s.publish("id77.routing.referral.offered", &offered(&a1.id, "caue77", 3)).await;
    s.wait_status(&a1.id, RequestStatus::Referred).await;
    let changed: Vec<RequestStatusChanged> = s
        .published("id77.requests.request.status_changed", 4)
        .await
        .iter()
        .map(|p| RequestStatusChanged::decode(p.as_slice()).expect("status_changed"))
        .collect();
    let a1_referred = changed.iter().find(|e| e.request_id == a1.id && e.to_status == "referred").expect("a1 referred");
    assert_eq!(a1_referred.referent_user_id, referent.to_string());
    let b1_accepted = changed.iter().find(|e| e.request_id == b1.id && e.to_status == "accepted").expect("b1 accepted");
    assert_eq!(b1_accepted.referent_user_id, "", "member b has no referent");
    s.stop().await;
}

#[tokio::test]
async fn a_list_synced_since_an_instant_gives_the_requests_changed_after_it_even_by_a_late_event() {
    let mut s = start().await;
    let (_, study, user) = s.member_with_offer("dir-routes", OfferCategory::IntegratedEngineering).await;
    let changed = s.submit(&user, submission(study, "changed")).await;
    let unchanged = s.submit(&user, submission(study, "unchanged")).await;
    for r in [&changed, &unchanged] {
        s.publish("id77.routing.referral.offered", &offered(&r.id, "dir-routes", 0)).await;
        s.wait_status(&r.id, RequestStatus::Referred).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let synced = at(0);
    // The provider's answer happened before the sync but reaches requests after it: it still counts as a change
    // after the sync (the lifecycle keeps its own, earlier, time).
    let late = ReferralAccepted {
        request_id: changed.id.clone(),
        provider_code: "dir-routes".into(),
        occurred_at: at(-30),
        ..Default::default()
    };
    s.publish("id77.routing.referral.accepted", &late).await;
    s.wait_status(&changed.id, RequestStatus::Accepted).await;

    let since = |updated_since| ListRequestsRequest { updated_since, ..Default::default() };
    let client = s.client.clone();
    let list = |token: String, req: ListRequestsRequest| {
        let mut client = client.clone();
        async move {
            let page = client.list_requests(with_token(req, &token)).await.map(|r| r.into_inner());
            page.map(|p| p.requests.into_iter().map(|r| r.id).collect::<Vec<_>>()).map_err(|e| e.code())
        }
    };
    assert_eq!(list(user.clone(), since(synced)).await, Ok(vec![changed.id.clone()]));
    assert_eq!(list(s.coordinator(), since(synced)).await, Ok(vec![changed.id.clone()]));
    assert_eq!(list(user.clone(), since(at(0))).await, Ok(vec![]), "nothing changed since");
    assert_eq!(list(user.clone(), ListRequestsRequest::default()).await.map(|ids| ids.len()), Ok(2));
    // Paged like the whole list, newest submission first.
    let all_since = since(at(-3600));
    let first = ListRequestsRequest { page_size: 1, ..all_since.clone() };
    let page = client.clone().list_requests(with_token(first, &user)).await.expect("page 1").into_inner();
    assert_eq!(page.requests.iter().map(|r| &r.id).collect::<Vec<_>>(), [&unchanged.id]);
    let next = ListRequestsRequest { page_size: 1, page_token: page.next_page_token, ..all_since };
    assert_eq!(list(user.clone(), next).await, Ok(vec![changed.id.clone()]));
    let bad = since(Some(id77_proto::prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }));
    assert_eq!(list(user, bad).await, Err(Code::InvalidArgument));
    s.stop().await;
}
