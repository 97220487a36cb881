//! The catalogue's gRPC service: its state and the entry point of each call. Reads are public: anonymous
//! callers are welcome, but a token that is sent must verify (UNAUTHENTICATED otherwise), like everywhere
//! else; writes check the caller's rights ([`crate::access`]).

use std::sync::Arc;

use id77_platform::CallerOf;
use id77_proto::catalogue::v1 as pb;
use id77_proto::catalogue::v1::catalogue_service_server::CatalogueService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use super::cache::{MemberProfiles, SearchCache};

pub struct CatalogueApi {
    pub(super) pool: PgPool,
    pub(super) cache: SearchCache,
    /// Shared with the member consumer, which drops a member's profile when it applies one of its events.
    pub(super) members: Arc<MemberProfiles>,
}

impl CatalogueApi {
    pub fn new(pool: PgPool) -> Self {
        Self { pool, cache: SearchCache::default(), members: Arc::default() }
    }

    /// The members' profiles this service reuses: give them to [`crate::events::MemberEvents`], so that the
    /// events this replica applies take effect on the next search.
    pub fn member_profiles(&self) -> Arc<MemberProfiles> {
        self.members.clone()
    }
}

#[tonic::async_trait]
impl CatalogueService for CatalogueApi {
    async fn list_offers(
        &self,
        request: Request<pb::ListOffersRequest>,
    ) -> Result<Response<pb::ListOffersResponse>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.offers(caller.as_ref(), request.into_inner()).await?))
    }

    async fn get_offer(&self, request: Request<pb::GetOfferRequest>) -> Result<Response<pb::Offer>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.offer(caller.as_ref(), request.into_inner()).await?))
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        request.optional_caller()?;
        Ok(Response::new(self.providers().await?))
    }

    async fn search_offers(
        &self,
        request: Request<pb::SearchOffersRequest>,
    ) -> Result<Response<pb::SearchOffersResponse>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.search_cached(caller.as_ref(), request.into_inner()).await?))
    }

    async fn create_offer(&self, request: Request<pb::CreateOfferRequest>) -> Result<Response<pb::Offer>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.draft_offer(caller.as_ref(), request.into_inner()).await?))
    }

    async fn update_offer(&self, request: Request<pb::UpdateOfferRequest>) -> Result<Response<pb::Offer>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.edit_offer(caller.as_ref(), request.into_inner()).await?))
    }

    async fn publish_offer(&self, request: Request<pb::PublishOfferRequest>) -> Result<Response<pb::Offer>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.publish(caller.as_ref(), request.into_inner()).await?))
    }

    async fn archive_offer(&self, request: Request<pb::ArchiveOfferRequest>) -> Result<Response<pb::Offer>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.archive(caller.as_ref(), request.into_inner()).await?))
    }

    async fn create_provider(
        &self,
        request: Request<pb::UpsertProviderRequest>,
    ) -> Result<Response<pb::Provider>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.write_provider(caller.as_ref(), request.into_inner(), true).await?))
    }

    async fn update_provider(
        &self,
        request: Request<pb::UpsertProviderRequest>,
    ) -> Result<Response<pb::Provider>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.write_provider(caller.as_ref(), request.into_inner(), false).await?))
    }

    async fn get_availability(
        &self,
        request: Request<pb::GetAvailabilityRequest>,
    ) -> Result<Response<pb::Availability>, Status> {
        request.optional_caller()?;
        Ok(Response::new(self.availability(request.into_inner()).await?))
    }

    async fn hold_booking(&self, request: Request<pb::HoldBookingRequest>) -> Result<Response<pb::Booking>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.hold(caller.as_ref(), request.into_inner()).await?))
    }

    async fn confirm_booking(
        &self,
        request: Request<pb::BookingActionRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.settle(caller.as_ref(), request.into_inner(), true).await?))
    }

    async fn release_booking(
        &self,
        request: Request<pb::BookingActionRequest>,
    ) -> Result<Response<pb::Booking>, Status> {
        let caller = request.optional_caller()?;
        Ok(Response::new(self.settle(caller.as_ref(), request.into_inner(), false).await?))
    }
}
