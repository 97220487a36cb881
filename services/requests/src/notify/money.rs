//! The texts of the money mails added for issue 21: an invoice issued for a request (to the member's users who
//! want status mails). Amounts excluding VAT (HT), VAT with its rate, including VAT (TTC), as billing computed
//! them.

use super::domain::{amounts, long_date};

/// The mail kind of an issued invoice.
pub const KIND_INVOICE_ISSUED: &str = "invoice_issued";
/// The portal's page of the member's invoices, where a session's invoice is found (it has no request page).
pub const INVOICES_PATH: &str = "/factures";

/// What an invoice mail says of the invoice.
#[derive(Debug, Clone, Copy)]
pub struct InvoiceMail<'a> {
    /// `F-<issuer>-<year>-<seq>`.
    pub number: &'a str,
    pub request_subject: &'a str,
    /// The code of the provider that issued it (its name is looked up for the text).
    pub provider_code: &'a str,
    /// Who issued it as the invoice states it (the seller's trading or legal name; may be empty): named when
    /// requests does not know the provider's name.
    pub seller: &'a str,
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

/// Subject and body (without the link) of the mail telling the member's users an invoice was issued, by the
/// provider named `provider_name` (None: requests does not know it; the seller's name then, else none).
pub fn invoice_issued_mail(name: &str, i: &InvoiceMail<'_>, provider_name: Option<&str>) -> (String, String) {
    let number = one_line(i.number);
    let request = one_line(i.request_subject);
    let subject = one_line(&format!("[ID 77] Facture {number} émise pour votre demande « {request} »"));
    let name = one_line(name);
    let mut body = if name.is_empty() { "Bonjour,".to_owned() } else { format!("Bonjour {name},") };
    body.push_str(&format!("\n\nLa facture {number} a été émise pour votre demande « {request} »"));
    if let Some(by) = provider_name.or(Some(i.seller)).map(one_line).filter(|p| !p.is_empty()) {
        body.push_str(&format!(" par {by}"));
    }
    if !i.quote_number.trim().is_empty() {
        body.push_str(&format!(", au montant du devis {} accepté", one_line(i.quote_number)));
    }
    body.push_str(".\n\n");
    body.push_str(&amounts(i.net_cents, i.vat_cents, i.gross_cents, i.vat_rate_bp, i.vat_note));
    if let Some(day) = i.due_on {
        body.push_str(&format!("À régler avant le {}.\n", long_date(day)));
    }
    body.push_str("\nLa facture est téléchargeable (PDF, Factur-X, CSV) depuis la page de la demande.\n");
    (subject, body)
}

