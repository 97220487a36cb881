//! The HTML of sessions, as pure functions of the API's answers (tested without a gateway): the offer page's list,
//! a session's facts, the registration form and its confirmation, « Mes inscriptions ».

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::input::{MAX_PARTICIPANTS, participant_ids};
use super::text;
use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, url_component};
use crate::pages::common::{s, safe_id};

/// `/sessions/{id}`: a session's page (its id checked first; `None` for an id that cannot be one).
pub fn session_href(session_id: &str) -> Option<String> {
    safe_id(session_id).map(|id| format!("/sessions/{}", url_component(id)))
}

/// A session's date, linked to its page.
fn date_link(session: &Value) -> String {
    let when = esc(&text::when(s(session, "starts_at"), s(session, "ends_at")));
    match session_href(s(session, "id")) {
        Some(href) => format!(r#"<a href="{href}">{when}</a>"#),
        None => when,
    }
}

/// The upcoming sessions of an offer, for its page: date (a link to the session), place, seats, and a
/// « S'inscrire » link for a member's user while registrations are open.
pub fn offer_sessions(sessions: &[Value], can_register: bool, now: DateTime<Utc>) -> String {
    if sessions.is_empty() {
        return "<p>Aucune session n'est programmée pour le moment.</p>".to_owned();
    }
    let mut out = format!(
        r#"<table><caption>Sessions à venir</caption><thead><tr><th scope="col">Date</th><th scope="col">Lieu</th><th scope="col">Places</th>{}</tr></thead><tbody>"#,
        if can_register { r#"<th scope="col">Inscription</th>"# } else { "" }
    );
    for session in sessions {
        let register = if !can_register {
            String::new()
        } else if s(session, "status") == "scheduled" && !text::registration_closed(session, now) {
            match session_href(s(session, "id")) {
                Some(href) => format!(
                    r##"<td><a class="button" href="{href}#inscription">S'inscrire<span class="visually-hidden"> à la session du {}</span></a></td>"##,
                    esc(&text::when(s(session, "starts_at"), s(session, "ends_at")))
                ),
                None => "<td>—</td>".to_owned(),
            }
        } else {
            "<td>Inscriptions closes</td>".to_owned()
        };
        let _ = write!(
            out,
            r#"<tr><th scope="row">{}</th><td>{}</td><td>{}</td>{register}</tr>"#,
            date_link(session),
            esc(&text::place(session)),
            esc(&text::seats(session, now)),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// A session's facts (`<dl>`): offer, provider, date, place (the online link when the API gave it), seats,
/// deadline, price, status, and its programme.
pub fn facts(session: &Value, now: DateTime<Utc>) -> String {
    let offer = match safe_id(s(session, "offer_id")) {
        Some(id) => format!(r#"<a href="/offres/{}">{}</a>"#, url_component(id), esc(s(session, "offer_title"))),
        None => esc(s(session, "offer_title")),
    };
    let link = s(&session["place"], "online_link").trim();
    let place = if session["place"]["online"].as_bool().unwrap_or(false) && !link.is_empty() {
        format!(r#"En ligne : <a href="{0}">{0}</a>"#, esc(link))
    } else {
        esc(&text::place(session))
    };
    let deadline = match s(session, "registration_deadline") {
        "" => crate::fr::datetime(s(session, "starts_at")),
        at => crate::fr::datetime(at),
    };
    let mut out = format!(
        r#"<dl class="facts">
<dt>Formation</dt><dd>{offer}</dd>
<dt>Partenaire</dt><dd>{provider}</dd>
<dt>Date</dt><dd>{when}</dd>
<dt>Lieu</dt><dd>{place}</dd>
<dt>Places</dt><dd>{seats}</dd>
<dt>Inscrits confirmés</dt><dd>{fill} <span class="small">({waitlisted} en liste d'attente)</span></dd>
<dt>Inscriptions jusqu'au</dt><dd>{deadline}</dd>
<dt>Tarif</dt><dd>{price}</dd>
<dt>Statut</dt><dd>{status}</dd>
</dl>"#,
        provider = esc(if s(session, "provider_name").is_empty() { "—" } else { s(session, "provider_name") }),
        when = esc(&text::when(s(session, "starts_at"), s(session, "ends_at"))),
        seats = esc(&text::seats(session, now)),
        fill = esc(&text::fill(session)),
        waitlisted = crate::fr::count(text::number(session, "waitlisted")),
        deadline = esc(&deadline),
        price = esc(&text::price(session)),
        status = text::session_badge(s(session, "status")),
    );
    if s(session, "status") == "cancelled" {
        let reason = s(session, "cancel_reason").trim();
        let _ = write!(
            out,
            r#"<div class="callout" id="session-annulee"><h2>Session annulée</h2><p>Motif : {}</p></div>"#,
            esc(if reason.is_empty() { "non précisé" } else { reason })
        );
    }
    if !s(session, "details").trim().is_empty() {
        let _ = write!(
            out,
            "<h2>Programme et informations pratiques</h2><p>{}</p>",
            crate::html::multiline(s(session, "details"))
        );
    }
    out
}

/// The registration form of a session: up to five participants (nom, fonction, courriel), the first required.
/// `key` is the form's idempotency key (a second send of the same form registers nobody twice).
pub fn registration_form(session_id: &str, csrf: &str, key: &str, f: &Fields, errors: &Errors) -> String {
    let Some(href) = session_href(session_id) else { return String::new() };
    let mut rows = String::new();
    for n in 1..=MAX_PARTICIPANTS {
        let [name, function, email] = participant_ids(n);
        let text = Input::Text { kind: "text", autocomplete: "off" };
        let _ = write!(
            rows,
            r#"<fieldset><legend>Participant {n}{}</legend>{}{}{}</fieldset>"#,
            if n == 1 { "" } else { " (facultatif)" },
            forms::field(&name, "Nom et prénom", text, forms::value(f, &name), n == 1, "", errors),
            forms::field(
                &function,
                "Fonction",
                Input::Text { kind: "text", autocomplete: "off" },
                forms::value(f, &function),
                n == 1,
                if n == 1 { "Par exemple : maire adjoint, secrétaire de mairie." } else { "" },
                errors
            ),
            forms::field(
                &email,
                "Adresse électronique",
                Input::Text { kind: "email", autocomplete: "off" },
                forms::value(f, &email),
                n == 1,
                if n == 1 { "La convocation et les rappels y sont envoyés." } else { "" },
                errors
            ),
        );
    }
    format!(
        r#"<section id="inscription" aria-labelledby="inscription-titre"><h2 id="inscription-titre">S'inscrire</h2>
<p>Inscrivez jusqu'à {MAX_PARTICIPANTS} élus ou agents de votre collectivité. Tant qu'il reste des places, l'inscription est confirmée ; ensuite, les participants sont placés sur la liste d'attente, dans l'ordre d'arrivée, et prévenus par courriel si une place se libère.</p>
{summary}<form method="post" action="{href}/inscription" class="form" novalidate>{csrf}<input type="hidden" name="cle" value="{key}">{rows}<button type="submit">Inscrire les participants</button></form></section>"#,
        summary = forms::summary(errors),
        csrf = forms::csrf(csrf),
        key = esc(key),
    )
}

/// After registering: who is confirmed and who is on the waiting list (with the position).
pub fn confirmation(registrations: &[Value]) -> String {
    let confirmed: Vec<&Value> = registrations.iter().filter(|r| s(r, "status") == "confirmed").collect();
    let waitlisted: Vec<&Value> = registrations.iter().filter(|r| s(r, "status") == "waitlisted").collect();
    let person = |r: &Value| {
        let p = &r["participant"];
        match s(p, "function").trim() {
            "" => esc(s(p, "name")),
            function => format!("{} ({})", esc(s(p, "name")), esc(function)),
        }
    };
    let mut out = String::from(
        r#"<div class="notice success" role="status"><p>Votre demande d'inscription est enregistrée.</p></div>"#,
    );
    if !confirmed.is_empty() {
        out.push_str("<h2>Inscriptions confirmées</h2><ul>");
        for r in &confirmed {
            let _ = write!(out, "<li>{}</li>", person(r));
        }
        out.push_str("</ul>");
    }
    if !waitlisted.is_empty() {
        out.push_str("<h2>Sur la liste d'attente</h2><p>La session est complète : ces participants seront prévenus par courriel si une place se libère.</p><ul>");
        for r in &waitlisted {
            let position = match r["waitlist_position"].as_u64() {
                Some(n) if n > 0 => format!(" — position {}", crate::fr::count(n)),
                _ => String::new(),
            };
            let _ = write!(out, "<li>{}{position}</li>", person(r));
        }
        out.push_str("</ul>");
    }
    out.push_str(r#"<p><a href="/inscriptions">Voir toutes les inscriptions de votre collectivité</a></p>"#);
    out
}

/// Whether a registration's session is still to come (not cancelled, not ended).
pub fn upcoming(registration: &Value, now: DateTime<Utc>) -> bool {
    let session = &registration["session"];
    s(session, "status") == "scheduled"
        && text::instant(s(session, "ends_at"))
            .or_else(|| text::instant(s(session, "starts_at")))
            .is_none_or(|end| end > now)
}

/// One table of « Mes inscriptions »: participant, session (a link), date, place, status badge and what can be
/// done (cancel while the session is to come, the attestation of a participant who attended).
pub fn registrations_table(caption: &str, registrations: &[Value], now: DateTime<Utc>) -> String {
    let mut out = format!(
        r#"<table><caption>{}</caption><thead><tr><th scope="col">Participant</th><th scope="col">Session</th><th scope="col">Date</th><th scope="col">Lieu</th><th scope="col">Statut</th><th scope="col">Actions</th></tr></thead><tbody>"#,
        esc(caption)
    );
    for r in registrations {
        let session = &r["session"];
        let p = &r["participant"];
        let name = esc(s(p, "name"));
        let title = match session_href(s(r, "session_id")) {
            Some(href) => format!(r#"<a href="{href}">{}</a>"#, esc(s(session, "offer_title"))),
            None => esc(s(session, "offer_title")),
        };
        let mut actions = Vec::new();
        if let Some(id) = safe_id(s(r, "id")) {
            let id = url_component(id);
            if s(r, "status") != "cancelled" && upcoming(r, now) {
                actions.push(format!(
                    r#"<a href="/inscriptions/{id}/annuler">Annuler<span class="visually-hidden"> l'inscription de {name}</span></a>"#
                ));
            }
            if r["attended"].as_bool().unwrap_or(false) {
                actions.push(format!(
                    r#"<a href="/inscriptions/{id}/attestation">Attestation de présence<span class="visually-hidden"> de {name}</span> (PDF)</a>"#
                ));
            }
        }
        let _ = write!(
            out,
            r#"<tr><th scope="row">{name}<br><span class="small">{function}</span></th><td>{title}</td><td>{when}</td><td>{place}</td><td>{status}</td><td>{actions}</td></tr>"#,
            function = esc(s(p, "function")),
            when = esc(&text::when(s(session, "starts_at"), s(session, "ends_at"))),
            place = esc(&text::place(session)),
            status = text::registration_badge(r),
            actions = if actions.is_empty() { "—".to_owned() } else { actions.join("<br>") },
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The rating forms of « Mes inscriptions »: one per held session the member attended (1 to 5 and a comment).
pub fn rating_forms(registrations: &[Value], csrf: &str) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut out = String::new();
    for r in registrations {
        let session = &r["session"];
        let attended = r["attended"].as_bool().unwrap_or(false);
        let Some(href) = session_href(s(r, "session_id")) else { continue };
        if s(session, "status") != "held" || !attended || !seen.insert(href.clone()) {
            continue;
        }
        let n = seen.len();
        let scores: Vec<(String, String)> = std::iter::once((String::new(), "Choisir une note".to_owned()))
            .chain((1..=5).rev().map(|score| (score.to_string(), format!("{score} sur 5"))))
            .collect();
        let _ = write!(
            out,
            r#"<form method="post" action="{href}/avis" class="form" novalidate><fieldset><legend>{title} — {when}</legend>{csrf}{score}{comment}<button type="submit">Envoyer mon avis</button></fieldset></form>"#,
            title = esc(s(session, "offer_title")),
            when = esc(&text::when(s(session, "starts_at"), s(session, "ends_at"))),
            csrf = forms::csrf(csrf),
            score = forms::field(
                &format!("note-{n}"),
                "Note",
                Input::Select(&scores),
                "",
                true,
                "5 : très satisfait.",
                &Errors::default()
            )
            .replace(&format!(r#"name="note-{n}""#), r#"name="note""#),
            comment = forms::field(
                &format!("commentaire-{n}"),
                "Commentaire",
                Input::TextArea { rows: 3 },
                "",
                false,
                "Facultatif.",
                &Errors::default()
            )
            .replace(&format!(r#"name="commentaire-{n}""#), r#"name="commentaire""#),
        );
    }
    if out.is_empty() {
        return String::new();
    }
    format!(
        r#"<h2 id="avis">Donner votre avis sur une session</h2><p>Votre note aide le partenaire et la coordination à améliorer les sessions.</p>{out}"#
    )
}

/// The calendar feed section: what it is, the button that issues an address (a new one replaces the old) and the
/// one that revokes it.
pub fn feed_section(csrf: &str) -> String {
    format!(
        r#"<section aria-labelledby="agenda-titre"><h2 id="agenda-titre">Votre agenda</h2>
<p>Abonnez votre agenda (Outlook, Thunderbird, agenda de téléphone) aux sessions auxquelles vous avez inscrit des participants : il se met à jour tout seul. L'adresse est personnelle et secrète ; en demander une nouvelle rend l'ancienne inutilisable.</p>
<form method="post" action="/inscriptions/agenda" class="inline">{csrf}<button type="submit">Obtenir l'adresse de mon agenda</button></form>
<form method="post" action="/inscriptions/agenda/revoquer" class="inline">{csrf}<button type="submit" class="secondary">Révoquer l'adresse de mon agenda</button></form></section>"#,
        csrf = forms::csrf(csrf)
    )
}

/// The address of a newly issued feed, shown once, with how to subscribe.
pub fn feed_issued(url: &str) -> String {
    format!(
        r#"<div class="notice success" role="status"><p>Voici l'adresse de votre agenda. Copiez-la maintenant : elle ne sera plus affichée.</p></div>
<p><label for="adresse-agenda">Adresse de l'agenda</label><input type="text" id="adresse-agenda" readonly value="{url}"></p>
<h2>Comment s'abonner</h2><ul>
<li>Outlook : « Ajouter un calendrier », puis « S'abonner à partir du web », et collez l'adresse.</li>
<li>Thunderbird : « Nouvel agenda », « Sur le réseau », et collez l'adresse.</li>
<li>Téléphone : dans les réglages de l'agenda, « Ajouter un abonnement » (ou « Ajouter un agenda par URL »), et collez l'adresse.</li>
</ul>
<p>Si cette adresse est divulguée, révoquez-la depuis « Mes inscriptions » ou demandez-en une nouvelle.</p>
<p><a href="/inscriptions">Retour à mes inscriptions</a></p>"#,
        url = esc(url)
    )
}
