//! Platform integrations: a voice platform (ElevenLabs, Twilio, Vapi, Retell) pointed at
//! us as it is, with the secret we verify its requests with. An integration
//! belongs to the key family that registered it, as a webhook does, and acts
//! for that family: the calls it records are the family's, and it sees only
//! the restaurants the family's key may see.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{ApiKeyId, IntegrationId, RestaurantId};
use super::validate::{Errors, ValidationErrors};
use crate::crypto::envelope::{Context, Sealed};

/// Integrations one key family may hold.
pub const MAX_INTEGRATIONS_PER_OWNER: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum Platform {
    Elevenlabs,
    Twilio,
    Vapi,
    Retell,
}

impl Platform {
    pub const ALL: [Platform; 4] = [
        Platform::Elevenlabs,
        Platform::Twilio,
        Platform::Vapi,
        Platform::Retell,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Elevenlabs => "elevenlabs",
            Platform::Twilio => "twilio",
            Platform::Vapi => "vapi",
            Platform::Retell => "retell",
        }
    }

    pub fn parse(raw: &str) -> Option<Platform> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    /// The routes the platform calls, after `/ivr/integrations/{id}/`.
    pub fn routes(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Platform::Elevenlabs => &[
                ("conversationInit", "elevenlabs/conversation-init"),
                ("postCall", "elevenlabs/post-call"),
            ],
            Platform::Twilio => &[("voice", "twilio/voice"), ("status", "twilio/status")],
            Platform::Vapi => &[("serverUrl", "vapi")],
            Platform::Retell => &[
                ("inboundWebhook", "retell/inbound"),
                ("events", "retell/events"),
            ],
        }
    }
}

/// `POST /ivr/integrations` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateIntegrationRequest {
    pub platform: String,
    pub secret: String,
    #[serde(default)]
    pub elevenlabs_api_key: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A registration that passed validation; the secrets are still in the clear.
pub struct ValidIntegration {
    pub platform: Platform,
    pub secret: String,
    pub elevenlabs_api_key: Option<String>,
    pub description: Option<String>,
}

impl std::fmt::Debug for ValidIntegration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidIntegration")
            .field("platform", &self.platform)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

