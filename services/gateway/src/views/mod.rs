//! The JSON the gateway speaks: snake_case fields, enums as lowercase strings, timestamps in RFC 3339 (UTC),
//! absent optional values as `null`. Each view is built from its protobuf message; the enum mappings go both
//! ways for filters. One module per upstream service's resources; this one only gathers them.

mod billing;
mod catalogue;
mod common;
mod identity;
mod membership;
mod requests;
mod routing;
mod sessions;

pub use billing::*;
pub use catalogue::*;
pub use common::{Page, UNSPECIFIED, timestamp};
pub use identity::*;
pub use membership::*;
pub use requests::*;
pub use routing::*;
pub use sessions::*;
