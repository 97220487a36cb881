//! Exports, free of I/O: Cross-Industry Invoice (CII D16B) XML in the Factur-X EN 16931 profile and UBL 2.1
//! (EN 16931 CIUS) for invoices (type 380) and credit notes (type 381), and CSV for accounting. Money is
//! formatted from integer cents. An invoice names the accepted quote it bills as its project reference (BT-11)
//! and the member's purchase order number (BT-13).

use id77_proto::billing::v1 as pb;

/// Guideline of the Factur-X EN 16931 (COMFORT) profile.
pub const EN16931_GUIDELINE: &str = "urn:cen.eu:en16931:2017";
/// ISO 6523 scheme of a SIREN (BT-47-1).
pub const SIREN_SCHEME: &str = "0002";
/// ISO 6523 / EAS scheme of a SIRET: the seller's identifier and electronic address (Chorus Pro routing).
pub const SIRET_SCHEME: &str = "0009";
/// Name of the project reference (BT-11) of an invoice: the accepted quote whose number is its id.
pub const QUOTE_PROJECT_NAME: &str = "Devis accepté";
/// Payment terms printed on invoices (BT-20).
pub const PAYMENT_TERMS: &str = "Paiement à 30 jours à réception, par virement au comptable public";

/// Escapes text for XML content and attribute values.
pub fn xml_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 forbids are dropped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// `12345` cents → `"123.45"`; negative amounts keep their sign.
pub fn amount(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Basis points → percent with two decimals (`2000` → `"20.00"`).
fn percent(bp: i32) -> String {
    amount(i64::from(bp))
}

/// `YYYY-MM-DD` (or an RFC 3339 timestamp's date) → `YYYYMMDD` (format 102).
fn date102(date: &str) -> String {
    date.chars().filter(char::is_ascii_digit).take(8).collect()
}

fn issue_date(at: Option<&prost_types::Timestamp>) -> String {
    at.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .map(|t| (t + chrono::Duration::hours(1)).format("%Y%m%d").to_string())
        .unwrap_or_default()
}

/// The parts of an invoice or credit note the CII needs.
struct Doc<'a> {
    number: &'a str,
    type_code: &'a str,
    issue_date: String,
    issuer_code: &'a str,
    buyer_siren: &'a str,
    member_id: &'a str,
    seller: Option<&'a pb::Party>,
    buyer: Option<&'a pb::Party>,
    lines: &'a [pb::InvoiceLine],
    net: i64,
    vat: i64,
    gross: i64,
    vat_rate_bp: Option<i32>,
    vat_note: &'a str,
    currency: &'a str,
    due_date: Option<&'a str>,
    /// The invoice a credit note cancels (BT-25).
    preceding: Option<&'a str>,
    note: Option<&'a str>,
    /// The accepted quote an invoice bills, as the project reference (BT-11): its number and a name.
    project: Option<(&'a str, &'a str)>,
    /// The member's purchase order number (BT-13).
    order_reference: Option<&'a str>,
}

/// VAT category: standard rate (S) when a rate applies, exempt (E, with the mention) otherwise.
fn category(rate: Option<i32>) -> (&'static str, String) {
    match rate {
        Some(bp) if bp > 0 => ("S", percent(bp)),
        Some(_) => ("Z", percent(0)),
        None => ("E", percent(0)),
    }
}

