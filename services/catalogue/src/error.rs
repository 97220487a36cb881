//! The catalogue's refusals, each with its code and its stable reason (clients, the gateway and tests branch on
//! the reason), mapped to a gRPC status once by the platform ([`DomainError`]).

use id77_platform::error::FieldViolation;
use id77_platform::{DomainError, ErrorCode, ServiceError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// No offer with this id or code (or a draft the caller may not see).
    #[error("offer {0} not found")]
    OfferNotFound(String),
    #[error("offer {key} has no version {version}")]
    OfferVersionNotFound { key: String, version: i32 },
    #[error("an offer with code {0} exists")]
    OfferCodeTaken(String),
    /// The offer's status forbids the action.
    #[error("cannot {action} an offer that is {from}")]
    InvalidTransition { from: &'static str, action: &'static str },
    #[error("the offer is at version {current}, not {expected}: reload it and edit again")]
    VersionConflict { current: i32, expected: i32 },
    /// A part of an offer that cannot change (`code`, `category`, `copies (...)`): reported on
    /// `offer.<first word>`.
    #[error("offer.{field} {0} cannot change", field = first_word(.0))]
    Immutable(&'static str),
    #[error("a provider with code {0} exists")]
    ProviderCodeTaken(String),
    /// "Eligible for my collectivité" before membership's events reached the catalogue.
    #[error("the catalogue does not know your collectivité as an active member yet; retry in a moment")]
    MemberNotActive,
    #[error("exhibition {0} not found")]
    ExhibitionNotFound(String),
    /// An archived exhibition: its loans go on, no new hold.
    #[error("this exhibition is no longer lent")]
    ExhibitionArchived,
    #[error("every copy of {code} is held or lent for some of {from} – {to}")]
    NoCopyAvailable { code: String, from: chrono::NaiveDate, to: chrono::NaiveDate },
    #[error("booking {0} not found")]
    BookingNotFound(uuid::Uuid),
    /// A released booking cannot be confirmed.
    #[error("a {0} booking cannot be confirmed")]
    BookingNotConfirmable(&'static str),
    #[error("session {0} introuvable")]
    SessionNotFound(String),
    #[error("inscription {0} introuvable")]
    RegistrationNotFound(String),
    /// Sessions are only for awareness and training offers.
    #[error("l'offre {0} n'est pas une sensibilisation ou une formation : elle n'a pas de sessions")]
    NotATrainingOffer(String),
    /// The member already holds as many registrations as the session's per-member quota.
    #[error("votre collectivité a atteint le nombre maximal d'inscriptions pour cette session")]
    QuotaReached,
    #[error("les inscriptions à cette session sont closes")]
    RegistrationClosed,
    /// A cancelled or held session: no registration, cancellation or new attendance.
    #[error("cette session est {0}")]
    SessionNotScheduled(&'static str),
    #[error("la présence ne peut être relevée qu'une fois la session commencée")]
    SessionNotStarted,
    /// The participant's e-mail already has an active registration of this member for the session.
    #[error("{0} est déjà inscrit à cette session")]
    AlreadyRegistered(String),
    /// Rating a session the member did not attend, or an attestation for someone who did not come.
    #[error("aucune présence enregistrée pour cette session")]
    NotAttended,
    #[error("flux de calendrier introuvable ou révoqué")]
    CalendarFeedNotFound,
}

fn first_word(what: &str) -> &str {
    what.split(' ').next().unwrap_or(what)
}

impl DomainError for CatalogueError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::OfferNotFound(_)
            | Self::OfferVersionNotFound { .. }
            | Self::ExhibitionNotFound(_)
            | Self::BookingNotFound(_)
            | Self::SessionNotFound(_)
            | Self::RegistrationNotFound(_)
            | Self::CalendarFeedNotFound => ErrorCode::NotFound,
            Self::OfferCodeTaken(_) | Self::ProviderCodeTaken(_) | Self::AlreadyRegistered(_) => {
                ErrorCode::AlreadyExists
            }
            Self::InvalidTransition { .. }
            | Self::VersionConflict { .. }
            | Self::MemberNotActive
            | Self::ExhibitionArchived
            | Self::NoCopyAvailable { .. }
            | Self::BookingNotConfirmable(_)
            | Self::NotATrainingOffer(_)
            | Self::QuotaReached
            | Self::RegistrationClosed
            | Self::SessionNotScheduled(_)
            | Self::SessionNotStarted
            | Self::NotAttended => ErrorCode::FailedPrecondition,
            Self::Immutable(_) => ErrorCode::InvalidArgument,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::OfferNotFound(_) => "OFFER_NOT_FOUND",
            Self::OfferVersionNotFound { .. } => "OFFER_VERSION_NOT_FOUND",
            Self::OfferCodeTaken(_) => "OFFER_CODE_TAKEN",
            Self::InvalidTransition { .. } | Self::BookingNotConfirmable(_) => "INVALID_TRANSITION",
            Self::VersionConflict { .. } => "VERSION_CONFLICT",
            Self::Immutable(_) => "INVALID_ARGUMENT",
            Self::ProviderCodeTaken(_) => "PROVIDER_CODE_TAKEN",
            Self::MemberNotActive => "MEMBER_NOT_ACTIVE",
            Self::ExhibitionNotFound(_) => "EXHIBITION_NOT_FOUND",
            Self::ExhibitionArchived => "OFFER_ARCHIVED",
            Self::NoCopyAvailable { .. } => "NO_COPY_AVAILABLE",
            Self::BookingNotFound(_) => "BOOKING_NOT_FOUND",
            Self::SessionNotFound(_) => "SESSION_NOT_FOUND",
            Self::RegistrationNotFound(_) => "REGISTRATION_NOT_FOUND",
            Self::NotATrainingOffer(_) => "NOT_A_TRAINING_OFFER",
            Self::QuotaReached => "QUOTA_REACHED",
            Self::RegistrationClosed => "REGISTRATION_CLOSED",
            Self::SessionNotScheduled(_) => "SESSION_NOT_SCHEDULED",
            Self::SessionNotStarted => "SESSION_NOT_STARTED",
            Self::AlreadyRegistered(_) => "ALREADY_REGISTERED",
            Self::NotAttended => "NOT_ATTENDED",
            Self::CalendarFeedNotFound => "CALENDAR_FEED_NOT_FOUND",
        }
    }

    fn violations(&self) -> Vec<FieldViolation> {
        match self {
            Self::Immutable(what) => vec![FieldViolation {
                field: format!("offer.{}", first_word(what)),
                description: format!("{what} cannot change"),
            }],
            _ => Vec::new(),
        }
    }
}

