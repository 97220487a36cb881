//! Import of the directory from the data files of the npm package `@etalab/decoupage-administratif`
//! (`communes.json`, `epci.json`; INSEE-derived, MIT). Idempotent: rows are upserted by SIREN and only
//! rewritten when they changed.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

use anyhow::Context;
use id77_proto::vocabulary::MemberKind;
use serde::Deserialize;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use sqlx::PgPool;

use crate::domain::{Siren, fold};

#[derive(Debug, Deserialize)]
struct CommuneRecord {
    code: String,
    nom: String,
    #[serde(rename = "type")]
    kind: String,
    departement: Option<String>,
    siren: Option<String>,
    #[serde(rename = "codesPostaux", default)]
    postal_codes: Vec<String>,
    #[serde(default)]
    population: Option<i64>,
    #[serde(default)]
    arrondissement: Option<String>,
}

#[derive(Debug, Deserialize)]
struct EpciRecord {
    code: String,
    nom: String,
    #[serde(rename = "type")]
    legal_form: String,
    #[serde(rename = "populationMunicipale", default)]
    population: Option<i64>,
    #[serde(default)]
    membres: Vec<EpciMember>,
}

#[derive(Debug, Deserialize)]
struct EpciMember {
    code: String,
}

/// One directory entry, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub siren: String,
    pub name: String,
    pub kind: MemberKind,
    pub insee_code: Option<String>,
    pub departement: String,
    pub population: i64,
    pub postal_codes: Vec<String>,
    pub epci_siren: Option<String>,
    pub legal_form: Option<String>,
    /// A commune's arrondissement code.
    pub arrondissement: Option<String>,
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    pub communes: usize,
    pub epci: usize,
}

/// Selects the current communes of `departement` and the EPCI that have at least one of them as member.
pub fn select(communes_json: &[u8], epci_json: &[u8], departement: &str) -> anyhow::Result<Vec<Entry>> {
    // The files cover all of France (~37,000 communes): keep the département's while parsing, so the service
    // never holds the rest (it would stay in the allocator's arenas and weigh on the idle footprint).
    let communes: Vec<CommuneRecord> = parse_filtered(communes_json, |c: &CommuneRecord| {
        c.kind == "commune-actuelle" && c.departement.as_deref() == Some(departement)
    })
    .context("parsing communes.json")?;
    let prefix = departement.to_owned();
    let epcis: Vec<EpciRecord> =
        parse_filtered(epci_json, |e: &EpciRecord| e.membres.iter().any(|m| m.code.starts_with(prefix.as_str())))
            .context("parsing epci.json")?;
    let mut entries = Vec::new();
    let mut insee_codes = HashSet::new();
    for c in communes {
        let Some(siren) = c.siren.as_deref().and_then(|s| Siren::parse(s).ok()) else {
            tracing::warn!(code = %c.code, name = %c.nom, "commune without a valid SIREN skipped");
            continue;
        };
        insee_codes.insert(c.code.clone());
        entries.push(Entry {
            siren: siren.as_str().to_owned(),
            name: c.nom,
            kind: MemberKind::Commune,
            insee_code: Some(c.code),
            departement: departement.to_owned(),
            population: c.population.unwrap_or(0),
            postal_codes: c.postal_codes,
            epci_siren: None,
            legal_form: None,
            arrondissement: c.arrondissement.filter(|a| !a.is_empty() && a.len() <= 8),
        });
    }
    let mut epci_of_commune = HashMap::new();
    for e in epcis {
        if !e.membres.iter().any(|m| insee_codes.contains(&m.code)) {
            continue;
        }
        let Ok(siren) = Siren::parse(&e.code) else {
            tracing::warn!(code = %e.code, name = %e.nom, "EPCI without a valid SIREN skipped");
            continue;
        };
        for m in &e.membres {
            epci_of_commune.insert(m.code.clone(), siren.as_str().to_owned());
        }
        entries.push(Entry {
            siren: siren.as_str().to_owned(),
            name: e.nom,
            kind: MemberKind::Epci,
            insee_code: None,
            departement: departement.to_owned(),
            population: e.population.unwrap_or(0),
            postal_codes: Vec::new(),
            epci_siren: None,
            legal_form: Some(e.legal_form),
            arrondissement: None,
        });
    }
    for entry in &mut entries {
        if let Some(code) = &entry.insee_code {
            entry.epci_siren = epci_of_commune.get(code).cloned();
        }
    }
    Ok(entries)
}

/// Parses a JSON array, keeping only the elements `keep` accepts.
fn parse_filtered<T, F>(json: &[u8], keep: F) -> serde_json::Result<Vec<T>>
where
    T: for<'de> Deserialize<'de>,
    F: FnMut(&T) -> bool,
{
    let mut de = serde_json::Deserializer::from_slice(json);
    let kept = Filtered { keep, kind: PhantomData }.deserialize(&mut de)?;
    de.end()?;
    Ok(kept)
}

struct Filtered<T, F> {
    keep: F,
    kind: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>, F: FnMut(&T) -> bool> DeserializeSeed<'de> for Filtered<T, F> {
    type Value = Vec<T>;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Vec<T>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>, F: FnMut(&T) -> bool> Visitor<'de> for Filtered<T, F> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut kept = Vec::new();
        while let Some(item) = seq.next_element::<T>()? {
            if (self.keep)(&item) {
                kept.push(item);
            }
        }
        Ok(kept)
    }
}

