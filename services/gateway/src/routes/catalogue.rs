//! The catalogue: offers, providers and exhibitions. Reading and searching are public (searching
//! `eligible=true` needs a member's token); the operator writes offers and providers; members hold exhibition
//! copies, which the coordinator or the exhibition's provider confirms.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use id77_platform::auth::Role;
use id77_platform::error::ErrorCode;
use id77_proto::catalogue::v1 as pb;
use id77_proto::vocabulary::{Category, MemberKind, PriceKind};
use prost::Message;
use serde::Deserialize;

use super::common::{created, upstream, upstream_public};
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, json_problem, path_id, spelled};
use crate::problem::Problem;
use crate::views::{self, Page};

/// Longest search query.
pub const MAX_QUERY_CHARS: usize = 200;
/// Longest free text of an offer (description).
pub const MAX_TEXT_CHARS: usize = 10_000;
/// Longest short text of an offer or provider (title, summary, duration, notes...).
pub const MAX_LINE_CHARS: usize = 2_000;
/// Most items of a list in an offer (themes, territories).
pub const MAX_LIST_ITEMS: usize = 100;

#[derive(Debug, Deserialize)]
pub struct OfferParams {
    q: Option<String>,
    category: Option<String>,
    theme: Option<String>,
    provider: Option<String>,
    price_kind: Option<String>,
    eligible: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Search: `q` in French (stemmed, accents ignored, typos tolerated), filters, facets with counts, cursor
/// pagination by relevance then code. `eligible=true` keeps the offers the caller's member may ask for.
pub async fn list_offers(
    State(state): State<AppState>,
    headers: HeaderMap,
    Q(params): Q<OfferParams>,
) -> Result<Response, Problem> {
    let mut checks = Checks::new();
    let q = checks.optional("q", params.q, MAX_QUERY_CHARS);
    let category = checks.choice(
        "category",
        params.category.as_deref(),
        &spelled(Category::ALL, Category::as_str, ", "),
        views::parse_offer_category,
    );
    let theme = checks.optional("theme", params.theme, MAX_ID_CHARS);
    let provider_code = checks.optional("provider", params.provider, MAX_ID_CHARS);
    let price_kind = checks.choice(
        "price_kind",
        params.price_kind.as_deref(),
        &spelled(PriceKind::ALL, PriceKind::as_str, ", "),
        views::parse_price_kind,
    );
    let eligible =
        checks.choice("eligible", params.eligible.as_deref(), "true, false", |v| v.parse::<bool>().ok()) == Some(true);
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    checks.finish()?;
    let request = pb::SearchOffersRequest {
        q,
        category: category.map_or(0, Into::into),
        theme: theme.trim().to_owned(),
        provider_code: provider_code.trim().to_owned(),
        price_kind: price_kind.map_or(0, Into::into),
        eligible_only: eligible,
        page_size,
        page_token,
    };
    if eligible {
        let caller = Authenticated::from_headers(&state, &headers).await?;
        caller.allow(&[Role::MemberAdmin, Role::MemberUser])?;
        let response = state.catalogue().search_offers(caller.grpc(request)).await.map_err(upstream("catalogue"))?;
        return Ok(Json(views::OfferSearch::from(response.into_inner())).into_response());
    }
    // A public answer depends on the validated query only: served from the edge cache when fresh.
    let key = request.encode_to_vec();
    let now = std::time::Instant::now();
    if let Some(body) = state.search_cache().get(&key, now) {
        return Ok(json_bytes(body));
    }
    let response = state.catalogue().search_offers(request).await.map_err(upstream_public("catalogue"))?;
    let body = serde_json::to_vec(&views::OfferSearch::from(response.into_inner()))
        .map_err(|e| Problem::of(ErrorCode::Internal, "SERIALIZATION", format!("search answer: {e}")))?;
    let body = bytes::Bytes::from(body);
    state.search_cache().put(key, body.clone(), now);
    Ok(json_bytes(body))
}

/// A JSON answer already serialised.
fn json_bytes(body: bytes::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[derive(Debug, Deserialize)]
pub struct VersionParams {
    version: Option<String>,
}

/// By id or by code; `?version=` shows a past version (the one a request was made on).
pub async fn get_offer(
    State(state): State<AppState>,
    P(id): P<String>,
    Q(params): Q<VersionParams>,
) -> Result<Json<views::Offer>, Problem> {
    path_id("id", &id)?;
    let version = match params.version.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(v) => v.parse::<i32>().ok().filter(|v| *v > 0).ok_or_else(|| {
            Problem::invalid_fields(vec![id77_platform::error::FieldViolation {
                field: "version".into(),
                description: "must be a positive integer".into(),
            }])
        })?,
    };
    let offer = state
        .catalogue()
        .get_offer(pb::GetOfferRequest { id, version })
        .await
        .map_err(upstream_public("catalogue"))?
        .into_inner();
    Ok(Json(offer.into()))
}

/// All providers, in one page.
pub async fn list_providers(State(state): State<AppState>) -> Result<Json<Page<views::Provider>>, Problem> {
    let response = state
        .catalogue()
        .list_providers(pb::ListProvidersRequest {})
        .await
        .map_err(upstream_public("catalogue"))?
        .into_inner();
    Ok(Json(Page::new(response.providers, String::new())))
}

// ---- the operator's writes ----------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EligibilityBody {
    #[serde(default)]
    member_kinds: Vec<String>,
    min_population: Option<i64>,
    max_population: Option<i64>,
    #[serde(default)]
    epci_sirens: Vec<String>,
    #[serde(default)]
    arrondissements: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceBody {
    kind: Option<String>,
    amount_cents: Option<i64>,
    days: Option<i32>,
    floor_cents: Option<i64>,
    cap_cents: Option<i64>,
}

/// An offer as the operator writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferBody {
    code: Option<String>,
    title: Option<String>,
    summary: Option<String>,
    description: Option<String>,
    category: Option<String>,
    #[serde(default)]
    themes: Vec<String>,
    provider_code: Option<String>,
    duration: Option<String>,
    #[serde(default)]
    eligibility: EligibilityBody,
    price: Option<PriceBody>,
    vat_rate_bp: Option<i32>,
    vat_note: Option<String>,
    copies: Option<i32>,
    /// Edits only: apply only if the offer is still at this version (409 `version-conflict` otherwise).
    expected_version: Option<i32>,
}

