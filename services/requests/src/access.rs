//! Who may do what with requests (docs/authorization.md), free of I/O. The gateway checks the same table; this
//! is the second line of defence, deciding on the rows requests owns.
//!
//! Outcomes: [`Denied::Forbidden`] (PERMISSION_DENIED) when the caller's role may never do this,
//! [`Denied::NotFound`] when the role may but not on this resource (answered exactly like an unknown id, so
//! ids cannot be probed).

use id77_platform::auth::{Caller, Role};
use uuid::Uuid;

use crate::store::Scope;

/// Roles that may read requests at all (each then only on its own rows).
pub const READERS: [Role; 5] =
    [Role::MemberAdmin, Role::MemberUser, Role::ProviderAgent, Role::Referent, Role::Coordinator];
/// Roles that may list requests (each only its own scope: [`list_scope`]).
pub const LISTERS: [Role; 5] =
    [Role::MemberAdmin, Role::MemberUser, Role::ProviderAgent, Role::Referent, Role::Coordinator];
/// Roles that may cancel a request (the member's users on their member's, the coordinator on any).
pub const CANCELLERS: [Role; 3] = [Role::MemberAdmin, Role::MemberUser, Role::Coordinator];
/// Roles that may submit requests (for their own member).
pub const SUBMITTERS: [Role; 2] = [Role::MemberAdmin, Role::MemberUser];

pub use id77_platform::auth::Denied;

/// The member a member user acts for: its token's member, if it has a member role.
fn own_member(caller: &Caller) -> Option<Uuid> {
    caller.member_id.filter(|_| caller.has_any(&SUBMITTERS))
}

/// What requests knows about one request when deciding who sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    pub member_id: Uuid,
    /// The provider the request was referred to, once routing handed it over.
    pub provider_code: Option<&'a str>,
    /// The referent following the request's member (read model fed by `member.updated`).
    pub referent: Option<Uuid>,
}

/// SubmitRequest: only a member's users, only for their own member. `requested` is the request's member_id
/// (`None` when empty: filled in from the token). Returns the member to submit for.
pub fn submission_member(caller: &Caller, requested: Option<Uuid>) -> Result<Uuid, Denied> {
    if !caller.has_any(&SUBMITTERS) {
        return Err(Denied::Forbidden);
    }
    // A member role without a member is not a token membership mints; it may submit for nobody.
    let own = own_member(caller).ok_or(Denied::Forbidden)?;
    match requested {
        None => Ok(own),
        Some(member) if member == own => Ok(own),
        Some(_) => Err(Denied::NotFound),
    }
}

/// Role gate of GetRequest, checked before the request is even looked up.
pub fn may_read(caller: &Caller) -> Result<(), Denied> {
    if caller.has_any(&READERS) { Ok(()) } else { Err(Denied::Forbidden) }
}

/// GetRequest on one request: its member's users, the agents of the provider it was referred to, the referent
/// following its member, the coordinator.
pub fn read_request(caller: &Caller, request: &RequestFacts<'_>) -> Result<(), Denied> {
    may_read(caller)?;
    let allowed = caller.has(Role::Coordinator)
        || caller.belongs_to_member(request.member_id)
        || request.provider_code.is_some_and(|p| caller.is_agent_of(p))
        || (caller.has(Role::Referent) && request.referent == Some(caller.user_id));
    if allowed { Ok(()) } else { Err(Denied::NotFound) }
}

/// Role gate of ListRequests, checked before anything else.
pub fn may_list(caller: &Caller) -> Result<(), Denied> {
    if caller.has_any(&LISTERS) { Ok(()) } else { Err(Denied::Forbidden) }
}

