//! The authorization matrix of `docs/authorization.md`, through the real gateway and services: every endpoint
//! called as anonymous, as each role, as a user of another member and as an agent of another provider, with the
//! expected outcome of each call in one table. Plus the token checks (tampered, `alg: none`, refresh reuse).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use id77_e2e::{Api, DEMO_PASSWORD, Platform, eventually};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// What a call may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Allowed: 2xx, or 409 when the state forbids it (e.g. approving an active member) — authorization passed.
    Ok,
    Unauthenticated,
    Forbidden,
    NotFound,
}
use Expect::*;

impl Expect {
    fn matches(self, status: StatusCode) -> bool {
        match self {
            Ok => status.is_success() || status == StatusCode::CONFLICT,
            Unauthenticated => status == StatusCode::UNAUTHORIZED,
            Forbidden => status == StatusCode::FORBIDDEN,
            NotFound => status == StatusCode::NOT_FOUND,
        }
    }
}

/// The callers, in the order of the table's columns.
const CALLERS: [&str; 9] =
    ["anonymous", "admin A", "user A", "admin B", "agent P", "agent Q", "referent of A", "coordinator", "operator"];

struct Fixture {
    api: Api,
    tokens: Vec<Option<String>>,
    member_a: String,
    request_a: String,
    referral_a: String,
    quote_a: String,
    user_a: String,
    offer_p: String,
    /// An awareness or training offer of P, for the session rows.
    training_p: String,
    referent_id: String,
}

