"""End-to-end security tests: API1:2023 Broken Object Level Authorization
(OWASP API Security Top 10, 2023).

The stack these run against, and the rules every security module follows, are described
in infra/SECURITY.md and infra/tests/helpers.py.
"""
from __future__ import annotations

import secrets
import uuid

import pytest
from helpers import (
    assert_same_as_unknown,
    call_body,
    call_items,
    config_path,
    deliveries_of,
    owner_email,
    send_test,
    unique_phone,
    wait_mail,
)
from standardwebhooks.webhooks import Webhook

pytestmark = pytest.mark.e2e


class TestAPI1ObjectLevelAuthorization:
    """API1 Broken Object Level Authorization: every route that takes an object id answers a
    key of another key family, or a key restricted to other restaurants, with the same 404
    (status, body and headers) as an id that does not exist, and changes nothing."""

    def test_config_of_a_restaurant_outside_the_keys_restriction(
        self, api, make_key, make_restaurant
    ):
        mine, other = make_restaurant(), make_restaurant()
        key = make_key(restaurantIds=[mine["restaurantId"]])["apiKey"]
        assert api.get(config_path(mine["restaurantId"]), key).status_code == 200
        digits = "".join(c for c in other["phoneNumbers"][0] if c.isdigit())
        cases = [
            (other["restaurantId"], "rst_" + uuid.uuid4().hex),
            (other["phoneNumbers"][0], unique_phone()),  # E.164 as stored
            (f"({digits[1:4]}) {digits[4:7]}-{digits[7:]}", unique_phone()),  # national format
        ]
        for foreign, unknown in cases:
            r_foreign = api.get(config_path(foreign), key)
            assert_same_as_unknown(r_foreign, api.get(config_path(unknown), key))
            assert (
                other["name"] not in r_foreign.text and other["restaurantId"] not in r_foreign.text
            )

    def test_process_call_for_a_restaurant_outside_the_keys_restriction(
        self, api, dynamodb, make_key, make_restaurant
    ):
        mine, other = make_restaurant(), make_restaurant()
        key = make_key(restaurantIds=[mine["restaurantId"]])["apiKey"]
        external_ids = []
        for foreign, unknown in [
            (other["restaurantId"], "rst_" + uuid.uuid4().hex),
            (other["phoneNumbers"][0], unique_phone()),
        ]:
            a, b = call_body(foreign), call_body(unknown)
            external_ids += [a["callId"], b["callId"]]
            assert_same_as_unknown(
                api.post("/ivr/call", key, json=a), api.post("/ivr/call", key, json=b)
            )
        stored = {i["externalCallId"]["S"] for i in call_items(dynamodb)}
        assert not stored & set(external_ids), "a refused call was stored"
        assert api.post("/ivr/call", key, json=call_body(mine["restaurantId"])).status_code == 200

    def test_complete_a_call_of_another_key_family(self, api, make_key, make_restaurant):
        restaurant = make_restaurant(notificationEmails=[owner_email()])
        owner = make_key()["apiKey"]
        stranger = make_key()["apiKey"]  # unrestricted, but another key family
        restricted_elsewhere = make_key(restaurantIds=[make_restaurant()["restaurantId"]])["apiKey"]
        r = api.post("/ivr/call", owner, json=call_body(restaurant["restaurantId"]))
        assert r.status_code == 200, r.text
        call_id = r.json()["data"]["callId"]
        unknown = "call_" + secrets.token_hex(12)
        for other_key in (stranger, restricted_elsewhere):
            foreign = api.post(f"/ivr/call/{call_id}/complete", other_key, json={"duration": 7})
            missing = api.post(f"/ivr/call/{unknown}/complete", other_key, json={"duration": 7})
            assert_same_as_unknown(foreign, missing)
        # The same vendor call id sent by another family is another call, not the owner's.
        r = api.post(
            "/ivr/call",
            stranger,
            json=call_body(restaurant["restaurantId"], callId=r.json()["data"]["externalCallId"]),
        )
        assert (
            r.status_code == 200
            and r.json()["data"]["callId"] != call_id
            and r.json()["data"]["duplicate"] is False
        )
        # Untouched: the owner completes it with its own data, and one e-mail goes out.
        done = api.post(f"/ivr/call/{call_id}/complete", owner, json={"duration": 42})
        assert done.status_code == 200, done.text
        assert done.json()["data"]["duration"] == 42
        wait_mail(call_id)
        # And afterwards it still looks unknown to the stranger.
        assert_same_as_unknown(
            api.post(f"/ivr/call/{call_id}/complete", stranger, json={"duration": 7}),
            api.post(f"/ivr/call/{unknown}/complete", stranger, json={"duration": 7}),
        )

    def test_webhook_routes_of_another_key_family(self, api, make_key, receiver, register):
        owner = make_key()["apiKey"]
        stranger = make_key()["apiKey"]
        path = f"/ok/bola-{uuid.uuid4().hex[:8]}"
        hook = register(owner, receiver.url(path))
        wid = hook["webhookId"]
        delivery_id = send_test(api, owner, wid)
        receiver.wait(path, 1, timeout=30)
        before = deliveries_of(api, owner, wid, 100)

        unknown_wid = "wh_" + uuid.uuid4().hex
        for method, suffix, body in [
            ("GET", "/deliveries", None),
            ("POST", "/test", None),
            ("POST", "/rotate-secret", {"gracePeriodSeconds": 0}),
            ("POST", f"/deliveries/{delivery_id}/replay", None),
            ("DELETE", "", None),
        ]:
            kw = {"json": body} if body is not None else {}
            foreign = api.call(method, f"/ivr/webhooks/{wid}{suffix}", stranger, **kw)
            missing = api.call(method, f"/ivr/webhooks/{unknown_wid}{suffix}", stranger, **kw)
            assert_same_as_unknown(foreign, missing)
        listed = api.get("/ivr/webhooks", stranger)
        assert listed.status_code == 200 and wid not in listed.text

        # Someone else's delivery id under one's own webhook is just as unknown.
        own = register(stranger, receiver.url(f"/ok/stranger-{uuid.uuid4().hex[:8]}"))
        assert_same_as_unknown(
            api.post(f"/ivr/webhooks/{own['webhookId']}/deliveries/{delivery_id}/replay", stranger),
            api.post(
                f"/ivr/webhooks/{own['webhookId']}/deliveries/msg_{uuid.uuid4().hex}/replay",
                stranger,
            ),
        )

        # Nothing changed: still listed and active, no delivery added, the secret not rotated.
        views = [
            w
            for w in api.get("/ivr/webhooks", owner).json()["data"]["webhooks"]
            if w["webhookId"] == wid
        ]
        assert views and views[0]["status"] == "active"
        assert [d["deliveryId"] for d in deliveries_of(api, owner, wid, 100)] == [
            d["deliveryId"] for d in before
        ]
        send_test(api, owner, wid)
        hit = receiver.wait(path, 2, timeout=30)[1]
        signatures = hit.headers["webhook-signature"].split(" ")
        assert len(signatures) == 1, f"a stranger's rotate-secret took effect: {signatures}"
        Webhook(hook["secret"]).verify(hit.body, hit.headers)
