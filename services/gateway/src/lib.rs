//! Gateway: the REST/JSON front door for web and mobile clients over the five gRPC services. Stateless: every
//! call is translated to one (or two) gRPC calls and the answer back to JSON; errors are problem+json.
//!
//! `run` serves on a bound listener until a token is cancelled, so tests start it in-process; `router` gives
//! the bare axum router for `tower::ServiceExt::oneshot` tests.

pub mod auth;
pub mod config;
pub mod dev_identity;
pub mod extract;
pub mod problem;
pub mod routes;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use id77_proto::billing::v1::billing_service_client::BillingServiceClient;
use id77_proto::catalogue::v1::catalogue_service_client::CatalogueServiceClient;
use id77_proto::membership::v1::membership_service_client::MembershipServiceClient;
use id77_proto::requests::v1::requests_service_client::RequestsServiceClient;
use id77_proto::routing::v1::routing_service_client::RoutingServiceClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

pub use config::Config;
pub use routes::router;

/// How long in-flight HTTP calls get to finish after shutdown is requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// One gRPC channel per service, opened lazily (the gateway starts before the services and reconnects on its
/// own), plus the dev-identity switch. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    dev_identity: bool,
    membership: MembershipServiceClient<Channel>,
    catalogue: CatalogueServiceClient<Channel>,
    requests: RequestsServiceClient<Channel>,
    routing: RoutingServiceClient<Channel>,
    billing: BillingServiceClient<Channel>,
    /// Every upstream by name, for readiness.
    upstreams: Vec<(&'static str, Channel)>,
}

fn channel(name: &str, url: &str, config: &Config) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_owned()).with_context(|| format!("invalid {name} URL {url:?}"))?;
    Ok(endpoint.connect_timeout(config.connect_timeout).timeout(config.request_timeout).connect_lazy())
}

impl AppState {
    /// Builds the channels (no connection is attempted yet). Needs a Tokio runtime.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let membership = channel("membership", &config.membership_url, config)?;
        let catalogue = channel("catalogue", &config.catalogue_url, config)?;
        let requests = channel("requests", &config.requests_url, config)?;
        let routing = channel("routing", &config.routing_url, config)?;
        let billing = channel("billing", &config.billing_url, config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                dev_identity: config.dev_identity,
                membership: MembershipServiceClient::new(membership.clone()),
                catalogue: CatalogueServiceClient::new(catalogue.clone()),
                requests: RequestsServiceClient::new(requests.clone()),
                routing: RoutingServiceClient::new(routing.clone()),
                billing: BillingServiceClient::new(billing.clone()),
                upstreams: vec![
                    ("membership", membership),
                    ("catalogue", catalogue),
                    ("requests", requests),
                    ("routing", routing),
                    ("billing", billing),
                ],
            }),
        })
    }

    /// Whether the development-only identity header is honoured.
    pub fn dev_identity(&self) -> bool {
        self.inner.dev_identity
    }

    pub fn membership(&self) -> MembershipServiceClient<Channel> {
        self.inner.membership.clone()
    }

    pub fn catalogue(&self) -> CatalogueServiceClient<Channel> {
        self.inner.catalogue.clone()
    }

    pub fn requests(&self) -> RequestsServiceClient<Channel> {
        self.inner.requests.clone()
    }

    pub fn routing(&self) -> RoutingServiceClient<Channel> {
        self.inner.routing.clone()
    }

    pub fn billing(&self) -> BillingServiceClient<Channel> {
        self.inner.billing.clone()
    }

    pub fn upstreams(&self) -> &[(&'static str, Channel)] {
        &self.inner.upstreams
    }
}

/// Serves the gateway on `listener` until `shutdown` is cancelled, then lets in-flight calls finish.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    if config.dev_identity {
        dev_identity::warn_enabled();
    }
    let state = AppState::new(&config)?;
    let local = listener.local_addr()?;
    tracing::info!(%local, membership = %config.membership_url, catalogue = %config.catalogue_url,
        requests = %config.requests_url, routing = %config.routing_url, billing = %config.billing_url,
        "gateway listening");
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let drain_deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        result = std::future::IntoFuture::into_future(server) => result.context("serving HTTP")?,
        () = drain_deadline => tracing::warn!("in-flight calls did not finish within {DRAIN_TIMEOUT:?}; stopping anyway"),
    }
    tracing::info!("gateway stopped");
    Ok(())
}
