//! Strong ETags and conditional GET (issue 20, item 4: "cheap on a phone"): a client that already holds an
//! answer revalidates it with `If-None-Match` and gets a bodiless `304 Not Modified` when nothing changed.
//!
//! One middleware, [`conditional`], the innermost layer of the router (inside the security headers, logging,
//! CORS and rate limits, so a 304 is logged as such and still gets their headers), around every route and the
//! fallbacks. What it does, and only for a `GET` or `HEAD` answered `200 OK`:
//!
//! - **ETag.** When the answer's body is in memory (an exact length of at most [`MAX_TAGGED_BYTES`], 8 MiB)
//!   and its media type is JSON (`application/json`, `application/*+json`) or a document served as a file
//!   (`application/pdf`, `application/xml`, `text/xml`, `application/*+xml`, `text/csv`), the answer gets a
//!   strong `ETag`: `"` + URL-safe base64 (no padding) of the first 16 bytes of the body's SHA-256 + `"`
//!   (24 characters inside the quotes). Same body, same tag: it depends on the bytes only, not on the caller
//!   or the time. `HEAD` gets the tag of the body `GET` would send. An `ETag` the handler set itself (the
//!   attachment download: the file's SHA-256) is kept as it is, and the body is then neither read nor hashed.
//!   Streamed bodies (no exact length), bigger ones and other media types get no tag.
//! - **304.** When the answer has an `ETag` (computed here or the handler's) and the request's
//!   `If-None-Match` (one or more header lines, each a comma-separated list of entity tags, or `*`) is `*` or
//!   lists a tag equal to it by the weak comparison of RFC 9110 §13.1.2 (`W/"x"` matches `"x"`), the handler's
//!   200 becomes `304 Not Modified` without a body and without `Content-Type`, `Content-Length`,
//!   `Content-Disposition`, `Transfer-Encoding`; every other header the 200 had is kept (`ETag`,
//!   `Cache-Control`, `Vary`), and the outer layers add theirs as on the 200 (CORS and its `Vary: Origin`,
//!   the security headers). A malformed
//!   `If-None-Match` matches nothing (the 200 is sent). `If-Modified-Since` is not evaluated (no
//!   `Last-Modified` is sent).
//! - **Privacy.** When the request carries `Authorization`, the answer is made private to its caller:
//!   `Cache-Control: private, no-cache` unless the handler already set a `Cache-Control` (kept as it is, e.g.
//!   the key set's `public, max-age=300`, an attachment's `private, no-store`; the security headers still
//!   force `no-store` on `/v1/auth/*` and `/v1/me`), and `Authorization` is added to `Vary` (appended to an
//!   existing `Vary` unless it already names it or is `*`). This applies to every 200 answer to a `GET` or
//!   `HEAD` with `Authorization`, tagged or not. Anonymous answers get no `Cache-Control` from here (the public
//!   catalogue search sets none and still sends none; clients revalidate with the tag).
//!
//! The handler still runs (and the upstream call is still made): a 304 saves the bytes on the wire, not the
//! work; a conditional request counts against the rate limits like any other.
//!
//! Untouched: every other method, every status other than 200 (errors, problem+json, 201, 204…), and the
//! server-sent events stream (`text/event-stream`, `GET /v1/events`), which gets neither a tag, nor a 304,
//! nor the privacy headers.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};

use crate::problem::Problem;

/// Bodies larger than this are not read into memory to be hashed (no `ETag`).
pub const MAX_TAGGED_BYTES: u64 = 8 * 1024 * 1024;

/// `Cache-Control` of an answer to a request with `Authorization` whose handler set none.
pub const PRIVATE: &str = "private, no-cache";

