//! A small HTTP health endpoint for processes that serve neither gRPC nor HTTP (the referral consumer):
//! `GET /livez` answers 200 while the process runs (its runtime answers), `GET /readyz` 200 while its `ready`
//! check holds (e.g. its NATS connection is up), 503 otherwise. Kubernetes' `httpGet` probes ask them.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Serves `/livez` and `/readyz` on `addr` until `shutdown`; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    ready: impl Fn() -> bool + Send + Sync + 'static,
    shutdown: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding the health address {addr}"))?;
    let local = listener.local_addr()?;
    let ready: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(ready);
    let app = axum::Router::new().route("/livez", axum::routing::get(|| async { "ok" })).route(
        "/readyz",
        axum::routing::get(move || {
            let ready = ready.clone();
            async move {
                if ready() {
                    (http::StatusCode::OK, "ready")
                } else {
                    (http::StatusCode::SERVICE_UNAVAILABLE, "not ready")
                }
            }
        }),
    );
    tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned());
        if let Err(error) = server.await {
            tracing::warn!(%error, "health server stopped");
        }
    });
    tracing::info!(%local, "health served on /livez and /readyz");
    Ok(local)
}
