//! Our own ids, as types. Each is parsed once (from a path, a body or a stored
//! item) and can then only hold a value we could have issued: an id of the
//! wrong kind or shape is simply not found, and can't reach DynamoDB's
//! key-size limits as a 500.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::hashing::sha256_hex;

/// An id type with a fixed format and the noun of its 404.
pub trait Id: Sized + AsRef<str> {
    /// The noun of the 404 for this kind of id.
    const NOUN: &'static str;
    /// The id, if `raw` has this kind's format.
    fn parse(raw: &str) -> Option<Self>;
}

/// `prefix` then lowercase hex digits, as many as one of `lens`.
fn prefixed_hex(s: &str, prefix: &str, lens: &[usize]) -> bool {
    s.strip_prefix(prefix).is_some_and(|hex| {
        lens.contains(&hex.len())
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Defines an id newtype: its format check, display, and serde as a plain
/// string (so stored items and wire formats are unchanged), refusing any
/// value that doesn't have the format.
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, noun = $noun:literal, valid = $valid:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl Id for $name {
            const NOUN: &'static str = $noun;
            fn parse(raw: &str) -> Option<Self> {
                let valid: fn(&str) -> bool = $valid;
                valid(raw).then(|| Self(raw.to_string()))
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                <$name as Id>::parse(&raw).ok_or_else(|| {
                    serde::de::Error::custom(concat!("is not a ", $noun, " id"))
                })
            }
        }
    };
}

#[cfg(test)]
crate::string_schema!(
    RestaurantId,
    CallId,
    WebhookId,
    DeliveryId,
    ApiKeyId,
    IntegrationId
);

id_type!(
    /// `rst_` + 32 hex digits (a UUIDv7).
    RestaurantId, noun = "restaurant", valid = |s| prefixed_hex(s, "rst_", &[32])
);
id_type!(
    /// `call_` + 24 hex digits, derived from the vendor's id.
    CallId, noun = "call", valid = |s| prefixed_hex(s, "call_", &[24])
);
id_type!(
    /// `wh_` + 32 hex digits (a UUIDv7).
    WebhookId, noun = "webhook", valid = |s| prefixed_hex(s, "wh_", &[32])
);
id_type!(
    /// `int_` + 32 hex digits (a UUIDv7): a platform integration.
    IntegrationId, noun = "integration", valid = |s| prefixed_hex(s, "int_", &[32])
);
id_type!(
    /// `msg_` + 24 hex digits (derived from a change) or 32 (a UUIDv7).
    DeliveryId, noun = "delivery", valid = |s| prefixed_hex(s, "msg_", &[24, 32])
);
id_type!(
    /// 8 base62 characters: the public part of an API key. A key family
    /// (the owner of calls and webhooks) is named by its first key's id.
    ApiKeyId, noun = "API key", valid = |s| {
        s.len() == super::api_key::ID_LEN && s.bytes().all(|b| b.is_ascii_alphanumeric())
    }
);

/// `prefix` + a UUIDv7: unique, and sortable by creation time.
fn time_ordered(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::now_v7().simple())
}

/// `prefix` + 24 hex digits of a digest of `parts`: the same inputs always
/// give the same id, so a retried request or a replayed record makes nothing new.
fn derived(prefix: &str, parts: &[&str]) -> String {
    format!("{prefix}{}", &sha256_hex(parts.join("\n").as_bytes())[..24])
}

/// `generate()` for the ids we mint at random: prefix + a UUIDv7.
macro_rules! time_ordered_ids {
    ($($name:ident => $prefix:literal),+) => {$(
        impl $name {
            pub fn generate() -> Self {
                Self(time_ordered($prefix))
            }
        }
    )+};
}

// Deliveries nothing else could cause (a test event, a replay) are minted too.
time_ordered_ids!(
    RestaurantId => "rst_",
    WebhookId => "wh_",
    DeliveryId => "msg_",
    IntegrationId => "int_"
);

