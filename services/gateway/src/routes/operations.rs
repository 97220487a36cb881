//! `GET /v1/operations` (operator only): what waits in the platform's pipes, read live.
//!
//! - Each service's **outbox backlog** (events written, not yet published) comes from the service's own metrics
//!   endpoint (`id77_outbox_pending`, `id77_outbox_oldest_pending_age_seconds`, sampled by the service every 5 s),
//!   whose address the gateway is given by `ID77_OPERATIONS_METRICS` (`membership=http://…/metrics,…`): the gateway
//!   reads no service's database and the gRPC contracts need no new call.
//! - Each durable consumer's **lag** (`num_pending`, `num_ack_pending`) and the **dead letters** per durable (the
//!   messages of the DEADLETTER stream on `id77.deadletter.<durable>`) come from JetStream's consumer and stream
//!   info, over a NATS connection of the gateway's user opened on the first call; that user may publish only these
//!   info requests and read only its own inbox prefix ([`id77_platform::nats::GATEWAY_INBOX_PREFIX`]).
//!
//! Anything that does not answer is reported as such (`unreachable`, `not_configured`), never as zero.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::context::ConsumerInfoErrorKind;
use axum::Json;
use axum::extract::State;
use futures::{StreamExt, TryStreamExt};
use id77_platform::Namespace;
use id77_platform::auth::Role;
use id77_proto::events::{self, Publisher, durables, streams};
use serde::Serialize;
use tokio::sync::OnceCell;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Authenticated;
use crate::live::NatsSettings;
use crate::problem::Problem;

/// This module's operation and views in the OpenAPI document (`crate::api_docs`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(operations), components(schemas(Operations, OutboxBacklog, ConsumerLag, ReadState)))]
pub struct Api;

/// How long one metrics endpoint or one JetStream request gets to answer.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the first NATS connection may take before the call reports JetStream unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether a figure could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadState {
    /// Read now.
    Ok,
    /// The gateway has no address for it (`ID77_OPERATIONS_METRICS`, `ID77_NATS_URL`).
    NotConfigured,
    /// Its source did not answer, or answered without it.
    Unreachable,
    /// JetStream does not know this durable consumer (its service has not started yet).
    Missing,
}

/// One service's outbox.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct OutboxBacklog {
    #[schema(example = "routing")]
    pub service: String,
    pub state: ReadState,
    /// Events written and not yet published (null unless `state` is `ok`).
    #[schema(required = true, minimum = 0)]
    pub pending: Option<u64>,
    /// Age in seconds of the oldest of them (0 when none; null unless `state` is `ok`).
    #[schema(required = true, minimum = 0)]
    pub oldest_pending_age_seconds: Option<f64>,
}

/// One durable consumer of the event catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConsumerLag {
    /// Its durable name, shared by its service's replicas.
    #[schema(example = "routing-requests")]
    pub durable: String,
    #[schema(example = "routing")]
    pub service: String,
    pub state: ReadState,
    /// Messages of its stream not yet delivered to it (JetStream `num_pending`; null unless `state` is `ok`).
    #[schema(required = true, minimum = 0)]
    pub pending: Option<u64>,
    /// Delivered and not yet acknowledged (`num_ack_pending`; null unless `state` is `ok`).
    #[schema(required = true, minimum = 0)]
    pub ack_pending: Option<u64>,
    /// Messages it gave up on, kept in the DEADLETTER stream (null when that stream could not be read).
    #[schema(required = true, minimum = 0)]
    pub dead_letters: Option<u64>,
}

/// `GET /v1/operations`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Operations {
    /// Each service's outbox, in the order of the platform's services.
    pub outboxes: Vec<OutboxBacklog>,
    /// Whether JetStream could be read (consumers and dead letters).
    pub jetstream: ReadState,
    /// Every durable consumer of the event catalogue.
    pub consumers: Vec<ConsumerLag>,
    /// Messages of the DEADLETTER stream, every consumer together (null when it could not be read).
    #[schema(required = true, minimum = 0)]
    pub dead_letters_total: Option<u64>,
}

/// Where the figures come from: the services' metrics endpoints and the gateway's NATS settings; the NATS
/// connection is opened on the first call and kept.
pub struct Source {
    metrics: Vec<(String, String)>,
    nats: Option<NatsSettings>,
    http: reqwest::Client,
    jetstream: OnceCell<async_nats::jetstream::Context>,
}

