//! Event handlers. Each writes only through the connection it is given, in the transaction that also records
//! the message in the inbox: an event has its effect once, however often it is delivered.

use chrono::DateTime;
use id77_platform::consumer::{Event, EventHandler, HandleError};
use id77_platform::{ConsumerSpec, streams, time};
use id77_proto::catalogue::v1 as catalogue;
use id77_proto::membership::v1 as membership;
use id77_proto::requests::v1 as requests;
use id77_proto::routing::v1 as routing;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{self, Accepted, DecideError, Decision, PriceRule, QuoteStatus, Stated, Tariff, Vat};
use crate::invoices::{self, InvoiceDraft, IssueError};
use crate::parties::{self, Issuers, Party, ProviderFacts};
use crate::quotes::{self, Actor, QuoteDraft};
use crate::store;

pub const SUBJECT_OFFER_PUBLISHED: &str = "id77.catalogue.offer.published";
pub const SUBJECT_REFERRAL_ACCEPTED: &str = "id77.routing.referral.accepted";
pub const SUBJECT_MEMBER_UPDATED: &str = "id77.membership.member.updated";

/// Offers of the catalogue, for the tariff read model.
pub fn offers_consumer() -> ConsumerSpec {
    ConsumerSpec::new(streams::CATALOGUE, "billing-offers", "id77.catalogue.offer.>")
}

/// Accepted referrals, which may call for a quote.
pub fn referrals_consumer() -> ConsumerSpec {
    ConsumerSpec::new(streams::ROUTING, "billing-referrals", SUBJECT_REFERRAL_ACCEPTED)
}

pub const SUBJECT_REQUEST_COMPLETED: &str = "id77.requests.request.completed";
pub const SUBJECT_REQUEST_CANCELLED: &str = "id77.requests.request.cancelled";

/// Completed requests, which may call for an invoice (requests decides; routing's referral.completed is only
/// the provider's claim).
pub fn request_completions_consumer() -> ConsumerSpec {
    ConsumerSpec::new(streams::REQUESTS, "billing-request-completions", SUBJECT_REQUEST_COMPLETED)
}

/// Cancelled requests, whose quotes are voided.
pub fn request_cancellations_consumer() -> ConsumerSpec {
    ConsumerSpec::new(streams::REQUESTS, "billing-request-cancellations", SUBJECT_REQUEST_CANCELLED)
}

/// Membership's member events, for the referent read model.
pub fn members_consumer() -> ConsumerSpec {
    ConsumerSpec::new(streams::MEMBERSHIP, "billing-members", "id77.membership.member.>")
}

fn reject(message: String) -> HandleError {
    HandleError::Reject(anyhow::anyhow!(message))
}

/// Keeps `tariff` up to date from `OfferPublished`; an older version than the stored one is ignored.
pub struct OfferHandler;

impl EventHandler for OfferHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.subject != SUBJECT_OFFER_PUBLISHED {
            tracing::debug!(subject = %event.subject, "catalogue event not used by billing");
            return Ok(());
        }
        let published: catalogue::OfferPublished = event.decode()?;
        if let Some(provider) = published.provider.as_ref().filter(|p| !p.code.trim().is_empty()) {
            let kind = match catalogue::ProviderKind::try_from(provider.kind) {
                Ok(catalogue::ProviderKind::DepartmentalService) => "departmental_service",
                Ok(catalogue::ProviderKind::AssociatedOrganisation) => "associated_organisation",
                _ => "unspecified",
            };
            let facts = ProviderFacts {
                code: provider.code.trim().to_owned(),
                name: provider.name.trim().to_owned(),
                kind: kind.to_owned(),
            };
            store::upsert_provider(conn, &facts).await?;
        }
        let offer = published.offer.ok_or_else(|| reject("OfferPublished without an offer".into()))?;
        let tariff = Tariff::parse(
            &offer.id,
            &offer.code,
            &offer.title,
            &offer.provider_code,
            offer.billed,
            offer.price_cents,
            offer.version,
        )
        .map_err(reject)?;
        let tariff = match offer_terms(&offer) {
            Ok(Some((rule, vat))) => tariff.with_terms(rule, vat),
            Ok(None) => tariff,
            Err(e) => return Err(reject(format!("offer {}: {e}", tariff.offer_id))),
        };
        let written = store::upsert_tariff(conn, &tariff).await?;
        if written {
            tracing::info!(offer_id = %tariff.offer_id, offer = %tariff.offer_code, version = tariff.version,
                billed = tariff.billed, price_cents = tariff.price_cents, "tariff updated");
        } else {
            tracing::debug!(offer_id = %tariff.offer_id, version = tariff.version, "tariff version already known");
        }
        Ok(())
    }
}

