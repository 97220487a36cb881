//! Accounts and sessions, each use case on its own transaction: logins (throttled), refresh and logout, key
//! rotation, invitations and their acceptance, removals, and the provisioning done at start-up. Every path
//! writes its events (`user.changed`, `access.revoked`, and `member.updated` through [`crate::flow`]) to the
//! outbox in the same transaction as the state they announce.

use anyhow::Context;
use chrono::{DateTime, Utc};
use id77_platform::auth::{Caller, Claims, Role};
use id77_platform::revocation::reason;
use id77_platform::{ServiceError, outbox, time};
use id77_proto::membership::v1::UserChanged;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

mod password;
mod revocation;

pub use password::{change_password, confirm_reset, request_reset};
use revocation::announce_revocation;

use super::demo::{check_demo_settings, demo_accounts};
use super::domain::{self as policy, InviteTarget, audit};
use super::store::{self, Audit, NewUser, UserRow};
use super::throttle::{self, Refusal};
use super::{crypto, keys};
use crate::domain::MemberStatus;
use crate::error::{IdentityError, MembershipError};
use crate::mail;
use crate::store as member_store;

/// Advisory lock (transaction-scoped) serializing the start-up provisioning of accounts across replicas.
const PROVISION_LOCK: i64 = 0x1d77_0b0b_0002;

/// The tokens of a session: a signed access token and an opaque refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

/// A sign-in attempt, as the client sent it.
#[derive(Debug, Clone, Copy)]
pub struct Login<'a> {
    pub email: &'a str,
    pub password: &'a str,
    /// The client's address, as the gateway saw it.
    pub client: &'a str,
}

/// Why a login gave no tokens.
#[derive(Debug, Clone)]
pub enum LoginError {
    /// Refused before the password was checked: too soon after failures.
    TooSoon(Refusal),
    Failed(ServiceError),
}

impl From<ServiceError> for LoginError {
    fn from(error: ServiceError) -> Self {
        Self::Failed(error)
    }
}

/// A login, throttled (see [`throttle`]): refused before the password is checked while its address, or for a
/// new address the account, must wait; every failure counted, a success forgetting its address's failures.
pub async fn throttled_login(pool: &PgPool, attempt: Login<'_>) -> Result<Tokens, LoginError> {
    let key = throttle::Key::new(attempt.email, attempt.client);
    if let Err(refusal) = throttle::admit(pool, &key, time::now()).await.map_err(ServiceError::from)? {
        tracing::info!(client = %key.client, account_wide = refusal.account_wide, "login refused: too soon");
        return Err(LoginError::TooSoon(refusal));
    }
    let result = login(pool, attempt).await;
    let recorded = match &result {
        Ok(_) => throttle::succeeded(pool, &key, time::now()).await,
        Err(e) if e.code == id77_platform::ErrorCode::Unauthenticated => {
            throttle::failed(pool, &key, time::now()).await
        }
        Err(_) => Ok(()),
    };
    if let Err(error) = recorded {
        tracing::error!(%error, client = %key.client, "recording a login for throttling");
    }
    result.map_err(LoginError::Failed)
}

