//! An offer's content (everything but its id, version and status) and how the seed's or the operator's input
//! is validated into it.

use std::collections::HashSet;

use id77_platform::error::FieldViolation;
use id77_proto::events::is_valid_subject_token;
use id77_proto::vocabulary::Category;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::eligibility::{Eligibility, EligibilityInput, validate_eligibility};
use super::fields::{bounded, violation};
use super::price::PriceRule;

/// Longest offer title or provider name.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest offer summary.
pub const MAX_SUMMARY_CHARS: usize = 2000;
/// Longest offer description.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Longest duration label.
pub const MAX_DURATION_CHARS: usize = 100;
/// Longest VAT note.
pub const MAX_VAT_NOTE_CHARS: usize = 300;
/// Most themes per offer.
pub const MAX_THEMES: usize = 12;
/// Longest theme.
pub const MAX_THEME_CHARS: usize = 40;
/// Most physical copies of one exhibition.
pub const MAX_COPIES: i32 = 20;

/// The content of an offer: everything but its id, version and status. Two equal contents are the same
/// version. Serialized as the snapshot of each version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfferContent {
    pub code: String,
    pub title: String,
    pub summary: String,
    pub description: String,
    pub category: Category,
    pub themes: Vec<String>,
    pub provider_code: String,
    pub duration: String,
    pub eligibility: Eligibility,
    pub price: PriceRule,
    pub vat_rate_bp: Option<i32>,
    pub vat_note: String,
    /// Exhibitions: physical copies (at least one); other offers: 0.
    pub copies: i32,
}

/// An offer's content as written (seed file or operator request), before validation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferInput {
    pub code: String,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub description: String,
    pub category: String,
    #[serde(default)]
    pub themes: Vec<String>,
    pub provider_code: String,
    #[serde(default)]
    pub duration: String,
    #[serde(default)]
    pub eligibility: EligibilityInput,
    pub price: PriceRule,
    #[serde(default)]
    pub vat_rate_bp: Option<i32>,
    #[serde(default)]
    pub vat_note: String,
    #[serde(default)]
    pub copies: i32,
}

/// Validates an offer's content. `providers` are the known provider codes. Every problem is reported.
pub fn validate_offer(input: OfferInput, providers: &HashSet<String>) -> Result<OfferContent, Vec<FieldViolation>> {
    let mut out = Vec::new();
    let code = input.code.trim().to_owned();
    if !is_valid_subject_token(&code) {
        out.push(violation("code", "must be 1 to 64 lowercase ASCII letters, digits or dashes"));
    }
    let title = input.title.trim().to_owned();
    bounded(&mut out, "title", &title, 1, MAX_TITLE_CHARS);
    let summary = input.summary.trim().to_owned();
    bounded(&mut out, "summary", &summary, 0, MAX_SUMMARY_CHARS);
    let description = input.description.trim().to_owned();
    bounded(&mut out, "description", &description, 0, MAX_DESCRIPTION_CHARS);
    let duration = input.duration.trim().to_owned();
    bounded(&mut out, "duration", &duration, 0, MAX_DURATION_CHARS);
    let vat_note = input.vat_note.trim().to_owned();
    bounded(&mut out, "vat_note", &vat_note, 0, MAX_VAT_NOTE_CHARS);
    let category = Category::parse(input.category.trim());
    if category.is_none() {
        out.push(violation("category", "must be integrated_engineering, awareness_training or exhibition_loan"));
    }
    let themes = validate_themes(&input.themes, &mut out);
    let provider_code = input.provider_code.trim().to_owned();
    if !providers.contains(&provider_code) {
        out.push(violation("provider_code", format!("{provider_code:?} is not a known provider")));
    }
    let eligibility = validate_eligibility(input.eligibility, &mut out);
    input.price.check("price", &mut out);
    if let Some(rate) = input.vat_rate_bp
        && !(0..=10_000).contains(&rate)
    {
        out.push(violation("vat_rate_bp", "must be from 0 to 10000 basis points"));
    }
    if input.vat_rate_bp.is_none() && input.price != PriceRule::Free && vat_note.is_empty() {
        out.push(violation("vat_note", "is required when a priced offer has no VAT rate (say why VAT does not apply)"));
    }
    validate_copies(category, input.copies, &mut out);
    match category {
        Some(category) if out.is_empty() => Ok(OfferContent {
            code,
            title,
            summary,
            description,
            category,
            themes,
            provider_code,
            duration,
            eligibility,
            price: input.price,
            vat_rate_bp: input.vat_rate_bp,
            vat_note,
            copies: input.copies,
        }),
        _ => Err(out),
    }
}

/// Themes are lowercased, each 1 to [`MAX_THEME_CHARS`] characters, at most [`MAX_THEMES`], none twice.
fn validate_themes(themes: &[String], out: &mut Vec<FieldViolation>) -> Vec<String> {
    let themes: Vec<String> = themes.iter().map(|t| t.trim().to_lowercase()).collect();
    if themes.len() > MAX_THEMES {
        out.push(violation("themes", format!("at most {MAX_THEMES} themes")));
    }
    if themes.iter().any(|t| t.is_empty() || t.chars().count() > MAX_THEME_CHARS) {
        out.push(violation("themes", format!("each theme must be 1 to {MAX_THEME_CHARS} characters")));
    }
    if themes.iter().collect::<HashSet<_>>().len() != themes.len() {
        out.push(violation("themes", "a theme is listed twice"));
    }
    themes
}

/// An exhibition has 1 to [`MAX_COPIES`] physical copies; other offers none.
fn validate_copies(category: Option<Category>, copies: i32, out: &mut Vec<FieldViolation>) {
    match category {
        Some(Category::ExhibitionLoan) if !(1..=MAX_COPIES).contains(&copies) => {
            out.push(violation("copies", format!("an exhibition has 1 to {MAX_COPIES} copies")));
        }
        Some(Category::IntegratedEngineering | Category::AwarenessTraining) if copies != 0 => {
            out.push(violation("copies", "only exhibitions have copies"));
        }
        _ => {}
    }
}

/// An offer as a caller names it: by id or by code, and as written (for the messages that name it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferKey {
    pub id: Option<Uuid>,
    /// Empty when named by id.
    pub code: String,
    pub written: String,
}
