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
    /// Who wrote each part: a platform's own summary replaces ours, while the
    /// reason and sentiment stay ours so every call is scored alike.
    #[serde(default)]
    pub produced_by: ProducedBy,
}

/// The author of a part of the analysis.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum Producer {
    /// This analyzer.
    #[default]
    Pulsara,
    /// ElevenLabs' post-call analysis (`transcript_summary`).
    Elevenlabs,
    /// Vapi's end-of-call analysis (`analysis.summary`).
    Vapi,
    /// Retell's post-call analysis (`call_analysis.call_summary`).
    Retell,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ProducedBy {
    pub summary: Producer,
    pub reason: Producer,
    pub sentiment: Producer,
}

/// A summary written elsewhere that replaces ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenSummary {
    pub by: Producer,
    pub text: String,
}

/// Below this much evidence no reason is claimed.
const MIN_REASON_SCORE: f32 = 2.0;
/// The sentiment score is `50 + 50·tanh(evidence / 4)`, where evidence is the
/// caller's weighted sentiment words (the end of the call weighs up to 3× the
/// start; routine thanks count little, and nothing after an unresolved
/// problem). Scores at or above `POSITIVE_AT` are positive (evidence ≥ +1.15:
/// one clearly warm phrase near the end, more than politeness); at or below
/// `NEGATIVE_AT` negative (evidence ≤ −1.0: one plain statement of a
/// problem); between, neutral. `analysis_eval --scores` shows where a set's
/// labels fall.
pub const POSITIVE_AT: u8 = 64;
pub const NEGATIVE_AT: u8 = 38;
/// Below this score a call shows no clear pleasure: a complaint there is an
/// unhappy call, and a caller's wish to be heard makes it a Complaint.
const NOT_CLEARLY_HAPPY_BELOW: u8 = 56;
/// An agent turn naming this many reasons is a list of services (a
/// greeting), not a restatement of the caller's request.
const SERVICE_LIST_REASONS: usize = 3;

fn speaker_weight(s: Speaker, for_sentiment: bool) -> f32 {
    match (s, for_sentiment) {
        (Speaker::Caller, _) => 1.0,
        (Speaker::Unknown, _) => 0.9,
        (Speaker::Agent, false) => 0.15,
        (Speaker::Agent, true) => 0.05,
    }
}

/// What a caller's phrase says about the point of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    /// Something is to be done: a booking changed, an order remade.
    Fix,
    /// The caller wants to be heard: the complaint is the point.
    Complain,
}

struct Matchers {
    reasons: PhraseMatcher<Reason>,
    /// The value says whether the phrase is routine politeness.
    sentiment: PhraseMatcher<bool>,
    intents: PhraseMatcher<Intent>,
    /// An agent's greeting at the start of unlabeled speech.
    greeting: PhraseMatcher<()>,
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
        intents: PhraseMatcher::new(lexicon::INTENT_PHRASES.iter().map(|(i, p)| (*i, *p, 1.0))),
        greeting: PhraseMatcher::new(lexicon::GREETING_ENDS.iter().map(|p| ((), *p, 1.0))),
    })
}

