//! Accounts by mail against the real PostgreSQL and NATS: invitations and password resets mailed with their link
//! (in the transaction of the change), the reset token (single use, expiry, no enumeration), the password change,
//! colleagues invited and removed by a member's admin, and the refusal of an application.

mod common;

use std::time::Duration;

use common::*;
use id77_platform::testing;
use id77_proto::membership::v1::{
    AcceptInvitationRequest, ApplyForMembershipRequest, ApproveMembershipRequest, ChangePasswordRequest,
    GetMemberRequest, InviteUserRequest, MemberRefused, MemberStatus, RefreshTokenRequest, RefuseMembershipRequest,
    RemoveUserRequest, RequestPasswordResetRequest, ResetPasswordRequest, Role,
};
use prost::Message;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A queued mail: (to, kind, subject, body, link path).
type QueuedMail = (String, String, String, String, String);

async fn mails(s: &Service, to: &str) -> Vec<QueuedMail> {
    sqlx::query_as("SELECT email, kind, subject, body, link_path FROM mail_outbox WHERE email = $1 ORDER BY created_at")
        .bind(to)
        .fetch_all(&s.pool().await)
        .await
        .expect("mails")
}

/// The value of `name` in a link's query.
fn query_param(link: &str, name: &str) -> String {
    let query = link.split_once('?').map(|(_, q)| q).unwrap_or_default();
    query.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}="))).expect("parameter").to_owned()
}

fn reason(status: &Status) -> String {
    status.get_error_details().error_info().map(|i| i.reason.clone()).unwrap_or_default()
}

fn reset_request(email: &str) -> RequestPasswordResetRequest {
    RequestPasswordResetRequest { email: email.into(), client: "192.0.2.9".into() }
}

async fn confirm(s: &Service, token: &str, password: &str) -> Result<(), Status> {
    let request = ResetPasswordRequest { token: token.into(), password: password.into() };
    s.identity.clone().reset_password(request).await.map(|_| ())
}

const NEW_PASSWORD: &str = "Nouveau-Secret-2026!";

#[tokio::test]
async fn a_reset_link_is_mailed_works_once_and_ends_the_sessions() {
    let s = fresh("acreset").await;
    let session = s.login(REFERENT, DEMO_PASSWORD).await.expect("login");
    // The same (empty) answer for a live account, an unknown one and a malformed address.
    for email in [REFERENT, "personne@id77.demo", "pas une adresse"] {
        s.identity.clone().request_password_reset(reset_request(email)).await.expect("always accepted");
    }
    assert!(mails(&s, "personne@id77.demo").await.is_empty());
    let sent = mails(&s, REFERENT).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (_, kind, subject, body, link) = &sent[0];
    assert_eq!((kind.as_str(), subject.as_str()), ("password_reset", "Nouveau mot de passe ID 77"));
    assert!(body.contains("valable 1 heure"), "{body}");
    assert!(link.starts_with("/mot-de-passe/nouveau?jeton="), "{link}");
    let token = query_param(link, "jeton");
    // Only the token's hash is stored.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT token_hash FROM password_reset")
        .fetch_one(&s.pool().await)
        .await
        .expect("reset row");
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&token));

    // The password policy applies, and a refusal does not spend the link.
    let weak = confirm(&s, &token, "court").await.expect_err("weak");
    assert_eq!(weak.code(), Code::InvalidArgument);
    assert_eq!(
        weak.get_error_details().bad_request().map(|b| b.field_violations[0].field.clone()),
        Some("password".into())
    );
    confirm(&s, &token, NEW_PASSWORD).await.expect("reset");
    assert_eq!(code(s.login(REFERENT, DEMO_PASSWORD).await), Code::Unauthenticated);
    s.login(REFERENT, NEW_PASSWORD).await.expect("the new password works");
    // Every session of the account ended.
    let refresh = RefreshTokenRequest { refresh_token: session.refresh_token, client: "192.0.2.9".into() };
    assert_eq!(code(s.identity.clone().refresh_token(refresh).await), Code::Unauthenticated);
    let revoked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE subject = 'id77.membership.access.revoked'")
            .fetch_one(&s.pool().await)
            .await
            .expect("outbox");
    assert_eq!(revoked, 1);

    // Used, unknown: one typed answer.
    for token in [token.as_str(), "inconnu-0123456789"] {
        let refused = confirm(&s, token, "Encore-Un-Autre-2026!").await.expect_err("refused");
        assert_eq!((refused.code(), reason(&refused).as_str()), (Code::NotFound, "RESET_TOKEN_INVALID"));
    }
    s.cleanup().await;
}

