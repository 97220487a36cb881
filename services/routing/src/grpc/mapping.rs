//! Protobuf <-> routing: requests' fields parsed and validated into the flows' input, rows and outcomes into
//! messages. No I/O.

use id77_platform::ServiceError;
use id77_platform::auth::Caller;
use id77_platform::streams::is_valid_subject_token;
use id77_platform::time;
use id77_proto::routing::v1 as pb;
use uuid::Uuid;

use crate::domain::rules::{self, Rule, Trace};
use crate::domain::{self, Actor, Agreement, ReferralStatus, Reply, WireDecision};
use crate::error::RoutingError;
use crate::flow::explanation::Explanation;
use crate::flow::replies::{MAX_PROGRESS_CHARS, ReplyOutcome};
use crate::store::{ReferralRow, RuleSetRow, TriageRow};

pub fn parse_id(field: &str, raw: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw.trim()).map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

/// An optional id: empty for none.
pub fn optional_id(field: &str, raw: &str) -> Result<Option<Uuid>, ServiceError> {
    match raw.trim() {
        "" => Ok(None),
        raw => parse_id(field, raw).map(Some),
    }
}

/// An optional provider code: empty for none.
pub fn optional_provider(raw: &str) -> Result<Option<&str>, ServiceError> {
    match raw {
        "" => Ok(None),
        code if is_valid_subject_token(code) => Ok(Some(code)),
        _ => Err(ServiceError::invalid("provider_code", "is not a provider code")),
    }
}

/// The provider and the coordinator's reason of a reassignment.
pub fn provider_and_note(provider_code: &str, reason: &str) -> Result<(String, String), ServiceError> {
    let provider_code = provider_code.trim();
    if !is_valid_subject_token(provider_code) {
        return Err(ServiceError::invalid("provider_code", "is not a provider code"));
    }
    let note = domain::note(reason).map_err(|e| ServiceError::invalid("reason", e))?;
    Ok((provider_code.to_owned(), note))
}

/// The coordinator acting through the API, named by its token.
pub fn coordinator(caller: &Caller) -> Actor {
    Actor::person(caller.user_id, "coordinator", caller.display_name())
}

/// A provider's agent answering through the API (the portal), named by its token.
pub fn provider_agent(caller: &Caller) -> Actor {
    Actor::person(caller.user_id, "provider_agent", caller.display_name())
}

fn status_to_proto(status: &str) -> pb::ReferralStatus {
    match ReferralStatus::parse(status) {
        Some(ReferralStatus::Offered) => pb::ReferralStatus::Offered,
        Some(ReferralStatus::Accepted) => pb::ReferralStatus::Accepted,
        Some(ReferralStatus::Declined) => pb::ReferralStatus::Declined,
        Some(ReferralStatus::Expired) => pb::ReferralStatus::Expired,
        Some(ReferralStatus::Withdrawn) => pb::ReferralStatus::Withdrawn,
        None => pb::ReferralStatus::Unspecified,
    }
}

fn agreement_to_proto(agreement: &str) -> pb::QuoteAgreement {
    match Agreement::parse(agreement) {
        Some(Agreement::NotRequired) => pb::QuoteAgreement::NotRequired,
        Some(Agreement::AwaitingMember) => pb::QuoteAgreement::AwaitingMember,
        Some(Agreement::Agreed) => pb::QuoteAgreement::Agreed,
        None => pb::QuoteAgreement::Unspecified,
    }
}

pub fn referral_to_proto(r: ReferralRow) -> pb::Referral {
    pb::Referral {
        id: r.id.to_string(),
        request_id: r.request_id.to_string(),
        offer_id: r.offer_id.to_string(),
        member_id: r.member_id.to_string(),
        status: status_to_proto(&r.status).into(),
        provider_code: r.provider_code,
        reason: r.reason,
        assignment: r.assignment,
        offered_at: Some(time::to_proto(r.offered_at)),
        decided_at: time::to_proto_opt(r.decided_at),
        rule_id: r.rule_id.map(|id| id.to_string()).unwrap_or_default(),
        rule_version: r.rule_version.unwrap_or(0),
        attempt: r.attempt,
        respond_by: time::to_proto_opt(r.respond_by),
        remind_at: time::to_proto_opt(r.remind_at),
        escalated_at: time::to_proto_opt(r.escalated_at),
        expires_at: time::to_proto_opt(r.expires_at),
        completed_at: time::to_proto_opt(r.completed_at),
        progress: r.progress,
        agreement: agreement_to_proto(&r.agreement).into(),
        decided_by_user_id: r.decided_by_user_id.map(|id| id.to_string()).unwrap_or_default(),
        decided_by_role: r.decided_by_role,
        decided_by_name: r.decided_by_name,
        ..Default::default()
    }
}

/// A referral with the names routing knows for it (`names`: those of a page; a referral without any keeps empty
/// names).
pub fn named(mut referral: pb::Referral, names: &[crate::store_names::ReferralNames]) -> pb::Referral {
    if let Some(n) = names.iter().find(|n| n.referral_id.to_string() == referral.id) {
        referral.member_name.clone_from(&n.member_name);
        referral.offer_title.clone_from(&n.offer_title);
        referral.provider_name.clone_from(&n.provider_name);
        referral.requester_name.clone_from(&n.requester_name);
        referral.requester_email.clone_from(&n.requester_email);
        referral.request_subject.clone_from(&n.request_subject);
    }
    referral
}

