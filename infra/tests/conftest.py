"""Fixtures for the end-to-end tests: they talk HTTP to `cargo lambda watch`
(PULSARA_API) and read the local DynamoDB (moto, AWS_ENDPOINT_URL) to check
what was, or wasn't, stored. `infra/test.sh` sets everything up.

Fault injection (infra/FAULTS.md), for the tests that ask for it:
  faults   fault points in the functions: faults.arm("email.ses.after", "crash", match=call_id),
           faults.fired("email.ses.after"), faults.wait_fired(...), faults.disarm(...)
  proxy    the AWS fault proxy between the functions and moto:
           proxy.rule("dynamodb", "PutItem", "throttle", match=call_id), proxy.log(),
           proxy.requests("dynamodb", "PutItem"), proxy.client("dynamodb")
Both are session objects; after each test that used one, its rules and armed
files are cleared (pytest_runtest_teardown below), so a fault never outlives its test.
"""
from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
API = os.environ.get("PULSARA_API", "")
FAULT_PROXY_URL = os.environ.get("FAULT_PROXY_URL", "")
FAULT_DIR = os.environ.get("PULSARA_FAULT_DIR", "")


def pytest_collection_modifyitems(config, items):
    if not API:
        skip = pytest.mark.skip(reason="PULSARA_API not set (run through infra/test.sh)")
        for item in items:
            if "e2e" in item.keywords:
                item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: needs the local stack (infra/test.sh)")


class Api:
    """Thin HTTP client: every call returns the `requests.Response`."""

    def __init__(self, base: str):
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


@pytest.fixture(scope="session")
def api() -> Api:
    return Api(API)


@pytest.fixture(scope="session")
def dynamodb():
    return boto3.client("dynamodb")


def admin_cli(*args: str, env: dict[str, str]) -> str:
    binary = REPO / "target" / "debug" / "pulsara-admin"
    out = subprocess.run(
        [str(binary), *args], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return out.stdout


@pytest.fixture(scope="session")
def admin_credentials() -> tuple[str, str]:
    email = f"admin-{uuid.uuid4().hex[:8]}@pulsara.test"
    password = "correct-horse-" + secrets.token_hex(8)
    admin_cli("create-admin", "--email", email, env={"PULSARA_ADMIN_PASSWORD": password})
    return email, password


@pytest.fixture(scope="session")
def admin_token(api, admin_credentials) -> str:
    email, password = admin_credentials
    r = api.post("/ivr/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["data"]["accessToken"]


_phone_counter = iter(range(1000, 9999))


def unique_phone() -> str:
    """A fresh fictional North-American 555 number, in national format."""
    n = next(_phone_counter)
    prefix = uuid.uuid4().int % 800 + 200
    return f"(555) {prefix:03d}-{n:04d}"


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


@pytest.fixture
def make_restaurant(api, admin_token):
    def make(**overrides) -> dict:
        r = api.post("/ivr/restaurants", admin_token, json=restaurant_body(**overrides))
        assert r.status_code == 201, r.text
        return r.json()["data"]

    return make


@pytest.fixture
def make_key(api, admin_token):
    def make(**body) -> dict:
        body.setdefault("name", "Test IVR " + uuid.uuid4().hex[:6])
        r = api.post("/ivr/auth/api-key", admin_token, json=body)
        assert r.status_code == 201, r.text
        return r.json()["data"]

    return make


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


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.5):
    """Call `predicate` until it returns something truthy (returned), or until `timeout`
    seconds have passed: then its last (falsy) value is returned, for an `assert`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# Fault injection (infra/FAULTS.md)
# --------------------------------------------------------------------------------------------

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
            raise ValueError(f"fault action is one of {FAULT_ACTIONS} (hang takes SECONDS): {action!r}")
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
        """What fired since the last clear() (or since `since`, a mark()), optionally of one point."""
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
        return wait_for(lambda: len(self.fired(point)) >= count and self.fired(point), timeout, 0.2) or []

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
        spec = {"service": service, "operation": operation, "action": action, "times": times, **extra}
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
        faults = self._call("GET", "/log", params={"since": self._mark if since is None else since})["faults"]
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


@pytest.fixture(scope="session")
def faults() -> Faults:
    if not FAULT_DIR:
        pytest.skip("PULSARA_FAULT_DIR not set (run through infra/test.sh)")
    return Faults(FAULT_DIR)


@pytest.fixture(scope="session")
def proxy() -> Proxy:
    if not FAULT_PROXY_URL:
        pytest.skip("FAULT_PROXY_URL not set (run through infra/test.sh)")
    return Proxy(FAULT_PROXY_URL)


def pytest_runtest_teardown(item, nextitem):
    """After a test that used `faults` or `proxy`: disarm what it left armed."""
    for name in ("faults", "proxy"):
        used = getattr(item, "funcargs", {}).get(name)
        if isinstance(used, (Faults, Proxy)):
            used.clear()
