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

/// A provider's answer, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Accept,
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

impl Reply {
    /// Validates a reply: the decision must be given; a decline needs a reason of at most
    /// [`MAX_REASON_CHARS`] characters.
    pub fn parse(decision: WireDecision, reason: &str) -> Result<Self, &'static str> {
        match decision {
            WireDecision::Unspecified => Err("the decision is missing"),
            WireDecision::Accept => Ok(Self::Accept),
            WireDecision::Complete => Ok(Self::Complete),
            WireDecision::Decline => {
                let reason = reason.trim();
                if reason.is_empty() {
                    Err("a decline needs a reason")
                } else if reason.chars().count() > MAX_REASON_CHARS {
                    Err("the reason must be at most 1000 characters")
                } else {
                    Ok(Self::Decline { reason: reason.to_owned() })
                }
            }
        }
    }

    /// The status change it asks for; `None` for a completion.
    pub fn transition(&self) -> Option<Transition> {
        match self {
            Self::Accept => Some(Transition::Accept),
            Self::Decline { .. } => Some(Transition::Decline),
            Self::Complete => None,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Self::Accept | Self::Complete => "",
            Self::Decline { reason } => reason,
        }
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
        assert_eq!(Reply::parse(WireDecision::Accept, "ignored"), Ok(Reply::Accept));
        assert_eq!(
            Reply::parse(WireDecision::Decline, "  no capacity "),
            Ok(Reply::Decline { reason: "no capacity".into() })
        );
        assert!(Reply::parse(WireDecision::Decline, "   ").is_err());
        assert!(Reply::parse(WireDecision::Unspecified, "").is_err());
        assert!(Reply::parse(WireDecision::Decline, &"é".repeat(MAX_REASON_CHARS)).is_ok());
        assert!(Reply::parse(WireDecision::Decline, &"é".repeat(MAX_REASON_CHARS + 1)).is_err());
        assert_eq!(Reply::Accept.transition(), Some(Transition::Accept));
        assert_eq!(Reply::parse(WireDecision::Complete, ""), Ok(Reply::Complete));
        assert_eq!(Reply::Complete.transition(), None);
        assert_eq!(Reply::Decline { reason: "r".into() }.reason(), "r");
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
