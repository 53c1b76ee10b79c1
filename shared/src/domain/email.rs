//! The owner's call notification: subject, text and HTML bodies. Everything
//! that came from a caller or vendor is escaped for HTML and stripped of
//! control characters (so nothing can inject headers or markup).

use chrono_tz::Tz;
use phonenumber::country;

use super::analysis::transcript::{render as render_turns, Turn};
use super::call::CallRecord;
use super::phone;
use super::restaurant::Restaurant;

pub const TRANSCRIPT_EXCERPT_CHARS: usize = 1_500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailContent {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if is_invisible(c) => {}
            c => out.push(c),
        }
    }
    out
}

/// Characters that render as nothing: every format character (Unicode
/// category Cf: zero-width spaces and joiners, bidi controls, soft hyphens,
/// tags …) and the other default-ignorable code points (fillers, variation
/// selectors). They can hide or disguise what a line says (reverse a link's
/// text, split a word filters look for), so caller- and vendor-supplied text
/// never keeps them.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// One line of plain text: control characters (CR, LF, NUL …) become spaces,
/// invisible characters are dropped.
pub fn one_line(s: &str) -> String {
    s.chars()
        .filter(|c| !is_invisible(*c))
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn excerpt(turns: &[Turn]) -> String {
    let text = render_turns(turns);
    let clean: String = text
        .chars()
        .filter(|c| *c == '\n' || !(c.is_control() || is_invisible(*c)))
        .collect();
    if clean.chars().count() <= TRANSCRIPT_EXCERPT_CHARS {
        clean
    } else {
        let cut: String = clean.chars().take(TRANSCRIPT_EXCERPT_CHARS).collect();
        format!("{cut}…")
    }
}

fn duration_text(seconds: u64) -> String {
    match (seconds / 60, seconds % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}

pub fn render(call: &CallRecord, restaurant: &Restaurant, region: country::Id) -> EmailContent {
    let tz: Tz = restaurant.timezone;
    let when = call
        .started_at
        .with_timezone(&tz)
        .format("%a %b %-d, %Y at %-I:%M %p %Z")
        .to_string();
    let caller = call
        .caller_number
        .as_deref()
        .map(|n| phone::display(n, region))
        .unwrap_or_else(|| "Withheld number".into());
    let a = &call.analysis;
    let completion = call.completion.as_ref();
    let duration = completion
        .map(|c| duration_text(c.duration))
        .unwrap_or_else(|| "unknown".into());
    let forwarded = completion
        .and_then(|c| c.forwarded_to.as_deref())
        .map(|f| format!("Yes, to {}", one_line(f)))
        .unwrap_or_else(|| "No".into());
    let audio = completion
        .and_then(|c| c.audio_url.as_deref())
        .or(call.audio_url.as_deref())
        .map(one_line);
    let turns = completion
        .map(|c| c.final_transcript.as_slice())
        .filter(|t| !t.is_empty())
        .unwrap_or(&call.transcript);
    let transcript = excerpt(turns);
    let name = one_line(&restaurant.name);
    let summary = one_line(&a.summary);

    let subject = one_line(&format!(
        "{name}: {} call from {caller} ({}, {})",
        a.reason.as_str(),
        a.sentiment_label.as_str(),
        duration
    ));

    let rows: Vec<(&str, String)> = vec![
        ("Caller", caller.clone()),
        ("Time", when.clone()),
        ("Reason", a.reason.as_str().to_string()),
        (
            "Sentiment",
            format!("{} ({}/100)", a.sentiment_label.as_str(), a.sentiment_score),
        ),
        ("Summary", summary.clone()),
        ("Duration", duration.clone()),
        ("Forwarded", forwarded.clone()),
    ];

    let mut text = format!("A call to {name} just ended.\n\n");
    for (k, v) in &rows {
        text.push_str(&format!("{k}: {v}\n"));
    }
    if let Some(url) = &audio {
        text.push_str(&format!("Recording: {url}\n"));
    }
    text.push_str(&format!(
        "\nTranscript (excerpt):\n{transcript}\n\nCall id: {}\n",
        call.call_id
    ));

    let mut html = String::from(
        "<!doctype html><html><body style=\"font-family:Arial,sans-serif;color:#222\">",
    );
    html.push_str(&format!(
        "<h2 style=\"margin:0 0 12px\">A call to {} just ended</h2>",
        escape_html(&name)
    ));
    html.push_str("<table cellpadding=\"4\" style=\"border-collapse:collapse\">");
    for (k, v) in &rows {
        html.push_str(&format!(
            "<tr><th align=\"left\" style=\"padding-right:16px\">{}</th><td>{}</td></tr>",
            escape_html(k),
            escape_html(v)
        ));
    }
    if let Some(url) = &audio {
        let e = escape_html(url);
        html.push_str(&format!(
            "<tr><th align=\"left\">Recording</th><td><a href=\"{e}\">{e}</a></td></tr>"
        ));
    }
    html.push_str("</table>");
    html.push_str(&format!(
        "<h3>Transcript (excerpt)</h3><pre style=\"white-space:pre-wrap;font-family:inherit\">{}</pre>",
        escape_html(&transcript)
    ));
    html.push_str(&format!(
        "<p style=\"color:#888;font-size:12px\">Call id {}</p></body></html>",
        escape_html(&call.call_id)
    ));
    EmailContent {
        subject,
        text,
        html,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::analysis::transcript::parse_text;
    use crate::domain::call::Poster;
    use crate::domain::call::{CallRecord, Completion, ProcessCallRequest};
    use crate::domain::ids::{ApiKeyId, Id, RestaurantId};
    use crate::domain::restaurant::RestaurantInput;
    use chrono::{TimeZone, Utc};

    const US: country::Id = country::Id::US;

    fn fixtures(transcript: &str, forwarded: Option<&str>) -> (CallRecord, Restaurant) {
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 23, 15, 0).unwrap();
        let r: RestaurantInput = serde_json::from_value(serde_json::json!({
            "name": "Luigi's <Trattoria>", "phoneNumbers": ["(555) 123-4567"], "timezone": "America/New_York"
        }))
        .unwrap();
        let r = r
            .into_restaurant(RestaurantId::generate(), now, US)
            .unwrap();
        let req: ProcessCallRequest = serde_json::from_value(serde_json::json!({
            "restaurantId": "rst_1", "callId": "CA1", "timestamp": now.to_rfc3339(),
            "callerNumber": "+15559876543", "transcript": transcript
        }))
        .unwrap();
        let key = ApiKeyId::parse("key12345").unwrap();
        let poster = Poster {
            owner: &key,
            key: &key,
        };
        let mut call = CallRecord::new(
            req.validate(now, US).unwrap(),
            &r.restaurant_id,
            poster,
            now,
            365,
        );
        call.completion = Some(Completion {
            duration: 125,
            forwarded_to: forwarded.map(str::to_string),
            final_transcript: parse_text(transcript),
            audio_url: Some("https://storage.example/a.mp3?x=1&y=\"2\"".into()),
            completed_at: now,
        });
        (call, r)
    }

    #[test]
    fn owner_can_act_on_it() {
        let (call, r) = fixtures("Customer: can I book a table for 4 tomorrow at 7pm", None);
        let m = render(&call, &r, US);
        assert!(
            m.subject.contains("Reservation call from (555) 987-6543"),
            "{}",
            m.subject
        );
        assert!(
            m.text.contains("Time: Fri Dec 4, 2026 at 6:15 PM EST"),
            "{}",
            m.text
        );
        assert!(m.text.contains("Duration: 2 min 5 s"));
        assert!(m.text.contains("Forwarded: No"));
        assert!(m.text.contains("Recording: https://storage.example/a.mp3"));
        assert!(m.html.contains("table for 4"));
    }

    #[test]
    fn hostile_strings_are_escaped() {
        let (call, r) = fixtures(
            "Customer: <script>alert('x')</script> & <img src=x onerror=alert(1)>",
            Some("manager\r\nBcc: victim@example.com"),
        );
        let m = render(&call, &r, US);
        assert!(!m.html.contains("<script>") && !m.html.contains("<img"));
        assert!(m
            .html
            .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp;"));
        assert!(m.html.contains("Luigi&#39;s &lt;Trattoria&gt;"));
        assert!(m.html.contains("y=&quot;2&quot;"));
        assert!(!m.subject.contains('\n') && !m.subject.contains('\r'));
        assert!(m
            .text
            .contains("Forwarded: Yes, to manager  Bcc: victim@example.com"));
        assert!(!m.text.contains("\r\nBcc"));
    }

    #[test]
    fn bidi_controls_are_dropped() {
        let (call, r) = fixtures(
            "Customer: pay at \u{202E}moc.liame\u{202C} now",
            Some("\u{2067}x\u{2069}"),
        );
        let m = render(&call, &r, US);
        for c in ['\u{202E}', '\u{202C}', '\u{2067}', '\u{2069}'] {
            assert!(!m.html.contains(c) && !m.text.contains(c) && !m.subject.contains(c));
        }
    }

    #[test]
    fn invisible_format_characters_are_dropped() {
        let hidden = [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{2063}',
            '\u{180E}',
            '\u{FFF9}',
            '\u{E0041}',
            '\u{3164}',
            '\u{FE0F}',
            '\u{034F}',
            '\u{061C}',
        ];
        let word: String = hidden.iter().map(|c| format!("r{c}")).collect();
        let (call, r) = fixtures(
            &format!("Customer: {word}efund"),
            Some(&format!("desk{word}")),
        );
        let m = render(&call, &r, US);
        for c in hidden {
            assert!(
                !m.html.contains(c) && !m.text.contains(c) && !m.subject.contains(c),
                "U+{:04X} survived",
                c as u32
            );
        }
        assert!(m.text.contains("rrrrrrrrrrrrrrefund"), "{}", m.text);
    }
}
