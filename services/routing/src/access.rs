//! Who may see referrals (docs/authorization.md), free of I/O: the coordinator sees every referral, a
//! provider's agents only those sent to their provider; everybody else is refused. The gateway checks the same
//! table; this is the second line of defence, deciding on the rows routing owns.

use id77_platform::auth::{Caller, Role};

/// Roles that may read referrals at all.
pub const READERS: [Role; 2] = [Role::Coordinator, Role::ProviderAgent];

pub use id77_platform::auth::Denied;

/// Role gate of GetReferral and ListReferrals, checked before any data is read.
pub fn may_read(caller: &Caller) -> Result<(), Denied> {
    if caller.has_any(&READERS) { Ok(()) } else { Err(Denied::Forbidden) }
}

/// GetReferral on a referral sent to `provider_code`.
pub fn read_referral(caller: &Caller, provider_code: &str) -> Result<(), Denied> {
    may_read(caller)?;
    if caller.has(Role::Coordinator) || caller.is_agent_of(provider_code) { Ok(()) } else { Err(Denied::NotFound) }
}

/// ReplyToReferral / ReportReferralProgress: only the agents of the provider the referral was sent to answer
/// it (the coordinator reassigns or withdraws instead); an agent of another provider does not see it.
pub fn reply(caller: &Caller, provider_code: &str) -> Result<(), Denied> {
    if !caller.has(Role::ProviderAgent) {
        return Err(Denied::Forbidden);
    }
    if caller.is_agent_of(provider_code) { Ok(()) } else { Err(Denied::NotFound) }
}

/// ListReferrals: the provider filter to apply. The coordinator lists any provider's referrals (or all);
/// an agent is forced to its own provider (empty: filled in; another provider's: not found).
pub fn list_provider<'a>(caller: &'a Caller, requested: Option<&'a str>) -> Result<Option<&'a str>, Denied> {
    may_read(caller)?;
    if caller.has(Role::Coordinator) {
        return Ok(requested);
    }
    match (caller.provider_code.as_deref(), requested) {
        (Some(own), None) => Ok(Some(own)),
        (Some(own), Some(asked)) if asked == own => Ok(Some(own)),
        _ => Err(Denied::NotFound),
    }
}

/// Rules, reassignment, withdrawal, SLA settings: the coordinator only.
pub fn manage(caller: &Caller) -> Result<(), Denied> {
    if caller.has(Role::Coordinator) { Ok(()) } else { Err(Denied::Forbidden) }
}

/// GetProviderSla of `provider_code`: the coordinator, and that provider's agents; another provider's agent sees
/// "not found" (as for its referrals), every other role is forbidden.
pub fn read_sla(caller: &Caller, provider_code: &str) -> Result<(), Denied> {
    read_referral(caller, provider_code)
}

/// Role gate of ExplainRouting, checked before any data is read.
pub fn may_explain(caller: &Caller) -> Result<(), Denied> {
    if caller.has_any(&[Role::Coordinator, Role::Referent]) { Ok(()) } else { Err(Denied::Forbidden) }
}

