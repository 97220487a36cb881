//! Server-side sessions, kept in the portal's own PostgreSQL database (`id77_portal`, table `portal_session`) so
//! that they survive a restart and every replica serves every session (no cookie affinity at the ingress).
//!
//! The browser holds only a random 256-bit id in an HttpOnly, SameSite=Strict cookie (Secure and `__Host-`
//! prefixed behind HTTPS). The database never sees that id:
//! - a row is keyed by the SHA-256 of the cookie value;
//! - its state (the user, the gateway's access and refresh tokens, which are credentials, and the one-time
//!   message) is sealed with ChaCha20-Poly1305 under a key derived from the cookie value (HMAC-SHA-256), the
//!   row's key as associated data. A copy of the table, a backup or a database user reading it holds no cookie
//!   and so no token. No key to keep in a Secret, rotate or share between replicas: each browser carries its
//!   own;
//! - the CSRF token is derived from the cookie value too (HMAC-SHA-256 under another label): it changes with the
//!   id at sign-in and needs no storage.
//!
//! So a visitor who has not signed in costs no row (a crawler cannot fill the table); a row is written when there
//! is something to keep (signing in, a one-time message) and deleted when there is nothing left. Idle expiry
//! (`ID77_PORTAL_SESSION_IDLE_MINUTES`) is checked on the database's clock at every read; `last_seen` is
//! written at most every tenth of the idle time (not at every page); a sweeper deletes expired rows. Logging out
//! deletes the row: the session is revoked on every replica at once (and the refresh token at the gateway).
//! Signing in replaces the session id (no fixation) and so the CSRF token. A token refresh locks the row
//! (`SELECT ... FOR UPDATE`) until the new pair is stored: one refresh at a time per session across replicas, as
//! the gateway's single-use refresh tokens require.

use std::time::Duration;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::{digest, hmac};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Row, Transaction};

/// The portal's tables (versions >= 100; the platform's outbox and inbox come first, unused by the portal).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Cookie name over plain HTTP (development).
pub const COOKIE: &str = "id77_session";
/// Cookie name over HTTPS: the `__Host-` prefix pins it to this host, path `/`, Secure.
pub const SECURE_COOKIE: &str = "__Host-id77_session";
/// The hidden field of every POST form.
pub const CSRF_FIELD: &str = "_csrf";

const SEAL_LABEL: &[u8] = b"id77-portal/session-seal/v1";
const CSRF_LABEL: &[u8] = b"id77-portal/csrf/v1";

/// A 256-bit random token, URL-safe base64.
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    // getrandom only fails when the OS has no entropy source at all; then no session could be safe.
    if getrandom::getrandom(&mut bytes).is_err() {
        tracing::error!("no OS randomness: refusing to mint a predictable token");
        std::process::abort();
    }
    bytes
}

/// Whether `id` has the shape of a session id this portal mints (43 base64url characters).
pub fn well_formed(id: &str) -> bool {
    id.len() == 43 && id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The row key of session `id`: SHA-256 of the cookie value.
pub fn id_hash(id: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, id.as_bytes()).as_ref().to_vec()
}

fn derive(id: &str, label: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, id.as_bytes()), label)
}

/// The CSRF token of session `id`.
pub fn csrf_token(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(derive(id, CSRF_LABEL).as_ref())
}

fn seal_key(id: &str) -> LessSafeKey {
    let tag = derive(id, SEAL_LABEL);
    // A 32-byte HMAC-SHA-256 tag is always a valid ChaCha20-Poly1305 key.
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, tag.as_ref()).expect("32-byte key"))
}

/// `nonce || ciphertext || tag` of `plain` for session `id`.
fn seal(id: &str, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
    let nonce = random_bytes::<NONCE_LEN>();
    let mut buffer = plain.to_vec();
    seal_key(id)
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(id_hash(id)), &mut buffer)
        .map_err(|_| anyhow::anyhow!("sealing a session failed"))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buffer);
    Ok(out)
}

/// The plaintext of `sealed`, if it was sealed for session `id` and not altered.
fn open(id: &str, sealed: &[u8]) -> Option<Vec<u8>> {
    let (nonce, body) = sealed.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buffer = body.to_vec();
    let plain = seal_key(id).open_in_place(nonce, Aad::from(id_hash(id)), &mut buffer).ok()?;
    Some(plain.to_vec())
}

/// The signed-in user, as `GET /v1/me` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub member_id: Option<String>,
    pub provider_code: Option<String>,
}

impl User {
    pub fn is(&self, role: &str) -> bool {
        self.role == role
    }

