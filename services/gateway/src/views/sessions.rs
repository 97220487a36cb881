//! Training sessions as JSON (issue 22): sessions with their seats, registrations of named participants with
//! their waiting-list place, ratings, calendar feeds and fill-rate statistics. Built from the catalogue's
//! `SessionService` messages; empty strings from the wire are `null`.

use id77_proto::catalogue::v1 as catalogue;
use serde::Serialize;
use utoipa::ToSchema;

use super::common::{UNSPECIFIED, non_empty, timestamp};

/// A session's state: `scheduled`, `cancelled` (with its reason), `held` (attendance recorded).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = SessionStatus)]
#[allow(dead_code)]
pub enum SessionStatusDoc {
    Scheduled,
    Cancelled,
    Held,
}

/// A registration's state: `confirmed` (a seat), `waitlisted` (see `waitlist_position`), `cancelled`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = RegistrationStatus)]
#[allow(dead_code)]
pub enum RegistrationStatusDoc {
    Confirmed,
    Waitlisted,
    Cancelled,
}

pub fn session_status(status: i32) -> &'static str {
    match catalogue::SessionStatus::try_from(status) {
        Ok(catalogue::SessionStatus::Scheduled) => "scheduled",
        Ok(catalogue::SessionStatus::Cancelled) => "cancelled",
        Ok(catalogue::SessionStatus::Held) => "held",
        _ => UNSPECIFIED,
    }
}

pub fn parse_session_status(value: &str) -> Option<catalogue::SessionStatus> {
    match value {
        "scheduled" => Some(catalogue::SessionStatus::Scheduled),
        "cancelled" => Some(catalogue::SessionStatus::Cancelled),
        "held" => Some(catalogue::SessionStatus::Held),
        _ => None,
    }
}

pub fn registration_status(status: i32) -> &'static str {
    match catalogue::RegistrationStatus::try_from(status) {
        Ok(catalogue::RegistrationStatus::Confirmed) => "confirmed",
        Ok(catalogue::RegistrationStatus::Waitlisted) => "waitlisted",
        Ok(catalogue::RegistrationStatus::Cancelled) => "cancelled",
        _ => UNSPECIFIED,
    }
}

pub fn parse_registration_status(value: &str) -> Option<catalogue::RegistrationStatus> {
    match value {
        "confirmed" => Some(catalogue::RegistrationStatus::Confirmed),
        "waitlisted" => Some(catalogue::RegistrationStatus::Waitlisted),
        "cancelled" => Some(catalogue::RegistrationStatus::Cancelled),
        _ => None,
    }
}

/// Where a session takes place: a commune of Seine-et-Marne and an address, or online.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SessionPlace)]
pub struct Place {
    pub online: bool,
    /// INSEE code of the commune (in person); `null` online.
    pub commune_insee: Option<String>,
    pub commune_name: Option<String>,
    pub address: Option<String>,
    /// Online sessions: given only to the participants' member, the provider and the coordinator (`null`
    /// otherwise).
    #[schema(format = "uri")]
    pub online_link: Option<String>,
}

impl From<catalogue::SessionPlace> for Place {
    fn from(p: catalogue::SessionPlace) -> Self {
        Self {
            online: p.online,
            commune_insee: non_empty(p.commune_insee),
            commune_name: non_empty(p.commune_name),
            address: non_empty(p.address),
            online_link: non_empty(p.online_link),
        }
    }
}

/// A dated session of an awareness or training offer, with its seats.
#[derive(Debug, Serialize, ToSchema)]
pub struct Session {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub offer_id: String,
    pub offer_code: String,
    pub offer_title: String,
    pub provider_code: String,
    pub provider_name: String,
    #[schema(format = DateTime)]
    pub starts_at: Option<String>,
    #[schema(format = DateTime)]
    pub ends_at: Option<String>,
    pub place: Place,
    pub capacity: u32,
    /// Most registrations (confirmed or waitlisted) one member may hold; 0: no quota.
    pub member_quota: u32,
    /// Registrations close at this instant (at the latest, the start).
    #[schema(format = DateTime)]
    pub registration_deadline: Option<String>,
    #[schema(value_type = SessionStatusDoc)]
    pub status: &'static str,
    pub confirmed: u32,
    pub waitlisted: u32,
    pub seats_left: u32,
    /// Per participant who attended, excluding VAT, in euro cents; 0: free.
    pub price_per_participant_cents: i64,
    /// Why it was cancelled; `null` unless cancelled.
    pub cancel_reason: Option<String>,
    /// Held sessions: participants who came.
    pub attended: u32,
    /// Programme, public, what to bring.
    pub details: String,
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
}

