//! CPU cost of restaurant-config's own work, apart from its AWS calls:
//! phone normalization, call-hours evaluation in the restaurant's timezone,
//! routing, and the JSON envelope.
//!
//!   cargo run --release -p pulsara-shared --example domain_bench

use pulsara_shared::domain::ids::RestaurantId;
use std::time::Instant;

use chrono::Utc;
use phonenumber::country::Id;
use pulsara_shared::domain::{phone, restaurant::RestaurantInput};
use pulsara_shared::http::{into_response, ApiResponse};

fn main() {
    let input: RestaurantInput = serde_json::from_value(serde_json::json!({
        "name": "Bench Bistro", "phoneNumbers": ["(555) 123-4567"], "timezone": "America/New_York",
        "aiEnabled": true, "callHoursStart": "09:00", "callHoursEnd": "21:00",
        "schedule": {"friday": [{"start": "11:00", "end": "14:00"}, {"start": "17:00", "end": "01:00"}]},
        "agent": {"elevenlabs_agent_id": "a", "voice_id": "v", "tools": ["end_call", "forward_call"]},
        "forwarding_number": "(555) 987-6543"
    }))
    .unwrap();
    let r = input
        .into_restaurant(RestaurantId::generate(), Utc::now(), Id::US)
        .unwrap();
    // Warm up lazy metadata (the phone database) as a warm Lambda would have.
    phone::normalize("(555) 123-4567", Id::US).unwrap();

    let n = 100_000;
    let per_request = |r: &pulsara_shared::domain::restaurant::Restaurant, n: u32| {
        let started = Instant::now();
        let mut bytes = 0usize;
        for _ in 0..n {
            let e164 = phone::normalize(std::hint::black_box("(555) 123-4567"), Id::US).unwrap();
            assert!(r.phone_numbers.contains(&e164));
            let view = r.config(Utc::now(), Id::US);
            let resp = into_response(Ok(ApiResponse::ok(view)), "bench-request-id");
            bytes += resp.body().len();
        }
        (started.elapsed() / n, bytes / n as usize)
    };
    let (per, bytes) = per_request(&r, n);
    println!("restaurant-config handler CPU work (lookup by phone): {per:?} per request ({bytes} bytes/response)");

    // The calendar's worst case: open around the clock, 100 special dates,
    // and the next change a closure eleven months away (the sweep walks every day).
    let today = Utc::now().date_naive();
    let special: Vec<_> = (1..=100u64)
        .map(|i| {
            serde_json::json!({"date": today + chrono::Days::new(2 * i),
                                    "windows": [{"start": "00:00", "end": "24:00"}]})
        })
        .collect();
    let far = today + chrono::Days::new(335);
    let worst: RestaurantInput = serde_json::from_value(serde_json::json!({
        "name": "Bench Bistro", "phoneNumbers": ["(555) 123-4567"], "timezone": "America/New_York",
        "aiEnabled": true, "specialHours": special,
        "closures": [{"from": far, "to": far + chrono::Days::new(6)}],
        "agent": {"elevenlabs_agent_id": "a", "voice_id": "v"}
    }))
    .unwrap();
    let worst = worst
        .into_restaurant(RestaurantId::generate(), Utc::now(), Id::US)
        .unwrap();
    let (per, bytes) = per_request(&worst, n / 10);
    println!("  worst-case calendar (100 special dates, next change 11 months ahead): {per:?} per request ({bytes} bytes/response)");
}
