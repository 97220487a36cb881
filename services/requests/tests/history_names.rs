//! The history lines requests writes name providers (issue 21): by the name the catalogue gives them, « le
//! partenaire » when requests does not know it, never by their code. Pure (the lifecycle, no I/O); the service
//! path (offer.published → history and mails) is in `notifications.rs`.

use chrono::DateTime;
use id77_requests::domain::lifecycle::{self, Next, RequestStatus, State, Trigger};
use id77_requests::domain::names::ProviderNames;

fn with_a() -> State {
    let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
    State { status: RequestStatus::Referred, provider: Some("a".to_owned()), updated_at: at }
}

fn reason(state: &State, trigger: &Trigger, names: &ProviderNames) -> Option<String> {
    let at = DateTime::from_timestamp(1_800_000_100, 0).unwrap_or_default();
    lifecycle::apply_named(state, trigger, at, names).ok().flatten().map(|step| step.reason)
}

fn names() -> ProviderNames {
    ProviderNames::new([
        ("a".to_owned(), "Aménagement 77".to_owned()),
        ("b".to_owned(), "Direction des routes".to_owned()),
    ])
}

#[test]
fn a_known_provider_is_named_with_french_elision() {
    let n = names();
    let offered = Trigger::Offered { provider: "b".into() };
    assert_eq!(reason(&with_a(), &offered, &n).as_deref(), Some("Réorientée vers Direction des routes"));
    let expired = Trigger::Expired { provider: "a".into(), next: Next::Triage };
    assert_eq!(
        reason(&with_a(), &expired, &n).as_deref(),
        Some(
            "Sans réponse d'Aménagement 77 dans le délai ; plus aucun partenaire possible : à orienter par la coordination"
        )
    );
    let declined =
        Trigger::Declined { provider: "a".into(), reason: "plan de charge".into(), next: Next::Provider("b".into()) };
    assert_eq!(
        reason(&with_a(), &declined, &n).as_deref(),
        Some("Déclinée par Aménagement 77 : plan de charge ; réorientée vers Direction des routes")
    );
    assert_eq!(declined.providers(), ["a", "b"]);
    assert!(Trigger::Cancel { reason: String::new() }.providers().is_empty());
}

#[test]
fn an_unknown_provider_is_the_partner_never_its_code() {
    let expired = Trigger::Expired { provider: "a".into(), next: Next::Provider("b".into()) };
    let at = DateTime::from_timestamp(1_800_000_100, 0).unwrap_or_default();
    // `apply` knows no names at all.
    let step = lifecycle::apply(&with_a(), &expired, at).ok().flatten().expect("a step");
    assert_eq!(step.provider.as_deref(), Some("b"), "the state keeps the code");
    assert_eq!(step.reason, "Sans réponse du partenaire dans le délai ; réorientée vers le partenaire");
    let accepted = Trigger::Accepted { provider: "c".into() };
    assert_eq!(reason(&with_a(), &accepted, &names()).as_deref(), Some("Acceptée par le partenaire"), "c has no name");
    let withdrawn = Trigger::Withdrawn { provider: "a".into(), reason: String::new() };
    assert_eq!(
        reason(&with_a(), &withdrawn, &ProviderNames::default()).as_deref(),
        Some("Orientation vers le partenaire retirée")
    );
}
