"""End-to-end security tests: API10:2023 Unsafe Consumption of APIs
(OWASP API Security Top 10, 2023).

The stack these run against, and the rules every security module follows, are described
in infra/SECURITY.md and infra/tests/helpers.py.
"""
from __future__ import annotations

import json
import os
import uuid
from html.parser import HTMLParser

import pytest
from helpers import (
    ALL_EVENTS,
    JSON,
    LOGIN_PATH,
    assert_error,
    call_body,
    config_path,
    owner_email,
    sent_messages,
    unique_phone,
    wait_for,
    wait_mail,
)

pytestmark = pytest.mark.e2e

# Bidirectional-text controls (embeddings, overrides, isolates) and the implicit marks.
BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


class _Html(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


SAFE_TAGS = {"html", "body", "h2", "h3", "table", "tr", "th", "td", "a", "pre", "p", "br"}
SAFE_ATTRS = {"style", "align", "cellpadding", "href"}


def parse_mail_html(body: str) -> _Html:
    """The e-mail's HTML has only our own markup: no script, no event handlers, https links."""
    p = _Html()
    p.feed(body)
    p.close()
    for tag, attrs in p.tags:
        assert tag in SAFE_TAGS, f"unexpected <{tag}> in the e-mail"
        for name, value in attrs:
            assert name in SAFE_ATTRS, f"unexpected attribute {name}={value!r} on <{tag}>"
            if name == "href":
                assert value and value.startswith("https://"), value
            if name == "style":
                assert "expression" not in value and "url(" not in value, value
    return p


def assert_clean_subject(subject: str):
    assert "\r" not in subject and "\n" not in subject, repr(subject)
    assert not any(ord(c) < 32 or ord(c) == 127 for c in subject), repr(subject)


def complete_and_mail(api, key, rid, process: dict, complete: dict) -> tuple[str, dict]:
    r = api.post("/ivr/call", key, json=call_body(rid, **process))
    assert r.status_code == 200, r.text
    call_id = r.json()["data"]["callId"]
    r = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 65, **complete})
    assert r.status_code == 200, r.text
    return call_id, wait_mail(call_id)


XSS_SCRIPT = "<script>alert('xss')</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'


