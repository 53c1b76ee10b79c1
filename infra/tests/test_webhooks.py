"""End-to-end: outbound webhooks. Registration and its URL rules, admin edits
of restaurants -> DynamoDB stream -> restaurant-events -> webhook queue ->
webhook-dispatcher -> a local receiver, Standard Webhooks signatures (checked
with the `standardwebhooks` package), retries, the dead-letter queue, disabling,
secret rotation, test events and replays.

The stack runs with WEBHOOK_ALLOW_LOOPBACK_HTTP=true (receivers on
http://127.0.0.1), WEBHOOK_RETRY_SCHEDULE=1,2,3 and WEBHOOK_DISABLE_AFTER_SECONDS=4
(see infra/test.sh)."""
from __future__ import annotations

import base64
import os
import re
import secrets
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from helpers import ALL_EVENTS, Hit, assert_error, deliveries_of, send_test, wait_for
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

pytestmark = pytest.mark.e2e

RETRY_SCHEDULE = [float(s) for s in os.environ.get("WEBHOOK_RETRY_SCHEDULE", "1,2,3").split(",")]
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
DLQ_NAME = "pulsara-WebhookDeadLetterQueue"
MAX_WEBHOOKS_PER_KEY = 10

# The receiver (helpers.Receiver, the `receiver` fixture) answers by the first path segment:
# `/ok/...` 204, `/flaky/...` 500 for the first 3 requests to that path then 200, `/down/...`
# 500, `/gone/...` 410.


# --- helpers -------------------------------------------------------------------------------


_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_time(value: str) -> datetime:
    m = _RFC3339.match(value or "")
    assert m, f"not an RFC 3339 timestamp: {value!r}"
    frac = (m.group(3) or ".0")[1:7].ljust(6, "0")
    tz = "+00:00" if m.group(4) in ("Z", "z") else m.group(4)
    return datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}.{frac}{tz}")


def assert_recent(value: str, slack: float = 600):
    t = parse_time(value)
    assert abs((datetime.now(UTC) - t).total_seconds()) < slack, value


def random_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def webhooks_of(api, key) -> list[dict]:
    r = api.get("/ivr/webhooks", key)
    assert r.status_code == 200, r.text
    return r.json()["data"]["webhooks"]


def webhook_view(api, key, webhook_id) -> dict | None:
    return next((w for w in webhooks_of(api, key) if w["webhookId"] == webhook_id), None)


def delivery(api, key, webhook_id, delivery_id) -> dict | None:
    return next(
        (d for d in deliveries_of(api, key, webhook_id, 100) if d["deliveryId"] == delivery_id),
        None,
    )


def wait_delivery(api, key, webhook_id, timeout: float = 60.0, **match) -> dict:
    """The first delivery whose fields equal `match` (e.g. deliveryId=…, status=…)."""
    def find():
        for d in deliveries_of(api, key, webhook_id, 100):
            if all(d.get(k) == v for k, v in match.items()):
                return d
        return None

    d = wait_for(find, timeout)
    assert d, (
        f"no delivery {match} within {timeout:.0f} s: {deliveries_of(api, key, webhook_id, 100)}"
    )
    return d


def signatures(hit: Hit) -> list[str]:
    return hit.headers["webhook-signature"].split(" ")


def expected_signature(secret: str, hit: Hit) -> str:
    ts = datetime.fromtimestamp(int(hit.headers["webhook-timestamp"]), UTC)
    return Webhook(secret).sign(hit.headers["webhook-id"], ts, hit.body.decode())


def assert_clean(hit: Hit, forbidden: list[str]):
    """No secret, transcript or other field value anywhere in the request."""
    text = hit.body.decode().lower()
    for word in forbidden:
        assert word.lower() not in text, f"payload contains {word!r}: {hit.body!r}"


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def tenant(make_restaurant, make_key):
    """A fresh restaurant and a key that sees only it (no other test's edits reach its webhooks)."""
    restaurant = make_restaurant()
    key = make_key(restaurantIds=[restaurant["restaurantId"]])["apiKey"]
    return restaurant, key


# --- 1. events from admin edits ------------------------------------------------------------


