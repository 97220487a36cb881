//! « Mes notifications » (`/compte/notifications`): the caller's own notification mail preferences, for every
//! signed-in role (`GET`/`PUT /v1/me/notification-preferences`, docs/adr/0012-notifications.md). One form with
//! two checkboxes, posted back and redirected (POST-redirect-GET) with a confirmation.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Extension, Form};
use reqwest::Method;
use serde_json::{Value, json};

use crate::caller;
use crate::forms::{self, Errors, Fields};
use crate::html::esc;
use crate::layout::see_other;
use crate::pages::prologue;
use crate::{AppState, Ctx, layout};

/// The page's path.
pub const PATH: &str = crate::layout::NOTIFICATIONS_PATH;
const TITLE: &str = "Mes notifications";
const API_PATH: &str = "/v1/me/notification-preferences";
/// Form field id and label of each kind of mail.
const STATUS_FIELD: &str = "statut";
const STATUS_LABEL: &str = "Changements de statut de mes demandes";
const MESSAGES_FIELD: &str = "messages";
const MESSAGES_LABEL: &str = "Nouveaux messages";
/// The API's field names mapped to the form's ids and labels (for the gateway's field errors).
const API_FIELDS: [(&str, &str, &str); 2] =
    [("status_changed", STATUS_FIELD, STATUS_LABEL), ("message_posted", MESSAGES_FIELD, MESSAGES_LABEL)];
pub const SAVED: &str = "Vos préférences de notification sont enregistrées.";

/// Which mails the user wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preferences {
    pub status_changed: bool,
    pub message_posted: bool,
}

impl Preferences {
    /// From the gateway's answer; a kind it does not state is on (every kind is on until turned off).
    pub fn from_api(value: &Value) -> Self {
        Self {
            status_changed: value["status_changed"].as_bool().unwrap_or(true),
            message_posted: value["message_posted"].as_bool().unwrap_or(true),
        }
    }

    /// From the submitted form: a browser sends a checkbox only when it is ticked, so an absent box is off.
    pub fn from_form(fields: &Fields) -> Self {
        Self { status_changed: checked(fields, STATUS_FIELD), message_posted: checked(fields, MESSAGES_FIELD) }
    }

    /// The body of the `PUT`: both kinds, always (the page shows both).
    pub fn to_api(self) -> Value {
        json!({ "status_changed": self.status_changed, "message_posted": self.message_posted })
    }
}

/// Whether the checkbox `name` was ticked: present with the form's value (`1`, or a browser's default `on`).
fn checked(fields: &Fields, name: &str) -> bool {
    matches!(forms::value(fields, name), "1" | "on")
}

