//! Request rules, free of I/O: the lifecycle ([`lifecycle`]), what a submission must carry for each kind of
//! offer, feedback, and the shaping of statistics ([`stats`]).

pub mod lifecycle;
pub mod names;
pub mod stats;

use chrono::NaiveDate;
use id77_platform::ServiceError;
use id77_platform::error::FieldViolation;
use id77_proto::vocabulary::Category;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::RequestsError;
pub use lifecycle::{Actor, Next, RequestStatus, State, Step, Trigger};

pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;
pub const MAX_ADDRESS_CHARS: usize = 300;
pub const MAX_REASON_CHARS: usize = 1000;
pub const MAX_COMMENT_CHARS: usize = 2000;
/// Longest exhibition loan.
pub const MAX_LOAN_DAYS: i64 = 366;

/// An exhibition loan is lent for dates: its request must carry them, and no other request may.
pub fn needs_dates(category: Category) -> bool {
    category == Category::ExhibitionLoan
}

/// An integrated engineering study takes place somewhere: its request carries a site (the member's commune by
/// default), and only a study or an open orientation request may name one.
pub fn needs_site(category: Category) -> bool {
    category == Category::IntegratedEngineering
}

/// Loan dates as submitted (ISO dates, not yet checked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawDates {
    pub start_date: String,
    pub end_date: String,
}

/// A site as submitted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawSite {
    pub address: String,
    pub commune_insee: String,
}

/// What a request carries besides its subject, by the offer's category. Stored as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<LoanDates>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<Site>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoanDates {
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub address: String,
    pub commune_insee: String,
}

/// A submission whose own fields are valid (what the offer needs is checked by [`validate_details`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub member_id: Uuid,
    /// `None`: an open orientation request.
    pub offer_id: Option<Uuid>,
    pub subject: String,
    pub description: String,
    pub idempotency_key: Option<String>,
    pub dates: Option<RawDates>,
    pub site: Option<RawSite>,
}

impl Submission {
    /// What makes two submissions "the same body" for an idempotency key: every field the client sent.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::json!({
            "offer_id": self.offer_id.map(|id| id.to_string()),
            "subject": self.subject,
            "description": self.description,
            "dates": self.dates,
            "site": self.site,
        });
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn printable(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() && c != '\n')
}

/// A submission as it arrives: `orientation` marks an open request (no offer).
#[derive(Debug, Clone, Default)]
pub struct RawSubmission {
    pub member_id: String,
    pub offer_id: String,
    pub orientation: bool,
    pub subject: String,
    pub description: String,
    pub idempotency_key: String,
    pub dates: Option<RawDates>,
    pub site: Option<RawSite>,
}

/// Validates every field and reports all violations together.
pub fn validate_submission(raw: RawSubmission) -> Result<Submission, ServiceError> {
    let RawSubmission { member_id, offer_id, orientation, subject, description, idempotency_key, dates, site } = raw;
    let mut violations = Vec::new();
    let mut violation = |field: &str, description: &str| {
        violations.push(FieldViolation { field: field.to_owned(), description: description.to_owned() })
    };
    let member_id = Uuid::parse_str(member_id.trim()).map_err(|_| violation("member_id", "must be a UUID")).ok();
    let offer_id = match (orientation, offer_id.trim()) {
        (true, "") => Some(None),
        (true, _) => {
            violation("offer_id", "must be empty for an open orientation request");
            None
        }
        (false, raw) => Uuid::parse_str(raw).map(Some).map_err(|_| violation("offer_id", "must be a UUID")).ok(),
    };
    let subject = subject.trim();
    if subject.is_empty() || subject.chars().count() > MAX_SUBJECT_CHARS || !printable(subject) {
        violation("subject", "must be 1 to 200 printable characters");
    }
    let description = description.trim();
    if description.chars().count() > MAX_DESCRIPTION_CHARS || !printable(description) {
        violation("description", "must be at most 10000 printable characters");
    }
    if orientation && description.is_empty() {
        violation("description", "must say what the member wants to do (an open request has no offer)");
    }
    let key = idempotency_key.trim();
    if key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS || key.chars().any(char::is_control) {
        violation("idempotency_key", "must be at most 128 printable characters");
    }
    let trim_dates =
        dates.map(|d| RawDates { start_date: d.start_date.trim().into(), end_date: d.end_date.trim().into() });
    let trim_site =
        site.map(|s| RawSite { address: s.address.trim().into(), commune_insee: s.commune_insee.trim().into() });
    match (member_id, offer_id) {
        (Some(member_id), Some(offer_id)) if violations.is_empty() => Ok(Submission {
            member_id,
            offer_id,
            subject: subject.to_owned(),
            description: description.to_owned(),
            idempotency_key: (!key.is_empty()).then(|| key.to_owned()),
            dates: trim_dates.filter(|d| !(d.start_date.is_empty() && d.end_date.is_empty())),
            site: trim_site.filter(|s| !(s.address.is_empty() && s.commune_insee.is_empty())),
        }),
        _ => Err(ServiceError::invalid_fields(violations)),
    }
}

