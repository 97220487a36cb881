//! Membership rules, free of I/O.

use id77_platform::ServiceError;
use id77_platform::error::FieldViolation;

use crate::error::MembershipError;

/// A SIREN: 9 digits whose Luhn checksum holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Siren(String);

/// Why [`Siren::parse`] refused 9 digits whose check digit is wrong. Such a SIREN names no collectivité of the
/// directory (every one there passes the check), so the services answer it like an unknown SIREN (not found,
/// saying the check digit is wrong) rather than as malformed input: the API's document can state the format (9
/// digits) but not a checksum, and a well-formed value must not be refused as malformed.
pub const CHECK_DIGIT: &str = "fails the Luhn check";

impl Siren {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let digits: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() != 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be 9 digits");
        }
        if !luhn_valid(&digits) {
            return Err(CHECK_DIGIT);
        }
        Ok(Self(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Luhn checksum over ASCII digits (every second digit from the right doubled).
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        let mut d = u32::from(b.wrapping_sub(b'0'));
        if d > 9 {
            return false;
        }
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    sum.is_multiple_of(10)
}

/// Lowercase with French accents and ligatures folded, hyphens and apostrophes as spaces: "Saint-Rémy" and
/// "saint remy" search alike.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'â' | 'ä' | 'á' | 'ã' => out.push('a'),
            'é' | 'è' | 'ê' | 'ë' => out.push('e'),
            'î' | 'ï' | 'í' => out.push('i'),
            'ô' | 'ö' | 'ó' => out.push('o'),
            'ù' | 'û' | 'ü' | 'ú' => out.push('u'),
            'ÿ' => out.push('y'),
            'ç' => out.push('c'),
            'œ' => out.push_str("oe"),
            'æ' => out.push_str("ae"),
            '-' | '\'' | '’' | '_' => out.push(' '),
            c => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where a membership stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberStatus {
    Pending,
    Active,
    Suspended,
    Withdrawn,
    Refused,
}

impl MemberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Withdrawn => "withdrawn",
            Self::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "withdrawn" => Self::Withdrawn,
            "refused" => Self::Refused,
            _ => return None,
        })
    }

    /// The coordinator approves a pending application.
    pub fn approve(self) -> Result<Self, MembershipError> {
        match self {
            Self::Pending => Ok(Self::Active),
            other => Err(MembershipError::CannotApprove { status: other.as_str() }),
        }
    }

    /// The coordinator refuses a pending application.
    pub fn refuse(self) -> Result<Self, MembershipError> {
        match self {
            Self::Pending => Ok(Self::Refused),
            other => Err(MembershipError::CannotRefuse { status: other.as_str() }),
        }
    }

    /// Whether a collectivité in this state may apply again (after withdrawing, or once refused).
    pub fn may_reapply(self) -> bool {
        matches!(self, Self::Withdrawn | Self::Refused)
    }
}

/// Longest refusal reason (characters).
pub const MAX_REFUSAL_REASON_CHARS: usize = 1000;

/// A refusal reason: trimmed, 1 to 1000 characters, no control character but line breaks.
pub fn refusal_reason(raw: &str) -> Result<String, ServiceError> {
    let reason = raw.trim();
    let chars = reason.chars().count();
    if chars == 0
        || chars > MAX_REFUSAL_REASON_CHARS
        || reason.chars().any(|c| c.is_control() && c != '\n' && c != '\r')
    {
        return Err(ServiceError::invalid("reason", "must be 1 to 1000 characters"));
    }
    Ok(reason.to_owned())
}

/// A validated application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub siren: Siren,
    pub contact_name: String,
    pub contact_email: String,
}

/// Validates every field and reports all violations together.
pub fn validate_application(siren: &str, contact_name: &str, contact_email: &str) -> Result<Application, ServiceError> {
    let mut violations = Vec::new();
    let mut violation = |field: &str, description: &str| {
        violations.push(FieldViolation { field: field.to_owned(), description: description.to_owned() })
    };
    // 9 digits with a wrong check digit: not a violation of the format, an unknown SIREN (see CHECK_DIGIT).
    let mut unknown = None;
    let siren = match Siren::parse(siren) {
        Ok(siren) => Some(siren),
        Err(CHECK_DIGIT) => {
            unknown = Some(siren.chars().filter(|c| !c.is_whitespace()).collect::<String>());
            None
        }
        Err(description) => {
            violation("siren", description);
            None
        }
    };
    let contact_name = contact_name.trim();
    if contact_name.is_empty() || contact_name.chars().count() > 200 {
        violation("contact_name", "must be 1 to 200 characters");
    }
    let contact_email = contact_email.trim();
    if !id77_platform::validate::is_plausible_email(contact_email) {
        violation("contact_email", "must be an email address");
    }
    match siren {
        Some(siren) if violations.is_empty() => Ok(Application {
            siren,
            contact_name: contact_name.to_owned(),
            contact_email: contact_email.to_lowercase(),
        }),
        None if violations.is_empty() && unknown.is_some() => {
            Err(MembershipError::NotInDirectory { siren: unknown.unwrap_or_default() }.into())
        }
        _ => Err(ServiceError::invalid_fields(violations)),
    }
}

