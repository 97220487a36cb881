//! What a due SLA timer does (ADR 0007): reminds the provider (on its own subject and to everybody), escalates to
//! the member's referent, or expires the referral and re-routes the request. Each timer fires in its own
//! transaction, so replicas share the work and a crash only delays a timer. A referral has one timer at a time:
//! each arms the next of its schedule when it fires (reminder, deadline, expiry).

use id77_platform::{outbox, time};
use id77_proto::routing::v1::{ReferralEscalated, ReferralExpired, ReferralReminded};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

use super::lifecycle::Lifecycle;
use crate::domain::{Actor, ReferralStatus, Transition};
use crate::error::FlowError;
use crate::store::{self, ReferralRow, TimerKind, TimerRow};

impl Lifecycle {
    /// Fires every timer due now by the service's clock, one transaction per timer (`FOR UPDATE SKIP LOCKED`);
    /// returns how many fired.
    pub async fn fire_due(&self, pool: &PgPool, shutdown: &CancellationToken) -> Result<usize, FlowError> {
        let mut fired = 0;
        while !shutdown.is_cancelled() {
            let mut tx = pool.begin().await?;
            let Some(timer) = store::due_timers(&mut tx, self.now(), 1).await?.into_iter().next() else {
                return Ok(fired);
            };
            self.fire(&mut tx, &timer).await?;
            tx.commit().await?;
            fired += 1;
        }
        Ok(fired)
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
        let kind = TimerKind::parse(&timer.kind);
        // The next timer of the chain, armed before this one acts: an expiry that closes the referral disarms
        // every timer it has.
        if let Some(next) = kind.and_then(TimerKind::next)
            && let Some(due) = due_of(&referral, next)
        {
            store::arm_timer(conn, referral.id, next, due).await?;
        }
        match kind {
            Some(TimerKind::Remind) => self.remind(conn, &referral).await,
            Some(TimerKind::Escalate) => self.escalate(conn, &referral).await,
            Some(TimerKind::Expire) => self.expire(conn, &referral).await,
            None => {
                tracing::warn!(timer_id = %timer.id, kind = %timer.kind, "unknown timer kind dropped");
                Ok(())
            }
        }
    }

    async fn remind(&self, conn: &mut PgConnection, referral: &ReferralRow) -> Result<(), FlowError> {
        let event = ReferralReminded {
            referral_id: referral.id.to_string(),
            request_id: referral.request_id.to_string(),
            provider_code: referral.provider_code.clone(),
            respond_by: time::to_proto_opt(referral.respond_by),
            occurred_at: Some(time::to_proto(self.now())),
        };
        // The provider's copy on its own subject, then everybody's, in one statement.
        let mut events = outbox::Outgoing::new();
        events.for_provider(&referral.provider_code, &event);
        events.event(&event);
        events.write(conn).await?;
        tracing::info!(referral_id = %referral.id, provider = %referral.provider_code, "provider reminded");
        Ok(())
    }

    async fn escalate(&self, conn: &mut PgConnection, referral: &ReferralRow) -> Result<(), FlowError> {
        let now = self.now();
        let member = store::get_member(conn, referral.member_id).await?;
        let referent = member.and_then(|m| m.referent_user_id).map(|r| r.to_string()).unwrap_or_default();
        store::mark_escalated(conn, referral.id, now).await?;
        let event = ReferralEscalated {
            referral_id: referral.id.to_string(),
            request_id: referral.request_id.to_string(),
            member_id: referral.member_id.to_string(),
            provider_code: referral.provider_code.clone(),
            referent_user_id: referent.clone(),
            respond_by: time::to_proto_opt(referral.respond_by),
            expires_at: referral.expires_at.map(time::to_proto),
            occurred_at: Some(time::to_proto(now)),
        };
        outbox::enqueue(conn, &event).await?;
        tracing::warn!(referral_id = %referral.id, provider = %referral.provider_code, %referent, "referral escalated");
        Ok(())
    }

    async fn expire(&self, conn: &mut PgConnection, referral: &ReferralRow) -> Result<(), FlowError> {
        let now = self.now();
        store::lock_request(conn, referral.request_id).await?;
        let closed = self
            .close(
                conn,
                referral,
                Transition::Expire,
                "no answer before the deadline",
                &Actor::system(),
                None,
                outbox::Outgoing::new(),
            )
            .await?;
        let placement = self.reroute(conn, &closed).await?;
        let event = ReferralExpired {
            referral_id: closed.id.to_string(),
            request_id: closed.request_id.to_string(),
            offer_id: closed.offer_id.to_string(),
            member_id: closed.member_id.to_string(),
            provider_code: closed.provider_code.clone(),
            respond_by: time::to_proto_opt(referral.respond_by),
            occurred_at: Some(time::to_proto(now)),
            rerouted: true,
            next_provider_code: placement.provider_code().to_owned(),
        };
        outbox::enqueue(conn, &event).await?;
        tracing::warn!(referral_id = %closed.id, provider = %closed.provider_code, next = placement.provider_code(), "referral expired");
        Ok(())
    }
}

/// When a referral's timer of `kind` is due, by its schedule as recorded.
fn due_of(referral: &ReferralRow, kind: TimerKind) -> Option<chrono::DateTime<chrono::Utc>> {
    match kind {
        TimerKind::Remind => referral.remind_at,
        TimerKind::Escalate => referral.respond_by,
        TimerKind::Expire => referral.expires_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_timer_arms_the_next_of_the_schedule_and_the_expiry_none() {
        assert_eq!(TimerKind::Remind.next(), Some(TimerKind::Escalate));
        assert_eq!(TimerKind::Escalate.next(), Some(TimerKind::Expire));
        assert_eq!(TimerKind::Expire.next(), None);
    }
}
