//! The forms of sessions read into the API's bodies, checked first by the portal (French messages next to their
//! fields): the participants of a registration, a session to schedule.

use chrono::{DateTime, NaiveTime, Utc};
use serde_json::{Value, json};

use super::text::{self, LocalTimeError};
use crate::forms::{self, Errors, Fields};
use crate::fr;

/// Most participants registered at once (the form's rows).
pub const MAX_PARTICIPANTS: usize = 5;
/// Longest name, function and details the forms accept.
const MAX_NAME: usize = 120;
const MAX_DETAILS: usize = 2000;
const MAX_ADDRESS: usize = 200;
const MAX_LINK: usize = 500;
/// Most seats of one session.
pub const MAX_CAPACITY: u32 = 1000;

/// The ids of one participant's fields (`nom-2`, `fonction-2`, `courriel-2`).
pub fn participant_ids(n: usize) -> [String; 3] {
    [format!("nom-{n}"), format!("fonction-{n}"), format!("courriel-{n}")]
}

/// The participants of a registration form: each row with anything typed is a participant, whose three fields are
/// then required; at least one participant.
pub fn participants(f: &Fields) -> Result<Vec<Value>, Errors> {
    let mut errors = Errors::default();
    let mut out = Vec::new();
    for n in 1..=MAX_PARTICIPANTS {
        let [name, function, email] = participant_ids(n);
        let typed = [&name, &function, &email].iter().any(|id| !forms::value(f, id).is_empty());
        if !typed {
            continue;
        }
        errors.required(f, &name, &format!("Nom du participant {n}"), MAX_NAME);
        errors.required(f, &function, &format!("Fonction du participant {n}"), MAX_NAME);
        errors.email(f, &email, &format!("Adresse électronique du participant {n}"));
        out.push(json!({
            "name": forms::value(f, &name),
            "function": forms::value(f, &function),
            "email": forms::value(f, &email),
        }));
    }
    if out.is_empty() && errors.is_empty() {
        errors.add(
            "nom-1",
            "Nom du participant 1",
            "Indiquez au moins un participant : son nom, sa fonction et son adresse électronique.",
        );
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// A session to schedule: the offer's id and the body of `POST /v1/offers/{id}/sessions`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub offer_id: String,
    pub body: Value,
}

/// A day and a time typed in Paris as an instant; `None` (with an error on `time_id`) when either is wrong.
fn paris_instant(
    f: &Fields,
    errors: &mut Errors,
    (day_id, day_label): (&str, &str),
    (time_id, time_label): (&str, &str),
    default_time: Option<NaiveTime>,
) -> Option<DateTime<Utc>> {
    let day = match forms::value(f, day_id) {
        "" => {
            errors.add(day_id, day_label, format!("Le champ « {day_label} » est obligatoire."));
            None
        }
        raw => {
            let day = fr::parse_date(raw);
            if day.is_none() {
                errors.add(
                    day_id,
                    day_label,
                    format!("« {day_label} » doit être une date au format jj/mm/aaaa, par exemple 12/01/2027."),
                );
            }
            day
        }
    };
    let time = match (forms::value(f, time_id), default_time) {
        ("", Some(default)) => Some(default),
        ("", None) => {
            errors.add(time_id, time_label, format!("Le champ « {time_label} » est obligatoire."));
            None
        }
        (raw, _) => {
            let time = text::parse_time(raw);
            if time.is_none() {
                errors.add(
                    time_id,
                    time_label,
                    format!("« {time_label} » doit être une heure au format hh:mm, par exemple 09:30."),
                );
            }
            time
        }
    };
    match text::paris_to_utc(day?.and_time(time?)) {
        Ok(at) => Some(at),
        Err(LocalTimeError::DoesNotExist) => {
            errors.add(
                time_id,
                time_label,
                "Cette heure n'existe pas ce jour-là à Paris (passage à l'heure d'été) : choisissez-en une autre.",
            );
            None
        }
    }
}

/// A whole number typed in a field, from `min` to `max`; `default` when empty (`None`: required).
fn whole(
    f: &Fields,
    errors: &mut Errors,
    (id, label): (&str, &str),
    min: u32,
    max: u32,
    default: Option<u32>,
) -> Option<u32> {
    match (forms::value(f, id), default) {
        ("", Some(default)) => Some(default),
        ("", None) => {
            errors.add(id, label, format!("Le champ « {label} » est obligatoire."));
            None
        }
        (raw, _) => match raw.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                errors.add(
                    id,
                    label,
                    format!("« {label} » doit être un nombre entier de {min} à {}.", fr::count(u64::from(max))),
                );
                None
            }
        },
    }
}

