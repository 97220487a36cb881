//! « Mes demandes »: the member's requests, newest first (the API's order), with their unread messages, in three
//! views chosen by links (no script): « En cours », « Terminées » and « Toutes ».

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use serde_json::Value;

use crate::caller;
use crate::forms::Fields;
use crate::html::{esc, url_component};
use crate::layout;
use crate::pages::common::{items, s};
use crate::pages::conversation;
use crate::{AppState, Ctx, fr};

/// The three views of the list: the `vue` query parameter, the link's text and the table's caption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Open,
    Done,
    All,
}

impl View {
    const ALL: [View; 3] = [View::Open, View::Done, View::All];

    /// The view a `vue` parameter names (« Toutes » when absent or unknown).
    pub fn parse(raw: Option<&str>) -> Self {
        match raw {
            Some("en-cours") => View::Open,
            Some("terminees") => View::Done,
            _ => View::All,
        }
    }

    fn param(self) -> &'static str {
        match self {
            View::Open => "en-cours",
            View::Done => "terminees",
            View::All => "toutes",
        }
    }

    fn label(self) -> &'static str {
        match self {
            View::Open => "En cours",
            View::Done => "Terminées",
            View::All => "Toutes",
        }
    }

    /// Whether a request in this status belongs to the view: finished means completed, closed, cancelled or
    /// declined; everything else is still going on.
    pub fn keeps(self, status: &str) -> bool {
        let finished = matches!(status, "completed" | "closed" | "cancelled" | "declined");
        match self {
            View::Open => !finished,
            View::Done => finished,
            View::All => true,
        }
    }
}

