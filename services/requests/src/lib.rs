//! Requests: what a member asks of ID 77 and where it stands. Knows member status, member referents and offers
//! from its own read models, fed by events; never calls membership or catalogue synchronously. It is the arbiter of
//! a request's fate (ADR 0013): routing's completion and billing's quote decisions are applied here in order. Every call is
//! authorized from the caller's verified token on the request's own rows (`access`).
//!
//! Layout: `domain` (rules, no I/O) and `error`; `store` (SQL); `flow` (each use case's transaction, rules and
//! outbox writes); `grpc` with `proto_map`, and the consumers `events`, `quotes` and `notify::UserEvents`, which
//! map their input, call a flow and map its output; `conversation` and `notify` follow the same shape.

pub mod access;
pub mod conversation;
pub mod domain;
pub mod error;
pub mod events;
pub mod flow;
pub mod grpc;
pub mod invoices;
pub mod notify;
pub mod proto_map;
pub mod quotes;
pub mod session_events;
pub mod store;

use std::sync::Arc;

use id77_platform::{ConsumerSpec, PlatformConfig, ServiceContext};
use id77_proto::events::{durables, streams};
use id77_proto::requests::v1::conversation_service_server::ConversationServiceServer;
use id77_proto::requests::v1::requests_service_server::RequestsServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// gRPC name of the conversation service (health).
const CONVERSATION: &str = ConversationServiceServer::<conversation::grpc::ConversationApi>::NAME;

/// Default gRPC port.
pub const PORT: u16 = 7053;

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
    /// SMTP relay, sender and portal links of the notification mails.
    pub mail: notify::sender::MailConfig,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            platform: PlatformConfig::from_env("requests", PORT)?,
            mail: notify::sender::MailConfig::from_env()?,
        })
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let ctx = ServiceContext::start(config.platform.clone(), &MIGRATOR, &[streams::REQUESTS], shutdown).await?;
    ctx.spawn_outbox_relay();
    // Revoked sessions and users (membership's `access.revoked`): `ctx.auth` refuses their tokens.
    ctx.spawn(id77_platform::revocation::follow(
        ctx.js.clone(),
        ctx.ns.clone(),
        ctx.auth.revocations().clone(),
        ctx.shutdown.clone(),
    ));
    ctx.spawn_consumer(ConsumerSpec::from(durables::REQUESTS_MEMBERS), Arc::new(events::MemberEvents));
    ctx.spawn_consumer(ConsumerSpec::from(durables::REQUESTS_OFFERS), Arc::new(events::OfferEvents));
    ctx.spawn_consumer(ConsumerSpec::from(durables::REQUESTS_REFERRALS), Arc::new(events::ReferralEvents));
    ctx.spawn_consumer(ConsumerSpec::from(durables::REQUESTS_USERS), Arc::new(notify::UserEvents));
    ctx.spawn_consumer(ConsumerSpec::from(durables::REQUESTS_QUOTES), Arc::new(quotes::QuoteEvents));
    ctx.spawn_consumer(ConsumerSpec::from(durables::REQUESTS_INVOICES), Arc::new(invoices::InvoiceEvents));
    ctx.spawn_consumer(ConsumerSpec::from(durables::REQUESTS_SESSIONS), Arc::new(session_events::SessionEvents));
    let registrations = ConsumerSpec::from(durables::REQUESTS_REGISTRATIONS);
    ctx.spawn_consumer(registrations, Arc::new(session_events::RegistrationEvents));
    ctx.spawn(notify::sender::run(ctx.pool.clone(), config.mail, ctx.shutdown.clone()));
    let api = RequestsServiceServer::new(grpc::RequestsApi::new(ctx.pool.clone()))
        .max_decoding_message_size(id77_platform::grpc::MAX_MESSAGE_BYTES);
    let conversation = ConversationServiceServer::new(conversation::grpc::ConversationApi::new(ctx.pool.clone()));
    let routes = Routes::new(api).add_service(conversation);
    ctx.serve(listener, routes, &[RequestsServiceServer::<grpc::RequestsApi>::NAME, CONVERSATION]).await
}
