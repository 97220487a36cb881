//! Requests' protobuf messages to and from its rows and rules: statuses, requests with their history and
//! feedback, submissions, statistics and notification preferences.

use chrono::{DateTime, Utc};
use id77_platform::{ServiceError, time};
use id77_proto::requests::v1 as pb;
use uuid::Uuid;

use crate::domain::lifecycle::RequestStatus;
use crate::domain::{Details, RawDates, RawSite, RawSubmission, stats};
use crate::store::{FeedbackRow, HistoryRow, RequestRow, Statistics};

pub fn status_to_proto(status: RequestStatus) -> pb::RequestStatus {
    match status {
        RequestStatus::Submitted => pb::RequestStatus::Submitted,
        RequestStatus::Triage => pb::RequestStatus::Triage,
        RequestStatus::Referred => pb::RequestStatus::Referred,
        RequestStatus::Accepted => pb::RequestStatus::Accepted,
        RequestStatus::InProgress => pb::RequestStatus::InProgress,
        RequestStatus::Completed => pb::RequestStatus::Completed,
        RequestStatus::Declined => pb::RequestStatus::Declined,
        RequestStatus::Cancelled => pb::RequestStatus::Cancelled,
        RequestStatus::Closed => pb::RequestStatus::Closed,
    }
}

fn status_name_to_proto(status: &str) -> i32 {
    RequestStatus::parse(status).map_or(pb::RequestStatus::Unspecified, status_to_proto).into()
}

/// The status named by a filter (UNSPECIFIED: no filter).
pub fn status_from_proto(status: i32) -> Result<Option<RequestStatus>, ServiceError> {
    let invalid = || ServiceError::invalid("status", "is not a request status");
    Ok(Some(match pb::RequestStatus::try_from(status).map_err(|_| invalid())? {
        pb::RequestStatus::Unspecified => return Ok(None),
        pb::RequestStatus::Submitted => RequestStatus::Submitted,
        pb::RequestStatus::Triage => RequestStatus::Triage,
        pb::RequestStatus::Referred => RequestStatus::Referred,
        pb::RequestStatus::Accepted => RequestStatus::Accepted,
        pb::RequestStatus::InProgress => RequestStatus::InProgress,
        pb::RequestStatus::Completed => RequestStatus::Completed,
        pb::RequestStatus::Declined => RequestStatus::Declined,
        pb::RequestStatus::Cancelled => RequestStatus::Cancelled,
        pb::RequestStatus::Closed => RequestStatus::Closed,
    }))
}

pub fn parse_id(field: &str, raw: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw.trim()).map_err(|_| ServiceError::invalid(field, "must be a UUID"))
}

pub fn timestamp(
    field: &str,
    ts: Option<&id77_proto::prost_types::Timestamp>,
) -> Result<Option<DateTime<Utc>>, ServiceError> {
    match ts {
        None => Ok(None),
        Some(ts) => time::from_proto(ts).map(Some).ok_or_else(|| ServiceError::invalid(field, "is not a valid time")),
    }
}

/// A submission as it arrives (`member_id` empty: the caller's member).
pub fn submission(req: pb::SubmitRequestRequest) -> RawSubmission {
    RawSubmission {
        member_id: req.member_id,
        offer_id: req.offer_id,
        orientation: req.orientation,
        subject: req.subject,
        description: req.description,
        idempotency_key: req.idempotency_key,
        dates: req.dates.map(|d| RawDates { start_date: d.start_date, end_date: d.end_date }),
        site: req.site.map(|s| RawSite { address: s.address, commune_insee: s.commune_insee }),
    }
}

fn history_to_proto(h: HistoryRow) -> pb::StatusChange {
    pb::StatusChange {
        status: status_name_to_proto(&h.status),
        reason: h.reason,
        at: Some(time::to_proto(h.at)),
        from: h.from_status.as_deref().map_or(pb::RequestStatus::Unspecified.into(), status_name_to_proto),
        actor_user_id: h.actor_user_id.map(|id| id.to_string()).unwrap_or_default(),
        actor_role: h.actor_role,
        provider_code: h.provider_code.unwrap_or_default(),
        actor_name: h.actor_name,
    }
}

