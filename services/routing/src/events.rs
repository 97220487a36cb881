//! Consumers of routing, as the event catalogue declares them ([`id77_proto::events::durables`]). Each handler
//! reads its message by type, maps it to the flow's input and calls the flow with the connection it is handed, so
//! that its effect, its outbox events and the inbox record of the message commit together.

use id77_platform::consumer::{ConsumerSpec, Event, EventHandler, HandleError};
use id77_platform::streams::is_valid_subject_token;
use id77_platform::time;
use id77_proto::billing::v1::QuoteAccepted;
use id77_proto::catalogue::v1::{self as catalogue, OfferPublished};
use id77_proto::events::{durables, provider};
use id77_proto::membership::v1::{MemberApproved, MemberUpdated};
use id77_proto::requests::v1::{RequestCancelled, RequestSubmitted};
use id77_proto::routing::v1::{ReferralProgress, ReferralReply, ReplyDecision};
use id77_proto::vocabulary::{MemberKind, PriceKind};
use prost::Message;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{Actor, Reply, WireDecision};
use crate::flow::Lifecycle;
use crate::flow::read_models;
use crate::flow::replies::{ProgressReport, ReplyOutcome};
use crate::flow::requests::Submission;
use crate::store::{MemberRow, OfferRow, ReferralRow};
use crate::store_names::Requester;
use id77_platform::consumer::event_uuid as parse_uuid;

/// Longest offer code or provider-facing text field accepted from the catalogue.
const MAX_CODE_CHARS: usize = 200;
/// Most themes kept per offer.
const MAX_THEMES: usize = 50;
/// A request whose member routing has not heard of is retried this many times (membership's event may be
/// late), then routed without the member's facts (territorial rules cannot match; the explanation says so).
const MEMBER_WAIT_DELIVERIES: i64 = 4;

/// Offers published by the catalogue.
pub fn offers_spec() -> ConsumerSpec {
    ConsumerSpec::from(durables::ROUTING_OFFERS)
}

/// Members approved or updated by membership.
pub fn members_spec() -> ConsumerSpec {
    ConsumerSpec::from(durables::ROUTING_MEMBERS)
}

/// Requests submitted by members.
pub fn requests_spec() -> ConsumerSpec {
    ConsumerSpec::from(durables::ROUTING_REQUESTS).with_lanes(REQUEST_LANES)
}

/// Submitted requests routed at the same time by one replica. Each is its own entity (one event per request,
/// routed under the request's advisory lock, as two replicas already do), so they need no order between them;
/// one lane capped routing at one request per commit round trip (docs/benchmarks.md).
pub const REQUEST_LANES: usize = 8;

/// Requests cancelled (withdraws their open referral).
pub fn cancellations_spec() -> ConsumerSpec {
    ConsumerSpec::from(durables::ROUTING_CANCELLATIONS)
}

/// Quotes the member accepted (billing): the provider may start the work.
pub fn quotes_spec() -> ConsumerSpec {
    ConsumerSpec::from(durables::ROUTING_QUOTES)
}

/// Replies of every provider, each on its own subject.
pub fn replies_spec() -> ConsumerSpec {
    ConsumerSpec::from(durables::ROUTING_REPLIES)
}

fn reject(message: String) -> HandleError {
    HandleError::Reject(anyhow::anyhow!(message))
}

fn optional_uuid(field: &str, raw: &str) -> Result<Option<Uuid>, HandleError> {
    if raw.trim().is_empty() { Ok(None) } else { parse_uuid(field, raw).map(Some) }
}

/// Keeps the `offer` read model (the newest version of every offer) and the providers they name.
pub struct OfferHandler;

