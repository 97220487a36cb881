//! Requests as JSON: a request with its history, the status counts, the statistics and the triage queue.

use id77_proto::requests::v1 as requests;
use id77_proto::routing::v1 as routing;
use serde::Serialize;

use super::catalogue::OfferCategoryDoc;
use super::common::{UNSPECIFIED, non_empty, timestamp};

/// The lifecycle (docs/adr/0011-request-lifecycle.md): submitted → triage (open request, or no provider left) →
/// referred → accepted → in_progress → completed → closed; declined (not re-routed), cancelled and closed are
/// final.
#[derive(utoipa::ToSchema)]
#[schema(as = RequestStatus, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum RequestStatusDoc {
    Submitted,
    Triage,
    Referred,
    Accepted,
    InProgress,
    Completed,
    Closed,
    Declined,
    Cancelled,
}

/// How a request was made.
#[derive(utoipa::ToSchema)]
#[schema(as = RequestKind, rename_all = "snake_case")]
#[allow(dead_code)]
pub enum RequestKindDoc {
    /// For an offer of the catalogue.
    Offer,
    /// An open request without an offer: the coordinator triages it.
    Orientation,
}

pub fn request_status(status: i32) -> &'static str {
    match requests::RequestStatus::try_from(status) {
        Ok(requests::RequestStatus::Submitted) => "submitted",
        Ok(requests::RequestStatus::Referred) => "referred",
        Ok(requests::RequestStatus::Accepted) => "accepted",
        Ok(requests::RequestStatus::Declined) => "declined",
        Ok(requests::RequestStatus::Cancelled) => "cancelled",
        Ok(requests::RequestStatus::Completed) => "completed",
        Ok(requests::RequestStatus::Triage) => "triage",
        Ok(requests::RequestStatus::InProgress) => "in_progress",
        Ok(requests::RequestStatus::Closed) => "closed",
        _ => UNSPECIFIED,
    }
}

/// One step of a request's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatusChange {
    #[schema(value_type = RequestStatusDoc)]
    pub status: &'static str,
    /// The status left (null for the submission).
    #[schema(value_type = Option<RequestStatusDoc>)]
    #[schema(required = true)]
    pub from: Option<&'static str>,
    /// Why, when given.
    #[schema(required = true)]
    pub reason: Option<String>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    pub at: Option<String>,
    /// The user who made the change; null for routing's events.
    #[schema(required = true)]
    pub actor_user_id: Option<String>,
    /// The role it acted in (member_admin, member_user, coordinator), or `system` for routing's events.
    #[schema(required = true)]
    pub actor_role: Option<String>,
    /// Who, by name: the person's display name, `connecteur <provider>` for a provider's connector; null for the
    /// platform's own decisions (e.g. an expired quote).
    #[schema(required = true)]
    pub actor_name: Option<String>,
    /// The provider the request is with after the change.
    #[schema(required = true)]
    pub provider_code: Option<String>,
}

impl From<requests::StatusChange> for StatusChange {
    fn from(c: requests::StatusChange) -> Self {
        let from = request_status(c.from);
        Self {
            status: request_status(c.status),
            from: (from != UNSPECIFIED).then_some(from),
            at: timestamp(c.at.as_ref()),
            reason: non_empty(c.reason),
            actor_user_id: non_empty(c.actor_user_id),
            actor_role: non_empty(c.actor_role),
            actor_name: non_empty(c.actor_name),
            provider_code: non_empty(c.provider_code),
        }
    }
}

/// The dates of an exhibition loan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoanDates {
    #[schema(format = Date)]
    pub start_date: String,
    /// Included.
    #[schema(format = Date)]
    pub end_date: String,
}

/// Where an integrated engineering study takes place.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Site {
    #[schema(max_length = 300)]
    #[schema(required = true)]
    pub address: Option<String>,
    /// INSEE code of the commune (5 characters). On submission, defaults to the member's own commune when empty.
    pub commune_insee: String,
}

/// The member's rating of a completed request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Feedback {
    #[schema(minimum = 1, maximum = 5)]
    pub rating: u32,
    #[schema(required = true)]
    pub comment: Option<String>,
    /// The user who gave it.
    #[schema(format = "uuid")]
    pub given_by: String,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    pub given_at: Option<String>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    pub updated_at: Option<String>,
}

/// A member's request, with its history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Request {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub member_id: String,
    /// Null for an open orientation request until the coordinator attaches an offer.
    #[schema(required = true)]
    pub offer_id: Option<String>,
    /// The offer's version when the request was made.
    #[schema(required = true)]
    pub offer_version: Option<i32>,
    #[schema(value_type = Option<OfferCategoryDoc>)]
    #[schema(required = true)]
    pub offer_category: Option<String>,
    /// `offer` or `orientation`.
    #[schema(value_type = RequestKindDoc)]
    pub kind: String,
    pub subject: String,
    pub description: String,
    #[schema(value_type = RequestStatusDoc)]
    pub status: &'static str,
    /// The provider it was referred to, once routed.
    #[schema(required = true)]
    pub provider_code: Option<String>,
    /// Exhibition loans.
    #[schema(required = true)]
    pub dates: Option<LoanDates>,
    /// Integrated engineering studies (and open requests that name one).
    #[schema(required = true)]
    pub site: Option<Site>,
    #[schema(required = true)]
    pub feedback: Option<Feedback>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    pub submitted_at: Option<String>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    pub updated_at: Option<String>,
    /// First answer of a provider (accepted or declined); null before.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    pub first_answered_at: Option<String>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    pub completed_at: Option<String>,
    /// Oldest first.
    pub history: Vec<StatusChange>,
}

