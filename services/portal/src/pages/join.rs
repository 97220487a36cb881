//! Adhérer: find one's commune, EPCI or syndicat in the directory, then apply (public).

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use id77_proto::vocabulary::MemberKind;
use serde_json::json;

use super::common::{items, s, safe_id};
use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, query, url_component};
use crate::pages::prologue;
use crate::{AppState, Ctx, fr, layout};

/// The options of the kind filter: any kind, then each kind of collectivité.
fn kinds() -> Vec<(String, String)> {
    std::iter::once((String::new(), "Tous les types".to_owned()))
        .chain(MemberKind::ALL.iter().map(|k| (k.as_str().to_owned(), fr::member_kind_label(*k).to_owned())))
        .collect()
}

pub async fn search(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<Fields>,
) -> Response {
    let text = forms::value(&q, "q");
    let kind = forms::value(&q, "type");
    let kind = MemberKind::parse(kind).map_or("", MemberKind::as_str);
    let no_errors = Errors::default();
    let mut body = format!(
        r#"<p>L'adhésion à ID 77 est gratuite. Recherchez votre collectivité dans l'annuaire de Seine-et-Marne, puis indiquez la personne à contacter : la coordination valide la demande et invite le premier administrateur.</p>
<form method="get" action="/adherer" class="form search" role="search" aria-label="Rechercher une collectivité">
{q}{kind}
<button type="submit">Rechercher</button>
</form>"#,
        q = forms::field(
            "q",
            "Nom, code postal ou SIREN",
            Input::Text { kind: "search", autocomplete: "off" },
            text,
            false,
            "Par exemple : Meaux, 77100 ou 217702844.",
            &no_errors
        ),
        kind = forms::field("type", "Type de collectivité", Input::Select(&kinds()), kind, false, "", &no_errors),
    );
    if ctx.is_member() {
        // A member's user is already a member: colleagues are invited, not applied for.
        let team = if ctx.is("member_admin") {
            r#" Pour donner accès à un collègue, invitez-le depuis <a href="/compte/equipe">Mon équipe</a>."#
        } else {
            " Pour obtenir un accès pour un collègue, adressez-vous à l'administrateur de votre collectivité."
        };
        body.insert_str(
            0,
            &format!(r#"<div class="notice" role="note"><p>Votre collectivité est déjà adhérente.{team}</p></div>"#),
        );
    }
    if !text.is_empty() {
        let path = format!(
            "/v1/collectivities{}",
            query(&[("q", text), ("kind", kind), ("limit", "20")]).replace("&amp;", "&")
        );
        match state.gateway.get(&path, None).await {
            Ok(page) => {
                let found = items(&page);
                let _ = write!(
                    body,
                    r#"<h2 id="resultats">Résultats</h2><p role="status">{} collectivité{} trouvée{}.</p>"#,
                    found.len(),
                    if found.len() > 1 { "s" } else { "" },
                    if found.len() > 1 { "s" } else { "" }
                );
                if !found.is_empty() {
                    body.push_str(r#"<table><caption>Collectivités correspondant à votre recherche</caption><thead><tr><th scope="col">Nom</th><th scope="col">Type</th><th scope="col">SIREN</th><th scope="col">Population</th><th scope="col">Action</th></tr></thead><tbody>"#);
                    for c in found {
                        let _ = write!(
                            body,
                            r#"<tr><th scope="row">{name}</th><td>{kind}</td><td>{siren}</td><td>{pop}</td><td><a href="/adherer/{link}">Adhérer<span class="visually-hidden"> pour {name}</span></a></td></tr>"#,
                            name = esc(s(c, "name")),
                            kind = esc(fr::collectivity_kind(s(c, "kind"))),
                            siren = esc(s(c, "siren")),
                            pop = c["population"].as_i64().map(fr::number).unwrap_or_default(),
                            link = url_component(s(c, "siren")),
                        );
                    }
                    body.push_str("</tbody></table>");
                }
            }
            Err(error) => {
                let _ = write!(
                    body,
                    r#"<div class="error-summary" role="alert"><p>{}</p></div>"#,
                    esc(&fr::problem(&error))
                );
            }
        }
    }
    layout::page(&ctx, "Adhérer à ID 77", &body)
}

fn form_body(ctx: &Ctx, collectivity: &serde_json::Value, f: &Fields, errors: &Errors) -> String {
    format!(
        r#"<dl class="facts"><dt>Collectivité</dt><dd>{name}</dd><dt>Type</dt><dd>{kind}</dd><dt>SIREN</dt><dd>{siren}</dd></dl>
{summary}<form method="post" action="/adherer/{link}" novalidate class="form narrow">{csrf}
{contact}{email}
<button type="submit">Envoyer la demande d'adhésion</button>
</form>"#,
        name = esc(s(collectivity, "name")),
        kind = esc(fr::collectivity_kind(s(collectivity, "kind"))),
        siren = esc(s(collectivity, "siren")),
        link = url_component(s(collectivity, "siren")),
        summary = forms::summary(errors),
        csrf = forms::csrf(&ctx.csrf),
        contact = forms::field(
            "contact",
            "Nom de la personne à contacter",
            Input::Text { kind: "text", autocomplete: "name" },
            forms::value(f, "contact"),
            true,
            "Par exemple : Secrétariat général, ou le nom du maire.",
            errors
        ),
        email = forms::field(
            "courriel",
            "Adresse électronique de contact",
            Input::Text { kind: "email", autocomplete: "email" },
            forms::value(f, "courriel"),
            true,
            "L'invitation à créer le compte y sera envoyée.",
            errors
        ),
    )
}

async fn collectivity(state: &AppState, ctx: &Ctx, siren: &str) -> Result<serde_json::Value, Response> {
    let Some(siren) = safe_id(siren) else {
        return Err(prologue::not_found(ctx, "Cette collectivité n'est pas dans l'annuaire."));
    };
    state.gateway.get(&format!("/v1/collectivities/{siren}"), None).await.map_err(|e| layout::api_error_page(ctx, &e))
}

pub async fn form(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(siren): Path<String>,
) -> Response {
    match collectivity(&state, &ctx, &siren).await {
        Ok(c) => layout::page(&ctx, "Demande d'adhésion", &form_body(&ctx, &c, &Fields::new(), &Errors::default())),
        Err(r) => r,
    }
}

pub async fn apply(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(siren): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let c = match prologue::post(&ctx, &f, collectivity(&state, &ctx, &siren)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let mut errors = Errors::default();
    errors.required(&f, "contact", "Nom de la personne à contacter", 200);
    errors.email(&f, "courriel", "Adresse électronique de contact");
    if errors.is_empty() {
        let body = json!({ "siren": s(&c, "siren"), "contact_name": forms::value(&f, "contact"), "contact_email": forms::value(&f, "courriel") });
        match state.gateway.post("/v1/memberships", None, &body).await {
            Ok(member) => {
                let body = format!(
                    r#"<div class="notice success" role="status"><p>La demande d'adhésion de <strong>{}</strong> est enregistrée ({}).</p></div>
<p>La coordination ID 77 va l'examiner. Une fois l'adhésion validée, la personne à contacter recevra une invitation pour créer son compte et se connecter.</p>
<p><a href="/catalogue">Parcourir le catalogue en attendant</a></p>"#,
                    esc(s(&member, "name")),
                    esc(fr::member_status(s(&member, "status")))
                );
                return layout::page(&ctx, "Demande d'adhésion envoyée", &body);
            }
            Err(error) => {
                errors = Errors::from_api(
                    &error,
                    &[
                        ("contact_name", "contact", "Nom de la personne à contacter"),
                        ("contact_email", "courriel", "Adresse électronique de contact"),
                    ],
                );
            }
        }
    }
    layout::page_with_status(&ctx, StatusCode::BAD_REQUEST, "Demande d'adhésion", &form_body(&ctx, &c, &f, &errors))
}
