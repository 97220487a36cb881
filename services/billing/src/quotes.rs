//! A quote's life in the database (ADR 0013): issue it as a proposal (the issuer's next number, stored and
//! announced), record a member admin's acceptance or refusal, void it when its request is cancelled, expire it
//! when nobody answered in time. Each change locks the quote's row, follows `domain::QuoteStatus::apply` and
//! enqueues its integration event in the caller's transaction (outbox), so a concurrent acceptance and void
//! resolve to one order and each change is announced once.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use id77_platform::{outbox, time};
use id77_proto::billing::v1 as pb;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain::{self, CURRENCY, Document, InvalidTransition, QuoteEvent, QuoteStatus, Vat};
use crate::grpc::quote_to_proto;
use crate::parties::Party;
use crate::store::{self, QuoteDecision, QuoteRow};

/// Subject of `QuoteIssued` (the proposal).
pub const SUBJECT_QUOTE_ISSUED: &str = "id77.billing.quote.issued";
/// Subject of `QuoteAccepted`.
pub const SUBJECT_QUOTE_ACCEPTED: &str = "id77.billing.quote.accepted";
/// Subject of `QuoteRefused`.
pub const SUBJECT_QUOTE_REFUSED: &str = "id77.billing.quote.refused";
/// Subject of `QuoteVoided`.
pub const SUBJECT_QUOTE_VOIDED: &str = "id77.billing.quote.voided";
/// Subject of `QuoteExpired`.
pub const SUBJECT_QUOTE_EXPIRED: &str = "id77.billing.quote.expired";

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

/// Numbers, stores and enqueues `QuoteIssued` for a quote proposed at `issued_at`, expiring `validity` later.
/// Gapless only if the caller commits the transaction (a rollback gives the number back).
pub async fn issue(
    conn: &mut PgConnection,
    draft: QuoteDraft,
    issued_at: DateTime<Utc>,
    validity: Duration,
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
        status: QuoteStatus::Proposed.as_str().to_owned(),
        issued_at,
        amount_to_be_stated: draft.amount_to_be_stated,
        vat_rate_bp: draft.vat.rate_bp(),
        vat_note: draft.vat.note().to_owned(),
        seller: sqlx::types::Json(draft.seller),
        buyer: sqlx::types::Json(draft.buyer),
        decided_at: None,
        decided_by_user_id: None,
        decided_by_name: String::new(),
        signatory_name: String::new(),
        purchase_order_number: String::new(),
        decision_reason: String::new(),
        expires_at: domain::expires_at(issued_at, validity),
    };
    let quote = store::insert_quote(conn, &row).await?;
    outbox::enqueue(conn, SUBJECT_QUOTE_ISSUED, &pb::QuoteIssued { quote: Some(quote_to_proto(quote.clone())) })
        .await?;
    Ok(quote)
}

/// Who acted: a user (`None`: the system), the role they acted in, their display name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Actor {
    pub user_id: Option<Uuid>,
    pub role: String,
    pub name: String,
}

/// A member admin's answer to a proposed quote, its fields already checked (`domain::signatory_name`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberDecision {
    Accept { signatory_name: String, purchase_order_number: Option<String> },
    Refuse { reason: String },
}

/// Why a member's decision cannot be recorded.
#[derive(Debug)]
pub enum DecisionError {
    /// The state machine refuses it (the quote is no longer proposed).
    Transition(InvalidTransition),
    /// The quote of an offer priced on quote has no amount yet: nothing to agree to.
    AmountNotStated,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for DecisionError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(e)
    }
}

/// The stored status of a row; anything else is a corrupt row (the CHECK constraint forbids it).
fn status_of(quote: &QuoteRow) -> Result<QuoteStatus, sqlx::Error> {
    QuoteStatus::parse(&quote.status)
        .ok_or_else(|| sqlx::Error::Decode(format!("quote {}: unknown status {:?}", quote.id, quote.status).into()))
}

