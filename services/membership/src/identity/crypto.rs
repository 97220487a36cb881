//! Secrets: argon2id password hashes (computed off the async runtime, a few at a time) and opaque tokens
//! (refresh tokens, invitations) that are stored only as their SHA-256.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use id77_platform::ServiceError;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

/// Hashes computed at once: each takes ~19 MiB and a core for tens of milliseconds, so a burst of logins
/// queues instead of exhausting the memory.
static HASHING: Semaphore = Semaphore::const_new(4);

/// A hash with the default parameters of a random password nobody knows. A login for an unknown, inactive or
/// removed account is checked against it, so that it takes as long as one with a wrong password.
pub const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$nXzvpdCCvN55vHRYm8qs2g$OaV73OC8+KcurkPstjjroM/kchzO442DR3LcVJ8G7MY";

fn random_bytes<const N: usize>() -> Result<[u8; N], ServiceError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| ServiceError::internal("drawing random bytes", e))?;
    Ok(bytes)
}

async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    let _permit = HASHING.acquire().await.map_err(|e| ServiceError::internal("waiting to hash", e))?;
    tokio::task::spawn_blocking(work).await.map_err(|e| ServiceError::internal("hashing a password", e))?
}

/// Argon2's working memory (19 MiB with the default parameters), handed back to the operating system as soon
/// as it is dropped. The `argon2` crate's own allocation is an ordinary 19 MiB `Vec`: glibc raises its mmap
/// threshold after freeing the first one and serves the next ones from per-thread arenas, which keep them
/// resident (a burst of 40 logins left the service at 400 MiB RSS). Reserving more address space than glibc's
/// largest mmap threshold (32 MiB) makes every allocation a fresh mmap, unmapped on drop; only the blocks in
/// use are ever touched.
fn working_memory(blocks: usize) -> Vec<Block> {
    const RESERVED_BYTES: usize = 40 << 20;
    let mut memory = Vec::with_capacity(blocks.max(RESERVED_BYTES / Block::SIZE));
    memory.resize(blocks, Block::default());
    memory
}

fn argon2(algorithm: Algorithm, version: Version, params: Params) -> Argon2<'static> {
    Argon2::new(algorithm, version, params)
}

/// The argon2id PHC string of a password (the `argon2` crate's default parameters, a random salt).
pub async fn hash_password(password: &str) -> Result<String, ServiceError> {
    let salt = random_bytes::<16>()?;
    let password = password.to_owned();
    off_runtime(move || {
        let failed = |e: &dyn std::fmt::Display| ServiceError::internal("hashing a password", e.to_string());
        let params = Params::default();
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        argon2(Algorithm::Argon2id, Version::V0x13, params.clone())
            .hash_password_into_with_memory(password.as_bytes(), &salt, &mut out, working_memory(params.block_count()))
            .map_err(|e| failed(&e))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| failed(&e))?;
        let phc = PasswordHash {
            algorithm: argon2::ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
        };
        Ok(phc.to_string())
    })
    .await
}

/// Recomputes the hash of `password` with the algorithm, version, parameters and salt of `phc`.
fn matches(password: &[u8], phc: &str) -> Result<bool, String> {
    let parsed = PasswordHash::new(phc).map_err(|e| e.to_string())?;
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(|e| e.to_string())?;
    let version = parsed.version.map(Version::try_from).transpose().map_err(|e| e.to_string())?.unwrap_or_default();
    let params = Params::try_from(&parsed).map_err(|e| e.to_string())?;
    let expected = parsed.hash.ok_or("no hash in the PHC string")?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt.ok_or("no salt in the PHC string")?.decode_b64(&mut salt).map_err(|e| e.to_string())?;
    let mut out = vec![0u8; expected.len()];
    argon2(algorithm, version, params.clone())
        .hash_password_into_with_memory(password, salt, &mut out, working_memory(params.block_count()))
        .map_err(|e| e.to_string())?;
    // `Output` compares in constant time.
    Ok(Output::new(&out).map_err(|e| e.to_string())? == expected)
}

