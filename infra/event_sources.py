#!/usr/bin/env python3
"""Local event sources: what Lambda's event source mappings do in AWS, for the
local stack. Reads the SQS (and DynamoDB stream) events of every function in
template.yaml, polls the local queues/streams in moto, and invokes the function
through `cargo lambda watch`'s Lambda invoke API with the same event shape AWS
sends. With ReportBatchItemFailures, only the messages the function reports as
failed stay in the queue (and come back after their visibility timeout, or go
to the dead-letter queue after maxReceiveCount); the rest are deleted.

DynamoDB streams are read shard by shard, in order, from StartingPosition
(new shards from their start, a child only after its parent). A batch that
fails (function error, or ReportBatchItemFailures naming records) is sent again
from its first failed record after a second; records are only passed once they
succeeded, or were discarded after MaximumRetryAttempts / MaximumRecordAgeInSeconds
(then an OnFailure SQS destination gets Lambda's invocation record).

Each invocation gets the function's Timeout (its Properties.Timeout, else
Globals.Function.Timeout, else Lambda's 3 s), times EVENT_SOURCE_TIME_SCALE: an
invocation not answered by then counts as a function error, as in Lambda (SQS:
the batch comes back after the queue's visibility timeout; stream: the batch is
retried). The local function runner cannot stop the abandoned invocation; the
fault points' `hang` action (infra/FAULTS.md) is what ends it. While a function
may still be starting (its first invocations, and those after a timeout or a
failed invoke), EVENT_SOURCE_COLD_START_SECONDS (default 5, not scaled) is added,
as Lambda doesn't count a cold start's init against the timeout.

Environment:
  EVENT_SOURCE_TIME_SCALE           multiplies every function Timeout (default 1.0)
  EVENT_SOURCE_COLD_START_SECONDS   extra time for possibly cold invocations (default 5)
  EVENT_SOURCE_STREAM_MAX_RETRIES   if set, replaces every stream mapping's MaximumRetryAttempts
  EVENT_SOURCE_SQS_CONCURRENCY      concurrent pollers per queue (default 4)

    event_sources.py --lambda-api http://127.0.0.1:5000 [--prefix pulsara-]
"""
from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import local_stack  # noqa: E402

ACCOUNT = local_stack.DEFAULT_ACCOUNT


def log(msg: str) -> None:
    print(f"[event_sources] {msg}", flush=True)


def logical_id(ref) -> str | None:
    """The resource behind `!GetAtt X.Arn` / `!GetAtt X.StreamArn`."""
    if isinstance(ref, dict) and "Fn::GetAtt" in ref:
        att = ref["Fn::GetAtt"]
        return att[0] if isinstance(att, list) else str(att).split(".")[0]
    return None


def destination_queue(dest) -> str | None:
    """An OnFailure destination: a queue's logical id (`!GetAtt Q.Arn`, `!Ref Q`) or an SQS ARN."""
    lid = logical_id(dest)
    if lid:
        return lid
    if isinstance(dest, dict) and isinstance(dest.get("Ref"), str):
        return dest["Ref"]
    return dest if isinstance(dest, str) and dest else None


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


def mappings(template: dict) -> list[dict]:
    out = []
    binaries = local_stack.function_binaries(template)
    scale = time_scale()
    max_retries = os.environ.get("EVENT_SOURCE_STREAM_MAX_RETRIES", "").strip()
    for lid, res in local_stack.resources_of_type(template, "AWS::Serverless::Function").items():
        timeout = max(0.5, function_timeout(template, res) * scale)
        for name, event in ((res.get("Properties") or {}).get("Events") or {}).items():
            kind = event.get("Type")
            props = event.get("Properties") or {}
            if kind == "SQS":
                source = logical_id(props.get("Queue"))
            elif kind == "DynamoDB":
                source = logical_id(props.get("Stream"))
            else:
                continue
            on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
            out.append({
                "kind": kind,
                "source": source,
                "function": binaries[lid],
                "batch": int(props.get("BatchSize", 10 if kind == "SQS" else 100)),
                "partial": "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                "name": f"{lid}.{name}",
                # stream-only settings (Lambda's defaults)
                "starting_position": str(props.get("StartingPosition", "TRIM_HORIZON")).upper(),
                "retries": int(max_retries) if max_retries and kind == "DynamoDB"
                else int(props.get("MaximumRetryAttempts", -1)),
                "max_age": int(props.get("MaximumRecordAgeInSeconds", -1)),
                "bisect": str(props.get("BisectBatchOnFunctionError", False)).lower() == "true",
                "on_failure": destination_queue(on_failure),
                "timeout": timeout,
                "filters": [f.get("Pattern") for f in (props.get("FilterCriteria") or {}).get("Filters") or []],
            })
    return out


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


