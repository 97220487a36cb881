//! Filing a request: the form for an offer (with the fields of its category) or an open orientation request,
//! checked in French, then sent to the gateway once (the form's key makes a double submission harmless).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use chrono::NaiveDate;
use id77_proto::vocabulary::Category;
use reqwest::Method;
use serde_json::{Value, json};

use crate::caller;
use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, url_component};
use crate::layout::{self, see_other};
use crate::pages::common::{s, safe_id};
use crate::pages::prologue;
use crate::session::random_token;
use crate::{AppState, Ctx, fr};

/// The category-specific fields of a request form, as the API takes them: an exhibition loan's dates
/// (`dates`), an integrated engineering study's site (`site`). `Err` are French errors tied to the fields.
pub fn details(
    category: Option<Category>,
    f: &Fields,
    today: NaiveDate,
) -> Result<(Option<Value>, Option<Value>), Errors> {
    let mut errors = Errors::default();
    let mut dates = None;
    let mut site = None;
    match category {
        Some(Category::ExhibitionLoan) => {
            let parse = |errors: &mut Errors, name: &str, label: &str| -> Option<NaiveDate> {
                let raw = forms::value(f, name);
                if raw.is_empty() {
                    errors.add(name, label, format!("Le champ « {label} » est obligatoire."));
                    return None;
                }
                match fr::parse_date(raw) {
                    Some(d) => Some(d),
                    None => {
                        errors.add(
                            name,
                            label,
                            format!("« {label} » doit être une date au format jj/mm/aaaa, par exemple 15/03/2027."),
                        );
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
            if errors.is_empty()
                && let (Some(start), Some(end)) = (start, end)
            {
                // The API takes ISO dates, whichever way the user typed them.
                dates = Some(json!({ "start_date": start.to_string(), "end_date": end.to_string() }));
            }
        }
        Some(Category::IntegratedEngineering) => {
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
    let specific = match Category::parse(category) {
        Some(Category::ExhibitionLoan) => format!(
            r#"<fieldset><legend>Période du prêt</legend><p class="hint">Le prêt commence au plus tôt aujourd'hui et dure au plus {MAX_LOAN_DAYS} jours.</p>{}{}</fieldset>"#,
            forms::field(
                "debut",
                "Premier jour du prêt",
                Input::Text { kind: "date", autocomplete: "off" },
                forms::value(f, "debut"),
                true,
                fr::DATE_HINT,
                errors
            ),
            forms::field(
                "fin",
                "Dernier jour du prêt",
                Input::Text { kind: "date", autocomplete: "off" },
                forms::value(f, "fin"),
                true,
                fr::DATE_HINT,
                errors
            ),
        ),
        Some(Category::IntegratedEngineering) => format!(
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
        return Err(prologue::not_found(ctx, "Cette offre n'existe pas."));
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
    if let Err(r) = caller::token(&state, &ctx).await {
        return r;
    }
    if let Some(r) = caller::members_only(&ctx) {
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
    let token = match prologue::post(&ctx, &f, caller::member_token(&state, &ctx)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
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
    let category = offer.as_ref().and_then(|o| Category::parse(s(o, "category")));
    let details = details(category, &f, fr::today());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    const LOAN: Option<Category> = Some(Category::ExhibitionLoan);
    const STUDY: Option<Category> = Some(Category::IntegratedEngineering);

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn an_exhibition_loan_needs_valid_dates_in_order() {
        let today = day("2026-11-29");
        let ok = details(LOAN, &fields(&[("debut", "2026-12-01"), ("fin", "2026-12-15")]), today);
        let (dates, site) = ok.unwrap_or_default();
        assert_eq!(dates, Some(json!({"start_date": "2026-12-01", "end_date": "2026-12-15"})));
        assert_eq!(site, None);
        let missing = details(LOAN, &fields(&[]), today).err().unwrap_or_default();
        assert_eq!(missing.of("debut"), Some("Le champ « Premier jour du prêt » est obligatoire."));
        assert!(missing.of("fin").is_some());
        let past =
            details(LOAN, &fields(&[("debut", "2026-11-01"), ("fin", "2026-11-02")]), today).err().unwrap_or_default();
        assert_eq!(past.of("debut"), Some("Le prêt ne peut pas commencer dans le passé."));
        let reversed =
            details(LOAN, &fields(&[("debut", "2026-12-10"), ("fin", "2026-12-01")]), today).err().unwrap_or_default();
        assert!(reversed.of("fin").is_some_and(|m| m.contains("doit suivre")));
        let long =
            details(LOAN, &fields(&[("debut", "2026-12-01"), ("fin", "2027-12-05")]), today).err().unwrap_or_default();
        assert!(long.of("fin").is_some_and(|m| m.contains("366 jours")));
        let typed = details(LOAN, &fields(&[("debut", "01/12/2026"), ("fin", " 15/12/2026 ")]), today);
        assert_eq!(
            typed.ok().and_then(|(dates, _)| dates),
            Some(json!({"start_date": "2026-12-01", "end_date": "2026-12-15"})),
            "jj/mm/aaaa as the hint says, sent as ISO dates"
        );
        let garbage = details(LOAN, &fields(&[("debut", "15 mars"), ("fin", "x")]), today).err().unwrap_or_default();
        assert!(garbage.of("debut").is_some_and(|m| m.contains("doit être une date")));
    }

    #[test]
    fn an_engineering_study_takes_an_optional_site() {
        let today = day("2026-11-29");
        let (dates, site) = details(STUDY, &fields(&[("adresse", " 1 rue de l'Église "), ("insee", "77284")]), today)
            .unwrap_or_default();
        assert_eq!(dates, None);
        assert_eq!(site, Some(json!({"address": "1 rue de l'Église", "commune_insee": "77284"})));
        assert_eq!(details(STUDY, &fields(&[]), today).ok(), Some((None, None)));
        let bad = details(STUDY, &fields(&[("insee", "7728"), ("adresse", &"x".repeat(301))]), today)
            .err()
            .unwrap_or_default();
        assert!(bad.of("insee").is_some_and(|m| m.contains("5 caractères")));
        assert!(bad.of("adresse").is_some_and(|m| m.contains("300")));
        assert!(is_insee("2A004") && is_insee("77284") && !is_insee("2C004") && !is_insee("772845"));
        // Other categories carry neither (the API refuses them).
        assert_eq!(
            details(Some(Category::AwarenessTraining), &fields(&[("debut", "x"), ("insee", "y")]), today).ok(),
            Some((None, None))
        );
        // Nor does an orientation request (no offer, so no category).
        assert_eq!(details(None, &fields(&[("debut", "x"), ("insee", "y")]), today).ok(), Some((None, None)));
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
}
