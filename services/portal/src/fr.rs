//! French wording: labels of the API's enums, dates and amounts, and the messages shown for gateway errors.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};
use id77_proto::vocabulary::{Category, MemberKind, PriceKind};

use crate::gateway::{ApiError, FieldError};

pub fn request_status(status: &str) -> &str {
    match status {
        "submitted" => "Déposée",
        "referred" => "Orientée vers un partenaire",
        "accepted" => "Acceptée",
        "in_progress" => "En cours",
        "declined" => "Déclinée",
        "cancelled" => "Annulée",
        "completed" => "Terminée",
        "closed" => "Clôturée",
        "triage" => "En cours d'orientation",
        other => other,
    }
}

pub fn referral_status(status: &str) -> &str {
    match status {
        "offered" => "À traiter",
        "accepted" => "Acceptée",
        "declined" => "Déclinée",
        "expired" => "Expirée",
        "withdrawn" => "Retirée",
        "refused" => "Refusée",
        other => other,
    }
}

pub fn member_status(status: &str) -> &str {
    match status {
        "pending" => "En attente de validation",
        "active" => "Active",
        "suspended" => "Suspendue",
        "withdrawn" => "Retirée",
        "refused" => "Refusée",
        other => other,
    }
}

/// The French name of a family of offers.
pub fn category_label(category: Category) -> &'static str {
    match category {
        Category::IntegratedEngineering => "Ingénierie intégrée",
        Category::AwarenessTraining => "Sensibilisation et formation",
        Category::ExhibitionLoan => "Prêt d'exposition",
    }
}

/// The French name of a category as the API spells it (an unknown one as it comes).
pub fn category(category: &str) -> &str {
    match Category::parse(category) {
        Some(known) => category_label(known),
        None => category,
    }
}

/// The French name of a way of pricing.
pub fn price_kind_label(kind: PriceKind) -> &'static str {
    match kind {
        PriceKind::Free => "Gratuit",
        PriceKind::Flat => "Forfait",
        PriceKind::DailyRate => "Prix par jour",
        PriceKind::PerInhabitant => "Par habitant",
        PriceKind::OnQuote => "Sur devis",
    }
}

/// The French name of a price kind as the API spells it (an unknown one as it comes).
pub fn price_kind(kind: &str) -> &str {
    match PriceKind::parse(kind) {
        Some(known) => price_kind_label(known),
        None => kind,
    }
}

/// The French name of a kind of collectivité.
pub fn member_kind_label(kind: MemberKind) -> &'static str {
    match kind {
        MemberKind::Commune => "Commune",
        MemberKind::Epci => "Intercommunalité (EPCI)",
        MemberKind::Syndicat => "Syndicat",
    }
}

/// The French name of a kind of collectivité as the API spells it (an unknown one as it comes).
pub fn collectivity_kind(kind: &str) -> &str {
    match MemberKind::parse(kind) {
        Some(known) => member_kind_label(known),
        None => kind,
    }
}

pub fn invoice_status(status: &str) -> &str {
    match status {
        "issued" => "Émise",
        "sent" => "Envoyée",
        "paid" => "Payée",
        "cancelled" => "Annulée par un avoir",
        "issued_quote" => "Émis",
        other => other,
    }
}

/// A quote's status (ADR 0013): proposed, then accepted, refused, voided (the request was cancelled) or expired.
pub fn quote_status(status: &str) -> &str {
    match status {
        "proposed" => "Proposé",
        "accepted" => "Accepté",
        "refused" => "Refusé",
        "voided" => "Annulé",
        "expired" => "Expiré",
        other => other,
    }
}

/// Whether the provider may work on an accepted referral.
pub fn agreement(agreement: &str) -> &str {
    match agreement {
        "not_required" => "Sans objet (pas de devis à accepter)",
        "awaiting_member" => "En attente de l'accord de la collectivité sur le devis",
        "agreed" => "Devis accepté par la collectivité",
        other => other,
    }
}

/// VAT on an amount excluding VAT, in cents, rounded half up as billing computes it (`None`: VAT does not
/// apply or the rate is unreadable).
pub fn vat_cents(net_cents: i64, rate_bp: Option<i64>) -> Option<i64> {
    let rate = rate_bp.filter(|bp| (0..=10_000).contains(bp))?;
    let scaled = i128::from(net_cents).checked_mul(i128::from(rate))?;
    i64::try_from((scaled + 5_000).div_euclid(10_000)).ok()
}

