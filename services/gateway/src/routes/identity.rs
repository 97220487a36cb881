//! Accounts and sessions, served by membership's `IdentityService`: login, refresh, logout, invitations,
//! `/v1/me`, the JWKS, key rotation, users, referents and the audit log.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use id77_platform::auth::{MAX_TOKEN_BYTES, Role};
use id77_proto::membership::v1 as pb;
use serde::Deserialize;
use uuid::Uuid;

use super::common::{upstream, upstream_public};
use super::membership::{MAX_EMAIL_CHARS, MAX_NAME_CHARS};
use crate::AppState;
use crate::auth::Authenticated;
use crate::extract::{Checks, MAX_ID_CHARS, P, Q, json_problem, path_id};
use crate::problem::Problem;
use crate::ratelimit::client_ip;
use crate::views::{self, Page};

/// This module's operations and views in the OpenAPI document (`crate::api_docs`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        jwks,
        issue_token,
        refresh,
        logout,
        accept_invitation,
        rotate_keys,
        me,
        list_users,
        invite,
        remove_user,
        audit_events,
        assign_referent
    ),
    components(schemas(
        Credentials,
        RefreshBody,
        Acceptance,
        InviteBody,
        ReferentBody,
        views::TokenPair,
        views::RotatedKey,
        views::Me,
        views::User,
        views::Referent,
        views::Invitation,
        views::AuditEvent,
        views::AuditKindDoc,
        views::RoleDoc,
        views::JwksDoc,
        views::JwkDoc,
        views::Member
    ))
)]
pub struct Api;

/// The shared 401 of the public session operations, `#/components/responses/LoginFailed` (defined, with the
/// other shared answers, by `crate::api_docs`; referenced from the operations as `response = LoginFailed`).
pub struct LoginFailed;

impl<'r> utoipa::ToResponse<'r> for LoginFailed {
    fn response() -> (&'r str, utoipa::openapi::RefOr<utoipa::openapi::Response>) {
        let problem = utoipa::openapi::ContentBuilder::new()
            .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
            .build();
        let response = utoipa::openapi::ResponseBuilder::new()
            .description(
                "Wrong email or password (or a locked account, answered the same way), or a used, revoked or \
                 expired token.",
            )
            .content(crate::api_docs::PROBLEM_JSON, problem)
            .build();
        ("LoginFailed", response.into())
    }
}

/// Longest password accepted (membership's policy: 12 to 128 characters).
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Longest refresh or invitation token accepted.
pub const MAX_TOKEN_CHARS: usize = MAX_TOKEN_BYTES;
/// How long clients may cache the JWKS (a rotated key verifies for twice the token lifetime before retiring).
pub const JWKS_MAX_AGE: &str = "public, max-age=300";

/// The client's address (peer, or `X-Forwarded-For` when trusted), passed to membership for throttling and
/// the audit log.
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
        Ok(Self(client_ip(&parts.headers, peer, state.trust_forwarded_for())))
    }
}

// ---- sessions ----------------------------------------------------------------------------------------------

/// Login credentials (`POST /v1/auth/token`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Credentials {
    #[schema(value_type = String, required = true, format = Email, min_length = 1, max_length = 254,
             pattern = r"\S", example = "coordination@id77.demo")]
    email: Option<String>,
    #[schema(value_type = String, required = true, format = Password, min_length = 1, max_length = 128,
             pattern = r"\S")]
    password: Option<String>,
}

/// Password login (public). A wrong email or password is a 401.
#[utoipa::path(
    post,
    path = "/v1/auth/token",
    tag = "auth",
    operation_id = "issueToken",
    summary = "Log in with an email and a password (public)",
    description = "Answers the same way for an unknown email, a wrong password and a locked account (5 failures \
                   in 15 minutes lock it for 15 minutes). Limited to 10 calls per minute per client address.",
    request_body = Credentials,
    responses(
        (status = 200, description = "OK", body = views::TokenPair),
        (status = 401, response = LoginFailed),
    ),
    security(())
)]
pub async fn issue_token(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    body: Result<Json<Credentials>, JsonRejection>,
) -> Result<Json<views::TokenPair>, Problem> {
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let email = checks.required("email", body.email, MAX_EMAIL_CHARS).trim().to_owned();
    let password = checks.required("password", body.password, MAX_PASSWORD_CHARS);
    checks.finish()?;
    let request = pb::IssueTokenRequest { email, password, client: client.to_string() };
    let pair = state.identity().issue_token(request).await.map_err(upstream_public("membership"))?.into_inner();
    Ok(Json(pair.into()))
}

