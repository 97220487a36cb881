//! The coordinator: membership approvals (and the first admin's invitation) and referrals (at risk first); the
//! routing rules are in [`super::rules`].

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde_json::json;

use super::common::{items, s};
use crate::caller;
use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, query, url_component};
use crate::layout::see_other;
use crate::pages::prologue;
use crate::{AppState, Ctx, fr, layout};

fn statuses() -> Vec<(String, String)> {
    ["pending", "active", "refused", "suspended", "withdrawn"]
        .iter()
        .map(|v| ((*v).to_owned(), fr::member_status(v).to_owned()))
        .collect()
}

pub async fn memberships(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<Fields>,
) -> Response {
    let token = match caller::coordinator_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let status = match forms::value(&q, "statut") {
        s @ ("pending" | "active" | "refused" | "suspended" | "withdrawn") => s,
        _ => "pending",
    };
    let page = match state.gateway.get(&format!("/v1/memberships?status={status}&limit=100"), Some(&token)).await {
        Ok(p) => p,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let no_errors = Errors::default();
    let mut body = format!(
        r#"<form method="get" action="/coordination/adhesions" class="form search">{}<button type="submit">Afficher</button></form>"#,
        forms::field("statut", "Statut des adhésions", Input::Select(&statuses()), status, false, "", &no_errors)
    );
    let members = items(&page);
    let _ = write!(body, r#"<h2>Adhésions : {}</h2>"#, esc(fr::member_status(status)));
    if members.is_empty() {
        body.push_str("<p>Aucune adhésion dans cet état.</p>");
    } else {
        let _ = write!(
            body,
            r#"<table><caption>Adhésions ({})</caption><thead><tr><th scope="col">Collectivité</th><th scope="col">Type</th><th scope="col">Contact</th><th scope="col">Demandée le</th><th scope="col">Action</th></tr></thead><tbody>"#,
            esc(fr::member_status(status))
        );
        for m in members {
            let id = url_component(s(m, "id"));
            let name = esc(s(m, "name"));
            let action = match s(m, "status") {
                "pending" => format!(
                    r#"<form method="post" action="/coordination/adhesions/{id}/valider" class="inline">{csrf}<button type="submit">Valider<span class="visually-hidden"> l'adhésion de {name}</span></button></form>
<form method="post" action="/coordination/adhesions/{id}/refuser" class="inline-fields">{csrf}
<label for="motif-{id}">Motif du refus<span class="visually-hidden"> de {name}</span></label><input type="text" id="motif-{id}" name="motif" maxlength="1000" required>
<button type="submit" class="secondary">Refuser<span class="visually-hidden"> l'adhésion de {name}</span></button></form>"#,
                    csrf = forms::csrf(&ctx.csrf)
                ),
                "refused" => format!("Refusée : {}", esc(s(m, "refusal_reason"))),
                "active" => format!(
                    r#"<form method="post" action="/coordination/adhesions/{id}/inviter" class="inline-fields">{csrf}
<label for="nom-{id}">Nom de l'administrateur</label><input type="text" id="nom-{id}" name="nom" value="{contact}" required>
<label for="courriel-{id}">Adresse électronique</label><input type="email" id="courriel-{id}" name="courriel" value="{email}" required>
<button type="submit">Inviter l'administrateur<span class="visually-hidden"> de {name}</span></button></form>"#,
                    csrf = forms::csrf(&ctx.csrf),
                    contact = esc(s(m, "contact_name")),
                    email = esc(s(m, "contact_email")),
                ),
                _ => "—".to_owned(),
            };
            let _ = write!(
                body,
                r#"<tr><th scope="row">{name}<br><span class="small">SIREN {}</span></th><td>{}</td><td>{}<br><span class="small">{}</span></td><td>{}</td><td>{action}</td></tr>"#,
                esc(s(m, "siren")),
                esc(fr::collectivity_kind(s(m, "kind"))),
                esc(s(m, "contact_name")),
                esc(s(m, "contact_email")),
                esc(&fr::datetime(s(m, "applied_at"))),
            );
        }
        body.push_str("</tbody></table>");
    }
    layout::page(&ctx, "Adhésions", &body)
}

pub async fn approve(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = caller::coordinator_token(&state, &ctx);
    let (token, id) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Cette adhésion n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    match state.gateway.post(&format!("/v1/memberships/{id}/approve"), Some(&token), &json!({})).await {
        Ok(member) => {
            let message =
                format!("L'adhésion de {} est validée. Invitez maintenant son administrateur.", s(&member, "name"));
            state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
            see_other("/coordination/adhesions?statut=active")
        }
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}

/// `POST /coordination/adhesions/{id}/refuser`: refuses a pending application with the reason typed (mailed to
/// its contact).
pub async fn refuse(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = caller::coordinator_token(&state, &ctx);
    let (token, id) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Cette adhésion n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let reason = forms::value(&f, "motif").trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        let message = "Indiquez le motif du refus (1 à 1000 caractères) : il est envoyé au contact de la collectivité.";
        return layout::error_page(&ctx, StatusCode::BAD_REQUEST, "Motif du refus manquant", message);
    }
    let path = format!("/v1/memberships/{id}/refuse");
    match state.gateway.post(&path, Some(&token), &json!({ "reason": reason })).await {
        Ok(member) => {
            let message =
                format!("L'adhésion de {} est refusée ; son contact en est informé par courriel.", s(&member, "name"));
            state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
            see_other("/coordination/adhesions?statut=refused")
        }
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}

pub async fn invite(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = caller::coordinator_token(&state, &ctx);
    let (token, id) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Cette adhésion n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let mut errors = Errors::default();
    errors.required(&f, "nom", "Nom de l'administrateur", 200);
    errors.email(&f, "courriel", "Adresse électronique");
    if errors.is_empty() {
        let body = json!({ "email": forms::value(&f, "courriel"), "display_name": forms::value(&f, "nom"), "role": "member_admin", "member_id": id });
        match state.gateway.post("/v1/users", Some(&token), &body).await {
            Ok(invitation) => {
                let link = format!("/invitation{}", query(&[("jeton", s(&invitation, "invitation_token"))]));
                let body = format!(
                    r#"<div class="notice success" role="status"><p>{} est invité comme administrateur de la collectivité.</p></div>
<p>Un courriel avec son lien d'activation vient de lui être envoyé. Si besoin, transmettez-lui ce lien (valable jusqu'au {}) :</p>
<p class="token"><a href="{link}" id="lien-invitation">Lien d'activation du compte</a></p>
<p><a href="/coordination/adhesions">Retour aux adhésions</a></p>"#,
                    esc(forms::value(&f, "courriel")),
                    esc(&fr::datetime(s(&invitation, "expires_at"))),
                );
                return layout::page(&ctx, "Invitation envoyée", &body);
            }
            Err(error) => errors = Errors::from_api(&error, &[]),
        }
    }
    let body = format!(
        r#"{}<p><a href="/coordination/adhesions?statut=active">Retour aux adhésions actives</a></p>"#,
        forms::summary(&errors)
    );
    layout::page_with_status(&ctx, StatusCode::BAD_REQUEST, "Invitation impossible", &body)
}

pub async fn referrals(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<Fields>,
) -> Response {
    let token = match caller::coordinator_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let at_risk = forms::value(&q, "a_risque") == "1";
    let path = if at_risk { "/v1/referrals?at_risk=true&limit=100" } else { "/v1/referrals?limit=100" };
    let page = match state.gateway.get(path, Some(&token)).await {
        Ok(p) => p,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let mut body = format!(
        r#"<p><a href="/coordination/orientations?a_risque=1"{}>Orientations à risque</a> · <a href="/coordination/orientations"{}>Toutes les orientations</a></p>"#,
        if at_risk { r#" aria-current="page""# } else { "" },
        if at_risk { "" } else { r#" aria-current="page""# }
    );
    let referrals = items(&page);
    let _ = write!(
        body,
        "<h2>{}</h2>",
        if at_risk { "Sans réponse après la date de relance" } else { "Toutes les orientations" }
    );
    if referrals.is_empty() {
        body.push_str(if at_risk {
            "<p>Aucune orientation à risque : tous les partenaires ont répondu à temps.</p>"
        } else {
            "<p>Aucune orientation.</p>"
        });
    } else {
        body.push_str(&crate::pages::provider::referrals_table(
            if at_risk { "Orientations à risque" } else { "Orientations" },
            referrals,
            crate::pages::provider::ReferralLink::Request,
        ));
    }
    layout::page(&ctx, if at_risk { "Orientations à risque" } else { "Orientations" }, &body)
}
