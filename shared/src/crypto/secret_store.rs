//! The admin-token secret, read from Secrets Manager once per cold start by
//! the functions that sign or verify admin tokens (and only they hold its
//! ARN and may read it). Cost: one `GetSecretValue` per cold start.

use aws_config::SdkConfig;

use crate::error::Chain;

/// Shorter HMAC keys would be guessable; the template generates 64 characters.
pub const MIN_SECRET_LEN: usize = 32;

/// The HMAC key of admin tokens. Its `Debug` never shows it.
#[derive(Clone)]
pub struct TokenSecret(Vec<u8>);

impl TokenSecret {
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<Self, SecretError> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_LEN {
            return Err(SecretError::TooShort);
        }
        Ok(Self(secret))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable ADMIN_TOKEN_SECRET_ARN is required by this function")]
    NoArn,
    #[error("Secrets Manager GetSecretValue failed: {0}")]
    Read(String),
    #[error("the admin token secret has no string value")]
    Empty,
    #[error("the admin token secret must be at least {MIN_SECRET_LEN} characters")]
    TooShort,
}

/// Reads the secret named by `ADMIN_TOKEN_SECRET_ARN`. Any failure is an
/// error: a function never starts with an empty or default secret.
pub async fn admin_token_secret(sdk: &SdkConfig) -> Result<TokenSecret, SecretError> {
    let arn = std::env::var("ADMIN_TOKEN_SECRET_ARN")
        .ok()
        .filter(|a| !a.trim().is_empty())
        .ok_or(SecretError::NoArn)?;
    let out = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(arn.trim())
        .send()
        .await
        .map_err(|e| SecretError::Read(Chain(&e).to_string()))?;
    let value = out.secret_string.ok_or(SecretError::Empty)?;
    TokenSecret::new(value.trim().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused_and_none_is_printed() {
        assert!(matches!(
            TokenSecret::new("short"),
            Err(SecretError::TooShort)
        ));
        let s = TokenSecret::new("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(format!("{s:?}"), "TokenSecret(<redacted>)");
    }
}
