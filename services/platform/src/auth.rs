//! Access tokens and callers. Membership signs short-lived JWTs with Ed25519 (`alg: EdDSA`, `typ: at+jwt`);
//! the gateway and every service verify them with the public keys membership publishes (`GetJwks`), and
//! decide from the claims on the data they own.
//!
//! Verification follows RFC 8725: the algorithm is allow-listed (EdDSA only; `none`, HS*, RS* are refused
//! before any key is looked at), `typ`, issuer, audience, expiry and not-before are checked, the key is chosen
//! by `kid` among the published ones only.
//!
//! A valid token whose session or user was revoked since it was issued is refused too ([`Authenticator::verify`]
//! asks its [`Revocations`], fed from membership's `access.revoked` events: see [`crate::revocation`]).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use uuid::Uuid;

pub use crate::claims::{ACCESS_TOKEN_TTL, AUDIENCE, Claims, ISSUER, LEEWAY_SECS, Role};
use crate::revocation::Revocations;
use crate::{ErrorCode, ServiceError};

/// `typ` header of access tokens (RFC 9068).
pub const TOKEN_TYPE: &str = "at+jwt";
/// Longest token accepted (bytes).
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Why a token is refused. The message says which check failed; the caller only learns "unauthenticated".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    #[error("not an access token")]
    WrongType,
    #[error("unknown signing key {0}")]
    UnknownKey(String),
    #[error("bad signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    #[error("wrong issuer")]
    WrongIssuer,
    #[error("wrong audience")]
    WrongAudience,
    /// Its session or its user was revoked (logout, refresh-token reuse, account removed): see
    /// [`crate::revocation`].
    #[error("token revoked")]
    Revoked,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: String,
    #[serde(default)]
    kid: String,
}

/// A signing key and its id.
pub struct KeyPair {
    pub kid: String,
    key: SigningKey,
}

impl KeyPair {
    /// A new random key.
    pub fn generate() -> anyhow::Result<Self> {
        let mut secret = [0u8; 32];
        getrandom::getrandom(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        Ok(Self::from_secret(&secret))
    }

    /// The key for a stored 32-byte secret; its kid is derived from the public key.
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(secret);
        let digest = Sha256::digest(key.verifying_key().as_bytes());
        let kid = B64.encode(&digest[..12]);
        Self { kid, key }
    }

    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public half, as a JWK.
    pub fn jwk(&self) -> Jwk {
        Jwk::for_key(&self.kid, &self.key.verifying_key())
    }

    /// Signs the claims as a compact JWS.
    pub fn sign(&self, claims: &Claims) -> String {
        let header = Header { alg: "EdDSA".into(), typ: TOKEN_TYPE.into(), kid: self.kid.clone() };
        let header = serde_json::to_vec(&header).unwrap_or_default();
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let signing_input = format!("{}.{}", B64.encode(header), B64.encode(payload));
        let signature = self.key.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(signature.to_bytes()))
    }
}

/// One public key (RFC 8037 OKP key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

impl Jwk {
    fn for_key(kid: &str, key: &VerifyingKey) -> Self {
        Self {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: B64.encode(key.as_bytes()),
            kid: kid.to_owned(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        }
    }
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// Verifies tokens against a fixed set of public keys.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    keys: HashMap<String, VerifyingKey>,
}

impl Verifier {
    /// Keeps the Ed25519 signing keys of the set; anything else is ignored.
    pub fn from_jwks(jwks: &Jwks) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter(|k| k.kty == "OKP" && k.crv == "Ed25519" && k.alg == "EdDSA" && k.use_ == "sig")
            .filter_map(|k| {
                let bytes: [u8; 32] = B64.decode(&k.x).ok()?.try_into().ok()?;
                Some((k.kid.clone(), VerifyingKey::from_bytes(&bytes).ok()?))
            })
            .collect();
        Self { keys }
    }

