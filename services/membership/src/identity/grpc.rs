//! `IdentityService`: logins, sessions, signing keys, accounts, referents and the audit log. Handlers map the
//! request, call the flow (or read the store) and map the answer.
//!
//! Public RPCs (IssueToken, RefreshToken, RevokeToken, GetJwks, AcceptInvitation, RequestPasswordReset,
//! ResetPassword) need no token, but refuse an
//! invalid one; the others need a valid access token and follow docs/authorization.md.

use chrono::Utc;
use id77_platform::auth::{Caller, Role};
use id77_platform::{CallerOf, ServiceError, page};
use id77_proto::membership::v1 as pb;
use id77_proto::membership::v1::identity_service_server::IdentityService;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use super::domain::{self as policy, audit};
use super::flow::{self, Invitee, Login};
use super::keys::{self, LocalAuthenticator};
use super::mapping::{audit_event_to_proto, invitation_to_proto, opaque, role_from_proto, token_pair, user_to_proto};
use super::store;
use crate::error::IdentityError;
use crate::mapping::{member_to_proto, optional, optional_id, parse_id};
use crate::store as member_store;

/// Accounts, sessions and keys.
pub struct IdentityApi {
    pool: PgPool,
    /// Told when this replica rotates the signing key, so that the new key verifies at once.
    auth: LocalAuthenticator,
}

impl IdentityApi {
    pub fn new(pool: PgPool, auth: LocalAuthenticator) -> Self {
        Self { pool, auth }
    }

    async fn issue_token(&self, req: pb::IssueTokenRequest) -> Result<pb::TokenPair, Status> {
        let attempt = Login { email: &req.email, password: &req.password, client: &req.client };
        Ok(token_pair(flow::throttled_login(&self.pool, attempt).await?))
    }

    async fn refresh_token(&self, req: pb::RefreshTokenRequest) -> Result<pb::TokenPair, ServiceError> {
        let token = opaque("refresh_token", &req.refresh_token, IdentityError::BadRefreshToken)?;
        flow::refresh(&self.pool, token, &req.client).await.map(token_pair)
    }

    async fn revoke_token(&self, req: pb::RevokeTokenRequest) -> Result<pb::RevokeTokenResponse, ServiceError> {
        // Like RFC 7009: an unknown token is not an error (there is nothing left to revoke).
        if let Ok(token) = opaque("refresh_token", &req.refresh_token, IdentityError::BadRefreshToken) {
            flow::logout(&self.pool, token).await?;
        }
        Ok(pb::RevokeTokenResponse {})
    }

    async fn jwks(&self) -> Result<pb::Jwks, ServiceError> {
        let jwks =
            keys::published(&self.pool, Utc::now()).await.map_err(|e| ServiceError::internal("reading the keys", e))?;
        let json = serde_json::to_string(&jwks).map_err(|e| ServiceError::internal("encoding the keys", e))?;
        Ok(pb::Jwks { json })
    }

    async fn rotate_key(&self, caller: &Caller) -> Result<pb::RotateSigningKeyResponse, ServiceError> {
        caller.require_any(&[Role::Operator])?;
        let kid = flow::rotate_signing_key(&self.pool, caller).await?;
        self.auth.keys_changed().await;
        Ok(pb::RotateSigningKeyResponse { kid })
    }

