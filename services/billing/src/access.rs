//! Who may see quotes (docs/authorization.md), free of I/O: a member's users see their member's quotes, a
//! provider's agents the quotes their provider issued, a referent those of the members it follows, the
//! coordinator all of them; the operator none. Only a member admin accepts or refuses its member's quotes
//! (ADR 0013); only the coordinator issues credit notes; the coordinator or the issuing provider's agents mark
//! invoices sent or paid. The gateway checks the same table; this is the second line of
//! defence, deciding on the rows billing owns.

use id77_platform::auth::{Caller, Role};
use uuid::Uuid;

use crate::error::BillingError;

/// Roles that may read quotes at all (each then only its own).
pub const READERS: [Role; 5] =
    [Role::MemberAdmin, Role::MemberUser, Role::ProviderAgent, Role::Referent, Role::Coordinator];

pub use id77_platform::auth::Denied;

/// What billing knows about one quote when deciding who sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteFacts<'a> {
    pub member_id: Uuid,
    pub issuer_code: &'a str,
    /// The referent following the quote's member (read model fed by `member.updated`).
    pub referent: Option<Uuid>,
}

/// The filters a caller's list is confined to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteScope<'a> {
    pub member_id: Option<Uuid>,
    pub issuer_code: Option<&'a str>,
}

/// Role gate of GetQuote and ListQuotes, checked before any data is read.
pub fn may_read(caller: &Caller) -> Result<(), Denied> {
    if caller.has_any(&READERS) { Ok(()) } else { Err(Denied::Forbidden) }
}

/// The member of a member's user (a member role and a member in the token).
fn own_member(caller: &Caller) -> Option<Uuid> {
    caller.member_id.filter(|_| caller.has_any(&[Role::MemberAdmin, Role::MemberUser]))
}

/// GetQuote on one quote.
pub fn read_quote(caller: &Caller, quote: &QuoteFacts<'_>) -> Result<(), Denied> {
    may_read(caller)?;
    let allowed = caller.has(Role::Coordinator)
        || caller.belongs_to_member(quote.member_id)
        || caller.is_agent_of(quote.issuer_code)
        || (caller.has(Role::Referent) && quote.referent == Some(caller.user_id));
    if allowed { Ok(()) } else { Err(Denied::NotFound) }
}

/// ListQuotes: the filters to apply. `requested` is the request's member_id (`None` when empty) and
/// `referent_of_requested` that member's referent. Member users are forced to their own member (empty: filled
/// in; another: not found); agents to the quotes their provider issued (a member_id then narrows further); a
/// referent must name a member it follows; the coordinator lists anything.
pub fn list_scope<'a>(
    caller: &'a Caller,
    requested: Option<Uuid>,
    referent_of_requested: Option<Uuid>,
) -> Result<QuoteScope<'a>, Denied> {
    may_read(caller)?;
    if caller.has(Role::Coordinator) {
        return Ok(QuoteScope { member_id: requested, issuer_code: None });
    }
    if let Some(own) = own_member(caller)
        && requested.is_none_or(|m| m == own)
    {
        return Ok(QuoteScope { member_id: Some(own), issuer_code: None });
    }
    if caller.has(Role::ProviderAgent)
        && let Some(provider) = caller.provider_code.as_deref()
    {
        return Ok(QuoteScope { member_id: requested, issuer_code: Some(provider) });
    }
    if caller.has(Role::Referent) {
        let member = requested.ok_or(Denied::MissingMemberId)?;
        if referent_of_requested == Some(caller.user_id) {
            return Ok(QuoteScope { member_id: Some(member), issuer_code: None });
        }
    }
    Err(Denied::NotFound)
}

/// AcceptQuote and RefuseQuote, checked before any data is read: only a member admin decides, for its own
/// member. Everyone else is forbidden, even those who read the quote (a member user, the member's referent, the
/// issuing provider's agents, the coordinator). Returns the admin's member.
pub fn may_decide(caller: &Caller) -> Result<Uuid, Denied> {
    match caller.member_id {
        Some(member) if caller.has(Role::MemberAdmin) => Ok(member),
        _ => Err(Denied::Forbidden),
    }
}

/// AcceptQuote and RefuseQuote on one quote of `quote_member`: another member's quote is not found, as when
/// reading it.
pub fn decide_quote(caller: &Caller, quote_member: Uuid) -> Result<(), Denied> {
    if may_decide(caller)? == quote_member { Ok(()) } else { Err(Denied::NotFound) }
}

