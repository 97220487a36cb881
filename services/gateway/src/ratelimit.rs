//! Per-client rate limiting: an in-memory token bucket per client address and per class of call.
//!
//! - Login, refresh and invitation acceptance: `ID77_AUTH_RATE_LIMIT_PER_MINUTE` (10) per minute, burst as
//!   many; membership also locks an account after repeated failures.
//! - Everything else (but `/healthz` and `/readyz`): `ID77_RATE_LIMIT_PER_MINUTE` (600) per minute, burst as
//!   many.
//!
//! The client is the peer address, unless the peer is a trusted proxy ([`ForwardedFor`]):
//! - `ID77_TRUSTED_PROXIES` (addresses and CIDR blocks: the ingress controller, the portal): from those peers
//!   only, `X-Forwarded-For` is read from the right, each trusted hop vouching for the entry on its left; the
//!   client is the rightmost entry that is not a trusted proxy. Entries further left were written by the
//!   client itself and are never believed, so a forged header changes nothing. The portal's users are thus
//!   keyed by their own address (the portal appends the address it saw) instead of sharing the portal's.
//! - `ID77_TRUST_FORWARDED_FOR=1` without `ID77_TRUSTED_PROXIES` (the former setting, kept for compatibility):
//!   the last entry from any peer, one hop only: right only when every peer is a proxy that appends it.
//!
//! IPv6 clients are keyed by their /64, which one host usually controls whole.
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

/// An address block: `addr/prefix`, `addr` with its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    addr: IpAddr,
    prefix: u8,
}

impl Block {
    fn parse(text: &str) -> Option<Self> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr.parse::<IpAddr>().ok()?, Some(prefix.parse::<u8>().ok()?)),
            None => (text.parse::<IpAddr>().ok()?, None),
        };
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then(|| Self { addr: masked(addr, prefix), prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && masked(ip, self.prefix) == self.addr
    }
}

impl std::fmt::Display for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `ip` with all but its first `prefix` bits cleared.
fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix.min(32))).unwrap_or(0);
            IpAddr::V4(std::net::Ipv4Addr::from(v4.to_bits() & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix.min(128))).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(v6.to_bits() & mask))
        }
    }
}

/// Whose `X-Forwarded-For` the gateway believes, and how far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ForwardedFor {
    /// Never: the client is the peer (the default).
    #[default]
    Ignored,
    /// `ID77_TRUST_FORWARDED_FOR=1` alone (former setting): the last entry, whoever the peer.
    LastEntryFromAnyPeer,
    /// `ID77_TRUSTED_PROXIES`: read from these peers only, from the right, past every trusted hop.
    FromProxies(TrustedProxies),
}

impl ForwardedFor {
    /// The policy of the two settings: `ID77_TRUSTED_PROXIES` wins over `ID77_TRUST_FORWARDED_FOR`.
    pub fn new(trust_forwarded_for: bool, trusted_proxies: &TrustedProxies) -> Self {
        if !trusted_proxies.is_empty() {
            Self::FromProxies(trusted_proxies.clone())
        } else if trust_forwarded_for {
            Self::LastEntryFromAnyPeer
        } else {
            Self::Ignored
        }
    }
}

impl std::fmt::Display for ForwardedFor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ignored => f.write_str("ignored"),
            Self::LastEntryFromAnyPeer => f.write_str("last entry from any peer"),
            Self::FromProxies(proxies) => write!(f, "from {proxies}"),
        }
    }
}

/// The trusted proxies: addresses and CIDR blocks (`ID77_TRUSTED_PROXIES`, comma-separated).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    blocks: Vec<Block>,
}

impl TrustedProxies {
    /// Comma-separated addresses (`10.0.0.7`, `::1`) and blocks (`10.42.0.0/16`, `fd00::/8`); empty: none.
    pub fn parse(value: &str) -> anyhow::Result<Self> {
        let mut blocks = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match Block::parse(entry) {
                Some(block) => blocks.push(block),
                None => anyhow::bail!(
                    "invalid ID77_TRUSTED_PROXIES entry {entry:?}: expected an IP address or a CIDR block (10.42.0.0/16)"
                ),
            }
        }
        Ok(Self { blocks })
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Whether `ip` (IPv4-mapped IPv6 counts as IPv4) is one of them.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|b| b.contains(ip))
    }
}

impl std::fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, block) in self.blocks.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{block}")?;
        }
        Ok(())
    }
}

