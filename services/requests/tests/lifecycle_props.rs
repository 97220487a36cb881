//! Property tests of the request lifecycle (pure, no I/O): random sequences of routing's events and users'
//! commands, with random times, applied as the service applies them. Checked after every sequence:
//! - nothing leaves a final status (declined, cancelled, closed): no step is recorded after one;
//! - replaying the recorded history from the submission gives the current state;
//! - timestamps never go backwards, even when events carry older times;
//! - every recorded step is a legal transition, from the status the previous step reached;
//! - a routing event applied twice in a row changes nothing the second time (redeliveries are harmless);
//! - a refused user command is FAILED_PRECONDITION / INVALID_TRANSITION and changes nothing;
//! - requests is the arbiter (ADR 0013): a cancellation (a user's, or a refused or expired quote's) is allowed
//!   before completion, even after acceptance or progress, and every routing event after it is stale, the
//!   provider's completion included; a completion recorded first refuses every cancellation.

use chrono::{DateTime, Duration, Utc};
use id77_platform::ErrorCode;
use id77_requests::domain::lifecycle::{self, Next, RequestStatus, State, Step, Trigger};
use proptest::prelude::*;

const PROVIDERS: [&str; 3] = ["caue77", "dir-routes", "aménagement-77"];

fn provider() -> impl Strategy<Value = String> {
    prop::sample::select(PROVIDERS.to_vec()).prop_map(str::to_owned)
}

fn next() -> impl Strategy<Value = Next> {
    prop_oneof![provider().prop_map(Next::Provider), Just(Next::Triage), Just(Next::Nowhere)]
}

fn trigger() -> impl Strategy<Value = Trigger> {
    prop_oneof![
        Just(Trigger::Queued),
        provider().prop_map(|provider| Trigger::Offered { provider }),
        provider().prop_map(|provider| Trigger::Accepted { provider }),
        (provider(), next()).prop_map(|(provider, next)| Trigger::Declined {
            provider,
            reason: "complet".into(),
            next
        }),
        (provider(), next()).prop_map(|(provider, next)| Trigger::Expired { provider, next }),
        provider().prop_map(|provider| Trigger::Withdrawn { provider, reason: String::new() }),
        provider().prop_map(|provider| Trigger::Progressed { provider, note: "en cours".into() }),
        provider().prop_map(|provider| Trigger::Completed { provider }),
        Just(Trigger::Cancel { reason: "plus besoin".into() }),
        quote_decision(),
        Just(Trigger::Close { reason: String::new() }),
    ]
}

/// A refused or expired quote: a cancellation ordered by billing's decision.
fn quote_decision() -> impl Strategy<Value = Trigger> {
    prop_oneof![
        "[a-z ]{0,12}".prop_map(|reason| Trigger::QuoteRefused { number: "D-caue77-2026-000001".into(), reason }),
        Just(Trigger::QuoteExpired { number: "D-caue77-2026-000001".into() }),
    ]
}

/// Any cancellation: a user's, or a quote's.
fn cancellation() -> impl Strategy<Value = Trigger> {
    prop_oneof![Just(Trigger::Cancel { reason: "projet abandonné".into() }), quote_decision()]
}

/// One of routing's events (never a command).
fn routing_event() -> impl Strategy<Value = Trigger> {
    trigger().prop_filter("routing's events only", |t| !t.is_command())
}

