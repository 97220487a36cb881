//! The request lifecycle as an explicit state machine, free of I/O (docs/adr/0011-request-lifecycle.md).
//!
//! ```text
//! submitted ─┬─> triage ──────┐            (open orientation request; no provider left; referral withdrawn)
//!            └─> referred <───┘ ─> accepted ─> in_progress ─> completed ─> closed
//!                  │  ↺ re-routed to another provider
//!                  └─> declined   (a provider declined and routing did not re-route: legacy events only)
//! any status before completed ─> cancelled   (the member's users, the coordinator, a refused or expired quote)
//! ```
//!
//! Requests is the arbiter of a request's fate (docs/adr/0013-one-truth-across-services.md): a cancellation
//! recorded first makes a later `referral.completed` stale; a completion recorded first makes a later
//! cancellation an `INVALID_TRANSITION`.
//!
//! Final statuses: `declined`, `cancelled`, `closed`. Routing's events may arrive out of order or twice: each
//! one either moves the request forward ([`Step`]) or is stale and changes nothing (`Ok(None)`); the commands of
//! users (cancel, close) on a status that does not allow them are typed errors (FAILED_PRECONDITION,
//! INVALID_TRANSITION). Every step is dated no earlier than the previous one, so the history is ordered.

use chrono::{DateTime, Utc};
use id77_platform::ServiceError;
use uuid::Uuid;

use crate::domain::names::ProviderNames;
use crate::error::RequestsError;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestStatus {
    /// Filed by the member; routing has not placed it yet.
    Submitted,
    /// Waiting for the coordinator: an open orientation request, or no provider was left.
    Triage,
    /// Handed to a provider, waiting for its answer.
    Referred,
    Accepted,
    /// The provider reported progress on the accepted work.
    InProgress,
    Completed,
    /// Declined by a provider and not re-routed (only events published before re-routing existed).
    Declined,
    Cancelled,
    /// Completed, then closed by the coordinator.
    Closed,
}

impl RequestStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [Self; 9] = [
        Self::Submitted,
        Self::Triage,
        Self::Referred,
        Self::Accepted,
        Self::InProgress,
        Self::Completed,
        Self::Closed,
        Self::Declined,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Triage => "triage",
            Self::Referred => "referred",
            Self::Accepted => "accepted",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Declined => "declined",
            Self::Cancelled => "cancelled",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Nothing leaves a final status.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Declined | Self::Cancelled | Self::Closed)
    }

    /// Before a provider took the request (routing still places it).
    fn is_unanswered(self) -> bool {
        matches!(self, Self::Submitted | Self::Triage | Self::Referred)
    }

    /// May still be cancelled.
    pub fn is_cancellable(self) -> bool {
        matches!(self, Self::Submitted | Self::Triage | Self::Referred | Self::Accepted | Self::InProgress)
    }

    /// A provider holds the request (offered to it, or working on it): its agents are told when it is cancelled.
    pub fn is_with_provider(self) -> bool {
        matches!(self, Self::Referred | Self::Accepted | Self::InProgress)
    }

    /// The transitions of the lifecycle. `referred → referred` is a re-routing to another provider. Skips over
    /// a status (e.g. `submitted → accepted`) exist because routing's events may be consumed out of order.
    pub fn can_become(self, next: Self) -> bool {
        use RequestStatus::*;
        match (self, next) {
            (Submitted, Triage) | (Referred, Triage) => true,
            (Submitted | Triage | Referred, Referred) => true,
            (Submitted | Triage | Referred, Accepted | Declined) => true,
            (Submitted | Triage | Referred | Accepted, InProgress) => true,
            (Submitted | Triage | Referred | Accepted | InProgress, Completed) => true,
            (from, Cancelled) => from.is_cancellable(),
            (Completed, Closed) => true,
            _ => false,
        }
    }
}

