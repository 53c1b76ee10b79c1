#!/usr/bin/env python3
"""AWS fault proxy: a reverse proxy between the functions and moto that puts
back the faults and limits moto leaves out (see infra/FAULTS.md, section 2).

    fault_proxy.py --upstream http://127.0.0.1:MOTO_PORT [--host 127.0.0.1] [--port 0] [--verbose]

The functions' AWS_ENDPOINT_URL points here; the tests, local_stack.py and
event_sources.py talk to moto directly. Every request is forwarded to moto
(over kept-alive connections) unless a rule or a limit answers it first.

Requests are identified as SERVICE + OPERATION:
  dynamodb / dynamodbstreams / sqs   X-Amz-Target (DynamoDB_20120810.PutItem, AmazonSQS.SendMessage)
  sqs, ses (v1) query protocol       Action=... in the form body or query string
  ses (SES v2, REST)                 method + path (POST /v2/email/outbound-emails = SendEmail)
  anything else                      the service of the SigV4 credential scope,
                                     operation "METHOD /path"

Always on, no rule needed (answers 400 ValidationException as DynamoDB does):
  - partition key values over 2048 bytes, sort key values over 1024 bytes (table
    and index key schemas learned from moto with DescribeTable): GetItem, PutItem,
    UpdateItem, DeleteItem, BatchGetItem, BatchWriteItem, TransactGetItems,
    TransactWriteItems, Query (equality on the partition key);
  - items over 400 KB: PutItem, BatchWriteItem puts, TransactWriteItems puts;
    UpdateItem / TransactWriteItems updates approximately: the stored item
    (read from moto) without the attributes the update replaces or removes, plus
    the sizes of ExpressionAttributeValues (only checked when those add up to
    1 KB or more, or the item was last seen near the limit);
  - DynamoDB transactions serialized against every other DynamoDB write (moto applies a
    transaction without a lock and undoes a cancelled one by restoring table copies);
  - TransactWriteItems ClientRequestToken idempotency: the same token within 10
    minutes gets the first successful answer again without re-applying it
    (different parameters: IdempotentParameterMismatchException; the first still
    running: TransactionInProgressException).

Control API (JSON over HTTP, on the same port):
  GET    /__faults__/                  {"ok": true, "upstream": ..., "seq": N, "rules": n}
  POST   /__faults__/rules             add a rule (body below) -> 201 the rule with its "id"
  GET    /__faults__/rules             {"rules": [...]}
  DELETE /__faults__/rules             remove every rule -> {"removed": n}
  DELETE /__faults__/rules/ID          remove one rule (404 if unknown)
  GET    /__faults__/log?since=SEQ     {"seq": N, "faults": [...]}  faults applied and requests a
                                       limit refused: {seq, time, rule, service, operation,
                                       action, table, detail}
  GET    /__faults__/requests?service=S&operation=O&since=SEQ
                                       {"seq": N, "count": n, "requests": [...], "counts": {...}}
                                       requests: {seq, time, service, operation, status, code,
                                       caller, table (or tables), queue, ms, fault (an action, or
                                       "limit"), replayed} (the last 20000);
                                       counts: {service: {operation: n}} since the last reset
  GET    /__faults__/calls             {"calls": [{caller, action, resource, count}, ...]}: every
                                       AWS call by caller (the SDK's `app/<name>` user-agent
                                       part, the function's name; "" without one) as the IAM
                                       action and resource it needs (resource "*" where the
                                       proxy cannot tell); kept across resets (infra/iam_check.py)
  POST   /__faults__/reset             remove the rules, empty the logs and counters
  GET    /__faults__/config            {"limits": true, "idempotency": true, "verbose": false}
  PUT    /__faults__/config            change any of those
  DELETE /__faults__/cache             forget the learned key schemas and item sizes

"seq" numbers every request and fault in order, so a test can take the current
"seq" and later ask only for what came after it.

A rule:
  {"service": "dynamodb",        dynamodb | dynamodbstreams | sqs | ses (sesv2 is an alias) | kms |
                                 secretsmanager | *
   "operation": "PutItem",       operation name, or "*" (default)
   "action": "throttle",         see below
   "times": 1,                   how many requests it applies to (default 1; -1 = always)
   "skip": 0,                    let this many matching requests through first
   "match": "call_123",          only requests whose body (or path) contains this substring
                                 (a list: every one of them)
   "latency_ms": 500,            sleep first (required for "latency"; allowed with any action)
   "status": 500,                "error": 500 (default) or 503; or any other status with "code"
   "code": "...",                "error": the error code to answer instead of the default
   "mode": "error"}              "lose_response": "error" (answer 500, default) or "drop"
                                 (reset the connection without an answer)
The first rule (in order added) that matches a request applies; a used-up rule is removed.

Actions:
  latency        sleep latency_ms, then forward
  throttle       answer the service's throttling error, not forwarded (DynamoDB 400
                 ProvisionedThroughputExceededException, SQS 400 ThrottlingException,
                 SES 429 TooManyRequestsException); the SDKs retry these
  error          answer 500 InternalServerError / 503 ServiceUnavailable in the service's
                 error shape, not forwarded (the SDKs retry 5xx: use times > the SDK's
                 attempts, or -1, to make the call fail)
  lose_response  forward, let moto apply it, then answer 500 (or drop the connection):
                 the caller cannot know it succeeded (and the SDK retries it)
  conflict       DynamoDB TransactWriteItems: 400 TransactionCanceledException with one
                 CancellationReason (TransactionConflict) per item; PutItem / UpdateItem /
                 DeleteItem: 400 TransactionConflictException; not forwarded
  stale_read     DynamoDB GetItem / Query / Scan without "ConsistentRead": true (an index
                 query never is): answered as if the matching items were not written yet,
                 as an eventually consistent read right after a write may be (GetItem: no
                 Item; Query / Scan: no Items); not forwarded. Strongly consistent reads
                 pass untouched and don't use the rule up
  pass           forward unchanged; only recorded in the fault log (to count requests
                 whose body contains "match")

Nothing here logs a request or response body; the log lines name the service,
operation, table or queue and status only.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import http.client
import http.server
import json
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
import zlib
from email.utils import formatdate

MAX_ITEM_BYTES = 400 * 1024
MAX_HASH_KEY_BYTES = 2048
MAX_RANGE_KEY_BYTES = 1024
TOKEN_TTL_SECONDS = 600
UPDATE_CHECK_MIN_BYTES = 1024      # ExpressionAttributeValues below this skip the size check …
NEAR_LIMIT_BYTES = 300 * 1024      # … unless the item was last seen at least this big
REQUEST_LOG_SIZE = 20000
FAULT_LOG_SIZE = 20000

ACTIONS = ("latency", "throttle", "error", "lose_response", "conflict", "stale_read", "pass")
SERVICE_ALIASES = {"sesv2": "ses", "email": "ses", "streams.dynamodb": "dynamodbstreams"}
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "trailers", "transfer-encoding", "upgrade", "content-length", "proxy-connection",
}

_TARGET_SERVICES = {
    "DynamoDB_20120810": "dynamodb",
    "DynamoDBStreams_20120810": "dynamodbstreams",
    "AmazonSQS": "sqs",
}
_APP_RE = re.compile(r"(?:^|\s)app/([A-Za-z0-9!#$%&'*+\-.^_`|~]+)")
# IAM authorises a transaction's parts, and an SQS batch, as the single-item actions.
_TRANSACT_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                     "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
_SQS_BATCH = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
              "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}
_SCOPE_RE = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")
# SES v2 (REST): (method, path pattern) -> operation
_SES_V2 = [
    ("POST", r"/v2/email/outbound-emails", "SendEmail"),
    ("POST", r"/v2/email/outbound-bulk-emails", "SendBulkEmail"),
    ("POST", r"/v2/email/identities", "CreateEmailIdentity"),
    ("GET", r"/v2/email/identities", "ListEmailIdentities"),
    ("GET", r"/v2/email/identities/[^/]+", "GetEmailIdentity"),
    ("DELETE", r"/v2/email/identities/[^/]+", "DeleteEmailIdentity"),
    ("GET", r"/v2/email/account", "GetAccount"),
    ("POST", r"/v2/email/templates", "CreateEmailTemplate"),
    ("GET", r"/v2/email/templates/[^/]+", "GetEmailTemplate"),
    ("POST", r"/v2/email/configuration-sets", "CreateConfigurationSet"),
    ("GET", r"/v2/email/configuration-sets/[^/]+", "GetConfigurationSet"),
    ("POST", r"/v2/email/contact-lists", "CreateContactList"),
    ("PUT", r"/v2/email/suppression/addresses", "PutSuppressedDestination"),
    ("GET", r"/v2/email/suppression/addresses/[^/]+", "GetSuppressedDestination"),
]
_SES_V2 = [(m, re.compile(p + r"/?$"), op) for m, p, op in _SES_V2]


def log(msg: str) -> None:
    print(f"[fault_proxy] {msg}", flush=True)


# --------------------------------------------------------------------------------------------
# Requests: what they are
# --------------------------------------------------------------------------------------------


class Request:
    """One client request, parsed as far as the proxy needs (the body stays bytes)."""

    def __init__(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes):
        self.method = method
        self.target = target  # path + query as sent
        self.headers = headers
        self.body = body
        self.header = {k.lower(): v for k, v in headers}
        parsed = urllib.parse.urlsplit(target)
        self.path = parsed.path
        self.query = parsed.query
        scope = _SCOPE_RE.search(self.header.get("authorization", ""))
        self.access_key = scope.group(1) if scope else ""
        self.region = scope.group(3) if scope else ""
        self.scope_service = scope.group(4) if scope else ""
        self.protocol = "json"
        self.service, self.operation = self._identify()
        agent = f"{self.header.get('x-amz-user-agent', '')} {self.header.get('user-agent', '')}"
        caller = _APP_RE.search(agent)
        self.caller = caller.group(1) if caller else ""
        self._json: object = _UNPARSED
        self._resource: dict | None = None

    def _identify(self) -> tuple[str, str]:
        amz_target = self.header.get("x-amz-target", "")
        if amz_target and "." in amz_target:
            prefix, op = amz_target.rsplit(".", 1)
            service = _TARGET_SERVICES.get(prefix) or self.scope_service or prefix.lower()
            return SERVICE_ALIASES.get(service, service), op
        ctype = self.header.get("content-type", "")
        action = None
        if "x-www-form-urlencoded" in ctype and self.body:
            action = _form_value(self.body, "Action")
        if action is None and self.query:
            action = (urllib.parse.parse_qs(self.query).get("Action") or [None])[0]
        service = SERVICE_ALIASES.get(self.scope_service, self.scope_service)
        if action:
            self.protocol = "query"
            return service or "unknown", action
        if self.path.startswith("/v2/email/"):
            self.protocol = "rest-json"
            for method, pattern, op in _SES_V2:
                if method == self.method and pattern.match(self.path):
                    return "ses", op
            return "ses", f"{self.method} {self.path}"
        if service == "ses":
            self.protocol = "rest-json"
        return service or "unknown", f"{self.method} {self.path}"

    def json(self):
        """The body as JSON (None if it is not a JSON object)."""
        if self._json is _UNPARSED:
            try:
                value = json.loads(self.body) if self.body else None
            except ValueError:
                value = None
            self._json = value if isinstance(value, dict) else None
        return self._json

    def iam_needs(self) -> list[tuple[str, str]]:
        """The (IAM action, resource name) pairs AWS would authorise this request against:
        DynamoDB tables ("<table>" or "<table>/index/<index>", a transaction's parts as their
        own actions), SQS queue names (batch calls as their single action), the KMS key id
        or ARN, the secret id; "*" where the name is not in the request."""
        body = self.json() if self.protocol == "json" else None
        body = body or {}
        prefix = {"ses": "ses"}.get(self.service, self.service)
        if self.service == "dynamodb":
            op = self.operation
            if op in ("TransactWriteItems", "TransactGetItems"):
                parts = []
                for entry in body.get("TransactItems") or []:
                    for kind, spec in (entry.items() if isinstance(entry, dict) else []):
                        action = _TRANSACT_ACTIONS.get(kind, kind)
                        parts.append((f"dynamodb:{action}", str(spec.get("TableName", "*"))))
                return parts or [(f"dynamodb:{op}", "*")]
            if op in ("BatchGetItem", "BatchWriteItem"):
                return [(f"dynamodb:{op}", str(name))
                        for name in (body.get("RequestItems") or {"*": None})]
            table = str(body.get("TableName", "*"))
            if isinstance(body.get("IndexName"), str):
                table = f"{table}/index/{body['IndexName']}"
            return [(f"dynamodb:{op}", table)]
        if self.service == "sqs":
            url = body.get("QueueUrl")
            if url is None and self.protocol == "query":
                url = _form_value(self.body, "QueueUrl")
            queue = str(url).rstrip("/").rsplit("/", 1)[-1] if url else "*"
            op = _SQS_BATCH.get(self.operation, self.operation)
            return [(f"sqs:{op}", queue)]
        if self.service == "kms":
            return [(f"kms:{self.operation}", str(body.get("KeyId", "*")))]
        if self.service == "secretsmanager":
            return [(f"secretsmanager:{self.operation}", str(body.get("SecretId", "*")))]
        return [(f"{prefix}:{self.operation}", "*")]

    def resource(self) -> dict:
        """Non-secret names for the logs: the DynamoDB table(s), the SQS queue."""
        if self._resource is None:
            self._resource = self._names()
        return self._resource

    def _names(self) -> dict:
        body = self.json() if self.protocol == "json" else None
        out: dict = {}
        if not body:
            return out
        tables = set()
        if isinstance(body.get("TableName"), str):
            tables.add(body["TableName"])
        if isinstance(body.get("RequestItems"), dict):  # BatchGetItem, BatchWriteItem
            tables.update(body["RequestItems"])
        for entry in body.get("TransactItems") or []:
            for spec in (entry.values() if isinstance(entry, dict) else []):
                if isinstance(spec, dict) and isinstance(spec.get("TableName"), str):
                    tables.add(spec["TableName"])
        if len(tables) == 1:
            out["table"] = next(iter(tables))
        elif tables:
            out["tables"] = sorted(tables)
        if isinstance(body.get("QueueUrl"), str):
            out["queue"] = body["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
        return out


_UNPARSED = object()


def _form_value(body: bytes, name: str) -> str | None:
    try:
        values = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
    except ValueError:
        return None
    return (values.get(name) or [None])[0]


# --------------------------------------------------------------------------------------------
# Answers: the services' error shapes (as the AWS SDKs parse them)
# --------------------------------------------------------------------------------------------


class Response:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes, reason: str = ""):
        self.status = status
        self.headers = headers
        self.body = body
        self.reason = reason or http.client.responses.get(status, "")

    def error_code(self) -> str:
        """The AWS error code of an error answer (for the request log)."""
        if self.status < 400:
            return ""
        h = {k.lower(): v for k, v in self.headers}
        code = h.get("x-amzn-query-error", "").split(";")[0] or h.get("x-amzn-errortype", "")
        if not code and self.body[:1] == b"{":
            try:
                doc = json.loads(self.body)
                code = str(doc.get("__type") or doc.get("code") or "")
            except ValueError:
                code = ""
        elif not code and b"<Code>" in self.body:
            m = re.search(rb"<Code>([^<]+)</Code>", self.body)
            code = m.group(1).decode("utf-8", "replace") if m else ""
        return code.split(":")[0].rsplit("#", 1)[-1]


DROP = object()  # answer: reset the connection

_DDB_NS = "com.amazonaws.dynamodb.v20120810#"
_XMLNS = {"sqs": "http://queue.amazonaws.com/doc/2012-11-05/", "ses": "http://ses.amazonaws.com/doc/2010-12-01/"}


def aws_error(req: Request, status: int, code: str, message: str,
              extra: dict | None = None) -> Response:
    """An error answer shaped as `req`'s service answers it."""
    request_id = str(uuid.uuid4())
    date = formatdate(usegmt=True)
    fault = "Sender" if status < 500 else "Receiver"
    if req.protocol == "query":
        ns = _XMLNS.get(req.service, "https://aws.amazon.com/")
        body = (
            f'<?xml version="1.0"?><ErrorResponse xmlns="{ns}"><Error><Type>{fault}</Type>'
            f"<Code>{code}</Code><Message>{_xml_escape(message)}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id), ("Date", date)]
        return Response(status, headers, body)
    if req.service == "ses" or req.protocol == "rest-json":
        # restJson1: the code travels in X-Amzn-ErrorType, the body has the message.
        doc = {"message": message, **(extra or {})}
        body = json.dumps(doc).encode()
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", code),
            ("x-amzn-RequestId", request_id),
            ("Date", date),
        ]
        return Response(status, headers, body)
    if req.service == "dynamodb":
        namespace = "com.amazon.coral.validate#" if code == "ValidationException" else _DDB_NS
        doc = {"__type": namespace + code}
        doc.update(extra or {})
        doc.setdefault("Message" if code == "TransactionCanceledException" else "message", message)
        body = json.dumps(doc).encode()
        headers = [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("x-amzn-RequestId", request_id),
            ("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF)),
            ("Date", date),
        ]
        return Response(status, headers, body)
    # awsJson (SQS is query-compatible: the SDKs take the code from x-amzn-query-error)
    namespace = "com.amazon.coral.availability#" \
        if code in ("ThrottlingException", "ServiceUnavailable") else "com.amazon.coral.service#"
    doc = {"__type": namespace + code, "message": message, **(extra or {})}
    body = json.dumps(doc).encode()
    headers = [
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amzn-RequestId", request_id),
        ("Date", date),
    ]
    if req.service == "sqs":
        headers.append(("x-amzn-query-error", f"{code};{fault}"))
    return Response(status, headers, body)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def throttle_error(req: Request) -> Response:
    if req.service == "dynamodb":
        return aws_error(req, 400, "ProvisionedThroughputExceededException",
                         "The level of configured provisioned throughput for the table was "
                         "exceeded. Consider increasing your provisioning level with the "
                         "UpdateTable API.")
    if req.service == "ses":
        if req.protocol == "query":  # SES v1
            return aws_error(req, 400, "Throttling", "Maximum sending rate exceeded.")
        return aws_error(req, 429, "TooManyRequestsException",
                         "Too many requests have been made to the operation.")
    return aws_error(req, 400, "ThrottlingException", "Rate exceeded")


def server_error(req: Request, status: int = 500, code: str | None = None) -> Response:
    if code is None:
        if req.service == "dynamodb":
            code = "InternalServerError" if status == 500 else "ServiceUnavailable"
        else:
            code = "InternalFailure" if status == 500 else "ServiceUnavailable"
    messages = {500: "Internal server error", 503: "Service unavailable"}
    return aws_error(req, status, code, messages.get(status, "Injected fault"))


def validation_error(req: Request, message: str) -> Response:
    return aws_error(req, 400, "ValidationException", message)


# --------------------------------------------------------------------------------------------
# DynamoDB sizes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)
# --------------------------------------------------------------------------------------------


def number_size(text: str) -> int:
    """~1 byte per two significant digits, plus one."""
    digits = str(text).strip().lstrip("+-").lower().split("e", 1)[0].replace(".", "")
    digits = digits.strip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def binary_size(b64) -> int:
    """A binary value's bytes: base64 on the wire, bytes in boto3's items (infra/bench)."""
    if isinstance(b64, (bytes, bytearray, memoryview)):
        return len(b64)
    text = str(b64).strip()
    return max(0, len(text) * 3 // 4 - text[-2:].count("="))


def value_size(value) -> int:
    """Size of one DynamoDB-JSON attribute value ({"S": "..."}, {"M": {...}}, ...)."""
    if not isinstance(value, dict) or len(value) != 1:
        return len(json.dumps(value))  # not an attribute value; moto will refuse it
    (kind, x), = value.items()
    if kind == "S":
        return len(str(x).encode("utf-8"))
    if kind == "N":
        return number_size(x)
    if kind == "B":
        return binary_size(x)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(s).encode("utf-8")) for s in x or [])
    if kind == "NS":
        return sum(number_size(n) for n in x or [])
    if kind == "BS":
        return sum(binary_size(b) for b in x or [])
    if kind == "L":
        return 3 + sum(value_size(v) + 1 for v in x or [])
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in (x or {}).items())
    return len(json.dumps(x))


