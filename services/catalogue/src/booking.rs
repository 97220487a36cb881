//! Exhibition loans, the pure part: dates, the availability calendar, and the hold → confirmed / released
//! state machine. That a copy is never lent twice is the database's exclusion constraint, not this module.

use chrono::NaiveDate;
use id77_platform::error::FieldViolation;
use uuid::Uuid;

/// Longest loan.
pub const MAX_LOAN_DAYS: i64 = 92;
/// Longest availability calendar.
pub const MAX_CALENDAR_DAYS: i64 = 366;
/// How far ahead a loan may start.
pub const MAX_LEAD_DAYS: i64 = 3 * 366;

/// Where a booking is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingStatus {
    Held,
    Confirmed,
    Released,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Confirmed => "confirmed",
            Self::Released => "released",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Held, Self::Confirmed, Self::Released].into_iter().find(|b| b.as_str() == s)
    }
}

/// What a confirm or release does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Move to this status (and announce it).
    To(BookingStatus),
    /// Already there: nothing to do (a retry).
    AlreadyDone,
}

/// A released booking cannot be confirmed.
pub fn confirm(current: BookingStatus) -> Result<Step, BookingStatus> {
    match current {
        BookingStatus::Held => Ok(Step::To(BookingStatus::Confirmed)),
        BookingStatus::Confirmed => Ok(Step::AlreadyDone),
        BookingStatus::Released => Err(current),
    }
}

/// Anything live can be released.
pub fn release(current: BookingStatus) -> Step {
    match current {
        BookingStatus::Held | BookingStatus::Confirmed => Step::To(BookingStatus::Released),
        BookingStatus::Released => Step::AlreadyDone,
    }
}

fn violation(field: &str, description: impl Into<String>) -> FieldViolation {
    FieldViolation { field: field.to_owned(), description: description.into() }
}

