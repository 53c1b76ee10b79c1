//! Phone numbers: any common format in, E.164 out.
//!
//! The `phonenumber` crate supplies libphonenumber's metadata, but its parser
//! strips the *default* region's national prefix even from numbers that carry
//! their own country code (+44 161 … lost its 1 to North America's), and strips
//! national prefixes that are really the number's first digits (+7 800 …). So
//! parsing follows libphonenumber's own steps here, over the crate's metadata,
//! and a differential test holds it to libphonenumber's answers for every
//! region (`shared/tests/data/phone_cases.tsv`).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use phonenumber::metadata::{Metadata, DATABASE};
use phonenumber::{country, Mode, NationalNumber, PhoneNumber};
use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("is not a phone number")]
    Unparseable,
    #[error("is not a possible phone number for its country")]
    Impossible,
}

/// libphonenumber's bounds on a national significant number.
const MIN_NSN: usize = 2;
const MAX_NSN: usize = 17;

/// Parses `input` ("(555) 123-4567", "+1 555.123.4567", "0044 20 7946 0958" …)
/// with `region` as the default country and returns it in E.164 ("+15551234567").
/// A country code in the input always wins over `region`.
///
/// Numbers pass when they are *possible* for their calling code (the general
/// pattern at a possible length), so reserved ranges such as North America's
/// fictional 555 numbers are accepted.
pub fn normalize(input: &str, region: country::Id) -> Result<E164, PhoneError> {
    let (code, national) = parse(input, region)?;
    Ok(E164(format!("+{code}{national}")))
}

/// A phone number in E.164 ("+15551234567"), as `normalize` made it: the only
/// form we store, compare and route by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct E164(String);

#[cfg(test)]
crate::string_schema!(E164);

impl E164 {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form people read (see `display`).
    pub fn display(&self, region: country::Id) -> String {
        display(&self.0, region)
    }
}

