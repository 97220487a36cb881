//! The request lifecycle as an explicit state machine, free of I/O (docs/adr/0011-request-lifecycle.md).
//!
//! ```text
//! submitted ─┬─> triage ──────┐            (open orientation request; no provider left; referral withdrawn)
//!            └─> referred <───┘ ─> accepted ─> in_progress ─> completed ─> closed
//!                  │  ↺ re-routed to another provider
//!                  └─> declined   (a provider declined and routing did not re-route: legacy events only)
//! any status before completed ─> cancelled   (the member's users or the coordinator)
//! ```
//!
//! Final statuses: `declined`, `cancelled`, `closed`. Routing's events may arrive out of order or twice: each
//! one either moves the request forward ([`Step`]) or is stale and changes nothing (`Ok(None)`); the commands of
//! users (cancel, close) on a status that does not allow them are typed errors (FAILED_PRECONDITION,
//! INVALID_TRANSITION). Every step is dated no earlier than the previous one, so the history is ordered.

use chrono::{DateTime, Utc};
use id77_platform::{ErrorCode, ServiceError};
use uuid::Uuid;

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

/// Who made a change: a user acting in a role, or routing (through its events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    User { id: Uuid, role: String },
    System,
}

impl Actor {
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::User { id, .. } => Some(*id),
            Self::System => None,
        }
    }

    pub fn role(&self) -> &str {
        match self {
            Self::User { role, .. } => role,
            Self::System => "system",
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
    Close {
        reason: String,
    },
}

impl Trigger {
    /// A user's command (its refusal is an error), as opposed to one of routing's events (stale when refused).
    pub fn is_command(&self) -> bool {
        matches!(self, Self::Cancel { .. } | Self::Close { .. })
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
            Self::Close { .. } => "close",
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
}

impl Step {
    /// The state after this step.
    pub fn state(&self) -> State {
        State { status: self.to, provider: self.provider.clone(), updated_at: self.at }
    }
}

pub fn invalid_transition(from: RequestStatus, what: &str) -> ServiceError {
    ServiceError::new(
        ErrorCode::FailedPrecondition,
        "INVALID_TRANSITION",
        format!("a {} request cannot be {what}", from.as_str()),
    )
}

fn is_with(state: &State, provider: &str) -> bool {
    state.provider.as_deref() == Some(provider)
}

fn reason_with(prefix: String, detail: &str) -> String {
    if detail.trim().is_empty() { prefix } else { format!("{prefix}: {}", detail.trim()) }
}

/// After a decline or an expiry of `provider`'s referral: where the request goes.
fn rerouted(
    state: &State,
    provider: &str,
    next: &Next,
    why: String,
) -> Option<(RequestStatus, Option<String>, String)> {
    // Only the referral the request is with (or one we have not heard of yet) moves it; a decline of a provider
    // the request already left is stale.
    if !state.status.is_unanswered() || (state.provider.is_some() && !is_with(state, provider)) {
        return None;
    }
    Some(match next {
        Next::Provider(p) => (RequestStatus::Referred, Some(p.clone()), format!("{why}; re-routed to {p}")),
        Next::Triage => {
            (RequestStatus::Triage, Some(provider.to_owned()), format!("{why}; no provider left: coordinator's triage"))
        }
        Next::Nowhere => (RequestStatus::Declined, Some(provider.to_owned()), why),
    })
}

/// Applies `trigger` at `at` (the event's time, or the command's). `Ok(None)`: a stale or repeated event of
/// routing, nothing changes. `Err`: a user's command the status does not allow.
pub fn apply(state: &State, trigger: &Trigger, at: DateTime<Utc>) -> Result<Option<Step>, ServiceError> {
    use RequestStatus::*;
    let s = state.status;
    let target: Option<(RequestStatus, Option<String>, String)> = match trigger {
        Trigger::Queued => {
            (s == Submitted).then(|| (Triage, None, "open orientation request: the coordinator triages it".to_owned()))
        }
        Trigger::Offered { provider } => {
            if matches!(s, Submitted | Triage) {
                Some((Referred, Some(provider.clone()), format!("referred to {provider}")))
            } else if s == Referred && !is_with(state, provider) && at >= state.updated_at {
                // A re-routing we heard of before the decline; an older offer (a late redelivery) is not one.
                Some((Referred, Some(provider.clone()), format!("re-routed to {provider}")))
            } else {
                None
            }
        }
        Trigger::Accepted { provider } => {
            s.is_unanswered().then(|| (Accepted, Some(provider.clone()), format!("accepted by {provider}")))
        }
        Trigger::Declined { provider, reason, next } => {
            rerouted(state, provider, next, reason_with(format!("declined by {provider}"), reason))
        }
        Trigger::Expired { provider, next } => {
            rerouted(state, provider, next, format!("{provider} did not answer in time"))
        }
        Trigger::Withdrawn { provider, reason } => (s == Referred && is_with(state, provider)).then(|| {
            (Triage, Some(provider.clone()), reason_with(format!("referral to {provider} withdrawn"), reason))
        }),
        Trigger::Progressed { provider, note } => matches!(s, Submitted | Triage | Referred | Accepted)
            .then(|| (InProgress, Some(provider.clone()), reason_with(format!("{provider} reported progress"), note))),
        Trigger::Completed { provider } => matches!(s, Submitted | Triage | Referred | Accepted | InProgress)
            .then(|| (Completed, Some(provider.clone()), format!("{provider} completed the work"))),
        Trigger::Cancel { reason } => {
            if !s.is_cancellable() {
                return Err(invalid_transition(s, "cancelled"));
            }
            // The user's own words (the status says the rest); they travel in `request.cancelled` to the provider.
            Some((Cancelled, state.provider.clone(), reason.trim().to_owned()))
        }
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
    Ok(Some(Step { from: s, to, provider, reason, at: at.max(state.updated_at) }))
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
        assert_eq!(steps[2].reason, "caue77 reported progress: visite faite");
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
}
