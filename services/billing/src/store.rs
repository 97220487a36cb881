//! SQL of the billing service.

use chrono::{DateTime, NaiveDate, Utc};
use id77_platform::outbox::{self, BindEvents};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use sqlx::types::Json;

use crate::domain::{Document, PriceRule, Tariff, Vat};
use crate::parties::{Party, ProviderFacts};

#[derive(Debug, Clone, FromRow)]
struct TariffRow {
    offer_id: Uuid,
    offer_code: String,
    title: String,
    provider_code: String,
    billed: bool,
    price_cents: i64,
    version: i32,
    price_kind: String,
    price_amount_cents: i64,
    price_days: i32,
    price_floor_cents: i64,
    price_cap_cents: i64,
    vat_rate_bp: Option<i32>,
    vat_note: String,
}

impl TryFrom<TariffRow> for Tariff {
    type Error = sqlx::Error;

    fn try_from(r: TariffRow) -> Result<Self, sqlx::Error> {
        let decode = |e: String| sqlx::Error::Decode(format!("tariff {}: {e}", r.offer_id).into());
        let price_rule = PriceRule::from_parts(
            &r.price_kind,
            r.price_amount_cents,
            r.price_days,
            r.price_floor_cents,
            r.price_cap_cents,
        )
        .map_err(decode)?;
        let vat = Vat::parse(r.vat_rate_bp, &r.vat_note).map_err(decode)?;
        Ok(Self {
            offer_id: r.offer_id,
            offer_code: r.offer_code,
            title: r.title,
            provider_code: r.provider_code,
            billed: r.billed,
            price_cents: r.price_cents,
            version: r.version,
            price_rule,
            vat,
        })
    }
}

/// The parts of a price rule as stored: (kind, amount, days, floor, cap).
fn rule_parts(rule: &PriceRule) -> (&'static str, i64, i32, i64, i64) {
    let kind = rule.kind().as_str();
    match *rule {
        PriceRule::Free | PriceRule::OnQuote => (kind, 0, 0, 0, 0),
        PriceRule::Flat { amount_cents } => (kind, amount_cents, 0, 0, 0),
        PriceRule::DailyRate { amount_cents, days } => (kind, amount_cents, days, 0, 0),
        PriceRule::PerInhabitant { amount_cents, floor_cents, cap_cents } => {
            (kind, amount_cents, 0, floor_cents, cap_cents)
        }
    }
}

/// Writes a tariff unless a version at least as new is stored. Returns whether it was written.
pub async fn upsert_tariff(conn: &mut PgConnection, t: &Tariff) -> Result<bool, sqlx::Error> {
    let (kind, amount, days, floor, cap) = rule_parts(&t.price_rule);
    let written = sqlx::query(
        "INSERT INTO tariff (offer_id, offer_code, title, provider_code, billed, price_cents, version, price_kind,
           price_amount_cents, price_days, price_floor_cents, price_cap_cents, vat_rate_bp, vat_note)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (offer_id) DO UPDATE SET offer_code = EXCLUDED.offer_code, title = EXCLUDED.title,
           provider_code = EXCLUDED.provider_code, billed = EXCLUDED.billed, price_cents = EXCLUDED.price_cents,
           version = EXCLUDED.version, price_kind = EXCLUDED.price_kind,
           price_amount_cents = EXCLUDED.price_amount_cents, price_days = EXCLUDED.price_days,
           price_floor_cents = EXCLUDED.price_floor_cents, price_cap_cents = EXCLUDED.price_cap_cents,
           vat_rate_bp = EXCLUDED.vat_rate_bp, vat_note = EXCLUDED.vat_note, updated_at = now()
         WHERE tariff.version < EXCLUDED.version",
    )
    .bind(t.offer_id)
    .bind(&t.offer_code)
    .bind(&t.title)
    .bind(&t.provider_code)
    .bind(t.billed)
    .bind(t.price_cents)
    .bind(t.version)
    .bind(kind)
    .bind(amount)
    .bind(days)
    .bind(floor)
    .bind(cap)
    .bind(t.vat.rate_bp())
    .bind(t.vat.note())
    .execute(conn)
    .await?
    .rows_affected();
    Ok(written > 0)
}

