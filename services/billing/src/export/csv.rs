//! The accounting CSV, for French spreadsheets (issue 21): UTF-8 with a byte order mark (so that a spreadsheet
//! reads the accents), « ; » between fields, French headers, amounts with a decimal comma (`1620,00`, no
//! thousands separator so that the cell stays a number), dates as `jj/mm/aaaa` in Europe/Paris. One row per line
//! of the document. Nothing in the platform reads it back: it is made for people.

use chrono::{DateTime, NaiveDate, Utc};
use id77_platform::time;
use id77_proto::billing::v1 as pb;

/// The byte order mark that opens the file.
pub const BOM: &str = "\u{feff}";

/// Header of the accounting CSV (after the BOM).
pub const CSV_HEADER: &str = "Document;Numéro;Date d'émission;Échéance;Émetteur;SIREN de l'acheteur;Libellé;Quantité;Prix unitaire HT;Total HT;Taux de TVA (%);TVA;Total TTC;Devise;Statut;Mention TVA\r\n";

/// One CSV field (RFC 4180): quoted when it holds a separator, quote or line break; a leading `=`, `+`, `-`
/// or `@` is prefixed with `'` so that spreadsheets do not run it as a formula.
fn field(raw: &str) -> String {
    let guarded = if raw.starts_with(['=', '+', '-', '@']) { format!("'{raw}") } else { raw.to_owned() };
    if guarded.contains([';', '"', '\n', '\r']) { format!("\"{}\"", guarded.replace('"', "\"\"")) } else { guarded }
}

/// Cents → euros with a decimal comma (`162000` → `1620,00`). A negative amount keeps its sign: the cell is a
/// number (no formula guard for a leading `-` here, the value is ours).
pub fn amount(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{},{:02}", abs / 100, abs % 100)
}

/// Basis points → percent with a decimal comma (`2000` → `20,00`).
fn percent(bp: i32) -> String {
    amount(i64::from(bp))
}

/// The day in Europe/Paris of an instant (UTC+1, UTC+2 in summer time), as `jj/mm/aaaa`.
pub fn paris_date(at: DateTime<Utc>) -> String {
    time::paris(at).format("%d/%m/%Y").to_string()
}

fn issue_date(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(|t| DateTime::from_timestamp(t.seconds, 0)).map(paris_date).unwrap_or_default()
}

/// `YYYY-MM-DD` → `jj/mm/aaaa` (empty or unreadable: as it is).
fn day(date: &str) -> String {
    NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
        .map_or_else(|_| date.trim().to_owned(), |d| d.format("%d/%m/%Y").to_string())
}

fn invoice_status(status: i32) -> &'static str {
    match pb::InvoiceStatus::try_from(status) {
        Ok(pb::InvoiceStatus::Issued) => "émise",
        Ok(pb::InvoiceStatus::Sent) => "envoyée",
        Ok(pb::InvoiceStatus::Paid) => "payée",
        Ok(pb::InvoiceStatus::Cancelled) => "annulée",
        _ => "",
    }
}

fn row(fields: &[String]) -> String {
    let mut line = fields.iter().map(|f| field(f)).collect::<Vec<_>>().join(";");
    line.push_str("\r\n");
    line
}

/// Invoices as accounting CSV, one row per line.
pub fn invoices_csv(invoices: &[pb::Invoice]) -> String {
    let mut out = format!("{BOM}{CSV_HEADER}");
    for i in invoices {
        let date = issue_date(i.issued_at.as_ref());
        for line in &i.lines {
            out.push_str(&row(&[
                "Facture".to_owned(),
                i.number.clone(),
                date.clone(),
                day(&i.due_date),
                i.issuer_code.clone(),
                i.buyer_siren.clone(),
                line.label.clone(),
                line.quantity.to_string(),
                amount(line.unit_price_cents),
                amount(i.total_net_cents),
                i.vat_rate_bp.map(percent).unwrap_or_default(),
                amount(i.total_vat_cents),
                amount(i.total_gross_cents),
                i.currency.clone(),
                invoice_status(i.status).to_owned(),
                i.vat_note.clone(),
            ]));
        }
    }
    out
}

