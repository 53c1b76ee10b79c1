"""End-to-end: the fault matrix of issue 8 (RELIABILITY.md). Every workflow that
writes to more than one place, under every fault AWS produces at each point
where it can hurt: an injected error, a timeout (a `hang` past the function's
scaled timeout), a crash (the process aborts), a lost response (the AWS call
applied, its answer lost), throttling, a conflict, a stale read, and duplicate
delivery (the same SQS job twice, a replayed stream record, a repeated HTTP
request). Each row drives its workflow to quiescence and checks the end state:

- every webhook delivery ends `succeeded` or `failed` with its attempts
  recorded (failed: its job in the webhook dead-letter queue), never `pending`;
- a receiver never sees a `webhook-id` twice, except when the process died
  between the receiver's 2xx and the record of it (rows marked "window");
- every completed call with recipients gets exactly one e-mail, except when
  the process died between SES accepting it and the record of that, or SES's
  answer was lost (rows marked "window": the duplicates are counted);
- every call's e-mail status ends terminal (`sent`, `failed`);
- no update is lost; no 5xx reaches a client for a fault a retry absorbs.

Rows run concurrently, each with its own restaurant, key, webhook and receiver,
and faults `match=` its own ids. Rows that crash or hang a queue consumer run
alone against that consumer (a crash takes the whole batch down with it, and
another row's delivery in that batch would be charged with the crash).

The fault points exist only in debug builds (infra/FAULTS.md); the proxy rules
are infra/fault_proxy.py's. The matrix printed at the end must equal the one in
RELIABILITY.md, every row green."""
from __future__ import annotations

import concurrent.futures
import json
import os
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import reliability_kit as kit
from helpers import (
    LOGS,
    REPO,
    Hit,
    Receiver,
    call_body,
    down,
    flaky,
    gone,
    ok,
    register,
    send_test,
    stored_transcripts,
    wait_for,
)
from reliability_kit import (
    DISPATCHER_TIMEOUT,
    FANOUT_TIMEOUT,
    SES,
    SETTLE,
    Drain,
    ProxyCtl,
    create_key,
    create_restaurant,
    deliveries_of,
    email_of,
    get_item,
    http,
    scan,
    send_job,
    wait_deliveries_terminal,
    wait_email_terminal,
)

pytestmark = pytest.mark.e2e

DOC = REPO / "RELIABILITY.md"
COLD = 5.0  # EVENT_SOURCE_COLD_START_SECONDS: a possibly cold invocation gets this much more
HANG_DISPATCHER = int(DISPATCHER_TIMEOUT + COLD + 1)  # past the scaled timeout, even when cold
HANG_FANOUT = int(FANOUT_TIMEOUT + COLD + 1)
HANG_HTTP = 3  # an HTTP function held, then killed: the client sees its request fail
# A request whose function dies gets no answer from cargo lambda watch; API Gateway would answer
# 502/504 once the function's Timeout (10 s) has passed: a client gives up about then.
DEAD = 12.0
RESERVATION = [
    {"role": "agent", "message": "Thanks for calling, how can I help?"},
    {"role": "user", "message": "hi I'd like to book a table for four this friday at 7pm"},
]
WEBHOOK_RETRIES = 3  # WEBHOOK_RETRY_SCHEDULE=1,2,3 in infra/test.sh: 4 attempts in all
SENT_VALUE = '{"S":"sent"}'  # how the e-mail status write spells its new status