impl EventHandler for OfferHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        // The filter also brings other offer events (updated, archived...): only publications feed the model.
        let Some(published) = event.decode_as::<OfferPublished>()? else {
            tracing::debug!(event_type = %event.event_type, "not an offer publication; ignored");
            return Ok(());
        };
        let offer = published.offer.ok_or_else(|| reject("OfferPublished without an offer".to_owned()))?;
        let offer_id = parse_uuid("offer.id", &offer.id)?;
        if offer.code.trim().is_empty() || offer.code.chars().count() > MAX_CODE_CHARS {
            return Err(reject(format!("offer {offer_id} has an empty or oversized code")));
        }
        if !is_valid_subject_token(&offer.provider_code) {
            return Err(reject(format!("offer {offer_id} has an invalid provider code {:?}", offer.provider_code)));
        }
        let themes: Vec<String> = offer
            .themes
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty() && t.chars().count() <= MAX_CODE_CHARS)
            .take(MAX_THEMES)
            .collect();
        let provider_name = published
            .provider
            .filter(|p| p.code == offer.provider_code)
            .map(|p| p.name.chars().take(MAX_CODE_CHARS).collect::<String>())
            .unwrap_or_default();
        let price_kind = price_kind(&offer).map_or("", PriceKind::as_str).to_owned();
        let row = OfferRow {
            offer_id,
            code: offer.code,
            title: offer.title,
            provider_code: offer.provider_code,
            version: offer.version,
            themes,
            price_kind,
        };
        Ok(read_models::offer_published(conn, &row, &provider_name).await?)
    }
}

/// The offer's price kind as the read model keeps it: its price rule's kind, else the legacy flags (billed:
/// flat, else free); `None` for a kind this build does not know (kept empty).
pub fn price_kind(offer: &catalogue::Offer) -> Option<PriceKind> {
    match offer.price_rule.as_ref().map(|r| r.kind) {
        Some(kind) if kind != catalogue::PriceKind::Unspecified as i32 => PriceKind::from_proto(kind),
        _ if offer.billed => Some(PriceKind::Flat),
        _ => Some(PriceKind::Free),
    }
}

/// A bounded code from an event (longer or odd values are dropped: rules then do not match them).
fn code(raw: &str) -> String {
    let raw = raw.trim();
    if raw.len() <= 16 && raw.bytes().all(|b| b.is_ascii_alphanumeric()) { raw.to_owned() } else { String::new() }
}

/// The member's kind as the read model keeps it (empty when unknown).
fn kind(collectivity_kind: i32) -> String {
    MemberKind::from_collectivity(collectivity_kind).map_or("", MemberKind::as_str).to_owned()
}

/// Keeps the `member` read model: territory, kind, population, referent.
pub struct MemberHandler;

impl EventHandler for MemberHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let (row, set_referent, name) = if let Some(e) = event.decode_as::<MemberApproved>()? {
            let row = MemberRow {
                member_id: parse_uuid("member_id", &e.member_id)?,
                siren: code(&e.siren),
                kind: kind(e.kind),
                population: e.population.max(0),
                insee_code: code(&e.insee_code),
                epci_siren: code(&e.epci_siren),
                arrondissement: code(&e.arrondissement),
                referent_user_id: None,
            };
            (row, false, e.name)
        } else if let Some(e) = event.decode_as::<MemberUpdated>()? {
            let row = MemberRow {
                member_id: parse_uuid("member_id", &e.member_id)?,
                siren: code(&e.siren),
                kind: kind(e.kind),
                population: e.population.max(0),
                insee_code: code(&e.insee_code),
                epci_siren: code(&e.epci_siren),
                arrondissement: code(&e.arrondissement),
                referent_user_id: optional_uuid("referent_user_id", &e.referent_user_id)?,
            };
            (row, true, String::new())
        } else {
            return Ok(());
        };
        read_models::member_known(conn, &row, set_referent).await?;
        Ok(read_models::member_named(conn, row.member_id, &name).await?)
    }
}

/// Routes each submitted request: rules, then the offer's provider, then the triage queue.
pub struct RequestHandler(pub Lifecycle);

