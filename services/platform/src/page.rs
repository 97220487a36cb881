//! Opaque cursors for keyset pagination: the client gets a token, never an offset.

use serde::{Serialize, de::DeserializeOwned};

use crate::ServiceError;

/// Largest page a client may ask for.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Page size when the client asks for 0.
pub const DEFAULT_PAGE_SIZE: u32 = 20;

/// Clamps a requested page size into `1..=MAX_PAGE_SIZE`.
pub fn size(requested: u32) -> i64 {
    i64::from(if requested == 0 { DEFAULT_PAGE_SIZE } else { requested.min(MAX_PAGE_SIZE) })
}

/// Encodes a cursor (the sort key of the last item returned) as an opaque hex token.
pub fn encode<T: Serialize>(cursor: &T) -> String {
    let json = serde_json::to_vec(cursor).unwrap_or_default();
    json.iter().map(|b| format!("{b:02x}")).collect()
}

/// Decodes a token made by [`encode`]; an empty token is the first page.
pub fn decode<T: DeserializeOwned>(token: &str) -> Result<Option<T>, ServiceError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || ServiceError::invalid("page_token", "is not a token returned by this API");
    if !token.len().is_multiple_of(2) || token.len() > 2048 {
        return Err(invalid());
    }
    let bytes: Result<Vec<u8>, _> =
        (0..token.len()).step_by(2).map(|i| u8::from_str_radix(token.get(i..i + 2).unwrap_or("zz"), 16)).collect();
    let bytes = bytes.map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map(Some).map_err(|_| invalid())
}

/// Keeps `limit` rows; if one more was fetched, returns the cursor of the last kept row.
pub fn split<T>(mut rows: Vec<T>, limit: i64, cursor: impl Fn(&T) -> String) -> (Vec<T>, String) {
    let limit = usize::try_from(limit).unwrap_or(0);
    if rows.len() > limit {
        rows.truncate(limit);
        let next = rows.last().map(&cursor).unwrap_or_default();
        (rows, next)
    } else {
        (rows, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let token = encode(&("Avon", 42));
        assert_eq!(decode::<(String, i64)>(&token).ok().flatten(), Some(("Avon".to_owned(), 42)));
        assert!(decode::<(String, i64)>("").is_ok_and(|c| c.is_none()));
        assert!(decode::<(String, i64)>("zz").is_err());
        assert!(decode::<(String, i64)>("abc").is_err());
        assert_eq!(size(0), 20);
        assert_eq!(size(1000), 100);
    }
}
