//! Rules of the requests' routes that the API document states (issue 20), against in-process fakes of the
//! requests and routing gRPC services: a replayed `Idempotency-Key` says so (`Idempotency-Replayed: true`), placing
//! a request no longer in the triage queue is a conflict (409) rather than "not found", and the inputs the
//! document refuses are refused (unknown query parameters, `null` preferences, empty member ids, periods).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use id77_gateway::{AppState, Config, router};
use id77_platform::auth::Role;
use id77_platform::{DomainError, ErrorCode, ServiceError};
use id77_proto::prost_types::Timestamp;
use id77_proto::requests::v1 as requests;
use id77_proto::requests::v1::requests_service_server::{RequestsService, RequestsServiceServer};
use id77_proto::routing::v1 as routing;
use id77_proto::routing::v1::routing_service_server::{RoutingService, RoutingServiceServer};
use serde_json::{Value, json};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};
use tower::ServiceExt;
use uuid::Uuid;

const PROBLEMS: &str = "https://id77.seine-et-marne.fr/problems/";
/// A request the requests service knows, already placed (no longer in routing's triage queue).
const PLACED: &str = "0190a1b2-c3d4-7e5f-8a9b-0000000000a1";
/// A request nobody knows.
const UNKNOWN: &str = "0190a1b2-c3d4-7e5f-8a9b-0000000000ff";

#[derive(Debug)]
struct Refusal {
    code: ErrorCode,
    reason: &'static str,
    message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

impl DomainError for Refusal {
    fn code(&self) -> ErrorCode {
        self.code
    }

    fn reason(&self) -> &'static str {
        self.reason
    }
}

fn not_found(what: String) -> Status {
    Status::from(ServiceError::from(Refusal {
        code: ErrorCode::NotFound,
        reason: "NOT_FOUND",
        message: format!("{what} not found"),
    }))
}

macro_rules! fake {
    ($service:ident for $fake:ty { $($used:tt)* } others { $($rpc:ident($req:ty) -> $resp:ty;)* }) => {
        #[tonic::async_trait]
        impl $service for $fake {
            $($used)*
            $(
                async fn $rpc(&self, _request: GrpcRequest<$req>) -> Result<GrpcResponse<$resp>, Status> {
                    Err(Status::unimplemented(concat!(stringify!($rpc), " is not used by these tests")))
                }
            )*
        }
    };
}

/// Requests: idempotency keys are remembered (a key seen again returns the first request, as the service does);
/// `PLACED` exists and is referred.
#[derive(Clone, Default)]
struct Requests {
    keys: Arc<Mutex<Vec<(String, requests::Request)>>>,
    calls: Arc<Mutex<Vec<String>>>,
}

fn now() -> Option<Timestamp> {
    let now = chrono::Utc::now();
    Some(Timestamp { seconds: now.timestamp(), nanos: now.timestamp_subsec_micros() as i32 * 1000 })
}

fn stored(id: &str, status: requests::RequestStatus) -> requests::Request {
    requests::Request {
        id: id.to_owned(),
        member_id: Uuid::now_v7().to_string(),
        offer_id: Uuid::now_v7().to_string(),
        subject: "Réfection de la voirie".into(),
        status: status.into(),
        kind: "offer".into(),
        submitted_at: now(),
        ..Default::default()
    }
}

