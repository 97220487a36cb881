//! Held training sessions invoiced per participant (issue 22 item 6, ADR 0016) against the local PostgreSQL and
//! NATS: the catalogue's `session.held`, published twice, gives exactly one invoice per member with attendees
//! (none for a member none of whose participants came, none for a free session), numbered in the issuer's
//! invoice sequence, at the offer's VAT, announced once each by `invoice.issued`; the invoice names the session,
//! is listed to its member, and its CII and UBL pass the EN 16931 XSD and schematron like every invoice. An event
//! that arrives before billing knows a member's SIREN issues nothing until it does, then every invoice at once.

use std::time::Duration;

use anyhow::{Context, ensure};
use chrono::TimeZone;
use id77_platform::time;
use id77_proto::billing::v1 as pb;
use id77_proto::catalogue::v1 as catalogue;
use prost::Message;
use uuid::Uuid;

mod support;

use support::world::*;
use support::{Syntax, check_en16931, check_facturx, pdf_text};

const SESSION_HELD: &str = "id77.catalogue.session.held";
const INVOICE_ISSUED: &str = "id77.billing.invoice.issued";
const TITLE: &str = "Urbanisme & paysage : lire un PLU";
const LABEL: &str = "Participation à la session « Urbanisme & paysage : lire un PLU » du 12 janvier 2027";

/// A training offer of caue77, free as an offer (the session carries its price), VAT 20 %.
fn training_offer() -> catalogue::Offer {
    catalogue::Offer {
        category: catalogue::OfferCategory::AwarenessTraining.into(),
        title: TITLE.into(),
        price_rule: Some(catalogue::PriceRule { kind: catalogue::PriceKind::Free.into(), ..Default::default() }),
        vat_rate_bp: Some(2000),
        ..offer("caue77", false, 0, 1)
    }
}

fn attendance(member_id: &str, name: &str, registered: u32, attended: u32) -> catalogue::MemberAttendance {
    catalogue::MemberAttendance {
        member_id: member_id.to_owned(),
        member_name: name.to_owned(),
        registered,
        attended,
        attendees: (0..attended)
            .map(|i| catalogue::Participant {
                name: format!("Participant {i}"),
                function: "secrétaire de mairie".into(),
                email: format!("p{i}@mairie.example"),
            })
            .collect(),
    }
}

/// `session.held` of a session of `offer` on 12 January 2027 at 9:30 (Paris), at `price_cents` per participant.
fn held(
    offer: &catalogue::Offer,
    price_cents: i64,
    members: Vec<catalogue::MemberAttendance>,
) -> catalogue::SessionHeld {
    let starts = chrono::Utc.with_ymd_and_hms(2027, 1, 12, 8, 30, 0).single().unwrap_or_default();
    catalogue::SessionHeld {
        session: Some(catalogue::Session {
            id: Uuid::now_v7().to_string(),
            offer_id: offer.id.clone(),
            offer_code: offer.code.clone(),
            offer_title: offer.title.clone(),
            provider_code: offer.provider_code.clone(),
            provider_name: "CAUE de Seine-et-Marne".into(),
            starts_at: Some(time::to_proto(starts)),
            ends_at: Some(time::to_proto(starts + chrono::Duration::hours(3))),
            capacity: 20,
            status: catalogue::SessionStatus::Held.into(),
            price_per_participant_cents: price_cents,
            attended: members.iter().map(|m| m.attended).sum(),
            ..Default::default()
        }),
        members,
        occurred_at: Some(time::to_proto(time::now())),
    }
}

/// Publishes `event` under a new message id and waits until billing-sessions applied it.
async fn deliver(w: &World, event: &catalogue::SessionHeld) -> anyhow::Result<String> {
    let id = Uuid::now_v7().to_string();
    w.publish(SESSION_HELD, event.encode_to_vec(), &id).await?;
    w.wait_processed("billing-sessions", &id).await?;
    Ok(id)
}

/// The invoices of a member, as the coordinator lists them.
async fn invoices_of(w: &mut World, member_id: &str) -> anyhow::Result<Vec<pb::Invoice>> {
    let req = pb::ListInvoicesRequest { member_id: member_id.to_owned(), ..Default::default() };
    Ok(w.client.list_invoices(with_token(req, &w.coordinator)).await?.into_inner().invoices)
}

async fn export(w: &mut World, id: &str, format: pb::ExportFormat) -> anyhow::Result<Vec<u8>> {
    let req = pb::ExportInvoiceRequest { id: id.to_owned(), format: format.into() };
    Ok(w.client.export_invoice(with_token(req, &w.coordinator)).await?.into_inner().content)
}

