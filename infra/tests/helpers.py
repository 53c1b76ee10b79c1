"""The one set of helpers of the end-to-end tests (zero2prod's `spawn_app` idea): the HTTP
client, the request bodies, the checks every response gets, polling, the webhook receiver,
the e-mails moto's SES accepted, admin users and their sign-in budget, the fault-injection
controls, and what the security tests share (the route inventory, admin-token crafting).
Every test module imports from here; conftest.py turns some of it into fixtures.

Not a test module: nothing here is collected by pytest."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest
import requests
from standardwebhooks.webhooks import Webhook

# --- paths and the stack's settings (infra/test.sh) ------------------------------------------

TESTS = Path(__file__).resolve().parent
INFRA = TESTS.parent
REPO = INFRA.parent
if str(INFRA) not in sys.path:  # infra/local_stack.py, infra/fault_proxy.py, ...
    sys.path.insert(0, str(INFRA))

import local_stack  # noqa: E402 - needs infra/ on sys.path (above)

if str(INFRA / "bench") not in sys.path:
    sys.path.insert(0, str(INFRA / "bench"))
import ddb_items  # noqa: E402 - infra/bench/ddb_items.py: item sizes, stored transcripts

TEMPLATE = Path(os.environ.get("PULSARA_TEMPLATE", REPO / "template.yaml"))
CARGO_TOML = Path(os.environ.get("PULSARA_CARGO_TOML", REPO / "Cargo.toml"))
OPENAPI = Path(os.environ.get("PULSARA_OPENAPI", INFRA / "openapi.yaml"))
LOGS = REPO / "target" / "test-logs"

API = os.environ.get("PULSARA_API", "")
FAULT_PROXY_URL = os.environ.get("FAULT_PROXY_URL", "")
FAULT_DIR = os.environ.get("PULSARA_FAULT_DIR", "")
KEY_CACHE_SECONDS = int(os.environ.get("API_KEY_CACHE_SECONDS", "30"))
LOGIN_PATH = "/ivr/auth/login"
LOGIN_LIMIT_PER_EMAIL = int(os.environ.get("LOGIN_LIMIT_PER_EMAIL_PER_MINUTE", "5"))
LOGIN_LIMIT_PER_IP = int(os.environ.get("LOGIN_LIMIT_PER_IP_PER_MINUTE", "20"))
ADMIN_BODY_LIMIT = 64 * 1024  # bytes: admin routes and webhook registration
CALL_BODY_LIMIT = 256 * 1024  # bytes: the IVR's call routes
TRANSCRIPT_LIMIT = 100 * 1024  # bytes of one transcript
ALL_EVENTS = ["settings.updated", "agent.updated", "restaurant.updated"]
JSON = {"content-type": "application/json"}
# For requests the local router may answer itself: `cargo lambda watch` can drop a kept-alive
# connection after its own 404, which then races with the next request on it.
CLOSE = {"connection": "close"}


# --- the HTTP client --------------------------------------------------------------------------


class Api:
    """Thin HTTP client: every call returns the `requests.Response`."""

    def __init__(self, base: str = API):
        self.base = base.rstrip("/")
        self.http = requests.Session()

    def call(self, method: str, path: str, token: str | None = None, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.base + path, headers=headers, timeout=60, **kw)

    def get(self, path, token=None, **kw):
        return self.call("GET", path, token, **kw)

    def post(self, path, token=None, **kw):
        return self.call("POST", path, token, **kw)

    def patch(self, path, token=None, **kw):
        return self.call("PATCH", path, token, **kw)

    def delete(self, path, token=None, **kw):
        return self.call("DELETE", path, token, **kw)


# --- waiting ----------------------------------------------------------------------------------


def wait_for(predicate: Callable, timeout: float = 30.0, interval: float = 0.5):
    """Call `predicate` until it returns something truthy (returned), or until `timeout`
    seconds have passed: then its last (falsy) value is returned, for an `assert`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --- request bodies ---------------------------------------------------------------------------

_phone_counter = iter(range(1000, 9999))