def test_admin_edits_deliver_signed_events(
    api, admin_token, make_restaurant, make_key, receiver, register
):
    restaurant = make_restaurant()
    rid = restaurant["restaurantId"]
    key = make_key()["apiKey"]
    path = f"/ok/all-{uuid.uuid4().hex[:8]}"
    r = api.post(
        "/ivr/webhooks/register",
        key,
        json={
            "callbackUrl": receiver.url(path),
            "events": ALL_EVENTS,
            "description": "config cache refresh",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["success"] is True and body["message"] == "Webhook registered successfully"
    hook = body["data"]
    try:  # registered by hand to check the whole response; deleted in `finally`
        assert hook["webhookId"]
        assert hook["callbackUrl"] == receiver.url(path)
        assert sorted(hook["events"]) == sorted(ALL_EVENTS)
        assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > len("whsec_") + 16
        assert hook["status"] == "active"
        assert_recent(hook["createdAt"])
        secret = hook["secret"]

        # Listing shows it, never with a secret.
        listed = api.get("/ivr/webhooks", key)
        assert listed.status_code == 200, listed.text
        mine = [w for w in listed.json()["data"]["webhooks"] if w["webhookId"] == hook["webhookId"]]
        assert len(mine) == 1 and mine[0]["status"] == "active"
        assert mine[0]["callbackUrl"] == receiver.url(path) and sorted(mine[0]["events"]) == sorted(
            ALL_EVENTS
        )
        assert "whsec_" not in listed.text and secret[len("whsec_"):] not in listed.text

        # Only what a webhook subscribed to, and only restaurants its key may see.
        agent_path = f"/ok/agent-only-{uuid.uuid4().hex[:8]}"
        agent_only = register(key, receiver.url(agent_path), ["agent.updated"])
        other = make_restaurant()
        restricted_path = f"/ok/restricted-{uuid.uuid4().hex[:8]}"
        restricted_key = make_key(restaurantIds=[other["restaurantId"]])["apiKey"]
        register(restricted_key, receiver.url(restricted_path), ALL_EVENTS)

        agent_v2 = {
            "elevenlabs_agent_id": "agent_luigi_v2",
            "voice_id": "tnSpp4vdxKPjI9w0GnoV",
            "tools": ["end_call"],
        }
        agent_v3 = {
            "elevenlabs_agent_id": "agent_luigi_v3",
            "voice_id": "tnSpp4vdxKPjI9w0GnoV",
            "tools": ["end_call", "forward_call"],
        }
        edits = [
            {"callHoursEnd": "22:00"},
            {"agent": agent_v2},
            {"name": "Luigi's Two"},
            {
                "callHoursEnd": "21:00",
                "aiEnabled": False,
                "agent": agent_v3,
                "name": "Luigi's Three",
            },
        ]
        for edit in edits:
            r = api.patch(f"/ivr/restaurants/{rid}", admin_token, json=edit)
            assert r.status_code == 200, r.text

        expected = Counter([
            ("settings.updated", ("callHoursEnd",)),
            ("agent.updated", ("agent",)),
            ("restaurant.updated", ("name",)),
            ("settings.updated", ("aiEnabled", "callHoursEnd")),
            ("agent.updated", ("agent",)),
            ("restaurant.updated", ("name",)),
        ])

        def ours(
            h: Hit,
        ) -> bool:  # earlier tests' edits may still be on their way to an unrestricted key
            try:
                return h.payload["data"]["restaurantId"] == rid
            except (ValueError, KeyError, TypeError):
                return True  # malformed: let the checks below report it

        receiver.wait(path, sum(expected.values()), timeout=60, where=ours)
        receiver.wait(agent_path, 2, timeout=30, where=ours)
        time.sleep(2)  # anything extra (a duplicate, an event per field) would show up by now
        hits = [h for h in receiver.to(path) if ours(h)]
        agent_hits = [h for h in receiver.to(agent_path) if ours(h)]

        got = Counter(
            (h.payload["type"], tuple(sorted(h.payload["data"]["changedFields"]))) for h in hits
        )
        assert got == expected, got
        assert [h.payload["type"] for h in agent_hits] == ["agent.updated", "agent.updated"]
        assert receiver.to(restricted_path) == [], (
            "a key restricted to another restaurant got events"
        )

        forbidden = [
            secret,
            secret[len("whsec_") :],
            agent_only["secret"],
            key,
            "transcript",
            "luigi",
            "tnSpp4vdxKPjI9w0GnoV",
            "owner@luigis.example",
            restaurant["forwardingNumberE164"],
            *restaurant["phoneNumbers"],
        ]
        for h in hits + agent_hits:
            for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
                assert h.headers.get(name), (name, h.headers)
            assert h.headers.get("content-type", "").startswith("application/json")
            payload = h.verify(secret if h.path == path else agent_only["secret"])
            assert set(payload) == {"type", "timestamp", "data"}, payload
            assert_recent(payload["timestamp"])
            assert payload["data"]["restaurantId"] == rid
            assert_clean(h, forbidden)
            with pytest.raises(WebhookVerificationError):
                h.verify(random_secret())
        assert len({h.headers["webhook-id"] for h in hits}) == len(hits), "one delivery per event"

        # The deliveries log: newest first, all succeeded with one attempt each.
        def settled():
            ds = deliveries_of(api, key, hook["webhookId"], 100)
            return (
                ds if len(ds) >= len(hits) and all(d["status"] == "succeeded" for d in ds) else None
            )

        all_listed = wait_for(settled, 30)
        assert all_listed, deliveries_of(api, key, hook["webhookId"], 100)
        kinds = Counter(d["eventType"] for d in all_listed)
        assert all(kinds[t] >= 2 for t in ALL_EVENTS), kinds
        assert "webhook.test" not in kinds
        created = [parse_time(d["createdAt"]) for d in all_listed]
        assert created == sorted(created, reverse=True), "newest first"
        for d in all_listed:
            assert d["status"] == "succeeded" and len(d["attempts"]) == 1, d
            a = d["attempts"][0]
            assert 200 <= a["statusCode"] < 300 and a["error"] is None and a["latencyMs"] >= 0
            assert_recent(a["at"])
        assert len(deliveries_of(api, key, hook["webhookId"], 2)) == 2
    finally:
        api.delete(f"/ivr/webhooks/{hook['webhookId']}", key)


def test_deleted_webhook_is_gone(api, tenant, receiver, register):
    restaurant, key = tenant
    hook = register(key, receiver.url("/ok/delete-me"))
    r = api.delete(f"/ivr/webhooks/{hook['webhookId']}", key)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == {"webhookId": hook["webhookId"], "deleted": True}
    assert webhook_view(api, key, hook["webhookId"]) is None
    assert_error(api.delete(f"/ivr/webhooks/{hook['webhookId']}", key), 404, "NOT_FOUND")
    assert_error(api.post(f"/ivr/webhooks/{hook['webhookId']}/test", key), 404, "NOT_FOUND")
    assert_error(api.get(f"/ivr/webhooks/{hook['webhookId']}/deliveries", key), 404, "NOT_FOUND")


# --- 2-4. retries, dead letters, disabling -------------------------------------------------


def test_flaky_receiver_gets_the_event_on_the_fourth_attempt(
    api, admin_token, tenant, receiver, register
):
    restaurant, key = tenant
    path = f"/flaky/{uuid.uuid4().hex[:8]}"
    hook = register(key, receiver.url(path), ["settings.updated"])
    r = api.patch(
        f"/ivr/restaurants/{restaurant['restaurantId']}",
        admin_token,
        json={"callHoursEnd": "23:00"},
    )
    assert r.status_code == 200, r.text

    hits = receiver.wait(path, MAX_ATTEMPTS, timeout=30 + sum(RETRY_SCHEDULE) * 2)
    assert len({h.headers["webhook-id"] for h in hits}) == 1, "retries keep the webhook-id"
    for h in hits:
        payload = h.verify(hook["secret"])
        assert payload["type"] == "settings.updated" and payload["data"]["changedFields"] == [
            "callHoursEnd"
        ]
    assert len({h.body for h in hits}) == 1, "every attempt sends the same payload"
    gaps = [b.at - a.at for a, b in zip(hits, hits[1:], strict=False)]
    for gap, delay in zip(gaps, RETRY_SCHEDULE, strict=False):
        assert delay - 0.2 <= gap <= delay * 1.1 + 10, (gaps, RETRY_SCHEDULE)
    assert gaps[-1] > gaps[0], f"gaps between attempts should grow: {gaps}"

    d = wait_delivery(
        api, key, hook["webhookId"], timeout=30, eventType="settings.updated", status="succeeded"
    )
    attempts = d["attempts"]
    assert [a["statusCode"] for a in attempts] == [500] * (MAX_ATTEMPTS - 1) + [200], attempts
    assert attempts[-1]["error"] is None
    assert all(isinstance(a["latencyMs"], int) and a["latencyMs"] >= 0 for a in attempts)
    at = [parse_time(a["at"]) for a in attempts]
    assert at == sorted(at)
    time.sleep(1.5)
    assert len(receiver.to(path)) == MAX_ATTEMPTS, "nothing after the success"


def dead_letters_for(delivery_id: str, timeout: float = 30.0) -> list[dict]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=DLQ_NAME)["QueueUrl"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # Others' dead letters (earlier tests) stay hidden for a while, so the
        # next receive pages on through the queue instead of seeing them again.
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60
        )
        mine = [m for m in got.get("Messages") or [] if delivery_id in m["Body"]]
        if mine:
            for m in mine:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            return mine
    return []


def test_failing_receiver_ends_failed_in_the_dlq_and_disabled(api, tenant, receiver, register):
    restaurant, key = tenant
    path = f"/down/{uuid.uuid4().hex[:8]}"
    hook = register(key, receiver.url(path), ["settings.updated"])
    delivery_id = send_test(api, key, hook["webhookId"])

    d = wait_delivery(
        api,
        key,
        hook["webhookId"],
        timeout=30 + sum(RETRY_SCHEDULE) * 2,
        deliveryId=delivery_id,
        status="failed",
    )
    assert len(d["attempts"]) == MAX_ATTEMPTS, d
    assert all(a["statusCode"] == 500 for a in d["attempts"]), d
    hits = receiver.to(path)
    assert len(hits) == MAX_ATTEMPTS
    assert len({h.headers["webhook-id"] for h in hits}) == 1
    for h in hits:
        assert h.verify(hook["secret"])["type"] == "webhook.test"

    dead = dead_letters_for(delivery_id)
    assert dead, f"no message for {delivery_id} in {DLQ_NAME}"

    view = wait_for(
        lambda: (
            (w := webhook_view(api, key, hook["webhookId"])) and w["status"] == "disabled" and w
        ),
        15,
    )
    assert view, webhook_view(api, key, hook["webhookId"])
    assert view["disabledReason"], view
    time.sleep(1.5)
    assert len(receiver.to(path)) == MAX_ATTEMPTS, "no attempts after failing for good"


def test_410_disables_at_once(api, tenant, receiver, register):
    restaurant, key = tenant
    path = f"/gone/{uuid.uuid4().hex[:8]}"
    hook = register(key, receiver.url(path), ALL_EVENTS)
    delivery_id = send_test(api, key, hook["webhookId"])

    view = wait_for(
        lambda: (
            (w := webhook_view(api, key, hook["webhookId"])) and w["status"] == "disabled" and w
        ),
        30,
    )
    assert view, webhook_view(api, key, hook["webhookId"])
    assert view["disabledReason"], view
    d = wait_delivery(
        api, key, hook["webhookId"], timeout=15, deliveryId=delivery_id, status="failed"
    )
    assert [a["statusCode"] for a in d["attempts"]] == [410], d
    time.sleep(RETRY_SCHEDULE[0] * 1.1 + 1)  # past the first retry's time
    assert len(receiver.to(path)) == 1, "a 410 is not retried"


# --- 5. registration rules -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url, events, field",
    [
        ("https://127.0.0.1/x", ALL_EVENTS, "callbackUrl"),
        ("https://10.0.0.5/x", ALL_EVENTS, "callbackUrl"),
        ("https://[::1]/x", ALL_EVENTS, "callbackUrl"),
        ("https://169.254.169.254/latest/meta-data", ALL_EVENTS, "callbackUrl"),
        ("https://localhost/x", ALL_EVENTS, "callbackUrl"),
        ("http://example.com/x", ALL_EVENTS, "callbackUrl"),
        ("ftp://example.com", ALL_EVENTS, "callbackUrl"),
        ("https://hooks.example.com/" + "a" * 3000, ALL_EVENTS, "callbackUrl"),
        ("https://hooks.example.com/x", [], "events"),
        ("https://hooks.example.com/x", ["restaurant.deleted"], "events[0]"),
    ],
    ids=[
        "loopback",
        "private",
        "ipv6-loopback",
        "metadata",
        "localhost",
        "plain-http",
        "ftp",
        "3kb-url",
        "no-events",
        "unknown-event",
    ],
)
def test_registration_is_validated(api, make_key, url, events, field):
    key = make_key()["apiKey"]
    r = api.post("/ivr/webhooks/register", key, json={"callbackUrl": url, "events": events})
    assert_error(r, 422, "VALIDATION_ERROR", field)
    assert webhooks_of(api, key) == []


