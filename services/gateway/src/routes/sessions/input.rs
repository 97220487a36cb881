//! The bodies and query parameters of the session routes, as clients send them, and the checks the handlers
//! make before forwarding: RFC 3339 instants, status lists, UUID paths, bounded texts without control characters.
//! What ties fields together (the end after the start, a place in person or online, the deadline) is the
//! catalogue's to decide and is stated in the operations' descriptions.

use chrono::{DateTime, Utc};
use id77_proto::catalogue::v1 as pb;
use id77_proto::prost_types::Timestamp;
use serde::Deserialize;

use crate::extract::Checks;
use crate::problem::Problem;
use crate::views;

/// Longest instant accepted (`2026-12-07T09:30:00.123456789+01:00` is 35).
pub const MAX_INSTANT_CHARS: usize = 40;
/// Longest address of a session (the catalogue's bound).
pub const MAX_ADDRESS_CHARS: usize = 200;
/// Longest online link.
pub const MAX_LINK_CHARS: usize = 500;
/// Longest programme text of a session.
pub const MAX_DETAILS_CHARS: usize = 4000;
/// Longest reason of a cancellation (the catalogue's bound).
pub const MAX_REASON_CHARS: usize = 300;
/// Longest comment of a rating.
pub const MAX_COMMENT_CHARS: usize = 1000;
/// Longest `status` filter (`confirmed,waitlisted,cancelled` is 30).
pub const MAX_STATUS_CHARS: usize = 40;
/// Longest participant's name or function.
pub const MAX_NAME_CHARS: usize = 120;
/// Longest e-mail address.
pub const MAX_EMAIL_CHARS: usize = 254;
/// Most participants in one registration call.
pub const MAX_PARTICIPANTS: usize = 20;
/// Most registrations in one attendance record.
pub const MAX_ATTENDED: usize = 1000;
/// Most seats of a session.
pub const MAX_CAPACITY: u32 = 1000;
/// Highest price per participant, in cents (100 000 €).
pub const MAX_PRICE_CENTS: i64 = 10_000_000;

/// `GET /v1/offers/{id}/sessions`' query parameters (unknown ones are refused with 400).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OfferSessionParams {
    /// One status or several separated by commas (`scheduled,held`). Absent: upcoming scheduled sessions; other
    /// statuses are shown to the offer's provider and the coordinator only.
    #[param(max_length = 40, pattern = r"^(scheduled|cancelled|held)(,(scheduled|cancelled|held))*$")]
    pub(crate) status: Option<String>,
    /// Sessions starting at or after this instant (RFC 3339 with its offset); default: now for scheduled ones.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40, pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$")]
    pub(crate) from: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    pub(crate) cursor: Option<String>,
}

/// `GET /v1/sessions`' query parameters (unknown ones are refused with 400).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SessionParams {
    /// Only this offer's sessions (its id or code).
    #[param(
        max_length = 64,
        pattern = r"^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[a-z0-9-]{1,64})$"
    )]
    pub(crate) offer: Option<String>,
    /// One status or several separated by commas (`scheduled,held`). Absent: upcoming scheduled sessions; other
    /// statuses are shown to the provider (its own sessions) and the coordinator only.
    #[param(max_length = 40, pattern = r"^(scheduled|cancelled|held)(,(scheduled|cancelled|held))*$")]
    pub(crate) status: Option<String>,
    /// Sessions starting at or after this instant (RFC 3339 with its offset); default: now for scheduled ones.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40, pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$")]
    pub(crate) from: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    pub(crate) cursor: Option<String>,
}

/// The query parameters of the registration lists (unknown ones are refused with 400).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RegistrationParams {
    /// One status or several separated by commas (`confirmed,waitlisted`). Absent: every status.
    #[param(max_length = 40, pattern = r"^(confirmed|waitlisted|cancelled)(,(confirmed|waitlisted|cancelled))*$")]
    pub(crate) status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    pub(crate) cursor: Option<String>,
}

/// `GET /v1/session-statistics`' period (unknown parameters are refused with 400).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatisticsParams {
    /// Sessions starting at or after this instant (RFC 3339 with its offset); absent: from the first.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40, pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$")]
    pub(crate) from: Option<String>,
    /// Sessions starting before this instant (RFC 3339 with its offset); not before `from`; absent: no end.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40, pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$")]
    pub(crate) to: Option<String>,
}

