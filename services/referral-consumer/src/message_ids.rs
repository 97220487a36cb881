//! The message ids of a provider's publications on its reply subject, keyed with its own secret so that no one
//! else can take them.

/// The `Nats-Msg-Id`s of one provider's publications on its reply subject: `reply-<provider>-<referral_id>-<tag>`,
/// `complete-<provider>-<referral_id>-<tag>` and `progress-<provider>-<referral_id>-<sequence>-<tag>`. The same
/// publication always gets the same id (a repeat, e.g. after a crash before the referral's ack, is a duplicate
/// JetStream drops), and no one else can predict it: `<tag>` is 128 bits of HMAC-SHA256 keyed with the
/// provider's secret (its NKEY seed or `.creds` file). JetStream de-duplicates on the id across the whole stream,
/// whatever the subject, so a predictable id (`reply-<referral_id>`) let another provider publish it first on
/// its own reply subject and have this one's genuine reply dropped as a duplicate for two minutes (issue 19).
/// Without a secret (development, no authentication: anyone may publish anything) the tag is left out.
#[derive(Clone)]
pub struct MessageIds {
    provider: String,
    key: Option<Vec<u8>>,
}

impl std::fmt::Debug for MessageIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageIds").field("provider", &self.provider).field("keyed", &self.key.is_some()).finish()
    }
}

impl MessageIds {
    /// The ids of `provider`, keyed with `secret` (the bytes of its NKEY seed or `.creds` file) when given.
    pub fn new(provider: &str, secret: Option<&[u8]>) -> Self {
        Self { provider: provider.to_owned(), key: secret.filter(|s| !s.is_empty()).map(<[u8]>::to_vec) }
    }

    /// The id of the answer (accept or decline) to a referral.
    pub fn reply(&self, referral_id: &str) -> String {
        self.id("reply", referral_id)
    }

    /// The id of the completion of a referral.
    pub fn complete(&self, referral_id: &str) -> String {
        self.id("complete", referral_id)
    }

    /// The id of a progress report on a referral.
    pub fn progress(&self, referral_id: &str, sequence: u32) -> String {
        self.id("progress", &format!("{referral_id}-{sequence}"))
    }

    fn id(&self, kind: &str, what: &str) -> String {
        let plain = format!("{kind}-{}-{what}", self.provider);
        let Some(key) = &self.key else { return plain };
        let mut mac = match <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(key) {
            Ok(mac) => mac,
            // HMAC takes keys of any length; this cannot happen.
            Err(_) => return plain,
        };
        hmac::Mac::update(&mut mac, b"id77 referral consumer message id v1\0");
        hmac::Mac::update(&mut mac, plain.as_bytes());
        let tag = hmac::Mac::finalize(mac).into_bytes();
        let hex: String = tag.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{plain}-{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_name_the_provider_and_only_its_secret_computes_them() {
        let referral = "0190a8c4-0000-7000-8000-000000000001";
        let plain = MessageIds::new("caue77", None);
        assert_eq!(plain.reply(referral), format!("reply-caue77-{referral}"));
        assert_eq!(plain.complete(referral), format!("complete-caue77-{referral}"));
        assert_eq!(plain.progress(referral, 3), format!("progress-caue77-{referral}-3"));
        let keyed = MessageIds::new("caue77", Some(b"SUAAA-the-seed"));
        let id = keyed.reply(referral);
        let tag = id.strip_prefix(&format!("reply-caue77-{referral}-")).unwrap_or_default();
        assert!(tag.len() == 32 && tag.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        // Stable for the same secret (a repeat is a duplicate), different for another secret or provider.
        assert_eq!(MessageIds::new("caue77", Some(b"SUAAA-the-seed")).reply(referral), id);
        assert_ne!(MessageIds::new("caue77", Some(b"SUBBB-another")).reply(referral), id);
        assert_ne!(MessageIds::new("dir-eau", Some(b"SUAAA-the-seed")).reply(referral), id);
        let all =
            [keyed.reply(referral), keyed.complete(referral), keyed.progress(referral, 1), keyed.progress(referral, 2)];
        assert_eq!(all.iter().collect::<std::collections::BTreeSet<_>>().len(), 4);
        assert!(!format!("{keyed:?}").contains("SUAAA"), "no secret in Debug");
        assert_eq!(MessageIds::new("caue77", Some(b"")).reply(referral), plain.reply(referral));
    }
}
