//! An e-mail address that passed our check, lower-cased: parsed once where
//! it enters (an admin's body, a sign-in), then trusted everywhere.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("is not an e-mail address")]
pub struct NotAnEmailAddress;

#[cfg(test)]
crate::string_schema!(EmailAddress);

impl EmailAddress {
    /// A pragmatic check (one '@', a dotted domain, no spaces), after trimming
    /// and lower-casing; SES is the final judge of deliverability.
    pub fn parse(raw: &str) -> Result<Self, NotAnEmailAddress> {
        let value = raw.trim().to_ascii_lowercase();
        if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(NotAnEmailAddress);
        }
        let (local, domain) = value.split_once('@').ok_or(NotAnEmailAddress)?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if ok {
            Ok(Self(value))
        } else {
            Err(NotAnEmailAddress)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses_are_lower_cased() {
        assert_eq!(
            EmailAddress::parse(" Owner@Restaurant.com ")
                .unwrap()
                .as_str(),
            "owner@restaurant.com"
        );
        assert!(EmailAddress::parse("a.b+c@mail.example.co.uk").is_ok());
    }

    #[test]
    fn bad_addresses_are_refused() {
        for bad in [
            "",
            "owner",
            "@x.com",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@.com",
            "a@b..com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
