//! Offers: listing and reading them (drafts and past versions for the operator), and the operator's drafting,
//! editing, publishing and archiving.

use id77_platform::auth::Caller;
use id77_platform::{ServiceError, page};
use id77_proto::catalogue::v1 as pb;
use id77_proto::vocabulary::Category;

use super::service::CatalogueApi;
use crate::access;
use crate::domain::OfferStatus;
use crate::error::CatalogueError;
use crate::flow;
use crate::proto_map::{self, offer_proto, offer_to_proto};
use crate::store;

impl CatalogueApi {
    pub(super) async fn offers(
        &self,
        caller: Option<&Caller>,
        req: pb::ListOffersRequest,
    ) -> Result<pb::ListOffersResponse, ServiceError> {
        let listing = proto_map::listing(&req)?;
        if listing.statuses.iter().any(|s| *s != OfferStatus::Published) {
            access::manage_catalogue(caller).map_err(|d| d.into_error("offers", ""))?;
        }
        let statuses: Vec<&str> = listing.statuses.iter().map(|s| s.as_str()).collect();
        let after: Option<String> = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let (category, provider_code) = (listing.category.map(Category::as_str), listing.provider_code.as_deref());
        let rows = store::list_offers(&self.pool, category, provider_code, &statuses, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |o| page::encode(&o.code));
        let offers = rows.iter().map(offer_to_proto).collect::<Result<Vec<_>, _>>()?;
        Ok(pb::ListOffersResponse { offers, next_page_token: next })
    }

    /// An offer, as it is now or at a past version (shown archived: it is no longer the current one).
    pub(super) async fn offer(
        &self,
        caller: Option<&Caller>,
        req: pb::GetOfferRequest,
    ) -> Result<pb::Offer, ServiceError> {
        let key = proto_map::offer_key("id", &req.id)?;
        let not_found = || CatalogueError::OfferNotFound(req.id.trim().to_owned());
        let row = store::offer_by_key(&self.pool, key.id, &key.code).await?.ok_or_else(not_found)?;
        let stored = row.to_domain().ok_or_else(|| ServiceError::internal("reading an offer", &row.code))?;
        // Drafts are the operator's; ids of drafts cannot be probed.
        if stored.status == OfferStatus::Draft && access::manage_catalogue(caller).is_err() {
            return Err(not_found().into());
        }
        if req.version < 0 {
            return Err(ServiceError::invalid("version", "must be positive"));
        }
        if req.version == 0 || req.version == row.version {
            return offer_to_proto(&row);
        }
        let (content, at) = store::offer_version(&self.pool, row.id, req.version).await?.ok_or_else(|| {
            CatalogueError::OfferVersionNotFound { key: req.id.trim().to_owned(), version: req.version }
        })?;
        Ok(offer_proto(row.id, req.version, OfferStatus::Archived, &content, at))
    }

    pub(super) async fn draft_offer(
        &self,
        caller: Option<&Caller>,
        req: pb::CreateOfferRequest,
    ) -> Result<pb::Offer, ServiceError> {
        access::manage_catalogue(caller).map_err(|d| d.into_error("offer", ""))?;
        let input = proto_map::offer_input(req.offer)?;
        let row = flow::offers::create(&self.pool, input).await?;
        offer_to_proto(&row)
    }

    pub(super) async fn edit_offer(
        &self,
        caller: Option<&Caller>,
        req: pb::UpdateOfferRequest,
    ) -> Result<pb::Offer, ServiceError> {
        access::manage_catalogue(caller).map_err(|d| d.into_error("offer", &req.id))?;
        let key = proto_map::offer_key("id", &req.id)?;
        let input = proto_map::offer_input(req.offer)?;
        let edited = flow::offers::update(&self.pool, &key, input, req.expected_version).await?;
        if edited.changed {
            self.cache.invalidate();
        }
        offer_to_proto(&edited.value)
    }

    pub(super) async fn publish(
        &self,
        caller: Option<&Caller>,
        req: pb::PublishOfferRequest,
    ) -> Result<pb::Offer, ServiceError> {
        access::manage_catalogue(caller).map_err(|d| d.into_error("offer", &req.id))?;
        let key = proto_map::offer_key("id", &req.id)?;
        let row = flow::offers::publish(&self.pool, &key).await?;
        self.cache.invalidate();
        offer_to_proto(&row)
    }

    pub(super) async fn archive(
        &self,
        caller: Option<&Caller>,
        req: pb::ArchiveOfferRequest,
    ) -> Result<pb::Offer, ServiceError> {
        access::manage_catalogue(caller).map_err(|d| d.into_error("offer", &req.id))?;
        let key = proto_map::offer_key("id", &req.id)?;
        let reason = proto_map::action_reason(&req.reason)?;
        let row = flow::offers::archive(&self.pool, &key, reason).await?;
        self.cache.invalidate();
        offer_to_proto(&row)
    }
}
