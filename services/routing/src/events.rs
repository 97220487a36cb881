//! Consumers of routing. Each handler writes only through the connection it is handed, so its effect, its
//! outbox events and the inbox record of the message commit together.

use id77_platform::consumer::{ConsumerSpec, Event, EventHandler, HandleError};
use id77_platform::streams::{self, is_valid_subject_token};
use id77_platform::{outbox, time};
use id77_proto::billing::v1::QuoteAccepted;
use id77_proto::catalogue::v1::{OfferPublished, PriceKind};
use id77_proto::membership::v1::{CollectivityKind, MemberApproved, MemberUpdated};
use id77_proto::requests::v1::{RequestCancelled, RequestSubmitted};
use id77_proto::routing::v1::{
    ReferralAccepted, ReferralCompleted, ReferralDeclined, ReferralProgress, ReferralProgressed, ReferralReply,
    ReplyDecision,
};
use prost::{Message, Name};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::{self, Actor, Agreement, ReferralStatus, Reply, WireDecision, Work, WorkRefused};
use crate::flow::{FlowError, Lifecycle, Placement};
use crate::store::{self, MemberRow, OfferRow, RoutedRequestRow};

pub use crate::flow::{SUBJECT_ACCEPTED, SUBJECT_DECLINED, SUBJECT_OFFERED};

/// Subject of `ReferralCompleted`.
pub const SUBJECT_COMPLETED: &str = "id77.routing.referral.completed";
pub const SUBJECT_PROGRESSED: &str = "id77.routing.referral.progressed";

pub const DURABLE_OFFERS: &str = "routing-offers";
pub const DURABLE_REQUESTS: &str = "routing-requests";
pub const DURABLE_CANCELLATIONS: &str = "routing-cancellations";
pub const DURABLE_REPLIES: &str = "routing-replies";
pub const DURABLE_MEMBERS: &str = "routing-members";
pub const DURABLE_QUOTES: &str = "routing-quotes";

/// Billing's subject of a quote a member admin accepted.
pub const SUBJECT_QUOTE_ACCEPTED: &str = "id77.billing.quote.accepted";

/// Longest offer code or provider-facing text field accepted from the catalogue.
const MAX_CODE_CHARS: usize = 200;
/// Most themes kept per offer.
const MAX_THEMES: usize = 50;
/// Longest progress note kept.
const MAX_PROGRESS_CHARS: usize = 2000;
/// A request whose member routing has not heard of is retried this many times (membership's event may be
/// late), then routed without the member's facts (territorial rules cannot match; the explanation says so).
const MEMBER_WAIT_DELIVERIES: i64 = 4;

/// Offers published by the catalogue.
pub fn offers_spec() -> ConsumerSpec {
    ConsumerSpec::new(streams::CATALOGUE, DURABLE_OFFERS, "id77.catalogue.offer.>")
}

/// Members approved or updated by membership.
pub fn members_spec() -> ConsumerSpec {
    ConsumerSpec::new(streams::MEMBERSHIP, DURABLE_MEMBERS, "id77.membership.member.>")
}

/// Requests submitted by members.
pub fn requests_spec() -> ConsumerSpec {
    ConsumerSpec::new(streams::REQUESTS, DURABLE_REQUESTS, "id77.requests.request.submitted").with_lanes(REQUEST_LANES)
}

/// Submitted requests routed at the same time by one replica. Each is its own entity (one event per request,
/// routed under the request's advisory lock, as two replicas already do), so they need no order between them;
/// one lane capped routing at one request per commit round trip (docs/benchmarks.md).
pub const REQUEST_LANES: usize = 8;

/// Requests cancelled (withdraws their open referral).
pub fn cancellations_spec() -> ConsumerSpec {
    ConsumerSpec::new(streams::REQUESTS, DURABLE_CANCELLATIONS, "id77.requests.request.cancelled")
}

/// Quotes the member accepted (billing): the provider may start the work.
pub fn quotes_spec() -> ConsumerSpec {
    ConsumerSpec::new(streams::BILLING, DURABLE_QUOTES, SUBJECT_QUOTE_ACCEPTED)
}

/// Replies of every provider, each on its own subject.
pub fn replies_spec() -> ConsumerSpec {
    ConsumerSpec::new(streams::REFERRALS, DURABLE_REPLIES, "id77.referrals.*.reply")
}

fn reject(message: String) -> HandleError {
    HandleError::Reject(anyhow::anyhow!(message))
}

