//! The bodies and query parameters of `catalogue`'s routes, as clients send them (validated by the handlers).

use serde::Deserialize;

use crate::views;

/// The search's query parameters (unknown ones are refused with 400).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OfferParams {
    /// Free text, at most 200 characters: French words (stemmed, accents ignored, typos tolerated).
    #[param(max_length = 200)]
    pub(crate) q: Option<String>,
    /// Only this category.
    #[param(value_type = Option<views::OfferCategoryDoc>)]
    pub(crate) category: Option<String>,
    /// Only offers with this theme (e.g. `voirie`, `eau`, `urbanisme`); a theme is at most 40 characters.
    #[param(max_length = 40)]
    pub(crate) theme: Option<String>,
    /// Only this provider's offers (its code: lowercase ASCII letters, digits or dashes).
    #[param(max_length = 64, pattern = r"^[a-z0-9-]{0,64}$")]
    pub(crate) provider: Option<String>,
    /// Only this kind of price.
    #[param(value_type = Option<views::PriceKindDoc>)]
    pub(crate) price_kind: Option<String>,
    /// `true`: only the offers the caller's collectivité may ask for (kind, population, territory). Needs a
    /// member's token (`member_admin` or `member_user`): without a token the search answers 401, with another
    /// role 403. `false` or absent: every published offer, no token needed (one sent is then ignored).
    #[param(value_type = Option<bool>)]
    pub(crate) eligible: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    pub(crate) cursor: Option<String>,
    /// A page number, 1 to 1000 (1 is the first page; with `total` and `limit`, a client shows page numbers).
    /// Not with `cursor`. A page past the last one is empty, with the total.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub(crate) page: Option<String>,
}

/// Highest search page number.
pub const MAX_SEARCH_PAGE: u32 = 1000;

/// `GET /v1/offers/{id}`'s query parameters (unknown ones are refused with 400).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VersionParams {
    /// A past version (the one a request was made on); default the current one.
    #[param(value_type = Option<i32>, minimum = 1)]
    pub(crate) version: Option<String>,
}

/// `GET /v1/providers`' query parameters (unknown ones are refused with 400).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProviderParams {
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub(crate) limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(max_length = 2048)]
    pub(crate) cursor: Option<String>,
}

/// Who may ask for the offer; empty lists and absent bounds mean no constraint. Territory: the member's EPCI
/// (SIREN) or arrondissement (INSEE code, 771 Meaux … 775 Torcy) must be listed when either list is non-empty.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EligibilityInput)]
pub struct EligibilityBody {
    /// Empty: every kind.
    #[serde(default)]
    #[schema(value_type = Vec<views::MemberKindDoc>, max_items = 100)]
    pub(crate) member_kinds: Vec<String>,
    /// Fewest inhabitants.
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(crate) min_population: Option<i64>,
    /// Most inhabitants.
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(crate) max_population: Option<i64>,
    /// SIRENs (9 digits) of the EPCIs the offer is open to.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub(crate) epci_sirens: Vec<String>,
    /// Arrondissements (`771` … `775`).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub(crate) arrondissements: Vec<String>,
}

/// A price rule as the operator writes it. Amounts in euro cents, VAT excluded. `flat`: `amount_cents` once;
/// `daily_rate`: `amount_cents` per day for `days`; `per_inhabitant`: `amount_cents` per inhabitant, at least
/// `floor_cents`, at most `cap_cents` (0 or absent: no cap); `on_quote`: priced by the provider's quote.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PriceRuleInput)]
pub struct PriceBody {
    #[schema(value_type = views::PriceKindDoc)]
    pub(crate) kind: Option<String>,
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(crate) amount_cents: Option<i64>,
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(crate) days: Option<i32>,
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(crate) floor_cents: Option<i64>,
    #[schema(minimum = 0)]
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(crate) cap_cents: Option<i64>,
}

