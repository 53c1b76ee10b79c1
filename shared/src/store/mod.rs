//! DynamoDB persistence, one narrow store per table family. Items are the
//! domain structs serialized with serde_dynamo.

pub mod admins;
pub mod api_keys;
pub mod calls;
pub mod integrations;
// Only the storage tests measure items (the bench measures them from moto, in Python).
#[cfg(test)]
mod item_size;
pub mod rate_limits;
pub mod restaurants;
pub mod webhooks;

use crate::error::Chain;
use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

pub type Item = HashMap<String, AttributeValue>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("an item with this key already exists")]
    AlreadyExists,
    #[error("dynamodb request failed")]
    Dynamo(#[source] Cause),
    #[error("stored item could not be read or written")]
    Corrupt(#[source] Cause),
    #[error("pagination cursor is invalid")]
    BadCursor,
    /// Concurrent transactions kept colliding on the same items.
    #[error("the items were being changed concurrently")]
    Conflict,
}

/// The underlying error of a store failure, kept whole for the log.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

impl From<crate::faults::Injected> for StoreError {
    fn from(e: crate::faults::Injected) -> Self {
        StoreError::Dynamo(Box::new(e))
    }
}

/// The SDK's error, kept whole: its source chain reaches the service's own
/// code and message, which the 500's log prints.
pub(crate) fn sdk_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::Dynamo(Box::new(err))
}

pub(crate) fn is_condition_failure<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

/// Reason codes of a cancelled transaction, one per item in order, or `None`
/// when the failure was something else.
pub(crate) fn cancellation_reasons<R>(
    err: &SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> Option<Vec<String>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    match err.as_service_error()? {
        E::TransactionCanceledException(e) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| r.code().unwrap_or("None").to_string())
                .collect(),
        ),
        _ => None,
    }
}

/// A request builder's result (a missing required field) as a store error.
pub(crate) fn build<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(|e| StoreError::Dynamo(e.to_string().into()))
}

/// A conditional write's answer: `None` when its condition did not hold.
pub(crate) fn conditional<O, E, R>(
    result: Result<O, SdkError<E, R>>,
) -> Result<Option<O>, StoreError>
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(out) => Ok(Some(out)),
        Err(e) if is_condition_failure(&e) => Ok(None),
        Err(e) => Err(sdk_error(e)),
    }
}

/// The item a conditional update wrote (it must ask for
/// `ReturnValue::AllNew`), or `None` when its condition did not hold.
pub(crate) fn updated<T, E, R>(
    result: Result<aws_sdk_dynamodb::operation::update_item::UpdateItemOutput, SdkError<E, R>>,
) -> Result<Option<T>, StoreError>
where
    T: serde::de::DeserializeOwned,
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    conditional(result)?
        .and_then(|out| out.attributes)
        .map(from_item)
        .transpose()
}

/// A lease-style claim (e-mails, deliveries): the condition that nobody
/// else holds a fresh claim on the item at `path` ("" for the item itself,
/// "#em." for a map attribute) — a retry of our own claim passes again —
/// and the values it and the claim's `SET` use (`:claim`, `:until`, `:nowms`).
pub(crate) fn claim_free(path: &str) -> String {
    format!(
        "(attribute_not_exists({path}claimId) OR {path}claimedUntil < :nowms OR {path}claimId = :claim)"
    )
}

pub(crate) fn with_claim(
    req: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder,
    claim_id: &str,
    now: chrono::DateTime<chrono::Utc>,
    until_ms: i64,
) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
    req.expression_attribute_values(":claim", s(claim_id))
        .expression_attribute_values(":until", n(until_ms))
        .expression_attribute_values(":nowms", n(now.timestamp_millis()))
}

/// The items of a write transaction.
pub(crate) mod tx {
    use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};

    pub(crate) fn put(p: Put) -> TransactWriteItem {
        TransactWriteItem::builder().put(p).build()
    }
    pub(crate) fn update(u: Update) -> TransactWriteItem {
        TransactWriteItem::builder().update(u).build()
    }
    pub(crate) fn delete(d: Delete) -> TransactWriteItem {
        TransactWriteItem::builder().delete(d).build()
    }
}

/// Tries of a transaction that DynamoDB cancels for a conflict with another
/// transaction (not retried by the SDK): after that, `StoreError::Conflict`.
const TRANSACTION_TRIES: u32 = 4;

/// A transaction's outcome apart from success.
pub(crate) enum TransactError {
    /// Cancelled by a condition: the reason code of each item, in order.
    Cancelled(Vec<String>),
    Store(StoreError),
}

impl TransactError {
    /// Whether the transaction was cancelled by the condition of item `i`.
    pub(crate) fn failed_at(&self, i: usize) -> bool {
        matches!(self, TransactError::Cancelled(r)
            if r.get(i).map(String::as_str) == Some("ConditionalCheckFailed"))
    }
}

