//! Routing rules, free of I/O: the referral state machine, how a provider is chosen ([`rules`]), when it must
//! answer ([`calendar`]), what a valid reply is.

pub mod calendar;
pub mod explanation;
pub mod rules;

use std::fmt;

use id77_proto::vocabulary::PriceKind;

/// Longest decline reason a provider may give.
pub const MAX_REASON_CHARS: usize = 1000;

/// Where a referral stands. `Offered` can change to any other state; `Accepted` only to `Withdrawn`, when the
/// request is cancelled before its completion (requests decides a request's fate, ADR 0013); the others are
/// final.
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
    /// The coordinator or routing took an offered referral back (withdrawal, reassignment).
    Withdraw,
    /// The request was cancelled before its completion: the referral is withdrawn, offered or accepted (even
    /// with a completion requests never applied: requests is the arbiter).
    Cancel,
}

impl Transition {
    pub fn past_tense(self) -> &'static str {
        match self {
            Self::Accept => "accepted",
            Self::Decline => "declined",
            Self::Expire => "expired",
            Self::Withdraw => "withdrawn",
            Self::Cancel => "withdrawn for a cancellation",
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

    /// Nothing leaves a final state (declined, expired, withdrawn).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Offered | Self::Accepted)
    }

    /// The state after `transition`, if allowed.
    pub fn apply(self, transition: Transition) -> Result<Self, InvalidTransition> {
        match (self, transition) {
            (Self::Offered, Transition::Accept) => Ok(Self::Accepted),
            (Self::Offered, Transition::Decline) => Ok(Self::Declined),
            (Self::Offered, Transition::Expire) => Ok(Self::Expired),
            (Self::Offered | Self::Accepted, Transition::Cancel) | (Self::Offered, Transition::Withdraw) => {
                Ok(Self::Withdrawn)
            }
            (from, transition) => Err(InvalidTransition { from, transition }),
        }
    }
}

/// Whether the provider may work on an accepted referral (`Referral.agreement`): a billed offer waits for the
/// member's agreement to its quote (billing's `quote.accepted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// Free offer, or not accepted yet: nothing to agree.
    NotRequired,
    /// Accepted for a billed offer: a member admin has not accepted the quote yet.
    AwaitingMember,
    /// The member accepted the quote.
    Agreed,
}

/// Price kinds of a billed offer: its acceptance issues a quote the member must accept before the work.
pub const BILLED_PRICE_KINDS: [PriceKind; 4] =
    [PriceKind::Flat, PriceKind::DailyRate, PriceKind::PerInhabitant, PriceKind::OnQuote];

impl Agreement {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRequired => "not_required",
            Self::AwaitingMember => "awaiting_member",
            Self::Agreed => "agreed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "not_required" => Self::NotRequired,
            "awaiting_member" => Self::AwaitingMember,
            "agreed" => Self::Agreed,
            _ => return None,
        })
    }

    /// The agreement of a referral when it is accepted, from its offer's price kind as routing's read model
    /// knows it. `None` when the kind is unknown (an offer read before routing kept price kinds, no offer, or a
    /// kind this build does not know): the caller treats it as not required, and says so in its log.
    pub fn on_accept(price_kind: Option<PriceKind>) -> Option<Self> {
        match price_kind? {
            PriceKind::Free => Some(Self::NotRequired),
            kind if BILLED_PRICE_KINDS.contains(&kind) => Some(Self::AwaitingMember),
            _ => None,
        }
    }
}

/// Work the provider reports on an accepted referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Progress,
    Complete,
}

/// Why the provider may not report progress or completion now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkRefused {
    /// The referral is not accepted (offered, declined, expired, or withdrawn: `reason` is why it was).
    NotAccepted { status: ReferralStatus, reason: String },
    /// A billed offer whose quote the member has not accepted yet.
    QuoteNotAccepted,
}

