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

/// Scheduling and cancelling sessions, recording attendance, the attendance sheet: the coordinator or an agent
/// of the session's provider (another provider's agent: "not found").
pub fn manage_session(caller: Option<&Caller>, provider_code: &str) -> Result<(), Denied> {
    confirm(caller, provider_code)
}

/// Registering participants: a member's users for their member, the coordinator for the member it names.
pub fn register_for(caller: Option<&Caller>, asked_member: Option<Uuid>) -> Result<Uuid, Denied> {
    hold_for(caller, asked_member)
}

/// A registration (cancelling it, its attestation): its member's users, the session's provider, the coordinator.
pub fn registration(caller: Option<&Caller>, provider_code: &str, member_id: Uuid) -> Result<(), Denied> {
    release(caller, provider_code, member_id)
}

/// Who sees a session's online link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkView {
    Shown,
    /// Only if this member has an active registration.
    IfRegistered(Uuid),
    Hidden,
}

/// The online link: the provider's agents, the coordinator and the operator; a member's users when their member
/// is registered; nobody else.
pub fn online_link(caller: Option<&Caller>, provider_code: &str) -> LinkView {
    match caller {
        Some(c) if c.has_any(&[Role::Coordinator, Role::Operator]) || c.is_agent_of(provider_code) => LinkView::Shown,
        Some(c) if c.has_any(&[Role::MemberAdmin, Role::MemberUser]) => {
            c.member_id.map_or(LinkView::Hidden, LinkView::IfRegistered)
        }
        _ => LinkView::Hidden,
    }
}

/// Which sessions a listing shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionsScope {
    /// Upcoming scheduled sessions only.
    Public,
    /// Any status, this provider's sessions.
    Provider(String),
    /// Any status, every session.
    All,
}

/// The coordinator and the operator see every session; a provider's agent its own (on another provider's
/// offer: what anyone sees); anyone else the upcoming scheduled ones.
pub fn list_sessions(caller: Option<&Caller>, offer_provider: Option<&str>) -> SessionsScope {
    let Some(c) = caller else { return SessionsScope::Public };
    if c.has_any(&[Role::Coordinator, Role::Operator]) {
        return SessionsScope::All;
    }
    match (c.has(Role::ProviderAgent), c.provider_code.as_deref(), offer_provider) {
        (true, Some(own), None) => SessionsScope::Provider(own.to_owned()),
        (true, Some(own), Some(p)) if own == p => SessionsScope::Provider(own.to_owned()),
        _ => SessionsScope::Public,
    }
}

/// Whose registrations a listing shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationsScope {
    /// A member's users: their member's registrations (of the session, if one is named).
    Member(Uuid),
    /// The session's provider or the coordinator: every registration of the named session.
    Session,
    /// The provider and the coordinator must name a session.
    NeedsSession,
}

/// Listing registrations; `session_provider`: the provider of the named session, if any.
pub fn list_registrations(
    caller: Option<&Caller>,
    session_provider: Option<&str>,
) -> Result<RegistrationsScope, Denied> {
    let caller = caller.ok_or(Denied::Forbidden)?;
    if caller.has_any(&[Role::MemberAdmin, Role::MemberUser])
        && let Some(own) = caller.member_id
    {
        return Ok(RegistrationsScope::Member(own));
    }
    if !caller.has_any(&[Role::Coordinator, Role::ProviderAgent]) {
        return Err(Denied::Forbidden);
    }
    match session_provider {
        None => Ok(RegistrationsScope::NeedsSession),
        Some(p) => confirm(Some(caller), p).map(|()| RegistrationsScope::Session),
    }
}

/// Rating a session: a member's users, for their member.
pub fn rate(caller: Option<&Caller>) -> Result<Uuid, Denied> {
    caller
        .filter(|c| c.has_any(&[Role::MemberAdmin, Role::MemberUser]))
        .and_then(|c| c.member_id)
        .ok_or(Denied::Forbidden)
}

/// Fill and attendance statistics: the coordinator and the operator.
pub fn session_statistics(caller: Option<&Caller>) -> Result<(), Denied> {
    match caller {
        Some(c) if c.has_any(&[Role::Coordinator, Role::Operator]) => Ok(()),
        _ => Err(Denied::Forbidden),
    }
}