/// A login (unthrottled): one argon2 verification whatever the account, one answer for every failure, each
/// failure and the success audited.
async fn login(pool: &PgPool, attempt: Login<'_>) -> Result<Tokens, ServiceError> {
    if attempt.email.trim().is_empty() || attempt.password.is_empty() {
        return Err(ServiceError::invalid("email", "and password are required"));
    }
    if attempt.email.len() > 320 {
        return Err(ServiceError::invalid("email", "is longer than any email address"));
    }
    if attempt.password.len() > policy::MAX_LOGIN_PASSWORD_BYTES {
        return Err(ServiceError::invalid("password", "is longer than any password accepted"));
    }
    let client = policy::clean_client(attempt.client);
    let email = attempt.email.trim().to_lowercase();
    let found = if id77_platform::validate::is_plausible_email(&email) {
        store::user_by_email(pool, &email).await?
    } else {
        None
    };
    // Always one argon2 verification, against a dummy hash when there is no usable one.
    let usable = found.as_ref().filter(|u| u.active).and_then(|u| u.password_hash.as_deref());
    let matches = crypto::verify_password(attempt.password, usable.unwrap_or(crypto::DUMMY_HASH)).await?;
    let subject: String = email.chars().take(254).collect();
    let failed = |actor: Option<Uuid>, detail: &'static str| Audit {
        kind: audit::LOGIN_FAILED,
        actor_user_id: actor,
        subject: &subject,
        client: &client,
        detail,
    };
    let user = match found {
        Some(user) if user.active && user.password_hash.is_some() => user,
        other => {
            let detail = if other.is_some() { "inactive account" } else { "unknown account" };
            let mut conn = pool.acquire().await?;
            store::audit(&mut conn, &failed(other.map(|u| u.id), detail)).await?;
            return Err(IdentityError::BadCredentials.into());
        }
    };
    let now = time::now();
    let mut tx = pool.begin().await?;
    let current = store::user_for_update(&mut tx, user.id).await?.filter(UserRow::is_live);
    let Some(current) = current else {
        store::audit(&mut tx, &failed(Some(user.id), "removed account")).await?;
        tx.commit().await?;
        return Err(IdentityError::BadCredentials.into());
    };
    if !matches {
        store::audit(&mut tx, &failed(Some(user.id), "wrong password")).await?;
        tx.commit().await?;
        return Err(IdentityError::BadCredentials.into());
    }
    let tokens = start_session(&mut tx, &current, now).await?;
    let event = Audit {
        kind: audit::LOGIN_SUCCEEDED,
        actor_user_id: Some(user.id),
        subject: &subject,
        client: &client,
        detail: &current.role,
    };
    store::audit(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(tokens)
}

/// Trades a refresh token for new tokens of its session (rotation). A token presented twice revokes its whole
/// session (`access.revoked`), a removed account's session ends.
pub async fn refresh(pool: &PgPool, token: &str, client: &str) -> Result<Tokens, ServiceError> {
    let client = policy::clean_client(client);
    let hash = crypto::hash_opaque_token(token);
    let now = time::now();
    let mut tx = pool.begin().await?;
    let Some(found) = store::refresh_token(&mut tx, &hash).await? else {
        return Err(IdentityError::BadRefreshToken.into());
    };
    // Every change to a family happens under its lock; read the token again under it.
    let family = store::family_for_update(&mut tx, found.family_id).await?;
    let Some(family) = family.filter(|f| f.revoked_at.is_none()) else {
        return Err(IdentityError::BadRefreshToken.into());
    };
    let Some(found) = store::refresh_token(&mut tx, &hash).await? else {
        return Err(IdentityError::BadRefreshToken.into());
    };
    if found.used_at.is_some() {
        store::revoke_family(&mut tx, family.id, now, "refresh token reuse").await?;
        announce_revocation(&mut tx, family.user_id, Some(family.id), reason::REFRESH_TOKEN_REUSE, now).await?;
        let subject = family.id.to_string();
        let event = Audit {
            kind: audit::TOKEN_REUSE_DETECTED,
            actor_user_id: Some(family.user_id),
            subject: &subject,
            client: &client,
            detail: "an already used refresh token was presented: the session is revoked",
        };
        store::audit(&mut tx, &event).await?;
        tx.commit().await?;
        tracing::warn!(user_id = %family.user_id, session = %family.id, %client, "refresh token reuse: session revoked");
        return Err(IdentityError::BadRefreshToken.into());
    }
    if found.expires_at <= now {
        return Err(IdentityError::BadRefreshToken.into());
    }
    // The account as it is now: a changed role shows in the new access token; a removed account ends here.
    let user = store::user_by_id(&mut tx, family.user_id).await?.filter(UserRow::is_live);
    let Some(user) = user else {
        store::revoke_family(&mut tx, family.id, now, "account removed").await?;
        tx.commit().await?;
        return Err(IdentityError::BadRefreshToken.into());
    };
    store::mark_refresh_token_used(&mut tx, &hash, now).await?;
    let refresh = new_refresh_token(&mut tx, family.id, now).await?;
    let access = access_token(&mut tx, &user, family.id, now).await?;
    tx.commit().await?;
    Ok(Tokens { access, refresh })
}

