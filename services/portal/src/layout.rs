//! The frame of every page: skip link, header (the Département's wordmark, the navigation allowed to the caller's
//! role: a plain list on wide screens, a « Menu » button that works without JavaScript on phones), main, footer
//! (legal pages, accessibility status, site map, contact); and the answers that are not a screen of their own
//! (error pages, the redirect after a POST).
//!
//! One rule for errors: a page that shows the error summary of a form ([`forms::SUMMARY_OPEN`]), an error told
//! after a redirect, or answers 400 has a title starting with « Erreur : » ([`ERROR_TITLE`]), and the summary
//! takes the focus on load (`autofocus`, no script). Tables become stacked lists on phones: every cell is labelled
//! with its column header ([`crate::html::label_cells`]) and the stylesheet shows that label.

use std::fmt::Write as _;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::html::{esc, label_cells};
use crate::{Ctx, forms, fr};

/// The page of the caller's notification preferences (served by `pages::account`), in every signed-in user's
/// navigation.
pub const NOTIFICATIONS_PATH: &str = "/compte/notifications";
/// Marks a one-time message as an error (shown as an alert rather than a notice).
pub const ERROR_FLASH: &str = "Erreur : ";
/// The start of the `<title>` of a page that reports errors (RGAA 8.6 and 11.10).
pub const ERROR_TITLE: &str = "Erreur : ";
/// The portal's conformity to the RGAA, as the footer and the accessibility statement (`/accessibilite`) say it.
pub const CONFORMITY: &str = "partiellement conforme";
/// The links of the footer (every page): legal notice, accessibility statement (with the conformity, as the RGAA
/// asks), site map, contact.
pub fn footer_links() -> [(&'static str, String); 4] {
    [
        ("/mentions-legales", "Mentions légales".to_owned()),
        ("/accessibilite", format!("Accessibilité : {CONFORMITY}")),
        ("/plan-du-site", "Plan du site".to_owned()),
        ("/contact", "Contact".to_owned()),
    ]
}
/// The description of a page that has none of its own (`<meta name="description">`).
const DEFAULT_DESCRIPTION: &str = "ID 77, le guichet unique de l'ingénierie du Département de Seine-et-Marne pour \
    les communes, intercommunalités et syndicats : adhésion gratuite, catalogue des offres, demandes et leur suivi.";

/// The audiences of the portal, each with the roles that see its navigation (the site map lists them in this order).
pub const AUDIENCES: [(&str, Option<&str>); 4] = [
    ("Tout public", None),
    ("Collectivités adhérentes", Some("member_admin")),
    ("Partenaires", Some("provider_agent")),
    ("Coordination", Some("coordinator")),
];

/// The navigation entries of the caller (only what its role may use, see docs/authorization.md).
pub fn nav(ctx: &Ctx) -> Vec<(&'static str, &'static str)> {
    nav_for(ctx.user.as_ref().map(|u| u.role.as_str()))
}

/// The navigation entries of a role (`None`: not signed in). The site map is built from it too.
pub fn nav_for(role: Option<&str>) -> Vec<(&'static str, &'static str)> {
    let mut items = vec![("/", "Accueil"), ("/catalogue", "Catalogue")];
    match role {
        None => {
            items.push(("/adherer", "Adhérer"));
        }
        Some("member_admin" | "member_user") => {
            items.push(("/demandes", "Mes demandes"));
            items.push(("/inscriptions", "Mes inscriptions"));
            items.push(("/factures", "Devis et factures"));
        }
        Some("provider_agent") => {
            items.push(("/orientations", "Orientations reçues"));
            items.push(("/sessions", "Mes sessions"));
            items.push(("/factures", "Devis et factures"));
        }
        Some("coordinator") => {
            items.push(("/coordination/triage", "Demandes à orienter"));
            items.push(("/coordination/adhesions", "Adhésions"));
            items.push(("/coordination/orientations", "Orientations"));
            items.push(("/coordination/regles", "Règles d'orientation"));
            items.push(("/coordination/statistiques", "Statistiques"));
            items.push(("/sessions", "Sessions de formation"));
            items.push(("/coordination/sessions", "Remplissage des sessions"));
        }
        _ => {}
    }
    if role == Some("member_admin") {
        items.push(("/compte/equipe", "Mon équipe"));
    }
    if role.is_some() {
        items.push((NOTIFICATIONS_PATH, "Mes notifications"));
        items.push(("/compte/mot-de-passe", "Mon mot de passe"));
    }
    items
}

/// Whether `href` is the current section of `path`.
fn current(href: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    if href == "/" { path == "/" } else { path == href || path.starts_with(&format!("{href}/")) }
}

/// The `<meta name="description">` of the page at `path`.
pub fn description(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path);
    let section = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if section("/catalogue") || section("/offres") {
        "Le catalogue des offres d'ingénierie, de sensibilisation, de formation et de prêt du Département de \
         Seine-et-Marne et de ses organismes associés, ouvert aux collectivités adhérentes à ID 77."
    } else if section("/adherer") {
        "Demander l'adhésion gratuite de votre commune, intercommunalité ou syndicat à ID 77, le guichet unique de \
         l'ingénierie départementale de Seine-et-Marne."
    } else if section("/connexion") || section("/invitation") {
        "Se connecter à ID 77 ou activer le compte reçu par invitation."
    } else if section("/demandes") {
        "Déposer une demande d'ingénierie et suivre son traitement : statut, échanges, pièces jointes, devis."
    } else if section("/factures") {
        "Consulter et télécharger les devis, factures et avoirs d'ID 77."
    } else if section("/orientations") {
        "Les demandes confiées à votre organisme par ID 77 et leur date limite de réponse."
    } else if section("/sessions") || section("/inscriptions") || section("/coordination/sessions") {
        "Les sessions de sensibilisation et de formation d'ID 77 : dates, lieux, places, inscriptions des élus et \
         agents, présences et attestations."
    } else if section("/coordination") {
        "Espace de la coordination d'ID 77 : orientation des demandes, adhésions, règles et statistiques."
    } else if section("/mentions-legales") {
        "Mentions légales d'ID 77 : éditeur, directeur de la publication, hébergement et protection des données \
         personnelles."
    } else if section("/accessibilite") {
        "Déclaration d'accessibilité d'ID 77 : état de conformité au RGAA, contenus non accessibles, voies de recours."
    } else if section("/plan-du-site") {
        "Plan du site ID 77 : toutes les pages du portail, par public."
    } else if section("/contact") {
        "Contacter l'équipe d'ID 77 au Département de Seine-et-Marne."
    } else {
        DEFAULT_DESCRIPTION
    }
}

