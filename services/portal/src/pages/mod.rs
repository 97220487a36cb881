//! The screens, one module per audience. Each handler calls the gateway with the caller's token and renders.

mod account;
mod auth;
mod billing;
mod catalogue;
mod common;
mod conversation;
mod coordination;
mod directory;
mod home;
mod join;
mod legal;
mod notifications;
mod password;
mod profile;
mod prologue;
mod provider;
mod requests;
mod rules;
mod sessions;
mod statistics;
mod team;
mod triage;
pub mod unread;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::AppState;

/// Every screen's route; any other address gets the not-found page.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home::home))
        .route("/connexion", get(auth::login_form).post(auth::login))
        .route("/deconnexion", post(auth::logout))
        .route("/invitation", get(auth::invitation_form).post(auth::accept_invitation))
        .route("/activer", get(auth::invitation_form).post(auth::accept_invitation))
        .route(password::FORGOT_PATH, get(password::forgot_form).post(password::forgot))
        .route(password::NEW_PATH, get(password::new_form).post(password::set_new))
        .route(password::CHANGE_PATH, get(password::change_form).post(password::change))
        .route(team::PATH, get(team::show).post(team::invite))
        .route("/compte/equipe/{id}/retirer", post(team::remove))
        .route(profile::PATH, get(profile::show))
        .route(account::PATH, get(account::show).post(account::save))
        .route(notifications::PATH, get(notifications::list))
        .route("/notifications/tout-lire", post(notifications::read_all))
        .route("/notifications/{id}/ouvrir", post(notifications::open))
        .route("/adherer", get(join::search))
        .route("/adherer/{siren}", get(join::form).post(join::apply))
        .route("/catalogue", get(catalogue::search))
        .route("/offres/{id}", get(catalogue::offer))
        .route("/demandes", get(requests::list).post(requests::submit))
        .route("/demandes/nouvelle", get(requests::new_form))
        .route("/demandes/{id}", get(requests::detail))
        .route("/demandes/{id}/annuler", post(requests::cancel))
        .route("/demandes/{id}/avis", post(requests::give_feedback))
        .route("/demandes/{id}/devis/{devis}/{action}", post(requests::decide_quote))
        .route("/demandes/{id}/messages", post(conversation::post_message))
        .route(
            "/demandes/{id}/pieces",
            post(conversation::upload).layer(DefaultBodyLimit::max(conversation::MAX_UPLOAD_BODY_BYTES)),
        )
        .route("/demandes/{id}/pieces/{piece}", get(conversation::download))
        .route("/factures", get(billing::list))
        .route("/factures/{file}", get(billing::download))
        .route("/devis/{file}", get(billing::download_quote))
        .route("/avoirs/{file}", get(billing::download_credit_note))
        .route("/orientations", get(provider::list))
        .route("/orientations/{id}", get(provider::detail))
        .route("/orientations/{id}/{action}", get(provider::confirm).post(provider::act))
        .route("/coordination/adhesions", get(coordination::memberships))
        .route("/coordination/adhesions/{id}/valider", post(coordination::approve))
        .route("/coordination/adhesions/{id}/refuser", post(coordination::refuse))
        .route("/coordination/adhesions/{id}/inviter", post(coordination::invite))
        .route("/coordination/orientations", get(coordination::referrals))
        .route("/coordination/triage", get(triage::queue))
        .route("/coordination/triage/{id}/orienter", post(triage::assign))
        .route("/coordination/statistiques", get(statistics::page))
        .route("/sessions", get(sessions::manage::list))
        .route("/sessions/nouvelle", get(sessions::manage::new_form).post(sessions::manage::schedule))
        .route("/sessions/{id}", get(sessions::public::show))
        .route("/sessions/{id}/inscription", post(sessions::public::register))
        .route("/sessions/{id}/agenda", get(sessions::public::calendar))
        .route("/sessions/{id}/annuler", post(sessions::manage::cancel))
        .route("/sessions/{id}/presences", post(sessions::manage::attendance))
        .route("/sessions/{id}/feuille-de-presence", get(sessions::manage::sheet))
        .route("/sessions/{id}/avis", post(sessions::mine::rate))
        .route(sessions::mine::PATH, get(sessions::mine::list))
        .route("/inscriptions/agenda", post(sessions::mine::issue_feed))
        .route("/inscriptions/agenda/revoquer", post(sessions::mine::revoke_feed))
        .route("/inscriptions/{id}/annuler", get(sessions::mine::cancel_form).post(sessions::mine::cancel))
        .route("/inscriptions/{id}/attestation", get(sessions::mine::attestation))
        .route(sessions::stats::PATH, get(sessions::stats::page))
        .route(rules::PATH, get(rules::rules).post(rules::create_rule))
        .route("/coordination/regles/{id}", get(rules::edit_form).post(rules::update_rule))
        .route("/coordination/regles/{id}/{action}", post(rules::act))
        .route(legal::LEGAL_PATH, get(legal::legal))
        .route(legal::ACCESSIBILITY_PATH, get(legal::accessibility))
        .route(legal::SITE_MAP_PATH, get(legal::site_map_page))
        .route(legal::CONTACT_PATH, get(legal::contact))
        .fallback(not_found)
}

/// The router's fallback: a page that says the address leads nowhere.
async fn not_found(axum::Extension(ctx): axum::Extension<crate::Ctx>) -> axum::response::Response {
    crate::layout::error_page(
        &ctx,
        axum::http::StatusCode::NOT_FOUND,
        "Page introuvable",
        "Cette page n'existe pas. Vérifiez l'adresse ou revenez à l'accueil.",
    )
}
