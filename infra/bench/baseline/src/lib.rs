//! Shared bits of the two baseline functions (see infra/bench/ring.py): one DynamoDB
//! client per cold start, GetItem by a string key, an item as JSON.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use lambda_http::{Body, Error, Request, RequestExt, Response};

pub type Item = HashMap<String, AttributeValue>;

/// The DynamoDB client, built once per cold start (honours `AWS_ENDPOINT_URL`).
pub async fn client() -> Client {
    Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await,
    )
}

pub fn table(var: &str) -> Result<String, Error> {
    std::env::var(var).map_err(|_| format!("{var} is not set").into())
}

pub async fn get(client: &Client, table: &str, key: &str, id: &str) -> Result<Option<Item>, Error> {
    let out = client
        .get_item()
        .table_name(table)
        .key(key, AttributeValue::S(id.to_string()))
        .send()
        .await?;
    Ok(out.item)
}

fn to_json(v: &AttributeValue) -> serde_json::Value {
    use serde_json::Value;
    match v {
        AttributeValue::S(s) => Value::from(s.as_str()),
        AttributeValue::N(n) => n
            .parse::<f64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(n.as_str())),
        AttributeValue::Bool(b) => Value::from(*b),
        AttributeValue::L(l) => l.iter().map(to_json).collect(),
        AttributeValue::M(m) => item_json(m),
        AttributeValue::Ss(ss) => ss.iter().map(|s| Value::from(s.as_str())).collect(),
        _ => Value::Null,
    }
}

pub fn item_json(item: &Item) -> serde_json::Value {
    item.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()
}

pub fn respond(status: u16, body: &serde_json::Value) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))?)
}

/// The restaurant the request's path names, as JSON (404 when there is none).
pub async fn restaurant_response(
    client: &Client,
    restaurants: &str,
    req: &Request,
) -> Result<Response<Body>, Error> {
    let id = req
        .path_parameters_ref()
        .and_then(|p| p.first("restaurantId"))
        .unwrap_or_default()
        .to_string();
    match get(client, restaurants, "restaurantId", &id).await? {
        Some(item) => respond(200, &item_json(&item)),
        None => respond(404, &serde_json::json!({"error": "not found"})),
    }
}
