#!/usr/bin/env python3
"""Cold start and warm invocation timings of one function bootstrap, measured
against a local implementation of the Lambda Runtime API (the same HTTP
protocol Lambda speaks to a provided.al2023 bootstrap).

    runtime_bench.py --binary target/release/restaurant-config \
        --event events/restaurant-config.json --invocations 300 \
        [--path-param restaurantId=rst_…] [--header authorization="Bearer psk_live_…"]

Reports: init (process start -> first /next poll: cold start before the first
event), the first invocation (cold: first connections, first key check),
warm invocation percentiles (includes the DynamoDB calls to the local moto) and
the handler's own `duration_us` log figures, and peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import socket
import statistics
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Runtime:
    def __init__(self):
        self.events: queue.Queue = queue.Queue()
        self.responses: dict[str, tuple[float, bytes]] = {}
        self.first_poll: float | None = None
        self.sent: dict[str, float] = {}
        self.done = threading.Condition()


def make_handler(rt: Runtime):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def setup(self):
            super().setup()
            # Headers and body go out in separate writes; without this, Nagle plus
            # delayed ACKs add ~40 ms to every invocation and swamp the figures.
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def do_GET(self):
            if not self.path.endswith("/runtime/invocation/next"):
                self.send_error(404)
                return
            if rt.first_poll is None:
                rt.first_poll = time.perf_counter()
            req_id, body = rt.events.get()
            payload = body.encode()
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", req_id)
            self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 10_000))
            self.send_header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench",
            )
            self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            rt.sent[req_id] = time.perf_counter()
            self.wfile.write(payload)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            parts = self.path.strip("/").split("/")
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if "invocation" in parts and parts[-1] in ("response", "error"):
                with rt.done:
                    rt.responses[parts[-2]] = (time.perf_counter(), body)
                    rt.done.notify_all()
            elif parts[-1] == "error":
                print("init error:", body.decode(errors="replace"))

    return H


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf(os.sysconf_names["SC_CLK_TCK"])
    return (int(fields[11]) + int(fields[12])) / ticks


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--event", required=True)
    ap.add_argument("--invocations", type=int, default=300)
    ap.add_argument("--path-param", action="append", default=[])
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--json", action="store_true", help="print one JSON line of figures")
    args = ap.parse_args()

    event = json.load(open(args.event))
    for kv in args.path_param:
        k, v = kv.split("=", 1)
        event.setdefault("pathParameters", {})[k] = v
    for kv in args.header:
        k, v = kv.split("=", 1)
        event["headers"][k.lower()] = v
    # "{{n}}" anywhere in the event becomes the invocation number, so each
    # invocation can be a different call/id where that matters.
    template_body = json.dumps(event)

    rt = Runtime()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(rt))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    env = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
        "RUST_LOG": "info",
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        [args.binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    logs: list[str] = []
    threading.Thread(target=lambda: logs.extend(proc.stdout), daemon=True).start()

    latencies, statuses = [], {}
    for i in range(args.invocations + 1):
        req_id = f"bench-{i}"
        if i == 1:
            cpu_start = cpu_seconds(proc.pid)
            wall_start = time.perf_counter()
        rt.events.put((req_id, template_body.replace("{{n}}", str(i))))
        with rt.done:
            if not rt.done.wait_for(lambda req_id=req_id: req_id in rt.responses, timeout=30):
                print("timed out waiting for", req_id)
                proc.kill()
                return 1
        t_resp, resp = rt.responses[req_id]
        latencies.append((t_resp - rt.sent[req_id]) * 1000)
        status = json.loads(resp).get("statusCode")
        statuses[status] = statuses.get(status, 0) + 1

    cpu_warm = cpu_seconds(proc.pid) - cpu_start
    wall_warm = time.perf_counter() - wall_start
    with open(f"/proc/{proc.pid}/status") as f:
        rss = next(line.split()[1] for line in f if line.startswith("VmHWM"))
    proc.terminate()
    proc.wait(timeout=5)
    time.sleep(0.2)
    durations = []
    for line in logs:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        d = rec.get("fields", {}).get("duration_us")
        if d is not None:
            durations.append(d / 1000)

    warm = latencies[1:]
    figures = {
        "binary": os.path.basename(args.binary),
        "size_mb": round(os.path.getsize(args.binary) / 1e6, 2),
        "statuses": statuses,
        "init_ms": round((rt.first_poll - started) * 1000, 1),
        "first_ms": round(latencies[0], 2),
        "warm_p50_ms": round(pct(warm, 50), 2),
        "warm_p99_ms": round(pct(warm, 99), 2),
        "cpu_ms_per_warm_invocation": round(1000 * cpu_warm / len(warm), 3),
        "warm_per_second": round(len(warm) / wall_warm, 1),
        "peak_rss_mib": round(int(rss) / 1024, 1),
    }
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"binary            {args.binary} ({os.path.getsize(args.binary) / 1e6:.1f} MB)")
    print(f"statuses          {statuses}")
    print(
        f"init (cold start) {(rt.first_poll - started) * 1000:.1f} ms  "
        "(process start -> first /next)"
    )
    print(f"first invocation  {latencies[0]:.2f} ms")
    print(
        f"warm invocations  n={len(warm)} p50={pct(warm, 50):.2f} ms "
        f"p90={pct(warm, 90):.2f} ms p99={pct(warm, 99):.2f} ms "
        f"mean={statistics.mean(warm):.2f} ms"
    )
    if len(durations) > 1:
        wd = durations[1:]
        print(
            f"handler duration  p50={pct(wd, 50):.3f} ms p99={pct(wd, 99):.3f} ms "
            "(inside the function, incl. its DynamoDB calls)"
        )
    print(
        f"process CPU       {figures['cpu_ms_per_warm_invocation']:.3f} ms per warm invocation "
        "(handler + SDK work; waiting on moto excluded)"
    )
    print(f"peak RSS          {int(rss) / 1024:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
