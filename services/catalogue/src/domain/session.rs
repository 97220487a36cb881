//! Training and awareness sessions, the pure part: what a new session must say (dates, place, seats), who may
//! be registered (named participants), and the status machines (session scheduled → cancelled | held;
//! registration confirmed | waitlisted → cancelled). Seats and quotas are the database's (migration 0103).

use chrono::{DateTime, Duration, Utc};
use id77_platform::error::FieldViolation;
use id77_platform::validate::is_plausible_email;
use id77_proto::vocabulary::Category;

use super::MAX_PRICE_CENTS;

/// Most seats of one session.
pub const MAX_CAPACITY: u32 = 1000;
/// Most participants registered by one call.
pub const MAX_PARTICIPANTS: usize = 20;
/// Longest participant name or function.
pub const MAX_NAME_CHARS: usize = 120;
/// Longest address, commune name.
pub const MAX_ADDRESS_CHARS: usize = 200;
/// Longest online link.
pub const MAX_LINK_CHARS: usize = 500;
/// Longest free text (details, rating comment).
pub const MAX_DETAILS_CHARS: usize = 4000;
/// Longest session (a multi-day training).
pub const MAX_SESSION_DAYS: i64 = 31;
/// How far ahead a session may be scheduled.
pub const MAX_LEAD_DAYS: i64 = 2 * 366;

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Scheduled,
    Cancelled,
    Held,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Cancelled => "cancelled",
            Self::Held => "held",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Scheduled, Self::Cancelled, Self::Held].into_iter().find(|x| x.as_str() == s)
    }

    /// The French word, for messages (« cette session est annulée »).
    pub fn label_fr(self) -> &'static str {
        match self {
            Self::Scheduled => "programmée",
            Self::Cancelled => "annulée",
            Self::Held => "déjà tenue",
        }
    }
}

/// Where a registration is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationStatus {
    Confirmed,
    Waitlisted,
    Cancelled,
}

impl RegistrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Waitlisted => "waitlisted",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Confirmed, Self::Waitlisted, Self::Cancelled].into_iter().find(|x| x.as_str() == s)
    }
}

/// Only awareness and training offers have sessions.
pub fn has_sessions(category: Category) -> bool {
    category == Category::AwarenessTraining
}

/// A place as asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaceInput {
    pub online: bool,
    pub commune_insee: String,
    pub commune_name: String,
    pub address: String,
    pub online_link: String,
}

/// A new session as asked (times already read from the wire; `None`: missing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionInput {
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub place: PlaceInput,
    pub capacity: u32,
    pub member_quota: u32,
    /// `None`: the start.
    pub registration_deadline: Option<DateTime<Utc>>,
    pub price_per_participant_cents: i64,
    pub details: String,
}

/// A valid new session: an in-person place has a commune of Seine-et-Marne (named as the directory names it)
/// and an address (no link); an online one has an https link (no commune).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub place: PlaceInput,
    pub capacity: i32,
    pub member_quota: i32,
    pub registration_deadline: DateTime<Utc>,
    pub price_per_participant_cents: i64,
    pub details: String,
}

fn violation(field: &str, description: impl Into<String>) -> FieldViolation {
    FieldViolation { field: field.to_owned(), description: description.into() }
}

fn too_long(s: &str, max: usize) -> bool {
    s.chars().count() > max
}

/// A commune of Seine-et-Marne: `77` and three digits.
pub fn is_seine_et_marne_insee(code: &str) -> bool {
    code.len() == 5 && code.starts_with("77") && code.bytes().all(|b| b.is_ascii_digit())
}

/// An `https://` link with a host, no spaces.
pub fn is_https_link(link: &str) -> bool {
    link.strip_prefix("https://").is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        host.contains('.') && !host.starts_with('.') && !link.chars().any(|c| c.is_whitespace() || c.is_control())
    })
}

