//! The provider's side of a referral: what an associated organisation (a CAUE, an agency...) runs, with its own
//! NATS credentials, to receive the requests routed to it and answer them.
//!
//! It reads `id77.referrals.<provider>.offered` (stream `REFERRALS`) through its own durable pull consumer
//! `provider-<provider>`, asks a [`Decider`] for each referral, publishes the [`ReferralReply`] on
//! `id77.referrals.<provider>.reply` with `Nats-Msg-Id: reply-<provider>-<referral_id>-<tag>` ([`MessageIds`]),
//! waits for JetStream's ack, and only then acks the referral. A crash between the reply and the ack redelivers
//! the referral; the second reply is dropped by JetStream's duplicate window (same id), and after it by routing's
//! state machine (a decided referral stays decided).
//!
//! The `<tag>` is an HMAC of the id keyed with the provider's own secret (its NKEY seed or `.creds` file):
//! JetStream de-duplicates on the message id across the whole `REFERRALS` stream, whatever the subject, so an id
//! another provider could predict would let it publish that id first, on its own reply subject, and have this
//! provider's genuine reply dropped as a duplicate (issue 19, ADR 0007 "Reply message ids"). Nobody without the
//! secret can compute the tag, so nobody can take this provider's ids.
//!
//! NATS permissions this needs, and nothing more (exact subjects, no wildcard on `$JS.>`), with `R` the stream
//! name (`REFERRALS`) and `D` the durable (`provider-<provider>`):
//! - publish: `id77.referrals.<provider>.reply`, `$JS.API.CONSUMER.INFO.R.D`, `$JS.API.CONSUMER.MSG.NEXT.R.D`,
//!   `$JS.ACK.R.D.>`;
//! - subscribe: `_INBOX_provider_<provider>.>` only ([`inbox_prefix`]): the client always uses that inbox prefix,
//!   so a provider's credentials never need the shared `_INBOX.>`, on which it could read what other providers
//!   pull;
//! - optionally `$JS.API.CONSUMER.CREATE.R.D.id77.referrals.<provider>.offered` (or the platform creates the
//!   consumer beforehand, [`consumer_config`], and this runs with `create_consumer: false`) and, in development
//!   only, `$JS.API.STREAM.INFO.R` / `$JS.API.STREAM.CREATE.R`.
//!
//! `id77-nats-config` generates a server configuration granting exactly this (an NKEY user per provider) and
//! creates the durable consumers; the consumer then authenticates with the NKEY seed ([`Config::nkey_file`]).
//!
//! From outside the platform it connects over TLS only (ADR 0014, "Partners over TLS"): `tls://<host>:<port>`
//! and the CA that signed the server's certificate ([`Config::nats_ca_file`], `--nats-ca-file`); TLS is then
//! required, and a certificate it cannot check ends the start with an error saying so.

pub mod cli;
pub mod forward;

use id77_platform::nats::{error_chain, is_tls_failure};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, AckKind, consumer::pull, message::PublishMessage, publish::PublishAck};
use futures::StreamExt;
use futures::future::BoxFuture;
use id77_platform::Namespace;
use id77_platform::streams::{REFERRALS, is_valid_subject_token, referral_offered_subject, referral_reply_subject};
use id77_proto::routing::v1::{
    ReferralOffered, ReferralProgress, ReferralReminded, ReferralReply, ReferralWithdrawn, ReplyDecision,
};
use prost::{Message, Name};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Longest decline reason routing accepts.
pub const MAX_REASON_CHARS: usize = 1000;
/// Largest amount routing accepts on a quote: 10 000 000,00 € in cents.
pub const MAX_QUOTE_CENTS: i64 = 1_000_000_000;
/// Longest quote label routing accepts.
pub const MAX_QUOTE_NOTE_CHARS: usize = 200;
/// `ReferralOffered.price_kind` of an offer priced on quote: its accept must state the amount.
pub const ON_QUOTE: &str = "on_quote";

/// How long the referral stays with this consumer before JetStream redelivers it.
const ACK_WAIT: Duration = Duration::from_secs(60);

/// Where to connect and who we are.
#[derive(Debug, Clone)]
pub struct Config {
    pub nats_url: String,
    /// A `.creds` file (JWT + nkey seed) issued to the provider.
    pub credentials: Option<PathBuf>,
    /// A file holding the provider's NKEY user seed (`SU...`), e.g. `provider-<code>.nk` from `id77-nats-config`.
    /// Exclusive with `credentials`.
    pub nkey_file: Option<PathBuf>,
    /// PEM file of the CA certificates that signed the NATS server's (`--nats-ca-file`), for a `tls://` listener
    /// whose certificate the system does not trust (the platform's own CA). With it, TLS is required.
    pub nats_ca_file: Option<PathBuf>,
    /// TLS before anything else (`--nats-tls-first`), for a listener with `handshake_first`.
    pub nats_tls_first: bool,
    /// Subject and stream prefix of the deployment (empty in production).
    pub prefix: String,
    /// The provider code: also the subject token of its two subjects.
    pub provider: String,
    /// Stop after this many answered referrals.
    pub max: Option<u64>,
    /// Create the `REFERRALS` stream if it is missing (development). A permission error is tolerated.
    pub ensure_stream: bool,
    /// Create the durable consumer if it is missing (development). When false, the consumer must exist: the
    /// platform creates it (`id77-nats-config ensure-consumers`) and the provider needs no create permission.
    pub create_consumer: bool,
    /// The amount stated when a plain accept meets an offer priced on quote (`--quote-amount-cents`). Without
    /// it such a referral is acknowledged unanswered, for an agent to accept with an amount (portal or API).
    pub quote: Option<Quote>,
}