/// An INSEE commune code: 5 characters, digits, or 2A/2B followed by 3 digits (Corsica).
pub fn is_insee_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 5
        && (b[..2].iter().all(u8::is_ascii_digit) || code.starts_with("2A") || code.starts_with("2B"))
        && b[2..].iter().all(u8::is_ascii_digit)
}

/// What the request must carry for its offer's category (`None`: an open orientation request). `today` bounds
/// loan dates; `member_commune` is the member's own INSEE code (a commune's), the site's default.
pub fn validate_details(
    category: Option<Category>,
    dates: Option<&RawDates>,
    site: Option<&RawSite>,
    today: NaiveDate,
    member_commune: Option<&str>,
) -> Result<Details, ServiceError> {
    let mut violations = Vec::new();
    let mut violation =
        |field: &str, description: String| violations.push(FieldViolation { field: field.to_owned(), description });
    let mut details = Details::default();
    match (category.is_some_and(needs_dates), dates) {
        (true, None) => violation("dates", "are required for an exhibition loan (start_date and end_date)".into()),
        (true, Some(raw)) => {
            let parse =
                |field: &str, raw: &str| NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| field.to_owned());
            match (parse("dates.start_date", &raw.start_date), parse("dates.end_date", &raw.end_date)) {
                (Ok(start), Ok(end)) => {
                    if start < today {
                        violation("dates.start_date", format!("must not be in the past (today is {today})"));
                    }
                    if end < start {
                        violation("dates.end_date", "must not be before start_date".into());
                    } else if (end - start).num_days() >= MAX_LOAN_DAYS {
                        violation("dates.end_date", format!("a loan lasts at most {MAX_LOAN_DAYS} days"));
                    }
                    details.dates = Some(LoanDates { start_date: start, end_date: end });
                }
                (start, end) => {
                    for field in [start.err(), end.err()].into_iter().flatten() {
                        violation(&field, "must be a date YYYY-MM-DD".into());
                    }
                }
            }
        }
        (false, Some(_)) => violation("dates", "are only for an exhibition loan".into()),
        (false, None) => {}
    }
    // An open orientation request (no category) may name a site too.
    match (category.is_none_or(needs_site), site) {
        (true, site) => {
            let address = site.map(|s| s.address.as_str()).unwrap_or("");
            let commune = site.map(|s| s.commune_insee.as_str()).filter(|c| !c.is_empty());
            if address.chars().count() > MAX_ADDRESS_CHARS || !printable(address) {
                violation("site.address", format!("must be at most {MAX_ADDRESS_CHARS} printable characters"));
            }
            let commune = commune.or(member_commune.filter(|c| !c.is_empty()));
            match commune {
                Some(code) if is_insee_code(code) => {
                    details.site = Some(Site { address: address.to_owned(), commune_insee: code.to_owned() });
                }
                Some(_) => violation("site.commune_insee", "must be an INSEE commune code (5 characters)".into()),
                // An open request may name no site; a study must (a member that is not a commune has no default).
                None if category.is_some() => violation(
                    "site.commune_insee",
                    "is required for an integrated engineering study (the member is not a commune)".into(),
                ),
                None if !address.is_empty() => violation("site.commune_insee", "is required with an address".into()),
                None => {}
            }
        }
        (false, Some(_)) => violation("site", "is only for an integrated engineering study".into()),
        (false, None) => {}
    }
    if violations.is_empty() { Ok(details) } else { Err(ServiceError::invalid_fields(violations)) }
}

/// A member's rating of a completed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub rating: i16,
    pub comment: String,
}

