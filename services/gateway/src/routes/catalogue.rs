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

use super::common::{created, upstream, upstream_public};
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, json_problem, path_id, spelled};
use crate::problem::Problem;
use crate::views::{self, Page};

mod input;
pub use input::*;

/// This module's operations and views in the OpenAPI document (`crate::api_docs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        list_offers,
        create_offer,
        get_offer,
        update_offer,
        publish_offer,
        archive_offer,
        list_providers,
        create_provider,
        update_provider,
        availability,
        hold,
        confirm_booking,
        release_booking,
    ),
    components(schemas(
        views::Offer,
        views::OfferSearch,
        views::FacetsDoc,
        views::Eligibility,
        views::PriceRule,
        views::Provider,
        views::Availability,
        views::CopyCalendar,
        views::BusyPeriod,
        views::DayAvailability,
        views::Booking,
        views::OfferCategoryDoc,
        views::PriceKindDoc,
        views::OfferStatusDoc,
        views::BookingStatusDoc,
        views::ProviderKindDoc,
        views::MemberKindDoc,
        OfferBody,
        EligibilityBody,
        PriceBody,
        ProviderBody,
        ReasonBody,
        HoldBody,
    ))
)]
pub struct Api;

/// Longest search query.
pub const MAX_QUERY_CHARS: usize = 200;
/// Longest free text of an offer (description).
pub const MAX_TEXT_CHARS: usize = 10_000;
/// Longest short text of an offer or provider (title, summary, duration, notes...).
pub const MAX_LINE_CHARS: usize = 2_000;
/// Most items of a list in an offer (themes, territories).
pub const MAX_LIST_ITEMS: usize = 100;

/// Search: `q` in French (stemmed, accents ignored, typos tolerated), filters, facets with counts, cursor
/// pagination by relevance then code. `eligible=true` keeps the offers the caller's member may ask for.
#[utoipa::path(
    get,
    path = "/v1/offers",
    tag = "catalogue",
    operation_id = "searchOffers",
    summary = "Search offers (public; eligible=true: member_admin, member_user)",
    description = "Published offers. `q` is searched in French (stemming, accents ignored, typos tolerated with \
                   trigrams: a word unknown to the catalogue is replaced by the nearest known one and the answer's \
                   `corrected_q` says so); results are ordered by relevance (`ts_rank_cd`) then code, or by code \
                   without `q`. Pages follow `next_cursor`, or a page number (`page`, with `total` and \
                   `limit`). Facets count the matching offers per category, theme, provider and price kind. \
                   Public, except `eligible=true`, which needs a member's token (401 without one, 403 for \
                   another role).",
    params(OfferParams),
    responses(
        (status = 200, description = "A page of offers, with the total and the facets.", body = views::OfferSearch),
        (status = 409, description = "`eligible=true` for a member that is not active (`member-not-active`).",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security((), ("bearerAuth" = []))
)]
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
    let page = match params.page.as_deref().map(str::trim) {
        None | Some("") => 0,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_SEARCH_PAGE).contains(&n) && page_token.is_empty() => n,
            Ok(n) if (1..=MAX_SEARCH_PAGE).contains(&n) => {
                checks.fail("page", "cannot be given with cursor");
                0
            }
            _ => {
                checks.fail("page", format!("must be an integer from 1 to {MAX_SEARCH_PAGE}"));
                0
            }
        },
    };
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
        page,
    };
    if eligible {
        return member_search(&state, &headers, request).await;
    }
    // A public answer depends on the validated query only: served from the edge cache when fresh.
    let key = request.encode_to_vec();
    let now = std::time::Instant::now();
    if let Some(body) = state.search_cache().get(&key, now) {
        return Ok(json_bytes(body));
    }
    let response = state.catalogue().search_offers(request).await.map_err(upstream_public("catalogue"))?;
    let body = search_body(response.into_inner())?;
    state.search_cache().put(key, body.clone(), now);
    Ok(json_bytes(body))
}

