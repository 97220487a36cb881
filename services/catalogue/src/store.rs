//! SQL of the catalogue service.

use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::{Category, OfferContent, Provider, ProviderKind, StoredOffer};

/// Advisory lock serialising seed loads (several replicas may start at once).
const SEED_LOCK: i64 = 0x1d77_ca7a_0001;

#[derive(Debug, Clone, FromRow)]
pub struct ProviderRow {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub contact_email: String,
}

impl ProviderRow {
    /// `None` if the stored kind is unknown (the check constraint makes that impossible).
    pub fn to_domain(&self) -> Option<Provider> {
        Some(Provider {
            code: self.code.clone(),
            name: self.name.clone(),
            kind: ProviderKind::parse(&self.kind)?,
            contact_email: self.contact_email.clone(),
        })
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct OfferRow {
    pub id: Uuid,
    pub code: String,
    pub title: String,
    pub summary: String,
    pub category: String,
    pub themes: Vec<String>,
    pub provider_code: String,
    pub billed: bool,
    pub price_cents: i64,
    pub version: i32,
}

impl OfferRow {
    /// `None` if the stored category is unknown (the check constraint makes that impossible).
    pub fn to_domain(&self) -> Option<StoredOffer> {
        Some(StoredOffer {
            id: self.id,
            version: self.version,
            content: OfferContent {
                code: self.code.clone(),
                title: self.title.clone(),
                summary: self.summary.clone(),
                category: Category::parse(&self.category)?,
                themes: self.themes.clone(),
                provider_code: self.provider_code.clone(),
                billed: self.billed,
                price_cents: self.price_cents,
            },
        })
    }
}

const PROVIDER_COLUMNS: &str = "code, name, kind, contact_email";
const OFFER_COLUMNS: &str = "id, code, title, summary, category, themes, provider_code, billed, price_cents, version";

/// Waits for the seed lock, held until the transaction ends.
pub async fn lock_seed(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(SEED_LOCK).execute(conn).await?;
    Ok(())
}

pub async fn all_providers(conn: &mut PgConnection) -> Result<Vec<ProviderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {PROVIDER_COLUMNS} FROM provider ORDER BY code")))
        .fetch_all(conn)
        .await
}

pub async fn all_offers(conn: &mut PgConnection) -> Result<Vec<OfferRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {OFFER_COLUMNS} FROM offer ORDER BY code")))
        .fetch_all(conn)
        .await
}

pub async fn upsert_provider(conn: &mut PgConnection, p: &Provider) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO provider (code, name, kind, contact_email) VALUES ($1, $2, $3, $4)
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,
           contact_email = EXCLUDED.contact_email, updated_at = now()",
    )
    .bind(&p.code)
    .bind(&p.name)
    .bind(p.kind.as_str())
    .bind(&p.contact_email)
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts an offer or writes a new version of it. The id of an existing offer is kept.
pub async fn upsert_offer(
    conn: &mut PgConnection,
    id: Uuid,
    version: i32,
    o: &OfferContent,
) -> Result<OfferRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO offer (id, code, title, summary, category, themes, provider_code, billed, price_cents, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (code) DO UPDATE SET title = EXCLUDED.title, summary = EXCLUDED.summary,
           category = EXCLUDED.category, themes = EXCLUDED.themes, provider_code = EXCLUDED.provider_code,
           billed = EXCLUDED.billed, price_cents = EXCLUDED.price_cents, version = EXCLUDED.version,
           updated_at = now()
         RETURNING {OFFER_COLUMNS}"
    )))
    .bind(id)
    .bind(&o.code)
    .bind(&o.title)
    .bind(&o.summary)
    .bind(o.category.as_str())
    .bind(&o.themes)
    .bind(&o.provider_code)
    .bind(o.billed)
    .bind(o.price_cents)
    .bind(version)
    .fetch_one(conn)
    .await
}

/// Offers by code, optionally of one category and/or provider, keyset-paginated on the code.
pub async fn list_offers(
    pool: &PgPool,
    category: Option<&str>,
    provider_code: Option<&str>,
    after_code: Option<String>,
    limit: i64,
) -> Result<Vec<OfferRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {OFFER_COLUMNS} FROM offer
         WHERE ($1::text IS NULL OR category = $1)
           AND ($2::text IS NULL OR provider_code = $2)
           AND code > $3
         ORDER BY code LIMIT $4"
    )))
    .bind(category)
    .bind(provider_code)
    .bind(after_code.unwrap_or_default())
    .bind(limit)
    .fetch_all(pool)
    .await
}

pub async fn offer_by_id(pool: &PgPool, id: Uuid) -> Result<Option<OfferRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {OFFER_COLUMNS} FROM offer WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub async fn offer_by_code(pool: &PgPool, code: &str) -> Result<Option<OfferRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {OFFER_COLUMNS} FROM offer WHERE code = $1")))
        .bind(code)
        .fetch_optional(pool)
        .await
}

pub async fn list_providers(pool: &PgPool) -> Result<Vec<ProviderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {PROVIDER_COLUMNS} FROM provider ORDER BY code")))
        .fetch_all(pool)
        .await
}
