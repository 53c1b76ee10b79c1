//! API errors as types; `http::into_response` maps them to status codes in one place.

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

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("{message}")]
    Conflict {
        message: String,
        details: Vec<FieldError>,
    },
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{field} exceeds the limit of {limit} bytes")]
    FieldTooLarge { field: &'static str, limit: usize },
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    #[error("request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("rate limit exceeded, retry in {retry_after} s")]
    RateLimited { limit: u32, retry_after: u64 },
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        Self::Internal(err.to_string())
    }

    /// HTTP status and the machine-readable code of the error envelope.
    pub fn status_and_code(&self) -> (u16, &'static str) {
        match self {
            Self::BadRequest(_) => (400, "BAD_REQUEST"),
            Self::Unauthorized => (401, "UNAUTHORIZED"),
            Self::Forbidden(_) => (403, "FORBIDDEN"),
            Self::NotFound(_) => (404, "NOT_FOUND"),
            Self::MethodNotAllowed => (405, "METHOD_NOT_ALLOWED"),
            Self::Conflict { .. } => (409, "CONFLICT"),
            Self::PayloadTooLarge { .. } | Self::FieldTooLarge { .. } => (413, "PAYLOAD_TOO_LARGE"),
            Self::UnsupportedMediaType => (415, "UNSUPPORTED_MEDIA_TYPE"),
            Self::Validation(_) => (422, "VALIDATION_ERROR"),
            Self::RateLimited { .. } => (429, "RATE_LIMITED"),
            Self::Internal(_) => (500, "INTERNAL_ERROR"),
        }
    }

    pub fn details(&self) -> Vec<FieldError> {
        match self {
            Self::Validation(d) | Self::Conflict { details: d, .. } => d.clone(),
            Self::FieldTooLarge { field, limit } => {
                vec![FieldError::new(
                    *field,
                    format!("must be at most {limit} bytes"),
                )]
            }
            _ => Vec::new(),
        }
    }
}
