//! The errors requests answers with beyond the platform's generic ones (invalid fields, not found, internal):
//! each names its code and its reason, which clients, the gateway and tests branch on. They turn into the
//! platform's `ServiceError` with `?` ([`DomainError`]).

use id77_platform::{DomainError, ErrorCode};

/// A request could not be submitted, moved or rated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestsError {
    /// Only an active member files requests (`status`: its status, or `None` when requests does not know the
    /// member yet).
    #[error(
        "member {member_id} is {}; only an active member can submit requests",
        status.as_deref().unwrap_or("not known yet")
    )]
    MemberNotActive { member_id: uuid::Uuid, status: Option<String> },
    /// The submission names an offer requests' read model does not hold.
    #[error("offer {0} not found")]
    OfferNotFound(uuid::Uuid),
    /// The same Idempotency-Key was used for another body.
    #[error("Idempotency-Key {0:?} was already used for a different request body")]
    IdempotencyKeyReused(String),
    /// Feedback is given on a completed request, until it is closed (`status`: the request's).
    #[error("feedback is given on a completed request, until it is closed; this one is {status}")]
    FeedbackNotOpen { status: &'static str },
    /// A user's command the request's status does not allow (`from`: the status, `what`: what was asked).
    #[error("a {from} request cannot be {what}")]
    InvalidTransition { from: &'static str, what: String },
}

impl DomainError for RequestsError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::MemberNotActive { .. } | Self::FeedbackNotOpen { .. } | Self::InvalidTransition { .. } => {
                ErrorCode::FailedPrecondition
            }
            Self::OfferNotFound(_) => ErrorCode::NotFound,
            Self::IdempotencyKeyReused(_) => ErrorCode::AlreadyExists,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::MemberNotActive { .. } => "MEMBER_NOT_ACTIVE",
            Self::OfferNotFound(_) => "OFFER_NOT_FOUND",
            Self::IdempotencyKeyReused(_) => "IDEMPOTENCY_KEY_REUSED",
            Self::FeedbackNotOpen { .. } => "FEEDBACK_NOT_OPEN",
            Self::InvalidTransition { .. } => "INVALID_TRANSITION",
        }
    }
}

/// An attachment refused while it streams in (all INVALID_ARGUMENT).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    /// The declared type is not one a thread accepts (`allowed`: those it does, comma-separated).
    #[error("attachments of type {declared:?} are not allowed (allowed: {allowed})")]
    TypeNotAllowed { declared: String, allowed: String },
    /// The file's first bytes (or, for text, its encoding) are not those of its declared type.
    #[error("the file's content is not {0} as declared")]
    ContentMismatch(&'static str),
    /// Over the size limit (`max_bytes`, 10 MiB).
    #[error("attachments must be at most {max_bytes} bytes (10 MiB)")]
    TooLarge { max_bytes: u64 },
    #[error("the file is empty")]
    Empty,
}

impl DomainError for ConversationError {
    fn code(&self) -> ErrorCode {
        ErrorCode::InvalidArgument
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::TypeNotAllowed { .. } => "ATTACHMENT_TYPE_NOT_ALLOWED",
            Self::ContentMismatch(_) => "ATTACHMENT_CONTENT_MISMATCH",
            Self::TooLarge { .. } => "ATTACHMENT_TOO_LARGE",
            Self::Empty => "ATTACHMENT_EMPTY",
        }
    }
}

#[cfg(test)]
mod tests {
    use id77_platform::ServiceError;

    use super::*;

    #[test]
    fn every_error_keeps_its_code_reason_and_words() {
        let member = uuid::Uuid::from_u128(1);
        let cases: [(ServiceError, ErrorCode, &str, &str); 6] = [
            (
                RequestsError::MemberNotActive { member_id: member, status: None }.into(),
                ErrorCode::FailedPrecondition,
                "MEMBER_NOT_ACTIVE",
                "is not known yet; only an active member can submit requests",
            ),
            (
                RequestsError::MemberNotActive { member_id: member, status: Some("pending".into()) }.into(),
                ErrorCode::FailedPrecondition,
                "MEMBER_NOT_ACTIVE",
                "is pending;",
            ),
            (RequestsError::OfferNotFound(member).into(), ErrorCode::NotFound, "OFFER_NOT_FOUND", "not found"),
            (
                RequestsError::IdempotencyKeyReused("k".into()).into(),
                ErrorCode::AlreadyExists,
                "IDEMPOTENCY_KEY_REUSED",
                "Idempotency-Key \"k\" was already used",
            ),
            (
                RequestsError::InvalidTransition { from: "completed", what: "cancel".into() }.into(),
                ErrorCode::FailedPrecondition,
                "INVALID_TRANSITION",
                "a completed request cannot be cancel",
            ),
            (ConversationError::Empty.into(), ErrorCode::InvalidArgument, "ATTACHMENT_EMPTY", "the file is empty"),
        ];
        for (error, code, reason, words) in cases {
            assert_eq!((error.code, error.reason.as_ref()), (code, reason));
            assert!(error.message.contains(words), "{}", error.message);
        }
    }
}
