//! The formats of our own ids. A path id is checked against its format before
//! any DynamoDB call: an id we could never have issued is simply not found
//! (and can't reach DynamoDB's key-size limits as a 500).

/// The kinds of id that appear in paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// `call_` + 24 hex digits (derived from the vendor's id).
    Call,
    /// `rst_` + 32 hex digits (a UUIDv7).
    Restaurant,
    /// `wh_` + 32 hex digits (a UUIDv7).
    Webhook,
    /// `msg_` + 24 hex digits (derived from a change) or 32 (a UUIDv7).
    Delivery,
    /// 8 base62 characters: the public part of an API key.
    ApiKey,
}

impl IdKind {
    /// The noun of the 404 for this kind of id.
    pub fn noun(self) -> &'static str {
        match self {
            IdKind::Call => "call",
            IdKind::Restaurant => "restaurant",
            IdKind::Webhook => "webhook",
            IdKind::Delivery => "delivery",
            IdKind::ApiKey => "API key",
        }
    }

    /// Whether `id` has this kind's format.
    pub fn matches(self, id: &str) -> bool {
        let hex = |s: &str, lens: &[usize]| {
            lens.contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        match self {
            IdKind::Call => id.strip_prefix("call_").is_some_and(|s| hex(s, &[24])),
            IdKind::Restaurant => id.strip_prefix("rst_").is_some_and(|s| hex(s, &[32])),
            IdKind::Webhook => id.strip_prefix("wh_").is_some_and(|s| hex(s, &[32])),
            IdKind::Delivery => id.strip_prefix("msg_").is_some_and(|s| hex(s, &[24, 32])),
            IdKind::ApiKey => {
                id.len() == super::api_key::ID_LEN && id.bytes().all(|b| b.is_ascii_alphanumeric())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::IdKind::*;

    #[test]
    fn issued_ids_match_their_kind_only() {
        let call = crate::domain::call::call_id_for("o", "r", "x");
        assert!(Call.matches(&call) && !Restaurant.matches(&call));
        let rst = crate::services::new_restaurant_id();
        assert!(Restaurant.matches(&rst) && !Webhook.matches(&rst));
        let wh = crate::domain::webhook::random_id("wh_");
        assert!(Webhook.matches(&wh));
        let msg = crate::domain::webhook::delivery_id("ev", &wh, "restaurant.updated");
        assert!(
            Delivery.matches(&msg) && Delivery.matches(&crate::domain::webhook::random_id("msg_"))
        );
        assert!(
            ApiKey.matches("Ab3dE6gH") && !ApiKey.matches("Ab3dE6g") && !ApiKey.matches("Ab3dE6g!")
        );
    }

    #[test]
    fn oversized_or_foreign_ids_never_match() {
        let huge = format!("rst_{}", "a".repeat(3000));
        assert!(!Restaurant.matches(&huge));
        assert!(!Call.matches("call_000000000000000000000000x"));
        assert!(!Call.matches("CALL_000000000000000000000000"));
        assert!(
            !Webhook.matches("wh_0197D8C0F1E27B6A9C3D4E5F60718293"),
            "upper case is not ours"
        );
        assert!(!Delivery.matches("msg_"));
    }
}
