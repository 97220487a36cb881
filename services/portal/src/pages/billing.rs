//! Quotes and invoices (the member's own, or those a provider issued), and invoice downloads proxied from the
//! gateway (Factur-X XML, CSV) with the caller's token.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::common::{items, s, safe_id};
use crate::caller;
use crate::html::{esc, url_component};
use crate::pages::prologue;
use crate::{AppState, Ctx, fr, layout};

/// The formats an invoice or a credit note is downloadable in: (suffix, label).
pub const FORMATS: [(&str, &str); 4] =
    [("pdf", "PDF"), ("xml", "Factur-X CII (XML)"), ("ubl.xml", "UBL (XML)"), ("csv", "Tableur (CSV)")];

/// The download links of one invoice (`/factures/…`) or credit note (`/avoirs/…`).
fn formats(prefix: &str, id: &str, what: &str) -> String {
    FORMATS
        .iter()
        .map(|(ext, label)| {
            format!(
                r#"<a href="/{prefix}/{}.{ext}" download>{label}<span class="visually-hidden"> {}</span></a>"#,
                url_component(id),
                esc(what)
            )
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

/// `{id}.{ext}` of a download path: the id and one of `allowed` suffixes; `None` otherwise.
pub fn split_file<'a>(file: &'a str, allowed: &[&'a str]) -> Option<(&'a str, &'a str)> {
    allowed.iter().find_map(|ext| {
        let id = file.strip_suffix(ext)?.strip_suffix('.')?;
        safe_id(id).map(|id| (id, *ext))
    })
}

/// The amounts of a quote as billing gives them: excluding VAT (HT), VAT with its rate (or why none applies),
/// including VAT (TTC). `None` while the provider has still to state the amount.
pub struct Amounts {
    pub net: i64,
    pub gross: i64,
    /// « TVA (20 %) », or « TVA » when it does not apply.
    pub vat_label: String,
    /// The VAT amount in words: « 490,00 € », or why there is none.
    pub vat_text: String,
}

impl Amounts {
    /// A quote's: `amount_cents`, `vat_cents`, `total_incl_vat_cents` and `vat_rate_bp` (computed the invoices'
    /// way only for an answer that does not carry them).
    pub fn of_quote(q: &Value) -> Option<Self> {
        if q["amount_to_be_stated"].as_bool() == Some(true) {
            return None;
        }
        let net = q["amount_cents"].as_i64().unwrap_or(0);
        let rate = q["vat_rate_bp"].as_i64();
        let vat = q["vat_cents"].as_i64().or_else(|| fr::vat_cents(net, rate)).unwrap_or(0);
        let gross = q["total_incl_vat_cents"].as_i64().unwrap_or(net + vat);
        Some(Self::new(net, vat, gross, rate, s(q, "vat_note")))
    }

    /// An invoice's: `total_net_cents`, `total_vat_cents`, `total_gross_cents`, `vat_rate_bp`.
    pub fn of_invoice(i: &Value) -> Self {
        let net = i["total_net_cents"].as_i64().unwrap_or(0);
        let vat = i["total_vat_cents"].as_i64().unwrap_or(0);
        let gross = i["total_gross_cents"].as_i64().unwrap_or(net + vat);
        Self::new(net, vat, gross, i["vat_rate_bp"].as_i64(), s(i, "vat_note"))
    }

    fn new(net: i64, vat: i64, gross: i64, rate: Option<i64>, note: &str) -> Self {
        let (vat_label, vat_text) = match rate {
            Some(rate) => (format!("TVA ({})", fr::percent_bp(rate)), fr::euros(vat)),
            None => ("TVA".to_owned(), if note.is_empty() { "non applicable".to_owned() } else { note.to_owned() }),
        };
        Self { net, gross, vat_label, vat_text }
    }

    /// « 2 450,00 € HT · TVA (20 %) 490,00 € · 2 940,00 € TTC », for a table cell.
    pub fn inline(&self) -> String {
        format!("{} HT · {} {} · {} TTC", fr::euros(self.net), self.vat_label, self.vat_text, fr::euros(self.gross))
    }

    /// `<dt>`/`<dd>` pairs: Montant HT, TVA, Montant TTC.
    pub fn facts(&self) -> String {
        format!(
            "<dt>Montant HT</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>Montant TTC</dt><dd>{}</dd>",
            esc(&fr::euros(self.net)),
            esc(&self.vat_label),
            esc(&self.vat_text),
            esc(&fr::euros(self.gross))
        )
    }
}

/// The quotes and invoices tables of the « Devis et factures » page.
pub fn tables(quotes: &[Value], invoices: &[Value]) -> String {
    format!("{}{}", quotes_table(quotes), invoices_table(invoices))
}

/// The quotes table: number, subject, status, amount excluding VAT, issue date, PDF.
pub fn quotes_table(quotes: &[Value]) -> String {
    if quotes.is_empty() {
        return "<p>Aucun devis.</p>".to_owned();
    }
    let mut body = String::from(
        r#"<table><caption>Devis</caption><thead><tr><th scope="col">Numéro</th><th scope="col">Objet</th><th scope="col">Statut</th><th scope="col">Montants (HT, TVA, TTC)</th><th scope="col">Émis le</th><th scope="col">Téléchargement</th></tr></thead><tbody>"#,
    );
    for q in quotes {
        let number = esc(s(q, "number"));
        let _ = write!(
            body,
            r#"<tr><th scope="row">{number}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><a href="/devis/{}.pdf" download>PDF<span class="visually-hidden"> du devis {number}</span></a></td></tr>"#,
            esc(s(q, "label")),
            esc(fr::quote_status(s(q, "status"))),
            esc(&Amounts::of_quote(q).map_or_else(|| "À préciser par le partenaire".to_owned(), |a| a.inline())),
            esc(&fr::datetime(s(q, "issued_at"))),
            url_component(s(q, "id")),
        );
    }
    body.push_str("</tbody></table>");
    body
}

/// The invoices table, with every download format and the credit note that cancelled an invoice.
pub fn invoices_table(invoices: &[Value]) -> String {
    if invoices.is_empty() {
        return "<p>Aucune facture.</p>".to_owned();
    }
    let mut body = String::from(
        r#"<table><caption>Factures</caption><thead><tr><th scope="col">Numéro</th><th scope="col">Statut</th><th scope="col">Montants (HT, TVA, TTC)</th><th scope="col">Échéance</th><th scope="col">Devis et n° d'engagement</th><th scope="col">Téléchargements</th></tr></thead><tbody>"#,
    );
    for i in invoices {
        let number = esc(s(i, "number"));
        let mut links = formats("factures", s(i, "id"), &format!("de la facture {number}"));
        if let Some(note) = i["credit_note_id"].as_str().filter(|n| !n.is_empty()) {
            let _ = write!(
                links,
                "<br>Avoir : {}",
                formats("avoirs", note, &format!("de l'avoir annulant la facture {number}"))
            );
        }
        let reference = match (s(i, "quote_number"), s(i, "purchase_order_number")) {
            ("", "") => "—".to_owned(),
            (quote, "") => esc(quote),
            ("", order) => format!("n° d'engagement {}", esc(order)),
            (quote, order) => format!("{}<br>n° d'engagement {}", esc(quote), esc(order)),
        };
        let _ = write!(
            body,
            r#"<tr><th scope="row">{number}</th><td>{}</td><td>{}</td><td>{}</td><td>{reference}</td><td>{links}</td></tr>"#,
            esc(fr::invoice_status(s(i, "status"))),
            esc(&Amounts::of_invoice(i).inline()),
            esc(&fr::date(s(i, "due_date"))),
        );
    }
    body.push_str("</tbody></table>");
    body
}

pub async fn list(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let token = match caller::token(&state, &ctx).await {
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

/// `/factures/{id}.{pdf,xml,ubl.xml,csv}`: the gateway's invoice document, with its type and file name.
pub async fn download(state: State<AppState>, ctx: Extension<Ctx>, Path(file): Path<String>) -> Response {
    proxy(state, ctx, &file, "invoices", "facture", &["pdf", "ubl.xml", "xml", "csv"]).await
}

/// `/devis/{id}.pdf`: a quote as PDF.
pub async fn download_quote(state: State<AppState>, ctx: Extension<Ctx>, Path(file): Path<String>) -> Response {
    proxy(state, ctx, &file, "quotes", "devis", &["pdf"]).await
}

/// `/avoirs/{id}.{pdf,xml,ubl.xml,csv}`: a credit note.
pub async fn download_credit_note(state: State<AppState>, ctx: Extension<Ctx>, Path(file): Path<String>) -> Response {
    proxy(state, ctx, &file, "credit-notes", "avoir", &["pdf", "ubl.xml", "xml", "csv"]).await
}

async fn proxy(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    file: &str,
    resource: &str,
    name: &str,
    allowed: &[&str],
) -> Response {
    let token = match caller::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some((id, ext)) = split_file(file, allowed) else {
        return prologue::not_found(&ctx, "Ce document n'existe pas.");
    };
    match state.gateway.download(&format!("/v1/{resource}/{id}.{ext}"), &token).await {
        Ok(doc) => {
            let mut response = (StatusCode::OK, doc.body).into_response();
            let headers = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&doc.content_type) {
                headers.insert(header::CONTENT_TYPE, v);
            }
            let disposition = doc.disposition.unwrap_or_else(|| format!("attachment; filename=\"{name}-{id}.{ext}\""));
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                headers.insert(header::CONTENT_DISPOSITION, v);
            }
            response
        }
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_paths_name_an_id_and_a_known_format() {
        let all = ["pdf", "ubl.xml", "xml", "csv"];
        assert_eq!(split_file("abc-1.ubl.xml", &all), Some(("abc-1", "ubl.xml")));
        assert_eq!(split_file("abc-1.xml", &all), Some(("abc-1", "xml")));
        assert_eq!(split_file("abc-1.pdf", &all), Some(("abc-1", "pdf")));
        assert_eq!(split_file("abc-1.pdf", &["pdf"]), Some(("abc-1", "pdf")));
        for bad in ["abc-1.exe", "abc-1", ".pdf", "../x.pdf", "a.b.csv", "abc-1.csv"] {
            let allowed: &[&str] = if bad == "abc-1.csv" { &["pdf"] } else { &all };
            assert_eq!(split_file(bad, allowed), None, "{bad}");
        }
    }

    #[test]
    fn invoices_offer_every_format_and_their_credit_note() {
        let invoices = vec![serde_json::json!({"id": "i1", "number": "F-1", "credit_note_id": "c1"})];
        let html = tables(&[], &invoices);
        for href in
            ["/factures/i1.pdf", "/factures/i1.xml", "/factures/i1.ubl.xml", "/factures/i1.csv", "/avoirs/c1.ubl.xml"]
        {
            assert!(html.contains(&format!(r#"href="{href}""#)), "{href}");
        }
        let quotes = vec![serde_json::json!({"id": "q1", "number": "D-1", "status": "accepted"})];
        let html = tables(&quotes, &[]);
        assert!(html.contains(r#"href="/devis/q1.pdf""#));
        assert!(html.contains("<td>Accepté</td>"), "the quote's status in French");
    }

    #[test]
    fn invoices_name_the_quote_and_the_purchase_order_they_bill() {
        let invoice = |quote: &str, order: &str| serde_json::json!({"id": "i1", "number": "F-1", "quote_number": quote, "purchase_order_number": order});
        assert!(invoices_table(&[invoice("D-1", "EJ<42>")]).contains("<td>D-1<br>n° d'engagement EJ&lt;42&gt;</td>"));
        assert!(invoices_table(&[invoice("D-1", "")]).contains("<td>D-1</td>"));
        assert!(invoices_table(&[serde_json::json!({"id": "i1", "number": "F-1"})]).contains("<td>—</td>"));
    }
}
