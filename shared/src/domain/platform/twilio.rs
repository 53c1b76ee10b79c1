//! Twilio Programmable Voice, pure: the form body Twilio posts to a number's
//! Voice URL and status callback, its `X-Twilio-Signature`, typed views of the
//! parameters we use, and the little TwiML we answer with.
//!
//! Twilio makes a synchronous request and waits (at most 15 s for the whole
//! response) for TwiML; everything here is allocation-light string work so
//! the ring path spends its budget on the call, not on parsing.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::percent_decode;
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// The header Twilio signs every webhook with.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";
/// Twilio's voice webhooks are a few kilobytes; anything near this is not Twilio.
pub const MAX_FORM_BYTES: usize = 64 * 1024;
/// Twilio sends a few dozen parameters; this bounds the work a forged body causes.
pub const MAX_FORM_PARAMS: usize = 200;
/// Twilio's longest call (`<Dial timeLimit>`'s maximum) is 24 h.
pub const MAX_CALL_SECS: u64 = 24 * 60 * 60;
/// How long `<Dial>` rings staff before falling through to the `<Say>`.
pub const DIAL_TIMEOUT_SECS: u32 = 25;

// ---------------------------------------------------------------------------
// Form bodies
// ---------------------------------------------------------------------------

/// Why a form body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("form body is {0} bytes, over the {MAX_FORM_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("form body has more than {MAX_FORM_PARAMS} parameters")]
    TooManyParams,
    /// The zero-based index of the offending name=value pair.
    #[error("form parameter #{0} is not valid UTF-8")]
    NotUtf8(usize),
}

/// Decodes an `application/x-www-form-urlencoded` body in order, repeated
/// names kept (they are all signed). `+` is a space and `%XX` a byte; the
/// decoded bytes must be UTF-8, because the signature is computed over
/// text and a lossy decoding would verify something Twilio never sent.
/// Empty segments (`a=1&&b=2`) are skipped; a name without `=` has an empty value.
pub fn parse_form(body: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    if body.len() > MAX_FORM_BYTES {
        return Err(FormError::TooLarge(body.len()));
    }
    let mut out = Vec::new();
    for segment in body.split(|b| *b == b'&').filter(|s| !s.is_empty()) {
        if out.len() == MAX_FORM_PARAMS {
            return Err(FormError::TooManyParams);
        }
        let (name, value) = match segment.iter().position(|b| *b == b'=') {
            Some(i) => (&segment[..i], &segment[i + 1..]),
            None => (segment, &b""[..]),
        };
        let index = out.len();
        out.push((form_decode(name, index)?, form_decode(value, index)?));
    }
    Ok(out)
}

fn form_decode(raw: &[u8], index: usize) -> Result<String, FormError> {
    // `+` first, so an encoded plus (`%2B`, as in every E.164 number) survives.
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    String::from_utf8(percent_decode(&spaced).collect()).map_err(|_| FormError::NotUtf8(index))
}

/// The first value of a parameter, if present and not blank (Twilio sends
/// empty strings for unknown geo fields and the like).
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

// ---------------------------------------------------------------------------
// X-Twilio-Signature
// ---------------------------------------------------------------------------

/// base64(HMAC-SHA1(auth token, url + name + value for every parameter)),
/// exactly as twilio-python 9.13's `RequestValidator.compute_signature`:
/// names sorted, each name's values sorted, and a value repeated under the
/// same name counted once (the SDK iterates `sorted(set(values))`).
/// Sorting is by code point there and by UTF-8 byte here, which agree.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut mac =
        Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(url.as_bytes());
    for (k, v) in pairs {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    B64.encode(mac.finalize().into_bytes())
}

/// Whether `header` (the `X-Twilio-Signature` value) signs this request.
///
/// Like the SDK's `validate`, both forms of the URL are tried, because
/// Twilio's own signing is inconsistent about ports: the URL with any port
/// removed, and the URL with the scheme's default port (https 443, http 80)
/// added when it has none. Compared in constant time. The `bodySHA256`
/// variant (JSON bodies) is not handled: voice webhooks are forms.
pub fn verify(auth_token: &str, url: &str, params: &[(String, String)], header: &str) -> bool {
    let header = header.trim().as_bytes();
    let (without_port, with_port) = port_variants(url);
    let a = signature(auth_token, &without_port, params)
        .as_bytes()
        .ct_eq(header);
    let b = signature(auth_token, &with_port, params)
        .as_bytes()
        .ct_eq(header);
    (a | b).into()
}