    pub fn knows(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// Checks the token at time `now` (Unix seconds) and returns its claims.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Malformed);
        };
        let header: Header = serde_json::from_slice(&B64.decode(h).map_err(|_| TokenError::Malformed)?)
            .map_err(|_| TokenError::Malformed)?;
        if header.alg != "EdDSA" {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        if header.typ != TOKEN_TYPE {
            return Err(TokenError::WrongType);
        }
        let key = self.keys.get(&header.kid).ok_or_else(|| TokenError::UnknownKey(header.kid.clone()))?;
        let signature: [u8; 64] =
            B64.decode(s).map_err(|_| TokenError::Malformed)?.try_into().map_err(|_| TokenError::BadSignature)?;
        let signing_input_len = h.len() + 1 + p.len();
        let signing_input = token.get(..signing_input_len).ok_or(TokenError::Malformed)?;
        key.verify_strict(signing_input.as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = serde_json::from_slice(&B64.decode(p).map_err(|_| TokenError::Malformed)?)
            .map_err(|_| TokenError::Malformed)?;
        if claims.iss != ISSUER {
            return Err(TokenError::WrongIssuer);
        }
        if claims.aud != AUDIENCE {
            return Err(TokenError::WrongAudience);
        }
        in_time(&claims, now)?;
        Ok(claims)
    }
}

/// Whether the claims are valid at `now` (Unix seconds), give or take [`LEEWAY_SECS`].
fn in_time(claims: &Claims, now: i64) -> Result<(), TokenError> {
    if claims.exp <= now - LEEWAY_SECS {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now + LEEWAY_SECS {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// Most verified tokens remembered per key set (cleared when full): more than the callers active within a
/// token's lifetime on one replica, a few MB at most.
const VERIFIED_TOKENS: usize = 4096;

/// A key set as loaded, with the tokens it verified: a caller sends the same token for minutes, and its Ed25519
/// check and JSON parsing cost more than the rest of a cached search. Only the signature, issuer and audience
/// checks are remembered (they cannot change for a token and a key); expiry and not-before are checked again on
/// every call, revocations by the caller. The memory goes with the key set: a refreshed set (a retired key) or
/// [`Authenticator::keys_changed`] starts from nothing.
struct Keys {
    verifier: Verifier,
    at: Instant,
    verified: std::sync::RwLock<HashMap<String, Arc<Claims>>>,
}

impl Keys {
    fn new(verifier: Verifier) -> Self {
        Self { verifier, at: Instant::now(), verified: std::sync::RwLock::default() }
    }

    /// [`Verifier::verify`], remembering the claims of each token it accepts.
    fn verify(&self, token: &str, now: i64) -> Result<Arc<Claims>, TokenError> {
        let known = self.verified.read().ok().and_then(|verified| verified.get(token).cloned());
        if let Some(claims) = known {
            in_time(&claims, now)?;
            return Ok(claims);
        }
        let claims = Arc::new(self.verifier.verify(token, now)?);
        if let Ok(mut verified) = self.verified.write() {
            if verified.len() >= VERIFIED_TOKENS {
                verified.clear();
            }
            verified.insert(token.to_owned(), claims.clone());
        }
        Ok(claims)
    }
}

/// A verified caller, as services see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub roles: Vec<Role>,
    pub member_id: Option<Uuid>,
    pub provider_code: Option<String>,
    pub email: String,
    pub session: String,
    /// The display name from the token (may be empty: see [`Caller::display_name`]).
    pub name: String,
}

impl Caller {
    /// The name to show for this caller: the display name, else the e-mail address.
    pub fn display_name(&self) -> &str {
        if self.name.trim().is_empty() { &self.email } else { self.name.trim() }
    }

    pub fn from_claims(claims: &Claims) -> Result<Self, TokenError> {
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| TokenError::Malformed)?;
        let member_id = match &claims.member_id {
            Some(m) => Some(Uuid::parse_str(m).map_err(|_| TokenError::Malformed)?),
            None => None,
        };
        if claims.roles.is_empty() {
            return Err(TokenError::Malformed);
        }
        Ok(Self {
            user_id,
            roles: claims.roles.clone(),
            member_id,
            provider_code: claims.provider_code.clone(),
            email: claims.email.clone(),
            session: claims.sid.clone(),
            name: claims.name.clone(),
        })
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }

    /// A user (admin or not) of this member.
    pub fn belongs_to_member(&self, member_id: Uuid) -> bool {
        self.member_id == Some(member_id) && self.roles.iter().any(|r| r.is_member_role())
    }

    /// An agent of this provider.
    pub fn is_agent_of(&self, provider_code: &str) -> bool {
        self.has(Role::ProviderAgent) && self.provider_code.as_deref() == Some(provider_code)
    }

    /// Fails with PERMISSION_DENIED unless the caller has one of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), ServiceError> {
        if self.has_any(roles) { Ok(()) } else { Err(forbidden()) }
    }
}

/// Why an access decision refused a caller (the services' pure access rules return it; the transport maps it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The caller's role may never do this: PERMISSION_DENIED.
    Forbidden,
    /// The role may, but not on this resource: NOT_FOUND, like an unknown id, so ids cannot be probed.
    NotFound,
    /// The caller's role must say which member it lists: INVALID_ARGUMENT.
    MissingMemberId,
}