impl AsRef<str> for E164 {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for E164 {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for E164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<&str> for E164 {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// Stored numbers were normalized on the way in; reading one back checks
/// only its shape (the full parse costs more than a ring-path read should).
impl<'de> Deserialize<'de> for E164 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        E164::shaped(String::deserialize(d)?)
            .ok_or_else(|| serde::de::Error::custom("is not an E.164 phone number"))
    }
}

impl E164 {
    /// `raw` if it has E.164's shape (`+`, then 3 to 20 digits, not 0 first),
    /// without the full parse: for numbers we stored, and for looking up a
    /// number an IVR sends as E.164 (a miss falls back to `normalize`).
    pub fn shaped(raw: String) -> Option<E164> {
        let digits = raw.strip_prefix('+').unwrap_or("");
        ((MIN_NSN + 1..=MAX_NSN + 3).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0'))
        .then_some(E164(raw))
    }
}

/// Loads the phone metadata now rather than in the first request that needs
/// it: on a 128 MB Lambda (~7 % of a vCPU) that first use costs ~0.7 s
/// (`examples/cold_bench.rs`). For a function whose every call parses numbers
/// (process-call); the ring path avoids the metadata instead.
pub fn warm_up() {
    let _ = normalize("+15555550100", country::Id::US);
    let _ = display("+15555550100", country::Id::US);
}

/// Formats an E.164 number for people: national style when it belongs to
/// `region` ("(555) 123-4567"), international otherwise.
pub fn display(e164: &str, region: country::Id) -> String {
    let Some(number) = from_e164(e164) else {
        return e164.to_string();
    };
    if region_of(&number, region) == Some(region) {
        number.format().mode(Mode::National).to_string()
    } else {
        number.format().mode(Mode::International).to_string()
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

/// The calling code and national significant number of `input`.
fn parse(input: &str, region: country::Id) -> Result<(u16, String), PhoneError> {
    let trimmed = input.trim();
    if trimmed.is_empty() || trimmed.len() > 40 {
        return Err(PhoneError::Unparseable);
    }
    // Reject letters early: libphonenumber would accept vanity numbers and
    // extensions, which an IVR cannot dial back.
    if !trimmed
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().\u{a0}/".contains(c))
    {
        return Err(PhoneError::Unparseable);
    }
    let plus = trimmed.starts_with('+');
    if trimmed[usize::from(plus)..].contains('+') {
        return Err(PhoneError::Unparseable);
    }
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    let home = DATABASE
        .by_id(region.as_ref())
        .ok_or(PhoneError::Unparseable)?;
    let (code, national) = split_country_code(&digits, plus, home)?;
    let meta = main_metadata(code).ok_or(PhoneError::Unparseable)?;
    let national = strip_national_prefix_if_possible(national, meta);
    if national.len() < MIN_NSN || national.len() > MAX_NSN {
        return Err(PhoneError::Unparseable);
    }
    if is_possible(code, &national) {
        Ok((code, national))
    } else {
        Err(PhoneError::Impossible)
    }
}

/// libphonenumber's maybeExtractCountryCode: a `+`, the home region's
/// international prefix ("00" is taken as one everywhere), or the home
/// region's own code written without either.
fn split_country_code(
    digits: &str,
    plus: bool,
    home: &'static Metadata,
) -> Result<(u16, String), PhoneError> {
    let international = if plus {
        Some(digits)
    } else if let Some(rest) = digits.strip_prefix("00") {
        Some(rest)
    } else {
        home.international_prefix()
            .and_then(|idd| full_regex(idd.as_str(), Anchor::Start).find(digits))
            .map(|m| &digits[m.end()..])
            // Country codes never start with 0, so "0…" after it was no prefix.
            .filter(|rest| !rest.starts_with('0'))
    };
    if let Some(rest) = international {
        if rest.len() <= MIN_NSN {
            return Err(PhoneError::Unparseable);
        }
        return leading_country_code(rest)
            .map(|(code, national)| (code, national.to_string()))
            .ok_or(PhoneError::Unparseable);
    }
    let code = home.country_code();
    let general = home.descriptors().general().national_number().as_str();
    if let Some(rest) = digits.strip_prefix(&code.to_string()) {
        let stripped = strip_national_prefix(rest.to_string(), home);
        // Keep the code stripped only if that turns an impossible number into
        // one that fits, or the whole was too long.
        if (!full_match(general, digits) && full_match(general, &stripped))
            || length_fit(digits, home) == LengthFit::TooLong
        {
            return Ok((code, stripped));
        }
    }
    Ok((code, digits.to_string()))
}

/// libphonenumber keeps a stripped national prefix only when what remains is
/// long enough to be a number of the region.
fn strip_national_prefix_if_possible(national: String, meta: &'static Metadata) -> String {
    let stripped = strip_national_prefix(national.clone(), meta);
    match length_fit(&stripped, meta) {
        LengthFit::TooShort | LengthFit::LocalOnly | LengthFit::Invalid => national,
        LengthFit::Possible | LengthFit::TooLong => stripped,
    }
}

/// libphonenumber's maybeStripNationalPrefixAndCarrierCode: removes a trunk
/// prefix (and carrier code) or applies the region's transform rule, unless a
/// number that fitted the region's pattern would stop fitting it.
fn strip_national_prefix(national: String, meta: &'static Metadata) -> String {
    // An absent prefix-for-parsing means the national prefix itself (the
    // crate leaves that inheritance to its users).
    let Some(prefix) = meta
        .national_prefix_for_parsing()
        .map(|p| p.as_str())
        .or(meta.national_prefix())
        .filter(|p| !p.is_empty())
    else {
        return national;
    };
    let prefix = full_regex(prefix, Anchor::Start);
    let Some(captures) = prefix.captures(&national) else {
        return national;
    };
    let general = meta.descriptors().general().national_number().as_str();
    let viable = full_match(general, &national);
    let last_group_matched = captures.len() > 1 && captures.get(captures.len() - 1).is_some();
    let result = match meta.national_prefix_transform_rule() {
        Some(rule) if !rule.is_empty() && last_group_matched => {
            let mut out = String::new();
            captures.expand(&braced_groups(rule), &mut out);
            out.push_str(&national[captures.get(0).map_or(0, |m| m.end())..]);
            out
        }
        _ => national[captures.get(0).map_or(0, |m| m.end())..].to_string(),
    };
    if viable && !full_match(general, &result) {
        national
    } else {
        result
    }
}

/// "$1" in libphonenumber's rules; the regex crate would read "$15" as group 15.
fn braced_groups(rule: &str) -> String {
    let mut out = String::with_capacity(rule.len() + 4);
    let mut chars = rule.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push_str("${");
            out.push(chars.next().unwrap_or('0'));
            out.push('}');
        } else {
            out.push(c);
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LengthFit {
    Possible,
    LocalOnly,
    TooShort,
    TooLong,
    Invalid,
}

/// libphonenumber's testNumberLength against the general descriptor.
fn length_fit(national: &str, meta: &Metadata) -> LengthFit {
    let (lengths, local) = general_lengths(meta);
    let len = national.len() as u16;
    if local.contains(&len) {
        return LengthFit::LocalOnly;
    }
    match (lengths.first(), lengths.last()) {
        (None, _) | (_, None) => LengthFit::Invalid,
        (Some(&min), _) if len < min => LengthFit::TooShort,
        (_, Some(&max)) if len > max => LengthFit::TooLong,
        _ if lengths.contains(&len) => LengthFit::Possible,
        _ => LengthFit::Invalid,
    }
}

/// Whether `national` fits some region of `code`: its general pattern, in
/// full, at one of its possible lengths. Every valid number passes, and so do
/// numbers in ranges no carrier holds yet, such as 555.
fn is_possible(code: u16, national: &str) -> bool {
    DATABASE
        .by_code(&code)
        .unwrap_or_default()
        .iter()
        .any(|meta| {
            general_lengths(meta).0.contains(&(national.len() as u16))
                && full_match(
                    meta.descriptors().general().national_number().as_str(),
                    national,
                )
        })
}

/// The general descriptor's possible lengths (and local-only lengths).
/// libphonenumber's build derives them from the number types; the crate's
/// metadata leaves them empty, so they are derived the same way here.
fn general_lengths(meta: &Metadata) -> (Vec<u16>, Vec<u16>) {
    let d = meta.descriptors();
    let general = d.general();
    if !general.possible_length().is_empty() {
        return (
            general.possible_length().to_vec(),
            general.possible_local_length().to_vec(),
        );
    }
    let types = [
        d.fixed_line(),
        d.mobile(),
        d.toll_free(),
        d.premium_rate(),
        d.shared_cost(),
        d.personal_number(),
        d.voip(),
        d.pager(),
        d.uan(),
        d.voicemail(),
    ];
    let mut lengths: Vec<u16> = types
        .iter()
        .flatten()
        .flat_map(|t| t.possible_length())
        .copied()
        .collect();
    lengths.sort_unstable();
    lengths.dedup();
    let mut local: Vec<u16> = types
        .iter()
        .flatten()
        .flat_map(|t| t.possible_local_length())
        .copied()
        .filter(|n| !lengths.contains(n))
        .collect();
    local.sort_unstable();
    local.dedup();
    (lengths, local)
}

/// The calling code `digits` start with (codes are prefix-free, one to three
/// digits) and the rest.
fn leading_country_code(digits: &str) -> Option<(u16, &str)> {
    (1..=3.min(digits.len())).find_map(|n| {
        let code: u16 = digits[..n].parse().ok()?;
        main_metadata(code).map(|_| (code, &digits[n..]))
    })
}

/// The metadata libphonenumber parses a calling code's numbers with: its main
/// country's ("001" for non-geographic codes such as +800).
fn main_metadata(code: u16) -> Option<&'static Metadata> {
    let all = DATABASE.by_code(&code)?;
    all.iter()
        .find(|m| m.is_main_country_for_code())
        .or_else(|| all.first())
        .copied()
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Anchor {
    Start,
    Whole,
}

fn full_match(pattern: &'static str, digits: &str) -> bool {
    full_regex(pattern, Anchor::Whole).is_match(digits)
}

/// Metadata patterns anchored as libphonenumber applies them, compiled once
/// per instance (a warm function reuses them on every request).
fn full_regex(pattern: &'static str, anchor: Anchor) -> Regex {
    static CACHE: LazyLock<Mutex<HashMap<(&'static str, Anchor), Regex>>> =
        LazyLock::new(Default::default);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache
        .entry((pattern, anchor))
        .or_insert_with(|| {
            let anchored = match anchor {
                Anchor::Start => format!("^(?:{pattern})"),
                Anchor::Whole => format!("^(?:{pattern})$"),
            };
            regex::RegexBuilder::new(&anchored)
                .ignore_whitespace(true)
                .build()
                // The crate compiled the same pattern already; a regex that
                // fails here matches nothing rather than taking the call down.
                .unwrap_or_else(|_| Regex::new("[^\\s\\S]").expect("static regex"))
        })
        .clone()
}

/// The crate's number for an E.164 string we produced, built from its parts:
/// the crate's own parser would strip national prefixes again.
fn from_e164(e164: &str) -> Option<PhoneNumber> {
    let digits = e164.strip_prefix('+')?;
    let (code, national) = leading_country_code(digits)?;
    let national: NationalNumber = national.parse().ok()?;
    serde_json::from_value(serde_json::json!({
        "code": {"value": code, "source": "plus"},
        "national": national,
        "extension": null,
        "carrier": null,
    }))
    .ok()
}

/// The region a number belongs to: its own if it has one, otherwise `region`
/// when they share a calling code (e.g. 555 numbers within +1).
fn region_of(number: &PhoneNumber, region: country::Id) -> Option<country::Id> {
    number.country().id().or_else(|| {
        let own = DATABASE.by_id(region.as_ref())?;
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

    /// The numbers libphonenumber parses and the crate's parser got wrong: a
    /// `1` after the country code was taken for North America's trunk prefix.
    #[test]
    fn a_country_code_wins_over_the_default_region() {
        for (input, e164, shown) in [
            ("+44 161 496 0000", "+441614960000", "+44 161 496 0000"),
            ("+44 113 496 0000", "+441134960000", "+44 113 496 0000"),
            ("+33 1 23 45 67 89", "+33123456789", "+33 1 23 45 67 89"),
            ("+86 10 1234 5678", "+861012345678", "+86 10 1234 5678"),
            ("+55 11 91234-5678", "+5511912345678", "+55 11 91234-5678"),
            ("+49 151 23456789", "+4915123456789", "+49 1512 3456789"),
            ("0049 151 23456789", "+4915123456789", "+49 1512 3456789"),
            ("+7 800 123-45-67", "+78001234567", "+7 800 123-45-67"),
        ] {
            assert_eq!(normalize(input, US).unwrap(), e164, "{input}");
            assert_eq!(display(e164, US), shown, "{e164}");
        }
    }

    #[test]
    fn national_forms_use_the_default_region() {
        let gb: country::Id = "GB".parse().unwrap();
        let de: country::Id = "DE".parse().unwrap();
        assert_eq!(normalize("0161 496 0000", gb).unwrap(), "+441614960000");
        assert_eq!(normalize("0151 23456789", de).unwrap(), "+4915123456789");
        assert_eq!(display("+441614960000", gb), "0161 496 0000");
        // US callers dial abroad with 011.
        assert_eq!(
            normalize("011 44 161 496 0000", US).unwrap(),
            "+441614960000"
        );
    }

    /// libphonenumber's answers (shared/tests/data/gen_phone_cases.py) for every region's
    /// example numbers in every common written form, and near misses.
    #[test]
    fn agrees_with_libphonenumber_for_every_region() {
        let cases = include_str!("../../tests/data/phone_cases.tsv");
        let mut failures = Vec::new();
        let mut total = 0;
        for line in cases.lines().filter(|l| !l.starts_with('#')) {
            let cols: Vec<&str> = line.split('\t').collect();
            let [region, form, default, text, expected] = cols[..] else {
                panic!("bad fixture line {line:?}");
            };
            total += 1;
            let default: country::Id = default.parse().expect("fixture region");
            let ours = normalize(text, default).ok().map(|n| n.to_string());
            let theirs = (expected != "-").then(|| expected.to_string());
            if ours != theirs {
                failures.push(format!("{region} {form} {text:?} ({default:?}): ours {ours:?}, libphonenumber {theirs:?}"));
            }
            // The international form is libphonenumber's formatting: display agrees
            // (for numbers outside +1, which displays nationally in the US).
            if let (Some(e164), "international") = (&theirs, form) {
                if e164.starts_with("+1") {
                    continue;
                }
                let shown = display(e164, US);
                if shown != text {
                    failures.push(format!(
                        "display({e164}) = {shown:?}, libphonenumber {text:?}"
                    ));
                }
            }
        }
        assert!(total > 6000, "fixture has only {total} cases");
        assert!(
            failures.is_empty(),
            "{} of {total} differ:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }

    #[test]
    fn display_and_mask() {
        assert_eq!(display("+15551234567", US), "(555) 123-4567");
        assert_eq!(display("+442079460958", US), "+44 20 7946 0958");
        assert_eq!(mask("+15551234567"), "+*******4567");
        assert_eq!(mask("12"), "****");
    }
}
