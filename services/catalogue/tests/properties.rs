//! Properties of the date parsing of booking requests (external input): arbitrary text never panics, an
//! accepted date prints back as it was typed (trimmed), and a loan period is ordered and never in the past.
//! Fuzzed too by `make fuzz` (fuzz/fuzz_targets/dates.rs).

use chrono::NaiveDate;
use id77_catalogue::booking::{loan_period, parse_date};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_a_date_or_a_field_violation(raw in any::<String>()) {
        match parse_date("from", &raw) {
            Ok(date) => prop_assert_eq!(date.format("%Y-%m-%d").to_string(), raw.trim()),
            Err(violation) => prop_assert_eq!(violation.field, "from"),
        }
    }

    #[test]
    fn date_shaped_text_never_panics(y in 0u32..10000, m in 0u32..20, d in 0u32..40) {
        let raw = format!("{y:04}-{m:02}-{d:02}");
        prop_assert_eq!(parse_date("to", &raw).is_ok(), NaiveDate::from_ymd_opt(y as i32, m, d).is_some());
    }

    #[test]
    fn an_accepted_loan_period_is_ordered_and_not_in_the_past(from in "[0-9 -]{8,12}|2026-0[1-9]-[0-2][0-9]", to in "[0-9 -]{8,12}|2026-0[1-9]-[0-2][0-9]") {
        let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
        if let Ok((f, t)) = loan_period(&from, &to, today) {
            prop_assert!(f <= t && f >= today);
        }
    }
}
