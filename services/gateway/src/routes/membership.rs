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

/// This module's operations and views in the OpenAPI document (`crate::api_docs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(search_collectivities, get_collectivity, apply, list_members, get_member, approve, refuse),
    components(schemas(
        Application,
        Refusal,
        views::Collectivity,
        views::Member,
        views::CollectivityKindDoc,
        views::MemberStatusDoc
    ))
)]
pub struct Api;

/// Longest search text.
pub const MAX_QUERY_CHARS: usize = 100;
pub const MAX_NAME_CHARS: usize = 200;
/// RFC 5321's path limit.
pub const MAX_EMAIL_CHARS: usize = 254;

/// `GET /v1/collectivities`: search and page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Name prefix, SIREN or INSEE code (at most 100 characters).
    #[param(max_length = 100)]
    q: Option<String>,
    /// Only this kind.
    #[param(value_type = Option<views::CollectivityKindDoc>)]
    kind: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page, as it is: cursors are opaque, anything else is a 400.
    #[param(max_length = 2048)]
    cursor: Option<String>,
}

/// Public: the directory, by name prefix, SIREN or INSEE code.
#[utoipa::path(
    get,
    path = "/v1/collectivities",
    tag = "directory",
    operation_id = "searchCollectivities",
    summary = "Search the directory (public)",
    description = "Accents, case, hyphens and apostrophes do not matter (\"saint remy\" finds Saint-Rémy). Unknown \
                   query parameters are refused (400).",
    params(SearchParams),
    responses((status = 200, description = "OK", body = Page<views::Collectivity>)),
    security(())
)]
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

/// Public: one collectivité of the directory.
#[utoipa::path(
    get,
    path = "/v1/collectivities/{siren}",
    tag = "directory",
    operation_id = "getCollectivity",
    summary = "One collectivité (public)",
    description = "The SIREN is 9 digits whose last is a Luhn check digit. One that is not in the directory is a \
                   404, and so is one whose check digit is wrong (no collectivité has it; the problem says so).",
    params(("siren" = String, Path, pattern = "^[0-9]{9}$", min_length = 9, max_length = 9, example = "217700145",
            description = "9 digits, Luhn check digit.")),
    responses((status = 200, description = "OK", body = views::Collectivity)),
    security(())
)]
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

/// A collectivité's application to join (`POST /v1/memberships`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = MembershipApplication)]
pub struct Application {
    /// SIREN of a collectivité of the directory: 9 digits, the last a Luhn check digit.
    #[schema(value_type = String, required = true, pattern = "^[0-9]{9}$", min_length = 9, max_length = 9,
             example = "217700145")]
    siren: Option<String>,
    /// 1 to 200 characters (trimmed).
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, pattern = r"\S",
             example = "Marie Dupont")]
    contact_name: Option<String>,
    #[schema(value_type = String, required = true, format = Email, min_length = 1, max_length = 254,
             example = "dgs@mairie.example.fr")]
    contact_email: Option<String>,
}

/// Public: a collectivité of the directory applies to join.
#[utoipa::path(
    post,
    path = "/v1/memberships",
    tag = "memberships",
    operation_id = "applyForMembership",
    summary = "Apply to join (public)",
    description = "A SIREN that is not in the directory is a 404, and so is one whose check digit is wrong (no \
                   collectivité has it; the problem says so). A collectivité that is already a member (or applied) gets 409, unless it withdrew.",
    request_body = Application,
    responses(
        (status = 201, description = "Applied; the membership is pending until the coordinator approves it.",
         body = views::Member,
         headers(("Location" = String, description = "/v1/memberships/{id}"))),
        (status = 404, description = "No collectivité with this SIREN in the directory.",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "This collectivité already applied or is a member.",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(())
)]
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

/// `GET /v1/memberships`: filter and page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this status.
    #[param(value_type = Option<views::MemberStatusDoc>)]
    status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page, as it is: cursors are opaque, anything else is a 400.
    #[param(max_length = 2048)]
    cursor: Option<String>,
}

