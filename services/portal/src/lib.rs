//! Web portal of ID 77: server-rendered French pages for the collectivités, the providers' agents and the
//! coordinator, built only on the public gateway API (`ID77_GATEWAY_URL`). No JavaScript is needed: every
//! screen is HTML forms and links, styled by one hand-written CSS file (progressive enhancement).
//!
//! Sessions are server-side ([`session`]), in the portal's own PostgreSQL database (`ID77_DATABASE_URL`) so that
//! they survive a restart and any replica serves any browser: the browser keeps a random id in an HttpOnly,
//! SameSite=Strict cookie; every POST carries the session's CSRF token. The gateway's access token is refreshed
//! when it is about to expire. See docs/adr/0009-portal-server-rendered.md.

// Handlers answer a whole page on every early exit: `Result<_, Response>` is the natural shape here.
#![allow(clippy::result_large_err)]

pub mod caller;
pub mod config;
pub mod forms;
pub mod fr;
pub mod gateway;
pub mod html;
pub mod layout;
pub mod pages;
pub mod redirect;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use id77_platform::http_server::{self, HttpLimits, Refusal, RefusalBody};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

use crate::gateway::Gateway;
use crate::session::{Sessions, User};

/// How long in-flight requests get to finish after shutdown is requested: within the platform's bound on a
/// stop ([`id77_platform::shutdown::HARD_DEADLINE`], under 10 s).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);
/// Largest form body accepted.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// How often each replica deletes the expired sessions.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// The gateway client and the sessions. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub gateway: Gateway,
    pub sessions: Arc<Sessions>,
    pub secure_cookie: bool,
}

impl AppState {
    /// The state of a portal keeping its sessions in `pool` (the portal's database, migrated).
    pub fn new(config: &Config, pool: sqlx::PgPool) -> anyhow::Result<Self> {
        Ok(Self {
            gateway: Gateway::new(&config.gateway_url, config.request_timeout)?,
            sessions: Arc::new(Sessions::new(pool, config.session_idle)),
            secure_cookie: config.secure_cookie,
        })
    }
}

/// Connects to the portal's database, creating and migrating it first (under sqlx's advisory lock: replicas
/// may start together).
pub async fn connect_database(config: &Config) -> anyhow::Result<sqlx::PgPool> {
    id77_platform::db::connect(&config.database_url, &session::MIGRATOR, config.db_max_connections)
        .await
        .context("the portal's session database (ID77_DATABASE_URL)")
}

/// What every handler knows about the caller: its session, CSRF token, user and one-time message.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub sid: String,
    pub csrf: String,
    pub user: Option<User>,
    pub flash: Option<String>,
    /// The path asked for (to mark the current navigation entry and come back after login).
    pub path: String,
    pub client_ip: Option<String>,
}

impl Ctx {
    /// Whether the caller has `role`.
    pub fn is(&self, role: &str) -> bool {
        self.user.as_ref().is_some_and(|u| u.is(role))
    }

    pub fn is_member(&self) -> bool {
        self.user.as_ref().is_some_and(User::is_member)
    }
}

/// The whole site.
pub fn router(state: AppState) -> Router {
    pages::routes()
        .layer(middleware::from_fn_with_state(state.clone(), pages::unread::unread_layer))
        .layer(middleware::from_fn_with_state(state.clone(), session_layer))
        .layer(middleware::from_fn(gateway::forward_client))
        .route("/static/portal.css", axum::routing::get(css))
        .route("/static/favicon.svg", axum::routing::get(favicon))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), security_headers))
        .with_state(state)
}

