//! How a transcript is stored: one binary attribute, its first byte the
//! format, then the turns as compact text (a role letter, the message with
//! `\` and newlines escaped, a newline), raw-deflated when that is smaller.
//!
//! Measured on the largest transcripts the API accepts (100 KiB of short
//! plain-text lines, see `infra/bench/results/cost-2026-12-03.md`): a list of
//! `{role, message}` maps costs up to 2.9x the input in DynamoDB item bytes,
//! the compact text 0.7-1x, deflate a further 4.5-5.4x (about 2.2x on 5 KB
//! of prose that never repeats).

use miniz_oxide::inflate::{decompress_to_vec_with_limit, TINFLStatus};

use super::analysis::transcript::{Speaker, Turn};

/// Compact text, uncompressed (when deflate does not shrink it).
pub const FORMAT_TEXT: u8 = 1;
/// Compact text, raw deflate (no zlib header or checksum: DynamoDB keeps it whole).
pub const FORMAT_DEFLATE: u8 = 2;
/// Deflate level: 6 is within a few per cent of 9 on dialogue, at half the time.
const LEVEL: u8 = 6;
/// Bound on what a stored transcript may inflate to: the compact text of the
/// largest accepted transcript is at most twice its 100 KiB (every byte escaped).
pub const MAX_DECODED: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("unknown transcript format {0}")]
    Format(u8),
    #[error("stored transcript is empty")]
    Empty,
    #[error("stored transcript does not inflate")]
    Inflate,
    #[error("stored transcript text is malformed")]
    Text,
}

fn role_letter(r: Speaker) -> char {
    match r {
        Speaker::Agent => 'a',
        Speaker::Caller => 'c',
        Speaker::Unknown => 'u',
    }
}

/// The turns as compact text: one line per turn.
pub fn compact(turns: &[Turn]) -> String {
    let mut out = String::with_capacity(turns.iter().map(|t| t.message.len() + 2).sum());
    for t in turns {
        out.push(role_letter(t.role));
        for ch in t.message.chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        out.push('\n');
    }
    out
}

/// The turns of compact text.
pub fn uncompact(text: &str) -> Result<Vec<Turn>, CodecError> {
    let mut turns = Vec::new();
    for line in text.split_terminator('\n') {
        let mut chars = line.chars();
        let role = match chars.next() {
            Some('a') => Speaker::Agent,
            Some('c') => Speaker::Caller,
            Some('u') => Speaker::Unknown,
            _ => return Err(CodecError::Text),
        };
        let mut message = String::with_capacity(line.len());
        while let Some(c) = chars.next() {
            if c != '\\' {
                message.push(c);
                continue;
            }
            match chars.next() {
                Some('\\') => message.push('\\'),
                Some('n') => message.push('\n'),
                Some('r') => message.push('\r'),
                _ => return Err(CodecError::Text),
            }
        }
        turns.push(Turn { role, message });
    }
    Ok(turns)
}

/// The stored bytes of `turns`: a format byte, then the smaller encoding.
pub fn encode(turns: &[Turn]) -> Vec<u8> {
    let text = compact(turns);
    let deflated = miniz_oxide::deflate::compress_to_vec(text.as_bytes(), LEVEL);
    let (format, body) = if deflated.len() < text.len() {
        (FORMAT_DEFLATE, deflated)
    } else {
        (FORMAT_TEXT, text.into_bytes())
    };
    let mut out = Vec::with_capacity(body.len() + 1);
    out.push(format);
    out.extend_from_slice(&body);
    out
}

pub fn decode(stored: &[u8]) -> Result<Vec<Turn>, CodecError> {
    let (&format, body) = stored.split_first().ok_or(CodecError::Empty)?;
    let text = match format {
        FORMAT_TEXT => body.to_vec(),
        FORMAT_DEFLATE => decompress_to_vec_with_limit(body, MAX_DECODED).map_err(|e| {
            debug_assert!(e.status != TINFLStatus::Done);
            CodecError::Inflate
        })?,
        other => return Err(CodecError::Format(other)),
    };
    uncompact(&String::from_utf8(text).map_err(|_| CodecError::Text)?)
}

/// A short tag of the stored bytes: the final transcript's item is keyed by
/// it, so racing completions with different bodies never overwrite the one
/// the winning completion names.
pub fn tag(stored: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(stored);
    d[..6].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::analysis::transcript::parse_text;

    fn turn(role: Speaker, m: &str) -> Turn {
        Turn {
            role,
            message: m.into(),
        }
    }

    #[test]
    fn round_trips_every_role_and_awkward_text() {
        let turns = vec![
            turn(Speaker::Agent, "Luigi's, how can I help?"),
            turn(Speaker::Caller, "a\\b\nnew line\r\n and \\n literally"),
            turn(Speaker::Unknown, ""),
            turn(Speaker::Caller, "ünïcødé ☎ 👍"),
        ];
        let stored = encode(&turns);
        assert_eq!(decode(&stored).unwrap(), turns);
        assert_eq!(uncompact(&compact(&turns)).unwrap(), turns);
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn dialogue_is_deflated_and_tiny_text_is_not() {
        let dialogue: Vec<Turn> = (0..200)
            .map(|i| {
                turn(
                    Speaker::Caller,
                    &format!("I'd like a table for {i} at seven"),
                )
            })
            .collect();
        let stored = encode(&dialogue);
        assert_eq!(stored[0], FORMAT_DEFLATE);
        assert!(stored.len() * 4 < compact(&dialogue).len());
        let short = encode(&[turn(Speaker::Caller, "hi")]);
        assert_eq!(short, b"\x01chi\n");
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        assert_eq!(decode(&[]), Err(CodecError::Empty));
        assert_eq!(decode(&[9, 1, 2]), Err(CodecError::Format(9)));
        assert_eq!(
            decode(&[FORMAT_DEFLATE, 0xff, 0xff]),
            Err(CodecError::Inflate)
        );
        assert_eq!(decode(b"\x01xhello\n"), Err(CodecError::Text));
        assert_eq!(decode(b"\x01cbad\\q\n"), Err(CodecError::Text));
        // A deflate bomb stops at the bound instead of filling memory.
        let bomb = miniz_oxide::deflate::compress_to_vec(&vec![b'a'; MAX_DECODED + 1], 6);
        let mut stored = vec![FORMAT_DEFLATE];
        stored.extend(bomb);
        assert_eq!(decode(&stored), Err(CodecError::Inflate));
    }

    #[test]
    fn tags_tell_transcripts_apart() {
        let a = encode(&parse_text("Customer: one"));
        let b = encode(&parse_text("Customer: two"));
        assert_eq!(tag(&a), tag(&a.clone()));
        assert_ne!(tag(&a), tag(&b));
        assert_eq!(tag(&a).len(), 12);
    }
}
