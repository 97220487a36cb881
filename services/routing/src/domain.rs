//! Routing rules, free of I/O: the referral state machine, how a provider is chosen ([`rules`]), when it must
//! answer ([`calendar`]), what a valid reply is.

pub mod calendar;
pub mod rules;

use std::fmt;

use id77_platform::streams::is_valid_subject_token;

/// Longest decline reason a provider may give.
pub const MAX_REASON_CHARS: usize = 1000;

/// Where a referral stands. `Offered` is the only state that can change; the others are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralStatus {
    Offered,
    Accepted,
    Declined,
    Expired,
    Withdrawn,
}

/// What can happen to a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The provider takes the request.
    Accept,
    /// The provider turns it down (with a reason).
    Decline,
    /// Nobody answered in time.
    Expire,
    /// Routing or the member took it back (request cancelled, re-routed).
    Withdraw,
}

impl Transition {
    pub fn past_tense(self) -> &'static str {
        match self {
            Self::Accept => "accepted",
            Self::Decline => "declined",
            Self::Expire => "expired",
            Self::Withdraw => "withdrawn",
        }
    }
}

/// A transition that the current state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTransition {
    pub from: ReferralStatus,
    pub transition: Transition,
}

impl fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a referral that is {} cannot be {}", self.from.as_str(), self.transition.past_tense())
    }
}

impl std::error::Error for InvalidTransition {}

impl ReferralStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Offered => "offered",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Expired => "expired",
            Self::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "offered" => Self::Offered,
            "accepted" => Self::Accepted,
            "declined" => Self::Declined,
            "expired" => Self::Expired,
            "withdrawn" => Self::Withdrawn,
            _ => return None,
        })
    }

    /// Nothing leaves a final state.
    pub fn is_final(self) -> bool {
        self != Self::Offered
    }

    /// The state after `transition`, if allowed.
    pub fn apply(self, transition: Transition) -> Result<Self, InvalidTransition> {
        match (self, transition) {
            (Self::Offered, Transition::Accept) => Ok(Self::Accepted),
            (Self::Offered, Transition::Decline) => Ok(Self::Declined),
            (Self::Offered, Transition::Expire) => Ok(Self::Expired),
            (Self::Offered, Transition::Withdraw) => Ok(Self::Withdrawn),
            (from, transition) => Err(InvalidTransition { from, transition }),
        }
    }
}

/// Longest reason given by the coordinator (withdrawal, reassignment).
pub const MAX_NOTE_CHARS: usize = 1000;

/// A coordinator's free-text reason: trimmed, at most [`MAX_NOTE_CHARS`] characters, no control characters
/// other than newlines.
pub fn note(raw: &str) -> Result<String, &'static str> {
    let note = raw.trim();
    if note.chars().count() > MAX_NOTE_CHARS {
        Err("must be at most 1000 characters")
    } else if note.chars().any(|c| c.is_control() && c != '\n') {
        Err("must not contain control characters")
    } else {
        Ok(note.to_owned())
    }
}

/// Largest amount a provider may state on a quote: 10 000 000,00 € (in cents). Anything above is a typo.
pub const MAX_QUOTE_CENTS: i64 = 1_000_000_000;
/// Longest quote label a provider may give.
pub const MAX_QUOTE_NOTE_CHARS: usize = 200;

/// The amount a provider states when it accepts a referral for an offer priced on quote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatedQuote {
    /// Euro cents, VAT excluded, 1 to [`MAX_QUOTE_CENTS`].
    pub amount_cents: i64,
    /// Short label (may be empty), at most [`MAX_QUOTE_NOTE_CHARS`] characters, no control characters.
    pub note: String,
}

/// A provider's answer, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// With the stated quote when the offer is priced on quote.
    Accept(Option<StatedQuote>),
    Decline {
        reason: String,
    },
    /// The accepted work is done (no change of status: the referral stays accepted, with a completion time).
    Complete,
}

/// The decision as it travels on the wire (`id77.routing.v1.ReplyDecision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireDecision {
    Unspecified,
    Accept,
    Decline,
    Complete,
}

/// Why a reply is refused, with the field at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyError {
    /// `decision`, `reason`, `amount_cents` or `quote_note`.
    pub field: &'static str,
    pub message: &'static str,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ReplyError {}

