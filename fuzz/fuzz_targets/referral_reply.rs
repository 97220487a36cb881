//! Routing's decoding of a provider's `ReferralReply` (bytes from an associated organisation's own consumer,
//! outside the platform): a validated reply or a reason, never a panic; a decline always carries its reason;
//! a stated quote (offers on quote) is within its bounds.
#![no_main]

use id77_routing::domain::{MAX_QUOTE_CENTS, MAX_QUOTE_NOTE_CHARS, Reply};
use id77_routing::events::decode_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    match decode_reply(bytes) {
        Ok((_, Reply::Decline { reason })) => assert!(!reason.trim().is_empty()),
        Ok((_, Reply::Accept(Some(quote)))) => {
            assert!((1..=MAX_QUOTE_CENTS).contains(&quote.amount_cents), "{quote:?}");
            assert!(quote.note.chars().count() <= MAX_QUOTE_NOTE_CHARS, "{quote:?}");
            assert!(!quote.note.chars().any(char::is_control), "{quote:?}");
        }
        Ok(_) => {}
        Err(why) => assert!(!why.is_empty()),
    }
});
