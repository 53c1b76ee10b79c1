"""End-to-end security tests, grouped by the OWASP API Security Top 10 (2023).

One class per item that applies (API1, API2, API3, API4, API5, API7, API8, API10); API6 and
API9 are discussed in infra/SECURITY.md, which maps every item to the tests here.

The stack is the one infra/test.sh starts (moto + `cargo lambda watch`), with
API_KEY_CACHE_SECONDS=1, WEBHOOK_ALLOW_LOOPBACK_HTTP=true under PULSARA_STAGE=local (so the
only callback URLs accepted besides public https ones are http://127.0.0.1 receivers), and
ADMIN_TOKEN_SECRET_FILE exported (the secret's file), which the token-forgery tests read to craft
admin tokens.

Conventions: every test makes its own restaurants and keys; waits poll against deadlines
derived from the server's own bounds (key cache, grace period, rate-limit window).
The sign-in brute-force tests come last in the file: they exhaust this address's sign-in
budget for the current minute, and the last one waits for that window to end.
"""
from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import hmac
import json
import os
import secrets
import sys
import threading
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import admin_cli, restaurant_body, scan_all, unique_phone

INFRA = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(INFRA))
import local_stack  # noqa: E402

pytestmark = pytest.mark.e2e

KEY_CACHE_SECONDS = float(os.environ.get("API_KEY_CACHE_SECONDS", "30"))


def _token_secret() -> str:
    path = os.environ.get("ADMIN_TOKEN_SECRET_FILE")
    return Path(path).read_text(encoding="utf-8").strip() if path else os.environ.get("ADMIN_TOKEN_SECRET", "")


TOKEN_SECRET = _token_secret()
ADMIN_BODY_LIMIT = 64 * 1024
CALL_BODY_LIMIT = 256 * 1024
TRANSCRIPT_LIMIT = 100 * 1024
LOGIN_LIMIT_PER_EMAIL = int(os.environ.get("LOGIN_LIMIT_PER_EMAIL_PER_MINUTE", "5"))
LOGIN_LIMIT_PER_IP = int(os.environ.get("LOGIN_LIMIT_PER_IP_PER_MINUTE", "20"))
ALL_EVENTS = ["settings.updated", "agent.updated", "restaurant.updated"]
# Bidirectional-text controls (embeddings, overrides, isolates) and the implicit marks.
BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


# --- the route inventory, from template.yaml -----------------------------------------------

ROUTES: list[tuple[str, str]] = sorted(
    local_stack.function_routes(local_stack.load_template(INFRA.parent / "template.yaml")),
    key=lambda r: (r[1], r[0]),
)
LOGIN = ("POST", "/ivr/auth/login")


def is_admin_path(path: str) -> bool:
    """Admin routes: /ivr/auth/api-key*, /ivr/auth/api-keys, /ivr/restaurants*, /ivr/calls/*."""
    return path.startswith("/ivr/auth/api-key") or path.startswith("/ivr/restaurants") or path.startswith("/ivr/calls/")


ADMIN_ROUTES = [r for r in ROUTES if is_admin_path(r[1])]
IVR_ROUTES = [r for r in ROUTES if not is_admin_path(r[1]) and r != LOGIN]
PROTECTED_ROUTES = ADMIN_ROUTES + IVR_ROUTES


def route_id(route) -> str:
    return f"{route[0]} {route[1]}"


# --- helpers -------------------------------------------------------------------------------


def now_iso(delta: float = 0) -> str:
    t = datetime.now(timezone.utc) + timedelta(seconds=delta)
    return t.isoformat().replace("+00:00", "Z")


def config_path(ident: str) -> str:
    return f"/ivr/restaurant/{quote(ident, safe='')}/config"


def assert_secure_headers(r):
    """API8: the headers every response of ours carries."""
    h = r.headers
    where = f"{r.request.method} {r.request.url} -> {r.status_code}"
    assert h.get("x-request-id"), f"no x-request-id: {where}"
    assert h.get("content-type", "").split(";")[0].strip().lower() == "application/json", f"{where}: {h.get('content-type')}"
    assert h.get("cache-control") == "no-store", f"{where}: cache-control {h.get('cache-control')!r}"
    assert h.get("x-content-type-options") == "nosniff", f"{where}: x-content-type-options {h.get('x-content-type-options')!r}"


def assert_error(r, status: int, code: str, field: str | None = None) -> dict:
    assert r.status_code == status, f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:500]}"
    assert_secure_headers(r)
    body = r.json()
    assert body["success"] is False and body["message"], body
    assert body["error"]["code"] == code, body
    assert body["error"]["requestId"] == r.headers["x-request-id"], body
    assert "data" not in body, body
    if status == 401:
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), r.headers
    if field is not None:
        fields = [d["field"] for d in body["error"].get("details") or []]
        assert any(f == field or f.startswith(field + "[") or f.startswith(field + ".") for f in fields), (field, fields)
    return body


def shape(r) -> tuple:
    """What a caller can learn from a response, minus what differs on every request."""
    try:
        body = r.json()
    except ValueError:
        body = r.text
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = json.loads(json.dumps(body))
        body["error"].pop("requestId", None)
    headers = sorted(k.lower() for k in r.headers if k.lower() not in {"date", "x-request-id", "content-length"})
    return r.status_code, body, headers


def assert_same_as_unknown(foreign, unknown, status: int = 404, code: str = "NOT_FOUND"):
    """API1: someone else's object answers exactly like one that doesn't exist."""
    assert_error(foreign, status, code)
    assert_error(unknown, status, code)
    assert shape(foreign) == shape(unknown), f"\nforeign: {shape(foreign)}\nunknown: {shape(unknown)}"


def poll(predicate, timeout: float, step: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)


def sent_messages() -> list[dict]:
    with urllib.request.urlopen(os.environ["MOTO_URL"] + "/moto-api/data.json", timeout=30) as resp:
        data = json.load(resp)
    return data.get("ses", {}).get("Message", [])


def wait_mail(call_id: str, timeout: float = 30) -> dict:
    mails = poll(lambda: [m for m in sent_messages() if call_id in m.get("body", "")], timeout)
    assert len(mails) == 1, f"expected one e-mail for {call_id}, got {len(mails)}"
    return mails[0]


def call_body(restaurant_id: str, **overrides) -> dict:
    body = {
        "restaurantId": restaurant_id,
        "callId": "CA" + uuid.uuid4().hex,
        "timestamp": now_iso(),
        "callerNumber": "+15559871234",
        "transcript": "Agent: Thanks for calling!\nCustomer: what time do you close tonight?",
        "audioUrl": "https://storage.pulsara.ai/calls/test.mp3",
    }
    body.update(overrides)
    return body


def json_of_size(obj: dict, size: int, pad_field: str = "padding") -> bytes:
    """`obj` plus a string field padded so the compact JSON is exactly `size` bytes."""
    base = dict(obj)
    base[pad_field] = ""
    n = size - len(json.dumps(base, separators=(",", ":")).encode())
    assert n >= 0, "object already larger than the requested size"
    base[pad_field] = "x" * n
    data = json.dumps(base, separators=(",", ":")).encode()
    assert len(data) == size
    return data


JSON = {"content-type": "application/json"}
# For requests the local router may answer itself: `cargo lambda watch` can drop a kept-alive
# connection after its own 404, which then races with the next request on it.
CLOSE = {"connection": "close"}


