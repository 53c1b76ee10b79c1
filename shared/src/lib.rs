//! Pulsara IVR Integration API: the library every Lambda function links.
//!
//! `domain` is pure (no I/O) and unit-tested in isolation; `store` talks to
//! DynamoDB; `auth`, `http` and `app` glue them into request handling.

pub mod app;
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod faults;
pub mod http;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod queue;
pub mod services;
pub mod store;
pub mod testing;
pub mod webhook_client;

pub use app::AppState;
pub use error::{ApiError, FieldError};
pub use http::{ApiResponse, Request};