fn validate_place(place: &PlaceInput, out: &mut Vec<FieldViolation>) -> PlaceInput {
    let p = PlaceInput {
        online: place.online,
        commune_insee: place.commune_insee.trim().to_owned(),
        commune_name: place.commune_name.trim().to_owned(),
        address: place.address.trim().to_owned(),
        online_link: place.online_link.trim().to_owned(),
    };
    if p.online {
        if !is_https_link(&p.online_link) || too_long(&p.online_link, MAX_LINK_CHARS) {
            out.push(violation("place.online_link", "must be an https:// link for an online session"));
        }
        return PlaceInput { commune_insee: String::new(), commune_name: String::new(), address: String::new(), ..p };
    }
    let commune_name = match super::communes::commune_name(&p.commune_insee) {
        Some(name) if is_seine_et_marne_insee(&p.commune_insee) => name.to_owned(),
        _ => {
            out.push(violation("place.commune_insee", "must be the INSEE code of a commune of Seine-et-Marne (77xxx)"));
            String::new()
        }
    };
    if p.address.is_empty() || too_long(&p.address, MAX_ADDRESS_CHARS) {
        out.push(violation("place.address", format!("is required, at most {MAX_ADDRESS_CHARS} characters")));
    }
    PlaceInput { online_link: String::new(), commune_name, ..p }
}

fn validate_times(
    input: &SessionInput,
    now: DateTime<Utc>,
    out: &mut Vec<FieldViolation>,
) -> Option<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)> {
    let (Some(start), Some(end)) = (input.starts_at, input.ends_at) else {
        if input.starts_at.is_none() {
            out.push(violation("starts_at", "is required"));
        }
        if input.ends_at.is_none() {
            out.push(violation("ends_at", "is required"));
        }
        return None;
    };
    let before = out.len();
    if start <= now {
        out.push(violation("starts_at", "must be in the future"));
    } else if start - now > Duration::days(MAX_LEAD_DAYS) {
        out.push(violation("starts_at", format!("must be within {MAX_LEAD_DAYS} days")));
    }
    if end <= start {
        out.push(violation("ends_at", "must be after starts_at"));
    } else if end - start > Duration::days(MAX_SESSION_DAYS) {
        out.push(violation("ends_at", format!("a session lasts at most {MAX_SESSION_DAYS} days")));
    }
    let deadline = input.registration_deadline.unwrap_or(start);
    if deadline > start {
        out.push(violation("registration_deadline", "must not be after starts_at"));
    } else if deadline <= now {
        out.push(violation("registration_deadline", "must be in the future"));
    }
    (out.len() == before).then_some((start, end, deadline))
}

/// Validates a new session, reporting every problem at once.
pub fn validate_session(input: &SessionInput, now: DateTime<Utc>) -> Result<NewSession, Vec<FieldViolation>> {
    let mut out = Vec::new();
    let times = validate_times(input, now, &mut out);
    let place = validate_place(&input.place, &mut out);
    if input.capacity == 0 || input.capacity > MAX_CAPACITY {
        out.push(violation("capacity", format!("must be between 1 and {MAX_CAPACITY}")));
    }
    if input.member_quota > MAX_CAPACITY {
        out.push(violation("member_quota", format!("must be between 0 (no quota) and {MAX_CAPACITY}")));
    }
    if !(0..=MAX_PRICE_CENTS).contains(&input.price_per_participant_cents) {
        out.push(violation("price_per_participant_cents", format!("must be between 0 and {MAX_PRICE_CENTS}")));
    }
    let details = input.details.trim().to_owned();
    if too_long(&details, MAX_DETAILS_CHARS) {
        out.push(violation("details", format!("must be at most {MAX_DETAILS_CHARS} characters")));
    }
    match times {
        Some((starts_at, ends_at, registration_deadline)) if out.is_empty() => Ok(NewSession {
            starts_at,
            ends_at,
            place,
            capacity: i32::try_from(input.capacity).unwrap_or(i32::MAX),
            member_quota: i32::try_from(input.member_quota).unwrap_or(i32::MAX),
            registration_deadline,
            price_per_participant_cents: input.price_per_participant_cents,
            details,
        }),
        _ => Err(out),
    }
}