async fn member_with_admin(api: &Api, coordinator: &str, siren: &str, email: &str) -> (String, String) {
    let apply = json!({"siren": siren, "contact_name": "Mairie", "contact_email": email});
    let (status, member) = api.post("/v1/memberships", None, &apply).await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    let id = member["id"].as_str().expect("member id").to_owned();
    let (status, body) = api.post(&format!("/v1/memberships/{id}/approve"), Some(coordinator), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let invite = json!({"email": email, "display_name": "Admin", "role": "member_admin", "member_id": id});
    let (token, _) = api.invite_and_accept(coordinator, &invite).await.expect("admin");
    (id, token)
}

async fn fixture(platform: &mut Platform) -> Fixture {
    let api = Api::new(&platform.gateway);
    let login = |email: &'static str| {
        let api = api.clone();
        async move { api.access_token(email, DEMO_PASSWORD).await.expect(email) }
    };
    let coordinator = login("coordination@id77.demo").await;
    let operator = login("operateur@id77.demo").await;
    let referent = login("referent@id77.demo").await;

    // Member A (Meaux) with an admin and a user; member B (Melun) with an admin.
    let (member_a, admin_a) = member_with_admin(&api, &coordinator, "217702844", "dgs@meaux.fr").await;
    let (_member_b, admin_b) = member_with_admin(&api, &coordinator, "217702885", "dgs@melun.fr").await;
    let (user_a, user_a_id) = api
        .invite_and_accept(
            &admin_a,
            &json!({"email": "agent@meaux.fr", "display_name": "Agent", "role": "member_user", "member_id": member_a}),
        )
        .await
        .expect("user of A");

    // The referent follows A.
    let referent_id = api.get("/v1/me", Some(&referent)).await.1["user"]["id"].as_str().expect("id").to_owned();
    let (status, body) = api
        .call(
            Method::PUT,
            &format!("/v1/memberships/{member_a}/referent"),
            Some(&coordinator),
            Some(&json!({"referent_user_id": referent_id})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A billed offer of provider P; Q is another provider.
    let (_, offers) = api.get("/v1/offers?category=integrated_engineering&limit=100", None).await;
    let offer =
        offers["items"].as_array().and_then(|o| o.iter().find(|o| o["billed"] == true).cloned()).expect("billed offer");
    let offer_p = offer["id"].as_str().expect("id").to_owned();
    let provider_p = offer["provider_code"].as_str().expect("provider").to_owned();
    let provider_q =
        id77_e2e::provider_codes().expect("seed").into_iter().find(|c| *c != provider_p).expect("a second provider");
    let agent_p = api.access_token(&format!("agent.{provider_p}@id77.demo"), DEMO_PASSWORD).await.expect("agent P");
    let (_, trainings) =
        api.get(&format!("/v1/offers?category=awareness_training&provider={provider_p}&limit=100"), None).await;
    let training_p = trainings["items"][0]["id"].as_str().expect("a training offer of P").to_owned();
    let agent_q = api.access_token(&format!("agent.{provider_q}@id77.demo"), DEMO_PASSWORD).await.expect("agent Q");
    platform.start_referral_consumer(&provider_p, &["--rule", "accept-all"]).expect("consumer");

    // A request of A, accepted by P, with its referral and quote.
    let body = json!({"offer_id": offer_p, "subject": "Diagnostic voirie", "description": ""});
    let request = eventually("submission", Duration::from_secs(30), || async {
        let (status, value) = api.post("/v1/requests", Some(&admin_a), &body).await;
        (status == StatusCode::CREATED).then_some(value)
    })
    .await;
    let request_a = request["id"].as_str().expect("request").to_owned();
    let quote = eventually("quote", Duration::from_secs(30), || async {
        let (_, value) = api.get(&format!("/v1/quotes?request_id={request_a}"), Some(&admin_a)).await;
        value["items"].as_array().and_then(|i| i.first().cloned())
    })
    .await;
    let quote_a = quote["id"].as_str().expect("quote").to_owned();
    let (_, referrals) = api.get(&format!("/v1/referrals?request_id={request_a}"), Some(&coordinator)).await;
    let referral_a = referrals["items"][0]["id"].as_str().expect("referral").to_owned();
    // The referent's read models (requests, billing) learn that it follows A from an event.
    eventually("the referent to follow A everywhere", Duration::from_secs(15), || async {
        let r = api.get(&format!("/v1/requests/{request_a}"), Some(&referent)).await.0;
        let q = api.get(&format!("/v1/quotes/{quote_a}"), Some(&referent)).await.0;
        (r == StatusCode::OK && q == StatusCode::OK).then_some(())
    })
    .await;

    Fixture {
        api,
        tokens: vec![
            None,
            Some(admin_a),
            Some(user_a),
            Some(admin_b),
            Some(agent_p),
            Some(agent_q),
            Some(referent),
            Some(coordinator),
            Some(operator),
        ],
        member_a,
        request_a,
        referral_a,
        quote_a,
        user_a: user_a_id,
        offer_p,
        training_p,
        referent_id,
    }
}

/// A session of P's training offer in a month, scheduled by P's agent, and one participant of A registered by
/// A's admin: (session id, registration id).
async fn session_with_registration(f: &Fixture) -> (String, String) {
    let starts = chrono::Utc::now() + chrono::Duration::days(30);
    let schedule = json!({
        "starts_at": starts.to_rfc3339(), "ends_at": (starts + chrono::Duration::hours(3)).to_rfc3339(),
        "place": {"online": false, "commune_insee": "77288", "address": "Hôtel du Département, Melun"},
        "capacity": 5, "details": "Matrice des droits"
    });
    let path = format!("/v1/offers/{}/sessions", f.training_p);
    let (status, session) = f.api.post(&path, f.tokens[4].as_deref(), &schedule).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let session = session["id"].as_str().expect("session").to_owned();
    let register = json!({"participants": [{"name": "Élise Roux", "function": "DGS", "email": "e.roux@meaux.fr"}]});
    let path = format!("/v1/sessions/{session}/registrations");
    let (status, registered) = f.api.post(&path, f.tokens[1].as_deref(), &register).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let registration = registered["registrations"][0]["id"].as_str().expect("registration").to_owned();
    (session, registration)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_each_caller_as_the_policy_says() {
    let mut platform = Platform::start().await.expect("platform starts");
    let f = fixture(&mut platform).await;
    let (a, r, rf, q, u) = (&f.member_a, &f.request_a, &f.referral_a, &f.quote_a, &f.user_a);
    let invite = json!({"email": "nouvel.agent@meaux.fr", "display_name": "Nouvel agent", "role": "member_user", "member_id": a});
    let submit = json!({"offer_id": f.offer_p, "subject": "Autre demande", "description": ""});
    let referent = json!({"referent_user_id": f.referent_id});
    let empty = json!({});
    let progress = json!({"note": "Visite de terrain faite", "percent": 30});
    let decline = json!({"reason": "Hors de notre champ"});
    let sign = json!({"signatory_name": "Le maire", "purchase_order_number": "EJ-2026-0001"});
    let refuse = json!({"reason": "Budget non voté"});
    let message = json!({"body": "Bonjour"});
    // An attachment on A's request, for the download row.
    let (status, posted) = f
        .api
        .upload(
            &format!("/v1/requests/{r}/attachments"),
            f.tokens[1].as_deref(),
            "text/plain",
            "note.txt",
            b"Note".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    let attachment = posted["attachments"][0]["id"].as_str().expect("attachment").to_owned();
    let rating = json!({"rating": 4, "comment": "Bien"});
    let assign = json!({"provider_code": "caue77"});
    let prefs = json!({"status_changed": true});
    let refusal = json!({"reason": "Hors du périmètre"});
    let change = json!({"current_password": "Pas-le-bon-2026!", "new_password": "Nouveau-Secret-2026!"});
    let reset = json!({"email": "personne@example.fr"});
    let confirm = json!({"token": "inconnu-0123456789", "password": "Nouveau-Secret-2026!"});
    // Training sessions: a session of P with a registration of A.
    let (s, g) = session_with_registration(&f).await;
    let t = &f.training_p;
    let starts = chrono::Utc::now() + chrono::Duration::days(40);
    let schedule = json!({
        "starts_at": starts.to_rfc3339(), "ends_at": (starts + chrono::Duration::hours(2)).to_rfc3339(),
        "place": {"online": true, "online_link": "https://visio.example.fr/id77"}, "capacity": 3
    });
    let register_a = json!({"member_id": a, "participants": [{"name": "Paul Lenoir", "function": "maire adjoint", "email": "p.lenoir@meaux.fr"}]});
    let attendance = json!({"attended_registration_ids": []});
    let score = json!({"score": 4, "comment": "Utile"});
    let cancel_session = json!({"reason": "Formateur indisponible"});
    //                                                                                anon  admA  userA admB  agP   agQ   ref   coord oper
    #[rustfmt::skip]
    let table: Vec<(Method, String, Option<&Value>, [Expect; 9])> = vec![
        (Method::GET, "/v1/collectivities?q=meaux".into(), None,                     [Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::GET, "/v1/collectivities/217702844".into(), None,                    [Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::GET, "/v1/offers".into(), None,                                      [Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::GET, format!("/v1/offers/{}", f.offer_p), None,                      [Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::GET, "/v1/providers".into(), None,                                   [Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::GET, "/.well-known/jwks.json".into(), None,                          [Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::GET, "/v1/me".into(), None,                                          [Unauthenticated, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        // Notification preferences: every signed-in user, its own only (nothing names another user).
        (Method::GET, "/v1/me/notification-preferences".into(), None,                 [Unauthenticated, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::PUT, "/v1/me/notification-preferences".into(), Some(&prefs),         [Unauthenticated, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        // Notifications: every signed-in user, its own only (an id that is not one of the caller's is 404).
        (Method::GET, "/v1/notifications".into(), None,                                [Unauthenticated, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::GET, "/v1/notifications?limit=0".into(), None,                        [Unauthenticated, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::POST, "/v1/notifications/read-all".into(), Some(&empty),              [Unauthenticated, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::POST, "/v1/notifications/0193f6a2-1c2b-7d3e-9f00-123456789abc/read".into(), Some(&empty), [Unauthenticated, NotFound, NotFound, NotFound, NotFound, NotFound, NotFound, NotFound, NotFound]),
        // Passwords: everyone changes its own (a wrong current password is a 403 once authenticated: a failed second
        // proof); resets are public (an unknown link is a 404).
        (Method::PUT, "/v1/me/password".into(), Some(&change),                       [Unauthenticated, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden]),
        (Method::POST, "/v1/auth/password-reset".into(), Some(&reset),               [Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::POST, "/v1/auth/password-reset/confirm".into(), Some(&confirm),     [NotFound, NotFound, NotFound, NotFound, NotFound, NotFound, NotFound, NotFound, NotFound]),
        (Method::GET, "/v1/memberships".into(), None,                                 [Unauthenticated, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Ok, Ok, Forbidden]),
        (Method::GET, format!("/v1/memberships/{a}"), None,                           [Unauthenticated, Ok, Ok, NotFound, Forbidden, Forbidden, Ok, Ok, Forbidden]),
        (Method::POST, format!("/v1/memberships/{a}/approve"), Some(&empty),          [Unauthenticated, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Ok, Forbidden]),
        // A is active: the coordinator passes authorization and gets 409.
        (Method::POST, format!("/v1/memberships/{a}/refuse"), Some(&refusal),         [Unauthenticated, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Ok, Forbidden]),
        (Method::PUT, format!("/v1/memberships/{a}/referent"), Some(&referent),       [Unauthenticated, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Ok, Forbidden]),
        (Method::GET, "/v1/users".into(), None,                                       [Unauthenticated, Ok, Forbidden, Ok, Forbidden, Forbidden, Forbidden, Ok, Ok]),
        (Method::POST, "/v1/users".into(), Some(&invite),                             [Unauthenticated, Ok, Forbidden, NotFound, Forbidden, Forbidden, Forbidden, Ok, Forbidden]),
        (Method::GET, "/v1/audit-events".into(), None,                                [Unauthenticated, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Ok]),
        (Method::GET, "/v1/operations".into(),   None,                                [Unauthenticated, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Ok]),
        (Method::POST, "/v1/requests".into(), Some(&submit),                          [Unauthenticated, Ok, Ok, Ok, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden]),
        // Provider agents list what was referred to them, never a member's list.
        (Method::GET, format!("/v1/requests?member_id={a}"), None,                    [Unauthenticated, Ok, Ok, NotFound, NotFound, NotFound, Ok, Ok, Forbidden]),
        (Method::GET, format!("/v1/requests/{r}"), None,                              [Unauthenticated, Ok, Ok, NotFound, Ok, NotFound, Ok, Ok, Forbidden]),
        (Method::GET, format!("/v1/requests/{r}/messages"), None,                     [Unauthenticated, Ok, Ok, NotFound, Ok, NotFound, Ok, Ok, Forbidden]),
        (Method::POST, format!("/v1/requests/{r}/messages"), Some(&message),          [Unauthenticated, Ok, Ok, NotFound, Ok, NotFound, Ok, Ok, Forbidden]),
        (Method::POST, format!("/v1/requests/{r}/messages/read"), Some(&empty),       [Unauthenticated, Ok, Ok, NotFound, Ok, NotFound, Ok, Ok, Forbidden]),
        (Method::GET, format!("/v1/requests/{r}/attachments/{attachment}"), None,     [Unauthenticated, Ok, Ok, NotFound, Ok, NotFound, Ok, Ok, Forbidden]),
        (Method::GET, "/v1/requests".into(), None,                                    [Unauthenticated, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Forbidden]),
        (Method::GET, "/v1/requests/summary".into(), None,                            [Unauthenticated, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Forbidden]),
        (Method::GET, "/v1/statistics/requests?from=2026-01-01&to=2030-12-31".into(), None, [Unauthenticated, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Ok, Forbidden]),
        (Method::GET, "/v1/triage".into(), None,                                      [Unauthenticated, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Ok, Forbidden]),
        // Not in the queue: the coordinator passes authorization and gets 404; everyone else is refused first.
        (Method::POST, format!("/v1/triage/{r}/assign"), Some(&assign),               [Unauthenticated, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Ok, Forbidden]),
        // Accepted, not completed: feedback answers 409 to the member's users (authorized), close 409 to the coordinator.
        (Method::PUT, format!("/v1/requests/{r}/feedback"), Some(&rating),            [Unauthenticated, Ok, Ok, NotFound, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden]),
        (Method::POST, format!("/v1/requests/{r}/close"), Some(&empty),               [Unauthenticated, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Ok, Forbidden]),
        // Last of the requests rows: the member's user cancels (the admin, the coordinator then get 409).
        (Method::POST, format!("/v1/requests/{r}/cancel"), Some(&empty),              [Unauthenticated, Ok, Ok, NotFound, Forbidden, Forbidden, Forbidden, Ok, Forbidden]),
        (Method::GET, "/v1/referrals".into(), None,                                   [Unauthenticated, Forbidden, Forbidden, Forbidden, Ok, Ok, Forbidden, Ok, Forbidden]),
        (Method::GET, format!("/v1/referrals/{rf}"), None,                            [Unauthenticated, Forbidden, Forbidden, Forbidden, Ok, NotFound, Forbidden, Ok, Forbidden]),
        // The referral is accepted (by P's consumer): answering again is a 409 for P's agent (authorized).
        (Method::POST, format!("/v1/referrals/{rf}/progress"), Some(&progress),       [Unauthenticated, Forbidden, Forbidden, Forbidden, Ok, NotFound, Forbidden, Forbidden, Forbidden]),
        (Method::POST, format!("/v1/referrals/{rf}/accept"), Some(&empty),            [Unauthenticated, Forbidden, Forbidden, Forbidden, Ok, NotFound, Forbidden, Forbidden, Forbidden]),
        (Method::POST, format!("/v1/referrals/{rf}/decline"), Some(&decline),         [Unauthenticated, Forbidden, Forbidden, Forbidden, Ok, NotFound, Forbidden, Forbidden, Forbidden]),
        (Method::GET, format!("/v1/quotes?member_id={a}"), None,                      [Unauthenticated, Ok, Ok, NotFound, Ok, Ok, Ok, Ok, Forbidden]),
        (Method::GET, format!("/v1/quotes/{q}"), None,                                [Unauthenticated, Ok, Ok, NotFound, Ok, NotFound, Ok, Ok, Forbidden]),
        (Method::GET, format!("/v1/quotes/{q}.pdf"), None,                            [Unauthenticated, Ok, Ok, NotFound, Ok, NotFound, Ok, Ok, Forbidden]),
        // Only a member admin of the quote's member answers it (ADR 0013): other roles are refused, another
        // member's admin does not see it. The request was cancelled above, so the quote is voided (409) or, if
        // billing has not heard of it yet, accepted by A's admin (then voided); refusing it is then a 409.
        (Method::POST, format!("/v1/quotes/{q}/accept"), Some(&sign),                 [Unauthenticated, Ok, Forbidden, NotFound, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden]),
        (Method::POST, format!("/v1/quotes/{q}/refuse"), Some(&refuse),               [Unauthenticated, Ok, Forbidden, NotFound, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden]),
        (Method::POST, "/v1/auth/keys/rotate".into(), Some(&empty),                   [Unauthenticated, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Ok]),
        // Training sessions. Reads are public; P's agent manages P's sessions only (Q's agent gets 404); a member's
        // users see and cancel their member's registrations only (B gets 404 or an empty list of its own).
        (Method::GET, format!("/v1/offers/{t}/sessions"), None,                       [Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::GET, "/v1/sessions".into(), None,                                    [Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::GET, format!("/v1/sessions/{s}"), None,                              [Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::GET, format!("/v1/sessions/{s}/calendar"), None,                     [Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::GET, "/v1/calendar-feeds/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into(), None, [NotFound, NotFound, NotFound, NotFound, NotFound, NotFound, NotFound, NotFound, NotFound]),
        (Method::POST, format!("/v1/offers/{t}/sessions"), Some(&schedule),           [Unauthenticated, Forbidden, Forbidden, Forbidden, Ok, NotFound, Forbidden, Ok, Forbidden]),
        // The first of A's users registers; the others get 409 (already registered): authorized.
        (Method::POST, format!("/v1/sessions/{s}/registrations"), Some(&register_a),  [Unauthenticated, Ok, Ok, NotFound, Forbidden, Forbidden, Forbidden, Ok, Forbidden]),
        (Method::GET, format!("/v1/sessions/{s}/registrations"), None,                [Unauthenticated, Ok, Ok, Ok, Ok, NotFound, Forbidden, Ok, Forbidden]),
        (Method::GET, "/v1/registrations".into(), None,                               [Unauthenticated, Ok, Ok, Ok, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden]),
        (Method::GET, format!("/v1/sessions/{s}/attendance-sheet"), None,             [Unauthenticated, Forbidden, Forbidden, Forbidden, Ok, NotFound, Forbidden, Ok, Forbidden]),
        // Not attended (the session has not taken place): 409 once authorized.
        (Method::GET, format!("/v1/registrations/{g}/attestation"), None,             [Unauthenticated, Ok, Ok, NotFound, Ok, NotFound, Forbidden, Ok, Forbidden]),
        // Not started / not held: 409 once authorized.
        (Method::POST, format!("/v1/sessions/{s}/attendance"), Some(&attendance),     [Unauthenticated, Forbidden, Forbidden, Forbidden, Ok, NotFound, Forbidden, Ok, Forbidden]),
        (Method::POST, format!("/v1/sessions/{s}/rating"), Some(&score),              [Unauthenticated, Ok, Ok, Ok, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden]),
        (Method::POST, "/v1/me/calendar-feed".into(), None,                           [Unauthenticated, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::DELETE, "/v1/me/calendar-feed".into(), None,                         [Unauthenticated, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok]),
        (Method::GET, "/v1/session-statistics".into(), None,                          [Unauthenticated, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Forbidden, Ok, Ok]),
        // A's admin cancels; the next callers allowed get 409 (already cancelled).
        (Method::POST, format!("/v1/registrations/{g}/cancel"), Some(&empty),         [Unauthenticated, Ok, Ok, NotFound, Ok, NotFound, Forbidden, Ok, Forbidden]),
        (Method::POST, format!("/v1/sessions/{s}/cancel"), Some(&cancel_session),     [Unauthenticated, Forbidden, Forbidden, Forbidden, Ok, NotFound, Forbidden, Ok, Forbidden]),
        // Last: the member's admin removes its user (everyone before it is refused or does not see the user).
        (Method::DELETE, format!("/v1/users/{u}"), None,                              [Unauthenticated, Ok, Forbidden, NotFound, Forbidden, Forbidden, Forbidden, Forbidden, NotFound]),
    ];
    let mut failures = Vec::new();
    let mut calls = 0;
    for (method, path, body, expected) in &table {
        // Run the column of the member's admin last on a DELETE, so the others see the user still there.
        let mut order: Vec<usize> = (0..CALLERS.len()).collect();
        if *method == Method::DELETE {
            order.retain(|i| *i != 1);
            order.push(1);
        }
        for i in order {
            let (status, answer) = f.api.call(method.clone(), path, f.tokens[i].as_deref(), *body).await;
            calls += 1;
            if !expected[i].matches(status) {
                failures.push(format!(
                    "{method} {path} as {}: expected {:?}, got {status} {answer}",
                    CALLERS[i], expected[i]
                ));
            }
        }
    }
    // The table removed user A (DELETE /v1/users/{u}): its access token is revoked everywhere within seconds
    // (issue 19, docs/security.md), so from here on user A is refused like an anonymous caller.
    let removed = f.tokens[2].clone();
    eventually("user A's token to be revoked", Duration::from_secs(5), || async {
        (f.api.get("/v1/requests", removed.as_deref()).await.0 == StatusCode::UNAUTHORIZED).then_some(())
    })
    .await;
    // Attachment uploads (a raw body, not JSON). The table's last requests row cancelled the request, so P's
    // agent no longer takes part in its thread (404, like any outsider); the member's admin, its referent and the
    // coordinator still do.
    #[rustfmt::skip]
    let uploads = [Unauthenticated, Ok, Unauthenticated, NotFound, NotFound, NotFound, Ok, Ok, Forbidden];
    for (i, expected) in uploads.iter().enumerate() {
        let path = format!("/v1/requests/{r}/attachments");
        let (status, answer) = f.api.upload(&path, f.tokens[i].as_deref(), "text/plain", "n.txt", b"x".to_vec()).await;
        calls += 1;
        if !expected.matches(status) {
            failures.push(format!("POST {path} as {}: expected {expected:?}, got {status} {answer}", CALLERS[i]));
        }
    }
    // The live updates stream (it never ends: only the status of the answer is read). Who sees which events is
    // checked in tests/tests/notifications.rs.
    #[rustfmt::skip]
    let streams = [Unauthenticated, Ok, Unauthenticated, Ok, Ok, Ok, Ok, Ok, Forbidden];
    for (i, expected) in streams.iter().enumerate() {
        let mut request = f.api.http.get(format!("{}/v1/events", f.api.base));
        if let Some(token) = f.tokens[i].as_deref() {
            request = request.bearer_auth(token);
        }
        let status = request.send().await.map(|r| r.status()).unwrap_or(StatusCode::BAD_GATEWAY);
        calls += 1;
        if !expected.matches(status) {
            failures.push(format!("GET /v1/events as {}: expected {expected:?}, got {status}", CALLERS[i]));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {calls} calls disagree with the policy:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(calls, (table.len() + 2) * CALLERS.len());
    platform.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_expired_and_reused_tokens_are_refused() {
    let platform = Platform::start().await.expect("platform starts");
    let api = Api::new(&platform.gateway);
    let pair = api.login("coordination@id77.demo", DEMO_PASSWORD).await.expect("login");
    let access = pair["access_token"].as_str().expect("access").to_owned();
    assert_eq!(api.get("/v1/memberships", Some(&access)).await.0, StatusCode::OK);

    // Tampered payload: claims an operator role with the coordinator's signature.
    let parts: Vec<&str> = access.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&B64.decode(parts[1]).expect("b64")).expect("json");
    claims["roles"] = json!(["operator"]);
    let forged = format!("{}.{}.{}", parts[0], B64.encode(claims.to_string()), parts[2]);
    assert_eq!(api.get("/v1/audit-events", Some(&forged)).await.0, StatusCode::UNAUTHORIZED);
    // `alg: none`, no signature.
    let none = format!("{}.{}.", B64.encode(r#"{"alg":"none","typ":"at+jwt"}"#), parts[1]);
    assert_eq!(api.get("/v1/memberships", Some(&none)).await.0, StatusCode::UNAUTHORIZED);
    // Expired and foreign-issuer claims, even with a well-formed header.
    let mut expired = claims.clone();
    expired["exp"] = json!(1_000);
    let expired = format!("{}.{}.{}", parts[0], B64.encode(expired.to_string()), parts[2]);
    assert_eq!(api.get("/v1/memberships", Some(&expired)).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.get("/v1/memberships", Some("not-a-token")).await.0, StatusCode::UNAUTHORIZED);

    // Refresh rotates; presenting the old refresh token again revokes the whole family.
    let first = pair["refresh_token"].as_str().expect("refresh").to_owned();
    let (status, second) = api.post("/v1/auth/refresh", None, &json!({"refresh_token": first})).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second = second["refresh_token"].as_str().expect("rotated").to_owned();
    assert_ne!(first, second);
    assert_eq!(api.post("/v1/auth/refresh", None, &json!({"refresh_token": first})).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.post("/v1/auth/refresh", None, &json!({"refresh_token": second})).await.0,
        StatusCode::UNAUTHORIZED,
        "reuse of a used token revoked its family"
    );

    // Logout revokes.
    let pair = api.login("coordination@id77.demo", DEMO_PASSWORD).await.expect("login");
    let refresh = pair["refresh_token"].as_str().expect("refresh").to_owned();
    let (status, _) = api.post("/v1/auth/logout", None, &json!({"refresh_token": refresh})).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(
        api.post("/v1/auth/refresh", None, &json!({"refresh_token": refresh})).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Wrong passwords are refused, and the audit log records them.
    assert_eq!(
        api.post("/v1/auth/token", None, &json!({"email": "coordination@id77.demo", "password": "nope-nope-nope"}))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let operator = api.access_token("operateur@id77.demo", DEMO_PASSWORD).await.expect("operator");
    let (status, audit) = api.get("/v1/audit-events?kind=login.failed", Some(&operator)).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    assert!(!audit["items"].as_array().map(Vec::is_empty).unwrap_or(true), "{audit}");
    a_dead_letter_shows_in_the_operators_view(&platform, &api, &operator).await;
    platform.stop().await;
}

/// `GET /v1/operations` (issue 21): a message that routing's consumer can never decode is dead-lettered, and the
/// operator sees it counted for that consumer, with every service's outbox read from its metrics endpoint.
async fn a_dead_letter_shows_in_the_operators_view(platform: &Platform, api: &Api, operator: &str) {
    use id77_proto::events::{IntegrationEvent, durables};
    let ns = id77_platform::Namespace::new(platform.prefix.clone());
    let (_client, js) = id77_platform::nats::connect(&platform.nats_url, "e2e-operations").await.expect("NATS");
    let subject = ns.subject(<id77_proto::billing::v1::QuoteAccepted as IntegrationEvent>::SUBJECT);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", uuid::Uuid::now_v7().to_string().as_str());
    // Not a protobuf message: undecodable, so rejected at once (no retries) onto id77.deadletter.routing-quotes.
    let ack = js.publish_with_headers(subject, headers, vec![0xff_u8; 8].into()).await.expect("publish");
    ack.await.expect("stored");
    let durable = durables::ROUTING_QUOTES.name;
    let body = eventually("the dead letter in /v1/operations", Duration::from_secs(30), || async {
        let (status, body) = api.get("/v1/operations", Some(operator)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let dead = body["consumers"]
            .as_array()
            .and_then(|list| list.iter().find(|c| c["durable"] == durable))
            .and_then(|c| c["dead_letters"].as_u64());
        (dead >= Some(1)).then_some(body)
    })
    .await;
    assert!(body["dead_letters_total"].as_u64() >= Some(1), "{body}");
    assert_eq!(body["jetstream"], "ok", "{body}");
    let outboxes = body["outboxes"].as_array().cloned().unwrap_or_default();
    assert_eq!(outboxes.len(), 5, "{body}");
    // Each service samples its outbox every 5 s: read within a few seconds of the start, then a count.
    assert!(outboxes.iter().all(|o| o["state"] == "ok" || o["state"] == "unreachable"), "{body}");
    let routing = body["consumers"].as_array().and_then(|l| l.iter().find(|c| c["durable"] == durable)).cloned();
    assert_eq!(routing.map(|c| c["state"].clone()), Some(json!("ok")), "{body}");
}
