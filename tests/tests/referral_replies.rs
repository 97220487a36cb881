//! A provider's agent answers referrals through the gateway (no referral consumer running): refusals for the
//! wrong caller or the wrong state, accept → quote proposed to the member (progress and completion refused until
//! the member's admin accepts it, ADR 0013), progress, complete → invoice; a decline with its reason re-routes
//! the request.

use std::time::Duration;

use id77_e2e::{Api, DEMO_PASSWORD, Platform, accept_quote, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn referral_of(api: &Api, coordinator: &str, request: &str) -> Value {
    eventually("the referral", Duration::from_secs(30), || async {
        let (_, page) = api.get(&format!("/v1/referrals?request_id={request}"), Some(coordinator)).await;
        page["items"].as_array().and_then(|i| i.iter().find(|r| r["status"] == "offered").cloned())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_agent_accepts_reports_progress_completes_and_declines_through_the_api() {
    let platform = Platform::start().await.expect("platform starts");
    let api = Api::new(&platform.gateway);
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator");

    // Meaux joins; its admin logs in.
    let apply = json!({"siren": "217702844", "contact_name": "DGS", "contact_email": "dgs@meaux.fr"});
    let (status, member) = api.post("/v1/memberships", None, &apply).await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    let member_id = member["id"].as_str().expect("id").to_owned();
    let (status, _) = api.post(&format!("/v1/memberships/{member_id}/approve"), Some(&coordinator), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (admin, _) = api
        .invite_and_accept(
            &coordinator,
            &json!({"email": "dgs@meaux.fr", "display_name": "DGS", "role": "member_admin", "member_id": member_id}),
        )
        .await
        .expect("admin");

    // A billed offer of provider P; Q is another provider.
    let (_, offers) = api.get("/v1/offers?category=integrated_engineering&limit=100", None).await;
    let offer = offers["items"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["billed"] == true).cloned())
        .expect("a billed offer");
    let provider_p = offer["provider_code"].as_str().expect("provider").to_owned();
    let provider_q =
        id77_e2e::provider_codes().expect("seed").into_iter().find(|c| *c != provider_p).expect("another provider");
    let agent_p = api.access_token(&format!("agent.{provider_p}@id77.demo"), DEMO_PASSWORD).await.expect("agent P");
    let agent_q = api.access_token(&format!("agent.{provider_q}@id77.demo"), DEMO_PASSWORD).await.expect("agent Q");

    let submit = |subject: &'static str| {
        let body = json!({"offer_id": offer["id"], "subject": subject, "description": "Diagnostic"});
        let (api, admin) = (api.clone(), admin.clone());
        async move {
            eventually("the submission", Duration::from_secs(30), || async {
                let (status, value) = api.post("/v1/requests", Some(&admin), &body).await;
                (status == StatusCode::CREATED).then_some(value)
            })
            .await["id"]
                .as_str()
                .expect("request id")
                .to_owned()
        }
    };

    // 1. The first request's referral waits for P's answer.
    let request = submit("Réfection de voirie").await;
    let referral = referral_of(&api, &coordinator, &request).await;
    let id = referral["id"].as_str().expect("referral id").to_owned();
    let url = |action: &str| format!("/v1/referrals/{id}/{action}");

    // Wrong callers and wrong states are refused, with nothing changed.
    assert_eq!(api.post(&url("accept"), Some(&agent_q), &json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.post(&url("accept"), Some(&coordinator), &json!({})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(api.post(&url("accept"), Some(&admin), &json!({})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(api.post(&url("accept"), None, &json!({})).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(api.post(&url("complete"), Some(&agent_p), &json!({})).await.0, StatusCode::CONFLICT);
    let progress = json!({"note": "Visite de terrain planifiée", "percent": 10});
    assert_eq!(api.post(&url("progress"), Some(&agent_p), &progress).await.0, StatusCode::CONFLICT);
    let (status, problem) = api.post(&url("decline"), Some(&agent_p), &json!({"reason": "  "})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "reason", "{problem}");
    let (status, problem) = api.post(&url("progress"), Some(&agent_p), &json!({"note": "x", "percent": 101})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");

    // 2. P's agent accepts: the request is accepted and a quote issued.
    let (status, accepted) = api.post(&url("accept"), Some(&agent_p), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(api.post(&url("accept"), Some(&agent_p), &json!({})).await.0, StatusCode::CONFLICT, "once");
    let accepted_request = eventually("the request to be accepted", Duration::from_secs(30), || async {
        let (_, r) = api.get(&format!("/v1/requests/{request}"), Some(&admin)).await;
        (r["status"] == "accepted").then_some(r)
    })
    .await;
    // Its history names the agent who accepted, by its display name.
    let agent_name =
        api.get("/v1/me", Some(&agent_p)).await.1["user"]["display_name"].as_str().unwrap_or("?").to_owned();
    let step = accepted_request["history"].as_array().and_then(|h| h.last()).cloned().unwrap_or_default();
    assert_eq!(
        (step["status"].as_str(), step["actor_role"].as_str(), step["actor_name"].as_str()),
        (Some("accepted"), Some("provider_agent"), Some(agent_name.as_str())),
        "{accepted_request}"
    );
    let quote = eventually("the quote", Duration::from_secs(30), || async {
        let (_, q) = api.get(&format!("/v1/quotes?request_id={request}"), Some(&admin)).await;
        q["items"].as_array().and_then(|i| i.first().cloned())
    })
    .await;
    assert_eq!(quote["status"], "proposed", "{quote}");

    // 3. Until the member's admin accepts the quote, the provider may neither report progress nor complete.
    let (status, waiting) = api.get(&format!("/v1/referrals/{id}"), Some(&agent_p)).await;
    assert_eq!((status, waiting["agreement"].as_str()), (StatusCode::OK, Some("awaiting_member")), "{waiting}");
    for action in ["progress", "complete"] {
        let body = if action == "progress" { progress.clone() } else { json!({}) };
        let (status, problem) = api.post(&url(action), Some(&agent_p), &body).await;
        assert_eq!(status, StatusCode::CONFLICT, "{action}: {problem}");
        assert!(problem["type"].as_str().unwrap_or_default().ends_with("quote-not-accepted"), "{action}: {problem}");
    }
    // The provider's agent does not accept its own quote for the member.
    let accept_quote_path = format!("/v1/quotes/{}/accept", quote["id"].as_str().expect("quote id"));
    let signed = json!({"signatory_name": "Le maire"});
    assert_eq!(api.post(&accept_quote_path, Some(&agent_p), &signed).await.0, StatusCode::FORBIDDEN);
    let agreed = accept_quote(&api, &admin, &agent_p, &request).await.expect("the member accepts the quote");
    assert_eq!((agreed["status"].as_str(), agreed["signatory_name"].as_str()), (Some("accepted"), Some("Le maire")));

    // Progress, then completion: the invoice follows.
    let (status, reported) = api.post(&url("progress"), Some(&agent_p), &progress).await;
    assert_eq!(status, StatusCode::OK, "{reported}");
    assert_eq!(reported["progress"], "Visite de terrain planifiée");
    let (status, completed) = api.post(&url("complete"), Some(&agent_p), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{completed}");
    assert!(completed["completed_at"].is_string(), "{completed}");
    assert_eq!(api.post(&url("complete"), Some(&agent_p), &json!({})).await.0, StatusCode::CONFLICT, "once");
    let invoice = eventually("the invoice", Duration::from_secs(30), || async {
        let (_, i) = api.get(&format!("/v1/invoices?request_id={request}"), Some(&admin)).await;
        i["items"].as_array().and_then(|i| i.first().cloned())
    })
    .await;
    assert!(invoice["total_gross_cents"].as_i64().unwrap_or(0) > 0, "{invoice}");
    assert_eq!(invoice["quote_number"], quote["number"], "{invoice}");

    // 4. A second request: P's agent declines it with a reason; it is re-routed (or queued for triage).
    let second = submit("Étude de stationnement").await;
    let referral = referral_of(&api, &coordinator, &second).await;
    let second_id = referral["id"].as_str().expect("referral id").to_owned();
    let reason = json!({"reason": "Plan de charge complet ce trimestre"});
    let (status, declined) = api.post(&format!("/v1/referrals/{second_id}/decline"), Some(&agent_p), &reason).await;
    assert_eq!(status, StatusCode::OK, "{declined}");
    assert_eq!(
        (declined["status"].as_str(), declined["reason"].as_str()),
        (Some("declined"), Some("Plan de charge complet ce trimestre"))
    );
    let (_, page) = api.get(&format!("/v1/referrals?request_id={second}"), Some(&coordinator)).await;
    let answered: Vec<&str> =
        page["items"].as_array().map(|i| i.iter().filter_map(|r| r["status"].as_str()).collect()).unwrap_or_default();
    assert!(answered.contains(&"declined"), "{page}");
    platform.stop().await;
}