/// `2000` basis points → `20 %`, `550` → `5,5 %`.
pub fn percent_bp(rate_bp: i64) -> String {
    let whole = rate_bp / 100;
    let rest = rate_bp % 100;
    if rest == 0 {
        format!("{whole}\u{a0}%")
    } else {
        format!("{whole},{}\u{a0}%", format!("{rest:02}").trim_end_matches('0'))
    }
}

pub fn role(role: &str) -> &str {
    match role {
        "member_admin" => "Administrateur de la collectivité",
        "member_user" => "Agent ou élu de la collectivité",
        "provider_agent" => "Agent d'un partenaire",
        "coordinator" => "Coordination (guichet unique)",
        "referent" => "Référent départemental",
        "operator" => "Exploitation de la plateforme",
        "provider_consumer" => "Connecteur du partenaire",
        other => other,
    }
}

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// The hint shown beside a date input.
pub const DATE_HINT: &str = "Format : jj/mm/aaaa, par exemple 15/03/2027.";

/// The offset of Paris from UTC at `at`, in hours (the EU rule, kept in [`id77_platform::time`]).
pub fn paris_offset_hours(at: DateTime<Utc>) -> i64 {
    id77_platform::time::paris_offset_hours(at)
}

/// The wall-clock time in Paris at `at`.
pub fn paris(at: DateTime<Utc>) -> NaiveDateTime {
    id77_platform::time::paris(at)
}

/// `2026-12-06` → `6 décembre 2026` (`1er` for the first day of a month).
pub fn long_date(day: NaiveDate) -> String {
    let month = MONTHS.get(day.month0() as usize).copied().unwrap_or("");
    let d = day.day();
    if d == 1 { format!("1er {month} {}", day.year()) } else { format!("{d} {month} {}", day.year()) }
}

/// An instant as Paris reads it: `6 décembre 2026 à 15 h 14`.
pub fn long_datetime(at: DateTime<Utc>) -> String {
    let local = paris(at);
    format!("{} à {} h {:02}", long_date(local.date()), local.hour(), local.minute())
}

/// `2026-12-06T14:14:00Z` → `6 décembre 2026 à 15 h 14` (Paris time); a bare date as [`date`]; the input as is
/// when unreadable.
pub fn datetime(value: &str) -> String {
    match DateTime::parse_from_rfc3339(value.trim()) {
        Ok(at) => long_datetime(at.with_timezone(&Utc)),
        Err(_) => match NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
            Ok(d) => long_date(d),
            Err(_) => value.to_owned(),
        },
    }
}

/// `2026-12-31` → `31 décembre 2026`; an instant → its day in Paris; the input as is when unreadable.
pub fn date(value: &str) -> String {
    match NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d") {
        Ok(d) => long_date(d),
        Err(_) => match DateTime::parse_from_rfc3339(value.trim()) {
            Ok(at) => long_date(paris(at.with_timezone(&Utc)).date()),
            Err(_) => value.to_owned(),
        },
    }
}

/// A date typed by a user: `jj/mm/aaaa` (what the hint asks, and what a French browser shows) or `aaaa-mm-jj`
/// (what a date input sends).
pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    let raw = raw.trim();
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").or_else(|_| NaiveDate::parse_from_str(raw, "%d/%m/%Y")).ok()
}

/// Today in Paris.
pub fn today() -> NaiveDate {
    paris(Utc::now()).date()
}

