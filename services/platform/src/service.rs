//! What every service does at start-up, in one place: connect and migrate the database, connect NATS, ensure
//! the streams it publishes to, run the outbox relay and its consumers, serve gRPC, and stop cleanly.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::service::Routes;

use crate::consumer::{self, ConsumerSpec, EventHandler};
use crate::nats::{self, Namespace};
use crate::outbox::Relay;
use crate::streams::StreamDef;
use crate::{PlatformConfig, db};

/// A started service's connections and background tasks.
pub struct ServiceContext {
    pub config: PlatformConfig,
    /// Verifies the callers' access tokens.
    pub auth: crate::auth::Authenticator,
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub ns: Namespace,
    pub shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl ServiceContext {
    /// Connects to the database (creating and migrating it) and to NATS, and ensures `owned_streams`.
    pub async fn start(
        config: PlatformConfig,
        migrations: &Migrator,
        owned_streams: &[StreamDef],
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let started = std::time::Instant::now();
        let pool = db::connect(&config.database_url, migrations, config.db_max_connections).await?;
        let (client, js) =
            nats::connect_with(&config.nats_url, config.service, config.nats_nkey_file.as_deref()).await?;
        let ns = Namespace::new(config.nats_prefix.clone());
        let settings = nats::StreamSettings { replicas: config.stream_replicas };
        for stream in owned_streams {
            nats::ensure_stream_with(&js, &ns, *stream, settings).await?;
        }
        tracing::info!(
            service = config.service,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "dependencies ready"
        );
        let auth = config.authenticator()?;
        let tasks = TaskTracker::new();
        let metrics = crate::metrics::global();
        metrics.register_service(config.service);
        if let Some(addr) = config.metrics_addr {
            crate::metrics::serve(addr, shutdown.clone()).await?;
        }
        tasks.spawn(crate::metrics::sample_database(
            config.service,
            pool.clone(),
            Duration::from_secs(5),
            shutdown.clone(),
        ));
        Ok(Self { config, auth, pool, nats: client, js, ns, shutdown, tasks })
    }

    /// Publishes this service's outbox.
    pub fn spawn_outbox_relay(&self) {
        let relay = Relay::new(self.pool.clone(), self.js.clone(), self.ns.clone()).for_service(self.config.service);
        self.tasks.spawn(relay.run(self.shutdown.clone()));
    }

    /// Runs an idempotent consumer.
    pub fn spawn_consumer<H: EventHandler>(&self, spec: ConsumerSpec, handler: Arc<H>) {
        self.tasks.spawn(consumer::sample_lag(
            self.config.service,
            self.js.clone(),
            self.ns.clone(),
            spec.clone(),
            Duration::from_secs(5),
            self.shutdown.clone(),
        ));
        self.tasks.spawn(consumer::run_for(
            self.config.service,
            self.pool.clone(),
            self.js.clone(),
            self.ns.clone(),
            spec,
            handler,
            self.shutdown.clone(),
        ));
    }

    /// Runs any other background task; it must return when `shutdown` is cancelled.
    pub fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task);
    }

    /// Serves gRPC until shutdown, then waits for the background tasks and closes the connections.
    ///
    /// Every step of the stop is bounded, so that a stop takes at most [`crate::grpc::DRAIN_TIMEOUT`] plus
    /// [`TASKS_TIMEOUT`], [`POOL_CLOSE_TIMEOUT`] and [`NATS_FLUSH_TIMEOUT`] (under 9 s) with PostgreSQL or NATS
    /// gone: the background tasks are told to stop at the same time as the server. Unbounded, two steps never
    /// ended without their dependency: the NATS flush (while disconnected, the client answers a flush only once
    /// it has reconnected: with NATS gone, never), and the pool's close (it waits for every checked-out
    /// connection, held by a task that did not stop).
    pub async fn serve(self, listener: TcpListener, routes: Routes, health_names: &[&str]) -> anyhow::Result<()> {
        let server = crate::grpc::Server {
            service: self.config.service,
            health_names,
            auth: self.auth.clone(),
            pool: self.pool.clone(),
            nats: self.nats.clone(),
        };
        let result = crate::grpc::serve(server, listener, routes, self.shutdown.clone()).await;
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(TASKS_TIMEOUT, self.tasks.wait()).await.is_err() {
            tracing::warn!("background tasks did not stop within {TASKS_TIMEOUT:?}; leaving them");
        }
        if tokio::time::timeout(POOL_CLOSE_TIMEOUT, self.pool.close()).await.is_err() {
            tracing::warn!("database connections not closed within {POOL_CLOSE_TIMEOUT:?}; leaving them");
        }
        close_nats(&self.nats).await;
        tracing::info!(service = self.config.service, "stopped");
        result
    }
}

/// How long the background tasks (outbox relay, consumers, sweepers) get to stop after shutdown, beyond the time
/// the gRPC server took to drain (they were told to stop at the same time).
pub const TASKS_TIMEOUT: Duration = Duration::from_secs(2);
/// How long closing the database connections may take.
pub const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the last NATS flush may take ([`close_nats`]).
pub use id77_bus::nats::FLUSH_TIMEOUT as NATS_FLUSH_TIMEOUT;

/// Sends what the NATS client still buffers, if it is connected, within [`NATS_FLUSH_TIMEOUT`]
/// (`id77_bus::nats::close`).
pub use id77_bus::nats::close as close_nats;
