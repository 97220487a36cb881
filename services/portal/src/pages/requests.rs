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
                }).await;
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

/// Who made a change of the history, in French: the person's name and the role it acted in (« Marie Dupont —
/// Administrateur de la collectivité »), the role alone for older lines, the platform for its own decisions.
/// Never an e-mail address (older tokens carried no name, and the name fell back to the address).
pub fn actor(change: &Value) -> String {
    let role = s(change, "actor_role");
    let name = s(change, "actor_name").trim();
    let name = if name.contains('@') { "" } else { name };
    let label = match role {
        "" | "system" => None,
        role => Some(match s(change, "provider_code") {
            provider if !provider.is_empty() && matches!(role, "provider_agent" | "provider_consumer") => {
                format!("{} ({provider})", fr::role(role))
            }
            _ => fr::role(role).to_owned(),
        }),
    };
    match (name, label) {
        ("", Some(label)) => label,
        (name, Some(label)) => format!("{name} — {label}"),
        ("", None) if s(change, "status") == "cancelled" => "La plateforme (automatiquement)".to_owned(),
        ("", None) => "La plateforme (orientation automatique)".to_owned(),
        (name, None) => name.to_owned(),
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
    render_detail(&state, &ctx, &id, &Fields::new(), &Errors::default(), StatusCode::OK).await
}

/// The request's page; `f` and `errors` are those of a quote decision the gateway refused (shown next to the
/// fields, with the summary at the top), answered with `status`.
async fn render_detail(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    f: &Fields,
    errors: &Errors,
    page_status: StatusCode,
) -> Response {
    let (state, ctx) = (state.clone(), ctx.clone());
    let token = match crate::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(id) = safe_id(id) else {
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
        r#"{summary}<dl class="facts">
<dt>Statut</dt><dd><span class="status status-{cls}">{status_fr}</span></dd>
<dt>Offre</dt><dd>{offer}</dd>
<dt>Partenaire</dt><dd>{provider}</dd>
<dt>Déposée le</dt><dd>{at}</dd>
{extra}</dl>
<h2>Description</h2><p>{description}</p>
<h2>Historique</h2>
{history}"#,
        summary = forms::summary(errors),
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
    let sees_billing = ctx.is_member() || ctx.is("coordinator") || ctx.is("referent");
    let (quotes, invoices) = if sees_billing {
        let quotes =
            state.gateway.get(&format!("/v1/quotes?request_id={id}"), Some(&token)).await.unwrap_or(Value::Null);
        let invoices =
            state.gateway.get(&format!("/v1/invoices?request_id={id}"), Some(&token)).await.unwrap_or(Value::Null);
        (quotes, invoices)
    } else {
        (Value::Null, Value::Null)
    };
    if sees_billing {
        body.push_str(&quote_section(items(&quotes), &ctx, &format!("/demandes/{link}"), f, errors));
    }
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
    if sees_billing {
        body.push_str("<h2>Factures</h2>");
        body.push_str(&super::billing::invoices_table(items(&invoices)));
    }
    layout::page_with_status(&ctx, page_status, &format!("Demande : {}", s(&request, "subject")), &body)
}

/// Labels of the quote decision forms.
pub const SIGNATORY_LABEL: &str = "Nom du signataire";
pub const PURCHASE_ORDER_LABEL: &str = "Numéro d'engagement / bon de commande";
pub const REFUSAL_LABEL: &str = "Motif du refus";
/// The API's limits (billing's): signatory, purchase order number, refusal reason.
pub const MAX_SIGNATORY_CHARS: usize = 200;
pub const MAX_PURCHASE_ORDER_CHARS: usize = 50;
pub const MAX_REFUSAL_CHARS: usize = 1000;

/// The API's field names → the decision forms' ids and labels.
const QUOTE_FIELDS: [(&str, &str, &str); 3] = [
    ("signatory_name", "signataire", SIGNATORY_LABEL),
    ("purchase_order_number", "engagement", PURCHASE_ORDER_LABEL),
    ("reason", "motif-refus", REFUSAL_LABEL),
];

/// The acceptance form's body for `POST /v1/quotes/{id}/accept`, or its errors in French.
pub fn acceptance(f: &Fields) -> Result<Value, Errors> {
    let mut errors = Errors::default();
    errors.required(f, "signataire", SIGNATORY_LABEL, MAX_SIGNATORY_CHARS);
    errors.max_len(f, "engagement", PURCHASE_ORDER_LABEL, MAX_PURCHASE_ORDER_CHARS);
    for (name, label) in [("signataire", SIGNATORY_LABEL), ("engagement", PURCHASE_ORDER_LABEL)] {
        if forms::value(f, name).chars().any(char::is_control) && errors.of(name).is_none() {
            errors.add(name, label, format!("Le champ « {label} » contient des caractères non imprimables."));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut body = json!({ "signatory_name": forms::value(f, "signataire") });
    if !forms::value(f, "engagement").is_empty() {
        body["purchase_order_number"] = json!(forms::value(f, "engagement"));
    }
    Ok(body)
}

/// The refusal form's body for `POST /v1/quotes/{id}/refuse`, or its errors in French.
pub fn refusal(f: &Fields) -> Result<Value, Errors> {
    let mut errors = Errors::default();
    errors.required(f, "motif-refus", REFUSAL_LABEL, MAX_REFUSAL_CHARS);
    if errors.is_empty() { Ok(json!({ "reason": forms::value(f, "motif-refus") })) } else { Err(errors) }
}

/// The sentence for a decision the gateway refused as a whole (not one of its fields).
pub fn quote_problem(error: &crate::gateway::ApiError) -> String {
    match error.status {
        403 => "Seul un administrateur de la collectivité peut accepter ou refuser un devis.".to_owned(),
        404 => "Ce devis est introuvable (ou vous n'y avez pas accès).".to_owned(),
        409 => "Ce devis n'attend plus de décision : il a déjà été accepté ou refusé, ou bien il a été annulé ou a \
                expiré. La page montre son état actuel."
            .to_owned(),
        _ => fr::problem(error),
    }
}

/// One fact of a quote (`—` when empty).
fn fact(out: &mut String, label: &str, value: &str) {
    let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(label), esc(if value.is_empty() { "—" } else { value }));
}

/// The « Devis » section of a request's page: each quote with its amounts, status and decision; for a member
/// admin and a proposed quote, the acceptance and refusal forms (`f` and `errors`: a refused submission); for the
/// other users of the member, who must accept it.
pub fn quote_section(quotes: &[Value], ctx: &Ctx, back: &str, f: &Fields, errors: &Errors) -> String {
    let mut body = String::from(r#"<h2 id="devis">Devis</h2>"#);
    if quotes.is_empty() {
        body.push_str("<p>Aucun devis pour cette demande.</p>");
        return body;
    }
    let mut forms_shown = false;
    for q in quotes {
        let status = s(q, "status");
        let number = s(q, "number");
        let net = q["amount_cents"].as_i64().unwrap_or(0);
        let vat = fr::vat_cents(net, q["vat_rate_bp"].as_i64());
        let _ = write!(body, "<h3>Devis {}</h3><dl class=\"facts\">", esc(number));
        let _ = write!(
            body,
            r#"<dt>Statut du devis</dt><dd><span class="status quote-{}">{}</span></dd>"#,
            esc(status),
            esc(fr::quote_status(status))
        );
        fact(&mut body, "Objet", s(q, "label"));
        if q["amount_to_be_stated"].as_bool() == Some(true) {
            fact(&mut body, "Montant", "à préciser par le partenaire");
        } else {
            fact(&mut body, "Montant HT", &fr::euros(net));
            match (vat, q["vat_rate_bp"].as_i64()) {
                (Some(vat), Some(rate)) => {
                    fact(&mut body, &format!("TVA ({})", fr::percent_bp(rate)), &fr::euros(vat));
                    fact(&mut body, "Montant TTC", &fr::euros(net + vat));
                }
                _ => {
                    let note = s(q, "vat_note");
                    fact(&mut body, "TVA", if note.is_empty() { "non applicable" } else { note });
                    fact(&mut body, "Montant TTC", &fr::euros(net));
                }
            }
        }
        fact(&mut body, "Proposé le", &fr::datetime(s(q, "issued_at")));
        if status == "proposed" && !s(q, "expires_at").is_empty() {
            fact(&mut body, "Valable jusqu'au", &fr::datetime(s(q, "expires_at")));
        }
        if status != "proposed" {
            // A person's name, never an address (older tokens carried none and the name fell back to it).
            let who = match (s(q, "decided_by_name").trim(), status) {
                (name, "accepted" | "refused") if name.is_empty() || name.contains('@') => {
                    "un administrateur de la collectivité".to_owned()
                }
                (name, _) if name.is_empty() || name.contains('@') => "la plateforme".to_owned(),
                (name, _) => name.to_owned(),
            };
            let when = fr::datetime(s(q, "decided_at"));
            let decision = match status {
                "accepted" => "Accepté",
                "refused" => "Refusé",
                "voided" => "Annulé",
                "expired" => "Expiré",
                _ => "Décidé",
            };
            if s(q, "decided_at").is_empty() {
                fact(&mut body, "Décision", &format!("{decision} par {who}"));
            } else {
                fact(&mut body, "Décision", &format!("{decision} par {who}, le {when}"));
            }
        }
        if status == "accepted" || !s(q, "signatory_name").is_empty() {
            fact(&mut body, "Signataire", s(q, "signatory_name"));
            fact(&mut body, "N° d'engagement / bon de commande", s(q, "purchase_order_number"));
        }
        if !s(q, "decision_reason").is_empty() {
            fact(&mut body, "Motif", s(q, "decision_reason"));
        }
        let _ = write!(
            body,
            r#"</dl><p><a href="/devis/{}.pdf" download>Télécharger le devis {} (PDF)</a></p>"#,
            url_component(s(q, "id")),
            esc(number)
        );
        if status != "proposed" {
            continue;
        }
        if ctx.is("member_admin") && !forms_shown {
            forms_shown = true;
            let action = format!("{back}/devis/{}", url_component(s(q, "id")));
            let csrf = forms::csrf(&ctx.csrf);
            let _ = write!(
                body,
                r#"<p>Le partenaire ne commence la prestation qu'après votre accord sur ce devis. En l'acceptant, vous engagez la dépense de votre collectivité ; en le refusant, vous annulez la demande.</p>
<h4>Accepter le devis</h4>
<form method="post" action="{action}/accepter" class="form" novalidate>{csrf}{signatory}{order}<button type="submit">Accepter le devis</button></form>
<h4>Refuser le devis</h4>
<form method="post" action="{action}/refuser" class="form" novalidate>{csrf}{reason}<button type="submit" class="secondary">Refuser le devis</button></form>"#,
                signatory = forms::field(
                    "signataire",
                    SIGNATORY_LABEL,
                    Input::Text { kind: "text", autocomplete: "off" },
                    forms::value(f, "signataire"),
                    true,
                    "La personne qui engage la collectivité, avec sa qualité, par exemple : Marie Dupont, maire.",
                    errors
                ),
                order = forms::field(
                    "engagement",
                    PURCHASE_ORDER_LABEL,
                    Input::Text { kind: "text", autocomplete: "off" },
                    forms::value(f, "engagement"),
                    false,
                    "Facultatif, 50 caractères au plus : il figurera sur la facture.",
                    errors
                ),
                reason = forms::field(
                    "motif-refus",
                    REFUSAL_LABEL,
                    Input::TextArea { rows: 3 },
                    f.get("motif-refus").map(String::as_str).unwrap_or(""),
                    true,
                    "La demande sera annulée ; le partenaire et la coordination en sont informés.",
                    errors
                ),
            );
        } else if ctx.is_member() && !ctx.is("member_admin") {
            body.push_str(
                "<p>Ce devis attend l'accord de votre collectivité : un administrateur de la collectivité doit \
                 l'accepter pour que le partenaire commence la prestation.</p>",
            );
        } else if !ctx.is_member() {
            body.push_str("<p>Ce devis attend la décision d'un administrateur de la collectivité.</p>");
        }
    }
    body
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
    let (Some(id), Some(quote)) = (safe_id(&id), safe_id(&quote)) else {
        return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Introuvable", "Ce devis n'existe pas.");
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
    state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
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

    fn ctx(role: &str) -> Ctx {
        Ctx {
            sid: "s".into(),
            csrf: "jeton-csrf".into(),
            user: Some(crate::session::User {
                id: "u1".into(),
                email: "dgs@meaux.fr".into(),
                display_name: "Marie Dupont".into(),
                role: role.into(),
                member_id: Some("m1".into()),
                provider_code: None,
            }),
            flash: None,
            path: "/demandes/r1".into(),
            client_ip: None,
        }
    }

    fn proposed() -> Value {
        json!({"id": "q1", "number": "D-caue77-2026-000007", "label": "Diagnostic de voirie", "status": "proposed",
               "amount_cents": 245_000, "vat_rate_bp": 2000, "issued_at": "2026-11-29T08:00:00Z",
               "expires_at": "2026-12-29T08:00:00Z"})
    }

    #[test]
    fn the_decision_forms_are_checked_in_french_before_the_gateway() {
        let ok = acceptance(&fields(&[("signataire", " Marie Dupont, maire "), ("engagement", " EJ-2026-0042 ")]));
        assert_eq!(
            ok.ok(),
            Some(json!({"signatory_name": "Marie Dupont, maire", "purchase_order_number": "EJ-2026-0042"}))
        );
        let without_order = acceptance(&fields(&[("signataire", "Marie Dupont"), ("engagement", "  ")]));
        assert_eq!(without_order.ok(), Some(json!({"signatory_name": "Marie Dupont"})), "the number is optional");
        let missing = acceptance(&fields(&[("engagement", &"9".repeat(51))])).err().unwrap_or_default();
        assert_eq!(missing.of("signataire"), Some("Le champ « Nom du signataire » est obligatoire."));
        assert_eq!(
            missing.of("engagement"),
            Some("Le champ « Numéro d'engagement / bon de commande » ne doit pas dépasser 50 caractères.")
        );
        let long = acceptance(&fields(&[("signataire", &"é".repeat(201))])).err().unwrap_or_default();
        assert!(long.of("signataire").is_some_and(|m| m.contains("200 caractères")));
        let control =
            acceptance(&fields(&[("signataire", "Marie"), ("engagement", "EJ\u{7}1")])).err().unwrap_or_default();
        assert!(control.of("engagement").is_some_and(|m| m.contains("non imprimables")));

        assert_eq!(
            refusal(&fields(&[("motif-refus", " Budget non voté ")])).ok(),
            Some(json!({"reason": "Budget non voté"}))
        );
        let empty = refusal(&fields(&[("motif-refus", " ")])).err().unwrap_or_default();
        assert_eq!(empty.of("motif-refus"), Some("Le champ « Motif du refus » est obligatoire."));
        assert!(refusal(&fields(&[("motif-refus", &"x".repeat(1001))])).is_err());
    }

    #[test]
    fn a_member_admin_gets_the_acceptance_and_refusal_forms_of_a_proposed_quote() {
        let html =
            quote_section(&[proposed()], &ctx("member_admin"), "/demandes/r1", &Fields::new(), &Errors::default());
        assert!(html.contains(r#"<h2 id="devis">Devis</h2>"#) && html.contains("<h3>Devis D-caue77-2026-000007</h3>"));
        assert!(html.contains("<dt>Statut du devis</dt><dd><span class=\"status quote-proposed\">Proposé</span></dd>"));
        assert!(html.contains("<dt>Montant HT</dt><dd>2\u{a0}450,00\u{a0}€</dd>"));
        assert!(html.contains("<dt>TVA (20\u{a0}%)</dt><dd>490,00\u{a0}€</dd>"));
        assert!(html.contains("<dt>Montant TTC</dt><dd>2\u{a0}940,00\u{a0}€</dd>"));
        assert!(html.contains("<dt>Valable jusqu&#39;au</dt><dd>29/12/2026 à 08:00 UTC</dd>"));
        assert!(
            html.contains(r#"<form method="post" action="/demandes/r1/devis/q1/accepter" class="form" novalidate>"#)
        );
        assert!(
            html.contains(r#"<form method="post" action="/demandes/r1/devis/q1/refuser" class="form" novalidate>"#)
        );
        assert_eq!(
            html.matches(r#"<input type="hidden" name="_csrf" value="jeton-csrf">"#).count(),
            2,
            "one CSRF field per form"
        );
        assert!(
            html.contains(
                r#"<label for="signataire">Nom du signataire <span class="req">(obligatoire)</span></label>"#
            )
        );
        assert!(html.contains(r#"<label for="engagement">Numéro d&#39;engagement / bon de commande</label>"#));
        assert!(
            html.contains(r#"<label for="motif-refus">Motif du refus <span class="req">(obligatoire)</span></label>"#)
        );
        assert!(html.contains(r#"href="/devis/q1.pdf""#));
        // Errors the gateway gave land next to their fields, the typed values kept.
        let error = crate::gateway::ApiError {
            status: 400,
            kind: "invalid-argument".into(),
            detail: String::new(),
            errors: vec![crate::gateway::FieldError { field: "signatory_name".into(), detail: "is required".into() }],
        };
        let errors = Errors::from_api(&error, &QUOTE_FIELDS);
        let typed = fields(&[("engagement", "EJ-1")]);
        let html = quote_section(&[proposed()], &ctx("member_admin"), "/demandes/r1", &typed, &errors);
        assert!(html.contains(r#"id="signataire-erreur""#) && html.contains(r#"aria-invalid="true""#));
        assert!(html.contains(r#"value="EJ-1""#));
    }

    #[test]
    fn a_member_user_sees_the_quote_and_who_must_accept_it() {
        let html =
            quote_section(&[proposed()], &ctx("member_user"), "/demandes/r1", &Fields::new(), &Errors::default());
        assert!(html.contains("un administrateur de la collectivité doit l'accepter pour que le partenaire commence"));
        assert!(!html.contains("<form"), "no decision form for a member user");
        let html =
            quote_section(&[proposed()], &ctx("coordinator"), "/demandes/r1", &Fields::new(), &Errors::default());
        assert!(html.contains("attend la décision d'un administrateur") && !html.contains("<form"));
    }

    #[test]
    fn decided_quotes_say_who_when_and_why() {
        let accepted = json!({"id": "q1", "number": "D-1", "status": "accepted", "amount_cents": 1000,
            "vat_note": "TVA non applicable, art. 256 B du CGI", "decided_at": "2026-11-30T09:00:00Z",
            "decided_by_name": "Marie Dupont", "signatory_name": "Marie Dupont, maire", "purchase_order_number": "EJ-42"});
        let html = quote_section(&[accepted], &ctx("member_admin"), "/demandes/r1", &Fields::new(), &Errors::default());
        assert!(html.contains(">Accepté</span>"));
        assert!(html.contains("<dt>Décision</dt><dd>Accepté par Marie Dupont, le 30/11/2026 à 09:00 UTC</dd>"));
        assert!(html.contains("<dt>Signataire</dt><dd>Marie Dupont, maire</dd>"));
        assert!(html.contains("<dt>N° d&#39;engagement / bon de commande</dt><dd>EJ-42</dd>"));
        assert!(html.contains(
            "<dt>TVA</dt><dd>TVA non applicable, art. 256 B du CGI</dd><dt>Montant TTC</dt><dd>10,00\u{a0}€</dd>"
        ));
        assert!(!html.contains("<form") && !html.contains("Valable"), "a decided quote has no forms nor expiry");
        let refused = json!({"id": "q2", "number": "D-2", "status": "refused", "decided_at": "2026-11-30T09:00:00Z",
            "decided_by_name": "Marie Dupont", "decision_reason": "Budget <non> voté"});
        let html = quote_section(&[refused], &ctx("member_user"), "/demandes/r1", &Fields::new(), &Errors::default());
        assert!(html.contains(">Refusé</span>") && html.contains("<dt>Motif</dt><dd>Budget &lt;non&gt; voté</dd>"));
        assert!(!html.contains("Signataire"));
        let by_address = json!({"id": "q2", "number": "D-2", "status": "refused", "decided_by_name": "dgs@meaux.fr"});
        let html = quote_section(&[by_address], &ctx("member_user"), "/d", &Fields::new(), &Errors::default());
        assert!(html.contains("<dd>Refusé par un administrateur de la collectivité</dd>") && !html.contains("dgs@"));
        for (status, french) in [("voided", "Annulé"), ("expired", "Expiré")] {
            let quote = json!({"id": "q3", "number": "D-3", "status": status, "decision_reason": "demande annulée"});
            let html =
                quote_section(&[quote], &ctx("member_admin"), "/demandes/r1", &Fields::new(), &Errors::default());
            assert!(html.contains(&format!("<dd>{french} par la plateforme</dd>")), "{html}");
        }
        assert!(
            quote_section(&[], &ctx("member_admin"), "/d", &Fields::new(), &Errors::default()).contains("Aucun devis")
        );
    }

    #[test]
    fn refused_decisions_are_told_in_french() {
        let error = |status: u16, kind: &str| crate::gateway::ApiError {
            status,
            kind: kind.into(),
            detail: String::new(),
            errors: vec![],
        };
        assert!(
            quote_problem(&error(403, "permission-denied")).starts_with("Seul un administrateur de la collectivité")
        );
        assert!(quote_problem(&error(409, "invalid-transition")).contains("n'attend plus de décision"));
        assert!(quote_problem(&error(503, "unavailable")).contains("indisponible"));
    }

    #[test]
    fn history_names_people_and_their_roles_never_their_addresses() {
        let changes = vec![
            json!({"status": "cancelled", "from": "accepted", "actor_role": "member_admin", "actor_name": "Marie Dupont",
                   "reason": "Devis D-1 refusé : budget"}),
            json!({"status": "accepted", "from": "referred", "actor_role": "provider_agent", "actor_name": "Paul Martin",
                   "provider_code": "caue77"}),
            json!({"status": "referred", "actor_role": "coordinator", "actor_name": "dgs@meaux.fr"}),
            json!({"status": "cancelled", "actor_role": "system"}),
            json!({"status": "completed", "actor_role": "provider_consumer", "actor_name": "connecteur caue77", "provider_code": "caue77"}),
        ];
        let html = history(&changes);
        assert!(html.contains("<td>Marie Dupont — Administrateur de la collectivité</td>"));
        assert!(html.contains("<td>Paul Martin — Agent d&#39;un partenaire (caue77)</td>"));
        assert!(html.contains("<td>Coordination (guichet unique)</td>") && !html.contains("dgs@meaux.fr"));
        assert!(html.contains("<td>La plateforme (automatiquement)</td>"));
        assert!(html.contains("<td>connecteur caue77 — Connecteur du partenaire (caue77)</td>"));
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
