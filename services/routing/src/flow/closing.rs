//! Closing a referral: moving it to its next state (decided by whom, with its quote agreement on an accept) and
//! disarming its timers; taking it back, by a withdrawal (the coordinator, a reassignment) or for a cancelled
//! request, telling the provider on its own subject and everybody else.

use id77_platform::{outbox, time};
use id77_proto::routing::v1::ReferralWithdrawn;
use sqlx::PgConnection;

use super::lifecycle::Lifecycle;
use crate::domain::{Actor, Agreement, ReferralStatus, Transition};
use crate::error::{FlowError, RoutingError};
use crate::store::{self, ReferralRow};

impl Lifecycle {
    /// Moves a referral to its next state (by `transition`, decided `by`), records its agreement when given
    /// (an accept), disarms its timers and writes the `events` that announce it, in one statement.
    #[allow(clippy::too_many_arguments)]
    pub async fn close(
        &self,
        conn: &mut PgConnection,
        referral: &ReferralRow,
        transition: Transition,
        reason: &str,
        by: &Actor,
        agreement: Option<Agreement>,
        events: outbox::Outgoing,
    ) -> Result<ReferralRow, FlowError> {
        let status = ReferralStatus::parse(&referral.status)
            .ok_or_else(|| RoutingError::ReferralState(format!("referral {} has an unknown status", referral.id)))?;
        let next = status.apply(transition).map_err(|e| RoutingError::ReferralState(e.to_string()))?;
        let decision = store::Decision {
            status: next.as_str(),
            reason,
            at: self.now(),
            by,
            agreement: agreement.map(Agreement::as_str),
        };
        Ok(store::decide(conn, referral.id, decision, events).await?)
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
        // What the event says of the referral does not change with its closing.
        let event = ReferralWithdrawn {
            referral_id: referral.id.to_string(),
            request_id: referral.request_id.to_string(),
            offer_id: referral.offer_id.to_string(),
            member_id: referral.member_id.to_string(),
            provider_code: referral.provider_code.clone(),
            reason: reason.to_owned(),
            occurred_at: Some(time::to_proto(self.now())),
            actor_user_id: by.user_id_string(),
            actor_role: by.role.clone(),
            actor_name: by.name.clone(),
            after_acceptance,
        };
        let mut events = outbox::Outgoing::new();
        events.for_provider(&referral.provider_code, &event);
        events.event(&event);
        let closed = self.close(conn, referral, transition, reason, by, None, events).await?;
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
}