/// An offer as the operator writes it. `code` is required on creation and cannot change. A priced offer needs
/// `vat_rate_bp` or a `vat_note` saying why VAT does not apply. Exhibitions have 1 to 20 copies.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OfferInput)]
pub struct OfferBody {
    /// Required on creation; cannot change.
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    pub(crate) code: Option<String>,
    #[schema(value_type = String, min_length = 1, max_length = 200, pattern = "\\S")]
    pub(crate) title: Option<String>,
    #[schema(max_length = 2000)]
    pub(crate) summary: Option<String>,
    #[schema(max_length = 10000)]
    pub(crate) description: Option<String>,
    #[schema(value_type = views::OfferCategoryDoc)]
    pub(crate) category: Option<String>,
    #[serde(default)]
    #[schema(max_items = 12)]
    pub(crate) themes: Vec<String>,
    /// The provider's code.
    #[schema(value_type = String, min_length = 1, max_length = 100, pattern = "\\S")]
    pub(crate) provider_code: Option<String>,
    /// Typical duration (« ½ journée », « 6 à 18 mois »).
    #[schema(max_length = 100)]
    pub(crate) duration: Option<String>,
    #[serde(default)]
    pub(crate) eligibility: EligibilityBody,
    #[schema(value_type = PriceBody)]
    pub(crate) price: Option<PriceBody>,
    /// VAT rate in basis points (2000 = 20 %); absent or `null` when VAT does not apply (say why in `vat_note`).
    #[schema(minimum = 0, maximum = 10000)]
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(crate) vat_rate_bp: Option<i32>,
    #[schema(max_length = 300)]
    pub(crate) vat_note: Option<String>,
    /// Exhibitions: physical copies that can be lent (1 to 20); 0 for other offers.
    #[schema(minimum = 0, maximum = 20)]
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(crate) copies: Option<i32>,
    /// Edits only: apply only if the offer is still at this version (409 `version-conflict` otherwise).
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "crate::extract::integral")]
    pub(crate) expected_version: Option<i32>,
}

/// An optional reason (the body itself may be omitted).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = Reason)]
pub struct ReasonBody {
    #[schema(max_length = 300)]
    pub(crate) reason: Option<String>,
}

/// A provider as the operator writes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ProviderInput)]
pub struct ProviderBody {
    /// Required on creation; the path's on an edit (may be repeated, not changed).
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    pub(crate) code: Option<String>,
    #[schema(value_type = String, min_length = 1, max_length = 200, pattern = "\\S")]
    pub(crate) name: Option<String>,
    #[schema(value_type = views::ProviderKindDoc)]
    pub(crate) kind: Option<String>,
    #[schema(value_type = String, format = Email, max_length = 254)]
    pub(crate) contact_email: Option<String>,
}

/// The calendar's days (unknown parameters are refused with 400).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AvailabilityParams {
    /// First day, `YYYY-MM-DD`.
    #[param(value_type = String, format = Date, required = true)]
    pub(crate) from: Option<String>,
    /// Last day, `YYYY-MM-DD`, inclusive: not before `from`, at most 366 days after it.
    #[param(value_type = String, format = Date, required = true)]
    pub(crate) to: Option<String>,
}

/// Dates to hold a copy for (inclusive).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = HoldRequest)]
pub struct HoldBody {
    /// First day of the loan, `YYYY-MM-DD`.
    #[schema(value_type = String, format = Date)]
    pub(crate) from: Option<String>,
    /// Last day of the loan (inclusive), `YYYY-MM-DD`, not before `from`.
    #[schema(value_type = String, format = Date)]
    pub(crate) to: Option<String>,
    /// The request the loan is asked with, if any.
    #[schema(format = "uuid", max_length = 100)]
    pub(crate) request_id: Option<String>,
    /// The coordinator only: the member to hold for (a member's user holds for their own member).
    #[schema(format = "uuid", max_length = 100)]
    pub(crate) member_id: Option<String>,
}
