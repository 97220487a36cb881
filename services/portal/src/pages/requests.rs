//! A member's requests: file one for an offer, list them, follow one (status, history, quotes, invoices).

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use chrono::{NaiveDate, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use super::{conversation, items, s, safe_id};
use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, url_component};
use crate::session::random_token;
use crate::{AppState, Ctx, check_csrf, fr, layout, see_other};

fn members_only(ctx: &Ctx) -> Option<Response> {
    // Without a user, crate::token has already sent the caller to the login page.
    ctx.user.as_ref()?;
    (!ctx.is_member()).then(|| {
        layout::error_page(
            ctx,
            StatusCode::FORBIDDEN,
            "Accès réservé",
            "Cette page est réservée aux utilisateurs des collectivités adhérentes.",
        )
    })
}

/// The category-specific fields of a request form, as the API takes them: an exhibition loan's dates
/// (`dates`), an integrated engineering study's site (`site`). `Err` are French errors tied to the fields.
pub fn details(category: &str, f: &Fields, today: NaiveDate) -> Result<(Option<Value>, Option<Value>), Errors> {
    let mut errors = Errors::default();
    let mut dates = None;
    let mut site = None;
    match category {
        "exhibition_loan" => {
            let parse = |errors: &mut Errors, name: &str, label: &str| -> Option<NaiveDate> {
                let raw = forms::value(f, name);
                if raw.is_empty() {
                    errors.add(name, label, format!("Le champ « {label} » est obligatoire."));
                    return None;
                }
                match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
                    Ok(d) => Some(d),
                    Err(_) => {
                        errors.add(name, label, format!("« {label} » doit être une date, par exemple 2027-03-15."));
                        None
                    }
                }
            };
            let start = parse(&mut errors, "debut", "Premier jour du prêt");
            let end = parse(&mut errors, "fin", "Dernier jour du prêt");
            if let Some(start) = start
                && start < today
            {
                errors.add("debut", "Premier jour du prêt", "Le prêt ne peut pas commencer dans le passé.");
            }
            if let (Some(start), Some(end)) = (start, end) {
                if end < start {
                    errors.add("fin", "Dernier jour du prêt", "Le dernier jour doit suivre le premier jour du prêt.");
                } else if (end - start).num_days() >= MAX_LOAN_DAYS {
                    errors.add("fin", "Dernier jour du prêt", format!("Un prêt dure au plus {MAX_LOAN_DAYS} jours."));
                }
            }
            if errors.is_empty() {
                dates = Some(json!({ "start_date": forms::value(f, "debut"), "end_date": forms::value(f, "fin") }));
            }
        }
        "integrated_engineering" => {
            errors.max_len(f, "adresse", "Adresse du site", MAX_ADDRESS_CHARS);
            let insee = forms::value(f, "insee");
            if !insee.is_empty() && !is_insee(insee) {
                errors.add(
                    "insee",
                    "Code INSEE de la commune",
                    "Le code INSEE compte 5 caractères, par exemple 77284 (Meaux).",
                );
            }
            if errors.is_empty() && !(forms::value(f, "adresse").is_empty() && insee.is_empty()) {
                site = Some(json!({ "address": forms::value(f, "adresse"), "commune_insee": insee }));
            }
        }
        _ => {}
    }
    if errors.is_empty() { Ok((dates, site)) } else { Err(errors) }
}

/// Longest loan, in days (the service's limit).
pub const MAX_LOAN_DAYS: i64 = 366;
/// Longest site address (the API's limit).
pub const MAX_ADDRESS_CHARS: usize = 300;

/// An INSEE commune code: 5 digits, or 2A/2B and 3 digits (Corsica).
pub fn is_insee(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 5
        && (b[0].is_ascii_digit() && b[1].is_ascii_digit() || b[0] == b'2' && matches!(b[1], b'A' | b'B'))
        && b[2..].iter().all(u8::is_ascii_digit)
}

/// The API's field names → the form's ids and labels.
const API_FIELDS: [(&str, &str, &str); 8] = [
    ("subject", "objet", "Objet de la demande"),
    ("description", "description", "Description du besoin"),
    ("dates.start_date", "debut", "Premier jour du prêt"),
    ("dates.end_date", "fin", "Dernier jour du prêt"),
    ("dates", "debut", "Premier jour du prêt"),
    ("site.address", "adresse", "Adresse du site"),
    ("site.commune_insee", "insee", "Code INSEE de la commune"),
    ("site", "adresse", "Adresse du site"),
];

