//! Billing's price rules as stored with an offer (kind and numbers from the catalogue, typed by a coordinator)
//! and their pricing for a member's population: a rule or a reason, and a price never negative.
#![no_main]

use id77_billing::domain::{Price, PriceError, PriceRule};
use libfuzzer_sys::fuzz_target;

const KINDS: [&str; 6] = ["free", "flat", "daily_rate", "per_inhabitant", "on_quote", "other"];

fuzz_target!(|input: (u8, i64, i32, i64, i64, Option<i64>)| {
    let (kind, amount, days, floor, cap, population) = input;
    let kind = KINDS[usize::from(kind) % KINDS.len()];
    match PriceRule::from_parts(kind, amount, days, floor, cap) {
        Ok(rule) => {
            assert_eq!(rule.kind().as_str(), kind);
            match rule.price(population) {
                Ok(Price::Amount(cents)) => assert!(cents >= 0, "{rule:?} priced {cents} for {population:?}"),
                Ok(Price::Free | Price::ToBeStated) => {}
                Err(PriceError::UnknownPopulation) => assert!(population.is_none() && rule.needs_population()),
                Err(PriceError::NegativePopulation) => assert!(population.is_some_and(|p| p < 0)),
                Err(PriceError::Overflow) => {}
            }
        }
        Err(reason) => assert!(!reason.is_empty()),
    }
});