def invoke(api: str, function: str, event: dict, timeout: float = 120.0) -> tuple[bool, dict | None]:
    """Invoke through cargo lambda watch. (False, None) on a function error, on no answer
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
            if resp.headers.get("X-Amz-Function-Error") or resp.headers.get("x-amz-function-error"):
                return False, None
            return True, (json.loads(body) if body else None)
    except (TimeoutError, socket.timeout) as exc:
        return _timed_out(function, limit, started, exc)
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, (TimeoutError, socket.timeout)):
            return _timed_out(function, limit, started, exc)
        _warmth.answered_by(function, False)
        log(f"invoking {function} failed: {exc}")
        return False, None
    except (ValueError, OSError, http.client.HTTPException) as exc:
        _warmth.answered_by(function, False)
        log(f"invoking {function} failed: {exc}")
        return False, None


def _timed_out(function: str, limit: float, started: float, exc: Exception) -> tuple[bool, None]:
    _warmth.answered_by(function, False)  # the instance may be stuck or gone: the next may start cold
    log(f"{function}: no answer within {limit:.1f}s ({time.monotonic() - started:.1f}s): "
        f"timed out, counted as a function error ({exc})")
    return False, None


def poll_sqs(session, api: str, m: dict, prefix: str, region: str, stop: threading.Event) -> None:
    sqs = session.client("sqs")
    name = prefix + m["source"]
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    arn = f"arn:aws:sqs:{region}:{ACCOUNT}:{name}"
    log(f"{m['name']}: {name} -> {m['function']} (timeout {m['timeout']:g}s)")
    while not stop.is_set():
        try:
            got = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(m["batch"], 10),
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
        except Exception as exc:  # moto restarting, shutting down …
            log(f"receive from {name} failed: {exc}")
            time.sleep(1)
            continue
        messages = got.get("Messages") or []
        if not messages:
            continue
        event = {"Records": [{
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
        ok, result = invoke(api, m["function"], event, m["timeout"])
        if not ok:
            continue  # everything comes back after the visibility timeout, as in AWS
        failed = set()
        if m["partial"] and isinstance(result, dict):
            failed = {f.get("itemIdentifier") for f in result.get("batchItemFailures") or []}
        done = [msg for msg in messages if msg["MessageId"] not in failed]
        for i in range(0, len(done), 10):
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(n), "ReceiptHandle": msg["ReceiptHandle"]} for n, msg in enumerate(done[i:i + 10])],
            )
        log(f"{m['function']}: {len(done)} done, {len(failed)} to retry")


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
            value = value.replace(tzinfo=timezone.utc)
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


def _leaves(value) -> list:
    """The leaf values at a pattern path: a list's elements are values there too (an
    object is not a leaf, so a key holding one doesn't "exist" for the matcher)."""
    if value is _MISSING:
        return []
    values = value if isinstance(value, list) else [value]
    return [v for v in values if not isinstance(v, (dict, list))]


