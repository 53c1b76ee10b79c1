"""End-to-end security tests: API8:2023 Security Misconfiguration
(OWASP API Security Top 10, 2023).

The stack these run against, and the rules every security module follows, are described
in infra/SECURITY.md and infra/tests/helpers.py.
"""
from __future__ import annotations

import os
import secrets
import uuid

import pytest
from helpers import (
    ADMIN_BODY_LIMIT,
    CLOSE,
    JSON,
    LOGIN,
    ROUTES,
    assert_secure_headers,
    body_kw,
    config_path,
    fill,
    is_admin_path,
    json_of_size,
    restaurant_body,
    route_id,
)

pytestmark = pytest.mark.e2e


UNDECLARED = sorted(
    {(m, p) for p in {p for _, p in ROUTES} for m in ("GET", "POST", "PUT", "PATCH", "DELETE")}
    - set(ROUTES),
    key=lambda r: (r[1], r[0]),
)


class TestAPI8SecurityMisconfiguration:
    """API8 Security Misconfiguration: every response carries x-request-id, a JSON content
    type, `cache-control: no-store` (the ring-time config: `private, max-age`) and
    `x-content-type-options: nosniff`; a 500 says nothing
    but the request id; undeclared methods and odd ids are 4xx, never 5xx."""

    def test_headers_on_every_kind_of_response(
        self, api, admin_token, make_key, make_restaurant, receiver, register
    ):
        restaurant = make_restaurant()
        rid = restaurant["restaurantId"]
        key = make_key()["apiKey"]
        limited = make_key(rateLimitPerMinute=1)["apiKey"]
        wid = register(key, receiver.url("/ok/headers"))["webhookId"]
        responses = {
            200: api.get(config_path(rid), key),
            201: api.post("/ivr/restaurants", admin_token, json=restaurant_body()),
            202: api.post(f"/ivr/webhooks/{wid}/test", key),
            400: api.post("/ivr/restaurants", admin_token, data="{", headers=dict(JSON)),
            401: api.get("/ivr/auth/api-keys"),
            403: api.get("/ivr/auth/api-keys", key),
            404: api.get("/ivr/restaurants/rst_" + uuid.uuid4().hex, admin_token),
            409: api.post(
                "/ivr/restaurants",
                admin_token,
                json=restaurant_body(phoneNumbers=restaurant["phoneNumbers"]),
            ),
            413: api.post(
                "/ivr/auth/api-key",
                admin_token,
                data=json_of_size({"name": "x"}, ADMIN_BODY_LIMIT + 1),
                headers=dict(JSON),
            ),
            415: api.post(
                "/ivr/auth/api-key",
                admin_token,
                data='{"name":"x"}',
                headers={"content-type": "text/plain"},
            ),
            422: api.post("/ivr/auth/api-key", admin_token, json={"name": ""}),
        }
        api.get(config_path(rid), limited)
        responses[429] = next(
            r
            for r in (api.get(config_path(rid), limited) for _ in range(4))
            if r.status_code == 429
        )
        ids = set()
        for status, r in responses.items():
            assert r.status_code == status, (status, r.status_code, r.text[:300])
            assert_secure_headers(r, cacheable=status == 200)
            ids.add(r.headers["x-request-id"])
            if status >= 400:
                assert r.json()["error"]["requestId"] == r.headers["x-request-id"]
        assert len(ids) == len(responses), "request ids are unique"

    def test_internal_errors_leak_nothing(self, api, admin_token, dynamodb):
        """Provoked with unreadable records written straight into DynamoDB (tables without a
        stream, so no event consumer ever sees them): a call (admin route) and an API key
        (read while authenticating, on an IVR and an admin route)."""
        base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        call_id = "call_" + secrets.token_hex(12)
        key_id = "".join(secrets.choice(base62) for _ in range(8))
        key = "psk_live_" + key_id + "".join(secrets.choice(base62) for _ in range(24))
        dynamodb.put_item(
            TableName=os.environ["CALLS_TABLE"],
            Item={"callId": {"S": call_id}, "restaurantId": {"N": "42"}},
        )
        dynamodb.put_item(
            TableName=os.environ["API_KEYS_TABLE"],
            Item={"keyId": {"S": key_id}, "keyHash": {"N": "42"}},
        )
        try:
            for r in (
                api.get(f"/ivr/calls/{call_id}", admin_token),
                api.get(config_path("rst_" + uuid.uuid4().hex), key),
                api.get("/ivr/auth/api-keys", key),
            ):
                assert r.status_code == 500, r.text
                assert_secure_headers(r)
                body = r.json()
                assert set(body) == {"success", "message", "error"}, body
                assert body["error"] == {
                    "code": "INTERNAL_ERROR",
                    "requestId": r.headers["x-request-id"],
                }, body
                lowered = body["message"].lower()
                for leak in (
                    "dynamo",
                    "serde",
                    "invalid type",
                    "stored item",
                    "corrupt",
                    "table",
                    "pulsara-",
                    "panick",
                    ".rs",
                    "backtrace",
                    "expected",
                    "42",
                    call_id,
                    key_id,
                ):
                    assert leak.lower() not in lowered, (
                        f"500 message leaks {leak!r}: {body['message']}"
                    )
        finally:
            dynamodb.delete_item(
                TableName=os.environ["CALLS_TABLE"], Key={"callId": {"S": call_id}}
            )
            dynamodb.delete_item(
                TableName=os.environ["API_KEYS_TABLE"], Key={"keyId": {"S": key_id}}
            )

    @pytest.mark.parametrize("route", UNDECLARED, ids=route_id)
    def test_undeclared_methods_are_404_or_405(self, api, admin_token, route_world, route):
        method, path = route
        cred = (
            admin_token if is_admin_path(path) else None if path == LOGIN[1] else route_world["key"]
        )
        r = api.call(method, fill(path, route_world), cred, headers=dict(CLOSE), **body_kw(method))
        assert r.status_code in (404, 405), f"{method} {path}: {r.status_code} {r.text[:300]}"

    @pytest.mark.parametrize(
        "ident",
        [
            "a" * 3000,
            "%00",
            "rst_%00",
            "%E2%80%AE",
            "%C3%BC",
            "'%20OR%20'1'='1",
            "..%2F..%2Fauth%2Fapi-keys",
            "%2e%2e",
            "%25",
            "rst_" + "%F0%9F%98%80" * 10,
            "%FF%FE",
        ],
        ids=[
            "3000-chars",
            "nul",
            "prefixed-nul",
            "rtl-override",
            "umlaut",
            "sql",
            "traversal",
            "dot-dot",
            "percent",
            "emoji",
            "invalid-utf8",
        ],
    )
    def test_odd_path_ids_are_4xx(self, api, admin_token, route_world, ident):
        key = route_world["key"]
        for method, path, cred, body in [
            ("GET", f"/ivr/restaurants/{ident}", admin_token, None),
            ("PATCH", f"/ivr/restaurants/{ident}", admin_token, {"name": "x"}),
            ("GET", f"/ivr/restaurants/{ident}/calls", admin_token, None),
            ("GET", f"/ivr/calls/{ident}", admin_token, None),
            ("DELETE", f"/ivr/auth/api-key/{ident}", admin_token, None),
            ("POST", f"/ivr/auth/api-key/{ident}/rotate", admin_token, None),
            ("GET", f"/ivr/restaurant/{ident}/config", key, None),
            ("POST", f"/ivr/call/{ident}/complete", key, {"duration": 1}),
            ("GET", f"/ivr/webhooks/{ident}/deliveries", key, None),
            ("POST", f"/ivr/webhooks/{ident}/test", key, None),
            ("DELETE", f"/ivr/webhooks/{ident}", key, None),
            (
                "POST",
                f"/ivr/webhooks/{route_world['params']['webhookId']}/deliveries/{ident}/replay",
                key,
                None,
            ),
        ]:
            r = api.call(
                method,
                path,
                cred,
                headers=dict(CLOSE),
                **({"json": body} if body is not None else {}),
            )
            assert 400 <= r.status_code < 500, (
                f"{method} {path[:80]}: {r.status_code} {r.text[:300]}"
            )
