//! Event handlers. Each writes only through the connection it is given, in the transaction that also records
//! the message in the inbox: an event has its effect once, however often it is delivered.

use chrono::DateTime;
use id77_platform::consumer::{Event, EventHandler, HandleError};
use id77_platform::{ConsumerSpec, streams, time};
use id77_proto::catalogue::v1 as catalogue;
use id77_proto::membership::v1 as membership;
use id77_proto::routing::v1 as routing;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{self, Accepted, DecideError, Decision, PriceRule, Stated, Tariff, Vat};
use crate::invoices::{self, InvoiceDraft, IssueError};
use crate::parties::{self, Issuers, Party, ProviderFacts};
use crate::quotes::{self, QuoteDraft};
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

pub const SUBJECT_REFERRAL_COMPLETED: &str = "id77.routing.referral.completed";

/// Completed referrals, which may call for an invoice.
pub fn completions_consumer() -> ConsumerSpec {
    ConsumerSpec::new(streams::ROUTING, "billing-completions", SUBJECT_REFERRAL_COMPLETED)
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

/// Issues a quote when a provider accepts a referral for a billed offer.
pub struct ReferralAcceptedHandler {
    pub issuers: std::sync::Arc<Issuers>,
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
        let quote = quotes::issue(conn, draft, time::now()).await?;
        tracing::info!(quote_id = %quote.id, number = %quote.number, referral_id = %quote.referral_id,
            member_id = %quote.member_id, amount_cents = quote.amount_cents, "quote issued");
        Ok(())
    }
}

/// Issues an invoice when a provider completes a referral of a billed offer: at the referral's quote when it
/// has one (the price agreed at acceptance), else at the offer's price rule. Free offers, orientations and
/// offers on quote whose amount was never stated get no invoice.
pub struct ReferralCompletedHandler {
    pub issuers: std::sync::Arc<Issuers>,
}

impl EventHandler for ReferralCompletedHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if event.subject != SUBJECT_REFERRAL_COMPLETED {
            tracing::debug!(subject = %event.subject, "routing event not used by billing");
            return Ok(());
        }
        let msg: routing::ReferralCompleted = event.decode()?;
        let done =
            Accepted::parse(&msg.referral_id, &msg.request_id, &msg.member_id, &msg.offer_id, &msg.provider_code)
                .map_err(reject)?;
        if let Some(invoice) = store::invoice_for_referral(conn, done.referral_id).await? {
            tracing::info!(referral_id = %done.referral_id, number = %invoice.number, "referral already invoiced");
            return Ok(());
        }
        let Some(offer_id) = done.offer_id else {
            tracing::info!(referral_id = %done.referral_id, "referral without an offer: nothing to invoice");
            return Ok(());
        };
        let retry = |what: String| HandleError::Retry(anyhow::anyhow!(what));
        let tariff = store::tariff(conn, offer_id)
            .await?
            .ok_or_else(|| retry(format!("tariff of offer {offer_id} not known yet")))?;
        let member = store::member(conn, done.member_id).await?;
        let (issuer_code, net_cents, vat, label, offer_version) =
            match store::quote_for_referral(conn, done.referral_id).await? {
                Some(quote) if quote.amount_to_be_stated => {
                    tracing::warn!(referral_id = %done.referral_id, quote = %quote.number,
                        "completed on an offer priced on quote whose amount was never stated: no invoice");
                    return Ok(());
                }
                Some(quote) => {
                    let vat = Vat::parse(quote.vat_rate_bp, &quote.vat_note).map_err(reject)?;
                    (quote.issuer_code, quote.amount_cents, vat, quote.label, quote.offer_version)
                }
                None => match domain::decide(&done, Some(&tariff), member.as_ref().and_then(|m| m.population)) {
                    Ok(Decision::NothingToBill | Decision::Free) => {
                        tracing::info!(referral_id = %done.referral_id, "free: no invoice");
                        return Ok(());
                    }
                    Ok(Decision::Quote { to_be_stated: true, .. }) => {
                        tracing::warn!(referral_id = %done.referral_id,
                            "completed on an offer priced on quote without a stated amount: no invoice");
                        return Ok(());
                    }
                    Ok(Decision::Quote { issuer_code, amount_cents, vat, label, offer_version, .. }) => {
                        (issuer_code, amount_cents, vat, label, offer_version)
                    }
                    Err(DecideError::UnknownTariff) => {
                        return Err(retry(format!("tariff of offer {offer_id} not known yet")));
                    }
                    Err(DecideError::UnknownPopulation) => {
                        return Err(retry(format!("population of member {} not known yet", done.member_id)));
                    }
                    Err(DecideError::Inconsistent(reason)) => {
                        return Err(reject(format!("referral {}: {reason}", done.referral_id)));
                    }
                },
            };
        let member = member
            .filter(|m| !m.siren.is_empty())
            .ok_or_else(|| retry(format!("SIREN of member {} not known yet", done.member_id)))?;
        let seller = seller(conn, &self.issuers, &issuer_code).await?;
        let buyer = parties::buyer(&member.name, &member.siren);
        let buyer_siren = member.siren;
        let draft = InvoiceDraft {
            seller,
            buyer,
            issuer_code,
            member_id: done.member_id,
            buyer_siren,
            request_id: done.request_id,
            referral_id: done.referral_id,
            offer_id,
            offer_version,
            line: domain::invoice_line(&tariff.price_rule, &label, net_cents),
            vat,
        };
        let invoice = invoices::issue(conn, draft, time::now()).await.map_err(|e| match e {
            IssueError::Db(e) => HandleError::from(e),
            IssueError::Overflow => reject(format!("referral {}: {e}", done.referral_id)),
        })?;
        tracing::info!(invoice_id = %invoice.id, number = %invoice.number, referral_id = %invoice.referral_id,
            gross_cents = invoice.gross_cents, "invoice issued");
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
