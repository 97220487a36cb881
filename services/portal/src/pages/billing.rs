//! Quotes and invoices (the member's own, or those a provider issued), and invoice downloads proxied from the
//! gateway (Factur-X XML, CSV) with the caller's token.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{items, s, safe_id};
use crate::html::{esc, url_component};
use crate::{AppState, Ctx, fr, layout};

/// The quotes and invoices tables (shared with a request's page).
pub fn tables(quotes: &[Value], invoices: &[Value]) -> String {
    let mut body = String::new();
    if quotes.is_empty() {
        body.push_str("<p>Aucun devis.</p>");
    } else {
        body.push_str(r#"<table><caption>Devis</caption><thead><tr><th scope="col">Numéro</th><th scope="col">Objet</th><th scope="col">Montant</th><th scope="col">Émis le</th></tr></thead><tbody>"#);
        for q in quotes {
            let _ = write!(
                body,
                r#"<tr><th scope="row">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                esc(s(q, "number")),
                esc(s(q, "label")),
                esc(&fr::euros(q["amount_cents"].as_i64().unwrap_or(0))),
                esc(&fr::datetime(s(q, "issued_at")))
            );
        }
        body.push_str("</tbody></table>");
    }
    if invoices.is_empty() {
        body.push_str("<p>Aucune facture.</p>");
    } else {
        body.push_str(r#"<table><caption>Factures</caption><thead><tr><th scope="col">Numéro</th><th scope="col">Statut</th><th scope="col">Montant TTC</th><th scope="col">Échéance</th><th scope="col">Téléchargements</th></tr></thead><tbody>"#);
        for i in invoices {
            let id = url_component(s(i, "id"));
            let number = esc(s(i, "number"));
            let _ = write!(
                body,
                r#"<tr><th scope="row">{number}</th><td>{}</td><td>{}</td><td>{}</td><td><a href="/factures/{id}.xml" download>Factur-X (XML)<span class="visually-hidden"> de la facture {number}</span></a> · <a href="/factures/{id}.csv" download>Tableur (CSV)<span class="visually-hidden"> de la facture {number}</span></a></td></tr>"#,
                esc(fr::invoice_status(s(i, "status"))),
                esc(&fr::euros(i["total_gross_cents"].as_i64().unwrap_or(0))),
                esc(&fr::date(s(i, "due_date"))),
            );
        }
        body.push_str("</tbody></table>");
    }
    body
}

pub async fn list(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let token = match crate::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if !(ctx.is_member() || ctx.is("provider_agent") || ctx.is("coordinator")) {
        return layout::error_page(
            &ctx,
            StatusCode::FORBIDDEN,
            "Accès réservé",
            "Vous n'avez pas accès aux devis et factures.",
        );
    }
    let quotes = match state.gateway.get("/v1/quotes?limit=100", Some(&token)).await {
        Ok(q) => q,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let invoices = match state.gateway.get("/v1/invoices?limit=100", Some(&token)).await {
        Ok(i) => i,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let intro = if ctx.is("provider_agent") {
        "Les documents émis au nom de votre organisme."
    } else {
        "Les documents de votre collectivité. Les factures sont téléchargeables au format Factur-X (XML, norme EN 16931) et en tableur."
    };
    let body = format!("<p>{}</p>{}", esc(intro), tables(items(&quotes), items(&invoices)));
    layout::page(&ctx, "Devis et factures", &body)
}

/// `/factures/{id}.xml` or `/factures/{id}.csv`: the gateway's document, with its type and file name.
pub async fn download(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(file): Path<String>,
) -> Response {
    let token = match crate::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some((id, ext)) = file.rsplit_once('.') else {
        return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Introuvable", "Ce document n'existe pas.");
    };
    let (Some(id), true) = (safe_id(id), matches!(ext, "xml" | "csv")) else {
        return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Introuvable", "Ce document n'existe pas.");
    };
    match state.gateway.download(&format!("/v1/invoices/{id}.{ext}"), &token).await {
        Ok(doc) => {
            let mut response = (StatusCode::OK, doc.body).into_response();
            let headers = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&doc.content_type) {
                headers.insert(header::CONTENT_TYPE, v);
            }
            let disposition = doc.disposition.unwrap_or_else(|| format!("attachment; filename=\"facture-{id}.{ext}\""));
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            response
        }
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}
