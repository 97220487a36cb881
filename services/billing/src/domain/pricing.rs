//! Pricing, free of I/O: an offer's tariff as billing keeps it (price rule and VAT), what one delivery costs,
//! and whether a provider's acceptance of a referral calls for a quote, for how much.

use id77_platform::streams::is_valid_subject_token;
use id77_proto::vocabulary::PriceKind;
use uuid::Uuid;

/// Currency of every amount.
pub const CURRENCY: &str = "EUR";
/// Longest label copied from an offer title onto a quote.
pub const MAX_LABEL_CHARS: usize = 200;

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

/// The VAT that applies to an offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vat {
    /// Rate in basis points (2000 = 20 %).
    Rate(i32),
    /// VAT does not apply; the mention the document must carry.
    NotApplicable(String),
}

/// Mention used when an offer says nothing about VAT: services between public bodies.
pub const DEFAULT_VAT_NOTE: &str = "TVA non applicable, art. 256 B du CGI";

impl Vat {
    /// From the offer's `vat_rate_bp` (unset: not applicable) and `vat_note`.
    pub fn parse(rate_bp: Option<i32>, note: &str) -> Result<Self, String> {
        match rate_bp {
            Some(bp) if !(0..=10_000).contains(&bp) => Err(format!("VAT rate {bp} bp is not between 0 and 10000")),
            Some(bp) => Ok(Self::Rate(bp)),
            None if note.trim().is_empty() => Ok(Self::NotApplicable(DEFAULT_VAT_NOTE.to_owned())),
            None => Ok(Self::NotApplicable(note.trim().to_owned())),
        }
    }

    pub fn rate_bp(&self) -> Option<i32> {
        match self {
            Self::Rate(bp) => Some(*bp),
            Self::NotApplicable(_) => None,
        }
    }

    pub fn note(&self) -> &str {
        match self {
            Self::Rate(_) => "",
            Self::NotApplicable(note) => note,
        }
    }

    /// VAT on an amount excluding VAT, in cents, rounded half up (`None` on overflow).
    pub fn tax_cents(&self, net_cents: i64) -> Option<i64> {
        match self {
            Self::NotApplicable(_) => Some(0),
            Self::Rate(bp) => {
                let scaled = i128::from(net_cents).checked_mul(i128::from(*bp))?;
                i64::try_from((scaled + 5_000).div_euclid(10_000)).ok()
            }
        }
    }
}

/// An offer's price rule, as the catalogue states it. Amounts in euro cents, VAT excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceRule {
    Free,
    Flat {
        amount_cents: i64,
    },
    DailyRate {
        amount_cents: i64,
        days: i32,
    },
    /// Per inhabitant of the member, at least `floor_cents`, at most `cap_cents` (0 = no cap).
    PerInhabitant {
        amount_cents: i64,
        floor_cents: i64,
        cap_cents: i64,
    },
    /// The provider states the amount when accepting.
    OnQuote,
}

impl PriceRule {
    /// Its kind; the kind's spelling (`PriceKind::as_str`) is what `tariff.price_kind` stores.
    pub fn kind(&self) -> PriceKind {
        match self {
            Self::Free => PriceKind::Free,
            Self::Flat { .. } => PriceKind::Flat,
            Self::DailyRate { .. } => PriceKind::DailyRate,
            Self::PerInhabitant { .. } => PriceKind::PerInhabitant,
            Self::OnQuote => PriceKind::OnQuote,
        }
    }

    /// From its stored parts, validated: `kind` spelled as [`PriceKind::as_str`] (`tariff.price_kind`).
    pub fn from_parts(
        kind: &str,
        amount_cents: i64,
        days: i32,
        floor_cents: i64,
        cap_cents: i64,
    ) -> Result<Self, String> {
        match PriceKind::parse(kind) {
            Some(kind) => Self::new(kind, amount_cents, days, floor_cents, cap_cents),
            None => {
                not_negative(amount_cents, days, floor_cents, cap_cents)?;
                Err(format!("unknown price kind {kind:?}"))
            }
        }
    }

