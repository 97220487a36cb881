//! Accounts and sessions as JSON: tokens, users, the caller (`/v1/me`), invitations, the audit log, roles.

use id77_platform::auth::Role;
use id77_proto::membership::v1 as membership;
use serde::Serialize;

use super::common::{UNSPECIFIED, non_empty, timestamp};

/// A role as JSON: the snake_case name of the tokens (`member_admin`...).
pub fn role(role: i32) -> &'static str {
    match proto_role(role) {
        Some(r) => r.as_str(),
        None => UNSPECIFIED,
    }
}

fn proto_role(role: i32) -> Option<Role> {
    match membership::Role::try_from(role).ok()? {
        membership::Role::MemberAdmin => Some(Role::MemberAdmin),
        membership::Role::MemberUser => Some(Role::MemberUser),
        membership::Role::ProviderAgent => Some(Role::ProviderAgent),
        membership::Role::Coordinator => Some(Role::Coordinator),
        membership::Role::Referent => Some(Role::Referent),
        membership::Role::Operator => Some(Role::Operator),
        membership::Role::Unspecified => None,
    }
}

/// A role of the tokens as the contract's enum.
pub fn role_to_proto(role: Role) -> membership::Role {
    match role {
        Role::MemberAdmin => membership::Role::MemberAdmin,
        Role::MemberUser => membership::Role::MemberUser,
        Role::ProviderAgent => membership::Role::ProviderAgent,
        Role::Coordinator => membership::Role::Coordinator,
        Role::Referent => membership::Role::Referent,
        Role::Operator => membership::Role::Operator,
    }
}

/// The answer of a login, a refresh or an invitation acceptance.
#[derive(Debug, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: i64,
    pub refresh_token: String,
    /// Seconds.
    pub refresh_expires_in: i64,
}

