#!/usr/bin/env python3
"""Every function's cold start, warm latency, CPU per warm invocation and
peak RSS against a local Lambda Runtime API (runtime_bench.py), webhook
dispatcher throughput against a local receiver, then the cost model.

Run through infra/bench.sh, which starts moto, creates the stack from
template.yaml, builds release binaries and seeds demo data, and exports:
BENCH_RESTAURANT_ID, BENCH_API_KEY, BENCH_ADMIN_EMAIL, BENCH_ADMIN_PASSWORD.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
BIN = (TARGET if TARGET.is_absolute() else REPO / TARGET) / "release"
EVENTS = REPO / "events"
HERE = Path(__file__).resolve().parent
N = int(os.environ.get("BENCH_INVOCATIONS", "200"))


def admin_token() -> str:
    def b64(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64(
        json.dumps(
            {
                "iss": "pulsara-ivr",
                "sub": "usr_bench",
                "email": "bench@pulsara.local",
                "role": "admin",
                "iat": now,
                "exp": now + 3600,
            }
        ).encode()
    )
    secret = boto3.client("secretsmanager").get_secret_value(
        SecretId=os.environ["ADMIN_TOKEN_SECRET_ARN"]
    )["SecretString"]
    sig = hmac.new(secret.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64(sig)}"


def call_id_for(owner: str, restaurant: str, external: str) -> str:
    return "call_" + hashlib.sha256(f"{owner}\n{restaurant}\n{external}".encode()).hexdigest()[:24]


def run(binary: str, event: str, *extra: str, invocations: int = N) -> dict:
    cmd = [
        sys.executable,
        str(HERE / "runtime_bench.py"),
        "--binary",
        str(BIN / binary),
        "--event",
        str(event),
        "--invocations",
        str(invocations),
        "--json",
        *extra,
    ]
    out = (
        subprocess.run(cmd, capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    return json.loads(out)


def write_event(name: str, data: dict) -> Path:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-{name}.json"
    path.write_text(json.dumps(data))
    return path


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    count = 0

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        Receiver.count += 1
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()


def dispatcher_throughput(restaurant_id: str) -> dict:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    ddb = boto3.client("dynamodb")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    ddb.put_item(
        TableName=os.environ["WEBHOOKS_TABLE"],
        Item={
            "webhookId": {"S": "wh_bench"},
            "ownerId": {"S": "own_bench"},
            "keyId": {"S": "own_bench"},
            "callbackUrl": {"S": url},
            "events": {"L": [{"S": "settings.updated"}]},
            "secret": {"S": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
            "status": {"S": "active"},
            "createdAt": {"S": now},
            "updatedAt": {"S": now},
        },
    )
    batches, per_batch = int(os.environ.get("BENCH_DISPATCH_BATCHES", "30")), 10
    payload = json.dumps(
        {
            "type": "settings.updated",
            "timestamp": now,
            "data": {"restaurantId": restaurant_id, "changedFields": ["callHoursEnd"]},
        }
    )
    for n in range(batches + 1):
        for k in range(per_batch):
            ddb.put_item(
                TableName=os.environ["WEBHOOK_DELIVERIES_TABLE"],
                Item={
                    "deliveryId": {"S": f"msg_bench_{n}_{k}"},
                    "webhookId": {"S": "wh_bench"},
                    "ownerId": {"S": "own_bench"},
                    "eventType": {"S": "settings.updated"},
                    "payload": {"S": payload},
                    "status": {"S": "pending"},
                    "attempts": {"L": []},
                    "createdAt": {"S": now},
                    "updatedAt": {"S": now},
                    "expiresAt": {"N": str(int(time.time()) + 86400)},
                },
            )
    sample = json.loads((EVENTS / "webhook-dispatcher.json").read_text())
    record = sample["Records"][0]
    records = []
    for k in range(per_batch):
        r = dict(
            record,
            messageId=f"m-{{{{n}}}}-{k}",
            body=json.dumps({"deliveryId": f"msg_bench_{{{{n}}}}_{k}"}),
        )
        records.append(r)
    event = write_event("dispatch", {"Records": records})
    figures = run("webhook-dispatcher", event, invocations=batches)
    figures["deliveries_per_second"] = round(figures["warm_per_second"] * per_batch, 1)
    figures["received"] = Receiver.count
    server.shutdown()
    return figures


def main() -> int:
    rid = os.environ["BENCH_RESTAURANT_ID"]
    key = os.environ["BENCH_API_KEY"]
    owner = key[len("psk_live_") :][:8]
    token = admin_token()
    ivr = ("--header", f"authorization=Bearer {key}")
    admin = ("--header", f"authorization=Bearer {token}")
    first_call = call_id_for(owner, rid, "bench-call-1")

    def body(name: str, **fields) -> Path:
        e = json.loads((EVENTS / name).read_text())
        b = json.loads(e["body"])
        b.update(fields)
        e["body"] = json.dumps(b)
        return write_event(name.replace(".json", ""), e)

    cases = [
        (
            "restaurant-config",
            EVENTS / "restaurant-config.json",
            ("--path-param", f"restaurantId={rid}", *ivr),
        ),
        (
            "restaurant-config (by phone)",
            EVENTS / "restaurant-config.json",
            ("--path-param", "restaurantId=(555) 010-0100", *ivr),
        ),
        (
            "process-call",
            body(
                "process-call.json",
                restaurantId=rid,
                callId="bench-call-{{n}}",
                timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            ),
            ivr,
        ),
        (
            "complete-call",
            EVENTS / "complete-call.json",
            ("--path-param", f"callId={first_call}", *ivr),
        ),
        (
            "auth-login",
            body(
                "auth-login.json",
                email=os.environ["BENCH_ADMIN_EMAIL"],
                password=os.environ["BENCH_ADMIN_PASSWORD"],
            ),
            (),
        ),
        ("create-api-key", EVENTS / "create-api-key.json", admin),
        ("api-keys", EVENTS / "api-keys-list.json", admin),
        (
            "restaurants",
            EVENTS / "restaurants-get.json",
            ("--path-param", f"restaurantId={rid}", *admin),
        ),
        ("calls", EVENTS / "calls-list.json", ("--path-param", f"restaurantId={rid}", *admin)),
        ("register-webhook", EVENTS / "register-webhook.json", ivr),
        ("webhooks", EVENTS / "webhooks-list.json", ivr),
        ("email-sender", EVENTS / "email-sender.json", ()),
        ("restaurant-events", EVENTS / "restaurant-events.json", ()),
    ]
    results = []
    for label, event, extra in cases:
        binary = label.split(" ")[0]
        invocations = 20 if binary in ("create-api-key", "auth-login") else N
        f = run(binary, event, *extra, invocations=invocations)
        f["function"] = label
        results.append(f)
        print(
            f"{label:<30} init {f['init_ms']:>5} ms  first {f['first_ms']:>7} ms  "
            f"warm p50 {f['warm_p50_ms']:>6} ms  "
            f"cpu {f['cpu_ms_per_warm_invocation']:>6} ms/inv  "
            f"rss {f['peak_rss_mib']:>5} MiB  {f['statuses']}",
            flush=True,
        )
    d = dispatcher_throughput(rid)
    d["function"] = "webhook-dispatcher (10/batch)"
    results.append(d)
    print(
        f"{'webhook-dispatcher':<30} init {d['init_ms']:>5} ms  "
        f"batch of 10 p50 {d['warm_p50_ms']} ms  "
        f"{d['deliveries_per_second']} deliveries/s per instance  "
        f"rss {d['peak_rss_mib']} MiB  received {d['received']}"
    )
    out = Path(os.environ.get("BENCH_OUT", BIN.parent / "bench-results.json"))
    out.write_text(json.dumps(results, indent=1))
    print(f"\nfigures written to {out}")
    subprocess.run([sys.executable, str(HERE / "cost_model.py"), "--bench", str(out)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