/// A named participant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Participant {
    pub name: String,
    pub function: String,
    pub email: String,
}

/// The participants of one registration call: 1 to [`MAX_PARTICIPANTS`], each named, with a plausible e-mail,
/// no e-mail twice (the database refuses an e-mail already registered by the member).
pub fn validate_participants(input: &[Participant]) -> Result<Vec<Participant>, Vec<FieldViolation>> {
    if input.is_empty() || input.len() > MAX_PARTICIPANTS {
        return Err(vec![violation("participants", format!("must name 1 to {MAX_PARTICIPANTS} participants"))]);
    }
    let mut out = Vec::new();
    let mut seen = Vec::<String>::new();
    let participants = input
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let field = |f: &str| format!("participants[{i}].{f}");
            let (name, function, email) = (p.name.trim(), p.function.trim(), p.email.trim().to_owned());
            if name.is_empty() || too_long(name, MAX_NAME_CHARS) {
                out.push(violation(&field("name"), format!("is required, at most {MAX_NAME_CHARS} characters")));
            }
            if too_long(function, MAX_NAME_CHARS) {
                out.push(violation(&field("function"), format!("must be at most {MAX_NAME_CHARS} characters")));
            }
            if !is_plausible_email(&email) {
                out.push(violation(&field("email"), "must be an e-mail address"));
            } else if seen.contains(&email.to_lowercase()) {
                out.push(violation(&field("email"), "is given twice"));
            }
            seen.push(email.to_lowercase());
            Participant { name: name.to_owned(), function: function.to_owned(), email }
        })
        .collect();
    if out.is_empty() { Ok(participants) } else { Err(out) }
}

/// What a transition does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<S> {
    To(S),
    /// Already there: a retry, nothing to do or announce.
    AlreadyDone,
}

/// Cancelling a session: a scheduled one is cancelled; a held one cannot be.
pub fn cancel_session(current: SessionStatus) -> Result<Step<SessionStatus>, SessionStatus> {
    match current {
        SessionStatus::Scheduled => Ok(Step::To(SessionStatus::Cancelled)),
        SessionStatus::Cancelled => Ok(Step::AlreadyDone),
        SessionStatus::Held => Err(current),
    }
}

/// Why attendance cannot be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttendanceRefusal {
    NotStarted,
    NotScheduled(SessionStatus),
}

