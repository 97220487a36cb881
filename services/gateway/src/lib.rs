//! Gateway: the REST/JSON front door for web and mobile clients over the five gRPC services. Stateless: every
//! call is translated to one (or two) gRPC calls and the answer back to JSON; errors are problem+json.
//!
//! Callers authenticate with `Authorization: Bearer <access token>` (see [`auth`]); the token is verified here
//! and forwarded to the services, which verify it again and decide on the data they own.
//!
//! `run` serves on a bound listener until a token is cancelled, so tests start it in-process; `router` gives
//! the bare axum router for `tower::ServiceExt::oneshot` tests.

pub mod api_docs;
pub mod auth;
pub mod balance;
mod caching;
pub mod config;
pub mod edge_cache;
pub mod extract;
pub mod live;
pub mod problem;
pub mod ratelimit;
pub mod routes;
pub mod security;
pub mod telemetry;
pub mod views;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use id77_platform::auth::Authenticator;
use id77_platform::http_server::{self, HttpLimits};
use id77_proto::billing::v1::billing_service_client::BillingServiceClient;
use id77_proto::catalogue::v1::catalogue_service_client::CatalogueServiceClient;
use id77_proto::catalogue::v1::session_service_client::SessionServiceClient;
use id77_proto::membership::v1::identity_service_client::IdentityServiceClient;
use id77_proto::membership::v1::membership_service_client::MembershipServiceClient;
use id77_proto::requests::v1::conversation_service_client::ConversationServiceClient;
use id77_proto::requests::v1::requests_service_client::RequestsServiceClient;
use id77_proto::routing::v1::routing_service_client::RoutingServiceClient;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::ratelimit::RateLimiter;

pub use config::Config;
pub use routes::router;

/// How long in-flight HTTP calls get to finish after shutdown is requested: within the platform's bound on a
/// stop ([`id77_platform::shutdown::HARD_DEADLINE`], under 10 s).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(8);

/// A gRPC channel whose calls carry the current span's W3C trace context.
pub type Upstream = InterceptedService<Channel, Traced>;

/// Adds the current span's `traceparent` to the metadata of every gRPC call (so the services continue the
/// trace of the HTTP request; nothing is added when traces are off).
#[derive(Debug, Clone, Copy, Default)]
pub struct Traced;

impl tonic::service::Interceptor for Traced {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(traceparent) = id77_platform::telemetry::current_traceparent()
            && let Ok(value) = traceparent.parse()
        {
            request.metadata_mut().insert(id77_platform::telemetry::TRACEPARENT, value);
        }
        Ok(request)
    }
}

/// One gRPC channel per service, opened lazily (the gateway starts before the services and reconnects on its
/// own), the token verifier, the rate limiters and the hardening switches. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    authenticator: Authenticator,
    forwarded_for: ratelimit::ForwardedFor,
    hsts: bool,
    web_origins: Vec<String>,
    auth_limiter: RateLimiter,
    limiter: RateLimiter,
    membership: MembershipServiceClient<Upstream>,
    identity: IdentityServiceClient<Upstream>,
    catalogue: CatalogueServiceClient<Upstream>,
    /// Training sessions, served by the catalogue on its channel.
    sessions: SessionServiceClient<Upstream>,
    requests: RequestsServiceClient<Upstream>,
    conversation: ConversationServiceClient<Upstream>,
    /// The conversation over a channel without a call deadline, for attachment uploads and downloads (a slow
    /// client may take longer than a unary call's deadline to send or read 10 MiB).
    conversation_streams: ConversationServiceClient<Upstream>,
    routing: RoutingServiceClient<Upstream>,
    billing: BillingServiceClient<Upstream>,
    /// Every upstream by name, for readiness.
    upstreams: Vec<(&'static str, Channel)>,
    /// The live updates of `GET /v1/events`.
    live: live::Hub,
    /// The sources of `GET /v1/operations`.
    operations: routes::operations::Source,
    /// Anonymous catalogue search answers, for `ID77_SEARCH_CACHE_MS`.
    search_cache: edge_cache::EdgeCache,
    /// A member's own "eligible" search answers, for as long, each under its member's id only.
    member_search_cache: edge_cache::EdgeCache,
    /// `ID77_PUBLIC_URL`, for the absolute URLs the gateway answers.
    public_url: Option<String>,
}

/// A channel without a per-call deadline (streams that last as long as the client sends or reads).
fn streaming_channel(name: &'static str, url: &str, config: &Config) -> anyhow::Result<Channel> {
    channel_with(name, url, config, None)
}

fn channel(name: &'static str, url: &str, config: &Config) -> anyhow::Result<Channel> {
    channel_with(name, url, config, Some(config.request_timeout))
}

