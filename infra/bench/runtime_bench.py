#!/usr/bin/env python3
"""Cold start and warm invocation timings of one function bootstrap, measured
against a local implementation of the Lambda Runtime API (the same HTTP
protocol Lambda speaks to a provided.al2023 bootstrap).

    runtime_bench.py --binary target/release/restaurant-config \
        --event events/restaurant-config.json --invocations 300 \
        [--path-param restaurantId=rst_…] [--header authorization="Bearer psk_live_…"]
        [--memory 128] [--cpu-share 0.0724] [--cold-starts 5]

Reports: init (process start -> first /next poll: cold start before the first
event), the first invocation (cold: first connections, first key check),
warm invocation percentiles (includes the DynamoDB calls to the local moto) and
the handler's own `duration_us` log figures, and peak RSS (VmHWM).

--cpu-share S runs the bootstrap (only it: not moto, not this emulator) in a fresh cgroup
whose CPU quota is S of one CPU (cgroup v1 cpu controller or cgroup v2 cpu.max); the child
joins the cgroup before it execs, so init is measured under the quota too. Lambda gives a
function MemorySize/1769 of a vCPU, so the 128 MB share is 128/1769 = 7.2 %. Needs root; any
failure to set the quota is an error, never a silent full-CPU run. --cold-starts N starts N
fresh processes one after another (medians of init and first invocation; the warm
invocations are split between them).
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
from pathlib import Path

# Lambda allocates CPU in proportion to memory: one full vCPU at 1,769 MB.
FULL_VCPU_MB = 1769
CGROUP_ROOT = Path("/sys/fs/cgroup")


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


def quota_for(share: float, period_us: int | None = None) -> tuple[int, int]:
    """(CFS period, quota) in µs for `share` of one CPU. The kernel refuses quotas under 1 ms,
    so the default 20 ms period grows for small shares (7.2 % -> 20 ms, 1.447 ms)."""
    period = period_us or max(20_000, int(1000 / share) + 1)
    quota = int(period * share)
    if quota < 1000:
        raise SystemExit(f"CPU quota {quota} us < 1000 us: use a longer --cpu-period-us")
    return period, quota


class CpuQuota:
    """A cgroup limiting its processes to `share` of one CPU; removed by close()."""

    def __init__(self, share: float, period_us: int | None = None):
        if share <= 0:
            raise SystemExit(f"--cpu-share must be > 0, got {share}")
        if os.geteuid() != 0:
            raise SystemExit("--cpu-share needs root (it creates a cgroup); refusing to run "
                             "at full CPU instead")
        self.period, self.quota = quota_for(share, period_us)
        name = f"pulsara-bench-{os.getpid()}"
        self.v2 = (CGROUP_ROOT / "cgroup.controllers").exists()
        if self.v2:
            if "cpu" not in (CGROUP_ROOT / "cgroup.controllers").read_text().split():
                raise SystemExit("cgroup v2 without the cpu controller: cannot limit CPU")
            control = CGROUP_ROOT / "cgroup.subtree_control"
            if "cpu" not in control.read_text().split():
                control.write_text("+cpu")
            self.path = CGROUP_ROOT / name
        else:
            base = CGROUP_ROOT / "cpu"
            if not (base / "cpu.cfs_quota_us").exists():
                base = CGROUP_ROOT / "cpu,cpuacct"
            if not (base / "cpu.cfs_quota_us").exists():
                raise SystemExit(f"no cgroup v1 cpu controller under {CGROUP_ROOT}: cannot "
                                 "limit CPU")
            self.path = base / name
        self.path.mkdir()
        try:
            if self.v2:
                (self.path / "cpu.max").write_text(f"{self.quota} {self.period}")
                got = (self.path / "cpu.max").read_text().split()
                ok = got == [str(self.quota), str(self.period)]
            else:
                (self.path / "cpu.cfs_period_us").write_text(str(self.period))
                (self.path / "cpu.cfs_quota_us").write_text(str(self.quota))
                ok = (self.path / "cpu.cfs_quota_us").read_text().strip() == str(self.quota)
            if not ok:
                raise SystemExit(f"{self.path}: the CPU quota did not stick")
        except BaseException:
            self.path.rmdir()
            raise
        self.procs = str(self.path / "cgroup.procs")

    def join(self) -> None:
        """preexec_fn: move the (forked, not yet exec'd) child into the cgroup."""
        with open(self.procs, "w") as f:
            f.write(str(os.getpid()))

    def stat(self) -> dict[str, int]:
        lines = (self.path / "cpu.stat").read_text().split("\n")
        return {k: int(v) for k, v in (line.split() for line in lines if line.strip())}

    def close(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)  # the last process is still being reaped
        print(f"warning: could not remove {self.path}", flush=True)

    def describe(self) -> str:
        return f"{self.quota}/{self.period} us ({100 * self.quota / self.period:.2f} % of a CPU)"


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def run_once(args, template_body: str, invocations: int, quota: CpuQuota | None,
             first_n: int) -> dict:
    """One fresh process: init, the first (cold) invocation, then `invocations` warm ones."""
    rt = Runtime()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(rt))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    env = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(args.memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "1",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_LAMBDA_LOG_GROUP_NAME": "bench",
        "RUST_LOG": "info",
    }
    started = time.perf_counter()
    proc = subprocess.Popen(
        [args.binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=quota.join if quota else None,  # only writes cgroup.procs
    )
    logs: list[str] = []
    threading.Thread(target=lambda: logs.extend(proc.stdout), daemon=True).start()

    latencies, statuses = [], {}
    cpu_start = wall_start = None
    try:
        for i in range(invocations + 1):
            req_id = f"bench-{i}"
            if i == 1:
                cpu_start = cpu_seconds(proc.pid)
                wall_start = time.perf_counter()
            rt.events.put((req_id, template_body.replace("{{n}}", str(first_n + i))))
            with rt.done:
                if not rt.done.wait_for(lambda req_id=req_id: req_id in rt.responses,
                                        timeout=120):
                    raise SystemExit(f"{args.binary}: timed out waiting for {req_id}\n"
                                     + "".join(logs[-20:]))
            t_resp, resp = rt.responses[req_id]
            latencies.append((t_resp - rt.sent[req_id]) * 1000)
            status = json.loads(resp).get("statusCode")
            statuses[status] = statuses.get(status, 0) + 1
        cpu_warm = cpu_seconds(proc.pid) - cpu_start if cpu_start is not None else 0.0
        wall_warm = time.perf_counter() - wall_start if wall_start is not None else 0.0
        with open(f"/proc/{proc.pid}/status") as f:
            rss = next(line.split()[1] for line in f if line.startswith("VmHWM"))
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        server.shutdown()
        server.server_close()
    time.sleep(0.2)
    durations = []
    for line in logs:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        d = rec.get("fields", {}).get("duration_us") if isinstance(rec, dict) else None
        if d is not None:
            durations.append(d / 1000)
    return {
        "init_ms": (rt.first_poll - started) * 1000,
        "first_ms": latencies[0],
        "warm": latencies[1:],
        "statuses": statuses,
        "cpu_warm": cpu_warm,
        "wall_warm": wall_warm,
        "rss_kib": int(rss),
        "durations": durations[1:],
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--event", required=True)
    ap.add_argument("--invocations", type=int, default=300,
                    help="warm invocations in all (split between the cold starts)")
    ap.add_argument("--path-param", action="append", default=[])
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--memory", type=int, default=128,
                    help="AWS_LAMBDA_FUNCTION_MEMORY_SIZE given to the function (MB)")
    ap.add_argument("--cpu-share", type=float, default=None,
                    help="run the bootstrap limited to this fraction of one CPU (cgroup)")
    ap.add_argument("--cpu-period-us", type=int, default=None,
                    help="CFS period for --cpu-share (default 20 ms, longer if the quota "
                         "would be under 1 ms)")
    ap.add_argument("--cold-starts", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON line of figures")
    ap.add_argument("--raw", action="store_true",
                    help="with --json, include every sample (init, first, warm)")
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

    quota = CpuQuota(args.cpu_share, args.cpu_period_us) if args.cpu_share else None
    runs = []
    try:
        cold = max(1, args.cold_starts)
        done = 0
        for c in range(cold):
            warm_here = args.invocations * (c + 1) // cold - args.invocations * c // cold
            runs.append(run_once(args, template_body, warm_here, quota, done))
            done += warm_here + 1
        throttle = quota.stat() if quota else {}
    finally:
        if quota:
            quota.close()

    warm = [x for r in runs for x in r["warm"]]
    inits = [r["init_ms"] for r in runs]
    firsts = [r["first_ms"] for r in runs]
    statuses: dict = {}
    for r in runs:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    cpu_warm = sum(r["cpu_warm"] for r in runs)
    wall_warm = sum(r["wall_warm"] for r in runs)
    rss = max(r["rss_kib"] for r in runs)
    durations = [x for r in runs for x in r["durations"]]
    nwarm = max(1, len(warm))
    figures = {
        "binary": os.path.basename(args.binary),
        "size_mb": round(os.path.getsize(args.binary) / 1e6, 2),
        "statuses": statuses,
        "memory_mb": args.memory,
        "cpu_share": args.cpu_share,
        "cpu_quota": quota.describe() if quota else None,
        "nr_throttled": throttle.get("nr_throttled"),
        "cold_starts": len(runs),
        "init_ms": round(statistics.median(inits), 1),
        "first_ms": round(statistics.median(firsts), 2),
        "init_first_ms": round(
            statistics.median([i + f for i, f in zip(inits, firsts, strict=True)]), 1
        ),
        "warm_n": len(warm),
        "warm_p50_ms": round(pct(warm, 50), 2) if warm else None,
        "warm_p90_ms": round(pct(warm, 90), 2) if warm else None,
        "warm_p99_ms": round(pct(warm, 99), 2) if warm else None,
        "cpu_ms_per_warm_invocation": round(1000 * cpu_warm / nwarm, 3),
        "warm_per_second": round(len(warm) / wall_warm, 1) if wall_warm else None,
        "peak_rss_mib": round(rss / 1024, 1),
    }
    if args.json:
        if args.raw:
            figures["samples"] = {"init_ms": inits, "first_ms": firsts, "warm_ms": warm}
        print(json.dumps(figures))
        return 0
    print(f"binary            {args.binary} ({os.path.getsize(args.binary) / 1e6:.1f} MB)")
    if quota:
        print(f"cpu quota         {quota.describe()}, throttled {throttle.get('nr_throttled')} "
              "periods")
    print(f"statuses          {statuses}")
    print(
        f"init (cold start) {figures['init_ms']:.1f} ms  (process start -> first /next; "
        f"median of {len(runs)})"
    )
    print(f"first invocation  {figures['first_ms']:.2f} ms")
    if warm:
        print(
            f"warm invocations  n={len(warm)} p50={pct(warm, 50):.2f} ms "
            f"p90={pct(warm, 90):.2f} ms p99={pct(warm, 99):.2f} ms "
            f"mean={statistics.mean(warm):.2f} ms"
        )
    if durations:
        print(
            f"handler duration  p50={pct(durations, 50):.3f} ms "
            f"p99={pct(durations, 99):.3f} ms (inside the function, incl. its DynamoDB calls)"
        )
    print(
        f"process CPU       {figures['cpu_ms_per_warm_invocation']:.3f} ms per warm invocation "
        "(handler + SDK work; waiting on moto excluded)"
    )
    print(f"peak RSS          {rss / 1024:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
