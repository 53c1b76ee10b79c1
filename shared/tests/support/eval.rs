//! Scoring the analysis against a labeled set: accuracy and confusion tables.
//! Shared by the accuracy test and the `analysis_eval` example; not part of the library.

use std::collections::HashMap;
use std::fmt::Write;

use serde::Deserialize;

use pulsara_shared::domain::analysis::transcript::TranscriptInput;
use pulsara_shared::domain::analysis::{analyze, Reason, SentimentLabel};

#[derive(Debug, Deserialize)]
pub struct Labeled {
    pub id: String,
    pub reason: Reason,
    pub sentiment: SentimentLabel,
    pub transcript: TranscriptInput,
}

#[derive(Debug, Default)]
pub struct Report {
    pub total: usize,
    pub reason_correct: usize,
    pub sentiment_correct: usize,
    pub reason_confusion: HashMap<(Reason, Reason), usize>,
    pub sentiment_confusion: HashMap<(SentimentLabel, SentimentLabel), usize>,
    /// (id, expected, got) of every miss, for inspection.
    pub misses: Vec<(String, String, String)>,
    /// (id, expected sentiment, score) of every call.
    pub scores: Vec<(String, &'static str, u8)>,
}

impl Report {
    pub fn reason_accuracy(&self) -> f64 {
        self.reason_correct as f64 / self.total.max(1) as f64
    }
    pub fn sentiment_accuracy(&self) -> f64 {
        self.sentiment_correct as f64 / self.total.max(1) as f64
    }
}

/// Parses JSON lines of labeled calls.
pub fn parse_jsonl(text: &str) -> Result<Vec<Labeled>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", n + 1)))
        .collect()
}

pub fn evaluate(set: &[Labeled]) -> Report {
    let mut r = Report::default();
    for case in set {
        let a = analyze(&case.transcript.turns());
        r.total += 1;
        *r.reason_confusion
            .entry((case.reason, a.reason))
            .or_default() += 1;
        *r.sentiment_confusion
            .entry((case.sentiment, a.sentiment_label))
            .or_default() += 1;
        let reason_ok = a.reason == case.reason;
        let sentiment_ok = a.sentiment_label == case.sentiment;
        r.reason_correct += usize::from(reason_ok);
        r.sentiment_correct += usize::from(sentiment_ok);
        r.scores
            .push((case.id.clone(), case.sentiment.as_str(), a.sentiment_score));
        let got_sentiment = format!("{} ({})", a.sentiment_label.as_str(), a.sentiment_score);
        for (ok, expected, got) in [
            (
                reason_ok,
                case.reason.as_str().to_string(),
                a.reason.as_str().to_string(),
            ),
            (
                sentiment_ok,
                case.sentiment.as_str().to_string(),
                got_sentiment,
            ),
        ] {
            if !ok {
                r.misses.push((case.id.clone(), expected, got));
            }
        }
    }
    r
}

/// Accuracy lines and both confusion tables (rows: expected, columns: got).
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "calls: {}", r.total);
    for (name, accuracy, correct) in [
        ("reason", r.reason_accuracy(), r.reason_correct),
        ("sentiment", r.sentiment_accuracy(), r.sentiment_correct),
    ] {
        let label = format!("{name} accuracy:");
        let _ = writeln!(
            out,
            "{label:<20}{:.1} % ({correct}/{})",
            100.0 * accuracy,
            r.total
        );
    }
    let _ = writeln!(out, "\nreason confusion (rows expected, columns got)");
    let short = |x: Reason| &x.as_str()[..4];
    let _ = write!(out, "{:>12}", "");
    for got in Reason::ALL {
        let _ = write!(out, "{:>6}", short(got));
    }
    out.push('\n');
    for exp in Reason::ALL {
        let _ = write!(out, "{:>12}", exp.as_str());
        for got in Reason::ALL {
            let n = r.reason_confusion.get(&(exp, got)).copied().unwrap_or(0);
            let _ = write!(
                out,
                "{:>6}",
                if n == 0 {
                    ".".to_string()
                } else {
                    n.to_string()
                }
            );
        }
        out.push('\n');
    }
    let labels = [
        SentimentLabel::Positive,
        SentimentLabel::Neutral,
        SentimentLabel::Negative,
    ];
    let _ = writeln!(out, "\nsentiment confusion (rows expected, columns got)");
    let _ = write!(out, "{:>12}", "");
    for got in labels {
        let _ = write!(out, "{:>10}", got.as_str());
    }
    out.push('\n');
    for exp in labels {
        let _ = write!(out, "{:>12}", exp.as_str());
        for got in labels {
            let n = r.sentiment_confusion.get(&(exp, got)).copied().unwrap_or(0);
            let _ = write!(out, "{n:>10}");
        }
        out.push('\n');
    }
    let _ = writeln!(out, "\nreason per class");
    per_class(&mut out, &Reason::ALL, &r.reason_confusion, |x| x.as_str());
    let _ = writeln!(out, "\nsentiment per class");
    per_class(&mut out, &labels, &r.sentiment_confusion, |x| x.as_str());
    out
}

/// Precision, recall and support of every class from a confusion table.
fn per_class<T: Copy + Eq + std::hash::Hash>(
    out: &mut String,
    classes: &[T],
    confusion: &HashMap<(T, T), usize>,
    name: impl Fn(T) -> &'static str,
) {
    let _ = writeln!(
        out,
        "{:>12}{:>11}{:>8}{:>9}",
        "", "precision", "recall", "support"
    );
    let count = |f: &dyn Fn(T, T) -> bool| -> usize {
        confusion
            .iter()
            .filter(|((e, g), _)| f(*e, *g))
            .map(|(_, n)| n)
            .sum()
    };
    let pct = |num: usize, den: usize| {
        if den == 0 {
            "-".to_string()
        } else {
            format!("{:.0} %", 100.0 * num as f64 / den as f64)
        }
    };
    for &c in classes {
        let hit = count(&|e, g| e == c && g == c);
        let predicted = count(&|_, g| g == c);
        let support = count(&|e, _| e == c);
        let _ = writeln!(
            out,
            "{:>12}{:>11}{:>8}{:>9}",
            name(c),
            pct(hit, predicted),
            pct(hit, support),
            support
        );
    }
}
