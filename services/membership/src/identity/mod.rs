//! Identity: accounts, sessions, signing keys and the audit log (owned by membership), and the access control
//! of docs/authorization.md.

pub mod crypto;
pub mod domain;
pub mod grpc;
pub mod keys;
pub mod store;
pub mod throttle;

use anyhow::Context;
use id77_platform::auth::Role;
use id77_platform::time;
use sqlx::PgPool;
use uuid::Uuid;

use self::store::{Audit, NewUser};

/// Advisory lock (transaction-scoped) serializing the start-up provisioning of accounts across replicas.
const PROVISION_LOCK: i64 = 0x1d77_0b0b_0002;

/// A demo account: email, display name, role, provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoAccount {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub provider_code: Option<String>,
}

/// The demo accounts: one operator, coordinator and referent, and one agent per provider.
pub fn demo_accounts(providers: &[String]) -> Vec<DemoAccount> {
    let department = |email: &str, name: &str, role| DemoAccount {
        email: email.to_owned(),
        display_name: name.to_owned(),
        role,
        provider_code: None,
    };
    let mut accounts = vec![
        department("operateur@id77.demo", "Opérateur (démo)", Role::Operator),
        department("coordination@id77.demo", "Coordination (démo)", Role::Coordinator),
        department("referent@id77.demo", "Référent (démo)", Role::Referent),
    ];
    accounts.extend(providers.iter().map(|code| DemoAccount {
        email: format!("agent.{code}@id77.demo"),
        display_name: format!("Agent {code} (démo)"),
        role: Role::ProviderAgent,
        provider_code: Some(code.clone()),
    }));
    accounts
}

/// Checks the demo settings: every provider code a subject token, the password within the policy for every
/// demo account. Membership refuses to start otherwise.
pub fn check_demo_settings(password: &str, providers: &[String]) -> anyhow::Result<()> {
    for code in providers {
        anyhow::ensure!(
            id77_platform::streams::is_valid_subject_token(code),
            "ID77_DEMO_PROVIDERS: {code:?} is not a provider code (lowercase letters, digits and dashes)"
        );
    }
    for account in demo_accounts(providers) {
        let problems = domain::password_problems(password, &account.email);
        anyhow::ensure!(
            problems.is_empty(),
            "ID77_DEMO_PASSWORD does not satisfy the password policy for {}: it {}",
            account.email,
            problems.join("; it ")
        );
    }
    Ok(())
}

/// Announces (`user.changed`) every account not announced yet: at start-up, the accounts that existed before
/// announcements did, and any change a write path left unannounced.
pub async fn announce_pending_users(pool: &PgPool) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let count = store::announce_users(&mut tx).await.context("announcing accounts")?;
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
    store::announce_users(&mut tx).await?;
    tx.commit().await?;
    tracing::info!(accounts = accounts.len(), "demo accounts ready");
    Ok(())
}

/// When no operator account exists, creates one for `email`, inactive, and logs its invitation token once:
/// accepting it sets the operator's password. Returns the token when it created the account.
pub async fn bootstrap_operator(pool: &PgPool, email: &str) -> anyhow::Result<Option<String>> {
    let email = domain::normalize_email("email", email)
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
    let expires_at = now + domain::invitation_ttl();
    store::insert_invitation(&mut tx, &hash, user.id, None, now, expires_at).await?;
    let subject = user.id.to_string();
    let detail = format!("{email} as operator (bootstrap)");
    let event = Audit { kind: domain::audit::USER_INVITED, subject: &subject, detail: &detail, ..Default::default() };
    store::audit(&mut tx, &event).await?;
    store::announce_users(&mut tx).await?;
    tx.commit().await?;
    tracing::warn!(
        %email,
        invitation_token = %token,
        expires_at = %expires_at.to_rfc3339(),
        "no operator account: created one; accept this invitation (AcceptInvitation) to set its password. Shown once."
    );
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_accounts_cover_every_department_role_and_each_provider() {
        let accounts = demo_accounts(&["caue77".to_owned(), "dir-routes".to_owned()]);
        let emails: Vec<_> = accounts.iter().map(|a| a.email.as_str()).collect();
        assert_eq!(
            emails,
            vec![
                "operateur@id77.demo",
                "coordination@id77.demo",
                "referent@id77.demo",
                "agent.caue77@id77.demo",
                "agent.dir-routes@id77.demo"
            ]
        );
        assert_eq!(accounts[3].provider_code.as_deref(), Some("caue77"));
        assert!(accounts.iter().all(|a| id77_platform::validate::is_plausible_email(&a.email)));
    }

    #[test]
    fn the_demo_password_must_satisfy_the_policy_for_every_account() {
        let providers = vec!["caue77".to_owned()];
        assert!(check_demo_settings("Essai-ID77-2026!", &providers).is_ok());
        assert!(check_demo_settings("short", &providers).is_err());
        assert!(check_demo_settings("Referent-2026-ok", &providers).is_err(), "contains a local part");
        assert!(check_demo_settings("Essai-ID77-2026!", &["Bad.Code".to_owned()]).is_err());
    }
}
