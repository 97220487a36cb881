//! A member's requests: file one for an offer, list them, follow one (status, history, quotes, invoices).

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use reqwest::Method;
use serde_json::{Value, json};

use super::{items, s, safe_id};
use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, url_component};
use crate::session::random_token;
use crate::{AppState, Ctx, check_csrf, fr, layout, see_other};

fn members_only(ctx: &Ctx) -> Option<Response> {
    // Without a user, crate::token has already sent the caller to the login page.
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

fn new_body(ctx: &Ctx, offer: &Value, f: &Fields, key: &str, errors: &Errors) -> String {
    format!(
        r#"<p>Offre : <a href="/offres/{link}">{title}</a></p>
{summary}<form method="post" action="/demandes" novalidate class="form">{csrf}
<input type="hidden" name="offre" value="{id}"><input type="hidden" name="cle" value="{key}">
{subject}{description}
<button type="submit">Envoyer la demande</button>
</form>"#,
        link = url_component(s(offer, "id")),
        title = esc(s(offer, "title")),
        id = esc(s(offer, "id")),
        key = esc(key),
        summary = forms::summary(errors),
        csrf = forms::csrf(&ctx.csrf),
        subject = forms::field(
            "objet",
            "Objet de la demande",
            Input::Text { kind: "text", autocomplete: "off" },
            forms::value(f, "objet"),
            true,
            "En une phrase, par exemple : Réfection de la voirie du centre-bourg.",
            errors
        ),
        description = forms::field(
            "description",
            "Description du besoin",
            Input::TextArea { rows: 6 },
            f.get("description").map(String::as_str).unwrap_or(""),
            false,
            "Contexte, calendrier, lieu concerné : tout ce qui aidera le partenaire.",
            errors
        ),
    )
}

async fn load_offer(state: &AppState, ctx: &Ctx, id: &str) -> Result<Value, Response> {
    let Some(id) = safe_id(id) else {
        return Err(layout::error_page(ctx, StatusCode::NOT_FOUND, "Introuvable", "Cette offre n'existe pas."));
    };
    state.gateway.get(&format!("/v1/offers/{id}"), None).await.map_err(|e| layout::api_error_page(ctx, &e))
}

pub async fn new_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<Fields>,
) -> Response {
    if let Err(r) = crate::token(&state, &ctx).await {
        return r;
    }
    if let Some(r) = members_only(&ctx) {
        return r;
    }
    match load_offer(&state, &ctx, forms::value(&q, "offre")).await {
        Ok(offer) => layout::page(
            &ctx,
            "Déposer une demande",
            &new_body(&ctx, &offer, &Fields::new(), &random_token(), &Errors::default()),
        ),
        Err(r) => r,
    }
}

pub async fn submit(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<Fields>) -> Response {
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    let token = match crate::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = members_only(&ctx) {
        return r;
    }
    let offer = match load_offer(&state, &ctx, forms::value(&f, "offre")).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    // The key of this form: a double submission (or a retry) files one request.
    let key =
        Some(forms::value(&f, "cle")).filter(|k| safe_id(k).is_some()).map(str::to_owned).unwrap_or_else(random_token);
    let mut errors = Errors::default();
    errors.required(&f, "objet", "Objet de la demande", 200);
    errors.max_len(&f, "description", "Description du besoin", 10_000);
    if errors.is_empty() {
        let body = json!({
            "offer_id": s(&offer, "id"),
            "subject": forms::value(&f, "objet"),
            "description": f.get("description").map(|d| d.trim()).unwrap_or(""),
        });
        match state.gateway.send_json(Method::POST, "/v1/requests", Some(&token), &body, Some(&key), None).await {
            Ok(request) => {
                state.sessions.update(&ctx.sid, |session| {
                    session.flash =
                        Some("Votre demande est envoyée. Elle va être orientée vers le partenaire compétent.".into())
                });
                return see_other(&format!("/demandes/{}", url_component(s(&request, "id"))));
            }
            Err(error) => {
                errors = Errors::from_api(
                    &error,
                    &[
                        ("subject", "objet", "Objet de la demande"),
                        ("description", "description", "Description du besoin"),
                    ],
                );
            }
        }
    }
    layout::page_with_status(
        &ctx,
        StatusCode::BAD_REQUEST,
        "Déposer une demande",
        &new_body(&ctx, &offer, &f, &key, &errors),
    )
}

