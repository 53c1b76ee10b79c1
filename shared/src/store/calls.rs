//! Call records, keyed by Pulsara call id, listed per restaurant through the
//! `byRestaurant` index (partition restaurantId, sort listKey = start time#id).
//!
//! The transcripts live beside the call in their own items, compressed
//! (`domain::transcript_codec`): `<callId>#transcript` (the process
//! transcript, replaced only by a longer one) and `<callId>#final.<tag>` (the
//! final transcript, keyed by its content so racing completions can't swap
//! it under the winner). They have no restaurantId, so the index never holds
//! them, and they expire with the call. The call item keeps what changes and
//! what is listed: a status update rewrites ~1 KB, not two transcripts.
//! Records written before this layout carry their transcripts inline; they
//! are read as they are.

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};

use super::{
    claim_free, conditional, decode_cursor, encode_cursor, from_item, get_by_key,
    is_condition_failure, n, s, sdk_error, to_item, ts, updated, value, with_claim, StoreError,
};
use crate::domain::analysis::transcript::Turn;
use crate::domain::analysis::Analysis;
use crate::domain::call::{
    CallRecord, CallRow, CallStatus, Completion, EmailState, EmailStatus, PlatformReport,
};
use crate::domain::ids::{CallId, Id};
use crate::domain::transcript_codec;

pub const BY_RESTAURANT_INDEX: &str = "byRestaurant";

/// What a completion rewrites beside the completion itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompletionChanges<'a> {
    /// The analysis of the final transcript, and the transcript's size.
    pub final_analysis: Option<(&'a Analysis, usize)>,
    /// The tag [`CallStore::put_final_transcript`] returned.
    pub final_tag: Option<&'a str>,
    /// The platform's report at the end.
    pub platform: Option<&'a PlatformReport>,
}

/// Queries one list page may take to fill up to `limit` rows (expired
/// records the index still holds are skipped).
pub const MAX_LIST_QUERIES: usize = 4;

/// The item holding a call's process transcript.
pub fn transcript_key(call_id: &str) -> String {
    format!("{call_id}#transcript")
}

/// The item holding a call's final transcript, named by the tag of its
/// stored bytes (the record keeps only the tag: 12 bytes, not the key's 50).
pub fn final_transcript_key(call_id: &str, tag: &str) -> String {
    format!("{call_id}#final.{tag}")
}

/// Which of a call's transcripts a reader needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transcripts {
    /// Both (the call's detail).
    Both,
    /// The one the e-mail quotes: the final transcript if any, else the process one.
    Latest,
}

#[derive(Clone)]
pub struct CallStore {
    client: Client,
    table: String,
}

impl CallStore {
    /// An update of one call.
    fn update(&self, call_id: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("callId", s(call_id))
    }

    pub fn new(client: Client, table: String) -> Self {
        Self { client, table }
    }

    pub async fn get(&self, call_id: &CallId) -> Result<Option<CallRecord>, StoreError> {
        get_by_key(&self.client, &self.table, "callId", call_id, true).await
    }

