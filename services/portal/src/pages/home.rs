//! The home page: for a visitor, what ID 77 is; for each signed-in role, what waits for it (its next actions,
//! counted from the lists it may read, one call per list) and the way to its screens. A list that does not answer
//! leaves its line out rather than failing the page.

mod operations;

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use serde_json::Value;

use self::operations::service_name;
use super::common::{items, s};
use super::requests::list::status_badge;
use crate::html::{esc, url_component};
use crate::{AppState, Ctx, caller, fr, layout};

const VISITOR: &str = r#"<p class="lead">ID 77 est le guichet unique de l'ingénierie départementale : les communes, intercommunalités et syndicats de Seine-et-Marne y adhèrent gratuitement, consultent le catalogue des offres et déposent leurs demandes, orientées vers le bon service du Département ou organisme associé.</p>
<h2>Que souhaitez-vous faire ?</h2>
<ul class="cards">
<li><h3><a href="/catalogue">Consulter le catalogue</a></h3><p>Ingénierie, sensibilisation et formation, prêts d'exposition.</p></li>
<li><h3><a href="/adherer">Adhérer</a></h3><p>Trouvez votre collectivité dans l'annuaire et demandez l'adhésion.</p></li>
<li><h3><a href="/connexion">Se connecter</a></h3><p>Pour les collectivités adhérentes, les partenaires et la coordination.</p></li>
</ul>"#;

const MEMBER_CARDS: &str = r#"<h2>Votre espace collectivité</h2>
<ul class="cards">
<li><h3><a href="/catalogue">Trouver une offre</a></h3><p>Recherchez dans le catalogue et déposez une demande.</p></li>
<li><h3><a href="/demandes/nouvelle">Je ne sais pas quelle offre choisir</a></h3><p>Décrivez votre besoin : la coordination vous oriente.</p></li>
<li><h3><a href="/demandes">Suivre mes demandes</a></h3><p>Statut, historique, échanges avec le partenaire.</p></li>
<li><h3><a href="/factures">Devis et factures</a></h3><p>Consultez et téléchargez vos documents.</p></li>
</ul>"#;

const PROVIDER_CARDS: &str = r#"<h2>Votre espace partenaire</h2>
<ul class="cards">
<li><h3><a href="/orientations">Orientations reçues</a></h3><p>Les demandes qui vous sont confiées, avec leur date limite de réponse.</p></li>
<li><h3><a href="/factures">Devis et factures</a></h3><p>Les documents émis en votre nom.</p></li>
</ul>"#;

const COORDINATOR_CARDS: &str = r#"<h2>Coordination</h2>
<ul class="cards">
<li><h3><a href="/coordination/triage">Demandes à orienter</a></h3><p>Les demandes d'orientation et celles qu'aucun partenaire n'a prises.</p></li>
<li><h3><a href="/coordination/statistiques">Statistiques</a></h3><p>Demandes par statut, catégorie, partenaire et territoire ; délais ; satisfaction.</p></li>
<li><h3><a href="/coordination/adhesions">Adhésions à valider</a></h3><p>Validez les demandes d'adhésion et invitez le premier administrateur.</p></li>
<li><h3><a href="/coordination/orientations?a_risque=1">Orientations à risque</a></h3><p>Les orientations sans réponse qui approchent de leur échéance.</p></li>
<li><h3><a href="/coordination/regles">Règles d'orientation</a></h3><p>Qui reçoit quelles demandes.</p></li>
</ul>"#;

pub async fn home(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let Some(role) = ctx.user.as_ref().map(|u| u.role.clone()) else {
        return layout::page(&ctx, "Bienvenue sur ID 77", VISITOR);
    };
    let token = match caller::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let get = |path: &'static str| {
        let (state, token) = (state.clone(), token.clone());
        async move { state.gateway.get(path, Some(&token)).await.ok() }
    };
    let body = match role.as_str() {
        "member_admin" | "member_user" => {
            let (requests, quotes) = tokio::join!(get("/v1/requests?limit=100"), get("/v1/quotes?limit=100"));
            member_home(requests.as_ref(), quotes.as_ref())
        }
        "provider_agent" => provider_home(get("/v1/referrals?limit=100").await.as_ref()),
        "coordinator" => {
            let (triage, pending, at_risk) = tokio::join!(
                get("/v1/triage?limit=100"),
                get("/v1/memberships?status=pending&limit=100"),
                get("/v1/referrals?at_risk=true&limit=100")
            );
            coordinator_home(triage.as_ref(), pending.as_ref(), at_risk.as_ref())
        }
        "referent" => {
            let (members, requests) = tokio::join!(get("/v1/memberships?limit=100"), get("/v1/requests?limit=20"));
            referent_home(members.as_ref(), requests.as_ref())
        }
        "operator" => {
            let (ready, audit, operations) = tokio::join!(
                state.gateway.get("/readyz", None),
                get("/v1/audit-events?limit=10"),
                get("/v1/operations")
            );
            // Not ready: the problem names each service that is not serving.
            let ready = ready.map_err(|e| e.errors.into_iter().map(|f| f.field).collect::<Vec<_>>());
            operator_home(&ready, operations.as_ref(), audit.as_ref())
        }
        _ => "<p>Le catalogue est accessible depuis le menu.</p>".to_owned(),
    };
    layout::page(&ctx, "Bienvenue sur ID 77", &body)
}