/// The form of a request: for an offer (`Some`: its fields by category) or an open orientation request.
fn new_body(ctx: &Ctx, offer: Option<&Value>, f: &Fields, key: &str, errors: &Errors) -> String {
    let text = |name: &str| f.get(name).map(String::as_str).unwrap_or("").to_owned();
    let category = offer.map(|o| s(o, "category")).unwrap_or("");
    let intro = match offer {
        Some(offer) => format!(
            r#"<p>Offre : <a href="/offres/{}">{}</a> <span class="role">({})</span></p>"#,
            url_component(s(offer, "id")),
            esc(s(offer, "title")),
            esc(fr::category(category))
        ),
        None => "<p>Vous ne savez pas quelle offre choisir ? Décrivez votre besoin : la coordination d'ID 77 \
                 l'oriente vers l'offre et le partenaire qui conviennent.</p>"
            .to_owned(),
    };
    let hidden = match offer {
        Some(offer) => format!(r#"<input type="hidden" name="offre" value="{}">"#, esc(s(offer, "id"))),
        None => r#"<input type="hidden" name="type" value="orientation">"#.to_owned(),
    };
    let specific = match category {
        "exhibition_loan" => format!(
            r#"<fieldset><legend>Période du prêt</legend><p class="hint">Le prêt commence au plus tôt aujourd'hui et dure au plus {MAX_LOAN_DAYS} jours.</p>{}{}</fieldset>"#,
            forms::field(
                "debut",
                "Premier jour du prêt",
                Input::Text { kind: "date", autocomplete: "off" },
                forms::value(f, "debut"),
                true,
                "Format : année-mois-jour, par exemple 2027-03-15.",
                errors
            ),
            forms::field(
                "fin",
                "Dernier jour du prêt",
                Input::Text { kind: "date", autocomplete: "off" },
                forms::value(f, "fin"),
                true,
                "Format : année-mois-jour.",
                errors
            ),
        ),
        "integrated_engineering" => format!(
            r#"<fieldset><legend>Site concerné</legend>{}{}</fieldset>"#,
            forms::field(
                "adresse",
                "Adresse du site",
                Input::Text { kind: "text", autocomplete: "street-address" },
                &text("adresse"),
                false,
                "Rue, lieu-dit ou bâtiment concerné par l'étude.",
                errors
            ),
            forms::field(
                "insee",
                "Code INSEE de la commune",
                Input::Text { kind: "text", autocomplete: "off" },
                forms::value(f, "insee"),
                false,
                "Facultatif pour une commune (sa propre commune par défaut) ; obligatoire pour une intercommunalité ou un syndicat. 5 caractères, par exemple 77284.",
                errors
            ),
        ),
        _ => String::new(),
    };
    format!(
        r#"{intro}
{summary}<form method="post" action="/demandes" novalidate class="form">{csrf}
{hidden}<input type="hidden" name="cle" value="{key}">
{subject}{description}{specific}
<button type="submit">Envoyer la demande</button>
</form>"#,
        key = esc(key),
        summary = forms::summary(errors),
        csrf = forms::csrf(&ctx.csrf),
        subject = forms::field(
            "objet",
            "Objet de la demande",
            Input::Text { kind: "text", autocomplete: "off" },
            forms::value(f, "objet"),
            true,
            "En une phrase, par exemple : Réfection de la voirie du centre-bourg.",
            errors
        ),
        description = forms::field(
            "description",
            "Description du besoin",
            Input::TextArea { rows: 6 },
            &text("description"),
            offer.is_none(),
            if offer.is_none() {
                "Votre projet, son contexte, le calendrier et le lieu concerné : c'est ce qui permet de vous orienter."
            } else {
                "Contexte, calendrier, lieu concerné : tout ce qui aidera le partenaire."
            },
            errors
        ),
    )
}

async fn load_offer(state: &AppState, ctx: &Ctx, id: &str) -> Result<Value, Response> {
    let Some(id) = safe_id(id) else {
        return Err(layout::error_page(ctx, StatusCode::NOT_FOUND, "Introuvable", "Cette offre n'existe pas."));
    };
    state.gateway.get(&format!("/v1/offers/{id}"), None).await.map_err(|e| layout::api_error_page(ctx, &e))
}

fn form_title(offer: Option<&Value>) -> &'static str {
    if offer.is_some() { "Déposer une demande" } else { "Demander une orientation" }
}