fn feedback_to_proto(f: FeedbackRow) -> pb::Feedback {
    pb::Feedback {
        rating: u32::try_from(f.rating).unwrap_or(0),
        comment: f.comment,
        given_by: f.given_by.to_string(),
        given_at: Some(time::to_proto(f.given_at)),
        updated_at: Some(time::to_proto(f.updated_at)),
    }
}

fn dates_to_proto(details: &Details) -> Option<pb::LoanDates> {
    details.dates.map(|d| pb::LoanDates {
        start_date: d.start_date.format("%Y-%m-%d").to_string(),
        end_date: d.end_date.format("%Y-%m-%d").to_string(),
    })
}

/// A request with its history and its feedback.
pub fn request_to_proto(r: RequestRow, history: Vec<HistoryRow>, feedback: Option<FeedbackRow>) -> pb::Request {
    let details = r.details.0;
    pb::Request {
        id: r.id.to_string(),
        member_id: r.member_id.to_string(),
        offer_id: r.offer_id.map(|id| id.to_string()).unwrap_or_default(),
        subject: r.subject,
        description: r.description,
        status: status_name_to_proto(&r.status),
        provider_code: r.provider_code.unwrap_or_default(),
        submitted_at: Some(time::to_proto(r.submitted_at)),
        updated_at: Some(time::to_proto(r.updated_at)),
        history: history.into_iter().map(history_to_proto).collect(),
        offer_version: r.offer_version.unwrap_or(0),
        offer_category: r.offer_category.unwrap_or_default(),
        kind: if r.orientation { "orientation" } else { "offer" }.to_owned(),
        dates: dates_to_proto(&details),
        site: details.site.map(|s| pb::Site { address: s.address, commune_insee: s.commune_insee }),
        feedback: feedback.map(feedback_to_proto),
        first_answered_at: time::to_proto_opt(r.first_answered_at),
        completed_at: time::to_proto_opt(r.completed_at),
    }
}

/// Counts by status, every status present, in lifecycle order.
pub fn summary(rows: &[(String, i64)]) -> pb::RequestSummary {
    let counts: Vec<pb::StatusCount> = stats::status_counts(rows)
        .into_iter()
        .map(|(status, count)| pb::StatusCount { status: status_to_proto(status).into(), count })
        .collect();
    let total = counts.iter().map(|c| c.count).sum();
    pb::RequestSummary { counts, total }
}

fn keyed(rows: Vec<(String, i64)>) -> Vec<pb::KeyCount> {
    stats::ranked(rows).into_iter().map(|(key, count)| pb::KeyCount { key, count }).collect()
}

fn duration((count, median): (i64, Option<f64>)) -> pb::DurationStats {
    pb::DurationStats { count: u64::try_from(count).unwrap_or(0), median_seconds: median.unwrap_or(0.0) }
}

/// The coordinator's statistics over [`from`, `to`).
pub fn statistics(from: DateTime<Utc>, to: DateTime<Utc>, s: Statistics) -> pb::RequestStatistics {
    let by_status: Vec<pb::KeyCount> = stats::status_counts(&s.by_status)
        .into_iter()
        .map(|(status, count)| pb::KeyCount { key: status.as_str().to_owned(), count })
        .collect();
    let (count, mean, distribution) = stats::satisfaction(&s.ratings);
    pb::RequestStatistics {
        from: Some(time::to_proto(from)),
        to: Some(time::to_proto(to)),
        total: by_status.iter().map(|c| c.count).sum(),
        by_status,
        by_category: keyed(s.by_category),
        by_provider: keyed(s.by_provider),
        by_epci: keyed(s.by_epci),
        by_arrondissement: keyed(s.by_arrondissement),
        time_to_first_answer: Some(duration(s.first_answer)),
        time_to_completion: Some(duration(s.completion)),
        satisfaction: Some(pb::Satisfaction { count, mean, distribution: distribution.to_vec() }),
    }
}

pub fn preferences_to_proto(p: crate::notify::store::Preferences) -> pb::NotificationPreferences {
    pb::NotificationPreferences { status_changed: p.status_changed, message_posted: p.message_posted }
}
