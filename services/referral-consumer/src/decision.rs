//! The provider's answer to a referral: accept (stating the amount of an offer priced on quote) or decline with
//! a reason, validated as routing validates it; the [`Decider`]s that give it, among them the command line's fixed
//! [`Rule`]s.

use id77_proto::routing::v1::{ReferralOffered, ReplyDecision};
use id77_proto::vocabulary::PriceKind;

/// Longest decline reason routing accepts.
pub const MAX_REASON_CHARS: usize = 1000;
/// Largest amount routing accepts on a quote: 10 000 000,00 € in cents.
pub const MAX_QUOTE_CENTS: i64 = 1_000_000_000;
/// Longest quote label routing accepts.
pub const MAX_QUOTE_NOTE_CHARS: usize = 200;
/// `ReferralOffered.price_kind` of an offer priced on quote: its accept must state the amount.
pub const ON_QUOTE: &str = PriceKind::OnQuote.as_str();

/// The amount a provider states when it accepts a referral for an offer priced on quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    /// Euro cents, VAT excluded, 1 to [`MAX_QUOTE_CENTS`].
    pub amount_cents: i64,
    /// Optional short label (at most [`MAX_QUOTE_NOTE_CHARS`] characters).
    pub note: String,
}

impl Quote {
    /// A quote, validated as routing validates it.
    pub fn new(amount_cents: i64, note: &str) -> Result<Self, String> {
        let note = note.trim();
        if !(1..=MAX_QUOTE_CENTS).contains(&amount_cents) {
            Err(format!("a quoted amount must be 1 to {MAX_QUOTE_CENTS} cents (VAT excluded)"))
        } else if note.chars().count() > MAX_QUOTE_NOTE_CHARS || note.chars().any(char::is_control) {
            Err(format!("a quote label must be at most {MAX_QUOTE_NOTE_CHARS} characters, without control characters"))
        } else {
            Ok(Self { amount_cents, note: note.to_owned() })
        }
    }
}

/// The provider's answer to one referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accept,
    /// An accept that states the amount of an offer priced on quote.
    AcceptQuoted(Quote),
    /// With the reason given to the member (required, at most [`MAX_REASON_CHARS`] characters).
    Decline(String),
}

impl Decision {
    /// A decline, validated.
    pub fn decline(reason: &str) -> Result<Self, String> {
        let reason = reason.trim();
        if reason.is_empty() {
            Err("a decline needs a reason".to_owned())
        } else if reason.chars().count() > MAX_REASON_CHARS {
            Err(format!("a decline reason must be at most {MAX_REASON_CHARS} characters"))
        } else {
            Ok(Self::Decline(reason.to_owned()))
        }
    }

    /// The decision and reason as they go on the wire; an invalid decline or quote is refused.
    pub fn to_wire(&self) -> Result<(ReplyDecision, String), String> {
        match self {
            Self::Accept => Ok((ReplyDecision::Accept, String::new())),
            Self::AcceptQuoted(quote) => {
                Quote::new(quote.amount_cents, &quote.note)?;
                Ok((ReplyDecision::Accept, String::new()))
            }
            Self::Decline(reason) => match Self::decline(reason)? {
                Self::Decline(reason) => Ok((ReplyDecision::Decline, reason)),
                _ => Ok((ReplyDecision::Accept, String::new())),
            },
        }
    }

    /// The stated quote, on an accept that has one.
    pub fn quote(&self) -> Option<&Quote> {
        match self {
            Self::AcceptQuoted(quote) => Some(quote),
            Self::Accept | Self::Decline(_) => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Accept | Self::AcceptQuoted(_) => "accept",
            Self::Decline(_) => "decline",
        }
    }

    /// This decision for `referral`, given the provider's configured `quote`: a plain accept of an offer priced
    /// on quote states that amount, or is `None` (no amount to state: left to an agent); a stated amount is
    /// dropped for an offer routing knows is not on quote (routing would refuse the reply).
    pub fn for_offer(self, referral: &ReferralOffered, quote: Option<&Quote>) -> Option<Self> {
        let on_quote = referral.price_kind == ON_QUOTE;
        let known = !referral.price_kind.is_empty();
        match self {
            Self::Accept if on_quote => quote.cloned().map(Self::AcceptQuoted),
            Self::AcceptQuoted(_) if known && !on_quote => Some(Self::Accept),
            other => Some(other),
        }
    }
}

/// Decides each referral. Any `Fn(&ReferralOffered) -> Decision` is one.
pub trait Decider: Send + Sync {
    fn decide(&self, referral: &ReferralOffered) -> Decision;
}

impl<F> Decider for F
where
    F: Fn(&ReferralOffered) -> Decision + Send + Sync,
{
    fn decide(&self, referral: &ReferralOffered) -> Decision {
        self(referral)
    }
}

/// The rules the command line offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuleKind {
    AcceptAll,
    DeclineAll,
}