fn rule_to_proto(position: usize, rule: &Rule) -> pb::RoutingRule {
    pb::RoutingRule {
        id: rule.id.to_string(),
        position: u32::try_from(position).unwrap_or(u32::MAX),
        name: rule.name.clone(),
        condition_json: rules::condition_json(rule.condition.as_ref()),
        provider_code: rule.provider_code.clone(),
    }
}

pub fn rule_set_to_proto(set: &RuleSetRow) -> pb::RuleSet {
    pb::RuleSet {
        version: set.version,
        rules: set.rules.iter().enumerate().map(|(i, r)| rule_to_proto(i + 1, r)).collect(),
        created_at: time::to_proto_opt(set.created_at),
        created_by: set.created_by.map(|u| u.to_string()).unwrap_or_default(),
    }
}

/// A rule from its input, validated field by field (the rule set as a whole is validated after the edit).
pub fn rule_from_input(id: Uuid, input: Option<pb::RuleInput>) -> Result<Rule, ServiceError> {
    let input = input.ok_or_else(|| ServiceError::invalid("rule", "is required"))?;
    let condition =
        rules::parse_condition(&input.condition_json).map_err(|e| ServiceError::invalid("rule.condition", &e))?;
    Ok(Rule { id, name: input.name.trim().to_owned(), condition, provider_code: input.provider_code.trim().to_owned() })
}

pub fn triage_item_to_proto(r: TriageRow) -> pb::TriageItem {
    pb::TriageItem {
        request_id: r.request_id.to_string(),
        member_id: r.member_id.to_string(),
        subject: r.subject,
        description: r.description,
        offer_id: r.offer_id.map(|id| id.to_string()).unwrap_or_default(),
        reason: r.reason,
        received_at: Some(time::to_proto(r.received_at)),
    }
}

fn trace_to_proto(t: Trace) -> pb::RuleTrace {
    pb::RuleTrace {
        rule_id: t.rule_id.to_string(),
        position: u32::try_from(t.position).unwrap_or(u32::MAX),
        name: t.name,
        provider_code: t.provider_code,
        matched: t.matched,
        reasons: t.reasons,
        skipped: t.skipped.unwrap_or_default(),
    }
}

pub fn explanation_to_proto(e: Explanation) -> pb::RoutingExplanation {
    pb::RoutingExplanation {
        request_id: e.request.request_id.to_string(),
        member_id: e.request.member_id.to_string(),
        offer_id: e.request.offer_id.to_string(),
        rule_version: e.rule_version,
        facts: e.explained.facts,
        rules: e.explained.traces.into_iter().map(trace_to_proto).collect(),
        outcome: e.explained.outcome.to_owned(),
        provider_code: e.explained.provider_code,
        chosen_rule_id: e.explained.chosen_rule_id.map(|id| id.to_string()).unwrap_or_default(),
        summary: e.explained.summary,
        referrals: e.referrals.into_iter().map(referral_to_proto).collect(),
    }
}

/// A provider agent's reply, validated.
pub fn reply_from_proto(req: &pb::ReplyToReferralRequest) -> Result<Reply, ServiceError> {
    let decision = match pb::ReplyDecision::try_from(req.decision) {
        Ok(pb::ReplyDecision::Accept) => WireDecision::Accept,
        Ok(pb::ReplyDecision::Decline) => WireDecision::Decline,
        Ok(pb::ReplyDecision::Complete) => WireDecision::Complete,
        Ok(pb::ReplyDecision::Unspecified) | Err(_) => WireDecision::Unspecified,
    };
    Reply::parse(decision, &req.reason, req.amount_cents, &req.quote_note)
        .map_err(|e| ServiceError::invalid(e.field, e.message))
}

/// A provider agent's progress note, validated (the report numbers itself).
pub fn progress_note(req: &pb::ReportReferralProgressRequest) -> Result<&str, ServiceError> {
    let note = req.note.trim();
    if note.is_empty() {
        return Err(ServiceError::invalid("note", "is required"));
    }
    if note.chars().count() > MAX_PROGRESS_CHARS {
        return Err(ServiceError::invalid("note", "must be at most 2000 characters"));
    }
    if req.percent > 100 {
        return Err(ServiceError::invalid("percent", "must be between 0 and 100"));
    }
    Ok(note)
}

/// What the agent is answered: the referral as it now is, or why nothing was written.
pub fn outcome_to_proto(outcome: ReplyOutcome) -> Result<pb::Referral, ServiceError> {
    match outcome {
        ReplyOutcome::Applied(row) => Ok(referral_to_proto(*row)),
        ReplyOutcome::Ignored(why) => Err(RoutingError::ReferralState(why).into()),
        ReplyOutcome::Refused(error) => Err(ServiceError::invalid(error.field, error.message)),
        ReplyOutcome::Blocked { refusal, message } => Err(RoutingError::WorkRefused { refusal, message }.into()),
    }
}

/// A provider code named by a request: a subject token (lowercase letters, digits, `-`; at most 64).
pub fn provider_code(raw: &str) -> Result<&str, ServiceError> {
    if is_valid_subject_token(raw) {
        Ok(raw)
    } else {
        Err(ServiceError::invalid("provider_code", "is not a provider code"))
    }
}

/// A provider's deadline as stored (1 to 60 business days).
pub fn sla_to_proto(provider_code: &str, business_days: i32) -> pb::ProviderSla {
    pb::ProviderSla {
        provider_code: provider_code.to_owned(),
        business_days: u32::try_from(business_days).unwrap_or_default(),
    }
}
