//! Envelope encryption of small secrets (webhook signing secrets; integration
//! secrets reuse it): each secret is sealed with AES-256-GCM under its own
//! data key from KMS `GenerateDataKey`; only the data key's KMS ciphertext,
//! the nonce and the sealed bytes are stored. An encryption context (what
//! the secret is and which record owns it) is the KMS `EncryptionContext` of
//! the data key and the GCM additional data of the secret, so a sealed value
//! copied to another record opens nowhere.
//!
//! `seal_with`/`open_with` are pure (tested without KMS); [`SecretSealer`] is
//! the thin KMS-backed part: one `GenerateDataKey` per seal, one `Decrypt` per
//! data key and cold start (decrypted data keys are cached, bounded).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::hashing::random_bytes;
use crate::error::Chain;

pub const DATA_KEY_LEN: usize = 32;
/// The only format so far: AES-256-GCM under a KMS data key.
pub const ALGORITHM: &str = "AES256GCM-KMS";
/// Decrypted data keys an instance keeps (one per sealed secret it opened).
const MAX_CACHED_KEYS: usize = 512;

/// What a sealed secret is bound to, e.g. `{purpose: webhook-signing-secret,
/// webhookId: wh_…}`. Ordered, so the GCM additional data is canonical.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Context(BTreeMap<String, String>);

impl Context {
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// The GCM additional data: `k=v` lines in key order (keys and values
    /// are ids and fixed names, never containing `=` or newlines).
    fn aad(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            out.extend_from_slice(k.as_bytes());
            out.push(b'=');
            out.extend_from_slice(v.as_bytes());
            out.push(b'\n');
        }
        out
    }

    fn pairs(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }
}

/// A plaintext data key and its KMS ciphertext.
pub struct DataKey {
    plaintext: [u8; DATA_KEY_LEN],
    encrypted: Vec<u8>,
}

impl DataKey {
    pub fn new(plaintext: [u8; DATA_KEY_LEN], encrypted: Vec<u8>) -> Self {
        Self {
            plaintext,
            encrypted,
        }
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

/// A sealed secret as stored: base64 fields, so a DynamoDB item (or a log of
/// one) holds nothing readable.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sealed {
    pub alg: String,
    /// The data key, encrypted by KMS under the context.
    pub encrypted_key: String,
    pub nonce: String,
    /// Ciphertext followed by the 16-byte GCM tag.
    pub ciphertext: String,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(..)")
    }
}

/// A secret in the clear, in memory only: its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext(String);

impl Plaintext {
    pub fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Plaintext(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the sealed secret is malformed")]
    Malformed,
    #[error("the sealed secret does not open under this context (tampered or moved)")]
    Integrity,
    #[error("no KMS key is configured for secrets (SECRETS_KMS_KEY_ARN)")]
    NotConfigured,
    /// KMS failed or refused: a retry may succeed, the caller must not go on
    /// without the secret.
    #[error("KMS {0} failed")]
    Kms(
        &'static str,
        #[source] Box<dyn std::error::Error + Send + Sync>,
    ),
}

fn gcm_key(key: &[u8; DATA_KEY_LEN]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key"))
}

/// Seals `plaintext` under a data key (pure: the data key comes from KMS).
pub fn seal_with(key: &DataKey, context: &Context, plaintext: &[u8]) -> Sealed {
    let mut nonce = [0u8; NONCE_LEN];
    // A fresh data key per secret (two uses at most): random nonces are safe.
    random_bytes(&mut nonce);
    let mut buf = plaintext.to_vec();
    gcm_key(&key.plaintext)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.aad()),
            &mut buf,
        )
        .expect("AES-GCM seals any secret-sized input");
    Sealed {
        alg: ALGORITHM.into(),
        encrypted_key: B64.encode(&key.encrypted),
        nonce: B64.encode(nonce),
        ciphertext: B64.encode(buf),
    }
}

