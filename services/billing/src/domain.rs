//! Billing rules, free of I/O: what a tariff is, whether an accepted referral is billed, how quotes are
//! numbered and in which year.

use chrono::{DateTime, Datelike, Duration, Utc};
use id77_platform::streams::is_valid_subject_token;
use uuid::Uuid;

/// Currency of every amount.
pub const CURRENCY: &str = "EUR";
/// Longest label copied from an offer title onto a quote.
pub const MAX_LABEL_CHARS: usize = 200;

/// A kind of numbered document; each has its own gapless sequence per issuer and year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document {
    Quote,
}

impl Document {
    /// Key of its sequence in `number_sequence`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quote => "quote",
        }
    }

    /// First letter of its numbers (D for devis).
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Quote => "D",
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

/// Whether an offer is invoiced, and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pricing {
    Free,
    /// Flat price in euro cents, VAT excluded.
    Billed {
        amount_cents: i64,
    },
}

/// Decides the pricing of an offer. `billed` must agree with the price: a billed offer has a positive price,
/// a free one a price of 0.
pub fn pricing(billed: bool, price_cents: i64) -> Result<Pricing, &'static str> {
    match (billed, price_cents) {
        (_, p) if p < 0 => Err("price_cents is negative"),
        (false, 0) => Ok(Pricing::Free),
        (true, p) if p > 0 => Ok(Pricing::Billed { amount_cents: p }),
        (true, _) => Err("a billed offer has no price"),
        (false, _) => Err("a free offer has a price"),
    }
}

/// One offer's terms, as billing keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tariff {
    pub offer_id: Uuid,
    pub offer_code: String,
    pub title: String,
    pub provider_code: String,
    pub billed: bool,
    pub price_cents: i64,
    pub version: i32,
}

impl Tariff {
    /// Validates an offer received from the catalogue.
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        offer_id: &str,
        offer_code: &str,
        title: &str,
        provider_code: &str,
        billed: bool,
        price_cents: i64,
        version: i32,
    ) -> Result<Self, String> {
        let offer_id = Uuid::parse_str(offer_id).map_err(|_| format!("offer id {offer_id:?} is not a UUID"))?;
        if offer_code.is_empty() || offer_code.len() > 64 {
            return Err(format!("offer {offer_id}: code must be 1 to 64 characters"));
        }
        if !is_valid_subject_token(provider_code) {
            return Err(format!("offer {offer_id}: provider code {provider_code:?} is not a valid code"));
        }
        if version < 1 {
            return Err(format!("offer {offer_id}: version {version} is not positive"));
        }
        pricing(billed, price_cents).map_err(|e| format!("offer {offer_id}: {e}"))?;
        let title: String = title.trim().chars().take(MAX_LABEL_CHARS).collect();
        Ok(Self {
            offer_id,
            offer_code: offer_code.to_owned(),
            title,
            provider_code: provider_code.to_owned(),
            billed,
            price_cents,
            version,
        })
    }

    pub fn pricing(&self) -> Result<Pricing, &'static str> {
        pricing(self.billed, self.price_cents)
    }
}

/// An accepted referral, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub referral_id: Uuid,
    pub request_id: Uuid,
    pub member_id: Uuid,
    /// `None` for an orientation request that no offer backs: nothing to bill.
    pub offer_id: Option<Uuid>,
    pub provider_code: String,
}

impl Accepted {
    pub fn parse(
        referral_id: &str,
        request_id: &str,
        member_id: &str,
        offer_id: &str,
        provider_code: &str,
    ) -> Result<Self, String> {
        let uuid = |field: &str, raw: &str| Uuid::parse_str(raw).map_err(|_| format!("{field} {raw:?} is not a UUID"));
        let referral_id = uuid("referral_id", referral_id)?;
        let offer_id = if offer_id.is_empty() { None } else { Some(uuid("offer_id", offer_id)?) };
        if !is_valid_subject_token(provider_code) {
            return Err(format!("provider code {provider_code:?} is not a valid code"));
        }
        Ok(Self {
            referral_id,
            request_id: uuid("request_id", request_id)?,
            member_id: uuid("member_id", member_id)?,
            offer_id,
            provider_code: provider_code.to_owned(),
        })
    }
}

/// What an accepted referral leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not tied to an offer.
    NothingToBill,
    /// The offer is free.
    Free,
    /// Issue a quote from the offer's provider for its flat price.
    Quote { issuer_code: String, amount_cents: i64, label: String, offer_id: Uuid, offer_version: i32 },
}

/// Why no decision can be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecideError {
    /// The offer's tariff has not reached billing yet: try again later.
    UnknownTariff,
    /// The tariff contradicts itself.
    Inconsistent(&'static str),
}