/// The offer's own price rule and VAT terms; `None` when it carries no price rule (legacy flat terms apply).
fn offer_terms(offer: &catalogue::Offer) -> Result<Option<(PriceRule, Vat)>, String> {
    let Some(rule) = offer.price_rule.as_ref() else { return Ok(None) };
    let kind = match catalogue::PriceKind::try_from(rule.kind) {
        Ok(catalogue::PriceKind::Unspecified) => return Ok(None),
        Ok(catalogue::PriceKind::Free) => "free",
        Ok(catalogue::PriceKind::Flat) => "flat",
        Ok(catalogue::PriceKind::DailyRate) => "daily_rate",
        Ok(catalogue::PriceKind::PerInhabitant) => "per_inhabitant",
        Ok(catalogue::PriceKind::OnQuote) => "on_quote",
        Err(_) => return Err(format!("unknown price kind {}", rule.kind)),
    };
    let rule = PriceRule::from_parts(kind, rule.amount_cents, rule.days, rule.floor_cents, rule.cap_cents)?;
    Ok(Some((rule, Vat::parse(offer.vat_rate_bp, &offer.vat_note)?)))
}

/// The seller of a document issued by `issuer_code`, from the issuer registry and the provider read model; a
/// provider without a known legal identity is retried (its offer event, or the registry entry, may be missing).
async fn seller(conn: &mut PgConnection, issuers: &Issuers, issuer_code: &str) -> Result<Party, HandleError> {
    let provider = store::provider(conn, issuer_code).await?;
    issuers.seller(issuer_code, provider.as_ref()).ok_or_else(|| {
        HandleError::Retry(anyhow::anyhow!(
            "no legal identity for issuer {issuer_code:?}: neither an entry in the issuer registry nor a known \
             departmental service"
        ))
    })
}

/// Proposes a quote to the member when a provider accepts a referral for a billed offer (`proposed`, expiring
/// `validity` later), unless billing saw the request cancelled already.
pub struct ReferralAcceptedHandler {
    pub issuers: std::sync::Arc<Issuers>,
    /// How long a proposed quote waits for a member admin's answer (`ID77_QUOTE_VALIDITY_DAYS`).
    pub validity: chrono::Duration,
}

