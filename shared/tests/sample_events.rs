//! Every sample event in `events/` (for `cargo lambda invoke --data-file`
//! and the handler tests) is one the runtime accepts, and every HTTP one is
//! for a route we serve, so none of them rots unnoticed.

use std::path::Path;

/// `METHOD /path` of every route in Cargo.toml's local router.
fn served_routes() -> Vec<String> {
    let cargo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .expect("Cargo.toml");
    let mut routes = Vec::new();
    let mut path = None;
    for line in cargo.lines() {
        if let Some(rest) = line.strip_prefix("\"/api") {
            path = rest.split('"').next().map(str::to_string);
        }
        for part in line.split("method = \"").skip(1) {
            if let (Some(p), Some(m)) = (&path, part.split('"').next()) {
                routes.push(format!("{m} {p}"));
            }
        }
    }
    routes
}

#[test]
fn every_sample_event_parses_and_names_a_served_route() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../events");
    let routes = served_routes();
    assert!(routes.len() >= 20, "read the router: {routes:?}");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("events/") {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if let Some(route) = json["routeKey"].as_str() {
            lambda_http::request::from_str(&text)
                .unwrap_or_else(|e| panic!("{name}: not an API Gateway event: {e}"));
            assert!(
                routes.iter().any(|r| r == route),
                "{name}: {route} is not served"
            );
        } else if json["Records"][0]["EventSource"] == "aws:sns" {
            // SNS capitalises its record fields; its message is an SES event record.
            let sns: pulsara_shared::domain::ses_event::SnsEvent =
                serde_json::from_value(json.clone())
                    .unwrap_or_else(|e| panic!("{name}: not an SNS event: {e}"));
            for r in &sns.records {
                pulsara_shared::domain::ses_event::parse(&r.sns.message, chrono::Utc::now())
                    .unwrap_or_else(|e| panic!("{name}: not an SES event record: {e}"));
            }
        } else {
            let source = json["Records"][0]["eventSource"].as_str().unwrap_or("");
            assert!(
                ["aws:sqs", "aws:dynamodb"].contains(&source),
                "{name}: neither HTTP nor a queue, stream or SNS record"
            );
        }
        seen += 1;
    }
    assert!(seen >= 22, "only {seen} sample events");
}
