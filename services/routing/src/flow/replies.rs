//! A provider's answers to the referrals sent to it: a reply (accept, decline, complete) and progress reports,
//! with the same effects whether they came on the provider's NATS subject (the consumer's transaction) or through
//! the API (its own transaction, committed only when applied), recorded as decided by the provider's consumer or
//! its agent. The work on a billed offer waits for the member's agreement to its quote (ADR 0013).

use chrono::{DateTime, Utc};
use id77_platform::{outbox, time};
use id77_proto::routing::v1::{ReferralAccepted, ReferralCompleted, ReferralDeclined, ReferralProgressed};
use id77_proto::vocabulary::PriceKind;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::lifecycle::{Lifecycle, Placement};
use crate::domain::{self, Actor, Agreement, ReferralStatus, Reply, Work, WorkRefused};
use crate::error::{FlowError, RoutingError};
use crate::store::{self, ReferralRow};

/// Longest progress note kept.
pub const MAX_PROGRESS_CHARS: usize = 2000;

/// What became of a provider's reply.
#[derive(Debug)]
pub enum ReplyOutcome {
    /// Applied: the referral as it now is.
    Applied(Box<ReferralRow>),
    /// Not applicable in the referral's state (an accept or decline of a decided referral, a repeated
    /// completion): no effect. The API answers FAILED_PRECONDITION `REFERRAL_STATE`; on NATS it is acked.
    Ignored(String),
    /// Refused for the offer (an accept of an offer on quote without its amount, an amount for an offer with a
    /// set price): no effect. The API answers INVALID_ARGUMENT; on NATS the reply is rejected (dead letter).
    Refused(domain::ReplyError),
    /// Progress or completion the referral's state forbids (not accepted, withdrawn, or a quote the member has
    /// not accepted): no effect. The API answers FAILED_PRECONDITION with [`WorkRefused::code`]
    /// (`INVALID_TRANSITION`, `QUOTE_NOT_ACCEPTED`); on NATS the reply is rejected (dead letter).
    Blocked { refusal: WorkRefused, message: String },
}

/// A provider's progress report, as it came (NATS or API).
#[derive(Debug, Clone)]
pub struct ProgressReport<'a> {
    /// Orders the reports and makes a repeated one a no-op; `None` takes the next one.
    pub sequence: Option<i32>,
    pub note: &'a str,
    pub percent: u32,
    /// When the provider reported it (`None`: now).
    pub at: Option<DateTime<Utc>>,
}

fn rejected(message: String) -> FlowError {
    RoutingError::Rejected(message).into()
}

/// Whether work (progress, completion) may be reported on `referral` now.
fn check_work(referral: &ReferralRow, work: Work) -> Result<Result<(), ReplyOutcome>, FlowError> {
    let status = ReferralStatus::parse(&referral.status)
        .ok_or_else(|| rejected(format!("referral {} has an unknown status {}", referral.id, referral.status)))?;
    let agreement = Agreement::parse(&referral.agreement)
        .ok_or_else(|| rejected(format!("referral {} has an unknown agreement {}", referral.id, referral.agreement)))?;
    Ok(domain::check_work(status, &referral.reason, agreement).map_err(|refusal| {
        let message = refusal.message(referral.id, work);
        tracing::info!(referral_id = %referral.id, code = refusal.code(), %message, "work refused");
        ReplyOutcome::Blocked { refusal, message }
    }))
}

/// `referral.accepted`, with the amount the provider stated (an offer on quote).
fn accepted(
    referral: &ReferralRow,
    quote: Option<domain::StatedQuote>,
    by: &Actor,
    now: DateTime<Utc>,
) -> ReferralAccepted {
    let (amount_cents, quote_note) = quote.map(|q| (q.amount_cents, q.note)).unwrap_or_default();
    ReferralAccepted {
        referral_id: referral.id.to_string(),
        request_id: referral.request_id.to_string(),
        offer_id: referral.offer_id.to_string(),
        member_id: referral.member_id.to_string(),
        provider_code: referral.provider_code.clone(),
        occurred_at: Some(time::to_proto(now)),
        amount_cents,
        quote_note,
        actor_user_id: by.user_id_string(),
        actor_role: by.role.clone(),
        actor_name: by.name.clone(),
    }
}

impl Lifecycle {
    /// Applies a provider's reply (accept, decline, complete) to a referral sent to it, in the caller's
    /// transaction, recorded as decided `by` (the provider's consumer, or its agent). Rejects a reply to an
    /// unknown referral or to another provider's.
    pub async fn apply_reply(
        &self,
        conn: &mut PgConnection,
        provider: &str,
        referral_id: Uuid,
        reply: Reply,
        by: &Actor,
    ) -> Result<ReplyOutcome, FlowError> {
        // The request's lock, then the referral's: the lock order of every path.
        let referral = store::lock_referral(conn, referral_id).await?;
        self.apply_reply_locked(conn, provider, referral_id, referral, reply, by).await
    }