pub async fn tariff(conn: &mut PgConnection, offer_id: Uuid) -> Result<Option<Tariff>, sqlx::Error> {
    let row: Option<TariffRow> = sqlx::query_as(
        "SELECT offer_id, offer_code, title, provider_code, billed, price_cents, version, price_kind,
           price_amount_cents, price_days, price_floor_cents, price_cap_cents, vat_rate_bp, vat_note
         FROM tariff WHERE offer_id = $1",
    )
    .bind(offer_id)
    .fetch_optional(conn)
    .await?;
    row.map(Tariff::try_from).transpose()
}

/// Takes the next number of `document` for `issuer_code` and `year`. The sequence row stays locked until the
/// caller's transaction ends, so concurrent issuers queue and a rolled-back transaction gives its number
/// back: numbers are gapless and unique.
pub async fn next_number(
    conn: &mut PgConnection,
    document: Document,
    issuer_code: &str,
    year: i32,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO number_sequence AS s (document, issuer_code, year, last_value) VALUES ($1, $2, $3, 1)
         ON CONFLICT (document, issuer_code, year) DO UPDATE SET last_value = s.last_value + 1
         RETURNING last_value",
    )
    .bind(document.as_str())
    .bind(issuer_code)
    .bind(year)
    .fetch_one(conn)
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct QuoteRow {
    pub id: Uuid,
    pub number: String,
    pub issuer_code: String,
    pub year: i32,
    pub sequence: i64,
    pub member_id: Uuid,
    pub request_id: Uuid,
    pub referral_id: Uuid,
    pub offer_id: Uuid,
    pub offer_version: i32,
    pub label: String,
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    pub issued_at: DateTime<Utc>,
    pub amount_to_be_stated: bool,
    pub vat_rate_bp: Option<i32>,
    pub vat_note: String,
    pub seller: Json<Party>,
    pub buyer: Json<Party>,
    /// When the status last changed from 'proposed' (or an accepted quote was voided), and by whom (`None`:
    /// the system).
    pub decided_at: Option<DateTime<Utc>>,
    pub decided_by_user_id: Option<Uuid>,
    pub decided_by_name: String,
    pub signatory_name: String,
    /// Empty when none was given.
    pub purchase_order_number: String,
    pub decision_reason: String,
    pub expires_at: DateTime<Utc>,
}

const QUOTE_COLUMNS: &str = "id, number, issuer_code, year, sequence, member_id, request_id, referral_id, offer_id, \
     offer_version, label, amount_cents, currency, status, issued_at, amount_to_be_stated, vat_rate_bp, vat_note, \
     seller, buyer, decided_at, decided_by_user_id, decided_by_name, signatory_name, purchase_order_number, \
     decision_reason, expires_at";

/// Stores a quote and its `events` (`quote.issued`), in one statement.
pub async fn insert_quote(
    conn: &mut PgConnection,
    q: &QuoteRow,
    events: outbox::Outgoing,
) -> Result<QuoteRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH written AS (
           INSERT INTO quote ({QUOTE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
             $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)
           RETURNING {QUOTE_COLUMNS}),
         events AS ({})
         SELECT written.*, {} AS woke FROM written",
        outbox::Outgoing::insert_sql(28, "EXISTS (SELECT 1 FROM written)"),
        outbox::NOTIFY_SQL,
    )))
    .bind(q.id)
    .bind(&q.number)
    .bind(&q.issuer_code)
    .bind(q.year)
    .bind(q.sequence)
    .bind(q.member_id)
    .bind(q.request_id)
    .bind(q.referral_id)
    .bind(q.offer_id)
    .bind(q.offer_version)
    .bind(&q.label)
    .bind(q.amount_cents)
    .bind(&q.currency)
    .bind(&q.status)
    .bind(q.issued_at)
    .bind(q.amount_to_be_stated)
    .bind(q.vat_rate_bp)
    .bind(&q.vat_note)
    .bind(&q.seller)
    .bind(&q.buyer)
    .bind(q.decided_at)
    .bind(q.decided_by_user_id)
    .bind(&q.decided_by_name)
    .bind(&q.signatory_name)
    .bind(&q.purchase_order_number)
    .bind(&q.decision_reason)
    .bind(q.expires_at)
    .bind_events(events)
    .fetch_one(conn)
    .await
}

