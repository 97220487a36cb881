//! Unit tests of the sessions' screens: words and times, the forms' reading, the pages' HTML.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use super::input::{self, participants, schedule};
use super::text::{self, paris_to_utc, parse_time, when};
use super::{list_items, manage_view, mine, name_commune, next_page, problem, sort_key, view};
use crate::forms::{Errors, Fields};
use crate::gateway::ApiError;

fn at(s: &str) -> DateTime<Utc> {
    text::instant(s).unwrap_or_default()
}

fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// The visible text of an HTML fragment (tags dropped).
fn visible(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

const SESSION_ID: &str = "0193f6a2-1c2b-7d3e-9f00-123456789abc";

fn session(status: &str, seats_left: u64) -> Value {
    json!({
        "id": SESSION_ID, "offer_id": "0193f6a2-0000-7d3e-9f00-123456789abc", "offer_title": "Marchés publics : les bases",
        "provider_code": "caue77", "provider_name": "CAUE de Seine-et-Marne",
        "starts_at": "2027-01-12T08:30:00Z", "ends_at": "2027-01-12T11:30:00Z",
        "place": {"online": false, "commune_insee": "77284", "commune_name": "Meaux", "address": "12 rue de la Mairie", "online_link": null},
        "capacity": 10, "member_quota": 0, "registration_deadline": "2027-01-11T17:00:00Z", "status": status,
        "confirmed": 10 - seats_left, "waitlisted": 2, "seats_left": seats_left, "price_per_participant_cents": 12000,
        "cancel_reason": null, "attended": 0, "details": "Apporter <le code>"
    })
}

#[test]
fn a_session_s_date_reads_as_paris_reads_it() {
    assert_eq!(
        when("2027-01-12T08:30:00Z", "2027-01-12T11:30:00Z"),
        "mardi 12 janvier 2027, 9\u{a0}h\u{a0}30 – 12\u{a0}h\u{a0}30"
    );
    // Summer time: +2 h.
    assert_eq!(
        when("2027-06-01T07:00:00Z", "2027-06-01T14:15:00Z"),
        "mardi 1er juin 2027, 9\u{a0}h\u{a0}00 – 16\u{a0}h\u{a0}15"
    );
    assert_eq!(
        when("2027-01-12T08:30:00Z", "2027-01-13T11:30:00Z"),
        "mardi 12 janvier 2027, 9\u{a0}h\u{a0}30 – mercredi 13 janvier 2027, 12\u{a0}h\u{a0}30"
    );
    assert_eq!(when("n/a", ""), "Date non précisée");
    assert_eq!(when("2027-01-12T08:30:00Z", ""), "mardi 12 janvier 2027, 9\u{a0}h\u{a0}30");
}

#[test]
fn places_seats_statuses_and_prices_are_french() {
    let now = at("2027-01-01T10:00:00Z");
    assert_eq!(text::place(&session("scheduled", 3)), "12 rue de la Mairie, Meaux");
    assert_eq!(text::place(&json!({"place": {"online": true, "online_link": "https://visio.example/x"}})), "En ligne");
    assert_eq!(text::place(&json!({"place": {"online": false}})), "Lieu non précisé");
    assert_eq!(text::seats(&session("scheduled", 3), now), "3 places restantes");
    assert_eq!(text::seats(&session("scheduled", 1), now), "1 place restante");
    assert_eq!(text::seats(&session("scheduled", 0), now), "Complet — liste d'attente");
    assert_eq!(text::seats(&session("cancelled", 3), now), "Session annulée");
    assert_eq!(text::seats(&session("scheduled", 3), at("2027-01-11T17:00:00Z")), "Inscriptions closes");
    assert_eq!(text::fill(&session("scheduled", 3)), "7 / 10");
    assert_eq!(text::price(&session("scheduled", 3)), "120,00\u{a0}€ HT par participant présent");
    assert_eq!(text::price(&json!({"price_per_participant_cents": 0})), "Gratuit");
    let waitlisted = json!({"status": "waitlisted", "waitlist_position": 2, "session": {"status": "scheduled"}});
    assert_eq!(text::registration_status(&waitlisted), "Liste d'attente (position 2)");
    let came = json!({"status": "confirmed", "attended": true, "session": {"status": "held"}});
    let absent = json!({"status": "confirmed", "attended": false, "session": {"status": "held"}});
    assert_eq!(
        (text::registration_status(&came).as_str(), text::registration_status(&absent).as_str()),
        ("Présent", "Absent")
    );
    assert!(
        text::registration_badge(&came).contains("status-ok") && text::registration_badge(&came).contains(">Présent<")
    );
    for (status, words) in [("scheduled", "Programmée"), ("cancelled", "Annulée"), ("something", "Statut inconnu")] {
        assert_eq!(text::session_status(status), words);
    }
}

#[test]
fn paris_wall_clock_times_become_instants_across_both_switches() {
    let local = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap_or_default();
    assert_eq!(paris_to_utc(local("2027-01-12 09:30")).map(text::rfc3339), Ok("2027-01-12T08:30:00Z".to_owned()));
    assert_eq!(paris_to_utc(local("2027-06-01 09:00")).map(text::rfc3339), Ok("2027-06-01T07:00:00Z".to_owned()));
    // 28 March 2027: 2 h 30 does not exist; 31 October 2027: 2 h 30 happens twice (the first is taken).
    assert_eq!(paris_to_utc(local("2027-03-28 02:30")), Err(text::LocalTimeError::DoesNotExist));
    assert_eq!(paris_to_utc(local("2027-03-28 03:00")).map(text::rfc3339), Ok("2027-03-28T01:00:00Z".to_owned()));
    assert_eq!(paris_to_utc(local("2027-10-31 02:30")).map(text::rfc3339), Ok("2027-10-31T00:30:00Z".to_owned()));
    for (raw, expected) in [
        ("9:30", Some((9, 30))),
        ("09:30", Some((9, 30))),
        ("9 h 30", Some((9, 30))),
        ("9\u{a0}h\u{a0}30", Some((9, 30))),
        ("14h", Some((14, 0))),
    ] {
        assert_eq!(parse_time(raw), expected.and_then(|(h, m)| chrono::NaiveTime::from_hms_opt(h, m, 0)), "{raw}");
    }
    for bad in ["", "930", "25:00", "9:60", "9:3x", "midi"] {
        assert_eq!(parse_time(bad), None, "{bad}");
    }
}

#[test]
fn participants_are_read_row_by_row_and_checked() {
    let none = participants(&fields(&[])).err().unwrap_or_default();
    assert!(none.of("nom-1").is_some_and(|m| m.contains("au moins un participant")));
    let two = fields(&[
        ("nom-1", "Marie Dupont"),
        ("fonction-1", "Maire adjointe"),
        ("courriel-1", "m.dupont@meaux.fr"),
        ("nom-3", "Paul Martin"),
        ("fonction-3", "Secrétaire de mairie"),
        ("courriel-3", "p.martin@meaux.fr"),
    ]);
    let read = participants(&two).unwrap_or_default();
    assert_eq!(read.len(), 2);
    assert_eq!(
        read[1],
        json!({"name": "Paul Martin", "function": "Secrétaire de mairie", "email": "p.martin@meaux.fr"})
    );
    let partial = fields(&[
        ("nom-1", "Marie Dupont"),
        ("fonction-1", "Maire"),
        ("courriel-1", "m@meaux.fr"),
        ("nom-2", "Sans adresse"),
    ]);
    let errors = participants(&partial).err().unwrap_or_default();
    assert_eq!(errors.of("fonction-2"), Some("Le champ « Fonction du participant 2 » est obligatoire."));
    assert!(errors.of("courriel-2").is_some() && errors.of("nom-1").is_none());
    let bad = fields(&[("nom-1", "A"), ("fonction-1", "B"), ("courriel-1", "pas-une-adresse")]);
    assert!(
        participants(&bad)
            .err()
            .unwrap_or_default()
            .of("courriel-1")
            .is_some_and(|m| m.contains("adresse électronique valide"))
    );
}

fn schedule_form(extra: &[(&str, &str)]) -> Fields {
    let mut f = fields(&[
        ("offre", "0193f6a2-0000-7d3e-9f00-123456789abc"),
        ("jour", "12/01/2027"),
        ("debut", "09:30"),
        ("fin", "12:30"),
        ("modalite", "presentiel"),
        ("commune", "77284"),
        ("adresse", "Salle des fêtes"),
        ("capacite", "10"),
    ]);
    for (k, v) in extra {
        f.insert((*k).to_owned(), (*v).to_owned());
    }
    f
}

#[test]
fn a_session_to_schedule_is_read_in_paris_time_and_checked() {
    let now = at("2027-01-01T10:00:00Z");
    let plan = schedule(&schedule_form(&[("prix", "120,00"), ("quota", "3"), ("details", "Programme")]), now);
    let plan = plan.map_err(|e| format!("{:?}", e.0)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.offer_id, "0193f6a2-0000-7d3e-9f00-123456789abc");
    assert_eq!(plan.body["starts_at"], "2027-01-12T08:30:00Z");
    assert_eq!(plan.body["ends_at"], "2027-01-12T11:30:00Z");
    assert_eq!(
        plan.body["place"],
        json!({"online": false, "commune_insee": "77284", "address": "Salle des fêtes", "online_link": ""})
    );
    assert_eq!((plan.body["capacity"].as_u64(), plan.body["member_quota"].as_u64()), (Some(10), Some(3)));
    assert_eq!(plan.body["price_per_participant_cents"], 12000);
    assert!(plan.body.get("registration_deadline").is_none(), "no deadline typed: the service's default (the start)");
    // A deadline day alone: 23 h 59 that day, or the start on the session's day.
    let before = schedule(&schedule_form(&[("limite-jour", "2027-01-10")]), now).map(|p| p.body).unwrap_or_default();
    assert_eq!(before["registration_deadline"], "2027-01-10T22:59:00Z");
    let same_day = schedule(&schedule_form(&[("limite-jour", "12/01/2027")]), now).map(|p| p.body).unwrap_or_default();
    assert_eq!(same_day["registration_deadline"], "2027-01-12T08:30:00Z");
    let online = schedule(&schedule_form(&[("modalite", "en-ligne"), ("lien", "https://visio.example/salle")]), now);
    assert_eq!(
        online.map(|p| p.body["place"].clone()).unwrap_or_default()["online_link"],
        "https://visio.example/salle"
    );

    let errors = |extra: &[(&str, &str)]| schedule(&schedule_form(extra), now).err().unwrap_or_default();
    assert!(errors(&[("modalite", "en-ligne")]).of("lien").is_some(), "online needs a link");
    assert!(errors(&[("commune", "")]).of("commune").is_some());
    assert!(errors(&[("adresse", "")]).of("adresse").is_some());
    assert!(errors(&[("jour", "31/12/2026")]).of("jour").is_some_and(|m| m.contains("futur")));
    assert!(errors(&[("jour", "2027-02-30")]).of("jour").is_some_and(|m| m.contains("jj/mm/aaaa")));
    assert!(errors(&[("fin", "09:00")]).of("fin").is_some_and(|m| m.contains("suivre")));
    assert!(errors(&[("debut", "neuf heures")]).of("debut").is_some_and(|m| m.contains("hh:mm")));
    assert!(errors(&[("quota", "11")]).of("quota").is_some());
    assert!(errors(&[("capacite", "0")]).of("capacite").is_some());
    assert!(errors(&[("prix", "douze")]).of("prix").is_some());
    assert!(
        errors(&[("limite-jour", "13/01/2027"), ("limite-heure", "10:00")])
            .of("limite-jour")
            .is_some_and(|m| m.contains("précéder"))
    );
    assert!(errors(&[("offre", "../x")]).of("offre").is_some());
    assert!(
        errors(&[("jour", "28/03/2027"), ("debut", "02:30"), ("fin", "04:00")])
            .of("debut")
            .is_some_and(|m| m.contains("n'existe pas"))
    );
    assert_eq!(errors(&[("jour", "")]).0.iter().filter(|e| e.field == "jour").count(), 1, "one error for the day");
}

#[test]
fn an_offer_s_sessions_link_to_their_page_and_offer_registration_to_members_only() {
    let now = at("2027-01-01T10:00:00Z");
    let sessions = [session("scheduled", 3), session("scheduled", 0)];
    let member = view::offer_sessions(&sessions, true, now);
    assert!(
        member.contains("<caption>Sessions à venir</caption>")
            && member.contains(r#"<th scope="col">Inscription</th>"#)
    );
    assert!(
        member.contains(&format!(r##"<a class="button" href="/sessions/{SESSION_ID}#inscription">S'inscrire"##)),
        "{member}"
    );
    assert!(member.contains(&format!(
        "<a href=\"/sessions/{SESSION_ID}\">mardi 12 janvier 2027, 9\u{a0}h\u{a0}30 – 12\u{a0}h\u{a0}30</a>"
    )));
    assert!(member.contains("3 places restantes") && member.contains("Complet — liste d&#39;attente"));
    assert!(!visible(&member).contains(SESSION_ID), "no id in the visible text");
    let anyone = view::offer_sessions(&sessions, false, now);
    assert!(!anyone.contains("S'inscrire") && !anyone.contains("Inscription</th>"));
    let closed = view::offer_sessions(&sessions, true, at("2027-01-11T18:00:00Z"));
    assert!(!closed.contains("S'inscrire<") && closed.contains("<td>Inscriptions closes</td>"));
    assert!(view::offer_sessions(&[], true, now).contains("Aucune session"));
}

#[test]
fn a_session_s_page_shows_its_facts_and_a_registration_form_of_five_participants() {
    let now = at("2027-01-01T10:00:00Z");
    let facts = view::facts(&session("scheduled", 3), now);
    for expected in [
        "Marchés publics : les bases",
        "CAUE de Seine-et-Marne",
        "12 rue de la Mairie, Meaux",
        "3 places restantes",
        "11 janvier 2027 à 18 h 00",
        "Apporter &lt;le code&gt;",
        "Programmée",
    ] {
        assert!(facts.contains(expected), "{expected}: {facts}");
    }
    let mut cancelled = session("cancelled", 3);
    cancelled["cancel_reason"] = json!("Intervenant malade");
    assert!(view::facts(&cancelled, now).contains("<h2>Session annulée</h2><p>Motif : Intervenant malade</p>"));
    let mut online = session("scheduled", 3);
    online["place"] = json!({"online": true, "online_link": "https://visio.example/s"});
    assert!(view::facts(&online, now).contains(r#"En ligne : <a href="https://visio.example/s">"#));
    let mut errors = Errors::default();
    errors.add("courriel-1", "Adresse", "Saisissez une adresse électronique valide.");
    let form = view::registration_form(SESSION_ID, "jeton", "cle-1", &fields(&[("nom-1", "<Marie>")]), &errors);
    assert_eq!(form.matches("<fieldset>").count(), input::MAX_PARTICIPANTS);
    assert!(form.contains(&format!(r#"action="/sessions/{SESSION_ID}/inscription""#)));
    assert!(form.contains(r#"name="_csrf" value="jeton""#) && form.contains(r#"name="cle" value="cle-1""#));
    assert!(form.contains(r#"value="&lt;Marie&gt;""#) && form.contains(crate::forms::SUMMARY_OPEN));
    assert!(form.contains(r#"id="nom-1" name="nom-1" value="&lt;Marie&gt;" autocomplete="off" required"#), "{form}");
    assert!(
        !form.contains(r#"id="nom-2" name="nom-2" value="" autocomplete="off" required"#),
        "only the first is required"
    );
}

#[test]
fn the_confirmation_says_who_is_confirmed_and_who_waits_at_which_place() {
    let html = view::confirmation(&[
        json!({"status": "confirmed", "participant": {"name": "Marie Dupont", "function": "Maire adjointe"}}),
        json!({"status": "waitlisted", "waitlist_position": 3, "participant": {"name": "Paul <Martin>", "function": ""}}),
    ]);
    assert!(html.contains("<h2>Inscriptions confirmées</h2><ul><li>Marie Dupont (Maire adjointe)</li></ul>"), "{html}");
    assert!(html.contains("<li>Paul &lt;Martin&gt; — position 3</li>"), "{html}");
    let all_in = view::confirmation(&[json!({"status": "confirmed", "participant": {"name": "A"}})]);
    assert!(!all_in.contains("liste d'attente"));
}

fn registration(id: &str, status: &str, session_status: &str, starts_at: &str, attended: bool) -> Value {
    json!({"id": id, "session_id": SESSION_ID, "status": status, "attended": attended, "waitlist_position": 0,
        "participant": {"name": format!("Participant {id}"), "function": "Élu", "email": "e@meaux.fr"},
        "session": {"id": SESSION_ID, "offer_title": "Formation", "status": session_status, "starts_at": starts_at,
            "ends_at": starts_at, "place": {"online": true}}})
}

#[test]
fn my_registrations_split_coming_and_past_with_their_actions() {
    let now = at("2027-01-01T10:00:00Z");
    let list = [
        registration("r-venir", "confirmed", "scheduled", "2027-02-01T09:00:00Z", false),
        registration("r-annulee", "cancelled", "scheduled", "2027-02-02T09:00:00Z", false),
        registration("r-present", "confirmed", "held", "2026-12-01T09:00:00Z", true),
        registration("r-absent", "confirmed", "held", "2026-11-01T09:00:00Z", false),
    ];
    let html = mine::body(&list, "jeton", now);
    let (coming, past) = html.split_at(html.find("<h2>Passées ou annulées</h2>").unwrap_or(0));
    assert!(coming.contains("r-venir/annuler") && coming.contains("Participant r-venir"));
    assert!(
        coming.contains("r-annulee") && !coming.contains("r-annulee/annuler"),
        "a cancelled one cannot be cancelled"
    );
    assert!(past.contains("/inscriptions/r-present/attestation") && !past.contains("r-absent/attestation"));
    assert!(!past.contains("/annuler"), "past sessions cannot be cancelled");
    assert!(past.find("r-present") < past.find("r-absent"), "latest first");
    assert!(past.contains(">Présent<") && past.contains(">Absent<"));
    assert_eq!(
        html.matches(&format!(r#"action="/sessions/{SESSION_ID}/avis""#)).count(),
        1,
        "one rating form per held session attended"
    );
    assert!(html.contains(r#"name="note""#) && html.contains(r#"<option value="5">5 sur 5</option>"#));
    assert!(
        html.contains(r#"action="/inscriptions/agenda""#) && html.contains(r#"action="/inscriptions/agenda/revoquer""#)
    );
    assert_eq!(html.matches(r#"name="_csrf" value="jeton""#).count(), 3);
    assert!(mine::body(&[], "jeton", now).contains("Aucune inscription à une session à venir."));
    assert_eq!(mine::score(&fields(&[("note", "4")])), Some(4));
    assert_eq!(mine::score(&fields(&[("note", "6")])), None);
    let feed = view::feed_issued("https://id77.example/v1/calendar-feeds/abc\"def");
    assert!(
        feed.contains(r#"value="https://id77.example/v1/calendar-feeds/abc&quot;def""#)
            && feed.contains("Comment s'abonner")
    );
}

#[test]
fn attendance_is_a_checkbox_per_confirmed_participant_and_forged_ids_are_ignored() {
    let mut held = session("scheduled", 3);
    held["status"] = json!("scheduled");
    let registrations = [
        json!({"id": "a1", "status": "confirmed", "attended": true, "member_name": "Meaux", "participant": {"name": "Marie", "function": "Maire"}}),
        json!({"id": "a2", "status": "confirmed", "attended": false, "member_name": "Provins", "participant": {"name": "Paul", "function": "DGS"}}),
        json!({"id": "a3", "status": "waitlisted", "participant": {"name": "Zoé", "function": "Agent"}}),
    ];
    let form = manage_view::attendance_form(&held, &registrations, "jeton");
    assert!(form.contains(r#"<input type="checkbox" id="present-a1" name="present-a1" value="1" checked><label for="present-a1">Marie"#), "{form}");
    assert!(form.contains(r#"name="present-a2" value="1">"#) && !form.contains("present-a3"));
    assert!(
        form.contains(&format!(r#"action="/sessions/{SESSION_ID}/presences""#)) && form.contains(r#"value="jeton""#)
    );
    let sent = fields(&[("present-a2", "1"), ("present-a3", "1"), ("present-autre", "1"), ("_csrf", "jeton")]);
    assert_eq!(manage_view::attended_ids(&sent, &registrations), ["a2"]);
    assert!(manage_view::attendance_form(&held, &registrations[2..], "jeton").contains("Aucun participant confirmé"));
    let table = manage_view::participants_table(&registrations);
    assert!(
        table.contains("<caption>Participants inscrits</caption>")
            && table.contains("Provins")
            && table.contains("Liste d&#39;attente")
    );
}

#[test]
fn my_sessions_are_split_and_show_their_fill() {
    let now = at("2027-01-12T10:00:00Z");
    let mut later = session("scheduled", 3);
    later["starts_at"] = json!("2027-02-01T09:00:00Z");
    let (coming, to_record, past) =
        manage_view::split(&[session("scheduled", 3), later.clone(), session("held", 0), session("cancelled", 0)], now);
    assert_eq!((coming.len(), to_record.len(), past.len()), (1, 1, 2));
    let table = manage_view::sessions_table("Sessions", &coming, true);
    assert!(table.contains(r#"<td class="num">7 / 10</td><td class="num">2</td>"#), "{table}");
    assert!(
        table.contains("<td>CAUE de Seine-et-Marne</td>")
            && table.contains(&format!(r#"<a href="/sessions/{SESSION_ID}">"#))
    );
    assert!(!manage_view::sessions_table("Sessions", &coming, false).contains("Partenaire"));
    let page = crate::layout::tests::futures_body(crate::layout::page(
        &crate::layout::tests::ctx(Some("provider_agent"), "/sessions"),
        "Mes sessions",
        &table,
    ));
    assert!(page.contains(r#"<td data-label="Inscrits" class="num">7 / 10</td>"#), "cells labelled for phones");
    let cancel = manage_view::cancel_form(&session("scheduled", 3), "jeton", &Fields::new(), &Errors::default());
    assert!(
        cancel.contains(&format!(r#"action="/sessions/{SESSION_ID}/annuler""#))
            && cancel.contains("Motif de l&#39;annulation")
    );
}

#[test]
fn the_schedule_form_offers_the_provider_s_offers_the_communes_and_both_modes() {
    let offers = vec![("o1".to_owned(), "Marchés publics".to_owned())];
    let communes = vec![("77284".to_owned(), "Meaux".to_owned()), ("77288".to_owned(), "Melun".to_owned())];
    let f = fields(&[("modalite", "en-ligne"), ("commune", "77288")]);
    let html = manage_view::schedule_form(&offers, &communes, "jeton", "cle", &f, &Errors::default());
    assert!(html.contains(r#"<option value="o1">Marchés publics</option>"#));
    assert!(html.contains(r#"<option value="77288" selected>Melun</option>"#));
    assert!(html.contains(r#"id="modalite-en-ligne" name="modalite" value="en-ligne" checked"#));
    assert!(!html.contains(r#"value="presentiel" checked"#));
    assert!(html.contains(r#"action="/sessions/nouvelle""#) && html.contains(r#"name="cle" value="cle""#));
    assert!(html.contains("Format : jj/mm/aaaa") && html.contains("hh:mm") && html.contains("€ HT"));
}

#[test]
fn fill_rates_name_epcis_and_give_rates_in_percent() {
    let stats = json!({
        "overall": {"key": "", "label": "", "sessions": 3, "seats": 30, "confirmed": 20, "attended": 15},
        "by_offer": [{"key": "caue-marches", "label": "Marchés publics", "sessions": 2, "seats": 20, "confirmed": 20, "attended": 10}],
        "by_epci": [
            {"key": "247700123", "label": "", "sessions": 1, "seats": 10, "confirmed": 4, "attended": 0},
            {"key": "", "label": "", "sessions": 1, "seats": 0, "confirmed": 0, "attended": 0}
        ]
    });
    let epcis: HashMap<String, String> = [("247700123".to_owned(), "CA du Pays de Meaux".to_owned())].into();
    let html = manage_view::fill_rates(&stats, &epcis);
    assert!(html.contains("<th scope=\"row\">Toutes les sessions</th><td class=\"num\">3</td><td class=\"num\">30</td><td class=\"num\">20</td><td class=\"num\">67\u{a0}%</td><td class=\"num\">15</td><td class=\"num\">75\u{a0}%</td>"), "{html}");
    assert!(html.contains("<th scope=\"row\">Marchés publics</th>") && html.contains("100\u{a0}%"));
    assert!(html.contains("<th scope=\"row\">CA du Pays de Meaux</th>") && !html.contains("247700123"));
    assert!(html.contains("<th scope=\"row\">Hors intercommunalité</th>") && html.contains("<td class=\"num\">—</td>"));
    assert!(manage_view::fill_rates(&json!({}), &HashMap::new()).contains("aucune session sur la période"));
    let today = NaiveDate::from_ymd_opt(2027, 1, 1).unwrap_or_default();
    let (from, to) = super::stats::period(&fields(&[]), today).unwrap_or_default();
    assert_eq!((from.to_string(), to.to_string()), ("2026-10-03".to_owned(), "2027-04-01".to_owned()));
    assert!(super::stats::period(&fields(&[("du", "02/01/2027"), ("au", "01/01/2027")]), today).is_err());
}

#[test]
fn lists_are_read_whichever_way_they_are_paged_and_refusals_speak_french() {
    let page = json!({"items": [{"id": "a"}], "next_cursor": "c+/="});
    assert_eq!(list_items(&page).len(), 1);
    assert_eq!(next_page(&page).as_deref(), Some("cursor=c%2B%2F%3D"));
    let contract = json!({"registrations": [{"id": "a"}, {"id": "b"}], "next_page_token": "t"});
    assert_eq!(list_items(&contract).len(), 2);
    assert_eq!(next_page(&contract).as_deref(), Some("page_token=t"));
    assert_eq!(next_page(&json!({"items": [], "next_cursor": null})), None);
    let error = |kind: &str, status| ApiError { status, kind: kind.into(), detail: String::new(), errors: vec![] };
    assert!(problem(&error("registration-closed", 409)).contains("inscriptions à cette session sont closes"));
    assert!(problem(&error("quota-reached", 409)).contains("nombre de places"));
    assert!(problem(&error("member-not-active", 409)).contains("adhésion"), "the portal's common wording otherwise");
    assert_eq!(sort_key("Écuelles"), "ecuelles");
    assert!(sort_key("Écuelles") < sort_key("Fontainebleau"));
}

#[test]
fn a_place_without_its_commune_s_name_gets_it_from_the_directory() {
    let communes: HashMap<String, String> = [("77379".to_owned(), "Provins".to_owned())].into();
    let mut session = json!({"place": {"online": false, "commune_insee": "77379", "commune_name": "", "address": "Salle du conseil"}});
    name_commune(&mut session, &communes);
    assert_eq!(text::place(&session), "Salle du conseil, Provins");
    let mut named =
        json!({"place": {"online": false, "commune_insee": "77379", "commune_name": "Provins-Ville", "address": "x"}});
    name_commune(&mut named, &communes);
    assert_eq!(named["place"]["commune_name"], "Provins-Ville", "a name the API gave is kept");
    let mut unknown =
        json!({"place": {"online": false, "commune_insee": "77999", "commune_name": null, "address": "x"}});
    name_commune(&mut unknown, &communes);
    assert_eq!(text::place(&unknown), "x");
}

#[test]
fn the_sessions_screens_are_in_the_menus_and_described() {
    use crate::layout::{description, nav_for};
    let hrefs = |role| nav_for(Some(role)).into_iter().map(|(h, _)| h).collect::<Vec<_>>();
    assert!(hrefs("member_user").contains(&"/inscriptions") && hrefs("member_admin").contains(&"/inscriptions"));
    assert!(hrefs("provider_agent").contains(&"/sessions") && !hrefs("provider_agent").contains(&"/inscriptions"));
    assert!(hrefs("coordinator").contains(&"/coordination/sessions"));
    for path in ["/sessions", "/sessions/nouvelle", "/inscriptions", "/coordination/sessions"] {
        assert!(description(path).contains("sessions de sensibilisation"), "{path}");
    }
    assert!(!description("/coordination/statistiques").contains("sessions de sensibilisation"));
}
