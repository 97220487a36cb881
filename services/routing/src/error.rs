//! Why routing refuses something. [`RoutingError`] is each refusal with its gRPC code and its stable reason
//! (clients, the gateway and tests branch on them); [`FlowError`] is what a use case of [`crate::flow`] returns:
//! a storage failure or a refusal. A consumer turns it into a retry or a dead letter, the API into a status.

use id77_platform::consumer::HandleError;
use id77_platform::error::FieldViolation;
use id77_platform::{DomainError, ErrorCode, ServiceError};

use crate::domain::WorkRefused;
use crate::domain::rules::Invalid;

/// A refusal of routing, whatever asked (the API, a consumer, a timer).
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// A read model is not fed yet (the offer of a request, its member): retry later.
    #[error("{0}")]
    NotYetKnown(String),
    /// The step makes no sense in the referral's or the request's state (wrong state, unknown provider...).
    #[error("{0}")]
    ReferralState(String),
    /// What is missing, e.g. `referral <id>`.
    #[error("{0} not found")]
    NotFound(String),
    /// The coordinator edited a rule set that changed meanwhile.
    #[error("the rules are at version {current}, not {expected}: reload and retry")]
    RulesChanged { current: i32, expected: i32 },
    /// Invalid fields of what was asked, all of them at once.
    #[error("{}", joined(.0))]
    Invalid(Vec<FieldViolation>),
    /// Progress or completion the referral's state forbids: not accepted, withdrawn, or a quote the member has not
    /// accepted yet (reason [`WorkRefused::code`]: `INVALID_TRANSITION`, `QUOTE_NOT_ACCEPTED`).
    #[error("{message}")]
    WorkRefused { refusal: WorkRefused, message: String },
    /// A provider's message that could not be applied now (storage, a read model): its consumer retries it.
    #[error("{0}")]
    Retry(String),
    /// A provider's message that cannot apply (an unknown referral, another provider's): its consumer
    /// dead-letters it.
    #[error("{0}")]
    Rejected(String),
}

/// As `ServiceError::invalid_fields` words it.
fn joined(violations: &[FieldViolation]) -> String {
    violations.iter().map(|v| format!("{} {}", v.field, v.description)).collect::<Vec<_>>().join("; ")
}

impl RoutingError {
    /// One invalid field.
    pub fn invalid(field: &str, description: &str) -> Self {
        Self::Invalid(vec![FieldViolation { field: field.to_owned(), description: description.to_owned() }])
    }
}

impl DomainError for RoutingError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::NotYetKnown(_) | Self::Retry(_) => ErrorCode::Unavailable,
            Self::ReferralState(_) | Self::RulesChanged { .. } | Self::WorkRefused { .. } => {
                ErrorCode::FailedPrecondition
            }
            Self::NotFound(_) | Self::Rejected(_) => ErrorCode::NotFound,
            Self::Invalid(_) => ErrorCode::InvalidArgument,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::NotYetKnown(_) => "NOT_YET_KNOWN",
            Self::ReferralState(_) => "REFERRAL_STATE",
            Self::NotFound(_) | Self::Rejected(_) => "NOT_FOUND",
            Self::RulesChanged { .. } => "RULES_CHANGED",
            Self::Invalid(_) => "INVALID_ARGUMENT",
            Self::WorkRefused { refusal, .. } => refusal.code(),
            Self::Retry(_) => "RETRY",
        }
    }

    fn violations(&self) -> Vec<FieldViolation> {
        match self {
            Self::Invalid(violations) => violations.clone(),
            _ => Vec::new(),
        }
    }
}

/// A rule set that cannot be saved: every problem, as invalid fields.
impl From<Invalid> for RoutingError {
    fn from(error: Invalid) -> Self {
        Self::Invalid(
            error
                .0
                .into_iter()
                .map(|(field, description)| FieldViolation {
                    field,
                    description: if description.is_empty() { "is invalid".to_owned() } else { description },
                })
                .collect(),
        )
    }
}

/// Why a use case of [`crate::flow`] did not happen (nothing it wrote stays: the caller's transaction is dropped).
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Routing(#[from] RoutingError),
}