/// The quote, locked until the transaction ends (a decision, a void, an expiry or an invoice: one at a time).
pub async fn quote_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<QuoteRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {QUOTE_COLUMNS} FROM quote WHERE id = $1 FOR UPDATE")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// The referral's quote, locked until the transaction ends.
pub async fn quote_for_referral_for_update(
    conn: &mut PgConnection,
    referral_id: Uuid,
) -> Result<Option<QuoteRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {QUOTE_COLUMNS} FROM quote WHERE referral_id = $1 FOR UPDATE")))
        .bind(referral_id)
        .fetch_optional(conn)
        .await
}

/// Every quote of a request, oldest first, locked until the transaction ends.
pub async fn quotes_of_request_for_update(
    conn: &mut PgConnection,
    request_id: Uuid,
) -> Result<Vec<QuoteRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {QUOTE_COLUMNS} FROM quote WHERE request_id = $1 ORDER BY issued_at, id FOR UPDATE"
    )))
    .bind(request_id)
    .fetch_all(conn)
    .await
}

/// Proposed quotes whose expiry is at or before `now`, at most `limit`, locked; rows another transaction holds
/// are skipped (a concurrent decision, or another replica's sweeper).
pub async fn due_quotes_for_update(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<QuoteRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {QUOTE_COLUMNS} FROM quote WHERE status = 'proposed' AND expires_at <= $1
         ORDER BY expires_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
    )))
    .bind(now)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// A quote's decision, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteDecision<'a> {
    pub status: &'a str,
    pub decided_at: DateTime<Utc>,
    pub decided_by_user_id: Option<Uuid>,
    pub decided_by_name: &'a str,
    /// `None` keeps the stored value (a void keeps who signed the accepted quote).
    pub signatory_name: Option<&'a str>,
    pub purchase_order_number: Option<&'a str>,
    pub decision_reason: &'a str,
}

/// Records the decision on a locked quote.
pub async fn decide_quote(conn: &mut PgConnection, id: Uuid, d: &QuoteDecision<'_>) -> Result<QuoteRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE quote SET status = $2, decided_at = $3, decided_by_user_id = $4, decided_by_name = $5,
           signatory_name = COALESCE($6, signatory_name),
           purchase_order_number = COALESCE($7, purchase_order_number), decision_reason = $8
         WHERE id = $1 RETURNING {QUOTE_COLUMNS}"
    )))
    .bind(id)
    .bind(d.status)
    .bind(d.decided_at)
    .bind(d.decided_by_user_id)
    .bind(d.decided_by_name)
    .bind(d.signatory_name)
    .bind(d.purchase_order_number)
    .bind(d.decision_reason)
    .fetch_one(conn)
    .await
}

/// Records that a request was cancelled (the first cancellation seen wins). Returns whether it was new.
pub async fn record_cancelled_request(
    conn: &mut PgConnection,
    request_id: Uuid,
    reason: &str,
    cancelled_at: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO cancelled_request (request_id, reason, cancelled_at) VALUES ($1, $2, $3)
         ON CONFLICT (request_id) DO NOTHING",
    )
    .bind(request_id)
    .bind(reason)
    .bind(cancelled_at)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// Whether billing saw the request cancelled.
/// What proposing a quote for an accepted referral reads, in one statement where four were (issue 23).
#[derive(Debug)]
pub struct QuotingContext {
    /// The number of the referral's quote, if it has one already (a replay).
    pub quoted: Option<String>,
    /// Billing saw the request cancelled.
    pub cancelled: bool,
    pub tariff: Option<Tariff>,
    pub member: Option<MemberRow>,
    /// The provider of the tariff's offer, as billing knows it (the usual issuer of the quote).
    pub provider: Option<ProviderFacts>,
}