fn parse_uuid(field: &str, raw: &str) -> Result<Uuid, HandleError> {
    Uuid::parse_str(raw.trim()).map_err(|_| reject(format!("{field} {raw:?} is not a UUID")))
}

fn optional_uuid(field: &str, raw: &str) -> Result<Option<Uuid>, HandleError> {
    if raw.trim().is_empty() { Ok(None) } else { parse_uuid(field, raw).map(Some) }
}

impl From<FlowError> for HandleError {
    fn from(error: FlowError) -> Self {
        match error {
            FlowError::Db(e) => Self::Retry(e.into()),
            FlowError::NotYet(m) => Self::Retry(anyhow::anyhow!(m)),
            FlowError::Refused(m) | FlowError::NotFound(m) => Self::Reject(anyhow::anyhow!(m)),
        }
    }
}

/// Keeps the `offer` read model (the newest version of every offer) and the providers they name.
pub struct OfferHandler;

impl EventHandler for OfferHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        // The filter also brings other offer events (updated, archived...): only publications feed the model.
        if !event.event_type.is_empty() && event.event_type != OfferPublished::full_name() {
            tracing::debug!(event_type = %event.event_type, "not an offer publication; ignored");
            return Ok(());
        }
        let published: OfferPublished = event.decode()?;
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
        store::upsert_provider(conn, &offer.provider_code, &provider_name).await?;
        let price_kind = price_kind(&offer).to_owned();
        let row = OfferRow {
            offer_id,
            code: offer.code,
            title: offer.title,
            provider_code: offer.provider_code,
            version: offer.version,
            themes,
            price_kind,
        };
        if store::upsert_offer(conn, &row).await? {
            tracing::info!(%offer_id, code = %row.code, version = row.version, provider = %row.provider_code, "offer known");
        } else {
            tracing::info!(%offer_id, version = row.version, "older or same offer version ignored");
        }
        Ok(())
    }
}

/// The offer's price kind as the read model keeps it: its price rule's kind, else the legacy flags (billed:
/// flat, else free), "" for a kind this build does not know.
pub fn price_kind(offer: &id77_proto::catalogue::v1::Offer) -> &'static str {
    match offer.price_rule.as_ref().map(|r| PriceKind::try_from(r.kind)) {
        Some(Ok(PriceKind::Free)) => "free",
        Some(Ok(PriceKind::Flat)) => "flat",
        Some(Ok(PriceKind::DailyRate)) => "daily_rate",
        Some(Ok(PriceKind::PerInhabitant)) => "per_inhabitant",
        Some(Ok(PriceKind::OnQuote)) => domain::ON_QUOTE,
        Some(Err(_)) => "",
        None | Some(Ok(PriceKind::Unspecified)) if offer.billed => "flat",
        None | Some(Ok(PriceKind::Unspecified)) => "free",
    }
}

fn kind_name(kind: i32) -> &'static str {
    match CollectivityKind::try_from(kind) {
        Ok(CollectivityKind::Commune) => "commune",
        Ok(CollectivityKind::Epci) => "epci",
        Ok(CollectivityKind::Syndicat) => "syndicat",
        _ => "",
    }
}

/// A bounded code from an event (longer or odd values are dropped: rules then do not match them).
fn code(raw: &str) -> String {
    let raw = raw.trim();
    if raw.len() <= 16 && raw.bytes().all(|b| b.is_ascii_alphanumeric()) { raw.to_owned() } else { String::new() }
}

/// Keeps the `member` read model: territory, kind, population, referent.
pub struct MemberHandler;

impl EventHandler for MemberHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let (row, set_referent) = match event.subject.as_str() {
            "id77.membership.member.approved" => {
                let e: MemberApproved = event.decode()?;
                let row = MemberRow {
                    member_id: parse_uuid("member_id", &e.member_id)?,
                    siren: code(&e.siren),
                    kind: kind_name(e.kind).to_owned(),
                    population: e.population.max(0),
                    insee_code: code(&e.insee_code),
                    epci_siren: code(&e.epci_siren),
                    arrondissement: code(&e.arrondissement),
                    referent_user_id: None,
                };
                (row, false)
            }
            "id77.membership.member.updated" => {
                let e: MemberUpdated = event.decode()?;
                let row = MemberRow {
                    member_id: parse_uuid("member_id", &e.member_id)?,
                    siren: code(&e.siren),
                    kind: kind_name(e.kind).to_owned(),
                    population: e.population.max(0),
                    insee_code: code(&e.insee_code),
                    epci_siren: code(&e.epci_siren),
                    arrondissement: code(&e.arrondissement),
                    referent_user_id: optional_uuid("referent_user_id", &e.referent_user_id)?,
                };
                (row, true)
            }
            _ => return Ok(()),
        };
        store::upsert_member(conn, &row, set_referent, time::now()).await?;
        tracing::info!(member_id = %row.member_id, arrondissement = %row.arrondissement, "member known");
        Ok(())
    }
}