def wait_rejected(api, path: str, key: str, since: float, bound: float, slack: float = 3.0):
    """`key` is refused (401) on `path` at the latest `bound` seconds after `since`
    (time.monotonic()), and from `since + bound` on every instance refuses it."""
    while True:
        r = api.get(path, key)
        if r.status_code == 401:
            break
        assert r.status_code == 200, r.text
        late = time.monotonic() - since
        assert late < bound + slack, f"key still accepted {late:.1f} s after it should stop (bound {bound} s)"
        time.sleep(0.1)
    rest = since + bound + 0.3 - time.monotonic()
    if rest > 0:
        time.sleep(rest)
    for _ in range(8):  # several requests, so several warm instances answer
        assert_error(api.get(path, key), 401, "UNAUTHORIZED")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt(claims: dict, secret: bytes | None = None, header: dict | None = None, digest=hashlib.sha256, signature: str | None = None) -> str:
    """A compact JWS; signed with HMAC(`digest`) over `secret` unless `signature` is given."""
    h = b64url(json.dumps(header if header is not None else {"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    p = b64url(json.dumps(claims, separators=(",", ":")).encode())
    if signature is None:
        key = secret if secret is not None else TOKEN_SECRET.encode()
        signature = b64url(hmac.new(key, f"{h}.{p}".encode(), digest).digest())
    return f"{h}.{p}.{signature}"


def claims_of(token: str) -> dict:
    return json.loads(b64url_decode(token.split(".")[1]))


def good_claims(admin_token: str, **overrides) -> dict:
    c = claims_of(admin_token)
    now = int(time.time())
    c.update(iat=now, exp=now + 300)
    c.update(overrides)
    return c


needs_token_secret = pytest.mark.skipif(not TOKEN_SECRET, reason="ADMIN_TOKEN_SECRET_FILE not exported to the tests")


def walk_keys(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from walk_keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_keys(v)


# --- a local webhook receiver --------------------------------------------------------------


class Receiver:
    """Records every request. `/redirect/...` answers 302 to `/landed/...`; anything else 204."""

    def __init__(self):
        self.hits: list[tuple[str, str, dict, bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                with receiver._lock:
                    receiver.hits.append((self.command, path, {k.lower(): v for k, v in self.headers.items()}, body))
                if path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("location", receiver.url("/landed" + path[len("/redirect"):]))
                else:
                    self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = do_GET = do_PUT = _any  # noqa: N815 - http.server's naming

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def to(self, path: str) -> list[tuple[str, str, dict, bytes]]:
        with self._lock:
            return [h for h in self.hits if h[1] == path]

    def wait(self, path: str, count: int, timeout: float = 30) -> list:
        got = poll(lambda: len(self.to(path)) >= count and self.to(path), timeout)
        assert got, f"{path}: {len(self.to(path))} of {count} requests within {timeout} s"
        return got

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def register(api):
    """register(key, url, events) -> the 201 data; the webhooks are deleted afterwards."""
    created: list[tuple[str, str]] = []

    def reg(key: str, url: str, events=ALL_EVENTS) -> dict:
        r = api.post("/ivr/webhooks/register", key, json={"callbackUrl": url, "events": list(events)})
        assert r.status_code == 201, r.text
        data = r.json()["data"]
        created.append((key, data["webhookId"]))
        return data

    yield reg
    for key, webhook_id in created:
        try:
            api.delete(f"/ivr/webhooks/{webhook_id}", key)
        except Exception:  # best effort
            pass


def send_test(api, key: str, webhook_id: str) -> str:
    r = api.post(f"/ivr/webhooks/{webhook_id}/test", key)
    assert r.status_code == 202, r.text
    return r.json()["data"]["deliveryId"]


def deliveries(api, key: str, webhook_id: str) -> list[dict]:
    r = api.get(f"/ivr/webhooks/{webhook_id}/deliveries", key, params={"limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["data"]["deliveries"]


# ===========================================================================================
# API1:2023 Broken Object Level Authorization
# ===========================================================================================


class TestAPI1ObjectLevelAuthorization:
    """API1 Broken Object Level Authorization: every route that takes an object id answers a
    key of another key family, or a key restricted to other restaurants, with the same 404
    (status, body and headers) as an id that does not exist, and changes nothing."""

    def test_config_of_a_restaurant_outside_the_keys_restriction(self, api, make_key, make_restaurant):
        mine, other = make_restaurant(), make_restaurant()
        key = make_key(restaurantIds=[mine["restaurantId"]])["apiKey"]
        assert api.get(config_path(mine["restaurantId"]), key).status_code == 200
        digits = "".join(c for c in other["phoneNumbers"][0] if c.isdigit())
        cases = [
            (other["restaurantId"], "rst_" + uuid.uuid4().hex),
            (other["phoneNumbers"][0], unique_phone()),  # E.164 as stored
            (f"({digits[1:4]}) {digits[4:7]}-{digits[7:]}", unique_phone()),  # national format
        ]
        for foreign, unknown in cases:
            r_foreign = api.get(config_path(foreign), key)
            assert_same_as_unknown(r_foreign, api.get(config_path(unknown), key))
            assert other["name"] not in r_foreign.text and other["restaurantId"] not in r_foreign.text

    def test_process_call_for_a_restaurant_outside_the_keys_restriction(self, api, dynamodb, make_key, make_restaurant):
        mine, other = make_restaurant(), make_restaurant()
        key = make_key(restaurantIds=[mine["restaurantId"]])["apiKey"]
        external_ids = []
        for foreign, unknown in [(other["restaurantId"], "rst_" + uuid.uuid4().hex), (other["phoneNumbers"][0], unique_phone())]:
            a, b = call_body(foreign), call_body(unknown)
            external_ids += [a["callId"], b["callId"]]
            assert_same_as_unknown(api.post("/ivr/call", key, json=a), api.post("/ivr/call", key, json=b))
        stored = {i["externalCallId"]["S"] for i in scan_all(dynamodb, "CALLS_TABLE")}
        assert not stored & set(external_ids), "a refused call was stored"
        assert api.post("/ivr/call", key, json=call_body(mine["restaurantId"])).status_code == 200

    def test_complete_a_call_of_another_key_family(self, api, make_key, make_restaurant):
        restaurant = make_restaurant(notificationEmails=[f"owner-{uuid.uuid4().hex[:8]}@luigis.example"])
        owner = make_key()["apiKey"]
        stranger = make_key()["apiKey"]  # unrestricted, but another key family
        restricted_elsewhere = make_key(restaurantIds=[make_restaurant()["restaurantId"]])["apiKey"]
        r = api.post("/ivr/call", owner, json=call_body(restaurant["restaurantId"]))
        assert r.status_code == 200, r.text
        call_id = r.json()["data"]["callId"]
        unknown = "call_" + secrets.token_hex(12)
        for other_key in (stranger, restricted_elsewhere):
            foreign = api.post(f"/ivr/call/{call_id}/complete", other_key, json={"duration": 7})
            missing = api.post(f"/ivr/call/{unknown}/complete", other_key, json={"duration": 7})
            assert_same_as_unknown(foreign, missing)
        # The same vendor call id sent by another family is another call, not the owner's.
        r = api.post("/ivr/call", stranger, json=call_body(restaurant["restaurantId"], callId=r.json()["data"]["externalCallId"]))
        assert r.status_code == 200 and r.json()["data"]["callId"] != call_id and r.json()["data"]["duplicate"] is False
        # Untouched: the owner completes it with its own data, and one e-mail goes out.
        done = api.post(f"/ivr/call/{call_id}/complete", owner, json={"duration": 42})
        assert done.status_code == 200, done.text
        assert done.json()["data"]["duration"] == 42
        wait_mail(call_id)
        # And afterwards it still looks unknown to the stranger.
        assert_same_as_unknown(
            api.post(f"/ivr/call/{call_id}/complete", stranger, json={"duration": 7}),
            api.post(f"/ivr/call/{unknown}/complete", stranger, json={"duration": 7}),
        )

    def test_webhook_routes_of_another_key_family(self, api, make_key, receiver, register):
        from standardwebhooks.webhooks import Webhook

        owner = make_key()["apiKey"]
        stranger = make_key()["apiKey"]
        path = f"/ok/bola-{uuid.uuid4().hex[:8]}"
        hook = register(owner, receiver.url(path))
        wid = hook["webhookId"]
        delivery_id = send_test(api, owner, wid)
        receiver.wait(path, 1)
        before = deliveries(api, owner, wid)

        unknown_wid = "wh_" + uuid.uuid4().hex
        for method, suffix, body in [
            ("GET", "/deliveries", None),
            ("POST", "/test", None),
            ("POST", "/rotate-secret", {"gracePeriodSeconds": 0}),
            ("POST", f"/deliveries/{delivery_id}/replay", None),
            ("DELETE", "", None),
        ]:
            kw = {"json": body} if body is not None else {}
            foreign = api.call(method, f"/ivr/webhooks/{wid}{suffix}", stranger, **kw)
            missing = api.call(method, f"/ivr/webhooks/{unknown_wid}{suffix}", stranger, **kw)
            assert_same_as_unknown(foreign, missing)
        listed = api.get("/ivr/webhooks", stranger)
        assert listed.status_code == 200 and wid not in listed.text

        # Someone else's delivery id under one's own webhook is just as unknown.
        own = register(stranger, receiver.url(f"/ok/stranger-{uuid.uuid4().hex[:8]}"))
        assert_same_as_unknown(
            api.post(f"/ivr/webhooks/{own['webhookId']}/deliveries/{delivery_id}/replay", stranger),
            api.post(f"/ivr/webhooks/{own['webhookId']}/deliveries/msg_{uuid.uuid4().hex}/replay", stranger),
        )

        # Nothing changed: still listed and active, no delivery added, the secret not rotated.
        views = [w for w in api.get("/ivr/webhooks", owner).json()["data"]["webhooks"] if w["webhookId"] == wid]
        assert views and views[0]["status"] == "active"
        assert [d["deliveryId"] for d in deliveries(api, owner, wid)] == [d["deliveryId"] for d in before]
        send_test(api, owner, wid)
        _, _, headers, body = receiver.wait(path, 2)[1]
        signatures = headers["webhook-signature"].split(" ")
        assert len(signatures) == 1, f"a stranger's rotate-secret took effect: {signatures}"
        Webhook(hook["secret"]).verify(body, headers)


# ===========================================================================================
# API2:2023 Broken Authentication
# ===========================================================================================

MALFORMED_KEYS = {
    "wrong-prefix": "psk_test_" + "A1b2C3d4" * 4,
    "no-prefix": "A1b2C3d4" * 4,
    "other-vendor-prefix": "sk_live_" + "A1b2C3d4" * 4,
    "short": "psk_live_abc123",
    "one-short": "psk_live_" + "A" * 31,
    "one-long": "psk_live_" + "A" * 33,
    "non-base62": "psk_live_" + "A1b2C3d4" * 3 + "A1b2C3-4",
    "random-body": "psk_live_" + "".join(secrets.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") for _ in range(32)),
    "prefix-only": "psk_live_",
    "jwt-lookalike": "eyJhbGciOiJIUzI1NiJ9.e30.",
    "garbage": "not-a-key-at-all",
    "huge-key": "psk_live_" + "A" * 6000,
    "huge-jwt": "eyJ" + "A" * 3000 + "." + "A" * 3000 + "." + "A" * 100,
}


class TestAPI2BrokenAuthentication:
    """API2 Broken Authentication: malformed, unknown, revoked, expired and rotated-out API
    keys; expired, tampered, wrongly-signed and wrong-algorithm admin tokens; credentials only
    in `Authorization: Bearer`; failures that reveal nothing. (Sign-in brute force is the
    last class of the file.)"""

    @pytest.mark.parametrize("credential", list(MALFORMED_KEYS.values()), ids=list(MALFORMED_KEYS))
    def test_malformed_or_unknown_keys_are_401(self, api, credential):
        for r in (api.get(config_path("rst_" + uuid.uuid4().hex), credential), api.get("/ivr/auth/api-keys", credential)):
            body = assert_error(r, 401, "UNAUTHORIZED")
            assert body["message"] == "missing or invalid credentials"

    def test_wrong_secret_for_a_known_key_id_reveals_nothing(self, api, make_key):
        key = make_key()["apiKey"]
        known_id = key[: len("psk_live_") + 8] + "".join(secrets.choice("abcdefghijkmnopqrstuvwxyz") for _ in range(24))
        unknown_id = "psk_live_" + "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(32))
        path = config_path("rst_" + uuid.uuid4().hex)
        a, b, none = api.get(path, known_id), api.get(path, unknown_id), api.get(path)
        assert_error(a, 401, "UNAUTHORIZED")
        assert shape(a) == shape(b) == shape(none)
        # Same on an admin route: a key-shaped credential that isn't valid is 401, not 403.
        assert shape(api.get("/ivr/auth/api-keys", known_id)) == shape(api.get("/ivr/auth/api-keys", unknown_id))
        assert_error(api.get("/ivr/auth/api-keys", known_id), 401, "UNAUTHORIZED")

    def test_credentials_only_count_in_the_authorization_bearer_header(self, api, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        path = config_path(rid)
        assert api.get(path, key).status_code == 200
        for kw in [
            {"headers": {"x-api-key": key}},
            {"params": {"api_key": key}},
            {"params": {"access_token": key}},
            {"headers": {"authorization": key}},
            {"headers": {"authorization": f"Basic {base64.b64encode(f'{key}:'.encode()).decode()}"}},
            {"headers": {"authorization": f"Token {key}"}},
            {"headers": {"authorization": "Bearer"}},
            {"headers": {"authorization": "Bearer "}},
            {"headers": {"cookie": f"token={key}"}},
        ]:
            assert_error(api.get(path, **kw), 401, "UNAUTHORIZED")

    def test_admin_token_only_counts_in_the_authorization_bearer_header(self, api, admin_token):
        assert api.get("/ivr/auth/api-keys", admin_token, params={"limit": 1}).status_code == 200
        for kw in [
            {"params": {"access_token": admin_token}},
            {"headers": {"x-api-key": admin_token}},
            {"headers": {"authorization": admin_token}},
            {"headers": {"authorization": f"JWT {admin_token}"}},
            {"headers": {"cookie": f"token={admin_token}"}},
        ]:
            assert_error(api.get("/ivr/auth/api-keys", **kw), 401, "UNAUTHORIZED")

    def test_revoked_key_is_refused_within_the_cache_bound(self, api, admin_token, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        key = make_key()
        path = config_path(rid)
        assert api.get(path, key["apiKey"]).status_code == 200
        r = api.delete(f"/ivr/auth/api-key/{key['keyId']}", admin_token)
        since = time.monotonic()
        assert r.status_code == 200, r.text
        bound = r.json()["data"]["effectiveWithinSeconds"]
        assert bound <= 60
        wait_rejected(api, path, key["apiKey"], since, bound)
        # A revoked key is 401 on admin routes too (not 403: it is no credential at all) ...
        assert_error(api.get("/ivr/auth/api-keys", key["apiKey"]), 401, "UNAUTHORIZED")
        # ... and cannot be brought back by rotating it.
        assert_error(api.post(f"/ivr/auth/api-key/{key['keyId']}/rotate", admin_token, json={}), 409, "CONFLICT")
        assert_error(api.get(path, key["apiKey"]), 401, "UNAUTHORIZED")

    def test_expired_key_is_refused(self, api, admin_token, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        lifetime = 3.0
        expires = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=lifetime + 1)
        expires_mono = time.monotonic() + (expires - datetime.now(timezone.utc)).total_seconds()
        key = make_key(expiresAt=expires.isoformat().replace("+00:00", "Z"))
        path = config_path(rid)
        assert api.get(path, key["apiKey"]).status_code == 200, "usable before it expires"
        wait_rejected(api, path, key["apiKey"], expires_mono, KEY_CACHE_SECONDS)
        listed = api.get("/ivr/auth/api-keys", admin_token, params={"limit": 100})
        views = [k for k in listed.json()["data"]["keys"] if k["keyId"] == key["keyId"]]
        # The list is paginated; when our key is on the first page it says "expired".
        if views:
            assert views[0]["status"] == "expired", views

    def test_rotated_out_key_is_refused_after_its_grace_period(self, api, admin_token, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        old = make_key()
        path = config_path(rid)
        assert api.get(path, old["apiKey"]).status_code == 200
        r = api.post(f"/ivr/auth/api-key/{old['keyId']}/rotate", admin_token, json={"gracePeriodSeconds": 1})
        since = time.monotonic()
        assert r.status_code == 201, r.text
        new = r.json()["data"]["apiKey"]
        wait_rejected(api, path, old["apiKey"], since, 1 + KEY_CACHE_SECONDS)
        assert_error(api.get("/ivr/auth/api-keys", old["apiKey"]), 401, "UNAUTHORIZED")
        assert api.get(path, new).status_code == 200

    def test_a_key_in_its_grace_period_can_still_be_revoked(self, api, admin_token, make_key, make_restaurant):
        """A leaked key is typically rotated first; revoking it must then end its grace at once."""
        rid = make_restaurant()["restaurantId"]
        old = make_key()
        path = config_path(rid)
        r = api.post(f"/ivr/auth/api-key/{old['keyId']}/rotate", admin_token, json={"gracePeriodSeconds": 3600})
        assert r.status_code == 201, r.text
        new = r.json()["data"]["apiKey"]
        assert api.get(path, old["apiKey"]).status_code == 200, "works during grace"
        r = api.delete(f"/ivr/auth/api-key/{old['keyId']}", admin_token)
        since = time.monotonic()
        assert r.status_code == 200, r.text
        wait_rejected(api, path, old["apiKey"], since, r.json()["data"]["effectiveWithinSeconds"])
        assert api.get(path, new).status_code == 200, "the successor is unaffected"

    # --- admin tokens ----------------------------------------------------------------------

    @needs_token_secret
    def test_crafting_works_for_a_valid_token(self, api, admin_token):
        """Control for the forgery tests below: a token we sign with the real secret and
        valid claims is accepted, so their 401s are about what they change."""
        r = api.get("/ivr/auth/api-keys", jwt(good_claims(admin_token)), params={"limit": 1})
        assert r.status_code == 200, r.text

    @needs_token_secret
    @pytest.mark.parametrize("exp_offset", [-3600, -5, 0], ids=["an-hour-ago", "seconds-ago", "now"])
    def test_expired_admin_token_is_401(self, api, admin_token, exp_offset):
        now = int(time.time())
        token = jwt(good_claims(admin_token, iat=now - 4000, exp=now + exp_offset))
        assert_error(api.get("/ivr/auth/api-keys", token), 401, "UNAUTHORIZED")
        assert_error(api.get(config_path("rst_" + uuid.uuid4().hex), token), 401, "UNAUTHORIZED")

    @pytest.mark.parametrize("change", [
        {"role": "superadmin"}, {"sub": "usr_someone_else"}, {"email": "mallory@evil.example"},
        {"exp": 4102444800}, {"iss": "someone-else"},
    ], ids=["role", "sub", "email", "exp", "iss"])
    def test_tampered_admin_token_is_401(self, api, admin_token, change):
        head, payload, sig = admin_token.split(".")
        claims = json.loads(b64url_decode(payload))
        claims.update(change)
        forged = f"{head}.{b64url(json.dumps(claims, separators=(',', ':')).encode())}.{sig}"
        assert_error(api.get("/ivr/auth/api-keys", forged), 401, "UNAUTHORIZED")

    @needs_token_secret
    @pytest.mark.parametrize("claims", [
        {"iat": 3600, "exp": 3900},  # issued an hour from now
        {"iat": 0, "exp": 3 * 365 * 86400},  # valid for three years
        {"iat": -60, "exp": 3600 + 60},  # a little longer than sign-in issues (ADMIN_TOKEN_TTL_SECONDS)
    ], ids=["iat-in-the-future", "exp-three-years-ahead", "lifetime-over-the-ttl"])
    def test_correctly_signed_token_outside_the_issued_lifetime_is_401(self, api, admin_token, claims):
        """Whoever holds the secret still cannot mint a future or long-lived token: tokens
        live at most ADMIN_TOKEN_TTL_SECONDS (3600 in the test stack) from their iat, and
        iat may be at most 30 s ahead of the server's clock."""
        now = int(time.time())
        token = jwt(good_claims(admin_token, iat=now + claims["iat"], exp=now + claims["exp"]))
        assert_error(api.get("/ivr/auth/api-keys", token), 401, "UNAUTHORIZED")
        ok = jwt(good_claims(admin_token, iat=now + 20, exp=now + 20 + 3600))  # within skew and TTL
        assert api.get("/ivr/auth/api-keys", ok, params={"limit": 1}).status_code == 200

    @needs_token_secret
    @pytest.mark.parametrize("who", ["unknown-email", "unknown-user-id"])
    def test_correctly_signed_token_for_an_admin_that_does_not_exist_is_401(self, api, admin_token, who):
        change = ({"email": f"ghost-{uuid.uuid4().hex[:8]}@pulsara.test"} if who == "unknown-email"
                  else {"sub": "usr_" + uuid.uuid4().hex})
        token = jwt(good_claims(admin_token, **change))
        assert_error(api.get("/ivr/auth/api-keys", token), 401, "UNAUTHORIZED")

    def test_the_local_stack_never_prints_the_token_secret(self, api, admin_token):
        """The emulator logs each function's environment when it spawns one; the secret is
        therefore passed as a file (ADMIN_TOKEN_SECRET_FILE), never as a variable."""
        log_path = os.environ.get("WATCH_LOG")
        assert TOKEN_SECRET and log_path, "infra/test.sh exports ADMIN_TOKEN_SECRET_FILE and WATCH_LOG"
        assert "ADMIN_TOKEN_SECRET" not in os.environ, "the secret itself is in the stack's environment"
        assert api.get("/ivr/auth/api-keys", admin_token, params={"limit": 1}).status_code == 200
        logs = Path(log_path).read_text(encoding="utf-8", errors="replace")
        assert "spawning command" in logs or "ADMIN_TOKEN_SECRET_FILE" in logs, "the watch log holds no function start"
        for name in ("watch.log", "event_sources.log", "moto.log", "fault_proxy.log"):
            other = Path(log_path).with_name(name)
            if other.exists():
                assert TOKEN_SECRET not in other.read_text(encoding="utf-8", errors="replace"), name

    @needs_token_secret
    def test_role_flipped_in_a_non_admin_token_is_401(self, api, admin_token):
        viewer = jwt(good_claims(admin_token, role="viewer"))
        assert_error(api.get("/ivr/auth/api-keys", viewer), 403, "FORBIDDEN")
        head, _, sig = viewer.split(".")
        flipped = f"{head}.{b64url(json.dumps(good_claims(admin_token), separators=(',', ':')).encode())}.{sig}"
        assert_error(api.get("/ivr/auth/api-keys", flipped), 401, "UNAUTHORIZED")

    @needs_token_secret
    @pytest.mark.parametrize("variant", [
        "none-unsigned", "none-with-signature", "None", "NONE", "HS512", "HS384", "RS256-hmac", "ES256-hmac",
        "no-alg", "alg-array", "hs256-lowercase",
    ])
    def test_wrong_algorithm_is_401(self, api, admin_token, variant):
        claims = good_claims(admin_token)
        real = jwt(claims)
        sig = real.split(".")[2]
        token = {
            "none-unsigned": lambda: jwt(claims, header={"alg": "none", "typ": "JWT"}, signature=""),
            "none-with-signature": lambda: jwt(claims, header={"alg": "none", "typ": "JWT"}, signature=sig),
            "None": lambda: jwt(claims, header={"alg": "None", "typ": "JWT"}, signature=""),
            "NONE": lambda: jwt(claims, header={"alg": "NONE", "typ": "JWT"}, signature=""),
            "HS512": lambda: jwt(claims, header={"alg": "HS512", "typ": "JWT"}, digest=hashlib.sha512),
            "HS384": lambda: jwt(claims, header={"alg": "HS384", "typ": "JWT"}, digest=hashlib.sha384),
            # Algorithm confusion: an asymmetric alg header over an HMAC made with the secret.
            "RS256-hmac": lambda: jwt(claims, header={"alg": "RS256", "typ": "JWT"}),
            "ES256-hmac": lambda: jwt(claims, header={"alg": "ES256", "typ": "JWT"}),
            "no-alg": lambda: jwt(claims, header={"typ": "JWT"}),
            "alg-array": lambda: jwt(claims, header={"alg": ["HS256"], "typ": "JWT"}),
            "hs256-lowercase": lambda: jwt(claims, header={"alg": "hs256", "typ": "JWT"}),
        }[variant]()
        assert_error(api.get("/ivr/auth/api-keys", token), 401, "UNAUTHORIZED")

    def test_token_signed_with_another_secret_is_401(self, api, admin_token):
        claims = good_claims(admin_token)
        for secret in (secrets.token_hex(32).encode(), b"", b"secret", (TOKEN_SECRET + "x").encode()):
            assert_error(api.get("/ivr/auth/api-keys", jwt(claims, secret=secret)), 401, "UNAUTHORIZED")

    @needs_token_secret
    def test_malformed_tokens_are_401(self, api, admin_token):
        claims = good_claims(admin_token)
        no_exp = {k: v for k, v in claims.items() if k != "exp"}
        real = jwt(claims)
        for token in [
            jwt(no_exp),  # exp is required
            jwt({**claims, "exp": str(claims["exp"])}),  # and a number
            real + ".",  # four segments
            real.rsplit(".", 1)[0],  # two segments
            real.replace(".", ". ", 1),
            real + "=",
            ".".join(real.split(".")[::-1]),
        ]:
            assert_error(api.get("/ivr/auth/api-keys", token), 401, "UNAUTHORIZED")

    def test_failed_sign_ins_do_not_reveal_whether_the_account_exists(self, api):
        email = f"enum-{uuid.uuid4().hex[:8]}@pulsara.test"
        admin_cli("create-admin", "--email", email, env={"PULSARA_ADMIN_PASSWORD": "correct-horse-" + secrets.token_hex(8)})
        existing = api.post("/ivr/auth/login", json={"email": email, "password": "wrong-password-123"})
        missing = api.post("/ivr/auth/login", json={"email": f"nobody-{uuid.uuid4().hex[:8]}@pulsara.test", "password": "wrong-password-123"})
        assert_error(existing, 401, "UNAUTHORIZED")
        assert shape(existing) == shape(missing)


# ===========================================================================================
# API3:2023 Broken Object Property Level Authorization
# ===========================================================================================

SERVER_OWNED_RESTAURANT_FIELDS = {
    "restaurantId": "rst_chosen_by_me",
    "version": 99,
    "createdAt": "2001-01-01T00:00:00Z",
    "updatedAt": "2001-01-01T00:00:00Z",
}
SERVER_OWNED_KEY_FIELDS = {
    "keyHash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
    "ownerId": "SomeOne1",
    "keyId": "Chosen12",
    "revokedAt": "2001-01-01T00:00:00Z",
    "lastUsed": "2001-01-01T00:00:00Z",
    "createdBy": "usr_someone",
    "createdAt": "2001-01-01T00:00:00Z",
    "status": "active",
    "rotatedTo": "Other123",
    "graceUntil": "2100-01-01T00:00:00Z",
}
FORBIDDEN_RESPONSE_KEYS = {"keyHash", "passwordHash", "ownerId", "previousSecret", "previousSecretExpiresAt", "listKey", "password"}


class TestAPI3PropertyLevelAuthorization:
    """API3 Broken Object Property Level Authorization: server-owned properties cannot be
    mass-assigned (unknown fields are 422 and nothing is written), and responses never
    expose hashes, key-family ids, secrets (except the one response that issues them) or
    fields a caller has no use for."""

    @pytest.mark.parametrize("field", list(SERVER_OWNED_RESTAURANT_FIELDS))
    def test_create_restaurant_with_server_owned_field(self, api, admin_token, dynamodb, field):
        before = len(scan_all(dynamodb, "RESTAURANTS_TABLE")), len(scan_all(dynamodb, "PHONE_NUMBERS_TABLE"))
        body = restaurant_body(**{field: SERVER_OWNED_RESTAURANT_FIELDS[field]})
        assert_error(api.post("/ivr/restaurants", admin_token, json=body), 422, "VALIDATION_ERROR")
        after = len(scan_all(dynamodb, "RESTAURANTS_TABLE")), len(scan_all(dynamodb, "PHONE_NUMBERS_TABLE"))
        assert before == after
        assert_error(api.get("/ivr/restaurants/rst_chosen_by_me", admin_token), 404, "NOT_FOUND")

    @pytest.mark.parametrize("field", list(SERVER_OWNED_RESTAURANT_FIELDS))
    def test_patch_restaurant_with_server_owned_field(self, api, admin_token, make_restaurant, field):
        created = make_restaurant()
        rid = created["restaurantId"]
        patch = {field: SERVER_OWNED_RESTAURANT_FIELDS[field], "name": "Renamed"}
        assert_error(api.patch(f"/ivr/restaurants/{rid}", admin_token, json=patch), 422, "VALIDATION_ERROR")
        assert api.get(f"/ivr/restaurants/{rid}", admin_token).json()["data"] == created, "nothing changed"
        assert_error(api.get("/ivr/restaurants/rst_chosen_by_me", admin_token), 404, "NOT_FOUND")

    def test_nested_unknown_fields_are_rejected(self, api, admin_token, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        agent = {"elevenlabs_agent_id": "a", "voice_id": "v", "tools": [], "admin": True}
        assert_error(api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"agent": agent}), 422, "VALIDATION_ERROR")
        assert_error(api.post("/ivr/restaurants", admin_token, json=restaurant_body(agent=agent)), 422, "VALIDATION_ERROR")

    @pytest.mark.parametrize("field", list(SERVER_OWNED_KEY_FIELDS))
    def test_create_api_key_with_server_owned_field(self, api, admin_token, dynamodb, field):
        before = scan_all(dynamodb, "API_KEYS_TABLE")
        body = {"name": "mass-assignment", field: SERVER_OWNED_KEY_FIELDS[field]}
        r = api.post("/ivr/auth/api-key", admin_token, json=body)
        assert_error(r, 422, "VALIDATION_ERROR")
        assert "psk_live_" not in r.text
        after = scan_all(dynamodb, "API_KEYS_TABLE")
        assert len(after) == len(before)
        assert "Chosen12" not in {i["keyId"]["S"] for i in after}

    def test_rotation_cannot_widen_a_key(self, api, admin_token, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        key = make_key(restaurantIds=[rid], rateLimitPerMinute=5)
        for extra in [{"restaurantIds": None}, {"restaurantIds": ["rst_other"]}, {"rateLimitPerMinute": 100000},
                      {"expiresAt": None}, {"name": "renamed"}, {"keyId": "Chosen12"}]:
            r = api.post(f"/ivr/auth/api-key/{key['keyId']}/rotate", admin_token, json={"gracePeriodSeconds": 60, **extra})
            assert_error(r, 422, "VALIDATION_ERROR")
        # Still the only key of its family, unrotated: a plain rotation works and keeps the limits.
        r = api.post(f"/ivr/auth/api-key/{key['keyId']}/rotate", admin_token, json={"gracePeriodSeconds": 60})
        assert r.status_code == 201, r.text
        assert r.json()["data"]["restaurantIds"] == [rid] and r.json()["data"]["rateLimitPerMinute"] == 5

    @pytest.mark.parametrize("field, value", [
        ("secret", "whsec_" + base64.b64encode(b"chosen-by-the-attacker-24").decode()),
        ("ownerId", "SomeOne1"), ("keyId", "SomeOne1"), ("restaurantIds", ["rst_x"]),
        ("status", "active"), ("webhookId", "wh_chosen"),
    ])
    def test_register_webhook_with_server_owned_field(self, api, make_key, receiver, field, value):
        key = make_key()["apiKey"]
        body = {"callbackUrl": receiver.url("/ok/mass"), "events": ALL_EVENTS, field: value}
        r = api.post("/ivr/webhooks/register", key, json=body)
        assert_error(r, 422, "VALIDATION_ERROR")
        assert api.get("/ivr/webhooks", key).json()["data"]["webhooks"] == []

    def test_webhook_secret_cannot_be_chosen_on_rotation(self, api, make_key, receiver, register):
        key = make_key()["apiKey"]
        hook = register(key, receiver.url("/ok/rotate-mass"))
        chosen = "whsec_" + base64.b64encode(b"chosen-by-the-attacker-24").decode()
        r = api.post(f"/ivr/webhooks/{hook['webhookId']}/rotate-secret", key, json={"secret": chosen})
        assert_error(r, 422, "VALIDATION_ERROR")

    @pytest.mark.parametrize("field, value", [
        ("ownerId", "SomeOne1"), ("keyId", "SomeOne1"), ("sentimentScore", 100), ("reason", "Complaint"),
        ("analysis", {"reason": "Other"}), ("email", {"status": "sent"}), ("status", "completed"),
    ])
    def test_process_call_with_server_owned_field(self, api, dynamodb, make_key, make_restaurant, field, value):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        body = call_body(rid, **{field: value})
        assert_error(api.post("/ivr/call", key, json=body), 422, "VALIDATION_ERROR")
        assert body["callId"] not in {i["externalCallId"]["S"] for i in scan_all(dynamodb, "CALLS_TABLE")}

    @pytest.mark.parametrize("field, value", [
        ("emailRecipients", ["attacker@evil.example"]), ("emailStatus", "sent"), ("emailSent", True),
        ("status", "completed"), ("restaurantId", "rst_x"), ("notificationEmails", ["attacker@evil.example"]),
    ])
    def test_complete_call_with_server_owned_field(self, api, admin_token, make_key, make_restaurant, field, value):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        call_id = api.post("/ivr/call", key, json=call_body(rid)).json()["data"]["callId"]
        assert_error(api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 5, field: value}), 422, "VALIDATION_ERROR")
        view = api.get(f"/ivr/calls/{call_id}", admin_token).json()["data"]
        assert view["status"] == "in_progress" and "email" not in view
        assert not [m for m in sent_messages() if "attacker@evil.example" in json.dumps(m.get("destinations"))]

    def test_duplicate_json_keys_are_rejected(self, api, admin_token, dynamodb, make_key, make_restaurant):
        """Parsers disagree on `{"a": 1, "a": 2}` (first wins, last wins); refusing it means no
        proxy, log or WAF can see a different request than the function does."""
        mine, other = make_restaurant(), make_restaurant()
        key = make_key(restaurantIds=[mine["restaurantId"]])["apiKey"]
        body = json.dumps(call_body(mine["restaurantId"]))
        dup = body[:-1] + f', "restaurantId": "{other["restaurantId"]}"}}'
        r = api.post("/ivr/call", key, data=dup, headers=dict(JSON))
        assert_error(r, 422, "VALIDATION_ERROR")
        before = len(scan_all(dynamodb, "API_KEYS_TABLE"))
        r = api.post("/ivr/auth/api-key", admin_token, data='{"name": "a", "rateLimitPerMinute": 1, "rateLimitPerMinute": 100000}', headers=dict(JSON))
        assert_error(r, 422, "VALIDATION_ERROR")
        assert len(scan_all(dynamodb, "API_KEYS_TABLE")) == before
        r = api.patch(f"/ivr/restaurants/{mine['restaurantId']}", admin_token, data='{"aiEnabled": false, "aiEnabled": true}', headers=dict(JSON))
        assert_error(r, 422, "VALIDATION_ERROR")

    def test_login_cannot_choose_a_role(self, api, admin_credentials):
        email, password = admin_credentials
        r = api.post("/ivr/auth/login", json={"email": email, "password": password, "role": "superadmin"})
        assert_error(r, 422, "VALIDATION_ERROR")

    def test_responses_never_expose_internal_properties(self, api, receiver):
        """A tour of every route; each response is checked for hashes, key-family ids,
        secrets outside the response that issues them, and the e-mail hash the sign-in
        limiter buckets by."""
        email = f"tour-{uuid.uuid4().hex[:8]}@pulsara.test"
        password = "correct-horse-" + secrets.token_hex(8)
        admin_cli("create-admin", "--email", email, env={"PULSARA_ADMIN_PASSWORD": password})
        email_hash = hashlib.sha256(email.encode()).hexdigest()
        seen: list[tuple[str, object, set[str]]] = []  # (label, response, plaintexts it may show)

        def step(label, r, status):
            assert r.status_code == status, f"{label}: {r.status_code} {r.text[:300]}"
            seen.append((label, r, set()))
            return r.json().get("data")

        token = step("login", api.post("/ivr/auth/login", json={"email": email, "password": password}), 200)["accessToken"]
        step("login failed", api.post("/ivr/auth/login", json={"email": email, "password": "wrong-password-1"}), 401)
        restaurant = step("create restaurant", api.post("/ivr/restaurants", token, json=restaurant_body()), 201)
        rid = restaurant["restaurantId"]
        step("get restaurant", api.get(f"/ivr/restaurants/{rid}", token), 200)
        step("patch restaurant", api.patch(f"/ivr/restaurants/{rid}", token, json={"callHoursEnd": "23:00"}), 200)
        created = step("create key", api.post("/ivr/auth/api-key", token, json={"name": "tour"}), 201)
        seen[-1][2].add(created["apiKey"])
        rotated = step("rotate key", api.post(f"/ivr/auth/api-key/{created['keyId']}/rotate", token, json={"gracePeriodSeconds": 600}), 201)
        seen[-1][2].add(rotated["apiKey"])
        key = rotated["apiKey"]
        step("list keys", api.get("/ivr/auth/api-keys", token, params={"limit": 100}), 200)
        config = step("config", api.get(config_path(rid), key), 200)
        assert "notificationEmails" not in config, "the IVR has no use for the owner's e-mail addresses"
        call = step("process call", api.post("/ivr/call", key, json=call_body(rid)), 200)
        step("complete call", api.post(f"/ivr/call/{call['callId']}/complete", key, json={"duration": 3}), 200)
        step("list calls", api.get(f"/ivr/restaurants/{rid}/calls", token), 200)
        step("get call", api.get(f"/ivr/calls/{call['callId']}", token), 200)
        path = f"/ok/tour-{uuid.uuid4().hex[:8]}"
        hook = step("register webhook", api.post("/ivr/webhooks/register", key, json={"callbackUrl": receiver.url(path), "events": ALL_EVENTS}), 201)
        seen[-1][2].add(hook["secret"])
        wid = hook["webhookId"]
        step("list webhooks", api.get("/ivr/webhooks", key), 200)
        delivery_id = step("test webhook", api.post(f"/ivr/webhooks/{wid}/test", key), 202)["deliveryId"]
        receiver.wait(path, 1)
        step("deliveries", api.get(f"/ivr/webhooks/{wid}/deliveries", key), 200)
        new_secret = step("rotate secret", api.post(f"/ivr/webhooks/{wid}/rotate-secret", key, json={}), 200)["secret"]
        seen[-1][2].add(new_secret)
        step("replay", api.post(f"/ivr/webhooks/{wid}/deliveries/{delivery_id}/replay", key), 202)
        step("delete webhook", api.delete(f"/ivr/webhooks/{wid}", key), 200)
        step("revoke key", api.delete(f"/ivr/auth/api-key/{rotated['keyId']}", token), 200)

        plaintexts = {created["apiKey"], rotated["apiKey"], hook["secret"], new_secret}
        for label, r, allowed in seen:
            text = r.text
            keys = set(walk_keys(r.json()))
            assert not keys & FORBIDDEN_RESPONSE_KEYS, f"{label}: exposes {keys & FORBIDDEN_RESPONSE_KEYS}"
            if "secret" in keys:
                assert label in ("register webhook", "rotate secret"), f"{label}: exposes a webhook secret"
            markers = ["$argon2", email_hash, email_hash[:32], password]
            if label not in ("register webhook", "rotate secret"):
                markers.append("whsec_")
            for marker in markers:
                assert marker not in text, f"{label}: contains {marker!r}"
            for p in plaintexts - allowed:
                assert p not in text and p[-20:] not in text, f"{label}: contains a secret issued elsewhere"
        assert hook["secret"] not in seen[[s[0] for s in seen].index("rotate secret")][1].text


# ===========================================================================================
# API4:2023 Unrestricted Resource Consumption
# ===========================================================================================


def _admin_oversize_targets(make_restaurant, make_key):
    rid = make_restaurant()["restaurantId"]
    key_id = make_key()["keyId"]
    return [
        ("POST", "/ivr/restaurants", restaurant_body()),
        ("PATCH", f"/ivr/restaurants/{rid}", {"name": "x"}),
        ("POST", "/ivr/auth/api-key", {"name": "big"}),
        ("POST", f"/ivr/auth/api-key/{key_id}/rotate", {"gracePeriodSeconds": 60}),
        ("POST", "/ivr/auth/login", {"email": "a@pulsara.test", "password": "x"}),
    ]


class TestAPI4ResourceConsumption:
    """API4 Unrestricted Resource Consumption: body limits (64 KiB admin, 256 KiB calls, a
    transcript at most 100 KB), capped page sizes and collections, bounded JSON nesting,
    and per-key rate limits shared by every instance, with Retry-After and RateLimit-*."""

    def test_admin_bodies_over_64_kib_are_413(self, api, admin_token, dynamodb, make_restaurant, make_key):
        for method, path, obj in _admin_oversize_targets(make_restaurant, make_key):
            before = len(scan_all(dynamodb, "RESTAURANTS_TABLE")), len(scan_all(dynamodb, "API_KEYS_TABLE"))
            token = None if path == "/ivr/auth/login" else admin_token
            r = api.call(method, path, token, data=json_of_size(obj, ADMIN_BODY_LIMIT + 1), headers=dict(JSON))
            assert_error(r, 413, "PAYLOAD_TOO_LARGE")
            assert (len(scan_all(dynamodb, "RESTAURANTS_TABLE")), len(scan_all(dynamodb, "API_KEYS_TABLE"))) == before

    def test_admin_body_of_exactly_64_kib_is_read(self, api, admin_token):
        # The limit is inclusive: exactly 64 KiB is parsed (and here refused for its padding field).
        r = api.post("/ivr/restaurants", admin_token, data=json_of_size(restaurant_body(), ADMIN_BODY_LIMIT), headers=dict(JSON))
        assert_error(r, 422, "VALIDATION_ERROR")
        r = api.post("/ivr/auth/api-key", admin_token, data=json_of_size({"name": "x"}, ADMIN_BODY_LIMIT), headers=dict(JSON))
        assert_error(r, 422, "VALIDATION_ERROR")

    def test_ivr_bodies_over_their_limits_are_413(self, api, dynamodb, make_key, make_restaurant, receiver, register):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        call_id = api.post("/ivr/call", key, json=call_body(rid)).json()["data"]["callId"]
        hook = register(key, receiver.url("/ok/oversize"))
        before = len(scan_all(dynamodb, "CALLS_TABLE"))
        for path, obj, size in [
            ("/ivr/call", call_body(rid), CALL_BODY_LIMIT + 1),
            (f"/ivr/call/{call_id}/complete", {"duration": 5}, CALL_BODY_LIMIT + 1),
            ("/ivr/webhooks/register", {"callbackUrl": receiver.url("/ok/x"), "events": ALL_EVENTS}, ADMIN_BODY_LIMIT + 1),
            (f"/ivr/webhooks/{hook['webhookId']}/rotate-secret", {"gracePeriodSeconds": 5}, ADMIN_BODY_LIMIT + 1),
        ]:
            r = api.post(path, key, data=json_of_size(obj, size), headers=dict(JSON))
            assert_error(r, 413, "PAYLOAD_TOO_LARGE")
        assert len(scan_all(dynamodb, "CALLS_TABLE")) == before
        assert len(api.get("/ivr/webhooks", key).json()["data"]["webhooks"]) == 1

    def test_call_body_of_exactly_256_kib_is_read(self, api, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        r = api.post("/ivr/call", key, data=json_of_size(call_body(rid), CALL_BODY_LIMIT), headers=dict(JSON))
        assert_error(r, 422, "VALIDATION_ERROR")

    def test_transcripts_over_100_kb_are_413(self, api, admin_token, dynamodb, make_key, make_restaurant):
        restaurant = make_restaurant(notificationEmails=[f"owner-{uuid.uuid4().hex[:8]}@luigis.example"])
        rid = restaurant["restaurantId"]
        key = make_key()["apiKey"]
        before = len(scan_all(dynamodb, "CALLS_TABLE"))
        text = "Customer: " + "la " * (TRANSCRIPT_LIMIT // 3)
        assert len(text.encode()) > TRANSCRIPT_LIMIT
        assert_error(api.post("/ivr/call", key, json=call_body(rid, transcript=text)), 413, "PAYLOAD_TOO_LARGE", "transcript")
        turns = [{"role": "user", "message": "la " * 1000}] * 40  # 120 KB in 40 turns
        assert_error(api.post("/ivr/call", key, json=call_body(rid, transcript=turns)), 413, "PAYLOAD_TOO_LARGE", "transcript")
        assert len(scan_all(dynamodb, "CALLS_TABLE")) == before
        # Exactly at the limit is fine.
        exact = "Customer: " + "x" * (TRANSCRIPT_LIMIT - len("Customer: "))
        assert api.post("/ivr/call", key, json=call_body(rid, transcript=exact)).status_code == 200
        # The final transcript of a completion too; the call stays open and nobody is mailed.
        call_id = api.post("/ivr/call", key, json=call_body(rid)).json()["data"]["callId"]
        r = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 9, "finalTranscript": text})
        assert_error(r, 413, "PAYLOAD_TOO_LARGE", "finalTranscript")
        assert api.get(f"/ivr/calls/{call_id}", admin_token).json()["data"]["status"] == "in_progress"

    @pytest.mark.parametrize("value", ["101", "0", "-1", "abc", "1e2", "99999999999", "50.5"])
    def test_list_limits_are_capped(self, api, admin_token, make_key, make_restaurant, receiver, register, value):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        wid = register(key, receiver.url("/ok/limits"))["webhookId"]
        for path, cred in [("/ivr/auth/api-keys", admin_token), (f"/ivr/restaurants/{rid}/calls", admin_token),
                           (f"/ivr/webhooks/{wid}/deliveries", key)]:
            assert_error(api.get(path, cred, params={"limit": value}), 422, "VALIDATION_ERROR", "limit")
            assert api.get(path, cred, params={"limit": "100"}).status_code == 200, path

    def test_collections_in_bodies_are_capped(self, api, admin_token, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        cases = [
            ("/ivr/restaurants", admin_token, restaurant_body(phoneNumbers=[unique_phone() for _ in range(11)]), "phoneNumbers"),
            ("/ivr/restaurants", admin_token, restaurant_body(notificationEmails=[f"o{i}@luigis.example" for i in range(11)]), "notificationEmails"),
            ("/ivr/restaurants", admin_token, restaurant_body(schedule={"monday": [{"start": "09:00", "end": "10:00"}] * 50}), "schedule"),
            ("/ivr/restaurants", admin_token, restaurant_body(agent={"elevenlabs_agent_id": "a", "voice_id": "v", "tools": ["t"] * 33}), "agent"),
            ("/ivr/auth/api-key", admin_token, {"name": "x", "restaurantIds": [rid] * 101}, "restaurantIds"),
            ("/ivr/auth/api-key", admin_token, {"name": "x", "rateLimitPerMinute": 100001}, "rateLimitPerMinute"),
            ("/ivr/call", key, call_body(rid, transcript=[{"role": "user", "message": "hi"}] * 2001), "transcript"),
            ("/ivr/webhooks/register", key, {"callbackUrl": "https://hooks.example.com/x", "events": ALL_EVENTS, "description": "d" * 201}, "description"),
        ]
        for path, cred, body, field in cases:
            assert_error(api.post(path, cred, json=body), 422, "VALIDATION_ERROR", field)

    def test_deeply_nested_json_is_rejected(self, api, admin_token, make_key):
        key = make_key()["apiKey"]
        nested = ("[" * 20000 + "]" * 20000).encode()
        obj_nested = ('{"name":' + '{"a":' * 10000 + "1" + "}" * 10000 + "}").encode()
        rid = "rst_" + uuid.uuid4().hex
        # A transcript is "text or a list of turns": the untagged shape buffers whatever it gets.
        deep_transcript = json.dumps(call_body(rid, transcript="X")).replace('"transcript": "X"', '"transcript": ' + "[" * 20000 + "]" * 20000).encode()
        for path, cred, data in [("/ivr/restaurants", admin_token, nested), ("/ivr/auth/api-key", admin_token, obj_nested),
                                 ("/ivr/call", key, nested), ("/ivr/call", key, deep_transcript)]:
            r = api.post(path, cred, data=data, headers=dict(JSON))
            assert r.status_code in (400, 422), r.text[:300]
            assert_error(r, r.status_code, "BAD_REQUEST" if r.status_code == 400 else "VALIDATION_ERROR")

    def test_per_key_rate_limit_answers_429_with_headers(self, api, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        key = make_key(rateLimitPerMinute=3)["apiKey"]
        for _ in range(3):  # retried only when a minute boundary splits the sequence
            first = api.get(config_path(rid), key)
            if first.status_code == 429:  # the previous round's window: wait for a fresh one
                time.sleep(int(first.headers["retry-after"]) + 0.2)
                continue
            assert first.status_code == 200, first.text
            assert first.headers["ratelimit-limit"] == "3"
            assert 0 <= int(first.headers["ratelimit-remaining"]) <= 2
            assert 1 <= int(first.headers["ratelimit-reset"]) <= 60
            limited = next((r for r in (api.get(config_path(rid), key) for _ in range(6)) if r.status_code == 429), None)
            assert limited is not None, "no 429 after 7 requests with a limit of 3/min"
            assert_error(limited, 429, "RATE_LIMITED")
            retry_after = int(limited.headers["retry-after"])
            assert 1 <= retry_after <= 60
            assert limited.headers["ratelimit-limit"] == "3"
            assert limited.headers["ratelimit-remaining"] == "0"
            assert 1 <= int(limited.headers["ratelimit-reset"]) <= 60
            if retry_after < 3:
                time.sleep(retry_after + 0.2)
                continue
            # The limit is per key across every IVR route ...
            assert_error(api.get("/ivr/webhooks", key), 429, "RATE_LIMITED")
            assert_error(api.post("/ivr/call", key, json=call_body(rid)), 429, "RATE_LIMITED")
            # ... and only that key's.
            other = make_key(rateLimitPerMinute=3)["apiKey"]
            assert api.get(config_path(rid), other).status_code == 200
            return
        pytest.fail("could not fit the sequence into one rate-limit window")

    def test_wrong_secrets_do_not_spend_the_victims_budget(self, api, make_key, make_restaurant):
        """Someone who knows a key id (it is the key's first 8 characters) cannot lock the
        vendor out by sending wrong secrets with it."""
        rid = make_restaurant()["restaurantId"]
        key = make_key(rateLimitPerMinute=3)["apiKey"]
        for _ in range(10):
            forged = key[: len("psk_live_") + 8] + "".join(secrets.choice("abcdefghijkmnopqrstuvwxyz") for _ in range(24))
            assert_error(api.get(config_path(rid), forged), 401, "UNAUTHORIZED")
        r = api.get(config_path(rid), key)
        assert r.status_code == 200, r.text
        assert int(r.headers["ratelimit-remaining"]) == 2, r.headers

    def test_rate_limit_is_shared_by_all_instances(self, api, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        limit = 5
        key = make_key(rateLimitPerMinute=limit)["apiKey"]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda _: api.get(config_path(rid), key).status_code, range(24)))
        assert set(statuses) <= {200, 429}, statuses
        # Fixed one-minute windows: a burst may straddle one boundary, never more.
        assert statuses.count(200) <= 2 * limit, statuses
        assert 429 in statuses, statuses


# ===========================================================================================
# API5:2023 Broken Function Level Authorization
# ===========================================================================================


@pytest.fixture(scope="module")
def world(api, admin_token, receiver):
    """Real objects for every path parameter, so a route that failed to check the kind of
    credential would act on something that exists. Read-only for the tests using it."""
    r = api.post("/ivr/restaurants", admin_token, json=restaurant_body())
    assert r.status_code == 201, r.text
    rid = r.json()["data"]["restaurantId"]
    r = api.post("/ivr/auth/api-key", admin_token, json={"name": "function-level " + uuid.uuid4().hex[:6], "rateLimitPerMinute": 10000})
    assert r.status_code == 201, r.text
    key = r.json()["data"]
    r = api.post("/ivr/call", key["apiKey"], json=call_body(rid))
    assert r.status_code == 200, r.text
    call_id = r.json()["data"]["callId"]
    r = api.post("/ivr/webhooks/register", key["apiKey"], json={"callbackUrl": receiver.url("/ok/world"), "events": ALL_EVENTS})
    assert r.status_code == 201, r.text
    wid = r.json()["data"]["webhookId"]
    delivery_id = send_test(api, key["apiKey"], wid)
    yield {
        "key": key["apiKey"],
        "params": {"keyId": key["keyId"], "restaurantId": rid, "callId": call_id, "webhookId": wid, "deliveryId": delivery_id},
    }
    api.delete(f"/ivr/webhooks/{wid}", key["apiKey"])


def fill(path: str, world: dict) -> str:
    for name, value in world["params"].items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a parameter of {path}"
    return path


def body_kw(method: str) -> dict:
    return {"json": {}} if method in ("POST", "PATCH", "PUT") else {}


class TestAPI5FunctionLevelAuthorization:
    """API5 Broken Function Level Authorization: every route of template.yaml, classified by
    path: admin routes refuse IVR keys (403), IVR routes refuse admin tokens (403), every
    route but sign-in refuses anonymous callers (401); the check comes before anything else,
    and the refusals carry no data."""

    def test_every_route_is_classified(self):
        assert LOGIN in ROUTES
        assert ADMIN_ROUTES and IVR_ROUTES
        assert set(ADMIN_ROUTES) | set(IVR_ROUTES) | {LOGIN} == set(ROUTES)
        assert ("GET", "/ivr/restaurant/{restaurantId}/config") in IVR_ROUTES
        assert ("GET", "/ivr/restaurants/{restaurantId}/calls") in ADMIN_ROUTES

    @pytest.mark.parametrize("route", ADMIN_ROUTES, ids=route_id)
    def test_ivr_key_on_admin_route_is_403(self, api, world, route):
        method, path = route
        assert_error(api.call(method, fill(path, world), world["key"], **body_kw(method)), 403, "FORBIDDEN")

    @needs_token_secret
    @pytest.mark.parametrize("route", ADMIN_ROUTES, ids=route_id)
    def test_token_without_the_admin_role_on_admin_route_is_403(self, api, admin_token, world, route):
        method, path = route
        token = jwt(good_claims(admin_token, role="viewer"))
        assert_error(api.call(method, fill(path, world), token, **body_kw(method)), 403, "FORBIDDEN")

    @pytest.mark.parametrize("route", IVR_ROUTES, ids=route_id)
    def test_admin_token_on_ivr_route_is_403(self, api, admin_token, world, route):
        method, path = route
        assert_error(api.call(method, fill(path, world), admin_token, **body_kw(method)), 403, "FORBIDDEN")

    @pytest.mark.parametrize("route", PROTECTED_ROUTES, ids=route_id)
    def test_no_credentials_is_401(self, api, world, route):
        method, path = route
        body = assert_error(api.call(method, fill(path, world), **body_kw(method)), 401, "UNAUTHORIZED")
        assert body["message"] == "missing or invalid credentials"

    def test_the_world_is_untouched(self, api, admin_token, world):
        """After every refusal above, the objects they pointed at are as they were."""
        p = world["params"]
        assert api.get(f"/ivr/restaurants/{p['restaurantId']}", admin_token).status_code == 200
        assert api.get(config_path(p["restaurantId"]), world["key"]).status_code == 200, "the key was not revoked"
        call = api.get(f"/ivr/calls/{p['callId']}", admin_token).json()["data"]
        assert call["status"] == "in_progress"
        hooks = api.get("/ivr/webhooks", world["key"]).json()["data"]["webhooks"]
        assert [h["webhookId"] for h in hooks] == [p["webhookId"]]


# ===========================================================================================
# API7:2023 Server Side Request Forgery
# ===========================================================================================

INWARD_TARGETS = [
    "https://127.0.0.1/",
    "https://10.0.0.5/",
    "https://192.168.0.1/",
    "https://172.16.0.1/",
    "https://[::1]/",
    "https://169.254.169.254/latest/meta-data/",
    "https://[fd00:ec2::254]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the metadata address
    "https://[::127.0.0.1]/",  # IPv4-compatible IPv6 (deprecated) of loopback
    "https://[::10.0.0.1]/",  # ... of a private address
    "https://[::169.254.169.254]/",  # ... of the metadata address
    "https://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
    "https://[2002:a9fe:a9fe::1]/",  # 6to4 of the metadata address
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    "https://198.18.0.1/",  # benchmarking
    "https://192.0.0.8/",  # IETF protocol assignments
    "https://[fe80::1]/",
    "https://[::]/",
    "https://localhost/",
    "https://localhost./",
    "https://api.localhost/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://intranet/",
    "https://0.0.0.0/",
    "https://100.64.0.1/",
    "https://224.0.0.1/",
    "https://2130706433/",  # 127.0.0.1 in decimal
    "https://0x7f.0.0.1/",  # ... in hex
    "https://0177.0.0.1/",  # ... in octal
    "https://127.1/",
    "http://example.com/",  # not https
    "http://10.0.0.5/",  # plain http is for loopback receivers only, and only in the local stage
    "https://user:pass@example.com/",
    "https://example.com@127.0.0.1/",
    "https://127.0.0.1#@example.com/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://example.com/",
]


class TestAPI7ServerSideRequestForgery:
    """API7 Server Side Request Forgery: webhook callback URLs (the only outbound requests a
    caller controls) must be https to public addresses: loopback, private, link-local,
    unique-local, metadata, reserved, internal names, alternative IP notations,
    credentials and other schemes are refused at registration; redirects are not followed."""

    @pytest.mark.parametrize("url", INWARD_TARGETS)
    def test_inward_callback_urls_are_refused(self, api, make_key, url):
        key = make_key()["apiKey"]
        r = api.post("/ivr/webhooks/register", key, json={"callbackUrl": url, "events": ALL_EVENTS})
        assert_error(r, 422, "VALIDATION_ERROR", "callbackUrl")
        assert api.get("/ivr/webhooks", key).json()["data"]["webhooks"] == []

    def test_redirects_are_not_followed(self, api, make_key, receiver, register):
        key = make_key()["apiKey"]
        tag = uuid.uuid4().hex[:8]
        hook = register(key, receiver.url(f"/redirect/{tag}"), ["agent.updated"])
        delivery_id = send_test(api, key, hook["webhookId"])
        receiver.wait(f"/redirect/{tag}", 2, timeout=30)  # the first attempt and a retry

        def attempts():
            d = next((d for d in deliveries(api, key, hook["webhookId"]) if d["deliveryId"] == delivery_id), None)
            return d if d and len(d["attempts"]) >= 2 else None

        d = poll(attempts, 30)
        assert d, deliveries(api, key, hook["webhookId"])
        assert d["status"] != "succeeded", d
        assert all(a.get("statusCode") == 302 for a in d["attempts"]), d["attempts"]
        assert receiver.to(f"/landed/{tag}") == [], "the dispatcher followed a redirect"


# ===========================================================================================
# API8:2023 Security Misconfiguration
# ===========================================================================================

UNDECLARED = sorted(
    {(m, p) for p in {p for _, p in ROUTES} for m in ("GET", "POST", "PUT", "PATCH", "DELETE")} - set(ROUTES),
    key=lambda r: (r[1], r[0]),
)


class TestAPI8SecurityMisconfiguration:
    """API8 Security Misconfiguration: every response carries x-request-id, a JSON content
    type, `cache-control: no-store` and `x-content-type-options: nosniff`; a 500 says nothing
    but the request id; undeclared methods and odd ids are 4xx, never 5xx."""

    def test_headers_on_every_kind_of_response(self, api, admin_token, make_key, make_restaurant, receiver, register):
        restaurant = make_restaurant()
        rid = restaurant["restaurantId"]
        key = make_key()["apiKey"]
        limited = make_key(rateLimitPerMinute=1)["apiKey"]
        wid = register(key, receiver.url("/ok/headers"))["webhookId"]
        responses = {
            200: api.get(config_path(rid), key),
            201: api.post("/ivr/restaurants", admin_token, json=restaurant_body()),
            202: api.post(f"/ivr/webhooks/{wid}/test", key),
            400: api.post("/ivr/restaurants", admin_token, data="{", headers=dict(JSON)),
            401: api.get("/ivr/auth/api-keys"),
            403: api.get("/ivr/auth/api-keys", key),
            404: api.get("/ivr/restaurants/rst_" + uuid.uuid4().hex, admin_token),
            409: api.post("/ivr/restaurants", admin_token, json=restaurant_body(phoneNumbers=restaurant["phoneNumbers"])),
            413: api.post("/ivr/auth/api-key", admin_token, data=json_of_size({"name": "x"}, ADMIN_BODY_LIMIT + 1), headers=dict(JSON)),
            415: api.post("/ivr/auth/api-key", admin_token, data='{"name":"x"}', headers={"content-type": "text/plain"}),
            422: api.post("/ivr/auth/api-key", admin_token, json={"name": ""}),
        }
        api.get(config_path(rid), limited)
        responses[429] = next(r for r in (api.get(config_path(rid), limited) for _ in range(4)) if r.status_code == 429)
        ids = set()
        for status, r in responses.items():
            assert r.status_code == status, (status, r.status_code, r.text[:300])
            assert_secure_headers(r)
            ids.add(r.headers["x-request-id"])
            if status >= 400:
                assert r.json()["error"]["requestId"] == r.headers["x-request-id"]
        assert len(ids) == len(responses), "request ids are unique"

    def test_internal_errors_leak_nothing(self, api, admin_token, dynamodb):
        """Provoked with unreadable records written straight into DynamoDB (tables without a
        stream, so no event consumer ever sees them): a call (admin route) and an API key
        (read while authenticating, on an IVR and an admin route)."""
        base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        call_id = "call_" + secrets.token_hex(12)
        key_id = "".join(secrets.choice(base62) for _ in range(8))
        key = "psk_live_" + key_id + "".join(secrets.choice(base62) for _ in range(24))
        dynamodb.put_item(TableName=os.environ["CALLS_TABLE"], Item={"callId": {"S": call_id}, "restaurantId": {"N": "42"}})
        dynamodb.put_item(TableName=os.environ["API_KEYS_TABLE"], Item={"keyId": {"S": key_id}, "keyHash": {"N": "42"}})
        try:
            for r in (api.get(f"/ivr/calls/{call_id}", admin_token), api.get(config_path("rst_" + uuid.uuid4().hex), key),
                      api.get("/ivr/auth/api-keys", key)):
                assert r.status_code == 500, r.text
                assert_secure_headers(r)
                body = r.json()
                assert set(body) == {"success", "message", "error"}, body
                assert body["error"] == {"code": "INTERNAL_ERROR", "requestId": r.headers["x-request-id"]}, body
                lowered = body["message"].lower()
                for leak in ("dynamo", "serde", "invalid type", "stored item", "corrupt", "table", "pulsara-", "panick",
                             ".rs", "backtrace", "expected", "42", call_id, key_id):
                    assert leak.lower() not in lowered, f"500 message leaks {leak!r}: {body['message']}"
        finally:
            dynamodb.delete_item(TableName=os.environ["CALLS_TABLE"], Key={"callId": {"S": call_id}})
            dynamodb.delete_item(TableName=os.environ["API_KEYS_TABLE"], Key={"keyId": {"S": key_id}})

    @pytest.mark.parametrize("route", UNDECLARED, ids=route_id)
    def test_undeclared_methods_are_404_or_405(self, api, admin_token, world, route):
        method, path = route
        cred = admin_token if is_admin_path(path) else None if path == LOGIN[1] else world["key"]
        r = api.call(method, fill(path, world), cred, headers=dict(CLOSE), **body_kw(method))
        assert r.status_code in (404, 405), f"{method} {path}: {r.status_code} {r.text[:300]}"

    @pytest.mark.parametrize("ident", [
        "a" * 3000, "%00", "rst_%00", "%E2%80%AE", "%C3%BC", "'%20OR%20'1'='1", "..%2F..%2Fauth%2Fapi-keys", "%2e%2e", "%25",
        "rst_" + "%F0%9F%98%80" * 10, "%FF%FE",
    ], ids=["3000-chars", "nul", "prefixed-nul", "rtl-override", "umlaut", "sql", "traversal", "dot-dot", "percent",
            "emoji", "invalid-utf8"])
    def test_odd_path_ids_are_4xx(self, api, admin_token, world, ident):
        key = world["key"]
        for method, path, cred, body in [
            ("GET", f"/ivr/restaurants/{ident}", admin_token, None),
            ("PATCH", f"/ivr/restaurants/{ident}", admin_token, {"name": "x"}),
            ("GET", f"/ivr/restaurants/{ident}/calls", admin_token, None),
            ("GET", f"/ivr/calls/{ident}", admin_token, None),
            ("DELETE", f"/ivr/auth/api-key/{ident}", admin_token, None),
            ("POST", f"/ivr/auth/api-key/{ident}/rotate", admin_token, None),
            ("GET", f"/ivr/restaurant/{ident}/config", key, None),
            ("POST", f"/ivr/call/{ident}/complete", key, {"duration": 1}),
            ("GET", f"/ivr/webhooks/{ident}/deliveries", key, None),
            ("POST", f"/ivr/webhooks/{ident}/test", key, None),
            ("DELETE", f"/ivr/webhooks/{ident}", key, None),
            ("POST", f"/ivr/webhooks/{world['params']['webhookId']}/deliveries/{ident}/replay", key, None),
        ]:
            r = api.call(method, path, cred, headers=dict(CLOSE), **({"json": body} if body is not None else {}))
            assert 400 <= r.status_code < 500, f"{method} {path[:80]}: {r.status_code} {r.text[:300]}"


# ===========================================================================================
# API10:2023 Unsafe Consumption of APIs
# ===========================================================================================


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
        restaurant = make_restaurant(notificationEmails=[f"owner-{uuid.uuid4().hex[:8]}@luigis.example"])
        key = make_key()["apiKey"]
        turns = [
            {"role": "user", "message": f"hi {XSS_SCRIPT} there"},
            {"role": "user", "message": f"look {XSS_IMG} here"},
            {"role": "agent", "message": "<a href=\"javascript:alert(2)\">click</a> <iframe src=//evil.example>"},
            {"role": "user", "message": "<style>body{background:url(//evil.example/t.png)}</style> & &amp; &#60;b&#62;"},
        ]
        audio = 'https://evil.example/a.mp3?x="><img src=x onerror=alert(3)>&y=<script>'
        forwarded = f'{XSS_IMG}{XSS_SCRIPT}'
        call_id, mail = complete_and_mail(api, key, restaurant["restaurantId"], {"transcript": turns},
                                          {"forwardedTo": forwarded, "audioUrl": audio, "finalTranscript": turns})
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

    def test_header_injection_through_call_data_goes_nowhere(self, api, admin_token, make_key, make_restaurant):
        owner = f"owner-{uuid.uuid4().hex[:8]}@luigis.example"
        restaurant = make_restaurant(notificationEmails=[owner])
        rid = restaurant["restaurantId"]
        key = make_key()["apiKey"]
        injection = "manager\r\nBcc: victim@evil.example\r\nSubject: pwned"
        # In fields that are one line, control characters are refused ...
        call_id = api.post("/ivr/call", key, json=call_body(rid)).json()["data"]["callId"]
        r = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 5, "forwardedTo": injection})
        if r.status_code == 200:  # accepted: then it must be neutralized in the e-mail
            mail = wait_mail(call_id)
            assert_clean_subject(mail["subject"])
            assert mail["destinations"].get("ToAddresses") == [owner] and not mail["destinations"].get("BccAddresses")
        else:
            assert_error(r, 422, "VALIDATION_ERROR", "forwardedTo")
        assert_error(api.post("/ivr/call", key, json=call_body(rid, callerNumber="+15559871234\r\nBcc: victim@evil.example")),
                     422, "VALIDATION_ERROR", "callerNumber")
        # A URL parser drops CR/LF/tab (WHATWG), so a recording link is refused or stored without them.
        r = api.post("/ivr/call", key, json=call_body(rid, audioUrl="https://x.example/a\r\nBcc: victim@evil.example"))
        if r.status_code == 200:
            stored = api.get(f"/ivr/calls/{r.json()['data']['callId']}", admin_token).json()["data"]["audioUrl"]
            assert "\r" not in stored and "\n" not in stored and " " not in stored, repr(stored)
        else:
            assert_error(r, 422, "VALIDATION_ERROR", "audioUrl")
        # ... and in transcripts, where line breaks are legitimate, they stay inside the body.
        turns = [{"role": "user", "message": injection}, {"role": "user", "message": "line\rbreak\u0000nul\u0085nel\u2028ls"}]
        call_id, mail = complete_and_mail(api, key, rid, {"transcript": turns}, {"finalTranscript": turns})
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
        restaurant = make_restaurant(name=name, notificationEmails=[f"owner-{uuid.uuid4().hex[:8]}@luigis.example"])
        key = make_key()["apiKey"]
        _, mail = complete_and_mail(api, key, restaurant["restaurantId"], {}, {})
        assert_clean_subject(mail["subject"])
        assert "<b onmouseover" not in mail["body"] and "<script" not in mail["body"]
        assert "Luigi&#39;s &lt;b onmouseover=alert(1)&gt;&quot;Bistro&quot;&lt;/b&gt;" in mail["body"]
        parse_mail_html(mail["body"])

    def test_bidi_controls_do_not_reach_the_email(self, api, make_key, make_restaurant):
        """Trojan-Source-style spoofing (CVE-2021-42574): a right-to-left override makes
        `exe.gnp` render as `png.exe`; neither the subject nor the e-mail's text may carry one."""
        restaurant = make_restaurant(name="Luigi's \u202eairottarT\u202c", notificationEmails=[f"owner-{uuid.uuid4().hex[:8]}@luigis.example"])
        key = make_key()["apiKey"]
        turns = [{"role": "user", "message": "please open invoice_\u202egnp.exe\u202c and \u2067isolated\u2069 \u200fmark"}]
        _, mail = complete_and_mail(api, key, restaurant["restaurantId"], {"transcript": turns},
                                    {"finalTranscript": turns, "forwardedTo": "manager \u202eregnad\u202c"})
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
        restaurant = make_restaurant(notificationEmails=[f"owner-{uuid.uuid4().hex[:8]}@luigis.example"])
        key = make_key()["apiKey"]
        hidden = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u2063\u180e\ufff9\U000e0041\u3164\u034f"
        message = "please r" + "r".join(hidden) + "efund my card"
        turns = [{"role": "user", "message": message}]
        _, mail = complete_and_mail(api, key, restaurant["restaurantId"], {"transcript": turns},
                                    {"finalTranscript": turns, "forwardedTo": "desk\u200b\u2060two"})
        text = "".join(parse_mail_html(mail["body"]).text)
        for where, value in (("subject", mail["subject"]), ("body", text), ("raw body", mail["body"])):
            found = sorted(f"U+{ord(c):04X}" for c in set(hidden) & set(value))
            assert not found, f"invisible characters in the {where}: {found}"
        # What was visible stays, joined up.
        assert "please " + "r" * len(hidden) + "efund my card" in text, text
        assert "desktwo" in text, text

    def test_very_long_words_are_bounded(self, api, make_key, make_restaurant):
        restaurant = make_restaurant(notificationEmails=[f"owner-{uuid.uuid4().hex[:8]}@luigis.example"])
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
        call_id = api.post("/ivr/call", key, json=call_body(restaurant["restaurantId"])).json()["data"]["callId"]
        r = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 5, "forwardedTo": "x" * 101})
        assert_error(r, 422, "VALIDATION_ERROR", "forwardedTo")
        r = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 5, "audioUrl": "https://x.example/" + "a" * 3000})
        assert_error(r, 422, "VALIDATION_ERROR", "audioUrl")

    @pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "http://x.example/a.mp3",
                                     "https://user:pw@x.example/a.mp3", "//x.example/a.mp3", "https://"])
    def test_recording_links_must_be_plain_https(self, api, make_key, make_restaurant, url):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        assert_error(api.post("/ivr/call", key, json=call_body(rid, audioUrl=url)), 422, "VALIDATION_ERROR", "audioUrl")
        call_id = api.post("/ivr/call", key, json=call_body(rid)).json()["data"]["callId"]
        r = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 5, "audioUrl": url})
        assert_error(r, 422, "VALIDATION_ERROR", "audioUrl")

    def test_malformed_unicode_is_a_client_error(self, api, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        body = json.dumps(call_body(rid, transcript="PLACEHOLDER")).replace("PLACEHOLDER", "Customer: \\ud800 lone surrogate")
        r = api.post("/ivr/call", key, data=body, headers=dict(JSON))
        assert r.status_code in (400, 422), r.text
        assert_error(r, r.status_code, "BAD_REQUEST" if r.status_code == 400 else "VALIDATION_ERROR")
        # (A body that is not UTF-8 at all never reaches the function locally: `cargo lambda
        # watch` answers 500 itself, so it is not tested here.)

    def test_logs_hold_no_credentials_transcripts_or_caller_numbers(self, api, admin_token, make_key, make_restaurant, receiver):
        """Reads the function logs from the `cargo lambda watch` log file, whose path
        infra/test.sh must export as WATCH_LOG; skipped otherwise. Only the functions' JSON
        lines count: the emulator's own lines (e.g. the env it spawns functions with) are not
        what AWS would log."""
        log_path = os.environ.get("WATCH_LOG")
        if not log_path:
            pytest.skip("WATCH_LOG (the cargo lambda watch log file) is not exported by infra/test.sh")
        canary = f"zebra{uuid.uuid4().hex[:10]}"
        restaurant = make_restaurant(notificationEmails=[f"owner-{uuid.uuid4().hex[:8]}@luigis.example"])
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
        call = run(api.post("/ivr/call", key, json=call_body(rid, callerNumber=national,
                                                                transcript=f"Customer: my secret word is {canary}-one")), 200).json()["data"]
        run(api.post(f"/ivr/call/{call['callId']}/complete", key, json={
            "duration": 30, "forwardedTo": f"desk {canary}", "finalTranscript": f"Customer: and {canary}-two"}), 200)
        run(api.post("/ivr/call", key, json=call_body(rid, callerNumber=e164, transcript=f"{canary}-three " * 50)), 200)
        run(api.post("/ivr/call", key, json=call_body(rid, callerNumber=e164, transcript=f"{canary}-four",
                                                     timestamp="yesterday")), 422)
        run(api.get(config_path(rid), wrong_key), 401)
        hook = run(api.post("/ivr/webhooks/register", key, json={"callbackUrl": receiver.url("/ok/logs"), "events": ALL_EVENTS}), 201).json()["data"]
        run(api.delete(f"/ivr/webhooks/{hook['webhookId']}", key), 200)
        run(api.get(f"/ivr/calls/{call['callId']}", admin_token), 200)
        run(api.get(f"/ivr/restaurants/{rid}/calls", admin_token), 200)
        run(api.get(config_path(rid), admin_token), 403)
        run(api.post("/ivr/auth/login", json={"email": f"logs-{canary}@pulsara.test", "password": password}))
        rotated = run(api.post(f"/ivr/auth/api-key/{created['keyId']}/rotate", admin_token, json={"gracePeriodSeconds": 5}), 201).json()["data"]

        def log_text():
            with open(log_path, encoding="utf-8", errors="replace") as fh:
                return fh.read()

        text = poll(lambda: (t := log_text()) and all(i in t for i in ids) and t, 20)
        assert text, f"not every request id reached {log_path}"
        lines = "\n".join(line for line in text.splitlines() if line.lstrip().startswith("{"))
        forbidden = {
            "the API key": key, "the API key's secret part": key[len("psk_live_") + 8:],
            "a presented wrong key": wrong_key, "a rotated key": rotated["apiKey"],
            "the admin token": admin_token, "the admin token's signature": admin_token.rsplit(".", 1)[1],
            "the webhook secret": hook["secret"], "a password": password,
            "the transcript": canary, "the caller number (E.164)": e164, "the caller number (digits)": digits,
            "the caller number (national)": national,
        }
        leaks = [what for what, value in forbidden.items() if value in lines]
        assert not leaks, f"the function logs contain {', '.join(leaks)}"


# ===========================================================================================
# API2:2023 Broken Authentication: sign-in brute force (last: it spends the address's budget)
# ===========================================================================================


class TestAPI2SignInBruteForce:
    """API2 Broken Authentication, credential stuffing and brute force: sign-in is limited to
    5 attempts a minute per e-mail and 20 per source address (fixed one-minute windows), and a
    limited attempt is refused even with the right password. Last in the file: the address
    test exhausts this address's sign-in budget and waits for the window to end."""

    def _until_limited(self, api, attempts: int, body_for) -> tuple[int, object]:
        for n in range(1, attempts + 1):
            r = api.post("/ivr/auth/login", json=body_for(n))
            if r.status_code == 429:
                return n, r
            assert_error(r, 401, "UNAUTHORIZED")
        pytest.fail(f"no 429 after {attempts} sign-in attempts")

    def _assert_limited(self, r):
        assert_error(r, 429, "RATE_LIMITED")
        retry_after = int(r.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert r.headers.get("ratelimit-remaining") == "0"
        assert "accessToken" not in r.text
        return retry_after

    def test_per_email(self, api):
        email = f"victim-{uuid.uuid4().hex[:8]}@pulsara.test"
        password = "correct-horse-" + secrets.token_hex(8)
        admin_cli("create-admin", "--email", email, env={"PULSARA_ADMIN_PASSWORD": password})
        for _ in range(3):  # retried only if a window boundary falls right after the 429
            # 2 * limit + 1 attempts: one fixed window must see more than the limit.
            _, r = self._until_limited(api, 2 * LOGIN_LIMIT_PER_EMAIL + 1,
                                       lambda n: {"email": [email, email.upper(), f"  {email} "][n % 3], "password": f"guess-{n}-guess"})
            retry_after = self._assert_limited(r)
            if retry_after < 2:
                time.sleep(retry_after + 0.2)
                continue
            # The right password no longer helps within the window.
            self._assert_limited(api.post("/ivr/auth/login", json={"email": email, "password": password}))
            return
        pytest.fail("could not fit the sequence into one window")

    def test_per_address(self, api):
        """Every attempt names another e-mail, so only the per-address limit can refuse them."""
        email = f"bystander-{uuid.uuid4().hex[:8]}@pulsara.test"
        password = "correct-horse-" + secrets.token_hex(8)
        admin_cli("create-admin", "--email", email, env={"PULSARA_ADMIN_PASSWORD": password})
        retry_after = 0
        try:
            for _ in range(3):
                tag = uuid.uuid4().hex[:6]
                _, r = self._until_limited(api, 2 * LOGIN_LIMIT_PER_IP + 1,
                                           lambda n: {"email": f"spray-{tag}-{n}@pulsara.test", "password": "Winter2026!"})
                retry_after = self._assert_limited(r)
                if retry_after < 2:
                    time.sleep(retry_after + 0.2)
                    continue
                # An account nobody has tried yet is refused too: the address is limited.
                r = api.post("/ivr/auth/login", json={"email": email, "password": password})
                retry_after = self._assert_limited(r)
                return
            pytest.fail("could not fit the sequence into one window")
        finally:
            # Give the address its budget back before anything else signs in.
            if retry_after:
                time.sleep(retry_after + 0.5)
                ok = poll(lambda: api.post("/ivr/auth/login", json={"email": email, "password": password}).status_code == 200, 10, 1)
                assert ok, "sign-in still refused after the window ended"