/// The client's address under `policy` (see [`ForwardedFor`]). Unspecified (`0.0.0.0`) when the peer is not
/// known (in-process tests).
pub fn client_ip(headers: &HeaderMap, peer: Option<&ConnectInfo<SocketAddr>>, policy: &ForwardedFor) -> IpAddr {
    let peer = peer.map(|ConnectInfo(addr)| addr.ip().to_canonical()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
    match policy {
        ForwardedFor::Ignored => peer,
        ForwardedFor::LastEntryFromAnyPeer => forwarded_entries(headers).next().and_then(parse_entry).unwrap_or(peer),
        ForwardedFor::FromProxies(proxies) => {
            // Each trusted hop vouches for the entry on its left; the first hop that is not a trusted proxy is
            // the client. A malformed entry ends the walk at the hop that wrote it.
            let mut client = peer;
            if !proxies.contains(client) {
                return client;
            }
            for entry in forwarded_entries(headers) {
                let Some(ip) = parse_entry(entry) else { return client };
                client = ip;
                if !proxies.contains(client) {
                    return client;
                }
            }
            // Every hop is a trusted proxy: the request started inside; the leftmost is the furthest known.
            client
        }
    }
}

/// The `X-Forwarded-For` entries from the right: the last header's last entry first.
fn forwarded_entries(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        // A header that is not visible ASCII counts as one malformed entry.
        .flat_map(|value| value.to_str().unwrap_or("?").rsplit(',').map(str::trim))
}

/// One entry: an address, or an address with a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
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
        let (ignored, legacy) = (ForwardedFor::Ignored, ForwardedFor::LastEntryFromAnyPeer);
        assert_eq!(client_ip(&headers, Some(&peer), &ignored), ip("10.0.0.9"));
        assert_eq!(client_ip(&headers, Some(&peer), &legacy), ip("192.0.2.10"));
        headers.append("x-forwarded-for", HeaderValue::from_static("192.0.2.11"));
        assert_eq!(client_ip(&headers, Some(&peer), &legacy), ip("192.0.2.11"));
        let mut garbage = HeaderMap::new();
        garbage.insert("x-forwarded-for", HeaderValue::from_static("1.2.3.4, nonsense"));
        assert_eq!(client_ip(&garbage, Some(&peer), &legacy), ip("10.0.0.9"));
        assert_eq!(client_ip(&HeaderMap::new(), None, &legacy), ip("0.0.0.0"));
    }

    fn proxies(list: &str) -> ForwardedFor {
        ForwardedFor::FromProxies(TrustedProxies::parse(list).unwrap_or_else(|e| panic!("{e:#}")))
    }

    fn xff(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_static(value));
        }
        headers
    }

    fn from(addr: &str) -> ConnectInfo<SocketAddr> {
        ConnectInfo(addr.parse().unwrap_or_else(|e| panic!("{addr}: {e}")))
    }

    #[test]
    fn trusted_proxies_parse_addresses_and_blocks_and_refuse_anything_else() {
        let parsed = TrustedProxies::parse(" 10.42.0.0/16, 192.0.2.7 ,fd00::/8, ::1, 10.1.2.3/8 ").ok();
        assert_eq!(
            parsed.map(|p| p.to_string()).as_deref(),
            Some("10.42.0.0/16,192.0.2.7/32,fd00::/8,::1/128,10.0.0.0/8")
        );
        assert!(TrustedProxies::parse("").is_ok_and(|p| p.is_empty()));
        for bad in ["10.0.0.0/33", "::/129", "portal", "10.0.0.0/", "10.0.0.0/-1", "*", "10.0.0.1:80"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
        let set = TrustedProxies::parse("10.42.0.0/16,2001:db8:42::/48").unwrap_or_default();
        assert!(set.contains(ip("10.42.255.1")) && !set.contains(ip("10.43.0.1")));
        assert!(set.contains(ip("::ffff:10.42.0.9")), "IPv4-mapped IPv6 is IPv4");
        assert!(set.contains(ip("2001:db8:42:ffff::1")) && !set.contains(ip("2001:db8:43::1")));
        let everything = TrustedProxies::parse("0.0.0.0/0").unwrap_or_default();
        assert!(everything.contains(ip("203.0.113.1")) && !everything.contains(ip("2001:db8::1")));
    }

    #[test]
    fn the_policy_follows_the_settings_and_the_proxy_list_wins() {
        let list = TrustedProxies::parse("10.0.0.0/8").unwrap_or_default();
        assert_eq!(ForwardedFor::new(false, &TrustedProxies::default()), ForwardedFor::Ignored);
        assert_eq!(ForwardedFor::new(true, &TrustedProxies::default()), ForwardedFor::LastEntryFromAnyPeer);
        assert_eq!(ForwardedFor::new(true, &list), ForwardedFor::FromProxies(list.clone()));
        assert_eq!(ForwardedFor::new(false, &list), ForwardedFor::FromProxies(list));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_its_header_says() {
        let policy = proxies("10.42.0.0/16");
        let forged = xff(&["10.42.0.5", "198.51.100.7"]);
        assert_eq!(client_ip(&forged, Some(&from("203.0.113.9:5000")), &policy), ip("203.0.113.9"));
        assert_eq!(client_ip(&HeaderMap::new(), Some(&from("203.0.113.9:5000")), &policy), ip("203.0.113.9"));
        assert_eq!(client_ip(&forged, None, &policy), ip("0.0.0.0"), "unknown peer: not trusted");
    }

    #[test]
    fn from_a_trusted_peer_the_client_is_the_rightmost_untrusted_entry() {
        let policy = proxies("10.42.0.0/16, 192.0.2.250");
        let portal = from("10.42.3.4:41000");
        // The portal alone in front: it appended the browser's address.
        assert_eq!(client_ip(&xff(&["198.51.100.7"]), Some(&portal), &policy), ip("198.51.100.7"));
        // Ingress, then the portal: the portal appended the ingress's address, the ingress the browser's. The
        // browser's own forged entries on the left (even one claiming to be a proxy) are never reached.
        let hops = xff(&["10.42.0.1, 6.6.6.6, 198.51.100.7, 10.42.9.9"]);
        assert_eq!(client_ip(&hops, Some(&portal), &policy), ip("198.51.100.7"));
        // The same chain split over several headers, read last header first.
        let split = xff(&["10.42.0.1, 6.6.6.6", "198.51.100.7", "192.0.2.250"]);
        assert_eq!(client_ip(&split, Some(&portal), &policy), ip("198.51.100.7"));
        // No header from a trusted peer: the peer itself.
        assert_eq!(client_ip(&HeaderMap::new(), Some(&portal), &policy), ip("10.42.3.4"));
        // Every hop trusted: the leftmost.
        assert_eq!(client_ip(&xff(&["10.42.0.8, 10.42.0.9"]), Some(&portal), &policy), ip("10.42.0.8"));
        // Ports are dropped.
        assert_eq!(client_ip(&xff(&["198.51.100.7:5123"]), Some(&portal), &policy), ip("198.51.100.7"));
    }

    #[test]
    fn a_malformed_entry_ends_the_walk_at_the_hop_that_wrote_it() {
        let policy = proxies("10.42.0.0/16");
        let portal = from("10.42.3.4:41000");
        assert_eq!(client_ip(&xff(&["nonsense"]), Some(&portal), &policy), ip("10.42.3.4"));
        assert_eq!(client_ip(&xff(&["198.51.100.7, nonsense, 10.42.0.1"]), Some(&portal), &policy), ip("10.42.0.1"));
        assert_eq!(client_ip(&xff(&["198.51.100.7,"]), Some(&portal), &policy), ip("10.42.3.4"), "empty entry");
        let mut binary = HeaderMap::new();
        binary.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"198.51.100.7\xff").unwrap_or(HeaderValue::from_static("x")),
        );
        assert_eq!(client_ip(&binary, Some(&portal), &policy), ip("10.42.3.4"));
    }

    #[test]
    fn ipv6_proxies_and_clients() {
        let policy = proxies("fd00:42::/32, ::1");
        let portal = from("[fd00:42::17]:41000");
        let chain = xff(&["2001:db8:7::1, [2001:db8:7::2]:443, fd00:42::3"]);
        assert_eq!(client_ip(&chain, Some(&portal), &policy), ip("2001:db8:7::2"));
        assert_eq!(key(client_ip(&chain, Some(&portal), &policy)), ip("2001:db8:7::"));
        // An IPv4-mapped peer is matched as IPv4, and an IPv4 client behind an IPv6 proxy is read as such.
        let mapped = proxies("127.0.0.0/8");
        assert_eq!(client_ip(&xff(&["192.0.2.5"]), Some(&from("[::ffff:127.0.0.1]:80")), &mapped), ip("192.0.2.5"));
        assert_eq!(client_ip(&xff(&["::ffff:192.0.2.5"]), Some(&from("[::1]:80")), &policy), ip("192.0.2.5"));
    }
}
