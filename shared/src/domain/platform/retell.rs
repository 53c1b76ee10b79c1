//! Retell AI, pure: the webhook signature, the inbound-call webhook's request
//! and answer, and the call events.
//!
//! Shapes follow Retell's docs (features/inbound-call-webhook,
//! features/webhook, features/secure-webhook) and the Python SDK 6.2
//! (`retell/lib/webhook_auth.py` for the signature, `types/phone_call_response.py`
//! for the call). Parsing is lenient: unknown fields are ignored and every
//! field we can do without is optional.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::agent_context::{RingContext, RingDecision};
use crate::domain::analysis::transcript::RawTurn;
use crate::domain::restaurant::Agent;

/// The SDK's tolerance either way, in milliseconds.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the x-retell-signature header is not v=<unix ms>,d=<64 hex digits>")]
    Malformed,
    #[error("the signature's timestamp is outside the accepted window")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
}

fn mac_hex(key: &str, body: &[u8], v: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    mac.update(v.to_string().as_bytes());
    crate::domain::hashing::hex_lower(&mac.finalize().into_bytes())
}

/// The `x-retell-signature` value for `body` at `v` (unix ms):
/// `v=<v>,d=<hex HMAC-SHA256(key, body + v)>`.
pub fn sign(key: &str, body: &[u8], v: i64) -> String {
    format!("v={v},d={}", mac_hex(key, body, v))
}

