//! Admin users, keyed by lower-cased e-mail.

use crate::domain::email_address::EmailAddress;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{get_by_key, is_condition_failure, sdk_error, to_item, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminUser {
    pub email: EmailAddress,
    pub user_id: String,
    /// argon2id PHC string; the password itself is never stored.
    pub password_hash: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone)]
pub struct AdminStore {
    client: Client,
    table: String,
}

impl AdminStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    pub async fn get(&self, email: &EmailAddress) -> Result<Option<AdminUser>, StoreError> {
        get_by_key(&self.client, &self.table, "email", email.as_str(), true).await
    }

    /// Inserts a user; with `replace` an existing user's password is reset.
    pub async fn put(&self, user: &AdminUser, replace: bool) -> Result<(), StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(user)?));
        if !replace {
            req = req.condition_expression("attribute_not_exists(email)");
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(sdk_error(e)),
        }
    }
}