fn secret_chars_ok(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

impl CreateIntegrationRequest {
    pub fn validate(self) -> Result<ValidIntegration, ValidationErrors> {
        let mut e = Errors::new();
        let names = Platform::ALL.map(Platform::as_str).join(", ");
        let platform = Platform::parse(self.platform.trim());
        if platform.is_none() {
            e.add("platform", format!("must be one of {names}"));
        }
        let secret = self.secret.trim().to_string();
        match platform {
            _ if !secret_chars_ok(&secret) || secret.len() > 512 => e.add(
                "secret",
                "must be 1 to 512 printable characters without spaces",
            ),
            // Twilio auth tokens are 32 hex digits; an Account SID (AC…) or an
            // API key secret here would fail every signature check.
            Some(Platform::Twilio)
                if !(secret.len() == 32 && secret.bytes().all(|b| b.is_ascii_hexdigit())) =>
            {
                e.add(
                    "secret",
                    "must be the Twilio account's auth token (32 hexadecimal characters)",
                )
            }
            // ElevenLabs generates long HMAC secrets and refuses ones under 16.
            Some(Platform::Elevenlabs) if secret.len() < 16 => e.add(
                "secret",
                "must be the webhook's HMAC secret from ElevenLabs (at least 16 characters)",
            ),
            // The Vapi credential's secret is chosen by the user: a short one
            // is guessable, and it is all that guards the ring path.
            Some(Platform::Vapi) if secret.len() < 16 => e.add(
                "secret",
                "must be the Vapi server credential's secret (at least 16 characters)",
            ),
            // Retell signs webhooks with an API key (`key_…`, the one with the
            // webhook badge); its public key or an agent id here would fail
            // every signature check.
            Some(Platform::Retell)
                if secret.len() < 20 || secret.starts_with("agent_") || secret.starts_with("public_key_") =>
            {
                e.add(
                    "secret",
                    "must be the Retell API key that signs webhooks (the one with the webhook badge)",
                )
            }
            _ => {}
        }
        let elevenlabs_api_key = match (
            self.elevenlabs_api_key.map(|k| k.trim().to_string()),
            platform,
        ) {
            (None, _) => None,
            (Some(k), _) if k.is_empty() => None,
            (Some(_), Some(p)) if p != Platform::Twilio => {
                e.add(
                    "elevenlabsApiKey",
                    "is only for twilio integrations (the hand-over to an ElevenLabs agent)",
                );
                None
            }
            (Some(k), _) if !secret_chars_ok(&k) || k.len() < 16 || k.len() > 256 => {
                e.add(
                    "elevenlabsApiKey",
                    "must be an ElevenLabs API key (16 to 256 printable characters)",
                );
                None
            }
            (Some(k), _) => Some(k),
        };
        let description = self.description.map(|d| e.text("description", &d, 200));
        e.finish()?;
        Ok(ValidIntegration {
            platform: platform.expect("checked above"),
            secret,
            elevenlabs_api_key,
            description: description.filter(|d| !d.is_empty()),
        })
    }
}

/// An integration as stored: its secrets sealed under the secrets KMS key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationRecord {
    pub integration_id: IntegrationId,
    /// The key family it belongs to and acts for.
    pub owner_id: ApiKeyId,
    /// The key that registered it: the family's current key is found from it.
    pub key_id: ApiKeyId,
    pub platform: Platform,
    /// The ElevenLabs webhook secret, the Twilio auth token, the Vapi server
    /// credential's secret or the Retell API key.
    pub secret: Sealed,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elevenlabs_api_key: Option<Sealed>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The registering key's restaurant restriction, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restaurant_ids: Option<Vec<RestaurantId>>,
    pub created_at: DateTime<Utc>,
}

/// Which of an integration's secrets a sealed value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// What the platform's requests are verified with.
    Platform,
    /// The ElevenLabs API key a Twilio integration hands calls over with.
    ElevenlabsApiKey,
}

/// The KMS/GCM context of one of an integration's secrets: a sealed value
/// copied to another integration, or to the other field, opens nowhere.
pub fn secret_context(id: &IntegrationId, kind: SecretKind) -> Context {
    let purpose = match kind {
        SecretKind::Platform => "integration-platform-secret",
        SecretKind::ElevenlabsApiKey => "integration-elevenlabs-api-key",
    };
    Context::new([("purpose", purpose), ("integrationId", id.as_str())])
}

/// The URLs to paste into the platform's settings, by name (`base`: the
/// API's public base URL, e.g. `https://abc.execute-api.us-east-1.amazonaws.com`).
pub fn urls(base: &str, id: &IntegrationId, platform: Platform) -> Vec<(&'static str, String)> {
    let base = base.trim_end_matches('/');
    platform
        .routes()
        .iter()
        .map(|(name, route)| (*name, format!("{base}/ivr/integrations/{id}/{route}")))
        .collect()
}

