"""End-to-end: one regression test per failure of issue 8, each built to fail on the code
before the fix (recorded in RELIABILITY.md, "The eight failures"). They use the AWS fault
proxy (infra/fault_proxy.py) rather than fault points, so they need nothing compiled into
the functions: the proxy makes DynamoDB, SQS and SES fail, answer late, lose answers,
conflict or read stale, as AWS does. They run one after another (some block a stream or
take SES away for a call), each driving its workflow to quiescence."""
from __future__ import annotations

import concurrent.futures
import json
import time
import uuid

import pytest
import reliability_kit as kit
from helpers import (
    Hit,
    Receiver,
    call_body,
    ok,
    register,
    send_test,
    stored_transcripts,
    unique_phone,
    wait_for,
)
from reliability_kit import (
    LEASE,
    SES,
    SETTLE,
    VISIBILITY,
    Drain,
    ProxyCtl,
    create_key,
    create_restaurant,
    get_item,
    http,
    scan,
    stream_records,
    wait_email_terminal,
)
from test_reliability import RESERVATION, SENT_VALUE, complete, new_call, rotate_while_disabled

pytestmark = pytest.mark.e2e

MAX_WEBHOOKS_PER_KEY = 10
LONG = 3000  # characters: past DynamoDB's 2048-byte partition-key limit


@pytest.fixture
def ctl(proxy):
    """The proxy's control API (the `proxy` fixture clears every rule after the test)."""
    return ProxyCtl(proxy.url)


@pytest.fixture
def closing():
    things = []
    yield things.append
    for fn in reversed(things):
        try:
            fn()
        except Exception:  # noqa: BLE001 - best effort
            pass


def receiver(closing, respond=ok) -> Receiver:
    r = Receiver(respond)
    closing(r.close)
    return r


def restaurant_and_key(admin_token) -> tuple[str, str, str]:
    rst = create_restaurant(
        admin_token, notificationEmails=[f"owner-{uuid.uuid4().hex[:8]}@reliable.example"]
    )
    key = create_key(admin_token, [rst["restaurantId"]])
    return rst["restaurantId"], key["apiKey"], key["keyId"]


# --- 1 ----------------------------------------------------------------------------------------


def test_failure_1_a_delivery_whose_record_fails_is_retried_not_left_pending(
    admin_token, ctl, closing
):
    """The receiver answers 2xx, then recording that attempt fails (3 x 500: every try of the
    SDK). The job comes back after the visibility timeout; before the fix the claim was still
    fresh (120 s), the job was counted done and deleted, and the delivery stayed `pending`."""
    armed = []

    def respond(hit: Hit) -> int:
        if hit.n == 1:
            armed.append(
                ctl.rule(
                    "dynamodb", "UpdateItem", "error", times=3, match=[hit.webhook_id, "latencyMs"]
                )
            )
        return 204

    rid, key, _ = restaurant_and_key(admin_token)
    rcv = receiver(closing, respond)
    hook = register(kit.api(), key, rcv.url(), ["settings.updated"])
    delivery_id = send_test(kit.api(), key, hook["webhookId"])
    assert wait_for(lambda: armed, 60, 0.25), "the test event never reached the receiver"
    assert wait_for(lambda: ctl.applied(armed[0]) >= 3, 30, 0.25), "the attempt was never recorded"
    deadline = VISIBILITY + LEASE + 40
    d = wait_for(
        lambda: (
            (x := kit.delivery_of(delivery_id)) and x["status"] in ("succeeded", "failed") and x
        ),
        deadline,
        0.25,
    )
    now = kit.delivery_of(delivery_id)
    assert d, (
        f"delivery still {now['status']} {deadline:.0f} s after its receiver answered 2xx: {now}"
    )
    assert d["status"] == "succeeded" and len(d["attempts"]) == 1, d
    hits = [h for h in rcv.snapshot() if h.webhook_id == delivery_id]
    assert 1 <= len(hits) <= 2, f"{len(hits)} requests for one delivery"


# --- 2 ----------------------------------------------------------------------------------------


def test_failure_2_ses_accepted_but_status_write_failed_sends_one_email(admin_token, ctl):
    """SES accepts the e-mail; writing `sent` then fails (3 x 500). Before the fix the
    safety-net job found the e-mail still `sending` and sent it a second time."""
    rid, key, _ = restaurant_and_key(admin_token)
    call_id = new_call(key, rid)
    rule = ctl.rule("dynamodb", "UpdateItem", "error", times=3, match=[call_id, SENT_VALUE])
    done = complete(key, call_id)
    assert done.status == 200, done
    assert wait_for(lambda: ctl.applied(rule) >= 3, 30, 0.25), (
        "the e-mail status write never happened"
    )
    state = wait_email_terminal(call_id, timeout=90)
    assert state["status"] == "sent", state
    time.sleep(
        SETTLE
    )  # past the retry job's delay and a visibility timeout: it must find the e-mail sent
    assert len(SES.for_call(call_id, fresh=True)) == 1, "the owner got the e-mail more than once"


