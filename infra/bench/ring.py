#!/usr/bin/env python3
"""Ring-path bench: the functions an IVR calls while a phone rings, against minimal baseline
functions built with the same release profile, at full CPU and at Lambda's CPU share.

A Lambda gets MemorySize/1769 of one vCPU (7.2 % at 128 MB), so cold starts measured on a
full core say little. Every case runs through runtime_bench.py (a local Lambda Runtime API,
moto over loopback), and under a share only the bootstrap process is in the cgroup; moto and
the emulator keep full CPU. Memory sizes come from template.yaml (Globals, per function,
`!Ref` to a parameter's default), so the bench follows the template.

Shares measured: full CPU, 128 MB (the acceptance bound's share) and every ring function's
own template size. Each share's table holds every ring function and both baselines; the cases
are interleaved (round r starts a fresh process of every case in turn) so that drift in the
machine's load hits them alike. Then auth-login at full CPU and at its own share (sign-in must
stay under 300 ms).

    ring.py                    run (needs the stack env, BENCH_* from infra/bench.sh, root)
    ring.py --print-binaries   the release binaries it needs (infra/bench.sh builds them)

Env: BENCH_COLD_STARTS (5), BENCH_RING_WARM (200 warm invocations per case and share),
BENCH_LOGIN_WARM (20), BENCH_CPU_PERIOD_US (20000), BENCH_RING_OUT ($CARGO_TARGET_DIR or
target, /bench/ring.md), BENCH_STRICT=1 (exit 1 when a bound is missed).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "infra"))
import local_stack  # noqa: E402

EVENTS = REPO / "events"
TEMPLATE = REPO / "template.yaml"
FULL_VCPU_MB = 1769

# The ring-time functions (cargo binary names), and the cases each is measured with (a name per
# endpoint; ring_cases() builds their requests). platform-hooks serves what ElevenLabs, Twilio,
# Vapi and Retell call: every ring-time message is measured, and the call reports after the
# call too.
RING_FUNCTIONS = ["restaurant-config", "platform-hooks"]
PLATFORM_CASES = ["conversation-init", "twilio-voice", "twilio-status", "post-call",
                  "vapi-assistant-request", "vapi-end-of-call-report", "retell-inbound",
                  "retell-call-analyzed"]
RING_CASES = ["restaurant-config", *(f"platform-hooks {c}" for c in PLATFORM_CASES)]
HOST = "abc123.execute-api.us-east-1.amazonaws.com"
# Baselines (infra/bench/baseline, not in template.yaml): same request, least possible work.
BASELINE = "baseline-config"  # restaurant-config's job done minimally: the acceptance bound
BASELINE_GETITEM = "baseline-getitem"  # lambda_http + one GetItem (for information)
BASELINES = [BASELINE, BASELINE_GETITEM]
ACCEPTANCE_MB = 128
BOUND_COLD = 1.5  # (init + first invocation) / baseline's
BOUND_WARM = 1.2  # warm p50 / baseline's
# What a platform endpoint must answer within, cold or warm: our own target (issue 13: decide
# within 2 s), well inside every platform's (Twilio 15 s, Vapi 7.5 s end to end, Retell 10 s).
RING_BUDGET_MS = 2000
LOGIN = "auth-login"
LOGIN_BOUND_MS = 300

COLD_STARTS = int(os.environ.get("BENCH_COLD_STARTS", "5"))
WARM = int(os.environ.get("BENCH_RING_WARM", "200"))
LOGIN_WARM = int(os.environ.get("BENCH_LOGIN_WARM", "20"))
# CFS period of the quota (µs); default runtime_bench's 20 ms (longer if the quota would be
# under the kernel's 1 ms minimum). Lambda does not document its own.
PERIOD_US = os.environ.get("BENCH_CPU_PERIOD_US")


def target_dir() -> Path:
    t = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    return t if t.is_absolute() else REPO / t


BIN = target_dir() / "release"


def binaries() -> list[str]:
    return [*RING_FUNCTIONS, *BASELINES, LOGIN]


# ------------------------------------------------------------------------------------------
# Memory sizes from template.yaml
# ------------------------------------------------------------------------------------------


def resolve_number(value, params: dict, where: str) -> int:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        if name not in params or "Default" not in (params[name] or {}):
            raise SystemExit(f"{where}: MemorySize !Ref {name} names no parameter with a Default")
        value = params[name]["Default"]
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SystemExit(f"{where}: cannot read MemorySize {value!r} (a number or a !Ref to a "
                         "parameter with a Default is understood)") from None


def memory_sizes(path: Path = TEMPLATE) -> dict[str, int]:
    """Cargo binary -> MemorySize (MB) of every function in the template."""
    template = local_stack.load_template(path, check=False)
    params = template.get("Parameters") or {}
    glob = ((template.get("Globals") or {}).get("Function") or {}).get("MemorySize", 128)
    out = {}
    for lid, res in local_stack.resources_of_type(template, "AWS::Serverless::Function").items():
        binary = local_stack.binary_of(lid, res)
        size = (res.get("Properties") or {}).get("MemorySize", glob)
        out[binary] = resolve_number(size, params, f"{path.name}: {lid}")
    return out


def share_of(mb: int) -> float:
    return mb / FULL_VCPU_MB


# ------------------------------------------------------------------------------------------
# Running cases
# ------------------------------------------------------------------------------------------


@dataclass
class Case:
    binary: str
    event: Path
    extra: tuple[str, ...]
    name: str = ""
    # Rewrites `event` before each process: for signatures that expire (Retell's, 5 minutes).
    refresh: Callable[[], None] | None = None

    def __post_init__(self):
        self.name = self.name or self.binary


def ring_request(binary: str, rid: str, key: str) -> Case:
    """The authenticated config request restaurant-config and the baselines get."""
    auth = ("--header", f"authorization=Bearer {key}")
    path = ("--path-param", f"restaurantId={rid}")
    return Case(binary, EVENTS / "restaurant-config.json", (*path, *auth))


def platform_event(name: str, integration: str, route: str, headers: dict, body: str) -> Path:
    """An API Gateway (HTTP API, stage v1) event for a platform-hooks route, written to TMPDIR."""
    e = json.loads((EVENTS / "restaurant-config.json").read_text())
    path = f"/v1/ivr/integrations/{integration}/{route}"
    route_key = f"POST /ivr/integrations/{{integrationId}}/{route}"
    e.update(routeKey=route_key, rawPath=path, body=body, isBase64Encoded=False,
             pathParameters={"integrationId": integration})
    e["headers"] = {"host": HOST, "x-forwarded-proto": "https", **headers}
    e["requestContext"].update(routeKey=route_key)
    e["requestContext"]["http"].update(method="POST", path=path)
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-ring-{name}.json"
    out.write_text(json.dumps(e))
    return out


def platform_cases(key: str) -> list[Case]:
    """One request per platform endpoint, signed as the platform signs it, for the demo
    restaurant's number and the integrations `pulsara-admin seed-demo` registered (their ids
    and secrets in BENCH_EL_*/BENCH_TW_*). The same request every invocation: after the first,
    the call endpoints take their redelivery path (the call exists), as platform retries do."""
    import hashlib
    import hmac
    import time
    from urllib.parse import urlencode

    from twilio.request_validator import RequestValidator

    number = os.environ.get("BENCH_RESTAURANT_NUMBER", "+15550100100")
    el, el_secret = os.environ["BENCH_EL_INTEGRATION"], os.environ["BENCH_EL_SECRET"]
    tw, tw_token = os.environ["BENCH_TW_INTEGRATION"], os.environ["BENCH_TW_TOKEN"]
    sid = "CA" + "b" * 32
    init = json.dumps({"caller_id": "+15559871234", "agent_id": "demo_agent",
                       "called_number": number, "call_sid": sid})
    cases = [Case("platform-hooks", platform_event(
        "conversation-init", el, "elevenlabs/conversation-init",
        {"authorization": f"Bearer {key}", "content-type": "application/json"}, init), (),
        "platform-hooks conversation-init")]
    for case, route, extra in (
        ("twilio-voice", "twilio/voice", {"CallStatus": "ringing"}),
        ("twilio-status", "twilio/status", {"CallStatus": "completed", "CallDuration": "37"}),
    ):
        params = {"CallSid": sid if case == "twilio-voice" else "CA" + "c" * 32,
                  "AccountSid": "AC" + "a" * 32, "From": "+15559871234", "To": number, **extra}
        url = f"https://{HOST}/v1/ivr/integrations/{tw}/{route}"
        sig = RequestValidator(tw_token).compute_signature(url, params)
        headers = {"content-type": "application/x-www-form-urlencoded",
                   "x-twilio-signature": sig}
        event = platform_event(case, tw, route, headers, urlencode(params))
        cases.append(Case("platform-hooks", event, (), f"platform-hooks {case}"))
    now = int(time.time())
    post = json.dumps({"type": "post_call_transcription", "event_timestamp": now, "data": {
        "agent_id": "demo_agent", "conversation_id": "conv_bench", "status": "done",
        "transcript": [{"role": "agent", "message": "Demo Trattoria, how can I help?"},
                       {"role": "user", "message": "Can I book a table for two at 8 tonight?"},
                       {"role": "agent", "message": "Booked for 8 pm."}],
        "metadata": {"start_time_unix_secs": now - 60, "call_duration_secs": 42,
                     "phone_call": {"type": "twilio", "agent_number": number,
                                    "external_number": "+15559871234",
                                    "call_sid": "CA" + "d" * 32}},
        "analysis": {"transcript_summary": "Booked a table for two at 8 pm.",
                     "call_successful": "success"}}})
    mac = hmac.new(el_secret.encode(), f"{now}.{post}".encode(), hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "elevenlabs-signature": f"t={now},v0={mac}"}
    event = platform_event("post-call", el, "elevenlabs/post-call", headers, post)
    cases.append(Case("platform-hooks", event, (), "platform-hooks post-call"))
    cases += vapi_retell_cases(number)
    return cases


def vapi_retell_cases(number: str) -> list[Case]:
    """Vapi's assistant-request and end-of-call-report (X-Vapi-Secret), Retell's inbound
    webhook and call_analyzed (x-retell-signature, made by retell-sdk's own signer)."""
    import time

    from retell.lib.webhook_auth import symmetric as retell_signer

    vapi, vapi_secret = os.environ["BENCH_VAPI_INTEGRATION"], os.environ["BENCH_VAPI_SECRET"]
    retell, retell_key = os.environ["BENCH_RETELL_INTEGRATION"], os.environ["BENCH_RETELL_KEY"]
    headers = {"content-type": "application/json", "x-vapi-secret": vapi_secret}
    ring = json.dumps({"message": {
        "type": "assistant-request", "call": {"id": "vapi-bench-ring"},
        "phoneNumber": {"number": number}, "customer": {"number": "+15559871234"}}})
    report = json.dumps({"message": {
        "type": "end-of-call-report", "endedReason": "customer-ended-call",
        "startedAt": "2026-12-01T18:00:00.000Z", "endedAt": "2026-12-01T18:01:15.000Z",
        "call": {"id": "vapi-bench-report"}, "phoneNumber": {"number": number},
        "customer": {"number": "+15559871234"},
        "artifact": {"messages": [
            {"role": "bot", "message": "Demo Trattoria, how can I help?"},
            {"role": "user", "message": "Can I book a table for two at 8 tonight?"},
            {"role": "bot", "message": "Booked for 8 pm."}]},
        "analysis": {"summary": "Booked a table for two at 8 pm.", "successEvaluation": "true"}}})
    cases = [
        Case("platform-hooks", platform_event(name, vapi, "vapi", headers, body), (),
             f"platform-hooks {name}")
        for name, body in (("vapi-assistant-request", ring), ("vapi-end-of-call-report", report))
    ]
    start = int(time.time() * 1000) - 60_000
    inbound = json.dumps({"event": "call_inbound", "call_inbound": {
        "agent_id": "agent_default", "from_number": "+15559871234", "to_number": number}})
    analyzed = json.dumps({"event": "call_analyzed", "call": {
        "call_id": "retell-bench-call", "call_type": "phone_call", "agent_id": "demo_retell_agent",
        "agent_version": 1, "call_status": "ended", "direction": "inbound",
        "from_number": "+15559871234", "to_number": number, "start_timestamp": start,
        "end_timestamp": start + 42_000, "duration_ms": 42_000,
        "disconnection_reason": "user_hangup", "transcript_object": [
            {"role": "agent", "content": "Demo Trattoria, how can I help?"},
            {"role": "user", "content": "Can I book a table for two at 8 tonight?"},
            {"role": "agent", "content": "Booked for 8 pm."}],
        "call_analysis": {"call_summary": "Booked a table for two at 8 pm.",
                          "user_sentiment": "Positive", "call_successful": True}}})
    # Retell's signature holds 5 minutes, less than a run: signed afresh for every process.
    for name, route, body in (("retell-inbound", "retell/inbound", inbound),
                              ("retell-call-analyzed", "retell/events", analyzed)):
        def signed(name=name, route=route, body=body) -> Path:
            sig = retell_signer["sign"](body, retell_key)
            h = {"content-type": "application/json", "x-retell-signature": sig}
            return platform_event(name, retell, route, h, body)

        cases.append(Case("platform-hooks", signed(), (), f"platform-hooks {name}",
                          refresh=signed))
    return cases


def login_case() -> Case:
    e = json.loads((EVENTS / "auth-login.json").read_text())
    body = json.loads(e["body"])
    body.update(email=os.environ["BENCH_ADMIN_EMAIL"], password=os.environ["BENCH_ADMIN_PASSWORD"])
    e["body"] = json.dumps(body)
    path = Path(os.environ.get("TMPDIR", "/tmp")) / "bench-ring-login.json"
    path.write_text(json.dumps(e))
    return Case(LOGIN, path, ())


def run_case(case: Case, mb: int, share: float | None, warm: int) -> dict:
    if case.refresh:
        case.refresh()
    cmd = [
        sys.executable, str(HERE / "runtime_bench.py"),
        "--binary", str(BIN / case.binary), "--event", str(case.event),
        "--invocations", str(warm), "--memory", str(mb), "--json", "--raw", *case.extra,
    ]
    if share is not None:
        cmd += ["--cpu-share", f"{share:.6f}"]
        if PERIOD_US:
            cmd += ["--cpu-period-us", PERIOD_US]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{case.binary} failed ({' '.join(cmd)}):\n{proc.stdout}{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def measure(cases: list[Case], mb: int, share: float | None, cold: int, warm: int) -> dict:
    """`cold` rounds, each a fresh process of every case in turn; warm samples pooled."""
    samples = {c.name: {"init": [], "first": [], "warm": [], "statuses": {}, "throttled": 0,
                        "quota": None} for c in cases}
    for r in range(cold):
        for c in cases:
            n = warm * (r + 1) // cold - warm * r // cold
            f = run_case(c, mb, share, n)
            s = samples[c.name]
            s["init"] += f["samples"]["init_ms"]
            s["first"] += f["samples"]["first_ms"]
            s["warm"] += f["samples"]["warm_ms"]
            s["throttled"] += f.get("nr_throttled") or 0
            s["quota"] = f.get("cpu_quota")
            s["rss"] = max(s.get("rss", 0), f["peak_rss_mib"])
            for k, v in f["statuses"].items():
                s["statuses"][k] = s["statuses"].get(k, 0) + v
    out = {}
    for name, s in samples.items():
        both = [i + f for i, f in zip(s["init"], s["first"], strict=True)]
        out[name] = {
            "init_ms": statistics.median(s["init"]),
            "first_ms": statistics.median(s["first"]),
            "init_first_ms": statistics.median(both),
            "init_first_min_max": (min(both), max(both)),
            "warm_p50_ms": pct(s["warm"], 50) if s["warm"] else None,
            "warm_p90_ms": pct(s["warm"], 90) if s["warm"] else None,
            "warm_p99_ms": pct(s["warm"], 99) if s["warm"] else None,
            "warm_n": len(s["warm"]),
            "statuses": s["statuses"],
            "nr_throttled": s["throttled"] if share is not None else None,
            "cpu_quota": s["quota"],
            "peak_rss_mib": s["rss"],
        }
    return out


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------


def ms(v) -> str:
    return "-" if v is None else (f"{v:,.0f}" if v >= 100 else f"{v:.1f}")


def share_label(mb: int | None) -> str:
    if mb is None:
        return "full CPU (no quota)"
    return f"{mb} MB share ({100 * share_of(mb):.2f} % of one CPU)"


def table(title: str, res: dict, sizes: dict[str, int]) -> tuple[list[str], bool]:
    lines = [f"### {title}", ""]
    q = next((r["cpu_quota"] for r in res.values() if r["cpu_quota"]), None)
    if q:
        lines += [f"cgroup quota/period: {q}", ""]
    lines += [
        "| function | template MB | init | first invocation | init+first (min-max) | warm p50 | "
        "warm p90 | warm p99 | statuses | throttled periods |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, r in res.items():
        lo, hi = r["init_first_min_max"]
        lines.append(
            f"| {name} | {sizes.get(name.split()[0], '-')} | {ms(r['init_ms'])} | "
            f"{ms(r['first_ms'])} | "
            f"{ms(r['init_first_ms'])} ({ms(lo)}-{ms(hi)}) | {ms(r['warm_p50_ms'])} | "
            f"{ms(r['warm_p90_ms'])} | {ms(r['warm_p99_ms'])} | {r['statuses']} | "
            f"{'-' if r['nr_throttled'] is None else r['nr_throttled']} |"
        )
    lines += ["", "Times in ms; init and first invocation are medians over "
              f"{COLD_STARTS} fresh processes, warm percentiles over "
              f"{next(iter(res.values()))['warm_n']} invocations.", ""]
    ok = True
    lines += [
        "| function | vs | (init+first) ratio | warm p50 ratio | verdict |",
        "|---|---|---:|---:|---|",
    ]
    for name in RING_CASES:
        r = res[name]
        for base in BASELINES:
            b = res[base]
            cold = r["init_first_ms"] / b["init_first_ms"]
            warm = r["warm_p50_ms"] / b["warm_p50_ms"]
            if name != "restaurant-config":
                # The platforms' budget is time, not a ratio: Twilio waits 15 s for TwiML (we
                # aim to decide within RING_BUDGET_MS), ElevenLabs counts only a quick 200.
                worst = max(r["init_first_ms"], r["warm_p99_ms"])
                verdict = (f"{'within' if worst <= RING_BUDGET_MS else 'OVER'} the "
                           f"{RING_BUDGET_MS} ms budget (cold and warm p99)")
                if base != BASELINE:
                    verdict = "information"
            elif base == BASELINE:
                good = cold <= BOUND_COLD and warm <= BOUND_WARM
                verdict = (
                    f"{'PASS' if good else 'FAIL'} (bounds ≤ {BOUND_COLD}× and ≤ {BOUND_WARM}×: "
                    f"{'ok' if cold <= BOUND_COLD else 'cold over'}, "
                    f"{'ok' if warm <= BOUND_WARM else 'warm over'})"
                )
                ok = ok and good
            else:
                verdict = "information"
            lines.append(f"| {name} | {base} | {cold:.2f}× | {warm:.2f}× | {verdict} |")
    lines.append("")
    return lines, ok


def login_table(rows: list[tuple[str, dict]]) -> tuple[list[str], bool]:
    lines = [
        f"### {LOGIN}: sign-in latency (must stay < {LOGIN_BOUND_MS} ms)",
        "",
        "| CPU | init | first (cold) sign-in | warm p50 | warm p90 | statuses | verdict |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    ok = True
    for label, r in rows:
        good = r["first_ms"] < LOGIN_BOUND_MS and r["warm_p90_ms"] < LOGIN_BOUND_MS
        ok = ok and good
        lines.append(
            f"| {label} | {ms(r['init_ms'])} | {ms(r['first_ms'])} | {ms(r['warm_p50_ms'])} | "
            f"{ms(r['warm_p90_ms'])} | {ms(r['warm_p99_ms'])} | {r['statuses']} | "
            f"{'PASS' if good else 'FAIL'} (cold and warm p90 < {LOGIN_BOUND_MS} ms) |"
        )
    lines.append("")
    return lines, ok


def main() -> int:
    if sys.argv[1:] == ["--print-binaries"]:
        print(" ".join(binaries()))
        return 0
    missing = [b for b in binaries() if not (BIN / b).exists()]
    if missing:
        raise SystemExit(f"missing release binaries in {BIN}: {', '.join(missing)}")
    sizes = memory_sizes()
    for b in [*RING_FUNCTIONS, LOGIN]:
        if b not in sizes:
            raise SystemExit(f"{b} is not a function of {TEMPLATE.name}")
    rid, key = os.environ["BENCH_RESTAURANT_ID"], os.environ["BENCH_API_KEY"]
    cases = [ring_request(b, rid, key) for b in ["restaurant-config", *BASELINES]]
    cases[1:1] = platform_cases(key)
    shares: list[int | None] = [None, ACCEPTANCE_MB]
    shares += sorted({sizes[b] for b in RING_FUNCTIONS} - {ACCEPTANCE_MB})

    out = Path(os.environ.get("BENCH_RING_OUT", target_dir() / "bench" / "ring.md"))
    out.parent.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f"{b} {sizes[b]} MB" for b in [*RING_FUNCTIONS, LOGIN])
    doc = [
        "## Ring path at Lambda's CPU share",
        "",
        f"Template memory sizes: {listed} (a full vCPU is {FULL_VCPU_MB} MB). "
        "Baselines run with the share of the table.",
        "",
    ]
    ok = True
    raw: dict = {}
    for mb in shares:
        res = measure(cases, mb or 128, share_of(mb) if mb else None, COLD_STARTS, WARM)
        raw[share_label(mb)] = res
        lines, good = table(share_label(mb), res, sizes)
        # The acceptance bounds apply at the 128 MB share; elsewhere the verdicts inform.
        ok = ok and (good or mb != ACCEPTANCE_MB)
        doc += lines
        print("\n".join(lines), flush=True)

    login = login_case()
    rows = []
    for mb in (None, sizes[LOGIN]):
        r = measure([login], mb or sizes[LOGIN], share_of(mb) if mb else None,
                    max(1, COLD_STARTS // 2 + 1), LOGIN_WARM)[LOGIN]
        raw[f"{LOGIN} {share_label(mb)}"] = r
        rows.append(("full" if mb is None else share_label(mb), r))
    lines, good = login_table(rows)
    ok = ok and good
    doc += lines
    print("\n".join(lines), flush=True)

    out.write_text("\n".join(doc))
    out.with_suffix(".json").write_text(json.dumps(raw, indent=1))
    print(f"tables written to {out} (figures: {out.with_suffix('.json')})")
    if not ok:
        print("some bounds are missed (see the verdicts above)")
    return 1 if (not ok and os.environ.get("BENCH_STRICT") == "1") else 0


if __name__ == "__main__":
    raise SystemExit(main())
