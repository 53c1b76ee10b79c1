//! Webhook subscriptions (listed per key family through `byOwner`) and their
//! deliveries (listed per webhook through `byWebhook`, newest first).

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::{
    from_item, get_by_key, is_condition_failure, put_new, s, sdk_error, to_item, ts, value,
    StoreError,
};
use crate::domain::webhook::{
    Attempt, DeliveryRecord, DeliveryStatus, WebhookRecord, WebhookStatus,
};

pub const BY_OWNER_INDEX: &str = "byOwner";
pub const BY_WEBHOOK_INDEX: &str = "byWebhook";

#[derive(Clone)]
pub struct WebhookStore {
    client: Client,
    webhooks: String,
    deliveries: String,
}

impl WebhookStore {
    pub fn new(client: Client, webhooks: String, deliveries: String) -> Self {
        Self {
            client,
            webhooks,
            deliveries,
        }
    }

    pub async fn put(&self, w: &WebhookRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.webhooks)
            .set_item(Some(to_item(w)?))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    pub async fn get(&self, webhook_id: &str) -> Result<Option<WebhookRecord>, StoreError> {
        get_by_key(&self.client, &self.webhooks, "webhookId", webhook_id, true).await
    }

    pub async fn delete(&self, webhook_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.webhooks)
            .key("webhookId", s(webhook_id))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// Every webhook of a key family (at most a handful), oldest first.
    pub async fn by_owner(&self, owner_id: &str) -> Result<Vec<WebhookRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.webhooks)
            .index_name(BY_OWNER_INDEX)
            .key_condition_expression("ownerId = :o")
            .expression_attribute_values(":o", s(owner_id))
            .limit(100)
            .send()
            .await
            .map_err(sdk_error)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect()
    }

    /// Every active webhook: the fan-out's audience. Subscriptions are few
    /// (≤ 10 per key family), so one paginated scan per stream batch is cheap.
    pub async fn active(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.webhooks)
                .filter_expression("#st = :active")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":active", value(&WebhookStatus::Active)?)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(sdk_error)?;
            for item in out.items.unwrap_or_default() {
                all.push(from_item(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(all);
            }
        }
    }

    /// Notes a failed delivery: the endpoint has been failing since the first one.
    pub async fn mark_failing(
        &self,
        webhook_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.webhooks)
            .key("webhookId", s(webhook_id))
            .update_expression("SET failingSince = if_not_exists(failingSince, :now)")
            .condition_expression("attribute_exists(webhookId)")
            .expression_attribute_values(":now", ts(now))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await;
        match out {
            Ok(o) => Ok(o
                .attributes
                .map(from_item::<WebhookRecord>)
                .transpose()?
                .and_then(|w| w.failing_since)),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(sdk_error(e)),
        }
    }

    pub async fn mark_healthy(&self, webhook_id: &str) -> Result<(), StoreError> {
        match self
            .client
            .update_item()
            .table_name(&self.webhooks)
            .key("webhookId", s(webhook_id))
            .update_expression("REMOVE failingSince")
            .condition_expression("attribute_exists(webhookId)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(sdk_error(e)),
        }
    }

    pub async fn disable(
        &self,
        webhook_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match self
            .client
            .update_item()
            .table_name(&self.webhooks)
            .key("webhookId", s(webhook_id))
            .update_expression("SET #st = :disabled, disabledReason = :why, updatedAt = :now")
            .condition_expression("attribute_exists(webhookId)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":disabled", value(&WebhookStatus::Disabled)?)
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":now", ts(now))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Stores a new delivery; `AlreadyExists` if this message id was stored before.
    pub async fn insert_delivery(&self, d: &DeliveryRecord) -> Result<(), StoreError> {
        put_new(&self.client, &self.deliveries, "deliveryId", d).await
    }

    pub async fn delivery(&self, delivery_id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        get_by_key(
            &self.client,
            &self.deliveries,
            "deliveryId",
            delivery_id,
            true,
        )
        .await
    }

    /// Claims a pending delivery for one send (attempt number `attempts + 1`),
    /// so two copies of a job can never both send it.
    pub async fn claim(
        &self,
        delivery_id: &str,
        attempts: usize,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match self
            .client
            .update_item()
            .table_name(&self.deliveries)
            .key("deliveryId", s(delivery_id))
            .update_expression("SET claimedAt = :now")
            .condition_expression(
                "#st = :pending AND size(attempts) = :n AND (attribute_not_exists(claimedAt) OR claimedAt < :stale)",
            )
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", value(&DeliveryStatus::Pending)?)
            .expression_attribute_values(":n", AttributeValue::N(attempts.to_string()))
            .expression_attribute_values(":now", ts(now))
            .expression_attribute_values(":stale", ts(stale_before))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Appends an attempt, sets the status and releases the claim.
    pub async fn record_attempt(
        &self,
        delivery_id: &str,
        attempt: &Attempt,
        status: DeliveryStatus,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.deliveries)
            .key("deliveryId", s(delivery_id))
            .update_expression("SET attempts = list_append(attempts, :a), #st = :s, updatedAt = :now REMOVE claimedAt")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":a", value(&vec![attempt])?)
            .expression_attribute_values(":s", value(&status)?)
            .expression_attribute_values(":now", ts(attempt.at))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// Ends a delivery without another attempt (endpoint disabled or deleted).
    pub async fn fail_delivery(
        &self,
        delivery_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.deliveries)
            .key("deliveryId", s(delivery_id))
            .update_expression("SET #st = :s, updatedAt = :now REMOVE claimedAt")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":s", value(&DeliveryStatus::Failed)?)
            .expression_attribute_values(":now", ts(now))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// A webhook's recent deliveries, newest first.
    pub async fn deliveries_of(
        &self,
        webhook_id: &str,
        limit: i32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.deliveries)
            .index_name(BY_WEBHOOK_INDEX)
            .key_condition_expression("webhookId = :w")
            .expression_attribute_values(":w", s(webhook_id))
            .scan_index_forward(false)
            .limit(limit)
            .send()
            .await
            .map_err(sdk_error)?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect()
    }
}
