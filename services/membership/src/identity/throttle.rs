//! Login throttling that slows password guessing without letting a stranger lock the owner out (OWASP
//! Authentication Cheat Sheet, "Login Throttling" and "Blocking Brute Force Attacks": progressive delays per
//! account and client address, and a per-account limit that trusted clients skip, like its device cookies).
//!
//! - **Per (account, client address)**: the first [`PAIR_FREE_FAILURES`] failures cost nothing; after failure
//!   n ≥ 5 the next attempt from that address is refused until 1, 2, 4 … seconds after it
//!   ([`pair_delay`], at most [`pair_delay_cap`]). A success from the address forgets its failures.
//! - **Per account, across addresses**: once [`ACCOUNT_FREE_FAILURES`] failures happened with no quiet
//!   [`account_quiet`] in between, addresses the account never signed in from share one attempt every
//!   [`account_spacing`] (1 s, growing to at most [`account_spacing_cap`]). An address with a successful
//!   sign-in in the last [`known_client_ttl`] (a *known client*) skips this limit.
//!
//! Nothing locks: the right password works from a known address whatever strangers do, and from a new address
//! after at most the account spacing. A refused attempt is refused **before** the password is checked, with
//! `RESOURCE_EXHAUSTED` and a `google.rpc.RetryInfo` (the gateway's 429 and `Retry-After`), so it tells nothing
//! about the password. Accounts are keyed by the normalized email, known or not, so throttling does not reveal
//! whether an account exists. The state lives in PostgreSQL (every replica sees the same), row-locked per
//! account and address; an attempt that passes a delay reserves the next slot, so parallel requests gain nothing.
//! IPv6 addresses count per /64 (one host usually holds a whole /64).

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, TimeDelta, Utc};
use id77_platform::error::ERROR_DOMAIN;
use sqlx::{PgConnection, PgPool};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::domain::{self as policy, audit};
use super::store::{self, Audit};

/// Failures from one (account, address) before its attempts are delayed.
pub const PAIR_FREE_FAILURES: i32 = 5;
/// Failures on one account (from any address) before new addresses are spaced out.
pub const ACCOUNT_FREE_FAILURES: i32 = 10;
/// Reason (`google.rpc.ErrorInfo`) of a refused attempt.
pub const REASON: &str = "LOGIN_THROTTLED";

/// Longest delay between two attempts from one (account, address).
pub fn pair_delay_cap() -> TimeDelta {
    TimeDelta::minutes(15)
}

/// How long an (account, address) remembers its failures after the last one.
pub fn pair_memory() -> TimeDelta {
    TimeDelta::hours(24)
}

/// A quiet period (no failure on the account) after which the account's count starts again.
pub fn account_quiet() -> TimeDelta {
    TimeDelta::minutes(15)
}

/// Longest spacing between attempts from new addresses on an account under attack: the most the owner waits.
pub fn account_spacing_cap() -> TimeDelta {
    TimeDelta::seconds(30)
}

/// How long an address stays known after a successful sign-in.
pub fn known_client_ttl() -> TimeDelta {
    TimeDelta::days(30)
}

/// Delay before the next attempt from an (account, address) after its `failures`-th failure: none for the
/// first four, then 1 s, 2 s, 4 s … up to [`pair_delay_cap`].
pub fn pair_delay(failures: i32) -> TimeDelta {
    if failures < PAIR_FREE_FAILURES {
        return TimeDelta::zero();
    }
    let doublings = u32::try_from(failures - PAIR_FREE_FAILURES).unwrap_or(0).min(20);
    TimeDelta::seconds(1_i64 << doublings).min(pair_delay_cap())
}

/// Spacing between attempts from new addresses on an account with `failures` recent failures: none below
/// [`ACCOUNT_FREE_FAILURES`], then 1 s, doubling every ten more failures, up to [`account_spacing_cap`].
pub fn account_spacing(failures: i32) -> TimeDelta {
    if failures < ACCOUNT_FREE_FAILURES {
        return TimeDelta::zero();
    }
    let doublings = u32::try_from((failures - ACCOUNT_FREE_FAILURES) / 10).unwrap_or(0).min(20);
    TimeDelta::seconds(1_i64 << doublings).min(account_spacing_cap())
}

