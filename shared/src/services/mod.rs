//! Workflows: what each route does beyond parsing its input, shared by the
//! Lambda handlers and the admin CLI. Each takes the parsed input and the
//! time, and returns a domain value or an `ApiError`.

pub mod api_keys;
pub mod auth;
pub mod calls;
pub mod email_events;
pub mod integrations;
pub mod platform_calls;
pub mod restaurants;
pub mod webhooks;

pub use api_keys::mint_api_key;
pub use restaurants::{create_restaurant, find_restaurant};