/// "Eligible for my collectivité": the caller's member's answer, from the edge when that member asked the same
/// a moment ago. The key starts with the member's id, from the token verified on this call: one member's
/// answer is never another's (the answer depends on the member only, not on which of its users asks).
async fn member_search(
    state: &AppState,
    headers: &HeaderMap,
    request: pb::SearchOffersRequest,
) -> Result<Response, Problem> {
    let caller = Authenticated::from_headers(state, headers).await?;
    caller.allow(&[Role::MemberAdmin, Role::MemberUser])?;
    let key = caller.caller.member_id.map(|member| [member.as_bytes().as_slice(), &request.encode_to_vec()].concat());
    let now = std::time::Instant::now();
    if let Some(body) = key.as_ref().and_then(|key| state.member_search_cache().get(key, now)) {
        return Ok(json_bytes(body));
    }
    let response = state.catalogue().search_offers(caller.grpc(request)).await.map_err(upstream("catalogue"))?;
    let body = search_body(response.into_inner())?;
    if let Some(key) = key {
        state.member_search_cache().put(key, body.clone(), now);
    }
    Ok(json_bytes(body))
}

/// A search answer as the JSON the edge keeps and serves.
fn search_body(answer: pb::SearchOffersResponse) -> Result<bytes::Bytes, Problem> {
    serde_json::to_vec(&views::OfferSearch::from(answer))
        .map(bytes::Bytes::from)
        .map_err(|e| Problem::of(ErrorCode::Internal, "SERIALIZATION", format!("search answer: {e}")))
}

/// A JSON answer already serialised.
fn json_bytes(body: bytes::Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// By id or by code; `?version=` shows a past version (the one a request was made on).
#[utoipa::path(
    get,
    path = "/v1/offers/{id}",
    tag = "catalogue",
    operation_id = "getOffer",
    summary = "One offer, by id or code (public)",
    description = "By id or code. Drafts are visible to the operator only (404 otherwise).",
    params(("id" = String, Path, min_length = 1, max_length = 64, pattern = r"^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[a-z0-9-]{1,64})$", description = "The offer's id (UUID) or code."), VersionParams),
    responses((status = 200, description = "The offer (at `version` when given).", body = views::Offer)),
    security(())
)]
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

/// Default page size of the providers.
const PROVIDERS_PAGE: usize = 20;

/// A providers' cursor: the last code of the page, opaque (URL-safe base64 of `p:<code>`).
fn provider_cursor(code: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("p:{code}"))
}

/// The last code of the previous page, `None` for a cursor this gateway did not give.
fn provider_after(cursor: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok()?.strip_prefix("p:").map(str::to_owned)
}

/// One page of the providers, ordered by code, after the cursor's code.
fn providers_page(mut providers: Vec<pb::Provider>, after: Option<&str>, size: usize) -> Page<views::Provider> {
    providers.sort_by(|a, b| a.code.cmp(&b.code));
    let rest: Vec<_> = providers.into_iter().filter(|p| after.is_none_or(|after| p.code.as_str() > after)).collect();
    let next = if rest.len() > size { rest.get(size - 1).map(|p| provider_cursor(&p.code)) } else { None };
    let items: Vec<_> = rest.into_iter().take(size).collect();
    Page::new(items, next.unwrap_or_default())
}

