//! The JetStream streams of the platform: one per publishing service, plus the provider hand-off stream and
//! the dead letters. Publishers and consumers both ensure the streams they touch, so start-up order does not
//! matter.

/// A stream's logical name and subjects (before the deployment's prefix is applied).
#[derive(Debug, Clone, Copy)]
pub struct StreamDef {
    pub name: &'static str,
    pub subjects: &'static [&'static str],
}

pub const MEMBERSHIP: StreamDef = StreamDef { name: "MEMBERSHIP", subjects: &["id77.membership.>"] };
pub const CATALOGUE: StreamDef = StreamDef { name: "CATALOGUE", subjects: &["id77.catalogue.>"] };
pub const REQUESTS: StreamDef = StreamDef { name: "REQUESTS", subjects: &["id77.requests.>"] };
pub const ROUTING: StreamDef = StreamDef { name: "ROUTING", subjects: &["id77.routing.>"] };
pub const BILLING: StreamDef = StreamDef { name: "BILLING", subjects: &["id77.billing.>"] };
/// Referrals to providers (`id77.referrals.<provider>.offered`) and their replies (`...reply`).
pub const REFERRALS: StreamDef = StreamDef { name: "REFERRALS", subjects: &["id77.referrals.>"] };
/// Messages a consumer gave up on, on `id77.deadletter.<consumer>`.
pub const DEADLETTER: StreamDef = StreamDef { name: "DEADLETTER", subjects: &["id77.deadletter.>"] };

/// The subjects the gateway's live updates (`GET /v1/events`) subscribe to, with core NATS subscriptions: the
/// gateway's NATS user may subscribe to these and nothing else.
pub const LIVE_SUBJECTS: [&str; 3] =
    ["id77.requests.request.status_changed", "id77.requests.message.posted", "id77.routing.referral.offered"];

/// Subject on which a provider receives its referrals.
pub fn referral_offered_subject(provider_code: &str) -> String {
    format!("id77.referrals.{provider_code}.offered")
}

/// Subject on which a provider replies.
pub fn referral_reply_subject(provider_code: &str) -> String {
    format!("id77.referrals.{provider_code}.reply")
}

/// A provider code is also a subject token: lowercase ASCII letters, digits and dashes only.
pub fn is_valid_subject_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 64
        && token.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_codes_cannot_escape_their_subject() {
        assert!(is_valid_subject_token("caue77"));
        assert!(is_valid_subject_token("dir-routes"));
        for bad in ["", "a.b", "*", ">", "A", "a b"] {
            assert!(!is_valid_subject_token(bad), "{bad:?}");
        }
        assert_eq!(referral_offered_subject("caue77"), "id77.referrals.caue77.offered");
    }
}
