//! The communes of the directory (`pages::directory`) in the routing rules' form: checkboxes grouped by
//! intercommunalité, each group a `<details>` that opens by itself when one of its communes is ticked: no script,
//! and the 507 boxes stay folded.

use std::collections::BTreeMap;
use std::fmt::Write as _;

pub use super::super::directory::Commune;
use crate::forms::{self, Errors, Fields};
use crate::html::esc;

/// The form field of one commune's checkbox is this prefix and its INSEE code.
pub const FIELD_PREFIX: &str = "commune-";
/// The id of the communes' fieldset, which the error summary links to.
pub const FIELDSET_ID: &str = "communes";

/// The INSEE codes ticked in the form, in order.
pub fn ticked(f: &Fields) -> Vec<String> {
    let mut codes: Vec<String> = f
        .iter()
        .filter(|(_, v)| !v.trim().is_empty())
        .filter_map(|(k, _)| k.strip_prefix(FIELD_PREFIX))
        .filter(|code| is_insee(code))
        .map(str::to_owned)
        .collect();
    codes.sort();
    codes
}

/// An INSEE code: five characters, digits (or 2A/2B for Corsica).
pub fn is_insee(code: &str) -> bool {
    code.len() == 5 && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A commune by its code.
pub fn find<'a>(communes: &'a [Commune], insee: &str) -> Option<&'a Commune> {
    communes.iter().find(|c| c.insee == insee)
}

/// The communes grouped by intercommunalité (its name from `epci_names`, SIREN → name), the groups by name; the
/// communes of no known intercommunalité last, under « Autres communes ».
pub fn groups<'a>(communes: &'a [Commune], epci_names: &BTreeMap<String, String>) -> Vec<(String, Vec<&'a Commune>)> {
    let mut by_epci: BTreeMap<String, Vec<&Commune>> = BTreeMap::new();
    let mut others = Vec::new();
    for c in communes {
        match epci_names.get(&c.epci) {
            Some(name) => by_epci.entry(name.clone()).or_default().push(c),
            None => others.push(c),
        }
    }
    let mut out: Vec<(String, Vec<&Commune>)> = by_epci.into_iter().collect();
    if !others.is_empty() {
        out.push(("Autres communes".to_owned(), others));
    }
    out
}

/// The fieldset of checkboxes: one `<details>` per intercommunalité, open when one of its communes is ticked
/// (`f`), its summary saying how many communes it has and how many are ticked.
pub fn picker(communes: &[Commune], epci_names: &BTreeMap<String, String>, f: &Fields, errors: &Errors) -> String {
    let error = errors.of(FIELDSET_ID);
    let mut html = format!(
        r#"<fieldset id="{FIELDSET_ID}" class="picker{invalid}" tabindex="-1" aria-describedby="{FIELDSET_ID}-aide{described}"><legend>Communes</legend><p class="hint" id="{FIELDSET_ID}-aide">Pour une condition « Commune » : cochez les communes, rangées par intercommunalité.</p>"#,
        invalid = if error.is_some() { " field-invalid" } else { "" },
        described = if error.is_some() { format!(" {FIELDSET_ID}-erreur") } else { String::new() },
    );
    if let Some(message) = error {
        let _ = write!(
            html,
            r#"<p class="field-error" id="{FIELDSET_ID}-erreur"><span class="visually-hidden">Erreur : </span>{}</p>"#,
            esc(message)
        );
    }
    if communes.is_empty() {
        html.push_str("<p>L'annuaire des communes ne répond pas : réessayez dans un instant.</p>");
    }
    for (group, list) in groups(communes, epci_names) {
        let ticked = list.iter().filter(|c| !forms::value(f, &format!("{FIELD_PREFIX}{}", c.insee)).is_empty()).count();
        let count = if list.len() == 1 { "1 commune".to_owned() } else { format!("{} communes", list.len()) };
        let ticked_text = match ticked {
            0 => String::new(),
            1 => ", 1 cochée".to_owned(),
            n => format!(", {n} cochées"),
        };
        let _ = write!(
            html,
            r#"<details class="picker-group"{open}><summary>{name} <span class="hint">({count}{ticked_text})</span></summary><ul class="picker-list">"#,
            open = if ticked > 0 { " open" } else { "" },
            name = esc(&group),
        );
        for c in list {
            let id = format!("{FIELD_PREFIX}{}", c.insee);
            let checked = if forms::value(f, &id).is_empty() { "" } else { " checked" };
            let _ = write!(
                html,
                r#"<li class="checkbox"><input type="checkbox" id="{id}" name="{id}" value="1"{checked}><label for="{id}">{}</label></li>"#,
                esc(&c.label()),
                id = esc(&id),
            );
        }
        html.push_str("</ul></details>");
    }
    html.push_str("</fieldset>");
    html
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::pages::directory::from_page;

    fn communes() -> Vec<Commune> {
        from_page(&json!({"items": [
            {"insee_code": "77288", "name": "Melun", "epci_siren": "200072130"},
            {"insee_code": "77284", "name": "Meaux", "epci_siren": "200072130"},
            {"insee_code": "77001", "name": "Acheres-la-Foret", "epci_siren": "999999999"},
            {"siren": "200072130", "name": "CA sans code INSEE"}
        ]}))
    }

    #[test]
    fn a_commune_is_found_by_its_code() {
        let list = communes();
        assert_eq!(find(&list, "77284").map(|c| c.name.as_str()), Some("Meaux"));
        assert_eq!(find(&list, "77999"), None);
    }

    #[test]
    fn the_picker_groups_communes_by_intercommunality_and_opens_the_ticked_ones() {
        let names: BTreeMap<String, String> = [("200072130".to_owned(), "CA Test".to_owned())].into();
        let f: Fields = [("commune-77288".to_owned(), "1".to_owned())].into();
        let html = picker(&communes(), &names, &f, &Errors::default());
        assert!(
            html.contains(r#"<details class="picker-group" open><summary>CA Test <span class="hint">(2 communes, 1 cochée)</span></summary>"#),
            "{html}"
        );
        assert!(html.contains(r#"<input type="checkbox" id="commune-77288" name="commune-77288" value="1" checked><label for="commune-77288">Melun (77288)</label>"#), "{html}");
        assert!(
            html.contains(
                r#"<details class="picker-group"><summary>Autres communes <span class="hint">(1 commune)</span>"#
            ),
            "{html}"
        );
        assert!(!html.contains("field-error"));
        let mut errors = Errors::default();
        errors.add(FIELDSET_ID, "Communes", "Cochez au moins une commune.");
        let html = picker(&[], &names, &f, &errors);
        assert!(
            html.contains(
                r#"id="communes-erreur"><span class="visually-hidden">Erreur : </span>Cochez au moins une commune.</p>"#
            ),
            "{html}"
        );
        assert!(html.contains("L'annuaire des communes ne répond pas"));
    }

    #[test]
    fn only_ticked_insee_codes_are_taken() {
        let f: Fields = [
            ("commune-77288", "1"),
            ("commune-77001", "on"),
            ("commune-77002", ""),
            ("commune-../x", "1"),
            ("nom", "n"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(ticked(&f), ["77001", "77288"]);
    }
}