    /// Inserts a new call (its transcript is written first, by
    /// [`Self::put_transcript`]); `AlreadyExists` when the vendor already sent it.
    pub async fn insert(&self, call: &CallRecord) -> Result<(), StoreError> {
        let mut item = to_item(call)?;
        item.remove("transcript");
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(callId)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(sdk_error(e)),
        }
    }

    /// Stores the process transcript of a call unless a longer one is stored
    /// (a retry, or a post that lost a race with a longer one, writes nothing).
    pub async fn put_transcript(
        &self,
        call_id: &str,
        transcript: &[Turn],
        bytes: usize,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(transcript_item(
                &transcript_key(call_id),
                transcript_codec::encode(transcript),
                bytes,
                expires_at,
            )))
            .condition_expression("attribute_not_exists(callId) OR #b < :b")
            .expression_attribute_names("#b", "bytes")
            .expression_attribute_values(":b", n(bytes))
            .send()
            .await;
        conditional(sent).map(|_| ())
    }

    /// Stores a final transcript; returns the tag the completion names it by.
    /// Writing the same transcript again writes the same item.
    pub async fn put_final_transcript(
        &self,
        call_id: &str,
        transcript: &[Turn],
        bytes: usize,
        expires_at: i64,
    ) -> Result<String, StoreError> {
        let stored = transcript_codec::encode(transcript);
        let tag = transcript_codec::tag(&stored);
        let key = final_transcript_key(call_id, &tag);
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(transcript_item(&key, stored, bytes, expires_at)))
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(tag)
    }

    /// The transcript stored under `key`, if there is one.
    async fn transcript(&self, key: &str) -> Result<Option<Vec<Turn>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("callId", s(key))
            .projection_expression("t")
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk_error)?;
        match out.item.as_ref().and_then(|i| i.get("t")) {
            None => Ok(None),
            Some(AttributeValue::B(b)) => transcript_codec::decode(b.as_ref())
                .map(Some)
                .map_err(|e| StoreError::Corrupt(Box::new(e))),
            Some(_) => Err(StoreError::Corrupt("transcript is not binary".into())),
        }
    }

    /// Reads the transcripts `which` asks for into the record, where it does
    /// not hold them inline (records from before they had items of their own).
    /// A missing item reads as no transcript.
    pub async fn load_transcripts(
        &self,
        call: &mut CallRecord,
        which: Transcripts,
    ) -> Result<(), StoreError> {
        let final_key = call
            .final_transcript_tag
            .as_deref()
            .map(|tag| final_transcript_key(&call.call_id, tag))
            .filter(|_| {
                call.completion
                    .as_ref()
                    .is_some_and(|c| c.final_transcript.is_empty())
            });
        let has_final = final_key.is_some()
            || call
                .completion
                .as_ref()
                .is_some_and(|c| !c.final_transcript.is_empty());
        let want_process = which == Transcripts::Both || !has_final;
        let process_key = (want_process && call.transcript.is_empty() && call.transcript_bytes > 0)
            .then(|| transcript_key(&call.call_id));
        let (process, fin) = tokio::try_join!(
            async {
                match &process_key {
                    Some(k) => self.transcript(k).await,
                    None => Ok(None),
                }
            },
            async {
                match &final_key {
                    Some(k) => self.transcript(k).await,
                    None => Ok(None),
                }
            }
        )?;
        if let Some(t) = process {
            call.transcript = t;
        }
        if let (Some(t), Some(c)) = (fin, call.completion.as_mut()) {
            c.final_transcript = t;
        }
        Ok(())
    }

    /// Records a longer transcript (already in its item) and its analysis if
    /// the call is still open. Returns whether it changed. A transcript the
    /// record held inline is dropped: the item holds the longer one now.
    pub async fn extend_transcript(
        &self,
        call_id: &str,
        bytes: usize,
        analysis: &Analysis,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sent = self.update(call_id)
            .update_expression(
                "SET transcriptBytes = :b, analysis = :a, updatedAt = :now REMOVE transcript",
            )
            .condition_expression(
                "attribute_exists(callId) AND transcriptBytes < :b AND attribute_not_exists(completion)",
            )
            .expression_attribute_values(":b", n(bytes))
            .expression_attribute_values(":a", value(analysis)?)
            .expression_attribute_values(":now", ts(now))
            .send()
            .await;
        Ok(conditional(sent)?.is_some())
    }

    /// Completes the call if nobody completed it first, writing only what
    /// completion changes (a transcript extension racing it survives), and
    /// returns the stored record. Exactly one of any number of racing
    /// completions gets `Some`. With an e-mail to send, this write is the
    /// e-mail's outbox: the table's stream turns it into the e-mail job.
    /// The final transcript is not written here but named: `final_tag` is
    /// the tag [`Self::put_final_transcript`] returned. `duration` and
    /// `emailStatus` are copied to the top level for the index's rows.
    pub async fn complete(
        &self,
        call_id: &str,
        completion: &Completion,
        changes: CompletionChanges<'_>,
        email: Option<&EmailState>,
        now: DateTime<Utc>,
    ) -> Result<Option<CallRecord>, StoreError> {
        let CompletionChanges {
            final_analysis,
            final_tag,
            platform,
        } = changes;
        let mut set = vec![
            "completion = :c",
            "#st = :completed",
            "#du = :du",
            "updatedAt = :now",
        ];
        let mut stored = value(completion)?;
        if let AttributeValue::M(m) = &mut stored {
            m.remove("finalTranscript");
        }
        let mut req = self
            .update(call_id)
            .condition_expression("attribute_exists(callId) AND attribute_not_exists(completion)")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#du", "duration")
            .expression_attribute_values(":c", stored)
            .expression_attribute_values(":du", n(completion.duration))
            .expression_attribute_values(":completed", value(&CallStatus::Completed)?)
            .expression_attribute_values(":now", ts(now))
            .return_values(ReturnValue::AllNew);
        if let Some((analysis, bytes)) = final_analysis {
            set.push("analysis = :a");
            set.push("transcriptBytes = :b");
            req = req
                .expression_attribute_values(":a", value(analysis)?)
                .expression_attribute_values(":b", n(bytes));
        }
        if let Some(tag) = final_tag {
            set.push("finalTranscriptTag = :ft");
            req = req.expression_attribute_values(":ft", s(tag));
        }
        if let Some(p) = platform {
            set.push("platform = :pf");
            req = req.expression_attribute_values(":pf", value(p)?);
        }
        if let Some(email) = email {
            set.push("email = :e");
            set.push("emailStatus = :es");
            req = req
                .expression_attribute_values(":e", value(email)?)
                .expression_attribute_values(":es", value(&email.status)?);
        }
        updated(
            req.update_expression(format!("SET {}", set.join(", ")))
                .send()
                .await,
        )
    }

    /// Claims the call's e-mail for one send until `until_ms`, if it is
    /// still to be sent and nobody else holds a fresh claim (a retry of our
    /// own claim succeeds again). Counts the attempt; returns the record.
    /// It changes nothing the index projects, so it writes the call only.
    pub async fn claim_email(
        &self,
        call_id: &str,
        claim_id: &str,
        now: DateTime<Utc>,
        until_ms: i64,
    ) -> Result<Option<CallRecord>, StoreError> {
        let req = self
            .update(call_id)
            .update_expression(
                "SET #em.claimId = :claim, #em.claimedUntil = :until, #em.attempts = #em.attempts + :one, #em.updatedAt = :now",
            )
            .condition_expression(format!(
                "(#em.#st = :sending OR #em.#st = :queued) AND {}",
                claim_free("#em.")
            ))
            .expression_attribute_names("#em", "email")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", ts(now))
            .expression_attribute_values(":sending", value(&EmailStatus::Sending)?)
            .expression_attribute_values(":queued", value(&EmailStatus::Queued)?)
            .return_values(ReturnValue::AllNew);
        updated(with_claim(req, claim_id, now, until_ms).send().await)
    }

    /// Records how the claimed send ended, if the claim is still ours
    /// (`false`: a successor took over, or a retry of this very write).
    pub async fn finish_email(
        &self,
        call_id: &str,
        claim_id: &str,
        next: &EmailState,
    ) -> Result<bool, StoreError> {
        Ok(conditional(
            self.update(call_id)
                .update_expression("SET #em = :next, emailStatus = :es, updatedAt = :now")
                .condition_expression("#em.claimId = :claim")
                .expression_attribute_names("#em", "email")
                .expression_attribute_values(":next", value(next)?)
                .expression_attribute_values(":es", value(&next.status)?)
                .expression_attribute_values(":now", ts(next.updated_at))
                .expression_attribute_values(":claim", s(claim_id))
                .send()
                .await,
        )?
        .is_some())
    }

    /// A restaurant's calls started in `[from, to]`, newest first, read from
    /// the index alone: up to `limit` rows that have not expired, querying
    /// again (at most [`MAX_LIST_QUERIES`] times) while expired records the
    /// index still holds leave a page short. The cursor is the index's last
    /// evaluated key, so a page ends exactly after its last row.
    pub async fn list(
        &self,
        restaurant_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: i32,
        cursor: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Vec<CallRow>, Option<String>), StoreError> {
        let mut start = cursor
            .map(|c| decode_cursor(c, &["callId", "restaurantId", "listKey"]))
            .transpose()?;
        let lower = from.to_rfc3339_opts(SecondsFormat::Millis, true);
        let upper = format!("{}#~", to.to_rfc3339_opts(SecondsFormat::Millis, true));
        if let Some(key) = &start {
            let attr = |name: &str| {
                key.get(name)
                    .and_then(|v| v.as_s().ok())
                    .map(String::as_str)
            };
            // A cursor is only valid for the restaurant and the window it was
            // issued for (DynamoDB refuses a start key outside the key condition).
            let ours = attr("restaurantId") == Some(restaurant_id)
                && attr("callId").is_some_and(|id| CallId::parse(id).is_some())
                && attr("listKey").is_some_and(|k| (lower.as_str()..=upper.as_str()).contains(&k));
            if !ours {
                return Err(StoreError::BadCursor);
            }
        }
        let limit = limit.max(1);
        let mut rows = Vec::new();
        for _ in 0..MAX_LIST_QUERIES {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_RESTAURANT_INDEX)
                .key_condition_expression("restaurantId = :r AND listKey BETWEEN :lo AND :hi")
                .expression_attribute_values(":r", s(restaurant_id))
                .expression_attribute_values(":lo", s(&lower))
                .expression_attribute_values(":hi", s(&upper))
                .scan_index_forward(false)
                .limit(limit - rows.len() as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for item in out.items.unwrap_or_default() {
                let row = self.row(item).await?;
                if !row.expired(now) {
                    rows.push(row);
                }
            }
            start = out.last_evaluated_key;
            if start.is_none() || rows.len() >= limit as usize {
                break;
            }
        }
        Ok((rows, start.as_ref().and_then(encode_cursor)))
    }

    /// A list row from the index's projection. A completed record from
    /// before the index carried `emailStatus` and `duration` is read whole.
    async fn row(&self, item: super::Item) -> Result<CallRow, StoreError> {
        let row: CallRow = from_item(item)?;
        if row.status != CallStatus::Completed || row.email_status.is_some() {
            return Ok(row);
        }
        Ok(match self.get(&row.call_id).await? {
            Some(full) => CallRow::of(&full),
            None => row,
        })
    }
}

