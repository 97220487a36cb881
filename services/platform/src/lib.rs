//! Plumbing shared by every ID 77 service. Nothing here knows about members, offers or requests: it moves
//! bytes reliably between PostgreSQL, JetStream and gRPC.

pub mod auth;
pub mod config;
pub mod consumer;
pub mod db;
pub mod error;
pub mod grpc;
pub mod http_server;
pub mod metrics;
pub mod nats;
pub mod outbox;
pub mod page;
pub mod probe;
pub mod revocation;
pub mod service;
pub mod shutdown;
pub mod streams;
pub mod telemetry;
pub mod testing;
pub mod time;
pub mod validate;

pub use config::PlatformConfig;
pub use consumer::{ConsumerSpec, Event, EventHandler, HandleError};
pub use error::{ErrorCode, ServiceError};
pub use nats::Namespace;
pub use service::ServiceContext;
