//! Input checks shared by every service's validation (the rules themselves stay in each domain).

use crate::ServiceError;

/// An id field of a call that must be a UUID (surrounding spaces ignored): INVALID_ARGUMENT naming the field.
pub fn uuid(field: &str, raw: &str) -> Result<uuid::Uuid, ServiceError> {
    uuid::Uuid::parse_str(raw.trim()).map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

/// A syntactic check of an email address: something before one `@`, a dotted domain after it, at most
/// 254 characters, no spaces or control characters. Deliverability is checked by sending, not here.
pub fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    email.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_or_name_their_field() {
        assert!(uuid("member_id", " 0190f3b4-9a3e-7c1d-8f00-000000000001 ").is_ok());
        let refused = uuid("member_id", "42").err().map(|e| (e.code, e.violations[0].field.clone()));
        assert_eq!(refused, Some((crate::ErrorCode::InvalidArgument, "member_id".to_owned())));
    }

    #[test]
    fn plausible_emails() {
        assert!(is_plausible_email("dgs@meaux.fr"));
        assert!(is_plausible_email("contact@caue77.fr"));
        for bad in ["", "meaux.fr", "@meaux.fr", "a@b", "a@.fr", "a@fr.", "a b@c.fr", "a@b@c.fr"] {
            assert!(!is_plausible_email(bad), "{bad:?}");
        }
        assert!(!is_plausible_email(&format!("{}@x.fr", "a".repeat(250))));
    }
}
