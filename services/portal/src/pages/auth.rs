//! Sign in / sign out, and accepting an invitation (an invited user sets its password).

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::{Extension, Form};
use serde_json::json;

use super::common::s;
use crate::caller::check_csrf;
use crate::forms::{self, Errors, Fields, Input};
use crate::html::esc;
use crate::layout::{page_with_status, see_other};
use crate::redirect::safe_redirect;
use crate::session::{self, Tokens, User};
use crate::{AppState, Ctx, layout};

fn login_body(ctx: &Ctx, email: &str, next: &str, errors: &Errors) -> String {
    format!(
        r#"{summary}<form method="post" action="/connexion" novalidate class="form narrow">{csrf}
<input type="hidden" name="suite" value="{next}">
{email}{password}
<button type="submit">Se connecter</button>
</form>
<p><a href="/mot-de-passe/oublie">Mot de passe oublié ?</a></p>
<p>Vous avez reçu une invitation ? <a href="/activer">Choisir votre mot de passe</a>.</p>
<p>Votre collectivité n'a pas encore de compte ? <a href="/adherer">Demander l'adhésion</a>.</p>"#,
        summary = forms::summary(errors),
        csrf = forms::csrf(&ctx.csrf),
        next = esc(next),
        email = forms::field(
            "email",
            "Adresse électronique",
            Input::Text { kind: "email", autocomplete: "username" },
            email,
            true,
            "",
            errors
        ),
        password = forms::field(
            "password",
            "Mot de passe",
            Input::Text { kind: "password", autocomplete: "current-password" },
            "",
            true,
            "",
            errors
        ),
    )
}

/// Where to go after login: `suite` when it is a path of this site ([`safe_redirect`], no open redirect) other
/// than the login page itself, else the home page.
fn next_path(next: &str) -> String {
    safe_redirect(next).filter(|path| !path.starts_with("/connexion")).unwrap_or_else(|| "/".to_owned())
}

pub async fn login_form(Extension(ctx): Extension<Ctx>, Query(q): Query<Fields>) -> Response {
    let next = forms::value(&q, "suite");
    layout::page(&ctx, "Se connecter", &login_body(&ctx, "", next, &Errors::default()))
}

pub async fn login(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<Fields>) -> Response {
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    let email = forms::value(&f, "email");
    let password = f.get("password").map(String::as_str).unwrap_or("");
    let next = forms::value(&f, "suite");
    let mut errors = Errors::default();
    errors.email(&f, "email", "Adresse électronique");
    if password.is_empty() {
        errors.add("password", "Mot de passe", "Le champ « Mot de passe » est obligatoire.");
    }
    if errors.is_empty() {
        let body = json!({ "email": email, "password": password });
        let answer = state
            .gateway
            // The browser's address goes along in X-Forwarded-For (crate::gateway::forward_client).
            .send_json(reqwest::Method::POST, "/v1/auth/token", None, &body, None, None)
            .await;
        match answer {
            Ok(pair) => return signed_in(&state, &ctx, &pair, &next_path(next)).await,
            Err(error) if error.status == 401 || error.status == 400 => {
                errors.add("", "", "Adresse électronique ou mot de passe incorrect.");
            }
            Err(error) => errors.add("", "", crate::fr::problem(&error)),
        }
    }
    page_with_status(&ctx, StatusCode::BAD_REQUEST, "Se connecter", &login_body(&ctx, email, next, &errors))
}