/// Validates a stated amount and its label as they come (0 and an empty label: nothing stated).
pub fn stated_quote(amount_cents: i64, note: &str) -> Result<Option<StatedQuote>, ReplyError> {
    let note = note.trim();
    let bad = |field, message| Err(ReplyError { field, message });
    if amount_cents == 0 {
        return if note.is_empty() { Ok(None) } else { bad("quote_note", "a quote label goes with an amount") };
    }
    if amount_cents < 0 {
        return bad("amount_cents", "must be positive");
    }
    if amount_cents > MAX_QUOTE_CENTS {
        return bad("amount_cents", "must be at most 1000000000 cents (10 000 000,00 EUR)");
    }
    if note.chars().count() > MAX_QUOTE_NOTE_CHARS {
        return bad("quote_note", "must be at most 200 characters");
    }
    if note.chars().any(char::is_control) {
        return bad("quote_note", "must not contain control characters");
    }
    Ok(Some(StatedQuote { amount_cents, note: note.to_owned() }))
}

impl Reply {
    /// Validates a reply: the decision must be given; a decline needs a reason of at most
    /// [`MAX_REASON_CHARS`] characters; an amount (with its optional label) goes with an accept only.
    pub fn parse(
        decision: WireDecision,
        reason: &str,
        amount_cents: i64,
        quote_note: &str,
    ) -> Result<Self, ReplyError> {
        let quote = stated_quote(amount_cents, quote_note)?;
        let bad = |field, message| Err(ReplyError { field, message });
        match decision {
            WireDecision::Unspecified => bad("decision", "the decision is missing"),
            WireDecision::Accept => Ok(Self::Accept(quote)),
            _ if quote.is_some() => bad("amount_cents", "an amount is stated only when accepting"),
            WireDecision::Complete => Ok(Self::Complete),
            WireDecision::Decline => {
                let reason = reason.trim();
                if reason.is_empty() {
                    bad("reason", "a decline needs a reason")
                } else if reason.chars().count() > MAX_REASON_CHARS {
                    bad("reason", "the reason must be at most 1000 characters")
                } else {
                    Ok(Self::Decline { reason: reason.to_owned() })
                }
            }
        }
    }

    /// The status change it asks for; `None` for a completion.
    pub fn transition(&self) -> Option<Transition> {
        match self {
            Self::Accept(_) => Some(Transition::Accept),
            Self::Decline { .. } => Some(Transition::Decline),
            Self::Complete => None,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Self::Accept(_) | Self::Complete => "",
            Self::Decline { reason } => reason,
        }
    }
}

/// Price kind of an offer priced on quote, as the routing read model stores it.
pub const ON_QUOTE: &str = "on_quote";

/// Checks an accept against the offer's price kind (`""`: unknown, e.g. an offer read before routing kept
/// price kinds, or no offer at all): an offer on quote needs a stated amount, any other known kind refuses
/// one. An unknown kind lets the reply through as it is (billing prices by the offer's tariff and uses a
/// stated amount only for an offer on quote).
pub fn check_quote(price_kind: &str, quote: Option<&StatedQuote>) -> Result<(), ReplyError> {
    match (price_kind, quote) {
        (ON_QUOTE, None) => Err(ReplyError {
            field: "amount_cents",
            message: "the offer is priced on quote: state the amount (amount_cents) when accepting",
        }),
        ("" | ON_QUOTE, _) | (_, None) => Ok(()),
        (_, Some(_)) => Err(ReplyError {
            field: "amount_cents",
            message: "the offer has a set price: an amount is stated only for an offer priced on quote",
        }),
    }
}

