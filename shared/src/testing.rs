//! Helpers for handler tests: real API Gateway v2 events from `events/`,
//! adjusted per test, against the local stack that `infra/test.sh` starts.

use std::path::Path;

use serde_json::Value;

use crate::app::{AdminApp, AppState};
use crate::domain::token::{self, Claims};

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
