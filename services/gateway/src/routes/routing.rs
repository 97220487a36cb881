//! `/v1/referrals`: the coordinator sees all; a provider's agents only the referrals sent to their provider.
//! `/v1/routing/rules`: the coordinator's routing rules. `/v1/requests/{id}/routing`: why a request went where
//! it went (coordinator; the member's referent).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use id77_platform::auth::Role;
use id77_proto::routing::v1 as pb;
use serde::Deserialize;

use super::common::upstream;
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, json_problem, path_id};
use crate::problem::Problem;
use crate::views::{self, Page};

/// Longest rule name and reason.
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_REASON_CHARS: usize = 1000;
/// Most referrals in one bulk reassignment.
pub const MAX_BULK: usize = 100;

const READERS: &[Role] = &[Role::Coordinator, Role::ProviderAgent];

#[derive(Debug, Deserialize)]
pub struct ListParams {
    request_id: Option<String>,
    provider: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    at_risk: Option<String>,
}

/// An agent lists its provider's referrals (another provider's list is "not found").
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Referral>>, Problem> {
    caller.allow(READERS)?;
    let mut checks = Checks::new();
    let request_id = checks.optional("request_id", params.request_id, MAX_ID_CHARS).trim().to_owned();
    let asked = checks.optional("provider", params.provider, MAX_ID_CHARS).trim().to_owned();
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    let at_risk = match params.at_risk.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            checks.fail("at_risk", "must be true or false");
            false
        }
    };
    checks.finish()?;
    if at_risk && !caller.has(Role::Coordinator) {
        return Err(Problem::forbidden("only the coordinator lists the referrals at risk"));
    }
    let provider_code = if caller.has(Role::Coordinator) {
        asked
    } else {
        match caller.own_provider() {
            Some(own) if asked.is_empty() || asked == own => own.to_owned(),
            _ => return Err(Problem::not_found(format!("provider {asked} not found"))),
        }
    };
    let request = pb::ListReferralsRequest { request_id, provider_code, page_size, page_token, at_risk };
    let response =
        state.routing().list_referrals(caller.grpc(request)).await.map_err(upstream("routing"))?.into_inner();
    Ok(Json(Page::new(response.referrals, response.next_page_token)))
}

/// Another provider's referral is "not found" for an agent.
pub async fn get(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Json<views::Referral>, Problem> {
    caller.allow(READERS)?;
    path_id("id", &id)?;
    let referral = state
        .routing()
        .get_referral(caller.grpc(pb::GetReferralRequest { id: id.clone() }))
        .await
        .map_err(upstream("routing"))?
        .into_inner();
    if !caller.has(Role::Coordinator) && !caller.is_agent_of(&referral.provider_code) {
        return Err(Problem::not_found(format!("referral {id} not found")));
    }
    Ok(Json(referral.into()))
}

/// A rule as the coordinator writes it.
#[derive(Debug, Deserialize)]
pub struct RuleBody {
    name: Option<String>,
    /// Any JSON condition (see the OpenAPI description); absent or null: always.
    condition: Option<serde_json::Value>,
    provider_code: Option<String>,
    /// Create only: 1-based position (absent: appended).
    position: Option<u32>,
    /// When given, the edit applies only to this version of the rule set (else 409).
    expected_version: Option<i32>,
}

fn rule_input(body: RuleBody, checks: &mut Checks) -> pb::RuleInput {
    let name = checks.required("name", body.name, MAX_NAME_CHARS);
    let provider_code = checks.required("provider_code", body.provider_code, MAX_ID_CHARS);
    let condition_json = match body.condition {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(value) => value.to_string(),
    };
    pb::RuleInput { name, condition_json, provider_code }
}

pub async fn list_rules(State(state): State<AppState>, caller: Authenticated) -> Result<Json<views::RuleSet>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    let set = state.routing().list_rules(caller.grpc(pb::ListRulesRequest {})).await.map_err(upstream("routing"))?;
    Ok(Json(set.into_inner().into()))
}

