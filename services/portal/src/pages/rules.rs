//! The coordinator's routing rules (`/coordination/regles`): the ordered list, adding a rule, changing one
//! (`PUT /v1/routing/rules/{id}`), deleting one (`DELETE`), moving one up or down (`POST
//! /v1/routing/rules/reorder` with the whole order). Every edit names the version it was made on, so that two
//! coordinators editing at once do not overwrite each other (the second is told the rules changed). Providers,
//! offers, intercommunalités, arrondissements and collectivity types are chosen from lists, by name; communes are
//! ticked in the directory's list, grouped by intercommunalité ([`communes`]).

mod communes;

use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use id77_proto::vocabulary::MemberKind;
use serde_json::{Value, json};

use super::common::{items, s, safe_id};
use crate::caller;
use crate::forms::{self, Errors, Fields, Input};
use crate::html::esc;
use crate::layout::see_other;
use crate::pages::prologue;
use crate::{AppState, Ctx, fr, layout};

pub const PATH: &str = "/coordination/regles";

/// The kinds of condition the form offers.
const CONDITIONS: [(&str, &str); 8] = [
    ("", "Toujours (aucune condition)"),
    ("theme", "Thème de l'offre"),
    ("offer", "Code de l'offre"),
    ("arrondissement", "Arrondissement"),
    ("epci", "Intercommunalité"),
    ("commune", "Commune"),
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

/// What the lists of the form are made of: the providers, the offers, the intercommunalités and the communes (from
/// the membership directory), to choose by name and to name codes in the list of rules.
struct Lists {
    providers: Value,
    offers: Value,
    epcis: Value,
    communes: Vec<communes::Commune>,
}

impl Lists {
    async fn load(state: &AppState) -> Self {
        let get = |path: &'static str| async move { state.gateway.get(path, None).await.unwrap_or(Value::Null) };
        Self {
            providers: get("/v1/providers?limit=100").await,
            offers: get("/v1/offers?limit=100").await,
            epcis: get("/v1/collectivities?kind=epci&limit=100").await,
            communes: super::directory::communes(state).await,
        }
    }

    /// The intercommunalités' names by SIREN.
    fn epci_names(&self) -> std::collections::BTreeMap<String, String> {
        items(&self.epcis).iter().map(|e| (s(e, "siren").to_owned(), s(e, "name").trim().to_owned())).collect()
    }

    fn name_in<'a>(list: &'a Value, key: &str, code: &str, name: &str) -> Option<&'a str> {
        items(list).iter().find(|i| s(i, key) == code).map(|i| s(i, name).trim()).filter(|n| !n.is_empty())
    }

    fn provider(&self, code: &str) -> String {
        Self::name_in(&self.providers, "code", code, "name").unwrap_or(code).to_owned()
    }

    /// A condition's value by its name: an offer's title, an EPCI's name, an arrondissement's chief town, a
    /// collectivity type in French; else the code.
    fn value(&self, kind: &str, code: &str) -> String {
        match kind {
            "offer" => Self::name_in(&self.offers, "code", code, "title").unwrap_or(code).to_owned(),
            "epci" => Self::name_in(&self.epcis, "siren", code, "name").unwrap_or(code).to_owned(),
            "commune" => communes::find(&self.communes, code).map_or_else(|| code.to_owned(), communes::Commune::label),
            "arrondissement" => fr::arrondissement(code),
            "kind" => MemberKind::parse(code).map_or_else(|| code.to_owned(), |k| fr::member_kind_label(k).to_owned()),
            _ => code.to_owned(),
        }
    }

    /// The values to choose from, by kind of condition: (`kind:value`, label) in groups.
    fn choices(&self) -> Vec<(&'static str, Vec<(String, String)>)> {
        let mut themes: Vec<String> = items(&self.offers)
            .iter()
            .flat_map(|o| o["themes"].as_array().cloned().unwrap_or_default())
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        themes.sort();
        themes.dedup();
        let pairs = |list: &Value, key: &str, name: &str, kind: &str| -> Vec<(String, String)> {
            items(list).iter().map(|i| (format!("{kind}:{}", s(i, key)), s(i, name).to_owned())).collect()
        };
        vec![
            ("Offre", pairs(&self.offers, "code", "title", "offer")),
            ("Thème de l'offre", themes.into_iter().map(|t| (format!("theme:{t}"), t)).collect()),
            ("Intercommunalité", pairs(&self.epcis, "siren", "name", "epci")),
            (
                "Arrondissement",
                ["771", "772", "773", "774", "775"]
                    .iter()
                    .map(|c| (format!("arrondissement:{c}"), fr::arrondissement(c)))
                    .collect(),
            ),
            (
                "Type de collectivité",
                ["commune", "epci", "syndicat"]
                    .iter()
                    .map(|k| (format!("kind:{k}"), MemberKind::parse(k).map_or(*k, fr::member_kind_label).to_owned()))
                    .collect(),
            ),
        ]
    }
}

