//! Vapi, pure: the server-URL messages we act on and our answers.
//!
//! Shapes follow Vapi's docs (`fern/server-url/events.mdx`,
//! `fern/server-url/server-authentication.mdx`) and its OpenAPI document
//! (`ServerMessage*`, `ServerMessageResponseAssistantRequest`). Every message
//! is `{"message": {"type": …, …}}`; types we do not handle parse as
//! `Other` and are answered 200 with nothing.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::agent_context::{RingContext, RingDecision};
use crate::domain::analysis::transcript::RawTurn;
use crate::domain::restaurant::Agent;

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

/// How far a signed request's timestamp may be from our clock (seconds),
/// as Standard Webhooks verifiers allow.
pub const MAX_SKEW_SECS: i64 = 5 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the webhook-timestamp header is not a unix time")]
    Malformed,
    #[error("the signature's timestamp is outside the accepted window")]
    Stale,
    #[error("no signature in webhook-signature matches the body")]
    Mismatch,
}

/// Checks a request Vapi signed with an HMAC authentication plan set up the
/// Standard Webhooks way (`webhook-id`, `webhook-timestamp`,
/// `webhook-signature`; payload `{svix-id}.{timestamp}.{body}`; SHA-256;
/// base64). The key is the secret's bytes as typed (the plan's
/// `secretIsBase64: false`); each signature may carry the `v1,` prefix
/// Standard Webhooks puts on it. The timestamp may be seconds or milliseconds.
pub fn verify_hmac(
    secret: &str,
    msg_id: &str,
    timestamp: &str,
    signatures: &str,
    body: &[u8],
    now_secs: i64,
) -> Result<(), SignatureError> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed)?;
    // Seconds until the year 5138; anything larger is milliseconds.
    let ts_secs = if ts > 100_000_000_000 { ts / 1000 } else { ts };
    if (now_secs - ts_secs).abs() > MAX_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = B64.encode(mac.finalize().into_bytes());
    let matches = signatures.split_whitespace().any(|sig| {
        let sig = sig.strip_prefix("v1,").unwrap_or(sig);
        bool::from(sig.as_bytes().ct_eq(expected.as_bytes()))
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `{"message": {"type": …, …}}`, the message left as JSON until its type
/// says what to read it as (see [`Message::of`]).
#[derive(Debug, Clone, Deserialize)]
pub struct Envelope {
    pub message: RawMessage,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RawMessage {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(flatten)]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone)]
pub enum Message {
    AssistantRequest(CallContext),
    TransferDestinationRequest(CallContext),
    EndOfCallReport(Box<EndOfCallReport>),
    Other,
}

impl Message {
    /// The message as its type reads; `read` deserializes the fields (so
    /// that the caller's error names the field's whole path).
    pub fn of<E>(
        raw: RawMessage,
        read: impl FnOnce(serde_json::Value) -> Result<MessageBody, E>,
    ) -> Result<Message, E> {
        let make: fn(EndOfCallReport) -> Message = match raw.kind.as_str() {
            "assistant-request" => |r| Message::AssistantRequest(r.context()),
            "transfer-destination-request" => |r| Message::TransferDestinationRequest(r.context()),
            "end-of-call-report" => |r| Message::EndOfCallReport(Box::new(r)),
            _ => return Ok(Message::Other),
        };
        let MessageBody(body) = read(serde_json::Value::Object(raw.fields))?;
        Ok(make(body))
    }
}

/// The fields of a message we act on: every type's are a subset of the
/// end-of-call report's (all optional), so one shape reads them all.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct MessageBody(pub EndOfCallReport);

/// Who called whom: the number called names the restaurant.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub call: Option<VapiCall>,
    pub phone_number: Option<Party>,
    pub customer: Option<Party>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VapiCall {
    pub id: String,
    #[serde(default)]
    pub assistant_id: Option<String>,
}

/// A phone number object of Vapi's (the number called, the customer, a
/// destination): only its `number` matters to us.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Party {
    #[serde(default)]
    pub number: Option<String>,
}

impl Party {
    /// The number, if it says one (blank is none).
    pub fn given(party: &Option<Party>) -> Option<&str> {
        party
            .as_ref()?
            .number
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndOfCallReport {
    // Not `#[serde(flatten)] CallContext`: a flattened field's errors lose their path.
    #[serde(default)]
    pub call: Option<VapiCall>,
    #[serde(default)]
    pub phone_number: Option<Party>,
    #[serde(default)]
    pub customer: Option<Party>,
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
    /// Where Vapi forwarded the call, when it did.
    #[serde(default)]
    pub destination: Option<Party>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    #[serde(default)]
    pub messages: Vec<ArtifactMessage>,
    /// The variables the call ran with (ours among them).
    #[serde(default)]
    pub variable_values: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub recording_url: Option<String>,
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
    /// Whatever the assistant's success rubric gives: `true`/`false`, a
    /// score, a grade.
    #[serde(default)]
    pub success_evaluation: Option<serde_json::Value>,
}

impl EndOfCallReport {
    /// Who called whom.
    pub fn context(self) -> CallContext {
        CallContext {
            call: self.call,
            phone_number: self.phone_number,
            customer: self.customer,
        }
    }

    pub fn duration_secs(&self) -> u64 {
        match (self.started_at, self.ended_at) {
            (Some(s), Some(e)) => (e - s).num_seconds().max(0) as u64,
            _ => 0,
        }
    }

    /// Spoken turns as `(role, message)`: `bot` and `assistant` are the
    /// restaurant, `user` the caller; system prompts and tool calls dropped.
    pub fn turns(&self) -> Vec<RawTurn> {
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
                (!text.is_empty()).then(|| RawTurn {
                    role: role.to_string(),
                    message: text.to_string(),
                })
            })
            .collect()
    }