impl Source {
    pub fn new(metrics: Vec<(String, String)>, nats: Option<NatsSettings>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(READ_TIMEOUT).connect_timeout(READ_TIMEOUT).build()?;
        Ok(Self { metrics, nats, http, jetstream: OnceCell::new() })
    }

    /// The first metrics endpoint of `service` that answers, as text.
    async fn scrape(&self, service: &str) -> Option<Result<String, ()>> {
        let urls: Vec<&str> = self.metrics.iter().filter(|(s, _)| s == service).map(|(_, u)| u.as_str()).collect();
        if urls.is_empty() {
            return None;
        }
        for url in urls {
            let answer = self.http.get(url).send().await.and_then(reqwest::Response::error_for_status);
            match answer {
                Ok(response) => match response.text().await {
                    Ok(text) => return Some(Ok(text)),
                    Err(error) => tracing::warn!(%error, url, "operations: metrics not read"),
                },
                Err(error) => tracing::warn!(%error, url, "operations: metrics endpoint unreachable"),
            }
        }
        Some(Err(()))
    }

    async fn outbox(&self, service: &str) -> OutboxBacklog {
        let (state, pending, age) = match self.scrape(service).await {
            None => (ReadState::NotConfigured, None, None),
            Some(Err(())) => (ReadState::Unreachable, None, None),
            Some(Ok(text)) => {
                let pending = metric(&text, "id77_outbox_pending").map(|v| v.max(0.0) as u64);
                let age = metric(&text, "id77_outbox_oldest_pending_age_seconds").map(|v| v.max(0.0));
                // Not sampled yet (the first 5 s of a service): unknown, not zero.
                let state = if pending.is_some() { ReadState::Ok } else { ReadState::Unreachable };
                (state, pending, age.filter(|_| pending.is_some()))
            }
        };
        OutboxBacklog { service: service.to_owned(), state, pending, oldest_pending_age_seconds: age }
    }

    /// The JetStream context, connecting on the first call (and again after a failed one).
    async fn jetstream(&self) -> Result<(&async_nats::jetstream::Context, Namespace), ReadState> {
        let Some(nats) = &self.nats else { return Err(ReadState::NotConfigured) };
        let connect = || async {
            let ca_file = id77_platform::config::nats_ca_file();
            let connecting = id77_platform::nats::connect_with_inbox(
                &nats.url,
                "gateway-operations",
                nats.nkey_file.as_deref(),
                ca_file.as_deref(),
                Some(id77_platform::nats::GATEWAY_INBOX_PREFIX),
            );
            match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Ok(Ok((_, mut js))) => {
                    js.set_timeout(READ_TIMEOUT);
                    Ok(js)
                }
                Ok(Err(error)) => Err(format!("{error:#}")),
                Err(_) => Err("no answer".to_owned()),
            }
        };
        match self.jetstream.get_or_try_init(connect).await {
            Ok(js) => Ok((js, Namespace::new(nats.prefix.clone()))),
            Err(error) => {
                tracing::warn!(error, "operations: NATS unreachable");
                Err(ReadState::Unreachable)
            }
        }
    }

    /// Every figure, read now.
    pub async fn read(&self) -> Operations {
        let outboxes = futures::future::join_all(Publisher::ALL.iter().map(|p| self.outbox(p.name()))).await;
        let (jetstream, consumers, total) = match self.jetstream().await {
            Err(state) => (state, durables::ALL.iter().map(|d| consumer(d, state, None, None, None)).collect(), None),
            Ok((js, ns)) => {
                let dead = dead_letters(js, &ns).await;
                let lags = futures::future::join_all(durables::ALL.iter().map(|d| async {
                    let stream = js.get_stream_no_info(ns.stream(d.reads.stream.name)).await;
                    let info = match stream {
                        Ok(stream) => stream.consumer_info(d.name).await.map_err(|e| {
                            let missing = matches!(
                                e.kind(),
                                ConsumerInfoErrorKind::NotFound | ConsumerInfoErrorKind::StreamNotFound
                            );
                            (missing, e.to_string())
                        }),
                        Err(error) => Err((false, error.to_string())),
                    };
                    let count = dead.as_ref().ok().map(|counts| counts.get(d.name).copied().unwrap_or(0));
                    match info {
                        Ok(info) => {
                            consumer(d, ReadState::Ok, Some(info.num_pending), Some(info.num_ack_pending as u64), count)
                        }
                        Err((true, _)) => consumer(d, ReadState::Missing, None, None, count),
                        Err((false, error)) => {
                            tracing::warn!(error, durable = d.name, "operations: consumer info not read");
                            consumer(d, ReadState::Unreachable, None, None, count)
                        }
                    }
                }))
                .await;
                let total = dead.as_ref().ok().map(|counts| counts.values().sum());
                let state = if dead.is_ok() { ReadState::Ok } else { ReadState::Unreachable };
                (state, lags, total)
            }
        };
        Operations { outboxes, jetstream, consumers, dead_letters_total: total }
    }
}

