//! Exhibition loans: an exhibition's availability calendar, and holding, confirming and releasing copies.

use id77_platform::auth::Caller;
use id77_platform::{ServiceError, time};
use id77_proto::catalogue::v1 as pb;
use uuid::Uuid;

use super::service::CatalogueApi;
use crate::booking;
use crate::flow::bookings::{self as flow, Hold, Settlement};
use crate::proto_map::{self, booking_to_proto};
use crate::{access, store};

impl CatalogueApi {
    pub(super) async fn availability(&self, req: pb::GetAvailabilityRequest) -> Result<pb::Availability, ServiceError> {
        let (from, to) = booking::calendar_period(&req.from, &req.to).map_err(ServiceError::invalid_fields)?;
        let key = proto_map::offer_key("exhibition_id", &req.exhibition_id)?;
        let offer = flow::exhibition(&self.pool, &key).await?;
        let mut conn = self.pool.acquire().await?;
        let copies = store::copies(&mut conn, offer.id).await?;
        drop(conn);
        let bookings = store::bookings_between(&self.pool, offer.id, from, to).await?;
        let busy: Vec<_> = bookings.iter().map(|b| (b.copy_id, b.start_date, b.end_date)).collect();
        let copy_ids: Vec<Uuid> = copies.iter().map(|c| c.id).collect();
        let days = booking::available_per_day(from, to, &copy_ids, &busy);
        Ok(proto_map::availability_to_proto(offer.id, (from, to), &copies, &bookings, days))
    }

    pub(super) async fn hold(
        &self,
        caller: Option<&Caller>,
        req: pb::HoldBookingRequest,
    ) -> Result<pb::Booking, ServiceError> {
        let asked = proto_map::optional_uuid("member_id", &req.member_id)?;
        let member_id = access::hold_for(caller, asked).map_err(|d| d.into_error("member", &req.member_id))?;
        let request_id = proto_map::optional_uuid("request_id", &req.request_id)?;
        let (from, to) =
            booking::loan_period(&req.from, &req.to, time::now().date_naive()).map_err(ServiceError::invalid_fields)?;
        let exhibition = proto_map::offer_key("exhibition_id", &req.exhibition_id)?;
        let held = flow::hold(&self.pool, Hold { exhibition, member_id, request_id, from, to }).await?;
        Ok(booking_to_proto(&held))
    }

    /// Confirms (`confirm`) or releases a booking.
    pub(super) async fn settle(
        &self,
        caller: Option<&Caller>,
        req: pb::BookingActionRequest,
        confirm: bool,
    ) -> Result<pb::Booking, ServiceError> {
        let id = Uuid::parse_str(req.id.trim()).map_err(|_| ServiceError::invalid("id", "must be a UUID"))?;
        let reason = proto_map::action_reason(&req.reason)?;
        let settlement = match (confirm, reason) {
            (true, _) => Settlement::Confirm,
            (false, "") => Settlement::Release("released".to_owned()),
            (false, reason) => Settlement::Release(reason.to_owned()),
        };
        let row = flow::settle(&self.pool, caller, id, &req.id, settlement).await?;
        Ok(booking_to_proto(&row))
    }
}
