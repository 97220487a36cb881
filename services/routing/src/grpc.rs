//! gRPC transport: maps requests to store calls and rows to protobuf.

use id77_platform::auth::{Authenticator, Caller};
use id77_platform::error::FieldViolation;
use id77_platform::streams::is_valid_subject_token;
use id77_platform::{ErrorCode, ServiceError, page, time};
use id77_proto::routing::v1 as pb;
use id77_proto::routing::v1::routing_service_server::RoutingService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use id77_platform::consumer::HandleError;

use crate::access;
use crate::domain::rules::{self, Rule};
use crate::domain::{self, Actor, Agreement, ReferralStatus};
use crate::events;
use crate::flow::{self, FlowError, Lifecycle};
use crate::store::{self, ReferralRow, RuleSetRow};
use crate::triage;

/// Most referrals one bulk reassignment takes.
pub const MAX_BULK: usize = 100;

pub struct RoutingApi {
    pool: PgPool,
    /// Verifies the caller's access token (forwarded by the gateway) on every call.
    auth: Authenticator,
    lifecycle: Lifecycle,
}

impl RoutingApi {
    pub fn new(pool: PgPool, auth: Authenticator, lifecycle: Lifecycle) -> Self {
        Self { pool, auth, lifecycle }
    }
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

/// The coordinator acting through the API, named by its token.
fn coordinator(caller: &Caller) -> Actor {
    Actor::person(caller.user_id, "coordinator", caller.display_name())
}

/// A provider's agent answering through the API (the portal), named by its token.
fn provider_agent(caller: &Caller) -> Actor {
    Actor::person(caller.user_id, "provider_agent", caller.display_name())
}

fn referral_to_proto(r: ReferralRow) -> pb::Referral {
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
    }
}

fn parse_id(field: &str, raw: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw.trim()).map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

impl RoutingApi {
    async fn referral(&self, caller: &Caller, req: pb::GetReferralRequest) -> Result<pb::Referral, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("referral", &req.id))?;
        let id = parse_id("id", &req.id)?;
        let row = store::get_referral(&self.pool, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("referral", &id.to_string()))?;
        access::read_referral(caller, &row.provider_code).map_err(|d| d.into_error("referral", &id.to_string()))?;
        Ok(referral_to_proto(row))
    }

    async fn referrals(
        &self,
        caller: &Caller,
        req: pb::ListReferralsRequest,
    ) -> Result<pb::ListReferralsResponse, ServiceError> {
        access::may_read(caller).map_err(|d| d.into_error("provider", &req.provider_code))?;
        let request_id = match req.request_id.trim() {
            "" => None,
            raw => Some(parse_id("request_id", raw)?),
        };
        let provider_code = match req.provider_code.as_str() {
            "" => None,
            code if is_valid_subject_token(code) => Some(code),
            _ => return Err(ServiceError::invalid("provider_code", "is not a provider code")),
        };
        // An agent lists only its own provider's referrals.
        let provider_code = access::list_provider(caller, provider_code)
            .map_err(|d| d.into_error("provider", provider_code.unwrap_or_default()))?;
        let after = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let at_risk = req.at_risk.then(|| self.lifecycle.now());
        let rows = store::list_referrals(&self.pool, request_id, provider_code, at_risk, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |r| page::encode(&(r.offered_at, r.id)));
        Ok(pb::ListReferralsResponse {
            referrals: rows.into_iter().map(referral_to_proto).collect(),
            next_page_token: next,
        })
    }
}