/// Recording attendance: a scheduled session that has started becomes held (once: a retry changes nothing).
pub fn hold_session(
    current: SessionStatus,
    starts_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Step<SessionStatus>, AttendanceRefusal> {
    match current {
        SessionStatus::Held => Ok(Step::AlreadyDone),
        SessionStatus::Cancelled => Err(AttendanceRefusal::NotScheduled(current)),
        SessionStatus::Scheduled if now < starts_at => Err(AttendanceRefusal::NotStarted),
        SessionStatus::Scheduled => Ok(Step::To(SessionStatus::Held)),
    }
}

/// Cancelling a registration: only while its session is scheduled.
pub fn cancel_registration(
    current: RegistrationStatus,
    session: SessionStatus,
) -> Result<Step<RegistrationStatus>, SessionStatus> {
    match (current, session) {
        (RegistrationStatus::Cancelled, _) => Ok(Step::AlreadyDone),
        (_, SessionStatus::Scheduled) => Ok(Step::To(RegistrationStatus::Cancelled)),
        (_, other) => Err(other),
    }
}

/// A rating's score and comment.
pub fn validate_rating(score: u32, comment: &str) -> Result<(i32, String), Vec<FieldViolation>> {
    let mut out = Vec::new();
    if !(1..=5).contains(&score) {
        out.push(violation("score", "must be between 1 and 5"));
    }
    let comment = comment.trim();
    if too_long(comment, MAX_DETAILS_CHARS) {
        out.push(violation("comment", format!("must be at most {MAX_DETAILS_CHARS} characters")));
    }
    if out.is_empty() { Ok((i32::try_from(score).unwrap_or(1), comment.to_owned())) } else { Err(out) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).single().unwrap_or_default() + Duration::hours(h)
    }

    fn input() -> SessionInput {
        SessionInput {
            starts_at: Some(at(48)),
            ends_at: Some(at(51)),
            place: PlaceInput {
                online: false,
                commune_insee: "77288".into(),
                commune_name: "Melun".into(),
                address: "Hôtel du Département, 12 rue des Saints-Pères".into(),
                online_link: "https://ignored.example".into(),
            },
            capacity: 10,
            member_quota: 2,
            registration_deadline: None,
            price_per_participant_cents: 0,
            details: " Programme ".into(),
        }
    }

    fn fields(r: Result<NewSession, Vec<FieldViolation>>) -> Vec<String> {
        r.err().unwrap_or_default().into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_valid_session_defaults_its_deadline_to_the_start_and_drops_the_other_place() {
        let typed = SessionInput { place: PlaceInput { commune_name: "melun".into(), ..input().place }, ..input() };
        let s = validate_session(&typed, at(0)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(s.place.commune_name, "Melun");
        assert_eq!(s.registration_deadline, at(48));
        assert_eq!(s.place.online_link, "");
        assert_eq!(s.details, "Programme");
        let online = SessionInput {
            place: PlaceInput {
                online: true,
                online_link: "https://visio.seine-et-marne.fr/s/1".into(),
                ..input().place
            },
            ..input()
        };
        let s = validate_session(&online, at(0)).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((s.place.commune_insee.as_str(), s.place.address.as_str()), ("", ""));
    }

    #[test]
    fn dates_must_be_ordered_and_in_the_future() {
        assert_eq!(fields(validate_session(&input(), at(49))), ["starts_at", "registration_deadline"]);
        assert_eq!(fields(validate_session(&SessionInput { ends_at: Some(at(48)), ..input() }, at(0))), ["ends_at"]);
        let late = SessionInput { registration_deadline: Some(at(49)), ..input() };
        assert_eq!(fields(validate_session(&late, at(0))), ["registration_deadline"]);
        let none = SessionInput { starts_at: None, ends_at: None, ..input() };
        assert_eq!(fields(validate_session(&none, at(0))), ["starts_at", "ends_at"]);
        let long = SessionInput { ends_at: Some(at(48 + 24 * 40)), ..input() };
        assert_eq!(fields(validate_session(&long, at(0))), ["ends_at"]);
    }

    #[test]
    fn places_are_in_seine_et_marne_or_online_over_https() {
        let paris = SessionInput { place: PlaceInput { commune_insee: "75056".into(), ..input().place }, ..input() };
        assert_eq!(fields(validate_session(&paris, at(0))), ["place.commune_insee"]);
        let unknown = SessionInput { place: PlaceInput { commune_insee: "77999".into(), ..input().place }, ..input() };
        assert_eq!(fields(validate_session(&unknown, at(0))), ["place.commune_insee"]);
        let nowhere = SessionInput { place: PlaceInput { address: " ".into(), ..input().place }, ..input() };
        assert_eq!(fields(validate_session(&nowhere, at(0))), ["place.address"]);
        let http = SessionInput {
            place: PlaceInput { online: true, online_link: "http://x.fr".into(), ..input().place },
            ..input()
        };
        assert_eq!(fields(validate_session(&http, at(0))), ["place.online_link"]);
        assert!(is_https_link("https://meet.example.org/abc?x=1"));
        assert!(!is_https_link("https://localhost/abc") && !is_https_link("https://a.fr/b c"));
        assert!(
            is_seine_et_marne_insee("77186") && !is_seine_et_marne_insee("7718") && !is_seine_et_marne_insee("77a86")
        );
    }

    #[test]
    fn seats_quota_and_price_are_bounded() {
        assert_eq!(fields(validate_session(&SessionInput { capacity: 0, ..input() }, at(0))), ["capacity"]);
        assert_eq!(fields(validate_session(&SessionInput { capacity: 1001, ..input() }, at(0))), ["capacity"]);
        assert!(validate_session(&SessionInput { capacity: 1000, member_quota: 0, ..input() }, at(0)).is_ok());
        let price = SessionInput { price_per_participant_cents: -1, ..input() };
        assert_eq!(fields(validate_session(&price, at(0))), ["price_per_participant_cents"]);
        assert_eq!(fields(validate_session(&SessionInput { member_quota: 5000, ..input() }, at(0))), ["member_quota"]);
    }

    #[test]
    fn participants_are_named_with_distinct_emails() {
        let p =
            |name: &str, email: &str| Participant { name: name.into(), function: "maire".into(), email: email.into() };
        let ok = validate_participants(&[p(" Anne Martin ", "anne@meaux.fr")]).unwrap_or_default();
        assert_eq!(ok[0].name, "Anne Martin");
        let bad = validate_participants(&[p("", "anne@meaux.fr"), p("Paul", "ANNE@meaux.fr"), p("Zoé", "zoe")]);
        let fields: Vec<String> = bad.err().unwrap_or_default().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["participants[0].name", "participants[1].email", "participants[2].email"]);
        assert!(validate_participants(&[]).is_err());
        assert!(validate_participants(&vec![p("A", "a@b.fr"); 21]).is_err());
        let long = Participant { function: "x".repeat(121), ..p("A", "a@b.fr") };
        assert!(validate_participants(&[long]).is_err());
    }

    #[test]
    fn sessions_are_cancelled_or_held_once() {
        use SessionStatus::*;
        assert_eq!(cancel_session(Scheduled), Ok(Step::To(Cancelled)));
        assert_eq!(cancel_session(Cancelled), Ok(Step::AlreadyDone));
        assert_eq!(cancel_session(Held), Err(Held));
        assert_eq!(hold_session(Scheduled, at(10), at(9)), Err(AttendanceRefusal::NotStarted));
        assert_eq!(hold_session(Scheduled, at(10), at(10)), Ok(Step::To(Held)));
        assert_eq!(hold_session(Held, at(10), at(11)), Ok(Step::AlreadyDone));
        assert_eq!(hold_session(Cancelled, at(10), at(11)), Err(AttendanceRefusal::NotScheduled(Cancelled)));
        assert_eq!(SessionStatus::parse("held"), Some(Held));
        assert_eq!(Cancelled.label_fr(), "annulée");
        assert_eq!(RegistrationStatus::parse("waitlisted"), Some(RegistrationStatus::Waitlisted));
        assert!(has_sessions(Category::AwarenessTraining) && !has_sessions(Category::ExhibitionLoan));
    }

    #[test]
    fn registrations_are_cancelled_while_the_session_is_scheduled() {
        use RegistrationStatus as R;
        assert_eq!(cancel_registration(R::Confirmed, SessionStatus::Scheduled), Ok(Step::To(R::Cancelled)));
        assert_eq!(cancel_registration(R::Waitlisted, SessionStatus::Scheduled), Ok(Step::To(R::Cancelled)));
        assert_eq!(cancel_registration(R::Cancelled, SessionStatus::Held), Ok(Step::AlreadyDone));
        assert_eq!(cancel_registration(R::Confirmed, SessionStatus::Held), Err(SessionStatus::Held));
    }

    #[test]
    fn ratings_score_one_to_five() {
        assert_eq!(validate_rating(5, " Très utile "), Ok((5, "Très utile".to_owned())));
        assert!(validate_rating(0, "").is_err() && validate_rating(6, "").is_err());
        assert!(validate_rating(3, &"x".repeat(4001)).is_err());
    }
}
