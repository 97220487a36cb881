//! Protobuf <-> domain for accounts and sessions: roles, accounts, token pairs, invitations, audit events, and
//! the opaque tokens a request carries.

use id77_platform::auth::{ACCESS_TOKEN_TTL, Role};
use id77_platform::{ServiceError, time};
use id77_proto::membership::v1 as pb;
use tonic::Status;

use super::domain as policy;
use super::flow::{Invitation, LoginError, Tokens};
use super::store::{AuditRow, UserRow};
use crate::error::IdentityError;

pub fn role_to_proto(role: Role) -> pb::Role {
    match role {
        Role::MemberAdmin => pb::Role::MemberAdmin,
        Role::MemberUser => pb::Role::MemberUser,
        Role::ProviderAgent => pb::Role::ProviderAgent,
        Role::Coordinator => pb::Role::Coordinator,
        Role::Referent => pb::Role::Referent,
        Role::Operator => pb::Role::Operator,
    }
}

pub fn role_from_proto(role: i32) -> Result<Role, ServiceError> {
    match pb::Role::try_from(role) {
        Ok(pb::Role::MemberAdmin) => Ok(Role::MemberAdmin),
        Ok(pb::Role::MemberUser) => Ok(Role::MemberUser),
        Ok(pb::Role::ProviderAgent) => Ok(Role::ProviderAgent),
        Ok(pb::Role::Coordinator) => Ok(Role::Coordinator),
        Ok(pb::Role::Referent) => Ok(Role::Referent),
        Ok(pb::Role::Operator) => Ok(Role::Operator),
        Ok(pb::Role::Unspecified) => Err(ServiceError::invalid("role", "is required")),
        Err(_) => Err(ServiceError::invalid("role", "is not a known role")),
    }
}

pub fn user_to_proto(user: &UserRow) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        role: Role::parse(&user.role).map(role_to_proto).unwrap_or(pb::Role::Unspecified).into(),
        member_id: user.member_id.map(|m| m.to_string()).unwrap_or_default(),
        provider_code: user.provider_code.clone().unwrap_or_default(),
        active: user.is_live(),
        created_at: Some(time::to_proto(user.created_at)),
    }
}

pub fn token_pair(tokens: Tokens) -> pb::TokenPair {
    pb::TokenPair {
        access_token: tokens.access,
        token_type: "Bearer".into(),
        expires_in: ACCESS_TOKEN_TTL.as_secs() as i64,
        refresh_token: tokens.refresh,
        refresh_expires_in: policy::refresh_token_ttl().num_seconds(),
    }
}

pub fn invitation_to_proto(invitation: Invitation) -> pb::Invitation {
    pb::Invitation {
        user: Some(user_to_proto(&invitation.user)),
        invitation_token: invitation.token,
        expires_at: Some(time::to_proto(invitation.expires_at)),
    }
}

pub fn audit_event_to_proto(e: AuditRow) -> pb::AuditEvent {
    pb::AuditEvent {
        id: e.id.to_string(),
        kind: e.kind,
        actor_user_id: e.actor_user_id.map(|a| a.to_string()).unwrap_or_default(),
        subject: e.subject,
        client: e.client,
        detail: e.detail,
        at: Some(time::to_proto(e.at)),
    }
}

/// An opaque token from a request: required, and no longer than any token this service issues (a longer one
/// is refused like an unknown one, with `too_long`).
pub fn opaque<'a>(field: &str, raw: &'a str, too_long: IdentityError) -> Result<&'a str, ServiceError> {
    let token = raw.trim();
    if token.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    if token.len() > policy::MAX_OPAQUE_TOKEN_BYTES {
        return Err(too_long.into());
    }
    Ok(token)
}

impl From<LoginError> for Status {
    fn from(error: LoginError) -> Self {
        match error {
            // RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo` (the gateway's 429 and `Retry-After`).
            LoginError::TooSoon(refusal) => refusal.into(),
            LoginError::Failed(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_map_both_ways_and_opaque_tokens_are_bounded() {
        for role in [Role::MemberAdmin, Role::MemberUser, Role::ProviderAgent, Role::Coordinator, Role::Referent] {
            assert_eq!(role_from_proto(role_to_proto(role).into()).ok(), Some(role));
        }
        assert!(role_from_proto(0).is_err());
        assert_eq!(opaque("t", " abc ", IdentityError::BadInvitation).ok(), Some("abc"));
        let empty = opaque("t", "  ", IdentityError::BadInvitation).err().map(|e| e.reason);
        assert_eq!(empty.as_deref(), Some("INVALID_ARGUMENT"));
        let long = "x".repeat(policy::MAX_OPAQUE_TOKEN_BYTES + 1);
        let long = opaque("t", &long, IdentityError::BadInvitation).err().map(|e| (e.code, e.message));
        assert_eq!(long, Some((id77_platform::ErrorCode::Unauthenticated, IdentityError::BadInvitation.to_string())));
    }
}
