//! Routing rules as data, free of I/O. A rule set is an ordered list of rules; each has an optional condition
//! on the offer and the member, and a provider. The first rule whose condition holds wins; otherwise the offer's
//! default provider; otherwise the coordinator's triage queue. A re-routing (after a decline or an expiry)
//! takes the next candidate in the same order whose provider was not tried yet for the request.
//!
//! Conditions travel as JSON (`RoutingRule.condition_json`):
//! `{"theme": [..]}`, `{"offer": [..]}`, `{"arrondissement": [..]}`, `{"epci": [..]}`, `{"commune": [..]}`,
//! `{"kind": [..]}`, `{"population": {"min": .., "max": ..}}`, `{"all": [..]}`, `{"any": [..]}`.

use std::collections::BTreeSet;
use std::fmt;

use id77_platform::streams::is_valid_subject_token;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A member kind, as in the directory: the shared vocabulary's, spelled the same in stored rule conditions.
pub use id77_proto::vocabulary::MemberKind;

/// Most rules in a rule set.
pub const MAX_RULES: usize = 200;
/// Most values in one list condition, and most sub-conditions of `all` / `any`.
pub const MAX_LIST: usize = 500;
/// Deepest nesting of `all` / `any`.
pub const MAX_DEPTH: usize = 4;
/// Longest rule name.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest condition JSON accepted.
pub const MAX_CONDITION_BYTES: usize = 64 * 1024;

/// Inclusive population bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
}

/// A condition on the offer and the member.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Condition {
    /// The offer has at least one of these themes.
    Theme(Vec<String>),
    /// The offer is one of these (codes).
    Offer(Vec<String>),
    /// The member's commune lies in one of these arrondissements.
    Arrondissement(Vec<String>),
    /// The member is, or belongs to, one of these EPCI (SIREN).
    Epci(Vec<String>),
    /// The member is one of these communes (INSEE codes).
    Commune(Vec<String>),
    /// The member is of one of these kinds.
    Kind(Vec<MemberKind>),
    /// The member's population is within the bounds.
    Population(Bounds),
    /// Every sub-condition holds (an empty list always holds).
    All(Vec<Condition>),
    /// At least one sub-condition holds (an empty list never holds).
    Any(Vec<Condition>),
}

/// One rule of a rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: Uuid,
    pub name: String,
    /// `None`: always matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    pub provider_code: String,
}

/// What a rule can see of the offer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferFacts {
    pub code: String,
    pub themes: Vec<String>,
    /// The offer's default provider.
    pub provider_code: String,
}

/// What a rule can see of the member (from routing's read model; empty when unknown).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberFacts {
    /// False when routing has not heard of the member (yet): territorial conditions then never hold.
    pub known: bool,
    pub kind: Option<MemberKind>,
    pub population: i64,
    pub insee_code: String,
    pub epci_siren: String,
    pub arrondissement: String,
}

/// A rule set or rule input that cannot be saved, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub Vec<(String, String)>);

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(field, why)| format!("{field} {why}")).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for Invalid {}

/// Parses a condition from JSON; empty (or `null`) is "always".
pub fn parse_condition(json: &str) -> Result<Option<Condition>, String> {
    let json = json.trim();
    if json.is_empty() || json == "null" {
        return Ok(None);
    }
    if json.len() > MAX_CONDITION_BYTES {
        return Err(format!("must be at most {MAX_CONDITION_BYTES} bytes"));
    }
    serde_json::from_str::<Condition>(json).map(Some).map_err(|e| format!("is not a valid condition: {e}"))
}

/// The condition as JSON (empty for "always").
pub fn condition_json(condition: Option<&Condition>) -> String {
    condition.and_then(|c| serde_json::to_string(c).ok()).unwrap_or_default()
}

fn check_list(path: &str, values: &[String], ok: impl Fn(&str) -> bool, what: &str, errors: &mut Vec<String>) {
    if values.is_empty() {
        errors.push(format!("{path} needs at least one value"));
    }
    if values.len() > MAX_LIST {
        errors.push(format!("{path} has more than {MAX_LIST} values"));
    }
    for v in values {
        if !ok(v) {
            errors.push(format!("{path}: {v:?} is not {what}"));
        }
    }
}

fn is_insee(v: &str) -> bool {
    v.len() == 5 && v.bytes().all(|b| b.is_ascii_digit() || b == b'A' || b == b'B')
}

