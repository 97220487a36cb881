//! Properties of what routing reads from outside: a provider's reply bytes (any bytes decode to a validated
//! reply or a reason, never a panic; a well-formed reply round-trips; a stated amount decodes only within its
//! bounds and with an accept), rule conditions typed by the coordinator (any text or JSON parses or is refused;
//! a parsed condition prints back to the same condition), and the referral state machine (nothing leaves a final
//! state; an accepted referral leaves only when its request is cancelled; work is reported only on an accepted
//! referral not waiting for the member's quote). Fuzzed too by `make fuzz`.

use id77_proto::routing::v1::{ReferralReply, ReplyDecision};
use id77_routing::domain::rules::{
    Condition, MemberFacts, OfferFacts, check_condition, condition_json, evaluate, normalize, parse_condition,
};
use id77_routing::domain::{
    Agreement, MAX_QUOTE_CENTS, MAX_QUOTE_NOTE_CHARS, ReferralStatus, Reply, Transition, Work, check_work,
};
use id77_routing::events::decode_reply;
use proptest::prelude::*;
use prost::Message;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z_]{0,12}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("theme"),
            Just("offer"),
            Just("kind"),
            Just("population"),
            Just("all"),
            Just("any"),
            Just("commune")
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("theme".to_owned()),
                    Just("offer".to_owned()),
                    Just("all".to_owned()),
                    Just("any".to_owned()),
                    Just("kind".to_owned()),
                    Just("population".to_owned()),
                    Just("min".to_owned()),
                    Just("max".to_owned()),
                    Just("epci".to_owned()),
                    "[a-z]{1,8}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn exercise(condition: &Condition) {
    let _ = check_condition(condition);
    let normal = normalize(condition);
    let member = MemberFacts { known: true, population: 1200, insee_code: "77284".into(), ..MemberFacts::default() };
    let offer = OfferFacts { code: "voirie".into(), themes: vec!["voirie".into()], provider_code: "dir-routes".into() };
    let mut reasons = Vec::new();
    let _ = evaluate(condition, &offer, &member, &mut reasons);
    let mut reasons = Vec::new();
    let _ = evaluate(&normal, &offer, &member, &mut reasons);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_a_reply_or_a_reason(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        match decode_reply(&bytes) {
            Ok((_, Reply::Decline { reason })) => prop_assert!(!reason.trim().is_empty()),
            Ok(_) => {}
            Err(why) => prop_assert!(!why.is_empty()),
        }
    }

    #[test]
    fn a_well_formed_reply_round_trips(id in any::<u128>(), decision in 0i32..5, reason in any::<String>()) {
        let referral_id = uuid::Uuid::from_u128(id);
        let reply = ReferralReply { referral_id: referral_id.to_string(), decision, reason: reason.clone(), ..Default::default() };
        match (decode_reply(&reply.encode_to_vec()), ReplyDecision::try_from(decision)) {
            (Ok((id, Reply::Accept(None))), Ok(ReplyDecision::Accept)) => prop_assert_eq!(id, referral_id),
            (Ok((id, Reply::Complete)), Ok(ReplyDecision::Complete)) => prop_assert_eq!(id, referral_id),
            (Ok((id, Reply::Decline { reason: r })), Ok(ReplyDecision::Decline)) => {
                prop_assert_eq!(id, referral_id);
                prop_assert_eq!(r, reason.trim());
            }
            (Err(_), Ok(ReplyDecision::Decline)) => prop_assert!(reason.trim().is_empty() || reason.trim().chars().count() > 1000),
            (Err(_), Ok(ReplyDecision::Unspecified) | Err(_)) => {}
            (outcome, wire) => prop_assert!(false, "{:?} decoded as {:?}", wire, outcome),
        }
    }

    #[test]
    fn a_stated_amount_decodes_within_its_bounds_and_with_an_accept_only(
        id in any::<u128>(),
        decision in 0i32..5,
        amount in prop_oneof![any::<i64>(), -10i64..10, (MAX_QUOTE_CENTS - 5)..(MAX_QUOTE_CENTS + 5)],
        note in prop_oneof![Just(String::new()), any::<String>(), "[a-zé ]{0,210}"],
    ) {
        let referral_id = uuid::Uuid::from_u128(id);
        let reply = ReferralReply {
            referral_id: referral_id.to_string(),
            decision,
            reason: "une raison".into(),
            amount_cents: amount,
            quote_note: note.clone(),
            ..Default::default()
        };
        let note_ok = note.trim().chars().count() <= MAX_QUOTE_NOTE_CHARS && !note.trim().chars().any(char::is_control);
        match decode_reply(&reply.encode_to_vec()) {
            Ok((id, Reply::Accept(Some(quote)))) => {
                prop_assert_eq!(id, referral_id);
                prop_assert_eq!(ReplyDecision::try_from(decision), Ok(ReplyDecision::Accept));
                prop_assert!((1..=MAX_QUOTE_CENTS).contains(&quote.amount_cents));
                prop_assert_eq!(quote.amount_cents, amount);
                prop_assert_eq!(quote.note.as_str(), note.trim());
            }
            Ok((_, Reply::Accept(None))) => prop_assert!(amount == 0 && note.trim().is_empty()),
            Ok((_, Reply::Decline { .. } | Reply::Complete)) => prop_assert!(amount == 0 && note.trim().is_empty()),
            Err(why) => {
                let wire = ReplyDecision::try_from(decision);
                let bad_amount = !(0..=MAX_QUOTE_CENTS).contains(&amount);
                let stated = amount != 0 || !note.trim().is_empty();
                prop_assert!(
                    bad_amount
                        || (stated && (amount == 0 || !note_ok || wire != Ok(ReplyDecision::Accept)))
                        || !matches!(wire, Ok(ReplyDecision::Accept | ReplyDecision::Decline | ReplyDecision::Complete)),
                    "{} refused: {}", amount, why
                );
            }
        }
    }

    #[test]
    fn any_text_is_a_condition_or_a_reason(text in any::<String>()) {
        if let Ok(Some(condition)) = parse_condition(&text) {
            exercise(&condition);
        }
    }

    #[test]
    fn any_json_is_a_condition_or_a_reason_and_parsed_ones_round_trip(value in json_value()) {
        if let Ok(Some(condition)) = parse_condition(&value.to_string()) {
            exercise(&condition);
            let again = parse_condition(&condition_json(Some(&condition)));
            prop_assert_eq!(again, Ok(Some(condition)));
        }
    }

    #[test]
    fn nothing_leaves_a_final_state(steps in prop::collection::vec(0u8..5, 0..12)) {
        let mut status = ReferralStatus::Offered;
        for step in steps {
            let transition = match step {
                0 => Transition::Accept,
                1 => Transition::Decline,
                2 => Transition::Expire,
                3 => Transition::Withdraw,
                _ => Transition::Cancel,
            };
            match status.apply(transition) {
                Ok(next) => {
                    // From an offered referral anything; from an accepted one only a cancellation's withdrawal.
                    prop_assert!(
                        status == ReferralStatus::Offered
                            || (status == ReferralStatus::Accepted
                                && transition == Transition::Cancel
                                && next == ReferralStatus::Withdrawn)
                    );
                    prop_assert!(next.is_final() || next == ReferralStatus::Accepted);
                    status = next;
                }
                Err(_) => prop_assert!(status.is_final() || status == ReferralStatus::Accepted),
            }
        }
    }

    #[test]
    fn work_is_allowed_exactly_on_an_accepted_referral_not_waiting_for_the_member(
        status in 0u8..5,
        agreement in 0u8..3,
        reason in any::<String>(),
    ) {
        let status = [
            ReferralStatus::Offered,
            ReferralStatus::Accepted,
            ReferralStatus::Declined,
            ReferralStatus::Expired,
            ReferralStatus::Withdrawn,
        ][usize::from(status)];
        let agreement = [Agreement::NotRequired, Agreement::AwaitingMember, Agreement::Agreed][usize::from(agreement)];
        match check_work(status, &reason, agreement) {
            Ok(()) => prop_assert!(status == ReferralStatus::Accepted && agreement != Agreement::AwaitingMember),
            Err(refused) => {
                let code = refused.code();
                if status == ReferralStatus::Accepted {
                    prop_assert_eq!((code, agreement), ("QUOTE_NOT_ACCEPTED", Agreement::AwaitingMember));
                } else {
                    prop_assert_eq!(code, "INVALID_TRANSITION");
                }
                for work in [Work::Progress, Work::Complete] {
                    prop_assert!(refused.message("r1", work).starts_with("referral r1"));
                }
            }
        }
    }
}
