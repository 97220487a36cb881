//! The inputs of the routing routes: the query of `GET /v1/referrals` (an unknown parameter is refused) and the
//! JSON bodies, with what the OpenAPI document says of them. Fields are optional for serde so that a missing one
//! is a field error naming it (see `crate::extract::Checks`); the document states which are required.

use serde::Deserialize;

/// `GET /v1/referrals`: filters and page (an unknown parameter is refused).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this request's referrals.
    #[param(format = "uuid")]
    pub(super) request_id: Option<String>,
    /// Only this provider's; a provider always sees only its own.
    #[param(pattern = "^[a-z0-9-]{1,64}$")]
    pub(super) provider: Option<String>,
    /// Coordinator only: only open referrals whose reminder is due (deadline near or passed).
    #[param(value_type = Option<bool>)]
    pub(super) at_risk: Option<String>,
    /// Only items created or changed strictly after this instant (RFC 3339 with its offset, e.g.
    /// `2026-12-06T10:00:00Z`); use the `Date` of your last sync's response, or your last sync time.
    #[param(value_type = Option<String>, format = DateTime, max_length = 40, pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)-02-29)[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$")]
    pub(super) updated_since: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub(super) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    pub(super) cursor: Option<String>,
}

/// A rule as the coordinator writes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = RoutingRuleInput)]
pub struct RuleBody {
    /// The rule's name, not blank.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, pattern = "\\S")]
    pub(super) name: Option<String>,
    /// Absent or null: always matches.
    #[schema(value_type = crate::views::RoutingConditionDoc, required = false)]
    pub(super) condition: Option<serde_json::Value>,
    /// A provider routing knows (from the catalogue's offers); an unknown one answers 400.
    #[schema(value_type = String, required = true, pattern = "^[a-z0-9-]{1,64}$")]
    pub(super) provider_code: Option<String>,
    /// Create only: 1-based position; absent or 0 appends.
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(super) position: Option<u32>,
    /// When given, the edit applies only to this rule set version (else 409 RULES_CHANGED).
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(super) expected_version: Option<i32>,
}

/// The new order of the rules.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ReorderRulesInput)]
pub struct ReorderBody {
    /// Every rule id, in the new order.
    #[schema(value_type = Vec<String>, required = true, max_items = 200, format = "uuid")]
    pub(super) rule_ids: Option<Vec<String>>,
    /// When given, the edit applies only to this rule set version (else 409 RULES_CHANGED).
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(super) expected_version: Option<i32>,
}

/// A reassignment: to which provider, and why.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ReassignReferralInput)]
pub struct ReassignBody {
    /// The provider the request is handed to (one routing knows).
    #[schema(value_type = String, required = true, pattern = "^[a-z0-9-]{1,64}$")]
    pub(super) provider_code: Option<String>,
    /// Told to the providers; no control characters but line breaks.
    #[schema(max_length = 1000, pattern = r"^[^\x00-\x09\x0B-\x1F\x7F-\x9F]*$")]
    pub(super) reason: Option<String>,
}

/// A bulk reassignment: the referrals, to which provider, and why.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ReassignReferralsInput)]
pub struct BulkReassignBody {
    /// The referrals (one per request).
    #[schema(value_type = Vec<String>, required = true, min_items = 1, max_items = 100, format = "uuid")]
    pub(super) referral_ids: Option<Vec<String>>,
    /// The provider the requests are handed to (one routing knows).
    #[schema(value_type = String, required = true, pattern = "^[a-z0-9-]{1,64}$")]
    pub(super) provider_code: Option<String>,
    /// Told to the providers; no control characters but line breaks.
    #[schema(max_length = 1000, pattern = r"^[^\x00-\x09\x0B-\x1F\x7F-\x9F]*$")]
    pub(super) reason: Option<String>,
}

/// Why the coordinator withdraws a referral.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = WithdrawReferralInput)]
pub struct WithdrawBody {
    /// Told to the provider; no control characters but line breaks.
    #[schema(max_length = 1000, pattern = r"^[^\x00-\x09\x0B-\x1F\x7F-\x9F]*$")]
    pub(super) reason: Option<String>,
}

/// Why a provider declines.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = DeclineReferralInput)]
pub struct ReplyBody {
    /// The provider's reason, not blank; no control characters but line breaks.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 1000, pattern = r"^[^\x00-\x09\x0B-\x1F\x7F-\x9F]*[^\s\x00-\x09\x0B-\x1F\x7F-\x9F][^\x00-\x09\x0B-\x1F\x7F-\x9F]*$")]
    pub(super) reason: Option<String>,
}

/// Optional body of an accept: the amount of an offer priced on quote (required there, refused elsewhere).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = AcceptReferralInput)]
#[serde(deny_unknown_fields)]
pub struct AcceptBody {
    /// The quoted amount in euro cents, VAT excluded: required for an offer priced on quote, refused for any
    /// other.
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(super) amount_cents: Option<i64>,
    /// Optional short label of the quote (with amount_cents only); it goes on the quote and invoice line.
    #[schema(max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    pub(super) quote_note: Option<String>,
}

/// A progress report.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ReferralProgressInput)]
pub struct ProgressBody {
    /// Shown to the member and the coordinator; not blank.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 2000, pattern = "\\S")]
    pub(super) note: Option<String>,
    /// How far the work is, in percent.
    #[schema(minimum = 0, maximum = 100)]
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(super) percent: Option<u32>,
}

/// A provider's new response deadline.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ProviderSlaInput)]
pub struct SlaBody {
    /// Business days (weekends and French public holidays excluded).
    #[schema(value_type = u32, required = true, minimum = 1, maximum = 60)]
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(super) business_days: Option<u32>,
}
