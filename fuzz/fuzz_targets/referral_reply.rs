//! Routing's decoding of a provider's `ReferralReply` (bytes from an associated organisation's own consumer,
//! outside the platform): a validated reply or a reason, never a panic; a decline always carries its reason.
#![no_main]

use id77_routing::domain::Reply;
use id77_routing::events::decode_reply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    match decode_reply(bytes) {
        Ok((_, Reply::Decline { reason })) => assert!(!reason.trim().is_empty()),
        Ok(_) => {}
        Err(why) => assert!(!why.is_empty()),
    }
});
