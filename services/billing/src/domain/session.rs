//! Billing of held training sessions (issue 22, ADR 0016), free of I/O: which members of a held session are
//! invoiced (those with attendees, when the session has a price) and the one line of each invoice, « Participation
//! à la session « titre » du 12 janvier 2027 — 3 participants », quantity the attendees, unit price the price per
//! participant (HT). VAT, numbering and the documents are those of every invoice.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use id77_platform::streams::is_valid_subject_token;
use id77_platform::time;
use uuid::Uuid;

use super::invoice::Line;
use super::pricing::MAX_LABEL_CHARS;

/// Highest price per participant accepted from the catalogue (10 000,00 € HT): a typo guard, as for stated
/// amounts.
pub const MAX_PRICE_PER_PARTICIPANT_CENTS: i64 = 1_000_000;

/// One member's attendance at a held session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendance {
    pub member_id: Uuid,
    /// The collectivité's name as the catalogue knows it (the buyer's name when billing has none yet).
    pub member_name: String,
    pub attended: u32,
}

/// A held session as billing needs it, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSession {
    pub session_id: Uuid,
    pub offer_id: Uuid,
    /// The provider that ran it: the invoices' issuer.
    pub provider_code: String,
    /// The offer's title, as the line names the session.
    pub title: String,
    pub starts_at: DateTime<Utc>,
    /// Euro cents, VAT excluded; 0: free.
    pub price_per_participant_cents: i64,
    pub members: Vec<Attendance>,
}

impl HeldSession {
    /// Checks what the catalogue sent: a valid provider code, a title, a price between 0 and
    /// [`MAX_PRICE_PER_PARTICIPANT_CENTS`], each member once.
    pub fn new(
        session_id: Uuid,
        offer_id: Uuid,
        provider_code: &str,
        title: &str,
        starts_at: DateTime<Utc>,
        price_per_participant_cents: i64,
        members: Vec<Attendance>,
    ) -> Result<Self, String> {
        let provider_code = provider_code.trim();
        if !is_valid_subject_token(provider_code) {
            return Err(format!("session {session_id}: provider code {provider_code:?} is not a valid code"));
        }
        let title: String = title.trim().chars().take(MAX_LABEL_CHARS).collect();
        if title.is_empty() {
            return Err(format!("session {session_id}: the offer's title is empty"));
        }
        if !(0..=MAX_PRICE_PER_PARTICIPANT_CENTS).contains(&price_per_participant_cents) {
            return Err(format!(
                "session {session_id}: price per participant {price_per_participant_cents} cents is not between 0 \
                 and {MAX_PRICE_PER_PARTICIPANT_CENTS}"
            ));
        }
        let mut seen = HashSet::new();
        if let Some(twice) = members.iter().find(|m| !seen.insert(m.member_id)) {
            return Err(format!("session {session_id}: member {} is listed twice", twice.member_id));
        }
        Ok(Self {
            session_id,
            offer_id,
            provider_code: provider_code.to_owned(),
            title,
            starts_at,
            price_per_participant_cents,
            members,
        })
    }

    /// The members to invoice with their line: none for a free session; only members with attendees.
    /// `None` when an amount overflows.
    pub fn charges(&self) -> Option<Vec<(&Attendance, Line)>> {
        if self.price_per_participant_cents == 0 {
            return Some(Vec::new());
        }
        self.members
            .iter()
            .filter(|m| m.attended > 0)
            .map(|m| {
                session_line(&self.title, self.starts_at, m.attended, self.price_per_participant_cents).map(|l| (m, l))
            })
            .collect()
    }
}

/// The line of a member's invoice: quantity `attended`, unit price the price per participant, net their product
/// (`None` on overflow).
pub fn session_line(title: &str, starts_at: DateTime<Utc>, attended: u32, price_cents: i64) -> Option<Line> {
    let quantity = i64::from(attended);
    Some(Line {
        label: session_label(title, starts_at, attended),
        quantity,
        unit_price_cents: price_cents,
        net_cents: price_cents.checked_mul(quantity)?,
    })
}

/// « Participation à la session « titre » du 12 janvier 2027 — 3 participants » (the day in Europe/Paris).
pub fn session_label(title: &str, starts_at: DateTime<Utc>, attended: u32) -> String {
    let who = if attended == 1 { "1 participant".to_owned() } else { format!("{attended} participants") };
    format!("Participation à la session « {} » du {} — {who}", title.trim(), long_date(paris_day(starts_at)))
}

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// `2027-01-12` → `12 janvier 2027` (`1er` for the first day of a month).
pub fn long_date(day: NaiveDate) -> String {
    let month = MONTHS.get(day.month0() as usize).copied().unwrap_or("");
    match day.day() {
        1 => format!("1er {month} {}", day.year()),
        d => format!("{d} {month} {}", day.year()),
    }
}

