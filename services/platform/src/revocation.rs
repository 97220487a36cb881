//! Access tokens that stop working before they expire (issue 19): a logged-out session, a refresh-token family
//! revoked for reuse, a removed account.
//!
//! Access tokens are verified offline, with membership's public keys, for [`ACCESS_TOKEN_TTL`]. Membership
//! publishes `id77.membership.access.revoked` ([`AccessRevoked`], through its outbox, in the transaction that
//! ends the session or removes the account); every process that verifies tokens keeps the revocations that can
//! still matter in memory ([`Revocations`]), and [`crate::auth::Authenticator::verify`] refuses a token whose
//! session (`sid`) is revoked, or whose user (`sub`) was revoked after the token was issued (`iat`), with
//! UNAUTHENTICATED "token revoked". An entry is kept until `valid_until` (the revocation plus the token lifetime
//! and the clock leeway): by then every token it concerns has expired anyway, so the set stays small.
//!
//! How revocations reach a process:
//! - a service runs [`follow`]: an ordered (ephemeral, unacknowledged) JetStream consumer on stream MEMBERSHIP,
//!   filtered on the subject, that starts [`replay_window`] in the past. A service that starts, restarts or
//!   recreates its consumer after losing NATS relearns every revocation whose tokens may still be alive; nothing
//!   durable is left on the server.
//! - the gateway runs [`follow_subscription`]: a core NATS subscription (its NATS user may subscribe to a few
//!   subjects and has no JetStream API). A gateway that restarts does not relearn the revocations of the previous
//!   minutes; it forwards every token to the services, which verify it again and do know them.
//!
//! The trade-off when NATS is unreachable: the process keeps what it learned and learns nothing new, so a token
//! revoked meanwhile keeps working there until NATS is back (then the replay catches up within seconds) or the
//! token expires (at most [`ACCESS_TOKEN_TTL`]). Refusing every token instead would turn a NATS outage into a
//! platform-wide outage. A service without NATS already reports NOT_SERVING on its readiness (the platform's
//! gRPC health follows the NATS connection), so the orchestrator takes it out of rotation; [`Revocations::
//! is_following`] tells whether the feed is live.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::pull;
use futures::StreamExt;
use id77_proto::membership::v1::AccessRevoked;
use prost::Message;
use tokio_util::sync::CancellationToken;

use crate::claims::{ACCESS_TOKEN_TTL, Claims, LEEWAY_SECS};
use crate::nats::Namespace;
use crate::streams;

/// The subject of [`AccessRevoked`] (stream MEMBERSHIP), before the deployment's prefix.
pub const SUBJECT: &str = <id77_proto::membership::v1::AccessRevoked as id77_proto::events::IntegrationEvent>::SUBJECT;

/// Why tokens were revoked (`AccessRevoked.reason`).
pub mod reason {
    pub const LOGOUT: &str = "logout";
    pub const REFRESH_TOKEN_REUSE: &str = "refresh_token_reuse";
    pub const ACCOUNT_REMOVED: &str = "account_removed";
}

/// How long a revocation matters: a token issued at the revocation at the latest is accepted until its expiry
/// plus the clock leeway.
pub fn lifetime() -> Duration {
    ACCESS_TOKEN_TTL + Duration::from_secs(LEEWAY_SECS as u64)
}

/// How far back a consumer replays at start: [`lifetime`] plus a leeway for the clocks of membership, NATS and
/// this process.
pub fn replay_window() -> Duration {
    lifetime() + Duration::from_secs(LEEWAY_SECS as u64)
}

/// How often expired entries are dropped (on the next change).
const PRUNE_EVERY_SECS: i64 = 30;

#[derive(Default)]
struct State {
    /// Session id (`sid`) → until when it is kept (Unix seconds).
    sessions: HashMap<String, i64>,
    /// User id (`sub`) → (tokens issued at or before this second are refused, until when it is kept).
    users: HashMap<String, (i64, i64)>,
    pruned_at: i64,
}

impl State {
    fn prune(&mut self, now: i64) {
        self.sessions.retain(|_, until| *until > now);
        self.users.retain(|_, (_, until)| *until > now);
        self.pruned_at = now;
    }
}

/// The revocations a process knows, shared by its authenticator and its feed. Cheap to clone.
#[derive(Clone, Default)]
pub struct Revocations {
    state: Arc<RwLock<State>>,
    following: Arc<AtomicBool>,
}