    /// [`Self::apply_reply`] to the referral as the caller locked it (`None`: unknown): a consumer's batch of
    /// replies locks its referrals in one statement ([`store::lock_referrals`]).
    pub async fn apply_reply_locked(
        &self,
        conn: &mut PgConnection,
        provider: &str,
        referral_id: Uuid,
        referral: Option<ReferralRow>,
        reply: Reply,
        by: &Actor,
    ) -> Result<ReplyOutcome, FlowError> {
        let Some(referral) = referral else {
            return Err(rejected(format!("{provider} replied to unknown referral {referral_id}")));
        };
        if referral.provider_code != provider {
            // A provider can only answer the referrals sent to it.
            return Err(rejected(format!(
                "{provider} replied to referral {referral_id}, which was offered to {}",
                referral.provider_code
            )));
        }
        let now = self.now();
        let Some(transition) = reply.transition() else {
            return self.complete(conn, provider, referral, by, now).await;
        };
        let status = ReferralStatus::parse(&referral.status)
            .ok_or_else(|| rejected(format!("referral {referral_id} has an unknown status {}", referral.status)))?;
        if let Err(error) = status.apply(transition) {
            tracing::info!(%referral_id, %provider, %error, "reply to a decided referral ignored");
            return Ok(ReplyOutcome::Ignored(format!("the referral is already {}", referral.status)));
        }
        let mut agreement = None;
        if let Reply::Accept(quote) = &reply {
            match self.agreement_on_accept(conn, &referral, quote.as_ref()).await? {
                Ok(on_accept) => agreement = Some(on_accept),
                Err(error) => return Ok(ReplyOutcome::Refused(error)),
            }
        }
        // An acceptance is announced by the statement that records it; a decline after its re-routing (the next
        // referral's events come first).
        let mut events = outbox::Outgoing::new();
        if let Reply::Accept(quote) = &reply {
            events.event(&accepted(&referral, quote.clone(), by, now));
        }
        let referral = self.close(conn, &referral, transition, reply.reason(), by, agreement, events).await?;
        if let Reply::Decline { reason } = reply {
            self.declined(conn, &referral, reason, by, now).await?;
        }
        tracing::info!(%referral_id, %provider, status = referral.status, "referral decided");
        Ok(ReplyOutcome::Applied(Box::new(referral)))
    }