fn list(checks: &mut Checks, field: &str, items: Vec<String>, max_chars: usize) -> Vec<String> {
    if items.len() > MAX_LIST_ITEMS {
        checks.fail(field, format!("at most {MAX_LIST_ITEMS} items"));
    }
    for item in &items {
        checks.max_chars(field, item, max_chars);
    }
    items
}

/// Size and enum checks; the catalogue validates the content itself.
fn offer_input(body: OfferBody, checks: &mut Checks, creating: bool) -> pb::OfferInput {
    let code = if creating {
        checks.required("code", body.code, MAX_ID_CHARS)
    } else {
        checks.optional("code", body.code, MAX_ID_CHARS)
    };
    let title = checks.required("title", body.title, MAX_LINE_CHARS);
    let category = match body.category.as_deref() {
        None => {
            checks.fail("category", "is required");
            None
        }
        value => checks.choice(
            "category",
            value,
            &spelled(Category::ALL, Category::as_str, ", "),
            views::parse_offer_category,
        ),
    };
    let price = body.price.unwrap_or(PriceBody {
        kind: None,
        amount_cents: None,
        days: None,
        floor_cents: None,
        cap_cents: None,
    });
    let price_kind = match price.kind.as_deref() {
        None => {
            checks.fail("price.kind", "is required");
            None
        }
        value => checks.choice(
            "price.kind",
            value,
            &spelled(PriceKind::ALL, PriceKind::as_str, ", "),
            views::parse_price_kind,
        ),
    };
    let mut member_kinds = Vec::new();
    for kind in &body.eligibility.member_kinds {
        match views::parse_member_kind(kind.trim()) {
            Some(k) => member_kinds.push(k.into()),
            None => checks.fail(
                "eligibility.member_kinds",
                format!("must be {}", spelled(MemberKind::ALL, MemberKind::as_str, " or ")),
            ),
        }
    }
    pb::OfferInput {
        code: code.trim().to_owned(),
        title,
        summary: checks.optional("summary", body.summary, MAX_LINE_CHARS),
        description: checks.optional("description", body.description, MAX_TEXT_CHARS),
        category: category.map_or(0, Into::into),
        themes: list(checks, "themes", body.themes, MAX_ID_CHARS),
        provider_code: checks.required("provider_code", body.provider_code, MAX_ID_CHARS).trim().to_owned(),
        duration: checks.optional("duration", body.duration, MAX_LINE_CHARS),
        eligibility: Some(pb::Eligibility {
            member_kinds,
            min_population: body.eligibility.min_population.unwrap_or(0),
            max_population: body.eligibility.max_population.unwrap_or(0),
            epci_sirens: list(checks, "eligibility.epci_sirens", body.eligibility.epci_sirens, 20),
            arrondissements: list(checks, "eligibility.arrondissements", body.eligibility.arrondissements, 20),
        }),
        price_rule: Some(pb::PriceRule {
            kind: price_kind.map_or(0, Into::into),
            amount_cents: price.amount_cents.unwrap_or(0),
            days: price.days.unwrap_or(0),
            floor_cents: price.floor_cents.unwrap_or(0),
            cap_cents: price.cap_cents.unwrap_or(0),
        }),
        vat_rate_bp: body.vat_rate_bp,
        vat_note: checks.optional("vat_note", body.vat_note, MAX_LINE_CHARS),
        copies: body.copies.unwrap_or(0),
    }
}

