//! Who issues and who receives a document, free of I/O: the issuers' legal identities (billing's own registry,
//! `issuers.json`, see docs/adr/0008-billing-issuer-identities.md), their validation (SIREN, SIRET, French VAT
//! number) and the parties a document carries, fixed when it is issued.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Country of every party: the platform serves one French Département.
pub const COUNTRY: &str = "FR";

/// One party of a document (seller or buyer) as it stood when the document was issued. Empty strings are
/// unknown facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Party {
    /// Legal name (BT-27 seller, BT-44 buyer).
    pub name: String,
    /// Trading name: the directorate or service that delivers (BT-28).
    pub trading_name: String,
    /// SIREN (9 digits): legal registration identifier (BT-30 / BT-47, ISO 6523 scheme 0002).
    pub siren: String,
    /// SIRET (14 digits) of the establishment; for the seller also its electronic address (BT-34, scheme
    /// 0009), the routing identifier Chorus Pro uses.
    pub siret: String,
    /// Intra-community VAT number (BT-31 / BT-48), `FR` + key + SIREN.
    pub vat_id: String,
    pub address_line: String,
    pub postcode: String,
    pub city: String,
    pub country_code: String,
}

/// Luhn check of a digit string (SIREN, SIRET).
fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, c) in digits.chars().rev().enumerate() {
        let Some(d) = c.to_digit(10) else { return false };
        sum += if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d };
    }
    sum.is_multiple_of(10)
}

/// A SIREN: 9 digits, Luhn-valid.
pub fn valid_siren(siren: &str) -> bool {
    siren.len() == 9 && luhn(siren)
}

/// A SIRET: 14 digits, Luhn-valid.
pub fn valid_siret(siret: &str) -> bool {
    siret.len() == 14 && luhn(siret)
}

/// The French intra-community VAT number of a SIREN: `FR` + (12 + 3 × (SIREN mod 97)) mod 97 + SIREN.
pub fn french_vat_id(siren: &str) -> Option<String> {
    if !valid_siren(siren) {
        return None;
    }
    let n: u64 = siren.parse().ok()?;
    Some(format!("FR{:02}{siren}", (12 + 3 * (n % 97)) % 97))
}

/// A legal identity as the registry states it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub legal_name: String,
    pub siren: String,
    pub siret: String,
    #[serde(default)]
    pub vat_id: String,
    pub address_line: String,
    pub postcode: String,
    pub city: String,
    /// Shipped sample values for the local platform, to be replaced by the organisation's real ones.
    #[serde(default)]
    pub sample: bool,
}

impl Identity {
    fn check(&self, key: &str) -> Result<(), String> {
        let fail = |what: &str| Err(format!("issuer identity {key}: {what}"));
        if self.legal_name.trim().is_empty() {
            return fail("legal_name is empty");
        }
        if !valid_siren(&self.siren) {
            return fail("siren is not 9 Luhn-valid digits");
        }
        if !valid_siret(&self.siret) || !self.siret.starts_with(&self.siren) {
            return fail("siret is not 14 Luhn-valid digits starting with the siren");
        }
        if !self.vat_id.is_empty() && french_vat_id(&self.siren).as_deref() != Some(self.vat_id.as_str()) {
            return fail("vat_id is not the French VAT number of the siren");
        }
        if self.address_line.trim().is_empty() || self.city.trim().is_empty() {
            return fail("address_line and city are required");
        }
        if self.postcode.len() != 5 || !self.postcode.chars().all(|c| c.is_ascii_digit()) {
            return fail("postcode is not 5 digits");
        }
        Ok(())
    }

    /// The seller party, trading as `trading_name` (the provider's name in the catalogue).
    pub fn seller(&self, trading_name: &str) -> Party {
        Party {
            name: self.legal_name.clone(),
            trading_name: if trading_name == self.legal_name { String::new() } else { trading_name.to_owned() },
            siren: self.siren.clone(),
            siret: self.siret.clone(),
            vat_id: self.vat_id.clone(),
            address_line: self.address_line.clone(),
            postcode: self.postcode.clone(),
            city: self.city.clone(),
            country_code: COUNTRY.to_owned(),
        }
    }
}

/// The registry of issuer identities: one per provider code, and the Département's for its own directorates
/// (providers of kind `departmental_service`) that have no entry of their own.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuers {
    pub departement: Identity,
    #[serde(default)]
    pub providers: BTreeMap<String, Identity>,
}

/// The registry shipped with the service.
pub const SHIPPED_ISSUERS: &str = include_str!("../issuers.json");

/// A provider as the catalogue announces it (billing's read model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFacts {
    pub code: String,
    pub name: String,
    /// `departmental_service` or `associated_organisation`.
    pub kind: String,
}

