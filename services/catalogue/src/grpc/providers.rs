//! Providers: listing them, and the operator's creating and changing them.

use id77_platform::ServiceError;
use id77_platform::auth::Caller;
use id77_proto::catalogue::v1 as pb;

use super::service::CatalogueApi;
use crate::proto_map::{self, provider_row_to_proto, provider_to_proto};
use crate::{access, flow, store};

impl CatalogueApi {
    pub(super) async fn providers(&self) -> Result<pb::ListProvidersResponse, ServiceError> {
        let rows = store::list_providers(&self.pool).await?;
        Ok(pb::ListProvidersResponse { providers: rows.into_iter().map(provider_row_to_proto).collect() })
    }

    /// Creates (`create`) or updates a provider.
    pub(super) async fn write_provider(
        &self,
        caller: Option<&Caller>,
        req: pb::UpsertProviderRequest,
        create: bool,
    ) -> Result<pb::Provider, ServiceError> {
        let p = req.provider.ok_or_else(|| ServiceError::invalid("provider", "is required"))?;
        access::manage_catalogue(caller).map_err(|d| d.into_error("provider", &p.code))?;
        let written = flow::providers::write(&self.pool, proto_map::provider_input(p), create).await?;
        if written.changed {
            self.cache.invalidate();
        }
        Ok(provider_to_proto(&written.value))
    }
}
