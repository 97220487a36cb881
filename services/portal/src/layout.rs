//! The frame of every page: skip link, header with the navigation allowed to the caller's role, main, footer;
//! and the answers that are not a screen of their own (error pages, the redirect after a POST).

use std::fmt::Write as _;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::html::esc;
use crate::{Ctx, forms, fr};

/// The page of the caller's notification preferences (served by `pages::account`), in every signed-in user's
/// navigation.
pub const NOTIFICATIONS_PATH: &str = "/compte/notifications";
/// Marks a one-time message as an error (shown as an alert rather than a notice).
pub const ERROR_FLASH: &str = "Erreur : ";

/// The navigation entries of the caller (only what its role may use, see docs/authorization.md).
pub fn nav(ctx: &Ctx) -> Vec<(&'static str, &'static str)> {
    let mut items = vec![("/", "Accueil"), ("/catalogue", "Catalogue")];
    match ctx.user.as_ref().map(|u| u.role.as_str()) {
        None => {
            items.push(("/adherer", "Adhérer"));
        }
        Some("member_admin" | "member_user") => {
            items.push(("/demandes", "Mes demandes"));
            items.push(("/factures", "Devis et factures"));
        }
        Some("provider_agent") => {
            items.push(("/orientations", "Orientations reçues"));
            items.push(("/factures", "Devis et factures"));
        }
        Some("coordinator") => {
            items.push(("/coordination/triage", "Demandes à orienter"));
            items.push(("/coordination/adhesions", "Adhésions"));
            items.push(("/coordination/orientations", "Orientations"));
            items.push(("/coordination/regles", "Règles d'orientation"));
            items.push(("/coordination/statistiques", "Statistiques"));
        }
        _ => {}
    }
    if ctx.user.is_some() {
        items.push((NOTIFICATIONS_PATH, "Mes notifications"));
    }
    items
}

/// Whether `href` is the current section of `path`.
fn current(href: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    if href == "/" { path == "/" } else { path == href || path.starts_with(&format!("{href}/")) }
}

/// A whole page.
pub fn page(ctx: &Ctx, title: &str, body: &str) -> Response {
    page_with_status(ctx, StatusCode::OK, title, body)
}

