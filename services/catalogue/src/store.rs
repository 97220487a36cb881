//! SQL of the catalogue service.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use id77_proto::vocabulary::{Category, MemberKind, PriceKind};

use crate::domain::{
    Eligibility, MemberProfile, OfferContent, OfferStatus, PriceRule, Provider, ProviderKind, StoredOffer,
};
use crate::search::Hit;

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
    pub description: String,
    pub category: String,
    pub themes: Vec<String>,
    pub provider_code: String,
    pub duration: String,
    pub billed: bool,
    pub price_cents: i64,
    pub version: i32,
    pub status: String,
    pub eligible_kinds: Vec<String>,
    pub min_population: Option<i64>,
    pub max_population: Option<i64>,
    pub territory_epci: Vec<String>,
    pub territory_arrondissements: Vec<String>,
    pub price_kind: String,
    pub price_amount_cents: i64,
    pub price_days: i32,
    pub price_floor_cents: i64,
    pub price_cap_cents: i64,
    pub vat_rate_bp: Option<i32>,
    pub vat_note: String,
    pub copies: i32,
    pub managed_by: String,
    pub updated_at: DateTime<Utc>,
}

impl OfferRow {
    pub fn eligibility(&self) -> Eligibility {
        Eligibility {
            member_kinds: self.eligible_kinds.iter().filter_map(|k| MemberKind::parse(k)).collect(),
            min_population: self.min_population,
            max_population: self.max_population,
            epci_sirens: self.territory_epci.clone(),
            arrondissements: self.territory_arrondissements.clone(),
        }
    }

    /// `None` if the stored kind is unknown (the check constraint makes that impossible).
    pub fn price(&self) -> Option<PriceRule> {
        let amount_cents = self.price_amount_cents;
        Some(match PriceKind::parse(&self.price_kind)? {
            PriceKind::Free => PriceRule::Free,
            PriceKind::Flat => PriceRule::Flat { amount_cents },
            PriceKind::DailyRate => PriceRule::DailyRate { amount_cents, days: self.price_days },
            PriceKind::PerInhabitant => PriceRule::PerInhabitant {
                amount_cents,
                floor_cents: self.price_floor_cents,
                cap_cents: (self.price_cap_cents > 0).then_some(self.price_cap_cents),
            },
            PriceKind::OnQuote => PriceRule::OnQuote,
        })
    }

    /// `None` if a stored enum is unknown (the check constraints make that impossible).
    pub fn content(&self) -> Option<OfferContent> {
        Some(OfferContent {
            code: self.code.clone(),
            title: self.title.clone(),
            summary: self.summary.clone(),
            description: self.description.clone(),
            category: Category::parse(&self.category)?,
            themes: self.themes.clone(),
            provider_code: self.provider_code.clone(),
            duration: self.duration.clone(),
            eligibility: self.eligibility(),
            price: self.price()?,
            vat_rate_bp: self.vat_rate_bp,
            vat_note: self.vat_note.clone(),
            copies: self.copies,
        })
    }

    pub fn to_domain(&self) -> Option<StoredOffer> {
        Some(StoredOffer {
            id: self.id,
            version: self.version,
            status: OfferStatus::parse(&self.status)?,
            operator_managed: self.managed_by == "operator",
            content: self.content()?,
        })
    }
}

const PROVIDER_COLUMNS: &str = "code, name, kind, contact_email";
pub const OFFER_COLUMNS: &str = "id, code, title, summary, description, category, themes, provider_code, duration, \
     billed, price_cents, version, status, eligible_kinds, min_population, max_population, territory_epci, \
     territory_arrondissements, price_kind, price_amount_cents, price_days, price_floor_cents, price_cap_cents, \
     vat_rate_bp, vat_note, copies, managed_by, updated_at";

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

/// Inserts a provider; `false` if the code is taken.
pub async fn insert_provider(conn: &mut PgConnection, p: &Provider) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO provider (code, name, kind, contact_email) VALUES ($1, $2, $3, $4) ON CONFLICT (code) DO NOTHING",
    )
    .bind(&p.code)
    .bind(&p.name)
    .bind(p.kind.as_str())
    .bind(&p.contact_email)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Updates a provider; `false` if unknown.