/// (`url` without a port, `url` with its port or the default one).
fn port_variants(url: &str) -> (String, String) {
    let Some(scheme_end) = url.find("://") else {
        return (url.to_string(), url.to_string());
    };
    let start = scheme_end + 3;
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[host_start..];
    // An IPv6 literal's colons are inside the brackets.
    let search_from = host_port.rfind(']').unwrap_or(0);
    let port_colon = host_port[search_from..]
        .rfind(':')
        .map(|i| start + host_start + search_from + i);
    match port_colon {
        Some(colon) if url[colon + 1..end].bytes().all(|b| b.is_ascii_digit()) => {
            let without = format!("{}{}", &url[..colon], &url[end..]);
            (without, url.to_string())
        }
        _ => {
            let port = if url[..scheme_end].eq_ignore_ascii_case("https") {
                443
            } else {
                80
            };
            let with = format!("{}:{port}{}", &url[..end], &url[end..]);
            (url.to_string(), with)
        }
    }
}

/// The URL Twilio requested, which is what it signed.
///
/// Behind API Gateway: `host` is the `Host` header (with its port, if the
/// number's Voice URL had one), `scheme` the first entry of
/// `X-Forwarded-Proto` (`https` when absent), `path` the raw path including
/// any stage prefix (`/prod/...`; not the path the route matched), and
/// `query` the raw query string, byte for byte (re-encoding it changes
/// the signature).
pub fn public_url(scheme: &str, host: &str, path: &str, query: Option<&str>) -> String {
    let scheme = scheme.split(',').next().unwrap_or("").trim();
    let scheme = if scheme.is_empty() {
        "https".to_string()
    } else {
        scheme.to_ascii_lowercase()
    };
    let slash = if path.starts_with('/') { "" } else { "/" };
    let mut url = format!("{scheme}://{host}{slash}{path}");
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push('?');
        url.push_str(q);
    }
    url
}

// ---------------------------------------------------------------------------
// Typed views
// ---------------------------------------------------------------------------

/// Why a typed view could not be built from the parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MissingParam {
    #[error("Twilio parameter {0} is missing")]
    Missing(&'static str),
    #[error("Twilio parameter {0} is malformed")]
    Invalid(&'static str),
}

/// A call's SID: `CA` and 32 hex digits.
pub fn is_call_sid(s: &str) -> bool {
    s.len() == 34 && s.starts_with("CA") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn call_sid(params: &[(String, String)]) -> Result<String, MissingParam> {
    let sid = param(params, "CallSid").ok_or(MissingParam::Missing("CallSid"))?;
    if !is_call_sid(sid) {
        return Err(MissingParam::Invalid("CallSid"));
    }
    Ok(sid.to_string())
}

fn opt(params: &[(String, String)], name: &str) -> Option<String> {
    param(params, name).map(str::to_string)
}

/// The request to a number's Voice URL when a call comes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceRequest {
    pub call_sid: String,
    pub account_sid: Option<String>,
    /// The caller, E.164; absent or a word (`anonymous`) for withheld numbers.
    pub from: Option<String>,
    /// The number called: how we find the restaurant, so required.
    pub to: String,
    pub call_status: Option<String>,
    pub direction: Option<String>,
}

impl VoiceRequest {
    pub fn from_params(params: &[(String, String)]) -> Result<Self, MissingParam> {
        Ok(Self {
            call_sid: call_sid(params)?,
            account_sid: opt(params, "AccountSid"),
            from: opt(params, "From"),
            to: param(params, "To")
                .ok_or(MissingParam::Missing("To"))?
                .to_string(),
            call_status: opt(params, "CallStatus"),
            direction: opt(params, "Direction"),
        })
    }
}

/// A status callback (`StatusCallbackEvent` initiated/ringing/answered/completed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCallback {
    pub call_sid: String,
    pub call_status: String,
    /// Whole seconds, on `completed` only; clamped to 24 h, `None` if unreadable.
    pub call_duration: Option<u64>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// RFC 2822 text as Twilio sends it (`Wed, 08 Oct 2025 13:54:12 +0000`).
    pub timestamp: Option<String>,
}