fn consumer(
    d: &events::Durable,
    state: ReadState,
    pending: Option<u64>,
    ack_pending: Option<u64>,
    dead_letters: Option<u64>,
) -> ConsumerLag {
    ConsumerLag {
        durable: d.name.to_owned(),
        service: d.service.name().to_owned(),
        state,
        pending,
        ack_pending,
        dead_letters,
    }
}

/// The DEADLETTER stream's messages by durable (from the subject `id77.deadletter.<durable>` of each); an empty
/// map when the stream has none. `Err` when the stream could not be read.
async fn dead_letters(js: &async_nats::jetstream::Context, ns: &Namespace) -> Result<BTreeMap<String, u64>, ()> {
    let stream = js.get_stream_no_info(ns.stream(streams::DEADLETTER.name)).await.map_err(|error| {
        tracing::warn!(%error, "operations: DEADLETTER stream not read");
    })?;
    let prefix = ns.subject(&events::deadletter(""));
    let subjects = stream.info_with_subjects(format!("{prefix}>")).await.map_err(|error| {
        tracing::warn!(%error, "operations: DEADLETTER stream info not read");
    })?;
    let pairs: Vec<(String, usize)> = subjects
        .take(1_000)
        .try_collect()
        .await
        .map_err(|error| tracing::warn!(%error, "operations: DEADLETTER subjects not read"))?;
    Ok(by_durable(&prefix, pairs))
}

/// Counts per subject → counts per durable (the subject's last part after `prefix`).
pub fn by_durable(prefix: &str, pairs: Vec<(String, usize)>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for (subject, count) in pairs {
        if let Some(durable) = subject.strip_prefix(prefix).filter(|d| !d.is_empty()) {
            *counts.entry(durable.to_owned()).or_insert(0) += count as u64;
        }
    }
    counts
}

/// The value of the first sample of `name` in an OpenMetrics / Prometheus text page (`name{labels} value` or
/// `name value`); None when absent or not a number.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let rest = if let Some(labelled) = rest.strip_prefix('{') {
            labelled.split_once('}')?.1
        } else if rest.starts_with(' ') {
            rest
        } else {
            return None;
        };
        rest.split_whitespace().next()?.parse::<f64>().ok().filter(|v| v.is_finite())
    })
}

/// `ID77_OPERATIONS_METRICS`: `service=url` pairs separated by commas (a service may appear once per replica).
pub fn parse_targets(value: &str) -> anyhow::Result<Vec<(String, String)>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (service, url) = pair.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("invalid ID77_OPERATIONS_METRICS entry {pair:?}: expected <service>=<metrics URL>")
            })?;
            let (service, url) = (service.trim(), url.trim());
            anyhow::ensure!(
                Publisher::from_name(service).is_some(),
                "invalid ID77_OPERATIONS_METRICS entry {pair:?}: {service:?} is not a service of the platform"
            );
            anyhow::ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "invalid ID77_OPERATIONS_METRICS entry {pair:?}: the URL must start with http:// or https://"
            );
            Ok((service.to_owned(), url.to_owned()))
        })
        .collect()
}

