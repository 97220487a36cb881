//! Who may ask for an offer: kinds of collectivité, population bounds and territory (EPCI, arrondissements),
//! checked against what the catalogue knows of a member.

use id77_platform::error::FieldViolation;
use id77_proto::vocabulary::MemberKind;
use serde::{Deserialize, Serialize};

use super::fields::violation;

/// Most EPCI or arrondissements in a territory.
pub const MAX_TERRITORY: usize = 100;
/// Highest population bound (well above any French collectivité).
pub const MAX_POPULATION: i64 = 100_000_000;

/// Who may ask for an offer. Empty lists and absent bounds mean "no constraint".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Eligibility {
    #[serde(default)]
    pub member_kinds: Vec<MemberKind>,
    #[serde(default)]
    pub min_population: Option<i64>,
    #[serde(default)]
    pub max_population: Option<i64>,
    /// SIRENs of the EPCI whose territory is eligible.
    #[serde(default)]
    pub epci_sirens: Vec<String>,
    /// Arrondissement codes (INSEE: 771 Meaux, 772 Melun, 773 Provins, 774 Fontainebleau, 775 Torcy) whose territory is eligible.
    #[serde(default)]
    pub arrondissements: Vec<String>,
}

/// What the catalogue knows of a member (from membership's events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberProfile {
    pub kind: MemberKind,
    pub population: i64,
    /// The member's EPCI (a commune's) or its own SIREN (an EPCI's), when membership sent it.
    pub epci_siren: Option<String>,
    /// A commune's arrondissement, when membership sent it.
    pub arrondissement: Option<String>,
}

impl Eligibility {
    pub fn is_unrestricted(&self) -> bool {
        *self == Self::default()
    }

    fn has_territory(&self) -> bool {
        !self.epci_sirens.is_empty() || !self.arrondissements.is_empty()
    }

    /// Whether `member` may ask for the offer. A territory restriction admits a member in any listed EPCI or
    /// arrondissement; when the catalogue does not know the member's territory at all, the restriction is not
    /// applied (the coordinator checks it at triage) rather than hiding the offer.
    pub fn admits(&self, member: &MemberProfile) -> bool {
        if !self.member_kinds.is_empty() && !self.member_kinds.contains(&member.kind) {
            return false;
        }
        if self.min_population.is_some_and(|min| member.population < min) {
            return false;
        }
        if self.max_population.is_some_and(|max| member.population > max) {
            return false;
        }
        if !self.has_territory() || (member.epci_siren.is_none() && member.arrondissement.is_none()) {
            return true;
        }
        member.epci_siren.as_ref().is_some_and(|s| self.epci_sirens.contains(s))
            || member.arrondissement.as_ref().is_some_and(|a| self.arrondissements.contains(a))
    }
}

/// Eligibility as written: member kinds as strings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EligibilityInput {
    #[serde(default)]
    pub member_kinds: Vec<String>,
    #[serde(default)]
    pub min_population: Option<i64>,
    #[serde(default)]
    pub max_population: Option<i64>,
    #[serde(default)]
    pub epci_sirens: Vec<String>,
    #[serde(default)]
    pub arrondissements: Vec<String>,
}

fn is_siren(s: &str) -> bool {
    s.len() == 9 && s.bytes().all(|b| b.is_ascii_digit())
}

fn is_arrondissement(s: &str) -> bool {
    (3..=4).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Validates an offer's eligibility, reporting every problem in `out` (fields `eligibility.*`).
pub(super) fn validate_eligibility(input: EligibilityInput, out: &mut Vec<FieldViolation>) -> Eligibility {
    let mut kinds = Vec::new();
    for k in &input.member_kinds {
        match MemberKind::parse(k.trim()) {
            Some(kind) if !kinds.contains(&kind) => kinds.push(kind),
            Some(_) => out.push(violation("eligibility.member_kinds", "a kind is listed twice")),
            None => out.push(violation("eligibility.member_kinds", "must be commune, epci or syndicat")),
        }
    }
    kinds.sort();
    let pop_ok = |p: Option<i64>| p.is_none_or(|p| (0..=MAX_POPULATION).contains(&p));
    if !pop_ok(input.min_population) {
        out.push(violation("eligibility.min_population", format!("must be from 0 to {MAX_POPULATION}")));
    }
    if !pop_ok(input.max_population) {
        out.push(violation("eligibility.max_population", format!("must be from 0 to {MAX_POPULATION}")));
    }
    if let (Some(min), Some(max)) = (input.min_population, input.max_population)
        && min > max
    {
        out.push(violation("eligibility.max_population", "must not be below min_population"));
    }
    let epci: Vec<String> = input.epci_sirens.iter().map(|s| s.trim().to_owned()).collect();
    let arr: Vec<String> = input.arrondissements.iter().map(|s| s.trim().to_owned()).collect();
    if epci.len() > MAX_TERRITORY || epci.iter().any(|s| !is_siren(s)) {
        out.push(violation("eligibility.epci_sirens", format!("at most {MAX_TERRITORY} SIRENs of 9 digits")));
    }
    if arr.len() > MAX_TERRITORY || arr.iter().any(|s| !is_arrondissement(s)) {
        out.push(violation("eligibility.arrondissements", "must be arrondissement codes such as 771"));
    }
    Eligibility {
        member_kinds: kinds,
        min_population: input.min_population.filter(|p| *p > 0),
        max_population: input.max_population,
        epci_sirens: epci,
        arrondissements: arr,
    }
}
