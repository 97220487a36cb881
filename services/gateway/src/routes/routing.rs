//! `/v1/referrals`: the coordinator sees all; a provider's agents only the referrals sent to their provider.
//! `/v1/routing/rules`: the coordinator's routing rules. `/v1/requests/{id}/routing`: why a request went where
//! it went (coordinator; the member's referent).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use id77_platform::auth::Role;
use id77_proto::routing::v1 as pb;
use utoipa::openapi::{Ref, RefOr};

use super::common::upstream;
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, json_problem, path_id};
use crate::problem::Problem;
use crate::views::{self, Page};

/// This module's operations and views in the OpenAPI document (`crate::api_docs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    modifiers(&SpecificAnswers),
    paths(
        explain,
        list,
        reassign_bulk,
        get,
        reassign,
        withdraw,
        accept,
        decline,
        complete,
        progress,
        list_rules,
        create_rule,
        reorder_rules,
        update_rule,
        delete_rule,
        get_sla,
        set_sla,
    ),
    components(schemas(
        views::Referral,
        views::ReferralStatusDoc,
        views::QuoteAgreementDoc,
        views::OutcomeDoc,
        views::RuleSet,
        views::RoutingRule,
        views::RoutingConditionDoc,
        views::RuleTrace,
        views::RoutingExplanation,
        views::BulkReassignResult,
        views::ProviderSla,
        RuleBody,
        ReorderBody,
        ReassignBody,
        BulkReassignBody,
        WithdrawBody,
        AcceptBody,
        ReplyBody,
        ProgressBody,
        SlaBody,
    ))
)]
pub struct Api;

/// The answers of these operations that the shared ones do not say (the document's frame adds those): each a
/// `$ref` to the shared problem answer, with what it means here. (path, method, status, shared answer, meaning)
const SPECIFIC_ANSWERS: &[(&str, &str, &str, &str, &str)] = &[
    ("/v1/referrals", "get", "404", "NotFound", "An agent asked for another provider's referrals."),
    ("/v1/referrals/{id}/reassign", "post", "409", "Conflict", "The request was accepted: it cannot be reassigned."),
    ("/v1/referrals/{id}/withdraw", "post", "409", "Conflict", "The referral is no longer offered."),
    ("/v1/referrals/{id}/accept", "post", "409", "Conflict", "The referral is no longer offered."),
    ("/v1/referrals/{id}/decline", "post", "409", "Conflict", "The referral is no longer offered."),
    (
        "/v1/referrals/{id}/complete",
        "post",
        "409",
        "Conflict",
        "`invalid-transition` (not accepted, already completed, or withdrawn by a cancellation) or \
         `quote-not-accepted` (the member has not accepted the quote of a billed offer).",
    ),
    (
        "/v1/referrals/{id}/progress",
        "post",
        "409",
        "Conflict",
        "`invalid-transition` (not accepted, or withdrawn by a cancellation) or `quote-not-accepted`.",
    ),
    ("/v1/routing/rules", "post", "409", "Conflict", RULES_CHANGED),
    ("/v1/routing/rules/reorder", "post", "409", "Conflict", RULES_CHANGED),
    ("/v1/routing/rules/{id}", "put", "409", "Conflict", RULES_CHANGED),
    ("/v1/routing/rules/{id}", "delete", "409", "Conflict", "The rule set changed meanwhile."),
    (
        "/v1/routing/providers/{code}/sla",
        "get",
        "404",
        "NotFound",
        "No such provider, or (for an agent) another provider's.",
    ),
];

const RULES_CHANGED: &str = "`RULES_CHANGED`: `expected_version` is not the current version of the rule set.";

/// Adds [`SPECIFIC_ANSWERS`] to the operations, and says that the body of an accept may be left out (utoipa
/// would say so only of an `Option`, documenting a `null` body that the handler refuses).
struct SpecificAnswers;

impl utoipa::Modify for SpecificAnswers {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        for (path, method, status, shared, meaning) in SPECIFIC_ANSWERS {
            let Some(item) = doc.paths.paths.get_mut(*path) else { continue };
            let operation = match *method {
                "get" => item.get.as_mut(),
                "put" => item.put.as_mut(),
                "post" => item.post.as_mut(),
                _ => item.delete.as_mut(),
            };
            if let Some(operation) = operation {
                let mut answer = Ref::new(format!("#/components/responses/{shared}"));
                answer.description = (*meaning).to_owned();
                operation.responses.responses.insert((*status).to_owned(), RefOr::Ref(answer));
            }
        }
        let accept = doc.paths.paths.get_mut("/v1/referrals/{id}/accept").and_then(|item| item.post.as_mut());
        if let Some(body) = accept.and_then(|operation| operation.request_body.as_mut()) {
            body.required = Some(utoipa::openapi::Required::False);
        }
    }
}

