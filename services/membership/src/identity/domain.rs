//! Identity rules, free of I/O: password policy, and who may see or manage which accounts
//! and members (docs/authorization.md).

use chrono::TimeDelta;
use id77_platform::ServiceError;
use id77_platform::auth::{Caller, Role, forbidden};
use id77_platform::error::FieldViolation;
use uuid::Uuid;

use crate::error::IdentityError;

/// Shortest password accepted (characters).
pub const PASSWORD_MIN_CHARS: usize = 12;
/// Longest password accepted (characters).
pub const PASSWORD_MAX_CHARS: usize = 128;
/// Longest password a login may present (bytes): anything longer cannot match and is not hashed.
pub const MAX_LOGIN_PASSWORD_BYTES: usize = 4 * PASSWORD_MAX_CHARS;
/// Longest opaque token (refresh, invitation) accepted (bytes).
pub const MAX_OPAQUE_TOKEN_BYTES: usize = 256;
/// Longest display name (characters).
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;
/// Longest client address kept in the audit log (characters).
pub const MAX_CLIENT_CHARS: usize = 200;

/// Lifetime of a refresh token.
pub fn refresh_token_ttl() -> TimeDelta {
    TimeDelta::days(30)
}

/// Lifetime of a password reset link.
pub fn password_reset_ttl() -> TimeDelta {
    TimeDelta::hours(1)
}

/// Reset links an account may be sent per [`password_reset_ttl`] (more requests are answered alike, unsent).
pub const MAX_RESETS_PER_TTL: i64 = 3;

/// Lifetime of an invitation.
pub fn invitation_ttl() -> TimeDelta {
    TimeDelta::days(7)
}

/// Kinds of audit events.
pub mod audit {
    pub const LOGIN_SUCCEEDED: &str = "login.succeeded";
    pub const LOGIN_FAILED: &str = "login.failed";
    /// Written by the lock-out that login throttling replaced: kept so that older events stay queryable.
    pub const ACCOUNT_LOCKED: &str = "account.locked";
    pub const LOGIN_THROTTLED: &str = "login.throttled";
    pub const TOKEN_REUSE_DETECTED: &str = "token.reuse_detected";
    pub const USER_INVITED: &str = "user.invited";
    pub const USER_ACTIVATED: &str = "user.activated";
    pub const USER_REMOVED: &str = "user.removed";
    pub const MEMBERSHIP_APPROVED: &str = "membership.approved";
    pub const REFERENT_ASSIGNED: &str = "referent.assigned";
    pub const SIGNING_KEY_ROTATED: &str = "signing_key.rotated";
    pub const MEMBERSHIP_REFUSED: &str = "membership.refused";
    pub const PASSWORD_RESET_REQUESTED: &str = "password_reset.requested";
    pub const PASSWORD_RESET: &str = "password.reset";
    pub const PASSWORD_CHANGED: &str = "password.changed";

    pub const ALL: [&str; 15] = [
        LOGIN_SUCCEEDED,
        LOGIN_FAILED,
        ACCOUNT_LOCKED,
        LOGIN_THROTTLED,
        TOKEN_REUSE_DETECTED,
        USER_INVITED,
        USER_ACTIVATED,
        USER_REMOVED,
        MEMBERSHIP_APPROVED,
        REFERENT_ASSIGNED,
        SIGNING_KEY_ROTATED,
        MEMBERSHIP_REFUSED,
        PASSWORD_RESET_REQUESTED,
        PASSWORD_RESET,
        PASSWORD_CHANGED,
    ];

    pub fn is_known(kind: &str) -> bool {
        ALL.contains(&kind)
    }
}

