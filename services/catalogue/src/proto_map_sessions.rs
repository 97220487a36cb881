//! Protobuf ↔ domain for sessions: the rows as the API and the events carry them, and the callers' requests read
//! into the domain's inputs (with field errors a client can show).

use id77_platform::{ServiceError, time};
use id77_proto::catalogue::v1 as pb;
use uuid::Uuid;

use crate::domain::session::{Participant, PlaceInput, RegistrationStatus, SessionInput, SessionStatus};
use crate::session_store::{FillRow, RatingRow, RegistrationRow, SessionRow};

fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

pub fn session_status_to_proto(status: &str) -> pb::SessionStatus {
    match SessionStatus::parse(status) {
        Some(SessionStatus::Scheduled) => pb::SessionStatus::Scheduled,
        Some(SessionStatus::Cancelled) => pb::SessionStatus::Cancelled,
        Some(SessionStatus::Held) => pb::SessionStatus::Held,
        None => pb::SessionStatus::Unspecified,
    }
}

pub fn registration_status_to_proto(status: &str) -> pb::RegistrationStatus {
    match RegistrationStatus::parse(status) {
        Some(RegistrationStatus::Confirmed) => pb::RegistrationStatus::Confirmed,
        Some(RegistrationStatus::Waitlisted) => pb::RegistrationStatus::Waitlisted,
        Some(RegistrationStatus::Cancelled) => pb::RegistrationStatus::Cancelled,
        None => pb::RegistrationStatus::Unspecified,
    }
}

/// A session; the online link only when `show_link` (the access rules decide).
pub fn session_to_proto(s: &SessionRow, show_link: bool) -> pb::Session {
    let confirmed = count(s.confirmed);
    let capacity = count(i64::from(s.capacity));
    pb::Session {
        id: s.id.to_string(),
        offer_id: s.offer_id.to_string(),
        offer_code: s.offer_code.clone(),
        offer_title: s.offer_title.clone(),
        provider_code: s.provider_code.clone(),
        provider_name: s.provider_name.clone(),
        starts_at: Some(time::to_proto(s.starts_at)),
        ends_at: Some(time::to_proto(s.ends_at)),
        place: Some(pb::SessionPlace {
            online: s.online,
            commune_insee: s.commune_insee.clone(),
            commune_name: s.commune_name.clone(),
            address: s.address.clone(),
            online_link: if show_link { s.online_link.clone() } else { String::new() },
        }),
        capacity,
        member_quota: count(i64::from(s.member_quota)),
        registration_deadline: Some(time::to_proto(s.registration_deadline)),
        status: session_status_to_proto(&s.status).into(),
        confirmed,
        waitlisted: count(s.waitlisted),
        seats_left: capacity.saturating_sub(confirmed),
        price_per_participant_cents: s.price_per_participant_cents,
        cancel_reason: s.cancel_reason.clone(),
        attended: count(s.attended),
        updated_at: Some(time::to_proto(s.updated_at)),
        details: s.details.clone(),
    }
}

pub fn participant_to_proto(r: &RegistrationRow) -> pb::Participant {
    pb::Participant {
        name: r.participant_name.clone(),
        function: r.participant_function.clone(),
        email: r.participant_email.clone(),
    }
}

/// A registration, with its session when given.
pub fn registration_to_proto(r: &RegistrationRow, session: Option<pb::Session>) -> pb::Registration {
    pb::Registration {
        id: r.id.to_string(),
        session_id: r.session_id.to_string(),
        member_id: r.member_id.to_string(),
        member_name: r.member_name.clone(),
        participant: Some(participant_to_proto(r)),
        status: registration_status_to_proto(&r.status).into(),
        waitlist_position: count(r.waitlist_position),
        attended: r.attended,
        registered_by: r.registered_by.to_string(),
        registered_at: Some(time::to_proto(r.registered_at)),
        updated_at: Some(time::to_proto(r.updated_at)),
        session,
        cancel_reason: r.cancel_reason.clone(),
    }
}