# --- the matrix --------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a row saw; `settle` runs after SETTLE more seconds, to catch anything late
    (a redelivered job, a second e-mail) and returns the rest of the result."""

    result: str
    settle: Callable[[], str] | None = None


@dataclass
class Row:
    scenario: str
    fault: str
    point: str
    expected: str
    run: Callable[[Ctx], Outcome]
    exclusive: str | None = None  # the consumer this row crashes or hangs: it runs alone against it
    uses: tuple[str, ...] = ()    # consumers it needs (shared with other rows)
    cost: float = 20.0            # rough seconds, to start the long rows first
    result: str = ""
    passed: bool = False
    error: str = ""
    trace: str = ""
    seconds: float = 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.scenario, self.fault, self.point)


ROWS: list[Row] = []
DISPATCHER, SENDER = "webhook-dispatcher", "email-sender"


def row(scenario: str, fault: str, point: str, expected: str, *, exclusive: str | None = None,
        uses: tuple[str, ...] = (), cost: float = 20.0):
    def add(fn):
        ROWS.append(Row(scenario, fault, point, expected, fn, exclusive, uses, cost))
        return fn
    return add


def row_r(*args, **kw):
    """A row whose function also takes its own Row (to record measurements)."""
    def add(fn):
        holder: list[Row] = []
        row(*args, **kw)(lambda ctx: fn(ctx, holder[0]))
        holder.append(ROWS[-1])
        return fn
    return add


class Ctx:
    """What every row gets: the admin token, both fault controls, the drained queues."""

    def __init__(self, admin: str, faults, proxy: ProxyCtl):
        self.admin = admin
        self.faults = faults
        self.proxy = proxy
        self.webhook_dlq = Drain("WebhookDeadLetterQueue").start()
        self.email_dlq = Drain("EmailDeadLetterQueue").start()
        self.windows: dict[tuple, int] = {}  # row key -> duplicates seen in a documented window
        self._cleanup: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def later(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._cleanup.append(fn)

    def receiver(self, respond=ok) -> Receiver:
        r = Receiver(respond)
        self.later(r.close)
        return r

    def rule(self, service: str, operation: str, action: str, **spec) -> dict:
        rule = self.proxy.rule(service, operation, action, **spec)
        self.later(lambda: self.proxy.remove(rule))
        return rule

    def arm(
        self, point: str, action: str, match: str, function: str | None = None, always: bool = False
    ) -> Path:
        path = self.faults.arm(point, action, match=match, always=always, function=function)
        self.later(lambda: self.faults.disarm(path))
        return path

    def close(self):
        for fn in reversed(self._cleanup):
            try:
                fn()
            except Exception:  # noqa: BLE001 - best effort
                pass
        self.webhook_dlq.stop()
        self.email_dlq.stop()


class Consumers:
    """Readers-writer lock per queue consumer: rows that crash one run alone against it."""

    def __init__(self):
        self._cond = threading.Condition()
        self._shared: Counter[str] = Counter()
        self._exclusive: set[str] = set()

    def acquire(self, r: Row):
        with self._cond:
            if r.exclusive:
                while r.exclusive in self._exclusive or self._shared[r.exclusive]:
                    self._cond.wait()
                self._exclusive.add(r.exclusive)
            for name in r.uses:
                while name in self._exclusive:
                    self._cond.wait()
                self._shared[name] += 1

    def release(self, r: Row):
        with self._cond:
            if r.exclusive:
                self._exclusive.discard(r.exclusive)
            for name in r.uses:
                self._shared[name] -= 1
            self._cond.notify_all()


def fired(path: Path, timeout: float = 30.0) -> None:
    assert wait_for(lambda: not path.exists(), timeout, 0.1), (
        f"fault {path.parent.name} never fired"
    )


def rule_applied(ctx: Ctx, rule: dict, times: int = 1, timeout: float = 30.0) -> None:
    got = wait_for(lambda: ctx.proxy.applied(rule) >= times, timeout, 0.2)
    assert got, f"proxy rule {rule['action']} {rule['service']} {rule['operation']} " \
                f"match={rule.get('match')} applied {ctx.proxy.applied(rule)} of {times} times"


# --- worlds --------------------------------------------------------------------------------


def tenant(ctx: Ctx) -> tuple[str, str, str]:
    """A restaurant with one notification address, and a key restricted to it."""
    rst = create_restaurant(
        ctx.admin, notificationEmails=[f"owner-{uuid.uuid4().hex[:8]}@reliable.example"]
    )
    key = create_key(ctx.admin, [rst["restaurantId"]])
    return rst["restaurantId"], key["apiKey"], key["keyId"]


def new_call(key: str, rid: str, **overrides) -> str:
    r = http("POST", "/ivr/call", key, call_body(rid, **overrides))
    assert r.status == 200, r
    return r.data["callId"]


def complete(key: str, call_id: str, timeout: float = 30.0) -> kit.Resp:
    return http("POST", f"/ivr/call/{call_id}/complete", key, {"duration": 42}, timeout=timeout)


def one_record(external_id: str, call_id: str) -> None:
    recs = scan("CALLS_TABLE", externalCallId=external_id)
    assert [r["callId"] for r in recs] == [call_id], recs


def status_of(r: kit.Resp) -> str:
    return str(r.status) if r.status else "no answer"


def email_outcome(ctx: Ctx, r: Row | None, call_id: str, prefix: str, *, window: bool = False,
                  terminal: str = "sent", count: int = 1) -> Outcome:
    """Waits for a terminal e-mail status, then (after SETTLE) counts the e-mails."""
    state = wait_email_terminal(call_id, timeout=120)
    assert state["status"] == terminal, state

    def settle() -> str:
        n = len(SES.for_call(call_id, fresh=True))
        now = email_of(call_id)
        assert now.get("status") == terminal, f"the e-mail status moved on after {terminal}: {now}"
        if window:
            assert count <= n <= count + 1, f"{n} e-mails for {call_id}"
            ctx.windows[("e-mail",) + (r.key if r else ())] = n - count
        else:
            assert n == count, f"{n} e-mails for {call_id} (expected {count})"
        return f"{prefix}{n} e-mail{'s' if n != 1 else ''}, {terminal}"

    return Outcome(prefix, settle)


def webhook_world(ctx: Ctx, respond=ok, events=("settings.updated",)):
    rid, key, _ = tenant(ctx)
    rcv = ctx.receiver(respond)
    hook = register(kit.api(), key, rcv.url(), events)
    return rid, key, rcv, hook


def patch(ctx: Ctx, rid: str, body: dict, timeout: float = 30.0) -> kit.Resp:
    return http("PATCH", f"/ivr/restaurants/{rid}", ctx.admin, body, timeout=timeout)


def delivery_outcome(
    ctx: Ctx,
    r: Row | None,
    hook: dict,
    rcv: Receiver,
    prefix: str = "",
    *,
    count: int = 1,
    status: str = "succeeded",
    attempts: int | None = None,
    window: bool = False,
    claims: int | None = None,
    timeout: float = 120.0,
) -> Outcome:
    """Waits until the webhook's deliveries are terminal, then (after SETTLE) checks what
    the receiver saw: every request signed with the webhook's secret, each delivery's
    webhook-id once per recorded attempt (twice at most in a window), failed ones in the DLQ."""
    wid, secret = hook["webhookId"], hook["secret"]
    ds = wait_deliveries_terminal(wid, count, timeout)
    assert len(ds) == count, (
        f"{len(ds)} deliveries, expected {count}: {[d['deliveryId'] for d in ds]}"
    )
    for d in ds:
        assert d["status"] == status, d
        if attempts is not None:
            assert len(d.get("attempts") or []) == attempts, d
        if claims is not None:
            assert int(d.get("claims") or 0) == claims, (
                f"claims {d.get('claims')}, expected {claims}: {d}"
            )

    def settle() -> str:
        now = deliveries_of(wid)
        assert sorted(d["deliveryId"] for d in now) == sorted(d["deliveryId"] for d in ds), (
            "new deliveries appeared"
        )
        hits = rcv.snapshot()
        for h in hits:
            h.verify(secret)
        ids = Counter(h.webhook_id for h in hits)
        assert set(ids) <= {d["deliveryId"] for d in now}, f"unknown webhook-ids {ids}"
        extra = 0
        for d in now:
            assert d["status"] == status, f"the delivery moved on after {status}: {d}"
            recorded = len(d.get("attempts") or [])
            seen = ids[d["deliveryId"]]
            if status == "succeeded":
                assert recorded >= 1, d
                assert (
                    d["attempts"][-1].get("statusCode")
                    and 200 <= int(d["attempts"][-1]["statusCode"]) < 300
                ), d
            if window:
                assert recorded <= seen <= recorded + 1, (
                    f"receiver saw {seen}, {recorded} recorded: {d}"
                )
            else:
                assert seen == recorded, (
                    f"receiver saw {d['deliveryId']} {seen} times, {recorded} attempts recorded"
                )
            extra += seen - recorded
            if status == "failed":
                assert ctx.webhook_dlq.wait(d["deliveryId"], 30), (
                    f"{d['deliveryId']} failed but not in the DLQ"
                )
        if window and r is not None:
            ctx.windows[("webhook",) + r.key] = extra
        tries = sorted(len(d.get("attempts") or []) for d in now)
        return f"{prefix}{count} {status}, attempts {tries}, receiver {sum(ids.values())} request" \
               f"{'s' if sum(ids.values()) != 1 else ''}"

    return Outcome(prefix, settle)


# =============================================================================================
# 1. process call (POST /ivr/call)
# =============================================================================================

P = "process call"


def _process_point(action: str, point: str = "call.insert.after"):
    def run(ctx: Ctx) -> Outcome:
        rid, key, _ = tenant(ctx)
        body = call_body(rid)
        armed = ctx.arm(point, action, match=rid)
        first = http("POST", "/ivr/call", key, body, timeout=DEAD)
        fired(armed)
        assert first.failed_5xx, f"the client should see the function die: {first}"
        again = http("POST", "/ivr/call", key, body)
        assert again.status == 200, again
        assert again.data["duplicate"] is True, again
        one_record(body["callId"], again.data["callId"])
        return Outcome(f"{status_of(first)}, retry 200 duplicate, 1 record")
    return run


row(P, "error", "call.insert.after", "5xx; the retry gets 200 (same call); 1 record")(
    _process_point("error")
)
row(P, "crash", "call.insert.after", "5xx; the retry gets 200 (same call); 1 record")(
    _process_point("crash")
)
row(P, "timeout", "call.insert.after", "5xx; the retry gets 200 (same call); 1 record")(
    _process_point(f"hang {HANG_HTTP}"))


def _process_proxy(action: str):
    def run(ctx: Ctx) -> Outcome:
        rid, key, _ = tenant(ctx)
        body = call_body(rid)
        rule = ctx.rule("dynamodb", "PutItem", action, match=rid)
        r = http("POST", "/ivr/call", key, body)
        rule_applied(ctx, rule)
        assert r.status == 200, r
        one_record(body["callId"], r.data["callId"])
        return Outcome("200, 1 record")
    return run


row(P, "lost response", "proxy: DynamoDB PutItem (call)", "200; 1 record")(
    _process_proxy("lose_response")
)
row(P, "throttling", "proxy: DynamoDB PutItem (call)", "200; 1 record")(_process_proxy("throttle"))


@row(P, "duplicate", "HTTP request x3, concurrent", "all 200, one creates; 1 record")
def _process_dup(ctx: Ctx) -> Outcome:
    rid, key, _ = tenant(ctx)
    body = call_body(rid)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        rs = list(pool.map(lambda _: http("POST", "/ivr/call", key, body), range(3)))
    assert all(r.status == 200 for r in rs), [str(r) for r in rs]
    assert len({r.data["callId"] for r in rs}) == 1
    assert sorted(r.data.get("duplicate") for r in rs) == [False, True, True], [
        r.data.get("duplicate") for r in rs
    ]
    one_record(body["callId"], rs[0].data["callId"])
    return Outcome("3 x 200 (1 new, 2 duplicate), 1 record")


@row(P, "crash", "call.extend.after", "5xx; the retry gets 200; the longer transcript is kept")
def _process_extend(ctx: Ctx) -> Outcome:
    rid, key, _ = tenant(ctx)
    body = call_body(rid, transcript="Customer: hi")
    call_id = new_call(key, rid, **{k: v for k, v in body.items() if k != "restaurantId"})
    armed = ctx.arm("call.extend.after", "crash", match=call_id)
    longer = dict(body, transcript=RESERVATION)
    first = http("POST", "/ivr/call", key, longer, timeout=DEAD)
    fired(armed)
    assert first.failed_5xx, first
    again = http("POST", "/ivr/call", key, longer)
    assert again.status == 200 and again.data["callId"] == call_id, again
    assert again.data["reason"] == "Reservation", again
    stored = get_item("CALLS_TABLE", "callId", call_id)
    assert stored["analysis"]["reason"] == "Reservation", stored["analysis"]
    return Outcome(f"{status_of(first)}, retry 200, Reservation transcript stored")


@row(P, "crash", "call.transcript.after",
     "5xx, no record; the retry gets 200 (creates it); 1 record, its transcript whole")
def _process_transcript_crash(ctx: Ctx) -> Outcome:
    rid, key, _ = tenant(ctx)
    body = call_body(rid, transcript=RESERVATION)
    armed = ctx.arm("call.transcript.after", "crash", match=rid)
    first = http("POST", "/ivr/call", key, body, timeout=DEAD)
    fired(armed)
    assert first.failed_5xx, first
    assert not scan("CALLS_TABLE", externalCallId=body["callId"]), "record stored before the crash"
    again = http("POST", "/ivr/call", key, body)
    assert again.status == 200 and again.data["duplicate"] is False, again
    assert again.data["reason"] == "Reservation", again
    call_id = again.data["callId"]
    one_record(body["callId"], call_id)
    process, _ = stored_transcripts(kit.client("dynamodb"), call_id)
    assert [t["message"] for t in process] == [t["message"] for t in RESERVATION], process
    return Outcome(f"{status_of(first)}, retry 200 new, 1 record, transcript whole")


# =============================================================================================
# 2. complete call with e-mail (POST /ivr/call/{callId}/complete)
# =============================================================================================

C = "complete call + e-mail"


def _complete_point(
    action: str,
    point: str,
    *,
    retry: bool,
    window: bool = False,
    function: str | None = None,
    stored_before: bool = True,
):
    def run(ctx: Ctx, r: Row) -> Outcome:
        rid, key, _ = tenant(ctx)
        call_id = new_call(key, rid)
        armed = ctx.arm(point, action, match=call_id, function=function)
        first = complete(key, call_id, timeout=DEAD)
        fired(armed)
        assert first.failed_5xx, f"the client should see the function die: {first}"
        if not stored_before:
            assert "completion" not in (get_item("CALLS_TABLE", "callId", call_id) or {}), (
                "completion stored"
            )
        prefix = f"{status_of(first)}, "
        if retry:
            again = complete(key, call_id)
            assert again.status == 200, again
            prefix += "retry 200; "
        return email_outcome(ctx, r, call_id, prefix, window=window)
    return run


row_r(
    C,
    "error",
    "call.complete.before",
    "5xx, nothing stored; the retry gets 200; 1 e-mail, sent",
    uses=(SENDER,),
)(_complete_point("error", "call.complete.before", retry=True, stored_before=False))
row_r(C, "crash", "call.complete.after", "5xx; no retry needed: the outbox sends 1 e-mail, sent",
      uses=(SENDER,))(_complete_point("crash", "call.complete.after", retry=False))
row_r(C, "timeout", "call.complete.after", "5xx; no retry needed: the outbox sends 1 e-mail, sent",
      uses=(SENDER,))(_complete_point(f"hang {HANG_HTTP}", "call.complete.after", retry=False))
row_r(C, "error", "call.complete.after", "5xx; the retry gets 200 (stored result); 1 e-mail, sent",
      uses=(SENDER,))(_complete_point("error", "call.complete.after", retry=True))
@row_r(C, "crash", "call.final.after",
       "5xx, no completion; the retry gets 200; 1 e-mail, sent; the final transcript whole",
       uses=(SENDER,))
def _complete_final_crash(ctx: Ctx, r: Row) -> Outcome:
    rid, key, _ = tenant(ctx)
    call_id = new_call(key, rid)
    body = {"duration": 42, "finalTranscript": RESERVATION}
    armed = ctx.arm("call.final.after", "crash", match=call_id)
    first = http("POST", f"/ivr/call/{call_id}/complete", key, body, timeout=DEAD)
    fired(armed)
    assert first.failed_5xx, first
    assert "completion" not in (get_item("CALLS_TABLE", "callId", call_id) or {}), "completed"
    again = http("POST", f"/ivr/call/{call_id}/complete", key, body)
    assert again.status == 200 and again.data["reason"] == "Reservation", again
    _, final = stored_transcripts(kit.client("dynamodb"), call_id)
    assert [t["message"] for t in final] == [t["message"] for t in RESERVATION], final
    return email_outcome(ctx, r, call_id, f"{status_of(first)}, retry 200, final whole; ")


row_r(
    C,
    "crash",
    "complete-call:email.claim.after",
    "5xx; 1 e-mail after the claim lease, sent",
    uses=(SENDER,),
    cost=30,
)(_complete_point("crash", "email.claim.after", retry=False, function="complete-call"))
row_r(
    C,
    "crash",
    "complete-call:email.ses.after",
    "5xx; 1 e-mail, or 2 (window: SES accepted, not recorded); sent",
    uses=(SENDER,),
    cost=30,
)(_complete_point("crash", "email.ses.after", retry=False, window=True, function="complete-call"))
row_r(C, "crash", "complete-call:email.status.after", "5xx; 1 e-mail, sent", uses=(SENDER,))(
    _complete_point("crash", "email.status.after", retry=False, function="complete-call")
)


def _complete_proxy(
    service: str,
    operation: str,
    action: str,
    needle: str | None = None,
    *,
    times: int = 1,
    window: bool = False,
):
    def run(ctx: Ctx, r: Row) -> Outcome:
        rid, key, _ = tenant(ctx)
        call_id = new_call(key, rid)
        match = [call_id, needle] if needle else call_id
        rule = ctx.rule(service, operation, action, match=match, times=times)
        done = complete(key, call_id)
        assert done.status == 200, done
        rule_applied(ctx, rule, times)
        return email_outcome(ctx, r, call_id, "200; ", window=window)
    return run


row_r(
    C,
    "lost response",
    "proxy: SES SendEmail",
    "200; 1 e-mail, or 2 (window: SES's answer lost); sent",
    uses=(SENDER,),
)(_complete_proxy("ses", "SendEmail", "lose_response", window=True))
row_r(
    C,
    "lost response",
    "proxy: DynamoDB completion write",
    "200; the outbox sends 1 e-mail, sent",
    uses=(SENDER,),
)(_complete_proxy("dynamodb", "*", "lose_response", "completedAt"))
row_r(C, "lost response", "proxy: DynamoDB e-mail status write", "200; 1 e-mail, sent",
      uses=(SENDER,))(_complete_proxy("dynamodb", "*", "lose_response", SENT_VALUE))
row_r(C, "throttling", "proxy: SES SendEmail", "200; 1 e-mail, sent",
      uses=(SENDER,))(_complete_proxy("ses", "SendEmail", "throttle"))
row_r(C, "throttling", "proxy: DynamoDB completion write", "200; 1 e-mail, sent",
      uses=(SENDER,))(_complete_proxy("dynamodb", "*", "throttle", "completedAt"))
row_r(C, "error", "proxy: DynamoDB e-mail status write x3", "200; 1 e-mail, sent (no second send)",
      uses=(SENDER,))(_complete_proxy("dynamodb", "*", "error", SENT_VALUE, times=3))


@row_r(C, "duplicate", "HTTP request x4, concurrent", "all 200; 1 e-mail, sent", uses=(SENDER,))
def _complete_dup(ctx: Ctx, r: Row) -> Outcome:
    rid, key, _ = tenant(ctx)
    call_id = new_call(key, rid)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        rs = list(pool.map(lambda _: complete(key, call_id), range(4)))
    assert all(x.status == 200 for x in rs), [str(x) for x in rs]
    return email_outcome(ctx, r, call_id, "4 x 200; ")


@row_r(
    C, "duplicate", "SQS e-mail job x2 during the first send", "200; 1 e-mail, sent", uses=(SENDER,)
)
def _complete_dup_job(ctx: Ctx, r: Row) -> Outcome:
    rid, key, _ = tenant(ctx)
    call_id = new_call(key, rid)
    slow = ctx.rule("ses", "SendEmail", "latency", latency_ms=2000, match=call_id)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(complete, key, call_id)
        rule_applied(ctx, slow)  # SES is busy with the first send now
        for _ in range(2):
            send_job("EmailQueue", json.dumps({"callId": call_id}))
        done = pending.result()
    assert done.status == 200, done
    return email_outcome(ctx, r, call_id, "200; ")


# =============================================================================================
# 3. e-mail retry (email-sender; the first SES attempt fails)
# =============================================================================================

E = "e-mail retry"


def _failing_first(ctx: Ctx) -> tuple[str, str, dict]:
    """A call whose first SES attempt fails (3 x 500: every try of the SDK)."""
    rid, key, _ = tenant(ctx)
    call_id = new_call(key, rid)
    first = ctx.rule("ses", "SendEmail", "error", match=call_id, times=3)
    return key, call_id, first


def _retry_point(action: str, point: str, *, window: bool = False):
    def run(ctx: Ctx, r: Row) -> Outcome:
        key, call_id, first = _failing_first(ctx)
        armed = ctx.arm(point, action, match=call_id, function=SENDER)
        done = complete(key, call_id)
        assert done.status == 200, done
        rule_applied(ctx, first, 3)
        fired(armed, 60)
        return email_outcome(ctx, r, call_id, "", window=window)
    return run


row_r(E, "crash", "email-sender:email.claim.after", "1 e-mail after the claim lease, sent",
      exclusive=SENDER, cost=35)(_retry_point("crash", "email.claim.after"))
row_r(E, "timeout", "email-sender:email.claim.after", "1 e-mail after the claim lease, sent",
      exclusive=SENDER, cost=35)(_retry_point(f"hang {HANG_DISPATCHER}", "email.claim.after"))
row_r(
    E,
    "crash",
    "email-sender:email.ses.after",
    "1 e-mail, or 2 (window: SES accepted, not recorded); sent",
    exclusive=SENDER,
    cost=35,
)(_retry_point("crash", "email.ses.after", window=True))
row_r(E, "error", "email-sender:email.status.after", "1 e-mail, sent",
      uses=(SENDER,), cost=30)(_retry_point("error", "email.status.after"))
row_r(E, "crash", "email-sender:email.job.before", "the stream record is retried; 1 e-mail, sent",
      exclusive=SENDER, cost=30)(_retry_point("crash", "email.job.before"))
row_r(
    E,
    "crash",
    "email-sender:email.job.after",
    "the stream record is retried (2 jobs); 1 e-mail, sent",
    exclusive=SENDER,
    cost=30,
)(_retry_point("crash", "email.job.after"))


@row_r(E, "throttling", "proxy: SES SendEmail (retry)", "1 e-mail, sent", uses=(SENDER,))
def _retry_throttle(ctx: Ctx, r: Row) -> Outcome:
    key, call_id, first = _failing_first(ctx)
    then = ctx.rule(
        "ses", "SendEmail", "throttle", match=call_id
    )  # applies once the first is used up
    assert complete(key, call_id).status == 200
    rule_applied(ctx, first, 3)
    rule_applied(ctx, then, 1, 60)
    return email_outcome(ctx, r, call_id, "")


@row_r(E, "lost response", "proxy: SQS SendMessage (e-mail job)", "1 e-mail, sent", uses=(SENDER,))
def _retry_lost_job(ctx: Ctx, r: Row) -> Outcome:
    key, call_id, first = _failing_first(ctx)
    lost = ctx.rule("sqs", "SendMessage", "lose_response", match=call_id)
    assert complete(key, call_id).status == 200
    rule_applied(ctx, first, 3)
    rule_applied(ctx, lost, 1, 60)
    return email_outcome(ctx, r, call_id, "")


@row_r(E, "duplicate", "SQS e-mail job x2 while queued", "1 e-mail, sent", uses=(SENDER,))
def _retry_dup_jobs(ctx: Ctx, r: Row) -> Outcome:
    key, call_id, first = _failing_first(ctx)
    assert complete(key, call_id).status == 200
    rule_applied(ctx, first, 3)
    for _ in range(2):
        send_job("EmailQueue", json.dumps({"callId": call_id}))
    return email_outcome(ctx, r, call_id, "")


@row_r(
    E,
    "error",
    "proxy: SES SendEmail, every attempt",
    "0 e-mails; failed after every attempt; job in the DLQ",
    cost=200,
)
def _retry_gives_up(ctx: Ctx, r: Row) -> Outcome:
    rid, key, _ = tenant(ctx)
    call_id = new_call(key, rid)
    ctx.rule("ses", "SendEmail", "error", match=call_id, times=-1)
    assert complete(key, call_id).status == 200
    state = wait_email_terminal(call_id, timeout=240)
    assert state["status"] == "failed", state
    assert ctx.email_dlq.wait(call_id, 60), f"the e-mail job of {call_id} is not in the e-mail DLQ"

    def settle() -> str:
        assert SES.for_call(call_id, fresh=True) == []
        assert email_of(call_id)["status"] == "failed"
        attempts = int(email_of(call_id).get("attempts") or 0)
        return f"0 e-mails, failed after {attempts} attempts, in the DLQ"

    return Outcome("", settle)


# =============================================================================================
# 4. restaurant update -> stream -> webhook jobs (restaurants PATCH, restaurant-events)
# =============================================================================================

R = "restaurant update → webhooks"
CHANGE = {"callHoursEnd": "22:00"}


def _update_point(action: str, point: str, *, http_fault: bool):
    def run(ctx: Ctx, r: Row) -> Outcome:
        rid, key, rcv, hook = webhook_world(ctx)
        armed = ctx.arm(point, action, match=rid)
        first = patch(ctx, rid, CHANGE, timeout=DEAD)
        prefix = ""
        if http_fault:
            fired(armed)
            assert first.failed_5xx, first
            again = patch(ctx, rid, CHANGE)
            assert again.status == 200, again
            prefix = f"{status_of(first)}, retry 200; "
        else:
            assert first.status == 200, first
            fired(armed, 60)
        return delivery_outcome(ctx, r, hook, rcv, prefix, attempts=1)
    return run


row_r(
    R,
    "error",
    "restaurant.update.after",
    "5xx; the retry gets 200; 1 delivery, succeeded, received once",
    uses=(DISPATCHER,),
)(_update_point("error", "restaurant.update.after", http_fault=True))
row_r(
    R,
    "crash",
    "restaurant.update.after",
    "5xx; the retry gets 200; 1 delivery, succeeded, received once",
    uses=(DISPATCHER,),
)(_update_point("crash", "restaurant.update.after", http_fault=True))
row_r(
    R,
    "error",
    "fanout.delivery.after",
    "the stream retries; 1 delivery, succeeded, received once",
    uses=(DISPATCHER,),
)(_update_point("error", "fanout.delivery.after", http_fault=False))
row_r(
    R,
    "crash",
    "fanout.delivery.after",
    "the stream retries; 1 delivery, succeeded, received once",
    uses=(DISPATCHER,),
)(_update_point("crash", "fanout.delivery.after", http_fault=False))
row_r(
    R,
    "crash",
    "fanout.job.after",
    "the stream retries (2 jobs); 1 delivery, succeeded, received once",
    uses=(DISPATCHER,),
)(_update_point("crash", "fanout.job.after", http_fault=False))
row_r(
    R,
    "timeout",
    "fanout.job.after",
    "the stream retries (2 jobs); 1 delivery, succeeded, received once",
    uses=(DISPATCHER,),
    cost=40,
)(_update_point(f"hang {HANG_FANOUT}", "fanout.job.after", http_fault=False))


def _update_proxy(action: str):
    def run(ctx: Ctx, r: Row) -> Outcome:
        rid, key, rcv, hook = webhook_world(ctx)
        rule = ctx.rule("dynamodb", "PutItem", action, match=hook["webhookId"])
        assert patch(ctx, rid, CHANGE).status == 200
        rule_applied(ctx, rule, 1, 60)
        return delivery_outcome(ctx, r, hook, rcv, attempts=1)
    return run


row_r(
    R,
    "lost response",
    "proxy: DynamoDB PutItem (delivery)",
    "1 delivery, succeeded, received once",
    uses=(DISPATCHER,),
)(_update_proxy("lose_response"))
row_r(R, "throttling", "proxy: DynamoDB PutItem (delivery)", "1 delivery, succeeded, received once",
      uses=(DISPATCHER,))(_update_proxy("throttle"))


@row_r(
    R, "duplicate", "stream record replayed", "no new delivery; received once", uses=(DISPATCHER,)
)
def _update_replay(ctx: Ctx, r: Row) -> Outcome:
    from event_sources import stream_event_record

    rid, key, rcv, hook = webhook_world(ctx)
    assert patch(ctx, rid, CHANGE).status == 200
    wait_deliveries_terminal(hook["webhookId"], 1)
    mine = [
        rec
        for rec in kit.stream_records("RESTAURANTS_TABLE")
        if rec["eventName"] == "MODIFY"
        and rec["dynamodb"].get("NewImage", {}).get("restaurantId", {}).get("S") == rid
        and rec["dynamodb"]["NewImage"].get("callHoursEnd", {}).get("S") == CHANGE["callHoursEnd"]
        and rec["dynamodb"].get("OldImage", {}).get("callHoursEnd", {}).get("S")
        != CHANGE["callHoursEnd"]
    ]
    assert len(mine) == 1, f"{len(mine)} stream records for the change of {rid}"
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    event = {"Records": [stream_event_record(mine[0], mine[0]["_arn"], region)]}
    for _ in range(2):
        status, result, error = kit.invoke("restaurant-events", event)
        assert status == 200 and not error and not (result or {}).get("batchItemFailures"), (
            status,
            result,
            error,
        )
    return delivery_outcome(ctx, r, hook, rcv, "replayed twice; ", attempts=1)


# =============================================================================================
# 5. webhook dispatch with retries (webhook-dispatcher)
# =============================================================================================

D = "webhook dispatch"


def _dispatch_point(action: str, point: str, *, window: bool = False, respond=ok, attempts: int = 1,
                    always: bool = False, status: str = "succeeded", claims: int | None = None):
    def run(ctx: Ctx, r: Row) -> Outcome:
        rid, key, rcv, hook = webhook_world(ctx, respond)
        armed = ctx.arm(point, action, match=hook["webhookId"], always=always)
        send_test(kit.api(), key, hook["webhookId"])
        if not always:
            fired(armed, 60)
        out = delivery_outcome(
            ctx, r, hook, rcv, status=status, attempts=attempts, window=window, claims=claims
        )
        if always:
            fired_n = len([f for f in ctx.faults.fired(point.split(":")[-1])])
            assert fired_n >= 3, f"{point} fired {fired_n} times"
            ctx.faults.disarm(armed)
        return out
    return run


row_r(D, "error", "dispatch.claim.after", "succeeded, received once",
      uses=(DISPATCHER,), cost=30)(_dispatch_point("error", "dispatch.claim.after"))
row_r(D, "crash", "dispatch.claim.after", "succeeded after the claim lease, received once",
      exclusive=DISPATCHER, cost=30)(_dispatch_point("crash", "dispatch.claim.after"))
row_r(
    D,
    "timeout",
    "dispatch.claim.after",
    "succeeded after the claim lease, received once",
    exclusive=DISPATCHER,
    cost=30,
)(_dispatch_point(f"hang {HANG_DISPATCHER}", "dispatch.claim.after"))
row_r(
    D,
    "crash",
    "dispatch.post.after",
    "succeeded; received once, or twice (window: 2xx not recorded)",
    exclusive=DISPATCHER,
    cost=30,
)(_dispatch_point("crash", "dispatch.post.after", window=True))
row_r(
    D,
    "error",
    "dispatch.post.after",
    "succeeded, received once (the record is retried in the function)",
    uses=(DISPATCHER,),
    cost=30,
)(_dispatch_point("error", "dispatch.post.after"))
row_r(D, "crash", "dispatch.record.after", "succeeded, received once",
      exclusive=DISPATCHER, cost=30)(_dispatch_point("crash", "dispatch.record.after"))
row_r(D, "error", "dispatch.record.after", "succeeded, received once",
      uses=(DISPATCHER,), cost=30)(_dispatch_point("error", "dispatch.record.after"))
row_r(
    D,
    "crash",
    "dispatch.record.after (receiver 500, then 200)",
    "succeeded after 2 attempts, each recorded, each received once",
    exclusive=DISPATCHER,
    cost=35,
)(_dispatch_point("crash", "dispatch.record.after", respond=flaky(1), attempts=2))
row_r(
    D,
    "crash",
    "dispatch.claim.after, every time",
    "failed after 3 claims, 0 attempts; job in the DLQ",
    exclusive=DISPATCHER,
    cost=60,
)(
    _dispatch_point(
        "crash", "dispatch.claim.after", always=True, attempts=0, status="failed", claims=3
    )
)


@row_r(
    D,
    "error",
    "receiver 500 every time",
    "failed after 4 attempts, each received once; job in the DLQ",
    uses=(DISPATCHER,),
    cost=30,
)
def _dispatch_down(ctx: Ctx, r: Row) -> Outcome:
    rid, key, rcv, hook = webhook_world(ctx, down)
    send_test(kit.api(), key, hook["webhookId"])
    return delivery_outcome(ctx, r, hook, rcv, status="failed", attempts=WEBHOOK_RETRIES + 1)


def _dispatch_record_proxy(action: str, times: int = 1, window: bool = False):
    """The fault hits the write that records the receiver's answer: armed by the receiver
    itself, on the first request (it knows the delivery id from the webhook-id header)."""
    def run(ctx: Ctx, r: Row) -> Outcome:
        armed: list[dict] = []

        def respond(hit: Hit) -> int:
            if hit.n == 1:
                armed.append(
                    ctx.rule(
                        "dynamodb",
                        "UpdateItem",
                        action,
                        match=[hit.webhook_id, "latencyMs"],
                        times=times,
                    )
                )
            return 204

        rid, key, rcv, hook = webhook_world(ctx, respond)
        send_test(kit.api(), key, hook["webhookId"])
        assert wait_for(lambda: armed, 60, 0.25), "no request reached the receiver"
        rule_applied(ctx, armed[0], times)
        return delivery_outcome(ctx, r, hook, rcv, window=window, attempts=None if window else 1)
    return run


row_r(D, "lost response", "proxy: DynamoDB attempt record", "succeeded, received once",
      uses=(DISPATCHER,))(_dispatch_record_proxy("lose_response"))
row_r(D, "throttling", "proxy: DynamoDB attempt record", "succeeded, received once",
      uses=(DISPATCHER,))(_dispatch_record_proxy("throttle"))
row_r(D, "error", "proxy: DynamoDB attempt record x3",
      "succeeded, never stuck pending; received once, or twice (window: 2xx not recorded)",
      uses=(DISPATCHER,), cost=35)(_dispatch_record_proxy("error", times=3, window=True))


@row_r(D, "duplicate", "SQS job x2 while the first is in flight", "succeeded, received once",
       uses=(DISPATCHER,), cost=30)
def _dispatch_dup_job(ctx: Ctx, r: Row) -> Outcome:
    def respond(hit: Hit) -> int:
        if hit.n == 1:
            send_job("WebhookQueue", json.dumps({"deliveryId": hit.webhook_id}))
            # Slow (within WEBHOOK_TIMEOUT_MS=2000): the copy arrives while this send holds
            # the claim.
            time.sleep(1.4)
        return 204

    rid, key, rcv, hook = webhook_world(ctx, respond)
    send_test(kit.api(), key, hook["webhookId"])
    return delivery_outcome(ctx, r, hook, rcv, attempts=1)


# =============================================================================================
# 6. API key rotation (POST /ivr/auth/api-key/{keyId}/rotate)
# =============================================================================================

K = "API key rotation"


def _fresh_key(ctx: Ctx) -> tuple[str, str]:
    k = create_key(ctx.admin)
    return k["keyId"], k["apiKey"]


def rotate_key(ctx: Ctx, key_id: str, timeout: float = 30.0) -> kit.Resp:
    return http(
        "POST",
        f"/ivr/auth/api-key/{key_id}/rotate",
        ctx.admin,
        {"gracePeriodSeconds": 600},
        timeout=timeout,
    )


def key_works(key: str) -> bool:
    return http("GET", "/ivr/webhooks", key).status == 200


def one_successor(key_id: str) -> dict:
    old = get_item("API_KEYS_TABLE", "keyId", key_id)
    family = [
        i for i in scan("API_KEYS_TABLE") if i.get("ownerId") == key_id and i["keyId"] != key_id
    ]
    assert len(family) == 1, f"{len(family)} successors of {key_id}"
    assert old.get("rotatedTo") == family[0]["keyId"], (old.get("rotatedTo"), family[0]["keyId"])
    return family[0]


def _rotate_point(action: str):
    def run(ctx: Ctx) -> Outcome:
        key_id, key = _fresh_key(ctx)
        armed = ctx.arm("key.rotate.after", action, match=key_id)
        first = rotate_key(ctx, key_id, timeout=DEAD)
        fired(armed)
        assert first.failed_5xx, first
        assert key_works(key), "the old key stopped working"
        one_successor(key_id)
        again = rotate_key(ctx, key_id)
        assert again.status == 409, again
        return Outcome(f"{status_of(first)}; old key works; 1 successor; retry 409")
    return run


row(K, "error", "key.rotate.after", "5xx; the old key keeps working; 1 successor; a retry is 409")(
    _rotate_point("error"))
row(K, "crash", "key.rotate.after", "5xx; the old key keeps working; 1 successor; a retry is 409")(
    _rotate_point("crash"))


def _rotate_proxy(action: str):
    def run(ctx: Ctx) -> Outcome:
        key_id, key = _fresh_key(ctx)
        rule = ctx.rule("dynamodb", "TransactWriteItems", action, match=key_id)
        r = rotate_key(ctx, key_id)
        rule_applied(ctx, rule)
        assert r.status == 201, r
        assert key_works(r.data["apiKey"]), "the new key does not work"
        assert key_works(key), "the old key stopped working during its grace period"
        assert one_successor(key_id)["keyId"] == r.data["keyId"]
        return Outcome("201; both keys work; 1 successor")
    return run


row(
    K,
    "conflict",
    "proxy: DynamoDB TransactWriteItems",
    "201 (retried); both keys work; 1 successor",
)(_rotate_proxy("conflict"))
row(K, "throttling", "proxy: DynamoDB TransactWriteItems", "201; both keys work; 1 successor")(
    _rotate_proxy("throttle"))
row(
    K,
    "lost response",
    "proxy: DynamoDB TransactWriteItems",
    "201 (same token, applied once); both work; 1 successor",
)(_rotate_proxy("lose_response"))


@row(
    K,
    "stale read",
    "proxy: DynamoDB GetItem (new key), eventually consistent",
    "the new key works at once",
)
def _rotate_stale(ctx: Ctx) -> Outcome:
    key_id, key = _fresh_key(ctx)
    r = rotate_key(ctx, key_id)
    assert r.status == 201, r
    stale = ctx.rule("dynamodb", "GetItem", "stale_read", match=r.data["keyId"], times=-1)
    ok = [http("GET", "/ivr/webhooks", r.data["apiKey"]) for _ in range(3)]
    ctx.proxy.remove(stale)
    assert [x.status for x in ok] == [200, 200, 200], [str(x) for x in ok]
    return Outcome("3 x 200 with the new key")


@row(K, "duplicate", "HTTP request x3, concurrent", "one 201, the others 409; 1 successor")
def _rotate_dup(ctx: Ctx) -> Outcome:
    key_id, key = _fresh_key(ctx)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        rs = list(pool.map(lambda _: rotate_key(ctx, key_id), range(3)))
    assert sorted(x.status for x in rs) == [201, 409, 409], [str(x) for x in rs]
    winner = next(x for x in rs if x.status == 201)
    assert one_successor(key_id)["keyId"] == winner.data["keyId"]
    assert key_works(winner.data["apiKey"])
    return Outcome("201, 409, 409; 1 successor")


# =============================================================================================
# 7. webhook secret rotation (POST /ivr/webhooks/{webhookId}/rotate-secret)
# =============================================================================================

S = "webhook secret rotation"
ROTATE_WRITE = "previousSecret"  # only the rotation's write carries it


def rotate_secret(key: str, webhook_id: str, timeout: float = 30.0) -> kit.Resp:
    return http(
        "POST",
        f"/ivr/webhooks/{webhook_id}/rotate-secret",
        key,
        {"gracePeriodSeconds": 600},
        timeout=timeout,
    )


def next_delivery_verifies(key: str, hook: dict, rcv: Receiver, secrets: list[str]) -> str:
    """A test event, checked against every secret the client was given (all in their grace)."""
    delivery_id = send_test(kit.api(), key, hook["webhookId"])
    hits = wait_for(lambda: [h for h in rcv.snapshot() if h.webhook_id == delivery_id], 60, 0.25)
    assert hits, f"test event {delivery_id} never arrived"
    for s in secrets:
        assert hits[0].verifies(s), (
            "the next delivery does not verify with a secret the client was given"
        )
    return f"next delivery verifies with {len(secrets)} secret{'s' if len(secrets) != 1 else ''}"


def _secret_point(action: str):
    def run(ctx: Ctx) -> Outcome:
        rid, key, rcv, hook = webhook_world(ctx)
        armed = ctx.arm("webhook.rotate.after", action, match=hook["webhookId"])
        first = rotate_secret(key, hook["webhookId"], timeout=DEAD)
        fired(armed)
        assert first.failed_5xx, first
        again = rotate_secret(key, hook["webhookId"])
        assert again.status == 200, again
        return Outcome(
            f"{status_of(first)}, retry 200; "
            + next_delivery_verifies(key, hook, rcv, [again.data["secret"]])
        )

    return run


row(
    S,
    "error",
    "webhook.rotate.after",
    "5xx; the retry gets 200; the next delivery verifies with its secret",
    uses=(DISPATCHER,),
)(_secret_point("error"))
row(
    S,
    "crash",
    "webhook.rotate.after",
    "5xx; the retry gets 200; the next delivery verifies with its secret",
    uses=(DISPATCHER,),
)(_secret_point("crash"))


def _secret_proxy(action: str):
    def run(ctx: Ctx) -> Outcome:
        rid, key, rcv, hook = webhook_world(ctx)
        rule = ctx.rule("dynamodb", "*", action, match=[hook["webhookId"], ROTATE_WRITE])
        r = rotate_secret(key, hook["webhookId"])
        rule_applied(ctx, rule)
        assert r.status == 200, r
        return Outcome(
            "200; " + next_delivery_verifies(key, hook, rcv, [r.data["secret"], hook["secret"]])
        )

    return run


row(
    S,
    "throttling",
    "proxy: DynamoDB rotation write",
    "200; the next delivery verifies with new and old secret",
    uses=(DISPATCHER,),
)(_secret_proxy("throttle"))
row(
    S,
    "lost response",
    "proxy: DynamoDB rotation write",
    "200; the next delivery verifies with new and old secret",
    uses=(DISPATCHER,),
)(_secret_proxy("lose_response"))


@row(
    S,
    "duplicate",
    "HTTP request x2, concurrent",
    "200 or 409; the next delivery verifies with every secret answered",
    uses=(DISPATCHER,),
)
def _secret_dup(ctx: Ctx) -> Outcome:
    rid, key, rcv, hook = webhook_world(ctx)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        rs = list(pool.map(lambda _: rotate_secret(key, hook["webhookId"]), range(2)))
    assert all(x.status in (200, 409) for x in rs) and any(x.status == 200 for x in rs), [
        str(x) for x in rs
    ]
    given = [x.data["secret"] for x in rs if x.status == 200]
    return Outcome(
        " and ".join(str(x.status) for x in rs)
        + "; "
        + next_delivery_verifies(key, hook, rcv, given)
    )


@row(S, "race", "disabled (410) while the rotation's write is delayed (proxy latency)",
     "409; the webhook stays disabled", uses=(DISPATCHER,))
def _secret_vs_disable(ctx: Ctx) -> Outcome:
    result = rotate_while_disabled(ctx.proxy, ctx.admin, ctx.later)
    return Outcome(result)


def rotate_while_disabled(proxy: ProxyCtl, admin: str, later: Callable) -> str:
    """Issue 8 failure 4: rotate-secret reads an active webhook; while its write is on the
    way (held by the proxy), the dispatcher disables the webhook (the receiver answers 410);
    then the rotation's write lands. The webhook must stay disabled, and the rotation be 409."""
    rcv = Receiver(gone)
    later(rcv.close)
    rst = create_restaurant(admin)
    key = create_key(admin, [rst["restaurantId"]])["apiKey"]
    hook = register(kit.api(), key, rcv.url(), ["settings.updated"])
    wid = hook["webhookId"]
    slow = proxy.rule("dynamodb", "*", "latency", latency_ms=9000, match=[wid, ROTATE_WRITE])
    later(lambda: proxy.remove(slow))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(rotate_secret, key, wid)
        assert wait_for(lambda: proxy.applied(slow) >= 1, 30, 0.05), "the rotation never wrote"
        send_test(
            kit.api(), key, wid
        )  # the receiver answers 410: the dispatcher disables the webhook
        disabled = wait_for(
            lambda: (
                (get_item("WEBHOOKS_TABLE", "webhookId", wid) or {}).get("status") == "disabled"
            ),
            8.5,
            0.05,
        )
        r = pending.result()
    assert disabled, "the webhook was not disabled while the rotation's write waited"
    final = get_item("WEBHOOKS_TABLE", "webhookId", wid)
    assert final["status"] == "disabled", (
        f"the rotation re-activated a disabled webhook (rotate answered {r})"
    )
    assert r.status == 409, f"rotate-secret on a webhook disabled meanwhile: {r}"
    return "409; still disabled"


