//! « Mes inscriptions » (a member's users): their member's registrations to come and past, cancelling one (after
//! a confirmation), the attestation of a participant who attended, rating a held session, and the calendar feed
//! (its address shown once, revocable).

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde_json::{Value, json};

use super::{list_all, problem, public, text, view};
use crate::caller;
use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, url_component};
use crate::layout::{self, ERROR_FLASH, see_other};
use crate::pages::common::s;
use crate::pages::prologue;
use crate::{AppState, Ctx};

/// The page's path.
pub const PATH: &str = "/inscriptions";
/// Most pages of registrations read (100 a page).
const PAGES: usize = 10;

/// The registrations of the caller's member (every status).
async fn registrations(state: &AppState, token: &str) -> Result<Vec<Value>, crate::gateway::ApiError> {
    list_all(state, "/v1/registrations?limit=100", Some(token), PAGES).await
}

/// The body of « Mes inscriptions » (pure): to come (soonest first), past (latest first), the rating forms and
/// the calendar feed.
pub fn body(registrations: &[Value], csrf: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    let starts = |r: &Value| s(&r["session"], "starts_at").to_owned();
    let mut coming: Vec<Value> = registrations.iter().filter(|r| view::upcoming(r, now)).cloned().collect();
    let mut past: Vec<Value> = registrations.iter().filter(|r| !view::upcoming(r, now)).cloned().collect();
    coming.sort_by_key(starts);
    past.sort_by_key(|r| std::cmp::Reverse(starts(r)));
    let mut out = String::from(
        r#"<p>Les élus et agents de votre collectivité inscrits aux sessions de sensibilisation et de formation. Pour inscrire d'autres participants, choisissez une session sur la page d'une offre du <a href="/catalogue?categorie=awareness_training">catalogue</a>.</p><h2>À venir</h2>"#,
    );
    if coming.is_empty() {
        out.push_str("<p>Aucune inscription à une session à venir.</p>");
    } else {
        out.push_str(&view::registrations_table(
            "Inscriptions aux sessions à venir, les plus proches d'abord",
            &coming,
            now,
        ));
    }
    out.push_str("<h2>Passées ou annulées</h2>");
    if past.is_empty() {
        out.push_str("<p>Aucune.</p>");
    } else {
        out.push_str(&view::registrations_table(
            "Inscriptions aux sessions passées ou annulées, les plus récentes d'abord",
            &past,
            now,
        ));
    }
    out.push_str(&view::rating_forms(&past, csrf));
    out.push_str(&view::feed_section(csrf));
    out
}

/// `GET /inscriptions`.
pub async fn list(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let token = match caller::member_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match registrations(&state, &token).await {
        Ok(list) => {
            let list = super::named(&state, list).await;
            layout::page(&ctx, "Mes inscriptions", &body(&list, &ctx.csrf, chrono::Utc::now()))
        }
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}

/// The confirmation of a cancellation: who, which session, an optional reason, « Confirmer » or back.
pub fn cancel_confirmation(registration: &Value, csrf: &str, f: &Fields, errors: &Errors) -> String {
    let session = &registration["session"];
    let id = url_component(s(registration, "id"));
    let waitlisted = s(registration, "status") == "waitlisted";
    format!(
        r#"{summary}<p>Vous allez annuler l'inscription de <strong>{name}</strong> à la session « {offer} » du {when}.{freed}</p>
<form method="post" action="/inscriptions/{id}/annuler" class="form" novalidate>{csrf}{reason}<button type="submit">Confirmer l'annulation</button> <a class="button secondary" href="/inscriptions">Ne pas annuler</a></form>"#,
        summary = forms::summary(errors),
        name = esc(s(&registration["participant"], "name")),
        offer = esc(s(session, "offer_title")),
        when = esc(&text::when(s(session, "starts_at"), s(session, "ends_at"))),
        freed = if waitlisted { "" } else { " Sa place est proposée au premier participant de la liste d'attente." },
        csrf = forms::csrf(csrf),
        reason = forms::field(
            "motif",
            "Motif",
            Input::TextArea { rows: 3 },
            f.get("motif").map(String::as_str).unwrap_or(""),
            false,
            "Facultatif : transmis au partenaire.",
            errors
        ),
    )
}

/// The registration `id` of the caller's member, found in its list (the API has no single read).
async fn find(state: &AppState, ctx: &Ctx, token: &str, id: &str) -> Result<Value, Response> {
    let list = registrations(state, token).await.map_err(|error| layout::api_error_page(ctx, &error))?;
    list.into_iter().find(|r| s(r, "id") == id).ok_or_else(|| {
        prologue::not_found(ctx, "Cette inscription n'existe pas ou n'est pas celle de votre collectivité.")
    })
}

/// `GET /inscriptions/{id}/annuler`: the confirmation page.
pub async fn cancel_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let signed_in = caller::member_token(&state, &ctx);
    let (token, id) = match prologue::with_id(&ctx, signed_in, &id, "Cette inscription n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    match find(&state, &ctx, &token, id).await {
        Ok(r) if s(&r, "status") == "cancelled" => see_other(PATH),
        Ok(r) => layout::page(
            &ctx,
            "Annuler une inscription",
            &cancel_confirmation(&r, &ctx.csrf, &Fields::new(), &Errors::default()),
        ),
        Err(response) => response,
    }
}