/// Who made a change: a person acting in a role, a service acting without a user of its own (a provider's
/// NATS consumer), or the platform itself (routing's timers, an expired quote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A person: its user id, the role it acted in, its display name when it acted.
    User {
        id: Uuid,
        role: String,
        name: String,
    },
    /// No user account: e.g. role `provider_consumer`, name `connecteur caue77`.
    Service {
        role: String,
        name: String,
    },
    System,
}

/// The role of [`Actor::System`].
pub const SYSTEM_ROLE: &str = "system";

impl Actor {
    /// The actor an event names (`actor_user_id`, `actor_role`, `actor_name`): a person when it carries a user id,
    /// the platform when it carries neither a user nor a role other than `system` (older events included), a
    /// service otherwise. A user id that is not a UUID names no user (the role and name are kept).
    pub fn from_event(user_id: &str, role: &str, name: &str) -> Self {
        let (role, name) = (role.trim(), name.trim());
        match Uuid::parse_str(user_id.trim()) {
            Ok(id) => Self::User {
                id,
                role: if role.is_empty() { "user".to_owned() } else { role.to_owned() },
                name: name.to_owned(),
            },
            Err(_) if role.is_empty() || role == SYSTEM_ROLE => Self::System,
            Err(_) => Self::Service { role: role.to_owned(), name: name.to_owned() },
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::User { id, .. } => Some(*id),
            Self::Service { .. } | Self::System => None,
        }
    }

    pub fn role(&self) -> &str {
        match self {
            Self::User { role, .. } | Self::Service { role, .. } => role,
            Self::System => SYSTEM_ROLE,
        }
    }

    /// The display name (empty for the platform).
    pub fn name(&self) -> &str {
        match self {
            Self::User { name, .. } | Self::Service { name, .. } => name,
            Self::System => "",
        }
    }
}

/// Where routing sent a request after a decline or an expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// To this provider (a `referral.offered` for it is published too).
    Provider(String),
    /// To the coordinator's triage queue.
    Triage,
    /// Nowhere: the request is declined (events published before re-routing existed).
    Nowhere,
}

/// Something that happens to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// An open orientation request was filed: the coordinator triages it.
    Queued,
    Offered {
        provider: String,
    },
    Accepted {
        provider: String,
    },
    Declined {
        provider: String,
        reason: String,
        next: Next,
    },
    Expired {
        provider: String,
        next: Next,
    },
    /// The coordinator withdrew the referral (reassigned or not); a cancellation's withdrawal comes after the
    /// request is cancelled and is stale.
    Withdrawn {
        provider: String,
        reason: String,
    },
    Progressed {
        provider: String,
        note: String,
    },
    Completed {
        provider: String,
    },
    Cancel {
        reason: String,
    },
    /// A member admin refused the request's quote (billing's `quote.refused`): the request is cancelled.
    QuoteRefused {
        number: String,
        reason: String,
    },
    /// Nobody answered the request's quote in time (billing's `quote.expired`): the request is cancelled.
    QuoteExpired {
        number: String,
    },
    Close {
        reason: String,
    },
}

impl Trigger {
    /// A user's command (its refusal is an error), as opposed to one of routing's events (stale when refused).
    /// A quote's refusal or expiry cancels like a user's command: refused (an error) when the request can no
    /// longer be cancelled.
    pub fn is_command(&self) -> bool {
        matches!(self, Self::Cancel { .. } | Self::QuoteRefused { .. } | Self::QuoteExpired { .. } | Self::Close { .. })
    }

