//! `/v1/quotes`: a member sees its own; the coordinator and operators see all.

use axum::Json;
use axum::extract::State;
use id77_proto::billing::v1 as pb;
use serde::Deserialize;

use super::{same_member, upstream};
use crate::AppState;
use crate::auth::{Identity, Role};
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, path_id};
use crate::problem::Problem;
use crate::views::{self, Page};

const READERS: &[Role] = &[Role::Member, Role::Coordinator, Role::Operator];

#[derive(Debug, Deserialize)]
pub struct ListParams {
    request_id: Option<String>,
    member_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    identity: Identity,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Quote>>, Problem> {
    identity.require(READERS)?;
    let mut checks = Checks::new();
    let request_id = checks.optional("request_id", params.request_id, MAX_ID_CHARS).trim().to_owned();
    let asked = checks.optional("member_id", params.member_id, MAX_ID_CHARS).trim().to_owned();
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    checks.finish()?;
    let member_id = match identity {
        Identity::Member(own) => {
            if !asked.is_empty() && !same_member(&asked, own) {
                return Err(Problem::forbidden("a member may only list its own quotes"));
            }
            own.to_string()
        }
        _ => asked,
    };
    let request = pb::ListQuotesRequest { member_id, request_id, page_size, page_token };
    let response = state.billing().list_quotes(request).await.map_err(upstream("billing"))?.into_inner();
    Ok(Json(Page::new(response.quotes, response.next_page_token)))
}

/// Another member's quote is "not found" for a member.
pub async fn get(
    State(state): State<AppState>,
    identity: Identity,
    P(id): P<String>,
) -> Result<Json<views::Quote>, Problem> {
    identity.require(READERS)?;
    path_id("id", &id)?;
    let quote = state
        .billing()
        .get_quote(pb::GetQuoteRequest { id: id.clone() })
        .await
        .map_err(upstream("billing"))?
        .into_inner();
    if let Identity::Member(own) = identity
        && !same_member(&quote.member_id, own)
    {
        return Err(Problem::not_found(format!("quote {id} not found")));
    }
    Ok(Json(quote.into()))
}
