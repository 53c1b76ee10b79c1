//! Configuration: environment variables in, typed values out, checked once at
//! cold start so a misconfigured function fails loudly instead of per request.

use phonenumber::country;

use crate::domain::webhook::RetrySchedule;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Debug, Clone)]
pub struct Tables {
    pub api_keys: String,
    pub admin_users: String,
    pub restaurants: String,
    pub phone_numbers: String,
    pub rate_limits: String,
    pub calls: String,
    pub webhooks: String,
    pub webhook_deliveries: String,
    pub integrations: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `local` for the laptop stack; anything else is a deployed stage.
    pub stage: String,
    pub tables: Tables,
    /// How long sign-in's admin tokens live (also bounds what verification
    /// accepts). The token secret itself is no configuration: the functions
    /// that need it read it from Secrets Manager (`crypto::secret_store`).
    pub admin_token_ttl_seconds: i64,
    /// The KMS key that seals webhook signing secrets (set only on the
    /// functions that seal or open them).
    pub secrets_kms_key_arn: Option<String>,
    /// How long a verified API key is trusted before its record is re-read:
    /// the bound on how fast a revocation takes effect.
    pub api_key_cache_seconds: u64,
    pub default_rate_limit_per_minute: u32,
    pub login_limit_per_email: u32,
    pub login_limit_per_ip: u32,
    /// Failed checks of one known API key id allowed per source address and minute.
    pub api_key_failure_limit_per_ip: u32,
    pub default_phone_region: country::Id,
    pub max_body_bytes: usize,
    pub default_rotation_grace_seconds: i64,
    /// SQS queue of e-mails SES refused, retried by the email-sender function.
    pub email_queue_url: String,
    pub email_dlq_url: String,
    /// How long a worker's claim on an e-mail or a webhook delivery holds:
    /// longer than any function's timeout (so a live worker keeps it), shorter
    /// than the queues' visibility timeout (so a dead one's job finds it lapsed).
    pub claim_lease_seconds: u64,
    pub sender_email: String,
    /// The SES domain identity the sender's address belongs to.
    pub sender_domain: String,
    /// The configuration set every e-mail is sent through (its event
    /// destination reports bounces and complaints).
    pub ses_configuration_set: String,
    pub call_retention_days: i64,
    /// Attempts before an e-mail is given up (matches the queue's maxReceiveCount).
    pub email_max_attempts: u32,
    /// First retry delay; doubles per attempt, capped at SQS's 900 s.
    pub email_retry_base_seconds: u64,
    pub webhook_queue_url: String,
    pub webhook_dlq_url: String,
    /// Plain-http loopback receivers: only ever on in the `local` stage.
    pub webhook_allow_loopback_http: bool,
    pub webhook_retry_schedule: RetrySchedule,
    /// An endpoint failing continuously this long is disabled.
    pub webhook_disable_after_seconds: i64,
    pub webhook_timeout_ms: u64,
    /// The ElevenLabs API (`ELEVENLABS_API_BASE`): Twilio calls are handed to
    /// agents through its `register-call`; a local fake in tests.
    pub elevenlabs_api_base: String,
    /// How long a Twilio voice webhook waits for ElevenLabs before it
    /// forwards the call instead (Twilio itself gives up after 15 s).
    pub elevenlabs_timeout_ms: u64,
    /// The API's public base URL (`PUBLIC_BASE_URL`, e.g. a custom domain),
    /// for the URLs an integration is given and Twilio signs; when unset,
    /// the one each request arrived at.
    pub public_base_url: Option<String>,
    /// How long a Twilio call handed to an ElevenLabs agent waits for the
    /// agent's post-call transcript before it is completed without one.
    pub transcript_wait_seconds: u64,
}