class TestAPI10UnsafeConsumption:
    """API10 Unsafe Consumption of APIs: what vendors' IVRs send (transcripts, forwardedTo,
    audioUrl, caller numbers) is data, never markup or headers, when it reaches the owner's
    e-mail; and the functions' logs never hold credentials, transcripts or full numbers."""

    def test_markup_in_call_data_is_escaped_in_the_email(self, api, make_key, make_restaurant):
        restaurant = make_restaurant(notificationEmails=[owner_email()])
        key = make_key()["apiKey"]
        turns = [
            {"role": "user", "message": f"hi {XSS_SCRIPT} there"},
            {"role": "user", "message": f"look {XSS_IMG} here"},
            {
                "role": "agent",
                "message": '<a href="javascript:alert(2)">click</a> <iframe src=//evil.example>',
            },
            {
                "role": "user",
                "message": "<style>body{background:url(//evil.example/t.png)}</style>"
                " & &amp; &#60;b&#62;",
            },
        ]
        audio = 'https://evil.example/a.mp3?x="><img src=x onerror=alert(3)>&y=<script>'
        forwarded = f'{XSS_IMG}{XSS_SCRIPT}'
        call_id, mail = complete_and_mail(
            api,
            key,
            restaurant["restaurantId"],
            {"transcript": turns},
            {"forwardedTo": forwarded, "audioUrl": audio, "finalTranscript": turns},
        )
        body = mail["body"]
        parsed = parse_mail_html(body)
        for raw in ("<script", "<img", "<iframe", "<style", "<a href=\"javascript"):
            assert raw not in body, f"{raw!r} reached the e-mail unescaped"
        assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in body
        assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in body
        assert "&amp;amp;" in body, "an entity in the input is shown, not interpreted"
        text = "".join(parsed.text)
        assert XSS_SCRIPT in text and XSS_IMG in text, "the caller's words survive, as text"
        links = [dict(attrs)["href"] for tag, attrs in parsed.tags if tag == "a"]
        assert len(links) == 1 and links[0].startswith("https://evil.example/a.mp3?"), links
        assert not set('"<> ') & set(links[0]), f"the recording link was not encoded: {links[0]!r}"
        assert_clean_subject(mail["subject"])

    def test_header_injection_through_call_data_goes_nowhere(
        self, api, admin_token, make_key, make_restaurant
    ):
        owner = owner_email()
        restaurant = make_restaurant(notificationEmails=[owner])
        rid = restaurant["restaurantId"]
        key = make_key()["apiKey"]
        injection = "manager\r\nBcc: victim@evil.example\r\nSubject: pwned"
        # In fields that are one line, control characters are refused ...
        call_id = api.post("/ivr/call", key, json=call_body(rid)).json()["data"]["callId"]
        r = api.post(
            f"/ivr/call/{call_id}/complete", key, json={"duration": 5, "forwardedTo": injection}
        )
        if r.status_code == 200:  # accepted: then it must be neutralized in the e-mail
            mail = wait_mail(call_id)
            assert_clean_subject(mail["subject"])
            assert mail["destinations"].get("ToAddresses") == [owner] and not mail[
                "destinations"
            ].get("BccAddresses")
        else:
            assert_error(r, 422, "VALIDATION_ERROR", "forwardedTo")
        assert_error(
            api.post(
                "/ivr/call",
                key,
                json=call_body(rid, callerNumber="+15559871234\r\nBcc: victim@evil.example"),
            ),
            422,
            "VALIDATION_ERROR",
            "callerNumber",
        )
        # A URL parser drops CR/LF/tab (WHATWG), so a recording link is refused or stored
        # without them.
        r = api.post(
            "/ivr/call",
            key,
            json=call_body(rid, audioUrl="https://x.example/a\r\nBcc: victim@evil.example"),
        )
        if r.status_code == 200:
            stored = api.get(f"/ivr/calls/{r.json()['data']['callId']}", admin_token).json()[
                "data"
            ]["audioUrl"]
            assert "\r" not in stored and "\n" not in stored and " " not in stored, repr(stored)
        else:
            assert_error(r, 422, "VALIDATION_ERROR", "audioUrl")
        # ... and in transcripts, where line breaks are legitimate, they stay inside the body.
        turns = [
            {"role": "user", "message": injection},
            {"role": "user", "message": "line\rbreak\u0000nul\u0085nel\u2028ls"},
        ]
        call_id, mail = complete_and_mail(
            api, key, rid, {"transcript": turns}, {"finalTranscript": turns}
        )
        assert_clean_subject(mail["subject"])
        assert "pwned" not in mail["subject"]
        dest = mail["destinations"]
        assert dest.get("ToAddresses") == [owner], dest
        assert not dest.get("CcAddresses") and not dest.get("BccAddresses"), dest
        assert "victim@evil.example" not in json.dumps(dest)
        assert "\r" not in mail["body"] and "\u0000" not in mail["body"]
        parse_mail_html(mail["body"])
        for m in sent_messages():
            assert "victim@evil.example" not in json.dumps(m.get("destinations")), m

    def test_hostile_restaurant_name_in_subject_and_body(self, api, make_key, make_restaurant):
        name = f"Luigi's <b onmouseover=alert(1)>\"Bistro\"</b> {XSS_SCRIPT}"
        restaurant = make_restaurant(name=name, notificationEmails=[owner_email()])
        key = make_key()["apiKey"]
        _, mail = complete_and_mail(api, key, restaurant["restaurantId"], {}, {})
        assert_clean_subject(mail["subject"])
        assert "<b onmouseover" not in mail["body"] and "<script" not in mail["body"]
        assert (
            "Luigi&#39;s &lt;b onmouseover=alert(1)&gt;&quot;Bistro&quot;&lt;/b&gt;" in mail["body"]
        )
        parse_mail_html(mail["body"])

    def test_bidi_controls_do_not_reach_the_email(self, api, make_key, make_restaurant):
        """Trojan-Source-style spoofing (CVE-2021-42574): a right-to-left override makes
        `exe.gnp` render as `png.exe`; neither the subject nor the e-mail's text may carry one."""
        restaurant = make_restaurant(
            name="Luigi's \u202eairottarT\u202c", notificationEmails=[owner_email()]
        )
        key = make_key()["apiKey"]
        turns = [
            {
                "role": "user",
                "message": "please open invoice_\u202egnp.exe\u202c and "
                "\u2067isolated\u2069 \u200fmark",
            }
        ]
        _, mail = complete_and_mail(
            api,
            key,
            restaurant["restaurantId"],
            {"transcript": turns},
            {"finalTranscript": turns, "forwardedTo": "manager \u202eregnad\u202c"},
        )
        found_subject = BIDI_CONTROLS & set(mail["subject"])
        text = "".join(parse_mail_html(mail["body"]).text)
        found_body = BIDI_CONTROLS & set(text)
        assert not found_subject and not found_body, (
            f"bidi controls in the subject: {sorted(map(hex, map(ord, found_subject)))}, "
            f"in the body: {sorted(map(hex, map(ord, found_body)))}"
        )

    def test_invisible_characters_do_not_reach_the_email(self, api, make_key, make_restaurant):
        """Zero-width and other invisible format characters (category Cf and the other
        default-ignorables) can split a word or hide text; none reach the subject or body."""
        restaurant = make_restaurant(notificationEmails=[owner_email()])
        key = make_key()["apiKey"]
        hidden = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u2063\u180e\ufff9\U000e0041\u3164\u034f"
        message = "please r" + "r".join(hidden) + "efund my card"
        turns = [{"role": "user", "message": message}]
        _, mail = complete_and_mail(
            api,
            key,
            restaurant["restaurantId"],
            {"transcript": turns},
            {"finalTranscript": turns, "forwardedTo": "desk\u200b\u2060two"},
        )
        text = "".join(parse_mail_html(mail["body"]).text)
        for where, value in (
            ("subject", mail["subject"]),
            ("body", text),
            ("raw body", mail["body"]),
        ):
            found = sorted(f"U+{ord(c):04X}" for c in set(hidden) & set(value))
            assert not found, f"invisible characters in the {where}: {found}"
        # What was visible stays, joined up.
        assert "please " + "r" * len(hidden) + "efund my card" in text, text
        assert "desktwo" in text, text

    def test_very_long_words_are_bounded(self, api, make_key, make_restaurant):
        restaurant = make_restaurant(notificationEmails=[owner_email()])
        key = make_key()["apiKey"]
        word = "W" * 50_000
        amp = "&" * 700  # escapes to five times its size
        turns = [{"role": "user", "message": amp}, {"role": "user", "message": f"hello {word}"}]
        _, mail = complete_and_mail(api, key, restaurant["restaurantId"], {"transcript": turns}, {})
        body = mail["body"]
        assert "W" * 5000 not in body, "the transcript excerpt is not bounded"
        assert len(body) < 32 * 1024, f"the e-mail is {len(body)} bytes"
        parse_mail_html(body)
        assert_clean_subject(mail["subject"])
        assert len(mail["subject"]) < 400
        # Over-long one-line fields are refused rather than mailed.
        call_id = api.post("/ivr/call", key, json=call_body(restaurant["restaurantId"])).json()[
            "data"
        ]["callId"]
        r = api.post(
            f"/ivr/call/{call_id}/complete", key, json={"duration": 5, "forwardedTo": "x" * 101}
        )
        assert_error(r, 422, "VALIDATION_ERROR", "forwardedTo")
        r = api.post(
            f"/ivr/call/{call_id}/complete",
            key,
            json={"duration": 5, "audioUrl": "https://x.example/" + "a" * 3000},
        )
        assert_error(r, 422, "VALIDATION_ERROR", "audioUrl")

    @pytest.mark.parametrize(
        "url",
        [
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "http://x.example/a.mp3",
            "https://user:pw@x.example/a.mp3",
            "//x.example/a.mp3",
            "https://",
        ],
    )
    def test_recording_links_must_be_plain_https(self, api, make_key, make_restaurant, url):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        assert_error(
            api.post("/ivr/call", key, json=call_body(rid, audioUrl=url)),
            422,
            "VALIDATION_ERROR",
            "audioUrl",
        )
        call_id = api.post("/ivr/call", key, json=call_body(rid)).json()["data"]["callId"]
        r = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 5, "audioUrl": url})
        assert_error(r, 422, "VALIDATION_ERROR", "audioUrl")

    def test_malformed_unicode_is_a_client_error(self, api, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        body = json.dumps(call_body(rid, transcript="PLACEHOLDER")).replace(
            "PLACEHOLDER", "Customer: \\ud800 lone surrogate"
        )
        r = api.post("/ivr/call", key, data=body, headers=dict(JSON))
        assert r.status_code in (400, 422), r.text
        assert_error(
            r, r.status_code, "BAD_REQUEST" if r.status_code == 400 else "VALIDATION_ERROR"
        )
        # (A body that is not UTF-8 at all never reaches the function locally: `cargo lambda
        # watch` answers 500 itself, so it is not tested here.)

    @pytest.mark.usefixtures("fresh_sign_in_budget")
    def test_logs_hold_no_credentials_transcripts_or_caller_numbers(
        self, api, admin_token, make_key, make_restaurant, receiver
    ):
        """Reads the function logs from the `cargo lambda watch` log file, whose path
        infra/test.sh must export as WATCH_LOG; skipped otherwise. Only the functions' JSON
        lines count: the emulator's own lines (e.g. the env it spawns functions with) are not
        what AWS would log."""
        log_path = os.environ.get("WATCH_LOG")
        if not log_path:
            pytest.skip(
                "WATCH_LOG (the cargo lambda watch log file) is not exported by infra/test.sh"
            )
        canary = f"zebra{uuid.uuid4().hex[:10]}"
        restaurant = make_restaurant(notificationEmails=[owner_email()])
        rid = restaurant["restaurantId"]
        created = make_key()
        key = created["apiKey"]
        national = unique_phone()
        digits = "".join(c for c in national if c.isdigit())
        e164 = "+1" + digits
        password = f"pw-{canary}-secret"
        wrong_key = key[:-6] + ("zzzzzz" if not key.endswith("zzzzzz") else "yyyyyy")
        ids = []

        def run(r, status=None):
            if status is not None:
                assert r.status_code == status, r.text
            ids.append(r.headers["x-request-id"])
            return r

        run(api.get(config_path(rid), key), 200)
        run(api.get(config_path(national), key), 404)
        call = run(
            api.post(
                "/ivr/call",
                key,
                json=call_body(
                    rid,
                    callerNumber=national,
                    transcript=f"Customer: my secret word is {canary}-one",
                ),
            ),
            200,
        ).json()["data"]
        run(
            api.post(
                f"/ivr/call/{call['callId']}/complete",
                key,
                json={
                    "duration": 30,
                    "forwardedTo": f"desk {canary}",
                    "finalTranscript": f"Customer: and {canary}-two",
                },
            ),
            200,
        )
        run(
            api.post(
                "/ivr/call",
                key,
                json=call_body(rid, callerNumber=e164, transcript=f"{canary}-three " * 50),
            ),
            200,
        )
        run(
            api.post(
                "/ivr/call",
                key,
                json=call_body(
                    rid, callerNumber=e164, transcript=f"{canary}-four", timestamp="yesterday"
                ),
            ),
            422,
        )
        run(api.get(config_path(rid), wrong_key), 401)
        hook = run(
            api.post(
                "/ivr/webhooks/register",
                key,
                json={"callbackUrl": receiver.url("/ok/logs"), "events": ALL_EVENTS},
            ),
            201,
        ).json()["data"]
        run(api.delete(f"/ivr/webhooks/{hook['webhookId']}", key), 200)
        run(api.get(f"/ivr/calls/{call['callId']}", admin_token), 200)
        run(api.get(f"/ivr/restaurants/{rid}/calls", admin_token), 200)
        run(api.get(config_path(rid), admin_token), 403)
        run(
            api.post(
                LOGIN_PATH, json={"email": f"logs-{canary}@pulsara.test", "password": password}
            )
        )
        rotated = run(
            api.post(
                f"/ivr/auth/api-key/{created['keyId']}/rotate",
                admin_token,
                json={"gracePeriodSeconds": 5},
            ),
            201,
        ).json()["data"]

        def log_text():
            with open(log_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()

        text = wait_for(lambda: (t := log_text()) and all(i in t for i in ids) and t, 20, 0.2)
        assert text, f"not every request id reached {log_path}"
        lines = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("{"))
        forbidden = {
            "the API key": key,
            "the API key's secret part": key[len("psk_live_") + 8 :],
            "a presented wrong key": wrong_key,
            "a rotated key": rotated["apiKey"],
            "the admin token": admin_token,
            "the admin token's signature": admin_token.rsplit(".", 1)[1],
            "the webhook secret": hook["secret"],
            "a password": password,
            "the transcript": canary,
            "the caller number (E.164)": e164,
            "the caller number (digits)": digits,
            "the caller number (national)": national,
        }
        leaks = [what for what, value in forbidden.items() if value in lines]
        assert not leaks, f"the function logs contain {', '.join(leaks)}"
