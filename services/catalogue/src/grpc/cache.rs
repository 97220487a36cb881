//! Recent search results, so that a popular search goes neither to PostgreSQL nor through filtering and facets
//! on every call.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use id77_proto::catalogue::v1 as pb;

use crate::store::SearchRow;

/// How long a search's match set is reused. Writes through this replica invalidate at once; another
/// replica's writes are seen after at most this long.
pub const SEARCH_CACHE_TTL: Duration = Duration::from_secs(2);
/// Most distinct queries kept (the cache is cleared when full).
const SEARCH_CACHE_ENTRIES: usize = 1024;

/// When a result was computed, under which catalogue generation, and the result.
type Entry<V> = (Instant, u64, Arc<V>);

/// Recent results by key.
pub(super) struct Recent<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
}

impl<K: std::hash::Hash + Eq, V> Default for Recent<K, V> {
    fn default() -> Self {
        Self { entries: Mutex::new(HashMap::new()) }
    }
}

impl<K: std::hash::Hash + Eq, V> Recent<K, V> {
    pub(super) fn get(&self, key: &K, generation: u64) -> Option<Arc<V>> {
        let entries = self.entries.lock().ok()?;
        let (at, entry_generation, value) = entries.get(key)?;
        (*entry_generation == generation && at.elapsed() < SEARCH_CACHE_TTL).then(|| value.clone())
    }

    pub(super) fn put(&self, key: K, generation: u64, value: Arc<V>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= SEARCH_CACHE_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (Instant::now(), generation, value));
        }
    }
}

/// Match sets by words (shared by every filter and page), and whole answers by request (not for "eligible",
/// which depends on the caller).
#[derive(Default)]
pub(super) struct SearchCache {
    /// Bumped after each committed write that search can see; entries of an older generation are stale.
    generation: AtomicU64,
    pub(super) matches: Recent<Vec<String>, Vec<SearchRow>>,
    pub(super) answers: Recent<Vec<u8>, pb::SearchOffersResponse>,
}

impl SearchCache {
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// After a committed write that search can see.
    pub(super) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}
