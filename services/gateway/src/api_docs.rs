//! The API's description, generated from the gateway's own handlers and views: the OpenAPI 3.1 document
//! (`GET /openapi.json`, built once by `crate::routes::document` from each route module's `#[utoipa::path]`
//! operations and `ToSchema` views, framed here),
//! and the interactive page that reads it (`GET /docs`, whose inline script and style the CSP allows by hash).
//!
//! What every operation shares is added here rather than repeated on each handler ([`ErrorResponses`]): the
//! problem+json answers a route can give by its shape (400 when it reads input, 401/403 when it needs a token,
//! 404 when its path names a resource, 413/415 when it takes a body, 414/431/429/500/503 always).

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder, ResponsesBuilder,
};
use utoipa::{Modify, OpenApi, ToSchema};

/// The interactive page, self-contained (no CDN).
pub const DOCS_HTML: &str = include_str!("docs.html");

/// The media type of every error.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem, as the gateway answers every error (see `crate::problem`).
#[derive(ToSchema)]
#[schema(as = Problem, description = "RFC 9457 problem details.")]
#[allow(dead_code)]
pub struct ProblemDoc {
    /// `https://id77.seine-et-marne.fr/problems/<reason>`, e.g. `invalid-argument`, `member-not-active`.
    #[schema(rename = "type", format = "uri", example = "https://id77.seine-et-marne.fr/problems/invalid-argument")]
    kind: String,
    #[schema(example = "Invalid request")]
    title: String,
    #[schema(example = 400)]
    status: u16,
    detail: String,
    /// Invalid fields, if any.
    errors: Vec<FieldErrorDoc>,
}

/// One invalid field of a request.
#[derive(ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)]
pub struct FieldErrorDoc {
    /// The field, as named in the request (`offer_id`, `site.insee_code`, a query or path parameter).
    field: String,
    detail: String,
}

/// A shared error answer: its name, description and extra header (name, description).
type SharedError = (&'static str, &'static str, Option<(&'static str, &'static str)>);

/// The shared error answers.
const ERRORS: &[SharedError] = &[
    ("BadRequest", "Invalid input: see `errors` for the fields, or an unreadable JSON body.", None),
    (
        "Unauthorized",
        "No access token, or one that failed verification. `WWW-Authenticate: Bearer` (with \
         `error=\"invalid_token\"` for a bad token).",
        Some(("WWW-Authenticate", "`Bearer` or `Bearer error=\"invalid_token\"`")),
    ),
    ("Forbidden", "The caller's role may never do this.", None),
    ("NotFound", "No such resource, or one of another member or provider (ids cannot be probed).", None),
    (
        "Conflict",
        "Already exists, or not possible in the current state (e.g. `member-not-active`, `invalid-transition`, \
         `quote-not-accepted`).",
        None,
    ),
    ("PayloadTooLarge", "The body is over 64 KiB.", None),
    ("UriTooLong", "The request target (path and query) is over 8 KiB.", None),
    ("HeadersTooLarge", "The request line and headers are over 32 KiB.", None),
    ("UnsupportedMediaType", "The body is not `application/json`.", None),
    ("Unavailable", "A service behind the gateway is unavailable; retry later.", None),
    ("Internal", "Unexpected error.", None),
    (
        "TooManyRequests",
        "Rate limit reached for this client; retry after `Retry-After` seconds.",
        Some(("Retry-After", "Seconds to wait.")),
    ),
    (
        "LoginFailed",
        "Wrong email or password (or a locked account, answered the same way), or a used, revoked or expired token.",
        None,
    ),
];

/// The document's frame: its description, tags, the bearer scheme and the shared error answers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ID 77 API",
        version = "1.0.0",
        description = include_str!("api_intro.md"),
        license(name = "EUPL-1.2", identifier = "EUPL-1.2"),
    ),
    servers((url = "/")),
    tags(
        (name = "auth", description = "Sessions: login, refresh, logout, invitations, the caller, signing keys"),
        (name = "users", description = "Accounts and the audit log"),
        (name = "directory", description = "The collectivités of the département"),
        (name = "memberships", description = "Who joined ID 77"),
        (name = "catalogue", description = "Offers and providers"),
        (name = "sessions", description = "Training and awareness sessions: seats, registrations with a waiting list, attendance, attestations, calendars"),
        (name = "requests", description = "What members ask for"),
        (name = "conversation", description = "The message thread of a request, with attachments and read markers."),
        (name = "referrals", description = "Requests handed to providers"),
        (name = "billing", description = "Quotes, invoices and credit notes"),
        (name = "operations", description = "Health, readiness, this document"),
    ),
    components(schemas(ProblemDoc, FieldErrorDoc)),
    modifiers(&Frame),
)]
struct Base;

/// The bearer scheme and the shared error responses.
struct Frame;

impl Modify for Frame {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /v1/auth/token` (EdDSA JWT, `typ: at+jwt`, 10 minutes).",
                    ))
                    .build(),
            ),
        );
        for (name, description, header) in ERRORS {
            let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
            let mut response = ResponseBuilder::new().description(*description).content(PROBLEM_JSON, content);
            if let Some((header, text)) = header {
                response = response.header(*header, HeaderBuilder::new().description(Some(*text)).build());
            }
            components.responses.insert((*name).to_owned(), RefOr::T(response.build()));
        }
    }
}

/// Adds to every operation the error answers its shape allows (see the module documentation), unless the
/// operation states its own for that status.
struct ErrorResponses;

fn response_ref(name: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
}

fn add_errors(path: &str, operation: &mut Operation) {
    let reads_input = operation.parameters.as_ref().is_some_and(|p| !p.is_empty()) || operation.request_body.is_some();
    // `security: [{}]` is "no token needed" (an anonymous alternative): only a named scheme protects.
    let protected = operation.security.as_ref().is_some_and(|requirements| {
        requirements.iter().any(|r| serde_json::to_value(r).is_ok_and(|v| v.as_object().is_some_and(|o| !o.is_empty())))
    });
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    if reads_input {
        wanted.push(("400", "BadRequest"));
    }
    if protected {
        wanted.extend([("401", "Unauthorized"), ("403", "Forbidden")]);
    }
    if path.contains('{') {
        wanted.push(("404", "NotFound"));
    }
    if operation.request_body.is_some() {
        wanted.extend([("413", "PayloadTooLarge"), ("415", "UnsupportedMediaType")]);
    }
    // Any request may be too long before the gateway reads what it means.
    wanted.extend([("414", "UriTooLong"), ("431", "HeadersTooLarge")]);
    wanted.extend([("429", "TooManyRequests"), ("500", "Internal"), ("503", "Unavailable")]);
    let mut responses = std::mem::replace(&mut operation.responses, ResponsesBuilder::new().build());
    for (status, name) in wanted {
        responses.responses.entry(status.to_owned()).or_insert_with(|| response_ref(name));
    }
    operation.responses = responses;
}

fn each_operation(path: &str, item: &mut PathItem) {
    for operation in [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
        item.head.as_mut(),
        item.options.as_mut(),
    ]
    .into_iter()
    .flatten()
    {
        add_errors(path, operation);
    }
}

impl Modify for ErrorResponses {
    fn modify(&self, doc: &mut Document) {
        for (path, item) in doc.paths.paths.iter_mut() {
            each_operation(path, item);
        }
    }
}

/// The whole document: the frame, the operations and views of the route modules (`crate::routes::document`
/// gathers them), and the shared errors.
pub fn document(operations: Document) -> Document {
    let mut doc = Base::openapi();
    doc.merge(operations);
    ErrorResponses.modify(&mut doc);
    doc
}