pub async fn update_provider(conn: &mut PgConnection, p: &Provider) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE provider SET name = $2, kind = $3, contact_email = $4, updated_at = now() WHERE code = $1")
            .bind(&p.code)
            .bind(&p.name)
            .bind(p.kind.as_str())
            .bind(&p.contact_email)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn provider_by_code(conn: &mut PgConnection, code: &str) -> Result<Option<ProviderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {PROVIDER_COLUMNS} FROM provider WHERE code = $1")))
        .bind(code)
        .fetch_optional(conn)
        .await
}

/// Writes an offer (insert, or a new content/version/status of an existing one, keeping its id) and records
/// the version's snapshot.
pub async fn write_offer(
    conn: &mut PgConnection,
    id: Uuid,
    version: i32,
    status: OfferStatus,
    managed_by: &str,
    o: &OfferContent,
) -> Result<OfferRow, sqlx::Error> {
    let (billed, price_cents) = o.price.legacy();
    let (amount, days, floor, cap) = match o.price {
        PriceRule::Free | PriceRule::OnQuote => (0, 0, 0, 0),
        PriceRule::Flat { amount_cents } => (amount_cents, 0, 0, 0),
        PriceRule::DailyRate { amount_cents, days } => (amount_cents, days, 0, 0),
        PriceRule::PerInhabitant { amount_cents, floor_cents, cap_cents } => {
            (amount_cents, 0, floor_cents, cap_cents.unwrap_or(0))
        }
    };
    let kinds: Vec<&str> = o.eligibility.member_kinds.iter().map(|k| k.as_str()).collect();
    let row: OfferRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO offer (id, code, title, summary, description, category, themes, provider_code, duration,
           billed, price_cents, version, status, eligible_kinds, min_population, max_population, territory_epci,
           territory_arrondissements, price_kind, price_amount_cents, price_days, price_floor_cents,
           price_cap_cents, vat_rate_bp, vat_note, copies, managed_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
           $22, $23, $24, $25, $26, $27)
         ON CONFLICT (code) DO UPDATE SET title = EXCLUDED.title, summary = EXCLUDED.summary,
           description = EXCLUDED.description, category = EXCLUDED.category, themes = EXCLUDED.themes,
           provider_code = EXCLUDED.provider_code, duration = EXCLUDED.duration, billed = EXCLUDED.billed,
           price_cents = EXCLUDED.price_cents, version = EXCLUDED.version, status = EXCLUDED.status,
           eligible_kinds = EXCLUDED.eligible_kinds, min_population = EXCLUDED.min_population,
           max_population = EXCLUDED.max_population, territory_epci = EXCLUDED.territory_epci,
           territory_arrondissements = EXCLUDED.territory_arrondissements, price_kind = EXCLUDED.price_kind,
           price_amount_cents = EXCLUDED.price_amount_cents, price_days = EXCLUDED.price_days,
           price_floor_cents = EXCLUDED.price_floor_cents, price_cap_cents = EXCLUDED.price_cap_cents,
           vat_rate_bp = EXCLUDED.vat_rate_bp, vat_note = EXCLUDED.vat_note, copies = EXCLUDED.copies,
           managed_by = EXCLUDED.managed_by, updated_at = now()
         RETURNING {OFFER_COLUMNS}"
    )))
    .bind(id)
    .bind(&o.code)
    .bind(&o.title)
    .bind(&o.summary)
    .bind(&o.description)
    .bind(o.category.as_str())
    .bind(&o.themes)
    .bind(&o.provider_code)
    .bind(&o.duration)
    .bind(billed)
    .bind(price_cents)
    .bind(version)
    .bind(status.as_str())
    .bind(&kinds)
    .bind(o.eligibility.min_population)
    .bind(o.eligibility.max_population)
    .bind(&o.eligibility.epci_sirens)
    .bind(&o.eligibility.arrondissements)
    .bind(o.price.kind().as_str())
    .bind(amount)
    .bind(days)
    .bind(floor)
    .bind(cap)
    .bind(o.vat_rate_bp)
    .bind(&o.vat_note)
    .bind(o.copies)
    .bind(managed_by)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO offer_version (offer_id, version, content) VALUES ($1, $2, $3)
         ON CONFLICT (offer_id, version) DO UPDATE SET content = EXCLUDED.content, recorded_at = now()",
    )
    .bind(row.id)
    .bind(version)
    .bind(sqlx::types::Json(o))
    .execute(&mut *conn)
    .await?;
    ensure_copies(conn, row.id, o.copies).await?;
    Ok(row)
}

