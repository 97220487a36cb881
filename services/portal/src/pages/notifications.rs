//! « Notifications » (`/notifications`): the caller's own notifications (one per mail notice it was sent, newest
//! first, `GET /v1/notifications`), each linking to its page; reading one marks it read (`POST
//! /v1/notifications/{id}/read`), a button marks them all read. The header shows the unread count
//! (« Notifications (3) »): see [`super::unread`].

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::{Extension, Form};
use serde_json::{Value, json};

use super::common::{items, s, safe_id};
use crate::caller;
use crate::forms::{self, Fields};
use crate::html::{esc, query, query_tail};
use crate::layout::see_other;
use crate::pages::prologue;
use crate::{AppState, Ctx, forms::csrf, fr, layout};

pub use super::unread::PATH;
const TITLE: &str = "Notifications";

/// What a kind of notification is about, in French.
fn kind_label(kind: &str) -> &str {
    match kind {
        "status_changed" => "Suivi d'une demande",
        "message_posted" => "Nouveau message",
        "quote_proposed" => "Devis proposé",
        "quote_accepted" => "Devis accepté",
        "request_cancelled" => "Demande annulée",
        "referral_offered" => "Nouvelle demande à traiter",
        "referral_reminder" => "Réponse attendue bientôt",
        "referral_escalated" => "Demande sans réponse",
        "member_applied" => "Demande d'adhésion",
        _ => "Notification",
    }
}

/// A link inside the portal only (`/…`, not `//…`); otherwise none.
fn internal(link: &str) -> Option<&str> {
    (link.starts_with('/') && !link.starts_with("//") && !link.contains('\\')).then_some(link)
}

