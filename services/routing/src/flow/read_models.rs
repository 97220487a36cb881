//! What routing keeps of other services' data to route on its own: the newest version of every offer the
//! catalogue published, with the provider it names, and the members membership approved or updated (territory,
//! kind, population, referent). Runs on the consumer's transaction.

use id77_platform::time;
use sqlx::PgConnection;

use crate::error::FlowError;
use crate::store::{self, MemberRow, OfferRow};
use crate::store_names;

/// Keeps a published offer (an older or the same version changes nothing) and its provider, named
/// `provider_name` (empty: keeps the name it has).
pub async fn offer_published(conn: &mut PgConnection, offer: &OfferRow, provider_name: &str) -> Result<(), FlowError> {
    store::upsert_provider(conn, &offer.provider_code, provider_name).await?;
    if store::upsert_offer(conn, offer).await? {
        let (offer_id, provider) = (offer.offer_id, &offer.provider_code);
        tracing::info!(%offer_id, code = %offer.code, version = offer.version, %provider, "offer known");
    } else {
        tracing::info!(offer_id = %offer.offer_id, version = offer.version, "older or same offer version ignored");
    }
    Ok(())
}

/// Keeps what membership says of a member (empty facts keep the stored ones); its referent only when
/// `set_referent` (an update names it, an approval does not).
pub async fn member_known(conn: &mut PgConnection, member: &MemberRow, set_referent: bool) -> Result<(), FlowError> {
    store::upsert_member(conn, member, set_referent, time::now()).await?;
    tracing::info!(member_id = %member.member_id, arrondissement = %member.arrondissement, "member known");
    Ok(())
}

/// Keeps the collectivité's name (membership's `member.approved`; empty: keeps the stored one).
pub async fn member_named(conn: &mut PgConnection, member_id: uuid::Uuid, name: &str) -> Result<(), FlowError> {
    Ok(store_names::set_member_name(conn, member_id, name, time::now()).await?)
}