pub async fn quoting_context(
    conn: &mut PgConnection,
    referral_id: Uuid,
    request_id: Uuid,
    offer_id: Option<Uuid>,
    member_id: Uuid,
) -> Result<QuotingContext, sqlx::Error> {
    let mut contexts = quoting_contexts(conn, &[(referral_id, request_id, offer_id, member_id)]).await?;
    contexts.pop().ok_or(sqlx::Error::RowNotFound)
}

/// The [`QuotingContext`]s of a consumer's batch of accepted referrals (`(referral_id, request_id, offer_id,
/// member_id)` each), in their order, in one read (issue 23: one per referral).
pub async fn quoting_contexts(
    conn: &mut PgConnection,
    referrals: &[(Uuid, Uuid, Option<Uuid>, Uuid)],
) -> Result<Vec<QuotingContext>, sqlx::Error> {
    use sqlx::Row;
    if referrals.is_empty() {
        return Ok(Vec::new());
    }
    // Each row type reads its own columns by name; the provider's are renamed apart from the member's.
    let rows = sqlx::query(
        "SELECT (SELECT number FROM quote WHERE referral_id = s.referral_id) AS quoted,
                EXISTS (SELECT 1 FROM cancelled_request WHERE request_id = s.request_id) AS cancelled,
                t.offer_id, t.offer_code, t.title, t.provider_code, t.billed, t.price_cents, t.version, t.price_kind,
                t.price_amount_cents, t.price_days, t.price_floor_cents, t.price_cap_cents, t.vat_rate_bp, t.vat_note,
                m.member_id, m.siren, m.population, m.name,
                p.code AS provider_code_known, p.name AS provider_name, p.kind AS provider_kind
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[]) WITH ORDINALITY
              AS s(referral_id, request_id, offer_id, member_id, n)
         LEFT JOIN tariff t ON t.offer_id = s.offer_id
         LEFT JOIN member m ON m.member_id = s.member_id
         LEFT JOIN provider p ON p.code = t.provider_code
         ORDER BY s.n",
    )
    .bind(referrals.iter().map(|r| r.0).collect::<Vec<_>>())
    .bind(referrals.iter().map(|r| r.1).collect::<Vec<_>>())
    .bind(referrals.iter().map(|r| r.2).collect::<Vec<_>>())
    .bind(referrals.iter().map(|r| r.3).collect::<Vec<_>>())
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let tariff = match row.try_get::<Option<Uuid>, _>("offer_id")? {
                Some(_) => Some(Tariff::try_from(TariffRow::from_row(row)?)?),
                None => None,
            };
            let member = match row.try_get::<Option<Uuid>, _>("member_id")? {
                Some(_) => Some(MemberRow::from_row(row)?),
                None => None,
            };
            let provider = match row.try_get::<Option<String>, _>("provider_code_known")? {
                Some(code) => Some(ProviderFacts {
                    code,
                    name: row.try_get("provider_name")?,
                    kind: row.try_get("provider_kind")?,
                }),
                None => None,
            };
            Ok(QuotingContext {
                quoted: row.try_get("quoted")?,
                cancelled: row.try_get("cancelled")?,
                tariff,
                member,
                provider,
            })
        })
        .collect()
}

pub async fn get_quote(pool: &PgPool, id: Uuid) -> Result<Option<QuoteRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {QUOTE_COLUMNS} FROM quote WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Which quotes a list returns; `None` filters nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuoteFilter<'a> {
    pub member_id: Option<Uuid>,
    pub request_id: Option<Uuid>,
    pub issuer_code: Option<&'a str>,
    /// Only documents changed (`updated_at`, any write) strictly after this instant: a list's sync.
    pub updated_since: Option<DateTime<Utc>>,
}

