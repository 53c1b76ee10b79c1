//! Call analysis, offline and in-process: sentiment score and label, the
//! reason from a fixed taxonomy, and a one-sentence summary with the details
//! worth an owner's attention. Mostly the caller's words count; the agent's
//! restatements weigh little.

mod details;
mod lexicon;
mod matcher;
mod summary;
pub mod transcript;

use serde::{Deserialize, Serialize};

pub use details::Details;
use matcher::{tokenize, PhraseMatcher, Token};
use transcript::{Speaker, Turn};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum Reason {
    Hours,
    Reservation,
    Order,
    Delivery,
    Menu,
    Location,
    Catering,
    Complaint,
    Billing,
    Employment,
    Other,
}

impl Reason {
    pub const ALL: [Reason; 11] = [
        Reason::Hours,
        Reason::Reservation,
        Reason::Order,
        Reason::Delivery,
        Reason::Menu,
        Reason::Location,
        Reason::Catering,
        Reason::Complaint,
        Reason::Billing,
        Reason::Employment,
        Reason::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Hours => "Hours",
            Reason::Reservation => "Reservation",
            Reason::Order => "Order",
            Reason::Delivery => "Delivery",
            Reason::Menu => "Menu",
            Reason::Location => "Location",
            Reason::Catering => "Catering",
            Reason::Complaint => "Complaint",
            Reason::Billing => "Billing",
            Reason::Employment => "Employment",
            Reason::Other => "Other",
        }
    }

    fn index(self) -> usize {
        Reason::ALL.iter().position(|r| *r == self).unwrap_or(10)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum SentimentLabel {
    Positive,
    Neutral,
    Negative,
}

impl SentimentLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            SentimentLabel::Positive => "positive",
            SentimentLabel::Neutral => "neutral",
            SentimentLabel::Negative => "negative",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Analysis {
    pub sentiment_score: u8,
    pub sentiment_label: SentimentLabel,
    pub summary: String,
    pub reason: Reason,
    #[serde(default)]
    pub details: Details,
}

/// Below this much evidence no reason is claimed.
const MIN_REASON_SCORE: f32 = 2.0;
/// Scores at or above are positive, at or below negative.
const POSITIVE_AT: u8 = 64;
const NEGATIVE_AT: u8 = 38;

fn speaker_weight(s: Speaker, for_sentiment: bool) -> f32 {
    match (s, for_sentiment) {
        (Speaker::Caller, _) => 1.0,
        (Speaker::Unknown, _) => 0.9,
        (Speaker::Agent, false) => 0.25,
        (Speaker::Agent, true) => 0.05,
    }
}

struct Matchers {
    reasons: PhraseMatcher<Reason>,
    /// The value says whether the phrase is routine politeness.
    sentiment: PhraseMatcher<bool>,
}

fn matchers() -> &'static Matchers {
    static M: std::sync::OnceLock<Matchers> = std::sync::OnceLock::new();
    M.get_or_init(|| Matchers {
        reasons: PhraseMatcher::new(lexicon::REASON_PHRASES.iter().map(|(r, p, w)| (*r, *p, *w))),
        sentiment: PhraseMatcher::new(
            lexicon::SENTIMENT_PHRASES
                .iter()
                .map(|(p, w)| (lexicon::ROUTINE.contains(p), *p, *w)),
        ),
    })
}

pub fn analyze(turns: &[Turn]) -> Analysis {
    let m = matchers();
    let tokenized: Vec<(Speaker, Vec<Token>)> = turns
        .iter()
        .map(|t| (t.role, tokenize(&t.message)))
        .collect();

    let score = sentiment_score(m, &tokenized);
    let reason = classify(m, &tokenized, score);
    let label = if score >= POSITIVE_AT {
        SentimentLabel::Positive
    } else if score <= NEGATIVE_AT {
        SentimentLabel::Negative
    } else {
        SentimentLabel::Neutral
    };
    let caller_tokens: Vec<&Token> = tokenized
        .iter()
        .filter(|(s, _)| *s != Speaker::Agent)
        .flat_map(|(_, t)| t.iter())
        .collect();
    let details = details::extract(&caller_tokens, reason);
    let summary = summary::summarize(reason, label, &details, turns);
    Analysis {
        sentiment_score: score,
        sentiment_label: label,
        summary,
        reason,
        details,
    }
}

