#!/usr/bin/env python3
"""Local event sources: what Lambda's event source mappings do in AWS, for the local stack.
Reads the SQS and DynamoDB stream events of every function in template.yaml, polls the local
queues and streams in moto, and invokes the function through `cargo lambda watch`'s Lambda
invoke API with the event shape AWS sends.

SNS events (a function subscribed to a topic) get what SES publishes there locally: the SES
mailbox simulator. A message moto's SES accepted (read from /moto-api/data.json, with the
ConfigurationSetName and EmailTags infra/moto_server.py keeps) for bounce@simulator.amazonses.com
or complaint@simulator.amazonses.com, sent through a configuration set whose event destination
(template.yaml) matches bounce or complaint events and publishes to the topic, becomes the SES
event record SES would publish (ses_event_record()), about SES_FEEDBACK_DELAY seconds later,
wrapped as SNS delivers it to Lambda (sns_event()). SNS invokes Lambda asynchronously: a failed
invocation is retried twice, 60 s and 120 s later in AWS (times EVENT_SOURCE_TIME_SCALE here),
then dropped.

Only the event source properties template.yaml uses are emulated (EVENT_PROPERTIES); anything
else is refused at load time with a local_stack.TemplateError naming the template and property.

Partial batch responses, as Lambda reads them (reported_failures()): no answer body, null, no
or an empty batchItemFailures list: the whole batch succeeded; a function error (or timeout),
a body that is not JSON or not an object, a batchItemFailures that is not a list, or an
item whose itemIdentifier is missing, empty or not in the batch: the whole batch failed.
SQS: the messages named (all, when the whole batch failed) stay in the queue and come back
after their visibility timeout (or go to the dead-letter queue after maxReceiveCount); the rest
are deleted. Streams, read shard by shard in order from the trim horizon (a child shard after
its parent): the batch is checkpointed before its first failed record and retried from there a
second later; a function error with BisectBatchOnFunctionError halves the batch instead (not a
retry); after MaximumRetryAttempts the records are discarded and the OnFailure queue gets
Lambda's invocation record (condition RetryAttemptsExhausted).

Each invocation gets the function's Timeout (its Properties.Timeout, else
Globals.Function.Timeout, else Lambda's 3 s), times EVENT_SOURCE_TIME_SCALE: an invocation not
answered by then counts as a function error, as in Lambda. The local function runner cannot
stop the abandoned invocation; the fault points' `hang` action (infra/FAULTS.md) is what ends
it. While a function may still be starting (its first invocations, and those after a timeout
or a failed invoke), EVENT_SOURCE_COLD_START_SECONDS (default 5, not scaled) is added, as
Lambda doesn't count a cold start's init against the timeout.

Environment:
  EVENT_SOURCE_TIME_SCALE           multiplies every function Timeout (default 1.0)
  EVENT_SOURCE_COLD_START_SECONDS   extra time for possibly cold invocations (default 5)
  EVENT_SOURCE_STREAM_MAX_RETRIES   if set, replaces every stream mapping's MaximumRetryAttempts
  EVENT_SOURCE_SQS_CONCURRENCY      concurrent pollers per queue (default 4)
  SES_FEEDBACK_DELAY                seconds from send to the simulator's bounce (default 1)

    event_sources.py --lambda-api http://127.0.0.1:5000 [--prefix pulsara-]
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import local_stack  # noqa: E402

ACCOUNT = local_stack.DEFAULT_ACCOUNT
PARTIAL = ["ReportBatchItemFailures"]


def log(msg: str) -> None:
    print(f"[event_sources] {msg}", flush=True)


# --------------------------------------------------------------------------------------------
# Template -> mappings
# --------------------------------------------------------------------------------------------


def _getatt(value) -> tuple[str, str] | None:
    att = value.get("Fn::GetAtt") if isinstance(value, dict) and len(value) == 1 else None
    return tuple(att) if isinstance(att, list) and len(att) == 2 else None


def _getatt_of(rtype: str, attr: str, stream: bool = False):
    def ok(value, template: dict) -> bool:
        lid, got = _getatt(value) or (None, None)
        res = (template.get("Resources") or {}).get(lid) or {}
        return got == attr and res.get("Type") == rtype and (
            not stream or bool((res.get("Properties") or {}).get("StreamSpecification")))
    return ok


def _int_in(low: int, high: int):
    return lambda v, t: type(v) is int and low <= v <= high


def pattern_ok(pattern) -> bool:
    """A filter pattern of the emulated kind: nested objects whose leaves are non-empty lists
    of exact string values (no operators such as exists, prefix, numeric, anything-but, $or)."""
    return isinstance(pattern, dict) and bool(pattern) and all(
        pattern_ok(rule) if isinstance(rule, dict) else
        isinstance(rule, list) and bool(rule) and all(isinstance(v, str) for v in rule)
        for rule in pattern.values())


def _filters_ok(criteria, template) -> bool:
    filters = criteria.get("Filters") if isinstance(criteria, dict) and len(criteria) == 1 else None
    try:
        return isinstance(filters, list) and bool(filters) and all(
            list(f) == ["Pattern"] and pattern_ok(json.loads(f["Pattern"])) for f in filters)
    except (TypeError, ValueError):
        return False


def _destination_ok(config, template) -> bool:
    dest = config.get("OnFailure") if isinstance(config, dict) and len(config) == 1 else None
    return isinstance(dest, dict) and set(dest) == {"Type", "Destination"} \
        and dest["Type"] == "SQS" and _getatt_of("AWS::SQS::Queue", "Arn")(dest["Destination"],
                                                                           template)


_RESPONSE = (lambda v, t: v == PARTIAL, "[ReportBatchItemFailures]")
# Event type -> property -> (check(value, template), what is emulated).
EVENT_PROPERTIES = {
    "SQS": {
        "Queue": (_getatt_of("AWS::SQS::Queue", "Arn"), "!GetAtt <queue>.Arn"),
        "FunctionResponseTypes": _RESPONSE,
        # more than 10 needs MaximumBatchingWindowInSeconds, which is not emulated
        "BatchSize": (_int_in(1, 10), "1 to 10"),
        # Locally every mapping is one poller, so at most one invocation at a time anyway.
        "ScalingConfig": (lambda v, t: isinstance(v, dict) and set(v) == {"MaximumConcurrency"},
                          "{MaximumConcurrency: ...} (locally always 1)"),
    },
    "DynamoDB": {
        "Stream": (_getatt_of("AWS::DynamoDB::Table", "StreamArn", True),
                   "!GetAtt <table with a StreamSpecification>.StreamArn"),
        "StartingPosition": (lambda v, t: v == "TRIM_HORIZON", "TRIM_HORIZON"),
        "FunctionResponseTypes": _RESPONSE,
        "BatchSize": (_int_in(1, 10000), "1 to 10000"),
        "MaximumRetryAttempts": (_int_in(-1, 10000), "-1 to 10000"),
        "BisectBatchOnFunctionError": (lambda v, t: isinstance(v, bool), "true or false"),
        # Records wait up to this long (times EVENT_SOURCE_TIME_SCALE) for a fuller batch.
        "MaximumBatchingWindowInSeconds": (_int_in(0, 300), "0 to 300"),
        "FilterCriteria": (_filters_ok, "Filters: [{Pattern: <JSON of exact string values>}]"),
        "DestinationConfig": (_destination_ok,
                              "OnFailure: {Type: SQS, Destination: !GetAtt <queue>.Arn}"),
    },
}
EVENT_PROPERTIES["SNS"] = {
    "Topic": (lambda v, t: isinstance(v, dict) and list(v) == ["Ref"]
              and ((t.get("Resources") or {}).get(v["Ref"]) or {}).get("Type")
              == "AWS::SNS::Topic", "!Ref <topic>"),
}
REQUIRED = {"Queue", "Stream", "StartingPosition", "FunctionResponseTypes", "Topic"}


def check_event(kind: str, props: dict, template: dict, path, where: str) -> None:
    spec = EVENT_PROPERTIES[kind]
    local_stack._unknown(path, where, props, set(spec))
    for key, (ok, what) in spec.items():
        if (key in props or key in REQUIRED) and not ok(props.get(key), template):
            raise local_stack.template_error(path, f"{where}.{key}", f"{props.get(key)!r} is "
                                             f"not emulated locally (only {what})")


def _seconds(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def function_timeout(template: dict, res: dict) -> float:
    """Properties.Timeout, else Globals.Function.Timeout, else Lambda's default of 3 s."""
    own = _seconds((res.get("Properties") or {}).get("Timeout"))
    if own is not None:
        return own
    glob = _seconds(((template.get("Globals") or {}).get("Function") or {}).get("Timeout"))
    return glob if glob is not None else 3.0


