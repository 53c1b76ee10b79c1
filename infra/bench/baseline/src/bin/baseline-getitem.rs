//! Baseline: lambda_http + one GetItem of the restaurant named by the path, returned as JSON.

use bench_baseline::{client, restaurant_response, table};
use lambda_http::{service_fn, Error, Request};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let ddb = &client().await;
    let restaurants = &table("RESTAURANTS_TABLE")?;
    lambda_http::run(service_fn(move |req: Request| async move {
        restaurant_response(ddb, restaurants, &req).await
    }))
    .await
}
