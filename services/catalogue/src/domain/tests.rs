//! The catalogue rules' unit tests: the shipped seed, validation, price rules, eligibility, the lifecycle and
//! seed plans.

use std::collections::HashSet;

use id77_platform::error::FieldViolation;
use id77_proto::vocabulary::{Category, MemberKind, PriceKind};
use uuid::Uuid;

use super::*;

const SEED: &str = include_str!("../../seed/catalogue.json");

fn seed() -> Catalogue {
    match parse_seed(SEED) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn stored(catalogue: &Catalogue) -> Vec<StoredOffer> {
    catalogue
        .offers
        .iter()
        .enumerate()
        .map(|(i, content)| StoredOffer {
            id: Uuid::from_u128(i as u128 + 1),
            version: 1,
            status: OfferStatus::Published,
            operator_managed: false,
            content: content.clone(),
        })
        .collect()
}

fn file(json: &str) -> SeedFile {
    match serde_json::from_str(json) {
        Ok(f) => f,
        Err(e) => panic!("{e}"),
    }
}

fn providers() -> HashSet<String> {
    HashSet::from(["caue77".to_owned()])
}

fn input(json: serde_json::Value) -> OfferInput {
    match serde_json::from_value(json) {
        Ok(i) => i,
        Err(e) => panic!("{e}"),
    }
}

fn fields(result: Result<OfferContent, Vec<FieldViolation>>) -> Vec<String> {
    result.err().unwrap_or_default().into_iter().map(|v| v.field).collect()
}

#[test]
fn the_shipped_seed_is_valid_and_has_the_catalogue_proportions() {
    let c = seed();
    assert!((10..=12).contains(&c.providers.len()), "{}", c.providers.len());
    let count = |cat| c.offers.iter().filter(|o| o.category == cat).count();
    assert!((45..=55).contains(&count(Category::IntegratedEngineering)));
    assert!((45..=55).contains(&count(Category::AwarenessTraining)));
    assert!((18..=22).contains(&count(Category::ExhibitionLoan)));
    for kind in PriceKind::ALL {
        assert!(c.offers.iter().any(|o| o.price.kind() == *kind), "no {kind} offer");
    }
    assert!(c.offers.iter().any(|o| !o.eligibility.is_unrestricted()));
    for code in ["dir-routes", "dir-eau", "caue77", "sm-attractivite", "dir-culture"] {
        assert!(c.providers.iter().any(|p| p.code == code), "{code}");
    }
    // The offers other tests and services rely on are still there.
    for code in ["amo-amenagement-voirie", "diagnostic-ouvrages-art", "formation-plu", "expo-grande-guerre-77"] {
        assert!(c.offers.iter().any(|o| o.code == code), "{code}");
    }
}

#[test]
fn every_problem_of_a_bad_seed_is_reported() {
    let bad = file(
        r#"{
          "providers": [
            {"code": "Dir.Routes", "name": "", "kind": "ministry", "contact_email": "nope"},
            {"code": "caue77", "name": "CAUE", "kind": "associated_organisation", "contact_email": "a@b.fr"},
            {"code": "caue77", "name": "CAUE bis", "kind": "associated_organisation", "contact_email": "a@b.fr"}
          ],
          "offers": [
            {"code": "a", "title": "A", "category": "party", "themes": ["x", "x"],
             "provider_code": "nobody", "price": {"kind": "flat", "amount_cents": -1}},
            {"code": "a", "title": "", "category": "exhibition_loan",
             "provider_code": "caue77", "price": {"kind": "free"}, "copies": 1}
          ]
        }"#,
    );
    let problems = validate_seed(bad).err().map(|e| e.problems).unwrap_or_default();
    let expect = [
        "provider \"Dir.Routes\": code",
        "provider \"Dir.Routes\": name",
        "provider \"Dir.Routes\": kind",
        "provider \"Dir.Routes\": contact_email",
        "provider \"caue77\": code is used twice",
        "offer \"a\": category",
        "offer \"a\": themes",
        "offer \"a\": provider_code",
        "offer \"a\": price.amount_cents",
        "offer \"a\": vat_note",
        "offer \"a\": code is used twice",
        "offer \"a\": title",
    ];
    for e in expect {
        assert!(problems.iter().any(|p| p.starts_with(e)), "missing {e:?} in {problems:#?}");
    }
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
}

