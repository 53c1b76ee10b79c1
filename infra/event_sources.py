#!/usr/bin/env python3
"""Local event sources: what Lambda's event source mappings do in AWS, for the
local stack. Reads the SQS (and DynamoDB stream) events of every function in
template.yaml, polls the local queues/streams in moto, and invokes the function
through `cargo lambda watch`'s Lambda invoke API with the same event shape AWS
sends. With ReportBatchItemFailures, only the messages the function reports as
failed stay in the queue (and come back after their visibility timeout, or go
to the dead-letter queue after maxReceiveCount); the rest are deleted.

    event_sources.py --lambda-api http://127.0.0.1:5000 [--prefix pulsara-]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request
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


def mappings(template: dict) -> list[dict]:
    out = []
    binaries = local_stack.function_binaries(template)
    for lid, res in local_stack.resources_of_type(template, "AWS::Serverless::Function").items():
        for name, event in ((res.get("Properties") or {}).get("Events") or {}).items():
            kind = event.get("Type")
            props = event.get("Properties") or {}
            if kind == "SQS":
                source = logical_id(props.get("Queue"))
            elif kind == "DynamoDB":
                source = logical_id(props.get("Stream"))
            else:
                continue
            out.append({
                "kind": kind,
                "source": source,
                "function": binaries[lid],
                "batch": int(props.get("BatchSize", 10)),
                "partial": "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                "name": f"{lid}.{name}",
            })
    return out


def invoke(api: str, function: str, event: dict) -> tuple[bool, dict | None]:
    req = urllib.request.Request(
        f"{api}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(event).encode(),
        headers={"content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            body = resp.read()
            if resp.headers.get("X-Amz-Function-Error") or resp.headers.get("x-amz-function-error"):
                return False, None
            return True, (json.loads(body) if body else None)
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        log(f"invoking {function} failed: {exc}")
        return False, None


def poll_sqs(session, api: str, m: dict, prefix: str, region: str, stop: threading.Event) -> None:
    sqs = session.client("sqs")
    name = prefix + m["source"]
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    arn = f"arn:aws:sqs:{region}:{ACCOUNT}:{name}"
    log(f"{m['name']}: {name} -> {m['function']}")
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
        ok, result = invoke(api, m["function"], event)
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lambda-api", required=True, help="cargo lambda watch address, e.g. http://127.0.0.1:5000")
    ap.add_argument("--template", default=str(local_stack.DEFAULT_TEMPLATE))
    ap.add_argument("--prefix", default="pulsara-")
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