impl From<membership::TokenPair> for TokenPair {
    fn from(t: membership::TokenPair) -> Self {
        Self {
            access_token: t.access_token,
            token_type: "Bearer",
            expires_in: t.expires_in,
            refresh_token: t.refresh_token,
            refresh_expires_in: t.refresh_expires_in,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: &'static str,
    /// For member_admin and member_user.
    pub member_id: Option<String>,
    /// For provider_agent.
    pub provider_code: Option<String>,
    /// False until the invitation is accepted.
    pub active: bool,
    pub created_at: Option<String>,
}

impl From<membership::User> for User {
    fn from(u: membership::User) -> Self {
        Self {
            role: role(u.role),
            created_at: timestamp(u.created_at.as_ref()),
            member_id: non_empty(u.member_id),
            provider_code: non_empty(u.provider_code),
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            active: u.active,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Referent {
    pub user_id: String,
    pub display_name: String,
    pub email: String,
}

/// `GET /v1/me`: the caller, with its member's referent (null when none, or not a member's user).
#[derive(Debug, Serialize)]
pub struct Me {
    pub user: Option<User>,
    pub referent: Option<Referent>,
}

impl From<membership::Me> for Me {
    fn from(m: membership::Me) -> Self {
        Self {
            user: m.user.map(User::from),
            referent: m.referent.filter(|r| !r.user_id.is_empty()).map(|r| Referent {
                user_id: r.user_id,
                display_name: r.display_name,
                email: r.email,
            }),
        }
    }
}

/// `POST /v1/users`: the invited user and its one-time invitation token.
#[derive(Debug, Serialize)]
pub struct Invitation {
    pub user: Option<User>,
    /// Shown once; the invitee sets its password with it (`POST /v1/auth/invitations/accept`).
    pub invitation_token: String,
    pub expires_at: Option<String>,
}

impl From<membership::Invitation> for Invitation {
    fn from(i: membership::Invitation) -> Self {
        Self {
            user: i.user.map(User::from),
            expires_at: timestamp(i.expires_at.as_ref()),
            invitation_token: i.invitation_token,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AuditEvent {
    pub id: String,
    /// e.g. `login.succeeded`, `login.failed`, `account.locked`, `user.invited`.
    pub kind: String,
    pub actor_user_id: Option<String>,
    pub subject: String,
    pub client: Option<String>,
    pub detail: String,
    pub at: Option<String>,
}

impl From<membership::AuditEvent> for AuditEvent {
    fn from(e: membership::AuditEvent) -> Self {
        Self {
            at: timestamp(e.at.as_ref()),
            actor_user_id: non_empty(e.actor_user_id),
            client: non_empty(e.client),
            id: e.id,
            kind: e.kind,
            subject: e.subject,
            detail: e.detail,
        }
    }
}

/// `POST /v1/auth/keys/rotate`: the id of the new signing key.
#[derive(Debug, Serialize)]
pub struct RotatedKey {
    pub kid: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use id77_proto::prost_types::Timestamp;
    use serde_json::json;

    fn ts(seconds: i64, nanos: i32) -> Option<Timestamp> {
        Some(Timestamp { seconds, nanos })
    }

    #[test]
    fn roles_are_the_snake_case_names_of_the_tokens() {
        for r in Role::ALL {
            assert_eq!(role(role_to_proto(r).into()), r.as_str());
        }
        assert_eq!(role(0), UNSPECIFIED);
        assert_eq!(role(42), UNSPECIFIED);
    }

    #[test]
    fn identity_json_has_the_documented_shapes() {
        let user = membership::User {
            id: "u1".into(),
            email: "dgs@meaux.fr".into(),
            display_name: "DGS".into(),
            role: membership::Role::MemberAdmin.into(),
            member_id: "m1".into(),
            provider_code: String::new(),
            active: true,
            created_at: ts(1_700_000_000, 0),
        };
        let me = Me::from(membership::Me { user: Some(user.clone()), referent: None });
        assert_eq!(
            serde_json::to_value(me).unwrap_or_default(),
            json!({
                "user": {"id": "u1", "email": "dgs@meaux.fr", "display_name": "DGS", "role": "member_admin",
                         "member_id": "m1", "provider_code": null, "active": true,
                         "created_at": "2023-11-14T22:13:20Z"},
                "referent": null
            })
        );
        let referent =
            membership::Referent { user_id: "r1".into(), display_name: "R".into(), email: "r@d77.fr".into() };
        let me = Me::from(membership::Me { user: Some(user.clone()), referent: Some(referent) });
        assert_eq!(
            serde_json::to_value(me).unwrap_or_default()["referent"],
            json!({"user_id": "r1", "display_name": "R", "email": "r@d77.fr"})
        );
        let pair = TokenPair::from(membership::TokenPair {
            access_token: "a".into(),
            token_type: "bearer".into(),
            expires_in: 600,
            refresh_token: "r".into(),
            refresh_expires_in: 2_592_000,
        });
        assert_eq!(
            serde_json::to_value(pair).unwrap_or_default(),
            json!({"access_token": "a", "token_type": "Bearer", "expires_in": 600, "refresh_token": "r",
                   "refresh_expires_in": 2_592_000})
        );
        let invitation = Invitation::from(membership::Invitation {
            user: Some(user),
            invitation_token: "i".into(),
            expires_at: ts(1_700_000_000, 0),
        });
        let value = serde_json::to_value(invitation).unwrap_or_default();
        assert_eq!(
            (value["invitation_token"].as_str(), value["expires_at"].as_str()),
            (Some("i"), Some("2023-11-14T22:13:20Z"))
        );
        assert_eq!(value["user"]["role"], "member_admin");
        let event = AuditEvent::from(membership::AuditEvent {
            id: "e1".into(),
            kind: "login.failed".into(),
            actor_user_id: String::new(),
            subject: "dgs@meaux.fr".into(),
            client: "192.0.2.1".into(),
            detail: "wrong password".into(),
            at: ts(1_700_000_000, 0),
        });
        assert_eq!(
            serde_json::to_value(event).unwrap_or_default(),
            json!({"id": "e1", "kind": "login.failed", "actor_user_id": null, "subject": "dgs@meaux.fr",
                   "client": "192.0.2.1", "detail": "wrong password", "at": "2023-11-14T22:13:20Z"})
        );
    }
}
