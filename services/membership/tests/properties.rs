//! Properties of the parsers of external input (a SIREN typed by a commune's secretary, an application form):
//! arbitrary input never panics, and what is accepted is what the rules say. The same functions are fuzzed by
//! `make fuzz` (fuzz/fuzz_targets/siren.rs).

use id77_membership::domain::{Siren, luhn_valid, validate_application};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_a_siren_or_a_typed_refusal(raw in any::<String>()) {
        match Siren::parse(&raw) {
            Ok(siren) => {
                prop_assert_eq!(siren.as_str().len(), 9);
                prop_assert!(siren.as_str().bytes().all(|b| b.is_ascii_digit()));
                prop_assert!(luhn_valid(siren.as_str()));
            }
            Err(why) => prop_assert!(!why.is_empty()),
        }
    }

    #[test]
    fn nine_digits_are_accepted_exactly_when_luhn_holds(digits in "[0-9]{9}", spaces in "[ ]{0,3}") {
        let spaced = format!("{}{spaces}{}", &digits[..3], &digits[3..]);
        prop_assert_eq!(Siren::parse(&spaced).is_ok(), luhn_valid(&digits));
    }

    #[test]
    fn any_application_is_validated_without_panicking(siren in any::<String>(), name in any::<String>(), email in any::<String>()) {
        let _ = validate_application(&siren, &name, &email);
    }
}
