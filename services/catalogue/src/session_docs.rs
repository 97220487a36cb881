//! Sessions as documents: the rows mapped to the calendar renderer's events and to the PDFs' inputs
//! ([`crate::domain::calendar`], [`crate::documents`]), and the calendar feed's secret token.

use base64::Engine;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::documents::{AttendanceSheet, Attestation, SheetRow};
use crate::domain::calendar::CalendarEvent;
use crate::session_store::{RegistrationRow, SessionRow};

/// The place as one line: « adresse, commune (INSEE) », or « En ligne ».
pub fn place_line(s: &SessionRow) -> String {
    if s.online {
        return "En ligne".to_owned();
    }
    match s.commune_name.as_str() {
        "" => format!("{} ({})", s.address, s.commune_insee),
        name => format!("{}, {name}", s.address),
    }
}

/// Grows with every change of the session (seconds since 2023-11-14), so subscribed calendars replace their copy.
fn sequence(updated_at: DateTime<Utc>) -> u32 {
    u32::try_from((updated_at.timestamp() - 1_700_000_000).max(0)).unwrap_or(u32::MAX)
}

/// A session as a calendar event; its online link only when `show_link`.
pub fn calendar_event(s: &SessionRow, show_link: bool) -> CalendarEvent {
    let mut description = format!("Proposé par {}.", s.provider_name);
    if !s.details.is_empty() {
        description = format!("{}\n\n{description}", s.details);
    }
    if s.status == "cancelled" && !s.cancel_reason.is_empty() {
        description = format!("Session annulée : {}\n\n{description}", s.cancel_reason);
    }
    CalendarEvent {
        uid: format!("session-{}", s.id),
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        summary: s.offer_title.clone(),
        description,
        location: place_line(s),
        url: (show_link && s.online && !s.online_link.is_empty()).then(|| s.online_link.clone()),
        cancelled: s.status == "cancelled",
        sequence: sequence(s.updated_at),
        updated_at: s.updated_at,
    }
}

/// The attestation de présence of a participant who attended.
pub fn attestation(s: &SessionRow, r: &RegistrationRow, issued_at: DateTime<Utc>) -> Attestation {
    Attestation {
        participant_name: r.participant_name.clone(),
        participant_function: r.participant_function.clone(),
        member_name: r.member_name.clone(),
        offer_title: s.offer_title.clone(),
        provider_name: s.provider_name.clone(),
        session_starts_at: s.starts_at,
        session_ends_at: s.ends_at,
        place: place_line(s),
        issued_at,
        reference: r.id.to_string(),
    }
}

/// The feuille d'émargement: the confirmed participants, by member then name.
pub fn attendance_sheet(s: &SessionRow, confirmed: &[RegistrationRow]) -> AttendanceSheet {
    let mut rows: Vec<SheetRow> = confirmed
        .iter()
        .map(|r| SheetRow {
            name: r.participant_name.clone(),
            function: r.participant_function.clone(),
            member_name: r.member_name.clone(),
        })
        .collect();
    rows.sort_by(|a, b| (a.member_name.as_str(), a.name.as_str()).cmp(&(b.member_name.as_str(), b.name.as_str())));
    AttendanceSheet {
        offer_title: s.offer_title.clone(),
        provider_name: s.provider_name.clone(),
        starts_at: s.starts_at,
        ends_at: s.ends_at,
        place: place_line(s),
        rows,
    }
}

/// A new feed token: 32 random bytes, base64url without padding.
pub fn new_feed_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What is kept of a token: its SHA-256.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.trim().as_bytes()).to_vec()
}

/// A file name for a session's documents: the offer's code and the Paris date.
pub fn file_stem(s: &SessionRow) -> String {
    format!("{}-{}", s.offer_code, id77_platform::time::paris(s.starts_at).format("%Y-%m-%d"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn row(online: bool) -> SessionRow {
        let t = id77_platform::time::now();
        SessionRow {
            id: Uuid::nil(),
            offer_id: Uuid::nil(),
            offer_code: "formation-plu".into(),
            offer_title: "Formation PLU".into(),
            provider_code: "caue77".into(),
            provider_name: "CAUE 77".into(),
            starts_at: t,
            ends_at: t,
            online,
            commune_insee: "77288".into(),
            commune_name: "Melun".into(),
            address: "12 rue des Saints-Pères".into(),
            online_link: "https://visio.example.fr/x".into(),
            capacity: 10,
            member_quota: 0,
            registration_deadline: t,
            price_per_participant_cents: 0,
            details: String::new(),
            status: "scheduled".into(),
            cancel_reason: String::new(),
            updated_at: t,
            confirmed: 0,
            waitlisted: 0,
            attended: 0,
        }
    }

    #[test]
    fn places_and_links_follow_the_session() {
        assert_eq!(place_line(&row(false)), "12 rue des Saints-Pères, Melun");
        assert_eq!(place_line(&row(true)), "En ligne");
        assert_eq!(calendar_event(&row(true), false).url, None);
        assert_eq!(calendar_event(&row(true), true).url.as_deref(), Some("https://visio.example.fr/x"));
        let cancelled = SessionRow { status: "cancelled".into(), cancel_reason: "intempéries".into(), ..row(false) };
        let e = calendar_event(&cancelled, false);
        assert!(e.cancelled && e.description.starts_with("Session annulée : intempéries"));
    }

    #[test]
    fn feed_tokens_are_random_and_only_hashed() {
        let (a, b) = (new_feed_token().unwrap_or_default(), new_feed_token().unwrap_or_default());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 32);
        assert_eq!(token_hash(&a), token_hash(&format!(" {a} ")));
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
