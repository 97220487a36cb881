//! The catalogue: search with facets, and an offer's page with its eligibility and price (public; a member's
//! users also see whether their collectivité is eligible and can file a request).

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use id77_proto::vocabulary::{Category, PriceKind};
use serde_json::Value;

use super::common::{items, s, safe_id};

pub mod pagination;
use crate::caller;
use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, query, url_component};
use crate::pages::prologue;
use crate::{AppState, Ctx, fr, layout};

/// The select options of one facet: "any" then each value with its count.
fn facet_options(facets: &Value, name: &str, any: &str, label: fn(&str) -> String) -> Vec<(String, String)> {
    let mut out = vec![(String::new(), any.to_owned())];
    if let Some(values) = facets[name].as_object() {
        for (value, count) in values {
            out.push((value.clone(), format!("{} ({})", label(value), count.as_u64().unwrap_or(0))));
        }
    }
    out
}

fn capitalised(value: &str) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub async fn search(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<Fields>,
) -> Response {
    let text = forms::value(&q, "q");
    let category = forms::value(&q, "categorie");
    let theme = forms::value(&q, "theme");
    let provider = forms::value(&q, "partenaire");
    let price = forms::value(&q, "tarif");
    let current = pagination::parse(forms::value(&q, "page"));
    let page_param = current.to_string();
    let eligible = ctx.is_member() && forms::value(&q, "eligibles") == "1";
    let api_query = query(&[
        ("q", text),
        ("category", category),
        ("theme", theme),
        ("provider", provider),
        ("price_kind", price),
        ("eligible", if eligible { "true" } else { "" }),
        ("page", if current > 1 { &page_param } else { "" }),
        ("limit", "20"),
    ])
    .replace("&amp;", "&");
    let token = if eligible {
        match caller::token(&state, &ctx).await {
            Ok(t) => Some(t),
            Err(r) => return r,
        }
    } else {
        None
    };
    let found = match state.gateway.get(&format!("/v1/offers{api_query}"), token.as_deref()).await {
        Ok(v) => v,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let providers = state.gateway.get("/v1/providers", None).await.unwrap_or(Value::Null);
    let provider_name = |code: &str| -> String {
        items(&providers)
            .iter()
            .find(|p| s(p, "code") == code)
            .map(|p| s(p, "name").to_owned())
            .unwrap_or_else(|| code.to_owned())
    };
    let facets = &found["facets"];
    let no_errors = Errors::default();
    let provider_opts = {
        let mut out = vec![(String::new(), "Tous les partenaires".to_owned())];
        if let Some(values) = facets["provider"].as_object() {
            for (value, count) in values {
                out.push((value.clone(), format!("{} ({})", provider_name(value), count.as_u64().unwrap_or(0))));
            }
        }
        out
    };
    let eligible_box = if ctx.is_member() {
        format!(
            r#"<div class="field checkbox"><input type="checkbox" id="eligibles" name="eligibles" value="1"{}><label for="eligibles">Seulement les offres auxquelles ma collectivité est éligible</label></div>"#,
            if eligible { " checked" } else { "" }
        )
    } else {
        String::new()
    };
    let mut body = format!(
        r#"<form method="get" action="/catalogue" class="form filters" role="search" aria-label="Rechercher dans le catalogue">
{q}
<fieldset><legend>Affiner</legend>
{cat}{theme}{prov}{price}{eligible_box}
</fieldset>
<button type="submit">Rechercher</button> <a href="/catalogue" class="button secondary">Effacer les filtres</a>
</form>"#,
        q = forms::field(
            "q",
            "Rechercher une offre",
            Input::Text { kind: "search", autocomplete: "off" },
            text,
            false,
            "Par exemple : voirie, eau potable, patrimoine.",
            &no_errors
        ),
        cat = forms::field(
            "categorie",
            "Catégorie",
            Input::Select(&facet_options(facets, "category", "Toutes les catégories", |v| fr::category(v).to_owned())),
            category,
            false,
            "",
            &no_errors
        ),
        theme = forms::field(
            "theme",
            "Thème",
            Input::Select(&facet_options(facets, "theme", "Tous les thèmes", capitalised)),
            theme,
            false,
            "",
            &no_errors
        ),
        prov = forms::field("partenaire", "Partenaire", Input::Select(&provider_opts), provider, false, "", &no_errors),
        price = forms::field(
            "tarif",
            "Tarif",
            Input::Select(&facet_options(facets, "price_kind", "Tous les tarifs", |v| fr::price_kind(v).to_owned())),
            price,
            false,
            "",
            &no_errors
        ),
    );
    let total = found["total"].as_u64().unwrap_or(0);
    let pages = pagination::page_count(total, PAGE_SIZE);
    let _ = write!(
        body,
        r#"<h2 id="resultats">Résultats</h2><p role="status">{total} offre{} trouvée{}{}.</p>"#,
        if total > 1 { "s" } else { "" },
        if total > 1 { "s" } else { "" },
        if pages > 1 { format!(" — page {current} sur {pages}") } else { String::new() }
    );
    if let Some(corrected) = found["corrected_q"].as_str() {
        let _ =
            write!(body, r#"<p>Résultats pour « <strong>{}</strong> » (orthographe corrigée).</p>"#, esc(corrected));
    }
    if total == 0 {
        let catalogue = state.gateway.get("/v1/offers?limit=1", None).await.unwrap_or(Value::Null);
        body.push_str(&no_result(text, &catalogue["facets"]["theme"]));
        return layout::page(&ctx, "Catalogue des offres", &body);
    }
    body.push_str(r#"<ul class="offers">"#);
    for offer in items(&found) {
        let _ = write!(
            body,
            r#"<li class="offer"><h3><a href="/offres/{id}">{title}</a></h3><p>{summary}</p><p class="meta"><span>{cat}</span> · <span>{prov}</span> · <span>{price}</span></p></li>"#,
            id = url_component(s(offer, "id")),
            title = esc(s(offer, "title")),
            summary = esc(s(offer, "summary")),
            cat = esc(fr::category(s(offer, "category"))),
            prov = esc(&provider_name(s(offer, "provider_code"))),
            price = esc(&price_text(offer)),
        );
    }
    body.push_str("</ul>");
    let link = query(&[
        ("q", text),
        ("categorie", category),
        ("theme", theme),
        ("partenaire", provider),
        ("tarif", price),
        ("eligibles", if eligible { "1" } else { "" }),
    ]);
    body.push_str(&pagination::nav(current, pages, |n| format!("/catalogue{}", pagination::with_page(&link, n))));
    layout::page(&ctx, "Catalogue des offres", &body)
}

/// Offers per page of the search.
const PAGE_SIZE: u64 = 20;

/// What a search that found nothing offers instead of a dead end: the open orientation request (the
/// coordination chooses the offer), every category, and the catalogue's themes (`themes`: the theme facet of
/// the whole catalogue, `{theme: count}`), most offered first.
fn no_result(text: &str, themes: &Value) -> String {
    let mut html = String::from(r#"<div class="no-result">"#);
    if text.is_empty() {
        html.push_str("<p>Aucune offre ne correspond à ces filtres.</p>");
    } else {
        let _ = write!(html, "<p>Aucune offre ne correspond à « {} ».</p>", esc(text));
    }
    html.push_str(
        r#"<h3>Vous ne trouvez pas l'offre qui convient ?</h3><p>Décrivez votre besoin : la coordination vous oriente vers l'offre et le partenaire adaptés.</p><p><a class="button" href="/demandes/nouvelle">Je ne sais pas quelle offre choisir</a></p>"#,
    );
    html.push_str(r#"<h3>Parcourir les catégories</h3><ul class="links">"#);
    for category in Category::ALL {
        let _ = write!(
            html,
            r#"<li><a href="/catalogue{}">{}</a></li>"#,
            query(&[("categorie", category.as_str())]),
            esc(fr::category(category.as_str()))
        );
    }
    html.push_str("</ul>");
    let mut counted: Vec<(&String, u64)> = themes
        .as_object()
        .map(|t| t.iter().map(|(name, count)| (name, count.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default();
    counted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    if !counted.is_empty() {
        html.push_str(r#"<h3>Parcourir les thèmes</h3><ul class="links">"#);
        for (name, count) in counted.into_iter().take(12) {
            let _ = write!(
                html,
                r#"<li><a href="/catalogue{}">{}</a> ({count})</li>"#,
                query(&[("theme", name)]),
                esc(&capitalised(name))
            );
        }
        html.push_str("</ul>");
    }
    html.push_str(r#"<p><a href="/catalogue">Voir toutes les offres</a></p></div>"#);
    html
}

/// The price of an offer in words.
pub fn price_text(offer: &Value) -> String {
    let price = &offer["price"];
    let amount = price["amount_cents"].as_i64().unwrap_or(0);
    let kind = s(price, "kind");
    match PriceKind::parse(kind) {
        Some(PriceKind::Free) => "Gratuit".to_owned(),
        Some(PriceKind::Flat) => format!("Forfait de {}", fr::euros(amount)),
        Some(PriceKind::DailyRate) => {
            let days = price["days"].as_i64().unwrap_or(0);
            format!(
                "{} par jour × {days} jour{} = {}",
                fr::euros(amount),
                if days > 1 { "s" } else { "" },
                fr::euros(offer["price_cents"].as_i64().unwrap_or(amount * days))
            )
        }
        Some(PriceKind::PerInhabitant) => {
            let mut text = format!("{} par habitant", fr::euros(amount));
            if let Some(floor) = price["floor_cents"].as_i64().filter(|f| *f > 0) {
                let _ = write!(text, ", minimum {}", fr::euros(floor));
            }
            if let Some(cap) = price["cap_cents"].as_i64().filter(|c| *c > 0) {
                let _ = write!(text, ", plafond {}", fr::euros(cap));
            }
            text
        }
        Some(PriceKind::OnQuote) => "Sur devis".to_owned(),
        None if kind.is_empty() => "Tarif non précisé".to_owned(),
        None => kind.to_owned(),
    }
}

/// The eligibility rules of an offer in words.
/// `epcis`: the directory's EPCI names by SIREN (an EPCI it does not name is shown by its SIREN).
fn eligibility_text(offer: &Value, epcis: &std::collections::HashMap<String, String>) -> Vec<String> {
    let e = &offer["eligibility"];
    let mut rules = Vec::new();
    let kinds: Vec<&str> = e["member_kinds"]
        .as_array()
        .map(|k| k.iter().filter_map(Value::as_str).map(fr::collectivity_kind).collect())
        .unwrap_or_default();
    rules.push(if kinds.is_empty() {
        "Tous les types de collectivités".to_owned()
    } else {
        format!("Réservé à : {}", kinds.join(", "))
    });
    match (e["min_population"].as_i64(), e["max_population"].as_i64()) {
        (Some(min), Some(max)) => {
            rules.push(format!("Population de {} à {} habitants", fr::number(min), fr::number(max)))
        }
        (Some(min), None) => rules.push(format!("Population d'au moins {} habitants", fr::number(min))),
        (None, Some(max)) => rules.push(format!("Population d'au plus {} habitants", fr::number(max))),
        (None, None) => {}
    }
    let epci: Vec<String> = e["epci_sirens"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(Value::as_str)
                .map(|siren| epcis.get(siren).cloned().unwrap_or_else(|| format!("SIREN {siren}")))
                .collect()
        })
        .unwrap_or_default();
    if !epci.is_empty() {
        rules.push(format!("Intercommunalités : {}", epci.join(", ")));
    }
    let arr = e["arrondissements"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).map(fr::arrondissement).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    if !arr.is_empty() {
        rules.push(format!("Arrondissements : {arr}"));
    }
    rules
}

pub async fn offer(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    let Some(id) = safe_id(&id) else {
        return prologue::not_found(&ctx, "Cette offre n'existe pas.");
    };
    let offer = match state.gateway.get(&format!("/v1/offers/{id}"), None).await {
        Ok(o) => o,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let providers = state.gateway.get("/v1/providers?limit=100", None).await.unwrap_or(Value::Null);
    // The EPCIs' names, in one call, only when the offer is reserved to some.
    let epcis = match offer["eligibility"]["epci_sirens"].as_array() {
        Some(sirens) if !sirens.is_empty() => state
            .gateway
            .get("/v1/collectivities?kind=epci&limit=100", None)
            .await
            .map(|page| super::statistics::Names::epcis_of(&page))
            .unwrap_or_default(),
        _ => std::collections::HashMap::new(),
    };
    let provider = items(&providers)
        .iter()
        .find(|p| s(p, "code") == s(&offer, "provider_code"))
        .map(|p| s(p, "name").to_owned())
        .unwrap_or_else(|| s(&offer, "provider_code").to_owned());
    let themes: Vec<String> = offer["themes"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).map(capitalised).collect())
        .unwrap_or_default();
    let vat = match offer["vat_rate_bp"].as_i64() {
        Some(bp) => format!("TVA {}", fr::percent_bp(bp)),
        None => s(&offer, "vat_note").to_owned(),
    };
    let mut body = format!(
        r#"<p class="lead">{summary}</p>
<dl class="facts">
<dt>Catégorie</dt><dd>{cat}</dd>
<dt>Thèmes</dt><dd>{themes}</dd>
<dt>Partenaire</dt><dd>{provider}</dd>
<dt>Durée indicative</dt><dd>{duration}</dd>
<dt>Code</dt><dd>{code}</dd>
</dl>
<h2>Description</h2><p>{description}</p>
<h2>Tarif</h2><p>{price}</p><p>{vat}</p>
<h2>Éligibilité</h2><ul>{rules}</ul>"#,
        summary = esc(s(&offer, "summary")),
        cat = esc(fr::category(s(&offer, "category"))),
        themes = esc(&themes.join(", ")),
        provider = esc(&provider),
        duration = esc(s(&offer, "duration")),
        code = esc(s(&offer, "code")),
        description = crate::html::multiline(if s(&offer, "description").is_empty() {
            s(&offer, "summary")
        } else {
            s(&offer, "description")
        }),
        price = esc(&price_text(&offer)),
        vat = esc(&vat),
        rules = eligibility_text(&offer, &epcis).iter().map(|r| format!("<li>{}</li>", esc(r))).collect::<String>(),
    );
    if ctx.is_member() {
        let token = match caller::token(&state, &ctx).await {
            Ok(t) => t,
            Err(r) => return r,
        };
        let path = format!(
            "/v1/offers{}",
            query(&[
                ("eligible", "true"),
                ("provider", s(&offer, "provider_code")),
                ("category", s(&offer, "category")),
                ("limit", "100")
            ])
            .replace("&amp;", "&")
        );
        let eligible = match state.gateway.get(&path, Some(&token)).await {
            Ok(list) => Some(items(&list).iter().any(|o| s(o, "id") == s(&offer, "id"))),
            Err(_) => None,
        };
        match eligible {
            Some(true) => {
                let _ = write!(body, r#"<p class="badge ok"><strong>Votre collectivité est éligible à cette offre.</strong></p><p><a class="button" href="/demandes/nouvelle?offre={}">Déposer une demande pour cette offre</a></p>"#, url_component(s(&offer, "id")));
            }
            Some(false) => body.push_str(r#"<p class="badge ko"><strong>Votre collectivité n'est pas éligible à cette offre.</strong> Vous pouvez contacter la coordination pour être orienté.</p>"#),
            None => body.push_str(r#"<p>L'éligibilité de votre collectivité n'a pas pu être vérifiée.</p>"#),
        }
    } else if ctx.user.is_none() {
        body.push_str(r#"<p><a href="/connexion">Connectez-vous</a> pour déposer une demande, ou <a href="/adherer">faites adhérer votre collectivité</a>.</p>"#);
    }
    body.push_str(&super::sessions::public::offer_section(&state, &ctx, &offer).await);
    body.push_str(r#"<p><a href="/catalogue">Retour au catalogue</a></p>"#);
    layout::page(&ctx, s(&offer, "title"), &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prices_are_described_in_french() {
        assert_eq!(price_text(&json!({"price": {"kind": "free"}})), "Gratuit");
        assert_eq!(
            price_text(&json!({"price": {"kind": "flat", "amount_cents": 150_000}})),
            "Forfait de 1\u{202f}500,00\u{a0}€"
        );
        assert_eq!(
            price_text(
                &json!({"price": {"kind": "daily_rate", "amount_cents": 60_000, "days": 3}, "price_cents": 180_000})
            ),
            "600,00\u{a0}€ par jour × 3 jours = 1\u{202f}800,00\u{a0}€"
        );
        assert_eq!(
            price_text(
                &json!({"price": {"kind": "per_inhabitant", "amount_cents": 50, "floor_cents": 10_000, "cap_cents": null}})
            ),
            "0,50\u{a0}€ par habitant, minimum 100,00\u{a0}€"
        );
        assert_eq!(price_text(&json!({"price": {"kind": "on_quote"}})), "Sur devis");
    }

    #[test]
    fn a_search_that_finds_nothing_leads_to_orientation_categories_and_themes() {
        let html = no_result("trottoirs en or", &json!({"voirie": 14, "eau": 17, "santé": 1}));
        assert!(html.contains("Aucune offre ne correspond à « trottoirs en or »."), "{html}");
        assert!(
            html.contains(r#"<a class="button" href="/demandes/nouvelle">Je ne sais pas quelle offre choisir</a>"#)
        );
        assert!(html.contains(r#"<a href="/catalogue?categorie=awareness_training">"#), "{html}");
        // Themes, most offered first, each a link to its offers.
        let eau = html.find(r#"<a href="/catalogue?theme=eau">Eau</a> (17)"#);
        let voirie = html.find(r#"<a href="/catalogue?theme=voirie">Voirie</a> (14)"#);
        assert!(eau.is_some() && voirie.is_some() && eau < voirie, "{html}");
        assert!(html.contains(r#"<a href="/catalogue?theme=sant%C3%A9">Santé</a>"#), "{html}");
        // Text is escaped.
        assert!(no_result("<b>", &Value::Null).contains("« &lt;b&gt; »"));
    }

    #[test]
    fn eligibility_is_described_in_french() {
        let offer = json!({"eligibility": {"member_kinds": ["commune"], "min_population": null, "max_population": 3500,
            "epci_sirens": [], "arrondissements": ["771"]}});
        assert_eq!(
            eligibility_text(&offer, &Default::default()),
            ["Réservé à : Commune", "Population d'au plus 3\u{202f}500 habitants", "Arrondissements : Meaux"]
        );
        assert_eq!(eligibility_text(&json!({}), &Default::default()), ["Tous les types de collectivités"]);
        let reserved = json!({"eligibility": {"epci_sirens": ["247700123", "200072130"]}});
        let names = [("247700123".to_owned(), "CA du Pays de Meaux".to_owned())].into();
        assert_eq!(
            eligibility_text(&reserved, &names),
            ["Tous les types de collectivités", "Intercommunalités : CA du Pays de Meaux, SIREN 200072130"]
        );
    }
}
