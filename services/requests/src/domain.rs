//! Request rules, free of I/O: validation and the status machine.

use id77_platform::error::FieldViolation;
use id77_platform::{ErrorCode, ServiceError};
use uuid::Uuid;

pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    /// Filed by the member; routing has not handed it to a provider yet.
    Submitted,
    /// Handed to a provider, waiting for its answer.
    Referred,
    Accepted,
    Declined,
    Cancelled,
    Completed,
}

impl RequestStatus {
    pub const ALL: [Self; 6] =
        [Self::Submitted, Self::Referred, Self::Accepted, Self::Declined, Self::Cancelled, Self::Completed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Referred => "referred",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Cancelled => "cancelled",
            Self::Completed => "completed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether the request can still move.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Declined | Self::Cancelled | Self::Completed)
    }

    /// Transitions allowed by the lifecycle. `Submitted → Accepted/Declined` is allowed because the
    /// provider's answer may be consumed before the `referral.offered` event that precedes it.
    pub fn can_become(self, next: Self) -> bool {
        use RequestStatus::*;
        matches!(
            (self, next),
            (Submitted, Referred | Accepted | Declined | Cancelled)
                | (Referred, Accepted | Declined | Cancelled)
                | (Accepted, Completed | Cancelled)
        )
    }

    pub fn transition(self, next: Self) -> Result<Self, ServiceError> {
        if self.can_become(next) {
            Ok(next)
        } else {
            Err(ServiceError::new(
                ErrorCode::FailedPrecondition,
                "INVALID_TRANSITION",
                format!("a {} request cannot become {}", self.as_str(), next.as_str()),
            ))
        }
    }
}

/// What routing said about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralOutcome {
    Offered,
    Accepted,
    Declined,
}

/// The status a referral event moves the request to, or `None` when the event is stale (the request is
/// already past it, e.g. a late `offered` after `accepted`) and must change nothing.
///
/// `to_another_provider` says whether an `Offered` event names a provider other than the request's current one:
/// routing re-routed it (a decline or an expiry), so a referred request stays referred, to the new provider.
pub fn on_referral(
    current: RequestStatus,
    outcome: ReferralOutcome,
    to_another_provider: bool,
) -> Option<RequestStatus> {
    if outcome == ReferralOutcome::Offered && current == RequestStatus::Referred && to_another_provider {
        return Some(RequestStatus::Referred);
    }
    let next = match outcome {
        ReferralOutcome::Offered => RequestStatus::Referred,
        ReferralOutcome::Accepted => RequestStatus::Accepted,
        ReferralOutcome::Declined => RequestStatus::Declined,
    };
    current.can_become(next).then_some(next)
}

/// A validated submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub member_id: Uuid,
    pub offer_id: Uuid,
    pub subject: String,
    pub description: String,
    pub idempotency_key: Option<String>,
}

/// Validates every field and reports all violations together.
pub fn validate_submission(
    member_id: &str,
    offer_id: &str,
    subject: &str,
    description: &str,
    idempotency_key: &str,
) -> Result<Submission, ServiceError> {
    let mut violations = Vec::new();
    let mut violation = |field: &str, description: &str| {
        violations.push(FieldViolation { field: field.to_owned(), description: description.to_owned() })
    };
    let member_id = Uuid::parse_str(member_id.trim()).map_err(|_| violation("member_id", "must be a UUID")).ok();
    let offer_id = Uuid::parse_str(offer_id.trim()).map_err(|_| violation("offer_id", "must be a UUID")).ok();
    let subject = subject.trim();
    if subject.is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS {
        violation("subject", "must be 1 to 200 characters");
    }
    let description = description.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        violation("description", "must be at most 10000 characters");
    }
    let key = idempotency_key.trim();
    if key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS || key.chars().any(char::is_control) {
        violation("idempotency_key", "must be at most 128 printable characters");
    }
    match (member_id, offer_id) {
        (Some(member_id), Some(offer_id)) if violations.is_empty() => Ok(Submission {
            member_id,
            offer_id,
            subject: subject.to_owned(),
            description: description.to_owned(),
            idempotency_key: (!key.is_empty()).then(|| key.to_owned()),
        }),
        _ => Err(ServiceError::invalid_fields(violations)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus::*;

    #[test]
    fn lifecycle_allows_only_forward_moves() {
        assert!(Submitted.can_become(Referred));
        assert!(Referred.can_become(Accepted));
        assert!(Referred.can_become(Declined));
        assert!(Accepted.can_become(Completed));
        assert!(!Accepted.can_become(Referred));
        assert!(!Declined.can_become(Accepted));
        assert!(!Completed.can_become(Cancelled));
        for from in RequestStatus::ALL {
            assert!(!from.can_become(Submitted), "nothing goes back to submitted ({from:?})");
            assert!(!from.can_become(from), "no self-transition ({from:?})");
            if from.is_final() {
                for to in RequestStatus::ALL {
                    assert!(!from.can_become(to), "{from:?} is final");
                }
            }
        }
        assert_eq!(Accepted.transition(Referred).err().map(|e| e.code), Some(ErrorCode::FailedPrecondition));
    }

    #[test]
    fn referral_events_move_forward_and_stale_ones_change_nothing() {
        assert_eq!(on_referral(Submitted, ReferralOutcome::Offered, false), Some(Referred));
        assert_eq!(on_referral(Referred, ReferralOutcome::Accepted, false), Some(Accepted));
        assert_eq!(on_referral(Submitted, ReferralOutcome::Accepted, false), Some(Accepted));
        assert_eq!(on_referral(Accepted, ReferralOutcome::Offered, false), None);
        assert_eq!(on_referral(Accepted, ReferralOutcome::Accepted, false), None);
        assert_eq!(on_referral(Cancelled, ReferralOutcome::Declined, false), None);
        // Re-routed to another provider: still referred, to the new one; the same provider again is a replay.
        assert_eq!(on_referral(Referred, ReferralOutcome::Offered, true), Some(Referred));
        assert_eq!(on_referral(Referred, ReferralOutcome::Offered, false), None);
        assert_eq!(on_referral(Accepted, ReferralOutcome::Offered, true), None);
    }

    #[test]
    fn statuses_round_trip_as_strings() {
        for s in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(RequestStatus::parse("nope"), None);
    }

    #[test]
    fn submission_validation_reports_each_field() {
        let id = Uuid::now_v7().to_string();
        let ok = validate_submission(&id, &id, " École ", "", "key-1");
        assert_eq!(ok.as_ref().map(|s| s.subject.as_str()).ok(), Some("École"));
        assert_eq!(ok.ok().and_then(|s| s.idempotency_key), Some("key-1".to_owned()));
        let err = validate_submission("x", "y", "", &"d".repeat(10_001), &"k".repeat(129));
        let fields: Vec<_> = err.err().map(|e| e.violations.into_iter().map(|v| v.field).collect()).unwrap_or_default();
        assert_eq!(fields, vec!["member_id", "offer_id", "subject", "description", "idempotency_key"]);
        assert!(validate_submission(&id, &id, &"s".repeat(201), "", "").is_err());
        assert!(validate_submission(&id, &id, "ok", "", "").is_ok_and(|s| s.idempotency_key.is_none()));
    }
}