# =============================================================================================
# running it
# =============================================================================================


def run_row(ctx: Ctx, consumers: Consumers, r: Row) -> Row:
    started = time.monotonic()
    outcome = None
    try:
        consumers.acquire(r)
        try:
            outcome = r.run(ctx)
        finally:
            consumers.release(r)
        if outcome.settle:
            time.sleep(SETTLE)
            r.result = outcome.settle()
        else:
            r.result = outcome.result
        r.passed = True
    except Exception as exc:  # noqa: BLE001 - every row reports, none stops the others
        r.error = f"{exc.__class__.__name__}: {exc}"
        r.result = "FAILED: " + r.error.splitlines()[0][:160]
        r.trace = traceback.format_exc()
    r.seconds = time.monotonic() - started
    return r


def table(rows: list[Row], results: bool = True) -> str:
    head = "| scenario | fault | point | expected | result |"
    lines = [head, "|---|---|---|---|---|"]
    for r in rows:
        mark = ("✅ " if r.passed else "❌ ") + r.result if results else "✅"
        lines.append(f"| {r.scenario} | {r.fault} | `{r.point}` | {r.expected} | {mark} |")
    return "\n".join(lines)


def doc_rows() -> dict[tuple[str, str, str], tuple[str, str]]:
    """The matrix table of RELIABILITY.md: (scenario, fault, point) -> (expected, result)."""
    out = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("scenario", "") or set(cells[0]) <= set("-: "):
            continue
        out[(cells[0], cells[1], cells[2].strip("`"))] = (cells[3], cells[4])
    return out


