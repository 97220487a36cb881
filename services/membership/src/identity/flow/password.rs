//! Passwords: a forgotten one is reset from a mailed single-use link, a signed-in user changes its own. Each use
//! case on its own transaction, with its mail (`mail_outbox`) and its events (`user.changed` is not concerned:
//! no announced field changes; `access.revoked` for the sessions that end) written in it.

use chrono::{DateTime, Utc};
use id77_platform::auth::Caller;
use id77_platform::{ServiceError, time};
use sqlx::PgPool;
use uuid::Uuid;

use super::super::crypto;
use super::super::domain::{self as policy, audit};
use super::super::store::{self, Audit, UserRow};
use super::revocation::announce_revocation;
use crate::error::IdentityError;
use crate::mail;

/// `access.revoked` reason once a password was reset (every session ends).
pub const REVOKED_BY_RESET: &str = "password_reset";
/// `access.revoked` reason once a password was changed (the other sessions end).
pub const REVOKED_BY_CHANGE: &str = "password_changed";

/// Asks for a reset link. The same answer (`Ok`) and about the same work whatever the address: a token is always
/// drawn, and one transaction always commits (the audit event, plus for a live account the reset and its mail).
/// An account sent [`policy::MAX_RESETS_PER_TTL`] links within the last hour gets no more (answered alike).
pub async fn request_reset(pool: &PgPool, email: &str, client: &str) -> Result<(), ServiceError> {
    let client = policy::clean_client(client);
    let email = email.trim().to_lowercase();
    let subject: String = email.chars().take(254).collect();
    let (token, hash) = crypto::new_opaque_token()?;
    let found = if id77_platform::validate::is_plausible_email(&email) {
        store::user_by_email(pool, &email).await?.filter(|u| u.is_live())
    } else {
        None
    };
    let now = time::now();
    let mut tx = pool.begin().await?;
    let detail = match found {
        None => "unknown or inactive account: nothing sent",
        Some(user) => {
            let user = store::user_for_update(&mut tx, user.id).await?.filter(UserRow::is_live);
            match user {
                None => "unknown or inactive account: nothing sent",
                Some(user) => {
                    let since = now - policy::password_reset_ttl();
                    if store::resets_since(&mut tx, user.id, since).await? >= policy::MAX_RESETS_PER_TTL {
                        "too many links in the last hour: nothing sent"
                    } else {
                        let expires_at = now + policy::password_reset_ttl();
                        store::insert_password_reset(&mut tx, &hash, user.id, now, expires_at).await?;
                        queue_reset_mail(&mut tx, &user, &token, now).await?;
                        "link sent"
                    }
                }
            }
        }
    };
    let event = Audit {
        kind: audit::PASSWORD_RESET_REQUESTED,
        subject: &subject,
        client: &client,
        detail,
        ..Default::default()
    };
    store::audit(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}

async fn queue_reset_mail(
    conn: &mut sqlx::PgConnection,
    user: &UserRow,
    token: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let body = format!(
        "Bonjour {},\n\nUne demande de nouveau mot de passe a été faite pour votre compte ID 77 ({}). Si vous \
         n'en êtes pas à l'origine, ignorez ce courriel : votre mot de passe ne change pas.\n\nPour choisir un \
         nouveau mot de passe, ouvrez ce lien (valable 1 heure, il ne sert qu'une fois) :",
        user.display_name, user.email
    );
    let link = format!("/mot-de-passe/nouveau?jeton={}", mail::query_value(token));
    let mail = mail::Mail {
        email: &user.email,
        kind: mail::kind::PASSWORD_RESET,
        subject: "Nouveau mot de passe ID 77",
        body: &body,
        link_path: &link,
        at: now,
    };
    mail::queue(conn, &mail).await
}

/// Sets a new password from a reset link: the token is consumed (and the account's other links with it), every
/// session of the account ends. An unknown, used or expired token is [`IdentityError::BadResetToken`].
pub async fn confirm_reset(pool: &PgPool, token: &str, password: &str) -> Result<(), ServiceError> {
    let hash = crypto::hash_opaque_token(token);
    let usable = |now: DateTime<Utc>| move |r: &store::ResetRow| r.used_at.is_none() && r.expires_at > now;
    let user = {
        let mut conn = pool.acquire().await?;
        let reset = store::password_reset(&mut conn, &hash, false).await?.filter(usable(time::now()));
        let Some(reset) = reset else { return Err(IdentityError::BadResetToken.into()) };
        store::user_by_id(&mut conn, reset.user_id).await?.filter(UserRow::is_live)
    };
    let Some(user) = user else { return Err(IdentityError::BadResetToken.into()) };
    policy::check_password("password", password, &user.email)?;
    let password_hash = crypto::hash_password(password).await?;
    let now = time::now();
    let mut tx = pool.begin().await?;
    let reset = store::password_reset(&mut tx, &hash, true).await?.filter(usable(now));
    let Some(reset) = reset else { return Err(IdentityError::BadResetToken.into()) };
    let user = store::user_for_update(&mut tx, reset.user_id).await?.filter(UserRow::is_live);
    let Some(user) = user else { return Err(IdentityError::BadResetToken.into()) };
    store::use_password_resets(&mut tx, user.id, now).await?;
    store::set_password(&mut tx, user.id, &password_hash).await?;
    // Each session by its id: a token of a session opened right after the reset (same second) stays valid.
    let sessions = store::revoke_other_families(&mut tx, user.id, None, now, "password reset").await?;
    for session in &sessions {
        announce_revocation(&mut tx, user.id, Some(*session), REVOKED_BY_RESET, now).await?;
    }
    let subject = user.id.to_string();
    let detail = format!("{}; {} session(s) revoked", user.email, sessions.len());
    let event = Audit {
        kind: audit::PASSWORD_RESET,
        actor_user_id: Some(user.id),
        subject: &subject,
        detail: &detail,
        ..Default::default()
    };
    store::audit(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// The caller changes its password (the current one checked first, same policy for the new one); its other
/// sessions end, the one it uses goes on.
pub async fn change_password(pool: &PgPool, caller: &Caller, current: &str, new: &str) -> Result<(), ServiceError> {
    let user = {
        let mut conn = pool.acquire().await?;
        store::live_user(&mut conn, caller).await?
    };
    let stored = user.password_hash.as_deref().unwrap_or(crypto::DUMMY_HASH);
    if !crypto::verify_password(current, stored).await? {
        return Err(IdentityError::WrongCurrentPassword.into());
    }
    policy::check_password("new_password", new, &user.email)?;
    if current == new {
        return Err(ServiceError::invalid("new_password", "must differ from the current password"));
    }
    let password_hash = crypto::hash_password(new).await?;
    let now = time::now();
    let mut tx = pool.begin().await?;
    store::live_user(&mut tx, caller).await?;
    let keep = Uuid::parse_str(caller.session.trim()).ok();
    let ended = store::revoke_other_families(&mut tx, user.id, keep, now, "password changed").await?;
    for session in &ended {
        announce_revocation(&mut tx, user.id, Some(*session), REVOKED_BY_CHANGE, now).await?;
    }
    store::set_password(&mut tx, user.id, &password_hash).await?;
    store::use_password_resets(&mut tx, user.id, now).await?;
    let subject = user.id.to_string();
    let detail = format!("{}; {} other session(s) revoked", user.email, ended.len());
    let event = Audit {
        kind: audit::PASSWORD_CHANGED,
        actor_user_id: Some(user.id),
        subject: &subject,
        detail: &detail,
        ..Default::default()
    };
    store::audit(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}
