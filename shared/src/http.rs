//! The HTTP contract shared by every function: the success/error envelope,
//! error-to-status mapping (the one place it happens), JSON body parsing with
//! size and content-type limits, path parameters and the request id.

use std::future::Future;
use std::time::Instant;

use lambda_http::http::{HeaderValue, StatusCode};
use lambda_http::{Body, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use tracing::Instrument;

use crate::domain::ids::Id;
use crate::domain::rate_limit::RateStatus;
use crate::error::ApiError;

pub use lambda_http::Request;

/// A successful response: `{"success": true, "message"?: ..., "data": ...}`.
#[derive(Debug)]
pub struct ApiResponse {
    status: u16,
    message: Option<String>,
    /// Only ever a `Payload` type, serialized.
    data: Value,
    headers: Vec<(&'static str, String)>,
    /// A body in a platform's own format (TwiML, ElevenLabs' JSON) instead
    /// of the envelope: its content type and text.
    raw: Option<(&'static str, String)>,
}

/// A response body type: only types that say so can be a response's `data`,
/// so a field reaches a client only when its response type names it
/// (`crate::responses`; checked against the OpenAPI document by a test).
pub trait Payload: Serialize {}

impl ApiResponse {
    pub fn ok(data: impl Payload) -> Self {
        Self::with_status(200, data)
    }

    pub fn created(data: impl Payload) -> Self {
        Self::with_status(201, data)
    }

    pub fn accepted(data: impl Payload) -> Self {
        Self::with_status(202, data)
    }

    fn with_status(status: u16, data: impl Payload) -> Self {
        Self {
            status,
            message: None,
            data: serde_json::to_value(data).unwrap_or(Value::Null),
            headers: Vec::new(),
            raw: None,
        }
    }

    /// A 200 whose body is a platform's format, not our envelope: the
    /// platforms that call us parse their own shapes only.
    pub fn platform(content_type: &'static str, body: String) -> Self {
        Self {
            status: 200,
            message: None,
            data: Value::Null,
            headers: Vec::new(),
            raw: Some((content_type, body)),
        }
    }

    /// A platform JSON answer (`value` serialized as it is).
    pub fn platform_json(value: &impl Serialize) -> Self {
        Self::platform(
            "application/json; charset=utf-8",
            serde_json::to_string(value).unwrap_or_default(),
        )
    }

    /// `304 Not Modified`: no body; the caller's copy is still the answer.
    pub fn not_modified() -> Self {
        Self {
            status: 304,
            message: None,
            data: Value::Null,
            headers: Vec::new(),
            raw: None,
        }
    }

    /// The HTTP caching validators of an answer that may be kept (replacing
    /// the default `no-store`).
    pub fn cacheable(mut self, etag: &str, max_age_secs: i64) -> Self {
        self.headers.extend([
            ("etag", etag.to_string()),
            ("cache-control", format!("private, max-age={max_age_secs}")),
        ]);
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// IETF `RateLimit-*` headers: where the caller's key stands.
    pub fn rate_limit(mut self, rate: &RateStatus) -> Self {
        self.headers.extend([
            ("ratelimit-limit", rate.limit.to_string()),
            ("ratelimit-remaining", rate.remaining.to_string()),
            ("ratelimit-reset", rate.reset_secs.to_string()),
        ]);
        self
    }
}

fn json_response(status: u16, body: &Value, headers: &[(&'static str, String)]) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    for (name, value) in headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(*name, v);
        }
    }
    resp
}

/// Turns a handler's result into the wire response; every error gets the
/// envelope, the request id, and no internals.
pub fn into_response(result: Result<ApiResponse, ApiError>, request_id: &str) -> Response<Body> {
    let id_header = ("x-request-id", request_id.to_string());
    match result {
        Ok(ok) if ok.status == 304 => {
            let mut headers = ok.headers;
            headers.push(id_header);
            let mut resp = json_response(304, &Value::Null, &headers);
            resp.headers_mut().remove("content-type");
            *resp.body_mut() = Body::Empty;
            resp
        }
        Ok(ApiResponse {
            status,
            raw: Some((content_type, text)),
            mut headers,
            ..
        }) => {
            headers.push(id_header);
            let mut resp = json_response(status, &Value::Null, &headers);
            *resp.body_mut() = Body::Text(text);
            if let Ok(v) = HeaderValue::from_str(content_type) {
                resp.headers_mut().insert("content-type", v);
            }
            resp
        }
        Ok(ok) => {
            let mut body = json!({"success": true});
            if let Some(m) = &ok.message {
                body["message"] = json!(m);
            }
            body["data"] = ok.data;
            let mut headers = ok.headers;
            headers.push(id_header);
            json_response(ok.status, &body, &headers)
        }
        Err(err) => {
            let (status, body, mut headers) = err.envelope(request_id);
            headers.push(id_header);
            json_response(status, &body, &headers)
        }
    }
}

/// Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 has it
/// for GET) or is `*`.
pub fn if_none_match(req: &Request, etag: &str) -> bool {
    fn opaque(tag: &str) -> &str {
        tag.trim().trim_start_matches("W/")
    }
    let ours = opaque(etag);
    req.headers()
        .get_all("if-none-match")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == ours)
}

/// Refuses any method but `method` (API Gateway routes by method; this
/// guards a function invoked another way).
pub fn only(req: &Request, method: &str) -> Result<(), ApiError> {
    if req.method().as_str() == method {
        Ok(())
    } else {
        Err(ApiError::MethodNotAllowed)
    }
}

/// The Lambda request id (also API Gateway's on the local watch router).
pub fn request_id(req: &Request) -> String {
    req.lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// The caller's address as API Gateway saw it.
pub fn source_ip(req: &Request) -> String {
    use lambda_http::request::RequestContext;
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    }
    .unwrap_or_else(|| "unknown".into())
}

/// A path parameter from the route (`pathParameters`), percent-decoded.
pub fn path_param(req: &Request, name: &str) -> Result<String, ApiError> {
    let raw = req
        .path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_string)
        .ok_or(ApiError::NotFound("route"))?;
    Ok(percent_decode(&raw))
}

/// A path id of a known kind: one that could never have been issued is 404
/// before any store is asked.
pub fn path_id<T: Id>(req: &Request, name: &str) -> Result<T, ApiError> {
    T::parse(&path_param(req, name)?).ok_or(ApiError::NotFound(T::NOUN))
}

/// The path id of a route that has one, `None` on the route without.
pub fn optional_path_id<T: Id>(req: &Request, name: &str) -> Result<Option<T>, ApiError> {
    match path_param(req, name) {
        Ok(_) => path_id(req, name).map(Some),
        Err(_) => Ok(None),
    }
}

fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The bearer credential of the `Authorization` header.
pub fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query_string_parameters_ref()
        .and_then(|q| q.first(name))
        .map(str::to_string)
}

/// A page size from `?limit=`: `default` when absent, 422 outside 1..=max.
pub fn limit_param(req: &Request, default: i32, max: i32) -> Result<i32, ApiError> {
    match query_param(req, "limit") {
        None => Ok(default),
        Some(v) => match v.parse::<i32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::validation(
                "limit",
                format!("must be a whole number from 1 to {max}"),
            )),
        },
    }
}