pub async fn list(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let token = match crate::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = members_only(&ctx) {
        return r;
    }
    let page = match state.gateway.get("/v1/requests?limit=100", Some(&token)).await {
        Ok(p) => p,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let requests = items(&page);
    let mut body = String::from(
        r#"<p><a class="button" href="/catalogue">Déposer une nouvelle demande depuis le catalogue</a></p>"#,
    );
    if requests.is_empty() {
        body.push_str("<p>Votre collectivité n'a encore déposé aucune demande.</p>");
    } else {
        body.push_str(r#"<table><caption>Demandes de votre collectivité, les plus récentes d'abord</caption><thead><tr><th scope="col">Objet</th><th scope="col">Statut</th><th scope="col">Partenaire</th><th scope="col">Déposée le</th></tr></thead><tbody>"#);
        for r in requests {
            let _ = write!(
                body,
                r#"<tr><th scope="row"><a href="/demandes/{id}">{subject}</a></th><td><span class="status status-{cls}">{status}</span></td><td>{provider}</td><td>{at}</td></tr>"#,
                id = url_component(s(r, "id")),
                subject = esc(s(r, "subject")),
                cls = esc(s(r, "status")),
                status = esc(fr::request_status(s(r, "status"))),
                provider = esc(if s(r, "provider_code").is_empty() { "—" } else { s(r, "provider_code") }),
                at = esc(&fr::datetime(s(r, "submitted_at"))),
            );
        }
        body.push_str("</tbody></table>");
    }
    layout::page(&ctx, "Mes demandes", &body)
}

pub async fn detail(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    let token = match crate::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(id) = safe_id(&id) else {
        return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Introuvable", "Cette demande n'existe pas.");
    };
    let request = match state.gateway.get(&format!("/v1/requests/{id}"), Some(&token)).await {
        Ok(r) => r,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let offer_title = match safe_id(s(&request, "offer_id")) {
        Some(offer) => {
            state.gateway.get(&format!("/v1/offers/{offer}"), None).await.ok().map(|o| s(&o, "title").to_owned())
        }
        None => None,
    };
    let mut body = format!(
        r#"<dl class="facts">
<dt>Statut</dt><dd><span class="status status-{cls}">{status}</span></dd>
<dt>Offre</dt><dd>{offer}</dd>
<dt>Partenaire</dt><dd>{provider}</dd>
<dt>Déposée le</dt><dd>{at}</dd>
</dl>
<h2>Description</h2><p>{description}</p>
<h2>Historique</h2>
<table><caption>Étapes de la demande, de la plus ancienne à la plus récente</caption><thead><tr><th scope="col">Date</th><th scope="col">Statut</th><th scope="col">Précision</th></tr></thead><tbody>"#,
        cls = esc(s(&request, "status")),
        status = esc(fr::request_status(s(&request, "status"))),
        offer = match offer_title {
            Some(title) =>
                format!(r#"<a href="/offres/{}">{}</a>"#, url_component(s(&request, "offer_id")), esc(&title)),
            None => esc(s(&request, "offer_id")),
        },
        provider = esc(if s(&request, "provider_code").is_empty() {
            "pas encore orientée"
        } else {
            s(&request, "provider_code")
        }),
        at = esc(&fr::datetime(s(&request, "submitted_at"))),
        description = crate::html::multiline(if s(&request, "description").is_empty() {
            "—"
        } else {
            s(&request, "description")
        }),
    );
    for change in request["history"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&fr::datetime(s(change, "at"))),
            esc(fr::request_status(s(change, "status"))),
            esc(if s(change, "reason").is_empty() { "—" } else { s(change, "reason") })
        );
    }
    body.push_str("</tbody></table>");
    if ctx.is_member() || ctx.is("coordinator") || ctx.is("referent") {
        let quotes =
            state.gateway.get(&format!("/v1/quotes?request_id={id}"), Some(&token)).await.unwrap_or(Value::Null);
        let invoices =
            state.gateway.get(&format!("/v1/invoices?request_id={id}"), Some(&token)).await.unwrap_or(Value::Null);
        body.push_str("<h2>Devis et factures</h2>");
        body.push_str(&super::billing::tables(items(&quotes), items(&invoices)));
    }
    layout::page(&ctx, &format!("Demande : {}", s(&request, "subject")), &body)
}
