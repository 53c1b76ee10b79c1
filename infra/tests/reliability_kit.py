"""Tools of the reliability tests (`test_reliability.py`, `test_failures.py`) on top of
helpers.py (the receiver, bodies, polling, webhook registration are there): thread-local
HTTP clients that never raise, a cached view of the e-mails moto's SES accepted, drains
of the dead-letter and stream-failure queues (so concurrent rows never hide each other's
messages), direct reads of moto (bypassing the fault proxy), and a thread-safe client of
the fault proxy's control API.

Not a test module: nothing here is collected by pytest."""
from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import boto3
import helpers
import requests
from helpers import API, Api, sent_messages, wait_for

# Scaled timings of the test stack (infra/test.sh): function timeouts x0.2, queue
# visibility x0.2, claim lease between them.
TIME_SCALE = float(os.environ.get("EVENT_SOURCE_TIME_SCALE", "0.2"))
LEASE = float(os.environ.get("CLAIM_LEASE_SECONDS", "8"))
VISIBILITY = 60 * TIME_SCALE          # WebhookQueue / EmailQueue VisibilityTimeout: 60
DISPATCHER_TIMEOUT = 30 * TIME_SCALE  # WebhookDispatcherFunction / EmailSenderFunction Timeout: 30
FANOUT_TIMEOUT = 60 * TIME_SCALE      # RestaurantEventsFunction Timeout: 60
# Long enough for anything still in flight for a finished piece of work to show
# itself: a redelivered job comes back within one visibility timeout.
SETTLE = VISIBILITY + 2
TERMINAL_EMAIL = {"sent", "failed", "bounced", "not_configured"}
TERMINAL_DELIVERY = {"succeeded", "failed"}
PREFIX = "pulsara-"


# --- thread-local HTTP clients ------------------------------------------------------------

_local = threading.local()


def api() -> Api:
    """One `Api` (requests.Session) per thread: sessions are not thread-safe."""
    if not hasattr(_local, "api"):
        _local.api = Api(API)
    return _local.api


@dataclass
class Resp:
    """An API answer; status 0 when none came (the function died, the connection reset)."""

    status: int
    body: dict | None
    text: str

    @property
    def data(self) -> dict:
        return (self.body or {}).get("data") or {}

    @property
    def failed_5xx(self) -> bool:
        return self.status == 0 or self.status >= 500

    def __str__(self) -> str:
        return f"{self.status or 'no answer'} {self.text[:300]}"


def http(
    method: str, path: str, token: str | None = None, json_body=None, timeout: float = 30.0
) -> Resp:
    """One API request that never raises: a dead function is a `Resp` with status 0."""
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    kw = {"json": json_body} if json_body is not None else {}
    try:
        r = _local.session.request(
            method, API.rstrip("/") + path, headers=headers, timeout=timeout, **kw
        )
    except requests.RequestException as exc:
        _local.session = requests.Session()  # the broken connection is not reused
        return Resp(0, None, f"{exc.__class__.__name__}: {exc}")
    try:
        body = r.json()
    except ValueError:
        body = None
    return Resp(r.status_code, body if isinstance(body, dict) else None, r.text)


def lambda_api() -> str:
    """cargo lambda watch's own address (PULSARA_API without /api)."""
    return API.rsplit("/api", 1)[0]


# --- moto, read directly (not through the fault proxy) ------------------------------------

_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def client(service: str):
    with _clients_lock:
        if service not in _clients:
            _clients[service] = boto3.client(service)
        return _clients[service]


def table(env: str) -> str:
    return os.environ[env]


def get_item(table_env: str, key: str, value: str) -> dict | None:
    from boto3.dynamodb.types import TypeDeserializer

    item = (
        client("dynamodb")
        .get_item(TableName=table(table_env), Key={key: {"S": value}}, ConsistentRead=True)
        .get("Item")
    )
    if item is None:
        return None
    d = TypeDeserializer()
    return {k: d.deserialize(v) for k, v in item.items()}


