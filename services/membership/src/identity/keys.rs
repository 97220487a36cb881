//! Signing keys of the access tokens, kept in membership's database so that every replica signs with the same
//! key and publishes the same set. The newest key without `retire_after` signs; a rotation adds a key and gives
//! the previous ones `retire_after = now + 2 × ACCESS_TOKEN_TTL`, so tokens they signed verify until they expire.
//!
//! Membership verifies access tokens itself with an [`Authenticator`] over its own key table (no network), and
//! refuses revoked ones like every service ([`Revocations`], fed from its own `access.revoked` events).

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use id77_platform::ServiceError;
use id77_platform::auth::{ACCESS_TOKEN_TTL, Authenticator, Jwks, JwksSource, KeyPair};
use id77_platform::revocation::Revocations;
use sqlx::{PgConnection, PgPool};

/// Advisory lock (transaction-scoped) serializing key creation and rotation across replicas.
const KEYS_LOCK: i64 = 0x1d77_0b0b_0001;

#[derive(sqlx::FromRow)]
struct KeyRow {
    secret: Vec<u8>,
}

fn key_pair(secret: &[u8]) -> anyhow::Result<KeyPair> {
    let secret: [u8; 32] =
        secret.try_into().map_err(|_| anyhow::anyhow!("a stored signing key is not 32 bytes long"))?;
    Ok(KeyPair::from_secret(&secret))
}

async fn lock(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(KEYS_LOCK).execute(conn).await.map(|_| ())
}

async fn insert(conn: &mut PgConnection, key: &KeyPair, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO signing_key (kid, secret, created_at) VALUES ($1, $2, $3)")
        .bind(&key.kid)
        .bind(key.secret().to_vec())
        .bind(at)
        .execute(conn)
        .await
        .map(|_| ())
}

/// Creates a signing key if none is active (at start-up; replicas starting together create one).
pub async fn ensure_signing_key(pool: &PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    lock(&mut tx).await?;
    let active: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM signing_key WHERE retire_after IS NULL)")
        .fetch_one(&mut *tx)
        .await?;
    if !active {
        let key = KeyPair::generate()?;
        insert(&mut tx, &key, id77_platform::time::now()).await?;
        tracing::info!(kid = %key.kid, "created the token signing key");
    }
    tx.commit().await?;
    Ok(())
}

/// The key that signs now: the newest active one.
pub async fn signing_key(conn: &mut PgConnection) -> Result<KeyPair, ServiceError> {
    let row: Option<KeyRow> = sqlx::query_as(
        "SELECT secret FROM signing_key WHERE retire_after IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await?;
    let row = row.ok_or_else(|| ServiceError::internal("signing a token", "no active signing key"))?;
    key_pair(&row.secret).map_err(|e| ServiceError::internal("reading the signing key", e))
}

/// The public keys that verify at `now`: every key not past its `retire_after`.
pub async fn published(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<Jwks> {
    let rows: Vec<KeyRow> = sqlx::query_as(
        "SELECT secret FROM signing_key WHERE retire_after IS NULL OR retire_after > $1 ORDER BY created_at DESC, kid",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    let keys = rows.iter().map(|r| key_pair(&r.secret).map(|k| k.jwk())).collect::<anyhow::Result<_>>()?;
    Ok(Jwks { keys })
}

/// How long a replaced key keeps verifying.
pub fn retirement_delay() -> TimeDelta {
    TimeDelta::from_std(ACCESS_TOKEN_TTL * 2).unwrap_or(TimeDelta::minutes(20))
}

/// Adds a key that signs from now on; the active ones retire after twice the token lifetime. Returns its kid.
pub async fn rotate(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<String, ServiceError> {
    lock(conn).await?;
    sqlx::query("UPDATE signing_key SET retire_after = $1 WHERE retire_after IS NULL")
        .bind(now + retirement_delay())
        .execute(&mut *conn)
        .await?;
    let key = KeyPair::generate().map_err(|e| ServiceError::internal("generating a signing key", e))?;
    insert(conn, &key, now).await?;
    Ok(key.kid)
}

/// Verifies callers with the keys of the local table (the platform's authenticator would ask membership itself
/// over the network). One authenticator for the replica's life: the gRPC server's authentication layer uses it,
/// and after a rotation made by this replica its cached key set is dropped, so the new key verifies at once (other
/// replicas learn it on the first unknown `kid`).
#[derive(Clone)]
pub struct LocalAuthenticator {
    auth: Authenticator,
}

impl LocalAuthenticator {
    pub fn new(pool: PgPool) -> Self {
        let source: JwksSource = Arc::new(move || {
            let pool = pool.clone();
            Box::pin(async move { published(&pool, Utc::now()).await })
        });
        Self { auth: Authenticator::new(source) }
    }

    /// The revocations refused: give them to a feed ([`id77_platform::revocation::follow`]).
    pub fn revocations(&self) -> &Revocations {
        self.auth.revocations()
    }

    /// Forgets the cached keys.
    pub async fn keys_changed(&self) {
        self.auth.keys_changed().await;
    }

    /// The authenticator (give it to the gRPC server's authentication layer).
    pub fn authenticator(&self) -> Authenticator {
        self.auth.clone()
    }
}