/// Feedback may be given on a completed request, and revised until the request is closed.
pub fn validate_feedback(status: RequestStatus, rating: u32, comment: &str) -> Result<Feedback, ServiceError> {
    let comment = comment.trim();
    let mut violations = Vec::new();
    if !(1..=5).contains(&rating) {
        violations.push(FieldViolation { field: "rating".into(), description: "must be 1 to 5".into() });
    }
    if comment.chars().count() > MAX_COMMENT_CHARS || !printable(comment) {
        violations.push(FieldViolation {
            field: "comment".into(),
            description: format!("must be at most {MAX_COMMENT_CHARS} printable characters"),
        });
    }
    if !violations.is_empty() {
        return Err(ServiceError::invalid_fields(violations));
    }
    if status != RequestStatus::Completed {
        return Err(RequestsError::FeedbackNotOpen { status: status.as_str() }.into());
    }
    Ok(Feedback { rating: rating as i16, comment: comment.to_owned() })
}

/// A free-text reason (cancel, close): trimmed and bounded.
pub fn validate_reason(reason: &str) -> Result<String, ServiceError> {
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON_CHARS || !printable(reason) {
        return Err(ServiceError::invalid("reason", "must be at most 1000 printable characters"));
    }
    Ok(reason.to_owned())
}

