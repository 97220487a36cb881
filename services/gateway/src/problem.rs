//! Every error the gateway returns is an RFC 9457 problem (`application/problem+json`):
//! `{type, title, status, detail, errors: [{field, detail}]}`. Upstream gRPC errors are read back with
//! [`ServiceError::from_status`], so the HTTP status, the type slug and the field errors follow the service's
//! own `ErrorInfo` and `BadRequest` details.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use id77_platform::error::FieldViolation;
use id77_platform::{ErrorCode, ServiceError};
use serde::Serialize;
use tonic_types::StatusExt;

/// Base of every problem `type` URI; the slug is the reason in kebab-case.
pub const TYPE_BASE: &str = "https://id77.seine-et-marne.fr/problems/";

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// `WWW-Authenticate` of a 401 for a request without a token (RFC 6750 §3: no error code then), and of every
/// 401 that names no other challenge.
pub const CHALLENGE: &str = "Bearer";

/// One invalid field, as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub detail: String,
}

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    /// Machine-readable reason in UPPER_SNAKE_CASE, e.g. `MEMBER_NOT_ACTIVE`.
    pub reason: String,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Extra response headers (`WWW-Authenticate`, `Retry-After`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    errors: &'a [FieldError],
}

/// `MEMBER_NOT_ACTIVE` → `member-not-active`.
pub fn kebab(reason: &str) -> String {
    reason
        .trim()
        .chars()
        .map(|c| if c == '_' || c == ' ' { '-' } else { c.to_ascii_lowercase() })
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

/// QUOTE_NOT_ACCEPTED: the member has not agreed to the quote yet, so the provider may not work.
pub const QUOTE_NOT_ACCEPTED: &str = "QUOTE_NOT_ACCEPTED";

/// The detail of reasons whose meaning a client must not have to guess from a service's wording.
fn explained(reason: &str) -> Option<&'static str> {
    match reason {
        QUOTE_NOT_ACCEPTED => Some(
            "the member has not accepted the quote yet: progress and completion are possible once a member admin of \
             the collectivité has accepted it (POST /v1/quotes/{id}/accept)",
        ),
        _ => None,
    }
}

/// The detail of every 401 for a refused token: fixed words, never the verifier's or a service's message,
/// which may quote what the token carried (an unknown `kid`, a claim). Only an expiry is told apart (the
/// client then refreshes instead of signing in again).
pub fn refused_token_detail(message: &str) -> &'static str {
    if message.trim_start_matches("authentication required:").trim() == "token expired" {
        EXPIRED_TOKEN
    } else {
        INVALID_TOKEN
    }
}

/// 401 detail of an expired access token.
pub const EXPIRED_TOKEN: &str = "the access token has expired: refresh it or sign in again";
/// 401 detail of any other refused access token.
pub const INVALID_TOKEN: &str = "the access token is not valid: sign in again";

/// Field names of the gRPC contracts that REST clients know under another name.
fn rest_field(field: &str) -> String {
    match field {
        "page_token" => "cursor".to_owned(),
        "page_size" => "limit".to_owned(),
        other => other.to_owned(),
    }
}