/// Routes each submitted request: rules, then the offer's provider, then the triage queue.
pub struct RequestHandler(pub Lifecycle);

impl EventHandler for RequestHandler {
    /// By request: a redelivery of the same request's event waits behind it.
    fn ordering_key(&self, event: &Event) -> Option<u64> {
        event.decode::<RequestSubmitted>().ok().map(|e| id77_platform::consumer::key_of(&e.request_id))
    }

    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let submitted: RequestSubmitted = event.decode()?;
        let request_id = parse_uuid("request_id", &submitted.request_id)?;
        let member_id = parse_uuid("member_id", &submitted.member_id)?;
        let now = self.0.now();
        if submitted.offer_id.trim().is_empty() {
            // An open "orientation" request: no offer, so no automatic provider. The coordinator triages it.
            if store::queue_for_triage(conn, request_id, member_id, &submitted.subject, &submitted.description, now)
                .await?
            {
                tracing::info!(%request_id, "open request queued for triage");
            }
            return Ok(());
        }
        let offer_id = parse_uuid("offer_id", &submitted.offer_id)?;
        let Some(offer) = store::get_offer(conn, offer_id).await? else {
            // The catalogue's event has not reached us yet: try again later.
            return Err(HandleError::Retry(anyhow::anyhow!("offer {offer_id} of request {request_id} not yet known")));
        };
        if store::get_member(conn, member_id).await?.is_none() && event.delivered < MEMBER_WAIT_DELIVERIES {
            return Err(HandleError::Retry(anyhow::anyhow!(
                "member {member_id} of request {request_id} not yet known"
            )));
        }
        let request = RoutedRequestRow {
            request_id,
            member_id,
            offer_id,
            subject: submitted.subject,
            description: submitted.description,
        };
        store::lock_request(conn, request_id).await?;
        if !store::insert_routed_request(conn, &request, now).await? {
            tracing::info!(%request_id, "request already routed; replay ignored");
            return Ok(());
        }
        self.0.route(conn, &request, &offer, &Actor::system(), "").await?;
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
        // Lock order of every path: the request, then its referral.
        store::lock_request(conn, request_id).await?;
        store::resolve_triage(conn, request_id, self.0.now()).await?;
        let Some(open) = store::open_referral_for_update(conn, request_id).await? else {
            // None, or already withdrawn (a replay of this cancellation), declined, expired: nothing to take back.
            tracing::info!(%request_id, "cancelled request has no open referral");
            return Ok(());
        };
        let reason = domain::cancellation_reason(&domain::note(&cancelled.reason).unwrap_or_default());
        let by = Actor::from_event(&cancelled.actor_user_id, &cancelled.actor_role, &cancelled.actor_name);
        let withdrawn = self.0.cancel(conn, &open, &reason, &by).await?;
        tracing::info!(
            %request_id,
            referral_id = %withdrawn.id,
            was = %open.status,
            completed = open.completed_at.is_some(),
            by = %by.role,
            "cancelled request's referral withdrawn"
        );
        Ok(())
    }
}

/// Records the member's agreement to the quote of an accepted referral (billing's `quote.accepted`): the
/// provider may now report progress and complete it. A replay changes nothing; a referral withdrawn meanwhile
/// (the request was cancelled) is left as it is.
pub struct QuoteHandler(pub Lifecycle);