def time_scale() -> float:
    scale = _seconds(os.environ.get("EVENT_SOURCE_TIME_SCALE", "1")) or 1.0
    return scale if scale > 0 else 1.0


def mappings(template: dict, path="template.yaml") -> list[dict]:
    """The template's SQS and DynamoDB event source mappings; local_stack.TemplateError for
    anything in them that is not emulated (EVENT_PROPERTIES)."""
    out = []
    binaries = local_stack.function_binaries(template)
    max_retries = os.environ.get("EVENT_SOURCE_STREAM_MAX_RETRIES", "").strip()
    for lid, res in local_stack.resources_of_type(template, "AWS::Serverless::Function").items():
        timeout = max(0.5, function_timeout(template, res) * time_scale())
        for name, event in ((res.get("Properties") or {}).get("Events") or {}).items():
            kind = event.get("Type")
            if kind not in EVENT_PROPERTIES:
                continue  # HttpApi: cargo lambda watch; other types: local_stack.check_template
            props = event.get("Properties") or {}
            check_event(kind, props, template, path,
                        f"Resources.{lid}.Properties.Events.{name}.Properties")
            if kind == "SNS":
                # Lambda's asynchronous invocation: two retries, then the event is dropped.
                out.append({"kind": kind, "function": binaries[lid], "name": f"{lid}.{name}",
                            "timeout": timeout, "source": props["Topic"]["Ref"], "retries": 2})
                continue
            m = {"kind": kind, "function": binaries[lid], "name": f"{lid}.{name}",
                 "timeout": timeout, "source": _getatt(props.get("Queue") or props["Stream"])[0]}
            if kind == "SQS":
                m.update(batch=props.get("BatchSize", 10), retries=-1)
            else:
                dest = (props.get("DestinationConfig") or {}).get("OnFailure") or {}
                m.update(batch=props.get("BatchSize", 100),
                         window=props.get("MaximumBatchingWindowInSeconds", 0) * time_scale(),
                         retries=int(max_retries) if max_retries
                         else props.get("MaximumRetryAttempts", -1),
                         bisect=props.get("BisectBatchOnFunctionError", False),
                         on_failure=_getatt(dest["Destination"])[0] if dest else None,
                         filters=[json.loads(f["Pattern"]) for f in
                                  (props.get("FilterCriteria") or {}).get("Filters") or []])
            out.append(m)
    return out


