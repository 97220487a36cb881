//! A member's requests: file one for an offer, list them, follow one (status, history, quotes, invoices).

mod actions;
mod detail;
mod filing;
pub(super) mod list;
mod quotes;

pub use actions::{cancel, decide_quote, give_feedback};
pub use detail::detail;
pub use filing::{new_form, submit};
pub use list::list;