/// Whether a page reports errors: the error summary of a form, an error told after a redirect, or a 400 answer.
/// Such a page's title starts with [`ERROR_TITLE`].
pub fn reports_errors(status: StatusCode, flash: Option<&str>, body: &str) -> bool {
    status == StatusCode::BAD_REQUEST
        || body.contains(forms::SUMMARY_OPEN)
        || flash.is_some_and(|message| message.starts_with(ERROR_FLASH))
}

/// A whole page.
pub fn page(ctx: &Ctx, title: &str, body: &str) -> Response {
    page_with_status(ctx, StatusCode::OK, title, body)
}

/// The wordmark of the Département's service (its own sober identity, no State emblem): a square « 77 » and the
/// two lines « Département de Seine-et-Marne » / « ID 77 », a link to the home page.
const BRAND: &str = r#"<a class="brand" href="/"><span class="brand-mark" aria-hidden="true">77</span><span class="brand-text"><span class="brand-org">Département de Seine-et-Marne</span> <span class="brand-name">ID 77<span class="visually-hidden"> — accueil</span></span></span></a>"#;

/// The caller's identity and the sign-out form, or the sign-in link.
fn account(ctx: &Ctx) -> String {
    match &ctx.user {
        Some(user) => format!(
            r#"<p class="who">Connecté : <strong>{}</strong> <span class="role">({})</span></p>
<form method="post" action="/deconnexion" class="inline">{}<button type="submit" class="secondary">Se déconnecter</button></form>"#,
            esc(&user.display_name),
            esc(fr::role(&user.role)),
            forms::csrf(&ctx.csrf)
        ),
        None => r#"<p class="who"><a href="/connexion">Se connecter</a></p>"#.to_owned(),
    }
}