/// Runs a write transaction, retrying with jitter while it is cancelled only
/// by conflicts with concurrent transactions. The SDK fills in the
/// idempotency token, so its own retries of a lost answer apply it once.
pub(crate) async fn transact(
    client: &aws_sdk_dynamodb::Client,
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
) -> Result<(), TransactError> {
    let mut try_no = 1;
    loop {
        let err = match client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        match cancellation_reasons(&err) {
            Some(reasons) if reasons.iter().any(|r| r == "ConditionalCheckFailed") => {
                return Err(TransactError::Cancelled(reasons))
            }
            Some(reasons) if reasons.iter().any(|r| r == "TransactionConflict") => {
                if try_no >= TRANSACTION_TRIES {
                    return Err(TransactError::Store(StoreError::Conflict));
                }
            }
            _ => return Err(TransactError::Store(sdk_error(err))),
        }
        backoff(try_no).await;
        try_no += 1;
    }
}

/// Tries of a write that records a side effect already done (an e-mail
/// SES accepted, a webhook the receiver answered): losing it means doing
/// the side effect again, so it is worth a few more tries than the SDK's.
const PERSIST_TRIES: u32 = 4;

/// Runs `write` until it succeeds or fails `PERSIST_TRIES` times.
pub async fn persist<T, F, Fut>(what: &'static str, mut write: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut try_no = 1;
    loop {
        match write().await {
            Ok(v) => return Ok(v),
            Err(e @ (StoreError::Dynamo(_) | StoreError::Conflict)) if try_no < PERSIST_TRIES => {
                tracing::warn!(error = %Chain(&e), try_no, "{what} failed; retrying");
            }
            Err(e) => return Err(e),
        }
        backoff(try_no).await;
        try_no += 1;
    }
}

/// Sleeps 25 ms·2^(n-1) plus up to as much again of jitter.
async fn backoff(try_no: u32) {
    let base = 25u64 << try_no.saturating_sub(1).min(6);
    let mut b = [0u8; 2];
    crate::domain::hashing::random_bytes(&mut b);
    let jitter = u16::from_le_bytes(b) as u64 % (base + 1);
    tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
}

pub(crate) fn to_item<T: serde::Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(Box::new(e)))
}

pub(crate) fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(Box::new(e)))
}

/// The records of a query or scan page.
pub(crate) fn from_items<T: serde::de::DeserializeOwned>(
    items: Option<Vec<Item>>,
) -> Result<Vec<T>, StoreError> {
    items
        .unwrap_or_default()
        .into_iter()
        .map(from_item)
        .collect()
}

pub(crate) fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn s(value: impl AsRef<str>) -> AttributeValue {
    AttributeValue::S(value.as_ref().to_string())
}

/// A timestamp attribute, encoded exactly as serde encodes the records' own.
pub(crate) fn ts(t: chrono::DateTime<chrono::Utc>) -> AttributeValue {
    s(serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default())
}

/// Any serializable value as an attribute (for update expressions).
pub(crate) fn value<T: serde::Serialize>(v: &T) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(v).map_err(|e| StoreError::Corrupt(Box::new(e)))
}

/// Reads the item whose string key attribute `key` is `id`. Strongly
/// consistent reads are for records another request may have just written.
pub(crate) async fn get_by_key<T: serde::de::DeserializeOwned>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    id: &str,
    consistent: bool,
) -> Result<Option<T>, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .key(key, s(id))
        .consistent_read(consistent)
        .send()
        .await
        .map_err(sdk_error)?;
    out.item.map(from_item).transpose()
}

/// Puts a new item; `AlreadyExists` when an item with that `key` is there.
pub(crate) async fn put_new<T: serde::Serialize>(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    record: &T,
) -> Result<(), StoreError> {
    match client
        .put_item()
        .table_name(table)
        .set_item(Some(to_item(record)?))
        .condition_expression(format!("attribute_not_exists({key})"))
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failure(&e) => Err(StoreError::AlreadyExists),
        Err(e) => Err(sdk_error(e)),
    }
}

/// Opaque pagination cursor: the LastEvaluatedKey of string attributes.
pub(crate) fn encode_cursor(key: &Item) -> Option<String> {
    let map: HashMap<&str, &str> = key
        .iter()
        .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.as_str(), s.as_str())))
        .collect();
    serde_json::to_vec(&map).ok().map(|b| B64.encode(b))
}

pub(crate) fn decode_cursor(cursor: &str, allowed: &[&str]) -> Result<Item, StoreError> {
    let bytes = B64.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    let map: HashMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|_| StoreError::BadCursor)?;
    // Exactly the key attributes we issued: a partial key makes DynamoDB fail.
    if map.len() != allowed.len() || map.keys().any(|k| !allowed.contains(&k.as_str())) {
        return Err(StoreError::BadCursor);
    }
    // Our keys are short; a forged long one would be DynamoDB's ValidationException.
    if map.values().any(|v| v.is_empty() || v.len() > 1024) {
        return Err(StoreError::BadCursor);
    }
    Ok(map.into_iter().map(|(k, v)| (k, s(v))).collect())
}
