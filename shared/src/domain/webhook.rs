//! Webhooks: subscriptions, Standard Webhooks signing, the events a
//! restaurant change produces, deliveries and their retry schedule.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::hashing::random_bytes;
use super::ids::{ApiKeyId, DeliveryId, RestaurantId, WebhookId};
use super::restaurant::Restaurant;
use crate::crypto::envelope::{Context, Plaintext, Sealed};

/// The events a webhook can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum EventType {
    #[serde(rename = "restaurant.updated")]
    RestaurantUpdated,
    #[serde(rename = "settings.updated")]
    SettingsUpdated,
    #[serde(rename = "agent.updated")]
    AgentUpdated,
    /// Sent by `POST /ivr/webhooks/{id}/test`; not subscribable.
    #[serde(rename = "webhook.test")]
    Test,
}

impl EventType {
    /// What `events` of a registration may name.
    pub const SUBSCRIBABLE: [EventType; 3] = [
        EventType::RestaurantUpdated,
        EventType::SettingsUpdated,
        EventType::AgentUpdated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::RestaurantUpdated => "restaurant.updated",
            EventType::SettingsUpdated => "settings.updated",
            EventType::AgentUpdated => "agent.updated",
            EventType::Test => "webhook.test",
        }
    }

    /// A subscribable event type by its wire name.
    pub fn subscribable(name: &str) -> Option<EventType> {
        Self::SUBSCRIBABLE.into_iter().find(|e| e.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
pub const MAX_WEBHOOKS_PER_OWNER: usize = 10;
pub const SECRET_PREFIX: &str = "whsec_";
pub const DELIVERY_RETENTION_DAYS: i64 = 30;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterRequest {
    pub callback_url: String,
    pub events: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A new signing secret: `whsec_` + base64 of 24 random bytes.
pub fn generate_secret() -> Plaintext {
    let mut key = [0u8; 24];
    random_bytes(&mut key);
    Plaintext::new(format!("{SECRET_PREFIX}{}", B64.encode(key)))
}

/// What a webhook's signing secret is sealed to: its purpose and its webhook,
/// so a sealed secret copied into another record does not open.
pub fn secret_context(webhook_id: &WebhookId) -> Context {
    Context::new([
        ("purpose", "webhook-signing-secret"),
        ("webhookId", webhook_id.as_str()),
    ])
}

/// A signing secret as stored.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StoredSecret {
    /// Envelope-encrypted under the secrets KMS key (`secret_context`).
    Sealed(Sealed),
    /// Stored in the clear before secrets were sealed: still signs; sealed
    /// (as the previous secret) at the webhook's next rotation.
    Legacy(String),
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoredSecret::Sealed(s) => s.fmt(f),
            StoredSecret::Legacy(_) => f.write_str("Legacy(<redacted>)"),
        }
    }
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` per Standard Webhooks.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> String {
    let key = B64
        .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
        .unwrap_or_else(|_| secret.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per current secret.
pub fn signature_header(secrets: &[&str], msg_id: &str, timestamp: i64, body: &str) -> String {
    secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum WebhookStatus {
    Active,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookRecord {
    pub webhook_id: WebhookId,
    /// Key family that registered it; only it can see or change it.
    pub owner_id: ApiKeyId,
    pub key_id: ApiKeyId,
    pub callback_url: String,
    pub events: Vec<EventType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub secret: StoredSecret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret: Option<StoredSecret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// The registering key's restaurant restriction, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restaurant_ids: Option<Vec<RestaurantId>>,
    pub status: WebhookStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl WebhookRecord {
    /// The secrets a delivery at `now` is signed with: the current one, and
    /// the previous one during its grace period.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&StoredSecret> {
        let mut s = vec![&self.secret];
        if let (Some(prev), Some(until)) = (&self.previous_secret, self.previous_secret_expires_at)
        {
            if until > now {
                s.push(prev);
            }
        }
        s
    }

    pub fn wants(&self, event_type: EventType, restaurant_id: &RestaurantId) -> bool {
        self.status == WebhookStatus::Active
            && self.events.contains(&event_type)
            && self
                .restaurant_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(restaurant_id))
    }
}

/// One kind of change to a restaurant, with the fields that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub event_type: EventType,
    pub changed_fields: Vec<&'static str>,
}

/// The events an edit produces: one per kind of change, none for no change.
pub fn changes(old: &Restaurant, new: &Restaurant) -> Vec<Change> {
    let mut restaurant = Vec::new();
    let mut settings = Vec::new();
    let mut agent = Vec::new();
    macro_rules! cmp {
        ($list:ident, $field:ident, $name:literal) => {
            if old.$field != new.$field {
                $list.push($name);
            }
        };
    }
    cmp!(restaurant, name, "name");
    cmp!(restaurant, phone_numbers, "phoneNumbers");
    cmp!(restaurant, timezone, "timezone");
    cmp!(settings, ai_enabled, "aiEnabled");
    cmp!(settings, call_hours_start, "callHoursStart");
    cmp!(settings, call_hours_end, "callHoursEnd");
    cmp!(settings, schedule, "schedule");
    cmp!(settings, special_hours, "specialHours");
    cmp!(settings, closures, "closures");
    cmp!(settings, forwarding_number, "forwarding_number");
    cmp!(settings, notification_emails, "notificationEmails");
    cmp!(agent, agent, "agent");
    [
        (EventType::RestaurantUpdated, restaurant),
        (EventType::SettingsUpdated, settings),
        (EventType::AgentUpdated, agent),
    ]
    .into_iter()
    .filter(|(_, fields)| !fields.is_empty())
    .map(|(event_type, changed_fields)| Change {
        event_type,
        changed_fields,
    })
    .collect()
}

/// An event as receivers get it: only what they need to go and fetch the config.
#[derive(Debug, Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    event_type: EventType,
    timestamp: DateTime<Utc>,
    data: PayloadData<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PayloadData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    restaurant_id: Option<&'a RestaurantId>,
    changed_fields: &'a [&'a str],
}

pub fn payload(
    event_type: EventType,
    restaurant_id: Option<&RestaurantId>,
    changed_fields: &[&str],
    at: DateTime<Utc>,
) -> String {
    let payload = Payload {
        event_type,
        timestamp: at,
        data: PayloadData {
            restaurant_id,
            changed_fields,
        },
    };
    serde_json::to_string(&payload).expect("a payload serializes")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub delivery_id: DeliveryId,
    pub webhook_id: WebhookId,
    pub owner_id: ApiKeyId,
    pub event_type: EventType,
    pub payload: String,
    pub status: DeliveryStatus,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<DeliveryId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: i64,
    /// The worker sending it right now, and until when (epoch ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_until: Option<i64>,
    /// Claims ever taken: more than `attempts` means workers died mid-attempt.
    #[serde(default)]
    pub claims: u32,
    /// Not before (epoch ms): the retry schedule's next slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
    /// Why it failed without a final attempt (endpoint disabled, workers died).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// Workers dying mid-attempt this many times in a row fail a delivery for
/// good (it goes to the dead-letter queue) instead of crashing forever.
pub const MAX_CUT_OFF_ATTEMPTS: u32 = 3;

/// What a worker does with a delivery job, given the delivery as stored.
#[derive(Debug, PartialEq, Eq)]
pub enum DeliveryStep {
    /// Succeeded or failed: the job is done.
    Finished,
    /// Another worker's claim is fresh, or the next retry isn't due: come back in `secs`.
    Later { secs: u64 },
    /// Workers died mid-attempt too often: fail it for good.
    Abandon,
    /// Claim it and send the next attempt.
    Attempt,
}

pub fn delivery_step(d: &DeliveryRecord, now: DateTime<Utc>) -> DeliveryStep {
    if d.status != DeliveryStatus::Pending {
        return DeliveryStep::Finished;
    }
    if let Some(secs) = super::claim::seconds_left(d.claimed_until, now) {
        return DeliveryStep::Later { secs };
    }
    if d.claims.saturating_sub(d.attempts.len() as u32) >= MAX_CUT_OFF_ATTEMPTS {
        return DeliveryStep::Abandon;
    }
    match super::claim::seconds_left(d.next_attempt_at, now) {
        Some(secs) => DeliveryStep::Later { secs },
        None => DeliveryStep::Attempt,
    }
}

/// What an attempt's answer means for the delivery and its endpoint.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    pub status: DeliveryStatus,
    /// Seconds until the next attempt, while `Pending`.
    pub retry_in: Option<u64>,
    /// Disable the endpoint, for this reason.
    pub disable: Option<String>,
}

/// The verdict on attempt `attempt_no` that got HTTP `status` (None: no
/// answer). `failing_since`: when the endpoint's current run of failures
/// began (this attempt's time if it starts one); unused on success.
pub fn judge(
    status: Option<u16>,
    attempt_no: usize,
    schedule: &RetrySchedule,
    failing_since: DateTime<Utc>,
    disable_after_seconds: i64,
    now: DateTime<Utc>,
) -> Verdict {
    if status.is_some_and(|s| (200..300).contains(&s)) {
        return Verdict {
            status: DeliveryStatus::Succeeded,
            retry_in: None,
            disable: None,
        };
    }
    if status == Some(410) {
        return Verdict {
            status: DeliveryStatus::Failed,
            retry_in: None,
            disable: Some("the endpoint answered 410 Gone".into()),
        };
    }
    let disable = ((now - failing_since).num_seconds() >= disable_after_seconds).then(|| {
        format!(
            "deliveries failed continuously since {}",
            failing_since.to_rfc3339()
        )
    });
    let retry_in = schedule
        .delay_before(attempt_no + 1)
        .filter(|_| disable.is_none());
    Verdict {
        status: if retry_in.is_some() {
            DeliveryStatus::Pending
        } else {
            DeliveryStatus::Failed
        },
        retry_in,
        disable,
    }
}

impl DeliveryRecord {
    pub fn new(
        delivery_id: DeliveryId,
        webhook: &WebhookRecord,
        event_type: EventType,
        payload: String,
        now: DateTime<Utc>,
    ) -> Self {
        DeliveryRecord {
            delivery_id,
            webhook_id: webhook.webhook_id.clone(),
            owner_id: webhook.owner_id.clone(),
            event_type,
            payload,
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            replay_of: None,
            created_at: now,
            updated_at: now,
            expires_at: (now + Duration::days(DELIVERY_RETENTION_DAYS)).timestamp(),
            claim_id: None,
            claimed_until: None,
            claims: 0,
            next_attempt_at: None,
            failure: None,
        }
    }
}

/// Waits before each retry; after the last, the delivery has failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<u64>);

impl RetrySchedule {
    /// Standard Webhooks' suggestion: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (~27.6 h).
    pub fn standard() -> Self {
        RetrySchedule(vec![5, 300, 1_800, 7_200, 18_000, 36_000, 36_000])
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let delays: Result<Vec<u64>, _> = s.split(',').map(|d| d.trim().parse::<u64>()).collect();
        match delays {
            Ok(d) if !d.is_empty() && d.len() <= 20 && d.iter().all(|&x| x <= 7 * 86_400) => {
                Ok(RetrySchedule(d))
            }
            _ => Err("expected comma-separated seconds, e.g. 5,300,1800".into()),
        }
    }

    /// Delay before attempt `next_attempt` (2 = first retry), with up to 10 %
    /// jitter; `None` once the schedule is exhausted.
    pub fn delay_before(&self, next_attempt: usize) -> Option<u64> {
        let base = *self.0.get(next_attempt.checked_sub(2)?)?;
        let mut b = [0u8; 2];
        random_bytes(&mut b);
        let jitter = (u16::from_le_bytes(b) as u64) % (base / 10 + 1);
        Some(base + jitter)
    }

    pub fn max_attempts(&self) -> usize {
        self.0.len() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Id;
    use crate::domain::restaurant::RestaurantInput;

    const RST_1: &str = "rst_0197d8c0f1e27b6a9c3d4e5f60718293";
    const RST_2: &str = "rst_0197d8c0f1e27b6a9c3d4e5f60718294";

    fn rst(id: &str) -> RestaurantId {
        RestaurantId::parse(id).unwrap()
    }

    fn restaurant() -> Restaurant {
        let input: RestaurantInput = serde_json::from_value(serde_json::json!({
            "name": "A", "phoneNumbers": ["(555) 123-4567"], "timezone": "America/New_York",
            "agent": {"elevenlabs_agent_id": "a", "voice_id": "v"}
        }))
        .unwrap();
        input
            .into_restaurant(rst(RST_1), Utc::now(), phonenumber::country::Id::US)
            .unwrap()
    }

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example in the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        let header = signature_header(&[secret, "whsec_AAAA"], "m", 1, "b");
        assert_eq!(header.split(' ').count(), 2);
        assert!(generate_secret().expose().starts_with(SECRET_PREFIX));
    }

    #[test]
    fn stored_secrets_read_both_forms() {
        let legacy: StoredSecret = serde_json::from_value(serde_json::json!("whsec_x")).unwrap();
        assert_eq!(legacy, StoredSecret::Legacy("whsec_x".into()));
        let sealed = serde_json::json!({"alg": "AES256GCM-KMS", "encryptedKey": "a",
                                        "nonce": "b", "ciphertext": "c"});
        let s: StoredSecret = serde_json::from_value(sealed.clone()).unwrap();
        assert!(matches!(s, StoredSecret::Sealed(_)));
        assert_eq!(serde_json::to_value(&s).unwrap(), sealed);
    }

    #[test]
    fn one_event_per_kind_of_change() {
        let old = restaurant();
        let mut new = old.clone();
        assert!(changes(&old, &new).is_empty());
        new.name = "B".into();
        new.call_hours_end = crate::domain::hours::TimeOfDay::parse("22:00").unwrap();
        new.ai_enabled = true;
        new.agent = None;
        let c = changes(&old, &new);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0],
            Change {
                event_type: EventType::RestaurantUpdated,
                changed_fields: vec!["name"]
            }
        );
        assert_eq!(c[1].changed_fields, vec!["aiEnabled", "callHoursEnd"]);
        assert_eq!(c[2].event_type, EventType::AgentUpdated);
    }

    #[test]
    fn payload_carries_only_what_is_needed() {
        let p: serde_json::Value = serde_json::from_str(&payload(
            EventType::SettingsUpdated,
            Some(&rst(RST_1)),
            &["callHoursEnd"],
            Utc::now(),
        ))
        .unwrap();
        assert_eq!(p["type"], "settings.updated");
        assert_eq!(
            p["data"],
            serde_json::json!({"restaurantId": RST_1, "changedFields": ["callHoursEnd"]})
        );
    }

    #[test]
    fn retry_schedule() {
        let s = RetrySchedule::parse("1,2,3").unwrap();
        assert_eq!(s.max_attempts(), 4);
        assert_eq!(s.delay_before(1), None);
        assert_eq!(s.delay_before(2), Some(1));
        assert_eq!(s.delay_before(4), Some(3));
        assert_eq!(s.delay_before(5), None);
        let std = RetrySchedule::standard();
        let total: u64 = std.0.iter().sum();
        assert!((86_400..=2 * 86_400).contains(&total), "about a day");
        assert!(RetrySchedule::parse("").is_err() && RetrySchedule::parse("a,b").is_err());
    }

    fn delivery() -> DeliveryRecord {
        let w: WebhookRecord = serde_json::from_value(serde_json::json!({
            "webhookId": "wh_0197d8c0f1e27b6a9c3d4e5f60718293", "ownerId": "owner123",
            "keyId": "key12345", "callbackUrl": "https://x.example",
            "events": ["restaurant.updated"], "secret": "whsec_x", "status": "active",
            "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"
        }))
        .unwrap();
        DeliveryRecord::new(
            DeliveryId::generate(),
            &w,
            EventType::RestaurantUpdated,
            "{}".into(),
            Utc::now(),
        )
    }

    #[test]
    fn delivery_steps_follow_claims_schedule_and_crashes() {
        let now = Utc::now();
        let mut d = delivery();
        assert_eq!(delivery_step(&d, now), DeliveryStep::Attempt);
        d.claims = 1;
        d.claimed_until = Some(now.timestamp_millis() + 5_000);
        assert_eq!(
            delivery_step(&d, now),
            DeliveryStep::Later { secs: 5 },
            "held elsewhere"
        );
        d.claimed_until = Some(now.timestamp_millis() - 1);
        assert_eq!(
            delivery_step(&d, now),
            DeliveryStep::Attempt,
            "lapsed: taken over"
        );
        d.claims = MAX_CUT_OFF_ATTEMPTS;
        assert_eq!(
            delivery_step(&d, now),
            DeliveryStep::Abandon,
            "died every time"
        );
        d.claims = 1;
        d.attempts.push(Attempt {
            at: now,
            status_code: Some(500),
            latency_ms: 1,
            error: None,
        });
        d.next_attempt_at = Some(now.timestamp_millis() + 300_000);
        assert_eq!(
            delivery_step(&d, now),
            DeliveryStep::Later { secs: 300 },
            "not due"
        );
        d.status = DeliveryStatus::Succeeded;
        assert_eq!(delivery_step(&d, now), DeliveryStep::Finished);
    }

    #[test]
    fn verdicts_retry_fail_and_disable() {
        let s = RetrySchedule::parse("1,2").unwrap();
        let now = Utc::now();
        let ok = judge(Some(204), 1, &s, now, 60, now);
        assert_eq!(
            (ok.status, ok.retry_in, ok.disable),
            (DeliveryStatus::Succeeded, None, None)
        );
        let retry = judge(Some(500), 1, &s, now, 60, now);
        assert_eq!(
            (retry.status, retry.retry_in),
            (DeliveryStatus::Pending, Some(1))
        );
        let last = judge(None, 3, &s, now, 60, now);
        assert_eq!((last.status, last.retry_in), (DeliveryStatus::Failed, None));
        let gone = judge(Some(410), 1, &s, now, 60, now);
        assert_eq!(gone.status, DeliveryStatus::Failed);
        assert!(gone.disable.is_some());
        let dead = judge(Some(500), 1, &s, now - Duration::seconds(61), 60, now);
        assert_eq!((dead.status, dead.retry_in), (DeliveryStatus::Failed, None));
        assert!(dead.disable.unwrap().contains("continuously"));
    }

    #[test]
    fn wants_respects_events_status_and_restriction() {
        let mut w = WebhookRecord {
            webhook_id: WebhookId::generate(),
            owner_id: ApiKeyId::parse("owner123").unwrap(),
            key_id: ApiKeyId::parse("key12345").unwrap(),
            callback_url: "https://x.example/h".into(),
            events: vec![EventType::SettingsUpdated],
            description: None,
            secret: StoredSecret::Legacy(generate_secret().expose().into()),
            previous_secret: Some(StoredSecret::Legacy("whsec_old".into())),
            previous_secret_expires_at: Some(Utc::now() + Duration::hours(1)),
            restaurant_ids: Some(vec![rst(RST_1)]),
            status: WebhookStatus::Active,
            disabled_reason: None,
            failing_since: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        assert!(w.wants(EventType::SettingsUpdated, &rst(RST_1)));
        assert!(!w.wants(EventType::AgentUpdated, &rst(RST_1)));
        assert!(!w.wants(EventType::SettingsUpdated, &rst(RST_2)));
        assert_eq!(w.signing_secrets(Utc::now()).len(), 2);
        let out = serde_json::to_string(&crate::responses::WebhookOut::new(&w)).unwrap();
        assert!(!out.contains("whsec_"));
        assert!(
            !format!("{w:?}").contains("whsec_"),
            "Debug never shows a secret"
        );
        w.status = WebhookStatus::Disabled;
        assert!(!w.wants(EventType::SettingsUpdated, &rst(RST_1)));
    }
}