# --------------------------------------------------------------------------------------------
# Invoking, and reading the answer
# --------------------------------------------------------------------------------------------


class _Warmth:
    """Per function: how many invocations have come back since it may have been (re)started.
    Until `concurrency` have, an invocation may meet a starting instance and gets
    EVENT_SOURCE_COLD_START_SECONDS more (Lambda doesn't count init against the timeout)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.answered: dict[str, int] = {}
        self.concurrency = int(os.environ.get("EVENT_SOURCE_SQS_CONCURRENCY", "4") or 4)
        self.grace = _seconds(os.environ.get("EVENT_SOURCE_COLD_START_SECONDS", "5")) or 0.0

    def allowance(self, function: str) -> float:
        with self.lock:
            return self.grace if self.answered.get(function, 0) < self.concurrency else 0.0

    def answered_by(self, function: str, alive: bool) -> None:
        with self.lock:
            self.answered[function] = self.answered.get(function, 0) + 1 if alive else 0


_warmth = _Warmth()


class _Invalid:
    def __repr__(self) -> str:
        return "<invalid response>"


INVALID = _Invalid()  # an answer body that is not JSON


def invoke(api: str, function: str, event: dict, timeout: float = 120.0) -> tuple[bool, object]:
    """Invoke through cargo lambda watch: (True, the answer's JSON, None for an empty body or
    INVALID for one that is not JSON), or (False, None) on a function error, on no answer
    within `timeout` (Lambda's timeout: the invocation failed) or when the invoke fails."""
    limit = timeout + _warmth.allowance(function)
    req = urllib.request.Request(
        f"{api}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(event).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=limit) as resp:
            body = resp.read()
            _warmth.answered_by(function, True)
            if resp.headers.get("X-Amz-Function-Error"):
                return False, None
    except TimeoutError as exc:
        return _timed_out(function, limit, started, exc)
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return _timed_out(function, limit, started, exc)
        _warmth.answered_by(function, False)
        log(f"invoking {function} failed: {exc}")
        return False, None
    except (ValueError, OSError, http.client.HTTPException) as exc:
        _warmth.answered_by(function, False)
        log(f"invoking {function} failed: {exc}")
        return False, None
    if not body:
        return True, None
    try:
        return True, json.loads(body)
    except ValueError:
        log(f"{function} answered with something that is not JSON: {body[:200]!r}")
        return True, INVALID


def _timed_out(function: str, limit: float, started: float, exc: Exception) -> tuple[bool, None]:
    _warmth.answered_by(function, False)  # the instance may be stuck or gone: next may start cold
    log(f"{function}: no answer within {limit:.1f}s ({time.monotonic() - started:.1f}s): "
        f"timed out, counted as a function error ({exc})")
    return False, None


def reported_failures(ok: bool, result, ids: list[str]) -> set[str]:
    """The identifiers of a batch to retry, from an invocation's outcome under
    ReportBatchItemFailures (all of `ids` when the whole batch failed; see the docstring)."""
    everything = set(ids)
    if not ok or result is INVALID or not (result is None or isinstance(result, dict)):
        return everything
    failures = (result or {}).get("batchItemFailures")
    if not failures:
        return set()
    if not isinstance(failures, list):
        return everything
    named = set()
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in everything:
            log(f"batchItemFailures names {ident!r}, not an item of the batch: all of it failed")
            return everything
        named.add(ident)
    return named


# --------------------------------------------------------------------------------------------
# SQS
# --------------------------------------------------------------------------------------------


def sqs_event(messages: list[dict], arn: str, region: str) -> dict:
    return {"Records": [{
        "messageId": msg["MessageId"],
        "receiptHandle": msg["ReceiptHandle"],
        "body": msg["Body"],
        "attributes": msg.get("Attributes", {}),
        "messageAttributes": msg.get("MessageAttributes", {}),
        "md5OfBody": msg.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    } for msg in messages]}


def sqs_round(sqs, url: str, arn: str, region: str, m: dict,
              call: Callable[[dict], tuple[bool, object]]) -> int:
    """One receive (up to BatchSize messages) -> one invocation -> the succeeded messages
    deleted. Returns how many messages were received."""
    got = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=m["batch"],
        WaitTimeSeconds=1,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    messages = got.get("Messages") or []
    if not messages:
        return 0
    ok, result = call(sqs_event(messages, arn, region))
    failed = reported_failures(ok, result, [msg["MessageId"] for msg in messages])
    done = [msg for msg in messages if msg["MessageId"] not in failed]
    if done:  # the rest come back after the visibility timeout, as in AWS
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(n), "ReceiptHandle": msg["ReceiptHandle"]}
                     for n, msg in enumerate(done)],
        )
    log(f"{m['function']}: {len(done)} done, {len(failed)} to retry")
    return len(messages)