# --- 3 ----------------------------------------------------------------------------------------


def test_failure_3_email_sent_once_after_sqs_failed_during_an_ses_outage(admin_token, ctl):
    """SES is down for this call and queueing its e-mail job fails (3 x 500). Before the fix no
    job existed and the e-mail stayed `sending` for ever; the IVR already had its 200."""
    rid, key, _ = restaurant_and_key(admin_token)
    call_id = new_call(key, rid)
    ses_down = ctl.rule("ses", "SendEmail", "error", times=-1, match=call_id)
    sqs_down = ctl.rule("sqs", "SendMessage", "error", times=3, match=call_id)
    done = complete(key, call_id)
    assert done.status == 200, done
    assert wait_for(lambda: ctl.applied(sqs_down) >= 3 and ctl.applied(ses_down) >= 3, 60, 0.25), \
        f"SQS failed {ctl.applied(sqs_down)} times, SES {ctl.applied(ses_down)} times"
    time.sleep(3)  # SES stays down a little longer: retries (if any) fail
    assert SES.for_call(call_id, fresh=True) == []
    ctl.remove(ses_down)  # SES is back
    sent = wait_for(lambda: kit.email_of(call_id).get("status") == "sent", 90, 0.5)
    assert sent, f"the e-mail was never sent after SES came back: {kit.email_of(call_id)}"
    time.sleep(SETTLE)
    assert len(SES.for_call(call_id, fresh=True)) == 1


# --- 4 ----------------------------------------------------------------------------------------


def test_failure_4_a_transcript_extension_racing_a_completion_is_kept(admin_token, ctl):
    """A longer transcript arrives while the completion's write is on its way (held 4 s by
    the proxy). Before the fix the completion rewrote the whole record it had read and erased
    the extension the client had been told was stored."""
    rid, key, _ = restaurant_and_key(admin_token)
    body = call_body(rid, transcript="Customer: hi")
    first = http("POST", "/ivr/call", key, body)
    assert first.status == 200, first
    call_id = first.data["callId"]
    slow = ctl.rule("dynamodb", "*", "latency", latency_ms=4000, match=[call_id, "completedAt"])
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        completing = pool.submit(complete, key, call_id)
        assert wait_for(lambda: ctl.applied(slow) >= 1, 30, 0.05), "the completion never wrote"
        extended = http("POST", "/ivr/call", key, dict(body, transcript=RESERVATION))
        done = completing.result()
    assert extended.status == 200 and done.status == 200, (str(extended), str(done))
    told = extended.data["reason"]
    assert told == "Reservation", (
        f"the extension was not applied before the completion landed: {extended}"
    )
    stored = get_item("CALLS_TABLE", "callId", call_id)
    assert stored.get("completion"), "the completion was not stored"
    assert stored["analysis"]["reason"] == told, (
        f"the client was told {told!r}, the record says {stored['analysis']['reason']!r}: "
        "the extension was lost"
    )
    process, _ = stored_transcripts(kit.client("dynamodb"), call_id)
    assert any("table for four" in (t.get("message") or "") for t in process), process


def test_failure_4_rotating_a_secret_cannot_reactivate_a_disabled_webhook(
    admin_token, ctl, closing
):
    """rotate-secret read an active webhook; the dispatcher disabled it (410); the rotation's
    unconditional write then re-activated it, before the fix."""
    rotate_while_disabled(ctl, admin_token, closing)


# --- 5 ----------------------------------------------------------------------------------------


