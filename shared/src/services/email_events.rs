//! SES feedback: what a bounce or complaint (from the configuration set's
//! event destination, through SNS) does to a call's e-mail and to its
//! restaurant's suppression list.
//!
//! Every step is idempotent, so SNS or Lambda delivering a record twice (or
//! a retry after a failed write) changes nothing more: the e-mail's status
//! only climbs sent → bounced → complained, and a suppression is only ever
//! added or upgraded. A failed read or write is an error, so the invocation
//! fails and is retried; a record we cannot use is not (see the handler).

use chrono::{DateTime, Utc};

use crate::app::AppState;
use crate::domain::call::EmailStatus;
use crate::domain::email_address::EmailAddress;
use crate::domain::ids::CallId;
use crate::domain::ses_event::{
    email_change, mask, suppression_update, EmailChange, Feedback, SesEvent,
};
use crate::error::ApiError;
use crate::faults;
use crate::http::record_restaurant_id;
use crate::store::restaurants::RestaurantWriteError;

/// Conditional writes that lost a race are re-read and decided again this
/// often before the invocation fails (and is retried).
const TRIES: u32 = 4;

/// What a record came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackOutcome {
    /// The e-mail's status now, if the call and its e-mail exist.
    pub status: Option<EmailStatus>,
    /// Whether this record changed the status.
    pub changed: bool,
    /// Addresses newly suppressed (or upgraded to complained).
    pub suppressed: Vec<EmailAddress>,
}

/// Applies one bounce or complaint.
pub async fn on_ses_event(
    state: &AppState,
    event: &SesEvent,
    now: DateTime<Utc>,
) -> Result<FeedbackOutcome, ApiError> {
    let mut outcome = FeedbackOutcome {
        status: None,
        changed: false,
        suppressed: Vec::new(),
    };
    let masked: Vec<String> = event.recipients.iter().map(|a| mask(a.as_str())).collect();
    if let Feedback::Bounce(kind) = event.feedback {
        if event.email_status().is_none() {
            // SES already retried a soft bounce; the owner's status stays as it is.
            tracing::info!(bounce_type = ?kind, recipients = ?masked, "transient bounce recorded; nothing changes");
        }
    }
    let Some(call) = state.calls.get(&event.call_id).await? else {
        tracing::warn!("SES feedback for a call we don't have (expired or not ours); dropped");
        return Ok(outcome);
    };
    record_restaurant_id(&call.restaurant_id);
    let Some(mut email) = call.email else {
        tracing::warn!("SES feedback for a call without an e-mail; dropped");
        return Ok(outcome);
    };
    // Only the call's own recipients: a record cannot suppress anyone else.
    let addresses: Vec<EmailAddress> = event
        .recipients
        .iter()
        .filter(|a| email.recipients.contains(a))
        .cloned()
        .collect();
    let mut tries = 0;
    loop {
        match email_change(&email, event) {
            EmailChange::To(next) => {
                faults::point("email.feedback.before", &[event.call_id.as_str()])?;
                let moved = state
                    .calls
                    .record_email_feedback(
                        &event.call_id,
                        email.status,
                        next,
                        &event.message_id,
                        now,
                    )
                    .await?;
                if moved {
                    tracing::warn!(from = ?email.status, to = ?next, recipients = ?masked, "call e-mail {}", status_word(next));
                    crate::metrics::count(
                        if next == EmailStatus::Complained {
                            crate::metrics::EMAILS_COMPLAINED
                        } else {
                            crate::metrics::EMAILS_BOUNCED
                        },
                        1,
                    );
                    email.status = next;
                    outcome.changed = true;
                    break;
                }
                tries += 1;
                if tries >= TRIES {
                    return Err(ApiError::internal("the call's e-mail kept changing"));
                }
                let current = state.calls.get(&event.call_id).await?;
                match current.and_then(|c| c.email) {
                    Some(e) => email = e,
                    None => return Ok(outcome),
                }
            }
            EmailChange::Unchanged => break,
            EmailChange::OtherMessage => {
                tracing::warn!(
                    "SES feedback names another message than the call's e-mail; dropped"
                );
                outcome.status = Some(email.status);
                return Ok(outcome);
            }
            EmailChange::NotYetRecorded => {
                // SES answered the sender, which has not written the message
                // id yet: fail, so the record comes back once it has.
                return Err(ApiError::internal(
                    "SES feedback arrived before the e-mail's send was recorded",
                ));
            }
        }
    }
    outcome.status = Some(email.status);
    if let Some(reason) = event.suppression() {
        outcome.suppressed = suppress(
            state,
            &call.restaurant_id,
            &addresses,
            reason,
            &event.call_id,
            now,
        )
        .await?;
    }
    Ok(outcome)
}

fn status_word(s: EmailStatus) -> &'static str {
    match s {
        EmailStatus::Complained => "complained about",
        _ => "bounced",
    }
}

/// Adds `addresses` to the restaurant's suppression list (a read-modify-write
/// of the latest version, so a concurrent PATCH is never overwritten and
/// never overwrites it), retrying when the restaurant changed in between.
async fn suppress(
    state: &AppState,
    restaurant_id: &crate::domain::ids::RestaurantId,
    addresses: &[EmailAddress],
    reason: crate::domain::ses_event::SuppressionReason,
    call_id: &CallId,
    now: DateTime<Utc>,
) -> Result<Vec<EmailAddress>, ApiError> {
    if addresses.is_empty() {
        return Ok(Vec::new());
    }
    for _ in 0..TRIES {
        let Some(current) = state.restaurants.get_latest(restaurant_id).await? else {
            return Ok(Vec::new()); // deleted: nobody left to protect
        };
        let mut next = current.clone();
        let mut added = Vec::new();
        for a in addresses {
            if let Some(s) =
                suppression_update(current.email_suppressions.get(a), reason, call_id, now)
            {
                next.email_suppressions.insert(a.clone(), s);
                added.push(a.clone());
            }
        }
        if added.is_empty() {
            return Ok(added); // a redelivery: already suppressed
        }
        next.version = current.version + 1;
        next.updated_at = now;
        faults::point(
            "email.suppress.before",
            &[call_id.as_str(), restaurant_id.as_str()],
        )?;
        match state.restaurants.update(&current, &next).await {
            Ok(()) => {
                let masked: Vec<String> = added.iter().map(|a| mask(a.as_str())).collect();
                tracing::warn!(addresses = ?masked, reason = ?reason, "addresses suppressed for the restaurant");
                return Ok(added);
            }
            Err(RestaurantWriteError::Stale) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::internal(
        "the restaurant kept changing while suppressing addresses",
    ))
}
