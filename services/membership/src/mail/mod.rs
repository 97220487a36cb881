//! Membership's mails (invitations, password resets, refused applications): a durable queue, `mail_outbox`,
//! written in the transaction of the change a mail tells about (no mail lost, none sent for a rolled-back
//! change), drained over SMTP by [`sender`]. A membership-local copy of the requests service's queue
//! (services/requests/src/notify): same settings (`ID77_SMTP_URL`, `ID77_MAIL_FROM`, `ID77_PORTAL_URL`).

pub mod sender;
pub mod store;

use anyhow::Context;
use lettre::message::Mailbox;

pub use store::{Mail, queue};

/// Default sender address.
pub const DEFAULT_FROM: &str = "ID 77 <ne-pas-repondre@id77.seine-et-marne.fr>";
/// Default portal (base of the links).
pub const DEFAULT_PORTAL_URL: &str = "http://127.0.0.1:8090";

/// Kinds of mails (`mail_outbox.kind`).
pub mod kind {
    pub const INVITATION: &str = "invitation";
    pub const PASSWORD_RESET: &str = "password_reset";
    pub const MEMBERSHIP_REFUSED: &str = "membership_refused";
}

/// Mail settings of the membership service.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `ID77_SMTP_URL`: `smtp://host:port`, `smtp://host:587?tls=required`, `smtps://host:465`, with
    /// `user:password@` when the relay wants it. None: mails stay queued.
    pub smtp_url: Option<String>,
    /// `ID77_MAIL_FROM`.
    pub from: String,
    /// `ID77_PORTAL_URL`: base of the links in the mails.
    pub portal_url: String,
}

impl MailConfig {
    pub fn from_env() -> anyhow::Result<Self> {
        use id77_platform::config::env_or;
        let config = Self {
            smtp_url: std::env::var("ID77_SMTP_URL").ok().map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()),
            from: env_or("ID77_MAIL_FROM", DEFAULT_FROM),
            portal_url: env_or("ID77_PORTAL_URL", DEFAULT_PORTAL_URL),
        };
        config.check()?;
        Ok(config)
    }

    /// No relay (tests that look at the queued mails only).
    pub fn queue_only() -> Self {
        Self { smtp_url: None, from: DEFAULT_FROM.to_owned(), portal_url: DEFAULT_PORTAL_URL.to_owned() }
    }

    pub fn check(&self) -> anyhow::Result<()> {
        self.from.parse::<Mailbox>().with_context(|| format!("invalid ID77_MAIL_FROM={:?}", self.from))?;
        anyhow::ensure!(
            self.portal_url.starts_with("http://") || self.portal_url.starts_with("https://"),
            "invalid ID77_PORTAL_URL={:?}: expected http(s)://...",
            self.portal_url
        );
        Ok(())
    }
}

/// The text sent: the body, the link (portal base + path) when there is one, and the signature.
pub fn full_body(body: &str, portal_url: &str, link_path: &str) -> String {
    let link = if link_path.is_empty() {
        String::new()
    } else {
        format!("\n{}{link_path}\n", portal_url.trim_end_matches('/'))
    };
    format!("{body}\n{link}\n-- \nID 77, l'ingénierie départementale de Seine-et-Marne.\n")
}

/// Delay before the next try after `attempts` failed ones: 30 s doubling, at most an hour.
pub fn backoff(attempts: i32) -> std::time::Duration {
    let exp = attempts.clamp(1, 8) - 1;
    std::time::Duration::from_secs((30u64 << exp).min(3600))
}

/// Percent-encodes a token for a query string (tokens are URL-safe base64 already; this keeps it so).
pub fn query_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_appended_to_the_portal_base() {
        let text = full_body("Bonjour,", "https://portail.example.fr/", "/activer?code=abc");
        assert!(text.starts_with("Bonjour,\n\nhttps://portail.example.fr/activer?code=abc\n"), "{text}");
        assert!(!full_body("Bonjour,", "https://p.fr", "").contains("https://"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1).as_secs(), 30);
        assert_eq!(backoff(2).as_secs(), 60);
        assert_eq!(backoff(50).as_secs(), 3600);
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(query_value("aZ09-_"), "aZ09-_");
        assert_eq!(query_value("a+b/c="), "a%2Bb%2Fc%3D");
    }

    #[test]
    fn settings_are_checked() {
        assert!(MailConfig::queue_only().check().is_ok());
        let bad = MailConfig { portal_url: "ftp://x".into(), ..MailConfig::queue_only() };
        assert!(bad.check().is_err());
    }
}
