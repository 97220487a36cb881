//! Catalogue's booking dates (exhibition loans): any text is a date or a field violation naming its field; an
//! accepted loan period is ordered and not in the past.
#![no_main]

use chrono::NaiveDate;
use id77_catalogue::booking::{loan_period, parse_date};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (from, to) = input;
    match parse_date("from", from) {
        Ok(date) => assert_eq!(date.format("%Y-%m-%d").to_string(), from.trim()),
        Err(violation) => assert_eq!(violation.field, "from"),
    }
    let today = NaiveDate::from_ymd_opt(2026, 3, 1).expect("a valid constant date");
    match loan_period(from, to, today) {
        Ok((f, t)) => assert!(f <= t && f >= today, "{from:?}..{to:?} gave {f}..{t}"),
        Err(violations) => assert!(!violations.is_empty()),
    }
});
