//! What a member (or the coordinator) does on a request's page: decide on a quote, cancel the request, give
//! feedback. Each answers a redirect with a one-time message, or the page again with the errors.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use reqwest::Method;
use serde_json::json;

use super::detail::render_detail;
use super::quotes::{QUOTE_FIELDS, acceptance, quote_problem, refusal};
use crate::caller;
use crate::forms::{self, Errors, Fields};
use crate::html::url_component;
use crate::layout::{self, ERROR_FLASH, see_other};
use crate::pages::common::safe_id;
use crate::pages::prologue;
use crate::{AppState, Ctx, fr};

/// The feedback form's input: a rating 1 to 5 and an optional comment (2000 characters at most).
pub fn feedback(f: &Fields) -> Result<(u32, String), String> {
    let rating = match forms::value(f, "note").parse::<u32>() {
        Ok(r) if (1..=5).contains(&r) => r,
        _ => return Err("Choisissez une note de 1 à 5.".into()),
    };
    let comment = forms::value(f, "commentaire");
    if comment.chars().count() > 2000 {
        return Err("Le commentaire ne doit pas dépasser 2000 caractères.".into());
    }
    Ok((rating, comment.to_owned()))
}

/// `POST /demandes/{id}/devis/{devis}/accepter` or `…/refuser` (a member admin): the decision goes to the
/// gateway; accepted, back to the request's page with a confirmation; refused by the portal or the gateway, the
/// page again with the errors next to the fields.
pub async fn decide_quote(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, quote, action)): Path<(String, String, String)>,
    Form(f): Form<Fields>,
) -> Response {
    let token = match prologue::post(&ctx, &f, caller::member_token(&state, &ctx)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let (Some(id), Some(quote)) = (safe_id(&id), safe_id(&quote)) else {
        return prologue::not_found(&ctx, "Ce devis n'existe pas.");
    };
    let (path, body, done) = match action.as_str() {
        "accepter" => (
            "accept",
            acceptance(&f),
            "Vous avez accepté le devis : le partenaire en est informé et peut commencer la prestation.",
        ),
        "refuser" => (
            "refuse",
            refusal(&f),
            "Vous avez refusé le devis : la demande va être annulée et le partenaire en sera informé.",
        ),
        _ => return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Page introuvable", "Cette action n'existe pas."),
    };
    let errors = match body {
        Err(errors) => errors,
        Ok(body) => match state.gateway.post(&format!("/v1/quotes/{quote}/{path}"), Some(&token), &body).await {
            Ok(_) => {
                state.sessions.update(&ctx.sid, |session| session.flash = Some(done.to_owned())).await;
                return see_other(&format!("/demandes/{}", url_component(id)));
            }
            Err(error) => {
                let mut errors = Errors::from_api(&error, &QUOTE_FIELDS);
                if let Some(first) = errors.0.first_mut() {
                    first.message = quote_problem(&error);
                }
                errors
            }
        },
    };
    render_detail(&state, &ctx, id, &f, &errors, StatusCode::BAD_REQUEST).await
}

/// `POST /demandes/{id}/annuler` (a member's users or the coordinator).
pub async fn cancel(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = caller::token(&state, &ctx);
    let (token, id) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Cette demande n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let reason = forms::value(&f, "motif");
    let message = if reason.chars().count() > 1000 {
        format!("{}Le motif ne doit pas dépasser 1000 caractères.", ERROR_FLASH)
    } else {
        match state.gateway.post(&format!("/v1/requests/{id}/cancel"), Some(&token), &json!({ "reason": reason })).await
        {
            Ok(_) => "La demande est annulée.".to_owned(),
            Err(error) => format!("{}{}", ERROR_FLASH, fr::problem(&error)),
        }
    };
    state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
    see_other(&format!("/demandes/{}", url_component(id)))
}

/// `POST /demandes/{id}/avis`: a member's rating (1 to 5) and comment on a completed request.
pub async fn give_feedback(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = caller::member_token(&state, &ctx);
    let (token, id) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Cette demande n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let message = match feedback(&f) {
        Err(message) => format!("{}{message}", ERROR_FLASH),
        Ok((rating, comment)) => {
            let body = json!({ "rating": rating, "comment": comment });
            match state
                .gateway
                .send_json(Method::PUT, &format!("/v1/requests/{id}/feedback"), Some(&token), &body, None, None)
                .await
            {
                Ok(_) => "Merci : votre avis est enregistré.".to_owned(),
                Err(error) => format!("{}{}", ERROR_FLASH, fr::problem(&error)),
            }
        }
    };
    state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
    see_other(&format!("/demandes/{}", url_component(id)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::requests::detail::cancellable;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn feedback_is_one_to_five_with_a_bounded_comment() {
        assert_eq!(feedback(&fields(&[("note", "4"), ("commentaire", " Très bien ")])), Ok((4, "Très bien".into())));
        for bad in ["0", "6", "", "quatre"] {
            assert_eq!(feedback(&fields(&[("note", bad)])), Err("Choisissez une note de 1 à 5.".into()), "{bad}");
        }
        assert!(feedback(&fields(&[("note", "5"), ("commentaire", &"x".repeat(2001))])).is_err());
        assert!(
            cancellable("referred")
                && cancellable("in_progress")
                && !cancellable("completed")
                && !cancellable("cancelled")
        );
    }
}
