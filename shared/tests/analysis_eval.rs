//! The analysis must hold its targets on the labeled evaluation set:
//! reason ≥ 90 %, sentiment label ≥ 85 %.

#[path = "support/eval.rs"]
mod eval;

#[test]
fn evaluation_set_meets_targets() {
    let text = include_str!("data/call_eval.jsonl");
    let set = eval::parse_jsonl(text).expect("evaluation set parses");
    assert!(
        set.len() >= 150,
        "the set has {} calls; it needs at least 150",
        set.len()
    );
    let report = eval::evaluate(&set);
    let table = eval::render(&report);
    assert!(
        report.reason_accuracy() >= 0.90,
        "reason accuracy below 90 %\n{table}"
    );
    assert!(
        report.sentiment_accuracy() >= 0.85,
        "sentiment accuracy below 85 %\n{table}"
    );
}
