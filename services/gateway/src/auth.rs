//! Who the caller is and what its role may do. Today the identity comes from the development-only header of
//! [`crate::dev_identity`]; the checks here stay when real tokens replace it. The services will check again
//! (authorization belongs to the service that owns the data); the gateway's checks give clients clean
//! 401/403 answers and keep members and providers inside their own data.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use uuid::Uuid;

use crate::AppState;
use crate::problem::Problem;

/// The caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Anonymous,
    Coordinator,
    Operator,
    /// A user of this member.
    Member(Uuid),
    /// An agent of the provider with this code.
    Provider(String),
}

/// What an identity is allowed to do, independent of which member or provider it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Coordinator,
    Operator,
    Member,
    Provider,
}

/// Coordinator and operator: see everything.
pub const STAFF: &[Role] = &[Role::Coordinator, Role::Operator];

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Coordinator => "coordinator",
            Self::Operator => "operator",
            Self::Member => "member",
            Self::Provider => "provider",
        }
    }
}

impl Identity {
    pub fn role(&self) -> Option<Role> {
        match self {
            Self::Anonymous => None,
            Self::Coordinator => Some(Role::Coordinator),
            Self::Operator => Some(Role::Operator),
            Self::Member(_) => Some(Role::Member),
            Self::Provider(_) => Some(Role::Provider),
        }
    }

    pub fn is_staff(&self) -> bool {
        self.role().is_some_and(|r| STAFF.contains(&r))
    }

    /// 401 when anonymous, 403 when the role is not among `allowed`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), Problem> {
        match self.role() {
            None => Err(Problem::unauthenticated("this operation needs an authenticated caller")),
            Some(role) if allowed.contains(&role) => Ok(()),
            Some(role) => {
                let allowed: Vec<_> = allowed.iter().map(|r| r.as_str()).collect();
                Err(Problem::forbidden(format!(
                    "a {} may not do this (allowed: {})",
                    role.as_str(),
                    allowed.join(", ")
                )))
            }
        }
    }

    /// The member the caller acts for; 401 when anonymous, 403 for any other role.
    pub fn require_member(&self) -> Result<Uuid, Problem> {
        self.require(&[Role::Member])?;
        match self {
            Self::Member(id) => Ok(*id),
            _ => Err(Problem::forbidden("only a member may do this")),
        }
    }
}

impl FromRequestParts<AppState> for Identity {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        crate::dev_identity::from_headers(&parts.headers, state.dev_identity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> Identity {
        Identity::Member(Uuid::nil())
    }

    #[test]
    fn anonymous_is_401_and_wrong_role_is_403() {
        let status = |r: Result<(), Problem>| r.err().map(|p| p.status.as_u16());
        assert_eq!(status(Identity::Anonymous.require(STAFF)), Some(401));
        assert_eq!(status(member().require(STAFF)), Some(403));
        assert_eq!(status(Identity::Provider("caue77".into()).require(&[Role::Member])), Some(403));
        assert_eq!(status(Identity::Operator.require(&[Role::Coordinator])), Some(403));
        assert_eq!(status(Identity::Coordinator.require(STAFF)), None);
        assert_eq!(status(Identity::Operator.require(STAFF)), None);
        assert_eq!(status(member().require(&[Role::Member, Role::Coordinator])), None);
    }

    #[test]
    fn only_members_act_as_a_member() {
        assert_eq!(member().require_member().ok(), Some(Uuid::nil()));
        assert_eq!(Identity::Anonymous.require_member().err().map(|p| p.status.as_u16()), Some(401));
        assert_eq!(Identity::Coordinator.require_member().err().map(|p| p.status.as_u16()), Some(403));
        assert!(Identity::Coordinator.is_staff() && Identity::Operator.is_staff());
        assert!(!member().is_staff() && !Identity::Anonymous.is_staff());
    }
}
