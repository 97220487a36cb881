//! The coordinator: membership approvals (and the first admin's invitation), referrals (at risk first), and
//! the routing rules.

use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use id77_proto::vocabulary::MemberKind;
use serde_json::{Value, json};

use super::common::{items, s, safe_id};
use crate::caller::{self, check_csrf};
use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, query, url_component};
use crate::layout::see_other;
use crate::{AppState, Ctx, fr, layout};

fn statuses() -> Vec<(String, String)> {
    ["pending", "active", "suspended", "withdrawn"]
        .iter()
        .map(|v| ((*v).to_owned(), fr::member_status(v).to_owned()))
        .collect()
}

pub async fn memberships(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<Fields>,
) -> Response {
    let token = match caller::coordinator_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let status = match forms::value(&q, "statut") {
        s @ ("pending" | "active" | "suspended" | "withdrawn") => s,
        _ => "pending",
    };
    let page = match state.gateway.get(&format!("/v1/memberships?status={status}&limit=100"), Some(&token)).await {
        Ok(p) => p,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let no_errors = Errors::default();
    let mut body = format!(
        r#"<form method="get" action="/coordination/adhesions" class="form search">{}<button type="submit">Afficher</button></form>"#,
        forms::field("statut", "Statut des adhésions", Input::Select(&statuses()), status, false, "", &no_errors)
    );
    let members = items(&page);
    let _ = write!(body, r#"<h2>Adhésions : {}</h2>"#, esc(fr::member_status(status)));
    if members.is_empty() {
        body.push_str("<p>Aucune adhésion dans cet état.</p>");
    } else {
        let _ = write!(
            body,
            r#"<table><caption>Adhésions ({})</caption><thead><tr><th scope="col">Collectivité</th><th scope="col">Type</th><th scope="col">Contact</th><th scope="col">Demandée le</th><th scope="col">Action</th></tr></thead><tbody>"#,
            esc(fr::member_status(status))
        );
        for m in members {
            let id = url_component(s(m, "id"));
            let name = esc(s(m, "name"));
            let action = match s(m, "status") {
                "pending" => format!(
                    r#"<form method="post" action="/coordination/adhesions/{id}/valider" class="inline">{}<button type="submit">Valider<span class="visually-hidden"> l'adhésion de {name}</span></button></form>"#,
                    forms::csrf(&ctx.csrf)
                ),
                "active" => format!(
                    r#"<form method="post" action="/coordination/adhesions/{id}/inviter" class="inline-fields">{csrf}
<label for="nom-{id}">Nom de l'administrateur</label><input type="text" id="nom-{id}" name="nom" value="{contact}" required>
<label for="courriel-{id}">Adresse électronique</label><input type="email" id="courriel-{id}" name="courriel" value="{email}" required>
<button type="submit">Inviter l'administrateur<span class="visually-hidden"> de {name}</span></button></form>"#,
                    csrf = forms::csrf(&ctx.csrf),
                    contact = esc(s(m, "contact_name")),
                    email = esc(s(m, "contact_email")),
                ),
                _ => "—".to_owned(),
            };
            let _ = write!(
                body,
                r#"<tr><th scope="row">{name}<br><span class="small">SIREN {}</span></th><td>{}</td><td>{}<br><span class="small">{}</span></td><td>{}</td><td>{action}</td></tr>"#,
                esc(s(m, "siren")),
                esc(fr::collectivity_kind(s(m, "kind"))),
                esc(s(m, "contact_name")),
                esc(s(m, "contact_email")),
                esc(&fr::datetime(s(m, "applied_at"))),
            );
        }
        body.push_str("</tbody></table>");
    }
    layout::page(&ctx, "Adhésions", &body)
}

pub async fn approve(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    let token = match caller::coordinator_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(id) = safe_id(&id) else {
        return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Introuvable", "Cette adhésion n'existe pas.");
    };
    match state.gateway.post(&format!("/v1/memberships/{id}/approve"), Some(&token), &json!({})).await {
        Ok(member) => {
            let message =
                format!("L'adhésion de {} est validée. Invitez maintenant son administrateur.", s(&member, "name"));
            state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
            see_other("/coordination/adhesions?statut=active")
        }
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}

pub async fn invite(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    let token = match caller::coordinator_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(id) = safe_id(&id) else {
        return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Introuvable", "Cette adhésion n'existe pas.");
    };
    let mut errors = Errors::default();
    errors.required(&f, "nom", "Nom de l'administrateur", 200);
    errors.email(&f, "courriel", "Adresse électronique");
    if errors.is_empty() {
        let body = json!({ "email": forms::value(&f, "courriel"), "display_name": forms::value(&f, "nom"), "role": "member_admin", "member_id": id });
        match state.gateway.post("/v1/users", Some(&token), &body).await {
            Ok(invitation) => {
                let link = format!("/invitation{}", query(&[("jeton", s(&invitation, "invitation_token"))]));
                let body = format!(
                    r#"<div class="notice success" role="status"><p>{} est invité comme administrateur de la collectivité.</p></div>
<p>En production, l'invitation part par courriel. Transmettez-lui ce lien d'activation (valable jusqu'au {}) :</p>
<p class="token"><a href="{link}" id="lien-invitation">Lien d'activation du compte</a></p>
<p><a href="/coordination/adhesions">Retour aux adhésions</a></p>"#,
                    esc(forms::value(&f, "courriel")),
                    esc(&fr::datetime(s(&invitation, "expires_at"))),
                );
                return layout::page(&ctx, "Invitation envoyée", &body);
            }
            Err(error) => errors = Errors::from_api(&error, &[]),
        }
    }
    let body = format!(
        r#"{}<p><a href="/coordination/adhesions?statut=active">Retour aux adhésions actives</a></p>"#,
        forms::summary(&errors)
    );
    layout::page_with_status(&ctx, StatusCode::BAD_REQUEST, "Invitation impossible", &body)
}

pub async fn referrals(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<Fields>,
) -> Response {
    let token = match caller::coordinator_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let at_risk = forms::value(&q, "a_risque") == "1";
    let path = if at_risk { "/v1/referrals?at_risk=true&limit=100" } else { "/v1/referrals?limit=100" };
    let page = match state.gateway.get(path, Some(&token)).await {
        Ok(p) => p,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let mut body = format!(
        r#"<p><a href="/coordination/orientations?a_risque=1"{}>Orientations à risque</a> · <a href="/coordination/orientations"{}>Toutes les orientations</a></p>"#,
        if at_risk { r#" aria-current="page""# } else { "" },
        if at_risk { "" } else { r#" aria-current="page""# }
    );
    let referrals = items(&page);
    let _ = write!(
        body,
        "<h2>{}</h2>",
        if at_risk { "Sans réponse après la date de relance" } else { "Toutes les orientations" }
    );
    if referrals.is_empty() {
        body.push_str(if at_risk {
            "<p>Aucune orientation à risque : tous les partenaires ont répondu à temps.</p>"
        } else {
            "<p>Aucune orientation.</p>"
        });
    } else {
        body.push_str(&crate::pages::provider::referrals_table(
            if at_risk { "Orientations à risque" } else { "Orientations" },
            referrals,
            "",
        ));
    }
    layout::page(&ctx, if at_risk { "Orientations à risque" } else { "Orientations" }, &body)
}

/// The kinds of condition the form offers.
const CONDITIONS: [(&str, &str); 8] = [
    ("", "Toujours (aucune condition)"),
    ("theme", "Thème de l'offre"),
    ("offer", "Code de l'offre"),
    ("arrondissement", "Arrondissement"),
    ("epci", "Intercommunalité (SIREN)"),
    ("commune", "Commune (code INSEE)"),
    ("kind", "Type de collectivité (commune, epci, syndicat)"),
    ("population", "Population"),
];

/// The rule's condition as the API expects it, from the form: a kind and comma-separated values, or a
/// population range. `Err` names the form field and the French message.
pub fn condition(kind: &str, values: &str, min: &str, max: &str) -> Result<Value, (&'static str, String)> {
    let list: Vec<String> =
        values.split([',', ';', '\n']).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned).collect();
    match kind {
        "" => Ok(Value::Null),
        "population" => {
            let parse = |v: &str, field: &'static str| -> Result<Option<i64>, (&'static str, String)> {
                if v.trim().is_empty() {
                    return Ok(None);
                }
                v.trim()
                    .parse::<i64>()
                    .map(Some)
                    .ok()
                    .filter(|n| n.is_some_and(|n| n >= 0))
                    .ok_or((field, "Saisissez un nombre entier d'habitants.".to_owned()))
            };
            let (min, max) = (parse(min, "min")?, parse(max, "max")?);
            if min.is_none() && max.is_none() {
                return Err(("min", "Indiquez une population minimale, maximale ou les deux.".to_owned()));
            }
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                return Err(("max", "La population maximale doit être supérieure ou égale à la minimale.".to_owned()));
            }
            let mut range = serde_json::Map::new();
            if let Some(min) = min {
                range.insert("min".into(), json!(min));
            }
            if let Some(max) = max {
                range.insert("max".into(), json!(max));
            }
            Ok(json!({ "population": range }))
        }
        "theme" | "offer" | "arrondissement" | "epci" | "commune" | "kind" => {
            if list.is_empty() {
                return Err(("valeurs", "Indiquez au moins une valeur, séparées par des virgules.".to_owned()));
            }
            if kind == "epci" && list.iter().any(|v| v.len() != 9 || !v.bytes().all(|b| b.is_ascii_digit())) {
                return Err(("valeurs", "Un SIREN compte 9 chiffres.".to_owned()));
            }
            if kind == "kind" && list.iter().any(|v| MemberKind::parse(v).is_none()) {
                return Err(("valeurs", "Les types possibles sont : commune, epci, syndicat.".to_owned()));
            }
            Ok(json!({ kind: list }))
        }
        _ => Err(("condition", "Choisissez un type de condition de la liste.".to_owned())),
    }
}

fn describe(condition: &Value) -> String {
    match condition.as_object().and_then(|o| o.iter().next()) {
        None => "Toujours".to_owned(),
        Some((key, value)) => {
            let label = CONDITIONS.iter().find(|(k, _)| k == key).map(|(_, l)| *l).unwrap_or(key.as_str());
            let value = match value {
                Value::Array(list) if list.iter().all(Value::is_string) => {
                    list.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
                }
                Value::Object(range) if key == "population" => {
                    match (range.get("min").and_then(Value::as_i64), range.get("max").and_then(Value::as_i64)) {
                        (Some(a), Some(b)) => format!("de {a} à {b} habitants"),
                        (Some(a), None) => format!("au moins {a} habitants"),
                        (None, Some(b)) => format!("au plus {b} habitants"),
                        _ => String::new(),
                    }
                }
                other => other.to_string(),
            };
            format!("{label} : {value}")
        }
    }
}

async fn rules_page(
    state: &AppState,
    ctx: &Ctx,
    token: &str,
    f: &Fields,
    errors: &Errors,
    status: StatusCode,
) -> Response {
    let rules = match state.gateway.get("/v1/routing/rules", Some(token)).await {
        Ok(r) => r,
        Err(error) => return layout::api_error_page(ctx, &error),
    };
    let providers = state.gateway.get("/v1/providers", None).await.unwrap_or(Value::Null);
    let mut body = format!(
        "<p>Les demandes sont orientées par la première règle dont la condition est remplie ; sinon vers le partenaire de l'offre ; sinon dans la file de triage. Version des règles : {}.</p>",
        rules["version"].as_i64().unwrap_or(0)
    );
    let list = rules["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if list.is_empty() {
        body.push_str("<p>Aucune règle : chaque demande va au partenaire de son offre.</p>");
    } else {
        body.push_str(r#"<table><caption>Règles d'orientation, dans l'ordre où elles sont essayées</caption><thead><tr><th scope="col">Ordre</th><th scope="col">Nom</th><th scope="col">Condition</th><th scope="col">Partenaire</th></tr></thead><tbody>"#);
        for r in list {
            let _ = write!(
                body,
                r#"<tr><td>{}</td><th scope="row">{}</th><td>{}</td><td>{}</td></tr>"#,
                r["position"].as_u64().unwrap_or(0),
                esc(s(r, "name")),
                esc(&describe(&r["condition"])),
                esc(s(r, "provider_code"))
            );
        }
        body.push_str("</tbody></table>");
    }
    let provider_options: Vec<(String, String)> = std::iter::once((String::new(), "Choisir un partenaire".to_owned()))
        .chain(
            items(&providers).iter().map(|p| (s(p, "code").to_owned(), format!("{} ({})", s(p, "name"), s(p, "code")))),
        )
        .collect();
    let condition_options: Vec<(String, String)> =
        CONDITIONS.iter().map(|(k, l)| ((*k).to_owned(), (*l).to_owned())).collect();
    let _ = write!(
        body,
        r#"<h2>Ajouter une règle</h2>{summary}<form method="post" action="/coordination/regles" novalidate class="form">{csrf}
{name}{provider}
<fieldset><legend>Condition</legend>{kind}{values}{min}{max}</fieldset>
<button type="submit">Ajouter la règle</button>
</form>"#,
        summary = forms::summary(errors),
        csrf = forms::csrf(&ctx.csrf),
        name = forms::field(
            "nom",
            "Nom de la règle",
            Input::Text { kind: "text", autocomplete: "off" },
            forms::value(f, "nom"),
            true,
            "",
            errors
        ),
        provider = forms::field(
            "partenaire",
            "Partenaire qui reçoit les demandes",
            Input::Select(&provider_options),
            forms::value(f, "partenaire"),
            true,
            "",
            errors
        ),
        kind = forms::field(
            "condition",
            "Type de condition",
            Input::Select(&condition_options),
            forms::value(f, "condition"),
            false,
            "",
            errors
        ),
        values = forms::field(
            "valeurs",
            "Valeurs",
            Input::Text { kind: "text", autocomplete: "off" },
            forms::value(f, "valeurs"),
            false,
            "Séparées par des virgules, par exemple : voirie, eau. Sans objet pour « Toujours » et « Population ».",
            errors
        ),
        min = forms::field(
            "min",
            "Population minimale",
            Input::Text { kind: "text", autocomplete: "off" },
            forms::value(f, "min"),
            false,
            "Pour une condition de population.",
            errors
        ),
        max = forms::field(
            "max",
            "Population maximale",
            Input::Text { kind: "text", autocomplete: "off" },
            forms::value(f, "max"),
            false,
            "Pour une condition de population.",
            errors
        ),
    );
    layout::page_with_status(ctx, status, "Règles d'orientation", &body)
}

pub async fn rules(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    match caller::coordinator_token(&state, &ctx).await {
        Ok(token) => rules_page(&state, &ctx, &token, &Fields::new(), &Errors::default(), StatusCode::OK).await,
        Err(r) => r,
    }
}

pub async fn create_rule(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    let token = match caller::coordinator_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let mut errors = Errors::default();
    errors.required(&f, "nom", "Nom de la règle", 200);
    errors.required(&f, "partenaire", "Partenaire qui reçoit les demandes", 100);
    let condition = match condition(
        forms::value(&f, "condition"),
        forms::value(&f, "valeurs"),
        forms::value(&f, "min"),
        forms::value(&f, "max"),
    ) {
        Ok(c) => Some(c),
        Err((field, message)) => {
            errors.add(field, "Condition", message);
            None
        }
    };
    if let (true, Some(condition)) = (errors.is_empty(), condition) {
        let body = json!({ "name": forms::value(&f, "nom"), "provider_code": forms::value(&f, "partenaire"), "condition": condition });
        match state.gateway.post("/v1/routing/rules", Some(&token), &body).await {
            Ok(_) => {
                state.sessions.update(&ctx.sid, |session| session.flash = Some("La règle est ajoutée.".into())).await;
                return see_other("/coordination/regles");
            }
            Err(error) => {
                errors = Errors::from_api(
                    &error,
                    &[
                        ("name", "nom", "Nom de la règle"),
                        ("provider_code", "partenaire", "Partenaire"),
                        ("condition", "valeurs", "Valeurs"),
                    ],
                );
            }
        }
    }
    rules_page(&state, &ctx, &token, &f, &errors, StatusCode::BAD_REQUEST).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_form_builds_the_api_condition() {
        assert_eq!(condition("", "", "", ""), Ok(Value::Null));
        assert_eq!(condition("theme", " voirie, eau ,", "", ""), Ok(json!({"theme": ["voirie", "eau"]})));
        assert_eq!(condition("epci", "200072130", "", ""), Ok(json!({"epci": ["200072130"]})));
        assert_eq!(condition("population", "", "1000", ""), Ok(json!({"population": {"min": 1000}})));
        assert_eq!(condition("population", "", "10", "20"), Ok(json!({"population": {"min": 10, "max": 20}})));
        assert_eq!(condition("theme", " , ", "", "").map_err(|e| e.0), Err("valeurs"));
        assert_eq!(condition("epci", "12345", "", "").map_err(|e| e.0), Err("valeurs"));
        assert_eq!(condition("kind", "ville", "", "").map_err(|e| e.0), Err("valeurs"));
        assert_eq!(condition("population", "", "", "").map_err(|e| e.0), Err("min"));
        assert_eq!(condition("population", "", "x", "").map_err(|e| e.0), Err("min"));
        assert_eq!(condition("population", "", "30", "20").map_err(|e| e.0), Err("max"));
        assert_eq!(condition("sql", "", "", "").map_err(|e| e.0), Err("condition"));
    }

    #[test]
    fn conditions_are_described_in_french() {
        assert_eq!(describe(&Value::Null), "Toujours");
        assert_eq!(describe(&json!({"theme": ["voirie", "eau"]})), "Thème de l'offre : voirie, eau");
        assert_eq!(describe(&json!({"population": {"max": 3500}})), "Population : au plus 3500 habitants");
    }
}
