//! The communes of the directory for the routing rules' form: read from the gateway's public directory
//! (`GET /v1/collectivities?kind=commune`, 507 communes in six pages), kept a few minutes per process (the directory
//! changes a few times a year), and offered as checkboxes grouped by intercommunalité, each group a `<details>`
//! that opens by itself when one of its communes is ticked: no script, and the 507 boxes stay folded.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::super::common::{items, s};
use crate::AppState;
use crate::forms::{self, Errors, Fields};
use crate::html::{esc, url_component};

/// How long the communes read from the directory are reused.
const KEEP: Duration = Duration::from_secs(600);
/// Pages read at most (100 communes each): the Seine-et-Marne has 507.
const MAX_PAGES: usize = 20;
/// The form field of one commune's checkbox is this prefix and its INSEE code.
pub const FIELD_PREFIX: &str = "commune-";
/// The id of the communes' fieldset, which the error summary links to.
pub const FIELDSET_ID: &str = "communes";

/// A commune of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commune {
    pub insee: String,
    pub name: String,
    /// Its intercommunalité's SIREN ("" when the directory has none).
    pub epci: String,
}

impl Commune {
    /// « Melun (77288) ».
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.insee)
    }
}

/// The communes of one page of the directory.
pub fn from_page(page: &Value) -> Vec<Commune> {
    items(page)
        .iter()
        .filter(|c| !s(c, "insee_code").is_empty())
        .map(|c| Commune {
            insee: s(c, "insee_code").to_owned(),
            name: s(c, "name").trim().to_owned(),
            epci: s(c, "epci_siren").to_owned(),
        })
        .collect()
}

/// The communes read last, and when.
type Cache = Mutex<Option<(Instant, Vec<Commune>)>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(None))
}

/// Every commune of the directory, by name; from the cache when read less than [`KEEP`] ago. A directory that
/// does not answer gives what was read before (or nothing): the form then keeps the codes of a rule as they are.
pub async fn load(state: &AppState) -> Vec<Commune> {
    if let Ok(guard) = cache().lock()
        && let Some((at, communes)) = guard.as_ref()
        && at.elapsed() < KEEP
    {
        return communes.clone();
    }
    let mut communes = Vec::new();
    let mut cursor = String::new();
    for _ in 0..MAX_PAGES {
        let mut path = "/v1/collectivities?kind=commune&limit=100".to_owned();
        if !cursor.is_empty() {
            let _ = write!(path, "&cursor={}", url_component(&cursor));
        }
        let Ok(page) = state.gateway.get(&path, None).await else {
            return stale_or_empty();
        };
        communes.extend(from_page(&page));
        cursor = s(&page, "next_cursor").to_owned();
        if cursor.is_empty() {
            break;
        }
    }
    communes.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.insee.cmp(&b.insee)));
    if let Ok(mut guard) = cache().lock() {
        *guard = Some((Instant::now(), communes.clone()));
    }
    communes
}

fn stale_or_empty() -> Vec<Commune> {
    cache().lock().ok().and_then(|g| g.as_ref().map(|(_, c)| c.clone())).unwrap_or_default()
}

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

    fn communes() -> Vec<Commune> {
        from_page(&json!({"items": [
            {"insee_code": "77288", "name": "Melun", "epci_siren": "200072130"},
            {"insee_code": "77284", "name": "Meaux", "epci_siren": "200072130"},
            {"insee_code": "77001", "name": "Acheres-la-Foret", "epci_siren": "999999999"},
            {"siren": "200072130", "name": "CA sans code INSEE"}
        ]}))
    }

    #[test]
    fn communes_are_read_from_the_directory_page_and_named_with_their_code() {
        let list = communes();
        assert_eq!(list.len(), 3, "an entry without an INSEE code is not a commune");
        assert_eq!(list[0].label(), "Melun (77288)");
        assert_eq!(find(&list, "77284").map(|c| c.name.as_str()), Some("Meaux"));
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