impl EventHandler for QuoteHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        if !event.event_type.is_empty() && event.event_type != QuoteAccepted::full_name() {
            tracing::debug!(event_type = %event.event_type, "not a quote acceptance; ignored");
            return Ok(());
        }
        let accepted: QuoteAccepted = event.decode()?;
        let quote = accepted.quote.ok_or_else(|| reject("QuoteAccepted without a quote".to_owned()))?;
        let referral_id = parse_uuid("quote.referral_id", &quote.referral_id)?;
        let Some(found) = store::get_referral_conn(conn, referral_id).await? else {
            return Err(reject(format!("quote {} accepted for unknown referral {referral_id}", quote.number)));
        };
        store::lock_request(conn, found.request_id).await?;
        let referral = store::referral_for_update(conn, referral_id)
            .await?
            .ok_or_else(|| reject(format!("quote {} accepted for unknown referral {referral_id}", quote.number)))?;
        if referral.status != ReferralStatus::Accepted.as_str() {
            tracing::info!(
                %referral_id,
                quote = %quote.number,
                status = %referral.status,
                "quote accepted for a referral no longer accepted; left as it is"
            );
            return Ok(());
        }
        if store::mark_agreed(conn, referral_id, self.0.now()).await? {
            tracing::info!(
                %referral_id,
                quote = %quote.number,
                was = %referral.agreement,
                by = %accepted.actor_role,
                "the member accepted the quote: work may start"
            );
        } else {
            tracing::info!(%referral_id, quote = %quote.number, "quote acceptance already recorded");
        }
        Ok(())
    }
}

/// What became of a provider's reply.
#[derive(Debug)]
pub enum ReplyOutcome {
    /// Applied: the referral as it now is.
    Applied(Box<store::ReferralRow>),
    /// Not applicable in the referral's state (an accept or decline of a decided referral, a repeated
    /// completion): no effect. The API answers FAILED_PRECONDITION `REFERRAL_STATE`; on NATS it is acked.
    Ignored(String),
    /// Refused for the offer (an accept of an offer on quote without its amount, an amount for an offer with a
    /// set price): no effect. The API answers INVALID_ARGUMENT; on NATS the reply is rejected (dead letter).
    Refused(domain::ReplyError),
    /// Progress or completion the referral's state forbids (not accepted, withdrawn, or a quote the member has
    /// not accepted): no effect. The API answers FAILED_PRECONDITION with [`WorkRefused::code`]
    /// (`INVALID_TRANSITION`, `QUOTE_NOT_ACCEPTED`); on NATS the reply is rejected (dead letter).
    Blocked { refusal: WorkRefused, message: String },
}

/// Whether work (progress, completion) may be reported on `referral` now.
fn check_work(referral: &store::ReferralRow, work: Work) -> Result<Result<(), ReplyOutcome>, HandleError> {
    let status = ReferralStatus::parse(&referral.status)
        .ok_or_else(|| reject(format!("referral {} has an unknown status {}", referral.id, referral.status)))?;
    let agreement = Agreement::parse(&referral.agreement)
        .ok_or_else(|| reject(format!("referral {} has an unknown agreement {}", referral.id, referral.agreement)))?;
    Ok(domain::check_work(status, &referral.reason, agreement).map_err(|refusal| {
        let message = refusal.message(referral.id, work);
        tracing::info!(referral_id = %referral.id, code = refusal.code(), %message, "work refused");
        ReplyOutcome::Blocked { refusal, message }
    }))
}