def poll_sqs(session, api: str, m: dict, prefix: str, region: str, stop: threading.Event) -> None:
    sqs = session.client("sqs")
    name = prefix + m["source"]
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    arn = f"arn:aws:sqs:{region}:{ACCOUNT}:{name}"
    log(f"{m['name']}: {name} -> {m['function']} (timeout {m['timeout']:g}s)")

    def call(event: dict) -> tuple[bool, object]:
        return invoke(api, m["function"], event, m["timeout"])

    while not stop.is_set():
        try:
            sqs_round(sqs, url, arn, region, m, call)
        except Exception as exc:  # moto restarting, shutting down …
            log(f"polling {name} failed: {exc}")
            time.sleep(1)


# --------------------------------------------------------------------------------------------
# DynamoDB streams
# --------------------------------------------------------------------------------------------

_MISSING = object()


def _wire(value):
    """boto3's view of a stream record back in the JSON form Lambda sends: binary attribute
    values base64, timestamps epoch seconds; everything else already is DynamoDB JSON."""
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, datetime):
        return _epoch(value)
    return value


def _epoch(value) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return float(value.timestamp())
    return float(value)


def stream_event_record(rec: dict, stream_arn: str, region: str) -> dict:
    src = rec.get("dynamodb") or {}
    ddb = {}
    for key in ("ApproximateCreationDateTime", "Keys", "NewImage", "OldImage",
                "SequenceNumber", "SizeBytes", "StreamViewType"):
        if key in src:
            ddb[key] = _epoch(src[key]) if key == "ApproximateCreationDateTime" else _wire(src[key])
    out = {
        "eventID": rec.get("eventID"),
        "eventName": rec.get("eventName"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }
    ident = rec.get("userIdentity")
    if ident:  # TTL deletions; the Streams API capitalises, Lambda's event doesn't
        out["userIdentity"] = {"type": ident.get("Type"), "principalId": ident.get("PrincipalId")}
    return out


def _match_pattern(pattern: dict, event) -> bool:
    """Lambda's filter matching for the emulated patterns (check_pattern): every key matches;
    a list of values matches a leaf equal to one of them, where a list in the record is each of
    its elements (an object is not a leaf); a nested pattern matches an object there, or any
    object of a list there."""
    for key, rule in pattern.items():
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        values = value if isinstance(value, list) else [value]
        if isinstance(rule, dict):
            if not any(isinstance(v, dict) and _match_pattern(rule, v) for v in values):
                return False
        elif not any(not isinstance(v, (dict, list)) and v is not _MISSING and v in rule
                     for v in values):
            return False
    return True


def record_filter(m: dict) -> Callable[[dict], bool] | None:
    """FilterCriteria as a predicate on event records (None: everything passes); a record
    passes when any pattern matches."""
    patterns = m.get("filters") or []
    if not patterns:
        return None
    return lambda record: any(_match_pattern(p, record) for p in patterns)


def failure_record(shard_id: str, batch: list[dict], condition: str, invocations: int,
                   function_arn: str, stream_arn: str) -> dict:
    """Lambda's invocation record for discarded stream records (the OnFailure message)."""
    def iso(r: dict) -> str:
        at = r["dynamodb"].get("ApproximateCreationDateTime", 0)
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invocations,
        },
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                            "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": iso(batch[0]),
            "approximateArrivalOfLastRecord": iso(batch[-1]),
            "batchSize": len(batch),
            "streamArn": stream_arn,
        },
    }