/// A refresh token (`POST /v1/auth/refresh`, `POST /v1/auth/logout`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = RefreshTokenBody)]
pub struct RefreshBody {
    /// The `refresh_token` of a token pair.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 8192, pattern = r"\S")]
    refresh_token: Option<String>,
}

/// The refresh token, required and bounded.
fn refresh_token(body: Result<Json<RefreshBody>, JsonRejection>) -> Result<String, Problem> {
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let token = checks.required("refresh_token", body.refresh_token, MAX_TOKEN_CHARS).trim().to_owned();
    checks.finish()?;
    Ok(token)
}

/// A new token pair for a refresh token, which stops working (public). A used, revoked or unknown one is a 401.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    operation_id = "refreshToken",
    summary = "Exchange a refresh token for a new pair (public)",
    description = "The refresh token stops working; presenting it again revokes the whole session (reuse \
                   detection). Limited to 10 calls per minute per client address.",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "OK", body = views::TokenPair),
        (status = 401, response = LoginFailed),
    ),
    security(())
)]
pub async fn refresh(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    body: Result<Json<RefreshBody>, JsonRejection>,
) -> Result<Json<views::TokenPair>, Problem> {
    let refresh_token = refresh_token(body)?;
    let request = pb::RefreshTokenRequest { refresh_token, client: client.to_string() };
    let pair = state.identity().refresh_token(request).await.map_err(upstream_public("membership"))?.into_inner();
    Ok(Json(pair.into()))
}

/// Revokes the refresh token's session (public: the refresh token is the credential). 204.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    operation_id = "logout",
    summary = "Log out: revoke the refresh token's session (public)",
    description = "Like RFC 7009, an unknown, used or expired refresh token is not an error: there is nothing \
                   left to revoke.",
    request_body = RefreshBody,
    responses((status = 204, description = "Logged out: the session's refresh tokens are revoked.")),
    security(())
)]
pub async fn logout(
    State(state): State<AppState>,
    body: Result<Json<RefreshBody>, JsonRejection>,
) -> Result<StatusCode, Problem> {
    let refresh_token = refresh_token(body)?;
    state
        .identity()
        .revoke_token(pb::RevokeTokenRequest { refresh_token })
        .await
        .map_err(upstream_public("membership"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// An invitation token and the invitee's new password (`POST /v1/auth/invitations/accept`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = InvitationAcceptance)]
pub struct Acceptance {
    /// The `invitation_token` of `POST /v1/users`.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 8192, pattern = r"\S")]
    invitation_token: Option<String>,
    /// 12 to 128 characters, at least three of lowercase, uppercase, digit, symbol, not containing the email's
    /// local part.
    #[schema(value_type = String, required = true, format = Password, min_length = 12, max_length = 128)]
    password: Option<String>,
}

/// The invitee sets its password and is logged in (public).
#[utoipa::path(
    post,
    path = "/v1/auth/invitations/accept",
    tag = "auth",
    operation_id = "acceptInvitation",
    summary = "Accept an invitation: set a password and log in (public)",
    description = "A password that does not satisfy the policy is a 400 naming `password`. Limited to 10 calls \
                   per minute per client address.",
    request_body = Acceptance,
    responses(
        (status = 200, description = "Password set; logged in.", body = views::TokenPair),
        (status = 401, response = LoginFailed),
        (status = 409, description = "The invitation cannot be accepted in the account's current state.",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(())
)]
pub async fn accept_invitation(
    State(state): State<AppState>,
    body: Result<Json<Acceptance>, JsonRejection>,
) -> Result<Json<views::TokenPair>, Problem> {
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let invitation_token =
        checks.required("invitation_token", body.invitation_token, MAX_TOKEN_CHARS).trim().to_owned();
    let password = checks.required("password", body.password, MAX_PASSWORD_CHARS);
    checks.finish()?;
    let request = pb::AcceptInvitationRequest { invitation_token, password };
    let pair = state.identity().accept_invitation(request).await.map_err(upstream_public("membership"))?.into_inner();
    Ok(Json(pair.into()))
}

/// The public keys that verify access tokens, as published by membership (public, cacheable 5 minutes).
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "auth",
    operation_id = "getJwks",
    summary = "Public keys that verify access tokens (public)",
    description = "A rotated key keeps being published until the tokens it signed have expired.",
    responses((status = 200, description = "The key set. `Cache-Control: public, max-age=300`.",
               body = views::JwksDoc,
               headers(("Cache-Control" = String, description = "`public, max-age=300`")))),
    security(())
)]
pub async fn jwks(State(state): State<AppState>) -> Result<Response, Problem> {
    let jwks = state.identity().get_jwks(pb::GetJwksRequest {}).await.map_err(upstream_public("membership"))?;
    let json = jwks.into_inner().json;
    let valid = serde_json::from_str::<serde_json::Value>(&json).is_ok_and(|v| v["keys"].is_array());
    if !valid {
        tracing::error!("membership published a JWKS that is not {{\"keys\": [...]}}");
        return Err(Problem::of(id77_platform::ErrorCode::Internal, "INTERNAL", "the key set is unavailable"));
    }
    let mut response = json.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(JWKS_MAX_AGE));
    Ok(response)
}

