//! The conversation on a request: a message thread between the member's users, the member's referent or the
//! coordinator, and the agents of the provider the request is referred to; attachments stored in PostgreSQL in
//! chunks and streamed both ways; per-user read markers. Who takes part: docs/authorization.md.

pub mod domain;
pub mod grpc;
pub mod store;

/// Subject of `MessagePosted`.
pub const SUBJECT_MESSAGE_POSTED: &str = "id77.requests.message.posted";
