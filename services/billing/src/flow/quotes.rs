//! A quote's life (ADR 0013): proposed when a provider accepts a referral for a billed offer (the issuer's next
//! number, stored and announced), accepted or refused by a member admin, voided when its request is cancelled,
//! expired when nobody answered in time. Each change locks the quote's row, follows `QuoteStatus::apply` and
//! enqueues its integration event in the same transaction (outbox), so a concurrent acceptance and void resolve
//! to one order and each change is announced once.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use id77_platform::auth::{Caller, Role};
use id77_platform::{outbox, time};
use id77_proto::billing::v1 as pb;
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{FlowError, seller, seller_of};
use crate::access;
use crate::domain::{
    self, Accepted, Actor, CURRENCY, DecideError, Decision, Document, MemberDecision, QuoteEvent, QuoteStatus, Stated,
    Tariff, Vat,
};
use crate::error::BillingError;
use crate::parties::ProviderFacts;
use crate::parties::{self, Issuers, Party};
use crate::proto_map::quote_to_proto;
use crate::store::{self, MemberRow, QuoteDecision, QuoteRow};

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
    // The row as built is the row as stored (times in microseconds, `time::now`): its event goes with its insert.
    let mut events = outbox::Outgoing::new();
    events.event(&pb::QuoteIssued { quote: Some(quote_to_proto(row.clone())) });
    store::insert_quote(conn, &row, events).await
}

/// Proposes a quote to the member when a provider accepts a referral for a billed offer (`proposed`, expiring
/// `validity` later), unless the referral has its quote already or billing saw the request cancelled. `stated`
/// is the amount the provider stated, which counts for an offer priced on quote only. Returns the quote
/// proposed, `None` when there is nothing to propose.
pub async fn propose(
    conn: &mut PgConnection,
    issuers: &Issuers,
    validity: Duration,
    accepted: &Accepted,
    stated: Option<&Stated>,
) -> Result<Option<QuoteRow>, FlowError> {
    let context =
        store::quoting_context(conn, accepted.referral_id, accepted.request_id, accepted.offer_id, accepted.member_id)
            .await?;
    propose_in(conn, issuers, validity, accepted, stated, context).await
}

/// [`propose`] with the referral's context read by the caller (a consumer's batch reads its referrals' contexts in
/// one statement: [`store::quoting_contexts`]).
pub async fn propose_in(
    conn: &mut PgConnection,
    issuers: &Issuers,
    validity: Duration,
    accepted: &Accepted,
    stated: Option<&Stated>,
    context: store::QuotingContext,
) -> Result<Option<QuoteRow>, FlowError> {
    // A replay under another message id: the referral already has its quote.
    if let Some(number) = &context.quoted {
        tracing::info!(referral_id = %accepted.referral_id, %number, "referral already quoted");
        return Ok(None);
    }
    // The request was cancelled while this acceptance was on its way: no quote to propose.
    if context.cancelled {
        tracing::info!(referral_id = %accepted.referral_id, request_id = %accepted.request_id,
            "referral accepted for a cancelled request: no quote");
        return Ok(None);
    }
    let (tariff, member) = (context.tariff, context.member);
    let population = match (&tariff, accepted.offer_id) {
        (Some(t), Some(_)) if t.price_rule.needs_population() => member.as_ref().and_then(|m| m.population),
        _ => None,
    };
    let decision = decision(accepted, tariff.as_ref(), population, stated)?;
    let Some(draft) = draft(conn, issuers, accepted, member.as_ref(), context.provider.as_ref(), decision).await?
    else {
        return Ok(None);
    };
    let quote = issue(conn, draft, time::now(), validity).await?;
    tracing::info!(quote_id = %quote.id, number = %quote.number, referral_id = %quote.referral_id,
        member_id = %quote.member_id, amount_cents = quote.amount_cents, expires_at = %quote.expires_at,
        "quote proposed");
    Ok(Some(quote))
}

