//! gRPC transport: maps requests to store calls and rows to protobuf.

use id77_platform::auth::Authenticator;
use id77_platform::streams::is_valid_subject_token;
use id77_platform::{ErrorCode, ServiceError, page};
use id77_proto::catalogue::v1 as pb;
use id77_proto::catalogue::v1::catalogue_service_server::CatalogueService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{Category, Provider, ProviderKind};
use crate::store::{self, OfferRow, ProviderRow};

pub struct CatalogueApi {
    pool: PgPool,
    /// Verifies a caller's access token when there is one.
    auth: Authenticator,
}

impl CatalogueApi {
    pub fn new(pool: PgPool, auth: Authenticator) -> Self {
        Self { pool, auth }
    }

    /// The catalogue is public: anonymous callers are welcome, but a token that is sent must verify
    /// (UNAUTHENTICATED otherwise), like everywhere else.
    async fn check_caller<T>(&self, request: &Request<T>) -> Result<(), ServiceError> {
        self.auth.optional_caller(request).await.map(|_| ())
    }
}

pub fn category_to_proto(category: &str) -> pb::OfferCategory {
    match Category::parse(category) {
        Some(Category::IntegratedEngineering) => pb::OfferCategory::IntegratedEngineering,
        Some(Category::AwarenessTraining) => pb::OfferCategory::AwarenessTraining,
        Some(Category::ExhibitionLoan) => pb::OfferCategory::ExhibitionLoan,
        None => pb::OfferCategory::Unspecified,
    }
}

fn category_from_proto(category: i32) -> Result<Option<Category>, ServiceError> {
    match pb::OfferCategory::try_from(category) {
        Ok(pb::OfferCategory::Unspecified) => Ok(None),
        Ok(pb::OfferCategory::IntegratedEngineering) => Ok(Some(Category::IntegratedEngineering)),
        Ok(pb::OfferCategory::AwarenessTraining) => Ok(Some(Category::AwarenessTraining)),
        Ok(pb::OfferCategory::ExhibitionLoan) => Ok(Some(Category::ExhibitionLoan)),
        Err(_) => Err(ServiceError::invalid("category", "is not a known category")),
    }
}

fn kind_to_proto(kind: Option<ProviderKind>) -> pb::ProviderKind {
    match kind {
        Some(ProviderKind::DepartmentalService) => pb::ProviderKind::DepartmentalService,
        Some(ProviderKind::AssociatedOrganisation) => pb::ProviderKind::AssociatedOrganisation,
        None => pb::ProviderKind::Unspecified,
    }
}

pub fn offer_to_proto(o: OfferRow) -> pb::Offer {
    pb::Offer {
        id: o.id.to_string(),
        category: category_to_proto(&o.category).into(),
        code: o.code,
        title: o.title,
        summary: o.summary,
        themes: o.themes,
        provider_code: o.provider_code,
        billed: o.billed,
        price_cents: o.price_cents,
        version: o.version,
    }
}

pub fn provider_to_proto(p: &Provider) -> pb::Provider {
    pb::Provider {
        code: p.code.clone(),
        name: p.name.clone(),
        kind: kind_to_proto(Some(p.kind)).into(),
        contact_email: p.contact_email.clone(),
    }
}

fn provider_row_to_proto(p: ProviderRow) -> pb::Provider {
    pb::Provider {
        kind: kind_to_proto(ProviderKind::parse(&p.kind)).into(),
        code: p.code,
        name: p.name,
        contact_email: p.contact_email,
    }
}

fn offer_not_found(key: &str) -> ServiceError {
    ServiceError::new(ErrorCode::NotFound, "OFFER_NOT_FOUND", format!("offer {key} not found"))
}

impl CatalogueApi {
    async fn offers(&self, req: pb::ListOffersRequest) -> Result<pb::ListOffersResponse, ServiceError> {
        let category = category_from_proto(req.category)?;
        let provider_code = req.provider_code.trim();
        let provider_code = if provider_code.is_empty() {
            None
        } else if is_valid_subject_token(provider_code) {
            Some(provider_code)
        } else {
            return Err(ServiceError::invalid("provider_code", "must be lowercase ASCII letters, digits or dashes"));
        };
        let after: Option<String> = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let rows =
            store::list_offers(&self.pool, category.map(Category::as_str), provider_code, after, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |o| page::encode(&o.code));
        Ok(pb::ListOffersResponse { offers: rows.into_iter().map(offer_to_proto).collect(), next_page_token: next })
    }

    async fn offer(&self, req: pb::GetOfferRequest) -> Result<pb::Offer, ServiceError> {
        let key = req.id.trim();
        let row = if let Ok(id) = Uuid::parse_str(key) {
            store::offer_by_id(&self.pool, id).await?
        } else if is_valid_subject_token(key) {
            store::offer_by_code(&self.pool, key).await?
        } else {
            return Err(ServiceError::invalid("id", "must be an offer id (UUID) or an offer code"));
        };
        row.map(offer_to_proto).ok_or_else(|| offer_not_found(key))
    }

    async fn providers(&self) -> Result<pb::ListProvidersResponse, ServiceError> {
        let rows = store::list_providers(&self.pool).await?;
        Ok(pb::ListProvidersResponse { providers: rows.into_iter().map(provider_row_to_proto).collect() })
    }
}

#[tonic::async_trait]
impl CatalogueService for CatalogueApi {
    async fn list_offers(
        &self,
        request: Request<pb::ListOffersRequest>,
    ) -> Result<Response<pb::ListOffersResponse>, Status> {
        self.check_caller(&request).await?;
        Ok(Response::new(self.offers(request.into_inner()).await?))
    }

    async fn get_offer(&self, request: Request<pb::GetOfferRequest>) -> Result<Response<pb::Offer>, Status> {
        self.check_caller(&request).await?;
        Ok(Response::new(self.offer(request.into_inner()).await?))
    }

    async fn list_providers(
        &self,
        request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        self.check_caller(&request).await?;
        Ok(Response::new(self.providers().await?))
    }
}
