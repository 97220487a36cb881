//! `/v1/quotes`: a member's users see their member's; a provider's agents those it issued; referents those of
//! the members they follow; the coordinator all.

use axum::Json;
use axum::extract::State;
use id77_platform::auth::Role;
use id77_proto::billing::v1 as pb;
use serde::Deserialize;

use super::{same_member, upstream};
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, path_id};
use crate::problem::Problem;
use crate::views::{self, Page};

const READERS: &[Role] = &[Role::MemberAdmin, Role::MemberUser, Role::ProviderAgent, Role::Referent, Role::Coordinator];

#[derive(Debug, Deserialize)]
pub struct ListParams {
    request_id: Option<String>,
    member_id: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A member's users list their member's quotes (another member's list is "not found"); an agent's list is
/// restricted to its provider's by billing; a referent names the member (`?member_id=` required).
pub async fn list(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Quote>>, Problem> {
    caller.allow(READERS)?;
    let mut checks = Checks::new();
    let request_id = checks.optional("request_id", params.request_id, MAX_ID_CHARS).trim().to_owned();
    let asked = checks.optional("member_id", params.member_id, MAX_ID_CHARS).trim().to_owned();
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    let own = caller.own_member().filter(|own| asked.is_empty() || same_member(&asked, *own));
    let member_id = if caller.has(Role::Coordinator) || caller.has(Role::ProviderAgent) {
        // The coordinator sees all; billing keeps an agent to the quotes its provider issued.
        asked
    } else if let Some(own) = own {
        own.to_string()
    } else if caller.has(Role::Referent) {
        if asked.is_empty() {
            checks.fail("member_id", "is required for a referent");
        }
        asked
    } else {
        checks.finish()?;
        return Err(Problem::not_found(format!("member {asked} not found")));
    };
    checks.finish()?;
    let request = pb::ListQuotesRequest { member_id, request_id, page_size, page_token };
    let response = state.billing().list_quotes(caller.grpc(request)).await.map_err(upstream("billing"))?.into_inner();
    Ok(Json(Page::new(response.quotes, response.next_page_token)))
}

/// Another member's quote is "not found" for a member's user, another provider's for an agent.
pub async fn get(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Json<views::Quote>, Problem> {
    caller.allow(READERS)?;
    path_id("id", &id)?;
    let quote = state
        .billing()
        .get_quote(caller.grpc(pb::GetQuoteRequest { id: id.clone() }))
        .await
        .map_err(upstream("billing"))?
        .into_inner();
    // The referent's view is the service's to decide (it knows whom the referent follows).
    let visible = caller.has(Role::Coordinator)
        || caller.has(Role::Referent)
        || caller.is_of_member(&quote.member_id)
        || caller.is_agent_of(&quote.issuer_code);
    if !visible {
        return Err(Problem::not_found(format!("quote {id} not found")));
    }
    Ok(Json(quote.into()))
}