fn describe(condition: &Value, lists: &Lists) -> String {
    match condition.as_object().and_then(|o| o.iter().next()) {
        None => "Toujours".to_owned(),
        Some((key, value)) => {
            let label = CONDITIONS.iter().find(|(k, _)| k == key).map(|(_, l)| *l).unwrap_or(key.as_str());
            let value = match value {
                Value::Array(list) if list.iter().all(Value::is_string) => {
                    list.iter().filter_map(Value::as_str).map(|v| lists.value(key, v)).collect::<Vec<_>>().join(", ")
                }
                Value::Object(range) if key == "population" => {
                    match (range.get("min").and_then(Value::as_i64), range.get("max").and_then(Value::as_i64)) {
                        (Some(a), Some(b)) => format!("de {} à {} habitants", fr::number(a), fr::number(b)),
                        (Some(a), None) => format!("au moins {} habitants", fr::number(a)),
                        (None, Some(b)) => format!("au plus {} habitants", fr::number(b)),
                        _ => String::new(),
                    }
                }
                other => other.to_string(),
            };
            format!("{label} : {value}")
        }
    }
}

/// The form's fields for an existing rule (to change it).
fn fields_of(rule: &Value, version: i64) -> Fields {
    let mut f = Fields::new();
    f.insert("nom".into(), s(rule, "name").to_owned());
    f.insert("partenaire".into(), s(rule, "provider_code").to_owned());
    f.insert("version".into(), version.to_string());
    if let Some((key, value)) = rule["condition"].as_object().and_then(|o| o.iter().next()) {
        f.insert("condition".into(), key.clone());
        match value {
            Value::Array(list) => {
                let mut values: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                if key == "commune" {
                    // Ticked in the list; a code that is not an INSEE code stays in the text field.
                    values.retain(|code| {
                        let ticked = communes::is_insee(code);
                        if ticked {
                            f.insert(format!("{}{code}", communes::FIELD_PREFIX), "1".into());
                        }
                        !ticked
                    });
                }
                if !values.is_empty() {
                    f.insert("valeurs".into(), values.join(", "));
                }
            }
            Value::Object(range) => {
                for bound in ["min", "max"] {
                    if let Some(n) = range.get(bound).and_then(Value::as_i64) {
                        f.insert(bound.into(), n.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    f
}

/// The rule the form describes, as the API takes it (name, provider, condition, the version it was made on);
/// the value chosen from the list joins the typed ones and sets the kind of condition. `Err`: the form's errors.
pub fn rule_body(f: &Fields) -> Result<Value, Errors> {
    let mut errors = Errors::default();
    errors.required(f, "nom", "Nom de la règle", 200);
    errors.required(f, "partenaire", "Partenaire qui reçoit les demandes", 100);
    let mut kind = forms::value(f, "condition").to_owned();
    let mut values = forms::value(f, "valeurs").to_owned();
    let ticked = communes::ticked(f);
    if !ticked.is_empty() {
        if kind.is_empty() {
            kind = "commune".to_owned();
        }
        if kind == "commune" {
            let typed = values.split([',', ';', '\n']).map(str::trim).filter(|v| !v.is_empty());
            let mut all: Vec<String> = typed.map(str::to_owned).chain(ticked).collect();
            all.sort();
            all.dedup();
            values = all.join(", ");
        } else {
            errors.add(
                communes::FIELDSET_ID,
                "Communes",
                "Des communes sont cochées : choisissez le type de condition « Commune », ou décochez-les.",
            );
        }
    }
    if let Some((chosen_kind, chosen)) = forms::value(f, "choix").split_once(':') {
        if kind.is_empty() {
            kind = chosen_kind.to_owned();
        }
        if kind != chosen_kind {
            errors.add("choix", "Valeur de la liste", "La valeur choisie ne correspond pas au type de condition.");
        } else if !values.split([',', ';', '\n']).any(|v| v.trim() == chosen) {
            values = if values.is_empty() { chosen.to_owned() } else { format!("{values}, {chosen}") };
        }
    }
    let condition = match condition(&kind, &values, forms::value(f, "min"), forms::value(f, "max")) {
        Ok(c) => Some(c),
        Err(("valeurs", _)) if kind == "commune" => {
            errors.add(communes::FIELDSET_ID, "Communes", "Cochez au moins une commune de la liste.");
            None
        }
        Err((field, message)) => {
            errors.add(field, "Condition", message);
            None
        }
    };
    match condition {
        Some(condition) if errors.is_empty() => {
            let mut body = json!({
                "name": forms::value(f, "nom"),
                "provider_code": forms::value(f, "partenaire"),
                "condition": condition,
            });
            if let Ok(version) = forms::value(f, "version").parse::<i32>() {
                body["expected_version"] = json!(version);
            }
            Ok(body)
        }
        _ => Err(errors),
    }
}

/// A `<select>` of values in groups (`<optgroup>`), the first option empty.
fn grouped_select(id: &str, label: &str, hint: &str, groups: &[(&str, Vec<(String, String)>)], value: &str) -> String {
    let mut options = String::from(r#"<option value="">Aucune</option>"#);
    for (group, list) in groups.iter().filter(|(_, l)| !l.is_empty()) {
        let _ = write!(options, r#"<optgroup label="{}">{}</optgroup>"#, esc(group), crate::html::options(list, value));
    }
    format!(
        r#"<div class="field"><label for="{id}">{label}</label><p class="hint" id="{id}-aide">{hint}</p><select id="{id}" name="{id}" aria-describedby="{id}-aide">{options}</select></div>"#,
        label = esc(label),
        hint = esc(hint),
    )
}

/// The form adding a rule (`rule`: None) or changing one.
fn rule_form(ctx: &Ctx, lists: &Lists, action: &str, submit: &str, f: &Fields, errors: &Errors) -> String {
    let provider_options: Vec<(String, String)> = std::iter::once((String::new(), "Choisir un partenaire".to_owned()))
        .chain(items(&lists.providers).iter().map(|p| (s(p, "code").to_owned(), s(p, "name").to_owned())))
        .collect();
    let condition_options: Vec<(String, String)> =
        CONDITIONS.iter().map(|(k, l)| ((*k).to_owned(), (*l).to_owned())).collect();
    let text = || Input::Text { kind: "text", autocomplete: "off" };
    format!(
        r#"{summary}<form method="post" action="{action}" novalidate class="form">{csrf}<input type="hidden" name="version" value="{version}">
{name}{provider}
<fieldset><legend>Condition</legend>{kind}{choice}{communes}{values}{min}{max}</fieldset>
<button type="submit">{submit}</button>
</form>"#,
        summary = forms::summary(errors),
        csrf = forms::csrf(&ctx.csrf),
        version = esc(forms::value(f, "version")),
        name = forms::field("nom", "Nom de la règle", text(), forms::value(f, "nom"), true, "", errors),
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
        choice = grouped_select(
            "choix",
            "Valeur de la liste",
            "Une offre, un thème, une intercommunalité, un arrondissement ou un type de collectivité, par son nom ; \
             elle s'ajoute aux valeurs saisies ci-dessous.",
            &lists.choices(),
            forms::value(f, "choix"),
        ),
        communes = communes::picker(&lists.communes, &lists.epci_names(), f, errors),
        values = forms::field(
            "valeurs",
            "Autres valeurs (codes)",
            text(),
            forms::value(f, "valeurs"),
            false,
            "Facultatif, séparées par des virgules : plusieurs offres ou thèmes du même type, par leur code.",
            errors
        ),
        min = forms::field(
            "min",
            "Population minimale",
            text(),
            forms::value(f, "min"),
            false,
            "Pour une condition de population.",
            errors
        ),
        max = forms::field(
            "max",
            "Population maximale",
            text(),
            forms::value(f, "max"),
            false,
            "Pour une condition de population.",
            errors
        ),
    )
}

/// The API fields of a rule and the form's fields they go with (to show the gateway's refusals).
const API_FIELDS: [(&str, &str, &str); 4] = [
    ("name", "nom", "Nom de la règle"),
    ("provider_code", "partenaire", "Partenaire"),
    ("condition", "valeurs", "Valeurs"),
    ("expected_version", "", "Les règles ont été modifiées entre-temps : rechargez la page"),
];

/// The table of rules with, for each, its actions (change, move up or down, delete).
fn rules_table(ctx: &Ctx, lists: &Lists, list: &[Value], version: i64) -> String {
    let mut body = String::from(
        r#"<table><caption>Règles d'orientation, dans l'ordre où elles sont essayées</caption><thead><tr><th scope="col">Ordre</th><th scope="col">Nom</th><th scope="col">Condition</th><th scope="col">Partenaire</th><th scope="col">Actions</th></tr></thead><tbody>"#,
    );
    let csrf = forms::csrf(&ctx.csrf);
    for (i, r) in list.iter().enumerate() {
        let Some(id) = safe_id(s(r, "id")) else { continue };
        let name = esc(s(r, "name"));
        let button = |action: &str, label: &str| {
            format!(
                r#"<form method="post" action="{PATH}/{id}/{action}" class="inline">{csrf}<input type="hidden" name="version" value="{version}"><button type="submit" class="secondary">{label}<span class="visually-hidden"> la règle « {name} »</span></button></form>"#
            )
        };
        let mut actions =
            format!(r#"<a href="{PATH}/{id}">Modifier<span class="visually-hidden"> la règle « {name} »</span></a>"#);
        if i > 0 {
            actions.push_str(&button("monter", "Monter"));
        }
        if i + 1 < list.len() {
            actions.push_str(&button("descendre", "Descendre"));
        }
        actions.push_str(&button("supprimer", "Supprimer"));
        let _ = write!(
            body,
            r#"<tr><td>{}</td><th scope="row">{name}</th><td>{}</td><td>{}</td><td>{actions}</td></tr>"#,
            r["position"].as_u64().unwrap_or(0),
            esc(&describe(&r["condition"], lists)),
            esc(&lists.provider(s(r, "provider_code")))
        );
    }
    body.push_str("</tbody></table>");
    body
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
    let lists = Lists::load(state).await;
    let version = rules["version"].as_i64().unwrap_or(0);
    let mut body = format!(
        "<p>Les demandes sont orientées par la première règle dont la condition est remplie ; sinon vers le partenaire de l'offre ; sinon dans la file de triage. Version des règles : {version}.</p>"
    );
    let list = rules["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if list.is_empty() {
        body.push_str("<p>Aucune règle : chaque demande va au partenaire de son offre.</p>");
    } else {
        body.push_str(&rules_table(ctx, &lists, list, version));
    }
    let mut f = f.clone();
    f.entry("version".into()).or_insert_with(|| version.to_string());
    let _ = write!(body, "<h2>Ajouter une règle</h2>{}", rule_form(ctx, &lists, PATH, "Ajouter la règle", &f, errors));
    layout::page_with_status(ctx, status, "Règles d'orientation", &body)
}

pub async fn rules(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    match caller::coordinator_token(&state, &ctx).await {
        Ok(token) => rules_page(&state, &ctx, &token, &Fields::new(), &Errors::default(), StatusCode::OK).await,
        Err(r) => r,
    }
}

/// Tells the outcome on the next page and goes back to the list.
async fn done(state: &AppState, ctx: &Ctx, message: &str) -> Response {
    let message = message.to_owned();
    state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
    see_other(PATH)
}

pub async fn create_rule(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(f): Form<Fields>,
) -> Response {
    let token = match prologue::post(&ctx, &f, caller::coordinator_token(&state, &ctx)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let errors = match rule_body(&f) {
        Ok(body) => match state.gateway.post("/v1/routing/rules", Some(&token), &body).await {
            Ok(_) => return done(&state, &ctx, "La règle est ajoutée.").await,
            Err(error) => Errors::from_api(&error, &API_FIELDS),
        },
        Err(errors) => errors,
    };
    rules_page(&state, &ctx, &token, &f, &errors, StatusCode::BAD_REQUEST).await
}

/// The page changing one rule.
async fn edit_page(
    state: &AppState,
    ctx: &Ctx,
    token: &str,
    id: &str,
    f: Option<&Fields>,
    errors: &Errors,
) -> Response {
    let rules = match state.gateway.get("/v1/routing/rules", Some(token)).await {
        Ok(r) => r,
        Err(error) => return layout::api_error_page(ctx, &error),
    };
    let version = rules["version"].as_i64().unwrap_or(0);
    let Some(rule) = rules["rules"].as_array().and_then(|l| l.iter().find(|r| s(r, "id") == id)) else {
        return prologue::not_found(ctx, "Cette règle n'existe plus.");
    };
    let lists = Lists::load(state).await;
    let fields = f.cloned().unwrap_or_else(|| fields_of(rule, version));
    let body = format!(
        r#"<p><a href="{PATH}">Retour aux règles</a></p>{}"#,
        rule_form(ctx, &lists, &format!("{PATH}/{id}"), "Enregistrer la règle", &fields, errors)
    );
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    layout::page_with_status(ctx, status, &format!("Modifier la règle « {} »", s(rule, "name")), &body)
}

/// `GET /coordination/regles/{id}`.
pub async fn edit_form(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let signed_in = caller::coordinator_token(&state, &ctx);
    let (token, id) = match prologue::with_id(&ctx, signed_in, &id, "Cette règle n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    edit_page(&state, &ctx, &token, id, None, &Errors::default()).await
}

/// `POST /coordination/regles/{id}`: `PUT /v1/routing/rules/{id}` on the version the form was made on.
pub async fn update_rule(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = caller::coordinator_token(&state, &ctx);
    let (token, id) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Cette règle n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let errors = match rule_body(&f) {
        Ok(body) => {
            let path = format!("/v1/routing/rules/{id}");
            match state.gateway.send_json(reqwest::Method::PUT, &path, Some(&token), &body, None, None).await {
                Ok(_) => return done(&state, &ctx, "La règle est modifiée.").await,
                Err(error) => Errors::from_api(&error, &API_FIELDS),
            }
        }
        Err(errors) => errors,
    };
    edit_page(&state, &ctx, &token, id, Some(&f), &errors).await
}

/// The order of `ids` with `id` moved one place up (`up`) or down; None when it cannot move.
pub fn moved(ids: &[String], id: &str, up: bool) -> Option<Vec<String>> {
    let i = ids.iter().position(|x| x == id)?;
    let j = if up { i.checked_sub(1)? } else { Some(i + 1).filter(|j| *j < ids.len())? };
    let mut order = ids.to_vec();
    order.swap(i, j);
    Some(order)
}

/// `POST /coordination/regles/{id}/{monter|descendre|supprimer}`.
pub async fn act(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = caller::coordinator_token(&state, &ctx);
    let (token, id) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Cette règle n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let outcome = match action.as_str() {
        "supprimer" => {
            let path = format!("/v1/routing/rules/{id}");
            state
                .gateway
                .send_json(reqwest::Method::DELETE, &path, Some(&token), &json!({}), None, None)
                .await
                .map(|_| "La règle est supprimée.")
        }
        "monter" | "descendre" => {
            let rules = match state.gateway.get("/v1/routing/rules", Some(&token)).await {
                Ok(r) => r,
                Err(error) => return layout::api_error_page(&ctx, &error),
            };
            let ids: Vec<String> = rules["rules"]
                .as_array()
                .map(|l| l.iter().map(|r| s(r, "id").to_owned()).collect())
                .unwrap_or_default();
            let Some(order) = moved(&ids, id, action == "monter") else {
                return done(&state, &ctx, "Cette règle ne peut pas aller plus loin.").await;
            };
            let expected = forms::value(&f, "version").parse::<i32>().unwrap_or(0);
            let body = json!({ "rule_ids": order, "expected_version": expected });
            state
                .gateway
                .post("/v1/routing/rules/reorder", Some(&token), &body)
                .await
                .map(|_| "L'ordre des règles est modifié.")
        }
        _ => return prologue::not_found(&ctx, "Cette action n'existe pas."),
    };
    match outcome {
        Ok(message) => done(&state, &ctx, message).await,
        Err(error) if error.status == 409 => {
            done(
                &state,
                &ctx,
                &format!(
                    "{}Les règles ont été modifiées entre-temps : vérifiez-les et recommencez.",
                    layout::ERROR_FLASH
                ),
            )
            .await
        }
        Err(error) => layout::api_error_page(&ctx, &error),
    }
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

    fn lists() -> Lists {
        Lists {
            providers: json!({"items": [{"code": "caue77", "name": "CAUE 77"}]}),
            offers: json!({"items": [{"code": "diag", "title": "Diagnostic voirie", "themes": ["voirie", "eau"]}]}),
            epcis: json!({"items": [{"siren": "200072130", "name": "CA du Pays de Meaux"}]}),
            communes: crate::pages::directory::from_page(
                &json!({"items": [{"insee_code": "77288", "name": "Melun", "epci_siren": "200072130"}]}),
            ),
        }
    }

    #[test]
    fn conditions_are_described_in_french_by_name() {
        let l = lists();
        assert_eq!(describe(&Value::Null, &l), "Toujours");
        assert_eq!(describe(&json!({"theme": ["voirie", "eau"]}), &l), "Thème de l'offre : voirie, eau");
        assert_eq!(describe(&json!({"population": {"max": 3500}}), &l), "Population : au plus 3\u{202f}500 habitants");
        assert_eq!(describe(&json!({"arrondissement": ["772", "775"]}), &l), "Arrondissement : Melun, Torcy");
        assert_eq!(describe(&json!({"offer": ["diag", "x"]}), &l), "Code de l'offre : Diagnostic voirie, x");
        assert_eq!(describe(&json!({"epci": ["200072130"]}), &l), "Intercommunalité : CA du Pays de Meaux");
        assert_eq!(describe(&json!({"commune": ["77288", "77999"]}), &l), "Commune : Melun (77288), 77999");
        assert_eq!(l.provider("caue77"), "CAUE 77");
    }

    fn form(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_value_chosen_from_the_list_sets_the_condition() {
        let f = form(&[("nom", "Meaux"), ("partenaire", "caue77"), ("choix", "epci:200072130"), ("version", "4")]);
        let body = rule_body(&f).expect("valid");
        assert_eq!(body["condition"], json!({"epci": ["200072130"]}));
        assert_eq!(body["expected_version"], 4);
        let f = form(&[
            ("nom", "n"),
            ("partenaire", "p"),
            ("condition", "offer"),
            ("valeurs", "a"),
            ("choix", "offer:diag"),
        ]);
        assert_eq!(rule_body(&f).expect("valid")["condition"], json!({"offer": ["a", "diag"]}));
        let f = form(&[("nom", "n"), ("partenaire", "p"), ("condition", "theme"), ("choix", "offer:diag")]);
        assert!(rule_body(&f).expect_err("mismatch").of("choix").is_some());
        assert!(rule_body(&form(&[("partenaire", "p")])).expect_err("no name").of("nom").is_some());
    }

    #[test]
    fn ticked_communes_make_a_commune_condition() {
        let f = form(&[("nom", "n"), ("partenaire", "p"), ("commune-77288", "1"), ("commune-77284", "1")]);
        assert_eq!(rule_body(&f).expect("valid")["condition"], json!({"commune": ["77284", "77288"]}));
        let f = form(&[
            ("nom", "n"),
            ("partenaire", "p"),
            ("condition", "commune"),
            ("valeurs", "77288"),
            ("commune-77288", "1"),
        ]);
        assert_eq!(rule_body(&f).expect("valid")["condition"], json!({"commune": ["77288"]}));
        let f = form(&[
            ("nom", "n"),
            ("partenaire", "p"),
            ("condition", "theme"),
            ("valeurs", "eau"),
            ("commune-77288", "1"),
        ]);
        assert!(rule_body(&f).expect_err("mismatch").of("communes").is_some());
        let f = form(&[("nom", "n"), ("partenaire", "p"), ("condition", "commune")]);
        assert_eq!(
            rule_body(&f).expect_err("none ticked").of("communes"),
            Some("Cochez au moins une commune de la liste.")
        );
    }

    #[test]
    fn the_form_lists_the_communes_by_name_in_their_intercommunality() {
        let ctx = crate::layout::tests::ctx(Some("coordinator"), PATH);
        let f = form(&[("commune-77288", "1")]);
        let html = rule_form(&ctx, &lists(), PATH, "Ajouter", &f, &Errors::default());
        assert!(html.contains("<summary>CA du Pays de Meaux"), "{html}");
        assert!(html.contains(r#"value="1" checked><label for="commune-77288">Melun (77288)</label>"#), "{html}");
    }

    #[test]
    fn a_rule_moves_one_place_and_its_form_is_prefilled() {
        let ids: Vec<String> = ["a", "b", "c"].map(str::to_owned).into();
        assert_eq!(moved(&ids, "b", true), Some(["b", "a", "c"].map(str::to_owned).into()));
        assert_eq!(moved(&ids, "b", false), Some(["a", "c", "b"].map(str::to_owned).into()));
        assert_eq!(moved(&ids, "a", true), None);
        assert_eq!(moved(&ids, "c", false), None);
        assert_eq!(moved(&ids, "z", false), None);
        let rule = json!({"id": "a", "name": "Grandes", "provider_code": "caue77", "condition": {"population": {"min": 5000}}});
        let f = fields_of(&rule, 7);
        assert_eq!(
            (forms::value(&f, "condition"), forms::value(&f, "min"), forms::value(&f, "version")),
            ("population", "5000", "7")
        );
        let rule = json!({"id": "a", "name": "E", "provider_code": "p", "condition": {"commune": ["77284", "77288"]}});
        let f = fields_of(&rule, 1);
        assert_eq!(
            (forms::value(&f, "commune-77284"), forms::value(&f, "commune-77288"), forms::value(&f, "valeurs")),
            ("1", "1", "")
        );
    }

    #[test]
    fn the_table_offers_change_move_and_delete() {
        let ctx = crate::layout::tests::ctx(Some("coordinator"), PATH);
        let rules = vec![
            json!({"id": "r1", "position": 1, "name": "Un", "provider_code": "caue77", "condition": null}),
            json!({"id": "r2", "position": 2, "name": "Deux", "provider_code": "caue77", "condition": {"epci": ["200072130"]}}),
        ];
        let html = rules_table(&ctx, &lists(), &rules, 3);
        assert!(html.contains(r#"<a href="/coordination/regles/r1">Modifier"#));
        assert!(html.contains(r#"action="/coordination/regles/r1/descendre""#));
        assert!(!html.contains(r#"action="/coordination/regles/r1/monter""#), "the first rule cannot go up");
        assert!(html.contains(r#"action="/coordination/regles/r2/monter""#));
        assert!(html.contains(r#"action="/coordination/regles/r2/supprimer""#));
        assert!(html.contains(r#"name="version" value="3""#));
        assert!(html.contains("CA du Pays de Meaux"));
        assert!(html.contains("CAUE 77"));
    }
}
