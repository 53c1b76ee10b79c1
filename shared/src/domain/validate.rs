//! Small helpers that collect every field error of a request before failing.

use crate::error::{ApiError, FieldError};

#[derive(Debug, Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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

    /// Checks an identifier-like token: 1..=max chars of `[A-Za-z0-9_-]`.
    pub fn token(&mut self, field: &str, value: &str, max: usize) {
        if value.is_empty() || value.len() > max {
            self.add(field, format!("must be 1 to {max} characters"));
        } else if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            self.add(field, "may contain only letters, digits, '_' and '-'");
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

/// A pragmatic e-mail address check (one '@', a dotted domain, no spaces);
/// SES is the final judge of deliverability.
pub fn is_email(value: &str) -> bool {
    if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = value.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(is_email("owner@restaurant.com"));
        assert!(is_email("a.b+c@mail.example.co.uk"));
        for bad in [
            "",
            "owner",
            "@x.com",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
            "a@b..com",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn collects_all_errors() {
        let mut e = Errors::new();
        e.text("name", "  ", 10);
        e.token("id", "bad id", 10);
        assert!(matches!(e.finish(), Err(ApiError::Validation(v)) if v.len() == 2));
    }
}