/// « À faire » : the lines whose count is not zero, each a link; « Rien ne vous attend » when none.
fn todo(lines: &[(usize, &str, &str, &str)]) -> String {
    let mut html = String::from(r#"<h2>À faire</h2>"#);
    let due: Vec<_> = lines.iter().filter(|(n, ..)| *n > 0).collect();
    if due.is_empty() {
        html.push_str("<p>Rien ne vous attend pour le moment.</p>");
        return html;
    }
    html.push_str(r#"<ul class="todo">"#);
    for (n, one, many, href) in due {
        let words = if *n == 1 { one } else { many };
        let _ = write!(html, r#"<li><a href="{href}">{} {words}</a></li>"#, fr::count(*n as u64));
    }
    html.push_str("</ul>");
    html
}

fn count(page: Option<&Value>, keep: impl Fn(&Value) -> bool) -> usize {
    page.map(|p| items(p).iter().filter(|v| keep(v)).count()).unwrap_or(0)
}

const CLOSED: [&str; 4] = ["completed", "closed", "cancelled", "declined"];

pub fn member_home(requests: Option<&Value>, quotes: Option<&Value>) -> String {
    let open = count(requests, |r| !CLOSED.contains(&s(r, "status")));
    let to_answer = count(quotes, |q| s(q, "status") == "proposed");
    let mut html = todo(&[
        (to_answer, "devis attend votre accord", "devis attendent votre accord", "/factures"),
        (open, "demande en cours", "demandes en cours", "/demandes?vue=en-cours"),
    ]);
    html.push_str(MEMBER_CARDS);
    html
}

pub fn provider_home(referrals: Option<&Value>) -> String {
    let waiting: Vec<&Value> =
        referrals.map(|p| items(p).iter().filter(|r| s(r, "status") == "offered").collect()).unwrap_or_default();
    let mut html = todo(&[(
        waiting.len(),
        "orientation attend votre réponse",
        "orientations attendent votre réponse",
        "/orientations",
    )]);
    if let Some(next) = waiting.iter().map(|r| s(r, "respond_by")).filter(|d| !d.is_empty()).min() {
        let _ = write!(html, "<p>Prochaine échéance : {}.</p>", esc(&fr::datetime(next)));
    }
    html.push_str(PROVIDER_CARDS);
    html
}

pub fn coordinator_home(triage: Option<&Value>, pending: Option<&Value>, at_risk: Option<&Value>) -> String {
    let mut html = todo(&[
        (count(triage, |_| true), "demande à orienter", "demandes à orienter", "/coordination/triage"),
        (count(pending, |_| true), "adhésion à valider", "adhésions à valider", "/coordination/adhesions"),
        (
            count(at_risk, |_| true),
            "orientation à risque",
            "orientations à risque",
            "/coordination/orientations?a_risque=1",
        ),
    ]);
    html.push_str(COORDINATOR_CARDS);
    html
}

/// The référent: the members it follows, and their latest requests.
pub fn referent_home(members: Option<&Value>, requests: Option<&Value>) -> String {
    let members = members.map(items).unwrap_or_default();
    let mut html = String::from("<h2>Les collectivités que vous suivez</h2>");
    if members.is_empty() {
        html.push_str("<p>La coordination ne vous a encore confié aucune collectivité.</p>");
    } else {
        html.push_str(r#"<table><caption class="visually-hidden">Collectivités suivies</caption><thead><tr><th scope="col">Collectivité</th><th scope="col">Adhésion</th><th scope="col">Depuis le</th></tr></thead><tbody>"#);
        for m in members {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(s(m, "name")),
                esc(fr::member_status(s(m, "status"))),
                esc(&fr::date(s(m, "approved_at")))
            );
        }
        html.push_str("</tbody></table>");
    }
    let names: HashMap<&str, &str> = members.iter().map(|m| (s(m, "id"), s(m, "name"))).collect();
    html.push_str("<h2>Leurs dernières demandes</h2>");
    let requests = requests.map(items).unwrap_or_default();
    if requests.is_empty() {
        html.push_str("<p>Aucune demande pour le moment.</p>");
        return html;
    }
    html.push_str(r#"<table><caption class="visually-hidden">Dernières demandes des collectivités suivies</caption><thead><tr><th scope="col">Demande</th><th scope="col">Collectivité</th><th scope="col">Statut</th><th scope="col">Déposée le</th></tr></thead><tbody>"#);
    for r in requests {
        let _ = write!(
            html,
            r#"<tr><th scope="row"><a href="/demandes/{}">{}</a></th><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            url_component(s(r, "id")),
            esc(s(r, "subject")),
            esc(names.get(s(r, "member_id")).copied().unwrap_or("—")),
            status_badge(s(r, "status")),
            esc(&fr::date(s(r, "submitted_at")))
        );
    }
    html.push_str("</tbody></table>");
    html
}

/// The French name of an audit log entry's kind (its code when unknown).
pub fn audit_kind(kind: &str) -> &str {
    match kind {
        "login.succeeded" => "Connexion",
        "login.failed" => "Échec de connexion",
        "account.locked" => "Compte verrouillé",
        "login.throttled" => "Connexions freinées",
        "token.reuse_detected" => "Réutilisation d'un jeton détectée",
        "user.invited" => "Invitation envoyée",
        "user.activated" => "Compte activé",
        "user.removed" => "Compte retiré",
        "membership.approved" => "Adhésion validée",
        "membership.refused" => "Adhésion refusée",
        "referent.assigned" => "Référent désigné",
        "signing_key.rotated" => "Clé de signature renouvelée",
        "password_reset.requested" => "Réinitialisation de mot de passe demandée",
        "password.reset" => "Mot de passe réinitialisé",
        "password.changed" => "Mot de passe modifié",
        other => other,
    }
}

/// What an audit log entry concerns: its subject (an e-mail address), or, when the subject is an internal id, what
/// kind of thing it is, in words (an id means nothing to a reader, and the operator cannot list members).
pub fn audit_subject(kind: &str, subject: &str) -> String {
    let is_id = subject.len() == 36
        && subject
            .char_indices()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() });
    if !is_id {
        return subject.to_owned();
    }
    match kind.split_once('.').map_or(kind, |(family, _)| family) {
        "membership" | "referent" => "une collectivité adhérente".to_owned(),
        "user" | "password" | "password_reset" | "login" | "account" | "token" => "un compte".to_owned(),
        "signing_key" => "la clé de signature".to_owned(),
        _ => "—".to_owned(),
    }
}

/// The operator: whether every service is ready (the gateway's readiness), what waits in the outboxes and the
/// consumers, the dead letters (`GET /v1/operations`), and the latest audit log entries.
pub fn operator_home(ready: &Result<Value, Vec<String>>, operations: Option<&Value>, audit: Option<&Value>) -> String {
    let mut html = String::from("<h2>État des services</h2>");
    match ready {
        Ok(answer) => {
            let upstreams = answer["upstreams"].as_object().cloned().unwrap_or_default();
            let all = upstreams.values().all(|v| v.as_str() == Some("serving"));
            let _ = write!(
                html,
                "<p>{}</p>",
                if all { "Tous les services sont prêts." } else { "Un service au moins n'est pas prêt." }
            );
            html.push_str(r#"<ul class="todo">"#);
            for (name, state) in &upstreams {
                let state = if state.as_str() == Some("serving") { "prêt" } else { "indisponible" };
                let _ = write!(html, "<li>{} : {state}</li>", esc(&service_name(name)));
            }
            html.push_str("</ul>");
        }
        Err(failing) if failing.is_empty() => html.push_str("<p>La passerelle ne répond pas.</p>"),
        Err(failing) => {
            let names: Vec<String> = failing.iter().map(|n| service_name(n)).collect();
            let _ = write!(html, "<p>La plateforme n'est pas prête : {} ne répond pas.</p>", esc(&names.join(", ")));
        }
    }
    html.push_str(&operations::section(operations));
    html.push_str("<h2>Journal d'audit récent</h2>");
    let entries = audit.map(items).unwrap_or_default();
    if entries.is_empty() {
        html.push_str("<p>Aucune entrée.</p>");
        return html;
    }
    html.push_str(r#"<table><caption class="visually-hidden">Dix dernières entrées du journal d'audit</caption><thead><tr><th scope="col">Quand</th><th scope="col">Événement</th><th scope="col">Concerne</th></tr></thead><tbody>"#);
    for e in entries {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&fr::datetime(s(e, "at"))),
            esc(audit_kind(s(e, "kind"))),
            esc(&audit_subject(s(e, "kind"), s(e, "subject")))
        );
    }
    html.push_str("</tbody></table>");
    html
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_role_sees_what_waits_for_it() {
        let requests = json!({"items": [{"status": "referred"}, {"status": "completed"}, {"status": "accepted"}]});
        let quotes = json!({"items": [{"status": "proposed"}, {"status": "accepted"}]});
        let html = member_home(Some(&requests), Some(&quotes));
        assert!(html.contains(r#"<a href="/factures">1 devis attend votre accord</a>"#), "{html}");
        assert!(html.contains("2 demandes en cours"), "{html}");

        let referrals = json!({"items": [
            {"status": "offered", "respond_by": "2026-12-10T16:00:00Z"},
            {"status": "offered", "respond_by": "2026-12-08T16:00:00Z"},
            {"status": "accepted", "respond_by": "2026-12-01T16:00:00Z"}
        ]});
        let html = provider_home(Some(&referrals));
        assert!(html.contains("2 orientations attendent votre réponse"), "{html}");
        assert!(html.contains("Prochaine échéance : 8 décembre 2026"), "{html}");

        let none = json!({"items": []});
        let html = coordinator_home(Some(&none), Some(&json!({"items": [{}]})), None);
        assert!(html.contains("1 adhésion à valider") && !html.contains("demande à orienter</a>"), "{html}");
        assert!(coordinator_home(None, None, None).contains("Rien ne vous attend"));
    }

    #[test]
    fn the_referent_sees_its_members_and_their_requests_by_name() {
        let members = json!({"items": [{"id": "m1", "name": "Meaux", "status": "active", "approved_at": "2026-11-02T10:00:00Z"}]});
        let requests = json!({"items": [{"id": "r1", "member_id": "m1", "subject": "Voirie <rue>", "status": "referred", "submitted_at": "2026-12-01T09:00:00Z"}]});
        let html = referent_home(Some(&members), Some(&requests));
        assert!(html.contains("<td>Meaux</td><td>Active</td><td>2 novembre 2026</td>"), "{html}");
        assert!(html.contains(r#"<a href="/demandes/r1">Voirie &lt;rue&gt;</a></th><td>Meaux</td>"#), "{html}");
        assert!(referent_home(None, None).contains("aucune collectivité"));
    }

    #[test]
    fn the_operator_sees_readiness_and_the_audit_log_in_french() {
        let ready =
            Ok(json!({"status": "ready", "upstreams": {"billing": "serving", "routing": "connection refused"}}));
        let audit = json!({"items": [{"at": "2026-12-06T14:14:00Z", "kind": "login.failed", "subject": "a@b.fr"}]});
        let html = operator_home(&ready, None, Some(&audit));
        assert!(html.contains("Un service au moins n'est pas prêt."), "{html}");
        assert!(html.contains("<li>Facturation : prêt</li>") && html.contains("<li>Orientation : indisponible</li>"));
        assert!(
            html.contains("<td>6 décembre 2026 à 15 h 14</td><td>Échec de connexion</td><td>a@b.fr</td>"),
            "{html}"
        );
        assert!(html.contains("Les files d'attente ne peuvent pas être lues"), "{html}");
        let uuid = "01a24e1f-9832-70fa-8a51-6e0a7f8bfeb7";
        assert_eq!(audit_subject("membership.approved", uuid), "une collectivité adhérente");
        assert_eq!(audit_subject("user.removed", uuid), "un compte");
        assert_eq!(audit_subject("login.failed", "a@b.fr"), "a@b.fr");
        let audit = json!({"items": [{"at": "2026-12-06T14:14:00Z", "kind": "referent.assigned", "subject": uuid}]});
        assert!(!operator_home(&ready, None, Some(&audit)).contains(uuid));
        assert!(
            operator_home(&Err(vec!["routing".into()]), None, None).contains("n'est pas prête : Orientation ne répond")
        );
    }
}
