//! Vapi, pure: the server-URL messages we act on and our answers.
//!
//! Shapes follow Vapi's docs (`fern/server-url/events.mdx`,
//! `fern/server-url/server-authentication.mdx`) and its OpenAPI document
//! (`ServerMessage*`, `ServerMessageResponseAssistantRequest`). Every message
//! is `{"message": {"type": …, …}}`; types we do not handle parse as
//! `Other` and are answered 200 with nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// Vapi's `assistant-request` deadline, end to end, in milliseconds: our
/// answer must be back well within it.
pub const ASSISTANT_REQUEST_BUDGET_MS: u64 = 7_500;

/// The credential check Vapi's legacy `X-Vapi-Secret` (or a bearer
/// credential) needs: the header equals the integration's secret,
/// compared in constant time.
pub fn secret_matches(expected: &str, presented: Option<&str>) -> bool {
    let Some(presented) = presented else {
        return false;
    };
    let presented = presented
        .strip_prefix("Bearer ")
        .unwrap_or(presented)
        .trim();
    !expected.is_empty() && bool::from(presented.as_bytes().ct_eq(expected.as_bytes()))
}

#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub message: Message,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type")]
pub enum Message {
    #[serde(rename = "assistant-request")]
    AssistantRequest(CallContext),
    #[serde(rename = "transfer-destination-request")]
    TransferDestinationRequest(CallContext),
    #[serde(rename = "end-of-call-report")]
    EndOfCallReport(EndOfCallReport),
    #[serde(other)]
    Other,
}

