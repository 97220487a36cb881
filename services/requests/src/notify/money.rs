//! The texts of the money mails added for issue 21: an invoice issued for a request (to the member's users who
//! want status mails). Amounts excluding VAT (HT), VAT with its rate, including VAT (TTC), as billing computed
//! them.

use super::domain::euros;

/// The mail kind of an issued invoice.
pub const KIND_INVOICE_ISSUED: &str = "invoice_issued";

/// What an invoice mail says of the invoice.
#[derive(Debug, Clone, Copy)]
pub struct InvoiceMail<'a> {
    /// `F-<issuer>-<year>-<seq>`.
    pub number: &'a str,
    pub request_subject: &'a str,
    /// The provider that issued it (its name, else its code).
    pub provider: &'a str,
    pub net_cents: i64,
    pub vat_cents: i64,
    pub gross_cents: i64,
    /// VAT rate in basis points (None: VAT does not apply, `vat_note` says why).
    pub vat_rate_bp: Option<i32>,
    pub vat_note: &'a str,
    /// The accepted quote it bills (may be empty).
    pub quote_number: &'a str,
    /// Payment due (None: not said).
    pub due_on: Option<chrono::NaiveDate>,
}

/// Text on one line, without control characters, at most 150 characters.
fn one_line(text: &str) -> String {
    let line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 150 { format!("{}…", line.chars().take(149).collect::<String>()) } else { line }
}

/// `2000` basis points → `20 %`, `550` → `5,5 %`.
fn percent(bp: i32) -> String {
    let (whole, rest) = (bp / 100, bp % 100);
    if rest == 0 { format!("{whole} %") } else { format!("{whole},{} %", format!("{rest:02}").trim_end_matches('0')) }
}

/// The amounts, one per line: HT, TVA (rate) or why none, TTC.
pub fn amounts(net_cents: i64, vat_cents: i64, gross_cents: i64, vat_rate_bp: Option<i32>, vat_note: &str) -> String {
    let vat = match vat_rate_bp {
        Some(rate) => format!("TVA ({}) : {}", percent(rate), euros(vat_cents)),
        None if vat_note.trim().is_empty() => "TVA : non applicable".to_owned(),
        None => format!("TVA : {}", one_line(vat_note)),
    };
    format!("Montant HT : {}\n{vat}\nMontant TTC : {}\n", euros(net_cents), euros(gross_cents))
}

/// Subject and body (without the link) of the mail telling the member's users an invoice was issued.
pub fn invoice_issued_mail(name: &str, i: &InvoiceMail<'_>) -> (String, String) {
    let number = one_line(i.number);
    let request = one_line(i.request_subject);
    let subject = one_line(&format!("[ID 77] Facture {number} émise pour votre demande « {request} »"));
    let name = one_line(name);
    let mut body = if name.is_empty() { "Bonjour,".to_owned() } else { format!("Bonjour {name},") };
    body.push_str(&format!("\n\nLa facture {number} a été émise pour votre demande « {request} »"));
    if !i.provider.trim().is_empty() {
        body.push_str(&format!(" par {}", one_line(i.provider)));
    }
    if !i.quote_number.trim().is_empty() {
        body.push_str(&format!(", au montant du devis {} accepté", one_line(i.quote_number)));
    }
    body.push_str(".\n\n");
    body.push_str(&amounts(i.net_cents, i.vat_cents, i.gross_cents, i.vat_rate_bp, i.vat_note));
    if let Some(day) = i.due_on {
        body.push_str(&format!("À régler avant le {}.\n", day.format("%d/%m/%Y")));
    }
    body.push_str("\nLa facture est téléchargeable (PDF, Factur-X, CSV) depuis la page de la demande.\n");
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_invoice_mail_states_ht_vat_and_ttc() {
        let mail = InvoiceMail {
            number: "F-caue77-2026-000001",
            request_subject: "Rénovation\nde l'école",
            provider: "CAUE de Seine-et-Marne",
            net_cents: 1_845_050,
            vat_cents: 369_010,
            gross_cents: 2_214_060,
            vat_rate_bp: Some(2000),
            vat_note: "",
            quote_number: "D-caue77-2026-000001",
            due_on: chrono::NaiveDate::from_ymd_opt(2027, 1, 5),
        };
        let (subject, body) = invoice_issued_mail("Marie Dupont", &mail);
        assert_eq!(subject, "[ID 77] Facture F-caue77-2026-000001 émise pour votre demande « Rénovation de l'école »");
        assert!(body.starts_with("Bonjour Marie Dupont,\n\nLa facture F-caue77-2026-000001 a été émise"), "{body}");
        assert!(body.contains("par CAUE de Seine-et-Marne, au montant du devis D-caue77-2026-000001 accepté."));
        let expected = format!(
            "Montant HT : {}\nTVA (20 %) : {}\nMontant TTC : {}\n",
            euros(1_845_050),
            euros(369_010),
            euros(2_214_060)
        );
        assert!(body.contains(&expected), "{body}");
        assert_eq!(euros(2_214_060), "22\u{202f}140,60\u{a0}€");
        assert!(body.contains("À régler avant le 05/01/2027."));
        let exempt = InvoiceMail {
            vat_rate_bp: None,
            vat_note: "TVA non applicable, art. 293 B du CGI",
            vat_cents: 0,
            gross_cents: 1_845_050,
            ..mail
        };
        let (_, body) = invoice_issued_mail("", &exempt);
        let expected = format!("TVA : TVA non applicable, art. 293 B du CGI\nMontant TTC : {}", euros(1_845_050));
        assert!(body.starts_with("Bonjour,") && body.contains(&expected), "{body}");
        assert_eq!(percent(550), "5,5 %");
    }
}
