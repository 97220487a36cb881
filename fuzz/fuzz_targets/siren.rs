//! Membership's SIREN parser and application validation (text typed by a collectivité's secretary).
//! Property: a SIREN is accepted only as nine digits passing the Luhn check; anything else is a reason.
#![no_main]

use id77_membership::domain::{Siren, luhn_valid, validate_application};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str, &str)| {
    let (siren, name, email) = input;
    match Siren::parse(siren) {
        Ok(parsed) => {
            let s = parsed.as_str();
            assert_eq!(s.len(), 9, "{siren:?} parsed as {s:?}");
            assert!(s.bytes().all(|b| b.is_ascii_digit()), "{siren:?} parsed as {s:?}");
            assert!(luhn_valid(s), "{siren:?} accepted without a valid check digit");
        }
        Err(why) => assert!(!why.is_empty()),
    }
    let _ = validate_application(siren, name, email);
});