/// Quotes in the order they were issued, optionally of one member, request and/or issuer, keyset-paginated on
/// (issued_at, id).
pub async fn list_quotes(
    pool: &PgPool,
    filter: QuoteFilter<'_>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<QuoteRow>, sqlx::Error> {
    let (after_at, after_id) = after.unzip();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {QUOTE_COLUMNS} FROM quote
         WHERE ($1::uuid IS NULL OR member_id = $1) AND ($2::uuid IS NULL OR request_id = $2)
           AND ($6::text IS NULL OR issuer_code = $6)
           AND ($3::timestamptz IS NULL OR (issued_at, id) > ($3, $4::uuid))
           AND ($7::timestamptz IS NULL OR updated_at > $7)
         ORDER BY issued_at, id LIMIT $5"
    )))
    .bind(filter.member_id)
    .bind(filter.request_id)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .bind(filter.issuer_code)
    .bind(filter.updated_since)
    .fetch_all(pool)
    .await
}

/// Records who follows a member if the event is not older than what is stored (`None`: nobody).
pub async fn upsert_member_referent(
    conn: &mut PgConnection,
    member_id: Uuid,
    referent_user_id: Option<Uuid>,
    as_of: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO member_referent (member_id, referent_user_id, as_of) VALUES ($1, $2, $3)
         ON CONFLICT (member_id) DO UPDATE SET referent_user_id = EXCLUDED.referent_user_id, as_of = EXCLUDED.as_of
         WHERE member_referent.as_of <= EXCLUDED.as_of",
    )
    .bind(member_id)
    .bind(referent_user_id)
    .bind(as_of)
    .execute(conn)
    .await?;
    Ok(())
}

/// The referent following a member, if any.
pub async fn referent_of(pool: &PgPool, member_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<Option<Uuid>> =
        sqlx::query_scalar("SELECT referent_user_id FROM member_referent WHERE member_id = $1")
            .bind(member_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.flatten())
}

/// A member's facts as billing knows them.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct MemberRow {
    pub member_id: Uuid,
    pub siren: String,
    pub population: Option<i64>,
    pub name: String,
}