/// Creates a rule: a new version of the rule set (201 with the whole rule set).
pub async fn create_rule(
    State(state): State<AppState>,
    caller: Authenticated,
    body: Result<Json<RuleBody>, JsonRejection>,
) -> Result<(StatusCode, Json<views::RuleSet>), Problem> {
    caller.allow(&[Role::Coordinator])?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let (position, expected_version) = (body.position.unwrap_or(0), body.expected_version.unwrap_or(0));
    let rule = rule_input(body, &mut checks);
    checks.finish()?;
    let request = pb::CreateRuleRequest { rule: Some(rule), position, expected_version };
    let set = state.routing().create_rule(caller.grpc(request)).await.map_err(upstream("routing"))?;
    Ok((StatusCode::CREATED, Json(set.into_inner().into())))
}

pub async fn update_rule(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<RuleBody>, JsonRejection>,
) -> Result<Json<views::RuleSet>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let expected_version = body.expected_version.unwrap_or(0);
    let rule = rule_input(body, &mut checks);
    checks.finish()?;
    let request = pb::UpdateRuleRequest { id, rule: Some(rule), expected_version };
    let set = state.routing().update_rule(caller.grpc(request)).await.map_err(upstream("routing"))?;
    Ok(Json(set.into_inner().into()))
}

pub async fn delete_rule(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Json<views::RuleSet>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    path_id("id", &id)?;
    let request = pb::DeleteRuleRequest { id, expected_version: 0 };
    let set = state.routing().delete_rule(caller.grpc(request)).await.map_err(upstream("routing"))?;
    Ok(Json(set.into_inner().into()))
}

#[derive(Debug, Deserialize)]
pub struct ReorderBody {
    rule_ids: Option<Vec<String>>,
    expected_version: Option<i32>,
}

pub async fn reorder_rules(
    State(state): State<AppState>,
    caller: Authenticated,
    body: Result<Json<ReorderBody>, JsonRejection>,
) -> Result<Json<views::RuleSet>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let rule_ids = body.rule_ids.unwrap_or_default();
    if rule_ids.iter().any(|id| id.chars().count() > MAX_ID_CHARS) || rule_ids.len() > 200 {
        checks.fail("rule_ids", "must be at most 200 rule ids");
    }
    checks.finish()?;
    let request = pb::ReorderRulesRequest { rule_ids, expected_version: body.expected_version.unwrap_or(0) };
    let set = state.routing().reorder_rules(caller.grpc(request)).await.map_err(upstream("routing"))?;
    Ok(Json(set.into_inner().into()))
}

/// Why a request went where it went: every rule tried, and why it matched or not.
pub async fn explain(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Json<views::RoutingExplanation>, Problem> {
    caller.allow(&[Role::Coordinator, Role::Referent])?;
    path_id("id", &id)?;
    let request = pb::ExplainRoutingRequest { request_id: id };
    let explanation = state.routing().explain_routing(caller.grpc(request)).await.map_err(upstream("routing"))?;
    Ok(Json(explanation.into_inner().into()))
}

#[derive(Debug, Deserialize)]
pub struct ReassignBody {
    provider_code: Option<String>,
    reason: Option<String>,
    /// Bulk only.
    referral_ids: Option<Vec<String>>,
}

/// The coordinator hands a request to another provider (its open referral, if offered, is withdrawn).
pub async fn reassign(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<ReassignBody>, JsonRejection>,
) -> Result<(StatusCode, Json<views::Referral>), Problem> {
    caller.allow(&[Role::Coordinator])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let provider_code = checks.required("provider_code", body.provider_code, MAX_ID_CHARS);
    let reason = checks.optional("reason", body.reason, MAX_REASON_CHARS);
    checks.finish()?;
    let request = pb::ReassignReferralRequest { referral_id: id, provider_code, reason };
    let referral = state.routing().reassign_referral(caller.grpc(request)).await.map_err(upstream("routing"))?;
    Ok((StatusCode::CREATED, Json(referral.into_inner().into())))
}

/// Bulk reassignment: one result per referral (each on its own; one failure does not undo the others).
pub async fn reassign_bulk(
    State(state): State<AppState>,
    caller: Authenticated,
    body: Result<Json<ReassignBody>, JsonRejection>,
) -> Result<Json<Vec<views::BulkReassignResult>>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let provider_code = checks.required("provider_code", body.provider_code, MAX_ID_CHARS);
    let reason = checks.optional("reason", body.reason, MAX_REASON_CHARS);
    let referral_ids = body.referral_ids.unwrap_or_default();
    if referral_ids.is_empty() || referral_ids.len() > MAX_BULK {
        checks.fail("referral_ids", format!("must list 1 to {MAX_BULK} referrals"));
    }
    if referral_ids.iter().any(|id| id.chars().count() > MAX_ID_CHARS) {
        checks.fail("referral_ids", "must be referral ids");
    }
    checks.finish()?;
    let request = pb::BulkReassignReferralsRequest { referral_ids, provider_code, reason };
    let response = state.routing().bulk_reassign_referrals(caller.grpc(request)).await.map_err(upstream("routing"))?;
    Ok(Json(response.into_inner().results.into_iter().map(views::BulkReassignResult::from).collect()))
}

