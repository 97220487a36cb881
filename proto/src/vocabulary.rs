//! The platform's shared words, defined once: the families of offers, the kinds of collectivité and the ways an
//! offer is priced. Each has its wire spelling (`as_str`, the one stored in databases, events' string fields and
//! JSON) and its conversions from and to the protobuf enums.

use serde::{Deserialize, Serialize};

use crate::{catalogue, membership};

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$(Self::$variant,)*];

            /// The wire spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some(Self::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownWord;

            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                Self::parse(s).ok_or(UnknownWord { kind: stringify!($name), word: s.chars().take(64).collect() })
            }
        }
    };
}

/// A word that is not in the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWord {
    pub kind: &'static str,
    pub word: String,
}

impl std::fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {}: {:?}", self.kind, self.word)
    }
}

impl std::error::Error for UnknownWord {}

vocabulary! {
    /// The three families of offers.
    Category {
        /// A study or an engagement on a site.
        IntegratedEngineering => "integrated_engineering",
        /// Awareness actions and training.
        AwarenessTraining => "awareness_training",
        /// A physical exhibition lent for dates.
        ExhibitionLoan => "exhibition_loan",
    }
}

vocabulary! {
    /// The kinds of collectivité that join.
    MemberKind {
        Commune => "commune",
        /// An intercommunalité (établissement public de coopération intercommunale).
        Epci => "epci",
        Syndicat => "syndicat",
    }
}

vocabulary! {
    /// How an offer is priced (the amounts are in its price rule, euro cents excluding VAT).
    PriceKind {
        Free => "free",
        /// An amount once.
        Flat => "flat",
        /// An amount per day, for a number of days.
        DailyRate => "daily_rate",
        /// An amount per inhabitant of the member, with a floor and a cap.
        PerInhabitant => "per_inhabitant",
        /// The provider states the amount in a quote.
        OnQuote => "on_quote",
    }
}

impl Category {
    pub fn from_proto(value: i32) -> Option<Self> {
        match catalogue::v1::OfferCategory::try_from(value).ok()? {
            catalogue::v1::OfferCategory::IntegratedEngineering => Some(Self::IntegratedEngineering),
            catalogue::v1::OfferCategory::AwarenessTraining => Some(Self::AwarenessTraining),
            catalogue::v1::OfferCategory::ExhibitionLoan => Some(Self::ExhibitionLoan),
            catalogue::v1::OfferCategory::Unspecified => None,
        }
    }

    pub fn to_proto(self) -> catalogue::v1::OfferCategory {
        match self {
            Self::IntegratedEngineering => catalogue::v1::OfferCategory::IntegratedEngineering,
            Self::AwarenessTraining => catalogue::v1::OfferCategory::AwarenessTraining,
            Self::ExhibitionLoan => catalogue::v1::OfferCategory::ExhibitionLoan,
        }
    }
}

impl MemberKind {
    /// From the catalogue's `MemberKind` (eligibility).
    pub fn from_proto(value: i32) -> Option<Self> {
        match catalogue::v1::MemberKind::try_from(value).ok()? {
            catalogue::v1::MemberKind::Commune => Some(Self::Commune),
            catalogue::v1::MemberKind::Epci => Some(Self::Epci),
            catalogue::v1::MemberKind::Syndicat => Some(Self::Syndicat),
            catalogue::v1::MemberKind::Unspecified => None,
        }
    }

    pub fn to_proto(self) -> catalogue::v1::MemberKind {
        match self {
            Self::Commune => catalogue::v1::MemberKind::Commune,
            Self::Epci => catalogue::v1::MemberKind::Epci,
            Self::Syndicat => catalogue::v1::MemberKind::Syndicat,
        }
    }

    /// From membership's `CollectivityKind`.
    pub fn from_collectivity(value: i32) -> Option<Self> {
        match membership::v1::CollectivityKind::try_from(value).ok()? {
            membership::v1::CollectivityKind::Commune => Some(Self::Commune),
            membership::v1::CollectivityKind::Epci => Some(Self::Epci),
            membership::v1::CollectivityKind::Syndicat => Some(Self::Syndicat),
            membership::v1::CollectivityKind::Unspecified => None,
        }
    }

    pub fn to_collectivity(self) -> membership::v1::CollectivityKind {
        match self {
            Self::Commune => membership::v1::CollectivityKind::Commune,
            Self::Epci => membership::v1::CollectivityKind::Epci,
            Self::Syndicat => membership::v1::CollectivityKind::Syndicat,
        }
    }
}

impl PriceKind {
    pub fn from_proto(value: i32) -> Option<Self> {
        match catalogue::v1::PriceKind::try_from(value).ok()? {
            catalogue::v1::PriceKind::Free => Some(Self::Free),
            catalogue::v1::PriceKind::Flat => Some(Self::Flat),
            catalogue::v1::PriceKind::DailyRate => Some(Self::DailyRate),
            catalogue::v1::PriceKind::PerInhabitant => Some(Self::PerInhabitant),
            catalogue::v1::PriceKind::OnQuote => Some(Self::OnQuote),
            catalogue::v1::PriceKind::Unspecified => None,
        }
    }

    pub fn to_proto(self) -> catalogue::v1::PriceKind {
        match self {
            Self::Free => catalogue::v1::PriceKind::Free,
            Self::Flat => catalogue::v1::PriceKind::Flat,
            Self::DailyRate => catalogue::v1::PriceKind::DailyRate,
            Self::PerInhabitant => catalogue::v1::PriceKind::PerInhabitant,
            Self::OnQuote => catalogue::v1::PriceKind::OnQuote,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_round_trips_through_its_spelling_and_the_wire() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Some(*c));
            assert_eq!(Category::from_proto(c.to_proto() as i32), Some(*c));
        }
        for k in MemberKind::ALL {
            assert_eq!(k.as_str().parse::<MemberKind>(), Ok(*k));
            assert_eq!(MemberKind::from_proto(k.to_proto() as i32), Some(*k));
            assert_eq!(MemberKind::from_collectivity(k.to_collectivity() as i32), Some(*k));
        }
        for p in PriceKind::ALL {
            assert_eq!(PriceKind::parse(p.as_str()), Some(*p));
            assert_eq!(PriceKind::from_proto(p.to_proto() as i32), Some(*p));
        }
        assert_eq!(MemberKind::parse("EPCI"), None);
        assert_eq!(Category::from_proto(0), None);
        assert_eq!(serde_json::to_string(&PriceKind::PerInhabitant).ok().as_deref(), Some("\"per_inhabitant\""));
    }
}
