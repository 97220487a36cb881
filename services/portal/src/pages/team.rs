//! « Mon équipe » (`/compte/equipe`): a member's administrator lists the accounts of its collectivité, invites a
//! colleague (user or administrator: the invitation leaves by mail with its activation link) and removes one
//! (never itself). Inviting a colleague is not applying for membership: the collectivité is already a member.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use reqwest::Method;
use serde_json::{Value, json};

use super::common::{items, s, safe_id};
use crate::caller;
use crate::forms::{self, Errors, Fields, Input};
use crate::html::esc;
use crate::layout::{page_with_status, see_other};
use crate::pages::prologue;
use crate::{AppState, Ctx, layout};

pub const PATH: &str = "/compte/equipe";
const TITLE: &str = "Mon équipe";
const ROLES: [(&str, &str); 2] = [("member_user", "Utilisateur"), ("member_admin", "Administrateur")];

fn role_label(role: &str) -> &str {
    ROLES.iter().find(|(r, _)| *r == role).map_or(role, |(_, label)| label)
}

/// The member admin's token; `Err` is the answer to give instead (login page, or 403 to anyone else).
async fn admin_token(state: &AppState, ctx: &Ctx) -> Result<String, Response> {
    let token = caller::token(state, ctx).await?;
    if ctx.is("member_admin") {
        Ok(token)
    } else {
        Err(layout::error_page(
            ctx,
            StatusCode::FORBIDDEN,
            "Accès réservé",
            "Cette page est réservée aux administrateurs des collectivités adhérentes.",
        ))
    }
}

fn row(ctx: &Ctx, user: &Value) -> String {
    let id = s(user, "id");
    let me = ctx.user.as_ref().is_some_and(|u| u.id == id);
    let status = if user["active"].as_bool().unwrap_or(false) { "Actif" } else { "Invitation en attente" };
    let action = if me {
        "Vous".to_owned()
    } else if let Some(id) = safe_id(id) {
        format!(
            r#"<form method="post" action="{PATH}/{id}/retirer" class="inline">{csrf}<button type="submit" class="secondary">Retirer<span class="visually-hidden"> {name}</span></button></form>"#,
            csrf = forms::csrf(&ctx.csrf),
            name = esc(s(user, "display_name")),
        )
    } else {
        String::new()
    };
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
        esc(s(user, "display_name")),
        esc(s(user, "email")),
        esc(role_label(s(user, "role"))),
        status
    )
}

fn body(ctx: &Ctx, users: &[Value], form: &Fields, errors: &Errors) -> String {
    let rows: String = users.iter().map(|u| row(ctx, u)).collect();
    let roles: Vec<(String, String)> = ROLES.iter().map(|(v, l)| ((*v).to_owned(), (*l).to_owned())).collect();
    let role = Some(forms::value(form, "role")).filter(|r| !r.is_empty()).unwrap_or("member_user");
    format!(
        r#"<p>Les comptes de votre collectivité. Votre collectivité est déjà adhérente : pour donner accès à un collègue, invitez-le ici (il n'y a pas de nouvelle demande d'adhésion à faire).</p>
<table><caption>Comptes de la collectivité</caption>
<thead><tr><th scope="col">Nom</th><th scope="col">Adresse électronique</th><th scope="col">Rôle</th><th scope="col">Statut</th><th scope="col">Action</th></tr></thead>
<tbody>{rows}</tbody></table>
<h2>Inviter un collègue</h2>
<p>Il recevra un courriel avec un lien pour activer son compte (valable 7 jours).</p>
{summary}<form method="post" action="{PATH}" novalidate class="form narrow">{csrf}
{name}{email}{role}
<button type="submit">Inviter</button>
</form>"#,
        summary = forms::summary(errors),
        csrf = forms::csrf(&ctx.csrf),
        name = forms::field(
            "nom",
            "Nom",
            Input::Text { kind: "text", autocomplete: "off" },
            forms::value(form, "nom"),
            true,
            "",
            errors
        ),
        email = forms::field(
            "courriel",
            "Adresse électronique",
            Input::Text { kind: "email", autocomplete: "off" },
            forms::value(form, "courriel"),
            true,
            "",
            errors
        ),
        role = forms::field("role", "Rôle", Input::Select(&roles), role, true, "", errors),
    )
}