/// Operator: a new signing key; the previous ones keep verifying until their tokens expire.
#[utoipa::path(
    post,
    path = "/v1/auth/keys/rotate",
    tag = "auth",
    operation_id = "rotateSigningKey",
    summary = "Rotate the token signing key (operator)",
    description = "New tokens are signed with the new key; the previous keys keep verifying until their tokens \
                   expire.",
    responses((status = 200, description = "OK", body = views::RotatedKey)),
    security(("bearerAuth" = []))
)]
pub async fn rotate_keys(
    State(state): State<AppState>,
    caller: Authenticated,
) -> Result<Json<views::RotatedKey>, Problem> {
    caller.allow(&[Role::Operator])?;
    let rotated = state
        .identity()
        .rotate_signing_key(caller.grpc(pb::RotateSigningKeyRequest {}))
        .await
        .map_err(upstream("membership"))?
        .into_inner();
    Ok(Json(views::RotatedKey { kid: rotated.kid }))
}

/// The caller, with its member's referent.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "auth",
    operation_id = "getMe",
    summary = "The caller, with its member's referent (any authenticated caller)",
    responses((status = 200, description = "OK", body = views::Me)),
    security(("bearerAuth" = []))
)]
pub async fn me(State(state): State<AppState>, caller: Authenticated) -> Result<Json<views::Me>, Problem> {
    let me =
        state.identity().get_me(caller.grpc(pb::GetMeRequest {})).await.map_err(upstream("membership"))?.into_inner();
    Ok(Json(me.into()))
}

// ---- users -------------------------------------------------------------------------------------------------

/// `GET /v1/users`: filters and page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserListParams {
    /// Only this member's users (a member_admin's own member when absent).
    #[param(format = "uuid", max_length = 100)]
    member_id: Option<String>,
    /// Only this provider's agents.
    #[param(max_length = 64, pattern = "^[a-z0-9-]{1,64}$")]
    provider_code: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page, as it is: cursors are opaque, anything else is a 400.
    #[param(max_length = 2048)]
    cursor: Option<String>,
}