impl From<catalogue::Session> for Session {
    fn from(s: catalogue::Session) -> Self {
        Self {
            starts_at: timestamp(s.starts_at.as_ref()),
            ends_at: timestamp(s.ends_at.as_ref()),
            registration_deadline: timestamp(s.registration_deadline.as_ref()),
            updated_at: timestamp(s.updated_at.as_ref()),
            status: session_status(s.status),
            place: s.place.unwrap_or_default().into(),
            cancel_reason: non_empty(s.cancel_reason),
            id: s.id,
            offer_id: s.offer_id,
            offer_code: s.offer_code,
            offer_title: s.offer_title,
            provider_code: s.provider_code,
            provider_name: s.provider_name,
            capacity: s.capacity,
            member_quota: s.member_quota,
            confirmed: s.confirmed,
            waitlisted: s.waitlisted,
            seats_left: s.seats_left,
            price_per_participant_cents: s.price_per_participant_cents,
            attended: s.attended,
            details: s.details,
        }
    }
}

/// A named participant.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SessionParticipant)]
pub struct Participant {
    pub name: String,
    /// Their function in the collectivité (« maire adjoint », « secrétaire de mairie »…).
    pub function: String,
    #[schema(format = Email)]
    pub email: String,
}

impl From<catalogue::Participant> for Participant {
    fn from(p: catalogue::Participant) -> Self {
        Self { name: p.name, function: p.function, email: p.email }
    }
}

/// One participant's registration for a session.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registration {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub session_id: String,
    #[schema(format = "uuid")]
    pub member_id: String,
    pub member_name: String,
    pub participant: Participant,
    #[schema(value_type = RegistrationStatusDoc)]
    pub status: &'static str,
    /// 1-based place on the waiting list; `null` when not waitlisted.
    pub waitlist_position: Option<u32>,
    /// Held sessions: whether the participant came.
    pub attended: bool,
    /// The user who registered the participant.
    pub registered_by: String,
    #[schema(format = DateTime)]
    pub registered_at: Option<String>,
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
    /// Why it was cancelled; `null` unless cancelled.
    pub cancel_reason: Option<String>,
    /// The session, in lists across sessions (« Mes inscriptions »); `null` otherwise.
    #[schema(required = true)]
    pub session: Option<Session>,
}

impl From<catalogue::Registration> for Registration {
    fn from(r: catalogue::Registration) -> Self {
        Self {
            status: registration_status(r.status),
            waitlist_position: (r.waitlist_position > 0).then_some(r.waitlist_position),
            registered_at: timestamp(r.registered_at.as_ref()),
            updated_at: timestamp(r.updated_at.as_ref()),
            participant: r.participant.unwrap_or_default().into(),
            session: r.session.map(Session::from),
            cancel_reason: non_empty(r.cancel_reason),
            id: r.id,
            session_id: r.session_id,
            member_id: r.member_id,
            member_name: r.member_name,
            attended: r.attended,
            registered_by: r.registered_by,
        }
    }
}

/// The registrations one call made, in the order of the participants given.
#[derive(Debug, Serialize, ToSchema)]
pub struct Registrations {
    pub registrations: Vec<Registration>,
}

impl From<catalogue::RegisterResponse> for Registrations {
    fn from(r: catalogue::RegisterResponse) -> Self {
        Self { registrations: r.registrations.into_iter().map(Registration::from).collect() }
    }
}

/// A member's rating of a held session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionRating {
    #[schema(format = "uuid")]
    pub session_id: String,
    #[schema(format = "uuid")]
    pub member_id: String,
    /// 1 to 5.
    pub score: u32,
    pub comment: String,
    #[schema(format = DateTime)]
    pub rated_at: Option<String>,
}

impl From<catalogue::SessionRating> for SessionRating {
    fn from(r: catalogue::SessionRating) -> Self {
        Self {
            rated_at: timestamp(r.rated_at.as_ref()),
            session_id: r.session_id,
            member_id: r.member_id,
            score: r.score,
            comment: r.comment,
        }
    }
}

/// A personal calendar feed: its secret token (shown once; only its hash is kept) and the URL a calendar
/// application subscribes to.
#[derive(Debug, Serialize, ToSchema)]
pub struct CalendarFeed {
    pub token: String,
    /// Absolute: `<gateway>/v1/calendar-feeds/{token}`.
    #[schema(format = "uri")]
    pub url: String,
    #[schema(format = DateTime)]
    pub issued_at: Option<String>,
}