impl WorkRefused {
    /// The machine-readable reason of the FAILED_PRECONDITION answer (409 at the gateway).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotAccepted { .. } => "INVALID_TRANSITION",
            Self::QuoteNotAccepted => "QUOTE_NOT_ACCEPTED",
        }
    }

    /// What the provider is told about referral `id`.
    pub fn message(&self, id: impl fmt::Display, work: Work) -> String {
        let what = match work {
            Work::Progress => "progress is reported",
            Work::Complete => "work is completed",
        };
        match self {
            Self::NotAccepted { status: ReferralStatus::Withdrawn, reason } if reason.starts_with(CANCELLED) => {
                let why = reason.trim_start_matches(CANCELLED).trim_start_matches(':').trim();
                if why.is_empty() {
                    format!("referral {id} was withdrawn: the request was cancelled")
                } else {
                    format!("referral {id} was withdrawn: the request was cancelled ({why})")
                }
            }
            Self::NotAccepted { status: ReferralStatus::Withdrawn, reason } if !reason.is_empty() => {
                format!("referral {id} was withdrawn: {reason}")
            }
            Self::NotAccepted { status, .. } => {
                format!("referral {id} is {}: {what} only on an accepted referral", status.as_str())
            }
            Self::QuoteNotAccepted => format!(
                "referral {id}: the member has not accepted the quote yet; {what} once a member admin has accepted it"
            ),
        }
    }
}

/// How the reason of a referral withdrawn for a cancelled request begins (`request cancelled: <why>`).
pub const CANCELLED: &str = "request cancelled";

/// The reason recorded on a referral withdrawn because its request was cancelled for `why` (may be empty).
pub fn cancellation_reason(why: &str) -> String {
    if why.is_empty() { CANCELLED.to_owned() } else { format!("{CANCELLED}: {why}") }
}

/// Whether the provider may report progress on (or complete) a referral in this state: only an accepted one,
/// and for a billed offer only once the member has accepted its quote.
pub fn check_work(status: ReferralStatus, reason: &str, agreement: Agreement) -> Result<(), WorkRefused> {
    if status != ReferralStatus::Accepted {
        return Err(WorkRefused::NotAccepted { status, reason: reason.to_owned() });
    }
    match agreement {
        Agreement::AwaitingMember => Err(WorkRefused::QuoteNotAccepted),
        Agreement::NotRequired | Agreement::Agreed => Ok(()),
    }
}

/// Longest role or display name of an actor kept on a referral and its events.
pub const MAX_ACTOR_CHARS: usize = 200;

/// Who made a referral change: a person (user id, the role it acted in, display name), a provider's NATS
/// consumer, or routing itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub user_id: Option<uuid::Uuid>,
    /// "coordinator", "provider_agent", "provider_consumer", "system", or the role another service named.
    pub role: String,
    pub name: String,
}

fn bounded(raw: &str) -> String {
    raw.trim().chars().filter(|c| !c.is_control()).take(MAX_ACTOR_CHARS).collect()
}

impl Actor {
    /// Routing's own decisions (rules, timers): no user, role `system`, no name.
    pub fn system() -> Self {
        Self { user_id: None, role: "system".to_owned(), name: String::new() }
    }

    /// A reply on the provider's NATS subject: no user, role `provider_consumer`, "connecteur <provider>".
    pub fn provider_consumer(provider_code: &str) -> Self {
        Self { user_id: None, role: "provider_consumer".to_owned(), name: format!("connecteur {provider_code}") }
    }

    /// A person, acting in `role`, with their display name (bounded, control characters dropped).
    pub fn person(user_id: uuid::Uuid, role: &str, name: &str) -> Self {
        Self { user_id: Some(user_id), role: bounded(role), name: bounded(name) }
    }

    /// An actor as another service's event names it: a user id that is not a UUID is dropped (the act stays
    /// attributed to its role and name).
    pub fn from_event(user_id: &str, role: &str, name: &str) -> Self {
        Self { user_id: uuid::Uuid::parse_str(user_id.trim()).ok(), role: bounded(role), name: bounded(name) }
    }