/// The address as throttling counts it: IPv4 as is (also when IPv4-mapped), IPv6 by its /64, anything else
/// cleaned as the audit log keeps it (`unknown` when empty).
pub fn client_key(client: &str) -> String {
    let client = policy::clean_client(client);
    match client.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) if client.is_empty() => "unknown".to_owned(),
        Err(_) => client,
    }
}

/// Who is trying: the normalized email (known account or not) and the client's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub email: String,
    pub client: String,
}

impl Key {
    pub fn new(email: &str, client: &str) -> Self {
        Self { email: email.trim().to_lowercase().chars().take(320).collect(), client: client_key(client) }
    }
}

/// One row of either counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Counter {
    pub failures: i32,
    pub last_failure_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
}

impl Counter {
    fn fresh(now: DateTime<Utc>) -> Self {
        Self { failures: 0, last_failure_at: now, next_attempt_at: now }
    }

    /// The counter as it counts at `now`: forgotten after `memory` without a failure.
    fn current(self, now: DateTime<Utc>, memory: TimeDelta) -> Self {
        if self.failures > 0 && now - self.last_failure_at > memory { Self::fresh(now) } else { self }
    }
}

/// What an attempt at `now` finds on one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// No delay applies.
    Open,
    /// A delay applies and has passed: this attempt takes the slot, the next waits until `next_attempt_at`.
    Reserve { next_attempt_at: DateTime<Utc> },
    /// Too soon: retry after this long.
    Wait(TimeDelta),
}

/// The pair gate: open for the first free failures, then one attempt per [`pair_delay`].
pub fn pair_gate(counter: Counter, now: DateTime<Utc>) -> Gate {
    let counter = counter.current(now, pair_memory());
    gate(counter, now, pair_delay(counter.failures))
}

/// The account gate for a new address: open until the account is under attack, then one attempt per
/// [`account_spacing`].
pub fn account_gate(counter: Counter, now: DateTime<Utc>) -> Gate {
    let counter = counter.current(now, account_quiet());
    gate(counter, now, account_spacing(counter.failures))
}

fn gate(counter: Counter, now: DateTime<Utc>, delay: TimeDelta) -> Gate {
    if delay <= TimeDelta::zero() {
        Gate::Open
    } else if counter.next_attempt_at > now {
        Gate::Wait(counter.next_attempt_at - now)
    } else {
        Gate::Reserve { next_attempt_at: now + delay }
    }
}

/// The pair counter after a failure at `now`.
pub fn pair_after_failure(counter: Counter, now: DateTime<Utc>) -> Counter {
    let failures = counter.current(now, pair_memory()).failures.saturating_add(1);
    Counter { failures, last_failure_at: now, next_attempt_at: now + pair_delay(failures) }
}

/// The account counter after a failure at `now` (its slot is left as the gate reserved it).
pub fn account_after_failure(counter: Counter, now: DateTime<Utc>) -> Counter {
    let current = counter.current(now, account_quiet());
    Counter { failures: current.failures.saturating_add(1), last_failure_at: now, ..current }
}

/// An attempt refused before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub retry_after: TimeDelta,
    /// True when the account-wide limit refused it (an address the account never signed in from).
    pub account_wide: bool,
}

impl Refusal {
    /// Whole seconds to wait, at least 1.
    pub fn retry_after_secs(&self) -> i64 {
        let millis = self.retry_after.num_milliseconds().max(1);
        (millis + 999) / 1000
    }
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Self {
        let mut details = ErrorDetails::new();
        details.set_error_info(REASON, ERROR_DOMAIN, HashMap::new());
        let delay = refusal.retry_after.to_std().unwrap_or_default().max(std::time::Duration::from_millis(1));
        details.set_retry_info(Some(delay));
        let message = format!("too many sign-in attempts: retry in {} s", refusal.retry_after_secs());
        Status::with_error_details(Code::ResourceExhausted, message, details)
    }
}

