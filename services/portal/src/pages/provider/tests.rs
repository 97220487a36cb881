//! Unit tests of the provider's screens.

use super::*;
use serde_json::json;

fn accepted(agreement: &str) -> Value {
    json!({"id": "ref-1", "request_id": "r1", "status": "accepted", "agreement": agreement})
}

#[test]
fn the_work_waits_for_the_member_s_agreement_to_the_quote() {
    let none = (Fields::new(), Errors::default());
    let waiting = work_section(&accepted("awaiting_member"), None, "jeton", &none.0, &none.1);
    assert!(waiting.contains("<h2>En attente de l'accord de la collectivité sur le devis</h2>"), "{waiting}");
    assert!(!waiting.contains("<form"), "no progress nor completion form before the agreement");
    for agreement in ["agreed", "not_required"] {
        let html = work_section(&accepted(agreement), None, "jeton", &none.0, &none.1);
        assert!(html.contains(r#"action="/orientations/ref-1/avancement""#), "{agreement}");
        assert!(html.contains(r#"action="/orientations/ref-1/terminer""#), "{agreement}");
        assert_eq!(html.matches(r#"name="_csrf" value="jeton""#).count(), 1, "a CSRF field on the POST form");
        assert!(html.contains(r#"<form method="get" action="/orientations/ref-1/terminer""#), "asks first");
        assert!(!html.contains("En attente de l'accord"));
    }
    let offered = work_section(&json!({"id": "ref-1", "status": "offered"}), None, "jeton", &none.0, &none.1);
    assert!(offered.contains("/accepter") && offered.contains("/decliner"));
    let done =
        json!({"id": "ref-1", "status": "accepted", "agreement": "agreed", "completed_at": "2026-12-01T10:00:00Z"});
    let html = work_section(&done, None, "jeton", &none.0, &none.1);
    assert!(html.contains("Prestation terminée le 1er décembre 2026 à 11 h 00") && !html.contains("<form"));
}

#[test]
fn a_request_cancelled_after_acceptance_says_who_and_why_and_offers_nothing() {
    let none = (Fields::new(), Errors::default());
    let withdrawn = json!({"id": "ref-1", "status": "withdrawn", "agreement": "agreed", "reason": "request cancelled"});
    let request = json!({"status": "cancelled", "history": [
        {"status": "accepted", "actor_role": "provider_agent"},
        {"status": "cancelled", "actor_role": "member_admin", "actor_name": "Marie Dupont", "reason": "Projet <abandonné>"}
    ]});
    let html = work_section(&withdrawn, Some(&request), "jeton", &none.0, &none.1);
    assert!(html.contains("<h2>La collectivité a annulé la demande</h2>"), "{html}");
    assert!(html.contains("<p>Motif : Projet &lt;abandonné&gt;</p>"));
    assert!(!html.contains("<form"), "no action on a withdrawn referral");
    // Cancelled by the coordination, or by an expired quote; or withdrawn without a cancellation.
    let by = |role: &str| json!({"status": "cancelled", "history": [{"status": "cancelled", "actor_role": role}]});
    assert_eq!(cancellation(&by("coordinator")).map(|c| c.0), Some("La coordination a annulé la demande".into()));
    assert!(cancellation(&by("system")).is_some_and(|c| c.0.contains("automatiquement")));
    assert_eq!(cancellation(&json!({"status": "in_progress"})), None);
    let html = work_section(&withdrawn, Some(&json!({"status": "referred"})), "jeton", &none.0, &none.1);
    assert!(html.contains("retirée par la coordination") && html.contains("Motif : request cancelled"));
}

#[test]
fn refused_progress_and_completion_are_explained_in_french() {
    let error =
        |kind: &str| crate::gateway::ApiError { status: 409, kind: kind.into(), detail: String::new(), errors: vec![] };
    assert!(work_conflict(&error("invalid-transition"), "withdrawn").starts_with("La demande a été annulée"));
    assert!(work_conflict(&error("quote-not-accepted"), "accepted").starts_with("Le devis n'a pas encore été accepté"));
    assert!(work_conflict(&error("invalid-transition"), "accepted").contains("pas possible dans l'état actuel"));
}

#[test]
fn referrals_waiting_past_their_reminder_or_deadline_are_marked_in_words() {
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-29T10:00:00Z").map(|t| t.to_utc()).unwrap_or_default();
    let r = |status: &str, remind: &str, by: &str| json!({"status": status, "remind_at": remind, "respond_by": by});
    assert_eq!(deadline_flag(&r("offered", "2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z"), now), "");
    assert!(deadline_flag(&r("offered", "2026-11-29T09:00:00Z", "2026-12-01T00:00:00Z"), now).contains("relance"));
    assert!(deadline_flag(&r("offered", "2026-11-28T00:00:00Z", "2026-11-29T09:59:00Z"), now).contains("dépassée"));
    assert_eq!(deadline_flag(&r("accepted", "2026-11-28T00:00:00Z", "2026-11-29T09:59:00Z"), now), "");
    let escalated =
        json!({"status": "offered", "escalated_at": "2026-11-29T09:00:00Z", "respond_by": "2026-12-01T00:00:00Z"});
    assert!(deadline_flag(&escalated, now).contains("relance"));
}

#[test]
fn french_amounts_parse_to_cents() {
    for (raw, cents) in [
        ("2 450,00", 245_000),
        ("2\u{202f}450,00\u{a0}€", 245_000),
        ("2\u{202f}450,5 €", 245_050),
        ("2450", 245_000),
        ("2.450,00", 245_000),
        ("2450.75", 245_075),
        ("2.450.000", 245_000_000),
        ("0,01", 1),
        (" 10 000 000,00 ", MAX_QUOTE_CENTS),
        ("12 EUR", 1_200),
    ] {
        assert_eq!(parse_euros(raw), Ok(Some(cents)), "{raw:?}");
    }
    assert_eq!(parse_euros("   "), Ok(None));
    for bad in
        ["0", "0,00", "-5", "2,450,00", "1,234", "12,3a", "abc", ",50", "10 000 000,01", "99999999999999999", "2.45.0"]
    {
        assert!(parse_euros(bad).is_err(), "{bad:?}");
    }
}

const UUID: &str = "0193f6a2-1c2b-7d3e-9f00-123456789abc";
const REQUEST: &str = "0193f6a2-1c2b-7d3e-9f00-aaaaaaaaaaaa";
const OFFER: &str = "0193f6a2-1c2b-7d3e-9f00-bbbbbbbbbbbb";

fn named_referral() -> Value {
    json!({"id": UUID, "request_id": REQUEST, "offer_id": OFFER, "member_id": "0193f6a2-1c2b-7d3e-9f00-cccccccccccc",
        "provider_code": "caue77", "provider_name": "CAUE de Seine-et-Marne", "status": "offered",
        "member_name": "Commune de Meaux", "offer_title": "Étude de faisabilité", "requester_name": "Marie Dupont",
        "requester_email": "marie.dupont@meaux.fr", "request_subject": "Rénovation de l'école <Jules Ferry>",
        "offered_at": "2026-12-01T10:00:00Z", "respond_by": "2026-12-08T10:00:00Z", "attempt": 1})
}

/// The text a reader sees (tags and their attributes removed).
fn visible_text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

/// Whether the visible text shows an id, whole or its first eight characters.
fn has_uuid_or_prefix(html: &str, id: &str) -> bool {
    let text = visible_text(html);
    text.contains(id) || text.contains(&id[..8])
}

#[test]
fn the_provider_s_list_names_the_collectivite_its_contact_and_the_offer_and_shows_no_id() {
    let html = referrals_table("À traiter", &[named_referral()], ReferralLink::Referral);
    assert!(
        html.contains(&format!(r#"<a href="/orientations/{UUID}">Rénovation de l&#39;école &lt;Jules Ferry&gt;</a>"#)),
        "{html}"
    );
    assert!(html.contains("<td>Commune de Meaux</td>"), "{html}");
    assert!(html.contains(r#"Marie Dupont<br><a href="mailto:marie.dupont@meaux.fr">marie.dupont@meaux.fr</a>"#));
    assert!(html.contains(&format!(r#"<a href="/offres/{OFFER}">Étude de faisabilité</a>"#)));
    assert!(!html.contains("Partenaire"), "the provider does not see its own name");
    for id in [UUID, REQUEST, OFFER, "0193f6a2-1c2b-7d3e-9f00-cccccccccccc"] {
        assert!(!has_uuid_or_prefix(&html, id), "no id shown: {id} in {html}");
    }
    assert!(!html.contains("Orientation 0193f6a2") && !html.contains(">caue77<"));
    // The coordinator's table links the request and names the provider.
    let html = referrals_table("Orientations", &[named_referral()], ReferralLink::Request);
    assert!(html.contains(&format!(r#"<a href="/demandes/{REQUEST}">"#)), "{html}");
    assert!(html.contains("<td>CAUE de Seine-et-Marne</td>"), "{html}");
    // Names routing does not know yet: words, never an id.
    let bare = json!({"id": UUID, "request_id": REQUEST, "offer_id": OFFER, "status": "accepted",
        "offered_at": "2026-12-01T10:00:00Z"});
    let html = referrals_table("Orientations", &[bare], ReferralLink::Referral);
    assert!(
        html.contains("Demande reçue le 1er décembre 2026 à 11 h 00") && html.contains("Collectivité non renseignée"),
        "{html}"
    );
    assert!(!has_uuid_or_prefix(&html, UUID) && !has_uuid_or_prefix(&html, OFFER), "{html}");
}

#[test]
fn completing_asks_for_a_confirmation_that_states_the_invoiced_amount() {
    let referral = json!({"id": "ref-1", "request_id": "r1", "status": "accepted", "agreement": "agreed",
        "member_name": "Commune de Meaux", "request_subject": "Étude"});
    let quotes = [
        json!({"id": "q0", "number": "D-caue77-2026-000001", "referral_id": "ref-0", "status": "voided",
            "amount_cents": 1}),
        json!({"id": "q1", "number": "D-caue77-2026-000002", "referral_id": "ref-1", "status": "accepted",
            "amount_cents": 1_845_050, "vat_rate_bp": 2000, "vat_cents": 369_010, "total_incl_vat_cents": 2_214_060}),
    ];
    let html = completion_confirmation(&referral, &quotes, "jeton");
    assert!(html.contains("D-caue77-2026-000002") && !html.contains("D-caue77-2026-000001"), "{html}");
    assert!(html.contains("<dt>Montant HT</dt><dd>18\u{202f}450,50\u{a0}€</dd>"), "{html}");
    assert!(html.contains("<dt>TVA (20\u{a0}%)</dt><dd>3\u{202f}690,10\u{a0}€</dd>"), "{html}");
    assert!(html.contains("<dt>Montant TTC</dt><dd>22\u{202f}140,60\u{a0}€</dd>"), "{html}");
    assert!(html.contains(r#"<form method="post" action="/orientations/ref-1/terminer""#));
    assert!(html.contains(r#"name="_csrf" value="jeton""#) && html.contains(r#"name="confirmer" value="oui""#));
    assert!(html.contains(">Confirmer</button>") && html.contains(r#"href="/orientations/ref-1">Annuler</a>"#));
    let free = completion_confirmation(&referral, &[], "jeton");
    assert!(free.contains("aucune facture ne sera émise"), "{free}");
}

#[test]
fn the_site_is_named_by_its_commune_never_by_a_code_when_the_directory_knows_it() {
    let site = |site: Value| category_facts(&json!({ "site": site }));
    assert_eq!(site(json!({"commune_insee": "77284", "commune_name": "Meaux"})), "<dt>Site</dt><dd>Meaux</dd>");
    assert_eq!(
        site(json!({"address": "2 rue de l'Église", "commune_insee": "77284", "commune_name": "Meaux"})),
        "<dt>Site</dt><dd>2 rue de l&#39;Église (Meaux)</dd>"
    );
    // The directory did not answer: the code, said in words.
    assert_eq!(site(json!({"commune_insee": "77284"})), "<dt>Site</dt><dd>commune dont le code INSEE est 77284</dd>");
    assert_eq!(site(json!({})), "<dt>Site</dt><dd>—</dd>");
}
