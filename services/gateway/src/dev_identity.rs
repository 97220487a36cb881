//! TEMPORARY, DEVELOPMENT ONLY: who the caller is, taken on trust from a request header.
//!
//! Until the identity issue lands (JWT access tokens from `auth/token`, verified here and forwarded to the
//! services), the gateway has no real authentication. To let the web client, the demo and the end-to-end tests
//! exercise the role checks, a caller may *declare* its identity in `X-Id77-Dev-Identity`:
//!
//! | value | identity |
//! |---|---|
//! | `coordinator` | the coordinator (guichet unique) |
//! | `operator` | a platform operator |
//! | `member:<member_uuid>` | a user of that member |
//! | `provider:<provider_code>` | an agent of that provider |
//!
//! The header is honoured only when the gateway runs with `ID77_DEV_IDENTITY=1` (it logs a loud warning at
//! start-up then). Otherwise it is ignored and every caller is anonymous. Anyone who can reach a gateway with
//! the flag on can be anyone: never enable it outside a developer machine or a test. Delete this module when
//! the identity issue lands.

use axum::http::HeaderMap;
use uuid::Uuid;

use crate::auth::Identity;
use crate::problem::Problem;

/// The development-only identity header.
pub const HEADER: &str = "x-id77-dev-identity";

/// Longest header value accepted.
const MAX_LEN: usize = 128;

/// Parses one header value.
pub fn parse(value: &str) -> Result<Identity, String> {
    let value = value.trim();
    if value.len() > MAX_LEN {
        return Err(format!("must be at most {MAX_LEN} characters"));
    }
    match value.split_once(':') {
        None if value == "coordinator" => Ok(Identity::Coordinator),
        None if value == "operator" => Ok(Identity::Operator),
        Some(("member", id)) => {
            Uuid::parse_str(id).map(Identity::Member).map_err(|_| "member:<id> needs the member's UUID".to_owned())
        }
        Some(("provider", code)) if id77_platform::streams::is_valid_subject_token(code) => {
            Ok(Identity::Provider(code.to_owned()))
        }
        Some(("provider", _)) => {
            Err("provider:<code> needs a provider code (lowercase letters, digits and dashes)".to_owned())
        }
        _ => Err("must be coordinator, operator, member:<member_uuid> or provider:<provider_code>".to_owned()),
    }
}

/// The caller's identity from the request headers: anonymous when the feature is off or the header absent.
/// A malformed header, when honoured, is a 401 rather than a silent downgrade to anonymous.
pub fn from_headers(headers: &HeaderMap, enabled: bool) -> Result<Identity, Problem> {
    if !enabled {
        return Ok(Identity::Anonymous);
    }
    let Some(value) = headers.get(HEADER) else {
        return Ok(Identity::Anonymous);
    };
    let invalid = |why: &str| Problem::unauthenticated(format!("invalid X-Id77-Dev-Identity header: {why}"));
    let value = value.to_str().map_err(|_| invalid("must be visible ASCII"))?;
    parse(value).map_err(|why| invalid(&why))
}

/// Logs, loudly, that the header is honoured.
pub fn warn_enabled() {
    tracing::warn!(
        "ID77_DEV_IDENTITY is ON: the gateway trusts the X-Id77-Dev-Identity header, so ANY caller can claim \
         ANY identity (coordinator, operator, any member or provider). DEVELOPMENT ONLY — never in production."
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const MEMBER: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(HEADER, value);
        }
        headers
    }

    #[test]
    fn parses_every_kind_of_identity() {
        assert_eq!(parse("coordinator"), Ok(Identity::Coordinator));
        assert_eq!(parse(" operator "), Ok(Identity::Operator));
        assert_eq!(parse(&format!("member:{MEMBER}")), Ok(Identity::Member(Uuid::parse_str(MEMBER).unwrap())));
        assert_eq!(parse("provider:caue77"), Ok(Identity::Provider("caue77".into())));
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "Coordinator",
            "admin",
            "member:",
            "member:42",
            "member:coordinator",
            "provider:",
            "provider:a.b",
            "provider:CAUE",
            "provider:>",
            "coordinator:x",
            &"x".repeat(200),
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn disabled_mode_ignores_the_header() {
        assert_eq!(from_headers(&headers("coordinator"), false), Ok(Identity::Anonymous));
        assert_eq!(from_headers(&headers("garbage"), false), Ok(Identity::Anonymous));
    }

    #[test]
    fn enabled_mode_reads_the_header_or_is_anonymous() {
        assert_eq!(from_headers(&headers("coordinator"), true), Ok(Identity::Coordinator));
        assert_eq!(from_headers(&HeaderMap::new(), true), Ok(Identity::Anonymous));
        let problem = from_headers(&headers("member:nope"), true).err();
        assert_eq!(problem.map(|p| p.status.as_u16()), Some(401));
    }
}