def unique_phone() -> str:
    """A fresh fictional North-American 555 number, in national format."""
    n = next(_phone_counter)
    prefix = uuid.uuid4().int % 800 + 200
    return f"(555) {prefix:03d}-{n:04d}"


def now_iso(delta: float = 0) -> str:
    t = datetime.now(UTC) + timedelta(seconds=delta)
    return t.isoformat().replace("+00:00", "Z")


def owner_email() -> str:
    """A notification address of its own, so a test finds exactly its e-mails."""
    return f"owner-{uuid.uuid4().hex[:8]}@luigis.example"


def restaurant_body(**overrides) -> dict:
    body = {
        "name": "Luigi's Trattoria",
        "phoneNumbers": [unique_phone()],
        "timezone": "America/New_York",
        "aiEnabled": True,
        "callHoursStart": "00:00",
        "callHoursEnd": "24:00",
        "agent": {
            "elevenlabs_agent_id": "agent_luigi",
            "voice_id": "tnSpp4vdxKPjI9w0GnoV",
            "tools": ["end_call", "get_address", "forward_call"],
        },
        "forwarding_number": unique_phone(),
        "notificationEmails": ["owner@luigis.example"],
    }
    body.update(overrides)
    return body


def call_body(restaurant_id: str, **overrides) -> dict:
    body = {
        "restaurantId": restaurant_id,
        "callId": "CA" + uuid.uuid4().hex,
        "timestamp": now_iso(),
        "callerNumber": "+15559871234",
        "transcript": (
            "Agent: Thanks for calling Luigi's!\nCustomer: hi, what time do you close tonight?"
        ),
        "audioUrl": "https://storage.pulsara.ai/calls/test.mp3",
    }
    body.update(overrides)
    return body


def config_path(ident: str) -> str:
    return f"/ivr/restaurant/{quote(ident, safe='')}/config"


def create_restaurant(api: Api, admin: str, **overrides) -> dict:
    """A restaurant from restaurant_body(**overrides); the 201's data."""
    r = api.post("/ivr/restaurants", admin, json=restaurant_body(**overrides))
    assert r.status_code == 201, r.text
    return r.json()["data"]


def create_key(api: Api, admin: str, **body) -> dict:
    """An API key (`body`: name, restaurantIds, rateLimitPerMinute, expiresAt); the 201's data,
    with the plaintext `apiKey`."""
    body.setdefault("name", "Test IVR " + uuid.uuid4().hex[:6])
    r = api.post("/ivr/auth/api-key", admin, json=body)
    assert r.status_code == 201, r.text
    return r.json()["data"]


# --- what every response carries --------------------------------------------------------------


def assert_secure_headers(r: requests.Response, cacheable: bool = False) -> None:
    """API8: the headers every response of ours carries; only a `cacheable` answer (the
    ring-time config) may be kept, privately."""
    h = r.headers
    where = f"{r.request.method} {r.request.url} -> {r.status_code}"
    assert h.get("x-request-id"), f"no x-request-id: {where}"
    content_type = h.get("content-type", "").split(";")[0].strip().lower()
    assert content_type == "application/json", f"{where}: {h.get('content-type')}"
    cache = h.get("cache-control", "")
    assert (cache.startswith("private, max-age=") if cacheable else cache == "no-store"), (
        f"{where}: cache-control {cache!r}"
    )
    assert h.get("x-content-type-options") == "nosniff", (
        f"{where}: x-content-type-options {h.get('x-content-type-options')!r}")


def assert_error(r: requests.Response, status: int, code: str, field: str | None = None) -> dict:
    """The error envelope: `status`, the headers every response carries, success false with a
    message, error.code `code`, error.requestId the x-request-id, no data; a 401 names the
    Bearer scheme. With `field`: a detail for exactly that field (a path such as
    `restaurantIds[0]` or `agent.tools`), with a message."""
    assert r.status_code == status, (
        f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:500]}"
    )
    assert_secure_headers(r)
    body = r.json()
    assert body["success"] is False and body["message"], body
    assert body["error"]["code"] == code, body
    assert body["error"]["requestId"] == r.headers["x-request-id"], body
    assert "data" not in body, body
    if status == 401:
        assert r.headers.get("www-authenticate", "").lower().startswith("bearer"), r.headers
    if field is not None:
        details = body["error"].get("details") or []
        mine = [d for d in details if d["field"] == field]
        assert mine, f"no detail for {field}: {details}"
        assert all(d.get("message") for d in mine), details
    return body


