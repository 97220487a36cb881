//! Notifications through the real binaries: live updates on `GET /v1/events` (server-sent events, each caller's
//! own only) and mails over SMTP to a real SMTP server (the harness's sink), honouring the users' preferences.
//!
//! A member submits a request with its stream open; the provider's agent, whose stream shows the new referral,
//! accepts it through the gateway; the member's stream shows the status change; the member posts a message with
//! an attachment and the provider answers: the member's stream shows the answer, another member's stream shows
//! nothing. The mails go to the right addresses (the member's users are told of the quote proposed to them), and
//! a user who turned message mails off still gets the status mails but no message mail. The agent is mailed the
//! new referral, and every notice is also in the caller's own list (`/v1/notifications`), which it marks read.

use std::time::Duration;

use id77_e2e::{Api, DEMO_PASSWORD, PORTAL_URL, Platform, SseEvent, eventually, onboard_member};
use reqwest::{Method, StatusCode};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_member_follows_its_request_live_and_by_mail() {
    let platform = Platform::start().await.expect("platform");
    let api = Api::new(&platform.gateway);
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator");
    let (member_a, admin_a) = onboard_member(&api, &coordinator, "217702844", "dgs@meaux.fr").await.expect("Meaux");
    let (_member_b, admin_b) = onboard_member(&api, &coordinator, "217702885", "dgs@melun.fr").await.expect("Melun");
    let invite = json!({"email": "urbanisme@meaux.fr", "display_name": "Urbanisme", "role": "member_user", "member_id": member_a});
    let (user_a, _) = api.invite_and_accept(&admin_a, &invite).await.expect("user of Meaux");

    // The user of Meaux wants no message mails; preferences are one's own, every kind on by default.
    let (status, prefs) = api.get("/v1/me/notification-preferences", Some(&user_a)).await;
    assert_eq!(status, StatusCode::OK, "{prefs}");
    assert_eq!(prefs, json!({"status_changed": true, "message_posted": true}));
    let (status, prefs) = api
        .call(Method::PUT, "/v1/me/notification-preferences", Some(&user_a), Some(&json!({"message_posted": false})))
        .await;
    assert_eq!(status, StatusCode::OK, "{prefs}");
    assert_eq!(prefs, json!({"status_changed": true, "message_posted": false}));
    let (status, problem) = api
        .call(Method::PUT, "/v1/me/notification-preferences", Some(&user_a), Some(&json!({"message_posted": "non"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, problem) =
        api.call(Method::PUT, "/v1/me/notification-preferences", Some(&user_a), Some(&json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    // The admin's own preferences are untouched.
    assert_eq!(api.get("/v1/me/notification-preferences", Some(&admin_a)).await.1["message_posted"], true);

    // A billed engineering offer of provider P; its agent answers through the gateway (no referral consumer).
    let (_, offers) = api.get("/v1/offers?category=integrated_engineering&limit=100", None).await;
    let offer =
        offers["items"].as_array().and_then(|o| o.iter().find(|o| o["billed"] == true).cloned()).expect("an offer");
    let provider = offer["provider_code"].as_str().expect("provider").to_owned();
    let agent_email = format!("agent.{provider}@id77.demo");
    let agent = api.access_token(&agent_email, DEMO_PASSWORD).await.expect("agent");

    // Streams open before anything happens.
    let mut stream_a = api.events(&admin_a).await.expect("Meaux's stream");
    let mut stream_b = api.events(&admin_b).await.expect("Melun's stream");
    let mut stream_agent = api.events(&agent).await.expect("the agent's stream");

    let body = json!({"offer_id": offer["id"], "subject": "Diagnostic voirie", "description": "Rue de la gare"});
    let request = eventually("submission", WAIT, || async {
        let (status, value) = api.post("/v1/requests", Some(&admin_a), &body).await;
        (status == StatusCode::CREATED).then_some(value)
    })
    .await;
    let request_id = request["id"].as_str().expect("request id").to_owned();
    let ours = |e: &SseEvent| e.data["request_id"] == request_id.as_str();

    // The provider's agent sees the referral arrive, and accepts it.
    let mut seen = Vec::new();
    let offered = stream_agent
        .wait_for(WAIT, &mut seen, |e| e.event == "referral.offered" && ours(e))
        .await
        .unwrap_or_else(|| panic!("no referral.offered on the agent's stream; saw {seen:?}"));
    let referral_id = offered.data["referral_id"].as_str().expect("referral id").to_owned();
    assert!(!offered.id.is_empty(), "events carry an id");
    let (status, referral) = api.post(&format!("/v1/referrals/{referral_id}/accept"), Some(&agent), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{referral}");

    // Meaux's stream: referred, then accepted.
    let mut seen = Vec::new();
    let accepted = stream_a
        .wait_for(WAIT, &mut seen, |e| e.event == "request.status_changed" && ours(e) && e.data["status"] == "accepted")
        .await
        .unwrap_or_else(|| panic!("no acceptance on Meaux's stream; saw {seen:?}"));
    assert_eq!(accepted.data["provider_code"], provider.as_str());
    assert!(seen.iter().any(|e| e.event == "request.status_changed" && e.data["status"] == "referred"), "{seen:?}");

    // Meaux posts a message with an attachment; the provider answers.
    let pdf: Vec<u8> = b"%PDF-1.7\n".iter().copied().chain((0..20_000u32).map(|i| (i % 251) as u8)).collect();
    let path = format!("/v1/requests/{request_id}/attachments?message=Le%20plan%20de%20la%20rue");
    let (status, posted) = api.upload(&path, Some(&admin_a), "application/pdf", "plan.pdf", pdf).await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    let (status, answer) = api
        .post(
            &format!("/v1/requests/{request_id}/messages"),
            Some(&agent),
            &json!({"body": "Bien reçu, nous passons jeudi."}),
        )
        .await;
    assert!(status.is_success(), "{status} {answer}");
    let answer_id = answer["id"].as_str().expect("message id").to_owned();

    // The agent's stream shows Meaux's message (with its attachment); Meaux's shows the answer.
    let mut seen = Vec::new();
    let from_member = stream_agent
        .wait_for(WAIT, &mut seen, |e| e.event == "message.posted" && ours(e) && e.data["attachment_count"] == 1)
        .await
        .unwrap_or_else(|| panic!("no message on the agent's stream; saw {seen:?}"));
    assert_eq!(from_member.data["author_role"], "member_admin");
    let mut seen = Vec::new();
    let from_agent = stream_a
        .wait_for(WAIT, &mut seen, |e| e.event == "message.posted" && e.data["message_id"] == answer_id.as_str())
        .await
        .unwrap_or_else(|| panic!("no answer on Meaux's stream; saw {seen:?}"));
    assert_eq!(from_agent.data["author_role"], "provider_agent");

    // Melun saw nothing of it (its stream is open and alive: it gets its own events only).
    let melun = stream_b.drain(Duration::from_secs(2)).await;
    assert!(melun.is_empty(), "Melun's stream got {melun:?}");

    // Mails: status mails to both users of Meaux, the answer to the admin only, Meaux's message to the agent.
    let link = format!("{PORTAL_URL}/demandes/{request_id}");
    let mail = &platform.mail;
    for address in ["dgs@meaux.fr", "urbanisme@meaux.fr"] {
        let accepted = mail.wait_for(address, "est acceptée", 1, WAIT).await;
        assert_eq!(accepted.len(), 1, "acceptance mail to {address}: {:?}", mail.mails_to(address));
        assert_eq!(accepted[0].subject(), "[ID 77] Votre demande « Diagnostic voirie » est acceptée");
        assert!(accepted[0].body().contains(&format!("Voir la demande : {link}")), "{}", accepted[0].body());
        assert_eq!(mail.wait_for(address, "est transmise", 1, WAIT).await.len(), 1, "referral mail to {address}");
        // The quote proposed on the acceptance waits for the member's answer (ADR 0013): its users are told.
        let proposed = mail.wait_for(address, "proposé pour votre demande « Diagnostic voirie »", 1, WAIT).await;
        assert_eq!(proposed.len(), 1, "quote mail to {address}: {:?}", mail.mails_to(address));
    }
    let answer_mails = mail.wait_for("dgs@meaux.fr", "Nouveau message", 1, WAIT).await;
    assert_eq!(answer_mails.len(), 1);
    assert!(answer_mails[0].body().contains("Bien reçu, nous passons jeudi."), "{}", answer_mails[0].body());
    let to_agent = mail.wait_for(&agent_email, "Nouveau message", 1, WAIT).await;
    assert_eq!(to_agent.len(), 1, "{:?}", mail.mails_to(&agent_email));
    assert!(to_agent[0].body().contains("(1 pièce jointe)"), "{}", to_agent[0].body());
    assert!(to_agent[0].body().contains(&link), "{}", to_agent[0].body());
    // Give a wrong mail time to show up, then check nobody got one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(mail.mails_to("urbanisme@meaux.fr").iter().all(|m| !m.subject().contains("Nouveau message")));
    assert_eq!(mail.mails_to("dgs@meaux.fr").iter().filter(|m| m.subject().contains("Nouveau message")).count(), 1);
    assert!(mail.mails_to("dgs@melun.fr").iter().all(|m| !m.subject().contains("Diagnostic voirie")));
    assert!(
        mail.mails_to(&agent_email)
            .iter()
            .all(|m| m.subject().contains("Nouveau message") || m.subject().contains("Nouvelle demande à traiter")),
        "agents get no status mails"
    );
    // The agent was told of the new referral (issue 21), with the link to it in the portal.
    let new_referral = mail.wait_for(&agent_email, "Nouvelle demande à traiter : « Diagnostic voirie »", 1, WAIT).await;
    assert_eq!(new_referral.len(), 1, "{:?}", mail.mails_to(&agent_email));
    let referral_link = format!("{PORTAL_URL}/orientations/{referral_id}");
    assert!(new_referral[0].body().contains(&referral_link), "{}", new_referral[0].body());
    assert!(new_referral[0].body().contains("Réponse attendue avant le"), "{}", new_referral[0].body());

    // The same notices in the portal: the agent's list, newest first, with the unread count; marking read.
    let (status, list) = api.get("/v1/notifications", Some(&agent)).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let kinds: Vec<&str> = items.iter().filter_map(|n| n["kind"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"message_posted"), "newest first: {kinds:?}");
    let offered_notice = items.iter().find(|n| n["kind"] == "referral_offered").expect("the referral notice").clone();
    assert_eq!(offered_notice["link_path"], format!("/orientations/{referral_id}").as_str());
    assert!(offered_notice["read_at"].is_null());
    let unread = list["unread_count"].as_u64().expect("unread count");
    assert_eq!(unread, items.len() as u64, "none read yet");
    let (_, count) = api.get("/v1/notifications?limit=0", Some(&agent)).await;
    assert_eq!((count["items"].as_array().map(Vec::len), count["unread_count"].as_u64()), (Some(0), Some(unread)));
    let notice_id = offered_notice["id"].as_str().expect("id").to_owned();
    let read_path = format!("/v1/notifications/{notice_id}/read");
    let (status, _) = api.post(&read_path, Some(&admin_a), &json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another user's notification");
    let (status, left) = api.post(&read_path, Some(&agent), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{left}");
    assert_eq!(left["unread_count"].as_u64(), Some(unread - 1));
    let (_, left) = api.post("/v1/notifications/read-all", Some(&agent), &json!({})).await;
    assert_eq!(left["unread_count"], 0);
    // Meaux's admin has its own: the status changes of its request.
    let (_, mine) = api.get("/v1/notifications", Some(&admin_a)).await;
    assert!(mine["items"].as_array().is_some_and(|i| i.iter().any(|n| n["kind"] == "status_changed")), "{mine}");
    // Never mails from the author to itself: Meaux's admin got no mail about its own message.
    assert!(mail.mails_to("dgs@meaux.fr").iter().all(|m| !m.body().contains("Le plan de la rue")));

    // The operator has no stream; no token, no stream.
    let operator = api.access_token("operateur@id77.demo", DEMO_PASSWORD).await.expect("operator");
    assert!(api.events(&operator).await.is_err());
    let (status, _) = api.get("/v1/events", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    drop((stream_a, stream_b, stream_agent));
    platform.stop().await;
}
