//! `/v1/referrals`: the coordinator and operators see all; a provider sees only the referrals sent to it.

use axum::Json;
use axum::extract::State;
use id77_proto::routing::v1 as pb;
use serde::Deserialize;

use super::upstream;
use crate::AppState;
use crate::auth::{Identity, Role};
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, path_id};
use crate::problem::Problem;
use crate::views::{self, Page};

const READERS: &[Role] = &[Role::Coordinator, Role::Operator, Role::Provider];

#[derive(Debug, Deserialize)]
pub struct ListParams {
    request_id: Option<String>,
    provider: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    identity: Identity,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Referral>>, Problem> {
    identity.require(READERS)?;
    let mut checks = Checks::new();
    let request_id = checks.optional("request_id", params.request_id, MAX_ID_CHARS).trim().to_owned();
    let asked = checks.optional("provider", params.provider, MAX_ID_CHARS).trim().to_owned();
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    checks.finish()?;
    let provider_code = match identity {
        Identity::Provider(own) => {
            if !asked.is_empty() && asked != own {
                return Err(Problem::forbidden("a provider may only list its own referrals"));
            }
            own
        }
        _ => asked,
    };
    let request = pb::ListReferralsRequest { request_id, provider_code, page_size, page_token };
    let response = state.routing().list_referrals(request).await.map_err(upstream("routing"))?.into_inner();
    Ok(Json(Page::new(response.referrals, response.next_page_token)))
}

/// Another provider's referral is "not found" for a provider.
pub async fn get(
    State(state): State<AppState>,
    identity: Identity,
    P(id): P<String>,
) -> Result<Json<views::Referral>, Problem> {
    identity.require(READERS)?;
    path_id("id", &id)?;
    let referral = state
        .routing()
        .get_referral(pb::GetReferralRequest { id: id.clone() })
        .await
        .map_err(upstream("routing"))?
        .into_inner();
    if let Identity::Provider(own) = &identity
        && referral.provider_code != *own
    {
        return Err(Problem::not_found(format!("referral {id} not found")));
    }
    Ok(Json(referral.into()))
}
