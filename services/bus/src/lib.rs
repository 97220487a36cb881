//! The message bus and the process plumbing that needs neither a database nor gRPC: the NATS connection, the
//! deployment's subject namespace and the JetStream streams of the event catalogue ([`id77_proto::events`]),
//! structured logs and traces (with the W3C trace context over NATS and HTTP), protobuf time, graceful shutdown
//! and the HTTP health probes of processes that serve nothing else.
//!
//! Every platform service uses it through `id77-platform` (which re-exports these modules); the partners'
//! referral consumer uses it directly, so that an associated organisation runs no database driver, gRPC stack or
//! web framework.

pub mod config;
pub mod nats;
pub mod probe;
pub mod shutdown;
pub mod telemetry;
pub mod time;

pub use nats::Namespace;