/// Digits grouped by three with a narrow no-break space (U+202F): `1261` → `1 261`.
fn grouped(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// A whole number, French style: `1261` → `1 261` (narrow no-break space), `-22140` → `-22 140`.
pub fn number(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    format!("{sign}{}", grouped(&n.unsigned_abs().to_string()))
}

/// A count, French style (see [`number`]).
pub fn count(n: u64) -> String {
    grouped(&n.to_string())
}

/// Cents as euros, French style: `2214060` → `22 140,60 €` (narrow no-break space between thousands, no-break
/// space before the sign).
pub fn euros(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{},{:02}\u{a0}€", grouped(&(cents / 100).to_string()), cents % 100)
}

/// The names of Seine-et-Marne's arrondissements by INSEE code (COG, as in the directory's
/// `@etalab/decoupage-administratif` data: Meaux is in 771, Melun in 772, Provins in 773, Fontainebleau in 774,
/// Torcy in 775).
pub fn arrondissement(code: &str) -> String {
    match code.trim() {
        "771" => "Meaux".to_owned(),
        "772" => "Melun".to_owned(),
        "773" => "Provins".to_owned(),
        "774" => "Fontainebleau".to_owned(),
        "775" => "Torcy".to_owned(),
        other => format!("Arrondissement {other}"),
    }
}

/// The English wordings the services wrote before they wrote French (history lines, assignments, triage reasons
/// stored then), as (English, French) fragments; `{}` is a provider code.
const LEGACY_FRAGMENTS: &[(&str, &str)] = &[
    (
        "open orientation request: the coordinator triages it",
        "Demande d'orientation : la coordination choisit le partenaire",
    ),
    ("no provider left: coordinator's triage", "plus aucun partenaire possible : à orienter par la coordination"),
    (
        "no rule matched and the offer has no usable provider: coordinator's triage queue",
        "aucune règle ne s'applique et l'offre n'a pas de partenaire utilisable : à orienter par la coordination",
    ),
    ("): coordinator's triage queue", ") : à orienter par la coordination"),
    ("every candidate was tried (", "tous les partenaires possibles ont été sollicités ("),
    ("no rule chose a provider: default provider ", "aucune règle n'a choisi de partenaire : partenaire par défaut "),
    (" of offer ", " de l'offre "),
    ("\" matched: provider ", " » retenue : partenaire "),
    ("rule set v", "règles v"),
    ("auto (", "Orientation automatique ("),
    ("auto: ", "Orientation automatique : "),
    ("re-routed: ", "réorientation : "),
    ("manual: assigned to ", "Orientation manuelle : confiée à "),
    ("manual: triaged to ", "Orientation manuelle : orientée vers "),
    (" by the coordinator", " par la coordination"),
    ("referral withdrawn: ", "orientation retirée : "),
    ("withdrawn by the coordinator", "retirée par la coordination"),
    ("the offer is unknown to routing", "offre inconnue : à orienter par la coordination"),
    ("request cancelled", "demande annulée"),
    ("; re-routed to ", " ; réorientée vers "),
    ("re-routed to ", "Réorientée vers "),
    ("referred to ", "Orientée vers "),
    ("accepted by ", "Acceptée par "),
    ("declined by ", "Déclinée par "),
    ("referral to ", "Orientation vers "),
];

/// The English wordings whose provider comes first (`caue77 reported progress`), as (English tail, French head).
const LEGACY_TAILS: &[(&str, &str)] = &[
    (" did not answer in time", "Sans réponse de {} dans le délai"),
    (" reported progress", "Avancement déclaré par {}"),
    (" completed the work", "Prestation terminée par {}"),
    (" withdrawn", "{} retirée"),
];

/// French spacing: a space before `:` and `;` followed by a space (`caue77: x` → `caue77 : x`).
fn spaced_punctuation(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        if matches!(c, ':' | ';') && chars.peek() == Some(&' ') && !previous.is_whitespace() {
            out.push(' ');
        }
        out.push(c);
        previous = c;
    }
    out
}

/// A reason written by the services (a request's history line, a referral's assignment) as users read it: the
/// English of older rows in French, provider codes by their names (`names`, by code).
pub fn reason(text: &str, names: &HashMap<String, String>) -> String {
    let mut out = text.to_owned();
    let legacy = LEGACY_FRAGMENTS.iter().any(|(english, _)| out.contains(english))
        || LEGACY_TAILS.iter().any(|(tail, _)| out.contains(tail));
    if legacy {
        for (english, french) in LEGACY_FRAGMENTS {
            let Some(at) = out.find(english) else { continue };
            // « rule 2 "nom" matched » : the rule's name is quoted with guillemets.
            if english.starts_with('"')
                && let Some(open) = out[..at].rfind("rule ")
                && let Some(q) = out[open..at].find('"').map(|q| open + q)
            {
                out.replace_range(q..q + 1, "« ");
                out.replace_range(open..open + "rule ".len(), "règle ");
            }
            out = out.replace(english, french);
        }
        for (tail, head) in LEGACY_TAILS {
            while let Some(at) = out.find(tail) {
                let start = out[..at].rfind(char::is_whitespace).map_or(0, |i| i + 1);
                let code = out[start..at].to_owned();
                if *tail == " withdrawn" {
                    // Only « Orientation vers caue77 withdrawn » (from « referral to caue77 withdrawn »).
                    if !out[..start].ends_with("Orientation vers ") {
                        break;
                    }
                }
                out.replace_range(start..at + tail.len(), &head.replace("{}", &code));
            }
        }
        out = spaced_punctuation(&out);
    }
    with_names(&without_offer_code(&out), names)
}

