//! Sessions as iCalendar (RFC 5545), for the download of one session and a participant's subscribed feed.
//! Times are written in Paris local time with the `Europe/Paris` VTIMEZONE (what calendar applications show
//! and what survives a change of the EU rule better than UTC would); lines are folded at 75 octets and TEXT
//! values escaped, so that strict parsers accept any title or place a provider types.

use chrono::{DateTime, Utc};
use id77_platform::time;

/// One session as a calendar application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEvent {
    /// Stable across renderings (the session or registration id): `@id77` is appended.
    pub uid: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub summary: String,
    pub description: String,
    pub location: String,
    pub url: Option<String>,
    pub cancelled: bool,
    /// Bumped at each change, so that subscribed applications replace their copy.
    pub sequence: u32,
    /// Written as DTSTAMP.
    pub updated_at: DateTime<Utc>,
}

/// The longest physical line, in octets, CRLF excluded (RFC 5545 §3.1).
const MAX_LINE_OCTETS: usize = 75;

const TZID: &str = "Europe/Paris";

/// Europe/Paris since 1996 (the current EU rule): a calendar must define every TZID it uses.
const VTIMEZONE: [&str; 18] = [
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Paris",
    "X-LIC-LOCATION:Europe/Paris",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19810329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19961027T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
];

/// The whole VCALENDAR document, CRLF line ends.
pub fn render(calendar_name: &str, events: &[CalendarEvent]) -> String {
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Departement de Seine-et-Marne//ID 77//FR",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
    ] {
        push(&mut out, line);
    }
    push(&mut out, &format!("X-WR-CALNAME:{}", escape(calendar_name)));
    push(&mut out, &format!("X-WR-TIMEZONE:{TZID}"));
    for line in VTIMEZONE {
        push(&mut out, line);
    }
    for event in events {
        render_event(&mut out, event);
    }
    push(&mut out, "END:VCALENDAR");
    out
}

fn render_event(out: &mut String, e: &CalendarEvent) {
    push(out, "BEGIN:VEVENT");
    push(out, &format!("UID:{}@id77", escape(&e.uid)));
    push(out, &format!("DTSTAMP:{}", utc(e.updated_at)));
    push(out, &format!("DTSTART{}", date_time(e.starts_at)));
    push(out, &format!("DTEND{}", date_time(e.ends_at)));
    push(out, &format!("SUMMARY:{}", escape(&e.summary)));
    if !e.description.trim().is_empty() {
        push(out, &format!("DESCRIPTION:{}", escape(&e.description)));
    }
    if !e.location.trim().is_empty() {
        push(out, &format!("LOCATION:{}", escape(&e.location)));
    }
    if let Some(url) = e.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        // A URI is not TEXT: no escaping, but no control character either.
        let url: String = url.chars().filter(|c| !c.is_control()).collect();
        push(out, &format!("URL:{url}"));
    }
    push(out, if e.cancelled { "STATUS:CANCELLED" } else { "STATUS:CONFIRMED" });
    push(out, &format!("SEQUENCE:{}", e.sequence));
    push(out, "END:VEVENT");
}

/// `20261206T083000Z`.
fn utc(at: DateTime<Utc>) -> String {
    at.format("%Y%m%dT%H%M%SZ").to_string()
}

/// `;TZID=Europe/Paris:20261206T093000`, the parameter and value of DTSTART or DTEND. An instant in the second
/// pass of the hour repeated in October cannot be named in local time (a reader takes the first), so it is
/// written in UTC.
fn date_time(at: DateTime<Utc>) -> String {
    let local = time::paris(at);
    if time::paris_to_utc(local) == Some(at) {
        format!(";TZID={TZID}:{}", local.format("%Y%m%dT%H%M%S"))
    } else {
        format!(":{}", utc(at))
    }
}