/// Where the session takes place: `online: false` needs `commune_insee` (a commune of Seine-et-Marne, 77xxx)
/// and `address`; `online: true` needs `online_link` (https), given only to registered participants.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = SessionPlaceInput)]
pub struct PlaceBody {
    #[schema(value_type = bool, required = true)]
    pub(crate) online: Option<bool>,
    /// INSEE code of a commune of Seine-et-Marne (in person).
    #[schema(max_length = 5, pattern = r"^(77[0-9]{3})?$")]
    pub(crate) commune_insee: Option<String>,
    /// In person: street address; no control characters.
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub(crate) address: Option<String>,
    /// Online: an https link, without spaces.
    #[schema(max_length = 500, pattern = r"^(https://[^\s\x00-\x1F\x7F-\x9F]+)?$")]
    pub(crate) online_link: Option<String>,
}

/// A new session. Instants are RFC 3339 with their offset; the start is in the future, the end after it, the
/// registration deadline (default: the start) not after the start.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ScheduleSessionInput)]
pub struct ScheduleBody {
    #[schema(value_type = String, format = DateTime, required = true, max_length = 40, example = "2027-03-16T09:30:00+01:00")]
    pub(crate) starts_at: Option<String>,
    #[schema(value_type = String, format = DateTime, required = true, max_length = 40, example = "2027-03-16T12:30:00+01:00")]
    pub(crate) ends_at: Option<String>,
    #[serde(default, deserialize_with = "crate::extract::object")]
    #[schema(value_type = PlaceBody, required = true)]
    pub(crate) place: Option<PlaceBody>,
    /// Seats, 1 to 1000.
    #[serde(default, deserialize_with = "crate::extract::integral")]
    #[schema(value_type = u32, required = true, minimum = 1, maximum = 1000)]
    pub(crate) capacity: Option<u32>,
    /// Most registrations (confirmed or waitlisted) one member may hold; 0 or absent: no quota.
    #[serde(default, deserialize_with = "crate::extract::integral")]
    #[schema(value_type = Option<u32>, minimum = 0, maximum = 1000)]
    pub(crate) member_quota: Option<u32>,
    /// Registrations close at this instant; default: the start.
    #[schema(value_type = Option<String>, format = DateTime, max_length = 40)]
    pub(crate) registration_deadline: Option<String>,
    /// Per participant who attended, excluding VAT, in euro cents (invoiced after attendance); 0 or absent: free.
    #[serde(default, deserialize_with = "crate::extract::integral")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 10_000_000)]
    pub(crate) price_per_participant_cents: Option<i64>,
    /// Programme, public, what to bring; no control characters but tabs and line breaks.
    #[schema(max_length = 4000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub(crate) details: Option<String>,
}

/// Why the session is cancelled (told to every participant).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = CancelSessionInput)]
pub struct CancelSessionBody {
    /// Not blank; no control characters but tabs and line breaks.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 300, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub(crate) reason: Option<String>,
}

/// Why a registration is cancelled (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = CancelRegistrationInput)]
pub struct CancelRegistrationBody {
    /// No control characters but tabs and line breaks.
    #[schema(max_length = 300, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub(crate) reason: Option<String>,
}

/// A named participant.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ParticipantInput)]
pub struct ParticipantBody {
    /// Not blank; no control characters.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 120, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$", example = "Claire Martin")]
    pub(crate) name: Option<String>,
    /// Their function in the collectivité; no control characters.
    #[schema(max_length = 120, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$", example = "secrétaire de mairie")]
    pub(crate) function: Option<String>,
    /// Where the confirmation, the reminder and the attestation go.
    #[schema(value_type = String, required = true, max_length = 254, pattern = r"^[^@\s\x00-\x1F\x7F-\x9F]+@[^@\s\x00-\x1F\x7F-\x9F]+\.[^@\s\x00-\x1F\x7F-\x9F]+$", example = "c.martin@mairie-melun.fr")]
    pub(crate) email: Option<String>,
}

/// Participants to register, each confirmed while seats are left, else waitlisted in arrival order.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = RegisterInput)]
pub struct RegisterBody {
    /// 1 to 20 participants.
    #[schema(value_type = Vec<ParticipantBody>, required = true, min_items = 1, max_items = 20)]
    pub(crate) participants: Option<Vec<ParticipantBody>>,
    /// The coordinator only: the member registered (a member's users always register for their own member).
    #[schema(value_type = Option<String>, format = "uuid", max_length = 36)]
    pub(crate) member_id: Option<String>,
}

/// Who came: every confirmed registration not listed did not.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = AttendanceInput)]
pub struct AttendanceBody {
    #[schema(value_type = Vec<String>, required = true, max_items = 1000, format = "uuid")]
    pub(crate) attended_registration_ids: Option<Vec<String>>,
}