    /// From a kind and the numbers the catalogue sent with it, validated.
    pub fn new(
        kind: PriceKind,
        amount_cents: i64,
        days: i32,
        floor_cents: i64,
        cap_cents: i64,
    ) -> Result<Self, String> {
        not_negative(amount_cents, days, floor_cents, cap_cents)?;
        match kind {
            PriceKind::Free => Ok(Self::Free),
            PriceKind::Flat if amount_cents > 0 => Ok(Self::Flat { amount_cents }),
            PriceKind::Flat => Err("a flat fee needs a positive amount".into()),
            PriceKind::DailyRate if amount_cents > 0 && days > 0 => Ok(Self::DailyRate { amount_cents, days }),
            PriceKind::DailyRate => Err("a daily rate needs a positive amount and number of days".into()),
            PriceKind::PerInhabitant if amount_cents > 0 && (cap_cents == 0 || cap_cents >= floor_cents) => {
                Ok(Self::PerInhabitant { amount_cents, floor_cents, cap_cents })
            }
            PriceKind::PerInhabitant => {
                Err("a per-inhabitant price needs a positive amount and a cap not below its floor".into())
            }
            PriceKind::OnQuote => Ok(Self::OnQuote),
        }
    }

    /// The legacy terms `billed`/`price_cents`: a flat fee or free.
    pub fn from_legacy(billed: bool, price_cents: i64) -> Result<Self, &'static str> {
        Ok(match pricing(billed, price_cents)? {
            Pricing::Free => Self::Free,
            Pricing::Billed { amount_cents } => Self::Flat { amount_cents },
        })
    }

    /// Whether pricing needs the member's population.
    pub fn needs_population(&self) -> bool {
        matches!(self, Self::PerInhabitant { .. })
    }

    /// Prices one delivery of the offer; `population` is the member's, needed per inhabitant only.
    pub fn price(&self, population: Option<i64>) -> Result<Price, PriceError> {
        match *self {
            Self::Free => Ok(Price::Free),
            Self::Flat { amount_cents } => Ok(Price::Amount(amount_cents)),
            Self::DailyRate { amount_cents, days } => {
                amount_cents.checked_mul(i64::from(days)).map(Price::Amount).ok_or(PriceError::Overflow)
            }
            Self::PerInhabitant { amount_cents, floor_cents, cap_cents } => {
                let population = population.ok_or(PriceError::UnknownPopulation)?;
                if population < 0 {
                    return Err(PriceError::NegativePopulation);
                }
                let raw = amount_cents.checked_mul(population).ok_or(PriceError::Overflow)?;
                let floored = raw.max(floor_cents);
                Ok(Price::Amount(if cap_cents > 0 { floored.min(cap_cents) } else { floored }))
            }
            Self::OnQuote => Ok(Price::ToBeStated),
        }
    }
}

/// Amounts and days of a price rule are never negative.
fn not_negative(amount_cents: i64, days: i32, floor_cents: i64, cap_cents: i64) -> Result<(), String> {
    if amount_cents < 0 || floor_cents < 0 || cap_cents < 0 || days < 0 {
        return Err("price rule amounts and days must not be negative".into());
    }
    Ok(())
}

/// The price of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Price {
    /// No document at all.
    Free,
    /// Euro cents, VAT excluded.
    Amount(i64),
    /// On quote: the provider states the amount.
    ToBeStated,
}

/// Why a price cannot be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceError {
    /// The member's population has not reached billing yet: try again later.
    UnknownPopulation,
    NegativePopulation,
    Overflow,
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
    /// The full price rule; for offers without one, derived from `billed`/`price_cents`.
    pub price_rule: PriceRule,
    pub vat: Vat,
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
        let price_rule = PriceRule::from_legacy(billed, price_cents).map_err(|e| format!("offer {offer_id}: {e}"))?;
        let title: String = title.trim().chars().take(MAX_LABEL_CHARS).collect();
        Ok(Self {
            offer_id,
            offer_code: offer_code.to_owned(),
            title,
            provider_code: provider_code.to_owned(),
            billed,
            price_cents,
            version,
            price_rule,
            vat: Vat::NotApplicable(DEFAULT_VAT_NOTE.to_owned()),
        })
    }

    /// Sets the offer's own price rule and VAT terms.
    pub fn with_terms(self, price_rule: PriceRule, vat: Vat) -> Self {
        Self { price_rule, vat, ..self }
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
    /// Issue a quote from the offer's provider for its price (`amount_cents` 0 with `to_be_stated` on quote).
    Quote {
        issuer_code: String,
        amount_cents: i64,
        to_be_stated: bool,
        vat: Vat,
        label: String,
        offer_id: Uuid,
        offer_version: i32,
    },
}