fn flow_error(error: FlowError) -> ServiceError {
    match error {
        FlowError::Db(e) => e.into(),
        FlowError::NotYet(m) => ServiceError::new(ErrorCode::Unavailable, "NOT_YET_KNOWN", m),
        FlowError::Refused(m) => ServiceError::new(ErrorCode::FailedPrecondition, "REFERRAL_STATE", m),
        FlowError::NotFound(m) => ServiceError::new(ErrorCode::NotFound, "NOT_FOUND", format!("{m} not found")),
    }
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

fn rule_set_to_proto(set: &RuleSetRow) -> pb::RuleSet {
    pb::RuleSet {
        version: set.version,
        rules: set.rules.iter().enumerate().map(|(i, r)| rule_to_proto(i + 1, r)).collect(),
        created_at: time::to_proto_opt(set.created_at),
        created_by: set.created_by.map(|u| u.to_string()).unwrap_or_default(),
    }
}

/// A rule from its input, validated field by field (the rule set as a whole is validated after the edit).
fn rule_from_input(id: Uuid, input: Option<pb::RuleInput>) -> Result<Rule, ServiceError> {
    let input = input.ok_or_else(|| ServiceError::invalid("rule", "is required"))?;
    let condition =
        rules::parse_condition(&input.condition_json).map_err(|e| ServiceError::invalid("rule.condition", &e))?;
    Ok(Rule { id, name: input.name.trim().to_owned(), condition, provider_code: input.provider_code.trim().to_owned() })
}

fn invalid_rules(error: rules::Invalid) -> ServiceError {
    ServiceError::invalid_fields(
        error
            .0
            .into_iter()
            .map(|(field, description)| FieldViolation {
                field,
                description: if description.is_empty() { "is invalid".to_owned() } else { description },
            })
            .collect(),
    )
}

/// What to do to the rule set.
enum Edit {
    Create(Rule, usize),
    Update(Rule),
    Delete(Uuid),
    Reorder(Vec<Uuid>),
}

impl RoutingApi {
    async fn edit_rules(&self, caller: &Caller, edit: Edit, expected: i32) -> Result<pb::RuleSet, ServiceError> {
        access::manage(caller).map_err(|d| d.into_error("rules", ""))?;
        let mut tx = self.pool.begin().await?;
        store::lock_rules(&mut tx).await?;
        let current = store::current_rules(&mut tx).await?;
        if expected != 0 && expected != current.version {
            return Err(ServiceError::new(
                ErrorCode::FailedPrecondition,
                "RULES_CHANGED",
                format!("the rules are at version {}, not {expected}: reload and retry", current.version),
            ));
        }
        let rules = match edit {
            Edit::Create(rule, position) => rules::edit::insert(&current.rules, rule, position),
            Edit::Update(rule) => {
                let id = rule.id;
                rules::edit::replace(&current.rules, rule)
                    .ok_or_else(|| ServiceError::not_found("rule", &id.to_string()))?
            }
            Edit::Delete(id) => rules::edit::remove(&current.rules, id)
                .ok_or_else(|| ServiceError::not_found("rule", &id.to_string()))?,
            Edit::Reorder(ids) => {
                rules::edit::reorder(&current.rules, &ids).map_err(|e| ServiceError::invalid("rule_ids", &e))?
            }
        };
        let known = store::provider_codes(&mut tx).await?;
        rules::validate(&rules, |p| known.iter().any(|k| k == p)).map_err(invalid_rules)?;
        let version = current.version + 1;
        let now = self.lifecycle.now();
        store::insert_rule_set(&mut tx, version, &rules, caller.user_id, now).await?;
        tx.commit().await?;
        tracing::info!(version, rules = rules.len(), by = %caller.user_id, "routing rules changed");
        Ok(rule_set_to_proto(&RuleSetRow { version, rules, created_at: Some(now), created_by: Some(caller.user_id) }))
    }

    async fn explain(
        &self,
        caller: &Caller,
        req: pb::ExplainRoutingRequest,
    ) -> Result<pb::RoutingExplanation, ServiceError> {
        access::may_explain(caller).map_err(|d| d.into_error("request", &req.request_id))?;
        let request_id = parse_id("request_id", &req.request_id)?;
        let mut conn = self.pool.acquire().await?;
        let request = store::get_routed_request(&mut conn, request_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("request", &request_id.to_string()))?;
        let member = store::get_member(&mut conn, request.member_id).await?;
        access::explain(caller, member.as_ref().and_then(|m| m.referent_user_id))
            .map_err(|d| d.into_error("request", &request_id.to_string()))?;
        let referrals = store::referrals_of(&mut conn, request_id).await?;
        let offer = store::get_offer(&mut conn, request.offer_id).await?;
        let latest = referrals.last();
        // The rule set the latest referral was routed with (else the current one), and the providers tried
        // before it: the explanation reproduces that decision.
        let rule_set = match latest.and_then(|r| r.rule_version) {
            Some(v) => store::rules_at(&mut conn, v).await?,
            None => store::current_rules(&mut conn).await?,
        };
        let tried: Vec<String> = match latest {
            Some(l)
                if l.status == ReferralStatus::Declined.as_str() || l.status == ReferralStatus::Expired.as_str() =>
            {
                referrals.iter().map(|r| r.provider_code.clone()).collect()
            }
            Some(l) => referrals.iter().filter(|r| r.id != l.id).map(|r| r.provider_code.clone()).collect(),
            None => Vec::new(),
        };
        let offer_facts = offer.as_ref().map(flow::offer_facts).unwrap_or_default();
        let member_facts = flow::member_facts(member.as_ref());
        let routing = rules::route(&rule_set.rules, &offer_facts, &member_facts, &tried);
        let manual = latest.is_some_and(|l| l.assignment.starts_with("manual:"));
        let mut facts = vec![format!("offer={}", offer_facts.code)];
        facts.extend(offer_facts.themes.iter().map(|t| format!("theme={t}")));
        if member_facts.known {
            facts.push(format!("kind={}", member_facts.kind.map_or("unknown", |k| k.as_str())));
            facts.push(format!("population={}", member_facts.population));
            facts.push(format!("commune={}", member_facts.insee_code));
            facts.push(format!("epci={}", member_facts.epci_siren));
            facts.push(format!("arrondissement={}", member_facts.arrondissement));
        } else {
            facts.push("member=unknown to routing".to_owned());
        }
        let (outcome, provider_code, summary) = if manual {
            let l = latest.map(|l| (l.provider_code.clone(), l.assignment.clone())).unwrap_or_default();
            ("manual", l.0, l.1)
        } else {
            (
                routing.choice.outcome(),
                routing.choice.provider_code().unwrap_or_default().to_owned(),
                routing.summary.clone(),
            )
        };
        Ok(pb::RoutingExplanation {
            request_id: request_id.to_string(),
            member_id: request.member_id.to_string(),
            offer_id: request.offer_id.to_string(),
            rule_version: rule_set.version,
            facts,
            rules: routing
                .traces
                .into_iter()
                .map(|t| pb::RuleTrace {
                    rule_id: t.rule_id.to_string(),
                    position: u32::try_from(t.position).unwrap_or(u32::MAX),
                    name: t.name,
                    provider_code: t.provider_code,
                    matched: t.matched,
                    reasons: t.reasons,
                    skipped: t.skipped.unwrap_or_default(),
                })
                .collect(),
            outcome: outcome.to_owned(),
            provider_code,
            chosen_rule_id: if manual {
                String::new()
            } else {
                routing.choice.rule_id().map(|id| id.to_string()).unwrap_or_default()
            },
            summary,
            referrals: referrals.into_iter().map(referral_to_proto).collect(),
        })
    }

    async fn reassign_one(
        &self,
        caller: &Caller,
        referral_id: &str,
        provider_code: &str,
        note: &str,
    ) -> Result<pb::Referral, ServiceError> {
        let referral_id = parse_id("referral_id", referral_id)?;
        let mut tx = self.pool.begin().await?;
        let by = coordinator(caller);
        let created =
            self.lifecycle.reassign(&mut tx, referral_id, provider_code, note, &by).await.map_err(flow_error)?;
        tx.commit().await?;
        Ok(referral_to_proto(created))
    }

    fn provider_and_note(provider_code: &str, reason: &str) -> Result<(String, String), ServiceError> {
        let provider_code = provider_code.trim();
        if !is_valid_subject_token(provider_code) {
            return Err(ServiceError::invalid("provider_code", "is not a provider code"));
        }
        let note = domain::note(reason).map_err(|e| ServiceError::invalid("reason", e))?;
        Ok((provider_code.to_owned(), note))
    }

    async fn withdraw(&self, caller: &Caller, req: pb::WithdrawReferralRequest) -> Result<pb::Referral, ServiceError> {
        access::manage(caller).map_err(|d| d.into_error("referral", &req.referral_id))?;
        let id = parse_id("referral_id", &req.referral_id)?;
        let note = domain::note(&req.reason).map_err(|e| ServiceError::invalid("reason", e))?;
        let note = if note.is_empty() { "withdrawn by the coordinator".to_owned() } else { note };
        let mut tx = self.pool.begin().await?;
        let found = store::get_referral_conn(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("referral", &id.to_string()))?;
        store::lock_request(&mut tx, found.request_id).await?;
        let referral = store::referral_for_update(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("referral", &id.to_string()))?;
        let closed =
            self.lifecycle.withdraw(&mut tx, &referral, &note, &coordinator(caller)).await.map_err(flow_error)?;
        // The request is nobody's now: it waits in the coordinator's triage queue (requests shows it as triage).
        if let Some(request) = store::get_routed_request(&mut tx, closed.request_id).await? {
            store::queue_unplaced(&mut tx, &request, &format!("referral withdrawn: {note}"), self.lifecycle.now())
                .await?;
        }
        tx.commit().await?;
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
        let rows = triage::list(&self.pool, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |r| page::encode(&(r.received_at, r.request_id)));
        Ok(pb::ListTriageResponse {
            items: rows
                .into_iter()
                .map(|r| pb::TriageItem {
                    request_id: r.request_id.to_string(),
                    member_id: r.member_id.to_string(),
                    subject: r.subject,
                    description: r.description,
                    offer_id: r.offer_id.map(|id| id.to_string()).unwrap_or_default(),
                    reason: r.reason,
                    received_at: Some(time::to_proto(r.received_at)),
                })
                .collect(),
            next_page_token: next,
        })
    }

    async fn assign_triaged(
        &self,
        caller: &Caller,
        req: pb::AssignTriagedRequest,
    ) -> Result<pb::Referral, ServiceError> {
        access::manage(caller).map_err(|d| d.into_error("request", &req.request_id))?;
        let request_id = parse_id("request_id", &req.request_id)?;
        let offer_id = match req.offer_id.trim() {
            "" => None,
            raw => Some(parse_id("offer_id", raw)?),
        };
        let provider = match req.provider_code.trim() {
            "" => None,
            code if is_valid_subject_token(code) => Some(code),
            _ => return Err(ServiceError::invalid("provider_code", "is not a provider code")),
        };
        let note = domain::note(&req.note).map_err(|e| ServiceError::invalid("note", e))?;
        let mut tx = self.pool.begin().await?;
        let by = coordinator(caller);
        let referral = match self.lifecycle.assign_triaged(&mut tx, request_id, offer_id, provider, &note, &by).await {
            Ok(referral) => referral,
            Err(FlowError::Refused(m)) if m == triage::NEEDS_OFFER => {
                return Err(ServiceError::invalid("offer_id", &m));
            }
            Err(e) => return Err(flow_error(e)),
        };
        tx.commit().await?;
        Ok(referral_to_proto(referral))
    }
}

impl RoutingApi {
    /// The referral a provider's agent answers, checked against the caller: 403 for other roles, 404 for
    /// another provider's referral (or an unknown one).
    async fn answered_referral(
        &self,
        caller: &Caller,
        conn: &mut sqlx::PgConnection,
        raw_id: &str,
    ) -> Result<ReferralRow, ServiceError> {
        access::reply(caller, caller.provider_code.as_deref().unwrap_or_default())
            .map_err(|d| d.into_error("referral", raw_id))?;
        let id = parse_id("referral_id", raw_id)?;
        let row = store::get_referral_conn(conn, id)
            .await?
            .ok_or_else(|| ServiceError::not_found("referral", &id.to_string()))?;
        access::reply(caller, &row.provider_code).map_err(|d| d.into_error("referral", &id.to_string()))?;
        Ok(row)
    }

    async fn reply(&self, caller: &Caller, req: pb::ReplyToReferralRequest) -> Result<pb::Referral, ServiceError> {
        let mut tx = self.pool.begin().await?;
        let row = self.answered_referral(caller, &mut tx, &req.referral_id).await?;
        let decision = match pb::ReplyDecision::try_from(req.decision) {
            Ok(pb::ReplyDecision::Accept) => domain::WireDecision::Accept,
            Ok(pb::ReplyDecision::Decline) => domain::WireDecision::Decline,
            Ok(pb::ReplyDecision::Complete) => domain::WireDecision::Complete,
            Ok(pb::ReplyDecision::Unspecified) | Err(_) => domain::WireDecision::Unspecified,
        };
        let reply = domain::Reply::parse(decision, &req.reason, req.amount_cents, &req.quote_note)
            .map_err(|e| ServiceError::invalid(e.field, e.message))?;
        let by = provider_agent(caller);
        let outcome = events::apply_reply(&self.lifecycle, &mut tx, &row.provider_code, row.id, reply, &by)
            .await
            .map_err(handle_error)?;
        self.finish(tx, outcome).await
    }

    async fn progress(
        &self,
        caller: &Caller,
        req: pb::ReportReferralProgressRequest,
    ) -> Result<pb::Referral, ServiceError> {
        let mut tx = self.pool.begin().await?;
        let row = self.answered_referral(caller, &mut tx, &req.referral_id).await?;
        let note = req.note.trim();
        if note.is_empty() {
            return Err(ServiceError::invalid("note", "is required"));
        }
        if note.chars().count() > 2000 {
            return Err(ServiceError::invalid("note", "must be at most 2000 characters"));
        }
        if req.percent > 100 {
            return Err(ServiceError::invalid("percent", "must be between 0 and 100"));
        }
        let report = events::ProgressReport { sequence: None, note, percent: req.percent, at: None };
        let by = provider_agent(caller);
        let outcome = events::apply_progress(&self.lifecycle, &mut tx, &row.provider_code, row.id, report, &by)
            .await
            .map_err(handle_error)?;
        self.finish(tx, outcome).await
    }

    async fn finish(
        &self,
        tx: sqlx::Transaction<'static, sqlx::Postgres>,
        outcome: events::ReplyOutcome,
    ) -> Result<pb::Referral, ServiceError> {
        match outcome {
            events::ReplyOutcome::Applied(row) => {
                tx.commit().await?;
                Ok(referral_to_proto(*row))
            }
            events::ReplyOutcome::Ignored(why) => {
                Err(ServiceError::new(ErrorCode::FailedPrecondition, "REFERRAL_STATE", why))
            }
            // Nothing was written: dropping the transaction rolls back its locks.
            events::ReplyOutcome::Refused(error) => Err(ServiceError::invalid(error.field, error.message)),
            events::ReplyOutcome::Blocked { refusal, message } => {
                Err(ServiceError::new(ErrorCode::FailedPrecondition, refusal.code(), message))
            }
        }
    }
}

/// A reply the consumer path would retry or dead-letter, as an API error.
fn handle_error(error: HandleError) -> ServiceError {
    match error {
        HandleError::Retry(e) => ServiceError::new(ErrorCode::Unavailable, "RETRY", format!("{e:#}")),
        HandleError::Reject(e) => ServiceError::new(ErrorCode::NotFound, "NOT_FOUND", format!("{e:#}")),
    }
}

#[tonic::async_trait]
impl RoutingService for RoutingApi {
    async fn get_referral(&self, request: Request<pb::GetReferralRequest>) -> Result<Response<pb::Referral>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.referral(&caller, request.into_inner()).await?))
    }

    async fn list_referrals(
        &self,
        request: Request<pb::ListReferralsRequest>,
    ) -> Result<Response<pb::ListReferralsResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.referrals(&caller, request.into_inner()).await?))
    }

    async fn list_rules(&self, request: Request<pb::ListRulesRequest>) -> Result<Response<pb::RuleSet>, Status> {
        let caller = self.auth.caller(&request).await?;
        access::manage(&caller).map_err(|d| d.into_error("rules", ""))?;
        let mut conn = self.pool.acquire().await.map_err(ServiceError::from)?;
        let set = store::current_rules(&mut conn).await.map_err(ServiceError::from)?;
        Ok(Response::new(rule_set_to_proto(&set)))
    }

    async fn create_rule(&self, request: Request<pb::CreateRuleRequest>) -> Result<Response<pb::RuleSet>, Status> {
        let caller = self.auth.caller(&request).await?;
        access::manage(&caller).map_err(|d| d.into_error("rules", ""))?;
        let req = request.into_inner();
        let rule = rule_from_input(Uuid::now_v7(), req.rule)?;
        let position = usize::try_from(req.position).unwrap_or(usize::MAX);
        Ok(Response::new(self.edit_rules(&caller, Edit::Create(rule, position), req.expected_version).await?))
    }

    async fn update_rule(&self, request: Request<pb::UpdateRuleRequest>) -> Result<Response<pb::RuleSet>, Status> {
        let caller = self.auth.caller(&request).await?;
        access::manage(&caller).map_err(|d| d.into_error("rules", ""))?;
        let req = request.into_inner();
        let rule = rule_from_input(parse_id("id", &req.id)?, req.rule)?;
        Ok(Response::new(self.edit_rules(&caller, Edit::Update(rule), req.expected_version).await?))
    }

    async fn delete_rule(&self, request: Request<pb::DeleteRuleRequest>) -> Result<Response<pb::RuleSet>, Status> {
        let caller = self.auth.caller(&request).await?;
        access::manage(&caller).map_err(|d| d.into_error("rules", ""))?;
        let req = request.into_inner();
        let id = parse_id("id", &req.id)?;
        Ok(Response::new(self.edit_rules(&caller, Edit::Delete(id), req.expected_version).await?))
    }

    async fn reorder_rules(&self, request: Request<pb::ReorderRulesRequest>) -> Result<Response<pb::RuleSet>, Status> {
        let caller = self.auth.caller(&request).await?;
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
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.explain(&caller, request.into_inner()).await?))
    }

    async fn reassign_referral(
        &self,
        request: Request<pb::ReassignReferralRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        let caller = self.auth.caller(&request).await?;
        let req = request.into_inner();
        access::manage(&caller).map_err(|d| d.into_error("referral", &req.referral_id))?;
        let (provider, note) = Self::provider_and_note(&req.provider_code, &req.reason)?;
        Ok(Response::new(self.reassign_one(&caller, &req.referral_id, &provider, &note).await?))
    }

    async fn bulk_reassign_referrals(
        &self,
        request: Request<pb::BulkReassignReferralsRequest>,
    ) -> Result<Response<pb::BulkReassignReferralsResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        access::manage(&caller).map_err(|d| d.into_error("referrals", ""))?;
        let req = request.into_inner();
        if req.referral_ids.is_empty() || req.referral_ids.len() > MAX_BULK {
            return Err(ServiceError::invalid("referral_ids", "must list 1 to 100 referrals").into());
        }
        let (provider, note) = Self::provider_and_note(&req.provider_code, &req.reason)?;
        // One transaction per referral: one failure does not undo the others; each result says what happened.
        let mut results = Vec::with_capacity(req.referral_ids.len());
        for id in req.referral_ids {
            let result = self.reassign_one(&caller, &id, &provider, &note).await;
            results.push(match result {
                Ok(referral) => {
                    pb::BulkReassignResult { referral_id: id, referral: Some(referral), error: String::new() }
                }
                Err(error) => pb::BulkReassignResult { referral_id: id, referral: None, error: error.message },
            });
        }
        Ok(Response::new(pb::BulkReassignReferralsResponse { results }))
    }

    async fn withdraw_referral(
        &self,
        request: Request<pb::WithdrawReferralRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.withdraw(&caller, request.into_inner()).await?))
    }

    async fn reply_to_referral(
        &self,
        request: Request<pb::ReplyToReferralRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.reply(&caller, request.into_inner()).await?))
    }

    async fn report_referral_progress(
        &self,
        request: Request<pb::ReportReferralProgressRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.progress(&caller, request.into_inner()).await?))
    }

    async fn list_triage(
        &self,
        request: Request<pb::ListTriageRequest>,
    ) -> Result<Response<pb::ListTriageResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.triage(&caller, request.into_inner()).await?))
    }

    async fn assign_triaged(
        &self,
        request: Request<pb::AssignTriagedRequest>,
    ) -> Result<Response<pb::Referral>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(RoutingApi::assign_triaged(self, &caller, request.into_inner()).await?))
    }

    async fn set_provider_sla(
        &self,
        request: Request<pb::SetProviderSlaRequest>,
    ) -> Result<Response<pb::ProviderSla>, Status> {
        let caller = self.auth.caller(&request).await?;
        let req = request.into_inner();
        access::manage(&caller).map_err(|d| d.into_error("provider", &req.provider_code))?;
        if !is_valid_subject_token(&req.provider_code) {
            return Err(ServiceError::invalid("provider_code", "is not a provider code").into());
        }
        let days = i32::try_from(req.business_days)
            .ok()
            .filter(|d| (1..=60).contains(d))
            .ok_or_else(|| ServiceError::invalid("business_days", "must be between 1 and 60"))?;
        let set = store::set_provider_sla(&self.pool, &req.provider_code, days)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found("provider", &req.provider_code))?;
        Ok(Response::new(pb::ProviderSla {
            provider_code: req.provider_code,
            business_days: u32::try_from(set).unwrap_or_default(),
        }))
    }
}
