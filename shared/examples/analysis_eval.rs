//! Prints reason and sentiment accuracy and confusion tables of the call
//! analysis on the labeled set (or on a JSONL file given as argument).
//!
//!   cargo run -p pulsara-shared --example analysis_eval [-- path.jsonl] [--misses] [--scores]
//!
//! `--scores` prints every call's expected label and sentiment score, to
//! check the label thresholds against a set.

#[path = "../tests/support/eval.rs"]
mod eval;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/call_eval.jsonl").into()
        });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let set = eval::parse_jsonl(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let report = eval::evaluate(&set);
    print!("{}", eval::render(&report));
    if args.iter().any(|a| a == "--scores") {
        println!("\nscores (id, expected sentiment, score)");
        for (id, expected, score) in &report.scores {
            println!("  {id} {expected} {score}");
        }
    }
    if args.iter().any(|a| a == "--misses") {
        println!("\nmisses (id, expected, got)");
        for (id, exp, got) in &report.misses {
            println!("  {id}: {exp} -> {got}");
        }
    }
}
