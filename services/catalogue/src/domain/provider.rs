//! Providers: the directorates of the Département and the associated organisations that deliver offers, as the
//! seed or the operator declares them.

use id77_platform::error::FieldViolation;
use id77_proto::events::is_valid_subject_token;
use serde::Deserialize;

use super::fields::{bounded, violation};
use super::offer::MAX_TITLE_CHARS;

/// A directorate of the Département or an associated organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    DepartmentalService,
    AssociatedOrganisation,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 2] = [Self::DepartmentalService, Self::AssociatedOrganisation];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DepartmentalService => "departmental_service",
            Self::AssociatedOrganisation => "associated_organisation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A provider as the seed or the operator declares it and the database stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    pub code: String,
    pub name: String,
    pub kind: ProviderKind,
    pub contact_email: String,
}

/// A provider as written, before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderInput {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub contact_email: String,
}

/// Validates a provider. Every problem is reported.
pub fn validate_provider(p: ProviderInput) -> Result<Provider, Vec<FieldViolation>> {
    let mut out = Vec::new();
    let code = p.code.trim().to_owned();
    if !is_valid_subject_token(&code) {
        out.push(violation("code", "must be 1 to 64 lowercase ASCII letters, digits or dashes"));
    }
    let name = p.name.trim().to_owned();
    bounded(&mut out, "name", &name, 1, MAX_TITLE_CHARS);
    let kind = ProviderKind::parse(p.kind.trim());
    if kind.is_none() {
        out.push(violation("kind", "must be departmental_service or associated_organisation"));
    }
    let email = p.contact_email.trim();
    if !id77_platform::validate::is_plausible_email(email) {
        out.push(violation("contact_email", "must be an email address"));
    }
    match kind {
        Some(kind) if out.is_empty() => Ok(Provider { code, name, kind, contact_email: email.to_lowercase() }),
        _ => Err(out),
    }
}