fn is_siren(v: &str) -> bool {
    v.len() == 9 && v.bytes().all(|b| b.is_ascii_digit())
}

fn is_arrondissement(v: &str) -> bool {
    (3..=4).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn is_slug(v: &str) -> bool {
    !v.is_empty() && v.chars().count() <= 100 && !v.chars().any(char::is_control)
}

/// Checks a condition's shape: non-empty lists of well-formed values, sane bounds, bounded size and depth.
pub fn check_condition(condition: &Condition) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    check_at(condition, "condition", 0, &mut errors);
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn check_at(c: &Condition, path: &str, depth: usize, errors: &mut Vec<String>) {
    match c {
        Condition::Theme(v) => check_list(&format!("{path}.theme"), v, is_slug, "a theme", errors),
        Condition::Offer(v) => check_list(&format!("{path}.offer"), v, is_slug, "an offer code", errors),
        Condition::Arrondissement(v) => {
            check_list(&format!("{path}.arrondissement"), v, is_arrondissement, "an arrondissement code", errors)
        }
        Condition::Epci(v) => check_list(&format!("{path}.epci"), v, is_siren, "a SIREN (9 digits)", errors),
        Condition::Commune(v) => {
            check_list(&format!("{path}.commune"), v, is_insee, "an INSEE commune code (5 characters)", errors)
        }
        Condition::Kind(v) => {
            if v.is_empty() {
                errors.push(format!("{path}.kind needs at least one value"));
            }
        }
        Condition::Population(b) => match (b.min, b.max) {
            (None, None) => errors.push(format!("{path}.population needs min or max")),
            (Some(min), Some(max)) if min > max => errors.push(format!("{path}.population has min > max")),
            (Some(v), _) | (_, Some(v)) if v < 0 => errors.push(format!("{path}.population bounds must be >= 0")),
            _ => {}
        },
        Condition::All(cs) | Condition::Any(cs) => {
            let name = if matches!(c, Condition::All(_)) { "all" } else { "any" };
            if depth >= MAX_DEPTH {
                errors.push(format!("{path}.{name} nests deeper than {MAX_DEPTH} levels"));
                return;
            }
            if cs.len() > MAX_LIST {
                errors.push(format!("{path}.{name} has more than {MAX_LIST} conditions"));
            }
            for (i, sub) in cs.iter().enumerate() {
                check_at(sub, &format!("{path}.{name}[{i}]"), depth + 1, errors);
            }
        }
    }
}

/// A canonical form: lists sorted and deduplicated, single-element `all`/`any` unwrapped, so two conditions
/// that say the same thing compare equal.
pub fn normalize(c: &Condition) -> Condition {
    fn set(v: &[String]) -> Vec<String> {
        v.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect()
    }
    match c {
        Condition::Theme(v) => Condition::Theme(set(v)),
        Condition::Offer(v) => Condition::Offer(set(v)),
        Condition::Arrondissement(v) => Condition::Arrondissement(set(v)),
        Condition::Epci(v) => Condition::Epci(set(v)),
        Condition::Commune(v) => Condition::Commune(set(v)),
        Condition::Kind(v) => Condition::Kind(v.iter().copied().collect::<BTreeSet<_>>().into_iter().collect()),
        Condition::Population(b) => Condition::Population(*b),
        Condition::All(cs) | Condition::Any(cs) => {
            let subs: Vec<Condition> = cs.iter().map(normalize).collect::<BTreeSet<_>>().into_iter().collect();
            if subs.len() == 1 {
                return subs.into_iter().next().unwrap_or(Condition::All(Vec::new()));
            }
            if matches!(c, Condition::All(_)) { Condition::All(subs) } else { Condition::Any(subs) }
        }
    }
}

/// Whether a condition holds whatever the offer and member (no condition, or an empty `all`).
pub fn is_unconditional(condition: Option<&Condition>) -> bool {
    match condition.map(normalize) {
        None => true,
        Some(Condition::All(cs)) => cs.is_empty(),
        Some(_) => false,
    }
}

/// Validates a whole rule set: names, conditions, known providers, and no unreachable rule (one after an
/// unconditional rule, or whose condition is identical to an earlier rule's).
pub fn validate(rules: &[Rule], known_provider: impl Fn(&str) -> bool) -> Result<(), Invalid> {
    let mut errors = Vec::new();
    if rules.len() > MAX_RULES {
        errors.push(("rules".to_owned(), format!("must be at most {MAX_RULES}")));
    }
    let mut seen: Vec<(usize, Option<Condition>)> = Vec::new();
    let mut catch_all: Option<usize> = None;
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("rules[{}]", i + 1);
        let name = rule.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            errors.push((format!("{at}.name"), format!("must be 1 to {MAX_NAME_CHARS} characters")));
        }
        if !is_valid_subject_token(&rule.provider_code) {
            errors.push((format!("{at}.provider_code"), "is not a provider code".to_owned()));
        } else if !known_provider(&rule.provider_code) {
            errors.push((format!("{at}.provider_code"), format!("names an unknown provider {}", rule.provider_code)));
        }
        if let Some(c) = &rule.condition
            && let Err(problems) = check_condition(c)
        {
            for p in problems {
                errors.push((format!("{at}.{p}"), String::new()));
            }
        }
        if let Some(first) = catch_all {
            errors.push((at.clone(), format!("is unreachable: rule {} before it matches everything", first + 1)));
        }
        let normalized = rule.condition.as_ref().map(normalize);
        if let Some((j, _)) = seen.iter().find(|(_, c)| *c == normalized) {
            if catch_all.is_none() {
                errors.push((at.clone(), format!("is unreachable: rule {} before it has the same condition", j + 1)));
            }
        } else {
            seen.push((i, normalized));
        }
        if catch_all.is_none() && is_unconditional(rule.condition.as_ref()) {
            catch_all = Some(i);
        }
    }
    let mut ids = BTreeSet::new();
    for rule in rules {
        if !ids.insert(rule.id) {
            errors.push(("rules".to_owned(), format!("rule id {} appears twice", rule.id)));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Invalid(errors.into_iter().map(|(f, w)| (f, w.trim().to_owned())).collect()))
    }
}