/// Why no decision can be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecideError {
    /// The offer's tariff has not reached billing yet: try again later.
    UnknownTariff,
    /// The member's population has not reached billing yet: try again later.
    UnknownPopulation,
    /// The tariff contradicts itself, or the price cannot be computed.
    Inconsistent(&'static str),
}

/// Decides, from the offer's tariff (and the member's population when priced per inhabitant), whether an
/// accepted referral gets a quote and for how much.
pub fn decide(accepted: &Accepted, tariff: Option<&Tariff>, population: Option<i64>) -> Result<Decision, DecideError> {
    let Some(offer_id) = accepted.offer_id else { return Ok(Decision::NothingToBill) };
    let tariff = tariff.filter(|t| t.offer_id == offer_id).ok_or(DecideError::UnknownTariff)?;
    // The legacy flags must agree with each other whatever the rule.
    tariff.pricing().map_err(DecideError::Inconsistent)?;
    let price = tariff.price_rule.price(population).map_err(|e| match e {
        PriceError::UnknownPopulation => DecideError::UnknownPopulation,
        PriceError::NegativePopulation => DecideError::Inconsistent("the member's population is negative"),
        PriceError::Overflow => DecideError::Inconsistent("the price overflows"),
    })?;
    let (amount_cents, to_be_stated) = match price {
        Price::Free => return Ok(Decision::Free),
        Price::Amount(amount) => (amount, false),
        Price::ToBeStated => (0, true),
    };
    Ok(Decision::Quote {
        issuer_code: tariff.provider_code.clone(),
        amount_cents,
        to_be_stated,
        vat: tariff.vat.clone(),
        label: tariff.title.clone(),
        offer_id: tariff.offer_id,
        offer_version: tariff.version,
    })
}

/// Largest amount a provider may state on a quote (routing refuses more): 10 000 000,00 € in cents.
pub const MAX_STATED_CENTS: i64 = 1_000_000_000;

/// What the provider stated when accepting a referral for an offer priced on quote
/// (`ReferralAccepted.amount_cents` and `quote_note`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stated {
    /// Euro cents, VAT excluded, 1 to [`MAX_STATED_CENTS`].
    pub amount_cents: i64,
    /// Short label of the quote (may be empty).
    pub note: String,
}

impl Stated {
    /// From the event's fields: `None` when no amount was stated (0: events before issue 7's "on quote", and
    /// accepts of offers with a set price).
    pub fn parse(amount_cents: i64, note: &str) -> Result<Option<Self>, String> {
        match amount_cents {
            0 => Ok(None),
            n if (1..=MAX_STATED_CENTS).contains(&n) => {
                let note: String = note.trim().chars().filter(|c| !c.is_control()).take(MAX_LABEL_CHARS).collect();
                Ok(Some(Self { amount_cents: n, note }))
            }
            n => Err(format!("stated amount {n} cents is not between 1 and {MAX_STATED_CENTS}")),
        }
    }
}

impl Decision {
    /// Applies the amount the provider stated to the quote of an offer priced on quote; the label gets the
    /// provider's note after the offer's title. Any other decision is unchanged: a stated amount counts only for
    /// an offer on quote (the tariff of the offer decides, not the reply).
    pub fn with_stated(self, stated: Option<&Stated>) -> Self {
        match (self, stated) {
            (Self::Quote { issuer_code, to_be_stated: true, vat, label, offer_id, offer_version, .. }, Some(s)) => {
                let label = if s.note.is_empty() {
                    label
                } else {
                    format!("{label} — {}", s.note).chars().take(MAX_LABEL_CHARS).collect()
                };
                Self::Quote {
                    issuer_code,
                    amount_cents: s.amount_cents,
                    to_be_stated: false,
                    vat,
                    label,
                    offer_id,
                    offer_version,
                }
            }
            (decision, _) => decision,
        }
    }
}