/// A TEXT value (RFC 5545 §3.3.11): backslash, semicolon, comma and line breaks escaped; other control
/// characters, which the grammar forbids, dropped.
fn escape(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends one content line, folded: a physical line holds at most 75 octets, a continuation starts with a
/// space, and a UTF-8 character is never split.
fn push(out: &mut String, line: &str) {
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > MAX_LINE_OCTETS {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn event(uid: &str, starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> CalendarEvent {
        CalendarEvent {
            uid: uid.into(),
            starts_at,
            ends_at,
            summary: "Sensibilisation".into(),
            description: String::new(),
            location: String::new(),
            url: None,
            cancelled: false,
            sequence: 0,
            updated_at: Utc.with_ymd_and_hms(2026, 11, 2, 10, 0, 0).unwrap(),
        }
    }

    /// RFC 5545 §3.1 unfolding: a CRLF followed by one space or tab is removed.
    fn unfold(ics: &str) -> String {
        ics.replace("\r\n ", "").replace("\r\n\t", "")
    }

    fn property<'a>(ics: &'a str, name: &str) -> Vec<&'a str> {
        ics.split("\r\n").filter_map(|l| l.strip_prefix(name)).collect()
    }

    #[test]
    fn a_long_accented_line_is_folded_at_75_octets_without_splitting_a_character() {
        let summary = "Élus et agents : « Gérer l'éclairage public économe en énergie » — journée ".repeat(4);
        assert!(summary.len() > 300);
        let mut e = event("s1", Utc::now(), Utc::now());
        e.summary = summary.clone();
        let long = render("Sessions", &[e]);
        for physical in long.split("\r\n") {
            assert!(physical.len() <= 75, "{} octets: {physical}", physical.len());
        }
        // Every physical line is valid UTF-8 on its own (the `str` split would have panicked otherwise) and
        // unfolding gives back the value.
        assert_eq!(property(&unfold(&long), "SUMMARY:"), vec![escape(&summary).as_str()]);
        assert!(long.split("\r\n").filter(|l| l.starts_with(' ')).count() >= 4);
        // A line of exactly 75 octets is not folded, one of 76 is.
        let mut out = String::new();
        push(&mut out, &"a".repeat(75));
        assert_eq!(out, format!("{}\r\n", "a".repeat(75)));
        out.clear();
        push(&mut out, &format!("{}é", "a".repeat(74)));
        assert_eq!(out, format!("{}\r\n é\r\n", "a".repeat(74)));
    }

    /// Undoes [`escape`] as a reader does.
    fn unescape(value: &str) -> String {
        let mut out = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
            } else if let Some(next) = chars.next() {
                out.push(if next == 'n' || next == 'N' { '\n' } else { next });
            }
        }
        out
    }

    /// What a reader gets back for `text`: line breaks as `\n`, tabs as spaces, other control characters gone.
    fn readable(text: &str) -> String {
        text.replace("\r\n", "\n")
            .replace('\r', "\n")
            .chars()
            .filter_map(|c| match c {
                '\t' => Some(' '),
                '\n' => Some('\n'),
                c if c.is_control() => None,
                c => Some(c),
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn any_text_survives_escaping_and_folding(summary in "\\PC{0,200}", location in "(?s).{0,120}") {
            let mut e = event("p", Utc::now(), Utc::now());
            e.summary = summary.clone();
            e.location = location.clone();
            let ics = render("Sessions", &[e]);
            for physical in ics.split("\r\n") {
                proptest::prop_assert!(physical.len() <= 75);
            }
            let unfolded = unfold(&ics);
            let read = property(&unfolded, "SUMMARY:");
            proptest::prop_assert_eq!(read.len(), 1);
            proptest::prop_assert_eq!(unescape(read[0]), readable(&summary));
            let read = property(&unfolded, "LOCATION:");
            if location.trim().is_empty() {
                proptest::prop_assert!(read.is_empty());
            } else {
                proptest::prop_assert_eq!(read.len(), 1);
                proptest::prop_assert_eq!(unescape(read[0]), readable(&location));
            }
        }
    }

    #[test]
    fn text_values_are_escaped() {
        assert_eq!(escape("a\\b;c,d\ne\r\nf\rg\u{7}h\ti"), "a\\\\b\\;c\\,d\\ne\\nf\\ngh i");
        let mut e = event("s1;x", Utc::now(), Utc::now());
        e.location = "Salle du conseil, 2 rue de l'Hôtel de ville; Meaux".into();
        e.description = "Ligne 1\nLigne 2".into();
        e.url = Some("https://visio.example/r?a=1,2\r\n".into());
        let ics = unfold(&render("Mes inscriptions, ID 77", &[e]));
        assert_eq!(property(&ics, "X-WR-CALNAME:"), vec!["Mes inscriptions\\, ID 77"]);
        assert_eq!(property(&ics, "UID:"), vec!["s1\\;x@id77"]);
        assert_eq!(property(&ics, "LOCATION:"), vec!["Salle du conseil\\, 2 rue de l'Hôtel de ville\\; Meaux"]);
        assert_eq!(property(&ics, "DESCRIPTION:"), vec!["Ligne 1\\nLigne 2"]);
        assert_eq!(property(&ics, "URL:"), vec!["https://visio.example/r?a=1,2"]);
    }

    #[test]
    fn times_are_paris_local_in_summer_and_winter() {
        let summer = event(
            "summer",
            Utc.with_ymd_and_hms(2027, 6, 15, 7, 30, 0).unwrap(),
            Utc.with_ymd_and_hms(2027, 6, 15, 10, 30, 0).unwrap(),
        );
        let winter = event(
            "winter",
            Utc.with_ymd_and_hms(2026, 12, 6, 8, 30, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 12, 6, 11, 30, 0).unwrap(),
        );
        let ics = render("Sessions", &[summer, winter]);
        assert_eq!(property(&ics, "DTSTART;TZID=Europe/Paris:"), vec!["20270615T093000", "20261206T093000"]);
        assert_eq!(property(&ics, "DTEND;TZID=Europe/Paris:"), vec!["20270615T123000", "20261206T123000"]);
        assert_eq!(property(&ics, "DTSTAMP:"), vec!["20261102T100000Z", "20261102T100000Z"]);
    }

    #[test]
    fn the_second_pass_of_the_repeated_october_hour_is_written_in_utc() {
        // 25 October 2026: 02:30 Paris happens at 00:30 UTC (summer time) and again at 01:30 UTC (winter time).
        let first = Utc.with_ymd_and_hms(2026, 10, 25, 0, 30, 0).unwrap();
        let second = Utc.with_ymd_and_hms(2026, 10, 25, 1, 30, 0).unwrap();
        let ics = render("Sessions", &[event("s", first, second)]);
        assert_eq!(property(&ics, "DTSTART;TZID=Europe/Paris:"), vec!["20261025T023000"]);
        assert_eq!(property(&ics, "DTEND:"), vec!["20261025T013000Z"]);
    }

    #[test]
    fn the_document_has_its_envelope_time_zone_and_statuses() {
        let mut cancelled = event("c", Utc::now(), Utc::now());
        cancelled.cancelled = true;
        cancelled.sequence = 3;
        let ics = render("Sessions", &[event("a", Utc::now(), Utc::now()), cancelled]);
        assert!(
            ics.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Departement de Seine-et-Marne//ID 77//FR\r\n")
        );
        assert!(ics.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
        assert!(!ics.replace("\r\n", "").contains('\n'));
        for line in ["CALSCALE:GREGORIAN", "METHOD:PUBLISH", "X-WR-TIMEZONE:Europe/Paris", "TZID:Europe/Paris"] {
            assert_eq!(property(&ics, line), vec![""], "{line}");
        }
        assert_eq!(property(&ics, "RRULE:FREQ=YEARLY;BYMONTH="), vec!["3;BYDAY=-1SU", "10;BYDAY=-1SU"]);
        assert_eq!(property(&ics, "STATUS:"), vec!["CONFIRMED", "CANCELLED"]);
        assert_eq!(property(&ics, "SEQUENCE:"), vec!["0", "3"]);
        assert_eq!(property(&ics, "BEGIN:VEVENT").len(), 2);
        // Empty optional properties are left out.
        assert!(property(&ics, "URL:").is_empty() && property(&ics, "LOCATION:").is_empty());
    }
}
