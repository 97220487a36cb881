//! The screens, one module per audience. Each handler calls the gateway with the caller's token and renders.

mod account;
mod auth;
mod billing;
mod catalogue;
mod common;
mod conversation;
mod coordination;
mod join;
mod provider;
mod requests;
mod statistics;
mod triage;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::AppState;

/// Every screen's route; any other address gets the not-found page.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(auth::home))
        .route("/connexion", get(auth::login_form).post(auth::login))
        .route("/deconnexion", post(auth::logout))
        .route("/invitation", get(auth::invitation_form).post(auth::accept_invitation))
        .route(account::PATH, get(account::show).post(account::save))
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
        .route("/orientations/{id}/{action}", post(provider::act))
        .route("/coordination/adhesions", get(coordination::memberships))
        .route("/coordination/adhesions/{id}/valider", post(coordination::approve))
        .route("/coordination/adhesions/{id}/inviter", post(coordination::invite))
        .route("/coordination/orientations", get(coordination::referrals))
        .route("/coordination/triage", get(triage::queue))
        .route("/coordination/triage/{id}/orienter", post(triage::assign))
        .route("/coordination/statistiques", get(statistics::page))
        .route("/coordination/regles", get(coordination::rules).post(coordination::create_rule))
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
