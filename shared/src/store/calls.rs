//! Call records, keyed by Pulsara call id, listed per restaurant through the
//! `byRestaurant` index (partition restaurantId, sort listKey = start time#id).

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::ReturnValue;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};

use super::{
    claim_free, conditional, decode_cursor, encode_cursor, from_item, get_by_key, n, put_new, s,
    sdk_error, ts, updated, value, with_claim, StoreError,
};
use crate::domain::analysis::transcript::Turn;
use crate::domain::analysis::Analysis;
use crate::domain::call::{CallRecord, CallStatus, Completion, EmailState, EmailStatus};
use crate::domain::ids::{CallId, Id};

pub const BY_RESTAURANT_INDEX: &str = "byRestaurant";

#[derive(Clone)]
pub struct CallStore {
    client: Client,
    table: String,
}

impl CallStore {
    /// An update of one call.
    fn update(&self, call_id: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("callId", s(call_id))
    }

    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    pub async fn get(&self, call_id: &CallId) -> Result<Option<CallRecord>, StoreError> {
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
        let sent = self.update(call_id)
            .update_expression(
                "SET transcript = :t, transcriptBytes = :b, analysis = :a, updatedAt = :now",
            )
            .condition_expression(
                "attribute_exists(callId) AND transcriptBytes < :b AND attribute_not_exists(completion)",
            )
            .expression_attribute_values(":t", value(&transcript)?)
            .expression_attribute_values(":b", n(bytes))
            .expression_attribute_values(":a", value(analysis)?)
            .expression_attribute_values(":now", ts(now))
            .send()
            .await;
        Ok(conditional(sent)?.is_some())
    }

    /// Completes the call if nobody completed it first, writing only what
    /// completion changes (a transcript extension racing it survives), and
    /// returns the stored record. Exactly one of any number of racing
    /// completions gets `Some`. With an e-mail to send, this write is the
    /// e-mail's outbox: the table's stream turns it into the e-mail job.
    pub async fn complete(
        &self,
        call_id: &str,
        completion: &Completion,
        final_analysis: Option<(&Analysis, usize)>,
        email: Option<&EmailState>,
        now: DateTime<Utc>,
    ) -> Result<Option<CallRecord>, StoreError> {
        let mut set = vec!["completion = :c", "#st = :completed", "updatedAt = :now"];
        let mut req = self
            .update(call_id)
            .condition_expression("attribute_exists(callId) AND attribute_not_exists(completion)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":c", value(completion)?)
            .expression_attribute_values(":completed", value(&CallStatus::Completed)?)
            .expression_attribute_values(":now", ts(now))
            .return_values(ReturnValue::AllNew);
        if let Some((analysis, bytes)) = final_analysis {
            set.push("analysis = :a");
            set.push("transcriptBytes = :b");
            req = req
                .expression_attribute_values(":a", value(analysis)?)
                .expression_attribute_values(":b", n(bytes));
        }
        if let Some(email) = email {
            set.push("email = :e");
            req = req.expression_attribute_values(":e", value(email)?);
        }
        updated(
            req.update_expression(format!("SET {}", set.join(", ")))
                .send()
                .await,
        )
    }

    /// Claims the call's e-mail for one send until `until_ms`, if it is
    /// still to be sent and nobody else holds a fresh claim (a retry of our
    /// own claim succeeds again). Counts the attempt; returns the record.
    pub async fn claim_email(
        &self,
        call_id: &str,
        claim_id: &str,
        now: DateTime<Utc>,
        until_ms: i64,
    ) -> Result<Option<CallRecord>, StoreError> {
        let req = self
            .update(call_id)
            .update_expression(
                "SET #em.claimId = :claim, #em.claimedUntil = :until, #em.attempts = #em.attempts + :one, #em.updatedAt = :now",
            )
            .condition_expression(format!(
                "(#em.#st = :sending OR #em.#st = :queued) AND {}",
                claim_free("#em.")
            ))
            .expression_attribute_names("#em", "email")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", ts(now))
            .expression_attribute_values(":sending", value(&EmailStatus::Sending)?)
            .expression_attribute_values(":queued", value(&EmailStatus::Queued)?)
            .return_values(ReturnValue::AllNew);
        updated(with_claim(req, claim_id, now, until_ms).send().await)
    }

    /// Records how the claimed send ended, if the claim is still ours
    /// (`false`: a successor took over, or a retry of this very write).
    pub async fn finish_email(
        &self,
        call_id: &str,
        claim_id: &str,
        next: &EmailState,
    ) -> Result<bool, StoreError> {
        Ok(conditional(
            self.update(call_id)
                .update_expression("SET #em = :next, updatedAt = :now")
                .condition_expression("#em.claimId = :claim")
                .expression_attribute_names("#em", "email")
                .expression_attribute_values(":next", value(next)?)
                .expression_attribute_values(":now", ts(next.updated_at))
                .expression_attribute_values(":claim", s(claim_id))
                .send()
                .await,
        )?
        .is_some())
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
        let lower = from.to_rfc3339_opts(SecondsFormat::Millis, true);
        let upper = format!("{}#~", to.to_rfc3339_opts(SecondsFormat::Millis, true));
        if let Some(key) = &start {
            let attr = |name: &str| {
                key.get(name)
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
            };
            // A cursor is only valid for the restaurant and the window it was
            // issued for (DynamoDB refuses a start key outside the key condition).
            let ours = attr("restaurantId") == Some(restaurant_id)
                && attr("callId").is_some_and(|id| CallId::parse(id).is_some())
                && attr("listKey").is_some_and(|k| (lower.as_str()..=upper.as_str()).contains(&k));
            if !ours {
                return Err(StoreError::BadCursor);
            }
        }
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

// ---------------------------------------------------------------------------
// SES feedback (bounces and complaints; issue 12). Kept apart from the rest of
// the store: it touches only `email.status` and `updatedAt` of the call item.
// ---------------------------------------------------------------------------

impl CallStore {
    /// Moves the e-mail from `from` to `to` (a bounce or complaint SES
    /// reported for `message_id`), if it still is at `from` for that message.
    /// `false`: it changed meanwhile (re-read and decide again), or a retry
    /// of this very write had landed.
    pub async fn record_email_feedback(
        &self,
        call_id: &CallId,
        from: EmailStatus,
        to: EmailStatus,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(conditional(
            self.update(call_id)
                .update_expression("SET #em.#st = :to, #em.updatedAt = :now, updatedAt = :now")
                .condition_expression("#em.#st = :from AND #em.messageId = :mid")
                .expression_attribute_names("#em", "email")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":from", value(&from)?)
                .expression_attribute_values(":to", value(&to)?)
                .expression_attribute_values(":mid", s(message_id))
                .expression_attribute_values(":now", ts(now))
                .send()
                .await,
        )?
        .is_some())
    }
}
