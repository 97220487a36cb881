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

#[derive(Debug, Deserialize)]
pub struct Credentials {
    email: Option<String>,
    password: Option<String>,
}

/// Password login (public). A wrong email or password is a 401.
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

#[derive(Debug, Deserialize)]
pub struct RefreshBody {
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

#[derive(Debug, Deserialize)]
pub struct Acceptance {
    invitation_token: Option<String>,
    password: Option<String>,
}

/// The invitee sets its password and is logged in (public).
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
pub async fn me(State(state): State<AppState>, caller: Authenticated) -> Result<Json<views::Me>, Problem> {
    let me =
        state.identity().get_me(caller.grpc(pb::GetMeRequest {})).await.map_err(upstream("membership"))?.into_inner();
    Ok(Json(me.into()))
}

// ---- users -------------------------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct UserListParams {
    member_id: Option<String>,
    provider_code: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// A member_admin lists its member's users (another member's or a provider's list is "not found"); the
/// coordinator any; the operator the Département and provider accounts (restricted by membership).
pub async fn list_users(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<UserListParams>,
) -> Result<Json<Page<views::User>>, Problem> {
    caller.allow(&[Role::MemberAdmin, Role::Coordinator, Role::Operator])?;
    let mut checks = Checks::new();
    let asked_member = checks.optional("member_id", params.member_id, MAX_ID_CHARS).trim().to_owned();
    let provider_code = checks.optional("provider_code", params.provider_code, MAX_ID_CHARS).trim().to_owned();
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

#[derive(Debug, Deserialize)]
pub struct InviteBody {
    email: Option<String>,
    display_name: Option<String>,
    role: Option<String>,
    member_id: Option<String>,
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

#[derive(Debug, Deserialize)]
pub struct ReferentBody {
    referent_user_id: Option<String>,
}

/// Coordinator: the Département agent (a `referent` user) who follows a member.
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

#[derive(Debug, Deserialize)]
pub struct AuditParams {
    kind: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// Operator: security events, newest first.
pub async fn audit_events(
    State(state): State<AppState>,
    caller: Authenticated,
    Q(params): Q<AuditParams>,
) -> Result<Json<Page<views::AuditEvent>>, Problem> {
    caller.allow(&[Role::Operator])?;
    let mut checks = Checks::new();
    let kind = checks.optional("kind", params.kind, MAX_ID_CHARS).trim().to_owned();
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
