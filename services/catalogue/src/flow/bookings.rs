//! Exhibition loans: holding a copy for dates (the database's exclusion constraint decides which copy, so a copy
//! is never lent twice even when holds race), and confirming or releasing a booking, by a caller or by the
//! outcome of the request's referral; each confirmation and release is announced in the same transaction.

use chrono::NaiveDate;
use id77_platform::auth::{Caller, Denied};
use id77_platform::{ServiceError, outbox, time};
use id77_proto::catalogue::v1 as pb;
use id77_proto::vocabulary::Category;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::access;
use crate::booking::{self, BookingStatus, Step};
use crate::domain::{MAX_COPIES, OfferKey, OfferStatus};
use crate::error::CatalogueError;
use crate::proto_map::booking_to_proto;
use crate::store::{self, BookingRow, CopyRow, HoldError, OfferRow};

/// Most copies tried for one hold (an exhibition has at most [`MAX_COPIES`]).
const MAX_HOLD_ATTEMPTS: usize = 3 * MAX_COPIES as usize;

/// A published (or archived: its loans go on) exhibition.
pub async fn exhibition(pool: &PgPool, key: &OfferKey) -> Result<OfferRow, ServiceError> {
    let row = store::offer_by_key(pool, key.id, &key.code).await?;
    let exhibition =
        row.filter(|o| o.category == Category::ExhibitionLoan.as_str() && o.status != OfferStatus::Draft.as_str());
    exhibition.ok_or_else(|| CatalogueError::ExhibitionNotFound(key.written.clone()).into())
}