/// ListRequests and SummarizeRequests: whose requests the caller sees. `requested` is the asked member
/// (`referent_of_requested` its referent). Member users: their own member (another one is not found). Referent:
/// a member it follows, or (none asked) all of them. Provider agents: the requests referred to their provider
/// (naming a member is not found). Coordinator: the asked member, or all. A caller with several roles gets the
/// first that applies, in that order from the coordinator.
pub fn list_scope(
    caller: &Caller,
    requested: Option<Uuid>,
    referent_of_requested: Option<Uuid>,
) -> Result<Scope, Denied> {
    may_list(caller)?;
    if caller.has(Role::Coordinator) {
        return Ok(requested.map_or(Scope::All, Scope::Member));
    }
    if let Some(own) = own_member(caller)
        && requested.is_none_or(|m| m == own)
    {
        return Ok(Scope::Member(own));
    }
    if caller.has(Role::Referent) {
        match requested {
            None => return Ok(Scope::FollowedBy(caller.user_id)),
            Some(member) if referent_of_requested == Some(caller.user_id) => return Ok(Scope::Member(member)),
            Some(_) => {}
        }
    }
    if caller.has(Role::ProviderAgent)
        && requested.is_none()
        && let Some(provider) = caller.provider_code.as_deref().filter(|p| !p.is_empty())
    {
        return Ok(Scope::Provider(provider.to_owned()));
    }
    Err(Denied::NotFound)
}

/// CancelRequest: the request's member's users, or the coordinator. Checked after [`read_request`] passed.
pub fn cancel_request(caller: &Caller, request: &RequestFacts<'_>) -> Result<(), Denied> {
    if !caller.has_any(&CANCELLERS) {
        return Err(Denied::Forbidden);
    }
    if caller.has(Role::Coordinator) || caller.belongs_to_member(request.member_id) {
        return Ok(());
    }
    Err(if caller.has_any(&READERS) && read_request(caller, request).is_ok() {
        // Sees it (e.g. a referent who also has a member role elsewhere) but may not cancel it.
        Denied::Forbidden
    } else {
        Denied::NotFound
    })
}

/// GiveFeedback: only the request's member's users.
pub fn give_feedback(caller: &Caller, request: &RequestFacts<'_>) -> Result<(), Denied> {
    if !caller.has_any(&SUBMITTERS) {
        return Err(Denied::Forbidden);
    }
    if caller.belongs_to_member(request.member_id) { Ok(()) } else { Err(Denied::NotFound) }
}