/// Events with a time offset (seconds, possibly before the previous event: out of order).
fn events() -> impl Strategy<Value = Vec<(Trigger, i64)>> {
    prop::collection::vec((trigger(), -600i64..600), 0..40)
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

/// Applies the events as the service does; returns the final state and the recorded steps.
fn run(events: &[(Trigger, i64)]) -> Result<(State, Vec<Step>), TestCaseError> {
    let mut state = State { status: RequestStatus::Submitted, provider: None, updated_at: t0() };
    let mut steps = Vec::new();
    let mut clock = t0();
    for (trigger, offset) in events {
        clock += Duration::seconds(*offset);
        match lifecycle::apply(&state, trigger, clock) {
            Ok(Some(step)) => {
                prop_assert!(!state.status.is_final(), "left final {:?} by {trigger:?}", state.status);
                state = step.state();
                steps.push(step);
                if !trigger.is_command() {
                    // The same event again (a redelivery) is stale.
                    let again = lifecycle::apply(&state, trigger, clock);
                    prop_assert!(matches!(again, Ok(None)), "{trigger:?} applied twice: {again:?}");
                }
            }
            Ok(None) => prop_assert!(!trigger.is_command(), "a command is applied or refused, never ignored"),
            Err(e) => {
                prop_assert!(trigger.is_command(), "routing's event {trigger:?} refused: {e:?}");
                prop_assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::FailedPrecondition, "INVALID_TRANSITION"));
            }
        }
    }
    Ok((state, steps))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn random_event_sequences_keep_the_lifecycle_invariants(events in events()) {
        let (state, steps) = run(&events)?;
        // History replays to the current state.
        prop_assert_eq!(lifecycle::replay(t0(), &steps), Some(state.clone()));
        let mut previous = State { status: RequestStatus::Submitted, provider: None, updated_at: t0() };
        for step in &steps {
            // Each step is legal from where the previous one left the request, and not earlier than it.
            prop_assert_eq!(step.from, previous.status);
            prop_assert!(step.from.can_become(step.to), "illegal {:?} -> {:?}", step.from, step.to);
            prop_assert!(step.at >= previous.updated_at, "time went backwards");
            prop_assert!(!previous.status.is_final(), "a step after final {:?}", previous.status);
            previous = step.state();
        }
    }

    #[test]
    fn a_final_request_ignores_every_event_and_refuses_every_command(events in events(), more in events()) {
        let (state, _) = run(&events)?;
        prop_assume!(state.status.is_final());
        for (trigger, offset) in &more {
            let at = state.updated_at + Duration::seconds(*offset);
            match lifecycle::apply(&state, trigger, at) {
                Ok(None) => prop_assert!(!trigger.is_command()),
                Err(_) => prop_assert!(trigger.is_command()),
                Ok(Some(step)) => prop_assert!(false, "{:?} left final {:?}", step, state.status),
            }
        }
    }

    #[test]
    fn routing_events_never_take_a_request_backwards_past_acceptance(events in events()) {
        let (_, steps) = run(&events)?;
        let accepted_at = steps.iter().position(|s| matches!(s.to, RequestStatus::Accepted | RequestStatus::InProgress | RequestStatus::Completed));
        if let Some(i) = accepted_at {
            for step in &steps[i + 1..] {
                prop_assert!(
                    !matches!(step.to, RequestStatus::Submitted | RequestStatus::Triage | RequestStatus::Referred),
                    "{:?} after the provider took it", step.to
                );
            }
        }
    }

    #[test]
    fn a_cancellation_before_completion_wins_over_every_later_routing_event(
        events in events(),
        cancel in cancellation(),
        offset in -600i64..600,
        later in prop::collection::vec((routing_event(), -600i64..600), 0..20),
    ) {
        let (state, _) = run(&events)?;
        let at = state.updated_at + Duration::seconds(offset);
        match lifecycle::apply(&state, &cancel, at) {
            Ok(Some(step)) => {
                // Allowed from every status before completion, acceptance and progress included.
                prop_assert!(state.status.is_cancellable(), "{:?} cancelled", state.status);
                prop_assert_eq!(step.to, RequestStatus::Cancelled);
                prop_assert_eq!(step.provider.clone(), state.provider.clone());
                let told = step.provider_before().map(str::to_owned);
                prop_assert_eq!(told, state.provider.clone().filter(|_| state.status.is_with_provider()));
                if let Trigger::QuoteRefused { number, .. } | Trigger::QuoteExpired { number } = &cancel {
                    prop_assert!(step.reason.starts_with(&format!("Devis {number} ")), "{}", step.reason);
                }
                let cancelled = step.state();
                for (event, offset) in &later {
                    let at = cancelled.updated_at + Duration::seconds(*offset);
                    let applied = lifecycle::apply(&cancelled, event, at);
                    prop_assert!(matches!(applied, Ok(None)), "{:?} after the cancellation: {:?}", event, applied);
                }
            }
            Ok(None) => prop_assert!(false, "a cancellation is applied or refused, never ignored"),
            Err(e) => {
                prop_assert!(!state.status.is_cancellable(), "{:?} refused a cancellation", state.status);
                prop_assert_eq!((e.code, e.reason.as_ref()), (ErrorCode::FailedPrecondition, "INVALID_TRANSITION"));
            }
        }
    }

    #[test]
    fn a_completion_recorded_first_refuses_every_cancellation(
        events in events(),
        provider in provider(),
        cancel in cancellation(),
    ) {
        let (state, _) = run(&events)?;
        let completed = lifecycle::apply(&state, &Trigger::Completed { provider }, state.updated_at);
        let Ok(Some(step)) = completed else {
            // Not completable from here (final, or already completed): nothing to race.
            return Ok(());
        };
        let refused = lifecycle::apply(&step.state(), &cancel, step.at);
        prop_assert!(
            matches!(&refused, Err(e) if e.code == ErrorCode::FailedPrecondition && e.reason == "INVALID_TRANSITION"),
            "{:?} after completion: {:?}", cancel, refused
        );
    }

    #[test]
    fn accepted_or_in_progress_requests_can_still_be_cancelled(
        provider in provider(),
        progressed in any::<bool>(),
        cancel in cancellation(),
    ) {
        let mut events = vec![
            (Trigger::Offered { provider: provider.clone() }, 1),
            (Trigger::Accepted { provider: provider.clone() }, 1),
        ];
        if progressed {
            events.push((Trigger::Progressed { provider: provider.clone(), note: String::new() }, 1));
        }
        let (state, _) = run(&events)?;
        prop_assert!(matches!(state.status, RequestStatus::Accepted | RequestStatus::InProgress));
        let step = lifecycle::apply(&state, &cancel, state.updated_at).ok().flatten();
        prop_assert_eq!(step.as_ref().map(|s| s.to), Some(RequestStatus::Cancelled));
        prop_assert_eq!(step.as_ref().and_then(|s| s.provider_before()), Some(provider.as_str()));
        let cancelled = step.map(|s| s.state());
        let late = cancelled.as_ref().map(|c| lifecycle::apply(c, &Trigger::Completed { provider: provider.clone() }, c.updated_at));
        prop_assert!(matches!(late, Some(Ok(None))), "completion after cancellation: {:?}", late);
    }
}
