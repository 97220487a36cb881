//! The operator's offers: drafting, editing (a published offer gets its next version), publishing and
//! archiving, each in one transaction with its events; and the offer events themselves, which a provider's
//! change and a seed load announce too. Every version that becomes the published one is announced with
//! `OfferPublished` (and `OfferUpdated` when it replaces another), so that routing, requests and billing keep
//! their read models without calling back.

use std::collections::HashSet;

use id77_platform::{ServiceError, outbox, time};
use id77_proto::catalogue::v1 as pb;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::Written;
use crate::domain::{self, Edit, OfferInput, OfferKey, OfferStatus, Provider, StoredOffer};
use crate::error::{CatalogueError, invalid_under};
use crate::proto_map::{offer_to_proto, provider_to_proto};
use crate::store::{self, OfferRow, ProviderRow};

/// Who edits through the API (`managed_by`): the seed leaves such offers alone.
pub const OPERATOR: &str = "operator";

/// Announces the published version of an offer, with its provider.
pub(super) async fn announce_published(
    conn: &mut PgConnection,
    offer: pb::Offer,
    provider: &Provider,
) -> Result<(), sqlx::Error> {
    let event = pb::OfferPublished { offer: Some(offer), provider: Some(provider_to_proto(provider)) };
    outbox::enqueue(conn, &event).await.map(|_| ())
}

/// Announces that `offer` replaces its `previous_version`.
pub(super) async fn announce_updated(
    conn: &mut PgConnection,
    offer: &pb::Offer,
    provider: &Provider,
    previous_version: i32,
) -> Result<(), sqlx::Error> {
    let event = pb::OfferUpdated {
        offer: Some(offer.clone()),
        provider: Some(provider_to_proto(provider)),
        previous_version,
        occurred_at: Some(time::to_proto(time::now())),
    };
    outbox::enqueue(conn, &event).await.map(|_| ())
}

/// Announces that a published offer is withdrawn from the catalogue.
async fn announce_archived(conn: &mut PgConnection, offer: &OfferRow, reason: &str) -> Result<(), sqlx::Error> {
    let event = pb::OfferArchived {
        offer_id: offer.id.to_string(),
        code: offer.code.clone(),
        version: offer.version,
        provider_code: offer.provider_code.clone(),
        reason: reason.to_owned(),
        occurred_at: Some(time::to_proto(time::now())),
    };
    outbox::enqueue(conn, &event).await.map(|_| ())
}

/// A written version that replaces `previous_version` as the published one: `OfferUpdated`, then
/// `OfferPublished`.
pub(super) async fn announce_new_version(
    conn: &mut PgConnection,
    written: &OfferRow,
    provider: &Provider,
    previous_version: i32,
) -> Result<(), ServiceError> {
    let offer = offer_to_proto(written)?;
    announce_updated(conn, &offer, provider, previous_version).await?;
    announce_published(conn, offer, provider).await?;
    Ok(())
}

async fn known_providers(conn: &mut PgConnection) -> Result<HashSet<String>, ServiceError> {
    Ok(store::all_providers(conn).await?.into_iter().map(|p| p.code).collect())
}

async fn provider_of(conn: &mut PgConnection, code: &str) -> Result<Provider, ServiceError> {
    store::provider_by_code(conn, code)
        .await?
        .as_ref()
        .and_then(ProviderRow::to_domain)
        .ok_or_else(|| ServiceError::internal("reading a provider", code))
}

/// The offer named by `key`, locked for the transaction, with its domain view.
async fn locked(conn: &mut PgConnection, key: &OfferKey) -> Result<(OfferRow, StoredOffer), ServiceError> {
    let row = store::offer_for_update(conn, key.id, &key.code)
        .await?
        .ok_or_else(|| CatalogueError::OfferNotFound(key.written.clone()))?;
    let stored = row.to_domain().ok_or_else(|| ServiceError::internal("reading an offer", &row.code))?;
    Ok((row, stored))
}