impl StatusCallback {
    pub fn from_params(params: &[(String, String)]) -> Result<Self, MissingParam> {
        Ok(Self {
            call_sid: call_sid(params)?,
            call_status: param(params, "CallStatus")
                .ok_or(MissingParam::Missing("CallStatus"))?
                .to_string(),
            call_duration: param(params, "CallDuration").and_then(lenient_secs),
            from: opt(params, "From"),
            to: opt(params, "To"),
            timestamp: opt(params, "Timestamp"),
        })
    }
}

/// Seconds from `"42"`, `"42.0"` or `"4.2e1"`; negative or non-finite is
/// unreadable. A duration is informational, so a bad one is dropped rather
/// than failing the callback (Twilio would retry a failure for nothing).
fn lenient_secs(raw: &str) -> Option<u64> {
    let secs = raw.parse::<u64>().ok().or_else(|| {
        raw.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })?;
    Some(secs.min(MAX_CALL_SECS))
}

// ---------------------------------------------------------------------------
// TwiML
// ---------------------------------------------------------------------------

const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// Rings `number_e164` (staff) for 25 s, the caller hearing ringing until
/// staff answer (`answerOnBridge`); if the dial fails (busy, no answer, bad
/// number), says `say_after_failed_dial` and hangs up.
///
/// The `<Say>` relies on Twilio's documented rule for `<Dial>` without an
/// `action` URL: "If you do not provide an action URL in your `<Dial>` and
/// the original caller is still on the line, Twilio will continue to render
/// the original TwiML document" (twilio.com/docs/voice/twiml/dial). That
/// also means a caller whose *staff* hung up first hears it, so the text
/// should read well either way ("Sorry we missed you" rather than "Nobody
/// answered"). A blank text leaves the `<Say>` out (Twilio rejects an empty one).
///
/// twilio-python 9.13's `VoiceResponse().dial(n, timeout=25,
/// answer_on_bridge=True, caller_id=c); .say(t); .hangup()` renders the same
/// document with attributes in alphabetical order (`answerOnBridge`,
/// `callerId`, `timeout`) and `<Hangup />`: equivalent XML.
pub fn twiml_forward(
    number_e164: &str,
    caller_id: Option<&str>,
    say_after_failed_dial: &str,
) -> String {
    let mut x = String::with_capacity(160 + say_after_failed_dial.len());
    x.push_str(XML_DECLARATION);
    x.push_str("<Response><Dial timeout=\"");
    x.push_str(&DIAL_TIMEOUT_SECS.to_string());
    x.push_str("\" answerOnBridge=\"true\"");
    if let Some(id) = caller_id {
        x.push_str(" callerId=\"");
        escape_into(id, &mut x, true);
        x.push('"');
    }
    x.push('>');
    escape_into(number_e164, &mut x, false);
    x.push_str("</Dial>");
    push_say(&mut x, say_after_failed_dial);
    x.push_str("<Hangup/></Response>");
    x
}

/// Says `text` and hangs up (closed, refused, or nothing else to do).
/// twilio-python renders `<Response><Say>…</Say><Hangup /></Response>`.
pub fn twiml_say_hangup(text: &str) -> String {
    let mut x = String::with_capacity(96 + text.len());
    x.push_str(XML_DECLARATION);
    x.push_str("<Response>");
    push_say(&mut x, text);
    x.push_str("<Hangup/></Response>");
    x
}

fn push_say(x: &mut String, text: &str) {
    if text.trim().is_empty() {
        return;
    }
    x.push_str("<Say>");
    escape_into(text, x, false);
    x.push_str("</Say>");
}