pub const MAX_API_KEY_CACHE_SECONDS: u64 = 60;
/// 45 s: above the 30 s timeout of the e-mail sender and the dispatcher,
/// below the 60 s visibility timeout of their queues.
pub const DEFAULT_CLAIM_LEASE_SECONDS: u64 = 45;

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(ConfigError::Missing(name))
        };
        let number = |name: &'static str, default: u64, max: u64| -> Result<u64, ConfigError> {
            match get(name).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n <= max => Ok(n),
                    _ => Err(ConfigError::Invalid {
                        name,
                        reason: format!("expected a whole number up to {max}"),
                    }),
                },
            }
        };

        let region_name = get("DEFAULT_PHONE_REGION").unwrap_or_else(|| "US".into());
        let default_phone_region: country::Id =
            region_name
                .trim()
                .parse()
                .map_err(|_| ConfigError::Invalid {
                    name: "DEFAULT_PHONE_REGION",
                    reason: "expected an ISO 3166 country code such as US".into(),
                })?;

        let stage = get("PULSARA_STAGE").unwrap_or_else(|| "dev".into());
        let webhook_retry_schedule =
            match get("WEBHOOK_RETRY_SCHEDULE").filter(|v| !v.trim().is_empty()) {
                None => RetrySchedule::standard(),
                Some(v) => RetrySchedule::parse(&v).map_err(|reason| ConfigError::Invalid {
                    name: "WEBHOOK_RETRY_SCHEDULE",
                    reason,
                })?,
            };
        let sender_domain = required("SENDER_DOMAIN")?.trim().to_ascii_lowercase();
        let loopback = get("WEBHOOK_ALLOW_LOOPBACK_HTTP").is_some_and(|v| v.trim() == "true");
        Ok(Config {
            webhook_allow_loopback_http: loopback && stage == "local",
            webhook_retry_schedule,
            stage,
            tables: Tables {
                api_keys: required("API_KEYS_TABLE")?,
                admin_users: required("ADMIN_USERS_TABLE")?,
                restaurants: required("RESTAURANTS_TABLE")?,
                phone_numbers: required("PHONE_NUMBERS_TABLE")?,
                rate_limits: required("RATE_LIMITS_TABLE")?,
                calls: required("CALLS_TABLE")?,
                webhooks: required("WEBHOOKS_TABLE")?,
                webhook_deliveries: required("WEBHOOK_DELIVERIES_TABLE")?,
                integrations: required("INTEGRATIONS_TABLE")?,
            },
            secrets_kms_key_arn: get("SECRETS_KMS_KEY_ARN").filter(|v| !v.trim().is_empty()),
            admin_token_ttl_seconds: number("ADMIN_TOKEN_TTL_SECONDS", 900, 86_400)? as i64,
            api_key_cache_seconds: number("API_KEY_CACHE_SECONDS", 30, MAX_API_KEY_CACHE_SECONDS)?,
            default_rate_limit_per_minute: number("DEFAULT_RATE_LIMIT_PER_MINUTE", 600, 1_000_000)?
                as u32,
            login_limit_per_email: number("LOGIN_LIMIT_PER_EMAIL_PER_MINUTE", 5, 10_000)? as u32,
            login_limit_per_ip: number("LOGIN_LIMIT_PER_IP_PER_MINUTE", 20, 10_000)? as u32,
            api_key_failure_limit_per_ip: number(
                "API_KEY_FAILURE_LIMIT_PER_IP_PER_MINUTE",
                10,
                10_000,
            )?
            .max(1) as u32,
            default_phone_region,
            max_body_bytes: number("MAX_BODY_BYTES", 64 * 1024, 6 * 1024 * 1024)? as usize,
            default_rotation_grace_seconds: number(
                "API_KEY_ROTATION_GRACE_SECONDS",
                86_400,
                30 * 86_400,
            )? as i64,
            email_queue_url: required("EMAIL_QUEUE_URL")?,
            email_dlq_url: required("EMAIL_DLQ_URL")?,
            claim_lease_seconds: number("CLAIM_LEASE_SECONDS", DEFAULT_CLAIM_LEASE_SECONDS, 3_600)?
                .max(1),
            sender_email: sender_email(required("SENDER_EMAIL")?, &sender_domain)?,
            sender_domain,
            ses_configuration_set: required("SES_CONFIGURATION_SET")?,
            call_retention_days: number("CALL_RETENTION_DAYS", 365, 3_650)?.max(1) as i64,
            email_max_attempts: number("EMAIL_MAX_ATTEMPTS", 6, 100)?.max(1) as u32,
            email_retry_base_seconds: number("EMAIL_RETRY_BASE_SECONDS", 30, 900)?.max(1),
            webhook_queue_url: required("WEBHOOK_QUEUE_URL")?,
            webhook_dlq_url: required("WEBHOOK_DLQ_URL")?,
            webhook_disable_after_seconds: number(
                "WEBHOOK_DISABLE_AFTER_SECONDS",
                5 * 86_400,
                90 * 86_400,
            )? as i64,
            webhook_timeout_ms: number("WEBHOOK_TIMEOUT_MS", 5_000, 30_000)?.max(100),
            elevenlabs_api_base: get("ELEVENLABS_API_BASE")
                .map(|v| v.trim().trim_end_matches('/').to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "https://api.elevenlabs.io".into()),
            elevenlabs_timeout_ms: number("ELEVENLABS_TIMEOUT_MS", 2_000, 10_000)?.max(100),
            transcript_wait_seconds: number("TRANSCRIPT_WAIT_SECONDS", 300, 900)?,
            public_base_url: get("PUBLIC_BASE_URL")
                .map(|v| v.trim().trim_end_matches('/').to_string())
                .filter(|v| !v.is_empty()),
        })
    }
}

