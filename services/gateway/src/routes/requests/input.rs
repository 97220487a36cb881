//! The bodies and query parameters of `requests`'s routes, as clients send them (validated by the handlers).

use serde::Deserialize;

use axum::http::HeaderMap;

use crate::extract::Checks;
use crate::views;

/// The response header telling that a `POST /v1/requests` with an `Idempotency-Key` answered the request a
/// previous call with that key submitted.
pub const IDEMPOTENCY_REPLAYED: &str = "idempotency-replayed";
pub const MAX_SUBJECT_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const MAX_REASON_CHARS: usize = 1000;
pub const MAX_COMMENT_CHARS: usize = 2000;
pub const MAX_ADDRESS_CHARS: usize = 300;
pub const MAX_DATE_CHARS: usize = 40;

/// The dates of an exhibition loan: start not in the past, end not before start, at most 366 days.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = SubmissionDates)]
pub struct Dates {
    #[schema(value_type = String, format = Date, required = true)]
    pub(crate) start_date: Option<String>,
    /// Included.
    #[schema(value_type = String, format = Date, required = true)]
    pub(crate) end_date: Option<String>,
}

/// Where an integrated engineering study takes place.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = SubmissionSite)]
pub struct Site {
    /// No control characters but line breaks.
    #[schema(max_length = 300, pattern = r"^[^\x00-\x09\x0B-\x1F\x7F-\x9F]*$")]
    pub(crate) address: Option<String>,
    /// INSEE code of the commune (5 characters: 2 digits or 2A/2B, then 3 digits); defaults to the member's own
    /// commune when empty.
    #[schema(max_length = 5, pattern = r"^(([0-9]{2}|2[AB])[0-9]{3})?$")]
    pub(crate) commune_insee: Option<String>,
}