/// A party of the header agreement (`ram:SellerTradeParty` or `ram:BuyerTradeParty`) in the CII order: seller
/// identifier (SIRET), name, legal organisation (SIREN, trading name), address, electronic address (SIRET),
/// VAT number. `fallback_name` names a party issued before parties were recorded.
fn cii_party(tag: &str, p: &pb::Party, fallback_name: &str, fallback_siren: &str) -> String {
    let e = xml_escape;
    let mut x = format!("<ram:{tag}>");
    let seller = tag == "SellerTradeParty";
    if seller && !p.siret.is_empty() {
        x.push_str(&format!("<ram:GlobalID schemeID=\"{SIRET_SCHEME}\">{}</ram:GlobalID>", e(&p.siret)));
    }
    let name = if p.name.is_empty() { fallback_name } else { &p.name };
    x.push_str(&format!("<ram:Name>{}</ram:Name>", e(name)));
    let siren = if p.siren.is_empty() { fallback_siren } else { &p.siren };
    if !siren.is_empty() || !p.trading_name.is_empty() {
        x.push_str("<ram:SpecifiedLegalOrganization>");
        if !siren.is_empty() {
            x.push_str(&format!("<ram:ID schemeID=\"{SIREN_SCHEME}\">{}</ram:ID>", e(siren)));
        }
        if !p.trading_name.is_empty() {
            x.push_str(&format!("<ram:TradingBusinessName>{}</ram:TradingBusinessName>", e(&p.trading_name)));
        }
        x.push_str("</ram:SpecifiedLegalOrganization>");
    }
    x.push_str("<ram:PostalTradeAddress>");
    if !p.postcode.is_empty() {
        x.push_str(&format!("<ram:PostcodeCode>{}</ram:PostcodeCode>", e(&p.postcode)));
    }
    if !p.address_line.is_empty() {
        x.push_str(&format!("<ram:LineOne>{}</ram:LineOne>", e(&p.address_line)));
    }
    if !p.city.is_empty() {
        x.push_str(&format!("<ram:CityName>{}</ram:CityName>", e(&p.city)));
    }
    let country = if p.country_code.is_empty() { crate::parties::COUNTRY } else { &p.country_code };
    x.push_str(&format!("<ram:CountryID>{}</ram:CountryID></ram:PostalTradeAddress>", e(country)));
    if seller && !p.siret.is_empty() {
        x.push_str(&format!(
            "<ram:URIUniversalCommunication><ram:URIID schemeID=\"{SIRET_SCHEME}\">{}</ram:URIID>\
             </ram:URIUniversalCommunication>",
            e(&p.siret)
        ));
    }
    if !p.vat_id.is_empty() {
        x.push_str(&format!(
            "<ram:SpecifiedTaxRegistration><ram:ID schemeID=\"VA\">{}</ram:ID></ram:SpecifiedTaxRegistration>",
            e(&p.vat_id)
        ));
    }
    x.push_str(&format!("</ram:{tag}>"));
    x
}

