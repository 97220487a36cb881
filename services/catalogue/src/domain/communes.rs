//! The communes of Seine-et-Marne (`data/communes77.tsv`, from the directory membership imports): a session's
//! place must be one of them, and its name is the directory's, whatever the caller typed.

const COMMUNES_FILE: &str = include_str!("../../data/communes77.tsv");

/// The name of the current commune of Seine-et-Marne with this INSEE code.
pub fn commune_name(insee: &str) -> Option<&'static str> {
    COMMUNES_FILE
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .find(|(code, _)| *code == insee)
        .map(|(_, name)| name.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_knows_every_commune_of_seine_et_marne() {
        assert_eq!(commune_name("77288"), Some("Melun"));
        assert_eq!(commune_name("77001"), Some("Achères-la-Forêt"));
        assert_eq!(commune_name("77379"), Some("Provins"));
        assert_eq!(commune_name("77999"), None);
        assert_eq!(commune_name("75056"), None);
        let communes = COMMUNES_FILE.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(communes, 507);
    }
}
