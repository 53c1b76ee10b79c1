//! Admin sign-in: e-mail + password (argon2id) → a short-lived access token,
//! rate-limited per source address and per e-mail.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use crate::app::AdminApp;
use crate::domain::email_address::EmailAddress;
use crate::domain::hashing;
use crate::domain::token::{self, Claims};
use crate::domain::validate::{Errors, ValidationErrors};
use crate::error::ApiError;
use crate::responses::LoginOut;

/// `POST /ivr/auth/login` body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// A sign-in attempt that is well-formed (not yet checked).
pub struct Credentials {
    email: EmailAddress,
    password: String,
}

impl LoginRequest {
    pub fn parse(self) -> Result<Credentials, ValidationErrors> {
        let mut e = Errors::new();
        let email = e.parsed("email", EmailAddress::parse(&self.email));
        if self.password.is_empty() || self.password.len() > 1024 {
            e.add("password", "must be 1 to 1024 characters");
        }
        e.finish()?;
        Ok(Credentials {
            email: email.expect("checked above"),
            password: self.password,
        })
    }
}

pub async fn sign_in(
    app: &AdminApp,
    creds: Credentials,
    source_ip: &str,
    now: DateTime<Utc>,
) -> Result<LoginOut, ApiError> {
    let state = &app.state;
    let cfg = &state.config;
    let ip_bucket = format!("login-ip#{source_ip}");
    // A stable, non-reversible bucket name for the address.
    let email_hash = hashing::sha256_hex(creds.email.as_str().as_bytes());
    let email_bucket = format!("login-email#{}", &email_hash[..32]);
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

    let user = state.admins.get(&creds.email).await?;
    let verified = match &user {
        Some(u) => hashing::verify(&creds.password, &u.password_hash),
        None => {
            // Same work as a real check, so timing doesn't reveal accounts.
            hashing::verify(&creds.password, hashing::dummy_password_hash());
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
        email: user.email.to_string(),
        role: user.role.clone(),
        iat: now.timestamp(),
        exp: expires.timestamp(),
    };
    tracing::info!(user_id = %user.user_id, "admin signed in");
    Ok(LoginOut {
        access_token: app.tokens.sign(&claims),
        token_type: "Bearer",
        expires_at: expires,
        expires_in: cfg.admin_token_ttl_seconds,
    })
}
