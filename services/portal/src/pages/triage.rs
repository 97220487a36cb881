//! The coordinator's triage queue (`GET /v1/triage`): open orientation requests and requests no provider was
//! left for, each placed with an offer (routed by the rules) and/or a provider (`POST /v1/triage/{id}/assign`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::{Extension, Form};
use serde_json::{Value, json};

use super::common::{items, s, safe_id};
use crate::caller;
use crate::forms::{self, Fields};
use crate::html::{esc, options, query_tail, url_component};
use crate::layout::{ERROR_FLASH, see_other};
use crate::pages::prologue;
use crate::{AppState, Ctx, fr, layout};

/// The assignment a triage form asks for: an offer id and/or a provider code and a note (an open orientation
/// request, `ouverte=1`, needs the offer: routing refuses it otherwise); `Err` in French.
pub fn assignment(f: &Fields) -> Result<Value, String> {
    let offer = forms::value(f, "offre");
    let provider = forms::value(f, "partenaire");
    let note = forms::value(f, "note");
    if offer.is_empty() && forms::value(f, "ouverte") == "1" {
        return Err("Choisissez l'offre qui convient : une demande d'orientation en a besoin pour être confiée.".into());
    }
    if offer.is_empty() && provider.is_empty() {
        return Err("Choisissez une offre, un partenaire, ou les deux, pour orienter la demande.".into());
    }
    if !offer.is_empty() && safe_id(offer).is_none() || !provider.is_empty() && safe_id(provider).is_none() {
        return Err("Cette offre ou ce partenaire est inconnu.".into());
    }
    if note.chars().count() > 1000 {
        return Err("La note ne doit pas dépasser 1000 caractères.".into());
    }
    Ok(json!({ "offer_id": offer, "provider_code": provider, "note": note }))
}

/// Most pages of offers read for the triage (100 each: the whole catalogue, with room to grow).
const MAX_OFFER_PAGES: usize = 20;

/// Every published offer, page after page (`None` if the catalogue did not answer).
async fn all_offers(state: &AppState) -> Option<Vec<Value>> {
    let mut offers = Vec::new();
    let mut cursor = String::new();
    for _ in 0..MAX_OFFER_PAGES {
        let page =
            state.gateway.get(&format!("/v1/offers?limit=100{}", query_tail("cursor", &cursor)), None).await.ok()?;
        offers.extend(items(&page).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) if !next.is_empty() => cursor = next.to_owned(),
            _ => break,
        }
    }
    Some(offers)
}

/// Lowercase without accents, to compare words as a coordinator types them.
fn folded(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'â' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' => 'i',
            'ô' | 'ö' => 'o',
            'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            c => c,
        })
        .collect()
}

