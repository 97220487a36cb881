//! French public holidays and business days, computed (never a per-year table), and the SLA schedule of a
//! referral: reminder, deadline (escalation), expiry.
//!
//! Holidays: 1 January, Easter Monday, 1 May, 8 May, Ascension (Easter + 39), Whit Monday (Easter + 50),
//! 14 July, 15 August, 1 November, 11 November, 25 December. Business days: Monday to Friday, holidays
//! excluded. Dates are taken in UTC (the platform runs in one time zone; a referral offered late in the evening
//! of Paris time counts from the UTC date, a shift of at most two hours).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};

/// Easter Sunday of `year` (Gregorian calendar; anonymous algorithm of Meeus, Jones and Butcher).
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// The French public holidays of `year`, in date order.
pub fn public_holidays(year: i32) -> Vec<NaiveDate> {
    let fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)];
    let mut days: Vec<NaiveDate> = fixed.iter().filter_map(|&(m, d)| NaiveDate::from_ymd_opt(year, m, d)).collect();
    if let Some(easter) = easter_sunday(year) {
        for offset in [1, 39, 50] {
            if let Some(day) = easter.checked_add_signed(Duration::days(offset)) {
                days.push(day);
            }
        }
    }
    days.sort();
    days
}

pub fn is_public_holiday(day: NaiveDate) -> bool {
    public_holidays(day.year()).contains(&day)
}

pub fn is_business_day(day: NaiveDate) -> bool {
    !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !is_public_holiday(day)
}

/// The `n`-th business day after `day` (n = 0: `day` itself).
pub fn add_business_days(day: NaiveDate, n: u32) -> NaiveDate {
    let mut d = day;
    let mut left = n;
    while left > 0 {
        match d.succ_opt() {
            Some(next) => d = next,
            None => return d,
        }
        if is_business_day(d) {
            left -= 1;
        }
    }
    d
}

/// The `n`-th business day before `day`.
pub fn sub_business_days(day: NaiveDate, n: u32) -> NaiveDate {
    let mut d = day;
    let mut left = n;
    while left > 0 {
        match d.pred_opt() {
            Some(prev) => d = prev,
            None => return d,
        }
        if is_business_day(d) {
            left -= 1;
        }
    }
    d
}

/// `at` moved to `day`, keeping its time of day.
fn on_day(at: DateTime<Utc>, day: NaiveDate) -> DateTime<Utc> {
    at + Duration::days((day - at.date_naive()).num_days())
}

/// When a referral needs attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Remind the provider (and count the referral as at risk).
    pub remind_at: DateTime<Utc>,
    /// The deadline: escalate to the referent and the coordinator.
    pub respond_by: DateTime<Utc>,
    /// After the grace period: expire and re-route.
    pub expires_at: DateTime<Utc>,
}