    /// The user id as events carry it (empty for none).
    pub fn user_id_string(&self) -> String {
        self.user_id.map(|id| id.to_string()).unwrap_or_default()
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

/// Checks an accept against the offer's price kind (`None`: unknown, e.g. an offer read before routing kept
/// price kinds, or no offer at all): an offer on quote needs a stated amount, any other known kind refuses
/// one. An unknown kind lets the reply through as it is (billing prices by the offer's tariff and uses a
/// stated amount only for an offer on quote).
pub fn check_quote(price_kind: Option<PriceKind>, quote: Option<&StatedQuote>) -> Result<(), ReplyError> {
    match (price_kind, quote) {
        (Some(PriceKind::OnQuote), None) => Err(ReplyError {
            field: "amount_cents",
            message: "the offer is priced on quote: state the amount (amount_cents) when accepting",
        }),
        (None | Some(PriceKind::OnQuote), _) | (_, None) => Ok(()),
        (Some(_), Some(_)) => Err(ReplyError {
            field: "amount_cents",
            message: "the offer has a set price: an amount is stated only for an offer priced on quote",
        }),
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
    const TRANSITIONS: [Transition; 5] =
        [Transition::Accept, Transition::Decline, Transition::Expire, Transition::Withdraw, Transition::Cancel];

    #[test]
    fn an_offered_referral_can_reach_every_final_state() {
        let o = ReferralStatus::Offered;
        assert_eq!(o.apply(Transition::Accept), Ok(ReferralStatus::Accepted));
        assert_eq!(o.apply(Transition::Decline), Ok(ReferralStatus::Declined));
        assert_eq!(o.apply(Transition::Expire), Ok(ReferralStatus::Expired));
        assert_eq!(o.apply(Transition::Withdraw), Ok(ReferralStatus::Withdrawn));
        assert_eq!(o.apply(Transition::Cancel), Ok(ReferralStatus::Withdrawn));
        assert!(!o.is_final());
    }

    #[test]
    fn an_accepted_referral_is_withdrawn_only_for_a_cancellation() {
        let a = ReferralStatus::Accepted;
        assert!(!a.is_final());
        assert_eq!(a.apply(Transition::Cancel), Ok(ReferralStatus::Withdrawn));
        for transition in [Transition::Accept, Transition::Decline, Transition::Expire, Transition::Withdraw] {
            assert_eq!(a.apply(transition), Err(InvalidTransition { from: a, transition }), "{transition:?}");
        }
        let message = a.apply(Transition::Withdraw).err().map(|e| e.to_string());
        assert_eq!(message.as_deref(), Some("a referral that is accepted cannot be withdrawn"));
    }

    #[test]
    fn nothing_leaves_a_final_state() {
        for from in ALL.into_iter().filter(|s| s.is_final()) {
            for transition in TRANSITIONS {
                assert_eq!(from.apply(transition), Err(InvalidTransition { from, transition }), "{from:?}");
            }
        }
        let finals: Vec<_> = ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [ReferralStatus::Declined, ReferralStatus::Expired, ReferralStatus::Withdrawn]);
        let message = ReferralStatus::Accepted.apply(Transition::Decline).err().map(|e| e.to_string());
        assert_eq!(message.as_deref(), Some("a referral that is accepted cannot be declined"));
    }

    #[test]
    fn a_billed_offer_waits_for_the_members_agreement() {
        assert_eq!(Agreement::on_accept(Some(PriceKind::Free)), Some(Agreement::NotRequired));
        for kind in BILLED_PRICE_KINDS {
            assert_eq!(Agreement::on_accept(Some(kind)), Some(Agreement::AwaitingMember), "{kind}");
        }
        assert_eq!(Agreement::on_accept(None), None, "unknown: the caller decides (not required) and logs");
        assert_eq!(Agreement::on_accept(PriceKind::parse("per_hour")), None);
        assert_eq!(Agreement::on_accept(PriceKind::parse("")), None);
        let every_kind_but_free: Vec<_> = PriceKind::ALL.iter().copied().filter(|k| *k != PriceKind::Free).collect();
        assert_eq!(every_kind_but_free, BILLED_PRICE_KINDS, "every kind is free or billed");
        for a in [Agreement::NotRequired, Agreement::AwaitingMember, Agreement::Agreed] {
            assert_eq!(Agreement::parse(a.as_str()), Some(a));
        }
        assert_eq!(Agreement::parse("AGREED"), None);
    }

    #[test]
    fn work_is_reported_only_on_an_accepted_referral_the_member_agreed_to() {
        use ReferralStatus::{Accepted, Declined, Expired, Offered, Withdrawn};
        for agreement in [Agreement::NotRequired, Agreement::Agreed] {
            assert_eq!(check_work(Accepted, "", agreement), Ok(()), "{agreement:?}");
        }
        let waiting = check_work(Accepted, "", Agreement::AwaitingMember);
        assert_eq!(waiting, Err(WorkRefused::QuoteNotAccepted));
        assert_eq!(waiting.as_ref().map_err(WorkRefused::code), Err("QUOTE_NOT_ACCEPTED"));
        assert_eq!(
            waiting.map_err(|e| e.message("r1", Work::Complete)),
            Err("referral r1: the member has not accepted the quote yet; work is completed once a member admin \
                 has accepted it"
                .to_owned())
        );
        for status in [Offered, Declined, Expired, Withdrawn] {
            for agreement in [Agreement::NotRequired, Agreement::AwaitingMember, Agreement::Agreed] {
                let refused = check_work(status, "r", agreement);
                assert_eq!(refused.as_ref().map_err(WorkRefused::code), Err("INVALID_TRANSITION"), "{status:?}");
            }
        }
        let cancelled = check_work(Withdrawn, &cancellation_reason("projet abandonné"), Agreement::Agreed);
        assert_eq!(
            cancelled.map_err(|e| e.message("r1", Work::Progress)),
            Err("referral r1 was withdrawn: the request was cancelled (projet abandonné)".to_owned())
        );
        let bare = check_work(Withdrawn, &cancellation_reason(""), Agreement::NotRequired);
        assert_eq!(
            bare.map_err(|e| e.message("r1", Work::Complete)),
            Err("referral r1 was withdrawn: the request was cancelled".to_owned())
        );
        let by_hand = check_work(Withdrawn, "doublon", Agreement::NotRequired);
        assert_eq!(
            by_hand.map_err(|e| e.message("r1", Work::Complete)),
            Err("referral r1 was withdrawn: doublon".to_owned())
        );
        let offered = check_work(Offered, "", Agreement::NotRequired);
        assert_eq!(
            offered.map_err(|e| e.message("r1", Work::Progress)),
            Err("referral r1 is offered: progress is reported only on an accepted referral".to_owned())
        );
    }

    #[test]
    fn actors_are_named_and_bounded() {
        assert_eq!(Actor::system(), Actor { user_id: None, role: "system".into(), name: String::new() });
        let consumer = Actor::provider_consumer("caue77");
        assert_eq!(
            (consumer.user_id_string(), consumer.role.as_str(), consumer.name.as_str()),
            (String::new(), "provider_consumer", "connecteur caue77")
        );
        let id = uuid::Uuid::from_u128(9);
        let person = Actor::person(id, "coordinator", &format!(" Anne\u{7} {}", "x".repeat(300)));
        assert_eq!(person.user_id_string(), id.to_string());
        assert!(person.name.starts_with("Anne x") && person.name.chars().count() == MAX_ACTOR_CHARS);
        assert_eq!(Actor::from_event("not-a-uuid", "member_user", "Luc").user_id, None);
        assert_eq!(Actor::from_event(&id.to_string(), "member_user", "Luc").user_id, Some(id));
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
        let on_quote = Some(PriceKind::OnQuote);
        assert_eq!(check_quote(on_quote, Some(&quote)), Ok(()));
        assert_eq!(check_quote(on_quote, None).map_err(|e| e.field), Err("amount_cents"));
        for kind in [PriceKind::Free, PriceKind::Flat, PriceKind::DailyRate, PriceKind::PerInhabitant] {
            assert_eq!(check_quote(Some(kind), None), Ok(()), "{kind}");
            assert_eq!(check_quote(Some(kind), Some(&quote)).map_err(|e| e.field), Err("amount_cents"), "{kind}");
        }
        // Unknown price kind (read before routing kept it): passed through, billing decides.
        assert_eq!(check_quote(None, None), Ok(()));
        assert_eq!(check_quote(None, Some(&quote)), Ok(()));
    }
}