/// Evaluates a condition, saying why it holds or not (one line per leaf evaluated).
pub fn evaluate(c: &Condition, offer: &OfferFacts, member: &MemberFacts, reasons: &mut Vec<String>) -> bool {
    fn one_of(label: &str, have: &str, wanted: &[String], reasons: &mut Vec<String>) -> bool {
        let ok = !have.is_empty() && wanted.iter().any(|w| w == have);
        let have = if have.is_empty() { "unknown" } else { have };
        let verb = if ok { "is" } else { "is not" };
        reasons.push(format!("{label} {have} {verb} one of [{}]", wanted.join(", ")));
        ok
    }
    match c {
        Condition::Theme(wanted) => {
            let ok = offer.themes.iter().any(|t| wanted.contains(t));
            let verb = if ok { "include" } else { "do not include" };
            reasons.push(format!("offer themes [{}] {verb} one of [{}]", offer.themes.join(", "), wanted.join(", ")));
            ok
        }
        Condition::Offer(wanted) => one_of("offer", &offer.code, wanted, reasons),
        Condition::Arrondissement(wanted) => one_of("member arrondissement", &member.arrondissement, wanted, reasons),
        Condition::Epci(wanted) => one_of("member EPCI", &member.epci_siren, wanted, reasons),
        Condition::Commune(wanted) => one_of("member commune", &member.insee_code, wanted, reasons),
        Condition::Kind(wanted) => {
            let ok = member.kind.is_some_and(|k| wanted.contains(&k));
            let have = member.kind.map_or("unknown", MemberKind::as_str);
            let list: Vec<&str> = wanted.iter().map(|k| k.as_str()).collect();
            let verb = if ok { "is" } else { "is not" };
            reasons.push(format!("member kind {have} {verb} one of [{}]", list.join(", ")));
            ok
        }
        Condition::Population(b) => {
            let ok = member.known
                && b.min.is_none_or(|min| member.population >= min)
                && b.max.is_none_or(|max| member.population <= max);
            let range = format!(
                "[{}, {}]",
                b.min.map_or("-".to_owned(), |v| v.to_string()),
                b.max.map_or("-".to_owned(), |v| v.to_string())
            );
            let have = if member.known { member.population.to_string() } else { "unknown".to_owned() };
            let verb = if ok { "is" } else { "is not" };
            reasons.push(format!("member population {have} {verb} within {range}"));
            ok
        }
        Condition::All(cs) => {
            // Every sub-condition is evaluated, so the explanation is complete.
            let mut ok = true;
            for sub in cs {
                ok &= evaluate(sub, offer, member, reasons);
            }
            if cs.is_empty() {
                reasons.push("all [] always holds".to_owned());
            }
            ok
        }
        Condition::Any(cs) => {
            let mut ok = false;
            for sub in cs {
                ok |= evaluate(sub, offer, member, reasons);
            }
            if cs.is_empty() {
                reasons.push("any [] never holds".to_owned());
            }
            ok
        }
    }
}

