//! Server-side sessions: the browser holds only a random id in an HttpOnly, SameSite=Strict cookie (Secure and
//! `__Host-` prefixed behind HTTPS); the gateway's access and refresh tokens stay in this process's memory.
//! Each session has its own CSRF token, required in every POST form; logging in replaces the session id
//! (no fixation) and the CSRF token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Cookie name over plain HTTP (development).
pub const COOKIE: &str = "id77_session";
/// Cookie name over HTTPS: the `__Host-` prefix pins it to this host, path `/`, Secure.
pub const SECURE_COOKIE: &str = "__Host-id77_session";
/// The hidden field of every POST form.
pub const CSRF_FIELD: &str = "_csrf";

/// A 256-bit random token, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // getrandom only fails when the OS has no entropy source at all; then no session could be safe.
    if getrandom::getrandom(&mut bytes).is_err() {
        tracing::error!("no OS randomness: refusing to mint a predictable token");
        std::process::abort();
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() || a.is_empty() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The signed-in user, as `GET /v1/me` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access: String,
    pub access_expires: Instant,
    pub refresh: String,
}

impl Tokens {
    /// Tokens answered by the gateway, `expires_in` seconds from now.
    pub fn new(access: String, expires_in: i64, refresh: String) -> Self {
        let secs = u64::try_from(expires_in).unwrap_or(0);
        Self { access, access_expires: Instant::now() + Duration::from_secs(secs), refresh }
    }

    /// Whether the access token should be refreshed before use (expired or within 30 s of it).
    pub fn stale(&self, now: Instant) -> bool {
        now + Duration::from_secs(30) >= self.access_expires
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
    pub user: Option<User>,
    pub tokens: Option<Tokens>,
    /// A one-time message shown on the next page (after a redirect).
    pub flash: Option<String>,
    last_seen: Instant,
}

impl Session {
    fn new(now: Instant) -> Self {
        Self { csrf: random_token(), user: None, tokens: None, flash: None, last_seen: now }
    }
}

/// Every live session, keyed by the cookie's id.
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    idle: Duration,
    max: usize,
}

impl Sessions {
    pub fn new(idle: Duration, max: usize) -> Self {
        Self { map: Mutex::new(HashMap::new()), idle, max: max.max(1) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock cannot leave a session half-written (every update is one assignment).
        self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The session of `id` (touched), or a new one: `(id, session, created)`.
    pub fn load_or_create(&self, id: Option<&str>) -> (String, Session, bool) {
        let now = Instant::now();
        let mut map = self.lock();
        if let Some(id) = id
            && let Some(session) = map.get_mut(id)
        {
            if now.duration_since(session.last_seen) <= self.idle {
                session.last_seen = now;
                return (id.to_owned(), session.clone(), false);
            }
            map.remove(id);
        }
        if map.len() >= self.max {
            let idle = self.idle;
            map.retain(|_, s| now.duration_since(s.last_seen) <= idle);
            while map.len() >= self.max {
                let Some(oldest) = map.iter().min_by_key(|(_, s)| s.last_seen).map(|(k, _)| k.clone()) else { break };
                map.remove(&oldest);
            }
        }
        let id = random_token();
        let session = Session::new(now);
        map.insert(id.clone(), session.clone());
        (id, session, true)
    }

    /// A copy of the session of `id`, if it exists.
    pub fn get(&self, id: &str) -> Option<Session> {
        self.lock().get(id).cloned()
    }

    /// Applies `change` to the session of `id` (no-op when it is gone).
    pub fn update(&self, id: &str, change: impl FnOnce(&mut Session)) {
        if let Some(session) = self.lock().get_mut(id) {
            change(session);
        }
    }

    /// Takes the flash message of `id`.
    pub fn take_flash(&self, id: &str) -> Option<String> {
        self.lock().get_mut(id).and_then(|s| s.flash.take())
    }

    /// Signs in: drops the session `old` and makes a new one (new id, new CSRF token) holding the user.
    pub fn sign_in(&self, old: &str, user: User, tokens: Tokens) -> String {
        let now = Instant::now();
        let mut map = self.lock();
        map.remove(old);
        let id = random_token();
        let mut session = Session::new(now);
        session.user = Some(user);
        session.tokens = Some(tokens);
        map.insert(id.clone(), session);
        id
    }

    /// Forgets the session of `id`, returning it.
    pub fn remove(&self, id: &str) -> Option<Session> {
        self.lock().remove(id)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", ""), "an empty token never matches");
    }

    #[test]
    fn a_session_is_found_again_and_unknown_ids_get_a_new_one() {
        let sessions = Sessions::new(Duration::from_secs(60), 100);
        let (id, first, created) = sessions.load_or_create(None);
        assert!(created);
        let (again, second, created) = sessions.load_or_create(Some(&id));
        assert!(!created);
        assert_eq!((again.as_str(), second.csrf.as_str()), (id.as_str(), first.csrf.as_str()));
        let (other, _, created) = sessions.load_or_create(Some("forged-id"));
        assert!(created);
        assert_ne!(other, "forged-id", "a client cannot choose its session id");
    }

    #[test]
    fn signing_in_rotates_the_id_and_the_csrf_token() {
        let sessions = Sessions::new(Duration::from_secs(60), 100);
        let (old, before, _) = sessions.load_or_create(None);
        let new = sessions.sign_in(&old, user(), Tokens::new("a".into(), 600, "r".into()));
        assert_ne!(new, old);
        assert!(sessions.get(&old).is_none(), "the pre-login session is gone");
        let after = sessions.get(&new).expect("signed-in session");
        assert_ne!(after.csrf, before.csrf);
        assert_eq!(after.user, Some(user()));
        assert_eq!(sessions.remove(&new).map(|s| s.user.is_some()), Some(true));
        assert!(sessions.is_empty());
    }

    #[test]
    fn idle_sessions_expire_and_the_store_is_bounded() {
        let sessions = Sessions::new(Duration::from_millis(0), 3);
        let (id, _, _) = sessions.load_or_create(None);
        std::thread::sleep(Duration::from_millis(5));
        let (again, _, created) = sessions.load_or_create(Some(&id));
        assert!(created, "an idle session is not resumed");
        assert_ne!(again, id);
        let bounded = Sessions::new(Duration::from_secs(60), 3);
        for _ in 0..10 {
            bounded.load_or_create(None);
        }
        assert!(bounded.len() <= 3);
    }

    #[test]
    fn tokens_go_stale_thirty_seconds_before_expiry() {
        let now = Instant::now();
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