impl Config {
    /// A configuration for `provider`, validated, with no credentials, no prefix and no limit.
    pub fn new(nats_url: impl Into<String>, provider: impl Into<String>) -> anyhow::Result<Self> {
        let config = Self {
            nats_url: nats_url.into(),
            credentials: None,
            nkey_file: None,
            nats_ca_file: None,
            nats_tls_first: false,
            prefix: String::new(),
            provider: provider.into(),
            max: None,
            ensure_stream: true,
            create_consumer: true,
            quote: None,
        };
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            is_valid_subject_token(&self.provider),
            "provider code {:?} must be 1 to 64 lowercase letters, digits or dashes",
            self.provider
        );
        anyhow::ensure!(
            self.prefix.is_empty() || self.prefix.split('.').all(is_valid_prefix_token),
            "prefix {:?} must be dot-separated tokens of letters, digits, '-' or '_'",
            self.prefix
        );
        anyhow::ensure!(
            self.credentials.is_none() || self.nkey_file.is_none(),
            "give either a credentials file or an NKEY seed file, not both"
        );
        Ok(())
    }

    /// Whether the NATS connection must be TLS: a `tls://` URL, a CA file or TLS first. (Without it, the client
    /// still upgrades to TLS when the server requires it.)
    pub fn requires_tls(&self) -> bool {
        self.nats_url.trim_start().to_ascii_lowercase().starts_with("tls://")
            || self.nats_ca_file.is_some()
            || self.nats_tls_first
    }

    /// The durable consumer's name.
    pub fn durable(&self) -> String {
        durable_name(&self.provider)
    }
}

/// The name of a provider's durable consumer on the `REFERRALS` stream.
pub fn durable_name(provider: &str) -> String {
    format!("provider-{provider}")
}

/// The inbox prefix of a provider's connections: its credentials may subscribe to `<prefix>.>` and nothing else.
pub fn inbox_prefix(provider: &str) -> String {
    format!("_INBOX_provider_{provider}")
}

/// The definition of a provider's durable pull consumer (explicit ack, filtered on its offered subject), as the
/// platform creates it beforehand and as this client creates it in development.
pub fn consumer_config(ns: &Namespace, provider: &str) -> pull::Config {
    pull::Config {
        durable_name: Some(durable_name(provider)),
        filter_subject: ns.subject(&referral_offered_subject(provider)),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        ..Default::default()
    }
}

fn is_valid_prefix_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The amount a provider states when it accepts a referral for an offer priced on quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// Euro cents, VAT excluded, 1 to [`MAX_QUOTE_CENTS`].
    pub amount_cents: i64,
    /// Optional short label (at most [`MAX_QUOTE_NOTE_CHARS`] characters).
    pub note: String,
}

impl Quote {
    /// A quote, validated as routing validates it.
    pub fn new(amount_cents: i64, note: &str) -> Result<Self, String> {
        let note = note.trim();
        if !(1..=MAX_QUOTE_CENTS).contains(&amount_cents) {
            Err(format!("a quoted amount must be 1 to {MAX_QUOTE_CENTS} cents (VAT excluded)"))
        } else if note.chars().count() > MAX_QUOTE_NOTE_CHARS || note.chars().any(char::is_control) {
            Err(format!("a quote label must be at most {MAX_QUOTE_NOTE_CHARS} characters, without control characters"))
        } else {
            Ok(Self { amount_cents, note: note.to_owned() })
        }
    }
}

/// The provider's answer to one referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accept,
    /// An accept that states the amount of an offer priced on quote.
    AcceptQuoted(Quote),
    /// With the reason given to the member (required, at most [`MAX_REASON_CHARS`] characters).
    Decline(String),
}

impl Decision {
    /// A decline, validated.
    pub fn decline(reason: &str) -> Result<Self, String> {
        let reason = reason.trim();
        if reason.is_empty() {
            Err("a decline needs a reason".to_owned())
        } else if reason.chars().count() > MAX_REASON_CHARS {
            Err(format!("a decline reason must be at most {MAX_REASON_CHARS} characters"))
        } else {
            Ok(Self::Decline(reason.to_owned()))
        }
    }

    /// The decision and reason as they go on the wire; an invalid decline or quote is refused.
    pub fn to_wire(&self) -> Result<(ReplyDecision, String), String> {
        match self {
            Self::Accept => Ok((ReplyDecision::Accept, String::new())),
            Self::AcceptQuoted(quote) => {
                Quote::new(quote.amount_cents, &quote.note)?;
                Ok((ReplyDecision::Accept, String::new()))
            }
            Self::Decline(reason) => match Self::decline(reason)? {
                Self::Decline(reason) => Ok((ReplyDecision::Decline, reason)),
                _ => Ok((ReplyDecision::Accept, String::new())),
            },
        }
    }

    /// The stated quote, on an accept that has one.
    pub fn quote(&self) -> Option<&Quote> {
        match self {
            Self::AcceptQuoted(quote) => Some(quote),
            Self::Accept | Self::Decline(_) => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Accept | Self::AcceptQuoted(_) => "accept",
            Self::Decline(_) => "decline",
        }
    }

