//! What an access token says about its caller (its claims and roles), who issues it for whom, and how long it
//! lives: shared by the verification ([`crate::auth`]) and the revocations that outlive it ([`crate::revocation`]).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `iss` of every access token.
pub const ISSUER: &str = "https://id77.seine-et-marne.fr";
/// `aud` of every access token.
pub const AUDIENCE: &str = "id77-api";
/// Lifetime of an access token.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(600);
/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: i64 = 30;

/// What a user may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Staff or elected official of a member who manages its users.
    MemberAdmin,
    MemberUser,
    /// Staff of a provider (a departmental service or an associated organisation).
    ProviderAgent,
    /// The single front door: sees everything operational.
    Coordinator,
    /// A Département agent who follows some members.
    Referent,
    /// Platform administration: accounts, keys, configuration.
    Operator,
}

impl Role {
    pub const ALL: [Role; 6] =
        [Self::MemberAdmin, Self::MemberUser, Self::ProviderAgent, Self::Coordinator, Self::Referent, Self::Operator];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::MemberAdmin => "member_admin",
            Self::MemberUser => "member_user",
            Self::ProviderAgent => "provider_agent",
            Self::Coordinator => "coordinator",
            Self::Referent => "referent",
            Self::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Roles of a member's users.
    pub fn is_member_role(self) -> bool {
        matches!(self, Self::MemberAdmin | Self::MemberUser)
    }

    /// Roles of the Département's own agents.
    pub fn is_department_role(self) -> bool {
        matches!(self, Self::Coordinator | Self::Referent | Self::Operator)
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub roles: Vec<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_code: Option<String>,
    #[serde(default)]
    pub email: String,
    /// The SIREN of the caller's member (ProConnect-style claim), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub siren: Option<String>,
    /// The refresh-token family (the login session) this token belongs to.
    #[serde(default)]
    pub sid: String,
    /// The user's display name when the token was issued (OIDC `name`), so that a history line or a message
    /// names a person, not an e-mail address. Empty in tokens issued before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl Claims {
    /// Claims for a user, valid from `now` for [`ACCESS_TOKEN_TTL`].
    pub fn new(user_id: Uuid, role: Role, now: i64) -> Self {
        Self {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user_id.to_string(),
            exp: now + ACCESS_TOKEN_TTL.as_secs() as i64,
            nbf: now,
            iat: now,
            jti: Uuid::now_v7().to_string(),
            roles: vec![role],
            member_id: None,
            provider_code: None,
            email: String::new(),
            siren: None,
            sid: String::new(),
            name: String::new(),
        }
    }
}