/// Applies a provider's reply (accept, decline, complete) to a referral sent to it, in the caller's
/// transaction: the same effects whether the reply came on the provider's NATS subject or through the API
/// (`ReplyToReferral`), recorded as decided `by` (the provider's consumer, or its agent). Rejects a reply to an
/// unknown referral or to another provider's.
pub async fn apply_reply(
    lifecycle: &Lifecycle,
    conn: &mut PgConnection,
    provider: &str,
    referral_id: Uuid,
    reply: Reply,
    by: &Actor,
) -> Result<ReplyOutcome, HandleError> {
    let Some(found) = store::get_referral_conn(conn, referral_id).await? else {
        return Err(reject(format!("{provider} replied to unknown referral {referral_id}")));
    };
    // Same lock order as the other paths: the request, then the referral.
    store::lock_request(conn, found.request_id).await?;
    let referral = store::referral_for_update(conn, referral_id)
        .await?
        .ok_or_else(|| reject(format!("{provider} replied to unknown referral {referral_id}")))?;
    if referral.provider_code != provider {
        // A provider can only answer the referrals sent to it.
        return Err(reject(format!(
            "{provider} replied to referral {referral_id}, which was offered to {}",
            referral.provider_code
        )));
    }
    let now = lifecycle.now();
    let Some(transition) = reply.transition() else {
        // Completion of accepted work (a claim: requests confirms it with request.completed, ADR 0013).
        if let Err(blocked) = check_work(&referral, Work::Complete)? {
            return Ok(blocked);
        }
        if store::mark_completed(conn, referral_id, now).await? {
            let completed = ReferralCompleted {
                referral_id: referral.id.to_string(),
                request_id: referral.request_id.to_string(),
                offer_id: referral.offer_id.to_string(),
                member_id: referral.member_id.to_string(),
                provider_code: referral.provider_code.clone(),
                occurred_at: Some(time::to_proto(now)),
                actor_user_id: by.user_id_string(),
                actor_role: by.role.clone(),
                actor_name: by.name.clone(),
            };
            outbox::enqueue(conn, SUBJECT_COMPLETED, &completed).await?;
            tracing::info!(%referral_id, %provider, by = %by.role, "referral completed");
            let row = store::get_referral_conn(conn, referral_id).await?.unwrap_or(referral);
            return Ok(ReplyOutcome::Applied(Box::new(row)));
        }
        tracing::info!(%referral_id, %provider, "completion repeated; ignored");
        return Ok(ReplyOutcome::Ignored("the referral is already completed".to_owned()));
    };
    let status = ReferralStatus::parse(&referral.status)
        .ok_or_else(|| reject(format!("referral {referral_id} has an unknown status {}", referral.status)))?;
    if let Err(error) = status.apply(transition) {
        tracing::info!(%referral_id, %provider, %error, "reply to a decided referral ignored");
        return Ok(ReplyOutcome::Ignored(format!("the referral is already {}", referral.status)));
    }
    let mut agreement = None;
    if let Reply::Accept(quote) = &reply {
        let price_kind =
            store::get_offer(conn, referral.offer_id).await?.map(|offer| offer.price_kind).unwrap_or_default();
        if let Err(error) = domain::check_quote(&price_kind, quote.as_ref()) {
            tracing::info!(%referral_id, %provider, %price_kind, %error, "accept refused");
            return Ok(ReplyOutcome::Refused(error));
        }
        agreement = Some(Agreement::on_accept(&price_kind).unwrap_or_else(|| {
            // No price kind for this offer (no offer, an offer read before routing kept price kinds, or a kind
            // this build does not know; the read model keeps no other billed flag): nothing to wait for, rather
            // than a referral stuck behind a quote nobody may be asked to accept.
            tracing::warn!(
                %referral_id,
                offer_id = %referral.offer_id,
                %price_kind,
                "offer's price kind unknown to routing: the work does not wait for a quote"
            );
            Agreement::NotRequired
        }));
    }
    let referral = lifecycle.close(conn, &referral, transition, reply.reason(), by, agreement).await?;
    match reply {
        Reply::Accept(quote) => {
            let (amount_cents, quote_note) = quote.map(|q| (q.amount_cents, q.note)).unwrap_or_default();
            let accepted = ReferralAccepted {
                referral_id: referral.id.to_string(),
                request_id: referral.request_id.to_string(),
                offer_id: referral.offer_id.to_string(),
                member_id: referral.member_id.to_string(),
                provider_code: referral.provider_code.clone(),
                occurred_at: Some(time::to_proto(now)),
                amount_cents,
                quote_note,
                actor_user_id: by.user_id_string(),
                actor_role: by.role.clone(),
                actor_name: by.name.clone(),
            };
            outbox::enqueue(conn, SUBJECT_ACCEPTED, &accepted).await?;
        }
        Reply::Decline { reason } => {
            // Re-route first (the next referral's events precede the decline in the outbox), so the decline
            // can say where the request went.
            let placement = lifecycle.reroute(conn, &referral).await?;
            let declined = ReferralDeclined {
                referral_id: referral.id.to_string(),
                request_id: referral.request_id.to_string(),
                offer_id: referral.offer_id.to_string(),
                member_id: referral.member_id.to_string(),
                provider_code: referral.provider_code.clone(),
                reason,
                occurred_at: Some(time::to_proto(now)),
                rerouted: true,
                next_provider_code: placement.provider_code().to_owned(),
                actor_user_id: by.user_id_string(),
                actor_role: by.role.clone(),
                actor_name: by.name.clone(),
            };
            outbox::enqueue(conn, SUBJECT_DECLINED, &declined).await?;
            if let Placement::Triage = placement {
                tracing::info!(%referral_id, "declined; no candidate left: triage queue");
            }
        }
        Reply::Complete => {}
    }
    tracing::info!(%referral_id, %provider, status = referral.status, "referral decided");
    Ok(ReplyOutcome::Applied(Box::new(referral)))
}

