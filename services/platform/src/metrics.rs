//! Prometheus metrics of a process, served in the OpenMetrics text format on `ID77_METRICS_ADDR` (path
//! `/metrics`; unset: not served). Every series carries the `service` label, so several services in one process
//! (the in-process tests) stay apart.
//!
//! | series | what |
//! |---|---|
//! | `id77_build_info{service,version}` | 1 |
//! | `id77_grpc_server_requests_total{service,method,code}` | gRPC calls served, by status code |
//! | `id77_grpc_server_request_duration_seconds{service,method}` | their latency (histogram) |
//! | `id77_http_requests_total{service,method,route,status}` | gateway HTTP calls |
//! | `id77_http_request_duration_seconds{service,method,route}` | their latency (histogram) |
//! | `id77_outbox_pending{service}` | outbox rows not yet published |
//! | `id77_outbox_oldest_pending_age_seconds{service}` | age of the oldest of them (0 when none) |
//! | `id77_outbox_published_total{service}` | events the relay published |
//! | `id77_consumer_pending_messages{service,durable}` | JetStream's `num_pending`: messages not yet delivered |
//! | `id77_consumer_ack_pending_messages{service,durable}` | delivered, not yet acknowledged |
//! | `id77_consumer_events_total{service,durable,outcome}` | applied, duplicate, retry, dead_letter |
//! | `id77_consumer_redeliveries_total{service,durable}` | messages handled on a second or later delivery |
//! | `id77_db_pool_connections{service,state}` | pool connections, `idle` or `in_use` |
//! | `id77_db_pool_max_connections{service}` | the pool's maximum |

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub service: String,
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrpcLabels {
    pub service: String,
    pub method: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub service: String,
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub service: String,
    pub method: String,
    pub route: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub service: String,
    pub method: String,
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConsumerLabels {
    pub service: String,
    pub durable: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub service: String,
    pub durable: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub service: String,
    pub state: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
}

/// Every series of the process.
pub struct Metrics {
    registry: Registry,
    pub build_info: Family<BuildLabels, Gauge>,
    pub grpc_requests: Family<GrpcLabels, Counter>,
    pub grpc_duration: HistogramFamily<MethodLabels>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: HistogramFamily<RouteLabels>,
    pub outbox_pending: Family<ServiceLabels, Gauge>,
    pub outbox_oldest_age: Family<ServiceLabels, Gauge<f64, AtomicU64>>,
    pub outbox_published: Family<ServiceLabels, Counter>,
    pub consumer_pending: Family<ConsumerLabels, Gauge>,
    pub consumer_ack_pending: Family<ConsumerLabels, Gauge>,
    pub consumer_events: Family<OutcomeLabels, Counter>,
    pub consumer_redeliveries: Family<ConsumerLabels, Counter>,
    pub db_pool_connections: Family<PoolLabels, Gauge>,
    pub db_pool_max: Family<ServiceLabels, Gauge>,
    /// Mails queued and not sent yet (requests' notification outbox).
    pub mail_backlog: Family<ServiceLabels, Gauge>,
    /// Mails sent / failed tries (`outcome`: sent, failed).
    pub mails: Family<OutcomeLabels, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let m = Self {
            build_info: Family::default(),
            grpc_requests: Family::default(),
            grpc_duration: Family::new_with_constructor(latency_histogram),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            outbox_pending: Family::default(),
            outbox_oldest_age: Family::default(),
            outbox_published: Family::default(),
            consumer_pending: Family::default(),
            consumer_ack_pending: Family::default(),
            consumer_events: Family::default(),
            consumer_redeliveries: Family::default(),
            db_pool_connections: Family::default(),
            db_pool_max: Family::default(),
            mail_backlog: Family::default(),
            mails: Family::default(),
            registry: Registry::default(),
        };
        registry.register("id77_build_info", "Build of the process", m.build_info.clone());
        registry.register("id77_grpc_server_requests", "gRPC calls served", m.grpc_requests.clone());
        registry.register(
            "id77_grpc_server_request_duration_seconds",
            "Latency of the gRPC calls served",
            m.grpc_duration.clone(),
        );
        registry.register("id77_http_requests", "HTTP calls served by the gateway", m.http_requests.clone());
        registry.register(
            "id77_http_request_duration_seconds",
            "Latency of the HTTP calls served by the gateway",
            m.http_duration.clone(),
        );
        registry.register("id77_outbox_pending", "Outbox rows not yet published", m.outbox_pending.clone());
        registry.register(
            "id77_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox row not yet published (0 when none)",
            m.outbox_oldest_age.clone(),
        );
        registry.register("id77_outbox_published", "Outbox events published", m.outbox_published.clone());
        registry.register(
            "id77_consumer_pending_messages",
            "Messages of the stream not yet delivered to the durable consumer (num_pending)",
            m.consumer_pending.clone(),
        );
        registry.register(
            "id77_consumer_ack_pending_messages",
            "Messages delivered to the durable consumer and not yet acknowledged",
            m.consumer_ack_pending.clone(),
        );
        registry.register(
            "id77_consumer_events",
            "Messages handled by outcome (applied, duplicate, retry, dead_letter)",
            m.consumer_events.clone(),
        );
        registry.register(
            "id77_consumer_redeliveries",
            "Messages handled on a second or later delivery",
            m.consumer_redeliveries.clone(),
        );
        registry.register(
            "id77_db_pool_connections",
            "Database pool connections by state (idle, in_use)",
            m.db_pool_connections.clone(),
        );
        registry.register("id77_db_pool_max_connections", "Database pool maximum size", m.db_pool_max.clone());
        registry.register("id77_mail_backlog", "Mails queued and not sent yet", m.mail_backlog.clone());
        registry.register("id77_mails", "Mail sending tries by outcome (sent, failed)", m.mails.clone());
        Self { registry, ..m }
    }

    /// The OpenMetrics text of every series.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Marks `service` as running in this process (`id77_build_info`).
    pub fn register_service(&self, service: &str) {
        self.build_info
            .get_or_create(&BuildLabels { service: service.to_owned(), version: env!("CARGO_PKG_VERSION").to_owned() })
            .set(1);
    }

    /// Counts one handled message of a consumer.
    pub fn consumer_event(&self, service: &str, durable: &str, outcome: &str, delivered: i64) {
        self.consumer_events
            .get_or_create(&OutcomeLabels {
                service: service.to_owned(),
                durable: durable.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
        if delivered > 1 {
            self.consumer_redeliveries
                .get_or_create(&ConsumerLabels { service: service.to_owned(), durable: durable.to_owned() })
                .inc();
        }
    }

    /// Samples a database pool.
    pub fn sample_pool(&self, service: &str, pool: &sqlx::PgPool) {
        let size = i64::from(pool.size());
        let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
        let label = |state: &str| PoolLabels { service: service.to_owned(), state: state.to_owned() };
        self.db_pool_connections.get_or_create(&label("idle")).set(idle);
        self.db_pool_connections.get_or_create(&label("in_use")).set((size - idle).max(0));
        self.db_pool_max
            .get_or_create(&ServiceLabels { service: service.to_owned() })
            .set(i64::from(pool.options().get_max_connections()));
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// `ID77_METRICS_ADDR`, if set.
pub fn addr_from_env() -> anyhow::Result<Option<SocketAddr>> {
    match std::env::var("ID77_METRICS_ADDR") {
        Ok(v) if !v.trim().is_empty() => {
            Ok(Some(v.trim().parse().with_context(|| format!("invalid ID77_METRICS_ADDR={v:?}"))?))
        }
        _ => Ok(None),
    }
}

/// Binds `addr` and serves `GET /metrics` until `shutdown`, in the background.
pub async fn serve(addr: SocketAddr, shutdown: CancellationToken) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding the metrics address {addr}"))?;
    let local = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                global().encode(),
            )
        }),
    );
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(error) = server.await {
            tracing::warn!(%error, "metrics server stopped");
        }
    });
    tracing::info!(%local, "metrics served on /metrics");
    Ok(local)
}