def scan(table_env: str, **filters) -> list[dict]:
    """Every item of a table whose top-level string attributes equal `filters`."""
    from boto3.dynamodb.types import TypeDeserializer

    d = TypeDeserializer()
    out, start = [], None
    while True:
        kw = {"TableName": table(table_env), "ConsistentRead": True}
        if start:
            kw["ExclusiveStartKey"] = start
        page = client("dynamodb").scan(**kw)
        for raw in page["Items"]:
            item = {k: d.deserialize(v) for k, v in raw.items()}
            if all(item.get(k) == v for k, v in filters.items()):
                out.append(item)
        start = page.get("LastEvaluatedKey")
        if not start:
            return out


def queue_url(name: str) -> str:
    return client("sqs").get_queue_url(QueueName=PREFIX + name)["QueueUrl"]


def send_job(queue_name: str, body: str) -> None:
    client("sqs").send_message(QueueUrl=queue_url(queue_name), MessageBody=body)


# --- SES: the e-mails moto accepted ------------------------------------------------------


class Ses:
    """moto's sent SES messages (`/moto-api/data.json`), fetched at most every
    `every` seconds however many threads ask."""

    def __init__(self, every: float = 0.5):
        self.every = every
        self._lock = threading.Lock()
        self._at = 0.0
        self._messages: list[dict] = []

    def messages(self, fresh: bool = False) -> list[dict]:
        with self._lock:
            if fresh or time.monotonic() - self._at >= self.every:
                self._messages = sent_messages()
                self._at = time.monotonic()
            return self._messages

    def for_call(self, call_id: str, fresh: bool = False) -> list[dict]:
        return [m for m in self.messages(fresh) if call_id in m.get("body", "")]


SES = Ses()


# --- queues drained in the background ----------------------------------------------------


class Drain:
    """Receives and deletes every message of a queue in a background thread and
    keeps the bodies, so concurrent tests can each look for their own without
    hiding the others' (a receive makes a message invisible to everyone else)."""

    def __init__(self, queue_name: str):
        self.name = queue_name
        self.bodies: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> Drain:
        try:
            self.url = queue_url(self.name)
        except Exception as exc:  # noqa: BLE001 - reported by whoever looks for a message
            self.error = f"queue {PREFIX}{self.name} does not exist ({exc.__class__.__name__})"
            return self
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        sqs = boto3.client("sqs")
        while not self._stop.is_set():
            try:
                got = sqs.receive_message(
                    QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                )
            except Exception:  # noqa: BLE001 - moto busy; try again
                time.sleep(0.5)
                continue
            msgs = got.get("Messages") or []
            if not msgs:
                continue
            with self._lock:
                self.bodies.extend((time.monotonic(), m["Body"]) for m in msgs)
            sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])

    def find(self, needle: str) -> list[str]:
        with self._lock:
            return [b for _, b in self.bodies if needle in b]

    def since(self, t: float) -> list[str]:
        with self._lock:
            return [b for at, b in self.bodies if at >= t]

    def wait(self, needle: str, timeout: float = 30.0) -> list[str]:
        assert self.error is None, self.error
        return wait_for(lambda: self.find(needle), timeout, 0.25)

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


# --- the product, through its API --------------------------------------------------------


def create_restaurant(admin: str, **overrides) -> dict:
    """helpers.create_restaurant with this thread's client."""
    return helpers.create_restaurant(api(), admin, **overrides)


def create_key(admin: str, restaurant_ids: list[str] | None = None) -> dict:
    """helpers.create_key with this thread's client."""
    body = {"name": "Reliability " + uuid.uuid4().hex[:6]}
    if restaurant_ids is not None:
        body["restaurantIds"] = restaurant_ids
    return helpers.create_key(api(), admin, **body)


def call_view(admin: str, call_id: str) -> dict:
    r = api().get(f"/ivr/calls/{call_id}", admin)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def email_of(call_id: str) -> dict:
    """The stored e-mail state, read from moto directly."""
    item = get_item("CALLS_TABLE", "callId", call_id) or {}
    return item.get("email") or {}


def wait_email_terminal(call_id: str, timeout: float = 90.0) -> dict:
    state = wait_for(
        lambda: (e := email_of(call_id)).get("status") in TERMINAL_EMAIL and e, timeout, 0.25
    )
    assert state, f"e-mail of {call_id} not terminal after {timeout:.0f} s: {email_of(call_id)}"
    return state