def item_size(item: dict) -> int:
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in (item or {}).items())


def key_value_size(value) -> int:
    if isinstance(value, dict) and len(value) == 1:
        (kind, x), = value.items()
        if kind == "S":
            return len(str(x).encode("utf-8"))
        if kind == "B":
            return binary_size(x)
        if kind == "N":
            return number_size(x)
    return 0


HASH_TOO_LONG = (
    "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size "
    "limit of"
    f"{MAX_HASH_KEY_BYTES} bytes"
)
RANGE_TOO_LONG = (
    "One or more parameter values were invalid: Aggregated size of all range keys has exceeded "
    "the size "
    f"limit of {MAX_RANGE_KEY_BYTES} bytes"
)
ITEM_TOO_LARGE = "Item size has exceeded the maximum allowed size"
UPDATE_TOO_LARGE = "Item size to update has exceeded the maximum allowed size"


class KeySchema:
    def __init__(self, hash_key: str, range_key: str | None,
                 indexes: dict[str, tuple[str, str | None]]):
        self.hash = hash_key
        self.range = range_key
        self.indexes = indexes

    @classmethod
    def from_description(cls, table: dict) -> KeySchema:
        def keys(schema):
            h = next((k["AttributeName"] for k in schema if k["KeyType"] == "HASH"), None)
            r = next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)
            return h, r

        h, r = keys(table.get("KeySchema") or [])
        indexes = {}
        for ix in ((table.get("GlobalSecondaryIndexes") or [])
                   + (table.get("LocalSecondaryIndexes") or [])):
            indexes[ix["IndexName"]] = keys(ix.get("KeySchema") or [])
        return cls(h, r, indexes)

    def key_of(self, item: dict) -> dict:
        return {k: item[k] for k in (self.hash, self.range) if k and k in item}