/// The providers, by code, a page at a time: the catalogue lists them all at once (its `ListProviders` has no
/// paging; the list is small), the gateway pages over it.
#[utoipa::path(
    get,
    path = "/v1/providers",
    tag = "catalogue",
    operation_id = "listProviders",
    summary = "List providers (public)",
    description = "Ordered by code, paginated like every list (`limit`, `cursor`, `next_cursor`). The catalogue \
                   answers the whole list (it is small) and the gateway pages over it: the cursor is opaque and \
                   names the last code of the previous page, so a provider added meanwhile appears in its place.",
    params(ProviderParams),
    responses((status = 200, description = "A page of providers.", body = Page<views::Provider>)),
    security(())
)]
pub async fn list_providers(
    State(state): State<AppState>,
    Q(params): Q<ProviderParams>,
) -> Result<Json<Page<views::Provider>>, Problem> {
    let mut checks = Checks::new();
    let (size, cursor) = checks.page(params.limit.as_deref(), params.cursor);
    let after = match cursor.trim() {
        "" => None,
        cursor => {
            let after = provider_after(cursor);
            if after.is_none() {
                checks.fail("cursor", "is not a cursor of this list");
            }
            after
        }
    };
    checks.finish()?;
    let size = if size == 0 { PROVIDERS_PAGE } else { size as usize };
    let response = state
        .catalogue()
        .list_providers(pb::ListProvidersRequest {})
        .await
        .map_err(upstream_public("catalogue"))?
        .into_inner();
    Ok(Json(providers_page(response.providers, after.as_deref(), size)))
}

