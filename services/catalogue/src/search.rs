//! Search, the pure part: the words of a query, facets with counts, filters, ordering, cursors and page numbers.
//! PostgreSQL finds and ranks the matching published offers (French stemming, accents folded, the field's
//! synonyms, any word matching, trigram typo correction when nothing is found: see [`find::search`] and
//! [`expand`]); the match set is bounded by the catalogue's size (a few hundred offers), so facets
//! are counted here, each with every *other* filter applied (so a client can widen a choice it made).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use id77_proto::vocabulary::{Category, PriceKind};

use crate::domain::{Eligibility, MemberProfile};

pub mod expand;
pub mod find;

/// Most words of a query that are searched.
pub const MAX_QUERY_WORDS: usize = 12;
/// Longest query accepted.
pub const MAX_QUERY_CHARS: usize = 200;

/// The words of a query: split on anything but letters and digits, at most [`MAX_QUERY_WORDS`].
pub fn query_words(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_QUERY_WORDS)
        .map(str::to_lowercase)
        .collect()
}

/// A matching offer, as far as filters and facets need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub code: String,
    pub category: Category,
    pub themes: Vec<String>,
    pub provider_code: String,
    pub price_kind: PriceKind,
    pub eligibility: Eligibility,
    /// `ts_rank_cd`, 0 without a query.
    pub rank: f32,
}

/// What the caller narrowed the search to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    pub category: Option<Category>,
    pub theme: Option<String>,
    pub provider_code: Option<String>,
    pub price_kind: Option<PriceKind>,
    /// "Eligible for my collectivité": the caller's member.
    pub member: Option<MemberProfile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dimension {
    Category,
    Theme,
    Provider,
    PriceKind,
}

impl Filters {
    fn admits(&self, hit: &Hit, except: Option<Dimension>) -> bool {
        let skip = |d| except == Some(d);
        (skip(Dimension::Category) || self.category.is_none_or(|c| hit.category == c))
            && (skip(Dimension::Theme) || self.theme.as_ref().is_none_or(|t| hit.themes.contains(t)))
            && (skip(Dimension::Provider) || self.provider_code.as_ref().is_none_or(|p| hit.provider_code == *p))
            && (skip(Dimension::PriceKind) || self.price_kind.is_none_or(|k| hit.price_kind == k))
            && self.member.as_ref().is_none_or(|m| hit.eligibility.admits(m))
    }
}

/// Counts per value of each dimension.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    pub category: BTreeMap<String, u32>,
    pub theme: BTreeMap<String, u32>,
    pub provider: BTreeMap<String, u32>,
    pub price_kind: BTreeMap<String, u32>,
}

/// Where the previous page ended: the last offer's rank (as bits, exact) and code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor(pub u32, pub String);

/// The result of filtering a match set.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Indices into the hits, in order.
    pub items: Vec<usize>,
    pub next: Option<Cursor>,
    pub facets: Facets,
    /// Offers matching every filter.
    pub total: u32,
}

fn bump(map: &mut BTreeMap<String, u32>, key: &str) {
    *map.entry(key.to_owned()).or_default() += 1;
}

/// Where a page starts: after a cursor, or at a page number (1 is the first page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    After(Cursor),
    Number(usize),
}

/// Filters `hits`, counts facets, orders by rank (descending) then code, and cuts the page at `start`
/// (`None`: the first page).
pub fn page(hits: &[Hit], filters: &Filters, start: Option<&Start>, limit: usize) -> Page {
    let mut facets = Facets::default();
    for hit in hits {
        if filters.admits(hit, Some(Dimension::Category)) {
            bump(&mut facets.category, hit.category.as_str());
        }
        if filters.admits(hit, Some(Dimension::Theme)) {
            for theme in &hit.themes {
                bump(&mut facets.theme, theme);
            }
        }
        if filters.admits(hit, Some(Dimension::Provider)) {
            bump(&mut facets.provider, &hit.provider_code);
        }
        if filters.admits(hit, Some(Dimension::PriceKind)) {
            bump(&mut facets.price_kind, hit.price_kind.as_str());
        }
    }
    let mut matching: Vec<usize> = (0..hits.len()).filter(|&i| filters.admits(&hits[i], None)).collect();
    let total = u32::try_from(matching.len()).unwrap_or(u32::MAX);
    matching.sort_by(|&a, &b| hits[b].rank.total_cmp(&hits[a].rank).then_with(|| hits[a].code.cmp(&hits[b].code)));
    let start = match start {
        None => 0,
        Some(Start::Number(n)) => n.saturating_sub(1).saturating_mul(limit).min(matching.len()),
        Some(Start::After(Cursor(bits, code))) => {
            let rank = f32::from_bits(*bits);
            matching
                .iter()
                .position(|&i| {
                    let h = &hits[i];
                    h.rank.total_cmp(&rank).is_lt() || (h.rank.total_cmp(&rank).is_eq() && h.code > *code)
                })
                .unwrap_or(matching.len())
        }
    };
    let rest = &matching[start..];
    let items: Vec<usize> = rest.iter().take(limit).copied().collect();
    let next = if rest.len() > limit {
        items.last().map(|&i| Cursor(hits[i].rank.to_bits(), hits[i].code.clone()))
    } else {
        None
    };
    Page { items, next, facets, total }
}

