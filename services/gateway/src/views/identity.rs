//! Accounts and sessions as JSON: tokens, users, the caller (`/v1/me`), invitations, the audit log, roles.

use id77_platform::auth::Role;
use id77_proto::membership::v1 as membership;
use serde::Serialize;
use utoipa::ToSchema;

use super::common::{UNSPECIFIED, non_empty, timestamp};

// A role as the document names it (the views carry `&'static str`).
#[derive(ToSchema)]
#[schema(
    as = Role,
    rename_all = "snake_case",
    description = "member_admin, member_user: a member's users; provider_agent: a provider's staff; coordinator, \
                   referent, operator: the Département."
)]
#[allow(dead_code)]
pub enum RoleDoc {
    MemberAdmin,
    MemberUser,
    ProviderAgent,
    Coordinator,
    Referent,
    Operator,
}

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

/// Always `Bearer`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub enum TokenTypeDoc {
    Bearer,
}

/// The answer of a login, a refresh or an invitation acceptance.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenPair {
    /// EdDSA JWT; send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    #[schema(value_type = TokenTypeDoc, inline)]
    pub token_type: &'static str,
    /// Seconds.
    #[schema(example = 600)]
    pub expires_in: i64,
    /// Opaque, single use: each refresh returns a new one; presenting a used one revokes the session.
    pub refresh_token: String,
    /// Seconds.
    #[schema(example = 2_592_000)]
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

/// An account.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = Email)]
    pub email: String,
    pub display_name: String,
    #[schema(value_type = RoleDoc)]
    pub role: &'static str,
    /// For member_admin and member_user.
    #[schema(required = true, format = "uuid")]
    pub member_id: Option<String>,
    /// For provider_agent.
    #[schema(required = true)]
    pub provider_code: Option<String>,
    /// False until the invitation is accepted.
    pub active: bool,
    /// RFC 3339, UTC.
    #[schema(required = true, format = DateTime)]
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

/// The Département agent who follows a member, and how to reach them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Referent {
    #[schema(format = "uuid")]
    pub user_id: String,
    pub display_name: String,
    #[schema(format = Email)]
    pub email: String,
}

/// `GET /v1/me`: the caller, with its member's referent (null when none, or not a member's user).
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// The caller's account.
    #[schema(value_type = User, required = true)]
    pub user: Option<User>,
    /// The member's referent (who follows it, how to reach them); null when none or not a member's user.
    #[schema(required = true)]
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
#[derive(Debug, Serialize, ToSchema)]
pub struct Invitation {
    /// The invited account, inactive until the invitation is accepted.
    #[schema(value_type = User, required = true)]
    pub user: Option<User>,
    /// Shown once: hand it to the invitee, who sets a password with `POST /v1/auth/invitations/accept`.
    pub invitation_token: String,
    /// When the invitation token stops working (RFC 3339, UTC; 7 days after the invitation).
    #[schema(required = true, format = DateTime)]
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

/// A security event of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    pub id: String,
    /// One of `login.succeeded`, `login.failed`, `account.locked` (older events),
    /// `login.throttled`, `token.reuse_detected`, `user.invited`, `user.activated`, `user.removed`,
    /// `membership.approved`, `referent.assigned`, `signing_key.rotated`, `membership.refused`,
    /// `password_reset.requested`, `password.reset`, `password.changed`.
    #[schema(example = "login.failed")]
    pub kind: String,
    /// Who did it, when known.
    #[schema(required = true, format = "uuid")]
    pub actor_user_id: Option<String>,
    /// What it was done to (an email, a user or member id...).
    pub subject: String,
    /// The client address, when known.
    #[schema(required = true)]
    pub client: Option<String>,
    pub detail: String,
    /// RFC 3339, UTC.
    #[schema(required = true, format = DateTime)]
    pub at: Option<String>,
}

/// The kinds of audit events membership writes (its `audit::ALL`), as `GET /v1/audit-events?kind=` accepts them.
pub const AUDIT_KINDS: [&str; 15] = [
    "login.succeeded",
    "login.failed",
    "account.locked",
    "login.throttled",
    "token.reuse_detected",
    "user.invited",
    "user.activated",
    "user.removed",
    "membership.approved",
    "referent.assigned",
    "signing_key.rotated",
    "membership.refused",
    "password_reset.requested",
    "password.reset",
    "password.changed",
];

/// A kind of audit event.
#[derive(ToSchema)]
#[schema(as = AuditEventKind)]
#[allow(dead_code)]
pub enum AuditKindDoc {
    #[schema(rename = "login.succeeded")]
    LoginSucceeded,
    #[schema(rename = "login.failed")]
    LoginFailed,
    /// Written by the lock-out that login throttling replaced: older events only.
    #[schema(rename = "account.locked")]
    AccountLocked,
    #[schema(rename = "login.throttled")]
    LoginThrottled,
    #[schema(rename = "token.reuse_detected")]
    TokenReuseDetected,
    #[schema(rename = "user.invited")]
    UserInvited,
    #[schema(rename = "user.activated")]
    UserActivated,
    #[schema(rename = "user.removed")]
    UserRemoved,
    #[schema(rename = "membership.approved")]
    MembershipApproved,
    #[schema(rename = "referent.assigned")]
    ReferentAssigned,
    #[schema(rename = "signing_key.rotated")]
    SigningKeyRotated,
    #[schema(rename = "membership.refused")]
    MembershipRefused,
    #[schema(rename = "password_reset.requested")]
    PasswordResetRequested,
    #[schema(rename = "password.reset")]
    PasswordReset,
    #[schema(rename = "password.changed")]
    PasswordChanged,
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
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedKey {
    /// Id of the new signing key.
    pub kid: String,
}

// `GET /.well-known/jwks.json`, as membership publishes it (the gateway passes the JSON through).
/// RFC 7517 JSON Web Key Set of Ed25519 keys (RFC 8037).
#[derive(ToSchema)]
#[schema(as = Jwks)]
#[allow(dead_code)]
pub struct JwksDoc {
    keys: Vec<JwkDoc>,
}

/// One Ed25519 public key (RFC 8037).
#[derive(ToSchema)]
#[schema(as = Jwk)]
#[allow(dead_code)]
pub struct JwkDoc {
    #[schema(inline)]
    kty: KtyDoc,
    #[schema(inline)]
    crv: CrvDoc,
    /// The public key, base64url.
    x: String,
    /// The key's id (the `kid` of the tokens it signs).
    kid: String,
    #[schema(inline)]
    alg: AlgDoc,
    #[schema(inline, rename = "use")]
    usage: UseDoc,
}

#[derive(ToSchema)]
#[allow(dead_code)]
enum KtyDoc {
    #[schema(rename = "OKP")]
    Okp,
}

#[derive(ToSchema)]
#[allow(dead_code)]
enum CrvDoc {
    Ed25519,
}

#[derive(ToSchema)]
#[allow(dead_code)]
enum AlgDoc {
    #[schema(rename = "EdDSA")]
    EdDsa,
}

#[derive(ToSchema)]
#[allow(dead_code)]
enum UseDoc {
    #[schema(rename = "sig")]
    Sig,
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
