//! The operator's providers: creating one, and changing one, which re-announces each of its published offers
//! as a new version (read models carry the provider with each offer).

use id77_platform::ServiceError;
use sqlx::{PgConnection, PgPool};

use super::Written;
use super::offers::announce_new_version;
use crate::domain::{self, OfferStatus, Provider, ProviderInput};
use crate::error::{CatalogueError, invalid_under};
use crate::store;

/// Creates a provider (`create`) or updates an existing one; an unchanged provider writes nothing.
pub async fn write(pool: &PgPool, input: ProviderInput, create: bool) -> Result<Written<Provider>, ServiceError> {
    let provider = domain::validate_provider(input).map_err(|v| invalid_under("provider.", v))?;
    let mut tx = pool.begin().await?;
    if create {
        if !store::insert_provider(&mut tx, &provider).await? {
            return Err(CatalogueError::ProviderCodeTaken(provider.code).into());
        }
    } else {
        let before = store::provider_by_code(&mut tx, &provider.code)
            .await?
            .ok_or_else(|| ServiceError::not_found("provider", &provider.code))?;
        if before.to_domain().as_ref() == Some(&provider) {
            return Ok(Written { value: provider, changed: false });
        }
        store::update_provider(&mut tx, &provider).await?;
        republish_offers_of(&mut tx, &provider).await?;
    }
    tx.commit().await?;
    tracing::info!(provider = %provider.code, create, "provider written");
    Ok(Written { value: provider, changed: true })
}

/// Each published offer of `provider` as its next version, announced with the provider as it is now.
async fn republish_offers_of(conn: &mut PgConnection, provider: &Provider) -> Result<(), ServiceError> {
    let offers = store::all_offers(conn).await?;
    for row in offers.iter().filter(|o| o.provider_code == provider.code && o.status == OfferStatus::Published.as_str())
    {
        let stored = row.to_domain().ok_or_else(|| ServiceError::internal("reading an offer", &row.code))?;
        let version = row.version.saturating_add(1);
        let written =
            store::write_offer(conn, row.id, version, OfferStatus::Published, &row.managed_by, &stored.content).await?;
        announce_new_version(conn, &written, provider, row.version).await?;
    }
    Ok(())
}
