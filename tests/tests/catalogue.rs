//! The catalogue through the real binaries: search with facets and typo tolerance at the gateway, the operator
//! editing a published offer (a new version, seen by search and by the version history), and an exhibition's
//! availability after a member's hold.

use id77_e2e::{Api, DEMO_PASSWORD, Platform};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn codes(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|o| o["code"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_facets_and_an_operator_edit_through_the_gateway() {
    let platform = Platform::start().await.expect("platform starts");
    let api = Api::new(&platform.gateway);

    // Search "voirie": ranked, faceted, paged.
    let (status, voirie) = api.get("/v1/offers?q=voirie&limit=5", None).await;
    assert_eq!(status, StatusCode::OK, "{voirie}");
    assert_eq!(voirie["items"].as_array().map(Vec::len), Some(5), "{voirie}");
    assert!(voirie["total"].as_u64().unwrap_or(0) >= 8, "{voirie}");
    assert!(voirie["next_cursor"].is_string());
    assert!(voirie["items"][0]["rank"].as_f64().unwrap_or(0.0) > 0.0);
    let facets = &voirie["facets"];
    let categories: u64 =
        facets["category"].as_object().map(|m| m.values().filter_map(Value::as_u64).sum()).unwrap_or(0);
    assert_eq!(Some(categories), voirie["total"].as_u64(), "{facets}");
    assert!(facets["provider"]["dir-routes"].as_u64().unwrap_or(0) >= 5, "{facets}");
    assert!(facets["theme"]["voirie"].is_u64() && facets["price_kind"].is_object(), "{facets}");
    let first = voirie["items"][0].clone();
    assert!(first["price"]["kind"].is_string() && first["eligibility"].is_object(), "{first}");

    // The next page continues without overlap.
    let cursor = voirie["next_cursor"].as_str().unwrap_or_default();
    let (status, next) = api.get(&format!("/v1/offers?q=voirie&limit=5&cursor={cursor}"), None).await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert!(codes(&next).iter().all(|c| !codes(&voirie).contains(c)), "{next}");

    // Page numbers: page 2 is the cursor's next page; a page with a cursor is refused.
    let (status, second) = api.get("/v1/offers?q=voirie&limit=5&page=2", None).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(codes(&second), codes(&next), "{second}");
    assert_eq!(second["total"], voirie["total"]);
    let (status, both) = api.get(&format!("/v1/offers?q=voirie&page=2&cursor={cursor}"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{both}");
    assert_eq!(api.get("/v1/offers?page=0", None).await.0, StatusCode::BAD_REQUEST);

    // Plain French: any word, the field's synonyms, empty words left out; correct accents are no typo.
    let (_, training) = api.get("/v1/offers?q=formation%20march%C3%A9s%20publics", None).await;
    assert_eq!(codes(&training).first().map(String::as_str), Some("formation-marches-publics"), "{training}");
    let (_, procurement) = api.get("/v1/offers?q=commande%20publique", None).await;
    assert_eq!(codes(&procurement).first().map(String::as_str), Some("formation-marches-publics"), "{procurement}");
    let (_, pavement) = api.get("/v1/offers?q=refaire%20le%20trottoir&limit=100", None).await;
    assert!(codes(&pavement).iter().any(|c| c == "programme-entretien-chaussees"), "{pavement}");
    let (_, accented) = api.get("/v1/offers?q=r%C3%A9novation%20%C3%A9nerg%C3%A9tique", None).await;
    assert!(accented["total"].as_u64().unwrap_or(0) > 0 && accented["corrected_q"].is_null(), "{accented}");

    // A typo, French words, filters.
    let (_, typo) = api.get("/v1/offers?q=voiree&limit=5", None).await;
    assert_eq!(typo["corrected_q"], "voirie", "{typo}");
    assert_eq!(codes(&typo), codes(&voirie));
    let (_, eau) = api.get("/v1/offers?q=eau%20potable", None).await;
    assert!(codes(&eau).first().is_some_and(|c| c.contains("eau-potable")), "{eau}");
    let (_, expo) = api.get("/v1/offers?q=exposition&category=exhibition_loan&limit=100", None).await;
    assert!(expo["total"].as_u64().unwrap_or(0) >= 15, "{expo}");
    let (status, bad) = api.get("/v1/offers?price_kind=barter", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert_eq!(api.get("/v1/offers?eligible=true", None).await.0, StatusCode::UNAUTHORIZED);

    // The operator edits a published offer: version 2, the title is searchable, version 1 is kept.
    let operator = api.access_token("operateur@id77.demo", DEMO_PASSWORD).await.expect("operator login");
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator login");
    let (status, offer) = api.get("/v1/offers/diagnostic-ouvrages-art", None).await;
    assert_eq!(status, StatusCode::OK, "{offer}");
    let mut edit = json!({
        "title": "Diagnostic des ouvrages d'art et des passerelles communales",
        "summary": offer["summary"], "description": offer["description"], "category": offer["category"],
        "themes": offer["themes"], "provider_code": offer["provider_code"], "duration": offer["duration"],
        "price": {"kind": "flat", "amount_cents": 195000}, "vat_note": offer["vat_note"],
        "expected_version": offer["version"],
    });
    let path = format!("/v1/offers/{}", offer["id"].as_str().unwrap_or_default());
    assert_eq!(api.call(Method::PUT, &path, Some(&coordinator), Some(&edit)).await.0, StatusCode::FORBIDDEN);
    let (status, v2) = api.call(Method::PUT, &path, Some(&operator), Some(&edit)).await;
    assert_eq!(status, StatusCode::OK, "{v2}");
    assert_eq!(
        (v2["version"].as_i64(), v2["price_cents"].as_i64()),
        (offer["version"].as_i64().map(|v| v + 1), Some(195000))
    );
    let (status, stale) = api.call(Method::PUT, &path, Some(&operator), Some(&edit)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{stale}");
    assert!(stale["type"].as_str().unwrap_or("").ends_with("version-conflict"), "{stale}");
    edit["price"] = json!({"kind": "flat"});
    let (status, invalid) = api.call(Method::PUT, &path, Some(&operator), Some(&edit)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{invalid}");
    let (_, found) = api.get("/v1/offers?q=passerelles", None).await;
    assert!(codes(&found).contains(&"diagnostic-ouvrages-art".to_owned()), "{found}");
    let (status, v1) = api.get(&format!("{path}?version={}", offer["version"]), None).await;
    assert_eq!(status, StatusCode::OK, "{v1}");
    assert_eq!(v1["title"], offer["title"]);

    // An exhibition's calendar after the coordinator holds a copy for a member.
    let (_, expo) = api.get("/v1/offers/expo-sport-en-seine-et-marne", None).await;
    let id = expo["id"].as_str().unwrap_or_default().to_owned();
    let today = chrono::Utc::now().date_naive();
    let day = |n: i64| (today + chrono::Duration::days(n)).to_string();
    let hold = json!({"from": day(60), "to": day(70), "member_id": uuid::Uuid::now_v7().to_string()});
    let (status, booking) = api.post(&format!("/v1/exhibitions/{id}/bookings"), Some(&coordinator), &hold).await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    assert_eq!(booking["status"], "held");
    let (status, taken) = api.post(&format!("/v1/exhibitions/{id}/bookings"), Some(&coordinator), &hold).await;
    assert_eq!(status, StatusCode::CONFLICT, "{taken}");
    assert!(taken["type"].as_str().unwrap_or("").ends_with("no-copy-available"), "{taken}");
    let (status, calendar) =
        api.get(&format!("/v1/exhibitions/{id}/availability?from={}&to={}", day(59), day(61)), None).await;
    assert_eq!(status, StatusCode::OK, "{calendar}");
    let free: Vec<u64> = calendar["days"]
        .as_array()
        .map(|d| d.iter().filter_map(|d| d["available_copies"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(free, [1, 0, 0], "{calendar}");

    platform.stop().await;
}

/// The gateway's edge cache (ID77_SEARCH_CACHE_MS): a public search answered a moment ago is answered again
/// from the gateway's memory, even while the catalogue is down; so is a member's own "eligible" search, for that
/// member only (another member's same search still goes to the catalogue); an answer past its time goes to the
/// catalogue again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_public_search_is_answered_at_the_edge_and_a_members_only_to_that_member() {
    let options = id77_e2e::Options {
        gateway_env: vec![("ID77_SEARCH_CACHE_MS".into(), "5000".into())],
        ..id77_e2e::Options::default()
    };
    let mut platform = Platform::start_with(options).await.expect("platform starts");
    let api = Api::new(&platform.gateway);
    let (status, first) = api.get("/v1/offers?q=voirie&limit=3", None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let members = id77_e2e::load::join_communes(&api, 2).await.expect("two communes join");
    let (member, other) = match members.as_slice() {
        [a, b, ..] => (a.token.clone(), b.token.clone()),
        _ => panic!("two members expected"),
    };
    let eligible = "/v1/offers?q=voirie&limit=3&eligible=true";
    let (status, members_first) = api.get(eligible, Some(&member)).await;
    assert_eq!(status, StatusCode::OK, "{members_first}");

    platform.kill("catalogue").expect("catalogue stopped");
    let (status, again) = api.get("/v1/offers?q=voirie&limit=3", None).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, first, "the same answer, from the edge");
    let (status, other_query) = api.get("/v1/offers?q=voirie&limit=4", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "another query is not cached: {other_query}");
    let (status, members_again) = api.get(eligible, Some(&member)).await;
    assert_eq!(status, StatusCode::OK, "the member's own answer, from the edge: {members_again}");
    assert_eq!(members_again, members_first);
    let (status, others) = api.get(eligible, Some(&other)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "another member never gets it: {others}");
    let (status, anonymous) = api.get(eligible, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "nor an anonymous caller: {anonymous}");
    // Past its 5 s, the answer is asked of the catalogue again.
    tokio::time::sleep(std::time::Duration::from_millis(5200)).await;
    let (status, late) = api.get("/v1/offers?q=voirie&limit=3", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{late}");
    let (status, members_late) = api.get(eligible, Some(&member)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{members_late}");
    platform.stop().await;
}