/// Escapes XML text (`&`, `<`, `>`) or an attribute value (also quotes and
/// whitespace that attribute normalisation would turn into spaces), and
/// drops characters XML 1.0 cannot carry at all (most C0 controls, lone
/// surrogates cannot occur in `str`, U+FFFE/U+FFFF): a restaurant's
/// configured text must never make the document unparseable, because an
/// unparseable answer drops the call (Twilio error 12100).
fn escape_into(s: &str, out: &mut String, attribute: bool) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\'' if attribute => out.push_str("&apos;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' if attribute => out.push_str("&#13;"),
            '\t' | '\n' | '\r' => out.push(c),
            '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}' => {
                out.push(c)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // --- Vectors from the real SDK -------------------------------------
    // Produced once with twilio==9.13.0 from /work/main/.venv:
    //   RequestValidator(token).compute_signature(url, params)
    // where `params` was a dict, or (for repeated names) a stand-in MultiDict
    // whose getall() returned every value, as Flask's does.

    const DOC_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    /// Twilio's documented example; the SDK gives the documented signature.
    const DOC_SIG: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
    const TOKEN: &str = "0123456789abcdef0123456789abcdef";
    const URL: &str = "https://api.example.com/prod/twilio/voice";
    /// `multi_params()` under token "12345".
    const MULTI_SIG_12345: &str = "rLeU0Bu/sWA7+z7fn5N9zyY4P0c=";
    /// `multi_params()` under TOKEN.
    const MULTI_SIG: &str = "SOTrCXwHuZGVLFy2e4vnjj4D8fE=";
    /// `unicode_params()` under TOKEN at URL.
    const UNICODE_SIG: &str = "dDVf1nAgtiZj5257rkzst7UQfM0=";
    /// `unicode_params()` under TOKEN at URL with ":443" after the host.
    const UNICODE_SIG_443: &str = "ZzAVYuYa24SV5EA7YWycyGaVdCE=";
    /// No parameters under TOKEN at URL.
    const EMPTY_SIG: &str = "kF33xDqMPdVrhZQ97qyGkqftSPU=";

    fn doc_params() -> Vec<(String, String)> {
        pairs(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ])
    }

    fn multi_params() -> Vec<(String, String)> {
        let sid = format!("CA{}", "a".repeat(32));
        let mut p = pairs(&[
            ("To", "+15005550006"),
            ("From", "+14155551234"),
            ("b", "2"),
            ("b", "1"),
            ("b", "2"),
        ]);
        p.push(("CallSid".into(), sid));
        p.extend(pairs(&[("Z", ""), ("a", "x y&z")]));
        p
    }

    fn unicode_params() -> Vec<(String, String)> {
        pairs(&[("Body", "Grüße 😀 <&>"), ("é", "ü")])
    }

    #[test]
    fn signature_matches_twilio_python() {
        assert_eq!(signature("12345", DOC_URL, &doc_params()), DOC_SIG);
        assert_eq!(signature("12345", URL, &multi_params()), MULTI_SIG_12345);
        assert_eq!(signature(TOKEN, URL, &multi_params()), MULTI_SIG);
        assert_eq!(signature(TOKEN, URL, &unicode_params()), UNICODE_SIG);
        assert_eq!(signature(TOKEN, URL, &[]), EMPTY_SIG);
        let url_443 = "https://api.example.com:443/prod/twilio/voice";
        assert_eq!(
            signature(TOKEN, url_443, &unicode_params()),
            UNICODE_SIG_443
        );
    }

    #[test]
    fn signature_ignores_parameter_order_and_repeated_pairs() {
        let mut p = multi_params();
        p.reverse();
        assert_eq!(signature(TOKEN, URL, &p), MULTI_SIG);
        p.push(("b".into(), "1".into()));
        assert_eq!(signature(TOKEN, URL, &p), MULTI_SIG);
        p.push(("b".into(), "3".into()));
        assert_ne!(signature(TOKEN, URL, &p), MULTI_SIG);
    }

    #[test]
    fn verify_accepts_the_sdk_signature() {
        assert!(verify("12345", DOC_URL, &doc_params(), DOC_SIG));
        assert!(verify(TOKEN, URL, &unicode_params(), UNICODE_SIG));
        // Header whitespace is not part of the signature.
        assert!(verify(
            TOKEN,
            URL,
            &unicode_params(),
            &format!(" {UNICODE_SIG} ")
        ));
    }

    #[test]
    fn verify_tries_the_url_with_and_without_the_default_port() {
        let url_443 = "https://api.example.com:443/prod/twilio/voice";
        // Signed with the port, requested without it, and the other way round
        // (the SDK's validate() accepts both; checked against it).
        assert!(verify(TOKEN, URL, &unicode_params(), UNICODE_SIG_443));
        assert!(verify(TOKEN, url_443, &unicode_params(), UNICODE_SIG));
        // http's default is 80, not 443.
        let http = "http://api.example.com/prod/twilio/voice";
        let http_80 = "http://api.example.com:80/prod/twilio/voice";
        let sig_80 = signature(TOKEN, http_80, &unicode_params());
        assert!(verify(TOKEN, http, &unicode_params(), &sig_80));
        let http_443 = "http://api.example.com:443/prod/twilio/voice";
        let sig_443 = signature(TOKEN, http_443, &unicode_params());
        assert!(!verify(TOKEN, http, &unicode_params(), &sig_443));
    }

    #[test]
    fn verify_refuses_what_was_not_signed() {
        let p = unicode_params();
        assert!(!verify(TOKEN, URL, &p, ""));
        assert!(!verify(TOKEN, URL, &p, "not base64"));
        assert!(!verify("other-token", URL, &p, UNICODE_SIG));
        assert!(!verify(TOKEN, &format!("{URL}/"), &p, UNICODE_SIG));
        assert!(!verify(
            TOKEN,
            "https://api.example.com/stage/twilio/voice",
            &p,
            UNICODE_SIG
        ));
        let mut tampered = p.clone();
        tampered[0].1.push('!');
        assert!(!verify(TOKEN, URL, &tampered, UNICODE_SIG));
        let mut extra = p.clone();
        extra.push(("To".into(), "+15005550006".into()));
        assert!(!verify(TOKEN, URL, &extra, UNICODE_SIG));
        // One character short, and a prefix of the right value.
        assert!(!verify(
            TOKEN,
            URL,
            &p,
            &UNICODE_SIG[..UNICODE_SIG.len() - 1]
        ));
    }

    #[test]
    fn port_variants_follow_the_sdk() {
        let v = |u: &str| port_variants(u);
        assert_eq!(
            v("https://h.example/x?y=1"),
            (
                "https://h.example/x?y=1".into(),
                "https://h.example:443/x?y=1".into()
            )
        );
        assert_eq!(
            v("https://h.example:443/x"),
            (
                "https://h.example/x".into(),
                "https://h.example:443/x".into()
            )
        );
        // The SDK removes any port, not just the default one.
        assert_eq!(
            v("https://h.example:8443/x"),
            (
                "https://h.example/x".into(),
                "https://h.example:8443/x".into()
            )
        );
        assert_eq!(
            v("http://h.example?q"),
            ("http://h.example?q".into(), "http://h.example:80?q".into())
        );
        assert_eq!(
            v("https://[::1]:443/x"),
            ("https://[::1]/x".into(), "https://[::1]:443/x".into())
        );
        assert_eq!(
            v("https://[::1]/x"),
            ("https://[::1]/x".into(), "https://[::1]:443/x".into())
        );
        assert_eq!(v("not a url"), ("not a url".into(), "not a url".into()));
    }

    // --- Form parsing ---------------------------------------------------

    #[test]
    fn parse_form_decodes_plus_and_percent() {
        let body = b"CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234\
&From=%2B12349013030&To=%2B18005551212";
        let p = parse_form(body).unwrap();
        assert_eq!(p, doc_params());
        assert_eq!(signature("12345", DOC_URL, &p), DOC_SIG);

        let p = parse_form(b"a=x+y%26z&b=%C3%BC&empty=&bare&&b=2").unwrap();
        assert_eq!(
            p,
            pairs(&[
                ("a", "x y&z"),
                ("b", "ü"),
                ("empty", ""),
                ("bare", ""),
                ("b", "2")
            ])
        );
        assert_eq!(parse_form(b"").unwrap(), vec![]);
        // A malformed escape is kept literally, as browsers and Twilio's SDKs do.
        assert_eq!(parse_form(b"a=%zz%4").unwrap(), pairs(&[("a", "%zz%4")]));
        // `=` inside a value.
        assert_eq!(parse_form(b"a=b=c").unwrap(), pairs(&[("a", "b=c")]));
    }

    #[test]
    fn parse_form_refuses_non_utf8() {
        assert_eq!(parse_form(b"a=1&b=%FF"), Err(FormError::NotUtf8(1)));
        assert_eq!(parse_form(b"%C3=1"), Err(FormError::NotUtf8(0)));
        assert_eq!(parse_form(b"a=\xff"), Err(FormError::NotUtf8(0)));
    }

    #[test]
    fn parse_form_bounds_size_and_count() {
        let big = vec![b'a'; MAX_FORM_BYTES + 1];
        assert_eq!(
            parse_form(&big),
            Err(FormError::TooLarge(MAX_FORM_BYTES + 1))
        );
        assert!(parse_form(&vec![b'a'; MAX_FORM_BYTES]).is_ok());

        let body = |n: usize| {
            (0..n)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join("&")
        };
        assert_eq!(
            parse_form(body(MAX_FORM_PARAMS).as_bytes()).unwrap().len(),
            200
        );
        assert_eq!(
            parse_form(body(MAX_FORM_PARAMS + 1).as_bytes()),
            Err(FormError::TooManyParams)
        );
        // Empty segments do not count.
        let sparse = format!("{}&&&&", body(MAX_FORM_PARAMS));
        assert!(parse_form(sparse.as_bytes()).is_ok());
    }

    // --- public_url -----------------------------------------------------

    #[test]
    fn public_url_rebuilds_what_twilio_requested() {
        assert_eq!(
            public_url(
                "https",
                "abc.execute-api.us-east-1.amazonaws.com",
                "/prod/twilio/voice",
                None
            ),
            "https://abc.execute-api.us-east-1.amazonaws.com/prod/twilio/voice"
        );
        assert_eq!(
            public_url(
                "HTTPS, http",
                "api.example.com",
                "/twilio/voice",
                Some("r=abc%20d")
            ),
            "https://api.example.com/twilio/voice?r=abc%20d"
        );
        assert_eq!(
            public_url("", "localhost:5000", "api/twilio/voice", Some("")),
            "https://localhost:5000/api/twilio/voice"
        );
        let url = public_url("https", "mycompany.com", "/myapp.php", Some("foo=1&bar=2"));
        assert!(verify("12345", &url, &doc_params(), DOC_SIG));
    }

    // --- Typed views ----------------------------------------------------

    const SID: &str = "CA0123456789abcdef0123456789ABCDEF";

    #[test]
    fn voice_request_from_params() {
        let p = pairs(&[
            ("AccountSid", "AC0123456789abcdef0123456789abcdef"),
            ("CallSid", SID),
            ("From", "+14155551234"),
            ("To", "+15005550006"),
            ("CallStatus", "ringing"),
            ("Direction", "inbound"),
            ("ToState", ""),
        ]);
        let v = VoiceRequest::from_params(&p).unwrap();
        assert_eq!(
            v,
            VoiceRequest {
                call_sid: SID.into(),
                account_sid: Some("AC0123456789abcdef0123456789abcdef".into()),
                from: Some("+14155551234".into()),
                to: "+15005550006".into(),
                call_status: Some("ringing".into()),
                direction: Some("inbound".into()),
            }
        );
        let minimal = pairs(&[("CallSid", SID), ("To", "+15005550006"), ("From", "")]);
        let v = VoiceRequest::from_params(&minimal).unwrap();
        assert_eq!(v.from, None);
        assert_eq!(v.account_sid, None);
    }

    #[test]
    fn voice_request_requires_call_sid_and_to() {
        let to = ("To", "+15005550006");
        assert_eq!(
            VoiceRequest::from_params(&pairs(&[to])),
            Err(MissingParam::Missing("CallSid"))
        );
        assert_eq!(
            VoiceRequest::from_params(&pairs(&[("CallSid", SID)])),
            Err(MissingParam::Missing("To"))
        );
        assert_eq!(
            VoiceRequest::from_params(&pairs(&[("CallSid", SID), ("To", "  ")])),
            Err(MissingParam::Missing("To"))
        );
        for bad in [
            "CA1234567890ABCDE",
            "AC0123456789abcdef0123456789abcdef",
            "CA0123456789abcdef0123456789abcdeg",
            "CA0123456789abcdef0123456789abcdef0",
            "CAé123456789abcdef0123456789abcde",
        ] {
            assert_eq!(
                VoiceRequest::from_params(&pairs(&[("CallSid", bad), to])),
                Err(MissingParam::Invalid("CallSid")),
                "{bad}"
            );
        }
    }

    #[test]
    fn status_callback_from_params() {
        let p = pairs(&[
            ("CallSid", SID),
            ("CallStatus", "completed"),
            ("CallDuration", "42"),
            ("From", "+14155551234"),
            ("To", "+15005550006"),
            ("Timestamp", "Wed, 08 Oct 2025 13:54:12 +0000"),
        ]);
        assert_eq!(
            StatusCallback::from_params(&p).unwrap(),
            StatusCallback {
                call_sid: SID.into(),
                call_status: "completed".into(),
                call_duration: Some(42),
                from: Some("+14155551234".into()),
                to: Some("+15005550006".into()),
                timestamp: Some("Wed, 08 Oct 2025 13:54:12 +0000".into()),
            }
        );
        assert_eq!(
            StatusCallback::from_params(&pairs(&[("CallSid", SID)])),
            Err(MissingParam::Missing("CallStatus"))
        );
        let ringing =
            StatusCallback::from_params(&pairs(&[("CallSid", SID), ("CallStatus", "ringing")]))
                .unwrap();
        assert_eq!(ringing.call_duration, None);
    }

    #[test]
    fn call_duration_is_lenient_and_bounded() {
        let dur = |d: &str| {
            StatusCallback::from_params(&pairs(&[
                ("CallSid", SID),
                ("CallStatus", "completed"),
                ("CallDuration", d),
            ]))
            .unwrap()
            .call_duration
        };
        assert_eq!(dur("0"), Some(0));
        assert_eq!(dur(" 61 "), Some(61));
        assert_eq!(dur("61.9"), Some(61));
        assert_eq!(dur("6.1e1"), Some(61));
        assert_eq!(dur("86400"), Some(86_400));
        assert_eq!(dur("999999999"), Some(MAX_CALL_SECS));
        assert_eq!(dur("1e300"), Some(MAX_CALL_SECS));
        assert_eq!(dur("-1"), None);
        assert_eq!(dur("NaN"), None);
        assert_eq!(dur("inf"), None);
        assert_eq!(dur("soon"), None);
        assert_eq!(dur(""), None);
    }

    // --- TwiML ----------------------------------------------------------

    #[derive(Debug, PartialEq)]
    enum Ev {
        Open(String, Vec<(String, String)>),
        Close(String),
        Text(String),
    }

    /// A minimal well-formedness check for the TwiML we write: the
    /// declaration, balanced elements, quoted attributes, and only the five
    /// named entities or numeric references. Returns the events, unescaped.
    fn parse_xml(xml: &str) -> Result<Vec<Ev>, String> {
        let mut rest = xml.strip_prefix(XML_DECLARATION).ok_or("no declaration")?;
        let mut events = Vec::new();
        let mut stack: Vec<String> = Vec::new();
        let mut roots = 0;
        fn name(s: &str) -> (&str, &str) {
            let end = s
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(s.len());
            (&s[..end], &s[end..])
        }
        fn unescape(s: &str) -> Result<String, String> {
            if s.contains('<') {
                return Err(format!("raw < in {s:?}"));
            }
            let mut out = String::new();
            let mut it = s.split('&');
            out.push_str(it.next().unwrap());
            for part in it {
                let (ent, tail) = part.split_once(';').ok_or("unterminated entity")?;
                let c = match ent {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    _ => ent
                        .strip_prefix('#')
                        .and_then(|n| n.parse::<u32>().ok())
                        .and_then(char::from_u32)
                        .ok_or(format!("bad entity {ent}"))?,
                };
                out.push(c);
                out.push_str(tail);
            }
            Ok(out)
        }
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("</") {
                let (n, r) = name(r);
                let r = r.strip_prefix('>').ok_or("bad close tag")?;
                if stack.pop().as_deref() != Some(n) {
                    return Err(format!("unbalanced </{n}>"));
                }
                events.push(Ev::Close(n.into()));
                rest = r;
            } else if let Some(r) = rest.strip_prefix('<') {
                if stack.is_empty() {
                    roots += 1;
                }
                let (n, mut r) = name(r);
                if n.is_empty() {
                    return Err("empty tag name".into());
                }
                let mut attrs = Vec::new();
                loop {
                    r = r.trim_start_matches(' ');
                    if let Some(after) = r.strip_prefix("/>") {
                        events.push(Ev::Open(n.into(), attrs));
                        events.push(Ev::Close(n.into()));
                        r = after;
                        break;
                    }
                    if let Some(after) = r.strip_prefix('>') {
                        events.push(Ev::Open(n.into(), attrs));
                        stack.push(n.into());
                        r = after;
                        break;
                    }
                    let (a, after) = name(r);
                    let after = after.strip_prefix("=\"").ok_or("unquoted attribute")?;
                    let (value, after) = after.split_once('"').ok_or("unterminated value")?;
                    if a.is_empty() {
                        return Err("empty attribute name".into());
                    }
                    attrs.push((a.into(), unescape(value)?));
                    r = after;
                }
                rest = r;
            } else {
                let end = rest.find('<').unwrap_or(rest.len());
                if stack.is_empty() {
                    return Err("text outside the root".into());
                }
                events.push(Ev::Text(unescape(&rest[..end])?));
                rest = &rest[end..];
            }
        }
        if !stack.is_empty() || roots != 1 {
            return Err("unclosed or several roots".into());
        }
        Ok(events)
    }

    fn open(n: &str, attrs: &[(&str, &str)]) -> Ev {
        Ev::Open(
            n.into(),
            attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn twiml_forward_exact() {
        assert_eq!(
            twiml_forward("+15005550006", None, "Sorry, we missed you. Goodbye."),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>\
<Dial timeout=\"25\" answerOnBridge=\"true\">+15005550006</Dial>\
<Say>Sorry, we missed you. Goodbye.</Say><Hangup/></Response>"
        );
        assert_eq!(
            twiml_forward("+15005550006", Some("+14155551234"), ""),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>\
<Dial timeout=\"25\" answerOnBridge=\"true\" callerId=\"+14155551234\">+15005550006</Dial>\
<Hangup/></Response>"
        );
    }

    #[test]
    fn twiml_forward_parses_and_escapes_hostile_text() {
        let hostile = "Tom & Jerry's <Dial>+1900</Dial> \"diner\" ]]> &amp;";
        let xml = twiml_forward("+1500<5550006", Some("\"><Hangup/>'\n"), hostile);
        assert!(!xml.contains("<Dial>+1900"));
        let ev = parse_xml(&xml).unwrap();
        assert_eq!(
            ev,
            vec![
                open("Response", &[]),
                open(
                    "Dial",
                    &[
                        ("timeout", "25"),
                        ("answerOnBridge", "true"),
                        ("callerId", "\"><Hangup/>'\n"),
                    ]
                ),
                Ev::Text("+1500<5550006".into()),
                Ev::Close("Dial".into()),
                open("Say", &[]),
                Ev::Text(hostile.into()),
                Ev::Close("Say".into()),
                open("Hangup", &[]),
                Ev::Close("Hangup".into()),
                Ev::Close("Response".into()),
            ]
        );
    }

    #[test]
    fn twiml_say_hangup_exact_and_escaped() {
        assert_eq!(
            twiml_say_hangup("We're closed & back at 9 <am>."),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>\
<Say>We're closed &amp; back at 9 &lt;am&gt;.</Say><Hangup/></Response>"
        );
        assert_eq!(
            twiml_say_hangup("  "),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Hangup/></Response>"
        );
        let ev = parse_xml(&twiml_say_hangup("Grüße 😀 \"quoted\"\n'line'")).unwrap();
        assert_eq!(ev[2], Ev::Text("Grüße 😀 \"quoted\"\n'line'".into()));
    }

    #[test]
    fn twiml_drops_characters_xml_cannot_carry() {
        let xml = twiml_say_hangup("a\u{0}b\u{1b}c\u{fffe}d\te");
        assert!(xml.contains("<Say>abcd\te</Say>"), "{xml}");
        assert!(parse_xml(&xml).is_ok());
    }

    #[test]
    fn the_checker_rejects_broken_xml() {
        for bad in [
            "<Response><Say>a & b</Say></Response>",
            "<Response><Say>a < b</Say></Response>",
            "<Response><Say>x</Response>",
            "<Response a=b/>",
            "<Response/><Response/>",
        ] {
            assert!(
                parse_xml(&format!("{XML_DECLARATION}{bad}")).is_err(),
                "{bad}"
            );
        }
    }
}
