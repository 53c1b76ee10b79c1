//! The ElevenLabs API, for the one call we make to it: `register-call`, which
//! hands a Twilio call to an agent. ElevenLabs answers with the TwiML that
//! connects the caller's audio to the agent (a `<Connect><Stream>`), which we
//! return to Twilio as it is (SDK 2.78: `conversational_ai.twilio.register_call`,
//! `POST /v1/convai/twilio/register-call`, body `{agent_id, from_number,
//! to_number, direction, conversation_initiation_client_data}`, answer
//! text/xml).
//!
//! Built once per cold start; the base URL is configuration
//! (`ELEVENLABS_API_BASE`) so tests point it at a local fake. The timeout
//! covers the whole exchange: the caller is ringing meanwhile.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// More than any TwiML ElevenLabs returns; a bigger answer is not TwiML.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

pub struct ElevenLabsClient {
    http: reqwest::Client,
    register_url: String,
}

/// One call to hand over.
pub struct RegisterCall<'a> {
    pub agent_id: &'a str,
    pub from_number: &'a str,
    pub to_number: &'a str,
    /// The agent's dynamic variables (the conversation-init answer's).
    pub dynamic_variables: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Body<'a> {
    agent_id: &'a str,
    from_number: &'a str,
    to_number: &'a str,
    direction: &'static str,
    conversation_initiation_client_data: InitData<'a>,
}

#[derive(Serialize)]
struct InitData<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    dynamic_variables: &'a BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterCallError {
    #[error("ElevenLabs did not answer in time")]
    Timeout,
    #[error("ElevenLabs answered {0}")]
    Status(u16),
    #[error("could not reach ElevenLabs")]
    Transport(#[source] reqwest::Error),
    #[error("ElevenLabs' answer is not TwiML")]
    NotTwiml,
}

impl ElevenLabsClient {
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            register_url: format!(
                "{}/v1/convai/twilio/register-call",
                base_url.trim_end_matches('/')
            ),
        })
    }

    /// The TwiML that connects the call to the agent. The API key goes only
    /// in its header (never logged).
    pub async fn register_call(
        &self,
        api_key: &str,
        call: &RegisterCall<'_>,
    ) -> Result<String, RegisterCallError> {
        let body = Body {
            agent_id: call.agent_id,
            from_number: call.from_number,
            to_number: call.to_number,
            direction: "inbound",
            conversation_initiation_client_data: InitData {
                kind: "conversation_initiation_client_data",
                dynamic_variables: call.dynamic_variables,
            },
        };
        let failed = |e: reqwest::Error| {
            if e.is_timeout() {
                RegisterCallError::Timeout
            } else {
                RegisterCallError::Transport(e)
            }
        };
        let mut resp = self
            .http
            .post(&self.register_url)
            .header("xi-api-key", api_key)
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&body).expect("the body serializes"))
            .send()
            .await
            .map_err(failed)?;
        if !resp.status().is_success() {
            return Err(RegisterCallError::Status(resp.status().as_u16()));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(failed)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_ANSWER_BYTES {
                return Err(RegisterCallError::NotTwiml);
            }
        }
        let text = String::from_utf8(bytes).map_err(|_| RegisterCallError::NotTwiml)?;
        if !text.contains("<Response") {
            return Err(RegisterCallError::NotTwiml);
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-connection HTTP server answering `status` and `body` after `delay`;
    /// returns its base URL and the request it got.
    async fn serve(
        status: u16,
        body: &'static str,
        delay: Duration,
    ) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 16 * 1024];
            let mut got = Vec::new();
            // Headers, then the body by content-length.
            loop {
                let n = sock.read(&mut buf).await.unwrap();
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if rest.len() >= len {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
            tokio::time::sleep(delay).await;
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(answer.as_bytes()).await;
            String::from_utf8_lossy(&got).to_string()
        });
        (base, task)
    }

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([("restaurant_name".to_string(), "Luigi's".to_string())])
    }

    #[tokio::test]
    async fn register_call_returns_the_twiml_and_sends_the_documented_body() {
        let twiml = r#"<?xml version="1.0"?><Response><Connect><Stream url="wss://x"/></Connect></Response>"#;
        let (base, got) = serve(200, twiml, Duration::ZERO).await;
        let client = ElevenLabsClient::new(&base, Duration::from_secs(2)).unwrap();
        let v = vars();
        let call = RegisterCall {
            agent_id: "agent_1",
            from_number: "+15559871234",
            to_number: "+15551234567",
            dynamic_variables: &v,
        };
        assert_eq!(client.register_call("xi-key", &call).await.unwrap(), twiml);
        let request = got.await.unwrap();
        assert!(request.starts_with("POST /v1/convai/twilio/register-call "));
        assert!(request.to_ascii_lowercase().contains("xi-api-key: xi-key"));
        let body: serde_json::Value =
            serde_json::from_str(request.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(body["agent_id"], "agent_1");
        assert_eq!(body["direction"], "inbound");
        assert_eq!(
            body["conversation_initiation_client_data"]["dynamic_variables"]["restaurant_name"],
            "Luigi's"
        );
    }

    #[tokio::test]
    async fn failures_slowness_and_non_twiml_are_errors() {
        let v = vars();
        let call = RegisterCall {
            agent_id: "a",
            from_number: "",
            to_number: "+1",
            dynamic_variables: &v,
        };
        let (base, _) = serve(500, "oops", Duration::ZERO).await;
        let client = ElevenLabsClient::new(&base, Duration::from_secs(2)).unwrap();
        assert!(matches!(
            client.register_call("k", &call).await,
            Err(RegisterCallError::Status(500))
        ));
        let (base, _) = serve(200, "{\"ok\":true}", Duration::ZERO).await;
        let client = ElevenLabsClient::new(&base, Duration::from_secs(2)).unwrap();
        assert!(matches!(
            client.register_call("k", &call).await,
            Err(RegisterCallError::NotTwiml)
        ));
        let (base, _) = serve(200, "<Response/>", Duration::from_secs(3)).await;
        let client = ElevenLabsClient::new(&base, Duration::from_millis(200)).unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(
            client.register_call("k", &call).await,
            Err(RegisterCallError::Timeout)
        ));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
