//! The SLA timer task: every `interval`, fires the timers due by the service's clock
//! ([`Lifecycle::fire_due`]). Timers live in the database, so they survive restarts.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::flow::Lifecycle;

/// Runs until `shutdown`.
pub async fn run(pool: PgPool, lifecycle: Lifecycle, interval: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match lifecycle.fire_due(&pool, &shutdown).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(fired = n, "timers fired"),
            Err(error) => tracing::warn!(%error, "timer scan failed; will retry"),
        }
    }
}
