//! The checks every validator shares: a field's violation, and a text's length in characters.

use id77_platform::error::FieldViolation;

pub(super) fn violation(field: &str, description: impl Into<String>) -> FieldViolation {
    FieldViolation { field: field.to_owned(), description: description.into() }
}

/// Reports `field` unless `value` has `min` to `max` characters.
pub(super) fn bounded(out: &mut Vec<FieldViolation>, field: &str, value: &str, min: usize, max: usize) {
    let n = value.chars().count();
    if n < min || n > max {
        out.push(violation(field, format!("must be {min} to {max} characters")));
    }
}