/// A member's rating of a held session it attended.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = RatingInput)]
pub struct RatingBody {
    #[serde(default, deserialize_with = "crate::extract::integral")]
    #[schema(value_type = u32, required = true, minimum = 1, maximum = 5)]
    pub(crate) score: Option<u32>,
    /// No control characters but tabs and line breaks.
    #[schema(max_length = 1000, pattern = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$")]
    pub(crate) comment: Option<String>,
}

// ---- checks -------------------------------------------------------------------------------------------------

/// A path id that must be a UUID (sessions, registrations): 400 otherwise.
pub fn uuid_path(field: &str, value: &str) -> Result<String, Problem> {
    let mut checks = Checks::new();
    let id = checks.uuid_filter(field, Some(value.to_owned()));
    checks.finish()?;
    Ok(id)
}

/// An RFC 3339 instant with its offset: absent is `None`; empty, a date alone or a bad value is refused.
pub fn instant(checks: &mut Checks, field: &str, raw: Option<String>) -> Option<DateTime<Utc>> {
    let raw = raw?;
    let raw = raw.trim();
    if raw.is_empty() {
        checks.fail(field, "must not be empty (leave it out)");
        return None;
    }
    if raw.chars().count() > MAX_INSTANT_CHARS {
        checks.fail(field, format!("must be at most {MAX_INSTANT_CHARS} characters"));
        return None;
    }
    match DateTime::parse_from_rfc3339(raw) {
        Ok(at) => Some(at.with_timezone(&Utc)),
        Err(_) => {
            checks.fail(field, "must be an RFC 3339 time with its offset (e.g. 2027-03-16T09:30:00+01:00)");
            None
        }
    }
}

/// A required instant.
pub fn required_instant(checks: &mut Checks, field: &str, raw: Option<String>) -> Option<DateTime<Utc>> {
    if raw.is_none() {
        checks.fail(field, "is required");
    }
    instant(checks, field, raw)
}

pub fn proto_time(at: Option<DateTime<Utc>>) -> Option<Timestamp> {
    at.map(id77_platform::time::to_proto)
}

/// A comma-separated list of words of one vocabulary (`scheduled,held`): absent is "any"; empty or an unknown
/// word is refused. Duplicates are kept once.
pub fn statuses<T: Into<i32> + Copy>(
    checks: &mut Checks,
    raw: Option<String>,
    allowed: &str,
    parse: fn(&str) -> Option<T>,
) -> Vec<i32> {
    let Some(raw) = raw else { return Vec::new() };
    if raw.trim().is_empty() {
        checks.fail("status", "must not be empty (leave the parameter out)");
        return Vec::new();
    }
    if raw.chars().count() > MAX_STATUS_CHARS {
        checks.fail("status", format!("must be at most {MAX_STATUS_CHARS} characters"));
        return Vec::new();
    }
    let mut out: Vec<i32> = Vec::new();
    for word in raw.split(',').map(str::trim) {
        match parse(word) {
            Some(status) if !out.contains(&status.into()) => out.push(status.into()),
            Some(_) => {}
            None => {
                checks.fail("status", format!("must be one or more of {allowed}, separated by commas"));
                return Vec::new();
            }
        }
    }
    out
}

pub fn session_statuses(checks: &mut Checks, raw: Option<String>) -> Vec<i32> {
    statuses(checks, raw, "scheduled, cancelled, held", views::parse_session_status)
}

pub fn registration_statuses(checks: &mut Checks, raw: Option<String>) -> Vec<i32> {
    statuses(checks, raw, "confirmed, waitlisted, cancelled", views::parse_registration_status)
}

/// A text of at most `max` characters without control characters (but tabs and line breaks when `lines`).
pub fn text(checks: &mut Checks, field: &str, value: Option<String>, max: usize, lines: bool) -> String {
    let value = checks.optional(field, value, max);
    let bad = |c: char| c.is_control() && !(lines && matches!(c, '\t' | '\n' | '\r'));
    if value.chars().any(bad) {
        let allowed = if lines { "tabs and line breaks" } else { "none" };
        checks.fail(field, format!("must not contain control characters (allowed: {allowed})"));
    }
    value
}

/// A text that must not be blank.
pub fn required_text(checks: &mut Checks, field: &str, value: Option<String>, max: usize, lines: bool) -> String {
    if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
        checks.fail(field, "is required");
        return String::new();
    }
    text(checks, field, value, max, lines)
}

