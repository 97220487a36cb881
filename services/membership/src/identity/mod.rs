//! Identity: accounts, sessions, signing keys and the audit log (owned by membership), and the access control
//! of docs/authorization.md.

pub mod crypto;
pub mod demo;
pub mod domain;
pub mod flow;
pub mod grpc;
pub mod keys;
pub mod mapping;
pub mod store;
pub mod throttle;

pub use demo::{DemoAccount, check_demo_settings, demo_accounts};
pub use flow::{announce_pending_users, bootstrap_operator, ensure_demo_accounts};