#[tokio::test]
async fn a_reset_link_expires_after_an_hour_and_an_account_gets_three_an_hour() {
    let s = fresh("acexpiry").await;
    for _ in 0..5 {
        s.identity.clone().request_password_reset(reset_request(COORDINATOR)).await.expect("accepted");
    }
    let sent = mails(&s, COORDINATOR).await;
    assert_eq!(sent.len(), 3, "at most three links an hour");
    let expiry: f64 =
        sqlx::query_scalar("SELECT extract(epoch FROM max(expires_at - created_at))::float8 FROM password_reset")
            .fetch_one(&s.pool().await)
            .await
            .expect("expiry");
    assert_eq!(expiry, 3600.0);
    sqlx::query("UPDATE password_reset SET expires_at = now() - interval '1 second'")
        .execute(&s.pool().await)
        .await
        .expect("expire");
    let token = query_param(&sent[0].4, "jeton");
    let expired = confirm(&s, &token, NEW_PASSWORD).await.expect_err("expired");
    assert_eq!((expired.code(), reason(&expired).as_str()), (Code::NotFound, "RESET_TOKEN_INVALID"));
    s.login(COORDINATOR, DEMO_PASSWORD).await.expect("the password did not change");
    s.cleanup().await;
}

#[tokio::test]
async fn a_rolled_back_invitation_queues_no_mail_and_the_sender_delivers_the_link() {
    let sink = testing::SmtpSink::start().await.expect("smtp sink");
    let url = testing::fresh_database_url("acsender");
    let s = start_with(&url, &testing::fresh_prefix(), |c| {
        c.mail.smtp_url = Some(sink.url());
        c.mail.portal_url = "https://portail.example.fr".into();
    })
    .await;
    let coordinator = s.token(COORDINATOR).await;
    let member = s.approved_member(&coordinator, MEAUX).await;
    let invite = |email: &str| InviteUserRequest {
        email: email.into(),
        display_name: "Claire Martin".into(),
        role: Role::MemberAdmin.into(),
        member_id: member.id.clone(),
        provider_code: String::new(),
    };
    let invitation =
        s.identity.clone().invite_user(authed(invite("dgs@meaux.fr"), &coordinator)).await.expect("invite");
    // The same email again fails (unique account): its transaction, mail included, is rolled back.
    let again = s.identity.clone().invite_user(authed(invite("dgs@meaux.fr"), &coordinator)).await;
    assert_eq!(code(again), Code::AlreadyExists);
    let received = sink.wait_for("dgs@meaux.fr", "Activez votre compte ID 77", 1, Duration::from_secs(20)).await;
    assert_eq!(received.len(), 1);
    let token = invitation.into_inner().invitation_token;
    let body = received[0].body();
    assert!(body.contains(&format!("https://portail.example.fr/activer?code={token}")), "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.mails_to("dgs@meaux.fr").len(), 1, "one mail: none for the rolled-back invitation");
    // Once sent, the link (and its token) is not kept in the queue.
    let kept: Vec<String> = sqlx::query_scalar("SELECT link_path FROM mail_outbox WHERE sent_at IS NOT NULL")
        .fetch_all(&s.pool().await)
        .await
        .expect("sent");
    assert_eq!(kept, vec![String::new()]);
    s.cleanup().await;
}

#[tokio::test]
async fn a_signed_in_user_changes_its_password_and_its_other_sessions_end() {
    let s = fresh("acchange").await;
    let here = s.login(OPERATOR, DEMO_PASSWORD).await.expect("login");
    let elsewhere = s.login(OPERATOR, DEMO_PASSWORD).await.expect("login");
    let change =
        |current: &str, new: &str| ChangePasswordRequest { current_password: current.into(), new_password: new.into() };
    let wrong =
        s.identity.clone().change_password(authed(change("Pas-le-bon-2026!", NEW_PASSWORD), &here.access_token)).await;
    let wrong = wrong.expect_err("wrong current password");
    assert_eq!((wrong.code(), reason(&wrong).as_str()), (Code::PermissionDenied, "WRONG_CURRENT_PASSWORD"));
    let weak = s.identity.clone().change_password(authed(change(DEMO_PASSWORD, "faible"), &here.access_token)).await;
    assert_eq!(code(weak), Code::InvalidArgument);
    assert_eq!(
        code(s.identity.clone().change_password(change(DEMO_PASSWORD, NEW_PASSWORD)).await),
        Code::Unauthenticated
    );
    s.identity
        .clone()
        .change_password(authed(change(DEMO_PASSWORD, NEW_PASSWORD), &here.access_token))
        .await
        .expect("changed");
    assert_eq!(code(s.login(OPERATOR, DEMO_PASSWORD).await), Code::Unauthenticated);
    s.login(OPERATOR, NEW_PASSWORD).await.expect("new password");
    let refresh = |t: &str| RefreshTokenRequest { refresh_token: t.into(), client: "192.0.2.9".into() };
    assert_eq!(code(s.identity.clone().refresh_token(refresh(&elsewhere.refresh_token)).await), Code::Unauthenticated);
    s.identity.clone().refresh_token(refresh(&here.refresh_token)).await.expect("this session goes on");
    s.cleanup().await;
}

#[tokio::test]
async fn a_member_admin_invites_and_removes_colleagues_of_its_own_member_only() {
    let s = fresh("accolleagues").await;
    let coordinator = s.token(COORDINATOR).await;
    let meaux = s.approved_member(&coordinator, MEAUX).await;
    let provins = s.approved_member(&coordinator, PROVINS).await;
    let (_, admin) = s.invite_and_accept(&coordinator, "dgs@meaux.fr", Role::MemberAdmin, &meaux.id, "").await;
    let (other, _) = s.invite_and_accept(&coordinator, "dgs@provins.fr", Role::MemberAdmin, &provins.id, "").await;
    let admin = admin.access_token;
    // A colleague: invited by mail with a link to the activation page, activated from it.
    let invite = InviteUserRequest {
        email: "urbanisme@meaux.fr".into(),
        display_name: "Service urbanisme".into(),
        role: Role::MemberUser.into(),
        member_id: String::new(),
        provider_code: String::new(),
    };
    let colleague = s.identity.clone().invite_user(authed(invite.clone(), &admin)).await.expect("invite").into_inner();
    let user = colleague.user.expect("user");
    assert_eq!(user.member_id, meaux.id, "the admin's own member");
    let sent = mails(&s, "urbanisme@meaux.fr").await;
    assert_eq!(sent.len(), 1);
    assert!(sent[0].3.contains("Service urbanisme") && sent[0].3.contains("7 jours"), "{}", sent[0].3);
    let code_from_link = query_param(&sent[0].4, "code");
    let accept = AcceptInvitationRequest { invitation_token: code_from_link, password: USER_PASSWORD.into() };
    s.identity.clone().accept_invitation(accept).await.expect("activated from the mailed link");
    s.login("urbanisme@meaux.fr", USER_PASSWORD).await.expect("login");
    // Not for another member, not a Département role.
    let elsewhere = InviteUserRequest { email: "x@provins.fr".into(), member_id: provins.id.clone(), ..invite.clone() };
    assert_eq!(code(s.identity.clone().invite_user(authed(elsewhere, &admin)).await), Code::NotFound);
    let referent = InviteUserRequest { email: "y@meaux.fr".into(), role: Role::Referent.into(), ..invite };
    assert_eq!(code(s.identity.clone().invite_user(authed(referent, &admin)).await), Code::PermissionDenied);
    // Removal: its own colleagues only, never itself.
    let remove = |id: &str| RemoveUserRequest { user_id: id.into() };
    assert_eq!(code(s.identity.clone().remove_user(authed(remove(&other.id), &admin)).await), Code::NotFound);
    let me = s.me(&admin).await.expect("me").user.expect("user");
    assert_eq!(code(s.identity.clone().remove_user(authed(remove(&me.id), &admin)).await), Code::PermissionDenied);
    s.identity.clone().remove_user(authed(remove(&user.id), &admin)).await.expect("removed");
    assert_eq!(code(s.login("urbanisme@meaux.fr", USER_PASSWORD).await), Code::Unauthenticated);
    s.cleanup().await;
}

#[tokio::test]
async fn two_admins_removing_each_other_at_once_leave_one() {
    let s = fresh("aclastadmin").await;
    let coordinator = s.token(COORDINATOR).await;
    let meaux = s.approved_member(&coordinator, MEAUX).await;
    let (a, a_pair) = s.invite_and_accept(&coordinator, "a@meaux.fr", Role::MemberAdmin, &meaux.id, "").await;
    let (b, b_pair) = s.invite_and_accept(&coordinator, "b@meaux.fr", Role::MemberAdmin, &meaux.id, "").await;
    let remove = |id: &str, token: &str| {
        let mut identity = s.identity.clone();
        let request = authed(RemoveUserRequest { user_id: id.into() }, token);
        async move { identity.remove_user(request).await }
    };
    let (first, second) = tokio::join!(remove(&b.id, &a_pair.access_token), remove(&a.id, &b_pair.access_token));
    assert_eq!(usize::from(first.is_ok()) + usize::from(second.is_ok()), 1, "{first:?} {second:?}");
    let admins: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM app_user WHERE member_id = $1::uuid AND role = 'member_admin' AND removed_at IS NULL",
    )
    .bind(&meaux.id)
    .fetch_one(&s.pool().await)
    .await
    .expect("admins");
    assert_eq!(admins, 1);
    s.cleanup().await;
}

