//! What the mails of training sessions say (issue 22, ADR 0016): pure French plain text for a session's
//! participant, dates in Paris time the long way (« mardi 12 janvier 2027 de 9 h 30 à 12 h 30 »). The online link
//! is given only to a participant who has a seat.

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use id77_platform::time;

/// A participant's registration is confirmed (a seat at registration).
pub const KIND_REGISTRATION_CONFIRMED: &str = "session_registration_confirmed";
/// No seat was left: the participant is on the waiting list.
pub const KIND_REGISTRATION_WAITLISTED: &str = "session_registration_waitlisted";
/// A seat was freed for a waitlisted participant.
pub const KIND_REGISTRATION_PROMOTED: &str = "session_registration_promoted";
/// A registration was withdrawn.
pub const KIND_REGISTRATION_CANCELLED: &str = "session_registration_cancelled";
/// The session will not take place.
pub const KIND_SESSION_CANCELLED: &str = "session_cancelled";
/// Two working days before the session.
pub const KIND_SESSION_REMINDER: &str = "session_reminder";

/// The portal's « Mes inscriptions » page (appended to the portal's base URL by the sender).
pub const REGISTRATIONS_PATH: &str = "/inscriptions";

/// Whether a mail of `kind` is one of these (the sender ends them with [`full_body`]).
pub fn is_session_kind(kind: &str) -> bool {
    [
        KIND_REGISTRATION_CONFIRMED,
        KIND_REGISTRATION_WAITLISTED,
        KIND_REGISTRATION_PROMOTED,
        KIND_REGISTRATION_CANCELLED,
        KIND_SESSION_CANCELLED,
        KIND_SESSION_REMINDER,
    ]
    .contains(&kind)
}

/// Where a session takes place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    InPerson {
        commune: String,
        address: String,
    },
    /// `link`: empty when the catalogue did not give it.
    Online {
        link: String,
    },
}

/// What the mails say of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFacts {
    pub offer_title: String,
    pub provider_name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub place: Place,
}

/// Who a mail is for.
#[derive(Debug, Clone, Copy)]
pub struct Addressee<'a> {
    pub name: &'a str,
    /// The collectivité that registered them.
    pub member_name: &'a str,
}

const WEEKDAYS: [&str; 7] = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"];
const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// A Paris day the long way: `mardi 12 janvier 2027`, `lundi 1er mars 2027`.
pub fn long_day(local: NaiveDateTime) -> String {
    let weekday = WEEKDAYS[local.weekday().num_days_from_monday() as usize];
    let month = MONTHS.get(local.month0() as usize).copied().unwrap_or("");
    let day = match local.day() {
        1 => "1er".to_owned(),
        d => d.to_string(),
    };
    format!("{weekday} {day} {month} {}", local.year())
}

/// A Paris time the French way: `9 h 30`, `14 h`.
pub fn hour(local: NaiveDateTime) -> String {
    match local.minute() {
        0 => format!("{} h", local.hour()),
        m => format!("{} h {m:02}", local.hour()),
    }
}

/// When a session takes place, in Paris time: `mardi 12 janvier 2027 de 9 h 30 à 12 h 30`, or over several days
/// `du lundi 11 janvier 2027 à 9 h au mardi 12 janvier 2027 à 17 h`.
pub fn when(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> String {
    let (start, end) = (time::paris(starts_at), time::paris(ends_at));
    if start.date() == end.date() {
        format!("{} de {} à {}", long_day(start), hour(start), hour(end))
    } else {
        format!("du {} à {} au {} à {}", long_day(start), hour(start), long_day(end), hour(end))
    }
}

/// One line, at most 150 characters (subjects and the facts of a body).
fn one_line(text: &str) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 150 { format!("{}…", line.chars().take(149).collect::<String>()) } else { line }
}

fn greeting(name: &str) -> String {
    let name = one_line(name);
    if name.is_empty() { "Bonjour,".to_owned() } else { format!("Bonjour {name},") }
}