class _Shard:
    def __init__(self, shard_id: str, parent: str | None):
        self.id = shard_id
        self.parent = parent
        self.iterator: str | None = None
        self.last_seq: str | None = None  # last sequence number read, to re-open an iterator
        self.pending: list[dict] = []     # read, not yet passed (succeeded / discarded)
        self.closed = False          # no more records will be read from this shard
        self.not_before = 0.0        # retry delay
        self.attempts = 0            # failed invocations of the batch at the head of pending
        self.split: int | None = None  # batch size while bisecting
        self.first_pending: float | None = None  # when the oldest pending record was read

    @property
    def done(self) -> bool:
        return self.closed and not self.pending


def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


class StreamPoller:
    """Lambda's DynamoDB event source mapping for one function and table stream. `call`
    invokes the function with an event and returns invoke()'s (ok, answer)."""

    retry_delay = 1.0  # seconds before a failed batch is sent again

    def __init__(self, ddb, streams, sqs, m: dict, prefix: str, region: str,
                 call: Callable[[dict], tuple[bool, object]]):
        self.ddb, self.streams, self.sqs = ddb, streams, sqs
        self.m, self.prefix, self.region, self.call = m, prefix, region, call
        self.table = prefix + m["source"]
        self.keep = record_filter(m)
        self.function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{m['function']}"
        self.arn: str | None = None
        self.shards: dict[str, _Shard] = {}
        self.next_discovery = 0.0

    def latest_stream_arn(self) -> str | None:
        try:
            return self.ddb.describe_table(TableName=self.table)["Table"].get("LatestStreamArn")
        except Exception as exc:  # not created yet, moto restarting …
            if "ResourceNotFound" not in str(exc):
                log(f"describe {self.table} failed: {exc}")
            return None

    def discover(self) -> None:
        current = self.latest_stream_arn()
        if current and current != self.arn:
            if self.arn is not None:  # table re-created locally: follow its new stream
                log(f"{self.m['name']}: {self.table} has a new stream; reading it from the start")
            self.arn, self.shards = current, {}
        start_id = None
        while True:
            kw = {"StreamArn": self.arn}
            if start_id:
                kw["ExclusiveStartShardId"] = start_id
            desc = self.streams.describe_stream(**kw)["StreamDescription"]
            for sh in desc.get("Shards") or []:
                if sh["ShardId"] not in self.shards:
                    self.shards[sh["ShardId"]] = _Shard(sh["ShardId"], sh.get("ParentShardId"))
            start_id = desc.get("LastEvaluatedShardId")
            if not start_id:
                break

    def read(self, shard: _Shard) -> None:
        if shard.iterator is None:
            kw = {"StreamArn": self.arn, "ShardId": shard.id}
            if shard.last_seq is not None:
                kw.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.last_seq)
            else:
                kw["ShardIteratorType"] = "TRIM_HORIZON"
            try:
                shard.iterator = self.streams.get_shard_iterator(**kw)["ShardIterator"]
            except Exception as exc:
                code = _error_code(exc)
                if code == "TrimmedDataAccessException":
                    log(f"{self.m['name']}: {shard.id}: records after {shard.last_seq} were "
                        "trimmed; from the trim horizon")
                    shard.last_seq = None
                elif code == "ResourceNotFoundException":
                    log(f"{self.m['name']}: {shard.id} is gone")
                    shard.closed = True
                else:
                    raise
                return
        try:
            got = self.streams.get_records(ShardIterator=shard.iterator, Limit=1000)
        except Exception as exc:
            if _error_code(exc) not in ("ExpiredIteratorException", "TrimmedDataAccessException"):
                log(f"{self.m['name']}: get_records on {shard.id} failed: {exc}")
            shard.iterator = None  # re-open after the last record read
            return
        records = got.get("Records") or []
        if records:
            shard.last_seq = records[-1]["dynamodb"]["SequenceNumber"]
            events = [stream_event_record(r, self.arn, self.region) for r in records]
            was_empty = not shard.pending
            shard.pending.extend(e for e in events if self.keep is None or self.keep(e))
            if was_empty and shard.pending:
                shard.first_pending = time.monotonic()
        shard.iterator = got.get("NextShardIterator")
        if not records:
            # Re-open from the last record read on the next poll: moto rolls a
            # failed transaction back by restoring a copy of the table, and an
            # old iterator keeps reading the discarded copy's stream (no new
            # records ever). Cheap locally; in AWS iterators stay valid.
            shard.iterator = None

    def discard(self, shard: _Shard, batch: list[dict], condition: str) -> None:
        log(f"{self.m['function']}: {len(batch)} records from {shard.id} discarded ({condition})")
        if not self.m.get("on_failure"):
            return
        queue = self.prefix + self.m["on_failure"]
        record = failure_record(shard.id, batch, condition, shard.attempts, self.function_arn,
                                self.arn)
        try:
            url = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
        except Exception as exc:
            log(f"{self.m['name']}: sending the failure record to {queue} failed: {exc}")

    def process(self, shard: _Shard) -> None:
        """Invoke the function with the batch at the head of the shard and checkpoint."""
        m = self.m
        batch = shard.pending[:min(m["batch"], shard.split or m["batch"])]
        ok, result = self.call({"Records": batch})
        seqs = [r["dynamodb"]["SequenceNumber"] for r in batch]
        failed = reported_failures(ok, result, seqs)
        failed_at = min((i for i, s in enumerate(seqs) if s in failed), default=None)
        done = batch if failed_at is None else batch[:failed_at]
        del shard.pending[:len(done)]
        # What is left is a retry, or read while this batch ran: no window for it.
        shard.first_pending = 0.0 if shard.pending else None
        if failed_at is None:
            shard.attempts, shard.split = 0, None
            log(f"{m['function']}: {len(done)} done, 0 to retry ({shard.id})")
            return
        if done:
            shard.attempts = 0  # progress: the head of the shard is another record now
        retry = batch[failed_at:]
        if not ok and m["bisect"] and len(batch) > 1:
            shard.split = max(1, len(batch) // 2)  # splitting doesn't count as a retry
        else:
            shard.attempts += 1
        if 0 <= m["retries"] < shard.attempts:
            self.discard(shard, retry, "RetryAttemptsExhausted")
            del shard.pending[:len(retry)]
            shard.attempts, shard.split = 0, None
            return
        shard.not_before = time.monotonic() + self.retry_delay
        log(f"{m['function']}: {len(done)} done, {len(retry)} to retry ({shard.id})")

    def batch_ready(self, shard: _Shard) -> bool:
        """A full batch, a closed shard, or the batching window since the oldest record over."""
        window = self.m.get("window", 0)
        return (len(shard.pending) >= self.m["batch"] or shard.closed or not window
                or time.monotonic() - (shard.first_pending or 0.0) >= window)

    def step(self) -> bool:
        """One pass over the shards; True when a batch was processed."""
        busy = False
        if time.monotonic() >= self.next_discovery:
            self.discover()
            self.next_discovery = time.monotonic() + 5
        for shard in list(self.shards.values()):
            if shard.done or time.monotonic() < shard.not_before:
                continue
            parent = self.shards.get(shard.parent) if shard.parent else None
            if parent is not None and not parent.done:
                continue  # a child shard waits until its parent is through
            if len(shard.pending) < self.m["batch"] and not shard.closed:
                self.read(shard)
            if shard.pending and self.batch_ready(shard):
                self.process(shard)
                busy = True
            if shard.done:
                self.next_discovery = 0.0  # its children may be there already
        return busy

    def run(self, stop: threading.Event) -> None:
        m = self.m
        warned = False
        while self.arn is None and not stop.is_set():
            self.arn = self.latest_stream_arn()
            if self.arn is None:
                if not warned:
                    log(f"{m['name']}: waiting for a stream on table {self.table}")
                    warned = True
                stop.wait(2)
        if self.arn is None:
            return
        log(f"{m['name']}: {self.table} stream -> {m['function']} (timeout {m['timeout']:g}s, "
            f"retries {m['retries'] if m['retries'] >= 0 else 'unlimited'})")
        while not stop.is_set():
            try:
                busy = self.step()
            except Exception as exc:  # moto restarting, shutting down …
                log(f"{m['name']}: polling {self.table} stream failed: {exc}")
                stop.wait(1)
                continue
            if not busy:
                stop.wait(0.3)


def poll_stream(session, api: str, m: dict, prefix: str, region: str, stop: threading.Event):
    def call(event: dict) -> tuple[bool, object]:
        return invoke(api, m["function"], event, m["timeout"])

    StreamPoller(session.client("dynamodb"), session.client("dynamodbstreams"),
                 session.client("sqs"), m, prefix, region, call).run(stop)


# --------------------------------------------------------------------------------------------
# SNS: SES event publishing, for the mailbox simulator
# --------------------------------------------------------------------------------------------

SIMULATOR = {"bounce@simulator.amazonses.com": "bounce",
             "complaint@simulator.amazonses.com": "complaint"}
ASYNC_RETRY_DELAYS = (60.0, 120.0)  # seconds, Lambda's asynchronous invocation


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def topic_arn(lid: str, prefix: str, region: str) -> str:
    """A topic's local ARN (as local_stack.sns_topic_refs gives its Ref)."""
    return f"arn:aws:sns:{region}:{ACCOUNT}:{prefix}{lid}"


def ses_event_record(kind: str, recipients: list[str], message_id: str, source: str,
                     destination: list[str], tags: dict[str, list[str]], config_set: str,
                     region: str, bounce_type: str = "Permanent",
                     at: datetime | None = None) -> dict:
    """The record SES event publishing sends for a bounce or complaint (the shape of the
    SES developer guide's examples), with the message's tags as SES adds them."""
    at = at or datetime.now(UTC)
    domain = source.rsplit("@", 1)[-1].rstrip(">")
    mail = {
        "timestamp": _iso(at), "source": source,
        "sourceArn": f"arn:aws:ses:{region}:{ACCOUNT}:identity/{domain}",
        "sendingAccountId": ACCOUNT, "messageId": message_id, "destination": destination,
        "headersTruncated": False,
        "headers": [{"name": "From", "value": source},
                    {"name": "To", "value": ", ".join(destination)}],
        "commonHeaders": {"from": [source], "to": destination, "messageId": message_id},
        "tags": {"ses:configuration-set": [config_set], "ses:source-ip": ["127.0.0.1"],
                 "ses:from-domain": [domain], "ses:caller-identity": ["local"], **tags},
    }
    feedback_id = f"{uuid.uuid4()}-000000"
    if kind == "bounce":
        return {"eventType": "Bounce", "mail": mail, "bounce": {
            "bounceType": bounce_type, "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": r, "action": "failed", "status": "5.1.1",
                                   "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
                                  for r in recipients],
            "timestamp": _iso(at), "feedbackId": feedback_id,
            "reportingMTA": "dsn; simulator.amazonses.com"}}
    return {"eventType": "Complaint", "mail": mail, "complaint": {
        "complainedRecipients": [{"emailAddress": r} for r in recipients],
        "timestamp": _iso(at), "feedbackId": feedback_id,
        "userAgent": "Amazon SES Mailbox Simulator",
        "complaintFeedbackType": "abuse", "arrivalDate": _iso(at)}}


