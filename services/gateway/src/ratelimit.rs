//! Per-client rate limiting: an in-memory token bucket per client address and per class of call.
//!
//! - Login, refresh and invitation acceptance: `ID77_AUTH_RATE_LIMIT_PER_MINUTE` (10) per minute, burst as
//!   many; membership also locks an account after repeated failures.
//! - Everything else (but `/healthz` and `/readyz`): `ID77_RATE_LIMIT_PER_MINUTE` (600) per minute, burst as
//!   many.
//!
//! The client is the peer address, or the last `X-Forwarded-For` entry when `ID77_TRUST_FORWARDED_FOR=1`
//! (only behind a proxy that appends it; otherwise anyone could pick its own key). IPv6 clients are keyed by
//! their /64, which one host usually controls whole.
//!
//! The buckets live in each gateway replica's memory: with N replicas behind a load balancer a client gets up
//! to N times the limit. The number of tracked clients is capped: idle clients (whose bucket has refilled) are
//! forgotten, and while the table is full new clients share one overflow bucket, so memory stays bounded under
//! a flood of addresses.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::http::HeaderMap;

/// How often the table is swept of idle clients anyway.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Sweeps triggered by a full table are at most this frequent.
const MIN_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A token bucket per client: `per_minute` tokens per minute, at most `per_minute` banked.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: u32,
    max_clients: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    clients: HashMap<IpAddr, Bucket>,
    /// Shared by the new clients while the table is full.
    overflow: Option<Bucket>,
    swept_at: Instant,
}

impl RateLimiter {
    /// `per_minute == 0` disables the limiter.
    pub fn new(per_minute: u32, max_clients: usize) -> Self {
        let state = State { clients: HashMap::new(), overflow: None, swept_at: Instant::now() };
        Self { per_minute, max_clients: max_clients.max(1), state: Mutex::new(state) }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.per_minute)
    }

    fn rate_per_sec(&self) -> f64 {
        f64::from(self.per_minute) / 60.0
    }

    /// The bucket's level at `now`.
    fn level(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.rate_per_sec()).min(self.capacity())
    }

    /// Takes a token for `client` at `now`: `Ok`, or how long to wait before the next one.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let Ok(mut state) = self.state.lock() else {
            // A panic while holding the lock cannot leave a bucket half-updated in a harmful way; fail open
            // rather than refusing every call.
            return Ok(());
        };
        if now.saturating_duration_since(state.swept_at) >= SWEEP_EVERY {
            self.sweep(&mut state, now);
        }
        let client = key(client);
        if !state.clients.contains_key(&client) && state.clients.len() >= self.max_clients {
            if now.saturating_duration_since(state.swept_at) >= MIN_SWEEP_INTERVAL {
                self.sweep(&mut state, now);
            }
            if state.clients.len() >= self.max_clients {
                let fresh = Bucket { tokens: self.capacity(), at: now };
                let mut overflow = state.overflow.unwrap_or(fresh);
                let result = self.take(&mut overflow, now);
                state.overflow = Some(overflow);
                return result;
            }
        }
        let capacity = self.capacity();
        let bucket = state.clients.entry(client).or_insert(Bucket { tokens: capacity, at: now });
        let mut copy = *bucket;
        let result = self.take(&mut copy, now);
        *bucket = copy;
        result
    }

    fn take(&self, bucket: &mut Bucket, now: Instant) -> Result<(), Duration> {
        let level = self.level(bucket, now);
        *bucket = Bucket { tokens: level, at: now };
        if level >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - level) / self.rate_per_sec()))
        }
    }

    /// Forgets the clients whose bucket has refilled (they are no different from new ones).
    fn sweep(&self, state: &mut State, now: Instant) {
        let capacity = self.capacity();
        state.clients.retain(|_, bucket| self.level(bucket, now) < capacity);
        if state.overflow.is_some_and(|b| self.level(&b, now) >= capacity) {
            state.overflow = None;
        }
        state.clients.shrink_to(self.max_clients.min(state.clients.len() * 2));
        state.swept_at = now;
    }

    /// Clients currently tracked.
    pub fn tracked(&self) -> usize {
        self.state.lock().map(|s| s.clients.len()).unwrap_or(0)
    }
}

