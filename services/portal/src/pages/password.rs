//! Passwords: « Mot de passe oublié ? » (`/mot-de-passe/oublie`: the address, then always the same answer), the
//! new password from the mailed link (`/mot-de-passe/nouveau?jeton=…`: the token in a hidden field, typed only
//! when the link was cut), and « Mon mot de passe » (`/compte/mot-de-passe`) for a signed-in user.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use reqwest::Method;
use serde_json::json;

use crate::caller::{self, check_csrf};
use crate::forms::{self, Errors, Fields, Input};
use crate::html::esc;
use crate::layout::{page_with_status, see_other};
use crate::pages::prologue;
use crate::{AppState, Ctx, layout};

pub const FORGOT_PATH: &str = "/mot-de-passe/oublie";
pub const NEW_PATH: &str = "/mot-de-passe/nouveau";
pub const CHANGE_PATH: &str = "/compte/mot-de-passe";
const FORGOT_TITLE: &str = "Mot de passe oublié";
const NEW_TITLE: &str = "Choisir un nouveau mot de passe";
const CHANGE_TITLE: &str = "Mon mot de passe";
/// The one answer to a reset request, whether or not the address has an account.
pub const SENT: &str = "Si un compte existe pour cette adresse, un courriel contenant un lien pour choisir un nouveau mot de passe vient de lui être envoyé. Le lien est valable 1 heure.";
pub const RESET_DONE: &str = "Votre nouveau mot de passe est enregistré : connectez-vous avec lui.";
pub const CHANGED: &str = "Votre mot de passe est modifié. Vos autres sessions ont été fermées.";
const BAD_LINK: &str = "Ce lien est inconnu, déjà utilisé ou expiré : demandez un nouveau lien.";
pub const POLICY: &str =
    "12 à 128 caractères, dont au moins trois types parmi : minuscules, majuscules, chiffres et symboles.";

fn password_field(id: &str, label: &str, autocomplete: &str, hint: &str, errors: &Errors) -> String {
    forms::field(id, label, Input::Text { kind: "password", autocomplete }, "", true, hint, errors)
}

