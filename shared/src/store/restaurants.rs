//! Restaurants and the phone-number index that keeps every number on exactly
//! one restaurant (enforced by conditional writes in one transaction).
//!
//! Each phone item also carries a copy of its restaurant's record, written in
//! the same transaction as every write of the restaurant, so the ring path
//! finds a restaurant by phone in one read and the copy is never older than
//! the record. Phone items written before the copies existed hold only the
//! restaurant id (`PhoneEntry::Id`); the restaurant's next write adds it.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;

use crate::domain::ids::{Id, RestaurantId};
use crate::domain::phone::E164;

use super::{
    build, from_item, get_by_key, n, s, sdk_error, to_item, transact, tx, Item, StoreError,
    TransactError,
};
use crate::domain::restaurant::Restaurant;
use crate::error::Chain;

#[derive(Debug, thiserror::Error)]
pub enum RestaurantWriteError {
    #[error("phone number {0} belongs to another restaurant")]
    PhoneTaken(E164),
    #[error("the restaurant changed concurrently")]
    Stale,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The phone item's attribute holding the copy of its restaurant.
const COPY: &str = "restaurant";

/// What the phone index holds for a number.
#[derive(Debug)]
pub enum PhoneEntry {
    None,
    /// The owning restaurant, as of its latest write.
    Restaurant(Box<Restaurant>),
    /// Only the owner's id (an item written before the copies).
    Id(RestaurantId),
}

#[derive(Clone)]
pub struct RestaurantStore {
    client: Client,
    table: String,
    phones: String,
}

impl RestaurantStore {
    pub fn new(client: Client, table: String, phones: String) -> Self {
        Self {
            client,
            table,
            phones,
        }
    }

    /// An eventually consistent read: the ring path's, where a change a
    /// second old may still show the previous settings.
    pub async fn get(
        &self,
        restaurant_id: &RestaurantId,
    ) -> Result<Option<Restaurant>, StoreError> {
        self.read(restaurant_id, false).await
    }

    /// The latest version, for a read-modify-write (PATCH) that must not
    /// be refused as stale because it read a replica that lagged.
    pub async fn get_latest(
        &self,
        restaurant_id: &RestaurantId,
    ) -> Result<Option<Restaurant>, StoreError> {
        self.read(restaurant_id, true).await
    }

    async fn read(
        &self,
        restaurant_id: &RestaurantId,
        consistent: bool,
    ) -> Result<Option<Restaurant>, StoreError> {
        let table = &self.table;
        get_by_key(
            &self.client,
            table,
            "restaurantId",
            restaurant_id,
            consistent,
        )
        .await
    }