async fn pair_for_update(conn: &mut PgConnection, key: &Key) -> Result<Option<Counter>, sqlx::Error> {
    sqlx::query_as(
        "SELECT failures, last_failure_at, next_attempt_at FROM login_throttle_pair
         WHERE email = $1 AND client = $2 FOR UPDATE",
    )
    .bind(&key.email)
    .bind(&key.client)
    .fetch_optional(conn)
    .await
}

async fn account_for_update(conn: &mut PgConnection, email: &str) -> Result<Option<Counter>, sqlx::Error> {
    sqlx::query_as(
        "SELECT failures, last_failure_at, next_attempt_at FROM login_throttle_account WHERE email = $1 FOR UPDATE",
    )
    .bind(email)
    .fetch_optional(conn)
    .await
}

async fn is_known(conn: &mut PgConnection, key: &Key, now: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM login_known_client WHERE email = $1 AND client = $2 AND last_success_at > $3)",
    )
    .bind(&key.email)
    .bind(&key.client)
    .bind(now - known_client_ttl())
    .fetch_one(conn)
    .await
}

async fn reserve_pair(conn: &mut PgConnection, key: &Key, next_attempt_at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE login_throttle_pair SET next_attempt_at = $3 WHERE email = $1 AND client = $2")
        .bind(&key.email)
        .bind(&key.client)
        .bind(next_attempt_at)
        .execute(conn)
        .await
        .map(|_| ())
}

async fn reserve_account(
    conn: &mut PgConnection,
    email: &str,
    next_attempt_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE login_throttle_account SET next_attempt_at = $2 WHERE email = $1")
        .bind(email)
        .bind(next_attempt_at)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Whether an attempt may check its password now; an attempt past a delay takes the next slot. Locks the pair
/// row, then the account row (the order every function here follows).
pub async fn admit(pool: &PgPool, key: &Key, now: DateTime<Utc>) -> Result<Result<(), Refusal>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if let Some(pair) = pair_for_update(&mut tx, key).await? {
        match pair_gate(pair, now) {
            Gate::Open => {}
            Gate::Wait(retry_after) => return Ok(Err(Refusal { retry_after, account_wide: false })),
            Gate::Reserve { next_attempt_at } => reserve_pair(&mut tx, key, next_attempt_at).await?,
        }
    }
    if !is_known(&mut tx, key, now).await?
        && let Some(account) = account_for_update(&mut tx, &key.email).await?
    {
        match account_gate(account, now) {
            Gate::Open => {}
            // Dropping the transaction gives back the pair's slot.
            Gate::Wait(retry_after) => return Ok(Err(Refusal { retry_after, account_wide: true })),
            Gate::Reserve { next_attempt_at } => reserve_account(&mut tx, &key.email, next_attempt_at).await?,
        }
    }
    tx.commit().await?;
    Ok(Ok(()))
}

