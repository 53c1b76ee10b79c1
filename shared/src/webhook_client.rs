//! The HTTP client that delivers webhooks: short timeout, no redirects, and a
//! DNS resolver that refuses inward addresses, so the address checked is the
//! address connected to (no DNS-rebinding window).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::ssrf::{check_address, check_url, TargetRules};

struct GuardedResolver {
    rules: TargetRules,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = self.rules;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::time::timeout(
                Duration::from_secs(3),
                tokio::net::lookup_host((host.as_str(), 0)),
            )
            .await
            .map_err(|_| format!("resolving {host} timed out"))??
            .collect();
            // Any inward address refuses the whole name: a host that resolves
            // partly inward is not a public endpoint.
            for a in &addrs {
                // The scheme is checked on the URL; here any loopback is only
                // acceptable when plain-http loopback is allowed at all.
                let scheme = if rules.allow_loopback_http {
                    "http"
                } else {
                    "https"
                };
                check_address(a.ip(), scheme, rules).map_err(|e| format!("{host} {e}"))?;
            }
            if addrs.is_empty() {
                return Err(format!("{host} has no addresses").into());
            }
            let out: Addrs = Box::new(addrs.into_iter());
            Ok(out)
        })
    }
}

/// Resolves and checks a callback URL's host now (used at registration).
pub async fn check_target(raw: &str, rules: TargetRules) -> Result<url::Url, String> {
    let url = check_url(raw, rules)?;
    if let Some(url::Host::Domain(host)) = url.host() {
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = match tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::lookup_host((host, port)),
        )
        .await
        {
            Ok(Ok(a)) => a.collect(),
            _ => return Err(format!("host {host} could not be resolved")),
        };
        if addrs.is_empty() {
            return Err(format!("host {host} could not be resolved"));
        }
        for a in addrs {
            check_address(a.ip(), url.scheme(), rules)?;
        }
    }
    Ok(url)
}

#[derive(Debug, Clone)]
pub struct SendResult {
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
}

#[derive(Clone)]
pub struct WebhookClient {
    http: reqwest::Client,
    rules: TargetRules,
}

impl WebhookClient {
    pub fn new(rules: TargetRules, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver { rules }))
            .user_agent("Pulsara-Webhooks/1.0")
            .build()
            .expect("static client configuration is valid");
        Self { http, rules }
    }

    /// One delivery attempt. Never fails: every outcome is a `SendResult`.
    pub async fn send(&self, url: &str, headers: &[(&str, String)], body: String) -> SendResult {
        let started = Instant::now();
        let done = |status: Option<u16>, error: Option<String>| SendResult {
            status,
            latency_ms: started.elapsed().as_millis() as u64,
            error,
        };
        // The URL itself (an IP literal bypasses the resolver) is checked again now.
        if let Err(e) = check_url(url, self.rules) {
            return done(None, Some(format!("callback URL refused: {e}")));
        }
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let error = (!resp.status().is_success()).then(|| format!("HTTP {status}"));
                done(Some(status), error)
            }
            Err(e) => {
                let why = if e.is_timeout() {
                    "timed out".to_string()
                } else if e.is_connect() {
                    format!(
                        "connection failed: {}",
                        std::error::Error::source(&e)
                            .map(|s| s.to_string())
                            .unwrap_or_default()
                    )
                } else {
                    e.to_string()
                };
                done(None, Some(why.chars().take(300).collect()))
            }
        }
    }
}
