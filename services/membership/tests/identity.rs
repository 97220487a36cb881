//! Identity and access control against the real PostgreSQL and NATS: logins, login throttling, sessions,
//! invitations, referents, key rotation, forged tokens and the audit log.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::*;
use id77_platform::auth::{AUDIENCE, Claims, ISSUER, KeyPair, Role as AuthRole};
use id77_platform::testing;
use id77_proto::membership::v1::{
    AcceptInvitationRequest, ApplyForMembershipRequest, ApproveMembershipRequest, AssignReferentRequest,
    GetCollectivityRequest, GetJwksRequest, GetMeRequest, GetMemberRequest, InviteUserRequest, IssueTokenRequest,
    ListAuditEventsRequest, ListMembersRequest, ListUsersRequest, MemberUpdated, RefreshTokenRequest,
    RemoveUserRequest, RevokeTokenRequest, Role, RotateSigningKeyRequest, SearchCollectivitiesRequest, TokenPair,
};
use prost::Message;
use tonic::Code;
use tonic_types::StatusExt;

fn refresh(refresh_token: &str) -> RefreshTokenRequest {
    RefreshTokenRequest { refresh_token: refresh_token.into(), client: "192.0.2.8".into() }
}

fn invite(email: &str, role: Role, member_id: &str, provider_code: &str) -> InviteUserRequest {
    InviteUserRequest {
        email: email.into(),
        display_name: "Invité".into(),
        role: role.into(),
        member_id: member_id.into(),
        provider_code: provider_code.into(),
    }
}

async fn audit_kinds(s: &Service, operator: &str, kind: &str) -> Vec<id77_proto::membership::v1::AuditEvent> {
    let request = ListAuditEventsRequest { kind: kind.into(), page_size: 100, ..Default::default() };
    s.identity.clone().list_audit_events(authed(request, operator)).await.expect("audit").into_inner().events
}

#[tokio::test]
async fn a_login_answers_alike_for_an_unknown_email_a_wrong_password_and_an_inactive_account() {
    let s = fresh("idlogin").await;
    let pair = s.login(COORDINATOR, DEMO_PASSWORD).await.expect("login");
    assert_eq!(pair.token_type, "Bearer");
    assert_eq!(pair.expires_in, 600);
    assert_eq!(pair.refresh_expires_in, 30 * 24 * 3600);
    let claims = s.verify(&pair.access_token).await;
    assert_eq!((claims.iss.as_str(), claims.aud.as_str()), (ISSUER, AUDIENCE));
    assert_eq!(claims.roles, vec![AuthRole::Coordinator]);
    assert_eq!(claims.email, COORDINATOR);
    assert!(!claims.sid.is_empty() && claims.member_id.is_none() && claims.siren.is_none());
    // Emails are case-insensitive.
    assert!(s.login("Coordination@ID77.demo", DEMO_PASSWORD).await.is_ok());
    let agent = common::claims(&s.login(AGENT, DEMO_PASSWORD).await.expect("agent").access_token);
    assert_eq!((agent.roles, agent.provider_code.as_deref()), (vec![AuthRole::ProviderAgent], Some("caue77")));

    // An invited account that has not accepted yet.
    let coordinator = pair.access_token;
    let member = s.approved_member(&coordinator, MEAUX).await;
    let invited = s
        .identity
        .clone()
        .invite_user(authed(invite("dgs@meaux.fr", Role::MemberAdmin, &member.id, ""), &coordinator))
        .await
        .expect("invite")
        .into_inner();
    assert!(!invited.user.as_ref().expect("user").active);

    let wrong = s.login(COORDINATOR, "Pas-le-bon-2026!").await.expect_err("wrong password");
    let unknown = s.login("personne@id77.demo", DEMO_PASSWORD).await.expect_err("unknown");
    let inactive = s.login("dgs@meaux.fr", USER_PASSWORD).await.expect_err("inactive");
    let malformed = s.login("not an email", DEMO_PASSWORD).await.expect_err("malformed");
    for status in [&wrong, &unknown, &inactive, &malformed] {
        assert_eq!((status.code(), status.message()), (Code::Unauthenticated, wrong.message()));
    }
    // ... and in a similar time: an unknown email costs an argon2 verification too.
    let timing = |min: &mut Duration, started: Instant| *min = (*min).min(started.elapsed());
    let (mut unknown_min, mut wrong_min) = (Duration::MAX, Duration::MAX);
    // The fastest of several tries of each: one try can be slowed by a loaded machine, the fastest cannot be
    // sped up, so a real difference (no argon2 for an unknown email) still shows.
    for _ in 0..4 {
        let started = Instant::now();
        let _ = s.login("personne@id77.demo", DEMO_PASSWORD).await;
        timing(&mut unknown_min, started);
        let started = Instant::now();
        let _ = s.login(REFERENT, "Pas-le-bon-2026!").await;
        timing(&mut wrong_min, started);
    }
    assert!(unknown_min * 3 > wrong_min, "unknown {unknown_min:?} vs wrong password {wrong_min:?}");

    let operator = s.token(OPERATOR).await;
    let failed = audit_kinds(&s, &operator, "login.failed").await;
    let details: Vec<_> = failed.iter().map(|e| e.detail.as_str()).collect();
    for detail in ["wrong password", "unknown account", "inactive account"] {
        assert!(details.contains(&detail), "{detail} in {details:?}");
    }
    assert!(failed.iter().all(|e| e.client == "192.0.2.7"), "the gateway's client address is kept");
    let succeeded = audit_kinds(&s, &operator, "login.succeeded").await;
    assert!(succeeded.iter().any(|e| e.subject == COORDINATOR && e.detail == "coordinator"));
    s.cleanup().await;
}

/// A wrong password, for the throttling tests.
const WRONG: &str = "Mauvais-Passe-1";

async fn login_from(s: &Service, client: &str, email: &str, password: &str) -> Result<TokenPair, tonic::Status> {
    let request = IssueTokenRequest { email: email.into(), password: password.into(), client: client.into() };
    s.identity.clone().issue_token(request).await.map(|r| r.into_inner())
}

/// How long a throttled login must wait (its `google.rpc.RetryInfo`), asserting it is one.
fn retry_delay(status: &tonic::Status) -> Duration {
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().starts_with("too many sign-in attempts: retry in "), "{}", status.message());
    let details = status.get_error_details();
    assert_eq!(details.error_info().map(|i| i.reason.as_str()), Some("LOGIN_THROTTLED"));
    details.retry_info().and_then(|r| r.retry_delay).expect("a RetryInfo")
}