/// Invalid fields of a nested message, reported under `prefix` (`offer.`, `provider.`).
pub fn invalid_under(prefix: &str, violations: Vec<FieldViolation>) -> ServiceError {
    ServiceError::invalid_fields(
        violations
            .into_iter()
            .map(|v| FieldViolation { field: format!("{prefix}{}", v.field), description: v.description })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_keeps_its_code_reason_and_words() {
        let e =
            ServiceError::from(CatalogueError::Immutable("copies (they can be added, not removed, once published)"));
        assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::InvalidArgument, "INVALID_ARGUMENT"));
        assert_eq!(e.message, "offer.copies copies (they can be added, not removed, once published) cannot change");
        assert_eq!(e.violations.len(), 1);
        assert_eq!(e.violations[0].field, "offer.copies");
        let e = ServiceError::from(CatalogueError::InvalidTransition { from: "archived", action: "edit" });
        assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::FailedPrecondition, "INVALID_TRANSITION"));
        assert_eq!(e.message, "cannot edit an offer that is archived");
        let e = ServiceError::from(CatalogueError::BookingNotConfirmable("released"));
        assert_eq!(
            (e.reason.as_ref(), e.message.as_str()),
            ("INVALID_TRANSITION", "a released booking cannot be confirmed")
        );
        let e = ServiceError::from(CatalogueError::ExhibitionArchived);
        assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::FailedPrecondition, "OFFER_ARCHIVED"));
        let e = ServiceError::from(CatalogueError::AlreadyRegistered("anne@meaux.fr".into()));
        assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::AlreadyExists, "ALREADY_REGISTERED"));
        assert_eq!(e.message, "anne@meaux.fr est déjà inscrit à cette session");
        let e = ServiceError::from(CatalogueError::QuotaReached);
        assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::FailedPrecondition, "QUOTA_REACHED"));
        let e = ServiceError::from(CatalogueError::SessionNotFound("x".into()));
        assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::NotFound, "SESSION_NOT_FOUND"));
    }
}