/// `POST /inscriptions/{id}/annuler`: cancels, then back to « Mes inscriptions » with a message.
pub async fn cancel(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = caller::member_token(&state, &ctx);
    let (token, id) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Cette inscription n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let mut errors = Errors::default();
    errors.max_len(&f, "motif", "Motif", 1000);
    if errors.is_empty() {
        let body = json!({ "reason": forms::value(&f, "motif") });
        match state.gateway.post(&format!("/v1/registrations/{id}/cancel"), Some(&token), &body).await {
            Ok(r) => {
                let name = s(&r["participant"], "name");
                let done = if name.is_empty() {
                    "L'inscription est annulée.".to_owned()
                } else {
                    format!("L'inscription de {name} est annulée.")
                };
                state.sessions.update(&ctx.sid, |session| session.flash = Some(done)).await;
                return see_other(PATH);
            }
            Err(error) => {
                errors = Errors::from_api(&error, &[("reason", "motif", "Motif")]);
                if let Some(first) = errors.0.first_mut() {
                    first.message = problem(&error);
                }
            }
        }
    }
    match find(&state, &ctx, &token, id).await {
        Ok(r) => layout::page_with_status(
            &ctx,
            StatusCode::BAD_REQUEST,
            "Annuler une inscription",
            &cancel_confirmation(&r, &ctx.csrf, &f, &errors),
        ),
        Err(response) => response,
    }
}

/// `GET /inscriptions/{id}/attestation`: the attestation de présence (PDF).
pub async fn attestation(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let signed_in = caller::token(&state, &ctx);
    let (token, id) = match prologue::with_id(&ctx, signed_in, &id, "Cette attestation n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    match state.gateway.download(&format!("/v1/registrations/{id}/attestation"), &token).await {
        Ok(doc) => public::document(doc, "attestation-de-presence.pdf"),
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}

/// A score from the rating form: 1 to 5.
pub fn score(f: &Fields) -> Option<u32> {
    forms::value(f, "note").parse::<u32>().ok().filter(|n| (1..=5).contains(n))
}

/// `POST /sessions/{id}/avis`: the member's rating of a held session; back to « Mes inscriptions » with a message
/// (an error one when refused).
pub async fn rate(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = caller::member_token(&state, &ctx);
    let (token, id) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Cette session n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let comment = forms::value(&f, "commentaire");
    let message = match score(&f) {
        None => format!("{ERROR_FLASH}choisissez une note de 1 à 5 pour donner votre avis."),
        Some(_) if comment.chars().count() > 2000 => {
            format!("{ERROR_FLASH}le commentaire ne doit pas dépasser 2 000 caractères.")
        }
        Some(score) => {
            let body = json!({ "score": score, "comment": comment });
            match state.gateway.post(&format!("/v1/sessions/{id}/rating"), Some(&token), &body).await {
                Ok(_) => "Merci : votre avis est enregistré.".to_owned(),
                Err(error) => format!("{ERROR_FLASH}{}", lowercase_first(&problem(&error))),
            }
        }
    };
    state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
    see_other(&format!("{PATH}#avis"))
}

/// A sentence continued after « Erreur : ».
fn lowercase_first(sentence: &str) -> String {
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `POST /inscriptions/agenda`: issues the caller's calendar feed (a new address replaces the old one) and shows
/// its address, once.
pub async fn issue_feed(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<Fields>,
) -> Response {
    let token = match prologue::post(&ctx, &f, caller::token(&state, &ctx)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    match state.gateway.post("/v1/me/calendar-feed", Some(&token), &json!({})).await {
        Ok(feed) if !s(&feed, "url").is_empty() => {
            layout::page(&ctx, "L'adresse de votre agenda", &view::feed_issued(s(&feed, "url")))
        }
        Ok(_) => layout::error_page(
            &ctx,
            StatusCode::BAD_GATEWAY,
            "Une erreur est survenue",
            "L'adresse de l'agenda n'a pas été reçue : réessayez.",
        ),
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}

/// `POST /inscriptions/agenda/revoquer`: revokes the caller's calendar feed.
pub async fn revoke_feed(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<Fields>,
) -> Response {
    let token = match prologue::post(&ctx, &f, caller::token(&state, &ctx)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let message = match state.gateway.delete("/v1/me/calendar-feed", &token).await {
        Ok(_) => "L'adresse de votre agenda est révoquée : les abonnements ne se mettent plus à jour.".to_owned(),
        Err(error) if error.status == 404 => "Vous n'aviez pas d'adresse d'agenda active.".to_owned(),
        Err(error) => format!("{ERROR_FLASH}{}", lowercase_first(&problem(&error))),
    };
    state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
    let back = if ctx.is_member() { PATH } else { "/sessions" };
    let mut to = String::from(back);
    let _ = write!(to, "#agenda-titre");
    see_other(&to)
}