fn cii(d: &Doc<'_>) -> String {
    let e = xml_escape;
    let cur = e(d.currency);
    let (cat, rate) = category(d.vat_rate_bp);
    let mut x = String::with_capacity(4096);
    x.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rsm:CrossIndustryInvoice \
         xmlns:rsm=\"urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100\" \
         xmlns:ram=\"urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100\" \
         xmlns:qdt=\"urn:un:unece:uncefact:data:standard:QualifiedDataType:100\" \
         xmlns:udt=\"urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100\">\n",
    );
    x.push_str(&format!(
        "<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter><ram:ID>{EN16931_GUIDELINE}</ram:ID>\
         </ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>\n"
    ));
    x.push_str(&format!(
        "<rsm:ExchangedDocument><ram:ID>{}</ram:ID><ram:TypeCode>{}</ram:TypeCode>\
         <ram:IssueDateTime><udt:DateTimeString format=\"102\">{}</udt:DateTimeString></ram:IssueDateTime>",
        e(d.number),
        d.type_code,
        d.issue_date
    ));
    for note in [Some(d.vat_note).filter(|n| !n.is_empty()), d.note].into_iter().flatten() {
        x.push_str(&format!("<ram:IncludedNote><ram:Content>{}</ram:Content></ram:IncludedNote>", e(note)));
    }
    x.push_str("</rsm:ExchangedDocument>\n<rsm:SupplyChainTradeTransaction>\n");
    for (i, line) in d.lines.iter().enumerate() {
        x.push_str(&format!(
            "<ram:IncludedSupplyChainTradeLineItem>\
             <ram:AssociatedDocumentLineDocument><ram:LineID>{}</ram:LineID></ram:AssociatedDocumentLineDocument>\
             <ram:SpecifiedTradeProduct><ram:Name>{}</ram:Name></ram:SpecifiedTradeProduct>\
             <ram:SpecifiedLineTradeAgreement><ram:NetPriceProductTradePrice><ram:ChargeAmount>{}</ram:ChargeAmount>\
             </ram:NetPriceProductTradePrice></ram:SpecifiedLineTradeAgreement>\
             <ram:SpecifiedLineTradeDelivery><ram:BilledQuantity unitCode=\"C62\">{}</ram:BilledQuantity>\
             </ram:SpecifiedLineTradeDelivery>\
             <ram:SpecifiedLineTradeSettlement><ram:ApplicableTradeTax><ram:TypeCode>VAT</ram:TypeCode>\
             <ram:CategoryCode>{cat}</ram:CategoryCode><ram:RateApplicablePercent>{rate}</ram:RateApplicablePercent>\
             </ram:ApplicableTradeTax><ram:SpecifiedTradeSettlementLineMonetarySummation>\
             <ram:LineTotalAmount>{}</ram:LineTotalAmount></ram:SpecifiedTradeSettlementLineMonetarySummation>\
             </ram:SpecifiedLineTradeSettlement></ram:IncludedSupplyChainTradeLineItem>\n",
            i + 1,
            e(&line.label),
            amount(line.unit_price_cents),
            line.quantity,
            amount(line.net_cents)
        ));
    }
    let empty = pb::Party::default();
    // The header agreement in the order of the schema: buyer reference, seller, buyer, purchase order (BT-13),
    // project (BT-11).
    let order = d
        .order_reference
        .map(|o| {
            format!(
                "<ram:BuyerOrderReferencedDocument><ram:IssuerAssignedID>{}</ram:IssuerAssignedID>\
                 </ram:BuyerOrderReferencedDocument>",
                e(o)
            )
        })
        .unwrap_or_default();
    let project = d
        .project
        .map(|(id, name)| {
            format!(
                "<ram:SpecifiedProcuringProject><ram:ID>{}</ram:ID><ram:Name>{}</ram:Name>\
                 </ram:SpecifiedProcuringProject>",
                e(id),
                e(name)
            )
        })
        .unwrap_or_default();
    x.push_str(&format!(
        "<ram:ApplicableHeaderTradeAgreement><ram:BuyerReference>{}</ram:BuyerReference>{}{}{order}{project}\
         </ram:ApplicableHeaderTradeAgreement>\n<ram:ApplicableHeaderTradeDelivery>\
         <ram:ActualDeliverySupplyChainEvent><ram:OccurrenceDateTime><udt:DateTimeString format=\"102\">{}\
         </udt:DateTimeString></ram:OccurrenceDateTime></ram:ActualDeliverySupplyChainEvent>\
         </ram:ApplicableHeaderTradeDelivery>\n",
        e(d.member_id),
        cii_party("SellerTradeParty", d.seller.unwrap_or(&empty), d.issuer_code, ""),
        cii_party("BuyerTradeParty", d.buyer.unwrap_or(&empty), &format!("SIREN {}", d.buyer_siren), d.buyer_siren),
        // The delivery (BT-72): the work was reported done when the document was issued.
        d.issue_date,
    ));
    x.push_str(&format!(
        "<ram:ApplicableHeaderTradeSettlement><ram:InvoiceCurrencyCode>{cur}</ram:InvoiceCurrencyCode>\
         <ram:ApplicableTradeTax><ram:CalculatedAmount>{}</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode>",
        amount(d.vat)
    ));
    if cat == "E" {
        let reason = if d.vat_note.is_empty() { "TVA non applicable" } else { d.vat_note };
        x.push_str(&format!("<ram:ExemptionReason>{}</ram:ExemptionReason>", e(reason)));
    }
    x.push_str(&format!(
        "<ram:BasisAmount>{}</ram:BasisAmount><ram:CategoryCode>{cat}</ram:CategoryCode>\
         <ram:RateApplicablePercent>{rate}</ram:RateApplicablePercent></ram:ApplicableTradeTax>",
        amount(d.net)
    ));
    if let Some(due) = d.due_date {
        x.push_str(&format!(
            "<ram:SpecifiedTradePaymentTerms><ram:Description>{}</ram:Description>\
             <ram:DueDateDateTime><udt:DateTimeString format=\"102\">{}\
             </udt:DateTimeString></ram:DueDateDateTime></ram:SpecifiedTradePaymentTerms>",
            e(PAYMENT_TERMS),
            date102(due)
        ));
    }
    x.push_str(&format!(
        "<ram:SpecifiedTradeSettlementHeaderMonetarySummation><ram:LineTotalAmount>{net}</ram:LineTotalAmount>\
         <ram:TaxBasisTotalAmount>{net}</ram:TaxBasisTotalAmount>\
         <ram:TaxTotalAmount currencyID=\"{cur}\">{}</ram:TaxTotalAmount>\
         <ram:GrandTotalAmount>{gross}</ram:GrandTotalAmount><ram:DuePayableAmount>{gross}</ram:DuePayableAmount>\
         </ram:SpecifiedTradeSettlementHeaderMonetarySummation>",
        amount(d.vat),
        net = amount(d.net),
        gross = amount(d.gross)
    ));
    if let Some(invoice) = d.preceding {
        x.push_str(&format!(
            "<ram:InvoiceReferencedDocument><ram:IssuerAssignedID>{}</ram:IssuerAssignedID></ram:InvoiceReferencedDocument>",
            e(invoice)
        ));
    }
    x.push_str(
        "</ram:ApplicableHeaderTradeSettlement>\n</rsm:SupplyChainTradeTransaction>\n</rsm:CrossIndustryInvoice>\n",
    );
    x
}