/// What is wrong with a password, empty if it satisfies the policy: 12 to 128 characters, at least three of
/// lowercase, uppercase, digit and symbol, and not containing the local part of the account's email.
pub fn password_problems(password: &str, email: &str) -> Vec<&'static str> {
    let mut problems = Vec::new();
    let chars = password.chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars) {
        problems.push("must be 12 to 128 characters");
    }
    let classes = [
        password.chars().any(char::is_lowercase),
        password.chars().any(char::is_uppercase),
        password.chars().any(char::is_numeric),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    if classes.iter().filter(|present| **present).count() < 3 {
        problems.push("must mix at least three of lowercase letters, uppercase letters, digits and symbols");
    }
    let local = email.split('@').next().unwrap_or_default().to_lowercase();
    // A one- or two-letter local part would forbid most passwords without making any of them safer.
    if local.chars().count() >= 3 && password.to_lowercase().contains(&local) {
        problems.push("must not contain the name part of the email address");
    }
    problems
}

/// The password policy as a typed error on `field`.
pub fn check_password(field: &str, password: &str, email: &str) -> Result<(), ServiceError> {
    let problems = password_problems(password, email);
    if problems.is_empty() {
        return Ok(());
    }
    Err(ServiceError::invalid_fields(
        problems.into_iter().map(|d| FieldViolation { field: field.to_owned(), description: d.to_owned() }).collect(),
    ))
}

/// Lowercased, trimmed, plausible email.
pub fn normalize_email(field: &str, raw: &str) -> Result<String, ServiceError> {
    let email = raw.trim().to_lowercase();
    if id77_platform::validate::is_plausible_email(&email) {
        Ok(email)
    } else {
        Err(ServiceError::invalid(field, "must be an email address"))
    }
}

/// Trimmed display name of 1 to 200 printable characters.
pub fn normalize_display_name(raw: &str) -> Result<String, ServiceError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_DISPLAY_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ServiceError::invalid("display_name", "must be 1 to 200 printable characters"));
    }
    Ok(name.to_owned())
}

/// The client address as kept in the audit log: trimmed, printable, at most 200 characters.
pub fn clean_client(raw: &str) -> String {
    raw.trim().chars().filter(|c| !c.is_control()).take(MAX_CLIENT_CHARS).collect()
}

fn not_found_member(id: Uuid) -> ServiceError {
    ServiceError::not_found("member", &id.to_string())
}

/// Who an invitation creates, once allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteTarget {
    pub role: Role,
    pub member_id: Option<Uuid>,
    pub provider_code: Option<String>,
}

/// Who may invite whom: a member_admin its own member's admins and users; the coordinator admins and users of
/// any (active) member; the operator Département and provider accounts. A role the caller may never create is
/// PERMISSION_DENIED; a member that is not the caller's is NOT_FOUND.
pub fn authorize_invite(
    caller: &Caller,
    role: Role,
    member_id: Option<Uuid>,
    provider_code: Option<&str>,
) -> Result<InviteTarget, ServiceError> {
    let no_provider = |code: Option<&str>| match code {
        Some(_) => Err(ServiceError::invalid("provider_code", "must be empty for this role")),
        None => Ok(()),
    };
    if caller.has(Role::MemberAdmin) {
        if !role.is_member_role() {
            return Err(forbidden());
        }
        let own = caller.member_id.ok_or_else(forbidden)?;
        let member = match member_id {
            None => own,
            Some(m) if m == own => own,
            Some(other) => return Err(not_found_member(other)),
        };
        no_provider(provider_code)?;
        return Ok(InviteTarget { role, member_id: Some(member), provider_code: None });
    }
    if caller.has(Role::Coordinator) {
        if !role.is_member_role() {
            return Err(forbidden());
        }
        let member = member_id.ok_or_else(|| ServiceError::invalid("member_id", "is required for this role"))?;
        no_provider(provider_code)?;
        return Ok(InviteTarget { role, member_id: Some(member), provider_code: None });
    }
    if caller.has(Role::Operator) {
        if role.is_member_role() {
            return Err(forbidden());
        }
        if member_id.is_some() {
            return Err(ServiceError::invalid("member_id", "must be empty for this role"));
        }
        if role != Role::ProviderAgent {
            no_provider(provider_code)?;
            return Ok(InviteTarget { role, member_id: None, provider_code: None });
        }
        return match provider_code {
            Some(code) if id77_platform::streams::is_valid_subject_token(code) => {
                Ok(InviteTarget { role, member_id: None, provider_code: Some(code.to_owned()) })
            }
            Some(_) => Err(ServiceError::invalid("provider_code", "must be lowercase letters, digits and dashes")),
            None => Err(ServiceError::invalid("provider_code", "is required for a provider agent")),
        };
    }
    Err(forbidden())
}

