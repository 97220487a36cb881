//! The member's agreement to the quote of an accepted referral (billing's `quote.accepted`): the provider may
//! now report progress and complete it (ADR 0013). Runs on the consumer's transaction.

use sqlx::PgConnection;
use uuid::Uuid;

use super::lifecycle::Lifecycle;
use crate::domain::ReferralStatus;
use crate::error::{FlowError, RoutingError};
use crate::store;

impl Lifecycle {
    /// Records that a member admin (`by_role`) accepted quote `quote_number` of referral `referral_id`. A replay
    /// changes nothing; a referral withdrawn meanwhile (the request was cancelled) is left as it is.
    pub async fn quote_accepted(
        &self,
        conn: &mut PgConnection,
        referral_id: Uuid,
        quote_number: &str,
        by_role: &str,
    ) -> Result<(), FlowError> {
        let unknown =
            || RoutingError::Rejected(format!("quote {quote_number} accepted for unknown referral {referral_id}"));
        // The request's lock, then the referral's: the lock order of every path.
        let referral = store::lock_referral(conn, referral_id).await?.ok_or_else(unknown)?;
        if referral.status != ReferralStatus::Accepted.as_str() {
            tracing::info!(
                %referral_id,
                quote = %quote_number,
                status = %referral.status,
                "quote accepted for a referral no longer accepted; left as it is"
            );
            return Ok(());
        }
        if store::mark_agreed(conn, referral_id, self.now()).await? {
            tracing::info!(
                %referral_id,
                quote = %quote_number,
                was = %referral.agreement,
                by = %by_role,
                "the member accepted the quote: work may start"
            );
        } else {
            tracing::info!(%referral_id, quote = %quote_number, "quote acceptance already recorded");
        }
        Ok(())
    }
}
