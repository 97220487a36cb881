//! Response hardening as middleware: security headers on every response, CORS for the configured web origins,
//! and the per-client rate limits of [`crate::ratelimit`]; and the problem+json answers, with the same headers,
//! of the requests refused below the router ([`connection_refusal`]).

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use id77_platform::http_server::{HttpLimits, Refusal, RefusalBody};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::problem::{PROBLEM_JSON, Problem};
use crate::ratelimit::{ForwardedFor, client_ip};

/// `Content-Security-Policy` of every response but `/docs`: JSON needs nothing.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// `Strict-Transport-Security` when `ID77_HSTS=1` or the request came over HTTPS (see [`over_https`]).
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// `Permissions-Policy` of every response: the API and its docs page use no browser feature.
pub const PERMISSIONS_POLICY: &str =
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()";

/// Whether the request reached the gateway over HTTPS: `X-Forwarded-Proto: https` (its last value, the one the
/// nearest proxy wrote) from a proxy whose `X-Forwarded-For` is believed (`ID77_TRUSTED_PROXIES`, or any peer
/// under the former `ID77_TRUST_FORWARDED_FOR=1`). The gateway itself serves plain HTTP behind TLS termination.
pub fn over_https(
    headers: &HeaderMap,
    peer: Option<&ConnectInfo<std::net::SocketAddr>>,
    policy: &ForwardedFor,
) -> bool {
    let trusted = match policy {
        ForwardedFor::Ignored => false,
        ForwardedFor::LastEntryFromAnyPeer => true,
        ForwardedFor::FromProxies(proxies) => {
            peer.is_some_and(|ConnectInfo(addr)| proxies.contains(addr.ip().to_canonical()))
        }
    };
    let proto = headers
        .get_all("x-forwarded-proto")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .next_back();
    trusted && proto.is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// The headers of every response that do not depend on the request (also on the refusals answered below the
/// router, see [`connection_refusal`]).
pub fn fixed_headers(hsts: bool) -> Vec<(HeaderName, HeaderValue)> {
    let mut headers = vec![
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (HeaderName::from_static("permissions-policy"), HeaderValue::from_static(PERMISSIONS_POLICY)),
    ];
    if hsts {
        headers.push((header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS)));
    }
    headers
}

/// The refusals answered below the router (`id77_platform::http_server`), as problems with the security
/// headers of every response: 400 for a request hyper cannot parse, 408 for a request body that stopped
/// arriving, 414 for a long target, 431 for large headers.
pub fn connection_refusal(hsts: bool, limits: HttpLimits) -> Refusal {
    std::sync::Arc::new(move |status: StatusCode| {
        let problem = match status {
            StatusCode::BAD_REQUEST => {
                Problem::new(status, "MALFORMED_REQUEST", "Bad request", "the request is not well-formed HTTP/1.1")
            }
            StatusCode::REQUEST_TIMEOUT => Problem::new(
                status,
                "REQUEST_TIMEOUT",
                "Request timeout",
                format!(
                    "the request body stopped arriving for {} s, or arrived slower than {} bytes/s; the connection \
                     is closed",
                    limits.body_idle_timeout.as_secs_f64(),
                    limits.body_min_rate
                ),
            ),
            StatusCode::URI_TOO_LONG => Problem::new(
                status,
                "URI_TOO_LONG",
                "URI too long",
                format!("the request target must be at most {} bytes", limits.max_uri_bytes),
            ),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Problem::new(
                status,
                "HEADERS_TOO_LARGE",
                "Request header fields too large",
                format!(
                    "the request line and headers must be at most {} bytes and 100 headers",
                    limits.max_header_bytes
                ),
            ),
            other => Problem::new(other, "REFUSED", "Refused", "the request was refused"),
        };
        let mut headers = fixed_headers(hsts);
        headers.push((header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(API_CSP)));
        headers.push((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        RefusalBody {
            content_type: PROBLEM_JSON,
            body: serde_json::to_vec(&problem.body()).unwrap_or_default(),
            headers,
        }
    })
}

/// The text between the first `<{tag}>` and `</{tag}>` of a page.
fn inline_block<'a>(page: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = page.find(&open)? + open.len();
    let end = start + page.get(start..)?.find(&format!("</{tag}>"))?;
    page.get(start..end)
}

/// `'sha256-…'` of an inline block, as CSP wants it.
fn csp_hash(block: &str) -> String {
    format!("'sha256-{}'", B64.encode(Sha256::digest(block.as_bytes())))
}

/// `Content-Security-Policy` of `/docs`: its own inline script and style (by hash), calls to this origin only.
pub fn docs_csp(page: &str) -> String {
    let script = inline_block(page, "script").map(csp_hash).unwrap_or_else(|| "'none'".to_owned());
    let style = inline_block(page, "style").map(csp_hash).unwrap_or_else(|| "'none'".to_owned());
    format!(
        "default-src 'none'; script-src {script}; style-src {style}; connect-src 'self'; img-src 'self'; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

static DOCS_CSP: LazyLock<HeaderValue> = LazyLock::new(|| {
    HeaderValue::from_str(&docs_csp(crate::api_docs::DOCS_HTML)).unwrap_or(HeaderValue::from_static(API_CSP))
});

/// Paths whose answers carry credentials or personal data and must never be stored.
fn never_store(path: &str) -> bool {
    path.starts_with("/v1/auth/") || path == "/v1/me"
}

/// Security headers on every response (also errors, preflights and 429s).
pub async fn headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>();
    let hsts = state.hsts() || over_https(request.headers(), peer, state.trust_forwarded_for());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in fixed_headers(hsts) {
        headers.insert(name, value);
    }
    let csp = if path == "/docs" { DOCS_CSP.clone() } else { HeaderValue::from_static(API_CSP) };
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    if never_store(&path) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Methods the API uses, announced to CORS preflights.
pub const CORS_METHODS: &str = "GET, POST, PUT, DELETE";
/// Request headers clients may send cross-origin.
pub const CORS_HEADERS: &str = "Authorization, Content-Type, Idempotency-Key";
/// Response headers cross-origin scripts may read beyond the safelisted ones.
pub const CORS_EXPOSE: &str = "Location, Retry-After, WWW-Authenticate";
/// How long browsers may cache a preflight answer (seconds).
pub const CORS_MAX_AGE: &str = "600";

/// CORS for the configured origins only (none by default). Bearer tokens, no cookies: no credentials mode.
/// A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered here with 204; only
/// an allowed origin gets `Access-Control-*` headers, on the preflight and on the actual call, so the browser
/// refuses every other origin.
pub async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let origins = state.web_origins();
    let origin = request.headers().get(header::ORIGIN).cloned();
    let allowed = origin
        .as_ref()
        .and_then(|o| o.to_str().ok())
        .is_some_and(|o| origins.iter().any(|allowed| allowed.eq_ignore_ascii_case(o)));
    let preflight = request.method() == Method::OPTIONS
        && origin.is_some()
        && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight { StatusCode::NO_CONTENT.into_response() } else { next.run(request).await };
    let headers = response.headers_mut();
    if !origins.is_empty() {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
    }
    if let (true, Some(origin)) = (allowed, origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        if preflight {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(CORS_METHODS));
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(CORS_HEADERS));
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(CORS_MAX_AGE));
        } else {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(CORS_EXPOSE));
        }
    }
    response
}