/// A member_admin lists its member's users (another member's or a provider's list is "not found"); the
/// coordinator any; the operator the Département and provider accounts (restricted by membership).
#[utoipa::path(
    get,
    path = "/v1/users",
    tag = "users",
    operation_id = "listUsers",
    summary = "List users (member_admin: its member's; coordinator: any; operator: Département and provider \
               accounts)",
    description = "A member_admin's list is its own member's (filled in when `member_id` is absent); asking for \
                   another member's or a provider's answers 404. Unknown query parameters are refused (400).",
    params(UserListParams),
    responses(
        (status = 200, description = "OK", body = Page<views::User>),
        (status = 404, description = "A member_admin asked for another member's or a provider's users.",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<UserListParams>,
) -> Result<Json<Page<views::User>>, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::Coordinator, Role::Operator])?;
    let mut checks = Checks::new();
    let asked_member = checks.uuid_filter("member_id", params.member_id);
    let provider_code = checks.filter("provider_code", params.provider_code, MAX_ID_CHARS);
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    checks.finish()?;
    let member_id = if caller.has(Role::Coordinator) || caller.has(Role::Operator) {
        asked_member
    } else {
        // A member_admin: its own member's users only.
        let own = caller.administered_member().filter(|own| {
            provider_code.is_empty() && (asked_member.is_empty() || Uuid::parse_str(&asked_member).ok() == Some(*own))
        });
        match own {
            Some(own) => own.to_string(),
            None if provider_code.is_empty() => {
                return Err(Problem::not_found(format!("member {asked_member} not found")));
            }
            None => return Err(Problem::not_found(format!("provider {provider_code} not found"))),
        }
    };
    let request = pb::ListUsersRequest { member_id, provider_code, page_size, page_token };
    let response =
        state.identity().list_users(caller.grpc(request)).await.map_err(upstream("membership"))?.into_inner();
    Ok(Json(Page::new(response.users, response.next_page_token)))
}

/// Whom to invite (`POST /v1/users`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = UserInvitation)]
pub struct InviteBody {
    #[schema(value_type = String, required = true, format = Email, min_length = 1, max_length = 254)]
    email: Option<String>,
    /// 1 to 200 printable characters (trimmed).
    #[schema(value_type = String, required = true, min_length = 1, max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\s\x00-\x1F\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$")]
    display_name: Option<String>,
    #[schema(value_type = views::RoleDoc, required = true)]
    role: Option<String>,
    /// For member roles: a member_admin's own member (filled in when absent); required from the coordinator;
    /// refused for the other roles.
    #[schema(value_type = Option<String>, format = "uuid", max_length = 100)]
    member_id: Option<String>,
    /// Required for provider_agent; refused for the other roles.
    #[schema(value_type = Option<String>, max_length = 64, pattern = "^[a-z0-9-]{1,64}$")]
    provider_code: Option<String>,
}

/// Whom a caller may invite, by role: member_admin and the coordinator a member's users, the operator
/// Département and provider accounts.
fn may_invite(caller: &Authenticated, role: Role) -> bool {
    if role.is_member_role() {
        caller.has(Role::Coordinator) || caller.has(Role::MemberAdmin)
    } else {
        caller.has(Role::Operator)
    }
}