/// Whether `password` matches the PHC string `hash`. A malformed hash never matches.
pub async fn verify_password(password: &str, hash: &str) -> Result<bool, ServiceError> {
    let password = password.to_owned();
    let hash = hash.to_owned();
    off_runtime(move || match matches(password.as_bytes(), &hash) {
        Ok(matched) => Ok(matched),
        Err(error) => {
            tracing::error!(%error, "a stored password hash cannot be used");
            Ok(false)
        }
    })
    .await
}

/// A new opaque token (256 random bits, base64url) and the hash to store.
pub fn new_opaque_token() -> Result<(String, Vec<u8>), ServiceError> {
    let token = B64.encode(random_bytes::<32>()?);
    let hash = hash_opaque_token(&token);
    Ok((token, hash))
}

/// What is stored of an opaque token: its SHA-256.
pub fn hash_opaque_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_tokens_are_random_256_bit_base64url_and_stored_as_sha256() {
        let (token, hash) = new_opaque_token().unwrap_or_default();
        assert_eq!(token.len(), 43, "32 bytes in unpadded base64url");
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(B64.decode(&token).map(|b| b.len()).ok(), Some(32));
        assert_eq!(hash.len(), 32);
        assert_eq!(hash, hash_opaque_token(&token), "the hash is deterministic");
        assert_ne!(hash, token.as_bytes(), "the token itself is not stored");
        let (other, other_hash) = new_opaque_token().unwrap_or_default();
        assert_ne!(token, other);
        assert_ne!(hash, other_hash);
        // SHA-256("abc"), the FIPS 180-2 test vector.
        let abc: String = hash_opaque_token("abc").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(abc, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let dummy = PasswordHash::new(DUMMY_HASH).ok();
        let params = dummy.as_ref().and_then(|h| argon2::Params::try_from(h).ok());
        let defaults = argon2::Params::default();
        assert_eq!(dummy.map(|h| h.algorithm.as_str().to_owned()), Some("argon2id".to_owned()));
        assert_eq!(
            params.map(|p| (p.m_cost(), p.t_cost(), p.p_cost())),
            Some((defaults.m_cost(), defaults.t_cost(), defaults.p_cost()))
        );
    }

    #[tokio::test]
    async fn passwords_hash_to_argon2id_and_verify() {
        let hash = hash_password("Essai-ID77-2026!").await.unwrap_or_default();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert_eq!(verify_password("Essai-ID77-2026!", &hash).await.ok(), Some(true));
        assert_eq!(verify_password("Essai-ID77-2027!", &hash).await.ok(), Some(false));
        assert_eq!(verify_password("anything", "not a hash").await.ok(), Some(false));
        assert_eq!(verify_password("anything", DUMMY_HASH).await.ok(), Some(false));
        let again = hash_password("Essai-ID77-2026!").await.unwrap_or_default();
        assert_ne!(hash, again, "a fresh salt each time");
    }

    #[test]
    fn hashes_are_interchangeable_with_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Ours verifies with the crate's verifier...
        let salt = SaltString::encode_b64(&[7u8; 16]).ok();
        let theirs = salt.as_ref().and_then(|s| Argon2::default().hash_password(b"Mot2passe-Solide!", s).ok());
        let theirs = theirs.map(|h| h.to_string()).unwrap_or_default();
        assert_eq!(matches(b"Mot2passe-Solide!", &theirs), Ok(true));
        assert_eq!(matches(b"Mot2passe-Solide?", &theirs), Ok(false));
        // ... and the crate verifies ours.
        let ours = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()
            .and_then(|rt| rt.block_on(hash_password("Mot2passe-Solide!")).ok())
            .unwrap_or_default();
        let parsed = PasswordHash::new(&ours).ok();
        let verified = parsed.map(|p| Argon2::default().verify_password(b"Mot2passe-Solide!", &p).is_ok());
        assert_eq!(verified, Some(true), "{ours}");
        assert!(matches(b"x", "$argon2id$v=19$m=19456,t=2,p=1$bm9zYWx0").is_err(), "no hash");
    }
}