    /// A member's user (admin or not).
    pub fn is_member(&self) -> bool {
        self.is("member_admin") || self.is("member_user")
    }
}

/// The gateway's tokens for one signed-in session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub access: String,
    /// Wall-clock time (every replica reads it).
    pub access_expires: DateTime<Utc>,
    pub refresh: String,
}

impl Tokens {
    /// Tokens answered by the gateway, `expires_in` seconds from now.
    pub fn new(access: String, expires_in: i64, refresh: String) -> Self {
        let secs = expires_in.clamp(0, 366 * 24 * 3600);
        Self { access, access_expires: Utc::now() + chrono::Duration::seconds(secs), refresh }
    }

    /// Whether the access token should be refreshed before use (expired or within 30 s of it).
    pub fn stale(&self, now: DateTime<Utc>) -> bool {
        now + chrono::Duration::seconds(30) >= self.access_expires
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Derived from the session id ([`csrf_token`]).
    pub csrf: String,
    pub user: Option<User>,
    pub tokens: Option<Tokens>,
    /// A one-time message shown on the next page (after a redirect).
    pub flash: Option<String>,
}

/// What a row seals.
#[derive(Serialize, Deserialize, Default)]
struct Sealed {
    user: Option<User>,
    tokens: Option<Tokens>,
    flash: Option<String>,
}

impl Session {
    /// A session with nothing in it (a visitor who has not signed in).
    pub fn anonymous(id: &str) -> Self {
        Self { csrf: csrf_token(id), user: None, tokens: None, flash: None }
    }

    /// Nothing to keep: no row.
    pub fn is_empty(&self) -> bool {
        self.user.is_none() && self.tokens.is_none() && self.flash.is_none()
    }

    fn from_sealed(id: &str, sealed: &[u8]) -> Option<Self> {
        let plain = open(id, sealed)?;
        let Sealed { user, tokens, flash } = serde_json::from_slice(&plain).ok()?;
        Some(Self { csrf: csrf_token(id), user, tokens, flash })
    }