/// Changes an offer's status (publish, archive).
pub async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: OfferStatus,
    managed_by: &str,
) -> Result<OfferRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE offer SET status = $2, managed_by = $3, updated_at = now() WHERE id = $1 RETURNING {OFFER_COLUMNS}"
    )))
    .bind(id)
    .bind(status.as_str())
    .bind(managed_by)
    .fetch_one(conn)
    .await
}

/// Rebuilds the words used for typo correction from the published offers.
pub async fn refresh_search_words(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM search_word").execute(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO search_word (word)
         SELECT DISTINCT m[1] FROM offer,
           regexp_matches(lower(unaccent(title || ' ' || summary || ' ' || description || ' '
             || array_to_string(themes, ' '))), '([a-z0-9]{3,})', 'g') AS m
         WHERE status = 'published'
         ON CONFLICT DO NOTHING",
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Offers by code, optionally of one category and/or provider, among `statuses`, keyset-paginated on the code.
pub async fn list_offers(
    pool: &PgPool,
    category: Option<&str>,
    provider_code: Option<&str>,
    statuses: &[&str],
    after_code: Option<String>,
    limit: i64,
) -> Result<Vec<OfferRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {OFFER_COLUMNS} FROM offer
         WHERE ($1::text IS NULL OR category = $1)
           AND ($2::text IS NULL OR provider_code = $2)
           AND status = ANY($5)
           AND code > $3
         ORDER BY code LIMIT $4"
    )))
    .bind(category)
    .bind(provider_code)
    .bind(after_code.unwrap_or_default())
    .bind(limit)
    .bind(statuses)
    .fetch_all(pool)
    .await
}

/// A matching offer with its relevance, and the query as searched after typo correction.
#[derive(Debug, Clone, FromRow)]
pub struct SearchRow {
    #[sqlx(flatten)]
    pub offer: OfferRow,
    pub rank: f32,
    pub corrected: Option<String>,
}

impl SearchRow {
    /// The offer as search filters and counts it; `None` if a stored enum is unknown (the check constraints
    /// make that impossible).
    pub fn hit(&self) -> Option<Hit> {
        let o = &self.offer;
        Some(Hit {
            code: o.code.clone(),
            category: Category::parse(&o.category)?,
            themes: o.themes.clone(),
            provider_code: o.provider_code.clone(),
            price_kind: PriceKind::parse(&o.price_kind)?,
            eligibility: o.eligibility(),
            rank: self.rank,
        })
    }
}

// Search's query: `crate::search::find`.

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

/// An offer by id, or by code when there is no id.
pub async fn offer_by_key(pool: &PgPool, id: Option<Uuid>, code: &str) -> Result<Option<OfferRow>, sqlx::Error> {
    match id {
        Some(id) => offer_by_id(pool, id).await,
        None => offer_by_code(pool, code).await,
    }
}

/// An offer by id or code, locked for an update.
pub async fn offer_for_update(
    conn: &mut PgConnection,
    id: Option<Uuid>,
    code: &str,
) -> Result<Option<OfferRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {OFFER_COLUMNS} FROM offer WHERE id = $1 OR ($1 IS NULL AND code = $2) FOR UPDATE"
    )))
    .bind(id)
    .bind(code)
    .fetch_optional(conn)
    .await
}

/// The snapshot of one version.
pub async fn offer_version(
    pool: &PgPool,
    id: Uuid,
    version: i32,
) -> Result<Option<(OfferContent, DateTime<Utc>)>, sqlx::Error> {
    let row: Option<(sqlx::types::Json<OfferContent>, DateTime<Utc>)> =
        sqlx::query_as("SELECT content, recorded_at FROM offer_version WHERE offer_id = $1 AND version = $2")
            .bind(id)
            .bind(version)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(json, at)| (json.0, at)))
}

