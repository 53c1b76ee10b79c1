//! Validation errors as data: every field problem of an input, collected
//! before failing. `error` maps them to a 422; nothing here knows HTTP.

use serde::Serialize;

/// One invalid input field, reported back to the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every problem of one input (never empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request has invalid fields")]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn one(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, message)])
    }

    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|f| f.field.as_str()).collect()
    }
}

/// Collects field errors; `finish` fails with all of them at once.
#[derive(Debug, Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// The value parsed by `parse`, or its error recorded against `field`.
    pub fn parsed<T, E: std::fmt::Display>(
        &mut self,
        field: impl Into<String>,
        parse: Result<T, E>,
    ) -> Option<T> {
        parse.map_err(|err| self.add(field, err.to_string())).ok()
    }

    /// Checks a required text field: trimmed, non-empty, at most `max` characters.
    pub fn text(&mut self, field: &str, value: &str, max: usize) -> String {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.add(field, "must not be empty");
        } else if trimmed.chars().count() > max {
            self.add(field, format!("must be at most {max} characters"));
        } else if trimmed.chars().any(|c| c.is_control()) {
            self.add(field, "must not contain control characters");
        }
        trimmed.to_string()
    }

    /// Checks an identifier-like token: 1..=max chars of `[A-Za-z0-9_-]`;
    /// whether it passed.
    pub fn token(&mut self, field: &str, value: &str, max: usize) -> bool {
        if value.is_empty() || value.len() > max {
            self.add(field, format!("must be 1 to {max} characters"));
            false
        } else if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            self.add(field, "may contain only letters, digits, '_' and '-'");
            false
        } else {
            true
        }
    }

    pub fn finish(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_all_errors() {
        let mut e = Errors::new();
        e.text("name", "  ", 10);
        e.token("id", "bad id", 10);
        assert_eq!(e.finish().unwrap_err().fields(), vec!["name", "id"]);
    }
}
