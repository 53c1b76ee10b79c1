//! What clients see: one type per route's `data` (the `*Out` types), built
//! from the stored records by naming each field. A field reaches a client
//! only when its type here names it; `openapi_check` holds every type to
//! `infra/openapi.yaml`, so the document cannot drift from the code.

mod auth;
mod calls;
mod integrations;
mod restaurants;
mod webhooks;

pub use auth::{
    ApiKeyIssuedOut, ApiKeyListOut, ApiKeyOut, ApiKeyRevokedOut, ApiKeyRotatedOut, LoginOut,
};
pub use calls::{CallDetailOut, CallListOut, CallResultOut, CallRowOut, ProcessCallOut};
pub use integrations::{IntegrationDeletedOut, IntegrationListOut, IntegrationOut};
pub use restaurants::{RestaurantOut, SuppressionOut};
pub use webhooks::{
    DeliveryListOut, DeliveryOut, DeliveryQueuedOut, SecretRotatedOut, WebhookDeletedOut,
    WebhookListOut, WebhookOut, WebhookRegisteredOut,
};

/// Marks the types that may be a response's `data`.
macro_rules! payloads {
    ($($t:ty),+ $(,)?) => {$(impl crate::http::Payload for $t {})+};
}

payloads!(
    LoginOut,
    ApiKeyIssuedOut,
    ApiKeyRotatedOut,
    ApiKeyListOut,
    ApiKeyRevokedOut,
    RestaurantOut,
    crate::domain::restaurant::ConfigView,
    CallResultOut,
    ProcessCallOut,
    CallListOut,
    CallDetailOut,
    WebhookRegisteredOut,
    IntegrationOut,
    IntegrationListOut,
    IntegrationDeletedOut,
    WebhookListOut,
    WebhookDeletedOut,
    DeliveryQueuedOut,
    SecretRotatedOut,
    DeliveryListOut,
);