/// The labels of the schedule form's fields (ids of [`schedule`]).
pub const OFFER: (&str, &str) = ("offre", "Offre");
pub const DAY: (&str, &str) = ("jour", "Jour");
pub const START: (&str, &str) = ("debut", "Heure de début");
pub const END: (&str, &str) = ("fin", "Heure de fin");
pub const MODE: (&str, &str) = ("modalite", "Modalité");
pub const COMMUNE: (&str, &str) = ("commune", "Commune");
pub const ADDRESS: (&str, &str) = ("adresse", "Adresse");
pub const LINK: (&str, &str) = ("lien", "Lien de la visioconférence");
pub const CAPACITY: (&str, &str) = ("capacite", "Nombre de places");
pub const QUOTA: (&str, &str) = ("quota", "Places au plus par collectivité");
pub const DEADLINE_DAY: (&str, &str) = ("limite-jour", "Date limite d'inscription");
pub const DEADLINE_TIME: (&str, &str) = ("limite-heure", "Heure limite d'inscription");
pub const PRICE: (&str, &str) = ("prix", "Prix par participant (€ HT)");
pub const DETAILS: (&str, &str) = ("details", "Programme et informations pratiques");

/// How the API's field names map to the schedule form's fields (its refusals land next to them).
pub const API_FIELDS: &[(&str, &str, &str)] = &[
    ("offer_id", OFFER.0, OFFER.1),
    ("starts_at", START.0, START.1),
    ("ends_at", END.0, END.1),
    ("place.commune_insee", COMMUNE.0, COMMUNE.1),
    ("place.address", ADDRESS.0, ADDRESS.1),
    ("place.online_link", LINK.0, LINK.1),
    ("capacity", CAPACITY.0, CAPACITY.1),
    ("member_quota", QUOTA.0, QUOTA.1),
    ("registration_deadline", DEADLINE_DAY.0, DEADLINE_DAY.1),
    ("price_per_participant_cents", PRICE.0, PRICE.1),
    ("details", DETAILS.0, DETAILS.1),
];

