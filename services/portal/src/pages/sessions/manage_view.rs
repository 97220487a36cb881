//! The HTML of the provider's and the coordinator's screens, as pure functions of the API's answers: « Mes
//! sessions », the schedule form, the participants, the attendance form, the cancellation, the fill rates.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::input::{self, MAX_CAPACITY};
use super::text;
use super::view::session_href;
use crate::forms::{self, Errors, Fields, Input};
use crate::fr;
use crate::html::{esc, url_component};
use crate::pages::common::{s, safe_id};

/// The management list: offer (a link to the session), date, place, fill « 7 / 10 », waiting list, status; the
/// coordinator also sees the provider.
pub fn sessions_table(caption: &str, sessions: &[Value], with_provider: bool) -> String {
    let mut out = format!(
        r#"<table><caption>{}</caption><thead><tr><th scope="col">Formation</th>{}<th scope="col">Date</th><th scope="col">Lieu</th><th scope="col" class="num">Inscrits</th><th scope="col" class="num">Liste d'attente</th><th scope="col">Statut</th></tr></thead><tbody>"#,
        esc(caption),
        if with_provider { r#"<th scope="col">Partenaire</th>"# } else { "" }
    );
    for session in sessions {
        let title = esc(if s(session, "offer_title").is_empty() { "Session" } else { s(session, "offer_title") });
        let head = match session_href(s(session, "id")) {
            Some(href) => format!(r#"<a href="{href}">{title}</a>"#),
            None => title,
        };
        let provider = if with_provider {
            format!(
                "<td>{}</td>",
                esc(if s(session, "provider_name").is_empty() { "—" } else { s(session, "provider_name") })
            )
        } else {
            String::new()
        };
        let _ = write!(
            out,
            r#"<tr><th scope="row">{head}</th>{provider}<td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td></tr>"#,
            esc(&text::when(s(session, "starts_at"), s(session, "ends_at"))),
            esc(&text::place(session)),
            esc(&text::fill(session)),
            fr::count(text::number(session, "waitlisted")),
            text::session_badge(s(session, "status")),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The three parts of « Mes sessions »: to come, started but attendance not recorded yet, and the others (held
/// or cancelled), each in the API's order.
pub fn split(sessions: &[Value], now: DateTime<Utc>) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let (mut coming, mut to_record, mut past) = (Vec::new(), Vec::new(), Vec::new());
    for session in sessions {
        match s(session, "status") {
            "scheduled" if text::started(session, now) => to_record.push(session.clone()),
            "scheduled" => coming.push(session.clone()),
            _ => past.push(session.clone()),
        }
    }
    (coming, to_record, past)
}

/// The participants of a session: name, function, collectivité, e-mail, status.
pub fn participants_table(registrations: &[Value]) -> String {
    if registrations.is_empty() {
        return "<p>Aucune inscription pour le moment.</p>".to_owned();
    }
    let mut out = String::from(
        r#"<table><caption>Participants inscrits</caption><thead><tr><th scope="col">Participant</th><th scope="col">Fonction</th><th scope="col">Collectivité</th><th scope="col">Adresse électronique</th><th scope="col">Statut</th></tr></thead><tbody>"#,
    );
    for r in registrations {
        let p = &r["participant"];
        let email = s(p, "email");
        let _ = write!(
            out,
            r#"<tr><th scope="row">{}</th><td>{}</td><td>{}</td><td><a href="mailto:{}">{}</a></td><td>{}</td></tr>"#,
            esc(s(p, "name")),
            esc(s(p, "function")),
            esc(if s(r, "member_name").is_empty() { "—" } else { s(r, "member_name") }),
            esc(email),
            esc(email),
            text::registration_badge(r),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The checkbox field of one confirmed registration in the attendance form.
pub fn present_field(registration_id: &str) -> Option<String> {
    safe_id(registration_id).map(|id| format!("present-{id}"))
}

/// The attendance form, once the session has started: a checkbox per confirmed participant (ticked when already
/// recorded as present).
pub fn attendance_form(session: &Value, registrations: &[Value], csrf: &str) -> String {
    let Some(href) = session_href(s(session, "id")) else { return String::new() };
    let confirmed: Vec<&Value> = registrations.iter().filter(|r| s(r, "status") == "confirmed").collect();
    if confirmed.is_empty() {
        return "<h2 id=\"presences\">Présences</h2><p>Aucun participant confirmé : il n'y a pas de présence à saisir.</p>".to_owned();
    }
    let mut boxes = String::new();
    for r in confirmed {
        let Some(name) = present_field(s(r, "id")) else { continue };
        let checked = if r["attended"].as_bool().unwrap_or(false) { " checked" } else { "" };
        let p = &r["participant"];
        let _ = write!(
            boxes,
            r#"<div class="checkbox"><input type="checkbox" id="{name}" name="{name}" value="1"{checked}><label for="{name}">{} <span class="small">({}, {})</span></label></div>"#,
            esc(s(p, "name")),
            esc(s(p, "function")),
            esc(s(r, "member_name")),
        );
    }
    let done = s(session, "status") == "held";
    format!(
        r#"<h2 id="presences">Présences</h2><p>{intro}</p><form method="post" action="{href}/presences" class="form">{csrf}<fieldset><legend>Participants présents</legend>{boxes}</fieldset><button type="submit">Enregistrer les présences</button></form>"#,
        intro = if done {
            "Les présences sont enregistrées ; vous pouvez les corriger. Les participants présents reçoivent une attestation de présence."
        } else {
            "Cochez les participants venus à la session. Chacun recevra une attestation de présence ; les autres sont notés absents."
        },
        csrf = forms::csrf(csrf),
    )
}

/// The ids of the registrations ticked present in a submitted attendance form, among the session's confirmed
/// ones (a field for any other id is ignored).
pub fn attended_ids(f: &Fields, registrations: &[Value]) -> Vec<String> {
    registrations
        .iter()
        .filter(|r| s(r, "status") == "confirmed")
        .filter_map(|r| {
            let field = present_field(s(r, "id"))?;
            matches!(forms::value(f, &field), "1" | "on").then(|| s(r, "id").to_owned())
        })
        .collect()
}

/// The cancellation form of a scheduled session (a reason, sent to every participant).
pub fn cancel_form(session: &Value, csrf: &str, f: &Fields, errors: &Errors) -> String {
    let Some(href) = session_href(s(session, "id")) else { return String::new() };
    format!(
        r#"<h2 id="annulation">Annuler la session</h2><p>Chaque participant inscrit est prévenu par courriel, avec le motif.</p><form method="post" action="{href}/annuler" class="form" novalidate>{csrf}{reason}<button type="submit" class="secondary">Annuler la session</button></form>"#,
        csrf = forms::csrf(csrf),
        reason = forms::field(
            "motif",
            "Motif de l'annulation",
            Input::TextArea { rows: 3 },
            f.get("motif").map(String::as_str).unwrap_or(""),
            true,
            "Par exemple : intervenant indisponible, nombre d'inscrits insuffisant.",
            errors
        ),
    )
}

/// The schedule form: offer (the provider's awareness and training offers), day and times in Paris, place (in
/// person in a commune of the directory with an address, or online with a link), seats, quota, deadline, price
/// per participant (€ HT) and details.
pub fn schedule_form(
    offers: &[(String, String)],
    communes: &[(String, String)],
    csrf: &str,
    key: &str,
    f: &Fields,
    errors: &Errors,
) -> String {
    let text = || Input::Text { kind: "text", autocomplete: "off" };
    let mut offer_options = vec![(String::new(), "Choisir une offre".to_owned())];
    offer_options.extend(offers.iter().cloned());
    let mut commune_options = vec![(String::new(), "Choisir une commune".to_owned())];
    commune_options.extend(communes.iter().cloned());
    let mode = forms::value(f, input::MODE.0);
    let radio = |value: &str, label: &str| {
        let id = format!("modalite-{value}");
        format!(
            r#"<div class="checkbox"><input type="radio" id="{id}" name="modalite" value="{value}"{}{}><label for="{id}">{label}</label></div>"#,
            if mode == value || (mode.is_empty() && value == "presentiel") { " checked" } else { "" },
            if errors.of(input::MODE.0).is_some() { r#" aria-invalid="true""# } else { "" },
        )
    };
    let field = |(id, label): (&str, &str), input: Input<'_>, required: bool, hint: &str| {
        forms::field(id, label, input, forms::value(f, id), required, hint, errors)
    };
    let mode_error = match errors.of(input::MODE.0) {
        Some(message) => format!(
            r#"<p class="field-error" id="modalite-erreur"><span class="visually-hidden">Erreur : </span>{}</p>"#,
            esc(message)
        ),
        None => String::new(),
    };
    format!(
        r#"{summary}<form method="post" action="/sessions/nouvelle" class="form" novalidate>{csrf}
{offer}
<fieldset><legend>Date et horaires (heure de Paris)</legend>{day}{start}{end}</fieldset>
<fieldset id="modalite"><legend>Lieu</legend>{mode_error}{in_person}{online}{commune}{address}{link}</fieldset>
<fieldset><legend>Places</legend>{capacity}{quota}</fieldset>
<fieldset><legend>Inscriptions</legend>{deadline_day}{deadline_time}</fieldset>
{price}{details}<input type="hidden" name="cle" value="{key}">
<button type="submit">Programmer la session</button></form>"#,
        summary = forms::summary(errors),
        csrf = forms::csrf(csrf),
        key = esc(key),
        offer = field(
            input::OFFER,
            Input::Select(&offer_options),
            true,
            "Les offres de sensibilisation et de formation de votre organisme."
        ),
        day = field(input::DAY, Input::Text { kind: "date", autocomplete: "off" }, true, fr::DATE_HINT),
        start = field(input::START, text(), true, "Format : hh:mm, par exemple 09:30."),
        end = field(input::END, text(), true, "Format : hh:mm, par exemple 12:30."),
        in_person = radio("presentiel", "En présentiel, dans une commune de Seine-et-Marne"),
        commune = field(input::COMMUNE, Input::Select(&commune_options), false, "Pour une session en présentiel."),
        address = field(input::ADDRESS, text(), false, "Pour une session en présentiel : salle, numéro et rue."),
        online = radio("en-ligne", "En ligne"),
        link = field(input::LINK, text(), false, "Pour une session en ligne : communiqué aux seuls inscrits."),
        capacity = field(
            input::CAPACITY,
            text(),
            true,
            &format!("Un nombre entier de 1 à {}.", fr::count(u64::from(MAX_CAPACITY)))
        ),
        quota = field(
            input::QUOTA,
            text(),
            false,
            "Facultatif : le nombre de participants au plus par collectivité (vide ou 0 : pas de limite)."
        ),
        deadline_day = field(
            input::DEADLINE_DAY,
            Input::Text { kind: "date", autocomplete: "off" },
            false,
            "Facultatif (par défaut, le début de la session). Format : jj/mm/aaaa."
        ),
        deadline_time = field(
            input::DEADLINE_TIME,
            text(),
            false,
            "Facultatif, hh:mm (par défaut 23:59, ou l'heure de début le jour même)."
        ),
        price = field(
            input::PRICE,
            text(),
            false,
            "Facultatif : laissez vide pour une session gratuite. Facturé par participant présent, par exemple 120,00."
        ),
        details = field(
            input::DETAILS,
            Input::TextArea { rows: 5 },
            false,
            "Programme, public visé, ce qu'il faut apporter."
        ),
    )
}

/// One fill rate's row values: sessions, seats, confirmed, fill rate and attendance rate (as « 72 % »).
fn rate_cells(rate: &Value) -> String {
    let n = |key: &str| rate[key].as_u64().unwrap_or(0);
    let percent = |part: u64, whole: u64| match (part * 100 + whole / 2).checked_div(whole) {
        Some(rate) => format!("{rate}\u{a0}%"),
        None => "—".to_owned(),
    };
    format!(
        r#"<td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td>"#,
        fr::count(n("sessions")),
        fr::count(n("seats")),
        fr::count(n("confirmed")),
        percent(n("confirmed"), n("seats")),
        fr::count(n("attended")),
        percent(n("attended"), n("confirmed")),
    )
}

const RATE_HEADERS: &str = r#"<th scope="col" class="num">Sessions</th><th scope="col" class="num">Places</th><th scope="col" class="num">Inscrits confirmés</th><th scope="col" class="num">Taux de remplissage</th><th scope="col" class="num">Présents</th><th scope="col" class="num">Taux de présence</th>"#;

/// One table of fill rates, each row labelled by `label` (the offer's title, the EPCI's name).
fn rates_table(caption: &str, header: &str, rows: &[Value], label: impl Fn(&Value) -> String) -> String {
    if rows.is_empty() {
        return format!("<p>{} : aucune session sur la période.</p>", esc(caption));
    }
    let mut out = format!(
        r#"<table><caption>{}</caption><thead><tr><th scope="col">{}</th>{RATE_HEADERS}</tr></thead><tbody>"#,
        esc(caption),
        esc(header)
    );
    for row in rows {
        let _ = write!(out, r#"<tr><th scope="row">{}</th>{}</tr>"#, esc(&label(row)), rate_cells(row));
    }
    out.push_str("</tbody></table>");
    out
}

/// The coordinator's fill rates: overall, by offer and by EPCI (EPCIs by name: `epcis`, by SIREN, as the statistics
/// page resolves them; the API's label, else « Hors intercommunalité » for an empty key).
pub fn fill_rates(stats: &Value, epcis: &HashMap<String, String>) -> String {
    let list = |key: &str| stats[key].as_array().map(Vec::as_slice).unwrap_or(&[]).to_vec();
    let mut out = format!(
        r#"<h2>Vue d'ensemble</h2><table><caption>Toutes les sessions de la période</caption><thead><tr><th scope="col">Ensemble</th>{RATE_HEADERS}</tr></thead><tbody><tr><th scope="row">Toutes les sessions</th>{}</tr></tbody></table><h2>Par offre</h2>"#,
        rate_cells(&stats["overall"])
    );
    out.push_str(&rates_table("Remplissage par offre", "Offre", &list("by_offer"), |row| {
        match s(row, "label").trim() {
            "" => "Offre sans titre".to_owned(),
            label => label.to_owned(),
        }
    }));
    out.push_str("<h2>Par intercommunalité</h2>");
    out.push_str(&rates_table(
        "Inscriptions par intercommunalité (EPCI) des collectivités inscrites",
        "Intercommunalité",
        &list("by_epci"),
        |row| match (epcis.get(s(row, "key")), s(row, "label").trim(), s(row, "key")) {
            (Some(name), _, _) => name.clone(),
            (None, "", "") => "Hors intercommunalité".to_owned(),
            (None, "", _) => "Intercommunalité non renseignée".to_owned(),
            (None, label, _) => label.to_owned(),
        },
    ));
    out
}

/// Where the management pages send back to after an action (the session's page, at `anchor`).
pub fn back_to(session_id: &str, anchor: &str) -> String {
    match safe_id(session_id) {
        Some(id) => format!("/sessions/{}{anchor}", url_component(id)),
        None => "/sessions".to_owned(),
    }
}
