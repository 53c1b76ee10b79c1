#!/usr/bin/env python3
"""Dollars per million IVR calls, excluding SES's per-mail price: the ring-time config
lookup, process, complete, and the e-mail work each completion triggers (the first send by
the completing request, the outbox's stream record; the e-mail job only when the e-mail is
still open when that record arrives, which is not the typical call). us-east-1 list prices,
Lambda arm64 at 128 MB, HTTP API, DynamoDB on demand, SQS standard, CloudWatch Logs, X-Ray.

Every DynamoDB figure comes from the byte sizes of the items our code wrote for a typical
call, captured from moto by infra/tests/test_large_call.py::test_typical_call_items
(CALL_ITEMS_OUT=path): a 5 KB process transcript and a 5 KB final transcript of restaurant
dialogue, one notification address, the e-mail sent at the first attempt. Sizes follow AWS's
rules (ddb_items.py). Each write is billed at the larger of the item before and after, one
write unit per KB started; a write that changes an attribute the byRestaurant index projects
also writes the index item.

    cost_model.py [--items call-items.json] [--bench bench-results.json] [--markdown out.md]
                  [--tracing Active|PassThrough] [--calls-per-month N]
                  [--rate-limit-wru N] [--platform-log-bytes N|-1]
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import ddb_items  # noqa: E402

DEFAULT_ITEMS = HERE / "results" / "call-items-2026-12-03.json"

# us-east-1 list prices (USD).
LAMBDA_GB_SECOND_ARM = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
HTTP_API_REQUEST = 1.00 / 1e6
DDB_WRITE_UNIT = 0.625 / 1e6
DDB_READ_UNIT = 0.125 / 1e6
SQS_REQUEST = 0.40 / 1e6
LOGS_PER_GB = 0.50
XRAY_TRACE = 5.00 / 1e6
MEMORY_GB = 128 / 1024

# template.yaml's defaults of the parameters the bill depends on (test_bench_units checks them).
TEMPLATE_DEFAULTS = {"TracingMode": "PassThrough", "PlatformLogLevel": "WARN"}

# What byRestaurant projects besides its keys (template.yaml, domain::call::LISTED_ATTRIBUTES).
INDEX_KEYS = ("callId", "restaurantId", "listKey")
LISTED = ("startedAt", "callerNumber", "status", "analysis", "duration", "emailStatus",
          "expiresAt")

# Warm handler durations (ms) when no bench results are given: the ring bench's
# restaurant-config p50 at a 128 MB CPU share (results/ring-2026-12-02-after.md), the
# others the e2e run's `request handled` durations on moto scaled to DynamoDB's few-ms
# latency. Lambda compute is ~$0.0017 per million invocations per ms: these barely matter.
DEFAULT_MS = {"restaurant-config": 6, "process-call": 12, "complete-call": 40,
              "email-sender (stream)": 5}

# Bytes our functions log per invocation at RUST_LOG=info, measured in the e2e run's
# watch.log (JSON lines: one `request handled` each, plus `call processed`, `call
# completed` and `call e-mail sent`; the e-mail sender logs nothing when all is well).
APP_LOG_BYTES = {"restaurant-config": 280, "process-call": 623, "complete-call": 880,
                 "email-sender (stream)": 0}
# Lambda's own lines per invocation in the text log format: START (~75 B), END (~55 B),
# REPORT (~190 B), and with Active tracing the REPORT's XRAY TraceId/SegmentId (~95 B).
PLATFORM_LOG_BYTES = 320
PLATFORM_XRAY_BYTES = 95


def from_json(v):
    if isinstance(v, dict):
        if set(v) == {"__b64__"}:
            return base64.b64decode(v["__b64__"])
        return {k: from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [from_json(x) for x in v]
    return v


def resize_transcripts(captured: dict, ratio: float) -> None:
    """Both transcript items as if their compact text deflated only `ratio` times."""
    for item in (captured["after_process"]["transcript"], captured["after_email"]["final"]):
        compact = sum(len(t["message"].encode()) + 2
                      for t in ddb_items.decode_transcript(item["t"]["B"]))
        item["t"] = {"B": b"\x02" + b"\0" * int(compact / ratio)}
    captured["after_email"]["transcript"] = captured["after_process"]["transcript"]


def index_item(item: dict) -> dict:
    """The byRestaurant index's copy of a call item."""
    return {k: v for k, v in item.items() if k in INDEX_KEYS + LISTED}


