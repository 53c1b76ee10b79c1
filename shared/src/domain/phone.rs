//! Phone numbers: any common format in, E.164 out.

use phonenumber::{country, Mode, PhoneNumber};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("is not a phone number")]
    Unparseable,
    #[error("is not a possible phone number for its country")]
    Impossible,
}

/// Parses `input` ("(555) 123-4567", "+1 555.123.4567", "0044 20 7946 0958" …)
/// with `region` as the default country and returns it in E.164 ("+15551234567").
///
/// Numbers pass when they are valid, or merely *possible* for their country, so
/// reserved ranges such as North America's fictional 555 numbers are accepted.
pub fn normalize(input: &str, region: country::Id) -> Result<String, PhoneError> {
    let number = parse(input, region)?;
    Ok(number.format().mode(Mode::E164).to_string())
}

/// Formats an E.164 number for people: national style when it belongs to
/// `region` ("(555) 123-4567"), international otherwise.
pub fn display(e164: &str, region: country::Id) -> String {
    match phonenumber::parse(None, e164) {
        Ok(n) if region_of(&n, region) == Some(region) => {
            n.format().mode(Mode::National).to_string()
        }
        Ok(n) => n.format().mode(Mode::International).to_string(),
        Err(_) => e164.to_string(),
    }
}

/// Keeps only the last four digits, for logs: "+15551234567" -> "+*******4567".
pub fn mask(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() <= 4 {
        return "****".to_string();
    }
    let tail: String = digits[digits.len() - 4..].iter().collect();
    format!("+{}{tail}", "*".repeat(digits.len() - 4))
}

fn parse(input: &str, region: country::Id) -> Result<PhoneNumber, PhoneError> {
    let trimmed = input.trim();
    if trimmed.is_empty() || trimmed.len() > 40 {
        return Err(PhoneError::Unparseable);
    }
    // Reject letters early: the parser would otherwise accept vanity numbers
    // and extensions, which an IVR cannot dial back.
    if !trimmed
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().\u{a0}/".contains(c))
    {
        return Err(PhoneError::Unparseable);
    }
    let normalized = match trimmed.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => trimmed.to_string(),
    };
    let number =
        phonenumber::parse(Some(region), &normalized).map_err(|_| PhoneError::Unparseable)?;
    if number.is_valid() || is_possible(&number) {
        Ok(number)
    } else {
        Err(PhoneError::Impossible)
    }
}

fn is_possible(number: &PhoneNumber) -> bool {
    let national = number.national().to_string();
    // Look up by calling code: numbers in unassigned ranges (555) match no
    // region, so `number.metadata()` would find nothing.
    phonenumber::metadata::DATABASE
        .by_code(&number.code().value())
        .unwrap_or_default()
        .iter()
        .any(|meta| {
            let general = meta.descriptors().general();
            // An empty length list means "any length the pattern allows".
            let lengths = general.possible_length();
            (lengths.is_empty() || lengths.contains(&(national.len() as u16)))
                && general
                    .national_number()
                    .find(&national)
                    .is_some_and(|m| m.start() == 0 && m.end() == national.len())
        })
}

/// The region a number belongs to: its own if it has one, otherwise `region`
/// when they share a calling code (e.g. 555 numbers within +1).
fn region_of(number: &PhoneNumber, region: country::Id) -> Option<country::Id> {
    number.country().id().or_else(|| {
        let own = phonenumber::metadata::DATABASE.by_id(region.as_ref())?;
        (own.country_code() == number.code().value()).then_some(region)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: country::Id = country::Id::US;

    #[test]
    fn common_us_formats_normalize_to_e164() {
        for input in [
            "(555) 123-4567",
            "+15551234567",
            "555.123.4567",
            "555-123-4567",
            "1 555 123 4567",
            "+1 (555) 123-4567",
            "5551234567",
        ] {
            assert_eq!(normalize(input, US).unwrap(), "+15551234567", "{input}");
        }
    }

    #[test]
    fn international_numbers_keep_their_country() {
        assert_eq!(normalize("+44 20 7946 0958", US).unwrap(), "+442079460958");
        assert_eq!(normalize("0044 20 7946 0958", US).unwrap(), "+442079460958");
    }

    #[test]
    fn garbage_is_rejected() {
        for input in [
            "",
            "abc",
            "123",
            "555-CALL-NOW",
            "+1 555 123 45678 999",
            "++1",
        ] {
            assert!(normalize(input, US).is_err(), "{input}");
        }
    }

    #[test]
    fn display_and_mask() {
        assert_eq!(display("+15551234567", US), "(555) 123-4567");
        assert_eq!(display("+442079460958", US), "+44 20 7946 0958");
        assert_eq!(mask("+15551234567"), "+*******4567");
        assert_eq!(mask("12"), "****");
    }
}
