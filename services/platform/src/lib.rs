//! Plumbing shared by every ID 77 service. Nothing here knows about members, offers or requests: it moves
//! bytes reliably between PostgreSQL, JetStream and gRPC.
//!
//! What needs neither a database nor gRPC (the NATS connection and streams, telemetry, time, shutdown, the
//! health probes) lives in `id77-bus`, which the partners' referral consumer uses alone; it is re-exported here
//! under its usual paths (`id77_platform::nats`, `telemetry`, `time`, `shutdown`, `probe`, the NATS settings of
//! [`config`]).

pub mod auth;
pub mod authenticate;
pub mod claims;
pub mod config;
pub mod consumer;
pub mod db;
pub mod error;
pub mod grpc;
pub mod http_server;
pub mod metrics;
pub mod outbox;
pub mod page;
pub mod revocation;
pub mod service;
pub mod streams;
pub mod testing;
pub mod validate;

pub use id77_bus::{nats, probe, shutdown, telemetry, time};

pub use authenticate::CallerOf;
pub use config::PlatformConfig;
pub use consumer::{ConsumerSpec, Event, EventHandler, HandleError};
pub use error::{DomainError, ErrorCode, ServiceError};
pub use nats::Namespace;
pub use service::ServiceContext;