def states(captured: dict) -> dict[str, dict]:
    """The call item after each write of a typical call. After process and after the
    e-mail are captured; between them, the completion's: the captured end state with the
    e-mail as the completion writes it, already claimed by the completing request (status
    sending, no message id, claimId: 32 hex digits, claimedUntil: epoch ms, attempt 1).
    `completed` (the same without the claim) is the old layout's completion, which a
    separate claim write followed."""
    done = captured["after_email"]["call"]
    completed = copy.deepcopy(done)
    email = completed["email"]["M"]
    email.pop("messageId", None)
    email["status"] = {"S": "sending"}
    email["attempts"] = {"N": "0"}
    completed["emailStatus"] = {"S": "sending"}
    claimed = copy.deepcopy(completed)
    claimed["email"]["M"].update({"claimId": {"S": "0" * 32},
                                  "claimedUntil": {"N": "1764730000123"},
                                  "attempts": {"N": "1"}})
    return {"processed": captured["after_process"]["call"], "completed": completed,
            "claimed": claimed, "sent": done}


def index_changed(before: dict | None, after: dict) -> bool:
    return before is None or index_item(before) != index_item(after)


@dataclass
class Line:
    function: str
    what: str
    wru: float = 0.0
    rru: float = 0.0
    sqs: int = 0
    note: str = ""


@dataclass
class Model:
    lines: list[Line] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)


def write(before: dict | None, after: dict) -> int:
    size = max(ddb_items.item_size(before) if before else 0, ddb_items.item_size(after))
    return ddb_items.write_units(size)


def ddb_work(captured: dict, rate_limit_wru: float) -> Model:
    """Every DynamoDB and SQS request of one typical call, with its units."""
    s = states(captured)
    transcript = captured["after_process"]["transcript"]
    final = captured["after_email"]["final"]
    restaurant = captured["restaurant"]
    m = Model()
    m.sizes = {f"call item, {k}": ddb_items.item_size(v) for k, v in s.items()}
    m.sizes["index item, sent"] = ddb_items.item_size(index_item(s["sent"]))
    m.sizes["process transcript item"] = ddb_items.item_size(transcript)
    m.sizes["final transcript item"] = ddb_items.item_size(final)
    m.sizes["restaurant item"] = ddb_items.item_size(restaurant)
    rest_read = ddb_items.read_units(ddb_items.item_size(restaurant), consistent=False)
    L = m.lines.append

    def gsi(fn, what, before, after):
        if index_changed(before, after):
            L(Line(fn, f"index write: {what}", wru=ddb_items.write_units(
                ddb_items.item_size(index_item(after)))))

    for fn in ("restaurant-config", "process-call", "complete-call"):
        L(Line(fn, "rate-limit counter (UpdateItem)", wru=rate_limit_wru,
               note="the lead's rate_limits.rs; input"))
    L(Line("restaurant-config", "restaurant by phone (GetItem, eventual)", rru=rest_read))
    L(Line("process-call", "restaurant (GetItem, eventual)", rru=rest_read))
    L(Line("process-call", "transcript item (conditional PutItem)", wru=write(None, transcript)))
    L(Line("process-call", "call item (conditional PutItem)", wru=write(None, s["processed"])))
    gsi("process-call", "insert", None, s["processed"])
    L(Line("complete-call", "call (GetItem, consistent)",
           rru=ddb_items.read_units(ddb_items.item_size(s["processed"]), consistent=True)))
    L(Line("complete-call", "restaurant: recipients (GetItem, eventual)", rru=rest_read))
    L(Line("complete-call", "final transcript item (PutItem)", wru=write(None, final)))
    # The completion write is also the completing request's claim on the e-mail; the
    # e-mail is rendered from the restaurant and final transcript already in hand.
    L(Line("complete-call", "completion + e-mail claim (UpdateItem)",
           wru=write(s["processed"], s["claimed"])))
    gsi("complete-call", "completion", s["processed"], s["claimed"])
    L(Line("complete-call", "e-mail sent (UpdateItem)", wru=write(s["claimed"], s["sent"])))
    gsi("complete-call", "e-mail status", s["claimed"], s["sent"])
    # The stream's batching window (2 s) holds the completion record until the completing
    # request has usually sent the e-mail: the consumer reads the call, finds it sent and
    # queues no job (an e-mail still open gets one: 3 SQS requests, an invocation, a read).
    L(Line("email-sender (stream)", "call (GetItem, consistent): e-mail sent, no job",
           rru=ddb_items.read_units(ddb_items.item_size(s["sent"]), consistent=True),
           note="stream reads by Lambda are free; transcript items' records are filtered out"))
    return m