/// Simulated time: every throttling timestamp moves `by` into the past.
async fn elapse(pool: &sqlx::PgPool, by: Duration) {
    let millis = i64::try_from(by.as_millis()).expect("millis") + 1;
    for sql in [
        "UPDATE login_throttle_pair SET last_failure_at = last_failure_at - $1 * interval '1 millisecond',
             next_attempt_at = next_attempt_at - $1 * interval '1 millisecond'",
        "UPDATE login_throttle_account SET last_failure_at = last_failure_at - $1 * interval '1 millisecond',
             next_attempt_at = next_attempt_at - $1 * interval '1 millisecond'",
        "UPDATE login_known_client SET last_success_at = last_success_at - $1 * interval '1 millisecond'",
    ] {
        sqlx::query(sql).bind(millis).execute(pool).await.expect("elapse");
    }
}

#[tokio::test]
async fn an_attacker_s_address_is_slowed_progressively_while_the_owner_signs_in_at_once() {
    let s = fresh("idthrottle").await;
    let (attacker, home, travel) = ("198.51.100.66", "203.0.113.10", "2001:db8:77:1::5");
    assert!(login_from(&s, home, REFERENT, DEMO_PASSWORD).await.is_ok(), "the owner signed in from home before");
    let pool = s.pool().await;

    // 20 wrong passwords from one address: five answered at once, then refusals growing 1, 2, 4 … s up to
    // 15 minutes, each waited out (simulated).
    let (mut failures, mut waits) = (0, Vec::new());
    while failures < 20 {
        match login_from(&s, attacker, REFERENT, WRONG).await {
            Err(e) if e.code() == Code::Unauthenticated => failures += 1,
            Err(e) => {
                let delay = retry_delay(&e);
                assert!(failures >= 5, "refused after {failures} failures");
                // Too soon is too soon whatever the password: the refusal comes before it is checked.
                let right = login_from(&s, attacker, REFERENT, DEMO_PASSWORD).await.expect_err("too soon");
                assert_eq!(right.code(), Code::ResourceExhausted, "{right:?}");
                assert!(retry_delay(&right) <= delay);
                // Meanwhile the owner signs in from home, at once.
                assert!(login_from(&s, home, REFERENT, DEMO_PASSWORD).await.is_ok(), "after {failures} failures");
                waits.push(delay.as_secs_f64().ceil() as u64);
                elapse(&pool, delay).await;
            }
            Ok(_) => panic!("a wrong password signed in"),
        }
    }
    assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900, 900]);

    // The owner from an address never seen: at most slowed, never locked out.
    let started = Instant::now();
    loop {
        match login_from(&s, travel, REFERENT, DEMO_PASSWORD).await {
            Ok(_) => break,
            Err(e) => {
                let delay = retry_delay(&e);
                assert!(delay <= Duration::from_secs(30), "{delay:?}");
                assert!(started.elapsed() < Duration::from_secs(40), "the owner is kept out");
                tokio::time::sleep(delay).await;
            }
        }
    }
    // The attacker's address waits out its last delay; then the right password works there too, and the
    // success forgets that address's failures.
    let refused = login_from(&s, attacker, REFERENT, DEMO_PASSWORD).await.expect_err("still too soon");
    elapse(&pool, retry_delay(&refused)).await;
    assert!(login_from(&s, attacker, REFERENT, DEMO_PASSWORD).await.is_ok());
    for _ in 0..5 {
        let err = login_from(&s, attacker, REFERENT, WRONG).await.expect_err("wrong");
        assert_eq!(err.code(), Code::Unauthenticated);
    }

    let operator = s.token(OPERATOR).await;
    let throttled = audit_kinds(&s, &operator, "login.throttled").await;
    assert!(throttled.iter().any(|e| e.subject == REFERENT && e.client == attacker), "{throttled:?}");
    assert!(audit_kinds(&s, &operator, "account.locked").await.is_empty(), "nothing locks any more");
    pool.close().await;
    s.cleanup().await;
}

