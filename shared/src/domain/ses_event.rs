//! SES event publishing: the bounce and complaint records a configuration
//! set's event destination publishes to SNS, read from the Lambda SNS event
//! that carries them. Pure: parsing, and what a record means for a call's
//! e-mail and its restaurant's suppression list.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::call::{EmailState, EmailStatus};
use super::email_address::EmailAddress;
use super::ids::{CallId, Id, RestaurantId};

/// The Lambda event of an SNS subscription: only what we read of it.
#[derive(Debug, Deserialize)]
pub struct SnsEvent {
    #[serde(rename = "Records", default)]
    pub records: Vec<SnsRecord>,
}

#[derive(Debug, Deserialize)]
pub struct SnsRecord {
    #[serde(rename = "Sns")]
    pub sns: SnsMessage,
}

#[derive(Debug, Deserialize)]
pub struct SnsMessage {
    #[serde(rename = "MessageId", default)]
    pub message_id: String,
    /// The SES record, as a JSON string.
    #[serde(rename = "Message", default)]
    pub message: String,
}

/// Why an SNS message is not a record we act on (logged, then dropped:
/// SNS redelivering it cannot make it readable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SesEventError {
    #[error("not an SES event record: {0}")]
    Malformed(String),
    #[error("event type {0} is not a bounce or a complaint")]
    Ignored(String),
    #[error("the mail carries no callId tag of ours")]
    Untagged,
}

/// Bounce types as SES names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BounceType {
    /// Hard: the address does not exist or refuses us for good.
    Permanent,
    /// Soft: mailbox full, message too large, auto-reply … SES already retried.
    Transient,
    /// SES could not tell; treated like a transient one (nothing changes).
    Undetermined,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feedback {
    Bounce(BounceType),
    Complaint,
}

/// A bounce or complaint about one of our call e-mails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesEvent {
    pub feedback: Feedback,
    /// SES's id of the message (the one `SendEmail` answered with).
    pub message_id: String,
    pub call_id: CallId,
    /// From the mail's tags; the call record is the authority, this is for logs.
    pub restaurant_id: Option<RestaurantId>,
    /// The addresses bounced or complained about (readable ones only).
    pub recipients: Vec<EmailAddress>,
    pub at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    // Event publishing says eventType; identity notifications say notificationType.
    #[serde(alias = "notificationType")]
    event_type: String,
    mail: Mail,
    #[serde(default)]
    bounce: Option<Bounce>,
    #[serde(default)]
    complaint: Option<Complaint>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    message_id: String,
    #[serde(default)]
    tags: std::collections::HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: BounceType,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    timestamp: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
}

/// Reads an SES record (the SNS message's text). Recipients SES writes as
/// `Name <addr>` are reduced to the address; unreadable ones are dropped.
pub fn parse(message: &str, now: DateTime<Utc>) -> Result<SesEvent, SesEventError> {
    let record: Record = serde_json::from_str(message)
        .map_err(|e| SesEventError::Malformed(e.to_string().chars().take(200).collect()))?;
    let tag = |name: &str| {
        record
            .mail
            .tags
            .get(name)
            .and_then(|v| v.first())
            .map(String::as_str)
    };
    let (feedback, recipients, at) =
        match (record.event_type.as_str(), record.bounce, record.complaint) {
            ("Bounce", Some(b), _) => (
                Feedback::Bounce(b.bounce_type),
                b.bounced_recipients,
                b.timestamp,
            ),
            ("Complaint", _, Some(c)) => {
                (Feedback::Complaint, c.complained_recipients, c.timestamp)
            }
            ("Bounce" | "Complaint", _, _) => {
                return Err(SesEventError::Malformed(format!(
                    "{} without its details",
                    record.event_type
                )))
            }
            (other, _, _) => return Err(SesEventError::Ignored(other.chars().take(40).collect())),
        };
    let call_id = tag("callId")
        .and_then(CallId::parse)
        .ok_or(SesEventError::Untagged)?;
    let restaurant_id = tag("restaurantId").and_then(RestaurantId::parse);
    let recipients = recipients
        .iter()
        .filter_map(|r| EmailAddress::parse(bare_address(&r.email_address)).ok())
        .collect();
    Ok(SesEvent {
        feedback,
        message_id: record.mail.message_id,
        call_id,
        restaurant_id,
        recipients,
        at: at.unwrap_or(now),
    })
}