/// The links between the views, the current one marked for assistive technologies.
pub fn tabs(current: View, counts: [usize; 3]) -> String {
    let mut html = String::from(r#"<nav aria-label="Filtrer les demandes"><ul class="tabs">"#);
    for (view, count) in View::ALL.into_iter().zip(counts) {
        let current = if view == current { r#" aria-current="page""# } else { "" };
        let _ = write!(
            html,
            r#"<li><a href="/demandes?vue={}"{current}>{} ({count})</a></li>"#,
            view.param(),
            view.label()
        );
    }
    html.push_str("</ul></nav>");
    html
}

/// The status as a badge: its words, and a class for its colour.
pub fn status_badge(status: &str) -> String {
    let tone = match status {
        "completed" | "closed" => "ok",
        "cancelled" | "declined" => "ko",
        _ => "info",
    };
    format!(r#"<span class="status-badge status-{tone}">{}</span>"#, esc(fr::request_status(status)))
}

/// The table of the requests kept by the view, in the order given (the API's: newest first).
pub fn table(view: View, requests: &[Value], unread: &[Option<u64>]) -> String {
    let rows: Vec<(&Value, Option<u64>)> = requests
        .iter()
        .zip(unread.iter().copied().chain(std::iter::repeat(None)))
        .filter(|(r, _)| view.keeps(s(r, "status")))
        .collect();
    if rows.is_empty() {
        return match view {
            View::Open => "<p>Aucune demande en cours.</p>".to_owned(),
            View::Done => "<p>Aucune demande terminée.</p>".to_owned(),
            View::All => "<p>Votre collectivité n'a encore déposé aucune demande.</p>".to_owned(),
        };
    }
    let mut body = format!(
        r#"<table><caption>Demandes de votre collectivité ({}), les plus récentes d'abord</caption><thead><tr><th scope="col">Objet</th><th scope="col">Statut</th><th scope="col">Partenaire</th><th scope="col">Déposée le</th><th scope="col">Messages non lus</th></tr></thead><tbody>"#,
        view.label().to_lowercase()
    );
    for (r, unread) in rows {
        let unread = match unread {
            Some(0) => "0".to_owned(),
            Some(n) => format!(r#"<strong class="unread">{n}<span class="visually-hidden"> non lu(s)</span></strong>"#),
            None => "—".to_owned(),
        };
        let provider = match s(r, "provider_name") {
            "" => s(r, "provider_code"),
            name => name,
        };
        let _ = write!(
            body,
            r#"<tr><th scope="row"><a href="/demandes/{id}">{subject}</a></th><td>{status}</td><td>{provider}</td><td>{at}</td><td>{unread}</td></tr>"#,
            id = url_component(s(r, "id")),
            subject = esc(if s(r, "subject").is_empty() { "Demande sans objet" } else { s(r, "subject") }),
            status = status_badge(s(r, "status")),
            provider = esc(if provider.is_empty() { "—" } else { provider }),
            at = esc(&fr::datetime(s(r, "submitted_at"))),
        );
    }
    body.push_str("</tbody></table>");
    body
}

pub async fn list(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Query(q): Query<Fields>) -> Response {
    let token = match caller::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = caller::members_only(&ctx) {
        return r;
    }
    let view = View::parse(q.get("vue").map(String::as_str));
    let page = match state.gateway.get("/v1/requests?limit=100", Some(&token)).await {
        Ok(p) => p,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let mut requests = items(&page).to_vec();
    // The API answers newest first; sort again so that the page never depends on it.
    requests.sort_by(|a, b| s(b, "submitted_at").cmp(s(a, "submitted_at")));
    let names = crate::pages::provider::provider_names(&state, &token).await;
    for r in &mut requests {
        if let Some(name) = names.get(s(r, "provider_code")) {
            r["provider_name"] = Value::String(name.clone());
        }
    }
    let shown: Vec<&Value> = requests.iter().filter(|r| view.keeps(s(r, "status"))).collect();
    let ids: Vec<String> = shown.iter().map(|r| s(r, "id").to_owned()).collect();
    let unread = conversation::unread_counts(&state, &token, &ids).await;
    let shown: Vec<Value> = shown.into_iter().cloned().collect();
    let counts = View::ALL.map(|v| requests.iter().filter(|r| v.keeps(s(r, "status"))).count());
    let mut body = String::from(
        r#"<p><a class="button" href="/catalogue">Déposer une nouvelle demande depuis le catalogue</a> <a class="button secondary" href="/demandes/nouvelle">Je ne sais pas quelle offre choisir</a></p>"#,
    );
    body.push_str(&tabs(view, counts));
    body.push_str(&table(view, &shown, &unread));
    layout::page(&ctx, "Mes demandes", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn requests() -> Vec<Value> {
        vec![
            json!({"id": "r3", "subject": "Récente", "status": "in_progress", "submitted_at": "2026-12-03T10:00:00Z", "provider_code": "caue77", "provider_name": "CAUE de Seine-et-Marne"}),
            json!({"id": "r2", "subject": "Finie", "status": "completed", "submitted_at": "2026-12-02T10:00:00Z"}),
            json!({"id": "r1", "subject": "Ancienne", "status": "submitted", "submitted_at": "2026-12-01T10:00:00Z"}),
        ]
    }

    #[test]
    fn the_views_split_open_and_finished_requests_and_keep_the_newest_first() {
        let all = table(View::All, &requests(), &[Some(0), Some(2), None]);
        let (recent, old) = (all.find("Récente"), all.find("Ancienne"));
        assert!(recent.is_some() && old.is_some() && recent < old, "newest first: {all}");
        assert!(all.contains("CAUE de Seine-et-Marne") && !all.contains(">caue77<"), "the provider's name");
        let open = table(View::Open, &requests(), &[Some(0), None]);
        assert!(open.contains("Récente") && open.contains("Ancienne") && !open.contains("Finie"), "{open}");
        let done = table(View::Done, &requests(), &[]);
        assert!(done.contains("Finie") && !done.contains("Récente"), "{done}");
        assert!(done.contains(r#"<span class="status-badge status-ok">Terminée</span>"#), "a badge with words");
        assert_eq!(table(View::Done, &[], &[]), "<p>Aucune demande terminée.</p>");
        assert_eq!(View::parse(None), View::All);
        assert_eq!(View::parse(Some("en-cours")), View::Open);
        assert_eq!(View::parse(Some("terminees")), View::Done);
        assert_eq!(View::parse(Some("<script>")), View::All);
    }

    #[test]
    fn the_tabs_are_links_with_the_current_one_marked() {
        let html = tabs(View::Done, [2, 1, 3]);
        assert!(html.contains(r#"<a href="/demandes?vue=en-cours">En cours (2)</a>"#), "{html}");
        assert!(html.contains(r#"<a href="/demandes?vue=terminees" aria-current="page">Terminées (1)</a>"#), "{html}");
        assert!(html.contains(r#"<a href="/demandes?vue=toutes">Toutes (3)</a>"#), "{html}");
        assert!(!html.contains("<script") && !html.contains("style="));
    }
}
