"""End-to-end security tests: API4:2023 Unrestricted Resource Consumption
(OWASP API Security Top 10, 2023).

The stack these run against, and the rules every security module follows, are described
in infra/SECURITY.md and infra/tests/helpers.py.
"""
from __future__ import annotations

import concurrent.futures
import json
import secrets
import time
import uuid

import pytest
from helpers import (
    ADMIN_BODY_LIMIT,
    ALL_EVENTS,
    CALL_BODY_LIMIT,
    JSON,
    LOGIN_PATH,
    TRANSCRIPT_LIMIT,
    assert_error,
    call_body,
    config_path,
    json_of_size,
    owner_email,
    restaurant_body,
    scan_all,
    unique_phone,
)

pytestmark = pytest.mark.e2e


def _admin_oversize_targets(make_restaurant, make_key):
    rid = make_restaurant()["restaurantId"]
    key_id = make_key()["keyId"]
    return [
        ("POST", "/ivr/restaurants", restaurant_body()),
        ("PATCH", f"/ivr/restaurants/{rid}", {"name": "x"}),
        ("POST", "/ivr/auth/api-key", {"name": "big"}),
        ("POST", f"/ivr/auth/api-key/{key_id}/rotate", {"gracePeriodSeconds": 60}),
        ("POST", LOGIN_PATH, {"email": "a@pulsara.test", "password": "x"}),
    ]