impl EventHandler for ReferralAcceptedHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.subject != SUBJECT_REFERRAL_ACCEPTED {
            tracing::debug!(subject = %event.subject, "routing event not used by billing");
            return Ok(());
        }
        let msg: routing::ReferralAccepted = event.decode()?;
        let accepted =
            Accepted::parse(&msg.referral_id, &msg.request_id, &msg.member_id, &msg.offer_id, &msg.provider_code)
                .map_err(reject)?;
        let stated = Stated::parse(msg.amount_cents, &msg.quote_note)
            .map_err(|e| reject(format!("referral {}: {e}", accepted.referral_id)))?;
        // A replay under another message id: the referral already has its quote.
        if let Some(quote) = store::quote_for_referral(conn, accepted.referral_id).await? {
            tracing::info!(referral_id = %accepted.referral_id, number = %quote.number, "referral already quoted");
            return Ok(());
        }
        // The request was cancelled while this acceptance was on its way: no quote to propose.
        if store::is_request_cancelled(conn, accepted.request_id).await? {
            tracing::info!(referral_id = %accepted.referral_id, request_id = %accepted.request_id,
                "referral accepted for a cancelled request: no quote");
            return Ok(());
        }
        let tariff = match accepted.offer_id {
            Some(offer_id) => store::tariff(conn, offer_id).await?,
            None => None,
        };
        let member = store::member(conn, accepted.member_id).await?;
        let population = match (&tariff, accepted.offer_id) {
            (Some(t), Some(_)) if t.price_rule.needs_population() => member.as_ref().and_then(|m| m.population),
            _ => None,
        };
        let decision = match domain::decide(&accepted, tariff.as_ref(), population) {
            Ok(decision @ Decision::Quote { to_be_stated: true, .. }) => decision.with_stated(stated.as_ref()),
            Ok(decision) => {
                if let Some(s) = &stated {
                    // Routing refuses it for offers it knows; the offer's tariff decides here.
                    tracing::warn!(referral_id = %accepted.referral_id, amount_cents = s.amount_cents,
                        "amount stated for an offer not priced on quote: ignored");
                }
                decision
            }
            // The catalogue's event may still be on its way: try again later.
            Err(DecideError::UnknownTariff) => {
                return Err(HandleError::Retry(anyhow::anyhow!(
                    "tariff of offer {} not known yet",
                    accepted.offer_id.map(|id| id.to_string()).unwrap_or_default()
                )));
            }
            // Membership's event may still be on its way: try again later.
            Err(DecideError::UnknownPopulation) => {
                return Err(HandleError::Retry(anyhow::anyhow!(
                    "population of member {} not known yet",
                    accepted.member_id
                )));
            }
            Err(DecideError::Inconsistent(reason)) => {
                return Err(reject(format!("referral {}: {reason}", accepted.referral_id)));
            }
        };
        let draft = match decision {
            Decision::NothingToBill => {
                tracing::info!(referral_id = %accepted.referral_id, "referral without an offer: nothing to bill");
                return Ok(());
            }
            Decision::Free => {
                tracing::info!(referral_id = %accepted.referral_id, "free offer: no quote");
                return Ok(());
            }
            Decision::Quote { issuer_code, amount_cents, to_be_stated, vat, label, offer_id, offer_version } => {
                if issuer_code != accepted.provider_code {
                    tracing::warn!(referral_id = %accepted.referral_id, offer_provider = %issuer_code,
                        referral_provider = %accepted.provider_code,
                        "referral accepted by another provider than the offer's; the offer's provider issues the quote");
                }
                let seller = seller(conn, &self.issuers, &issuer_code).await?;
                // The quote names the member as far as billing knows it (the invoice waits for its SIREN).
                let buyer = member
                    .as_ref()
                    .map(|m| parties::buyer(&m.name, &m.siren))
                    .unwrap_or_else(|| parties::buyer("", ""));
                QuoteDraft {
                    seller,
                    buyer,
                    issuer_code,
                    member_id: accepted.member_id,
                    request_id: accepted.request_id,
                    referral_id: accepted.referral_id,
                    offer_id,
                    offer_version,
                    label,
                    amount_cents,
                    amount_to_be_stated: to_be_stated,
                    vat,
                }
            }
        };
        let quote = quotes::issue(conn, draft, time::now(), self.validity).await?;
        tracing::info!(quote_id = %quote.id, number = %quote.number, referral_id = %quote.referral_id,
            member_id = %quote.member_id, amount_cents = quote.amount_cents, expires_at = %quote.expires_at,
            "quote proposed");
        Ok(())
    }
}

/// The validated facts of `RequestCompleted`.
struct Completion {
    request_id: Uuid,
    member_id: Uuid,
    /// `None`: an event from before requests named the referral (billing then looks for the request's
    /// accepted quote).
    referral_id: Option<Uuid>,
}

fn parse_uuid(field: &str, raw: &str) -> Result<Uuid, HandleError> {
    Uuid::parse_str(raw.trim()).map_err(|_| reject(format!("{field} {raw:?} is not a UUID")))
}

impl Completion {
    fn parse(msg: &requests::RequestCompleted) -> Result<Self, HandleError> {
        let referral_id = match msg.referral_id.trim() {
            "" => None,
            raw => Some(parse_uuid("referral_id", raw)?),
        };
        Ok(Self {
            request_id: parse_uuid("request_id", &msg.request_id)?,
            member_id: parse_uuid("member_id", &msg.member_id)?,
            referral_id,
        })
    }
}

