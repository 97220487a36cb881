//! Request input: axum's rejections turned into problem+json, pagination parameters, and the size checks every
//! string gets before it is forwarded.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use id77_platform::error::FieldViolation;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// Largest request body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest `?limit=`.
pub const MAX_LIMIT: u32 = 100;
/// Longest cursor accepted (the services' tokens are far shorter).
pub const MAX_CURSOR_CHARS: usize = 2048;
/// Longest id, code or filter value accepted.
pub const MAX_ID_CHARS: usize = 100;

/// A JSON body that could not be read, as a problem: 400 (syntax, missing field, wrong type),
/// 413 (over [`MAX_BODY_BYTES`]) or 415 (not `application/json`).
pub fn json_problem(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::JsonSyntaxError(e) => Problem::bad_request("MALFORMED_JSON", e.body_text()),
        JsonRejection::JsonDataError(e) => Problem::bad_request("INVALID_BODY", e.body_text()),
        JsonRejection::MissingJsonContentType(e) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Unsupported media type",
            e.body_text(),
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "Payload too large",
            format!("the request body must be at most {MAX_BODY_BYTES} bytes"),
        ),
        other => Problem::bad_request("UNREADABLE_BODY", other.body_text()),
    }
}

/// An optional integer of a JSON body, also when written with a zero fraction (`5.0`): JSON Schema's `integer`
/// is a mathematical integer, so `21.0` is one and a client (or a generator) may send it. A fraction, a string or
/// a value out of the field's range is refused like any wrong type (400 `INVALID_BODY`). Use with
/// `#[serde(default, deserialize_with = "crate::extract::integral")]`.
pub fn integral<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i128>,
{
    use serde::Deserialize as _;
    use serde::de::Error as _;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = if let Some(i) = number.as_i64() {
        Some(i128::from(i))
    } else if let Some(u) = number.as_u64() {
        Some(i128::from(u))
    } else {
        // Beyond ±2^63 no field of the API has room anyway; the cast is exact below it.
        number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i128)
    };
    let whole = whole.ok_or_else(|| D::Error::custom(format!("invalid value: {number}, expected an integer")))?;
    T::try_from(whole).map(Some).map_err(|_| D::Error::custom(format!("invalid value: {number} is out of range")))
}

/// An optional object of a JSON body, refusing any other JSON type: serde would otherwise read a struct from an
/// array of its fields (`"site": [null, null]`), which the document does not allow. Use with
/// `#[serde(default, deserialize_with = "crate::extract::object")]`.
pub fn object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::Deserialize as _;
    use serde::de::Error as _;
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value @ serde_json::Value::Object(_)) => T::deserialize(value).map(Some).map_err(D::Error::custom),
        Some(_) => Err(D::Error::custom("invalid type: expected an object")),
    }
}

/// `Query<T>` whose rejection is a problem.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(Problem::bad_request("INVALID_QUERY", e.body_text()))
            }
            Err(other) => Err(Problem::bad_request("INVALID_QUERY", other.body_text())),
        }
    }
}

/// `Path<T>` whose rejection is a problem.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                Err(Problem::bad_request("INVALID_PATH", e.body_text()))
            }
            Err(other) => Err(Problem::bad_request("INVALID_PATH", other.body_text())),
        }
    }
}

/// Collects field errors, so a client sees all of them at once.
#[derive(Debug, Default)]
pub struct Checks {
    violations: Vec<FieldViolation>,
}

impl Checks {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn fail(&mut self, field: &str, detail: impl Into<String>) {
        self.violations.push(FieldViolation { field: field.to_owned(), description: detail.into() });
    }

    /// An optional id filter (`?request_id=`): absent is no filter; present, it must be a UUID (an empty value is
    /// refused rather than read as "no filter", as the document's `format: uuid` says).
    pub fn uuid_filter(&mut self, field: &str, value: Option<String>) -> String {
        match value {
            None => String::new(),
            Some(raw) if uuid::Uuid::parse_str(raw.trim()).is_ok() => raw.trim().to_owned(),
            Some(_) => {
                self.fail(field, "must be a UUID");
                String::new()
            }
        }
    }