def sns_event(message: str, arn: str) -> dict:
    """The Lambda event of an SNS subscription delivering `message` from topic `arn`."""
    return {"Records": [{
        "EventSource": "aws:sns", "EventVersion": "1.0",
        "EventSubscriptionArn": f"{arn}:{uuid.uuid4()}",
        "Sns": {"Type": "Notification", "MessageId": str(uuid.uuid4()), "TopicArn": arn,
                "Subject": None, "Message": message, "Timestamp": _iso(datetime.now(UTC)),
                "SignatureVersion": "1", "Signature": "", "SigningCertUrl": "",
                "UnsubscribeUrl": "", "MessageAttributes": {}},
    }]}


def event_destinations(template: dict, r: local_stack.Resolver) -> dict[str, list[tuple]]:
    """Local configuration set name -> [(matching event types, topic logical id)] of its
    enabled SNS event destinations."""
    sets = {lid: r.resolve((res.get("Properties") or {}).get("Name") or lid) for lid, res in
            local_stack.resources_of_type(template, "AWS::SES::ConfigurationSet").items()}
    out: dict[str, list[tuple]] = {}
    for res in local_stack.resources_of_type(
            template, "AWS::SES::ConfigurationSetEventDestination").values():
        props = res.get("Properties") or {}
        dest = props.get("EventDestination") or {}
        set_ref = props.get("ConfigurationSetName")
        set_lid = set_ref.get("Ref") if isinstance(set_ref, dict) else None
        topic = (dest.get("SnsDestination") or {}).get("TopicARN")
        topic_lid = topic.get("Ref") if isinstance(topic, dict) else None
        if set_lid in sets and topic_lid and dest.get("Enabled"):
            out.setdefault(sets[set_lid], []).append(
                ({t.lower() for t in dest.get("MatchingEventTypes") or []}, topic_lid))
    return out