def test_at_most_ten_webhooks_per_key_family(api, admin_token, make_key, receiver, register):
    created = make_key()
    key = created["apiKey"]
    ids = [
        register(key, receiver.url(f"/ok/n{i}"), ["agent.updated"])["webhookId"]
        for i in range(MAX_WEBHOOKS_PER_KEY)
    ]
    r = api.post(
        "/ivr/webhooks/register",
        key,
        json={"callbackUrl": receiver.url("/ok/eleven"), "events": ["agent.updated"]},
    )
    assert r.status_code in (409, 422), r.text
    assert r.json()["success"] is False and r.json()["message"]
    assert len(webhooks_of(api, key)) == MAX_WEBHOOKS_PER_KEY
    # A rotated key is the same family: same webhooks, same limit.
    rotated = api.post(
        f"/ivr/auth/api-key/{created['keyId']}/rotate", admin_token, json={"gracePeriodSeconds": 60}
    )
    assert rotated.status_code == 201, rotated.text
    new_key = rotated.json()["data"]["apiKey"]
    assert sorted(w["webhookId"] for w in webhooks_of(api, new_key)) == sorted(ids)
    r = api.post(
        "/ivr/webhooks/register",
        new_key,
        json={"callbackUrl": receiver.url("/ok/eleven"), "events": ["agent.updated"]},
    )
    assert r.status_code in (409, 422), r.text
    # Deleting one makes room again.
    assert api.delete(f"/ivr/webhooks/{ids[0]}", new_key).status_code == 200
    register(new_key, receiver.url("/ok/tenth-again"), ["agent.updated"])