pub async fn list_providers(pool: &PgPool) -> Result<Vec<ProviderRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {PROVIDER_COLUMNS} FROM provider ORDER BY code")))
        .fetch_all(pool)
        .await
}

// ---- members (read model) -----------------------------------------------------------------------------------

/// Records a member's facts and status; each fact and the status keep the newest value (by the publisher's
/// clock), an absent one (`None`, empty) keeps what is stored.
#[allow(clippy::too_many_arguments)]
pub async fn upsert_member(
    conn: &mut PgConnection,
    member_id: Uuid,
    kind: Option<MemberKind>,
    population: Option<i64>,
    epci_siren: &str,
    arrondissement: &str,
    status: Option<&str>,
    at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO member (member_id, kind, population, epci_siren, arrondissement, status, occurred_at,
           status_at)
         VALUES ($1, coalesce($2, ''), coalesce($3, 0), $4, $5, coalesce($6, 'unknown'), $7,
           CASE WHEN $6 IS NULL THEN '-infinity'::timestamptz ELSE $7 END)
         ON CONFLICT (member_id) DO UPDATE SET
           kind = CASE WHEN $2 IS NOT NULL AND ($7 >= member.occurred_at OR member.kind = '')
                  THEN $2 ELSE member.kind END,
           population = CASE WHEN $3 IS NOT NULL AND ($7 >= member.occurred_at OR member.population = 0)
                  THEN $3 ELSE member.population END,
           epci_siren = CASE WHEN $4 <> '' AND ($7 >= member.occurred_at OR member.epci_siren = '')
                  THEN $4 ELSE member.epci_siren END,
           arrondissement = CASE WHEN $5 <> '' AND ($7 >= member.occurred_at OR member.arrondissement = '')
                  THEN $5 ELSE member.arrondissement END,
           status = CASE WHEN $6 IS NOT NULL AND $7 >= member.status_at THEN $6 ELSE member.status END,
           status_at = CASE WHEN $6 IS NOT NULL AND $7 >= member.status_at THEN $7 ELSE member.status_at END,
           occurred_at = greatest(member.occurred_at, $7)",
    )
    .bind(member_id)
    .bind(kind.map(MemberKind::as_str))
    .bind(population)
    .bind(epci_siren)
    .bind(arrondissement)
    .bind(status)
    .bind(at)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, Clone, FromRow)]
pub struct MemberRow {
    pub kind: String,
    pub population: i64,
    pub epci_siren: String,
    pub arrondissement: String,
    pub status: String,
}

impl MemberRow {
    pub fn profile(&self) -> Option<MemberProfile> {
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Some(MemberProfile {
            kind: MemberKind::parse(&self.kind)?,
            population: self.population,
            epci_siren: non_empty(&self.epci_siren),
            arrondissement: non_empty(&self.arrondissement),
        })
    }
}

pub async fn member(pool: &PgPool, member_id: Uuid) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query_as("SELECT kind, population, epci_siren, arrondissement, status FROM member WHERE member_id = $1")
        .bind(member_id)
        .fetch_optional(pool)
        .await
}

// ---- exhibitions and bookings -------------------------------------------------------------------------------

