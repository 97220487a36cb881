//! The operator's view of the platform's pipes, from `GET /v1/operations`: each service's messages waiting to be
//! published (its outbox), each consumer's messages waiting to be handled, the messages given up on (dead
//! letters), and what to do about them. A figure the gateway could not read is said so, never shown as zero.

use std::fmt::Write as _;

use serde_json::Value;

use crate::fr;
use crate::html::esc;

/// Where the operator reads what to do (the operations guide of the repository).
const GUIDE: &str =
    "guide d'exploitation (docs/operations.md), rubrique « Messages en attente et lettres mortes : que faire »";

/// A service of the platform by its French name.
pub fn service_name(name: &str) -> String {
    match name {
        "membership" => "Adhésions et comptes".to_owned(),
        "catalogue" => "Catalogue".to_owned(),
        "requests" => "Demandes".to_owned(),
        "routing" => "Orientation".to_owned(),
        "billing" => "Facturation".to_owned(),
        other => other.to_owned(),
    }
}

/// A count, or why it is missing.
fn figure(value: &Value, state: &str) -> String {
    match value.as_u64() {
        Some(n) => fr::count(n),
        None => match state {
            "not_configured" => "non configuré".to_owned(),
            "missing" => "consommateur absent".to_owned(),
            _ => "illisible".to_owned(),
        },
    }
}

/// An age in seconds in French words: « 12 s », « 3 min », « 2 h 05 ».
pub fn age(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0 => "moins d'une seconde".to_owned(),
        1..=59 => format!("{s} s"),
        60..=3_599 => format!("{} min", s / 60),
        _ => format!("{} h {:02}", s / 3_600, (s % 3_600) / 60),
    }
}

/// What a durable consumer reads, in French, from the end of its name (`routing-requests` → demandes déposées).
fn reads(durable: &str) -> &'static str {
    let what = durable.split_once('-').map_or(durable, |(_, what)| what);
    match what {
        "members" => "adhésions",
        "users" => "comptes des utilisateurs",
        "offers" => "offres du catalogue",
        "referrals" => "orientations",
        "quotes" => "devis",
        "invoices" => "factures",
        "requests" => "demandes déposées",
        "cancellations" | "request-cancellations" => "demandes annulées",
        "request-completions" => "demandes terminées",
        "replies" => "réponses des partenaires",
        "sessions" => "sessions de formation",
        "registrations" => "inscriptions aux sessions",
        _ => "événements",
    }
}

/// « Orientation : demandes déposées », the durable's name beside it for the commands of the guide.
fn consumer_label(c: &Value) -> String {
    let durable = c["durable"].as_str().unwrap_or("");
    format!(
        "{} : {} <code>{}</code>",
        esc(&service_name(c["service"].as_str().unwrap_or(""))),
        reads(durable),
        esc(durable)
    )
}

/// The two sections of the operator's home: outboxes, then consumers and dead letters, with what to do.
pub fn section(operations: Option<&Value>) -> String {
    let Some(ops) = operations else {
        return "<h2>Messages en attente de publication</h2><p>Les files d'attente ne peuvent pas être lues : la passerelle ne répond pas.</p>".to_owned();
    };
    let mut html = String::from(
        r#"<h2>Messages en attente de publication</h2><p>Événements enregistrés par chaque service et pas encore publiés (sa file d'envoi). Quelques messages pendant quelques secondes sont normaux.</p><table><caption class="visually-hidden">Messages en attente de publication, par service</caption><thead><tr><th scope="col">Service</th><th scope="col">En attente</th><th scope="col">Le plus ancien attend depuis</th></tr></thead><tbody>"#,
    );
    let mut late = false;
    for o in ops["outboxes"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let state = o["state"].as_str().unwrap_or("");
        let oldest = o["oldest_pending_age_seconds"].as_f64();
        late |= oldest.is_some_and(|a| a >= 60.0);
        let _ = write!(
            html,
            r#"<tr><th scope="row">{}</th><td>{}</td><td>{}</td></tr>"#,
            esc(&service_name(o["service"].as_str().unwrap_or(""))),
            esc(&figure(&o["pending"], state)),
            match (oldest, o["pending"].as_u64()) {
                (_, Some(0)) => "—".to_owned(),
                (Some(a), _) => age(a),
                _ => "—".to_owned(),
            }
        );
    }
    html.push_str("</tbody></table>");
    if late {
        let _ = write!(
            html,
            r#"<p class="notice">Un message attend depuis plus d'une minute : le service ne parvient pas à publier (NATS injoignable, ou erreur « outbox relay failed » dans ses journaux). Voir le {GUIDE}.</p>"#
        );
    }
    html.push_str(&dead_letters(ops));
    html
}