impl Denied {
    /// The error for the caller; `what` and `id` name the resource for NOT_FOUND.
    pub fn into_error(self, what: &str, id: &str) -> ServiceError {
        match self {
            Self::Forbidden => forbidden(),
            Self::NotFound => ServiceError::not_found(what, id),
            Self::MissingMemberId => ServiceError::invalid("member_id", "is required for this caller"),
        }
    }
}

/// The error for a caller without the right to act.
pub fn forbidden() -> ServiceError {
    ServiceError::new(ErrorCode::PermissionDenied, "PERMISSION_DENIED", "not allowed for this caller")
}

/// The error for a missing or refused token.
pub fn unauthenticated(why: &str) -> ServiceError {
    ServiceError::new(ErrorCode::Unauthenticated, "UNAUTHENTICATED", format!("authentication required: {why}"))
}

/// The bearer token of a gRPC request's `authorization` metadata.
pub fn bearer(metadata: &tonic::metadata::MetadataMap) -> Option<&str> {
    let value = metadata.get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Loads the current public keys.
pub type JwksSource = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<Jwks>> + Send + Sync>;

/// Verifies tokens with keys it fetches from their publisher, refetching on an unknown `kid` (a rotation) at
/// most every few seconds, and every few minutes anyway (a retired key stops verifying), and refuses those its
/// [`Revocations`] name (fed by [`crate::revocation::follow`] or [`crate::revocation::follow_subscription`]; empty,
/// and so refusing nothing, until one runs).
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    source: JwksSource,
    /// The current key set; `None` before the first load and after [`Authenticator::keys_changed`].
    keys: std::sync::RwLock<Option<Arc<Keys>>>,
    refreshing: Mutex<()>,
    revocations: Revocations,
}

const MIN_REFRESH: Duration = Duration::from_secs(5);
const MAX_AGE: Duration = Duration::from_secs(300);

impl Authenticator {
    pub fn new(source: JwksSource) -> Self {
        Self::with_revocations(source, Revocations::new())
    }

    /// An authenticator that consults `revocations` (shared with other authenticators of the process).
    pub fn with_revocations(source: JwksSource, revocations: Revocations) -> Self {
        let keys = std::sync::RwLock::new(None);
        Self { inner: Arc::new(Inner { source, keys, refreshing: Mutex::new(()), revocations }) }
    }

    /// The revocations this authenticator refuses: give them to a feed ([`crate::revocation::follow`]).
    pub fn revocations(&self) -> &Revocations {
        &self.inner.revocations
    }

    /// Keys fetched from membership's `IdentityService.GetJwks` at `url` (connected lazily).
    pub fn from_membership(url: &str) -> anyhow::Result<Self> {
        use id77_proto::membership::v1::GetJwksRequest;
        use id77_proto::membership::v1::identity_service_client::IdentityServiceClient;
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .connect_lazy();
        Ok(Self::new(Arc::new(move || {
            let mut client = IdentityServiceClient::new(channel.clone());
            Box::pin(async move {
                let json = client.get_jwks(GetJwksRequest {}).await?.into_inner().json;
                Ok(serde_json::from_str(&json)?)
            })
        })))
    }

    /// Keys read from a JWKS file (provisioned by the operator), re-read like published ones.
    pub fn from_file(path: std::path::PathBuf) -> Self {
        Self::new(Arc::new(move || {
            let path = path.clone();
            Box::pin(async move {
                let text = tokio::fs::read_to_string(&path).await?;
                Ok(serde_json::from_str(&text)?)
            })
        }))
    }

    /// A fixed key set.
    pub fn fixed(jwks: Jwks) -> Self {
        Self::new(Arc::new(move || {
            let jwks = jwks.clone();
            Box::pin(async move { Ok(jwks) })
        }))
    }