pub fn rating_to_proto(r: &RatingRow) -> pb::SessionRating {
    pb::SessionRating {
        session_id: r.session_id.to_string(),
        member_id: r.member_id.to_string(),
        score: count(i64::from(r.score)),
        comment: r.comment.clone(),
        rated_at: Some(time::to_proto(r.rated_at)),
    }
}

pub fn fill_to_proto(r: &FillRow) -> pb::FillRate {
    pb::FillRate {
        key: r.key.clone(),
        label: r.label.clone(),
        sessions: count(r.sessions),
        seats: count(r.seats),
        confirmed: count(r.confirmed),
        attended: count(r.attended),
    }
}

/// An optional instant of a request (`None` when absent); an out-of-range one is INVALID_ARGUMENT.
pub fn instant(
    field: &str,
    ts: Option<&id77_proto::prost_types::Timestamp>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ServiceError> {
    match ts {
        None => Ok(None),
        Some(ts) => {
            time::from_proto(ts).map(Some).ok_or_else(|| ServiceError::invalid(field, "is not a valid instant"))
        }
    }
}

/// A ScheduleSessionRequest as the domain validates it.
pub fn session_input(req: &pb::ScheduleSessionRequest) -> Result<SessionInput, ServiceError> {
    let place = req.place.clone().unwrap_or_default();
    Ok(SessionInput {
        starts_at: instant("starts_at", req.starts_at.as_ref())?,
        ends_at: instant("ends_at", req.ends_at.as_ref())?,
        place: PlaceInput {
            online: place.online,
            commune_insee: place.commune_insee,
            commune_name: place.commune_name,
            address: place.address,
            online_link: place.online_link,
        },
        capacity: req.capacity,
        member_quota: req.member_quota,
        registration_deadline: instant("registration_deadline", req.registration_deadline.as_ref())?,
        price_per_participant_cents: req.price_per_participant_cents,
        details: req.details.clone(),
    })
}

pub fn participants(input: &[pb::Participant]) -> Vec<Participant> {
    input
        .iter()
        .map(|p| Participant { name: p.name.clone(), function: p.function.clone(), email: p.email.clone() })
        .collect()
}

pub fn session_statuses(raw: &[i32]) -> Result<Vec<String>, ServiceError> {
    raw.iter()
        .map(|s| match pb::SessionStatus::try_from(*s) {
            Ok(pb::SessionStatus::Scheduled) => Ok(SessionStatus::Scheduled.as_str().to_owned()),
            Ok(pb::SessionStatus::Cancelled) => Ok(SessionStatus::Cancelled.as_str().to_owned()),
            Ok(pb::SessionStatus::Held) => Ok(SessionStatus::Held.as_str().to_owned()),
            _ => Err(ServiceError::invalid("statuses", "must be scheduled, cancelled or held")),
        })
        .collect()
}

pub fn registration_statuses(raw: &[i32]) -> Result<Vec<String>, ServiceError> {
    raw.iter()
        .map(|s| match pb::RegistrationStatus::try_from(*s) {
            Ok(pb::RegistrationStatus::Confirmed) => Ok(RegistrationStatus::Confirmed.as_str().to_owned()),
            Ok(pb::RegistrationStatus::Waitlisted) => Ok(RegistrationStatus::Waitlisted.as_str().to_owned()),
            Ok(pb::RegistrationStatus::Cancelled) => Ok(RegistrationStatus::Cancelled.as_str().to_owned()),
            _ => Err(ServiceError::invalid("statuses", "must be confirmed, waitlisted or cancelled")),
        })
        .collect()
}

/// A list of registration ids (attendance).
pub fn uuids(field: &str, raw: &[String]) -> Result<Vec<Uuid>, ServiceError> {
    raw.iter().map(|id| id77_platform::validate::uuid(field, id)).collect()
}
