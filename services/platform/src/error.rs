//! One error type for every service, mapped once to a gRPC status (with `google.rpc` details) and, at the
//! gateway, to an HTTP status and a problem+json body.

use std::borrow::Cow;
use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The domain of `google.rpc.ErrorInfo` in every status this platform returns.
pub const ERROR_DOMAIN: &str = "id77.seine-et-marne.fr";

/// What went wrong, independent of the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn grpc(self) -> Code {
        match self {
            Self::InvalidArgument => Code::InvalidArgument,
            Self::NotFound => Code::NotFound,
            Self::AlreadyExists => Code::AlreadyExists,
            Self::FailedPrecondition => Code::FailedPrecondition,
            Self::PermissionDenied => Code::PermissionDenied,
            Self::Unauthenticated => Code::Unauthenticated,
            Self::Unavailable => Code::Unavailable,
            Self::Internal => Code::Internal,
        }
    }

    pub fn from_grpc(code: Code) -> Self {
        match code {
            Code::InvalidArgument | Code::OutOfRange => Self::InvalidArgument,
            Code::NotFound => Self::NotFound,
            Code::AlreadyExists | Code::Aborted => Self::AlreadyExists,
            Code::FailedPrecondition => Self::FailedPrecondition,
            Code::PermissionDenied => Self::PermissionDenied,
            Code::Unauthenticated => Self::Unauthenticated,
            Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Cancelled => Self::Unavailable,
            _ => Self::Internal,
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidArgument => 400,
            Self::Unauthenticated => 401,
            Self::PermissionDenied => 403,
            Self::NotFound => 404,
            Self::AlreadyExists | Self::FailedPrecondition => 409,
            Self::Unavailable => 503,
            Self::Internal => 500,
        }
    }

    /// Short title for problem+json.
    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidArgument => "Invalid request",
            Self::NotFound => "Not found",
            Self::AlreadyExists => "Already exists",
            Self::FailedPrecondition => "Not possible in the current state",
            Self::PermissionDenied => "Forbidden",
            Self::Unauthenticated => "Authentication required",
            Self::Unavailable => "Service unavailable",
            Self::Internal => "Internal error",
        }
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// An error a service returns to its caller.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ServiceError {
    pub code: ErrorCode,
    pub message: String,
    /// Machine-readable reason in UPPER_SNAKE_CASE (e.g. `MEMBER_NOT_ACTIVE`), also the problem type slug.
    pub reason: Cow<'static, str>,
    pub violations: Vec<FieldViolation>,
}

impl ServiceError {
    pub fn new(code: ErrorCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason: Cow::Borrowed(reason), message: message.into(), violations: Vec::new() }
    }

    /// One invalid field.
    pub fn invalid(field: &str, description: &str) -> Self {
        Self::invalid_fields(vec![FieldViolation { field: field.to_owned(), description: description.to_owned() }])
    }

    /// Several invalid fields at once, so a client can show them all.
    pub fn invalid_fields(violations: Vec<FieldViolation>) -> Self {
        let message =
            violations.iter().map(|v| format!("{} {}", v.field, v.description)).collect::<Vec<_>>().join("; ");
        Self { code: ErrorCode::InvalidArgument, reason: Cow::Borrowed("INVALID_ARGUMENT"), message, violations }
    }

    pub fn not_found(what: &str, id: &str) -> Self {
        Self::new(ErrorCode::NotFound, "NOT_FOUND", format!("{what} {id} not found"))
    }

    pub fn internal(context: &str, error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, context, "internal error");
        Self::new(ErrorCode::Internal, "INTERNAL", format!("internal error while {context}"))
    }

    /// Reads a status built by `From<ServiceError> for Status` (or any other status) back.
    pub fn from_status(status: &Status) -> Self {
        let details = status.get_error_details();
        let reason = details
            .error_info()
            .map(|info| info.reason.trim())
            .filter(|r| is_reason(r))
            .map(|r| Cow::Owned(r.to_owned()))
            .unwrap_or_else(|| Cow::Borrowed(default_reason(status.code())));
        let violations = details
            .bad_request()
            .map(|br| {
                br.field_violations
                    .iter()
                    .map(|v| FieldViolation { field: v.field.clone(), description: v.description.clone() })
                    .collect()
            })
            .unwrap_or_default();
        Self { code: ErrorCode::from_grpc(status.code()), message: status.message().to_owned(), reason, violations }
    }
}

