//! The API's description, embedded in the binary: the OpenAPI 3.1 document (`GET /openapi.json`) and the
//! interactive page that reads it (`GET /docs`, whose inline script and style the CSP allows by hash).

/// The OpenAPI 3.1 document, hand-written beside `Cargo.toml`.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");
/// The interactive page, self-contained (no CDN).
pub const DOCS_HTML: &str = include_str!("docs.html");