/// `YYYYMMDD` → `YYYY-MM-DD` (UBL dates).
fn iso_date(yyyymmdd: &str) -> String {
    match (yyyymmdd.get(0..4), yyyymmdd.get(4..6), yyyymmdd.get(6..8)) {
        (Some(y), Some(m), Some(d)) => format!("{y}-{m}-{d}"),
        _ => String::new(),
    }
}

/// A UBL party (`cac:Party`) in the order of the UBL 2.1 schema: electronic address and identifier (the
/// seller's SIRET, scheme 0009), trading name, address, VAT number, legal entity (name, SIREN).
fn ubl_party(p: &pb::Party, seller: bool, fallback_name: &str, fallback_siren: &str) -> String {
    let e = xml_escape;
    let mut x = String::from("<cac:Party>");
    if seller && !p.siret.is_empty() {
        x.push_str(&format!(
            "<cbc:EndpointID schemeID=\"{SIRET_SCHEME}\">{s}</cbc:EndpointID><cac:PartyIdentification>\
             <cbc:ID schemeID=\"{SIRET_SCHEME}\">{s}</cbc:ID></cac:PartyIdentification>",
            s = e(&p.siret)
        ));
    }
    if !p.trading_name.is_empty() {
        x.push_str(&format!("<cac:PartyName><cbc:Name>{}</cbc:Name></cac:PartyName>", e(&p.trading_name)));
    }
    x.push_str("<cac:PostalAddress>");
    if !p.address_line.is_empty() {
        x.push_str(&format!("<cbc:StreetName>{}</cbc:StreetName>", e(&p.address_line)));
    }
    if !p.city.is_empty() {
        x.push_str(&format!("<cbc:CityName>{}</cbc:CityName>", e(&p.city)));
    }
    if !p.postcode.is_empty() {
        x.push_str(&format!("<cbc:PostalZone>{}</cbc:PostalZone>", e(&p.postcode)));
    }
    let country = if p.country_code.is_empty() { crate::parties::COUNTRY } else { &p.country_code };
    x.push_str(&format!(
        "<cac:Country><cbc:IdentificationCode>{}</cbc:IdentificationCode></cac:Country></cac:PostalAddress>",
        e(country)
    ));
    if !p.vat_id.is_empty() {
        x.push_str(&format!(
            "<cac:PartyTaxScheme><cbc:CompanyID>{}</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme>\
             </cac:PartyTaxScheme>",
            e(&p.vat_id)
        ));
    }
    let name = if p.name.is_empty() { fallback_name } else { &p.name };
    x.push_str(&format!("<cac:PartyLegalEntity><cbc:RegistrationName>{}</cbc:RegistrationName>", e(name)));
    let siren = if p.siren.is_empty() { fallback_siren } else { &p.siren };
    if !siren.is_empty() {
        x.push_str(&format!("<cbc:CompanyID schemeID=\"{SIREN_SCHEME}\">{}</cbc:CompanyID>", e(siren)));
    }
    x.push_str("</cac:PartyLegalEntity></cac:Party>");
    x
}

