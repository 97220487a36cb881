//! The communes of the directory, read from the gateway's public directory (`GET /v1/collectivities?kind=commune`,
//! 507 communes in six pages) and kept an hour per process (the directory changes a few times a year). One list
//! for every screen that names or offers communes: the routing rules' form and the sessions' pages.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::common::{items, s};
use crate::AppState;
use crate::html::url_component;

/// How long the communes read from the directory are reused.
const KEEP: Duration = Duration::from_secs(3600);
/// Pages read at most (100 communes each): the Seine-et-Marne has 507.
const MAX_PAGES: usize = 20;

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

/// The communes of one page of the directory (an entry without an INSEE code is not a commune).
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
#[derive(Debug, Default)]
struct Kept(Option<(Instant, Vec<Commune>)>);

impl Kept {
    /// The communes when read less than [`KEEP`] before `now`.
    fn fresh(&self, now: Instant) -> Option<&[Commune]> {
        let (at, communes) = self.0.as_ref()?;
        (now.saturating_duration_since(*at) < KEEP).then_some(communes.as_slice())
    }

    /// Whatever was read last, however old (nothing if the directory never answered).
    fn last(&self) -> Vec<Commune> {
        self.0.as_ref().map(|(_, c)| c.clone()).unwrap_or_default()
    }
}

static KEPT: Mutex<Kept> = Mutex::new(Kept(None));

/// Every commune of the directory, by name then code; from what was kept when read less than [`KEEP`] ago. A
/// directory that does not answer gives what was read before (or nothing): a form then keeps the codes it has.
pub async fn communes(state: &AppState) -> Vec<Commune> {
    if let Ok(kept) = KEPT.lock()
        && let Some(communes) = kept.fresh(Instant::now())
    {
        return communes.to_vec();
    }
    let mut communes = Vec::new();
    let mut cursor = String::new();
    for _ in 0..MAX_PAGES {
        let mut path = "/v1/collectivities?kind=commune&limit=100".to_owned();
        if !cursor.is_empty() {
            let _ = write!(path, "&cursor={}", url_component(&cursor));
        }
        let page = match state.gateway.get(&path, None).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(detail = %error.detail, "the directory's communes could not be read");
                return KEPT.lock().map(|kept| kept.last()).unwrap_or_default();
            }
        };
        communes.extend(from_page(&page));
        cursor = s(&page, "next_cursor").to_owned();
        if cursor.is_empty() {
            break;
        }
    }
    communes.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.insee.cmp(&b.insee)));
    if let Ok(mut kept) = KEPT.lock() {
        *kept = Kept(Some((Instant::now(), communes.clone())));
    }
    communes
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn communes_are_read_from_a_directory_page_and_named_with_their_code() {
        let list = from_page(&json!({"items": [
            {"insee_code": "77288", "name": " Melun ", "epci_siren": "200072130"},
            {"siren": "200072130", "name": "CA sans code INSEE"},
            {"insee_code": "77001", "name": "Achères-la-Forêt"}
        ]}));
        assert_eq!(list.len(), 2, "an entry without an INSEE code is not a commune");
        assert_eq!(list[0].label(), "Melun (77288)");
        assert_eq!(list[0].epci, "200072130");
        assert_eq!(list[1].epci, "", "a commune of no intercommunalité");
    }

    #[test]
    fn the_communes_are_kept_an_hour_and_the_last_ones_stand_in_for_a_silent_directory() {
        let now = Instant::now();
        let melun = vec![Commune { insee: "77288".into(), name: "Melun".into(), epci: String::new() }];
        assert_eq!(Kept::default().fresh(now), None, "nothing read yet");
        assert!(Kept::default().last().is_empty());
        let kept = Kept(Some((now, melun.clone())));
        assert_eq!(kept.fresh(now + Duration::from_secs(3599)), Some(melun.as_slice()));
        assert_eq!(kept.fresh(now + KEEP), None, "read again after an hour");
        assert_eq!(kept.last(), melun, "what was read before, when the directory does not answer");
    }
}
