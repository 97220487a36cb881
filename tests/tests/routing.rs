//! Routing through the real binaries: a coordinator's rule sends Meaux's road request to the CAUE, whose
//! consumer declines it, so it is re-routed to the offer's own provider, whose consumer forwards it to the
//! organisation's HTTP endpoint (failing twice before accepting); a water request nobody answers is escalated
//! then expires (routing's clock moved forward); another is withdrawn by the coordinator and the provider hears
//! of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use id77_e2e::{Api, DEMO_PASSWORD, Platform, eventually, workspace_root};
use id77_referral_consumer::forward::{SIGNATURE_HEADER, signature};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(40);
const HMAC_KEY: &[u8] = b"cle-partagee-avec-la-direction-des-routes";

/// The seed offer codes of a provider, with their themes.
fn seed_offers() -> Vec<(String, String, Vec<String>, String)> {
    let seed = std::fs::read(workspace_root().join("services/catalogue/seed/catalogue.json")).unwrap_or_default();
    let seed: Value = serde_json::from_slice(&seed).unwrap_or_default();
    seed["offers"]
        .as_array()
        .map(|offers| {
            offers
                .iter()
                .map(|o| {
                    let themes = o["themes"]
                        .as_array()
                        .map(|t| t.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default();
                    let s = |k: &str| o[k].as_str().unwrap_or_default().to_owned();
                    (s("code"), s("provider_code"), themes, s("category"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The organisation's endpoint: refuses the first two deliveries, then accepts; checks every signature.
struct Endpoint {
    calls: AtomicUsize,
    bad_signatures: AtomicUsize,
    bodies: std::sync::Mutex<Vec<Value>>,
}

async fn start_endpoint(endpoint: Arc<Endpoint>) -> String {
    let hook = {
        let endpoint = endpoint.clone();
        move |headers: HeaderMap, body: Bytes| {
            let endpoint = endpoint.clone();
            async move {
                let expected = signature(HMAC_KEY, &body);
                if headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
                    endpoint.bad_signatures.fetch_add(1, Ordering::SeqCst);
                    return (AxumStatus::UNAUTHORIZED, String::new());
                }
                let value: Value = serde_json::from_slice(&body).unwrap_or_default();
                if value["type"] != "referral.offered" {
                    return (AxumStatus::OK, String::new());
                }
                endpoint.bodies.lock().map(|mut b| b.push(value)).ok();
                match endpoint.calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => (AxumStatus::SERVICE_UNAVAILABLE, "busy".to_owned()),
                    _ => (AxumStatus::OK, json!({"decision": "accept"}).to_string()),
                }
            }
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind endpoint");
    let addr = listener.local_addr().expect("endpoint address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, Router::new().route("/hook", post(hook))).await;
    });
    format!("http://{addr}/hook")
}

/// Submits a request for `offer_id`, retrying until requests knows the member.
async fn submit(api: &Api, token: &str, offer_id: &str, subject: &str) -> String {
    let body = json!({"offer_id": offer_id, "subject": subject, "description": "Voir la note jointe."});
    let request = eventually("the submission to be accepted", WAIT, || async {
        match api.post("/v1/requests", Some(token), &body).await {
            (StatusCode::CREATED, value) => Some(value),
            (StatusCode::CONFLICT | StatusCode::NOT_FOUND, _) => None,
            (other, value) => panic!("unexpected {other}: {value}"),
        }
    })
    .await;
    request["id"].as_str().expect("request id").to_owned()
}

/// The request's referrals, first attempt first, once there are at least `n`.
async fn referrals(api: &Api, coordinator: &str, request_id: &str, n: usize) -> Vec<Value> {
    let path = format!("/v1/referrals?request_id={request_id}");
    eventually(&format!("{n} referral(s) for {request_id}"), WAIT, || async {
        let (status, page) = api.get(&path, Some(coordinator)).await;
        let mut items = page["items"].as_array().cloned().unwrap_or_default();
        items.sort_by_key(|r| r["attempt"].as_i64());
        (status == StatusCode::OK && items.len() >= n).then_some(items)
    })
    .await
}

async fn referral_with(api: &Api, coordinator: &str, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/v1/referrals/{id}");
    eventually(what, WAIT, || async {
        let (status, referral) = api.get(&path, Some(coordinator)).await;
        (status == StatusCode::OK && check(&referral)).then_some(referral)
    })
    .await
}

/// Seconds from now until an RFC 3339 instant, plus a margin.
fn offset_until(at: &Value, already: Duration) -> Duration {
    let at = at.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()).expect("an RFC 3339 instant");
    let from_now = (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds().max(0);
    Duration::from_secs(u64::try_from(from_now).unwrap_or(0) + 120).max(already)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_route_declines_reroute_deadlines_escalate_and_withdrawals_reach_the_provider() {
    let mut platform = Platform::start().await.expect("platform starts");
    let api = Api::new(&platform.gateway);
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator login");

    // Meaux (arrondissement 771) joins; its admin is invited.
    let apply = json!({"siren": "217702844", "contact_name": "DGS", "contact_email": "dgs@meaux.fr"});
    let (status, member) = api.post("/v1/memberships", None, &apply).await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    let member_id = member["id"].as_str().expect("member id").to_owned();
    let (status, _) = api.post(&format!("/v1/memberships/{member_id}/approve"), Some(&coordinator), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (member_token, _) = api
        .invite_and_accept(
            &coordinator,
            &json!({"email": "dgs@meaux.fr", "display_name": "DGS", "role": "member_admin", "member_id": member_id}),
        )
        .await
        .expect("member admin");

    // A road offer of the roads directorate, a water offer without the road theme.
    let offers = seed_offers();
    let road = offers
        .iter()
        .find(|(_, p, t, c)| p == "dir-routes" && t.contains(&"voirie".to_owned()) && c == "integrated_engineering")
        .expect("a road offer");
    let water = offers
        .iter()
        .find(|(_, p, t, c)| p == "dir-eau" && !t.contains(&"voirie".to_owned()) && c == "integrated_engineering")
        .expect("a water offer");
    let offer_id = |code: String| {
        let api = api.clone();
        async move {
            let (status, offer) = api.get(&format!("/v1/offers/{code}"), None).await;
            assert_eq!(status, StatusCode::OK, "{offer}");
            offer["id"].as_str().expect("offer id").to_owned()
        }
    };
    let (road_id, water_id) = (offer_id(road.0.clone()).await, offer_id(water.0.clone()).await);

    // The coordinator's rule: road work in the arrondissement of Meaux goes to the CAUE first. Routing learns
    // the providers from the catalogue's events: retry until it knows the CAUE.
    let rule = json!({"name": "Voirie de l'arrondissement de Meaux : CAUE",
                      "condition": {"all": [{"theme": ["voirie"]}, {"arrondissement": ["771"]}]},
                      "provider_code": "caue77"});
    let rules = eventually("the rule to be accepted", WAIT, || async {
        match api.post("/v1/routing/rules", Some(&coordinator), &rule).await {
            (StatusCode::CREATED, value) => Some(value),
            (StatusCode::BAD_REQUEST, _) => None,
            (other, value) => panic!("unexpected {other}: {value}"),
        }
    })
    .await;
    assert_eq!(rules["version"], 1);
    let rule_id = rules["rules"][0]["id"].as_str().expect("rule id").to_owned();
    let unknown = json!({"name": "x", "provider_code": "inconnu"});
    assert_eq!(api.post("/v1/routing/rules", Some(&coordinator), &unknown).await.0, StatusCode::BAD_REQUEST);
    let (status, _) = api.post("/v1/routing/rules", Some(&member_token), &rule).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only the coordinator edits rules");

    // The providers' consumers: the CAUE declines everything; the roads directorate forwards to its endpoint;
    // the water directorate only prints (it never answers).
    let endpoint = Arc::new(Endpoint {
        calls: AtomicUsize::new(0),
        bad_signatures: AtomicUsize::new(0),
        bodies: std::sync::Mutex::new(Vec::new()),
    });
    let url = start_endpoint(endpoint.clone()).await;
    let key_file = platform.logs.join("dir-routes.hmac");
    std::fs::write(&key_file, HMAC_KEY).expect("key file");
    let key_path = key_file.to_string_lossy().into_owned();
    platform
        .start_referral_consumer(
            "caue77",
            &["--rule", "decline-all", "--decline-reason", "Pas de disponibilité ce trimestre"],
        )
        .expect("caue consumer");
    platform
        .start_referral_consumer("dir-routes", &["--mode", "forward", "--url", &url, "--hmac-key-file", &key_path])
        .expect("forwarding consumer");
    platform.start_referral_consumer("dir-eau", &["--mode", "print"]).expect("printing consumer");

    // 1. The road request: the rule picks the CAUE, which declines; re-routed to the roads directorate, whose
    // endpoint fails twice, then accepts.
    let road_request = submit(&api, &member_token, &road_id, "Réfection de la rue du Faubourg").await;
    let tried = referrals(&api, &coordinator, &road_request, 2).await;
    assert_eq!(tried[0]["provider_code"], "caue77");
    assert_eq!(tried[0]["rule_id"], rule_id.as_str());
    assert_eq!(tried[1]["provider_code"], "dir-routes");
    assert_eq!(tried[1]["attempt"], 2);
    let first = referral_with(&api, &coordinator, tried[0]["id"].as_str().unwrap_or_default(), "the decline", |r| {
        r["status"] == "declined"
    })
    .await;
    assert_eq!(first["reason"], "Pas de disponibilité ce trimestre");
    referral_with(&api, &coordinator, tried[1]["id"].as_str().unwrap_or_default(), "the acceptance", |r| {
        r["status"] == "accepted"
    })
    .await;
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), 3, "two failures, then the accept");
    assert_eq!(endpoint.bad_signatures.load(Ordering::SeqCst), 0);
    let bodies = endpoint.bodies.lock().map(|b| b.clone()).unwrap_or_default();
    assert_eq!(bodies[0]["request_id"], road_request.as_str());
    assert_eq!(bodies[0]["subject"], "Réfection de la rue du Faubourg");
    let path = format!("/v1/requests/{road_request}");
    eventually("the request to become accepted", WAIT, || async {
        let (status, value) = api.get(&path, Some(&member_token)).await;
        (status == StatusCode::OK && value["status"] == "accepted").then_some(())
    })
    .await;
    // Why: the rule matched for the CAUE (tried), then the offer's default.
    let (status, why) = api.get(&format!("/v1/requests/{road_request}/routing"), Some(&coordinator)).await;
    assert_eq!(status, StatusCode::OK, "{why}");
    assert_eq!((why["outcome"].as_str(), why["provider_code"].as_str()), (Some("offer_default"), Some("dir-routes")));
    assert_eq!(why["rules"][0]["matched"], true, "{why}");
    assert!(why["rules"][0]["skipped"].as_str().unwrap_or_default().contains("already tried"), "{why}");
    assert_eq!(
        api.get(&format!("/v1/requests/{road_request}/routing"), Some(&member_token)).await.0,
        StatusCode::FORBIDDEN
    );

    // 2. The water request: nobody answers. Its deadline is one business day.
    let (status, sla) = api
        .call(
            reqwest::Method::PUT,
            "/v1/routing/providers/dir-eau/sla",
            Some(&coordinator),
            Some(&json!({"business_days": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sla}");
    let water_request = submit(&api, &member_token, &water_id, "Schéma directeur d'assainissement").await;
    let water = referrals(&api, &coordinator, &water_request, 1).await.remove(0);
    assert_eq!(water["provider_code"], "dir-eau");
    let water_id = water["id"].as_str().expect("referral id").to_owned();
    // Routing's clock passes the deadline: escalated, and listed at risk.
    let offset = offset_until(&water["respond_by"], Duration::ZERO);
    platform.set_clock_offset(offset).expect("clock");
    let escalated =
        referral_with(&api, &coordinator, &water_id, "the escalation", |r| r["escalated_at"].is_string()).await;
    assert_eq!(escalated["status"], "offered");
    let (status, at_risk) = api.get("/v1/referrals?at_risk=true", Some(&coordinator)).await;
    assert_eq!(status, StatusCode::OK, "{at_risk}");
    let risky: Vec<&str> =
        at_risk["items"].as_array().map(|i| i.iter().filter_map(|r| r["id"].as_str()).collect()).unwrap_or_default();
    assert!(risky.contains(&water_id.as_str()), "{at_risk}");
    // Then past the grace period: expired; no candidate left, so the coordinator's triage queue.
    platform.set_clock_offset(offset_until(&escalated["expires_at"], offset)).expect("clock");
    referral_with(&api, &coordinator, &water_id, "the expiry", |r| r["status"] == "expired").await;
    let (_, why) = api.get(&format!("/v1/requests/{water_request}/routing"), Some(&coordinator)).await;
    assert_eq!(why["outcome"], "triage", "{why}");

    // 3. The coordinator reassigns the expired request by hand, then withdraws it: the provider hears of it.
    let (status, manual) = api
        .post(
            &format!("/v1/referrals/{water_id}/reassign"),
            Some(&coordinator),
            &json!({"provider_code": "dir-eau", "reason": "relance téléphonique"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{manual}");
    let manual_id = manual["id"].as_str().expect("referral id").to_owned();
    let (status, withdrawn) = api
        .post(&format!("/v1/referrals/{manual_id}/withdraw"), Some(&coordinator), &json!({"reason": "doublon"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{withdrawn}");
    assert_eq!(withdrawn["status"], "withdrawn");
    let log = platform.logs.join("referral-consumer-dir-eau.log");
    eventually("the provider's consumer to print the withdrawal", WAIT, || async {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.contains("referral.withdrawn") && text.contains(&manual_id)).then_some(())
    })
    .await;

    platform.stop().await;
}