class TestAPI4ResourceConsumption:
    """API4 Unrestricted Resource Consumption: body limits (64 KiB admin, 256 KiB calls, a
    transcript at most 100 KB), capped page sizes and collections, bounded JSON nesting,
    and per-key rate limits shared by every instance, with Retry-After and RateLimit-*."""

    def test_admin_bodies_over_64_kib_are_413(
        self, api, admin_token, dynamodb, make_restaurant, make_key
    ):
        for method, path, obj in _admin_oversize_targets(make_restaurant, make_key):
            before = (
                len(scan_all(dynamodb, "RESTAURANTS_TABLE")),
                len(scan_all(dynamodb, "API_KEYS_TABLE")),
            )
            token = None if path == LOGIN_PATH else admin_token
            r = api.call(
                method,
                path,
                token,
                data=json_of_size(obj, ADMIN_BODY_LIMIT + 1),
                headers=dict(JSON),
            )
            assert_error(r, 413, "PAYLOAD_TOO_LARGE")
            assert (
                len(scan_all(dynamodb, "RESTAURANTS_TABLE")),
                len(scan_all(dynamodb, "API_KEYS_TABLE")),
            ) == before

    def test_admin_body_of_exactly_64_kib_is_read(self, api, admin_token):
        # The limit is inclusive: exactly 64 KiB is parsed (and here refused for its padding field).
        r = api.post(
            "/ivr/restaurants",
            admin_token,
            data=json_of_size(restaurant_body(), ADMIN_BODY_LIMIT),
            headers=dict(JSON),
        )
        assert_error(r, 422, "VALIDATION_ERROR")
        r = api.post(
            "/ivr/auth/api-key",
            admin_token,
            data=json_of_size({"name": "x"}, ADMIN_BODY_LIMIT),
            headers=dict(JSON),
        )
        assert_error(r, 422, "VALIDATION_ERROR")

    def test_ivr_bodies_over_their_limits_are_413(
        self, api, dynamodb, make_key, make_restaurant, receiver, register
    ):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        call_id = api.post("/ivr/call", key, json=call_body(rid)).json()["data"]["callId"]
        hook = register(key, receiver.url("/ok/oversize"))
        before = len(scan_all(dynamodb, "CALLS_TABLE"))
        for path, obj, size in [
            ("/ivr/call", call_body(rid), CALL_BODY_LIMIT + 1),
            (f"/ivr/call/{call_id}/complete", {"duration": 5}, CALL_BODY_LIMIT + 1),
            (
                "/ivr/webhooks/register",
                {"callbackUrl": receiver.url("/ok/x"), "events": ALL_EVENTS},
                ADMIN_BODY_LIMIT + 1,
            ),
            (
                f"/ivr/webhooks/{hook['webhookId']}/rotate-secret",
                {"gracePeriodSeconds": 5},
                ADMIN_BODY_LIMIT + 1,
            ),
        ]:
            r = api.post(path, key, data=json_of_size(obj, size), headers=dict(JSON))
            assert_error(r, 413, "PAYLOAD_TOO_LARGE")
        assert len(scan_all(dynamodb, "CALLS_TABLE")) == before
        assert len(api.get("/ivr/webhooks", key).json()["data"]["webhooks"]) == 1

    def test_call_body_of_exactly_256_kib_is_read(self, api, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        r = api.post(
            "/ivr/call", key, data=json_of_size(call_body(rid), CALL_BODY_LIMIT), headers=dict(JSON)
        )
        assert_error(r, 422, "VALIDATION_ERROR")

    def test_transcripts_over_100_kb_are_413(
        self, api, admin_token, dynamodb, make_key, make_restaurant
    ):
        restaurant = make_restaurant(notificationEmails=[owner_email()])
        rid = restaurant["restaurantId"]
        key = make_key()["apiKey"]
        before = len(scan_all(dynamodb, "CALLS_TABLE"))
        text = "Customer: " + "la " * (TRANSCRIPT_LIMIT // 3)
        assert len(text.encode()) > TRANSCRIPT_LIMIT
        assert_error(
            api.post("/ivr/call", key, json=call_body(rid, transcript=text)),
            413,
            "PAYLOAD_TOO_LARGE",
            "transcript",
        )
        turns = [{"role": "user", "message": "la " * 1000}] * 40  # 120 KB in 40 turns
        assert_error(
            api.post("/ivr/call", key, json=call_body(rid, transcript=turns)),
            413,
            "PAYLOAD_TOO_LARGE",
            "transcript",
        )
        assert len(scan_all(dynamodb, "CALLS_TABLE")) == before
        # Exactly at the limit is fine.
        exact = "Customer: " + "x" * (TRANSCRIPT_LIMIT - len("Customer: "))
        assert api.post("/ivr/call", key, json=call_body(rid, transcript=exact)).status_code == 200
        # The final transcript of a completion too; the call stays open and nobody is mailed.
        call_id = api.post("/ivr/call", key, json=call_body(rid)).json()["data"]["callId"]
        r = api.post(
            f"/ivr/call/{call_id}/complete", key, json={"duration": 9, "finalTranscript": text}
        )
        assert_error(r, 413, "PAYLOAD_TOO_LARGE", "finalTranscript")
        assert (
            api.get(f"/ivr/calls/{call_id}", admin_token).json()["data"]["status"] == "in_progress"
        )

    @pytest.mark.parametrize("value", ["101", "0", "-1", "abc", "1e2", "99999999999", "50.5"])
    def test_list_limits_are_capped(
        self, api, admin_token, make_key, make_restaurant, receiver, register, value
    ):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        wid = register(key, receiver.url("/ok/limits"))["webhookId"]
        for path, cred in [
            ("/ivr/auth/api-keys", admin_token),
            (f"/ivr/restaurants/{rid}/calls", admin_token),
            (f"/ivr/webhooks/{wid}/deliveries", key),
        ]:
            assert_error(
                api.get(path, cred, params={"limit": value}), 422, "VALIDATION_ERROR", "limit"
            )
            assert api.get(path, cred, params={"limit": "100"}).status_code == 200, path

    def test_collections_in_bodies_are_capped(self, api, admin_token, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        cases = [
            (
                "/ivr/restaurants",
                admin_token,
                restaurant_body(phoneNumbers=[unique_phone() for _ in range(11)]),
                "phoneNumbers",
            ),
            (
                "/ivr/restaurants",
                admin_token,
                restaurant_body(notificationEmails=[f"o{i}@luigis.example" for i in range(11)]),
                "notificationEmails",
            ),
            (
                "/ivr/restaurants",
                admin_token,
                restaurant_body(schedule={"monday": [{"start": "09:00", "end": "10:00"}] * 50}),
                "schedule.monday",
            ),
            (
                "/ivr/restaurants",
                admin_token,
                restaurant_body(
                    agent={"elevenlabs_agent_id": "a", "voice_id": "v", "tools": ["t"] * 33}
                ),
                "agent.tools",
            ),
            (
                "/ivr/auth/api-key",
                admin_token,
                {"name": "x", "restaurantIds": [rid] * 101},
                "restaurantIds",
            ),
            (
                "/ivr/auth/api-key",
                admin_token,
                {"name": "x", "rateLimitPerMinute": 100001},
                "rateLimitPerMinute",
            ),
            (
                "/ivr/call",
                key,
                call_body(rid, transcript=[{"role": "user", "message": "hi"}] * 2001),
                "transcript",
            ),
            (
                "/ivr/webhooks/register",
                key,
                {
                    "callbackUrl": "https://hooks.example.com/x",
                    "events": ALL_EVENTS,
                    "description": "d" * 201,
                },
                "description",
            ),
        ]
        for path, cred, body, field in cases:
            assert_error(api.post(path, cred, json=body), 422, "VALIDATION_ERROR", field)

    def test_deeply_nested_json_is_rejected(self, api, admin_token, make_key):
        key = make_key()["apiKey"]
        nested = ("[" * 20000 + "]" * 20000).encode()
        obj_nested = ('{"name":' + '{"a":' * 10000 + "1" + "}" * 10000 + "}").encode()
        rid = "rst_" + uuid.uuid4().hex
        # A transcript is "text or a list of turns": the untagged shape buffers whatever it gets.
        deep_transcript = (
            json.dumps(call_body(rid, transcript="X"))
            .replace('"transcript": "X"', '"transcript": ' + "[" * 20000 + "]" * 20000)
            .encode()
        )
        for path, cred, data in [
            ("/ivr/restaurants", admin_token, nested),
            ("/ivr/auth/api-key", admin_token, obj_nested),
            ("/ivr/call", key, nested),
            ("/ivr/call", key, deep_transcript),
        ]:
            r = api.post(path, cred, data=data, headers=dict(JSON))
            assert r.status_code in (400, 422), r.text[:300]
            assert_error(
                r, r.status_code, "BAD_REQUEST" if r.status_code == 400 else "VALIDATION_ERROR"
            )

    def test_per_key_rate_limit_answers_429_with_headers(self, api, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        key = make_key(rateLimitPerMinute=3)["apiKey"]
        for _ in range(3):  # retried only when a minute boundary splits the sequence
            first = api.get(config_path(rid), key)
            if first.status_code == 429:  # the previous round's window: wait for a fresh one
                time.sleep(int(first.headers["retry-after"]) + 0.2)
                continue
            assert first.status_code == 200, first.text
            assert first.headers["ratelimit-limit"] == "3"
            assert 0 <= int(first.headers["ratelimit-remaining"]) <= 2
            assert 1 <= int(first.headers["ratelimit-reset"]) <= 60
            limited = next(
                (
                    r
                    for r in (api.get(config_path(rid), key) for _ in range(6))
                    if r.status_code == 429
                ),
                None,
            )
            assert limited is not None, "no 429 after 7 requests with a limit of 3/min"
            assert_error(limited, 429, "RATE_LIMITED")
            retry_after = int(limited.headers["retry-after"])
            assert 1 <= retry_after <= 60
            assert limited.headers["ratelimit-limit"] == "3"
            assert limited.headers["ratelimit-remaining"] == "0"
            assert 1 <= int(limited.headers["ratelimit-reset"]) <= 60
            if retry_after < 3:
                time.sleep(retry_after + 0.2)
                continue
            # The limit is per key across every IVR route ...
            assert_error(api.get("/ivr/webhooks", key), 429, "RATE_LIMITED")
            assert_error(api.post("/ivr/call", key, json=call_body(rid)), 429, "RATE_LIMITED")
            # ... and only that key's.
            other = make_key(rateLimitPerMinute=3)["apiKey"]
            assert api.get(config_path(rid), other).status_code == 200
            return
        pytest.fail("could not fit the sequence into one rate-limit window")

    def test_wrong_secrets_do_not_spend_the_victims_budget(self, api, make_key, make_restaurant):
        """Someone who knows a key id (it is the key's first 8 characters) cannot lock the
        vendor out by sending wrong secrets with it."""
        rid = make_restaurant()["restaurantId"]
        key = make_key(rateLimitPerMinute=3)["apiKey"]
        for _ in range(10):
            forged = key[: len("psk_live_") + 8] + "".join(
                secrets.choice("abcdefghijkmnopqrstuvwxyz") for _ in range(24)
            )
            assert_error(api.get(config_path(rid), forged), 401, "UNAUTHORIZED")
        r = api.get(config_path(rid), key)
        assert r.status_code == 200, r.text
        assert int(r.headers["ratelimit-remaining"]) == 2, r.headers

    def test_a_key_far_below_its_limit_costs_no_counter_writes(
        self, api, make_key, make_restaurant, proxy
    ):
        """Each instance admits a tenth of a key's limit before it counts in DynamoDB (one write
        for all it admitted), so ordinary traffic pays no write per request; small limits
        (above: 5 a minute) stay exact."""
        rid = make_restaurant()["restaurantId"]
        key = make_key(rateLimitPerMinute=6000)["apiKey"]
        mark = proxy.mark()
        for _ in range(12):
            assert api.get(config_path(rid), key).status_code == 200
        counters = [r for r in proxy.requests("dynamodb", "UpdateItem", since=mark)
                    if r.get("table", "").endswith("RateLimitsTable")]
        assert counters == [], counters
        # A tenth of a limit of 20 is 2: past that an instance counts, and the key is limited.
        small = make_key(rateLimitPerMinute=20)["apiKey"]
        mark = proxy.mark()
        statuses = [api.get(config_path(rid), small).status_code for _ in range(100)]
        counted = [r for r in proxy.requests("dynamodb", "UpdateItem", since=mark)
                   if r.get("table", "").endswith("RateLimitsTable")]
        assert counted and 429 in statuses, statuses
        # Per window at most the limit plus two for each function instance (4 of them); the
        # burst may straddle one window boundary.
        assert statuses.count(200) <= 2 * (20 + 4 * 2), statuses

    def test_small_limits_count_every_request_on_every_ivr_route(
        self, api, make_key, make_restaurant, proxy
    ):
        """Below 10 a minute nothing is admitted uncounted: each IVR function writes the shared
        counter on every request (each route below once, within the limit of 9)."""
        rid = make_restaurant()["restaurantId"]
        key = make_key(rateLimitPerMinute=9)["apiKey"]
        mark = proxy.mark()
        assert api.get(config_path(rid), key).status_code == 200
        call = api.post("/ivr/call", key, json=call_body(rid))
        assert call.status_code == 200, call.text
        call_id = call.json()["data"]["callId"]
        done = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 5})
        assert done.status_code == 200, done.text
        hook = api.post("/ivr/webhooks/register", key,
                        json={"callbackUrl": "http://127.0.0.1:9/hook", "events": ALL_EVENTS})
        assert hook.status_code == 201, hook.text
        assert api.get("/ivr/webhooks", key).status_code == 200
        counted = {}
        for r in proxy.requests("dynamodb", "UpdateItem", since=mark):
            if r.get("table", "").endswith("RateLimitsTable"):
                counted[r.get("caller")] = counted.get(r.get("caller"), 0) + 1
        assert counted == {"restaurant-config": 1, "process-call": 1, "complete-call": 1,
                           "register-webhook": 1, "webhooks": 1}, counted
        api.delete(f"/ivr/webhooks/{hook.json()['data']['webhookId']}", key)

    def test_rate_limit_is_shared_by_all_instances(self, api, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        limit = 5
        key = make_key(rateLimitPerMinute=limit)["apiKey"]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(
                pool.map(lambda _: api.get(config_path(rid), key).status_code, range(24))
            )
        assert set(statuses) <= {200, 429}, statuses
        # Fixed one-minute windows: a burst may straddle one boundary, never more.
        assert statuses.count(200) <= 2 * limit, statuses
        assert 429 in statuses, statuses