# --- 6. isolation --------------------------------------------------------------------------


def test_other_keys_and_admins_cannot_touch_a_webhook(
    api, admin_token, tenant, make_key, receiver, register
):
    restaurant, key = tenant
    hook = register(key, receiver.url("/ok/mine"))
    wid = hook["webhookId"]
    delivery_id = send_test(api, key, wid)
    receiver.wait("/ok/mine", 1, timeout=30)
    stranger = make_key()["apiKey"]

    assert wid not in [w["webhookId"] for w in webhooks_of(api, stranger)]
    assert_error(api.post(f"/ivr/webhooks/{wid}/test", stranger), 404, "NOT_FOUND")
    assert_error(
        api.post(f"/ivr/webhooks/{wid}/deliveries/{delivery_id}/replay", stranger), 404, "NOT_FOUND"
    )
    assert_error(
        api.post(f"/ivr/webhooks/{wid}/rotate-secret", stranger, json={}), 404, "NOT_FOUND"
    )
    assert_error(api.get(f"/ivr/webhooks/{wid}/deliveries", stranger), 404, "NOT_FOUND")
    assert_error(api.delete(f"/ivr/webhooks/{wid}", stranger), 404, "NOT_FOUND")
    # Someone else's delivery id under one's own webhook is just as unknown.
    own = register(stranger, receiver.url("/ok/stranger"))
    assert_error(
        api.post(f"/ivr/webhooks/{own['webhookId']}/deliveries/{delivery_id}/replay", stranger),
        404,
        "NOT_FOUND",
    )

    for method, route, body in [
        ("GET", "/ivr/webhooks", None),
        (
            "POST",
            "/ivr/webhooks/register",
            {"callbackUrl": receiver.url("/ok/admin"), "events": ALL_EVENTS},
        ),
        ("POST", f"/ivr/webhooks/{wid}/test", None),
        ("POST", f"/ivr/webhooks/{wid}/rotate-secret", {}),
        ("GET", f"/ivr/webhooks/{wid}/deliveries", None),
        ("POST", f"/ivr/webhooks/{wid}/deliveries/{delivery_id}/replay", None),
        ("DELETE", f"/ivr/webhooks/{wid}", None),
    ]:
        kw = {"json": body} if body is not None else {}
        assert_error(api.call(method, route, admin_token, **kw), 403, "FORBIDDEN")
        assert_error(api.call(method, route, **kw), 401, "UNAUTHORIZED")

    # Still there, untouched, and still signing with the original secret.
    view = webhook_view(api, key, wid)
    assert view and view["status"] == "active"
    assert len(receiver.to("/ok/mine")) == 1
    receiver.to("/ok/mine")[0].verify(hook["secret"])