/// The list of notifications (one page of them) and the link to the next page.
/// The list of notifications with the providers named (`names`: code → name; a mail written by a service that
/// knows only codes says « Partenaire : caue77 »).
fn render(ctx: &Ctx, page: &Value, names: &HashMap<String, String>) -> String {
    let unread = page["unread_count"].as_u64().unwrap_or(0);
    let mut body = match unread {
        0 => "<p>Vous n'avez aucune notification non lue.</p>".to_owned(),
        1 => "<p>Vous avez <strong>1</strong> notification non lue.</p>".to_owned(),
        n => format!("<p>Vous avez <strong>{n}</strong> notifications non lues.</p>"),
    };
    if unread > 0 {
        let _ = write!(
            body,
            r#"<form method="post" action="{PATH}/tout-lire">{}<button type="submit" class="secondary">Tout marquer comme lu</button></form>"#,
            csrf(&ctx.csrf)
        );
    }
    let list = items(page);
    if list.is_empty() {
        body.push_str("<p>Aucune notification pour le moment.</p>");
    } else {
        body.push_str(r#"<ul class="notifications">"#);
        for n in list {
            let read = !n["read_at"].is_null();
            let state = if read { "Lue" } else { "Non lue" };
            let open = match (safe_id(s(n, "id")), internal(s(n, "link_path"))) {
                (Some(id), Some(_)) => format!(
                    r#"<form method="post" action="{PATH}/{id}/ouvrir" class="inline">{}<button type="submit" class="secondary">Ouvrir<span class="visually-hidden"> : {}</span></button></form>"#,
                    csrf(&ctx.csrf),
                    esc(s(n, "subject"))
                ),
                _ => String::new(),
            };
            let _ = write!(
                body,
                r#"<li class="{cls}"><h2>{subject}</h2><p><strong>{state}</strong> · {kind} · {at}</p><p>{text}</p>{open}</li>"#,
                cls = if read { "read" } else { "unread" },
                subject = esc(&fr::with_names(s(n, "subject"), names)),
                kind = esc(kind_label(s(n, "kind"))),
                at = esc(&fr::datetime(s(n, "created_at"))),
                text = crate::html::multiline(fr::with_names(s(n, "body"), names).trim()),
            );
        }
        body.push_str("</ul>");
    }
    if let Some(next) = page["next_cursor"].as_str().filter(|c| !c.is_empty()) {
        let _ =
            write!(body, r#"<p><a href="{PATH}{}">Notifications plus anciennes</a></p>"#, query(&[("suite", next)]));
    }
    body
}

/// `GET /notifications`.
pub async fn list(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Query(q): Query<Fields>) -> Response {
    let token = match caller::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let path = format!("/v1/notifications?limit=20{}", query_tail("cursor", forms::value(&q, "suite")));
    match state.gateway.get(&path, Some(&token)).await {
        Ok(page) => {
            let names = super::provider::provider_names(&state, &token).await;
            layout::page(&ctx, TITLE, &render(&ctx, &page, &names))
        }
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}

/// `POST /notifications/{id}/ouvrir`: marks it read, then goes to its page.
pub async fn open(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = caller::token(&state, &ctx);
    let (token, id) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Cette notification n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    if let Err(error) = state.gateway.post(&format!("/v1/notifications/{id}/read"), Some(&token), &json!({})).await {
        return layout::api_error_page(&ctx, &error);
    }
    // The link of the notification, read again from the list (never from the form).
    let link = match state.gateway.get("/v1/notifications?limit=100", Some(&token)).await {
        Ok(page) => {
            items(&page).iter().find(|n| s(n, "id") == id).and_then(|n| internal(s(n, "link_path")).map(str::to_owned))
        }
        Err(_) => None,
    };
    see_other(link.as_deref().unwrap_or(PATH))
}

/// `POST /notifications/tout-lire`.
pub async fn read_all(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<Fields>,
) -> Response {
    let token = match prologue::post(&ctx, &f, caller::token(&state, &ctx)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    match state.gateway.post("/v1/notifications/read-all", Some(&token), &json!({})).await {
        Ok(_) => {
            let message = "Toutes vos notifications sont marquées comme lues.".to_owned();
            state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
            see_other(PATH)
        }
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_links_inside_the_portal_only_and_says_what_is_unread() {
        let ctx = crate::layout::tests::ctx(Some("provider_agent"), PATH);
        let page = json!({
            "items": [
                {"id": "0193f6a2-1c2b-7d3e-9f00-123456789abc", "kind": "referral_offered", "subject": "Nouvelle <demande>",
                 "body": "Bonjour,\nUne demande.\nPartenaire : caue77", "link_path": "/orientations/x", "created_at": "2026-12-06T10:00:00Z",
                 "read_at": null},
                {"id": "0193f6a2-1c2b-7d3e-9f00-123456789abd", "kind": "member_applied", "subject": "Adhésion",
                 "body": "", "link_path": "//ailleurs.example", "created_at": "2026-12-05T10:00:00Z",
                 "read_at": "2026-12-05T11:00:00Z"}
            ],
            "next_cursor": "abc",
            "unread_count": 1
        });
        let names: HashMap<String, String> = [("caue77".to_owned(), "CAUE 77".to_owned())].into();
        let html = render(&ctx, &page, &names);
        assert!(html.contains("Partenaire : CAUE 77") && !html.contains("caue77"), "providers by name: {html}");
        assert!(html.contains("Vous avez <strong>1</strong> notification non lue."));
        assert!(html.contains("Nouvelle &lt;demande&gt;"));
        assert!(html.contains("Non lue</strong> · Nouvelle demande à traiter"));
        assert!(html.contains(r#"action="/notifications/0193f6a2-1c2b-7d3e-9f00-123456789abc/ouvrir""#));
        assert!(!html.contains("0193f6a2-1c2b-7d3e-9f00-123456789abd/ouvrir"), "no link out of the portal");
        assert!(html.contains(r#"action="/notifications/tout-lire""#));
        assert!(html.contains(r#"href="/notifications?suite=abc""#));
        assert!(html.contains("Une demande."));
        let empty = render(&ctx, &json!({"items": [], "unread_count": 0}), &HashMap::new());
        assert!(empty.contains("Aucune notification pour le moment."));
        assert!(!empty.contains("tout-lire"));
    }
}
