//! Everything a function needs, built once per cold start and shared by all
//! invocations of the instance.

use std::time::Duration;

use aws_config::BehaviorVersion;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::store::admins::AdminStore;
use crate::store::api_keys::ApiKeyStore;
use crate::store::rate_limits::RateLimiter;
use crate::store::restaurants::RestaurantStore;

pub struct AppState {
    pub config: Config,
    pub auth: Authenticator,
    pub api_keys: ApiKeyStore,
    pub admins: AdminStore,
    pub restaurants: RestaurantStore,
    pub limiter: RateLimiter,
}

impl AppState {
    pub fn new(config: Config, ddb: aws_sdk_dynamodb::Client) -> Self {
        let t = &config.tables;
        let api_keys = ApiKeyStore::new(ddb.clone(), t.api_keys.clone());
        let limiter = RateLimiter::new(ddb.clone(), t.rate_limits.clone());
        let auth = Authenticator::new(
            api_keys.clone(),
            limiter.clone(),
            config.admin_token_secret.clone(),
            Duration::from_secs(config.api_key_cache_seconds),
            config.default_rate_limit_per_minute,
        );
        AppState {
            admins: AdminStore::new(ddb.clone(), t.admin_users.clone()),
            restaurants: RestaurantStore::new(ddb, t.restaurants.clone(), t.phone_numbers.clone()),
            api_keys,
            limiter,
            auth,
            config,
        }
    }

    /// Reads configuration and builds the AWS clients (honouring
    /// `AWS_ENDPOINT_URL`, which is how the local stack points them at moto).
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let config = Config::from_env()?;
        let sdk = aws_config::defaults(BehaviorVersion::latest()).load().await;
        Ok(Self::new(config, aws_sdk_dynamodb::Client::new(&sdk)))
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