/// The place of a new session: single-value rules here, the in-person/online rule at the catalogue.
pub fn place(checks: &mut Checks, body: Option<PlaceBody>) -> pb::SessionPlace {
    let Some(body) = body else {
        checks.fail("place", "is required");
        return pb::SessionPlace::default();
    };
    let Some(online) = body.online else {
        checks.fail("place.online", "is required");
        return pb::SessionPlace::default();
    };
    let commune_insee = text(checks, "place.commune_insee", body.commune_insee, 5, false).trim().to_owned();
    let of_seine_et_marne =
        |code: &str| code.len() == 5 && code.starts_with("77") && code.bytes().all(|b| b.is_ascii_digit());
    if !commune_insee.is_empty() && !of_seine_et_marne(&commune_insee) {
        checks.fail("place.commune_insee", "must be the INSEE code of a commune of Seine-et-Marne (77xxx)");
    }
    let online_link = text(checks, "place.online_link", body.online_link, MAX_LINK_CHARS, false).trim().to_owned();
    if !online_link.is_empty() && (!online_link.starts_with("https://") || online_link.contains(char::is_whitespace)) {
        checks.fail("place.online_link", "must be an https link without spaces");
    }
    pb::SessionPlace {
        online,
        commune_insee,
        commune_name: String::new(),
        address: text(checks, "place.address", body.address, MAX_ADDRESS_CHARS, false).trim().to_owned(),
        online_link,
    }
}

/// The participants of a registration: 1 to 20, each named, with a plausible e-mail address (the catalogue
/// checks it fully).
pub fn participants(checks: &mut Checks, body: Option<Vec<ParticipantBody>>) -> Vec<pb::Participant> {
    let items = body.unwrap_or_default();
    if items.is_empty() || items.len() > MAX_PARTICIPANTS {
        checks.fail("participants", format!("must list 1 to {MAX_PARTICIPANTS} participants"));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, p) in items.into_iter().enumerate() {
        let name = required_text(checks, &format!("participants[{i}].name"), p.name, MAX_NAME_CHARS, false);
        let function = text(checks, &format!("participants[{i}].function"), p.function, MAX_NAME_CHARS, false);
        let field = format!("participants[{i}].email");
        let email = required_text(checks, &field, p.email, MAX_EMAIL_CHARS, false).trim().to_owned();
        if !email.is_empty() && !plausible_email(&email) {
            checks.fail(&field, "must be an e-mail address");
        }
        out.push(pb::Participant { name: name.trim().to_owned(), function: function.trim().to_owned(), email });
    }
    out
}

/// One `@` between a local part and a dotted domain, no spaces: the document's pattern.
fn plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    let clean = |s: &str| !s.is_empty() && !s.contains('@') && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    // A dot with something on each side, anywhere in the domain (as the pattern's greedy `x+\.x+` reads it).
    clean(local) && clean(domain) && domain.char_indices().any(|(i, c)| c == '.' && i > 0 && i + 1 < domain.len())
}

