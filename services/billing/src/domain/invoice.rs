//! An invoice's rules, free of I/O: its line and totals, its due date, and what the coordinator or the issuing
//! provider records after its issue (issued → sent → paid).

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::pricing::{PriceRule, Vat};

/// Days between an invoice and its due date.
pub const PAYMENT_DAYS: i64 = 30;

/// Due date of a document issued at `at`: the French calendar date of issue plus [`PAYMENT_DAYS`] (the
/// French date is approximated as in [`billing_year`]: one hour ahead of UTC).
pub fn due_date(at: DateTime<Utc>) -> NaiveDate {
    (at + Duration::hours(1) + Duration::days(PAYMENT_DAYS)).date_naive()
}

/// One line of an invoice or credit note. Euro cents, VAT excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub label: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub net_cents: i64,
}

/// The line billing `net_cents` for one delivery of an offer under `rule`: a daily rate shows its days and
/// rate, anything else one unit of the whole amount.
pub fn invoice_line(rule: &PriceRule, label: &str, net_cents: i64) -> Line {
    match *rule {
        PriceRule::DailyRate { amount_cents, days } if amount_cents.checked_mul(i64::from(days)) == Some(net_cents) => {
            Line { label: label.to_owned(), quantity: i64::from(days), unit_price_cents: amount_cents, net_cents }
        }
        _ => Line { label: label.to_owned(), quantity: 1, unit_price_cents: net_cents, net_cents },
    }
}

/// Totals of a document: excluding VAT, VAT, including VAT, in euro cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub net_cents: i64,
    pub vat_cents: i64,
    pub gross_cents: i64,
}

/// Totals of `net_cents` under `vat` (`None` on overflow).
pub fn totals(net_cents: i64, vat: &Vat) -> Option<Totals> {
    let vat_cents = vat.tax_cents(net_cents)?;
    Some(Totals { net_cents, vat_cents, gross_cents: net_cents.checked_add(vat_cents)? })
}

/// What the coordinator or the issuing provider records about an invoice after its issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Sent,
    Paid,
}

/// The status an invoice in `status` takes when marked, or why it cannot: issued → sent → paid, issued → paid
/// (paid before being reported sent); a paid or cancelled invoice, or a sent one sent again, does not change.
pub fn mark(status: &str, mark: Mark) -> Result<&'static str, &'static str> {
    match (status, mark) {
        ("issued", Mark::Sent) => Ok("sent"),
        ("issued" | "sent", Mark::Paid) => Ok("paid"),
        ("sent", Mark::Sent) => Err("the invoice is already sent"),
        ("paid", _) => Err("the invoice is already paid"),
        ("cancelled", _) => Err("the invoice is cancelled by a credit note"),
        _ => Err("the invoice's status is unknown"),
    }
}

/// Checks the date of a mark: not before the issue date, not after `today` (both French calendar dates).
pub fn mark_date(raw: &str, issued_on: NaiveDate, today: NaiveDate) -> Result<NaiveDate, &'static str> {
    let date = NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d").map_err(|_| "date must be YYYY-MM-DD")?;
    if date < issued_on {
        return Err("date is before the invoice's issue date");
    }
    if date > today {
        return Err("date is in the future");
    }
    Ok(date)
}

/// The French calendar date of an instant (approximated as in [`billing_year`]).
pub fn french_date(at: DateTime<Utc>) -> NaiveDate {
    (at + Duration::hours(1)).date_naive()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn invoices_and_credit_notes_have_their_lines_totals_and_due_date() {
        let daily = PriceRule::DailyRate { amount_cents: 45_000, days: 3 };
        assert_eq!(
            invoice_line(&daily, "Conseil", 135_000),
            Line { label: "Conseil".into(), quantity: 3, unit_price_cents: 45_000, net_cents: 135_000 }
        );
        assert_eq!(invoice_line(&daily, "Conseil", 100_000).quantity, 1, "an amount that differs (quoted)");
        assert_eq!(invoice_line(&PriceRule::Flat { amount_cents: 9 }, "x", 9).unit_price_cents, 9);
        assert_eq!(
            totals(12_345, &Vat::Rate(2000)),
            Some(Totals { net_cents: 12_345, vat_cents: 2_469, gross_cents: 14_814 })
        );
        assert_eq!(
            totals(12_345, &Vat::NotApplicable("x".into())),
            Some(Totals { net_cents: 12_345, vat_cents: 0, gross_cents: 12_345 })
        );
        assert_eq!(totals(i64::MAX, &Vat::Rate(2000)), None);
        let utc = |y, mo, d, h| Utc.with_ymd_and_hms(y, mo, d, h, 0, 0).single().unwrap_or_default();
        assert_eq!(due_date(utc(2026, 1, 10, 12)), NaiveDate::from_ymd_opt(2026, 2, 9).unwrap_or_default());
        assert_eq!(due_date(utc(2026, 1, 10, 23)), NaiveDate::from_ymd_opt(2026, 2, 10).unwrap_or_default());
    }

    #[test]
    fn invoices_go_issued_sent_paid_and_never_back() {
        assert_eq!(mark("issued", Mark::Sent), Ok("sent"));
        assert_eq!(mark("issued", Mark::Paid), Ok("paid"));
        assert_eq!(mark("sent", Mark::Paid), Ok("paid"));
        assert!(mark("sent", Mark::Sent).is_err());
        assert!(mark("paid", Mark::Sent).is_err());
        assert!(mark("paid", Mark::Paid).is_err());
        assert!(mark("cancelled", Mark::Sent).is_err());
        assert!(mark("cancelled", Mark::Paid).is_err());
        assert!(mark("draft", Mark::Paid).is_err());
        let day = |d| NaiveDate::from_ymd_opt(2026, 3, d).unwrap_or_default();
        assert_eq!(mark_date("2026-03-05", day(1), day(10)), Ok(day(5)));
        assert_eq!(mark_date(" 2026-03-01 ", day(1), day(10)), Ok(day(1)));
        assert!(mark_date("2026-02-28", day(1), day(10)).is_err(), "before the issue");
        assert!(mark_date("2026-03-11", day(1), day(10)).is_err(), "in the future");
        assert!(mark_date("05/03/2026", day(1), day(10)).is_err());
        assert!(mark_date("2026-02-30", day(1), day(10)).is_err());
    }
}