/// A member_admin invites its member's users; the coordinator an active member's users (its first admin);
/// the operator Département and provider accounts. 201 with the one-time invitation token.
#[utoipa::path(
    post,
    path = "/v1/users",
    tag = "users",
    operation_id = "inviteUser",
    summary = "Invite a user (member_admin: its member's users; coordinator: a member's users; operator: \
               Département and provider accounts)",
    description = "member_admin and coordinator invite member_admin or member_user; the operator invites \
                   coordinator, referent, operator or provider_agent (403 otherwise). A member_admin inviting into \
                   another member gets 404. `member_id` is required from the coordinator, `provider_code` for a \
                   provider_agent; either given for a role that has none is a 400.",
    request_body = InviteBody,
    responses(
        (status = 201, description = "Invited; the account is inactive until the invitation is accepted.",
         body = views::Invitation),
        (status = 404, description = "No such member or provider (or another member, for a member_admin).",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "An account already has this email, or the member is not active.",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
pub async fn invite(
    State(state): State<AppState>,
    caller: Authenticated,
    body: Result<Json<InviteBody>, JsonRejection>,
) -> Result<Response, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::Coordinator, Role::Operator])?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let email = checks.required("email", body.email, MAX_EMAIL_CHARS).trim().to_owned();
    let display_name = checks.required("display_name", body.display_name, MAX_NAME_CHARS).trim().to_owned();
    let role = match body.role.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        None => {
            checks.fail("role", "is required");
            None
        }
        Some(name) => {
            let role = Role::parse(name);
            if role.is_none() {
                checks.fail(
                    "role",
                    "must be one of member_admin, member_user, provider_agent, coordinator, referent, operator",
                );
            }
            role
        }
    };
    let asked_member = checks.optional("member_id", body.member_id, MAX_ID_CHARS).trim().to_owned();
    let provider_code = checks.optional("provider_code", body.provider_code, MAX_ID_CHARS).trim().to_owned();
    checks.finish()?;
    let Some(role) = role else {
        return Err(Problem::invalid("role", "is required"));
    };
    if !may_invite(&caller, role) {
        return Err(Problem::forbidden(format!("this caller may not invite a {}", role.as_str())));
    }
    let mut checks = Checks::new();
    let member_id = if !role.is_member_role() || caller.has(Role::Coordinator) {
        if role.is_member_role() && asked_member.is_empty() {
            checks.fail("member_id", "is required for a member's user");
        }
        asked_member
    } else {
        // A member_admin: into its own member only.
        match caller.administered_member() {
            Some(own) if asked_member.is_empty() || Uuid::parse_str(&asked_member).ok() == Some(own) => own.to_string(),
            _ => return Err(Problem::not_found(format!("member {asked_member} not found"))),
        }
    };
    if role == Role::ProviderAgent && provider_code.is_empty() {
        checks.fail("provider_code", "is required for a provider agent");
    }
    checks.finish()?;
    let request = pb::InviteUserRequest {
        email,
        display_name,
        role: views::role_to_proto(role).into(),
        member_id,
        provider_code,
    };
    let invitation =
        state.identity().invite_user(caller.grpc(request)).await.map_err(upstream("membership"))?.into_inner();
    Ok((StatusCode::CREATED, Json(views::Invitation::from(invitation))).into_response())
}

