//! gRPC server start: the service's routes plus the standard health service and reflection over every ID 77
//! contract.
//!
//! Health has two answers. Readiness is the overall status (service name `""`) and the status of each API: NOT_SERVING
//! whenever the database or NATS stops answering, so that traffic goes elsewhere. Liveness is the status of the
//! name [`LIVENESS`]: SERVING as long as the process runs, whatever its dependencies do, so that an outage of
//! PostgreSQL or NATS never restarts the pods (a restart cannot bring a database back, and restarting every pod
//! at once only adds a thundering herd of reconnections when it returns). It lives in the same health service on
//! the gRPC port rather than on an HTTP `/livez` of the metrics port, because that port is optional
//! (`ID77_METRICS_ADDR`) and because an answer on the gRPC port proves what liveness is about: the server
//! accepts connections and its runtime still runs the tasks that answer calls (a wedged runtime or a full
//! accept loop times the probe out). Every call goes through [`Observe`]: a
//! span continuing the caller's W3C trace context (gRPC metadata `traceparent`), and the RPC metrics; then through
//! [`crate::authenticate::Authenticate`], which verifies the caller's token once for the handler.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::StreamExt;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
pub use tonic_health::ServingStatus;

/// Largest gRPC message a service accepts.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// The health service name of liveness: SERVING while the process runs, whatever the database and NATS do (the
/// chart's liveness and startup probes ask for it; readiness asks for the overall status).
pub const LIVENESS: &str = "id77.liveness";

/// How long in-flight calls get to finish once shutdown starts; then the server is dropped with them.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What a service's gRPC server needs besides its routes: its name (spans, metrics), the health names it reports,
/// the token verifier of its authentication layer, and the dependencies its readiness watches.
pub struct Server<'a> {
    pub service: &'static str,
    pub health_names: &'a [&'a str],
    pub auth: crate::auth::Authenticator,
    pub pool: PgPool,
    pub nats: async_nats::Client,
}

/// Serves `routes` on `listener` until `shutdown`, then drains in-flight calls.
pub async fn serve(
    server: Server<'_>,
    listener: TcpListener,
    routes: Routes,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let Server { service, health_names, auth, pool, nats } = server;
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(id77_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let names: Vec<String> =
        std::iter::once(String::new()).chain(health_names.iter().map(|s| (*s).to_owned())).collect();
    reporter.set_service_status(LIVENESS, ServingStatus::Serving).await;
    let watchdog = tokio::spawn(watch_readiness(reporter, names, pool, nats, shutdown.clone()));
    let local = listener.local_addr()?;
    tracing::info!(%local, "gRPC server listening");
    // Accepted connections get TCP_NODELAY, as tonic's own listener would set: without it, small responses
    // wait for Nagle's algorithm and the peer's delayed ACK (tens of milliseconds at p99).
    let incoming = TcpListenerStream::new(listener).map(|conn| {
        conn.inspect(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "TCP_NODELAY not set");
            }
        })
    });
    let server = tonic::transport::Server::builder()
        .timeout(Duration::from_secs(30))
        .layer(tower::layer::layer_fn(move |inner| Observe { inner, service }))
        .layer(crate::authenticate::AuthenticateLayer::new(auth))
        .add_routes(routes)
        .add_service(health)
        .add_service(reflection)
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());
    // The graceful stop waits for every connection to end: a streaming call or a client that keeps its
    // connection would hold it for ever. Bounded.
    let drain_deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    let result = tokio::select! {
        result = server => result.map_err(Into::into),
        () = drain_deadline => {
            tracing::warn!("in-flight calls did not finish within {DRAIN_TIMEOUT:?}; stopping anyway");
            Ok(())
        }
    };
    watchdog.abort();
    result
}