    /// What the phone index holds for an E.164 number: the owning
    /// restaurant's record, or (items written before the copies) its id.
    pub async fn by_phone(&self, e164: &E164) -> Result<PhoneEntry, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.phones)
            .key("phoneNumber", s(e164))
            .send()
            .await
            .map_err(sdk_error)?;
        let Some(mut item) = out.item else {
            return Ok(PhoneEntry::None);
        };
        if let Some(AttributeValue::M(copy)) = item.remove(COPY) {
            match from_item::<Restaurant>(copy) {
                Ok(r) => return Ok(PhoneEntry::Restaurant(Box::new(r))),
                // Read the record itself rather than fail on a copy we can't read.
                Err(e) => tracing::warn!(error = %Chain(&e), "unreadable restaurant copy"),
            }
        }
        Ok(item
            .get("restaurantId")
            .and_then(|v| v.as_s().ok())
            .and_then(|id| RestaurantId::parse(id))
            .map_or(PhoneEntry::None, PhoneEntry::Id))
    }

    /// Which of `ids` (at most 100) don't exist.
    pub async fn missing(&self, ids: &[RestaurantId]) -> Result<Vec<RestaurantId>, StoreError> {
        let mut unique: Vec<&RestaurantId> = ids.iter().collect();
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys = KeysAndAttributes::builder().projection_expression("restaurantId");
        unique.sort();
        unique.dedup();
        for id in &unique {
            keys = keys.keys(Item::from([("restaurantId".to_string(), s(id.as_str()))]));
        }
        let mut pending = Some(build(keys.build())?);
        let mut found: Vec<String> = Vec::new();
        // Unprocessed keys are retried; the batch is small, so a few rounds at most.
        for _ in 0..5 {
            let Some(req) = pending.take() else { break };
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, req)
                .send()
                .await
                .map_err(sdk_error)?;
            if let Some(items) = out.responses.and_then(|mut r| r.remove(&self.table)) {
                found.extend(
                    items
                        .into_iter()
                        .filter_map(|i| i.get("restaurantId").and_then(|v| v.as_s().ok()).cloned()),
                );
            }
            pending = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .filter(|k| !k.keys.is_empty());
        }
        Ok(unique
            .into_iter()
            .filter(|id| !found.iter().any(|f| f == id.as_str()))
            .cloned()
            .collect())
    }

    /// The phone item of `phone` on `r`, with the copy of `r`: claiming a
    /// free number, or (`claimed`) rewriting one `r` already holds.
    fn phone_put(
        &self,
        phone: &str,
        r: &Restaurant,
        claimed: bool,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.phones)
            .item("phoneNumber", s(phone))
            .item("restaurantId", s(&r.restaurant_id))
            .item(COPY, AttributeValue::M(to_item(r)?));
        let put = if claimed {
            // Ours, or (should it have gone missing) free again.
            put.condition_expression("attribute_not_exists(phoneNumber) OR restaurantId = :me")
                .expression_attribute_values(":me", s(&r.restaurant_id))
        } else {
            put.condition_expression("attribute_not_exists(phoneNumber)")
        };
        Ok(tx::put(build(put.build())?))
    }

    /// Creates the restaurant and claims its numbers, atomically.
    pub async fn create(&self, r: &Restaurant) -> Result<(), RestaurantWriteError> {
        let put = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(to_item(r)?))
                .condition_expression("attribute_not_exists(restaurantId)")
                .build(),
        )?;
        let mut items = vec![tx::put(put)];
        for phone in &r.phone_numbers {
            items.push(self.phone_put(phone, r, false)?);
        }
        self.transact(items, &r.phone_numbers, 1).await
    }

    /// Replaces `old` with `new` if nobody changed it meanwhile, moving the
    /// phone-number claims along with it.
    pub async fn update(
        &self,
        old: &Restaurant,
        new: &Restaurant,
    ) -> Result<(), RestaurantWriteError> {
        let put = build(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(to_item(new)?))
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(old.version))
                .build(),
        )?;
        let mut items = vec![tx::put(put)];
        let added: Vec<E164> = new
            .phone_numbers
            .iter()
            .filter(|p| !old.phone_numbers.contains(p))
            .cloned()
            .collect();
        for phone in &added {
            items.push(self.phone_put(phone, new, false)?);
        }
        // The numbers it keeps get the new copy too (after the added ones:
        // `transact` maps a failed condition at 1 + i to `added[i]`).
        for phone in new.phone_numbers.iter().filter(|p| !added.contains(p)) {
            items.push(self.phone_put(phone, new, true)?);
        }
        for phone in old
            .phone_numbers
            .iter()
            .filter(|p| !new.phone_numbers.contains(p))
        {
            let del = build(
                Delete::builder()
                    .table_name(&self.phones)
                    .key("phoneNumber", s(phone))
                    .condition_expression("restaurantId = :me")
                    .expression_attribute_values(":me", s(&new.restaurant_id))
                    .build(),
            )?;
            items.push(tx::delete(del));
        }
        self.transact(items, &added, 1).await
    }

    /// Runs a transaction whose items from `phone_offset` on claim `phones`.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        phones: &[E164],
        phone_offset: usize,
    ) -> Result<(), RestaurantWriteError> {
        let reasons = match transact(&self.client, items).await {
            Ok(()) => return Ok(()),
            Err(TransactError::Store(e)) => return Err(RestaurantWriteError::Store(e)),
            Err(TransactError::Cancelled(reasons)) => reasons,
        };
        for (i, code) in reasons.iter().enumerate() {
            if code != "ConditionalCheckFailed" {
                continue;
            }
            if i == 0 {
                return Err(RestaurantWriteError::Stale);
            }
            if let Some(phone) = phones.get(i - phone_offset) {
                return Err(RestaurantWriteError::PhoneTaken(phone.clone()));
            }
        }
        Err(RestaurantWriteError::Store(StoreError::Dynamo(
            format!("transaction cancelled: {reasons:?}").into(),
        )))
    }
}
