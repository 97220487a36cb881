//! The words and times of training sessions: a session's date as Paris reads it (« mardi 12 janvier 2027, 9 h 30 –
//! 12 h 30 »), its place, its seats, its and its registrations' statuses; and the other way, a day and a time typed
//! in Paris (jj/mm/aaaa, hh:mm) as the instant the API takes.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use serde_json::Value;

use crate::fr;
use crate::pages::common::s;

const WEEKDAYS: [&str; 7] = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"];

/// An RFC 3339 instant of the API (`None` when absent or unreadable).
pub fn instant(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.trim()).ok().map(|at| at.with_timezone(&Utc))
}

/// `9 h 30` (Paris wall-clock time of `local`), with no-break spaces: a time never wraps inside.
fn clock(local: NaiveDateTime) -> String {
    format!("{}\u{a0}h\u{a0}{:02}", local.hour(), local.minute())
}

/// `mardi 12 janvier 2027` (a day in Paris).
pub fn weekday_date(day: NaiveDate) -> String {
    let weekday = WEEKDAYS.get(day.weekday().num_days_from_monday() as usize).copied().unwrap_or("");
    format!("{weekday} {}", fr::long_date(day))
}

/// When a session takes place, in Paris time: `mardi 12 janvier 2027, 9 h 30 – 12 h 30`, or over two days
/// `mardi 12 janvier 2027, 9 h 30 – mercredi 13 janvier 2027, 12 h 30`; « Date non précisée » when unreadable.
pub fn when(starts_at: &str, ends_at: &str) -> String {
    let Some(start) = instant(starts_at).map(fr::paris) else { return "Date non précisée".to_owned() };
    let head = format!("{}, {}", weekday_date(start.date()), clock(start));
    match instant(ends_at).map(fr::paris) {
        Some(end) if end.date() == start.date() => format!("{head} – {}", clock(end)),
        Some(end) => format!("{head} – {}, {}", weekday_date(end.date()), clock(end)),
        None => head,
    }
}

/// Where a session takes place: « En ligne », or the commune's name and the address.
pub fn place(session: &Value) -> String {
    let place = &session["place"];
    if place["online"].as_bool().unwrap_or(false) {
        return "En ligne".to_owned();
    }
    let commune = s(place, "commune_name").trim();
    let address = s(place, "address").trim();
    match (commune, address) {
        ("", "") => "Lieu non précisé".to_owned(),
        ("", address) => address.to_owned(),
        (commune, "") => commune.to_owned(),
        (commune, address) => format!("{address}, {commune}"),
    }
}

/// A count field of a session (0 when absent).
pub fn number(session: &Value, key: &str) -> u64 {
    session[key].as_u64().unwrap_or(0)
}

/// Whether registrations are closed: past the deadline (or the start when it has none).
pub fn registration_closed(session: &Value, now: DateTime<Utc>) -> bool {
    let deadline = instant(s(session, "registration_deadline")).or_else(|| instant(s(session, "starts_at")));
    deadline.is_some_and(|deadline| deadline <= now)
}

/// Whether the session has started (attendance can be recorded from then on).
pub fn started(session: &Value, now: DateTime<Utc>) -> bool {
    instant(s(session, "starts_at")).is_some_and(|start| start <= now)
}

/// The seats of a session in words: « 3 places restantes », « 1 place restante », « Complet — liste d'attente »;
/// a cancelled or past session says so instead.
pub fn seats(session: &Value, now: DateTime<Utc>) -> String {
    match s(session, "status") {
        "cancelled" => return "Session annulée".to_owned(),
        "held" => return "Session passée".to_owned(),
        _ => {}
    }
    if registration_closed(session, now) {
        return "Inscriptions closes".to_owned();
    }
    match number(session, "seats_left") {
        0 => "Complet — liste d'attente".to_owned(),
        1 => "1 place restante".to_owned(),
        n => format!("{} places restantes", fr::count(n)),
    }
}