pub fn analyze(turns: &[Turn]) -> Analysis {
    let m = matchers();
    let mut tokenized: Vec<(Speaker, Vec<Token>)> = Vec::with_capacity(turns.len() + 1);
    for t in turns {
        let tokens = tokenize(&t.message);
        match t.role {
            Speaker::Unknown => {
                let (greeting, rest) = split_greeting(m, tokens);
                if !greeting.is_empty() {
                    tokenized.push((Speaker::Agent, greeting));
                }
                tokenized.push((Speaker::Unknown, rest));
            }
            role => tokenized.push((role, tokens)),
        }
    }

    let caller_tokens: Vec<&Token> = tokenized
        .iter()
        .filter(|(s, _)| *s != Speaker::Agent)
        .flat_map(|(_, t)| t.iter())
        .collect();
    let score = sentiment_score(m, &tokenized);
    let reason = classify(m, &tokenized, &caller_tokens, score);
    // A complaint with no clear feeling either way is an unhappy call: people
    // rarely call to complain contentedly.
    let score =
        if reason == Reason::Complaint && score > NEGATIVE_AT && score < NOT_CLEARLY_HAPPY_BELOW {
            NEGATIVE_AT
        } else {
            score
        };
    let label = if score >= POSITIVE_AT {
        SentimentLabel::Positive
    } else if score <= NEGATIVE_AT {
        SentimentLabel::Negative
    } else {
        SentimentLabel::Neutral
    };
    let caller_text: Vec<&str> = turns
        .iter()
        .filter(|t| t.role != Speaker::Agent)
        .map(|t| t.message.as_str())
        .collect();
    let details = details::extract(&caller_tokens, &caller_text, reason);
    let summary = summary::summarize(reason, label, &details, turns);
    Analysis {
        sentiment_score: score,
        sentiment_label: label,
        summary,
        reason,
        details,
        produced_by: ProducedBy::default(),
    }
}

/// Unlabeled speech-to-text often starts with the restaurant's greeting
/// ("thank you for calling Marco's how can I help you"): the words up to the
/// end of a greeting near the start are the agent's.
fn split_greeting(m: &Matchers, tokens: Vec<Token>) -> (Vec<Token>, Vec<Token>) {
    const WITHIN: usize = 40;
    let head = &tokens[..tokens.len().min(WITHIN)];
    let mut end = None;
    m.greeting.for_each_match(head, |(), _, start, id| {
        let len = lexicon::GREETING_ENDS[id].split_whitespace().count();
        end = Some(start + len);
    });
    match end {
        Some(e) if e < tokens.len() => {
            let mut tokens = tokens;
            let rest = tokens.split_off(e);
            (tokens, rest)
        }
        _ => (Vec::new(), tokens),
    }
}