#[cfg(test)]
mod tests {
    use id77_platform::{DomainError, ErrorCode};

    use super::*;

    #[test]
    fn siren_of_real_collectivites_are_accepted() {
        // Achères-la-Forêt, Meaux, CC Les Portes Briardes.
        for s in ["217700012", "217702844", "200023125"] {
            assert!(Siren::parse(s).is_ok(), "{s}");
        }
        assert_eq!(Siren::parse(" 217 700 012 ").map(|s| s.as_str().to_owned()), Ok("217700012".to_owned()));
    }

    #[test]
    fn malformed_siren_are_rejected_with_a_reason() {
        assert_eq!(Siren::parse("21770001"), Err("must be 9 digits"));
        assert_eq!(Siren::parse("2177000123"), Err("must be 9 digits"));
        assert_eq!(Siren::parse("21770001a"), Err("must be 9 digits"));
        assert_eq!(Siren::parse("217700013"), Err("fails the Luhn check"));
        assert_eq!(Siren::parse(""), Err("must be 9 digits"));
        assert!(!luhn_valid("12x"));
    }

    #[test]
    fn only_pending_memberships_can_be_approved() {
        assert_eq!(MemberStatus::Pending.approve().ok(), Some(MemberStatus::Active));
        for s in [MemberStatus::Active, MemberStatus::Suspended, MemberStatus::Withdrawn] {
            let err = s.approve().err().map(|e| e.code());
            assert_eq!(err, Some(ErrorCode::FailedPrecondition), "{s:?}");
        }
        assert!(MemberStatus::Withdrawn.may_reapply());
        assert!(!MemberStatus::Pending.may_reapply());
        for s in ["pending", "active", "suspended", "withdrawn", "refused"] {
            assert_eq!(MemberStatus::parse(s).map(MemberStatus::as_str), Some(s));
        }
    }

    #[test]
    fn only_pending_memberships_can_be_refused_and_refused_ones_may_apply_again() {
        assert_eq!(MemberStatus::Pending.refuse().ok(), Some(MemberStatus::Refused));
        for s in [MemberStatus::Active, MemberStatus::Suspended, MemberStatus::Withdrawn, MemberStatus::Refused] {
            assert_eq!(s.refuse().err().map(|e| e.code()), Some(ErrorCode::FailedPrecondition), "{s:?}");
        }
        assert!(MemberStatus::Refused.may_reapply());
        assert!(MemberStatus::Refused.approve().is_err());
        assert_eq!(refusal_reason("  Hors du département \n").ok().as_deref(), Some("Hors du département"));
        assert!(refusal_reason("   ").is_err());
        assert!(refusal_reason(&"x".repeat(1001)).is_err());
        assert!(refusal_reason("a\u{0}b").is_err());
    }

    #[test]
    fn application_reports_every_bad_field() {
        let err = validate_application("123", "", "nope").err().map(|e| e.violations.len());
        assert_eq!(err, Some(3));
        let ok = validate_application("217700012", " Marie Dupont ", "Mairie@Example.fr");
        assert_eq!(
            ok.map(|a| (a.contact_name, a.contact_email)).ok(),
            Some(("Marie Dupont".into(), "mairie@example.fr".into()))
        );
    }

    #[test]
    fn a_wrong_check_digit_is_an_unknown_siren_not_a_malformed_one() {
        // Alone: not found (no collectivité of the directory has it), naming the SIREN.
        let err = validate_application("217700013", "Marie Dupont", "mairie@example.fr").err();
        assert_eq!(err.as_ref().map(|e| e.code), Some(ErrorCode::NotFound));
        assert!(err.is_some_and(|e| e.message.contains("217700013")));
        // With malformed fields: those are reported (the SIREN's format is fine).
        let err = validate_application("217700013", "", "nope").err();
        assert_eq!(err.as_ref().map(|e| (e.code, e.violations.len())), Some((ErrorCode::InvalidArgument, 2)));
    }

    #[test]
    fn folding_makes_accents_and_hyphens_irrelevant() {
        assert_eq!(fold("Saint-Rémy-la-Vanne"), "saint remy la vanne");
        assert_eq!(fold("  Achères-la-Forêt "), "acheres la foret");
        assert_eq!(fold("L'Œuvre"), "l oeuvre");
    }
}
