//! Form fields, the error summary and the portal's own validation (French messages, before any gateway call).

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::fr;
use crate::gateway::ApiError;
use crate::html::esc;

/// The fields of a submitted form.
pub type Fields = HashMap<String, String>;

/// A submitted value, trimmed ("" when absent).
pub fn value<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields.get(name).map(|v| v.trim()).unwrap_or("")
}

/// One error, tied to the id of the field it concerns (`""`: the whole form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub field: String,
    pub label: String,
    pub message: String,
}

/// The errors of one form.
#[derive(Debug, Default, Clone)]
pub struct Errors(pub Vec<Error>);

impl Errors {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn add(&mut self, field: &str, label: &str, message: impl Into<String>) {
        self.0.push(Error { field: field.into(), label: label.into(), message: message.into() });
    }

    /// The first message about `field`.
    pub fn of(&self, field: &str) -> Option<&str> {
        self.0.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }

    /// Required, at most `max` characters.
    pub fn required(&mut self, fields: &Fields, name: &str, label: &str, max: usize) {
        let v = value(fields, name);
        if v.is_empty() {
            self.add(name, label, format!("Le champ « {label} » est obligatoire."));
        } else if v.chars().count() > max {
            self.add(name, label, format!("Le champ « {label} » ne doit pas dépasser {max} caractères."));
        }
    }

    /// Optional, at most `max` characters.
    pub fn max_len(&mut self, fields: &Fields, name: &str, label: &str, max: usize) {
        if value(fields, name).chars().count() > max {
            self.add(name, label, format!("Le champ « {label} » ne doit pas dépasser {max} caractères."));
        }
    }

    /// Required e-mail address.
    pub fn email(&mut self, fields: &Fields, name: &str, label: &str) {
        let v = value(fields, name);
        if v.is_empty() {
            self.add(name, label, format!("Le champ « {label} » est obligatoire."));
        } else if !looks_like_email(v) {
            self.add(name, label, "Saisissez une adresse électronique valide, par exemple nom@mairie.fr.");
        }
    }

    /// Adds a gateway error: its field errors next to the fields of this form (`fields` maps the API's field
    /// names to the form's ids and labels), the rest as one message for the whole form.
    pub fn from_api(error: &ApiError, fields: &[(&str, &str, &str)]) -> Self {
        let mut errors = Self::default();
        errors.add("", "", fr::problem(error));
        for field_error in &error.errors {
            match fields
                .iter()
                .find(|(api, _, _)| field_error.field == *api || field_error.field.starts_with(&format!("{api}.")))
            {
                Some((_, id, label)) => errors.add(id, label, fr::field_error(field_error)),
                None => errors.add("", "", fr::field_error(field_error)),
            }
        }
        errors
    }
}

/// A plausible address: one `@`, something before, a dot in the domain, no spaces, at most 254 characters.
pub fn looks_like_email(v: &str) -> bool {
    let Some((local, domain)) = v.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !v.chars().any(char::is_whitespace)
        && v.len() <= 254
}

/// The opening tag of the error summary: announced (role=alert), focused when the page loads (`autofocus`, no
/// script). The layout titles a page that contains it « Erreur : … » (`layout::reports_errors`).
pub const SUMMARY_OPEN: &str = r#"<div class="error-summary" role="alert" tabindex="-1" id="erreurs" autofocus>"#;

/// The error summary at the top of a form: announced, focused on load, each error a link to its field.
pub fn summary(errors: &Errors) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let count = errors.0.len();
    let mut out = format!(
        "{SUMMARY_OPEN}<h2>{}</h2><ul>",
        if count == 1 {
            "Le formulaire contient une erreur".to_owned()
        } else {
            format!("Le formulaire contient {count} erreurs")
        }
    );
    for error in &errors.0 {
        if error.field.is_empty() {
            let _ = write!(out, "<li>{}</li>", esc(&error.message));
        } else {
            let _ = write!(out, r##"<li><a href="#{}">{}</a></li>"##, esc(&error.field), esc(&error.message));
        }
    }
    out.push_str("</ul></div>");
    out
}

/// What kind of input a field is.
pub enum Input<'a> {
    Text { kind: &'a str, autocomplete: &'a str },
    TextArea { rows: u32 },
    Select(&'a [(String, String)]),
}

