//! The SLA timer task: every `interval`, fires the timers due by the service's clock, one transaction per
//! timer (`FOR UPDATE SKIP LOCKED`, so replicas share the work and a crash only delays a timer). Timers live
//! in the database, so they survive restarts.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::flow::{FlowError, Lifecycle};
use crate::store;

/// Runs until `shutdown`.
pub async fn run(pool: PgPool, lifecycle: Lifecycle, interval: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match fire_due(&pool, &lifecycle, &shutdown).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(fired = n, "timers fired"),
            Err(error) => tracing::warn!(%error, "timer scan failed; will retry"),
        }
    }
}

/// Fires every timer due now; returns how many fired.
pub async fn fire_due(pool: &PgPool, lifecycle: &Lifecycle, shutdown: &CancellationToken) -> Result<usize, FlowError> {
    let mut fired = 0;
    while !shutdown.is_cancelled() {
        let mut tx = pool.begin().await?;
        let Some(timer) = store::due_timers(&mut tx, lifecycle.now(), 1).await?.into_iter().next() else {
            return Ok(fired);
        };
        lifecycle.fire(&mut tx, &timer).await?;
        tx.commit().await?;
        fired += 1;
    }
    Ok(fired)
}
