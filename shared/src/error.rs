//! The API's errors and the one place they become HTTP: every domain and
//! store error converts into an `ApiError` here, and every `ApiError` maps to
//! its status, its envelope and its headers here. 500s log their whole cause
//! chain and the line they arose on; clients only ever see the request id.

use std::error::Error as StdError;
use std::panic::Location;

use serde_json::json;

pub use crate::domain::validate::FieldError;
use crate::domain::validate::ValidationErrors;

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
    Internal(#[from] Internal),
}

/// A failure that is ours, not the caller's: its cause (with its chain) and
/// where in our code it became an API error.
#[derive(Debug, thiserror::Error)]
#[error("at {location}")]
pub struct Internal {
    source: Box<dyn StdError + Send + Sync>,
    location: &'static Location<'static>,
}

impl Internal {
    /// The cause and each of its sources, outermost first.
    pub fn chain(&self) -> String {
        Chain(self.source.as_ref()).to_string()
    }

    pub fn location(&self) -> &'static Location<'static> {
        self.location
    }
}

/// An error and each of its causes, outermost first, for a log line.
pub struct Chain<'a>(pub &'a (dyn StdError + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(cause) = next {
            write!(f, ": {cause}")?;
            next = cause.source();
        }
        Ok(())
    }
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationErrors::one(field, message).into()
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Conflict {
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// An internal error caused by `err`, located at the caller.
    #[track_caller]
    pub fn internal(err: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Internal(Internal {
            source: err.into(),
            location: Location::caller(),
        })
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

    /// The error envelope and the headers that go with it (the request id is
    /// added by the caller). A 500 is logged here with its cause chain.
    pub fn envelope(
        &self,
        request_id: &str,
    ) -> (u16, serde_json::Value, Vec<(&'static str, String)>) {
        let (status, code) = self.status_and_code();
        let message = match self {
            Self::Internal(internal) => {
                tracing::error!(
                    error = %internal.chain(),
                    location = %internal.location(),
                    "internal error"
                );
                "internal error; quote the request id when reporting it".to_string()
            }
            other => other.to_string(),
        };
        let mut error = json!({"code": code, "requestId": request_id});
        let details = self.details();
        if !details.is_empty() {
            error["details"] = json!(details);
        }
        let body = json!({"success": false, "message": message, "error": error});
        let headers = match self {
            Self::RateLimited { limit, retry_after } => vec![
                ("retry-after", retry_after.to_string()),
                ("ratelimit-limit", limit.to_string()),
                ("ratelimit-remaining", "0".into()),
                ("ratelimit-reset", retry_after.to_string()),
            ],
            Self::Unauthorized => vec![("www-authenticate", "Bearer".into())],
            _ => Vec::new(),
        };
        (status, body, headers)
    }
}

// --- every other error, as the API reports it ------------------------------------------------

impl From<crate::crypto::envelope::SealError> for ApiError {
    #[track_caller]
    fn from(err: crate::crypto::envelope::SealError) -> Self {
        Self::internal(err)
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(err: ValidationErrors) -> Self {
        Self::Validation(err.0)
    }
}

impl From<crate::domain::call::CallInputError> for ApiError {
    fn from(err: crate::domain::call::CallInputError) -> Self {
        use crate::domain::call::CallInputError as E;
        match err {
            E::Invalid(v) => v.into(),
            E::TooLarge { field, limit } => Self::FieldTooLarge { field, limit },
        }
    }
}

impl From<crate::domain::rate_limit::RateLimited> for ApiError {
    fn from(err: crate::domain::rate_limit::RateLimited) -> Self {
        Self::RateLimited {
            limit: err.limit,
            retry_after: err.retry_after,
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    #[track_caller]
    fn from(err: crate::store::StoreError) -> Self {
        use crate::store::StoreError as E;
        match err {
            E::BadCursor => Self::validation("cursor", "is not a cursor we issued"),
            E::Conflict => {
                Self::conflict("the record was being changed concurrently; retry the request")
            }
            other => Self::internal(other),
        }
    }
}

impl From<crate::store::restaurants::RestaurantWriteError> for ApiError {
    #[track_caller]
    fn from(err: crate::store::restaurants::RestaurantWriteError) -> Self {
        use crate::store::restaurants::RestaurantWriteError as E;
        match err {
            E::PhoneTaken(number) => Self::Conflict {
                message: "a phone number is already assigned to another restaurant".into(),
                details: vec![FieldError::new(
                    "phoneNumbers",
                    format!("{number} is already assigned to another restaurant"),
                )],
            },
            E::Stale => {
                Self::conflict("the restaurant was changed concurrently; fetch it and retry")
            }
            E::Store(e) => e.into(),
        }
    }
}

impl From<crate::faults::Injected> for ApiError {
    #[track_caller]
    fn from(err: crate::faults::Injected) -> Self {
        Self::internal(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_keep_their_chain_and_location() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] std::io::Error);
        let err = ApiError::internal(Outer(std::io::Error::other("inner")));
        let ApiError::Internal(internal) = err else {
            panic!("not internal")
        };
        assert_eq!(internal.chain(), "outer: inner");
        assert_eq!(internal.location().file(), file!());
    }

    #[test]
    fn the_question_mark_records_the_call_site() {
        fn fails() -> Result<(), ApiError> {
            Err(crate::store::StoreError::Corrupt("bad item".into()))?;
            Ok(())
        }
        let Err(ApiError::Internal(internal)) = fails() else {
            panic!("not internal")
        };
        assert_eq!(internal.location().file(), file!());
        assert!(internal.chain().contains("bad item"));
    }
}