#[derive(Debug, Deserialize)]
pub struct WithdrawBody {
    reason: Option<String>,
}

/// The coordinator withdraws an offered referral; the provider is told on its own subject.
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<WithdrawBody>, JsonRejection>,
) -> Result<Json<views::Referral>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let reason = checks.optional("reason", body.reason, MAX_REASON_CHARS);
    checks.finish()?;
    let request = pb::WithdrawReferralRequest { referral_id: id, reason };
    let referral = state.routing().withdraw_referral(caller.grpc(request)).await.map_err(upstream("routing"))?;
    Ok(Json(referral.into_inner().into()))
}

#[derive(Debug, Default, Deserialize)]
pub struct ReplyBody {
    reason: Option<String>,
}

/// A provider's agent answers a referral sent to its provider (routing checks it is theirs: another
/// provider's referral is "not found"); 409 when the referral is no longer in a state to take this answer.
async fn reply(
    state: &AppState,
    caller: &Authenticated,
    id: &str,
    decision: pb::ReplyDecision,
    reason: String,
) -> Result<Json<views::Referral>, Problem> {
    let request = pb::ReplyToReferralRequest {
        referral_id: id.to_owned(),
        decision: decision.into(),
        reason,
        ..Default::default()
    };
    send_reply(state, caller, request).await
}

async fn send_reply(
    state: &AppState,
    caller: &Authenticated,
    request: pb::ReplyToReferralRequest,
) -> Result<Json<views::Referral>, Problem> {
    let referral = state.routing().reply_to_referral(caller.grpc(request)).await.map_err(upstream("routing"))?;
    Ok(Json(referral.into_inner().into()))
}

/// Largest amount stated on a quote, in cents (10 000 000,00 EUR), as routing checks it.
pub const MAX_QUOTE_CENTS: i64 = 1_000_000_000;
/// Longest quote label.
pub const MAX_QUOTE_NOTE_CHARS: usize = 200;

/// Optional body of an accept: the amount of an offer priced on quote (required there, refused elsewhere).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    amount_cents: Option<i64>,
    quote_note: Option<String>,
}