def old_layout_wru(captured: dict, rate_limit_wru: float) -> dict[str, float]:
    """The same call's write units in the layout before issue 12: both transcripts inline as
    lists of maps, the index projecting ALL (every write of the record writes the index too)."""
    s = states(captured)

    def inline(turns: list[dict]) -> dict:
        return {"L": [{"M": {"role": {"S": t["role"]}, "message": {"S": t["message"]}}}
                      for t in turns]}

    process = inline(ddb_items.decode_transcript(captured["after_process"]["transcript"]["t"]["B"]))
    final = inline(ddb_items.decode_transcript(captured["after_email"]["final"]["t"]["B"]))

    def old(item: dict, with_final: bool) -> dict:
        item = copy.deepcopy(item)
        for k in ("emailStatus", "duration", "finalTranscriptTag"):
            item.pop(k, None)
        item["transcript"] = process
        if with_final:
            item["completion"]["M"]["finalTranscript"] = final
        return item

    p, c = old(s["processed"], False), old(s["completed"], True)
    cl, sent = old(s["claimed"], True), old(s["sent"], True)
    # Each base write plus the index's copy of the whole item (ALL).
    base = write(None, p) + write(p, c) + write(c, cl) + write(cl, sent)
    index = sum(ddb_items.write_units(ddb_items.item_size(i)) for i in (p, c, cl, sent))
    return {"counters": 3 * rate_limit_wru, "record": base, "index": index,
            "total": 3 * rate_limit_wru + base + index,
            "item_after_email": ddb_items.item_size(sent)}


def xray_traces_per_call(tracing: str, calls_per_month: float, invocations: int) -> float:
    """Traces recorded per call with Lambda's tracing mode. Active samples by the default
    rule: the first request each second, then 5 % (so the share falls with volume);
    PassThrough records nothing here (HTTP APIs don't sample)."""
    if tracing != "Active":
        return 0.0
    rate = calls_per_month * invocations / (30 * 86400)
    sampled = min(rate, 1.0) + 0.05 * max(0.0, rate - 1.0)
    return invocations * sampled / rate


def compute(captured: dict, durations: dict[str, float], *, tracing: str = "Active",
            calls_per_month: float = 1e6, rate_limit_wru: float = 1.0,
            platform_log_bytes: int | None = None, original: dict | None = None) -> dict:
    m = ddb_work(captured, rate_limit_wru)
    functions = list(DEFAULT_MS)
    http = ("restaurant-config", "process-call", "complete-call")
    platform = platform_log_bytes if platform_log_bytes is not None else (
        PLATFORM_LOG_BYTES + (PLATFORM_XRAY_BYTES if tracing == "Active" else 0))
    rows = []
    for fn in functions:
        ms = durations.get(fn, DEFAULT_MS[fn])
        mine = [x for x in m.lines if x.function == fn]
        wru = sum(x.wru for x in mine)
        rru = sum(x.rru for x in mine)
        sqs = sum(x.sqs for x in mine)
        log_bytes = APP_LOG_BYTES[fn] + platform
        rows.append({
            "function": fn, "ms": ms, "wru": wru, "rru": rru, "sqs": sqs,
            "log_bytes": log_bytes,
            "http_api": HTTP_API_REQUEST * 1e6 if fn in http else 0.0,
            "lambda_requests": LAMBDA_REQUEST * 1e6,
            "lambda_compute": max(1, math.ceil(ms)) / 1000 * MEMORY_GB * LAMBDA_GB_SECOND_ARM
            * 1e6,
            "dynamodb": (wru * DDB_WRITE_UNIT + rru * DDB_READ_UNIT) * 1e6,
            "sqs_cost": sqs * SQS_REQUEST * 1e6,
            "logs": log_bytes / 1e9 * LOGS_PER_GB * 1e6,
        })
    traces = xray_traces_per_call(tracing, calls_per_month, len(functions))
    components = {
        "HTTP API requests": sum(r["http_api"] for r in rows),
        "Lambda requests": sum(r["lambda_requests"] for r in rows),
        "Lambda compute (128 MB arm64)": sum(r["lambda_compute"] for r in rows),
        "DynamoDB writes": sum(r["wru"] for r in rows) * DDB_WRITE_UNIT * 1e6,
        "DynamoDB reads": sum(r["rru"] for r in rows) * DDB_READ_UNIT * 1e6,
        "SQS requests": sum(r["sqs_cost"] for r in rows),
        "CloudWatch Logs ingestion": sum(r["logs"] for r in rows),
        f"X-Ray ({tracing})": traces * XRAY_TRACE * 1e6,
    }
    old = old_layout_wru(original or captured, rate_limit_wru)
    return {"old": old, "rows": rows, "lines": m.lines, "sizes": m.sizes,
            "components": components,
            "total": sum(components.values()), "traces_per_call": traces,
            "wru": sum(r["wru"] for r in rows), "rru": sum(r["rru"] for r in rows)}


