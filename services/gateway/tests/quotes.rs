//! A member admin's decision on a quote, and the provider's work that waits for it (ADR 0013), against
//! in-process fakes of billing's and routing's gRPC services: what the REST bodies become on the wire, and how
//! the services' refusals come back as problem+json (400 naming the field, 403, 409 `invalid-transition`,
//! 409 `quote-not-accepted`).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use id77_gateway::{AppState, Config, router};
use id77_platform::auth::Role;
use id77_platform::error::FieldViolation;
use id77_platform::testing::TestKeys;
use id77_platform::{DomainError, ErrorCode, ServiceError};
use id77_proto::billing::v1 as billing;
use id77_proto::billing::v1::billing_service_server::{BillingService, BillingServiceServer};
use id77_proto::prost_types::Timestamp;
use id77_proto::routing::v1 as routing;
use id77_proto::routing::v1::routing_service_server::{RoutingService, RoutingServiceServer};
use serde_json::{Value, json};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};
use tower::ServiceExt;
use uuid::Uuid;

const PROBLEMS: &str = "https://id77.seine-et-marne.fr/problems/";
const PROVIDER: &str = "caue77";

/// What the fakes were asked, in order: the RPC and its request as debug text.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(&'static str, String)>>>);

impl Seen {
    fn push(&self, rpc: &'static str, request: impl std::fmt::Debug) {
        if let Ok(mut seen) = self.0.lock() {
            seen.push((rpc, format!("{request:?}")));
        }
    }