/// Opens a sealed secret with its (decrypted) data key; fails if the
/// ciphertext, nonce or context differ from what was sealed.
pub fn open_with(
    key: &[u8; DATA_KEY_LEN],
    context: &Context,
    sealed: &Sealed,
) -> Result<Vec<u8>, SealError> {
    if sealed.alg != ALGORITHM {
        return Err(SealError::Malformed);
    }
    let nonce: [u8; NONCE_LEN] = B64
        .decode(&sealed.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or(SealError::Malformed)?;
    let mut buf = B64
        .decode(&sealed.ciphertext)
        .map_err(|_| SealError::Malformed)?;
    let opened = gcm_key(key)
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(context.aad()),
            &mut buf,
        )
        .map_err(|_| SealError::Integrity)?;
    Ok(opened.to_vec())
}

/// Seals and opens secrets with data keys of one KMS key.
pub struct SecretSealer {
    kms: aws_sdk_kms::Client,
    key_id: String,
    cache: Mutex<KeyCache>,
}

impl SecretSealer {
    pub fn new(kms: aws_sdk_kms::Client, key_id: String) -> Self {
        Self {
            kms,
            key_id,
            cache: Mutex::new(KeyCache::default()),
        }
    }

    /// A new data key under `context`; several secrets of one record (a
    /// rotation's new and previous secret) may share it.
    pub async fn data_key(&self, context: &Context) -> Result<DataKey, SealError> {
        let mut req = self
            .kms
            .generate_data_key()
            .key_id(&self.key_id)
            .key_spec(DataKeySpec::Aes256);
        for (k, v) in context.pairs() {
            req = req.encryption_context(k, v);
        }
        let out = req
            .send()
            .await
            .map_err(|e| SealError::Kms("GenerateDataKey", Box::new(e)))?;
        let plaintext: [u8; DATA_KEY_LEN] = out
            .plaintext
            .and_then(|b| b.into_inner().try_into().ok())
            .ok_or(SealError::Malformed)?;
        let encrypted = out
            .ciphertext_blob
            .ok_or(SealError::Malformed)?
            .into_inner();
        Ok(DataKey::new(plaintext, encrypted))
    }

    pub async fn seal(&self, context: &Context, plaintext: &[u8]) -> Result<Sealed, SealError> {
        Ok(seal_with(
            &self.data_key(context).await?,
            context,
            plaintext,
        ))
    }

    /// Opens a sealed secret: its data key from the cache, or from KMS
    /// `Decrypt` under the same context.
    pub async fn open(&self, context: &Context, sealed: &Sealed) -> Result<Plaintext, SealError> {
        let encrypted = B64
            .decode(&sealed.encrypted_key)
            .map_err(|_| SealError::Malformed)?;
        let slot = cache_slot(&encrypted, context);
        let cached = self.cache.lock().expect("data key cache").get(&slot);
        let key = match cached {
            Some(k) => k,
            None => {
                let k = self.decrypt(&encrypted, context).await?;
                self.cache.lock().expect("data key cache").insert(slot, k);
                k
            }
        };
        let bytes = open_with(&key, context, sealed)?;
        String::from_utf8(bytes)
            .map(Plaintext)
            .map_err(|_| SealError::Malformed)
    }

    async fn decrypt(
        &self,
        encrypted: &[u8],
        context: &Context,
    ) -> Result<[u8; DATA_KEY_LEN], SealError> {
        let mut req = self
            .kms
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(encrypted));
        for (k, v) in context.pairs() {
            req = req.encryption_context(k, v);
        }
        let out = req.send().await.map_err(|e| {
            tracing::warn!(error = %Chain(&e), "KMS Decrypt of a data key failed");
            SealError::Kms("Decrypt", Box::new(e))
        })?;
        out.plaintext
            .and_then(|b| b.into_inner().try_into().ok())
            .ok_or(SealError::Malformed)
    }
}

/// Cache slot of a data key: its KMS ciphertext and the context it opens under.
fn cache_slot(encrypted: &[u8], context: &Context) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(encrypted);
    h.update([0]);
    h.update(context.aad());
    h.finalize().into()
}

/// Decrypted data keys, oldest evicted first.
#[derive(Default)]
struct KeyCache {
    keys: HashMap<[u8; 32], [u8; DATA_KEY_LEN]>,
    order: VecDeque<[u8; 32]>,
}