/// ETags, conditional GET and private caching of authenticated answers (see the module's documentation).
pub async fn conditional(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return next.run(request).await;
    }
    let if_none_match: Vec<HeaderValue> = request.headers().get_all(header::IF_NONE_MATCH).iter().cloned().collect();
    let authorized = request.headers().contains_key(header::AUTHORIZATION);
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let media = media_type(response.headers());
    if media == "text/event-stream" {
        return response;
    }
    let mut response = if response.headers().contains_key(header::ETAG) || !taggable(&media) {
        response
    } else {
        match tag(response).await {
            Ok(response) => response,
            Err(problem) => return problem.into_response(),
        }
    };
    if authorized {
        make_private(response.headers_mut());
    }
    let matched = response.headers().get(header::ETAG).is_some_and(|etag| none_match_fails(&if_none_match, etag));
    if matched {
        not_modified(&mut response);
    }
    response
}

/// The media type of an answer, lowercase, without parameters (`application/json; charset=utf-8` →
/// `application/json`).
fn media_type(headers: &HeaderMap) -> String {
    let raw = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    raw.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// Whether answers of this media type get an `ETag`: JSON and the documents served as files.
fn taggable(media: &str) -> bool {
    matches!(media, "application/json" | "application/pdf" | "application/xml" | "text/xml" | "text/csv")
        || (media.starts_with("application/") && (media.ends_with("+json") || media.ends_with("+xml")))
}

/// The strong entity tag of a body.
pub fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", B64.encode(&digest[..16]))
}

/// Reads a bounded in-memory body, sets the `ETag` of its bytes and puts it back. Bodies without an exact
/// length or over [`MAX_TAGGED_BYTES`] are left as they are.
async fn tag(response: Response) -> Result<Response, Problem> {
    use axum::body::HttpBody;
    let Some(length) = response.body().size_hint().exact().filter(|n| *n <= MAX_TAGGED_BYTES) else {
        return Ok(response);
    };
    let (mut parts, body) = response.into_parts();
    let limit = usize::try_from(length).unwrap_or(usize::MAX);
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|error| {
        tracing::error!(%error, "reading an answer's body to tag it");
        Problem::of(id77_platform::ErrorCode::Internal, "INTERNAL", "the answer could not be read")
    })?;
    if let Ok(etag) = HeaderValue::from_str(&etag_of(&bytes)) {
        parts.headers.insert(header::ETAG, etag);
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// `Cache-Control: private, no-cache` unless one is set, and `Vary: Authorization`.
fn make_private(headers: &mut HeaderMap) {
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(PRIVATE));
    }
    let varies =
        headers.get_all(header::VARY).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(|name| {
            let name = name.trim();
            name == "*" || name.eq_ignore_ascii_case("authorization")
        });
    if !varies {
        headers.append(header::VARY, HeaderValue::from_static("Authorization"));
    }
}

/// Turns a 200 into a bodiless 304 that keeps the caching headers.
fn not_modified(response: &mut Response) {
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    let headers = response.headers_mut();
    for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::CONTENT_DISPOSITION, header::TRANSFER_ENCODING] {
        headers.remove(name);
    }
    // A body without a known length: axum then adds no `Content-Length: 0`, which a 304 must not carry
    // (RFC 9110 §8.6: only the length the 200 would have had), and hyper sends no body on a 304.
    *response.body_mut() = Body::from_stream(futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>());
}

/// Whether `If-None-Match` "fails" (RFC 9110 §13.1.2): `*`, or one of its entity tags weakly matches `etag`.
/// No header, or a malformed one, never fails.
fn none_match_fails(if_none_match: &[HeaderValue], etag: &HeaderValue) -> bool {
    let Some(current) = etag.to_str().ok().and_then(opaque_tags).and_then(|tags| tags.into_iter().next()) else {
        return false;
    };
    if_none_match.iter().filter_map(|v| v.to_str().ok()).any(|value| {
        if value.trim() == "*" {
            return true;
        }
        opaque_tags(value).is_some_and(|tags| tags.contains(&current))
    })
}