fn classify(m: &Matchers, turns: &[(Speaker, Vec<Token>)], sentiment: u8) -> Reason {
    let mut scores = [0f32; 11];
    let mut caller_turn = 0usize;
    for (speaker, tokens) in turns {
        let mut w = speaker_weight(*speaker, false);
        if *speaker != Speaker::Agent {
            // Callers state their purpose early.
            if caller_turn < 2 {
                w *= 1.4;
            }
            caller_turn += 1;
        }
        m.reasons.for_each_match(tokens, |reason, weight, _, _| {
            scores[reason.index()] += weight * w;
        });
    }
    // A large headcount is catering unless the caller is booking a table.
    let caller_tokens: Vec<&Token> = turns
        .iter()
        .filter(|(s, _)| *s != Speaker::Agent)
        .flat_map(|(_, t)| t.iter())
        .collect();
    match details::headcount(&caller_tokens) {
        Some(n) if n >= 15 => scores[Reason::Catering.index()] += 3.0,
        // A small party is usually a table being booked.
        Some(_) => scores[Reason::Reservation.index()] += 2.0,
        None => {}
    }
    // Complaints are unhappy calls: clearly unhappy calls lean towards one,
    // happy ones away from it.
    if sentiment <= 30 {
        scores[Reason::Complaint.index()] += 3.0;
    } else if sentiment >= POSITIVE_AT {
        scores[Reason::Complaint.index()] *= 0.3;
    }
    let (mut best, mut best_score) = (Reason::Other, 0f32);
    for r in Reason::ALL {
        if scores[r.index()] > best_score {
            best = r;
            best_score = scores[r.index()];
        }
    }
    if best_score < MIN_REASON_SCORE {
        return Reason::Other;
    }
    // The taxonomy files a complaint about a delivery under Delivery and one
    // about a charge under Billing.
    if best == Reason::Complaint {
        for specific in [Reason::Delivery, Reason::Billing] {
            if scores[specific.index()] >= 0.6 * best_score {
                return specific;
            }
        }
    }
    best
}

fn sentiment_score(m: &Matchers, turns: &[(Speaker, Vec<Token>)]) -> u8 {
    let listened: Vec<usize> = (0..turns.len())
        .filter(|&i| turns[i].0 != Speaker::Agent)
        .collect();
    let mut seen: std::collections::HashMap<usize, u32> = std::collections::HashMap::new();
    let mut total = 0f32;
    let mut routine_total = 0f32;
    for (i, (speaker, tokens)) in turns.iter().enumerate() {
        // How the call ends says most about how the caller feels.
        let position = listened.iter().position(|&j| j == i).map_or(0.5, |p| {
            if listened.len() <= 1 {
                1.0
            } else {
                p as f32 / (listened.len() - 1) as f32
            }
        });
        let w = speaker_weight(*speaker, true) * (0.7 + 0.6 * position);
        let but_at = tokens
            .iter()
            .rposition(|t| t.text == "but" || t.text == "however");
        let exclaim = tokens.iter().any(|t| t.exclaim);
        let mut turn_sum = 0f32;
        m.sentiment
            .for_each_match(tokens, |routine, weight, start, id| {
                if weight == 0.0 {
                    return;
                }
                // Repeating the same word adds less each time ("thanks, thanks").
                let n = seen.entry(id).or_insert(0);
                *n += 1;
                let repeat = match *n {
                    1 => 1.0,
                    2 => 0.5,
                    _ => 0.0,
                };
                let mut v = weight * repeat * modifier(tokens, start, weight > 0.0);
                if let Some(b) = but_at {
                    v *= if start > b { 1.3 } else { 0.5 };
                }
                if routine && v > 0.0 {
                    v = v.min((lexicon::ROUTINE_CAP - routine_total).max(0.0));
                    routine_total += v;
                }
                turn_sum += v;
            });
        if exclaim {
            turn_sum *= 1.15;
        }
        total += turn_sum * w;
    }
    let score = 50.0 + 50.0 * (total / 4.0).tanh();
    score.round().clamp(0.0, 100.0) as u8
}

