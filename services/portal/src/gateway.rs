//! The portal's only upstream: the public REST API of the gateway, over HTTP. Answers are read as JSON values
//! (the portal shows what it needs and tolerates new fields); errors are RFC 9457 problems turned into
//! [`ApiError`], which [`crate::fr`] words in French.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// One invalid field of a problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub detail: String,
}

/// A failed gateway call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status; 502 when the gateway did not answer or answered something unreadable.
    pub status: u16,
    /// The problem type's slug (`member-not-active`), empty when unknown.
    pub kind: String,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl ApiError {
    fn unreachable(detail: String) -> Self {
        Self { status: 502, kind: "gateway-unreachable".into(), detail, errors: Vec::new() }
    }

    /// Reads a problem+json body (or anything else) answered with `status`.
    pub fn from_body(status: u16, body: &[u8]) -> Self {
        let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let kind = value["type"].as_str().and_then(|t| t.rsplit('/').next()).unwrap_or_default().to_owned();
        let detail = value["detail"].as_str().unwrap_or_default().to_owned();
        let errors = value["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| FieldError {
                        field: e["field"].as_str().unwrap_or_default().to_owned(),
                        detail: e["detail"].as_str().unwrap_or_default().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self { status, kind, detail, errors }
    }

    /// The field errors about `field` (or one of its sub-fields, e.g. `condition.theme`).
    pub fn field(&self, field: &str) -> Vec<&FieldError> {
        self.errors
            .iter()
            .filter(|e| {
                e.field == field || e.field.strip_prefix(field).is_some_and(|rest| rest.starts_with(['.', '[']))
            })
            .collect()
    }
}

tokio::task_local! {
    /// The `X-Forwarded-For` of the gateway calls made while serving one browser request.
    static FORWARDED_FOR: Option<String>;
}

/// Most `X-Forwarded-For` entries passed on (the gateway reads them from the right).
pub const MAX_FORWARDED_HOPS: usize = 8;

/// The `X-Forwarded-For` the portal sends on behalf of a request it received from `peer` with `headers`: the
/// entries it received (at most the last [`MAX_FORWARDED_HOPS`] - 1), then `peer`, as any proxy appends the
/// address it saw. The portal believes none of it: the gateway reads the chain from the right, only as far as
/// its trusted proxies (`ID77_TRUSTED_PROXIES`: the portal, the ingress) vouch, so whatever a browser puts in
/// the header changes nothing. A received header that is not plain text is dropped.
pub fn forwarded_for(headers: &axum::http::HeaderMap, peer: Option<std::net::IpAddr>) -> Option<String> {
    let mut entries: Vec<String> = Vec::new();
    let received: Vec<&str> = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    if received.len() == headers.get_all("x-forwarded-for").iter().count() {
        for value in received {
            entries.extend(value.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned));
        }
    }
    let keep = MAX_FORWARDED_HOPS - 1;
    if entries.len() > keep {
        entries.drain(..entries.len() - keep);
    }
    if let Some(peer) = peer {
        entries.push(peer.to_canonical().to_string());
    }
    (!entries.is_empty()).then(|| entries.join(", "))
}

/// Middleware: the gateway calls made while serving `request` carry its [`forwarded_for`] chain.
pub async fn forward_client(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let peer = request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let chain = forwarded_for(request.headers(), peer);
    FORWARDED_FOR.scope(chain, next.run(request)).await
}

/// A downloaded document.
#[derive(Debug)]
pub struct Download {
    pub content_type: String,
    pub disposition: Option<String>,
    pub body: Vec<u8>,
}

/// HTTP client of the gateway. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    client: reqwest::Client,
    base: String,
}

