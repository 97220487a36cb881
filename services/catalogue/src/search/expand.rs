//! Plain French queries: the field's synonyms (`data/synonymes.txt`, one group per line) and its empty words
//! (« refaire », « besoin »…), applied to the words of a query before PostgreSQL stems them. A word or phrase
//! of the query found in a group is searched as any term of its group (« commande publique » also finds
//! « marchés publics »); each group or lone word is one *term*, and an offer matches when any term does
//! (ranked by how many match, see [`super::find`]).

use std::collections::HashMap;
use std::sync::LazyLock;

/// The maintained list, compiled in.
const SYNONYMS_FILE: &str = include_str!("../../data/synonymes.txt");

/// Longest synonym, in words.
const MAX_PHRASE_WORDS: usize = 4;

/// The synonym groups and the empty words.
#[derive(Debug, Default)]
pub struct Synonyms {
    /// Each group's terms, as written.
    groups: Vec<Vec<String>>,
    /// The key of each term (its words folded) → its group.
    index: HashMap<Vec<String>, usize>,
    /// Folded empty words.
    empty: Vec<String>,
}

/// The list of the repository, parsed once.
pub static SYNONYMS: LazyLock<Synonyms> = LazyLock::new(|| Synonyms::parse(SYNONYMS_FILE));

/// A word without accents, case, or a plural `s`/`x`: « Marchés » and « marche » are the same key.
pub fn fold(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars().flat_map(char::to_lowercase) {
        match c {
            'à' | 'â' | 'ä' | 'á' => out.push('a'),
            'é' | 'è' | 'ê' | 'ë' => out.push('e'),
            'î' | 'ï' | 'í' => out.push('i'),
            'ô' | 'ö' | 'ó' => out.push('o'),
            'ù' | 'û' | 'ü' | 'ú' => out.push('u'),
            'ÿ' => out.push('y'),
            'ç' => out.push('c'),
            'œ' => out.push_str("oe"),
            'æ' => out.push_str("ae"),
            c => out.push(c),
        }
    }
    if out.chars().count() > 3 && (out.ends_with('s') || out.ends_with('x')) {
        out.pop();
    }
    out
}

/// The folded words of a phrase, split like a query.
fn key(phrase: &str) -> Vec<String> {
    super::query_words(phrase).iter().map(|w| fold(w)).collect()
}

/// One term of a query: the words as asked, and what is searched for them (any of the alternatives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub asked: String,
    pub alternatives: Vec<String>,
}

impl Synonyms {
    /// One group per line, terms separated by commas; `#` starts a comment line; `mots vides:` lists the
    /// empty words. A term already in an earlier group stays there (the first group wins).
    pub fn parse(text: &str) -> Self {
        let mut s = Self::default();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            if let Some(words) = line.strip_prefix("mots vides:") {
                s.empty.extend(words.split(',').map(|w| fold(w.trim())).filter(|w| !w.is_empty()));
                continue;
            }
            let terms: Vec<String> =
                line.split(',').map(|t| t.trim().to_owned()).filter(|t| !key(t).is_empty()).collect();
            if terms.len() < 2 {
                continue;
            }
            let group = s.groups.len();
            for term in &terms {
                s.index.entry(key(term)).or_insert(group);
            }
            s.groups.push(terms);
        }
        s
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    fn is_empty_word(&self, word: &str) -> bool {
        self.empty.contains(&fold(word))
    }

    /// The terms of a query's words (from [`super::query_words`]): the longest phrase found in a group first,
    /// empty words left out (unless the query has nothing else).
    pub fn expand(&self, words: &[String]) -> Vec<Term> {
        let keys: Vec<String> = words.iter().map(|w| fold(w)).collect();
        let mut terms = Vec::new();
        let mut i = 0;
        'words: while i < words.len() {
            for n in (1..=MAX_PHRASE_WORDS.min(words.len() - i)).rev() {
                if let Some(&group) = self.index.get(&keys[i..i + n]) {
                    let asked = words[i..i + n].join(" ");
                    let mut alternatives = vec![asked.clone()];
                    alternatives.extend(self.groups[group].iter().filter(|t| key(t) != keys[i..i + n]).cloned());
                    terms.push(Term { asked, alternatives });
                    i += n;
                    continue 'words;
                }
            }
            if !self.is_empty_word(&words[i]) {
                terms.push(Term { asked: words[i].clone(), alternatives: vec![words[i].clone()] });
            }
            i += 1;
        }
        if terms.is_empty() {
            return words.iter().map(|w| Term { asked: w.clone(), alternatives: vec![w.clone()] }).collect();
        }
        terms
    }
}