    /// A short name, for history rows and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Offered { .. } => "offered",
            Self::Accepted { .. } => "accepted",
            Self::Declined { .. } => "declined",
            Self::Expired { .. } => "expired",
            Self::Withdrawn { .. } => "withdrawn",
            Self::Progressed { .. } => "progressed",
            Self::Completed { .. } => "completed",
            Self::Cancel { .. } => "cancel",
            Self::QuoteRefused { .. } => "quote_refused",
            Self::QuoteExpired { .. } => "quote_expired",
            Self::Close { .. } => "close",
        }
    }

    /// The providers its history line names (the one it is about and the next one a re-routing chose).
    pub fn providers(&self) -> Vec<&str> {
        match self {
            Self::Offered { provider } | Self::Accepted { provider } | Self::Completed { provider } => vec![provider],
            Self::Withdrawn { provider, .. } | Self::Progressed { provider, .. } => vec![provider],
            Self::Declined { provider, next, .. } | Self::Expired { provider, next } => match next {
                Next::Provider(p) => vec![provider.as_str(), p],
                _ => vec![provider],
            },
            _ => Vec::new(),
        }
    }
}

/// What the machine knows of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub status: RequestStatus,
    /// The provider it is (or was last) with.
    pub provider: Option<String>,
    /// Time of the last step.
    pub updated_at: DateTime<Utc>,
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub from: RequestStatus,
    pub to: RequestStatus,
    /// The provider after the step.
    pub provider: Option<String>,
    pub reason: String,
    /// Never before the previous step.
    pub at: DateTime<Utc>,
    /// The name of `provider` as the step's history line gave it (None: no provider, or its name unknown then):
    /// the mails the step brings reuse it rather than reading it again.
    pub provider_name: Option<String>,
}

impl Step {
    /// The state after this step.
    pub fn state(&self) -> State {
        State { status: self.to, provider: self.provider.clone(), updated_at: self.at }
    }

    /// The provider that held the request before this step, if one did (see
    /// [`RequestStatus::is_with_provider`]): a cancellation tells it.
    pub fn provider_before(&self) -> Option<&str> {
        self.provider.as_deref().filter(|p| !p.is_empty() && self.from.is_with_provider())
    }

    /// Appends the note a person gave with the event that made this step (a coordinator placing a request).
    pub fn with_note(mut self, note: &str) -> Self {
        self.reason = reason_with(self.reason, note);
        self
    }
}

/// A user's command the request's status does not allow (FAILED_PRECONDITION, INVALID_TRANSITION).
pub fn invalid_transition(from: RequestStatus, what: &str) -> ServiceError {
    RequestsError::InvalidTransition { from: from.as_str(), what: what.to_owned() }.into()
}

fn is_with(state: &State, provider: &str) -> bool {
    state.provider.as_deref() == Some(provider)
}

/// The reason of a cancellation by a refused quote.
pub fn quote_refused_reason(number: &str, reason: &str) -> String {
    let prefix = format!("Devis {} refusé", number.trim());
    if reason.trim().is_empty() { prefix } else { format!("{prefix} : {}", reason.trim()) }
}

/// The reason of a cancellation by an expired quote.
pub fn quote_expired_reason(number: &str) -> String {
    format!("Devis {} expiré sans réponse", number.trim())
}

fn reason_with(prefix: String, detail: &str) -> String {
    if detail.trim().is_empty() { prefix } else { format!("{prefix} : {}", detail.trim()) }
}

/// After a decline or an expiry of `provider`'s referral: where the request goes.
fn rerouted(
    state: &State,
    provider: &str,
    next: &Next,
    why: String,
    names: &ProviderNames,
) -> Option<(RequestStatus, Option<String>, String)> {
    // Only the referral the request is with (or one we have not heard of yet) moves it; a decline of a provider
    // the request already left is stale.
    if !state.status.is_unanswered() || (state.provider.is_some() && !is_with(state, provider)) {
        return None;
    }
    Some(match next {
        Next::Provider(p) => {
            (RequestStatus::Referred, Some(p.clone()), format!("{why} ; réorientée vers {}", names.name(p)))
        }
        Next::Triage => (
            RequestStatus::Triage,
            Some(provider.to_owned()),
            format!("{why} ; plus aucun partenaire possible : à orienter par la coordination"),
        ),
        Next::Nowhere => (RequestStatus::Declined, Some(provider.to_owned()), why),
    })
}

