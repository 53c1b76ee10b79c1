//! argon2id hashing of passwords and API keys (PHC strings at rest).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::{OsRng, RngCore};

/// Cost of a hash. Passwords are low-entropy, so they get OWASP's argon2id
/// recommendation; API keys carry ~143 random bits, so a lighter cost is
/// enough and keeps a cold 128 MB Lambda fast.
#[derive(Debug, Clone, Copy)]
pub enum Cost {
    Password,
    ApiKey,
}

fn hasher(cost: Cost) -> Argon2<'static> {
    let params = match cost {
        Cost::Password => Params::new(19 * 1024, 2, 1, None),
        Cost::ApiKey => Params::new(8 * 1024, 1, 1, None),
    }
    .expect("static argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash(secret: &str, cost: Cost) -> String {
    let salt = SaltString::generate(&mut OsRng);
    hasher(cost)
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

/// A hash of nothing, verified against when a user doesn't exist so that
/// sign-in takes the same time either way.
pub fn dummy_password_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("pulsara-dummy-password", Cost::Password))
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(data).into()
}

/// SHA-256 as 64 lowercase hex digits: stable, non-reversible names for ids
/// and rate-limit buckets.
pub fn sha256_hex(data: &[u8]) -> String {
    use std::fmt::Write;
    sha256(data)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
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

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("secret", Cost::ApiKey);
        let b = hash("secret", Cost::ApiKey);
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(verify("secret", &a));
        assert!(!verify("Secret", &a));
        assert!(!verify("secret", "not a hash"));
    }
}