# --------------------------------------------------------------------------------------------
# Upstream (moto): kept-alive connections
# --------------------------------------------------------------------------------------------


class Upstream:
    def __init__(self, url: str, timeout: float = 120.0, pool: int = 32):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise SystemExit(f"--upstream must be an http:// URL, got {url!r}")
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.timeout = timeout
        self.pool = pool
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout), False

    def _give(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.pool:
                self._idle.append(conn)
                return
        conn.close()

    def send(self, method: str, target: str, headers: list[tuple[str, str]],
             body: bytes) -> Response:
        for attempt in range(2):
            conn, reused = self._take()
            try:
                conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
                for k, v in headers:
                    conn.putheader(k, v)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.CannotSendRequest, http.client.BadStatusLine):
                conn.close()
                if reused and attempt == 0:
                    continue  # the kept-alive connection had gone stale: once more on a new one
                raise
            except BaseException:
                conn.close()
                raise
            if resp.will_close:
                conn.close()
            else:
                self._give(conn)
            return Response(resp.status, resp.getheaders(), data, resp.reason)
        raise ConnectionError("unreachable")

    def dynamodb(self, req: Request, operation: str, payload: dict) -> tuple[int, dict]:
        """A DynamoDB call of the proxy's own, signed like `req` (moto only reads the scope)."""
        host = req.header.get("host", f"{self.host}:{self.port}")
        headers = [
            ("Host", host),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("X-Amz-Target", f"DynamoDB_20120810.{operation}"),
        ]
        for name in ("authorization", "x-amz-date", "x-amz-security-token"):
            if name in req.header:
                headers.append((name, req.header[name]))
        resp = self.send("POST", "/", headers, json.dumps(payload).encode())
        try:
            doc = json.loads(resp.body) if resp.body else {}
        except ValueError:
            doc = {}
        return resp.status, doc if isinstance(doc, dict) else {}