/// The calendar day in Paris of an instant (UTC+2 in summer time, UTC+1 otherwise): a session starting at
/// 00:30 in Paris is on that day, not the UTC one before.
pub fn paris_day(at: DateTime<Utc>) -> NaiveDate {
    time::paris(at).date()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::{Vat, totals};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single().unwrap_or_default()
    }

    fn member(n: u128, attended: u32) -> Attendance {
        Attendance { member_id: Uuid::from_u128(n), member_name: format!("Commune {n}"), attended }
    }

    fn held(price: i64, members: Vec<Attendance>) -> Result<HeldSession, String> {
        HeldSession::new(
            Uuid::from_u128(100),
            Uuid::from_u128(200),
            "caue77",
            "  Urbanisme et paysage  ",
            utc(2027, 1, 12, 8, 30),
            price,
            members,
        )
    }

    #[test]
    fn the_line_names_the_session_its_paris_day_and_the_attendees() {
        let line = session_line("Urbanisme et paysage", utc(2027, 1, 12, 8, 30), 3, 12_000);
        assert_eq!(
            line,
            Some(Line {
                label: "Participation à la session « Urbanisme et paysage » du 12 janvier 2027 — 3 participants".into(),
                quantity: 3,
                unit_price_cents: 12_000,
                net_cents: 36_000,
            })
        );
        assert!(session_label("X", utc(2027, 3, 1, 9, 0), 1).ends_with("du 1er mars 2027 — 1 participant"));
        // 23:30 UTC on 31 May is 1:30 on 1 June in Paris (summer time); 23:30 UTC on 11 January is 0:30 on the 12th.
        assert_eq!(paris_day(utc(2027, 5, 31, 23, 30)), NaiveDate::from_ymd_opt(2027, 6, 1).unwrap_or_default());
        assert_eq!(paris_day(utc(2027, 5, 31, 21, 30)), NaiveDate::from_ymd_opt(2027, 5, 31).unwrap_or_default());
        assert_eq!(paris_day(utc(2027, 1, 11, 23, 30)), NaiveDate::from_ymd_opt(2027, 1, 12).unwrap_or_default());
        assert_eq!(paris_day(utc(2027, 1, 11, 22, 30)), NaiveDate::from_ymd_opt(2027, 1, 11).unwrap_or_default());
        assert_eq!(long_date(NaiveDate::from_ymd_opt(2027, 8, 15).unwrap_or_default()), "15 août 2027");
        assert_eq!(session_line("X", utc(2027, 1, 1, 9, 0), 2, i64::MAX), None, "overflow");
    }

    #[test]
    fn amounts_ht_tva_ttc_for_n_participants() {
        // 3 participants at 120,00 € HT with VAT at 20 %: 360,00 € HT, 72,00 € TVA, 432,00 € TTC.
        let line = session_line("Atelier", utc(2027, 1, 12, 8, 30), 3, 12_000).unwrap_or_else(|| panic!("overflow"));
        let t = totals(line.net_cents, &Vat::Rate(2000)).unwrap_or_else(|| panic!("overflow"));
        assert_eq!((t.net_cents, t.vat_cents, t.gross_cents), (36_000, 7_200, 43_200));
        // 7 participants at 33,33 € HT, VAT at 5,5 % rounded half up: 233,31 € HT, 12,83 € TVA, 246,14 € TTC.
        let line = session_line("Atelier", utc(2027, 1, 12, 8, 30), 7, 3_333).unwrap_or_else(|| panic!("overflow"));
        let t = totals(line.net_cents, &Vat::Rate(550)).unwrap_or_else(|| panic!("overflow"));
        assert_eq!((t.net_cents, t.vat_cents, t.gross_cents), (23_331, 1_283, 24_614));
        // VAT not applicable (between public bodies): TTC is HT.
        let t = totals(line.net_cents, &Vat::NotApplicable("TVA non applicable".into())).unwrap_or_else(|| panic!());
        assert_eq!((t.net_cents, t.vat_cents, t.gross_cents), (23_331, 0, 23_331));
    }

    #[test]
    fn only_members_with_attendees_of_a_priced_session_are_invoiced() -> Result<(), String> {
        let session = held(12_000, vec![member(1, 3), member(2, 0), member(3, 1)])?;
        assert_eq!(session.title, "Urbanisme et paysage");
        let charges = session.charges().ok_or("overflow")?;
        let billed: Vec<(u128, i64, i64)> =
            charges.iter().map(|(m, l)| (m.member_id.as_u128(), l.quantity, l.net_cents)).collect();
        assert_eq!(billed, [(1, 3, 36_000), (3, 1, 12_000)]);
        assert_eq!(held(0, vec![member(1, 3)])?.charges(), Some(Vec::new()), "a free session bills nothing");
        assert_eq!(held(12_000, vec![member(1, 0)])?.charges(), Some(Vec::new()), "nobody came");
        assert_eq!(held(12_000, Vec::new())?.charges(), Some(Vec::new()));
        Ok(())
    }

    #[test]
    fn what_the_catalogue_sends_is_checked() {
        assert!(held(-1, Vec::new()).is_err(), "negative price");
        assert!(held(MAX_PRICE_PER_PARTICIPANT_CENTS + 1, Vec::new()).is_err(), "typo guard");
        assert!(held(MAX_PRICE_PER_PARTICIPANT_CENTS, Vec::new()).is_ok());
        assert!(held(100, vec![member(1, 1), member(1, 2)]).is_err(), "a member twice");
        let new = |code: &str, title: &str| {
            HeldSession::new(Uuid::nil(), Uuid::nil(), code, title, utc(2027, 1, 1, 9, 0), 100, Vec::new())
        };
        assert!(new("CAUE 77", "Atelier").is_err(), "provider code");
        assert!(new("caue77", "  ").is_err(), "no title");
        assert_eq!(new("caue77", &"é".repeat(500)).map(|s| s.title.chars().count()), Ok(MAX_LABEL_CHARS));
    }
}