/// A whole page with a status (400 for a form with errors, 404...).
pub fn page_with_status(ctx: &Ctx, status: StatusCode, title: &str, body: &str) -> Response {
    let mut nav_html = String::new();
    for (href, label) in nav(ctx) {
        let aria = if current(href, &ctx.path) { r#" aria-current="page""# } else { "" };
        let _ = write!(nav_html, r#"<li><a href="{href}"{aria}>{label}</a></li>"#);
    }
    let account = match &ctx.user {
        Some(user) => format!(
            r#"<p class="who">Connecté : <strong>{}</strong> <span class="role">({})</span></p>
<form method="post" action="/deconnexion" class="inline">{}<button type="submit" class="secondary">Se déconnecter</button></form>"#,
            esc(&user.display_name),
            esc(fr::role(&user.role)),
            forms::csrf(&ctx.csrf)
        ),
        None => r#"<p class="who"><a href="/connexion">Se connecter</a></p>"#.to_owned(),
    };
    let flash = match &ctx.flash {
        // A refusal told after a redirect (a message or a file the API refused): an alert, not a notice.
        Some(message) if message.starts_with(ERROR_FLASH) => {
            format!(r#"<div class="error-summary" role="alert" id="erreurs"><p>{}</p></div>"#, esc(message))
        }
        Some(message) => format!(r#"<div class="notice" role="status"><p>{}</p></div>"#, esc(message)),
        None => String::new(),
    };
    let html = format!(
        r##"<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — ID 77</title>
<link rel="stylesheet" href="/static/portal.css">
</head>
<body>
<a class="skip-link" href="#contenu">Aller au contenu</a>
<header class="site-header">
<div class="wrap header-row">
<p class="brand"><a href="/"><span class="brand-name">ID 77</span> <span class="brand-line">L'ingénierie départementale de Seine-et-Marne pour les collectivités</span></a></p>
<div class="account">{account}</div>
</div>
<nav aria-label="Navigation principale" class="wrap"><ul class="nav">{nav_html}</ul></nav>
</header>
<main id="contenu" tabindex="-1" class="wrap">
<h1>{title}</h1>
{flash}{body}
</main>
<footer class="site-footer"><div class="wrap"><p>ID 77 — Département de Seine-et-Marne. Service public gratuit pour l'adhésion des collectivités.</p>
<p>Accessibilité : site conçu pour respecter le RGAA (WCAG 2.1 niveau AA).</p></div></footer>
</body>
</html>
"##,
        title = esc(title),
    );
    (status, Html(html)).into_response()
}

/// A page that only says what went wrong.
pub fn error_page(ctx: &Ctx, status: StatusCode, title: &str, message: &str) -> Response {
    let body = format!(
        r#"<div class="error-summary" role="alert"><p>{}</p></div><p><a href="/">Retour à l'accueil</a></p>"#,
        esc(message)
    );
    page_with_status(ctx, status, title, &body)
}

/// The page for a failed gateway call.
pub fn api_error_page(ctx: &Ctx, error: &crate::gateway::ApiError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let title = match error.status {
        404 => "Introuvable",
        403 => "Accès refusé",
        401 => "Session expirée",
        _ => "Une erreur est survenue",
    };
    error_page(ctx, status, title, &fr::problem(error))
}

/// 303 to `to` (after a POST).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// The page answered when the session database does not answer.
pub fn unavailable(ctx: &Ctx, error: &anyhow::Error) -> Response {
    tracing::error!(error = format!("{error:#}"), path = %ctx.path, "session store unavailable");
    error_page(
        ctx,
        StatusCode::SERVICE_UNAVAILABLE,
        "Service indisponible",
        "Le portail est momentanément indisponible. Réessayez dans quelques instants.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::User;

    fn ctx(role: Option<&str>, path: &str) -> Ctx {
        Ctx {
            sid: "s".into(),
            csrf: "c".into(),
            user: role.map(|r| User {
                id: "u".into(),
                email: "e@x.fr".into(),
                display_name: "<Nom>".into(),
                role: r.into(),
                member_id: None,
                provider_code: None,
            }),
            flash: None,
            path: path.into(),
            client_ip: None,
        }
    }

    #[test]
    fn each_role_sees_only_its_screens() {
        let hrefs = |role| nav(&ctx(role, "/")).into_iter().map(|(h, _)| h).collect::<Vec<_>>();
        assert_eq!(hrefs(None), ["/", "/catalogue", "/adherer"]);
        assert_eq!(hrefs(Some("member_user")), ["/", "/catalogue", "/demandes", "/factures", "/compte/notifications"]);
        assert_eq!(
            hrefs(Some("provider_agent")),
            ["/", "/catalogue", "/orientations", "/factures", "/compte/notifications"]
        );
        assert!(hrefs(Some("coordinator")).contains(&"/coordination/regles"));
        assert!(hrefs(Some("coordinator")).contains(&"/coordination/triage"));
        assert!(hrefs(Some("coordinator")).contains(&"/coordination/statistiques"));
        assert!(hrefs(Some("coordinator")).contains(&"/compte/notifications"));
        assert!(!hrefs(Some("coordinator")).contains(&"/demandes"));
        assert_eq!(hrefs(Some("operator")), ["/", "/catalogue", "/compte/notifications"]);
    }

    #[test]
    fn pages_are_french_landmarked_and_escaped() {
        let response = page(&ctx(Some("member_admin"), "/demandes/1"), "Titre <x>", "<p>corps</p>");
        assert_eq!(response.status(), StatusCode::OK);
        let body = futures_body(response);
        assert!(body.contains(r#"<html lang="fr">"#));
        assert!(body.contains(r##"<a class="skip-link" href="#contenu">"##));
        assert!(body.contains("<title>Titre &lt;x&gt; — ID 77</title>") && body.contains("<h1>Titre &lt;x&gt;</h1>"));
        assert!(body.contains(r#"<a href="/demandes" aria-current="page">Mes demandes</a>"#));
        assert!(body.contains("&lt;Nom&gt;"), "the user's name is escaped");
        assert!(body.contains(r#"name="_csrf" value="c""#), "the logout form carries the CSRF token");
    }

    fn futures_body(response: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
            String::from_utf8(bytes.to_vec()).expect("utf-8")
        })
    }
}
