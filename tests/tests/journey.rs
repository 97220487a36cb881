//! One request's whole journey through the real binaries: a real commune of Seine-et-Marne joins, files a
//! request for a billed offer, the provider's own consumer accepts it, and a quote is issued.

use std::time::{Duration, Instant};

use id77_e2e::Platform;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};

const DEV: &str = "X-Id77-Dev-Identity";

async fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// Polls `probe` until it returns `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commune_joins_files_a_request_and_gets_a_quote() {
    let mut platform = Platform::start().await.expect("platform starts");
    let gw = platform.gateway.clone();
    let http = Client::new();

    // 1. Find a real commune of 77 in the directory.
    let (status, found) = json_of(
        http.get(format!("{gw}/v1/collectivities"))
            .query(&[("q", "meaux"), ("kind", "commune")])
            .send()
            .await
            .expect("search"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let meaux = found["items"]
        .as_array()
        .and_then(|items| items.iter().find(|c| c["insee_code"] == "77284"))
        .cloned()
        .unwrap_or_else(|| panic!("Meaux (77284) not in the directory: {found}"));
    assert_eq!(meaux["siren"], "217702844");
    assert_eq!(meaux["name"], "Meaux");
    assert!(meaux["population"].as_i64().unwrap_or(0) > 50_000);

    // 2. Apply for membership.
    let (status, member) = json_of(
        http.post(format!("{gw}/v1/memberships"))
            .json(
                &json!({"siren": "217702844", "contact_name": "Secrétariat général", "contact_email": "dgs@meaux.fr"}),
            )
            .send()
            .await
            .expect("apply"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(member["status"], "pending");
    let member_id = member["id"].as_str().expect("member id").to_owned();

    // Applying twice is refused with a typed problem.
    let (status, problem) = json_of(
        http.post(format!("{gw}/v1/memberships"))
            .json(&json!({"siren": "217702844", "contact_name": "Autre", "contact_email": "x@meaux.fr"}))
            .send()
            .await
            .expect("apply again"),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(problem["type"].as_str().unwrap_or("").ends_with("already-member"), "{problem}");

    // 3. A member cannot approve itself; the coordinator approves.
    let me = format!("member:{member_id}");
    let status = http
        .post(format!("{gw}/v1/memberships/{member_id}/approve"))
        .header(DEV, &me)
        .send()
        .await
        .expect("self-approve")
        .status();
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, approved) = json_of(
        http.post(format!("{gw}/v1/memberships/{member_id}/approve"))
            .header(DEV, "coordinator")
            .send()
            .await
            .expect("approve"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["status"], "active");

    // 4. Browse the catalogue and pick a billed integrated engineering offer.
    let (status, offers) = json_of(
        http.get(format!("{gw}/v1/offers"))
            .query(&[("category", "integrated_engineering"), ("limit", "100")])
            .send()
            .await
            .expect("offers"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{offers}");
    let offer = offers["items"]
        .as_array()
        .and_then(|items| items.iter().find(|o| o["billed"] == true))
        .cloned()
        .unwrap_or_else(|| panic!("no billed integrated engineering offer: {offers}"));
    assert_eq!(offer["category"], "integrated_engineering");
    let offer_id = offer["id"].as_str().expect("offer id").to_owned();
    let provider = offer["provider_code"].as_str().expect("provider").to_owned();
    let price = offer["price_cents"].as_i64().expect("price");
    assert!(price > 0);

    // The provider runs its own referral consumer, accepting everything.
    platform.start_referral_consumer(&provider, &["--rule", "accept-all"]).expect("referral consumer");

    // 5. Submit a request. The requests service learns of the approval and the offer from events, so it may
    //    answer "not active yet" for a moment: the client retries with the same Idempotency-Key.
    let body = json!({"offer_id": offer_id, "subject": "Réfection de la voirie du centre-ville",
                      "description": "Diagnostic et programme de travaux pour la rue du Faubourg Saint-Nicolas."});
    let request = eventually("the request to be accepted for submission", Duration::from_secs(30), || {
        let http = http.clone();
        let (url, me, body) = (format!("{gw}/v1/requests"), me.clone(), body.clone());
        async move {
            let (status, value) = json_of(
                http.post(url).header(DEV, me).header("Idempotency-Key", "journey-1").json(&body).send().await.ok()?,
            )
            .await;
            match status {
                StatusCode::CREATED => Some(value),
                StatusCode::CONFLICT | StatusCode::NOT_FOUND => None,
                other => panic!("unexpected {other}: {value}"),
            }
        }
    })
    .await;
    let request_id = request["id"].as_str().expect("request id").to_owned();
    assert_eq!(request["member_id"], member_id.as_str());

    // The same key returns the same request, not a second one.
    let (status, again) = json_of(
        http.post(format!("{gw}/v1/requests"))
            .header(DEV, &me)
            .header("Idempotency-Key", "journey-1")
            .json(&body)
            .send()
            .await
            .expect("resubmit"),
    )
    .await;
    assert!(status.is_success(), "{again}");
    assert_eq!(again["id"], request_id.as_str());

    // 6. The provider's consumer accepts; the request becomes accepted.
    let accepted = eventually("the request to become accepted", Duration::from_secs(30), || {
        let (http, url, me) = (http.clone(), format!("{gw}/v1/requests/{request_id}"), me.clone());
        async move {
            let (status, value) = json_of(http.get(url).header(DEV, me).send().await.ok()?).await;
            (status == StatusCode::OK && value["status"] == "accepted").then_some(value)
        }
    })
    .await;
    assert_eq!(accepted["provider_code"], provider.as_str());
    let steps: Vec<&str> = accepted["history"]
        .as_array()
        .map(|h| h.iter().filter_map(|s| s["status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(steps.first(), Some(&"submitted"), "{accepted}");
    assert_eq!(steps.last(), Some(&"accepted"), "{accepted}");

    // Another member does not see it.
    let other = format!("member:{}", uuid_like());
    let status =
        http.get(format!("{gw}/v1/requests/{request_id}")).header(DEV, other).send().await.expect("peek").status();
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The coordinator sees the referral and how it was assigned.
    let (status, referrals) = json_of(
        http.get(format!("{gw}/v1/referrals"))
            .query(&[("request_id", request_id.as_str())])
            .header(DEV, "coordinator")
            .send()
            .await
            .expect("referrals"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{referrals}");
    let items = referrals["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 1, "{referrals}");
    assert_eq!(items[0]["status"], "accepted");
    assert_eq!(items[0]["provider_code"], provider.as_str());

    // 7. A quote exists, at the offer's flat price, numbered first of the year for that provider.
    let quote = eventually("a quote", Duration::from_secs(30), || {
        let (http, url, me, rid) = (http.clone(), format!("{gw}/v1/quotes"), me.clone(), request_id.clone());
        async move {
            let (status, value) =
                json_of(http.get(url).query(&[("request_id", rid)]).header(DEV, me).send().await.ok()?).await;
            (status == StatusCode::OK).then(|| value["items"].as_array().and_then(|i| i.first().cloned())).flatten()
        }
    })
    .await;
    assert_eq!(quote["amount_cents"].as_i64(), Some(price));
    assert_eq!(quote["currency"], "EUR");
    assert_eq!(quote["member_id"], member_id.as_str());
    let year = chrono::Utc::now().format("%Y").to_string();
    assert_eq!(quote["number"], format!("D-{provider}-{year}-000001"));

    platform.stop().await;
}

/// A syntactically valid member id that belongs to nobody.
fn uuid_like() -> String {
    "0190a0b0-0000-7000-8000-000000000001".to_owned()
}
