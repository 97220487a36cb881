//! What every view shares: the page of a list, RFC 3339 timestamps, `null` for empty strings, and the word of
//! an unknown enum value.

use chrono::{DateTime, SecondsFormat};
use id77_proto::prost_types::Timestamp;
use serde::Serialize;

/// Every list: a page of items and the cursor of the next page (`null` on the last).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass it as `?cursor=` for the next page; `null` on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn new<P>(items: Vec<P>, next_page_token: String) -> Self
    where
        T: From<P>,
    {
        Self { items: items.into_iter().map(T::from).collect(), next_cursor: non_empty(next_page_token) }
    }
}

/// An empty string from the wire as `null`.
pub fn non_empty(value: String) -> Option<String> {
    if value.is_empty() { None } else { Some(value) }
}

/// RFC 3339 in UTC (`2025-01-31T09:30:00.123456Z`), `None` when absent or out of range.
pub fn timestamp(ts: Option<&Timestamp>) -> Option<String> {
    let ts = ts?;
    let at = DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)?;
    Some(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// What an enum value unknown to the gateway (0, or from a newer service) reads as.
pub const UNSPECIFIED: &str = "unspecified";

#[cfg(test)]
mod tests {
    use super::*;
    use id77_proto::billing::v1 as billing;
    use id77_proto::catalogue::v1 as catalogue;
    use serde_json::json;

    use crate::views::{Provider, Quote};

    fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    #[test]
    fn timestamps_are_rfc3339_utc_or_null() {
        assert_eq!(timestamp(ts(1_700_000_000, 0).as_ref()).as_deref(), Some("2023-11-14T22:13:20Z"));
        assert_eq!(timestamp(ts(1_700_000_000, 123_456_000).as_ref()).as_deref(), Some("2023-11-14T22:13:20.123456Z"));
        assert_eq!(timestamp(None), None);
        assert_eq!(timestamp(ts(0, -1).as_ref()), None);
    }

    #[test]
    fn pages_turn_empty_tokens_into_null() {
        let page: Page<Provider> = Page::new(Vec::<catalogue::Provider>::new(), String::new());
        assert_eq!(serde_json::to_value(page).unwrap_or_default(), json!({"items": [], "next_cursor": null}));
        let page: Page<Quote> =
            Page::new(vec![billing::Quote { status: 1, amount_cents: 120_000, ..Default::default() }], "abc".into());
        let value = serde_json::to_value(page).unwrap_or_default();
        assert_eq!(value["next_cursor"], "abc");
        assert_eq!(value["items"][0]["status"], "proposed");
        assert_eq!(value["items"][0]["amount_cents"], 120_000);
    }
}