/// What the offer's tariff decides for an accepted referral, with the amount the provider stated applied to an
/// offer priced on quote.
fn decision(
    accepted: &Accepted,
    tariff: Option<&Tariff>,
    population: Option<i64>,
    stated: Option<&Stated>,
) -> Result<Decision, FlowError> {
    match domain::decide(accepted, tariff, population) {
        Ok(decision @ Decision::Quote { to_be_stated: true, .. }) => Ok(decision.with_stated(stated)),
        Ok(decision) => {
            if let Some(s) = stated {
                // Routing refuses it for offers it knows; the offer's tariff decides here.
                tracing::warn!(referral_id = %accepted.referral_id, amount_cents = s.amount_cents,
                    "amount stated for an offer not priced on quote: ignored");
            }
            Ok(decision)
        }
        // The catalogue's event may still be on its way: try again later.
        Err(DecideError::UnknownTariff) => Err(FlowError::NotYet(format!(
            "tariff of offer {} not known yet",
            accepted.offer_id.map(|id| id.to_string()).unwrap_or_default()
        ))),
        // Membership's event may still be on its way: try again later.
        Err(DecideError::UnknownPopulation) => {
            Err(FlowError::NotYet(format!("population of member {} not known yet", accepted.member_id)))
        }
        Err(DecideError::Inconsistent(reason)) => {
            Err(FlowError::Rejected(format!("referral {}: {reason}", accepted.referral_id)))
        }
    }
}

/// The quote a decision calls for, with its parties; `None` when there is nothing to bill.
async fn draft(
    conn: &mut PgConnection,
    issuers: &Issuers,
    accepted: &Accepted,
    member: Option<&MemberRow>,
    provider: Option<&ProviderFacts>,
    decision: Decision,
) -> Result<Option<QuoteDraft>, FlowError> {
    match decision {
        Decision::NothingToBill => {
            tracing::info!(referral_id = %accepted.referral_id, "referral without an offer: nothing to bill");
            Ok(None)
        }
        Decision::Free => {
            tracing::info!(referral_id = %accepted.referral_id, "free offer: no quote");
            Ok(None)
        }
        Decision::Quote { issuer_code, amount_cents, to_be_stated, vat, label, offer_id, offer_version } => {
            if issuer_code != accepted.provider_code {
                tracing::warn!(referral_id = %accepted.referral_id, offer_provider = %issuer_code,
                    referral_provider = %accepted.provider_code,
                    "referral accepted by another provider than the offer's; the offer's provider issues the quote");
            }
            // The offer's provider was read with the tariff; another issuer is read now.
            let seller = match provider.filter(|p| p.code == issuer_code) {
                Some(known) => seller_of(issuers, &issuer_code, Some(known))?,
                None => seller(conn, issuers, &issuer_code).await?,
            };
            // The quote names the member as far as billing knows it (the invoice waits for its SIREN).
            let buyer = member.map(|m| parties::buyer(&m.name, &m.siren)).unwrap_or_else(|| parties::buyer("", ""));
            Ok(Some(QuoteDraft {
                seller,
                buyer,
                issuer_code,
                member_id: accepted.member_id,
                request_id: accepted.request_id,
                referral_id: accepted.referral_id,
                offer_id,
                offer_version,
                label,
                amount_cents,
                amount_to_be_stated: to_be_stated,
                vat,
            }))
        }
    }
}

/// The stored status of a row; anything else is a corrupt row (the CHECK constraint forbids it).
fn status_of(quote: &QuoteRow) -> Result<QuoteStatus, sqlx::Error> {
    QuoteStatus::parse(&quote.status)
        .ok_or_else(|| sqlx::Error::Decode(format!("quote {}: unknown status {:?}", quote.id, quote.status).into()))
}

/// AcceptQuote and RefuseQuote: a member admin of the quote's member answers a proposed quote (the caller's
/// role was checked, `access::may_decide`). The row is locked, so an acceptance and a void (the request's
/// cancellation) or an expiry happen one after the other; the loser gets INVALID_TRANSITION. Announced through
/// the outbox in the same transaction.
pub async fn decide(
    pool: &PgPool,
    caller: &Caller,
    id: Uuid,
    decision: &MemberDecision,
) -> Result<QuoteRow, FlowError> {
    let mut tx = pool.begin().await?;
    let quote = store::quote_for_update(&mut tx, id).await?.ok_or(FlowError::not_found("quote", id))?;
    access::decide_quote(caller, quote.member_id).map_err(|denied| FlowError::Denied { denied, what: "quote", id })?;
    let actor = Actor {
        user_id: Some(caller.user_id),
        role: Role::MemberAdmin.as_str().to_owned(),
        name: caller.display_name().to_owned(),
    };
    let row = record_decision(&mut tx, quote, decision, &actor, time::now()).await?;
    tx.commit().await?;
    tracing::info!(quote = %row.number, status = %row.status, user_id = %caller.user_id, "quote decided");
    Ok(row)
}

