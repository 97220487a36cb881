//! The pages every public site owes, linked from every footer: the legal notice (`/mentions-legales`), the
//! accessibility statement in the RGAA's form (`/accessibilite`), the site map built from the navigation of each
//! role (`/plan-du-site`) and the contact page (`/contact`). Open to everyone, signed in or not.
//!
//! Upkeep (docs/portal.md « Déclaration d'accessibilité »): [`AUDIT_DATE`] and [`AXE_VERSION`] follow the last
//! automated audit of the CI (`make test-browser`), [`NON_COMPLIANT`] the defects known.

use std::fmt::Write as _;

use axum::Extension;
use axum::response::Response;

use crate::html::esc;
use crate::layout::{self, AUDIENCES, CONFORMITY, nav_for};
use crate::{Ctx, fr};

pub const LEGAL_PATH: &str = "/mentions-legales";
pub const ACCESSIBILITY_PATH: &str = "/accessibilite";
pub const SITE_MAP_PATH: &str = "/plan-du-site";
pub const CONTACT_PATH: &str = "/contact";

/// The editor's postal address.
pub const ADDRESS: &str = "Hôtel du Département, 12 rue des Saints-Pères, 77010 Melun cedex";
/// Where to write about ID 77 (questions, accessibility defects).
pub const CONTACT_EMAIL: &str = "contact@id77.seine-et-marne.fr";
/// The Département's data protection officer.
pub const DPO_EMAIL: &str = "dpo@departement77.fr";
/// The date of the last automated accessibility audit (axe-core in `make test-browser`, run by the CI).
pub const AUDIT_DATE: &str = "6 décembre 2026";
/// The version of axe-core that audit used (tests/browser/package.json).
pub const AXE_VERSION: &str = "4.14.1";
/// The contents known not to be accessible (RGAA « Contenus non accessibles » — non-conformités).
pub const NON_COMPLIANT: [&str; 3] = [
    "Les devis, factures et avoirs au format PDF produits par la plateforme ne sont pas balisés : leur structure \
     n'est pas restituée aux technologies d'assistance (critère 13.3). Leur contenu (numéro, montant, échéance) est \
     repris en HTML dans la page « Devis et factures ».",
    "Aucun audit manuel selon la grille du RGAA n'a encore été réalisé : les critères que l'outil automatisé ne \
     vérifie pas (pertinence des alternatives, des titres, ordre de lecture…) ne sont pas encore évalués.",
    "Le parcours n'a pas encore été testé avec des lecteurs d'écran (NVDA, JAWS, VoiceOver, TalkBack).",
];