/// The offers to choose from, by category (in the order of the categories' names), each sorted by title
/// (accents and case ignored); `filter` keeps the offers whose title, code, provider, category or themes
/// contain each of its words.
pub fn offer_groups(
    offers: &[Value],
    providers: &HashMap<String, String>,
    filter: &str,
) -> Vec<(String, Vec<(String, String)>)> {
    let words: Vec<String> = folded(filter).split_whitespace().map(str::to_owned).collect();
    let mut groups: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
    for o in offers {
        let category = fr::category(s(o, "category")).to_owned();
        let themes = o["themes"].as_array().map(|t| t.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "));
        // The provider by its name (its code when the list has no name for it).
        let provider = providers.get(s(o, "provider_code")).map(String::as_str).unwrap_or(s(o, "provider_code"));
        let haystack =
            folded(&format!("{} {} {provider} {category} {}", s(o, "title"), s(o, "code"), themes.unwrap_or_default()));
        if !words.iter().all(|w| haystack.contains(w.as_str())) {
            continue;
        }
        let label = format!("{} — {provider}", s(o, "title"));
        groups.entry(folded(&category)).or_default().push((folded(s(o, "title")), s(o, "id").to_owned(), label));
    }
    let names: HashMap<String, String> =
        offers.iter().map(|o| fr::category(s(o, "category"))).map(|c| (folded(c), c.to_owned())).collect();
    groups
        .into_iter()
        .map(|(key, mut list)| {
            list.sort();
            let name = names.get(&key).cloned().unwrap_or(key);
            (name, list.into_iter().map(|(_, id, label)| (id, label)).collect())
        })
        .collect()
}

/// `<option>`s then one `<optgroup>` per category; `selected` marks the current offer.
pub fn grouped_options(first: &(String, String), groups: &[(String, Vec<(String, String)>)], selected: &str) -> String {
    let mut out = options(std::slice::from_ref(first), selected);
    for (name, list) in groups {
        let _ = write!(out, r#"<optgroup label="{}">{}</optgroup>"#, esc(name), options(list, selected));
    }
    out
}

/// The filter of the offers proposed (a GET form: it works without JavaScript).
fn filter_form(filter: &str, shown: usize, total: usize) -> String {
    format!(
        r#"<form method="get" action="/coordination/triage" class="form filters" role="search" aria-label="Filtrer les offres proposées">
<div class="field"><label for="filtre">Filtrer les offres proposées</label><p class="hint" id="filtre-aide">Un ou plusieurs mots du titre, du partenaire, de la catégorie ou des thèmes. {shown} offre{s} sur {total}.</p><input type="search" id="filtre" name="filtre" value="{value}" aria-describedby="filtre-aide" autocomplete="off"></div>
<button type="submit">Filtrer</button> <a href="/coordination/triage" class="button secondary">Toutes les offres</a>
</form>"#,
        s = if shown > 1 { "s" } else { "" },
        value = esc(filter),
    )
}

pub async fn queue(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Query(q): Query<Fields>) -> Response {
    let token = match caller::coordinator_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let page = match state.gateway.get("/v1/triage?limit=100", Some(&token)).await {
        Ok(p) => p,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let queue = items(&page);
    let mut body = String::from(
        "<p>Les demandes d'orientation (sans offre choisie) et celles qu'aucun partenaire n'a pu prendre. \
         Choisissez une offre (la demande suit alors les règles d'orientation), un partenaire, ou les deux.</p>",
    );
    if queue.is_empty() {
        body.push_str("<p>Aucune demande à orienter.</p>");
        return layout::page(&ctx, "Demandes à orienter", &body);
    }
    let filter = forms::value(&q, "filtre").trim();
    let offers = all_offers(&state).await.unwrap_or_default();
    let provider_names = super::provider::provider_names(&state, &token).await;
    let groups = offer_groups(&offers, &provider_names, filter);
    let shown: usize = groups.iter().map(|(_, list)| list.len()).sum();
    body.push_str(&filter_form(filter, shown, offers.len()));
    let no_offer = (String::new(), "— Aucune offre —".to_owned());
    let mut provider_items = vec![(String::new(), "— Selon l'offre —".to_owned())];
    let mut by_name: Vec<(String, String)> = provider_names.iter().map(|(c, n)| (c.clone(), n.clone())).collect();
    by_name.sort_by_key(|(_, name)| folded(name));
    provider_items.extend(by_name);
    // The members' names, one call per member.
    let mut names: HashMap<String, String> = HashMap::new();
    for item in queue {
        let member = s(item, "member_id");
        if names.contains_key(member) {
            continue;
        }
        let name = match safe_id(member) {
            Some(m) => state
                .gateway
                .get(&format!("/v1/memberships/{m}"), Some(&token))
                .await
                .ok()
                .map(|v| s(&v, "name").to_owned()),
            None => None,
        };
        names.insert(member.to_owned(), name.filter(|n| !n.is_empty()).unwrap_or_else(|| member.to_owned()));
    }
    let _ = write!(
        body,
        r#"<p>{} demande{} à orienter.</p><ol class="triage">"#,
        queue.len(),
        if queue.len() > 1 { "s" } else { "" }
    );
    for (n, item) in queue.iter().enumerate() {
        let id = url_component(s(item, "request_id"));
        let subject = esc(s(item, "subject"));
        let open = s(item, "offer_id").is_empty();
        let why = match s(item, "reason") {
            "" => "Demande d'orientation : la collectivité n'a pas choisi d'offre.".to_owned(),
            reason => format!("Aucun partenaire disponible : {reason}"),
        };
        let _ = write!(
            body,
            r#"<li class="triage-item"><h2 id="demande-{n}"><a href="/demandes/{id}">{subject}</a></h2>
<dl class="facts"><dt>Collectivité</dt><dd>{member}</dd><dt>Reçue le</dt><dd>{at}</dd><dt>Motif</dt><dd>{why}</dd></dl>
<p>{description}</p>
<form method="post" action="/coordination/triage/{id}/orienter" class="form" novalidate>{csrf}{open}
<fieldset><legend>Orienter la demande « {subject} »</legend>
<div class="field"><label for="offre-{n}">Offre{offer_required}</label><select id="offre-{n}" name="offre"{offer_attrs}>{offers}</select></div>
<div class="field"><label for="partenaire-{n}">Partenaire</label><p class="hint" id="partenaire-{n}-aide">Sans partenaire choisi, les règles d'orientation de l'offre choisissent.</p><select id="partenaire-{n}" name="partenaire" aria-describedby="partenaire-{n}-aide">{providers}</select></div>
<div class="field"><label for="note-{n}">Note pour le partenaire</label><textarea id="note-{n}" name="note" rows="2"></textarea></div>
<button type="submit">Orienter<span class="visually-hidden"> la demande {subject}</span></button></fieldset></form></li>"#,
            member = esc(names.get(s(item, "member_id")).map(String::as_str).unwrap_or("")),
            at = esc(&fr::datetime(s(item, "received_at"))),
            why = esc(&why),
            description = crate::html::multiline(s(item, "description")),
            csrf = forms::csrf(&ctx.csrf),
            open = if open { r#"<input type="hidden" name="ouverte" value="1">"# } else { "" },
            offer_required = if open { r#" <span class="req">(obligatoire)</span>"# } else { "" },
            offer_attrs = if open { " required" } else { "" },
            offers = grouped_options(&no_offer, &groups, s(item, "offer_id")),
            providers = options(&provider_items, ""),
        );
    }
    body.push_str("</ol>");
    layout::page(&ctx, "Demandes à orienter", &body)
}

/// `POST /coordination/triage/{id}/orienter`.
pub async fn assign(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    let signed_in = caller::coordinator_token(&state, &ctx);
    let (token, id) = match prologue::post_with_id(&ctx, &f, signed_in, &id, "Cette demande n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let message = match assignment(&f) {
        Err(message) => format!("{ERROR_FLASH}{message}"),
        Ok(body) => match state.gateway.post(&format!("/v1/triage/{id}/assign"), Some(&token), &body).await {
            Ok(referral) => format!(
                "La demande est orientée vers le partenaire {} : il a jusqu'au {} pour répondre.",
                super::provider::provider_names(&state, &token)
                    .await
                    .remove(s(&referral, "provider_code"))
                    .unwrap_or_else(|| s(&referral, "provider_code").to_owned()),
                fr::datetime(s(&referral, "respond_by"))
            ),
            Err(error) => format!("{ERROR_FLASH}{}", fr::problem(&error)),
        },
    };
    state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
    see_other("/coordination/triage")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn offers_are_grouped_by_category_sorted_by_title_and_filtered() {
        let offer = |id: &str, title: &str, category: &str, provider: &str, themes: &[&str]| json!({"id": id, "title": title, "code": id, "category": category, "provider_code": provider, "themes": themes});
        let offers = vec![
            offer("o3", "Voirie communale", "integrated_engineering", "dir-routes", &["voirie"]),
            offer("o1", "Éclairage public", "integrated_engineering", "sdesm", &["énergie"]),
            offer("o2", "Marchés publics", "awareness_training", "dir-amenagement", &["achats"]),
            offer("o4", "Exposition « Paysages »", "exhibition_loan", "archives", &["patrimoine"]),
            offer("o5", "assainissement", "integrated_engineering", "dir-eau", &["eau"]),
        ];
        let providers: HashMap<String, String> =
            [("sdesm", "SDESM"), ("dir-routes", "Direction des routes")].map(|(c, n)| (c.into(), n.into())).into();
        let groups = offer_groups(&offers, &providers, "");
        let names: Vec<&str> = groups.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Ingénierie intégrée", "Prêt d'exposition", "Sensibilisation et formation"]);
        // Sorted by title, accents and case ignored: « assainissement », « Éclairage », « Voirie ».
        let ids: Vec<&str> = groups[0].1.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["o5", "o1", "o3"]);
        assert_eq!(groups[0].1[1].1, "Éclairage public — SDESM");
        // The filter: every word, anywhere in the title, provider, category or themes, accents ignored.
        let filtered = offer_groups(&offers, &providers, "ENERGIE");
        assert_eq!(filtered.len(), 1);
        assert_eq!(filtered[0].1, [("o1".to_owned(), "Éclairage public — SDESM".to_owned())]);
        assert_eq!(offer_groups(&offers, &providers, "publics formation").len(), 1);
        // The provider is found by its name.
        assert_eq!(offer_groups(&offers, &providers, "direction routes").len(), 1);
        assert!(offer_groups(&offers, &providers, "zzz").is_empty());
        let html = grouped_options(&(String::new(), "— Aucune offre —".into()), &groups, "o2");
        assert!(
            html.starts_with(r#"<option value="">— Aucune offre —</option><optgroup label="Ingénierie intégrée">"#),
            "{html}"
        );
        assert!(
            html.contains(r#"<option value="o2" selected>Marchés publics — dir-amenagement</option></optgroup>"#),
            "{html}"
        );
        assert_eq!(html.matches("<optgroup").count(), 3);
    }

    #[test]
    fn a_triage_form_needs_an_offer_or_a_provider() {
        assert!(assignment(&fields(&[("note", "x")])).is_err_and(|m| m.contains("Choisissez une offre")));
        assert_eq!(
            assignment(&fields(&[("partenaire", "caue77"), ("note", " voir le maire ")])),
            Ok(json!({"offer_id": "", "provider_code": "caue77", "note": "voir le maire"}))
        );
        assert!(assignment(&fields(&[("offre", "0193f6a2-1c2b"), ("partenaire", "")])).is_ok());
        // An open orientation request needs its offer, with or without a provider.
        let open = assignment(&fields(&[("ouverte", "1"), ("partenaire", "caue77")]));
        assert!(open.is_err_and(|m| m.contains("une demande d'orientation en a besoin")));
        assert!(assignment(&fields(&[("ouverte", "1"), ("offre", "o-1"), ("partenaire", "caue77")])).is_ok());
        assert!(assignment(&fields(&[("offre", "../v1/users")])).is_err());
        assert!(assignment(&fields(&[("partenaire", "caue77"), ("note", &"x".repeat(1001))])).is_err());
    }
}