/// A provider's progress report, as it came (NATS or API).
#[derive(Debug, Clone)]
pub struct ProgressReport<'a> {
    /// Orders the reports and makes a repeated one a no-op; `None` takes the next one.
    pub sequence: Option<i32>,
    pub note: &'a str,
    pub percent: u32,
    /// When the provider reported it (`None`: now).
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Records a progress report of a provider on its accepted referral (NATS or API), made `by` its consumer or
/// its agent. Refused (no effect) on a referral not accepted, or whose quote the member has not accepted.
pub async fn apply_progress(
    lifecycle: &Lifecycle,
    conn: &mut PgConnection,
    provider: &str,
    referral_id: Uuid,
    report: ProgressReport<'_>,
    by: &Actor,
) -> Result<ReplyOutcome, HandleError> {
    let unknown = || reject(format!("{provider} reported progress on unknown referral {referral_id}"));
    let found = store::get_referral_conn(conn, referral_id).await?.ok_or_else(unknown)?;
    // Same lock order as the other paths: the request, then the referral.
    store::lock_request(conn, found.request_id).await?;
    let referral = store::referral_for_update(conn, referral_id).await?.ok_or_else(unknown)?;
    if referral.provider_code != provider {
        return Err(reject(format!("{provider} reported progress on referral {referral_id} of another provider")));
    }
    if let Err(blocked) = check_work(&referral, Work::Progress)? {
        return Ok(blocked);
    }
    let ProgressReport { sequence, note, percent, at } = report;
    let note: String = note.trim().chars().filter(|c| !c.is_control()).take(MAX_PROGRESS_CHARS).collect();
    let sequence = match sequence {
        Some(s) => s,
        None => store::next_progress_sequence(conn, referral_id).await?,
    };
    let percent = i32::try_from(percent.min(100)).unwrap_or(100);
    let at = at.unwrap_or_else(|| lifecycle.now());
    if store::add_progress(conn, referral_id, sequence, &note, percent, at).await? {
        // Requests moves the request to in_progress.
        let progressed = ReferralProgressed {
            referral_id: referral.id.to_string(),
            request_id: referral.request_id.to_string(),
            member_id: referral.member_id.to_string(),
            provider_code: referral.provider_code.clone(),
            sequence: u32::try_from(sequence).unwrap_or(0),
            note,
            percent: u32::try_from(percent).unwrap_or(0),
            occurred_at: Some(time::to_proto(at)),
            actor_user_id: by.user_id_string(),
            actor_role: by.role.clone(),
            actor_name: by.name.clone(),
        };
        outbox::enqueue(conn, SUBJECT_PROGRESSED, &progressed).await?;
        tracing::info!(%referral_id, %provider, sequence, percent, "progress reported");
    }
    let row = store::get_referral_conn(conn, referral_id).await?.unwrap_or(referral);
    Ok(ReplyOutcome::Applied(Box::new(row)))
}

/// Applies providers' replies (accept, decline, complete) and progress reports to their own referrals.
pub struct ReplyHandler(pub Lifecycle);

impl ReplyHandler {
    async fn progress(&self, conn: &mut PgConnection, provider: &str, event: &Event) -> Result<(), HandleError> {
        let message: ReferralProgress = event.decode()?;
        let referral_id = parse_uuid("referral_id", &message.referral_id)?;
        let sequence = i32::try_from(message.sequence).map_err(|_| reject("progress sequence too large".to_owned()))?;
        let at = message.reported_at.as_ref().and_then(time::from_proto);
        let report = ProgressReport { sequence: Some(sequence), note: &message.note, percent: message.percent, at };
        let outcome =
            apply_progress(&self.0, conn, provider, referral_id, report, &Actor::provider_consumer(provider)).await?;
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

impl EventHandler for ReplyHandler {
    async fn handle(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HandleError> {
        let provider = domain::reply_subject_provider(&event.subject)
            .ok_or_else(|| reject(format!("{} is not a provider reply subject", event.subject)))?;
        if event.event_type == ReferralProgress::full_name() {
            return self.progress(conn, provider, event).await;
        }
        let (referral_id, reply) =
            decode_reply(&event.payload).map_err(|e| reject(format!("invalid reply of {provider}: {e}")))?;
        let outcome =
            apply_reply(&self.0, conn, provider, referral_id, reply, &Actor::provider_consumer(provider)).await?;
        settle(provider, referral_id, outcome)
    }
}
