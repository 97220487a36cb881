//! The conversation on a request: a message thread between the member's users, the member's referent or the
//! coordinator, and the agents of the provider the request is referred to; attachments stored in PostgreSQL in
//! chunks and streamed both ways; per-user read markers. Who takes part: docs/authorization.md.

pub mod domain;
pub mod flow;
pub mod grpc;
pub mod proto_map;
pub mod store;