def delivery_of(delivery_id: str) -> dict | None:
    return get_item("WEBHOOK_DELIVERIES_TABLE", "deliveryId", delivery_id)


def deliveries_of(webhook_id: str) -> list[dict]:
    return scan("WEBHOOK_DELIVERIES_TABLE", webhookId=webhook_id)


def wait_deliveries_terminal(webhook_id: str, count: int = 1, timeout: float = 90.0) -> list[dict]:
    def done():
        ds = deliveries_of(webhook_id)
        return (
            ds if len(ds) >= count and all(d["status"] in TERMINAL_DELIVERY for d in ds) else None
        )

    ds = wait_for(done, timeout, 0.5)
    assert ds, f"deliveries of {webhook_id} not all terminal after {timeout:.0f} s: " + json.dumps(
        [
            {k: d.get(k) for k in ("deliveryId", "status", "attempts", "claims", "claimedAt")}
            for d in deliveries_of(webhook_id)
        ],
        default=str,
    )
    return ds


# --- DynamoDB streams, read from moto ----------------------------------------------------


def stream_records(table_env: str) -> list[dict]:
    """Every record on a table's stream (all shards, from the trim horizon)."""
    ddb, streams = client("dynamodb"), client("dynamodbstreams")
    arn = ddb.describe_table(TableName=table(table_env))["Table"]["LatestStreamArn"]
    out = []
    shards, start = [], None
    while True:
        kw = {"StreamArn": arn}
        if start:
            kw["ExclusiveStartShardId"] = start
        desc = streams.describe_stream(**kw)["StreamDescription"]
        shards += desc.get("Shards") or []
        start = desc.get("LastEvaluatedShardId")
        if not start:
            break
    for sh in shards:
        it = streams.get_shard_iterator(
            StreamArn=arn, ShardId=sh["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while it:
            got = streams.get_records(ShardIterator=it, Limit=1000)
            recs = got.get("Records") or []
            out += [dict(r, _shard=sh["ShardId"], _arn=arn) for r in recs]
            if not recs:
                break
            it = got.get("NextShardIterator")
    return out


def invoke(function: str, event: dict) -> tuple[int, dict | None, str | None]:
    """Invokes a function through cargo lambda watch, as an event source mapping does."""
    req = urllib.request.Request(
        f"{lambda_api()}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(event).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=120) as resp:
        body = resp.read()
        return (
            resp.status,
            (json.loads(body) if body else None),
            resp.headers.get("x-amz-function-error"),
        )


# --- the fault proxy's control API, thread-safe (one connection per call) for concurrent rows --


class ProxyCtl:
    """The fault proxy's control API (`/__faults__/`, see infra/fault_proxy.py)."""

    def __init__(self, url: str):
        self.url = url.rstrip("/") + "/__faults__"

    def _call(self, method: str, path: str, doc=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(doc).encode() if doc is not None else None,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and method == "DELETE":
                return {"removed": 0}
            raise AssertionError(
                f"fault proxy {method} {path}: {exc.code} {exc.read()[:300]!r}"
            ) from exc

    def rule(self, service: str, operation: str = "*", action: str = "error", **spec) -> dict:
        return self._call(
            "POST", "/rules", {"service": service, "operation": operation, "action": action, **spec}
        )

    def remove(self, rule: dict | str) -> None:
        self._call("DELETE", "/rules/" + (rule["id"] if isinstance(rule, dict) else rule))

    def applied(self, rule: dict | str) -> int:
        """How many requests the rule has been applied to so far."""
        rid = rule["id"] if isinstance(rule, dict) else rule
        return sum(1 for f in self._call("GET", "/log")["faults"] if f.get("rule") == rid)

    def faults(self, since: int = 0) -> list[dict]:
        return self._call("GET", f"/log?since={since}")["faults"]

    def seq(self) -> int:
        return self._call("GET", "/")["seq"]

    def requests(
        self, service: str | None = None, operation: str | None = None, since: int = 0
    ) -> list[dict]:
        q = "&".join(
            f"{k}={v}"
            for k, v in (("service", service), ("operation", operation), ("since", since))
            if v
        )
        return self._call("GET", "/requests?" + q)["requests"]