/// Who called whom: the number called names the restaurant.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallContext {
    #[serde(default)]
    pub call: Option<VapiCall>,
    #[serde(default)]
    pub phone_number: Option<PhoneNumber>,
    #[serde(default)]
    pub customer: Option<Customer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VapiCall {
    pub id: String,
    #[serde(default)]
    pub assistant_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PhoneNumber {
    #[serde(default)]
    pub number: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Customer {
    #[serde(default)]
    pub number: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndOfCallReport {
    #[serde(flatten)]
    pub context: CallContext,
    #[serde(default)]
    pub ended_reason: Option<String>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub artifact: Artifact,
    #[serde(default)]
    pub analysis: VapiAnalysis,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Artifact {
    #[serde(default)]
    pub messages: Vec<ArtifactMessage>,
}

/// One entry of `artifact.messages`: `bot` / `user` speech, plus `system`
/// and tool entries that are not speech.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ArtifactMessage {
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VapiAnalysis {
    #[serde(default)]
    pub summary: Option<String>,
}

impl EndOfCallReport {
    pub fn duration_secs(&self) -> u64 {
        match (self.started_at, self.ended_at) {
            (Some(s), Some(e)) => (e - s).num_seconds().max(0) as u64,
            _ => 0,
        }
    }

    /// Spoken turns as `(role, message)`: `bot` and `assistant` are the
    /// restaurant, `user` the caller; system prompts and tool calls dropped.
    pub fn turns(&self) -> Vec<(String, String)> {
        self.artifact
            .messages
            .iter()
            .filter_map(|m| {
                let text = m.message.as_deref()?.trim();
                let role = match m.role.as_str() {
                    "bot" | "assistant" => "agent",
                    "user" => "user",
                    _ => return None,
                };
                (!text.is_empty()).then(|| (role.to_string(), text.to_string()))
            })
            .collect()
    }

    /// Vapi forwarded the call to a number (our destination, or a transfer).
    pub fn was_forwarded(&self) -> bool {
        self.ended_reason
            .as_deref()
            .is_some_and(|r| r.contains("forwarded") || r.contains("transferred"))
    }
}

// ---------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------

/// `assistant-request` answers: the assistant with our variables, a
/// forward that skips the AI, or an error Vapi speaks.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum AssistantAnswer {
    #[serde(rename_all = "camelCase")]
    Assistant {
        assistant_id: String,
        assistant_overrides: AssistantOverrides,
    },
    Forward {
        destination: Destination,
    },
    Refuse {
        error: String,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantOverrides {
    pub variable_values: BTreeMap<String, String>,
}

/// `{"type": "number", "number": "+1…", "message": "…"}`.
#[derive(Debug, Clone, Serialize)]
pub struct Destination {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Destination {
    pub fn number(number: impl Into<String>, message: Option<String>) -> Self {
        Self {
            kind: "number",
            number: number.into(),
            message,
        }
    }
}

/// `transfer-destination-request` answer.
#[derive(Debug, Clone, Serialize)]
pub struct TransferAnswer {
    pub destination: Destination,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_exactly() {
        assert!(secret_matches("s3cret-value", Some("s3cret-value")));
        assert!(secret_matches("s3cret-value", Some("Bearer s3cret-value")));
        assert!(!secret_matches("s3cret-value", Some("s3cret-valuf")));
        assert!(!secret_matches("s3cret-value", Some("")));
        assert!(!secret_matches("s3cret-value", None));
        assert!(!secret_matches("", Some("")));
    }

    #[test]
    fn messages_by_type() {
        let m: Envelope = serde_json::from_str(
            r#"{"message":{"type":"assistant-request","timestamp":1764000000000,
                "call":{"id":"call-1","orgId":"o"},"phoneNumber":{"number":"+15557654321"},
                "customer":{"number":"+15551230000"}}}"#,
        )
        .unwrap();
        let Message::AssistantRequest(ctx) = m.message else {
            panic!("not an assistant-request")
        };
        assert_eq!(
            ctx.phone_number.unwrap().number.as_deref(),
            Some("+15557654321")
        );
        let m: Envelope =
            serde_json::from_str(r#"{"message":{"type":"speech-update","status":"started"}}"#)
                .unwrap();
        assert!(matches!(m.message, Message::Other));
    }

    #[test]
    fn end_of_call_report_gives_turns_duration_and_outcome() {
        let m: Envelope = serde_json::from_str(
            r#"{"message":{"type":"end-of-call-report","endedReason":"assistant-forwarded-call",
                "startedAt":"2026-12-01T18:00:00.000Z","endedAt":"2026-12-01T18:01:30.500Z",
                "call":{"id":"call-2"},"phoneNumber":{"number":"+15557654321"},
                "artifact":{"transcript":"AI: Hi","messages":[
                    {"role":"system","message":"You are…"},
                    {"role":"bot","message":"Hi, Luigi's!","time":1},
                    {"role":"user","message":"Table for two at 7?"},
                    {"role":"tool_calls","toolCalls":[]}]},
                "analysis":{"summary":"Caller booked a table.","successEvaluation":"true"}}}"#,
        )
        .unwrap();
        let Message::EndOfCallReport(r) = m.message else {
            panic!("not a report")
        };
        assert_eq!(r.duration_secs(), 90);
        assert!(r.was_forwarded());
        assert_eq!(
            r.turns(),
            vec![
                ("agent".to_string(), "Hi, Luigi's!".to_string()),
                ("user".to_string(), "Table for two at 7?".to_string())
            ]
        );
        assert_eq!(
            r.analysis.summary.as_deref(),
            Some("Caller booked a table.")
        );
    }

    #[test]
    fn answers_serialize_as_vapi_reads_them() {
        let a = AssistantAnswer::Assistant {
            assistant_id: "asst_1".into(),
            assistant_overrides: AssistantOverrides {
                variable_values: BTreeMap::from([("is_open_now".into(), "true".into())]),
            },
        };
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            serde_json::json!({"assistantId": "asst_1",
                "assistantOverrides": {"variableValues": {"is_open_now": "true"}}})
        );
        let f = AssistantAnswer::Forward {
            destination: Destination::number("+15550001111", Some("Connecting you.".into())),
        };
        assert_eq!(
            serde_json::to_value(&f).unwrap(),
            serde_json::json!({"destination": {"type": "number", "number": "+15550001111",
                "message": "Connecting you."}})
        );
        let e = AssistantAnswer::Refuse {
            error: "closed".into(),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"error": "closed"})
        );
    }
}