/// Which accounts a list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserFilter {
    pub member_id: Option<Uuid>,
    pub provider_code: Option<String>,
    /// Only these roles, if set.
    pub roles: Option<Vec<Role>>,
}

/// Roles of the accounts the operator manages.
pub const OPERATOR_MANAGED: [Role; 4] = [Role::Coordinator, Role::Referent, Role::Operator, Role::ProviderAgent];

/// Who may list which accounts: a member_admin its member's (forced; another member or a provider is
/// NOT_FOUND), the coordinator everyone, the operator Département and provider accounts.
pub fn authorize_list_users(
    caller: &Caller,
    member_id: Option<Uuid>,
    provider_code: Option<&str>,
) -> Result<UserFilter, ServiceError> {
    if let Some(code) = provider_code
        && !id77_platform::streams::is_valid_subject_token(code)
    {
        return Err(ServiceError::invalid("provider_code", "must be lowercase letters, digits and dashes"));
    }
    if caller.has(Role::MemberAdmin) {
        let own = caller.member_id.ok_or_else(forbidden)?;
        if let Some(code) = provider_code {
            return Err(ServiceError::not_found("provider", code));
        }
        return match member_id {
            Some(other) if other != own => Err(not_found_member(other)),
            _ => Ok(UserFilter { member_id: Some(own), provider_code: None, roles: None }),
        };
    }
    if caller.has(Role::Coordinator) {
        return Ok(UserFilter { member_id, provider_code: provider_code.map(str::to_owned), roles: None });
    }
    if caller.has(Role::Operator) {
        if let Some(m) = member_id {
            return Err(not_found_member(m));
        }
        return Ok(UserFilter {
            member_id: None,
            provider_code: provider_code.map(str::to_owned),
            roles: Some(OPERATOR_MANAGED.to_vec()),
        });
    }
    Err(forbidden())
}

/// The roles that may remove accounts at all (checked before the account is looked up).
pub fn may_remove_users(caller: &Caller) -> Result<(), ServiceError> {
    caller.require_any(&[Role::MemberAdmin, Role::Operator])
}

/// Whether the caller may remove this account: a member_admin its own member's users, the operator Département
/// and provider accounts; anything else is NOT_FOUND; nobody removes themselves.
pub fn authorize_remove(
    caller: &Caller,
    user_id: Uuid,
    role: Role,
    member_id: Option<Uuid>,
) -> Result<(), ServiceError> {
    may_remove_users(caller)?;
    let in_scope = if caller.has(Role::MemberAdmin) {
        role.is_member_role() && member_id.is_some() && member_id == caller.member_id
    } else {
        !role.is_member_role()
    };
    if !in_scope {
        return Err(ServiceError::not_found("user", &user_id.to_string()));
    }
    if user_id == caller.user_id {
        return Err(IdentityError::RemoveSelf.into());
    }
    Ok(())
}

/// The roles that may read a member at all: its users, referents, the coordinator. Others are refused
/// before the member is looked up.
pub fn may_read_members(caller: &Caller) -> Result<(), ServiceError> {
    caller.require_any(&[Role::MemberAdmin, Role::MemberUser, Role::Referent, Role::Coordinator])
}

