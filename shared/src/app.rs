//! Everything a function needs, built once per cold start and shared by all
//! invocations of the instance.

use std::sync::OnceLock;
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};

use crate::auth::{AdminCaller, AdminTokens, Authenticator};
use crate::config::{Config, ConfigError};
use crate::crypto::envelope::{SealError, SecretSealer};
use crate::crypto::secret_store::{self, SecretError};
use crate::error::ApiError;
use crate::http::Request;
use crate::mail::Mailer;
use crate::queue::JobQueue;
use crate::services::integrations::IntegrationCache;
use crate::store::admins::AdminStore;
use crate::store::api_keys::ApiKeyStore;
use crate::store::calls::CallStore;
use crate::store::integrations::IntegrationStore;
use crate::store::rate_limits::RateLimiter;
use crate::store::restaurants::RestaurantStore;
use crate::store::webhooks::WebhookStore;
use crate::webhook_client::WebhookClient;

pub struct AppState {
    pub config: Config,
    pub auth: Authenticator,
    pub api_keys: ApiKeyStore,
    pub admins: AdminStore,
    pub restaurants: RestaurantStore,
    pub limiter: RateLimiter,
    pub calls: CallStore,
    pub webhooks: WebhookStore,
    pub integrations: IntegrationStore,
    pub integration_cache: IntegrationCache,
    sdk: SdkConfig,
    mailer: OnceLock<Mailer>,
    email_queue: OnceLock<JobQueue>,
    email_dlq: OnceLock<JobQueue>,
    webhook_queue: OnceLock<JobQueue>,
    webhook_dlq: OnceLock<JobQueue>,
    webhook_client: OnceLock<WebhookClient>,
    sealer: OnceLock<SecretSealer>,
}

impl AppState {
    pub fn new(config: Config, sdk: SdkConfig) -> Self {
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        let t = &config.tables;
        let api_keys = ApiKeyStore::new(ddb.clone(), t.api_keys.clone());
        let limiter = RateLimiter::new(ddb.clone(), t.rate_limits.clone());
        let admins = AdminStore::new(ddb.clone(), t.admin_users.clone());
        let auth = Authenticator::new(
            api_keys.clone(),
            limiter.clone(),
            config.admin_token_ttl_seconds,
            Duration::from_secs(config.api_key_cache_seconds),
            config.default_rate_limit_per_minute,
            config.api_key_failure_limit_per_ip,
        );
        AppState {
            admins,
            calls: CallStore::new(ddb.clone(), t.calls.clone()),
            webhooks: WebhookStore::new(
                ddb.clone(),
                t.webhooks.clone(),
                t.webhook_deliveries.clone(),
            ),
            integrations: IntegrationStore::new(ddb.clone(), t.integrations.clone()),
            integration_cache: IntegrationCache::new(Duration::from_secs(
                config.api_key_cache_seconds,
            )),
            restaurants: RestaurantStore::new(ddb, t.restaurants.clone(), t.phone_numbers.clone()),
            api_keys,
            limiter,
            auth,
            config,
            sdk,
            mailer: OnceLock::new(),
            email_queue: OnceLock::new(),
            email_dlq: OnceLock::new(),
            webhook_queue: OnceLock::new(),
            webhook_dlq: OnceLock::new(),
            webhook_client: OnceLock::new(),
            sealer: OnceLock::new(),
        }
    }

    /// KMS envelope encryption of webhook secrets, built on first use; only
    /// the functions given `SECRETS_KMS_KEY_ARN` (and the KMS permissions)
    /// have one.
    pub fn sealer(&self) -> Result<&SecretSealer, SealError> {
        let key = self
            .config
            .secrets_kms_key_arn
            .as_ref()
            .ok_or(SealError::NotConfigured)?;
        Ok(self
            .sealer
            .get_or_init(|| SecretSealer::new(aws_sdk_kms::Client::new(&self.sdk), key.clone())))
    }

    fn queue(&self, url: &str) -> JobQueue {
        JobQueue::new(aws_sdk_sqs::Client::new(&self.sdk), url.to_string())
    }

    pub fn webhook_queue(&self) -> &JobQueue {
        self.webhook_queue
            .get_or_init(|| self.queue(&self.config.webhook_queue_url))
    }

    pub fn webhook_dlq(&self) -> &JobQueue {
        self.webhook_dlq
            .get_or_init(|| self.queue(&self.config.webhook_dlq_url))
    }

