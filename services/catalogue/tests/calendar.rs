//! The iCalendar of sessions read back by a parser no one here wrote: PyPI `icalendar`, through
//! `tests/calendar/check_ics.py` (time zone defined by the file itself, instants in summer, in winter and on
//! the days the clocks change, TEXT escaping and folding of long accented values undone exactly).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, ensure};
use chrono::{DateTime, TimeZone, Utc};
use id77_catalogue::domain::calendar::{CalendarEvent, render};
use serde_json::{Value, json};

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("a valid instant")
}

fn event(uid: &str, starts_at: DateTime<Utc>, ends_at: DateTime<Utc>, summary: &str) -> CalendarEvent {
    CalendarEvent {
        uid: uid.into(),
        starts_at,
        ends_at,
        summary: summary.into(),
        description: String::new(),
        location: "Melun".into(),
        url: None,
        cancelled: false,
        sequence: 0,
        updated_at: utc(2026, 11, 30, 16, 45),
    }
}

/// Runs the checker on `ics` with the expectations; returns the events it read.
fn check(ics: &str, expected: &Value) -> anyhow::Result<Value> {
    let dir = std::env::temp_dir().join(format!("id77-ics-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let (file, wanted) = (dir.join("sessions.ics"), dir.join("expected.json"));
    std::fs::write(&file, ics)?;
    std::fs::write(&wanted, serde_json::to_vec(expected)?)?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/calendar/check_ics.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(&file)
        .arg(&wanted)
        .output()
        .context("python3 with the icalendar package is needed (tests/calendar/requirements.txt)")?;
    let _ = std::fs::remove_dir_all(&dir);
    ensure!(out.status.success(), "check_ics.py refused the calendar:\n{}", String::from_utf8_lossy(&out.stderr));
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn a_third_party_parser_reads_sessions_at_the_right_instants_with_their_texts() -> anyhow::Result<()> {
    let long = "Élus et agents : « Réduire la facture énergétique des bâtiments communaux ; retours \
                d'expérience, outils et financements » — atelier animé par l'ALEC, Seine-et-Marne \\ 77";
    let mut winter = event("s-winter", utc(2026, 12, 6, 8, 30), utc(2026, 12, 6, 11, 30), long);
    winter.description = "Ligne 1, avec virgule\nLigne 2; point-virgule".into();
    winter.location = "Salle des fêtes, 2 place de l'Hôtel de Ville, Coulommiers".into();
    let mut summer = event("s-summer", utc(2027, 6, 15, 7, 30), utc(2027, 6, 15, 15, 0), "Visite de chantier");
    summer.url = Some("https://visio.example.fr/salle/abc?x=1,2".into());
    // The Sunday mornings the clocks change: 28 March 2027 10:00 CEST, 31 October 2027 10:00 CET.
    let spring = event("s-spring", utc(2027, 3, 28, 8, 0), utc(2027, 3, 28, 10, 0), "Printemps");
    let mut autumn = event("s-autumn", utc(2027, 10, 31, 9, 0), utc(2027, 10, 31, 11, 0), "Automne");
    autumn.cancelled = true;
    autumn.sequence = 2;
    let ics = render("Mes inscriptions — ID 77", &[winter, summer, spring, autumn]);

    let expected = json!({
        "s-winter@id77": {
            "start": "2026-12-06T08:30:00Z", "end": "2026-12-06T11:30:00Z", "summary": long,
            "description": "Ligne 1, avec virgule\nLigne 2; point-virgule",
            "location": "Salle des fêtes, 2 place de l'Hôtel de Ville, Coulommiers",
            "url": null, "status": "CONFIRMED", "sequence": 0,
        },
        "s-summer@id77": {
            "start": "2027-06-15T07:30:00Z", "end": "2027-06-15T15:00:00Z",
            "url": "https://visio.example.fr/salle/abc?x=1,2", "status": "CONFIRMED",
        },
        "s-spring@id77": { "start": "2027-03-28T08:00:00Z", "end": "2027-03-28T10:00:00Z" },
        "s-autumn@id77": {
            "start": "2027-10-31T09:00:00Z", "end": "2027-10-31T11:00:00Z", "status": "CANCELLED", "sequence": 2,
        },
    });
    let events = check(&ics, &expected)?;
    ensure!(events.as_array().map(Vec::len) == Some(4), "four events read: {events}");
    Ok(())
}

#[test]
fn the_checker_refuses_a_wrong_instant() -> anyhow::Result<()> {
    // The checker must be able to fail: the same event expected one hour off.
    let ics = render("Sessions", &[event("s", utc(2026, 12, 6, 8, 30), utc(2026, 12, 6, 11, 30), "Atelier")]);
    let err = check(&ics, &json!({ "s@id77": { "start": "2026-12-06T09:30:00Z" } }));
    let message = format!("{:#}", err.err().context("a wrong instant was accepted")?);
    ensure!(message.contains("start is '2026-12-06T08:30:00Z'"), "{message}");
    Ok(())
}
