//! Orchestration: one module per use case, each owning its transaction (or running in the consumer's inbox
//! transaction), calling the rules (`domain`, `access`), the storage (`store`) and the mails (`notify`), and
//! writing the integration events to the outbox in the same transaction as the state they announce. gRPC
//! handlers and event handlers map their input, call a flow, and map its output.
//!
//! - [`lifecycle`]: recording a step of a request and the events and mails it brings (every path goes through it);
//! - [`submit`]: a member's submission;
//! - [`commands`]: users' commands on a request (cancel, close) and feedback;
//! - [`referrals`]: routing's referral outcomes moving requests along;
//! - [`quotes`]: billing's quote decisions (mails, cancellation by a refused or expired quote, ADR 0013);
//! - [`invoices`]: billing's issued invoices (mails to the member's users).

pub mod commands;
pub mod invoices;
pub mod lifecycle;
pub mod quotes;
pub mod referrals;
pub mod submit;

/// Why a use case driven by another service's event did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// A read model is not fed yet (the offer of a request): try again later.
    #[error("{0}")]
    NotYet(String),
    /// The event makes no sense for requests' data (an unknown request, a step the lifecycle refuses): retrying
    /// cannot help.
    #[error("{0}")]
    Refused(String),
}