/// Makes sure an exhibition has `copies` copies (numbered from 1; copies are never removed).
pub async fn ensure_copies(conn: &mut PgConnection, offer_id: Uuid, copies: i32) -> Result<(), sqlx::Error> {
    if copies <= 0 {
        return Ok(());
    }
    for n in 1..=copies {
        sqlx::query(
            "INSERT INTO exhibition_copy (id, offer_id, number, label) VALUES ($1, $2, $3, 'Exemplaire ' || $3)
             ON CONFLICT (offer_id, number) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(offer_id)
        .bind(n)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct CopyRow {
    pub id: Uuid,
    pub number: i32,
    pub label: String,
}

pub async fn copies(conn: &mut PgConnection, offer_id: Uuid) -> Result<Vec<CopyRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, number, label FROM exhibition_copy WHERE offer_id = $1 ORDER BY number")
        .bind(offer_id)
        .fetch_all(conn)
        .await
}

#[derive(Debug, Clone, FromRow)]
pub struct BookingRow {
    pub id: Uuid,
    pub copy_id: Uuid,
    pub copy_label: String,
    pub offer_id: Uuid,
    pub provider_code: String,
    pub member_id: Uuid,
    pub request_id: Option<Uuid>,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    pub status: String,
    pub release_reason: String,
    pub updated_at: DateTime<Utc>,
}

const BOOKING_SELECT: &str = "SELECT b.id, b.copy_id, c.label AS copy_label, b.offer_id, o.provider_code,
       b.member_id, b.request_id, b.start_date, b.end_date, b.status, b.release_reason, b.updated_at
     FROM booking b JOIN exhibition_copy c ON c.id = b.copy_id JOIN offer o ON o.id = b.offer_id";

/// Live bookings (held or confirmed) of an exhibition overlapping the inclusive dates.
pub async fn bookings_between(
    pool: &PgPool,
    offer_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<BookingRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{BOOKING_SELECT} WHERE b.offer_id = $1 AND b.status <> 'released'
           AND b.period && daterange($2, $3, '[]') ORDER BY b.start_date, c.number"
    )))
    .bind(offer_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
}

/// Why a hold on one copy failed.
#[derive(Debug)]
pub enum HoldError {
    /// The copy is already held or lent for overlapping dates (the exclusion constraint said so).
    Taken,
    /// Two holds of the copy checked the constraint at the same moment and PostgreSQL chose this one as the
    /// deadlock victim (40P01): the other may win; try the copy again.
    Contended,
    Db(sqlx::Error),
}

/// Holds `copy_id` for the inclusive dates, in its own statement: the exclusion constraint decides.
#[allow(clippy::too_many_arguments)]
pub async fn insert_hold(
    conn: &mut PgConnection,
    id: Uuid,
    copy_id: Uuid,
    offer_id: Uuid,
    member_id: Uuid,
    request_id: Option<Uuid>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(), HoldError> {
    let result = sqlx::query(
        "INSERT INTO booking (id, copy_id, offer_id, member_id, request_id, start_date, end_date, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'held')",
    )
    .bind(id)
    .bind(copy_id)
    .bind(offer_id)
    .bind(member_id)
    .bind(request_id)
    .bind(from)
    .bind(to)
    .execute(conn)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23P01") => Err(HoldError::Taken),
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("40P01") => Err(HoldError::Contended),
        Err(e) => Err(HoldError::Db(e)),
    }
}

pub async fn booking(conn: &mut PgConnection, id: Uuid) -> Result<Option<BookingRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("{BOOKING_SELECT} WHERE b.id = $1"))).bind(id).fetch_optional(conn).await
}

/// Locks a booking for a status change.
pub async fn lock_booking(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let row: Option<(Uuid,)> =
        sqlx::query_as("SELECT id FROM booking WHERE id = $1 FOR UPDATE").bind(id).fetch_optional(conn).await?;
    Ok(row.is_some())
}

/// The live bookings of a request, locked.
pub async fn bookings_of_request(conn: &mut PgConnection, request_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM booking WHERE request_id = $1 AND status <> 'released' ORDER BY id FOR UPDATE")
        .bind(request_id)
        .fetch_all(conn)
        .await
}

/// The live bookings of these requests, locked in id order, as (request, booking): a consumer's batch reads them
/// in one statement (issue 23).
pub async fn bookings_of_requests(
    conn: &mut PgConnection,
    request_ids: &[Uuid],
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    if request_ids.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_as(
        "SELECT request_id, id FROM booking WHERE request_id = ANY($1) AND status <> 'released' ORDER BY id FOR UPDATE",
    )
    .bind(request_ids)
    .fetch_all(conn)
    .await
}

pub async fn set_booking_status(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE booking SET status = $2, release_reason = $3, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(reason)
        .execute(conn)
        .await?;
    Ok(())
}