/// Records a member's SIREN, name and population from an event not older than what is stored; an empty SIREN
/// or name or a `None` population keeps the stored value.
pub async fn upsert_member(
    conn: &mut PgConnection,
    member_id: Uuid,
    siren: &str,
    name: &str,
    population: Option<i64>,
    as_of: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO member (member_id, siren, name, population, as_of) VALUES ($1, $2, $5, $3, $4)
         ON CONFLICT (member_id) DO UPDATE SET
           siren = CASE WHEN EXCLUDED.siren = '' THEN member.siren ELSE EXCLUDED.siren END,
           name = CASE WHEN EXCLUDED.name = '' THEN member.name ELSE EXCLUDED.name END,
           population = COALESCE(EXCLUDED.population, member.population), as_of = EXCLUDED.as_of
         WHERE member.as_of <= EXCLUDED.as_of",
    )
    .bind(member_id)
    .bind(siren)
    .bind(population)
    .bind(as_of)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn member(conn: &mut PgConnection, member_id: Uuid) -> Result<Option<MemberRow>, sqlx::Error> {
    sqlx::query_as("SELECT member_id, siren, population, name FROM member WHERE member_id = $1")
        .bind(member_id)
        .fetch_optional(conn)
        .await
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct InvoiceRow {
    pub id: Uuid,
    pub number: String,
    pub issuer_code: String,
    pub year: i32,
    pub sequence: i64,
    pub member_id: Uuid,
    pub buyer_siren: String,
    /// What it bills: 'request' (a completed request's accepted quote: `request_id` and `referral_id` set) or
    /// 'session' (a held training session's participants: `session_id` set).
    pub source_kind: String,
    pub request_id: Option<Uuid>,
    pub referral_id: Option<Uuid>,
    pub session_id: Option<Uuid>,
    pub offer_id: Uuid,
    pub offer_version: i32,
    pub label: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub net_cents: i64,
    pub vat_rate_bp: Option<i32>,
    pub vat_note: String,
    pub vat_cents: i64,
    pub gross_cents: i64,
    pub currency: String,
    pub status: String,
    pub issued_at: DateTime<Utc>,
    pub due_date: NaiveDate,
    pub credit_note_id: Option<Uuid>,
    pub seller: Json<Party>,
    pub buyer: Json<Party>,
    pub sent_on: Option<NaiveDate>,
    pub paid_on: Option<NaiveDate>,
    pub payment_reference: String,
    /// The accepted quote it bills (`None` for invoices issued before quotes were accepted).
    pub quote_id: Option<Uuid>,
    pub quote_number: String,
    /// The member's purchase order number from the quote's acceptance ('' when none).
    pub purchase_order_number: String,
}

const INVOICE_COLUMNS: &str = "id, number, issuer_code, year, sequence, member_id, buyer_siren, request_id, \
     referral_id, offer_id, offer_version, label, quantity, unit_price_cents, net_cents, vat_rate_bp, vat_note, \
     vat_cents, gross_cents, currency, status, issued_at, due_date, credit_note_id, seller, buyer, sent_on, paid_on, \
     payment_reference, quote_id, quote_number, purchase_order_number, source_kind, session_id";

pub async fn insert_invoice(conn: &mut PgConnection, i: &InvoiceRow) -> Result<InvoiceRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO invoice ({INVOICE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
           $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32, $33, $34)
         RETURNING {INVOICE_COLUMNS}"
    )))
    .bind(i.id)
    .bind(&i.number)
    .bind(&i.issuer_code)
    .bind(i.year)
    .bind(i.sequence)
    .bind(i.member_id)
    .bind(&i.buyer_siren)
    .bind(i.request_id)
    .bind(i.referral_id)
    .bind(i.offer_id)
    .bind(i.offer_version)
    .bind(&i.label)
    .bind(i.quantity)
    .bind(i.unit_price_cents)
    .bind(i.net_cents)
    .bind(i.vat_rate_bp)
    .bind(&i.vat_note)
    .bind(i.vat_cents)
    .bind(i.gross_cents)
    .bind(&i.currency)
    .bind(&i.status)
    .bind(i.issued_at)
    .bind(i.due_date)
    .bind(i.credit_note_id)
    .bind(&i.seller)
    .bind(&i.buyer)
    .bind(i.sent_on)
    .bind(i.paid_on)
    .bind(&i.payment_reference)
    .bind(i.quote_id)
    .bind(&i.quote_number)
    .bind(&i.purchase_order_number)
    .bind(&i.source_kind)
    .bind(i.session_id)
    .fetch_one(conn)
    .await
}

/// The invoice of a held session's member, if it was issued (a redelivered `session.held` issues none again).
pub async fn invoice_for_session_member(
    conn: &mut PgConnection,
    session_id: Uuid,
    member_id: Uuid,
) -> Result<Option<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoice WHERE session_id = $1 AND member_id = $2"
    )))
    .bind(session_id)
    .bind(member_id)
    .fetch_optional(conn)
    .await
}

pub async fn invoice_for_referral(
    conn: &mut PgConnection,
    referral_id: Uuid,
) -> Result<Option<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {INVOICE_COLUMNS} FROM invoice WHERE referral_id = $1")))
        .bind(referral_id)
        .fetch_optional(conn)
        .await
}

/// The invoices of a request, oldest first.
pub async fn invoices_of_request(conn: &mut PgConnection, request_id: Uuid) -> Result<Vec<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoice WHERE request_id = $1 ORDER BY issued_at, id"
    )))
    .bind(request_id)
    .fetch_all(conn)
    .await
}

pub async fn get_invoice(pool: &PgPool, id: Uuid) -> Result<Option<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {INVOICE_COLUMNS} FROM invoice WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// The invoice, locked until the transaction ends (for its cancellation).
pub async fn invoice_for_update(conn: &mut PgConnection, id: Uuid) -> Result<Option<InvoiceRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {INVOICE_COLUMNS} FROM invoice WHERE id = $1 FOR UPDATE")))
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Invoices in the order they were issued, filtered like quotes, keyset-paginated on (issued_at, id).
pub async fn list_invoices(
    pool: &PgPool,
    filter: QuoteFilter<'_>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<InvoiceRow>, sqlx::Error> {
    let (after_at, after_id) = after.unzip();
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INVOICE_COLUMNS} FROM invoice
         WHERE ($1::uuid IS NULL OR member_id = $1) AND ($2::uuid IS NULL OR request_id = $2)
           AND ($6::text IS NULL OR issuer_code = $6)
           AND ($3::timestamptz IS NULL OR (issued_at, id) > ($3, $4::uuid))
           AND ($7::timestamptz IS NULL OR updated_at > $7)
         ORDER BY issued_at, id LIMIT $5"
    )))
    .bind(filter.member_id)
    .bind(filter.request_id)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .bind(filter.issuer_code)
    .bind(filter.updated_since)
    .fetch_all(pool)
    .await
}

