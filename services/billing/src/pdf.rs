//! PDF rendering for humans of quotes, invoices and credit notes, free of I/O: one A4 page in the standard
//! Helvetica fonts with the WinAnsi encoding (French accents, « € »), issuer and buyer blocks, lines, totals,
//! VAT mention, due date and payment terms. Written with `pdf-writer`; no font is embedded (the 14 standard
//! fonts are every reader's).

use id77_proto::billing::v1 as pb;
use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str, TextStr};

use crate::export::PAYMENT_TERMS;

const A4: (f32, f32) = (595.28, 841.89);
const MARGIN: f32 = 50.0;
const REGULAR: Name<'static> = Name(b"F1");
const BOLD: Name<'static> = Name(b"F2");

/// Unicode → Windows-1252 (the PDF WinAnsiEncoding) byte; characters outside it become `?`.
fn win_ansi(c: char) -> u8 {
    match c {
        '\u{20}'..='\u{7e}' => c as u8,
        // Latin-1 supplement is identical; no-break spaces included.
        '\u{a0}'..='\u{ff}' => c as u32 as u8,
        '\u{202f}' => 0xa0,
        '€' => 0x80,
        '‚' => 0x82,
        '„' => 0x84,
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

/// Text in WinAnsi bytes.
pub fn encode(text: &str) -> Vec<u8> {
    text.chars().map(win_ansi).collect()
}

/// Width in points of `text` in Helvetica at `size`: exact for digits, spaces and separators (all that amounts
/// contain), an average for letters.
fn width(text: &str, size: f32) -> f32 {
    let units: u32 = text
        .chars()
        .map(|c| match c {
            '0'..='9' | '€' => 556,
            ' ' | '\u{a0}' | '\u{202f}' | ',' | '.' => 278,
            '-' => 333,
            '%' => 889,
            _ => 556,
        })
        .sum();
    units as f32 * size / 1000.0
}

/// `123456` cents → `1 234,56 €` (French format, narrow no-break space as thousands separator).
pub fn euros(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    let units = (abs / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push('\u{a0}');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped},{:02}\u{a0}€", abs % 100)
}

/// `YYYY-MM-DD` → `DD/MM/YYYY`.
fn french_date(iso: &str) -> String {
    match (iso.get(0..4), iso.get(5..7), iso.get(8..10)) {
        (Some(y), Some(m), Some(d)) => format!("{d}/{m}/{y}"),
        _ => iso.to_owned(),
    }
}

fn issued_on(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map(|t| (t + chrono::Duration::hours(1)).format("%d/%m/%Y").to_string())
        .unwrap_or_default()
}

/// Splits `text` into lines of at most `max` characters, at spaces when possible.
fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > max {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
        while line.chars().count() > max {
            let head: String = line.chars().take(max).collect();
            line = line.chars().skip(max).collect();
            lines.push(head);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// What a page shows, whatever the document.
struct Sheet<'a> {
    title: &'a str,
    number: &'a str,
    dates: Vec<(String, String)>,
    seller: Option<&'a pb::Party>,
    issuer_code: &'a str,
    buyer: Option<&'a pb::Party>,
    buyer_siren: &'a str,
    lines: Vec<pb::InvoiceLine>,
    net: i64,
    vat: i64,
    gross: i64,
    vat_rate_bp: Option<i32>,
    vat_note: &'a str,
    gross_label: &'a str,
    notes: Vec<String>,
}

/// Writes text at a position.
struct Page {
    content: Content,
}

impl Page {
    fn text(&mut self, x: f32, y: f32, font: Name<'_>, size: f32, text: &str) {
        let bytes = encode(text);
        self.content.begin_text();
        self.content.set_font(font, size);
        self.content.next_line(x, y);
        self.content.show(Str(&bytes));
        self.content.end_text();
    }

    fn right(&mut self, right_x: f32, y: f32, font: Name<'_>, size: f32, text: &str) {
        self.text(right_x - width(text, size), y, font, size, text);
    }

    fn rule(&mut self, y: f32) {
        self.content.set_line_width(0.5);
        self.content.move_to(MARGIN, y);
        self.content.line_to(A4.0 - MARGIN, y);
        self.content.stroke();
    }
}

fn party_lines(p: Option<&pb::Party>, fallback_name: &str, fallback_siren: &str) -> Vec<String> {
    let empty = pb::Party::default();
    let p = p.unwrap_or(&empty);
    let mut lines = Vec::new();
    lines.extend(wrap(if p.name.is_empty() { fallback_name } else { &p.name }, 42));
    if !p.trading_name.is_empty() {
        lines.extend(wrap(&p.trading_name, 42));
    }
    if !p.address_line.is_empty() {
        lines.extend(wrap(&p.address_line, 42));
    }
    if !p.postcode.is_empty() || !p.city.is_empty() {
        lines.push(format!("{} {}", p.postcode, p.city).trim().to_owned());
    }
    let siren = if p.siren.is_empty() { fallback_siren } else { &p.siren };
    if !siren.is_empty() {
        lines.push(format!("SIREN {siren}"));
    }
    if !p.siret.is_empty() {
        lines.push(format!("SIRET {}", p.siret));
    }
    if !p.vat_id.is_empty() {
        lines.push(format!("N° TVA {}", p.vat_id));
    }
    lines
}

fn render(s: &Sheet<'_>) -> Vec<u8> {
    let (w, h) = A4;
    let right = w - MARGIN;
    let mut page = Page { content: Content::new() };
    let mut y = h - MARGIN - 10.0;
    page.text(MARGIN, y, BOLD, 20.0, s.title);
    page.right(right, y, BOLD, 12.0, &format!("N° {}", s.number));
    y -= 22.0;
    for (label, value) in &s.dates {
        page.right(right, y, REGULAR, 10.0, &format!("{label} : {value}"));
        y -= 14.0;
    }
    y -= 14.0;
    // Issuer (left) and buyer (right).
    let top = y;
    page.text(MARGIN, y, BOLD, 10.0, "Émetteur");
    page.text(w / 2.0 + 10.0, y, BOLD, 10.0, "Destinataire");
    y -= 14.0;
    let seller = party_lines(s.seller, s.issuer_code, "");
    let buyer = party_lines(s.buyer, "", s.buyer_siren);
    for (i, line) in seller.iter().enumerate() {
        page.text(MARGIN, y - 12.0 * i as f32, REGULAR, 9.0, line);
    }
    for (i, line) in buyer.iter().enumerate() {
        page.text(w / 2.0 + 10.0, y - 12.0 * i as f32, REGULAR, 9.0, line);
    }
    y = top - 14.0 - 12.0 * seller.len().max(buyer.len()) as f32 - 20.0;
    // Lines.
    let (qty_x, unit_x, total_x) = (right - 190.0, right - 90.0, right);
    page.text(MARGIN, y, BOLD, 9.0, "Désignation");
    page.right(qty_x, y, BOLD, 9.0, "Qté");
    page.right(unit_x, y, BOLD, 9.0, "Prix unitaire HT");
    page.right(total_x, y, BOLD, 9.0, "Total HT");
    y -= 6.0;
    page.rule(y);
    y -= 14.0;
    for line in &s.lines {
        let label = wrap(&line.label, 60);
        page.right(qty_x, y, REGULAR, 9.0, &line.quantity.to_string());
        page.right(unit_x, y, REGULAR, 9.0, &euros(line.unit_price_cents));
        page.right(total_x, y, REGULAR, 9.0, &euros(line.net_cents));
        for (i, part) in label.iter().enumerate() {
            page.text(MARGIN, y - 12.0 * i as f32, REGULAR, 9.0, part);
        }
        y -= 12.0 * label.len().max(1) as f32 + 4.0;
    }
    page.rule(y + 6.0);
    y -= 10.0;
    // Totals.
    let vat_label = match s.vat_rate_bp {
        Some(bp) => format!("TVA {},{:02} %", bp / 100, bp % 100),
        None => "TVA".to_owned(),
    };
    for (label, cents, font) in
        [("Total HT", s.net, REGULAR), (vat_label.as_str(), s.vat, REGULAR), (s.gross_label, s.gross, BOLD)]
    {
        page.right(unit_x, y, font, 10.0, label);
        page.right(total_x, y, font, 10.0, &euros(cents));
        y -= 15.0;
    }
    y -= 15.0;
    let mut notes: Vec<String> = Vec::new();
    if !s.vat_note.is_empty() {
        notes.push(s.vat_note.to_owned());
    }
    notes.extend(s.notes.iter().cloned());
    for note in notes {
        for part in wrap(&note, 95) {
            page.text(MARGIN, y, REGULAR, 9.0, &part);
            y -= 12.0;
        }
    }

    let mut pdf = Pdf::new();
    let (catalog, tree, page_id, regular, bold, content_id, info) =
        (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4), Ref::new(5), Ref::new(6), Ref::new(7));
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page_id]).count(1);
    {
        let mut p = pdf.page(page_id);
        p.media_box(Rect::new(0.0, 0.0, w, h));
        p.parent(tree);
        p.contents(content_id);
        let mut resources = p.resources();
        let mut fonts = resources.fonts();
        fonts.pair(REGULAR, regular);
        fonts.pair(BOLD, bold);
    }
    pdf.type1_font(regular).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.stream(content_id, &page.content.finish());
    pdf.document_info(info).title(TextStr(&format!("{} {}", s.title, s.number))).producer(TextStr("ID 77"));
    pdf.finish()
}