# --------------------------------------------------------------------------------------------
# The proxy's state: rules, logs, caches
# --------------------------------------------------------------------------------------------


class RuleError(ValueError):
    pass


def make_rule(spec: dict, rule_id: str) -> dict:
    if not isinstance(spec, dict):
        raise RuleError("a rule is a JSON object")
    unknown = set(spec) - {"service", "operation", "action", "times", "skip", "match", "latency_ms",
                           "status", "code", "mode"}
    if unknown:
        raise RuleError(f"unknown rule fields: {sorted(unknown)}")
    service = str(spec.get("service") or "").strip().lower()
    if not service:
        raise RuleError("service is required (dynamodb, sqs, ses, ... or *)")
    service = SERVICE_ALIASES.get(service, service)
    action = spec.get("action")
    if action not in ACTIONS:
        raise RuleError(f"action must be one of {', '.join(ACTIONS)}")
    try:
        times = int(spec.get("times", 1))
        skip = int(spec.get("skip", 0))
        latency = int(spec.get("latency_ms") or 0)
        default_status = 503 if spec.get("code") == "ServiceUnavailable" else 500
        status = int(spec.get("status") or default_status)
    except (TypeError, ValueError) as exc:
        raise RuleError("times, skip, latency_ms and status are integers") from exc
    if times == 0 or times < -1:
        raise RuleError("times is a positive count, or -1 for always")
    if skip < 0 or latency < 0:
        raise RuleError("skip and latency_ms are >= 0")
    if action == "latency" and latency <= 0:
        raise RuleError("latency needs latency_ms > 0")
    if latency > 600_000:
        raise RuleError("latency_ms is at most 600000")
    if not 400 <= status <= 599:
        raise RuleError("status is a 4xx or 5xx code")
    mode = spec.get("mode", "error")
    if mode not in ("error", "drop"):
        raise RuleError('mode is "error" or "drop"')
    match = spec.get("match")
    if isinstance(match, list):
        if not match or not all(isinstance(m, str) and m for m in match):
            raise RuleError("match is a non-empty string or a list of them")
    elif match is not None and (not isinstance(match, str) or not match):
        raise RuleError("match is a non-empty string or a list of them")
    operation = str(spec.get("operation") or "*")
    if action == "conflict" and (service not in ("dynamodb", "*")
                                 or operation not in ("*",) + _CONFLICT_OPS):
        raise RuleError(
            "conflict applies to DynamoDB TransactWriteItems, PutItem, UpdateItem, DeleteItem")
    if action == "stale_read" and (service not in ("dynamodb", "*")
                                   or operation not in ("*",) + _STALE_OPS):
        raise RuleError("stale_read applies to DynamoDB GetItem, Query, Scan")
    return {
        "id": rule_id,
        "service": service,
        "operation": operation,
        "action": action,
        "times": times,
        "remaining": times,
        "skip": skip,
        "match": match,
        "latency_ms": latency,
        "status": status,
        "code": spec.get("code"),
        "mode": mode,
        "applied": 0,
    }