/// The submission a `request.submitted` event carries.
fn submission(event: &Event) -> Result<Submission, HandleError> {
    let submitted: RequestSubmitted = event.decode()?;
    let request_id = parse_uuid("request_id", &submitted.request_id)?;
    let member_id = parse_uuid("member_id", &submitted.member_id)?;
    let offer_id = optional_uuid("offer_id", &submitted.offer_id)?;
    let requester = Requester {
        // Only shown, never trusted: a malformed id is dropped rather than the request.
        user_id: Uuid::parse_str(submitted.requester_user_id.trim()).ok(),
        name: submitted.requester_name,
        email: submitted.requester_email,
    };
    Ok(Submission {
        request_id,
        member_id,
        offer_id,
        subject: submitted.subject,
        description: submitted.description,
        requester,
    })
}

impl EventHandler for RequestHandler {
    /// By request: a redelivery of the same request's event waits behind it.
    fn ordering_key(&self, event: &Event) -> Option<u64> {
        event.decode::<RequestSubmitted>().ok().map(|e| id77_platform::consumer::key_of(&e.request_id))
    }

    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let member_may_be_late = event.delivered < MEMBER_WAIT_DELIVERIES;
        Ok(self.0.request_submitted(conn, submission(event)?, member_may_be_late).await?)
    }

    const BATCHES: bool = true;

    /// As [`Self::handle`] for each event in order, the contexts of the requests naming an offer (their offer,
    /// member and the routing policy) read in one statement for the batch, not one per request (issue 23).
    async fn handle_batch(&self, conn: &mut PgConnection, events: &[&Event]) -> Result<(), HandleError> {
        let submissions = events.iter().map(|event| submission(event)).collect::<Result<Vec<_>, _>>()?;
        let pairs: Vec<(Uuid, Uuid)> =
            submissions.iter().filter_map(|s| s.offer_id.map(|offer| (offer, s.member_id))).collect();
        let mut contexts = crate::store_submissions::submission_contexts(conn, &pairs).await?.into_iter();
        for (event, submission) in events.iter().zip(submissions) {
            let member_may_be_late = event.delivered < MEMBER_WAIT_DELIVERIES;
            match submission.offer_id {
                Some(offer_id) => {
                    let context = contexts.next().ok_or_else(|| {
                        HandleError::Retry(anyhow::anyhow!("no context read for request {}", submission.request_id))
                    })?;
                    self.0.route_submitted(conn, submission, offer_id, context, member_may_be_late).await?;
                }
                None => self.0.request_submitted(conn, submission, member_may_be_late).await?,
            }
        }
        Ok(())
    }
}

/// Withdraws the current referral of a cancelled request, offered or accepted (even completed: requests, the
/// arbiter of a request's fate, cancelled it first, so a completion it never applied is overruled). ADR 0013.
pub struct CancelHandler(pub Lifecycle);

impl EventHandler for CancelHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let cancelled: RequestCancelled = event.decode()?;
        let request_id = parse_uuid("request_id", &cancelled.request_id)?;
        let by = Actor::from_event(&cancelled.actor_user_id, &cancelled.actor_role, &cancelled.actor_name);
        Ok(self.0.request_cancelled(conn, request_id, &cancelled.reason, &by).await?)
    }
}

/// Records the member's agreement to the quote of an accepted referral (billing's `quote.accepted`): the
/// provider may now report progress and complete it. A replay changes nothing; a referral withdrawn meanwhile
/// (the request was cancelled) is left as it is.
pub struct QuoteHandler(pub Lifecycle);

impl EventHandler for QuoteHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let Some(accepted) = event.decode_as::<QuoteAccepted>()? else {
            tracing::debug!(event_type = %event.event_type, "not a quote acceptance; ignored");
            return Ok(());
        };
        let quote = accepted.quote.ok_or_else(|| reject("QuoteAccepted without a quote".to_owned()))?;
        let referral_id = parse_uuid("quote.referral_id", &quote.referral_id)?;
        Ok(self.0.quote_accepted(conn, referral_id, &quote.number, &accepted.actor_role).await?)
    }
}

/// Applies providers' replies (accept, decline, complete) and progress reports to their own referrals.
pub struct ReplyHandler(pub Lifecycle);