    pub fn webhook_client(&self) -> &WebhookClient {
        self.webhook_client.get_or_init(|| {
            WebhookClient::new(
                crate::domain::ssrf::TargetRules {
                    allow_loopback_http: self.config.webhook_allow_loopback_http,
                },
                Duration::from_millis(self.config.webhook_timeout_ms),
            )
        })
    }

    /// SES, built on first use: only functions that send mail pay for it.
    pub fn mailer(&self) -> &Mailer {
        self.mailer.get_or_init(|| {
            Mailer::new(
                aws_sdk_sesv2::Client::new(&self.sdk),
                self.config.sender_email.clone(),
                self.config.ses_configuration_set.clone(),
            )
        })
    }

    pub fn email_queue(&self) -> &JobQueue {
        self.email_queue
            .get_or_init(|| self.queue(&self.config.email_queue_url))
    }

    pub fn email_dlq(&self) -> &JobQueue {
        self.email_dlq
            .get_or_init(|| self.queue(&self.config.email_dlq_url))
    }

    /// Reads configuration and builds the AWS clients (honouring
    /// `AWS_ENDPOINT_URL`, which is how the local stack points them at moto).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(name) = sdk_app_name(std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok()) {
            loader = loader.app_name(name);
        }
        Ok(Self::new(config, loader.load().await))
    }
}

/// The function's name as the SDK's app name (`app/<name>` in every request's user agent):
/// CloudTrail shows which function made a call, and the local fault proxy checks each
/// function's calls against its IAM policy (infra/iam_check.py).
fn sdk_app_name(function_name: Option<String>) -> Option<aws_config::AppName> {
    let name: String = function_name?
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(50)
        .collect();
    aws_config::AppName::new(name).ok()
}

/// The state of a function that signs or verifies admin tokens: only these
/// hold the token secret, so only their handlers can accept an admin.
pub struct AdminApp {
    pub state: AppState,
    pub tokens: AdminTokens,
}

/// Why a function could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl AdminApp {
    /// `AppState::from_env` plus the token secret from Secrets Manager
    /// (`ADMIN_TOKEN_SECRET_ARN`): one `GetSecretValue` per cold start, and
    /// a cold start that cannot read it fails.
    pub async fn from_env() -> Result<Self, InitError> {
        let state = AppState::from_env().await?;
        let secret = secret_store::admin_token_secret(&state.sdk).await?;
        let tokens = AdminTokens::new(
            secret,
            state.config.admin_token_ttl_seconds,
            state.admins.clone(),
            Duration::from_secs(state.config.api_key_cache_seconds),
        );
        Ok(Self { state, tokens })
    }

    /// Authenticates an admin route: a valid admin access token.
    pub async fn admin(&self, req: &Request) -> Result<AdminCaller, ApiError> {
        self.tokens.admin(&self.state.auth, req).await
    }
}

/// Cold start for a Lambda: logging, configuration, clients; nothing else.
pub async fn init() -> Result<&'static AppState, lambda_http::Error> {
    crate::logging::init();
    let state = AppState::from_env().await.inspect_err(|e| {
        tracing::error!(error = %e, "configuration error");
    })?;
    Ok(Box::leak(Box::new(state)))
}

/// Cold start of a function that signs or verifies admin tokens.
pub async fn init_admin() -> Result<&'static AdminApp, lambda_http::Error> {
    crate::logging::init();
    let app = AdminApp::from_env().await.inspect_err(|e| {
        tracing::error!(error = %e, "cold start failed");
    })?;
    Ok(Box::leak(Box::new(app)))
}

#[cfg(test)]
mod tests {
    use super::sdk_app_name;

    #[test]
    fn the_function_name_becomes_a_valid_app_name() {
        let name = sdk_app_name(Some("pulsara-ivr-CompleteCallFunction-AbC123".into())).unwrap();
        assert_eq!(name.as_ref(), "pulsara-ivr-CompleteCallFunction-AbC123");
        let odd = sdk_app_name(Some("a b/c".into())).unwrap();
        assert_eq!(odd.as_ref(), "a_b_c");
        assert_eq!(
            sdk_app_name(Some("x".repeat(80))).unwrap().as_ref().len(),
            50
        );
        assert!(sdk_app_name(None).is_none());
        assert!(sdk_app_name(Some(String::new())).is_none());
    }
}