    /// This decision for `referral`, given the provider's configured `quote`: a plain accept of an offer priced
    /// on quote states that amount, or is `None` (no amount to state: left to an agent); a stated amount is
    /// dropped for an offer routing knows is not on quote (routing would refuse the reply).
    pub fn for_offer(self, referral: &ReferralOffered, quote: Option<&Quote>) -> Option<Self> {
        let on_quote = referral.price_kind == ON_QUOTE;
        let known = !referral.price_kind.is_empty();
        match self {
            Self::Accept if on_quote => quote.cloned().map(Self::AcceptQuoted),
            Self::AcceptQuoted(_) if known && !on_quote => Some(Self::Accept),
            other => Some(other),
        }
    }
}

/// Decides each referral. Any `Fn(&ReferralOffered) -> Decision` is one.
pub trait Decider: Send + Sync {
    fn decide(&self, referral: &ReferralOffered) -> Decision;
}

impl<F> Decider for F
where
    F: Fn(&ReferralOffered) -> Decision + Send + Sync,
{
    fn decide(&self, referral: &ReferralOffered) -> Decision {
        self(referral)
    }
}

/// The rules the command line offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuleKind {
    AcceptAll,
    DeclineAll,
}

/// A fixed rule: accept everything, or decline everything with one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    AcceptAll,
    DeclineAll { reason: String },
}

impl Rule {
    /// Builds a rule; `decline-all` needs a valid reason, `accept-all` takes none.
    pub fn new(kind: RuleKind, decline_reason: Option<&str>) -> Result<Self, String> {
        match (kind, decline_reason) {
            (RuleKind::AcceptAll, None) => Ok(Self::AcceptAll),
            (RuleKind::AcceptAll, Some(_)) => Err("--decline-reason only goes with --rule decline-all".to_owned()),
            (RuleKind::DeclineAll, None) => Err("--rule decline-all needs --decline-reason".to_owned()),
            (RuleKind::DeclineAll, Some(reason)) => match Decision::decline(reason)? {
                Decision::Decline(reason) => Ok(Self::DeclineAll { reason }),
                Decision::Accept | Decision::AcceptQuoted(_) => Ok(Self::AcceptAll),
            },
        }
    }
}

impl Decider for Rule {
    fn decide(&self, _referral: &ReferralOffered) -> Decision {
        match self {
            Self::AcceptAll => Decision::Accept,
            Self::DeclineAll { reason } => Decision::Decline(reason.clone()),
        }
    }
}

/// What the consumer does with each referral and notice. Every [`Decider`] is one (it answers at once); the
/// CLI's forward and print modes are others.
pub trait Handler: Send + Sync {
    /// The answer to a referral; `None` leaves it for later (it comes back after [`Handler::retry_later`]).
    fn referral<'a>(&'a self, referral: &'a ReferralOffered) -> BoxFuture<'a, Option<Decision>>;

    /// A withdrawal or a reminder; `false` leaves it for later. Logged and done by default.
    fn notice<'a>(&'a self, notice: &'a Notice) -> BoxFuture<'a, bool> {
        match notice {
            Notice::Withdrawn(w) => tracing::warn!(
                referral_id = %w.referral_id,
                reason = %w.reason,
                after_acceptance = w.after_acceptance,
                "referral withdrawn"
            ),
            Notice::Reminded(r) => tracing::warn!(referral_id = %r.referral_id, "reminder: the deadline is near"),
        }
        Box::pin(async { true })
    }

    /// How long an unanswered referral waits before it comes back.
    fn retry_later(&self) -> Duration {
        Duration::from_secs(60)
    }
}

impl<D: Decider> Handler for D {
    fn referral<'a>(&'a self, referral: &'a ReferralOffered) -> BoxFuture<'a, Option<Decision>> {
        let decision = self.decide(referral);
        if let Err(error) = decision.to_wire() {
            // Not answered: it comes back later, when the decider may have been fixed.
            tracing::error!(%error, "the decider returned an invalid decision; referral left for later");
            return Box::pin(async { None });
        }
        Box::pin(async move { Some(decision) })
    }
}

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub accepted: u64,
    pub declined: u64,
    /// Withdrawals and reminders handled.
    pub notices: u64,
    /// Referrals left for later (the handler had no answer yet).
    pub deferred: u64,
    /// Messages that were not referrals (undecodable, no id): terminated, never redelivered.
    pub terminated: u64,
    /// Accepts of offers priced on quote with no amount to state: acknowledged unanswered, for an agent.
    pub left_to_agent: u64,
}

impl Summary {
    /// Referrals answered (and acknowledged).
    pub fn answered(&self) -> u64 {
        self.accepted + self.declined
    }
}

/// A connected consumer of one provider's referrals.
pub struct ReferralConsumer {
    config: Config,
    client: async_nats::Client,
    js: jetstream::Context,
    ns: Namespace,
    ids: MessageIds,
}