/// One labelled checkbox, marked invalid (and described by its error) when the gateway refused it.
fn checkbox(id: &str, label: &str, hint: &str, on: bool, errors: &Errors) -> String {
    let error = errors.of(id);
    let mut described = vec![format!("{id}-aide")];
    if error.is_some() {
        described.push(format!("{id}-erreur"));
    }
    let error_html = error
        .map(|e| {
            format!(
                r#"<p class="field-error" id="{id}-erreur"><span class="visually-hidden">Erreur : </span>{}</p>"#,
                esc(e)
            )
        })
        .unwrap_or_default();
    format!(
        r#"<div class="field option{invalid}"><div class="checkbox"><input type="checkbox" id="{id}" name="{id}" value="1" aria-describedby="{described}"{aria}{checked}><label for="{id}">{label}</label></div><p class="hint" id="{id}-aide">{hint}</p>{error_html}</div>"#,
        invalid = if error.is_some() { " field-invalid" } else { "" },
        described = esc(&described.join(" ")),
        aria = if error.is_some() { r#" aria-invalid="true""# } else { "" },
        checked = if on { " checked" } else { "" },
        label = esc(label),
        hint = esc(hint),
    )
}

/// The page's body: what the mails are, the form, its error summary.
pub fn body(ctx: &Ctx, preferences: Preferences, errors: &Errors) -> String {
    let email = ctx.user.as_ref().map(|u| u.email.as_str()).unwrap_or("");
    let to = if email.is_empty() {
        "Les courriels sont envoyés à l'adresse de votre compte.".to_owned()
    } else {
        format!("Les courriels sont envoyés à {}.", esc(email))
    };
    format!(
        r#"{summary}<p>Choisissez les courriels que la plateforme vous envoie. {to} Les avis affichés dans le portail ne changent pas.</p>
<form method="post" action="{PATH}" class="form" novalidate>{csrf}
<fieldset><legend>M'envoyer un courriel pour les</legend>
{status}
{messages}
</fieldset>
<button type="submit">Enregistrer mes préférences</button></form>"#,
        summary = forms::summary(errors),
        csrf = forms::csrf(&ctx.csrf),
        status = checkbox(
            STATUS_FIELD,
            STATUS_LABEL,
            if ctx.is_member() {
                "Quand une demande de votre collectivité change de statut (orientée, acceptée, terminée…)."
            } else {
                "Ces courriels sont envoyés aux utilisateurs des collectivités pour leurs propres demandes."
            },
            preferences.status_changed,
            errors
        ),
        messages = checkbox(
            MESSAGES_FIELD,
            MESSAGES_LABEL,
            "Quand un message est posté dans un échange auquel vous participez.",
            preferences.message_posted,
            errors
        ),
    )
}

/// `GET /compte/notifications`.
pub async fn show(State(state): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let token = match caller::token(&state, &ctx).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    match state.gateway.get(API_PATH, Some(&token)).await {
        Ok(value) => layout::page(&ctx, TITLE, &body(&ctx, Preferences::from_api(&value), &Errors::default())),
        Err(error) => layout::api_error_page(&ctx, &error),
    }
}

/// `POST /compte/notifications`: saves both kinds, then back to the page with a confirmation; the form again
/// with the refusal in French when the gateway refuses.
pub async fn save(State(state): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<Fields>) -> Response {
    let token = match prologue::post(&ctx, &f, caller::token(&state, &ctx)).await {
        Ok(found) => found,
        Err(r) => return r,
    };
    let preferences = Preferences::from_form(&f);
    match state.gateway.send_json(Method::PUT, API_PATH, Some(&token), &preferences.to_api(), None, None).await {
        Ok(_) => {
            state.sessions.update(&ctx.sid, |session| session.flash = Some(SAVED.into())).await;
            see_other(PATH)
        }
        Err(error) => {
            tracing::warn!(status = error.status, kind = %error.kind, "notification preferences refused");
            let status = StatusCode::from_u16(error.status)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::BAD_GATEWAY);
            let errors = Errors::from_api(&error, &API_FIELDS);
            layout::page_with_status(&ctx, status, TITLE, &body(&ctx, preferences, &errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::{ApiError, FieldError};

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Parses `body` as the handler does: axum's `Form` extractor on a urlencoded POST.
    fn parse(body: &str) -> Preferences {
        use axum::extract::FromRequest;
        let request = axum::http::Request::post(PATH)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(body.to_owned()))
            .expect("request");
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let Form(f) = rt.block_on(Form::<Fields>::from_request(request, &())).expect("form body");
        Preferences::from_form(&f)
    }

    #[test]
    fn an_absent_checkbox_is_off() {
        let both = Preferences { status_changed: true, message_posted: true };
        assert_eq!(parse("_csrf=t&statut=1&messages=1"), both);
        assert_eq!(parse("_csrf=t&statut=1"), Preferences { status_changed: true, message_posted: false });
        assert_eq!(parse("_csrf=t&messages=1"), Preferences { status_changed: false, message_posted: true });
        assert_eq!(parse("_csrf=t"), Preferences { status_changed: false, message_posted: false });
        assert_eq!(parse("statut=on&messages=on"), both, "a browser's default value of a checkbox");
    }

    #[test]
    fn only_a_ticked_value_turns_a_kind_on() {
        for value in ["", "0", "off", "false", "2", "<on>"] {
            let f = fields(&[("statut", value), ("messages", value)]);
            assert_eq!(
                Preferences::from_form(&f),
                Preferences { status_changed: false, message_posted: false },
                "{value:?}"
            );
        }
        // Other fields change nothing.
        assert_eq!(
            Preferences::from_form(&fields(&[("status_changed", "1"), ("message_posted", "true")])),
            Preferences { status_changed: false, message_posted: false }
        );
    }

    #[test]
    fn the_api_gets_both_kinds_and_its_answer_defaults_to_on() {
        let p = Preferences { status_changed: true, message_posted: false };
        assert_eq!(p.to_api(), json!({ "status_changed": true, "message_posted": false }));
        assert_eq!(
            Preferences::from_api(&json!({ "status_changed": false, "message_posted": true })),
            Preferences { status_changed: false, message_posted: true }
        );
        assert_eq!(Preferences::from_api(&Value::Null), Preferences { status_changed: true, message_posted: true });
    }

    fn ctx() -> Ctx {
        Ctx {
            sid: "s".into(),
            csrf: "jeton".into(),
            user: Some(crate::session::User {
                id: "u".into(),
                email: "dgs@meaux.fr".into(),
                display_name: "DGS".into(),
                role: "member_user".into(),
                member_id: None,
                provider_code: None,
            }),
            flash: None,
            path: PATH.into(),
            client_ip: None,
        }
    }

    #[test]
    fn the_form_has_a_legend_labelled_checkboxes_and_the_csrf_token() {
        let html = body(&ctx(), Preferences { status_changed: true, message_posted: false }, &Errors::default());
        assert!(html.contains(r#"<form method="post" action="/compte/notifications""#));
        assert!(html.contains(r#"name="_csrf" value="jeton""#));
        assert!(html.contains("<fieldset><legend>"));
        assert!(html.contains(r#"<input type="checkbox" id="statut" name="statut" value="1" aria-describedby="statut-aide" checked><label for="statut">Changements de statut de mes demandes</label>"#));
        assert!(html.contains(r#"<input type="checkbox" id="messages" name="messages" value="1" aria-describedby="messages-aide"><label for="messages">Nouveaux messages</label>"#));
        assert!(html.contains("dgs@meaux.fr") && !html.contains("error-summary"));
    }

    #[test]
    fn a_refusal_is_said_in_french_next_to_its_field() {
        let error = ApiError {
            status: 400,
            kind: "invalid-argument".into(),
            detail: "bad".into(),
            errors: vec![FieldError { field: "message_posted".into(), detail: "must be a boolean".into() }],
        };
        let errors = Errors::from_api(&error, &API_FIELDS);
        let html = body(&ctx(), Preferences { status_changed: false, message_posted: true }, &errors);
        assert!(html.contains(r#"role="alert""#) && html.contains("corrigez les champs signalés"));
        assert!(html.contains(r##"<a href="#messages">"##), "the summary links to the checkbox");
        assert!(html.contains(r#"aria-describedby="messages-aide messages-erreur" aria-invalid="true" checked"#));
        assert!(!html.contains(r#"id="statut" name="statut" value="1" aria-describedby="statut-aide" checked"#));
    }
}
