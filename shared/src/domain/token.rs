//! Admin access tokens: compact JWS with HS256 only (any other `alg`,
//! including `none`, is rejected), short-lived, signed with a configured secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
pub const ISSUER: &str = "pulsara-ivr";
pub const ADMIN_ROLE: &str = "admin";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// Admin user id.
    pub sub: String,
    pub email: String,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not accepted")]
    Algorithm,
    #[error("token signature is invalid")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("token was not issued for this API")]
    Issuer,
    #[error("token is issued in the future")]
    IssuedInFuture,
    #[error("token lives longer than tokens are issued for")]
    Lifetime,
}

/// How far a token's `iat` may be ahead of our clock (instances' clocks differ
/// slightly); anything later was not minted by our sign-in.
pub const MAX_CLOCK_SKEW_SECS: i64 = 30;

fn mac(secret: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

pub fn sign(claims: &Claims, secret: &[u8]) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialize");
    let signing_input = format!("{}.{}", B64.encode(HEADER), B64.encode(payload));
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let sig = B64.encode(m.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

/// Verifies signature, algorithm, issuer and expiry at unix time `now`, and
/// that the token lives no longer than `max_lifetime` seconds (what sign-in
/// issues), so a leaked secret cannot mint long-lived or future tokens.
pub fn verify(
    token: &str,
    secret: &[u8],
    now: i64,
    max_lifetime: i64,
) -> Result<Claims, TokenError> {
    let (h, p, s) = parts(token)?;
    let sig = B64.decode(s).map_err(|_| TokenError::Malformed)?;
    let mut m = mac(secret);
    m.update(h.as_bytes());
    m.update(b".");
    m.update(p.as_bytes());
    // Constant-time comparison.
    m.verify_slice(&sig).map_err(|_| TokenError::Signature)?;
    claims_of(p, now, max_lifetime)
}

/// Everything [`verify`] checks but the signature: what a function without
/// the secret can tell about a token (that it is shaped like one of ours).
/// Never a reason to trust it.
pub fn inspect_unverified(token: &str, now: i64, max_lifetime: i64) -> Result<Claims, TokenError> {
    let (_, p, _) = parts(token)?;
    claims_of(p, now, max_lifetime)
}

/// Header, payload and signature; the header must name HS256.
fn parts(token: &str) -> Result<(&str, &str, &str), TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let header: serde_json::Value = B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Malformed)?;
    if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
        return Err(TokenError::Algorithm);
    }
    Ok((h, p, s))
}

fn claims_of(payload: &str, now: i64, max_lifetime: i64) -> Result<Claims, TokenError> {
    let claims: Claims = B64
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(TokenError::Malformed)?;
    if claims.iss != ISSUER {
        return Err(TokenError::Issuer);
    }
    if claims.iat > now + MAX_CLOCK_SKEW_SECS {
        return Err(TokenError::IssuedInFuture);
    }
    if claims.exp.saturating_sub(claims.iat) > max_lifetime {
        return Err(TokenError::Lifetime);
    }
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// Cheap syntactic test used to tell admin tokens from API keys.
pub fn looks_like_jwt(candidate: &str) -> bool {
    candidate.starts_with("eyJ") && candidate.matches('.').count() == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const TTL: i64 = 900;

    fn claims(exp: i64) -> Claims {
        Claims {
            iss: ISSUER.into(),
            sub: "usr_1".into(),
            email: "a@b.co".into(),
            role: ADMIN_ROLE.into(),
            iat: 100,
            exp,
        }
    }

    #[test]
    fn round_trip() {
        let t = sign(&claims(200), SECRET);
        assert!(looks_like_jwt(&t));
        assert_eq!(verify(&t, SECRET, 150, TTL).unwrap(), claims(200));
    }

    #[test]
    fn expired_tampered_and_foreign_tokens_fail() {
        let t = sign(&claims(200), SECRET);
        assert_eq!(verify(&t, SECRET, 200, TTL), Err(TokenError::Expired));
        assert_eq!(
            verify(&t, b"another-secret-another-secret-xx", 150, TTL),
            Err(TokenError::Signature)
        );
        // Swap in a payload that claims a later expiry.
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = B64.encode(serde_json::to_vec(&claims(9_999)).unwrap());
        parts[1] = &forged;
        assert_eq!(
            verify(&parts.join("."), SECRET, 150, TTL),
            Err(TokenError::Signature)
        );
        assert_eq!(verify("a.b", SECRET, 150, TTL), Err(TokenError::Malformed));
    }

    #[test]
    fn inspecting_checks_all_but_the_signature() {
        let t = sign(&claims(200), b"another-secret-another-secret-xx");
        assert_eq!(inspect_unverified(&t, 150, TTL).unwrap(), claims(200));
        assert_eq!(inspect_unverified(&t, 200, TTL), Err(TokenError::Expired));
        assert_eq!(
            inspect_unverified("eyJhbGciOiJIUzI1NiJ9.e30.", 150, TTL),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn alg_none_and_other_algorithms_are_rejected() {
        let payload = B64.encode(serde_json::to_vec(&claims(200)).unwrap());
        for alg in ["none", "HS512", "RS256"] {
            let header = B64.encode(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#));
            let t = format!("{header}.{payload}.");
            assert_eq!(
                verify(&t, SECRET, 150, TTL),
                Err(TokenError::Algorithm),
                "{alg}"
            );
        }
    }

    #[test]
    fn future_and_overlong_tokens_fail_even_when_signed() {
        let three_years = 3 * 365 * 86_400;
        let long = sign(&claims(100 + three_years), SECRET);
        assert_eq!(verify(&long, SECRET, 150, TTL), Err(TokenError::Lifetime));
        let mut future = claims(0);
        (future.iat, future.exp) = (150 + MAX_CLOCK_SKEW_SECS + 1, 150 + 600);
        assert_eq!(
            verify(&sign(&future, SECRET), SECRET, 150, TTL),
            Err(TokenError::IssuedInFuture)
        );
        // Within the skew, and exactly the configured lifetime, pass.
        (future.iat, future.exp) = (150 + MAX_CLOCK_SKEW_SECS, 150 + MAX_CLOCK_SKEW_SECS + TTL);
        assert_eq!(verify(&sign(&future, SECRET), SECRET, 150, TTL), Ok(future));
    }
}
