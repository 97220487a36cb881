//! How documents are numbered, free of I/O: each kind (quote, invoice, credit note) has its own gapless
//! sequence per issuer and accounting year (docs/adr/0008); `store::next_number` takes the next value.

use chrono::{DateTime, Datelike, Duration, Utc};

/// A kind of numbered document; each has its own gapless sequence per issuer and year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Quote,
    Invoice,
    CreditNote,
}

impl Document {
    /// Key of its sequence in `number_sequence`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quote => "quote",
            Self::Invoice => "invoice",
            Self::CreditNote => "credit_note",
        }
    }

    /// First letter of its numbers (D for devis).
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Quote => "D",
            Self::Invoice => "F",
            Self::CreditNote => "A",
        }
    }

    /// `D-<issuer>-<year>-<sequence:06>`, e.g. `D-dir-routes-2025-000042`.
    pub fn number(self, issuer_code: &str, year: i32, sequence: i64) -> String {
        format!("{}-{issuer_code}-{year}-{sequence:06}", self.prefix())
    }
}

/// The accounting year of a date: the calendar year in France. At every New Year France is on CET (UTC+1,
/// summer time never spans 31 December), so the French year is the UTC year one hour later.
pub fn billing_year(at: DateTime<Utc>) -> i32 {
    (at + Duration::hours(1)).year()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn quote_numbers_are_zero_padded_per_issuer_and_year() {
        assert_eq!(Document::Quote.number("dir-routes", 2025, 1), "D-dir-routes-2025-000001");
        assert_eq!(Document::Quote.number("caue77", 2026, 123_456), "D-caue77-2026-123456");
        assert_eq!(Document::Quote.number("caue77", 2026, 1_234_567), "D-caue77-2026-1234567");
        assert_eq!(Document::Quote.as_str(), "quote");
    }

    #[test]
    fn the_year_is_the_french_calendar_year() {
        let utc = |y, mo, d, h, mi| Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap_or_default();
        assert_eq!(billing_year(utc(2025, 6, 15, 12, 0)), 2025);
        assert_eq!(billing_year(utc(2025, 12, 31, 22, 59)), 2025);
        // 23:00 UTC on 31 December is midnight in Paris.
        assert_eq!(billing_year(utc(2025, 12, 31, 23, 0)), 2026);
        assert_eq!(billing_year(utc(2026, 1, 1, 0, 30)), 2026);
    }

    #[test]
    fn invoices_and_credit_notes_have_their_own_numbers() {
        assert_eq!(Document::Invoice.number("caue77", 2026, 7), "F-caue77-2026-000007");
        assert_eq!(Document::CreditNote.number("caue77", 2026, 7), "A-caue77-2026-000007");
        assert_eq!((Document::Invoice.as_str(), Document::CreditNote.as_str()), ("invoice", "credit_note"));
    }
}