def test_failure_5_a_transaction_conflict_is_retried_not_a_500(admin_token, ctl):
    """DynamoDB cancels a transaction (TransactionConflict) when another one touches the same
    item at the same moment; a retry succeeds. Before the fix it was a 500: a restaurant PATCH
    that moves phone numbers, and a key rotation, each under one conflict."""
    wrong = []
    rid, _, _ = restaurant_and_key(admin_token)
    rule = ctl.rule("dynamodb", "TransactWriteItems", "conflict", match=rid)
    r = http("PATCH", f"/ivr/restaurants/{rid}", admin_token, {"phoneNumbers": [unique_phone()]})
    assert ctl.applied(rule) == 1, "the PATCH wrote no transaction"
    if r.status != 200:
        wrong.append(f"PATCH of phone numbers under one transaction conflict: {r}")
    else:
        owner = get_item("PHONE_NUMBERS_TABLE", "phoneNumber", r.data["phoneNumbers"][0])
        if (owner or {}).get("restaurantId") != rid:
            wrong.append(f"the new number is not the restaurant's: {owner}")

    k = create_key(admin_token)
    rule = ctl.rule("dynamodb", "TransactWriteItems", "conflict", match=k["keyId"])
    r = http(
        "POST", f"/ivr/auth/api-key/{k['keyId']}/rotate", admin_token, {"gracePeriodSeconds": 60}
    )
    assert ctl.applied(rule) == 1, "the rotation wrote no transaction"
    if r.status != 201:
        wrong.append(f"key rotation under one transaction conflict: {r}")
    elif http("GET", "/ivr/webhooks", r.data["apiKey"]).status != 200:
        wrong.append("the rotated key does not work")
    assert not wrong, "\n".join(wrong)


# --- 6 ----------------------------------------------------------------------------------------


def test_failure_6_a_fresh_key_works_at_once_though_reads_lag(admin_token, ctl):
    """Right after a write, an eventually consistent read may not see it yet (the proxy's
    `stale_read`). Before the fix the key's first lookup was eventually consistent: the new
    key was 401 (and cached as invalid)."""
    k = create_key(admin_token)
    stale = ctl.rule("dynamodb", "GetItem", "stale_read", times=-1, match=k["keyId"])
    rs = [http("GET", "/ivr/webhooks", k["apiKey"]) for _ in range(3)]
    ctl.remove(stale)
    assert [r.status for r in rs] == [200, 200, 200], [str(r) for r in rs]


def test_failure_6_the_webhook_cap_holds_under_concurrent_registrations(admin_token, ctl, closing):
    """12 registrations at once for one key, while the owner's webhook list (a GSI: never
    strongly consistent) reads stale. Before the fix each request counted through the index
    and all 12 were stored; the cap is 10."""
    k = create_key(admin_token)
    rcv = receiver(closing)
    stale = ctl.rule("dynamodb", "Query", "stale_read", times=-1, match=k["keyId"])
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        rs = list(
            pool.map(
                lambda i: http(
                    "POST",
                    "/ivr/webhooks/register",
                    k["apiKey"],
                    {"callbackUrl": rcv.url() + f"/{i}", "events": ["agent.updated"]},
                ),
                range(12),
            )
        )
    ctl.remove(stale)  # (a cap kept by a counter in the transaction never reads the index)
    stored = scan("WEBHOOKS_TABLE", ownerId=k["keyId"])
    created = [r for r in rs if r.status == 201]
    for w in stored:
        http("DELETE", f"/ivr/webhooks/{w['webhookId']}", k["apiKey"])
    assert not [r for r in rs if r.failed_5xx], [str(r) for r in rs if r.failed_5xx]
    assert len(stored) <= MAX_WEBHOOKS_PER_KEY, (
        f"{len(stored)} webhooks stored for one key (cap {MAX_WEBHOOKS_PER_KEY})"
    )
    assert len(created) == len(stored), f"{len(created)} answered 201, {len(stored)} stored"
    assert all(r.status in (409, 422) for r in rs if r.status != 201), [str(r) for r in rs]


# --- 7 ----------------------------------------------------------------------------------------