_CONFLICT_OPS = ("TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem")
_STALE_OPS = ("GetItem", "Query", "Scan")


def _eventually_consistent(req: Request) -> bool:
    """A DynamoDB read that a stale_read rule may answer: not strongly consistent."""
    return (req.service == "dynamodb" and req.operation in _STALE_OPS
            and (req.json() or {}).get("ConsistentRead") is not True)


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.rules: list[dict] = []
        self.next_rule = 1
        self.seq = 0
        self.faults: collections.deque = collections.deque(maxlen=FAULT_LOG_SIZE)
        self.requests: collections.deque = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self.counts: dict[str, dict[str, int]] = {}
        self.config = {"limits": True, "idempotency": True, "verbose": False}
        self.schemas: dict[tuple[str, str, str], KeySchema] = {}
        # (table, key json) -> bytes
        self.sizes: collections.OrderedDict = collections.OrderedDict()
        self.tokens: dict[tuple[str, str, str], dict] = {}
        self.tokens_purged = time.monotonic()
        # (caller, action, resource) -> count; not emptied by reset (infra/iam_check.py)
        self.calls: dict[tuple[str, str, str], int] = {}

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # -- rules ------------------------------------------------------------------------------
    def add_rule(self, spec: dict) -> dict:
        with self.lock:
            rule = make_rule(spec, f"r{self.next_rule}")
            self.next_rule += 1
            self.rules.append(rule)
            return dict(rule)

    def take_rule(self, req: Request) -> dict | None:
        """The first rule matching `req`, counted as used (removed when used up)."""
        with self.lock:
            for rule in self.rules:
                if rule["service"] not in ("*", req.service):
                    continue
                if rule["operation"] not in ("*", req.operation):
                    continue
                if rule["action"] == "conflict" and not (req.service == "dynamodb"
                                                         and req.operation in _CONFLICT_OPS):
                    continue
                if rule["action"] == "stale_read" and not _eventually_consistent(req):
                    continue
                if rule["match"] is not None:
                    needles = rule["match"] if isinstance(rule["match"], list) else [rule["match"]]
                    target = req.target.encode("utf-8", "replace")
                    if not all(n.encode("utf-8") in req.body or n.encode("utf-8") in target
                               for n in needles):
                        continue
                if rule["skip"] > 0:
                    rule["skip"] -= 1
                    continue
                rule["applied"] += 1
                if rule["remaining"] > 0:
                    rule["remaining"] -= 1
                    if rule["remaining"] == 0:
                        self.rules.remove(rule)
                return dict(rule)
        return None

    def record_fault(self, req: Request, action: str, rule: dict | None, detail: str = "") -> None:
        entry = {
            "time": time.time(),
            "rule": rule["id"] if rule else None,
            "service": req.service,
            "operation": req.operation,
            "action": action,
            **req.resource(),
        }
        if detail:
            entry["detail"] = detail
        with self.lock:
            entry["seq"] = self.next_seq()
            self.faults.append(entry)
        where = "".join(f" {k}={v}" for k, v in req.resource().items())
        log(f"#{entry['seq']} {action} {req.service} {req.operation}{where}"
            f"{' rule=' + rule['id'] if rule else ''}{' (' + detail + ')' if detail else ''}")

    def record_call(self, req: Request) -> None:
        needs = req.iam_needs()
        with self.lock:
            for action, resource in needs:
                key = (req.caller, action, resource)
                self.calls[key] = self.calls.get(key, 0) + 1

    def record_request(self, req: Request, status: int, code: str, started: float,
                       fault: str | None, replayed: bool) -> None:
        entry = {
            "time": time.time(),
            "service": req.service,
            "operation": req.operation,
            "status": status,
            "ms": round((time.monotonic() - started) * 1000, 1),
            **req.resource(),
        }
        if code:
            entry["code"] = code
        if req.caller:
            entry["caller"] = req.caller
        if fault:
            entry["fault"] = fault
        if replayed:
            entry["replayed"] = True
        with self.lock:
            entry["seq"] = self.next_seq()
            self.requests.append(entry)
            ops = self.counts.setdefault(req.service, {})
            ops[req.operation] = ops.get(req.operation, 0) + 1
            verbose = self.config["verbose"]
        if verbose:
            where = "".join(f" {k}={v}" for k, v in req.resource().items())
            log(f"#{entry['seq']} {req.service} {req.operation}{where} -> {status}"
                f"{' ' + code if code else ''} {entry['ms']}ms")

    def reset(self) -> None:
        with self.lock:
            self.rules.clear()
            self.faults.clear()
            self.requests.clear()
            self.counts.clear()

    # -- item sizes seen (to decide when an UpdateItem needs the stored item) ---------------
    def note_size(self, table: str, key: dict, size: int | None) -> None:
        k = (table, json.dumps(key, sort_keys=True))
        with self.lock:
            if size is None or size < 64 * 1024:
                self.sizes.pop(k, None)
                return
            self.sizes[k] = size
            self.sizes.move_to_end(k)
            while len(self.sizes) > 10000:
                self.sizes.popitem(last=False)

    def known_size(self, table: str, key: dict) -> int:
        with self.lock:
            return self.sizes.get((table, json.dumps(key, sort_keys=True)), 0)


# --------------------------------------------------------------------------------------------
# The proxy
# --------------------------------------------------------------------------------------------


class WriteGate:
    """Readers-writer lock over moto's DynamoDB writes: a TransactWriteItems runs alone,
    other writes (PutItem, UpdateItem, DeleteItem, BatchWriteItem) run together. moto checks a
    transaction's conditions and applies it without a lock, and undoes a cancelled one by
    restoring a copy of every table it touched, so without this two concurrent transactions on
    one item can both pass their conditions, and a rollback erases writes made meanwhile.
    DynamoDB's transactions are serializable; behind this gate moto's are too."""

    WRITES = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem")

    def __init__(self):
        self._cond = threading.Condition()
        self._writers = 0
        self._transaction = False

    def enter(self, req: Request) -> str | None:
        if req.service != "dynamodb":
            return None
        if req.operation == "TransactWriteItems":
            with self._cond:
                while self._transaction or self._writers:
                    self._cond.wait()
                self._transaction = True
            return "transaction"
        if req.operation in self.WRITES:
            with self._cond:
                while self._transaction:
                    self._cond.wait()
                self._writers += 1
            return "write"
        return None

    def leave(self, kind: str | None) -> None:
        if kind is None:
            return
        with self._cond:
            if kind == "transaction":
                self._transaction = False
            else:
                self._writers -= 1
            self._cond.notify_all()