    /// Vapi forwarded the call to a number (our destination, or a transfer).
    pub fn was_forwarded(&self) -> bool {
        Party::given(&self.destination).is_some()
            || self.ended_reason.as_deref().is_some_and(|r| {
                r.contains("forwarded") || r.contains("forwarding") || r.contains("transferred")
            })
    }

    /// Vapi spoke our refusal (`assistant-request-returned-error`).
    pub fn was_refused(&self) -> bool {
        self.ended_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("assistant-request-returned") && r.contains("error"))
    }

    /// The success evaluation as ours: `success`, `failure`, or nothing
    /// when the rubric is a score or grade we can't read as either.
    pub fn call_successful(&self) -> Option<&'static str> {
        match self.analysis.success_evaluation.as_ref()? {
            serde_json::Value::Bool(true) => Some("success"),
            serde_json::Value::Bool(false) => Some("failure"),
            serde_json::Value::String(s) if s.eq_ignore_ascii_case("true") => Some("success"),
            serde_json::Value::String(s) if s.eq_ignore_ascii_case("false") => Some("failure"),
            _ => None,
        }
    }

    /// A variable the call ran with (e.g. our `restaurant_id`).
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.artifact.variable_values.as_ref()?.get(name)?.as_str()
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

/// `transfer-destination-request` answer: the number, or an error the
/// assistant speaks when there is none.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum TransferAnswer {
    To { destination: Destination },
    Refuse { error: String },
}

/// What the caller hears when nobody can take the call.
pub fn unavailable_message(ctx: &RingContext) -> String {
    let name = &ctx.variables["restaurant_name"];
    match ctx.variables["next_open"].as_str() {
        "" | "now" => format!("Thanks for calling {name}. Sorry, nobody can take your call right now. Please try again later."),
        next => format!("Thanks for calling {name}. Sorry, we can't take your call right now; we're next available {next}."),
    }
}

/// The `assistant-request` answer for a ringing call: the restaurant's
/// assistant with every variable; a forward to the staff that skips the AI
/// (closed, AI off, or no Vapi assistant configured); or, with no number to
/// forward to, a spoken refusal.
pub fn assistant_answer(ctx: &RingContext) -> AssistantAnswer {
    let forward = |number: &str| AssistantAnswer::Forward {
        destination: Destination::number(
            number,
            Some(format!(
                "Thanks for calling {}. Connecting you now.",
                ctx.variables["restaurant_name"]
            )),
        ),
    };
    match &ctx.decision {
        RingDecision::Agent(Agent {
            vapi_assistant_id: Some(id),
            ..
        }) => AssistantAnswer::Assistant {
            assistant_id: id.clone(),
            assistant_overrides: AssistantOverrides {
                variable_values: ctx.variables_with_transfer(),
            },
        },
        RingDecision::Agent(_) | RingDecision::Forward(_) => match ctx.forwarding_number() {
            Some(n) => forward(n),
            None => AssistantAnswer::Refuse {
                error: unavailable_message(ctx),
            },
        },
        RingDecision::NoForward => AssistantAnswer::Refuse {
            error: unavailable_message(ctx),
        },
    }
}

