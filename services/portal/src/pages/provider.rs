//! A provider's agent: the referrals sent to its provider, with their deadlines; one referral with its request,
//! and the answers (accept, decline with a reason, progress, complete) through the gateway.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde_json::{Value, json};

use super::common::{items, s, safe_id};
use crate::caller;
use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, url_component};
use crate::layout::see_other;
use crate::pages::prologue;
use crate::{AppState, Ctx, fr, layout};

/// The SLA mark of a referral still waiting for its provider's answer: past its deadline, or past the reminder
/// (escalated to the coordination) — in words, not only in colour.
pub fn deadline_flag(r: &serde_json::Value, now: chrono::DateTime<chrono::Utc>) -> &'static str {
    if s(r, "status") != "offered" {
        return "";
    }
    let passed = |key: &str| chrono::DateTime::parse_from_rfc3339(s(r, key)).is_ok_and(|at| at < now);
    if passed("respond_by") {
        r#" <strong class="warn">(échéance dépassée)</strong>"#
    } else if !s(r, "escalated_at").is_empty() || passed("remind_at") {
        r#" <strong class="warn">(relance : réponse attendue)</strong>"#
    } else {
        ""
    }
}

/// Where a line of the referrals table leads: the provider's referral page, or (the coordinator) the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralLink {
    /// `/orientations/{referral}`: the provider's agent answers there.
    Referral,
    /// `/demandes/{request}`: the coordinator follows the request.
    Request,
}

/// What names a referral's request on screen: its subject, else the day it was received (never an id).
pub fn request_label(r: &Value) -> String {
    match s(r, "request_subject").trim() {
        "" => format!("Demande reçue le {}", fr::datetime(s(r, "offered_at"))),
        subject => subject.to_owned(),
    }
}

/// A name the API gave, else a placeholder in words.
fn named<'a>(r: &'a Value, key: &str, unknown: &'a str) -> &'a str {
    match s(r, key).trim() {
        "" => unknown,
        name => name,
    }
}

/// The member's user who submitted the request, with a link to write to them (or « — »).
pub fn contact(r: &Value) -> String {
    let (name, email) = (s(r, "requester_name").trim(), s(r, "requester_email").trim());
    match (name, email) {
        ("", "") => "—".to_owned(),
        (name, "") => esc(name),
        (name, email) => format!(
            r#"{}<a href="mailto:{}">{}</a>"#,
            if name.is_empty() { String::new() } else { format!("{}<br>", esc(name)) },
            esc(email),
            esc(email)
        ),
    }
}