/// Counts a failed attempt (wrong password, unknown, inactive or removed account alike) for the pair and the
/// account; audits `login.throttled` when either starts delaying. Forgets a few long-idle counters.
pub async fn failed(pool: &PgPool, key: &Key, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO login_throttle_pair (email, client, failures, last_failure_at, next_attempt_at)
         VALUES ($1, $2, 0, $3, $3) ON CONFLICT (email, client) DO NOTHING",
    )
    .bind(&key.email)
    .bind(&key.client)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let pair = pair_for_update(&mut tx, key).await?.unwrap_or(Counter::fresh(now));
    let pair = pair_after_failure(pair, now);
    sqlx::query(
        "UPDATE login_throttle_pair SET failures = $3, last_failure_at = $4, next_attempt_at = $5
         WHERE email = $1 AND client = $2",
    )
    .bind(&key.email)
    .bind(&key.client)
    .bind(pair.failures)
    .bind(pair.last_failure_at)
    .bind(pair.next_attempt_at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO login_throttle_account (email, failures, last_failure_at, next_attempt_at)
         VALUES ($1, 0, $2, $2) ON CONFLICT (email) DO NOTHING",
    )
    .bind(&key.email)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let account = account_for_update(&mut tx, &key.email).await?.unwrap_or(Counter::fresh(now));
    let account = account_after_failure(account, now);
    sqlx::query(
        "UPDATE login_throttle_account SET failures = $2, last_failure_at = $3, next_attempt_at = $4 WHERE email = $1",
    )
    .bind(&key.email)
    .bind(account.failures)
    .bind(account.last_failure_at)
    .bind(account.next_attempt_at)
    .execute(&mut *tx)
    .await?;
    let subject: String = key.email.chars().take(254).collect();
    if pair.failures == PAIR_FREE_FAILURES {
        let detail = format!("{PAIR_FREE_FAILURES} failed logins from {}: its attempts are now delayed", key.client);
        audit_throttled(&mut tx, &subject, &key.client, &detail).await?;
        tracing::warn!(client = %key.client, "failed logins: delaying this address for this account");
    }
    if account.failures == ACCOUNT_FREE_FAILURES {
        let detail = format!(
            "{ACCOUNT_FREE_FAILURES} failed logins from all addresses: new addresses are spaced out, known ones are not"
        );
        audit_throttled(&mut tx, &subject, &key.client, &detail).await?;
        tracing::warn!(client = %key.client, "failed logins: spacing out new addresses for this account");
    }
    forget_idle(&mut tx, now).await?;
    tx.commit().await
}

async fn audit_throttled(
    conn: &mut PgConnection,
    subject: &str,
    client: &str,
    detail: &str,
) -> Result<(), sqlx::Error> {
    let event = Audit { kind: audit::LOGIN_THROTTLED, actor_user_id: None, subject, client, detail };
    store::audit(conn, &event).await
}

/// Deletes a few counters idle for longer than they count (bounded work per call; the indexes find them).
async fn forget_idle(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "DELETE FROM login_throttle_pair WHERE ctid = ANY (ARRAY(
             SELECT ctid FROM login_throttle_pair WHERE last_failure_at < $1 LIMIT 20))",
    )
    .bind(now - pair_memory())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM login_throttle_account WHERE ctid = ANY (ARRAY(
             SELECT ctid FROM login_throttle_account WHERE last_failure_at < $1 LIMIT 20))",
    )
    .bind(now - account_quiet())
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM login_known_client WHERE ctid = ANY (ARRAY(
             SELECT ctid FROM login_known_client WHERE last_success_at < $1 LIMIT 20))",
    )
    .bind(now - known_client_ttl())
    .execute(conn)
    .await
    .map(|_| ())
}

