//! Scaling on one machine: two processes of routing and two of billing (the real binaries) on the same
//! databases and NATS prefix, as two pods of each would run. A burst of requests through the gateway is routed,
//! accepted by the provider's consumer, quoted, agreed by the member's admin (ADR 0013) and, once completed,
//! invoiced. The work is shared (both replicas of each service applied some of the events, by their own metrics)
//! and nothing is done twice: exactly one referral per request, one quote per acceptance, and gapless quote and
//! invoice numbers.

use std::collections::BTreeSet;
use std::time::Duration;

use id77_e2e::{Api, DEMO_PASSWORD, Options, Platform, eventually, metric_sum, metrics_url, onboard_member, scrape};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Requests in the burst.
const BURST: usize = 40;
const WAIT: Duration = Duration::from_secs(90);

/// Events applied by a durable consumer in one process, from its `/metrics`.
async fn applied(platform: &Platform, process: &str, durable: &str) -> f64 {
    let url = metrics_url(platform, process).expect("process has metrics");
    let text = scrape(url).await.unwrap_or_default();
    metric_sum(&text, "id77_consumer_events_total", &[("durable", durable), ("outcome", "applied")])
}

/// The sequence numbers of documents numbered `<prefix>NNNNNN`, sorted.
fn sequence_numbers(items: &[Value], prefix: &str) -> Vec<u32> {
    let mut numbers: Vec<u32> = items
        .iter()
        .filter_map(|i| i["number"].as_str())
        .filter_map(|n| n.strip_prefix(prefix))
        .filter_map(|n| n.parse().ok())
        .collect();
    numbers.sort_unstable();
    numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_routing_and_billing_share_the_work_and_do_nothing_twice() {
    let mut platform = Platform::start_with(Options::default().replicas("routing", 2).replicas("billing", 2))
        .await
        .expect("platform starts");
    let api = Api::new(&platform.gateway);
    // Every replica is up (its metrics are served once its database and NATS answer).
    for process in ["routing", "routing-2", "billing", "billing-2"] {
        let url = metrics_url(&platform, process).expect("metrics url").to_owned();
        eventually(&format!("{process} to be up"), Duration::from_secs(60), || {
            let url = url.clone();
            async move { scrape(&url).await.ok() }
        })
        .await;
    }

    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator login");
    let (_member_id, member) =
        onboard_member(&api, &coordinator, "217702844", "dgs@meaux.fr").await.expect("member onboarded");
    let (status, offers) = api.get("/v1/offers?category=integrated_engineering&limit=100", None).await;
    assert_eq!(status, StatusCode::OK, "{offers}");
    let offer = offers["items"]
        .as_array()
        .and_then(|items| items.iter().find(|o| o["billed"] == true))
        .cloned()
        .unwrap_or_else(|| panic!("no billed offer: {offers}"));
    let offer_id = offer["id"].as_str().expect("offer id").to_owned();
    let provider = offer["provider_code"].as_str().expect("provider").to_owned();
    platform.start_referral_consumer(&provider, &["--rule", "accept-all"]).expect("referral consumer");

    // The burst: BURST requests at once (requests learns of the approval by event: retry until it has).
    let submit = |i: usize| {
        let (http, url, token, offer_id) =
            (api.http.clone(), format!("{}/v1/requests", api.base), member.clone(), offer_id.clone());
        async move {
            let body = json!({"offer_id": offer_id, "subject": format!("Demande {i}"),
                              "description": "Diagnostic de voirie pour le test de montée en charge."});
            loop {
                let response = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("Idempotency-Key", format!("scale-{i}"))
                    .json(&body)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == StatusCode::CREATED || r.status() == StatusCode::OK => {
                        let value: Value = r.json().await.unwrap_or_default();
                        return value["id"].as_str().map(str::to_owned);
                    }
                    Ok(r) if r.status() == StatusCode::CONFLICT || r.status() == StatusCode::NOT_FOUND => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Ok(r) => panic!("submission {i}: {} {}", r.status(), r.text().await.unwrap_or_default()),
                    Err(error) => panic!("submission {i}: {error}"),
                }
            }
        }
    };
    // One first, so the member is known to requests; then the rest together.
    let mut request_ids = vec![submit(0).await.expect("first request id")];
    let rest = futures_join_all((1..BURST).map(submit).collect()).await;
    request_ids.extend(rest.into_iter().map(|id| id.expect("request id")));
    assert_eq!(request_ids.iter().collect::<BTreeSet<_>>().len(), BURST, "distinct requests");

    // Every request is routed once and accepted by the provider's consumer.
    let referrals = eventually("every request to be accepted", WAIT, || async {
        let (status, list) = api.get("/v1/referrals?limit=100", Some(&coordinator)).await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        (status == StatusCode::OK && items.iter().filter(|r| r["status"] == "accepted").count() >= BURST)
            .then_some(items)
    })
    .await;
    assert_eq!(referrals.len(), BURST, "exactly one referral per request");
    let routed: BTreeSet<&str> = referrals.iter().filter_map(|r| r["request_id"].as_str()).collect();
    assert_eq!(routed, request_ids.iter().map(String::as_str).collect(), "each request has its referral");

    // One quote per acceptance, numbered without gap or duplicate across the two billing processes.
    let year = chrono::Utc::now().format("%Y").to_string();
    let quotes = eventually("a quote per acceptance", WAIT, || async {
        let (status, list) = api.get("/v1/quotes?limit=100", Some(&coordinator)).await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        (status == StatusCode::OK && items.len() >= BURST).then_some(items)
    })
    .await;
    assert_eq!(quotes.len(), BURST, "one quote per acceptance");
    let quoted: BTreeSet<&str> = quotes.iter().filter_map(|q| q["request_id"].as_str()).collect();
    assert_eq!(quoted.len(), BURST, "no request quoted twice");
    let numbers = sequence_numbers(&quotes, &format!("D-{provider}-{year}-"));
    assert_eq!(numbers, (1..=BURST as u32).collect::<Vec<_>>(), "gapless quote numbers");

    // The member's admin accepts every quote (one call each: the gateway's rate limit is per client address);
    // routing's two processes learn of it from billing's `quote.accepted`.
    for quote in &quotes {
        assert_eq!(quote["status"], "proposed", "{quote}");
        let id = quote["id"].as_str().expect("quote id");
        let (status, accepted) =
            api.post(&format!("/v1/quotes/{id}/accept"), Some(&member), &json!({"signatory_name": "Le maire"})).await;
        assert_eq!((status, accepted["status"].as_str()), (StatusCode::OK, Some("accepted")), "{accepted}");
    }
    let referrals = eventually("every referral to be agreed", WAIT, || async {
        let (status, list) = api.get("/v1/referrals?limit=100", Some(&coordinator)).await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        (status == StatusCode::OK && items.iter().filter(|r| r["agreement"] == "agreed").count() >= BURST)
            .then_some(items)
    })
    .await;
    assert_eq!(referrals.len(), BURST, "still one referral per request");

    // The provider completes every referral: requests completes each request, billing invoices each accepted
    // quote once: one invoice each, gapless numbers.
    let mut config = id77_referral_consumer::Config::new(id77_platform::testing::nats_url(), provider.clone())
        .expect("consumer config");
    config.prefix = platform.prefix.clone();
    let consumer = id77_referral_consumer::ReferralConsumer::connect(config).await.expect("consumer connects");
    for referral in &referrals {
        consumer.complete(referral["id"].as_str().expect("referral id")).await.expect("completion sent");
    }
    consumer.close().await;
    let invoices = eventually("an invoice per completion", WAIT, || async {
        let (status, list) = api.get("/v1/invoices?limit=100", Some(&coordinator)).await;
        let items = list["items"].as_array().cloned().unwrap_or_default();
        (status == StatusCode::OK && items.len() >= BURST).then_some(items)
    })
    .await;
    assert_eq!(invoices.len(), BURST, "one invoice per completion");
    let invoiced: BTreeSet<&str> = invoices.iter().filter_map(|i| i["quote_id"].as_str()).collect();
    let quote_ids: BTreeSet<&str> = quotes.iter().filter_map(|q| q["id"].as_str()).collect();
    assert_eq!(invoiced, quote_ids, "each invoice bills its request's accepted quote, each quote once");
    let numbers = sequence_numbers(&invoices, &format!("F-{provider}-{year}-"));
    assert_eq!(numbers, (1..=BURST as u32).collect::<Vec<_>>(), "gapless invoice numbers");

    // The work was shared: each replica applied some of the events, and together exactly one per event.
    // (Counts are sampled after the last effect was seen; a last ack could still be in flight: poll.)
    let shares = eventually("the replicas' counts to add up", Duration::from_secs(20), || async {
        let routing = (
            applied(&platform, "routing", "routing-requests").await,
            applied(&platform, "routing-2", "routing-requests").await,
        );
        // Billing invoices on requests' `request.completed` (ADR 0013), not on routing's claim.
        let billing = (
            applied(&platform, "billing", "billing-request-completions").await,
            applied(&platform, "billing-2", "billing-request-completions").await,
        );
        let accepted = (
            applied(&platform, "billing", "billing-referrals").await,
            applied(&platform, "billing-2", "billing-referrals").await,
        );
        // Routing lets the provider work once it applied billing's `quote.accepted`, once per quote.
        let agreed = (
            applied(&platform, "routing", "routing-quotes").await,
            applied(&platform, "routing-2", "routing-quotes").await,
        );
        let n = BURST as f64;
        (routing.0 + routing.1 == n
            && billing.0 + billing.1 == n
            && accepted.0 + accepted.1 == n
            && agreed.0 + agreed.1 == n)
            .then_some((routing, accepted, billing))
    })
    .await;
    eprintln!(
        "burst of {BURST}: routing requests applied {:?}, billing acceptances {:?}, billing completions {:?}",
        shares.0, shares.1, shares.2
    );
    for (what, (a, b)) in
        [("routing requests", shares.0), ("billing acceptances", shares.1), ("billing completions", shares.2)]
    {
        assert!(a > 0.0 && b > 0.0, "{what}: both replicas must have applied some ({a} + {b})");
    }

    platform.stop().await;
}

/// Awaits every future (the e2e crate has no `futures` dependency).
async fn futures_join_all<F: std::future::Future + Send + 'static>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}