    async fn me(&self, caller: &Caller) -> Result<pb::Me, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        let user = store::live_user(&mut conn, caller).await?;
        let mut referent = None;
        if user.typed_role()?.is_member_role()
            && let Some(member_id) = user.member_id
            && let Some(referent_id) =
                member_store::get_member(&self.pool, member_id).await?.and_then(|m| m.referent_user_id)
            && let Some(r) = store::user_by_id(&mut conn, referent_id).await?.filter(|r| r.removed_at.is_none())
        {
            referent = Some(pb::Referent { user_id: r.id.to_string(), display_name: r.display_name, email: r.email });
        }
        Ok(pb::Me { user: Some(user_to_proto(&user)), referent })
    }

    async fn invite(&self, caller: &Caller, req: pb::InviteUserRequest) -> Result<pb::Invitation, ServiceError> {
        caller.require_any(&[Role::MemberAdmin, Role::Coordinator, Role::Operator])?;
        let role = role_from_proto(req.role)?;
        let member_id = optional_id("member_id", &req.member_id)?;
        let target = policy::authorize_invite(caller, role, member_id, optional(&req.provider_code))?;
        let email = policy::normalize_email("email", &req.email)?;
        let display_name = policy::normalize_display_name(&req.display_name)?;
        let invitee = Invitee { target, email, display_name };
        flow::invite(&self.pool, caller, invitee).await.map(invitation_to_proto)
    }

    async fn accept(&self, req: pb::AcceptInvitationRequest) -> Result<pb::TokenPair, ServiceError> {
        let token = opaque("invitation_token", &req.invitation_token, IdentityError::BadInvitation)?;
        if req.password.len() > policy::MAX_LOGIN_PASSWORD_BYTES {
            return Err(ServiceError::invalid("password", "must be 12 to 128 characters"));
        }
        flow::accept(&self.pool, token, &req.password).await.map(token_pair)
    }

    async fn request_reset(
        &self,
        req: pb::RequestPasswordResetRequest,
    ) -> Result<pb::RequestPasswordResetResponse, ServiceError> {
        if req.email.len() > 320 {
            return Err(ServiceError::invalid("email", "is longer than any email address"));
        }
        flow::request_reset(&self.pool, &req.email, &req.client).await?;
        Ok(pb::RequestPasswordResetResponse {})
    }

    async fn reset(&self, req: pb::ResetPasswordRequest) -> Result<pb::ResetPasswordResponse, ServiceError> {
        let token = opaque("token", &req.token, IdentityError::BadResetToken)?;
        if req.password.len() > policy::MAX_LOGIN_PASSWORD_BYTES {
            return Err(ServiceError::invalid("password", "must be 12 to 128 characters"));
        }
        flow::confirm_reset(&self.pool, token, &req.password).await?;
        Ok(pb::ResetPasswordResponse {})
    }

    async fn change_own_password(
        &self,
        caller: &Caller,
        req: pb::ChangePasswordRequest,
    ) -> Result<pb::ChangePasswordResponse, ServiceError> {
        if req.current_password.is_empty() {
            return Err(ServiceError::invalid("current_password", "is required"));
        }
        for (field, value) in [("current_password", &req.current_password), ("new_password", &req.new_password)] {
            if value.len() > policy::MAX_LOGIN_PASSWORD_BYTES {
                return Err(ServiceError::invalid(field, "must be 12 to 128 characters"));
            }
        }
        flow::change_password(&self.pool, caller, &req.current_password, &req.new_password).await?;
        Ok(pb::ChangePasswordResponse {})
    }

    async fn list_users(
        &self,
        caller: &Caller,
        req: pb::ListUsersRequest,
    ) -> Result<pb::ListUsersResponse, ServiceError> {
        caller.require_any(&[Role::MemberAdmin, Role::Coordinator, Role::Operator])?;
        let member_id = optional_id("member_id", &req.member_id)?;
        let filter = policy::authorize_list_users(caller, member_id, optional(&req.provider_code))?;
        let after = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let roles = filter.roles.map(|roles| roles.iter().map(|r| r.as_str().to_owned()).collect());
        let rows =
            store::list_users(&self.pool, filter.member_id, filter.provider_code.as_deref(), roles, after, limit + 1)
                .await?;
        let (rows, next) = page::split(rows, limit, |u| page::encode(&(u.created_at, u.id)));
        Ok(pb::ListUsersResponse { users: rows.iter().map(user_to_proto).collect(), next_page_token: next })
    }

    async fn remove_user(
        &self,
        caller: &Caller,
        req: pb::RemoveUserRequest,
    ) -> Result<pb::RemoveUserResponse, ServiceError> {
        policy::may_remove_users(caller)?;
        let id = parse_id("user_id", &req.user_id)?;
        flow::remove_user(&self.pool, caller, id).await?;
        Ok(pb::RemoveUserResponse {})
    }

    async fn assign_referent(
        &self,
        caller: &Caller,
        req: pb::AssignReferentRequest,
    ) -> Result<pb::Member, ServiceError> {
        caller.require_any(&[Role::Coordinator])?;
        let member_id = parse_id("member_id", &req.member_id)?;
        let referent = optional_id("referent_user_id", &req.referent_user_id)?;
        crate::flow::assign_referent(&self.pool, caller, member_id, referent).await.map(member_to_proto)
    }

    async fn audit_events(
        &self,
        caller: &Caller,
        req: pb::ListAuditEventsRequest,
    ) -> Result<pb::ListAuditEventsResponse, ServiceError> {
        caller.require_any(&[Role::Operator])?;
        let kind = optional(&req.kind);
        if let Some(kind) = kind
            && !audit::is_known(kind)
        {
            return Err(ServiceError::invalid("kind", "is not a known event kind"));
        }
        let before = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let rows = store::list_audit(&self.pool, kind, before, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |e| page::encode(&(e.at, e.id)));
        let events = rows.into_iter().map(audit_event_to_proto).collect();
        Ok(pb::ListAuditEventsResponse { events, next_page_token: next })
    }
}

#[tonic::async_trait]
impl IdentityService for IdentityApi {
    async fn issue_token(&self, request: Request<pb::IssueTokenRequest>) -> Result<Response<pb::TokenPair>, Status> {
        request.optional_caller()?;
        Ok(Response::new(self.issue_token(request.into_inner()).await?))
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        request.optional_caller()?;
        Ok(Response::new(self.refresh_token(request.into_inner()).await?))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        request.optional_caller()?;
        Ok(Response::new(self.revoke_token(request.into_inner()).await?))
    }

    async fn get_jwks(&self, request: Request<pb::GetJwksRequest>) -> Result<Response<pb::Jwks>, Status> {
        request.optional_caller()?;
        Ok(Response::new(self.jwks().await?))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.rotate_key(&caller).await?))
    }

    async fn get_me(&self, request: Request<pb::GetMeRequest>) -> Result<Response<pb::Me>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.me(&caller).await?))
    }

    async fn invite_user(&self, request: Request<pb::InviteUserRequest>) -> Result<Response<pb::Invitation>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.invite(&caller, request.into_inner()).await?))
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        request.optional_caller()?;
        Ok(Response::new(self.accept(request.into_inner()).await?))
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::RequestPasswordResetResponse>, Status> {
        request.optional_caller()?;
        Ok(Response::new(self.request_reset(request.into_inner()).await?))
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::ResetPasswordResponse>, Status> {
        request.optional_caller()?;
        Ok(Response::new(self.reset(request.into_inner()).await?))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::ChangePasswordResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.change_own_password(&caller, request.into_inner()).await?))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.list_users(&caller, request.into_inner()).await?))
    }

    async fn remove_user(
        &self,
        request: Request<pb::RemoveUserRequest>,
    ) -> Result<Response<pb::RemoveUserResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.remove_user(&caller, request.into_inner()).await?))
    }

    async fn assign_referent(
        &self,
        request: Request<pb::AssignReferentRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.assign_referent(&caller, request.into_inner()).await?))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let caller = request.caller()?;
        Ok(Response::new(self.audit_events(&caller, request.into_inner()).await?))
    }
}
