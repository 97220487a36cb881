//! What requests tells routing: a request submitted (routed by the rules, or queued for the coordinator when it
//! names no offer) and a request cancelled (its referral taken back, offered or accepted: requests decides a
//! request's fate, ADR 0013). Both run on the consumer's transaction.

use sqlx::PgConnection;
use uuid::Uuid;

use super::lifecycle::Lifecycle;
use super::offering::Known;
use crate::domain::{self, Actor};
use crate::error::{FlowError, RoutingError};
use crate::store::{self, RoutedRequestRow};
use crate::store_names::{self, Requester};
use crate::store_submissions::{self, SubmissionContext};

/// A request as requests submitted it.
#[derive(Debug, Clone)]
pub struct Submission {
    pub request_id: Uuid,
    pub member_id: Uuid,
    /// `None` for an open orientation request.
    pub offer_id: Option<Uuid>,
    pub subject: String,
    pub description: String,
    /// Who submitted it (empty for an event published before requests carried it).
    pub requester: Requester,
}

impl Lifecycle {
    /// Routes a submitted request: rules, then the offer's provider, then the triage queue. An open request (no
    /// offer) goes to the coordinator's triage queue. Not yet routable while its offer is unknown to routing, nor
    /// while its member is unknown if `member_may_be_late` (membership's event may come after it); a replay
    /// changes nothing. Three statements when routed (issue 23): what it needs to know, the request with its
    /// requester, the referral.
    pub async fn request_submitted(
        &self,
        conn: &mut PgConnection,
        submission: Submission,
        member_may_be_late: bool,
    ) -> Result<(), FlowError> {
        let Some(offer_id) = submission.offer_id else {
            // An open "orientation" request: no offer, so no automatic provider. The coordinator triages it.
            let (now, s) = (self.now(), &submission);
            store_names::remember_requester(conn, s.request_id, &s.requester, now).await?;
            if store::queue_for_triage(conn, s.request_id, s.member_id, &s.subject, &s.description, now).await? {
                tracing::info!(request_id = %s.request_id, "open request queued for triage");
            }
            return Ok(());
        };
        let context = store_submissions::submission_context(conn, offer_id, submission.member_id).await?;
        self.route_submitted(conn, submission, offer_id, context, member_may_be_late).await
    }

    /// [`Self::request_submitted`] for a request naming `offer_id`, with its context read by the caller (a
    /// consumer's batch reads its requests' contexts in one statement: [`store_submissions::submission_contexts`]).
    pub async fn route_submitted(
        &self,
        conn: &mut PgConnection,
        submission: Submission,
        offer_id: Uuid,
        context: SubmissionContext,
        member_may_be_late: bool,
    ) -> Result<(), FlowError> {
        let Submission { request_id, member_id, subject, description, requester, .. } = submission;
        let now = self.now();
        let SubmissionContext { offer, member, policy } = context;
        let Some(offer) = offer else {
            // The catalogue's event has not reached us yet: try again later.
            let message = format!("offer {offer_id} of request {request_id} not yet known");
            return Err(RoutingError::NotYetKnown(message).into());
        };
        if member.is_none() && member_may_be_late {
            let message = format!("member {member_id} of request {request_id} not yet known");
            return Err(RoutingError::NotYetKnown(message).into());
        }
        let request = RoutedRequestRow { request_id, member_id, offer_id, subject, description };
        if !store::insert_routed_request(conn, &request, Some(&requester), now).await? {
            tracing::info!(%request_id, "request already routed; replay ignored");
            return Ok(());
        }
        // A request routing did not know has no referral yet: nothing tried before.
        let known = Known { member: member.as_ref(), previous: &[], policy: Some(&policy) };
        self.route_after(conn, &request, &offer, known, &Actor::system(), "").await?;
        Ok(())
    }

    /// Withdraws the current referral of a cancelled request, offered or accepted (even completed: requests, the
    /// arbiter of a request's fate, cancelled it first, so a completion it never applied is overruled), and takes
    /// the request out of the triage queue. `why` is the member's reason, as it came.
    pub async fn request_cancelled(
        &self,
        conn: &mut PgConnection,
        request_id: Uuid,
        why: &str,
        by: &Actor,
    ) -> Result<(), FlowError> {
        // Lock order of every path: the request, then its referral.
        store::lock_request(conn, request_id).await?;
        store::resolve_triage(conn, request_id, self.now()).await?;
        let Some(open) = store::open_referral_for_update(conn, request_id).await? else {
            // None, or already withdrawn (a replay of this cancellation), declined, expired: nothing to take back.
            tracing::info!(%request_id, "cancelled request has no open referral");
            return Ok(());
        };
        let reason = domain::cancellation_reason(&domain::note(why).unwrap_or_default());
        let withdrawn = self.cancel(conn, &open, &reason, by).await?;
        tracing::info!(
            %request_id,
            referral_id = %withdrawn.id,
            was = %open.status,
            completed = open.completed_at.is_some(),
            by = %by.role,
            "cancelled request's referral withdrawn"
        );
        Ok(())
    }
}