/// The `transfer-destination-request` answer: the forwarding number.
pub fn transfer_answer(ctx: &RingContext) -> TransferAnswer {
    match ctx.forwarding_number() {
        Some(n) => TransferAnswer::To {
            destination: Destination::number(n, Some("Connecting you now.".into())),
        },
        None => TransferAnswer::Refuse {
            error: unavailable_message(ctx),
        },
    }
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
    fn hmac_plans_sign_the_standard_webhooks_way() {
        // The Standard Webhooks example, keyed with the raw bytes its base64
        // secret decodes to (what a Vapi plan with that text as secret uses).
        let key = B64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let key = String::from_utf8_lossy(&key).into_owned();
        let body = br#"{"test": 2432232314}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(b"msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.");
        mac.update(body);
        let sig = format!("v1,{}", B64.encode(mac.finalize().into_bytes()));
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let ok = |s: &str, now| verify_hmac(&key, id, "1614265330", s, body, now);
        assert_eq!(ok(&sig, 1614265330), Ok(()));
        assert_eq!(ok(&format!("v1,bm9wZQ== {sig}"), 1614265400), Ok(()));
        assert_eq!(ok(sig.trim_start_matches("v1,"), 1614265330), Ok(()));
        assert_eq!(ok(&sig, 1614265330 + 301), Err(SignatureError::Stale));
        assert_eq!(ok("v1,bm9wZQ==", 1614265330), Err(SignatureError::Mismatch));
        assert_eq!(
            verify_hmac(&key, id, "1614265330", &sig, b"{}", 1614265330),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_hmac(&key, id, "soon", &sig, body, 1614265330),
            Err(SignatureError::Malformed)
        );
        // Milliseconds are read as such for the window (and signed as sent).
        assert_eq!(
            verify_hmac(&key, id, "1614265330000", &sig, body, 1614265330),
            Err(SignatureError::Mismatch)
        );
    }

    fn parse(text: &str) -> Message {
        let e: Envelope = serde_json::from_str(text).unwrap();
        Message::of(e.message, serde_json::from_value::<MessageBody>).unwrap()
    }

    #[test]
    fn messages_by_type() {
        let m = parse(
            r#"{"message":{"type":"assistant-request","timestamp":1764000000000,
                "call":{"id":"call-1","orgId":"o"},"phoneNumber":{"number":"+15557654321"},
                "customer":{"number":"+15551230000"}}}"#,
        );
        let Message::AssistantRequest(ctx) = m else {
            panic!("not an assistant-request")
        };
        assert_eq!(
            ctx.phone_number.unwrap().number.as_deref(),
            Some("+15557654321")
        );
        let m = parse(r#"{"message":{"type":"speech-update","status":"started"}}"#);
        assert!(matches!(m, Message::Other));
    }

    #[test]
    fn end_of_call_report_gives_turns_duration_and_outcome() {
        let m = parse(
            r#"{"message":{"type":"end-of-call-report","endedReason":"assistant-forwarded-call",
                "startedAt":"2026-12-01T18:00:00.000Z","endedAt":"2026-12-01T18:01:30.500Z",
                "call":{"id":"call-2"},"phoneNumber":{"number":"+15557654321"},
                "artifact":{"transcript":"AI: Hi","messages":[
                    {"role":"system","message":"You are…"},
                    {"role":"bot","message":"Hi, Luigi's!","time":1},
                    {"role":"user","message":"Table for two at 7?"},
                    {"role":"tool_calls","toolCalls":[]}]},
                "analysis":{"summary":"Caller booked a table.","successEvaluation":"true"}}}"#,
        );
        let Message::EndOfCallReport(r) = m else {
            panic!("not a report")
        };
        assert_eq!(r.duration_secs(), 90);
        assert!(r.was_forwarded());
        assert_eq!(
            r.turns()
                .into_iter()
                .map(|t| (t.role, t.message))
                .collect::<Vec<_>>(),
            vec![
                ("agent".to_string(), "Hi, Luigi's!".to_string()),
                ("user".to_string(), "Table for two at 7?".to_string())
            ]
        );
        assert_eq!(
            r.analysis.summary.as_deref(),
            Some("Caller booked a table.")
        );
        assert_eq!(r.call_successful(), Some("success"));
        assert!(!r.was_refused());
    }

    #[test]
    fn ring_answers_follow_the_routing() {
        use crate::domain::agent_context::ring_context;
        use crate::domain::restaurant::fixtures::{demo, US};
        use chrono::TimeZone;
        let at = |h| {
            chrono_tz::America::New_York
                .with_ymd_and_hms(2025, 3, 4, h, 0, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        let mut r = demo();
        // Open, but no Vapi assistant configured: straight to the staff.
        let a = assistant_answer(&ring_context(&r, at(12), US));
        assert!(
            matches!(&a, AssistantAnswer::Forward { destination } if destination.number == "+15559876543")
        );
        r.agent.as_mut().unwrap().vapi_assistant_id = Some("asst-uuid-1".into());
        let AssistantAnswer::Assistant {
            assistant_id,
            assistant_overrides,
        } = assistant_answer(&ring_context(&r, at(12), US))
        else {
            panic!("open with an assistant: the assistant answers")
        };
        assert_eq!(assistant_id, "asst-uuid-1");
        assert_eq!(
            assistant_overrides.variable_values["ai_should_answer"],
            "true"
        );
        assert_eq!(
            assistant_overrides.variable_values["restaurant_name"],
            "Luigi's"
        );
        // Closed: forwarded without the AI.
        assert!(matches!(
            assistant_answer(&ring_context(&r, at(22), US)),
            AssistantAnswer::Forward { .. }
        ));
        // Closed with nobody to forward to: a refusal that says when to call.
        r.forwarding_number = None;
        let ctx = ring_context(&r, at(22), US);
        let AssistantAnswer::Refuse { error } = assistant_answer(&ctx) else {
            panic!("nobody to forward to: refused")
        };
        assert!(
            error.contains("Luigi's") && error.contains("tomorrow at 9 AM"),
            "{error}"
        );
        assert!(matches!(
            transfer_answer(&ctx),
            TransferAnswer::Refuse { .. }
        ));
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