/// Records a member admin's decision on a quote the caller locked (`store::quote_for_update`) and enqueues
/// `QuoteAccepted` or `QuoteRefused` with the actor.
pub async fn decide(
    conn: &mut PgConnection,
    quote: QuoteRow,
    decision: &MemberDecision,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<QuoteRow, DecisionError> {
    let from = status_of(&quote)?;
    let event = match decision {
        MemberDecision::Accept { .. } => QuoteEvent::Accept,
        MemberDecision::Refuse { .. } => QuoteEvent::Refuse,
    };
    let to = from.apply(event).map_err(DecisionError::Transition)?;
    if event == QuoteEvent::Accept && quote.amount_to_be_stated {
        return Err(DecisionError::AmountNotStated);
    }
    let (signatory_name, purchase_order_number, reason) = match decision {
        MemberDecision::Accept { signatory_name, purchase_order_number } => {
            (Some(signatory_name.as_str()), Some(purchase_order_number.as_deref().unwrap_or("")), "")
        }
        MemberDecision::Refuse { reason } => (None, None, reason.as_str()),
    };
    let row = store::decide_quote(
        conn,
        quote.id,
        &QuoteDecision {
            status: to.as_str(),
            decided_at: now,
            decided_by_user_id: actor.user_id,
            decided_by_name: &actor.name,
            signatory_name,
            purchase_order_number,
            decision_reason: reason,
        },
    )
    .await?;
    let proto = Some(quote_to_proto(row.clone()));
    let (actor_user_id, actor_role, actor_name) =
        (actor.user_id.map(|u| u.to_string()).unwrap_or_default(), actor.role.clone(), actor.name.clone());
    match decision {
        MemberDecision::Accept { .. } => {
            let event = pb::QuoteAccepted { quote: proto, actor_user_id, actor_role, actor_name };
            outbox::enqueue(conn, SUBJECT_QUOTE_ACCEPTED, &event).await?;
        }
        MemberDecision::Refuse { .. } => {
            let event = pb::QuoteRefused { quote: proto, actor_user_id, actor_role, actor_name };
            outbox::enqueue(conn, SUBJECT_QUOTE_REFUSED, &event).await?;
        }
    }
    Ok(row)
}

/// Voids a locked quote whose request was cancelled and enqueues `QuoteVoided`; `None` (nothing done) when the
/// quote is already final (voided by an earlier delivery, refused or expired).
pub async fn void(
    conn: &mut PgConnection,
    quote: QuoteRow,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<QuoteRow>, sqlx::Error> {
    let Ok(to) = status_of(&quote)?.apply(QuoteEvent::Void) else { return Ok(None) };
    let row = store::decide_quote(
        conn,
        quote.id,
        &QuoteDecision {
            status: to.as_str(),
            decided_at: now,
            decided_by_user_id: actor.user_id,
            decided_by_name: &actor.name,
            signatory_name: None,
            purchase_order_number: None,
            decision_reason: reason,
        },
    )
    .await?;
    outbox::enqueue(conn, SUBJECT_QUOTE_VOIDED, &pb::QuoteVoided { quote: Some(quote_to_proto(row.clone())) }).await?;
    Ok(Some(row))
}

/// Quotes expired per transaction of the sweeper.
pub const EXPIRY_BATCH: i64 = 100;

/// Marks `expired` the proposed quotes past their expiry at `now` and enqueues `QuoteExpired` for each, in
/// batches of `batch` (each its own transaction; rows locked elsewhere are left for the next sweep). Returns
/// how many expired.
pub async fn expire_due(pool: &PgPool, now: DateTime<Utc>, batch: i64) -> Result<usize, sqlx::Error> {
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        let due = store::due_quotes_for_update(&mut tx, now, batch).await?;
        let found = due.len();
        for quote in due {
            let Ok(to) = status_of(&quote)?.apply(QuoteEvent::Expire) else { continue };
            let reason = format!("no answer before {}", quote.expires_at.format("%Y-%m-%d %H:%M UTC"));
            let row = store::decide_quote(
                &mut tx,
                quote.id,
                &QuoteDecision {
                    status: to.as_str(),
                    decided_at: now,
                    decided_by_user_id: None,
                    decided_by_name: "",
                    signatory_name: None,
                    purchase_order_number: None,
                    decision_reason: &reason,
                },
            )
            .await?;
            let event = pb::QuoteExpired { quote: Some(quote_to_proto(row.clone())) };
            outbox::enqueue(&mut tx, SUBJECT_QUOTE_EXPIRED, &event).await?;
            tracing::info!(quote = %row.number, request_id = %row.request_id, "quote expired");
        }
        tx.commit().await?;
        total += found;
        if i64::try_from(found).unwrap_or(i64::MAX) < batch {
            return Ok(total);
        }
    }
}

/// Runs [`expire_due`] every `interval` until `shutdown` is cancelled (first sweep at once).
pub async fn run_expiry_sweeper(pool: PgPool, interval: StdDuration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(interval.max(StdDuration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        match expire_due(&pool, time::now(), EXPIRY_BATCH).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "quote expiry sweep"),
            Err(error) => tracing::warn!(%error, "quote expiry sweep failed; retried at the next tick"),
        }
    }
}