impl FlowError {
    /// A provider's message (a reply, a progress report) that did not apply, as the API reports it: what its
    /// consumer would retry is `RETRY` (UNAVAILABLE), what it would dead-letter is `NOT_FOUND`.
    pub fn unapplied(self) -> Self {
        let routing = match self {
            Self::Db(error) => RoutingError::Retry(format!("{:#}", anyhow::Error::from(error))),
            Self::Routing(RoutingError::NotYetKnown(m) | RoutingError::Retry(m)) => RoutingError::Retry(m),
            Self::Routing(RoutingError::NotFound(m) | RoutingError::ReferralState(m) | RoutingError::Rejected(m)) => {
                RoutingError::Rejected(m)
            }
            Self::Routing(other) => RoutingError::Rejected(other.to_string()),
        };
        Self::Routing(routing)
    }
}

impl From<FlowError> for ServiceError {
    fn from(error: FlowError) -> Self {
        match error {
            FlowError::Db(e) => e.into(),
            FlowError::Routing(e) => e.into(),
        }
    }
}

/// A consumer retries what may work later (storage, a read model not fed yet) and dead-letters the rest.
impl From<FlowError> for HandleError {
    fn from(error: FlowError) -> Self {
        match error {
            FlowError::Db(e) => Self::Retry(e.into()),
            FlowError::Routing(e @ (RoutingError::NotYetKnown(_) | RoutingError::Retry(_))) => {
                Self::Retry(anyhow::anyhow!(e.to_string()))
            }
            FlowError::Routing(e) => Self::Reject(anyhow::anyhow!(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_keeps_its_code_and_reason() {
        let cases = [
            (RoutingError::NotYetKnown("offer x not yet known".into()), ErrorCode::Unavailable, "NOT_YET_KNOWN"),
            (RoutingError::ReferralState("r".into()), ErrorCode::FailedPrecondition, "REFERRAL_STATE"),
            (RoutingError::NotFound("referral x".into()), ErrorCode::NotFound, "NOT_FOUND"),
            (RoutingError::RulesChanged { current: 3, expected: 2 }, ErrorCode::FailedPrecondition, "RULES_CHANGED"),
            (RoutingError::invalid("offer_id", "is required"), ErrorCode::InvalidArgument, "INVALID_ARGUMENT"),
            (
                RoutingError::WorkRefused { refusal: WorkRefused::QuoteNotAccepted, message: "m".into() },
                ErrorCode::FailedPrecondition,
                "QUOTE_NOT_ACCEPTED",
            ),
            (RoutingError::Retry("r".into()), ErrorCode::Unavailable, "RETRY"),
            (RoutingError::Rejected("r".into()), ErrorCode::NotFound, "NOT_FOUND"),
        ];
        for (error, code, reason) in cases {
            let service = ServiceError::from(error);
            assert_eq!((service.code, service.reason.as_ref()), (code, reason));
        }
    }

    #[test]
    fn messages_read_as_before() {
        assert_eq!(ServiceError::from(RoutingError::NotFound("referral 7".into())).message, "referral 7 not found");
        let invalid = ServiceError::from(RoutingError::invalid("offer_id", "is required"));
        let helper = ServiceError::invalid("offer_id", "is required");
        assert_eq!((invalid.message, invalid.violations), (helper.message, helper.violations));
        let changed = RoutingError::RulesChanged { current: 3, expected: 2 };
        assert_eq!(changed.to_string(), "the rules are at version 3, not 2: reload and retry");
        let rules = RoutingError::from(Invalid(vec![("rules[1].name".into(), String::new())]));
        assert_eq!(rules.to_string(), "rules[1].name is invalid");
    }

    #[test]
    fn a_provider_message_is_retried_or_dead_lettered() {
        let retried = HandleError::from(FlowError::from(RoutingError::NotYetKnown("later".into())));
        assert!(matches!(retried, HandleError::Retry(_)));
        let rejected = HandleError::from(FlowError::from(RoutingError::Rejected("never".into())));
        assert!(matches!(rejected, HandleError::Reject(_)));
        let api = ServiceError::from(FlowError::from(RoutingError::ReferralState("gone".into())).unapplied());
        assert_eq!((api.code, api.reason.as_ref(), api.message.as_str()), (ErrorCode::NotFound, "NOT_FOUND", "gone"));
        let api = ServiceError::from(FlowError::from(RoutingError::NotYetKnown("later".into())).unapplied());
        assert_eq!((api.code, api.reason.as_ref()), (ErrorCode::Unavailable, "RETRY"));
    }
}
