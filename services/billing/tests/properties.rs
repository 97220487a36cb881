//! Properties of pricing: a price rule built from any parts (what the catalogue sends) is valid or refused
//! with a reason, pricing never panics or overflows silently, and a per-inhabitant price stays between its
//! floor and its cap and grows with the population. Fuzzed too by `make fuzz` (fuzz/fuzz_targets/price_rule.rs).
//! Properties of a quote's life (ADR 0013): whatever the events, a quote only moves along the ADR's arrows,
//! leaves `proposed` at most once and never leaves a final status; a member admin's fields are accepted
//! exactly when their trimmed text is within bounds and free of control characters, and come back trimmed.

use id77_billing::domain::{self, InvalidTransition, Price, PriceError, PriceRule, QuoteEvent, QuoteStatus};
use proptest::prelude::*;

fn quote_event() -> impl Strategy<Value = QuoteEvent> {
    prop_oneof![Just(QuoteEvent::Accept), Just(QuoteEvent::Refuse), Just(QuoteEvent::Void), Just(QuoteEvent::Expire)]
}

/// Any text, often with spaces, line breaks or control characters around or inside.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<char>(), 0..max).prop_map(|c| c.into_iter().collect::<String>()),
        (" {0,3}", "[a-zA-Zéà0-9 ,.'-]{0,60}", "[ \\t\\n]{0,3}").prop_map(|(a, b, c)| format!("{a}{b}{c}")),
        (1usize..1100).prop_map(|n| "x".repeat(n)),
    ]
}

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
                prop_assert_eq!(rule.kind().as_str(), kind.as_str());
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

    #[test]
    fn a_quote_moves_only_along_the_adr_arrows(events in proptest::collection::vec(quote_event(), 0..12)) {
        let allowed = |from: QuoteStatus, to: QuoteStatus| matches!(
            (from, to),
            (QuoteStatus::Proposed, QuoteStatus::Accepted | QuoteStatus::Refused | QuoteStatus::Voided | QuoteStatus::Expired)
                | (QuoteStatus::Accepted, QuoteStatus::Voided)
        );
        let mut status = QuoteStatus::Proposed;
        let mut left_proposed = 0;
        for event in events {
            match status.apply(event) {
                Ok(next) => {
                    prop_assert!(allowed(status, next), "{:?} --{:?}--> {:?}", status, event, next);
                    prop_assert!(!status.is_final());
                    if status == QuoteStatus::Proposed {
                        left_proposed += 1;
                    }
                    status = next;
                }
                Err(e) => {
                    prop_assert_eq!(e, InvalidTransition { from: status, event });
                    prop_assert!(!e.to_string().is_empty());
                }
            }
            prop_assert!(status != QuoteStatus::Proposed || left_proposed == 0);
        }
        prop_assert!(left_proposed <= 1);
        if status.is_final() {
            for event in [QuoteEvent::Accept, QuoteEvent::Refuse, QuoteEvent::Void, QuoteEvent::Expire] {
                prop_assert!(status.apply(event).is_err());
            }
        }
    }

    #[test]
    fn decision_fields_are_accepted_exactly_when_within_bounds(raw in text(1100)) {
        let trimmed = raw.trim();
        let n = trimmed.chars().count();
        let no_control = !trimmed.chars().any(char::is_control);
        match domain::signatory_name(&raw) {
            Ok(name) => {
                prop_assert_eq!(name.as_str(), trimmed);
                prop_assert!((1..=domain::MAX_SIGNATORY_CHARS).contains(&n) && no_control);
            }
            Err(reason) => {
                prop_assert!(!reason.is_empty());
                prop_assert!(n == 0 || n > domain::MAX_SIGNATORY_CHARS || !no_control);
            }
        }
        match domain::purchase_order_number(&raw) {
            Ok(None) => prop_assert_eq!(n, 0),
            Ok(Some(number)) => {
                prop_assert_eq!(number.as_str(), trimmed);
                prop_assert!(n <= domain::MAX_PURCHASE_ORDER_CHARS && no_control);
            }
            Err(_) => prop_assert!(n > domain::MAX_PURCHASE_ORDER_CHARS || !no_control),
        }
        let only_breaks = !trimmed.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
        match domain::refusal_reason(&raw) {
            Ok(reason) => {
                prop_assert_eq!(reason.as_str(), trimmed);
                prop_assert!((1..=domain::MAX_REFUSAL_CHARS).contains(&n) && only_breaks);
            }
            Err(_) => prop_assert!(n == 0 || n > domain::MAX_REFUSAL_CHARS || !only_breaks),
        }
    }
}
