//! ElevenLabs Agents, pure: the post-call webhook's signature and events, and
//! the conversation-initiation webhook's request and answer.
//!
//! Shapes follow ElevenLabs' docs (post-call-webhooks, twilio-personalization)
//! and the Python SDK 2.78 (`webhooks_custom.py` for the signature; the
//! `conversation_history_*` models for the transcription's fields). Parsing is
//! lenient: every field but the ones we cannot do without is optional, and
//! unknown fields are ignored, so ElevenLabs adding a field breaks nothing.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// ElevenLabs refuses signatures older than this in its own SDK; so do we.
pub const MAX_AGE_SECS: i64 = 30 * 60;
/// The SDK does no future check; a clock more than this ahead is not a
/// clock skew but a signature made for later (a stored one, replayed then).
pub const MAX_FUTURE_SECS: i64 = 5 * 60;

// ---------------------------------------------------------------------------
// Signature
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the ElevenLabs-Signature header is not t=<seconds>,v0=<hex>")]
    Malformed,
    #[error("the signature's timestamp is outside the accepted window")]
    Stale,
    #[error("the signature does not match the body")]
    Mismatch,
}

fn mac_hex(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    crate::domain::hashing::hex_lower(&mac.finalize().into_bytes())
}

/// The `ElevenLabs-Signature` value for `body` at `t`:
/// `t=<t>,v0=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v0={}", mac_hex(secret, t, body))
}

/// Checks an `ElevenLabs-Signature` header against the raw body, at `now`
/// (unix seconds). Several `v0=` entries may be present (any one matching
/// suffices, compared in constant time).
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("t=") {
            t = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?);
        } else if let Some(v) = part.strip_prefix("v0=") {
            sigs.push(v);
        }
    }
    let (Some(t), false) = (t, sigs.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    if t < now - MAX_AGE_SECS || t > now + MAX_FUTURE_SECS {
        return Err(SignatureError::Stale);
    }
    let expected = mac_hex(secret, t, body);
    let ok = sigs
        .iter()
        .any(|s| bool::from(s.as_bytes().ct_eq(expected.as_bytes())));
    if ok {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

// ---------------------------------------------------------------------------
// Conversation initiation
// ---------------------------------------------------------------------------

/// What ElevenLabs posts for an inbound Twilio/SIP call before the agent speaks.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ConversationInitRequest {
    #[serde(default)]
    pub caller_id: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub called_number: Option<String>,
    #[serde(default)]
    pub call_sid: Option<String>,
}

/// Our answer: `conversation_initiation_client_data`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ConversationInitResponse {
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Always every name of `agent_context::VARIABLES` (the schema says so).
    #[cfg_attr(test, schemars(with = "VariablesSchema"))]
    pub dynamic_variables: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_config_override: Option<ConfigOverride>,
}

impl ConversationInitResponse {
    pub fn new(
        dynamic_variables: BTreeMap<String, String>,
        conversation_config_override: Option<ConfigOverride>,
    ) -> Self {
        Self {
            kind: "conversation_initiation_client_data",
            dynamic_variables,
            conversation_config_override,
        }
    }
}

/// The variables as the OpenAPI document names them (`agent_context::VARIABLES`).
#[cfg(test)]
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct VariablesSchema {
    restaurant_name: String,
    restaurant_id: String,
    is_open_now: String,
    hours_today: String,
    next_open: String,
    forwarding_number: String,
    timezone: String,
    local_time: String,
    ai_enabled: String,
}

/// Overrides ElevenLabs applies when the agent's Security tab allows them.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ConfigOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentOverride>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tts: Option<TtsOverride>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct AgentOverride {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_message: Option<String>,
    /// Replaces the agent's system prompt for this conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PromptOverride>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct PromptOverride {
    pub prompt: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct TtsOverride {
    pub voice_id: String,
}

// ---------------------------------------------------------------------------
// Post-call events
// ---------------------------------------------------------------------------

#[derive(Debug)]
pub enum PostCallEvent {
    Transcription(Box<Transcription>),
    InitiationFailure(InitiationFailure),
    /// `post_call_audio`: acknowledged, never held in memory.
    Audio {
        conversation_id: Option<String>,
    },
    /// A type we do not handle.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostCallError {
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("{path}: {message}")]
    Field { path: String, message: String },
}

impl PostCallError {
    /// The field the error is about (`data.conversation_id`), or `body`.
    pub fn field(&self) -> &str {
        match self {
            PostCallError::NotJson(_) => "body",
            PostCallError::Field { path, .. } => path,
        }
    }
}

