//! The coordinator's triage queue (`GET /v1/triage`): open orientation requests and requests no provider was
//! left for, each placed with an offer (routed by the rules) and/or a provider (`POST /v1/triage/{id}/assign`).

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use serde_json::{Value, json};

use super::common::{items, s, safe_id};
use crate::caller::{self, check_csrf};
use crate::forms::{self, Fields};
use crate::html::{esc, options, url_component};
use crate::layout::{ERROR_FLASH, see_other};
use crate::{AppState, Ctx, fr, layout};

/// The assignment a triage form asks for: an offer id and/or a provider code and a note (an open orientation
/// request, `ouverte=1`, needs the offer: routing refuses it otherwise); `Err` in French.
pub fn assignment(f: &Fields) -> Result<Value, String> {
    let offer = forms::value(f, "offre");
    let provider = forms::value(f, "partenaire");
    let note = forms::value(f, "note");
    if offer.is_empty() && forms::value(f, "ouverte") == "1" {
        return Err("Choisissez l'offre qui convient : une demande d'orientation en a besoin pour être confiée.".into());
    }
    if offer.is_empty() && provider.is_empty() {
        return Err("Choisissez une offre, un partenaire, ou les deux, pour orienter la demande.".into());
    }
    if !offer.is_empty() && safe_id(offer).is_none() || !provider.is_empty() && safe_id(provider).is_none() {
        return Err("Cette offre ou ce partenaire est inconnu.".into());
    }
    if note.chars().count() > 1000 {
        return Err("La note ne doit pas dépasser 1000 caractères.".into());
    }
    Ok(json!({ "offer_id": offer, "provider_code": provider, "note": note }))
}