/// An invoice as PDF, with the accepted quote it bills and the member's purchase order number.
pub fn invoice_pdf(i: &pb::Invoice) -> Vec<u8> {
    let mut dates = vec![
        ("Date d'émission".into(), issued_on(i.issued_at.as_ref())),
        ("Date d'échéance".into(), french_date(&i.due_date)),
    ];
    if !i.quote_number.is_empty() {
        dates.push(("Devis accepté".into(), i.quote_number.clone()));
    }
    if !i.purchase_order_number.is_empty() {
        dates.push(("Bon de commande".into(), i.purchase_order_number.clone()));
    }
    render(&Sheet {
        title: "Facture",
        number: &i.number,
        dates,
        seller: i.seller.as_ref(),
        issuer_code: &i.issuer_code,
        buyer: i.buyer.as_ref(),
        buyer_siren: &i.buyer_siren,
        lines: i.lines.clone(),
        net: i.total_net_cents,
        vat: i.total_vat_cents,
        gross: i.total_gross_cents,
        vat_rate_bp: i.vat_rate_bp,
        vat_note: &i.vat_note,
        gross_label: "Net à payer TTC",
        notes: vec![format!("Conditions de paiement : {PAYMENT_TERMS} ; échéance le {}.", french_date(&i.due_date))],
    })
}