# --- 7. secret rotation --------------------------------------------------------------------


def test_rotated_secret_signs_alongside_the_old_one_during_grace(api, tenant, receiver, register):
    restaurant, key = tenant
    path = f"/ok/rotate-{uuid.uuid4().hex[:8]}"
    hook = register(key, receiver.url(path), ["settings.updated"])
    old = hook["secret"]
    r = api.post(
        f"/ivr/webhooks/{hook['webhookId']}/rotate-secret", key, json={"gracePeriodSeconds": 600}
    )
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["webhookId"] == hook["webhookId"]
    new = data["secret"]
    assert new.startswith("whsec_") and new != old
    until = parse_time(data["previousSecretValidUntil"])
    assert timedelta(seconds=590) < until - datetime.now(UTC) <= timedelta(seconds=610), until
    assert new not in api.get("/ivr/webhooks", key).text

    send_test(api, key, hook["webhookId"])
    hit = receiver.wait(path, 1, timeout=30)[0]
    assert signatures(hit) == [expected_signature(new, hit), expected_signature(old, hit)], (
        hit.headers["webhook-signature"]
    )
    assert hit.verify(new)["type"] == "webhook.test"
    assert hit.verify(old)["type"] == "webhook.test"
    with pytest.raises(WebhookVerificationError):
        hit.verify(random_secret())

    # Rotating with (almost) no grace: soon only the newest secret signs.
    r = api.post(
        f"/ivr/webhooks/{hook['webhookId']}/rotate-secret", key, json={"gracePeriodSeconds": 1}
    )
    assert r.status_code == 200, r.text
    newest = r.json()["data"]["secret"]
    assert newest not in (old, new)
    time.sleep(1.5)
    send_test(api, key, hook["webhookId"])
    hit = receiver.wait(path, 2, timeout=30)[1]
    assert signatures(hit) == [expected_signature(newest, hit)], hit.headers["webhook-signature"]
    hit.verify(newest)
    for stale in (old, new):
        with pytest.raises(WebhookVerificationError):
            hit.verify(stale)


