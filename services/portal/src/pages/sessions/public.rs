//! What everyone sees of sessions, and what a member's users do there: the sessions section of an offer's page, a
//! session's page (its facts, « Ajouter à mon agenda », the registration form; for its provider's agents and the
//! coordinator the participants, the attendance and the cancellation), registering, the .ics download.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use reqwest::Method;
use serde_json::{Value, json};

use super::input::{self, MAX_PARTICIPANTS};
use super::{list_all, manage_view, manages, problem, text, view};
use crate::caller;
use crate::forms::{Errors, Fields};
use crate::html::url_component;
use crate::pages::common::{s, safe_id};
use crate::pages::prologue;
use crate::{AppState, Ctx, layout};

/// Most pages of registrations read for one session (100 a page).
const REGISTRATION_PAGES: usize = 20;

/// The sessions section of an awareness or training offer's page: its upcoming sessions with seats left, a
/// « S'inscrire » link for a member's users, « Programmer une session » for its provider's agents and the
/// coordinator. Empty for offers of another category.
pub async fn offer_section(state: &AppState, ctx: &Ctx, offer: &Value) -> String {
    if s(offer, "category") != "awareness_training" {
        return String::new();
    }
    let Some(id) = safe_id(s(offer, "id")) else { return String::new() };
    let now = chrono::Utc::now();
    let list = match list_all(state, &format!("/v1/offers/{id}/sessions?limit=100"), None, 3).await {
        Ok(sessions) => view::offer_sessions(&super::named(state, sessions).await, ctx.is_member(), now),
        Err(error) => format!("<p>Les sessions n'ont pas pu être lues : {}</p>", crate::html::esc(&problem(&error))),
    };
    let mut out = format!(r#"<section aria-labelledby="sessions-titre"><h2 id="sessions-titre">Sessions</h2>{list}"#);
    if ctx.user.is_none() {
        out.push_str(r#"<p><a href="/connexion">Connectez-vous</a> pour inscrire des élus ou des agents de votre collectivité.</p>"#);
    }
    if manages(ctx, &json!({ "provider_code": s(offer, "provider_code") })) {
        let _ = write!(
            out,
            r#"<p><a class="button secondary" href="/sessions/nouvelle?offre={}">Programmer une session de cette offre</a></p>"#,
            url_component(id)
        );
    }
    out.push_str("</section>");
    out
}

/// What a re-rendered session page shows again: the form sent and its errors.
#[derive(Default)]
pub struct Sent<'a> {
    pub registration: Option<(&'a Fields, &'a Errors)>,
    pub cancellation: Option<(&'a Fields, &'a Errors)>,
}

/// `GET /sessions/{id}`: the session's page.
pub async fn show(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    render(&state, &ctx, &id, Sent::default(), StatusCode::OK).await
}

/// The session's page, with the forms the caller may use (and a form sent back with its errors).
pub async fn render(state: &AppState, ctx: &Ctx, id: &str, sent: Sent<'_>, status: StatusCode) -> Response {
    let Some(id) = safe_id(id) else {
        return prologue::not_found(ctx, "Cette session n'existe pas.");
    };
    let token = match &ctx.user {
        Some(_) => match caller::token(state, ctx).await {
            Ok(t) => Some(t),
            Err(r) => return r,
        },
        None => None,
    };
    let session = match state.gateway.get(&format!("/v1/sessions/{id}"), token.as_deref()).await {
        Ok(session) => super::named(state, vec![session]).await.pop().unwrap_or_default(),
        Err(error) => return layout::api_error_page(ctx, &error),
    };
    let now = chrono::Utc::now();
    let href = format!("/sessions/{}", url_component(id));
    let mut body = view::facts(&session, now);
    if s(&session, "status") != "cancelled" {
        let _ = write!(
            body,
            r#"<p><a href="{href}/agenda">Ajouter à mon agenda<span class="visually-hidden"> (fichier iCalendar)</span></a> <span class="small">(fichier .ics pour Outlook, Thunderbird ou votre téléphone)</span></p>"#
        );
    }
    let open = s(&session, "status") == "scheduled" && !text::registration_closed(&session, now);
    if ctx.is_member() {
        let registrations = list_all(
            state,
            &format!("/v1/sessions/{id}/registrations?limit=100"),
            token.as_deref(),
            REGISTRATION_PAGES,
        )
        .await;
        if let Ok(registrations) = registrations.as_ref().map(|r| with_session(r, &session))
            && !registrations.is_empty()
        {
            body.push_str("<h2>Les inscriptions de votre collectivité</h2>");
            body.push_str(&view::registrations_table(
                "Participants de votre collectivité inscrits à cette session",
                &registrations,
                now,
            ));
        }
        if open {
            let empty = (Fields::new(), Errors::default());
            let (f, errors) = sent.registration.unwrap_or((&empty.0, &empty.1));
            let key = match crate::forms::value(f, "cle") {
                key if safe_id(key).is_some() => key.to_owned(),
                _ => crate::session::random_token(),
            };
            body.push_str(&view::registration_form(id, &ctx.csrf, &key, f, errors));
        } else if s(&session, "status") == "scheduled" {
            body.push_str("<p>Les inscriptions à cette session sont closes.</p>");
        }
    } else if ctx.user.is_none() && open {
        let _ = write!(
            body,
            r#"<p><a href="/connexion{}">Connectez-vous</a> pour inscrire des élus ou des agents de votre collectivité.</p>"#,
            crate::html::query(&[("suite", &href)])
        );
    }
    if manages(ctx, &session) {
        body.push_str(&management(state, ctx, &session, token.as_deref(), sent.cancellation, now).await);
    }
    let back = if manages(ctx, &session) {
        ("/sessions", "Retour à mes sessions")
    } else {
        ("/catalogue", "Retour au catalogue")
    };
    let _ = write!(body, r#"<p><a href="{}">{}</a></p>"#, back.0, back.1);
    let title = match s(&session, "offer_title") {
        "" => "Session".to_owned(),
        offer => format!("Session : {offer}"),
    };
    layout::page_with_status(ctx, status, &title, &body)
}

/// The registrations with their session (the list of one session's registrations may not repeat it, or not
/// with its commune named).
fn with_session(registrations: &[Value], session: &Value) -> Vec<Value> {
    registrations
        .iter()
        .cloned()
        .map(|mut r| {
            r["session"] = session.clone();
            r
        })
        .collect()
}

/// The provider's and the coordinator's part of a session's page: the participants, the attendance sheet and
/// form once it has started, the cancellation while it is to come.
async fn management(
    state: &AppState,
    ctx: &Ctx,
    session: &Value,
    token: Option<&str>,
    cancellation: Option<(&Fields, &Errors)>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let id = s(session, "id");
    let mut out = String::from(r#"<h2 id="participants">Participants</h2>"#);
    let registrations = match list_all(
        state,
        &format!("/v1/sessions/{}/registrations?limit=100", url_component(id)),
        token,
        REGISTRATION_PAGES,
    )
    .await
    {
        Ok(r) => with_session(&r, session),
        Err(error) => {
            let _ =
                write!(out, "<p>Les inscriptions n'ont pas pu être lues : {}</p>", crate::html::esc(&problem(&error)));
            return out;
        }
    };
    out.push_str(&manage_view::participants_table(&registrations));
    let status = s(session, "status");
    if status != "cancelled" && text::started(session, now) {
        let _ = write!(
            out,
            r#"<p><a href="/sessions/{}/feuille-de-presence">Feuille d'émargement à imprimer (PDF)</a></p>"#,
            url_component(id)
        );
        out.push_str(&manage_view::attendance_form(session, &registrations, &ctx.csrf));
    } else if status == "scheduled" {
        let _ = write!(
            out,
            r#"<p><a href="/sessions/{}/feuille-de-presence">Feuille d'émargement à imprimer (PDF)</a></p><p>Les présences pourront être saisies dès le début de la session.</p>"#,
            url_component(id)
        );
        let empty = (Fields::new(), Errors::default());
        let (f, errors) = cancellation.unwrap_or((&empty.0, &empty.1));
        out.push_str(&manage_view::cancel_form(session, &ctx.csrf, f, errors));
    }
    out
}

/// The API's field names of the participants (`participants[0].email`) and the form's fields.
fn participant_fields() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for n in 1..=MAX_PARTICIPANTS {
        let [name, function, email] = input::participant_ids(n);
        for (api, id, label) in
            [("name", name, "Nom"), ("function", function, "Fonction"), ("email", email, "Adresse électronique")]
        {
            out.push((format!("participants[{}].{api}", n - 1), id, format!("{label} du participant {n}")));
        }
    }
    out
}

/// `POST /sessions/{id}/inscription`: registers the participants of the form; the page that answers lists who
/// is confirmed and who is on the waiting list.
pub async fn register(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = caller::member_token(&state, &ctx);
    let (token, sid) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Cette session n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let participants = match input::participants(&f) {
        Ok(p) => p,
        Err(errors) => {
            return render(
                &state,
                &ctx,
                sid,
                Sent { registration: Some((&f, &errors)), ..Sent::default() },
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let key = safe_id(crate::forms::value(&f, "cle")).map(|k| format!("inscription-{k}"));
    let path = format!("/v1/sessions/{sid}/registrations");
    let body = json!({ "participants": participants });
    match state.gateway.send_json(Method::POST, &path, Some(&token), &body, key.as_deref(), None).await {
        Ok(answer) => {
            let registrations = super::list_items(&answer);
            let title = match registrations.first().map(|r| s(&r["session"], "offer_title")) {
                Some(offer) if !offer.is_empty() => format!("Inscription enregistrée : {offer}"),
                _ => "Inscription enregistrée".to_owned(),
            };
            let mut page = view::confirmation(registrations);
            let _ = write!(page, r#"<p><a href="/sessions/{}">Retour à la session</a></p>"#, url_component(sid));
            layout::page(&ctx, &title, &page)
        }
        Err(error) => {
            let fields = participant_fields();
            let refs: Vec<(&str, &str, &str)> =
                fields.iter().map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str())).collect();
            let mut errors = Errors::from_api(&error, &refs);
            if let Some(first) = errors.0.first_mut() {
                first.message = problem(&error);
            }
            render(
                &state,
                &ctx,
                sid,
                Sent { registration: Some((&f, &errors)), ..Sent::default() },
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

/// A document of the gateway passed on as a download (`fallback` names it when the gateway does not).
pub fn document(doc: crate::gateway::Download, fallback: &str) -> Response {
    let mut response = (StatusCode::OK, doc.body).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&doc.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    let disposition = doc.disposition.unwrap_or_else(|| format!("attachment; filename=\"{fallback}\""));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// `GET /sessions/{id}/agenda`: the session as an iCalendar file (with the online link for those who may see it).
pub async fn calendar(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = safe_id(&id) else {
        return prologue::not_found(&ctx, "Cette session n'existe pas.");
    };
    let token = match &ctx.user {
        Some(_) => match caller::token(&state, &ctx).await {
            Ok(t) => Some(t),
            Err(r) => return r,
        },
        None => None,
    };
    match state.gateway.download_with(&format!("/v1/sessions/{id}/calendar"), token.as_deref()).await {
        Ok(doc) => document(doc, "session.ics"),
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}