/// Asks the gRPC health service at `url` (`http://host:port`) for the status of `service` (`""`: overall, i.e.
/// readiness; [`LIVENESS`]), within `limit`.
pub async fn health_status(url: &str, service: &str, limit: Duration) -> anyhow::Result<ServingStatus> {
    use tonic_health::pb::health_client::HealthClient;
    use tonic_health::pb::{HealthCheckRequest, health_check_response};
    let ask = async {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?.connect_timeout(limit).connect().await?;
        let reply =
            HealthClient::new(channel).check(HealthCheckRequest { service: service.to_owned() }).await?.into_inner();
        anyhow::Ok(match health_check_response::ServingStatus::try_from(reply.status) {
            Ok(health_check_response::ServingStatus::Serving) => ServingStatus::Serving,
            Ok(health_check_response::ServingStatus::NotServing) => ServingStatus::NotServing,
            _ => ServingStatus::Unknown,
        })
    };
    tokio::time::timeout(limit, ask)
        .await
        .map_err(|_| anyhow::anyhow!("no health answer from {url} within {limit:?}"))?
}

/// Tower middleware of the gRPC server: one span per call (child of the caller's `traceparent`, health and
/// reflection calls left out) and `id77_grpc_server_*` metrics.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    service: &'static str,
}

impl<S> Observe<S> {
    pub fn new(inner: S, service: &'static str) -> Self {
        Self { inner, service }
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for Observe<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let service = self.service;
        let path = request.uri().path().to_owned();
        let span = if path.starts_with("/grpc.") {
            tracing::Span::none()
        } else {
            tracing::info_span!("grpc", otel.name = %path, otel.kind = "server", rpc.system = "grpc",
                rpc.service = service, rpc.grpc.status_code = tracing::field::Empty)
        };
        crate::telemetry::extract_http(request.headers(), &span);
        let started = Instant::now();
        let future = {
            let _entered = span.enter();
            inner.call(request)
        };
        Box::pin(async move {
            let result = tracing::Instrument::instrument(future, span.clone()).await;
            let code = match &result {
                // Unary errors are "trailers-only" responses: the status is in the headers; absent means OK
                // so far (a stream could still fail in its trailers).
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<i32>().ok())
                    .map(tonic::Code::from_i32)
                    .unwrap_or(tonic::Code::Ok),
                Err(_) => tonic::Code::Unknown,
            };
            span.record("rpc.grpc.status_code", code as i32);
            // Unknown paths are one series, whatever a client sends.
            let method = if code == tonic::Code::Unimplemented { "unknown".to_owned() } else { path };
            let metrics = crate::metrics::global();
            metrics
                .grpc_requests
                .get_or_create(&crate::metrics::GrpcLabels {
                    service: service.to_owned(),
                    method: method.clone(),
                    code: format!("{code:?}"),
                })
                .inc();
            metrics
                .grpc_duration
                .get_or_create(&crate::metrics::MethodLabels { service: service.to_owned(), method })
                .observe(started.elapsed().as_secs_f64());
            result
        })
    }
}

/// Reports SERVING while the database and NATS answer, NOT_SERVING otherwise.
async fn watch_readiness(
    reporter: tonic_health::server::HealthReporter,
    names: Vec<String>,
    pool: PgPool,
    nats: async_nats::Client,
    shutdown: CancellationToken,
) {
    let mut last = None;
    loop {
        let db_ok = tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(&pool))
            .await
            .is_ok_and(|r| r.is_ok());
        let nats_ok = nats.connection_state() == async_nats::connection::State::Connected;
        let status = if db_ok && nats_ok { ServingStatus::Serving } else { ServingStatus::NotServing };
        if last != Some(status) {
            if last.is_some() || status != ServingStatus::Serving {
                tracing::warn!(db_ok, nats_ok, ?status, "readiness changed");
            }
            for name in &names {
                reporter.set_service_status(name, status).await;
            }
            last = Some(status);
        }
        tokio::select! {
            _ = shutdown.cancelled() => {
                for name in &names {
                    reporter.set_service_status(name, ServingStatus::NotServing).await;
                }
                return;
            }
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}
