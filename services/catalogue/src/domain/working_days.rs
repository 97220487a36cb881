//! French working days, for the reminder sent to participants two working days before a session (a reminder
//! on a Saturday or a public holiday would be read too late, or not at all, by agents of a collectivité).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc, Weekday};
use id77_platform::time;

/// The hour, Paris time, at which reminders go out.
const REMINDER_HOUR: u32 = 9;

/// How many working days before the session's day the reminder goes out.
const WORKING_DAYS_BEFORE: usize = 2;

/// Easter Sunday of `year` (Gregorian calendar), by the anonymous algorithm (Meeus/Jones/Butcher).
pub fn easter(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c.div_euclid(4);
    let k = c.rem_euclid(4);
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l).div_euclid(451);
    let month = (h + l - 7 * m + 114).div_euclid(31);
    let day = (h + l - 7 * m + 114).rem_euclid(31) + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// A French public holiday (jour férié of the Code du travail, art. L3133-1), Whit Monday included.
pub fn is_public_holiday(date: NaiveDate) -> bool {
    const FIXED: [(u32, u32); 8] = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)];
    if FIXED.contains(&(date.month(), date.day())) {
        return true;
    }
    // Easter Monday, Ascension Thursday, Whit Monday.
    easter(date.year()).is_some_and(|sunday| [1, 39, 50].iter().any(|days| sunday + Duration::days(*days) == date))
}

/// Monday to Friday and not a French public holiday.
pub fn is_working_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !is_public_holiday(date)
}

/// 09:00 Paris time on the second working day before the session's day in Paris: a Monday session is reminded
/// on the Thursday before.
pub fn reminder_at(starts_at: DateTime<Utc>) -> DateTime<Utc> {
    let session_day = time::paris(starts_at).date();
    let day = session_day
        .iter_days()
        .rev()
        .skip(1)
        // Days off never run for more than a few days: a month back always holds two working days.
        .take(31)
        .filter(|d| is_working_day(*d))
        .nth(WORKING_DAYS_BEFORE - 1)
        .unwrap_or(session_day - Duration::days(2));
    let nine = NaiveTime::from_hms_opt(REMINDER_HOUR, 0, 0).unwrap_or(NaiveTime::MIN);
    // 09:00 always exists in Paris (the clocks change at 02:00 and 03:00); the fallback is unreachable.
    time::paris_to_utc(day.and_time(nine)).unwrap_or(starts_at - Duration::days(2))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    #[test]
    fn easter_follows_the_gregorian_computus() {
        for (y, m, d) in [(2024, 3, 31), (2025, 4, 20), (2026, 4, 5), (2027, 3, 28), (2038, 4, 25), (2285, 3, 22)] {
            assert_eq!(easter(y), Some(date(y, m, d)), "{y}");
        }
    }

    #[test]
    fn public_holidays_and_weekends_are_not_working_days() {
        let off = [
            date(2027, 1, 1),
            date(2027, 3, 29), // Easter Monday
            date(2026, 5, 1),
            date(2026, 5, 8),
            date(2027, 5, 6),  // Ascension
            date(2027, 5, 17), // Whit Monday
            date(2027, 7, 14),
            date(2027, 8, 15),
            date(2026, 11, 11),
            date(2026, 12, 25),
            date(2026, 12, 5), // Saturday
            date(2026, 12, 6), // Sunday
        ];
        for d in off {
            assert!(!is_working_day(d), "{d}");
        }
        for d in [date(2026, 12, 7), date(2027, 3, 26), date(2027, 3, 30), date(2027, 7, 13), date(2027, 5, 7)] {
            assert!(is_working_day(d), "{d}");
        }
        // 1 and 8 May 2027 are Saturdays: holidays and weekend at once.
        assert!(is_public_holiday(date(2027, 5, 1)) && is_public_holiday(date(2027, 5, 8)));
        assert!(!is_public_holiday(date(2027, 3, 28)) && !is_public_holiday(date(2027, 5, 16)));
    }

    #[test]
    fn a_monday_session_is_reminded_on_the_thursday_before_at_nine_paris_time() {
        // Monday 7 December 2026, 09:30 Paris (winter, UTC+1) → Thursday 3 December, 09:00 Paris = 08:00 UTC.
        assert_eq!(reminder_at(utc(2026, 12, 7, 8, 30)), utc(2026, 12, 3, 8, 0));
        // Summer (UTC+2): Monday 14 June 2027 → Thursday 10 June, 09:00 Paris = 07:00 UTC.
        assert_eq!(reminder_at(utc(2027, 6, 14, 12, 0)), utc(2027, 6, 10, 7, 0));
    }

    #[test]
    fn public_holidays_are_skipped() {
        // Wednesday 31 March 2027: Tuesday 30, (Easter Monday 29), Friday 26 March, still winter time.
        assert_eq!(reminder_at(utc(2027, 3, 31, 7, 0)), utc(2027, 3, 26, 8, 0));
        // Tuesday 30 March 2027: (Monday 29), Friday 26, Thursday 25.
        assert_eq!(reminder_at(utc(2027, 3, 30, 7, 0)), utc(2027, 3, 25, 8, 0));
        // Friday 16 July 2027: Thursday 15, (14 July), Tuesday 13, summer time.
        assert_eq!(reminder_at(utc(2027, 7, 16, 7, 0)), utc(2027, 7, 13, 7, 0));
        // Monday 10 May 2027: Friday 7, (Ascension 6), Wednesday 5.
        assert_eq!(reminder_at(utc(2027, 5, 10, 7, 0)), utc(2027, 5, 5, 7, 0));
        // Monday 11 May 2026: Friday 8 May and Friday 1 May are holidays; Thursday 7, Wednesday 6.
        assert_eq!(reminder_at(utc(2026, 5, 11, 7, 0)), utc(2026, 5, 6, 7, 0));
        // Monday 4 May 2026: (Friday 1 May), Thursday 30 April, Wednesday 29 April.
        assert_eq!(reminder_at(utc(2026, 5, 4, 7, 0)), utc(2026, 4, 29, 7, 0));
    }

    #[test]
    fn the_session_day_is_the_paris_day() {
        // Sunday 6 December 2026 23:30 UTC is Monday 7 December 00:30 in Paris: reminded Thursday 3.
        assert_eq!(reminder_at(utc(2026, 12, 6, 23, 30)), utc(2026, 12, 3, 8, 0));
        // Across the spring switch: Tuesday 30 March 2027 is summer time, Thursday 25 March winter time.
        assert_eq!(time::paris_offset_hours(utc(2027, 3, 30, 7, 0)), 2);
        assert_eq!(time::paris_offset_hours(reminder_at(utc(2027, 3, 30, 7, 0))), 1);
    }
}
