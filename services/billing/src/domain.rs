//! Billing rules, free of I/O, by aggregate: `pricing` (tariffs, price rules and VAT, whether an accepted
//! referral is billed and for how much), `numbering` (the documents' gapless numbers and their accounting year),
//! `invoice` (lines, totals, due date, sent and paid), `quote` (a quote's life: `QuoteStatus::apply`) and
//! `session` (who is invoiced for a held training session, and the line).

mod invoice;
mod numbering;
mod pricing;
mod quote;
mod session;

pub use invoice::*;
pub use numbering::*;
pub use pricing::*;
pub use quote::*;
pub use session::*;
