//! A connected consumer of one provider's referrals: what an organisation's program (or the command line) holds
//! to answer them, report progress and completion, and close.

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::connect::Connection;
use crate::consume;
use crate::durable::pull_consumer;
use crate::handler::Handler;
use crate::incoming::Referrals;
use crate::message_ids::MessageIds;
use crate::reply;
use crate::summary::Summary;

/// A connected consumer of one provider's referrals.
pub struct ReferralConsumer {
    conn: Connection,
}

impl ReferralConsumer {
    /// Connects to NATS with the provider's credentials (if any), under the provider's own inbox prefix.
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        Ok(Self { conn: Connection::open(config).await? })
    }

    /// The message ids this consumer gives its replies, completions and progress reports.
    pub fn message_ids(&self) -> &MessageIds {
        &self.conn.ids
    }

    /// Answers referrals until `shutdown` is cancelled or `max` referrals are answered.
    pub async fn run<H: Handler + ?Sized>(&self, handler: &H, shutdown: CancellationToken) -> anyhow::Result<Summary> {
        consume::run(&self.conn, handler, shutdown).await
    }

    /// Flushes what is still buffered (the last acks: every reply was already confirmed) and closes the connection.
    pub async fn close(self) {
        // Bounded, and skipped while disconnected (a flush then waits for a reconnection that may never come).
        id77_bus::nats::close(&self.conn.client).await;
    }

    /// The NATS client (a clone): the health endpoint's readiness follows its connection state.
    pub fn client(&self) -> async_nats::Client {
        self.conn.client.clone()
    }

    /// The typed stream of this provider's referrals and notices, from its durable consumer.
    pub async fn referrals(&self) -> anyhow::Result<Referrals<'_>> {
        let consumer = pull_consumer(&self.conn).await?;
        Referrals::open(&self.conn, &consumer, 64).await
    }

    /// Reports progress on an accepted referral (`sequence` increasing per referral; a repeated one is a
    /// duplicate). `percent` 0..=100, 0 when not given.
    pub async fn report_progress(
        &self,
        referral_id: &str,
        sequence: u32,
        note: &str,
        percent: u32,
    ) -> anyhow::Result<()> {
        reply::progress(&self.conn, referral_id, sequence, note, percent).await
    }

    /// Says an accepted referral's work is done (once: a repeat is a duplicate).
    pub async fn complete(&self, referral_id: &str) -> anyhow::Result<()> {
        reply::complete(&self.conn, referral_id).await
    }
}

/// Connects, answers referrals with `handler` until `shutdown` (or `config.max`), and closes the connection.
pub async fn run<H: Handler>(config: Config, handler: H, shutdown: CancellationToken) -> anyhow::Result<Summary> {
    let consumer = ReferralConsumer::connect(config).await?;
    let result = consumer.run(&handler, shutdown).await;
    consumer.close().await;
    result
}
