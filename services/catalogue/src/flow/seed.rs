//! Loading the catalogue seed at start-up. Idempotent: providers and offers are upserted by code, an offer
//! whose content changed gets the next version, and every offer written is announced with `OfferPublished`
//! (plus `OfferUpdated` for a new version) in the same transaction (outbox). Loading an unchanged seed writes
//! and publishes nothing. Offers the operator edited, drafted or archived through the API are left alone.

use anyhow::Context;
use sqlx::PgPool;
use uuid::Uuid;

use super::offers::{announce_published, announce_updated};
use crate::domain::{self, Catalogue, Change, OfferStatus, Provider};
use crate::proto_map::offer_to_proto;
use crate::store;

/// What a seed load wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    pub providers_written: usize,
    pub offers_created: usize,
    pub offers_updated: usize,
}

/// Writes the seed's changes and their events in one transaction, under a lock so that replicas starting
/// together load it once.
pub async fn load(pool: &PgPool, seed: &Catalogue) -> anyhow::Result<Loaded> {
    let mut tx = pool.begin().await?;
    store::lock_seed(&mut tx).await?;
    let providers = store::all_providers(&mut tx).await?;
    let providers: Vec<Provider> = providers.iter().filter_map(store::ProviderRow::to_domain).collect();
    let offers = store::all_offers(&mut tx).await?;
    let offers: Vec<_> = offers.iter().filter_map(store::OfferRow::to_domain).collect();
    let plan = domain::plan(seed, &providers, &offers, Uuid::now_v7);
    if !plan.absent.is_empty() {
        tracing::warn!(offers = ?plan.absent, "stored offers missing from the seed are kept unchanged");
    }
    if plan.is_empty() {
        tx.rollback().await?;
        return Ok(Loaded::default());
    }
    for provider in &plan.providers {
        store::upsert_provider(&mut tx, provider).await?;
        tracing::info!(provider = %provider.code, "provider written");
    }
    let mut loaded = Loaded { providers_written: plan.providers.len(), ..Loaded::default() };
    for planned in &plan.offers {
        let provider = seed
            .providers
            .iter()
            .find(|p| p.code == planned.content.provider_code)
            .with_context(|| format!("offer {} refers to an unknown provider", planned.content.code))?;
        let row =
            store::write_offer(&mut tx, planned.id, planned.version, OfferStatus::Published, "seed", &planned.content)
                .await?;
        anyhow::ensure!(
            row.id == planned.id,
            "offer {} changed id while the seed lock was held ({} != {})",
            row.code,
            row.id,
            planned.id
        );
        let offer = offer_to_proto(&row)?;
        match planned.change {
            Change::New => loaded.offers_created += 1,
            Change::Changed { previous_version } => {
                announce_updated(&mut tx, &offer, provider, previous_version).await?;
                loaded.offers_updated += 1;
            }
        }
        announce_published(&mut tx, offer, provider).await?;
        tracing::info!(offer = %planned.content.code, id = %planned.id, version = planned.version, change = ?planned.change, "offer published");
    }
    store::refresh_search_words(&mut tx).await?;
    tx.commit().await?;
    Ok(loaded)
}
