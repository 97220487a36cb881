//! The request lifecycle through the gateway and the real binaries: a commune submits a request (idempotently)
//! for a billed offer, the provider's own consumer accepts it, the member's admin accepts the quote (before that
//! the provider's progress is not applied, ADR 0013), the provider reports progress and completes it; the
//! member rates the service, the coordinator reads the statistics and closes the request. Every history step
//! names who acted. An open orientation request waits in the triage queue until the coordinator places it (a
//! step in the coordinator's name); cancelled, its referral is withdrawn and the provider is told.

use std::time::Duration;

use id77_e2e::{Api, DEMO_PASSWORD, Platform, accept_quote, eventually};
use id77_referral_consumer::{Incoming, Notice, ReferralConsumer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

async fn status_of(api: &Api, token: &str, id: &str, status: &str) -> Value {
    let path = format!("/v1/requests/{id}");
    eventually(&format!("request {id} to become {status}"), WAIT, || async {
        let (code, value) = api.get(&path, Some(token)).await;
        (code == StatusCode::OK && value["status"] == status).then_some(value)
    })
    .await
}

async fn consumer(platform: &Platform, provider: &str) -> ReferralConsumer {
    let mut config = id77_referral_consumer::Config::new(id77_platform::testing::nats_url(), provider.to_owned())
        .expect("consumer config");
    config.prefix = platform.prefix.clone();
    ReferralConsumer::connect(config).await.expect("consumer connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_carried_to_completion_rated_counted_and_an_open_one_triaged_then_cancelled() {
    let mut platform = Platform::start().await.expect("platform starts");
    let api = Api::new(&platform.gateway);
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator");

    // Meaux joins; its admin logs in.
    let apply = json!({"siren": "217702844", "contact_name": "DGS", "contact_email": "dgs@meaux.fr"});
    let (status, member) = api.post("/v1/memberships", None, &apply).await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    let member_id = member["id"].as_str().expect("member id").to_owned();
    let (status, body) =
        api.post(&format!("/v1/memberships/{member_id}/approve"), Some(&coordinator), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let invite =
        json!({"email": "dgs@meaux.fr", "display_name": "DGS", "role": "member_admin", "member_id": member_id});
    let (member_token, _) = api.invite_and_accept(&coordinator, &invite).await.expect("member admin");

    // Two integrated engineering offers of two providers, the first one billed.
    let (_, offers) = api.get("/v1/offers?category=integrated_engineering&limit=100", None).await;
    let items = offers["items"].as_array().cloned().unwrap_or_default();
    let first = items.iter().find(|o| o["billed"] == true).cloned().expect("a billed engineering offer");
    let provider = first["provider_code"].as_str().expect("provider").to_owned();
    let other =
        items.iter().find(|o| o["provider_code"] != provider.as_str()).cloned().expect("another provider's offer");
    let other_provider = other["provider_code"].as_str().expect("provider").to_owned();
    let (offer_id, other_offer) =
        (first["id"].as_str().expect("id").to_owned(), other["id"].as_str().expect("id").to_owned());
    platform.start_referral_consumer(&provider, &["--rule", "accept-all"]).expect("referral consumer");

    // 1. Submit with an Idempotency-Key until requests knows the member (the site defaults to Meaux, 77284).
    let body = json!({"offer_id": offer_id, "subject": "Requalification de la place Henri IV",
                      "description": "Programme et chiffrage"});
    let submit = |body: Value, key: &'static str| {
        let (http, url, token) = (api.http.clone(), format!("{}/v1/requests", api.base), member_token.clone());
        async move {
            let response =
                http.post(url).bearer_auth(token).header("Idempotency-Key", key).json(&body).send().await.ok()?;
            let status = response.status();
            Some((status, response.json::<Value>().await.unwrap_or_default()))
        }
    };
    let request = eventually("the submission", WAIT, || async {
        match submit(body.clone(), "lifecycle-1").await {
            Some((StatusCode::CREATED, value)) => Some(value),
            Some((StatusCode::CONFLICT | StatusCode::NOT_FOUND, _)) | None => None,
            Some((other, value)) => panic!("unexpected {other}: {value}"),
        }
    })
    .await;
    let request_id = request["id"].as_str().expect("request id").to_owned();
    assert_eq!(
        (request["kind"].as_str(), request["site"]["commune_insee"].as_str()),
        (Some("offer"), Some("77284")),
        "{request}"
    );
    assert!(request["offer_version"].as_i64().unwrap_or(0) >= 1, "{request}");
    let again = submit(body.clone(), "lifecycle-1").await.expect("retry");
    assert_eq!(
        (again.0.is_success(), again.1["id"].as_str()),
        (true, Some(request_id.as_str())),
        "same key, same body"
    );
    let changed =
        submit(json!({"offer_id": offer_id, "subject": "Autre chose"}), "lifecycle-1").await.expect("conflict");
    assert_eq!(changed.0, StatusCode::CONFLICT, "{}", changed.1);
    assert!(changed.1["type"].as_str().unwrap_or("").ends_with("idempotency-key-reused"), "{}", changed.1);

    // 2. The provider's consumer accepts; the quote waits for the member's agreement, and until then the
    // provider's progress is not applied. Once the member's admin accepts the quote, the provider reports
    // progress, then the work done.
    status_of(&api, &member_token, &request_id, "accepted").await;
    let (_, referrals) = api.get(&format!("/v1/referrals?request_id={request_id}"), Some(&coordinator)).await;
    let referral_id = referrals["items"][0]["id"].as_str().expect("referral").to_owned();
    assert_eq!(referrals["items"][0]["agreement"], "awaiting_member", "{referrals}");
    let partner = consumer(&platform, &provider).await;
    // (Routing dead-letters it: a report the provider sends again must have a new sequence, JetStream having
    // seen this one's message id.)
    partner.report_progress(&referral_id, 1, "Visite planifiée", 10).await.expect("progress sent");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, early) = api.get(&format!("/v1/requests/{request_id}"), Some(&member_token)).await;
    assert_eq!(early["status"], "accepted", "no progress before the member's agreement: {early}");
    let (_, referral) = api.get(&format!("/v1/referrals/{referral_id}"), Some(&coordinator)).await;
    assert!(referral["progress"].is_null() && referral["agreement"] == "awaiting_member", "{referral}");
    let quote =
        accept_quote(&api, &member_token, &coordinator, &request_id).await.expect("the member accepts the quote");
    assert_eq!(quote["referral_id"], referral_id.as_str(), "{quote}");
    partner.report_progress(&referral_id, 2, "Diagnostic en cours", 40).await.expect("progress");
    status_of(&api, &member_token, &request_id, "in_progress").await;
    partner.complete(&referral_id).await.expect("completion");
    partner.close().await;
    let done = status_of(&api, &member_token, &request_id, "completed").await;
    let path: Vec<&str> =
        done["history"].as_array().map(|h| h.iter().filter_map(|s| s["status"].as_str()).collect()).unwrap_or_default();
    assert_eq!(path, vec!["submitted", "referred", "accepted", "in_progress", "completed"], "{done}");
    // Who: the member's admin submitted (by its display name); routing referred it by itself; the provider's
    // connector on its NATS subject accepted, reported progress and completed.
    let actor = |i: usize| {
        let step = &done["history"][i];
        (step["actor_role"].as_str().map(str::to_owned), step["actor_name"].as_str().map(str::to_owned))
    };
    let connector = Some(format!("connecteur {provider}"));
    assert_eq!(actor(0), (Some("member_admin".to_owned()), Some("DGS".to_owned())), "{done}");
    assert_eq!(actor(1).0.as_deref(), Some("system"), "{done}");
    for i in 2..=4 {
        assert_eq!(actor(i), (Some("provider_consumer".to_owned()), connector.clone()), "step {i}: {done}");
    }
    assert!(done["first_answered_at"].is_string() && done["completed_at"].is_string(), "{done}");

    // 3. The member rates it (and may revise until it is closed); the dashboard counts it.
    let feedback = format!("/v1/requests/{request_id}/feedback");
    let (status, rated) = api
        .call(Method::PUT, &feedback, Some(&member_token), Some(&json!({"rating": 5, "comment": "Très utile"})))
        .await;
    assert_eq!(status, StatusCode::OK, "{rated}");
    assert_eq!(rated["feedback"]["rating"], 5);
    let (status, summary) = api.get("/v1/requests/summary", Some(&member_token)).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!((summary["counts"]["completed"].as_u64(), summary["total"].as_u64()), (Some(1), Some(1)), "{summary}");
    let (_, listed) =
        api.get("/v1/requests?status=completed&category=integrated_engineering", Some(&member_token)).await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1), "{listed}");

    // 4. The coordinator's statistics for today.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (status, stats) =
        api.get(&format!("/v1/statistics/requests?from={today}&to={today}"), Some(&coordinator)).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    let count = |list: &str, key: &str| {
        stats[list].as_array().and_then(|l| l.iter().find(|k| k["key"] == key)).and_then(|k| k["count"].as_u64())
    };
    assert_eq!(count("by_status", "completed"), Some(1), "{stats}");
    assert_eq!(count("by_provider", &provider), Some(1), "{stats}");
    assert_eq!(count("by_arrondissement", "771"), Some(1), "{stats}");
    assert_eq!(count("by_epci", "200072130"), Some(1), "{stats}");
    assert_eq!(stats["time_to_completion"]["count"], 1, "{stats}");
    assert!(stats["time_to_first_answer"]["median_seconds"].as_f64().is_some_and(|s| s >= 0.0), "{stats}");
    assert_eq!(
        (stats["satisfaction"]["count"].as_u64(), stats["satisfaction"]["mean"].as_f64()),
        (Some(1), Some(5.0)),
        "{stats}"
    );
    assert_eq!(
        api.get(&format!("/v1/statistics/requests?from={today}&to={today}"), Some(&member_token)).await.0,
        StatusCode::FORBIDDEN
    );

    // 5. The coordinator closes it: feedback is frozen.
    let (status, closed) =
        api.post(&format!("/v1/requests/{request_id}/close"), Some(&coordinator), &json!({"reason": "soldé"})).await;
    assert_eq!((status, closed["status"].as_str()), (StatusCode::OK, Some("closed")), "{closed}");
    let (status, frozen) = api.call(Method::PUT, &feedback, Some(&member_token), Some(&json!({"rating": 1}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{frozen}");
    assert!(frozen["type"].as_str().unwrap_or("").ends_with("feedback-not-open"), "{frozen}");

    // 6. An open orientation request waits in the coordinator's triage queue.
    let open = json!({"kind": "orientation", "subject": "Rénover l'école Jean Macé",
                      "description": "Nous voulons rénover l'école : par où commencer ?"});
    let (status, oriented) = api.post("/v1/requests", Some(&member_token), &open).await;
    assert_eq!(status, StatusCode::CREATED, "{oriented}");
    assert_eq!((oriented["status"].as_str(), oriented["offer_id"].as_str()), (Some("triage"), None), "{oriented}");
    let open_id = oriented["id"].as_str().expect("id").to_owned();
    eventually("the open request in the triage queue", WAIT, || async {
        let (_, queue) = api.get("/v1/triage", Some(&coordinator)).await;
        queue["items"].as_array().and_then(|q| q.iter().find(|i| i["request_id"] == open_id.as_str()).cloned())
    })
    .await;
    assert_eq!(api.get("/v1/triage", Some(&member_token)).await.0, StatusCode::FORBIDDEN);

    // The coordinator attaches an offer and its provider: routing refers it, the request takes the offer.
    let assign = json!({"offer_id": other_offer, "provider_code": other_provider, "note": "étude de programmation"});
    let (status, placed) = api.post(&format!("/v1/triage/{open_id}/assign"), Some(&coordinator), &assign).await;
    assert_eq!(status, StatusCode::OK, "{placed}");
    assert_eq!(placed["provider_code"], other_provider.as_str(), "{placed}");
    let placed_id = placed["id"].as_str().expect("referral").to_owned();
    let referred = status_of(&api, &member_token, &open_id, "referred").await;
    assert_eq!(referred["offer_id"], other_offer.as_str(), "{referred}");
    // The placement is the coordinator's act, in its name (not the platform's).
    let (_, me) = api.get("/v1/me", Some(&coordinator)).await;
    let (coordinator_id, coordinator_name) = (
        me["user"]["id"].as_str().expect("id").to_owned(),
        me["user"]["display_name"].as_str().expect("name").to_owned(),
    );
    let placement = referred["history"].as_array().and_then(|h| h.last()).cloned().unwrap_or_default();
    assert_eq!(
        (placement["status"].as_str(), placement["actor_role"].as_str(), placement["actor_name"].as_str()),
        (Some("referred"), Some("coordinator"), Some(coordinator_name.as_str())),
        "{referred}"
    );
    assert_eq!(placement["actor_user_id"], coordinator_id.as_str(), "{referred}");
    let (status, _) = api.post(&format!("/v1/triage/{open_id}/assign"), Some(&coordinator), &assign).await;
    // Placed already: a conflict of state (409), not an unknown request (issue 20).
    assert_eq!(status, StatusCode::CONFLICT, "no longer in the queue");

    // 7. The member cancels it: routing withdraws the referral and the provider hears of it on its subject.
    let (status, cancelled) = api
        .post(&format!("/v1/requests/{open_id}/cancel"), Some(&member_token), &json!({"reason": "projet reporté"}))
        .await;
    assert_eq!((status, cancelled["status"].as_str()), (StatusCode::OK, Some("cancelled")), "{cancelled}");
    let (status, again) = api.post(&format!("/v1/requests/{open_id}/cancel"), Some(&member_token), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert!(again["type"].as_str().unwrap_or("").ends_with("invalid-transition"), "{again}");
    eventually("the referral to be withdrawn", WAIT, || async {
        let (_, referral) = api.get(&format!("/v1/referrals/{placed_id}"), Some(&coordinator)).await;
        (referral["status"] == "withdrawn").then_some(())
    })
    .await;
    let them = consumer(&platform, &other_provider).await;
    let told = tokio::time::timeout(WAIT, async {
        let mut referrals = them.referrals().await.expect("referrals");
        while let Some(item) = referrals.next_item().await {
            match item {
                Incoming::Notice(Notice::Withdrawn(w), _) if w.referral_id == placed_id => return Some(w.reason),
                Incoming::Offered(pending) => pending.later(Duration::from_secs(60)).await,
                Incoming::Notice(..) => {}
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    assert_eq!(told.as_deref(), Some("request cancelled: projet reporté"));
    them.close().await;
    platform.stop().await;
}