impl ReplyHandler {
    async fn progress(
        &self,
        conn: &mut PgConnection,
        provider: &str,
        message: ReferralProgress,
    ) -> Result<(), HandleError> {
        let referral_id = parse_uuid("referral_id", &message.referral_id)?;
        let sequence = i32::try_from(message.sequence).map_err(|_| reject("progress sequence too large".to_owned()))?;
        let at = message.reported_at.as_ref().and_then(time::from_proto);
        let report = ProgressReport { sequence: Some(sequence), note: &message.note, percent: message.percent, at };
        let by = Actor::provider_consumer(provider);
        let outcome = self.0.apply_progress(conn, provider, referral_id, report, &by).await?;
        settle(provider, referral_id, outcome)
    }
}

/// What a reply on NATS becomes: applied or ignored, acked; refused or blocked, dead-lettered (nothing written).
fn settle(provider: &str, referral_id: Uuid, outcome: ReplyOutcome) -> Result<(), HandleError> {
    match outcome {
        ReplyOutcome::Refused(error) => Err(reject(format!("invalid reply of {provider} to {referral_id}: {error}"))),
        ReplyOutcome::Blocked { refusal, message } => {
            Err(reject(format!("reply of {provider} not applied ({}): {message}", refusal.code())))
        }
        ReplyOutcome::Applied(_) | ReplyOutcome::Ignored(_) => Ok(()),
    }
}

/// A provider's `ReferralReply` as routing reads it off the wire: the referral it answers and the validated
/// reply. Pure (no I/O), so that it can be fuzzed; the bytes come from outside the platform.
pub fn decode_reply(payload: &[u8]) -> Result<(Uuid, Reply), String> {
    let message = ReferralReply::decode(payload).map_err(|e| format!("undecodable ReferralReply: {e}"))?;
    let referral_id = Uuid::parse_str(message.referral_id.trim())
        .map_err(|_| format!("referral_id {:?} is not a UUID", message.referral_id))?;
    let decision = match ReplyDecision::try_from(message.decision) {
        Ok(ReplyDecision::Accept) => WireDecision::Accept,
        Ok(ReplyDecision::Decline) => WireDecision::Decline,
        Ok(ReplyDecision::Complete) => WireDecision::Complete,
        Ok(ReplyDecision::Unspecified) | Err(_) => WireDecision::Unspecified,
    };
    let reply = Reply::parse(decision, &message.reason, message.amount_cents, &message.quote_note)
        .map_err(|e| format!("reply to referral {referral_id}: {e}"))?;
    Ok((referral_id, reply))
}

/// What came on a provider's reply subject: a progress report, or a reply to a referral.
enum Answer {
    Progress(ReferralProgress),
    Reply(Uuid, Reply),
}

/// The provider and the answer of an event on a reply subject.
fn answer(event: &Event) -> Result<(&str, Answer), HandleError> {
    let provider = provider::code_of(&event.subject)
        .ok_or_else(|| reject(format!("{} is not a provider reply subject", event.subject)))?;
    if let Some(progress) = event.decode_typed::<ReferralProgress>()? {
        return Ok((provider, Answer::Progress(progress)));
    }
    // Anything else on a reply subject is a `ReferralReply` (typed, or from a provider's own client that names no
    // type), validated as it came.
    let (referral_id, reply) =
        decode_reply(&event.payload).map_err(|e| reject(format!("invalid reply of {provider}: {e}")))?;
    Ok((provider, Answer::Reply(referral_id, reply)))
}