impl From<requests::Request> for Request {
    fn from(r: requests::Request) -> Self {
        Self {
            status: request_status(r.status),
            submitted_at: timestamp(r.submitted_at.as_ref()),
            updated_at: timestamp(r.updated_at.as_ref()),
            first_answered_at: timestamp(r.first_answered_at.as_ref()),
            completed_at: timestamp(r.completed_at.as_ref()),
            history: r.history.into_iter().map(StatusChange::from).collect(),
            provider_code: non_empty(r.provider_code),
            offer_id: non_empty(r.offer_id),
            offer_version: (r.offer_version > 0).then_some(r.offer_version),
            offer_category: non_empty(r.offer_category),
            kind: r.kind,
            dates: r.dates.map(|d| LoanDates { start_date: d.start_date, end_date: d.end_date }),
            site: r.site.map(|s| Site { address: non_empty(s.address), commune_insee: s.commune_insee }),
            feedback: r.feedback.map(|f| Feedback {
                rating: f.rating,
                comment: non_empty(f.comment),
                given_by: f.given_by,
                given_at: timestamp(f.given_at.as_ref()),
                updated_at: timestamp(f.updated_at.as_ref()),
            }),
            id: r.id,
            member_id: r.member_id,
            subject: r.subject,
            description: r.description,
        }
    }
}

/// Counts by status.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestSummary {
    /// Every status (see RequestStatus) with its count, zeros included, in lifecycle order.
    #[schema(value_type = std::collections::BTreeMap<String, u64>)]
    pub counts: serde_json::Map<String, serde_json::Value>,
    pub total: u64,
}

impl From<requests::RequestSummary> for RequestSummary {
    fn from(s: requests::RequestSummary) -> Self {
        let counts = s.counts.into_iter().map(|c| (request_status(c.status).to_owned(), c.count.into())).collect();
        Self { counts, total: s.total }
    }
}

/// A count under a key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyCount {
    /// A status, category, provider code, EPCI SIREN or arrondissement code; null: unknown or none.
    #[schema(required = true)]
    pub key: Option<String>,
    pub count: u64,
}

fn key_counts(rows: Vec<requests::KeyCount>) -> Vec<KeyCount> {
    rows.into_iter().map(|k| KeyCount { key: non_empty(k.key), count: k.count }).collect()
}

/// A duration's median over `count` requests.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DurationStats {
    pub count: u64,
    /// Median (percentile_cont 0.5); null when count is 0.
    #[schema(required = true)]
    pub median_seconds: Option<f64>,
}

impl From<Option<requests::DurationStats>> for DurationStats {
    fn from(d: Option<requests::DurationStats>) -> Self {
        let d = d.unwrap_or_default();
        Self { count: d.count, median_seconds: (d.count > 0).then_some(d.median_seconds) }
    }
}

/// The members' ratings.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Satisfaction {
    pub count: u64,
    #[schema(required = true)]
    pub mean: Option<f64>,
    /// Counts of ratings 1 to 5.
    pub distribution: Vec<u64>,
}

/// Over the requests submitted in [from, to).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RequestStatistics {
    /// RFC 3339, UTC.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    pub from: Option<String>,
    /// RFC 3339, UTC (excluded).
    #[schema(format = DateTime)]
    #[schema(required = true)]
    pub to: Option<String>,
    pub total: u64,
    pub by_status: Vec<KeyCount>,
    pub by_category: Vec<KeyCount>,
    pub by_provider: Vec<KeyCount>,
    pub by_epci: Vec<KeyCount>,
    pub by_arrondissement: Vec<KeyCount>,
    /// Submission to the first answer (accepted or declined) of a provider.
    pub time_to_first_answer: DurationStats,
    pub time_to_completion: DurationStats,
    pub satisfaction: Satisfaction,
}

impl From<requests::RequestStatistics> for RequestStatistics {
    fn from(s: requests::RequestStatistics) -> Self {
        let satisfaction = s.satisfaction.unwrap_or_default();
        Self {
            from: timestamp(s.from.as_ref()),
            to: timestamp(s.to.as_ref()),
            total: s.total,
            by_status: key_counts(s.by_status),
            by_category: key_counts(s.by_category),
            by_provider: key_counts(s.by_provider),
            by_epci: key_counts(s.by_epci),
            by_arrondissement: key_counts(s.by_arrondissement),
            time_to_first_answer: s.time_to_first_answer.into(),
            time_to_completion: s.time_to_completion.into(),
            satisfaction: Satisfaction {
                count: satisfaction.count,
                mean: (satisfaction.count > 0).then_some(satisfaction.mean),
                distribution: satisfaction.distribution,
            },
        }
    }
}

