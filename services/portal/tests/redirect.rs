//! The portal's redirect targets against a WHATWG URL parser (the `url` crate, which follows the URL Standard
//! browsers implement): whatever `safe_redirect` accepts resolves, as sent and once percent-decoded, to a URL of
//! the portal's own origin, and fits in a `Location` header (no 500).

use axum::http::HeaderValue;
use id77_portal::redirect::{MAX_TARGET_BYTES, safe_redirect};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use url::Url;

const BASE: &str = "https://portail.example/demandes/r-1";

fn same_origin(target: &str) -> Result<(), String> {
    let base = Url::parse(BASE).map_err(|e| e.to_string())?;
    let resolved = base.join(target).map_err(|e| format!("{target:?} does not resolve: {e}"))?;
    if resolved.origin() == base.origin() {
        Ok(())
    } else {
        Err(format!("{target:?} resolves to {resolved}, another origin"))
    }
}

/// One round of percent-decoding, as a server or proxy in between might do.
fn decoded(target: &str) -> String {
    let bytes = target.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2)))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_accepted(target: &str) -> Result<(), String> {
    same_origin(target)?;
    let mut current = target.to_owned();
    for _ in 0..4 {
        current = decoded(&current);
        same_origin(&current).map_err(|e| format!("once decoded: {e}"))?;
    }
    HeaderValue::from_str(target).map_err(|e| format!("{target:?} is no header value: {e}"))?;
    Ok(())
}

/// Pieces biased towards what confuses URL parsers.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("/".to_owned()),
        2 => Just("\\".to_owned()),
        2 => prop::sample::select(vec!["\t", "\n", "\r", "\0", " ", "\u{b}", "\u{c}", "\u{1f}", "\u{7f}"]).prop_map(str::to_owned),
        2 => prop::sample::select(vec!["%", "%2f", "%2F", "%5c", "%5C", "%09", "%0a", "%0D", "%00", "%20", "%25", "%252f", "%2e"]).prop_map(str::to_owned),
        2 => prop::sample::select(vec![":", ".", "..", "@", "?", "#", "&", "=", ";"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["http:", "https:", "javascript:", "evil.example", "localhost", "[::1]", ":443"]).prop_map(str::to_owned),
        1 => prop::sample::select(vec!["é", "\u{3000}", "\u{2028}", "\u{ff0f}", "\u{ff3c}", "\u{85}", "\u{a0}"]).prop_map(str::to_owned),
        4 => "[a-zA-Z0-9_-]{1,6}",
    ]
}

fn target() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(piece(), 0..12))
        .prop_map(|(slash, pieces)| format!("{}{}", if slash { "/" } else { "" }, pieces.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, ..ProptestConfig::default() })]

    #[test]
    fn whatever_is_accepted_stays_on_the_portal(raw in target()) {
        if let Some(accepted) = safe_redirect(&raw) {
            prop_assert_eq!(&accepted, &raw, "an accepted target is kept as sent");
            if let Err(why) = check_accepted(&accepted) {
                prop_assert!(false, "{}", why);
            }
        }
    }

    #[test]
    fn any_string_whatsoever_is_safe(raw in "\\PC{0,40}") {
        if let Some(accepted) = safe_redirect(&raw)
            && let Err(why) = check_accepted(&accepted)
        {
            prop_assert!(false, "{}", why);
        }
    }
}

#[test]
fn the_oracle_sees_the_attacks_the_review_found() {
    // Without the parser's help these would be "paths starting with /": the oracle confirms they leave.
    for attack in ["/\t/evil.example", "/\n/evil.example", "/\\evil.example", "//evil.example", " //evil.example"] {
        assert!(same_origin(attack).is_err(), "{attack:?} should leave the origin per the URL Standard");
        assert_eq!(safe_redirect(attack), None, "{attack:?}");
    }
    for encoded in ["/%2f%2fevil.example", "/%5cevil.example", "/%09/evil.example", "/%0a/evil.example", "/%00"] {
        assert_eq!(safe_redirect(encoded), None, "{encoded:?}");
    }
    assert_eq!(safe_redirect(&format!("/{}", "a".repeat(MAX_TARGET_BYTES))), None);
    for kept in ["/", "/demandes?statut=ouverte", "/orientations/ref-9#conversation"] {
        assert_eq!(safe_redirect(kept).as_deref(), Some(kept));
        assert!(check_accepted(kept).is_ok());
    }
}

#[test]
fn the_generator_produces_both_accepted_and_refused_targets() {
    // The property is not vacuous: a good share of the generated targets is accepted.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = target();
    let mut accepted = 0;
    for _ in 0..2_000 {
        let raw = strategy.new_tree(&mut runner).map(|t| t.current()).unwrap_or_default();
        if safe_redirect(&raw).is_some() {
            accepted += 1;
        }
    }
    assert!((100..1_900).contains(&accepted), "{accepted} of 2000 accepted");
}
