//! `/v1/collectivities` (the directory, public) and `/v1/memberships` (applying is public; listing is for the
//! coordinator and referents, reading for them and the member's own users, approving for the coordinator).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::response::Response;
use id77_platform::auth::Role;
use id77_proto::membership::v1 as pb;
use id77_proto::vocabulary::MemberKind;
use serde::Deserialize;

use super::common::{created, upstream, upstream_public};
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, json_problem, path_id, spelled};
use crate::problem::Problem;
use crate::views::{self, Page};

/// Longest search text.
pub const MAX_QUERY_CHARS: usize = 100;
pub const MAX_NAME_CHARS: usize = 200;
/// RFC 5321's path limit.
pub const MAX_EMAIL_CHARS: usize = 254;

#[derive(Debug, Deserialize)]
pub struct SearchParams {
    q: Option<String>,
    kind: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn search_collectivities(
    State(state): State<AppState>,
    Q(params): Q<SearchParams>,
) -> Result<Json<Page<views::Collectivity>>, Problem> {
    let mut checks = Checks::new();
    let query = checks.optional("q", params.q, MAX_QUERY_CHARS);
    let kinds = spelled(MemberKind::ALL, MemberKind::as_str, ", ");
    let kind = checks.choice("kind", params.kind.as_deref(), &kinds, views::parse_collectivity_kind);
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    checks.finish()?;
    let request = pb::SearchCollectivitiesRequest {
        query: query.trim().to_owned(),
        kind: kind.map_or(0, Into::into),
        page_size,
        page_token,
    };
    let response =
        state.membership().search_collectivities(request).await.map_err(upstream_public("membership"))?.into_inner();
    Ok(Json(Page::new(response.collectivities, response.next_page_token)))
}

pub async fn get_collectivity(
    State(state): State<AppState>,
    P(siren): P<String>,
) -> Result<Json<views::Collectivity>, Problem> {
    path_id("siren", &siren)?;
    let collectivity = state
        .membership()
        .get_collectivity(pb::GetCollectivityRequest { siren })
        .await
        .map_err(upstream_public("membership"))?
        .into_inner();
    Ok(Json(collectivity.into()))
}

#[derive(Debug, Deserialize)]
pub struct Application {
    siren: Option<String>,
    contact_name: Option<String>,
    contact_email: Option<String>,
}

/// Public: a collectivité of the directory applies to join.
pub async fn apply(
    State(state): State<AppState>,
    body: Result<Json<Application>, JsonRejection>,
) -> Result<Response, Problem> {
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let siren = checks.required("siren", body.siren, MAX_ID_CHARS);
    let contact_name = checks.required("contact_name", body.contact_name, MAX_NAME_CHARS);
    let contact_email = checks.required("contact_email", body.contact_email, MAX_EMAIL_CHARS);
    checks.finish()?;
    let member = state
        .membership()
        .apply_for_membership(pb::ApplyForMembershipRequest { siren, contact_name, contact_email })
        .await
        .map_err(upstream_public("membership"))?
        .into_inner();
    Ok(created(format!("/v1/memberships/{}", member.id), views::Member::from(member)))
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The coordinator; a referent (the service keeps the members it follows).
pub async fn list_members(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<ListParams>,
) -> Result<Json<Page<views::Member>>, Problem> {
    caller.allow(&[Role::Coordinator, Role::Referent])?;
    let mut checks = Checks::new();
    let status = checks.choice(
        "status",
        params.status.as_deref(),
        "pending, active, suspended, withdrawn",
        views::parse_member_status,
    );
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    checks.finish()?;
    let request = pb::ListMembersRequest { status: status.map_or(0, Into::into), page_size, page_token };
    let response =
        state.membership().list_members(caller.grpc(request)).await.map_err(upstream("membership"))?.into_inner();
    Ok(Json(Page::new(response.members, response.next_page_token)))
}

/// The coordinator, a referent (members it follows, checked by the service), the member's own users. Another
/// member is "not found" for a member's user, so ids reveal nothing.
pub async fn get_member(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Json<views::Member>, Problem> {
    caller.allow(&[Role::Coordinator, Role::Referent, Role::MemberAdmin, Role::MemberUser])?;
    path_id("id", &id)?;
    // A member's users see their own member only; a referent's view is the service's to decide.
    if !caller.has(Role::Coordinator) && !caller.has(Role::Referent) && !caller.is_of_member(&id) {
        return Err(Problem::not_found(format!("member {id} not found")));
    }
    let member = state
        .membership()
        .get_member(caller.grpc(pb::GetMemberRequest { member_id: id }))
        .await
        .map_err(upstream("membership"))?
        .into_inner();
    Ok(Json(member.into()))
}

/// Coordinator only.
pub async fn approve(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<Json<views::Member>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    path_id("id", &id)?;
    let member = state
        .membership()
        .approve_membership(caller.grpc(pb::ApproveMembershipRequest { member_id: id }))
        .await
        .map_err(upstream("membership"))?
        .into_inner();
    Ok(Json(member.into()))
}
