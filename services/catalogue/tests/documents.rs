//! The session PDFs read back by PyPI `pypdf` (a reader no one here wrote): the attestation's French text with
//! its accents, the attendance sheet's pages, rows and page numbers.

use std::process::Command;

use anyhow::{Context, ensure};
use chrono::{DateTime, TimeZone, Utc};
use id77_catalogue::documents::{AttendanceSheet, Attestation, SheetRow, attendance_sheet_pdf, attestation_pdf};

/// Prints each page's text followed by a form feed, failing unless every page is A4.
const PDF_PAGES: &str = r#"
import sys
from pypdf import PdfReader
reader = PdfReader(sys.argv[1], strict=True)
for page in reader.pages:
    box = page.mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842), f'not A4: {box}'
    sys.stdout.write(page.extract_text() + '\f')
"#;

/// The text of each page, whitespace runs made single spaces (a wrapped line reads as one sentence).
fn pages(name: &str, pdf: &[u8]) -> anyhow::Result<Vec<String>> {
    ensure!(pdf.starts_with(b"%PDF-"), "{name} is not a PDF");
    let dir = std::env::temp_dir().join(format!("id77-pdf-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.pdf"));
    std::fs::write(&path, pdf)?;
    let out = Command::new("python3")
        .arg("-c")
        .arg(PDF_PAGES)
        .arg(&path)
        .output()
        .context("python3 with the pypdf package is needed (make test installs it)")?;
    let _ = std::fs::remove_dir_all(&dir);
    ensure!(out.status.success(), "pypdf cannot read {name}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout)?;
    Ok(text.split_terminator('\u{c}').map(|p| p.split_whitespace().collect::<Vec<_>>().join(" ")).collect())
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("a valid instant")
}

#[test]
fn an_attestation_states_who_attended_what_when_and_where_in_french() -> anyhow::Result<()> {
    let pdf = attestation_pdf(&Attestation {
        participant_name: "Hélène Lefèvre-Écuyer".into(),
        participant_function: "Adjointe au maire chargée de l'urbanisme".into(),
        member_name: "Commune de Château-Landon".into(),
        offer_title: "Sobriété énergétique des bâtiments communaux : diagnostic et plan d'actions".into(),
        provider_name: "Agence locale de l'énergie et du climat de Seine-et-Marne".into(),
        session_starts_at: utc(2026, 12, 6, 8, 30),
        session_ends_at: utc(2026, 12, 6, 11, 30),
        place: "Melun — Hôtel du Département, salle Guy Geoffroy".into(),
        issued_at: utc(2026, 12, 31, 23, 15),
        reference: "ATT-2026-000042".into(),
    });
    let pages = pages("attestation", &pdf)?;
    ensure!(pages.len() == 1, "{} pages", pages.len());
    let text = &pages[0];
    for wanted in [
        "Département de Seine-et-Marne — ID 77",
        "Attestation de présence",
        "Hélène Lefèvre-Écuyer",
        "Adjointe au maire chargée de l'urbanisme, Commune de Château-Landon",
        "Sobriété énergétique des bâtiments communaux : diagnostic et plan d'actions",
        "Agence locale de l'énergie et du climat de Seine-et-Marne",
        "6 décembre 2026 de 9 h 30 à 12 h 30",
        "Melun — Hôtel du Département, salle Guy Geoffroy",
        "Durée 3 heures",
        // Issued at 23:15 UTC on 31 December: already 1 January in Paris.
        "Délivrée le 1er janvier 2027.",
        "ATT-2026-000042",
    ] {
        ensure!(text.contains(wanted), "« {wanted} » missing from: {text}");
    }
    Ok(())
}

#[test]
fn an_attendance_sheet_of_25_participants_has_two_numbered_pages() -> anyhow::Result<()> {
    let rows: Vec<SheetRow> = (1..=25)
        .map(|i| SheetRow {
            name: format!("Participant{i:02} Désiré"),
            function: if i == 25 { "Directrice générale des services".into() } else { "Agent technique".into() },
            member_name: if i % 2 == 0 { "Commune de Meaux".into() } else { "CC du Pays de Coulommiers".into() },
        })
        .collect();
    let pdf = attendance_sheet_pdf(&AttendanceSheet {
        offer_title: "Prévention des inondations : plan communal de sauvegarde".into(),
        provider_name: "Direction de l'eau, de l'environnement et de l'agriculture".into(),
        starts_at: utc(2027, 6, 15, 7, 30),
        ends_at: utc(2027, 6, 15, 10, 0),
        place: "Fontainebleau".into(),
        rows,
    });
    let pages = pages("emargement", &pdf)?;
    ensure!(pages.len() == 2, "{} pages", pages.len());
    for (i, page) in pages.iter().enumerate() {
        for wanted in [
            "Feuille d'émargement".to_owned(),
            "Prévention des inondations : plan communal de sauvegarde".to_owned(),
            "15 juin 2027 de 9 h 30 à 12 h 00 (durée : 2 h 30)".to_owned(),
            "Nom Fonction Collectivité Signature".to_owned(),
            "Signature de l'intervenant".to_owned(),
            format!("Page {} sur 2", i + 1),
        ] {
            ensure!(page.contains(&wanted), "page {}: « {wanted} » missing from: {page}", i + 1);
        }
    }
    ensure!(pages[0].contains("1. Participant01 Désiré") && pages[0].contains("18. Participant18 Désiré"));
    ensure!(!pages[0].contains("Participant19") && pages[1].contains("19. Participant19 Désiré"));
    ensure!(pages[1].contains("25. Participant25 Désiré") && pages[1].contains("Directrice générale des services"));
    ensure!(pages[1].contains("Commune de Meaux") && pages[1].contains("CC du Pays de Coulommiers"));
    Ok(())
}
