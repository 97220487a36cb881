//! Issuing a quote: take the issuer's next number, store the quote and announce it, all in the caller's
//! transaction.

use chrono::{DateTime, Utc};
use id77_platform::outbox;
use id77_proto::billing::v1 as pb;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{self, CURRENCY, Document, Vat};
use crate::grpc::quote_to_proto;
use crate::parties::Party;
use crate::store::{self, QuoteRow};

/// Subject of `QuoteIssued`.
pub const SUBJECT_QUOTE_ISSUED: &str = "id77.billing.quote.issued";

/// What a quote is for, before it has a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteDraft {
    pub issuer_code: String,
    pub member_id: Uuid,
    pub request_id: Uuid,
    pub referral_id: Uuid,
    pub offer_id: Uuid,
    pub offer_version: i32,
    pub label: String,
    pub amount_cents: i64,
    /// On quote: the provider states the amount (`amount_cents` is 0).
    pub amount_to_be_stated: bool,
    pub vat: Vat,
    pub seller: Party,
    pub buyer: Party,
}

/// Numbers, stores and enqueues `QuoteIssued` for a quote issued at `issued_at`. Gapless only if the caller
/// commits the transaction (a rollback gives the number back).
pub async fn issue(
    conn: &mut PgConnection,
    draft: QuoteDraft,
    issued_at: DateTime<Utc>,
) -> Result<QuoteRow, sqlx::Error> {
    let year = domain::billing_year(issued_at);
    let sequence = store::next_number(conn, Document::Quote, &draft.issuer_code, year).await?;
    let row = QuoteRow {
        id: Uuid::now_v7(),
        number: Document::Quote.number(&draft.issuer_code, year, sequence),
        issuer_code: draft.issuer_code,
        year,
        sequence,
        member_id: draft.member_id,
        request_id: draft.request_id,
        referral_id: draft.referral_id,
        offer_id: draft.offer_id,
        offer_version: draft.offer_version,
        label: draft.label,
        amount_cents: draft.amount_cents,
        currency: CURRENCY.to_owned(),
        status: "issued".to_owned(),
        issued_at,
        amount_to_be_stated: draft.amount_to_be_stated,
        vat_rate_bp: draft.vat.rate_bp(),
        vat_note: draft.vat.note().to_owned(),
        seller: sqlx::types::Json(draft.seller),
        buyer: sqlx::types::Json(draft.buyer),
    };
    let quote = store::insert_quote(conn, &row).await?;
    outbox::enqueue(conn, SUBJECT_QUOTE_ISSUED, &pb::QuoteIssued { quote: Some(quote_to_proto(quote.clone())) })
        .await?;
    Ok(quote)
}