    /// Completion of accepted work (a claim: requests confirms it with request.completed, ADR 0013).
    async fn complete(
        &self,
        conn: &mut PgConnection,
        provider: &str,
        referral: ReferralRow,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<ReplyOutcome, FlowError> {
        if let Err(blocked) = check_work(&referral, Work::Complete)? {
            return Ok(blocked);
        }
        let referral_id = referral.id;
        if store::mark_completed(conn, referral_id, now).await? {
            let completed = ReferralCompleted {
                referral_id: referral.id.to_string(),
                request_id: referral.request_id.to_string(),
                offer_id: referral.offer_id.to_string(),
                member_id: referral.member_id.to_string(),
                provider_code: referral.provider_code.clone(),
                occurred_at: Some(time::to_proto(now)),
                actor_user_id: by.user_id_string(),
                actor_role: by.role.clone(),
                actor_name: by.name.clone(),
            };
            outbox::enqueue(conn, &completed).await?;
            tracing::info!(%referral_id, %provider, by = %by.role, "referral completed");
            let row = store::get_referral_conn(conn, referral_id).await?.unwrap_or(referral);
            return Ok(ReplyOutcome::Applied(Box::new(row)));
        }
        tracing::info!(%referral_id, %provider, "completion repeated; ignored");
        Ok(ReplyOutcome::Ignored("the referral is already completed".to_owned()))
    }

    /// The quote gate of an accept (docs/adr/0013): the amount stated must fit the offer's price kind, and a
    /// billed offer's referral then waits for the member's agreement to its quote.
    async fn agreement_on_accept(
        &self,
        conn: &mut PgConnection,
        referral: &ReferralRow,
        quote: Option<&domain::StatedQuote>,
    ) -> Result<Result<Agreement, domain::ReplyError>, FlowError> {
        let referral_id = referral.id;
        let provider = &referral.provider_code;
        let price_kind = match &referral.offer_price_kind {
            // Read with the locked referral.
            Some(kind) => kind.clone(),
            None => store::get_offer(conn, referral.offer_id).await?.map(|offer| offer.price_kind).unwrap_or_default(),
        };
        let kind = PriceKind::parse(&price_kind);
        if let Err(error) = domain::check_quote(kind, quote) {
            tracing::info!(%referral_id, %provider, %price_kind, %error, "accept refused");
            return Ok(Err(error));
        }
        Ok(Ok(Agreement::on_accept(kind).unwrap_or_else(|| {
            // No price kind for this offer (no offer, an offer read before routing kept price kinds, or a kind
            // this build does not know; the read model keeps no other billed flag): nothing to wait for, rather
            // than a referral stuck behind a quote nobody may be asked to accept.
            tracing::warn!(
                %referral_id,
                offer_id = %referral.offer_id,
                %price_kind,
                "offer's price kind unknown to routing: the work does not wait for a quote"
            );
            Agreement::NotRequired
        })))
    }

    async fn declined(
        &self,
        conn: &mut PgConnection,
        referral: &ReferralRow,
        reason: String,
        by: &Actor,
        now: DateTime<Utc>,
    ) -> Result<(), FlowError> {
        // Re-route first (the next referral's events precede the decline in the outbox), so the decline
        // can say where the request went.
        let placement = self.reroute(conn, referral).await?;
        let declined = ReferralDeclined {
            referral_id: referral.id.to_string(),
            request_id: referral.request_id.to_string(),
            offer_id: referral.offer_id.to_string(),
            member_id: referral.member_id.to_string(),
            provider_code: referral.provider_code.clone(),
            reason,
            occurred_at: Some(time::to_proto(now)),
            rerouted: true,
            next_provider_code: placement.provider_code().to_owned(),
            actor_user_id: by.user_id_string(),
            actor_role: by.role.clone(),
            actor_name: by.name.clone(),
        };
        outbox::enqueue(conn, &declined).await?;
        if let Placement::Triage = placement {
            tracing::info!(referral_id = %referral.id, "declined; no candidate left: triage queue");
        }
        Ok(())
    }

    /// Records a progress report of a provider on its accepted referral (NATS or API), made `by` its consumer or
    /// its agent. Refused (no effect) on a referral not accepted, or whose quote the member has not accepted.
    pub async fn apply_progress(
        &self,
        conn: &mut PgConnection,
        provider: &str,
        referral_id: Uuid,
        report: ProgressReport<'_>,
        by: &Actor,
    ) -> Result<ReplyOutcome, FlowError> {
        let unknown = || rejected(format!("{provider} reported progress on unknown referral {referral_id}"));
        // The request's lock, then the referral's: the lock order of every path.
        let referral = store::lock_referral(conn, referral_id).await?.ok_or_else(unknown)?;
        if referral.provider_code != provider {
            return Err(rejected(format!(
                "{provider} reported progress on referral {referral_id} of another provider"
            )));
        }
        if let Err(blocked) = check_work(&referral, Work::Progress)? {
            return Ok(blocked);
        }
        let ProgressReport { sequence, note, percent, at } = report;
        let note: String = note.trim().chars().filter(|c| !c.is_control()).take(MAX_PROGRESS_CHARS).collect();
        let sequence = match sequence {
            Some(s) => s,
            None => store::next_progress_sequence(conn, referral_id).await?,
        };
        let percent = i32::try_from(percent.min(100)).unwrap_or(100);
        let at = at.unwrap_or_else(|| self.now());
        if store::add_progress(conn, referral_id, sequence, &note, percent, at).await? {
            // Requests moves the request to in_progress.
            let progressed = ReferralProgressed {
                referral_id: referral.id.to_string(),
                request_id: referral.request_id.to_string(),
                member_id: referral.member_id.to_string(),
                provider_code: referral.provider_code.clone(),
                sequence: u32::try_from(sequence).unwrap_or(0),
                note,
                percent: u32::try_from(percent).unwrap_or(0),
                occurred_at: Some(time::to_proto(at)),
                actor_user_id: by.user_id_string(),
                actor_role: by.role.clone(),
                actor_name: by.name.clone(),
            };
            outbox::enqueue(conn, &progressed).await?;
            tracing::info!(%referral_id, %provider, sequence, percent, "progress reported");
        }
        let row = store::get_referral_conn(conn, referral_id).await?.unwrap_or(referral);
        Ok(ReplyOutcome::Applied(Box::new(row)))
    }

    /// A provider's agent replies through the API (the portal) to `referral_id`, sent to `provider`: applied in
    /// its own transaction, committed only when applied (nothing is written otherwise). What the consumer path
    /// would retry or dead-letter is reported as such ([`FlowError::unapplied`]).
    pub async fn reply_by_agent(
        &self,
        pool: &PgPool,
        provider: &str,
        referral_id: Uuid,
        reply: Reply,
        by: &Actor,
    ) -> Result<ReplyOutcome, FlowError> {
        let mut tx = pool.begin().await?;
        let outcome =
            self.apply_reply(&mut tx, provider, referral_id, reply, by).await.map_err(FlowError::unapplied)?;
        if let ReplyOutcome::Applied(_) = outcome {
            tx.commit().await?;
        }
        Ok(outcome)
    }

    /// A provider's agent reports progress through the API, like [`Self::reply_by_agent`].
    pub async fn progress_by_agent(
        &self,
        pool: &PgPool,
        provider: &str,
        referral_id: Uuid,
        report: ProgressReport<'_>,
        by: &Actor,
    ) -> Result<ReplyOutcome, FlowError> {
        let mut tx = pool.begin().await?;
        let outcome =
            self.apply_progress(&mut tx, provider, referral_id, report, by).await.map_err(FlowError::unapplied)?;
        if let ReplyOutcome::Applied(_) = outcome {
            tx.commit().await?;
        }
        Ok(outcome)
    }
}