fake! {
    RequestsService for Requests {
        async fn submit_request(
            &self,
            request: GrpcRequest<requests::SubmitRequestRequest>,
        ) -> Result<GrpcResponse<requests::Request>, Status> {
            let request = request.into_inner();
            let mut keys = self.keys.lock().map_err(|_| Status::internal("poisoned"))?;
            if !request.idempotency_key.is_empty()
                && let Some((_, first)) = keys.iter().find(|(k, _)| *k == request.idempotency_key)
            {
                // As the requests service answers a replay: the first request, marked in the metadata.
                let mut replay = GrpcResponse::new(first.clone());
                replay.metadata_mut().insert(
                    id77_proto::IDEMPOTENCY_REPLAYED_METADATA,
                    tonic::metadata::MetadataValue::from_static("true"),
                );
                return Ok(replay);
            }
            let mut filed = stored(&Uuid::now_v7().to_string(), requests::RequestStatus::Submitted);
            filed.subject = request.subject;
            if !request.idempotency_key.is_empty() {
                keys.push((request.idempotency_key, filed.clone()));
            }
            Ok(GrpcResponse::new(filed))
        }

        async fn get_request(
            &self,
            request: GrpcRequest<requests::GetRequestRequest>,
        ) -> Result<GrpcResponse<requests::Request>, Status> {
            let id = request.into_inner().id;
            if let Ok(mut calls) = self.calls.lock() {
                calls.push(format!("GetRequest {id}"));
            }
            match id.as_str() {
                PLACED => Ok(GrpcResponse::new(stored(PLACED, requests::RequestStatus::Referred))),
                _ => Err(not_found(format!("request {id}"))),
            }
        }

        async fn summarize_requests(
            &self,
            request: GrpcRequest<requests::ListRequestsRequest>,
        ) -> Result<GrpcResponse<requests::RequestSummary>, Status> {
            if let Ok(mut calls) = self.calls.lock() {
                calls.push(format!("SummarizeRequests {:?}", request.into_inner()));
            }
            Ok(GrpcResponse::new(requests::RequestSummary { counts: vec![], total: 0 }))
        }

        async fn update_notification_preferences(
            &self,
            request: GrpcRequest<requests::UpdateNotificationPreferencesRequest>,
        ) -> Result<GrpcResponse<requests::NotificationPreferences>, Status> {
            let request = request.into_inner();
            Ok(GrpcResponse::new(requests::NotificationPreferences {
                status_changed: request.status_changed.unwrap_or(true),
                message_posted: request.message_posted.unwrap_or(true),
            }))
        }

        async fn get_request_statistics(
            &self,
            _request: GrpcRequest<requests::RequestStatisticsRequest>,
        ) -> Result<GrpcResponse<requests::RequestStatistics>, Status> {
            Ok(GrpcResponse::new(requests::RequestStatistics::default()))
        }
    }
    others {
        list_requests(requests::ListRequestsRequest) -> requests::ListRequestsResponse;
        cancel_request(requests::CancelRequestRequest) -> requests::Request;
        close_request(requests::CloseRequestRequest) -> requests::Request;
        give_feedback(requests::GiveFeedbackRequest) -> requests::Request;
        get_notification_preferences(requests::GetNotificationPreferencesRequest) -> requests::NotificationPreferences;
        list_notifications(requests::ListNotificationsRequest) -> requests::ListNotificationsResponse;
        mark_notifications_read(requests::MarkNotificationsReadRequest) -> requests::MarkNotificationsReadResponse;
    }
}

/// Routing: its triage queue is empty; placing any request answers what routing answers then.
#[derive(Clone, Default)]
struct Routing;

fake! {
    RoutingService for Routing {
        async fn assign_triaged(
            &self,
            request: GrpcRequest<routing::AssignTriagedRequest>,
        ) -> Result<GrpcResponse<routing::Referral>, Status> {
            let request = request.into_inner();
            if request.offer_id == "unknown-offer" {
                return Err(not_found(format!("offer {}", request.offer_id)));
            }
            Err(not_found(format!("request {} in the triage queue", request.request_id)))
        }
    }
    others {
        reply_to_referral(routing::ReplyToReferralRequest) -> routing::Referral;
        report_referral_progress(routing::ReportReferralProgressRequest) -> routing::Referral;
        get_referral(routing::GetReferralRequest) -> routing::Referral;
        list_referrals(routing::ListReferralsRequest) -> routing::ListReferralsResponse;
        list_rules(routing::ListRulesRequest) -> routing::RuleSet;
        create_rule(routing::CreateRuleRequest) -> routing::RuleSet;
        update_rule(routing::UpdateRuleRequest) -> routing::RuleSet;
        delete_rule(routing::DeleteRuleRequest) -> routing::RuleSet;
        reorder_rules(routing::ReorderRulesRequest) -> routing::RuleSet;
        explain_routing(routing::ExplainRoutingRequest) -> routing::RoutingExplanation;
        reassign_referral(routing::ReassignReferralRequest) -> routing::Referral;
        bulk_reassign_referrals(routing::BulkReassignReferralsRequest) -> routing::BulkReassignReferralsResponse;
        withdraw_referral(routing::WithdrawReferralRequest) -> routing::Referral;
        set_provider_sla(routing::SetProviderSlaRequest) -> routing::ProviderSla;
        get_provider_sla(routing::GetProviderSlaRequest) -> routing::ProviderSla;
        list_triage(routing::ListTriageRequest) -> routing::ListTriageResponse;
    }
}