/// How one rule fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub rule_id: Uuid,
    pub position: usize,
    pub name: String,
    pub provider_code: String,
    pub matched: bool,
    pub reasons: Vec<String>,
    /// Matched but not chosen, and why.
    pub skipped: Option<String>,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// A rule chose the provider.
    Rule { rule_id: Uuid, position: usize, provider_code: String },
    /// No rule (left) matched: the offer's own provider.
    OfferDefault { provider_code: String },
    /// Nobody left: the coordinator's triage queue.
    Triage,
}

impl Choice {
    pub fn provider_code(&self) -> Option<&str> {
        match self {
            Self::Rule { provider_code, .. } | Self::OfferDefault { provider_code } => Some(provider_code),
            Self::Triage => None,
        }
    }

    pub fn rule_id(&self) -> Option<Uuid> {
        match self {
            Self::Rule { rule_id, .. } => Some(*rule_id),
            _ => None,
        }
    }

    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Rule { .. } => "rule",
            Self::OfferDefault { .. } => "offer_default",
            Self::Triage => "triage",
        }
    }
}

/// The routing of one request: every rule tried, the choice, and a one-line summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    pub traces: Vec<Trace>,
    pub choice: Choice,
    pub summary: String,
}

/// Routes a request: the first rule that matches and whose provider was not `tried` yet, else the offer's
/// default provider (if not tried and a valid code), else triage. Every rule is evaluated, so that the
/// explanation shows all of them.
pub fn route(rules: &[Rule], offer: &OfferFacts, member: &MemberFacts, tried: &[String]) -> Routing {
    let mut traces = Vec::with_capacity(rules.len());
    let mut choice: Option<Choice> = None;
    for (i, rule) in rules.iter().enumerate() {
        let mut reasons = Vec::new();
        let matched = match &rule.condition {
            None => {
                reasons.push("no condition: always matches".to_owned());
                true
            }
            Some(c) => evaluate(c, offer, member, &mut reasons),
        };
        if !member.known && matched {
            reasons.push("(the member is not known to routing yet: only offer conditions could hold)".to_owned());
        }
        let skipped = if !matched {
            None
        } else if tried.contains(&rule.provider_code) {
            Some(format!("provider {} was already tried for this request", rule.provider_code))
        } else if let Some(c) = &choice {
            Some(match c {
                Choice::Rule { position, .. } => format!("rule {position} matched first"),
                _ => "an earlier rule matched first".to_owned(),
            })
        } else {
            choice =
                Some(Choice::Rule { rule_id: rule.id, position: i + 1, provider_code: rule.provider_code.clone() });
            None
        };
        traces.push(Trace {
            rule_id: rule.id,
            position: i + 1,
            name: rule.name.clone(),
            provider_code: rule.provider_code.clone(),
            matched,
            reasons,
            skipped,
        });
    }
    let (choice, summary) = match choice {
        Some(c @ Choice::Rule { .. }) => {
            let summary = match &c {
                Choice::Rule { position, provider_code, .. } => {
                    let name = traces.get(position - 1).map(|t| t.name.as_str()).unwrap_or_default();
                    format!("règle {position} « {name} » retenue : partenaire {provider_code}")
                }
                _ => String::new(),
            };
            (c, summary)
        }
        _ if !offer.provider_code.is_empty()
            && is_valid_subject_token(&offer.provider_code)
            && !tried.contains(&offer.provider_code) =>
        {
            // The provider by its code (readers show its name), never the offer's code: people read this.
            let summary = format!(
                "aucune règle n'a choisi de partenaire : {}, partenaire par défaut de l'offre",
                offer.provider_code
            );
            (Choice::OfferDefault { provider_code: offer.provider_code.clone() }, summary)
        }
        _ => {
            let summary = if tried.is_empty() {
                "aucune règle ne s'applique et l'offre n'a pas de partenaire utilisable : à orienter par la coordination"
                    .to_owned()
            } else {
                format!(
                    "tous les partenaires possibles ont été sollicités ({}) : à orienter par la coordination",
                    tried.join(", ")
                )
            };
            (Choice::Triage, summary)
        }
    };
    Routing { traces, choice, summary }
}