impl Gateway {
    pub fn new(base: &str, timeout: Duration) -> anyhow::Result<Self> {
        // Idle connections are dropped before the gateway's keep-alive timeout (75 s by default,
        // ID77_HTTP_KEEPALIVE_TIMEOUT_MS) closes them, so a request never lands on a connection being closed.
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(50))
            .build()?;
        Ok(Self { client, base: base.trim_end_matches('/').to_owned() })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        client_ip: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut builder = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            builder = builder.bearer_auth(token);
        }
        // The end user's address, for the gateway's per-client limits when it trusts this proxy
        // (ID77_TRUSTED_PROXIES); ignored otherwise. `client_ip` overrides the chain of the browser's request.
        let forwarded = client_ip.map(str::to_owned).or_else(|| FORWARDED_FOR.try_with(Clone::clone).ok().flatten());
        if let Some(chain) = forwarded {
            builder = builder.header("x-forwarded-for", chain);
        }
        builder
    }

    async fn send(
        builder: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Vec<u8>), ApiError> {
        let response = builder.send().await.map_err(|e| ApiError::unreachable(e.to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| ApiError::unreachable(e.to_string()))?;
        Ok((status, headers, body.to_vec()))
    }

    async fn json(builder: reqwest::RequestBuilder) -> Result<Value, ApiError> {
        let (status, _, body) = Self::send(builder).await?;
        if !status.is_success() {
            return Err(ApiError::from_body(status.as_u16(), &body));
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| ApiError::unreachable(format!("unreadable answer: {e}")))
    }

    /// GET a JSON resource.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Value, ApiError> {
        Self::json(self.request(Method::GET, path, token, None)).await
    }

    /// POST (or PUT) a JSON body; `idempotency_key` for creating calls.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
        idempotency_key: Option<&str>,
        client_ip: Option<&str>,
    ) -> Result<Value, ApiError> {
        let mut builder = self.request(method, path, token, client_ip).json(body);
        if let Some(key) = idempotency_key {
            builder = builder.header("idempotency-key", key);
        }
        Self::json(builder).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Result<Value, ApiError> {
        self.send_json(Method::POST, path, token, body, None, None).await
    }

    /// POST a file as the raw body of `path` (the gateway's attachment upload), streamed from `body` as it
    /// arrives: nothing is held beyond the chunk in flight. `filename` goes percent-encoded in `X-Filename`,
    /// `message` (when not empty) in `?message=`.
    pub async fn upload(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        filename: &str,
        message: &str,
        body: reqwest::Body,
    ) -> Result<Value, ApiError> {
        let path = if message.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?message={}", crate::html::url_component(message))
        };
        let builder = self
            .request(Method::POST, &path, Some(token), None)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header("x-filename", crate::html::url_component(filename))
            .body(body);
        Self::json(builder).await
    }

    /// GET a file to pass on as it arrives (an attachment): the answer with its headers, its body unread.
    pub async fn stream(&self, path: &str, token: &str) -> Result<reqwest::Response, ApiError> {
        let response = self
            .request(Method::GET, path, Some(token), None)
            .send()
            .await
            .map_err(|e| ApiError::unreachable(e.to_string()))?;
        if !response.status().is_success() {
            let status = response.status().as_u16();
            let body = response.bytes().await.map_err(|e| ApiError::unreachable(e.to_string()))?;
            return Err(ApiError::from_body(status, &body));
        }
        Ok(response)
    }

    /// DELETE a resource (`204` reads as `Value::Null`).
    pub async fn delete(&self, path: &str, token: &str) -> Result<Value, ApiError> {
        Self::json(self.request(Method::DELETE, path, Some(token), None)).await
    }

    /// GET a document (invoice XML, CSV...) as bytes with its content type and disposition.
    pub async fn download(&self, path: &str, token: &str) -> Result<Download, ApiError> {
        self.download_with(path, Some(token)).await
    }

    /// [`Gateway::download`] of a document anyone may read (a session's iCalendar file): the token when signed in.
    pub async fn download_with(&self, path: &str, token: Option<&str>) -> Result<Download, ApiError> {
        let (status, headers, body) = Self::send(self.request(Method::GET, path, token, None)).await?;
        if !status.is_success() {
            return Err(ApiError::from_body(status.as_u16(), &body));
        }
        let header =
            |name: reqwest::header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(Download {
            content_type: header(reqwest::header::CONTENT_TYPE).unwrap_or_else(|| "application/octet-stream".into()),
            disposition: header(reqwest::header::CONTENT_DISPOSITION),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_is_appended_to_the_chain_received() {
        use axum::http::{HeaderMap, HeaderValue};
        let peer: Option<std::net::IpAddr> = "198.51.100.7".parse().ok();
        assert_eq!(forwarded_for(&HeaderMap::new(), peer).as_deref(), Some("198.51.100.7"));
        assert_eq!(forwarded_for(&HeaderMap::new(), None), None);
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6 ,203.0.113.1"));
        headers.append("x-forwarded-for", HeaderValue::from_static("203.0.113.2"));
        assert_eq!(forwarded_for(&headers, peer).as_deref(), Some("6.6.6.6, 203.0.113.1, 203.0.113.2, 198.51.100.7"));
        let mapped: Option<std::net::IpAddr> = "::ffff:10.0.0.1".parse().ok();
        assert_eq!(forwarded_for(&HeaderMap::new(), mapped).as_deref(), Some("10.0.0.1"));
        let long = (0..40).map(|i| format!("192.0.2.{i}")).collect::<Vec<_>>().join(",");
        let mut many = HeaderMap::new();
        many.insert("x-forwarded-for", HeaderValue::from_str(&long).unwrap_or(HeaderValue::from_static("x")));
        let chain = forwarded_for(&many, peer).unwrap_or_default();
        assert_eq!(chain.split(", ").count(), MAX_FORWARDED_HOPS);
        assert!(chain.starts_with("192.0.2.33, ") && chain.ends_with("192.0.2.39, 198.51.100.7"), "{chain}");
        let mut binary = HeaderMap::new();
        binary.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"1.2.3.4\xff").unwrap_or(HeaderValue::from_static("x")),
        );
        assert_eq!(forwarded_for(&binary, peer).as_deref(), Some("198.51.100.7"));
    }

    #[test]
    fn problems_are_read_with_their_field_errors() {
        let body = br#"{"type":"https://id77.seine-et-marne.fr/problems/invalid-argument","title":"Invalid request",
            "status":400,"detail":"2 invalid fields","errors":[{"field":"contact_email","detail":"not an email"},
            {"field":"condition.theme","detail":"empty list"}]}"#;
        let error = ApiError::from_body(400, body);
        assert_eq!(error.kind, "invalid-argument");
        assert_eq!(error.detail, "2 invalid fields");
        assert_eq!(error.field("contact_email").len(), 1);
        assert_eq!(error.field("condition").len(), 1, "sub-fields belong to their field");
        assert!(error.field("contact").is_empty(), "a prefix of a name is not the field");
        let garbage = ApiError::from_body(502, b"<html>bad gateway</html>");
        assert_eq!((garbage.status, garbage.kind.as_str(), garbage.errors.len()), (502, "", 0));
    }
}