/// A request in the coordinator's triage queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TriageItem {
    #[schema(format = "uuid")]
    pub request_id: String,
    #[schema(format = "uuid")]
    pub member_id: String,
    pub subject: String,
    pub description: String,
    /// Null for an open orientation request.
    #[schema(required = true)]
    pub offer_id: Option<String>,
    /// Why it is here (null: an open orientation request).
    #[schema(required = true)]
    pub reason: Option<String>,
    /// RFC 3339, UTC; null when not (yet) set.
    #[schema(format = DateTime)]
    #[schema(required = true)]
    pub received_at: Option<String>,
}

impl From<routing::TriageItem> for TriageItem {
    fn from(t: routing::TriageItem) -> Self {
        Self {
            received_at: timestamp(t.received_at.as_ref()),
            offer_id: non_empty(t.offer_id),
            reason: non_empty(t.reason),
            request_id: t.request_id,
            member_id: t.member_id,
            subject: t.subject,
            description: t.description,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use id77_proto::prost_types::Timestamp;
    use serde_json::json;

    fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    #[test]
    fn statuses_are_lowercase_strings() {
        let statuses: Vec<_> = (1..=6).map(request_status).collect();
        assert_eq!(statuses, ["submitted", "referred", "accepted", "declined", "cancelled", "completed"]);
        // Unknown values from a newer service do not break the gateway.
        assert_eq!(request_status(99), UNSPECIFIED);
    }

    #[test]
    fn request_json_has_history_and_nullable_provider() {
        let request = Request::from(requests::Request {
            id: "r1".into(),
            member_id: "m1".into(),
            offer_id: "o1".into(),
            subject: "s".into(),
            description: "d".into(),
            status: requests::RequestStatus::Referred.into(),
            provider_code: String::new(),
            submitted_at: ts(1_700_000_000, 0),
            updated_at: ts(1_700_000_060, 0),
            history: vec![requests::StatusChange {
                status: requests::RequestStatus::Submitted.into(),
                reason: String::new(),
                at: ts(1_700_000_000, 0),
                actor_user_id: "u1".into(),
                actor_role: "member_user".into(),
                ..Default::default()
            }],
            offer_version: 3,
            kind: "offer".into(),
            site: Some(requests::Site { address: String::new(), commune_insee: "77284".into() }),
            ..Default::default()
        });
        let value = serde_json::to_value(request).unwrap_or_default();
        assert_eq!(value["status"], "referred");
        assert_eq!(value["provider_code"], serde_json::Value::Null);
        assert_eq!(value["offer_version"], 3);
        assert_eq!(value["site"], json!({"address": null, "commune_insee": "77284"}));
        assert_eq!(value["feedback"], serde_json::Value::Null);
        assert_eq!(
            value["history"],
            json!([{"status": "submitted", "from": null, "reason": null, "at": "2023-11-14T22:13:20Z",
                    "actor_user_id": "u1", "actor_role": "member_user", "actor_name": null, "provider_code": null}])
        );
    }

    #[test]
    fn summaries_and_statistics_name_every_status_and_null_empty_medians() {
        let summary = RequestSummary::from(requests::RequestSummary {
            counts: vec![
                requests::StatusCount { status: requests::RequestStatus::Submitted.into(), count: 2 },
                requests::StatusCount { status: requests::RequestStatus::InProgress.into(), count: 1 },
            ],
            total: 3,
        });
        assert_eq!(
            serde_json::to_value(summary).unwrap_or_default(),
            json!({"counts": {"submitted": 2, "in_progress": 1}, "total": 3})
        );
        let stats = RequestStatistics::from(requests::RequestStatistics {
            by_epci: vec![requests::KeyCount { key: String::new(), count: 4 }],
            time_to_completion: Some(requests::DurationStats { count: 2, median_seconds: 90.5 }),
            ..Default::default()
        });
        let value = serde_json::to_value(stats).unwrap_or_default();
        assert_eq!(value["by_epci"], json!([{"key": null, "count": 4}]));
        assert_eq!(value["time_to_first_answer"], json!({"count": 0, "median_seconds": null}));
        assert_eq!(value["time_to_completion"], json!({"count": 2, "median_seconds": 90.5}));
        assert_eq!(value["satisfaction"], json!({"count": 0, "mean": null, "distribution": []}));
    }

    #[test]
    fn status_changes_say_who_by_name() {
        let change = StatusChange::from(requests::StatusChange {
            status: requests::RequestStatus::Cancelled.into(),
            actor_role: "member_admin".into(),
            actor_name: "Marie Dupont".into(),
            ..Default::default()
        });
        assert_eq!(serde_json::to_value(change).unwrap_or_default()["actor_name"], "Marie Dupont");
    }
}
