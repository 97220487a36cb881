//! `IdentityService`: logins, sessions, signing keys, accounts, referents and the audit log.
//!
//! Public RPCs (IssueToken, RefreshToken, RevokeToken, GetJwks, AcceptInvitation) need no token, but refuse an
//! invalid one; the others need a valid access token and follow docs/authorization.md.

use chrono::{DateTime, Utc};
use id77_platform::auth::{ACCESS_TOKEN_TTL, Caller, Claims, Role, unauthenticated};
use id77_platform::revocation::reason;
use id77_platform::{ErrorCode, ServiceError, outbox, page, time};
use id77_proto::membership::v1 as pb;
use id77_proto::membership::v1::identity_service_server::IdentityService;
use sqlx::{PgConnection, PgPool};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::crypto;
use super::domain::{self as policy, audit};
use super::keys::{self, LocalAuthenticator};
use super::store::{self, Audit, NewUser, UserRow};
use super::throttle;
use crate::domain::MemberStatus;
use crate::grpc::{SUBJECT_UPDATED, member_to_proto, parse_id};
use crate::store as member_store;

/// The one answer to a failed login, whatever the reason (unknown email, wrong password, inactive or removed
/// account), so that accounts cannot be probed.
pub fn bad_credentials() -> ServiceError {
    ServiceError::new(ErrorCode::Unauthenticated, "UNAUTHENTICATED", "invalid email or password")
}

fn bad_refresh_token() -> ServiceError {
    ServiceError::new(ErrorCode::Unauthenticated, "UNAUTHENTICATED", "invalid or expired refresh token")
}

fn bad_invitation() -> ServiceError {
    ServiceError::new(ErrorCode::Unauthenticated, "UNAUTHENTICATED", "invalid, used or expired invitation")
}

pub fn role_to_proto(role: Role) -> pb::Role {
    match role {
        Role::MemberAdmin => pb::Role::MemberAdmin,
        Role::MemberUser => pb::Role::MemberUser,
        Role::ProviderAgent => pb::Role::ProviderAgent,
        Role::Coordinator => pb::Role::Coordinator,
        Role::Referent => pb::Role::Referent,
        Role::Operator => pb::Role::Operator,
    }
}

pub fn role_from_proto(role: i32) -> Result<Role, ServiceError> {
    match pb::Role::try_from(role) {
        Ok(pb::Role::MemberAdmin) => Ok(Role::MemberAdmin),
        Ok(pb::Role::MemberUser) => Ok(Role::MemberUser),
        Ok(pb::Role::ProviderAgent) => Ok(Role::ProviderAgent),
        Ok(pb::Role::Coordinator) => Ok(Role::Coordinator),
        Ok(pb::Role::Referent) => Ok(Role::Referent),
        Ok(pb::Role::Operator) => Ok(Role::Operator),
        Ok(pb::Role::Unspecified) => Err(ServiceError::invalid("role", "is required")),
        Err(_) => Err(ServiceError::invalid("role", "is not a known role")),
    }
}

fn role_of(user: &UserRow) -> Result<Role, ServiceError> {
    Role::parse(&user.role).ok_or_else(|| ServiceError::internal("reading an account", format!("role {}", user.role)))
}

fn user_to_proto(user: &UserRow) -> pb::User {
    pb::User {
        id: user.id.to_string(),
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        role: Role::parse(&user.role).map(role_to_proto).unwrap_or(pb::Role::Unspecified).into(),
        member_id: user.member_id.map(|m| m.to_string()).unwrap_or_default(),
        provider_code: user.provider_code.clone().unwrap_or_default(),
        active: user.active && user.removed_at.is_none(),
        created_at: Some(time::to_proto(user.created_at)),
    }
}

/// A trimmed field, `None` when empty.
fn optional(raw: &str) -> Option<&str> {
    Some(raw.trim()).filter(|s| !s.is_empty())
}

fn optional_id(field: &str, raw: &str) -> Result<Option<Uuid>, ServiceError> {
    optional(raw).map(|id| parse_id(field, id)).transpose()
}