impl Problem {
    pub fn new(status: StatusCode, reason: &str, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.to_owned(),
            title,
            detail: detail.into(),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// The same problem with one more response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 429 with `Retry-After` (whole seconds, at least 1).
    pub fn too_many_requests(retry_after_secs: u64, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "Too many requests", detail)
            .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after_secs.max(1)))
    }

    /// A problem of one of the platform's error codes.
    pub fn of(code: ErrorCode, reason: &str, detail: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::new(status, reason, code.title(), detail)
    }

    /// 400 with one field error.
    pub fn invalid(field: &str, detail: &str) -> Self {
        Self::invalid_fields(vec![FieldViolation { field: field.to_owned(), description: detail.to_owned() }])
    }

    /// 400 with several field errors.
    pub fn invalid_fields(violations: Vec<FieldViolation>) -> Self {
        Self::from(ServiceError::invalid_fields(violations))
    }

    /// 400 without field errors (e.g. an unreadable body).
    pub fn bad_request(reason: &str, detail: impl Into<String>) -> Self {
        Self::of(ErrorCode::InvalidArgument, reason, detail)
    }

    /// 401: the route needs an identity and the caller has none.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::of(ErrorCode::Unauthenticated, "UNAUTHENTICATED", detail)
    }

    /// 403: the caller is known but its role may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::of(ErrorCode::PermissionDenied, "PERMISSION_DENIED", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::of(ErrorCode::NotFound, "NOT_FOUND", detail)
    }

    /// 503 naming what is unavailable.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::of(ErrorCode::Unavailable, "UNAVAILABLE", detail)
    }

    /// Reads an upstream gRPC status: code, reason and field violations from its details.
    pub fn from_status(status: &tonic::Status) -> Self {
        if status.code() == tonic::Code::ResourceExhausted {
            // A service's own throttling (e.g. repeated logins): the client should slow down, for as long as the
            // service's `google.rpc.RetryInfo` says (whole seconds, rounded up), else a minute.
            let retry_after = status
                .get_error_details()
                .retry_info()
                .and_then(|info| info.retry_delay)
                .map_or(60, |delay| delay.as_secs() + u64::from(delay.subsec_nanos() > 0));
            return Self::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "Too many requests", status.message())
                .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
        }
        let mut problem = Self::from(ServiceError::from_status(status));
        if let Some(detail) = explained(&problem.reason) {
            problem.detail = detail.to_owned();
        }
        if problem.status == StatusCode::UNAUTHORIZED {
            // A service's words on a refused token may quote the token (`unknown signing key {kid}`).
            problem.detail = refused_token_detail(status.message()).to_owned();
            problem.errors.clear();
        }
        problem
    }

    /// Like [`Problem::from_status`], naming the upstream when it could not be reached, and logging
    /// the failures that are not the client's.
    pub fn from_upstream(service: &str, status: &tonic::Status) -> Self {
        let mut problem = Self::from_status(status);
        match status.code() {
            tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
                tracing::warn!(upstream = service, code = ?status.code(), message = status.message(), "upstream unavailable");
                // A status without details never reached the service (connection refused, deadline): say which
                // service; a service's own "unavailable" (e.g. its database) keeps its message.
                if status.details().is_empty() {
                    problem.detail = format!("the {service} service is unavailable, retry later");
                }
            }
            tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::DataLoss | tonic::Code::Unimplemented => {
                tracing::error!(upstream = service, code = ?status.code(), message = status.message(), "upstream error");
            }
            _ => {}
        }
        problem
    }

    /// The `type` URI.
    pub fn type_uri(&self) -> String {
        format!("{TYPE_BASE}{}", kebab(&self.reason))
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(Body {
            kind: self.type_uri(),
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: &self.errors,
        })
        .unwrap_or(serde_json::Value::Null)
    }
}

impl From<ServiceError> for Problem {
    fn from(error: ServiceError) -> Self {
        let mut problem = Self::of(error.code, &error.reason, error.message);
        problem.errors = error
            .violations
            .into_iter()
            .map(|v| FieldError { field: rest_field(&v.field), detail: v.description })
            .collect();
        problem
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        // Every 401 says how to authenticate (RFC 9110 §15.5.2).
        if self.status == StatusCode::UNAUTHORIZED && !headers.contains_key(header::WWW_AUTHENTICATE) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE));
        }
        response
    }
}

/// The router's fallback: any unknown path.
pub async fn not_found_route() -> Problem {
    Problem::not_found("no such resource; see /openapi.json for the API")
}