/// Whether the caller sees this member: its own users, its referent, the coordinator.
pub fn sees_member(caller: &Caller, member_id: Uuid, referent_user_id: Option<Uuid>) -> bool {
    caller.has(Role::Coordinator)
        || caller.belongs_to_member(member_id)
        || (caller.has(Role::Referent) && referent_user_id == Some(caller.user_id))
}

/// Which members a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberScope {
    All,
    FollowedBy(Uuid),
}

/// Who may list members: the coordinator all of them, a referent those it follows.
pub fn authorize_list_members(caller: &Caller) -> Result<MemberScope, ServiceError> {
    if caller.has(Role::Coordinator) {
        Ok(MemberScope::All)
    } else if caller.has(Role::Referent) {
        Ok(MemberScope::FollowedBy(caller.user_id))
    } else {
        Err(forbidden())
    }
}

#[cfg(test)]
mod tests {
    use id77_platform::ErrorCode;

    use super::*;

    fn caller(role: Role, member: Option<Uuid>) -> Caller {
        Caller {
            user_id: Uuid::now_v7(),
            roles: vec![role],
            member_id: member,
            provider_code: (role == Role::ProviderAgent).then(|| "caue77".to_owned()),
            email: "x@example.fr".into(),
            session: String::new(),
            name: String::new(),
        }
    }

    fn code(r: Result<impl std::fmt::Debug, ServiceError>) -> Option<ErrorCode> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn the_password_policy_needs_length_three_classes_and_not_the_email() {
        let email = "marie.dupont@meaux.fr";
        assert!(password_problems("Essai-ID77-2026!", email).is_empty());
        assert!(password_problems("correct horse Battery", email).is_empty(), "spaces count as symbols");
        assert!(password_problems("abcdefghijK1", email).is_empty(), "12 characters, three classes");
        assert_eq!(password_problems("abcdefghK1!", email), vec!["must be 12 to 128 characters"]);
        assert_eq!(password_problems(&format!("Aa1!{}", "x".repeat(125)), email).len(), 1, "129 characters");
        assert!(password_problems(&format!("Aa1!{}", "x".repeat(124)), email).is_empty(), "128 characters");
        assert_eq!(password_problems("abcdefghijklmnop", email).len(), 1, "one class");
        assert_eq!(password_problems("abcdefghijklmnoP", email).len(), 1, "two classes");
        assert!(password_problems("abcdefghijklmno1P", email).is_empty());
        assert_eq!(
            password_problems("Marie.Dupont-2026", email),
            vec!["must not contain the name part of the email address"]
        );
        assert!(password_problems("Mot2passe-Solide!", "ab@x.fr").is_empty(), "a 2-letter local part is ignored");
        // Counted in characters, not bytes.
        assert!(password_problems("éééééééééééÉ1", email).is_empty());
        assert_eq!(password_problems("", email).len(), 2);
        let err = check_password("password", "short", email).err().map(|e| (e.code, e.violations.len()));
        assert_eq!(err, Some((ErrorCode::InvalidArgument, 2)));
    }

    #[test]
    fn emails_names_and_clients_are_normalized() {
        assert_eq!(normalize_email("email", " Marie@Meaux.FR ").ok(), Some("marie@meaux.fr".to_owned()));
        assert_eq!(code(normalize_email("email", "nope")), Some(ErrorCode::InvalidArgument));
        assert_eq!(normalize_display_name(" Marie ").ok(), Some("Marie".to_owned()));
        assert!(normalize_display_name("").is_err());
        assert!(normalize_display_name("a\nb").is_err());
        assert!(normalize_display_name(&"x".repeat(201)).is_err());
        assert_eq!(clean_client(" 10.0.0.1\n"), "10.0.0.1");
        assert_eq!(clean_client(&"1".repeat(500)).len(), MAX_CLIENT_CHARS);
    }

