//! Secrets at rest and at cold start: envelope encryption under a KMS key
//! (`envelope`), and the admin-token secret read from Secrets Manager
//! (`secret_store`).

pub mod envelope;
pub mod secret_store;