/// Samples the database pool and the outbox of a service every `every`, until `shutdown`. The outbox query only
/// runs on an idle connection of the pool ([`sqlx::Pool::try_acquire`]): sampling never waits for a connection,
/// never opens one, and never takes one from the service's own work.
pub async fn sample_database(service: &'static str, pool: sqlx::PgPool, every: Duration, shutdown: CancellationToken) {
    let metrics = global();
    let labels = ServiceLabels { service: service.to_owned() };
    loop {
        metrics.sample_pool(service, &pool);
        // Waits briefly for a connection rather than skipping the sample when none is idle (at start, under
        // load): the series exist from the first interval on, and a busy pool is when the backlog matters most.
        if let Ok(Ok(mut conn)) = tokio::time::timeout(Duration::from_secs(1), pool.acquire()).await {
            let backlog: Result<(i64, Option<f64>), sqlx::Error> = sqlx::query_as(
                "SELECT count(*), EXTRACT(EPOCH FROM now() - min(created_at))::float8
                 FROM outbox WHERE published_at IS NULL",
            )
            .fetch_one(&mut *conn)
            .await;
            match backlog {
                Ok((pending, age)) => {
                    metrics.outbox_pending.get_or_create(&labels).set(pending);
                    metrics.outbox_oldest_age.get_or_create(&labels).set(age.unwrap_or(0.0).max(0.0));
                }
                Err(error) => tracing::debug!(%error, "outbox backlog not sampled"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_encoded_with_their_labels() {
        let metrics = Metrics::new();
        metrics.register_service("unit");
        metrics.consumer_event("unit", "unit-durable", "applied", 2);
        metrics
            .grpc_duration
            .get_or_create(&MethodLabels { service: "unit".into(), method: "/x.Y/Z".into() })
            .observe(0.003);
        let text = metrics.encode();
        assert!(text.contains(r#"id77_build_info{service="unit",version="#), "{text}");
        assert!(
            text.contains(r#"id77_consumer_events_total{service="unit",durable="unit-durable",outcome="applied"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"id77_consumer_redeliveries_total{service="unit",durable="unit-durable"} 1"#));
        assert!(
            text.contains(r#"id77_grpc_server_request_duration_seconds_bucket{le="0.005",service="unit""#)
                || text.contains(
                    r#"id77_grpc_server_request_duration_seconds_bucket{service="unit",method="/x.Y/Z",le="0.005"} 1"#
                ),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