impl CalendarFeed {
    /// The feed as answered, its URL under `base` (scheme, host and optional path prefix, no trailing `/`).
    pub fn new(feed: catalogue::CalendarFeed, base: &str) -> Self {
        Self {
            url: format!("{base}/v1/calendar-feeds/{}", feed.token),
            issued_at: timestamp(feed.issued_at.as_ref()),
            token: feed.token,
        }
    }
}

/// Seats and attendance of a set of sessions: fill rate = `confirmed / seats`, attendance rate =
/// `attended / confirmed`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FillRate {
    /// An offer's code, an EPCI's SIREN, or empty for the whole.
    pub key: String,
    /// The offer's title or the EPCI's name.
    pub label: String,
    pub sessions: u32,
    pub seats: u32,
    pub confirmed: u32,
    pub attended: u32,
}

impl From<catalogue::FillRate> for FillRate {
    fn from(f: catalogue::FillRate) -> Self {
        Self {
            key: f.key,
            label: f.label,
            sessions: f.sessions,
            seats: f.seats,
            confirmed: f.confirmed,
            attended: f.attended,
        }
    }
}

/// Fill and attendance rates of the sessions in a period: overall, per offer and per EPCI of the members.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionStatistics {
    pub overall: FillRate,
    pub by_offer: Vec<FillRate>,
    pub by_epci: Vec<FillRate>,
}

impl From<catalogue::SessionStatisticsResponse> for SessionStatistics {
    fn from(s: catalogue::SessionStatisticsResponse) -> Self {
        Self {
            overall: s.overall.unwrap_or_default().into(),
            by_offer: s.by_offer.into_iter().map(FillRate::from).collect(),
            by_epci: s.by_epci.into_iter().map(FillRate::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use id77_proto::prost_types::Timestamp;
    use serde_json::json;

    use super::*;

    #[test]
    fn sessions_speak_words_rfc3339_and_null_for_empty() {
        let session = catalogue::Session {
            id: "s".into(),
            status: catalogue::SessionStatus::Held.into(),
            starts_at: Some(Timestamp { seconds: 1_796_551_200, nanos: 0 }),
            place: Some(catalogue::SessionPlace { online: true, online_link: String::new(), ..Default::default() }),
            ..Default::default()
        };
        let value = serde_json::to_value(Session::from(session)).unwrap_or_default();
        assert_eq!(value["status"], "held");
        assert_eq!(value["starts_at"], "2026-12-06T10:00:00Z");
        assert_eq!(value["ends_at"], json!(null));
        assert_eq!(value["cancel_reason"], json!(null));
        assert_eq!(
            value["place"],
            json!({"online": true, "commune_insee": null, "commune_name": null,
            "address": null, "online_link": null})
        );
        assert_eq!(session_status(99), UNSPECIFIED);
    }

    #[test]
    fn registrations_show_their_waiting_place_only_when_waitlisted() {
        let waitlisted = catalogue::Registration {
            status: catalogue::RegistrationStatus::Waitlisted.into(),
            waitlist_position: 2,
            session: Some(catalogue::Session::default()),
            ..Default::default()
        };
        let value = serde_json::to_value(Registration::from(waitlisted)).unwrap_or_default();
        assert_eq!((value["status"].clone(), value["waitlist_position"].clone()), (json!("waitlisted"), json!(2)));
        assert!(value["session"].is_object());
        let confirmed = catalogue::Registration { status: 1, ..Default::default() };
        let value = serde_json::to_value(Registration::from(confirmed)).unwrap_or_default();
        assert_eq!((value["status"].clone(), value["waitlist_position"].clone()), (json!("confirmed"), json!(null)));
        assert_eq!(value["session"], json!(null));
    }

    #[test]
    fn statuses_parse_back_from_their_words() {
        for word in ["scheduled", "cancelled", "held"] {
            assert_eq!(parse_session_status(word).map(|s| session_status(s.into())), Some(word));
        }
        for word in ["confirmed", "waitlisted", "cancelled"] {
            assert_eq!(parse_registration_status(word).map(|s| registration_status(s.into())), Some(word));
        }
        assert_eq!(parse_session_status("Scheduled"), None);
        assert_eq!(parse_registration_status(""), None);
    }

    #[test]
    fn a_feed_url_is_absolute_under_the_base() {
        let feed = catalogue::CalendarFeed { token: "abc_-1".into(), issued_at: None };
        let view = CalendarFeed::new(feed, "https://api.id77.fr");
        assert_eq!(view.url, "https://api.id77.fr/v1/calendar-feeds/abc_-1");
    }
}