impl ReferralConsumer {
    /// Connects to NATS with the provider's credentials (if any), under the provider's own inbox prefix.
    pub async fn connect(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let (options, secret) = match (&config.credentials, &config.nkey_file) {
            (Some(path), _) => {
                let options = async_nats::ConnectOptions::with_credentials_file(path)
                    .await
                    .with_context(|| format!("reading NATS credentials {}", path.display()))?;
                let secret =
                    std::fs::read(path).with_context(|| format!("reading NATS credentials {}", path.display()))?;
                (options, Some(secret))
            }
            (None, Some(path)) => {
                let seed = id77_platform::nats::read_nkey_seed(path)?;
                (async_nats::ConnectOptions::new().nkey(seed.clone()), Some(seed.into_bytes()))
            }
            (None, None) => (async_nats::ConnectOptions::new(), None),
        };
        let ids = MessageIds::new(&config.provider, secret.as_deref());
        let options = tls_options(options, &config)?;
        // One URL or several separated by commas (a cluster's nodes): the client reconnects to any of them.
        let servers = id77_platform::nats::server_addrs(&config.nats_url)?;
        let options = options
            .name(format!("id77-referral-consumer-{}", config.provider))
            .custom_inbox_prefix(inbox_prefix(&config.provider))
            .event_callback(|event| async move {
                // Permission violations: the server refuses silently otherwise (a request just times out).
                if let async_nats::Event::ServerError(error) = event {
                    tracing::warn!(%error, "NATS server error");
                }
            })
            .connection_timeout(Duration::from_secs(5));
        // One attempt first: a refusal that retrying cannot cure (a certificate not trusted, TLS refused, the
        // credentials refused) is reported at once, with what to do; a server that does not answer yet is
        // retried as before.
        let client = match options.clone().connect(servers.clone()).await {
            Ok(client) => client,
            Err(error) if is_final_connect_error(&error) => {
                return Err(explain_nats_error(&config, "connecting to NATS", &error_chain(&error)));
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), url = %config.nats_url, "NATS does not answer yet, retrying");
                let client = options
                    .retry_on_initial_connect()
                    .connect(servers)
                    .await
                    .with_context(|| format!("connecting to NATS at {}", config.nats_url))?;
                tokio::time::timeout(Duration::from_secs(10), async {
                    while client.connection_state() != async_nats::connection::State::Connected {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
                .await
                .with_context(|| {
                    format!("NATS at {} did not answer (or refused the credentials) within 10 s", config.nats_url)
                })?;
                client
            }
        };
        if !client.server_info().tls_required && !config.requires_tls() {
            tracing::warn!(
                url = %config.nats_url,
                "the NATS connection is not encrypted: from outside the platform, connect with tls:// (ADR 0014)"
            );
        }
        let js = jetstream::new(client.clone());
        let ns = Namespace::new(config.prefix.clone());
        Ok(Self { config, client, js, ns, ids })
    }

    /// The message ids this consumer gives its replies, completions and progress reports.
    pub fn message_ids(&self) -> &MessageIds {
        &self.ids
    }

    /// Answers referrals until `shutdown` is cancelled or `max` referrals are answered.
    pub async fn run<H: Handler + ?Sized>(&self, handler: &H, shutdown: CancellationToken) -> anyhow::Result<Summary> {
        let mut summary = Summary::default();
        // A first failure is a configuration problem (wrong URL, permissions, no stream): report it.
        let mut consumer = self.consumer().await?;
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.consume(&consumer, handler, &shutdown, &mut summary).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "consumer failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    match self.consumer().await {
                        Ok(c) => consumer = c,
                        Err(error) => tracing::warn!(error = format!("{error:#}"), "consumer not available"),
                    }
                }
            }
        }
        tracing::info!(
            provider = %self.config.provider,
            accepted = summary.accepted,
            declined = summary.declined,
            terminated = summary.terminated,
            "referral consumer stopped"
        );
        Ok(summary)
    }

    /// Flushes what is still buffered (every reply and ack was already confirmed) and closes the connection.
    pub async fn close(self) {
        // Bounded, and skipped while disconnected (a flush then waits for a reconnection that may never come).
        id77_platform::service::close_nats(&self.client).await;
    }

    /// The NATS client (a clone): the health endpoint's readiness follows its connection state.
    pub fn client(&self) -> async_nats::Client {
        self.client.clone()
    }

    fn done(&self, summary: &Summary) -> bool {
        self.config.max.is_some_and(|max| summary.answered() >= max)
    }

    /// The provider's durable consumer: an existing one is used as it is; a missing one is created when
    /// `create_consumer` allows it.
    async fn consumer(&self) -> anyhow::Result<jetstream::consumer::PullConsumer> {
        let stream_name = self.ns.stream(REFERRALS.name);
        if self.config.ensure_stream {
            match tokio::time::timeout(
                Duration::from_secs(10),
                id77_platform::nats::ensure_stream(&self.js, &self.ns, REFERRALS),
            )
            .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::warn!(
                    stream = %stream_name,
                    error = format!("{error:#}"),
                    "cannot ensure the stream (not allowed?); using it as it is"
                ),
                Err(_) => tracing::warn!(stream = %stream_name, "ensuring the stream timed out; using it as it is"),
            }
        }
        let stream = self.js.get_stream_no_info(&stream_name).await.with_context(|| format!("stream {stream_name}"))?;
        let durable = self.config.durable();
        if self.config.create_consumer {
            stream
                .get_or_create_consumer(&durable, consumer_config(&self.ns, &self.config.provider))
                .await
                .with_context(|| format!("consumer {durable} on stream {stream_name}"))
        } else {
            stream.get_consumer(&durable).await.map_err(|error| {
                anyhow::anyhow!(
                    "consumer {durable} on stream {stream_name}: {error} (it must exist: the platform creates it, \
                     e.g. `id77-nats-config ensure-consumers`)"
                )
            })
        }
    }

    async fn consume<H: Handler + ?Sized>(
        &self,
        consumer: &jetstream::consumer::PullConsumer,
        handler: &H,
        shutdown: &CancellationToken,
        summary: &mut Summary,
    ) -> anyhow::Result<()> {
        // With a limit, never hold more referrals than will be answered.
        let batch = self.config.max.map_or(64, |max| max.saturating_sub(summary.answered()).clamp(1, 64));
        let mut referrals = self.referrals_from(consumer, usize::try_from(batch).unwrap_or(64)).await?;
        tracing::info!(provider = %self.config.provider, durable = %self.config.durable(), "waiting for referrals");
        loop {
            if self.done(summary) {
                return Ok(());
            }
            let next = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                next = referrals.next(summary) => next,
            };
            match next {
                None => anyhow::bail!("the referral stream ended"),
                Some(Incoming::Notice(notice, message)) => {
                    if handler.notice(&notice).await {
                        summary.notices += 1;
                        if let Err(error) = message.double_ack().await {
                            tracing::warn!(%error, "ack of a notice failed");
                        }
                    } else {
                        nak(&message, Duration::from_secs(5)).await;
                    }
                }
                Some(Incoming::Offered(pending)) => {
                    let span = tracing::info_span!(
                        "referral",
                        otel.kind = "consumer",
                        referral_id = %pending.referral.referral_id,
                        request_id = %pending.referral.request_id,
                        offer = %pending.referral.offer_code,
                    );
                    // Continues the platform's trace (routing's outbox relay set `traceparent`).
                    if let Some(headers) = pending.message.headers.as_ref() {
                        id77_platform::telemetry::extract_nats(headers, &span);
                    }
                    async {
                        tracing::info!(member_id = %pending.referral.member_id, "referral received");
                        let decision = handler.referral(&pending.referral).await;
                        let priced =
                            decision.clone().and_then(|d| d.for_offer(&pending.referral, self.config.quote.as_ref()));
                        if decision.is_some() && priced.is_none() {
                            tracing::warn!(
                                "offer priced on quote and no amount to state (--quote-amount-cents): referral \
                                 left to an agent, who accepts it with its amount in the portal or the API"
                            );
                            summary.left_to_agent += 1;
                            if let Err(error) = pending.message.double_ack().await {
                                tracing::warn!(%error, "ack of a referral left to an agent failed");
                            }
                            return;
                        }
                        match priced {
                            Some(decision) => match pending.answer(&decision).await {
                                Ok(()) => {
                                    match decision {
                                        Decision::Accept | Decision::AcceptQuoted(_) => summary.accepted += 1,
                                        Decision::Decline(_) => summary.declined += 1,
                                    }
                                    tracing::info!(decision = decision.name(), "referral answered");
                                }
                                Err(error) => tracing::warn!(error = format!("{error:#}"), "referral left for later"),
                            },
                            None => {
                                summary.deferred += 1;
                                pending.later(handler.retry_later()).await;
                            }
                        }
                    }
                    .instrument(span)
                    .await;
                }
            }
        }
    }

    /// The typed stream of this provider's referrals and notices, from its durable consumer.
    pub async fn referrals(&self) -> anyhow::Result<Referrals<'_>> {
        let consumer = self.consumer().await?;
        self.referrals_from(&consumer, 64).await
    }

    async fn referrals_from(
        &self,
        consumer: &jetstream::consumer::PullConsumer,
        batch: usize,
    ) -> anyhow::Result<Referrals<'_>> {
        let messages = consumer
            .stream()
            .max_messages_per_batch(batch)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await
            .map_err(|e| explain_nats_error(&self.config, "pulling referrals", &e.to_string()))?;
        Ok(Referrals { consumer: self, messages })
    }

    /// Publishes a reply with `Nats-Msg-Id: <id>` and waits for JetStream's ack.
    async fn publish_on_reply<M: Message + Name>(&self, message: &M, id: String) -> anyhow::Result<PublishAck> {
        let mut headers = HeaderMap::new();
        headers.insert("Id77-Event-Type", M::full_name().as_str());
        headers.insert("Content-Type", "application/protobuf");
        // The reply continues the referral's trace (routing's consumer picks it up).
        if let Some(traceparent) = id77_platform::telemetry::current_traceparent() {
            headers.insert(id77_platform::telemetry::TRACEPARENT, traceparent.as_str());
        }
        let publish = PublishMessage::build().payload(message.encode_to_vec().into()).headers(headers).message_id(id);
        let subject = self.ns.subject(&referral_reply_subject(&self.config.provider));
        let ack = self
            .js
            .send_publish(subject.clone(), publish)
            .await
            .map_err(|e| explain_nats_error(&self.config, &format!("publishing on {subject}"), &e.to_string()))?;
        ack.await
            .map_err(|e| explain_nats_error(&self.config, &format!("ack of the reply on {subject}"), &e.to_string()))
    }

    /// Publishes a reply with `Nats-Msg-Id:` [`MessageIds::reply`] and waits for JetStream's ack.
    async fn publish_reply(&self, reply: &ReferralReply) -> anyhow::Result<PublishAck> {
        self.publish_on_reply(reply, self.ids.reply(&reply.referral_id)).await
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
        anyhow::ensure!(uuid::Uuid::parse_str(referral_id).is_ok(), "referral id {referral_id:?} is not a UUID");
        anyhow::ensure!(note.chars().count() <= 2000, "a progress note must be at most 2000 characters");
        let progress = ReferralProgress {
            referral_id: referral_id.to_owned(),
            sequence,
            note: note.trim().to_owned(),
            percent: percent.min(100),
            reported_at: Some(id77_platform::time::to_proto(id77_platform::time::now())),
        };
        self.publish_on_reply(&progress, self.ids.progress(referral_id, sequence)).await?;
        Ok(())
    }

    /// Says an accepted referral's work is done (once: a repeat is a duplicate).
    pub async fn complete(&self, referral_id: &str) -> anyhow::Result<()> {
        anyhow::ensure!(uuid::Uuid::parse_str(referral_id).is_ok(), "referral id {referral_id:?} is not a UUID");
        let reply = ReferralReply {
            referral_id: referral_id.to_owned(),
            decision: ReplyDecision::Complete.into(),
            reason: String::new(),
            replied_at: Some(id77_platform::time::to_proto(id77_platform::time::now())),
            ..Default::default()
        };
        self.publish_on_reply(&reply, self.ids.complete(referral_id)).await?;
        Ok(())
    }
}

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
    message: jetstream::Message,
    consumer: &'a ReferralConsumer,
}