/// A fixed rule: accept everything, or decline everything with one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    AcceptAll,
    DeclineAll { reason: String },
}

impl Rule {
    /// Builds a rule; `decline-all` needs a valid reason, `accept-all` takes none.
    pub fn new(kind: RuleKind, decline_reason: Option<&str>) -> Result<Self, String> {
        match (kind, decline_reason) {
            (RuleKind::AcceptAll, None) => Ok(Self::AcceptAll),
            (RuleKind::AcceptAll, Some(_)) => Err("--decline-reason only goes with --rule decline-all".to_owned()),
            (RuleKind::DeclineAll, None) => Err("--rule decline-all needs --decline-reason".to_owned()),
            (RuleKind::DeclineAll, Some(reason)) => match Decision::decline(reason)? {
                Decision::Decline(reason) => Ok(Self::DeclineAll { reason }),
                Decision::Accept | Decision::AcceptQuoted(_) => Ok(Self::AcceptAll),
            },
        }
    }
}

impl Decider for Rule {
    fn decide(&self, _referral: &ReferralOffered) -> Decision {
        match self {
            Self::AcceptAll => Decision::Accept,
            Self::DeclineAll { reason } => Decision::Decline(reason.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn referral() -> ReferralOffered {
        ReferralOffered { referral_id: "r".into(), ..Default::default() }
    }

    #[test]
    fn rules_decide_every_referral_alike() {
        assert_eq!(Rule::new(RuleKind::AcceptAll, None).map(|r| r.decide(&referral())), Ok(Decision::Accept));
        let decline = Rule::new(RuleKind::DeclineAll, Some("  hors de notre territoire "));
        assert_eq!(decline.map(|r| r.decide(&referral())), Ok(Decision::Decline("hors de notre territoire".into())));
    }

    #[test]
    fn an_accept_states_the_amount_exactly_for_an_offer_on_quote() {
        let quote = Quote::new(245_000, " Devis 12 ").ok();
        assert_eq!(quote, Some(Quote { amount_cents: 245_000, note: "Devis 12".into() }));
        let on_quote = ReferralOffered { price_kind: ON_QUOTE.into(), ..referral() };
        let flat = ReferralOffered { price_kind: PriceKind::Flat.as_str().into(), ..referral() };
        let quoted = quote.clone().map(Decision::AcceptQuoted);
        assert_eq!(Decision::Accept.for_offer(&on_quote, quote.as_ref()), quoted);
        assert_eq!(Decision::Accept.for_offer(&on_quote, None), None, "left to an agent");
        assert_eq!(Decision::Accept.for_offer(&flat, quote.as_ref()), Some(Decision::Accept));
        assert_eq!(quoted.clone().and_then(|d| d.for_offer(&flat, None)), Some(Decision::Accept));
        // Unknown price kind (an older routing): the decision goes as it is.
        assert_eq!(quoted.clone().and_then(|d| d.for_offer(&referral(), None)), quoted);
        let decline = Decision::Decline("non".into());
        assert_eq!(decline.clone().for_offer(&on_quote, None), Some(decline));
        for (amount, note) in [(0, ""), (-1, ""), (MAX_QUOTE_CENTS + 1, ""), (1, "a\u{7}")] {
            assert!(Quote::new(amount, note).is_err(), "{amount} {note:?}");
        }
        let forged = Decision::AcceptQuoted(Quote { amount_cents: -4, note: String::new() });
        assert!(forged.to_wire().is_err(), "an invalid quote never reaches the wire");
        assert_eq!(
            quoted.map(|d| (d.name(), d.to_wire())),
            Some(("accept", Ok((ReplyDecision::Accept, String::new()))))
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        assert!(Rule::new(RuleKind::DeclineAll, None).is_err());
        assert!(Rule::new(RuleKind::DeclineAll, Some("  ")).is_err());
        assert!(Rule::new(RuleKind::DeclineAll, Some(&"x".repeat(MAX_REASON_CHARS + 1))).is_err());
        assert!(Rule::new(RuleKind::DeclineAll, Some(&"é".repeat(MAX_REASON_CHARS))).is_ok());
        assert!(Rule::new(RuleKind::AcceptAll, Some("why")).is_err());
    }

    #[test]
    fn closures_are_deciders_and_invalid_declines_never_reach_the_wire() {
        let by_offer = |r: &ReferralOffered| {
            if r.offer_code.starts_with("caue-") {
                Decision::Accept
            } else {
                Decision::Decline("pas notre métier".into())
            }
        };
        let caue = ReferralOffered { offer_code: "caue-conseil".into(), ..referral() };
        assert_eq!(by_offer.decide(&caue), Decision::Accept);
        assert_eq!(by_offer.decide(&referral()).to_wire(), Ok((ReplyDecision::Decline, "pas notre métier".into())));
        assert!(Decision::Decline(String::new()).to_wire().is_err());
        assert_eq!(Decision::Accept.to_wire(), Ok((ReplyDecision::Accept, String::new())));
    }
}