fn bare_address(raw: &str) -> &str {
    match (raw.rfind('<'), raw.rfind('>')) {
        (Some(a), Some(b)) if a < b => &raw[a + 1..b],
        _ => raw,
    }
}

/// An address for logs: the first character of the local part and the
/// domain (`o***@restaurant.com`), never the whole address.
pub fn mask(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// Why an address is on a restaurant's suppression list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum SuppressionReason {
    Bounced,
    /// Ranks above a bounce: a complaint is never downgraded.
    Complained,
}

/// One suppressed address: why, since when, and the call whose e-mail caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    pub reason: SuppressionReason,
    pub at: DateTime<Utc>,
    pub call_id: CallId,
}

impl SesEvent {
    /// The status this record moves a call's e-mail to, if it moves it at all.
    pub fn email_status(&self) -> Option<EmailStatus> {
        match self.feedback {
            Feedback::Bounce(BounceType::Permanent) => Some(EmailStatus::Bounced),
            Feedback::Bounce(_) => None,
            Feedback::Complaint => Some(EmailStatus::Complained),
        }
    }

    /// The suppression reason this record gives its recipients, if any.
    pub fn suppression(&self) -> Option<SuppressionReason> {
        match self.email_status()? {
            EmailStatus::Complained => Some(SuppressionReason::Complained),
            _ => Some(SuppressionReason::Bounced),
        }
    }
}

/// How a record applies to a call's e-mail as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailChange {
    /// Move to this status (from the one read, which the write must still find).
    To(EmailStatus),
    /// Nothing to change: a transient bounce, a redelivery, or a later
    /// record that would rank lower than what is stored.
    Unchanged,
    /// The record is about another message than the one this call sent.
    OtherMessage,
    /// SES accepted it but the sender has not recorded that yet (it is
    /// between SendEmail and its status write): try again later.
    NotYetRecorded,
}

fn rank(status: EmailStatus) -> u8 {
    match status {
        EmailStatus::Sent => 1,
        EmailStatus::Bounced => 2,
        EmailStatus::Complained => 3,
        _ => 0,
    }
}

/// What `event` does to `email`. Status only climbs sent → bounced →
/// complained, so a redelivered or late record never undoes a later one.
pub fn email_change(email: &EmailState, event: &SesEvent) -> EmailChange {
    if email.message_id.as_deref() != Some(event.message_id.as_str()) {
        return if email.open() {
            EmailChange::NotYetRecorded
        } else {
            EmailChange::OtherMessage
        };
    }
    match event.email_status() {
        Some(next) if rank(email.status) > 0 && rank(next) > rank(email.status) => {
            EmailChange::To(next)
        }
        _ => EmailChange::Unchanged,
    }
}

