//! How an offer is priced: the price rule with its amounts (its kind is the platform's [`PriceKind`]), what
//! it costs a member when that is known in advance, and the bounds a rule must keep.

use id77_platform::error::FieldViolation;
use id77_proto::vocabulary::PriceKind;
use serde::{Deserialize, Serialize};

/// Highest amount accepted in a price rule (1 M€), a guard against a misplaced digit.
pub const MAX_PRICE_CENTS: i64 = 100_000_000;
/// Longest daily-rate engagement.
pub const MAX_DAYS: i32 = 365;

/// How an offer is priced (amounts in euro cents, VAT excluded). The `kind` tag spells the variants as
/// [`PriceKind`] does (the seed file and the stored version snapshots use it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PriceRule {
    Free,
    Flat {
        amount_cents: i64,
    },
    DailyRate {
        amount_cents: i64,
        days: i32,
    },
    /// `amount_cents` per inhabitant, at least `floor_cents`, at most `cap_cents` when there is a cap.
    PerInhabitant {
        amount_cents: i64,
        #[serde(default)]
        floor_cents: i64,
        #[serde(default)]
        cap_cents: Option<i64>,
    },
    OnQuote,
}

impl PriceRule {
    pub fn kind(&self) -> PriceKind {
        match self {
            Self::Free => PriceKind::Free,
            Self::Flat { .. } => PriceKind::Flat,
            Self::DailyRate { .. } => PriceKind::DailyRate,
            Self::PerInhabitant { .. } => PriceKind::PerInhabitant,
            Self::OnQuote => PriceKind::OnQuote,
        }
    }

    /// The amount known in advance, whoever asks: a flat fee, or a daily rate times its days.
    pub fn fixed_amount(&self) -> Option<i64> {
        match *self {
            Self::Flat { amount_cents } => Some(amount_cents),
            Self::DailyRate { amount_cents, days } => amount_cents.checked_mul(i64::from(days)),
            Self::Free | Self::PerInhabitant { .. } | Self::OnQuote => None,
        }
    }

    /// The legacy `(billed, price_cents)` pair of `Offer`, as existing consumers (billing's tariffs) read it:
    /// billed exactly when a fixed amount is known in advance.
    pub fn legacy(&self) -> (bool, i64) {
        match self.fixed_amount() {
            Some(amount) if amount > 0 => (true, amount),
            _ => (false, 0),
        }
    }

    /// What a member of `population` would pay, when the rule says so without a quote (`Some(0)` if free).
    pub fn estimate(&self, population: i64) -> Option<i64> {
        match *self {
            Self::Free => Some(0),
            Self::PerInhabitant { amount_cents, floor_cents, cap_cents } => {
                let raw = amount_cents.checked_mul(population.max(0))?;
                let floored = raw.max(floor_cents);
                Some(cap_cents.map_or(floored, |cap| floored.min(cap)))
            }
            Self::OnQuote => None,
            Self::Flat { .. } | Self::DailyRate { .. } => self.fixed_amount(),
        }
    }

    /// Reports every amount or number of days out of bounds, as `<field>.<part>`.
    pub(super) fn check(&self, field: &str, out: &mut Vec<FieldViolation>) {
        let mut fail = |f: &str, d: String| out.push(FieldViolation { field: format!("{field}.{f}"), description: d });
        let amount_ok = |a: i64| (1..=MAX_PRICE_CENTS).contains(&a);
        match *self {
            Self::Free | Self::OnQuote => {}
            Self::Flat { amount_cents } => {
                if !amount_ok(amount_cents) {
                    fail("amount_cents", format!("must be from 1 to {MAX_PRICE_CENTS}"));
                }
            }
            Self::DailyRate { amount_cents, days } => {
                if !amount_ok(amount_cents) {
                    fail("amount_cents", format!("must be from 1 to {MAX_PRICE_CENTS}"));
                }
                if !(1..=MAX_DAYS).contains(&days) {
                    fail("days", format!("must be from 1 to {MAX_DAYS}"));
                } else if self.fixed_amount().is_none_or(|total| total > MAX_PRICE_CENTS) {
                    fail("days", format!("rate times days must be at most {MAX_PRICE_CENTS}"));
                }
            }
            Self::PerInhabitant { amount_cents, floor_cents, cap_cents } => {
                if !amount_ok(amount_cents) {
                    fail("amount_cents", format!("must be from 1 to {MAX_PRICE_CENTS}"));
                }
                if !(0..=MAX_PRICE_CENTS).contains(&floor_cents) {
                    fail("floor_cents", format!("must be from 0 to {MAX_PRICE_CENTS}"));
                }
                if let Some(cap) = cap_cents {
                    if !(1..=MAX_PRICE_CENTS).contains(&cap) {
                        fail("cap_cents", format!("must be from 1 to {MAX_PRICE_CENTS}"));
                    } else if cap < floor_cents {
                        fail("cap_cents", "must not be below floor_cents".into());
                    }
                }
            }
        }
    }
}