fn classify(
    m: &Matchers,
    turns: &[(Speaker, Vec<Token>)],
    caller_tokens: &[&Token],
    sentiment: u8,
) -> Reason {
    let mut scores = [0f32; 11];
    let mut fix = 0usize;
    let mut complain = 0usize;
    let mut caller_turn = 0usize;
    for (speaker, tokens) in turns {
        let mut w = speaker_weight(*speaker, false);
        let mut turn = [0f32; 11];
        m.reasons.for_each_match(tokens, |reason, weight, _, _| {
            turn[reason.index()] += weight;
        });
        if *speaker == Speaker::Agent {
            // A greeting listing the services says nothing about this call.
            if turn.iter().filter(|s| **s >= 1.5).count() >= SERVICE_LIST_REASONS {
                w = 0.0;
            }
        } else {
            // Callers state their purpose early.
            if caller_turn < 2 {
                w *= 1.4;
            }
            caller_turn += 1;
            m.intents
                .for_each_match(tokens, |intent, _, _, _| match intent {
                    Intent::Fix => fix += 1,
                    Intent::Complain => complain += 1,
                });
        }
        for (total, s) in scores.iter_mut().zip(turn) {
            *total += s * w;
        }
    }
    // A large headcount is catering unless the caller is booking a table.
    match details::headcount(caller_tokens) {
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
    // Wanting to be heard makes the complaint the point; asking for a fix
    // makes the thing to fix the point.
    if complain > 0 && fix == 0 && sentiment < NOT_CLEARLY_HAPPY_BELOW {
        scores[Reason::Complaint.index()] += 2.5;
    }
    let best = best_of(&scores, &Reason::ALL);
    let best_score = scores[best.index()];
    if best_score < MIN_REASON_SCORE {
        return Reason::Other;
    }
    if best == Reason::Complaint {
        // The taxonomy files a complaint about a delivery under Delivery and
        // one about a charge under Billing.
        for specific in [Reason::Delivery, Reason::Billing] {
            if scores[specific.index()] >= 0.6 * best_score {
                return specific;
            }
        }
        if fix > complain {
            let topics = [Reason::Reservation, Reason::Order, Reason::Menu];
            let topic = best_of(&scores, &topics);
            if scores[topic.index()] >= 0.4 * best_score {
                return topic;
            }
        }
    }
    best
}

/// Whether any token is one of `words` (a trailing `*` matches a prefix).
fn has_any(tokens: &[Token], words: &[&str]) -> bool {
    tokens.iter().any(|t| {
        words.iter().any(|w| match w.strip_suffix('*') {
            Some(p) => t.text.starts_with(p),
            None => t.text == *w,
        })
    })
}

/// The highest-scoring of `among` (the first on ties).
fn best_of(scores: &[f32; 11], among: &[Reason]) -> Reason {
    let mut best = among[0];
    for &r in among {
        if scores[r.index()] > scores[best.index()] {
            best = r;
        }
    }
    best
}

fn sentiment_score(m: &Matchers, turns: &[(Speaker, Vec<Token>)]) -> u8 {
    // Where a word falls in everything the caller said: the caller's state
    // at the end of the call is what counts, also within one unlabeled block.
    let caller_words: usize = turns
        .iter()
        .filter(|(s, _)| *s != Speaker::Agent)
        .map(|(_, t)| t.len())
        .sum();
    let mut seen: std::collections::HashMap<usize, u32> = std::collections::HashMap::new();
    let mut felt = 0f32;
    let mut negative = 0f32;
    let mut routine = 0f32;
    let mut routine_total = 0f32;
    let mut offset = 0usize;
    // An unresolved grievance: the agent apologized without a remedy, or the
    // caller stated a problem. Praise then, without thanks, is sarcasm
    // ("Wonderful. Ninety minutes. Really.").
    let mut grievance = false;
    for (speaker, tokens) in turns {
        let base = speaker_weight(*speaker, true);
        if *speaker == Speaker::Agent {
            if has_any(tokens, lexicon::REMEDIES) {
                grievance = false;
            } else if has_any(tokens, &["sorry", "apolog*"]) {
                grievance = true;
            }
        }
        let negative_before = negative;
        let sarcastic = grievance
            && *speaker != Speaker::Agent
            && !has_any(tokens, &["thank*", "appreciat*", "thx", "ty"]);
        let turn_offset = offset;
        if *speaker != Speaker::Agent {
            offset += tokens.len();
        }
        let position_weight = |start: usize| {
            if *speaker == Speaker::Agent || caller_words <= 1 {
                1.0
            } else {
                let at = (turn_offset + start) as f32 / (caller_words - 1) as f32;
                0.5 + at.min(1.0)
            }
        };
        let but_at = tokens
            .iter()
            .rposition(|t| t.text == "but" || t.text == "however");
        let exclaim = if tokens.iter().any(|t| t.exclaim) {
            1.15
        } else {
            1.0
        };
        m.sentiment
            .for_each_match(tokens, |is_routine, weight, start, id| {
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
                let v = v * exclaim * base * position_weight(start);
                let v = if sarcastic && !is_routine && v > 0.0 {
                    -0.7 * v
                } else {
                    v
                };
                if is_routine && v > 0.0 {
                    let capped = v.min((lexicon::ROUTINE_CAP - routine_total).max(0.0));
                    routine_total += capped;
                    routine += capped;
                } else if v < 0.0 {
                    negative += v;
                } else {
                    felt += v;
                }
            });
        if *speaker != Speaker::Agent && negative - negative_before <= -1.5 {
            grievance = true;
        }
    }
    // Routine thanks after a problem is politeness, not satisfaction.
    let routine = if grievance && negative <= -0.8 {
        0.0
    } else {
        routine
    };
    let total = felt + negative + routine;
    let score = 50.0 + 50.0 * (total / 4.0).tanh();
    score.round().clamp(0.0, 100.0) as u8
}

/// Negation and intensity from the few words before a match.
fn modifier(tokens: &[Token], start: usize, positive: bool) -> f32 {
    let mut factor = 1.0f32;
    let mut from = start.saturating_sub(3);
    // Only the words of the same clause ("no problem, still love it").
    if let Some(end) = tokens[from..start].iter().rposition(|t| t.clause_end) {
        from += end + 1;
    }
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

    #[test]
    fn calm_dissatisfaction_and_sarcasm_are_negative() {
        for text in [
            "Caller: hi, I was charged twice for my order last night, I'd like that fixed please. ok thanks, bye",
            "Caller: the order was missing the naan. ok. fine.",
            "Caller: it's been an hour and the food isn't here. oh great, just great. thanks I guess",
            "Caller: yeah sure you will call me back",
        ] {
            let a = run(text);
            assert_eq!(a.sentiment_label, SentimentLabel::Negative, "{text}: {}", a.sentiment_score);
        }
    }

    #[test]
    fn warmth_and_a_good_ending_are_positive() {
        let a = run("Caller: just picked up, you guys are always so fast, thanks");
        assert_eq!(
            a.sentiment_label,
            SentimentLabel::Positive,
            "{}",
            a.sentiment_score
        );
        let a = run("Customer: my order was wrong and I'm annoyed\nAgent: I'm so sorry, we'll remake it now and it's on us\nCustomer: oh wow, that's so kind, you saved my night, thank you so much!");
        assert_eq!(
            a.sentiment_label,
            SentimentLabel::Positive,
            "{}",
            a.sentiment_score
        );
    }

    #[test]
    fn greetings_that_list_services_do_not_decide_the_reason() {
        let a = run("thank you for calling luigis you can book a table order pickup or delivery or ask about catering how can i help you hi um is the lasagna glutton free");
        assert_eq!(a.reason, Reason::Menu);
        let a = run("Bot: Welcome to Sakura! I can book a table, take a pickup or delivery order, or answer questions about catering and our hours.\nUser: hi did anyone find a black wallet, I think I left it at the bar");
        assert_eq!(a.reason, Reason::Other);
    }

    #[test]
    fn callers_who_are_not_customers_are_other() {
        for text in [
            "Caller: hi I live next door and your delivery trucks block my driveway every morning",
            "Caller: hello we offer restaurants a new reservation and online ordering software, is the owner or manager available",
            "Caller: is this the pharmacy? I'm trying to reach the pharmacy about my order",
        ] {
            assert_eq!(run(text).reason, Reason::Other, "{text}");
        }
    }

    #[test]
    fn complaint_or_its_topic() {
        let a = run("Caller: our server was rude to us last night and the food was cold, I want the manager to know");
        assert_eq!(a.reason, Reason::Complaint);
        let a = run("Caller: ugh your system messed up my booking, it says 4 people for saturday but we're 6, can I change it to 6");
        assert_eq!(a.reason, Reason::Reservation);
    }

    #[test]
    fn summaries_never_quote_the_caller() {
        let a = run("Caller: hi um yeah i was wondering whether the guy who played guitar on friday plays again");
        assert_eq!(a.reason, Reason::Other);
        assert!(!a.summary.contains('"'), "{}", a.summary);
        assert!(!a.summary.contains("guitar"), "{}", a.summary);
        let a = run("Caller: hi, are you open past 11 pm on Saturday?");
        assert_eq!(
            a.summary,
            "Caller asked whether you are open past 11 pm on Saturday."
        );
        let a = run("Caller: I was charged $45.20 twice on my card for one dinner");
        assert!(
            a.summary
                .starts_with("Caller reported being charged twice ($45.20)"),
            "{}",
            a.summary
        );
        assert_eq!(a.details.amount.as_deref(), Some("$45.20"));
        assert_eq!(a.produced_by, ProducedBy::default());
    }
}
