//! Who the caller is: the `Authorization: Bearer <jwt>` access token, verified with the keys membership
//! publishes (or a JWKS file), and what its role may do at the gateway.
//!
//! The gateway's checks follow `docs/authorization.md`: 401 without a valid token, 403 when the caller's role
//! may never do this, 404 when the role may but not on this resource. The services check again on the data
//! they own, from the same token, which the gateway forwards as gRPC metadata `authorization: Bearer <jwt>`.
//!
//! Public routes do not read the `Authorization` header at all (a stale token must not prevent logging in or
//! browsing the catalogue), and forward nothing.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use id77_platform::auth::{Caller, MAX_TOKEN_BYTES, Role};
use tonic::metadata::{Ascii, MetadataValue};
use uuid::Uuid;

use crate::AppState;
use crate::problem::{Problem, refused_token_detail};

/// `WWW-Authenticate` of a 401 for a request without a token (RFC 6750 §3: no error code then).
pub use crate::problem::CHALLENGE;
/// `WWW-Authenticate` of a 401 for a token that failed verification.
pub const INVALID_TOKEN_CHALLENGE: &str = "Bearer error=\"invalid_token\"";

/// An authenticated caller: a valid access token is required (401 otherwise, before the body is read).
///
/// A token usually carries one role. With several, the caller gets the union of their rights on reads, as in
/// the services (docs/authorization.md): each check below asks whether *any* of the roles allows the call.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub caller: Caller,
    /// `Bearer <token>`, forwarded to the services.
    bearer: MetadataValue<Ascii>,
}

impl Authenticated {
    /// A verified caller and its token; `None` when the token cannot travel as gRPC metadata.
    pub fn new(caller: Caller, token: &str) -> Option<Self> {
        let bearer = format!("Bearer {token}").parse().ok()?;
        Some(Self { caller, bearer })
    }

    /// A gRPC request carrying the caller's token.
    pub fn grpc<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", self.bearer.clone());
        request
    }

    /// 403 unless the caller has one of the `allowed` roles.
    pub fn allow(&self, allowed: &[Role]) -> Result<(), Problem> {
        if self.caller.has_any(allowed) {
            return Ok(());
        }
        let roles: Vec<_> = self.caller.roles.iter().map(|r| r.as_str()).collect();
        let allowed: Vec<_> = allowed.iter().map(|r| r.as_str()).collect();
        Err(Problem::forbidden(format!("a {} may not do this (allowed: {})", roles.join(" and "), allowed.join(", "))))
    }

    pub fn has(&self, role: Role) -> bool {
        self.caller.has(role)
    }

    /// The member of a member_admin or member_user.
    pub fn own_member(&self) -> Option<Uuid> {
        self.caller.member_id.filter(|_| self.caller.has_any(&[Role::MemberAdmin, Role::MemberUser]))
    }

    /// The member of a member_admin.
    pub fn administered_member(&self) -> Option<Uuid> {
        self.caller.member_id.filter(|_| self.caller.has(Role::MemberAdmin))
    }

    /// The provider of a provider_agent.
    pub fn own_provider(&self) -> Option<&str> {
        self.caller.provider_code.as_deref().filter(|_| self.caller.has(Role::ProviderAgent))
    }

    /// Whether the caller is a user of this member (`id` as the service wrote it).
    pub fn is_of_member(&self, id: &str) -> bool {
        self.own_member().is_some_and(|own| Uuid::parse_str(id).is_ok_and(|id| id == own))
    }

    /// Whether the caller is an agent of this provider.
    pub fn is_agent_of(&self, provider_code: &str) -> bool {
        !provider_code.is_empty() && self.caller.is_agent_of(provider_code)
    }

    /// The token's user id.
    pub fn user_id(&self) -> Uuid {
        self.caller.user_id
    }
}

/// 401 for a request without a token.
pub fn missing_token() -> Problem {
    Problem::unauthenticated("this operation needs an access token: Authorization: Bearer <token>")
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static(CHALLENGE))
}

/// 401 for a token that failed verification. A verifier's message (`authentication required: …`, which may
/// quote the token's `kid` or claims) becomes a fixed detail ([`crate::problem::refused_token_detail`]); the
/// gateway's own details about the header's form are kept.
pub fn invalid_token(detail: impl Into<String>) -> Problem {
    let detail = detail.into();
    let detail =
        if detail.starts_with("authentication required") { refused_token_detail(&detail).to_owned() } else { detail };
    Problem::unauthenticated(detail)
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static(INVALID_TOKEN_CHALLENGE))
}

