//! Conversions between `chrono` and protobuf timestamps.

use chrono::{DateTime, Utc};
use prost_types::Timestamp;

pub fn to_proto(at: DateTime<Utc>) -> Timestamp {
    Timestamp { seconds: at.timestamp(), nanos: at.timestamp_subsec_nanos() as i32 }
}

pub fn to_proto_opt(at: Option<DateTime<Utc>>) -> Option<Timestamp> {
    at.map(to_proto)
}

/// `None` for a missing or out-of-range timestamp.
pub fn from_proto(ts: &Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts.seconds, u32::try_from(ts.nanos).ok()?)
}

/// The current time, truncated to microseconds (what PostgreSQL stores), so that a value read back compares
/// equal to the one written.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_protobuf() {
        let at = now();
        assert_eq!(from_proto(&to_proto(at)), Some(at));
        assert_eq!(from_proto(&Timestamp { seconds: 0, nanos: -1 }), None);
    }
}
