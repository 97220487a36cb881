//! Training and awareness sessions (issue 22, ADR 0016), over the gateway's session API: the upcoming sessions of
//! an offer on its page, a session's page with the registration form (members' users) or the participants and
//! the attendance form (its provider's agents, the coordinator), « Mes inscriptions » with cancellation,
//! attestations, ratings and the calendar feed, « Mes sessions » and the schedule form, and the coordinator's
//! fill rates.
//!
//! Pure rendering is in [`view`] and [`manage_view`], the forms' reading in [`input`], the words and times in
//! [`text`]; the handlers in [`public`], [`mine`], [`manage`] and [`stats`] only call the gateway and render.

pub mod input;
pub mod manage;
pub mod manage_view;
pub mod mine;
pub mod public;
pub mod stats;
pub mod text;
pub mod view;

#[cfg(test)]
mod tests;

use serde_json::Value;

use crate::gateway::ApiError;
use crate::pages::common::{items, s};
use crate::{AppState, Ctx, fr};

/// The items of a list of the session API, whichever way the page is keyed (`items` like every list of the
/// gateway, or the contract's `sessions` / `registrations`).
pub fn list_items(page: &Value) -> &[Value] {
    for key in ["sessions", "registrations"] {
        if let Some(list) = page[key].as_array() {
            return list;
        }
    }
    items(page)
}

/// The query that asks for the next page after `page` (`cursor=` or the contract's `page_token=`), if any.
pub fn next_page(page: &Value) -> Option<String> {
    let encode = crate::html::url_component;
    match (s(page, "next_cursor"), s(page, "next_page_token")) {
        ("", "") => None,
        (cursor, "") => Some(format!("cursor={}", encode(cursor))),
        (_, token) => Some(format!("page_token={}", encode(token))),
    }
}

/// Every item of a paged list (at most `max_pages` pages: a screen shows what it can, never loops).
pub async fn list_all(
    state: &AppState,
    path: &str,
    token: Option<&str>,
    max_pages: usize,
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..max_pages {
        let url = match &next {
            None => path.to_owned(),
            Some(q) => format!("{path}{}{q}", if path.contains('?') { '&' } else { '?' }),
        };
        let page = state.gateway.get(&url, token).await?;
        out.extend(list_items(&page).iter().cloned());
        next = next_page(&page);
        if next.is_none() {
            break;
        }
    }
    Ok(out)
}

/// Whether the caller manages `session`: the coordinator, or an agent of its provider.
pub fn manages(ctx: &Ctx, session: &Value) -> bool {
    ctx.is("coordinator")
        || (ctx.is("provider_agent")
            && ctx
                .user
                .as_ref()
                .and_then(|u| u.provider_code.as_deref())
                .is_some_and(|code| code == s(session, "provider_code")))
}

/// Whether the caller may schedule sessions (an agent of a provider, the coordinator).
pub fn schedules(ctx: &Ctx) -> bool {
    ctx.is("coordinator") || ctx.is("provider_agent")
}

/// The sentence for a refusal of the session API: its own reasons first, then the portal's common wording.
pub fn problem(error: &ApiError) -> String {
    let sentence = match error.kind.as_str() {
        "registration-closed" => "Les inscriptions à cette session sont closes.",
        "quota-reached" => {
            "Votre collectivité a atteint le nombre de places qui lui est réservé pour cette session : inscrivez moins \
             de participants ou contactez le partenaire."
        }
        "already-registered" => "Ce participant (même adresse électronique) est déjà inscrit à cette session.",
        "session-not-scheduled" => "Cette session est annulée ou déjà tenue : l'action n'est plus possible.",
        "session-not-started" => "Les présences se saisissent une fois la session commencée.",
        "not-attended" => "Seule une collectivité dont un participant était présent peut donner son avis.",
        "not-a-training-offer" => "Seules les offres de sensibilisation et de formation ont des sessions.",
        "session-not-found" => "Cette session est introuvable.",
        "registration-not-found" => "Cette inscription est introuvable.",
        "calendar-feed-not-found" => "Vous n'avez pas d'adresse d'agenda active.",
        _ => return fr::problem(error),
    };
    sentence.to_owned()
}

/// The communes of the directory as (INSEE code, name), in French order (accents aside), for the schedule form's
/// list and to name a session's commune; the directory keeps them an hour.
pub async fn communes(state: &AppState) -> Vec<(String, String)> {
    let mut list: Vec<(String, String)> = super::directory::communes(state)
        .await
        .into_iter()
        .filter(|c| !c.name.is_empty())
        .map(|c| (c.insee, c.name))
        .collect();
    list.sort_by_cached_key(|(insee, name)| (sort_key(name), insee.clone()));
    list
}

/// A name as a French list orders it: case and accents aside (« Écuelles » among the E).
pub fn sort_key(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .map(|c| match c {
            'à' | 'â' | 'ä' => 'a',
            'ç' => 'c',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' => 'i',
            'ô' | 'ö' => 'o',
            'ù' | 'û' | 'ü' => 'u',
            'ÿ' => 'y',
            c => c,
        })
        .collect()
}

/// `value`'s session place with its commune named (`place.commune_name`) from `communes` when the API left it
/// empty (the catalogue keeps INSEE codes; the directory names them).
pub fn name_commune(value: &mut Value, communes: &std::collections::HashMap<String, String>) {
    let place = &mut value["place"];
    if !place.is_object() || !s(place, "commune_name").trim().is_empty() {
        return;
    }
    if let Some(name) = communes.get(s(place, "commune_insee")) {
        place["commune_name"] = Value::String(name.clone());
    }
}

/// The sessions (or registrations, through their `session`) with their communes named, from the directory's list
/// and only when one of them lacks its name.
pub async fn named(state: &AppState, mut values: Vec<Value>) -> Vec<Value> {
    let lacks = |v: &Value| {
        let place = if v["session"].is_object() { &v["session"]["place"] } else { &v["place"] };
        !place["online"].as_bool().unwrap_or(false)
            && s(place, "commune_name").trim().is_empty()
            && !s(place, "commune_insee").is_empty()
    };
    if !values.iter().any(lacks) {
        return values;
    }
    let communes: std::collections::HashMap<String, String> = communes(state).await.into_iter().collect();
    for value in &mut values {
        if value["session"].is_object() {
            name_commune(&mut value["session"], &communes);
        } else {
            name_commune(value, &communes);
        }
    }
    values
}
