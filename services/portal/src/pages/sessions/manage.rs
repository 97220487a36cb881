//! The provider's agents and the coordinator: « Mes sessions » (everyone else sees the upcoming sessions there),
//! scheduling a session, cancelling one, recording attendance, the attendance sheet to print.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};

use super::public::{self, Sent};
use super::{input, list_all, manage_view, manages, problem, schedules, text};
use crate::caller;
use crate::forms::{self, Errors, Fields};
use crate::html::url_component;
use crate::layout::{self, ERROR_FLASH, see_other};
use crate::pages::common::{items, s, safe_id};
use crate::pages::prologue;
use crate::{AppState, Ctx};

/// Most pages of sessions read for the list (100 a page).
const PAGES: usize = 10;
/// How far back « Mes sessions » looks for past sessions.
const PAST_DAYS: i64 = 365;

/// `GET /sessions`: « Mes sessions » of a provider's agents (the coordinator: every session), in three parts; the
/// upcoming sessions for everyone else.
pub async fn list(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let now = Utc::now();
    if !schedules(&ctx) {
        let token = match &ctx.user {
            Some(_) => match caller::token(&state, &ctx).await {
                Ok(t) => Some(t),
                Err(r) => return r,
            },
            None => None,
        };
        return match list_all(&state, "/v1/sessions?limit=100", token.as_deref(), 3).await {
            Ok(sessions) if sessions.is_empty() => {
                layout::page(&ctx, "Sessions à venir", "<p>Aucune session n'est programmée pour le moment.</p>")
            }
            Ok(sessions) => {
                let sessions = super::named(&state, sessions).await;
                let table =
                    manage_view::sessions_table("Sessions de sensibilisation et de formation à venir", &sessions, true);
                layout::page(&ctx, "Sessions à venir", &table)
            }
            Err(error) => layout::api_error_page(&ctx, &error),
        };
    }
    let token = match caller::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let from = text::rfc3339(now - chrono::Duration::days(PAST_DAYS));
    let every = format!("/v1/sessions?status=scheduled,held,cancelled&from={}&limit=100", url_component(&from));
    let sessions = match list_all(&state, &every, Some(&token), PAGES).await {
        Ok(sessions) => sessions,
        // Should the gateway refuse the filter, the upcoming ones at least.
        Err(error) if error.status == 400 => {
            match list_all(&state, "/v1/sessions?limit=100", Some(&token), PAGES).await {
                Ok(sessions) => sessions,
                Err(error) => return layout::api_error_page(&ctx, &error),
            }
        }
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let sessions = super::named(&state, sessions).await;
    let coordinator = ctx.is("coordinator");
    let (mut coming, mut to_record, mut past) = manage_view::split(&sessions, now);
    let starts = |v: &Value| s(v, "starts_at").to_owned();
    coming.sort_by_key(starts);
    to_record.sort_by_key(starts);
    past.sort_by_key(|v| std::cmp::Reverse(starts(v)));
    let mut body = String::from(
        r#"<p>Les sessions de sensibilisation et de formation, leurs inscrits et leur liste d'attente. Ouvrez une session pour voir ses participants, imprimer la feuille d'émargement, saisir les présences ou l'annuler.</p><p><a class="button" href="/sessions/nouvelle">Programmer une session</a></p>"#,
    );
    for (title, caption, list, empty) in [
        (
            "Présences à saisir",
            "Sessions commencées dont les présences ne sont pas encore saisies",
            &to_record,
            "Aucune session en attente de présences.",
        ),
        ("À venir", "Sessions à venir, les plus proches d'abord", &coming, "Aucune session à venir."),
        ("Passées ou annulées", "Sessions tenues ou annulées, les plus récentes d'abord", &past, "Aucune."),
    ] {
        let _ = write!(body, "<h2>{title}</h2>");
        if list.is_empty() {
            let _ = write!(body, "<p>{empty}</p>");
        } else {
            body.push_str(&manage_view::sessions_table(caption, list, coordinator));
        }
    }
    layout::page(&ctx, if coordinator { "Sessions de formation" } else { "Mes sessions" }, &body)
}

/// The caller's token if it may schedule sessions; `Err` is the answer to give instead.
async fn manager_token(state: &AppState, ctx: &Ctx) -> Result<String, Response> {
    let token = caller::token(state, ctx).await?;
    if schedules(ctx) {
        Ok(token)
    } else {
        Err(layout::error_page(
            ctx,
            StatusCode::FORBIDDEN,
            "Accès réservé",
            "Cette page est réservée aux agents des partenaires et à la coordination.",
        ))
    }
}

/// The awareness and training offers the caller may schedule sessions of, as (id, label): its provider's (the
/// coordinator: all, with their provider's name).
async fn offers(state: &AppState, ctx: &Ctx, token: &str) -> Vec<(String, String)> {
    let provider = ctx.user.as_ref().and_then(|u| u.provider_code.clone()).unwrap_or_default();
    let coordinator = ctx.is("coordinator");
    let query = crate::html::query(&[
        ("category", "awareness_training"),
        ("provider", if coordinator { "" } else { &provider }),
        ("limit", "100"),
    ])
    .replace("&amp;", "&");
    let path = format!("/v1/offers{query}");
    let (page, names) =
        tokio::join!(state.gateway.get(&path, Some(token)), crate::pages::provider::provider_names(state, token),);
    let mut out: Vec<(String, String)> = page
        .map(|page| {
            items(&page)
                .iter()
                .filter(|o| safe_id(s(o, "id")).is_some())
                .map(|o| {
                    let label = match names.get(s(o, "provider_code")) {
                        Some(name) if coordinator => format!("{} — {name}", s(o, "title")),
                        _ => s(o, "title").to_owned(),
                    };
                    (s(o, "id").to_owned(), label)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by_cached_key(|(_, label)| super::sort_key(label));
    out
}

/// The schedule form's page.
async fn schedule_page(
    state: &AppState,
    ctx: &Ctx,
    token: &str,
    f: &Fields,
    errors: &Errors,
    status: StatusCode,
) -> Response {
    let (offers, communes) = tokio::join!(offers(state, ctx, token), super::communes(state));
    let key = match forms::value(f, "cle") {
        key if safe_id(key).is_some() => key.to_owned(),
        _ => crate::session::random_token(),
    };
    let form = manage_view::schedule_form(&offers, &communes, &ctx.csrf, &key, f, errors);
    let intro = if offers.is_empty() {
        "<p>Aucune offre de sensibilisation ou de formation de votre organisme n'est publiée au catalogue : il n'y a pas de session à programmer.</p>"
    } else {
        "<p>Les heures sont celles de Paris. Les collectivités adhérentes verront la session sur la page de l'offre et pourront y inscrire leurs élus et agents.</p>"
    };
    layout::page_with_status(ctx, status, "Programmer une session", &format!("{intro}{form}"))
}

/// `GET /sessions/nouvelle` (`?offre=` chooses the offer).
pub async fn new_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<Fields>,
) -> Response {
    let token = match manager_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut f = Fields::new();
    if let Some(offer) = safe_id(forms::value(&q, "offre")) {
        f.insert(input::OFFER.0.into(), offer.to_owned());
    }
    f.insert(input::MODE.0.into(), "presentiel".into());
    schedule_page(&state, &ctx, &token, &f, &Errors::default(), StatusCode::OK).await
}

/// `POST /sessions/nouvelle`: schedules the session, then its page.
pub async fn schedule(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<Fields>,
) -> Response {
    let token = match prologue::post(&ctx, &f, manager_token(&state, &ctx)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let plan = match input::schedule(&f, Utc::now()) {
        Ok(plan) => plan,
        Err(errors) => return schedule_page(&state, &ctx, &token, &f, &errors, StatusCode::BAD_REQUEST).await,
    };
    let key = safe_id(forms::value(&f, "cle")).map(|k| format!("session-{k}"));
    let path = format!("/v1/offers/{}/sessions", url_component(&plan.offer_id));
    match state.gateway.send_json(Method::POST, &path, Some(&token), &plan.body, key.as_deref(), None).await {
        Ok(session) => {
            let message = format!(
                "La session du {} est programmée.",
                text::when(s(&session, "starts_at"), s(&session, "ends_at"))
            );
            state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
            see_other(&manage_view::back_to(s(&session, "id"), ""))
        }
        Err(error) => {
            let mut errors = Errors::from_api(&error, input::API_FIELDS);
            if let Some(first) = errors.0.first_mut() {
                first.message = problem(&error);
            }
            schedule_page(&state, &ctx, &token, &f, &errors, StatusCode::BAD_REQUEST).await
        }
    }
}

/// The session `id` for a management action: the caller's token and the session, if the caller manages it.
async fn managed(state: &AppState, ctx: &Ctx, id: &str) -> Result<(String, String, Value), Response> {
    let (token, id) = prologue::with_id(ctx, manager_token(state, ctx), id, "Cette session n'existe pas.").await?;
    let session = state
        .gateway
        .get(&format!("/v1/sessions/{id}"), Some(&token))
        .await
        .map_err(|e| layout::api_error_page(ctx, &e))?;
    if !manages(ctx, &session) {
        return Err(layout::error_page(
            ctx,
            StatusCode::FORBIDDEN,
            "Accès refusé",
            "Cette session est celle d'un autre partenaire.",
        ));
    }
    Ok((token, id.to_owned(), session))
}

/// `POST /sessions/{id}/annuler`: cancels the session with a reason (every participant is told).
pub async fn cancel(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let (token, id, _) = match prologue::post(&ctx, &f, managed(&state, &ctx, &id)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let mut errors = Errors::default();
    errors.required(&f, "motif", "Motif de l'annulation", 1000);
    if errors.is_empty() {
        let body = json!({ "reason": forms::value(&f, "motif") });
        match state.gateway.post(&format!("/v1/sessions/{id}/cancel"), Some(&token), &body).await {
            Ok(_) => {
                let done =
                    "La session est annulée : les participants inscrits en sont prévenus par courriel.".to_owned();
                state.sessions.update(&ctx.sid, |session| session.flash = Some(done)).await;
                return see_other(&manage_view::back_to(&id, ""));
            }
            Err(error) => {
                errors = Errors::from_api(&error, &[("reason", "motif", "Motif de l'annulation")]);
                if let Some(first) = errors.0.first_mut() {
                    first.message = problem(&error);
                }
            }
        }
    }
    let sent = Sent { cancellation: Some((&f, &errors)), ..Sent::default() };
    public::render(&state, &ctx, &id, sent, StatusCode::BAD_REQUEST).await
}

/// `POST /sessions/{id}/presences`: who came (the ticked confirmed participants); back to the session's page.
pub async fn attendance(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let (token, id, _) = match prologue::post(&ctx, &f, managed(&state, &ctx, &id)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let registrations =
        match list_all(&state, &format!("/v1/sessions/{id}/registrations?limit=100"), Some(&token), 20).await {
            Ok(r) => r,
            Err(error) => return layout::api_error_page(&ctx, &error),
        };
    let attended = manage_view::attended_ids(&f, &registrations);
    let count = attended.len();
    let body = json!({ "attended_registration_ids": attended });
    let message = match state.gateway.post(&format!("/v1/sessions/{id}/attendance"), Some(&token), &body).await {
        Ok(_) => match count {
            0 => "Les présences sont enregistrées : aucun participant présent.".to_owned(),
            1 => "Les présences sont enregistrées : 1 participant présent.".to_owned(),
            n => format!("Les présences sont enregistrées : {n} participants présents."),
        },
        Err(error) => format!("{ERROR_FLASH}les présences n'ont pas été enregistrées. {}", problem(&error)),
    };
    state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
    see_other(&manage_view::back_to(&id, "#presences"))
}

/// `GET /sessions/{id}/feuille-de-presence`: the attendance sheet to print and sign (PDF).
pub async fn sheet(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    let signed_in = manager_token(&state, &ctx);
    let (token, id) = match prologue::with_id(&ctx, signed_in, &id, "Cette session n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    match state.gateway.download(&format!("/v1/sessions/{id}/attendance-sheet"), &token).await {
        Ok(doc) => public::document(doc, "feuille-d-emargement.pdf"),
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}
