//! One-way hashes at rest: argon2id for admin passwords, SHA-256 for API keys.
//!
//! Why an API key needs no slow hash: its secret is 24 uniformly random base62
//! characters (~143 bits). Memory-hard hashing only slows an attacker who
//! *guesses* (a password is one of comparatively few likely strings); a
//! uniform 143-bit secret cannot be guessed, and recovering it from its
//! SHA-256 is a preimage search of ~2^143 work whatever the hash's speed. So a
//! leaked table of `sha256$…` values gives nothing usable, just as with
//! argon2, while verifying costs microseconds instead of an argon2 run on a
//! cold 128 MB Lambda. GitHub and Stripe store their tokens the same way.
//! Keys minted before this scheme keep their argon2 PHC strings and verify
//! through them (see [`verify_api_key`]).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::{OsRng, RngCore};
use subtle::ConstantTimeEq;

/// The stored form of an API key's hash: this prefix and 64 hex digits.
const API_KEY_HASH_PREFIX: &str = "sha256$";

/// OWASP's argon2id recommendation (m = 19 MiB, t = 2, p = 1): passwords are
/// low-entropy, so their hash must be slow to guess against.
fn password_hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// An argon2id PHC string (salted) for an admin password.
pub fn hash_password(secret: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    password_hasher()
        .hash_password(secret.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters cannot fail")
        .to_string()
}

/// Verifies `secret` against a stored PHC string; the parameters come from the
/// string itself, so older hashes keep verifying after a cost change.
pub fn verify(secret: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// The stored hash of a new API key: `sha256$` + the hex SHA-256 of the key
/// (safe for a uniformly random key only; see the module comment).
pub fn hash_api_key(key: &str) -> String {
    format!("{API_KEY_HASH_PREFIX}{}", sha256_hex(key.as_bytes()))
}

/// Verifies a presented API key against its stored hash: the SHA-256 form
/// (compared in constant time), or a legacy argon2 PHC string.
pub fn verify_api_key(key: &str, stored: &str) -> bool {
    match stored.strip_prefix(API_KEY_HASH_PREFIX) {
        Some(hex) => hex
            .as_bytes()
            .ct_eq(sha256_hex(key.as_bytes()).as_bytes())
            .into(),
        None => verify(key, stored),
    }
}

/// Whether a stored API-key hash is of the argon2 era (worth upgrading).
pub fn is_legacy_api_key_hash(stored: &str) -> bool {
    !stored.starts_with(API_KEY_HASH_PREFIX)
}

/// A hash of nothing at the password cost, verified against when a user
/// doesn't exist so that sign-in takes the same time either way. A constant:
/// computing it would cost a cold instance a second argon2 run.
pub fn dummy_password_hash() -> &'static str {
    "$argon2id$v=19$m=19456,t=2,p=1$A7lNpNpjZUzXPdYFQzuG9A$NtrZRLc9IEkNYzk590XOpLiszIiZ/kvaRmVb6Uowbb4"
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(data).into()
}

/// SHA-256 as 64 lowercase hex digits: stable, non-reversible names for ids
/// and rate-limit buckets.
pub fn sha256_hex(data: &[u8]) -> String {
    hex_lower(&sha256(data))
}

/// Bytes as lowercase hex digits.
pub fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    OsRng.fill_bytes(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "psk_live_AbCdEfGh0123456789abcdefGHIJKLMN";
    /// An API key hash as keys minted before the SHA-256 scheme store it
    /// (argon2id, m = 8 MiB, t = 1).
    const LEGACY_HASH: &str =
        "$argon2id$v=19$m=8192,t=1,p=1$A7lNpNpjZUzXPdYFQzuG9A$GQacfzJMbIeMWT8TS3FOMk3WqMXZpEHJD4P8Xp5GXTA";

    #[test]
    fn passwords_are_argon2id_at_owasp_cost_salted_and_verify() {
        let a = hash_password("secret");
        let b = hash_password("secret");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(verify("secret", &a));
        assert!(!verify("Secret", &a));
        assert!(!verify("secret", "not a hash"));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let d = dummy_password_hash();
        assert!(d.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("pulsara-dummy-password", d));
    }

    #[test]
    fn api_key_hashes_are_one_way_and_verify() {
        let h = hash_api_key(KEY);
        assert_eq!(h.len(), API_KEY_HASH_PREFIX.len() + 64);
        assert!(!h.contains(&KEY[9..]), "the stored value is not the key");
        assert!(verify_api_key(KEY, &h));
        assert!(!verify_api_key(&KEY.replace('A', "B"), &h));
        assert!(!verify_api_key(KEY, "sha256$"));
        assert!(!verify_api_key(KEY, &h[..h.len() - 1]));
        assert!(!is_legacy_api_key_hash(&h));
    }

    #[test]
    fn legacy_argon2_key_hashes_keep_verifying() {
        assert!(is_legacy_api_key_hash(LEGACY_HASH));
        assert!(verify_api_key(KEY, LEGACY_HASH));
        assert!(!verify_api_key(&KEY.replace('A', "B"), LEGACY_HASH));
        assert!(!verify_api_key(KEY, "garbage"));
    }
}