/// A credit note as PDF, naming the invoice it cancels.
pub fn credit_note_pdf(c: &pb::CreditNote) -> Vec<u8> {
    render(&Sheet {
        title: "Avoir",
        number: &c.number,
        dates: vec![
            ("Date d'émission".into(), issued_on(c.issued_at.as_ref())),
            ("Facture annulée".into(), c.invoice_number.clone()),
        ],
        seller: c.seller.as_ref(),
        issuer_code: &c.issuer_code,
        buyer: c.buyer.as_ref(),
        buyer_siren: &c.buyer_siren,
        lines: c.lines.clone(),
        net: c.total_net_cents,
        vat: c.total_vat_cents,
        gross: c.total_gross_cents,
        vat_rate_bp: c.vat_rate_bp,
        vat_note: &c.vat_note,
        gross_label: "Total de l'avoir TTC",
        notes: vec![format!("Motif : {}", c.reason)],
    })
}

/// A quote as PDF; an amount to be stated by the provider says so instead of totals of 0. A proposed quote
/// shows until when it is valid; any other shows its status, when and why (who signed an accepted one).
pub fn quote_pdf(q: &pb::Quote) -> Vec<u8> {
    let totals = crate::domain::quote_totals(q.amount_cents, q.vat_rate_bp, &q.vat_note);
    let mut notes = Vec::new();
    if q.amount_to_be_stated {
        notes.push("Montant à préciser par le prestataire (prestation sur devis).".to_owned());
    }
    let mut dates = vec![("Date d'émission".into(), issued_on(q.issued_at.as_ref()))];
    let decided = issued_on(q.decided_at.as_ref());
    let by = if q.decided_by_name.is_empty() { String::new() } else { format!(" par {}", q.decided_by_name) };
    let reason = if q.decision_reason.is_empty() { String::new() } else { format!(" : {}", q.decision_reason) };
    match pb::QuoteStatus::try_from(q.status).unwrap_or(pb::QuoteStatus::Unspecified) {
        pb::QuoteStatus::Accepted => {
            dates.push(("Statut".into(), "ACCEPTÉ".into()));
            let mut note = format!("Devis accepté le {decided}{by}, signataire : {}", q.signatory_name);
            if !q.purchase_order_number.is_empty() {
                note.push_str(&format!(" ; bon de commande n° {}", q.purchase_order_number));
            }
            notes.push(format!("{note}."));
        }
        pb::QuoteStatus::Refused => {
            dates.push(("Statut".into(), "REFUSÉ".into()));
            notes.push(format!("Devis refusé le {decided}{by}{reason}"));
        }
        pb::QuoteStatus::Voided => {
            dates.push(("Statut".into(), "ANNULÉ".into()));
            notes.push(format!("Devis annulé le {decided}{reason}"));
        }
        pb::QuoteStatus::Expired => {
            dates.push(("Statut".into(), "EXPIRÉ".into()));
            notes.push(format!("Devis expiré le {decided} sans réponse."));
        }
        pb::QuoteStatus::Issued | pb::QuoteStatus::Unspecified => {
            if q.expires_at.is_some() {
                dates.push(("Valable jusqu'au".into(), issued_on(q.expires_at.as_ref())));
            }
            notes.push("À accepter ou refuser par un administrateur de la collectivité.".to_owned());
        }
    }
    notes.push("Devis établi pour la demande d'accompagnement ; la facture suivra la réalisation.".to_owned());
    render(&Sheet {
        title: "Devis",
        number: &q.number,
        dates,
        seller: q.seller.as_ref(),
        issuer_code: &q.issuer_code,
        buyer: q.buyer.as_ref(),
        buyer_siren: "",
        lines: vec![pb::InvoiceLine {
            label: q.label.clone(),
            quantity: 1,
            unit_price_cents: q.amount_cents,
            net_cents: q.amount_cents,
        }],
        net: totals.net_cents,
        vat: totals.vat_cents,
        gross: totals.gross_cents,
        vat_rate_bp: q.vat_rate_bp,
        vat_note: &q.vat_note,
        gross_label: "Total TTC",
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn french_text_is_encoded_in_win_ansi() {
        assert_eq!(encode("é€à ç"), vec![0xe9, 0x80, 0xe0, b' ', 0xe7]);
        assert_eq!(
            encode("l’Œuvre — “x”"),
            vec![b'l', 0x92, 0x8c, b'u', b'v', b'r', b'e', b' ', 0x97, b' ', 0x93, b'x', 0x94]
        );
        assert_eq!(encode("中"), vec![b'?']);
    }

    #[test]
    fn amounts_and_dates_are_french() {
        assert_eq!(euros(0), "0,00\u{a0}€");
        assert_eq!(euros(162_000), "1\u{a0}620,00\u{a0}€");
        assert_eq!(euros(123_456_789), "1\u{a0}234\u{a0}567,89\u{a0}€");
        assert_eq!(euros(-5), "-0,05\u{a0}€");
        assert_eq!(french_date("2026-02-09"), "09/02/2026");
        assert_eq!(wrap("un deux trois", 7), vec!["un deux", "trois"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
    }

    #[test]
    fn a_pdf_is_a_one_page_pdf_document() {
        let pdf = invoice_pdf(&pb::Invoice {
            number: "F-caue77-2026-000001".into(),
            lines: vec![pb::InvoiceLine { label: "Étude".into(), quantity: 1, unit_price_cents: 100, net_cents: 100 }],
            ..Default::default()
        });
        assert!(pdf.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(text.contains("/Helvetica") && text.contains("/WinAnsiEncoding") && text.contains("/Count 1"));
    }
}