/// `GET /mentions-legales`: editor, director of publication, hosting, personal data.
pub async fn legal(Extension(ctx): Extension<Ctx>) -> Response {
    let body = format!(
        r#"<h2>Éditeur</h2>
<p>Département de Seine-et-Marne<br>{ADDRESS}</p>
<p>ID 77 est le guichet unique de l'ingénierie départementale proposé par le Département de Seine-et-Marne aux communes, intercommunalités et syndicats du territoire.</p>
<h2>Directeur de la publication</h2>
<p>Le Président du Conseil départemental de Seine-et-Marne.</p>
<h2>Hébergement</h2>
<p>Le portail et ses données sont hébergés en France, sur l'infrastructure exploitée pour le compte du Département de Seine-et-Marne, {ADDRESS}.</p>
<h2>Données personnelles</h2>
<p>Le Département de Seine-et-Marne est responsable des traitements de données personnelles d'ID 77, conformément au règlement général sur la protection des données (RGPD) et à la loi Informatique et Libertés. Ces traitements relèvent de sa mission d'intérêt public d'appui aux collectivités (article 6.1.e du RGPD).</p>
<h3>Finalités</h3>
<ul>
<li>gérer les adhésions des collectivités et les comptes de leurs agents et élus, des partenaires et de la coordination ;</li>
<li>instruire les demandes, les orienter vers le service ou l'organisme compétent et en suivre le traitement (statuts, échanges, pièces jointes, avis) ;</li>
<li>inscrire les participants (nom, fonction, courriel) aux sessions de sensibilisation et de formation, leur envoyer confirmations et rappels, établir les feuilles d'émargement et les attestations de présence ;</li>
<li>établir les devis, factures et avoirs ;</li>
<li>prévenir par courriel des changements de statut et des nouveaux messages, selon les préférences de chacun ;</li>
<li>assurer la sécurité du service (journaux techniques).</li>
</ul>
<h3>Données traitées et destinataires</h3>
<p>Nom, adresse électronique professionnelle, rôle et collectivité ou organisme de rattachement ; contenu des demandes, messages et pièces jointes ; adresse IP et horodatage des connexions. Seuls y ont accès la coordination d'ID 77 et, pour les demandes qui leur sont orientées et les sessions qu'ils animent, les agents des partenaires concernés. Aucune donnée n'est cédée ni utilisée à des fins commerciales.</p>
<h3>Durées de conservation</h3>
<ul>
<li>session de connexion : fermée après deux heures d'inactivité ;</li>
<li>comptes : tant que la personne exerce ses fonctions, puis un an après la désactivation du compte ;</li>
<li>demandes, échanges et pièces jointes : cinq ans après la clôture de la demande ;</li>
<li>inscriptions aux sessions et émargements : trois ans après la session (preuve de la formation suivie) ;</li>
<li>devis, factures et avoirs : dix ans ;</li>
<li>journaux techniques : un an.</li>
</ul>
<h3>Vos droits</h3>
<p>Vous disposez d'un droit d'accès, de rectification, d'effacement, de limitation et d'opposition au traitement de vos données. Pour les exercer, ou pour toute question, écrivez au délégué à la protection des données du Département : <a href="mailto:{DPO_EMAIL}">{DPO_EMAIL}</a>, ou par courrier : Délégué à la protection des données, Département de Seine-et-Marne, {ADDRESS}.</p>
<p>Si vous estimez, après nous avoir contactés, que vos droits ne sont pas respectés, vous pouvez adresser une réclamation à la Commission nationale de l'informatique et des libertés (CNIL).</p>
<h2>Cookies</h2>
<p>ID 77 n'utilise qu'un cookie de session, strictement nécessaire à la connexion et à la sécurité des formulaires : il ne demande pas de consentement. Aucun cookie de mesure d'audience ni de publicité n'est déposé.</p>"#
    );
    layout::page(&ctx, "Mentions légales", &body)
}

/// `GET /accessibilite`: the accessibility statement, in the form the RGAA sets.
pub async fn accessibility(Extension(ctx): Extension<Ctx>) -> Response {
    let mut defects = String::new();
    for item in NON_COMPLIANT {
        let _ = write!(defects, "<li>{}</li>", esc(item));
    }
    let body = format!(
        r#"<p>Le Département de Seine-et-Marne s'engage à rendre ses sites internet, intranet, extranet et ses progiciels accessibles, conformément à l'article 47 de la loi n° 2005-102 du 11 février 2005.</p>
<p>Cette déclaration d'accessibilité s'applique au portail ID 77, le guichet unique de l'ingénierie départementale.</p>
<h2>État de conformité</h2>
<p>ID 77 est <strong>{CONFORMITY}</strong> avec le référentiel général d'amélioration de l'accessibilité (RGAA), version 4.1, en raison des non-conformités énumérées ci-dessous.</p>
<h2>Résultats des tests</h2>
<p>L'audit automatisé du {AUDIT_DATE}, réalisé avec l'outil axe-core (version {AXE_VERSION}) sur chaque page visitée par les parcours de test de chaque profil (public, collectivité, partenaire, coordination), ne relève aucune violation des règles des WCAG 2.0 et 2.1, niveaux A et AA. Cet audit est rejoué à chaque modification du portail.</p>
<p>Un audit automatisé ne vérifie qu'une partie des critères du RGAA : le taux de conformité sera établi par un audit complet.</p>
<h2>Contenus non accessibles</h2>
<h3>Non-conformités</h3>
<ul>{defects}</ul>
<h3>Dérogations pour charge disproportionnée</h3>
<p>Aucune.</p>
<h3>Contenus non soumis à l'obligation d'accessibilité</h3>
<p>Les pièces jointes déposées par les collectivités et les partenaires dans leurs échanges (contenus de tiers).</p>
<h2>Établissement de cette déclaration</h2>
<p>Cette déclaration a été établie le {AUDIT_DATE}.</p>
<h3>Technologies utilisées pour la réalisation du site</h3>
<ul><li>HTML5</li><li>CSS</li></ul>
<p>Le portail fonctionne sans JavaScript.</p>
<h3>Environnement de test</h3>
<p>Navigateur Chromium (version de Debian, sans interface), piloté par playwright-core, aux largeurs de 1280, 390 et 320 pixels CSS.</p>
<h3>Outils pour évaluer l'accessibilité</h3>
<ul><li>axe-core {AXE_VERSION} (règles WCAG 2.0 et 2.1, niveaux A et AA)</li><li>parcours de connexion au clavier seul</li></ul>
<h3>Pages du site ayant fait l'objet de la vérification de conformité</h3>
<p>Toutes les pages des parcours de test : accueil, catalogue et fiche d'offre, adhésion, connexion, activation de compte, dépôt et suivi d'une demande, devis et factures, orientations reçues, pages de la coordination, préférences de notification, et les pages de ce pied de page (<a href="{SITE_MAP_PATH}">plan du site</a>).</p>
<h2>Retour d'information et contact</h2>
<p>Si vous n'arrivez pas à accéder à un contenu ou à un service, vous pouvez nous contacter pour être orienté vers une alternative accessible ou obtenir le contenu sous une autre forme :</p>
<ul><li>par courriel : <a href="mailto:{CONTACT_EMAIL}">{CONTACT_EMAIL}</a> ;</li><li>par courrier : Département de Seine-et-Marne, ID 77, {ADDRESS}.</li></ul>
<h2>Voies de recours</h2>
<p>Si vous constatez un défaut d'accessibilité vous empêchant d'accéder à un contenu ou une fonctionnalité du site, que vous nous le signalez et que vous ne parvenez pas à obtenir une réponse de notre part, vous êtes en droit de faire parvenir vos doléances ou une demande de saisine au Défenseur des droits.</p>
<p>Plusieurs moyens sont à votre disposition :</p>
<ul>
<li>écrire un message au Défenseur des droits, par le formulaire de son site defenseurdesdroits.fr ;</li>
<li>contacter le délégué du Défenseur des droits dans votre région ;</li>
<li>envoyer un courrier par la poste (gratuit, ne pas mettre de timbre) : Défenseur des droits, Libre réponse 71120, 75342 Paris CEDEX 07.</li>
</ul>"#
    );
    layout::page(&ctx, "Déclaration d'accessibilité", &body)
}