/// Applies an edit to a rule set, keeping ids; the caller validates the result.
pub mod edit {
    use super::Rule;
    use uuid::Uuid;

    /// Inserts at 1-based `position` (0 or past the end: appended).
    pub fn insert(rules: &[Rule], rule: Rule, position: usize) -> Vec<Rule> {
        let mut out = rules.to_vec();
        let at = if position == 0 { out.len() } else { (position - 1).min(out.len()) };
        out.insert(at, rule);
        out
    }

    /// Replaces the rule with `rule.id`; `None` when there is none.
    pub fn replace(rules: &[Rule], rule: Rule) -> Option<Vec<Rule>> {
        let i = rules.iter().position(|r| r.id == rule.id)?;
        let mut out = rules.to_vec();
        out[i] = rule;
        Some(out)
    }

    pub fn remove(rules: &[Rule], id: Uuid) -> Option<Vec<Rule>> {
        let i = rules.iter().position(|r| r.id == id)?;
        let mut out = rules.to_vec();
        out.remove(i);
        Some(out)
    }

    /// Reorders: `ids` must name every rule exactly once.
    pub fn reorder(rules: &[Rule], ids: &[Uuid]) -> Result<Vec<Rule>, String> {
        if ids.len() != rules.len() {
            return Err(format!("must list all {} rules, got {}", rules.len(), ids.len()));
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let rule = rules.iter().find(|r| r.id == *id).ok_or_else(|| format!("names an unknown rule {id}"))?;
            if out.iter().any(|r: &Rule| r.id == *id) {
                return Err(format!("names rule {id} twice"));
            }
            out.push(rule.clone());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(json: &str) -> Condition {
        match parse_condition(json) {
            Ok(Some(c)) => c,
            other => panic!("{json}: {other:?}"),
        }
    }

    fn rule(n: u128, provider: &str, condition: Option<&str>) -> Rule {
        Rule {
            id: Uuid::from_u128(n),
            name: format!("rule {n}"),
            condition: condition.map(c),
            provider_code: provider.to_owned(),
        }
    }

    fn meaux() -> MemberFacts {
        MemberFacts {
            known: true,
            kind: Some(MemberKind::Commune),
            population: 56_905,
            insee_code: "77284".into(),
            epci_siren: "200072130".into(),
            arrondissement: "771".into(),
        }
    }

    fn village() -> MemberFacts {
        MemberFacts {
            known: true,
            kind: Some(MemberKind::Commune),
            population: 800,
            insee_code: "77001".into(),
            epci_siren: "247700123".into(),
            arrondissement: "773".into(),
        }
    }

    fn voirie() -> OfferFacts {
        OfferFacts { code: "voirie-diag".into(), themes: vec!["voirie".into()], provider_code: "dir-routes".into() }
    }

    #[test]
    fn conditions_evaluate_as_a_table() {
        let table: &[(&str, &MemberFacts, bool)] = &[
            (r#"{"theme":["voirie","eau"]}"#, &meaux(), true),
            (r#"{"theme":["culture"]}"#, &meaux(), false),
            (r#"{"offer":["voirie-diag"]}"#, &meaux(), true),
            (r#"{"arrondissement":["771"]}"#, &meaux(), true),
            (r#"{"arrondissement":["771"]}"#, &village(), false),
            (r#"{"epci":["200072130"]}"#, &meaux(), true),
            (r#"{"commune":["77001","77002"]}"#, &village(), true),
            (r#"{"commune":["77001"]}"#, &meaux(), false),
            (r#"{"kind":["epci","syndicat"]}"#, &meaux(), false),
            (r#"{"kind":["commune"]}"#, &meaux(), true),
            (r#"{"population":{"max":2000}}"#, &village(), true),
            (r#"{"population":{"max":2000}}"#, &meaux(), false),
            (r#"{"population":{"min":800,"max":800}}"#, &village(), true),
            (r#"{"all":[{"theme":["voirie"]},{"population":{"max":2000}}]}"#, &village(), true),
            (r#"{"all":[{"theme":["voirie"]},{"population":{"max":2000}}]}"#, &meaux(), false),
            (r#"{"any":[{"arrondissement":["772"]},{"epci":["200072130"]}]}"#, &meaux(), true),
            (r#"{"any":[]}"#, &meaux(), false),
            (r#"{"all":[]}"#, &meaux(), true),
            (r#"{"arrondissement":["771"]}"#, &MemberFacts::default(), false),
            (r#"{"population":{"min":0}}"#, &MemberFacts::default(), false),
        ];
        for (json, member, want) in table {
            let mut reasons = Vec::new();
            assert_eq!(evaluate(&c(json), &voirie(), member, &mut reasons), *want, "{json} for {member:?}");
            assert!(!reasons.is_empty(), "{json}: no explanation");
        }
    }

    #[test]
    fn explanations_say_why() {
        let mut reasons = Vec::new();
        evaluate(&c(r#"{"all":[{"arrondissement":["772"]},{"theme":["voirie"]}]}"#), &voirie(), &meaux(), &mut reasons);
        assert_eq!(
            reasons,
            vec![
                "member arrondissement 771 is not one of [772]".to_owned(),
                "offer themes [voirie] include one of [voirie]".to_owned()
            ]
        );
    }

    #[test]
    fn the_first_matching_rule_wins_then_the_default_then_triage() {
        let rules = vec![
            rule(1, "caue77", Some(r#"{"theme":["patrimoine"]}"#)),
            rule(2, "agence-sud", Some(r#"{"arrondissement":["773"]}"#)),
            rule(3, "agence-nord", Some(r#"{"any":[{"arrondissement":["771"]},{"arrondissement":["773"]}]}"#)),
        ];
        // (member, tried, expected provider or None for triage, expected outcome)
        let table: &[(MemberFacts, &[&str], Option<&str>, &str)] = &[
            (village(), &[], Some("agence-sud"), "rule"),
            (meaux(), &[], Some("agence-nord"), "rule"),
            (village(), &["agence-sud"], Some("agence-nord"), "rule"),
            (village(), &["agence-sud", "agence-nord"], Some("dir-routes"), "offer_default"),
            (village(), &["agence-sud", "agence-nord", "dir-routes"], None, "triage"),
            (MemberFacts::default(), &[], Some("dir-routes"), "offer_default"),
        ];
        for (member, tried, want, outcome) in table {
            let tried: Vec<String> = tried.iter().map(|s| s.to_string()).collect();
            let routing = route(&rules, &voirie(), member, &tried);
            assert_eq!(routing.choice.provider_code(), *want, "{member:?} {tried:?}");
            assert_eq!(routing.choice.outcome(), *outcome);
            assert_eq!(routing.traces.len(), 3, "every rule is explained");
        }
        let routing = route(&rules, &voirie(), &village(), &[]);
        assert_eq!(routing.choice.rule_id(), Some(Uuid::from_u128(2)));
        assert!(!routing.traces[0].matched);
        assert_eq!(routing.traces[2].skipped.as_deref(), Some("rule 2 matched first"));
        assert_eq!(routing.summary, "règle 2 « rule 2 » retenue : partenaire agence-sud");
        let no_default = OfferFacts { provider_code: String::new(), ..voirie() };
        assert_eq!(route(&[], &no_default, &meaux(), &[]).choice, Choice::Triage);
    }

    #[test]
    fn summaries_are_french() {
        let offer = voirie();
        let default = route(&[], &offer, &meaux(), &[]).summary;
        assert_eq!(default, "aucune règle n'a choisi de partenaire : dir-routes, partenaire par défaut de l'offre");
        assert!(!default.contains(&offer.code), "no offer code where people read");
        let tried = ["dir-routes".to_owned()];
        assert_eq!(
            route(&[], &offer, &meaux(), &tried).summary,
            "tous les partenaires possibles ont été sollicités (dir-routes) : à orienter par la coordination"
        );
        let no_default = OfferFacts { provider_code: String::new(), ..voirie() };
        assert_eq!(
            route(&[], &no_default, &meaux(), &[]).summary,
            "aucune règle ne s'applique et l'offre n'a pas de partenaire utilisable : à orienter par la coordination"
        );
    }

    #[test]
    fn rule_sets_are_validated() {
        let known = |p: &str| ["caue77", "dir-routes"].contains(&p);
        let ok = vec![rule(1, "caue77", Some(r#"{"theme":["patrimoine"]}"#)), rule(2, "dir-routes", None)];
        assert_eq!(validate(&ok, known), Ok(()));
        let table: &[(Vec<Rule>, &str)] = &[
            (vec![rule(1, "nobody", None)], "unknown provider"),
            (vec![rule(1, "CAUE", None)], "not a provider code"),
            (vec![rule(1, "caue77", None), rule(2, "dir-routes", Some(r#"{"theme":["x"]}"#))], "matches everything"),
            (vec![rule(1, "caue77", Some(r#"{"all":[]}"#)), rule(2, "dir-routes", None)], "matches everything"),
            (
                vec![
                    rule(1, "caue77", Some(r#"{"theme":["a","b"]}"#)),
                    rule(2, "dir-routes", Some(r#"{"theme":["b","a","a"]}"#)),
                ],
                "same condition",
            ),
            (
                vec![
                    rule(1, "caue77", Some(r#"{"any":[{"theme":["a"]}]}"#)),
                    rule(2, "dir-routes", Some(r#"{"theme":["a"]}"#)),
                ],
                "same condition",
            ),
            (vec![rule(1, "caue77", Some(r#"{"epci":["12"]}"#))], "SIREN"),
            (vec![rule(1, "caue77", Some(r#"{"commune":[]}"#))], "at least one"),
            (vec![rule(1, "caue77", Some(r#"{"population":{"min":10,"max":1}}"#))], "min > max"),
            (vec![rule(1, "caue77", Some(r#"{"population":{}}"#))], "min or max"),
            (
                vec![rule(1, "caue77", Some(r#"{"all":[{"all":[{"all":[{"all":[{"all":[{"theme":["a"]}]}]}]}]}]}"#))],
                "deeper",
            ),
            (vec![Rule { name: " ".into(), ..rule(1, "caue77", None) }], "name"),
            (
                vec![rule(1, "caue77", Some(r#"{"theme":["a"]}"#)), rule(1, "caue77", Some(r#"{"theme":["b"]}"#))],
                "twice",
            ),
        ];
        for (rules, expected) in table {
            let error = validate(rules, known).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(expected), "{expected:?} not in {error:?}");
        }
    }

    #[test]
    fn conditions_parse_strictly_and_round_trip() {
        assert_eq!(parse_condition(""), Ok(None));
        assert_eq!(parse_condition("null"), Ok(None));
        for bad in [
            r#"{"colour":["red"]}"#,
            r#"{"theme":"voirie"}"#,
            "[",
            r#"{"kind":["region"]}"#,
            r#"{"theme":["a"],"offer":["b"]}"#,
        ] {
            assert!(parse_condition(bad).is_err(), "{bad}");
        }
        let json = r#"{"all":[{"kind":["commune"]},{"population":{"max":2000}}]}"#;
        assert_eq!(condition_json(Some(&c(json))), json);
        assert_eq!(condition_json(None), "");
        assert!(parse_condition(&format!(r#"{{"theme":["{}"]}}"#, "a".repeat(MAX_CONDITION_BYTES))).is_err());
    }

    #[test]
    fn edits_keep_ids_and_order() {
        let rules = vec![rule(1, "a", None), rule(2, "b", None)];
        let inserted = edit::insert(&rules, rule(3, "c", None), 1);
        assert_eq!(inserted.iter().map(|r| r.id.as_u128()).collect::<Vec<_>>(), vec![3, 1, 2]);
        assert_eq!(edit::insert(&rules, rule(3, "c", None), 0).len(), 3);
        assert_eq!(edit::insert(&rules, rule(3, "c", None), 99)[2].id, Uuid::from_u128(3));
        let ids = [Uuid::from_u128(2), Uuid::from_u128(1)];
        assert_eq!(edit::reorder(&rules, &ids).map(|r| r[0].id), Ok(Uuid::from_u128(2)));
        assert!(edit::reorder(&rules, &ids[..1]).is_err());
        assert!(edit::reorder(&rules, &[Uuid::from_u128(1), Uuid::from_u128(1)]).is_err());
        assert!(edit::remove(&rules, Uuid::from_u128(9)).is_none());
        assert_eq!(edit::replace(&rules, rule(2, "z", None)).map(|r| r[1].provider_code.clone()).as_deref(), Some("z"));
    }
}