/// Records a member admin's decision on a locked quote and enqueues `QuoteAccepted` or `QuoteRefused` with the
/// actor.
async fn record_decision(
    conn: &mut PgConnection,
    quote: QuoteRow,
    decision: &MemberDecision,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<QuoteRow, FlowError> {
    let from = status_of(&quote)?;
    let event = decision.event();
    let to =
        from.apply(event).map_err(|t| BillingError::QuoteNotProposed { number: quote.number.clone(), from: t.from })?;
    if event == QuoteEvent::Accept && quote.amount_to_be_stated {
        return Err(BillingError::AmountNotStated { number: quote.number }.into());
    }
    let (signatory_name, purchase_order_number, reason) = match decision {
        MemberDecision::Accept { signatory_name, purchase_order_number } => {
            (Some(signatory_name.as_str()), Some(purchase_order_number.as_deref().unwrap_or("")), "")
        }
        MemberDecision::Refuse { reason } => (None, None, reason.as_str()),
    };
    let change = QuoteDecision {
        status: to.as_str(),
        decided_at: now,
        decided_by_user_id: actor.user_id,
        decided_by_name: &actor.name,
        signatory_name,
        purchase_order_number,
        decision_reason: reason,
    };
    let row = store::decide_quote(conn, quote.id, &change).await?;
    let proto = Some(quote_to_proto(row.clone()));
    let (actor_user_id, actor_role, actor_name) =
        (actor.user_id.map(|u| u.to_string()).unwrap_or_default(), actor.role.clone(), actor.name.clone());
    match decision {
        MemberDecision::Accept { .. } => {
            let event = pb::QuoteAccepted { quote: proto, actor_user_id, actor_role, actor_name };
            outbox::enqueue(conn, &event).await?;
        }
        MemberDecision::Refuse { .. } => {
            let event = pb::QuoteRefused { quote: proto, actor_user_id, actor_role, actor_name };
            outbox::enqueue(conn, &event).await?;
        }
    }
    Ok(row)
}

/// A request cancelled (requests' `request.cancelled`), as billing needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub request_id: Uuid,
    /// Why it was cancelled, as the canceller typed it.
    pub reason: String,
    pub at: DateTime<Utc>,
    pub actor: Actor,
}

/// Voids the quotes of a cancelled request (ADR 0013): a proposed or accepted quote becomes `voided` with the
/// reason "request cancelled: <reason>", announced by `quote.voided`. The cancellation is remembered, so a
/// referral acceptance delivered later issues no quote. An invoice cannot exist (requests refuses to cancel a
/// completed request); if one does, it is logged and nothing changes.
pub async fn void_cancelled(conn: &mut PgConnection, cancellation: &Cancellation) -> Result<(), FlowError> {
    let request_id = cancellation.request_id;
    let reason = domain::void_reason(&cancellation.reason);
    store::record_cancelled_request(conn, request_id, &reason, cancellation.at).await?;
    let invoices = store::invoices_of_request(conn, request_id).await?;
    if let Some(invoice) = invoices.first() {
        tracing::warn!(%request_id, invoice = %invoice.number,
            "cancelled request already invoiced (requests should have refused the cancellation): quotes kept");
        return Ok(());
    }
    let now = time::now();
    for quote in store::quotes_of_request_for_update(conn, request_id).await? {
        let number = quote.number.clone();
        match void(conn, quote, &reason, &cancellation.actor, now).await? {
            Some(voided) => tracing::info!(%request_id, quote = %voided.number, "quote voided"),
            None => tracing::debug!(%request_id, quote = %number, "quote already final"),
        }
    }
    Ok(())
}

/// Voids a locked quote and enqueues `QuoteVoided`; `None` (nothing done) when the quote is already final
/// (voided by an earlier delivery, refused or expired).
async fn void(
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
    outbox::enqueue(conn, &pb::QuoteVoided { quote: Some(quote_to_proto(row.clone())) }).await?;
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
            outbox::enqueue(&mut tx, &event).await?;
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
