//! Conversions between `chrono` and protobuf timestamps, and Paris wall-clock time (the EU summer-time rule),
//! which every French date shown or sent is written in.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, Utc};
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

/// The last Sunday of `month` in `year` (the days Europe switches its clocks).
fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }?;
    let last = first_of_next.pred_opt()?;
    Some(last - Duration::days(i64::from(last.weekday().num_days_from_sunday())))
}

/// The offset of Paris from UTC at `at`, in hours: summer time (+2) from the last Sunday of March at 01:00 UTC to
/// the last Sunday of October at 01:00 UTC (the EU rule), winter time (+1) otherwise.
pub fn paris_offset_hours(at: DateTime<Utc>) -> i64 {
    let year = at.year();
    let switch = |month| last_sunday(year, month).and_then(|d| d.and_hms_opt(1, 0, 0)).map(|d| d.and_utc());
    match (switch(3), switch(10)) {
        (Some(spring), Some(autumn)) if at >= spring && at < autumn => 2,
        _ => 1,
    }
}

/// The wall-clock time in Paris at `at`.
pub fn paris(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc() + Duration::hours(paris_offset_hours(at))
}

/// The instant a Paris wall-clock time stands for; `None` for a time that does not exist (the hour skipped on
/// the last Sunday of March). In the hour repeated in October the earlier instant (summer time) is chosen.
pub fn paris_to_utc(local: NaiveDateTime) -> Option<DateTime<Utc>> {
    [2, 1].into_iter().map(|hours| (local - Duration::hours(hours)).and_utc()).find(|at| paris(*at) == local)
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

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(y, m, d).and_then(|d| d.and_hms_opt(h, min, 0)).map(|t| t.and_utc()).unwrap()
    }

    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        utc(y, m, d, h, min).naive_utc()
    }

    #[test]
    fn paris_switches_to_summer_time_on_the_last_sunday_of_march_at_one_utc() {
        // 28 March 2027 (the last Sunday of March): 00:59 UTC is 01:59 CET, 01:00 UTC is 03:00 CEST.
        assert_eq!(paris_offset_hours(utc(2027, 3, 28, 0, 59)), 1);
        assert_eq!(paris_offset_hours(utc(2027, 3, 28, 1, 0)), 2);
        assert_eq!(paris(utc(2027, 3, 28, 0, 59)), local(2027, 3, 28, 1, 59));
        assert_eq!(paris(utc(2027, 3, 28, 1, 0)), local(2027, 3, 28, 3, 0));
        // 21 March 2027 is a Sunday of March, not the last one.
        assert_eq!(paris_offset_hours(utc(2027, 3, 21, 12, 0)), 1);
        // 02:30 does not exist that day; 03:00 is 01:00 UTC.
        assert_eq!(paris_to_utc(local(2027, 3, 28, 2, 30)), None);
        assert_eq!(paris_to_utc(local(2027, 3, 28, 3, 0)), Some(utc(2027, 3, 28, 1, 0)));
        assert_eq!(paris_to_utc(local(2027, 3, 28, 1, 59)), Some(utc(2027, 3, 28, 0, 59)));
    }

    #[test]
    fn paris_switches_back_to_winter_time_on_the_last_sunday_of_october_at_one_utc() {
        // 25 October 2026: 00:59 UTC is 02:59 CEST, 01:00 UTC is 02:00 CET.
        assert_eq!(paris_offset_hours(utc(2026, 10, 25, 0, 59)), 2);
        assert_eq!(paris_offset_hours(utc(2026, 10, 25, 1, 0)), 1);
        assert_eq!(paris(utc(2026, 10, 25, 0, 59)), local(2026, 10, 25, 2, 59));
        assert_eq!(paris(utc(2026, 10, 25, 1, 0)), local(2026, 10, 25, 2, 0));
        // 02:30 happens twice: the first (summer time) is chosen.
        assert_eq!(paris_to_utc(local(2026, 10, 25, 2, 30)), Some(utc(2026, 10, 25, 0, 30)));
        assert_eq!(paris_to_utc(local(2026, 10, 25, 3, 0)), Some(utc(2026, 10, 25, 2, 0)));
    }

    #[test]
    fn paris_time_round_trips_in_summer_and_winter() {
        for at in [utc(2026, 12, 6, 8, 30), utc(2027, 6, 15, 7, 30), utc(2026, 1, 1, 0, 0), utc(2026, 12, 31, 23, 0)] {
            assert_eq!(paris_to_utc(paris(at)), Some(at));
        }
        assert_eq!(paris(utc(2026, 12, 6, 8, 30)), local(2026, 12, 6, 9, 30));
        assert_eq!(paris(utc(2027, 6, 15, 7, 30)), local(2027, 6, 15, 9, 30));
        assert_eq!(paris(utc(2026, 12, 31, 23, 0)), local(2027, 1, 1, 0, 0));
    }
}