/// `[ID 77] <what> : « <offer> » le mardi 12 janvier 2027`.
fn subject(what: &str, s: &SessionFacts) -> String {
    one_line(&format!("[ID 77] {what} : « {} » le {}", s.offer_title, long_day(time::paris(s.starts_at))))
}

/// The facts of the session; `with_link`: the online link (for a participant with a seat).
fn facts(s: &SessionFacts, to: &Addressee<'_>, with_link: bool) -> String {
    let mut facts = format!("Session : « {} »\nDate : {}\n", one_line(&s.offer_title), when(s.starts_at, s.ends_at));
    let place = match &s.place {
        Place::InPerson { commune, address } => {
            [one_line(address), one_line(commune)].into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(", ")
        }
        Place::Online { link } if with_link && !link.trim().is_empty() => format!("en ligne, {}", link.trim()),
        Place::Online { .. } if with_link => "en ligne (le lien vous sera communiqué par l'organisateur)".to_owned(),
        Place::Online { .. } => "en ligne".to_owned(),
    };
    facts.push_str(&format!("Lieu : {place}\n"));
    if !s.provider_name.trim().is_empty() {
        facts.push_str(&format!("Organisée par : {}\n", one_line(&s.provider_name)));
    }
    if !to.member_name.trim().is_empty() {
        facts.push_str(&format!("Inscription au titre de : {}\n", one_line(to.member_name)));
    }
    facts
}

fn with_reason(reason: &str) -> String {
    let reason = one_line(reason);
    if reason.is_empty() { String::new() } else { format!("Motif : {reason}\n") }
}

/// Subject and body (without the link) telling a participant that their seat is confirmed.
pub fn confirmed_mail(to: &Addressee<'_>, s: &SessionFacts) -> (String, String) {
    let body = format!(
        "{}\n\nVotre inscription est confirmée : une place vous est réservée.\n\n{}\nSi vous ne pouvez pas venir, \
         faites annuler votre inscription pour libérer votre place.\n",
        greeting(to.name),
        facts(s, to, true),
    );
    (subject("Inscription confirmée", s), body)
}

/// Subject and body telling a participant that they are on the waiting list, at `position` (from 1).
pub fn waitlisted_mail(to: &Addressee<'_>, s: &SessionFacts, position: u32) -> (String, String) {
    let rank = match position {
        0 => "sur la liste d'attente".to_owned(),
        1 => "en 1re position sur la liste d'attente".to_owned(),
        n => format!("en {n}e position sur la liste d'attente"),
    };
    let body = format!(
        "{}\n\nIl ne restait plus de place pour cette session : vous êtes {rank}.\nSi une place se libère, elle vous \
         sera attribuée dans l'ordre d'inscription et vous recevrez alors un courriel.\n\n{}",
        greeting(to.name),
        facts(s, to, false),
    );
    (subject("Liste d'attente", s), body)
}

/// Subject and body telling a waitlisted participant that a seat was freed for them.
pub fn promoted_mail(to: &Addressee<'_>, s: &SessionFacts) -> (String, String) {
    let body = format!(
        "{}\n\nUne place s'est libérée : votre inscription est maintenant confirmée.\n\n{}\nSi vous ne pouvez pas \
         venir, faites annuler votre inscription pour libérer votre place.\n",
        greeting(to.name),
        facts(s, to, true),
    );
    (subject("Une place s'est libérée", s), body)
}

/// Subject and body telling a participant that their registration was cancelled, for `reason`.
pub fn registration_cancelled_mail(to: &Addressee<'_>, s: &SessionFacts, reason: &str) -> (String, String) {
    let body = format!(
        "{}\n\nVotre inscription à cette session est annulée.\n{}\n{}",
        greeting(to.name),
        with_reason(reason),
        facts(s, to, false),
    );
    (subject("Inscription annulée", s), body)
}