/// The bearer token of the `Authorization` header: `Ok(None)` without the header, 401 when it is not a
/// well-formed bearer token.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, Problem> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid_token("send one Authorization header"));
    }
    let value = value.to_str().map_err(|_| invalid_token("the Authorization header must be visible ASCII"))?;
    let (scheme, token) =
        value.trim().split_once(' ').ok_or_else(|| invalid_token("expected Authorization: Bearer <token>"))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(invalid_token("expected Authorization: Bearer <token>"));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(invalid_token(format!("the token must be at most {MAX_TOKEN_BYTES} bytes")));
    }
    Ok(Some(token))
}

impl Authenticated {
    /// The caller of the request with these headers: 401 without a token or with a refused one, 503 when the
    /// keys could not be loaded. Also for the public routes that need a caller for some parameters only.
    pub async fn from_headers(state: &AppState, headers: &HeaderMap) -> Result<Self, Problem> {
        let token = bearer_token(headers)?.ok_or_else(missing_token)?;
        let caller = state.authenticator().verify(token).await.map_err(|error| match error.code {
            id77_platform::ErrorCode::Unauthenticated => invalid_token(refused_token_detail(&error.message)),
            // The keys could not be loaded: not the client's fault.
            _ => Problem::from(error),
        })?;
        Self::new(caller, token).ok_or_else(|| invalid_token("the token is not visible ASCII"))
    }
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Self::from_headers(state, &parts.headers).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(roles: Vec<Role>, member: Option<Uuid>, provider: Option<&str>) -> Authenticated {
        let caller = Caller {
            user_id: Uuid::nil(),
            roles,
            member_id: member,
            provider_code: provider.map(str::to_owned),
            email: String::new(),
            session: String::new(),
            name: String::new(),
        };
        Authenticated { caller, bearer: MetadataValue::from_static("Bearer x") }
    }

    #[test]
    fn members_and_providers_come_with_their_role_only() {
        let m = Uuid::now_v7();
        let user = caller(vec![Role::MemberUser], Some(m), None);
        assert_eq!((user.own_member(), user.administered_member()), (Some(m), None));
        assert!(user.is_of_member(&m.to_string().to_uppercase()) && !user.is_of_member("x"));
        let admin = caller(vec![Role::MemberAdmin], Some(m), None);
        assert_eq!(admin.administered_member(), Some(m));
        // A member id without a member role, a provider code without the agent role: nothing.
        let odd = caller(vec![Role::Coordinator], Some(m), Some("caue77"));
        assert_eq!((odd.own_member(), odd.own_provider()), (None, None));
        let agent = caller(vec![Role::ProviderAgent], None, Some("caue77"));
        assert_eq!(agent.own_provider(), Some("caue77"));
        assert!(agent.is_agent_of("caue77") && !agent.is_agent_of("other"));
    }

    #[test]
    fn several_roles_give_the_union_of_their_rights() {
        let both = caller(vec![Role::MemberUser, Role::ProviderAgent], Some(Uuid::nil()), Some("caue77"));
        assert!(both.allow(&[Role::ProviderAgent]).is_ok());
        assert!(both.allow(&[Role::MemberUser]).is_ok());
        let problem = both.allow(&[Role::Coordinator]).err();
        assert_eq!(problem.map(|p| p.status.as_u16()), Some(403));
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        let headers = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                if let Ok(v) = HeaderValue::from_str(v) {
                    h.append(AUTHORIZATION, v);
                }
            }
            h
        };
        assert_eq!(bearer_token(&headers(&[])).ok(), Some(None));
        assert_eq!(bearer_token(&headers(&["Bearer abc"])).ok(), Some(Some("abc")));
        assert_eq!(bearer_token(&headers(&["bearer  abc "])).ok(), Some(Some("abc")));
        for bad in [&["Basic abc"][..], &["Bearer"], &["Bearer "], &["abc"], &["Bearer a", "Bearer b"]] {
            let problem = bearer_token(&headers(bad)).err();
            assert_eq!(problem.as_ref().map(|p| p.status.as_u16()), Some(401), "{bad:?}");
        }
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_BYTES + 1));
        assert!(bearer_token(&headers(&[&long])).is_err());
    }
}