impl PendingReferral<'_> {
    /// Publishes the answer (with `Nats-Msg-Id:` [`MessageIds::reply`], so a repeat is a duplicate), then acks the
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
            replied_at: Some(id77_platform::time::to_proto(id77_platform::time::now())),
            amount_cents,
            quote_note,
        };
        match self.consumer.publish_reply(&reply).await {
            Ok(ack) if ack.duplicate => tracing::info!("reply already sent before; duplicate dropped by JetStream"),
            Ok(_) => {}
            Err(error) => {
                nak(&self.message, Duration::from_secs(1)).await;
                return Err(error);
            }
        }
        if let Err(error) = self.message.double_ack().await {
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

enum Decoded {
    Offered(ReferralOffered),
    Notice(Notice),
}

/// The stream of a provider's referrals and notices. Messages that are neither are terminated.
pub struct Referrals<'a> {
    consumer: &'a ReferralConsumer,
    messages: jetstream::consumer::pull::Stream,
}

impl<'a> Referrals<'a> {
    /// The next referral or notice (a notice is acked before it is returned); `None` when the stream ends.
    pub async fn next_item(&mut self) -> Option<Incoming<'a>> {
        let mut summary = Summary::default();
        match self.next(&mut summary).await? {
            Incoming::Notice(notice, message) => {
                if let Err(error) = message.double_ack().await {
                    tracing::warn!(%error, "ack of a notice failed");
                }
                Some(Incoming::Notice(notice, message))
            }
            offered => Some(offered),
        }
    }

    async fn next(&mut self, summary: &mut Summary) -> Option<Incoming<'a>> {
        loop {
            let message = match self.messages.next().await? {
                Ok(message) => message,
                Err(error) => {
                    // Missed heartbeats and the like: the stream recovers on its own.
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
        let nats_subject = self.consumer.ns.logical(message.subject.as_str()).to_owned();
        let event_type = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Id77-Event-Type"))
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
                if referral.provider_code != self.consumer.config.provider {
                    tracing::warn!(provider_code = %referral.provider_code, "referral names another provider");
                }
                Some(Incoming::Offered(PendingReferral { referral, message, consumer: self.consumer }))
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

/// The TLS options of the NATS connection: the CA file (checked now, so that a wrong path is said at start), TLS
/// first, and TLS required whenever [`Config::requires_tls`].
fn tls_options(mut options: async_nats::ConnectOptions, config: &Config) -> anyhow::Result<async_nats::ConnectOptions> {
    if let Some(path) = &config.nats_ca_file {
        check_ca_file(path)?;
        options = options.add_root_certificates(path.clone());
    }
    if config.nats_tls_first {
        options = options.tls_first();
    }
    Ok(options.require_tls(config.requires_tls()))
}

/// A readable PEM file holding at least one certificate.
pub fn check_ca_file(path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--nats-ca-file {}: cannot read the NATS CA file", path.display()))?;
    anyhow::ensure!(
        text.contains("-----BEGIN CERTIFICATE-----"),
        "--nats-ca-file {}: no PEM certificate in it",
        path.display()
    );
    Ok(())
}

/// Whether retrying cannot help: TLS failed (certificate, handshake) or the server refused the credentials.
fn is_final_connect_error(error: &async_nats::ConnectError) -> bool {
    use async_nats::ConnectErrorKind as Kind;
    match error.kind() {
        Kind::Tls | Kind::AuthorizationViolation | Kind::Authentication => true,
        Kind::Io => is_tls_failure(&error_chain(error)),
        _ => false,
    }
}

/// A NATS error turned into what an organisation can act on (credentials, permissions, address).
pub fn explain_nats_error(config: &Config, doing: &str, error: &str) -> anyhow::Error {
    let lower = error.to_lowercase();
    let hint = if is_tls_failure(error) {
        let ca = match &config.nats_ca_file {
            Some(path) => format!("--nats-ca-file {} did not sign it", path.display()),
            None => "no --nats-ca-file (ID77_NATS_CA_FILE) was given".to_owned(),
        };
        format!(
            "TLS with NATS at {} failed: the server's certificate must be signed by a CA this consumer trusts ({ca}: \
             give the CA certificate the platform sent you) and name the host of the URL; connect with tls:// (and \
             --nats-tls-first only if the platform says its listener does TLS first)",
            config.nats_url
        )
    } else if lower.contains("authorization violation") || lower.contains("authentication") {
        format!(
            "NATS refused the credentials: check the NKEY seed (--nkey) or .creds file (--creds) issued for provider \
             {} and that it is the one the platform registered",
            config.provider
        )
    } else if lower.contains("permission") || lower.contains("timed out") || lower.contains("timeout") {
        format!(
            "the credentials may lack a permission: provider {p} needs to publish on id77.referrals.{p}.reply and \
             to pull from the durable consumer provider-{p} on stream REFERRALS (see `id77-nats-config`); a server \
             that silently refuses shows up as a timeout",
            p = config.provider
        )
    } else if lower.contains("connection refused") || lower.contains("connect") {
        format!("NATS at {} does not answer: check --nats-url and the network", config.nats_url)
    } else {
        String::new()
    };
    if hint.is_empty() { anyhow::anyhow!("{doing}: {error}") } else { anyhow::anyhow!("{doing}: {error} — {hint}") }
}

/// The `Nats-Msg-Id`s of one provider's publications on its reply subject: `reply-<provider>-<referral_id>-<tag>`,
/// `complete-<provider>-<referral_id>-<tag>` and `progress-<provider>-<referral_id>-<sequence>-<tag>`. The same
/// publication always gets the same id (a repeat, e.g. after a crash before the referral's ack, is a duplicate
/// JetStream drops), and no one else can predict it: `<tag>` is 128 bits of HMAC-SHA256 keyed with the
/// provider's secret (its NKEY seed or `.creds` file). JetStream de-duplicates on the id across the whole stream,
/// whatever the subject, so a predictable id (`reply-<referral_id>`) let another provider publish it first on
/// its own reply subject and have this one's genuine reply dropped as a duplicate for two minutes (issue 19).
/// Without a secret (development, no authentication: anyone may publish anything) the tag is left out.
#[derive(Clone)]
pub struct MessageIds {
    provider: String,
    key: Option<Vec<u8>>,
}

impl std::fmt::Debug for MessageIds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageIds").field("provider", &self.provider).field("keyed", &self.key.is_some()).finish()
    }
}

impl MessageIds {
    /// The ids of `provider`, keyed with `secret` (the bytes of its NKEY seed or `.creds` file) when given.
    pub fn new(provider: &str, secret: Option<&[u8]>) -> Self {
        Self { provider: provider.to_owned(), key: secret.filter(|s| !s.is_empty()).map(<[u8]>::to_vec) }
    }

    /// The id of the answer (accept or decline) to a referral.
    pub fn reply(&self, referral_id: &str) -> String {
        self.id("reply", referral_id)
    }

    /// The id of the completion of a referral.
    pub fn complete(&self, referral_id: &str) -> String {
        self.id("complete", referral_id)
    }

    /// The id of a progress report on a referral.
    pub fn progress(&self, referral_id: &str, sequence: u32) -> String {
        self.id("progress", &format!("{referral_id}-{sequence}"))
    }

    fn id(&self, kind: &str, what: &str) -> String {
        let plain = format!("{kind}-{}-{what}", self.provider);
        let Some(key) = &self.key else { return plain };
        let mut mac = match <hmac::Hmac<sha2::Sha256> as hmac::KeyInit>::new_from_slice(key) {
            Ok(mac) => mac,
            // HMAC takes keys of any length; this cannot happen.
            Err(_) => return plain,
        };
        hmac::Mac::update(&mut mac, b"id77 referral consumer message id v1\0");
        hmac::Mac::update(&mut mac, plain.as_bytes());
        let tag = hmac::Mac::finalize(mac).into_bytes();
        let hex: String = tag.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("{plain}-{hex}")
    }
}

async fn terminate(message: &jetstream::Message, summary: &mut Summary) {
    summary.terminated += 1;
    if let Err(error) = message.ack_with(AckKind::Term).await {
        tracing::warn!(%error, "term failed");
    }
}

async fn nak(message: &jetstream::Message, delay: Duration) {
    if let Err(error) = message.ack_with(AckKind::Nak(Some(delay))).await {
        tracing::warn!(%error, "nak failed");
    }
}

/// Connects, answers referrals with `decider` until `shutdown` (or `config.max`), and closes the connection.
pub async fn run<H: Handler>(config: Config, handler: H, shutdown: CancellationToken) -> anyhow::Result<Summary> {
    let consumer = ReferralConsumer::connect(config).await?;
    let result = consumer.run(&handler, shutdown).await;
    consumer.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referral() -> ReferralOffered {
        ReferralOffered { referral_id: "r".into(), ..Default::default() }
    }

    #[test]
    fn rules_decide_every_referral_alike() {
        assert_eq!(Rule::new(RuleKind::AcceptAll, None).map(|r| r.decide(&referral())), Ok(Decision::Accept));
        let decline = Rule::new(RuleKind::DeclineAll, Some("  hors de notre territoire "));
        assert_eq!(decline.map(|r| r.decide(&referral())), Ok(Decision::Decline("hors de notre territoire".into())));
    }

    #[test]
    fn an_accept_states_the_amount_exactly_for_an_offer_on_quote() {
        let quote = Quote::new(245_000, " Devis 12 ").ok();
        assert_eq!(quote, Some(Quote { amount_cents: 245_000, note: "Devis 12".into() }));
        let on_quote = ReferralOffered { price_kind: ON_QUOTE.into(), ..referral() };
        let flat = ReferralOffered { price_kind: "flat".into(), ..referral() };
        let quoted = quote.clone().map(Decision::AcceptQuoted);
        assert_eq!(Decision::Accept.for_offer(&on_quote, quote.as_ref()), quoted);
        assert_eq!(Decision::Accept.for_offer(&on_quote, None), None, "left to an agent");
        assert_eq!(Decision::Accept.for_offer(&flat, quote.as_ref()), Some(Decision::Accept));
        assert_eq!(quoted.clone().and_then(|d| d.for_offer(&flat, None)), Some(Decision::Accept));
        // Unknown price kind (an older routing): the decision goes as it is.
        assert_eq!(quoted.clone().and_then(|d| d.for_offer(&referral(), None)), quoted);
        let decline = Decision::Decline("non".into());
        assert_eq!(decline.clone().for_offer(&on_quote, None), Some(decline));
        for (amount, note) in [(0, ""), (-1, ""), (MAX_QUOTE_CENTS + 1, ""), (1, "a\u{7}")] {
            assert!(Quote::new(amount, note).is_err(), "{amount} {note:?}");
        }
        let forged = Decision::AcceptQuoted(Quote { amount_cents: -4, note: String::new() });
        assert!(forged.to_wire().is_err(), "an invalid quote never reaches the wire");
        assert_eq!(
            quoted.map(|d| (d.name(), d.to_wire())),
            Some(("accept", Ok((ReplyDecision::Accept, String::new()))))
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(Rule::new(RuleKind::DeclineAll, None).is_err());
        assert!(Rule::new(RuleKind::DeclineAll, Some("  ")).is_err());
        assert!(Rule::new(RuleKind::DeclineAll, Some(&"x".repeat(MAX_REASON_CHARS + 1))).is_err());
        assert!(Rule::new(RuleKind::DeclineAll, Some(&"é".repeat(MAX_REASON_CHARS))).is_ok());
        assert!(Rule::new(RuleKind::AcceptAll, Some("why")).is_err());
    }

    #[test]
    fn closures_are_deciders_and_invalid_declines_never_reach_the_wire() {
        let by_offer = |r: &ReferralOffered| {
            if r.offer_code.starts_with("caue-") {
                Decision::Accept
            } else {
                Decision::Decline("pas notre métier".into())
            }
        };
        let caue = ReferralOffered { offer_code: "caue-conseil".into(), ..referral() };
        assert_eq!(by_offer.decide(&caue), Decision::Accept);
        assert_eq!(by_offer.decide(&referral()).to_wire(), Ok((ReplyDecision::Decline, "pas notre métier".into())));
        assert!(Decision::Decline(String::new()).to_wire().is_err());
        assert_eq!(Decision::Accept.to_wire(), Ok((ReplyDecision::Accept, String::new())));
    }

    #[test]
    fn configuration_is_validated() {
        assert!(Config::new("nats://127.0.0.1:4222", "caue77").is_ok());
        for bad in ["", "caue.77", "*", ">", "CAUE"] {
            assert!(Config::new("nats://x", bad).is_err(), "{bad:?}");
        }
        let config = Config::new("nats://x", "caue77").map(|c| c.durable());
        assert_eq!(config.ok().as_deref(), Some("provider-caue77"));
        let mut config = Config::new("nats://x", "caue77").map_err(|e| e.to_string());
        if let Ok(c) = config.as_mut() {
            c.prefix = "t1.a*".into();
        }
        assert!(config.map(|c| c.validate().is_err()).unwrap_or(false));
        let mut both = Config::new("nats://x", "caue77").map_err(|e| e.to_string());
        if let Ok(c) = both.as_mut() {
            c.credentials = Some("/a.creds".into());
            c.nkey_file = Some("/a.nk".into());
        }
        assert!(both.map(|c| c.validate().is_err()).unwrap_or(false), "creds and nkey are exclusive");
    }

    #[test]
    fn message_ids_name_the_provider_and_only_its_secret_computes_them() {
        let referral = "0190a8c4-0000-7000-8000-000000000001";
        let plain = MessageIds::new("caue77", None);
        assert_eq!(plain.reply(referral), format!("reply-caue77-{referral}"));
        assert_eq!(plain.complete(referral), format!("complete-caue77-{referral}"));
        assert_eq!(plain.progress(referral, 3), format!("progress-caue77-{referral}-3"));
        let keyed = MessageIds::new("caue77", Some(b"SUAAA-the-seed"));
        let id = keyed.reply(referral);
        let tag = id.strip_prefix(&format!("reply-caue77-{referral}-")).unwrap_or_default();
        assert!(tag.len() == 32 && tag.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        // Stable for the same secret (a repeat is a duplicate), different for another secret or provider.
        assert_eq!(MessageIds::new("caue77", Some(b"SUAAA-the-seed")).reply(referral), id);
        assert_ne!(MessageIds::new("caue77", Some(b"SUBBB-another")).reply(referral), id);
        assert_ne!(MessageIds::new("dir-eau", Some(b"SUAAA-the-seed")).reply(referral), id);
        let all =
            [keyed.reply(referral), keyed.complete(referral), keyed.progress(referral, 1), keyed.progress(referral, 2)];
        assert_eq!(all.iter().collect::<std::collections::BTreeSet<_>>().len(), 4);
        assert!(!format!("{keyed:?}").contains("SUAAA"), "no secret in Debug");
        assert_eq!(MessageIds::new("caue77", Some(b"")).reply(referral), plain.reply(referral));
    }

    #[test]
    fn the_platform_and_the_client_agree_on_the_consumer() {
        assert_eq!(inbox_prefix("caue77"), "_INBOX_provider_caue77");
        let config = consumer_config(&Namespace::new("t1"), "caue77");
        assert_eq!(config.durable_name.as_deref(), Some("provider-caue77"));
        assert_eq!(config.filter_subject, "t1.id77.referrals.caue77.offered");
        assert_eq!(config.ack_policy, jetstream::consumer::AckPolicy::Explicit);
        assert_eq!(config.ack_wait, ACK_WAIT);
    }
}