/// Subject and body telling a participant that the session will not take place, for `reason`.
pub fn session_cancelled_mail(to: &Addressee<'_>, s: &SessionFacts, reason: &str) -> (String, String) {
    let body = format!(
        "{}\n\nLa session ci-dessous n'aura pas lieu : votre inscription est annulée.\n{}\n{}\nD'autres sessions \
         peuvent être proposées dans le catalogue.\n",
        greeting(to.name),
        with_reason(reason),
        facts(s, to, false),
    );
    (subject("Session annulée", s), body)
}

/// Subject and body reminding a participant with a seat of the session, two working days before.
pub fn reminder_mail(to: &Addressee<'_>, s: &SessionFacts) -> (String, String) {
    let body = format!(
        "{}\n\nPour rappel, votre inscription à la session ci-dessous est confirmée.\n\n{}\nSi vous ne pouvez plus venir, faites \
         annuler votre inscription pour libérer votre place.\n",
        greeting(to.name),
        facts(s, to, true),
    );
    (subject("Rappel", s), body)
}

/// The whole body of a participant's mail: the text, the link to « Mes inscriptions » and a footer saying why
/// they get it (a participant may have no account, hence no preferences).
pub fn full_body(body: &str, portal_url: &str, link_path: &str) -> String {
    format!(
        "{body}\nMes inscriptions : {}{link_path}\n\n-- \nID 77, l'ingénierie départementale de Seine-et-Marne.\n\
         Vous recevez ce courriel parce que votre collectivité a inscrit votre adresse à une session de \
         sensibilisation ou de formation.\n",
        portal_url.trim_end_matches('/')
    )
}

