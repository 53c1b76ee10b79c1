//! Helpers for handler tests: real API Gateway v2 events from `events/`,
//! adjusted per test, against the local stack that `infra/test.sh` starts.

use std::path::Path;

use serde_json::Value;

use chrono::Utc;

use crate::app::{AdminApp, AppState};
use crate::domain::call::{CallRecord, EmailState, EmailStatus, Poster, ProcessCallRequest};
use crate::domain::ids::{ApiKeyId, Id};
use crate::domain::restaurant::RestaurantInput;
use crate::domain::token::{self, Claims};
use crate::services::create_restaurant;

/// The state a function would build at cold start. Without a local stack
/// the test fails, so a CI run that lost its stack can't pass silently;
/// `PULSARA_SKIP_STACK_TESTS=1` skips them on purpose (`None`).
pub async fn local_state() -> Option<AppState> {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        assert!(
            std::env::var_os("PULSARA_SKIP_STACK_TESTS").is_some(),
            "no local stack: run the tests through infra/test.sh \
             (or set PULSARA_SKIP_STACK_TESTS=1 to skip the moto-backed ones)"
        );
        eprintln!("skipping: no local stack (PULSARA_SKIP_STACK_TESTS is set)");
        return None;
    }
    Some(
        AppState::from_env()
            .await
            .expect("local stack configuration"),
    )
}

/// The state of a function that verifies admin tokens: `local_state` plus
/// the token secret from the local Secrets Manager (`ADMIN_TOKEN_SECRET_ARN`,
/// which infra/test.sh exports to the tests as the admin functions get it).
pub async fn local_admin_app() -> Option<AdminApp> {
    local_state().await?;
    Some(
        AdminApp::from_env()
            .await
            .expect("local stack configuration and token secret"),
    )
}

/// Loads `events/<name>`, lets the test edit its JSON, and parses it the way
/// the Lambda runtime does.
pub fn event(name: &str, edit: impl FnOnce(&mut Value)) -> lambda_http::Request {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let mut json: Value = serde_json::from_str(&text).expect("event is JSON");
    edit(&mut json);
    lambda_http::request::from_str(&json.to_string())
        .expect("event parses as an API Gateway request")
}

/// A valid admin access token for `app`'s secret, for an admin user that
/// exists (tokens of unknown admins are refused).
pub async fn admin_token(app: &AdminApp) -> String {
    let state = &app.state;
    let now = chrono::Utc::now();
    let user = crate::store::admins::AdminUser {
        email: crate::domain::email_address::EmailAddress::parse("handler-test@pulsara.test")
            .expect("an e-mail address"),
        user_id: "usr_handler_test".into(),
        // Never signs in: the handler tests mint their tokens here.
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$none".into(),
        role: token::ADMIN_ROLE.into(),
        created_at: now,
        updated_at: now,
    };
    state
        .admins
        .put(&user, true)
        .await
        .expect("local stack admin table");
    let claims = Claims {
        iss: token::ISSUER.into(),
        sub: user.user_id,
        email: user.email.to_string(),
        role: token::ADMIN_ROLE.into(),
        iat: now.timestamp(),
        exp: now.timestamp() + 300,
    };
    app.tokens.sign(&claims)
}

/// A fictional 555 number nobody else in the test run uses.
pub fn unique_phone() -> String {
    let n = uuid::Uuid::new_v4().as_u128();
    format!("(555) {:03}-{:04}", 200 + n % 800, (n >> 16) % 10_000)
}

/// A stored call of a new restaurant `name` that notifies `owner`, its e-mail queued after a
/// first throttled attempt, then as `edit` leaves it (the e-mail handlers' starting point).
pub async fn call_with_email(
    state: &AppState,
    name: &str,
    owner: &str,
    edit: impl FnOnce(&mut EmailState),
) -> CallRecord {
    let now = Utc::now();
    let input: RestaurantInput = serde_json::from_value(serde_json::json!({
        "name": name, "phoneNumbers": [unique_phone()], "timezone": "Europe/Paris",
        "notificationEmails": [owner]
    }))
    .expect("restaurant input");
    let restaurant = create_restaurant(state, input, now)
        .await
        .expect("restaurant");
    let request: ProcessCallRequest = serde_json::from_value(serde_json::json!({
        "restaurantId": restaurant.restaurant_id,
        "callId": format!("CA{}", now.timestamp_nanos_opt().expect("nanos")),
        "timestamp": now.to_rfc3339(), "transcript": "Customer: do you deliver?"
    }))
    .expect("call request");
    let valid = request
        .validate(now, state.config.default_phone_region)
        .expect("valid call");
    let key = ApiKeyId::parse("keytest1").expect("key id");
    let poster = Poster {
        owner: &key,
        key: &key,
    };
    let mut call = CallRecord::new(valid, &restaurant.restaurant_id, poster, now, 365);
    let mut email = EmailState {
        status: EmailStatus::Queued,
        recipients: restaurant.notification_emails.clone(),
        suppressed: Vec::new(),
        message_id: None,
        attempts: 1,
        last_error: Some("throttled".into()),
        updated_at: now,
        claim_id: None,
        claimed_until: None,
    };
    edit(&mut email);
    call.email = Some(email);
    state.calls.insert(&call).await.expect("stored call");
    call
}
