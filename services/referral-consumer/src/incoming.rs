//! The stream of a provider's referrals and notices, decoded by their `Id77-Event-Type`: a referral to answer
//! exactly once ([`PendingReferral`]), or a notice about one already received ([`Notice`]). What is neither is
//! terminated, never redelivered.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use id77_proto::routing::v1::{ReferralOffered, ReferralReminded, ReferralReply, ReferralWithdrawn};
use prost::{Message, Name};

use crate::connect::Connection;
use crate::decision::{Decision, Quote};
use crate::explain::explain_nats_error;
use crate::reply;
use crate::summary::Summary;

/// A notice about a referral already received.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Routing took the referral back (request cancelled, reassigned): do not work on it. `after_acceptance`:
    /// the provider had accepted it (the request was cancelled before its completion): stop the work.
    Withdrawn(ReferralWithdrawn),
    /// The deadline is near and the referral is unanswered.
    Reminded(ReferralReminded),
}

/// One item of the referral stream.
pub enum Incoming<'a> {
    /// A referral to answer (exactly once: [`PendingReferral::answer`] or [`PendingReferral::later`]).
    Offered(PendingReferral<'a>),
    /// A notice, with its message (ack it once handled; [`Referrals::next_item`] acks it for you).
    Notice(Notice, jetstream::Message),
}

/// A referral received and not yet answered.
pub struct PendingReferral<'a> {
    pub referral: ReferralOffered,
    pub(crate) message: jetstream::Message,
    conn: &'a Connection,
}

impl PendingReferral<'_> {
    /// Publishes the answer (with `Nats-Msg-Id:` [`crate::MessageIds::reply`], so a repeat is a duplicate), then acks the
    /// referral. On failure the referral comes back later.
    pub async fn answer(self, decision: &Decision) -> anyhow::Result<()> {
        let (wire, reason) = match decision.to_wire() {
            Ok(wire) => wire,
            Err(error) => {
                nak(&self.message, Duration::from_secs(60)).await;
                anyhow::bail!("invalid decision: {error}");
            }
        };
        let (amount_cents, quote_note) = decision.quote().map(|q| (q.amount_cents, q.note.clone())).unwrap_or_default();
        let reply = ReferralReply {
            referral_id: self.referral.referral_id.clone(),
            decision: wire.into(),
            reason,
            replied_at: Some(id77_bus::time::to_proto(id77_bus::time::now())),
            amount_cents,
            quote_note,
        };
        match reply::answer(self.conn, &reply).await {
            Ok(ack) if ack.duplicate => tracing::info!("reply already sent before; duplicate dropped by JetStream"),
            Ok(_) => {}
            Err(error) => {
                nak(&self.message, Duration::from_secs(1)).await;
                return Err(error);
            }
        }
        if let Err(error) = self.message.ack().await {
            // The reply is out; a redelivery will publish it again under the same message id.
            tracing::warn!(%error, "ack of the referral failed after the reply");
        }
        Ok(())
    }

    /// Accepts an offer with a set price (routing refuses a plain accept of an offer priced on quote:
    /// [`PendingReferral::accept_quoted`]).
    pub async fn accept(self) -> anyhow::Result<()> {
        self.answer(&Decision::Accept).await
    }

    /// Accepts an offer priced on quote (`referral.price_kind == "on_quote"`) at the stated amount.
    pub async fn accept_quoted(self, amount_cents: i64, note: &str) -> anyhow::Result<()> {
        let quote = Quote::new(amount_cents, note).map_err(anyhow::Error::msg)?;
        self.answer(&Decision::AcceptQuoted(quote)).await
    }

    pub async fn decline(self, reason: &str) -> anyhow::Result<()> {
        let decision = Decision::decline(reason).map_err(anyhow::Error::msg)?;
        self.answer(&decision).await
    }

    /// Leaves the referral unanswered: it is delivered again after `delay`.
    pub async fn later(self, delay: Duration) {
        nak(&self.message, delay).await;
    }
}

/// Opens a pull on the provider's durable `consumer`, at most `batch` referrals held at a time, with heartbeats.
async fn pull(
    conn: &Connection,
    consumer: &jetstream::consumer::PullConsumer,
    batch: usize,
) -> anyhow::Result<jetstream::consumer::pull::Stream> {
    consumer
        .stream()
        .max_messages_per_batch(batch)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| explain_nats_error(&conn.config, "pulling referrals", &e.to_string()))
}

enum Decoded {
    Offered(ReferralOffered),
    Notice(Notice),
}