/// A labelled field with its hint and error (linked by `aria-describedby`, `aria-invalid` when wrong).
pub fn field(
    id: &str,
    label: &str,
    input: Input<'_>,
    value: &str,
    required: bool,
    hint: &str,
    errors: &Errors,
) -> String {
    let error = errors.of(id);
    let mut described = Vec::new();
    if !hint.is_empty() {
        described.push(format!("{id}-aide"));
    }
    if error.is_some() {
        described.push(format!("{id}-erreur"));
    }
    let aria = format!(
        "{}{}{}",
        if described.is_empty() {
            String::new()
        } else {
            format!(r#" aria-describedby="{}""#, esc(&described.join(" ")))
        },
        if error.is_some() { r#" aria-invalid="true""# } else { "" },
        if required { " required" } else { "" },
    );
    let mut out = format!(
        r#"<div class="field{}"><label for="{}">{}{}</label>"#,
        if error.is_some() { " field-invalid" } else { "" },
        esc(id),
        esc(label),
        if required { r#" <span class="req">(obligatoire)</span>"# } else { "" }
    );
    if !hint.is_empty() {
        let _ = write!(out, r#"<p class="hint" id="{}-aide">{}</p>"#, esc(id), esc(hint));
    }
    if let Some(error) = error {
        let _ = write!(
            out,
            r#"<p class="field-error" id="{}-erreur"><span class="visually-hidden">Erreur : </span>{}</p>"#,
            esc(id),
            esc(error)
        );
    }
    match input {
        Input::Text { kind, autocomplete } => {
            let auto = if autocomplete.is_empty() {
                String::new()
            } else {
                format!(r#" autocomplete="{}""#, esc(autocomplete))
            };
            let _ = write!(
                out,
                r#"<input type="{}" id="{}" name="{}" value="{}"{auto}{aria}>"#,
                esc(kind),
                esc(id),
                esc(id),
                esc(value)
            );
        }
        Input::TextArea { rows } => {
            let _ = write!(
                out,
                r#"<textarea id="{}" name="{}" rows="{rows}"{aria}>{}</textarea>"#,
                esc(id),
                esc(id),
                esc(value)
            );
        }
        Input::Select(items) => {
            let _ = write!(
                out,
                r#"<select id="{}" name="{}"{aria}>{}</select>"#,
                esc(id),
                esc(id),
                crate::html::options(items, value)
            );
        }
    }
    out.push_str("</div>");
    out
}

/// The hidden CSRF field of a POST form.
pub fn csrf(token: &str) -> String {
    format!(r#"<input type="hidden" name="{}" value="{}">"#, crate::session::CSRF_FIELD, esc(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::FieldError;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn required_length_and_email_rules_speak_french() {
        let f =
            fields(&[("nom", "  "), ("objet", &"x".repeat(201)), ("courriel", "pas-une-adresse"), ("ok", "a@b.fr")]);
        let mut errors = Errors::default();
        errors.required(&f, "nom", "Nom", 200);
        errors.required(&f, "objet", "Objet", 200);
        errors.email(&f, "courriel", "Adresse électronique");
        errors.email(&f, "ok", "Adresse");
        errors.required(&f, "absent", "Absent", 10);
        assert_eq!(errors.of("nom"), Some("Le champ « Nom » est obligatoire."));
        assert_eq!(errors.of("objet"), Some("Le champ « Objet » ne doit pas dépasser 200 caractères."));
        assert!(errors.of("courriel").is_some_and(|m| m.contains("adresse électronique valide")));
        assert_eq!(errors.of("ok"), None);
        assert!(errors.of("absent").is_some());
        assert_eq!(errors.0.len(), 4);
    }

    #[test]
    fn emails_are_checked_for_their_shape() {
        for good in ["dgs@meaux.fr", "a.b+c@mairie-x.example.fr"] {
            assert!(looks_like_email(good), "{good}");
        }
        for bad in ["", "a", "a@b", "@b.fr", "a@.fr", "a@b.fr.", "a b@c.fr", "a@b@c.fr"] {
            assert!(!looks_like_email(bad), "{bad}");
        }
    }

    #[test]
    fn gateway_field_errors_land_next_to_their_fields() {
        let error = ApiError {
            status: 400,
            kind: "invalid-argument".into(),
            detail: "invalid".into(),
            errors: vec![
                FieldError { field: "contact_email".into(), detail: "not an address".into() },
                FieldError { field: "unknown".into(), detail: "bad".into() },
            ],
        };
        let errors = Errors::from_api(&error, &[("contact_email", "courriel", "Adresse électronique")]);
        assert!(errors.of("courriel").is_some_and(|m| m.starts_with("Saisissez une adresse")));
        assert_eq!(errors.0.iter().filter(|e| e.field.is_empty()).count(), 2, "the summary and the unmapped field");
    }

    #[test]
    fn summary_links_errors_to_fields_and_fields_describe_their_errors() {
        let mut errors = Errors::default();
        errors.add("objet", "Objet", "Le champ « Objet » est obligatoire.");
        errors.add("", "", "Réessayez <plus tard>.");
        let html = summary(&errors);
        assert!(html.contains(r##"<a href="#objet">Le champ « Objet » est obligatoire.</a>"##));
        assert!(html.contains("Réessayez &lt;plus tard&gt;."), "messages are escaped");
        assert!(html.contains("role=\"alert\"") && html.contains("2 erreurs"));
        assert_eq!(summary(&Errors::default()), "");
        let input = field(
            "objet",
            "Objet",
            Input::Text { kind: "text", autocomplete: "" },
            "\"><script>",
            true,
            "Court.",
            &errors,
        );
        assert!(input.contains(r#"<label for="objet">Objet <span class="req">(obligatoire)</span></label>"#));
        assert!(input.contains(r#"aria-describedby="objet-aide objet-erreur" aria-invalid="true" required"#));
        assert!(input.contains(r#"value="&quot;&gt;&lt;script&gt;""#), "values are escaped");
        let ok = field("nom", "Nom", Input::TextArea { rows: 3 }, "</textarea>", false, "", &errors);
        assert!(ok.contains("&lt;/textarea&gt;</textarea>") && !ok.contains("aria-invalid"));
    }
}