/// Credit notes as accounting CSV, one row per line, with the header of invoices: `Document` is « Avoir »,
/// amounts are positive (the document cancels them), `Statut` names the invoice cancelled.
pub fn credit_notes_csv(notes: &[pb::CreditNote]) -> String {
    let mut out = format!("{BOM}{CSV_HEADER}");
    for c in notes {
        let date = issue_date(c.issued_at.as_ref());
        for line in &c.lines {
            out.push_str(&row(&[
                "Avoir".to_owned(),
                c.number.clone(),
                date.clone(),
                String::new(),
                c.issuer_code.clone(),
                c.buyer_siren.clone(),
                line.label.clone(),
                line.quantity.to_string(),
                amount(line.unit_price_cents),
                amount(c.total_net_cents),
                c.vat_rate_bp.map(percent).unwrap_or_default(),
                amount(c.total_vat_cents),
                amount(c.total_gross_cents),
                c.currency.clone(),
                format!("annule la facture {}", c.invoice_number),
                c.vat_note.clone(),
            ]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice() -> pb::Invoice {
        pb::Invoice {
            number: "F-caue77-2026-000001".into(),
            issuer_code: "caue77".into(),
            buyer_siren: "217701234".into(),
            lines: vec![pb::InvoiceLine {
                label: "Études; \"conseil\"".into(),
                quantity: 3,
                unit_price_cents: 45_000,
                net_cents: 135_000,
            }],
            total_net_cents: 1_845_050,
            total_vat_cents: 369_010,
            total_gross_cents: 2_214_060,
            vat_rate_bp: Some(550),
            currency: "EUR".into(),
            due_date: "2027-01-05".into(),
            // 2026-12-06T23:30:00Z: already the 7th in Paris (UTC+1 in winter).
            issued_at: Some(prost_types::Timestamp { seconds: 1_796_599_800, nanos: 0 }),
            status: pb::InvoiceStatus::Issued.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_csv_is_made_for_french_spreadsheets() {
        let csv = invoices_csv(&[invoice()]);
        assert!(csv.starts_with("\u{feff}Document;Numéro;Date d'émission;Échéance;"), "BOM then French headers: {csv}");
        assert!(csv.as_bytes().starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 byte order mark");
        let rows: Vec<&str> = csv.trim_start_matches(BOM).split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(rows.len(), 2, "{csv}");
        assert_eq!(
            rows[1],
            "Facture;F-caue77-2026-000001;07/12/2026;05/01/2027;caue77;217701234;\"Études; \"\"conseil\"\"\";3;450,00;18450,50;5,50;3690,10;22140,60;EUR;émise;"
        );
        assert_eq!(rows[0].split(';').count(), rows[1].split(';').count() - 1, "one more ; inside the quoted label");
    }

    #[test]
    fn amounts_dates_and_fields_the_french_way() {
        assert_eq!(amount(0), "0,00");
        assert_eq!(amount(5), "0,05");
        assert_eq!(amount(123_456), "1234,56");
        assert_eq!(amount(-150), "-1,50");
        assert_eq!(percent(2000), "20,00");
        assert_eq!(day("2026-02-09"), "09/02/2026");
        assert_eq!(day(""), "");
        let at = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.to_utc()).unwrap_or_default();
        // Summer time (UTC+2) from the last Sunday of March to the last Sunday of October, at 01:00 UTC.
        assert_eq!(paris_date(at("2026-07-14T22:30:00Z")), "15/07/2026");
        assert_eq!(paris_date(at("2026-07-14T21:30:00Z")), "14/07/2026");
        assert_eq!(paris_date(at("2026-12-31T23:00:00Z")), "01/01/2027");
        assert_eq!(paris_date(at("2026-12-31T22:59:00Z")), "31/12/2026");
        assert_eq!(paris_date(at("2026-03-29T00:59:00Z")), "29/03/2026");
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a;b"), "\"a;b\"");
        assert_eq!(field("=SUM(A1)"), "'=SUM(A1)");
    }

    #[test]
    fn a_credit_note_says_which_invoice_it_cancels() {
        let note = pb::CreditNote {
            number: "A-caue77-2026-000001".into(),
            invoice_number: "F-caue77-2026-000001".into(),
            lines: invoice().lines,
            total_net_cents: 135_000,
            total_vat_cents: 27_000,
            total_gross_cents: 162_000,
            vat_rate_bp: Some(2000),
            currency: "EUR".into(),
            ..Default::default()
        };
        let csv = credit_notes_csv(&[note]);
        assert!(csv.starts_with(&format!("{BOM}{CSV_HEADER}")));
        assert!(csv.contains("Avoir;A-caue77-2026-000001;;;"), "{csv}");
        assert!(csv.contains(";1350,00;20,00;270,00;1620,00;EUR;annule la facture F-caue77-2026-000001;"), "{csv}");
    }
}