    fn sealed(&self, id: &str) -> anyhow::Result<Vec<u8>> {
        let plain = serde_json::to_vec(&Sealed {
            user: self.user.clone(),
            tokens: self.tokens.clone(),
            flash: self.flash.clone(),
        })?;
        seal(id, &plain)
    }
}

/// Every session, in the portal's database.
#[derive(Clone)]
pub struct Sessions {
    pool: PgPool,
    idle: Duration,
    /// `last_seen` is written when older than this (a tenth of `idle`, at most a minute).
    touch_after: Duration,
}

/// One session read for update: its row stays locked until [`SessionTx::save`] (or the drop, which changes
/// nothing).
pub struct SessionTx {
    tx: Transaction<'static, Postgres>,
    id: String,
    /// The state to save (starts as the stored one, or empty when there is no live row).
    pub session: Session,
}

impl SessionTx {
    /// Writes the session (deleting its row when nothing is left to keep) and releases the lock.
    pub async fn save(mut self) -> anyhow::Result<()> {
        let hash = id_hash(&self.id);
        if self.session.is_empty() {
            sqlx::query("DELETE FROM portal_session WHERE id_hash = $1").bind(&hash).execute(&mut *self.tx).await?;
        } else {
            sqlx::query(
                "INSERT INTO portal_session (id_hash, sealed, signed_in) VALUES ($1, $2, $3)
                 ON CONFLICT (id_hash) DO UPDATE
                 SET sealed = EXCLUDED.sealed, signed_in = EXCLUDED.signed_in, last_seen = now()",
            )
            .bind(&hash)
            .bind(self.session.sealed(&self.id)?)
            .bind(self.session.user.is_some())
            .execute(&mut *self.tx)
            .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

impl Sessions {
    pub fn new(pool: PgPool, idle: Duration) -> Self {
        let touch_after = (idle / 10).min(Duration::from_secs(60));
        Self { pool, idle, touch_after }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn idle_secs(&self) -> f64 {
        self.idle.as_secs_f64()
    }

    /// The live session of `id` (None: no row, expired, or not sealed for this id); touched when `touch`.
    async fn load(&self, id: &str, touch: bool) -> anyhow::Result<Option<Session>> {
        let hash = id_hash(id);
        let row = sqlx::query(
            "SELECT sealed, last_seen < now() - make_interval(secs => $3) AS due
             FROM portal_session WHERE id_hash = $1 AND last_seen > now() - make_interval(secs => $2)",
        )
        .bind(&hash)
        .bind(self.idle_secs())
        .bind(self.touch_after.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
        .context("reading a session")?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Vec<u8> = row.try_get("sealed")?;
        let Some(session) = Session::from_sealed(id, &sealed) else {
            tracing::warn!("a session row does not open with its cookie: ignored");
            return Ok(None);
        };
        if touch && row.try_get::<bool, _>("due")? {
            sqlx::query("UPDATE portal_session SET last_seen = now() WHERE id_hash = $1")
                .bind(&hash)
                .execute(&self.pool)
                .await
                .context("touching a session")?;
        }
        Ok(Some(session))
    }

    /// The session of the presented cookie (touched), or a new anonymous one: `(id, session, created)`.
    /// A well-formed id without a live row is an anonymous session under that id (its CSRF token still
    /// matches the forms it was given); anything else gets a new random id.
    pub async fn load_or_create(&self, presented: Option<&str>) -> anyhow::Result<(String, Session, bool)> {
        if let Some(id) = presented.filter(|id| well_formed(id)) {
            let session = self.load(id, true).await?.unwrap_or_else(|| Session::anonymous(id));
            return Ok((id.to_owned(), session, false));
        }
        let id = random_token();
        let session = Session::anonymous(&id);
        Ok((id, session, true))
    }

    /// The live session of `id`, if it has a row.
    pub async fn get(&self, id: &str) -> anyhow::Result<Option<Session>> {
        self.load(id, false).await
    }

    /// Reads the session of `id` and locks its row until [`SessionTx::save`] or drop.
    pub async fn begin(&self, id: &str) -> anyhow::Result<SessionTx> {
        let mut tx = self.pool.begin().await.context("starting a session transaction")?;
        let sealed: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT sealed FROM portal_session
             WHERE id_hash = $1 AND last_seen > now() - make_interval(secs => $2) FOR UPDATE",
        )
        .bind(id_hash(id))
        .bind(self.idle_secs())
        .fetch_optional(&mut *tx)
        .await
        .context("locking a session")?;
        let session =
            sealed.and_then(|sealed| Session::from_sealed(id, &sealed)).unwrap_or_else(|| Session::anonymous(id));
        Ok(SessionTx { tx, id: id.to_owned(), session })
    }

    /// Applies `change` to the session of `id` and saves it.
    pub async fn try_update(&self, id: &str, change: impl FnOnce(&mut Session) + Send) -> anyhow::Result<()> {
        let mut tx = self.begin(id).await?;
        change(&mut tx.session);
        tx.save().await
    }

    /// Applies `change` to the session of `id`; a failure is logged (used for one-time messages, which a
    /// database hiccup may lose without harm).
    pub async fn update(&self, id: &str, change: impl FnOnce(&mut Session) + Send) {
        if let Err(error) = self.try_update(id, change).await {
            tracing::warn!(error = format!("{error:#}"), "session not updated");
        }
    }

    /// Takes the one-time message of `id`.
    pub async fn take_flash(&self, id: &str) -> anyhow::Result<Option<String>> {
        let mut tx = self.begin(id).await?;
        let flash = tx.session.flash.take();
        if flash.is_some() {
            tx.save().await?;
        }
        Ok(flash)
    }

    /// Signs in: drops the session `old` and makes a new one (new id, so new CSRF token) holding the user.
    pub async fn sign_in(&self, old: &str, user: User, tokens: Tokens) -> anyhow::Result<String> {
        let id = random_token();
        let session = Session { user: Some(user), tokens: Some(tokens), ..Session::anonymous(&id) };
        let mut tx = self.pool.begin().await.context("starting a sign-in")?;
        sqlx::query("DELETE FROM portal_session WHERE id_hash = $1").bind(id_hash(old)).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO portal_session (id_hash, sealed, signed_in) VALUES ($1, $2, true)")
            .bind(id_hash(&id))
            .bind(session.sealed(&id)?)
            .execute(&mut *tx)
            .await
            .context("storing a new session")?;
        tx.commit().await?;
        Ok(id)
    }

    /// Deletes the session of `id` (revoked on every replica), returning what it held (even if expired).
    pub async fn remove(&self, id: &str) -> anyhow::Result<Option<Session>> {
        let sealed: Option<Vec<u8>> =
            sqlx::query_scalar("DELETE FROM portal_session WHERE id_hash = $1 RETURNING sealed")
                .bind(id_hash(id))
                .fetch_optional(&self.pool)
                .await
                .context("deleting a session")?;
        Ok(sealed.and_then(|sealed| Session::from_sealed(id, &sealed)))
    }

    /// Deletes the sessions idle for longer than the idle time; returns how many.
    pub async fn sweep(&self) -> anyhow::Result<u64> {
        let done = sqlx::query("DELETE FROM portal_session WHERE last_seen <= now() - make_interval(secs => $1)")
            .bind(self.idle_secs())
            .execute(&self.pool)
            .await
            .context("sweeping expired sessions")?;
        Ok(done.rows_affected())
    }

    /// How many rows the table holds (tests, diagnostics).
    pub async fn count(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM portal_session").fetch_one(&self.pool).await?)
    }

    /// Sweeps every `every` until `shutdown` (every replica sweeps; the deletes are idempotent).
    pub async fn sweeper(self, every: Duration, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            match self.sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(deleted = n, "expired sessions swept"),
                Err(error) => tracing::warn!(error = format!("{error:#}"), "session sweep failed"),
            }
        }
    }
}

/// The `Set-Cookie` value for session `id`.
pub fn cookie_header(id: &str, secure: bool) -> String {
    if secure {
        format!("{SECURE_COOKIE}={id}; Path=/; HttpOnly; Secure; SameSite=Strict")
    } else {
        format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict")
    }
}

/// The session id in a `Cookie` header, if any.
pub fn cookie_value(header: &str, secure: bool) -> Option<&str> {
    let name = if secure { SECURE_COOKIE } else { COOKIE };
    header.split(';').filter_map(|part| part.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            id: "u1".into(),
            email: "dgs@meaux.fr".into(),
            display_name: "DGS".into(),
            role: "member_admin".into(),
            member_id: Some("m1".into()),
            provider_code: None,
        }
    }

    #[test]
    fn tokens_are_random_and_long() {
        let a = random_token();
        let b = random_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits in unpadded base64url");
        assert!(well_formed(&a) && well_formed(&b));
        assert!(!well_formed("forged-id") && !well_formed(&format!("{}.", &a[..42])));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", ""), "an empty token never matches");
    }

    #[test]
    fn the_csrf_token_and_the_row_key_follow_the_id_and_reveal_nothing_of_it() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(csrf_token(&a), csrf_token(&a));
        assert_ne!(csrf_token(&a), csrf_token(&b), "a new id (sign-in) is a new CSRF token");
        assert_ne!(csrf_token(&a), a);
        assert_eq!(id_hash(&a).len(), 32);
        assert_ne!(URL_SAFE_NO_PAD.encode(id_hash(&a)), csrf_token(&a), "row key and CSRF token differ");
    }