/// The public base URL of a request for `path`, which ends with `route_tail`
/// (e.g. `/ivr/integrations`): whatever precedes it (a stage, a mapping) is
/// part of the base.
pub fn base_url(scheme: &str, host: &str, path: &str, route_tail: &str) -> String {
    let prefix = path.find(route_tail).map_or("", |i| &path[..i]);
    format!("{scheme}://{host}{}", prefix.trim_end_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ids::Id;

    fn req(platform: &str, secret: &str, key: Option<&str>) -> CreateIntegrationRequest {
        CreateIntegrationRequest {
            platform: platform.into(),
            secret: secret.into(),
            elevenlabs_api_key: key.map(str::to_string),
            description: Some("  front desk ".into()),
        }
    }

    fn fields(r: Result<ValidIntegration, ValidationErrors>) -> Vec<String> {
        r.unwrap_err().0.into_iter().map(|f| f.field).collect()
    }

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn each_platform_takes_its_own_secret() {
        let ok = req("twilio", TOKEN, Some("sk_0123456789abcdef0123"))
            .validate()
            .unwrap();
        assert_eq!(ok.platform, Platform::Twilio);
        assert_eq!(ok.description.as_deref(), Some("front desk"));
        assert!(ok.elevenlabs_api_key.is_some());
        let el = req("elevenlabs", "wsec_abcdefghijklmnopqrstu", None)
            .validate()
            .unwrap();
        assert_eq!(el.platform, Platform::Elevenlabs);
        for (platform, secret) in [
            ("vapi", "vapi-server-secret-0123"),
            ("retell", "key_0123456789abcdef0123456789"),
        ] {
            let ok = req(platform, secret, None).validate().unwrap();
            assert_eq!(ok.platform.as_str(), platform);
        }
        assert!(
            !format!("{el:?}").contains("wsec_"),
            "Debug never shows a secret"
        );
    }

    #[test]
    fn wrong_secrets_are_refused_with_the_reason() {
        assert_eq!(
            fields(req("twilio", "AC0123456789abcdef0123456789abcdef", None).validate()),
            ["secret"]
        );
        assert_eq!(
            fields(req("elevenlabs", "short", None).validate()),
            ["secret"]
        );
        assert_eq!(
            fields(req("elevenlabs", "has a space in it ok", None).validate()),
            ["secret"]
        );
        assert_eq!(
            fields(
                req(
                    "elevenlabs",
                    "wsec_abcdefghijklmnopqrstu",
                    Some("sk_0123456789abcdef")
                )
                .validate()
            ),
            ["elevenlabsApiKey"]
        );
        assert_eq!(fields(req("vonage", TOKEN, None).validate()), ["platform"]);
        assert_eq!(
            fields(req("vapi", "short-secret", None).validate()),
            ["secret"]
        );
        assert_eq!(
            fields(req("retell", "agent_0123456789abcdef0123", None).validate()),
            ["secret"]
        );
        assert_eq!(
            fields(
                req(
                    "retell",
                    "key_0123456789abcdef0123",
                    Some("sk_0123456789abcdef")
                )
                .validate()
            ),
            ["elevenlabsApiKey"]
        );
        assert_eq!(
            fields(req("twilio", TOKEN, Some("short")).validate()),
            ["elevenlabsApiKey"]
        );
    }

    #[test]
    fn urls_and_base() {
        let id = IntegrationId::parse("int_0197d8c0f1e27b6a9c3d4e5f60718293").unwrap();
        let u = urls("https://api.example/", &id, Platform::Twilio);
        assert_eq!(
            u[0],
            (
                "voice",
                format!("https://api.example/ivr/integrations/{id}/twilio/voice")
            )
        );
        let v = urls("https://api.example", &id, Platform::Retell);
        assert_eq!(
            v.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            ["inboundWebhook", "events"]
        );
        assert!(urls("https://api.example", &id, Platform::Vapi)[0]
            .1
            .ends_with(&format!("/ivr/integrations/{id}/vapi")));
        assert_eq!(
            base_url(
                "http",
                "localhost:5000",
                "/api/ivr/integrations",
                "/ivr/integrations"
            ),
            "http://localhost:5000/api"
        );
        assert_eq!(
            base_url(
                "https",
                "x.example",
                "/ivr/integrations",
                "/ivr/integrations"
            ),
            "https://x.example"
        );
    }

    #[test]
    fn contexts_differ_by_integration_and_kind() {
        let a = IntegrationId::generate();
        let b = IntegrationId::generate();
        assert_ne!(
            secret_context(&a, SecretKind::Platform),
            secret_context(&b, SecretKind::Platform)
        );
        assert_ne!(
            secret_context(&a, SecretKind::Platform),
            secret_context(&a, SecretKind::ElevenlabsApiKey)
        );
    }
}