async fn render(
    state: &AppState,
    ctx: &Ctx,
    token: &str,
    status: StatusCode,
    form: &Fields,
    errors: &Errors,
) -> Response {
    match state.gateway.get("/v1/users?limit=100", Some(token)).await {
        Ok(page) => page_with_status(ctx, status, TITLE, &body(ctx, items(&page), form, errors)),
        Err(error) => layout::api_error_page(ctx, &error),
    }
}

/// `GET /compte/equipe`.
pub async fn show(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let token = match admin_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    render(&state, &ctx, &token, StatusCode::OK, &Fields::default(), &Errors::default()).await
}

/// `POST /compte/equipe`: invites a colleague of the admin's own member.
pub async fn invite(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<Fields>) -> Response {
    let token = match prologue::post(&ctx, &f, admin_token(&state, &ctx)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let mut errors = Errors::default();
    errors.required(&f, "nom", "Nom", 200);
    errors.email(&f, "courriel", "Adresse électronique");
    let role = forms::value(&f, "role");
    if !ROLES.iter().any(|(r, _)| *r == role) {
        errors.add("role", "Rôle", "Choisissez « Utilisateur » ou « Administrateur ».");
    }
    if errors.is_empty() {
        let body =
            json!({ "email": forms::value(&f, "courriel"), "display_name": forms::value(&f, "nom"), "role": role });
        match state.gateway.post("/v1/users", Some(&token), &body).await {
            Ok(_) => {
                let flash = format!(
                    "{} est invité : un courriel avec son lien d'activation lui a été envoyé.",
                    forms::value(&f, "courriel")
                );
                state.sessions.update(&ctx.sid, |s| s.flash = Some(flash)).await;
                return see_other(PATH);
            }
            Err(error) => {
                errors = Errors::from_api(
                    &error,
                    &[("email", "courriel", "Adresse électronique"), ("display_name", "nom", "Nom")],
                );
                if error.status == 409 {
                    errors.add("courriel", "Adresse électronique", "Un compte existe déjà pour cette adresse.");
                } else if errors.is_empty() {
                    errors.add("", "", crate::fr::problem(&error));
                }
            }
        }
    }
    render(&state, &ctx, &token, StatusCode::BAD_REQUEST, &f, &errors).await
}

/// `POST /compte/equipe/{id}/retirer`.
pub async fn remove(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = admin_token(&state, &ctx);
    let (token, id) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Ce compte n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let path = format!("/v1/users/{id}");
    match state.gateway.send_json(Method::DELETE, &path, Some(&token), &json!({}), None, None).await {
        Ok(_) => {
            state.sessions.update(&ctx.sid, |s| s.flash = Some("Le compte est retiré.".into())).await;
            see_other(PATH)
        }
        Err(error) => {
            let mut errors = Errors::default();
            errors.add("", "", crate::fr::problem(&error));
            render(&state, &ctx, &token, StatusCode::CONFLICT, &Fields::default(), &errors).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            sid: "s".into(),
            csrf: "c".into(),
            user: Some(crate::session::User {
                id: "u1".into(),
                email: "dgs@meaux.fr".into(),
                display_name: "DGS".into(),
                role: "member_admin".into(),
                member_id: Some("m".into()),
                provider_code: None,
            }),
            flash: None,
            path: PATH.into(),
            client_ip: None,
        }
    }

    #[test]
    fn colleagues_may_be_removed_but_not_oneself() {
        let users = [
            json!({"id": "u1", "display_name": "DGS", "email": "dgs@meaux.fr", "role": "member_admin", "active": true}),
            json!({"id": "u2", "display_name": "Urbanisme", "email": "u@meaux.fr", "role": "member_user", "active": false}),
        ];
        let html = body(&ctx(), &users, &Fields::default(), &Errors::default());
        assert!(html.contains(r#"action="/compte/equipe/u2/retirer""#));
        assert!(!html.contains(r#"action="/compte/equipe/u1/retirer""#));
        assert!(
            html.contains("Invitation en attente") && html.contains("Administrateur") && html.contains("Utilisateur")
        );
        assert!(html.contains(r#"action="/compte/equipe""#) && html.contains(r#"<label for="courriel">"#));
    }
}