/// Operator: each service's outbox backlog, each durable consumer's lag and the dead letters.
#[utoipa::path(
    get,
    path = "/v1/operations",
    tag = "operations",
    operation_id = "getOperations",
    summary = "Outbox backlogs, consumer lag and dead letters (operator)",
    description = "Read when asked: each service's outbox backlog from its metrics endpoint (`ID77_OPERATIONS_METRICS`), \
                   each durable consumer's `num_pending` and `num_ack_pending` and the DEADLETTER stream's messages per \
                   consumer from JetStream. A figure that could not be read is null with its `state` saying why; the \
                   call itself answers 200. What to do about a backlog or dead letters: docs/operations.md.",
    responses((status = 200, description = "OK", body = Operations)),
    security(("bearerAuth" = []))
)]
pub async fn operations(State(state): State<AppState>, caller: Authenticated) -> Result<Json<Operations>, Problem> {
    caller.allow(&[Role::Operator])?;
    Ok(Json(state.operations().read().await))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# HELP id77_outbox_pending Outbox rows not yet published\n\
# TYPE id77_outbox_pending gauge\n\
id77_outbox_pending{service=\"routing\"} 3\n\
id77_outbox_pending_other 9\n\
id77_outbox_oldest_pending_age_seconds{service=\"routing\"} 12.5\n\
id77_build_info 1\n";

    #[test]
    fn samples_are_read_from_a_metrics_page() {
        assert_eq!(metric(PAGE, "id77_outbox_pending"), Some(3.0));
        assert_eq!(metric(PAGE, "id77_outbox_oldest_pending_age_seconds"), Some(12.5));
        assert_eq!(metric(PAGE, "id77_build_info"), Some(1.0));
        assert_eq!(metric(PAGE, "id77_outbox"), None, "a prefix of a name is not the name");
        assert_eq!(metric("id77_outbox_pending{service=\"x\"} NaN", "id77_outbox_pending"), None);
    }

    #[test]
    fn dead_letters_are_counted_by_durable() {
        let counts = by_durable(
            "t1.id77.deadletter.",
            vec![
                ("t1.id77.deadletter.routing-requests".into(), 2),
                ("t1.id77.deadletter.billing-offers".into(), 1),
                ("t1.id77.deadletter.".into(), 5),
                ("other.subject".into(), 7),
            ],
        );
        assert_eq!(counts, BTreeMap::from([("billing-offers".into(), 1), ("routing-requests".into(), 2)]));
    }

    #[test]
    fn metrics_targets_are_named_services_with_urls() -> anyhow::Result<()> {
        assert_eq!(
            parse_targets(" routing=http://r:9464/metrics, billing=http://b:9464/metrics ,")?,
            [
                ("routing".to_owned(), "http://r:9464/metrics".to_owned()),
                ("billing".to_owned(), "http://b:9464/metrics".to_owned())
            ]
        );
        assert!(parse_targets("")?.is_empty());
        assert!(parse_targets("routing").is_err());
        assert!(parse_targets("gateway=http://g/metrics").is_err());
        assert!(parse_targets("routing=r:9464").is_err());
        Ok(())
    }

    #[tokio::test]
    async fn nothing_configured_is_said_so_and_never_zero() -> anyhow::Result<()> {
        let read = Source::new(Vec::new(), None)?.read().await;
        assert_eq!(read.outboxes.len(), 5);
        assert!(read.outboxes.iter().all(|o| o.state == ReadState::NotConfigured && o.pending.is_none()));
        assert_eq!(read.jetstream, ReadState::NotConfigured);
        assert_eq!(read.consumers.len(), durables::ALL.len());
        assert!(read.consumers.iter().all(|c| c.pending.is_none() && c.dead_letters.is_none()));
        assert_eq!(read.dead_letters_total, None);
        let json = serde_json::to_value(&read)?;
        assert_eq!(json["outboxes"][0]["state"], "not_configured");
        assert!(json["outboxes"][0]["pending"].is_null());
        Ok(())
    }

    #[tokio::test]
    async fn an_outbox_is_read_from_its_service_metrics_endpoint() -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().route("/metrics", axum::routing::get(|| async { PAGE }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let targets = vec![
            ("routing".to_owned(), format!("http://{addr}/metrics")),
            // A closed port: billing's endpoint does not answer.
            ("billing".to_owned(), "http://127.0.0.1:9/metrics".to_owned()),
        ];
        let read = Source::new(targets, None)?.read().await;
        let routing = read.outboxes.iter().find(|o| o.service == "routing").expect("routing");
        assert_eq!(
            (routing.state, routing.pending, routing.oldest_pending_age_seconds),
            (ReadState::Ok, Some(3), Some(12.5))
        );
        let billing = read.outboxes.iter().find(|o| o.service == "billing").expect("billing");
        assert_eq!((billing.state, billing.pending), (ReadState::Unreachable, None));
        let membership = read.outboxes.iter().find(|o| o.service == "membership").expect("membership");
        assert_eq!(membership.state, ReadState::NotConfigured);
        Ok(())
    }
}