/// `/demandes/nouvelle?offre=…` (a request for an offer) or `/demandes/nouvelle` (an open orientation request).
pub async fn new_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<Fields>,
) -> Response {
    if let Err(r) = crate::token(&state, &ctx).await {
        return r;
    }
    if let Some(r) = members_only(&ctx) {
        return r;
    }
    let offer = match forms::value(&q, "offre") {
        "" => None,
        id => match load_offer(&state, &ctx, id).await {
            Ok(offer) => Some(offer),
            Err(r) => return r,
        },
    };
    layout::page(
        &ctx,
        form_title(offer.as_ref()),
        &new_body(&ctx, offer.as_ref(), &Fields::new(), &random_token(), &Errors::default()),
    )
}

pub async fn submit(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<Fields>) -> Response {
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    let token = match crate::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = members_only(&ctx) {
        return r;
    }
    let orientation = forms::value(&f, "type") == "orientation";
    let offer = if orientation {
        None
    } else {
        match load_offer(&state, &ctx, forms::value(&f, "offre")).await {
            Ok(o) => Some(o),
            Err(r) => return r,
        }
    };
    // The key of this form: a double submission (or a retry) files one request.
    let key =
        Some(forms::value(&f, "cle")).filter(|k| safe_id(k).is_some()).map(str::to_owned).unwrap_or_else(random_token);
    let mut errors = Errors::default();
    errors.required(&f, "objet", "Objet de la demande", 200);
    if orientation {
        errors.required(&f, "description", "Description du besoin", 10_000);
    } else {
        errors.max_len(&f, "description", "Description du besoin", 10_000);
    }
    let category = offer.as_ref().map(|o| s(o, "category")).unwrap_or("");
    let details = details(category, &f, Utc::now().date_naive());
    if let Err(more) = &details {
        errors.0.extend(more.0.iter().cloned());
    }
    if errors.is_empty() {
        let (dates, site) = details.unwrap_or_default();
        let mut body = json!({
            "subject": forms::value(&f, "objet"),
            "description": f.get("description").map(|d| d.trim()).unwrap_or(""),
        });
        match &offer {
            Some(offer) => body["offer_id"] = json!(s(offer, "id")),
            None => body["kind"] = json!("orientation"),
        }
        if let Some(dates) = dates {
            body["dates"] = dates;
        }
        if let Some(site) = site {
            body["site"] = site;
        }
        match state.gateway.send_json(Method::POST, "/v1/requests", Some(&token), &body, Some(&key), None).await {
            Ok(request) => {
                state.sessions.update(&ctx.sid, |session| {
                    session.flash = Some(if orientation {
                        "Votre demande est envoyée. La coordination va l'orienter vers l'offre et le partenaire qui conviennent.".into()
                    } else {
                        "Votre demande est envoyée. Elle va être orientée vers le partenaire compétent.".into()
                    })
                });
                return see_other(&format!("/demandes/{}", url_component(s(&request, "id"))));
            }
            Err(error) => errors = Errors::from_api(&error, &API_FIELDS),
        }
    }
    layout::page_with_status(
        &ctx,
        StatusCode::BAD_REQUEST,
        form_title(offer.as_ref()),
        &new_body(&ctx, offer.as_ref(), &f, &key, &errors),
    )
}

pub async fn list(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let token = match crate::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = members_only(&ctx) {
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

/// Who made a change of the history, in French.
pub fn actor(change: &Value) -> String {
    let role = s(change, "actor_role");
    let who = match role {
        "" | "system" => "La plateforme (orientation automatique)".to_owned(),
        role => fr::role(role).to_owned(),
    };
    match s(change, "provider_code") {
        "" => who,
        provider if role == "provider_agent" => format!("{who} ({provider})"),
        _ => who,
    }
}

/// The history table: when, from, to, who, why.
pub fn history(changes: &[Value]) -> String {
    let mut body = String::from(
        r#"<table><caption>Étapes de la demande, de la plus ancienne à la plus récente</caption><thead><tr><th scope="col">Date</th><th scope="col">Statut précédent</th><th scope="col">Nouveau statut</th><th scope="col">Par</th><th scope="col">Motif ou précision</th></tr></thead><tbody>"#,
    );
    for change in changes {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&fr::datetime(s(change, "at"))),
            esc(if s(change, "from").is_empty() { "—" } else { fr::request_status(s(change, "from")) }),
            esc(fr::request_status(s(change, "status"))),
            esc(&actor(change)),
            esc(if s(change, "reason").is_empty() { "—" } else { s(change, "reason") })
        );
    }
    body.push_str("</tbody></table>");
    body
}