/// « partenaire par défaut X de l'offre code-de-l-offre », as routing wrote it before 2026-12-07, in the wording
/// it writes now (« X, partenaire par défaut de l'offre »): an offer's code is not for people.
fn without_offer_code(text: &str) -> String {
    const HEAD: &str = "partenaire par défaut ";
    const OF_OFFER: &str = " de l'offre ";
    let Some(head) = text.find(HEAD) else { return text.to_owned() };
    let provider_at = head + HEAD.len();
    let Some(of) = text[provider_at..].find(OF_OFFER).map(|i| provider_at + i) else { return text.to_owned() };
    let code_at = of + OF_OFFER.len();
    let code_len = text[code_at..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(text.len() - code_at);
    if code_len == 0 {
        return text.to_owned();
    }
    let provider = &text[provider_at..of];
    format!("{}{provider}, partenaire par défaut de l'offre{}", &text[..head], &text[code_at + code_len..])
}

/// `text` with every known code (whole word) replaced by its name: provider codes in a request's history or an
/// assignment's reason become the providers' names.
pub fn with_names(text: &str, names: &HashMap<String, String>) -> String {
    if names.is_empty() {
        return text.to_owned();
    }
    let word = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(word) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail.find(|c: char| !word(c)).unwrap_or(tail.len());
        let token = &tail[..end];
        match names.get(token) {
            Some(name) => out.push_str(name),
            None => out.push_str(token),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The sentence shown for a failed call (above the form, in the error summary).
pub fn problem(error: &ApiError) -> String {
    let by_kind = match error.kind.as_str() {
        "member-not-active" => {
            Some("Votre adhésion n'est pas encore active : la coordination doit d'abord la valider.")
        }
        "already-member" | "already-applied" => Some("Cette collectivité a déjà une adhésion (en cours ou active)."),
        // An account with this email (an invitation is not an application for membership).
        "already-exists" => Some("Un compte existe déjà pour cette adresse électronique."),
        "last-admin" => Some("La collectivité doit garder au moins un administrateur."),
        "reset-token-invalid" => Some("Ce lien est inconnu, déjà utilisé ou expiré : demandez un nouveau lien."),
        "wrong-current-password" => Some("Le mot de passe actuel est incorrect."),
        "not-eligible" | "offer-not-eligible" => Some("Votre collectivité n'est pas éligible à cette offre."),
        "rate-limited" => Some("Trop de tentatives : patientez une minute avant de réessayer."),
        "invalid-credentials" => Some("Adresse électronique ou mot de passe incorrect."),
        "rules-changed" => Some("Les règles ont été modifiées entre-temps : rechargez la page et recommencez."),
        "gateway-unreachable" => Some("Le service est momentanément indisponible. Réessayez dans quelques instants."),
        "quote-not-accepted" => Some(
            "Le devis n'a pas encore été accepté par la collectivité : vous pourrez déclarer l'avancement ou la fin \
             de la prestation après son accord.",
        ),
        _ => None,
    };
    if let Some(message) = by_kind {
        return message.to_owned();
    }
    match error.status {
        400 | 422 if !error.errors.is_empty() => {
            "Le formulaire contient des erreurs : corrigez les champs signalés.".into()
        }
        400 | 422 => "La demande n'a pas pu être traitée : vérifiez les informations saisies.".into(),
        401 => "Votre session a expiré ou vos identifiants sont incorrects : veuillez vous reconnecter.".into(),
        403 => "Vous n'avez pas les droits nécessaires pour cette action.".into(),
        404 => "L'élément demandé est introuvable (ou vous n'y avez pas accès).".into(),
        409 => "Cette action n'est pas possible dans l'état actuel du dossier.".into(),
        413 => "Le contenu envoyé est trop volumineux.".into(),
        429 => "Trop de tentatives : patientez une minute avant de réessayer.".into(),
        _ => "Le service est momentanément indisponible. Réessayez dans quelques instants.".into(),
    }
}

/// The numbers in an English detail (`must be an integer from 1 to 100` → `[1, 100]`).
fn numbers_in(detail: &str) -> Vec<u64> {
    detail.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse().ok()).collect()
}

/// The French sentence for the gateway's (English) detail of a field error, `None` when it says nothing more
/// specific than « invalid ».
fn field_detail(detail: &str) -> Option<String> {
    let d = detail.trim().to_lowercase();
    let numbers = numbers_in(&d);
    let sentence = if d.starts_with("is required")
        || d.contains("must not be empty")
        || d.contains("is empty")
        || d.contains("missing")
        || d.contains("an offer_id or a provider_code is required")
    {
        "Ce champ est obligatoire.".to_owned()
    } else if (d.contains("at most") && d.contains("character")) || d.contains("too long") || d.contains("exceeds") {
        match numbers.first() {
            Some(max) if d.contains("character") => format!("Ce champ compte au plus {} caractères.", count(*max)),
            _ => "Ce champ est trop long.".to_owned(),
        }
    } else if d.contains("at most") && (d.contains("items") || d.contains("ids") || d.contains("referrals")) {
        match numbers.first() {
            Some(max) => format!("Choisissez au plus {} éléments.", count(*max)),
            None => "Trop d'éléments choisis.".to_owned(),
        }
    } else if d.contains("at most") && d.contains("bytes") {
        "Ce champ est trop long.".to_owned()
    } else if d.contains("integer from") || d.contains("between") {
        match numbers.as_slice() {
            [min, max, ..] => format!("Saisissez un nombre entier de {} à {}.", count(*min), count(*max)),
            _ => "Saisissez un nombre entier.".to_owned(),
        }
    } else if d.contains("date") || d.contains("rfc 3339") {
        "Saisissez une date au format jj/mm/aaaa, par exemple 15/03/2027.".to_owned()
    } else if d.contains("after from") || d.contains("before from") {
        "La date de fin doit suivre la date de début.".to_owned()
    } else if d.contains("true or false") {
        "Répondez par oui ou par non.".to_owned()
    } else if d.contains("must be one of") || (d.starts_with("must be ") && d.contains(" or ")) {
        "Choisissez une des valeurs proposées.".to_owned()
    } else if d.contains("control characters") || d.contains("ascii") || d.contains("utf-8") {
        "Ce champ contient des caractères non autorisés.".to_owned()
    } else if d.contains("cursor") || d.contains("token") {
        "Cette page de résultats n'est plus valable : revenez à la première page.".to_owned()
    } else if d.contains("cannot change") {
        "Cette valeur ne peut plus être modifiée.".to_owned()
    } else if d.contains("goes with") {
        "Ce champ va avec un autre champ du formulaire, qui manque.".to_owned()
    } else if d.contains("uuid") || d.contains("must be referral ids") {
        "Cet identifiant n'est pas valide.".to_owned()
    } else if d.contains("digits") || d.contains("9 chiffres") {
        "Ce numéro n'a pas le bon nombre de chiffres.".to_owned()
    } else {
        return None;
    };
    Some(sentence)
}

/// The message shown next to a field for one of the gateway's field errors (`{field, detail}` of its
/// problem+json): always French, the English detail is never shown.
pub fn field_error(error: &FieldError) -> String {
    let field = error.field.to_lowercase();
    let detail = error.detail.to_lowercase();
    let by_field = if field.contains("email") {
        Some("Saisissez une adresse électronique valide (par exemple nom@mairie.fr).")
    } else if field.contains("siren") {
        Some("Ce SIREN n'est pas celui d'une collectivité de l'annuaire.")
    } else if field.contains("password") {
        Some(
            "Le mot de passe doit compter 12 à 128 caractères, dont au moins trois types parmi minuscules, \
             majuscules, chiffres et symboles, et ne pas contenir votre identifiant.",
        )
    } else if field.contains("provider") {
        Some("Ce partenaire est inconnu.")
    } else if field.contains("condition") {
        Some("Cette condition n'est pas valide ou rend la règle inatteignable.")
    } else if field.contains("insee") {
        Some("Ce code INSEE n'est pas celui d'une commune de l'annuaire.")
    } else {
        None
    };
    let required = field_detail(&detail);
    match (required, by_field) {
        // « Obligatoire » and lengths say more than the field's general rule.
        (Some(sentence), _) if sentence.starts_with("Ce champ") => sentence,
        (_, Some(message)) => message.to_owned(),
        (Some(sentence), None) => sentence,
        (None, None) => "Cette valeur n'est pas acceptée.".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_dates_and_labels_are_french() {
        assert_eq!(euros(123_456), "1\u{202f}234,56\u{a0}€");
        assert_eq!(euros(2_214_060), "22\u{202f}140,60\u{a0}€");
        assert_eq!(euros(5), "0,05\u{a0}€");
        assert_eq!(euros(-100_000_000), "-1\u{202f}000\u{202f}000,00\u{a0}€");
        assert_eq!(datetime("2026-11-29T08:15:00Z"), "29 novembre 2026 à 9 h 15");
        assert_eq!(datetime("2026-11-29T09:15:00+01:00"), "29 novembre 2026 à 9 h 15");
        assert_eq!(datetime("2026-12-06T14:14:00Z"), "6 décembre 2026 à 15 h 14");
        assert_eq!(datetime("n/a"), "n/a");
        assert_eq!(date("2026-12-31"), "31 décembre 2026");
        assert_eq!(date("2027-03-01"), "1er mars 2027");
        assert_eq!(date("2026-12-31T23:30:00Z"), "1er janvier 2027", "an instant's day is Paris's");
        assert_eq!(request_status("accepted"), "Acceptée");
        assert_eq!(category("exhibition_loan"), "Prêt d'exposition");
        assert_eq!(referral_status("something_new"), "something_new", "unknown values are shown as they come");
        let statuses: Vec<_> = ["proposed", "accepted", "refused", "voided", "expired"].map(quote_status).into();
        assert_eq!(statuses, ["Proposé", "Accepté", "Refusé", "Annulé", "Expiré"]);
        assert_eq!(agreement("awaiting_member"), "En attente de l'accord de la collectivité sur le devis");
        assert_eq!(role("provider_consumer"), "Connecteur du partenaire");
    }

    #[test]
    fn every_word_of_the_vocabulary_has_its_french_label() {
        for c in Category::ALL {
            assert_eq!(category(c.as_str()), category_label(*c));
            assert_ne!(category_label(*c), c.as_str());
        }
        for k in PriceKind::ALL {
            assert_eq!(price_kind(k.as_str()), price_kind_label(*k));
            assert_ne!(price_kind_label(*k), k.as_str());
        }
        for k in MemberKind::ALL {
            assert_eq!(collectivity_kind(k.as_str()), member_kind_label(*k));
        }
        assert_eq!(collectivity_kind("epci"), "Intercommunalité (EPCI)");
        assert_eq!(price_kind("per_inhabitant"), "Par habitant");
        assert_eq!(price_kind("by_the_hour"), "by_the_hour", "unknown values are shown as they come");
    }

    #[test]
    fn quote_vat_is_rounded_half_up_like_billing() {
        assert_eq!(vat_cents(245_000, Some(2000)), Some(49_000));
        assert_eq!(vat_cents(1_005, Some(550)), Some(55), "55.275 cents round down");
        assert_eq!(vat_cents(1_010, Some(550)), Some(56), "55.55 cents round up");
        assert_eq!(vat_cents(1_000, None), None, "VAT does not apply");
        assert_eq!(vat_cents(1_000, Some(20_000)), None, "an unreadable rate");
        assert_eq!(percent_bp(2000), "20\u{a0}%");
        assert_eq!(percent_bp(550), "5,5\u{a0}%");
        assert_eq!(percent_bp(210), "2,1\u{a0}%");
        assert_eq!(percent_bp(5), "0,05\u{a0}%");
    }

    #[test]
    fn gateway_errors_become_french_sentences() {
        let error = |status, kind: &str| ApiError { status, kind: kind.into(), detail: String::new(), errors: vec![] };
        assert!(problem(&error(409, "member-not-active")).contains("adhésion n'est pas encore active"));
        assert!(problem(&error(404, "not-found")).contains("introuvable"));
        assert!(problem(&error(503, "")).contains("indisponible"));
        assert!(problem(&error(429, "rate-limited")).contains("patientez"));
        assert!(problem(&error(409, "quote-not-accepted")).starts_with("Le devis n'a pas encore été accepté"));
        assert!(problem(&error(409, "invalid-transition")).contains("pas possible dans l'état actuel"));
        let invalid = ApiError {
            status: 400,
            kind: "invalid-argument".into(),
            detail: String::new(),
            errors: vec![FieldError { field: "subject".into(), detail: "must not be empty".into() }],
        };
        assert!(problem(&invalid).contains("corrigez les champs"));
        assert_eq!(field_error(&invalid.errors[0]), "Ce champ est obligatoire.");
        let email = FieldError { field: "contact_email".into(), detail: "not an address".into() };
        assert!(field_error(&email).starts_with("Saisissez une adresse électronique valide"));
    }

    #[test]
    fn field_errors_are_french_and_never_show_the_english_detail() {
        let error = |field: &str, detail: &str| field_error(&FieldError { field: field.into(), detail: detail.into() });
        for (field, detail, expected) in [
            ("subject", "is invalid", "Cette valeur n'est pas acceptée."),
            ("subject", "is required", "Ce champ est obligatoire."),
            ("subject", "must be at most 200 characters", "Ce champ compte au plus 200 caractères."),
            ("description", "must be at most 5000 characters", "Ce champ compte au plus 5\u{202f}000 caractères."),
            ("limit", "must be an integer from 1 to 100", "Saisissez un nombre entier de 1 à 100."),
            ("rating", "must be between 1 and 5", "Saisissez un nombre entier de 1 à 5."),
            (
                "from",
                "must be a date (YYYY-MM-DD) or an RFC 3339 time",
                "Saisissez une date au format jj/mm/aaaa, par exemple 15/03/2027.",
            ),
            ("to", "must not be before from", "La date de fin doit suivre la date de début."),
            ("kind", "must be offer or orientation", "Choisissez une des valeurs proposées."),
            ("active", "must be true or false", "Répondez par oui ou par non."),
            (
                "cursor",
                "is not a cursor of this list",
                "Cette page de résultats n'est plus valable : revenez à la première page.",
            ),
            ("siren", "is invalid", "Ce SIREN n'est pas celui d'une collectivité de l'annuaire."),
            ("siren", "is required", "Ce champ est obligatoire."),
            ("site.commune_insee", "is invalid", "Ce code INSEE n'est pas celui d'une commune de l'annuaire."),
            ("provider_code", "unknown provider", "Ce partenaire est inconnu."),
            ("anything", "", "Cette valeur n'est pas acceptée."),
        ] {
            let message = error(field, detail);
            assert_eq!(message, expected, "{field}: {detail}");
            assert!(!message.contains("détail") && !message.contains(detail) || detail.is_empty(), "{message}");
        }
    }

    #[test]
    fn paris_time_follows_the_eu_rule_at_both_switches() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).unwrap_or_default();
        // 2026: summer time from Sunday 29 March 01:00 UTC to Sunday 25 October 01:00 UTC.
        assert_eq!(paris_offset_hours(at("2026-03-29T00:59:59Z")), 1);
        assert_eq!(paris_offset_hours(at("2026-03-29T01:00:00Z")), 2);
        assert_eq!(paris_offset_hours(at("2026-10-25T00:59:59Z")), 2);
        assert_eq!(paris_offset_hours(at("2026-10-25T01:00:00Z")), 1);
        assert_eq!(datetime("2026-03-29T00:59:00Z"), "29 mars 2026 à 1 h 59");
        assert_eq!(datetime("2026-03-29T01:00:00Z"), "29 mars 2026 à 3 h 00", "2 h 00 does not exist in Paris");
        assert_eq!(datetime("2026-10-25T00:30:00Z"), "25 octobre 2026 à 2 h 30");
        assert_eq!(datetime("2026-10-25T01:30:00Z"), "25 octobre 2026 à 2 h 30", "2 h 30 happens twice");
        // 2027: 28 March and 31 October; 2032: 28 March and 31 October; a leap year's February is winter.
        assert_eq!(paris_offset_hours(at("2027-03-28T01:00:00Z")), 2);
        assert_eq!(paris_offset_hours(at("2027-03-27T12:00:00Z")), 1);
        assert_eq!(paris_offset_hours(at("2027-10-31T00:59:00Z")), 2);
        assert_eq!(paris_offset_hours(at("2027-10-31T01:00:00Z")), 1);
        assert_eq!(paris_offset_hours(at("2028-02-29T12:00:00Z")), 1);
        assert_eq!(paris_offset_hours(at("2026-07-14T12:00:00Z")), 2);
        assert_eq!(datetime("2026-07-14T22:05:00Z"), "15 juillet 2026 à 0 h 05", "the day changes at Paris midnight");
        assert_eq!(datetime("2026-12-31T23:00:00Z"), "1er janvier 2027 à 0 h 00");
        for text in [datetime("2026-11-29T08:15:00Z"), date("2026-12-31")] {
            assert!(!text.contains("UTC") && !text.contains('/'), "{text}");
        }
    }

    #[test]
    fn user_dates_are_read_both_ways() {
        let day = NaiveDate::from_ymd_opt(2027, 3, 15);
        assert_eq!(parse_date("15/03/2027"), day);
        assert_eq!(parse_date(" 2027-03-15 "), day);
        assert_eq!(parse_date("2027-02-30"), None);
        assert_eq!(parse_date("15 mars"), None);
        assert!(DATE_HINT.contains("jj/mm/aaaa"));
    }

    #[test]
    fn numbers_use_a_narrow_no_break_space() {
        assert_eq!(number(1_261), "1\u{202f}261");
        assert_eq!(number(999), "999");
        assert_eq!(number(0), "0");
        assert_eq!(number(-1_234_567), "-1\u{202f}234\u{202f}567");
        assert_eq!(number(i64::MIN), "-9\u{202f}223\u{202f}372\u{202f}036\u{202f}854\u{202f}775\u{202f}808");
        assert_eq!(count(1_000), "1\u{202f}000");
    }

    #[test]
    fn older_english_reasons_are_read_in_french_with_names() {
        let names: HashMap<String, String> = [("caue77", "CAUE 77"), ("dir-amenagement", "Direction de l'aménagement")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        for (english, french) in [
            ("referred to caue77: à traiter avant l'été", "Orientée vers CAUE 77 : à traiter avant l'été"),
            (
                "declined by caue77: plan de charge complet; re-routed to dir-amenagement",
                "Déclinée par CAUE 77 : plan de charge complet ; réorientée vers Direction de l'aménagement",
            ),
            ("re-routed to caue77", "Réorientée vers CAUE 77"),
            ("accepted by caue77", "Acceptée par CAUE 77"),
            ("caue77 reported progress: visite faite", "Avancement déclaré par CAUE 77 : visite faite"),
            ("caue77 completed the work", "Prestation terminée par CAUE 77"),
            (
                "caue77 did not answer in time; no provider left: coordinator's triage",
                "Sans réponse de CAUE 77 dans le délai ; plus aucun partenaire possible : à orienter par la coordination",
            ),
            ("referral to caue77 withdrawn: request cancelled", "Orientation vers CAUE 77 retirée : demande annulée"),
            (
                "open orientation request: the coordinator triages it",
                "Demande d'orientation : la coordination choisit le partenaire",
            ),
            (
                "auto: no rule chose a provider: default provider caue77 of offer caue-conseil-archi",
                "Orientation automatique : aucune règle n'a choisi de partenaire : CAUE 77, partenaire par défaut de \
                 l'offre",
            ),
            (
                "Orientation automatique : aucune règle n'a choisi de partenaire : partenaire par défaut caue77 de \
                 l'offre caue-conseil-archi",
                "Orientation automatique : aucune règle n'a choisi de partenaire : CAUE 77, partenaire par défaut de \
                 l'offre",
            ),
            (
                "Orientation automatique : aucune règle n'a choisi de partenaire : caue77, partenaire par défaut de \
                 l'offre",
                "Orientation automatique : aucune règle n'a choisi de partenaire : CAUE 77, partenaire par défaut de \
                 l'offre",
            ),
            (
                "auto (rule set v3): re-routed: rule 2 \"Nord\" matched: provider caue77",
                "Orientation automatique (règles v3) : réorientation : règle 2 « Nord » retenue : partenaire CAUE 77",
            ),
            (
                "manual: assigned to caue77 by the coordinator (après appel)",
                "Orientation manuelle : confiée à CAUE 77 par la coordination (après appel)",
            ),
            ("Orientée vers caue77", "Orientée vers CAUE 77"),
            ("Projet abandonné", "Projet abandonné"),
        ] {
            assert_eq!(reason(english, &names), french, "{english}");
        }
    }

    #[test]
    fn arrondissements_and_codes_get_their_names() {
        let names: Vec<_> = ["771", "772", "773", "774", "775"].map(arrondissement).into();
        assert_eq!(names, ["Meaux", "Melun", "Provins", "Fontainebleau", "Torcy"]);
        assert_eq!(arrondissement("999"), "Arrondissement 999");
        let providers: HashMap<String, String> =
            [("caue77", "CAUE de Seine-et-Marne"), ("ad77", "Agence départementale")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into();
        assert_eq!(
            with_names("Déclinée par caue77 : pas dispo ; réorientée vers ad77", &providers),
            "Déclinée par CAUE de Seine-et-Marne : pas dispo ; réorientée vers Agence départementale"
        );
        assert_eq!(with_names("caue770 et xcaue77 restent", &providers), "caue770 et xcaue77 restent");
        assert_eq!(with_names("", &providers), "");
        assert_eq!(with_names("Orientée vers caue77", &HashMap::new()), "Orientée vers caue77");
    }
}
