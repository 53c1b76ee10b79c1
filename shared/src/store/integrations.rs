//! Platform integrations, listed per key family through `byOwner`.

use aws_sdk_dynamodb::Client;

use super::{from_items, get_by_key, put_new, s, sdk_error, StoreError};
use crate::domain::ids::{ApiKeyId, IntegrationId};
use crate::domain::integration::IntegrationRecord;

pub const BY_OWNER_INDEX: &str = "byOwner";

#[derive(Clone)]
pub struct IntegrationStore {
    client: Client,
    table: String,
}

impl IntegrationStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    pub async fn insert(&self, record: &IntegrationRecord) -> Result<(), StoreError> {
        put_new(&self.client, &self.table, "integrationId", record).await
    }

    /// Eventually consistent: integrations change only by creation and
    /// deletion, and a platform's first request comes minutes after either.
    pub async fn get(&self, id: &IntegrationId) -> Result<Option<IntegrationRecord>, StoreError> {
        get_by_key(&self.client, &self.table, "integrationId", id, false).await
    }

    /// A key family's integrations, oldest first (at most the cap per family).
    pub async fn by_owner(&self, owner: &ApiKeyId) -> Result<Vec<IntegrationRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_OWNER_INDEX)
            .key_condition_expression("ownerId = :o")
            .expression_attribute_values(":o", s(owner))
            .limit(100)
            .send()
            .await
            .map_err(sdk_error)?;
        from_items(out.items)
    }

    /// Deletes an integration; deleting one already gone is not an error.
    pub async fn delete(&self, id: &IntegrationId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("integrationId", s(id))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