/// A cancellation (by a user or a quote's decision) of a request in `state`: refused once it is completed.
fn cancellation(state: &State, reason: String) -> Result<(RequestStatus, Option<String>, String), ServiceError> {
    if !state.status.is_cancellable() {
        return Err(invalid_transition(state.status, "cancelled"));
    }
    Ok((RequestStatus::Cancelled, state.provider.clone(), reason))
}

/// Applies `trigger` at `at` (the event's time, or the command's). `Ok(None)`: a stale or repeated event of
/// routing, nothing changes. `Err`: a user's command the status does not allow. A provider the history line
/// names is « le partenaire » ([`apply_named`] names them).
pub fn apply(state: &State, trigger: &Trigger, at: DateTime<Utc>) -> Result<Option<Step>, ServiceError> {
    apply_named(state, trigger, at, &ProviderNames::default())
}

/// [`apply`], the history line naming the trigger's providers by `names` (their codes are never shown).
pub fn apply_named(
    state: &State,
    trigger: &Trigger,
    at: DateTime<Utc>,
    names: &ProviderNames,
) -> Result<Option<Step>, ServiceError> {
    use RequestStatus::*;
    let s = state.status;
    let name = |provider: &str| names.name(provider).to_owned();
    let target: Option<(RequestStatus, Option<String>, String)> = match trigger {
        Trigger::Queued => (s == Submitted)
            .then(|| (Triage, None, "Demande d'orientation : la coordination choisit le partenaire".to_owned())),
        Trigger::Offered { provider } => {
            if matches!(s, Submitted | Triage) {
                Some((Referred, Some(provider.clone()), format!("Orientée vers {}", name(provider))))
            } else if s == Referred && !is_with(state, provider) && at >= state.updated_at {
                // A re-routing we heard of before the decline; an older offer (a late redelivery) is not one.
                Some((Referred, Some(provider.clone()), format!("Réorientée vers {}", name(provider))))
            } else {
                None
            }
        }
        Trigger::Accepted { provider } => {
            s.is_unanswered().then(|| (Accepted, Some(provider.clone()), format!("Acceptée par {}", name(provider))))
        }
        Trigger::Declined { provider, reason, next } => {
            rerouted(state, provider, next, reason_with(format!("Déclinée par {}", name(provider)), reason), names)
        }
        Trigger::Expired { provider, next } => {
            rerouted(state, provider, next, format!("Sans réponse {} dans le délai", names.of(provider)), names)
        }
        Trigger::Withdrawn { provider, reason } => (s == Referred && is_with(state, provider)).then(|| {
            (
                Triage,
                Some(provider.clone()),
                reason_with(format!("Orientation vers {} retirée", name(provider)), reason),
            )
        }),
        Trigger::Progressed { provider, note } => matches!(s, Submitted | Triage | Referred | Accepted).then(|| {
            (
                InProgress,
                Some(provider.clone()),
                reason_with(format!("Avancement déclaré par {}", name(provider)), note),
            )
        }),
        Trigger::Completed { provider } => matches!(s, Submitted | Triage | Referred | Accepted | InProgress)
            .then(|| (Completed, Some(provider.clone()), format!("Prestation terminée par {}", name(provider)))),
        // The user's own words, or the quote's decision (the status says the rest); they travel in
        // `request.cancelled` to the provider.
        Trigger::Cancel { reason } => Some(cancellation(state, reason.trim().to_owned())?),
        Trigger::QuoteRefused { number, reason } => Some(cancellation(state, quote_refused_reason(number, reason))?),
        Trigger::QuoteExpired { number } => Some(cancellation(state, quote_expired_reason(number))?),
        Trigger::Close { reason } => {
            if s != Completed {
                return Err(invalid_transition(s, "closed"));
            }
            Some((Closed, state.provider.clone(), reason.trim().to_owned()))
        }
    };
    let Some((to, provider, reason)) = target else {
        return Ok(None);
    };
    if !s.can_become(to) || (to == s && provider == state.provider) {
        return Ok(None);
    }
    let provider_name = provider.as_deref().and_then(|p| names.known(p)).map(str::to_owned);
    Ok(Some(Step { from: s, to, provider, reason, at: at.max(state.updated_at), provider_name }))
}

