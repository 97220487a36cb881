//! gRPC transport: each handler reads the caller (set by the platform's authentication layer), maps the
//! request ([`crate::proto_map`]), calls the flow (writes) or the store (reads), and maps the answer back. One
//! file per area: offers, search, providers, bookings, sessions (and their documents).

mod bookings;
mod cache;
mod offers;
mod providers;
mod search;
mod service;
mod session_documents;
mod session_service;
mod sessions;

pub use cache::{MemberProfiles, SEARCH_CACHE_TTL};
pub use service::CatalogueApi;
pub use sessions::SessionApi;