/// `POST /v1/referrals/{id}/accept` (provider's agent), with no body, or `{"amount_cents": ..., "quote_note":
/// ...}` for an offer priced on quote.
pub async fn accept(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Option<Json<AcceptBody>>, JsonRejection>,
) -> Result<Json<views::Referral>, Problem> {
    caller.allow(&[Role::ProviderAgent])?;
    path_id("id", &id)?;
    let body = body.map_err(json_problem)?.map(|Json(b)| b).unwrap_or_default();
    let mut checks = Checks::new();
    let amount_cents = match body.amount_cents {
        None => 0,
        Some(n) if (1..=MAX_QUOTE_CENTS).contains(&n) => n,
        Some(_) => {
            checks.fail(
                "amount_cents",
                format!("must be an integer from 1 to {MAX_QUOTE_CENTS} (euro cents, VAT excluded)"),
            );
            0
        }
    };
    let quote_note = checks.optional("quote_note", body.quote_note, MAX_QUOTE_NOTE_CHARS);
    if body.amount_cents.is_none() && !quote_note.trim().is_empty() {
        checks.fail("quote_note", "goes with amount_cents");
    }
    checks.finish()?;
    let request = pb::ReplyToReferralRequest {
        referral_id: id,
        decision: pb::ReplyDecision::Accept.into(),
        reason: String::new(),
        amount_cents,
        quote_note,
    };
    send_reply(&state, &caller, request).await
}

/// `POST /v1/referrals/{id}/decline` with a reason (provider's agent): the request is re-routed.
pub async fn decline(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<ReplyBody>, JsonRejection>,
) -> Result<Json<views::Referral>, Problem> {
    caller.allow(&[Role::ProviderAgent])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let reason = checks.required("reason", body.reason, MAX_REASON_CHARS);
    checks.finish()?;
    reply(&state, &caller, &id, pb::ReplyDecision::Decline, reason).await
}

/// `POST /v1/referrals/{id}/complete` (provider's agent): the accepted work is done (billing invoices the
/// accepted quote once requests has completed the request). 409 `quote-not-accepted` while the member has not
/// accepted the quote of a billed offer; 409 `invalid-transition` once the request was cancelled (the referral is
/// withdrawn).
pub async fn complete(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Json<views::Referral>, Problem> {
    caller.allow(&[Role::ProviderAgent])?;
    path_id("id", &id)?;
    reply(&state, &caller, &id, pb::ReplyDecision::Complete, String::new()).await
}

/// Longest progress note.
pub const MAX_PROGRESS_CHARS: usize = 2000;

#[derive(Debug, Deserialize)]
pub struct ProgressBody {
    note: Option<String>,
    percent: Option<u32>,
}

/// `POST /v1/referrals/{id}/progress` (provider's agent): a progress note on an accepted referral; 409 as for
/// completion (`quote-not-accepted`, `invalid-transition`).
pub async fn progress(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<ProgressBody>, JsonRejection>,
) -> Result<Json<views::Referral>, Problem> {
    caller.allow(&[Role::ProviderAgent])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let note = checks.required("note", body.note, MAX_PROGRESS_CHARS);
    let percent = body.percent.unwrap_or(0);
    if percent > 100 {
        checks.fail("percent", "must be between 0 and 100");
    }
    checks.finish()?;
    let request = pb::ReportReferralProgressRequest { referral_id: id, note, percent };
    let referral = state.routing().report_referral_progress(caller.grpc(request)).await.map_err(upstream("routing"))?;
    Ok(Json(referral.into_inner().into()))
}

#[derive(Debug, Deserialize)]
pub struct SlaBody {
    business_days: Option<u32>,
}

#[derive(Debug, serde::Serialize)]
pub struct ProviderSla {
    provider_code: String,
    business_days: u32,
}

/// A provider's response deadline in business days (1 to 60).
pub async fn set_sla(
    State(state): State<AppState>,
    caller: Authenticated,
    P(code): P<String>,
    body: Result<Json<SlaBody>, JsonRejection>,
) -> Result<Json<ProviderSla>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    path_id("code", &code)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let business_days = body.business_days.unwrap_or(0);
    if !(1..=60).contains(&business_days) {
        checks.fail("business_days", "must be between 1 and 60");
    }
    checks.finish()?;
    let request = pb::SetProviderSlaRequest { provider_code: code, business_days };
    let sla = state.routing().set_provider_sla(caller.grpc(request)).await.map_err(upstream("routing"))?.into_inner();
    Ok(Json(ProviderSla { provider_code: sla.provider_code, business_days: sla.business_days }))
}