/// A transcript's item: no restaurantId (so never in the index), the
/// stored bytes with their format byte, and the call's expiry.
fn transcript_item(key: &str, stored: Vec<u8>, bytes: usize, expires_at: i64) -> super::Item {
    [
        ("callId".to_string(), s(key)),
        ("t".to_string(), AttributeValue::B(Blob::new(stored))),
        ("bytes".to_string(), n(bytes)),
        ("expiresAt".to_string(), n(expires_at)),
    ]
    .into()
}

// ---------------------------------------------------------------------------
// SES feedback (bounces and complaints; issue 12). Kept apart from the rest of
// the store: it touches only `email.status` (and its index copy `emailStatus`) and `updatedAt`.
// ---------------------------------------------------------------------------

impl CallStore {
    /// Moves the e-mail from `from` to `to` (a bounce or complaint SES
    /// reported for `message_id`), if it still is at `from` for that message.
    /// `false`: it changed meanwhile (re-read and decide again), or a retry
    /// of this very write had landed.
    pub async fn record_email_feedback(
        &self,
        call_id: &CallId,
        from: EmailStatus,
        to: EmailStatus,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(conditional(
            self.update(call_id)
                // The top-level copy is the index row's (the list shows it too).
                .update_expression(
                    "SET #em.#st = :to, #em.updatedAt = :now, emailStatus = :to, updatedAt = :now",
                )
                .condition_expression("#em.#st = :from AND #em.messageId = :mid")
                .expression_attribute_names("#em", "email")
                .expression_attribute_names("#st", "status")
                .expression_attribute_values(":from", value(&from)?)
                .expression_attribute_values(":to", value(&to)?)
                .expression_attribute_values(":mid", s(message_id))
                .expression_attribute_values(":now", ts(now))
                .send()
                .await,
        )?
        .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::analysis::transcript::{parse_text, TranscriptInput};
    use crate::domain::call::MAX_TRANSCRIPT_BYTES;
    use crate::store::item_size::{item_size, ITEM_LIMIT};

    /// Deterministic words: the shape of speech, not a compressor's best case.
    fn words(seed: u64) -> impl Iterator<Item = &'static str> {
        const VOCAB: [&str; 24] = [
            "table", "for", "four", "tonight", "at", "seven", "please", "yes", "the", "pasta",
            "is", "gluten", "free", "do", "you", "deliver", "to", "main", "street", "thanks",
            "what", "time", "open", "sunday",
        ];
        let mut x = seed;
        std::iter::from_fn(move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            Some(VOCAB[(x >> 33) as usize % VOCAB.len()])
        })
    }