/// Parses a JSON body: 415 for another content type, 413 above `limit`
/// bytes, 400 for malformed JSON, 422 (with the field's path) for JSON of the
/// wrong shape, unknown fields included.
pub fn json_body<T: DeserializeOwned>(req: &Request, limit: usize) -> Result<T, ApiError> {
    let bytes: &[u8] = req.body().as_ref();
    if bytes.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    parse_json(bytes)
}

/// Like `json_body`, but an absent body means `T::default()`.
pub fn optional_json_body<T: DeserializeOwned + Default>(
    req: &Request,
    limit: usize,
) -> Result<T, ApiError> {
    if req.body().as_ref().is_empty() {
        return Ok(T::default());
    }
    json_body(req, limit)
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("request body is required".into()));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| json_error(err, ""))
}

/// Reads a part of a parsed body (at `at`, e.g. `message`) as `T`: a bad field
/// is named by its whole path, which a tagged enum would lose.
pub fn from_json_value<T: DeserializeOwned>(
    value: serde_json::Value,
    at: &str,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|err| json_error(err, at))
}

fn json_error(err: serde_path_to_error::Error<serde_json::Error>, at: &str) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let text = inner.to_string();
    // serde_json appends " at line L column C"; callers want the sentence.
    let sentence = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(head, _)| head)
        .to_string();
    match inner.classify() {
        serde_json::error::Category::Data => {
            // A missing field is named by the message; the path is its parent's.
            let missing = sentence
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
                .map(str::to_string);
            let field = match (path.as_str(), missing) {
                (".", Some(name)) => name,
                (_, Some(name)) => format!("{path}.{name}"),
                (".", None) => String::new(),
                _ => path,
            };
            // Relative to `at`; the whole body when both are empty.
            let field = match (at, field.is_empty()) {
                ("", true) => "body".into(),
                ("", false) => field,
                (_, true) => at.to_string(),
                (_, false) => format!("{at}.{field}"),
            };
            ApiError::validation(field, sentence)
        }
        _ => ApiError::BadRequest(format!("request body is not valid JSON: {sentence}")),
    }
}