# --- 8. test events and replays ------------------------------------------------------------


def test_test_event_and_replay(api, tenant, receiver, register):
    restaurant, key = tenant
    path = f"/ok/replay-{uuid.uuid4().hex[:8]}"
    hook = register(key, receiver.url(path), ["agent.updated"])
    wid = hook["webhookId"]
    first_id = send_test(api, key, wid)
    first = receiver.wait(path, 1, timeout=30)[0]
    payload = first.verify(hook["secret"])
    assert payload["type"] == "webhook.test"
    assert set(payload) == {"type", "timestamp", "data"} and isinstance(payload["data"], dict)
    assert_recent(payload["timestamp"])
    d = wait_delivery(api, key, wid, timeout=30, deliveryId=first_id, status="succeeded")
    assert d["eventType"] == "webhook.test" and len(d["attempts"]) == 1

    r = api.post(f"/ivr/webhooks/{wid}/deliveries/{first_id}/replay", key)
    assert r.status_code == 202, r.text
    replay_id = r.json()["data"]["deliveryId"]
    assert replay_id != first_id
    again = receiver.wait(path, 2, timeout=30)[1]
    assert again.body == first.body, "a replay sends the same payload"
    assert again.headers["webhook-id"] != first.headers["webhook-id"]
    again.verify(hook["secret"])
    replay = wait_delivery(api, key, wid, timeout=30, deliveryId=replay_id, status="succeeded")
    assert replay["eventType"] == "webhook.test"
    newest = deliveries_of(api, key, wid, 1)
    assert [x["deliveryId"] for x in newest] == [replay_id], "newest first"
    assert_error(
        api.post(f"/ivr/webhooks/{wid}/deliveries/msg_000000000000000000000000/replay", key),
        404,
        "NOT_FOUND",
    )


# 9. A replayed stream record creating no duplicate delivery is covered by a Rust test.
