"""End-to-end security tests: API3:2023 Broken Object Property Level Authorization
(OWASP API Security Top 10, 2023).

The stack these run against, and the rules every security module follows, are described
in infra/SECURITY.md and infra/tests/helpers.py.
"""
from __future__ import annotations

import base64
import hashlib
import json
import uuid

import pytest
from helpers import (
    ALL_EVENTS,
    JSON,
    LOGIN_PATH,
    assert_error,
    call_body,
    call_items,
    config_path,
    new_admin,
    restaurant_body,
    scan_all,
    sent_messages,
)

pytestmark = pytest.mark.e2e


SERVER_OWNED_RESTAURANT_FIELDS = {
    "restaurantId": "rst_chosen_by_me",
    "version": 99,
    "createdAt": "2001-01-01T00:00:00Z",
    "updatedAt": "2001-01-01T00:00:00Z",
}
SERVER_OWNED_KEY_FIELDS = {
    "keyHash": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
    "ownerId": "SomeOne1",
    "keyId": "Chosen12",
    "revokedAt": "2001-01-01T00:00:00Z",
    "lastUsed": "2001-01-01T00:00:00Z",
    "createdBy": "usr_someone",
    "createdAt": "2001-01-01T00:00:00Z",
    "status": "active",
    "rotatedTo": "Other123",
    "graceUntil": "2100-01-01T00:00:00Z",
}
FORBIDDEN_RESPONSE_KEYS = {
    "keyHash",
    "passwordHash",
    "ownerId",
    "previousSecret",
    "previousSecretExpiresAt",
    "listKey",
    "password",
}