/// The schedule of a referral offered at `offered_at` to a provider with a deadline of `sla_days` business
/// days (at least 1), reminded `remind_days` business days before the deadline (half-way for a one-day SLA),
/// expiring `grace_days` business days after it.
pub fn schedule(offered_at: DateTime<Utc>, sla_days: u32, remind_days: u32, grace_days: u32) -> Schedule {
    let sla_days = sla_days.max(1);
    let respond_by = on_day(offered_at, add_business_days(offered_at.date_naive(), sla_days));
    let remind_at = if remind_days == 0 || remind_days >= sla_days {
        offered_at + (respond_by - offered_at) / 2
    } else {
        on_day(respond_by, sub_business_days(respond_by.date_naive(), remind_days))
    };
    let expires_at = on_day(respond_by, add_business_days(respond_by.date_naive(), grace_days));
    Schedule { remind_at, respond_by, expires_at }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn easter_is_computed_for_many_years() {
        // Known Easter Sundays (Gregorian).
        let known = [
            (2000, 4, 23),
            (2008, 3, 23),
            (2011, 4, 24),
            (2019, 4, 21),
            (2024, 3, 31),
            (2025, 4, 20),
            (2026, 4, 5),
            (2027, 3, 28),
            (2028, 4, 16),
            (2038, 4, 25),
        ];
        for (y, m, day) in known {
            assert_eq!(easter_sunday(y), Some(d(y, m, day)), "{y}");
        }
    }

    #[test]
    fn french_holidays_for_several_years() {
        let h2025 = public_holidays(2025);
        assert_eq!(h2025.len(), 11);
        for day in [d(2025, 4, 21), d(2025, 5, 29), d(2025, 6, 9), d(2025, 1, 1), d(2025, 12, 25)] {
            assert!(h2025.contains(&day), "{day}");
        }
        // 2026: Easter Monday 6 April, Ascension 14 May, Whit Monday 25 May.
        for day in [d(2026, 4, 6), d(2026, 5, 14), d(2026, 5, 25), d(2026, 7, 14), d(2026, 11, 11)] {
            assert!(is_public_holiday(day), "{day}");
        }
        // 2024: Easter Monday 1 April, Ascension 9 May, Whit Monday 20 May.
        for day in [d(2024, 4, 1), d(2024, 5, 9), d(2024, 5, 20), d(2024, 8, 15)] {
            assert!(is_public_holiday(day), "{day}");
        }
        assert!(!is_public_holiday(d(2024, 3, 31)), "Easter Sunday is a Sunday, not counted as a holiday");
        assert!(!is_public_holiday(d(2026, 5, 15)));
    }

    #[test]
    fn business_days_skip_weekends_and_holidays() {
        // Thursday 30 April 2026 + 1 → Monday 4 May (1 May holiday, weekend).
        assert_eq!(add_business_days(d(2026, 4, 30), 1), d(2026, 5, 4));
        // Wednesday 13 May 2026 + 1 → Friday 15 May (Ascension on 14).
        assert_eq!(add_business_days(d(2026, 5, 13), 1), d(2026, 5, 15));
        // Friday 22 May 2026 + 1 → Tuesday 26 May (Whit Monday 25).
        assert_eq!(add_business_days(d(2026, 5, 22), 1), d(2026, 5, 26));
        // Across the year end: Wednesday 24 Dec 2025 + 3 → Monday 29 Dec... 25 holiday, 26 Fri, 29 Mon, 30 Tue.
        assert_eq!(add_business_days(d(2025, 12, 24), 3), d(2025, 12, 30));
        assert_eq!(add_business_days(d(2025, 12, 31), 1), d(2026, 1, 2));
        assert_eq!(add_business_days(d(2026, 3, 2), 0), d(2026, 3, 2));
        assert_eq!(sub_business_days(d(2026, 5, 4), 1), d(2026, 4, 30));
        assert_eq!(sub_business_days(d(2026, 5, 26), 2), d(2026, 5, 21));
        assert!(!is_business_day(d(2026, 3, 7)), "a Saturday");
        assert!(is_business_day(d(2026, 3, 9)));
    }

    #[test]
    fn the_schedule_counts_business_days() {
        let offered = d(2026, 5, 12).and_hms_opt(9, 30, 0).map(|t| t.and_utc()).unwrap_or_default();
        // Tuesday 12 May + 3 business days: Wed 13, (Thu 14 Ascension), Fri 15, Mon 18.
        let s = schedule(offered, 3, 1, 2);
        assert_eq!(s.respond_by.date_naive(), d(2026, 5, 18));
        assert_eq!(s.remind_at.date_naive(), d(2026, 5, 15));
        assert_eq!(s.expires_at.date_naive(), d(2026, 5, 20));
        assert_eq!(s.respond_by.time(), offered.time());
        // A one-day SLA reminds half-way.
        let s = schedule(offered, 1, 1, 0);
        assert_eq!(s.respond_by.date_naive(), d(2026, 5, 13));
        assert_eq!(s.remind_at, offered + Duration::hours(12));
        assert_eq!(s.expires_at, s.respond_by);
        assert!(s.remind_at < s.respond_by);
        // A zero SLA is taken as one day.
        assert_eq!(schedule(offered, 0, 1, 0).respond_by, s.respond_by);
    }
}