impl EventHandler for ReplyHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        match answer(event)? {
            (provider, Answer::Progress(progress)) => self.progress(conn, provider, progress).await,
            (provider, Answer::Reply(referral_id, reply)) => {
                let by = Actor::provider_consumer(provider);
                let outcome = self.0.apply_reply(conn, provider, referral_id, reply, &by).await?;
                settle(provider, referral_id, outcome)
            }
        }
    }

    const BATCHES: bool = true;

    /// As [`Self::handle`] for each event in order, the referrals the replies answer locked in one statement for
    /// the batch (issue 23: one per reply). A referral's later answer in the batch locks and reads it again, as
    /// the earlier one left it.
    async fn handle_batch(&self, conn: &mut PgConnection, events: &[&Event]) -> Result<(), HandleError> {
        let answers = events.iter().map(|event| answer(event)).collect::<Result<Vec<_>, _>>()?;
        let mut ids: Vec<Uuid> = answers
            .iter()
            .filter_map(|(_, a)| match a {
                Answer::Reply(id, _) => Some(*id),
                Answer::Progress(_) => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut locked: std::collections::HashMap<Uuid, ReferralRow> =
            crate::store::lock_referrals(conn, &ids).await?.into_iter().map(|r| (r.id, r)).collect();
        let mut seen = std::collections::HashSet::new();
        for (provider, answer) in answers {
            match answer {
                Answer::Progress(progress) => {
                    if let Ok(id) = Uuid::parse_str(progress.referral_id.trim()) {
                        seen.insert(id);
                    }
                    self.progress(conn, provider, progress).await?;
                }
                Answer::Reply(referral_id, reply) => {
                    let referral = if seen.insert(referral_id) {
                        locked.remove(&referral_id)
                    } else {
                        crate::store::lock_referral(conn, referral_id).await?
                    };
                    let by = Actor::provider_consumer(provider);
                    let outcome = self.0.apply_reply_locked(conn, provider, referral_id, referral, reply, &by).await?;
                    settle(provider, referral_id, outcome)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use id77_proto::events::IntegrationEvent;

    use super::*;

    #[test]
    fn the_consumers_read_what_the_catalogue_declares() {
        let specs =
            [offers_spec(), members_spec(), requests_spec(), cancellations_spec(), quotes_spec(), replies_spec()];
        let durables: Vec<&str> = specs.iter().map(|s| s.durable.as_str()).collect();
        assert_eq!(
            durables,
            [
                "routing-offers",
                "routing-members",
                "routing-requests",
                "routing-cancellations",
                "routing-quotes",
                "routing-replies"
            ]
        );
        assert_eq!(requests_spec().filter_subject, RequestSubmitted::SUBJECT);
        assert_eq!(requests_spec().lanes, REQUEST_LANES);
        assert_eq!(quotes_spec().filter_subject, QuoteAccepted::SUBJECT);
        assert_eq!(replies_spec().filter_subject, provider::ALL_REPLIES);
    }

    #[test]
    fn the_provider_of_a_reply_is_its_subject_token() {
        assert_eq!(provider::code_of(&provider::reply("caue77")), Some("caue77"));
        for bad in [
            "id77.referrals.caue77.reply.x",
            "id77.referrals..reply",
            "id77.routing.caue77.reply",
            "id77.referrals.CAUE.reply",
        ] {
            assert_eq!(provider::code_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn price_kinds_come_from_the_price_rule_else_the_legacy_flags() {
        let offer = |kind: Option<catalogue::PriceKind>, billed: bool| catalogue::Offer {
            price_rule: kind.map(|k| catalogue::PriceRule { kind: k as i32, ..Default::default() }),
            billed,
            ..Default::default()
        };
        assert_eq!(price_kind(&offer(Some(catalogue::PriceKind::OnQuote), false)), Some(PriceKind::OnQuote));
        assert_eq!(price_kind(&offer(Some(catalogue::PriceKind::PerInhabitant), true)), Some(PriceKind::PerInhabitant));
        assert_eq!(price_kind(&offer(Some(catalogue::PriceKind::Unspecified), true)), Some(PriceKind::Flat));
        assert_eq!(price_kind(&offer(None, false)), Some(PriceKind::Free));
        let unknown = catalogue::Offer {
            price_rule: Some(catalogue::PriceRule { kind: 99, ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(price_kind(&unknown), None, "a kind this build does not know is kept empty");
    }
}
