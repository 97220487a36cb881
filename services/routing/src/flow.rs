//! The referral lifecycle, on the caller's transaction: offering a request to a provider (with its SLA timers),
//! closing a referral, re-routing to the next candidate or to the triage queue, manual reassignment,
//! withdrawal, and what a due timer does. Event handlers, the timer task and the gRPC API all go through here,
//! so every path writes its events to the outbox in the same transaction as its state.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use id77_platform::streams::referral_offered_subject;
use id77_platform::{outbox, time};
use id77_proto::routing::v1::{
    ReferralEscalated, ReferralExpired, ReferralOffered, ReferralReminded, ReferralWithdrawn,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::calendar;
use crate::domain::rules::{self, Choice, MemberFacts, MemberKind, OfferFacts};
use crate::domain::{Actor, Agreement, ReferralStatus, Transition};
use crate::store::{self, MemberRow, OfferRow, ReferralRow, RoutedRequestRow, TimerKind, TimerRow};

pub const SUBJECT_OFFERED: &str = "id77.routing.referral.offered";
pub const SUBJECT_ACCEPTED: &str = "id77.routing.referral.accepted";
pub const SUBJECT_DECLINED: &str = "id77.routing.referral.declined";
pub const SUBJECT_EXPIRED: &str = "id77.routing.referral.expired";
pub const SUBJECT_WITHDRAWN: &str = "id77.routing.referral.withdrawn";
pub const SUBJECT_REMINDED: &str = "id77.routing.referral.reminded";
pub const SUBJECT_ESCALATED: &str = "id77.routing.referral.escalated";

/// SLA settings of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sla {
    /// Deadline of a provider routing has no setting for.
    pub default_business_days: u32,
    /// Reminder this many business days before the deadline.
    pub remind_business_days: u32,
    /// Expiry this many business days after the deadline.
    pub grace_business_days: u32,
}

impl Default for Sla {
    fn default() -> Self {
        Self { default_business_days: 5, remind_business_days: 1, grace_business_days: 2 }
    }
}

/// What the lifecycle needs besides the connection.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub clock: Arc<dyn Clock>,
    pub sla: Sla,
}

/// Why a lifecycle step did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// A read model is not fed yet (the offer of a request): retry later.
    #[error("{0}")]
    NotYet(String),
    /// The step makes no sense for this data (unknown referral, wrong state...).
    #[error("{0}")]
    Refused(String),
    #[error("{0} not found")]
    NotFound(String),
}

/// Where a (re-)routing sent the request.
#[derive(Debug, Clone)]
pub enum Placement {
    Offered(Box<ReferralRow>),
    Triage,
}

impl Placement {
    pub fn provider_code(&self) -> &str {
        match self {
            Self::Offered(r) => &r.provider_code,
            Self::Triage => "",
        }
    }
}

pub fn offer_facts(offer: &OfferRow) -> OfferFacts {
    OfferFacts { code: offer.code.clone(), themes: offer.themes.clone(), provider_code: offer.provider_code.clone() }
}

pub fn member_facts(member: Option<&MemberRow>) -> MemberFacts {
    match member {
        None => MemberFacts::default(),
        Some(m) => MemberFacts {
            known: true,
            kind: MemberKind::parse(&m.kind),
            population: m.population,
            insee_code: m.insee_code.clone(),
            epci_siren: m.epci_siren.clone(),
            arrondissement: m.arrondissement.clone(),
        },
    }
}

/// How a referral was decided on: by a rule (of a rule set version), by default, or by hand.
#[derive(Debug, Clone)]
pub struct Assignment {
    pub provider_code: String,
    pub rule: Option<(Uuid, i32)>,
    pub explanation: String,
    /// Who placed it: routing itself (rules, re-routing) or the coordinator (triage, reassignment).
    pub by: Actor,
    /// The coordinator's note when it placed the request by hand (empty otherwise).
    pub note: String,
}