/// The body of the site map: every page of the navigation, by audience (each role's own entries after the public
/// ones), then the pages outside the navigation.
pub fn site_map() -> String {
    let public = nav_for(None);
    let mut out = String::new();
    for (audience, role) in AUDIENCES {
        let entries: Vec<_> =
            nav_for(role).into_iter().filter(|entry| role.is_none() || !public.contains(entry)).collect();
        let who = role.map(|r| format!(r#" <span class="small">({})</span>"#, esc(fr::role(r)))).unwrap_or_default();
        let _ = write!(out, "<h2>{audience}{who}</h2><ul>");
        for (href, label) in entries {
            let _ = write!(out, r#"<li><a href="{href}">{label}</a></li>"#);
        }
        out.push_str("</ul>");
    }
    let _ = write!(
        out,
        r#"<h2>Compte</h2><ul><li><a href="/connexion">Se connecter</a></li><li><a href="/invitation">Activer votre compte (invitation reçue)</a></li><li><a href="/compte">Mon compte</a> (après connexion)</li><li><a href="{}">Notifications</a> (après connexion)</li></ul>"#,
        super::notifications::PATH
    );
    out.push_str("<h2>Informations</h2><ul>");
    for (href, label) in layout::footer_links() {
        let _ = write!(out, r#"<li><a href="{href}">{}</a></li>"#, esc(&label));
    }
    out.push_str("</ul>");
    out
}

/// `GET /plan-du-site`.
pub async fn site_map_page(Extension(ctx): Extension<Ctx>) -> Response {
    let body = format!(
        r#"<p>Les pages d'ID 77 par public. Les espaces des collectivités, des partenaires et de la coordination sont accessibles après connexion.</p>{}"#,
        site_map()
    );
    layout::page(&ctx, "Plan du site", &body)
}

/// `GET /contact`.
pub async fn contact(Extension(ctx): Extension<Ctx>) -> Response {
    let body = format!(
        r#"<p>L'équipe d'ID 77 (coordination du guichet unique) répond aux questions des collectivités, des partenaires et du public.</p>
<h2>Par courriel</h2>
<p><a href="mailto:{CONTACT_EMAIL}">{CONTACT_EMAIL}</a></p>
<h2>Par courrier</h2>
<p>Département de Seine-et-Marne — ID 77<br>{ADDRESS}</p>
<h2>Une question sur une demande ?</h2>
<p>Si votre collectivité est adhérente, écrivez plutôt dans la messagerie de la demande, depuis <a href="/demandes">Mes demandes</a> : le partenaire et la coordination y voient tout l'historique.</p>
<p>Pour un défaut d'accessibilité, voyez aussi la <a href="{ACCESSIBILITY_PATH}">déclaration d'accessibilité</a> ; pour vos données personnelles, les <a href="{LEGAL_PATH}">mentions légales</a>.</p>"#
    );
    layout::page(&ctx, "Contact", &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::tests::{ctx, futures_body};

    fn render(response: impl std::future::Future<Output = Response>) -> String {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        futures_body(rt.block_on(response))
    }

    #[test]
    fn the_legal_notice_names_the_editor_the_director_the_host_and_the_data_rights() {
        let html = render(legal(Extension(ctx(None, LEGAL_PATH))));
        assert!(html.contains("<title>Mentions légales — ID 77</title>"));
        for needle in [
            "Département de Seine-et-Marne<br>Hôtel du Département, 12 rue des Saints-Pères, 77010 Melun cedex",
            "<h2>Directeur de la publication</h2>\n<p>Le Président du Conseil départemental",
            "<h2>Hébergement</h2>",
            "<h3>Finalités</h3>",
            "<h3>Durées de conservation</h3>",
            "droit d'accès, de rectification, d'effacement",
            r#"<a href="mailto:dpo@departement77.fr">"#,
        ] {
            assert!(html.contains(needle), "{needle}");
        }
    }

    #[test]
    fn the_accessibility_statement_follows_the_rgaa_form() {
        let html = render(accessibility(Extension(ctx(None, ACCESSIBILITY_PATH))));
        let headings = [
            "<h2>État de conformité</h2>",
            "<h2>Résultats des tests</h2>",
            "<h2>Contenus non accessibles</h2>",
            "<h3>Dérogations pour charge disproportionnée</h3>",
            "<h2>Établissement de cette déclaration</h2>",
            "<h3>Technologies utilisées pour la réalisation du site</h3>",
            "<h3>Environnement de test</h3>",
            "<h3>Outils pour évaluer l'accessibilité</h3>",
            "<h2>Retour d'information et contact</h2>",
            "<h2>Voies de recours</h2>",
        ];
        let mut at = 0;
        for heading in headings {
            let found = html[at..].find(heading).unwrap_or_else(|| panic!("{heading} missing or out of order"));
            at += found;
        }
        assert!(html.contains("<strong>partiellement conforme</strong>"), "the same status as the footer");
        assert!(html.contains(&format!("L'audit automatisé du {AUDIT_DATE}")) && html.contains("axe-core"));
        assert!(html.contains("Défenseur des droits, Libre réponse 71120, 75342 Paris CEDEX 07"));
        assert!(html.contains(&format!(r#"<a href="mailto:{CONTACT_EMAIL}">"#)));
        assert!(html.contains("<a href=\"/accessibilite\">Accessibilité : partiellement conforme</a>"));
    }

    #[test]
    fn the_site_map_lists_every_roles_navigation() {
        let html = site_map();
        for role in [None, Some("member_admin"), Some("provider_agent"), Some("coordinator")] {
            for (href, label) in nav_for(role) {
                assert!(html.contains(&format!(r#"<a href="{href}">{label}</a>"#)), "{href}");
            }
        }
        assert_eq!(html.matches(r#"<a href="/catalogue">"#).count(), 1, "each page once");
        for href in
            [LEGAL_PATH, ACCESSIBILITY_PATH, SITE_MAP_PATH, CONTACT_PATH, "/connexion", "/invitation", "/notifications"]
        {
            assert!(html.contains(&format!(r#"<a href="{href}">"#)), "{href}");
        }
        assert!(html.find("<h2>Tout public</h2>") < html.find("<h2>Coordination"));
        let page = render(site_map_page(Extension(ctx(Some("coordinator"), SITE_MAP_PATH))));
        assert!(page.contains("<h1>Plan du site</h1>") && page.contains(&html));
    }

    #[test]
    fn the_contact_page_gives_a_mail_and_a_postal_address() {
        let html = render(contact(Extension(ctx(None, CONTACT_PATH))));
        assert!(html.contains(&format!(r#"<a href="mailto:{CONTACT_EMAIL}">{CONTACT_EMAIL}</a>"#)));
        assert!(html.contains(ADDRESS) && html.contains("<h1>Contact</h1>"));
    }
}