#[cfg(test)]
mod tests {

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
            price_rule: PriceRule::from_legacy(billed, price_cents).unwrap_or(PriceRule::Free),
            vat: Vat::NotApplicable(DEFAULT_VAT_NOTE.into()),
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
            decide(&accepted(offer), Some(&billed), None),
            Ok(Decision::Quote {
                issuer_code: "dir-routes".into(),
                amount_cents: 250_000,
                to_be_stated: false,
                vat: Vat::NotApplicable(DEFAULT_VAT_NOTE.into()),
                label: "Assistance à maîtrise d'ouvrage".into(),
                offer_id: Uuid::from_u128(7),
                offer_version: 1,
            })
        );
        assert_eq!(decide(&accepted(offer), Some(&tariff(false, 0)), None), Ok(Decision::Free));
        assert_eq!(decide(&accepted(offer), None, None), Err(DecideError::UnknownTariff));
        assert_eq!(decide(&accepted(Some(Uuid::from_u128(8))), Some(&billed), None), Err(DecideError::UnknownTariff));
        assert!(matches!(decide(&accepted(offer), Some(&tariff(true, 0)), None), Err(DecideError::Inconsistent(_))));
        assert_eq!(decide(&accepted(None), None, None), Ok(Decision::NothingToBill));
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

    #[test]
    fn every_price_rule_prices_in_integer_cents() {
        assert_eq!(PriceRule::Free.price(None), Ok(Price::Free));
        assert_eq!(PriceRule::Flat { amount_cents: 150_000 }.price(None), Ok(Price::Amount(150_000)));
        assert_eq!(PriceRule::DailyRate { amount_cents: 45_000, days: 3 }.price(None), Ok(Price::Amount(135_000)));
        assert_eq!(PriceRule::DailyRate { amount_cents: i64::MAX, days: 2 }.price(None), Err(PriceError::Overflow));
        let per = PriceRule::PerInhabitant { amount_cents: 50, floor_cents: 50_000, cap_cents: 500_000 };
        assert_eq!(per.price(Some(4_000)), Ok(Price::Amount(200_000)));
        assert_eq!(per.price(Some(300)), Ok(Price::Amount(50_000)), "floor");
        assert_eq!(per.price(Some(0)), Ok(Price::Amount(50_000)), "floor");
        assert_eq!(per.price(Some(1_000_000)), Ok(Price::Amount(500_000)), "cap");
        assert_eq!(per.price(None), Err(PriceError::UnknownPopulation));
        assert_eq!(per.price(Some(-1)), Err(PriceError::NegativePopulation));
        assert_eq!(per.price(Some(i64::MAX)), Err(PriceError::Overflow));
        let uncapped = PriceRule::PerInhabitant { amount_cents: 50, floor_cents: 0, cap_cents: 0 };
        assert_eq!(uncapped.price(Some(1_000_000)), Ok(Price::Amount(50_000_000)));
        assert_eq!(PriceRule::OnQuote.price(None), Ok(Price::ToBeStated));
    }

    #[test]
    fn price_rules_are_validated() {
        assert_eq!(PriceRule::from_parts("free", 0, 0, 0, 0), Ok(PriceRule::Free));
        assert_eq!(PriceRule::from_parts("flat", 10, 0, 0, 0), Ok(PriceRule::Flat { amount_cents: 10 }));
        assert!(PriceRule::from_parts("flat", 0, 0, 0, 0).is_err());
        assert!(PriceRule::from_parts("daily_rate", 10, 0, 0, 0).is_err());
        assert!(PriceRule::from_parts("per_inhabitant", 10, 0, 500, 100).is_err());
        assert!(PriceRule::from_parts("per_inhabitant", 10, 0, 100, 0).is_ok());
        assert!(PriceRule::from_parts("flat", -1, 0, 0, 0).is_err());
        assert!(PriceRule::from_parts("barter", 1, 0, 0, 0).is_err());
        assert_eq!(PriceRule::from_parts("on_quote", 0, 0, 0, 0), Ok(PriceRule::OnQuote));
        for rule in [
            PriceRule::Free,
            PriceRule::Flat { amount_cents: 1 },
            PriceRule::DailyRate { amount_cents: 1, days: 2 },
            PriceRule::PerInhabitant { amount_cents: 1, floor_cents: 2, cap_cents: 3 },
            PriceRule::OnQuote,
        ] {
            let (a, d, f, c) = match rule {
                PriceRule::Flat { amount_cents } => (amount_cents, 0, 0, 0),
                PriceRule::DailyRate { amount_cents, days } => (amount_cents, days, 0, 0),
                PriceRule::PerInhabitant { amount_cents, floor_cents, cap_cents } => {
                    (amount_cents, 0, floor_cents, cap_cents)
                }
                _ => (0, 0, 0, 0),
            };
            assert_eq!(PriceRule::from_parts(rule.kind().as_str(), a, d, f, c), Ok(rule));
            assert_eq!(PriceRule::new(rule.kind(), a, d, f, c), Ok(rule));
        }
    }

    #[test]
    fn vat_is_a_rate_or_a_mention() {
        assert_eq!(Vat::parse(Some(2000), ""), Ok(Vat::Rate(2000)));
        assert_eq!(Vat::parse(None, ""), Ok(Vat::NotApplicable(DEFAULT_VAT_NOTE.into())));
        assert_eq!(Vat::parse(None, " Exonéré "), Ok(Vat::NotApplicable("Exonéré".into())));
        assert!(Vat::parse(Some(-1), "").is_err());
        assert!(Vat::parse(Some(10_001), "").is_err());
        assert_eq!(Vat::Rate(2000).tax_cents(12_345), Some(2_469));
        assert_eq!(Vat::Rate(550).tax_cents(1_000), Some(55));
        assert_eq!(Vat::NotApplicable("x".into()).tax_cents(12_345), Some(0));
    }

    #[test]
    fn quotes_follow_the_price_rule() {
        let offer = Some(Uuid::from_u128(7));
        let vat20 = Vat::Rate(2000);
        let per = tariff(false, 0).with_terms(
            PriceRule::PerInhabitant { amount_cents: 50, floor_cents: 10_000, cap_cents: 0 },
            vat20.clone(),
        );
        assert_eq!(decide(&accepted(offer), Some(&per), None), Err(DecideError::UnknownPopulation));
        assert!(matches!(
            decide(&accepted(offer), Some(&per), Some(1_000)),
            Ok(Decision::Quote { amount_cents: 50_000, to_be_stated: false, vat: Vat::Rate(2000), .. })
        ));
        let on_quote = tariff(false, 0).with_terms(PriceRule::OnQuote, vat20);
        assert!(matches!(
            decide(&accepted(offer), Some(&on_quote), None),
            Ok(Decision::Quote { amount_cents: 0, to_be_stated: true, .. })
        ));
        let daily = tariff(false, 0).with_terms(PriceRule::DailyRate { amount_cents: 40_000, days: 2 }, Vat::Rate(0));
        assert!(matches!(
            decide(&accepted(offer), Some(&daily), None),
            Ok(Decision::Quote { amount_cents: 80_000, .. })
        ));
        let free = tariff(true, 100).with_terms(PriceRule::Free, Vat::Rate(0));
        assert_eq!(decide(&accepted(offer), Some(&free), None), Ok(Decision::Free));
    }

    #[test]
    fn a_stated_amount_prices_an_offer_on_quote_only() {
        let offer = Some(Uuid::from_u128(7));
        let stated = Stated::parse(245_000, " Devis 2026-12 ").ok().flatten();
        assert_eq!(stated, Some(Stated { amount_cents: 245_000, note: "Devis 2026-12".into() }));
        assert_eq!(Stated::parse(0, "ignored"), Ok(None));
        for bad in [-1, MAX_STATED_CENTS + 1, i64::MIN] {
            assert!(Stated::parse(bad, "").is_err(), "{bad}");
        }
        let on_quote = tariff(false, 0).with_terms(PriceRule::OnQuote, Vat::Rate(2000));
        let quoted = decide(&accepted(offer), Some(&on_quote), None).map(|d| d.with_stated(stated.as_ref()));
        assert!(
            matches!(
                &quoted,
                Ok(Decision::Quote { amount_cents: 245_000, to_be_stated: false, vat: Vat::Rate(2000), label, .. })
                    if label == "Assistance à maîtrise d'ouvrage — Devis 2026-12"
            ),
            "{quoted:?}"
        );
        // Without a note the label is the offer's title; without an amount the quote stays to be stated.
        let bare = Stated { amount_cents: 1, note: String::new() };
        assert!(matches!(
            decide(&accepted(offer), Some(&on_quote), None).map(|d| d.with_stated(Some(&bare))),
            Ok(Decision::Quote { amount_cents: 1, label, .. }) if label == "Assistance à maîtrise d'ouvrage"
        ));
        assert!(matches!(
            decide(&accepted(offer), Some(&on_quote), None).map(|d| d.with_stated(None)),
            Ok(Decision::Quote { amount_cents: 0, to_be_stated: true, .. })
        ));
        // An amount given for an offer with a set price changes nothing.
        let flat = tariff(true, 12_000);
        assert_eq!(
            decide(&accepted(offer), Some(&flat), None).map(|d| d.with_stated(stated.as_ref())),
            decide(&accepted(offer), Some(&flat), None)
        );
        assert_eq!(Decision::Free.with_stated(stated.as_ref()), Decision::Free);
    }
}
