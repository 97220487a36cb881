//! Offering a request to a provider: routing it with the coordinator's rules (skipping the providers already
//! tried), recording the referral with its SLA timers and telling the provider, on its own subject, and everybody
//! else; re-routing after a decline or an expiry; the triage queue when nobody is left.

use std::borrow::Cow;

use id77_platform::{outbox, time};
use id77_proto::routing::v1::ReferralOffered;
use sqlx::PgConnection;
use uuid::Uuid;

use super::lifecycle::{Assignment, Lifecycle, Placement, member_facts, offer_facts};
use crate::domain::calendar;
use crate::domain::rules::{self, Choice};
use crate::domain::{Actor, Agreement, ReferralStatus};
use crate::error::{FlowError, RoutingError};
use crate::store::{self, MemberRow, OfferRow, Policy, ReferralRow, RoutedRequestRow};

/// What the caller of [`Lifecycle::route_after`] already read of a request: its member (`None`: unknown to
/// routing yet), its `previous` referrals, and the `policy` when read with them (a submission; issue 23:
/// statements per journey). `None`: read now, on the same transaction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Known<'a> {
    pub member: Option<&'a MemberRow>,
    pub previous: &'a [ReferralRow],
    pub policy: Option<&'a Policy>,
}

impl Lifecycle {
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
        let member = store::get_member(conn, request.member_id).await?;
        let previous = store::referrals_of(conn, request.request_id).await?;
        let known = Known { member: member.as_ref(), previous: &previous, policy: None };
        self.route_after(conn, request, offer, known, by, note).await
    }

    /// [`Self::route`] with what the caller already read of the request (`known`).
    pub(crate) async fn route_after(
        &self,
        conn: &mut PgConnection,
        request: &RoutedRequestRow,
        offer: &OfferRow,
        known: Known<'_>,
        by: &Actor,
        note: &str,
    ) -> Result<Placement, FlowError> {
        let tried: Vec<String> = known.previous.iter().map(|r| r.provider_code.clone()).collect();
        let attempt = known.previous.iter().map(|r| r.attempt).max().unwrap_or(0) + 1;
        let rule_set = match known.policy {
            Some(policy) => Cow::Borrowed(&policy.rules),
            None => Cow::Owned(store::current_rules(conn).await?),
        };
        let routing = rules::route(&rule_set.rules, &offer_facts(offer), &member_facts(known.member), &tried);
        let explanation = if attempt > 1 { format!("réorientation : {}", routing.summary) } else { routing.summary };
        let assignment = match routing.choice {
            Choice::Rule { rule_id, provider_code, .. } => Assignment {
                provider_code,
                rule: Some((rule_id, rule_set.version)),
                explanation: format!("Orientation automatique (règles v{}) : {explanation}", rule_set.version),
                by: by.clone(),
                note: note.to_owned(),
            },
            Choice::OfferDefault { provider_code } => Assignment {
                provider_code,
                rule: None,
                explanation: format!("Orientation automatique : {explanation}"),
                by: by.clone(),
                note: note.to_owned(),
            },
            Choice::Triage => {
                store::queue_unplaced(conn, request, &explanation, self.now()).await?;
                tracing::info!(request_id = %request.request_id, %explanation, "request queued for triage");
                return Ok(Placement::Triage);
            }
        };
        let referral = self.offer(conn, request, offer, attempt, assignment, known.policy).await?;
        Ok(referral.map_or(Placement::Triage, |r| Placement::Offered(Box::new(r))))
    }

    /// Records a referral to `assignment.provider_code`, arms its SLA timers and tells the provider. `None`
    /// when this attempt already exists (a replay). The provider's deadline comes from `policy` when the
    /// caller read it, else is read now.
    pub async fn offer(
        &self,
        conn: &mut PgConnection,
        request: &RoutedRequestRow,
        offer: &OfferRow,
        attempt: i32,
        assignment: Assignment,
        policy: Option<&Policy>,
    ) -> Result<Option<ReferralRow>, FlowError> {
        let now = self.now();
        let sla_days = self.sla_days(conn, &assignment.provider_code, policy).await?;
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
            offer_price_kind: Some(offer.price_kind.clone()),
        };
        let offered = ReferralOffered {
            referral_id: row.id.to_string(),
            request_id: row.request_id.to_string(),
            offer_id: row.offer_id.to_string(),
            offer_code: offer.code.clone(),
            offer_title: offer.title.clone(),
            member_id: row.member_id.to_string(),
            provider_code: row.provider_code.clone(),
            subject: request.subject.clone(),
            description: request.description.clone(),
            occurred_at: Some(time::to_proto(now)),
            rule_id: row.rule_id.map(|id| id.to_string()).unwrap_or_default(),
            rule_version: row.rule_version.unwrap_or(0),
            respond_by: Some(time::to_proto(schedule.respond_by)),
            attempt,
            assignment: row.assignment.clone(),
            price_kind: offer.price_kind.clone(),
            actor_user_id: assignment.by.user_id_string(),
            actor_role: assignment.by.role.clone(),
            actor_name: assignment.by.name.clone(),
            note: assignment.note.clone(),
        };
        // The provider's copy on its own subject, then everybody's; with the referral and its timers, or not at
        // all (a replay of this attempt).
        let mut events = outbox::Outgoing::new();
        events.for_provider(&row.provider_code, &offered);
        events.event(&offered);
        let Some(referral) = store::insert_referral(conn, &row, &schedule, events).await? else {
            return Ok(None);
        };
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

    /// A provider's deadline in business days: its own (from `policy`, else read), else the default.
    async fn sla_days(
        &self,
        conn: &mut PgConnection,
        provider_code: &str,
        policy: Option<&Policy>,
    ) -> Result<u32, FlowError> {
        let days = match policy {
            Some(policy) => policy.sla_days.get(provider_code).copied(),
            None => store::provider_sla(conn, provider_code).await?,
        };
        Ok(days.and_then(|d| u32::try_from(d).ok()).unwrap_or(self.sla.default_business_days))
    }

    /// After a decline or an expiry: the next candidate (routing's own decision), or the triage queue.
    pub async fn reroute(&self, conn: &mut PgConnection, referral: &ReferralRow) -> Result<Placement, FlowError> {
        let request = store::get_routed_request(conn, referral.request_id)
            .await?
            .ok_or_else(|| RoutingError::NotFound(format!("request {}", referral.request_id)))?;
        let Some(offer) = store::get_offer(conn, request.offer_id).await? else {
            store::queue_unplaced(conn, &request, "offre inconnue : à orienter par la coordination", self.now())
                .await?;
            return Ok(Placement::Triage);
        };
        self.route(conn, &request, &offer, &Actor::system(), "").await
    }

    /// The next attempt number of a request (1 for its first referral).
    pub async fn next_attempt(&self, conn: &mut PgConnection, request_id: Uuid) -> Result<i32, FlowError> {
        Ok(store::referrals_of(conn, request_id).await?.iter().map(|r| r.attempt).max().unwrap_or(0) + 1)
    }
}