/// Whether a request may still be cancelled (before its completion).
pub fn cancellable(status: &str) -> bool {
    matches!(status, "submitted" | "triage" | "referred" | "accepted" | "in_progress")
}

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

pub async fn detail(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    let token = match crate::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(id) = safe_id(&id) else {
        return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Introuvable", "Cette demande n'existe pas.");
    };
    let request = match state.gateway.get(&format!("/v1/requests/{id}"), Some(&token)).await {
        Ok(r) => r,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let offer_title = match safe_id(s(&request, "offer_id")) {
        Some(offer) => {
            state.gateway.get(&format!("/v1/offers/{offer}"), None).await.ok().map(|o| s(&o, "title").to_owned())
        }
        None => None,
    };
    let status = s(&request, "status");
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
        let _ = write!(
            extra,
            "<dt>Site</dt><dd>{}{}</dd>",
            esc(if address.is_empty() { "—" } else { address }),
            if insee.is_empty() { String::new() } else { format!(" (commune INSEE {})", esc(insee)) }
        );
    }
    let mut body = format!(
        r#"<dl class="facts">
<dt>Statut</dt><dd><span class="status status-{cls}">{status_fr}</span></dd>
<dt>Offre</dt><dd>{offer}</dd>
<dt>Partenaire</dt><dd>{provider}</dd>
<dt>Déposée le</dt><dd>{at}</dd>
{extra}</dl>
<h2>Description</h2><p>{description}</p>
<h2>Historique</h2>
{history}"#,
        cls = esc(status),
        status_fr = esc(fr::request_status(status)),
        offer = match offer_title {
            Some(title) =>
                format!(r#"<a href="/offres/{}">{}</a>"#, url_component(s(&request, "offer_id")), esc(&title)),
            None if s(&request, "offer_id").is_empty() =>
                "Demande d'orientation : la coordination choisit l'offre".to_owned(),
            None => esc(s(&request, "offer_id")),
        },
        provider = esc(if s(&request, "provider_code").is_empty() {
            "pas encore orientée"
        } else {
            s(&request, "provider_code")
        }),
        at = esc(&fr::datetime(s(&request, "submitted_at"))),
        description = crate::html::multiline(if s(&request, "description").is_empty() {
            "—"
        } else {
            s(&request, "description")
        }),
        history = history(request["history"].as_array().map(Vec::as_slice).unwrap_or(&[])),
    );
    let link = url_component(id);
    let csrf = forms::csrf(&ctx.csrf);
    if let Some(feedback) = request["feedback"].as_object() {
        let rating = feedback.get("rating").and_then(Value::as_u64).unwrap_or(0);
        let comment = feedback.get("comment").and_then(Value::as_str).unwrap_or("");
        let _ = write!(
            body,
            r#"<h2>Avis de la collectivité</h2><p>Note : <strong>{rating} sur 5</strong>{}</p>"#,
            if comment.is_empty() { String::new() } else { format!(" — « {} »", esc(comment)) }
        );
    }
    if ctx.is_member() && status == "completed" {
        let current = request["feedback"]["rating"].as_u64().unwrap_or(0);
        let mut stars = String::new();
        for n in 1..=5u64 {
            let _ = write!(
                stars,
                r#"<div class="choice"><input type="radio" id="note-{n}" name="note" value="{n}"{}><label for="note-{n}">{n}{}</label></div>"#,
                if n == current { " checked" } else { "" },
                match n {
                    1 => " (pas du tout satisfait)",
                    5 => " (très satisfait)",
                    _ => "",
                }
            );
        }
        let _ = write!(
            body,
            r#"<h2>Votre avis</h2><form method="post" action="/demandes/{link}/avis" class="form" novalidate>{csrf}
<fieldset><legend>Votre satisfaction, de 1 à 5 <span class="req">(obligatoire)</span></legend>{stars}</fieldset>
<div class="field"><label for="commentaire">Commentaire</label><p class="hint" id="commentaire-aide">Facultatif, 2000 caractères au plus. Vous pourrez modifier votre avis jusqu'à la clôture.</p><textarea id="commentaire" name="commentaire" rows="3" aria-describedby="commentaire-aide">{comment}</textarea></div>
<button type="submit">Enregistrer mon avis</button></form>"#,
            comment = esc(request["feedback"]["comment"].as_str().unwrap_or("")),
        );
    }
    if (ctx.is_member() || ctx.is("coordinator")) && cancellable(status) {
        let _ = write!(
            body,
            r#"<h2>Annuler la demande</h2><form method="post" action="/demandes/{link}/annuler" class="form" novalidate>{csrf}
<div class="field"><label for="motif-annulation">Motif de l'annulation</label><p class="hint" id="motif-annulation-aide">Facultatif. Le partenaire et la coordination en sont informés.</p><textarea id="motif-annulation" name="motif" rows="2" aria-describedby="motif-annulation-aide"></textarea></div>
<button type="submit" class="secondary">Annuler la demande</button></form>"#
        );
    }
    body.push_str(&conversation::section(&state, &ctx, &token, id, &format!("/demandes/{link}")).await);
    if ctx.is_member() || ctx.is("coordinator") || ctx.is("referent") {
        let quotes =
            state.gateway.get(&format!("/v1/quotes?request_id={id}"), Some(&token)).await.unwrap_or(Value::Null);
        let invoices =
            state.gateway.get(&format!("/v1/invoices?request_id={id}"), Some(&token)).await.unwrap_or(Value::Null);
        body.push_str("<h2>Devis et factures</h2>");
        body.push_str(&super::billing::tables(items(&quotes), items(&invoices)));
    }
    layout::page(&ctx, &format!("Demande : {}", s(&request, "subject")), &body)
}

/// `POST /demandes/{id}/annuler` (a member's users or the coordinator).
pub async fn cancel(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    let token = match crate::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(id) = safe_id(&id) else {
        return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Introuvable", "Cette demande n'existe pas.");
    };
    let reason = forms::value(&f, "motif");
    let message = if reason.chars().count() > 1000 {
        format!("{}Le motif ne doit pas dépasser 1000 caractères.", super::ERROR_FLASH)
    } else {
        match state.gateway.post(&format!("/v1/requests/{id}/cancel"), Some(&token), &json!({ "reason": reason })).await
        {
            Ok(_) => "La demande est annulée.".to_owned(),
            Err(error) => format!("{}{}", super::ERROR_FLASH, fr::problem(&error)),
        }
    };
    state.sessions.update(&ctx.sid, |session| session.flash = Some(message));
    see_other(&format!("/demandes/{}", url_component(id)))
}

/// `POST /demandes/{id}/avis`: a member's rating (1 to 5) and comment on a completed request.
pub async fn give_feedback(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    let token = match crate::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if let Some(r) = members_only(&ctx) {
        return r;
    }
    let Some(id) = safe_id(&id) else {
        return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Introuvable", "Cette demande n'existe pas.");
    };
    let message = match feedback(&f) {
        Err(message) => format!("{}{message}", super::ERROR_FLASH),
        Ok((rating, comment)) => {
            let body = json!({ "rating": rating, "comment": comment });
            match state
                .gateway
                .send_json(Method::PUT, &format!("/v1/requests/{id}/feedback"), Some(&token), &body, None, None)
                .await
            {
                Ok(_) => "Merci : votre avis est enregistré.".to_owned(),
                Err(error) => format!("{}{}", super::ERROR_FLASH, fr::problem(&error)),
            }
        }
    };
    state.sessions.update(&ctx.sid, |session| session.flash = Some(message));
    see_other(&format!("/demandes/{}", url_component(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn an_exhibition_loan_needs_valid_dates_in_order() {
        let today = day("2026-11-29");
        let ok = details("exhibition_loan", &fields(&[("debut", "2026-12-01"), ("fin", "2026-12-15")]), today);
        let (dates, site) = ok.unwrap_or_default();
        assert_eq!(dates, Some(json!({"start_date": "2026-12-01", "end_date": "2026-12-15"})));
        assert_eq!(site, None);
        let missing = details("exhibition_loan", &fields(&[]), today).err().unwrap_or_default();
        assert_eq!(missing.of("debut"), Some("Le champ « Premier jour du prêt » est obligatoire."));
        assert!(missing.of("fin").is_some());
        let past = details("exhibition_loan", &fields(&[("debut", "2026-11-01"), ("fin", "2026-11-02")]), today)
            .err()
            .unwrap_or_default();
        assert_eq!(past.of("debut"), Some("Le prêt ne peut pas commencer dans le passé."));
        let reversed = details("exhibition_loan", &fields(&[("debut", "2026-12-10"), ("fin", "2026-12-01")]), today)
            .err()
            .unwrap_or_default();
        assert!(reversed.of("fin").is_some_and(|m| m.contains("doit suivre")));
        let long = details("exhibition_loan", &fields(&[("debut", "2026-12-01"), ("fin", "2027-12-05")]), today)
            .err()
            .unwrap_or_default();
        assert!(long.of("fin").is_some_and(|m| m.contains("366 jours")));
        let garbage = details("exhibition_loan", &fields(&[("debut", "15/03/2027"), ("fin", "x")]), today)
            .err()
            .unwrap_or_default();
        assert!(garbage.of("debut").is_some_and(|m| m.contains("doit être une date")));
    }

    #[test]
    fn an_engineering_study_takes_an_optional_site() {
        let today = day("2026-11-29");
        let (dates, site) = details(
            "integrated_engineering",
            &fields(&[("adresse", " 1 rue de l'Église "), ("insee", "77284")]),
            today,
        )
        .unwrap_or_default();
        assert_eq!(dates, None);
        assert_eq!(site, Some(json!({"address": "1 rue de l'Église", "commune_insee": "77284"})));
        assert_eq!(details("integrated_engineering", &fields(&[]), today).ok(), Some((None, None)));
        let bad =
            details("integrated_engineering", &fields(&[("insee", "7728"), ("adresse", &"x".repeat(301))]), today)
                .err()
                .unwrap_or_default();
        assert!(bad.of("insee").is_some_and(|m| m.contains("5 caractères")));
        assert!(bad.of("adresse").is_some_and(|m| m.contains("300")));
        assert!(is_insee("2A004") && is_insee("77284") && !is_insee("2C004") && !is_insee("772845"));
        // Other categories carry neither (the API refuses them).
        assert_eq!(
            details("awareness_training", &fields(&[("debut", "x"), ("insee", "y")]), today).ok(),
            Some((None, None))
        );
    }

    #[test]
    fn api_field_errors_of_the_details_land_on_their_fields() {
        let error = crate::gateway::ApiError {
            status: 400,
            kind: "invalid-argument".into(),
            detail: String::new(),
            errors: vec![
                crate::gateway::FieldError {
                    field: "dates.start_date".into(),
                    detail: "must not be in the past".into(),
                },
                crate::gateway::FieldError { field: "site.commune_insee".into(), detail: "is required".into() },
            ],
        };
        let errors = Errors::from_api(&error, &API_FIELDS);
        assert!(errors.of("debut").is_some() && errors.of("insee").is_some());
    }

    #[test]
    fn history_says_who_from_and_to() {
        let changes = vec![
            json!({"status": "submitted", "at": "2026-11-29T08:00:00Z", "actor_role": "member_admin"}),
            json!({"status": "referred", "from": "submitted", "at": "2026-11-29T08:01:00Z", "actor_role": "system", "provider_code": "caue77", "reason": "règle <1>"}),
            json!({"status": "accepted", "from": "referred", "actor_role": "provider_agent", "provider_code": "caue77"}),
        ];
        let html = history(&changes);
        assert!(html.contains("<td>—</td><td>Déposée</td><td>Administrateur de la collectivité</td>"));
        assert!(html.contains("<td>Déposée</td><td>Orientée vers un partenaire</td><td>La plateforme (orientation automatique)</td><td>règle &lt;1&gt;</td>"));
        assert!(html.contains("Agent d&#39;un partenaire (caue77)"));
        assert!(html.contains(r#"<th scope="col">Par</th>"#));
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
