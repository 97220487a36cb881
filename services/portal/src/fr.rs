//! French wording: labels of the API's enums, dates and amounts, and the messages shown for gateway errors.

use chrono::{DateTime, Utc};
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
        other => other,
    }
}

pub fn member_status(status: &str) -> &str {
    match status {
        "pending" => "En attente de validation",
        "active" => "Active",
        "suspended" => "Suspendue",
        "withdrawn" => "Retirée",
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

/// `2026-11-29T08:15:00Z` → `29/11/2026 à 08:15 UTC`; the input as is when unreadable.
pub fn datetime(value: &str) -> String {
    match DateTime::parse_from_rfc3339(value) {
        Ok(at) => at.with_timezone(&Utc).format("%d/%m/%Y à %H:%M UTC").to_string(),
        Err(_) => value.to_owned(),
    }
}

/// `2026-12-31` → `31/12/2026`.
pub fn date(value: &str) -> String {
    match chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(d) => d.format("%d/%m/%Y").to_string(),
        Err(_) => datetime(value),
    }
}

/// Cents as euros, French style: `123456` → `1 234,56 €` (non-breaking spaces).
pub fn euros(cents: i64) -> String {
    let negative = cents < 0;
    let cents = cents.unsigned_abs();
    let units = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push('\u{a0}');
        }
        grouped.push(c);
    }
    format!("{}{grouped},{:02}\u{a0}€", if negative { "-" } else { "" }, cents % 100)
}

/// The sentence shown for a failed call (above the form, in the error summary).
pub fn problem(error: &ApiError) -> String {
    let by_kind = match error.kind.as_str() {
        "member-not-active" => {
            Some("Votre adhésion n'est pas encore active : la coordination doit d'abord la valider.")
        }
        "already-member" | "already-applied" | "already-exists" => {
            Some("Cette collectivité a déjà une adhésion (en cours ou active).")
        }
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

/// The message shown next to a field for one of the gateway's field errors.
pub fn field_error(error: &FieldError) -> String {
    let detail = error.detail.to_lowercase();
    let message = if detail.contains("required") || detail.contains("empty") || detail.contains("missing") {
        "Ce champ est obligatoire."
    } else if detail.contains("too long") || detail.contains("at most") || detail.contains("exceeds") {
        "Ce champ est trop long."
    } else if error.field.contains("email") {
        "Saisissez une adresse électronique valide (par exemple nom@mairie.fr)."
    } else if error.field.contains("siren") {
        "Ce SIREN n'est pas celui d'une collectivité de l'annuaire."
    } else if error.field.contains("password") {
        "Le mot de passe doit compter 12 à 128 caractères, dont au moins trois types parmi minuscules, majuscules, \
         chiffres et symboles, et ne pas contenir votre identifiant."
    } else if error.field.contains("provider") {
        "Ce partenaire est inconnu."
    } else if error.field.contains("condition") {
        "Cette condition n'est pas valide ou rend la règle inatteignable."
    } else {
        "Cette valeur n'est pas acceptée."
    };
    if error.detail.is_empty() { message.to_owned() } else { format!("{message} (détail : {})", error.detail) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_dates_and_labels_are_french() {
        assert_eq!(euros(123_456), "1\u{a0}234,56\u{a0}€");
        assert_eq!(euros(5), "0,05\u{a0}€");
        assert_eq!(euros(-100_000_000), "-1\u{a0}000\u{a0}000,00\u{a0}€");
        assert_eq!(datetime("2026-11-29T08:15:00Z"), "29/11/2026 à 08:15 UTC");
        assert_eq!(datetime("2026-11-29T09:15:00+01:00"), "29/11/2026 à 08:15 UTC");
        assert_eq!(datetime("n/a"), "n/a");
        assert_eq!(date("2026-12-31"), "31/12/2026");
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
        assert_eq!(field_error(&invalid.errors[0]), "Ce champ est obligatoire. (détail : must not be empty)");
        let email = FieldError { field: "contact_email".into(), detail: "not an address".into() };
        assert!(field_error(&email).starts_with("Saisissez une adresse électronique valide"));
    }
}