/// The fill of a session: `7 / 10`.
pub fn fill(session: &Value) -> String {
    format!("{} / {}", fr::count(number(session, "confirmed")), fr::count(number(session, "capacity")))
}

/// A session's status in French.
pub fn session_status(status: &str) -> &str {
    match status {
        "scheduled" => "Programmée",
        "cancelled" => "Annulée",
        "held" => "Tenue (présences saisies)",
        _ => "Statut inconnu",
    }
}

/// A registration's status in French, with the place on the waiting list and, once the session is held, whether
/// the participant came.
pub fn registration_status(registration: &Value) -> String {
    let held = s(&registration["session"], "status") == "held";
    match s(registration, "status") {
        "confirmed" if held && registration["attended"].as_bool().unwrap_or(false) => "Présent".to_owned(),
        "confirmed" if held => "Absent".to_owned(),
        "confirmed" => "Confirmée".to_owned(),
        "waitlisted" => match registration["waitlist_position"].as_u64() {
            Some(n) if n > 0 => format!("Liste d'attente (position {})", fr::count(n)),
            _ => "Liste d'attente".to_owned(),
        },
        "cancelled" => "Annulée".to_owned(),
        _ => "Statut inconnu".to_owned(),
    }
}

/// A status as a badge: its words, and a class for its colour (the words carry the meaning).
pub fn badge(words: &str, tone: &str) -> String {
    format!(r#"<span class="status-badge status-{tone}">{}</span>"#, crate::html::esc(words))
}

/// The badge of a registration.
pub fn registration_badge(registration: &Value) -> String {
    let words = registration_status(registration);
    let tone = match words.as_str() {
        "Confirmée" | "Présent" => "ok",
        "Annulée" | "Absent" => "ko",
        _ => "info",
    };
    badge(&words, tone)
}

/// The badge of a session.
pub fn session_badge(status: &str) -> String {
    let tone = match status {
        "held" => "ok",
        "cancelled" => "ko",
        _ => "info",
    };
    badge(session_status(status), tone)
}

/// The price per participant: « Gratuit » or « 120,00 € HT par participant présent ».
pub fn price(session: &Value) -> String {
    match session["price_per_participant_cents"].as_i64().unwrap_or(0) {
        cents if cents > 0 => format!("{} HT par participant présent", fr::euros(cents)),
        _ => "Gratuit".to_owned(),
    }
}

/// A time typed by a user: `9:30`, `09:30`, `9 h 30`, `9h30`, `9h`.
pub fn parse_time(raw: &str) -> Option<NaiveTime> {
    let compact: String = raw.trim().to_lowercase().chars().filter(|c| !c.is_whitespace()).collect();
    let (hours, minutes) = match compact.split_once([':', 'h']) {
        Some((h, "")) => (h.to_owned(), "0".to_owned()),
        Some((h, m)) => (h.to_owned(), m.to_owned()),
        None => return None,
    };
    let digits = |v: &str| !v.is_empty() && v.len() <= 2 && v.bytes().all(|b| b.is_ascii_digit());
    if !digits(&hours) || !digits(&minutes) {
        return None;
    }
    NaiveTime::from_hms_opt(hours.parse().ok()?, minutes.parse().ok()?, 0)
}

/// Why a Paris wall-clock time is not one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTimeError {
    /// Skipped when the clocks go forward (the last Sunday of March, 2 h to 3 h).
    DoesNotExist,
}

/// The instant of a Paris wall-clock time. In the hour that happens twice (the last Sunday of October), the
/// first (summer time) is chosen; a time skipped in spring does not exist.
pub fn paris_to_utc(local: NaiveDateTime) -> Result<DateTime<Utc>, LocalTimeError> {
    for offset in [2, 1] {
        let utc = (local - chrono::Duration::hours(offset)).and_utc();
        if fr::paris_offset_hours(utc) == offset {
            return Ok(utc);
        }
    }
    Err(LocalTimeError::DoesNotExist)
}

/// An instant as the API takes it (RFC 3339, UTC).
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
