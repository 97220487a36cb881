//! A provider's agent: the referrals sent to its provider, with their deadlines, and one referral's request.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{items, s, safe_id};
use crate::html::{esc, url_component};
use crate::{AppState, Ctx, fr, layout};

fn agents_only(ctx: &Ctx) -> Option<Response> {
    (!ctx.is("provider_agent")).then(|| {
        layout::error_page(
            ctx,
            StatusCode::FORBIDDEN,
            "Accès réservé",
            "Cette page est réservée aux agents des partenaires.",
        )
    })
}

/// The referrals table (shared with the coordinator's view).
pub fn referrals_table(caption: &str, referrals: &[serde_json::Value], link_prefix: &str) -> String {
    let mut body = format!(
        r#"<table><caption>{}</caption><thead><tr><th scope="col">Orientation</th><th scope="col">Partenaire</th><th scope="col">Statut</th><th scope="col">Reçue le</th><th scope="col">Répondre avant le</th><th scope="col">Tentative</th></tr></thead><tbody>"#,
        esc(caption)
    );
    for r in referrals {
        let overdue = !s(r, "escalated_at").is_empty() && s(r, "status") == "offered";
        let link = if link_prefix.is_empty() {
            esc(&s(r, "id").chars().take(8).collect::<String>())
        } else {
            format!(
                r#"<a href="{link_prefix}{}">Orientation {}</a>"#,
                url_component(s(r, "id")),
                esc(&s(r, "id").chars().take(8).collect::<String>())
            )
        };
        let _ = write!(
            body,
            r#"<tr><th scope="row">{link}</th><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>"#,
            esc(s(r, "provider_code")),
            esc(fr::referral_status(s(r, "status"))),
            esc(&fr::datetime(s(r, "offered_at"))),
            esc(&fr::datetime(s(r, "respond_by"))),
            if overdue { r#" <strong class="warn">(échéance dépassée)</strong>"# } else { "" },
            r["attempt"].as_i64().unwrap_or(1),
        );
    }
    body.push_str("</tbody></table>");
    body
}

pub async fn list(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let token = match crate::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = agents_only(&ctx) {
        return r;
    }
    let page = match state.gateway.get("/v1/referrals?limit=100", Some(&token)).await {
        Ok(p) => p,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let referrals = items(&page);
    let open: Vec<_> = referrals.iter().filter(|r| s(r, "status") == "offered").cloned().collect();
    let others: Vec<_> = referrals.iter().filter(|r| s(r, "status") != "offered").cloned().collect();
    let mut body = String::from(
        "<p>Les demandes des collectivités que la coordination vous a confiées. Répondez avant la date limite : passé ce délai, la demande est orientée ailleurs.</p><h2>À traiter</h2>",
    );
    if open.is_empty() {
        body.push_str("<p>Aucune orientation en attente de réponse.</p>");
    } else {
        body.push_str(&referrals_table("Orientations en attente de votre réponse", &open, "/orientations/"));
    }
    body.push_str("<h2>Déjà traitées</h2>");
    if others.is_empty() {
        body.push_str("<p>Aucune.</p>");
    } else {
        body.push_str(&referrals_table(
            "Orientations acceptées, déclinées, expirées ou retirées",
            &others,
            "/orientations/",
        ));
    }
    layout::page(&ctx, "Orientations reçues", &body)
}

pub async fn detail(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    let token = match crate::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = agents_only(&ctx) {
        return r;
    }
    let Some(id) = safe_id(&id) else {
        return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Introuvable", "Cette orientation n'existe pas.");
    };
    let referral = match state.gateway.get(&format!("/v1/referrals/{id}"), Some(&token)).await {
        Ok(r) => r,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let request = match safe_id(s(&referral, "request_id")) {
        Some(rid) => state.gateway.get(&format!("/v1/requests/{rid}"), Some(&token)).await.ok(),
        None => None,
    };
    let mut body = format!(
        r#"<dl class="facts">
<dt>Statut</dt><dd>{status}</dd>
<dt>Reçue le</dt><dd>{offered}</dd>
<dt>Répondre avant le</dt><dd>{respond_by}</dd>
<dt>Comment elle vous a été confiée</dt><dd>{assignment}</dd>
</dl>"#,
        status = esc(fr::referral_status(s(&referral, "status"))),
        offered = esc(&fr::datetime(s(&referral, "offered_at"))),
        respond_by = esc(&fr::datetime(s(&referral, "respond_by"))),
        assignment = esc(if s(&referral, "assignment").is_empty() { "—" } else { s(&referral, "assignment") }),
    );
    if let Some(request) = &request {
        let _ = write!(
            body,
            "<h2>La demande</h2><dl class=\"facts\"><dt>Objet</dt><dd>{}</dd><dt>Déposée le</dt><dd>{}</dd></dl><p>{}</p>",
            esc(s(request, "subject")),
            esc(&fr::datetime(s(request, "submitted_at"))),
            crate::html::multiline(s(request, "description"))
        );
    }
    if !s(&referral, "progress").is_empty() {
        let _ = write!(body, "<h2>Avancement</h2><p>{}</p>", esc(s(&referral, "progress")));
    }
    body.push_str(r#"<p><a href="/orientations">Retour aux orientations</a></p>"#);
    layout::page(&ctx, "Orientation", &body)
}