/// UBL 2.1 (EN 16931 CIUS): an `Invoice` (type 380) or, for type 381, a `CreditNote` referring to its invoice.
fn ubl(d: &Doc<'_>) -> String {
    let e = xml_escape;
    let credit = d.type_code == "381";
    let (root, line_tag, quantity_tag) = if credit {
        ("CreditNote", "CreditNoteLine", "CreditedQuantity")
    } else {
        ("Invoice", "InvoiceLine", "InvoicedQuantity")
    };
    let cur = e(d.currency);
    let (cat, rate) = category(d.vat_rate_bp);
    let money = |cents: i64| format!("currencyID=\"{cur}\">{}", amount(cents));
    let mut x = String::with_capacity(4096);
    x.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:{root}-2\" \
         xmlns:cac=\"urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2\" \
         xmlns:cbc=\"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\">\n"
    ));
    x.push_str(&format!(
        "<cbc:CustomizationID>{EN16931_GUIDELINE}</cbc:CustomizationID><cbc:ID>{}</cbc:ID>\
         <cbc:IssueDate>{}</cbc:IssueDate>",
        e(d.number),
        iso_date(&d.issue_date)
    ));
    if let (false, Some(due)) = (credit, d.due_date) {
        x.push_str(&format!("<cbc:DueDate>{}</cbc:DueDate>", iso_date(&date102(due))));
    }
    x.push_str(&format!("<cbc:{root}TypeCode>{}</cbc:{root}TypeCode>", d.type_code));
    for note in [Some(d.vat_note).filter(|n| !n.is_empty()), d.note].into_iter().flatten() {
        x.push_str(&format!("<cbc:Note>{}</cbc:Note>", e(note)));
    }
    x.push_str(&format!(
        "<cbc:DocumentCurrencyCode>{cur}</cbc:DocumentCurrencyCode><cbc:BuyerReference>{}</cbc:BuyerReference>\n",
        e(d.member_id)
    ));
    // In the order of the UBL schema: order reference (BT-13), billing reference (BT-25), project reference
    // (BT-11; an Invoice only).
    if let Some(order) = d.order_reference {
        x.push_str(&format!("<cac:OrderReference><cbc:ID>{}</cbc:ID></cac:OrderReference>\n", e(order)));
    }
    if let Some(invoice) = d.preceding {
        x.push_str(&format!(
            "<cac:BillingReference><cac:InvoiceDocumentReference><cbc:ID>{}</cbc:ID></cac:InvoiceDocumentReference>\
             </cac:BillingReference>\n",
            e(invoice)
        ));
    }
    if let (false, Some((project, _))) = (credit, d.project) {
        x.push_str(&format!("<cac:ProjectReference><cbc:ID>{}</cbc:ID></cac:ProjectReference>\n", e(project)));
    }
    let empty = pb::Party::default();
    x.push_str(&format!(
        "<cac:AccountingSupplierParty>{}</cac:AccountingSupplierParty>\n\
         <cac:AccountingCustomerParty>{}</cac:AccountingCustomerParty>\n",
        ubl_party(d.seller.unwrap_or(&empty), true, d.issuer_code, ""),
        ubl_party(d.buyer.unwrap_or(&empty), false, &format!("SIREN {}", d.buyer_siren), d.buyer_siren),
    ));
    x.push_str(&format!(
        "<cac:Delivery><cbc:ActualDeliveryDate>{}</cbc:ActualDeliveryDate></cac:Delivery>\n",
        iso_date(&d.issue_date)
    ));
    if d.due_date.is_some() {
        x.push_str(&format!("<cac:PaymentTerms><cbc:Note>{}</cbc:Note></cac:PaymentTerms>\n", e(PAYMENT_TERMS)));
    }
    x.push_str(&format!(
        "<cac:TaxTotal><cbc:TaxAmount {}</cbc:TaxAmount><cac:TaxSubtotal><cbc:TaxableAmount {}</cbc:TaxableAmount>\
         <cbc:TaxAmount {}</cbc:TaxAmount><cac:TaxCategory><cbc:ID>{cat}</cbc:ID><cbc:Percent>{rate}</cbc:Percent>",
        money(d.vat),
        money(d.net),
        money(d.vat)
    ));
    if cat == "E" {
        let reason = if d.vat_note.is_empty() { "TVA non applicable" } else { d.vat_note };
        x.push_str(&format!("<cbc:TaxExemptionReason>{}</cbc:TaxExemptionReason>", e(reason)));
    }
    x.push_str(
        "<cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:TaxCategory></cac:TaxSubtotal></cac:TaxTotal>\n",
    );
    x.push_str(&format!(
        "<cac:LegalMonetaryTotal><cbc:LineExtensionAmount {}</cbc:LineExtensionAmount>\
         <cbc:TaxExclusiveAmount {}</cbc:TaxExclusiveAmount><cbc:TaxInclusiveAmount {}</cbc:TaxInclusiveAmount>\
         <cbc:PayableAmount {}</cbc:PayableAmount></cac:LegalMonetaryTotal>\n",
        money(d.net),
        money(d.net),
        money(d.gross),
        money(d.gross)
    ));
    for (i, line) in d.lines.iter().enumerate() {
        x.push_str(&format!(
            "<cac:{line_tag}><cbc:ID>{}</cbc:ID><cbc:{quantity_tag} unitCode=\"C62\">{}</cbc:{quantity_tag}>\
             <cbc:LineExtensionAmount {}</cbc:LineExtensionAmount><cac:Item><cbc:Name>{}</cbc:Name>\
             <cac:ClassifiedTaxCategory><cbc:ID>{cat}</cbc:ID><cbc:Percent>{rate}</cbc:Percent>\
             <cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:ClassifiedTaxCategory></cac:Item>\
             <cac:Price><cbc:PriceAmount {}</cbc:PriceAmount></cac:Price></cac:{line_tag}>\n",
            i + 1,
            line.quantity,
            money(line.net_cents),
            e(&line.label),
            money(line.unit_price_cents)
        ));
    }
    x.push_str(&format!("</{root}>\n"));
    x
}

