//! Input checks shared by every service's validation (the rules themselves stay in each domain).

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
    fn plausible_emails() {
        assert!(is_plausible_email("dgs@meaux.fr"));
        assert!(is_plausible_email("contact@caue77.fr"));
        for bad in ["", "meaux.fr", "@meaux.fr", "a@b", "a@.fr", "a@fr.", "a b@c.fr", "a@b@c.fr"] {
            assert!(!is_plausible_email(bad), "{bad:?}");
        }
        assert!(!is_plausible_email(&format!("{}@x.fr", "a".repeat(250))));
    }
}