/// The operator drafts an offer (201, status `draft`).
pub async fn create_offer(
    State(state): State<AppState>,
    caller: Authenticated,
    body: Result<Json<OfferBody>, JsonRejection>,
) -> Result<Response, Problem> {
    caller.allow(&[Role::Operator])?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let offer = offer_input(body, &mut checks, true);
    checks.finish()?;
    let offer = state
        .catalogue()
        .create_offer(caller.grpc(pb::CreateOfferRequest { offer: Some(offer) }))
        .await
        .map_err(upstream("catalogue"))?
        .into_inner();
    Ok(created(format!("/v1/offers/{}", offer.id), views::Offer::from(offer)))
}

/// The operator edits an offer: a draft in place, a published offer as its next version.
pub async fn update_offer(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<OfferBody>, JsonRejection>,
) -> Result<Json<views::Offer>, Problem> {
    caller.allow(&[Role::Operator])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let expected_version = body.expected_version.unwrap_or(0);
    let mut checks = Checks::new();
    let offer = offer_input(body, &mut checks, false);
    checks.finish()?;
    let request = pb::UpdateOfferRequest { id, offer: Some(offer), expected_version };
    let offer = state.catalogue().update_offer(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(Json(offer.into()))
}

/// The operator publishes a draft.
pub async fn publish_offer(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Json<views::Offer>, Problem> {
    caller.allow(&[Role::Operator])?;
    path_id("id", &id)?;
    let offer = state
        .catalogue()
        .publish_offer(caller.grpc(pb::PublishOfferRequest { id }))
        .await
        .map_err(upstream("catalogue"))?
        .into_inner();
    Ok(Json(offer.into()))
}

#[derive(Debug, Default, Deserialize)]
pub struct ReasonBody {
    reason: Option<String>,
}

/// An optional JSON body with a `reason` (an empty body is no reason).
fn reason(body: Result<Json<ReasonBody>, JsonRejection>, checks: &mut Checks) -> Result<String, Problem> {
    let body = match body {
        Ok(Json(body)) => body,
        Err(JsonRejection::MissingJsonContentType(_)) => ReasonBody::default(),
        Err(e) => return Err(json_problem(e)),
    };
    Ok(checks.optional("reason", body.reason, 300))
}

/// The operator archives an offer.
pub async fn archive_offer(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<ReasonBody>, JsonRejection>,
) -> Result<Json<views::Offer>, Problem> {
    caller.allow(&[Role::Operator])?;
    path_id("id", &id)?;
    let mut checks = Checks::new();
    let reason = reason(body, &mut checks)?;
    checks.finish()?;
    let offer = state
        .catalogue()
        .archive_offer(caller.grpc(pb::ArchiveOfferRequest { id, reason }))
        .await
        .map_err(upstream("catalogue"))?
        .into_inner();
    Ok(Json(offer.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderBody {
    code: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    contact_email: Option<String>,
}

fn provider_input(body: ProviderBody, code: Option<String>, checks: &mut Checks) -> pb::Provider {
    let code = code.unwrap_or_else(|| checks.required("code", body.code, MAX_ID_CHARS));
    let kind = match body.kind.as_deref() {
        Some("departmental_service") => pb::ProviderKind::DepartmentalService,
        Some("associated_organisation") => pb::ProviderKind::AssociatedOrganisation,
        _ => {
            checks.fail("kind", "must be departmental_service or associated_organisation");
            pb::ProviderKind::Unspecified
        }
    };
    pb::Provider {
        code: code.trim().to_owned(),
        name: checks.required("name", body.name, MAX_LINE_CHARS),
        kind: kind.into(),
        contact_email: checks.required("contact_email", body.contact_email, 254),
    }
}

/// The operator adds a provider.
pub async fn create_provider(
    State(state): State<AppState>,
    caller: Authenticated,
    body: Result<Json<ProviderBody>, JsonRejection>,
) -> Result<Response, Problem> {
    caller.allow(&[Role::Operator])?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let provider = provider_input(body, None, &mut checks);
    checks.finish()?;
    let provider = state
        .catalogue()
        .create_provider(caller.grpc(pb::UpsertProviderRequest { provider: Some(provider) }))
        .await
        .map_err(upstream("catalogue"))?
        .into_inner();
    Ok(created(format!("/v1/providers/{}", provider.code), views::Provider::from(provider)))
}

/// The operator edits a provider (its code is the path's).
pub async fn update_provider(
    State(state): State<AppState>,
    caller: Authenticated,
    P(code): P<String>,
    body: Result<Json<ProviderBody>, JsonRejection>,
) -> Result<Json<views::Provider>, Problem> {
    caller.allow(&[Role::Operator])?;
    path_id("code", &code)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    if body.code.as_deref().is_some_and(|c| c.trim() != code) {
        checks.fail("code", "cannot change");
    }
    let provider = provider_input(body, Some(code), &mut checks);
    checks.finish()?;
    let provider = state
        .catalogue()
        .update_provider(caller.grpc(pb::UpsertProviderRequest { provider: Some(provider) }))
        .await
        .map_err(upstream("catalogue"))?
        .into_inner();
    Ok(Json(provider.into()))
}

// ---- exhibitions --------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct AvailabilityParams {
    from: Option<String>,
    to: Option<String>,
}

/// Free copies per day between two dates (inclusive), and each copy's busy periods.
pub async fn availability(
    State(state): State<AppState>,
    P(id): P<String>,
    Q(params): Q<AvailabilityParams>,
) -> Result<Json<views::Availability>, Problem> {
    path_id("id", &id)?;
    let mut checks = Checks::new();
    let from = checks.required("from", params.from, 10);
    let to = checks.required("to", params.to, 10);
    checks.finish()?;
    let request = pb::GetAvailabilityRequest { exhibition_id: id, from, to };
    let availability =
        state.catalogue().get_availability(request).await.map_err(upstream_public("catalogue"))?.into_inner();
    Ok(Json(availability.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    from: Option<String>,
    to: Option<String>,
    request_id: Option<String>,
    member_id: Option<String>,
}

/// A member's user (for their member) or the coordinator (for `member_id`) holds a copy for inclusive dates;
/// 409 `no-copy-available` when every copy is taken for some of them.
pub async fn hold(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<HoldBody>, JsonRejection>,
) -> Result<Response, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::MemberUser, Role::Coordinator])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let from = checks.required("from", body.from, 10);
    let to = checks.required("to", body.to, 10);
    let request_id = checks.optional("request_id", body.request_id, MAX_ID_CHARS);
    let member_id = checks.optional("member_id", body.member_id, MAX_ID_CHARS);
    checks.finish()?;
    let request = pb::HoldBookingRequest { exhibition_id: id, from, to, request_id, member_id };
    let booking =
        state.catalogue().hold_booking(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(created(format!("/v1/bookings/{}", booking.id), views::Booking::from(booking)))
}

/// The coordinator or the exhibition's provider confirms a hold.
pub async fn confirm_booking(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Json<views::Booking>, Problem> {
    caller.allow(&[Role::Coordinator, Role::ProviderAgent])?;
    path_id("id", &id)?;
    let request = pb::BookingActionRequest { id, reason: String::new() };
    let booking =
        state.catalogue().confirm_booking(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(Json(booking.into()))
}

/// The member, the coordinator or the exhibition's provider releases a hold or a loan.
pub async fn release_booking(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<ReasonBody>, JsonRejection>,
) -> Result<Json<views::Booking>, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::MemberUser, Role::Coordinator, Role::ProviderAgent])?;
    path_id("id", &id)?;
    let mut checks = Checks::new();
    let reason = reason(body, &mut checks)?;
    checks.finish()?;
    let request = pb::BookingActionRequest { id, reason };
    let booking =
        state.catalogue().release_booking(caller.grpc(request)).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(Json(booking.into()))
}