/// The opaque tags (quotes included, `W/` dropped) of a comma-separated list of entity tags; `None` when the
/// list is malformed.
fn opaque_tags(list: &str) -> Option<Vec<&str>> {
    let mut tags = Vec::new();
    let mut rest = list.trim_start_matches([' ', '\t', ',']);
    while !rest.is_empty() {
        let unprefixed = rest.strip_prefix("W/").unwrap_or(rest);
        let inner = unprefixed.strip_prefix('"')?;
        let end = inner.find('"')?;
        let tag = unprefixed.get(..end + 2)?;
        // etagc: %x21 / %x23-7E / obs-text (no space, no control character, no quote).
        if !inner.get(..end)?.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80) {
            return None;
        }
        tags.push(tag);
        let after = unprefixed.get(end + 2..)?.trim_start_matches([' ', '\t']);
        if !(after.is_empty() || after.starts_with(',')) {
            return None;
        }
        rest = after.trim_start_matches([' ', '\t', ',']);
    }
    Some(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(raw: &[&str]) -> Vec<HeaderValue> {
        raw.iter().map(|v| HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}"))).collect()
    }

    #[test]
    fn tags_are_strong_short_and_depend_on_the_bytes_only() {
        let tag = etag_of(b"{\"a\":1}");
        assert_eq!(tag, etag_of(b"{\"a\":1}"));
        assert_ne!(tag, etag_of(b"{\"a\":2}"));
        assert_eq!(tag.len(), 24);
        assert!(tag.starts_with('"') && tag.ends_with('"') && !tag.starts_with("W/"));
        assert!(tag.trim_matches('"').bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }

    #[test]
    fn if_none_match_is_compared_weakly() {
        let etag = HeaderValue::from_static("\"abc\"");
        for (raw, fails) in [
            (&["\"abc\""][..], true),
            (&["W/\"abc\""], true),
            (&["*"], true),
            (&["\"x\", \"abc\""], true),
            (&["\"x\",W/\"abc\" "], true),
            (&["\"x\"", "\"abc\""], true),
            (&["\"a,b\", \"abc\""], true),
            (&["\"abd\""], false),
            (&["abc"], false),
            (&["\"abc"], false),
            (&["\"x\" \"abc\""], false),
            (&[""], false),
            (&[], false),
        ] {
            assert_eq!(none_match_fails(&values(raw), &etag), fails, "{raw:?}");
        }
        assert!(none_match_fails(&values(&["\"abc\""]), &HeaderValue::from_static("W/\"abc\"")));
    }

    #[test]
    fn json_and_documents_are_tagged_not_streams_or_pages() {
        for media in ["application/json", "application/pdf", "application/xml", "text/xml", "text/csv"] {
            assert!(taggable(media), "{media}");
        }
        assert!(taggable("application/merge-patch+json") && taggable("application/ubl+xml"));
        for media in ["text/event-stream", "text/html", "text/plain", "application/octet-stream", "image/png", ""] {
            assert!(!taggable(media), "{media}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("Application/JSON; charset=utf-8"));
        assert_eq!(media_type(&headers), "application/json");
    }

    #[test]
    fn vary_is_appended_once() {
        let mut headers = HeaderMap::new();
        headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        make_private(&mut headers);
        make_private(&mut headers);
        let vary: Vec<_> = headers.get_all(header::VARY).iter().filter_map(|v| v.to_str().ok()).collect();
        assert_eq!(vary, ["Origin", "Authorization"]);
        assert_eq!(headers.get(header::CACHE_CONTROL), Some(&HeaderValue::from_static(PRIVATE)));
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
        headers.insert(header::VARY, HeaderValue::from_static("*"));
        make_private(&mut headers);
        assert_eq!(headers.get(header::CACHE_CONTROL), Some(&HeaderValue::from_static("public, max-age=300")));
        assert_eq!(headers.get_all(header::VARY).iter().count(), 1);
    }
}
