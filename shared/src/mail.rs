//! Sending mail through SES v2.

use crate::domain::email_address::EmailAddress;
use aws_sdk_sesv2::error::DisplayErrorContext;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent as SesContent, Message};
use aws_sdk_sesv2::Client;

use crate::domain::email::EmailContent;

#[derive(Debug, thiserror::Error)]
#[error("SES refused or failed the e-mail: {0}")]
pub struct MailError(pub String);

#[derive(Clone)]
pub struct Mailer {
    client: Client,
    from: String,
}

fn content(data: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError(e.to_string()))
}

impl Mailer {
    pub fn new(client: Client, from: String) -> Self {
        Self { client, from }
    }

    /// Sends one message to `to`; returns SES's message id.
    pub async fn send(
        &self,
        to: &[EmailAddress],
        mail: &EmailContent,
    ) -> Result<String, MailError> {
        let message = Message::builder()
            .subject(content(&mail.subject)?)
            .body(
                Body::builder()
                    .text(content(&mail.text)?)
                    .html(content(&mail.html)?)
                    .build(),
            )
            .build();
        let out = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(to.iter().map(|a| a.to_string()).collect()))
                    .build(),
            )
            .content(SesContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| MailError(DisplayErrorContext(&e).to_string()))?;
        Ok(out.message_id.unwrap_or_default())
    }
}