#[tokio::test]
async fn an_attack_from_many_addresses_spaces_out_new_addresses_but_not_the_owner_s() {
    let s = fresh("idspread").await;
    let home = "203.0.113.10";
    assert!(login_from(&s, home, REFERENT, DEMO_PASSWORD).await.is_ok(), "the owner signed in from home before");
    let pool = s.pool().await;

    // Four addresses, five wrong passwords each: past ten failures on the account, addresses it never signed in
    // from share one attempt a second or so; the owner at home never waits.
    let mut account_waits = 0;
    for n in 1..=4 {
        let attacker = format!("198.51.100.{n}");
        let mut failures = 0;
        while failures < 5 {
            match login_from(&s, &attacker, REFERENT, WRONG).await {
                Err(e) if e.code() == Code::Unauthenticated => failures += 1,
                Err(e) => {
                    let delay = retry_delay(&e);
                    assert!(delay <= Duration::from_secs(30), "{delay:?}");
                    account_waits += 1;
                    assert!(login_from(&s, home, REFERENT, DEMO_PASSWORD).await.is_ok(), "the owner at home");
                    elapse(&pool, delay).await;
                }
                Ok(_) => panic!("a wrong password signed in"),
            }
        }
    }
    assert!(account_waits >= 5, "new addresses were spaced out ({account_waits} waits)");
    assert!(login_from(&s, home, REFERENT, DEMO_PASSWORD).await.is_ok(), "the owner at home, at once");

    // The owner on a new address: a bounded wait at most (real time), then the right password works.
    let travel = "192.0.2.200";
    let started = Instant::now();
    let mut refusals = 0;
    loop {
        match login_from(&s, travel, REFERENT, DEMO_PASSWORD).await {
            Ok(_) => break,
            Err(e) => {
                let delay = retry_delay(&e);
                assert!(delay <= Duration::from_secs(2), "20 failures space new addresses by 2 s: {delay:?}");
                refusals += 1;
                assert!(refusals <= 3 && started.elapsed() < Duration::from_secs(10), "the owner is kept out");
                tokio::time::sleep(delay).await;
            }
        }
    }
    // That address is known now: no wait even though the attack goes on; a new attacker address right after
    // finds the slot taken.
    let newcomer = login_from(&s, "198.51.100.9", REFERENT, WRONG).await.expect_err("spaced out");
    assert!(retry_delay(&newcomer) <= Duration::from_secs(2));
    assert!(login_from(&s, travel, REFERENT, DEMO_PASSWORD).await.is_ok(), "a known address skips the spacing");

    // An unknown email is throttled exactly like an account: throttling tells nothing about who exists.
    for _ in 0..5 {
        let err = login_from(&s, "198.51.100.7", "personne@id77.demo", WRONG).await.expect_err("unknown");
        assert_eq!(err.code(), Code::Unauthenticated);
    }
    retry_delay(&login_from(&s, "198.51.100.7", "personne@id77.demo", WRONG).await.expect_err("throttled"));
    pool.close().await;
    s.cleanup().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_the_reuse_of_a_used_one_revokes_the_family() {
    let s = fresh("idrefresh").await;
    let first = s.login(REFERENT, DEMO_PASSWORD).await.expect("login");
    let other_session = s.login(REFERENT, DEMO_PASSWORD).await.expect("second login");
    let mut identity = s.identity.clone();
    let second = identity.refresh_token(refresh(&first.refresh_token)).await.expect("rotate").into_inner();
    assert_ne!(second.refresh_token, first.refresh_token);
    let (c1, c2) = (s.verify(&first.access_token).await, s.verify(&second.access_token).await);
    assert_eq!(c1.sid, c2.sid, "same family");
    assert_eq!(c1.sub, c2.sub);
    let third = identity.refresh_token(refresh(&second.refresh_token)).await.expect("rotate again").into_inner();
    assert!(s.me(&third.access_token).await.is_ok());

    // The first token again: reuse. The whole family is revoked, the newest token with it.
    let reuse = identity.refresh_token(refresh(&first.refresh_token)).await.expect_err("reuse");
    assert_eq!(reuse.code(), Code::Unauthenticated);
    let err = identity.refresh_token(refresh(&third.refresh_token)).await.expect_err("family revoked");
    assert_eq!(err.code(), Code::Unauthenticated);
    // Another session of the same user is not affected.
    assert!(identity.refresh_token(refresh(&other_session.refresh_token)).await.is_ok());
    // Unknown and malformed tokens.
    assert_eq!(code(identity.refresh_token(refresh("x".repeat(43).as_str())).await), Code::Unauthenticated);
    assert_eq!(code(identity.refresh_token(refresh(&"x".repeat(10_000))).await), Code::Unauthenticated);
    assert_eq!(code(identity.refresh_token(refresh("")).await), Code::InvalidArgument);

    // An expired refresh token.
    let pair = s.login(REFERENT, DEMO_PASSWORD).await.expect("login");
    let pool = s.pool().await;
    sqlx::query("UPDATE refresh_token SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
        .execute(&pool)
        .await
        .expect("expire");
    assert_eq!(code(identity.refresh_token(refresh(&pair.refresh_token)).await), Code::Unauthenticated);
    // Only hashes are stored.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_token WHERE token_hash = $1::text::bytea")
        .bind(&pair.refresh_token)
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(stored, 0);
    pool.close().await;

    let operator = s.token(OPERATOR).await;
    let reuses = audit_kinds(&s, &operator, "token.reuse_detected").await;
    assert_eq!(reuses.len(), 1);
    assert_eq!((reuses[0].subject.as_str(), reuses[0].client.as_str()), (c1.sid.as_str(), "192.0.2.8"));
    s.cleanup().await;
}

#[tokio::test]
async fn logout_revokes_the_family() {
    let s = fresh("idlogout").await;
    let mut identity = s.identity.clone();
    let pair = s.login(AGENT, DEMO_PASSWORD).await.expect("login");
    let rotated = identity.refresh_token(refresh(&pair.refresh_token)).await.expect("rotate").into_inner();
    identity.revoke_token(RevokeTokenRequest { refresh_token: rotated.refresh_token.clone() }).await.expect("logout");
    assert_eq!(code(identity.refresh_token(refresh(&rotated.refresh_token)).await), Code::Unauthenticated);
    // Logging out twice, or with a token that never existed, is not an error.
    assert!(identity.revoke_token(RevokeTokenRequest { refresh_token: rotated.refresh_token }).await.is_ok());
    assert!(identity.revoke_token(RevokeTokenRequest { refresh_token: "inconnu".into() }).await.is_ok());
    s.cleanup().await;
}

#[tokio::test]
async fn invitations_are_single_use_expire_and_enforce_the_password_policy() {
    let s = fresh("idinvite").await;
    let coordinator = s.token(COORDINATOR).await;
    let meaux = s.approved_member(&coordinator, MEAUX).await;
    let mut identity = s.identity.clone();
    let invitation = identity
        .invite_user(authed(invite("Marie.Dupont@Meaux.fr", Role::MemberAdmin, &meaux.id, ""), &coordinator))
        .await
        .expect("invite")
        .into_inner();
    let user = invitation.user.clone().expect("user");
    assert_eq!((user.email.as_str(), user.role(), user.active), ("marie.dupont@meaux.fr", Role::MemberAdmin, false));
    assert_eq!(invitation.invitation_token.len(), 43);
    let expires = invitation.expires_at.expect("expiry").seconds - chrono::Utc::now().timestamp();
    assert!((7 * 86400 - 60..=7 * 86400).contains(&expires), "{expires}");

    let accept = |password: &str| AcceptInvitationRequest {
        invitation_token: invitation.invitation_token.clone(),
        password: password.into(),
    };
    for weak in ["Court-1!", "tout en minuscules", "MARIE.DUPONT-2026!", &"Aa1!".repeat(33)] {
        let err = identity.accept_invitation(accept(weak)).await.expect_err(weak);
        assert_eq!(err.code(), Code::InvalidArgument, "{weak}");
    }
    let pair = identity.accept_invitation(accept(USER_PASSWORD)).await.expect("accept").into_inner();
    let claims = s.verify(&pair.access_token).await;
    assert_eq!(claims.roles, vec![AuthRole::MemberAdmin]);
    assert_eq!(claims.member_id.as_deref(), Some(meaux.id.as_str()));
    assert_eq!(claims.siren.as_deref(), Some(MEAUX));
    assert_eq!(claims.email, "marie.dupont@meaux.fr");
    // Single use.
    assert_eq!(code(identity.accept_invitation(accept("Un-autre-Passe-99")).await), Code::Unauthenticated);
    assert!(s.login("marie.dupont@meaux.fr", USER_PASSWORD).await.is_ok());
    let me = s.me(&pair.access_token).await.expect("me").user.expect("user");
    assert!(me.active);

    // The same email again: 409. A pending member cannot get users yet. Unknown member: 404.
    let again = identity
        .invite_user(authed(invite("marie.dupont@meaux.fr", Role::MemberUser, &meaux.id, ""), &coordinator))
        .await;
    assert_eq!(code(again), Code::AlreadyExists);
    let apply = ApplyForMembershipRequest {
        siren: ACHERES.into(),
        contact_name: "Mairie".into(),
        contact_email: "mairie@acheres.fr".into(),
    };
    let pending = s.client.clone().apply_for_membership(apply).await.expect("apply").into_inner();
    let err = identity
        .invite_user(authed(invite("dgs@acheres.fr", Role::MemberAdmin, &pending.id, ""), &coordinator))
        .await
        .expect_err("pending member");
    assert_eq!(err.code(), Code::FailedPrecondition);
    let unknown = uuid::Uuid::now_v7().to_string();
    let err = identity.invite_user(authed(invite("x@acheres.fr", Role::MemberAdmin, &unknown, ""), &coordinator)).await;
    assert_eq!(code(err), Code::NotFound);
    let err = identity.invite_user(authed(invite("x@acheres.fr", Role::MemberAdmin, &meaux.id, ""), "")).await;
    assert_eq!(code(err), Code::Unauthenticated);

    // An expired invitation.
    let late = identity
        .invite_user(authed(invite("tard@meaux.fr", Role::MemberUser, &meaux.id, ""), &coordinator))
        .await
        .expect("invite")
        .into_inner();
    let pool = s.pool().await;
    sqlx::query("UPDATE invitation SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
        .execute(&pool)
        .await
        .expect("expire");
    pool.close().await;
    let err = identity
        .accept_invitation(AcceptInvitationRequest {
            invitation_token: late.invitation_token,
            password: USER_PASSWORD.into(),
        })
        .await;
    assert_eq!(code(err), Code::Unauthenticated);

    let operator = s.token(OPERATOR).await;
    assert_eq!(audit_kinds(&s, &operator, "user.invited").await.len(), 2);
    let activated = audit_kinds(&s, &operator, "user.activated").await;
    assert_eq!(activated.iter().map(|e| e.subject.as_str()).collect::<Vec<_>>(), vec![user.id.as_str()]);
    s.cleanup().await;
}

#[tokio::test]
async fn accounts_are_managed_only_within_ones_own_scope() {
    let s = fresh("idscope").await;
    let coordinator = s.token(COORDINATOR).await;
    let operator = s.token(OPERATOR).await;
    let a = s.approved_member(&coordinator, MEAUX).await;
    let b = s.approved_member(&coordinator, PROVINS).await;
    let (admin_a_user, admin_a) = s.invite_and_accept(&coordinator, "dgs@meaux.fr", Role::MemberAdmin, &a.id, "").await;
    let (admin_b_user, _) = s.invite_and_accept(&coordinator, "dgs@provins.fr", Role::MemberAdmin, &b.id, "").await;
    let admin_a = admin_a.access_token;
    // The member's admin invites into its own member (member_id filled in from its token).
    let (user_a, user_a_pair) = s.invite_and_accept(&admin_a, "agent@meaux.fr", Role::MemberUser, "", "").await;
    assert_eq!(user_a.member_id, a.id);
    let user_a_token = user_a_pair.access_token.clone();
    let mut identity = s.identity.clone();

    // ... but not into another member (404), nor Département roles (403).
    let other = identity.invite_user(authed(invite("x@provins.fr", Role::MemberUser, &b.id, ""), &admin_a)).await;
    assert_eq!(code(other), Code::NotFound);
    let coord = identity.invite_user(authed(invite("x@meaux.fr", Role::Coordinator, "", ""), &admin_a)).await;
    assert_eq!(code(coord), Code::PermissionDenied);
    let by_user = identity.invite_user(authed(invite("y@meaux.fr", Role::MemberUser, "", ""), &user_a_token)).await;
    assert_eq!(code(by_user), Code::PermissionDenied);
    // The coordinator cannot create Département accounts; the operator cannot create member accounts.
    let err = identity.invite_user(authed(invite("r@id77.demo", Role::Referent, "", ""), &coordinator)).await;
    assert_eq!(code(err), Code::PermissionDenied);
    let err = identity.invite_user(authed(invite("u@meaux.fr", Role::MemberUser, &a.id, ""), &operator)).await;
    assert_eq!(code(err), Code::PermissionDenied);
    let err = identity.invite_user(authed(invite("p@caue77.fr", Role::ProviderAgent, "", ""), &operator)).await;
    assert_eq!(code(err), Code::InvalidArgument, "a provider agent needs its provider");
    let (agent, _) = s.invite_and_accept(&operator, "p@caue77.fr", Role::ProviderAgent, "", "caue77").await;
    assert_eq!(agent.provider_code, "caue77");

    // Lists: the admin sees its member's accounts only; the operator Département and provider accounts.
    let list = |token: &str, member_id: &str| {
        let mut identity = s.identity.clone();
        let request =
            authed(ListUsersRequest { member_id: member_id.into(), page_size: 100, ..Default::default() }, token);
        async move { identity.list_users(request).await.map(|r| r.into_inner().users) }
    };
    let own = list(&admin_a, "").await.expect("own list");
    let mut emails: Vec<_> = own.iter().map(|u| u.email.as_str()).collect();
    emails.sort_unstable();
    assert_eq!(emails, vec!["agent@meaux.fr", "dgs@meaux.fr"]);
    assert_eq!(code(list(&admin_a, &b.id).await), Code::NotFound);
    assert_eq!(code(list(&user_a_token, "").await), Code::PermissionDenied);
    let managed = list(&operator, "").await.expect("operator list");
    assert!(managed.iter().all(|u| u.member_id.is_empty()), "no member accounts");
    assert_eq!(managed.len(), 3 + PROVIDERS.len() + 1, "demo accounts and the invited agent");
    assert_eq!(list(&coordinator, &b.id).await.expect("coordinator").len(), 1);
    // Keyset pages.
    let first = identity
        .list_users(authed(ListUsersRequest { page_size: 2, ..Default::default() }, &coordinator))
        .await
        .expect("page")
        .into_inner();
    assert_eq!(first.users.len(), 2);
    let second = identity
        .list_users(authed(
            ListUsersRequest { page_size: 2, page_token: first.next_page_token, ..Default::default() },
            &coordinator,
        ))
        .await
        .expect("page 2")
        .into_inner();
    assert!(second.users.iter().all(|u| first.users.iter().all(|f| f.id != u.id)));

    // Removal: within one's scope, never oneself.
    let remove = |token: &str, user_id: &str| {
        let mut identity = s.identity.clone();
        let request = authed(RemoveUserRequest { user_id: user_id.into() }, token);
        async move { identity.remove_user(request).await.map(|r| r.into_inner()) }
    };
    assert_eq!(code(remove(&admin_a, &admin_b_user.id).await), Code::NotFound);
    assert_eq!(code(remove(&admin_a, &agent.id).await), Code::NotFound);
    assert_eq!(code(remove(&admin_a, &admin_a_user.id).await), Code::PermissionDenied);
    assert_eq!(code(remove(&operator, &user_a.id).await), Code::NotFound);
    assert_eq!(code(remove(&coordinator, &user_a.id).await), Code::PermissionDenied);
    assert_eq!(code(remove(&user_a_token, &user_a.id).await), Code::PermissionDenied);
    assert_eq!(code(remove(&admin_a, &uuid::Uuid::now_v7().to_string()).await), Code::NotFound);
    remove(&admin_a, &user_a.id).await.expect("remove");
    // The removed user can no longer log in, refresh, or use its access token here.
    let err = s.login("agent@meaux.fr", USER_PASSWORD).await.expect_err("removed");
    assert_eq!((err.code(), err.message()), (Code::Unauthenticated, "invalid email or password"));
    assert_eq!(code(identity.refresh_token(refresh(&user_a_pair.refresh_token)).await), Code::Unauthenticated);
    assert_eq!(code(s.me(&user_a_token).await), Code::Unauthenticated);
    assert_eq!(code(remove(&admin_a, &user_a.id).await), Code::NotFound, "already removed");
    remove(&operator, &agent.id).await.expect("operator removes an agent");
    let removed = audit_kinds(&s, &operator, "user.removed").await;
    assert_eq!(removed.len(), 2);
    // The email is free again.
    s.invite_and_accept(&admin_a, "agent@meaux.fr", Role::MemberUser, "", "").await;
    s.cleanup().await;
}

async fn member_updated(s: &Service, member_id: &str) -> MemberUpdated {
    let stream = s.js.get_stream(s.ns.stream("MEMBERSHIP")).await.expect("stream");
    let subject = s.ns.subject("id77.membership.member.updated");
    for _ in 0..100 {
        if let Ok(message) = stream.get_last_raw_message_by_subject(&subject).await {
            let event = MemberUpdated::decode(message.payload.as_ref()).expect("MemberUpdated");
            if event.member_id == member_id {
                let kind = message.headers.get("Id77-Event-Type").map(|v| v.as_str().to_owned());
                assert_eq!(kind.as_deref(), Some("id77.membership.v1.MemberUpdated"));
                return event;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no MemberUpdated for {member_id}");
}

#[tokio::test]
async fn the_coordinator_assigns_a_referent_that_member_users_see_and_other_services_learn() {
    let s = fresh("idreferent").await;
    let coordinator = s.token(COORDINATOR).await;
    let referent = s.token(REFERENT).await;
    let referent_id = s.me(&referent).await.expect("me").user.expect("user").id;
    let coordinator_id = claims(&coordinator).sub;
    let a = s.approved_member(&coordinator, MEAUX).await;
    let b = s.approved_member(&coordinator, PROVINS).await;
    let (_, admin_a) = s.invite_and_accept(&coordinator, "dgs@meaux.fr", Role::MemberAdmin, &a.id, "").await;
    let admin_a = admin_a.access_token;
    assert!(s.me(&admin_a).await.expect("me").referent.is_none(), "no referent yet");
    let mut identity = s.identity.clone();
    let assign = |member_id: &str, referent_user_id: &str| AssignReferentRequest {
        member_id: member_id.into(),
        referent_user_id: referent_user_id.into(),
    };

    for token in [&admin_a, &referent] {
        assert_eq!(
            code(identity.assign_referent(authed(assign(&a.id, &referent_id), token)).await),
            Code::PermissionDenied
        );
    }
    let not_a_referent = identity.assign_referent(authed(assign(&a.id, &coordinator_id), &coordinator)).await;
    assert_eq!(code(not_a_referent), Code::InvalidArgument);
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(code(identity.assign_referent(authed(assign(&a.id, &unknown), &coordinator)).await), Code::NotFound);
    assert_eq!(
        code(identity.assign_referent(authed(assign(&unknown, &referent_id), &coordinator)).await),
        Code::NotFound
    );

    let member = identity.assign_referent(authed(assign(&a.id, &referent_id), &coordinator)).await.expect("assign");
    assert_eq!(member.into_inner().referent_user_id, referent_id);
    // Assigning again changes nothing and is fine.
    assert!(identity.assign_referent(authed(assign(&a.id, &referent_id), &coordinator)).await.is_ok());
    let event = member_updated(&s, &a.id).await;
    assert_eq!(event.referent_user_id, referent_id);
    assert!(event.occurred_at.is_some());

    // The member's users see their referent and how to reach them.
    let me = s.me(&admin_a).await.expect("me");
    let shown = me.referent.expect("referent");
    assert_eq!((shown.user_id.as_str(), shown.email.as_str()), (referent_id.as_str(), REFERENT));
    assert_eq!(shown.display_name, "Référent (démo)");

    // The referent lists only the members it follows (forced), and reads only those.
    let mut members = s.client.clone();
    let listed = members
        .list_members(authed(ListMembersRequest { page_size: 100, ..Default::default() }, &referent))
        .await
        .expect("referent list")
        .into_inner()
        .members;
    assert_eq!(listed.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), vec![a.id.as_str()]);
    assert_eq!(listed[0].referent_user_id, referent_id);
    let all = members
        .list_members(authed(ListMembersRequest { page_size: 100, ..Default::default() }, &coordinator))
        .await
        .expect("coordinator list")
        .into_inner()
        .members;
    assert_eq!(all.len(), 2);
    assert!(members.get_member(authed(GetMemberRequest { member_id: a.id.clone() }, &referent)).await.is_ok());
    let err = members.get_member(authed(GetMemberRequest { member_id: b.id.clone() }, &referent)).await;
    assert_eq!(code(err), Code::NotFound);

    // Unassigning publishes too.
    let cleared = identity.assign_referent(authed(assign(&a.id, ""), &coordinator)).await.expect("clear");
    assert_eq!(cleared.into_inner().referent_user_id, "");
    wait_for_referent(&s, &a.id, "").await;

    // Removing a referent unassigns it from the members it followed, and says so.
    identity.assign_referent(authed(assign(&a.id, &referent_id), &coordinator)).await.expect("assign again");
    wait_for_referent(&s, &a.id, &referent_id).await;
    let operator = s.token(OPERATOR).await;
    identity
        .remove_user(authed(RemoveUserRequest { user_id: referent_id.clone() }, &operator))
        .await
        .expect("remove the referent");
    wait_for_referent(&s, &a.id, "").await;
    let member = members.get_member(authed(GetMemberRequest { member_id: a.id.clone() }, &coordinator)).await;
    assert_eq!(member.expect("member").into_inner().referent_user_id, "");
    assert!(s.me(&admin_a).await.expect("me").referent.is_none());

    assert_eq!(audit_kinds(&s, &operator, "referent.assigned").await.len(), 3);
    assert_eq!(audit_kinds(&s, &operator, "membership.approved").await.len(), 2);
    s.cleanup().await;
}

/// Waits until the last MemberUpdated of the member names this referent.
async fn wait_for_referent(s: &Service, member_id: &str, referent_user_id: &str) {
    for _ in 0..100 {
        if member_updated(s, member_id).await.referent_user_id == referent_user_id {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("MemberUpdated of {member_id} never named {referent_user_id:?}");
}

#[tokio::test]
async fn members_are_read_by_their_users_their_referent_and_the_coordinator_only() {
    let s = fresh("idmembers").await;
    let coordinator = s.token(COORDINATOR).await;
    let a = s.approved_member(&coordinator, MEAUX).await;
    let b = s.approved_member(&coordinator, PROVINS).await;
    let (_, user_a) = s.invite_and_accept(&coordinator, "agent@meaux.fr", Role::MemberUser, &a.id, "").await;
    let user_a = user_a.access_token;
    let (operator, agent, referent) = (s.token(OPERATOR).await, s.token(AGENT).await, s.token(REFERENT).await);
    let mut members = s.client.clone();
    let get = |id: &str| GetMemberRequest { member_id: id.into() };
    assert!(members.get_member(authed(get(&a.id), &user_a)).await.is_ok());
    assert_eq!(code(members.get_member(authed(get(&b.id), &user_a)).await), Code::NotFound);
    assert_eq!(code(members.get_member(authed(get(&a.id), &referent)).await), Code::NotFound, "not followed");
    assert_eq!(code(members.get_member(authed(get(&a.id), &operator)).await), Code::PermissionDenied);
    assert_eq!(code(members.get_member(authed(get(&a.id), &agent)).await), Code::PermissionDenied);
    assert_eq!(code(members.get_member(get(&a.id)).await), Code::Unauthenticated);
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(code(members.get_member(authed(get(&unknown), &coordinator)).await), Code::NotFound);
    assert_eq!(code(members.get_member(authed(get(&unknown), &operator)).await), Code::PermissionDenied);
    for token in [&user_a, &operator, &agent] {
        let err = members.list_members(authed(ListMembersRequest::default(), token)).await;
        assert_eq!(code(err), Code::PermissionDenied);
        let err = members.approve_membership(authed(ApproveMembershipRequest { member_id: b.id.clone() }, token)).await;
        assert_eq!(code(err), Code::PermissionDenied);
    }
    assert_eq!(code(members.list_members(ListMembersRequest::default()).await), Code::Unauthenticated);
    // The directory stays public; a caller with a token is fine too.
    assert!(members.search_collectivities(SearchCollectivitiesRequest::default()).await.is_ok());
    assert!(members.get_collectivity(authed(GetCollectivityRequest { siren: MEAUX.into() }, &agent)).await.is_ok());
    s.cleanup().await;
}

#[tokio::test]
async fn a_rotated_key_keeps_verifying_earlier_tokens_while_new_ones_use_the_new_key() {
    let url = testing::fresh_database_url("idkeys");
    let prefix = testing::fresh_prefix();
    let s = start(&url, &prefix).await;
    let operator = s.token(OPERATOR).await;
    let coordinator = s.token(COORDINATOR).await;
    let old_kid = kid(&operator);
    assert_eq!(s.jwks().await.keys.iter().map(|k| k.kid.clone()).collect::<Vec<_>>(), vec![old_kid.clone()]);
    let mut identity = s.identity.clone();
    assert_eq!(
        code(identity.rotate_signing_key(authed(RotateSigningKeyRequest {}, &coordinator)).await),
        Code::PermissionDenied
    );
    assert_eq!(code(identity.rotate_signing_key(RotateSigningKeyRequest {}).await), Code::Unauthenticated);

    let new_kid = identity
        .rotate_signing_key(authed(RotateSigningKeyRequest {}, &operator))
        .await
        .expect("rotate")
        .into_inner()
        .kid;
    assert_ne!(new_kid, old_kid);
    let mut published: Vec<_> = s.jwks().await.keys.into_iter().map(|k| k.kid).collect();
    published.sort();
    let mut expected = vec![old_kid.clone(), new_kid.clone()];
    expected.sort();
    assert_eq!(published, expected, "both keys are published");
    // Tokens signed before the rotation still work; new ones use the new key and work at once.
    assert!(s.me(&operator).await.is_ok());
    assert!(s.me(&coordinator).await.is_ok());
    let fresh_pair = s.login(COORDINATOR, DEMO_PASSWORD).await.expect("login");
    assert_eq!(kid(&fresh_pair.access_token), new_kid);
    assert!(s.me(&fresh_pair.access_token).await.is_ok());
    let refreshed = identity.refresh_token(refresh(&fresh_pair.refresh_token)).await.expect("refresh").into_inner();
    assert_eq!(kid(&refreshed.access_token), new_kid);
    let retire_after: Option<chrono::DateTime<chrono::Utc>> = {
        let pool = s.pool().await;
        let at = sqlx::query_scalar("SELECT retire_after FROM signing_key WHERE kid = $1")
            .bind(&old_kid)
            .fetch_one(&pool)
            .await
            .expect("old key");
        pool.close().await;
        at
    };
    let left = retire_after.expect("retiring") - chrono::Utc::now();
    assert!(left > chrono::TimeDelta::minutes(19) && left <= chrono::TimeDelta::minutes(20), "{left}");
    assert_eq!(audit_kinds(&s, &operator, "signing_key.rotated").await[0].subject, new_kid);

    // Once past its retirement, the old key is no longer published nor accepted (a restart drops the cache);
    // the restart keeps the accounts and the active key.
    let (url, js, _) = s.stop().await;
    let pool = sqlx::PgPool::connect(&url).await.expect("pool");
    sqlx::query("UPDATE signing_key SET retire_after = now() - interval '1 second' WHERE kid = $1")
        .bind(&old_kid)
        .execute(&pool)
        .await
        .expect("retire");
    pool.close().await;
    drop(js);
    let s = start(&url, &prefix).await;
    assert_eq!(s.jwks().await.keys.into_iter().map(|k| k.kid).collect::<Vec<_>>(), vec![new_kid.clone()]);
    assert_eq!(code(s.me(&operator).await), Code::Unauthenticated, "signed by the retired key");
    let me = s.me(&refreshed.access_token).await.expect("new key still verifies");
    assert_eq!(me.user.expect("user").id, claims(&coordinator).sub, "the demo accounts are kept");
    assert_eq!(kid(&s.token(OPERATOR).await), new_kid);
    s.cleanup().await;
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_refused_by_every_rpc() {
    let s = fresh("idforged").await;
    let coordinator = s.token(COORDINATOR).await;
    let parts: Vec<&str> = coordinator.split('.').collect();
    let now = chrono::Utc::now().timestamp();
    // Another key (unknown kid), claiming the coordinator.
    let foreign = testing::TestKeys::new().expect("keys");
    let other_key = foreign.token(AuthRole::Coordinator, None, None);
    // `alg: none`, no signature.
    let none = format!("{}.{}.", B64.encode(r#"{"alg":"none","typ":"at+jwt"}"#), parts[1]);
    // The payload changed under the real signature.
    let mut raised = claims(&coordinator);
    raised.roles = vec![AuthRole::Operator];
    let tampered = format!("{}.{}.{}", parts[0], B64.encode(serde_json::to_vec(&raised).expect("json")), parts[2]);
    // Signed with the real key, but expired or for another issuer or audience.
    let real_key = {
        let pool = s.pool().await;
        let secret: Vec<u8> = sqlx::query_scalar("SELECT secret FROM signing_key").fetch_one(&pool).await.expect("key");
        pool.close().await;
        KeyPair::from_secret(&secret.try_into().expect("32 bytes"))
    };
    let base = claims(&coordinator);
    let expired = real_key.sign(&Claims { exp: now - 3600, nbf: now - 4200, iat: now - 4200, ..base.clone() });
    let issuer = real_key.sign(&Claims { iss: "https://evil.example".into(), ..base.clone() });
    let audience = real_key.sign(&Claims { aud: "other".into(), ..base.clone() });
    assert!(s.me(&real_key.sign(&base)).await.is_ok(), "the real key itself is fine");

    let bad = [
        ("another key", other_key),
        ("alg none", none),
        ("tampered", tampered),
        ("expired", expired),
        ("wrong issuer", issuer),
        ("wrong audience", audience),
        ("garbage", "not-a-token".to_owned()),
    ];
    let id = uuid::Uuid::now_v7().to_string();
    let mut calls = 0;
    for (what, token) in &bad {
        let t = token.as_str();
        let (mut m, mut i) = (s.client.clone(), s.identity.clone());
        let results: Vec<(&str, Result<(), tonic::Status>)> = vec![
            (
                "SearchCollectivities",
                m.search_collectivities(authed(SearchCollectivitiesRequest::default(), t)).await.map(|_| ()),
            ),
            (
                "GetCollectivity",
                m.get_collectivity(authed(GetCollectivityRequest { siren: MEAUX.into() }, t)).await.map(|_| ()),
            ),
            (
                "ApplyForMembership",
                m.apply_for_membership(authed(
                    ApplyForMembershipRequest {
                        siren: MEAUX.into(),
                        contact_name: "M".into(),
                        contact_email: "m@meaux.fr".into(),
                    },
                    t,
                ))
                .await
                .map(|_| ()),
            ),
            (
                "ApproveMembership",
                m.approve_membership(authed(ApproveMembershipRequest { member_id: id.clone() }, t)).await.map(|_| ()),
            ),
            ("GetMember", m.get_member(authed(GetMemberRequest { member_id: id.clone() }, t)).await.map(|_| ())),
            ("ListMembers", m.list_members(authed(ListMembersRequest::default(), t)).await.map(|_| ())),
            (
                "IssueToken",
                i.issue_token(authed(
                    IssueTokenRequest {
                        email: COORDINATOR.into(),
                        password: DEMO_PASSWORD.into(),
                        client: String::new(),
                    },
                    t,
                ))
                .await
                .map(|_| ()),
            ),
            ("RefreshToken", i.refresh_token(authed(refresh("x"), t)).await.map(|_| ())),
            (
                "RevokeToken",
                i.revoke_token(authed(RevokeTokenRequest { refresh_token: "x".into() }, t)).await.map(|_| ()),
            ),
            ("GetJwks", i.get_jwks(authed(GetJwksRequest {}, t)).await.map(|_| ())),
            ("RotateSigningKey", i.rotate_signing_key(authed(RotateSigningKeyRequest {}, t)).await.map(|_| ())),
            ("GetMe", i.get_me(authed(GetMeRequest {}, t)).await.map(|_| ())),
            ("InviteUser", i.invite_user(authed(invite("x@id77.demo", Role::Operator, "", ""), t)).await.map(|_| ())),
            (
                "AcceptInvitation",
                i.accept_invitation(authed(
                    AcceptInvitationRequest { invitation_token: "x".into(), password: USER_PASSWORD.into() },
                    t,
                ))
                .await
                .map(|_| ()),
            ),
            ("ListUsers", i.list_users(authed(ListUsersRequest::default(), t)).await.map(|_| ())),
            ("RemoveUser", i.remove_user(authed(RemoveUserRequest { user_id: id.clone() }, t)).await.map(|_| ())),
            (
                "AssignReferent",
                i.assign_referent(authed(
                    AssignReferentRequest { member_id: id.clone(), referent_user_id: String::new() },
                    t,
                ))
                .await
                .map(|_| ()),
            ),
            ("ListAuditEvents", i.list_audit_events(authed(ListAuditEventsRequest::default(), t)).await.map(|_| ())),
        ];
        for (rpc, result) in results {
            calls += 1;
            assert_eq!(result.err().map(|e| e.code()), Some(Code::Unauthenticated), "{rpc} with a {what} token");
        }
    }
    assert_eq!(calls, 18 * bad.len());
    s.cleanup().await;
}

#[tokio::test]
async fn audit_events_are_listed_newest_first_to_the_operator_only() {
    let s = fresh("idaudit").await;
    let operator = s.token(OPERATOR).await;
    let _ = s.login(COORDINATOR, "Pas-le-bon-2026!").await;
    let _ = s.token(COORDINATOR).await;
    let _ = s.login("personne@id77.demo", "Pas-le-bon-2026!").await;
    let mut identity = s.identity.clone();
    for token in [s.token(COORDINATOR).await, s.token(REFERENT).await, s.token(AGENT).await] {
        let err = identity.list_audit_events(authed(ListAuditEventsRequest::default(), &token)).await;
        assert_eq!(code(err), Code::PermissionDenied);
    }
    assert_eq!(code(identity.list_audit_events(ListAuditEventsRequest::default()).await), Code::Unauthenticated);
    let bad_kind = ListAuditEventsRequest { kind: "login".into(), ..Default::default() };
    assert_eq!(code(identity.list_audit_events(authed(bad_kind, &operator)).await), Code::InvalidArgument);

    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let request = ListAuditEventsRequest { page_size: 2, page_token: token.clone(), ..Default::default() };
        let page = identity.list_audit_events(authed(request, &operator)).await.expect("page").into_inner();
        assert!(page.events.len() <= 2);
        all.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    // operator ok, coordinator failed, coordinator ok, unknown failed, then three logins of the loop.
    assert_eq!(all.len(), 7, "{all:#?}");
    let at = |e: &id77_proto::membership::v1::AuditEvent| e.at.map(|t| (t.seconds, t.nanos));
    assert!(all.windows(2).all(|w| at(&w[0]) >= at(&w[1])), "newest first");
    let mut ids: Vec<_> = all.iter().map(|e| e.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 7, "no event twice across pages");
    assert_eq!(all.last().map(|e| (e.kind.as_str(), e.subject.as_str())), Some(("login.succeeded", OPERATOR)));
    let failed = audit_kinds(&s, &operator, "login.failed").await;
    assert_eq!(failed.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(), vec!["unknown account", "wrong password"]);
    assert!(failed.iter().all(|e| e.kind == "login.failed"));
    s.cleanup().await;
}

#[tokio::test]
async fn a_weak_demo_password_stops_the_start_and_the_bootstrap_operator_is_created_once() {
    // Refused before anything is touched.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut weak = config(&testing::fresh_database_url("idweak"), &testing::fresh_prefix(), addr);
    weak.demo_password = Some("referent".into());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let outcome = tokio::time::timeout(Duration::from_secs(5), id77_membership::run(weak, listener, shutdown)).await;
    let error = outcome.expect("stops at once").expect_err("refused");
    assert!(error.to_string().contains("ID77_DEMO_PASSWORD"), "{error:#}");

    // No demo accounts, a bootstrap operator email: an inactive operator with an invitation.
    let url = testing::fresh_database_url("idboot");
    let prefix = testing::fresh_prefix();
    let bootstrap = |c: &mut id77_membership::Config| {
        c.demo_password = None;
        c.bootstrap_operator_email = Some("Admin@Seine-et-Marne.fr".into());
    };
    let s = start_with(&url, &prefix, bootstrap).await;
    assert_eq!(code(s.login(OPERATOR, DEMO_PASSWORD).await), Code::Unauthenticated, "no demo accounts");
    let (url, js, _) = s.stop().await;
    drop(js);
    let s = start_with(&url, &prefix, bootstrap).await;
    let pool = s.pool().await;
    let operators: Vec<(String, bool)> = sqlx::query_as("SELECT email, active FROM app_user WHERE role = 'operator'")
        .fetch_all(&pool)
        .await
        .expect("operators");
    assert_eq!(operators, vec![("admin@seine-et-marne.fr".to_owned(), false)], "created once");
    // The token is only logged; the function hands it back too, which lets the test accept it: a second call
    // does nothing since an operator exists.
    assert_eq!(id77_membership::identity::bootstrap_operator(&pool, "autre@id77.fr").await.expect("again"), None);
    sqlx::query("UPDATE app_user SET removed_at = now() WHERE role = 'operator'").execute(&pool).await.expect("rm");
    let token = id77_membership::identity::bootstrap_operator(&pool, "autre@id77.fr").await.expect("create");
    pool.close().await;
    let pair = s
        .identity
        .clone()
        .accept_invitation(AcceptInvitationRequest {
            invitation_token: token.expect("token"),
            password: USER_PASSWORD.into(),
        })
        .await
        .expect("accept")
        .into_inner();
    assert_eq!(claims(&pair.access_token).roles, vec![AuthRole::Operator]);
    assert!(s.login("autre@id77.fr", USER_PASSWORD).await.is_ok());
    s.cleanup().await;
}

/// The `user.changed` events of one account, from membership's outbox, in order.
async fn user_changes(s: &Service, user_id: &str) -> Vec<id77_proto::membership::v1::UserChanged> {
    let pool = sqlx::PgPool::connect(&s.url).await.expect("db");
    let payloads: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM outbox WHERE subject = 'id77.membership.user.changed' ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("outbox");
    pool.close().await;
    payloads
        .iter()
        .filter_map(|p| id77_proto::membership::v1::UserChanged::decode(p.as_slice()).ok())
        .filter(|e| e.user_id == user_id)
        .collect()
}

#[tokio::test]
async fn every_account_change_is_announced_once_with_a_growing_version() {
    let s = fresh("idannounce").await;
    let coordinator = s.token(COORDINATOR).await;
    // The demo accounts were announced at start.
    let agent = claims(&s.token(AGENT).await).sub;
    let seeded = user_changes(&s, &agent).await;
    assert_eq!(seeded.len(), 1, "{seeded:?}");
    assert_eq!(
        (seeded[0].role.as_str(), seeded[0].provider_code.as_str(), seeded[0].active),
        ("provider_agent", "caue77", true)
    );
    assert_eq!(seeded[0].email, AGENT);

    let a = s.approved_member(&coordinator, MEAUX).await;
    let (admin, admin_pair) = s.invite_and_accept(&coordinator, "dgs@meaux.fr", Role::MemberAdmin, &a.id, "").await;
    // Invited (inactive), then activated.
    let changes = user_changes(&s, &admin.id).await;
    assert_eq!(changes.iter().map(|c| (c.version, c.active)).collect::<Vec<_>>(), vec![(1, false), (2, true)]);
    assert_eq!((changes[1].email.as_str(), changes[1].member_id.as_str()), ("dgs@meaux.fr", a.id.as_str()));
    assert_eq!(changes[1].role, "member_admin");
    // A login changes nothing others care about: no event.
    s.login("dgs@meaux.fr", common::USER_PASSWORD).await.expect("login");
    assert_eq!(user_changes(&s, &admin.id).await.len(), 2);
    // The admin's user, removed by the admin: inactive, version 3.
    let (user, _) = s.invite_and_accept(&admin_pair.access_token, "agent@meaux.fr", Role::MemberUser, "", "").await;
    s.identity
        .clone()
        .remove_user(authed(RemoveUserRequest { user_id: user.id.clone() }, &admin_pair.access_token))
        .await
        .expect("remove");
    let changes = user_changes(&s, &user.id).await;
    assert_eq!(
        changes.iter().map(|c| (c.version, c.active)).collect::<Vec<_>>(),
        vec![(1, false), (2, true), (3, false)]
    );
    assert_eq!(user_changes(&s, &admin.id).await.len(), 2);
    s.cleanup().await;
}