class Proxy:
    def __init__(self, upstream: Upstream):
        self.upstream = upstream
        self.state = State()
        self.gate = WriteGate()

    # -- DynamoDB limits --------------------------------------------------------------------
    def schema(self, req: Request, table: str) -> KeySchema | None:
        cache_key = (req.access_key, req.region, table)
        with self.state.lock:
            found = self.state.schemas.get(cache_key)
        if found is not None:
            return found
        try:
            status, doc = self.upstream.dynamodb(req, "DescribeTable", {"TableName": table})
        except OSError as exc:
            log(f"DescribeTable {table} failed: {exc}")
            return None
        if status != 200 or "Table" not in doc:
            return None  # moto will answer the request itself (ResourceNotFound …)
        schema = KeySchema.from_description(doc["Table"])
        with self.state.lock:
            self.state.schemas[cache_key] = schema
        return schema

    def forget_schema(self, req: Request) -> None:
        body = req.json() or {}
        table = body.get("TableName")
        with self.state.lock:
            for k in [k for k in self.state.schemas if k[2] == table or table is None]:
                del self.state.schemas[k]

    def check_key(self, req: Request, table: str, key: dict) -> str | None:
        """The ValidationException message if a primary key is too long."""
        schema = self.schema(req, table)
        if schema is None or not isinstance(key, dict):
            return None
        if schema.hash and key_value_size(key.get(schema.hash)) > MAX_HASH_KEY_BYTES:
            return HASH_TOO_LONG
        if schema.range and key_value_size(key.get(schema.range)) > MAX_RANGE_KEY_BYTES:
            return RANGE_TOO_LONG
        return None

    def check_item(self, req: Request, table: str, item: dict) -> str | None:
        if not isinstance(item, dict):
            return None
        schema = self.schema(req, table)
        if schema is not None:
            for h, r in [(schema.hash, schema.range), *schema.indexes.values()]:
                if h and key_value_size(item.get(h)) > MAX_HASH_KEY_BYTES:
                    return HASH_TOO_LONG
                if r and key_value_size(item.get(r)) > MAX_RANGE_KEY_BYTES:
                    return RANGE_TOO_LONG
        if item_size(item) > MAX_ITEM_BYTES:
            return ITEM_TOO_LARGE
        return None

    def check_update(self, req: Request, update: dict) -> str | None:
        table, key = update.get("TableName"), update.get("Key")
        if not isinstance(table, str) or not isinstance(key, dict):
            return None
        problem = self.check_key(req, table, key)
        if problem:
            return problem
        values = update.get("ExpressionAttributeValues") or {}
        added = sum(value_size(v) for v in values.values()) if isinstance(values, dict) else 0
        if added < UPDATE_CHECK_MIN_BYTES and self.state.known_size(table, key) < NEAR_LIMIT_BYTES:
            return None
        try:
            status, doc = self.upstream.dynamodb(
                req, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True})
        except OSError as exc:
            log(f"GetItem for the size of an update on {table} failed: {exc}")
            return None
        existing = (doc.get("Item") or {}) if status == 200 else {}
        replaced, new_names = updated_attributes(update.get("UpdateExpression") or "",
                                                 update.get("ExpressionAttributeNames") or {})
        kept = {k: v for k, v in existing.items() if k not in replaced}
        estimate = item_size(kept) + added + sum(len(n.encode("utf-8")) for n in new_names
                                                 if n not in kept)
        self.state.note_size(table, key, estimate)
        if estimate > MAX_ITEM_BYTES:
            return UPDATE_TOO_LARGE
        return None

    def check_limits(self, req: Request) -> str | None:
        body = req.json()
        if body is None:
            return None
        op = req.operation
        table = body.get("TableName")
        if op in ("GetItem", "DeleteItem") and isinstance(table, str):
            return self.check_key(req, table, body.get("Key"))
        if op == "PutItem" and isinstance(table, str):
            return self.check_item(req, table, body.get("Item"))
        if op == "UpdateItem":
            return self.check_update(req, body)
        if op == "Query" and isinstance(table, str):
            return self.check_query(req, table, body)
        if op in ("BatchGetItem", "BatchWriteItem"):
            for name, spec in (body.get("RequestItems") or {}).items():
                if op == "BatchGetItem":
                    for key in (spec or {}).get("Keys") or []:
                        problem = self.check_key(req, name, key)
                        if problem:
                            return problem
                    continue
                for entry in spec or []:
                    put = (entry or {}).get("PutRequest")
                    delete = (entry or {}).get("DeleteRequest")
                    problem = (self.check_item(req, name, put.get("Item")) if put
                               else self.check_key(req, name, delete.get("Key")) if delete
                               else None)
                    if problem:
                        return problem
            return None
        if op in ("TransactWriteItems", "TransactGetItems"):
            for entry in body.get("TransactItems") or []:
                for kind, spec in (entry or {}).items():
                    if not isinstance(spec, dict) or not isinstance(spec.get("TableName"), str):
                        continue
                    if kind == "Put":
                        problem = self.check_item(req, spec["TableName"], spec.get("Item"))
                    elif kind == "Update":
                        problem = self.check_update(req, spec)
                    else:  # Delete, ConditionCheck, Get
                        problem = self.check_key(req, spec["TableName"], spec.get("Key"))
                    if problem:
                        return problem
        return None

    def check_query(self, req: Request, table: str, body: dict) -> str | None:
        schema = self.schema(req, table)
        if schema is None:
            return None
        index = body.get("IndexName")
        hash_name, range_name = (schema.hash, schema.range) if index is None \
            else schema.indexes.get(index, (None, None))
        values = body.get("ExpressionAttributeValues") or {}
        names = body.get("ExpressionAttributeNames") or {}
        for attr, placeholder in key_equalities(body.get("KeyConditionExpression") or "", names):
            if attr == hash_name and key_value_size(values.get(placeholder)) > MAX_HASH_KEY_BYTES:
                return HASH_TOO_LONG
            if attr == range_name and key_value_size(values.get(placeholder)) > MAX_RANGE_KEY_BYTES:
                return RANGE_TOO_LONG
        for attr, cond in (body.get("KeyConditions") or {}).items():
            for v in (cond or {}).get("AttributeValueList") or []:
                if attr == hash_name and key_value_size(v) > MAX_HASH_KEY_BYTES:
                    return HASH_TOO_LONG
                if attr == range_name and key_value_size(v) > MAX_RANGE_KEY_BYTES:
                    return RANGE_TOO_LONG
        return None

    def note_write(self, req: Request) -> None:
        """Remember big items written, so small updates to them are still checked."""
        body = req.json() or {}
        table = body.get("TableName")
        if not isinstance(table, str):
            return
        schema = self.schema(req, table)
        if schema is None:
            return
        if req.operation == "PutItem" and isinstance(body.get("Item"), dict):
            self.state.note_size(table, schema.key_of(body["Item"]), item_size(body["Item"]))
        elif req.operation == "DeleteItem" and isinstance(body.get("Key"), dict):
            self.state.note_size(table, body["Key"], None)

    # -- TransactWriteItems idempotency -----------------------------------------------------
    def token_begin(self, req: Request) -> tuple[str, object]:
        """("new", key) | ("replay", Response) | ("answer", Response) for a TransactWriteItems."""
        body = req.json() or {}
        token = body.get("ClientRequestToken")
        if not isinstance(token, str) or not token:
            return "none", None
        params = {k: v for k, v in body.items() if k != "ClientRequestToken"}
        digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
        key = (req.access_key, req.region, token)
        now = time.monotonic()
        with self.state.lock:
            if now - self.state.tokens_purged > 30:
                for k in [k for k, e in self.state.tokens.items()
                          if e["done"] and now - e["at"] > TOKEN_TTL_SECONDS]:
                    del self.state.tokens[k]
                self.state.tokens_purged = now
            entry = self.state.tokens.get(key)
            if entry is not None and entry["done"] and now - entry["at"] > TOKEN_TTL_SECONDS:
                entry = None
            if entry is None:
                self.state.tokens[key] = {"digest": digest, "done": False, "at": now,
                                          "response": None}
                return "new", key
            if entry["digest"] != digest:
                return "answer", aws_error(
                    req, 400, "IdempotentParameterMismatchException",
                    "The request uses the same client token as a previous, but non-identical "
                    "request.")
            if not entry["done"]:
                return "answer", aws_error(
                    req, 400, "TransactionInProgressException",
                    "The transaction with the given request token is already in progress.")
            return "replay", entry["response"]

    def token_end(self, key, resp: Response | None) -> None:
        with self.state.lock:
            if resp is not None and 200 <= resp.status < 300:
                self.state.tokens[key] = {**self.state.tokens.get(key, {}), "done": True,
                                          "at": time.monotonic(), "response": resp}
            else:
                self.state.tokens.pop(key, None)

    # -- one request ------------------------------------------------------------------------
    def handle(self, req: Request):
        """The answer to a client request: a Response, or DROP."""
        started = time.monotonic()
        state = self.state
        fault = None
        replayed = False
        resp = None
        state.record_call(req)
        try:
            if req.service == "dynamodb" and state.config["limits"]:
                problem = self.check_limits(req)
                if problem:
                    fault = "limit"
                    state.record_fault(req, fault, None, problem)
                    resp = validation_error(req, problem)
                    return resp
            rule = state.take_rule(req)
            if rule is not None:
                fault = rule["action"]
                state.record_fault(req, fault, rule)
                if rule["latency_ms"]:
                    time.sleep(rule["latency_ms"] / 1000)
                if fault == "throttle":
                    resp = throttle_error(req)
                    return resp
                if fault == "error":
                    resp = server_error(req, rule["status"], rule["code"])
                    return resp
                if fault == "conflict":
                    resp = conflict_error(req)
                    return resp
                if fault == "stale_read":
                    resp = stale_answer(req)
                    return resp
            token_key = None
            if (req.service == "dynamodb" and req.operation == "TransactWriteItems"
                    and state.config["idempotency"]):
                kind, value = self.token_begin(req)
                if kind == "answer":
                    resp = value
                    return resp
                if kind == "replay":
                    replayed = True
                    resp = value
                elif kind == "new":
                    token_key = value
            if resp is None:
                gate = self.gate.enter(req)
                try:
                    resp = self.upstream.send(req.method, req.target,
                                              forward_headers(req.headers, self.upstream),
                                              req.body)
                finally:
                    self.gate.leave(gate)
                    if token_key is not None:
                        self.token_end(token_key, resp)
                if req.service == "dynamodb" and resp.status == 200:
                    if req.operation in ("CreateTable", "DeleteTable", "UpdateTable"):
                        self.forget_schema(req)
                    elif req.operation in ("PutItem", "DeleteItem"):
                        self.note_write(req)
            if fault == "lose_response":
                applied = resp
                resp = DROP if rule["mode"] == "drop" else server_error(req, 500)
                if applied.status >= 400:
                    log(f"lose_response: moto itself answered {applied.status} "
                        f"{applied.error_code()}")
                return resp
            return resp
        except (OSError, http.client.HTTPException) as exc:
            log(f"{req.service} {req.operation}: moto unreachable: {exc}")
            resp = aws_error(req, 502, "BadGateway", "fault proxy: upstream unreachable")
            return resp
        finally:
            status = 0 if resp is DROP or resp is None else resp.status
            code = "" if resp is DROP or resp is None else resp.error_code()
            state.record_request(req, status, code, started, fault, replayed)


