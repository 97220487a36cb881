//! `/v1/offers` and `/v1/providers`: public.

use axum::Json;
use axum::extract::State;
use id77_proto::catalogue::v1 as pb;
use serde::Deserialize;

use super::upstream_public as upstream;
use crate::AppState;
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, path_id};
use crate::problem::Problem;
use crate::views::{self, Page};

#[derive(Debug, Deserialize)]
pub struct OfferParams {
    category: Option<String>,
    provider: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list_offers(
    State(state): State<AppState>,
    Q(params): Q<OfferParams>,
) -> Result<Json<Page<views::Offer>>, Problem> {
    let mut checks = Checks::new();
    let category = checks.choice(
        "category",
        params.category.as_deref(),
        "integrated_engineering, awareness_training, exhibition_loan",
        views::parse_offer_category,
    );
    let provider_code = checks.optional("provider", params.provider, MAX_ID_CHARS);
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    checks.finish()?;
    let request = pb::ListOffersRequest {
        category: category.map_or(0, Into::into),
        provider_code: provider_code.trim().to_owned(),
        page_size,
        page_token,
        statuses: Vec::new(),
    };
    let response = state.catalogue().list_offers(request).await.map_err(upstream("catalogue"))?.into_inner();
    Ok(Json(Page::new(response.offers, response.next_page_token)))
}

/// By id or by code.
pub async fn get_offer(State(state): State<AppState>, P(id): P<String>) -> Result<Json<views::Offer>, Problem> {
    path_id("id", &id)?;
    let offer = state
        .catalogue()
        .get_offer(pb::GetOfferRequest { id, version: 0 })
        .await
        .map_err(upstream("catalogue"))?
        .into_inner();
    Ok(Json(offer.into()))
}

/// All providers, in one page.
pub async fn list_providers(State(state): State<AppState>) -> Result<Json<Page<views::Provider>>, Problem> {
    let response = state
        .catalogue()
        .list_providers(pb::ListProvidersRequest {})
        .await
        .map_err(upstream("catalogue"))?
        .into_inner();
    Ok(Json(Page::new(response.providers, String::new())))
}