/// A `YYYY-MM-DD` date: exactly four, two and two digits. chrono's `%Y-%m-%d` alone also takes whitespace
/// and short numbers inside (`"78-\t\t\t\n8-1"` was year 78, found by `make fuzz`).
pub fn parse_date(field: &str, raw: &str) -> Result<NaiveDate, FieldViolation> {
    let raw = raw.trim();
    let shaped = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    if !shaped {
        return Err(violation(field, "must be a date YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| violation(field, "must be a date YYYY-MM-DD"))
}

/// Both dates, reporting both problems at once.
fn dates(from: &str, to: &str) -> Result<(NaiveDate, NaiveDate), Vec<FieldViolation>> {
    match (parse_date("from", from), parse_date("to", to)) {
        (Ok(f), Ok(t)) if t >= f => Ok((f, t)),
        (Ok(_), Ok(_)) => Err(vec![violation("to", "must not be before from")]),
        (f, t) => Err([f.err(), t.err()].into_iter().flatten().collect()),
    }
}

/// The inclusive dates of a loan: from today (or later) on, at most [`MAX_LOAN_DAYS`] long.
pub fn loan_period(from: &str, to: &str, today: NaiveDate) -> Result<(NaiveDate, NaiveDate), Vec<FieldViolation>> {
    let (f, t) = dates(from, to)?;
    let mut out = Vec::new();
    if f < today {
        out.push(violation("from", "must not be in the past"));
    }
    if (f - today).num_days() > MAX_LEAD_DAYS {
        out.push(violation("from", format!("must be within {MAX_LEAD_DAYS} days")));
    }
    if (t - f).num_days() + 1 > MAX_LOAN_DAYS {
        out.push(violation("to", format!("a loan lasts at most {MAX_LOAN_DAYS} days")));
    }
    if out.is_empty() { Ok((f, t)) } else { Err(out) }
}

/// The inclusive dates of a calendar, at most [`MAX_CALENDAR_DAYS`] long.
pub fn calendar_period(from: &str, to: &str) -> Result<(NaiveDate, NaiveDate), Vec<FieldViolation>> {
    let (f, t) = dates(from, to)?;
    if (t - f).num_days() + 1 > MAX_CALENDAR_DAYS {
        return Err(vec![violation("to", format!("a calendar covers at most {MAX_CALENDAR_DAYS} days"))]);
    }
    Ok((f, t))
}

/// For each day of `from..=to`, how many of `copies` are not held or lent. `busy`: (copy, first, last day).
pub fn available_per_day(
    from: NaiveDate,
    to: NaiveDate,
    copies: &[Uuid],
    busy: &[(Uuid, NaiveDate, NaiveDate)],
) -> Vec<(NaiveDate, u32)> {
    from.iter_days()
        .take_while(|d| *d <= to)
        .map(|day| {
            let free =
                copies.iter().filter(|copy| !busy.iter().any(|(c, f, t)| c == *copy && *f <= day && day <= *t)).count();
            (day, u32::try_from(free).unwrap_or(u32::MAX))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    fn fields(r: Result<(NaiveDate, NaiveDate), Vec<FieldViolation>>) -> Vec<String> {
        r.err().unwrap_or_default().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn only_four_two_two_digits_make_a_date() {
        assert_eq!(parse_date("from", " 2026-12-01 ").ok(), Some(d("2026-12-01")));
        // Found by the fuzzer (fuzz/fuzz_targets/dates.rs): chrono alone read this as 0078-08-01.
        for raw in ["78-\t\t\t\n8-1", "2026-1-01 ", "2026-12-1", "+202-12-01", "2026/12/01", "２０２６-12-01"] {
            assert!(parse_date("from", raw).is_err(), "{raw:?} was taken as a date");
        }
    }

    #[test]
    fn loans_have_sane_dates() {
        let today = d("2027-01-10");
        assert_eq!(loan_period("2027-03-01", "2027-03-21", today), Ok((d("2027-03-01"), d("2027-03-21"))));
        assert_eq!(loan_period("2027-03-01", "2027-03-01", today).map(|p| p.0), Ok(d("2027-03-01")));
        assert_eq!(fields(loan_period("2027-03-21", "2027-03-01", today)), ["to"]);
        assert_eq!(fields(loan_period("2027-01-09", "2027-01-20", today)), ["from"]);
        assert_eq!(fields(loan_period("2027-03-01", "2027-09-01", today)), ["to"]);
        assert_eq!(fields(loan_period("01/03/2027", "2027-02-30", today)), ["from", "to"]);
        assert_eq!(fields(loan_period("2031-03-01", "2031-03-02", today)), ["from"]);
        assert_eq!(fields(calendar_period("2027-01-01", "2028-01-02")), ["to"]);
        assert!(calendar_period("2027-01-01", "2027-12-31").is_ok());
    }

    #[test]
    fn the_calendar_counts_free_copies_per_day() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let busy = [(a, d("2027-03-02"), d("2027-03-03")), (b, d("2027-03-03"), d("2027-03-10"))];
        let days = available_per_day(d("2027-03-01"), d("2027-03-04"), &[a, b], &busy);
        let counts: Vec<u32> = days.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, [2, 1, 0, 1]);
        assert_eq!(days[0].0, d("2027-03-01"));
    }

    #[test]
    fn holds_are_confirmed_or_released_once() {
        assert_eq!(confirm(BookingStatus::Held), Ok(Step::To(BookingStatus::Confirmed)));
        assert_eq!(confirm(BookingStatus::Confirmed), Ok(Step::AlreadyDone));
        assert_eq!(confirm(BookingStatus::Released), Err(BookingStatus::Released));
        assert_eq!(release(BookingStatus::Held), Step::To(BookingStatus::Released));
        assert_eq!(release(BookingStatus::Confirmed), Step::To(BookingStatus::Released));
        assert_eq!(release(BookingStatus::Released), Step::AlreadyDone);
    }
}