/// Whether `email` can be written to (a participant without a valid address gets no mail).
pub fn is_address(email: &str) -> bool {
    email.trim().parse::<lettre::Address>().is_ok()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().expect("a date")
    }

    /// Tuesday 12 January 2027, 9:30 to 12:30 in Paris (winter time, UTC+1).
    fn session(place: Place) -> SessionFacts {
        SessionFacts {
            offer_title: "Urbanisme\ndurable".into(),
            provider_name: "CAUE 77".into(),
            starts_at: utc(2027, 1, 12, 8, 30),
            ends_at: utc(2027, 1, 12, 11, 30),
            place,
        }
    }

    fn online() -> Place {
        Place::Online { link: "https://visio.example.fr/abc".into() }
    }

    fn melun() -> Place {
        Place::InPerson { commune: "Melun".into(), address: "Hôtel du Département, 12 rue des Saints-Pères".into() }
    }

    const TO: Addressee<'static> = Addressee { name: "Camille Martin", member_name: "Commune de Meaux" };

    #[test]
    fn dates_are_paris_time_the_long_way() {
        let s = session(melun());
        assert_eq!(when(s.starts_at, s.ends_at), "mardi 12 janvier 2027 de 9 h 30 à 12 h 30");
        // Summer time (UTC+2), a whole hour, the first of the month.
        assert_eq!(when(utc(2027, 6, 1, 12, 0), utc(2027, 6, 1, 15, 0)), "mardi 1er juin 2027 de 14 h à 17 h");
        // Across the night of a clock change (31 October 2027: summer time ends at 01:00 UTC).
        assert_eq!(
            when(utc(2027, 10, 30, 7, 0), utc(2027, 10, 31, 16, 0)),
            "du samedi 30 octobre 2027 à 9 h au dimanche 31 octobre 2027 à 17 h"
        );
        // 23:30 UTC is already the next day in Paris.
        assert_eq!(long_day(time::paris(utc(2027, 1, 11, 23, 30))), "mardi 12 janvier 2027");
    }

    #[test]
    fn a_confirmed_participant_gets_the_place_or_the_link() {
        let (subject, body) = confirmed_mail(&TO, &session(melun()));
        assert_eq!(subject, "[ID 77] Inscription confirmée : « Urbanisme durable » le mardi 12 janvier 2027");
        assert!(body.starts_with("Bonjour Camille Martin,\n\n"), "{body}");
        assert!(body.contains("Date : mardi 12 janvier 2027 de 9 h 30 à 12 h 30\n"), "{body}");
        assert!(body.contains("Lieu : Hôtel du Département, 12 rue des Saints-Pères, Melun\n"), "{body}");
        assert!(body.contains("Organisée par : CAUE 77\n"), "{body}");
        assert!(body.contains("Inscription au titre de : Commune de Meaux\n"), "{body}");
        let (_, body) = confirmed_mail(&TO, &session(online()));
        assert!(body.contains("Lieu : en ligne, https://visio.example.fr/abc\n"), "{body}");
        let (_, body) = reminder_mail(&TO, &session(online()));
        assert!(body.contains("https://visio.example.fr/abc"), "{body}");
        let (_, body) = confirmed_mail(&TO, &session(Place::Online { link: String::new() }));
        assert!(body.contains("Lieu : en ligne (le lien vous sera communiqué"), "{body}");
    }

    #[test]
    fn without_a_seat_there_is_no_link() {
        let s = session(online());
        let (subject, body) = waitlisted_mail(&TO, &s, 3);
        assert_eq!(subject, "[ID 77] Liste d'attente : « Urbanisme durable » le mardi 12 janvier 2027");
        assert!(body.contains("vous êtes en 3e position sur la liste d'attente."), "{body}");
        assert!(body.contains("Lieu : en ligne\n") && !body.contains("https://"), "{body}");
        assert!(waitlisted_mail(&TO, &s, 1).1.contains("en 1re position"));
        for (_, body) in [registration_cancelled_mail(&TO, &s, ""), session_cancelled_mail(&TO, &s, "")] {
            assert!(!body.contains("https://"), "{body}");
        }
    }

    #[test]
    fn a_promotion_says_a_seat_was_freed() {
        let (subject, body) = promoted_mail(&TO, &session(online()));
        assert_eq!(subject, "[ID 77] Une place s'est libérée : « Urbanisme durable » le mardi 12 janvier 2027");
        assert!(body.contains("Une place s'est libérée : votre inscription est maintenant confirmée."), "{body}");
        assert!(body.contains("https://visio.example.fr/abc"), "{body}");
    }

    #[test]
    fn cancellations_give_their_reason() {
        let s = session(melun());
        let (subject, body) = session_cancelled_mail(&TO, &s, "Intervenant\nindisponible");
        assert_eq!(subject, "[ID 77] Session annulée : « Urbanisme durable » le mardi 12 janvier 2027");
        assert!(body.contains("n'aura pas lieu"), "{body}");
        assert!(body.contains("Motif : Intervenant indisponible\n"), "{body}");
        let (subject, body) = registration_cancelled_mail(&Addressee { name: " ", member_name: "" }, &s, "");
        assert!(subject.starts_with("[ID 77] Inscription annulée : "), "{subject}");
        assert!(body.starts_with("Bonjour,\n\n"), "{body}");
        assert!(!body.contains("Motif") && !body.contains("Inscription au titre de"), "{body}");
        let (subject, _) = reminder_mail(&TO, &s);
        assert_eq!(subject, "[ID 77] Rappel : « Urbanisme durable » le mardi 12 janvier 2027");
    }

    #[test]
    fn the_footer_links_to_my_registrations() {
        let body = full_body("Bonjour,\n", "https://portail.id77.fr/", REGISTRATIONS_PATH);
        assert!(body.contains("\nMes inscriptions : https://portail.id77.fr/inscriptions\n"), "{body}");
        assert!(body.contains("votre collectivité a inscrit votre adresse"), "{body}");
        assert!(is_session_kind(KIND_SESSION_REMINDER) && !is_session_kind("status_changed"));
    }

    #[test]
    fn only_real_addresses_are_written_to() {
        assert!(is_address("camille.martin@meaux.fr"));
        assert!(!is_address("") && !is_address("camille") && !is_address("a b@meaux.fr"));
    }
}