/// Reads the two files from `dir` and imports the département's entries.
pub async fn import_from_dir(pool: &PgPool, dir: &Path, departement: &str) -> anyhow::Result<Imported> {
    let communes = tokio::fs::read(dir.join("communes.json"))
        .await
        .with_context(|| format!("reading {}", dir.join("communes.json").display()))?;
    let epci = tokio::fs::read(dir.join("epci.json"))
        .await
        .with_context(|| format!("reading {}", dir.join("epci.json").display()))?;
    let departement = departement.to_owned();
    let entries = tokio::task::spawn_blocking(move || select(&communes, &epci, &departement)).await??;
    anyhow::ensure!(!entries.is_empty(), "no collectivité found for this département in {}", dir.display());
    upsert(pool, &entries).await?;
    Ok(Imported {
        communes: entries.iter().filter(|e| e.kind == MemberKind::Commune).count(),
        epci: entries.iter().filter(|e| e.kind == MemberKind::Epci).count(),
    })
}

/// Upserts entries in one statement.
pub async fn upsert(pool: &PgPool, entries: &[Entry]) -> Result<(), sqlx::Error> {
    let col = |f: fn(&Entry) -> Option<String>| entries.iter().map(f).collect::<Vec<_>>();
    let sirens = col(|e| Some(e.siren.clone()));
    let names = col(|e| Some(e.name.clone()));
    let kinds = col(|e| Some(e.kind.as_str().to_owned()));
    let insee = col(|e| e.insee_code.clone());
    let deps = col(|e| Some(e.departement.clone()));
    let postal = col(|e| Some(e.postal_codes.join(",")));
    let epci = col(|e| e.epci_siren.clone());
    let forms = col(|e| e.legal_form.clone());
    let search = col(|e| Some(fold(&e.name)));
    let arrondissements = col(|e| e.arrondissement.clone());
    let population: Vec<i64> = entries.iter().map(|e| e.population).collect();
    sqlx::query(
        "INSERT INTO collectivity
           (siren, name, kind, insee_code, departement, population, postal_codes, epci_siren, legal_form, search_name,
            arrondissement)
         SELECT s, n, k, i, d, p, CASE WHEN pc = '' THEN '{}'::text[] ELSE string_to_array(pc, ',') END, e, f, sn, a
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
                     $8::text[], $9::text[], $10::text[], $11::text[]) AS t(s, n, k, i, d, p, pc, e, f, sn, a)
         ON CONFLICT (siren) DO UPDATE SET
           name = EXCLUDED.name, kind = EXCLUDED.kind, insee_code = EXCLUDED.insee_code,
           departement = EXCLUDED.departement, population = EXCLUDED.population,
           postal_codes = EXCLUDED.postal_codes, epci_siren = EXCLUDED.epci_siren,
           legal_form = EXCLUDED.legal_form, search_name = EXCLUDED.search_name,
           arrondissement = EXCLUDED.arrondissement, updated_at = now()
         WHERE (collectivity.name, collectivity.kind, collectivity.insee_code, collectivity.departement,
                collectivity.population, collectivity.postal_codes, collectivity.epci_siren, collectivity.legal_form,
                collectivity.arrondissement)
           IS DISTINCT FROM
               (EXCLUDED.name, EXCLUDED.kind, EXCLUDED.insee_code, EXCLUDED.departement,
                EXCLUDED.population, EXCLUDED.postal_codes, EXCLUDED.epci_siren, EXCLUDED.legal_form,
                EXCLUDED.arrondissement)",
    )
    .bind(sirens)
    .bind(names)
    .bind(kinds)
    .bind(insee)
    .bind(deps)
    .bind(population)
    .bind(postal)
    .bind(epci)
    .bind(forms)
    .bind(search)
    .bind(arrondissements)
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMUNES: &str = r#"[
      {"code":"77284","nom":"Meaux","type":"commune-actuelle","departement":"77","siren":"217702844","codesPostaux":["77100"],"population":56030,"arrondissement":"771"},
      {"code":"77001","nom":"Achères-la-Forêt","type":"commune-actuelle","departement":"77","siren":"217700012","codesPostaux":["77760"],"population":1191},
      {"code":"77999","nom":"Ancienne","type":"commune-deleguee","departement":"77","siren":"217700012"},
      {"code":"75056","nom":"Paris","type":"commune-actuelle","departement":"75","siren":"217500016","population":2100000}
    ]"#;
    const EPCI: &str = r#"[
      {"code":"200072130","nom":"CA du Pays de Meaux","type":"CA","populationMunicipale":105000,"membres":[{"code":"77284","siren":"217702844","nom":"Meaux"}]},
      {"code":"200054781","nom":"Métropole du Grand Paris","type":"METRO","membres":[{"code":"75056"}]}
    ]"#;

    #[test]
    fn keeps_current_communes_of_the_departement_and_their_epci() {
        let entries = select(COMMUNES.as_bytes(), EPCI.as_bytes(), "77").unwrap_or_default();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, vec!["Meaux", "Achères-la-Forêt", "CA du Pays de Meaux"]);
        let meaux = &entries[0];
        assert_eq!(meaux.epci_siren.as_deref(), Some("200072130"));
        assert_eq!(meaux.postal_codes, vec!["77100"]);
        assert_eq!(meaux.arrondissement.as_deref(), Some("771"));
        assert_eq!(entries[1].arrondissement, None);
        assert_eq!(entries[1].epci_siren, None);
        assert_eq!(entries[2].legal_form.as_deref(), Some("CA"));
    }

    #[test]
    fn malformed_files_are_an_error_not_a_panic() {
        assert!(select(b"{", EPCI.as_bytes(), "77").is_err());
        assert!(select(COMMUNES.as_bytes(), b"[1]", "77").is_err());
    }
}