/// A service's own error: one enum per service whose variants know their code and reason, so that the mapping
/// to a gRPC status (and, at the gateway, to HTTP and problem+json) is written once, here. The message is the
/// error's `Display`.
///
/// ```ignore
/// #[derive(Debug, thiserror::Error)]
/// pub enum BillingError {
///     #[error("quote {0} is no longer proposed")]
///     QuoteNotProposed(Uuid),
/// }
/// impl DomainError for BillingError {
///     fn code(&self) -> ErrorCode { ErrorCode::FailedPrecondition }
///     fn reason(&self) -> &'static str { "QUOTE_NOT_PROPOSED" }
/// }
/// ```
pub trait DomainError: std::error::Error {
    fn code(&self) -> ErrorCode;
    /// UPPER_SNAKE_CASE, stable: clients branch on it (`google.rpc.ErrorInfo.reason`, the problem type).
    fn reason(&self) -> &'static str;
    /// The invalid fields, for an [`ErrorCode::InvalidArgument`].
    fn violations(&self) -> Vec<FieldViolation> {
        Vec::new()
    }
}

impl<E: DomainError> From<E> for ServiceError {
    fn from(error: E) -> Self {
        let code = error.code();
        if code == ErrorCode::Internal {
            tracing::error!(error = %error, "internal error");
        }
        Self { code, reason: Cow::Borrowed(error.reason()), message: error.to_string(), violations: error.violations() }
    }
}

/// A reason is UPPER_SNAKE_CASE, short: anything else from the wire is replaced by the code's default.
fn is_reason(reason: &str) -> bool {
    !reason.is_empty()
        && reason.len() <= 64
        && reason.bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b.is_ascii_digit())
}

fn default_reason(code: Code) -> &'static str {
    match ErrorCode::from_grpc(code) {
        ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
        ErrorCode::NotFound => "NOT_FOUND",
        ErrorCode::AlreadyExists => "ALREADY_EXISTS",
        ErrorCode::FailedPrecondition => "INVALID_TRANSITION",
        ErrorCode::PermissionDenied => "PERMISSION_DENIED",
        ErrorCode::Unauthenticated => "UNAUTHENTICATED",
        ErrorCode::Unavailable => "UNAVAILABLE",
        ErrorCode::Internal => "INTERNAL",
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        let mut details = ErrorDetails::new();
        details.set_error_info(error.reason.clone(), ERROR_DOMAIN, HashMap::new());
        for v in &error.violations {
            details.add_bad_request_violation(v.field.clone(), v.description.clone());
        }
        Status::with_error_details(error.code.grpc(), error.message, details)
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                tracing::warn!(%error, "database unavailable");
                Self::new(ErrorCode::Unavailable, "UNAVAILABLE", "database unavailable, retry later")
            }
            _ => Self::internal("querying the database", error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_the_round_trip_through_a_grpc_status() {
        let error = ServiceError::invalid("siren", "must be 9 digits");
        let status = Status::from(error);
        assert_eq!(status.code(), Code::InvalidArgument);
        let back = ServiceError::from_status(&status);
        assert_eq!(back.code, ErrorCode::InvalidArgument);
        assert_eq!(back.reason, "INVALID_ARGUMENT");
        assert_eq!(
            back.violations,
            vec![FieldViolation { field: "siren".into(), description: "must be 9 digits".into() }]
        );
        assert_eq!(back.code.http_status(), 400);
    }

    #[test]
    fn unknown_reasons_and_plain_statuses_still_map() {
        let back = ServiceError::from_status(&Status::not_found("x"));
        assert_eq!((back.code, back.reason.as_ref()), (ErrorCode::NotFound, "NOT_FOUND"));
        let custom = Status::from(ServiceError::new(ErrorCode::FailedPrecondition, "MEMBER_NOT_ACTIVE", "m"));
        assert_eq!(ServiceError::from_status(&custom).reason, "MEMBER_NOT_ACTIVE");
        let weird = Status::from(ServiceError::new(ErrorCode::Unauthenticated, "<script>", "m"));
        assert_eq!(ServiceError::from_status(&weird).reason, "UNAUTHENTICATED");
    }
}