def test_failure_7_path_ids_past_dynamodbs_key_limits_are_404(admin_token, closing):
    """A 3000-character id in a path went to GetItem; DynamoDB refuses keys over 2048 bytes
    (ValidationException: the proxy enforces it as AWS does), so any caller could make 500s."""
    rid, key, _ = restaurant_and_key(admin_token)
    rcv = receiver(closing)
    wid = register(kit.api(), key, rcv.url(), ["agent.updated"])["webhookId"]
    call, rst, wh, msg, kid = (
        "call_" + "0" * LONG,
        "rst_" + "0" * LONG,
        "wh_" + "0" * LONG,
        "msg_" + "0" * LONG,
        "A" * LONG,
    )
    routes = [
        ("GET", f"/ivr/restaurants/{rst}", admin_token, None),
        ("PATCH", f"/ivr/restaurants/{rst}", admin_token, {"name": "x"}),
        ("GET", f"/ivr/restaurants/{rst}/calls", admin_token, None),
        ("GET", f"/ivr/calls/{call}", admin_token, None),
        ("DELETE", f"/ivr/auth/api-key/{kid}", admin_token, None),
        ("POST", f"/ivr/auth/api-key/{kid}/rotate", admin_token, {}),
        ("GET", f"/ivr/restaurant/{rst}/config", key, None),
        ("POST", f"/ivr/call/{call}/complete", key, {"duration": 1}),
        ("GET", f"/ivr/webhooks/{wh}/deliveries", key, None),
        ("POST", f"/ivr/webhooks/{wh}/test", key, None),
        ("POST", f"/ivr/webhooks/{wh}/rotate-secret", key, {}),
        ("DELETE", f"/ivr/webhooks/{wh}", key, None),
        ("POST", f"/ivr/webhooks/{wh}/deliveries/msg_{'0' * 24}/replay", key, None),
        ("POST", f"/ivr/webhooks/{wid}/deliveries/{msg}/replay", key, None),
    ]
    wrong = []
    for method, path, cred, body in routes:
        r = http(method, path, cred, body)
        if r.status != 404 or (r.body or {}).get("error", {}).get("code") != "NOT_FOUND":
            wrong.append(f"{method} {path[:60]}…: {r.status} {r.text[:120]}")
    # The same restaurant id in a body (POST /ivr/call resolves it the same way).
    r = http("POST", "/ivr/call", key, call_body(rst))
    if r.status not in (404, 422):
        wrong.append(f"POST /ivr/call with restaurantId rst_+{LONG}: {r.status} {r.text[:120]}")
    assert not wrong, "\n".join(wrong)


# --- 8 ----------------------------------------------------------------------------------------


def test_failure_8_a_stream_record_that_keeps_failing_lands_in_the_failure_queue(
    admin_token, ctl, closing
):
    """Fan-out of a restaurant change fails every time (the delivery can't be stored). After
    the stream's retries the record must end in the on-failure destination (StreamFailureQueue,
    alarmed), not be dropped without a trace as before the fix."""
    import local_stack

    template = local_stack.load_template()
    resources = template["Resources"]
    assert resources.get("StreamFailureQueue", {}).get("Type") == "AWS::SQS::Queue", \
        "template.yaml has no StreamFailureQueue"
    for fn in ("RestaurantEventsFunction", "EmailSenderFunction"):
        streams = [
            e["Properties"]
            for e in resources[fn]["Properties"]["Events"].values()
            if e["Type"] == "DynamoDB"
        ]
        assert streams, f"{fn} consumes no stream"
        for props in streams:
            dest = (props.get("DestinationConfig") or {}).get("OnFailure", {}).get("Destination")
            assert dest == {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}, f"{fn}: OnFailure {dest}"
    alarms = [r for r in resources.values() if r.get("Type") == "AWS::CloudWatch::Alarm"
              and "StreamFailureQueue" in json.dumps(r.get("Properties"))]
    assert alarms, "no alarm watches StreamFailureQueue"

    failures = Drain("StreamFailureQueue").start()
    closing(failures.stop)
    rid, key, _ = restaurant_and_key(admin_token)
    rcv = receiver(closing)
    hook = register(kit.api(), key, rcv.url(), ["settings.updated"])
    broken = ctl.rule("dynamodb", "PutItem", "error", times=-1, match=hook["webhookId"])
    t0 = time.monotonic()
    assert (
        http("PATCH", f"/ivr/restaurants/{rid}", admin_token, {"callHoursEnd": "21:30"}).status
        == 200
    )
    mine = wait_for(
        lambda: [
            r
            for r in stream_records("RESTAURANTS_TABLE")
            if r["eventName"] == "MODIFY" and r["dynamodb"]["NewImage"]["restaurantId"]["S"] == rid
        ],
        30,
        0.25,
    )
    assert len(mine) == 1, mine
    seq = int(mine[0]["dynamodb"]["SequenceNumber"])

    def covering():
        for body in failures.since(t0):
            info = json.loads(body).get("DDBStreamBatchInfo") or {}
            if (
                int(info.get("startSequenceNumber", -1))
                <= seq
                <= int(info.get("endSequenceNumber", -1))
            ):
                return json.loads(body)
        return None

    record = wait_for(covering, 90, 0.5)
    ctl.remove(broken)
    assert failures.error is None, failures.error
    assert record, f"no failure record for sequence {seq} in pulsara-StreamFailureQueue"
    assert "restaurant-events" in record["requestContext"]["functionArn"], record
    assert kit.deliveries_of(hook["webhookId"]) == []
    assert rcv.snapshot() == []
