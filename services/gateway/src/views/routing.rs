//! Routing as JSON: referrals (with the agreement on their quote), routing rules and rule sets, the
//! explanation of a request's routing, and bulk reassignment results.

use id77_proto::routing::v1 as routing;
use serde::Serialize;

use super::common::{UNSPECIFIED, non_empty, timestamp};

pub fn referral_status(status: i32) -> &'static str {
    match routing::ReferralStatus::try_from(status) {
        Ok(routing::ReferralStatus::Offered) => "offered",
        Ok(routing::ReferralStatus::Accepted) => "accepted",
        Ok(routing::ReferralStatus::Declined) => "declined",
        Ok(routing::ReferralStatus::Expired) => "expired",
        Ok(routing::ReferralStatus::Withdrawn) => "withdrawn",
        _ => UNSPECIFIED,
    }
}

/// Whether the provider may work on a referral: `not_required` (free offer, or not accepted yet; also what a
/// referral from before the agreement existed says), `awaiting_member` (a billed offer whose quote no member
/// admin has accepted yet), `agreed`.
pub fn quote_agreement(agreement: i32) -> &'static str {
    match routing::QuoteAgreement::try_from(agreement) {
        Ok(routing::QuoteAgreement::AwaitingMember) => "awaiting_member",
        Ok(routing::QuoteAgreement::Agreed) => "agreed",
        _ => "not_required",
    }
}

#[derive(Debug, Serialize)]
pub struct Referral {
    pub id: String,
    pub request_id: String,
    pub offer_id: String,
    pub member_id: String,
    pub provider_code: String,
    pub status: &'static str,
    pub reason: Option<String>,
    pub assignment: Option<String>,
    pub offered_at: Option<String>,
    pub decided_at: Option<String>,
    /// 1 for the first referral of a request, then one more per re-routing or reassignment.
    pub attempt: i32,
    /// The routing rule (and rule set version) that chose the provider, if a rule did.
    pub rule_id: Option<String>,
    pub rule_version: Option<i32>,
    pub respond_by: Option<String>,
    pub remind_at: Option<String>,
    pub escalated_at: Option<String>,
    pub expires_at: Option<String>,
    pub completed_at: Option<String>,
    pub progress: Option<String>,
    /// Whether the provider may work on it: `not_required`, `awaiting_member` (progress and completion answer
    /// 409 `quote-not-accepted`), `agreed`.
    pub agreement: &'static str,
    /// Who accepted, declined or withdrew it (null for routing itself): display name and role.
    pub decided_by_name: Option<String>,
    pub decided_by_role: Option<String>,
}

impl From<routing::Referral> for Referral {
    fn from(r: routing::Referral) -> Self {
        Self {
            status: referral_status(r.status),
            offered_at: timestamp(r.offered_at.as_ref()),
            decided_at: timestamp(r.decided_at.as_ref()),
            respond_by: timestamp(r.respond_by.as_ref()),
            remind_at: timestamp(r.remind_at.as_ref()),
            escalated_at: timestamp(r.escalated_at.as_ref()),
            expires_at: timestamp(r.expires_at.as_ref()),
            completed_at: timestamp(r.completed_at.as_ref()),
            reason: non_empty(r.reason),
            assignment: non_empty(r.assignment),
            rule_id: non_empty(r.rule_id),
            rule_version: (r.rule_version > 0).then_some(r.rule_version),
            progress: non_empty(r.progress),
            agreement: quote_agreement(r.agreement),
            decided_by_name: non_empty(r.decided_by_name),
            decided_by_role: non_empty(r.decided_by_role),
            attempt: r.attempt,
            id: r.id,
            request_id: r.request_id,
            offer_id: r.offer_id,
            member_id: r.member_id,
            provider_code: r.provider_code,
        }
    }
}

/// A condition as JSON (null: always).
fn condition(json: &str) -> serde_json::Value {
    if json.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(json).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Debug, Serialize)]
pub struct RoutingRule {
    pub id: String,
    pub position: u32,
    pub name: String,
    /// `null`: always matches.
    pub condition: serde_json::Value,
    pub provider_code: String,
}

