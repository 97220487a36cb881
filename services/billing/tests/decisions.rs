//! ADR 0013 against the local PostgreSQL and NATS: a member admin accepts or refuses a proposed quote (nobody
//! else may), a cancelled request voids its quote, requests' `request.completed` invoices only an accepted
//! quote, a concurrent acceptance and cancellation resolve to one outcome, a proposed quote expires, every
//! change is announced once through the outbox whatever the redeliveries, and the coordinator lists every quote
//! and invoice (the reconciler's reads).

use std::time::Duration;

use anyhow::{Context, ensure};
use id77_billing::flow::quotes::{self, QuoteDraft};
use id77_billing::{MIGRATOR, domain, store};
use id77_platform::auth::{Claims, Role};
use id77_platform::testing::{drop_database, fresh_database_url};
use id77_platform::{ErrorCode, ServiceError, time};
use id77_proto::billing::v1 as pb;
use id77_proto::catalogue::v1 as catalogue;
use id77_proto::routing::v1 as routing;
use prost::Message;
use uuid::Uuid;

mod support;

use support::world::*;

const ACCEPTED: &str = "id77.billing.quote.accepted";
const REFUSED: &str = "id77.billing.quote.refused";
const VOIDED: &str = "id77.billing.quote.voided";
const EXPIRED: &str = "id77.billing.quote.expired";

/// A billed offer of caue77 at 1 200,00 €, VAT 20 %.
fn billed_offer() -> catalogue::Offer {
    catalogue::Offer {
        price_rule: Some(catalogue::PriceRule {
            kind: catalogue::PriceKind::Flat.into(),
            amount_cents: 120_000,
            ..Default::default()
        }),
        vat_rate_bp: Some(2000),
        ..offer("caue77", true, 120_000, 1)
    }
}

/// Proposes a quote for a new referral of `offer` to `member` (a new one when `None`), the member known with a
/// SIREN; returns the referral and the proposed quote.
async fn propose(
    w: &mut World,
    offer: &catalogue::Offer,
    member: Option<&str>,
) -> anyhow::Result<(routing::ReferralAccepted, pb::Quote)> {
    let mut accepted = referral(offer);
    if let Some(member) = member {
        accepted.member_id = member.to_owned();
    }
    w.approve_member(&accepted.member_id, "Commune de Provins", "217702620").await?;
    w.publish_referral(&accepted, &Uuid::now_v7().to_string()).await?;
    let quote = w.wait_quote(&accepted.request_id).await?;
    Ok((accepted, quote))
}

/// The gRPC code, reason and first invalid field of an error.
fn failure<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> anyhow::Result<(ErrorCode, String, String)> {
    match result {
        Ok(value) => anyhow::bail!("expected an error, got {value:?}"),
        Err(status) => {
            let e = ServiceError::from_status(&status);
            let field = e.violations.first().map(|v| v.field.clone()).unwrap_or_default();
            Ok((e.code, e.reason.into_owned(), format!("{field}|{}", e.message)))
        }
    }
}

/// The quotes carried by the committed outbox rows on `subject` (`M` decoded), in order.
async fn announced<M: Message + Default>(
    w: &World,
    subject: &str,
    quote_of: impl Fn(M) -> Option<pb::Quote>,
) -> anyhow::Result<Vec<pb::Quote>> {
    let payloads: Vec<Vec<u8>> = sqlx::query_scalar("SELECT payload FROM outbox WHERE subject = $1 ORDER BY seq")
        .bind(subject)
        .fetch_all(&w.pool)
        .await?;
    let mut quotes = Vec::new();
    for payload in payloads {
        quotes.push(quote_of(M::decode(payload.as_slice())?).context("event without its quote")?);
    }
    Ok(quotes)
}

