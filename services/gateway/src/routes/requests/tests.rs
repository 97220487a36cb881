//! Unit tests of `requests`'s routes.

use super::*;
use axum::http::HeaderValue;

#[test]
fn period_bounds_take_dates_or_times_and_a_date_end_includes_its_day() {
    let mut checks = Checks::new();
    let from = instant(&mut checks, "from", Some("2026-11-01".into()), false);
    let to = instant(&mut checks, "to", Some("2026-11-30".into()), true);
    let at = instant(&mut checks, "to", Some("2026-11-30T10:00:00+01:00".into()), true);
    assert!(checks.finish().is_ok());
    assert_eq!(from.map(|t| t.to_rfc3339()).as_deref(), Some("2026-11-01T00:00:00+00:00"));
    assert_eq!(to.map(|t| t.to_rfc3339()).as_deref(), Some("2026-12-01T00:00:00+00:00"));
    assert_eq!(at.map(|t| t.to_rfc3339()).as_deref(), Some("2026-11-30T09:00:00+00:00"));
    let mut checks = Checks::new();
    assert_eq!(instant(&mut checks, "from", Some("30/11/2026".into()), false), None);
    assert_eq!(instant(&mut checks, "from", None, false), None);
    assert_eq!(checks.finish().err().map(|p| p.errors.len()), Some(1));
}

#[test]
fn filters_name_the_lifecycle_statuses_and_categories() {
    for name in STATUSES.split(", ") {
        assert!(status_filter(name).is_some(), "{name}");
    }
    assert_eq!(status_filter("open"), None);
    assert_eq!(category_filter("exhibition_loan"), Some("exhibition_loan"));
    assert_eq!(category_filter("expo"), None);
}

#[test]
fn idempotency_keys_are_optional_and_bounded() {
    let mut headers = HeaderMap::new();
    let mut checks = Checks::new();
    assert_eq!(idempotency_key(&headers, &mut checks), "");
    headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("abc-123"));
    assert_eq!(idempotency_key(&headers, &mut checks), "abc-123");
    assert!(checks.finish().is_ok());
    let mut checks = Checks::new();
    headers.insert(IDEMPOTENCY_KEY, HeaderValue::from_static("abc\t123"));
    idempotency_key(&headers, &mut checks);
    assert_eq!(checks.finish().err().map(|p| p.errors.len()), Some(1), "a tab is no part of a key");

    let mut checks = Checks::new();
    if let Ok(long) = HeaderValue::from_str(&"k".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1)) {
        headers.insert(IDEMPOTENCY_KEY, long);
    }
    idempotency_key(&headers, &mut checks);
    let problem = checks.finish().err();
    assert_eq!(problem.map(|p| p.errors[0].field.clone()).as_deref(), Some("Idempotency-Key"));

    let mut checks = Checks::new();
    if let Ok(binary) = HeaderValue::from_bytes(b"caf\xe9") {
        headers.insert(IDEMPOTENCY_KEY, binary);
    }
    idempotency_key(&headers, &mut checks);
    assert!(checks.finish().is_err());
}