/// The coordinator; a referent (the service keeps the members it follows).
#[utoipa::path(
    get,
    path = "/v1/memberships",
    tag = "memberships",
    operation_id = "listMemberships",
    summary = "List memberships (coordinator; referent: the members it follows)",
    description = "Unknown query parameters are refused (400).",
    params(ListParams),
    responses((status = 200, description = "OK", body = Page<views::Member>)),
    security(("bearerAuth" = []))
)]
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
        "pending, active, suspended, withdrawn, refused",
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
#[utoipa::path(
    get,
    path = "/v1/memberships/{id}",
    tag = "memberships",
    operation_id = "getMembership",
    summary = "One membership (coordinator; its referent; its own users)",
    description = "Another member answers 404 to a member's users and to a referent who does not follow it.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The member's id.")),
    responses((status = 200, description = "OK", body = views::Member)),
    security(("bearerAuth" = []))
)]
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
#[utoipa::path(
    post,
    path = "/v1/memberships/{id}/approve",
    tag = "memberships",
    operation_id = "approveMembership",
    summary = "Approve a pending membership (coordinator)",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The member's id.")),
    responses(
        (status = 200, description = "OK", body = views::Member),
        (status = 409, description = "The membership is not pending (`invalid-transition`).",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
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

/// Longest refusal reason.
pub const MAX_REASON_CHARS: usize = 1000;

/// Why the coordinator refuses an application (`POST /v1/memberships/{id}/refuse`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = MembershipRefusal)]
pub struct Refusal {
    /// 1 to 1000 characters (trimmed), mailed to the application's contact.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 1000, pattern = r"\S",
             example = "La collectivité n'est pas située en Seine-et-Marne.")]
    reason: Option<String>,
}

/// Coordinator only: a pending application is refused with a reason.
#[utoipa::path(
    post,
    path = "/v1/memberships/{id}/refuse",
    tag = "memberships",
    operation_id = "refuseMembership",
    summary = "Refuse a pending membership, with a reason (coordinator)",
    description = "The reason is mailed to the application's contact; the collectivité may apply again.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The member's id.")),
    request_body = Refusal,
    responses(
        (status = 200, description = "Refused.", body = views::Member),
        (status = 409, description = "The membership is not pending (`invalid-transition`).",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
pub async fn refuse(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<Refusal>, JsonRejection>,
) -> Result<Json<views::Member>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let reason = checks.required("reason", body.reason, MAX_REASON_CHARS).trim().to_owned();
    checks.finish()?;
    let request = pb::RefuseMembershipRequest { member_id: id, reason };
    let member =
        state.membership().refuse_membership(caller.grpc(request)).await.map_err(upstream("membership"))?.into_inner();
    Ok(Json(member.into()))
}

#[cfg(test)]
pub(crate) mod tests {
    use axum::extract::FromRequestParts;
    use axum::http::{Request, StatusCode};
    use serde::de::DeserializeOwned;

    use super::*;

    /// The problem `Q<T>` answers for a query string, if any.
    pub(crate) async fn query_problem<T: DeserializeOwned>(query: &str) -> Option<Problem> {
        let request = Request::builder().uri(format!("/x?{query}")).body(()).ok()?;
        let (mut parts, ()) = request.into_parts();
        Q::<T>::from_request_parts(&mut parts, &()).await.err()
    }

    #[tokio::test]
    async fn unknown_query_parameters_are_refused_by_name() {
        assert!(query_problem::<SearchParams>("q=meaux&kind=commune&limit=5&cursor=ab").await.is_none());
        assert!(query_problem::<ListParams>("status=pending&limit=5&cursor=ab").await.is_none());
        for problem in [
            query_problem::<SearchParams>("q=meaux&page=2").await,
            query_problem::<ListParams>("status=pending&page=2").await,
        ] {
            let problem = problem.map(|p| (p.status, p.detail.contains("unknown field `page`")));
            assert_eq!(problem, Some((StatusCode::BAD_REQUEST, true)));
        }
    }
}