impl From<routing::RoutingRule> for RoutingRule {
    fn from(r: routing::RoutingRule) -> Self {
        Self {
            condition: condition(&r.condition_json),
            id: r.id,
            position: r.position,
            name: r.name,
            provider_code: r.provider_code,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RuleSet {
    pub version: i32,
    pub rules: Vec<RoutingRule>,
    pub created_at: Option<String>,
    pub created_by: Option<String>,
}

impl From<routing::RuleSet> for RuleSet {
    fn from(s: routing::RuleSet) -> Self {
        Self {
            version: s.version,
            rules: s.rules.into_iter().map(RoutingRule::from).collect(),
            created_at: timestamp(s.created_at.as_ref()),
            created_by: non_empty(s.created_by),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RuleTrace {
    pub rule_id: String,
    pub position: u32,
    pub name: String,
    pub provider_code: String,
    pub matched: bool,
    pub reasons: Vec<String>,
    pub skipped: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RoutingExplanation {
    pub request_id: String,
    pub member_id: String,
    pub offer_id: String,
    pub rule_version: i32,
    pub facts: Vec<String>,
    pub rules: Vec<RuleTrace>,
    /// `rule`, `offer_default`, `triage` or `manual`.
    pub outcome: String,
    pub provider_code: Option<String>,
    pub chosen_rule_id: Option<String>,
    pub summary: String,
    pub referrals: Vec<Referral>,
}

impl From<routing::RoutingExplanation> for RoutingExplanation {
    fn from(e: routing::RoutingExplanation) -> Self {
        Self {
            request_id: e.request_id,
            member_id: e.member_id,
            offer_id: e.offer_id,
            rule_version: e.rule_version,
            facts: e.facts,
            rules: e
                .rules
                .into_iter()
                .map(|t| RuleTrace {
                    rule_id: t.rule_id,
                    position: t.position,
                    name: t.name,
                    provider_code: t.provider_code,
                    matched: t.matched,
                    reasons: t.reasons,
                    skipped: non_empty(t.skipped),
                })
                .collect(),
            outcome: e.outcome,
            provider_code: non_empty(e.provider_code),
            chosen_rule_id: non_empty(e.chosen_rule_id),
            summary: e.summary,
            referrals: e.referrals.into_iter().map(Referral::from).collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct BulkReassignResult {
    pub referral_id: String,
    pub referral: Option<Referral>,
    pub error: Option<String>,
}

impl From<routing::BulkReassignResult> for BulkReassignResult {
    fn from(r: routing::BulkReassignResult) -> Self {
        Self { referral_id: r.referral_id, referral: r.referral.map(Referral::from), error: non_empty(r.error) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_agreements_are_lowercase_strings() {
        let statuses: Vec<_> = (1..=5).map(referral_status).collect();
        assert_eq!(statuses, ["offered", "accepted", "declined", "expired", "withdrawn"]);
        let agreements: Vec<_> = (0..=3).map(quote_agreement).collect();
        assert_eq!(agreements, ["not_required", "not_required", "awaiting_member", "agreed"]);
    }

    #[test]
    fn referrals_say_whether_the_member_agreed_and_who_decided() {
        let referral = Referral::from(routing::Referral {
            status: routing::ReferralStatus::Accepted.into(),
            agreement: routing::QuoteAgreement::AwaitingMember.into(),
            decided_by_user_id: "u2".into(),
            decided_by_role: "provider_agent".into(),
            decided_by_name: "Paul Martin".into(),
            ..Default::default()
        });
        let value = serde_json::to_value(referral).unwrap_or_default();
        assert_eq!(value["agreement"], "awaiting_member");
        assert_eq!(
            (value["decided_by_name"].as_str(), value["decided_by_role"].as_str()),
            (Some("Paul Martin"), Some("provider_agent"))
        );
        let value = serde_json::to_value(Referral::from(routing::Referral::default())).unwrap_or_default();
        assert_eq!((value["agreement"].as_str(), value["decided_by_name"].is_null()), (Some("not_required"), true));
    }
}