/// The same key was used for another body.
pub fn idempotency_conflict(key: &str) -> ServiceError {
    RequestsError::IdempotencyKeyReused(key.to_owned()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    fn fields(e: Result<impl std::fmt::Debug, ServiceError>) -> Vec<String> {
        e.err().map(|e| e.violations.into_iter().map(|v| v.field).collect()).unwrap_or_default()
    }

    #[allow(clippy::too_many_arguments)]
    fn validate(
        member_id: &str,
        offer_id: &str,
        orientation: bool,
        subject: &str,
        description: &str,
        idempotency_key: &str,
        dates: Option<RawDates>,
        site: Option<RawSite>,
    ) -> Result<Submission, ServiceError> {
        validate_submission(RawSubmission {
            member_id: member_id.into(),
            offer_id: offer_id.into(),
            orientation,
            subject: subject.into(),
            description: description.into(),
            idempotency_key: idempotency_key.into(),
            dates,
            site,
        })
    }

    fn submit(offer: &str, orientation: bool, description: &str) -> Result<Submission, ServiceError> {
        let id = Uuid::now_v7().to_string();
        validate(&id, offer, orientation, "École", description, "", None, None)
    }

    #[test]
    fn submission_validation_reports_each_field() {
        let id = Uuid::now_v7().to_string();
        let ok = validate(&id, &id, false, " École ", "", "key-1", None, None);
        assert_eq!(ok.as_ref().map(|s| s.subject.as_str()).ok(), Some("École"));
        assert_eq!(ok.ok().and_then(|s| s.idempotency_key), Some("key-1".to_owned()));
        let err = validate("x", "y", false, "", &"d".repeat(10_001), &"k".repeat(129), None, None);
        assert_eq!(fields(err), vec!["member_id", "offer_id", "subject", "description", "idempotency_key"]);
        assert!(validate(&id, &id, false, &"s".repeat(201), "", "", None, None).is_err());
    }

    #[test]
    fn an_open_request_has_no_offer_and_says_what_it_wants() {
        assert_eq!(submit("", true, "Rénover l'école : par où commencer ?").ok().map(|s| s.offer_id), Some(None));
        assert_eq!(fields(submit("", true, "")), vec!["description"]);
        assert_eq!(fields(submit(&Uuid::now_v7().to_string(), true, "x")), vec!["offer_id"]);
        assert_eq!(fields(submit("", false, "x")), vec!["offer_id"]);
    }

    #[test]
    fn an_exhibition_loan_needs_valid_future_dates() {
        let today = day("2026-11-29");
        let loan = Some(Category::ExhibitionLoan);
        let dates = |a: &str, b: &str| RawDates { start_date: a.into(), end_date: b.into() };
        let ok = validate_details(loan, Some(&dates("2027-01-04", "2027-01-29")), None, today, None);
        assert_eq!(ok.ok().and_then(|d| d.dates).map(|d| d.end_date), Some(day("2027-01-29")));
        assert_eq!(fields(validate_details(loan, None, None, today, None)), vec!["dates"]);
        assert_eq!(
            fields(validate_details(loan, Some(&dates("2026-11-28", "2026-12-01")), None, today, None)),
            vec!["dates.start_date"]
        );
        assert_eq!(
            fields(validate_details(loan, Some(&dates("2027-02-01", "2027-01-01")), None, today, None)),
            vec!["dates.end_date"]
        );
        assert_eq!(
            fields(validate_details(loan, Some(&dates("2027-02-01", "2028-03-01")), None, today, None)),
            vec!["dates.end_date"]
        );
        assert_eq!(
            fields(validate_details(loan, Some(&dates("1/2/27", "x")), None, today, None)),
            vec!["dates.start_date", "dates.end_date"]
        );
        let site = RawSite { address: "1 rue".into(), commune_insee: "77284".into() };
        assert_eq!(
            fields(validate_details(loan, Some(&dates("2027-01-04", "2027-01-05")), Some(&site), today, None)),
            vec!["site"]
        );
    }

    #[test]
    fn a_study_needs_a_site_defaulting_to_the_members_commune() {
        let today = day("2026-11-29");
        let study = Some(Category::IntegratedEngineering);
        let site = |a: &str, c: &str| RawSite { address: a.into(), commune_insee: c.into() };
        let own = validate_details(study, None, None, today, Some("77284"));
        assert_eq!(own.ok().and_then(|d| d.site).map(|s| s.commune_insee), Some("77284".to_owned()));
        let named =
            validate_details(study, None, Some(&site("Place de l'Hôtel de Ville", "77288")), today, Some("77284"));
        assert_eq!(named.ok().and_then(|d| d.site).map(|s| s.commune_insee), Some("77288".to_owned()));
        assert_eq!(fields(validate_details(study, None, None, today, None)), vec!["site.commune_insee"]);
        assert_eq!(
            fields(validate_details(study, None, Some(&site("", "7728")), today, None)),
            vec!["site.commune_insee"]
        );
        assert_eq!(
            fields(validate_details(study, None, Some(&site(&"a".repeat(301), "77284")), today, None)),
            vec!["site.address"]
        );
        assert!(is_insee_code("2A004") && is_insee_code("77284") && !is_insee_code("2C004") && !is_insee_code("7728x"));
        // Training needs nothing and takes no dates; an open request may name a site.
        let training = Some(Category::AwarenessTraining);
        assert_eq!(validate_details(training, None, None, today, None).ok(), Some(Details::default()));
        assert_eq!(fields(validate_details(training, None, Some(&site("", "77284")), today, None)), vec!["site"]);
        assert!(validate_details(None, None, None, today, None).is_ok_and(|d| d.site.is_none()));
        assert!(validate_details(None, None, Some(&site("", "77284")), today, None).is_ok_and(|d| d.site.is_some()));
    }

    #[test]
    fn the_fingerprint_changes_with_any_field_of_the_body() {
        let id = Uuid::now_v7().to_string();
        let base = validate(&id, &id, false, "S", "D", "k", None, None).ok();
        let same = validate(&id, &id, false, " S ", "D", "other key", None, None).ok();
        let other = validate(&id, &id, false, "S", "D2", "k", None, None).ok();
        let dated = validate(
            &id,
            &id,
            false,
            "S",
            "D",
            "k",
            Some(RawDates { start_date: "2027-01-01".into(), end_date: "2027-01-02".into() }),
            None,
        )
        .ok();
        let f = |s: &Option<Submission>| s.as_ref().map(Submission::fingerprint);
        assert_eq!(f(&base), f(&same), "the key and surrounding spaces are not the body");
        assert_ne!(f(&base), f(&other));
        assert_ne!(f(&base), f(&dated));
    }

    #[test]
    fn feedback_on_completed_requests_only_rated_1_to_5() {
        assert_eq!(
            validate_feedback(RequestStatus::Completed, 5, " Très utile ").ok().map(|f| f.comment),
            Some("Très utile".into())
        );
        assert_eq!(fields(validate_feedback(RequestStatus::Completed, 0, "")), vec!["rating"]);
        assert_eq!(
            fields(validate_feedback(RequestStatus::Completed, 6, &"c".repeat(2001))),
            vec!["rating", "comment"]
        );
        for status in [RequestStatus::Accepted, RequestStatus::Closed, RequestStatus::Cancelled] {
            let e = validate_feedback(status, 4, "");
            assert_eq!(e.err().map(|e| e.reason.to_string()).as_deref(), Some("FEEDBACK_NOT_OPEN"), "{status:?}");
        }
    }
}
