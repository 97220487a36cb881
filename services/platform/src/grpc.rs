//! gRPC server start: the service's routes plus the standard health service (NOT_SERVING whenever the database
//! or NATS stops answering) and reflection over every ID 77 contract.

use std::time::Duration;

use futures::StreamExt;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::ServingStatus;

/// Largest gRPC message a service accepts.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Serves `routes` on `listener` until `shutdown`, then drains in-flight calls.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    health_names: &[&str],
    pool: PgPool,
    nats: async_nats::Client,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(id77_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let names: Vec<String> =
        std::iter::once(String::new()).chain(health_names.iter().map(|s| (*s).to_owned())).collect();
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
    let result = tonic::transport::Server::builder()
        .timeout(Duration::from_secs(30))
        .add_routes(routes)
        .add_service(health)
        .add_service(reflection)
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await;
    watchdog.abort();
    result.map_err(Into::into)
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