    /// The worst shape for the old layout: as many turns as 100 KiB of
    /// plain text can hold (short labeled lines), with `per_line` words each.
    fn short_lines(per_line: usize) -> String {
        let mut w = words(7);
        let mut text = String::new();
        for i in 0.. {
            let line = format!(
                "{}:{}\n",
                if i % 2 == 0 { "ai" } else { "user" },
                (0..per_line)
                    .map(|_| w.next().unwrap())
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            if text.len() + line.len() > MAX_TRANSCRIPT_BYTES {
                break;
            }
            text.push_str(&line);
        }
        text
    }

    fn sizes(text: &str) -> (usize, usize, usize, usize) {
        let turns = TranscriptInput::Text(text.to_string()).turns();
        let inline: super::super::Item =
            [("transcript".to_string(), value(&turns).unwrap())].into();
        let compact = transcript_codec::compact(&turns).len();
        let stored = transcript_codec::encode(&turns);
        let item = transcript_item(
            "call_0123456789abcdef01234567#transcript",
            stored,
            text.len(),
            1,
        );
        (turns.len(), item_size(&inline), compact, item_size(&item))
    }

    #[test]
    fn the_largest_transcripts_fit_their_items() {
        for per_line in [1, 3, 12] {
            let text = short_lines(per_line);
            let (turns, inline, compact, item) = sizes(&text);
            eprintln!(
                "{} B input, {per_line} word(s)/line: {turns} turns; inline list of maps {inline} B, \
                 compact text {compact} B, stored item (deflate) {item} B",
                text.len()
            );
            assert!(item < ITEM_LIMIT / 2, "{item}");
            assert!(item * 2 < compact, "deflate pays: {item} vs {compact}");
        }
        // The old layout could not hold the worst shape: process and final
        // transcript inline in the one call item.
        let (_, inline, _, _) = sizes(&short_lines(1));
        assert!(2 * inline > ITEM_LIMIT, "{inline}");
    }

    #[test]
    fn incompressible_text_is_stored_as_text_and_still_fits() {
        // Every byte escaped and nothing to compress is the largest it gets.
        let mut x = 1u64;
        let text: String = std::iter::repeat_with(|| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            (b'!' + ((x >> 33) % 94) as u8) as char
        })
        .take(MAX_TRANSCRIPT_BYTES - 10)
        .collect();
        let text = format!("Customer: {text}");
        let turns = parse_text(&text);
        let stored = transcript_codec::encode(&turns);
        assert_eq!(transcript_codec::decode(&stored).unwrap(), turns);
        let item = transcript_item("k", stored, text.len(), 1);
        eprintln!(
            "random printable 100 KiB: stored item {} B",
            item_size(&item)
        );
        assert!(item_size(&item) < ITEM_LIMIT);
    }
}
