//! Properties of pricing: a price rule built from any parts (what the catalogue sends) is valid or refused
//! with a reason, pricing never panics or overflows silently, and a per-inhabitant price stays between its
//! floor and its cap and grows with the population. Fuzzed too by `make fuzz` (fuzz/fuzz_targets/price_rule.rs).

use id77_billing::domain::{Price, PriceError, PriceRule};
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("free".to_owned()),
        Just("flat".to_owned()),
        Just("daily_rate".to_owned()),
        Just("per_inhabitant".to_owned()),
        Just("on_quote".to_owned()),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn any_parts_make_a_rule_or_a_reason(kind in kind(), amount in any::<i64>(), days in any::<i32>(),
                                          floor in any::<i64>(), cap in any::<i64>(), population in any::<Option<i64>>()) {
        match PriceRule::from_parts(&kind, amount, days, floor, cap) {
            Ok(rule) => {
                prop_assert_eq!(rule.kind(), kind.as_str());
                match rule.price(population) {
                    Ok(Price::Amount(cents)) => prop_assert!(cents >= 0),
                    Ok(Price::Free | Price::ToBeStated) => {}
                    Err(PriceError::UnknownPopulation) => prop_assert!(population.is_none() && rule.needs_population()),
                    Err(PriceError::NegativePopulation) => prop_assert!(population.is_some_and(|p| p < 0)),
                    Err(PriceError::Overflow) => {}
                }
            }
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }

    #[test]
    fn per_inhabitant_prices_stay_within_floor_and_cap_and_grow(amount in 1i64..10_000, floor in 0i64..10_000_000,
                                                               extra in 0i64..10_000_000, p1 in 0i64..3_000_000, p2 in 0i64..3_000_000) {
        let cap = floor + extra;
        let rule = PriceRule::from_parts("per_inhabitant", amount, 0, floor, cap);
        prop_assert!(rule.is_ok(), "{:?}", rule);
        let rule = rule.unwrap_or(PriceRule::Free);
        let price = |p: i64| match rule.price(Some(p)) {
            Ok(Price::Amount(cents)) => cents,
            other => panic!("per inhabitant priced {other:?}"),
        };
        let (low, high) = (p1.min(p2), p1.max(p2));
        prop_assert!(price(low) <= price(high));
        for p in [low, high] {
            let cents = price(p);
            prop_assert!(cents >= floor);
            if cap > 0 {
                prop_assert!(cents <= cap);
            }
        }
    }
}