/// Drafts a new offer (version 1, not announced until published).
pub async fn create(pool: &PgPool, input: OfferInput) -> Result<OfferRow, ServiceError> {
    let mut tx = pool.begin().await?;
    let providers = known_providers(&mut tx).await?;
    let content = domain::validate_offer(input, &providers).map_err(|v| invalid_under("offer.", v))?;
    if store::offer_by_code(pool, &content.code).await?.is_some() {
        return Err(CatalogueError::OfferCodeTaken(content.code).into());
    }
    let row = store::write_offer(&mut tx, Uuid::now_v7(), 1, OfferStatus::Draft, OPERATOR, &content).await?;
    tx.commit().await.map_err(|e| match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => {
            CatalogueError::OfferCodeTaken(content.code.clone()).into()
        }
        _ => ServiceError::from(e),
    })?;
    tracing::info!(offer = %row.code, id = %row.id, "offer drafted");
    Ok(row)
}

/// Edits an offer: a draft in place, a published offer into its next version, published and announced at
/// once. The code cannot change; an unchanged content writes nothing.
pub async fn update(
    pool: &PgPool,
    key: &OfferKey,
    mut input: OfferInput,
    expected_version: i32,
) -> Result<Written<OfferRow>, ServiceError> {
    let mut tx = pool.begin().await?;
    let (row, current) = locked(&mut tx, key).await?;
    input.code = current.content.code.clone();
    let providers = known_providers(&mut tx).await?;
    let content = domain::validate_offer(input, &providers).map_err(|v| invalid_under("offer.", v))?;
    let written = match domain::edit(&current, &content, expected_version).map_err(CatalogueError::from)? {
        Edit::Unchanged => return Ok(Written { value: row, changed: false }),
        Edit::InPlace => store::write_offer(&mut tx, row.id, row.version, current.status, OPERATOR, &content).await?,
        Edit::NewVersion { version } => {
            let written = store::write_offer(&mut tx, row.id, version, current.status, OPERATOR, &content).await?;
            let provider = provider_of(&mut tx, &content.provider_code).await?;
            announce_new_version(&mut tx, &written, &provider, row.version).await?;
            store::refresh_search_words(&mut tx).await?;
            written
        }
    };
    tx.commit().await?;
    tracing::info!(offer = %written.code, version = written.version, status = %written.status, "offer edited");
    Ok(Written { value: written, changed: true })
}

/// Publishes a draft and announces it.
pub async fn publish(pool: &PgPool, key: &OfferKey) -> Result<OfferRow, ServiceError> {
    let mut tx = pool.begin().await?;
    let (row, current) = locked(&mut tx, key).await?;
    let status = domain::publish(current.status).map_err(CatalogueError::from)?;
    let written = store::set_status(&mut tx, row.id, status, OPERATOR).await?;
    let provider = provider_of(&mut tx, &current.content.provider_code).await?;
    announce_published(&mut tx, offer_to_proto(&written)?, &provider).await?;
    store::refresh_search_words(&mut tx).await?;
    tx.commit().await?;
    tracing::info!(offer = %written.code, version = written.version, "offer published");
    Ok(written)
}

/// Archives a draft or a published offer; a published one is announced as withdrawn, with `reason`.
pub async fn archive(pool: &PgPool, key: &OfferKey, reason: &str) -> Result<OfferRow, ServiceError> {
    let mut tx = pool.begin().await?;
    let (row, current) = locked(&mut tx, key).await?;
    let status = domain::archive(current.status).map_err(CatalogueError::from)?;
    let written = store::set_status(&mut tx, row.id, status, OPERATOR).await?;
    if current.status == OfferStatus::Published {
        announce_archived(&mut tx, &written, reason).await?;
        store::refresh_search_words(&mut tx).await?;
    }
    tx.commit().await?;
    tracing::info!(offer = %written.code, "offer archived");
    Ok(written)
}
