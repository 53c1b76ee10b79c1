//! Call records, keyed by Pulsara call id, listed per restaurant through the
//! `byRestaurant` index (partition restaurantId, sort listKey = start time#id).

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};

use super::{
    decode_cursor, encode_cursor, from_item, get_by_key, is_condition_failure, put_new, s,
    sdk_error, to_item, ts, value, StoreError,
};
use crate::domain::analysis::transcript::Turn;
use crate::domain::analysis::Analysis;
use crate::domain::call::{CallRecord, EmailState, EmailStatus};

pub const BY_RESTAURANT_INDEX: &str = "byRestaurant";

#[derive(Clone)]
pub struct CallStore {
    client: Client,
    table: String,
}

impl CallStore {
    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    pub async fn get(&self, call_id: &str) -> Result<Option<CallRecord>, StoreError> {
        get_by_key(&self.client, &self.table, "callId", call_id, true).await
    }

    /// Inserts a new call; `AlreadyExists` when the vendor already sent it.
    pub async fn insert(&self, call: &CallRecord) -> Result<(), StoreError> {
        put_new(&self.client, &self.table, "callId", call).await
    }

    /// Replaces the transcript and analysis if the new transcript is longer
    /// and the call is still open. Returns whether it changed.
    pub async fn extend_transcript(
        &self,
        call_id: &str,
        transcript: &[Turn],
        bytes: usize,
        analysis: &Analysis,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .key("callId", s(call_id))
            .update_expression(
                "SET transcript = :t, transcriptBytes = :b, analysis = :a, updatedAt = :now",
            )
            .condition_expression(
                "attribute_exists(callId) AND transcriptBytes < :b AND attribute_not_exists(completion)",
            )
            .expression_attribute_values(":t", value(&transcript)?)
            .expression_attribute_values(":b", AttributeValue::N(bytes.to_string()))
            .expression_attribute_values(":a", value(analysis)?)
            .expression_attribute_values(":now", ts(now))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Stores the completed call if nobody completed it first. Exactly one of
    /// any number of racing completions gets `true`.
    pub async fn complete(&self, completed: &CallRecord) -> Result<bool, StoreError> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(completed)?))
            .condition_expression("attribute_exists(callId) AND attribute_not_exists(completion)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Moves the e-mail state on, if it is still in one of `from` (so two
    /// workers never both claim or finish the same e-mail).
    pub async fn set_email(
        &self,
        call_id: &str,
        from: &[EmailStatus],
        next: &EmailState,
    ) -> Result<bool, StoreError> {
        let mut conditions = Vec::new();
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("callId", s(call_id))
            .update_expression("SET #em = :next, updatedAt = :now")
            .expression_attribute_values(":next", value(next)?)
            .expression_attribute_values(":now", ts(next.updated_at))
            .expression_attribute_names("#em", "email")
            .expression_attribute_names("#st", "status")
            .return_values(ReturnValue::None);
        for (i, status) in from.iter().enumerate() {
            let name = format!(":from{i}");
            conditions.push(format!("#em.#st = {name}"));
            req = req.expression_attribute_values(name, value(status)?);
        }
        let condition = format!("attribute_exists(callId) AND ({})", conditions.join(" OR "));
        match req.condition_expression(condition).send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// A restaurant's calls started in `[from, to]`, newest first.
    pub async fn list(
        &self,
        restaurant_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i32,
        cursor: Option<&str>,
    ) -> Result<(Vec<CallRecord>, Option<String>), StoreError> {
        let start = cursor
            .map(|c| decode_cursor(c, &["callId", "restaurantId", "listKey"]))
            .transpose()?;
        if let Some(key) = &start {
            // A cursor is only valid for the restaurant it was issued for.
            if key
                .get("restaurantId")
                .and_then(|v| v.as_s().ok())
                .map(String::as_str)
                != Some(restaurant_id)
            {
                return Err(StoreError::BadCursor);
            }
        }
        let lower = from.to_rfc3339_opts(SecondsFormat::Millis, true);
        let upper = format!("{}#~", to.to_rfc3339_opts(SecondsFormat::Millis, true));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_RESTAURANT_INDEX)
            .key_condition_expression("restaurantId = :r AND listKey BETWEEN :lo AND :hi")
            .expression_attribute_values(":r", s(restaurant_id))
            .expression_attribute_values(":lo", s(lower))
            .expression_attribute_values(":hi", s(upper))
            .scan_index_forward(false)
            .limit(limit)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        let calls = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_item)
            .collect::<Result<Vec<CallRecord>, _>>()?;
        Ok((
            calls,
            out.last_evaluated_key.as_ref().and_then(encode_cursor),
        ))
    }
}