#[cfg(test)]
mod tests {
    use id77_proto::vocabulary::MemberKind;

    use super::*;

    fn hit(code: &str, category: Category, themes: &[&str], provider: &str, price: PriceKind, rank: f32) -> Hit {
        Hit {
            code: code.into(),
            category,
            themes: themes.iter().map(|t| (*t).to_owned()).collect(),
            provider_code: provider.into(),
            price_kind: price,
            eligibility: Eligibility::default(),
            rank,
        }
    }

    fn hits() -> Vec<Hit> {
        let mut only_epci = hit("e", Category::IntegratedEngineering, &["eau"], "dir-eau", PriceKind::Free, 0.5);
        only_epci.eligibility.member_kinds = vec![MemberKind::Epci];
        vec![
            hit("a", Category::IntegratedEngineering, &["voirie"], "dir-routes", PriceKind::Flat, 0.9),
            hit("b", Category::AwarenessTraining, &["voirie", "sécurité"], "dir-routes", PriceKind::Free, 0.5),
            hit("c", Category::IntegratedEngineering, &["eau", "voirie"], "dir-eau", PriceKind::Free, 0.5),
            hit("d", Category::ExhibitionLoan, &["voirie"], "dir-routes", PriceKind::Free, 0.1),
            only_epci,
        ]
    }

    #[test]
    fn query_words_are_split_lowercased_and_bounded() {
        assert_eq!(query_words("Eau  potable, l'ASSAINISSEMENT!"), ["eau", "potable", "l", "assainissement"]);
        assert_eq!(query_words("  "), Vec::<String>::new());
        assert_eq!(query_words(&"mot ".repeat(50)).len(), MAX_QUERY_WORDS);
    }

    #[test]
    fn results_are_ordered_by_rank_then_code_and_paged_without_overlap() {
        let hits = hits();
        let first = page(&hits, &Filters::default(), None, 2);
        let codes = |p: &Page| p.items.iter().map(|&i| hits[i].code.clone()).collect::<Vec<_>>();
        assert_eq!(codes(&first), ["a", "b"]);
        assert_eq!(first.total, 5);
        let after = |p: &Page| p.next.clone().map(Start::After);
        let second = page(&hits, &Filters::default(), after(&first).as_ref(), 2);
        assert_eq!(codes(&second), ["c", "e"]);
        let third = page(&hits, &Filters::default(), after(&second).as_ref(), 2);
        assert_eq!((codes(&third), third.next), (vec!["d".to_owned()], None));
    }

    #[test]
    fn a_page_number_gives_the_same_pages_as_the_cursors() {
        let hits = hits();
        let codes = |p: &Page| p.items.iter().map(|&i| hits[i].code.clone()).collect::<Vec<_>>();
        let number = |n| page(&hits, &Filters::default(), Some(&Start::Number(n)), 2);
        assert_eq!(codes(&number(1)), ["a", "b"]);
        assert_eq!(codes(&number(2)), ["c", "e"]);
        let last = number(3);
        assert_eq!((codes(&last), last.next, last.total), (vec!["d".to_owned()], None, 5));
        // The second page's cursor continues like page 3.
        assert_eq!(
            number(2).next.map(|c| codes(&page(&hits, &Filters::default(), Some(&Start::After(c)), 2))),
            Some(vec!["d".to_owned()])
        );
        // Past the end: an empty page with the total, so a client can offer the last page.
        let beyond = number(9);
        assert_eq!((beyond.items.len(), beyond.total), (0, 5));
    }

    #[test]
    fn facets_count_with_every_other_filter_applied() {
        let hits = hits();
        let filters = Filters { category: Some(Category::IntegratedEngineering), ..Filters::default() };
        let p = page(&hits, &filters, None, 10);
        assert_eq!(p.total, 3);
        // The category facet ignores the category filter, so the client sees the alternatives.
        assert_eq!(p.facets.category.get("integrated_engineering"), Some(&3));
        assert_eq!(p.facets.category.get("awareness_training"), Some(&1));
        assert_eq!(p.facets.category.get("exhibition_loan"), Some(&1));
        // The others are counted inside the chosen category.
        assert_eq!(p.facets.theme.get("voirie"), Some(&2));
        assert_eq!(p.facets.theme.get("eau"), Some(&2));
        assert_eq!(p.facets.provider.get("dir-eau"), Some(&2));
        assert_eq!(p.facets.price_kind.get("flat"), Some(&1));
        assert_eq!(p.facets.price_kind.get("free"), Some(&2));
    }

    #[test]
    fn eligibility_filters_results_and_every_facet() {
        let hits = hits();
        let commune =
            MemberProfile { kind: MemberKind::Commune, population: 1200, epci_siren: None, arrondissement: None };
        let filters = Filters { member: Some(commune), theme: Some("eau".into()), ..Filters::default() };
        let p = page(&hits, &filters, None, 10);
        assert_eq!(p.items.iter().map(|&i| hits[i].code.as_str()).collect::<Vec<_>>(), ["c"]);
        assert_eq!(p.facets.theme.get("eau"), Some(&1), "the EPCI-only offer is not counted");
    }
}