impl DeliveryId {
    /// The delivery of one source event to one webhook: a stream record
    /// replayed by Lambda maps to the same delivery.
    pub fn for_event(source_event_id: &str, webhook_id: &WebhookId, event_type: &str) -> Self {
        Self(derived("msg_", &[source_event_id, webhook_id, event_type]))
    }
}

impl CallId {
    /// The Pulsara call id of a vendor's call: derived from who sent it, for
    /// which restaurant, and the vendor's own id, so a retry can never make a
    /// second call.
    pub fn for_vendor_call(
        owner: &ApiKeyId,
        restaurant_id: &RestaurantId,
        external_call_id: &str,
    ) -> Self {
        Self(derived("call_", &[owner, restaurant_id, external_call_id]))
    }
}

impl ApiKeyId {
    /// The id part of a freshly generated key body.
    pub(crate) fn from_generated(body: &str) -> Self {
        Self(body[..super::api_key::ID_LEN].to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rst() -> RestaurantId {
        RestaurantId::generate()
    }

    #[test]
    fn issued_ids_parse_as_their_kind_only() {
        let owner = ApiKeyId::parse("Ab3dE6gH").unwrap();
        let call = CallId::for_vendor_call(&owner, &rst(), "x");
        assert!(CallId::parse(&call).is_some() && RestaurantId::parse(&call).is_none());
        let r = rst();
        assert!(RestaurantId::parse(&r).is_some() && WebhookId::parse(&r).is_none());
        let wh = WebhookId::generate();
        assert!(WebhookId::parse(&wh).is_some());
        let msg = DeliveryId::for_event("ev", &wh, "restaurant.updated");
        assert!(DeliveryId::parse(&msg).is_some());
        assert!(DeliveryId::parse(&DeliveryId::generate()).is_some());
        assert!(ApiKeyId::parse("Ab3dE6g").is_none() && ApiKeyId::parse("Ab3dE6g!").is_none());
    }

    #[test]
    fn oversized_or_foreign_ids_never_parse() {
        let huge = format!("rst_{}", "a".repeat(3000));
        assert!(RestaurantId::parse(&huge).is_none());
        assert!(CallId::parse("call_000000000000000000000000x").is_none());
        assert!(CallId::parse("CALL_000000000000000000000000").is_none());
        assert!(
            WebhookId::parse("wh_0197D8C0F1E27B6A9C3D4E5F60718293").is_none(),
            "upper case is not ours"
        );
        assert!(DeliveryId::parse("msg_").is_none());
    }

    #[test]
    fn derived_ids_are_deterministic_and_distinct() {
        let (o1, o2) = (
            ApiKeyId::parse("own1own1").unwrap(),
            ApiKeyId::parse("own2own2").unwrap(),
        );
        let (r1, r2) = (rst(), rst());
        let a = CallId::for_vendor_call(&o1, &r1, "CA1");
        assert_eq!(a, CallId::for_vendor_call(&o1, &r1, "CA1"));
        assert_ne!(a, CallId::for_vendor_call(&o2, &r1, "CA1"));
        assert_ne!(a, CallId::for_vendor_call(&o1, &r2, "CA1"));
        assert_ne!(a, CallId::for_vendor_call(&o1, &r1, "CA2"));
        assert!(a.starts_with("call_") && a.len() == 29);
        let (w1, w2) = (WebhookId::generate(), WebhookId::generate());
        let d = DeliveryId::for_event("e1", &w1, "a");
        assert_eq!(d, DeliveryId::for_event("e1", &w1, "a"));
        assert_ne!(d, DeliveryId::for_event("e2", &w1, "a"));
        assert_ne!(d, DeliveryId::for_event("e1", &w2, "a"));
    }

    #[test]
    fn serde_refuses_what_parse_refuses() {
        let ok: RestaurantId = serde_json::from_value(serde_json::json!(rst().as_str())).unwrap();
        assert_eq!(serde_json::to_value(&ok).unwrap(), ok.as_str());
        assert!(serde_json::from_value::<RestaurantId>(serde_json::json!("rst_1")).is_err());
    }
}