def test_reliability_md_holds_the_matrix_all_green():
    """The document and the code list the same rows, with the same expectations, all green."""
    doc = doc_rows()
    code = {r.key: r.expected for r in ROWS}
    assert len(code) == len(ROWS), "two rows share a scenario, fault and point"
    missing = sorted(set(code) - set(doc))
    extra = sorted(set(doc) - set(code))
    assert not missing, f"rows missing from RELIABILITY.md: {missing}"
    assert not extra, f"rows in RELIABILITY.md that the matrix does not run: {extra}"
    drift = {k: (doc[k][0], v) for k, v in code.items() if doc[k][0] != v}
    assert not drift, f"expected results differ (doc, code): {drift}"
    red = [k for k, (_, result) in doc.items() if not result.startswith("✅")]
    assert not red, f"rows not green in RELIABILITY.md: {red}"


def schedule(rows: list[Row]) -> tuple[list[Row], dict[str, list[Row]]]:
    """Shared rows for the pool, longest first but the rows sharing a consumer before the
    rest (so the lanes of rows that crash it can start early); exclusive rows by consumer."""
    lanes: dict[str, list[Row]] = {}
    for r in sorted((r for r in rows if r.exclusive), key=lambda r: -r.cost):
        lanes.setdefault(r.exclusive, []).append(r)
    shared = sorted((r for r in rows if not r.exclusive),
                    key=lambda r: (r.cost < 100, not r.uses, DISPATCHER not in r.uses, -r.cost))
    return shared, lanes


