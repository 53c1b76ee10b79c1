//! Pure domain logic: no I/O, deterministic given its inputs (time is passed in).

pub mod agent_context;
pub mod analysis;
pub mod api_key;
pub mod call;
pub mod claim;
pub mod email;
pub mod email_address;
pub mod hashing;
pub mod hours;
pub mod ids;
pub mod integration;
pub mod phone;
pub mod platform;
pub mod rate_limit;
pub mod restaurant;
pub mod ses_event;
pub mod ssrf;
pub mod token;
pub mod transcript_codec;
pub mod validate;
pub mod webhook;