impl std::fmt::Debug for Revocations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (sessions, users) = self.len();
        f.debug_struct("Revocations").field("sessions", &sessions).field("users", &users).finish()
    }
}

impl Revocations {
    pub fn new() -> Self {
        Self::default()
    }

    fn write<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        match self.state.write() {
            Ok(mut state) => f(&mut state),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        match self.state.read() {
            Ok(state) => f(&state),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// Refuses the tokens of session `sid` until `until` (Unix seconds).
    pub fn revoke_session(&self, sid: &str, until: i64, now: i64) {
        if sid.is_empty() || until <= now {
            return;
        }
        self.write(|state| {
            let kept = state.sessions.entry(sid.to_owned()).or_insert(until);
            *kept = (*kept).max(until);
            if now - state.pruned_at >= PRUNE_EVERY_SECS {
                state.prune(now);
            }
        });
    }

    /// Refuses the tokens of `user_id` issued at or before `not_after_iat` (Unix seconds), until `until`.
    pub fn revoke_user(&self, user_id: &str, not_after_iat: i64, until: i64, now: i64) {
        if user_id.is_empty() || until <= now {
            return;
        }
        self.write(|state| {
            let kept = state.users.entry(user_id.to_owned()).or_insert((not_after_iat, until));
            *kept = (kept.0.max(not_after_iat), kept.1.max(until));
            if now - state.pruned_at >= PRUNE_EVERY_SECS {
                state.prune(now);
            }
        });
    }

    /// Whether the token of these claims is revoked at `now` (Unix seconds).
    pub fn is_revoked(&self, claims: &Claims, now: i64) -> bool {
        self.read(|state| {
            let session = !claims.sid.is_empty() && state.sessions.get(&claims.sid).is_some_and(|until| *until > now);
            session
                || state
                    .users
                    .get(&claims.sub)
                    .is_some_and(|(not_after_iat, until)| *until > now && claims.iat <= *not_after_iat)
        })
    }

    /// Records an event; false when it was malformed or no longer matters.
    pub fn apply(&self, event: &AccessRevoked, now: i64) -> bool {
        let Some(revoked_at) = event.revoked_at.as_ref().map(|t| t.seconds) else { return false };
        let until = event
            .valid_until
            .as_ref()
            .map(|t| t.seconds)
            .unwrap_or(revoked_at + lifetime().as_secs() as i64)
            // Never shorter than the tokens it concerns can live.
            .max(revoked_at + lifetime().as_secs() as i64);
        if until <= now {
            return false;
        }
        if !event.session_id.is_empty() {
            self.revoke_session(&event.session_id, until, now);
            true
        } else if !event.user_id.is_empty() {
            self.revoke_user(&event.user_id, revoked_at, until, now);
            true
        } else {
            false
        }
    }

    /// Drops what expired.
    pub fn prune(&self, now: i64) {
        self.write(|state| state.prune(now));
    }

    /// (revoked sessions, revoked users) kept now.
    pub fn len(&self) -> (usize, usize) {
        self.read(|state| (state.sessions.len(), state.users.len()))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0)
    }

    /// Whether the feed is live (subscribed or consuming); false before it started and while it reconnects.
    pub fn is_following(&self) -> bool {
        self.following.load(Ordering::Relaxed)
    }

    fn set_following(&self, following: bool) {
        self.following.store(following, Ordering::Relaxed);
    }

    /// Decodes and records a message's payload.
    fn receive(&self, payload: &[u8]) {
        match AccessRevoked::decode(payload) {
            Ok(event) => {
                if self.apply(&event, chrono::Utc::now().timestamp()) {
                    tracing::info!(
                        user_id = %event.user_id,
                        session = %event.session_id,
                        reason = %event.reason,
                        "access tokens revoked"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "undecodable access.revoked dropped"),
        }
    }
}

/// Waits `wait` unless shutdown comes first; false on shutdown.
async fn pause(wait: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}

const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Feeds `revocations` from stream MEMBERSHIP until `shutdown` (a service's background task): an ordered
/// consumer on [`SUBJECT`] from [`replay_window`] ago, recreated (and replayed, which is idempotent) whenever it
/// fails; the stream not existing yet (membership not started) is waited for.
pub async fn follow(js: jetstream::Context, ns: Namespace, revocations: Revocations, shutdown: CancellationToken) {
    let mut wait = Duration::from_millis(250);
    loop {
        let started = std::time::Instant::now();
        let outcome = tokio::select! {
            () = shutdown.cancelled() => break,
            outcome = consume(&js, &ns, &revocations) => outcome,
        };
        revocations.set_following(false);
        match outcome {
            Ok(()) => tracing::warn!("revocations: the consumer ended; following again"),
            Err(error) => tracing::warn!(error = format!("{error:#}"), retry_in = ?wait, "revocations: not following"),
        }
        if started.elapsed() > Duration::from_secs(30) {
            wait = Duration::from_millis(250);
        }
        if !pause(wait, &shutdown).await {
            break;
        }
        wait = (wait * 2).min(MAX_BACKOFF);
    }
    revocations.set_following(false);
}

async fn consume(js: &jetstream::Context, ns: &Namespace, revocations: &Revocations) -> anyhow::Result<()> {
    let stream = js.get_stream(ns.stream(streams::MEMBERSHIP.name)).await?;
    let start = chrono::Utc::now() - chrono::TimeDelta::from_std(replay_window())?;
    // `DeliverPolicy::ByStartTime` holds a `time::OffsetDateTime`; built from its wire form, so that the
    // platform needs no second date crate.
    let deliver_policy = serde_json::from_value(serde_json::json!({
        "deliver_policy": "by_start_time",
        "opt_start_time": start.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    }))?;
    let config =
        pull::OrderedConfig { filter_subject: ns.subject(SUBJECT), deliver_policy, ..pull::OrderedConfig::default() };
    let mut messages = stream.create_consumer(config).await?.messages().await?;
    revocations.set_following(true);
    tracing::info!(since = %start.to_rfc3339(), "revocations: following stream MEMBERSHIP");
    while let Some(message) = messages.next().await {
        revocations.receive(&message?.payload);
    }
    Ok(())
}

/// Feeds `revocations` from a core NATS subscription to [`SUBJECT`] until `shutdown` (the gateway: no JetStream
/// API, no replay; see the module's documentation). Connects as `name` with `nkey_file`, retrying with backoff;
/// the client then resubscribes on its own after a reconnection.
pub async fn follow_subscription(
    url: String,
    name: &'static str,
    nkey_file: Option<std::path::PathBuf>,
    ns: Namespace,
    revocations: Revocations,
    shutdown: CancellationToken,
) {
    let mut wait = Duration::from_millis(250);
    loop {
        let outcome = tokio::select! {
            () = shutdown.cancelled() => break,
            outcome = subscribe(&url, name, nkey_file.as_deref(), &ns, &revocations) => outcome,
        };
        revocations.set_following(false);
        if let Err(error) = outcome {
            tracing::warn!(error = format!("{error:#}"), retry_in = ?wait, "revocations: not subscribed");
        }
        if !pause(wait, &shutdown).await {
            break;
        }
        wait = (wait * 2).min(MAX_BACKOFF);
    }
    revocations.set_following(false);
}

async fn subscribe(
    url: &str,
    name: &str,
    nkey_file: Option<&std::path::Path>,
    ns: &Namespace,
    revocations: &Revocations,
) -> anyhow::Result<()> {
    let (client, _) = crate::nats::connect_with(url, name, nkey_file).await?;
    let mut subscription = client.subscribe(ns.subject(SUBJECT)).await?;
    // The subscription reaches the server before anything is said to be followed.
    client.flush().await?;
    revocations.set_following(true);
    tracing::info!(subject = %ns.subject(SUBJECT), "revocations: subscribed");
    while let Some(message) = subscription.next().await {
        revocations.receive(&message.payload);
    }
    anyhow::bail!("the subscription ended")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Role;
    use uuid::Uuid;

    fn claims(iat: i64, sid: &str) -> Claims {
        let mut c = Claims::new(Uuid::now_v7(), Role::MemberUser, iat);
        c.sid = sid.to_owned();
        c
    }

    fn event(user: &str, sid: &str, revoked_at: i64) -> AccessRevoked {
        AccessRevoked {
            user_id: user.to_owned(),
            session_id: sid.to_owned(),
            reason: reason::LOGOUT.to_owned(),
            revoked_at: Some(prost_types::Timestamp { seconds: revoked_at, nanos: 500_000_000 }),
            valid_until: Some(prost_types::Timestamp { seconds: revoked_at + lifetime().as_secs() as i64, nanos: 0 }),
        }
    }

    #[test]
    fn a_revoked_session_is_refused_until_its_tokens_have_expired() {
        let revocations = Revocations::new();
        let now = 1_000_000;
        let token = claims(now - 60, "family-1");
        let other = claims(now - 60, "family-2");
        assert!(!revocations.is_revoked(&token, now));
        assert!(revocations.apply(&event(&token.sub, "family-1", now), now));
        assert!(revocations.is_revoked(&token, now));
        assert!(revocations.is_revoked(&token, now + 600), "still within the token's lifetime");
        assert!(!revocations.is_revoked(&other, now), "another session of the same user is not concerned");
        let until = now + lifetime().as_secs() as i64;
        assert!(revocations.is_revoked(&token, until - 1));
        assert!(!revocations.is_revoked(&token, until), "forgotten once every token concerned expired");
        revocations.prune(until);
        assert!(revocations.is_empty());
    }

    #[test]
    fn a_revoked_user_loses_the_tokens_issued_before_and_not_after() {
        let revocations = Revocations::new();
        let now = 2_000_000;
        let before = claims(now - 300, "a");
        let same_second = Claims { sub: before.sub.clone(), ..claims(now, "b") };
        let after = Claims { sub: before.sub.clone(), ..claims(now + 1, "c") };
        let stranger = claims(now - 300, "d");
        assert!(revocations.apply(&event(&before.sub, "", now), now));
        assert!(revocations.is_revoked(&before, now));
        assert!(revocations.is_revoked(&same_second, now), "issued within the second of the revocation");
        assert!(!revocations.is_revoked(&after, now + 1), "issued after it (a user re-activated)");
        assert!(!revocations.is_revoked(&stranger, now));
        // A later revocation of the same user moves its instant forward; an older one does not move it back.
        revocations.revoke_user(&before.sub, now + 5, now + 5 + 630, now + 5);
        revocations.revoke_user(&before.sub, now - 100, now + 10, now + 5);
        assert!(revocations.is_revoked(&after, now + 5));
        assert!(!revocations.is_revoked(&after, now + 5 + 630));
    }

    #[test]
    fn stale_and_malformed_events_are_ignored() {
        let revocations = Revocations::new();
        let now = 3_000_000;
        assert!(!revocations.apply(&event("u", "s", now - 10_000), now), "its tokens expired long ago");
        assert!(!revocations.apply(&AccessRevoked { revoked_at: None, ..event("u", "s", now) }, now));
        assert!(!revocations.apply(&event("", "", now), now));
        // A too short `valid_until` is stretched to the lifetime of the tokens it concerns.
        let short = AccessRevoked {
            valid_until: Some(prost_types::Timestamp { seconds: now + 1, nanos: 0 }),
            ..event("u", "s", now)
        };
        assert!(revocations.apply(&short, now));
        assert!(revocations.is_revoked(&Claims { sub: "u".into(), ..claims(now, "s") }, now + 300));
        assert!(!revocations.is_empty());
        // Empty session ids never match (tokens from before `sid` existed).
        revocations.revoke_session("", now + 600, now);
        assert!(!revocations.is_revoked(&claims(now, ""), now));
    }

    #[test]
    fn expired_entries_are_pruned_as_new_ones_arrive() {
        let revocations = Revocations::new();
        let now = 4_000_000;
        revocations.revoke_session("old", now + 10, now);
        revocations.revoke_user("old-user", now, now + 10, now);
        revocations.revoke_session("new", now + 700, now + PRUNE_EVERY_SECS + 20);
        assert_eq!(revocations.len(), (1, 0));
    }

    #[test]
    fn the_start_time_policy_is_built_from_its_wire_form() {
        let start = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let policy: async_nats::jetstream::consumer::DeliverPolicy = serde_json::from_value(serde_json::json!({
            "deliver_policy": "by_start_time",
            "opt_start_time": start.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        }))
        .expect("policy");
        assert!(matches!(policy, async_nats::jetstream::consumer::DeliverPolicy::ByStartTime { .. }));
    }
}
