#!/usr/bin/env python3
"""Dollars per million IVR calls (config + process + complete, plus the e-mail
each completion sends), on Lambda arm64 128 MB, HTTP API, DynamoDB on-demand,
SES and SQS at us-east-1 list prices, from measured warm durations.

    cost_model.py target/bench-results.json
"""

from __future__ import annotations

import json
import math
import sys

# us-east-1 list prices (USD).
LAMBDA_GB_SECOND_ARM = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
HTTP_API_REQUEST = 1.00 / 1e6
DDB_WRITE_UNIT = 0.625 / 1e6
DDB_READ_UNIT = 0.125 / 1e6
SES_EMAIL = 0.10 / 1000
SQS_REQUEST = 0.40 / 1e6
MEMORY_GB = 128 / 1024

# DynamoDB request units per IVR call, from what each handler does (item
# sizes: a call record with a ~5 KB transcript, ~10 KB once completed).
DDB = {
    # rate-limit counter (1 WRU) + restaurant read (0.5 RRU, eventually consistent)
    "restaurant-config": {"wru": 1, "rru": 0.5},
    # counter + restaurant read + conditional put of the call (5 WRU)
    "process-call": {"wru": 1 + 5, "rru": 0.5},
    # counter + consistent call read (3 RRU) + restaurant read + conditional put (10 WRU)
    # + e-mail status update (10 WRU)
    "complete-call": {"wru": 1 + 10 + 10, "rru": 3 + 0.5},
    # the safety-net job: call read (consistent) only, mail already sent
    "email-sender": {"wru": 0, "rru": 3},
}
SQS_PER_CALL = 3  # send, receive, delete of the safety-net e-mail job
HTTP_FUNCTIONS = ["restaurant-config", "process-call", "complete-call"]


def billed_ms(ms: float) -> int:
    return max(1, math.ceil(ms))


def main(path: str) -> int:
    figures = {f["function"]: f for f in json.load(open(path))}
    rows, total = [], 0.0
    for name in HTTP_FUNCTIONS + ["email-sender"]:
        f = figures[name]
        # Lambda bills the handler's wall time; warm p50 measured locally
        # includes moto's latency, a pessimistic stand-in for DynamoDB's.
        ms = f["warm_p50_ms"]
        compute = billed_ms(ms) / 1000 * MEMORY_GB * LAMBDA_GB_SECOND_ARM
        requests = LAMBDA_REQUEST + (HTTP_API_REQUEST if name in HTTP_FUNCTIONS else 0)
        ddb = DDB[name]["wru"] * DDB_WRITE_UNIT + DDB[name]["rru"] * DDB_READ_UNIT
        cost = compute + requests + ddb
        rows.append((name, ms, compute * 1e6, requests * 1e6, ddb * 1e6, cost * 1e6))
        total += cost
    ses_sqs = SES_EMAIL + SQS_PER_CALL * SQS_REQUEST
    total += ses_sqs
    print(
        f"{'per million IVR calls':<22}{'warm ms':>9}{'Lambda $':>11}"
        f"{'requests $':>12}{'DynamoDB $':>12}{'total $':>10}"
    )
    for name, ms, c, r, d, t in rows:
        print(f"{name:<22}{ms:>9.2f}{c:>11.2f}{r:>12.2f}{d:>12.2f}{t:>10.2f}")
    print(f"{'SES e-mail + SQS':<22}{'':>9}{'':>11}{'':>12}{'':>12}{ses_sqs * 1e6:>10.2f}")
    print(f"{'TOTAL':<22}{'':>9}{'':>11}{'':>12}{'':>12}{total * 1e6:>10.2f}")
    print(
        "\n(SES at $0.10 per 1000 mails dominates; without e-mail the API side costs "
        f"${(total - SES_EMAIL) * 1e6:.2f} per million calls.)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