/// The offer's title, linked to its page in the catalogue (or « — »).
pub fn offer_link(r: &Value) -> String {
    match (s(r, "offer_title").trim(), safe_id(s(r, "offer_id"))) {
        ("", _) => "—".to_owned(),
        (title, Some(id)) => format!(r#"<a href="/offres/{}">{}</a>"#, url_component(id), esc(title)),
        (title, None) => esc(title),
    }
}

/// The referrals table (shared with the coordinator's view, which adds the provider): every line names the
/// request, the collectivité, its contact and the offer, and links to its page.
pub fn referrals_table(caption: &str, referrals: &[serde_json::Value], link: ReferralLink) -> String {
    let coordinator = link == ReferralLink::Request;
    let mut body = format!(
        r#"<table><caption>{}</caption><thead><tr><th scope="col">Demande</th><th scope="col">Collectivité</th><th scope="col">Contact</th><th scope="col">Offre</th>{}<th scope="col">Statut</th><th scope="col">Reçue le</th><th scope="col">Répondre avant le</th><th scope="col">Tentative</th></tr></thead><tbody>"#,
        esc(caption),
        if coordinator { r#"<th scope="col">Partenaire</th>"# } else { "" }
    );
    for r in referrals {
        let flag = deadline_flag(r, chrono::Utc::now());
        let target = match link {
            ReferralLink::Referral => safe_id(s(r, "id")).map(|id| format!("/orientations/{}", url_component(id))),
            ReferralLink::Request => safe_id(s(r, "request_id")).map(|id| format!("/demandes/{}", url_component(id))),
        };
        let label = esc(&request_label(r));
        let head = match target {
            Some(href) => format!(r#"<a href="{href}">{label}</a>"#),
            None => label,
        };
        let provider = if coordinator {
            format!("<td>{}</td>", esc(named(r, "provider_name", s(r, "provider_code"))))
        } else {
            String::new()
        };
        let _ = write!(
            body,
            r#"<tr><th scope="row">{head}</th><td>{}</td><td>{}</td><td>{}</td>{provider}<td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>"#,
            esc(named(r, "member_name", "Collectivité non renseignée")),
            contact(r),
            offer_link(r),
            esc(fr::referral_status(s(r, "status"))),
            esc(&fr::datetime(s(r, "offered_at"))),
            esc(&fr::datetime(s(r, "respond_by"))),
            flag,
            r["attempt"].as_i64().unwrap_or(1),
        );
    }
    body.push_str("</tbody></table>");
    body
}

/// The facts of the offer's category: the loan's period, the study's site (as `<dt>`/`<dd>` pairs).
pub fn category_facts(request: &Value) -> String {
    let mut extra = String::new();
    if let Some(dates) = request["dates"].as_object() {
        let _ = write!(
            extra,
            "<dt>Période du prêt</dt><dd>du {} au {}</dd>",
            esc(&fr::date(dates.get("start_date").and_then(Value::as_str).unwrap_or(""))),
            esc(&fr::date(dates.get("end_date").and_then(Value::as_str).unwrap_or("")))
        );
    }
    if let Some(site) = request["site"].as_object() {
        let address = site.get("address").and_then(Value::as_str).unwrap_or("");
        let insee = site.get("commune_insee").and_then(Value::as_str).unwrap_or("");
        let commune = match site.get("commune_name").and_then(Value::as_str).map(str::trim) {
            Some(name) if !name.is_empty() => esc(name),
            _ if insee.is_empty() => String::new(),
            _ => format!("commune dont le code INSEE est {}", esc(insee)),
        };
        let site = match (address.trim(), commune.as_str()) {
            ("", "") => "—".to_owned(),
            ("", commune) => commune.to_owned(),
            (address, "") => esc(address),
            (address, commune) => format!("{} ({commune})", esc(address)),
        };
        let _ = write!(extra, "<dt>Site</dt><dd>{site}</dd>");
    }
    if !s(request, "offer_category").is_empty() {
        let _ = write!(extra, "<dt>Type d'offre</dt><dd>{}</dd>", esc(fr::category(s(request, "offer_category"))));
    }
    extra
}

/// `request` with its site's commune named (`site.commune_name`), from one directory search by its INSEE code;
/// as it is when the request has no site or the directory does not answer.
pub async fn commune_named(state: &AppState, request: &Value) -> Value {
    let mut request = request.clone();
    let insee = request["site"]["commune_insee"].as_str().unwrap_or("").to_owned();
    if safe_id(&insee).is_none() {
        return request;
    }
    let path = format!("/v1/collectivities?kind=commune&limit=1&q={}", url_component(&insee));
    if let Ok(page) = state.gateway.get(&path, None).await
        && let Some(commune) = items(&page).iter().find(|c| s(c, "insee_code") == insee)
    {
        request["site"]["commune_name"] = Value::String(s(commune, "name").to_owned());
    }
    request
}

/// The providers' names by code, read once for a page (empty when the catalogue does not answer).
pub async fn provider_names(state: &AppState, token: &str) -> std::collections::HashMap<String, String> {
    let page = state.gateway.get("/v1/providers?limit=100", Some(token)).await.unwrap_or(Value::Null);
    items(&page)
        .iter()
        .filter(|p| !s(p, "name").trim().is_empty())
        .map(|p| (s(p, "code").to_owned(), s(p, "name").trim().to_owned()))
        .collect()
}

pub async fn list(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let token = match caller::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = caller::agents_only(&ctx) {
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
        body.push_str(&referrals_table("Orientations en attente de votre réponse", &open, ReferralLink::Referral));
    }
    body.push_str("<h2>Déjà traitées</h2>");
    if others.is_empty() {
        body.push_str("<p>Aucune.</p>");
    } else {
        body.push_str(&referrals_table(
            "Orientations acceptées, déclinées, expirées ou retirées",
            &others,
            ReferralLink::Referral,
        ));
    }
    layout::page(&ctx, "Orientations reçues", &body)
}

pub async fn detail(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    render_detail(&state, &ctx, &id, &Fields::new(), &Errors::default(), StatusCode::OK).await
}

async fn render_detail(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    f: &Fields,
    errors: &Errors,
    status: StatusCode,
) -> Response {
    let token = match caller::token(state, ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = caller::agents_only(ctx) {
        return r;
    }
    let Some(id) = safe_id(id) else {
        return prologue::not_found(ctx, "Cette orientation n'existe pas.");
    };
    let referral = match state.gateway.get(&format!("/v1/referrals/{id}"), Some(&token)).await {
        Ok(r) => r,
        Err(error) => return layout::api_error_page(ctx, &error),
    };
    let request = match safe_id(s(&referral, "request_id")) {
        Some(rid) => state.gateway.get(&format!("/v1/requests/{rid}"), Some(&token)).await.ok(),
        None => None,
    };
    let mut body = format!(
        r#"{summary}<dl class="facts">
<dt>Collectivité</dt><dd>{member}</dd>
<dt>Contact</dt><dd>{contact}</dd>
<dt>Offre</dt><dd>{offer}</dd>
<dt>Statut</dt><dd>{status}</dd>
<dt>Reçue le</dt><dd>{offered}</dd>
<dt>Répondre avant le</dt><dd>{respond_by}</dd>
<dt>Comment elle vous a été confiée</dt><dd>{assignment}</dd>{agreement}
</dl>"#,
        summary = forms::summary(errors),
        member = esc(named(&referral, "member_name", "Collectivité non renseignée")),
        contact = contact(&referral),
        offer = offer_link(&referral),
        status = esc(fr::referral_status(s(&referral, "status"))),
        offered = esc(&fr::datetime(s(&referral, "offered_at"))),
        respond_by = esc(&fr::datetime(s(&referral, "respond_by"))),
        assignment = match s(&referral, "assignment") {
            "" => "—".to_owned(),
            text => esc(&fr::reason(text, &provider_names(state, &token).await)),
        },
        agreement = if s(&referral, "status") == "accepted" {
            format!("<dt>Devis</dt><dd>{}</dd>", esc(fr::agreement(s(&referral, "agreement"))))
        } else {
            String::new()
        },
    );
    if let Some(request) = &request {
        let _ = write!(
            body,
            "<h2>La demande</h2><dl class=\"facts\"><dt>Objet</dt><dd>{}</dd><dt>Déposée le</dt><dd>{}</dd>{}</dl><p>{}</p>",
            esc(s(request, "subject")),
            esc(&fr::datetime(s(request, "submitted_at"))),
            category_facts(&commune_named(state, request).await),
            crate::html::multiline(s(request, "description"))
        );
    }
    if !s(&referral, "progress").is_empty() {
        let _ = write!(body, "<h2>Avancement</h2><p>{}</p>", esc(s(&referral, "progress")));
    }
    body.push_str(&work_section(&referral, request.as_ref(), &ctx.csrf, f, errors));
    let link = url_component(s(&referral, "id"));
    // The conversation with the collectivité (the requests service decides whether this agent takes part): a
    // provider whose referral ended (declined, expired, withdrawn) no longer reads the thread, so say so instead
    // of showing the refusal.
    if matches!(s(&referral, "status"), "declined" | "expired" | "withdrawn") {
        body.push_str(CONVERSATION_CLOSED);
    } else {
        body.push_str(
            &super::conversation::section(
                state,
                ctx,
                &token,
                s(&referral, "request_id"),
                &format!("/orientations/{link}"),
            )
            .await,
        );
    }
    body.push_str(r#"<p><a href="/orientations">Retour aux orientations</a></p>"#);
    layout::page_with_status(ctx, status, "Orientation", &body)
}

/// Shown instead of the conversation once the referral has ended for this provider.
const CONVERSATION_CLOSED: &str = r#"<section id="conversation" aria-labelledby="conversation-titre"><h2 id="conversation-titre">Échanges</h2><p>Les échanges avec la collectivité ne sont plus accessibles : cette orientation n'est plus confiée à votre organisme.</p></section>"#;

/// The last cancellation of a request's history, if the request is cancelled: who (in French) and why.
pub fn cancellation(request: &Value) -> Option<(String, String)> {
    if s(request, "status") != "cancelled" {
        return None;
    }
    let history = request["history"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let last = history.iter().rev().find(|c| s(c, "status") == "cancelled");
    let role = last.map(|c| s(c, "actor_role")).unwrap_or("");
    let who = match role {
        "member_admin" | "member_user" => "La collectivité a annulé la demande",
        "coordinator" => "La coordination a annulé la demande",
        "" | "system" => "La demande a été annulée automatiquement (devis sans réponse de la collectivité)",
        _ => "La demande a été annulée",
    };
    Some((who.to_owned(), last.map(|c| s(c, "reason").to_owned()).unwrap_or_default()))
}

/// What the agent may do on a referral, by its status: answer an offered one; report progress and completion on
/// an accepted one once the member has accepted the quote (before, a notice says the work waits for it); nothing
/// on a completed or withdrawn one (a cancelled request says who cancelled it and why).
pub fn work_section(
    referral: &Value,
    request: Option<&Value>,
    csrf_token: &str,
    f: &Fields,
    errors: &Errors,
) -> String {
    let link = url_component(s(referral, "id"));
    let csrf = forms::csrf(csrf_token);
    let mut body = String::new();
    match (s(referral, "status"), s(referral, "completed_at").is_empty()) {
        ("offered", _) => {
            let _ = write!(
                body,
                r#"<h2>Votre réponse</h2>
<form method="post" action="/orientations/{link}/accepter" class="form" novalidate>{csrf}{amount}<button type="submit">Accepter la demande</button></form>
<form method="post" action="/orientations/{link}/decliner" class="form" novalidate>{csrf}{reason}<button type="submit" class="secondary">Décliner la demande</button></form>"#,
                amount = forms::field(
                    "montant",
                    AMOUNT_LABEL,
                    Input::Text { kind: "text", autocomplete: "off" },
                    forms::value(f, "montant"),
                    false,
                    "Pour une offre sur devis uniquement, où il est obligatoire : montant hors taxes en euros, par \
                     exemple 2 450,00. Laissez vide pour une offre à prix fixé.",
                    errors
                ),
                reason = forms::field(
                    "motif",
                    "Motif du refus",
                    Input::TextArea { rows: 3 },
                    f.get("motif").map(String::as_str).unwrap_or(""),
                    true,
                    "Il est transmis à la coordination, qui oriente la demande ailleurs.",
                    errors
                ),
            );
        }
        ("accepted", true) if s(referral, "agreement") == "awaiting_member" => {
            body.push_str(
                r#"<div class="callout" id="accord-devis"><h2>En attente de l'accord de la collectivité sur le devis</h2><p>Un administrateur de la collectivité doit accepter le devis avant que vous ne commenciez : l'avancement et la fin de la prestation pourront être déclarés dès son accord. Si la collectivité refuse le devis, la demande est annulée et vous en êtes informé.</p></div>"#,
            );
        }
        ("accepted", true) => {
            let _ = write!(
                body,
                r#"<h2>Suivi de la prestation</h2>
<form method="post" action="/orientations/{link}/avancement" class="form" novalidate>{csrf}{note}{percent}<button type="submit">Enregistrer l'avancement</button></form>
<form method="get" action="/orientations/{link}/terminer" class="form"><button type="submit">Déclarer la prestation terminée</button></form>"#,
                note = forms::field(
                    "note",
                    "Point d'avancement",
                    Input::TextArea { rows: 3 },
                    f.get("note").map(String::as_str).unwrap_or(""),
                    true,
                    "Visible par la collectivité et la coordination.",
                    errors
                ),
                percent = forms::field(
                    "pourcentage",
                    "Avancement en pourcentage",
                    Input::Text { kind: "text", autocomplete: "off" },
                    forms::value(f, "pourcentage"),
                    false,
                    "Facultatif, de 0 à 100.",
                    errors
                ),
            );
        }
        ("accepted", false) => {
            let _ = write!(
                body,
                "<p class=\"badge ok\"><strong>Prestation terminée le {}.</strong></p>",
                esc(&fr::datetime(s(referral, "completed_at")))
            );
        }
        ("withdrawn", _) => {
            let (title, reason) = match request.and_then(cancellation) {
                Some((who, reason)) => (who, reason),
                None => ("Cette orientation vous a été retirée par la coordination".to_owned(), String::new()),
            };
            let reason = if reason.is_empty() { s(referral, "reason").to_owned() } else { reason };
            let _ = write!(
                body,
                r#"<div class="callout" id="demande-annulee"><h2>{}</h2><p>Motif : {}</p><p>Aucune action n'est plus possible sur cette orientation : ne poursuivez pas la prestation.</p></div>"#,
                esc(&title),
                esc(if reason.is_empty() { "non précisé" } else { &reason })
            );
        }
        _ => {}
    }
    body
}

/// The completion's confirmation: what will be invoiced (the referral's accepted quote, HT, TVA and TTC) and the
/// only form that declares the work done (« Confirmer »), or « Annuler » back to the referral.
pub fn completion_confirmation(referral: &Value, quotes: &[Value], csrf_token: &str) -> String {
    let link = url_component(s(referral, "id"));
    let quote =
        quotes.iter().filter(|q| s(q, "referral_id") == s(referral, "id")).find(|q| s(q, "status") == "accepted");
    let invoiced = match quote.map(|q| (q, super::billing::Amounts::of_quote(q))) {
        Some((q, Some(amounts))) => format!(
            r#"<p>Une facture sera émise à la collectivité au montant du devis {} accepté :</p><dl class="facts">{}</dl>"#,
            esc(s(q, "number")),
            amounts.facts()
        ),
        Some((q, None)) => {
            format!("<p>Une facture sera émise au montant du devis {} accepté.</p>", esc(s(q, "number")))
        }
        None => "<p>Aucun devis accepté n'accompagne cette orientation : aucune facture ne sera émise.</p>".to_owned(),
    };
    format!(
        r#"<p>Vous allez déclarer terminée la prestation pour la demande « {subject} » de {member}. La collectivité et la coordination en seront informées ; cette déclaration ne peut pas être annulée.</p>
{invoiced}
<form method="post" action="/orientations/{link}/terminer" class="form">{csrf}<input type="hidden" name="confirmer" value="oui"><button type="submit">Confirmer</button> <a class="button secondary" href="/orientations/{link}">Annuler</a></form>"#,
        subject = esc(&request_label(referral)),
        member = esc(named(referral, "member_name", "la collectivité")),
        csrf = forms::csrf(csrf_token),
    )
}

/// `GET /orientations/{id}/terminer`: the completion's confirmation page (the button of the referral's page
/// leads here; only this page's « Confirmer » declares the work done).
pub async fn confirm(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let token = match caller::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = caller::agents_only(&ctx) {
        return r;
    }
    let (Some(rid), "terminer") = (safe_id(&id), action.as_str()) else {
        return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Page introuvable", "Cette page n'existe pas.");
    };
    let referral = match state.gateway.get(&format!("/v1/referrals/{rid}"), Some(&token)).await {
        Ok(r) => r,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    if s(&referral, "status") != "accepted" || !s(&referral, "completed_at").is_empty() {
        return see_other(&format!("/orientations/{}", url_component(rid)));
    }
    let quotes = match safe_id(s(&referral, "request_id")) {
        Some(request) => {
            state.gateway.get(&format!("/v1/quotes?request_id={request}"), Some(&token)).await.unwrap_or_default()
        }
        None => Value::Null,
    };
    let body = completion_confirmation(&referral, items(&quotes), &ctx.csrf);
    layout::page(&ctx, "Confirmer la fin de la prestation", &body)
}

/// The sentence for progress or completion the gateway refused with a 409, knowing the referral's status now.
pub fn work_conflict(error: &crate::gateway::ApiError, referral_status: &str) -> String {
    match (error.kind.as_str(), referral_status) {
        ("quote-not-accepted", _) => fr::problem(error),
        (_, "withdrawn") => "La demande a été annulée : l'avancement et la fin de la prestation ne peuvent plus être \
                             déclarés. Ne poursuivez pas la prestation."
            .to_owned(),
        _ => fr::problem(error),
    }
}

/// Label of the accept form's amount field.
const AMOUNT_LABEL: &str = "Montant du devis (€ HT)";
/// Largest amount on a quote: 10 000 000,00 €.
const MAX_QUOTE_CENTS: i64 = 1_000_000_000;

/// An amount typed in French (`2 450,00`, `2450`, `2 450,5 €`, `2.450,00`) in cents; `None` when empty.
/// Spaces (also non-breaking) group thousands, a comma (or a lone dot followed by one or two digits) marks the
/// cents; at most two decimals, more than 0 and at most 10 000 000,00 €.
pub fn parse_euros(raw: &str) -> Result<Option<i64>, &'static str> {
    const INVALID: &str = "Saisissez un montant en euros, par exemple 2 450,00.";
    let compact: String = raw
        .trim()
        .trim_end_matches('€')
        .trim_end_matches("EUR")
        .chars()
        .filter(|c| !matches!(c, ' ' | '\u{a0}' | '\u{202f}'))
        .collect();
    if compact.is_empty() {
        return Ok(None);
    }
    let (units, decimals) = match (compact.rsplit_once(','), compact.rsplit_once('.')) {
        (Some((units, decimals)), _) => (units.replace('.', ""), decimals.to_owned()),
        (None, Some((units, decimals))) if !units.contains('.') && decimals.len() <= 2 => {
            (units.to_owned(), decimals.to_owned())
        }
        // Dots grouping thousands: 2.450.000
        (None, Some(_)) if compact.split('.').skip(1).all(|g| g.len() == 3) => {
            (compact.replace('.', ""), String::new())
        }
        (None, Some(_)) => return Err(INVALID),
        (None, None) => (compact, String::new()),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if units.is_empty() || !digits(&units) || !digits(&decimals) || decimals.len() > 2 || units.len() > 12 {
        return Err(INVALID);
    }
    let units: i64 = units.parse().map_err(|_| INVALID)?;
    let cents: i64 = format!("{decimals:0<2}").parse().map_err(|_| INVALID)?;
    match units.checked_mul(100).and_then(|u| u.checked_add(cents)) {
        Some(0) => Err("Le montant doit être supérieur à 0."),
        Some(total) if total <= MAX_QUOTE_CENTS => Ok(Some(total)),
        _ => Err("Le montant ne peut pas dépasser 10 000 000,00 €."),
    }
}

/// The agent's answer: `accepter`, `decliner` (with a reason), `avancement` (a note), `terminer`.
pub async fn act(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = caller::agent_token(&state, &ctx);
    let (token, rid) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Cette orientation n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let mut errors = Errors::default();
    let (path, body, done, fields): (&str, Value, &str, &[(&str, &str, &str)]) = match action.as_str() {
        "accepter" => {
            let body = match parse_euros(forms::value(&f, "montant")) {
                Ok(None) => json!({}),
                Ok(Some(cents)) => json!({ "amount_cents": cents }),
                Err(message) => {
                    errors.add("montant", AMOUNT_LABEL, message);
                    json!({})
                }
            };
            (
                "accept",
                body,
                "Vous avez accepté la demande. La collectivité en est informée ; pour une offre payante, elle doit \
                 accepter le devis avant que vous ne commenciez la prestation.",
                &[],
            )
        }
        "decliner" => {
            errors.required(&f, "motif", "Motif du refus", 1000);
            (
                "decline",
                json!({ "reason": forms::value(&f, "motif") }),
                "Vous avez décliné la demande : elle est orientée ailleurs.",
                &[("reason", "motif", "Motif du refus")],
            )
        }
        "avancement" => {
            errors.required(&f, "note", "Point d'avancement", 2000);
            let percent = match forms::value(&f, "pourcentage") {
                "" => 0,
                raw => match raw.trim_end_matches('%').trim().parse::<u32>() {
                    Ok(p) if p <= 100 => p,
                    _ => {
                        errors.add(
                            "pourcentage",
                            "Avancement en pourcentage",
                            "Saisissez un nombre entier de 0 à 100.",
                        );
                        0
                    }
                },
            };
            (
                "progress",
                json!({ "note": forms::value(&f, "note"), "percent": percent }),
                "L'avancement est enregistré.",
                &[("note", "note", "Point d'avancement"), ("percent", "pourcentage", "Avancement en pourcentage")],
            )
        }
        // Only the confirmation page's form declares it (a POST without its mark asks for the confirmation).
        "terminer" if forms::value(&f, "confirmer") != "oui" => {
            return see_other(&format!("/orientations/{}/terminer", url_component(rid)));
        }
        "terminer" => (
            "complete",
            json!({}),
            "La prestation est déclarée terminée. La facture sera émise si l'offre est payante.",
            &[],
        ),
        _ => return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Page introuvable", "Cette action n'existe pas."),
    };
    if errors.is_empty() {
        match state.gateway.post(&format!("/v1/referrals/{rid}/{path}"), Some(&token), &body).await {
            Ok(_) => {
                state.sessions.update(&ctx.sid, |session| session.flash = Some(done.to_owned())).await;
                return see_other(&format!("/orientations/{}", url_component(rid)));
            }
            Err(error) if path == "accept" && error.errors.iter().any(|e| e.field == "amount_cents") => {
                errors = Errors::default();
                let detail = error.errors.iter().find(|e| e.field == "amount_cents").map(|e| e.detail.as_str());
                let message = match detail {
                    Some(d) if d.contains("set price") => {
                        "Cette offre a un prix fixé : laissez le montant du devis vide pour l'accepter."
                    }
                    Some(d) if d.contains("on quote") => {
                        "Cette offre est sur devis : saisissez le montant du devis hors taxes pour l'accepter."
                    }
                    _ => "Saisissez un montant hors taxes supérieur à 0 et d'au plus 10 000 000,00 €.",
                };
                errors.add("montant", AMOUNT_LABEL, message);
            }
            Err(error) if error.status == 409 && matches!(path, "progress" | "complete") => {
                // Cancelled meanwhile, or the member has not accepted the quote yet: say which.
                let now = state.gateway.get(&format!("/v1/referrals/{rid}"), Some(&token)).await.unwrap_or_default();
                errors = Errors::from_api(&error, fields);
                if let Some(first) = errors.0.first_mut() {
                    first.message = work_conflict(&error, s(&now, "status"));
                }
            }
            Err(error) => errors = Errors::from_api(&error, fields),
        }
    }
    render_detail(&state, &ctx, rid, &f, &errors, StatusCode::BAD_REQUEST).await
}

#[cfg(test)]
mod tests;
