//! Routing rule conditions typed by the coordinator (JSON text): parsed or refused; a parsed condition is
//! checked, normalised and evaluated without panicking, and prints back to the same condition.
#![no_main]

use id77_routing::domain::rules::{
    MemberFacts, OfferFacts, check_condition, condition_json, evaluate, normalize, parse_condition,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(Some(condition)) = parse_condition(text) else { return };
    let _ = check_condition(&condition);
    let member = MemberFacts { known: true, population: 1200, insee_code: "77284".into(), ..MemberFacts::default() };
    let offer = OfferFacts { code: "voirie".into(), themes: vec!["voirie".into()], provider_code: "dir-routes".into() };
    let mut reasons = Vec::new();
    let _ = evaluate(&condition, &offer, &member, &mut reasons);
    let mut reasons = Vec::new();
    let _ = evaluate(&normalize(&condition), &offer, &member, &mut reasons);
    assert_eq!(parse_condition(&condition_json(Some(&condition))), Ok(Some(condition)));
});