/// A member_admin removes its member's users, the operator Département and provider accounts; never oneself.
/// Someone else's user is "not found" (membership decides). 204.
#[utoipa::path(
    delete,
    path = "/v1/users/{id}",
    tag = "users",
    operation_id = "removeUser",
    summary = "Remove a user (member_admin: its member's; operator: Département and provider accounts; never \
               oneself)",
    description = "Removing oneself is a 403; another member's user is a 404.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The user's id.")),
    responses((status = 204, description = "Removed; the user's sessions are revoked.")),
    security(("bearerAuth" = []))
)]
pub async fn remove_user(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
) -> Result<StatusCode, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::Operator])?;
    path_id("id", &id)?;
    if Uuid::parse_str(&id).ok() == Some(caller.user_id()) {
        return Err(Problem::forbidden("one may not remove oneself"));
    }
    state
        .identity()
        .remove_user(caller.grpc(pb::RemoveUserRequest { user_id: id }))
        .await
        .map_err(upstream("membership"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The referent to assign (`PUT /v1/memberships/{id}/referent`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(as = ReferentAssignment)]
pub struct ReferentBody {
    /// An active user with the `referent` role.
    #[schema(value_type = String, required = true, format = "uuid", max_length = 100)]
    referent_user_id: Option<String>,
}

/// Coordinator: the Département agent (a `referent` user) who follows a member.
#[utoipa::path(
    put,
    path = "/v1/memberships/{id}/referent",
    tag = "memberships",
    operation_id = "assignReferent",
    summary = "Assign the member's referent (coordinator)",
    description = "A user who is not an active referent is a 400 naming `referent_user_id`; an unknown one a 404.",
    params(("id" = String, Path, format = "uuid", max_length = 100, description = "The member's id.")),
    request_body = ReferentBody,
    responses(
        (status = 200, description = "OK", body = views::Member),
        (status = 409, description = "Not possible in the member's current state.",
         body = crate::api_docs::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearerAuth" = []))
)]
pub async fn assign_referent(
    State(state): State<AppState>,
    caller: Authenticated,
    P(id): P<String>,
    body: Result<Json<ReferentBody>, JsonRejection>,
) -> Result<Json<views::Member>, Problem> {
    caller.allow(&[Role::Coordinator])?;
    path_id("id", &id)?;
    let Json(body) = body.map_err(json_problem)?;
    let mut checks = Checks::new();
    let referent_user_id = checks.required("referent_user_id", body.referent_user_id, MAX_ID_CHARS).trim().to_owned();
    checks.finish()?;
    let request = pb::AssignReferentRequest { member_id: id, referent_user_id };
    let member =
        state.identity().assign_referent(caller.grpc(request)).await.map_err(upstream("membership"))?.into_inner();
    Ok(Json(member.into()))
}

// ---- audit -------------------------------------------------------------------------------------------------

/// `GET /v1/audit-events`: filter and page.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Only this kind, e.g. `login.failed`.
    #[param(value_type = Option<views::AuditKindDoc>)]
    kind: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page, as it is: cursors are opaque, anything else is a 400.
    #[param(max_length = 2048)]
    cursor: Option<String>,
}

/// Operator: security events, newest first.
#[utoipa::path(
    get,
    path = "/v1/audit-events",
    tag = "users",
    operation_id = "listAuditEvents",
    summary = "Security events, newest first (operator)",
    description = "Unknown query parameters are refused (400).",
    params(AuditParams),
    responses((status = 200, description = "OK", body = Page<views::AuditEvent>)),
    security(("bearerAuth" = []))
)]
pub async fn audit_events(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<AuditParams>,
) -> Result<Json<Page<views::AuditEvent>>, Problem> {
    caller.allow(&[Role::Operator])?;
    let mut checks = Checks::new();
    let kind = checks.filter("kind", params.kind, MAX_ID_CHARS);
    let (page_size, page_token) = checks.page(params.limit.as_deref(), params.cursor);
    checks.finish()?;
    let request = pb::ListAuditEventsRequest { kind, page_size, page_token };
    let response =
        state.identity().list_audit_events(caller.grpc(request)).await.map_err(upstream("membership"))?.into_inner();
    Ok(Json(Page::new(response.events, response.next_page_token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(roles: Vec<Role>) -> Authenticated {
        let caller = id77_platform::auth::Caller {
            user_id: Uuid::nil(),
            roles,
            member_id: Some(Uuid::nil()),
            provider_code: Some("caue77".into()),
            email: String::new(),
            session: String::new(),
            name: String::new(),
        };
        Authenticated::new(caller, "token").unwrap_or_else(|| panic!("a visible ASCII token"))
    }

    #[tokio::test]
    async fn unknown_query_parameters_are_refused_by_name() {
        use super::super::membership::tests::query_problem;
        let member = Uuid::nil();
        let known = format!("member_id={member}&provider_code=caue77&limit=5&cursor=ab");
        assert!(query_problem::<UserListParams>(&known).await.is_none());
        assert!(query_problem::<AuditParams>("kind=login.failed&limit=5&cursor=ab").await.is_none());
        for problem in [
            query_problem::<UserListParams>("member=x").await,
            query_problem::<AuditParams>("kind=login.failed&since=2026-01-01").await,
        ] {
            let problem = problem.map(|p| (p.status.as_u16(), p.detail.contains("unknown field")));
            assert_eq!(problem, Some((400, true)));
        }
    }

    #[test]
    fn who_may_invite_whom() {
        for (inviter, allowed) in [
            (Role::MemberAdmin, &[Role::MemberAdmin, Role::MemberUser][..]),
            (Role::Coordinator, &[Role::MemberAdmin, Role::MemberUser]),
            (Role::Operator, &[Role::Coordinator, Role::Referent, Role::Operator, Role::ProviderAgent]),
            (Role::MemberUser, &[]),
            (Role::Referent, &[]),
            (Role::ProviderAgent, &[]),
        ] {
            for role in Role::ALL {
                assert_eq!(
                    may_invite(&caller(vec![inviter]), role),
                    allowed.contains(&role),
                    "{inviter:?} inviting {role:?}"
                );
            }
        }
    }
}