/// Invoices a completed request (ADR 0013: requests is the arbiter of a request's fate; billing invoices on
/// its `request.completed`, never on routing's claim alone): the *accepted* quote of the referral that
/// completed it, at the quote's amounts, with the quote's number (EN 16931 BT-11) and the member's purchase
/// order number (BT-13). A request without a quote (free offer, orientation) has nothing to bill; a quote not
/// accepted is not invoiced (logged: routing lets no one complete before the member's agreement).
pub struct RequestCompletedHandler {
    pub issuers: std::sync::Arc<Issuers>,
}

impl EventHandler for RequestCompletedHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.subject != SUBJECT_REQUEST_COMPLETED {
            tracing::debug!(subject = %event.subject, "requests event not used by billing");
            return Ok(());
        }
        let msg: requests::RequestCompleted = event.decode()?;
        let done = Completion::parse(&msg)?;
        let quote = match done.referral_id {
            Some(referral_id) => store::quote_for_referral_for_update(conn, referral_id).await?,
            None => {
                let quotes = store::quotes_of_request_for_update(conn, done.request_id).await?;
                let accepted = quotes.iter().position(|q| q.status == QuoteStatus::Accepted.as_str());
                // The accepted one; else the latest, to say why it is not invoiced.
                match accepted {
                    Some(i) => quotes.into_iter().nth(i),
                    None => quotes.into_iter().last(),
                }
            }
        };
        let Some(quote) = quote else {
            tracing::info!(request_id = %done.request_id, referral_id = ?done.referral_id,
                "completed request without a quote (free offer or orientation): nothing to bill");
            return Ok(());
        };
        if quote.request_id != done.request_id || quote.member_id != done.member_id {
            return Err(reject(format!(
                "request {} completed by referral {}, whose quote {} belongs to request {} of member {}",
                done.request_id, quote.referral_id, quote.number, quote.request_id, quote.member_id
            )));
        }
        // A replay under another message id: the quote is already invoiced.
        if let Some(invoice) = store::invoice_for_referral(conn, quote.referral_id).await? {
            tracing::info!(request_id = %done.request_id, number = %invoice.number, "request already invoiced");
            return Ok(());
        }
        if quote.status != QuoteStatus::Accepted.as_str() {
            tracing::warn!(request_id = %done.request_id, quote = %quote.number, status = %quote.status,
                "completed request whose quote is not accepted: no invoice");
            return Ok(());
        }
        if quote.amount_to_be_stated {
            tracing::warn!(request_id = %done.request_id, quote = %quote.number,
                "completed on an offer priced on quote whose amount was never stated: no invoice");
            return Ok(());
        }
        let retry = |what: String| HandleError::Retry(anyhow::anyhow!(what));
        let member = store::member(conn, quote.member_id)
            .await?
            .filter(|m| !m.siren.is_empty())
            .ok_or_else(|| retry(format!("SIREN of member {} not known yet", quote.member_id)))?;
        // The offer's rule only shapes the line (a daily rate shows its days); the quote's amount is billed.
        let rule = store::tariff(conn, quote.offer_id).await?.map(|t| t.price_rule).unwrap_or(PriceRule::Free);
        let vat = Vat::parse(quote.vat_rate_bp, &quote.vat_note).map_err(reject)?;
        let seller = seller(conn, &self.issuers, &quote.issuer_code).await?;
        let draft = InvoiceDraft {
            seller,
            buyer: parties::buyer(&member.name, &member.siren),
            issuer_code: quote.issuer_code.clone(),
            member_id: quote.member_id,
            buyer_siren: member.siren,
            request_id: quote.request_id,
            referral_id: quote.referral_id,
            offer_id: quote.offer_id,
            offer_version: quote.offer_version,
            line: domain::invoice_line(&rule, &quote.label, quote.amount_cents),
            vat,
            quote_id: Some(quote.id),
            quote_number: quote.number.clone(),
            purchase_order_number: quote.purchase_order_number.clone(),
        };
        let invoice = invoices::issue(conn, draft, time::now()).await.map_err(|e| match e {
            IssueError::Db(e) => HandleError::from(e),
            IssueError::Overflow => reject(format!("quote {}: {e}", quote.number)),
        })?;
        tracing::info!(invoice_id = %invoice.id, number = %invoice.number, quote = %quote.number,
            request_id = %invoice.request_id, gross_cents = invoice.gross_cents, "invoice issued");
        Ok(())
    }
}