/// Longest rule name and reason.
pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_REASON_CHARS: usize = 1000;
/// Most referrals in one bulk reassignment.
pub const MAX_BULK: usize = 100;

const READERS: &[Role] = &[Role::Coordinator, Role::ProviderAgent];

mod input;

use self::input::{
    AcceptBody, BulkReassignBody, ListParams, ProgressBody, ReassignBody, ReorderBody, ReplyBody, RuleBody, SlaBody,
    WithdrawBody,
};

/// An agent lists its provider's referrals (another provider's list is "not found").
#[utoipa::path(
    get,
    path = "/v1/referrals",
    tag = "referrals",
    operation_id = "listReferrals",
    summary = "List referrals (coordinator; provider_agent: its provider's); `at_risk=true`: the coordinator's view \
               of referrals near or past their deadline",
    description = "An agent asking for another provider's referrals gets 404; `at_risk=true` asked by an agent \
                   answers 403.",
    params(ListParams),
    responses((status = 200, description = "A page of referrals.", body = Page<views::Referral>)),
    security(("bearerAuth" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Referral>>, Problem> {
    caller.allow(READERS)?;
    let mut checks = Checks::new();
    let request_id = checks.uuid_filter("request_id", params.request_id);
    let asked = checks.filter("provider", params.provider, MAX_ID_CHARS);
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    let updated_since = super::requests::updated_since(&mut checks, params.updated_since);
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
    let request = pb::ListReferralsRequest { request_id, provider_code, page_size, page_token, at_risk, updated_since };
    let response =
        state.routing().list_referrals(caller.grpc(request)).await.map_err(upstream("routing"))?.into_inner();
    Ok(Json(Page::new(response.referrals, response.next_page_token)))
}

/// Another provider's referral is "not found" for an agent.
#[utoipa::path(
    get,
    path = "/v1/referrals/{id}",
    tag = "referrals",
    operation_id = "getReferral",
    summary = "One referral (coordinator, its provider's agents)",
    description = "Another provider's referral answers 404.",
    params(("id" = String, Path, format = "uuid", description = "The referral's id.")),
    responses((status = 200, description = "The referral.", body = views::Referral)),
    security(("bearerAuth" = []))
)]
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

fn rule_input(body: RuleBody, checks: &mut Checks) -> pb::RuleInput {
    let name = checks.required("name", body.name, MAX_NAME_CHARS);
    let provider_code = checks.required("provider_code", body.provider_code, MAX_ID_CHARS);
    let condition_json = match body.condition {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(value) => value.to_string(),
    };
    pb::RuleInput { name, condition_json, provider_code }
}

#[utoipa::path(
    get,
    path = "/v1/routing/rules",
    tag = "referrals",
    operation_id = "listRoutingRules",
    summary = "The current routing rules (coordinator)",
    description = "Ordered: the first rule whose condition holds chooses the provider; else the offer's default \
                   provider; else the coordinator's triage queue.",
    responses((status = 200, description = "The current rule set.", body = views::RuleSet)),
    security(("bearerAuth" = []))
)]
pub async fn list_rules(State(state): State<AppState>, caller: Authenticated) -> Result<Json<views::RuleSet>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    let set = state.routing().list_rules(caller.grpc(pb::ListRulesRequest {})).await.map_err(upstream("routing"))?;
    Ok(Json(set.into_inner().into()))
}

/// Creates a rule: a new version of the rule set (201 with the whole rule set).
#[utoipa::path(
    post,
    path = "/v1/routing/rules",
    tag = "referrals",
    operation_id = "createRoutingRule",
    summary = "Add a routing rule (coordinator)",
    description = "Every edit makes a new version of the whole rule set. Refused (400) when a provider is unknown, \
                   a condition malformed, or a rule unreachable (after a rule that matches everything, or with the \
                   same condition as an earlier rule).",
    request_body = RuleBody,
    responses((status = 201, description = "The new rule set.", body = views::RuleSet)),
    security(("bearerAuth" = []))
)]
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

#[utoipa::path(
    put,
    path = "/v1/routing/rules/{id}",
    tag = "referrals",
    operation_id = "updateRoutingRule",
    summary = "Change a routing rule (coordinator)",
    description = "Makes a new version of the rule set (`position` is ignored: reorder instead). Refused (400) as \
                   for a creation.",
    params(("id" = String, Path, format = "uuid", description = "The rule's id.")),
    request_body = RuleBody,
    responses((status = 200, description = "The new rule set.", body = views::RuleSet)),
    security(("bearerAuth" = []))
)]
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

