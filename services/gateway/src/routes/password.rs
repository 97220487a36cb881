//! Passwords, served by membership's `IdentityService`: a forgotten one is reset from a mailed link
//! (`/v1/auth/password-reset`, public, limited like logins), a signed-in caller changes its own
//! (`PUT /v1/me/password`).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use id77_proto::membership::v1 as pb;
use serde::Deserialize;

use super::common::{upstream, upstream_public};
use super::identity::{ClientAddr, MAX_PASSWORD_CHARS, MAX_TOKEN_CHARS};
use super::membership::MAX_EMAIL_CHARS;
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, json_problem};
use crate::problem::Problem;

/// This module's operations and views in the OpenAPI document (`crate::api_docs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(request_password_reset, confirm_password_reset, change_password),
    components(schemas(ResetRequest, ResetAccepted, ResetConfirmation, PasswordChange))
)]
pub struct Api;

/// A password reset request (`POST /v1/auth/password-reset`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = PasswordResetRequest)]
pub struct ResetRequest {
    #[schema(value_type = String, required = true, format = Email, min_length = 1, max_length = 254,
             pattern = r"\S", example = "dgs@mairie.example.fr")]
    email: Option<String>,
}

/// The same answer whatever the address (`POST /v1/auth/password-reset`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = PasswordResetAccepted)]
pub struct ResetAccepted {
    /// Always the same text.
    #[schema(example = "If an account has this address, a link to choose a new password was mailed to it.")]
    pub detail: &'static str,
}

/// The one answer to a reset request.
pub const RESET_ACCEPTED: &str = "If an account has this address, a link to choose a new password was mailed to it.";

/// Mails a link to choose a new password (public): 202 with the same body whether or not an account has the
/// address.
#[utoipa::path(
    post,
    path = "/v1/auth/password-reset",
    tag = "auth",
    operation_id = "requestPasswordReset",
    summary = "Ask for a password reset link by mail (public)",
    description = "Always 202 with the same body, whether or not a live account has this email (no enumeration). \
                   The link (`<portal>/mot-de-passe/nouveau?jeton=...`) works once, for 1 hour; an account gets \
                   at most 3 links per hour. Limited like logins per client address.",
    request_body = ResetRequest,
    responses((status = 202, description = "Accepted (whatever the address).", body = ResetAccepted)),
    security(())
)]
pub async fn request_password_reset(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    body: Result<Json<ResetRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<ResetAccepted>), Problem> {
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let email = checks.required("email", body.email, MAX_EMAIL_CHARS).trim().to_owned();
    // The address's form is checked (that reveals nothing); whether an account has it is never said.
    if !email.is_empty() && !id77_platform::validate::is_plausible_email(&email) {
        checks.fail("email", "must be an email address");
    }
    checks.finish()?;
    let request = pb::RequestPasswordResetRequest { email, client: client.to_string() };
    state.identity().request_password_reset(request).await.map_err(upstream_public("membership"))?;
    Ok((StatusCode::ACCEPTED, Json(ResetAccepted { detail: RESET_ACCEPTED })))
}

/// The token of a reset mail and the new password (`POST /v1/auth/password-reset/confirm`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = PasswordResetConfirmation)]
pub struct ResetConfirmation {
    /// The `jeton` of the mailed link.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 8192, pattern = r"\S")]
    token: Option<String>,
    /// 12 to 128 characters, at least three of lowercase, uppercase, digit, symbol, not containing the email's
    /// local part.
    #[schema(value_type = String, required = true, format = Password, min_length = 12, max_length = 128)]
    password: Option<String>,
}

/// Sets a new password from a reset link (public): the link stops working, every session of the account ends.
#[utoipa::path(
    post,
    path = "/v1/auth/password-reset/confirm",
    tag = "auth",
    operation_id = "confirmPasswordReset",
    summary = "Set a new password from a reset link (public)",
    description = "An unknown, used or expired token is a 404 with reason `RESET_TOKEN_INVALID` (no such live \
                   link); a password that does not satisfy the policy a 400 naming `password`. Limited like logins \
                   per client address.",
    request_body = ResetConfirmation,
    responses(
        (status = 204, description = "Password set; the account's sessions are revoked."),
        (status = 400, description = "A password outside the policy.",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such live link: unknown, used or expired (`RESET_TOKEN_INVALID`).",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(())
)]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    body: Result<Json<ResetConfirmation>, JsonRejection>,
) -> Result<StatusCode, Problem> {
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let token = checks.required("token", body.token, MAX_TOKEN_CHARS).trim().to_owned();
    let password = checks.required("password", body.password, MAX_PASSWORD_CHARS);
    checks.finish()?;
    let request = pb::ResetPasswordRequest { token, password };
    state.identity().reset_password(request).await.map_err(upstream_public("membership"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's current and new password (`PUT /v1/me/password`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PasswordChange {
    #[schema(value_type = String, required = true, format = Password, min_length = 1, max_length = 128)]
    current_password: Option<String>,
    /// Same policy as an invitation's.
    #[schema(value_type = String, required = true, format = Password, min_length = 12, max_length = 128)]
    new_password: Option<String>,
}

/// The caller changes its own password (any authenticated caller); its other sessions end.
#[utoipa::path(
    put,
    path = "/v1/me/password",
    tag = "auth",
    operation_id = "changePassword",
    summary = "Change my password (any authenticated caller)",
    description = "A wrong current password is a 403 with reason `WRONG_CURRENT_PASSWORD` (the token is valid, \
                   the second proof failed); a new one outside the policy a 400 naming `new_password`. The \
                   caller's other sessions are revoked, this one goes on.",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Password changed."),
        (status = 400, description = "A new password outside the policy.",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
pub async fn change_password(
    State(state): State<AppState>,
    caller: Authenticated,
    body: Result<Json<PasswordChange>, JsonRejection>,
) -> Result<StatusCode, Problem> {
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let current_password = checks.required("current_password", body.current_password, MAX_PASSWORD_CHARS);
    let new_password = checks.required("new_password", body.new_password, MAX_PASSWORD_CHARS);
    checks.finish()?;
    let request = pb::ChangePasswordRequest { current_password, new_password };
    state.identity().change_password(caller.grpc(request)).await.map_err(upstream("membership"))?;
    Ok(StatusCode::NO_CONTENT)
}
