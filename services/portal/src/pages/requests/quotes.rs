//! The « Devis » section of a request's page, and the member admin's decision forms (accept, refuse) checked
//! in French before the gateway.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::forms::{self, Errors, Fields, Input};
use crate::html::{esc, url_component};
use crate::pages::common::s;
use crate::{Ctx, fr};

/// Labels of the quote decision forms.
pub const SIGNATORY_LABEL: &str = "Nom du signataire";
pub const PURCHASE_ORDER_LABEL: &str = "Numéro d'engagement / bon de commande";
pub const REFUSAL_LABEL: &str = "Motif du refus";
/// The API's limits (billing's): signatory, purchase order number, refusal reason.
pub const MAX_SIGNATORY_CHARS: usize = 200;
pub const MAX_PURCHASE_ORDER_CHARS: usize = 50;
pub const MAX_REFUSAL_CHARS: usize = 1000;

/// The API's field names → the decision forms' ids and labels.
pub const QUOTE_FIELDS: [(&str, &str, &str); 3] = [
    ("signatory_name", "signataire", SIGNATORY_LABEL),
    ("purchase_order_number", "engagement", PURCHASE_ORDER_LABEL),
    ("reason", "motif-refus", REFUSAL_LABEL),
];

/// The acceptance form's body for `POST /v1/quotes/{id}/accept`, or its errors in French.
pub fn acceptance(f: &Fields) -> Result<Value, Errors> {
    let mut errors = Errors::default();
    errors.required(f, "signataire", SIGNATORY_LABEL, MAX_SIGNATORY_CHARS);
    errors.max_len(f, "engagement", PURCHASE_ORDER_LABEL, MAX_PURCHASE_ORDER_CHARS);
    for (name, label) in [("signataire", SIGNATORY_LABEL), ("engagement", PURCHASE_ORDER_LABEL)] {
        if forms::value(f, name).chars().any(char::is_control) && errors.of(name).is_none() {
            errors.add(name, label, format!("Le champ « {label} » contient des caractères non imprimables."));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut body = json!({ "signatory_name": forms::value(f, "signataire") });
    if !forms::value(f, "engagement").is_empty() {
        body["purchase_order_number"] = json!(forms::value(f, "engagement"));
    }
    Ok(body)
}

/// The refusal form's body for `POST /v1/quotes/{id}/refuse`, or its errors in French.
pub fn refusal(f: &Fields) -> Result<Value, Errors> {
    let mut errors = Errors::default();
    errors.required(f, "motif-refus", REFUSAL_LABEL, MAX_REFUSAL_CHARS);
    if errors.is_empty() { Ok(json!({ "reason": forms::value(f, "motif-refus") })) } else { Err(errors) }
}

/// The sentence for a decision the gateway refused as a whole (not one of its fields).
pub fn quote_problem(error: &crate::gateway::ApiError) -> String {
    match error.status {
        403 => "Seul un administrateur de la collectivité peut accepter ou refuser un devis.".to_owned(),
        404 => "Ce devis est introuvable (ou vous n'y avez pas accès).".to_owned(),
        409 => "Ce devis n'attend plus de décision : il a déjà été accepté ou refusé, ou bien il a été annulé ou a \
                expiré. La page montre son état actuel."
            .to_owned(),
        _ => fr::problem(error),
    }
}

/// One fact of a quote (`—` when empty).
fn fact(out: &mut String, label: &str, value: &str) {
    let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", esc(label), esc(if value.is_empty() { "—" } else { value }));
}

/// The « Devis » section of a request's page: each quote with its amounts, status and decision; for a member
/// admin and a proposed quote, the acceptance and refusal forms (`f` and `errors`: a refused submission); for the
/// other users of the member, who must accept it.
pub fn quote_section(quotes: &[Value], ctx: &Ctx, back: &str, f: &Fields, errors: &Errors) -> String {
    let mut body = String::from(r#"<h2 id="devis">Devis</h2>"#);
    if quotes.is_empty() {
        body.push_str("<p>Aucun devis pour cette demande.</p>");
        return body;
    }
    let mut forms_shown = false;
    for q in quotes {
        let status = s(q, "status");
        let number = s(q, "number");
        let _ = write!(body, "<h3>Devis {}</h3><dl class=\"facts\">", esc(number));
        let _ = write!(
            body,
            r#"<dt>Statut du devis</dt><dd><span class="status quote-{}">{}</span></dd>"#,
            esc(status),
            esc(fr::quote_status(status))
        );
        fact(&mut body, "Objet", s(q, "label"));
        match crate::pages::billing::Amounts::of_quote(q) {
            None => fact(&mut body, "Montant", "à préciser par le partenaire"),
            Some(amounts) => body.push_str(&amounts.facts()),
        }
        fact(&mut body, "Proposé le", &fr::datetime(s(q, "issued_at")));
        if status == "proposed" && !s(q, "expires_at").is_empty() {
            fact(&mut body, "Valable jusqu'au", &fr::datetime(s(q, "expires_at")));
        }
        if status != "proposed" {
            // A person's name, never an address (older tokens carried none and the name fell back to it).
            let who = match (s(q, "decided_by_name").trim(), status) {
                (name, "accepted" | "refused") if name.is_empty() || name.contains('@') => {
                    "un administrateur de la collectivité".to_owned()
                }
                (name, _) if name.is_empty() || name.contains('@') => "la plateforme".to_owned(),
                (name, _) => name.to_owned(),
            };
            let when = fr::datetime(s(q, "decided_at"));
            let decision = match status {
                "accepted" => "Accepté",
                "refused" => "Refusé",
                "voided" => "Annulé",
                "expired" => "Expiré",
                _ => "Décidé",
            };
            if s(q, "decided_at").is_empty() {
                fact(&mut body, "Décision", &format!("{decision} par {who}"));
            } else {
                fact(&mut body, "Décision", &format!("{decision} par {who}, le {when}"));
            }
        }
        if status == "accepted" || !s(q, "signatory_name").is_empty() {
            fact(&mut body, "Signataire", s(q, "signatory_name"));
            fact(&mut body, "N° d'engagement / bon de commande", s(q, "purchase_order_number"));
        }
        if !s(q, "decision_reason").is_empty() {
            fact(&mut body, "Motif", s(q, "decision_reason"));
        }
        let _ = write!(
            body,
            r#"</dl><p><a href="/devis/{}.pdf" download>Télécharger le devis {} (PDF)</a></p>"#,
            url_component(s(q, "id")),
            esc(number)
        );
        if status != "proposed" {
            continue;
        }
        if ctx.is("member_admin") && !forms_shown {
            forms_shown = true;
            let action = format!("{back}/devis/{}", url_component(s(q, "id")));
            let csrf = forms::csrf(&ctx.csrf);
            let _ = write!(
                body,
                r#"<p>Le partenaire ne commence la prestation qu'après votre accord sur ce devis. En l'acceptant, vous engagez la dépense de votre collectivité ; en le refusant, vous annulez la demande.</p>
<h4>Accepter le devis</h4>
<form method="post" action="{action}/accepter" class="form" novalidate>{csrf}{signatory}{order}<button type="submit">Accepter le devis</button></form>
<h4>Refuser le devis</h4>
<form method="post" action="{action}/refuser" class="form" novalidate>{csrf}{reason}<button type="submit" class="secondary">Refuser le devis</button></form>"#,
                signatory = forms::field(
                    "signataire",
                    SIGNATORY_LABEL,
                    Input::Text { kind: "text", autocomplete: "off" },
                    forms::value(f, "signataire"),
                    true,
                    "La personne qui engage la collectivité, avec sa qualité, par exemple : Marie Dupont, maire.",
                    errors
                ),
                order = forms::field(
                    "engagement",
                    PURCHASE_ORDER_LABEL,
                    Input::Text { kind: "text", autocomplete: "off" },
                    forms::value(f, "engagement"),
                    false,
                    "Facultatif, 50 caractères au plus : il figurera sur la facture.",
                    errors
                ),
                reason = forms::field(
                    "motif-refus",
                    REFUSAL_LABEL,
                    Input::TextArea { rows: 3 },
                    f.get("motif-refus").map(String::as_str).unwrap_or(""),
                    true,
                    "La demande sera annulée ; le partenaire et la coordination en sont informés.",
                    errors
                ),
            );
        } else if ctx.is_member() && !ctx.is("member_admin") {
            body.push_str(
                "<p>Ce devis attend l'accord de votre collectivité : un administrateur de la collectivité doit \
                 l'accepter pour que le partenaire commence la prestation.</p>",
            );
        } else if !ctx.is_member() {
            body.push_str("<p>Ce devis attend la décision d'un administrateur de la collectivité.</p>");
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn ctx(role: &str) -> Ctx {
        Ctx {
            sid: "s".into(),
            csrf: "jeton-csrf".into(),
            user: Some(crate::session::User {
                id: "u1".into(),
                email: "dgs@meaux.fr".into(),
                display_name: "Marie Dupont".into(),
                role: role.into(),
                member_id: Some("m1".into()),
                provider_code: None,
            }),
            flash: None,
            path: "/demandes/r1".into(),
            client_ip: None,
        }
    }

    fn proposed() -> Value {
        json!({"id": "q1", "number": "D-caue77-2026-000007", "label": "Diagnostic de voirie", "status": "proposed",
               "amount_cents": 245_000, "vat_rate_bp": 2000, "issued_at": "2026-11-29T08:00:00Z",
               "expires_at": "2026-12-29T08:00:00Z"})
    }

    #[test]
    fn the_decision_forms_are_checked_in_french_before_the_gateway() {
        let ok = acceptance(&fields(&[("signataire", " Marie Dupont, maire "), ("engagement", " EJ-2026-0042 ")]));
        assert_eq!(
            ok.ok(),
            Some(json!({"signatory_name": "Marie Dupont, maire", "purchase_order_number": "EJ-2026-0042"}))
        );
        let without_order = acceptance(&fields(&[("signataire", "Marie Dupont"), ("engagement", "  ")]));
        assert_eq!(without_order.ok(), Some(json!({"signatory_name": "Marie Dupont"})), "the number is optional");
        let missing = acceptance(&fields(&[("engagement", &"9".repeat(51))])).err().unwrap_or_default();
        assert_eq!(missing.of("signataire"), Some("Le champ « Nom du signataire » est obligatoire."));
        assert_eq!(
            missing.of("engagement"),
            Some("Le champ « Numéro d'engagement / bon de commande » ne doit pas dépasser 50 caractères.")
        );
        let long = acceptance(&fields(&[("signataire", &"é".repeat(201))])).err().unwrap_or_default();
        assert!(long.of("signataire").is_some_and(|m| m.contains("200 caractères")));
        let control =
            acceptance(&fields(&[("signataire", "Marie"), ("engagement", "EJ\u{7}1")])).err().unwrap_or_default();
        assert!(control.of("engagement").is_some_and(|m| m.contains("non imprimables")));

        assert_eq!(
            refusal(&fields(&[("motif-refus", " Budget non voté ")])).ok(),
            Some(json!({"reason": "Budget non voté"}))
        );
        let empty = refusal(&fields(&[("motif-refus", " ")])).err().unwrap_or_default();
        assert_eq!(empty.of("motif-refus"), Some("Le champ « Motif du refus » est obligatoire."));
        assert!(refusal(&fields(&[("motif-refus", &"x".repeat(1001))])).is_err());
    }

    #[test]
    fn a_member_admin_gets_the_acceptance_and_refusal_forms_of_a_proposed_quote() {
        let html =
            quote_section(&[proposed()], &ctx("member_admin"), "/demandes/r1", &Fields::new(), &Errors::default());
        assert!(html.contains(r#"<h2 id="devis">Devis</h2>"#) && html.contains("<h3>Devis D-caue77-2026-000007</h3>"));
        assert!(html.contains("<dt>Statut du devis</dt><dd><span class=\"status quote-proposed\">Proposé</span></dd>"));
        assert!(html.contains("<dt>Montant HT</dt><dd>2\u{202f}450,00\u{a0}€</dd>"));
        assert!(html.contains("<dt>TVA (20\u{a0}%)</dt><dd>490,00\u{a0}€</dd>"));
        assert!(html.contains("<dt>Montant TTC</dt><dd>2\u{202f}940,00\u{a0}€</dd>"));
        assert!(html.contains("<dt>Valable jusqu&#39;au</dt><dd>29 décembre 2026 à 9 h 00</dd>"));
        assert!(
            html.contains(r#"<form method="post" action="/demandes/r1/devis/q1/accepter" class="form" novalidate>"#)
        );
        assert!(
            html.contains(r#"<form method="post" action="/demandes/r1/devis/q1/refuser" class="form" novalidate>"#)
        );
        assert_eq!(
            html.matches(r#"<input type="hidden" name="_csrf" value="jeton-csrf">"#).count(),
            2,
            "one CSRF field per form"
        );
        assert!(
            html.contains(
                r#"<label for="signataire">Nom du signataire <span class="req">(obligatoire)</span></label>"#
            )
        );
        assert!(html.contains(r#"<label for="engagement">Numéro d&#39;engagement / bon de commande</label>"#));
        assert!(
            html.contains(r#"<label for="motif-refus">Motif du refus <span class="req">(obligatoire)</span></label>"#)
        );
        assert!(html.contains(r#"href="/devis/q1.pdf""#));
        // Errors the gateway gave land next to their fields, the typed values kept.
        let error = crate::gateway::ApiError {
            status: 400,
            kind: "invalid-argument".into(),
            detail: String::new(),
            errors: vec![crate::gateway::FieldError { field: "signatory_name".into(), detail: "is required".into() }],
        };
        let errors = Errors::from_api(&error, &QUOTE_FIELDS);
        let typed = fields(&[("engagement", "EJ-1")]);
        let html = quote_section(&[proposed()], &ctx("member_admin"), "/demandes/r1", &typed, &errors);
        assert!(html.contains(r#"id="signataire-erreur""#) && html.contains(r#"aria-invalid="true""#));
        assert!(html.contains(r#"value="EJ-1""#));
    }

    #[test]
    fn a_member_user_sees_the_quote_and_who_must_accept_it() {
        let html =
            quote_section(&[proposed()], &ctx("member_user"), "/demandes/r1", &Fields::new(), &Errors::default());
        assert!(html.contains("un administrateur de la collectivité doit l'accepter pour que le partenaire commence"));
        assert!(!html.contains("<form"), "no decision form for a member user");
        let html =
            quote_section(&[proposed()], &ctx("coordinator"), "/demandes/r1", &Fields::new(), &Errors::default());
        assert!(html.contains("attend la décision d'un administrateur") && !html.contains("<form"));
    }

    #[test]
    fn decided_quotes_say_who_when_and_why() {
        let accepted = json!({"id": "q1", "number": "D-1", "status": "accepted", "amount_cents": 1000,
            "vat_note": "TVA non applicable, art. 256 B du CGI", "decided_at": "2026-11-30T09:00:00Z",
            "decided_by_name": "Marie Dupont", "signatory_name": "Marie Dupont, maire", "purchase_order_number": "EJ-42"});
        let html = quote_section(&[accepted], &ctx("member_admin"), "/demandes/r1", &Fields::new(), &Errors::default());
        assert!(html.contains(">Accepté</span>"));
        assert!(html.contains("<dt>Décision</dt><dd>Accepté par Marie Dupont, le 30 novembre 2026 à 10 h 00</dd>"));
        assert!(html.contains("<dt>Signataire</dt><dd>Marie Dupont, maire</dd>"));
        assert!(html.contains("<dt>N° d&#39;engagement / bon de commande</dt><dd>EJ-42</dd>"));
        assert!(html.contains(
            "<dt>TVA</dt><dd>TVA non applicable, art. 256 B du CGI</dd><dt>Montant TTC</dt><dd>10,00\u{a0}€</dd>"
        ));
        assert!(!html.contains("<form") && !html.contains("Valable"), "a decided quote has no forms nor expiry");
        let refused = json!({"id": "q2", "number": "D-2", "status": "refused", "decided_at": "2026-11-30T09:00:00Z",
            "decided_by_name": "Marie Dupont", "decision_reason": "Budget <non> voté"});
        let html = quote_section(&[refused], &ctx("member_user"), "/demandes/r1", &Fields::new(), &Errors::default());
        assert!(html.contains(">Refusé</span>") && html.contains("<dt>Motif</dt><dd>Budget &lt;non&gt; voté</dd>"));
        assert!(!html.contains("Signataire"));
        let by_address = json!({"id": "q2", "number": "D-2", "status": "refused", "decided_by_name": "dgs@meaux.fr"});
        let html = quote_section(&[by_address], &ctx("member_user"), "/d", &Fields::new(), &Errors::default());
        assert!(html.contains("<dd>Refusé par un administrateur de la collectivité</dd>") && !html.contains("dgs@"));
        for (status, french) in [("voided", "Annulé"), ("expired", "Expiré")] {
            let quote = json!({"id": "q3", "number": "D-3", "status": status, "decision_reason": "demande annulée"});
            let html =
                quote_section(&[quote], &ctx("member_admin"), "/demandes/r1", &Fields::new(), &Errors::default());
            assert!(html.contains(&format!("<dd>{french} par la plateforme</dd>")), "{html}");
        }
        assert!(
            quote_section(&[], &ctx("member_admin"), "/d", &Fields::new(), &Errors::default()).contains("Aucun devis")
        );
    }

    #[test]
    fn refused_decisions_are_told_in_french() {
        let error = |status: u16, kind: &str| crate::gateway::ApiError {
            status,
            kind: kind.into(),
            detail: String::new(),
            errors: vec![],
        };
        assert!(
            quote_problem(&error(403, "permission-denied")).starts_with("Seul un administrateur de la collectivité")
        );
        assert!(quote_problem(&error(409, "invalid-transition")).contains("n'attend plus de décision"));
        assert!(quote_problem(&error(503, "unavailable")).contains("indisponible"));
    }
}