/// An opaque token from a request: required, and no longer than any token this service issues.
fn opaque<'a>(field: &str, raw: &'a str, too_long: fn() -> ServiceError) -> Result<&'a str, ServiceError> {
    let token = raw.trim();
    if token.is_empty() {
        return Err(ServiceError::invalid(field, "is required"));
    }
    if token.len() > policy::MAX_OPAQUE_TOKEN_BYTES {
        return Err(too_long());
    }
    Ok(token)
}

/// The live account behind a token: a removed (or never activated) account's access tokens stop working for
/// everything that reads or changes accounts, even before they expire.
async fn live_user(conn: &mut PgConnection, caller: &Caller) -> Result<UserRow, ServiceError> {
    store::user_by_id(conn, caller.user_id)
        .await?
        .filter(|u| u.active && u.removed_at.is_none())
        .ok_or_else(|| unauthenticated("the account no longer exists"))
}

/// Signs an access token for the account, in session `sid`.
async fn access_token(
    conn: &mut PgConnection,
    user: &UserRow,
    sid: Uuid,
    now: DateTime<Utc>,
) -> Result<String, ServiceError> {
    let role = role_of(user)?;
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

async fn new_refresh_token(conn: &mut PgConnection, family: Uuid, now: DateTime<Utc>) -> Result<String, ServiceError> {
    let (token, hash) = crypto::new_opaque_token()?;
    store::insert_refresh_token(conn, &hash, family, now, now + policy::refresh_token_ttl()).await?;
    Ok(token)
}

fn token_pair(access_token: String, refresh_token: String) -> pb::TokenPair {
    pb::TokenPair {
        access_token,
        token_type: "Bearer".into(),
        expires_in: ACCESS_TOKEN_TTL.as_secs() as i64,
        refresh_token,
        refresh_expires_in: policy::refresh_token_ttl().num_seconds(),
    }
}

/// A new session (refresh-token family) for the account, and its first tokens.
async fn start_session(
    conn: &mut PgConnection,
    user: &UserRow,
    now: DateTime<Utc>,
) -> Result<pb::TokenPair, ServiceError> {
    let family = Uuid::now_v7();
    store::insert_family(conn, family, user.id, now).await?;
    let refresh = new_refresh_token(conn, family, now).await?;
    let access = access_token(conn, user, family, now).await?;
    Ok(token_pair(access, refresh))
}

/// Accounts, sessions and keys.
pub struct IdentityApi {
    pool: PgPool,
    auth: LocalAuthenticator,
}

impl IdentityApi {
    pub fn new(pool: PgPool, auth: LocalAuthenticator) -> Self {
        Self { pool, auth }
    }

    async fn record(&self, event: &Audit<'_>) -> Result<(), ServiceError> {
        let mut conn = self.pool.acquire().await?;
        store::audit(&mut conn, event).await.map_err(Into::into)
    }

    /// A login, throttled (see [`throttle`]): refused before the password is checked while its address, or for a
    /// new address the account, must wait; every failure counted, a success forgetting its address's failures.
    async fn throttled_login(&self, req: pb::IssueTokenRequest) -> Result<pb::TokenPair, Status> {
        let key = throttle::Key::new(&req.email, &req.client);
        let now = time::now();
        if let Err(refusal) = throttle::admit(&self.pool, &key, now).await.map_err(ServiceError::from)? {
            tracing::info!(client = %key.client, account_wide = refusal.account_wide, "login refused: too soon");
            return Err(refusal.into());
        }
        let result = self.issue_token(req).await;
        let recorded = match &result {
            Ok(_) => throttle::succeeded(&self.pool, &key, time::now()).await,
            Err(e) if e.code == ErrorCode::Unauthenticated => throttle::failed(&self.pool, &key, time::now()).await,
            Err(_) => Ok(()),
        };
        if let Err(error) = recorded {
            tracing::error!(%error, client = %key.client, "recording a login for throttling");
        }
        result.map_err(Status::from)
    }

    async fn issue_token(&self, req: pb::IssueTokenRequest) -> Result<pb::TokenPair, ServiceError> {
        if req.email.trim().is_empty() || req.password.is_empty() {
            return Err(ServiceError::invalid("email", "and password are required"));
        }
        if req.email.len() > 320 {
            return Err(ServiceError::invalid("email", "is longer than any email address"));
        }
        if req.password.len() > policy::MAX_LOGIN_PASSWORD_BYTES {
            return Err(ServiceError::invalid("password", "is longer than any password accepted"));
        }
        let client = policy::clean_client(&req.client);
        let email = req.email.trim().to_lowercase();
        let found = if id77_platform::validate::is_plausible_email(&email) {
            store::user_by_email(&self.pool, &email).await?
        } else {
            None
        };
        // Always one argon2 verification, against a dummy hash when there is no usable one.
        let usable = found.as_ref().filter(|u| u.active).and_then(|u| u.password_hash.as_deref());
        let matches = crypto::verify_password(&req.password, usable.unwrap_or(crypto::DUMMY_HASH)).await?;
        let failed = |actor: Option<Uuid>, detail: &'static str| Audit {
            kind: audit::LOGIN_FAILED,
            actor_user_id: actor,
            subject: "",
            client: "",
            detail,
        };
        let subject: String = email.chars().take(254).collect();
        let user = match found {
            Some(user) if user.active && user.password_hash.is_some() => user,
            other => {
                let detail = if other.is_some() { "inactive account" } else { "unknown account" };
                let event = Audit { subject: &subject, client: &client, ..failed(other.map(|u| u.id), detail) };
                self.record(&event).await?;
                return Err(bad_credentials());
            }
        };
        let now = time::now();
        let mut tx = self.pool.begin().await?;
        let current = store::user_for_update(&mut tx, user.id).await?.filter(|u| u.active && u.removed_at.is_none());
        let Some(current) = current else {
            let event = Audit { subject: &subject, client: &client, ..failed(Some(user.id), "removed account") };
            store::audit(&mut tx, &event).await?;
            tx.commit().await?;
            return Err(bad_credentials());
        };
        if !matches {
            let event = Audit { subject: &subject, client: &client, ..failed(Some(user.id), "wrong password") };
            store::audit(&mut tx, &event).await?;
            tx.commit().await?;
            return Err(bad_credentials());
        }
        let pair = start_session(&mut tx, &current, now).await?;
        let event = Audit {
            kind: audit::LOGIN_SUCCEEDED,
            actor_user_id: Some(user.id),
            subject: &subject,
            client: &client,
            detail: &current.role,
        };
        store::audit(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(pair)
    }

    async fn refresh_token(&self, req: pb::RefreshTokenRequest) -> Result<pb::TokenPair, ServiceError> {
        let token = opaque("refresh_token", &req.refresh_token, bad_refresh_token)?;
        let client = policy::clean_client(&req.client);
        let hash = crypto::hash_opaque_token(token);
        let now = time::now();
        let mut tx = self.pool.begin().await?;
        let Some(found) = store::refresh_token(&mut tx, &hash).await? else {
            return Err(bad_refresh_token());
        };
        // Every change to a family happens under its lock; read the token again under it.
        let family = store::family_for_update(&mut tx, found.family_id).await?;
        let Some(family) = family.filter(|f| f.revoked_at.is_none()) else {
            return Err(bad_refresh_token());
        };
        let Some(found) = store::refresh_token(&mut tx, &hash).await? else {
            return Err(bad_refresh_token());
        };
        if found.used_at.is_some() {
            store::revoke_family(&mut tx, family.id, now, "refresh token reuse").await?;
            store::announce_revocation(&mut tx, family.user_id, Some(family.id), reason::REFRESH_TOKEN_REUSE, now)
                .await?;
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
            return Err(bad_refresh_token());
        }
        if found.expires_at <= now {
            return Err(bad_refresh_token());
        }
        // The account as it is now: a changed role shows in the new access token; a removed account ends here.
        let user = store::user_by_id(&mut tx, family.user_id).await?.filter(|u| u.active && u.removed_at.is_none());
        let Some(user) = user else {
            store::revoke_family(&mut tx, family.id, now, "account removed").await?;
            tx.commit().await?;
            return Err(bad_refresh_token());
        };
        store::mark_refresh_token_used(&mut tx, &hash, now).await?;
        let refresh = new_refresh_token(&mut tx, family.id, now).await?;
        let access = access_token(&mut tx, &user, family.id, now).await?;
        tx.commit().await?;
        Ok(token_pair(access, refresh))
    }

    async fn revoke_token(&self, req: pb::RevokeTokenRequest) -> Result<pb::RevokeTokenResponse, ServiceError> {
        // Like RFC 7009: an unknown token is not an error (there is nothing left to revoke).
        let Ok(token) = opaque("refresh_token", &req.refresh_token, bad_refresh_token) else {
            return Ok(pb::RevokeTokenResponse {});
        };
        let hash = crypto::hash_opaque_token(token);
        let mut tx = self.pool.begin().await?;
        if let Some(found) = store::refresh_token(&mut tx, &hash).await?
            && let Some(family) = store::family_for_update(&mut tx, found.family_id).await?
        {
            let now = time::now();
            store::revoke_family(&mut tx, family.id, now, "logout").await?;
            // The session's access tokens end too, everywhere (once: a second logout has nothing left to end).
            if family.revoked_at.is_none() {
                store::announce_revocation(&mut tx, family.user_id, Some(family.id), reason::LOGOUT, now).await?;
            }
        }
        tx.commit().await?;
        Ok(pb::RevokeTokenResponse {})
    }

    async fn jwks(&self) -> Result<pb::Jwks, ServiceError> {
        let jwks =
            keys::published(&self.pool, Utc::now()).await.map_err(|e| ServiceError::internal("reading the keys", e))?;
        let json = serde_json::to_string(&jwks).map_err(|e| ServiceError::internal("encoding the keys", e))?;
        Ok(pb::Jwks { json })
    }

    async fn rotate_key(&self, caller: &Caller) -> Result<pb::RotateSigningKeyResponse, ServiceError> {
        caller.require_any(&[Role::Operator])?;
        let mut tx = self.pool.begin().await?;
        live_user(&mut tx, caller).await?;
        let kid = keys::rotate(&mut tx, time::now()).await?;
        let event = Audit {
            kind: audit::SIGNING_KEY_ROTATED,
            actor_user_id: Some(caller.user_id),
            subject: &kid,
            ..Default::default()
        };
        store::audit(&mut tx, &event).await?;
        tx.commit().await?;
        self.auth.keys_changed();
        tracing::info!(%kid, "signing key rotated");
        Ok(pb::RotateSigningKeyResponse { kid })
    }

    async fn me(&self, caller: &Caller) -> Result<pb::Me, ServiceError> {
        let mut conn = self.pool.acquire().await?;
        let user = live_user(&mut conn, caller).await?;
        let mut referent = None;
        if role_of(&user)?.is_member_role()
            && let Some(member_id) = user.member_id
            && let Some(referent_id) =
                member_store::get_member(&self.pool, member_id).await?.and_then(|m| m.referent_user_id)
            && let Some(r) = store::user_by_id(&mut conn, referent_id).await?.filter(|r| r.removed_at.is_none())
        {
            referent = Some(pb::Referent { user_id: r.id.to_string(), display_name: r.display_name, email: r.email });
        }
        Ok(pb::Me { user: Some(user_to_proto(&user)), referent })
    }

    async fn invite(&self, caller: &Caller, req: pb::InviteUserRequest) -> Result<pb::Invitation, ServiceError> {
        caller.require_any(&[Role::MemberAdmin, Role::Coordinator, Role::Operator])?;
        let role = role_from_proto(req.role)?;
        let member_id = optional_id("member_id", &req.member_id)?;
        let target = policy::authorize_invite(caller, role, member_id, optional(&req.provider_code))?;
        let email = policy::normalize_email("email", &req.email)?;
        let display_name = policy::normalize_display_name(&req.display_name)?;
        let now = time::now();
        let mut tx = self.pool.begin().await?;
        live_user(&mut tx, caller).await?;
        if let Some(member_id) = target.member_id {
            let member = member_store::member_for_update(&mut tx, member_id)
                .await?
                .ok_or_else(|| ServiceError::not_found("member", &member_id.to_string()))?;
            if MemberStatus::parse(&member.status) != Some(MemberStatus::Active) {
                return Err(ServiceError::new(
                    ErrorCode::FailedPrecondition,
                    "MEMBER_NOT_ACTIVE",
                    format!("the membership of {} is {}", member.name, member.status),
                ));
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
            Err(e) if store::is_unique_violation(&e) => {
                return Err(ServiceError::new(
                    ErrorCode::AlreadyExists,
                    "ALREADY_EXISTS",
                    "an account already exists for this email",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        let (token, hash) = crypto::new_opaque_token()?;
        let expires_at = now + policy::invitation_ttl();
        store::insert_invitation(&mut tx, &hash, user.id, Some(caller.user_id), now, expires_at).await?;
        store::announce_users(&mut tx).await?;
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
        Ok(pb::Invitation {
            user: Some(user_to_proto(&user)),
            invitation_token: token,
            expires_at: Some(time::to_proto(expires_at)),
        })
    }

    async fn accept(&self, req: pb::AcceptInvitationRequest) -> Result<pb::TokenPair, ServiceError> {
        let token = opaque("invitation_token", &req.invitation_token, bad_invitation)?;
        if req.password.len() > policy::MAX_LOGIN_PASSWORD_BYTES {
            return Err(ServiceError::invalid("password", "must be 12 to 128 characters"));
        }
        let hash = crypto::hash_opaque_token(token);
        let usable = |now: DateTime<Utc>| move |i: &store::InvitationRow| i.used_at.is_none() && i.expires_at > now;
        // Check the password against the invitee's email before spending a hash on it.
        let user = {
            let mut conn = self.pool.acquire().await?;
            let invitation = store::invitation(&mut conn, &hash).await?.filter(usable(time::now()));
            let Some(invitation) = invitation else { return Err(bad_invitation()) };
            store::user_by_id(&mut conn, invitation.user_id).await?.filter(|u| u.removed_at.is_none())
        };
        let Some(user) = user else { return Err(bad_invitation()) };
        policy::check_password("password", &req.password, &user.email)?;
        let password_hash = crypto::hash_password(&req.password).await?;
        let now = time::now();
        let mut tx = self.pool.begin().await?;
        let invitation = store::invitation_for_update(&mut tx, &hash).await?.filter(usable(now));
        let Some(invitation) = invitation else { return Err(bad_invitation()) };
        let user = store::user_for_update(&mut tx, invitation.user_id).await?.filter(|u| u.removed_at.is_none());
        let Some(mut user) = user else { return Err(bad_invitation()) };
        store::mark_invitation_used(&mut tx, &hash, now).await?;
        store::activate_user(&mut tx, user.id, &password_hash).await?;
        store::announce_users(&mut tx).await?;
        user.active = true;
        user.password_hash = Some(password_hash);
        let pair = start_session(&mut tx, &user, now).await?;
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
        Ok(pair)
    }

    async fn list_users(
        &self,
        caller: &Caller,
        req: pb::ListUsersRequest,
    ) -> Result<pb::ListUsersResponse, ServiceError> {
        caller.require_any(&[Role::MemberAdmin, Role::Coordinator, Role::Operator])?;
        let member_id = optional_id("member_id", &req.member_id)?;
        let filter = policy::authorize_list_users(caller, member_id, optional(&req.provider_code))?;
        let after = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let roles = filter.roles.map(|roles| roles.iter().map(|r| r.as_str().to_owned()).collect());
        let rows =
            store::list_users(&self.pool, filter.member_id, filter.provider_code.as_deref(), roles, after, limit + 1)
                .await?;
        let (rows, next) = page::split(rows, limit, |u| page::encode(&(u.created_at, u.id)));
        Ok(pb::ListUsersResponse { users: rows.iter().map(user_to_proto).collect(), next_page_token: next })
    }

    async fn remove_user(
        &self,
        caller: &Caller,
        req: pb::RemoveUserRequest,
    ) -> Result<pb::RemoveUserResponse, ServiceError> {
        policy::may_remove_users(caller)?;
        let id = parse_id("user_id", &req.user_id)?;
        let now = time::now();
        let mut tx = self.pool.begin().await?;
        live_user(&mut tx, caller).await?;
        let target = store::user_for_update(&mut tx, id)
            .await?
            .filter(|u| u.removed_at.is_none())
            .ok_or_else(|| ServiceError::not_found("user", &id.to_string()))?;
        let role = role_of(&target)?;
        policy::authorize_remove(caller, target.id, role, target.member_id)?;
        store::remove_user(&mut tx, id, now).await?;
        store::announce_users(&mut tx).await?;
        let sessions = store::revoke_user_families(&mut tx, id, now, "account removed").await?;
        // Every access token of the account stops working everywhere, whatever its session.
        store::announce_revocation(&mut tx, id, None, reason::ACCOUNT_REMOVED, now).await?;
        if role == Role::Referent {
            // The members it followed have no referent any more; the other services learn it like an assignment.
            for member_id in member_store::clear_referent(&mut tx, id, now).await? {
                let territory = member_store::territory(&mut tx, member_id).await?;
                let event = member_updated(member_id, String::new(), territory, now);
                outbox::enqueue(&mut tx, SUBJECT_UPDATED, &event).await?;
            }
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
        Ok(pb::RemoveUserResponse {})
    }

    async fn assign_referent(
        &self,
        caller: &Caller,
        req: pb::AssignReferentRequest,
    ) -> Result<pb::Member, ServiceError> {
        caller.require_any(&[Role::Coordinator])?;
        let member_id = parse_id("member_id", &req.member_id)?;
        let referent = optional_id("referent_user_id", &req.referent_user_id)?;
        let now = time::now();
        let mut tx = self.pool.begin().await?;
        live_user(&mut tx, caller).await?;
        let member = member_store::member_for_update(&mut tx, member_id)
            .await?
            .ok_or_else(|| ServiceError::not_found("member", &member_id.to_string()))?;
        if let Some(referent) = referent {
            let user = store::user_by_id(&mut tx, referent)
                .await?
                .filter(|u| u.removed_at.is_none())
                .ok_or_else(|| ServiceError::not_found("user", &referent.to_string()))?;
            if user.role != Role::Referent.as_str() || !user.active {
                return Err(ServiceError::invalid("referent_user_id", "must be an active referent"));
            }
        }
        if member.referent_user_id == referent {
            return Ok(member_to_proto(member));
        }
        let member = member_store::set_referent(&mut tx, member_id, referent, now).await?;
        let referent_user_id = referent.map(|r| r.to_string()).unwrap_or_default();
        let territory = member_store::territory(&mut tx, member.id).await?;
        let event = member_updated(member.id, referent_user_id.clone(), territory, now);
        outbox::enqueue(&mut tx, SUBJECT_UPDATED, &event).await?;
        let subject = member.id.to_string();
        let detail =
            if referent_user_id.is_empty() { "no referent".to_owned() } else { format!("referent {referent_user_id}") };
        let event = Audit {
            kind: audit::REFERENT_ASSIGNED,
            actor_user_id: Some(caller.user_id),
            subject: &subject,
            detail: &detail,
            ..Default::default()
        };
        store::audit(&mut tx, &event).await?;
        tx.commit().await?;
        tracing::info!(member_id = %member.id, referent = %referent_user_id, "referent assigned");
        Ok(member_to_proto(member))
    }

    async fn audit_events(
        &self,
        caller: &Caller,
        req: pb::ListAuditEventsRequest,
    ) -> Result<pb::ListAuditEventsResponse, ServiceError> {
        caller.require_any(&[Role::Operator])?;
        let kind = optional(&req.kind);
        if let Some(kind) = kind
            && !audit::is_known(kind)
        {
            return Err(ServiceError::invalid("kind", "is not a known event kind"));
        }
        let before = page::decode(&req.page_token)?;
        let limit = page::size(req.page_size);
        let rows = store::list_audit(&self.pool, kind, before, limit + 1).await?;
        let (rows, next) = page::split(rows, limit, |e| page::encode(&(e.at, e.id)));
        let events = rows
            .into_iter()
            .map(|e| pb::AuditEvent {
                id: e.id.to_string(),
                kind: e.kind,
                actor_user_id: e.actor_user_id.map(|a| a.to_string()).unwrap_or_default(),
                subject: e.subject,
                client: e.client,
                detail: e.detail,
                at: Some(time::to_proto(e.at)),
            })
            .collect();
        Ok(pb::ListAuditEventsResponse { events, next_page_token: next })
    }
}

#[tonic::async_trait]
impl IdentityService for IdentityApi {
    async fn issue_token(&self, request: Request<pb::IssueTokenRequest>) -> Result<Response<pb::TokenPair>, Status> {
        self.auth.optional_caller(&request).await?;
        Ok(Response::new(self.throttled_login(request.into_inner()).await?))
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        self.auth.optional_caller(&request).await?;
        Ok(Response::new(self.refresh_token(request.into_inner()).await?))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        self.auth.optional_caller(&request).await?;
        Ok(Response::new(self.revoke_token(request.into_inner()).await?))
    }

    async fn get_jwks(&self, request: Request<pb::GetJwksRequest>) -> Result<Response<pb::Jwks>, Status> {
        self.auth.optional_caller(&request).await?;
        Ok(Response::new(self.jwks().await?))
    }

    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.rotate_key(&caller).await?))
    }

    async fn get_me(&self, request: Request<pb::GetMeRequest>) -> Result<Response<pb::Me>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.me(&caller).await?))
    }

    async fn invite_user(&self, request: Request<pb::InviteUserRequest>) -> Result<Response<pb::Invitation>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.invite(&caller, request.into_inner()).await?))
    }

    async fn accept_invitation(
        &self,
        request: Request<pb::AcceptInvitationRequest>,
    ) -> Result<Response<pb::TokenPair>, Status> {
        self.auth.optional_caller(&request).await?;
        Ok(Response::new(self.accept(request.into_inner()).await?))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.list_users(&caller, request.into_inner()).await?))
    }

    async fn remove_user(
        &self,
        request: Request<pb::RemoveUserRequest>,
    ) -> Result<Response<pb::RemoveUserResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.remove_user(&caller, request.into_inner()).await?))
    }

    async fn assign_referent(
        &self,
        request: Request<pb::AssignReferentRequest>,
    ) -> Result<Response<pb::Member>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.assign_referent(&caller, request.into_inner()).await?))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let caller = self.auth.caller(&request).await?;
        Ok(Response::new(self.audit_events(&caller, request.into_inner()).await?))
    }
}

/// `member.updated` with the member's current facts (routing keeps its territory from these).
fn member_updated(
    member_id: Uuid,
    referent_user_id: String,
    territory: member_store::Territory,
    at: chrono::DateTime<chrono::Utc>,
) -> pb::MemberUpdated {
    pb::MemberUpdated {
        member_id: member_id.to_string(),
        referent_user_id,
        occurred_at: Some(time::to_proto(at)),
        kind: crate::grpc::kind_to_proto(&territory.kind).into(),
        siren: territory.siren,
        population: territory.population,
        insee_code: territory.insee_code,
        epci_siren: territory.epci_siren,
        arrondissement: territory.arrondissement,
    }
}
