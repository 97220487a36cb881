//! The routing routes' own checks, made before routing is called (every upstream is a closed port: a 503 proves
//! the call went out), and what the OpenAPI document says of them.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use id77_platform::auth::Role;
use id77_platform::testing::TestKeys;
use serde_json::Value;
use tower::ServiceExt;
use utoipa::OpenApi;
use uuid::Uuid;

use crate::{AppState, Config, router};

fn keys() -> TestKeys {
    TestKeys::new().unwrap_or_else(|e| panic!("test keys: {e:#}"))
}

async fn get(keys: &TestKeys, uri: &str, token: &str) -> (StatusCode, Value) {
    let mut config = Config::with_all_upstreams("http://127.0.0.1:1");
    config.jwks_file = Some(keys.jwks_file.clone());
    let app = router(AppState::new(&config).unwrap_or_else(|e| panic!("state: {e:#}")));
    let request = Request::get(uri).header(header::AUTHORIZATION, format!("Bearer {token}")).body(Body::empty());
    let response = match app.oneshot(request.unwrap_or_else(|e| panic!("{e}"))).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_unknown_query_parameter_of_the_referral_list_is_refused_by_name() {
    let keys = keys();
    let coordinator = keys.token(Role::Coordinator, None, None);
    let (status, problem) = get(&keys, "/v1/referrals?colour=red", &coordinator).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("colour")), "{problem}");
    // The documented ones go through (to the closed upstream).
    let known = "/v1/referrals?request_id=0190a1b2-c3d4-7e5f-8a9b-000000000001&provider=caue77&at_risk=true&limit=5";
    assert_eq!(get(&keys, known, &coordinator).await.0, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_providers_sla_is_read_by_the_coordinator_and_its_own_agents_only() {
    let keys = keys();
    let uri = "/v1/routing/providers/caue77/sla";
    for token in [keys.token(Role::Coordinator, None, None), keys.token(Role::ProviderAgent, None, Some("caue77"))] {
        assert_eq!(get(&keys, uri, &token).await.0, StatusCode::SERVICE_UNAVAILABLE, "the call went out");
    }
    // Another provider's agent: not found, before routing is asked.
    let other = keys.token(Role::ProviderAgent, None, Some("dir-routes"));
    let (status, problem) = get(&keys, uri, &other).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let member = Some(Uuid::now_v7());
    for token in [
        keys.token(Role::MemberAdmin, member, None),
        keys.token(Role::MemberUser, member, None),
        keys.token(Role::Referent, None, None),
        keys.token(Role::Operator, None, None),
    ] {
        assert_eq!(get(&keys, uri, &token).await.0, StatusCode::FORBIDDEN);
    }
}

#[test]
fn every_routing_operation_is_documented_with_its_own_answers() {
    let doc = serde_json::to_value(super::Api::openapi()).unwrap_or_default();
    let operations: Vec<(String, String)> = doc["paths"]
        .as_object()
        .map(|paths| {
            paths
                .iter()
                .flat_map(|(path, item)| {
                    let methods = item.as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
                    methods.into_iter().map(move |method| (method, path.clone()))
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(operations.len(), 17, "{operations:?}");
    for (method, path) in &operations {
        let op = &doc["paths"][path][method];
        assert_eq!(op["security"], serde_json::json!([{"bearerAuth": []}]), "{method} {path}");
        assert_eq!(op["tags"], serde_json::json!(["referrals"]), "{method} {path}");
        assert!(op["operationId"].is_string() && op["summary"].is_string(), "{method} {path}");
    }
    let sla = &doc["paths"]["/v1/routing/providers/{code}/sla"];
    assert_eq!(
        (sla["get"]["operationId"].as_str(), sla["put"]["operationId"].as_str()),
        (Some("getProviderSla"), Some("setProviderSla"))
    );
    assert_eq!(sla["get"]["responses"]["404"]["$ref"], "#/components/responses/NotFound");
    let accept = &doc["paths"]["/v1/referrals/{id}/accept"]["post"];
    assert_eq!(accept["responses"]["409"]["$ref"], "#/components/responses/Conflict");
    assert_eq!(accept["requestBody"]["required"], Value::Bool(false), "the body may be left out");
    assert_eq!(
        accept["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/AcceptReferralInput"
    );
    let list = &doc["paths"]["/v1/referrals"]["get"]["parameters"];
    let names: Vec<_> = list.as_array().into_iter().flatten().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["request_id", "provider", "at_risk", "updated_since", "limit", "cursor"]);
    let since = list.as_array().and_then(|l| l.iter().find(|p| p["name"] == "updated_since")).cloned();
    let since = since.unwrap_or_default();
    assert_eq!(since["schema"]["format"], "date-time", "{since}");
    assert!(since["description"].as_str().is_some_and(|d| d.contains("strictly after")), "{since}");
}