#[tokio::test]
async fn a_held_session_delivered_twice_invoices_each_member_with_attendees_once() -> anyhow::Result<()> {
    let mut w = World::start("billingsessions").await?;
    let result = async {
        let offer = training_offer();
        let offer_msg = w.publish_offer(&offer).await?;
        w.wait_processed("billing-offers", &offer_msg).await?;
        let (meaux, provins, nobody) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string(), Uuid::now_v7());
        w.approve_member(&meaux, "Commune de Meaux", "217702844").await?;
        let event = held(
            &offer,
            12_000,
            vec![
                attendance(&meaux, "Commune de Meaux", 4, 3),
                attendance(&nobody.to_string(), "Commune de Nemours", 2, 0),
                attendance(&provins, "Commune de Provins", 1, 1),
            ],
        );
        let session_id = event.session.as_ref().map(|s| s.id.clone()).unwrap_or_default();

        // Provins' SIREN is not known yet: nothing is issued, not even Meaux's invoice (all or nothing).
        let early = Uuid::now_v7().to_string();
        w.publish(SESSION_HELD, event.encode_to_vec(), &early).await?;
        tokio::time::sleep(Duration::from_millis(600)).await;
        ensure!(w.invoice_count().await? == 0, "invoiced before every buyer was known");
        w.approve_member(&provins, "Commune de Provins", "217702620").await?;
        w.wait_processed("billing-sessions", &early).await?;

        // Delivered again under other message ids (the catalogue publishing it twice): nothing more.
        deliver(&w, &event).await?;
        deliver(&w, &event).await?;
        ensure!(w.invoice_count().await? == 2, "{} invoices, expected Meaux's and Provins'", w.invoice_count().await?);
        ensure!(w.outbox_count(INVOICE_ISSUED).await? == 2, "invoice.issued not once per invoice");
        ensure!(invoices_of(&mut w, &nobody.to_string()).await?.is_empty(), "a member without attendees is invoiced");

        // Meaux: 3 participants at 120,00 € HT, VAT 20 %: 360,00 HT, 72,00 TVA, 432,00 TTC.
        let mut listed = invoices_of(&mut w, &meaux).await?;
        ensure!(listed.len() == 1, "{listed:?}");
        let invoice = listed.pop().context("no invoice")?;
        let line = invoice.lines.first().context("no line")?;
        ensure!(line.label == format!("{LABEL} — 3 participants"), "{:?}", line.label);
        ensure!((line.quantity, line.unit_price_cents, line.net_cents) == (3, 12_000, 36_000), "{line:?}");
        ensure!(
            (invoice.total_net_cents, invoice.total_vat_cents, invoice.total_gross_cents) == (36_000, 7_200, 43_200),
            "{invoice:?}"
        );
        ensure!(invoice.vat_rate_bp == Some(2000) && invoice.issuer_code == "caue77", "{invoice:?}");
        ensure!(invoice.request_id.is_empty() && invoice.referral_id.is_empty() && invoice.quote_number.is_empty());
        ensure!(invoice.offer_id == offer.id && invoice.buyer_siren == "217702844", "{invoice:?}");
        ensure!(invoice.buyer.as_ref().is_some_and(|b| b.name == "Commune de Meaux"), "{:?}", invoice.buyer);
        ensure!(
            invoice.seller.as_ref().is_some_and(|s| !s.siret.is_empty()),
            "no seller identity: {:?}",
            invoice.seller
        );
        let provins_invoice = invoices_of(&mut w, &provins).await?.pop().context("no invoice for Provins")?;
        let provins_line = provins_invoice.lines.first().context("no line")?;
        ensure!(provins_line.label == format!("{LABEL} — 1 participant"), "{:?}", provins_line.label);
        ensure!(provins_invoice.total_gross_cents == 14_400, "{provins_invoice:?}");
        // The same gapless sequence as every invoice of the issuer.
        let mut numbers = [invoice.number.clone(), provins_invoice.number.clone()];
        numbers.sort();
        let year = year();
        ensure!(numbers == [format!("F-caue77-{year}-000001"), format!("F-caue77-{year}-000002")], "{numbers:?}");
        // The source is explicit in the table.
        let (kind, stored_session): (String, Option<Uuid>) =
            sqlx::query_as("SELECT source_kind, session_id FROM invoice WHERE number = $1")
                .bind(&invoice.number)
                .fetch_one(&w.pool)
                .await?;
        ensure!(kind == "session" && stored_session.map(|s| s.to_string()) == Some(session_id.clone()));

        // The member's own admin sees it in its list.
        let admin = w.member_admin(&meaux, "Marie Durand");
        let req = pb::ListInvoicesRequest { member_id: meaux.clone(), ..Default::default() };
        let own = w.client.list_invoices(with_token(req, &admin)).await?.into_inner().invoices;
        ensure!(own.iter().map(|i| i.id.as_str()).collect::<Vec<_>>() == [invoice.id.as_str()], "{own:?}");

        // The documents name the session and pass the EN 16931 checks like every invoice.
        let cii = String::from_utf8(export(&mut w, &invoice.id, pb::ExportFormat::CiiXml).await?)?;
        check_facturx("session-invoice", &cii)?;
        ensure!(cii.contains("Urbanisme &amp; paysage : lire un PLU » du 12 janvier 2027 — 3 participants"), "{cii}");
        ensure!(cii.contains("<ram:BilledQuantity unitCode=\"C62\">3</ram:BilledQuantity>"), "{cii}");
        ensure!(cii.contains("<ram:GrandTotalAmount>432.00</ram:GrandTotalAmount>"), "{cii}");
        let ubl = String::from_utf8(export(&mut w, &invoice.id, pb::ExportFormat::UblXml).await?)?;
        check_en16931("session-invoice-ubl", Syntax::Ubl, &ubl)?;
        let pdf = export(&mut w, &invoice.id, pb::ExportFormat::Pdf).await?;
        let text = pdf_text("session-invoice", &pdf)?.replace(['\u{a0}', '\u{202f}'], " ");
        for expected in
            ["Facture", invoice.number.as_str(), "Participation à la session", "12 janvier 2027", "432,00 €"]
        {
            ensure!(text.contains(expected), "the PDF lacks {expected:?}:\n{text}");
        }
        let csv = String::from_utf8(export(&mut w, &invoice.id, pb::ExportFormat::Csv).await?)?;
        ensure!(csv.contains("3 participants") && csv.contains("432,00"), "{csv}");

        // A credit note cancels it like any invoice.
        let req = pb::IssueCreditNoteRequest {
            invoice_id: invoice.id.clone(),
            reason: "Session facturée par erreur".into(),
        };
        let note = w.client.issue_credit_note(with_token(req, &w.coordinator)).await?.into_inner();
        ensure!(note.total_gross_cents == 43_200 && note.lines.len() == 1, "{note:?}");

        // A free session, or a session without attendees: no invoice.
        deliver(&w, &held(&offer, 0, vec![attendance(&meaux, "Commune de Meaux", 5, 5)])).await?;
        deliver(&w, &held(&offer, 9_000, vec![attendance(&meaux, "Commune de Meaux", 5, 0)])).await?;
        ensure!(w.invoice_count().await? == 2, "a free or empty session was invoiced");
        ensure!(w.outbox_count(INVOICE_ISSUED).await? == 2);
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

/// The table itself refuses a second invoice of one session to one member (two deliveries applied at the same
/// time both pass the flow's look-up; the later commit fails and is retried, then finds the invoice), and an
/// invoice states exactly one source.
#[tokio::test]
async fn the_database_keeps_one_invoice_per_session_and_member_and_one_source_per_invoice() -> anyhow::Result<()> {
    use id77_billing::domain::{Line, Vat};
    use id77_billing::flow::invoices::{self, InvoiceDraft, InvoiceSource};
    use id77_platform::testing::{drop_database, fresh_database_url};

    let url = fresh_database_url("billingsessiondb");
    let result = async {
        let pool = id77_platform::db::connect(&url, &id77_billing::MIGRATOR, 2).await?;
        let (session_id, member_id) = (Uuid::now_v7(), Uuid::now_v7());
        let draft = |source| InvoiceDraft {
            issuer_code: "caue77".into(),
            member_id,
            buyer_siren: "217702844".into(),
            source,
            offer_id: Uuid::now_v7(),
            offer_version: 1,
            line: Line { label: "Participation".into(), quantity: 2, unit_price_cents: 5_000, net_cents: 10_000 },
            vat: Vat::Rate(2000),
            seller: Default::default(),
            buyer: Default::default(),
            quote_id: None,
            quote_number: String::new(),
            purchase_order_number: String::new(),
        };
        let mut tx = pool.begin().await?;
        let first = invoices::issue(&mut tx, draft(InvoiceSource::Session { session_id }), time::now()).await?;
        tx.commit().await?;
        ensure!(first.source_kind == "session" && first.session_id == Some(session_id) && first.request_id.is_none());
        let mut tx = pool.begin().await?;
        let again = invoices::issue(&mut tx, draft(InvoiceSource::Session { session_id }), time::now()).await;
        ensure!(again.is_err(), "a second invoice of the session to the member was stored");
        drop(tx);
        // Another member of the session, and the same member for another session, are invoiced.
        let mut tx = pool.begin().await?;
        let other = InvoiceDraft { member_id: Uuid::now_v7(), ..draft(InvoiceSource::Session { session_id }) };
        invoices::issue(&mut tx, other, time::now()).await?;
        invoices::issue(&mut tx, draft(InvoiceSource::Session { session_id: Uuid::now_v7() }), time::now()).await?;
        tx.commit().await?;
        // The numbering went on without a hole (the refused attempt gave its number back).
        let numbers: Vec<i64> =
            sqlx::query_scalar("SELECT sequence FROM invoice ORDER BY sequence").fetch_all(&pool).await?;
        ensure!(numbers == [1, 2, 3], "{numbers:?}");
        // A row that names a request and a session, or neither, is refused.
        for (kind, request, session) in
            [("session", Some(Uuid::now_v7()), Some(Uuid::now_v7())), ("request", None, None), ("session", None, None)]
        {
            let refused = sqlx::query(
                "UPDATE invoice SET source_kind = $1, request_id = $2, referral_id = $2, session_id = $3 WHERE id = $4",
            )
            .bind(kind)
            .bind(request)
            .bind(session)
            .bind(first.id)
            .execute(&pool)
            .await;
            ensure!(refused.is_err(), "invoice_source accepted {kind} {request:?} {session:?}");
        }
        pool.close().await;
        Ok(())
    }
    .await;
    drop_database(&url).await;
    result
}