/// Negation and intensity from the few words before a match.
fn modifier(tokens: &[Token], start: usize, positive: bool) -> f32 {
    let mut factor = 1.0f32;
    let from = start.saturating_sub(3);
    let window = &tokens[from..start];
    let negated = window
        .iter()
        .any(|t| lexicon::NEGATORS.contains(&t.text.as_str()));
    for (k, t) in window.iter().rev().enumerate() {
        if k < 2 && lexicon::INTENSIFIERS.contains(&t.text.as_str()) {
            factor *= 1.4;
        }
        if k < 2 && lexicon::DIMINISHERS.contains(&t.text.as_str()) {
            factor *= 0.6;
        }
    }
    if negated {
        // "not happy" is clearly negative; "not bad" only mildly positive.
        factor *= if positive { -0.8 } else { -0.3 };
    }
    factor
}

#[cfg(test)]
mod tests {
    use super::transcript::{parse_text, TranscriptInput};
    use super::*;

    fn run(text: &str) -> Analysis {
        analyze(&parse_text(text))
    }

    #[test]
    fn reasons_from_caller_words() {
        assert_eq!(
            run("Customer: what time do you close tonight?").reason,
            Reason::Hours
        );
        assert_eq!(
            run("Caller: I'd like a table for four on Friday at 7").reason,
            Reason::Reservation
        );
        assert_eq!(
            run("Caller: I was charged twice for my dinner").reason,
            Reason::Billing
        );
        assert_eq!(
            run("Caller: are you guys hiring line cooks").reason,
            Reason::Employment
        );
        assert_eq!(run("Caller: hi").reason, Reason::Other);
    }

    #[test]
    fn complaint_about_delivery_is_delivery() {
        let a = run("Caller: this is ridiculous, the driver never showed and the food is an hour late, terrible");
        assert_eq!(a.reason, Reason::Delivery);
        assert_eq!(a.sentiment_label, SentimentLabel::Negative);
    }

    #[test]
    fn negation_and_intensity() {
        let happy = run("Caller: the dinner was absolutely amazing, thank you so much!");
        let unhappy = run("Caller: I was not happy with the dinner at all");
        let fine = run("Caller: honestly no complaints, it was not bad");
        assert_eq!(happy.sentiment_label, SentimentLabel::Positive);
        assert!(happy.sentiment_score > 80);
        assert_eq!(unhappy.sentiment_label, SentimentLabel::Negative);
        assert!(fine.sentiment_score > 50, "{}", fine.sentiment_score);
    }

    #[test]
    fn agent_words_barely_count() {
        let a = run("Agent: I'm so sorry about that terrible, awful experience.\nCaller: ok what time do you open tomorrow");
        assert_eq!(a.sentiment_label, SentimentLabel::Neutral);
        assert_eq!(a.reason, Reason::Hours);
    }

    #[test]
    fn routine_politeness_stays_neutral() {
        let a = run("Caller: do you deliver to Maple Street? ok great thanks, thanks, bye");
        assert_eq!(
            a.sentiment_label,
            SentimentLabel::Neutral,
            "{}",
            a.sentiment_score
        );
        assert_eq!(a.reason, Reason::Delivery);
    }

    #[test]
    fn both_shapes_agree() {
        let text = run("Agent: Hello!\nCustomer: can I book a table for 6 tomorrow at 7:30 pm");
        let turns: TranscriptInput = serde_json::from_str(
            r#"[{"role":"agent","message":"Hello!"},{"role":"user","message":"can I book a table for 6 tomorrow at 7:30 pm"}]"#,
        )
        .unwrap();
        assert_eq!(analyze(&turns.turns()), text);
        assert_eq!(
            text.summary,
            "Caller wanted to book a table for 6 tomorrow at 7:30 pm."
        );
    }
}
