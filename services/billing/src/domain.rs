//! Billing rules, free of I/O, by aggregate: `pricing` (tariffs, price rules and VAT, whether an accepted
//! referral is billed and for how much), `numbering` (the documents' gapless numbers and their accounting year),
//! `invoice` (lines, totals, due date, sent and paid) and `quote` (a quote's life: `QuoteStatus::apply`).

mod invoice;
mod numbering;
mod pricing;
mod quote;

pub use invoice::*;
pub use numbering::*;
pub use pricing::*;
pub use quote::*;