/// Logout: the session of a refresh token ends, its access tokens too, everywhere (once: a second logout has
/// nothing left to end). An unknown token is not an error (like RFC 7009).
pub async fn logout(pool: &PgPool, token: &str) -> Result<(), ServiceError> {
    let hash = crypto::hash_opaque_token(token);
    let mut tx = pool.begin().await?;
    if let Some(found) = store::refresh_token(&mut tx, &hash).await?
        && let Some(family) = store::family_for_update(&mut tx, found.family_id).await?
    {
        let now = time::now();
        store::revoke_family(&mut tx, family.id, now, "logout").await?;
        if family.revoked_at.is_none() {
            announce_revocation(&mut tx, family.user_id, Some(family.id), reason::LOGOUT, now).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// The operator rotates the signing key; returns the new key's id.
pub async fn rotate_signing_key(pool: &PgPool, caller: &Caller) -> Result<String, ServiceError> {
    let mut tx = pool.begin().await?;
    store::live_user(&mut tx, caller).await?;
    let kid = keys::rotate(&mut tx, time::now()).await?;
    let event = Audit {
        kind: audit::SIGNING_KEY_ROTATED,
        actor_user_id: Some(caller.user_id),
        subject: &kid,
        ..Default::default()
    };
    store::audit(&mut tx, &event).await?;
    tx.commit().await?;
    tracing::info!(%kid, "signing key rotated");
    Ok(kid)
}

/// Who is invited, once the caller may invite them.
#[derive(Debug, Clone)]
pub struct Invitee {
    pub target: InviteTarget,
    pub email: String,
    pub display_name: String,
}

/// An invitation: the inactive account and the token (shown once) that activates it.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub user: UserRow,
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Creates an inactive account (of an active member, if a member's) and its invitation.
pub async fn invite(pool: &PgPool, caller: &Caller, invitee: Invitee) -> Result<Invitation, ServiceError> {
    let Invitee { target, email, display_name } = invitee;
    let now = time::now();
    let mut tx = pool.begin().await?;
    store::live_user(&mut tx, caller).await?;
    if let Some(member_id) = target.member_id {
        let member = member_store::member_for_update(&mut tx, member_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("member", &member_id.to_string()))?;
        if MemberStatus::parse(&member.status) != Some(MemberStatus::Active) {
            return Err(MembershipError::MemberNotActive { name: member.name, status: member.status }.into());
        }
    }
    let new = NewUser {
        id: Uuid::now_v7(),
        email: &email,
        display_name: &display_name,
        role: target.role.as_str(),
        member_id: target.member_id,
        provider_code: target.provider_code.as_deref(),
        password_hash: None,
        active: false,
        created_at: now,
    };
    let user = match store::insert_user(&mut tx, &new).await {
        Ok(user) => user,
        Err(e) if store::is_unique_violation(&e) => return Err(IdentityError::EmailTaken.into()),
        Err(e) => return Err(e.into()),
    };
    let (token, hash) = crypto::new_opaque_token()?;
    let expires_at = now + policy::invitation_ttl();
    store::insert_invitation(&mut tx, &hash, user.id, Some(caller.user_id), now, expires_at).await?;
    queue_invitation_mail(&mut tx, &user, caller.display_name(), &token, now).await?;
    announce_users(&mut tx).await?;
    let subject = user.id.to_string();
    let scope = match (&target.member_id, &target.provider_code) {
        (Some(m), _) => format!(" of member {m}"),
        (_, Some(p)) => format!(" of provider {p}"),
        _ => String::new(),
    };
    let detail = format!("{email} as {}{scope}", target.role.as_str());
    let event = Audit {
        kind: audit::USER_INVITED,
        actor_user_id: Some(caller.user_id),
        subject: &subject,
        detail: &detail,
        ..Default::default()
    };
    store::audit(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(Invitation { user, token, expires_at })
}

/// The invitation mail (in the invitation's transaction): a link to the portal's activation page with the token.
async fn queue_invitation_mail(
    conn: &mut PgConnection,
    user: &UserRow,
    inviter: &str,
    token: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let body = format!(
        "Bonjour {},\n\n{inviter} vous a créé un compte sur ID 77, le portail de l'ingénierie départementale de \
         Seine-et-Marne (identifiant : {}).\n\nPour l'activer, ouvrez ce lien et choisissez votre mot de passe \
         (il est valable 7 jours et ne sert qu'une fois) :",
        user.display_name, user.email
    );
    let link = format!("/activer?code={}", mail::query_value(token));
    let mail = mail::Mail {
        email: &user.email,
        kind: mail::kind::INVITATION,
        subject: "Activez votre compte ID 77",
        body: &body,
        link_path: &link,
        at: now,
    };
    mail::queue(conn, &mail).await
}

/// Accepting an invitation sets the account's password (within the policy), activates it and opens its first
/// session.
pub async fn accept(pool: &PgPool, token: &str, password: &str) -> Result<Tokens, ServiceError> {
    let hash = crypto::hash_opaque_token(token);
    let usable = |now: DateTime<Utc>| move |i: &store::InvitationRow| i.used_at.is_none() && i.expires_at > now;
    // Check the password against the invitee's email before spending a hash on it.
    let user = {
        let mut conn = pool.acquire().await?;
        let invitation = store::invitation(&mut conn, &hash).await?.filter(usable(time::now()));
        let Some(invitation) = invitation else { return Err(IdentityError::BadInvitation.into()) };
        store::user_by_id(&mut conn, invitation.user_id).await?.filter(|u| u.removed_at.is_none())
    };
    let Some(user) = user else { return Err(IdentityError::BadInvitation.into()) };
    policy::check_password("password", password, &user.email)?;
    let password_hash = crypto::hash_password(password).await?;
    let now = time::now();
    let mut tx = pool.begin().await?;
    let invitation = store::invitation_for_update(&mut tx, &hash).await?.filter(usable(now));
    let Some(invitation) = invitation else { return Err(IdentityError::BadInvitation.into()) };
    let user = store::user_for_update(&mut tx, invitation.user_id).await?.filter(|u| u.removed_at.is_none());
    let Some(mut user) = user else { return Err(IdentityError::BadInvitation.into()) };
    store::mark_invitation_used(&mut tx, &hash, now).await?;
    store::activate_user(&mut tx, user.id, &password_hash).await?;
    announce_users(&mut tx).await?;
    user.active = true;
    user.password_hash = Some(password_hash);
    let tokens = start_session(&mut tx, &user, now).await?;
    let subject = user.id.to_string();
    let event = Audit {
        kind: audit::USER_ACTIVATED,
        actor_user_id: Some(user.id),
        subject: &subject,
        detail: &user.email,
        ..Default::default()
    };
    store::audit(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(tokens)
}

/// Removes an account the caller manages: its sessions end, its access tokens stop working everywhere, and a
/// referent leaves the members it followed.
pub async fn remove_user(pool: &PgPool, caller: &Caller, id: Uuid) -> Result<(), ServiceError> {
    let now = time::now();
    let mut tx = pool.begin().await?;
    // A member's removals are serialized on the member (two admins removing each other leave one).
    if let Some(member_id) = caller.member_id {
        member_store::member_for_update(&mut tx, member_id).await?;
    }
    store::live_user(&mut tx, caller).await?;
    let target = store::user_for_update(&mut tx, id)
        .await?
        .filter(|u| u.removed_at.is_none())
        .ok_or_else(|| ServiceError::not_found("user", &id.to_string()))?;
    let role = target.typed_role()?;
    policy::authorize_remove(caller, target.id, role, target.member_id)?;
    if role == Role::MemberAdmin
        && target.active
        && let Some(member_id) = target.member_id
        && store::member_admins(&mut tx, member_id).await? <= 1
    {
        return Err(IdentityError::LastAdmin.into());
    }
    store::remove_user(&mut tx, id, now).await?;
    announce_users(&mut tx).await?;
    let sessions = store::revoke_user_families(&mut tx, id, now, "account removed").await?;
    // Every access token of the account stops working everywhere, whatever its session.
    announce_revocation(&mut tx, id, None, reason::ACCOUNT_REMOVED, now).await?;
    if role == Role::Referent {
        crate::flow::forget_referent(&mut tx, id, now).await?;
    }
    let subject = id.to_string();
    let detail = format!("{} ({}); {sessions} session(s) revoked", target.email, target.role);
    let event = Audit {
        kind: audit::USER_REMOVED,
        actor_user_id: Some(caller.user_id),
        subject: &subject,
        detail: &detail,
        ..Default::default()
    };
    store::audit(&mut tx, &event).await?;
    tx.commit().await?;
    Ok(())
}

/// Announces (`user.changed`) every account not announced yet: at start-up, the accounts that existed before
/// announcements did, and any change a write path left unannounced.
pub async fn announce_pending_users(pool: &PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let count = announce_users(&mut tx).await.context("announcing accounts")?;
    tx.commit().await?;
    if count > 0 {
        tracing::info!(count, "accounts announced (user.changed)");
    }
    Ok(())
}

/// Makes the demo accounts exist, active, with `password` (idempotent; re-run at every start).
pub async fn ensure_demo_accounts(pool: &PgPool, password: &str, providers: &[String]) -> anyhow::Result<()> {
    check_demo_settings(password, providers)?;
    // One hash for all of them: start-up stays fast, and these accounts share their password anyway.
    let hash = crypto::hash_password(password).await.map_err(|e| anyhow::anyhow!("hashing the demo password: {e}"))?;
    let accounts = demo_accounts(providers);
    let now = time::now();
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PROVISION_LOCK).execute(&mut *tx).await?;
    for account in &accounts {
        let user = NewUser {
            id: Uuid::now_v7(),
            email: &account.email,
            display_name: &account.display_name,
            role: account.role.as_str(),
            member_id: None,
            provider_code: account.provider_code.as_deref(),
            password_hash: Some(&hash),
            active: true,
            created_at: now,
        };
        store::upsert_active_user(&mut tx, &user).await.with_context(|| format!("demo account {}", account.email))?;
    }
    announce_users(&mut tx).await?;
    tx.commit().await?;
    tracing::info!(accounts = accounts.len(), "demo accounts ready");
    Ok(())
}

/// When no operator account exists, creates one for `email`, inactive, and logs its invitation token once:
/// accepting it sets the operator's password. Returns the token when it created the account.
pub async fn bootstrap_operator(pool: &PgPool, email: &str) -> anyhow::Result<Option<String>> {
    let email = policy::normalize_email("email", email)
        .map_err(|_| anyhow::anyhow!("ID77_BOOTSTRAP_OPERATOR_EMAIL={email:?} is not an email address"))?;
    let now = time::now();
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PROVISION_LOCK).execute(&mut *tx).await?;
    if store::operator_exists(&mut tx).await? {
        return Ok(None);
    }
    let user = NewUser {
        id: Uuid::now_v7(),
        email: &email,
        display_name: "Opérateur",
        role: Role::Operator.as_str(),
        member_id: None,
        provider_code: None,
        password_hash: None,
        active: false,
        created_at: now,
    };
    store::insert_user(&mut tx, &user)
        .await
        .with_context(|| format!("creating the bootstrap operator {email} (is the email already taken?)"))?;
    let (token, hash) = crypto::new_opaque_token().map_err(|e| anyhow::anyhow!("{e}"))?;
    let expires_at = now + policy::invitation_ttl();
    store::insert_invitation(&mut tx, &hash, user.id, None, now, expires_at).await?;
    let subject = user.id.to_string();
    let detail = format!("{email} as operator (bootstrap)");
    let event = Audit { kind: audit::USER_INVITED, subject: &subject, detail: &detail, ..Default::default() };
    store::audit(&mut tx, &event).await?;
    announce_users(&mut tx).await?;
    tx.commit().await?;
    tracing::warn!(
        %email,
        invitation_token = %token,
        expires_at = %expires_at.to_rfc3339(),
        "no operator account: created one; accept this invitation (AcceptInvitation) to set its password. Shown once."
    );
    Ok(Some(token))
}

/// Publishes `user.changed` (in the caller's transaction) for every account changed since it was last announced,
/// and marks them announced. Accounts another transaction holds are left to it (it announces them itself before
/// it commits). Returns how many were announced.
async fn announce_users(conn: &mut PgConnection) -> Result<usize, sqlx::Error> {
    let rows = store::unannounced_users(conn).await?;
    let now = time::now();
    for row in &rows {
        let event = UserChanged {
            user_id: row.id.to_string(),
            email: row.email.clone(),
            display_name: row.display_name.clone(),
            role: row.role.clone(),
            member_id: row.member_id.map(|m| m.to_string()).unwrap_or_default(),
            provider_code: row.provider_code.clone().unwrap_or_default(),
            active: row.active && !row.removed,
            version: row.version,
            occurred_at: Some(time::to_proto(now)),
        };
        outbox::enqueue(conn, &event).await?;
        store::mark_announced(conn, row.id, row.version).await?;
    }
    Ok(rows.len())
}

/// A new session (refresh-token family) for the account, and its first tokens.
pub(super) async fn start_session(
    conn: &mut PgConnection,
    user: &UserRow,
    now: DateTime<Utc>,
) -> Result<Tokens, ServiceError> {
    let family = Uuid::now_v7();
    store::insert_family(conn, family, user.id, now).await?;
    let refresh = new_refresh_token(conn, family, now).await?;
    let access = access_token(conn, user, family, now).await?;
    Ok(Tokens { access, refresh })
}

async fn new_refresh_token(conn: &mut PgConnection, family: Uuid, now: DateTime<Utc>) -> Result<String, ServiceError> {
    let (token, hash) = crypto::new_opaque_token()?;
    store::insert_refresh_token(conn, &hash, family, now, now + policy::refresh_token_ttl()).await?;
    Ok(token)
}

/// Signs an access token for the account, in session `sid`.
async fn access_token(
    conn: &mut PgConnection,
    user: &UserRow,
    sid: Uuid,
    now: DateTime<Utc>,
) -> Result<String, ServiceError> {
    let role = user.typed_role()?;
    let key = keys::signing_key(conn).await?;
    let mut claims = Claims::new(user.id, role, now.timestamp());
    if role.is_member_role() {
        claims.member_id = user.member_id.map(|m| m.to_string());
        claims.siren = user.member_siren.as_ref().map(|s| s.trim().to_owned());
    }
    if role == Role::ProviderAgent {
        claims.provider_code = user.provider_code.clone();
    }
    claims.email = user.email.clone();
    claims.name = user.display_name.clone();
    claims.sid = sid.to_string();
    Ok(key.sign(&claims))
}