def conflict_error(req: Request) -> Response:
    if req.operation != "TransactWriteItems":
        return aws_error(req, 400, "TransactionConflictException",
                         "Transaction is ongoing for the item")
    items = (req.json() or {}).get("TransactItems") or []
    reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
               for _ in items]
    message = ("Transaction cancelled, please refer cancellation reasons for specific reasons ["
               + ", ".join(r["Code"] for r in reasons) + "]")
    return aws_error(req, 400, "TransactionCanceledException", message,
                     {"CancellationReasons": reasons})


def stale_answer(req: Request) -> Response:
    """What an eventually consistent read may answer right after a write: nothing yet."""
    doc = {} if req.operation == "GetItem" else {"Items": [], "Count": 0, "ScannedCount": 0}
    body = json.dumps(doc).encode()
    return Response(200, [("Content-Type", "application/x-amz-json-1.0"),
                          ("x-amzn-RequestId", str(uuid.uuid4())),
                          ("x-amz-crc32", str(zlib.crc32(body) & 0xFFFFFFFF))], body)


def forward_headers(headers: list[tuple[str, str]], upstream: Upstream) -> list[tuple[str, str]]:
    out = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP and k.lower() != "expect"]
    if not any(k.lower() == "host" for k, _ in out):
        out.insert(0, ("Host", f"{upstream.host}:{upstream.port}"))
    return out


# --------------------------------------------------------------------------------------------
# Expression parsing (just enough for the limits)
# --------------------------------------------------------------------------------------------

_CLAUSE_RE = re.compile(r"\b(SET|REMOVE|ADD|DELETE)\b", re.IGNORECASE)


def _split_top(text: str, sep: str = ",") -> list[str]:
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _root(path: str, names: dict) -> tuple[str, bool]:
    """(top-level attribute name, whether the path is the whole attribute)."""
    path = path.strip()
    m = re.match(r"[#\w-]+", path)
    if not m:
        return "", False
    token = m.group(0)
    return names.get(token, token), m.end() == len(path)