    /// An optional filter of a query (`?provider=`): absent is no filter; present, it must not be empty (a
    /// parameter is left out, not given empty) and is at most `max` characters. Trimmed.
    pub fn filter(&mut self, field: &str, value: Option<String>, max: usize) -> String {
        match value {
            Some(raw) if raw.trim().is_empty() => {
                self.fail(field, "must not be empty (leave the parameter out)");
                String::new()
            }
            value => self.optional(field, value, max).trim().to_owned(),
        }
    }

    /// At most `max` characters.
    pub fn max_chars(&mut self, field: &str, value: &str, max: usize) {
        if value.chars().count() > max {
            self.fail(field, format!("must be at most {max} characters"));
        }
    }

    /// Present (and, once trimmed, not empty) and at most `max` characters; returns the value or "".
    pub fn required(&mut self, field: &str, value: Option<String>, max: usize) -> String {
        match value {
            Some(v) if !v.trim().is_empty() => {
                self.max_chars(field, &v, max);
                v
            }
            _ => {
                self.fail(field, "is required");
                String::new()
            }
        }
    }

    /// An optional filter: empty when absent, at most `max` characters.
    pub fn optional(&mut self, field: &str, value: Option<String>, max: usize) -> String {
        let value = value.unwrap_or_default();
        self.max_chars(field, &value, max);
        value
    }

    /// `?limit=` (1..=100, absent means the service's default) and `?cursor=`, as gRPC page size and token.
    pub fn page(&mut self, limit: Option<&str>, cursor: Option<String>) -> (u32, String) {
        let size = match limit.map(str::trim) {
            None | Some("") => 0,
            Some(raw) => match raw.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    self.fail("limit", format!("must be an integer from 1 to {MAX_LIMIT}"));
                    0
                }
            },
        };
        (size, self.optional("cursor", cursor, MAX_CURSOR_CHARS))
    }

    /// An enum filter: `parse` maps a known value; absent or empty is "any".
    pub fn choice<T>(
        &mut self,
        field: &str,
        value: Option<&str>,
        allowed: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Option<T> {
        let value = value.map(str::trim).filter(|v| !v.is_empty())?;
        let parsed = parse(value);
        if parsed.is_none() {
            self.fail(field, format!("must be one of {allowed}"));
        }
        parsed
    }

    pub fn finish(self) -> Result<(), Problem> {
        if self.violations.is_empty() { Ok(()) } else { Err(Problem::invalid_fields(self.violations)) }
    }
}

/// The words of a vocabulary as an error detail lists them: `a, b, c` with `last` = `", "`, `a, b or c` with
/// `" or "`.
pub fn spelled<W: Copy>(words: &[W], spelling: fn(W) -> &'static str, last: &str) -> String {
    let words: Vec<_> = words.iter().map(|w| spelling(*w)).collect();
    match words.split_last() {
        Some((tail, head)) if !head.is_empty() => format!("{}{last}{tail}", head.join(", ")),
        _ => words.concat(),
    }
}