/// The suppression to store for `address`, if it changes the list: a new
/// entry, or a complaint replacing a bounce. A redelivery changes nothing.
pub fn suppression_update(
    current: Option<&Suppression>,
    reason: SuppressionReason,
    call_id: &CallId,
    at: DateTime<Utc>,
) -> Option<Suppression> {
    match current {
        Some(s) if s.reason >= reason => None,
        _ => Some(Suppression {
            reason,
            at,
            call_id: call_id.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALL: &str = "call_0123456789abcdef01234567";

    /// The Bounce record of the SES developer guide ("Examples of event data
    /// that Amazon SES publishes to Amazon SNS"), with our tags added.
    fn bounce_record(bounce_type: &str, call: &str) -> String {
        serde_json::json!({
            "eventType": "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": "General",
                "bouncedRecipients": [{
                    "emailAddress": "recipient@example.com",
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"
                }],
                "timestamp": "2017-08-05T00:41:02.669Z",
                "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
                "reportingMTA": "dsn; mta.example.com"
            },
            "mail": {
                "timestamp": "2017-08-05T00:40:02.012Z",
                "source": "Sender Name <sender@example.com>",
                "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
                "sendingAccountId": "123456789012",
                "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
                "destination": ["recipient@example.com"],
                "headersTruncated": false,
                "headers": [
                    {"name": "From", "value": "Sender Name <sender@example.com>"},
                    {"name": "To", "value": "recipient@example.com"},
                    {"name": "Subject", "value": "Message sent from Amazon SES"}
                ],
                "commonHeaders": {
                    "from": ["Sender Name <sender@example.com>"],
                    "to": ["recipient@example.com"],
                    "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
                    "subject": "Message sent from Amazon SES"
                },
                "tags": {
                    "ses:configuration-set": ["ConfigSet"],
                    "ses:source-ip": ["192.0.2.0"],
                    "ses:from-domain": ["example.com"],
                    "ses:caller-identity": ["ses_user"],
                    "callId": [call],
                    "restaurantId": ["rst_0123456789abcdef0123456789abcdef"]
                }
            }
        })
        .to_string()
    }

    /// The guide's Complaint record, with our tags added.
    fn complaint_record() -> String {
        serde_json::json!({
            "eventType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": "Recipient <Recipient@Example.com>"}],
                "timestamp": "2017-08-05T00:41:02.669Z",
                "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
                "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
                "complaintFeedbackType": "abuse",
                "arrivalDate": "2017-08-05T00:41:02.669Z"
            },
            "mail": {
                "timestamp": "2017-08-05T00:40:01.123Z",
                "source": "Sender Name <sender@example.com>",
                "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/sender@example.com",
                "sendingAccountId": "123456789012",
                "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
                "destination": ["recipient@example.com"],
                "headersTruncated": false,
                "tags": {
                    "ses:configuration-set": ["ConfigSet"],
                    "callId": [CALL]
                }
            }
        })
        .to_string()
    }

    fn email(status: EmailStatus, message_id: Option<&str>) -> EmailState {
        EmailState {
            status,
            recipients: vec![EmailAddress::parse("recipient@example.com").unwrap()],
            suppressed: Vec::new(),
            message_id: message_id.map(str::to_string),
            attempts: 1,
            last_error: None,
            updated_at: Utc::now(),
            claim_id: None,
            claimed_until: None,
        }
    }

    const MID: &str = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000";

    #[test]
    fn the_guides_bounce_record_is_a_permanent_bounce_of_our_call() {
        let e = parse(&bounce_record("Permanent", CALL), Utc::now()).unwrap();
        assert_eq!(e.feedback, Feedback::Bounce(BounceType::Permanent));
        assert_eq!(e.call_id.as_str(), CALL);
        assert_eq!(
            e.restaurant_id.as_deref(),
            Some("rst_0123456789abcdef0123456789abcdef")
        );
        assert_eq!(e.message_id, MID);
        assert_eq!(e.recipients[0].as_str(), "recipient@example.com");
        assert_eq!(e.at.to_rfc3339(), "2017-08-05T00:41:02.669+00:00");
        assert_eq!(e.email_status(), Some(EmailStatus::Bounced));
        assert_eq!(e.suppression(), Some(SuppressionReason::Bounced));
    }

    #[test]
    fn transient_and_undetermined_bounces_change_nothing() {
        for t in ["Transient", "Undetermined"] {
            let e = parse(&bounce_record(t, CALL), Utc::now()).unwrap();
            assert_eq!(e.email_status(), None, "{t}");
            assert_eq!(e.suppression(), None, "{t}");
            assert_eq!(
                email_change(&email(EmailStatus::Sent, Some(MID)), &e),
                EmailChange::Unchanged
            );
        }
    }

    #[test]
    fn the_guides_complaint_record_names_its_address() {
        let e = parse(&complaint_record(), Utc::now()).unwrap();
        assert_eq!(e.feedback, Feedback::Complaint);
        assert_eq!(e.recipients[0].as_str(), "recipient@example.com");
        assert_eq!(e.suppression(), Some(SuppressionReason::Complained));
        assert_eq!(e.restaurant_id, None);
    }

    #[test]
    fn unreadable_untagged_and_other_records_are_refused() {
        let now = Utc::now();
        assert!(matches!(
            parse("not json", now),
            Err(SesEventError::Malformed(_))
        ));
        assert!(matches!(parse("{}", now), Err(SesEventError::Malformed(_))));
        let delivery = r#"{"eventType":"Delivery","mail":{"messageId":"m"},"delivery":{}}"#;
        assert_eq!(
            parse(delivery, now),
            Err(SesEventError::Ignored("Delivery".into()))
        );
        let no_details = r#"{"eventType":"Bounce","mail":{"messageId":"m"}}"#;
        assert!(matches!(
            parse(no_details, now),
            Err(SesEventError::Malformed(_))
        ));
        assert_eq!(
            parse(&bounce_record("Permanent", "not-a-call"), now),
            Err(SesEventError::Untagged)
        );
        assert!(matches!(
            parse(&bounce_record("Sideways", CALL), now),
            Err(SesEventError::Malformed(_))
        ));
    }

    #[test]
    fn status_only_climbs_and_redelivery_is_a_no_op() {
        let now = Utc::now();
        let bounce = parse(&bounce_record("Permanent", CALL), now).unwrap();
        let complaint = parse(&complaint_record(), now).unwrap();
        let sent = email(EmailStatus::Sent, Some(MID));
        assert_eq!(
            email_change(&sent, &bounce),
            EmailChange::To(EmailStatus::Bounced)
        );
        assert_eq!(
            email_change(&sent, &complaint),
            EmailChange::To(EmailStatus::Complained)
        );
        let bounced = email(EmailStatus::Bounced, Some(MID));
        assert_eq!(email_change(&bounced, &bounce), EmailChange::Unchanged);
        assert_eq!(
            email_change(&bounced, &complaint),
            EmailChange::To(EmailStatus::Complained)
        );
        let complained = email(EmailStatus::Complained, Some(MID));
        assert_eq!(
            email_change(&complained, &bounce),
            EmailChange::Unchanged,
            "a late bounce never downgrades a complaint"
        );
        assert_eq!(
            email_change(&complained, &complaint),
            EmailChange::Unchanged
        );
    }

    #[test]
    fn records_of_another_or_an_unrecorded_message() {
        let bounce = parse(&bounce_record("Permanent", CALL), Utc::now()).unwrap();
        assert_eq!(
            email_change(&email(EmailStatus::Sent, Some("other")), &bounce),
            EmailChange::OtherMessage
        );
        assert_eq!(
            email_change(&email(EmailStatus::Sending, None), &bounce),
            EmailChange::NotYetRecorded
        );
        assert_eq!(
            email_change(&email(EmailStatus::Failed, None), &bounce),
            EmailChange::OtherMessage
        );
    }

    #[test]
    fn suppressions_upgrade_but_never_downgrade() {
        let call = CallId::parse(CALL).unwrap();
        let at = Utc::now();
        let bounced = suppression_update(None, SuppressionReason::Bounced, &call, at).unwrap();
        assert_eq!(
            suppression_update(Some(&bounced), SuppressionReason::Bounced, &call, at),
            None
        );
        let complained =
            suppression_update(Some(&bounced), SuppressionReason::Complained, &call, at).unwrap();
        assert_eq!(complained.reason, SuppressionReason::Complained);
        assert_eq!(
            suppression_update(Some(&complained), SuppressionReason::Bounced, &call, at),
            None
        );
    }

    #[test]
    fn masked_addresses_keep_only_a_hint() {
        assert_eq!(mask("owner@restaurant.com"), "o***@restaurant.com");
        assert_eq!(mask("nonsense"), "***");
    }

    #[test]
    fn an_sns_event_carries_the_record_as_text() {
        let body = serde_json::json!({"Records": [{
            "EventSource": "aws:sns", "EventVersion": "1.0",
            "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:topic:sub",
            "Sns": {"Type": "Notification", "MessageId": "sns-1",
                    "TopicArn": "arn:aws:sns:us-east-1:123456789012:topic",
                    "Subject": null, "Message": bounce_record("Permanent", CALL),
                    "Timestamp": "2017-08-05T00:41:03.000Z", "MessageAttributes": {}}
        }]});
        let event: SnsEvent = serde_json::from_value(body).unwrap();
        assert_eq!(event.records[0].sns.message_id, "sns-1");
        assert!(parse(&event.records[0].sns.message, Utc::now()).is_ok());
    }
}