def _match_value(rule, value) -> bool:
    """One entry of a filter pattern's value list against the record's value."""
    values = _leaves(value)
    if not isinstance(rule, dict):
        return any(v == rule for v in values)
    (op, arg), = rule.items() if len(rule) == 1 else ((None, None),)
    if op == "exists":
        # AWS: exists matches leaf nodes only ({"exists": false} also matches an object there)
        return bool(values) == bool(arg)
    if not values:
        return False
    if op == "prefix":
        return any(isinstance(v, str) and v.startswith(arg) for v in values)
    if op == "suffix":
        return any(isinstance(v, str) and v.endswith(arg) for v in values)
    if op == "equals-ignore-case":
        return any(isinstance(v, str) and v.lower() == str(arg).lower() for v in values)
    if op == "anything-but":
        banned = arg if isinstance(arg, list) else [arg]
        if isinstance(arg, dict) and "prefix" in arg:
            return any(not (isinstance(v, str) and v.startswith(arg["prefix"])) for v in values)
        return any(v not in banned for v in values)
    if op == "numeric":
        ops = {"=": float.__eq__, "<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__}
        for v in values:
            try:
                x = float(v)
            except (TypeError, ValueError):
                continue
            if all(ops[arg[i]](x, float(arg[i + 1])) for i in range(0, len(arg), 2)):
                return True
        return False
    raise ValueError(f"unsupported filter operator {rule!r}")


def _match_pattern(pattern: dict, event) -> bool:
    for key, rule in pattern.items():
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(rule, dict):
            if isinstance(value, list):  # a list of objects: any element may match
                objects = [v for v in value if isinstance(v, dict)] or [{}]
                if not any(_match_pattern(rule, v) for v in objects):
                    return False
            elif not _match_pattern(rule, value if isinstance(value, dict) else {}):
                return False
        elif isinstance(rule, list):
            if not any(_match_value(r, value) for r in rule):
                return False
        else:
            raise ValueError(f"filter pattern values must be lists or objects, got {rule!r}")
    return True


def record_filter(m: dict):
    """FilterCriteria as a predicate on event records (None: everything passes)."""
    patterns = []
    for p in m.get("filters") or []:
        patterns.append(json.loads(p) if isinstance(p, str) else p)
    if not patterns:
        return None

    def keep(record: dict) -> bool:
        for p in patterns:
            try:
                if _match_pattern(p, record):
                    return True
            except ValueError as exc:
                log(f"{m['name']}: {exc}; record kept")
                return True
        return False

    return keep


class _Shard:
    def __init__(self, shard_id: str, parent: str | None, start: str):
        self.id = shard_id
        self.parent = parent
        self.start = start           # iterator type for the first read
        self.iterator: str | None = None
        self.last_seq: str | None = None  # last sequence number read, to re-open an iterator
        self.pending: list[dict] = []     # read, not yet passed (succeeded / discarded)
        self.closed = False          # no more records will be read from this shard
        self.not_before = 0.0        # retry delay
        self.attempts = 0            # failed invocations of the batch at the head of pending
        self.split: int | None = None  # batch size while bisecting

    @property
    def done(self) -> bool:
        return self.closed and not self.pending


def poll_stream(session, api: str, m: dict, prefix: str, region: str, stop: threading.Event) -> None:
    """Lambda's DynamoDB event source mapping for one function/stream."""
    ddb = session.client("dynamodb")
    streams = session.client("dynamodbstreams")
    table = prefix + m["source"]
    keep = record_filter(m)
    function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{m['function']}"

    def latest_stream_arn() -> str | None:
        try:
            return ddb.describe_table(TableName=table)["Table"].get("LatestStreamArn")
        except Exception as exc:  # not created yet, moto restarting …
            if "ResourceNotFound" not in str(exc):
                log(f"describe {table} failed: {exc}")
            return None

    arn = None
    warned = False
    while arn is None and not stop.is_set():
        arn = latest_stream_arn()
        if arn is None:
            if not warned:
                log(f"{m['name']}: waiting for a stream on table {table}")
                warned = True
            stop.wait(2)
    if arn is None:
        return
    log(f"{m['name']}: {table} stream -> {m['function']} (timeout {m['timeout']:g}s, "
        f"retries {m['retries'] if m['retries'] >= 0 else 'unlimited'})")

    shards: dict[str, _Shard] = {}
    first_discovery = True
    next_discovery = 0.0

    def discover() -> None:
        nonlocal arn, shards, first_discovery
        current = latest_stream_arn()
        if current and current != arn:  # table re-created locally: follow its new stream
            log(f"{m['name']}: {table} has a new stream; reading it from the start")
            arn, shards, first_discovery = current, {}, False
        start_id = None
        while True:
            kw = {"StreamArn": arn}
            if start_id:
                kw["ExclusiveStartShardId"] = start_id
            desc = streams.describe_stream(**kw)["StreamDescription"]
            for sh in desc.get("Shards") or []:
                if sh["ShardId"] in shards:
                    continue
                start = m["starting_position"] if first_discovery else "TRIM_HORIZON"
                shard = _Shard(sh["ShardId"], sh.get("ParentShardId"), start)
                if start == "LATEST" and (sh.get("SequenceNumberRange") or {}).get("EndingSequenceNumber"):
                    shard.closed = True  # a closed shard has nothing after LATEST
                shards[sh["ShardId"]] = shard
            start_id = desc.get("LastEvaluatedShardId")
            if not start_id:
                break
        first_discovery = False

    def read(shard: _Shard) -> None:
        if shard.iterator is None:
            kw = {"StreamArn": arn, "ShardId": shard.id}
            if shard.last_seq is not None:
                kw.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.last_seq)
            else:
                kw["ShardIteratorType"] = shard.start
            try:
                shard.iterator = streams.get_shard_iterator(**kw)["ShardIterator"]
            except Exception as exc:
                code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
                if code == "TrimmedDataAccessException":
                    log(f"{m['name']}: {shard.id}: records after {shard.last_seq} were trimmed; from the trim horizon")
                    shard.last_seq, shard.start = None, "TRIM_HORIZON"
                elif code == "ResourceNotFoundException":
                    log(f"{m['name']}: {shard.id} is gone")
                    shard.closed = True
                else:
                    raise
                return
        try:
            got = streams.get_records(ShardIterator=shard.iterator, Limit=1000)
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
            if code not in ("ExpiredIteratorException", "TrimmedDataAccessException"):
                log(f"{m['name']}: get_records on {shard.id} failed: {exc}")
            shard.iterator = None  # re-open after the last record read
            return
        records = got.get("Records") or []
        if records:
            shard.last_seq = records[-1]["dynamodb"]["SequenceNumber"]
            events = [stream_event_record(r, arn, region) for r in records]
            shard.pending.extend(e for e in events if keep is None or keep(e))
        shard.iterator = got.get("NextShardIterator")
        if not records:
            # Re-open from the last record read on the next poll: moto rolls a
            # failed transaction back by restoring a copy of the table, and an
            # old iterator keeps reading the discarded copy's stream (no new
            # records ever). Cheap locally; in AWS iterators stay valid.
            shard.iterator = None


    def discard(shard: _Shard, batch: list[dict], condition: str) -> None:
        log(f"{m['function']}: {len(batch)} records from {shard.id} discarded ({condition})")
        if not m.get("on_failure"):
            return
        dest = m["on_failure"]
        queue = dest.rsplit(":", 1)[-1] if dest.startswith("arn:aws:sqs:") else prefix + dest
        iso = lambda r: datetime.fromtimestamp(r["dynamodb"].get("ApproximateCreationDateTime", 0), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
        record = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": function_arn,
                "condition": condition,
                "approximateInvokeCount": shard.attempts,
            },
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "version": "1.0",
            "timestamp": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "DDBStreamBatchInfo": {
                "shardId": shard.id,
                "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": iso(batch[0]),
                "approximateArrivalOfLastRecord": iso(batch[-1]),
                "batchSize": len(batch),
                "streamArn": arn,
            },
        }
        try:
            sqs = session.client("sqs")
            sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=queue)["QueueUrl"], MessageBody=json.dumps(record))
        except Exception as exc:
            log(f"{m['name']}: sending the failure record to {queue} failed: {exc}")

    def process(shard: _Shard) -> None:
        if m["max_age"] >= 0:
            cutoff = time.time() - m["max_age"]
            old = 0
            while old < len(shard.pending) and shard.pending[old]["dynamodb"].get("ApproximateCreationDateTime", cutoff) < cutoff:
                old += 1
            if old:
                discard(shard, shard.pending[:old], "RecordAgeExceeded")
                del shard.pending[:old]
                shard.attempts, shard.split = 0, None
                if not shard.pending:
                    return
        batch = shard.pending[:min(m["batch"], shard.split or m["batch"])]
        ok, result = invoke(api, m["function"], {"Records": batch}, m["timeout"])
        failed_at = None  # index of the first record to send again
        if not ok:
            failed_at = 0
        elif m["partial"] and isinstance(result, dict) and result.get("batchItemFailures"):
            index = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(batch)}
            ids = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in result["batchItemFailures"]]
            if all(i in index for i in ids):
                failed_at = min(index[i] for i in ids)
            else:  # an empty/unknown itemIdentifier fails the whole batch, as in AWS
                log(f"{m['function']}: batchItemFailures names records not in the batch: {ids}")
                failed_at = 0
        done = batch if failed_at is None else batch[:failed_at]
        del shard.pending[:len(done)]
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
            discard(shard, retry, "RetryAttemptsExhausted")
            del shard.pending[:len(retry)]
            shard.attempts, shard.split = 0, None
            return
        shard.not_before = time.monotonic() + 1.0
        log(f"{m['function']}: {len(done)} done, {len(retry)} to retry ({shard.id})")

    while not stop.is_set():
        busy = False
        try:
            if time.monotonic() >= next_discovery:
                discover()
                next_discovery = time.monotonic() + 5
            for shard in list(shards.values()):
                if shard.done or time.monotonic() < shard.not_before:
                    continue
                parent = shards.get(shard.parent) if shard.parent else None
                if parent is not None and not parent.done:
                    continue  # a child shard waits until its parent is through
                if len(shard.pending) < m["batch"] and not shard.closed:
                    read(shard)
                if shard.pending:
                    process(shard)
                    busy = True
                if shard.closed and not shard.pending:
                    next_discovery = 0.0  # its children may be there already
        except Exception as exc:  # moto restarting, shutting down …
            log(f"{m['name']}: polling {table} stream failed: {exc}")
            stop.wait(1)
            continue
        if not busy:
            stop.wait(0.3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lambda-api", required=True, help="cargo lambda watch address, e.g. http://127.0.0.1:5000")
    ap.add_argument("--template", default=str(local_stack.DEFAULT_TEMPLATE))
    ap.add_argument("--prefix", default="pulsara-")
    ap.add_argument("--sqs-concurrency", type=int, default=int(os.environ.get("EVENT_SOURCE_SQS_CONCURRENCY", "4")),
                    help="concurrent pollers per queue (match cargo lambda watch --concurrency)")
    args = ap.parse_args()

    import boto3

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    session = boto3.session.Session(region_name=region)
    template = local_stack.load_template(args.template)
    # Don't take messages off a queue before there is a function to give them to.
    deadline = time.monotonic() + 300
    while True:
        try:
            urllib.request.urlopen(f"{args.lambda_api}/.rt/2020-08-15/logs", timeout=2)
            break
        except urllib.error.HTTPError:
            break  # it answered
        except (urllib.error.URLError, TimeoutError, ConnectionError):
            if time.monotonic() > deadline:
                log("cargo lambda watch never answered")
                return 1
            time.sleep(0.3)
    _warmth.concurrency = max(1, args.sqs_concurrency)
    stop = threading.Event()
    threads = []
    for m in mappings(template):
        if m["kind"] == "SQS":
            target = poll_sqs
        else:
            target = globals().get("poll_stream")
            if target is None:
                log(f"{m['name']}: DynamoDB streams not wired yet; skipped")
                continue
        # Lambda polls a queue with several concurrent consumers, so one slow
        # batch (a webhook endpoint timing out) doesn't hold up the rest; a
        # stream shard is processed in order by one.
        pollers = args.sqs_concurrency if m["kind"] == "SQS" else 1
        for _ in range(pollers):
            t = threading.Thread(target=target, args=(session, args.lambda_api, m, args.prefix, region, stop), daemon=True)
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