/// CloseRequest and GetRequestStatistics: the coordinator only.
pub fn coordinate(caller: &Caller) -> Result<(), Denied> {
    if caller.has(Role::Coordinator) { Ok(()) } else { Err(Denied::Forbidden) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "caue77";
    const Q: &str = "dir-routes";

    struct World {
        m: Uuid,
        other_member: Uuid,
        referent: Uuid,
    }

    fn world() -> World {
        World { m: Uuid::from_u128(1), other_member: Uuid::from_u128(2), referent: Uuid::from_u128(100) }
    }

    fn caller(role: Role, member_id: Option<Uuid>, provider_code: Option<&str>, user_id: Uuid) -> Caller {
        Caller {
            user_id,
            roles: vec![role],
            member_id,
            provider_code: provider_code.map(str::to_owned),
            email: String::new(),
            session: String::new(),
            name: String::new(),
        }
    }

    /// Every caller of the policy table, named, around member M (followed by `referent`) and provider P.
    fn callers(w: &World) -> Vec<(&'static str, Caller)> {
        let someone = Uuid::from_u128(7);
        vec![
            ("member_admin of M", caller(Role::MemberAdmin, Some(w.m), None, someone)),
            ("member_user of M", caller(Role::MemberUser, Some(w.m), None, someone)),
            ("member_user of another member", caller(Role::MemberUser, Some(w.other_member), None, someone)),
            ("member_user without member", caller(Role::MemberUser, None, None, someone)),
            ("provider_agent of P", caller(Role::ProviderAgent, None, Some(P), someone)),
            ("provider_agent of Q", caller(Role::ProviderAgent, None, Some(Q), someone)),
            ("provider_agent without provider", caller(Role::ProviderAgent, None, None, someone)),
            ("referent of M", caller(Role::Referent, None, None, w.referent)),
            ("another referent", caller(Role::Referent, None, None, someone)),
            ("coordinator", caller(Role::Coordinator, None, None, someone)),
            ("operator", caller(Role::Operator, None, None, someone)),
        ]
    }

    use Denied::{Forbidden as F, NotFound as N};

    fn check<T: std::fmt::Debug + PartialEq>(name: &str, case: &str, got: Result<T, Denied>, want: Result<T, Denied>) {
        assert_eq!(got, want, "{name}: {case}");
    }

    #[test]
    fn get_request_table() {
        let w = world();
        // A request of M, before and after it was referred to P.
        let submitted = RequestFacts { member_id: w.m, provider_code: None, referent: Some(w.referent) };
        let referred = RequestFacts { provider_code: Some(P), ..submitted };
        // A request of a member nobody follows.
        let unfollowed = RequestFacts { referent: None, ..referred };
        let table: [(&str, [Result<(), Denied>; 3]); 11] = [
            ("member_admin of M", [Ok(()), Ok(()), Ok(())]),
            ("member_user of M", [Ok(()), Ok(()), Ok(())]),
            ("member_user of another member", [Err(N), Err(N), Err(N)]),
            ("member_user without member", [Err(N), Err(N), Err(N)]),
            ("provider_agent of P", [Err(N), Ok(()), Ok(())]),
            ("provider_agent of Q", [Err(N), Err(N), Err(N)]),
            ("provider_agent without provider", [Err(N), Err(N), Err(N)]),
            ("referent of M", [Ok(()), Ok(()), Err(N)]),
            ("another referent", [Err(N), Err(N), Err(N)]),
            ("coordinator", [Ok(()), Ok(()), Ok(())]),
            ("operator", [Err(F), Err(F), Err(F)]),
        ];
        let callers = callers(&w);
        assert_eq!(callers.len(), table.len());
        for ((name, caller), (row, expected)) in callers.iter().zip(table) {
            assert_eq!(*name, row);
            for (case, (request, want)) in ["submitted", "referred to P", "of an unfollowed member"]
                .iter()
                .zip([submitted, referred, unfollowed].iter().zip(expected))
            {
                check(name, case, read_request(caller, request), want);
            }
            let gate = may_read(caller);
            assert_eq!(gate.is_err(), expected.iter().all(|e| *e == Err(F)), "{name}: role gate");
        }
    }

    #[test]
    fn list_requests_table() {
        let w = world();
        let (m, other, r) = (w.m, w.other_member, w.referent);
        // (requested member, its referent)
        let cases = [(None, None), (Some(m), Some(w.referent)), (Some(other), None)];
        let (mine, all, theirs) = (Scope::Member(m), Scope::All, Scope::Member(other));
        let p = || Scope::Provider(P.to_owned());
        let q = || Scope::Provider(Q.to_owned());
        let table: [(&str, [Result<Scope, Denied>; 3]); 11] = [
            ("member_admin of M", [Ok(mine.clone()), Ok(mine.clone()), Err(N)]),
            ("member_user of M", [Ok(mine.clone()), Ok(mine.clone()), Err(N)]),
            ("member_user of another member", [Ok(theirs.clone()), Err(N), Ok(theirs.clone())]),
            ("member_user without member", [Err(N), Err(N), Err(N)]),
            ("provider_agent of P", [Ok(p()), Err(N), Err(N)]),
            ("provider_agent of Q", [Ok(q()), Err(N), Err(N)]),
            ("provider_agent without provider", [Err(N), Err(N), Err(N)]),
            ("referent of M", [Ok(Scope::FollowedBy(r)), Ok(mine.clone()), Err(N)]),
            ("another referent", [Ok(Scope::FollowedBy(Uuid::from_u128(7))), Err(N), Err(N)]),
            ("coordinator", [Ok(all), Ok(mine), Ok(theirs)]),
            ("operator", [Err(F), Err(F), Err(F)]),
        ];
        for ((name, caller), (row, expected)) in callers(&w).iter().zip(table) {
            assert_eq!(*name, row);
            for ((requested, referent), want) in cases.iter().zip(expected.clone()) {
                check(name, &format!("list {requested:?}"), list_scope(caller, *requested, *referent), want);
            }
            assert_eq!(may_list(caller).is_err(), expected.iter().all(|e| *e == Err(F)), "{name}: role gate");
        }
    }

    #[test]
    fn cancel_feedback_and_coordination_tables() {
        let w = world();
        let request = RequestFacts { member_id: w.m, provider_code: Some(P), referent: Some(w.referent) };
        // (cancel, feedback, close/statistics)
        let table: [(&str, [Result<(), Denied>; 3]); 11] = [
            ("member_admin of M", [Ok(()), Ok(()), Err(F)]),
            ("member_user of M", [Ok(()), Ok(()), Err(F)]),
            ("member_user of another member", [Err(N), Err(N), Err(F)]),
            ("member_user without member", [Err(N), Err(N), Err(F)]),
            ("provider_agent of P", [Err(F), Err(F), Err(F)]),
            ("provider_agent of Q", [Err(F), Err(F), Err(F)]),
            ("provider_agent without provider", [Err(F), Err(F), Err(F)]),
            ("referent of M", [Err(F), Err(F), Err(F)]),
            ("another referent", [Err(F), Err(F), Err(F)]),
            ("coordinator", [Ok(()), Err(F), Ok(())]),
            ("operator", [Err(F), Err(F), Err(F)]),
        ];
        for ((name, caller), (row, [cancel, feedback, coordinate_])) in callers(&w).iter().zip(table) {
            assert_eq!(*name, row);
            check(name, "cancel", cancel_request(caller, &request), cancel);
            check(name, "feedback", give_feedback(caller, &request), feedback);
            check(name, "close", coordinate(caller), coordinate_);
        }
    }

    #[test]
    fn submit_request_table() {
        let w = world();
        let m = w.m;
        let other = w.other_member;
        let table: [(&str, [Result<Uuid, Denied>; 3]); 11] = [
            ("member_admin of M", [Ok(m), Ok(m), Err(N)]),
            ("member_user of M", [Ok(m), Ok(m), Err(N)]),
            ("member_user of another member", [Ok(other), Err(N), Ok(other)]),
            ("member_user without member", [Err(F), Err(F), Err(F)]),
            ("provider_agent of P", [Err(F), Err(F), Err(F)]),
            ("provider_agent of Q", [Err(F), Err(F), Err(F)]),
            ("provider_agent without provider", [Err(F), Err(F), Err(F)]),
            ("referent of M", [Err(F), Err(F), Err(F)]),
            ("another referent", [Err(F), Err(F), Err(F)]),
            ("coordinator", [Err(F), Err(F), Err(F)]),
            ("operator", [Err(F), Err(F), Err(F)]),
        ];
        for ((name, caller), (row, expected)) in callers(&w).iter().zip(table) {
            assert_eq!(*name, row);
            for (requested, want) in [None, Some(m), Some(other)].into_iter().zip(expected) {
                check(name, &format!("submit for {requested:?}"), submission_member(caller, requested), want);
            }
        }
    }

    #[test]
    fn denials_map_to_the_documented_codes() {
        use id77_platform::ErrorCode;
        assert_eq!(Denied::Forbidden.into_error("request", "x").code, ErrorCode::PermissionDenied);
        let not_found = Denied::NotFound.into_error("request", "x");
        assert_eq!((not_found.code, not_found.message.as_str()), (ErrorCode::NotFound, "request x not found"));
        assert_eq!(Denied::MissingMemberId.into_error("member", "").code, ErrorCode::InvalidArgument);
    }

    #[test]
    fn several_roles_get_the_union_of_their_rights_on_reads() {
        let w = world();
        let mut both = caller(Role::Referent, None, None, w.referent);
        both.roles.push(Role::ProviderAgent);
        both.provider_code = Some(P.to_owned());
        let of_other = RequestFacts { member_id: w.other_member, provider_code: Some(P), referent: None };
        assert_eq!(read_request(&both, &of_other), Ok(()), "as P's agent");
        let followed = RequestFacts { member_id: w.m, provider_code: Some(Q), referent: Some(w.referent) };
        assert_eq!(read_request(&both, &followed), Ok(()), "as M's referent");
    }
}
