//! Why a request went where it went (ExplainRouting), free of I/O: the facts the rules saw, every rule's trace and
//! the outcome, reproduced with the rule set the latest referral was routed with and the providers tried before
//! it. A referral the coordinator placed by hand is explained as such.

use uuid::Uuid;

use super::ReferralStatus;
use super::rules::{self, MemberFacts, OfferFacts, Rule, Trace};

/// How the assignment of a referral placed by hand begins (reassignment, triage).
pub const MANUAL: &str = "Orientation manuelle :";

/// How it began before the assignments were written in French (rows stored then).
pub const LEGACY_MANUAL: &str = "manual:";

/// Whether an assignment was made by hand (in either wording).
pub fn is_manual(assignment: &str) -> bool {
    assignment.starts_with(MANUAL) || assignment.starts_with(LEGACY_MANUAL)
}

/// A referral of the request as the explanation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt<'a> {
    pub provider_code: &'a str,
    /// `None` for a status this build does not know.
    pub status: Option<ReferralStatus>,
    /// How it was decided (`auto ...`, `manual: ...`).
    pub assignment: &'a str,
}

/// The explanation of a request's routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    /// What the rules saw, one `name=value` a line.
    pub facts: Vec<String>,
    /// Every rule, in order.
    pub traces: Vec<Trace>,
    /// `rule`, `offer_default`, `triage`, or `manual`.
    pub outcome: &'static str,
    /// Empty for the triage queue.
    pub provider_code: String,
    /// The rule that chose the provider (none for a placement by hand).
    pub chosen_rule_id: Option<Uuid>,
    pub summary: String,
}

/// The providers tried before the latest referral's routing: all of them when it was declined or expired (its
/// re-routing skipped them all), else those of the referrals before it.
pub fn tried_before(attempts: &[Attempt<'_>]) -> Vec<String> {
    let Some((latest, earlier)) = attempts.split_last() else {
        return Vec::new();
    };
    let tried = if matches!(latest.status, Some(ReferralStatus::Declined | ReferralStatus::Expired)) {
        attempts
    } else {
        earlier
    };
    tried.iter().map(|a| a.provider_code.to_owned()).collect()
}

/// The facts a rule can see, as the explanation lists them.
pub fn facts(offer: &OfferFacts, member: &MemberFacts) -> Vec<String> {
    let mut facts = vec![format!("offer={}", offer.code)];
    facts.extend(offer.themes.iter().map(|t| format!("theme={t}")));
    if member.known {
        facts.push(format!("kind={}", member.kind.map_or("unknown", |k| k.as_str())));
        facts.push(format!("population={}", member.population));
        facts.push(format!("commune={}", member.insee_code));
        facts.push(format!("epci={}", member.epci_siren));
        facts.push(format!("arrondissement={}", member.arrondissement));
    } else {
        facts.push("member=unknown to routing".to_owned());
    }
    facts
}

/// Explains the routing of a request with `rules` (those of its latest referral's routing), its offer's and
/// member's facts, and its referrals, first attempt first.
pub fn explain(rules: &[Rule], offer: &OfferFacts, member: &MemberFacts, attempts: &[Attempt<'_>]) -> Explained {
    let routing = rules::route(rules, offer, member, &tried_before(attempts));
    let facts = facts(offer, member);
    match attempts.last().filter(|latest| is_manual(latest.assignment)) {
        Some(manual) => Explained {
            facts,
            traces: routing.traces,
            outcome: "manual",
            provider_code: manual.provider_code.to_owned(),
            chosen_rule_id: None,
            summary: manual.assignment.to_owned(),
        },
        None => Explained {
            facts,
            outcome: routing.choice.outcome(),
            provider_code: routing.choice.provider_code().unwrap_or_default().to_owned(),
            chosen_rule_id: routing.choice.rule_id(),
            summary: routing.summary,
            traces: routing.traces,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt<'a>(provider_code: &'a str, status: ReferralStatus, assignment: &'a str) -> Attempt<'a> {
        Attempt { provider_code, status: Some(status), assignment }
    }

    #[test]
    fn the_providers_tried_are_those_the_latest_routing_skipped() {
        assert!(tried_before(&[]).is_empty());
        let declined = [attempt("a", ReferralStatus::Declined, "auto"), attempt("b", ReferralStatus::Offered, "auto")];
        assert_eq!(tried_before(&declined), ["a"]);
        let expired = [attempt("a", ReferralStatus::Declined, "auto"), attempt("b", ReferralStatus::Expired, "auto")];
        assert_eq!(tried_before(&expired), ["a", "b"]);
    }

    #[test]
    fn a_placement_by_hand_is_explained_as_such() {
        let offer = OfferFacts { code: "voirie".into(), themes: vec!["routes".into()], provider_code: "dir".into() };
        let member = MemberFacts::default();
        let auto = explain(&[], &offer, &member, &[attempt("dir", ReferralStatus::Offered, "auto: x")]);
        assert_eq!((auto.outcome, auto.provider_code.as_str()), ("offer_default", "dir"));
        assert_eq!(auto.facts, ["offer=voirie", "theme=routes", "member=unknown to routing"]);
        let by_hand = "manual: assigned to caue77 by the coordinator";
        let manual = explain(&[], &offer, &member, &[attempt("caue77", ReferralStatus::Offered, by_hand)]);
        assert_eq!(
            (manual.outcome, manual.provider_code.as_str(), manual.summary.as_str()),
            ("manual", "caue77", by_hand)
        );
        assert_eq!(manual.chosen_rule_id, None);
        let in_french = "Orientation manuelle : confiée à caue77 par la coordination";
        let manual = explain(&[], &offer, &member, &[attempt("caue77", ReferralStatus::Offered, in_french)]);
        assert_eq!((manual.outcome, manual.summary.as_str()), ("manual", in_french));
        let auto = "Orientation automatique : aucune règle n'a choisi de partenaire";
        assert_eq!(
            explain(&[], &offer, &member, &[attempt("dir", ReferralStatus::Offered, auto)]).outcome,
            "offer_default"
        );
    }
}
