//! Membership's own refusals, each with the code and the stable reason clients branch on
//! (`id77_platform::DomainError`; `?` turns them into the platform's `ServiceError`). Refusals every service
//! shares (an invalid field, an unknown id, a forbidden role) stay the platform's helpers.

use std::fmt;

use id77_platform::{DomainError, ErrorCode};

/// Why an application, an approval or a change of a membership is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipError {
    /// The SIREN is not a collectivité of the directory.
    NotInDirectory { siren: String },
    /// The collectivité already has a membership it may not apply over (only a withdrawn one may).
    AlreadyMember { name: String, status: String, id: String },
    /// A concurrent application created the membership first.
    MembershipExists,
    /// Only a pending membership can be approved.
    CannotApprove { status: &'static str },
    /// Accounts are only created for an active member.
    MemberNotActive { name: String, status: String },
    /// Only a pending membership can be refused.
    CannotRefuse { status: &'static str },
}

impl fmt::Display for MembershipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInDirectory { siren } => write!(f, "SIREN {siren} is not a collectivité of the directory"),
            Self::AlreadyMember { name, status, id } => write!(f, "{name} already has a {status} membership ({id})"),
            Self::MembershipExists => f.write_str("a membership already exists"),
            Self::CannotApprove { status } => write!(f, "a {status} membership cannot be approved"),
            Self::MemberNotActive { name, status } => write!(f, "the membership of {name} is {status}"),
            Self::CannotRefuse { status } => write!(f, "a {status} membership cannot be refused"),
        }
    }
}

impl std::error::Error for MembershipError {}

impl DomainError for MembershipError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::NotInDirectory { .. } => ErrorCode::NotFound,
            Self::AlreadyMember { .. } | Self::MembershipExists => ErrorCode::AlreadyExists,
            Self::CannotApprove { .. } | Self::CannotRefuse { .. } | Self::MemberNotActive { .. } => {
                ErrorCode::FailedPrecondition
            }
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::NotInDirectory { .. } => "NOT_IN_DIRECTORY",
            Self::AlreadyMember { .. } | Self::MembershipExists => "ALREADY_MEMBER",
            Self::CannotApprove { .. } | Self::CannotRefuse { .. } => "INVALID_TRANSITION",
            Self::MemberNotActive { .. } => "MEMBER_NOT_ACTIVE",
        }
    }
}

/// Why a login, a session or an account change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityError {
    /// The one answer to a failed login, whatever the reason (unknown email, wrong password, inactive or removed
    /// account), so that accounts cannot be probed.
    BadCredentials,
    /// Unknown, used, expired or revoked refresh token (one answer for all).
    BadRefreshToken,
    /// Unknown, used or expired invitation, or its account removed (one answer for all).
    BadInvitation,
    /// A live account already has this email.
    EmailTaken,
    /// Nobody removes their own account.
    RemoveSelf,
    /// Unknown, used or expired password reset token (one answer for all).
    BadResetToken,
    /// A member keeps at least one administrator.
    LastAdmin,
    /// A password change whose current password is wrong: the caller is who its token says, but failed this
    /// second proof (forbidden, not malformed input).
    WrongCurrentPassword,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadCredentials => "invalid email or password",
            Self::BadRefreshToken => "invalid or expired refresh token",
            Self::BadInvitation => "invalid, used or expired invitation",
            Self::EmailTaken => "an account already exists for this email",
            Self::RemoveSelf => "you cannot remove your own account",
            Self::BadResetToken => "invalid, used or expired password reset link",
            Self::LastAdmin => "the last administrator of a member cannot be removed",
            Self::WrongCurrentPassword => "current_password is not your current password",
        })
    }
}

impl std::error::Error for IdentityError {}

impl DomainError for IdentityError {
    fn code(&self) -> ErrorCode {
        match self {
            Self::BadCredentials | Self::BadRefreshToken | Self::BadInvitation => ErrorCode::Unauthenticated,
            Self::EmailTaken => ErrorCode::AlreadyExists,
            Self::RemoveSelf | Self::WrongCurrentPassword => ErrorCode::PermissionDenied,
            // No such live link (unknown, used or expired): not found, whatever the password sent with it.
            Self::BadResetToken => ErrorCode::NotFound,
            Self::LastAdmin => ErrorCode::FailedPrecondition,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            Self::BadCredentials | Self::BadRefreshToken | Self::BadInvitation => "UNAUTHENTICATED",
            Self::EmailTaken => "ALREADY_EXISTS",
            Self::RemoveSelf => "PERMISSION_DENIED",
            Self::BadResetToken => "RESET_TOKEN_INVALID",
            Self::LastAdmin => "LAST_ADMIN",
            Self::WrongCurrentPassword => "WRONG_CURRENT_PASSWORD",
        }
    }
}

#[cfg(test)]
mod tests {
    use id77_platform::ServiceError;

    use super::*;

    #[test]
    fn refusals_keep_their_codes_reasons_and_messages() {
        let e = ServiceError::from(MembershipError::NotInDirectory { siren: "217702844".into() });
        assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::NotFound, "NOT_IN_DIRECTORY"));
        assert_eq!(e.message, "SIREN 217702844 is not a collectivité of the directory");
        let e = ServiceError::from(MembershipError::CannotApprove { status: "active" });
        assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::FailedPrecondition, "INVALID_TRANSITION"));
        assert_eq!(e.message, "a active membership cannot be approved");
        let e = ServiceError::from(MembershipError::CannotRefuse { status: "active" });
        assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::FailedPrecondition, "INVALID_TRANSITION"));
        let e = ServiceError::from(MembershipError::MembershipExists);
        assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::AlreadyExists, "ALREADY_MEMBER"));
        let e = ServiceError::from(MembershipError::MemberNotActive { name: "Meaux".into(), status: "pending".into() });
        assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::FailedPrecondition, "MEMBER_NOT_ACTIVE"));
        for (error, code, reason) in [
            (IdentityError::BadCredentials, ErrorCode::Unauthenticated, "UNAUTHENTICATED"),
            (IdentityError::BadRefreshToken, ErrorCode::Unauthenticated, "UNAUTHENTICATED"),
            (IdentityError::BadInvitation, ErrorCode::Unauthenticated, "UNAUTHENTICATED"),
            (IdentityError::EmailTaken, ErrorCode::AlreadyExists, "ALREADY_EXISTS"),
            (IdentityError::RemoveSelf, ErrorCode::PermissionDenied, "PERMISSION_DENIED"),
            (IdentityError::BadResetToken, ErrorCode::NotFound, "RESET_TOKEN_INVALID"),
            (IdentityError::LastAdmin, ErrorCode::FailedPrecondition, "LAST_ADMIN"),
            (IdentityError::WrongCurrentPassword, ErrorCode::PermissionDenied, "WRONG_CURRENT_PASSWORD"),
        ] {
            let e = ServiceError::from(error);
            assert_eq!((e.code, e.reason.as_ref(), e.message), (code, reason, error.to_string()));
        }
    }
}
