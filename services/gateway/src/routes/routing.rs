//! `/v1/referrals`: the coordinator sees all; a provider's agents only the referrals sent to their provider.

use axum::Json;
use axum::extract::State;
use id77_platform::auth::Role;
use id77_proto::routing::v1 as pb;
use serde::Deserialize;

use super::upstream;
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, path_id};
use crate::problem::Problem;
use crate::views::{self, Page};

const READERS: &[Role] = &[Role::Coordinator, Role::ProviderAgent];

#[derive(Debug, Deserialize)]
pub struct ListParams {
    request_id: Option<String>,
    provider: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// An agent lists its provider's referrals (another provider's list is "not found").
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Referral>>, Problem> {
    caller.allow(READERS)?;
    let mut checks = Checks::new();
    let request_id = checks.optional("request_id", params.request_id, MAX_ID_CHARS).trim().to_owned();
    let asked = checks.optional("provider", params.provider, MAX_ID_CHARS).trim().to_owned();
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    checks.finish()?;
    let provider_code = if caller.has(Role::Coordinator) {
        asked
    } else {
        match caller.own_provider() {
            Some(own) if asked.is_empty() || asked == own => own.to_owned(),
            _ => return Err(Problem::not_found(format!("provider {asked} not found"))),
        }
    };
    let request = pb::ListReferralsRequest { request_id, provider_code, page_size, page_token, at_risk: false };
    let response =
        state.routing().list_referrals(caller.grpc(request)).await.map_err(upstream("routing"))?.into_inner();
    Ok(Json(Page::new(response.referrals, response.next_page_token)))
}

/// Another provider's referral is "not found" for an agent.
pub async fn get(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Json<views::Referral>, Problem> {
    caller.allow(READERS)?;
    path_id("id", &id)?;
    let referral = state
        .routing()
        .get_referral(caller.grpc(pb::GetReferralRequest { id: id.clone() }))
        .await
        .map_err(upstream("routing"))?
        .into_inner();
    if !caller.has(Role::Coordinator) && !caller.is_agent_of(&referral.provider_code) {
        return Err(Problem::not_found(format!("referral {id} not found")));
    }
    Ok(Json(referral.into()))
}
