//! The PDFs of training sessions, free of I/O: a participant's « attestation de présence » and the session's
//! « feuille d'émargement » (one row per participant to sign, as many A4 pages as needed). Like billing's, they
//! are written with `pdf-writer` in the standard Helvetica fonts with the WinAnsi encoding (French accents,
//! « guillemets »), so no font is embedded; text is measured with the fonts' real widths to wrap and fit cells.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};
use id77_platform::time;
use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str, TextStr};

/// What an attestation de présence states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attestation {
    pub participant_name: String,
    pub participant_function: String,
    pub member_name: String,
    pub offer_title: String,
    pub provider_name: String,
    pub session_starts_at: DateTime<Utc>,
    pub session_ends_at: DateTime<Utc>,
    pub place: String,
    pub issued_at: DateTime<Utc>,
    pub reference: String,
}

/// One participant line of the attendance sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetRow {
    pub name: String,
    pub function: String,
    pub member_name: String,
}

/// The feuille d'émargement of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttendanceSheet {
    pub offer_title: String,
    pub provider_name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub place: String,
    pub rows: Vec<SheetRow>,
}

/// Participants on one page of the attendance sheet: rows tall enough to sign in.
pub const ROWS_PER_PAGE: usize = 18;

const ISSUER: &str = "Département de Seine-et-Marne — ID 77";
const A4: (f32, f32) = (595.28, 841.89);
const MARGIN: f32 = 50.0;
const TEXT_WIDTH: f32 = A4.0 - 2.0 * MARGIN;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    fn name(self) -> Name<'static> {
        match self {
            Font::Regular => Name(b"F1"),
            Font::Bold => Name(b"F2"),
        }
    }
}

/// Advance widths (thousandths of the font size) of WinAnsi bytes 32 to 255, from Adobe's Helvetica and
/// Helvetica-Bold AFM files.
#[rustfmt::skip]
const HELVETICA: [u16; 224] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, 556,
    556, 556, 222, 556, 333, 1000, 556, 556, 333, 1000, 667, 333, 1000, 556, 611, 556,
    556, 222, 222, 333, 333, 350, 556, 1000, 333, 1000, 500, 333, 944, 556, 500, 667,
    278, 333, 556, 556, 556, 556, 260, 556, 333, 737, 370, 556, 584, 556, 737, 333,
    400, 584, 333, 333, 333, 556, 537, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    667, 667, 667, 667, 667, 667, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 500, 556, 556, 556, 556, 278, 278, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 584, 611, 556, 556, 556, 556, 500, 556, 500,
];

#[rustfmt::skip]
const HELVETICA_BOLD: [u16; 224] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584, 556,
    556, 556, 278, 556, 500, 1000, 556, 556, 333, 1000, 667, 333, 1000, 556, 611, 556,
    556, 278, 278, 500, 500, 350, 556, 1000, 333, 1000, 556, 333, 944, 556, 500, 667,
    278, 333, 556, 556, 556, 556, 280, 556, 333, 737, 370, 556, 584, 556, 737, 333,
    400, 584, 333, 333, 333, 611, 556, 278, 333, 333, 365, 556, 834, 834, 834, 611,
    722, 722, 722, 722, 722, 722, 1000, 722, 667, 667, 667, 667, 278, 278, 278, 278,
    722, 722, 778, 778, 778, 778, 778, 584, 778, 722, 722, 722, 722, 667, 667, 611,
    556, 556, 556, 556, 556, 556, 889, 556, 556, 556, 556, 556, 278, 278, 278, 278,
    611, 611, 611, 611, 611, 611, 611, 584, 611, 611, 611, 611, 611, 556, 611, 556,
];

/// Unicode → Windows-1252 (the PDF WinAnsiEncoding) byte; characters outside it become `?`.
fn win_ansi(c: char) -> u8 {
    match c {
        '\u{20}'..='\u{7e}' => c as u8,
        // The Latin-1 supplement is identical, no-break space included.
        '\u{a0}'..='\u{ff}' => c as u32 as u8,
        '\u{202f}' => 0xa0,
        '€' => 0x80,
        '…' => 0x85,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        'Œ' => 0x8c,
        'œ' => 0x9c,
        'Ÿ' => 0x9f,
        '\t' | '\n' | '\r' => b' ',
        _ => b'?',
    }
}

fn encode(text: &str) -> Vec<u8> {
    text.chars().map(win_ansi).collect()
}