    /// Forgets the cached keys (and the tokens they verified): the next verification loads them again. For the
    /// keys' publisher after it rotated its own key (membership), so that a token signed with the new key
    /// verifies at once.
    pub async fn keys_changed(&self) {
        *self.inner.keys.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn current(&self) -> Option<Arc<Keys>> {
        self.inner.keys.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The current key set, loaded again when older than [`MAX_AGE`] or, when `force`d (an unknown `kid`), older
    /// than [`MIN_REFRESH`]. The usual case takes no async lock: calls verifying at once do not queue here.
    async fn keys(&self, force: bool) -> Result<Arc<Keys>, ServiceError> {
        let fresh = |keys: &Keys| keys.at.elapsed() < if force { MIN_REFRESH } else { MAX_AGE };
        if !force && let Some(keys) = self.current().filter(|k| fresh(k)) {
            return Ok(keys);
        }
        let _one_at_a_time = self.inner.refreshing.lock().await;
        if let Some(keys) = self.current().filter(|k| fresh(k)) {
            return Ok(keys);
        }
        let jwks = (self.inner.source)().await.map_err(|e| {
            tracing::warn!(error = format!("{e:#}"), "cannot load the token signing keys");
            ServiceError::new(ErrorCode::Unavailable, "UNAVAILABLE", "cannot verify tokens right now")
        })?;
        let keys = Arc::new(Keys::new(Verifier::from_jwks(&jwks)));
        *self.inner.keys.write().unwrap_or_else(PoisonError::into_inner) = Some(keys.clone());
        Ok(keys)
    }

    /// Verifies a token and returns its caller. A token verified before by the same key set is not checked
    /// again ([`Keys`]), but its expiry, not-before and revocation are, on every call.
    pub async fn verify(&self, token: &str) -> Result<Caller, ServiceError> {
        let keys = self.keys(false).await?;
        let now = chrono::Utc::now().timestamp();
        let claims = match keys.verify(token, now) {
            Err(TokenError::UnknownKey(_)) => self.keys(true).await?.verify(token, now),
            other => other,
        }
        .map_err(|e| unauthenticated(&e.to_string()))?;
        if self.inner.revocations.is_revoked(&claims, now) {
            return Err(unauthenticated(&TokenError::Revoked.to_string()));
        }
        Caller::from_claims(&claims).map_err(|e| unauthenticated(&e.to_string()))
    }

    /// The caller of a gRPC request; UNAUTHENTICATED without a valid bearer token.
    pub async fn caller<T>(&self, request: &tonic::Request<T>) -> Result<Caller, ServiceError> {
        match bearer(request.metadata()) {
            Some(token) => self.verify(token).await,
            None => Err(unauthenticated("no bearer token")),
        }
    }

    /// The caller if the request carries a token (which must then be valid), `None` for an anonymous call.
    pub async fn optional_caller<T>(&self, request: &tonic::Request<T>) -> Result<Option<Caller>, ServiceError> {
        match bearer(request.metadata()) {
            Some(token) => self.verify(token).await.map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> Claims {
        let mut c = Claims::new(Uuid::now_v7(), Role::MemberAdmin, now);
        c.member_id = Some(Uuid::now_v7().to_string());
        c
    }

    fn setup() -> (KeyPair, Verifier) {
        let key = KeyPair::generate().expect("key");
        let verifier = Verifier::from_jwks(&Jwks { keys: vec![key.jwk()] });
        (key, verifier)
    }

    #[test]
    fn a_signed_token_verifies_and_round_trips_its_claims() {
        let (key, verifier) = setup();
        let c = claims(1_000_000);
        assert_eq!(verifier.verify(&key.sign(&c), 1_000_010), Ok(c.clone()));
        let caller = Caller::from_claims(&c).expect("caller");
        assert!(caller.has(Role::MemberAdmin));
        assert!(caller.belongs_to_member(Uuid::parse_str(c.member_id.as_deref().unwrap_or_default()).expect("uuid")));
        assert!(!caller.is_agent_of("caue77"));
    }

    #[test]
    fn expired_and_not_yet_valid_tokens_are_refused() {
        let (key, verifier) = setup();
        let token = key.sign(&claims(1_000_000));
        assert_eq!(verifier.verify(&token, 1_000_000 + 600 + LEEWAY_SECS), Err(TokenError::Expired));
        assert_eq!(verifier.verify(&token, 1_000_000 - LEEWAY_SECS - 1), Err(TokenError::NotYetValid));
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let (key, verifier) = setup();
        let token = key.sign(&claims(1_000_000));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut forged = claims(1_000_000);
        forged.roles = vec![Role::Operator];
        parts[1] = B64.encode(serde_json::to_vec(&forged).expect("json"));
        assert_eq!(verifier.verify(&parts.join("."), 1_000_000), Err(TokenError::BadSignature));
        assert_eq!(verifier.verify("a.b", 1), Err(TokenError::Malformed));
        assert_eq!(verifier.verify("a.b.c.d", 1), Err(TokenError::Malformed));
        assert_eq!(verifier.verify(&"x".repeat(MAX_TOKEN_BYTES + 1), 1), Err(TokenError::Malformed));
    }

    #[test]
    fn alg_none_and_other_algorithms_are_refused_before_any_key_lookup() {
        let (_, verifier) = setup();
        let payload = B64.encode(serde_json::to_vec(&claims(1_000_000)).expect("json"));
        for alg in ["none", "HS256", "RS256", "ES256", "eddsa"] {
            let header = B64.encode(format!(r#"{{"alg":"{alg}","typ":"at+jwt","kid":"x"}}"#));
            assert_eq!(
                verifier.verify(&format!("{header}.{payload}."), 1_000_000),
                Err(TokenError::AlgorithmNotAllowed)
            );
        }
        let header = B64.encode(r#"{"alg":"EdDSA","typ":"JWT","kid":"x"}"#);
        assert_eq!(verifier.verify(&format!("{header}.{payload}.AA"), 1_000_000), Err(TokenError::WrongType));
    }

    #[test]
    fn wrong_issuer_audience_or_key_is_refused() {
        let (key, verifier) = setup();
        let mut c = claims(1_000_000);
        c.iss = "https://evil.example".into();
        assert_eq!(verifier.verify(&key.sign(&c), 1_000_000), Err(TokenError::WrongIssuer));
        let mut c = claims(1_000_000);
        c.aud = "other".into();
        assert_eq!(verifier.verify(&key.sign(&c), 1_000_000), Err(TokenError::WrongAudience));
        let other = KeyPair::generate().expect("key");
        assert!(matches!(verifier.verify(&other.sign(&claims(1_000_000)), 1_000_000), Err(TokenError::UnknownKey(_))));
    }

    #[test]
    fn a_key_rebuilt_from_its_secret_keeps_its_kid() {
        let key = KeyPair::generate().expect("key");
        let again = KeyPair::from_secret(&key.secret());
        assert_eq!(again.kid, key.kid);
        assert_eq!(again.jwk(), key.jwk());
    }

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert!(Role::Coordinator.is_department_role() && !Role::MemberUser.is_department_role());
    }

    #[test]
    fn a_remembered_token_is_still_refused_once_expired_or_before_its_time() {
        let (key, verifier) = setup();
        let keys = Keys::new(verifier);
        let token = key.sign(&claims(1_000_000));
        assert!(keys.verify(&token, 1_000_010).is_ok());
        assert!(keys.verified.read().is_ok_and(|v| v.contains_key(&token)), "remembered");
        assert_eq!(keys.verify(&token, 1_000_000 + 600 + LEEWAY_SECS).err(), Some(TokenError::Expired));
        assert_eq!(keys.verify(&token, 1_000_000 - LEEWAY_SECS - 1).err(), Some(TokenError::NotYetValid));
        assert!(keys.verify(&token, 1_000_020).is_ok(), "still valid in between");
        // Another token is checked in full, however close to a remembered one.
        let mut forged: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut c = claims(1_000_000);
        c.roles = vec![Role::Operator];
        forged[1] = B64.encode(serde_json::to_vec(&c).expect("json"));
        assert_eq!(keys.verify(&forged.join("."), 1_000_010).err(), Some(TokenError::BadSignature));
    }

    #[test]
    fn the_remembered_tokens_are_bounded() {
        let (key, verifier) = setup();
        let keys = Keys::new(verifier);
        for _ in 0..=VERIFIED_TOKENS {
            assert!(keys.verify(&key.sign(&claims(1_000_000)), 1_000_010).is_ok());
        }
        let remembered = keys.verified.read().map(|v| v.len()).unwrap_or_default();
        assert!((1..=VERIFIED_TOKENS).contains(&remembered), "{remembered}");
    }

    /// An authenticator whose keys are fetched from a key set the test changes (a publisher rotating).
    fn published_keys(keys: Vec<Jwk>) -> (Authenticator, Arc<std::sync::Mutex<Jwks>>) {
        let published = Arc::new(std::sync::Mutex::new(Jwks { keys }));
        let source = published.clone();
        let auth = Authenticator::new(Arc::new(move || {
            let jwks = source.lock().map(|j| j.clone()).unwrap_or_default();
            Box::pin(async move { Ok(jwks) })
        }));
        (auth, published)
    }

    #[tokio::test]
    async fn a_remembered_token_is_refused_once_its_key_is_retired() {
        let old = KeyPair::generate().expect("key");
        let new = KeyPair::generate().expect("key");
        let (auth, published) = published_keys(vec![old.jwk()]);
        let publish = |keys: Vec<Jwk>| {
            if let Ok(mut j) = published.lock() {
                j.keys = keys;
            }
        };
        let now = chrono::Utc::now().timestamp();
        let (old_token, new_token) = (old.sign(&claims(now)), new.sign(&claims(now)));
        assert!(auth.verify(&old_token).await.is_ok());
        // Told of a rotation (membership's own): the keys are loaded again, the old one is gone.
        publish(vec![new.jwk()]);
        auth.keys_changed().await;
        assert!(auth.verify(&new_token).await.is_ok());
        assert!(auth.verify(&old_token).await.is_err(), "the retired key's token after keys_changed");
        // Refreshed on an unknown kid (another replica's rotation): the retired key's token is refused.
        publish(vec![old.jwk()]);
        auth.keys_changed().await;
        assert!(auth.verify(&old_token).await.is_ok());
        tokio::time::sleep(MIN_REFRESH).await;
        let newer = KeyPair::generate().expect("key");
        publish(vec![newer.jwk()]);
        assert!(auth.verify(&newer.sign(&claims(now))).await.is_ok(), "refreshed on its unknown kid");
        assert!(auth.verify(&old_token).await.is_err(), "the retired key's token after a refresh");
    }

    #[tokio::test]
    async fn the_authenticator_refuses_revoked_sessions_and_users() {
        let key = KeyPair::generate().expect("key");
        let auth = Authenticator::fixed(Jwks { keys: vec![key.jwk()] });
        let now = chrono::Utc::now().timestamp();
        let mut c = claims(now - 5);
        c.sid = Uuid::now_v7().to_string();
        let token = key.sign(&c);
        let mut sibling = c.clone();
        sibling.sid = Uuid::now_v7().to_string();
        let sibling = key.sign(&sibling);
        assert!(auth.verify(&token).await.is_ok());
        assert!(auth.verify(&token).await.is_ok(), "twice: the second from the remembered tokens");
        auth.revocations().revoke_session(&c.sid, now + 630, now);
        let refused = auth.verify(&token).await.expect_err("refused");
        assert_eq!(refused.code, ErrorCode::Unauthenticated);
        assert!(refused.message.contains("token revoked"), "{}", refused.message);
        assert!(auth.verify(&sibling).await.is_ok(), "the user's other session still works");
        auth.revocations().revoke_user(&c.sub, now, now + 630, now);
        assert!(auth.verify(&sibling).await.is_err(), "every token of a revoked user issued before is refused");
        let mut later = c.clone();
        later.iat = now + 1;
        later.sid = Uuid::now_v7().to_string();
        assert!(auth.verify(&key.sign(&later)).await.is_ok(), "a token issued after the revocation works");
    }

    #[tokio::test]
    async fn the_authenticator_refetches_keys_after_a_rotation() {
        let old = KeyPair::generate().expect("key");
        let new = KeyPair::generate().expect("key");
        let (auth, published) = published_keys(vec![old.jwk()]);
        let now = chrono::Utc::now().timestamp();
        assert!(auth.verify(&old.sign(&claims(now))).await.is_ok());
        if let Ok(mut j) = published.lock() {
            j.keys.push(new.jwk());
        }
        // Too soon after the first fetch: the unknown kid is refused, then accepted once refreshed.
        tokio::time::sleep(MIN_REFRESH).await;
        assert!(auth.verify(&new.sign(&claims(now))).await.is_ok());
        assert!(auth.verify(&old.sign(&claims(now))).await.is_ok(), "the old key still verifies");
        let err = auth.verify("garbage").await.err().map(|e| e.code);
        assert_eq!(err, Some(ErrorCode::Unauthenticated));
    }
}