def updated_attributes(expression: str, names: dict) -> tuple[set[str], set[str]]:
    """(top-level attributes the update replaces or removes, attribute names it sets)."""
    replaced: set[str] = set()
    assigned: set[str] = set()
    pieces = _CLAUSE_RE.split(expression)
    for i in range(1, len(pieces) - 1, 2):
        clause, text = pieces[i].upper(), pieces[i + 1]
        for action in _split_top(text):
            if clause == "SET" and "=" in action:
                lhs, rhs = action.split("=", 1)
                name, whole = _root(lhs, names)
                if not name:
                    continue
                assigned.add(name)
                token = lhs.strip()
                if whole and not re.search(r"(?<![#\w])" + re.escape(token) + r"(?![\w])", rhs):
                    replaced.add(name)  # SET a = :v replaces a; SET a = list_append(a, :v) keeps it
            elif clause == "REMOVE":
                name, whole = _root(action, names)
                if name and whole:
                    replaced.add(name)
    return replaced, assigned


def key_equalities(expression: str, names: dict) -> list[tuple[str, str]]:
    """(attribute, :placeholder) pairs of `attr = :v` conditions in a KeyConditionExpression."""
    out = []
    for a, b in re.findall(r"([#:\w.-]+)\s*=\s*([#:\w.-]+)", expression):
        attr, value = (a, b) if b.startswith(":") else (b, a)
        if value.startswith(":") and not attr.startswith(":"):
            out.append((names.get(attr, attr), value))
    # begins_with(attr, :v) on the sort key has the same length limit
    begins = r"begins_with\s*\(\s*([#\w.-]+)\s*,\s*(:[\w-]+)\s*\)"
    for attr, value in re.findall(begins, expression):
        out.append((names.get(attr, attr), value))
    return out


# --------------------------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy"
    sys_version = ""
    disable_nagle_algorithm = True
    proxy: Proxy  # set on the class by serve()

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass  # requests are logged (without bodies) by the proxy itself

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        if self.path == "/__faults__" or self.path.startswith("/__faults__/"):
            self._control(body)
            return
        req = Request(self.command, self.path, list(self.headers.items()), body)
        answer = self.proxy.handle(req)
        if answer is DROP:
            self.close_connection = True
            try:  # RST rather than FIN: the client sees a reset connection, no answer
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
            except OSError:
                pass
            return
        self._send(answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def _send(self, resp: Response) -> None:
        try:
            self.send_response_only(resp.status, resp.reason)
            for k, v in resp.headers:
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(resp.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and resp.body:
                self.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _json(self, status: int, doc) -> None:
        body = json.dumps(doc).encode()
        self._send(Response(status, [("Content-Type", "application/json")], body))

    # -- control API ------------------------------------------------------------------------
    def _control(self, body: bytes) -> None:
        state = self.proxy.state
        parts = urllib.parse.urlsplit(self.path)
        path = parts.path.rstrip("/")
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}
        method = self.command
        try:
            doc = json.loads(body) if body.strip() else {}
        except ValueError:
            self._json(400, {"error": "the body is not JSON"})
            return
        try:
            since = int(query.get("since", 0))
        except ValueError:
            self._json(400, {"error": "since is an integer"})
            return

        if path == "/__faults__" and method == "GET":
            with state.lock:
                self._json(200, {"ok": True, "upstream": self.proxy.upstream.url,
                                 "seq": state.seq, "rules": len(state.rules)})
        elif path == "/__faults__/rules" and method == "POST":
            try:
                rule = state.add_rule(doc)
            except RuleError as exc:
                self._json(400, {"error": str(exc)})
                return
            log(f"rule {rule['id']}: {rule['action']} {rule['service']} {rule['operation']}"
                f" times={rule['times']}{' (matching a substring)' if rule['match'] else ''}")
            self._json(201, rule)
        elif path == "/__faults__/rules" and method == "GET":
            with state.lock:
                self._json(200, {"rules": [dict(r) for r in state.rules]})
        elif path == "/__faults__/rules" and method == "DELETE":
            with state.lock:
                n = len(state.rules)
                state.rules.clear()
            self._json(200, {"removed": n})
        elif path.startswith("/__faults__/rules/") and method == "DELETE":
            rule_id = path.rsplit("/", 1)[-1]
            with state.lock:
                found = [r for r in state.rules if r["id"] == rule_id]
                for r in found:
                    state.rules.remove(r)
            self._json(200 if found else 404, {"removed": len(found)})
        elif path == "/__faults__/log" and method == "GET":
            with state.lock:
                faults = [dict(f) for f in state.faults if f["seq"] > since]
                self._json(200, {"seq": state.seq, "faults": faults})
        elif path == "/__faults__/requests" and method == "GET":
            service = query.get("service")
            service = SERVICE_ALIASES.get(service, service)
            operation = query.get("operation")
            with state.lock:
                found = [dict(r) for r in state.requests if r["seq"] > since
                         and (not service or r["service"] == service)
                         and (not operation or r["operation"] == operation)]
                counts = {s: dict(ops) for s, ops in state.counts.items()}
                self._json(200, {"seq": state.seq, "count": len(found), "requests": found,
                                 "counts": counts})
        elif path == "/__faults__/calls" and method == "GET":
            with state.lock:
                calls = [{"caller": c, "action": a, "resource": r, "count": n}
                         for (c, a, r), n in sorted(state.calls.items())]
            self._json(200, {"calls": calls})
        elif path == "/__faults__/reset" and method == "POST":
            state.reset()
            log("reset")
            self._json(200, {"ok": True})
        elif path == "/__faults__/config" and method == "GET":
            with state.lock:
                self._json(200, dict(state.config))
        elif path == "/__faults__/config" and method in ("PUT", "POST"):
            bad = not isinstance(doc, dict) or any(
                k not in state.config or not isinstance(v, bool) for k, v in doc.items())
            if bad:
                self._json(400, {"error": f"config takes booleans {sorted(state.config)}"})
                return
            with state.lock:
                state.config.update(doc)
                self._json(200, dict(state.config))
        elif path == "/__faults__/cache" and method == "DELETE":
            with state.lock:
                state.schemas.clear()
                state.sizes.clear()
            self._json(200, {"ok": True})
        else:
            self._json(404, {"error": f"no control route {method} {path}"})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    allow_reuse_address = True


def serve(upstream_url: str, host: str, port: int, verbose: bool = False) -> Server:
    proxy = Proxy(Upstream(upstream_url))
    proxy.state.config["verbose"] = verbose
    handler = type("BoundHandler", (Handler,), {"proxy": proxy})
    return Server((host, port), handler)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, help="moto's URL, e.g. http://127.0.0.1:4566")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    ap.add_argument("--verbose", action="store_true", help="log every request (no bodies)")
    args = ap.parse_args(argv)
    server = serve(args.upstream, args.host, args.port, args.verbose)
    host, port = server.server_address[:2]
    log(f"listening on http://{host}:{port} -> {args.upstream}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
