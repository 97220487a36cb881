//! A mobile app syncs its lists through the gateway (docs/api.md « Lists and paging »): it keeps the `Date` of an
//! answer, and at its next sync `?updated_since=` that instant gives only what was created or changed after it —
//! the request a provider accepted and its referral, not the request nobody touched; a later instant gives
//! nothing; a malformed instant is a 400 naming the field.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use id77_e2e::{Api, DEMO_PASSWORD, Platform, eventually, onboard_member};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The ids of a page's items.
fn ids(page: &Value) -> Vec<String> {
    page["items"].as_array().into_iter().flatten().filter_map(|i| i["id"].as_str().map(str::to_owned)).collect()
}

fn query(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The server's `Date` on an answer to `path` (what a client keeps as its last sync time).
async fn server_date(api: &Api, path: &str, token: &str) -> DateTime<Utc> {
    let response =
        api.http.get(format!("{}{path}", api.base)).bearer_auth(token).send().await.expect("the gateway answers");
    assert_eq!(response.status(), StatusCode::OK);
    let date = response.headers().get("date").and_then(|d| d.to_str().ok()).expect("a Date header").to_owned();
    DateTime::parse_from_rfc2822(&date).unwrap_or_else(|e| panic!("Date {date}: {e}")).with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_syncs_the_requests_and_referrals_changed_since_its_last_sync() {
    let platform = Platform::start().await.expect("platform starts");
    let api = Api::new(&platform.gateway);
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator");
    let (_, admin) = onboard_member(&api, &coordinator, "217702844", "dgs@meaux.fr").await.expect("Meaux joins");
    let (_, offers) = api.get("/v1/offers?category=integrated_engineering&limit=100", None).await;
    let offer = offers["items"].as_array().and_then(|o| o.first().cloned()).expect("an offer");
    let provider = offer["provider_code"].as_str().expect("provider").to_owned();
    let agent = api.access_token(&format!("agent.{provider}@id77.demo"), DEMO_PASSWORD).await.expect("agent");

    // Two requests, each referred to the provider.
    let mut requests = Vec::new();
    let mut referrals = Vec::new();
    for subject in ["Réfection de voirie", "Aménagement de la place"] {
        let body = json!({"offer_id": offer["id"], "subject": subject, "description": "Diagnostic"});
        let request = eventually("the submission", Duration::from_secs(30), || async {
            let (status, value) = api.post("/v1/requests", Some(&admin), &body).await;
            (status == StatusCode::CREATED).then(|| value["id"].as_str().map(str::to_owned)).flatten()
        })
        .await;
        let referral = eventually("the referral", Duration::from_secs(30), || async {
            let (_, page) = api.get(&format!("/v1/referrals?request_id={request}"), Some(&coordinator)).await;
            page["items"].as_array().and_then(|i| i.iter().find(|r| r["status"] == "offered").cloned())
        })
        .await;
        eventually("the request to be referred", Duration::from_secs(30), || async {
            let (_, r) = api.get(&format!("/v1/requests/{request}"), Some(&admin)).await;
            (r["status"] == "referred").then_some(())
        })
        .await;
        requests.push(request);
        referrals.push(referral["id"].as_str().expect("referral id").to_owned());
    }

    // The app syncs: it keeps the answer's Date (to the second, so it waits for the second to turn).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let noted = server_date(&api, "/v1/requests", &admin).await;
    let (status, everything) = api.get(&format!("/v1/requests?updated_since={}", query(noted)), Some(&admin)).await;
    assert_eq!((status, ids(&everything)), (StatusCode::OK, Vec::<String>::new()), "nothing changed yet");

    // The provider accepts the first request's referral.
    let (status, accepted) =
        api.post(&format!("/v1/referrals/{}/accept", referrals[0]), Some(&agent), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    eventually("the request to be accepted", Duration::from_secs(30), || async {
        let (_, r) = api.get(&format!("/v1/requests/{}", requests[0]), Some(&admin)).await;
        (r["status"] == "accepted").then_some(())
    })
    .await;

    // The next sync lists the changed request and referral only, for each of their readers.
    let since = format!("updated_since={}", query(noted));
    let (status, page) = api.get(&format!("/v1/requests?{since}"), Some(&admin)).await;
    assert_eq!((status, ids(&page)), (StatusCode::OK, vec![requests[0].clone()]), "{page}");
    let (status, page) = api.get(&format!("/v1/requests?{since}&limit=1"), Some(&coordinator)).await;
    assert_eq!((status, ids(&page)), (StatusCode::OK, vec![requests[0].clone()]), "{page}");
    for token in [&agent, &coordinator] {
        let (status, page) = api.get(&format!("/v1/referrals?{since}"), Some(token)).await;
        assert_eq!((status, ids(&page)), (StatusCode::OK, vec![referrals[0].clone()]), "{page}");
    }
    // A later instant: nothing (once the acceptance's consequences are all written).
    eventually("a sync after the last change to be empty", Duration::from_secs(30), || async {
        let later = format!("updated_since={}", query(Utc::now()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, requests) = api.get(&format!("/v1/requests?{later}"), Some(&admin)).await;
        let (_, referrals) = api.get(&format!("/v1/referrals?{later}"), Some(&coordinator)).await;
        (requests["items"].as_array().is_some_and(Vec::is_empty)
            && referrals["items"].as_array().is_some_and(Vec::is_empty))
        .then_some(())
    })
    .await;

    // A malformed instant, or a date alone: 400 with the field.
    for bad in ["hier", "2026-12-06", "2026-12-06T10:00:00"] {
        for path in ["/v1/requests", "/v1/referrals", "/v1/quotes", "/v1/invoices"] {
            let (status, problem) = api.get(&format!("{path}?updated_since={bad}"), Some(&coordinator)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {bad}: {problem}");
            assert_eq!(problem["errors"][0]["field"], "updated_since", "{path} {bad}: {problem}");
        }
    }
    let messages = format!("/v1/requests/{}/messages?updated_since=hier", requests[0]);
    assert_eq!(api.get(&messages, Some(&admin)).await.0, StatusCode::BAD_REQUEST);
    platform.stop().await;
}