/// The SQL input of terms: every alternative with the index of its term.
pub fn alternatives(terms: &[Term]) -> (Vec<String>, Vec<i32>) {
    let mut texts = Vec::new();
    let mut groups = Vec::new();
    for (n, term) in terms.iter().enumerate() {
        for alternative in &term.alternatives {
            texts.push(alternative.clone());
            groups.push(i32::try_from(n).unwrap_or(i32::MAX));
        }
    }
    (texts, groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::query_words;

    fn expand(q: &str) -> Vec<Term> {
        SYNONYMS.expand(&query_words(q))
    }

    #[test]
    fn words_fold_accents_case_and_plurals() {
        assert_eq!(fold("Marchés"), "marche");
        assert_eq!(fold("publics"), "public");
        assert_eq!(fold("eaux"), "eau");
        assert_eq!(fold("Cœur"), "coeur");
        assert_eq!(fold("gaz"), "gaz");
    }

    #[test]
    fn the_list_of_the_repository_has_the_fields_groups() {
        assert!(SYNONYMS.group_count() >= 30, "{}", SYNONYMS.group_count());
        assert!(SYNONYMS.is_empty_word("refaire") && SYNONYMS.is_empty_word("Le"));
        // A folded empty word never hides a word of the field (« plus » folds to « plu »).
        assert!(!SYNONYMS.is_empty_word("PLU"));
        // Every term is in one group only: a second one would never be used.
        let mut seen = HashMap::new();
        for (g, terms) in SYNONYMS.groups.iter().enumerate() {
            for term in terms {
                let previous = seen.insert(key(term), g);
                assert!(previous.is_none_or(|p| p == g), "« {term} » is in two groups");
            }
        }
    }

    #[test]
    fn a_phrase_of_a_group_is_searched_as_any_term_of_its_group() {
        let terms = expand("commande publique");
        assert_eq!(terms.len(), 1, "{terms:?}");
        assert_eq!(terms[0].asked, "commande publique");
        assert!(terms[0].alternatives.iter().any(|a| a == "marchés publics"), "{terms:?}");
        // Accents and plurals do not matter to find the group.
        let terms = expand("formation Marche public");
        assert_eq!(terms.len(), 2, "{terms:?}");
        assert!(terms[0].alternatives.iter().any(|a| a == "atelier"));
        assert!(terms[1].alternatives.iter().any(|a| a == "commande publique"));
    }

    #[test]
    fn empty_words_are_left_out_unless_nothing_else_is_asked() {
        let terms = expand("refaire le trottoir");
        assert_eq!(terms.iter().map(|t| t.asked.as_str()).collect::<Vec<_>>(), ["trottoir"]);
        assert!(terms[0].alternatives.iter().any(|a| a == "voirie"));
        // A phrase of the list keeps its small words: « nid de poule ».
        assert_eq!(expand("un nid de poule")[0].asked, "nid de poule");
        assert_eq!(expand("refaire").len(), 1);
        let unknown = expand("zzzqqq");
        assert_eq!(unknown, [Term { asked: "zzzqqq".into(), alternatives: vec!["zzzqqq".into()] }]);
    }

    #[test]
    fn alternatives_are_numbered_by_term() {
        let terms = vec![
            Term { asked: "a".into(), alternatives: vec!["a".into(), "b".into()] },
            Term { asked: "c".into(), alternatives: vec!["c".into()] },
        ];
        assert_eq!(alternatives(&terms), (vec!["a".into(), "b".into(), "c".into()], vec![0, 0, 1]));
    }

    #[test]
    fn a_list_is_parsed_line_by_line() {
        let s = Synonyms::parse("# comment\nmots vides: faire, Besoin\nvoirie, route\nseul\nroute, chemin\n");
        assert_eq!(s.group_count(), 2);
        assert!(s.is_empty_word("besoin"));
        // « route » stays in its first group.
        assert_eq!(s.expand(&["route".into()])[0].alternatives, ["route", "voirie"]);
    }
}