/// A successful sign-in: the address's failures are forgotten and it becomes (stays) a known client of the
/// account. The account's own count is left alone (an attack on it goes on).
pub async fn succeeded(pool: &PgPool, key: &Key, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM login_throttle_pair WHERE email = $1 AND client = $2")
        .bind(&key.email)
        .bind(&key.client)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO login_known_client (email, client, last_success_at) VALUES ($1, $2, $3)
         ON CONFLICT (email, client) DO UPDATE SET last_success_at = GREATEST(login_known_client.last_success_at, $3)",
    )
    .bind(&key.email)
    .bind(&key.client)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default() + TimeDelta::seconds(seconds)
    }

    #[test]
    fn pair_delays_start_after_five_failures_double_and_stop_at_fifteen_minutes() {
        let delays: Vec<i64> = (1..=20).map(|n| pair_delay(n).num_seconds()).collect();
        assert_eq!(&delays[..4], &[0, 0, 0, 0]);
        assert_eq!(&delays[4..12], &[1, 2, 4, 8, 16, 32, 64, 128]);
        assert_eq!(delays[14], 900, "1024 s capped at 15 minutes");
        assert_eq!(pair_delay(i32::MAX), pair_delay_cap());
    }

    #[test]
    fn the_account_spacing_is_bounded() {
        assert_eq!(account_spacing(9), TimeDelta::zero());
        assert_eq!(account_spacing(10).num_seconds(), 1);
        assert_eq!(account_spacing(20).num_seconds(), 2);
        assert_eq!(account_spacing(50).num_seconds(), 16);
        assert_eq!(account_spacing(i32::MAX), account_spacing_cap());
    }

    #[test]
    fn an_address_is_delayed_progressively_and_a_delay_once_passed_reserves_the_next_slot() {
        let mut pair = Counter::fresh(at(0));
        for n in 1..=4 {
            assert_eq!(pair_gate(pair, at(n)), Gate::Open, "attempt {n}");
            pair = pair_after_failure(pair, at(n));
        }
        pair = pair_after_failure(pair, at(5));
        assert_eq!(pair.failures, 5);
        assert_eq!(pair_gate(pair, at(5)), Gate::Wait(TimeDelta::seconds(1)));
        // Past the delay: this attempt may go, and the next one waits as if it failed.
        assert_eq!(pair_gate(pair, at(6)), Gate::Reserve { next_attempt_at: at(7) });
        pair = pair_after_failure(pair, at(6));
        assert_eq!(pair_gate(pair, at(7)), Gate::Wait(TimeDelta::seconds(1)));
        assert_eq!(pair_gate(pair, at(8)), Gate::Reserve { next_attempt_at: at(10) });
        // A day without failures forgets them.
        assert_eq!(pair_gate(pair, at(6) + pair_memory() + TimeDelta::seconds(1)), Gate::Open);
        let later = pair_after_failure(pair, at(6) + pair_memory() + TimeDelta::seconds(1));
        assert_eq!(later.failures, 1);
    }

    #[test]
    fn an_account_under_attack_spaces_new_addresses_until_it_is_quiet() {
        let mut account = Counter::fresh(at(0));
        for n in 0..10 {
            assert_eq!(account_gate(account, at(n)), Gate::Open);
            account = account_after_failure(account, at(n));
        }
        assert_eq!(account_gate(account, at(10)), Gate::Reserve { next_attempt_at: at(11) });
        account.next_attempt_at = at(11);
        assert_eq!(account_gate(account, at(10)), Gate::Wait(TimeDelta::seconds(1)));
        assert_eq!(account_after_failure(account, at(10)).next_attempt_at, at(11), "a failure keeps the slot");
        let quiet = at(9) + account_quiet() + TimeDelta::seconds(1);
        assert_eq!(account_gate(account, quiet), Gate::Open);
        assert_eq!(account_after_failure(account, quiet).failures, 1);
    }

    #[test]
    fn a_refusal_is_resource_exhausted_with_retry_info_and_whole_seconds() {
        let refusal = Refusal { retry_after: TimeDelta::milliseconds(1_500), account_wide: false };
        assert_eq!(refusal.retry_after_secs(), 2);
        assert_eq!(Refusal { retry_after: TimeDelta::zero(), account_wide: true }.retry_after_secs(), 1);
        let status = Status::from(refusal);
        assert_eq!(status.code(), Code::ResourceExhausted);
        let details = status.get_error_details();
        let delay = details.retry_info().and_then(|r| r.retry_delay);
        assert_eq!(delay, Some(std::time::Duration::from_millis(1_500)));
        assert_eq!(details.error_info().map(|i| i.reason.as_str()), Some(REASON));
    }

    #[test]
    fn clients_are_keyed_by_address_and_ipv6_by_its_64() {
        assert_eq!(client_key(" 192.0.2.7 "), "192.0.2.7");
        assert_eq!(client_key("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(client_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_eq!(client_key("2001:db8:1:2::9"), client_key("2001:db8:1:2:ffff::1"));
        assert_eq!(client_key(""), "unknown");
        assert_eq!(Key::new(" Marie@Meaux.FR ", "192.0.2.7").email, "marie@meaux.fr");
    }
}