/// Width in points of `text` set in `font` at `size`.
fn width(text: &str, font: Font, size: f32) -> f32 {
    let table = match font {
        Font::Regular => &HELVETICA,
        Font::Bold => &HELVETICA_BOLD,
    };
    let units: u32 = text
        .chars()
        .map(|c| u32::from(table.get(usize::from(win_ansi(c)).saturating_sub(32)).copied().unwrap_or(556)))
        .sum();
    units as f32 * size / 1000.0
}

/// Splits `text` into lines no wider than `max`, at spaces when possible, inside a word when it must.
fn wrap(text: &str, font: Font, size: f32, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() { word.to_owned() } else { format!("{line} {word}") };
        if width(&candidate, font, size) <= max {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        for c in word.chars() {
            if !line.is_empty() && width(&format!("{line}{c}"), font, size) > max {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// At most `count` wrapped lines; the last one ends with « … » when text had to be left out.
fn fit(text: &str, font: Font, size: f32, max: f32, count: usize) -> Vec<String> {
    let mut lines = wrap(text, font, size, max);
    if lines.len() > count {
        lines.truncate(count);
        if let Some(last) = lines.last_mut() {
            while !last.is_empty() && width(&format!("{last}…"), font, size) > max {
                last.pop();
            }
            *last = format!("{}…", last.trim_end());
        }
    }
    lines
}

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

/// `6 décembre 2026` (`1er` for the first day of a month).
fn long_date(day: NaiveDate) -> String {
    let month = MONTHS.get(day.month0() as usize).copied().unwrap_or("");
    match day.day() {
        1 => format!("1er {month} {}", day.year()),
        d => format!("{d} {month} {}", day.year()),
    }
}

/// `9 h 30`.
fn clock(at: NaiveDateTime) -> String {
    format!("{} h {:02}", at.hour(), at.minute())
}

/// When a session takes place, Paris time: `6 décembre 2026 de 9 h 30 à 12 h 30`, or `du 6 décembre 2026 à
/// 9 h 30 au 7 décembre 2026 à 12 h 30` over several days.
pub fn session_period(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> String {
    let (start, end) = (time::paris(starts_at), time::paris(ends_at));
    if start.date() == end.date() {
        format!("{} de {} à {}", long_date(start.date()), clock(start), clock(end))
    } else {
        format!("du {} à {} au {} à {}", long_date(start.date()), clock(start), long_date(end.date()), clock(end))
    }
}

/// A session's length: `3 heures`, `1 heure`, `2 h 30`, `45 minutes`.
pub fn duration_text(starts_at: DateTime<Utc>, ends_at: DateTime<Utc>) -> String {
    let minutes = (ends_at - starts_at).num_minutes().max(0);
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} minutes"),
        (1, 0) => "1 heure".to_owned(),
        (h, 0) => format!("{h} heures"),
        (h, m) => format!("{h} h {m:02}"),
    }
}

/// One page's drawing.
struct Page {
    content: Content,
}

impl Page {
    fn new() -> Self {
        Page { content: Content::new() }
    }

    fn text(&mut self, x: f32, y: f32, font: Font, size: f32, text: &str) {
        let bytes = encode(text);
        self.content.begin_text();
        self.content.set_font(font.name(), size);
        self.content.next_line(x, y);
        self.content.show(Str(&bytes));
        self.content.end_text();
    }

    fn right(&mut self, right_x: f32, y: f32, font: Font, size: f32, text: &str) {
        self.text(right_x - width(text, font, size), y, font, size, text);
    }

    fn centred(&mut self, y: f32, font: Font, size: f32, text: &str) {
        self.text((A4.0 - width(text, font, size)) / 2.0, y, font, size, text);
    }

    /// Lines of text from `y` downwards; returns the `y` below them.
    fn lines(&mut self, x: f32, mut y: f32, font: Font, size: f32, lines: &[String]) -> f32 {
        for line in lines {
            self.text(x, y, font, size, line);
            y -= size * 1.4;
        }
        y
    }

    fn rule(&mut self, y: f32) {
        self.content.set_line_width(0.5);
        self.content.move_to(MARGIN, y);
        self.content.line_to(A4.0 - MARGIN, y);
        self.content.stroke();
    }

    fn frame(&mut self, x: f32, y: f32, w: f32, h: f32) {
        self.content.set_line_width(0.5);
        self.content.rect(x, y, w, h);
        self.content.stroke();
    }
}

/// The document: every page A4, the two fonts, its title in the document information.
fn finish(pages: Vec<Page>, title: &str) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let (catalog, tree, regular, bold, info) = (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4), Ref::new(5));
    // Each page and its content stream, numbered after the fixed objects.
    let mut last = 5;
    let mut next = || {
        last += 1;
        Ref::new(last)
    };
    let ids: Vec<(Ref, Ref)> = pages.iter().map(|_| (next(), next())).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(ids.iter().map(|(page, _)| *page)).count(i32::try_from(ids.len()).unwrap_or(i32::MAX));
    for (page, (page_id, content_id)) in pages.into_iter().zip(&ids) {
        {
            let mut p = pdf.page(*page_id);
            p.media_box(Rect::new(0.0, 0.0, A4.0, A4.1));
            p.parent(tree);
            p.contents(*content_id);
            let mut resources = p.resources();
            let mut fonts = resources.fonts();
            fonts.pair(Font::Regular.name(), regular);
            fonts.pair(Font::Bold.name(), bold);
        }
        pdf.stream(*content_id, &page.content.finish());
    }
    pdf.type1_font(regular).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.document_info(info).title(TextStr(title)).author(TextStr(ISSUER)).producer(TextStr("ID 77"));
    pdf.finish()
}

/// Label in bold, value wrapped beside it; returns the `y` below.
fn field(page: &mut Page, y: f32, label: &str, value: &str) -> f32 {
    const LABEL_WIDTH: f32 = 95.0;
    page.text(MARGIN, y, Font::Bold, 11.0, label);
    let lines = wrap(value, Font::Regular, 11.0, TEXT_WIDTH - LABEL_WIDTH);
    page.lines(MARGIN + LABEL_WIDTH, y, Font::Regular, 11.0, &lines).min(y - 15.4) - 4.0
}

/// A participant's attestation de présence, one A4 page.
pub fn attestation_pdf(a: &Attestation) -> Vec<u8> {
    let mut page = Page::new();
    let top = A4.1 - MARGIN - 10.0;
    page.text(MARGIN, top, Font::Bold, 12.0, ISSUER);
    page.right(A4.0 - MARGIN, top, Font::Regular, 9.0, &format!("Référence : {}", a.reference));
    page.rule(top - 10.0);
    page.centred(top - 80.0, Font::Bold, 22.0, "Attestation de présence");

    let mut y = top - 140.0;
    y = page.lines(MARGIN, y, Font::Regular, 11.0, &["Le Département de Seine-et-Marne atteste que".to_owned()]);
    y -= 6.0;
    y = page.lines(MARGIN + 20.0, y, Font::Bold, 14.0, &wrap(&a.participant_name, Font::Bold, 14.0, TEXT_WIDTH));
    let who = [a.participant_function.trim(), a.member_name.trim()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    y = page.lines(MARGIN + 20.0, y, Font::Regular, 11.0, &wrap(&who, Font::Regular, 11.0, TEXT_WIDTH - 20.0));
    y -= 6.0;
    y = page.lines(MARGIN, y, Font::Regular, 11.0, &["a assisté à la session suivante :".to_owned()]);
    y -= 10.0;
    y = field(&mut page, y, "Session", &format!("«\u{a0}{}\u{a0}»", a.offer_title.trim()));
    y = field(&mut page, y, "Animée par", &a.provider_name);
    y = field(&mut page, y, "Date", &session_period(a.session_starts_at, a.session_ends_at));
    y = field(&mut page, y, "Lieu", &a.place);
    y = field(&mut page, y, "Durée", &duration_text(a.session_starts_at, a.session_ends_at));
    y -= 24.0;
    y = page.lines(
        MARGIN,
        y,
        Font::Regular,
        11.0,
        &["La présente attestation est délivrée pour servir et valoir ce que de droit.".to_owned()],
    );
    y -= 12.0;
    let issued = format!("Délivrée le {}.", long_date(time::paris(a.issued_at).date()));
    page.lines(MARGIN, y, Font::Regular, 11.0, &[issued]);
    page.rule(MARGIN + 20.0);
    page.text(MARGIN, MARGIN, Font::Regular, 8.0, &format!("{ISSUER} — attestation n° {}", a.reference));
    finish(vec![page], &format!("Attestation de présence — {}", a.participant_name))
}

/// The columns of the attendance sheet: title and width in points.
const COLUMNS: [(&str, f32); 4] = [("Nom", 135.0), ("Fonction", 115.0), ("Collectivité", 135.0), ("Signature", 110.0)];
const HEADER_HEIGHT: f32 = 18.0;
const ROW_HEIGHT: f32 = 26.0;
const CELL_SIZE: f32 = 8.5;

/// The session's attendance sheet: a heading on every page, a table of at most [`ROWS_PER_PAGE`] participants
/// with an empty cell to sign, a box for the speaker's signature, « Page n sur N ».
pub fn attendance_sheet_pdf(s: &AttendanceSheet) -> Vec<u8> {
    let chunks: Vec<&[SheetRow]> = if s.rows.is_empty() { vec![&[]] } else { s.rows.chunks(ROWS_PER_PAGE).collect() };
    let count = chunks.len();
    let pages =
        chunks.into_iter().enumerate().map(|(i, rows)| sheet_page(s, rows, i * ROWS_PER_PAGE, i + 1, count)).collect();
    finish(pages, &format!("Feuille d'émargement — {}", s.offer_title))
}

fn sheet_page(s: &AttendanceSheet, rows: &[SheetRow], first: usize, number: usize, count: usize) -> Page {
    let mut page = Page::new();
    let top = A4.1 - MARGIN - 10.0;
    page.text(MARGIN, top, Font::Bold, 10.0, ISSUER);
    page.text(MARGIN, top - 30.0, Font::Bold, 18.0, "Feuille d'émargement");
    let mut y = top - 52.0;
    let title = fit(&format!("«\u{a0}{}\u{a0}»", s.offer_title.trim()), Font::Bold, 11.0, TEXT_WIDTH, 2);
    y = page.lines(MARGIN, y, Font::Bold, 11.0, &title);
    let period = capitalised(&session_period(s.starts_at, s.ends_at));
    // At most six lines of details, so that the table and the speaker's box always fit.
    let details = [
        (format!("Animée par {}", s.provider_name.trim()), 1),
        (format!("{period} (durée : {})", duration_text(s.starts_at, s.ends_at)), 1),
        (format!("Lieu : {}", s.place.trim()), 2),
        (format!("Participants inscrits : {}", s.rows.len()), 1),
    ];
    for (line, count) in details {
        y = page.lines(MARGIN, y, Font::Regular, 9.5, &fit(&line, Font::Regular, 9.5, TEXT_WIDTH, count));
    }
    y -= 8.0;

    // The table's heading row, then one row per participant, numbered across pages.
    let mut x = MARGIN;
    for (title, w) in COLUMNS {
        page.frame(x, y - HEADER_HEIGHT, w, HEADER_HEIGHT);
        page.text(x + 4.0, y - HEADER_HEIGHT + 5.5, Font::Bold, 9.0, title);
        x += w;
    }
    y -= HEADER_HEIGHT;
    for (i, row) in rows.iter().enumerate() {
        let cells = [format!("{}. {}", first + i + 1, row.name.trim()), row.function.clone(), row.member_name.clone()];
        let mut x = MARGIN;
        for (j, (_, w)) in COLUMNS.iter().enumerate() {
            page.frame(x, y - ROW_HEIGHT, *w, ROW_HEIGHT);
            if let Some(cell) = cells.get(j) {
                let lines = fit(cell, Font::Regular, CELL_SIZE, w - 8.0, 2);
                let start = if lines.len() > 1 { y - 11.0 } else { y - 17.0 };
                page.lines(x + 4.0, start, Font::Regular, CELL_SIZE, &lines);
            }
            x += w;
        }
        y -= ROW_HEIGHT;
    }
    if rows.is_empty() {
        page.text(MARGIN, y - 16.0, Font::Regular, 9.5, "Aucun participant inscrit.");
    }

    // The speaker signs every page, below the table (which ends above 140 pt whatever the texts).
    page.text(MARGIN, MARGIN + 56.0, Font::Bold, 9.0, "Signature de l'intervenant :");
    page.frame(MARGIN, MARGIN + 10.0, 220.0, 40.0);
    page.right(A4.0 - MARGIN, MARGIN, Font::Regular, 8.0, &format!("Page {number} sur {count}"));
    page
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn sheet(rows: usize) -> AttendanceSheet {
        AttendanceSheet {
            offer_title: "Sobriété énergétique des bâtiments communaux".into(),
            provider_name: "CAUE 77".into(),
            starts_at: utc(2026, 12, 6, 8, 30),
            ends_at: utc(2026, 12, 6, 11, 30),
            place: "Meaux — salle du conseil".into(),
            rows: (0..rows)
                .map(|i| SheetRow {
                    name: format!("Agent n° {i}"),
                    function: "Secrétaire de mairie".into(),
                    member_name: "Commune de Meaux".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn periods_and_durations_are_french_in_paris_time() {
        assert_eq!(
            session_period(utc(2026, 12, 6, 8, 30), utc(2026, 12, 6, 11, 30)),
            "6 décembre 2026 de 9 h 30 à 12 h 30"
        );
        assert_eq!(
            session_period(utc(2027, 7, 1, 7, 0), utc(2027, 7, 1, 15, 0)),
            "1er juillet 2027 de 9 h 00 à 17 h 00"
        );
        assert_eq!(
            session_period(utc(2027, 3, 4, 8, 0), utc(2027, 3, 5, 16, 0)),
            "du 4 mars 2027 à 9 h 00 au 5 mars 2027 à 17 h 00"
        );
        // 23:30 UTC on 31 December is already 1 January in Paris.
        assert_eq!(long_date(time::paris(utc(2026, 12, 31, 23, 30)).date()), "1er janvier 2027");
        assert_eq!(duration_text(utc(2026, 12, 6, 8, 30), utc(2026, 12, 6, 11, 30)), "3 heures");
        assert_eq!(duration_text(utc(2026, 12, 6, 8, 30), utc(2026, 12, 6, 9, 30)), "1 heure");
        assert_eq!(duration_text(utc(2026, 12, 6, 8, 30), utc(2026, 12, 6, 11, 0)), "2 h 30");
        assert_eq!(duration_text(utc(2026, 12, 6, 8, 30), utc(2026, 12, 6, 9, 15)), "45 minutes");
        assert_eq!(duration_text(utc(2026, 12, 6, 8, 30), utc(2026, 12, 6, 8, 0)), "0 minutes");
    }

    #[test]
    fn text_is_measured_wrapped_and_fitted() {
        assert_eq!(encode("é«\u{a0}»—’\u{202f}中"), vec![0xe9, 0xab, 0xa0, 0xbb, 0x97, 0x92, 0xa0, b'?']);
        // Helvetica: « a » is 556, « i » 222, « W » bold 944 thousandths.
        assert!((width("ai", Font::Regular, 10.0) - 7.78).abs() < 0.001);
        assert!((width("W", Font::Bold, 10.0) - 9.44).abs() < 0.001);
        let lines = wrap("un deux trois quatre cinq six sept huit neuf dix", Font::Regular, 10.0, 60.0);
        assert!(lines.len() > 2 && lines.iter().all(|l| width(l, Font::Regular, 10.0) <= 60.0), "{lines:?}");
        assert_eq!(lines.join(" "), "un deux trois quatre cinq six sept huit neuf dix");
        // A word wider than the line is cut inside.
        let long = wrap(&"x".repeat(40), Font::Regular, 10.0, 50.0);
        assert!(long.len() > 1 && long.concat() == "x".repeat(40));
        let fitted = fit("un deux trois quatre cinq six sept huit neuf dix", Font::Regular, 10.0, 60.0, 2);
        assert_eq!(fitted.len(), 2);
        assert!(fitted[1].ends_with('…') && width(&fitted[1], Font::Regular, 10.0) <= 60.0);
        assert_eq!(capitalised("du 4 mars"), "Du 4 mars");
    }

    #[test]
    fn an_attestation_is_a_one_page_pdf() {
        let pdf = attestation_pdf(&Attestation {
            participant_name: "Hélène Lefèvre".into(),
            participant_function: "Adjointe au maire".into(),
            member_name: "Commune de Coulommiers".into(),
            offer_title: "Sobriété énergétique".into(),
            provider_name: "CAUE 77".into(),
            session_starts_at: utc(2026, 12, 6, 8, 30),
            session_ends_at: utc(2026, 12, 6, 11, 30),
            place: "Melun".into(),
            issued_at: utc(2026, 12, 7, 10, 0),
            reference: "ATT-2026-000001".into(),
        });
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Helvetica-Bold") && text.contains("/WinAnsiEncoding") && text.contains("/Count 1"));
    }

    #[test]
    fn the_sheet_has_a_page_per_eighteen_participants_and_at_least_one() {
        for (rows, pages) in [(0, 1), (1, 1), (18, 1), (19, 2), (25, 2), (36, 2), (37, 3)] {
            let pdf = attendance_sheet_pdf(&sheet(rows));
            assert!(pdf.starts_with(b"%PDF-"));
            let text = String::from_utf8_lossy(&pdf);
            assert!(text.contains(&format!("/Count {pages}")), "{rows} rows: {pages} pages expected");
        }
    }
}
