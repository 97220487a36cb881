//! One request's page: its facts, history, quotes, feedback, cancellation form, conversation and invoices.

use std::fmt::Write as _;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;

use super::quotes;
use crate::caller;
use crate::forms::{self, Errors, Fields};
use crate::html::{esc, url_component};
use crate::layout;
use crate::pages::billing;
use crate::pages::common::{items, s, safe_id};
use crate::pages::conversation;
use crate::pages::prologue;
use crate::pages::provider::{category_facts, commune_named};
use crate::{AppState, Ctx, fr};

/// Who made a change of the history, in French: the person's name and the role it acted in (« Marie Dupont —
/// Administrateur de la collectivité »), the role alone for older lines, the platform for its own decisions.
/// Never an e-mail address (older tokens carried no name, and the name fell back to the address).
pub fn actor(change: &Value) -> String {
    let role = s(change, "actor_role");
    let name = s(change, "actor_name").trim();
    // A provider's connector signs « connecteur <code> »: the role and the provider's name say it better.
    let name = if name.contains('@') || role == "provider_consumer" { "" } else { name };
    let provider = match (s(change, "provider_name").trim(), s(change, "provider_code")) {
        ("", code) => code,
        (name, _) => name,
    };
    let label = match role {
        // A provider's own answer or work recorded without a person (an older event): the provider did it.
        "" | "system"
            if !provider.is_empty() && matches!(s(change, "status"), "accepted" | "in_progress" | "completed") =>
        {
            return format!("{provider} — Partenaire");
        }
        "" | "system" => None,
        role => Some(match provider {
            provider if !provider.is_empty() && matches!(role, "provider_agent" | "provider_consumer") => {
                format!("{} ({provider})", fr::role(role))
            }
            _ => fr::role(role).to_owned(),
        }),
    };
    match (name, label) {
        ("", Some(label)) => label,
        (name, Some(label)) => format!("{name} — {label}"),
        ("", None) if s(change, "status") == "cancelled" => "La plateforme (automatiquement)".to_owned(),
        ("", None) => "La plateforme (orientation automatique)".to_owned(),
        (name, None) => name.to_owned(),
    }
}

/// The history table: when, from, to, who, why.
pub fn history(changes: &[Value]) -> String {
    let mut body = String::from(
        r#"<table><caption>Étapes de la demande, de la plus ancienne à la plus récente</caption><thead><tr><th scope="col">Date</th><th scope="col">Statut précédent</th><th scope="col">Nouveau statut</th><th scope="col">Par</th><th scope="col">Motif ou précision</th></tr></thead><tbody>"#,
    );
    for change in changes {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&fr::datetime(s(change, "at"))),
            esc(if s(change, "from").is_empty() { "—" } else { fr::request_status(s(change, "from")) }),
            esc(fr::request_status(s(change, "status"))),
            esc(&actor(change)),
            esc(if s(change, "reason").is_empty() { "—" } else { s(change, "reason") })
        );
    }
    body.push_str("</tbody></table>");
    body
}

/// The history with the providers named (`names`: by code): a provider's step is credited to the provider, by
/// name, even when no person is recorded for it.
pub fn history_named(changes: &[Value], names: &std::collections::HashMap<String, String>) -> String {
    let named: Vec<Value> = changes
        .iter()
        .map(|c| {
            let mut c = c.clone();
            if let Some(name) = names.get(s(&c, "provider_code")) {
                c["provider_name"] = Value::String(name.clone());
            }
            // Provider codes in the reason (« Orientée vers caue77 ») become names.
            let reason = fr::reason(s(&c, "reason"), names);
            c["reason"] = Value::String(reason);
            c
        })
        .collect();
    history(&named)
}

/// Whether a request may still be cancelled (before its completion).
pub fn cancellable(status: &str) -> bool {
    matches!(status, "submitted" | "triage" | "referred" | "accepted" | "in_progress")
}

pub async fn detail(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    render_detail(&state, &ctx, &id, &Fields::new(), &Errors::default(), StatusCode::OK).await
}