/// A path id or code: not empty, at most [`MAX_ID_CHARS`].
pub fn path_id(field: &str, value: &str) -> Result<(), Problem> {
    let mut checks = Checks::new();
    if value.trim().is_empty() {
        checks.fail(field, "is required");
    }
    checks.max_chars(field, value, MAX_ID_CHARS);
    checks.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_filters_are_absent_or_uuids() {
        let mut checks = Checks::new();
        assert_eq!(checks.uuid_filter("request_id", None), "");
        let id = "01a24d49-52e7-71d9-9729-2fee805833be";
        assert_eq!(checks.uuid_filter("request_id", Some(format!(" {id} "))), id);
        assert!(checks.finish().is_ok());
        let mut checks = Checks::new();
        checks.uuid_filter("request_id", Some(String::new()));
        checks.uuid_filter("member_id", Some("abc".into()));
        assert_eq!(checks.finish().err().map(|p| p.errors.len()), Some(2));
        let mut checks = Checks::new();
        assert_eq!(checks.filter("provider", Some(" caue77 ".into()), 100), "caue77");
        assert_eq!(checks.filter("provider", None, 100), "");
        assert!(checks.finish().is_ok());
        let mut checks = Checks::new();
        checks.filter("provider", Some(" ".into()), 100);
        assert_eq!(checks.finish().err().map(|p| p.errors.len()), Some(1));
    }

    #[test]
    fn nested_objects_are_objects_not_arrays() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        struct Site {
            address: Option<String>,
        }
        #[derive(Debug, serde::Deserialize)]
        struct Body {
            #[serde(default, deserialize_with = "object")]
            site: Option<Site>,
        }
        let read = |json: &str| serde_json::from_str::<Body>(json).map(|b| b.site).map_err(|e| e.to_string());
        assert_eq!(read(r#"{"site": {"address": "1 rue"}}"#), Ok(Some(Site { address: Some("1 rue".into()) })));
        assert_eq!(read(r#"{"site": null}"#), Ok(None));
        assert_eq!(read("{}"), Ok(None));
        assert!(read(r#"{"site": [null]}"#).is_err_and(|e| e.contains("expected an object")));
        assert!(read(r#"{"site": "x"}"#).is_err());
    }

    #[test]
    fn integers_may_have_a_zero_fraction_but_nothing_else() {
        #[derive(Debug, serde::Deserialize)]
        struct Body {
            #[serde(default, deserialize_with = "integral")]
            rating: Option<u32>,
        }
        let read = |json: &str| serde_json::from_str::<Body>(json).map(|b| b.rating).map_err(|e| e.to_string());
        assert_eq!(read(r#"{"rating": 5}"#), Ok(Some(5)));
        assert_eq!(read(r#"{"rating": 5.0}"#), Ok(Some(5)));
        assert_eq!(read(r#"{"rating": null}"#), Ok(None));
        assert_eq!(read("{}"), Ok(None));
        assert!(read(r#"{"rating": 5.5}"#).is_err_and(|e| e.contains("expected an integer")));
        assert!(read(r#"{"rating": -1}"#).is_err_and(|e| e.contains("out of range")));
        assert!(read(r#"{"rating": 1e300}"#).is_err());
        assert!(read(r#"{"rating": "5"}"#).is_err());
    }

    #[test]
    fn limits_and_cursors_map_to_page_size_and_token() {
        let mut checks = Checks::new();
        assert_eq!(checks.page(None, None), (0, String::new()));
        assert_eq!(checks.page(Some("1"), Some("abc".into())), (1, "abc".into()));
        assert_eq!(checks.page(Some("100"), None), (100, String::new()));
        assert!(checks.finish().is_ok());
        for bad in ["0", "101", "-1", "ten", "1.5"] {
            let mut checks = Checks::new();
            checks.page(Some(bad), None);
            let problem = checks.finish().err();
            assert_eq!(problem.map(|p| (p.status.as_u16(), p.errors[0].field.clone())), Some((400, "limit".into())));
        }
        let mut checks = Checks::new();
        checks.page(None, Some("a".repeat(MAX_CURSOR_CHARS + 1)));
        assert!(checks.finish().is_err());
    }

    #[test]
    fn all_field_errors_are_reported_together() {
        let mut checks = Checks::new();
        checks.required("offer_id", None, 10);
        checks.required("subject", Some("x".repeat(11)), 10);
        assert_eq!(checks.required("description", Some("é".repeat(10)), 10), "é".repeat(10));
        let problem = checks.finish().err();
        let fields: Vec<_> = problem.map(|p| p.errors.into_iter().map(|e| e.field).collect()).unwrap_or_default();
        assert_eq!(fields, ["offer_id", "subject"]);
    }

    #[test]
    fn vocabularies_are_spelled_in_their_order() {
        use id77_proto::vocabulary::{Category, MemberKind, PriceKind};
        assert_eq!(
            spelled(Category::ALL, Category::as_str, ", "),
            "integrated_engineering, awareness_training, exhibition_loan"
        );
        assert_eq!(
            spelled(PriceKind::ALL, PriceKind::as_str, ", "),
            "free, flat, daily_rate, per_inhabitant, on_quote"
        );
        assert_eq!(spelled(MemberKind::ALL, MemberKind::as_str, " or "), "commune, epci or syndicat");
        assert_eq!(spelled(&MemberKind::ALL[..1], MemberKind::as_str, " or "), "commune");
    }

    #[test]
    fn path_ids_are_bounded() {
        assert!(path_id("id", "abc").is_ok());
        assert!(path_id("id", " ").is_err());
        assert!(path_id("id", &"a".repeat(MAX_ID_CHARS + 1)).is_err());
    }
}
