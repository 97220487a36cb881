//! The demo accounts (`ID77_DEMO_PASSWORD`, `ID77_DEMO_PROVIDERS`): who they are, and the settings membership
//! refuses to start with.

use id77_platform::auth::Role;

use super::domain;

/// A demo account: email, display name, role, provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoAccount {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub provider_code: Option<String>,
}

/// The names the demo agents go by, one per provider in turn.
const DEMO_AGENT_NAMES: [&str; 12] = [
    "Camille Lefèvre",
    "Julien Moreau",
    "Sophie Garnier",
    "Nicolas Faure",
    "Claire Rousseau",
    "Mathieu Girard",
    "Élodie Mercier",
    "Thomas Chevalier",
    "Isabelle Lambert",
    "Antoine Bonnet",
    "Nathalie Fontaine",
    "Pierre Marchand",
];

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
    // A person's name, as a real agent has (the provider's code is no name to show a user).
    accounts.extend(providers.iter().enumerate().map(|(i, code)| DemoAccount {
        email: format!("agent.{code}@id77.demo"),
        display_name: format!("{} (démo)", DEMO_AGENT_NAMES[i % DEMO_AGENT_NAMES.len()]),
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