#[tokio::test]
async fn the_coordinator_refuses_a_pending_application_with_a_reason() {
    let s = fresh("acrefuse").await;
    let coordinator = s.token(COORDINATOR).await;
    let apply = ApplyForMembershipRequest {
        siren: ACHERES.into(),
        contact_name: "Marie Dupont".into(),
        contact_email: "mairie@acheres.fr".into(),
    };
    let member = s.client.clone().apply_for_membership(apply.clone()).await.expect("apply").into_inner();
    let refuse = |reason: &str| RefuseMembershipRequest { member_id: member.id.clone(), reason: reason.into() };
    let referent = s.token(REFERENT).await;
    assert_eq!(
        code(s.client.clone().refuse_membership(authed(refuse("Non"), &referent)).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(s.client.clone().refuse_membership(authed(refuse("  "), &coordinator)).await),
        Code::InvalidArgument
    );
    let refused = s
        .client
        .clone()
        .refuse_membership(authed(refuse(" Collectivité hors du périmètre. "), &coordinator))
        .await
        .expect("refused")
        .into_inner();
    assert_eq!(refused.status(), MemberStatus::Refused);
    assert_eq!(refused.refusal_reason, "Collectivité hors du périmètre.");
    assert!(refused.refused_at.is_some());
    let read =
        s.client.clone().get_member(authed(GetMemberRequest { member_id: member.id.clone() }, &coordinator)).await;
    assert_eq!(read.expect("read").into_inner().status(), MemberStatus::Refused);
    // No second refusal, no approval of a refused application.
    let again = s.client.clone().refuse_membership(authed(refuse("Encore"), &coordinator)).await.expect_err("again");
    assert_eq!((again.code(), reason(&again).as_str()), (Code::FailedPrecondition, "INVALID_TRANSITION"));
    let approve = ApproveMembershipRequest { member_id: member.id.clone() };
    assert_eq!(
        code(s.client.clone().approve_membership(authed(approve, &coordinator)).await),
        Code::FailedPrecondition
    );
    // The contact is told why, and `member.refused` is in the outbox.
    let sent = mails(&s, "mairie@acheres.fr").await;
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].3.contains("Collectivité hors du périmètre.") && sent[0].3.contains("Marie Dupont"),
        "{}",
        sent[0].3
    );
    let payloads: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT payload FROM outbox WHERE subject = 'id77.membership.member.refused'")
            .fetch_all(&s.pool().await)
            .await
            .expect("outbox");
    assert_eq!(payloads.len(), 1);
    let event = MemberRefused::decode(payloads[0].as_slice()).expect("MemberRefused");
    assert_eq!(
        (event.member_id.as_str(), event.reason.as_str()),
        (member.id.as_str(), "Collectivité hors du périmètre.")
    );
    // A refused collectivité may apply again: pending, the reason forgotten.
    let again = s.client.clone().apply_for_membership(apply).await.expect("apply again").into_inner();
    assert_eq!(
        (again.id.as_str(), again.status(), again.refusal_reason.as_str()),
        (member.id.as_str(), MemberStatus::Pending, "")
    );
    s.cleanup().await;
}