class SesFeedback:
    """The mailbox simulator's bounces and complaints of the messages moto's SES accepted,
    published as the template's event destinations say, to the functions subscribed to the
    topic (Lambda's asynchronous invocation, with its retries)."""

    def __init__(self, moto_url: str, destinations: dict[str, list[tuple]],
                 subscribers: list[dict], prefix: str, region: str,
                 call: Callable[[dict, dict], tuple[bool, object]]):
        self.moto_url, self.destinations = moto_url, destinations
        self.subscribers, self.prefix, self.region, self.call = (subscribers, prefix, region,
                                                                 call)
        self.seen: set[str] = set()
        self.due: list[tuple[float, dict, dict, int]] = []  # (when, mapping, event, attempt)
        self.delay = _seconds(os.environ.get("SES_FEEDBACK_DELAY", "1")) or 0.0

    def messages(self) -> list[dict]:
        # Only SES's messages (infra/moto_server.py): the whole document is every service's state.
        url = f"{self.moto_url}/moto-api/data.json?only=ses.Message"
        with urllib.request.urlopen(url, timeout=10) as resp:
            return (json.load(resp).get("ses") or {}).get("Message") or []

    def feedback_of(self, msg: dict) -> list[tuple[dict, dict]]:
        """(mapping, SNS event) for each simulator bounce or complaint of one message."""
        config_set = msg.get("configuration_set_name")
        dests = msg.get("destinations") or {}
        to = [a for key in ("ToAddresses", "CcAddresses", "BccAddresses")
              for a in dests.get(key) or []]
        out = []
        for kind in ("bounce", "complaint"):
            hit = [a for a in to if SIMULATOR.get(a.lower()) == kind]
            if not hit or not config_set:
                continue
            for types, topic in self.destinations.get(config_set, []):
                if kind not in types:
                    continue
                record = ses_event_record(kind, hit, msg["id"], msg.get("source", ""), to,
                                          msg.get("tags") or {}, config_set, self.region)
                arn = topic_arn(topic, self.prefix, self.region)
                for m in self.subscribers:
                    if m["source"] == topic:
                        out.append((m, sns_event(json.dumps(record), arn)))
        return out

    def step(self) -> None:
        now = time.monotonic()
        for msg in self.messages():
            if msg.get("id") in self.seen:
                continue
            self.seen.add(msg.get("id"))
            for m, event in self.feedback_of(msg):
                self.due.append((now + self.delay, m, event, 0))
        ready = [d for d in self.due if d[0] <= now]
        self.due = [d for d in self.due if d[0] > now]
        for _, m, event, attempt in ready:
            ok, _ = self.call(m, event)
            if ok:
                log(f"{m['function']}: SES event delivered (attempt {attempt + 1})")
            elif attempt < m["retries"]:
                wait = ASYNC_RETRY_DELAYS[min(attempt, len(ASYNC_RETRY_DELAYS) - 1)] * time_scale()
                log(f"{m['function']}: SES event failed; retrying in {wait:g}s")
                self.due.append((time.monotonic() + wait, m, event, attempt + 1))
            else:
                log(f"{m['function']}: SES event failed {attempt + 1} times; dropped")

    def run(self, stop: threading.Event) -> None:
        names = ", ".join(m["function"] for m in self.subscribers)
        log(f"SES feedback (mailbox simulator) -> {names}")
        while not stop.is_set():
            try:
                self.step()
            except Exception as exc:  # moto restarting, shutting down …
                log(f"SES feedback: polling moto failed: {exc}")
            stop.wait(0.5)