def markdown(result: dict, inputs: dict) -> str:
    out = ["| component | $ per million calls |", "|---|---:|"]
    for name, dollars in result["components"].items():
        out.append(f"| {name} | {dollars:.2f} |")
    out.append(f"| **total (SES's per-mail price excluded)** | **{result['total']:.2f}** |")
    out += ["", "| function | warm ms | WRU | RRU | SQS req | log bytes | $ DynamoDB | $ total |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["rows"]:
        total = (r["http_api"] + r["lambda_requests"] + r["lambda_compute"] + r["dynamodb"]
                 + r["sqs_cost"] + r["logs"])
        out.append(f"| {r['function']} | {r['ms']:g} | {r['wru']:g} | {r['rru']:g} | "
                   f"{r['sqs']} | {r['log_bytes']} | {r['dynamodb']:.2f} | {total:.2f} |")
    out += ["", "| request | function | WRU | RRU | SQS |", "|---|---|---:|---:|---:|"]
    for x in result["lines"]:
        out.append(f"| {x.what} | {x.function} | {x.wru:g} | {x.rru:g} | {x.sqs} |")
    out += ["", "| item (typical call) | bytes |", "|---|---:|"]
    for k, v in result["sizes"].items():
        out.append(f"| {k} | {v} |")
    old = result["old"]
    out += ["", f"Before issue 12 (transcripts inline, index ALL) the same call wrote "
            f"{old['total']:g} WRU (${old['total'] * DDB_WRITE_UNIT * 1e6:.2f}): counters "
            f"{old['counters']:g}, record {old['record']:g}, index {old['index']:g}; its record "
            f"was {old['item_after_email']} bytes once the e-mail was sent. Now: "
            f"{result['wru']:g} WRU (${result['wru'] * DDB_WRITE_UNIT * 1e6:.2f})."]
    out += ["", "Inputs: " + ", ".join(f"{k}={v}" for k, v in inputs.items())]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=Path, default=DEFAULT_ITEMS)
    p.add_argument("--bench", type=Path, help="bench-results.json (warm_p50_ms per function)")
    # Defaults: the template's (TracingMode PassThrough; PlatformLogLevel WARN drops Lambda's
    # START/END/REPORT lines) and a key far below its rate limit (an instance admits a tenth of
    # it before it writes the counter). Model the other settings with these flags.
    p.add_argument("--tracing", default=TEMPLATE_DEFAULTS["TracingMode"],
                   choices=["Active", "PassThrough"])
    p.add_argument("--calls-per-month", type=float, default=1e6)
    p.add_argument("--rate-limit-wru", type=float, default=0.0,
                   help="counter write units per request: 0 below a tenth of the key's limit "
                        "per instance and minute, 1 above")
    p.add_argument("--platform-log-bytes", type=int,
                   default=0 if TEMPLATE_DEFAULTS["PlatformLogLevel"] == "WARN" else None,
                   help="Lambda's own log bytes per invocation (default: none, as at "
                        "PlatformLogLevel WARN; omit with --platform-log-bytes -1 for INFO)")
    p.add_argument("--transcript-ratio", type=float,
                   help="re-size both transcript items as if deflate shrank the compact text "
                        "only this many times (the captured dialogue repeats: ~5.9x)")
    p.add_argument("--markdown", type=Path)
    a = p.parse_args(argv)
    if a.platform_log_bytes is not None and a.platform_log_bytes < 0:
        a.platform_log_bytes = None
    captured = from_json(json.loads(a.items.read_text()))
    original = copy.deepcopy(captured)
    if a.transcript_ratio:
        resize_transcripts(captured, a.transcript_ratio)
    durations = {}
    if a.bench:
        for f in json.loads(a.bench.read_text()):
            durations[f["function"]] = f["warm_p50_ms"]
        for part in ("stream", "job"):
            if "email-sender" in durations:
                durations.setdefault(f"email-sender ({part})", durations["email-sender"])
    inputs = {"transcript_ratio": a.transcript_ratio or "as captured", "tracing": a.tracing,
              "calls_per_month": f"{a.calls_per_month:g}",
              "rate_limit_wru": a.rate_limit_wru,
              "platform_log_bytes": "START/END/REPORT lines" if a.platform_log_bytes is None
              else a.platform_log_bytes}
    result = compute(captured, durations, tracing=a.tracing, calls_per_month=a.calls_per_month,
                     rate_limit_wru=a.rate_limit_wru, platform_log_bytes=a.platform_log_bytes,
                     original=original)
    text = markdown(result, inputs)
    if a.markdown:
        a.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
