//! Analysis throughput on 1 KB and 10 KB transcripts (both shapes).
//!
//!   cargo run --release -p pulsara-shared --example analysis_bench

use std::time::Instant;

use pulsara_shared::domain::analysis::{analyze, transcript::TranscriptInput};

const CALL: &str = "Agent: Thanks for calling Luigi's, how can I help you?\n\
Customer: hi yeah um I wanted to book a table for six this friday at seven thirty if you have anything\n\
Agent: Let me check. We have 7:30 available on the patio or 8:00 inside.\n\
Customer: oh the patio sounds lovely, and one of us is gluten free, is that ok?\n\
Agent: Absolutely, we have a gluten-free menu.\n\
Customer: perfect, that's amazing, thank you so much!\n";

fn transcript_of(bytes: usize) -> String {
    let mut t = String::new();
    while t.len() < bytes {
        t.push_str(CALL);
    }
    t.truncate(t[..bytes].rfind('\n').unwrap_or(bytes));
    t
}

fn bench(label: &str, input: &TranscriptInput) {
    let n = 2_000;
    let _ = analyze(&input.turns());
    let started = Instant::now();
    for _ in 0..n {
        let a = analyze(&std::hint::black_box(input).turns());
        std::hint::black_box(a);
    }
    let per = started.elapsed() / n;
    println!(
        "{label:<22} {:>6} bytes  {:>9.1} µs/call  {:>8.0} transcripts/s",
        input.byte_len(),
        per.as_secs_f64() * 1e6,
        1.0 / per.as_secs_f64()
    );
}

fn main() {
    for size in [1_024, 10 * 1_024] {
        let text = transcript_of(size);
        bench(
            &format!("{} KB text", size / 1024),
            &TranscriptInput::Text(text.clone()),
        );
        let turns: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(r, m)| serde_json::json!({"role": if r == "Agent" {"agent"} else {"user"}, "message": m}))
            .collect();
        let input: TranscriptInput =
            serde_json::from_value(serde_json::Value::Array(turns)).unwrap();
        bench(&format!("{} KB turns", size / 1024), &input);
    }
}