// ---- the operator's writes ----------------------------------------------------------------------------------

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
#[utoipa::path(
    post,
    path = "/v1/offers",
    tag = "catalogue",
    operation_id = "createOffer",
    summary = "Draft an offer (operator)",
    description = "A new offer, status `draft`, version 1; visible to the operator only until published. 409 when \
                   the code is taken.",
    request_body = OfferBody,
    responses(
        (status = 201, description = "Drafted (status draft, version 1).", body = views::Offer,
         headers(("Location" = String, description = "/v1/offers/{id}"))),
        (status = 409, description = "The code is already taken, or the content is refused by the catalogue's \
                                      rules.", body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    put,
    path = "/v1/offers/{id}",
    tag = "catalogue",
    operation_id = "updateOffer",
    summary = "Edit an offer (operator)",
    description = "A draft is edited in place; a published offer gets its next version, published at once (events \
                   offer.updated and offer.published). Archived offers cannot be edited (409).",
    params(("id" = String, Path, min_length = 1, max_length = 64, pattern = r"^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[a-z0-9-]{1,64})$", description = "The offer's id (UUID) or code.")),
    request_body = OfferBody,
    responses(
        (status = 200, description = "The offer as edited.", body = views::Offer),
        (status = 409, description = "`version-conflict` (not at `expected_version`), or an archived offer \
                                      (`invalid-transition`).", body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    post,
    path = "/v1/offers/{id}/publish",
    tag = "catalogue",
    operation_id = "publishOffer",
    summary = "Publish a draft (operator)",
    params(("id" = String, Path, min_length = 1, max_length = 64, pattern = r"^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[a-z0-9-]{1,64})$", description = "The offer's id (UUID) or code.")),
    responses(
        (status = 200, description = "Published (event offer.published).", body = views::Offer),
        (status = 409, description = "Not a draft (`invalid-transition`).", body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
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

/// An optional JSON body with a `reason` (no body, or `null`, is no reason).
fn reason(body: Result<Json<Option<ReasonBody>>, JsonRejection>, checks: &mut Checks) -> Result<String, Problem> {
    let body = match body {
        Ok(Json(body)) => body.unwrap_or_default(),
        Err(JsonRejection::MissingJsonContentType(_)) => ReasonBody::default(),
        Err(e) => return Err(json_problem(e)),
    };
    Ok(checks.optional("reason", body.reason, 300))
}

/// The operator archives an offer.
#[utoipa::path(
    post,
    path = "/v1/offers/{id}/archive",
    tag = "catalogue",
    operation_id = "archiveOffer",
    summary = "Archive an offer (operator)",
    description = "The offer leaves the search; requests already made on it keep their version. The body, with \
                   an optional `reason`, may be omitted.",
    params(("id" = String, Path, min_length = 1, max_length = 64, pattern = r"^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[a-z0-9-]{1,64})$", description = "The offer's id (UUID) or code.")),
    request_body(content = Option<ReasonBody>, description = "Optional: no body, `null` or `{}` is no reason.", content_type = "application/json"),
    responses(
        (status = 200, description = "Archived (event offer.archived).", body = views::Offer),
        (status = 409, description = "Already archived (`invalid-transition`).", body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
pub async fn archive_offer(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<Option<ReasonBody>>, JsonRejection>,
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
#[utoipa::path(
    post,
    path = "/v1/providers",
    tag = "catalogue",
    operation_id = "createProvider",
    summary = "Add a provider (operator)",
    request_body = ProviderBody,
    responses(
        (status = 201, description = "Created.", body = views::Provider,
         headers(("Location" = String, description = "/v1/providers/{code}"))),
        (status = 409, description = "The code is already taken.", body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    put,
    path = "/v1/providers/{code}",
    tag = "catalogue",
    operation_id = "updateProvider",
    summary = "Edit a provider (operator)",
    description = "Its published offers are announced again (new versions) so read models see the new provider \
                   details. The body's `code`, if given, must be the path's.",
    params(("code" = String, Path, min_length = 1, max_length = 100, pattern = "\\S", description = "The provider's code.")),
    request_body = ProviderBody,
    responses(
        (status = 200, description = "The provider as edited.", body = views::Provider),
        (status = 409, description = "Refused by the catalogue in the provider's current state.",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
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

const EXHIBITION_ID: &str = "The exhibition's (offer's) id or code.";

/// Free copies per day between two dates (inclusive), and each copy's busy periods.
#[utoipa::path(
    get,
    path = "/v1/exhibitions/{id}/availability",
    tag = "catalogue",
    operation_id = "exhibitionAvailability",
    summary = "Availability calendar of an exhibition (public)",
    description = "Free copies per day between `from` and `to` (inclusive, at most 366 days), and each copy's \
                   busy periods.",
    params(("id" = String, Path, min_length = 1, max_length = 64, pattern = r"^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[a-z0-9-]{1,64})$", description = EXHIBITION_ID), AvailabilityParams),
    responses((status = 200, description = "Free copies per day and each copy's busy periods.", body = views::Availability)),
    security(())
)]
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

/// A member's user (for their member) or the coordinator (for `member_id`) holds a copy for inclusive dates;
/// 409 `no-copy-available` when every copy is taken for some of them.
#[utoipa::path(
    post,
    path = "/v1/exhibitions/{id}/bookings",
    tag = "catalogue",
    operation_id = "holdExhibition",
    summary = "Hold a copy for dates (member_admin, member_user, coordinator)",
    description = "Holds the first copy free for the whole period; never two live bookings of one copy overlap \
                   (database exclusion constraint). 409 `no-copy-available` when every copy is taken for some of \
                   the dates.",
    params(("id" = String, Path, min_length = 1, max_length = 64, pattern = r"^([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[a-z0-9-]{1,64})$", description = EXHIBITION_ID)),
    request_body = HoldBody,
    responses(
        (status = 201, description = "Held.", body = views::Booking,
         headers(("Location" = String, description = "/v1/bookings/{id}"))),
        (status = 409, description = "`no-copy-available`: every copy is taken for some of the dates.",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    post,
    path = "/v1/bookings/{id}/confirm",
    tag = "catalogue",
    operation_id = "confirmBooking",
    summary = "Confirm a hold (coordinator, the exhibition's provider_agent)",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The booking's id.")),
    responses(
        (status = 200, description = "Confirmed (event booking.confirmed).", body = views::Booking),
        (status = 409, description = "Not held any more (`invalid-transition`).", body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    post,
    path = "/v1/bookings/{id}/release",
    tag = "catalogue",
    operation_id = "releaseBooking",
    summary = "Release a hold or loan (the member's users, coordinator, the exhibition's provider_agent)",
    description = "The body, with an optional `reason`, may be omitted.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The booking's id.")),
    request_body(content = Option<ReasonBody>, description = "Optional: no body, `null` or `{}` is no reason.", content_type = "application/json"),
    responses((status = 200, description = "Released (event booking.released).", body = views::Booking)),
    security(("bearerAuth" = []))
)]
pub async fn release_booking(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<Option<ReasonBody>>, JsonRejection>,
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