/// The router's fallback for a known path with another method.
pub async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        "Method not allowed",
        "this resource does not support this method; see /openapi.json",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use id77_platform::DomainError;
    use tonic::{Code, Status};

    /// A service's own refusal, as its error enum sends it.
    #[derive(Debug)]
    struct Refusal(ErrorCode, &'static str, &'static str);

    impl std::fmt::Display for Refusal {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.2)
        }
    }

    impl std::error::Error for Refusal {}

    impl DomainError for Refusal {
        fn code(&self) -> ErrorCode {
            self.0
        }

        fn reason(&self) -> &'static str {
            self.1
        }
    }

    /// The gRPC status of a service's refusal.
    fn refused(code: ErrorCode, reason: &'static str, message: &'static str) -> Status {
        Status::from(ServiceError::from(Refusal(code, reason, message)))
    }

    #[test]
    fn reasons_become_kebab_case_slugs() {
        assert_eq!(kebab("MEMBER_NOT_ACTIVE"), "member-not-active");
        assert_eq!(kebab("NOT_FOUND"), "not-found");
        assert_eq!(kebab("weird/../reason"), "weirdreason");
    }

    #[test]
    fn grpc_statuses_map_to_http_statuses_and_slugs() {
        let cases = [
            (Code::InvalidArgument, 400, "invalid-argument"),
            (Code::Unauthenticated, 401, "unauthenticated"),
            (Code::PermissionDenied, 403, "permission-denied"),
            (Code::NotFound, 404, "not-found"),
            (Code::AlreadyExists, 409, "already-exists"),
            (Code::FailedPrecondition, 409, "invalid-transition"),
            (Code::Unavailable, 503, "unavailable"),
            (Code::DeadlineExceeded, 503, "unavailable"),
            (Code::Internal, 500, "internal"),
            (Code::Unknown, 500, "internal"),
        ];
        for (code, http, slug) in cases {
            let problem = Problem::from_status(&Status::new(code, "boom"));
            assert_eq!(problem.status.as_u16(), http, "{code:?}");
            assert_eq!(problem.type_uri(), format!("{TYPE_BASE}{slug}"), "{code:?}");
            // A refused token's detail is fixed (see `a_refused_token_is_never_quoted`).
            let detail = if http == 401 { INVALID_TOKEN } else { "boom" };
            assert_eq!(problem.detail, detail, "{code:?}");
        }
    }

    #[test]
    fn service_reasons_and_field_violations_survive() {
        let status = refused(ErrorCode::FailedPrecondition, "MEMBER_NOT_ACTIVE", "pending");
        let problem = Problem::from_status(&status);
        assert_eq!(problem.status, StatusCode::CONFLICT);
        assert_eq!(problem.type_uri(), "https://id77.seine-et-marne.fr/problems/member-not-active");
        assert_eq!(problem.title, ErrorCode::FailedPrecondition.title());

        let status = Status::from(ServiceError::invalid_fields(vec![
            FieldViolation { field: "siren".into(), description: "must be 9 digits".into() },
            FieldViolation { field: "page_token".into(), description: "is not a token".into() },
        ]));
        let body = Problem::from_status(&status).body();
        assert_eq!(body["status"], 400);
        assert_eq!(body["type"], "https://id77.seine-et-marne.fr/problems/invalid-argument");
        assert_eq!(body["errors"][0]["field"], "siren");
        assert_eq!(body["errors"][0]["detail"], "must be 9 digits");
        assert_eq!(body["errors"][1]["field"], "cursor", "gRPC page_token is the REST cursor");
    }

    #[test]
    fn a_quote_not_accepted_is_a_409_of_its_own_with_a_clear_detail() {
        let status = refused(ErrorCode::FailedPrecondition, QUOTE_NOT_ACCEPTED, "agreement");
        let problem = Problem::from_upstream("routing", &status);
        assert_eq!(problem.status, StatusCode::CONFLICT);
        assert_eq!(problem.type_uri(), format!("{TYPE_BASE}quote-not-accepted"));
        assert!(problem.detail.contains("has not accepted the quote"), "{}", problem.detail);
        // A withdrawn referral keeps the generic slug and the service's own words.
        let status = refused(
            ErrorCode::FailedPrecondition,
            "INVALID_TRANSITION",
            "referral withdrawn: the member cancelled the request",
        );
        let problem = Problem::from_upstream("routing", &status);
        assert_eq!(
            (problem.status, problem.type_uri()),
            (StatusCode::CONFLICT, format!("{TYPE_BASE}invalid-transition"))
        );
        assert_eq!(problem.detail, "referral withdrawn: the member cancelled the request");
    }

    #[test]
    fn a_refused_token_is_never_quoted() {
        let kid = Status::unauthenticated("authentication required: unknown signing key <script>evil-kid</script>");
        let problem = Problem::from_status(&kid);
        assert_eq!((problem.status.as_u16(), problem.detail.as_str()), (401, INVALID_TOKEN));
        let expired = Status::unauthenticated("authentication required: token expired");
        assert_eq!(Problem::from_status(&expired).detail, EXPIRED_TOKEN);
        let forged = Status::unauthenticated("authentication required: unknown signing key token expired");
        assert_eq!(Problem::from_status(&forged).detail, INVALID_TOKEN);
    }

    #[test]
    fn unavailable_upstreams_are_named() {
        let problem = Problem::from_upstream("catalogue", &Status::unavailable("tcp connect error"));
        assert_eq!(problem.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(problem.detail.contains("catalogue"), "{}", problem.detail);
        let own = refused(ErrorCode::Unavailable, "UNAVAILABLE", "database unavailable");
        let problem = Problem::from_upstream("catalogue", &own);
        assert_eq!((problem.status.as_u16(), problem.detail.as_str()), (503, "database unavailable"));
    }

    #[test]
    fn responses_are_problem_json() {
        let response = Problem::forbidden("no").into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some(PROBLEM_JSON));
    }

    #[test]
    fn a_401_always_has_a_challenge_and_a_429_a_retry_after() {
        let response = Problem::unauthenticated("who?").into_response();
        assert_eq!(response.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()), Some("Bearer"));
        let response = Problem::too_many_requests(6, "slow down").into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("6"));
        let problem = Problem::from_status(&Status::resource_exhausted("too many attempts"));
        assert_eq!(problem.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(problem.headers, vec![(header::RETRY_AFTER, HeaderValue::from(60))], "a minute by default");
        // The service's RetryInfo, rounded up to whole seconds.
        let mut details = tonic_types::ErrorDetails::new();
        details.set_retry_info(Some(std::time::Duration::from_millis(7_200)));
        let status = Status::with_error_details(tonic::Code::ResourceExhausted, "too soon", details);
        let response = Problem::from_status(&status).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("8"));
    }
}
