//! Webhook subscriptions (listed per key family through `byOwner`) and their
//! deliveries (listed per webhook through `byWebhook`, newest first).

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValue, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::{
    build, claim_free, conditional, from_item, from_items, get_by_key, is_condition_failure, n,
    put_new, s, sdk_error, to_item, transact, ts, tx, updated, value, with_claim, StoreError,
    TransactError,
};
use crate::domain::ids::{DeliveryId, WebhookId};
use crate::domain::webhook::{
    Attempt, DeliveryRecord, DeliveryStatus, StoredSecret, WebhookRecord, WebhookStatus,
};

pub const BY_OWNER_INDEX: &str = "byOwner";

#[derive(Debug, thiserror::Error)]
pub enum InsertError {
    #[error("the key family has its maximum number of webhooks")]
    LimitReached,
    #[error(transparent)]
    Store(#[from] StoreError),
}
pub const BY_WEBHOOK_INDEX: &str = "byWebhook";

#[derive(Clone)]
pub struct WebhookStore {
    client: Client,
    webhooks: String,
    deliveries: String,
}

impl WebhookStore {
    fn update_webhook(&self, webhook_id: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.webhooks)
            .key("webhookId", s(webhook_id))
    }

    fn update_delivery(&self, delivery_id: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.deliveries)
            .key("deliveryId", s(delivery_id))
    }

    pub fn new(client: Client, webhooks: String, deliveries: String) -> Self {
        Self {
            client,
            webhooks,
            deliveries,
        }
    }

    /// The item counting a key family's webhooks (no `ownerId` or `status`
    /// attribute, so neither the owner index nor the fan-out scan sees it).
    fn counter_key(owner_id: &str) -> String {
        format!("owner#{owner_id}")
    }

    /// A change to a key family's webhook count (`:zero` and `:one` bound).
    fn count_change(&self, owner_id: &str, update: &str, condition: &str) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.webhooks)
            .key("webhookId", s(Self::counter_key(owner_id)))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
    }

    /// Stores a new webhook if its key family has fewer than `max`: the
    /// count and the webhook are written in one transaction, so concurrent
    /// registrations can't pass the cap together.
    pub async fn insert(&self, w: &WebhookRecord, max: usize) -> Result<(), InsertError> {
        let count = build(
            self.count_change(
                &w.owner_id,
                "SET webhookCount = if_not_exists(webhookCount, :zero) + :one",
                "attribute_not_exists(webhookCount) OR webhookCount < :max",
            )
            .expression_attribute_values(":max", n(max))
            .build(),
        )?;
        let put = build(
            Put::builder()
                .table_name(&self.webhooks)
                .set_item(Some(to_item(w)?))
                .condition_expression("attribute_not_exists(webhookId)")
                .build(),
        )?;
        match transact(&self.client, vec![tx::update(count), tx::put(put)]).await {
            Ok(()) => Ok(()),
            Err(e) if e.failed_at(0) => Err(InsertError::LimitReached),
            Err(TransactError::Cancelled(_)) => Err(InsertError::Store(StoreError::AlreadyExists)),
            Err(TransactError::Store(e)) => Err(InsertError::Store(e)),
        }
    }

    pub async fn get(&self, webhook_id: &WebhookId) -> Result<Option<WebhookRecord>, StoreError> {
        get_by_key(&self.client, &self.webhooks, "webhookId", webhook_id, true).await
    }

    /// Deletes a webhook and counts it out of its key family's total.
    pub async fn delete(&self, w: &WebhookRecord) -> Result<(), StoreError> {
        let delete = build(
            Delete::builder()
                .table_name(&self.webhooks)
                .key("webhookId", s(&w.webhook_id))
                .condition_expression("attribute_exists(webhookId)")
                .build(),
        )?;
        // Never below zero, even for webhooks stored before there was a count.
        let count = build(
            self.count_change(
                &w.owner_id,
                "SET webhookCount = if_not_exists(webhookCount, :one) - :one",
                "attribute_not_exists(webhookCount) OR webhookCount > :zero",
            )
            .build(),
        )?;
        match transact(&self.client, vec![tx::delete(delete), tx::update(count)]).await {
            Ok(()) => Ok(()),
            // Deleted meanwhile: nothing is left to do.
            Err(e) if e.failed_at(0) => Ok(()),
            // The count is already at zero: delete without counting.
            Err(TransactError::Cancelled(_)) => self.delete_uncounted(&w.webhook_id).await,
            Err(TransactError::Store(e)) => Err(e),
        }
    }

    async fn delete_uncounted(&self, webhook_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.webhooks)
            .key("webhookId", s(webhook_id))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    /// Replaces the signing secret `current` with `next`, keeping `previous`
    /// (the current one, sealed) valid until `previous_until`, only while the
    /// webhook is active and nobody rotated it meanwhile. `None`: one of those
    /// no longer holds.
    pub async fn rotate_secret(
        &self,
        webhook_id: &str,
        current: &StoredSecret,
        next: &StoredSecret,
        previous: &StoredSecret,
        previous_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let sent = self.update_webhook(webhook_id)
            .update_expression(
                "SET secret = :next, previousSecret = :previous, previousSecretExpiresAt = :until, updatedAt = :now",
            )
            .condition_expression("#st = :active AND secret = :current")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":active", value(&WebhookStatus::Active)?)
            .expression_attribute_values(":current", value(current)?)
            .expression_attribute_values(":next", value(next)?)
            .expression_attribute_values(":previous", value(previous)?)
            .expression_attribute_values(":until", ts(previous_until))
            .expression_attribute_values(":now", ts(now))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        updated(sent)
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
        from_items(out.items)
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
            .update_webhook(webhook_id)
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
        conditional(
            self.update_webhook(webhook_id)
                .update_expression("REMOVE failingSince")
                .condition_expression("attribute_exists(webhookId)")
                .send()
                .await,
        )?;
        Ok(())
    }

    pub async fn disable(
        &self,
        webhook_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        conditional(
            self.update_webhook(webhook_id)
                .update_expression("SET #st = :disabled, disabledReason = :why, updatedAt = :now")
                .condition_expression("attribute_exists(webhookId)")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":disabled", value(&WebhookStatus::Disabled)?)
                .expression_attribute_values(":why", s(reason))
                .expression_attribute_values(":now", ts(now))
                .send()
                .await,
        )?;
        Ok(())
    }

    /// Stores a new delivery; `AlreadyExists` if this message id was stored before.
    pub async fn insert_delivery(&self, d: &DeliveryRecord) -> Result<(), StoreError> {
        put_new(&self.client, &self.deliveries, "deliveryId", d).await
    }

    pub async fn delivery(
        &self,
        delivery_id: &DeliveryId,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        get_by_key(
            &self.client,
            &self.deliveries,
            "deliveryId",
            delivery_id,
            true,
        )
        .await
    }

    /// Claims a pending delivery for attempt `attempts + 1` until
    /// `until_ms`, if nobody else holds a fresh claim (a retry of our own
    /// claim succeeds again), so two copies of a job never both send it.
    pub async fn claim(
        &self,
        delivery_id: &str,
        claim_id: &str,
        attempts: usize,
        now: DateTime<Utc>,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let req = self
            .update_delivery(delivery_id)
            .update_expression(
                "SET claimId = :claim, claimedUntil = :until, claims = if_not_exists(claims, :zero) + :one",
            )
            .condition_expression(format!(
                "#st = :pending AND size(attempts) = :n AND {}",
                claim_free("")
            ))
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":pending", value(&DeliveryStatus::Pending)?)
            .expression_attribute_values(":n", n(attempts))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1));
        let sent = with_claim(req, claim_id, now, until_ms).send().await;
        Ok(conditional(sent)?.is_some())
    }

    /// Appends an attempt, sets the status (and when the next attempt is
    /// due) and releases the claim, if the claim is still ours (`false`: a
    /// retry of this very write had landed, or a successor took over).
    pub async fn record_attempt(
        &self,
        delivery_id: &str,
        claim_id: &str,
        attempt: &Attempt,
        status: DeliveryStatus,
        next_attempt_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let mut req = self
            .update_delivery(delivery_id)
            .condition_expression("claimId = :claim")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":a", value(&vec![attempt])?)
            .expression_attribute_values(":s", value(&status)?)
            .expression_attribute_values(":now", ts(attempt.at))
            .expression_attribute_values(":claim", s(claim_id));
        let set = "SET attempts = list_append(attempts, :a), #st = :s, updatedAt = :now";
        req = match next_attempt_at {
            Some(at) => req
                .update_expression(format!(
                    "{set}, nextAttemptAt = :next REMOVE claimId, claimedUntil"
                ))
                .expression_attribute_values(":next", n(at)),
            None => {
                req.update_expression(format!("{set} REMOVE claimId, claimedUntil, nextAttemptAt"))
            }
        };
        Ok(conditional(req.send().await)?.is_some())
    }

    /// Ends a pending delivery without another attempt (endpoint disabled
    /// or deleted, workers dying on it), saying why.
    pub async fn fail_delivery(
        &self,
        delivery_id: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sent = self.update_delivery(delivery_id)
            .update_expression(
                "SET #st = :failed, failure = :why, updatedAt = :now REMOVE claimId, claimedUntil, nextAttemptAt",
            )
            .condition_expression("#st = :pending")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":failed", value(&DeliveryStatus::Failed)?)
            .expression_attribute_values(":pending", value(&DeliveryStatus::Pending)?)
            .expression_attribute_values(":why", s(reason))
            .expression_attribute_values(":now", ts(now))
            .send()
            .await;
        conditional(sent)?; // already finished
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
        from_items(out.items)
    }
}