fn dead_letters(ops: &Value) -> String {
    let mut html = String::from("<h2>Messages en erreur (lettres mortes)</h2>");
    let consumers = ops["consumers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    match ops["dead_letters_total"].as_u64() {
        None => html.push_str(
            "<p>Les lettres mortes ne peuvent pas être lues pour le moment (NATS injoignable ou non configuré).</p>",
        ),
        Some(0) => html.push_str("<p>Aucun message en erreur.</p>"),
        Some(n) => {
            let _ = write!(
                html,
                r#"<p class="notice">{} : un consommateur a renoncé à {} après dix essais. Lisez le motif de chacun (en-tête « Id77-Dead-Letter-Reason » du flux DEADLETTER), corrigez la cause, puis republiez-le sur son sujet d'origine : le service ne l'appliquera qu'une fois. Voir le {GUIDE}.</p>"#,
                if n == 1 { "1 message en erreur".to_owned() } else { format!("{} messages en erreur", fr::count(n)) },
                if n == 1 { "ce message" } else { "ces messages" }
            );
        }
    }
    html.push_str(r#"<table><caption class="visually-hidden">Messages à traiter et en erreur, par consommateur</caption><thead><tr><th scope="col">Consommateur</th><th scope="col">À traiter</th><th scope="col">En cours</th><th scope="col">En erreur</th></tr></thead><tbody>"#);
    for c in consumers {
        let state = c["state"].as_str().unwrap_or("");
        let dead = match c["dead_letters"].as_u64() {
            Some(n) => fr::count(n),
            None => "illisible".to_owned(),
        };
        let _ = write!(
            html,
            r#"<tr><th scope="row">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            consumer_label(c),
            esc(&figure(&c["pending"], state)),
            esc(&figure(&c["ack_pending"], state)),
            esc(&dead)
        );
    }
    html.push_str("</tbody></table>");
    html
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ages_are_said_in_french() {
        assert_eq!(age(0.2), "moins d'une seconde");
        assert_eq!(age(12.4), "12 s");
        assert_eq!(age(185.0), "3 min");
        assert_eq!(age(7_500.0), "2 h 05");
    }

    #[test]
    fn backlogs_and_dead_letters_are_shown_in_french_and_unknowns_are_not_zero() {
        let ops = json!({
            "outboxes": [
                {"service": "routing", "state": "ok", "pending": 3, "oldest_pending_age_seconds": 75.0},
                {"service": "billing", "state": "ok", "pending": 0, "oldest_pending_age_seconds": 0.0},
                {"service": "membership", "state": "unreachable", "pending": null, "oldest_pending_age_seconds": null}
            ],
            "jetstream": "ok",
            "consumers": [
                {"durable": "routing-requests", "service": "routing", "state": "ok", "pending": 1200, "ack_pending": 1, "dead_letters": 2},
                {"durable": "billing-offers", "service": "billing", "state": "missing", "pending": null, "ack_pending": null, "dead_letters": 0}
            ],
            "dead_letters_total": 2
        });
        let html = section(Some(&ops));
        assert!(html.contains("<h2>Messages en attente de publication</h2>"), "{html}");
        assert!(html.contains(r#"<th scope="row">Orientation</th><td>3</td><td>1 min</td>"#), "{html}");
        assert!(html.contains(r#"<th scope="row">Facturation</th><td>0</td><td>—</td>"#), "{html}");
        assert!(html.contains(r#"<th scope="row">Adhésions et comptes</th><td>illisible</td>"#), "{html}");
        assert!(html.contains("Un message attend depuis plus d'une minute"), "{html}");
        assert!(html.contains("<h2>Messages en erreur (lettres mortes)</h2>"), "{html}");
        assert!(html.contains("2 messages en erreur : un consommateur a renoncé à ces messages"), "{html}");
        assert!(
            html.contains("Orientation : demandes déposées <code>routing-requests</code></th><td>1\u{202f}200</td><td>1</td><td>2</td>"),
            "{html}"
        );
        assert!(html.contains("<td>consommateur absent</td>"), "{html}");
        assert!(html.contains("docs/operations.md"), "{html}");

        let quiet = json!({"outboxes": [], "jetstream": "not_configured", "consumers": [], "dead_letters_total": null});
        let html = section(Some(&quiet));
        assert!(html.contains("ne peuvent pas être lues pour le moment") && !html.contains("plus d'une minute"));
        let none = json!({"outboxes": [], "jetstream": "ok", "consumers": [], "dead_letters_total": 0});
        assert!(section(Some(&none)).contains("Aucun message en erreur."));
        assert!(section(None).contains("la passerelle ne répond pas"));
    }
}
