//! The sessions' reminder timer: every `interval`, fires the reminders due by the service's clock
//! ([`crate::flow::sessions::fire_due_reminders`]). Timers live in the database (`session.remind_at`), so they
//! survive restarts, and fire once.

use std::time::Duration;

use id77_platform::time;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::flow::sessions;

/// Default scan interval (`ID77_SESSION_TIMER_MS`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(5000);

/// Runs until `shutdown`.
pub async fn run(pool: PgPool, interval: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        match sessions::fire_due_reminders(&pool, time::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(fired = n, "session reminders fired"),
            Err(error) => tracing::warn!(%error, "session reminder scan failed; will retry"),
        }
    }
}

/// The interval from `ID77_SESSION_TIMER_MS` (milliseconds, at least 10), else the default.
pub fn interval_from(raw: Option<&str>) -> anyhow::Result<Duration> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(DEFAULT_INTERVAL),
        Some(r) => match r.parse::<u64>() {
            Ok(ms) if ms >= 10 => Ok(Duration::from_millis(ms)),
            _ => anyhow::bail!("ID77_SESSION_TIMER_MS must be a number of milliseconds ≥ 10, not {r:?}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_configurable() {
        assert_eq!(interval_from(None).ok(), Some(DEFAULT_INTERVAL));
        assert_eq!(interval_from(Some(" 200 ")).ok(), Some(Duration::from_millis(200)));
        assert!(interval_from(Some("5")).is_err() && interval_from(Some("vite")).is_err());
    }
}
