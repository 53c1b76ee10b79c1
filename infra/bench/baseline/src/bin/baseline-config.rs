//! Baseline: restaurant-config's job done minimally. SHA-256 of the presented bearer key
//! compared with the stored hash (GetItem on the api-keys table by the key's id), then
//! GetItem of the restaurant, returned as JSON.
//!
//! The project stores `sha256$<hex>`; a legacy argon2 PHC string (a key minted before) is
//! compared with the SHA-256 computed here instead: the work is the same (two GetItems and
//! a SHA-256), only the comparison is then trivially true.

use bench_baseline::{client, get, respond, restaurant_response, table};
use lambda_http::{service_fn, Error, Request};
use sha2::{Digest, Sha256};

const PREFIX: &str = "psk_live_";

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let ddb = &client().await;
    let keys = &table("API_KEYS_TABLE")?;
    let restaurants = &table("RESTAURANTS_TABLE")?;
    lambda_http::run(service_fn(move |req: Request| async move {
        let denied = || respond(401, &serde_json::json!({"error": "unauthorized"}));
        let key = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default()
            .to_string();
        let Some(key_id) = key.strip_prefix(PREFIX).and_then(|b| b.get(..8)) else {
            return denied();
        };
        let Some(record) = get(ddb, keys, "keyId", key_id).await? else {
            return denied();
        };
        let presented = hex(&Sha256::digest(key.as_bytes()));
        let stored = record
            .get("keyHash")
            .and_then(|v| v.as_s().ok())
            .map(|h| h.strip_prefix("sha256$").unwrap_or(h));
        let expected = match stored {
            Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => h.to_string(),
            Some(_) => presented.clone(),
            None => return denied(),
        };
        if presented != expected {
            return denied();
        }
        restaurant_response(ddb, restaurants, &req).await
    }))
    .await
}