/// A member's hold on a copy of an exhibition, for inclusive dates, maybe for a request.
#[derive(Debug, Clone)]
pub struct Hold {
    pub exhibition: OfferKey,
    pub member_id: Uuid,
    pub request_id: Option<Uuid>,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// Holds the first copy free for the dates. A retried hold for the same request returns the booking it
/// already made.
pub async fn hold(pool: &PgPool, hold: Hold) -> Result<BookingRow, ServiceError> {
    let offer = exhibition(pool, &hold.exhibition).await?;
    if offer.status != OfferStatus::Published.as_str() {
        return Err(CatalogueError::ExhibitionArchived.into());
    }
    let mut conn = pool.acquire().await?;
    if let Some(request_id) = hold.request_id
        && let Some(b) = held_for(&mut conn, request_id, &offer, &hold).await?
    {
        return Ok(b);
    }
    let copies = store::copies(&mut conn, offer.id).await?;
    if let Some(b) = hold_a_copy(&mut conn, &copies, &offer, &hold).await? {
        return Ok(b);
    }
    Err(CatalogueError::NoCopyAvailable { code: offer.code, from: hold.from, to: hold.to }.into())
}

/// The booking the request already holds on this exhibition for these dates.
async fn held_for(
    conn: &mut PgConnection,
    request_id: Uuid,
    offer: &OfferRow,
    hold: &Hold,
) -> Result<Option<BookingRow>, ServiceError> {
    for id in store::bookings_of_request(conn, request_id).await? {
        if let Some(b) = store::booking(conn, id).await?
            && b.offer_id == offer.id
            && b.start_date == hold.from
            && b.end_date == hold.to
        {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// Each copy in turn, each insert on its own: the exclusion constraint refuses a copy already held or lent for
/// overlapping dates, even when many holds race. `None` when every copy is taken.
async fn hold_a_copy(
    conn: &mut PgConnection,
    copies: &[CopyRow],
    offer: &OfferRow,
    hold: &Hold,
) -> Result<Option<BookingRow>, ServiceError> {
    let id = Uuid::now_v7();
    let (from, to) = (hold.from, hold.to);
    let mut attempts = 0;
    let mut rest = copies.iter();
    let mut copy = rest.next();
    while let Some(c) = copy {
        attempts += 1;
        if attempts > MAX_HOLD_ATTEMPTS {
            break;
        }
        match store::insert_hold(conn, id, c.id, offer.id, hold.member_id, hold.request_id, from, to).await {
            Ok(()) => {
                let b = store::booking(conn, id).await?.ok_or_else(|| ServiceError::internal("holding", id))?;
                tracing::info!(booking = %id, exhibition = %offer.code, copy = c.number, %from, %to, "copy held");
                return Ok(Some(b));
            }
            Err(HoldError::Taken) => copy = rest.next(),
            Err(HoldError::Contended) => tracing::debug!(copy = c.number, "hold contended; trying the copy again"),
            Err(HoldError::Db(e)) => return Err(e.into()),
        }
    }
    Ok(None)
}

fn booking_status(b: &BookingRow) -> Result<BookingStatus, ServiceError> {
    BookingStatus::parse(&b.status).ok_or_else(|| ServiceError::internal("reading a booking", &b.status))
}

/// Confirms a held booking (locked by the caller) and announces it; a confirmed one is returned as is.
async fn confirm(conn: &mut PgConnection, b: &BookingRow) -> Result<BookingRow, ServiceError> {
    match booking::confirm(booking_status(b)?) {
        Ok(Step::AlreadyDone) => Ok(b.clone()),
        Ok(Step::To(next)) => {
            store::set_booking_status(conn, b.id, next.as_str(), "").await?;
            let row = store::booking(conn, b.id).await?.ok_or_else(|| ServiceError::internal("confirming", b.id))?;
            let event = pb::BookingConfirmed {
                booking: Some(booking_to_proto(&row)),
                occurred_at: Some(time::to_proto(time::now())),
            };
            outbox::enqueue(conn, &event).await?;
            tracing::info!(booking = %b.id, "booking confirmed");
            Ok(row)
        }
        Err(status) => Err(CatalogueError::BookingNotConfirmable(status.as_str()).into()),
    }
}

/// Releases a live booking (locked by the caller) and announces it; a released one is returned as is.
async fn release(conn: &mut PgConnection, b: &BookingRow, reason: &str) -> Result<BookingRow, ServiceError> {
    match booking::release(booking_status(b)?) {
        Step::AlreadyDone => Ok(b.clone()),
        Step::To(next) => {
            store::set_booking_status(conn, b.id, next.as_str(), reason).await?;
            let row = store::booking(conn, b.id).await?.ok_or_else(|| ServiceError::internal("releasing", b.id))?;
            let event = pb::BookingReleased {
                booking: Some(booking_to_proto(&row)),
                reason: reason.to_owned(),
                occurred_at: Some(time::to_proto(time::now())),
            };
            outbox::enqueue(conn, &event).await?;
            tracing::info!(booking = %b.id, reason, "booking released");
            Ok(row)
        }
    }
}

/// What a caller does to a booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Confirm,
    /// With the reason announced.
    Release(String),
}

/// Confirms or releases a booking, with the caller's rights checked on the locked booking, in one transaction.
/// `written_id` is the id as the caller wrote it (for the messages that name it).
pub async fn settle(
    pool: &PgPool,
    caller: Option<&Caller>,
    id: Uuid,
    written_id: &str,
    settlement: Settlement,
) -> Result<BookingRow, ServiceError> {
    let not_found = || ServiceError::from(CatalogueError::BookingNotFound(id));
    let mut tx = pool.begin().await?;
    if !store::lock_booking(&mut tx, id).await? {
        return Err(not_found());
    }
    let b = store::booking(&mut tx, id).await?.ok_or_else(not_found)?;
    let allowed = match settlement {
        Settlement::Confirm => access::confirm(caller, &b.provider_code),
        Settlement::Release(_) => access::release(caller, &b.provider_code, b.member_id),
    };
    allowed.map_err(|d| match d {
        Denied::NotFound => not_found(),
        d => d.into_error("booking", written_id),
    })?;
    let row = match &settlement {
        Settlement::Confirm => confirm(&mut tx, &b).await?,
        Settlement::Release(reason) => release(&mut tx, &b, reason).await?,
    };
    tx.commit().await?;
    Ok(row)
}

/// What the outcome of a request's referral does to the copies held for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralOutcome {
    /// The provider accepted: the loans are confirmed.
    Accepted,
    /// Declined, expired (and not re-routed) or withdrawn: the copies are released, for this reason.
    Ended(&'static str),
}

/// Confirms or releases every live booking of the request, in the caller's transaction.
pub async fn follow_referral(
    conn: &mut PgConnection,
    request_id: Uuid,
    outcome: ReferralOutcome,
) -> Result<(), ServiceError> {
    let bookings = store::bookings_of_request(conn, request_id).await?;
    follow_bookings(conn, &bookings, outcome).await
}

/// [`follow_referral`] for its request's live `bookings`, locked by the caller.
pub async fn follow_bookings(
    conn: &mut PgConnection,
    bookings: &[Uuid],
    outcome: ReferralOutcome,
) -> Result<(), ServiceError> {
    for &id in bookings {
        let Some(b) = store::booking(conn, id).await? else { continue };
        match outcome {
            ReferralOutcome::Accepted => confirm(conn, &b).await?,
            ReferralOutcome::Ended(reason) => release(conn, &b, reason).await?,
        };
    }
    Ok(())
}
