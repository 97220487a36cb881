//! What a screen checks about its caller before it calls the gateway: the access token of its session (refreshed
//! when about to expire, or the login page instead), the CSRF token of a POST, and the role a screen is
//! reserved to.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::session::{self, SessionTx, Tokens};
use crate::{AppState, Ctx, forms, fr, html, layout};

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
    layout::see_other(&format!("/connexion{}", html::query(&[("suite", &ctx.path)])).replace("&amp;", "&"))
}

/// The caller's access token, refreshed when about to expire; `Err` is the answer to give instead (to the
/// login page when there is no session or the refresh is refused).
pub async fn token(state: &AppState, ctx: &Ctx) -> Result<String, Response> {
    let session = state.sessions.get(&ctx.sid).await.map_err(|error| layout::unavailable(ctx, &error))?;
    let Some(tokens) = session.and_then(|s| s.tokens) else { return Err(login_redirect(ctx)) };
    if !tokens.stale(chrono::Utc::now()) {
        return Ok(tokens.access);
    }
    // A refresh token is single-use (a second use revokes the family): the session's row stays locked until the
    // new pair is stored, so one request on one replica refreshes and the others wait, then read its result.
    let mut locked = state.sessions.begin(&ctx.sid).await.map_err(|error| layout::unavailable(ctx, &error))?;
    let Some(tokens) = locked.session.tokens.clone() else { return Err(login_redirect(ctx)) };
    if !tokens.stale(chrono::Utc::now()) {
        return Ok(tokens.access);
    }
    match state.gateway.post("/v1/auth/refresh", None, &json!({ "refresh_token": tokens.refresh })).await {
        Ok(pair) => {
            let access = pair["access_token"].as_str().unwrap_or_default().to_owned();
            let refresh = pair["refresh_token"].as_str().unwrap_or_default().to_owned();
            let expires_in = pair["expires_in"].as_i64().unwrap_or(0);
            if access.is_empty() || refresh.is_empty() {
                return Err(expired(locked, ctx).await);
            }
            locked.session.tokens = Some(Tokens::new(access.clone(), expires_in, refresh));
            locked.save().await.map_err(|error| layout::unavailable(ctx, &error))?;
            Ok(access)
        }
        Err(error) if error.status == 401 || error.status == 400 => Err(expired(locked, ctx).await),
        Err(error) => {
            Err(layout::error_page(ctx, StatusCode::BAD_GATEWAY, "Service indisponible", &fr::problem(&error)))
        }
    }
}

async fn expired(mut locked: SessionTx, ctx: &Ctx) -> Response {
    locked.session.user = None;
    locked.session.tokens = None;
    locked.session.flash = Some("Votre session a expiré : veuillez vous reconnecter.".into());
    if let Err(error) = locked.save().await {
        tracing::warn!(error = format!("{error:#}"), "expired session not cleared");
    }
    login_redirect(ctx)
}

/// `Some(403 page)` unless the caller is a user of a member (`None` without a user: [`token`] has already sent
/// the caller to the login page).
pub fn members_only(ctx: &Ctx) -> Option<Response> {
    ctx.user.as_ref()?;
    (!ctx.is_member()).then(|| {
        layout::error_page(
            ctx,
            StatusCode::FORBIDDEN,
            "Accès réservé",
            "Cette page est réservée aux utilisateurs des collectivités adhérentes.",
        )
    })
}

/// A member's user's access token; `Err` is the answer to give instead (the login page, or 403 to another role).
pub async fn member_token(state: &AppState, ctx: &Ctx) -> Result<String, Response> {
    let token = token(state, ctx).await?;
    members_only(ctx).map_or(Ok(token), Err)
}

/// A provider's agent's access token; `Err` is the answer to give instead (the login page, or 403 to another
/// role).
pub async fn agent_token(state: &AppState, ctx: &Ctx) -> Result<String, Response> {
    let token = token(state, ctx).await?;
    agents_only(ctx).map_or(Ok(token), Err)
}

/// `Some(403 page)` unless the caller is a provider's agent.
pub fn agents_only(ctx: &Ctx) -> Option<Response> {
    (!ctx.is("provider_agent")).then(|| {
        layout::error_page(
            ctx,
            StatusCode::FORBIDDEN,
            "Accès réservé",
            "Cette page est réservée aux agents des partenaires.",
        )
    })
}

fn coordinator_only(ctx: &Ctx) -> Option<Response> {
    (!ctx.is("coordinator")).then(|| {
        layout::error_page(ctx, StatusCode::FORBIDDEN, "Accès réservé", "Cette page est réservée à la coordination.")
    })
}

/// The coordinator's access token; `Err` is the answer to give instead (the login page, or 403 to another role).
pub async fn coordinator_token(state: &AppState, ctx: &Ctx) -> Result<String, Response> {
    let token = token(state, ctx).await?;
    match coordinator_only(ctx) {
        Some(r) => Err(r),
        None => Ok(token),
    }
}