/// Stores the tokens and the user in a new session and sends the browser on.
async fn signed_in(state: &AppState, ctx: &Ctx, pair: &serde_json::Value, next: &str) -> Response {
    let access = s(pair, "access_token").to_owned();
    let tokens =
        Tokens::new(access.clone(), pair["expires_in"].as_i64().unwrap_or(0), s(pair, "refresh_token").to_owned());
    let me = match state.gateway.get("/v1/me", Some(&access)).await {
        Ok(me) => me,
        Err(error) => return layout::api_error_page(ctx, &error),
    };
    let u = &me["user"];
    let opt = |k: &str| Some(s(u, k).to_owned()).filter(|v| !v.is_empty());
    let user = User {
        id: s(u, "id").to_owned(),
        email: s(u, "email").to_owned(),
        display_name: Some(s(u, "display_name").to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| s(u, "email").to_owned()),
        role: s(u, "role").to_owned(),
        member_id: opt("member_id"),
        provider_code: opt("provider_code"),
    };
    let welcome = format!("Bienvenue, {}.", user.display_name);
    let sid = match state.sessions.sign_in(&ctx.sid, user, tokens).await {
        Ok(sid) => sid,
        Err(error) => return layout::unavailable(ctx, &error),
    };
    state.sessions.update(&sid, |s| s.flash = Some(welcome)).await;
    let mut response = see_other(next);
    if let Ok(value) = HeaderValue::from_str(&session::cookie_header(&sid, state.secure_cookie)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

pub async fn logout(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<Fields>) -> Response {
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    // Deleting the row revokes the session on every replica at once.
    let removed = match state.sessions.remove(&ctx.sid).await {
        Ok(removed) => removed,
        Err(error) => return layout::unavailable(&ctx, &error),
    };
    if let Some(session) = removed
        && let Some(tokens) = session.tokens
    {
        // Revokes the refresh token family at membership; the local session is gone either way.
        if let Err(error) =
            state.gateway.post("/v1/auth/logout", None, &json!({ "refresh_token": tokens.refresh })).await
        {
            tracing::info!(status = error.status, "logout at the gateway failed; local session dropped");
        }
    }
    let sid = session::random_token();
    state.sessions.update(&sid, |s| s.flash = Some("Vous êtes déconnecté.".into())).await;
    let mut response = see_other("/connexion");
    if let Ok(value) = HeaderValue::from_str(&session::cookie_header(&sid, state.secure_cookie)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn invitation_body(ctx: &Ctx, token: &str, errors: &Errors) -> String {
    format!(
        r#"<p>Choisissez le mot de passe de votre compte : {policy}</p>
{summary}<form method="post" action="{action}" novalidate class="form narrow">{csrf}
{token}{password}{confirm}
<button type="submit">Activer mon compte</button>
</form>"#,
        policy = esc(super::password::POLICY),
        // Posted back where it was served: `/activer` (mailed links) or `/invitation` (older links).
        action = if ctx.path.starts_with("/invitation") { "/invitation" } else { "/activer" },
        summary = forms::summary(errors),
        csrf = forms::csrf(&ctx.csrf),
        // From the mailed link, the code is hidden: the user only chooses a password.
        token = super::password::code_field(
            "jeton",
            "Code d'invitation",
            "Le code reçu avec votre invitation (après « code= » dans le lien).",
            token,
            errors
        ),
        password = forms::field(
            "password",
            "Nouveau mot de passe",
            Input::Text { kind: "password", autocomplete: "new-password" },
            "",
            true,
            "",
            errors
        ),
        confirm = forms::field(
            "confirmation",
            "Confirmez le mot de passe",
            Input::Text { kind: "password", autocomplete: "new-password" },
            "",
            true,
            "",
            errors
        ),
    )
}

/// `GET /activer?code=…` (the mailed link) and `GET /invitation?jeton=…` (older links).
pub async fn invitation_form(Extension(ctx): Extension<Ctx>, Query(q): Query<Fields>) -> Response {
    let code = Some(forms::value(&q, "code")).filter(|c| !c.is_empty()).unwrap_or_else(|| forms::value(&q, "jeton"));
    layout::page(&ctx, "Activer votre compte", &invitation_body(&ctx, code, &Errors::default()))
}

pub async fn accept_invitation(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    let token = forms::value(&f, "jeton");
    let password = f.get("password").map(String::as_str).unwrap_or("");
    let confirmation = f.get("confirmation").map(String::as_str).unwrap_or("");
    let mut errors = Errors::default();
    errors.required(&f, "jeton", "Code d'invitation", 8192);
    if password.is_empty() {
        errors.add("password", "Nouveau mot de passe", "Le champ « Nouveau mot de passe » est obligatoire.");
    } else if password != confirmation {
        errors.add("confirmation", "Confirmez le mot de passe", "Les deux mots de passe ne sont pas identiques.");
    }
    if errors.is_empty() {
        let body = json!({ "invitation_token": token, "password": password });
        match state.gateway.post("/v1/auth/invitations/accept", None, &body).await {
            Ok(pair) => return signed_in(&state, &ctx, &pair, "/").await,
            Err(error) => {
                errors = Errors::from_api(
                    &error,
                    &[
                        ("password", "password", "Nouveau mot de passe"),
                        ("invitation_token", "jeton", "Code d'invitation"),
                    ],
                );
                if error.status == 401 || error.status == 404 {
                    errors.add(
                        "jeton",
                        "Code d'invitation",
                        "Ce code d'invitation est inconnu, déjà utilisé ou expiré.",
                    );
                }
            }
        }
    }
    page_with_status(&ctx, StatusCode::BAD_REQUEST, "Activer votre compte", &invitation_body(&ctx, token, &errors))
}

#[cfg(test)]
mod tests {
    use super::next_path;

    #[test]
    fn the_activation_page_hides_the_code_of_the_link() {
        let ctx = crate::Ctx {
            sid: "s".into(),
            csrf: "c".into(),
            user: None,
            flash: None,
            path: "/activer".into(),
            client_ip: None,
        };
        let html = super::invitation_body(&ctx, "AbC-123", &super::Errors::default());
        assert!(html.contains(r#"<input type="hidden" name="jeton" value="AbC-123">"#), "{html}");
        assert!(html.contains(r#"action="/activer""#) && html.contains(r#"id="password""#));
        let typed = super::invitation_body(&ctx, "", &super::Errors::default());
        assert!(typed.contains(r#"<label for="jeton">"#));
    }

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(next_path("/demandes?x=1"), "/demandes?x=1");
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/\\evil",
            "",
            "demandes",
            "/connexion?suite=/x",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\0",
            "/%2f%2fevil.example",
        ] {
            assert_eq!(next_path(bad), "/", "{bad}");
        }
    }
}