impl Lifecycle {
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Routes a request with the current rules, skipping providers already tried, and offers it (or queues
    /// it for triage when nobody is left). `by` placed it: routing itself, or the coordinator (with its note).
    pub async fn route(
        &self,
        conn: &mut PgConnection,
        request: &RoutedRequestRow,
        offer: &OfferRow,
        by: &Actor,
        note: &str,
    ) -> Result<Placement, FlowError> {
        let previous = store::referrals_of(conn, request.request_id).await?;
        let tried: Vec<String> = previous.iter().map(|r| r.provider_code.clone()).collect();
        let attempt = previous.iter().map(|r| r.attempt).max().unwrap_or(0) + 1;
        let member = store::get_member(conn, request.member_id).await?;
        let rule_set = store::current_rules(conn).await?;
        let routing = rules::route(&rule_set.rules, &offer_facts(offer), &member_facts(member.as_ref()), &tried);
        let explanation = if attempt > 1 { format!("re-routed: {}", routing.summary) } else { routing.summary };
        let assignment = match routing.choice {
            Choice::Rule { rule_id, provider_code, .. } => Assignment {
                provider_code,
                rule: Some((rule_id, rule_set.version)),
                explanation: format!("auto (rule set v{}): {explanation}", rule_set.version),
                by: by.clone(),
                note: note.to_owned(),
            },
            Choice::OfferDefault { provider_code } => Assignment {
                provider_code,
                rule: None,
                explanation: format!("auto: {explanation}"),
                by: by.clone(),
                note: note.to_owned(),
            },
            Choice::Triage => {
                store::queue_unplaced(conn, request, &explanation, self.now()).await?;
                tracing::info!(request_id = %request.request_id, %explanation, "request queued for triage");
                return Ok(Placement::Triage);
            }
        };
        let referral = self.offer(conn, request, offer, attempt, assignment).await?;
        Ok(referral.map_or(Placement::Triage, |r| Placement::Offered(Box::new(r))))
    }

    /// Records a referral to `assignment.provider_code`, arms its SLA timers and tells the provider. `None`
    /// when this attempt already exists (a replay).
    pub async fn offer(
        &self,
        conn: &mut PgConnection,
        request: &RoutedRequestRow,
        offer: &OfferRow,
        attempt: i32,
        assignment: Assignment,
    ) -> Result<Option<ReferralRow>, FlowError> {
        let now = self.now();
        let sla_days = store::provider_sla(conn, &assignment.provider_code)
            .await?
            .and_then(|d| u32::try_from(d).ok())
            .unwrap_or(self.sla.default_business_days);
        let schedule = calendar::schedule(now, sla_days, self.sla.remind_business_days, self.sla.grace_business_days);
        let row = ReferralRow {
            id: Uuid::now_v7(),
            request_id: request.request_id,
            offer_id: request.offer_id,
            member_id: request.member_id,
            provider_code: assignment.provider_code,
            status: ReferralStatus::Offered.as_str().to_owned(),
            reason: String::new(),
            assignment: assignment.explanation,
            offered_at: now,
            decided_at: None,
            attempt,
            rule_id: assignment.rule.map(|r| r.0),
            rule_version: assignment.rule.map(|r| r.1),
            respond_by: Some(schedule.respond_by),
            remind_at: Some(schedule.remind_at),
            escalated_at: None,
            expires_at: Some(schedule.expires_at),
            completed_at: None,
            progress: String::new(),
            agreement: Agreement::NotRequired.as_str().to_owned(),
            decided_by_user_id: None,
            decided_by_role: String::new(),
            decided_by_name: String::new(),
        };
        let Some(referral) = store::insert_referral(conn, &row).await? else {
            return Ok(None);
        };
        store::arm_timers(conn, referral.id, &schedule).await?;
        let offered = ReferralOffered {
            referral_id: referral.id.to_string(),
            request_id: referral.request_id.to_string(),
            offer_id: referral.offer_id.to_string(),
            offer_code: offer.code.clone(),
            offer_title: offer.title.clone(),
            member_id: referral.member_id.to_string(),
            provider_code: referral.provider_code.clone(),
            subject: request.subject.clone(),
            description: request.description.clone(),
            occurred_at: Some(time::to_proto(now)),
            rule_id: referral.rule_id.map(|id| id.to_string()).unwrap_or_default(),
            rule_version: referral.rule_version.unwrap_or(0),
            respond_by: Some(time::to_proto(schedule.respond_by)),
            attempt,
            assignment: referral.assignment.clone(),
            price_kind: offer.price_kind.clone(),
            actor_user_id: assignment.by.user_id_string(),
            actor_role: assignment.by.role.clone(),
            actor_name: assignment.by.name.clone(),
            note: assignment.note.clone(),
        };
        outbox::enqueue(conn, &referral_offered_subject(&referral.provider_code), &offered).await?;
        outbox::enqueue(conn, SUBJECT_OFFERED, &offered).await?;
        tracing::info!(
            referral_id = %referral.id,
            request_id = %referral.request_id,
            provider = %referral.provider_code,
            attempt,
            assignment = %referral.assignment,
            respond_by = %schedule.respond_by,
            "referral offered"
        );
        Ok(Some(referral))
    }

    /// Moves a referral to its next state (by `transition`, decided `by`), records its agreement when given
    /// (an accept), and disarms its timers.
    pub async fn close(
        &self,
        conn: &mut PgConnection,
        referral: &ReferralRow,
        transition: Transition,
        reason: &str,
        by: &Actor,
        agreement: Option<Agreement>,
    ) -> Result<ReferralRow, FlowError> {
        let status = ReferralStatus::parse(&referral.status)
            .ok_or_else(|| FlowError::Refused(format!("referral {} has an unknown status", referral.id)))?;
        let next = status.apply(transition).map_err(|e| FlowError::Refused(e.to_string()))?;
        let decision = store::Decision {
            status: next.as_str(),
            reason,
            at: self.now(),
            by,
            agreement: agreement.map(Agreement::as_str),
        };
        let closed = store::decide(conn, referral.id, decision).await?;
        store::disarm_timers(conn, referral.id).await?;
        Ok(closed)
    }

    /// After a decline or an expiry: the next candidate (routing's own decision), or the triage queue.
    pub async fn reroute(&self, conn: &mut PgConnection, referral: &ReferralRow) -> Result<Placement, FlowError> {
        let request = store::get_routed_request(conn, referral.request_id)
            .await?
            .ok_or_else(|| FlowError::NotFound(format!("request {}", referral.request_id)))?;
        let Some(offer) = store::get_offer(conn, request.offer_id).await? else {
            store::queue_unplaced(conn, &request, "the offer is unknown to routing", self.now()).await?;
            return Ok(Placement::Triage);
        };
        self.route(conn, &request, &offer, &Actor::system(), "").await
    }

    /// Withdraws an offered referral (the coordinator, a reassignment) and tells the provider (on its own
    /// subject) and everybody else. An accepted referral is refused: only a cancellation takes it back.
    pub async fn withdraw(
        &self,
        conn: &mut PgConnection,
        referral: &ReferralRow,
        reason: &str,
        by: &Actor,
    ) -> Result<ReferralRow, FlowError> {
        self.take_back(conn, referral, Transition::Withdraw, reason, by).await
    }

    /// The request was cancelled before its completion (requests decided it): withdraws its referral, offered
    /// or accepted (even with a completion requests never applied), and tells the provider and everybody else,
    /// with `after_acceptance` when the provider had accepted it.
    pub async fn cancel(
        &self,
        conn: &mut PgConnection,
        referral: &ReferralRow,
        reason: &str,
        by: &Actor,
    ) -> Result<ReferralRow, FlowError> {
        self.take_back(conn, referral, Transition::Cancel, reason, by).await
    }

    async fn take_back(
        &self,
        conn: &mut PgConnection,
        referral: &ReferralRow,
        transition: Transition,
        reason: &str,
        by: &Actor,
    ) -> Result<ReferralRow, FlowError> {
        let after_acceptance = referral.status == ReferralStatus::Accepted.as_str();
        let closed = self.close(conn, referral, transition, reason, by, None).await?;
        let event = ReferralWithdrawn {
            referral_id: closed.id.to_string(),
            request_id: closed.request_id.to_string(),
            offer_id: closed.offer_id.to_string(),
            member_id: closed.member_id.to_string(),
            provider_code: closed.provider_code.clone(),
            reason: reason.to_owned(),
            occurred_at: Some(time::to_proto(self.now())),
            actor_user_id: by.user_id_string(),
            actor_role: by.role.clone(),
            actor_name: by.name.clone(),
            after_acceptance,
        };
        outbox::enqueue(conn, &referral_offered_subject(&closed.provider_code), &event).await?;
        outbox::enqueue(conn, SUBJECT_WITHDRAWN, &event).await?;
        tracing::info!(
            referral_id = %closed.id,
            provider = %closed.provider_code,
            %reason,
            after_acceptance,
            by = %by.role,
            "referral withdrawn"
        );
        Ok(closed)
    }

    /// The coordinator (`by`) hands a request to `provider_code`: its open referral (offered) is withdrawn
    /// first; an accepted one cannot be taken back. Works from any referral of the request.
    pub async fn reassign(
        &self,
        conn: &mut PgConnection,
        referral_id: Uuid,
        provider_code: &str,
        note: &str,
        by: &Actor,
    ) -> Result<ReferralRow, FlowError> {
        let referral = store::get_referral_conn(conn, referral_id)
            .await?
            .ok_or_else(|| FlowError::NotFound(format!("referral {referral_id}")))?;
        store::lock_request(conn, referral.request_id).await?;
        if store::provider_sla(conn, provider_code).await?.is_none() {
            return Err(FlowError::Refused(format!("provider {provider_code} is unknown")));
        }
        if let Some(open) = store::open_referral_for_update(conn, referral.request_id).await? {
            if open.status == ReferralStatus::Accepted.as_str() {
                return Err(FlowError::Refused(format!(
                    "request {} was accepted by {}: it cannot be reassigned",
                    open.request_id, open.provider_code
                )));
            }
            if open.provider_code == provider_code {
                return Err(FlowError::Refused(format!("referral {} is already with {provider_code}", open.id)));
            }
            let why = if note.is_empty() { "reassigned by the coordinator".to_owned() } else { note.to_owned() };
            self.withdraw(conn, &open, &why, by).await?;
        }
        let request = store::get_routed_request(conn, referral.request_id)
            .await?
            .ok_or_else(|| FlowError::NotFound(format!("request {}", referral.request_id)))?;
        let offer = store::get_offer(conn, request.offer_id)
            .await?
            .ok_or_else(|| FlowError::NotYet(format!("offer {} not yet known", request.offer_id)))?;
        let attempt =
            store::referrals_of(conn, request.request_id).await?.iter().map(|r| r.attempt).max().unwrap_or(0) + 1;
        let explanation = if note.is_empty() {
            format!("manual: assigned to {provider_code} by the coordinator")
        } else {
            format!("manual: assigned to {provider_code} by the coordinator ({note})")
        };
        let assignment = Assignment {
            provider_code: provider_code.to_owned(),
            rule: None,
            explanation,
            by: by.clone(),
            note: note.to_owned(),
        };
        let created = self
            .offer(conn, &request, &offer, attempt, assignment)
            .await?
            .ok_or_else(|| FlowError::Refused("the request changed meanwhile; try again".to_owned()))?;
        store::resolve_triage(conn, request.request_id, self.now()).await?;
        Ok(created)
    }

    /// What a due timer does. A timer of a referral no longer offered does nothing.
    pub async fn fire(&self, conn: &mut PgConnection, timer: &TimerRow) -> Result<(), FlowError> {
        store::delete_timer(conn, timer.id).await?;
        let Some(referral) = store::referral_for_update(conn, timer.referral_id).await? else {
            return Ok(());
        };
        if referral.status != ReferralStatus::Offered.as_str() {
            return Ok(());
        }
        let now = self.now();
        let respond_by = referral.respond_by.map(time::to_proto);
        match TimerKind::parse(&timer.kind) {
            Some(TimerKind::Remind) => {
                let event = ReferralReminded {
                    referral_id: referral.id.to_string(),
                    request_id: referral.request_id.to_string(),
                    provider_code: referral.provider_code.clone(),
                    respond_by,
                    occurred_at: Some(time::to_proto(now)),
                };
                outbox::enqueue(conn, &referral_offered_subject(&referral.provider_code), &event).await?;
                outbox::enqueue(conn, SUBJECT_REMINDED, &event).await?;
                tracing::info!(referral_id = %referral.id, provider = %referral.provider_code, "provider reminded");
            }
            Some(TimerKind::Escalate) => {
                let member = store::get_member(conn, referral.member_id).await?;
                let referent = member.and_then(|m| m.referent_user_id).map(|r| r.to_string()).unwrap_or_default();
                store::mark_escalated(conn, referral.id, now).await?;
                let event = ReferralEscalated {
                    referral_id: referral.id.to_string(),
                    request_id: referral.request_id.to_string(),
                    member_id: referral.member_id.to_string(),
                    provider_code: referral.provider_code.clone(),
                    referent_user_id: referent.clone(),
                    respond_by,
                    expires_at: referral.expires_at.map(time::to_proto),
                    occurred_at: Some(time::to_proto(now)),
                };
                outbox::enqueue(conn, SUBJECT_ESCALATED, &event).await?;
                tracing::warn!(referral_id = %referral.id, provider = %referral.provider_code, %referent, "referral escalated");
            }
            Some(TimerKind::Expire) => {
                store::lock_request(conn, referral.request_id).await?;
                let closed = self
                    .close(conn, &referral, Transition::Expire, "no answer before the deadline", &Actor::system(), None)
                    .await?;
                let placement = self.reroute(conn, &closed).await?;
                let event = ReferralExpired {
                    referral_id: closed.id.to_string(),
                    request_id: closed.request_id.to_string(),
                    offer_id: closed.offer_id.to_string(),
                    member_id: closed.member_id.to_string(),
                    provider_code: closed.provider_code.clone(),
                    respond_by,
                    occurred_at: Some(time::to_proto(now)),
                    rerouted: true,
                    next_provider_code: placement.provider_code().to_owned(),
                };
                outbox::enqueue(conn, SUBJECT_EXPIRED, &event).await?;
                tracing::warn!(referral_id = %closed.id, provider = %closed.provider_code, next = placement.provider_code(), "referral expired");
            }
            None => tracing::warn!(timer_id = %timer.id, kind = %timer.kind, "unknown timer kind dropped"),
        }
        Ok(())
    }
}