fn channel_with(
    name: &'static str,
    url: &str,
    config: &Config,
    request_timeout: Option<std::time::Duration>,
) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_owned()).with_context(|| format!("invalid {name} URL {url:?}"))?;
    let connect_timeout = config.connect_timeout;
    let with_timeouts = move |endpoint: Endpoint| {
        let endpoint = endpoint.connect_timeout(connect_timeout);
        match request_timeout {
            Some(timeout) => endpoint.timeout(timeout),
            None => endpoint,
        }
    };
    if !config.balance_dns {
        return Ok(with_timeouts(endpoint).connect_lazy());
    }
    // One endpoint per address the name resolves to (a headless Service: one per ready pod).
    let host = endpoint.uri().host().with_context(|| format!("{name} URL {url:?} has no host"))?.to_owned();
    let port = endpoint.uri().port_u16().unwrap_or(80);
    let (channel, changes) = Channel::balance_channel::<std::net::SocketAddr>(64);
    tokio::spawn(balance::follow(
        name,
        host,
        port,
        changes,
        balance::RESOLVE_EVERY,
        balance::resolve_dns,
        move |addr| Endpoint::from_shared(format!("http://{addr}")).ok().map(with_timeouts),
    ));
    Ok(channel)
}

impl AppState {
    /// Builds the channels (no connection is attempted yet). Needs a Tokio runtime.
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let membership = channel("membership", &config.membership_url, config)?;
        let catalogue = channel("catalogue", &config.catalogue_url, config)?;
        let requests = channel("requests", &config.requests_url, config)?;
        let routing = channel("routing", &config.routing_url, config)?;
        let billing = channel("billing", &config.billing_url, config)?;
        let authenticator = match &config.jwks_file {
            Some(path) => Authenticator::from_file(path.clone()),
            None => Authenticator::from_membership(&config.membership_url)?,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                authenticator,
                forwarded_for: config.forwarded_for(),
                hsts: config.hsts,
                web_origins: config.web_origins.clone(),
                auth_limiter: RateLimiter::new(config.auth_rate_per_minute, config.rate_limit_max_clients),
                limiter: RateLimiter::new(config.rate_per_minute, config.rate_limit_max_clients),
                membership: MembershipServiceClient::with_interceptor(membership.clone(), Traced),
                identity: IdentityServiceClient::with_interceptor(membership.clone(), Traced),
                catalogue: CatalogueServiceClient::with_interceptor(catalogue.clone(), Traced),
                sessions: SessionServiceClient::with_interceptor(catalogue.clone(), Traced),
                requests: RequestsServiceClient::with_interceptor(requests.clone(), Traced),
                conversation: ConversationServiceClient::with_interceptor(requests.clone(), Traced),
                conversation_streams: ConversationServiceClient::with_interceptor(
                    streaming_channel("requests", &config.requests_url, config)?,
                    Traced,
                ),
                routing: RoutingServiceClient::with_interceptor(routing.clone(), Traced),
                billing: BillingServiceClient::with_interceptor(billing.clone(), Traced),
                upstreams: vec![
                    ("membership", membership),
                    ("catalogue", catalogue),
                    ("requests", requests),
                    ("routing", routing),
                    ("billing", billing),
                ],
                live: live::Hub::new(config.nats.is_some(), live::BUFFER),
                operations: routes::operations::Source::new(config.operations_metrics.clone(), config.nats.clone())?,
                search_cache: edge_cache::EdgeCache::new(config.search_cache_ttl),
                member_search_cache: edge_cache::EdgeCache::new(config.search_cache_ttl),
                public_url: config.public_url.clone(),
            }),
        })
    }

    /// Verifies access tokens.
    pub fn authenticator(&self) -> &Authenticator {
        &self.inner.authenticator
    }

    /// Whose `X-Forwarded-For` gives the client address (`ID77_TRUSTED_PROXIES`, `ID77_TRUST_FORWARDED_FOR`).
    pub fn trust_forwarded_for(&self) -> &ratelimit::ForwardedFor {
        &self.inner.forwarded_for
    }

    /// Whether `Strict-Transport-Security` is sent.
    pub fn hsts(&self) -> bool {
        self.inner.hsts
    }

    /// The origins CORS allows.
    pub fn web_origins(&self) -> &[String] {
        &self.inner.web_origins
    }

    /// Login, refresh and invitation acceptance, per client.
    pub fn auth_limiter(&self) -> &RateLimiter {
        &self.inner.auth_limiter
    }

    /// Every other call, per client.
    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    pub fn membership(&self) -> MembershipServiceClient<Upstream> {
        self.inner.membership.clone()
    }

    pub fn identity(&self) -> IdentityServiceClient<Upstream> {
        self.inner.identity.clone()
    }

    /// Anonymous catalogue search answers (see [`edge_cache`]).
    pub fn search_cache(&self) -> &edge_cache::EdgeCache {
        &self.inner.search_cache
    }

    /// A member's "eligible" search answers, keyed by the member's id first (see [`edge_cache`]).
    pub fn member_search_cache(&self) -> &edge_cache::EdgeCache {
        &self.inner.member_search_cache
    }

    pub fn catalogue(&self) -> CatalogueServiceClient<Upstream> {
        self.inner.catalogue.clone()
    }

    /// Training sessions (the catalogue's `SessionService`).
    pub fn sessions(&self) -> SessionServiceClient<Upstream> {
        self.inner.sessions.clone()
    }

    /// `ID77_PUBLIC_URL`, when set (without its trailing `/`).
    pub fn public_url(&self) -> Option<&str> {
        self.inner.public_url.as_deref()
    }

    pub fn requests(&self) -> RequestsServiceClient<Upstream> {
        self.inner.requests.clone()
    }

    pub fn conversation(&self) -> ConversationServiceClient<Upstream> {
        self.inner.conversation.clone()
    }

    /// The conversation without a call deadline: attachment uploads and downloads.
    pub fn conversation_streams(&self) -> ConversationServiceClient<Upstream> {
        self.inner.conversation_streams.clone()
    }

    pub fn routing(&self) -> RoutingServiceClient<Upstream> {
        self.inner.routing.clone()
    }

    pub fn billing(&self) -> BillingServiceClient<Upstream> {
        self.inner.billing.clone()
    }

    pub fn upstreams(&self) -> &[(&'static str, Channel)] {
        &self.inner.upstreams
    }

    /// The live updates' fan-out.
    /// The sources of `GET /v1/operations`.
    pub fn operations(&self) -> &routes::operations::Source {
        &self.inner.operations
    }

    pub fn live(&self) -> &live::Hub {
        &self.inner.live
    }
}