impl KeyCache {
    fn get(&self, slot: &[u8; 32]) -> Option<[u8; DATA_KEY_LEN]> {
        self.keys.get(slot).copied()
    }

    fn insert(&mut self, slot: [u8; 32], key: [u8; DATA_KEY_LEN]) {
        if self.keys.insert(slot, key).is_none() {
            self.order.push_back(slot);
            while self.order.len() > MAX_CACHED_KEYS {
                if let Some(old) = self.order.pop_front() {
                    self.keys.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        let mut k = [0u8; DATA_KEY_LEN];
        random_bytes(&mut k);
        DataKey::new(k, b"kms-ciphertext-of-the-key".to_vec())
    }

    fn ctx(id: &str) -> Context {
        Context::new([("purpose", "webhook-signing-secret"), ("webhookId", id)])
    }

    #[test]
    fn round_trip() {
        let k = key();
        let sealed = seal_with(&k, &ctx("wh_1"), b"whsec_abc");
        assert_eq!(
            open_with(&k.plaintext, &ctx("wh_1"), &sealed).unwrap(),
            b"whsec_abc"
        );
        assert_eq!(B64.decode(&sealed.encrypted_key).unwrap(), k.encrypted);
        let text = serde_json::to_string(&sealed).unwrap();
        assert!(!text.contains("whsec_"), "{text}");
        assert_eq!(format!("{sealed:?}"), "Sealed(..)");
        let again = seal_with(&k, &ctx("wh_1"), b"whsec_abc");
        assert_ne!(again.nonce, sealed.nonce, "a fresh nonce per seal");
    }

    #[test]
    fn another_context_does_not_open() {
        let k = key();
        let sealed = seal_with(&k, &ctx("wh_1"), b"whsec_abc");
        assert!(matches!(
            open_with(&k.plaintext, &ctx("wh_2"), &sealed),
            Err(SealError::Integrity)
        ));
        let other_purpose =
            Context::new([("purpose", "integration-secret"), ("webhookId", "wh_1")]);
        assert!(open_with(&k.plaintext, &other_purpose, &sealed).is_err());
    }

    #[test]
    fn tampering_or_another_key_fails() {
        let k = key();
        let sealed = seal_with(&k, &ctx("wh_1"), b"whsec_abc");
        let mut bytes = B64.decode(&sealed.ciphertext).unwrap();
        bytes[0] ^= 1;
        let tampered = Sealed {
            ciphertext: B64.encode(&bytes),
            ..sealed.clone()
        };
        assert!(matches!(
            open_with(&k.plaintext, &ctx("wh_1"), &tampered),
            Err(SealError::Integrity)
        ));
        let other_nonce = Sealed {
            nonce: B64.encode([7u8; NONCE_LEN]),
            ..sealed.clone()
        };
        assert!(open_with(&k.plaintext, &ctx("wh_1"), &other_nonce).is_err());
        assert!(open_with(&key().plaintext, &ctx("wh_1"), &sealed).is_err());
        let bad = Sealed {
            alg: "none".into(),
            ..sealed
        };
        assert!(matches!(
            open_with(&k.plaintext, &ctx("wh_1"), &bad),
            Err(SealError::Malformed)
        ));
    }

    #[test]
    fn the_key_cache_is_bounded() {
        let mut c = KeyCache::default();
        for i in 0..(MAX_CACHED_KEYS as u32 + 10) {
            let mut slot = [0u8; 32];
            slot[..4].copy_from_slice(&i.to_be_bytes());
            c.insert(slot, [1; DATA_KEY_LEN]);
        }
        assert_eq!(c.keys.len(), MAX_CACHED_KEYS);
        assert!(c.get(&[0u8; 32]).is_none(), "the oldest went first");
    }

    #[test]
    fn debug_shows_no_secret() {
        assert_eq!(
            format!("{:?}", Plaintext::new("whsec_x".into())),
            "Plaintext(<redacted>)"
        );
        assert_eq!(format!("{:?}", key()), "DataKey(<redacted>)");
    }
}
