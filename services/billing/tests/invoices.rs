//! Invoice numbering against the local PostgreSQL: 200 concurrent issuances for one issuer and year get the
//! numbers 1..=200 exactly, and a rolled-back issuance leaves no hole; credit notes have their own sequence.

use std::time::Duration;

use anyhow::ensure;
use id77_billing::domain::{self, Line, Vat};
use id77_billing::flow::invoices::{self, InvoiceDraft, InvoiceSource};
use id77_billing::{MIGRATOR, store};
use id77_platform::testing::{drop_database, fresh_database_url};
use id77_platform::time;
use uuid::Uuid;

fn draft(i: usize) -> InvoiceDraft {
    InvoiceDraft {
        issuer_code: "dir-routes".into(),
        member_id: Uuid::now_v7(),
        buyer_siren: "217700000".into(),
        source: InvoiceSource::Request { request_id: Uuid::now_v7(), referral_id: Uuid::now_v7() },
        offer_id: Uuid::from_u128(1),
        offer_version: 1,
        line: Line { label: format!("Prestation {i}"), quantity: 1, unit_price_cents: 100_000, net_cents: 100_000 },
        vat: Vat::Rate(2000),
        seller: Default::default(),
        buyer: Default::default(),
        quote_id: Some(Uuid::now_v7()),
        quote_number: format!("D-dir-routes-2026-{i:06}"),
        purchase_order_number: String::new(),
    }
}

#[tokio::test]
async fn two_hundred_concurrent_invoices_are_numbered_1_to_200_and_a_rollback_leaves_no_hole() -> anyhow::Result<()> {
    let url = fresh_database_url("billinginv");
    let result = async {
        // Migrated by the platform's connect; then a pool whose callers wait as long as the 200 serialised
        // transactions take on a loaded machine (the property under test is the numbering, not the latency).
        id77_platform::db::connect(&url, &MIGRATOR, 2).await?.close().await;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(30)
            .acquire_timeout(Duration::from_secs(120))
            .connect(&url)
            .await?;
        let issued_at = time::now();
        let year = domain::billing_year(issued_at);
        // A first attempt that fails midway: its number is given back.
        let mut tx = pool.begin().await?;
        let failed = invoices::issue(&mut tx, draft(0), issued_at).await?;
        ensure!(failed.sequence == 1);
        tx.rollback().await?;

        let mut tasks = Vec::new();
        for i in 0..200 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = pool.begin().await?;
                let invoice = invoices::issue(&mut tx, draft(i), issued_at).await?;
                tokio::time::sleep(Duration::from_millis(1)).await;
                tx.commit().await?;
                Ok::<_, anyhow::Error>(invoice)
            }));
        }
        // Rolled-back attempts interleaved with the committed ones.
        for i in 0..5 {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = pool.begin().await?;
                let invoice = invoices::issue(&mut tx, draft(1000 + i), issued_at).await?;
                tx.rollback().await?;
                Ok::<_, anyhow::Error>(invoice)
            }));
        }
        for task in tasks {
            task.await??;
        }
        let stored: Vec<(i64, String)> =
            sqlx::query_as("SELECT sequence, number FROM invoice WHERE issuer_code = 'dir-routes' ORDER BY sequence")
                .fetch_all(&pool)
                .await?;
        let expected: Vec<(i64, String)> = (1..=200).map(|n| (n, format!("F-dir-routes-{year}-{n:06}"))).collect();
        ensure!(stored == expected, "numbers are not exactly 1..=200: {:?}", &stored[..stored.len().min(5)]);
        let events: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE subject = 'id77.billing.invoice.issued'")
                .fetch_one(&pool)
                .await?;
        ensure!(events == 200, "{events} InvoiceIssued events for 200 invoices");
        let totals: (i64, i64, i64) = sqlx::query_as(
            "SELECT net_cents, vat_cents, gross_cents FROM invoice WHERE sequence = 1 AND issuer_code = 'dir-routes'",
        )
        .fetch_one(&pool)
        .await?;
        ensure!((totals.0, totals.1, totals.2) == (100_000, 20_000, 120_000), "{totals:?}");

        // Credit notes: their own gapless sequence; the invoice is cancelled.
        ensure!(store::get_invoice(&pool, Uuid::nil()).await?.is_none());
        let id: Uuid = sqlx::query_scalar("SELECT id FROM invoice WHERE sequence = 7").fetch_one(&pool).await?;
        let mut tx = pool.begin().await?;
        let invoice = store::invoice_for_update(&mut tx, id).await?.ok_or_else(|| anyhow::anyhow!("no invoice"))?;
        let (note, invoice) = invoices::credit(&mut tx, invoice, "demande annulée", time::now()).await?;
        tx.commit().await?;
        ensure!(note.number == format!("A-dir-routes-{}-000001", note.year), "{}", note.number);
        ensure!(invoice.status == "cancelled" && invoice.credit_note_id == Some(note.id));
        let stored = store::get_invoice(&pool, id).await?.ok_or_else(|| anyhow::anyhow!("no invoice"))?;
        ensure!(stored.status == "cancelled" && stored.credit_note_id == Some(note.id));
        pool.close().await;
        Ok(())
    }
    .await;
    drop_database(&url).await;
    result
}