/// The header: the wordmark, the account and the navigation in full on wide screens; on phones the wordmark and a
/// « Menu » button (`<details>`, no script) that opens the same navigation and account. Only one of the two is
/// displayed at any width (the other is `display: none`, out of the accessibility tree too).
pub fn header(ctx: &Ctx) -> String {
    let mut items = String::new();
    for (href, label) in nav(ctx) {
        let aria = if current(href, &ctx.path) { r#" aria-current="page""# } else { "" };
        let _ = write!(items, r#"<li><a href="{href}"{aria}>{label}</a></li>"#);
    }
    items.push_str(&crate::pages::unread::nav_entry(ctx));
    let account = account(ctx);
    format!(
        r#"<header class="site-header">
<div class="wrap header-bar">
{BRAND}
<div class="account account-wide">{account}</div>
<nav aria-label="Navigation principale" class="nav-wide"><ul class="nav">{items}</ul></nav>
<details class="menu"><summary>Menu</summary>
<div class="menu-panel"><nav aria-label="Navigation principale"><ul class="nav">{items}</ul></nav>
<div class="account">{account}</div></div>
</details>
</div>
</header>"#
    )
}

/// The footer: the service, and the links every page owes (legal notice, accessibility, site map, contact).
pub fn footer() -> String {
    let mut links = String::new();
    for (href, label) in footer_links() {
        let _ = write!(links, r#"<li><a href="{href}">{label}</a></li>"#);
    }
    format!(
        r#"<footer class="site-footer"><div class="wrap">
<p><strong>ID 77</strong> — un service du Département de Seine-et-Marne. Adhésion gratuite pour les collectivités.</p>
<ul class="footer-links">{links}</ul>
</div></footer>"#
    )
}

/// A whole page with a status (400 for a form with errors, 404...).
pub fn page_with_status(ctx: &Ctx, status: StatusCode, title: &str, body: &str) -> Response {
    let flash = match &ctx.flash {
        // A refusal told after a redirect (a message or a file the API refused): an alert that takes the focus.
        Some(message) if message.starts_with(ERROR_FLASH) => format!(
            r#"<div class="error-summary" role="alert" tabindex="-1" id="erreurs" autofocus><p>{}</p></div>"#,
            esc(message)
        ),
        Some(message) => format!(r#"<div class="notice" role="status"><p>{}</p></div>"#, esc(message)),
        None => String::new(),
    };
    let prefix = if reports_errors(status, ctx.flash.as_deref(), body) { ERROR_TITLE } else { "" };
    let html = format!(
        r##"<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{prefix}{title} — ID 77</title>
<meta name="description" content="{description}">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/portal.css">
</head>
<body>
<a class="skip-link" href="#contenu">Aller au contenu</a>
{header}
<main id="contenu" tabindex="-1" class="wrap">
<h1>{title}</h1>
{flash}{body}
</main>
{footer}
</body>
</html>
"##,
        title = esc(title),
        description = esc(description(&ctx.path)),
        header = header(ctx),
        footer = footer(),
        body = label_cells(body),
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
pub(crate) mod tests {
    use super::*;
    use crate::session::User;

    pub(crate) fn ctx(role: Option<&str>, path: &str) -> Ctx {
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
        let signed_in = ["/compte/notifications", "/compte/mot-de-passe"];
        assert_eq!(
            hrefs(Some("member_user")),
            [&["/", "/catalogue", "/demandes", "/inscriptions", "/factures"][..], &signed_in].concat()
        );
        assert_eq!(
            hrefs(Some("member_admin")),
            [&["/", "/catalogue", "/demandes", "/inscriptions", "/factures", "/compte/equipe"][..], &signed_in]
                .concat()
        );
        assert_eq!(
            hrefs(Some("provider_agent")),
            [&["/", "/catalogue", "/orientations", "/sessions", "/factures"][..], &signed_in].concat()
        );
        assert!(hrefs(Some("coordinator")).contains(&"/coordination/regles"));
        assert!(hrefs(Some("coordinator")).contains(&"/coordination/triage"));
        assert!(hrefs(Some("coordinator")).contains(&"/coordination/statistiques"));
        assert!(hrefs(Some("coordinator")).contains(&"/sessions"));
        assert!(hrefs(Some("coordinator")).contains(&"/coordination/sessions"));
        assert!(hrefs(Some("coordinator")).contains(&"/compte/notifications"));
        assert!(!hrefs(Some("coordinator")).contains(&"/demandes"));
        assert_eq!(hrefs(Some("operator")), [&["/", "/catalogue"][..], &signed_in].concat());
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
        assert_eq!(body.matches("<h1>").count(), 1, "one h1");
        assert!(body.contains("<main id=\"contenu\"") && body.contains("<footer") && body.contains("<header"));
    }

    #[test]
    fn the_header_shows_the_departements_wordmark_and_a_menu_without_script() {
        let html = header(&ctx(Some("coordinator"), "/coordination/regles"));
        assert!(html.contains("Département de Seine-et-Marne") && html.contains(r#"<span class="brand-name">ID 77"#));
        assert!(html.contains(r#"<a class="brand" href="/">"#), "the wordmark leads home");
        assert!(!html.contains("Marianne") && !html.contains("République"), "not the State's identity");
        assert!(!html.contains("<script"), "the menu needs no script");
        // The wide navigation and the phone menu (a <details> with a <summary> button) list the same entries.
        assert!(html.contains(r#"<nav aria-label="Navigation principale" class="nav-wide">"#));
        let menu = html.split(r#"<details class="menu"><summary>Menu</summary>"#).nth(1).expect("a menu button");
        let current = r#"<a href="/coordination/regles" aria-current="page">Règles d'orientation</a>"#;
        assert_eq!(html.matches(current).count(), 2);
        assert!(menu.contains(current) && menu.contains("Se déconnecter"), "the menu holds the nav and the account");
        assert!(header(&ctx(None, "/")).contains(r#"<a href="/connexion">Se connecter</a>"#));
    }

    #[test]
    fn every_page_has_the_footer_links_a_description_and_the_favicon() {
        let body = futures_body(page(&ctx(None, "/catalogue?q=eau"), "Catalogue", ""));
        for (href, label) in [
            ("/mentions-legales", "Mentions légales"),
            ("/accessibilite", "Accessibilité : partiellement conforme"),
            ("/plan-du-site", "Plan du site"),
            ("/contact", "Contact"),
        ] {
            assert!(body.contains(&format!(r#"<a href="{href}">{label}</a>"#)), "{href}");
        }
        assert!(body.contains(r#"<meta name="description" content="Le catalogue des offres"#));
        assert!(body.contains(r#"<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">"#));
        let other = futures_body(page(&ctx(None, "/nulle-part"), "X", ""));
        assert!(other.contains(&format!(r#"<meta name="description" content="{}">"#, esc(DEFAULT_DESCRIPTION))));
        for path in ["/", "/adherer/1", "/demandes", "/factures", "/orientations/x", "/coordination/regles"] {
            assert!(!description(path).is_empty() && !description(path).contains('"'), "{path}");
        }
        assert_ne!(description("/demandes"), description("/factures"));
    }

    #[test]
    fn a_page_with_errors_says_so_in_its_title_and_focuses_its_summary() {
        let mut errors = forms::Errors::default();
        errors.add("objet", "Objet", "Le champ « Objet » est obligatoire.");
        let form = format!("{}<form></form>", forms::summary(&errors));
        let with_errors = futures_body(page(&ctx(None, "/demandes/nouvelle"), "Nouvelle demande", &form));
        assert!(with_errors.contains("<title>Erreur : Nouvelle demande — ID 77</title>"));
        assert!(with_errors.contains("<h1>Nouvelle demande</h1>"), "the h1 stays the page's name");
        assert!(with_errors.contains(r#"tabindex="-1" id="erreurs" autofocus>"#), "the summary takes the focus");
        let bad_request = page_with_status(&ctx(None, "/"), StatusCode::BAD_REQUEST, "Envoi refusé", "<p>x</p>");
        assert!(futures_body(bad_request).contains("<title>Erreur : Envoi refusé — ID 77</title>"));
        let mut flashed = ctx(None, "/demandes/1");
        flashed.flash = Some(format!("{ERROR_FLASH}le fichier est trop volumineux."));
        let flashed = futures_body(page(&flashed, "Demande", ""));
        assert!(flashed.contains("<title>Erreur : Demande — ID 77</title>") && flashed.contains("autofocus"));
        let fine = futures_body(page(&ctx(None, "/"), "Accueil", "<p>Texte : Erreur : rien</p>"));
        assert!(fine.contains("<title>Accueil — ID 77</title>") && !fine.contains("autofocus"));
        let not_found = error_page(&ctx(None, "/x"), StatusCode::NOT_FOUND, "Page introuvable", "Non.");
        assert!(futures_body(not_found).contains("<title>Page introuvable — ID 77</title>"));
        // Text typed by a user cannot fake the summary: quotes are escaped.
        let typed = esc(forms::SUMMARY_OPEN);
        assert!(!reports_errors(StatusCode::OK, None, &typed));
    }

    #[test]
    fn tables_of_every_page_are_labelled_for_phones() {
        let table = r#"<table><thead><tr><th scope="col">Objet</th><th scope="col">Statut</th></tr></thead><tbody><tr><th scope="row">A</th><td>Déposée</td></tr></tbody></table>"#;
        let body = futures_body(page(&ctx(None, "/demandes"), "Mes demandes", table));
        assert!(body.contains(r#"<td data-label="Statut">Déposée</td>"#));
    }

    pub(crate) fn futures_body(response: Response) -> String {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        rt.block_on(async {
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
            String::from_utf8(bytes.to_vec()).expect("utf-8")
        })
    }
}
