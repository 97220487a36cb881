//! Routing as JSON: referrals (with the agreement on their quote), routing rules and rule sets, the
//! explanation of a request's routing, and bulk reassignment results.

use id77_proto::routing::v1 as routing;
use serde::Serialize;
use utoipa::ToSchema;

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

/// The state of a referral (documentation of [`referral_status`]).
#[derive(ToSchema)]
#[schema(as = ReferralStatus, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ReferralStatusDoc {
    Offered,
    Accepted,
    Declined,
    Expired,
    Withdrawn,
}

/// Whether the provider may work on an accepted referral: `not_required` (free offer, or not accepted yet),
/// `awaiting_member` (a billed offer whose quote a member admin has not accepted yet: progress and completion
/// answer 409 `quote-not-accepted`), `agreed` (the member accepted the quote).
#[derive(ToSchema)]
#[schema(as = QuoteAgreement, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum QuoteAgreementDoc {
    NotRequired,
    AwaitingMember,
    Agreed,
}

/// How a request was routed (documentation of [`RoutingExplanation::outcome`]).
#[derive(ToSchema)]
#[schema(as = RoutingOutcome, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum OutcomeDoc {
    /// A rule chose the provider.
    Rule,
    /// No rule matched: the offer's default provider.
    OfferDefault,
    /// No provider: the coordinator's triage queue.
    Triage,
    /// The coordinator chose by hand.
    Manual,
}

/// A request handed to a provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct Referral {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub request_id: String,
    pub offer_id: String,
    #[schema(format = "uuid")]
    pub member_id: String,
    pub provider_code: String,
    #[schema(value_type = ReferralStatusDoc)]
    pub status: &'static str,
    /// The provider's reason, when it gave one.
    #[schema(required = true)]
    pub reason: Option<String>,
    /// How the provider was chosen: `auto (rule set vN): rule ...`, `auto: ... default provider ...`,
    /// `auto: re-routed: ...` or `manual: ...`.
    #[schema(required = true)]
    pub assignment: Option<String>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(required = true, format = DateTime)]
    pub offered_at: Option<String>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(required = true, format = DateTime)]
    pub decided_at: Option<String>,
    /// 1 for the first referral of a request, then one more per re-routing or reassignment.
    pub attempt: i32,
    /// The routing rule that chose the provider.
    #[schema(required = true)]
    pub rule_id: Option<String>,
    /// The rule set version that rule belonged to.
    #[schema(required = true)]
    pub rule_version: Option<i32>,
    /// The provider's deadline (SLA in business days).
    #[schema(required = true, format = DateTime)]
    pub respond_by: Option<String>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(required = true, format = DateTime)]
    pub remind_at: Option<String>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(required = true, format = DateTime)]
    pub escalated_at: Option<String>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(required = true, format = DateTime)]
    pub expires_at: Option<String>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(required = true, format = DateTime)]
    pub completed_at: Option<String>,
    /// The provider's last progress note.
    #[schema(required = true)]
    pub progress: Option<String>,
    /// Whether the provider may work on it: `not_required`, `awaiting_member` (progress and completion answer
    /// 409 `quote-not-accepted`), `agreed`.
    #[schema(value_type = QuoteAgreementDoc)]
    pub agreement: &'static str,
    /// The display name of who accepted, declined or withdrew it; null for routing's own decisions.
    #[schema(required = true)]
    pub decided_by_name: Option<String>,
    /// The role it acted in: provider_agent, provider_consumer (a reply on the provider's NATS subject),
    /// coordinator, member_admin, member_user; null for routing's own decisions.
    #[schema(required = true)]
    pub decided_by_role: Option<String>,
    /// The collectivité's name; null when routing does not know it (a member approved before it kept names).
    #[schema(required = true, examples("Commune de Meaux"))]
    pub member_name: Option<String>,
    /// The offer's title; null when unknown.
    #[schema(required = true)]
    pub offer_title: Option<String>,
    /// The provider's name; null when unknown.
    #[schema(required = true)]
    pub provider_name: Option<String>,
    /// The member's user who submitted the request (the provider's contact); null when unknown.
    #[schema(required = true)]
    pub requester_name: Option<String>,
    /// That user's e-mail address; null when unknown.
    #[schema(required = true, format = Email)]
    pub requester_email: Option<String>,
    /// The request's subject; null when unknown.
    #[schema(required = true)]
    pub request_subject: Option<String>,
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
            member_name: non_empty(r.member_name),
            offer_title: non_empty(r.offer_title),
            provider_name: non_empty(r.provider_name),
            requester_name: non_empty(r.requester_name),
            requester_email: non_empty(r.requester_email),
            request_subject: non_empty(r.request_subject),
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