    #[test]
    fn a_sealed_state_opens_only_with_its_own_cookie_and_unaltered() {
        let id = random_token();
        let session = Session {
            user: Some(user()),
            tokens: Some(Tokens::new("access-secret".into(), 600, "refresh-secret".into())),
            flash: Some("Bienvenue".into()),
            ..Session::anonymous(&id)
        };
        let sealed = session.sealed(&id).expect("sealed");
        let text = String::from_utf8_lossy(&sealed);
        assert!(!text.contains("refresh-secret") && !text.contains("dgs@meaux.fr"), "nothing in clear");
        assert_ne!(session.sealed(&id).expect("sealed"), sealed, "a fresh nonce each time");
        assert_eq!(Session::from_sealed(&id, &sealed), Some(session));
        assert_eq!(Session::from_sealed(&random_token(), &sealed), None, "another cookie opens nothing");
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(Session::from_sealed(&id, &altered), None, "an altered row opens nothing");
        assert_eq!(Session::from_sealed(&id, &sealed[..5]), None);
    }

    #[test]
    fn tokens_go_stale_thirty_seconds_before_expiry() {
        let now = Utc::now();
        assert!(!Tokens::new("a".into(), 600, "r".into()).stale(now));
        assert!(Tokens::new("a".into(), 20, "r".into()).stale(now));
        assert!(Tokens::new("a".into(), -5, "r".into()).stale(now));
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_behind_https() {
        assert_eq!(cookie_header("x", false), "id77_session=x; Path=/; HttpOnly; SameSite=Strict");
        assert_eq!(cookie_header("x", true), "__Host-id77_session=x; Path=/; HttpOnly; Secure; SameSite=Strict");
        assert_eq!(cookie_value("a=1; id77_session=abc; b=2", false), Some("abc"));
        assert_eq!(cookie_value("id77_session_x=abc", false), None);
        assert_eq!(cookie_value("__Host-id77_session=s", true), Some("s"));
        assert_eq!(cookie_value("id77_session=s", true), None, "the plain cookie is not read behind HTTPS");
    }
}
