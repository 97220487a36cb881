//! The JetStream streams of the platform, as the event catalogue declares them ([`id77_proto::events`]): one per
//! publishing service, plus the provider hand-off stream and the dead letters. Publishers and consumers both
//! ensure the streams they touch, so start-up order does not matter.

pub use id77_proto::events::StreamDef;
pub use id77_proto::events::is_valid_subject_token;
pub use id77_proto::events::streams::{BILLING, CATALOGUE, DEADLETTER, MEMBERSHIP, REFERRALS, REQUESTS, ROUTING};

/// The subjects the gateway's live updates (`GET /v1/events`) subscribe to ([`id77_proto::events::LIVE`]).
pub const LIVE_SUBJECTS: [&str; 3] = id77_proto::events::LIVE;

/// Subject on which a provider receives its referrals.
pub fn referral_offered_subject(provider_code: &str) -> String {
    id77_proto::events::provider::offered(provider_code)
}

/// Subject on which a provider replies.
pub fn referral_reply_subject(provider_code: &str) -> String {
    id77_proto::events::provider::reply(provider_code)
}
