//! What the consumer does with each referral and notice: a [`Handler`]. Every [`Decider`] is one.

use std::time::Duration;

use futures::future::BoxFuture;
use id77_proto::routing::v1::ReferralOffered;

use crate::decision::{Decider, Decision};
use crate::incoming::Notice;

/// What the consumer does with each referral and notice. Every [`Decider`] is one (it answers at once); the
/// CLI's forward and print modes are others.
pub trait Handler: Send + Sync {
    /// The answer to a referral; `None` leaves it for later (it comes back after [`Handler::retry_later`]).
    fn referral<'a>(&'a self, referral: &'a ReferralOffered) -> BoxFuture<'a, Option<Decision>>;

    /// A withdrawal or a reminder; `false` leaves it for later. Logged and done by default.
    fn notice<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, bool> {
        match notice {
            Notice::Withdrawn(w) => tracing::warn!(
                referral_id = %w.referral_id,
                reason = %w.reason,
                after_acceptance = w.after_acceptance,
                "referral withdrawn"
            ),
            Notice::Reminded(r) => tracing::warn!(referral_id = %r.referral_id, "reminder: the deadline is near"),
        }
        Box::pin(async { true })
    }

    /// How long an unanswered referral waits before it comes back.
    fn retry_later(&self) -> Duration {
        Duration::from_secs(60)
    }
}

impl<D: Decider> Handler for D {
    fn referral<'a>(&'a self, referral: &'a ReferralOffered) -> BoxFuture<'a, Option<Decision>> {
        let decision = self.decide(referral);
        if let Err(error) = decision.to_wire() {
            // Not answered: it comes back later, when the decider may have been fixed.
            tracing::error!(%error, "the decider returned an invalid decision; referral left for later");
            return Box::pin(async { None });
        }
        Box::pin(async move { Some(decision) })
    }
}