/// A calendar feed: any signed-in user, for themself.
pub fn calendar_feed(caller: Option<&Caller>) -> Result<&Caller, Denied> {
    caller.ok_or(Denied::Forbidden)
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

    #[test]
    fn sessions_are_managed_by_their_provider_and_the_coordinator() {
        let agent = caller(Role::ProviderAgent, None, Some("caue77"));
        let other = caller(Role::ProviderAgent, None, Some("dir-eau"));
        assert_eq!(manage_session(Some(&agent), "caue77"), Ok(()));
        assert_eq!(manage_session(Some(&other), "caue77"), Err(Denied::NotFound));
        assert_eq!(manage_session(Some(&caller(Role::Coordinator, None, None)), "caue77"), Ok(()));
        assert_eq!(
            manage_session(Some(&caller(Role::MemberAdmin, Some(Uuid::nil()), None)), "caue77"),
            Err(Denied::Forbidden)
        );
        assert_eq!(manage_session(None, "caue77"), Err(Denied::Forbidden));
    }

    #[test]
    fn members_register_and_cancel_only_their_own() {
        let m = Uuid::now_v7();
        let user = caller(Role::MemberUser, Some(m), None);
        assert_eq!(register_for(Some(&user), None), Ok(m));
        assert_eq!(register_for(Some(&user), Some(Uuid::now_v7())), Err(Denied::NotFound));
        assert_eq!(registration(Some(&user), "caue77", m), Ok(()));
        assert_eq!(registration(Some(&user), "caue77", Uuid::now_v7()), Err(Denied::NotFound));
        assert_eq!(registration(Some(&caller(Role::ProviderAgent, None, Some("caue77"))), "caue77", m), Ok(()));
        assert_eq!(
            registration(Some(&caller(Role::ProviderAgent, None, Some("x"))), "caue77", m),
            Err(Denied::NotFound)
        );
    }

    #[test]
    fn the_online_link_is_for_the_provider_the_coordinator_and_registered_members() {
        let m = Uuid::now_v7();
        assert_eq!(online_link(Some(&caller(Role::ProviderAgent, None, Some("caue77"))), "caue77"), LinkView::Shown);
        assert_eq!(online_link(Some(&caller(Role::ProviderAgent, None, Some("x"))), "caue77"), LinkView::Hidden);
        assert_eq!(online_link(Some(&caller(Role::Operator, None, None)), "caue77"), LinkView::Shown);
        assert_eq!(online_link(Some(&caller(Role::MemberUser, Some(m), None)), "caue77"), LinkView::IfRegistered(m));
        assert_eq!(online_link(Some(&caller(Role::Referent, None, None)), "caue77"), LinkView::Hidden);
        assert_eq!(online_link(None, "caue77"), LinkView::Hidden);
    }

    #[test]
    fn listings_are_scoped_by_role() {
        let agent = caller(Role::ProviderAgent, None, Some("caue77"));
        assert_eq!(list_sessions(None, None), SessionsScope::Public);
        assert_eq!(list_sessions(Some(&agent), None), SessionsScope::Provider("caue77".into()));
        assert_eq!(list_sessions(Some(&agent), Some("dir-eau")), SessionsScope::Public);
        assert_eq!(list_sessions(Some(&caller(Role::Coordinator, None, None)), Some("x")), SessionsScope::All);
        let m = Uuid::now_v7();
        let user = caller(Role::MemberAdmin, Some(m), None);
        assert_eq!(list_registrations(Some(&user), Some("caue77")), Ok(RegistrationsScope::Member(m)));
        assert_eq!(list_registrations(Some(&agent), Some("caue77")), Ok(RegistrationsScope::Session));
        assert_eq!(list_registrations(Some(&agent), Some("dir-eau")), Err(Denied::NotFound));
        assert_eq!(list_registrations(Some(&agent), None), Ok(RegistrationsScope::NeedsSession));
        assert_eq!(list_registrations(Some(&caller(Role::Operator, None, None)), None), Err(Denied::Forbidden));
        assert_eq!(rate(Some(&user)), Ok(m));
        assert_eq!(rate(Some(&agent)), Err(Denied::Forbidden));
        assert_eq!(session_statistics(Some(&caller(Role::Coordinator, None, None))), Ok(()));
        assert_eq!(session_statistics(Some(&user)), Err(Denied::Forbidden));
        assert!(calendar_feed(None).is_err() && calendar_feed(Some(&user)).is_ok());
    }
}
