//! How the texts requests writes for people name a provider (issue 21): by the name the catalogue gives it (kept
//! from `offer.published`, [`crate::store::provider_names`]); « le partenaire » while requests does not know it.
//! Never by its code: codes are for machines (subjects, keys), not for a secrétaire de mairie.

use std::collections::HashMap;

/// What a text says of a provider whose name requests does not know.
pub const UNKNOWN_PROVIDER: &str = "le partenaire";

/// Longest name kept (a name goes into subject lines and sentences).
pub const MAX_NAME_CHARS: usize = 200;

/// Providers' names by code (only non-empty names are kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderNames(HashMap<String, String>);

impl ProviderNames {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(code, name)| (code.trim().to_owned(), one_line(&name)))
                .filter(|(code, name)| !code.is_empty() && !name.is_empty())
                .collect(),
        )
    }

    /// The provider's name, if known.
    pub fn known(&self, code: &str) -> Option<&str> {
        self.0.get(code.trim()).map(String::as_str)
    }

    /// The provider's name, else « le partenaire ».
    pub fn name(&self, code: &str) -> &str {
        self.known(code).unwrap_or(UNKNOWN_PROVIDER)
    }

    /// « de <name> », elided before a vowel (« d'Aménagement 77 »), « du partenaire » when unknown.
    pub fn of(&self, code: &str) -> String {
        match self.known(code) {
            None => "du partenaire".to_owned(),
            Some(name) if name.starts_with(is_vowel) => format!("d'{name}"),
            Some(name) => format!("de {name}"),
        }
    }
}

fn is_vowel(c: char) -> bool {
    "aeiouyàâäéèêëîïôöùûüAEIOUYÀÂÄÉÈÊËÎÏÔÖÙÛÜ".contains(c)
}

/// A name on one line, spaces collapsed (a name is embedded in sentences and subject lines).
fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ProviderNames {
        ProviderNames::new([
            ("caue77".to_owned(), " CAUE 77\n— Conseil ".to_owned()),
            ("amenagement-77".to_owned(), "Aménagement 77".to_owned()),
            ("sdesm".to_owned(), "  ".to_owned()),
        ])
    }

    #[test]
    fn a_provider_is_named_never_coded() {
        let n = names();
        assert_eq!(n.name("caue77"), "CAUE 77 — Conseil");
        assert_eq!(n.name(" caue77 "), "CAUE 77 — Conseil");
        assert_eq!(n.known("caue77"), Some("CAUE 77 — Conseil"));
        // An empty name is no name; an unknown code is « le partenaire ».
        assert_eq!((n.known("sdesm"), n.name("sdesm")), (None, "le partenaire"));
        assert_eq!(n.name("dir-routes"), "le partenaire");
        assert_eq!(ProviderNames::default().name("caue77"), UNKNOWN_PROVIDER);
    }

    #[test]
    fn of_a_provider_reads_as_french() {
        let n = names();
        assert_eq!(n.of("caue77"), "de CAUE 77 — Conseil");
        assert_eq!(n.of("amenagement-77"), "d'Aménagement 77");
        assert_eq!(n.of("sdesm"), "du partenaire");
    }
}
