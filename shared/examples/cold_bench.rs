//! What a cold instance's first restaurant-config answer pays besides its
//! AWS calls: the lazy one-time set-ups (phone metadata, timezone data, the
//! first response), each timed on first use. Run at a Lambda's CPU share to
//! see a 128 MB cold start's CPU part.
//!
//!   cargo run --release -p pulsara-shared --example cold_bench

use std::time::Instant;

use chrono::Utc;
use phonenumber::country::Id;
use pulsara_shared::domain::ids::{Id as _, RestaurantId};
use pulsara_shared::domain::{phone, restaurant::RestaurantInput};
use pulsara_shared::http::{into_response, ApiResponse};

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    println!("{what}: {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
    out
}

fn main() {
    timed("first phone::normalize", || {
        phone::normalize("(555) 123-4567", Id::US).unwrap()
    });
    timed("second phone::normalize", || {
        phone::normalize("(555) 765-4321", Id::US).unwrap()
    });
    let input: RestaurantInput = serde_json::from_value(serde_json::json!({
        "name": "Bench Bistro", "phoneNumbers": ["(555) 123-4567"], "timezone": "America/New_York",
        "aiEnabled": true, "callHoursStart": "09:00", "callHoursEnd": "21:00",
        "agent": {"elevenlabs_agent_id": "a", "voice_id": "v", "tools": ["end_call"]},
        "forwarding_number": "(555) 987-6543"
    }))
    .unwrap();
    let r = timed("first restaurant from input", || {
        input
            .into_restaurant(RestaurantId::generate(), Utc::now(), Id::US)
            .unwrap()
    });
    timed("first config view and response", || {
        let view = r.config(Utc::now(), Id::US);
        into_response(Ok(ApiResponse::ok(view)), "req").body().len()
    });
    timed("second config view and response", || {
        let view = r.config(Utc::now(), Id::US);
        into_response(Ok(ApiResponse::ok(view)), "req").body().len()
    });
    let _ = RestaurantId::parse("rst_00000000000000000000000000000000");
}