def test_fault_matrix(admin_token, faults, proxy, capsys):
    ctx = Ctx(admin_token, faults, ProxyCtl(proxy.url))
    consumers = Consumers()
    shared, lanes = schedule(ROWS)
    started = time.monotonic()
    try:
        with concurrent.futures.ThreadPoolExecutor(12) as pool, \
                concurrent.futures.ThreadPoolExecutor(max(1, len(lanes))) as lane_pool:
            futures = [pool.submit(run_row, ctx, consumers, r) for r in shared]
            futures += [lane_pool.submit(lambda rs=rs: [run_row(ctx, consumers, r) for r in rs])
                        for rs in lanes.values()]
            concurrent.futures.wait(futures)
    finally:
        ctx.close()
    elapsed = time.monotonic() - started
    windows = "\n".join(f"  {k[0]}: {k[1]} / {k[2]} / {k[3]}: {v} duplicate{'s' if v != 1 else ''}"
                        for k, v in sorted(ctx.windows.items()))
    slowest = ", ".join(
        f"{r.fault} {r.point} {r.seconds:.0f} s" for r in sorted(ROWS, key=lambda r: -r.seconds)[:3]
    )
    report = (
        f"\nFault matrix: {sum(r.passed for r in ROWS)}/{len(ROWS)} rows green in {elapsed:.0f} s "
        f"(slowest: {slowest})\n"
        + table(ROWS)
        + "\n\nDuplicate windows (measured):\n"
        + (windows or "  none")
        + "\n"
    )
    with capsys.disabled():
        print(report)
    out = LOGS
    out.mkdir(parents=True, exist_ok=True)
    (out / "reliability-matrix.md").write_text(report, encoding="utf-8")
    (out / "reliability-matrix.json").write_text(
        json.dumps(
            {"\x1f".join(r.key): ("✅ " if r.passed else "❌ ") + r.result for r in ROWS},
            ensure_ascii=False,
            indent=1,
        )
    )
    failed = [r for r in ROWS if not r.passed]
    assert not failed, "\n\n".join(
        f"{r.scenario} / {r.fault} / {r.point}: {r.error}\n{r.trace}" for r in failed
    )