def poll_ses_feedback(template: dict, subscribers: list[dict], api: str, prefix: str,
                      region: str, stop: threading.Event) -> None:
    moto_url = os.environ.get("AWS_ENDPOINT_URL", "")
    if not moto_url:
        log("SES feedback: AWS_ENDPOINT_URL is not set; no simulator bounces")
        return
    r = local_stack.Resolver(template, {}, region, ACCOUNT)

    def call(m: dict, event: dict) -> tuple[bool, object]:
        return invoke(api, m["function"], event, m["timeout"])

    SesFeedback(moto_url, event_destinations(template, r), subscribers, prefix, region,
                call).run(stop)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def wait_for_watch(api: str, seconds: float = 300) -> bool:
    """Don't take messages off a queue before there is a function to give them to."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(f"{api}/.rt/2020-08-15/logs", timeout=2)
            return True
        except urllib.error.HTTPError:
            return True  # it answered
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lambda-api", required=True,
                    help="cargo lambda watch address, e.g. http://127.0.0.1:5000")
    ap.add_argument("--template", default=str(local_stack.DEFAULT_TEMPLATE))
    ap.add_argument("--prefix", default="pulsara-")
    ap.add_argument("--sqs-concurrency", type=int,
                    default=int(os.environ.get("EVENT_SOURCE_SQS_CONCURRENCY", "4")),
                    help="concurrent pollers per queue (match cargo lambda watch --concurrency)")
    args = ap.parse_args()

    template = local_stack.load_and_check(args.template)
    import boto3

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    session = boto3.session.Session(region_name=region)
    if not wait_for_watch(args.lambda_api):
        log("cargo lambda watch never answered")
        return 1
    _warmth.concurrency = max(1, args.sqs_concurrency)
    stop = threading.Event()
    # Lambda polls a queue with several concurrent consumers, so one slow batch (a webhook
    # endpoint timing out) doesn't hold up the rest; a stream shard is processed in order by one.
    threads = []
    all_mappings = mappings(template, args.template)
    subscribers = [m for m in all_mappings if m["kind"] == "SNS"]
    if subscribers:
        t = threading.Thread(target=poll_ses_feedback, daemon=True,
                             args=(template, subscribers, args.lambda_api, args.prefix, region,
                                   stop))
        t.start()
        threads.append(t)
    for m in all_mappings:
        if m["kind"] == "SNS":
            continue
        sqs = m["kind"] == "SQS"
        target, pollers = (poll_sqs, args.sqs_concurrency) if sqs else (poll_stream, 1)
        for _ in range(pollers):
            t = threading.Thread(target=target, daemon=True,
                                 args=(session, args.lambda_api, m, args.prefix, region, stop))
            t.start()
            threads.append(t)
    try:
        while any(t.is_alive() for t in threads):
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop.set()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