    fn all(&self) -> Vec<(&'static str, String)> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

/// A service's own refusal, as its error enum sends it.
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

fn refusal(code: ErrorCode, reason: &'static str, message: &str) -> Status {
    Status::from(ServiceError::from(Refusal { code, reason, message: message.to_owned() }))
}

fn conflict(reason: &'static str, message: &str) -> Status {
    refusal(ErrorCode::FailedPrecondition, reason, message)
}

/// Implements a service trait: the RPCs a test uses by hand, every other one answering UNIMPLEMENTED (the
/// gateway routes under test never call them).
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

/// Billing: quote ids say what billing answers (`q-other-member`: PERMISSION_DENIED, `q-decided`: not
/// proposed any more); a signatory named `billing-refuses` is billing's own field error.
#[derive(Clone, Default)]
struct Billing(Seen);

fn decided_quote(id: &str, status: billing::QuoteStatus) -> billing::Quote {
    billing::Quote {
        id: id.to_owned(),
        number: "D-caue77-2026-000007".into(),
        issuer_code: PROVIDER.into(),
        amount_cents: 245_000,
        currency: "EUR".into(),
        vat_rate_bp: Some(2000),
        status: status.into(),
        issued_at: at(1_700_000_000),
        expires_at: at(1_702_592_000),
        decided_at: at(1_700_086_400),
        decided_by_user_id: "0190a1b2-c3d4-7e5f-8a9b-000000000042".into(),
        decided_by_name: "Marie Dupont".into(),
        ..Default::default()
    }
}

fn billing_refusal(id: &str) -> Option<Status> {
    match id {
        "q-other-member" => Some(refusal(
            ErrorCode::PermissionDenied,
            "PERMISSION_DENIED",
            "only a member admin of the quote's member decides on it",
        )),
        "q-decided" => Some(conflict("INVALID_TRANSITION", "quote D-caue77-2026-000007 is accepted, not proposed")),
        _ => None,
    }
}

fake! {
    BillingService for Billing {
        async fn accept_quote(
            &self,
            request: GrpcRequest<billing::AcceptQuoteRequest>,
        ) -> Result<GrpcResponse<billing::Quote>, Status> {
            let request = request.into_inner();
            self.0.push("AcceptQuote", &request);
            if let Some(refusal) = billing_refusal(&request.id) {
                return Err(refusal);
            }
            if request.signatory_name == "billing-refuses" {
                return Err(Status::from(ServiceError::invalid_fields(vec![FieldViolation {
                    field: "signatory_name".into(),
                    description: "must name a person".into(),
                }])));
            }
            let mut quote = decided_quote(&request.id, billing::QuoteStatus::Accepted);
            quote.signatory_name = request.signatory_name;
            quote.purchase_order_number = request.purchase_order_number;
            Ok(GrpcResponse::new(quote))
        }

        async fn refuse_quote(
            &self,
            request: GrpcRequest<billing::RefuseQuoteRequest>,
        ) -> Result<GrpcResponse<billing::Quote>, Status> {
            let request = request.into_inner();
            self.0.push("RefuseQuote", &request);
            if let Some(refusal) = billing_refusal(&request.id) {
                return Err(refusal);
            }
            let mut quote = decided_quote(&request.id, billing::QuoteStatus::Refused);
            quote.decision_reason = request.reason;
            Ok(GrpcResponse::new(quote))
        }
    }
    others {
        list_quotes(billing::ListQuotesRequest) -> billing::ListQuotesResponse;
        get_quote(billing::GetQuoteRequest) -> billing::Quote;
        list_invoices(billing::ListInvoicesRequest) -> billing::ListInvoicesResponse;
        get_invoice(billing::GetInvoiceRequest) -> billing::Invoice;
        issue_credit_note(billing::IssueCreditNoteRequest) -> billing::CreditNote;
        export_invoice(billing::ExportInvoiceRequest) -> billing::ExportInvoiceResponse;
        get_credit_note(billing::GetCreditNoteRequest) -> billing::CreditNote;
        export_credit_note(billing::ExportCreditNoteRequest) -> billing::ExportInvoiceResponse;
        export_quote(billing::ExportQuoteRequest) -> billing::ExportInvoiceResponse;
        mark_invoice(billing::MarkInvoiceRequest) -> billing::Invoice;
    }
}

/// Routing: referral ids say what routing answers to progress and completion (`r-awaiting`: the member has not
/// accepted the quote; `r-withdrawn`: the member cancelled the request).
#[derive(Clone, Default)]
struct Routing(Seen);

fn routing_answer(id: &str) -> Result<GrpcResponse<routing::Referral>, Status> {
    match id {
        "r-awaiting" => Err(conflict("QUOTE_NOT_ACCEPTED", "quote agreement awaiting_member")),
        "r-withdrawn" => Err(conflict("INVALID_TRANSITION", "referral r-withdrawn is withdrawn: the member cancelled")),
        _ => Ok(GrpcResponse::new(routing::Referral {
            id: id.to_owned(),
            provider_code: PROVIDER.into(),
            status: routing::ReferralStatus::Accepted.into(),
            agreement: routing::QuoteAgreement::Agreed.into(),
            decided_by_role: "provider_agent".into(),
            decided_by_name: "Paul Martin".into(),
            ..Default::default()
        })),
    }
}

fake! {
    RoutingService for Routing {
        async fn reply_to_referral(
            &self,
            request: GrpcRequest<routing::ReplyToReferralRequest>,
        ) -> Result<GrpcResponse<routing::Referral>, Status> {
            let request = request.into_inner();
            self.0.push("ReplyToReferral", &request);
            routing_answer(&request.referral_id)
        }

        async fn report_referral_progress(
            &self,
            request: GrpcRequest<routing::ReportReferralProgressRequest>,
        ) -> Result<GrpcResponse<routing::Referral>, Status> {
            let request = request.into_inner();
            self.0.push("ReportReferralProgress", &request);
            routing_answer(&request.referral_id)
        }
    }
    others {
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
        assign_triaged(routing::AssignTriagedRequest) -> routing::Referral;
    }
}

struct Harness {
    app: Router,
    billing: Seen,
    routing: Seen,
    keys: TestKeys,
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
    let (billing, routing) = (Billing::default(), Routing::default());
    let (billing_seen, routing_seen) = (billing.0.clone(), routing.0.clone());
    let (billing_url, billing_server) =
        serve(tonic::transport::Server::builder().add_service(BillingServiceServer::new(billing))).await;
    let (routing_url, routing_server) =
        serve(tonic::transport::Server::builder().add_service(RoutingServiceServer::new(routing))).await;
    let keys = TestKeys::new().unwrap_or_else(|e| panic!("{e:#}"));
    let mut config = Config::with_all_upstreams("http://127.0.0.1:1");
    config.billing_url = billing_url;
    config.routing_url = routing_url;
    config.jwks_file = Some(keys.jwks_file.clone());
    let app = router(AppState::new(&config).unwrap_or_else(|e| panic!("{e:#}")));
    Harness { app, billing: billing_seen, routing: routing_seen, keys, _servers: vec![billing_server, routing_server] }
}

async fn post(app: &Router, uri: &str, token: &str, body: Option<&str>) -> (StatusCode, String, Value) {
    let mut builder = Request::post(uri).header(header::AUTHORIZATION, format!("Bearer {token}"));
    if body.is_some() {
        builder = builder.header(header::CONTENT_TYPE, "application/json");
    }
    let request = builder.body(body.map(|b| Body::from(b.to_owned())).unwrap_or_default());
    let response = match app.clone().oneshot(request.unwrap_or_else(|e| panic!("{e}"))).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let kind = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
    (status, kind, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// Asserts a problem+json of this status and type slug, and returns it.
fn problem(answer: (StatusCode, String, Value), status: u16, slug: &str) -> Value {
    let (code, kind, body) = answer;
    assert_eq!(code.as_u16(), status, "{body}");
    assert_eq!(kind, "application/problem+json", "{body}");
    assert_eq!(body["type"], format!("{PROBLEMS}{slug}"), "{body}");
    assert_eq!(body["status"], status, "{body}");
    body
}

fn fields(problem: &Value) -> Vec<&str> {
    problem["errors"].as_array().map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn a_member_admin_accepts_a_quote_with_a_signatory_and_a_purchase_order_number() {
    let h = harness().await;
    let admin = h.keys.token(Role::MemberAdmin, Some(Uuid::now_v7()), None);
    let body = json!({"signatory_name": "  Marie Dupont, maire ", "purchase_order_number": "EJ-2026-0042"});
    let (status, _, quote) = post(&h.app, "/v1/quotes/q-1/accept", &admin, Some(&body.to_string())).await;
    assert_eq!(status, StatusCode::OK, "{quote}");
    let seen = h.billing.all();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "AcceptQuote");
    // The names are trimmed before they reach billing.
    assert!(seen[0].1.contains(r#"id: "q-1""#), "{}", seen[0].1);
    assert!(seen[0].1.contains(r#"signatory_name: "Marie Dupont, maire""#), "{}", seen[0].1);
    assert!(seen[0].1.contains(r#"purchase_order_number: "EJ-2026-0042""#), "{}", seen[0].1);
    assert_eq!(quote["status"], "accepted");
    assert_eq!(quote["signatory_name"], "Marie Dupont, maire");
    assert_eq!(quote["purchase_order_number"], "EJ-2026-0042");
    assert_eq!(quote["decided_by_name"], "Marie Dupont");
    assert_eq!(quote["decided_at"], "2023-11-15T22:13:20Z");
    assert_eq!(quote["expires_at"], "2023-12-14T22:13:20Z");
    assert_eq!(quote["decision_reason"], Value::Null);

    // The purchase order number is optional: absent, it reaches billing empty and comes back null.
    let body = json!({"signatory_name": "Marie Dupont"}).to_string();
    let (status, _, quote) = post(&h.app, "/v1/quotes/q-2/accept", &admin, Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{quote}");
    assert!(h.billing.all()[1].1.contains(r#"purchase_order_number: """#));
    assert_eq!(quote["purchase_order_number"], Value::Null);
}

#[tokio::test]
async fn a_member_admin_refuses_a_quote_with_a_reason() {
    let h = harness().await;
    let admin = h.keys.token(Role::MemberAdmin, Some(Uuid::now_v7()), None);
    let body = json!({"reason": "Budget non voté cette année"}).to_string();
    let (status, _, quote) = post(&h.app, "/v1/quotes/q-3/refuse", &admin, Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{quote}");
    let seen = h.billing.all();
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), ["RefuseQuote"]);
    assert!(seen[0].1.contains(r#"reason: "Budget non voté cette année""#), "{}", seen[0].1);
    assert_eq!(
        (quote["status"].as_str(), quote["decision_reason"].as_str()),
        (Some("refused"), Some("Budget non voté cette année"))
    );
}

#[tokio::test]
async fn invalid_bodies_are_400_naming_the_field_before_billing_is_called() {
    let h = harness().await;
    let admin = h.keys.token(Role::MemberAdmin, Some(Uuid::now_v7()), None);
    let cases: Vec<(&str, String, &str, Vec<&str>)> = vec![
        ("accept", json!({}).to_string(), "invalid-argument", vec!["signatory_name"]),
        ("accept", json!({"signatory_name": "   "}).to_string(), "invalid-argument", vec!["signatory_name"]),
        (
            "accept",
            json!({"signatory_name": "é".repeat(201), "purchase_order_number": "9".repeat(51)}).to_string(),
            "invalid-argument",
            vec!["signatory_name", "purchase_order_number"],
        ),
        (
            "accept",
            json!({"signatory_name": "Marie", "purchase_order_number": "EJ\u{7}1"}).to_string(),
            "invalid-argument",
            vec!["purchase_order_number"],
        ),
        ("refuse", json!({"reason": ""}).to_string(), "invalid-argument", vec!["reason"]),
        ("refuse", json!({"reason": "x".repeat(1001)}).to_string(), "invalid-argument", vec!["reason"]),
        // Unknown fields and wrong types are refused like on the other decision routes.
        ("accept", json!({"signatory_name": "Marie", "signatory": "x"}).to_string(), "invalid-body", vec![]),
        ("refuse", json!({"reason": 7}).to_string(), "invalid-body", vec![]),
        ("refuse", "{\"reason\": ".to_owned(), "malformed-json", vec![]),
    ];
    for (action, body, slug, expected) in cases {
        let answer = post(&h.app, &format!("/v1/quotes/q-4/{action}"), &admin, Some(&body)).await;
        let problem = problem(answer, 400, slug);
        assert_eq!(fields(&problem), expected, "{action} {body}");
    }
    // Exactly the limits pass.
    let body = json!({"signatory_name": "é".repeat(200), "purchase_order_number": "9".repeat(50)}).to_string();
    let (status, _, answer) = post(&h.app, "/v1/quotes/q-4/accept", &admin, Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(h.billing.all().len(), 1, "only the valid body reached billing");
    // Too big a body, or no JSON at all.
    let big = json!({"reason": "x".repeat(70 * 1024)}).to_string();
    problem(post(&h.app, "/v1/quotes/q-4/refuse", &admin, Some(&big)).await, 413, "payload-too-large");
    problem(post(&h.app, "/v1/quotes/q-4/refuse", &admin, None).await, 415, "unsupported-media-type");
    // Billing's own field errors keep their field.
    let body = json!({"signatory_name": "billing-refuses"}).to_string();
    let problem = problem(post(&h.app, "/v1/quotes/q-5/accept", &admin, Some(&body)).await, 400, "invalid-argument");
    assert_eq!(fields(&problem), ["signatory_name"]);
    assert_eq!(problem["errors"][0]["detail"], "must name a person");
}

#[tokio::test]
async fn only_a_member_admin_of_the_quote_s_member_decides_and_only_once() {
    let h = harness().await;
    let admin = h.keys.token(Role::MemberAdmin, Some(Uuid::now_v7()), None);
    let accept = json!({"signatory_name": "Marie Dupont"}).to_string();
    let refuse = json!({"reason": "Trop cher"}).to_string();
    // Other roles: the gateway refuses before billing is called.
    for token in [
        h.keys.token(Role::MemberUser, Some(Uuid::now_v7()), None),
        h.keys.token(Role::ProviderAgent, None, Some(PROVIDER)),
        h.keys.token(Role::Coordinator, None, None),
    ] {
        problem(post(&h.app, "/v1/quotes/q-6/accept", &token, Some(&accept)).await, 403, "permission-denied");
        problem(post(&h.app, "/v1/quotes/q-6/refuse", &token, Some(&refuse)).await, 403, "permission-denied");
    }
    assert!(h.billing.all().is_empty(), "no other role reaches billing");
    // Another member's admin: billing says no.
    problem(post(&h.app, "/v1/quotes/q-other-member/accept", &admin, Some(&accept)).await, 403, "permission-denied");
    problem(post(&h.app, "/v1/quotes/q-other-member/refuse", &admin, Some(&refuse)).await, 403, "permission-denied");
    // A quote already decided (or voided, or expired).
    let body =
        problem(post(&h.app, "/v1/quotes/q-decided/accept", &admin, Some(&accept)).await, 409, "invalid-transition");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("not proposed")), "{body}");
    problem(post(&h.app, "/v1/quotes/q-decided/refuse", &admin, Some(&refuse)).await, 409, "invalid-transition");
    assert_eq!(h.billing.all().len(), 4);
}

#[tokio::test]
async fn the_provider_s_work_waits_for_the_member_s_agreement_and_stops_at_a_cancellation() {
    let h = harness().await;
    let agent = h.keys.token(Role::ProviderAgent, None, Some(PROVIDER));
    let note = json!({"note": "Visite de terrain faite", "percent": 60}).to_string();
    // Agreed: progress and completion go through.
    let (status, _, referral) = post(&h.app, "/v1/referrals/r-agreed/progress", &agent, Some(&note)).await;
    assert_eq!(status, StatusCode::OK, "{referral}");
    assert_eq!(referral["agreement"], "agreed");
    assert_eq!(
        (referral["decided_by_name"].as_str(), referral["decided_by_role"].as_str()),
        (Some("Paul Martin"), Some("provider_agent"))
    );
    let (status, _, _) = post(&h.app, "/v1/referrals/r-agreed/complete", &agent, None).await;
    assert_eq!(status, StatusCode::OK);
    // The member has not accepted the quote: a 409 of its own, said clearly.
    for answer in [
        post(&h.app, "/v1/referrals/r-awaiting/progress", &agent, Some(&note)).await,
        post(&h.app, "/v1/referrals/r-awaiting/complete", &agent, None).await,
    ] {
        let body = problem(answer, 409, "quote-not-accepted");
        assert!(body["detail"].as_str().is_some_and(|d| d.contains("has not accepted the quote")), "{body}");
    }
    // The member cancelled the request: the referral is withdrawn.
    for answer in [
        post(&h.app, "/v1/referrals/r-withdrawn/progress", &agent, Some(&note)).await,
        post(&h.app, "/v1/referrals/r-withdrawn/complete", &agent, None).await,
    ] {
        let body = problem(answer, 409, "invalid-transition");
        assert!(body["detail"].as_str().is_some_and(|d| d.contains("withdrawn")), "{body}");
    }
    let rpcs: Vec<_> = h.routing.all().into_iter().map(|s| s.0).collect();
    assert_eq!(
        rpcs,
        [
            "ReportReferralProgress",
            "ReplyToReferral",
            "ReportReferralProgress",
            "ReplyToReferral",
            "ReportReferralProgress",
            "ReplyToReferral"
        ]
    );
}