/// Runs a handler as the Lambda's service: one span per request carrying the
/// request id (key and restaurant ids are recorded into it by the handler),
/// one access-log line, and the envelope on every response.
pub async fn serve<S, F, Fut>(state: &'static S, handler: F) -> Result<(), lambda_http::Error>
where
    S: Sync + 'static,
    F: Fn(&'static S, Request) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<ApiResponse, ApiError>> + Send,
{
    lambda_http::run(lambda_http::service_fn(move |req: Request| async move {
        let request_id = request_id(&req);
        crate::faults::invocation(&request_id);
        let method = req.method().to_string();
        let span = tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %method,
            key_id = tracing::field::Empty,
            restaurant_id = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = handler(state, req).instrument(span.clone()).await;
        let response = into_response(result, &request_id);
        span.in_scope(|| {
            tracing::info!(
                status = response.status().as_u16(),
                duration_us = started.elapsed().as_micros() as u64,
                "request handled"
            )
        });
        Ok::<_, std::convert::Infallible>(response)
    }))
    .await
}

/// The API's public base URL as the caller reached it: `PUBLIC_BASE_URL`
/// when configured (a custom domain), else the request's scheme (API
/// Gateway's `X-Forwarded-Proto`), its `Host` and whatever precedes `route`
/// in the raw path (a stage name, a local prefix).
pub fn public_base_url(config: &crate::config::Config, req: &Request, route: &str) -> String {
    if let Some(base) = &config.public_base_url {
        return base.clone();
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or("").trim().to_string())
            .filter(|v| !v.is_empty())
    };
    // API Gateway always says; only the local runner serves plain http.
    let scheme = header("x-forwarded-proto").unwrap_or_else(|| {
        if config.stage == "local" {
            "http"
        } else {
            "https"
        }
        .into()
    });
    let host = header("host")
        .or_else(|| req.uri().host().map(str::to_string))
        .unwrap_or_default();
    crate::domain::integration::base_url(&scheme, &host, req.raw_http_path(), route)
}

/// The full URL of this request as its sender addressed it (what Twilio
/// signs): the public base, the path from `route` on, and the query.
pub fn public_url(config: &crate::config::Config, req: &Request, route: &str) -> String {
    let path = req.raw_http_path();
    let tail = path.find(route).map_or(path, |i| &path[i..]);
    let mut url = format!("{}{tail}", public_base_url(config, req, route));
    if let Some(q) = req.uri().query().filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// Records the authenticated key id on the current request span.
pub fn record_key_id(key_id: &str) {
    tracing::Span::current().record("key_id", key_id);
}

pub fn record_restaurant_id(restaurant_id: &str) {
    tracing::Span::current().record("restaurant_id", restaurant_id);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        nested: Option<Nested>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        count: u32,
    }

    fn code(err: ApiError) -> (u16, Vec<String>) {
        let fields = err.details().iter().map(|d| d.field.clone()).collect();
        (err.status_and_code().0, fields)
    }

    #[test]
    fn malformed_json_is_400_and_wrong_shape_is_422_with_path() {
        assert_eq!(code(parse_json::<Body>(b"{\"name\":").unwrap_err()).0, 400);
        assert_eq!(code(parse_json::<Body>(b"").unwrap_err()).0, 400);
        let (status, fields) =
            code(parse_json::<Body>(br#"{"name":"x","nested":{"count":-1}}"#).unwrap_err());
        assert_eq!((status, fields), (422, vec!["nested.count".to_string()]));
        let (status, _) = code(parse_json::<Body>(br#"{"name":"x","admin":true}"#).unwrap_err());
        assert_eq!(status, 422);
        let missing = code(parse_json::<Body>(br#"{"nested":{"count":1}}"#).unwrap_err());
        assert_eq!(missing, (422, vec!["name".to_string()]));
        let nested = code(parse_json::<Body>(br#"{"name":"x","nested":{}}"#).unwrap_err());
        assert_eq!(nested, (422, vec!["nested.count".to_string()]));
    }

    #[test]
    fn error_envelope_carries_code_details_and_request_id() {
        let resp = into_response(
            Err(ApiError::validation("name", "must not be empty")),
            "req-1",
        );
        assert_eq!(resp.status(), 422);
        let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR");
        assert_eq!(body["error"]["requestId"], "req-1");
        assert_eq!(body["error"]["details"][0]["field"], "name");
        assert_eq!(resp.headers()["x-request-id"], "req-1");

        let resp = into_response(Err(ApiError::internal("dynamo exploded: secret")), "r");
        let body = String::from_utf8(resp.body().as_ref().to_vec()).unwrap();
        assert!(!body.contains("secret"), "internals never leak");

        let resp = into_response(
            Err(ApiError::RateLimited {
                limit: 5,
                retry_after: 7,
            }),
            "r",
        );
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "7");
        assert_eq!(resp.headers()["ratelimit-limit"], "5");
    }
}