#[test]
fn malformed_json_is_an_error_not_a_panic() {
    assert!(parse_seed("{").is_err());
    assert!(parse_seed(r#"{"providers": [], "offers": [], "extra": 1}"#).is_err());
    assert_eq!(parse_seed(r#"{"providers": [], "offers": []}"#).map(|c| c.offers.len()), Ok(0));
}

#[test]
fn price_rules_give_the_legacy_pair_and_estimates() {
    let flat = PriceRule::Flat { amount_cents: 250_000 };
    assert_eq!((flat.legacy(), flat.estimate(10)), ((true, 250_000), Some(250_000)));
    let daily = PriceRule::DailyRate { amount_cents: 60_000, days: 3 };
    assert_eq!((daily.legacy(), daily.kind()), ((true, 180_000), PriceKind::DailyRate));
    let per = PriceRule::PerInhabitant { amount_cents: 10, floor_cents: 50_000, cap_cents: Some(500_000) };
    assert_eq!(per.legacy(), (false, 0));
    assert_eq!(per.estimate(1_000), Some(50_000), "the floor");
    assert_eq!(per.estimate(12_000), Some(120_000));
    assert_eq!(per.estimate(1_000_000), Some(500_000), "the cap");
    let uncapped = PriceRule::PerInhabitant { amount_cents: 10, floor_cents: 0, cap_cents: None };
    assert_eq!(uncapped.estimate(i64::MAX), None, "overflow is no estimate, not a panic");
    assert_eq!((PriceRule::Free.legacy(), PriceRule::Free.estimate(5)), ((false, 0), Some(0)));
    assert_eq!((PriceRule::OnQuote.legacy(), PriceRule::OnQuote.estimate(5)), ((false, 0), None));
}

#[test]
fn price_rules_are_validated() {
    let base = |price: serde_json::Value| {
        input(serde_json::json!({"code": "x", "title": "X", "category": "integrated_engineering",
            "provider_code": "caue77", "price": price, "vat_rate_bp": 2000}))
    };
    assert!(validate_offer(base(serde_json::json!({"kind": "flat", "amount_cents": 100})), &providers()).is_ok());
    assert_eq!(
        fields(validate_offer(base(serde_json::json!({"kind": "flat", "amount_cents": 0})), &providers())),
        ["price.amount_cents"]
    );
    assert_eq!(
        fields(validate_offer(
            base(serde_json::json!({"kind": "daily_rate", "amount_cents": 90_000_000, "days": 300})),
            &providers()
        )),
        ["price.days"]
    );
    assert_eq!(
        fields(validate_offer(
            base(
                serde_json::json!({"kind": "per_inhabitant", "amount_cents": 10, "floor_cents": 500, "cap_cents": 100})
            ),
            &providers()
        )),
        ["price.cap_cents"]
    );
    // An unknown price kind does not even parse.
    assert!(
        serde_json::from_value::<OfferInput>(serde_json::json!({"code": "x", "title": "X",
        "category": "integrated_engineering", "provider_code": "caue77", "price": {"kind": "barter"}}))
        .is_err()
    );
}

#[test]
fn offers_are_validated_field_by_field() {
    let bad = input(serde_json::json!({
        "code": "x", "title": "X", "category": "awareness_training", "provider_code": "caue77",
        "price": {"kind": "on_quote"}, "vat_rate_bp": 20000, "copies": 2,
        "eligibility": {"member_kinds": ["commune", "region"], "min_population": 5000, "max_population": 100,
                        "epci_sirens": ["2000"], "arrondissements": ["7/1"]}
    }));
    assert_eq!(
        fields(validate_offer(bad, &providers())),
        [
            "eligibility.member_kinds",
            "eligibility.max_population",
            "eligibility.epci_sirens",
            "eligibility.arrondissements",
            "vat_rate_bp",
            "copies"
        ]
    );
    let expo = input(serde_json::json!({"code": "e", "title": "E", "category": "exhibition_loan",
        "provider_code": "caue77", "price": {"kind": "free"}}));
    assert_eq!(fields(validate_offer(expo, &providers())), ["copies"]);
}

#[test]
fn eligibility_checks_kind_population_and_territory() {
    let rule = Eligibility {
        member_kinds: vec![MemberKind::Commune],
        min_population: Some(2_000),
        max_population: Some(10_000),
        epci_sirens: vec!["200072130".into()],
        arrondissements: vec!["774".into()],
    };
    let member = |kind, population, epci: Option<&str>, arr: Option<&str>| MemberProfile {
        kind,
        population,
        epci_siren: epci.map(str::to_owned),
        arrondissement: arr.map(str::to_owned),
    };
    assert!(rule.admits(&member(MemberKind::Commune, 5_000, Some("200072130"), None)));
    assert!(rule.admits(&member(MemberKind::Commune, 5_000, Some("999999999"), Some("774"))));
    assert!(!rule.admits(&member(MemberKind::Commune, 5_000, Some("999999999"), Some("771"))));
    assert!(!rule.admits(&member(MemberKind::Epci, 5_000, Some("200072130"), None)));
    assert!(!rule.admits(&member(MemberKind::Commune, 1_999, None, None)));
    assert!(!rule.admits(&member(MemberKind::Commune, 10_001, None, None)));
    assert!(rule.admits(&member(MemberKind::Commune, 10_000, None, None)), "territory unknown: not applied");
    assert!(Eligibility::default().admits(&member(MemberKind::Syndicat, 0, None, None)));
}

#[test]
fn editing_follows_the_lifecycle_and_versions() {
    let c = seed();
    let mut offer = stored(&c).remove(0);
    let mut next = offer.content.clone();
    assert_eq!(edit(&offer, &next, 0), Ok(Edit::Unchanged));
    next.title.push_str(" (2027)");
    assert_eq!(edit(&offer, &next, 0), Ok(Edit::NewVersion { version: 2 }));
    assert_eq!(edit(&offer, &next, 1), Ok(Edit::NewVersion { version: 2 }));
    assert_eq!(edit(&offer, &next, 3), Err(LifecycleError::VersionConflict { current: 1, expected: 3 }));
    let mut renamed = next.clone();
    renamed.code = "autre".into();
    assert_eq!(edit(&offer, &renamed, 0), Err(LifecycleError::Immutable("code")));
    offer.status = OfferStatus::Draft;
    assert_eq!(edit(&offer, &next, 0), Ok(Edit::InPlace));
    offer.status = OfferStatus::Archived;
    assert!(matches!(edit(&offer, &next, 0), Err(LifecycleError::InvalidTransition { .. })));

    assert_eq!(publish(OfferStatus::Draft), Ok(OfferStatus::Published));
    assert!(publish(OfferStatus::Published).is_err() && publish(OfferStatus::Archived).is_err());
    assert_eq!(archive(OfferStatus::Published), Ok(OfferStatus::Archived));
    assert_eq!(archive(OfferStatus::Draft), Ok(OfferStatus::Archived));
    assert!(archive(OfferStatus::Archived).is_err());
}

#[test]
fn a_first_load_publishes_every_offer_with_a_new_id() {
    let c = seed();
    let mut n = 100u128;
    let plan = plan(&c, &[], &[], || {
        n += 1;
        Uuid::from_u128(n)
    });
    assert_eq!(plan.providers.len(), c.providers.len());
    assert_eq!(plan.offers.len(), c.offers.len());
    assert!(plan.offers.iter().all(|o| o.version == 1 && o.change == Change::New));
    let ids: HashSet<_> = plan.offers.iter().map(|o| o.id).collect();
    assert_eq!(ids.len(), c.offers.len());
}

#[test]
fn an_unchanged_seed_plans_nothing() {
    let c = seed();
    let plan = plan(&c, &c.providers, &stored(&c), Uuid::now_v7);
    assert!(plan.is_empty(), "{plan:?}");
    assert!(plan.absent.is_empty());
}

#[test]
fn a_changed_offer_keeps_its_id_and_gets_the_next_version() {
    let c = seed();
    let mut stored = stored(&c);
    stored[3].version = 4;
    let mut next = c.clone();
    next.offers[3].title.push_str(" — édition 2027");
    let plan = plan(&next, &c.providers, &stored, Uuid::now_v7);
    assert!(plan.providers.is_empty());
    assert_eq!(plan.offers.len(), 1);
    let o = &plan.offers[0];
    assert_eq!((o.id, o.version, o.change), (stored[3].id, 5, Change::Changed { previous_version: 4 }));
    assert_eq!(o.content, next.offers[3]);
}

#[test]
fn the_seed_leaves_the_operators_offers_alone() {
    let c = seed();
    let mut stored = stored(&c);
    stored[0].operator_managed = true;
    stored[1].status = OfferStatus::Archived;
    let mut next = c.clone();
    next.offers[0].title.push_str(" bis");
    next.offers[1].title.push_str(" bis");
    assert!(plan(&next, &c.providers, &stored, Uuid::now_v7).is_empty());
}

#[test]
fn a_changed_provider_republishes_its_offers_only() {
    let c = seed();
    let mut next = c.clone();
    let caue = next.providers.iter_mut().find(|p| p.code == "caue77");
    if let Some(p) = caue {
        p.contact_email = "contact@caue77.fr".into();
    }
    let plan = plan(&next, &c.providers, &stored(&c), Uuid::now_v7);
    assert_eq!(plan.providers.iter().map(|p| p.code.as_str()).collect::<Vec<_>>(), vec!["caue77"]);
    let expected = c.offers.iter().filter(|o| o.provider_code == "caue77").count();
    assert_eq!(plan.offers.len(), expected);
    assert!(plan.offers.iter().all(|o| o.content.provider_code == "caue77" && o.version == 2));
}

#[test]
fn offers_missing_from_the_seed_are_reported_not_removed() {
    let c = seed();
    let mut next = c.clone();
    let removed = next.offers.remove(0);
    let plan = plan(&next, &c.providers, &stored(&c), Uuid::now_v7);
    assert!(plan.is_empty());
    assert_eq!(plan.absent, vec![removed.code]);
}

#[test]
fn enums_round_trip() {
    for c in Category::ALL {
        assert_eq!(Category::parse(c.as_str()), Some(*c));
    }
    assert_eq!(Category::parse("x"), None);
    for k in ProviderKind::ALL {
        assert_eq!(ProviderKind::parse(k.as_str()), Some(k));
    }
    for s in OfferStatus::ALL {
        assert_eq!(OfferStatus::parse(s.as_str()), Some(s));
    }
    for k in MemberKind::ALL {
        assert_eq!(MemberKind::parse(k.as_str()), Some(*k));
    }
}

#[test]
fn price_rules_keep_the_spellings_of_the_seed_and_the_stored_snapshots() {
    let rules = [
        PriceRule::Free,
        PriceRule::Flat { amount_cents: 100 },
        PriceRule::DailyRate { amount_cents: 100, days: 2 },
        PriceRule::PerInhabitant { amount_cents: 10, floor_cents: 0, cap_cents: None },
        PriceRule::OnQuote,
    ];
    for rule in rules {
        let json = serde_json::to_value(rule).unwrap_or_default();
        assert_eq!(json["kind"], rule.kind().as_str(), "{json}");
        assert_eq!(serde_json::from_value::<PriceRule>(json).ok(), Some(rule));
    }
    let stored = r#"{"kind": "per_inhabitant", "amount_cents": 10, "floor_cents": 500, "cap_cents": 900}"#;
    let parsed: Option<PriceRule> = serde_json::from_str(stored).ok();
    assert_eq!(parsed, Some(PriceRule::PerInhabitant { amount_cents: 10, floor_cents: 500, cap_cents: Some(900) }));
    assert_eq!(serde_json::to_value(Category::ExhibitionLoan).ok(), Some(serde_json::json!("exhibition_loan")));
    assert_eq!(serde_json::to_value(MemberKind::Epci).ok(), Some(serde_json::json!("epci")));
}
