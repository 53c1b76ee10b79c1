//! Pulsara IVR Integration API: the library every Lambda function links.
//!
//! Layers, innermost first (see ARCHITECTURE.md): `domain` is pure (no I/O)
//! and unit-tested in isolation; `store`, `mail`, `queue` and
//! `webhook_client` do the I/O; `services` are the workflows over both;
//! `responses` are what clients see; `auth`, `http`, `error` and `app` glue
//! them into request handling.

/// A JSON schema for a type that serializes as a string (ids, numbers,
/// times), for the test that holds response types to the OpenAPI document.
#[cfg(test)]
#[macro_export]
macro_rules! string_schema {
    ($($t:ty),+) => {$(
        impl schemars::JsonSchema for $t {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> std::borrow::Cow<'static, str> {
                "String".into()
            }
            fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
                <String as schemars::JsonSchema>::json_schema(g)
            }
        }
    )+};
}

pub mod app;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod elevenlabs_client;
pub mod error;
pub mod faults;
pub mod http;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod queue;
pub mod responses;
pub mod services;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhook_client;

#[cfg(test)]
mod openapi_check;

pub use app::{AdminApp, AppState};
pub use error::{ApiError, FieldError};
pub use http::{ApiResponse, Request};
