//! The use cases of routing, one home for them: each holds its transaction (the caller's, for a consumer, whose
//! inbox record commits with it; its own, for the API), the calls to the domain's rules and its outbox writes, so
//! that every path writes its events in the same transaction as its state. Event handlers, the timer task and the
//! gRPC API map their input, call a flow, and map its outcome.
//!
//! - [`lifecycle`]: what every flow shares (the clock, the SLA settings, how a referral was placed);
//! - [`offering`]: offering a request to a provider with its SLA timers, routing and re-routing;
//! - [`closing`]: closing a referral, withdrawing it (the coordinator) or taking it back (a cancellation);
//! - [`requests`]: a request submitted (routed, or queued for triage) and a request cancelled;
//! - [`replies`]: a provider's reply (accept, decline, complete) and progress reports, on NATS or the API;
//! - [`agreement`]: the member's agreement to the quote of an accepted referral (ADR 0013);
//! - [`deadlines`]: what a due SLA timer does (remind, escalate, expire);
//! - [`coordination`]: the coordinator's reassignments, withdrawals and triage placements;
//! - [`rule_set`]: the coordinator's edits of the routing rules;
//! - [`explanation`]: why a request went where it went;
//! - [`read_models`]: the offers and members routing keeps from the catalogue and membership.

pub mod agreement;
pub mod closing;
pub mod coordination;
pub mod deadlines;
pub mod explanation;
pub mod lifecycle;
pub mod offering;
pub mod read_models;
pub mod replies;
pub mod requests;
pub mod rule_set;

pub use lifecycle::{Assignment, Lifecycle, Placement, Sla};