/// The state a history leads to from a submission at `submitted_at` (None if a step does not follow).
pub fn replay(submitted_at: DateTime<Utc>, steps: &[Step]) -> Option<State> {
    let mut state = State { status: RequestStatus::Submitted, provider: None, updated_at: submitted_at };
    for step in steps {
        if step.from != state.status || !state.status.can_become(step.to) || step.at < state.updated_at {
            return None;
        }
        state = step.state();
    }
    Some(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RequestStatus::*;
    use chrono::Duration;
    use id77_platform::ErrorCode;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    fn state(status: RequestStatus, provider: Option<&str>) -> State {
        State { status, provider: provider.map(str::to_owned), updated_at: t(10) }
    }

    fn to(state: &State, trigger: Trigger) -> Option<(RequestStatus, Option<String>)> {
        apply(state, &trigger, t(20)).ok().flatten().map(|s| (s.to, s.provider))
    }

    fn p(code: &str) -> String {
        code.to_owned()
    }

    /// Names the test providers by their codes, so that the sentences below read with short names.
    fn apply(state: &State, trigger: &Trigger, at: DateTime<Utc>) -> Result<Option<Step>, ServiceError> {
        let names = ["a", "b", "c", "caue77"].map(|c| (c.to_owned(), c.to_owned()));
        apply_named(state, trigger, at, &ProviderNames::new(names))
    }

    #[test]
    fn history_lines_are_french_sentences() {
        let reason = |state: &State, trigger: Trigger| apply(state, &trigger, t(20)).ok().flatten().map(|s| s.reason);
        let with_a = state(Referred, Some("a"));
        let declined = |next| Trigger::Declined { provider: p("a"), reason: " pas dispo ".into(), next };
        for (got, expected) in [
            (
                reason(&state(Submitted, None), Trigger::Queued),
                "Demande d'orientation : la coordination choisit le partenaire",
            ),
            (reason(&with_a, Trigger::Offered { provider: p("b") }), "Réorientée vers b"),
            (reason(&with_a, declined(Next::Provider(p("b")))), "Déclinée par a : pas dispo ; réorientée vers b"),
            (
                reason(&with_a, declined(Next::Triage)),
                "Déclinée par a : pas dispo ; plus aucun partenaire possible : à orienter par la coordination",
            ),
            (reason(&with_a, declined(Next::Nowhere)), "Déclinée par a : pas dispo"),
            (
                reason(&with_a, Trigger::Expired { provider: p("a"), next: Next::Provider(p("c")) }),
                // « a » begins with a vowel: « de » is elided.
                "Sans réponse d'a dans le délai ; réorientée vers c",
            ),
            (
                reason(&with_a, Trigger::Withdrawn { provider: p("a"), reason: "erreur d'aiguillage".into() }),
                "Orientation vers a retirée : erreur d'aiguillage",
            ),
        ] {
            assert_eq!(got.as_deref(), Some(expected));
        }
    }

    #[test]
    fn the_happy_path_and_its_history() {
        let mut s = state(Submitted, None);
        let mut steps = Vec::new();
        for (i, trigger) in [
            Trigger::Offered { provider: p("caue77") },
            Trigger::Accepted { provider: p("caue77") },
            Trigger::Progressed { provider: p("caue77"), note: "visite faite".into() },
            Trigger::Completed { provider: p("caue77") },
            Trigger::Close { reason: String::new() },
        ]
        .into_iter()
        .enumerate()
        {
            let step = apply(&s, &trigger, t(20 + i as i64)).ok().flatten().unwrap_or_else(|| panic!("{trigger:?}"));
            s = step.state();
            steps.push(step);
        }
        let path: Vec<_> = steps.iter().map(|s| s.to).collect();
        assert_eq!(path, [Referred, Accepted, InProgress, Completed, Closed]);
        assert_eq!(replay(t(10), &steps), Some(s.clone()));
        assert!(s.status.is_final());
        assert_eq!(steps[2].reason, "Avancement déclaré par caue77 : visite faite");
        let texts: Vec<_> = steps.iter().map(|s| s.reason.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Orientée vers caue77",
                "Acceptée par caue77",
                "Avancement déclaré par caue77 : visite faite",
                "Prestation terminée par caue77",
                ""
            ]
        );
    }

    #[test]
    fn users_commands_on_the_wrong_status_are_typed_errors() {
        for status in RequestStatus::ALL {
            let cancel = apply(&state(status, None), &Trigger::Cancel { reason: String::new() }, t(20));
            assert_eq!(cancel.is_ok(), status.is_cancellable(), "cancel {status:?}");
            let close = apply(&state(status, None), &Trigger::Close { reason: String::new() }, t(20));
            assert_eq!(close.is_ok(), status == Completed, "close {status:?}");
            if let Err(e) = close {
                assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::FailedPrecondition, "INVALID_TRANSITION"));
            }
        }
        assert!(!Completed.is_cancellable() && !Closed.is_cancellable());
    }

    #[test]
    fn declines_re_route_or_go_to_triage_and_stale_ones_change_nothing() {
        let with_a = state(Referred, Some("a"));
        let declined = |next| Trigger::Declined { provider: p("a"), reason: "pas dispo".into(), next };
        assert_eq!(to(&with_a, declined(Next::Provider(p("b")))), Some((Referred, Some(p("b")))));
        assert_eq!(to(&with_a, declined(Next::Triage)), Some((Triage, Some(p("a")))));
        assert_eq!(to(&with_a, declined(Next::Nowhere)), Some((Declined, Some(p("a")))));
        // The offer to b was consumed first: the decline of a is stale.
        let with_b = state(Referred, Some("b"));
        assert_eq!(to(&with_b, declined(Next::Provider(p("b")))), None);
        // ...and in the other order, the offer to b after the decline is a replay.
        assert_eq!(to(&with_b, Trigger::Offered { provider: p("b") }), None);
        // An expiry works like a decline.
        assert_eq!(
            to(&with_a, Trigger::Expired { provider: p("a"), next: Next::Triage }),
            Some((Triage, Some(p("a"))))
        );
        // Triage, then the coordinator assigns c.
        assert_eq!(
            to(&state(Triage, Some("a")), Trigger::Offered { provider: p("c") }),
            Some((Referred, Some(p("c"))))
        );
        // A late offer to a (older than the last step) does not take the request back from b.
        assert_eq!(apply(&with_b, &Trigger::Offered { provider: p("a") }, t(5)).ok().flatten(), None);
        assert_eq!(to(&with_b, Trigger::Offered { provider: p("a") }), Some((Referred, Some(p("a")))));
    }

    #[test]
    fn out_of_order_events_still_converge() {
        // accepted before offered, completed before accepted, progress before accepted.
        assert_eq!(to(&state(Submitted, None), Trigger::Accepted { provider: p("a") }), Some((Accepted, Some(p("a")))));
        assert_eq!(to(&state(Accepted, Some("a")), Trigger::Offered { provider: p("a") }), None);
        assert_eq!(
            to(&state(Referred, Some("a")), Trigger::Completed { provider: p("a") }),
            Some((Completed, Some(p("a"))))
        );
        assert_eq!(to(&state(Completed, Some("a")), Trigger::Accepted { provider: p("a") }), None);
        assert_eq!(
            to(&state(Completed, Some("a")), Trigger::Progressed { provider: p("a"), note: String::new() }),
            None
        );
        assert_eq!(
            to(&state(InProgress, Some("a")), Trigger::Progressed { provider: p("a"), note: String::new() }),
            None
        );
        // Cancelled: routing's withdrawal and anything late are stale.
        let cancelled = state(Cancelled, Some("a"));
        for trigger in [
            Trigger::Withdrawn { provider: p("a"), reason: "request cancelled".into() },
            Trigger::Accepted { provider: p("a") },
            Trigger::Completed { provider: p("a") },
        ] {
            assert_eq!(to(&cancelled, trigger), None);
        }
    }

    #[test]
    fn a_withdrawal_by_the_coordinator_goes_to_triage_unless_stale() {
        let with_a = state(Referred, Some("a"));
        let withdrawn = Trigger::Withdrawn { provider: p("a"), reason: "erreur d'aiguillage".into() };
        assert_eq!(to(&with_a, withdrawn.clone()), Some((Triage, Some(p("a")))));
        assert_eq!(to(&state(Referred, Some("b")), withdrawn.clone()), None, "reassigned to b first");
        assert_eq!(to(&state(Accepted, Some("a")), withdrawn), None);
    }

    #[test]
    fn steps_are_never_dated_before_the_previous_one() {
        let s = state(Submitted, None);
        let step = apply(&s, &Trigger::Offered { provider: p("a") }, t(-100)).ok().flatten();
        assert_eq!(step.map(|s| s.at), Some(t(10)));
        let step = apply(&s, &Trigger::Offered { provider: p("a") }, t(10) + Duration::seconds(3)).ok().flatten();
        assert_eq!(step.map(|s| s.at), Some(t(13)));
    }

    #[test]
    fn statuses_round_trip_and_final_ones_go_nowhere() {
        for from in RequestStatus::ALL {
            assert_eq!(RequestStatus::parse(from.as_str()), Some(from));
            assert!(!from.can_become(Submitted));
            if from.is_final() {
                assert!(RequestStatus::ALL.iter().all(|to| !from.can_become(*to)), "{from:?} is final");
            }
        }
        assert_eq!(RequestStatus::parse("nope"), None);
    }

    /// Every routing event for `provider`, as they may arrive late.
    fn routing_events(provider: &str) -> Vec<Trigger> {
        vec![
            Trigger::Offered { provider: p(provider) },
            Trigger::Accepted { provider: p(provider) },
            Trigger::Declined { provider: p(provider), reason: String::new(), next: Next::Triage },
            Trigger::Expired { provider: p(provider), next: Next::Provider(p("b")) },
            Trigger::Withdrawn { provider: p(provider), reason: "request cancelled".into() },
            Trigger::Progressed { provider: p(provider), note: "presque fini".into() },
            Trigger::Completed { provider: p(provider) },
        ]
    }

    #[test]
    fn cancellation_after_acceptance_or_progress_wins_over_any_later_routing_event() {
        for status in [Accepted, InProgress] {
            let with_a = state(status, Some("a"));
            let step = apply(&with_a, &Trigger::Cancel { reason: " projet abandonné ".into() }, t(20))
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("cancel from {status:?}"));
            assert_eq!(
                (step.to, step.provider.as_deref(), step.reason.as_str()),
                (Cancelled, Some("a"), "projet abandonné")
            );
            assert_eq!(step.provider_before(), Some("a"), "the provider held it: its agents are told");
            let cancelled = step.state();
            for event in routing_events("a") {
                // Completion included: the provider's claim came after requests decided.
                assert_eq!(apply(&cancelled, &event, t(30)).ok().flatten(), None, "{event:?} after cancel");
            }
        }
        // Completion first: the cancellation is refused, whichever way it comes.
        let completed = state(Completed, Some("a"));
        for command in [
            Trigger::Cancel { reason: String::new() },
            Trigger::QuoteRefused { number: "D-a-2026-000001".into(), reason: "trop cher".into() },
            Trigger::QuoteExpired { number: "D-a-2026-000001".into() },
        ] {
            let refused = apply(&completed, &command, t(20));
            assert!(
                matches!(&refused, Err(e) if e.code == ErrorCode::FailedPrecondition && e.reason == "INVALID_TRANSITION"),
                "{command:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn a_refused_or_expired_quote_cancels_the_request_with_the_quotes_number() {
        let with_a = state(Accepted, Some("a"));
        let refused = Trigger::QuoteRefused { number: "D-a-2026-000007".into(), reason: " budget épuisé ".into() };
        assert!(refused.is_command());
        let step = apply(&with_a, &refused, t(20)).ok().flatten();
        assert_eq!(
            step.map(|s| (s.to, s.reason)),
            Some((Cancelled, "Devis D-a-2026-000007 refusé : budget épuisé".to_owned()))
        );
        let bare = Trigger::QuoteRefused { number: "D-a-2026-000007".into(), reason: String::new() };
        assert_eq!(
            apply(&with_a, &bare, t(20)).ok().flatten().map(|s| s.reason),
            Some("Devis D-a-2026-000007 refusé".into())
        );
        let expired = Trigger::QuoteExpired { number: "D-a-2026-000008".into() };
        let step = apply(&state(InProgress, Some("a")), &expired, t(20)).ok().flatten();
        assert_eq!(
            step.map(|s| (s.to, s.reason)),
            Some((Cancelled, "Devis D-a-2026-000008 expiré sans réponse".to_owned()))
        );
        // Already cancelled (the member cancelled, then billing expired the voided quote's twin): refused.
        for command in [refused, expired] {
            assert!(apply(&state(Cancelled, Some("a")), &command, t(20)).is_err());
        }
    }

    #[test]
    fn the_provider_told_of_a_cancellation_is_the_one_holding_the_request() {
        let cancel = Trigger::Cancel { reason: String::new() };
        let held = apply(&state(Referred, Some("a")), &cancel, t(20)).ok().flatten();
        assert_eq!(held.as_ref().and_then(|s| s.provider_before()), Some("a"));
        // In triage after a's decline: a no longer holds it.
        let left = apply(&state(Triage, Some("a")), &cancel, t(20)).ok().flatten();
        assert_eq!(left.as_ref().and_then(|s| s.provider_before()), None);
        let never = apply(&state(Submitted, None), &cancel, t(20)).ok().flatten();
        assert_eq!(never.as_ref().and_then(|s| s.provider_before()), None);
    }

    #[test]
    fn a_placement_keeps_the_coordinators_note() {
        let step = apply(&state(Triage, None), &Trigger::Offered { provider: p("a") }, t(20)).ok().flatten();
        assert_eq!(
            step.clone().map(|s| s.with_note(" urgent, voir le maire ").reason),
            Some("Orientée vers a : urgent, voir le maire".into())
        );
        assert_eq!(step.map(|s| s.with_note("  ").reason), Some("Orientée vers a".into()));
    }

    #[test]
    fn events_name_a_person_a_connector_or_the_platform() {
        let user = Uuid::from_u128(7);
        assert_eq!(
            Actor::from_event(&user.to_string(), "coordinator", " Claire Martin "),
            Actor::User { id: user, role: "coordinator".into(), name: "Claire Martin".into() }
        );
        let connector = Actor::from_event("", "provider_consumer", "connecteur caue77");
        assert_eq!(
            (connector.user_id(), connector.role(), connector.name()),
            (None, "provider_consumer", "connecteur caue77")
        );
        for (id, role) in [("", ""), ("", "system"), ("pas-un-uuid", "")] {
            assert_eq!(Actor::from_event(id, role, ""), Actor::System, "{id:?} {role:?}");
        }
        assert_eq!((Actor::System.role(), Actor::System.name()), ("system", ""));
        assert_eq!(Actor::from_event(&user.to_string(), "", "X").role(), "user");
    }
}
