//! Baseline: lambda_http + one GetItem of the restaurant named by the path, returned as JSON.

use bench_baseline::{client, get, item_json, respond, table};
use lambda_http::{service_fn, Error, Request, RequestExt};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let ddb = &client().await;
    let restaurants = &table("RESTAURANTS_TABLE")?;
    lambda_http::run(service_fn(move |req: Request| async move {
        let id = req
            .path_parameters_ref()
            .and_then(|p| p.first("restaurantId"))
            .unwrap_or_default()
            .to_string();
        match get(ddb, restaurants, "restaurantId", &id).await? {
            Some(item) => respond(200, &item_json(&item)),
            None => respond(404, &serde_json::json!({"error": "not found"})),
        }
    }))
    .await
}