/// The key of a client address: IPv4 as is (also when mapped into IPv6), IPv6 by its /64.
pub fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// The client's address: the peer, or the last `X-Forwarded-For` entry when trusted and well-formed.
/// Unspecified (`0.0.0.0`) when neither is known (in-process tests).
pub fn client_ip(headers: &HeaderMap, peer: Option<&ConnectInfo<SocketAddr>>, trust_forwarded_for: bool) -> IpAddr {
    if trust_forwarded_for && let Some(ip) = forwarded_for(headers) {
        return ip;
    }
    peer.map(|ConnectInfo(addr)| addr.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// The last entry of the last `X-Forwarded-For` header: the address the trusted proxy saw.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    let entry = last.to_str().ok()?.rsplit(',').next()?.trim();
    entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn a_bucket_allows_its_burst_then_one_token_per_interval() {
        let limiter = RateLimiter::new(10, 100);
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(limiter.check(ip("192.0.2.1"), t0).is_ok());
        }
        let wait = limiter.check(ip("192.0.2.1"), t0).err();
        assert_eq!(wait.map(|w| w.as_secs_f64().ceil() as u64), Some(6), "10 per minute: one every 6 s");
        assert!(limiter.check(ip("192.0.2.2"), t0).is_ok(), "another client has its own bucket");
        assert!(limiter.check(ip("192.0.2.1"), t0 + Duration::from_secs(6)).is_ok());
        assert!(limiter.check(ip("192.0.2.1"), t0 + Duration::from_secs(6)).is_err());
        // Idle for a minute: full again, never more.
        let later = t0 + Duration::from_secs(600);
        for _ in 0..10 {
            assert!(limiter.check(ip("192.0.2.1"), later).is_ok());
        }
        assert!(limiter.check(ip("192.0.2.1"), later).is_err());
    }

    #[test]
    fn zero_disables() {
        let limiter = RateLimiter::new(0, 1);
        for _ in 0..1000 {
            assert!(limiter.check(ip("192.0.2.1"), Instant::now()).is_ok());
        }
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn the_table_is_capped_and_new_clients_share_an_overflow_bucket() {
        let limiter = RateLimiter::new(2, 3);
        let t0 = Instant::now();
        for i in 1..=3u8 {
            assert!(limiter.check(IpAddr::from([198, 51, 100, i]), t0).is_ok());
        }
        assert_eq!(limiter.tracked(), 3);
        // Full, and nobody idle: the newcomers share one bucket of 2.
        assert!(limiter.check(ip("203.0.113.1"), t0).is_ok());
        assert!(limiter.check(ip("203.0.113.2"), t0).is_ok());
        assert!(limiter.check(ip("203.0.113.3"), t0).is_err());
        assert_eq!(limiter.tracked(), 3);
        // Once the tracked clients are idle (refilled), they are forgotten and newcomers get their own bucket.
        let later = t0 + Duration::from_secs(120);
        assert!(limiter.check(ip("203.0.113.3"), later).is_ok());
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        assert_eq!(key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(key(ip("192.0.2.7")), ip("192.0.2.7"));
        let limiter = RateLimiter::new(1, 10);
        let t0 = Instant::now();
        assert!(limiter.check(ip("2001:db8:1:2::1"), t0).is_ok());
        assert!(limiter.check(ip("2001:db8:1:2::2"), t0).is_err());
        assert!(limiter.check(ip("2001:db8:1:3::1"), t0).is_ok());
    }

    #[test]
    fn forwarded_for_is_read_only_when_trusted_and_from_the_right() {
        let peer = ConnectInfo(SocketAddr::from(([10, 0, 0, 9], 40000)));
        let mut headers = HeaderMap::new();
        headers.append("x-forwarded-for", HeaderValue::from_static("6.6.6.6, 192.0.2.10"));
        assert_eq!(client_ip(&headers, Some(&peer), false), ip("10.0.0.9"));
        assert_eq!(client_ip(&headers, Some(&peer), true), ip("192.0.2.10"));
        headers.append("x-forwarded-for", HeaderValue::from_static("192.0.2.11"));
        assert_eq!(client_ip(&headers, Some(&peer), true), ip("192.0.2.11"));
        let mut garbage = HeaderMap::new();
        garbage.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4, nonsense"));
        assert_eq!(client_ip(&garbage, Some(&peer), true), ip("10.0.0.9"));
        assert_eq!(client_ip(&HeaderMap::new(), None, true), ip("0.0.0.0"));
    }
}