/// Voids the quotes of a cancelled request (ADR 0013): a proposed or accepted quote becomes `voided` with the
/// reason "request cancelled: <reason>", announced by `quote.voided`. The cancellation is remembered, so a
/// referral acceptance delivered later issues no quote. An invoice cannot exist (requests refuses to cancel a
/// completed request); if one does, it is logged and nothing changes.
pub struct RequestCancelledHandler;

impl EventHandler for RequestCancelledHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.subject != SUBJECT_REQUEST_CANCELLED {
            tracing::debug!(subject = %event.subject, "requests event not used by billing");
            return Ok(());
        }
        let msg: requests::RequestCancelled = event.decode()?;
        let request_id = parse_uuid("request_id", &msg.request_id)?;
        let at = msg.occurred_at.as_ref().and_then(time::from_proto).unwrap_or_else(time::now);
        let reason = domain::void_reason(&msg.reason);
        store::record_cancelled_request(conn, request_id, &reason, at).await?;
        let invoices = store::invoices_of_request(conn, request_id).await?;
        if let Some(invoice) = invoices.first() {
            tracing::warn!(%request_id, invoice = %invoice.number,
                "cancelled request already invoiced (requests should have refused the cancellation): quotes kept");
            return Ok(());
        }
        let actor = Actor {
            user_id: match msg.actor_user_id.trim() {
                "" => None,
                raw => Uuid::parse_str(raw).ok(),
            },
            role: msg.actor_role.trim().to_owned(),
            name: msg.actor_name.trim().to_owned(),
        };
        let now = time::now();
        for quote in store::quotes_of_request_for_update(conn, request_id).await? {
            let number = quote.number.clone();
            match quotes::void(conn, quote, &reason, &actor, now).await? {
                Some(voided) => tracing::info!(%request_id, quote = %voided.number, "quote voided"),
                None => tracing::debug!(%request_id, quote = %number, "quote already final"),
            }
        }
        Ok(())
    }
}

pub const SUBJECT_MEMBER_APPROVED: &str = "id77.membership.member.approved";

/// Keeps the member read model (SIREN, population) from `MemberApproved` and `MemberUpdated`, and
/// `member_referent` (who follows the member) from `MemberUpdated`; other member events are not used.
pub struct MemberHandler;

impl EventHandler for MemberHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let parse_member =
            |raw: &str| Uuid::parse_str(raw.trim()).map_err(|_| reject(format!("member_id {raw:?} is not a UUID")));
        let population = |p: i64| if p > 0 { Some(p) } else { None };
        match event.subject.as_str() {
            SUBJECT_MEMBER_APPROVED => {
                let msg: membership::MemberApproved = event.decode()?;
                let member_id = parse_member(&msg.member_id)?;
                // Without a time, the facts count as the oldest known: any dated event overrides them.
                let at = msg.occurred_at.as_ref().and_then(time::from_proto).unwrap_or(DateTime::UNIX_EPOCH);
                store::upsert_member(
                    conn,
                    member_id,
                    msg.siren.trim(),
                    msg.name.trim(),
                    population(msg.population),
                    at,
                )
                .await?;
                tracing::info!(%member_id, population = msg.population, "member facts recorded");
                Ok(())
            }
            SUBJECT_MEMBER_UPDATED => {
                let msg: membership::MemberUpdated = event.decode()?;
                let member_id = parse_member(&msg.member_id)?;
                let referent = match msg.referent_user_id.trim() {
                    "" => None,
                    raw => Some(
                        Uuid::parse_str(raw).map_err(|_| reject(format!("referent_user_id {raw:?} is not a UUID")))?,
                    ),
                };
                let at = msg
                    .occurred_at
                    .as_ref()
                    .and_then(time::from_proto)
                    .ok_or_else(|| reject("MemberUpdated without a valid occurred_at".into()))?;
                store::upsert_member_referent(conn, member_id, referent, at).await?;
                store::upsert_member(conn, member_id, msg.siren.trim(), "", population(msg.population), at).await?;
                tracing::info!(%member_id, referent = ?referent, "member referent recorded");
                Ok(())
            }
            other => {
                tracing::debug!(subject = %other, "membership event not used by billing");
                Ok(())
            }
        }
    }
}
