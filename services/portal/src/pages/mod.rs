//! The screens, one module per audience. Each handler calls the gateway with the caller's token and renders.

mod account;
mod auth;
mod billing;
mod catalogue;
mod conversation;
mod coordination;
mod join;
mod provider;
mod requests;
mod statistics;
mod triage;

pub use account::PATH as NOTIFICATIONS_PATH;
pub use conversation::ERROR_FLASH;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use serde_json::Value;

use crate::AppState;

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

async fn not_found(axum::Extension(ctx): axum::Extension<crate::Ctx>) -> axum::response::Response {
    crate::layout::error_page(
        &ctx,
        axum::http::StatusCode::NOT_FOUND,
        "Page introuvable",
        "Cette page n'existe pas. Vérifiez l'adresse ou revenez à l'accueil.",
    )
}

/// A string field of a JSON value ("" when absent or not a string).
pub fn s<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or("")
}

/// The items of a page answered by the gateway.
pub fn items(value: &Value) -> &[Value] {
    value["items"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// A non-empty id usable in a gateway path (UUIDs, codes, SIREN): letters, digits, `-` and `_` only.
pub fn safe_id(id: &str) -> Option<&str> {
    (!id.is_empty() && id.len() <= 100 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_in_gateway_paths_cannot_change_the_path() {
        assert_eq!(safe_id("0193f6a2-1c2b-7d3e-9f00-123456789abc"), Some("0193f6a2-1c2b-7d3e-9f00-123456789abc"));
        assert_eq!(safe_id("caue77"), Some("caue77"));
        for bad in ["", "../v1/users", "a/b", "a?b=c", "a%2F", &"x".repeat(101)] {
            assert_eq!(safe_id(bad), None, "{bad}");
        }
    }
}