/// Attended registration ids: each a UUID, at most [`MAX_ATTENDED`].
pub fn registration_ids(checks: &mut Checks, ids: Option<Vec<String>>) -> Vec<String> {
    let Some(ids) = ids else {
        checks.fail("attended_registration_ids", "is required (an empty list: nobody came)");
        return Vec::new();
    };
    if ids.len() > MAX_ATTENDED {
        checks.fail("attended_registration_ids", format!("at most {MAX_ATTENDED} ids"));
        return Vec::new();
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match uuid::Uuid::parse_str(id.trim()) {
            Ok(id) => out.push(id.to_string()),
            Err(_) => {
                checks.fail("attended_registration_ids", "each must be a UUID");
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(checks: Checks) -> Vec<String> {
        checks.finish().err().map(|p| p.errors.into_iter().map(|e| e.field).collect()).unwrap_or_default()
    }

    #[test]
    fn instants_are_rfc3339_with_an_offset_only() {
        let mut checks = Checks::new();
        let at = instant(&mut checks, "from", Some(" 2027-03-16T09:30:00+01:00 ".into()));
        assert_eq!(at.map(|t| t.to_rfc3339()), Some("2027-03-16T08:30:00+00:00".into()));
        assert_eq!(instant(&mut checks, "from", None), None);
        assert!(checks.finish().is_ok());
        for bad in ["", "2027-03-16", "2027-03-16T09:30:00", "demain", &"9".repeat(41)] {
            let mut checks = Checks::new();
            assert_eq!(instant(&mut checks, "from", Some(bad.into())), None);
            assert_eq!(fields(checks), ["from"], "{bad}");
        }
        let mut checks = Checks::new();
        required_instant(&mut checks, "starts_at", None);
        assert_eq!(fields(checks), ["starts_at"]);
    }

    #[test]
    fn status_lists_are_comma_separated_words() {
        let mut checks = Checks::new();
        assert_eq!(session_statuses(&mut checks, None), Vec::<i32>::new());
        assert_eq!(session_statuses(&mut checks, Some("scheduled, held,held".into())), vec![1, 3]);
        assert_eq!(registration_statuses(&mut checks, Some("waitlisted".into())), vec![2]);
        assert!(checks.finish().is_ok());
        for bad in ["", "scheduled,", "confirmed", "Scheduled", "scheduled,held,held,held,held,held,held,held"] {
            let mut checks = Checks::new();
            session_statuses(&mut checks, Some(bad.into()));
            assert_eq!(fields(checks), ["status"], "{bad}");
        }
    }

    #[test]
    fn texts_refuse_control_characters_but_line_breaks_where_allowed() {
        let mut checks = Checks::new();
        assert_eq!(text(&mut checks, "details", Some("a\n\tb".into()), 10, true), "a\n\tb");
        assert!(checks.finish().is_ok());
        let mut checks = Checks::new();
        text(&mut checks, "address", Some("a\nb".into()), 10, false);
        text(&mut checks, "details", Some("a\u{7}".into()), 10, true);
        required_text(&mut checks, "reason", Some("  ".into()), 10, true);
        text(&mut checks, "comment", Some("x".repeat(11)), 10, true);
        assert_eq!(fields(checks), ["address", "details", "reason", "comment"]);
    }

    #[test]
    fn places_check_commune_and_link_formats() {
        let body = |online, insee: &str, link: &str| PlaceBody {
            online: Some(online),
            commune_insee: Some(insee.into()),
            address: Some(" 12 rue des Saints-Pères ".into()),
            online_link: Some(link.into()),
        };
        let mut checks = Checks::new();
        let p = place(&mut checks, Some(body(false, "77288", "")));
        assert_eq!(
            (p.online, p.commune_insee.as_str(), p.address.as_str()),
            (false, "77288", "12 rue des Saints-Pères")
        );
        let p = place(&mut checks, Some(body(true, "", "https://visio.example.fr/abc")));
        assert_eq!(p.online_link, "https://visio.example.fr/abc");
        assert!(checks.finish().is_ok());
        let mut checks = Checks::new();
        place(&mut checks, Some(body(false, "75056", "")));
        place(&mut checks, Some(body(true, "", "http://x.fr")));
        place(&mut checks, None);
        place(&mut checks, Some(PlaceBody { online: None, commune_insee: None, address: None, online_link: None }));
        assert_eq!(fields(checks), ["place.commune_insee", "place.online_link", "place", "place.online"]);
    }

    #[test]
    fn participants_are_named_with_an_email_and_bounded_in_number() {
        let one = |name: &str, email: &str| ParticipantBody {
            name: Some(name.into()),
            function: Some("maire adjoint".into()),
            email: Some(email.into()),
        };
        let mut checks = Checks::new();
        let out = participants(&mut checks, Some(vec![one(" Claire Martin ", "c.martin@melun.fr")]));
        assert_eq!((out[0].name.as_str(), out[0].email.as_str()), ("Claire Martin", "c.martin@melun.fr"));
        assert!(checks.finish().is_ok());
        let mut checks = Checks::new();
        participants(&mut checks, Some(vec![one("", "c@melun.fr"), one("B", "pas-une-adresse"), one("C", "a@b")]));
        assert!(plausible_email("x@.a.b") && !plausible_email("x@ab.") && !plausible_email("x@b@c.fr"));
        assert_eq!(fields(checks), ["participants[0].name", "participants[1].email", "participants[2].email"]);
        let mut checks = Checks::new();
        participants(&mut checks, Some(Vec::new()));
        participants(&mut checks, Some((0..21).map(|_| one("A", "a@b.fr")).collect()));
        assert_eq!(fields(checks), ["participants", "participants"]);
    }

    #[test]
    fn attended_ids_are_uuids() {
        let id = uuid::Uuid::now_v7();
        let mut checks = Checks::new();
        assert_eq!(registration_ids(&mut checks, Some(vec![id.to_string().to_uppercase()])), vec![id.to_string()]);
        assert_eq!(registration_ids(&mut checks, Some(Vec::new())), Vec::<String>::new());
        assert!(checks.finish().is_ok());
        let mut checks = Checks::new();
        registration_ids(&mut checks, Some(vec!["x".into()]));
        registration_ids(&mut checks, None);
        assert_eq!(fields(checks), ["attended_registration_ids", "attended_registration_ids"]);
        assert!(uuid_path("id", "nope").is_err());
        assert_eq!(uuid_path("id", &id.to_string()).ok(), Some(id.to_string()));
    }
}