/// Serves the gateway on `listener` until `shutdown` is cancelled, then lets in-flight calls finish; the
/// connection limits come from the environment (`ID77_HTTP_*`, see [`HttpLimits`]).
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with_limits(config, HttpLimits::from_env()?, listener, shutdown).await
}

/// [`run`] with the given connection limits (tests shorten the timeouts).
pub async fn run_with_limits(
    config: Config,
    limits: HttpLimits,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let state = AppState::new(&config)?;
    let local = listener.local_addr()?;
    id77_platform::metrics::global().register_service("gateway");
    if let Some(addr) = config.metrics_addr {
        id77_platform::metrics::serve(addr, shutdown.clone()).await?;
    }
    tracing::info!(%local, membership = %config.membership_url, catalogue = %config.catalogue_url,
        requests = %config.requests_url, routing = %config.routing_url, billing = %config.billing_url,
        jwks_file = ?config.jwks_file, web_origins = ?config.web_origins,
        forwarded_for = %config.forwarded_for(), "gateway listening");
    if let Some(nats) = config.nats.clone() {
        tokio::spawn(live::follow(state.live().clone(), nats, shutdown.clone()));
    }
    // Revoked sessions and users (membership's `access.revoked`), refused here before any upstream call. A core
    // subscription: the gateway's NATS user has no JetStream, so a restarted gateway does not relearn the last
    // minutes' revocations, but every service it forwards the token to does (see `id77_platform::revocation`).
    if let Some(nats) = config.nats.clone() {
        tokio::spawn(id77_platform::revocation::follow_subscription(
            nats.url,
            "gateway",
            nats.nkey_file,
            id77_platform::Namespace::new(nats.prefix),
            state.authenticator().revocations().clone(),
            shutdown.clone(),
        ));
    }
    let hub = state.live().clone();
    let closing = shutdown.clone();
    // Live streams never end by themselves: end them when shutdown starts so that the server drains.
    tokio::spawn(async move {
        closing.cancelled().await;
        hub.close();
    });
    tracing::info!(?limits, "HTTP connection limits");
    // Header, body and keep-alive timeouts and a connection ceiling (issue 19, item 5); the refusals answered
    // below the router (400, 408, 414, 431) are problem+json too (item 8).
    let refusal = security::connection_refusal(config.hsts, limits);
    let server = http_server::serve(listener, router(state), limits, refusal, shutdown.clone());
    let drain_deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        result = server => result.context("serving HTTP")?,
        () = drain_deadline => tracing::warn!("in-flight calls did not finish within {DRAIN_TIMEOUT:?}; stopping anyway"),
    }
    tracing::info!("gateway stopped");
    Ok(())
}