fn invoice_doc(i: &pb::Invoice) -> Doc<'_> {
    Doc {
        number: &i.number,
        type_code: "380",
        issue_date: issue_date(i.issued_at.as_ref()),
        issuer_code: &i.issuer_code,
        buyer_siren: &i.buyer_siren,
        member_id: &i.member_id,
        seller: i.seller.as_ref(),
        buyer: i.buyer.as_ref(),
        lines: &i.lines,
        net: i.total_net_cents,
        vat: i.total_vat_cents,
        gross: i.total_gross_cents,
        vat_rate_bp: i.vat_rate_bp,
        vat_note: &i.vat_note,
        currency: &i.currency,
        due_date: Some(&i.due_date),
        preceding: None,
        note: None,
        project: Some(i.quote_number.as_str()).filter(|n| !n.is_empty()).map(|n| (n, QUOTE_PROJECT_NAME)),
        order_reference: Some(i.purchase_order_number.as_str()).filter(|n| !n.is_empty()),
    }
}

fn credit_note_doc(c: &pb::CreditNote) -> Doc<'_> {
    Doc {
        number: &c.number,
        type_code: "381",
        issue_date: issue_date(c.issued_at.as_ref()),
        issuer_code: &c.issuer_code,
        buyer_siren: &c.buyer_siren,
        member_id: &c.member_id,
        seller: c.seller.as_ref(),
        buyer: c.buyer.as_ref(),
        lines: &c.lines,
        net: c.total_net_cents,
        vat: c.total_vat_cents,
        gross: c.total_gross_cents,
        vat_rate_bp: c.vat_rate_bp,
        vat_note: &c.vat_note,
        currency: &c.currency,
        due_date: None,
        preceding: Some(&c.invoice_number),
        note: Some(&c.reason),
        project: None,
        order_reference: None,
    }
}

