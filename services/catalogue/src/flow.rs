//! The catalogue's use cases, one function each, on the transaction they own: the domain's rules, the store's
//! writes and the events announcing them (written to the outbox in the same transaction, and nowhere else).
//! The gRPC handlers, the consumers and the start-up seed load all go through here.

pub mod bookings;
pub mod offers;
pub mod providers;
pub mod registrations;
pub mod seed;
pub mod sessions;

/// What an operator's write did: its result, and whether anything was written (search answers are stale then).
#[derive(Debug, Clone)]
pub struct Written<T> {
    pub value: T,
    pub changed: bool,
}
