//! Web portal of ID 77: server-rendered French pages for the collectivités, the providers' agents and the
//! coordinator, built only on the public gateway API (`ID77_GATEWAY_URL`). No JavaScript is needed: every
//! screen is HTML forms and links, styled by one hand-written CSS file (progressive enhancement).
//!
//! Sessions are server-side ([`session`]): the browser keeps a random id in an HttpOnly, SameSite=Strict
//! cookie; every POST carries the session's CSRF token. The gateway's access token is refreshed when it is
//! about to expire. See docs/adr/0009-portal-server-rendered.md.

// Handlers answer a whole page on every early exit: `Result<_, Response>` is the natural shape here.
#![allow(clippy::result_large_err)]

pub mod config;
pub mod forms;
pub mod fr;
pub mod gateway;
pub mod html;
pub mod layout;
pub mod pages;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;

use crate::gateway::Gateway;
use crate::session::{Sessions, Tokens, User};

/// How long in-flight requests get to finish after shutdown is requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest form body accepted.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The gateway client and the sessions. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub gateway: Gateway,
    pub sessions: Arc<Sessions>,
    pub secure_cookie: bool,
    /// Serialises token refreshes: a refresh token is single-use (a second use revokes the family).
    refresh_lock: Arc<tokio::sync::Mutex<()>>,
}

impl AppState {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        Ok(Self {
            gateway: Gateway::new(&config.gateway_url, config.request_timeout)?,
            sessions: Arc::new(Sessions::new(config.session_idle, config.max_sessions)),
            secure_cookie: config.secure_cookie,
            refresh_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }
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
        .layer(middleware::from_fn_with_state(state.clone(), session_layer))
        .route("/static/portal.css", axum::routing::get(css))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Loads (or starts) the caller's session, hands a [`Ctx`] to the handler, and sets the cookie of a new one.
async fn session_layer(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let cookie = request.headers().get(header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let presented = session::cookie_value(cookie, state.secure_cookie).map(str::to_owned);
    let (sid, session, created) = state.sessions.load_or_create(presented.as_deref());
    let flash = if request.method() == axum::http::Method::GET { state.sessions.take_flash(&sid) } else { None };
    let client_ip = request.extensions().get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
    let ctx = Ctx {
        sid: sid.clone(),
        csrf: session.csrf.clone(),
        user: session.user.clone(),
        flash,
        path: request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into()),
        client_ip,
    };
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

/// Headers of every answer: no framing, no sniffing, a strict content security policy (no script at all).
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=300")],
        include_str!("../static/portal.css"),
    )
        .into_response()
}

/// 303 to `to` (after a POST).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// Checks the CSRF token of a POST form; `Err` is the 403 page to answer.
pub fn check_csrf(ctx: &Ctx, fields: &forms::Fields) -> Result<(), Response> {
    let sent = fields.get(session::CSRF_FIELD).map(String::as_str).unwrap_or("");
    if session::same_secret(sent, &ctx.csrf) {
        Ok(())
    } else {
        tracing::warn!(path = %ctx.path, "POST refused: missing or wrong CSRF token");
        Err(layout::error_page(
            ctx,
            StatusCode::FORBIDDEN,
            "Formulaire expiré",
            "Ce formulaire a expiré ou ne vient pas de ce site. Rechargez la page et recommencez.",
        ))
    }
}

/// Where to send a caller that must sign in first.
fn login_redirect(ctx: &Ctx) -> Response {
    see_other(&format!("/connexion{}", html::query(&[("suite", &ctx.path)])).replace("&amp;", "&"))
}

/// The caller's access token, refreshed when about to expire; `Err` is the answer to give instead (to the
/// login page when there is no session or the refresh is refused).
pub async fn token(state: &AppState, ctx: &Ctx) -> Result<String, Response> {
    let Some(session) = state.sessions.get(&ctx.sid) else { return Err(login_redirect(ctx)) };
    let Some(tokens) = session.tokens else { return Err(login_redirect(ctx)) };
    if !tokens.stale(std::time::Instant::now()) {
        return Ok(tokens.access);
    }
    let _guard = state.refresh_lock.lock().await;
    // Another request of this session may have refreshed meanwhile.
    let Some(tokens) = state.sessions.get(&ctx.sid).and_then(|s| s.tokens) else { return Err(login_redirect(ctx)) };
    if !tokens.stale(std::time::Instant::now()) {
        return Ok(tokens.access);
    }
    match state.gateway.post("/v1/auth/refresh", None, &json!({ "refresh_token": tokens.refresh })).await {
        Ok(pair) => {
            let access = pair["access_token"].as_str().unwrap_or_default().to_owned();
            let refresh = pair["refresh_token"].as_str().unwrap_or_default().to_owned();
            let expires_in = pair["expires_in"].as_i64().unwrap_or(0);
            if access.is_empty() || refresh.is_empty() {
                return Err(expired(state, ctx));
            }
            let fresh = Tokens::new(access.clone(), expires_in, refresh);
            state.sessions.update(&ctx.sid, |s| s.tokens = Some(fresh));
            Ok(access)
        }
        Err(error) if error.status == 401 || error.status == 400 => Err(expired(state, ctx)),
        Err(error) => {
            Err(layout::error_page(ctx, StatusCode::BAD_GATEWAY, "Service indisponible", &fr::problem(&error)))
        }
    }
}

fn expired(state: &AppState, ctx: &Ctx) -> Response {
    state.sessions.update(&ctx.sid, |s| {
        s.user = None;
        s.tokens = None;
        s.flash = Some("Votre session a expiré : veuillez vous reconnecter.".into());
    });
    login_redirect(ctx)
}

/// Serves the portal on `listener` until `shutdown` is cancelled.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let state = AppState::new(&config)?;
    let local = listener.local_addr()?;
    tracing::info!(%local, gateway = %config.gateway_url, secure_cookie = config.secure_cookie, "portal listening");
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let drain_deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        result = std::future::IntoFuture::into_future(server) => result.context("serving HTTP")?,
        () = drain_deadline => tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}"),
    }
    tracing::info!("portal stopped");
    Ok(())
}