/// The calls limited by the stricter (login) limiter.
pub fn is_auth_call(path: &str) -> bool {
    matches!(
        path,
        "/v1/auth/token"
            | "/v1/auth/refresh"
            | "/v1/auth/invitations/accept"
            | "/v1/auth/password-reset"
            | "/v1/auth/password-reset/confirm"
            | "/v1/me/password"
    )
}

/// Probes are never limited.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// 429 with `Retry-After` once the client's bucket for this class of call is empty.
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if is_probe(path) {
        return next.run(request).await;
    }
    let peer = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>();
    let client = client_ip(request.headers(), peer, state.trust_forwarded_for());
    let (limiter, what) = if is_auth_call(path) {
        (state.auth_limiter(), "login, refresh and invitation calls")
    } else {
        (state.limiter(), "calls")
    };
    match limiter.check(client, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let secs = wait.as_secs_f64().ceil() as u64;
            tracing::info!(%client, path, retry_after = secs, "rate limited");
            Problem::too_many_requests(secs, format!("too many {what} from this client; retry in {secs} s"))
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_docs_policy_allows_exactly_the_page_s_own_inline_blocks() {
        let page = "<style>a{}</style><script>go()</script>";
        let csp = docs_csp(page);
        assert!(csp.contains(&csp_hash("go()")), "{csp}");
        assert!(csp.contains(&csp_hash("a{}")), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(inline_block("<p>", "script"), None);
        assert!(docs_csp("<p>").contains("script-src 'none'"));
        // The hash of "go()" as any CSP implementation computes it.
        assert_eq!(csp_hash("go()"), format!("'sha256-{}'", B64.encode(Sha256::digest(b"go()"))));
    }

    #[test]
    fn https_is_believed_from_trusted_proxies_only() {
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let proxy = ConnectInfo(std::net::SocketAddr::from(([10, 0, 0, 7], 4000)));
        let stranger = ConnectInfo(std::net::SocketAddr::from(([192, 0, 2, 1], 4000)));
        let proxies = crate::ratelimit::TrustedProxies::parse("10.0.0.0/8").unwrap_or_default();
        let policy = ForwardedFor::new(false, &proxies);
        assert!(over_https(&headers, Some(&proxy), &policy));
        assert!(!over_https(&headers, Some(&stranger), &policy), "a forged header from an untrusted peer");
        assert!(!over_https(&headers, Some(&proxy), &ForwardedFor::Ignored));
        assert!(!over_https(&headers, None, &policy));
        // The nearest proxy's word (the last value) counts.
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https, http"));
        assert!(!over_https(&headers, Some(&proxy), &policy));
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        assert!(!over_https(&headers, Some(&proxy), &policy));
    }

    #[test]
    fn credentials_are_never_stored() {
        assert!(never_store("/v1/auth/token") && never_store("/v1/auth/keys/rotate") && never_store("/v1/me"));
        assert!(!never_store("/v1/offers") && !never_store("/v1/mean"));
    }

    #[test]
    fn password_calls_are_limited_like_logins() {
        for path in ["/v1/auth/token", "/v1/auth/password-reset", "/v1/auth/password-reset/confirm", "/v1/me/password"]
        {
            assert!(is_auth_call(path), "{path}");
        }
        assert!(!is_auth_call("/v1/me") && !is_auth_call("/v1/auth/keys/rotate"));
    }
}