#[tokio::test]
async fn only_a_member_admin_of_the_quotes_member_accepts_or_refuses_with_valid_fields() -> anyhow::Result<()> {
    let mut w = World::start("billingdecide").await?;
    let result = async {
        let offer = billed_offer();
        w.publish_offer(&offer).await?;
        let (accepted, quote) = propose(&mut w, &offer, None).await?;
        ensure!(quote.status() == pb::QuoteStatus::Issued, "proposed is ISSUED on the wire: {quote:?}");
        let issued = quote.issued_at.as_ref().and_then(time::from_proto).context("issued_at")?;
        let expires = quote.expires_at.as_ref().and_then(time::from_proto).context("expires_at")?;
        ensure!(expires == issued + chrono::Duration::days(30), "{issued} → {expires}");
        ensure!(quote.decided_at.is_none() && quote.signatory_name.is_empty());
        let member = Uuid::parse_str(&accepted.member_id)?;

        // Nobody but a member admin of the quote's member: forbidden, even those who read the quote.
        let coordinator = w.coordinator.clone();
        let forbidden = [
            ("member user", w.keys.token(Role::MemberUser, Some(member), None)),
            ("coordinator", coordinator.clone()),
            ("issuing provider's agent", w.keys.token(Role::ProviderAgent, None, Some("caue77"))),
            ("referent", w.keys.token(Role::Referent, None, None)),
            ("operator", w.keys.token(Role::Operator, None, None)),
        ];
        for (who, token) in &forbidden {
            let (code, reason, _) = failure(w.accept_as(token, &quote.id, "X", "").await)?;
            ensure!((code, reason.as_str()) == (ErrorCode::PermissionDenied, "PERMISSION_DENIED"), "{who} accepted");
            let (code, _, _) = failure(w.refuse_as(token, &quote.id, "non").await)?;
            ensure!(code == ErrorCode::PermissionDenied, "{who} refused: {code:?}");
        }
        // Another member's admin does not even see it; an unknown or malformed id.
        let stranger = w.member_admin(&Uuid::now_v7().to_string(), "Autre maire");
        ensure!(failure(w.accept_as(&stranger, &quote.id, "X", "").await)?.0 == ErrorCode::NotFound);
        ensure!(failure(w.refuse_as(&stranger, &quote.id, "non").await)?.0 == ErrorCode::NotFound);
        let admin = w.member_admin(&accepted.member_id, "Marie Dupont");
        let unknown = Uuid::now_v7().to_string();
        ensure!(failure(w.accept_as(&admin, &unknown, "X", "").await)?.0 == ErrorCode::NotFound);
        let (code, _, field) = failure(w.accept_as(&admin, "D-1", "X", "").await)?;
        ensure!(code == ErrorCode::InvalidArgument && field.starts_with("id|"), "{field}");

        // Invalid fields are named, all at once.
        let (code, _, field) = failure(w.accept_as(&admin, &quote.id, "  ", "").await)?;
        ensure!(code == ErrorCode::InvalidArgument && field.starts_with("signatory_name|"), "{field}");
        let (code, _, field) = failure(w.accept_as(&admin, &quote.id, "Marie", &"9".repeat(51)).await)?;
        ensure!(code == ErrorCode::InvalidArgument && field.starts_with("purchase_order_number|"), "{field}");
        let (_, _, message) = failure(w.accept_as(&admin, &quote.id, &"x".repeat(201), "EJ\u{7}").await)?;
        ensure!(message.contains("signatory_name") && message.contains("purchase_order_number"), "{message}");
        let (code, _, field) = failure(w.refuse_as(&admin, &quote.id, "").await)?;
        ensure!(code == ErrorCode::InvalidArgument && field.starts_with("reason|"), "{field}");
        let (code, _, field) = failure(w.refuse_as(&admin, &quote.id, &"x".repeat(1001)).await)?;
        ensure!(code == ErrorCode::InvalidArgument && field.starts_with("reason|"), "{field}");
        ensure!(w.quote(&quote.id).await?.status() == pb::QuoteStatus::Issued, "a refused call changed the quote");
        ensure!(w.outbox_count(ACCEPTED).await? + w.outbox_count(REFUSED).await? == 0);

        // The admin accepts: who, when, the signatory and the purchase order number are recorded.
        let done = w.accept_as(&admin, &quote.id, "  Marie Dupont, maire ", " EJ-2026-0042 ").await?;
        ensure!(done.status() == pb::QuoteStatus::Accepted, "{done:?}");
        ensure!(done.signatory_name == "Marie Dupont, maire" && done.purchase_order_number == "EJ-2026-0042");
        ensure!(
            done.decided_by_name == "Marie Dupont" && !done.decided_by_user_id.is_empty() && done.decided_at.is_some()
        );
        ensure!(done.id == quote.id && done.amount_cents == quote.amount_cents && done.number == quote.number);
        ensure!(w.quote(&quote.id).await? == done, "the stored quote differs from the answer");
        // Once decided, it stays so: INVALID_TRANSITION, saying why.
        let (code, reason, message) = failure(w.accept_as(&admin, &quote.id, "Marie", "").await)?;
        ensure!((code, reason.as_str()) == (ErrorCode::FailedPrecondition, "INVALID_TRANSITION"));
        ensure!(message.contains(&format!("quote {} is already accepted", quote.number)), "{message}");
        ensure!(failure(w.refuse_as(&admin, &quote.id, "finalement non").await)?.0 == ErrorCode::FailedPrecondition);
        // Announced once, with the actor.
        let events = w.billing_messages(ACCEPTED, 1).await?;
        let event = pb::QuoteAccepted::decode(events[0].as_slice())?;
        ensure!(event.quote.as_ref() == Some(&done), "{event:?}");
        ensure!(event.actor_role == "member_admin" && event.actor_name == "Marie Dupont");
        ensure!(event.actor_user_id == done.decided_by_user_id);

        // Another quote, refused with a reason; a token without a display name shows the e-mail address.
        let (_, other) = propose(&mut w, &offer, Some(&accepted.member_id)).await?;
        let mut claims = Claims::new(Uuid::now_v7(), Role::MemberAdmin, time::now().timestamp());
        claims.member_id = Some(accepted.member_id.clone());
        claims.email = "dgs@provins.example".into();
        let unnamed = w.keys.sign(&claims);
        let refused = w.refuse_as(&unnamed, &other.id, " Budget non voté cette année. ").await?;
        ensure!(refused.status() == pb::QuoteStatus::Refused, "{refused:?}");
        ensure!(refused.decision_reason == "Budget non voté cette année." && refused.signatory_name.is_empty());
        ensure!(refused.decided_by_name == "dgs@provins.example" && refused.decided_by_user_id == claims.sub);
        let (code, _, message) = failure(w.accept_as(&admin, &other.id, "Marie", "").await)?;
        ensure!(code == ErrorCode::FailedPrecondition && message.contains("is refused"), "{message}");
        let events = w.billing_messages(REFUSED, 1).await?;
        let event = pb::QuoteRefused::decode(events[0].as_slice())?;
        ensure!(event.quote.as_ref() == Some(&refused) && event.actor_name == "dgs@provins.example");
        ensure!(w.outbox_count(ACCEPTED).await? == 1, "the refusal announced an acceptance");

        // The quote PDF shows the decision.
        let pdf = pb::ExportQuoteRequest { id: quote.id.clone(), format: pb::ExportFormat::Pdf.into() };
        let file = w.client.export_quote(with_token(pdf, &admin)).await?.into_inner();
        let text = support::pdf_text("quote-accepted", &file.content)?;
        ensure!(text.contains("ACCEPTÉ") && text.contains("Marie Dupont, maire") && text.contains("EJ-2026-0042"));
        let pdf = pb::ExportQuoteRequest { id: other.id.clone(), format: pb::ExportFormat::Pdf.into() };
        let file = w.client.export_quote(with_token(pdf, &admin)).await?.into_inner();
        let text = support::pdf_text("quote-refused", &file.content)?;
        ensure!(text.contains("REFUSÉ") && text.contains("Budget non voté"), "{text}");
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

#[tokio::test]
async fn a_cancelled_request_voids_its_proposed_or_accepted_quote_once_and_is_never_invoiced() -> anyhow::Result<()> {
    let mut w = World::start("billingvoid").await?;
    let result = async {
        let offer = billed_offer();
        w.publish_offer(&offer).await?;
        // A proposed quote, voided by the cancellation.
        let (first, proposed) = propose(&mut w, &offer, None).await?;
        let cancel = cancelled(&first, " Projet abandonné ");
        let id = w.publish_cancelled(&cancel).await?;
        w.wait_processed("billing-request-cancellations", &id).await?;
        let voided = w.quote(&proposed.id).await?;
        ensure!(voided.status() == pb::QuoteStatus::Voided, "{voided:?}");
        ensure!(voided.decision_reason == "request cancelled: Projet abandonné", "{}", voided.decision_reason);
        ensure!(voided.decided_by_name == "Jean Martin" && voided.decided_by_user_id == cancel.actor_user_id);

        // An accepted quote, voided too; the signatory stays on record.
        let (second, quote) = propose(&mut w, &offer, None).await?;
        let admin = w.member_admin(&second.member_id, "Marie Dupont");
        w.accept_as(&admin, &quote.id, "Marie Dupont", "EJ-7").await?;
        let cancel = cancelled(&second, "");
        let id = w.publish_cancelled(&cancel).await?;
        w.wait_processed("billing-request-cancellations", &id).await?;
        let voided_accepted = w.quote(&quote.id).await?;
        ensure!(voided_accepted.status() == pb::QuoteStatus::Voided, "{voided_accepted:?}");
        ensure!(
            voided_accepted.decision_reason == "request cancelled" && voided_accepted.signatory_name == "Marie Dupont"
        );
        ensure!(voided_accepted.purchase_order_number == "EJ-7");

        // Redelivered under another message id: nothing more. Each void announced once.
        for cancel in [cancelled(&first, "Projet abandonné"), cancel] {
            let id = w.publish_cancelled(&cancel).await?;
            w.wait_processed("billing-request-cancellations", &id).await?;
        }
        let events = w.billing_messages(VOIDED, 2).await?;
        let mut voided_ids: Vec<String> = Vec::new();
        for event in events {
            voided_ids.push(pb::QuoteVoided::decode(event.as_slice())?.quote.context("quote")?.id);
        }
        ensure!(voided_ids == [proposed.id.clone(), quote.id.clone()], "{voided_ids:?}");
        ensure!(w.quote(&quote.id).await? == voided_accepted, "a redelivery changed the voided quote");

        // A completion after the void (stale; requests never sends it, billing still does not invoice).
        let id = w.publish_completed(&completed(&second)).await?;
        w.wait_processed("billing-request-completions", &id).await?;
        ensure!(w.invoice_count().await? == 0, "a voided quote was invoiced");
        // Too late to accept.
        let (code, reason, message) = failure(w.accept_as(&admin, &quote.id, "Marie", "").await)?;
        ensure!((code, reason.as_str()) == (ErrorCode::FailedPrecondition, "INVALID_TRANSITION"));
        ensure!(message.contains(&format!("quote {} is voided: the request was cancelled", quote.number)), "{message}");
        // An acceptance of the cancelled request's referral delivered late proposes nothing.
        let late = routing::ReferralAccepted {
            referral_id: Uuid::now_v7().to_string(),
            request_id: first.request_id.clone(),
            member_id: first.member_id.clone(),
            ..first.clone()
        };
        let msg = Uuid::now_v7().to_string();
        w.publish_referral(&late, &msg).await?;
        w.wait_processed("billing-referrals", &msg).await?;
        ensure!(w.quotes_of(&first.request_id).await?.len() == 1, "a quote was proposed for a cancelled request");
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

#[tokio::test]
async fn request_completed_invoices_only_an_accepted_quote_once() -> anyhow::Result<()> {
    let mut w = World::start("billingcomplete").await?;
    let result = async {
        let offer = billed_offer();
        w.publish_offer(&offer).await?;
        // A free offer: no quote, nothing to bill.
        let free = offer_free();
        w.publish_offer(&free).await?;
        let gratis = referral(&free);
        let msg = Uuid::now_v7().to_string();
        w.publish_referral(&gratis, &msg).await?;
        w.wait_processed("billing-referrals", &msg).await?;
        let id = w.publish_completed(&completed(&gratis)).await?;
        w.wait_processed("billing-request-completions", &id).await?;
        // A quote still proposed: not invoiced.
        let (waiting, proposed) = propose(&mut w, &offer, None).await?;
        let id = w.publish_completed(&completed(&waiting)).await?;
        w.wait_processed("billing-request-completions", &id).await?;
        ensure!(w.invoice_count().await? == 0, "invoiced without an accepted quote");
        ensure!(w.quote(&proposed.id).await?.status() == pb::QuoteStatus::Issued);

        // Accepted, then completed by an event without the referral (older requests): the request's accepted
        // quote is invoiced, once whatever the redeliveries.
        let admin = w.member_admin(&waiting.member_id, "Marie Dupont");
        let quote = w.accept_as(&admin, &proposed.id, "Marie Dupont", "").await?;
        let mut done = completed(&waiting);
        done.referral_id.clear();
        for _ in 0..3 {
            let id = w.publish_completed(&done).await?;
            w.wait_processed("billing-request-completions", &id).await?;
        }
        let with_referral = w.publish_completed(&completed(&waiting)).await?;
        w.wait_processed("billing-request-completions", &with_referral).await?;
        ensure!(w.invoice_count().await? == 1);
        let invoice = wait_invoice(&mut w, &waiting.request_id).await?;
        ensure!(invoice.quote_id == quote.id && invoice.quote_number == quote.number, "{invoice:?}");
        ensure!(invoice.purchase_order_number.is_empty() && invoice.total_net_cents == quote.amount_cents);
        ensure!(invoice.total_gross_cents == 144_000, "{invoice:?}");
        ensure!(w.outbox_count("id77.billing.invoice.issued").await? == 1);

        // A completion naming another member's referral is refused (dead-lettered), not invoiced.
        let (other, other_quote) = propose(&mut w, &offer, None).await?;
        let other_admin = w.member_admin(&other.member_id, "Léa Petit");
        w.accept_as(&other_admin, &other_quote.id, "Léa Petit", "").await?;
        let mut forged = completed(&other);
        forged.member_id = waiting.member_id.clone();
        w.publish_completed(&forged).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let dead = w.js.get_stream(w.ns.stream(id77_platform::streams::DEADLETTER.name)).await;
            if let Ok(mut stream) = dead
                && stream.info().await?.state.messages == 1
            {
                break;
            }
            ensure!(tokio::time::Instant::now() < deadline, "the inconsistent completion was not dead-lettered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ensure!(w.invoice_count().await? == 1, "an inconsistent completion was invoiced");
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

fn offer_free() -> catalogue::Offer {
    offer("dir-culture", false, 0, 1)
}

/// The cancellation and the member admin's acceptance race, many times: each time the quote ends voided, and
/// the acceptance either succeeded before the void (announced once, then voided with its signatory kept) or
/// failed with INVALID_TRANSITION after it (never announced). One void each time.
#[tokio::test]
async fn a_concurrent_acceptance_and_cancellation_resolve_to_one_outcome() -> anyhow::Result<()> {
    let mut w = World::start("billingrace").await?;
    let result = async {
        let mut outcomes = (0, 0);
        for round in 0u64..20 {
            let request_id = Uuid::now_v7();
            let member_id = Uuid::now_v7();
            let draft = QuoteDraft {
                issuer_code: "caue77".into(),
                member_id,
                request_id,
                referral_id: Uuid::now_v7(),
                offer_id: Uuid::now_v7(),
                offer_version: 1,
                label: format!("Conseil {round}"),
                amount_cents: 50_000,
                amount_to_be_stated: false,
                vat: domain::Vat::Rate(2000),
                seller: Default::default(),
                buyer: Default::default(),
            };
            let mut tx = w.pool.begin().await?;
            let quote = quotes::issue(&mut tx, draft, time::now(), chrono::Duration::days(30)).await?;
            tx.commit().await?;
            let accepted = routing::ReferralAccepted {
                referral_id: quote.referral_id.to_string(),
                request_id: request_id.to_string(),
                member_id: member_id.to_string(),
                provider_code: "caue77".into(),
                ..Default::default()
            };
            let admin = w.member_admin(&member_id.to_string(), "Marie Dupont");
            let mut client = w.client.clone();
            let id = quote.id.to_string();
            let accept = tokio::spawn(async move {
                // Let the cancellation go first now and then.
                if round % 2 == 1 {
                    tokio::time::sleep(Duration::from_millis(round % 7)).await;
                }
                let req = pb::AcceptQuoteRequest {
                    id,
                    signatory_name: "Marie Dupont".into(),
                    purchase_order_number: String::new(),
                };
                client.accept_quote(with_token(req, &admin)).await
            });
            let msg = w.publish_cancelled(&cancelled(&accepted, "course")).await?;
            let answer = accept.await?;
            w.wait_processed("billing-request-cancellations", &msg).await?;
            let stored = w.quote(&quote.id.to_string()).await?;
            ensure!(stored.status() == pb::QuoteStatus::Voided, "round {round}: {stored:?}");
            let accepted_events = announced(&w, ACCEPTED, |e: pb::QuoteAccepted| e.quote).await?;
            let accepted_here = accepted_events.iter().filter(|q| q.id == stored.id).count();
            let voided_events = announced(&w, VOIDED, |e: pb::QuoteVoided| e.quote).await?;
            let voided_here: Vec<&pb::Quote> = voided_events.iter().filter(|q| q.id == stored.id).collect();
            ensure!(voided_here.len() == 1, "round {round}: {} voids", voided_here.len());
            match answer {
                Ok(response) => {
                    let accepted = response.into_inner();
                    ensure!(accepted.status() == pb::QuoteStatus::Accepted, "round {round}: {accepted:?}");
                    ensure!(accepted_here == 1, "round {round}: acceptance announced {accepted_here} times");
                    ensure!(stored.signatory_name == "Marie Dupont", "round {round}: {stored:?}");
                    ensure!(voided_here[0].signatory_name == "Marie Dupont");
                    outcomes.0 += 1;
                }
                Err(status) => {
                    let e = ServiceError::from_status(&status);
                    ensure!(
                        (e.code, e.reason.as_ref()) == (ErrorCode::FailedPrecondition, "INVALID_TRANSITION"),
                        "round {round}: {status:?}"
                    );
                    ensure!(accepted_here == 0, "round {round}: a refused acceptance was announced");
                    ensure!(stored.signatory_name.is_empty(), "round {round}: {stored:?}");
                    outcomes.1 += 1;
                }
            }
        }
        eprintln!("accepted then voided: {}, voided first: {}", outcomes.0, outcomes.1);
        ensure!(outcomes.0 + outcomes.1 == 20);
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

#[tokio::test]
async fn a_proposed_quote_expires_after_its_validity_and_is_announced_once() -> anyhow::Result<()> {
    let mut w = World::start_with("billingexpiry", |config| {
        config.quote_validity = chrono::Duration::seconds(2);
        config.expiry_sweep_interval = Duration::from_millis(200);
    })
    .await?;
    let result = async {
        let offer = billed_offer();
        w.publish_offer(&offer).await?;
        let (_, lapsing) = propose(&mut w, &offer, None).await?;
        let (kept, answered) = propose(&mut w, &offer, None).await?;
        let issued = lapsing.issued_at.as_ref().and_then(time::from_proto).context("issued_at")?;
        let expires = lapsing.expires_at.as_ref().and_then(time::from_proto).context("expires_at")?;
        ensure!(expires == issued + chrono::Duration::seconds(2), "{issued} → {expires}");
        // Accepted in time: never expires.
        let admin = w.member_admin(&kept.member_id, "Marie Dupont");
        w.accept_as(&admin, &answered.id, "Marie Dupont", "").await?;

        let expired = w.wait_quote_status(&lapsing.id, pb::QuoteStatus::Expired).await?;
        let decided = expired.decided_at.as_ref().and_then(time::from_proto).context("decided_at")?;
        ensure!(decided >= expires && expired.decided_by_user_id.is_empty(), "{expired:?}");
        ensure!(expired.decision_reason.starts_with("no answer before"), "{}", expired.decision_reason);
        // Later sweeps do nothing more: announced once.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let events = w.billing_messages(EXPIRED, 1).await?;
        let event = pb::QuoteExpired::decode(events[0].as_slice())?;
        ensure!(event.quote.as_ref() == Some(&expired), "{event:?}");
        ensure!(w.quote(&answered.id).await?.status() == pb::QuoteStatus::Accepted, "an accepted quote expired");
        let lapsed_admin = w.member_admin(&lapsing.member_id, "Paul Durand");
        let (code, reason, message) = failure(w.accept_as(&lapsed_admin, &lapsing.id, "Paul Durand", "").await)?;
        ensure!((code, reason.as_str()) == (ErrorCode::FailedPrecondition, "INVALID_TRANSITION"));
        ensure!(message.contains("expired"), "{message}");
        let pdf = pb::ExportQuoteRequest { id: lapsing.id.clone(), format: pb::ExportFormat::Pdf.into() };
        let file = w.client.export_quote(with_token(pdf, &lapsed_admin)).await?.into_inner();
        ensure!(support::pdf_text("quote-expired", &file.content)?.contains("EXPIRÉ"));
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

/// The sweeper against the database alone: due proposed quotes expire in batches, a quote another transaction
/// holds (a member admin deciding) is skipped until it is released, quotes not due or not proposed stay.
#[tokio::test]
async fn the_expiry_sweep_skips_locked_quotes_and_expires_in_batches() -> anyhow::Result<()> {
    let url = fresh_database_url("billingsweep");
    let result = async {
        let pool = id77_platform::db::connect(&url, &MIGRATOR, 5).await?;
        let now = time::now();
        let draft = |i: usize| QuoteDraft {
            issuer_code: "caue77".into(),
            member_id: Uuid::now_v7(),
            request_id: Uuid::now_v7(),
            referral_id: Uuid::now_v7(),
            offer_id: Uuid::from_u128(1),
            offer_version: 1,
            label: format!("Devis {i}"),
            amount_cents: 10_000,
            amount_to_be_stated: false,
            vat: domain::Vat::Rate(2000),
            seller: Default::default(),
            buyer: Default::default(),
        };
        let mut due = Vec::new();
        let mut tx = pool.begin().await?;
        for i in 0..7 {
            // Proposed 31 days ago with a validity of 30: due.
            due.push(
                quotes::issue(&mut tx, draft(i), now - chrono::Duration::days(31), chrono::Duration::days(30)).await?,
            );
        }
        let fresh = quotes::issue(&mut tx, draft(7), now, chrono::Duration::days(30)).await?;
        tx.commit().await?;
        // One due quote is being decided elsewhere.
        let mut holder = pool.begin().await?;
        let held = store::quote_for_update(&mut holder, due[0].id).await?.context("held quote")?;
        let swept = quotes::expire_due(&pool, now, 3).await?;
        ensure!(swept == 6, "{swept} expired with one locked");
        ensure!(store::get_quote(&pool, held.id).await?.map(|q| q.status).as_deref() == Some("proposed"));
        holder.rollback().await?;
        ensure!(quotes::expire_due(&pool, now, 3).await? == 1);
        ensure!(quotes::expire_due(&pool, now, 3).await? == 0, "a second sweep expired again");
        for quote in &due {
            let stored = store::get_quote(&pool, quote.id).await?.context("quote")?;
            ensure!(stored.status == "expired" && stored.decided_at == Some(now), "{stored:?}");
        }
        ensure!(store::get_quote(&pool, fresh.id).await?.map(|q| q.status).as_deref() == Some("proposed"));
        let events: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE subject = 'id77.billing.quote.expired'")
                .fetch_one(&pool)
                .await?;
        ensure!(events == 7, "{events} QuoteExpired events for 7 quotes");
        pool.close().await;
        Ok(())
    }
    .await;
    drop_database(&url).await;
    result
}

/// The reconciler reads everything as the coordinator: every quote and invoice, with no member or request
/// filter, page by page; the operator reads none.
#[tokio::test]
async fn the_coordinator_lists_every_quote_and_invoice_page_by_page() -> anyhow::Result<()> {
    let mut w = World::start("billinglistall").await?;
    let result = async {
        let offer = billed_offer();
        w.publish_offer(&offer).await?;
        let mut quote_ids = Vec::new();
        let mut invoice_ids = Vec::new();
        for _ in 0..3 {
            let (accepted, quote) = propose(&mut w, &offer, None).await?;
            let admin = w.member_admin(&accepted.member_id, "Maire");
            w.accept_as(&admin, &quote.id, "Maire", "").await?;
            w.publish_completed(&completed(&accepted)).await?;
            invoice_ids.push(wait_invoice(&mut w, &accepted.request_id).await?.id);
            quote_ids.push(quote.id);
        }
        // A fourth, only proposed.
        quote_ids.push(propose(&mut w, &offer, None).await?.1.id);
        let coordinator = w.coordinator.clone();
        let mut listed = Vec::new();
        let mut token = String::new();
        loop {
            let req = pb::ListQuotesRequest { page_size: 3, page_token: token.clone(), ..Default::default() };
            let page = w.client.list_quotes(with_token(req, &coordinator)).await?.into_inner();
            ensure!(page.quotes.len() <= 3);
            listed.extend(page.quotes.into_iter().map(|q| q.id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        ensure!(
            sorted(listed.iter().map(String::as_str).collect())
                == sorted(quote_ids.iter().map(String::as_str).collect())
        );
        let mut listed = Vec::new();
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let req = pb::ListInvoicesRequest { page_size: 2, page_token: token.clone(), ..Default::default() };
            let page = w.client.list_invoices(with_token(req, &coordinator)).await?.into_inner();
            pages += 1;
            listed.extend(page.invoices.into_iter().map(|i| i.id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        ensure!(pages == 2, "{pages} pages of 2 for 3 invoices");
        ensure!(listed == invoice_ids, "{listed:?} != {invoice_ids:?}");
        let operator = w.keys.token(Role::Operator, None, None);
        let denied = w.client.list_invoices(with_token(pb::ListInvoicesRequest::default(), &operator)).await;
        ensure!(code(denied)? == tonic::Code::PermissionDenied);
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}

#[tokio::test]
async fn a_list_synced_since_an_instant_gives_the_quotes_and_invoices_changed_after_it() -> anyhow::Result<()> {
    let mut w = World::start("billingsync").await?;
    let result = async {
        let offer = billed_offer();
        w.publish_offer(&offer).await?;
        let mut invoice_ids = Vec::new();
        for _ in 0..2 {
            let (accepted, quote) = propose(&mut w, &offer, None).await?;
            let admin = w.member_admin(&accepted.member_id, "Maire");
            w.accept_as(&admin, &quote.id, "Maire", "").await?;
            w.publish_completed(&completed(&accepted)).await?;
            invoice_ids.push(wait_invoice(&mut w, &accepted.request_id).await?.id);
        }
        let (waiting, proposed) = propose(&mut w, &offer, None).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let synced = time::now();
        // After the sync: a quote refused, an invoice sent.
        let admin = w.member_admin(&waiting.member_id, "Maire");
        w.refuse_as(&admin, &proposed.id, "Hors budget").await?;
        let today = domain::french_date(time::now()).format("%Y-%m-%d").to_string();
        let sent = pb::MarkInvoiceRequest {
            id: invoice_ids[0].clone(),
            mark: pb::InvoiceMark::Sent.into(),
            date: today,
            ..Default::default()
        };
        let coordinator = w.coordinator.clone();
        w.client.mark_invoice(with_token(sent, &coordinator)).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let later = time::now();

        let since = |at: chrono::DateTime<chrono::Utc>| Some(time::to_proto(at));
        let quotes = |at| pb::ListQuotesRequest { updated_since: since(at), ..Default::default() };
        let invoices = |at| pb::ListInvoicesRequest { updated_since: since(at), ..Default::default() };
        let listed = w.client.list_quotes(with_token(quotes(synced), &coordinator)).await?.into_inner().quotes;
        ensure!(ids(&listed) == [proposed.id.as_str()], "{:?}", ids(&listed));
        ensure!(w.client.list_quotes(with_token(quotes(later), &coordinator)).await?.into_inner().quotes.is_empty());
        let member = w.keys.token(Role::MemberUser, Uuid::parse_str(&waiting.member_id).ok(), None);
        let mine = w.client.list_quotes(with_token(quotes(synced), &member)).await?.into_inner().quotes;
        ensure!(ids(&mine) == [proposed.id.as_str()], "{:?}", ids(&mine));
        let listed = w.client.list_invoices(with_token(invoices(synced), &coordinator)).await?.into_inner().invoices;
        ensure!(listed.iter().map(|i| &i.id).collect::<Vec<_>>() == [&invoice_ids[0]], "{listed:?}");
        let none = w.client.list_invoices(with_token(invoices(later), &coordinator)).await?.into_inner().invoices;
        ensure!(none.is_empty(), "{none:?}");
        // Still paged in issue order.
        let long_ago = synced - chrono::Duration::hours(1);
        let first = pb::ListInvoicesRequest { page_size: 1, ..invoices(long_ago) };
        let page = w.client.list_invoices(with_token(first, &coordinator)).await?.into_inner();
        ensure!(page.invoices.iter().map(|i| &i.id).collect::<Vec<_>>() == [&invoice_ids[0]]);
        let next = pb::ListInvoicesRequest { page_size: 1, page_token: page.next_page_token, ..invoices(long_ago) };
        let page = w.client.list_invoices(with_token(next, &coordinator)).await?.into_inner();
        ensure!(page.invoices.iter().map(|i| &i.id).collect::<Vec<_>>() == [&invoice_ids[1]]);
        let bad = pb::ListQuotesRequest {
            updated_since: Some(id77_proto::prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }),
            ..Default::default()
        };
        ensure!(code(w.client.list_quotes(with_token(bad, &coordinator)).await)? == tonic::Code::InvalidArgument);
        Ok(())
    }
    .await;
    w.stop().await?;
    result
}