/// The stream of a provider's referrals and notices. Messages that are neither are terminated.
pub struct Referrals<'a> {
    conn: &'a Connection,
    consumer: jetstream::consumer::PullConsumer,
    batch: usize,
    messages: jetstream::consumer::pull::Stream,
}

impl<'a> Referrals<'a> {
    /// Pulls from the provider's durable `consumer`, at most `batch` referrals held at a time.
    pub(crate) async fn open(
        conn: &'a Connection,
        consumer: &jetstream::consumer::PullConsumer,
        batch: usize,
    ) -> anyhow::Result<Self> {
        let messages = pull(conn, consumer, batch).await?;
        Ok(Self { conn, consumer: consumer.clone(), batch, messages })
    }

    /// The next referral or notice (a notice is acked before it is returned); `None` when the stream ends.
    pub async fn next_item(&mut self) -> Option<Incoming<'a>> {
        let mut summary = Summary::default();
        match self.next(&mut summary).await? {
            Incoming::Notice(notice, message) => {
                if let Err(error) = message.ack().await {
                    tracing::warn!(%error, "ack of a notice failed");
                }
                Some(Incoming::Notice(notice, message))
            }
            offered => Some(offered),
        }
    }

    pub(crate) async fn next(&mut self, summary: &mut Summary) -> Option<Incoming<'a>> {
        loop {
            let message = match self.messages.next().await? {
                Ok(message) => message,
                Err(error) if id77_bus::nats::pull_is_lost(&error) => {
                    // async-nats renews a pull only 5 s after it expires: a lost pull request is renewed now.
                    // A second apart, so that a server without JetStream (no responders) is not asked in a loop.
                    tracing::warn!(%error, "the pull went unanswered: pulling again in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    match pull(self.conn, &self.consumer, self.batch).await {
                        Ok(messages) => self.messages = messages,
                        Err(error) => tracing::warn!(error = format!("{error:#}"), "pulling again failed"),
                    }
                    continue;
                }
                Err(error) => {
                    tracing::debug!(%error, "pull error");
                    continue;
                }
            };
            if let Some(incoming) = self.classify(message, summary).await {
                return Some(incoming);
            }
        }
    }

    /// Decodes a message by its `Id77-Event-Type`; terminates what is not a valid referral or notice.
    async fn classify(&self, message: jetstream::Message, summary: &mut Summary) -> Option<Incoming<'a>> {
        let nats_subject = self.conn.ns.logical(message.subject.as_str()).to_owned();
        let event_type = message
            .headers
            .as_ref()
            .and_then(|h| h.get(id77_proto::events::EVENT_TYPE_HEADER))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let payload = message.payload.clone();
        let valid_id = |id: &str| uuid::Uuid::parse_str(id).is_ok();
        let decoded = if event_type == ReferralWithdrawn::full_name() {
            ReferralWithdrawn::decode(payload)
                .ok()
                .filter(|w| valid_id(&w.referral_id))
                .map(|w| Decoded::Notice(Notice::Withdrawn(w)))
        } else if event_type == ReferralReminded::full_name() {
            ReferralReminded::decode(payload)
                .ok()
                .filter(|r| valid_id(&r.referral_id))
                .map(|r| Decoded::Notice(Notice::Reminded(r)))
        } else if event_type.is_empty() || event_type == ReferralOffered::full_name() {
            ReferralOffered::decode(payload).ok().filter(|r| valid_id(&r.referral_id)).map(Decoded::Offered)
        } else {
            None
        };
        match decoded {
            Some(Decoded::Offered(referral)) => {
                if referral.provider_code != self.conn.config.provider {
                    tracing::warn!(provider_code = %referral.provider_code, "referral names another provider");
                }
                Some(Incoming::Offered(PendingReferral { referral, message, conn: self.conn }))
            }
            Some(Decoded::Notice(notice)) => Some(Incoming::Notice(notice, message)),
            None => {
                tracing::warn!(%nats_subject, %event_type, "not a valid referral or notice; terminated");
                terminate(&message, summary).await;
                None
            }
        }
    }
}

async fn terminate(message: &jetstream::Message, summary: &mut Summary) {
    summary.terminated += 1;
    if let Err(error) = message.ack_with(AckKind::Term).await {
        tracing::warn!(%error, "term failed");
    }
}

pub(crate) async fn nak(message: &jetstream::Message, delay: Duration) {
    if let Err(error) = message.ack_with(AckKind::Nak(Some(delay))).await {
        tracing::warn!(%error, "nak failed");
    }
}