/// A one-time code: hidden when it came with the link (the user only chooses a password), a text field when it
/// must be typed (no code in the link, or the code was refused).
pub fn code_field(id: &str, label: &str, hint: &str, code: &str, errors: &Errors) -> String {
    if !code.is_empty() && errors.of(id).is_none() {
        format!(r#"<input type="hidden" name="{}" value="{}">"#, esc(id), esc(code))
    } else {
        forms::field(id, label, Input::Text { kind: "text", autocomplete: "off" }, code, true, hint, errors)
    }
}

fn forgot_body(ctx: &Ctx, email: &str, errors: &Errors) -> String {
    format!(
        r#"<p>Indiquez l'adresse électronique de votre compte : nous vous enverrons un lien pour choisir un nouveau mot de passe.</p>
{summary}<form method="post" action="{FORGOT_PATH}" novalidate class="form narrow">{csrf}
{email}
<button type="submit">Recevoir un lien</button>
</form>
<p><a href="/connexion">Retour à la connexion</a></p>"#,
        summary = forms::summary(errors),
        csrf = forms::csrf(&ctx.csrf),
        email = forms::field(
            "email",
            "Adresse électronique",
            Input::Text { kind: "email", autocomplete: "username" },
            email,
            true,
            "",
            errors
        ),
    )
}

/// `GET /mot-de-passe/oublie`.
pub async fn forgot_form(Extension(ctx): Extension<Ctx>) -> Response {
    layout::page(&ctx, FORGOT_TITLE, &forgot_body(&ctx, "", &Errors::default()))
}

/// `POST /mot-de-passe/oublie`: the same confirmation whatever the address (the gateway answers alike).
pub async fn forgot(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<Fields>) -> Response {
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    let email = forms::value(&f, "email");
    let mut errors = Errors::default();
    errors.email(&f, "email", "Adresse électronique");
    if errors.is_empty() {
        match state.gateway.post("/v1/auth/password-reset", None, &json!({ "email": email })).await {
            Ok(_) => {
                let body = format!(
                    r#"<div class="notice" role="status"><p>{}</p></div><p><a href="/connexion">Retour à la connexion</a></p>"#,
                    esc(SENT)
                );
                return layout::page(&ctx, FORGOT_TITLE, &body);
            }
            Err(error) => {
                errors = Errors::from_api(&error, &[("email", "email", "Adresse électronique")]);
                if errors.is_empty() {
                    errors.add("", "", crate::fr::problem(&error));
                }
            }
        }
    }
    page_with_status(&ctx, StatusCode::BAD_REQUEST, FORGOT_TITLE, &forgot_body(&ctx, email, &errors))
}

fn new_body(ctx: &Ctx, code: &str, errors: &Errors) -> String {
    format!(
        r#"<p>Choisissez le nouveau mot de passe de votre compte : {policy}</p>
{summary}<form method="post" action="{NEW_PATH}" novalidate class="form narrow">{csrf}
{code}{password}{confirm}
<button type="submit">Enregistrer mon mot de passe</button>
</form>
<p><a href="{FORGOT_PATH}">Demander un nouveau lien</a></p>"#,
        policy = esc(POLICY),
        summary = forms::summary(errors),
        csrf = forms::csrf(&ctx.csrf),
        code = code_field("jeton", "Code du lien", "Le code qui suit « jeton= » dans le lien reçu.", code, errors),
        password = password_field("password", "Nouveau mot de passe", "new-password", "", errors),
        confirm = password_field("confirmation", "Confirmez le mot de passe", "new-password", "", errors),
    )
}

/// `GET /mot-de-passe/nouveau?jeton=…`.
pub async fn new_form(Extension(ctx): Extension<Ctx>, Query(q): Query<Fields>) -> Response {
    layout::page(&ctx, NEW_TITLE, &new_body(&ctx, forms::value(&q, "jeton"), &Errors::default()))
}

/// `POST /mot-de-passe/nouveau`: sets the password, then to the login page with a confirmation.
pub async fn set_new(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<Fields>) -> Response {
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    let code = forms::value(&f, "jeton");
    let mut errors = confirmed(&f, "password", "Nouveau mot de passe");
    errors.required(&f, "jeton", "Code du lien", 8192);
    if errors.is_empty() {
        let body = json!({ "token": code, "password": f.get("password").map(String::as_str).unwrap_or("") });
        match state.gateway.post("/v1/auth/password-reset/confirm", None, &body).await {
            Ok(_) => {
                state.sessions.update(&ctx.sid, |s| s.flash = Some(RESET_DONE.into())).await;
                return see_other("/connexion");
            }
            Err(error) => {
                errors = Errors::from_api(&error, &[("password", "password", "Nouveau mot de passe")]);
                if error.kind == "reset-token-invalid" || errors.is_empty() {
                    errors.add("jeton", "Code du lien", BAD_LINK);
                }
            }
        }
    }
    page_with_status(&ctx, StatusCode::BAD_REQUEST, NEW_TITLE, &new_body(&ctx, code, &errors))
}

/// The new password and its confirmation: both given, and the same.
fn confirmed(f: &Fields, id: &str, label: &str) -> Errors {
    let mut errors = Errors::default();
    let password = f.get(id).map(String::as_str).unwrap_or("");
    if password.is_empty() {
        errors.add(id, label, format!("Le champ « {label} » est obligatoire."));
    } else if password != f.get("confirmation").map(String::as_str).unwrap_or("") {
        errors.add("confirmation", "Confirmez le mot de passe", "Les deux mots de passe ne sont pas identiques.");
    }
    errors
}

fn change_body(ctx: &Ctx, errors: &Errors) -> String {
    format!(
        r#"{summary}<form method="post" action="{CHANGE_PATH}" novalidate class="form narrow">{csrf}
{current}{new}{confirm}
<button type="submit">Changer mon mot de passe</button>
</form>"#,
        summary = forms::summary(errors),
        csrf = forms::csrf(&ctx.csrf),
        current = password_field("actuel", "Mot de passe actuel", "current-password", "", errors),
        new = password_field("nouveau", "Nouveau mot de passe", "new-password", POLICY, errors),
        confirm = password_field("confirmation", "Confirmez le mot de passe", "new-password", "", errors),
    )
}

/// `GET /compte/mot-de-passe`.
pub async fn change_form(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    if let Err(r) = caller::token(&state, &ctx).await {
        return r;
    }
    layout::page(&ctx, CHANGE_TITLE, &change_body(&ctx, &Errors::default()))
}

/// `POST /compte/mot-de-passe`.
pub async fn change(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<Fields>) -> Response {
    let token = match prologue::post(&ctx, &f, caller::token(&state, &ctx)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let mut errors = confirmed(&f, "nouveau", "Nouveau mot de passe");
    errors.required(&f, "actuel", "Mot de passe actuel", 128);
    if errors.is_empty() {
        let body = json!({
            "current_password": f.get("actuel").map(String::as_str).unwrap_or(""),
            "new_password": f.get("nouveau").map(String::as_str).unwrap_or(""),
        });
        match state.gateway.send_json(Method::PUT, "/v1/me/password", Some(&token), &body, None, None).await {
            Ok(_) => {
                state.sessions.update(&ctx.sid, |s| s.flash = Some(CHANGED.into())).await;
                return see_other(CHANGE_PATH);
            }
            Err(error) => {
                errors = Errors::from_api(
                    &error,
                    &[
                        ("current_password", "actuel", "Mot de passe actuel"),
                        ("new_password", "nouveau", "Nouveau mot de passe"),
                    ],
                );
                if errors.is_empty() {
                    errors.add("", "", crate::fr::problem(&error));
                }
            }
        }
    }
    page_with_status(&ctx, StatusCode::BAD_REQUEST, CHANGE_TITLE, &change_body(&ctx, &errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            sid: "s".into(),
            csrf: "jeton-csrf".into(),
            user: None,
            flash: None,
            path: NEW_PATH.into(),
            client_ip: None,
        }
    }

    #[test]
    fn the_code_of_the_link_is_hidden_and_typed_only_when_missing_or_refused() {
        let html = new_body(&ctx(), "AbC-123_x", &Errors::default());
        assert!(html.contains(r#"<input type="hidden" name="jeton" value="AbC-123_x">"#), "{html}");
        assert!(!html.contains(r#"<label for="jeton">"#));
        let typed = new_body(&ctx(), "", &Errors::default());
        assert!(typed.contains(r#"<label for="jeton">"#) && typed.contains(r#"type="text" id="jeton""#));
        let mut refused = Errors::default();
        refused.add("jeton", "Code du lien", BAD_LINK);
        let html = new_body(&ctx(), "AbC", &refused);
        assert!(html.contains(r#"type="text" id="jeton" name="jeton" value="AbC""#) && html.contains(BAD_LINK));
    }

    #[test]
    fn passwords_must_be_confirmed() {
        let fields = |pairs: &[(&str, &str)]| -> Fields {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        assert!(confirmed(&fields(&[("password", "a"), ("confirmation", "a")]), "password", "P").is_empty());
        assert!(
            confirmed(&fields(&[("password", "a"), ("confirmation", "b")]), "password", "P")
                .of("confirmation")
                .is_some()
        );
        assert!(confirmed(&fields(&[]), "password", "P").of("password").is_some());
    }

    #[test]
    fn the_forms_post_with_the_csrf_token() {
        let html = forgot_body(&ctx(), "", &Errors::default());
        assert!(html.contains(r#"action="/mot-de-passe/oublie""#) && html.contains(r#"value="jeton-csrf""#));
        let html = change_body(&ctx(), &Errors::default());
        assert!(
            html.contains(r#"autocomplete="current-password""#) && html.contains(r#"action="/compte/mot-de-passe""#)
        );
    }
}
