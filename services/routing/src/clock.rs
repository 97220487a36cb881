//! The time routing lives by. Production uses the system clock; tests use a [`TestClock`] they advance, and
//! end-to-end tests (which run the real binary) a [`FileOffsetClock`] whose offset they write to a file
//! (`ID77_TEST_CLOCK_FILE`, test only: never set it in a deployment).

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The current time, truncated to microseconds (what PostgreSQL stores).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        id77_platform::time::now()
    }
}

/// The system clock plus an offset the test moves forward.
#[derive(Debug, Clone, Default)]
pub struct TestClock {
    offset: Arc<Mutex<Duration>>,
}

impl TestClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut offset) = self.offset.lock() {
            *offset += by;
        }
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        let offset = self.offset.lock().map(|o| *o).unwrap_or_default();
        id77_platform::time::now() + offset
    }
}

/// Test only: the system clock plus a number of seconds read from a file at every call (missing, empty or
/// unreadable: no offset). End-to-end tests write the file to move the running service's clock.
#[derive(Debug, Clone)]
pub struct FileOffsetClock {
    path: PathBuf,
}

impl FileOffsetClock {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    fn offset(&self) -> Duration {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .and_then(Duration::try_seconds)
            .unwrap_or_default()
    }
}

impl Clock for FileOffsetClock {
    fn now(&self) -> DateTime<Utc> {
        id77_platform::time::now() + self.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_clocks_move_forward() {
        let clock = TestClock::new();
        let before = clock.now();
        clock.advance(Duration::days(3));
        assert!(clock.now() - before >= Duration::days(3));
        let file = std::env::temp_dir().join(format!("id77-clock-{}", uuid::Uuid::now_v7()));
        let clock = FileOffsetClock::new(&file);
        let real = SystemClock.now();
        assert!(clock.now() - real < Duration::seconds(5), "no file: no offset");
        let _ = std::fs::write(&file, "86400\n");
        assert!(clock.now() - real >= Duration::days(1));
        let _ = std::fs::write(&file, "garbage");
        assert!(clock.now() - real < Duration::seconds(5));
        let _ = std::fs::remove_file(&file);
    }
}