/// The sender's address, checked to be at `domain`: SES only lets us send
/// from the domain identity (and IAM only allows that identity), so anything
/// else would fail every e-mail; better to fail the cold start.
fn sender_email(address: String, domain: &str) -> Result<String, ConfigError> {
    let at = address
        .trim()
        .rsplit_once('@')
        .map(|(_, d)| d.to_ascii_lowercase());
    if at.as_deref() == Some(domain) {
        Ok(address.trim().to_string())
    } else {
        Err(ConfigError::Invalid {
            name: "SENDER_EMAIL",
            reason: format!("must be an address at SENDER_DOMAIN ({domain})"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const BASE: &[(&str, &str)] = &[
        ("API_KEYS_TABLE", "k"),
        ("ADMIN_USERS_TABLE", "u"),
        ("RESTAURANTS_TABLE", "r"),
        ("PHONE_NUMBERS_TABLE", "p"),
        ("RATE_LIMITS_TABLE", "l"),
        ("CALLS_TABLE", "c"),
        ("EMAIL_QUEUE_URL", "http://q"),
        ("EMAIL_DLQ_URL", "http://q-dlq"),
        ("SENDER_EMAIL", "n@pulsara.example"),
        ("SENDER_DOMAIN", "pulsara.example"),
        ("SES_CONFIGURATION_SET", "pulsara-email"),
        ("WEBHOOKS_TABLE", "w"),
        ("WEBHOOK_DELIVERIES_TABLE", "d"),
        ("WEBHOOK_QUEUE_URL", "http://wq"),
        ("WEBHOOK_DLQ_URL", "http://wdlq"),
        ("INTEGRATIONS_TABLE", "i"),
    ];

    #[test]
    fn defaults_and_bounds() {
        let mut ok = BASE.to_vec();
        let c = Config::from_lookup(env(&ok)).unwrap();
        assert_eq!(c.api_key_cache_seconds, 30);
        assert_eq!(c.default_rotation_grace_seconds, 86_400);
        assert_eq!(c.default_phone_region, country::Id::US);
        assert!(c.secrets_kms_key_arn.is_none());
        assert!(!c.webhook_allow_loopback_http);
        ok.push(("WEBHOOK_ALLOW_LOOPBACK_HTTP", "true"));
        assert!(
            !Config::from_lookup(env(&ok))
                .unwrap()
                .webhook_allow_loopback_http,
            "never outside local"
        );
        ok.push(("PULSARA_STAGE", "local"));
        assert!(
            Config::from_lookup(env(&ok))
                .unwrap()
                .webhook_allow_loopback_http
        );
        ok.push(("API_KEY_CACHE_SECONDS", "61"));
        assert!(
            Config::from_lookup(env(&ok)).is_err(),
            "revocation bound is 60 s"
        );
    }

    #[test]
    fn the_sender_must_be_at_the_sender_domain() {
        let with = |email: &'static str, domain: &'static str| {
            let mut pairs: Vec<(&str, &str)> = BASE
                .iter()
                .copied()
                .filter(|(k, _)| !k.starts_with("SENDER_"))
                .collect();
            pairs.push(("SENDER_EMAIL", email));
            pairs.push(("SENDER_DOMAIN", domain));
            Config::from_lookup(env(&pairs))
        };
        let ok = with("calls@Pulsara.example", "pulsara.example").unwrap();
        assert_eq!(ok.sender_domain, "pulsara.example");
        for (email, domain) in [
            ("calls@other.example", "pulsara.example"),
            ("calls@mail.pulsara.example", "pulsara.example"),
            ("calls@evilpulsara.example", "pulsara.example"),
            ("no-at-sign", "pulsara.example"),
        ] {
            assert!(
                matches!(
                    with(email, domain),
                    Err(ConfigError::Invalid {
                        name: "SENDER_EMAIL",
                        ..
                    })
                ),
                "{email}"
            );
        }
        let mut no_set: Vec<(&str, &str)> = BASE.to_vec();
        no_set.retain(|(k, _)| *k != "SES_CONFIGURATION_SET");
        assert!(matches!(
            Config::from_lookup(env(&no_set)),
            Err(ConfigError::Missing("SES_CONFIGURATION_SET"))
        ));
    }
}