def shape(r: requests.Response) -> tuple:
    """What a caller can learn from a response, minus what differs on every request."""
    try:
        body = r.json()
    except ValueError:
        body = r.text
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = json.loads(json.dumps(body))
        body["error"].pop("requestId", None)
    headers = sorted(
        k.lower() for k in r.headers if k.lower() not in {"date", "x-request-id", "content-length"}
    )
    return r.status_code, body, headers


def assert_same_as_unknown(foreign, unknown, status: int = 404, code: str = "NOT_FOUND"):
    """API1: someone else's object answers exactly like one that doesn't exist."""
    assert_error(foreign, status, code)
    assert_error(unknown, status, code)
    assert shape(foreign) == shape(unknown), (
        f"\nforeign: {shape(foreign)}\nunknown: {shape(unknown)}"
    )


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


# --- moto: tables and SES ---------------------------------------------------------------------


def scan_all(dynamodb, table_env: str) -> list[dict]:
    items, start = [], None
    while True:
        kw = {"TableName": os.environ[table_env]}
        if start:
            kw["ExclusiveStartKey"] = start
        page = dynamodb.scan(**kw)
        items.extend(page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return items


def call_items(dynamodb) -> list[dict]:
    """The call records of the calls table, without their transcripts' items."""
    return [i for i in scan_all(dynamodb, "CALLS_TABLE") if "#" not in i["callId"]["S"]]


def raw_call_item(dynamodb, key: str) -> dict | None:
    return dynamodb.get_item(
        TableName=os.environ["CALLS_TABLE"], Key={"callId": {"S": key}}, ConsistentRead=True
    ).get("Item")


def stored_transcripts(dynamodb, call_id: str) -> tuple[list[dict], list[dict]]:
    """A call's process and final transcripts as stored: in their own items (the
    record names the final one), or inline in a record from before they had items."""
    call = raw_call_item(dynamodb, call_id) or {}

    def read(key: str) -> list[dict]:
        item = raw_call_item(dynamodb, key)
        return ddb_items.decode_transcript(item["t"]["B"]) if item else []

    process = read(f"{call_id}#transcript")
    tag = call.get("finalTranscriptTag", {}).get("S")
    final = read(f"{call_id}#final.{tag}") if tag else []
    return process, final


def sent_messages() -> list[dict]:
    """Every e-mail moto's SES accepted so far."""
    # ?only=: just SES's messages (infra/moto_server.py), not every service's state.
    url = os.environ["MOTO_URL"] + "/moto-api/data.json?only=ses.Message"
    with urllib.request.urlopen(url, timeout=30) as resp:
        data = json.load(resp)
    return data.get("ses", {}).get("Message", [])


def messages_for(call_id: str) -> list[dict]:
    return [m for m in sent_messages() if call_id in m.get("body", "")]


def wait_mail(call_id: str, timeout: float = 30) -> dict:
    mails = wait_for(lambda: messages_for(call_id), timeout, 0.2)
    assert len(mails) == 1, f"expected one e-mail for {call_id}, got {len(mails)}"
    return mails[0]


# --- calls as the dashboard reads them -------------------------------------------------------


def admin_call(api: Api, admin_token: str, call_id: str) -> dict:
    r = api.get(f"/ivr/calls/{call_id}", admin_token)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def calls_of(api: Api, admin_token: str, restaurant_id: str) -> list[dict]:
    r = api.get(f"/ivr/restaurants/{restaurant_id}/calls", admin_token)
    assert r.status_code == 200, r.text
    return r.json()["data"]["calls"]


# --- SES feedback (bounces and complaints, through SNS) ----------------------------------------

SIMULATOR_BOUNCE = "bounce@simulator.amazonses.com"
SIMULATOR_COMPLAINT = "complaint@simulator.amazonses.com"


def lambda_api() -> str:
    """cargo lambda watch's own address (PULSARA_API without /api)."""
    return API.rsplit("/api", 1)[0]


def invoke_function(function: str, event: dict) -> tuple[bool, bytes]:
    """Invokes a function through cargo lambda watch as SNS does: (whether it succeeded, the
    answer). A function error (X-Amz-Function-Error, or an error status) is False."""
    req = urllib.request.Request(
        f"{lambda_api()}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(event).encode(), headers=JSON, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return not resp.headers.get("x-amz-function-error"), resp.read()
    except urllib.error.HTTPError as exc:
        return False, exc.read()


def ses_feedback(kind: str, email: dict, call_id: str, restaurant_id: str,
                 recipients: list[str] | None = None, bounce_type: str = "Permanent") -> dict:
    """The SNS event SES event publishing delivers for a bounce or complaint of a call's
    e-mail (`email`: the call's `email` as GET /ivr/calls/{id} shows it), built as the local
    event sources build the mailbox simulator's."""
    import event_sources

    record = event_sources.ses_event_record(
        kind, recipients or email["recipients"], email["messageId"],
        os.environ.get("SENDER_EMAIL", "notifications@pulsara.example"), email["recipients"],
        {"callId": [call_id], "restaurantId": [restaurant_id]},
        os.environ.get("SES_CONFIGURATION_SET", "pulsara-local-email"),
        os.environ.get("AWS_REGION", "us-east-1"), bounce_type=bounce_type)
    arn = event_sources.topic_arn("EmailEventsTopic", "pulsara-",
                                  os.environ.get("AWS_REGION", "us-east-1"))
    return event_sources.sns_event(json.dumps(record), arn)


# --- admin users and their sign-in budget -----------------------------------------------------


def admin_cli(*args: str, env: dict[str, str]) -> str:
    binary = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "debug" / "pulsara-admin"
    out = subprocess.run(
        [str(binary), *args], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return out.stdout


def new_admin(prefix: str = "admin") -> tuple[str, str]:
    """A fresh admin (through the admin CLI, as an operator makes one): (e-mail, password)."""
    email = f"{prefix}-{uuid.uuid4().hex[:8]}@pulsara.test"
    password = "correct-horse-" + secrets.token_hex(8)
    admin_cli("create-admin", "--email", email, env={"PULSARA_ADMIN_PASSWORD": password})
    return email, password


def sign_in(api: Api, email: str, password: str) -> str:
    r = api.post(LOGIN_PATH, json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["data"]["accessToken"]


def reset_sign_in_limits(dynamodb) -> int:
    """Forget every sign-in counter (the `login-ip#…` and `login-email#…` buckets of the rate
    limits table): the next sign-in starts a fresh budget. `cargo lambda watch` gives every
    request the same source address, so the per-address limit (20 a minute) is one budget
    for the whole test session; a test that spends it gives it back with this (the
    `fresh_sign_in_budget` fixture). Returns how many counters it removed."""
    table = os.environ.get("RATE_LIMITS_TABLE")
    if not table:
        return 0
    removed, kw = 0, {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**kw)
        for item in page["Items"]:
            if item["bucket"]["S"].startswith("login-"):
                dynamodb.delete_item(TableName=table, Key={"bucket": item["bucket"]})
                removed += 1
        if "LastEvaluatedKey" not in page:
            return removed
        kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- a local webhook receiver -----------------------------------------------------------------


@dataclass
class Hit:
    """One request the receiver got."""

    at: float  # time.monotonic() when it arrived
    method: str
    path: str  # without the query string
    headers: dict[str, str]  # lower-case names
    body: bytes
    n: int  # 1-based number of this request at this receiver
    n_path: int  # 1-based number of this request to this path

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def payload(self) -> dict:
        return json.loads(self.body)

    def verify(self, secret: str) -> dict:
        """The payload, if the Standard Webhooks signature checks out with `secret`."""
        return Webhook(secret).verify(self.body, self.headers)

    def verifies(self, secret: str) -> bool:
        try:
            self.verify(secret)
            return True
        except Exception:  # noqa: BLE001 - any verification failure
            return False


# Fixed answers, for Receiver(respond=...); a respond may also return (status, headers).
def ok(hit: Hit) -> int:
    return 204


def down(hit: Hit) -> int:
    return 500


def gone(hit: Hit) -> int:
    return 410


def flaky(failures: int) -> Callable[[Hit], int]:
    """500 for the first `failures` requests at the receiver, then 200."""
    return lambda hit: 500 if hit.n <= failures else 200


FLAKY_FAILURES = 3  # `/flaky/...` answers 500 this many times (per path), then 200


class Receiver:
    """An HTTP receiver on 127.0.0.1:<random> that records every request (any method).

    By default the first path segment picks the answer: `/ok/...` 204, `/flaky/...` 500 for
    the first 3 requests to that path then 200, `/down/...` 500, `/gone/...` 410,
    `/redirect/...` 302 to `/landed/...` (204), anything else 404. `respond(hit)` replaces
    that: it returns the status (or (status, headers)) and may block, e.g. to hold a request
    while a test arms a fault. `url()` is the receiver's own path, `/hook-<random>`."""

    def __init__(self, respond: Callable[[Hit], int | tuple[int, dict]] | None = None):
        self.respond = respond or self.by_path
        self.hits: list[Hit] = []
        self.path = f"/hook-{uuid.uuid4().hex[:10]}"
        self._counts: Counter[str] = Counter()
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                with receiver._cond:
                    receiver._counts[path] += 1
                    hit = Hit(
                        time.monotonic(),
                        self.command,
                        path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                        len(receiver.hits) + 1,
                        receiver._counts[path],
                    )
                    receiver.hits.append(hit)
                    receiver._cond.notify_all()
                try:
                    answer = receiver.respond(hit)
                except Exception:  # noqa: BLE001 - a broken behaviour answers 500
                    answer = 500
                status, headers = answer if isinstance(answer, tuple) else (answer, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            do_POST = do_GET = do_PUT = _any  # noqa: N815 - http.server's naming

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self.thread.start()

    def by_path(self, hit: Hit) -> int | tuple[int, dict]:
        kind = hit.path.strip("/").split("/", 1)[0]
        if kind == "redirect":
            return 302, {"location": self.url("/landed" + hit.path[len("/redirect"):])}
        if kind == "flaky":
            return 500 if hit.n_path <= FLAKY_FAILURES else 200
        return {"ok": 204, "landed": 204, "down": 500, "gone": 410}.get(kind, 404)

    def url(self, path: str | None = None) -> str:
        return (
            f"http://127.0.0.1:{self.server.server_address[1]}{self.path if path is None else path}"
        )

    def snapshot(self) -> list[Hit]:
        with self._cond:
            return list(self.hits)

    def to(self, path: str) -> list[Hit]:
        with self._cond:
            return [h for h in self.hits if h.path == path]

    def wait(
        self,
        path: str,
        count: int,
        timeout: float = 60.0,
        where: Callable[[Hit], bool] | None = None,
    ) -> list[Hit]:
        """At least `count` requests to `path` (matching `where`), waiting up to `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [h for h in self.hits if h.path == path and (where is None or where(h))]
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
        assert len(got) >= count, (
            f"{path}: {len(got)} of {count} requests in {timeout:.0f} s: "
            f"{[h.body[:200] for h in got]}"
        )
        return got

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- webhooks, through the API ----------------------------------------------------------------


def register(api: Api, key: str, url: str, events=ALL_EVENTS, **extra) -> dict:
    """Registers a webhook; the 201's data. (The `register` fixture deletes it afterwards.)"""
    r = api.post(
        "/ivr/webhooks/register", key, json={"callbackUrl": url, "events": list(events), **extra}
    )
    assert r.status_code == 201, r.text
    return r.json()["data"]


def send_test(api: Api, key: str, webhook_id: str) -> str:
    """Sends a test event; its delivery id."""
    r = api.post(f"/ivr/webhooks/{webhook_id}/test", key)
    assert r.status_code == 202, r.text
    return r.json()["data"]["deliveryId"]


def deliveries_of(api: Api, key: str, webhook_id: str, limit: int | None = None) -> list[dict]:
    r = api.get(
        f"/ivr/webhooks/{webhook_id}/deliveries", key, params={"limit": limit} if limit else None
    )
    assert r.status_code == 200, r.text
    return r.json()["data"]["deliveries"]


# --- the security tests: the route inventory, from template.yaml ------------------------------

ROUTES: list[tuple[str, str]] = sorted(
    local_stack.function_routes(local_stack.load_template(TEMPLATE)),
    key=lambda r: (r[1], r[0]),
)
LOGIN = ("POST", LOGIN_PATH)


def is_admin_path(path: str) -> bool:
    """Admin routes: /ivr/auth/api-key*, /ivr/auth/api-keys, /ivr/restaurants*, /ivr/calls/*."""
    return path.startswith(("/ivr/auth/api-key", "/ivr/restaurants", "/ivr/calls/"))


def is_signed_path(path: str) -> bool:
    """The routes voice platforms call with their own signatures instead of a key:
    ElevenLabs' post-call webhook, Twilio's voice and status webhooks, Vapi's server URL and
    Retell's inbound and event webhooks."""
    return path.endswith(
        (
            "/elevenlabs/post-call",
            "/twilio/voice",
            "/twilio/status",
            "/vapi",
            "/retell/inbound",
            "/retell/events",
        )
    )


ADMIN_ROUTES = [r for r in ROUTES if is_admin_path(r[1])]
SIGNED_ROUTES = [r for r in ROUTES if is_signed_path(r[1])]
IVR_ROUTES = [
    r for r in ROUTES if not is_admin_path(r[1]) and not is_signed_path(r[1]) and r != LOGIN
]
PROTECTED_ROUTES = ADMIN_ROUTES + IVR_ROUTES + SIGNED_ROUTES


def route_id(route) -> str:
    return f"{route[0]} {route[1]}"


def fill(path: str, world: dict) -> str:
    """A route's path with the `route_world` fixture's real object for every parameter."""
    for name, value in world["params"].items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a parameter of {path}"
    return path


def body_kw(method: str) -> dict:
    return {"json": {}} if method in ("POST", "PATCH", "PUT") else {}


# --- the security tests: admin tokens, crafted with the stack's secret ------------------------


def function_env(binary: str) -> dict[str, str]:
    """A function's own environment variables in the local stack (what infra/respawn.sh adds
    to that one function's environment), from $PULSARA_FUNCTION_ENV_DIR/<binary>.env."""
    d = os.environ.get("PULSARA_FUNCTION_ENV_DIR")
    path = Path(d) / f"{binary}.env" if d else None
    if path is None or not path.exists():
        return {}
    return dict(
        line.split("=", 1) for line in path.read_text(encoding="utf-8").splitlines() if "=" in line
    )


def admin_token_secret_arn() -> str:
    return function_env("auth-login").get("ADMIN_TOKEN_SECRET_ARN", "")


def _token_secret() -> str:
    """The admin token secret, read from the local Secrets Manager as the admin functions read
    it (never from an environment variable or a file)."""
    arn = admin_token_secret_arn()
    if not arn or not os.environ.get("AWS_ENDPOINT_URL"):
        return ""
    sm = boto3.client("secretsmanager", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    return sm.get_secret_value(SecretId=arn)["SecretString"]


TOKEN_SECRET = _token_secret()
needs_token_secret = pytest.mark.skipif(
    not TOKEN_SECRET, reason="no local Secrets Manager secret (run through infra/test.sh)"
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt(
    claims: dict,
    secret: bytes | None = None,
    header: dict | None = None,
    digest=hashlib.sha256,
    signature: str | None = None,
) -> str:
    """A compact JWS; signed with HMAC(`digest`) over `secret` unless `signature` is given."""
    head = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    h = b64url(json.dumps(head, separators=(",", ":")).encode())
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


# --- fault injection (infra/FAULTS.md) --------------------------------------------------------

FAULT_ACTIONS = ("error", "crash", "hang")


@dataclass(frozen=True)
class Fired:
    """One line of $PULSARA_FAULT_DIR/fired.log: `<point> <action> <function> <pid>`."""

    point: str
    action: str
    function: str
    pid: int


class Faults:
    """Arms the functions' fault points: one file per armed fault in
    $PULSARA_FAULT_DIR/[<function>:]<point>/, holding `ACTION [match=SUBSTRING]`."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._staging = self.dir / ".staging"
        self._staging.mkdir(exist_ok=True)
        self._seq = 0
        self._mark = self._log_size()

    @property
    def log_path(self) -> Path:
        return self.dir / "fired.log"

    def arm(self, point: str, action: str, match: str | None = None, always: bool = False,
            function: str | None = None) -> Path:
        """Arm `point` (e.g. "email.ses.after") with "error", "crash" or "hang SECONDS".
        match: fire only when one of the point's ids contains it; always: fire every
        time (else once); function: only in that binary ("complete-call").
        Returns the armed file (for disarm)."""
        if not point or "/" in point or point.startswith(".") or point == "fired.log":
            raise ValueError(f"bad fault point name {point!r}")
        words = action.split()
        if not words or words[0] not in FAULT_ACTIONS:
            raise ValueError(
                f"fault action is one of {FAULT_ACTIONS} (hang takes SECONDS): {action!r}"
            )
        if words[0] == "hang" and (len(words) != 2 or not words[1].isdigit()):
            raise ValueError("hang takes whole SECONDS: 'hang 20'")
        if match is not None and (not match or "\n" in match):
            raise ValueError("match is a non-empty single-line substring")
        name = f"{function}:{point}" if function else point
        point_dir = self.dir / name
        point_dir.mkdir(exist_ok=True)
        self._seq += 1
        file_name = f"{'always-' if always else ''}{self._seq:06d}-{uuid.uuid4().hex[:8]}"
        line = action + (f" match={match}" if match else "") + "\n"
        tmp = self._staging / file_name
        tmp.write_text(line, encoding="utf-8")
        target = point_dir / file_name
        os.replace(tmp, target)  # atomic: a function never reads half a file
        return target

    def armed(self) -> list[Path]:
        """Armed files not fired (one-shot) yet."""
        return sorted(p for d in self.dir.iterdir() if d.is_dir() and d.name != ".staging"
                      for p in d.iterdir() if p.is_file())

    def disarm(self, what: str | os.PathLike | None = None) -> None:
        """Remove one armed file (from arm()), every file of a point name, or everything."""
        if what is None:
            targets = self.armed()
        elif isinstance(what, Path) or os.sep in str(what):
            targets = [Path(what)]
        else:
            targets = [p for p in self.armed()
                       if p.parent.name == str(what) or p.parent.name.endswith(":" + str(what))]
        for p in targets:
            try:
                p.unlink()
            except FileNotFoundError:
                pass  # fired meanwhile

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def fired(self, point: str | None = None, since: int | None = None) -> list[Fired]:
        """What fired since the last clear() (or since `since`, a mark()), optionally of one
        point."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._mark if since is None else since)
                data = fh.read()
        except FileNotFoundError:
            return []
        out = []
        for raw in data.split(b"\n")[:-1]:  # a last line without newline is still being written
            words = raw.decode("utf-8", "replace").split()
            if len(words) < 4:
                continue
            try:
                pid = int(words[-1])
            except ValueError:
                continue
            fired = Fired(words[0], " ".join(words[1:-2]), words[-2], pid)
            if point is None or fired.point == point:
                out.append(fired)
        return out

    def wait_fired(self, point: str, count: int = 1, timeout: float = 30.0) -> list[Fired]:
        """Wait until `point` fired `count` times (since the last clear); returns the firings."""
        return (
            wait_for(lambda: len(self.fired(point)) >= count and self.fired(point), timeout, 0.2)
            or []
        )

    def mark(self) -> int:
        """A position in fired.log, for fired(since=...)."""
        return self._log_size()

    def clear(self) -> None:
        """Disarm everything; fired() forgets what fired so far."""
        self.disarm()
        for d in self.dir.iterdir():
            if d.is_dir() and d.name != ".staging":
                try:
                    d.rmdir()
                except OSError:
                    pass  # a racing arm() or a function's read
        self._mark = self._log_size()


class Proxy:
    """Client of the AWS fault proxy's control API (infra/fault_proxy.py)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.http = requests.Session()
        self._mark = self.seq()

    def _call(self, method: str, path: str, **kw):
        r = self.http.request(method, f"{self.url}/__faults__{path}", timeout=30, **kw)
        if r.status_code >= 400:
            raise AssertionError(f"fault proxy {method} {path}: {r.status_code} {r.text}")
        return r.json()

    def rule(self, service: str, operation: str = "*", action: str = "throttle", times: int = 1,
             match: str | None = None, latency_ms: int | None = None, **extra) -> dict:
        """Add a rule (see the proxy's docstring): service dynamodb|sqs|ses|*, operation or "*",
        action latency|throttle|error|lose_response|conflict|stale_read|pass, times (-1 always),
        match: a substring of the request body (or a list: all of them); extra: skip, status,
        code, mode. Returns the rule (with its "id" and "applied" count at creation)."""
        spec = {
            "service": service,
            "operation": operation,
            "action": action,
            "times": times,
            **extra,
        }
        if match is not None:
            spec["match"] = match
        if latency_ms is not None:
            spec["latency_ms"] = latency_ms
        return self._call("POST", "/rules", json=spec)

    def rules(self) -> list[dict]:
        return self._call("GET", "/rules")["rules"]

    def remove(self, rule: dict | str) -> None:
        rule_id = rule["id"] if isinstance(rule, dict) else rule
        self.http.delete(f"{self.url}/__faults__/rules/{rule_id}", timeout=30)

    def applied(self, rule: dict | str) -> int:
        """How many requests a rule has hit so far (fault log entries, since the last reset)."""
        rule_id = rule["id"] if isinstance(rule, dict) else rule
        return sum(1 for f in self._call("GET", "/log")["faults"] if f.get("rule") == rule_id)

    def seq(self) -> int:
        return self._call("GET", "/")["seq"]

    def mark(self) -> int:
        """The proxy's current position, for log(since=...) / requests(since=...)."""
        return self.seq()

    def clear(self) -> None:
        """Remove every rule; log() and requests() forget what came before."""
        self._call("DELETE", "/rules")
        self._mark = self.seq()

    def log(self, since: int | None = None, action: str | None = None) -> list[dict]:
        """Faults applied (and requests a DynamoDB limit refused: action "limit") since the
        last clear() or `since`."""
        params = {"since": self._mark if since is None else since}
        faults = self._call("GET", "/log", params=params)["faults"]
        return [f for f in faults if action is None or f["action"] == action]

    def requests(self, service: str | None = None, op: str | None = None,
                 since: int | None = None) -> list[dict]:
        """Requests the functions made since the last clear() (or `since`): dicts with
        service, operation, status, code, table/queue, fault, replayed (no bodies)."""
        params = {"since": self._mark if since is None else since}
        if service:
            params["service"] = service
        if op:
            params["operation"] = op
        return self._call("GET", "/requests", params=params)["requests"]

    def count(self, service: str, op: str, since: int | None = None) -> int:
        return len(self.requests(service, op, since))

    def client(self, service: str, retries: int = 1, **kw):
        """A boto3 client that goes through the proxy (by default without retries)."""
        from botocore.config import Config

        config = Config(retries={"mode": "standard", "total_max_attempts": retries},
                        connect_timeout=5, read_timeout=30)
        return boto3.client(service, endpoint_url=self.url, config=config, **kw)