/// IssueCreditNote, checked before any data is read: the coordinator only.
pub fn may_credit(caller: &Caller) -> Result<(), BillingError> {
    if caller.has(Role::Coordinator) { Ok(()) } else { Err(BillingError::CoordinatorOnly) }
}

/// MarkInvoice, checked before any data is read: the coordinator or a provider's agent.
pub fn may_mark(caller: &Caller) -> Result<(), BillingError> {
    if caller.has_any(&[Role::Coordinator, Role::ProviderAgent]) {
        Ok(())
    } else {
        Err(BillingError::CoordinatorOrIssuerOnly)
    }
}

/// MarkInvoice on one invoice issued by `issuer_code`: another provider's invoice is not found to an agent.
pub fn mark_invoice(caller: &Caller, issuer_code: &str) -> Result<(), Denied> {
    if caller.has(Role::Coordinator) || caller.is_agent_of(issuer_code) { Ok(()) } else { Err(Denied::NotFound) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Denied::{Forbidden as F, MissingMemberId as Missing, NotFound as N};

    const P: &str = "caue77";
    const Q: &str = "dir-routes";
    const M: Uuid = Uuid::from_u128(1);
    const OTHER: Uuid = Uuid::from_u128(2);
    const REFERENT: Uuid = Uuid::from_u128(100);

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

    fn callers() -> Vec<(&'static str, Caller)> {
        let someone = Uuid::from_u128(7);
        vec![
            ("member_admin of M", caller(Role::MemberAdmin, Some(M), None, someone)),
            ("member_user of M", caller(Role::MemberUser, Some(M), None, someone)),
            ("member_user of another member", caller(Role::MemberUser, Some(OTHER), None, someone)),
            ("provider_agent of P", caller(Role::ProviderAgent, None, Some(P), someone)),
            ("provider_agent of Q", caller(Role::ProviderAgent, None, Some(Q), someone)),
            ("provider_agent without provider", caller(Role::ProviderAgent, None, None, someone)),
            ("referent of M", caller(Role::Referent, None, None, REFERENT)),
            ("another referent", caller(Role::Referent, None, None, someone)),
            ("coordinator", caller(Role::Coordinator, None, None, someone)),
            ("operator", caller(Role::Operator, None, None, someone)),
        ]
    }

    #[test]
    fn get_quote_table() {
        // A quote of M issued by P (M followed by REFERENT), and one of an unfollowed member issued by Q.
        let of_m = QuoteFacts { member_id: M, issuer_code: P, referent: Some(REFERENT) };
        let of_other = QuoteFacts { member_id: OTHER, issuer_code: Q, referent: None };
        let table: [(&str, [Result<(), Denied>; 2]); 10] = [
            ("member_admin of M", [Ok(()), Err(N)]),
            ("member_user of M", [Ok(()), Err(N)]),
            ("member_user of another member", [Err(N), Ok(())]),
            ("provider_agent of P", [Ok(()), Err(N)]),
            ("provider_agent of Q", [Err(N), Ok(())]),
            ("provider_agent without provider", [Err(N), Err(N)]),
            ("referent of M", [Ok(()), Err(N)]),
            ("another referent", [Err(N), Err(N)]),
            ("coordinator", [Ok(()), Ok(())]),
            ("operator", [Err(F), Err(F)]),
        ];
        for ((name, caller), (row, expected)) in callers().iter().zip(table) {
            assert_eq!(*name, row);
            for (quote, want) in [of_m, of_other].iter().zip(expected) {
                assert_eq!(read_quote(caller, quote), want, "{name}: {quote:?}");
            }
            assert_eq!(may_read(caller).is_err(), expected.iter().all(|e| *e == Err(F)), "{name}: role gate");
        }
    }

    #[test]
    fn list_quotes_table() {
        let scope = |member_id, issuer_code| Ok(QuoteScope { member_id, issuer_code });
        // (requested member, its referent): none, M, another member.
        let cases = [(None, None), (Some(M), Some(REFERENT)), (Some(OTHER), None)];
        let table: [(&str, [Result<QuoteScope<'static>, Denied>; 3]); 10] = [
            ("member_admin of M", [scope(Some(M), None), scope(Some(M), None), Err(N)]),
            ("member_user of M", [scope(Some(M), None), scope(Some(M), None), Err(N)]),
            ("member_user of another member", [scope(Some(OTHER), None), Err(N), scope(Some(OTHER), None)]),
            ("provider_agent of P", [scope(None, Some(P)), scope(Some(M), Some(P)), scope(Some(OTHER), Some(P))]),
            ("provider_agent of Q", [scope(None, Some(Q)), scope(Some(M), Some(Q)), scope(Some(OTHER), Some(Q))]),
            ("provider_agent without provider", [Err(N), Err(N), Err(N)]),
            ("referent of M", [Err(Missing), scope(Some(M), None), Err(N)]),
            ("another referent", [Err(Missing), Err(N), Err(N)]),
            ("coordinator", [scope(None, None), scope(Some(M), None), scope(Some(OTHER), None)]),
            ("operator", [Err(F), Err(F), Err(F)]),
        ];
        for ((name, caller), (row, expected)) in callers().iter().zip(table) {
            assert_eq!(*name, row);
            for ((requested, referent), want) in cases.iter().zip(expected) {
                assert_eq!(list_scope(caller, *requested, *referent), want, "{name}: list of {requested:?}");
            }
        }
    }

    #[test]
    fn only_the_quote_members_admin_decides() {
        let table: [(&str, [Result<(), Denied>; 2]); 10] = [
            ("member_admin of M", [Ok(()), Err(N)]),
            ("member_user of M", [Err(F), Err(F)]),
            ("member_user of another member", [Err(F), Err(F)]),
            ("provider_agent of P", [Err(F), Err(F)]),
            ("provider_agent of Q", [Err(F), Err(F)]),
            ("provider_agent without provider", [Err(F), Err(F)]),
            ("referent of M", [Err(F), Err(F)]),
            ("another referent", [Err(F), Err(F)]),
            ("coordinator", [Err(F), Err(F)]),
            ("operator", [Err(F), Err(F)]),
        ];
        for ((name, caller), (row, expected)) in callers().iter().zip(table) {
            assert_eq!(*name, row);
            for (member, want) in [M, OTHER].into_iter().zip(expected) {
                assert_eq!(decide_quote(caller, member), want, "{name}: quote of {member}");
            }
            assert_eq!(may_decide(caller).is_ok(), expected[0].is_ok(), "{name}: role gate");
        }
        // An admin without a member in its token decides nothing.
        let adrift = caller(Role::MemberAdmin, None, None, Uuid::from_u128(7));
        assert_eq!(decide_quote(&adrift, M), Err(F));
    }

    /// A caller's row: whether it issues credit notes, whether it marks invoices, and on invoices of P and Q.
    type MarkRow = (&'static str, bool, bool, [Result<(), Denied>; 2]);

    #[test]
    fn the_coordinator_credits_and_the_coordinator_or_the_issuer_marks() {
        let issuer_table: [MarkRow; 10] = [
            ("member_admin of M", false, false, [Err(N), Err(N)]),
            ("member_user of M", false, false, [Err(N), Err(N)]),
            ("member_user of another member", false, false, [Err(N), Err(N)]),
            ("provider_agent of P", false, true, [Ok(()), Err(N)]),
            ("provider_agent of Q", false, true, [Err(N), Ok(())]),
            ("provider_agent without provider", false, true, [Err(N), Err(N)]),
            ("referent of M", false, false, [Err(N), Err(N)]),
            ("another referent", false, false, [Err(N), Err(N)]),
            ("coordinator", true, true, [Ok(()), Ok(())]),
            ("operator", false, false, [Err(N), Err(N)]),
        ];
        for ((name, caller), (row, credits, marks, on_invoice)) in callers().iter().zip(issuer_table) {
            assert_eq!(*name, row);
            assert_eq!(may_credit(caller), if credits { Ok(()) } else { Err(BillingError::CoordinatorOnly) }, "{name}");
            let gate = if marks { Ok(()) } else { Err(BillingError::CoordinatorOrIssuerOnly) };
            assert_eq!(may_mark(caller), gate, "{name}");
            for (issuer, want) in [P, Q].into_iter().zip(on_invoice) {
                assert_eq!(mark_invoice(caller, issuer), want, "{name}: invoice of {issuer}");
            }
        }
    }

    #[test]
    fn denials_map_to_the_documented_codes() {
        use id77_platform::ErrorCode;
        assert_eq!(Denied::Forbidden.into_error("quote", "x").code, ErrorCode::PermissionDenied);
        assert_eq!(Denied::NotFound.into_error("quote", "x").code, ErrorCode::NotFound);
        assert_eq!(Denied::MissingMemberId.into_error("member", "").code, ErrorCode::InvalidArgument);
    }
}
