//! The OpenAPI document as served: the frame of `crate::api_docs` around the operations and views of every route
//! module (each declares its own `Api`), built and serialised once.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

use super::{
    billing, catalogue, conversation, identity, membership, meta, notifications, password, requests, routing, sessions,
};

/// This module's operation.
#[derive(OpenApi)]
#[openapi(paths(serve))]
struct Api;

/// The whole document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut operations = Api::openapi();
    operations.merge(meta::Api::openapi());
    for part in [
        identity::Api::openapi(),
        password::Api::openapi(),
        membership::Api::openapi(),
        catalogue::Api::openapi(),
        sessions::Api::openapi(),
        requests::Api::openapi(),
        notifications::Api::openapi(),
        conversation::Api::openapi(),
        routing::Api::openapi(),
        billing::Api::openapi(),
        crate::live::Api::openapi(),
        super::operations::Api::openapi(),
    ] {
        operations.merge(part);
    }
    crate::api_docs::document(operations)
}

/// The document as served, serialised once.
pub fn openapi_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| match openapi().to_pretty_json() {
        Ok(json) => json,
        // The document is built from static annotations: a failure is a bug the tests catch.
        Err(error) => format!("{{\"error\": \"the OpenAPI document could not be serialised: {error}\"}}"),
    })
}

/// The OpenAPI document, generated from the handlers (built once).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    operation_id = "openapi",
    summary = "This document",
    responses((status = 200, description = "OpenAPI 3.1", body = Object, content_type = "application/json")),
    security(())
)]
pub async fn serve() -> Response {
    let mut response = openapi_json().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
