//! gRPC transport: each call checks its caller (docs/authorization.md), maps its request to a flow's input (or a
//! read of the store), and the outcome to protobuf ([`mapping`]).

mod mapping;

use id77_platform::auth::Caller;
use id77_platform::{CallerOf, ServiceError, page};
use id77_proto::routing::v1 as pb;
use id77_proto::routing::v1::routing_service_server::RoutingService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use self::mapping::{coordinator, parse_id, provider_agent, referral_to_proto, rule_from_input, rule_set_to_proto};
use crate::access;
use crate::domain::{self, rules};
use crate::flow::Lifecycle;
use crate::flow::explanation;
use crate::flow::replies::ProgressReport;
use crate::flow::rule_set::Edit;
use crate::store::{self, ReferralRow};
use crate::store_names;

/// Most referrals one bulk reassignment takes.
pub const MAX_BULK: usize = 100;

pub struct RoutingApi {
    pool: PgPool,
    lifecycle: Lifecycle,
}

impl RoutingApi {
    pub fn new(pool: PgPool, lifecycle: Lifecycle) -> Self {
        Self { pool, lifecycle }
    }

    async fn referral(&self, caller: &Caller, req: pb::GetReferralRequest) -> Result<pb::Referral, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("referral", &req.id))?;
        let id = parse_id("id", &req.id)?;
        let row = store::get_referral(&self.pool, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("referral", &id.to_string()))?;
        access::read_referral(caller, &row.provider_code).map_err(|d| d.into_error("referral", &id.to_string()))?;
        let names = store_names::referral_names(&self.pool, &[row.id]).await?;
        Ok(mapping::named(referral_to_proto(row), &names))
    }

    async fn referrals(
        &self,
        caller: &Caller,
        req: pb::ListReferralsRequest,
    ) -> Result<pb::ListReferralsResponse, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("provider", &req.provider_code))?;
        let request_id = mapping::optional_id("request_id", &req.request_id)?;
        let provider_code = mapping::optional_provider(&req.provider_code)?;
        // An agent lists only its own provider's referrals.
        let provider_code = access::list_provider(caller, provider_code)
            .map_err(|d| d.into_error("provider", provider_code.unwrap_or_default()))?;
        let after = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let at_risk = req.at_risk.then(|| self.lifecycle.now());
        let since = req.updated_since.as_ref().map(|ts| {
            id77_platform::time::from_proto(ts)
                .ok_or_else(|| ServiceError::invalid("updated_since", "is not a valid time"))
        });
        let filter =
            store::ReferralFilter { request_id, provider_code, at_risk_at: at_risk, changed_since: since.transpose()? };
        let rows = store::list_referrals(&self.pool, filter, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |r| page::encode(&(r.offered_at, r.id)));
        let names = store_names::referral_names(&self.pool, &rows.iter().map(|r| r.id).collect::<Vec<_>>()).await?;
        Ok(pb::ListReferralsResponse {
            referrals: rows.into_iter().map(|r| mapping::named(referral_to_proto(r), &names)).collect(),
            next_page_token: next,
        })
    }

    async fn list_rule_set(&self, caller: &Caller) -> Result<pb::RuleSet, ServiceError> {
        access::manage(caller).map_err(|d| d.into_error("rules", ""))?;
        let mut conn = self.pool.acquire().await?;
        Ok(rule_set_to_proto(&store::current_rules(&mut conn).await?))
    }

    async fn edit_rules(&self, caller: &Caller, edit: Edit, expected: i32) -> Result<pb::RuleSet, ServiceError> {
        access::manage(caller).map_err(|d| d.into_error("rules", ""))?;
        let set = self.lifecycle.edit_rules(&self.pool, edit, expected, caller.user_id).await?;
        Ok(rule_set_to_proto(&set))
    }

    async fn explain(
        &self,
        caller: &Caller,
        req: pb::ExplainRoutingRequest,
    ) -> Result<pb::RoutingExplanation, ServiceError> {
        access::may_explain(caller).map_err(|d| d.into_error("request", &req.request_id))?;
        let request_id = parse_id("request_id", &req.request_id)?;
        let explanation = explanation::explain(&self.pool, request_id).await?;
        access::explain(caller, explanation.referent).map_err(|d| d.into_error("request", &request_id.to_string()))?;
        Ok(mapping::explanation_to_proto(explanation))
    }

    async fn reassign_one(
        &self,
        caller: &Caller,
        referral_id: &str,
        provider_code: &str,
        note: &str,
    ) -> Result<pb::Referral, ServiceError> {
        let referral_id = parse_id("referral_id", referral_id)?;
        let by = coordinator(caller);
        let created = self.lifecycle.reassign(&self.pool, referral_id, provider_code, note, &by).await?;
        Ok(referral_to_proto(created))
    }

    async fn bulk_reassign(
        &self,
        caller: &Caller,
        req: pb::BulkReassignReferralsRequest,
    ) -> Result<pb::BulkReassignReferralsResponse, ServiceError> {
        access::manage(caller).map_err(|d| d.into_error("referrals", ""))?;
        if req.referral_ids.is_empty() || req.referral_ids.len() > MAX_BULK {
            return Err(ServiceError::invalid("referral_ids", "must list 1 to 100 referrals"));
        }
        let (provider, note) = mapping::provider_and_note(&req.provider_code, &req.reason)?;
        // One transaction per referral: one failure does not undo the others; each result says what happened.
        let mut results = Vec::with_capacity(req.referral_ids.len());
        for id in req.referral_ids {
            results.push(match self.reassign_one(caller, &id, &provider, &note).await {
                Ok(referral) => {
                    pb::BulkReassignResult { referral_id: id, referral: Some(referral), error: String::new() }
                }
                Err(error) => pb::BulkReassignResult { referral_id: id, referral: None, error: error.message },
            });
        }
        Ok(pb::BulkReassignReferralsResponse { results })
    }

    async fn withdraw(&self, caller: &Caller, req: pb::WithdrawReferralRequest) -> Result<pb::Referral, ServiceError> {
        access::manage(caller).map_err(|d| d.into_error("referral", &req.referral_id))?;
        let id = parse_id("referral_id", &req.referral_id)?;
        let note = domain::note(&req.reason).map_err(|e| ServiceError::invalid("reason", e))?;
        let closed = self.lifecycle.withdraw_by_coordinator(&self.pool, id, &note, &coordinator(caller)).await?;
        Ok(referral_to_proto(closed))
    }

    async fn triage(
        &self,
        caller: &Caller,
        req: pb::ListTriageRequest,
    ) -> Result<pb::ListTriageResponse, ServiceError> {
        access::manage(caller).map_err(|d| d.into_error("triage", ""))?;
        let after = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let rows = store::list_triage(&self.pool, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |r| page::encode(&(r.received_at, r.request_id)));
        Ok(pb::ListTriageResponse {
            items: rows.into_iter().map(mapping::triage_item_to_proto).collect(),
            next_page_token: next,
        })
    }

    async fn place_triaged(
        &self,
        caller: &Caller,
        req: pb::AssignTriagedRequest,
    ) -> Result<pb::Referral, ServiceError> {
        access::manage(caller).map_err(|d| d.into_error("request", &req.request_id))?;
        let request_id = parse_id("request_id", &req.request_id)?;
        let offer_id = mapping::optional_id("offer_id", &req.offer_id)?;
        let provider = mapping::optional_provider(req.provider_code.trim())?;
        let note = domain::note(&req.note).map_err(|e| ServiceError::invalid("note", e))?;
        let by = coordinator(caller);
        let referral = self.lifecycle.assign_triaged(&self.pool, request_id, offer_id, provider, &note, &by).await?;
        Ok(referral_to_proto(referral))
    }

    /// The referral a provider's agent answers, checked against the caller: 403 for other roles, 404 for
    /// another provider's referral (or an unknown one).
    async fn answered_referral(&self, caller: &Caller, raw_id: &str) -> Result<ReferralRow, ServiceError> {
        access::reply(caller, caller.provider_code.as_deref().unwrap_or_default())
            .map_err(|d| d.into_error("referral", raw_id))?;
        let id = parse_id("referral_id", raw_id)?;
        let row = store::get_referral(&self.pool, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("referral", &id.to_string()))?;
        access::reply(caller, &row.provider_code).map_err(|d| d.into_error("referral", &id.to_string()))?;
        Ok(row)
    }

    async fn reply(&self, caller: &Caller, req: pb::ReplyToReferralRequest) -> Result<pb::Referral, ServiceError> {
        let row = self.answered_referral(caller, &req.referral_id).await?;
        let reply = mapping::reply_from_proto(&req)?;
        let by = provider_agent(caller);
        let outcome = self.lifecycle.reply_by_agent(&self.pool, &row.provider_code, row.id, reply, &by).await?;
        mapping::outcome_to_proto(outcome)
    }

    async fn progress(
        &self,
        caller: &Caller,
        req: pb::ReportReferralProgressRequest,
    ) -> Result<pb::Referral, ServiceError> {
        let row = self.answered_referral(caller, &req.referral_id).await?;
        let note = mapping::progress_note(&req)?;
        let report = ProgressReport { sequence: None, note, percent: req.percent, at: None };
        let by = provider_agent(caller);
        let outcome = self.lifecycle.progress_by_agent(&self.pool, &row.provider_code, row.id, report, &by).await?;
        mapping::outcome_to_proto(outcome)
    }

    async fn provider_sla(
        &self,
        caller: &Caller,
        req: pb::SetProviderSlaRequest,
    ) -> Result<pb::ProviderSla, ServiceError> {
        access::manage(caller).map_err(|d| d.into_error("provider", &req.provider_code))?;
        let code = mapping::provider_code(&req.provider_code)?;
        let days = i32::try_from(req.business_days)
            .ok()
            .filter(|d| (1..=60).contains(d))
            .ok_or_else(|| ServiceError::invalid("business_days", "must be between 1 and 60"))?;
        let set = store::set_provider_sla(&self.pool, code, days)
            .await?
            .ok_or_else(|| ServiceError::not_found("provider", code))?;
        Ok(mapping::sla_to_proto(code, set))
    }

    /// The coordinator, and that provider's agents (another provider's: not found).
    async fn read_provider_sla(
        &self,
        caller: &Caller,
        req: pb::GetProviderSlaRequest,
    ) -> Result<pb::ProviderSla, ServiceError> {
        access::read_sla(caller, &req.provider_code).map_err(|d| d.into_error("provider", &req.provider_code))?;
        let code = mapping::provider_code(&req.provider_code)?;
        let days = store::read_provider_sla(&self.pool, code)
            .await?
            .ok_or_else(|| ServiceError::not_found("provider", code))?;
        Ok(mapping::sla_to_proto(code, days))
    }
}