impl Issuers {
    /// Parses and validates a registry.
    pub fn parse(json: &str) -> Result<Self, String> {
        let issuers: Self = serde_json::from_str(json).map_err(|e| format!("issuer registry: {e}"))?;
        issuers.departement.check("departement")?;
        for (code, identity) in &issuers.providers {
            identity.check(code)?;
        }
        Ok(issuers)
    }

    /// The shipped registry.
    pub fn shipped() -> Result<Self, String> {
        Self::parse(SHIPPED_ISSUERS)
    }

    /// The seller of a document issued by `provider_code`: its own identity, else the Département's for a
    /// departmental service; trading under the provider's catalogue name. `None` when the provider has no
    /// known legal identity.
    pub fn seller(&self, provider_code: &str, provider: Option<&ProviderFacts>) -> Option<Party> {
        let trading = provider.map(|p| p.name.as_str()).unwrap_or(provider_code);
        if let Some(identity) = self.providers.get(provider_code) {
            return Some(identity.seller(trading));
        }
        provider.filter(|p| p.kind == "departmental_service").map(|_| self.departement.seller(trading))
    }

    /// Codes of the providers whose identity is a shipped sample.
    pub fn samples(&self) -> Vec<&str> {
        self.providers.iter().filter(|(_, i)| i.sample).map(|(code, _)| code.as_str()).collect()
    }
}

/// The buyer party of a member: its name and SIREN as billing knows them.
pub fn buyer(name: &str, siren: &str) -> Party {
    Party { name: name.to_owned(), siren: siren.to_owned(), country_code: COUNTRY.to_owned(), ..Party::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siren_siret_and_vat_numbers_are_checked() {
        assert!(valid_siren("227700010"));
        assert!(!valid_siren("227700011"));
        assert!(!valid_siren("22770001"));
        assert!(!valid_siren("22770001a"));
        assert!(valid_siret("22770001000019"));
        assert!(!valid_siret("22770001000018"));
        assert_eq!(french_vat_id("227700010").as_deref(), Some("FR46227700010"));
        // A published example: SIREN 404833048 has the VAT number FR83404833048.
        assert_eq!(french_vat_id("404833048").as_deref(), Some("FR83404833048"));
        assert_eq!(french_vat_id("123"), None);
    }

    #[test]
    fn the_shipped_registry_is_valid_and_resolves_sellers() {
        let issuers = Issuers::shipped().unwrap_or_else(|e| panic!("{e}"));
        let routes = ProviderFacts {
            code: "dir-routes".into(),
            name: "Direction des routes".into(),
            kind: "departmental_service".into(),
        };
        let seller = issuers.seller("dir-routes", Some(&routes)).unwrap_or_default();
        assert_eq!(seller.siren, "227700010");
        assert_eq!(seller.trading_name, "Direction des routes");
        assert_eq!(seller.country_code, "FR");
        // An associated organisation is its own legal person.
        let caue =
            ProviderFacts { code: "caue77".into(), name: "CAUE 77".into(), kind: "associated_organisation".into() };
        let seller = issuers.seller("caue77", Some(&caue)).unwrap_or_default();
        assert_ne!(seller.siren, "227700010");
        assert!(valid_siret(&seller.siret));
        // Unknown associated organisation, or a provider billing has not heard of: no identity.
        let other = ProviderFacts { code: "x".into(), name: "X".into(), kind: "associated_organisation".into() };
        assert_eq!(issuers.seller("x", Some(&other)), None);
        assert_eq!(issuers.seller("dir-routes", None), None);
    }

    #[test]
    fn an_invalid_registry_is_refused_with_the_reason() {
        let base = r#"{"departement": {"legal_name": "D", "siren": "227700010", "siret": "22770001000019",
            "address_line": "1 rue", "postcode": "77010", "city": "Melun"}, "providers": {"p": PROVIDER}}"#;
        let with = |p: &str| Issuers::parse(&base.replace("PROVIDER", p));
        let ok = r#"{"legal_name": "P", "siren": "404833048", "siret": "40483304800014", "address_line": "1 rue",
            "postcode": "77000", "city": "Melun"}"#;
        assert!(with(ok).is_ok(), "{:?}", with(ok));
        let cases = [
            (ok.replace("404833048\"", "404833049\""), "siren"),
            (ok.replace("40483304800014", "40483304800015"), "siret"),
            (ok.replace("\"P\"", "\" \""), "legal_name"),
            (ok.replace("77000", "7700"), "postcode"),
            (ok.replace("\"city\"", "\"vat_id\": \"FR00404833048\", \"city\""), "vat_id"),
            (ok.replace("\"city\"", "\"town\": \"x\", \"city\""), "unknown field"),
        ];
        for (json, reason) in cases {
            let err = with(&json).err().unwrap_or_default();
            assert!(err.contains(reason), "{reason}: {err}");
        }
    }
}
