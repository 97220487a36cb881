//! gRPC transport: each handler reads the caller (set by the platform's authentication layer), maps the
//! request ([`crate::proto_map`]), calls the flow (writes) or the store (reads), and maps the answer back. One
//! file per area: offers, search, providers, bookings.

mod bookings;
mod cache;
mod offers;
mod providers;
mod search;
mod service;

pub use cache::SEARCH_CACHE_TTL;
pub use service::CatalogueApi;
