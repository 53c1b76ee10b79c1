//! Transcripts as IVRs send them — plain text ("Agent: …" / "Customer: …"
//! lines, or unlabeled speech-to-text) or a list of `{role, message}` turns —
//! normalized to one list of turns.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum Speaker {
    Agent,
    Caller,
    /// Unlabeled speech-to-text: most likely the caller, possibly both.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Turn {
    pub role: Speaker,
    pub message: String,
}

/// A turn as vendors send it; any role string is accepted and mapped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTurn {
    pub role: String,
    pub message: String,
}

/// The two transcript shapes on the wire.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TranscriptInput {
    Text(String),
    Turns(Vec<RawTurn>),
}

pub fn speaker_for_role(role: &str) -> Option<Speaker> {
    match role.trim().to_ascii_lowercase().as_str() {
        "agent" | "assistant" | "ai" | "bot" | "ivr" | "system" | "restaurant" | "staff"
        | "host" | "hostess" | "server" | "employee" | "operator" | "receptionist" | "rep"
        | "representative" | "ai agent" | "voice agent" | "virtual assistant" => {
            Some(Speaker::Agent)
        }
        "customer" | "caller" | "user" | "human" | "guest" | "client" | "diner" | "patron" => {
            Some(Speaker::Caller)
        }
        _ => None,
    }
}

impl TranscriptInput {
    /// Normalized turns, empty messages dropped.
    pub fn turns(&self) -> Vec<Turn> {
        match self {
            TranscriptInput::Text(text) => parse_text(text),
            TranscriptInput::Turns(turns) => turns
                .iter()
                .filter(|t| !t.message.trim().is_empty())
                .map(|t| Turn {
                    role: speaker_for_role(&t.role).unwrap_or(Speaker::Unknown),
                    message: t.message.trim().to_string(),
                })
                .collect(),
        }
    }

    /// Size in bytes of the text it carries, for limits.
    pub fn byte_len(&self) -> usize {
        match self {
            TranscriptInput::Text(t) => t.len(),
            TranscriptInput::Turns(turns) => {
                turns.iter().map(|t| t.message.len() + t.role.len()).sum()
            }
        }
    }
}

/// Splits "Speaker: text" lines; text without any label is one Unknown turn.
pub fn parse_text(text: &str) -> Vec<Turn> {
    let mut turns: Vec<Turn> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let labeled = line.split_once(':').and_then(|(label, rest)| {
            let label = label.trim();
            (label.len() <= 12)
                .then(|| speaker_for_role(label))
                .flatten()
                .map(|s| (s, rest.trim()))
        });
        match (labeled, turns.last_mut()) {
            (Some((speaker, rest)), _) => {
                if !rest.is_empty() {
                    turns.push(Turn {
                        role: speaker,
                        message: rest.to_string(),
                    })
                }
            }
            // A continuation line belongs to the turn before it.
            (None, Some(last)) => {
                last.message.push(' ');
                last.message.push_str(line);
            }
            (None, None) => turns.push(Turn {
                role: Speaker::Unknown,
                message: line.to_string(),
            }),
        }
    }
    turns
}

/// Renders turns as "Agent: …" / "Caller: …" lines (for e-mails and storage).
pub fn render(turns: &[Turn]) -> String {
    let mut out = String::new();
    for t in turns {
        let label = match t.role {
            Speaker::Agent => "Agent",
            Speaker::Caller => "Caller",
            Speaker::Unknown => "Transcript",
        };
        out.push_str(label);
        out.push_str(": ");
        out.push_str(&t.message);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labeled_text_and_continuations() {
        let t =
            parse_text("Agent: Hi, Luigi's!\nCustomer: do you deliver\nto Elm street?\nAI: Yes.");
        assert_eq!(t.len(), 3);
        assert_eq!(t[1].role, Speaker::Caller);
        assert_eq!(t[1].message, "do you deliver to Elm street?");
        assert_eq!(t[2].role, Speaker::Agent);
    }

    #[test]
    fn unlabeled_speech_is_one_unknown_turn() {
        let t = parse_text("um hi yeah what time do you close tonight");
        assert_eq!(
            t,
            vec![Turn {
                role: Speaker::Unknown,
                message: "um hi yeah what time do you close tonight".into()
            }]
        );
        // A colon in speech is not a label.
        let t = parse_text("we need it at 7:30 please");
        assert_eq!(t[0].role, Speaker::Unknown);
    }

    #[test]
    fn turns_shape_maps_roles() {
        let input: TranscriptInput = serde_json::from_str(
            r#"[{"role":"agent","message":"Hello"},{"role":"user","message":" hi "},{"role":"user","message":""}]"#,
        )
        .unwrap();
        let t = input.turns();
        assert_eq!(t.len(), 2);
        assert_eq!(
            t[1],
            Turn {
                role: Speaker::Caller,
                message: "hi".into()
            }
        );
        assert_eq!(render(&t), "Agent: Hello\nCaller: hi\n");
    }
}