/// ExplainRouting of a request of a member followed by `referent` (if any): the coordinator, and that
/// referent; another referent sees "not found".
pub fn explain(caller: &Caller, referent: Option<uuid::Uuid>) -> Result<(), Denied> {
    may_explain(caller)?;
    if caller.has(Role::Coordinator) || (caller.has(Role::Referent) && referent == Some(caller.user_id)) {
        Ok(())
    } else {
        Err(Denied::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Denied::{Forbidden as F, NotFound as N};
    use uuid::Uuid;

    const P: &str = "caue77";
    const Q: &str = "dir-routes";

    fn caller(role: Role, member_id: Option<Uuid>, provider_code: Option<&str>) -> Caller {
        Caller {
            user_id: Uuid::from_u128(7),
            roles: vec![role],
            member_id,
            provider_code: provider_code.map(str::to_owned),
            email: String::new(),
            session: String::new(),
            name: String::new(),
        }
    }

    fn callers() -> Vec<(&'static str, Caller)> {
        let m = Some(Uuid::from_u128(1));
        vec![
            ("member_admin", caller(Role::MemberAdmin, m, None)),
            ("member_user", caller(Role::MemberUser, m, None)),
            ("provider_agent of P", caller(Role::ProviderAgent, None, Some(P))),
            ("provider_agent of Q", caller(Role::ProviderAgent, None, Some(Q))),
            ("provider_agent without provider", caller(Role::ProviderAgent, None, None)),
            ("referent", caller(Role::Referent, None, None)),
            ("coordinator", caller(Role::Coordinator, None, None)),
            ("operator", caller(Role::Operator, None, None)),
        ]
    }

    #[test]
    fn get_referral_table() {
        // (a referral sent to P, one sent to Q)
        let table: [(&str, [Result<(), Denied>; 2]); 8] = [
            ("member_admin", [Err(F), Err(F)]),
            ("member_user", [Err(F), Err(F)]),
            ("provider_agent of P", [Ok(()), Err(N)]),
            ("provider_agent of Q", [Err(N), Ok(())]),
            ("provider_agent without provider", [Err(N), Err(N)]),
            ("referent", [Err(F), Err(F)]),
            ("coordinator", [Ok(()), Ok(())]),
            ("operator", [Err(F), Err(F)]),
        ];
        for ((name, caller), (row, expected)) in callers().iter().zip(table) {
            assert_eq!(*name, row);
            for (provider, want) in [P, Q].into_iter().zip(expected) {
                assert_eq!(read_referral(caller, provider), want, "{name}: referral of {provider}");
            }
            assert_eq!(may_read(caller).is_err(), expected.iter().all(|e| *e == Err(F)), "{name}: role gate");
        }
    }

    #[test]
    fn list_referrals_table() {
        // Asked: no provider, P, Q.
        type Row = (&'static str, [Result<Option<&'static str>, Denied>; 3]);
        let table: [Row; 8] = [
            ("member_admin", [Err(F), Err(F), Err(F)]),
            ("member_user", [Err(F), Err(F), Err(F)]),
            ("provider_agent of P", [Ok(Some(P)), Ok(Some(P)), Err(N)]),
            ("provider_agent of Q", [Ok(Some(Q)), Err(N), Ok(Some(Q))]),
            ("provider_agent without provider", [Err(N), Err(N), Err(N)]),
            ("referent", [Err(F), Err(F), Err(F)]),
            ("coordinator", [Ok(None), Ok(Some(P)), Ok(Some(Q))]),
            ("operator", [Err(F), Err(F), Err(F)]),
        ];
        for ((name, caller), (row, expected)) in callers().iter().zip(table) {
            assert_eq!(*name, row);
            for (asked, want) in [None, Some(P), Some(Q)].into_iter().zip(expected) {
                assert_eq!(list_provider(caller, asked), want, "{name}: list of {asked:?}");
            }
        }
    }

    #[test]
    fn reply_table() {
        // Replying to a referral sent to P, then to one sent to Q.
        let table: [(&str, [Result<(), Denied>; 2]); 8] = [
            ("member_admin", [Err(F), Err(F)]),
            ("member_user", [Err(F), Err(F)]),
            ("provider_agent of P", [Ok(()), Err(N)]),
            ("provider_agent of Q", [Err(N), Ok(())]),
            ("provider_agent without provider", [Err(N), Err(N)]),
            ("referent", [Err(F), Err(F)]),
            ("coordinator", [Err(F), Err(F)]),
            ("operator", [Err(F), Err(F)]),
        ];
        for ((name, caller), (row, expected)) in callers().iter().zip(table) {
            assert_eq!(*name, row);
            for (provider, want) in [P, Q].into_iter().zip(expected) {
                assert_eq!(reply(caller, provider), want, "{name}: reply to a referral of {provider}");
            }
        }
    }

    #[test]
    fn management_and_explanation_table() {
        let me = Some(Uuid::from_u128(7));
        let other = Some(Uuid::from_u128(8));
        // (manage, explain for a member I follow, explain for another member's)
        type Row = (&'static str, Result<(), Denied>, [Result<(), Denied>; 2]);
        let table: [Row; 8] = [
            ("member_admin", Err(F), [Err(F), Err(F)]),
            ("member_user", Err(F), [Err(F), Err(F)]),
            ("provider_agent of P", Err(F), [Err(F), Err(F)]),
            ("provider_agent of Q", Err(F), [Err(F), Err(F)]),
            ("provider_agent without provider", Err(F), [Err(F), Err(F)]),
            ("referent", Err(F), [Ok(()), Err(N)]),
            ("coordinator", Ok(()), [Ok(()), Ok(())]),
            ("operator", Err(F), [Err(F), Err(F)]),
        ];
        for ((name, caller), (row, manage_want, explain_want)) in callers().iter().zip(table) {
            assert_eq!(*name, row);
            assert_eq!(manage(caller), manage_want, "{name}: manage");
            assert_eq!(explain(caller, me), explain_want[0], "{name}: explain (followed)");
            assert_eq!(explain(caller, other), explain_want[1], "{name}: explain (other)");
        }
    }

    #[test]
    fn provider_sla_table() {
        // Reading P's SLA, then Q's.
        let table: [(&str, [Result<(), Denied>; 2]); 8] = [
            ("member_admin", [Err(F), Err(F)]),
            ("member_user", [Err(F), Err(F)]),
            ("provider_agent of P", [Ok(()), Err(N)]),
            ("provider_agent of Q", [Err(N), Ok(())]),
            ("provider_agent without provider", [Err(N), Err(N)]),
            ("referent", [Err(F), Err(F)]),
            ("coordinator", [Ok(()), Ok(())]),
            ("operator", [Err(F), Err(F)]),
        ];
        for ((name, caller), (row, expected)) in callers().iter().zip(table) {
            assert_eq!(*name, row);
            for (provider, want) in [P, Q].into_iter().zip(expected) {
                assert_eq!(read_sla(caller, provider), want, "{name}: SLA of {provider}");
            }
        }
    }

    #[test]
    fn denials_map_to_the_documented_codes() {
        use id77_platform::ErrorCode;
        assert_eq!(Denied::Forbidden.into_error("referral", "x").code, ErrorCode::PermissionDenied);
        assert_eq!(Denied::NotFound.into_error("referral", "x").code, ErrorCode::NotFound);
    }
}