/// An invoice as UBL 2.1 `Invoice` (EN 16931, type 380).
pub fn invoice_ubl(i: &pb::Invoice) -> String {
    ubl(&invoice_doc(i))
}

/// A credit note as UBL 2.1 `CreditNote` (EN 16931, type 381), referring to the invoice it cancels.
pub fn credit_note_ubl(c: &pb::CreditNote) -> String {
    ubl(&credit_note_doc(c))
}

/// An invoice as CII XML (Factur-X EN 16931 profile, type 380).
pub fn invoice_xml(i: &pb::Invoice) -> String {
    cii(&invoice_doc(i))
}

/// A credit note as CII XML (Factur-X EN 16931 profile, type 381), referring to the invoice it cancels.
pub fn credit_note_xml(c: &pb::CreditNote) -> String {
    cii(&credit_note_doc(c))
}

mod csv;
pub use csv::{CSV_HEADER, credit_notes_csv, invoices_csv};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_escaping_and_csv_fields() {
        assert_eq!(amount(0), "0.00");
        assert_eq!(amount(5), "0.05");
        assert_eq!(amount(123_456), "1234.56");
        assert_eq!(amount(-150), "-1.50");
        assert_eq!(amount(i64::MIN), "-92233720368547758.08");
        assert_eq!(xml_escape("a<b>&\"c'\u{1}"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(date102("2026-02-09"), "20260209");
    }

    #[test]
    fn an_invoice_exports_its_totals_vat_and_escaped_texts() {
        let invoice = pb::Invoice {
            number: "F-caue77-2026-000001".into(),
            issuer_code: "caue77".into(),
            buyer_siren: "217701234".into(),
            lines: vec![pb::InvoiceLine {
                label: "Études & <conseil>".into(),
                quantity: 3,
                unit_price_cents: 45_000,
                net_cents: 135_000,
            }],
            total_net_cents: 135_000,
            total_vat_cents: 27_000,
            total_gross_cents: 162_000,
            vat_rate_bp: Some(2000),
            currency: "EUR".into(),
            due_date: "2026-02-09".into(),
            issued_at: Some(prost_types::Timestamp { seconds: 1_768_046_400, nanos: 0 }),
            status: pb::InvoiceStatus::Issued.into(),
            ..Default::default()
        };
        let xml = invoice_xml(&invoice);
        assert!(xml.contains("<ram:TypeCode>380</ram:TypeCode>"));
        assert!(xml.contains("Études &amp; &lt;conseil&gt;"));
        assert!(xml.contains("<ram:GrandTotalAmount>1620.00</ram:GrandTotalAmount>"));
        assert!(xml.contains("<ram:CategoryCode>S</ram:CategoryCode><ram:RateApplicablePercent>20.00"));
        assert!(xml.contains("<udt:DateTimeString format=\"102\">20260209</udt:DateTimeString>"));
    }
}