/// Checks an `x-retell-signature` header against the raw body at `now_ms`,
/// as the SDK's `verify` does (the digest is exactly 64 lower-case hex
/// digits; compared in constant time).
pub fn verify_signature(
    key: &str,
    header: &str,
    body: &[u8],
    now_ms: i64,
) -> Result<(), SignatureError> {
    let (v, d) = header
        .trim()
        .strip_prefix("v=")
        .and_then(|rest| rest.split_once(",d="))
        .ok_or(SignatureError::Malformed)?;
    let v: i64 = (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse().ok())
        .flatten()
        .ok_or(SignatureError::Malformed)?;
    if d.len() != 64 || !d.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(SignatureError::Malformed);
    }
    if (now_ms - v).abs() > MAX_SKEW_MS {
        return Err(SignatureError::Stale);
    }
    let expected = mac_hex(key, body, v);
    if bool::from(d.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

// ---------------------------------------------------------------------------
// Inbound call webhook
// ---------------------------------------------------------------------------

/// `{"event": "call_inbound", "call_inbound": {…}}`, posted while the phone
/// rings (10 s timeout, up to 3 retries).
#[derive(Debug, Clone, Deserialize)]
pub struct InboundRequest {
    pub event: String,
    /// Absent on the SMS form of the webhook (`chat_inbound`).
    #[serde(default)]
    pub call_inbound: Option<InboundCall>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct InboundCall {
    #[serde(default)]
    pub from_number: Option<String>,
    #[serde(default)]
    pub to_number: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
}

/// Our answer: which agent takes the call, and its dynamic variables (strings only).
#[derive(Debug, Clone, Serialize)]
pub struct InboundResponse {
    pub call_inbound: InboundOverride,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct InboundOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_agent_id: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dynamic_variables: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// The inbound answer for a ringing call: the restaurant's Retell agent
/// (else the number's own), every variable, and in the metadata (which
/// Retell keeps on the call) the restaurant and what we decided. A closed
/// restaurant's agent gets `ai_should_answer` = `false` and the number its
/// transfer tool dials, `transfer_number`: the restaurant's own agent
/// either way, since on Retell only an agent can transfer.
pub fn inbound_answer(ctx: &RingContext, agent: Option<&Agent>) -> InboundResponse {
    let decision = match ctx.decision {
        RingDecision::Agent(_) => "agent",
        RingDecision::Forward(_) => "transfer",
        RingDecision::NoForward => "unavailable",
    };
    let agent = agent.and_then(|a| a.retell_agent_id.clone());
    InboundResponse {
        call_inbound: InboundOverride {
            override_agent_id: agent,
            dynamic_variables: ctx.variables_with_transfer(),
            metadata: BTreeMap::from([
                (
                    "restaurant_id".to_string(),
                    ctx.variables["restaurant_id"].clone(),
                ),
                ("decision".to_string(), decision.to_string()),
            ]),
        },
    }
}

// ---------------------------------------------------------------------------
// Call events
// ---------------------------------------------------------------------------

/// `{"event": "call_started" | "call_ended" | "call_analyzed" | …, "call": {…}}`
/// (chat events carry `chat` instead of `call`).
#[derive(Debug, Clone, Deserialize)]
pub struct CallEvent {
    pub event: String,
    #[serde(default)]
    pub call: Option<RetellCall>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RetellCall {
    pub call_id: String,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub from_number: Option<String>,
    #[serde(default)]
    pub to_number: Option<String>,
    #[serde(default)]
    pub call_status: Option<String>,
    /// Unix milliseconds.
    #[serde(default)]
    pub start_timestamp: Option<i64>,
    #[serde(default)]
    pub end_timestamp: Option<i64>,
    #[serde(default)]
    pub duration_ms: Option<i64>,
    #[serde(default)]
    pub disconnection_reason: Option<String>,
    #[serde(default)]
    pub transcript_object: Vec<Utterance>,
    /// A number, or (in newer payloads) `{"number": …}`.
    #[serde(default)]
    pub transfer_destination: Option<serde_json::Value>,
    #[serde(default)]
    pub call_analysis: Option<CallAnalysis>,
    #[serde(default)]
    pub recording_url: Option<String>,
    /// The dynamic variables the call ran with (ours among them).
    #[serde(default)]
    pub retell_llm_dynamic_variables: Option<serde_json::Map<String, serde_json::Value>>,
}

/// One turn of `transcript_object` (its `words` timings are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct Utterance {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallAnalysis {
    #[serde(default)]
    pub call_summary: Option<String>,
    /// `Negative` | `Positive` | `Neutral` | `Unknown`.
    #[serde(default)]
    pub user_sentiment: Option<String>,
    #[serde(default)]
    pub call_successful: Option<bool>,
    #[serde(default)]
    pub in_voicemail: Option<bool>,
}

impl RetellCall {
    /// The restaurant's number: the number called, or the caller id of an
    /// outbound call.
    pub fn restaurant_number(&self) -> Option<&str> {
        let n = if self.direction.as_deref() == Some("outbound") {
            &self.from_number
        } else {
            &self.to_number
        };
        n.as_deref().map(str::trim).filter(|n| !n.is_empty())
    }

    /// The other party's number.
    pub fn caller_number(&self) -> Option<&str> {
        if self.direction.as_deref() == Some("outbound") {
            self.to_number.as_deref()
        } else {
            self.from_number.as_deref()
        }
    }

    /// A dynamic variable the call ran with (e.g. our `restaurant_id`).
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.retell_llm_dynamic_variables
            .as_ref()?
            .get(name)?
            .as_str()
    }

    /// Retell transferred the call (its transfer tool, to our number).
    pub fn was_transferred(&self) -> bool {
        self.disconnection_reason
            .as_deref()
            .is_some_and(|r| r == "call_transfer")
            || self.transfer_number().is_some()
    }

    /// The number the call was transferred to.
    pub fn transfer_number(&self) -> Option<String> {
        let d = self.transfer_destination.as_ref()?;
        d.as_str()
            .or_else(|| d.get("number")?.as_str())
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
    }

    /// The call never reached a conversation.
    pub fn was_missed(&self) -> bool {
        matches!(
            self.disconnection_reason.as_deref(),
            Some("dial_busy" | "dial_failed" | "dial_no_answer" | "registered_call_timeout")
        ) || self.call_status.as_deref() == Some("not_connected")
    }

    /// Whole seconds the call lasted, from `duration_ms` or the timestamps.
    pub fn duration_secs(&self) -> u64 {
        let ms = self.duration_ms.or_else(|| {
            self.start_timestamp
                .zip(self.end_timestamp)
                .map(|(s, e)| e - s)
        });
        ms.map_or(0, |ms| (ms.max(0) / 1000) as u64)
    }

    /// The transcript as `{role, message}` turns: Retell's `agent` / `user`
    /// roles map as they are; `transfer_target` turns are the restaurant's.
    pub fn turns(&self) -> Vec<RawTurn> {
        self.transcript_object
            .iter()
            .filter(|u| !u.content.trim().is_empty())
            .map(|u| RawTurn {
                role: match u.role.as_str() {
                    "user" => "user",
                    _ => "agent",
                }
                .to_string(),
                message: u.content.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "key_0123456789abcdef";

    #[test]
    fn signatures_round_trip_and_fail_closed() {
        let body = br#"{"event":"call_analyzed","call":{"call_id":"c1"}}"#;
        let now = 1_764_000_000_000;
        let header = sign(KEY, body, now);
        assert!(header.starts_with(&format!("v={now},d=")));
        assert_eq!(verify_signature(KEY, &header, body, now + 1000), Ok(()));
        assert_eq!(
            verify_signature(KEY, &header, body, now + MAX_SKEW_MS + 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature(KEY, &header, body, now - MAX_SKEW_MS - 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature("key_other", &header, body, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(KEY, &header, b"{}", now),
            Err(SignatureError::Mismatch)
        );
        for bad in [
            "",
            "v=,d=00",
            &format!("v={now}"),
            &format!("v={now},d={}", "A".repeat(64)),
            &format!("v=-1,d={}", "0".repeat(64)),
            &format!("d={},v={now}", "0".repeat(64)),
        ] {
            assert_eq!(
                verify_signature(KEY, bad, body, now),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_mac_is_over_body_then_timestamp() {
        // HMAC-SHA256("key", "{}" + "1000"), as the SDK's symmetric signer computes it.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
        mac.update(b"{}1000");
        let expected = crate::domain::hashing::hex_lower(&mac.finalize().into_bytes());
        assert_eq!(sign("key", b"{}", 1000), format!("v=1000,d={expected}"));
    }

    #[test]
    fn call_events_parse_leniently() {
        let e: CallEvent = serde_json::from_str(
            r#"{"event":"call_analyzed","call":{"call_id":"call_9","agent_id":"agent_1",
                "call_type":"phone_call","from_number":"+15551230000","to_number":"+15557654321",
                "start_timestamp":1764000000000,"end_timestamp":1764000042500,
                "disconnection_reason":"user_hangup","new_field":{"x":1},
                "transcript_object":[{"role":"agent","content":"Hi!","words":[]},
                                      {"role":"user","content":"A table for two at 7?"},
                                      {"role":"user","content":"  "}],
                "call_analysis":{"call_summary":"Booked a table.","user_sentiment":"Positive",
                                 "call_successful":true,"in_voicemail":false}}}"#,
        )
        .unwrap();
        assert_eq!(e.event, "call_analyzed");
        let call = e.call.unwrap();
        assert_eq!(call.duration_secs(), 42);
        assert_eq!(call.restaurant_number(), Some("+15557654321"));
        assert!(!call.was_transferred() && !call.was_missed());
        assert_eq!(
            call.turns()
                .into_iter()
                .map(|t| (t.role, t.message))
                .collect::<Vec<_>>(),
            vec![
                ("agent".to_string(), "Hi!".to_string()),
                ("user".to_string(), "A table for two at 7?".to_string())
            ]
        );
        let a = call.call_analysis.unwrap();
        assert_eq!(a.user_sentiment.as_deref(), Some("Positive"));
        assert_eq!(a.call_successful, Some(true));
    }

    #[test]
    fn inbound_request_and_answer() {
        let r: InboundRequest = serde_json::from_str(
            r#"{"event":"call_inbound","call_inbound":{"agent_id":"agent_1",
                "from_number":"+15551230000","to_number":"+15557654321"}}"#,
        )
        .unwrap();
        assert_eq!(
            r.call_inbound.unwrap().to_number.as_deref(),
            Some("+15557654321")
        );
        let answer = InboundResponse {
            call_inbound: InboundOverride {
                override_agent_id: Some("agent_2".into()),
                dynamic_variables: BTreeMap::from([("is_open_now".into(), "true".into())]),
                metadata: BTreeMap::new(),
            },
        };
        assert_eq!(
            serde_json::to_value(&answer).unwrap(),
            serde_json::json!({"call_inbound": {"override_agent_id": "agent_2",
                "dynamic_variables": {"is_open_now": "true"}}})
        );
    }
}