/// Subject and body (without the link) of the mail telling the member's users that the invoice of a held training
/// session was issued; `i.request_subject` is what the invoice bills (its line: the session and the participants).
pub fn session_invoice_issued_mail(name: &str, i: &InvoiceMail<'_>, provider_name: Option<&str>) -> (String, String) {
    let number = one_line(i.number);
    let what = one_line(i.request_subject);
    let subject = one_line(&format!("[ID 77] Facture {number} émise : {what}"));
    let name = one_line(name);
    let mut body = if name.is_empty() { "Bonjour,".to_owned() } else { format!("Bonjour {name},") };
    body.push_str(&format!("\n\nLa facture {number} a été émise"));
    if let Some(by) = provider_name.or(Some(i.seller)).map(one_line).filter(|p| !p.is_empty()) {
        body.push_str(&format!(" par {by}"));
    }
    body.push_str(&format!(" pour : {what}.\n\n"));
    body.push_str(&amounts(i.net_cents, i.vat_cents, i.gross_cents, i.vat_rate_bp, i.vat_note));
    if let Some(day) = i.due_on {
        body.push_str(&format!("À régler avant le {}.\n", long_date(day)));
    }
    body.push_str("\nLa facture est téléchargeable (PDF, Factur-X, CSV) depuis la page « Factures » du portail.\n");
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_invoice_mail_names_the_session_and_the_invoices_page_not_a_request() {
        let mail = InvoiceMail {
            number: "F-caue77-2027-000004",
            request_subject: "Participation à la session « Urbanisme durable » du 12 janvier 2027 — 2 participants",
            provider_code: "caue77",
            seller: "",
            net_cents: 24_000,
            vat_cents: 4_800,
            gross_cents: 28_800,
            vat_rate_bp: Some(2_000),
            vat_note: "",
            quote_number: "",
            due_on: chrono::NaiveDate::from_ymd_opt(2027, 2, 11),
        };
        let (subject, body) = session_invoice_issued_mail("Marie Dupont", &mail, Some("CAUE de Seine-et-Marne"));
        assert!(subject.starts_with("[ID 77] Facture F-caue77-2027-000004 émise : Participation à la session"));
        assert!(body.contains("par CAUE de Seine-et-Marne pour : Participation à la session « Urbanisme durable »"));
        assert!(body.contains("240,00") && body.contains("288,00"), "{body}");
        assert!(body.contains("page « Factures »") && !body.contains("demande"), "{body}");
        // The provider by name; its code only inside the invoice's number.
        assert!(!body.replace("F-caue77-2027-000004", "").contains("caue77"), "{body}");
    }

    #[test]
    fn the_invoice_mail_states_ht_vat_and_ttc_and_names_the_provider() {
        let mail = InvoiceMail {
            number: "F-caue77-2026-000001",
            request_subject: "Rénovation\nde l'école",
            provider_code: "caue77",
            seller: "Conseil d'architecture, d'urbanisme et de l'environnement",
            net_cents: 1_845_050,
            vat_cents: 369_010,
            gross_cents: 2_214_060,
            vat_rate_bp: Some(2000),
            vat_note: "",
            quote_number: "D-caue77-2026-000001",
            due_on: chrono::NaiveDate::from_ymd_opt(2027, 1, 5),
        };
        let (subject, body) = invoice_issued_mail("Marie Dupont", &mail, Some("CAUE 77"));
        assert_eq!(subject, "[ID 77] Facture F-caue77-2026-000001 émise pour votre demande « Rénovation de l'école »");
        assert!(body.starts_with("Bonjour Marie Dupont,\n\nLa facture F-caue77-2026-000001 a été émise"), "{body}");
        assert!(body.contains("par CAUE 77, au montant du devis D-caue77-2026-000001 accepté."), "{body}");
        assert!(
            body.contains(
                "Montant HT : 18\u{202f}450,50\u{a0}€\nTVA (20\u{a0}%) : 3\u{202f}690,10\u{a0}€\nMontant TTC : 22\u{202f}140,60\u{a0}€\n"
            ),
            "{body}"
        );
        assert!(body.contains("À régler avant le 5 janvier 2027."), "{body}");
        // Requests does not know the provider's name: the seller's, never the code.
        let (_, body) = invoice_issued_mail("", &mail, None);
        assert!(body.contains("par Conseil d'architecture, d'urbanisme et de l'environnement, au montant"), "{body}");
        let anonymous = InvoiceMail { seller: " ", ..mail };
        let (_, body) = invoice_issued_mail("", &anonymous, None);
        assert!(body.contains("pour votre demande « Rénovation de l'école », au montant"), "{body}");
        let exempt = InvoiceMail {
            vat_rate_bp: None,
            vat_note: "TVA non applicable, art. 293 B du CGI",
            vat_cents: 0,
            gross_cents: 1_845_050,
            ..mail
        };
        let (_, body) = invoice_issued_mail("", &exempt, Some("CAUE 77"));
        let expected = "TVA : TVA non applicable, art. 293 B du CGI\nMontant TTC : 18\u{202f}450,50\u{a0}€";
        assert!(body.starts_with("Bonjour,") && body.contains(expected), "{body}");
    }
}