/// The schedule form read and checked (`now`: sessions start in the future). The registration deadline is
/// optional: a day without a time closes at 23 h 59 that day, or at the start when that is earlier.
pub fn schedule(f: &Fields, now: DateTime<Utc>) -> Result<Schedule, Errors> {
    let mut errors = Errors::default();
    let offer_id = forms::value(f, OFFER.0);
    if crate::pages::common::safe_id(offer_id).is_none() {
        errors.add(OFFER.0, OFFER.1, "Choisissez l'offre de sensibilisation ou de formation de la session.");
    }
    let starts_at = paris_instant(f, &mut errors, DAY, START, None);
    let ends_at = paris_instant(f, &mut errors, DAY, END, None);
    // One error for the day is enough (both instants read it).
    let mut seen = std::collections::HashSet::new();
    errors.0.retain(|e| seen.insert((e.field.clone(), e.message.clone())));
    if let Some(start) = starts_at {
        if start <= now {
            errors.add(DAY.0, DAY.1, "La session doit commencer dans le futur.");
        }
        if ends_at.is_some_and(|end| end <= start) {
            errors.add(END.0, END.1, "L'heure de fin doit suivre l'heure de début.");
        }
    }
    let online = match forms::value(f, MODE.0) {
        "en-ligne" => true,
        "presentiel" => false,
        _ => {
            errors.add(MODE.0, MODE.1, "Choisissez si la session a lieu en présentiel ou en ligne.");
            false
        }
    };
    let (commune, address, link) = (forms::value(f, COMMUNE.0), forms::value(f, ADDRESS.0), forms::value(f, LINK.0));
    if online {
        if !(link.starts_with("https://") || link.starts_with("http://")) || link.contains(char::is_whitespace) {
            errors.add(LINK.0, LINK.1, "Saisissez l'adresse de la visioconférence, commençant par https://.");
        }
        errors.max_len(f, LINK.0, LINK.1, MAX_LINK);
    } else {
        if commune.len() != 5 || !commune.bytes().all(|b| b.is_ascii_alphanumeric()) {
            errors.add(COMMUNE.0, COMMUNE.1, "Choisissez la commune où a lieu la session.");
        }
        errors.required(f, ADDRESS.0, ADDRESS.1, MAX_ADDRESS);
    }
    let capacity = whole(f, &mut errors, CAPACITY, 1, MAX_CAPACITY, None);
    let quota = whole(f, &mut errors, QUOTA, 0, MAX_CAPACITY, Some(0));
    if let (Some(capacity), Some(quota)) = (capacity, quota)
        && quota > capacity
    {
        errors.add(QUOTA.0, QUOTA.1, "Le quota par collectivité ne peut pas dépasser le nombre de places.");
    }
    let deadline = match (forms::value(f, DEADLINE_DAY.0), forms::value(f, DEADLINE_TIME.0)) {
        ("", "") => None,
        ("", _) => {
            errors.add(DEADLINE_DAY.0, DEADLINE_DAY.1, "Indiquez aussi le jour de la date limite d'inscription.");
            None
        }
        (_, time) => {
            let late = NaiveTime::from_hms_opt(23, 59, 0);
            let at = paris_instant(f, &mut errors, DEADLINE_DAY, DEADLINE_TIME, late);
            match (at, starts_at) {
                // The day of the session alone closes at its start.
                (Some(at), Some(start))
                    if time.is_empty() && at > start && fr::paris(at).date() == fr::paris(start).date() =>
                {
                    Some(start)
                }
                (Some(at), Some(start)) if at > start => {
                    errors.add(
                        DEADLINE_DAY.0,
                        DEADLINE_DAY.1,
                        "La date limite d'inscription doit précéder le début de la session.",
                    );
                    None
                }
                (Some(at), _) if at <= now => {
                    errors.add(DEADLINE_DAY.0, DEADLINE_DAY.1, "La date limite d'inscription doit être dans le futur.");
                    None
                }
                (at, _) => at,
            }
        }
    };
    let price = match crate::pages::provider::parse_euros(forms::value(f, PRICE.0)) {
        Ok(cents) => cents.unwrap_or(0),
        Err(message) => {
            errors.add(PRICE.0, PRICE.1, message);
            0
        }
    };
    errors.max_len(f, DETAILS.0, DETAILS.1, MAX_DETAILS);
    let (Some(starts_at), Some(ends_at), Some(capacity), Some(quota), true) =
        (starts_at, ends_at, capacity, quota, errors.is_empty())
    else {
        return Err(errors);
    };
    let mut body = json!({
        "starts_at": text::rfc3339(starts_at),
        "ends_at": text::rfc3339(ends_at),
        "place": if online {
            json!({ "online": true, "commune_insee": "", "address": "", "online_link": link })
        } else {
            json!({ "online": false, "commune_insee": commune, "address": address, "online_link": "" })
        },
        "capacity": capacity,
        "member_quota": quota,
        "price_per_participant_cents": price,
        "details": forms::value(f, DETAILS.0),
    });
    if let Some(deadline) = deadline {
        body["registration_deadline"] = Value::String(text::rfc3339(deadline));
    }
    Ok(Schedule { offer_id: offer_id.to_owned(), body })
}