/// The request's page; `f` and `errors` are those of a quote decision the gateway refused (shown next to the
/// fields, with the summary at the top), answered with `status`.
pub(super) async fn render_detail(
    state: &AppState,
    ctx: &Ctx,
    id: &str,
    f: &Fields,
    errors: &Errors,
    page_status: StatusCode,
) -> Response {
    let (state, ctx) = (state.clone(), ctx.clone());
    let signed_in = caller::token(&state, &ctx);
    let (token, id) = match prologue::with_id(&ctx, signed_in, id, "Cette demande n'existe pas.").await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let request = match state.gateway.get(&format!("/v1/requests/{id}"), Some(&token)).await {
        Ok(r) => r,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let offer_title = match safe_id(s(&request, "offer_id")) {
        Some(offer) => {
            state.gateway.get(&format!("/v1/offers/{offer}"), None).await.ok().map(|o| s(&o, "title").to_owned())
        }
        None => None,
    };
    let status = s(&request, "status");
    let extra = category_facts(&commune_named(&state, &request).await);
    let providers = crate::pages::provider::provider_names(&state, &token).await;
    let provider_name =
        providers.get(s(&request, "provider_code")).map_or(s(&request, "provider_code"), String::as_str);
    let mut body = format!(
        r#"{summary}<dl class="facts">
<dt>Statut</dt><dd><span class="status status-{cls}">{status_fr}</span></dd>
<dt>Offre</dt><dd>{offer}</dd>
<dt>Partenaire</dt><dd>{provider}</dd>
<dt>Déposée le</dt><dd>{at}</dd>
{extra}</dl>
<h2>Description</h2><p>{description}</p>
<h2>Historique</h2>
{history}"#,
        summary = forms::summary(errors),
        cls = esc(status),
        status_fr = esc(fr::request_status(status)),
        offer = match offer_title {
            Some(title) =>
                format!(r#"<a href="/offres/{}">{}</a>"#, url_component(s(&request, "offer_id")), esc(&title)),
            None if s(&request, "offer_id").is_empty() =>
                "Demande d'orientation : la coordination choisit l'offre".to_owned(),
            None => "Offre du catalogue (titre indisponible)".to_owned(),
        },
        provider = esc(if provider_name.is_empty() { "pas encore orientée" } else { provider_name }),
        at = esc(&fr::datetime(s(&request, "submitted_at"))),
        description = crate::html::multiline(if s(&request, "description").is_empty() {
            "—"
        } else {
            s(&request, "description")
        }),
        history = history_named(request["history"].as_array().map(Vec::as_slice).unwrap_or(&[]), &providers),
    );
    let link = url_component(id);
    let csrf = forms::csrf(&ctx.csrf);
    let sees_billing = ctx.is_member() || ctx.is("coordinator") || ctx.is("referent");
    let (quotes, invoices) = if sees_billing {
        let quotes =
            state.gateway.get(&format!("/v1/quotes?request_id={id}"), Some(&token)).await.unwrap_or(Value::Null);
        let invoices =
            state.gateway.get(&format!("/v1/invoices?request_id={id}"), Some(&token)).await.unwrap_or(Value::Null);
        (quotes, invoices)
    } else {
        (Value::Null, Value::Null)
    };
    if sees_billing {
        body.push_str(&quotes::quote_section(items(&quotes), &ctx, &format!("/demandes/{link}"), f, errors));
    }
    if let Some(feedback) = request["feedback"].as_object() {
        let rating = feedback.get("rating").and_then(Value::as_u64).unwrap_or(0);
        let comment = feedback.get("comment").and_then(Value::as_str).unwrap_or("");
        let _ = write!(
            body,
            r#"<h2>Avis de la collectivité</h2><p>Note : <strong>{rating} sur 5</strong>{}</p>"#,
            if comment.is_empty() { String::new() } else { format!(" — « {} »", esc(comment)) }
        );
    }
    if ctx.is_member() && status == "completed" {
        let current = request["feedback"]["rating"].as_u64().unwrap_or(0);
        let mut stars = String::new();
        for n in 1..=5u64 {
            let _ = write!(
                stars,
                r#"<div class="choice"><input type="radio" id="note-{n}" name="note" value="{n}"{}><label for="note-{n}">{n}{}</label></div>"#,
                if n == current { " checked" } else { "" },
                match n {
                    1 => " (pas du tout satisfait)",
                    5 => " (très satisfait)",
                    _ => "",
                }
            );
        }
        let _ = write!(
            body,
            r#"<h2>Votre avis</h2><form method="post" action="/demandes/{link}/avis" class="form" novalidate>{csrf}
<fieldset><legend>Votre satisfaction, de 1 à 5 <span class="req">(obligatoire)</span></legend>{stars}</fieldset>
<div class="field"><label for="commentaire">Commentaire</label><p class="hint" id="commentaire-aide">Facultatif, 2000 caractères au plus. Vous pourrez modifier votre avis jusqu'à la clôture.</p><textarea id="commentaire" name="commentaire" rows="3" aria-describedby="commentaire-aide">{comment}</textarea></div>
<button type="submit">Enregistrer mon avis</button></form>"#,
            comment = esc(request["feedback"]["comment"].as_str().unwrap_or("")),
        );
    }
    if (ctx.is_member() || ctx.is("coordinator")) && cancellable(status) {
        let _ = write!(
            body,
            r#"<h2>Annuler la demande</h2><form method="post" action="/demandes/{link}/annuler" class="form" novalidate>{csrf}
<div class="field"><label for="motif-annulation">Motif de l'annulation</label><p class="hint" id="motif-annulation-aide">Facultatif. Le partenaire et la coordination en sont informés.</p><textarea id="motif-annulation" name="motif" rows="2" aria-describedby="motif-annulation-aide"></textarea></div>
<button type="submit" class="secondary">Annuler la demande</button></form>"#
        );
    }
    body.push_str(&conversation::section(&state, &ctx, &token, id, &format!("/demandes/{link}")).await);
    if sees_billing {
        body.push_str("<h2>Factures</h2>");
        body.push_str(&billing::invoices_table(items(&invoices)));
    }
    layout::page_with_status(&ctx, page_status, &format!("Demande : {}", s(&request, "subject")), &body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn history_says_who_from_and_to() {
        let changes = vec![
            json!({"status": "submitted", "at": "2026-11-29T08:00:00Z", "actor_role": "member_admin"}),
            json!({"status": "referred", "from": "submitted", "at": "2026-11-29T08:01:00Z", "actor_role": "system", "provider_code": "caue77", "reason": "règle <1>"}),
            json!({"status": "accepted", "from": "referred", "actor_role": "provider_agent", "provider_code": "caue77"}),
        ];
        let html = history(&changes);
        assert!(html.contains("<td>—</td><td>Déposée</td><td>Administrateur de la collectivité</td>"));
        assert!(html.contains("<td>Déposée</td><td>Orientée vers un partenaire</td><td>La plateforme (orientation automatique)</td><td>règle &lt;1&gt;</td>"));
        assert!(html.contains("Agent d&#39;un partenaire (caue77)"));
        assert!(html.contains(r#"<th scope="col">Par</th>"#));
    }

    #[test]
    fn history_names_people_and_their_roles_never_their_addresses() {
        let changes = vec![
            json!({"status": "cancelled", "from": "accepted", "actor_role": "member_admin", "actor_name": "Marie Dupont",
                   "reason": "Devis D-1 refusé : budget"}),
            json!({"status": "accepted", "from": "referred", "actor_role": "provider_agent", "actor_name": "Paul Martin",
                   "provider_code": "caue77"}),
            json!({"status": "referred", "actor_role": "coordinator", "actor_name": "dgs@meaux.fr"}),
            json!({"status": "cancelled", "actor_role": "system"}),
            json!({"status": "completed", "actor_role": "provider_consumer", "actor_name": "connecteur caue77", "provider_code": "caue77"}),
        ];
        let html = history(&changes);
        assert!(html.contains("<td>Marie Dupont — Administrateur de la collectivité</td>"));
        assert!(html.contains("<td>Paul Martin — Agent d&#39;un partenaire (caue77)</td>"));
        assert!(html.contains("<td>Coordination (guichet unique)</td>") && !html.contains("dgs@meaux.fr"));
        assert!(html.contains("<td>La plateforme (automatiquement)</td>"));
        assert!(html.contains("<td>Connecteur du partenaire (caue77)</td>"));
    }

    #[test]
    fn a_provider_s_steps_are_credited_to_the_provider_by_name_not_the_platform() {
        let names: std::collections::HashMap<String, String> =
            [("caue77".to_owned(), "CAUE de Seine-et-Marne".to_owned())].into();
        let html = history_named(
            &[
                json!({"status": "accepted", "from": "referred", "actor_role": "provider_agent", "actor_name": "Paul Martin", "provider_code": "caue77"}),
                json!({"status": "accepted", "from": "referred", "actor_role": "system", "provider_code": "caue77"}),
                json!({"status": "referred", "from": "submitted", "actor_role": "system", "provider_code": "caue77"}),
                json!({"status": "completed", "actor_role": "provider_consumer", "actor_name": "connecteur caue77", "provider_code": "caue77"}),
            ],
            &names,
        );
        assert!(html.contains("<td>Paul Martin — Agent d&#39;un partenaire (CAUE de Seine-et-Marne)</td>"), "{html}");
        assert!(html.contains("<td>CAUE de Seine-et-Marne — Partenaire</td>"), "{html}");
        assert!(html.contains("<td>Connecteur du partenaire (CAUE de Seine-et-Marne)</td>"), "{html}");
        assert_eq!(html.matches("La plateforme").count(), 1, "only routing's own step: {html}");
        assert!(!html.contains("caue77"), "{html}");
    }
}
