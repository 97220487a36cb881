//! A provider's agent: the referrals sent to its provider, with their deadlines; one referral with its request,
//! and the answers (accept, decline with a reason, progress, complete) through the gateway.

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde_json::{Value, json};

use super::common::{items, s, safe_id};
use crate::caller::{self, check_csrf};
use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, url_component};
use crate::layout::see_other;
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

/// The referrals table (shared with the coordinator's view).
pub fn referrals_table(caption: &str, referrals: &[serde_json::Value], link_prefix: &str) -> String {
    let mut body = format!(
        r#"<table><caption>{}</caption><thead><tr><th scope="col">Orientation</th><th scope="col">Partenaire</th><th scope="col">Statut</th><th scope="col">Reçue le</th><th scope="col">Répondre avant le</th><th scope="col">Tentative</th></tr></thead><tbody>"#,
        esc(caption)
    );
    for r in referrals {
        let flag = deadline_flag(r, chrono::Utc::now());
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
            flag,
            r["attempt"].as_i64().unwrap_or(1),
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
        return layout::error_page(ctx, StatusCode::NOT_FOUND, "Introuvable", "Cette orientation n'existe pas.");
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
<dt>Statut</dt><dd>{status}</dd>
<dt>Reçue le</dt><dd>{offered}</dd>
<dt>Répondre avant le</dt><dd>{respond_by}</dd>
<dt>Comment elle vous a été confiée</dt><dd>{assignment}</dd>{agreement}
</dl>"#,
        summary = forms::summary(errors),
        status = esc(fr::referral_status(s(&referral, "status"))),
        offered = esc(&fr::datetime(s(&referral, "offered_at"))),
        respond_by = esc(&fr::datetime(s(&referral, "respond_by"))),
        assignment = esc(if s(&referral, "assignment").is_empty() { "—" } else { s(&referral, "assignment") }),
        agreement = if s(&referral, "status") == "accepted" {
            format!("<dt>Devis</dt><dd>{}</dd>", esc(fr::agreement(s(&referral, "agreement"))))
        } else {
            String::new()
        },
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
<form method="post" action="/orientations/{link}/terminer" class="form">{csrf}<button type="submit">Déclarer la prestation terminée</button></form>"#,
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
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    let token = match caller::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = caller::agents_only(&ctx) {
        return r;
    }
    let Some(rid) = safe_id(&id) else {
        return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Introuvable", "Cette orientation n'existe pas.");
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
mod tests {
    use super::*;
    use serde_json::json;

    fn accepted(agreement: &str) -> Value {
        json!({"id": "ref-1", "request_id": "r1", "status": "accepted", "agreement": agreement})
    }

    #[test]
    fn the_work_waits_for_the_member_s_agreement_to_the_quote() {
        let none = (Fields::new(), Errors::default());
        let waiting = work_section(&accepted("awaiting_member"), None, "jeton", &none.0, &none.1);
        assert!(waiting.contains("<h2>En attente de l'accord de la collectivité sur le devis</h2>"), "{waiting}");
        assert!(!waiting.contains("<form"), "no progress nor completion form before the agreement");
        for agreement in ["agreed", "not_required"] {
            let html = work_section(&accepted(agreement), None, "jeton", &none.0, &none.1);
            assert!(html.contains(r#"action="/orientations/ref-1/avancement""#), "{agreement}");
            assert!(html.contains(r#"action="/orientations/ref-1/terminer""#), "{agreement}");
            assert_eq!(html.matches(r#"name="_csrf" value="jeton""#).count(), 2, "a CSRF field on each form");
            assert!(!html.contains("En attente de l'accord"));
        }
        let offered = work_section(&json!({"id": "ref-1", "status": "offered"}), None, "jeton", &none.0, &none.1);
        assert!(offered.contains("/accepter") && offered.contains("/decliner"));
        let done =
            json!({"id": "ref-1", "status": "accepted", "agreement": "agreed", "completed_at": "2026-12-01T10:00:00Z"});
        let html = work_section(&done, None, "jeton", &none.0, &none.1);
        assert!(html.contains("Prestation terminée le 01/12/2026 à 10:00 UTC") && !html.contains("<form"));
    }

    #[test]
    fn a_request_cancelled_after_acceptance_says_who_and_why_and_offers_nothing() {
        let none = (Fields::new(), Errors::default());
        let withdrawn =
            json!({"id": "ref-1", "status": "withdrawn", "agreement": "agreed", "reason": "request cancelled"});
        let request = json!({"status": "cancelled", "history": [
            {"status": "accepted", "actor_role": "provider_agent"},
            {"status": "cancelled", "actor_role": "member_admin", "actor_name": "Marie Dupont", "reason": "Projet <abandonné>"}
        ]});
        let html = work_section(&withdrawn, Some(&request), "jeton", &none.0, &none.1);
        assert!(html.contains("<h2>La collectivité a annulé la demande</h2>"), "{html}");
        assert!(html.contains("<p>Motif : Projet &lt;abandonné&gt;</p>"));
        assert!(!html.contains("<form"), "no action on a withdrawn referral");
        // Cancelled by the coordination, or by an expired quote; or withdrawn without a cancellation.
        let by = |role: &str| json!({"status": "cancelled", "history": [{"status": "cancelled", "actor_role": role}]});
        assert_eq!(cancellation(&by("coordinator")).map(|c| c.0), Some("La coordination a annulé la demande".into()));
        assert!(cancellation(&by("system")).is_some_and(|c| c.0.contains("automatiquement")));
        assert_eq!(cancellation(&json!({"status": "in_progress"})), None);
        let html = work_section(&withdrawn, Some(&json!({"status": "referred"})), "jeton", &none.0, &none.1);
        assert!(html.contains("retirée par la coordination") && html.contains("Motif : request cancelled"));
    }

    #[test]
    fn refused_progress_and_completion_are_explained_in_french() {
        let error = |kind: &str| crate::gateway::ApiError {
            status: 409,
            kind: kind.into(),
            detail: String::new(),
            errors: vec![],
        };
        assert!(work_conflict(&error("invalid-transition"), "withdrawn").starts_with("La demande a été annulée"));
        assert!(
            work_conflict(&error("quote-not-accepted"), "accepted").starts_with("Le devis n'a pas encore été accepté")
        );
        assert!(work_conflict(&error("invalid-transition"), "accepted").contains("pas possible dans l'état actuel"));
    }

    #[test]
    fn referrals_waiting_past_their_reminder_or_deadline_are_marked_in_words() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z").map(|t| t.to_utc()).unwrap_or_default();
        let r = |status: &str, remind: &str, by: &str| json!({"status": status, "remind_at": remind, "respond_by": by});
        assert_eq!(deadline_flag(&r("offered", "2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z"), now), "");
        assert!(deadline_flag(&r("offered", "2026-11-29T09:00:00Z", "2026-12-01T00:00:00Z"), now).contains("relance"));
        assert!(deadline_flag(&r("offered", "2026-11-28T00:00:00Z", "2026-11-29T09:59:00Z"), now).contains("dépassée"));
        assert_eq!(deadline_flag(&r("accepted", "2026-11-28T00:00:00Z", "2026-11-29T09:59:00Z"), now), "");
        let escalated =
            json!({"status": "offered", "escalated_at": "2026-11-29T09:00:00Z", "respond_by": "2026-12-01T00:00:00Z"});
        assert!(deadline_flag(&escalated, now).contains("relance"));
    }

    #[test]
    fn french_amounts_parse_to_cents() {
        for (raw, cents) in [
            ("2 450,00", 245_000),
            ("2\u{a0}450,00\u{a0}€", 245_000),
            ("2\u{202f}450,5 €", 245_050),
            ("2450", 245_000),
            ("2.450,00", 245_000),
            ("2450.75", 245_075),
            ("2.450.000", 245_000_000),
            ("0,01", 1),
            (" 10 000 000,00 ", MAX_QUOTE_CENTS),
            ("12 EUR", 1_200),
        ] {
            assert_eq!(parse_euros(raw), Ok(Some(cents)), "{raw:?}");
        }
        assert_eq!(parse_euros("   "), Ok(None));
        for bad in [
            "0",
            "0,00",
            "-5",
            "2,450,00",
            "1,234",
            "12,3a",
            "abc",
            ",50",
            "10 000 000,01",
            "99999999999999999",
            "2.45.0",
        ] {
            assert!(parse_euros(bad).is_err(), "{bad:?}");
        }
    }
}