#[tonic::async_trait]
impl RoutingService for RoutingApi {
    async fn get_referral(&self, request: Request<pb::GetReferralRequest>) -> Result<Response<pb::Referral>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.referral(&caller, request.into_inner()).await?))
    }

    async fn list_referrals(
        &self,
        request: Request<pb::ListReferralsRequest>,
    ) -> Result<Response<pb::ListReferralsResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.referrals(&caller, request.into_inner()).await?))
    }

    async fn list_rules(&self, request: Request<pb::ListRulesRequest>) -> Result<Response<pb::RuleSet>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.list_rule_set(&caller).await?))
    }

    async fn create_rule(&self, request: Request<pb::CreateRuleRequest>) -> Result<Response<pb::RuleSet>, Status> {
        let caller = request.caller()?;
        access::manage(&caller).map_err(|d| d.into_error("rules", ""))?;
        let req = request.into_inner();
        let rule = rule_from_input(Uuid::now_v7(), req.rule)?;
        let position = usize::try_from(req.position).unwrap_or(usize::MAX);
        Ok(Response::new(self.edit_rules(&caller, Edit::Create(rule, position), req.expected_version).await?))
    }

    async fn update_rule(&self, request: Request<pb::UpdateRuleRequest>) -> Result<Response<pb::RuleSet>, Status> {
        let caller = request.caller()?;
        access::manage(&caller).map_err(|d| d.into_error("rules", ""))?;
        let req = request.into_inner();
        let rule = rule_from_input(parse_id("id", &req.id)?, req.rule)?;
        Ok(Response::new(self.edit_rules(&caller, Edit::Update(rule), req.expected_version).await?))
    }

    async fn delete_rule(&self, request: Request<pb::DeleteRuleRequest>) -> Result<Response<pb::RuleSet>, Status> {
        let caller = request.caller()?;
        access::manage(&caller).map_err(|d| d.into_error("rules", ""))?;
        let req = request.into_inner();
        let id = parse_id("id", &req.id)?;
        Ok(Response::new(self.edit_rules(&caller, Edit::Delete(id), req.expected_version).await?))
    }

    async fn reorder_rules(&self, request: Request<pb::ReorderRulesRequest>) -> Result<Response<pb::RuleSet>, Status> {
        let caller = request.caller()?;
        access::manage(&caller).map_err(|d| d.into_error("rules", ""))?;
        let req = request.into_inner();
        if req.rule_ids.len() > rules::MAX_RULES {
            return Err(ServiceError::invalid("rule_ids", "lists too many rules").into());
        }
        let ids = req.rule_ids.iter().map(|id| parse_id("rule_ids", id)).collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(self.edit_rules(&caller, Edit::Reorder(ids), req.expected_version).await?))
    }

    async fn explain_routing(
        &self,
        request: Request<pb::ExplainRoutingRequest>,
    ) -> Result<Response<pb::RoutingExplanation>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.explain(&caller, request.into_inner()).await?))
    }

    async fn reassign_referral(
        &self,
        request: Request<pb::ReassignReferralRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        let caller = request.caller()?;
        let req = request.into_inner();
        access::manage(&caller).map_err(|d| d.into_error("referral", &req.referral_id))?;
        let (provider, note) = mapping::provider_and_note(&req.provider_code, &req.reason)?;
        Ok(Response::new(self.reassign_one(&caller, &req.referral_id, &provider, &note).await?))
    }

    async fn bulk_reassign_referrals(
        &self,
        request: Request<pb::BulkReassignReferralsRequest>,
    ) -> Result<Response<pb::BulkReassignReferralsResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.bulk_reassign(&caller, request.into_inner()).await?))
    }

    async fn withdraw_referral(
        &self,
        request: Request<pb::WithdrawReferralRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.withdraw(&caller, request.into_inner()).await?))
    }

    async fn reply_to_referral(
        &self,
        request: Request<pb::ReplyToReferralRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.reply(&caller, request.into_inner()).await?))
    }

    async fn report_referral_progress(
        &self,
        request: Request<pb::ReportReferralProgressRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.progress(&caller, request.into_inner()).await?))
    }

    async fn list_triage(
        &self,
        request: Request<pb::ListTriageRequest>,
    ) -> Result<Response<pb::ListTriageResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.triage(&caller, request.into_inner()).await?))
    }

    async fn assign_triaged(
        &self,
        request: Request<pb::AssignTriagedRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.place_triaged(&caller, request.into_inner()).await?))
    }

    async fn set_provider_sla(
        &self,
        request: Request<pb::SetProviderSlaRequest>,
    ) -> Result<Response<pb::ProviderSla>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.provider_sla(&caller, request.into_inner()).await?))
    }

    async fn get_provider_sla(
        &self,
        request: Request<pb::GetProviderSlaRequest>,
    ) -> Result<Response<pb::ProviderSla>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.read_provider_sla(&caller, request.into_inner()).await?))
    }
}