#[utoipa::path(
    delete,
    path = "/v1/routing/rules/{id}",
    tag = "referrals",
    operation_id = "deleteRoutingRule",
    summary = "Delete a routing rule (coordinator)",
    description = "Makes a new version of the rule set.",
    params(("id" = String, Path, format = "uuid", description = "The rule's id.")),
    responses((status = 200, description = "The new rule set.", body = views::RuleSet)),
    security(("bearerAuth" = []))
)]
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

#[utoipa::path(
    post,
    path = "/v1/routing/rules/reorder",
    tag = "referrals",
    operation_id = "reorderRoutingRules",
    summary = "Reorder the routing rules (coordinator)",
    description = "`rule_ids` must list every rule of the current set, once (else 400). Makes a new version.",
    request_body = ReorderBody,
    responses((status = 200, description = "The new rule set.", body = views::RuleSet)),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    get,
    path = "/v1/requests/{id}/routing",
    tag = "referrals",
    operation_id = "explainRouting",
    summary = "Why a request went where it went (coordinator; the member's referent)",
    description = "Every rule of the rule set version used, whether it matched and why, which one was chosen (or \
                   the offer's default provider, the triage queue, a manual assignment), and every referral of the \
                   request. A referent who does not follow the member gets 404.",
    params(("id" = String, Path, format = "uuid", description = "The request's id.")),
    responses((status = 200, description = "The explanation.", body = views::RoutingExplanation)),
    security(("bearerAuth" = []))
)]
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

/// The coordinator hands a request to another provider (its open referral, if offered, is withdrawn).
#[utoipa::path(
    post,
    path = "/v1/referrals/{id}/reassign",
    tag = "referrals",
    operation_id = "reassignReferral",
    summary = "Hand a request to another provider (coordinator)",
    description = "From any referral of the request: its open referral (if offered) is withdrawn and the provider \
                   told; a new referral is offered to `provider_code` and the request leaves the triage queue. An \
                   accepted request cannot be reassigned (409).",
    params(("id" = String, Path, format = "uuid", description = "A referral of the request.")),
    request_body = ReassignBody,
    responses((status = 201, description = "The new referral.", body = views::Referral)),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    post,
    path = "/v1/referrals/reassign",
    tag = "referrals",
    operation_id = "reassignReferrals",
    summary = "Reassign several requests by hand (coordinator)",
    description = "One result per referral; each is reassigned on its own, so one failure does not undo the others.",
    request_body = BulkReassignBody,
    responses((status = 200, description = "One result per referral, in the order asked.", body = Vec<views::BulkReassignResult>)),
    security(("bearerAuth" = []))
)]
pub async fn reassign_bulk(
    State(state): State<AppState>,
    caller: Authenticated,
    body: Result<Json<BulkReassignBody>, JsonRejection>,
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

/// The coordinator withdraws an offered referral; the provider is told on its own subject.
#[utoipa::path(
    post,
    path = "/v1/referrals/{id}/withdraw",
    tag = "referrals",
    operation_id = "withdrawReferral",
    summary = "Withdraw an offered referral (coordinator)",
    description = "The provider is told on its own subject (`Id77-Event-Type: id77.routing.v1.ReferralWithdrawn`). \
                   A decided referral answers 409.",
    params(("id" = String, Path, format = "uuid", description = "The referral's id.")),
    request_body = WithdrawBody,
    responses((status = 200, description = "The withdrawn referral.", body = views::Referral)),
    security(("bearerAuth" = []))
)]
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

/// `POST /v1/referrals/{id}/accept` (provider's agent), with no body, or `{"amount_cents": ..., "quote_note":
/// ...}` for an offer priced on quote.
#[utoipa::path(
    post,
    path = "/v1/referrals/{id}/accept",
    tag = "referrals",
    operation_id = "acceptReferral",
    summary = "Accept a referral (provider's agent)",
    description = "The agent of the provider the referral was offered to accepts it: the request becomes accepted \
                   and a quote is issued for a billed offer. For an offer priced on quote (`price_rule.kind` = \
                   `on_quote`) the body must state the quoted amount (`amount_cents`, euro cents excluding VAT, 1 to \
                   1000000000), which the quote and the invoice then carry; for any other offer an amount is refused \
                   (400, field `amount_cents`), and the body may be left out. A `quote_note` without `amount_cents` \
                   is refused (400). Another provider's referral answers 404; a referral no longer offered answers \
                   409. Same effect as the provider's `accept` reply on NATS.",
    params(("id" = String, Path, format = "uuid", description = "The referral's id.")),
    request_body = AcceptBody,
    responses((status = 200, description = "The accepted referral.", body = views::Referral)),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    post,
    path = "/v1/referrals/{id}/decline",
    tag = "referrals",
    operation_id = "declineReferral",
    summary = "Decline a referral with a reason (provider's agent)",
    description = "The request is re-routed to the next candidate (next matching rule, then the offer's provider) \
                   or to the triage queue. Another provider's referral answers 404; a referral no longer offered \
                   answers 409.",
    params(("id" = String, Path, format = "uuid", description = "The referral's id.")),
    request_body = ReplyBody,
    responses((status = 200, description = "The declined referral.", body = views::Referral)),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    post,
    path = "/v1/referrals/{id}/complete",
    tag = "referrals",
    operation_id = "completeReferral",
    summary = "Report accepted work as done (provider's agent)",
    description = "Publishes `referral.completed`: a claim that requests confirms (`request.completed`, on which \
                   billing invoices the accepted quote of a billed offer); a request the member cancelled first \
                   stays cancelled. Only an accepted referral, once: otherwise 409 `invalid-transition` (also once \
                   the request was cancelled: the referral is then withdrawn). A billed offer whose quote the member \
                   has not accepted yet answers 409 `quote-not-accepted` (see the referral's `agreement`).",
    params(("id" = String, Path, format = "uuid", description = "The referral's id.")),
    responses((status = 200, description = "The completed referral.", body = views::Referral)),
    security(("bearerAuth" = []))
)]
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

