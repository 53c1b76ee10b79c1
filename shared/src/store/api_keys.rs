//! API key records, keyed by the public key id embedded in each key.

use aws_sdk_dynamodb::types::{Put, ReturnValue, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::{
    build, conditional, decode_cursor, encode_cursor, from_item, get_by_key, put_new, s, sdk_error,
    to_item, transact, ts, tx, updated, StoreError, TransactError,
};
use crate::domain::api_key::ApiKeyRecord;
use crate::domain::ids::{ApiKeyId, Id};

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("key is revoked or already rotated")]
    NotRotatable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct ApiKeyStore {
    client: Client,
    table: String,
}

impl ApiKeyStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    pub async fn get(&self, key_id: &ApiKeyId) -> Result<Option<ApiKeyRecord>, StoreError> {
        get_by_key(&self.client, &self.table, "keyId", key_id, true).await
    }

    pub async fn insert(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        put_new(&self.client, &self.table, "keyId", record).await
    }

    /// One page of keys, at most `limit`, after `cursor`.
    pub async fn list(
        &self,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<(Vec<ApiKeyRecord>, Option<String>), StoreError> {
        let start = cursor.map(|c| decode_cursor(c, &["keyId"])).transpose()?;
        let well_formed = |k: &super::Item| {
            k.get("keyId")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|id| ApiKeyId::parse(id).is_some())
        };
        if start.as_ref().is_some_and(|k| !well_formed(k)) {
            return Err(StoreError::BadCursor);
        }
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        let records = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<ApiKeyRecord>, _>>()?;
        let next = out.last_evaluated_key.as_ref().and_then(encode_cursor);
        Ok((records, next))
    }

    /// Marks a key revoked (idempotently: the first revocation time stays).
    pub async fn revoke(
        &self,
        key_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        updated(
            self.client
                .update_item()
                .table_name(&self.table)
                .key("keyId", s(key_id))
                .update_expression(
                    "SET revokedAt = if_not_exists(revokedAt, :now), updatedAt = :now",
                )
                .condition_expression("attribute_exists(keyId)")
                .expression_attribute_values(":now", ts(now))
                .return_values(ReturnValue::AllNew)
                .send()
                .await,
        )
    }

    /// Stores `new` and puts `old_id` into its grace period, atomically.
    pub async fn rotate(
        &self,
        old_id: &str,
        grace_until: DateTime<Utc>,
        now: DateTime<Utc>,
        new: &ApiKeyRecord,
    ) -> Result<(), RotateError> {
        let put = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(to_item(new)?))
                .condition_expression("attribute_not_exists(keyId)")
                .build(),
        )?;
        let update = Update::builder()
            .table_name(&self.table)
            .key("keyId", s(old_id))
            .update_expression("SET rotatedTo = :new, graceUntil = :grace, updatedAt = :now")
            .condition_expression(
                "attribute_exists(keyId) AND attribute_not_exists(revokedAt) AND attribute_not_exists(rotatedTo)",
            )
            .expression_attribute_values(":new", s(&new.key_id))
            .expression_attribute_values(":grace", ts(grace_until))
            .expression_attribute_values(":now", ts(now))
            .build();
        let update = build(update)?;
        let items = vec![tx::put(put), tx::update(update)];
        match transact(&self.client, items).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(1) => Err(RotateError::NotRotatable),
            Err(TransactError::Cancelled(_)) => Err(RotateError::Store(StoreError::AlreadyExists)),
            Err(TransactError::Store(e)) => Err(RotateError::Store(e)),
        }
    }

    /// Stamps `lastUsed` (callers do this at most every few minutes per
    /// key) and/or replaces an argon2-era hash by `upgrade`'s (old, new): the
    /// hash only if it is still the old one, in the same single write.
    pub async fn touch(
        &self,
        key_id: &str,
        last_used: Option<DateTime<Utc>>,
        upgrade: Option<(&str, &str)>,
    ) -> Result<(), StoreError> {
        let mut sets = Vec::new();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("keyId", s(key_id));
        if let Some(t) = last_used {
            sets.push("lastUsed = :now");
            req = req.expression_attribute_values(":now", ts(t));
        }
        let mut condition = "attribute_exists(keyId)".to_string();
        if let Some((old, new)) = upgrade {
            // Only over the hash that was verified: nothing is ever undone.
            sets.push("keyHash = :new");
            condition.push_str(" AND keyHash = :old");
            req = req
                .expression_attribute_values(":old", s(old))
                .expression_attribute_values(":new", s(new));
        }
        if sets.is_empty() {
            return Ok(());
        }
        conditional(
            req.update_expression(format!("SET {}", sets.join(", ")))
                .condition_expression(condition)
                .send()
                .await,
        )?;
        Ok(())
    }
}
