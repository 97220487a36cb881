//! Accounts by mail through the real binaries and the gateway, with the mails read from the harness's SMTP sink:
//! a forgotten password is reset from the mailed link (then the new one signs in, the old one no longer does,
//! and the link works once); a signed-in user changes its password; a member's admin invites a colleague who
//! activates the account from the mailed link; the coordinator refuses an application and its contact is told why.

use std::time::Duration;

use id77_e2e::{Api, DEMO_PASSWORD, PORTAL_URL, Platform, onboard_member};
use reqwest::{Method, StatusCode};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
const NEW_PASSWORD: &str = "Nouveau-Secret-2026!";

/// The value of `name` in the first link to `path` of a mail's body.
fn link_param(body: &str, path: &str, name: &str) -> String {
    let start = body.find(&format!("{PORTAL_URL}{path}?{name}=")).unwrap_or_else(|| panic!("no link in {body}"));
    let rest = &body[start + PORTAL_URL.len() + path.len() + name.len() + 2..];
    rest.chars().take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '%')).collect()
}

#[tokio::test]
async fn accounts_are_recovered_changed_and_created_by_mail() {
    let platform = Platform::start().await.expect("platform");
    let api = Api::new(&platform.gateway);
    let referent = "referent@id77.demo";

    // A reset request answers the same for a known and an unknown address.
    let (known, known_body) = api.post("/v1/auth/password-reset", None, &json!({"email": referent})).await;
    let (unknown, unknown_body) =
        api.post("/v1/auth/password-reset", None, &json!({"email": "personne@id77.demo"})).await;
    assert_eq!((known, unknown), (StatusCode::ACCEPTED, StatusCode::ACCEPTED));
    assert_eq!(known_body, unknown_body);
    let (status, problem) = api.post("/v1/auth/password-reset", None, &json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");

    // The link of the mail sets a new password.
    let mails = platform.mail.wait_for(referent, "Nouveau mot de passe ID 77", 1, WAIT).await;
    let token = link_param(&mails[0].body(), "/mot-de-passe/nouveau", "jeton");
    assert!(platform.mail.mails_to("personne@id77.demo").is_empty());
    let confirm = |password: &str| json!({"token": token, "password": password});
    let (status, problem) = api.post("/v1/auth/password-reset/confirm", None, &confirm("court")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, body) = api.post("/v1/auth/password-reset/confirm", None, &confirm(NEW_PASSWORD)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(api.login(referent, DEMO_PASSWORD).await.is_err(), "the old password no longer works");
    let token_after = api.access_token(referent, NEW_PASSWORD).await.expect("the new password works");
    // Once only: a used link is gone (a typed 404).
    let (status, problem) = api.post("/v1/auth/password-reset/confirm", None, &confirm("Encore-Autre-2026!")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    let kind = problem["type"].as_str().unwrap_or_default();
    assert!(kind.ends_with("/reset-token-invalid"), "{problem}");

    // A signed-in user changes its password.
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let (status, problem) = api
        .call(
            Method::PUT,
            "/v1/me/password",
            Some(&token_after),
            Some(&change(DEMO_PASSWORD, "Troisieme-Secret-2026!")),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a wrong current password: {problem}");
    assert!(problem["type"].as_str().unwrap_or_default().ends_with("/wrong-current-password"), "{problem}");
    let (status, body) = api
        .call(Method::PUT, "/v1/me/password", Some(&token_after), Some(&change(NEW_PASSWORD, "Troisieme-Secret-2026!")))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    api.access_token(referent, "Troisieme-Secret-2026!").await.expect("the changed password works");
    let (status, _) = api.call(Method::PUT, "/v1/me/password", None, Some(&change(NEW_PASSWORD, NEW_PASSWORD))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A member's admin invites a colleague, who activates the account from the mailed link.
    let coordinator = api.access_token("coordination@id77.demo", DEMO_PASSWORD).await.expect("coordinator");
    let (member, admin) = onboard_member(&api, &coordinator, "217702844", "dgs@meaux.fr").await.expect("Meaux");
    let invite = json!({"email": "urbanisme@meaux.fr", "display_name": "Service urbanisme", "role": "member_user"});
    let (status, invitation) = api.post("/v1/users", Some(&admin), &invite).await;
    assert_eq!(status, StatusCode::CREATED, "{invitation}");
    assert_eq!(invitation["user"]["member_id"], member.as_str());
    let mails = platform.mail.wait_for("urbanisme@meaux.fr", "Activez votre compte ID 77", 1, WAIT).await;
    let code = link_param(&mails[0].body(), "/activer", "code");
    let accept = json!({"invitation_token": code, "password": NEW_PASSWORD});
    let (status, pair) = api.post("/v1/auth/invitations/accept", None, &accept).await;
    assert_eq!(status, StatusCode::OK, "{pair}");
    let (_, me) = api.get("/v1/me", pair["access_token"].as_str()).await;
    assert_eq!(
        (me["user"]["role"].as_str(), me["user"]["member_id"].as_str()),
        (Some("member_user"), Some(member.as_str()))
    );
    // The colleague is in the admin's team, and the admin may remove it.
    let (_, users) = api.get("/v1/users", Some(&admin)).await;
    let colleague = users["items"]
        .as_array()
        .and_then(|u| u.iter().find(|u| u["email"] == "urbanisme@meaux.fr").cloned())
        .expect("the colleague is listed");
    let (status, body) = api
        .call(
            Method::DELETE,
            &format!("/v1/users/{}", colleague["id"].as_str().unwrap_or_default()),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // The coordinator refuses an application; its contact is told why.
    let apply = json!({"siren": "217700012", "contact_name": "Marie Dupont", "contact_email": "mairie@acheres.fr"});
    let (status, applied) = api.post("/v1/memberships", None, &apply).await;
    assert_eq!(status, StatusCode::CREATED, "{applied}");
    let id = applied["id"].as_str().expect("id").to_owned();
    let reason = json!({"reason": "La commune adhère déjà via son EPCI."});
    let (status, problem) = api.post(&format!("/v1/memberships/{id}/refuse"), Some(&coordinator), &json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    let (status, refused) = api.post(&format!("/v1/memberships/{id}/refuse"), Some(&coordinator), &reason).await;
    assert_eq!(status, StatusCode::OK, "{refused}");
    assert_eq!(
        (refused["status"].as_str(), refused["refusal_reason"].as_str()),
        (Some("refused"), Some("La commune adhère déjà via son EPCI."))
    );
    let (status, _) = api.post(&format!("/v1/memberships/{id}/refuse"), Some(&coordinator), &reason).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mails = platform.mail.wait_for("mairie@acheres.fr", "Votre demande d'adhésion à ID 77", 1, WAIT).await;
    assert!(mails[0].body().contains("adhère déjà via son EPCI"), "{}", mails[0].body());
}