    #[test]
    fn member_admins_invite_only_member_roles_into_their_own_member() {
        let own = Uuid::now_v7();
        let admin = caller(Role::MemberAdmin, Some(own));
        let ok = authorize_invite(&admin, Role::MemberUser, None, None).ok();
        assert_eq!(ok.and_then(|t| t.member_id), Some(own), "empty member_id is the caller's");
        assert!(authorize_invite(&admin, Role::MemberAdmin, Some(own), None).is_ok());
        assert_eq!(
            code(authorize_invite(&admin, Role::MemberUser, Some(Uuid::now_v7()), None)),
            Some(ErrorCode::NotFound)
        );
        assert_eq!(code(authorize_invite(&admin, Role::Coordinator, None, None)), Some(ErrorCode::PermissionDenied));
        assert_eq!(
            code(authorize_invite(&admin, Role::Coordinator, Some(Uuid::now_v7()), None)),
            Some(ErrorCode::PermissionDenied),
            "a forbidden role is 403 whatever the member"
        );
        assert_eq!(
            code(authorize_invite(&admin, Role::MemberUser, None, Some("caue77"))),
            Some(ErrorCode::InvalidArgument)
        );
        let user = caller(Role::MemberUser, Some(own));
        assert_eq!(code(authorize_invite(&user, Role::MemberUser, None, None)), Some(ErrorCode::PermissionDenied));
    }

    #[test]
    fn the_coordinator_invites_member_roles_and_the_operator_the_others() {
        let coordinator = caller(Role::Coordinator, None);
        let m = Uuid::now_v7();
        assert!(authorize_invite(&coordinator, Role::MemberAdmin, Some(m), None).is_ok());
        assert_eq!(
            code(authorize_invite(&coordinator, Role::MemberAdmin, None, None)),
            Some(ErrorCode::InvalidArgument)
        );
        assert_eq!(code(authorize_invite(&coordinator, Role::Referent, None, None)), Some(ErrorCode::PermissionDenied));

        let operator = caller(Role::Operator, None);
        for role in [Role::Coordinator, Role::Referent, Role::Operator] {
            assert!(authorize_invite(&operator, role, None, None).is_ok(), "{role:?}");
        }
        let agent = authorize_invite(&operator, Role::ProviderAgent, None, Some("caue77")).ok();
        assert_eq!(agent.and_then(|t| t.provider_code), Some("caue77".to_owned()));
        assert_eq!(
            code(authorize_invite(&operator, Role::ProviderAgent, None, None)),
            Some(ErrorCode::InvalidArgument)
        );
        assert_eq!(
            code(authorize_invite(&operator, Role::ProviderAgent, None, Some("a.>"))),
            Some(ErrorCode::InvalidArgument)
        );
        assert_eq!(
            code(authorize_invite(&operator, Role::MemberUser, Some(m), None)),
            Some(ErrorCode::PermissionDenied)
        );
        assert_eq!(code(authorize_invite(&operator, Role::Referent, Some(m), None)), Some(ErrorCode::InvalidArgument));
        for role in [Role::Referent, Role::ProviderAgent] {
            assert_eq!(
                code(authorize_invite(&caller(role, None), Role::MemberUser, Some(m), None)),
                Some(ErrorCode::PermissionDenied)
            );
        }
    }

    #[test]
    fn user_lists_are_scoped_by_role() {
        let own = Uuid::now_v7();
        let admin = caller(Role::MemberAdmin, Some(own));
        assert_eq!(authorize_list_users(&admin, None, None).ok().and_then(|f| f.member_id), Some(own));
        assert_eq!(code(authorize_list_users(&admin, Some(Uuid::now_v7()), None)), Some(ErrorCode::NotFound));
        assert_eq!(code(authorize_list_users(&admin, None, Some("caue77"))), Some(ErrorCode::NotFound));
        let operator = authorize_list_users(&caller(Role::Operator, None), None, None).ok();
        assert_eq!(operator.and_then(|f| f.roles), Some(OPERATOR_MANAGED.to_vec()));
        assert_eq!(
            code(authorize_list_users(&caller(Role::Operator, None), Some(own), None)),
            Some(ErrorCode::NotFound)
        );
        let all = authorize_list_users(&caller(Role::Coordinator, None), Some(own), None).ok();
        assert_eq!(all, Some(UserFilter { member_id: Some(own), provider_code: None, roles: None }));
        for role in [Role::MemberUser, Role::Referent, Role::ProviderAgent] {
            assert_eq!(
                code(authorize_list_users(&caller(role, Some(own)), None, None)),
                Some(ErrorCode::PermissionDenied)
            );
        }
        assert_eq!(
            code(authorize_list_users(&caller(Role::Coordinator, None), None, Some("A*"))),
            Some(ErrorCode::InvalidArgument)
        );
    }

