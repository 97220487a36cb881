//! A short-lived cache of answers at the edge (catalogue search): the same query within `ttl` is answered from
//! the gateway's memory, without the gRPC hop to the catalogue, which was the fixed cost of a search
//! (docs/benchmarks.md). Two caches use it: anonymous answers, keyed by the query alone, and a member's
//! "eligible" answers, keyed by the member's id then the query (one member's answer is never another's; the
//! token is verified on every call before the cache is asked). The catalogue's own 2 s cache (ADR 0006) already
//! makes an answer up to 2 s old, so with the default 1 s here a newly published or archived offer shows in
//! search within 3 s.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Entries kept at most; past it, expired entries are dropped, then everything if still full.
pub const MAX_ENTRIES: usize = 1024;

pub struct EdgeCache {
    ttl: Duration,
    entries: Mutex<HashMap<Vec<u8>, (Instant, Bytes)>>,
}

impl EdgeCache {
    /// `ttl` zero disables the cache.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// The answer cached for `key` if younger than the ttl.
    pub fn get(&self, key: &[u8], now: Instant) -> Option<Bytes> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        entries.get(key).filter(|(at, _)| now.saturating_duration_since(*at) < self.ttl).map(|(_, body)| body.clone())
    }

    pub fn put(&self, key: Vec<u8>, body: Bytes, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, (at, _)| now.saturating_duration_since(*at) < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (now, body));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_served_within_its_ttl_then_asked_again() {
        let cache = EdgeCache::new(Duration::from_millis(1000));
        let t0 = Instant::now();
        assert_eq!(cache.get(b"q=voirie", t0), None);
        cache.put(b"q=voirie".to_vec(), Bytes::from_static(b"{\"offers\":[]}"), t0);
        assert_eq!(
            cache.get(b"q=voirie", t0 + Duration::from_millis(999)),
            Some(Bytes::from_static(b"{\"offers\":[]}"))
        );
        assert_eq!(cache.get(b"q=ecole", t0), None, "another query is another answer");
        assert_eq!(cache.get(b"q=voirie", t0 + Duration::from_millis(1000)), None, "expired");
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = EdgeCache::new(Duration::ZERO);
        let t0 = Instant::now();
        cache.put(b"k".to_vec(), Bytes::from_static(b"v"), t0);
        assert_eq!(cache.get(b"k", t0), None);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = EdgeCache::new(Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..(3 * MAX_ENTRIES) {
            cache.put(i.to_le_bytes().to_vec(), Bytes::from_static(b"v"), t0);
        }
        let len = cache.entries.lock().map(|e| e.len()).unwrap_or(usize::MAX);
        assert!(len <= MAX_ENTRIES, "{len} entries");
        let last = (3 * MAX_ENTRIES - 1).to_le_bytes();
        assert!(cache.get(&last, t0).is_some(), "the newest answer is kept");
    }
}
