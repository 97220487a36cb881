//! Who may do what in the catalogue (docs/authorization.md), as pure decisions on the verified caller.

use id77_platform::auth::{Caller, Denied, Role};
use uuid::Uuid;

/// Creating, editing, publishing and archiving offers and providers; seeing drafts.
pub fn manage_catalogue(caller: Option<&Caller>) -> Result<(), Denied> {
    match caller {
        Some(c) if c.has(Role::Operator) => Ok(()),
        _ => Err(Denied::Forbidden),
    }
}

/// "Eligible for my collectivité": the caller's member.
pub fn eligibility_member(caller: Option<&Caller>) -> Result<Uuid, Denied> {
    caller
        .filter(|c| c.has_any(&[Role::MemberAdmin, Role::MemberUser]))
        .and_then(|c| c.member_id)
        .ok_or(Denied::Forbidden)
}

/// Holding a copy: a member's users for their member (a `member_id` naming another member is "not found"),
/// the coordinator for the member it names.
pub fn hold_for(caller: Option<&Caller>, asked_member: Option<Uuid>) -> Result<Uuid, Denied> {
    let caller = caller.ok_or(Denied::Forbidden)?;
    if caller.has(Role::Coordinator) {
        return asked_member.ok_or(Denied::MissingMemberId);
    }
    if caller.has_any(&[Role::MemberAdmin, Role::MemberUser])
        && let Some(own) = caller.member_id
    {
        return match asked_member {
            None => Ok(own),
            Some(m) if m == own => Ok(own),
            Some(_) => Err(Denied::NotFound),
        };
    }
    Err(Denied::Forbidden)
}

/// Confirming a hold: the coordinator, or an agent of the exhibition's provider.
pub fn confirm(caller: Option<&Caller>, provider_code: &str) -> Result<(), Denied> {
    let caller = caller.ok_or(Denied::Forbidden)?;
    if caller.has(Role::Coordinator) || caller.is_agent_of(provider_code) {
        Ok(())
    } else if caller.has(Role::ProviderAgent) {
        Err(Denied::NotFound)
    } else {
        Err(Denied::Forbidden)
    }
}

/// Releasing a hold or loan: the member's users, the coordinator, an agent of the exhibition's provider.
pub fn release(caller: Option<&Caller>, provider_code: &str, member_id: Uuid) -> Result<(), Denied> {
    let caller = caller.ok_or(Denied::Forbidden)?;
    if caller.has(Role::Coordinator) || caller.is_agent_of(provider_code) || caller.belongs_to_member(member_id) {
        Ok(())
    } else if caller.has_any(&[Role::ProviderAgent, Role::MemberAdmin, Role::MemberUser]) {
        Err(Denied::NotFound)
    } else {
        Err(Denied::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role, member: Option<Uuid>, provider: Option<&str>) -> Caller {
        Caller {
            user_id: Uuid::nil(),
            roles: vec![role],
            member_id: member,
            provider_code: provider.map(str::to_owned),
            email: String::new(),
            session: String::new(),
            name: String::new(),
        }
    }

    #[test]
    fn only_the_operator_manages_the_catalogue() {
        assert_eq!(manage_catalogue(Some(&caller(Role::Operator, None, None))), Ok(()));
        for role in [Role::Coordinator, Role::MemberAdmin, Role::ProviderAgent, Role::Referent] {
            assert_eq!(manage_catalogue(Some(&caller(role, Some(Uuid::nil()), Some("x")))), Err(Denied::Forbidden));
        }
        assert_eq!(manage_catalogue(None), Err(Denied::Forbidden));
    }

    #[test]
    fn holds_are_for_the_callers_member_or_the_one_the_coordinator_names() {
        let m = Uuid::now_v7();
        let other = Uuid::now_v7();
        let user = caller(Role::MemberUser, Some(m), None);
        assert_eq!(hold_for(Some(&user), None), Ok(m));
        assert_eq!(hold_for(Some(&user), Some(m)), Ok(m));
        assert_eq!(hold_for(Some(&user), Some(other)), Err(Denied::NotFound));
        let coordinator = caller(Role::Coordinator, None, None);
        assert_eq!(hold_for(Some(&coordinator), Some(other)), Ok(other));
        assert_eq!(hold_for(Some(&coordinator), None), Err(Denied::MissingMemberId));
        assert_eq!(hold_for(Some(&caller(Role::ProviderAgent, None, Some("x"))), None), Err(Denied::Forbidden));
        assert_eq!(hold_for(None, None), Err(Denied::Forbidden));
    }

    #[test]
    fn confirm_and_release_follow_the_exhibitions_provider_and_member() {
        let m = Uuid::now_v7();
        let agent = caller(Role::ProviderAgent, None, Some("dir-culture"));
        let stranger = caller(Role::ProviderAgent, None, Some("caue77"));
        assert_eq!(confirm(Some(&agent), "dir-culture"), Ok(()));
        assert_eq!(confirm(Some(&stranger), "dir-culture"), Err(Denied::NotFound));
        assert_eq!(confirm(Some(&caller(Role::MemberUser, Some(m), None)), "dir-culture"), Err(Denied::Forbidden));
        assert_eq!(release(Some(&caller(Role::MemberUser, Some(m), None)), "dir-culture", m), Ok(()));
        assert_eq!(
            release(Some(&caller(Role::MemberUser, Some(Uuid::now_v7()), None)), "dir-culture", m),
            Err(Denied::NotFound)
        );
        assert_eq!(release(Some(&caller(Role::Operator, None, None)), "dir-culture", m), Err(Denied::Forbidden));
    }
}