    #[test]
    fn removals_stay_within_the_accounts_one_manages_and_never_self() {
        let own = Uuid::now_v7();
        let admin = caller(Role::MemberAdmin, Some(own));
        assert!(authorize_remove(&admin, Uuid::now_v7(), Role::MemberUser, Some(own)).is_ok());
        assert_eq!(
            code(authorize_remove(&admin, Uuid::now_v7(), Role::MemberUser, Some(Uuid::now_v7()))),
            Some(ErrorCode::NotFound)
        );
        assert_eq!(code(authorize_remove(&admin, Uuid::now_v7(), Role::Referent, None)), Some(ErrorCode::NotFound));
        assert_eq!(
            code(authorize_remove(&admin, admin.user_id, Role::MemberAdmin, Some(own))),
            Some(ErrorCode::PermissionDenied)
        );
        let operator = caller(Role::Operator, None);
        assert!(authorize_remove(&operator, Uuid::now_v7(), Role::ProviderAgent, None).is_ok());
        assert_eq!(
            code(authorize_remove(&operator, Uuid::now_v7(), Role::MemberAdmin, Some(own))),
            Some(ErrorCode::NotFound)
        );
        assert_eq!(
            code(authorize_remove(&operator, operator.user_id, Role::Operator, None)),
            Some(ErrorCode::PermissionDenied)
        );
        assert_eq!(
            code(authorize_remove(&caller(Role::Coordinator, None), Uuid::now_v7(), Role::MemberUser, Some(own))),
            Some(ErrorCode::PermissionDenied)
        );
    }

    #[test]
    fn members_are_seen_by_their_users_their_referent_and_the_coordinator() {
        let m = Uuid::now_v7();
        let referent = caller(Role::Referent, None);
        assert!(sees_member(&caller(Role::MemberUser, Some(m)), m, None));
        assert!(!sees_member(&caller(Role::MemberAdmin, Some(Uuid::now_v7())), m, None));
        assert!(sees_member(&referent, m, Some(referent.user_id)));
        assert!(!sees_member(&referent, m, Some(Uuid::now_v7())));
        assert!(!sees_member(&referent, m, None));
        assert!(sees_member(&caller(Role::Coordinator, None), m, None));
        assert!(may_read_members(&caller(Role::Operator, None)).is_err());
        assert!(may_read_members(&caller(Role::ProviderAgent, None)).is_err());
        assert_eq!(authorize_list_members(&caller(Role::Coordinator, None)).ok(), Some(MemberScope::All));
        assert_eq!(authorize_list_members(&referent).ok(), Some(MemberScope::FollowedBy(referent.user_id)));
        assert_eq!(
            code(authorize_list_members(&caller(Role::MemberAdmin, Some(m)))),
            Some(ErrorCode::PermissionDenied)
        );
    }

    #[test]
    fn audit_kinds_are_the_documented_ones() {
        assert!(audit::is_known("login.failed"));
        assert!(!audit::is_known("login"));
        assert!(audit::is_known("login.throttled"));
        assert!(audit::is_known("account.locked"), "older events stay queryable");
        assert!(audit::is_known("password_reset.requested") && audit::is_known("membership.refused"));
        assert_eq!(audit::ALL.len(), 15);
    }
}
