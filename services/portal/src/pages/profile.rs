//! « Mon compte » (`/compte`): who the signed-in user is (name, address, role, its partner's name for an agent)
//! and where each of its own settings is: password, notification mails, team (a member's administrator), the
//! notifications received. The settings themselves are on their own pages.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;

use crate::caller;
use crate::fr;
use crate::html::esc;
use crate::session::User;
use crate::{AppState, Ctx, layout};

pub const PATH: &str = "/compte";
const TITLE: &str = "Mon compte";

/// `GET /compte`.
pub async fn show(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let token = match caller::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(user) = ctx.user.as_ref() else {
        return layout::see_other("/connexion");
    };
    let provider = match user.provider_code.as_deref() {
        Some(code) if !code.is_empty() => {
            let names = super::provider::provider_names(&state, &token).await;
            Some(names.get(code).cloned().unwrap_or_else(|| "votre partenaire".to_owned()))
        }
        _ => None,
    };
    layout::page(&ctx, TITLE, &body(user, provider.as_deref()))
}

/// The page's content for `user` (`provider`: its partner's name, for an agent).
fn body(user: &User, provider: Option<&str>) -> String {
    let name = if user.display_name.trim().is_empty() { "—" } else { user.display_name.trim() };
    let mut html = format!(
        r#"<dl class="facts"><dt>Nom</dt><dd>{name}</dd><dt>Adresse électronique</dt><dd>{email}</dd><dt>Rôle</dt><dd>{role}</dd>"#,
        name = esc(name),
        email = esc(&user.email),
        role = esc(fr::role(&user.role)),
    );
    if let Some(provider) = provider {
        html.push_str(&format!("<dt>Partenaire</dt><dd>{}</dd>", esc(provider)));
    }
    html.push_str("</dl>\n<h2>Mes réglages</h2>\n<ul>");
    html.push_str(r#"<li><a href="/compte/mot-de-passe">Changer mon mot de passe</a></li>"#);
    html.push_str(&format!(
        r#"<li><a href="{}">Choisir les courriels que je reçois</a></li>"#,
        crate::layout::NOTIFICATIONS_PATH
    ));
    if user.is("member_admin") {
        html.push_str(r#"<li><a href="/compte/equipe">Gérer mon équipe (inviter ou retirer un collègue)</a></li>"#);
    }
    html.push_str(r#"<li><a href="/notifications">Lire mes notifications</a></li></ul>"#);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: &str, provider: Option<&str>) -> User {
        User {
            id: "u1".into(),
            email: "dgs@meaux.fr".into(),
            display_name: "Claire <Martin>".into(),
            role: role.into(),
            member_id: None,
            provider_code: provider.map(str::to_owned),
        }
    }

    #[test]
    fn the_account_says_who_in_french_and_links_each_setting() {
        let admin = body(&user("member_admin", None), None);
        assert!(admin.contains("<dd>Claire &lt;Martin&gt;</dd>"), "{admin}");
        assert!(!admin.contains("<h1"), "the layout gives the page its one title: {admin}");
        assert!(admin.contains("<dd>Administrateur de la collectivité</dd>"), "{admin}");
        assert!(admin.contains(r#"href="/compte/equipe""#) && admin.contains(r#"href="/compte/mot-de-passe""#));
        let agent = body(&user("provider_agent", Some("caue77")), Some("CAUE 77"));
        assert!(agent.contains("<dt>Partenaire</dt><dd>CAUE 77</dd>"), "{agent}");
        assert!(!agent.contains("caue77") && !agent.contains("/compte/equipe"), "no code, no team: {agent}");
    }
}