/// Loads (or starts) the caller's session, hands a [`Ctx`] to the handler, and sets the cookie of a new one.
async fn session_layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let cookie = request.headers().get(header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let presented = session::cookie_value(cookie, state.secure_cookie).map(str::to_owned);
    let path = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    let client_ip = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
    let (sid, session, created) = match state.sessions.load_or_create(presented.as_deref()).await {
        Ok(loaded) => loaded,
        Err(error) => {
            let ctx = Ctx { sid: String::new(), csrf: String::new(), user: None, flash: None, path, client_ip };
            return layout::unavailable(&ctx, &error);
        }
    };
    let flash = if request.method() == axum::http::Method::GET && session.flash.is_some() {
        state.sessions.take_flash(&sid).await.unwrap_or_else(|error| {
            tracing::warn!(error = format!("{error:#}"), "one-time message not taken");
            None
        })
    } else {
        None
    };
    let ctx = Ctx { sid: sid.clone(), csrf: session.csrf.clone(), user: session.user.clone(), flash, path, client_ip };
    request.extensions_mut().insert(ctx);
    let mut response = next.run(request).await;
    if created
        && !response.headers().contains_key(header::SET_COOKIE)
        && let Ok(value) = HeaderValue::from_str(&session::cookie_header(&sid, state.secure_cookie))
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `Content-Security-Policy` of every page: no script at all.
const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// `Permissions-Policy` of every page: the portal uses no browser feature.
pub const PERMISSIONS_POLICY: &str =
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()";
/// `Strict-Transport-Security` when the portal is served over HTTPS (`ID77_PORTAL_SECURE_COOKIE=1`).
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The headers of every answer that do not depend on the request (also on the refusals of [`refusal_page`]).
fn fixed_headers(https: bool) -> Vec<(header::HeaderName, HeaderValue)> {
    let mut headers = vec![
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::HeaderName::from_static("permissions-policy"), HeaderValue::from_static(PERMISSIONS_POLICY)),
    ];
    if https {
        headers.push((header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS)));
    }
    headers
}

/// Headers of every answer: no framing, no sniffing, a strict content security policy (no script at all), no
/// browser feature, and HSTS over HTTPS.
async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in fixed_headers(state.secure_cookie) {
        headers.insert(name, value);
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The refusals answered below the router (a request that is not HTTP, too long a target or too large headers,
/// a body that stopped arriving): a short page in French with the headers of every page.
fn refusal_page(https: bool) -> Refusal {
    Arc::new(move |status: StatusCode| {
        let what = match status {
            StatusCode::REQUEST_TIMEOUT => "La requête est arrivée trop lentement.",
            StatusCode::URI_TOO_LONG => "L’adresse demandée est trop longue.",
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "Les en-têtes de la requête sont trop volumineux.",
            _ => "La requête est mal formée.",
        };
        let body = format!(
            "<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Requête refusée ({}) – ID 77\
             </title></head><body><h1>Requête refusée</h1><p>{what}</p><p><a href=\"/\">Retour à l’accueil</a></p>\
             </body></html>",
            status.as_u16()
        );
        let mut headers = fixed_headers(https);
        headers.push((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
        RefusalBody { content_type: "text/html; charset=utf-8", body: body.into_bytes(), headers }
    })
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=300")],
        include_str!("../static/portal.css"),
    )
        .into_response()
}

/// The favicon: the wordmark's « 77 » square (static/favicon.svg), as `image/svg+xml`.
async fn favicon() -> Response {
    (
        [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "public, max-age=86400")],
        include_str!("../static/favicon.svg"),
    )
        .into_response()
}

/// Serves the portal on `listener` until `shutdown` is cancelled: connects to (creates, migrates) its session
/// database first, and sweeps expired sessions meanwhile. The connection limits come from the environment
/// (`ID77_HTTP_*`, see [`HttpLimits`]).
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with_limits(config, HttpLimits::from_env()?, listener, shutdown).await
}

/// [`run`] with the given connection limits (tests shorten the timeouts).
pub async fn run_with_limits(
    config: Config,
    limits: HttpLimits,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let pool = connect_database(&config).await?;
    let state = AppState::new(&config, pool.clone())?;
    let sweeper = tokio::spawn(state.sessions.as_ref().clone().sweeper(SWEEP_EVERY, shutdown.clone()));
    let local = listener.local_addr()?;
    tracing::info!(%local, gateway = %config.gateway_url, secure_cookie = config.secure_cookie, "portal listening");
    tracing::info!(?limits, "HTTP connection limits");
    // Header, body and keep-alive timeouts and a connection ceiling (issue 19, item 5).
    let refusal = refusal_page(config.secure_cookie);
    let server = http_server::serve(listener, router(state), limits, refusal, shutdown.clone());
    let drain_deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    let served = tokio::select! {
        result = server => result.context("serving HTTP"),
        () = drain_deadline => {
            tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}");
            Ok(())
        }
    };
    sweeper.abort();
    // Closes the idle connections; a request cut by the drain deadline may still hold one (bounded wait).
    let _ = tokio::time::timeout(Duration::from_secs(2), pool.close()).await;
    tracing::info!("portal stopped");
    served
}