/// The provider code of a reply subject `id77.referrals.<provider_code>.reply` (logical, prefix removed).
pub fn reply_subject_provider(subject: &str) -> Option<&str> {
    let mut tokens = subject.split('.');
    match (tokens.next(), tokens.next(), tokens.next(), tokens.next(), tokens.next()) {
        (Some("id77"), Some("referrals"), Some(code), Some("reply"), None) if is_valid_subject_token(code) => {
            Some(code)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ReferralStatus; 5] = [
        ReferralStatus::Offered,
        ReferralStatus::Accepted,
        ReferralStatus::Declined,
        ReferralStatus::Expired,
        ReferralStatus::Withdrawn,
    ];
    const TRANSITIONS: [Transition; 4] =
        [Transition::Accept, Transition::Decline, Transition::Expire, Transition::Withdraw];

    #[test]
    fn an_offered_referral_can_reach_every_final_state() {
        let o = ReferralStatus::Offered;
        assert_eq!(o.apply(Transition::Accept), Ok(ReferralStatus::Accepted));
        assert_eq!(o.apply(Transition::Decline), Ok(ReferralStatus::Declined));
        assert_eq!(o.apply(Transition::Expire), Ok(ReferralStatus::Expired));
        assert_eq!(o.apply(Transition::Withdraw), Ok(ReferralStatus::Withdrawn));
        assert!(!o.is_final());
    }

    #[test]
    fn nothing_leaves_a_final_state() {
        for from in ALL.into_iter().filter(|s| s.is_final()) {
            for transition in TRANSITIONS {
                assert_eq!(from.apply(transition), Err(InvalidTransition { from, transition }), "{from:?}");
            }
        }
        let message = ReferralStatus::Accepted.apply(Transition::Decline).err().map(|e| e.to_string());
        assert_eq!(message.as_deref(), Some("a referral that is accepted cannot be declined"));
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for s in ALL {
            assert_eq!(ReferralStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ReferralStatus::parse("Offered"), None);
    }

    #[test]
    fn coordinator_notes_are_bounded() {
        assert_eq!(note("  trop loin \n"), Ok("trop loin".to_owned()));
        assert_eq!(note(""), Ok(String::new()));
        assert!(note(&"x".repeat(MAX_NOTE_CHARS + 1)).is_err());
        assert!(note("a\u{7}b").is_err());
    }

    #[test]
    fn replies_are_validated() {
        assert_eq!(Reply::parse(WireDecision::Accept, "ignored", 0, ""), Ok(Reply::Accept(None)));
        assert_eq!(
            Reply::parse(WireDecision::Decline, "  no capacity ", 0, ""),
            Ok(Reply::Decline { reason: "no capacity".into() })
        );
        assert!(Reply::parse(WireDecision::Decline, "   ", 0, "").is_err());
        assert!(Reply::parse(WireDecision::Unspecified, "", 0, "").is_err());
        assert!(Reply::parse(WireDecision::Decline, &"é".repeat(MAX_REASON_CHARS), 0, "").is_ok());
        assert!(Reply::parse(WireDecision::Decline, &"é".repeat(MAX_REASON_CHARS + 1), 0, "").is_err());
        assert_eq!(Reply::Accept(None).transition(), Some(Transition::Accept));
        assert_eq!(Reply::parse(WireDecision::Complete, "", 0, ""), Ok(Reply::Complete));
        assert_eq!(Reply::Complete.transition(), None);
        assert_eq!(Reply::Decline { reason: "r".into() }.reason(), "r");
    }

    #[test]
    fn stated_amounts_are_bounded_and_go_with_an_accept_only() {
        let quoted = |amount, note: &str| Reply::parse(WireDecision::Accept, "", amount, note);
        assert_eq!(
            quoted(245_000, "  Devis n° 12 "),
            Ok(Reply::Accept(Some(StatedQuote { amount_cents: 245_000, note: "Devis n° 12".into() })))
        );
        assert_eq!(
            quoted(MAX_QUOTE_CENTS, ""),
            Ok(Reply::Accept(Some(StatedQuote { amount_cents: MAX_QUOTE_CENTS, note: String::new() })))
        );
        for (amount, note, field) in [
            (-1, "", "amount_cents"),
            (i64::MIN, "", "amount_cents"),
            (MAX_QUOTE_CENTS + 1, "", "amount_cents"),
            (0, "a label without an amount", "quote_note"),
            (100, "a\u{7}b", "quote_note"),
        ] {
            assert_eq!(quoted(amount, note).map_err(|e| e.field), Err(field), "{amount} {note:?}");
        }
        assert!(quoted(100, &"é".repeat(MAX_QUOTE_NOTE_CHARS)).is_ok());
        assert!(quoted(100, &"é".repeat(MAX_QUOTE_NOTE_CHARS + 1)).is_err());
        for decision in [WireDecision::Decline, WireDecision::Complete] {
            assert_eq!(Reply::parse(decision, "r", 100, "").map_err(|e| e.field), Err("amount_cents"));
        }
    }

    #[test]
    fn an_accept_states_an_amount_exactly_for_an_offer_on_quote() {
        let quote = StatedQuote { amount_cents: 245_000, note: String::new() };
        assert_eq!(check_quote(ON_QUOTE, Some(&quote)), Ok(()));
        assert_eq!(check_quote(ON_QUOTE, None).map_err(|e| e.field), Err("amount_cents"));
        for kind in ["free", "flat", "daily_rate", "per_inhabitant"] {
            assert_eq!(check_quote(kind, None), Ok(()), "{kind}");
            assert_eq!(check_quote(kind, Some(&quote)).map_err(|e| e.field), Err("amount_cents"), "{kind}");
        }
        // Unknown price kind (read before routing kept it): passed through, billing decides.
        assert_eq!(check_quote("", None), Ok(()));
        assert_eq!(check_quote("", Some(&quote)), Ok(()));
    }

    #[test]
    fn the_provider_of_a_reply_is_its_subject_token() {
        assert_eq!(reply_subject_provider("id77.referrals.caue77.reply"), Some("caue77"));
        for bad in [
            "id77.referrals.caue77.offered",
            "id77.referrals.caue77.reply.x",
            "id77.referrals..reply",
            "id77.routing.caue77.reply",
            "id77.referrals.CAUE.reply",
        ] {
            assert_eq!(reply_subject_provider(bad), None, "{bad}");
        }
    }
}
