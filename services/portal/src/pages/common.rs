//! What every screen reads from the gateway's JSON answers (a string field, a page's items) and the ids it may
//! put in a gateway path.

use serde_json::Value;

/// A string field of a JSON value ("" when absent or not a string).
pub fn s<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("")
}

/// The items of a page answered by the gateway.
pub fn items(value: &Value) -> &[Value] {
    value["items"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// A non-empty id usable in a gateway path (UUIDs, codes, SIREN): letters, digits, `-` and `_` only.
pub fn safe_id(id: &str) -> Option<&str> {
    (!id.is_empty() && id.len() <= 100 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_gateway_paths_cannot_change_the_path() {
        assert_eq!(safe_id("0193f6a2-1c2b-7d3e-9f00-123456789abc"), Some("0193f6a2-1c2b-7d3e-9f00-123456789abc"));
        assert_eq!(safe_id("caue77"), Some("caue77"));
        for bad in ["", "../v1/users", "a/b", "a?b=c", "a%2F", &"x".repeat(101)] {
            assert_eq!(safe_id(bad), None, "{bad}");
        }
    }
}
