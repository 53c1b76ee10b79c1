//! Sending mail through SES v2.

use crate::domain::email_address::EmailAddress;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_sesv2::types::{
    Body, Content, Destination, EmailContent as SesContent, Message, MessageTag,
};
use aws_sdk_sesv2::Client;

use crate::domain::email::EmailContent;

#[derive(Debug, thiserror::Error)]
#[error("SES refused or failed the e-mail: {message}")]
pub struct MailError {
    pub message: String,
    /// SES will refuse it again: see `is_permanent`.
    pub permanent: bool,
}

/// SES v2 errors that sending again cannot cure: the message itself is refused
/// (`MessageRejected`, `BadRequestException`), or the account or identity needs
/// a person first (unverified MAIL FROM, suspended or paused sending, a missing
/// configuration set). Throttling, quotas and service errors are worth a retry.
pub fn is_permanent(code: &str) -> bool {
    matches!(
        code,
        "MessageRejected"
            | "MailFromDomainNotVerifiedException"
            | "AccountSuspendedException"
            | "SendingPausedException"
            | "NotFoundException"
            | "BadRequestException"
    )
}

#[derive(Clone)]
pub struct Mailer {
    client: Client,
    from: String,
    /// Every message goes through it: its event destination is how bounces
    /// and complaints come back (tagged, so we know whose e-mail it was).
    configuration_set: String,
}

fn content(data: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError {
            message: e.to_string(),
            permanent: true,
        })
}

impl Mailer {
    pub fn new(client: Client, from: String, configuration_set: String) -> Self {
        Self {
            client,
            from,
            configuration_set,
        }
    }

    /// Sends one message to `to`, tagged with `tags` (name, value: SES
    /// allows letters, digits, `_` and `-`, which our ids are); returns SES's
    /// message id.
    pub async fn send(
        &self,
        to: &[EmailAddress],
        mail: &EmailContent,
        tags: &[(&str, &str)],
    ) -> Result<String, MailError> {
        let tags = tags
            .iter()
            .map(|(name, value)| {
                MessageTag::builder()
                    .name(*name)
                    .value(*value)
                    .build()
                    .map_err(|e| MailError {
                        message: e.to_string(),
                        permanent: true,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
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
            .configuration_set_name(&self.configuration_set)
            .set_email_tags(Some(tags))
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(to.iter().map(|a| a.to_string()).collect()))
                    .build(),
            )
            .content(SesContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| MailError {
                permanent: e.code().is_some_and(is_permanent),
                message: DisplayErrorContext(&e).to_string(),
            })?;
        Ok(out.message_id.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn refusals_are_permanent_throttling_and_outages_are_not() {
        for code in [
            "MessageRejected",
            "MailFromDomainNotVerifiedException",
            "AccountSuspendedException",
        ] {
            assert!(super::is_permanent(code), "{code}");
        }
        for code in [
            "TooManyRequestsException",
            "LimitExceededException",
            "InternalFailure",
            "ServiceUnavailable",
        ] {
            assert!(!super::is_permanent(code), "{code}");
        }
    }
}