def walk_keys(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from walk_keys(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_keys(v)


class TestAPI3PropertyLevelAuthorization:
    """API3 Broken Object Property Level Authorization: server-owned properties cannot be
    mass-assigned (unknown fields are 422 and nothing is written), and responses never
    expose hashes, key-family ids, secrets (except the one response that issues them) or
    fields a caller has no use for."""

    @pytest.mark.parametrize("field", list(SERVER_OWNED_RESTAURANT_FIELDS))
    def test_create_restaurant_with_server_owned_field(self, api, admin_token, dynamodb, field):
        before = (
            len(scan_all(dynamodb, "RESTAURANTS_TABLE")),
            len(scan_all(dynamodb, "PHONE_NUMBERS_TABLE")),
        )
        body = restaurant_body(**{field: SERVER_OWNED_RESTAURANT_FIELDS[field]})
        assert_error(api.post("/ivr/restaurants", admin_token, json=body), 422, "VALIDATION_ERROR")
        after = (
            len(scan_all(dynamodb, "RESTAURANTS_TABLE")),
            len(scan_all(dynamodb, "PHONE_NUMBERS_TABLE")),
        )
        assert before == after
        assert_error(api.get("/ivr/restaurants/rst_chosen_by_me", admin_token), 404, "NOT_FOUND")

    @pytest.mark.parametrize("field", list(SERVER_OWNED_RESTAURANT_FIELDS))
    def test_patch_restaurant_with_server_owned_field(
        self, api, admin_token, make_restaurant, field
    ):
        created = make_restaurant()
        rid = created["restaurantId"]
        patch = {field: SERVER_OWNED_RESTAURANT_FIELDS[field], "name": "Renamed"}
        assert_error(
            api.patch(f"/ivr/restaurants/{rid}", admin_token, json=patch), 422, "VALIDATION_ERROR"
        )
        assert api.get(f"/ivr/restaurants/{rid}", admin_token).json()["data"] == created, (
            "nothing changed"
        )
        assert_error(api.get("/ivr/restaurants/rst_chosen_by_me", admin_token), 404, "NOT_FOUND")

    def test_nested_unknown_fields_are_rejected(self, api, admin_token, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        agent = {"elevenlabs_agent_id": "a", "voice_id": "v", "tools": [], "admin": True}
        assert_error(
            api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"agent": agent}),
            422,
            "VALIDATION_ERROR",
        )
        assert_error(
            api.post("/ivr/restaurants", admin_token, json=restaurant_body(agent=agent)),
            422,
            "VALIDATION_ERROR",
        )

    @pytest.mark.parametrize("field", list(SERVER_OWNED_KEY_FIELDS))
    def test_create_api_key_with_server_owned_field(self, api, admin_token, dynamodb, field):
        before = scan_all(dynamodb, "API_KEYS_TABLE")
        body = {"name": "mass-assignment", field: SERVER_OWNED_KEY_FIELDS[field]}
        r = api.post("/ivr/auth/api-key", admin_token, json=body)
        assert_error(r, 422, "VALIDATION_ERROR")
        assert "psk_live_" not in r.text
        after = scan_all(dynamodb, "API_KEYS_TABLE")
        assert len(after) == len(before)
        assert "Chosen12" not in {i["keyId"]["S"] for i in after}

    def test_rotation_cannot_widen_a_key(self, api, admin_token, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        key = make_key(restaurantIds=[rid], rateLimitPerMinute=5)
        for extra in [
            {"restaurantIds": None},
            {"restaurantIds": ["rst_other"]},
            {"rateLimitPerMinute": 100000},
            {"expiresAt": None},
            {"name": "renamed"},
            {"keyId": "Chosen12"},
        ]:
            r = api.post(
                f"/ivr/auth/api-key/{key['keyId']}/rotate",
                admin_token,
                json={"gracePeriodSeconds": 60, **extra},
            )
            assert_error(r, 422, "VALIDATION_ERROR")
        # Still the only key of its family, unrotated: a plain rotation works and keeps the limits.
        r = api.post(
            f"/ivr/auth/api-key/{key['keyId']}/rotate", admin_token, json={"gracePeriodSeconds": 60}
        )
        assert r.status_code == 201, r.text
        assert (
            r.json()["data"]["restaurantIds"] == [rid]
            and r.json()["data"]["rateLimitPerMinute"] == 5
        )

    @pytest.mark.parametrize("field, value", [
        ("secret", "whsec_" + base64.b64encode(b"chosen-by-the-attacker-24").decode()),
        ("ownerId", "SomeOne1"), ("keyId", "SomeOne1"), ("restaurantIds", ["rst_x"]),
        ("status", "active"), ("webhookId", "wh_chosen"),
    ])
    def test_register_webhook_with_server_owned_field(self, api, make_key, receiver, field, value):
        key = make_key()["apiKey"]
        body = {"callbackUrl": receiver.url("/ok/mass"), "events": ALL_EVENTS, field: value}
        r = api.post("/ivr/webhooks/register", key, json=body)
        assert_error(r, 422, "VALIDATION_ERROR")
        assert api.get("/ivr/webhooks", key).json()["data"]["webhooks"] == []

    def test_webhook_secret_cannot_be_chosen_on_rotation(self, api, make_key, receiver, register):
        key = make_key()["apiKey"]
        hook = register(key, receiver.url("/ok/rotate-mass"))
        chosen = "whsec_" + base64.b64encode(b"chosen-by-the-attacker-24").decode()
        r = api.post(
            f"/ivr/webhooks/{hook['webhookId']}/rotate-secret", key, json={"secret": chosen}
        )
        assert_error(r, 422, "VALIDATION_ERROR")

    @pytest.mark.parametrize(
        "field, value",
        [
            ("ownerId", "SomeOne1"),
            ("keyId", "SomeOne1"),
            ("sentimentScore", 100),
            ("reason", "Complaint"),
            ("analysis", {"reason": "Other"}),
            ("email", {"status": "sent"}),
            ("status", "completed"),
        ],
    )
    def test_process_call_with_server_owned_field(
        self, api, dynamodb, make_key, make_restaurant, field, value
    ):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        body = call_body(rid, **{field: value})
        assert_error(api.post("/ivr/call", key, json=body), 422, "VALIDATION_ERROR")
        assert body["callId"] not in {
            i["externalCallId"]["S"] for i in call_items(dynamodb)
        }

    @pytest.mark.parametrize(
        "field, value",
        [
            ("emailRecipients", ["attacker@evil.example"]),
            ("emailStatus", "sent"),
            ("emailSent", True),
            ("status", "completed"),
            ("restaurantId", "rst_x"),
            ("notificationEmails", ["attacker@evil.example"]),
        ],
    )
    def test_complete_call_with_server_owned_field(
        self, api, admin_token, make_key, make_restaurant, field, value
    ):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        call_id = api.post("/ivr/call", key, json=call_body(rid)).json()["data"]["callId"]
        assert_error(
            api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 5, field: value}),
            422,
            "VALIDATION_ERROR",
        )
        view = api.get(f"/ivr/calls/{call_id}", admin_token).json()["data"]
        assert view["status"] == "in_progress" and "email" not in view
        assert not [
            m
            for m in sent_messages()
            if "attacker@evil.example" in json.dumps(m.get("destinations"))
        ]

    def test_duplicate_json_keys_are_rejected(
        self, api, admin_token, dynamodb, make_key, make_restaurant
    ):
        """Parsers disagree on `{"a": 1, "a": 2}` (first wins, last wins); refusing it means no
        proxy, log or WAF can see a different request than the function does."""
        mine, other = make_restaurant(), make_restaurant()
        key = make_key(restaurantIds=[mine["restaurantId"]])["apiKey"]
        body = json.dumps(call_body(mine["restaurantId"]))
        dup = body[:-1] + f', "restaurantId": "{other["restaurantId"]}"}}'
        r = api.post("/ivr/call", key, data=dup, headers=dict(JSON))
        assert_error(r, 422, "VALIDATION_ERROR")
        before = len(scan_all(dynamodb, "API_KEYS_TABLE"))
        r = api.post(
            "/ivr/auth/api-key",
            admin_token,
            data='{"name": "a", "rateLimitPerMinute": 1, "rateLimitPerMinute": 100000}',
            headers=dict(JSON),
        )
        assert_error(r, 422, "VALIDATION_ERROR")
        assert len(scan_all(dynamodb, "API_KEYS_TABLE")) == before
        r = api.patch(
            f"/ivr/restaurants/{mine['restaurantId']}",
            admin_token,
            data='{"aiEnabled": false, "aiEnabled": true}',
            headers=dict(JSON),
        )
        assert_error(r, 422, "VALIDATION_ERROR")

    def test_login_cannot_choose_a_role(self, api, admin_credentials):
        email, password = admin_credentials
        r = api.post(LOGIN_PATH, json={"email": email, "password": password, "role": "superadmin"})
        assert_error(r, 422, "VALIDATION_ERROR")

    @pytest.mark.usefixtures("fresh_sign_in_budget")
    def test_responses_never_expose_internal_properties(self, api, receiver):
        """A tour of every route; each response is checked for hashes, key-family ids,
        secrets outside the response that issues them, and the e-mail hash the sign-in
        limiter buckets by."""
        email, password = new_admin("tour")
        email_hash = hashlib.sha256(email.encode()).hexdigest()
        seen: list[tuple[str, object, set[str]]] = []  # (label, response, plaintexts it may show)

        def step(label, r, status):
            assert r.status_code == status, f"{label}: {r.status_code} {r.text[:300]}"
            seen.append((label, r, set()))
            return r.json().get("data")

        token = step(
            "login", api.post(LOGIN_PATH, json={"email": email, "password": password}), 200
        )["accessToken"]
        step(
            "login failed",
            api.post(LOGIN_PATH, json={"email": email, "password": "wrong-password-1"}),
            401,
        )
        restaurant = step(
            "create restaurant", api.post("/ivr/restaurants", token, json=restaurant_body()), 201
        )
        rid = restaurant["restaurantId"]
        step("get restaurant", api.get(f"/ivr/restaurants/{rid}", token), 200)
        step(
            "patch restaurant",
            api.patch(f"/ivr/restaurants/{rid}", token, json={"callHoursEnd": "23:00"}),
            200,
        )
        created = step(
            "create key", api.post("/ivr/auth/api-key", token, json={"name": "tour"}), 201
        )
        seen[-1][2].add(created["apiKey"])
        rotated = step(
            "rotate key",
            api.post(
                f"/ivr/auth/api-key/{created['keyId']}/rotate",
                token,
                json={"gracePeriodSeconds": 600},
            ),
            201,
        )
        seen[-1][2].add(rotated["apiKey"])
        key = rotated["apiKey"]
        step("list keys", api.get("/ivr/auth/api-keys", token, params={"limit": 100}), 200)
        config = step("config", api.get(config_path(rid), key), 200)
        assert "notificationEmails" not in config, (
            "the IVR has no use for the owner's e-mail addresses"
        )
        call = step("process call", api.post("/ivr/call", key, json=call_body(rid)), 200)
        step(
            "complete call",
            api.post(f"/ivr/call/{call['callId']}/complete", key, json={"duration": 3}),
            200,
        )
        step("list calls", api.get(f"/ivr/restaurants/{rid}/calls", token), 200)
        step("get call", api.get(f"/ivr/calls/{call['callId']}", token), 200)
        path = f"/ok/tour-{uuid.uuid4().hex[:8]}"
        hook = step(
            "register webhook",
            api.post(
                "/ivr/webhooks/register",
                key,
                json={"callbackUrl": receiver.url(path), "events": ALL_EVENTS},
            ),
            201,
        )
        seen[-1][2].add(hook["secret"])
        wid = hook["webhookId"]
        step("list webhooks", api.get("/ivr/webhooks", key), 200)
        delivery_id = step("test webhook", api.post(f"/ivr/webhooks/{wid}/test", key), 202)[
            "deliveryId"
        ]
        receiver.wait(path, 1, timeout=30)
        step("deliveries", api.get(f"/ivr/webhooks/{wid}/deliveries", key), 200)
        new_secret = step(
            "rotate secret", api.post(f"/ivr/webhooks/{wid}/rotate-secret", key, json={}), 200
        )["secret"]
        seen[-1][2].add(new_secret)
        step("replay", api.post(f"/ivr/webhooks/{wid}/deliveries/{delivery_id}/replay", key), 202)
        step("delete webhook", api.delete(f"/ivr/webhooks/{wid}", key), 200)
        step("revoke key", api.delete(f"/ivr/auth/api-key/{rotated['keyId']}", token), 200)

        plaintexts = {created["apiKey"], rotated["apiKey"], hook["secret"], new_secret}
        for label, r, allowed in seen:
            text = r.text
            keys = set(walk_keys(r.json()))
            assert not keys & FORBIDDEN_RESPONSE_KEYS, (
                f"{label}: exposes {keys & FORBIDDEN_RESPONSE_KEYS}"
            )
            if "secret" in keys:
                assert label in ("register webhook", "rotate secret"), (
                    f"{label}: exposes a webhook secret"
                )
            markers = ["$argon2", email_hash, email_hash[:32], password]
            if label not in ("register webhook", "rotate secret"):
                markers.append("whsec_")
            for marker in markers:
                assert marker not in text, f"{label}: contains {marker!r}"
            for p in plaintexts - allowed:
                assert p not in text and p[-20:] not in text, (
                    f"{label}: contains a secret issued elsewhere"
                )
        assert hook["secret"] not in seen[[s[0] for s in seen].index("rotate secret")][1].text