/// `POST /v1/referrals/{id}/progress` (provider's agent): a progress note on an accepted referral; 409 as for
/// completion (`quote-not-accepted`, `invalid-transition`).
#[utoipa::path(
    post,
    path = "/v1/referrals/{id}/progress",
    tag = "referrals",
    operation_id = "reportReferralProgress",
    summary = "Report progress on an accepted referral (provider's agent)",
    description = "A note (and optionally a percentage) shown to the member and the coordinator as the referral's \
                   `progress`. A referral not accepted (or withdrawn because the request was cancelled) answers 409 \
                   `invalid-transition`; a billed offer whose quote the member has not accepted yet answers 409 \
                   `quote-not-accepted` (see the referral's `agreement`).",
    params(("id" = String, Path, format = "uuid", description = "The referral's id.")),
    request_body = ProgressBody,
    responses((status = 200, description = "The referral with its progress.", body = views::Referral)),
    security(("bearerAuth" = []))
)]
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

const SLA_DESCRIPTION: &str = "Business days exclude weekends and French public holidays (computed). Reminder one \
                               business day before, escalation at the deadline, expiry after the grace period.";

/// A provider's response deadline, as set (or the default): the coordinator, and that provider's agents (another
/// provider's is "not found").
#[utoipa::path(
    get,
    path = "/v1/routing/providers/{code}/sla",
    tag = "referrals",
    operation_id = "getProviderSla",
    summary = "A provider's response deadline in business days (coordinator; the provider's agents)",
    description = SLA_DESCRIPTION,
    params(("code" = String, Path, pattern = "^[a-z0-9-]{1,64}$", description = "The provider's code.")),
    responses((status = 200, description = "The deadline as set (or the default).", body = views::ProviderSla)),
    security(("bearerAuth" = []))
)]
pub async fn get_sla(
    State(state): State<AppState>,
    caller: Authenticated,
    P(code): P<String>,
) -> Result<Json<views::ProviderSla>, Problem> {
    caller.allow(READERS)?;
    path_id("code", &code)?;
    if !caller.has(Role::Coordinator) && !caller.is_agent_of(&code) {
        return Err(Problem::not_found(format!("provider {code} not found")));
    }
    let request = pb::GetProviderSlaRequest { provider_code: code };
    let sla = state.routing().get_provider_sla(caller.grpc(request)).await.map_err(upstream("routing"))?;
    Ok(Json(sla.into_inner().into()))
}

/// A provider's response deadline in business days (1 to 60).
#[utoipa::path(
    put,
    path = "/v1/routing/providers/{code}/sla",
    tag = "referrals",
    operation_id = "setProviderSla",
    summary = "A provider's response deadline in business days (coordinator)",
    description = SLA_DESCRIPTION,
    params(("code" = String, Path, pattern = "^[a-z0-9-]{1,64}$", description = "The provider's code.")),
    request_body = SlaBody,
    responses((status = 200, description = "The deadline as set.", body = views::ProviderSla)),
    security(("bearerAuth" = []))
)]
pub async fn set_sla(
    State(state): State<AppState>,
    caller: Authenticated,
    P(code): P<String>,
    body: Result<Json<SlaBody>, JsonRejection>,
) -> Result<Json<views::ProviderSla>, Problem> {
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
    let sla = state.routing().set_provider_sla(caller.grpc(request)).await.map_err(upstream("routing"))?;
    Ok(Json(sla.into_inner().into()))
}

#[cfg(test)]
mod tests;