/// A number that may arrive as an integer or a float (or null).
fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Ok(Option::<serde_json::Number>::deserialize(d)?.and_then(|n| n.as_f64()))
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(lenient_f64(d)?.map(|f| f as i64))
}

#[derive(Debug, Clone, Deserialize)]
pub struct Transcription {
    #[serde(default)]
    pub agent_id: Option<String>,
    pub conversation_id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub transcript: Vec<TranscriptEntry>,
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub analysis: Option<Analysis>,
    #[serde(default)]
    pub conversation_initiation_client_data: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TranscriptEntry {
    pub role: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub time_in_call_secs: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Metadata {
    #[serde(default, deserialize_with = "lenient_i64")]
    pub start_time_unix_secs: Option<i64>,
    #[serde(default, deserialize_with = "lenient_f64")]
    pub call_duration_secs: Option<f64>,
    #[serde(default)]
    pub termination_reason: Option<String>,
    #[serde(default)]
    pub main_language: Option<String>,
    #[serde(default)]
    pub phone_call: Option<PhoneCall>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PhoneCall {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub agent_number: Option<String>,
    #[serde(default)]
    pub external_number: Option<String>,
    #[serde(default)]
    pub call_sid: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Analysis {
    #[serde(default)]
    pub transcript_summary: Option<String>,
    #[serde(default)]
    pub call_summary_title: Option<String>,
    #[serde(default)]
    pub call_successful: Option<String>,
    #[serde(default)]
    pub data_collection_results: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub evaluation_criteria_results: Option<serde_json::Map<String, serde_json::Value>>,
}

/// `call_initiation_failure`: the docs promise "failure reasons and
/// metadata", where the metadata is `{type: "twilio" | "sip", body: {…}}`,
/// the body being the telephony provider's own fields (Twilio's status
/// callback: `CallSid`, `From`, `To`, …). The numbers and the SID are pulled
/// out of whichever form it has.
#[derive(Debug, Clone, Default)]
pub struct InitiationFailure {
    pub agent_id: Option<String>,
    pub conversation_id: Option<String>,
    pub failure_reason: Option<String>,
    /// The number that was called (the restaurant's).
    pub agent_number: Option<String>,
    pub caller_number: Option<String>,
    pub call_sid: Option<String>,
}

#[derive(Deserialize)]
struct RawFailure {
    #[serde(default)]
    agent_id: Option<String>,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    failure_reason: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
}

/// The first string among `keys` in `obj` or its `body`.
fn find_str(obj: Option<&serde_json::Value>, keys: &[&str]) -> Option<String> {
    let obj = obj?;
    let places = [Some(obj), obj.get("body")];
    places.into_iter().flatten().find_map(|o| {
        keys.iter()
            .find_map(|k| o.get(*k).and_then(|v| v.as_str()))
            .map(str::to_string)
            .filter(|s| !s.trim().is_empty())
    })
}

impl From<RawFailure> for InitiationFailure {
    fn from(r: RawFailure) -> Self {
        let m = r.metadata.as_ref();
        Self {
            agent_number: find_str(m, &["To", "Called", "agent_number", "to_number", "to"]),
            caller_number: find_str(
                m,
                &["From", "Caller", "external_number", "from_number", "from"],
            ),
            call_sid: find_str(m, &["CallSid", "call_sid"]),
            agent_id: r.agent_id,
            conversation_id: r.conversation_id,
            failure_reason: r.failure_reason,
        }
    }
}

/// The envelope's type alone: `data` (for `post_call_audio`, megabytes of
/// base64) is skipped without being copied.
#[derive(Deserialize)]
struct Kind {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    #[allow(dead_code)]
    data: Option<IgnoredAny>,
}

/// The envelope with `data` as `T`.
#[derive(Deserialize)]
struct With<T> {
    data: T,
}

#[derive(Deserialize)]
struct AudioData {
    #[serde(default)]
    conversation_id: Option<String>,
}

fn typed<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, PostCallError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let with: With<T> = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let message = message
            .rsplit_once(" at line ")
            .map_or(message.as_str(), |(m, _)| m)
            .to_string();
        PostCallError::Field { path, message }
    })?;
    Ok(with.data)
}

/// Parses a post-call webhook body `{type, event_timestamp, data}`.
pub fn parse_post_call(body: &[u8]) -> Result<PostCallEvent, PostCallError> {
    let text = std::str::from_utf8(body).map_err(|e| PostCallError::NotJson(e.to_string()))?;
    let kind: Kind = serde_json::from_str(text).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => PostCallError::Field {
            path: "type".into(),
            message: "is required and must be a string".into(),
        },
        _ => PostCallError::NotJson(e.to_string()),
    })?;
    Ok(match kind.kind.as_str() {
        "post_call_transcription" => PostCallEvent::Transcription(Box::new(typed(text)?)),
        "call_initiation_failure" => {
            PostCallEvent::InitiationFailure(typed::<RawFailure>(text)?.into())
        }
        // serde skips `full_audio` (a string it need not copy) to reach the id.
        "post_call_audio" => PostCallEvent::Audio {
            conversation_id: typed::<AudioData>(text)
                .ok()
                .and_then(|a| a.conversation_id),
        },
        other => PostCallEvent::Other(other.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wsec_test_0123456789abcdef";

    #[test]
    fn signature_matches_the_documented_scheme() {
        // Computed with Python's hmac, as the ElevenLabs SDK 2.78 (webhooks_custom.py)
        // recomputes it: hmac.new(b"wsec_test_0123456789abcdef", b"1700000000.{}",
        // sha256).hexdigest(); the SDK's construct_event accepts it (infra/tests check
        // our signatures against the SDK too).
        assert_eq!(
            sign(SECRET, 1_700_000_000, b"{}"),
            format!("t=1700000000,v0={}", mac_hex(SECRET, 1_700_000_000, b"{}"))
        );
        let body = br#"{"type":"post_call_transcription"}"#;
        let now = 1_700_000_000;
        let header = sign(SECRET, now - 60, body);
        assert_eq!(verify_signature(SECRET, &header, body, now), Ok(()));
        assert_eq!(
            verify_signature("other-secret-000000", &header, body, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(SECRET, &header, b"{}", now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_future_and_malformed_signatures_are_refused() {
        let body = b"{}";
        let now = 1_700_000_000;
        let old = sign(SECRET, now - MAX_AGE_SECS - 1, body);
        assert_eq!(
            verify_signature(SECRET, &old, body, now),
            Err(SignatureError::Stale)
        );
        let edge = sign(SECRET, now - MAX_AGE_SECS, body);
        assert_eq!(verify_signature(SECRET, &edge, body, now), Ok(()));
        let ahead = sign(SECRET, now + MAX_FUTURE_SECS + 1, body);
        assert_eq!(
            verify_signature(SECRET, &ahead, body, now),
            Err(SignatureError::Stale)
        );
        for bad in ["", "v0=abc", "t=x,v0=abc", "t=1700000000"] {
            assert_eq!(
                verify_signature(SECRET, bad, body, now),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        let good = sign(SECRET, now, body);
        let v0 = good.split_once(",v0=").unwrap().1;
        let two = format!("t={now},v0=deadbeef,v0={v0}");
        assert_eq!(verify_signature(SECRET, &two, body, now), Ok(()));
    }

    fn full_transcription() -> serde_json::Value {
        serde_json::json!({
            "type": "post_call_transcription", "event_timestamp": 1_739_537_297,
            "data": {
                "agent_id": "agent_1", "conversation_id": "conv_1", "status": "done",
                "user_id": null,
                "transcript": [
                    {"role": "agent", "message": "Hi", "time_in_call_secs": 0,
                     "tool_calls": [], "tool_results": [], "feedback": null,
                     "llm_override": null, "conversation_turn_metrics": {"x": 1}},
                    {"role": "user", "message": null, "time_in_call_secs": 1.5}
                ],
                "metadata": {"start_time_unix_secs": 1_739_537_297, "call_duration_secs": 22.0,
                             "cost": 296, "termination_reason": "", "main_language": "en",
                             "phone_call": {"type": "twilio", "direction": "inbound",
                                            "phone_number_id": "pn", "agent_number": "+15551234567",
                                            "external_number": "+15559871234",
                                            "call_sid": "CA0123", "stream_sid": "MZ1"}},
                "analysis": {"evaluation_criteria_results": {}, "data_collection_results": {
                                "party": {"data_collection_id": "party", "value": 4}},
                             "call_successful": "success", "transcript_summary": "Booked.",
                             "call_summary_title": "Booking"},
                "conversation_initiation_client_data": {"dynamic_variables": {"a": "b"}},
                "has_audio": true, "has_user_audio": false, "has_response_audio": true
            }
        })
    }

    #[test]
    fn a_recorded_shape_transcription_parses() {
        let body = serde_json::to_vec(&full_transcription()).unwrap();
        let PostCallEvent::Transcription(t) = parse_post_call(&body).unwrap() else {
            panic!("not a transcription")
        };
        assert_eq!(t.conversation_id, "conv_1");
        assert_eq!(t.transcript.len(), 2);
        assert_eq!(t.transcript[1].time_in_call_secs, Some(1.5));
        assert_eq!(t.metadata.call_duration_secs, Some(22.0));
        let phone = t.metadata.phone_call.unwrap();
        assert_eq!(phone.agent_number.as_deref(), Some("+15551234567"));
        assert_eq!(phone.call_sid.as_deref(), Some("CA0123"));
        let a = t.analysis.unwrap();
        assert_eq!(a.call_successful.as_deref(), Some("success"));
        assert!(a.data_collection_results.unwrap().contains_key("party"));
    }

    #[test]
    fn missing_and_mistyped_fields_name_their_path() {
        let mut v = full_transcription();
        v["data"].as_object_mut().unwrap().remove("conversation_id");
        let err = parse_post_call(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.to_string().contains("conversation_id"), "{err}");
        let mut v = full_transcription();
        v["data"]["transcript"] = serde_json::json!("nope");
        let err = parse_post_call(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(err.field(), "data.transcript");
        assert!(matches!(
            parse_post_call(b"{"),
            Err(PostCallError::NotJson(_))
        ));
        assert_eq!(
            parse_post_call(br#"{"data":{}}"#).unwrap_err().field(),
            "type"
        );
        assert!(matches!(
            parse_post_call(br#"{"type":"post_call_transcription"}"#),
            Err(PostCallError::Field { .. })
        ));
    }

    #[test]
    fn audio_and_unknown_types_are_recognised_cheaply() {
        let audio = format!(
            r#"{{"type":"post_call_audio","data":{{"agent_id":"a","conversation_id":"c","full_audio":"{}"}}}}"#,
            "A".repeat(10 * 1024 * 1024)
        );
        let started = std::time::Instant::now();
        let PostCallEvent::Audio { conversation_id } = parse_post_call(audio.as_bytes()).unwrap()
        else {
            panic!("not audio")
        };
        assert_eq!(conversation_id.as_deref(), Some("c"));
        assert!(started.elapsed().as_secs() < 5);
        assert!(matches!(
            parse_post_call(br#"{"type":"voice_removed","data":{}}"#).unwrap(),
            PostCallEvent::Other(t) if t == "voice_removed"
        ));
    }

    #[test]
    fn initiation_failures_yield_their_numbers_in_either_form() {
        let twilio = br#"{"type":"call_initiation_failure","data":{"agent_id":"a",
            "conversation_id":"c","failure_reason":"busy","metadata":{"type":"twilio",
            "body":{"CallSid":"CA1","From":"+15559871234","To":"+15551234567"}}}}"#;
        let PostCallEvent::InitiationFailure(f) = parse_post_call(twilio).unwrap() else {
            panic!()
        };
        assert_eq!(f.agent_number.as_deref(), Some("+15551234567"));
        assert_eq!(f.caller_number.as_deref(), Some("+15559871234"));
        assert_eq!(f.call_sid.as_deref(), Some("CA1"));
        assert_eq!(f.failure_reason.as_deref(), Some("busy"));
        let sip = br#"{"type":"call_initiation_failure","data":{"conversation_id":"c",
            "metadata":{"type":"sip","body":{"to_number":"+15551234567"}}}}"#;
        let PostCallEvent::InitiationFailure(f) = parse_post_call(sip).unwrap() else {
            panic!()
        };
        assert_eq!(f.agent_number.as_deref(), Some("+15551234567"));
    }

    #[test]
    fn the_documented_variables_are_the_ones_sent() {
        let schema = serde_json::to_value(schemars::schema_for!(VariablesSchema)).unwrap();
        let mut documented: Vec<&str> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut sent = crate::domain::agent_context::VARIABLES.to_vec();
        documented.sort_unstable();
        sent.sort_unstable();
        assert_eq!(documented, sent);
    }

    #[test]
    fn the_initiation_answer_has_the_documented_shape() {
        let vars = BTreeMap::from([("restaurant_name".to_string(), "Luigi's".to_string())]);
        let answer = ConversationInitResponse::new(
            vars,
            Some(ConfigOverride {
                agent: Some(AgentOverride {
                    first_message: Some("Hi".into()),
                    prompt: Some(PromptOverride { prompt: "p".into() }),
                    language: None,
                }),
                tts: Some(TtsOverride {
                    voice_id: "v".into(),
                }),
            }),
        );
        assert_eq!(
            serde_json::to_value(&answer).unwrap(),
            serde_json::json!({
                "type": "conversation_initiation_client_data",
                "dynamic_variables": {"restaurant_name": "Luigi's"},
                "conversation_config_override": {
                    "agent": {"first_message": "Hi", "prompt": {"prompt": "p"}},
                    "tts": {"voice_id": "v"}
                }
            })
        );
    }
}
