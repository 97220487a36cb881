//! Billing against the local PostgreSQL and NATS: tariffs from the catalogue's events, one quote per accepted
//! referral of a billed offer, gapless numbers per issuer and year, also under duplicates, replays, events out
//! of order and concurrency. Every call carries an access token; a member's users see their member's quotes,
//! a provider's agents those their provider issued, a referent those of the members it follows, the
//! coordinator all of them (docs/authorization.md).

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use id77_billing::flow::quotes::{self, QuoteDraft};
use id77_billing::{MIGRATOR, domain};
use id77_platform::auth::{Claims, Role};
use id77_platform::testing::{TestKeys, drop_database, fresh_database_url};
use id77_platform::{streams, time};
use id77_proto::billing::v1 as pb;
use id77_proto::catalogue::v1 as catalogue;
use id77_proto::membership::v1 as membership;
use id77_proto::routing::v1 as routing;
use prost::Message;
use uuid::Uuid;

mod support;

use support::world::*;

#[tokio::test]
async fn accepted_referrals_of_a_billed_offer_get_one_gapless_quote_each() -> anyhow::Result<()> {
    let mut w = World::start("billing").await?;
    let result = async {
        let offer = offer("dir-routes", true, 250_000, 1);
        w.publish_offer(&offer).await?;
        let first = referral(&offer);
        let first_msg = Uuid::now_v7().to_string();
        ensure!(!w.publish_referral(&first, &first_msg).await?, "first publish reported as a duplicate");
        let quote = w.wait_quote(&first.request_id).await?;
        ensure!(quote.number == format!("D-dir-routes-{}-000001", year()), "{}", quote.number);
        ensure!(quote.sequence == 1 && quote.year == year() && quote.issuer_code == "dir-routes");
        ensure!(quote.amount_cents == 250_000 && quote.currency == "EUR");
        ensure!(quote.referral_id == first.referral_id && quote.member_id == first.member_id);
        ensure!(quote.offer_id == offer.id && quote.label == offer.title);
        ensure!(quote.status == i32::from(pb::QuoteStatus::Issued) && quote.issued_at.is_some());

        // The same message again: JetStream drops it within its duplicate window.
        ensure!(w.publish_referral(&first, &first_msg).await?, "same Nats-Msg-Id not reported as a duplicate");
        // A replay under another message id gets through JetStream; the handler finds the existing quote.
        let replay_msg = Uuid::now_v7().to_string();
        ensure!(!w.publish_referral(&first, &replay_msg).await?);
        w.wait_processed("billing-referrals", &replay_msg).await?;
        ensure!(w.quote_count().await? == 1, "a replay issued a second quote");
        ensure!(w.quotes_of(&first.request_id).await? == vec![quote.clone()]);

        // The next referral takes the next number.
        let second = referral(&offer);
        w.publish_referral(&second, &Uuid::now_v7().to_string()).await?;
        let quote2 = w.wait_quote(&second.request_id).await?;
        ensure!(quote2.number == format!("D-dir-routes-{}-000002", year()), "{}", quote2.number);

        // Read side: by id, by member, paginated.
        let coordinator = w.coordinator.clone();
        let got = w.get_as(&coordinator, &quote.id).await?;
        ensure!(got == quote);
        let missing = w.get_as(&coordinator, &Uuid::now_v7().to_string()).await;
        ensure!(missing.err().map(|s| s.code()) == Some(tonic::Code::NotFound));
        let invalid = w.get_as(&coordinator, "D-1").await;
        ensure!(invalid.err().map(|s| s.code()) == Some(tonic::Code::InvalidArgument));
        let by_member = pb::ListQuotesRequest { member_id: second.member_id.clone(), ..Default::default() };
        ensure!(w.list_as(&coordinator, by_member).await? == vec![quote2.clone()]);
        let page1 = pb::ListQuotesRequest { page_size: 1, ..Default::default() };
        let page1 = w.client.list_quotes(with_token(page1, &coordinator)).await?;
        let page1 = page1.into_inner();
        ensure!(page1.quotes == vec![quote.clone()] && !page1.next_page_token.is_empty());
        let page2 = pb::ListQuotesRequest { page_size: 1, page_token: page1.next_page_token, ..Default::default() };
        let page2 = w.client.list_quotes(with_token(page2, &coordinator)).await?.into_inner();
        ensure!(page2.quotes == vec![quote2.clone()], "{page2:?}");

        // Each quote was announced once.
        let events = w.wait_billing_events(2).await?;
        let announced: Vec<_> = events.into_iter().filter_map(|e| e.quote).collect();
        ensure!(announced == vec![quote, quote2], "{announced:?}");
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

#[tokio::test]
async fn a_referral_arriving_before_its_offer_is_retried_until_the_offer_arrives() -> anyhow::Result<()> {
    let mut w = World::start("billing").await?;
    let result = async {
        let offer = offer("caue77", true, 90_000, 1);
        let early = referral(&offer);
        let msg = Uuid::now_v7().to_string();
        w.publish_referral(&early, &msg).await?;
        tokio::time::sleep(Duration::from_millis(1200)).await;
        ensure!(w.quote_count().await? == 0, "quoted without a tariff");
        let inbox: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox WHERE message_id = $1")
            .bind(&msg)
            .fetch_one(&w.pool)
            .await?;
        ensure!(inbox == 0, "the early referral was recorded as processed");
        w.publish_offer(&offer).await?;
        let quote = w.wait_quote(&early.request_id).await?;
        ensure!(quote.number == format!("D-caue77-{}-000001", year()) && quote.amount_cents == 90_000);
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

#[tokio::test]
async fn a_free_offer_yields_no_quote() -> anyhow::Result<()> {
    let w = World::start("billing").await?;
    let result = async {
        let offer = offer("dir-culture", false, 0, 1);
        w.publish_offer(&offer).await?;
        let msg = Uuid::now_v7().to_string();
        w.publish_referral(&referral(&offer), &msg).await?;
        w.wait_processed("billing-referrals", &msg).await?;
        ensure!(w.quote_count().await? == 0, "a free offer was quoted");
        let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox").fetch_one(&w.pool).await?;
        ensure!(outbox == 0, "an event was enqueued for a free offer");
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

#[tokio::test]
async fn quotes_follow_the_offer_price_rule_and_vat() -> anyhow::Result<()> {
    let mut w = World::start("billing").await?;
    let result = async {
        let rule = |kind: catalogue::PriceKind, amount_cents, days, floor_cents, cap_cents| catalogue::PriceRule {
            kind: kind.into(),
            amount_cents,
            days,
            floor_cents,
            cap_cents,
        };
        // Per inhabitant: 0.50 € per inhabitant, at least 500 €, at most 2 000 €, VAT 20 %.
        let per = catalogue::Offer {
            price_rule: Some(rule(catalogue::PriceKind::PerInhabitant, 50, 0, 50_000, 200_000)),
            vat_rate_bp: Some(2000),
            ..offer("caue77", false, 0, 1)
        };
        w.publish_offer(&per).await?;
        // The referral arrives before the member's population: retried until it is known.
        let r = referral(&per);
        w.publish_referral(&r, &Uuid::now_v7().to_string()).await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        ensure!(w.quote_count().await? == 0, "quoted without the member's population");
        let approved = membership::MemberApproved {
            member_id: r.member_id.clone(),
            siren: "217700000".into(),
            population: 1_234,
            occurred_at: Some(time::to_proto(time::now())),
            ..Default::default()
        };
        let approved_id = Uuid::now_v7().to_string();
        w.publish("id77.membership.member.approved", approved.encode_to_vec(), &approved_id).await?;
        w.wait_processed("billing-members", &approved_id).await?;
        let quote = w.wait_quote(&r.request_id).await?;
        ensure!(quote.amount_cents == 61_700, "per inhabitant: {quote:?}");
        ensure!(quote.vat_rate_bp == Some(2000) && quote.vat_note.is_empty() && !quote.amount_to_be_stated);
        // The quote carries its VAT (20 % of 617,00 €, rounded half up) and its total including VAT.
        ensure!((quote.vat_cents, quote.total_incl_vat_cents) == (12_340, 74_040), "{quote:?}");

        // Daily rate, VAT not applicable with the offer's mention.
        let daily = catalogue::Offer {
            price_rule: Some(rule(catalogue::PriceKind::DailyRate, 45_000, 3, 0, 0)),
            billed: true,
            price_cents: 135_000,
            vat_note: "TVA non applicable, art. 293 B du CGI".into(),
            ..offer("caue77", true, 135_000, 1)
        };
        w.publish_offer(&daily).await?;
        let r = referral(&daily);
        w.publish_referral(&r, &Uuid::now_v7().to_string()).await?;
        let quote = w.wait_quote(&r.request_id).await?;
        ensure!(quote.amount_cents == 135_000 && quote.vat_rate_bp.is_none(), "daily rate: {quote:?}");
        ensure!((quote.vat_cents, quote.total_incl_vat_cents) == (0, 135_000), "no VAT: {quote:?}");
        ensure!(quote.vat_note == "TVA non applicable, art. 293 B du CGI");

        // On quote: amount to be stated by the provider.
        let on_quote = catalogue::Offer {
            price_rule: Some(rule(catalogue::PriceKind::OnQuote, 0, 0, 0, 0)),
            ..offer("caue77", false, 0, 1)
        };
        w.publish_offer(&on_quote).await?;
        let r = referral(&on_quote);
        w.publish_referral(&r, &Uuid::now_v7().to_string()).await?;
        let quote = w.wait_quote(&r.request_id).await?;
        ensure!(quote.amount_cents == 0 && quote.amount_to_be_stated, "on quote: {quote:?}");
        ensure!((quote.vat_cents, quote.total_incl_vat_cents) == (0, 0), "to be stated: {quote:?}");
        ensure!(quote.vat_note == domain::DEFAULT_VAT_NOTE);

        // Free by its rule: no document.
        let free = catalogue::Offer {
            price_rule: Some(rule(catalogue::PriceKind::Free, 0, 0, 0, 0)),
            ..offer("caue77", false, 0, 1)
        };
        w.publish_offer(&free).await?;
        let msg = Uuid::now_v7().to_string();
        w.publish_referral(&referral(&free), &msg).await?;
        w.wait_processed("billing-referrals", &msg).await?;
        ensure!(w.quote_count().await? == 3, "a free offer was quoted");
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

#[tokio::test]
async fn an_accepted_quote_is_invoiced_once_on_request_completed_and_a_credit_note_cancels_the_invoice()
-> anyhow::Result<()> {
    use tonic::Code;
    let mut w = World::start("billing").await?;
    let result = async {
        let daily = catalogue::Offer {
            price_rule: Some(catalogue::PriceRule {
                kind: catalogue::PriceKind::DailyRate.into(),
                amount_cents: 45_000,
                days: 3,
                ..Default::default()
            }),
            vat_rate_bp: Some(2000),
            ..offer("caue77", true, 135_000, 1)
        };
        w.publish_offer(&daily).await?;
        let accepted = referral(&daily);
        let approved = membership::MemberApproved {
            member_id: accepted.member_id.clone(),
            siren: "217701234".into(),
            name: "Commune de Chelles".into(),
            population: 2_000,
            occurred_at: Some(time::to_proto(time::now())),
            ..Default::default()
        };
        w.publish("id77.membership.member.approved", approved.encode_to_vec(), &Uuid::now_v7().to_string()).await?;
        w.publish_referral(&accepted, &Uuid::now_v7().to_string()).await?;
        let proposed = w.wait_quote(&accepted.request_id).await?;
        // A member admin of the member agrees, with the purchase order number (numéro d'engagement).
        let admin = w.member_admin(&accepted.member_id, "Marie Dupont");
        let quote = w.accept_as(&admin, &proposed.id, "Marie Dupont, maire", "EJ-2026-0042").await?;
        ensure!(quote.status() == pb::QuoteStatus::Accepted && quote.purchase_order_number == "EJ-2026-0042");
        // Completed twice under two message ids: one invoice.
        let done = completed(&accepted);
        for _ in 0..2 {
            let id = w.publish_completed(&done).await?;
            w.wait_processed("billing-request-completions", &id).await?;
        }
        let invoice = wait_invoice(&mut w, &accepted.request_id).await?;
        ensure!(w.invoice_count().await? == 1, "a redelivered completion issued a second invoice");
        // It bills the accepted quote: its number (BT-11) and the purchase order number (BT-13).
        ensure!(invoice.quote_id == quote.id && invoice.quote_number == quote.number, "{invoice:?}");
        ensure!(invoice.purchase_order_number == "EJ-2026-0042", "{invoice:?}");
        ensure!(invoice.number == format!("F-caue77-{}-000001", year()), "{}", invoice.number);
        ensure!(invoice.buyer_siren == "217701234" && invoice.member_id == accepted.member_id);
        ensure!(invoice.referral_id == accepted.referral_id && invoice.offer_id == daily.id);
        ensure!(
            (invoice.total_net_cents, invoice.total_vat_cents, invoice.total_gross_cents) == (135_000, 27_000, 162_000),
            "{invoice:?}"
        );
        ensure!(
            invoice.lines.len() == 1 && invoice.lines[0].quantity == 3 && invoice.lines[0].unit_price_cents == 45_000
        );
        ensure!(invoice.lines[0].label == quote.label);
        // Full identities: the CAUE's legal identity from the issuer registry, trading under its catalogue
        // name; the member's name and SIREN from membership.
        let seller = invoice.seller.clone().unwrap_or_default();
        ensure!(seller.name.starts_with("CAUE 77") && seller.siren == "999900012", "{seller:?}");
        ensure!(seller.siret == "99990001200017" && seller.trading_name == "Direction des routes", "{seller:?}");
        ensure!(seller.postcode == "77010" && seller.country_code == "FR" && !seller.address_line.is_empty());
        let buyer = invoice.buyer.clone().unwrap_or_default();
        ensure!(buyer.name == "Commune de Chelles" && buyer.siren == "217701234", "{buyer:?}");
        ensure!(quote.seller == invoice.seller, "the quote names the same seller");
        ensure!(invoice.status() == pb::InvoiceStatus::Issued && invoice.vat_rate_bp == Some(2000));
        let issued = invoice.issued_at.as_ref().and_then(time::from_proto).context("issued_at")?;
        ensure!(invoice.due_date == domain::due_date(issued).format("%Y-%m-%d").to_string(), "{}", invoice.due_date);

        // Exports: Factur-X XML that passes the EN 16931 schema, and accounting CSV.
        let export =
            |format: pb::ExportFormat| pb::ExportInvoiceRequest { id: invoice.id.clone(), format: format.into() };
        let coordinator = w.coordinator.clone();
        let xml =
            w.client.export_invoice(with_token(export(pb::ExportFormat::CiiXml), &coordinator)).await?.into_inner();
        ensure!(xml.content_type == "application/xml" && xml.filename == format!("{}.xml", invoice.number));
        let cii = std::str::from_utf8(&xml.content)?;
        support::check_facturx("invoice", cii)?;
        ensure!(
            cii.contains("<ram:BuyerOrderReferencedDocument><ram:IssuerAssignedID>EJ-2026-0042</ram:IssuerAssignedID>")
                && cii.contains(&format!("<ram:SpecifiedProcuringProject><ram:ID>{}</ram:ID>", quote.number)),
            "BT-11 or BT-13 missing from the CII: {cii}"
        );
        let ubl =
            w.client.export_invoice(with_token(export(pb::ExportFormat::UblXml), &coordinator)).await?.into_inner();
        ensure!(ubl.content_type == "application/xml" && ubl.filename == format!("{}.ubl.xml", invoice.number));
        let ubl_xml = std::str::from_utf8(&ubl.content)?;
        support::check_en16931("invoice-ubl", support::Syntax::Ubl, ubl_xml)?;
        ensure!(
            ubl_xml.contains("<cac:OrderReference><cbc:ID>EJ-2026-0042</cbc:ID></cac:OrderReference>")
                && ubl_xml.contains(&format!("<cac:ProjectReference><cbc:ID>{}</cbc:ID>", quote.number)),
            "BT-11 or BT-13 missing from the UBL: {ubl_xml}"
        );
        let pdf = w.client.export_invoice(with_token(export(pb::ExportFormat::Pdf), &coordinator)).await?.into_inner();
        ensure!(pdf.content_type == "application/pdf" && pdf.filename == format!("{}.pdf", invoice.number));
        let text = support::pdf_text("invoice", &pdf.content)?.replace('\u{a0}', " ");
        ensure!(
            text.contains(&invoice.number) && text.contains("1 620,00 €") && text.contains("Commune de Chelles"),
            "{text}"
        );
        ensure!(text.contains(&quote.number) && text.contains("EJ-2026-0042"), "{text}");
        let quote_pdf =
            |format: pb::ExportFormat| pb::ExportQuoteRequest { id: quote.id.clone(), format: format.into() };
        let file =
            w.client.export_quote(with_token(quote_pdf(pb::ExportFormat::Pdf), &coordinator)).await?.into_inner();
        let text = support::pdf_text("quote", &file.content)?;
        ensure!(file.filename == format!("{}.pdf", quote.number) && text.contains(&quote.number), "{text}");
        ensure!(
            code(w.client.export_quote(with_token(quote_pdf(pb::ExportFormat::CiiXml), &coordinator)).await)?
                == Code::InvalidArgument
        );
        let csv = w.client.export_invoice(with_token(export(pb::ExportFormat::Csv), &coordinator)).await?.into_inner();
        let csv = String::from_utf8(csv.content)?;
        ensure!(csv.lines().count() == 2 && csv.contains(&invoice.number) && csv.contains(";1620,00;"), "{csv}");
        ensure!(csv.starts_with("\u{feff}Document;Numéro;"), "a BOM and French headers: {csv}");
        ensure!(
            code(w.client.export_invoice(with_token(export(pb::ExportFormat::Unspecified), &coordinator)).await)?
                == Code::InvalidArgument
        );

        // The member sees it, another member does not; only the coordinator issues a credit note.
        let member = w.keys.token(Role::MemberUser, Uuid::parse_str(&accepted.member_id).ok(), None);
        let get = pb::GetInvoiceRequest { id: invoice.id.clone() };
        ensure!(w.client.get_invoice(with_token(get.clone(), &member)).await?.into_inner() == invoice);
        let other = w.keys.token(Role::MemberUser, Some(Uuid::now_v7()), None);
        ensure!(code(w.client.get_invoice(with_token(get.clone(), &other)).await)? == Code::NotFound);
        let agent = w.keys.token(Role::ProviderAgent, None, Some("caue77"));
        ensure!(w.client.get_invoice(with_token(get.clone(), &agent)).await.is_ok());
        // Sent, then paid: by the issuing provider or the coordinator only, in order, with sound dates.
        let today = domain::french_date(time::now()).format("%Y-%m-%d").to_string();
        let mark = |mark: pb::InvoiceMark, date: &str, reference: &str| pb::MarkInvoiceRequest {
            id: invoice.id.clone(),
            mark: mark.into(),
            date: date.into(),
            payment_reference: reference.into(),
        };
        let sent = mark(pb::InvoiceMark::Sent, &today, "");
        ensure!(code(w.client.mark_invoice(with_token(sent.clone(), &member)).await)? == Code::PermissionDenied);
        let agent_q = w.keys.token(Role::ProviderAgent, None, Some("dir-eau"));
        ensure!(code(w.client.mark_invoice(with_token(sent.clone(), &agent_q)).await)? == Code::NotFound);
        let future = mark(pb::InvoiceMark::Sent, "2999-01-01", "");
        ensure!(code(w.client.mark_invoice(with_token(future, &agent)).await)? == Code::InvalidArgument);
        let marked = w.client.mark_invoice(with_token(sent.clone(), &agent)).await?.into_inner();
        ensure!(marked.status() == pb::InvoiceStatus::Sent && marked.sent_on == today, "{marked:?}");
        ensure!(code(w.client.mark_invoice(with_token(sent, &agent)).await)? == Code::FailedPrecondition);
        let unreferenced = mark(pb::InvoiceMark::Paid, &today, " ");
        ensure!(code(w.client.mark_invoice(with_token(unreferenced, &coordinator)).await)? == Code::InvalidArgument);
        let paid = mark(pb::InvoiceMark::Paid, &today, "Mandat 2026-0042");
        let marked = w.client.mark_invoice(with_token(paid.clone(), &coordinator)).await?.into_inner();
        ensure!(marked.status() == pb::InvoiceStatus::Paid && marked.paid_on == today && marked.sent_on == today);
        ensure!(marked.payment_reference == "Mandat 2026-0042", "{marked:?}");
        ensure!(code(w.client.mark_invoice(with_token(paid, &coordinator)).await)? == Code::FailedPrecondition);
        // Each transition was announced once through the outbox, refused marks not at all.
        let sent_events = w.billing_messages("id77.billing.invoice.sent", 1).await?;
        let sent_event = pb::InvoiceSent::decode(sent_events[0].as_slice())?.invoice.context("invoice")?;
        ensure!(sent_event.id == invoice.id && sent_event.status() == pb::InvoiceStatus::Sent, "{sent_event:?}");
        ensure!(sent_event.sent_on == today);
        let paid_events = w.billing_messages("id77.billing.invoice.paid", 1).await?;
        let paid_event = pb::InvoicePaid::decode(paid_events[0].as_slice())?.invoice.context("invoice")?;
        ensure!(paid_event.status() == pb::InvoiceStatus::Paid, "{paid_event:?}");
        ensure!(paid_event.payment_reference == "Mandat 2026-0042" && paid_event.paid_on == today);
        let credit = pb::IssueCreditNoteRequest { invoice_id: invoice.id.clone(), reason: "demande annulée".into() };
        ensure!(code(w.client.issue_credit_note(with_token(credit.clone(), &member)).await)? == Code::PermissionDenied);
        let blank = pb::IssueCreditNoteRequest { reason: " ".into(), ..credit.clone() };
        ensure!(
            code(w.client.issue_credit_note(with_token(blank, &w.coordinator.clone())).await)? == Code::InvalidArgument
        );
        let coordinator = w.coordinator.clone();
        let note = w.client.issue_credit_note(with_token(credit.clone(), &coordinator)).await?.into_inner();
        ensure!(note.number == format!("A-caue77-{}-000001", year()), "{}", note.number);
        ensure!(
            note.invoice_number == invoice.number
                && note.total_gross_cents == 162_000
                && note.reason == "demande annulée"
        );
        let cancelled = w.client.get_invoice(with_token(get, &coordinator)).await?.into_inner();
        ensure!(cancelled.status() == pb::InvoiceStatus::Cancelled && cancelled.credit_note_id == note.id);
        support::check_facturx("credit-note", &id77_billing::export::credit_note_xml(&note))?;
        support::check_en16931("credit-note-ubl", support::Syntax::Ubl, &id77_billing::export::credit_note_ubl(&note))?;
        // The credit note is read and downloaded by whoever sees its invoice.
        let get_note = pb::GetCreditNoteRequest { id: note.id.clone() };
        ensure!(w.client.get_credit_note(with_token(get_note.clone(), &member)).await?.into_inner() == note);
        ensure!(code(w.client.get_credit_note(with_token(get_note, &other)).await)? == Code::NotFound);
        let export_note =
            |format: pb::ExportFormat| pb::ExportCreditNoteRequest { id: note.id.clone(), format: format.into() };
        for (format, name) in [
            (pb::ExportFormat::CiiXml, format!("{}.xml", note.number)),
            (pb::ExportFormat::UblXml, format!("{}.ubl.xml", note.number)),
            (pb::ExportFormat::Csv, format!("{}.csv", note.number)),
            (pb::ExportFormat::Pdf, format!("{}.pdf", note.number)),
        ] {
            let file = w.client.export_credit_note(with_token(export_note(format), &agent)).await?.into_inner();
            ensure!(file.filename == name, "{}", file.filename);
            match format {
                pb::ExportFormat::CiiXml => {
                    support::check_facturx("credit-note-grpc", std::str::from_utf8(&file.content)?)?
                }
                pb::ExportFormat::UblXml => support::check_en16931(
                    "credit-note-grpc-ubl",
                    support::Syntax::Ubl,
                    std::str::from_utf8(&file.content)?,
                )?,
                pb::ExportFormat::Csv => {
                    let csv = String::from_utf8(file.content)?;
                    ensure!(csv.contains(&format!("Avoir;{}", note.number)) && csv.contains(&invoice.number), "{csv}");
                }
                _ => {
                    let text = support::pdf_text("credit-note-grpc", &file.content)?;
                    ensure!(
                        text.contains("Avoir") && text.contains(&note.number) && text.contains(&invoice.number),
                        "{text}"
                    );
                }
            }
        }
        ensure!(
            code(w.client.export_credit_note(with_token(export_note(pb::ExportFormat::Pdf), &other)).await)?
                == Code::NotFound
        );
        ensure!(
            code(w.client.issue_credit_note(with_token(credit, &coordinator)).await)? == Code::FailedPrecondition,
            "a cancelled invoice cannot be credited twice"
        );
        let subjects: Vec<String> =
            sqlx::query_scalar("SELECT subject FROM outbox WHERE subject LIKE 'id77.billing.%' ORDER BY seq")
                .fetch_all(&w.pool)
                .await?;
        ensure!(
            subjects
                == [
                    "id77.billing.quote.issued",
                    "id77.billing.quote.accepted",
                    "id77.billing.invoice.issued",
                    "id77.billing.invoice.sent",
                    "id77.billing.invoice.paid",
                    "id77.billing.credit_note.issued"
                ],
            "{subjects:?}"
        );
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

#[tokio::test]
async fn an_older_offer_version_does_not_replace_the_stored_tariff() -> anyhow::Result<()> {
    let mut w = World::start("billing").await?;
    let result = async {
        let v2 = offer("dir-eau", true, 150_000, 2);
        let v1 = catalogue::Offer { price_cents: 120_000, version: 1, ..v2.clone() };
        w.publish_offer(&v2).await?;
        let late = w.publish_offer(&v1).await?;
        w.wait_processed("billing-offers", &late).await?;
        let r = referral(&v2);
        w.publish_referral(&r, &Uuid::now_v7().to_string()).await?;
        let quote = w.wait_quote(&r.request_id).await?;
        ensure!(quote.amount_cents == 150_000, "quoted from the older version: {}", quote.amount_cents);
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

#[tokio::test]
async fn concurrent_issuances_are_numbered_without_gaps_or_duplicates() -> anyhow::Result<()> {
    let url = fresh_database_url("billingnum");
    let result = async {
        let pool = id77_platform::db::connect(&url, &MIGRATOR, 25).await?;
        let issued_at = time::now();
        let draft = |i: usize| QuoteDraft {
            issuer_code: "dir-routes".into(),
            member_id: Uuid::now_v7(),
            request_id: Uuid::now_v7(),
            referral_id: Uuid::now_v7(),
            offer_id: Uuid::from_u128(1),
            offer_version: 1,
            label: format!("Devis {i}"),
            amount_cents: 100_000,
            amount_to_be_stated: false,
            vat: domain::Vat::Rate(2000),
            seller: Default::default(),
            buyer: Default::default(),
        };
        // 20 issuances that commit, interleaved with 5 that roll back (their numbers must be given back).
        let mut tasks = Vec::new();
        for i in 0..25 {
            let pool = pool.clone();
            let draft = draft(i);
            tasks.push(tokio::spawn(async move {
                let mut tx = pool.begin().await?;
                let quote = quotes::issue(&mut tx, draft, issued_at, chrono::Duration::days(30)).await?;
                if i % 5 == 4 {
                    tx.rollback().await?;
                    Ok::<_, anyhow::Error>(None)
                } else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    tx.commit().await?;
                    Ok(Some(quote))
                }
            }));
        }
        let mut committed = Vec::new();
        for task in tasks {
            if let Some(quote) = task.await?? {
                committed.push(quote);
            }
        }
        ensure!(committed.len() == 20);
        let year = domain::billing_year(issued_at);
        let stored: Vec<(i64, String)> =
            sqlx::query_as("SELECT sequence, number FROM quote WHERE issuer_code = 'dir-routes' ORDER BY sequence")
                .fetch_all(&pool)
                .await?;
        let expected: Vec<(i64, String)> = (1..=20).map(|n| (n, format!("D-dir-routes-{year}-{n:06}"))).collect();
        ensure!(stored == expected, "{stored:?}");
        let mut numbers: Vec<String> = committed.into_iter().map(|q| q.number).collect();
        numbers.sort();
        ensure!(numbers == expected.into_iter().map(|(_, n)| n).collect::<Vec<_>>());
        let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE subject = 'id77.billing.quote.issued'")
            .fetch_one(&pool)
            .await?;
        ensure!(events == 20, "{events} QuoteIssued events for 20 quotes");
        // Another issuer starts its own sequence.
        let mut tx = pool.begin().await?;
        let other = quotes::issue(
            &mut tx,
            QuoteDraft { issuer_code: "caue77".into(), ..draft(99) },
            issued_at,
            chrono::Duration::days(30),
        )
        .await?;
        tx.commit().await?;
        ensure!(other.number == format!("D-caue77-{year}-000001"), "{}", other.number);
        pool.close().await;
        Ok(())
    }
    .await;
    drop_database(&url).await;
    result
}

#[tokio::test]
async fn an_undecodable_referral_is_dead_lettered_not_retried() -> anyhow::Result<()> {
    let w = World::start("billing").await?;
    let result = async {
        let msg = Uuid::now_v7().to_string();
        w.publish(REFERRAL_ACCEPTED, vec![0xff, 0xff, 0xff], &msg).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let stream = w.js.get_stream(w.ns.stream(streams::DEADLETTER.name)).await;
            if let Ok(mut stream) = stream
                && stream.info().await?.state.messages == 1
            {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the undecodable message was not dead-lettered");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ensure!(w.quote_count().await? == 0);
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

#[tokio::test]
async fn quotes_are_seen_by_their_member_issuer_referent_and_the_coordinator() -> anyhow::Result<()> {
    let mut w = World::start("billingacl").await?;
    let result = async {
        use tonic::Code;
        let (offer_p, offer_q) = (offer("dir-routes", true, 100_000, 1), offer("caue77", true, 50_000, 1));
        w.publish_offer(&offer_p).await?;
        w.publish_offer(&offer_q).await?;
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let for_member = |offer: &catalogue::Offer, member: Uuid| routing::ReferralAccepted {
            member_id: member.to_string(),
            ..referral(offer)
        };
        let (r1, r2, r3) = (for_member(&offer_p, a), for_member(&offer_q, b), for_member(&offer_q, a));
        for r in [&r1, &r2, &r3] {
            w.publish_referral(r, &Uuid::now_v7().to_string()).await?;
        }
        let q1 = w.wait_quote(&r1.request_id).await?; // A, issued by dir-routes
        let q2 = w.wait_quote(&r2.request_id).await?; // B, issued by caue77
        let q3 = w.wait_quote(&r3.request_id).await?; // A, issued by caue77

        // A member's users: their member's quotes only, forced; another member's are not found.
        let user_a = w.keys.token(Role::MemberUser, Some(a), None);
        let admin_b = w.keys.token(Role::MemberAdmin, Some(b), None);
        ensure!(ids(&w.list_member_as(&user_a, "").await?) == sorted(vec![q1.id.as_str(), q3.id.as_str()]));
        ensure!(ids(&w.list_member_as(&user_a, &a.to_string()).await?) == sorted(vec![q1.id.as_str(), q3.id.as_str()]));
        ensure!(ids(&w.list_member_as(&admin_b, "").await?) == sorted(vec![q2.id.as_str()]));
        ensure!(code(w.list_member_as(&user_a, &b.to_string()).await)? == Code::NotFound);
        let other_request = pb::ListQuotesRequest { request_id: r2.request_id.clone(), ..Default::default() };
        ensure!(w.list_as(&user_a, other_request).await?.is_empty(), "a request id widened the forced filter");
        ensure!(w.get_as(&user_a, &q1.id).await? == q1);
        let foreign = w.get_as(&user_a, &q2.id).await.err().context("foreign quote served")?;
        let unknown_id = Uuid::now_v7().to_string();
        let unknown = w.get_as(&user_a, &unknown_id).await.err().context("unknown quote served")?;
        ensure!((foreign.code(), unknown.code()) == (Code::NotFound, Code::NotFound));
        ensure!(foreign.message().replace(&q2.id, "ID") == unknown.message().replace(&unknown_id, "ID"));

        // A provider's agents: the quotes their provider issued, forced; a member_id only narrows it.
        let agent_p = w.keys.token(Role::ProviderAgent, None, Some("dir-routes"));
        let agent_q = w.keys.token(Role::ProviderAgent, None, Some("caue77"));
        ensure!(ids(&w.list_member_as(&agent_p, "").await?) == sorted(vec![q1.id.as_str()]));
        ensure!(ids(&w.list_member_as(&agent_q, "").await?) == sorted(vec![q2.id.as_str(), q3.id.as_str()]));
        ensure!(ids(&w.list_member_as(&agent_q, &a.to_string()).await?) == sorted(vec![q3.id.as_str()]));
        ensure!(w.get_as(&agent_p, &q1.id).await? == q1);
        ensure!(code(w.get_as(&agent_p, &q3.id).await)? == Code::NotFound);

        // A referent: nothing before the coordinator assigns it a member, then that member's quotes.
        let referent = Uuid::now_v7();
        let referent_token = w.keys.sign(&Claims::new(referent, Role::Referent, time::now().timestamp()));
        ensure!(code(w.list_member_as(&referent_token, "").await)? == Code::InvalidArgument);
        ensure!(code(w.list_member_as(&referent_token, &a.to_string()).await)? == Code::NotFound);
        ensure!(code(w.get_as(&referent_token, &q1.id).await)? == Code::NotFound);
        // Other member events are not used (and do not stop the consumer).
        let approved = membership::MemberApproved { member_id: a.to_string(), ..Default::default() };
        let approved_id = Uuid::now_v7().to_string();
        w.publish("id77.membership.member.approved", approved.encode_to_vec(), &approved_id).await?;
        let updated = membership::MemberUpdated {
            member_id: a.to_string(),
            referent_user_id: referent.to_string(),
            occurred_at: Some(time::to_proto(time::now())),
            ..Default::default()
        };
        let updated_id = Uuid::now_v7().to_string();
        w.publish(MEMBER_UPDATED, updated.encode_to_vec(), &updated_id).await?;
        w.wait_processed("billing-members", &approved_id).await?;
        w.wait_processed("billing-members", &updated_id).await?;
        ensure!(
            ids(&w.list_member_as(&referent_token, &a.to_string()).await?)
                == sorted(vec![q1.id.as_str(), q3.id.as_str()])
        );
        ensure!(w.get_as(&referent_token, &q3.id).await? == q3);
        ensure!(code(w.get_as(&referent_token, &q2.id).await)? == Code::NotFound);
        ensure!(code(w.list_member_as(&referent_token, &b.to_string()).await)? == Code::NotFound);

        // The coordinator: everything. The operator: no operational data.
        let coordinator = w.coordinator.clone();
        ensure!(w.list_member_as(&coordinator, "").await?.len() == 3);
        ensure!(w.get_as(&coordinator, &q2.id).await? == q2);
        let operator = w.keys.token(Role::Operator, None, None);
        ensure!(code(w.get_as(&operator, &q1.id).await)? == Code::PermissionDenied);
        ensure!(code(w.list_member_as(&operator, "").await)? == Code::PermissionDenied);

        // No token, or one that does not verify.
        ensure!(code(w.client.list_quotes(pb::ListQuotesRequest::default()).await)? == Code::Unauthenticated);
        ensure!(code(w.client.get_quote(pb::GetQuoteRequest { id: q1.id.clone() }).await)? == Code::Unauthenticated);
        let mut expired = Claims::new(Uuid::now_v7(), Role::MemberUser, time::now().timestamp() - 3600);
        expired.member_id = Some(a.to_string());
        let foreign_keys = TestKeys::new()?;
        for token in [w.keys.sign(&expired), foreign_keys.token(Role::Coordinator, None, None)] {
            ensure!(code(w.get_as(&token, &q1.id).await)? == Code::Unauthenticated);
            ensure!(code(w.list_member_as(&token, "").await)? == Code::Unauthenticated);
        }
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

/// Issue 7, "on quote": the provider states 2 450,00 € when accepting; the quote carries it with the offer's
/// VAT, the invoice at completion bills it once the member accepted it, and its CII and UBL exports pass the
/// EN 16931 checks. An amount stated for an offer with a set price is ignored; an out-of-bounds amount is
/// dead-lettered.
#[tokio::test]
async fn an_offer_on_quote_is_quoted_and_invoiced_at_the_amount_the_provider_stated() -> anyhow::Result<()> {
    let mut w = World::start("billing").await?;
    let result = async {
        let on_quote = catalogue::Offer {
            price_rule: Some(catalogue::PriceRule { kind: catalogue::PriceKind::OnQuote.into(), ..Default::default() }),
            title: "Rénovation de l'éclairage public".into(),
            vat_rate_bp: Some(2000),
            ..offer("caue77", false, 0, 1)
        };
        w.publish_offer(&on_quote).await?;
        let accepted = routing::ReferralAccepted {
            amount_cents: 245_000,
            quote_note: "Devis 2026-12".into(),
            ..referral(&on_quote)
        };
        let approved = membership::MemberApproved {
            member_id: accepted.member_id.clone(),
            siren: "217702846".into(),
            name: "Commune de Meaux".into(),
            population: 56_000,
            occurred_at: Some(time::to_proto(time::now())),
            ..Default::default()
        };
        w.publish("id77.membership.member.approved", approved.encode_to_vec(), &Uuid::now_v7().to_string()).await?;
        w.publish_referral(&accepted, &Uuid::now_v7().to_string()).await?;
        let quote = w.wait_quote(&accepted.request_id).await?;
        ensure!(quote.amount_cents == 245_000 && !quote.amount_to_be_stated, "{quote:?}");
        ensure!(quote.vat_rate_bp == Some(2000) && quote.vat_note.is_empty(), "{quote:?}");
        ensure!((quote.vat_cents, quote.total_incl_vat_cents) == (49_000, 294_000), "{quote:?}");
        ensure!(quote.label == "Rénovation de l'éclairage public — Devis 2026-12", "{}", quote.label);
        let coordinator = w.coordinator.clone();
        let quote_pdf = pb::ExportQuoteRequest { id: quote.id.clone(), format: pb::ExportFormat::Pdf.into() };
        let file = w.client.export_quote(with_token(quote_pdf, &coordinator)).await?.into_inner();
        let text = support::pdf_text("quote-on-quote", &file.content)?.replace('\u{a0}', " ");
        ensure!(text.contains("2 450,00 €") && !text.contains("Montant à préciser"), "{text}");

        // Accepted without a purchase order number, then completed: the invoice bills the quoted amount, VAT
        // 20 % on top, and has no BT-13.
        let admin = w.member_admin(&accepted.member_id, "Paul Durand");
        w.accept_as(&admin, &quote.id, "Paul Durand, adjoint", "").await?;
        w.publish_completed(&completed(&accepted)).await?;
        let invoice = wait_invoice(&mut w, &accepted.request_id).await?;
        ensure!(
            (invoice.total_net_cents, invoice.total_vat_cents, invoice.total_gross_cents) == (245_000, 49_000, 294_000),
            "{invoice:?}"
        );
        // The invoice bills what the quote said, VAT included.
        ensure!(
            (invoice.total_vat_cents, invoice.total_gross_cents) == (quote.vat_cents, quote.total_incl_vat_cents),
            "quote {quote:?} / invoice {invoice:?}"
        );
        ensure!(invoice.lines.len() == 1 && invoice.lines[0].quantity == 1, "{:?}", invoice.lines);
        ensure!(invoice.lines[0].unit_price_cents == 245_000 && invoice.lines[0].label == quote.label);
        let export =
            |format: pb::ExportFormat| pb::ExportInvoiceRequest { id: invoice.id.clone(), format: format.into() };
        let xml =
            w.client.export_invoice(with_token(export(pb::ExportFormat::CiiXml), &coordinator)).await?.into_inner();
        let xml = std::str::from_utf8(&xml.content)?.to_owned();
        ensure!(xml.contains("2450.00") && xml.contains("2940.00"), "{xml}");
        ensure!(!xml.contains("BuyerOrderReferencedDocument") && xml.contains("SpecifiedProcuringProject"), "{xml}");
        support::check_facturx("invoice-on-quote", &xml)?;
        let ubl =
            w.client.export_invoice(with_token(export(pb::ExportFormat::UblXml), &coordinator)).await?.into_inner();
        support::check_en16931("invoice-on-quote-ubl", support::Syntax::Ubl, std::str::from_utf8(&ubl.content)?)?;
        let pdf = w.client.export_invoice(with_token(export(pb::ExportFormat::Pdf), &coordinator)).await?.into_inner();
        let text = support::pdf_text("invoice-on-quote", &pdf.content)?.replace('\u{a0}', " ");
        ensure!(text.contains("2 450,00 €") && text.contains("2 940,00 €"), "{text}");

        // An amount stated for an offer with a set price does not change its price.
        let flat = offer("caue77", true, 90_000, 1);
        w.publish_offer(&flat).await?;
        let stray = routing::ReferralAccepted { amount_cents: 1_000, ..referral(&flat) };
        w.publish_referral(&stray, &Uuid::now_v7().to_string()).await?;
        let quote = w.wait_quote(&stray.request_id).await?;
        ensure!(quote.amount_cents == 90_000 && !quote.amount_to_be_stated, "{quote:?}");

        // An out-of-bounds amount (routing never sends one) is refused: dead-lettered, no quote.
        let absurd = routing::ReferralAccepted { amount_cents: -5, ..referral(&on_quote) };
        let msg = Uuid::now_v7().to_string();
        w.publish_referral(&absurd, &msg).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let stream = w.js.get_stream(w.ns.stream(streams::DEADLETTER.name)).await;
            if let Ok(mut stream) = stream
                && stream.info().await?.state.messages == 1
            {
                break;
            }
            ensure!(tokio::time::Instant::now() < deadline, "the out-of-bounds amount was not dead-lettered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ensure!(w.quotes_of(&absurd.request_id).await?.is_empty(), "an absurd amount was quoted");
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

/// A consumer's batch of acceptances (issue 23: their contexts read in one statement) quotes each billed referral
/// as one at a time would, numbered in the batch's order, in one transaction; a free offer's acceptance in it gets
/// no quote; the batch delivered again changes nothing.
#[tokio::test]
async fn a_batch_of_acceptances_quotes_each_billed_referral_in_order_in_one_transaction() -> anyhow::Result<()> {
    use id77_billing::events::ReferralAcceptedHandler;
    use id77_platform::consumer::{self, Outcome};
    let w = World::start("billing").await?;
    let result = async {
        let (billed, free) = (offer("caue77", true, 90_000, 1), offer("dir-culture", false, 0, 1));
        for o in [&billed, &free] {
            let msg = w.publish_offer(o).await?;
            w.wait_processed("billing-offers", &msg).await?;
        }
        let (a, f, b) = (referral(&billed), referral(&free), referral(&billed));
        let event =
            |r: &routing::ReferralAccepted| id77_platform::testing::first_delivery("id77.routing.referral.accepted", r);
        let handler = ReferralAcceptedHandler {
            issuers: std::sync::Arc::new(id77_billing::parties::Issuers::shipped().map_err(anyhow::Error::msg)?),
            validity: chrono::Duration::days(30),
        };
        let batch = [event(&a), event(&f), event(&b)];
        let results = consumer::apply_batch(&w.pool, "test-referrals", &handler, &batch, &[]).await;
        ensure!(results.iter().all(|r| matches!(r, Ok(Outcome::Applied))), "{results:?}");
        let quotes: Vec<(String, String, String)> =
            sqlx::query_as("SELECT referral_id::text, number, xmin::text FROM quote ORDER BY sequence")
                .fetch_all(&w.pool)
                .await?;
        let expected = [
            (a.referral_id.clone(), format!("D-caue77-{}-000001", year())),
            (b.referral_id.clone(), format!("D-caue77-{}-000002", year())),
        ];
        ensure!(quotes.iter().map(|(r, n, _)| (r.clone(), n.clone())).collect::<Vec<_>>() == expected, "{quotes:?}");
        ensure!(quotes[0].2 == quotes[1].2, "both quoted by the batch's transaction: {quotes:?}");
        let results = consumer::apply_batch(&w.pool, "test-referrals", &handler, &batch, &[]).await;
        ensure!(results.iter().all(|r| matches!(r, Ok(Outcome::Duplicate))), "{results:?}");
        ensure!(w.quote_count().await? == 2);
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}