pub async fn queue(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let token = match caller::coordinator_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let page = match state.gateway.get("/v1/triage?limit=100", Some(&token)).await {
        Ok(p) => p,
        Err(error) => return layout::api_error_page(&ctx, &error),
    };
    let queue = items(&page);
    let mut body = String::from(
        "<p>Les demandes d'orientation (sans offre choisie) et celles qu'aucun partenaire n'a pu prendre. \
         Choisissez une offre (la demande suit alors les règles d'orientation), un partenaire, ou les deux.</p>",
    );
    if queue.is_empty() {
        body.push_str("<p>Aucune demande à orienter.</p>");
        return layout::page(&ctx, "Demandes à orienter", &body);
    }
    let offers = state.gateway.get("/v1/offers?limit=100", None).await.unwrap_or(Value::Null);
    let providers = state.gateway.get("/v1/providers", None).await.unwrap_or(Value::Null);
    let mut offer_items = vec![(String::new(), "— Aucune offre —".to_owned())];
    offer_items.extend(items(&offers).iter().map(|o| {
        (
            s(o, "id").to_owned(),
            format!("{} ({}, {})", s(o, "title"), fr::category(s(o, "category")), s(o, "provider_code")),
        )
    }));
    let mut provider_items = vec![(String::new(), "— Selon l'offre —".to_owned())];
    provider_items.extend(
        items(&providers).iter().map(|p| (s(p, "code").to_owned(), format!("{} ({})", s(p, "name"), s(p, "code")))),
    );
    // The members' names, one call per member.
    let mut names: HashMap<String, String> = HashMap::new();
    for item in queue {
        let member = s(item, "member_id");
        if names.contains_key(member) {
            continue;
        }
        let name = match safe_id(member) {
            Some(m) => state
                .gateway
                .get(&format!("/v1/memberships/{m}"), Some(&token))
                .await
                .ok()
                .map(|v| s(&v, "name").to_owned()),
            None => None,
        };
        names.insert(member.to_owned(), name.filter(|n| !n.is_empty()).unwrap_or_else(|| member.to_owned()));
    }
    let _ = write!(
        body,
        r#"<p>{} demande{} à orienter.</p><ol class="triage">"#,
        queue.len(),
        if queue.len() > 1 { "s" } else { "" }
    );
    for (n, item) in queue.iter().enumerate() {
        let id = url_component(s(item, "request_id"));
        let subject = esc(s(item, "subject"));
        let open = s(item, "offer_id").is_empty();
        let why = match s(item, "reason") {
            "" => "Demande d'orientation : la collectivité n'a pas choisi d'offre.".to_owned(),
            reason => format!("Aucun partenaire disponible : {reason}"),
        };
        let _ = write!(
            body,
            r#"<li class="triage-item"><h2 id="demande-{n}"><a href="/demandes/{id}">{subject}</a></h2>
<dl class="facts"><dt>Collectivité</dt><dd>{member}</dd><dt>Reçue le</dt><dd>{at}</dd><dt>Motif</dt><dd>{why}</dd></dl>
<p>{description}</p>
<form method="post" action="/coordination/triage/{id}/orienter" class="form" novalidate>{csrf}{open}
<fieldset><legend>Orienter la demande « {subject} »</legend>
<div class="field"><label for="offre-{n}">Offre{offer_required}</label><select id="offre-{n}" name="offre"{offer_attrs}>{offers}</select></div>
<div class="field"><label for="partenaire-{n}">Partenaire</label><p class="hint" id="partenaire-{n}-aide">Sans partenaire choisi, les règles d'orientation de l'offre choisissent.</p><select id="partenaire-{n}" name="partenaire" aria-describedby="partenaire-{n}-aide">{providers}</select></div>
<div class="field"><label for="note-{n}">Note pour le partenaire</label><textarea id="note-{n}" name="note" rows="2"></textarea></div>
<button type="submit">Orienter<span class="visually-hidden"> la demande {subject}</span></button></fieldset></form></li>"#,
            member = esc(names.get(s(item, "member_id")).map(String::as_str).unwrap_or("")),
            at = esc(&fr::datetime(s(item, "received_at"))),
            why = esc(&why),
            description = crate::html::multiline(s(item, "description")),
            csrf = forms::csrf(&ctx.csrf),
            open = if open { r#"<input type="hidden" name="ouverte" value="1">"# } else { "" },
            offer_required = if open { r#" <span class="req">(obligatoire)</span>"# } else { "" },
            offer_attrs = if open { " required" } else { "" },
            offers = options(&offer_items, s(item, "offer_id")),
            providers = options(&provider_items, ""),
        );
    }
    body.push_str("</ol>");
    layout::page(&ctx, "Demandes à orienter", &body)
}

/// `POST /coordination/triage/{id}/orienter`.
pub async fn assign(
    State(state): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(r) = check_csrf(&ctx, &f) {
        return r;
    }
    let token = match caller::coordinator_token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(id) = safe_id(&id) else {
        return layout::error_page(&ctx, StatusCode::NOT_FOUND, "Introuvable", "Cette demande n'existe pas.");
    };
    let message = match assignment(&f) {
        Err(message) => format!("{ERROR_FLASH}{message}"),
        Ok(body) => match state.gateway.post(&format!("/v1/triage/{id}/assign"), Some(&token), &body).await {
            Ok(referral) => format!(
                "La demande est orientée vers le partenaire {} : il a jusqu'au {} pour répondre.",
                s(&referral, "provider_code"),
                fr::datetime(s(&referral, "respond_by"))
            ),
            Err(error) => format!("{ERROR_FLASH}{}", fr::problem(&error)),
        },
    };
    state.sessions.update(&ctx.sid, |session| session.flash = Some(message)).await;
    see_other("/coordination/triage")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_triage_form_needs_an_offer_or_a_provider() {
        assert!(assignment(&fields(&[("note", "x")])).is_err_and(|m| m.contains("Choisissez une offre")));
        assert_eq!(
            assignment(&fields(&[("partenaire", "caue77"), ("note", " voir le maire ")])),
            Ok(json!({"offer_id": "", "provider_code": "caue77", "note": "voir le maire"}))
        );
        assert!(assignment(&fields(&[("offre", "0193f6a2-1c2b"), ("partenaire", "")])).is_ok());
        // An open orientation request needs its offer, with or without a provider.
        let open = assignment(&fields(&[("ouverte", "1"), ("partenaire", "caue77")]));
        assert!(open.is_err_and(|m| m.contains("une demande d'orientation en a besoin")));
        assert!(assignment(&fields(&[("ouverte", "1"), ("offre", "o-1"), ("partenaire", "caue77")])).is_ok());
        assert!(assignment(&fields(&[("offre", "../v1/users")])).is_err());
        assert!(assignment(&fields(&[("partenaire", "caue77"), ("note", &"x".repeat(1001))])).is_err());
    }
}