/// The member is the caller; a `member_id` in the body is ignored. A request for an offer (`kind` absent or
/// `offer`) needs `offer_id` and what its category needs: `dates` for an exhibition_loan (start not in the past,
/// end not before start, at most 366 days), a `site` for an integrated_engineering study (the commune defaults
/// to the member's own when it is a commune). An open orientation request (`kind: orientation`) has no
/// `offer_id` and needs a `description`; it goes to the coordinator's triage queue.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = RequestSubmission)]
pub struct Submission {
    /// `offer` (default) or `orientation` (an open request: no offer_id).
    #[schema(value_type = Option<views::RequestKindDoc>, default = "offer")]
    pub(crate) kind: Option<String>,
    /// The offer's id (required unless `kind` is `orientation`).
    #[schema(format = "uuid", max_length = 100)]
    pub(crate) offer_id: Option<String>,
    /// Not blank; no control characters but line breaks.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, pattern = r"^[^\x00-\x09\x0B-\x1F\x7F-\x9F]*[^\s\x00-\x09\x0B-\x1F\x7F-\x9F][^\x00-\x09\x0B-\x1F\x7F-\x9F]*$",
        example = "Réfection de la voirie du centre-bourg")]
    pub(crate) subject: Option<String>,
    /// Required (not blank) for an orientation request; no control characters but line breaks.
    #[schema(max_length = 10000, pattern = r"^[^\x00-\x09\x0B-\x1F\x7F-\x9F]*$")]
    pub(crate) description: Option<String>,
    /// Required for an exhibition_loan offer.
    #[serde(default, deserialize_with = "crate::extract::object")]
    pub(crate) dates: Option<Dates>,
    /// For an integrated_engineering offer (the commune defaults to the member's own).
    #[serde(default, deserialize_with = "crate::extract::object")]
    pub(crate) site: Option<Site>,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// One member (member users: only their own; referent: one it follows; coordinator: any). Absent: every
    /// request the caller may see.
    #[param(value_type = Option<String>, format = "uuid")]
    pub(crate) member_id: Option<String>,
    #[param(value_type = Option<views::RequestStatusDoc>)]
    pub(crate) status: Option<String>,
    #[param(value_type = Option<views::OfferCategoryDoc>)]
    pub(crate) category: Option<String>,
    /// Submitted on or after (YYYY-MM-DD or RFC 3339).
    #[param(
        max_length = 40,
        pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)(?:[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub(crate) from: Option<String>,
    /// Submitted on or before this date (the whole day), or before this RFC 3339 time; not before `from`.
    #[param(
        max_length = 40,
        pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)(?:[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub(crate) to: Option<String>,
    /// Only items created or changed strictly after this instant (RFC 3339 with its offset, e.g.
    /// `2026-12-06T10:00:00Z`); use the `Date` of your last sync's response, or your last sync time.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40, pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$")]
    pub(crate) updated_since: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    pub(crate) cursor: Option<String>,
}

/// The filters of `GET /v1/requests/summary`: those of the list, without paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// One member (member users: only their own; referent: one it follows; coordinator: any). Absent: every
    /// request the caller may see.
    #[param(value_type = Option<String>, format = "uuid")]
    pub(crate) member_id: Option<String>,
    /// Accepted for symmetry with the list, and ignored: every status is counted.
    #[param(value_type = Option<views::RequestStatusDoc>)]
    pub(crate) status: Option<String>,
    #[param(value_type = Option<views::OfferCategoryDoc>)]
    pub(crate) category: Option<String>,
    /// Submitted on or after (YYYY-MM-DD or RFC 3339).
    #[param(
        max_length = 40,
        pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)(?:[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub(crate) from: Option<String>,
    /// Submitted on or before this date (the whole day), or before this RFC 3339 time; not before `from`.
    #[param(
        max_length = 40,
        pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)(?:[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    pub(crate) to: Option<String>,
}

/// Why (optional).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ReasonBody)]
pub struct ReasonBody {
    #[schema(max_length = 1000)]
    pub(crate) reason: Option<String>,
}

/// A rating from 1 to 5 and a comment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = FeedbackBody)]
pub struct FeedbackBody {
    #[schema(value_type = u32, required = true, minimum = 1, maximum = 5)]
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(crate) rating: Option<u32>,
    /// No control characters but line breaks.
    #[schema(max_length = 2000, pattern = r"^[^\x00-\x09\x0B-\x1F\x7F-\x9F]*$")]
    pub(crate) comment: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodParams {
    /// YYYY-MM-DD or RFC 3339.
    #[param(value_type = String, required = true, max_length = 40, pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)(?:[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))?$")]
    pub(crate) from: Option<String>,
    /// YYYY-MM-DD (that day included) or RFC 3339 (excluded); after `from` (the period is not empty: a date
    /// `to` may be the day of `from`, a time `to` may not equal it).
    #[param(value_type = String, required = true, max_length = 40, pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)(?:[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))?$")]
    pub(crate) to: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TriageParams {
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    pub(crate) cursor: Option<String>,
}

/// An offer and/or a provider (at least one).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = TriageAssignment)]
pub struct AssignBody {
    /// The offer (required for an open request; routed by the rules unless a provider is named).
    #[schema(format = "uuid", max_length = 100)]
    pub(crate) offer_id: Option<String>,
    /// The provider it is offered to directly.
    #[schema(max_length = 100)]
    pub(crate) provider_code: Option<String>,
    /// No control characters but line breaks.
    #[schema(max_length = 1000, pattern = r"^[^\x00-\x09\x0B-\x1F\x7F-\x9F]*$")]
    pub(crate) note: Option<String>,
}

/// The optional `Idempotency-Key` header: visible ASCII, at most 128 characters; empty when absent.
pub fn idempotency_key(headers: &HeaderMap, checks: &mut Checks) -> String {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return String::new();
    };
    match value.to_str() {
        Ok(key) => {
            let key = key.trim();
            if key.len() > MAX_IDEMPOTENCY_KEY_CHARS {
                checks.fail("Idempotency-Key", format!("must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters"));
            }
            // A header value may hold a tab; a key may not (no control character).
            if key.chars().any(char::is_control) {
                checks.fail("Idempotency-Key", "must be visible ASCII");
            }
            key.to_owned()
        }
        Err(_) => {
            checks.fail("Idempotency-Key", "must be visible ASCII");
            String::new()
        }
    }
}

/// `?updated_since=` of the lists an app syncs (requests, referrals, messages, quotes, invoices): an RFC 3339 time
/// with its offset (a date alone is refused: a sync needs an instant); absent: no filter; empty: refused (a
/// parameter is left out, not given empty).
pub fn updated_since(checks: &mut Checks, raw: Option<String>) -> Option<id77_proto::prost_types::Timestamp> {
    let raw = raw?.trim().to_owned();
    if raw.is_empty() {
        checks.fail("updated_since", "must not be empty (leave the parameter out)");
        return None;
    }
    if raw.len() > MAX_DATE_CHARS {
        checks.fail("updated_since", format!("must be at most {MAX_DATE_CHARS} characters"));
        return None;
    }
    match chrono::DateTime::parse_from_rfc3339(&raw) {
        Ok(at) => Some(id77_platform::time::to_proto(at.with_timezone(&chrono::Utc))),
        Err(_) => {
            checks.fail("updated_since", "must be an RFC 3339 time with its offset (e.g. 2026-12-06T10:00:00Z)");
            None
        }
    }
}

#[cfg(test)]
mod sync_tests {
    use super::*;

    #[test]
    fn updated_since_takes_an_rfc_3339_time_with_its_offset_only() {
        let mut checks = Checks::new();
        let at = updated_since(&mut checks, Some(" 2026-12-06T11:00:00.5+01:00 ".into()));
        assert_eq!(at.map(|t| (t.seconds, t.nanos)), Some((1_796_551_200, 500_000_000)));
        assert_eq!(updated_since(&mut checks, None), None);
        assert!(checks.finish().is_ok());
        for bad in ["", " ", "2026-12-06", "2026-12-06T10:00:00", "hier", &"9".repeat(41)] {
            let mut checks = Checks::new();
            assert_eq!(updated_since(&mut checks, Some(bad.into())), None, "{bad}");
            let problem = checks.finish().err().unwrap_or_else(|| panic!("{bad} accepted"));
            assert_eq!(problem.errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["updated_since"]);
        }
    }
}