/// Decides, from the offer's tariff, whether an accepted referral gets a quote.
pub fn decide(accepted: &Accepted, tariff: Option<&Tariff>) -> Result<Decision, DecideError> {
    let Some(offer_id) = accepted.offer_id else { return Ok(Decision::NothingToBill) };
    let tariff = tariff.filter(|t| t.offer_id == offer_id).ok_or(DecideError::UnknownTariff)?;
    Ok(match tariff.pricing().map_err(DecideError::Inconsistent)? {
        Pricing::Free => Decision::Free,
        Pricing::Billed { amount_cents } => Decision::Quote {
            issuer_code: tariff.provider_code.clone(),
            amount_cents,
            label: tariff.title.clone(),
            offer_id: tariff.offer_id,
            offer_version: tariff.version,
        },
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn tariff(billed: bool, price_cents: i64) -> Tariff {
        Tariff {
            offer_id: Uuid::from_u128(7),
            offer_code: "amo-amenagement-voirie".into(),
            title: "Assistance à maîtrise d'ouvrage".into(),
            provider_code: "dir-routes".into(),
            billed,
            price_cents,
            version: 1,
        }
    }

    fn accepted(offer: Option<Uuid>) -> Accepted {
        Accepted {
            referral_id: Uuid::from_u128(1),
            request_id: Uuid::from_u128(2),
            member_id: Uuid::from_u128(3),
            offer_id: offer,
            provider_code: "dir-routes".into(),
        }
    }

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
    fn pricing_requires_billed_and_price_to_agree() {
        assert_eq!(pricing(false, 0), Ok(Pricing::Free));
        assert_eq!(pricing(true, 250_000), Ok(Pricing::Billed { amount_cents: 250_000 }));
        assert!(pricing(true, 0).is_err());
        assert!(pricing(false, 100).is_err());
        assert!(pricing(true, -5).is_err());
        assert!(pricing(false, -5).is_err());
    }

    #[test]
    fn billed_offers_get_a_quote_from_their_provider_and_free_ones_none() {
        let offer = Some(Uuid::from_u128(7));
        let billed = tariff(true, 250_000);
        assert_eq!(
            decide(&accepted(offer), Some(&billed)),
            Ok(Decision::Quote {
                issuer_code: "dir-routes".into(),
                amount_cents: 250_000,
                label: "Assistance à maîtrise d'ouvrage".into(),
                offer_id: Uuid::from_u128(7),
                offer_version: 1,
            })
        );
        assert_eq!(decide(&accepted(offer), Some(&tariff(false, 0))), Ok(Decision::Free));
        assert_eq!(decide(&accepted(offer), None), Err(DecideError::UnknownTariff));
        assert_eq!(decide(&accepted(Some(Uuid::from_u128(8))), Some(&billed)), Err(DecideError::UnknownTariff));
        assert!(matches!(decide(&accepted(offer), Some(&tariff(true, 0))), Err(DecideError::Inconsistent(_))));
        assert_eq!(decide(&accepted(None), None), Ok(Decision::NothingToBill));
    }

    #[test]
    fn tariffs_and_referrals_are_validated() {
        let id = Uuid::from_u128(9).to_string();
        assert!(Tariff::parse(&id, "x", " Titre ", "caue77", true, 100, 1).is_ok_and(|t| t.title == "Titre"));
        assert!(Tariff::parse("nope", "x", "t", "caue77", true, 100, 1).is_err());
        assert!(Tariff::parse(&id, "", "t", "caue77", true, 100, 1).is_err());
        assert!(Tariff::parse(&id, "x", "t", "caue.77", true, 100, 1).is_err());
        assert!(Tariff::parse(&id, "x", "t", "caue77", true, 0, 1).is_err());
        assert!(Tariff::parse(&id, "x", "t", "caue77", false, 0, 0).is_err());
        let long = "é".repeat(500);
        assert!(Tariff::parse(&id, "x", &long, "caue77", false, 0, 1).is_ok_and(|t| t.title.chars().count() == 200));

        let a = Accepted::parse(&id, &id, &id, "", "caue77");
        assert!(a.is_ok_and(|a| a.offer_id.is_none()));
        assert!(Accepted::parse(&id, &id, &id, &id, "caue77").is_ok_and(|a| a.offer_id.is_some()));
        assert!(Accepted::parse("x", &id, &id, &id, "caue77").is_err());
        assert!(Accepted::parse(&id, &id, "", &id, "caue77").is_err());
        assert!(Accepted::parse(&id, &id, &id, "bad", "caue77").is_err());
        assert!(Accepted::parse(&id, &id, &id, &id, "*").is_err());
    }
}