/// One rule of the rule set: the first rule whose condition holds chooses the provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingRule {
    #[schema(format = "uuid")]
    pub id: String,
    /// 1-based.
    pub position: u32,
    pub name: String,
    /// `null`: always matches.
    #[schema(value_type = RoutingConditionDoc)]
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

/// The ordered routing rules, as one version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleSet {
    /// 0 before the first edit; +1 on every edit.
    pub version: i32,
    pub rules: Vec<RoutingRule>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(required = true, format = DateTime)]
    pub created_at: Option<String>,
    /// Who made this version.
    #[schema(required = true)]
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

/// One rule as tried for a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RuleTrace {
    pub rule_id: String,
    pub position: u32,
    pub name: String,
    pub provider_code: String,
    pub matched: bool,
    /// One line per condition evaluated, e.g. `member arrondissement 771 is one of [771]`.
    pub reasons: Vec<String>,
    /// Matched but not chosen, and why.
    #[schema(required = true)]
    pub skipped: Option<String>,
}

/// Why a request went where it went.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoutingExplanation {
    pub request_id: String,
    pub member_id: String,
    pub offer_id: String,
    pub rule_version: i32,
    /// What routing knew of the request and its member.
    pub facts: Vec<String>,
    pub rules: Vec<RuleTrace>,
    /// `rule`, `offer_default`, `triage` or `manual`.
    #[schema(value_type = OutcomeDoc)]
    pub outcome: String,
    #[schema(required = true)]
    pub provider_code: Option<String>,
    #[schema(required = true)]
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

/// The result of one referral of a bulk reassignment: the new referral, or why not.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkReassignResult {
    pub referral_id: String,
    #[schema(required = true)]
    pub referral: Option<Referral>,
    #[schema(required = true)]
    pub error: Option<String>,
}

/// A provider's response deadline.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderSla {
    pub provider_code: String,
    /// Business days (weekends and French public holidays excluded), 1 to 60.
    #[schema(minimum = 1, maximum = 60)]
    pub business_days: u32,
}

impl From<routing::ProviderSla> for ProviderSla {
    fn from(s: routing::ProviderSla) -> Self {
        Self { provider_code: s.provider_code, business_days: s.business_days }
    }
}

/// A routing condition (documentation of [`RoutingRule::condition`], whose JSON routing checks).
pub struct RoutingConditionDoc;

impl ToSchema for RoutingConditionDoc {
    fn name() -> std::borrow::Cow<'static, str> {
        "RoutingCondition".into()
    }
}

impl utoipa::PartialSchema for RoutingConditionDoc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
        use utoipa::openapi::{Ref, RefOr};
        let strings = |pattern: Option<&str>| {
            let item = ObjectBuilder::new().schema_type(Type::String).pattern(pattern);
            ArrayBuilder::new().items(item).min_items(Some(1))
        };
        let nested = || ArrayBuilder::new().items(Ref::from_schema_name("RoutingCondition")).min_items(Some(1));
        let kinds = ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["commune", "epci", "syndicat"]));
        let population = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("min", ObjectBuilder::new().schema_type(Type::Integer))
            .property("max", ObjectBuilder::new().schema_type(Type::Integer));
        let one_key = ObjectBuilder::new()
            .schema_type(Type::Object)
            .min_properties(Some(1))
            .max_properties(Some(1))
            .property("theme", strings(None))
            .property("offer", strings(None))
            .property("arrondissement", strings(None))
            .property("epci", strings(Some("^[0-9]{9}$")))
            .property("commune", strings(Some("^[0-9AB]{5}$")))
            .property("kind", ArrayBuilder::new().items(kinds).min_items(Some(1)))
            .property("population", population)
            .property("all", nested())
            .property("any", nested());
        let schema = OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .item(one_key)
            .description(Some(
                "A condition (null: always). Exactly one key: `theme`, `offer` (offer codes), `arrondissement`, \
                 `epci` (SIREN), `commune` (INSEE codes), `kind` (commune/epci/syndicat): non-empty lists, any \
                 value matches; `population`: {min, max} inclusive; `all` / `any`: lists of conditions (at most \
                 4 levels).",
            ))
            .examples([serde_json::json!({"all": [{"theme": ["voirie"]}, {"arrondissement": ["771"]}]})]);
        RefOr::T(schema.into())
    }
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
