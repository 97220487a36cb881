//! « Mes demandes »: the member's requests, newest first, with their unread messages.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;

use crate::caller;
use crate::html::{esc, url_component};
use crate::layout;
use crate::pages::common::{items, s};
use crate::pages::conversation;
use crate::{AppState, Ctx, fr};

pub async fn list(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let token = match caller::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = caller::members_only(&ctx) {
        return r;
    }
    let page = match state.gateway.get("/v1/requests?limit=100", Some(&token)).await {
        Ok(p) => p,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let requests = items(&page);
    let ids: Vec<String> = requests.iter().map(|r| s(r, "id").to_owned()).collect();
    let unread = conversation::unread_counts(&state, &token, &ids).await;
    let mut body = String::from(
        r#"<p><a class="button" href="/catalogue">Déposer une nouvelle demande depuis le catalogue</a> <a class="button secondary" href="/demandes/nouvelle">Je ne sais pas quelle offre choisir</a></p>"#,
    );
    if requests.is_empty() {
        body.push_str("<p>Votre collectivité n'a encore déposé aucune demande.</p>");
    } else {
        body.push_str(r#"<table><caption>Demandes de votre collectivité, les plus récentes d'abord</caption><thead><tr><th scope="col">Objet</th><th scope="col">Statut</th><th scope="col">Partenaire</th><th scope="col">Déposée le</th><th scope="col">Messages non lus</th></tr></thead><tbody>"#);
        for (r, unread) in requests.iter().zip(unread) {
            let unread = match unread {
                Some(0) => "0".to_owned(),
                Some(n) => {
                    format!(r#"<strong class="unread">{n}<span class="visually-hidden"> non lu(s)</span></strong>"#)
                }
                None => "—".to_owned(),
            };
            let _ = write!(
                body,
                r#"<tr><th scope="row"><a href="/demandes/{id}">{subject}</a></th><td><span class="status status-{cls}">{status}</span></td><td>{provider}</td><td>{at}</td><td>{unread}</td></tr>"#,
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