struct Harness {
    app: Router,
    requests: Requests,
    keys: id77_platform::testing::TestKeys,
    _servers: Vec<tokio::task::JoinHandle<()>>,
}

async fn serve(router: tonic::transport::server::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let server = tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = router.serve_with_incoming(incoming).await;
    });
    (format!("http://{addr}"), server)
}

async fn harness() -> Harness {
    let requests = Requests::default();
    let (requests_url, requests_server) =
        serve(tonic::transport::Server::builder().add_service(RequestsServiceServer::new(requests.clone()))).await;
    let (routing_url, routing_server) =
        serve(tonic::transport::Server::builder().add_service(RoutingServiceServer::new(Routing))).await;
    let keys = id77_platform::testing::TestKeys::new().unwrap_or_else(|e| panic!("{e:#}"));
    let mut config = Config::with_all_upstreams("http://127.0.0.1:1");
    config.requests_url = requests_url;
    config.routing_url = routing_url;
    config.jwks_file = Some(keys.jwks_file.clone());
    let app = router(AppState::new(&config).unwrap_or_else(|e| panic!("{e:#}")));
    Harness { app, requests, keys, _servers: vec![requests_server, routing_server] }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    token: &str,
    extra: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut builder =
        Request::builder().method(method).uri(uri).header(header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() && !extra.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    let request = builder.body(body.map(|b| Body::from(b.to_owned())).unwrap_or_default());
    let response = match app.clone().oneshot(request.unwrap_or_else(|e| panic!("{e}"))).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
    Answer { status, headers, body: serde_json::from_slice(&bytes).unwrap_or(Value::Null) }
}

fn problem(answer: &Answer, status: u16, slug: &str) {
    assert_eq!(answer.status.as_u16(), status, "{}", answer.body);
    assert_eq!(answer.body["type"], format!("{PROBLEMS}{slug}"), "{}", answer.body);
}

fn fields(answer: &Answer) -> Vec<String> {
    answer.body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["field"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_replayed_idempotency_key_answers_the_first_request_and_says_so() {
    let h = harness().await;
    let user = h.keys.token(Role::MemberUser, Some(Uuid::now_v7()), None);
    let body = json!({"offer_id": Uuid::now_v7().to_string(), "subject": "Voirie"}).to_string();
    let key = [("Idempotency-Key", "retry-42")];

    let first = call(&h.app, "POST", "/v1/requests", &user, &key, Some(&body)).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(first.headers.get("idempotency-replayed").is_none(), "a first submission is not a replay");

    let again = call(&h.app, "POST", "/v1/requests", &user, &key, Some(&body)).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.headers.get("idempotency-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(again.body, first.body, "the same body as the first answer");
    assert_eq!(again.headers.get(header::LOCATION), first.headers.get(header::LOCATION));

    // Without a key, every submission is a new request, never a replay.
    let plain = call(&h.app, "POST", "/v1/requests", &user, &[], Some(&body)).await;
    assert_eq!(plain.status, StatusCode::CREATED, "{}", plain.body);
    assert!(plain.headers.get("idempotency-replayed").is_none());
}

#[tokio::test]
async fn placing_a_request_no_longer_in_triage_is_a_conflict_and_an_unknown_one_not_found() {
    let h = harness().await;
    let coordinator = h.keys.token(Role::Coordinator, None, None);
    let body = json!({"provider_code": "caue77"}).to_string();

    let placed = call(&h.app, "POST", &format!("/v1/triage/{PLACED}/assign"), &coordinator, &[], Some(&body)).await;
    problem(&placed, 409, "invalid-transition");
    assert!(placed.body["detail"].as_str().is_some_and(|d| d.contains("referred")), "{}", placed.body);

    let unknown = call(&h.app, "POST", &format!("/v1/triage/{UNKNOWN}/assign"), &coordinator, &[], Some(&body)).await;
    problem(&unknown, 404, "not-found");

    // Another missing thing (the offer) stays "not found", without asking the requests service.
    let before = h.requests.calls.lock().map(|c| c.len()).unwrap_or_default();
    let offer = json!({"offer_id": "unknown-offer"}).to_string();
    let missing = call(&h.app, "POST", &format!("/v1/triage/{PLACED}/assign"), &coordinator, &[], Some(&offer)).await;
    problem(&missing, 404, "not-found");
    assert_eq!(h.requests.calls.lock().map(|c| c.len()).unwrap_or_default(), before);
}

#[tokio::test]
async fn preferences_are_booleans_never_null() {
    let h = harness().await;
    let user = h.keys.token(Role::MemberUser, Some(Uuid::now_v7()), None);
    let uri = "/v1/me/notification-preferences";
    for body in [r#"{"message_posted": null}"#, r#"{"status_changed": true, "message_posted": null}"#, "{}"] {
        let answer = call(&h.app, "PUT", uri, &user, &[], Some(body)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}: {}", answer.body);
    }
    let answer = call(&h.app, "PUT", uri, &user, &[], Some(r#"{"message_posted": false}"#)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body, json!({"status_changed": true, "message_posted": false}));
}

#[tokio::test]
async fn query_parameters_are_known_and_well_formed() {
    let h = harness().await;
    let coordinator = h.keys.token(Role::Coordinator, None, None);
    let user = h.keys.token(Role::MemberUser, Some(Uuid::now_v7()), None);

    // Unknown parameters are refused, naming the parameter.
    for uri in [
        "/v1/requests?colour=blue",
        "/v1/requests/summary?colour=blue",
        "/v1/requests/summary?limit=10",
        "/v1/statistics/requests?from=2026-01-01&to=2026-01-31&colour=blue",
        "/v1/triage?colour=blue",
        "/v1/requests/r-1/messages?colour=blue",
    ] {
        let answer = call(&h.app, "GET", uri, &coordinator, &[], None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}: {}", answer.body);
        let detail = answer.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("colour") || detail.contains("limit"), "{uri}: {detail}");
    }

    // An empty or malformed member id names no member: refused before the service is asked.
    for uri in ["/v1/requests/summary?member_id=", "/v1/requests/summary?member_id=abc", "/v1/requests?member_id="] {
        let answer = call(&h.app, "GET", uri, &user, &[], None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}: {}", answer.body);
        assert_eq!(fields(&answer), ["member_id"], "{uri}");
    }
    assert!(h.requests.calls.lock().map(|c| c.is_empty()).unwrap_or_default());
    let answer = call(&h.app, "GET", "/v1/requests/summary?category=exhibition_loan", &user, &[], None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);

    // The statistics need both bounds and a period that is not empty (a date `to` includes its day).
    let stats = "/v1/statistics/requests";
    for (query, field) in [
        ("", "from"),
        ("?to=2026-01-31", "from"),
        ("?from=2026-01-31", "to"),
        ("?from=2026-02-01&to=2026-01-31", "to"),
        ("?from=2026-01-31T10:00:00Z&to=2026-01-31T10:00:00Z", "to"),
    ] {
        let answer = call(&h.app, "GET", &format!("{stats}{query}"), &coordinator, &[], None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}: {}", answer.body);
        assert!(fields(&answer).contains(&field.to_owned()), "{query}: {}", answer.body);
    }
    for query in ["?from=2026-01-31&to=2026-01-31", "?from=2026-01-31T10:00:00Z&to=2026-01-31"] {
        let answer = call(&h.app, "GET", &format!("{stats}{query}"), &coordinator, &[], None).await;
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.body);
    }

    // The list's `to` is not before its `from`: the same instant is an empty period, not an error.
    let list = "/v1/requests/summary?from=2026-01-31T10:00:00Z&to=2026-01-31T10:00:00Z";
    let answer = call(&h.app, "GET", list, &coordinator, &[], None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let list = "/v1/requests/summary?from=2026-02-01&to=2026-01-31";
    let answer = call(&h.app, "GET", list, &coordinator, &[], None).await;
    assert_eq!(fields(&answer), ["to"], "{}", answer.body);
}

#[tokio::test]
async fn attachment_names_are_at_most_200_characters() {
    let h = harness().await;
    let user = h.keys.token(Role::MemberUser, Some(Uuid::now_v7()), None);
    let long = format!("{}.pdf", "a".repeat(197));
    let answer = call(
        &h.app,
        "POST",
        "/v1/requests/r-1/attachments",
        &user,
        &[("content-type", "application/pdf"), ("x-filename", &long)],
        Some("%PDF-1.4"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(fields(&answer), ["X-Filename"]);
    let empty = call(
        &h.app,
        "POST",
        "/v1/requests/r-1/attachments?colour=blue",
        &user,
        &[("content-type", "application/pdf"), ("x-filename", "plan.pdf")],
        Some("%PDF-1.4"),
    )
    .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.body);
}