#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct CreditNoteRow {
    pub id: Uuid,
    pub number: String,
    pub issuer_code: String,
    pub year: i32,
    pub sequence: i64,
    pub invoice_id: Uuid,
    pub reason: String,
    pub issued_at: DateTime<Utc>,
}

const CREDIT_NOTE_COLUMNS: &str = "id, number, issuer_code, year, sequence, invoice_id, reason, issued_at";

/// Stores a credit note and marks its invoice cancelled by it.
pub async fn insert_credit_note(conn: &mut PgConnection, c: &CreditNoteRow) -> Result<CreditNoteRow, sqlx::Error> {
    let row: CreditNoteRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO credit_note ({CREDIT_NOTE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         RETURNING {CREDIT_NOTE_COLUMNS}"
    )))
    .bind(c.id)
    .bind(&c.number)
    .bind(&c.issuer_code)
    .bind(c.year)
    .bind(c.sequence)
    .bind(c.invoice_id)
    .bind(&c.reason)
    .bind(c.issued_at)
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query("UPDATE invoice SET status = 'cancelled', credit_note_id = $2 WHERE id = $1")
        .bind(c.invoice_id)
        .bind(c.id)
        .execute(conn)
        .await?;
    Ok(row)
}

pub async fn credit_note_of_invoice(pool: &PgPool, invoice_id: Uuid) -> Result<Option<CreditNoteRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {CREDIT_NOTE_COLUMNS} FROM credit_note WHERE invoice_id = $1")))
        .bind(invoice_id)
        .fetch_optional(pool)
        .await
}

/// Records a provider's name and kind as the catalogue last announced them.
pub async fn upsert_provider(conn: &mut PgConnection, p: &ProviderFacts) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO provider (code, name, kind) VALUES ($1, $2, $3)
         ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind, updated_at = now()
         WHERE (provider.name, provider.kind) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.kind)",
    )
    .bind(&p.code)
    .bind(&p.name)
    .bind(&p.kind)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn provider(conn: &mut PgConnection, code: &str) -> Result<Option<ProviderFacts>, sqlx::Error> {
    let row: Option<(String, String, String)> =
        sqlx::query_as("SELECT code, name, kind FROM provider WHERE code = $1").bind(code).fetch_optional(conn).await?;
    Ok(row.map(|(code, name, kind)| ProviderFacts { code, name, kind }))
}

pub async fn get_credit_note(pool: &PgPool, id: Uuid) -> Result<Option<CreditNoteRow>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {CREDIT_NOTE_COLUMNS} FROM credit_note WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Records a locked invoice's new status and the date (and reference) of what happened; unset values keep
/// the stored ones.
pub async fn mark_invoice(
    conn: &mut PgConnection,
    id: Uuid,
    status: &str,
    sent_on: Option<NaiveDate>,
    paid_on: Option<NaiveDate>,
    payment_reference: &str,
) -> Result<InvoiceRow, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE invoice SET status = $2, sent_on = COALESCE($3, sent_on), paid_on = COALESCE($4, paid_on),
           payment_reference = CASE WHEN $5 = '' THEN payment_reference ELSE $5 END
         WHERE id = $1 RETURNING {INVOICE_COLUMNS}"
    )))
    .bind(id)
    .bind(status)
    .bind(sent_on)
    .bind(paid_on)
    .bind(payment_reference)
    .fetch_one(conn)
    .await
}
