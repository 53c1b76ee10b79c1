//! `POST /ivr/auth/login`: e-mail + password (argon2id) → short-lived admin
//! access token. Rate-limited per source address and per e-mail.

use chrono::{Duration, Utc};
use pulsara_shared::domain::hashing;
use pulsara_shared::domain::token::{self, Claims};
use pulsara_shared::domain::validate::{is_email, Errors};
use pulsara_shared::http::{json_body, source_ip};
use pulsara_shared::{ApiError, ApiResponse, AppState, Request};
use serde::Deserialize;
use sha2_hex::hex_digest;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

mod sha2_hex {
    /// A stable, non-reversible bucket name for an e-mail address.
    pub fn hex_digest(value: &str) -> String {
        use std::fmt::Write;
        let digest = pulsara_shared::domain::hashing::sha256(value.as_bytes());
        digest[..16].iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }
}

pub async fn handle(state: &AppState, req: Request) -> Result<ApiResponse, ApiError> {
    if req.method() != "POST" {
        return Err(ApiError::MethodNotAllowed);
    }
    let body: LoginBody = json_body(&req, 4 * 1024)?;
    let email = body.email.trim().to_ascii_lowercase();
    let mut e = Errors::new();
    if !is_email(&email) {
        e.add("email", "is not an e-mail address");
    }
    if body.password.is_empty() || body.password.len() > 1024 {
        e.add("password", "must be 1 to 1024 characters");
    }
    e.finish()?;

    let cfg = &state.config;
    let now = Utc::now();
    let ip_bucket = format!("login-ip#{}", source_ip(&req));
    let email_bucket = format!("login-email#{}", hex_digest(&email));
    let (by_ip, by_email) = tokio::join!(
        state
            .limiter
            .hit(&ip_bucket, cfg.login_limit_per_ip, 60, now.timestamp()),
        state.limiter.hit(
            &email_bucket,
            cfg.login_limit_per_email,
            60,
            now.timestamp()
        ),
    );
    by_ip.check()?;
    by_email.check()?;

    let user = state.admins.get(&email).await?;
    let verified = match &user {
        Some(u) => hashing::verify(&body.password, &u.password_hash),
        None => {
            // Same work as a real check, so timing doesn't reveal accounts.
            hashing::verify(&body.password, hashing::dummy_password_hash());
            false
        }
    };
    let Some(user) = user.filter(|_| verified) else {
        tracing::info!("admin sign-in failed");
        return Err(ApiError::Unauthorized);
    };

    let expires = now + Duration::seconds(cfg.admin_token_ttl_seconds);
    let claims = Claims {
        iss: token::ISSUER.into(),
        sub: user.user_id.clone(),
        email: user.email.clone(),
        role: user.role.clone(),
        iat: now.timestamp(),
        exp: expires.timestamp(),
    };
    tracing::info!(user_id = %user.user_id, "admin signed in");
    Ok(ApiResponse::ok(serde_json::json!({
        "accessToken": token::sign(&claims, state.auth.token_secret()),
        "tokenType": "Bearer",
        "expiresAt": expires,
        "expiresIn": cfg.admin_token_ttl_seconds,
    }))
    .message("Signed in successfully"))
}
