"""Fixtures for the end-to-end tests: they talk HTTP to `cargo lambda watch`
(PULSARA_API) and read the local DynamoDB (moto, AWS_ENDPOINT_URL) to check
what was, or wasn't, stored. `infra/test.sh` sets everything up. The helpers
themselves (bodies, checks, the receiver, the clients) are in helpers.py.

Fault injection (infra/FAULTS.md), for the tests that ask for it:
  faults   fault points in the functions: faults.arm("email.ses.after", "crash", match=call_id),
           faults.fired("email.ses.after"), faults.wait_fired(...), faults.disarm(...)
  proxy    the AWS fault proxy between the functions and moto:
           proxy.rule("dynamodb", "PutItem", "throttle", match=call_id), proxy.log(),
           proxy.requests("dynamodb", "PutItem"), proxy.client("dynamodb")
Both are session objects; after each test that used one, its rules and armed
files are cleared (pytest_runtest_teardown below), so a fault never outlives its test.
"""
from __future__ import annotations

import uuid

import boto3
import pytest
from helpers import (
    ALL_EVENTS,
    API,
    FAULT_DIR,
    FAULT_PROXY_URL,
    Api,
    Faults,
    Proxy,
    Receiver,
    call_body,
    create_key,
    create_restaurant,
    new_admin,
    register,
    reset_sign_in_limits,
    send_test,
    sign_in,
    wait_for,
)

__all__ = ["Api", "Faults", "Proxy", "wait_for"]  # what FAULTS.md names "in the tests"


def pytest_collection_modifyitems(config, items):
    if not API:
        skip = pytest.mark.skip(reason="PULSARA_API not set (run through infra/test.sh)")
        for item in items:
            if "e2e" in item.keywords:
                item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: needs the local stack (infra/test.sh)")


@pytest.fixture(scope="session")
def api() -> Api:
    return Api(API)


@pytest.fixture(scope="session")
def dynamodb():
    return boto3.client("dynamodb")


@pytest.fixture(scope="session")
def admin_credentials() -> tuple[str, str]:
    return new_admin("admin")


@pytest.fixture(scope="session")
def admin_token(api, admin_credentials) -> str:
    return sign_in(api, *admin_credentials)


@pytest.fixture
def fresh_sign_in_budget(dynamodb):
    """For a test that signs in: it starts with the whole sign-in budget (5 a minute per
    e-mail, 20 per source address) and gives back what it spent. `cargo lambda watch` gives
    every request the source address 127.0.0.1, so without this every sign-in of the session
    shares one 20-a-minute budget, and a test that signs in fails after one that spent it."""
    reset_sign_in_limits(dynamodb)
    yield
    reset_sign_in_limits(dynamodb)


@pytest.fixture
def make_restaurant(api, admin_token):
    """make_restaurant(**overrides) -> a new restaurant (helpers.create_restaurant)."""
    return lambda **overrides: create_restaurant(api, admin_token, **overrides)


@pytest.fixture
def make_key(api, admin_token):
    """make_key(**body) -> a new API key (helpers.create_key)."""
    return lambda **body: create_key(api, admin_token, **body)


# --- webhooks --------------------------------------------------------------------------------


@pytest.fixture
def receiver():
    """A local webhook receiver (helpers.Receiver), answering by path: `/ok/...` 204 etc."""
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(name="register")
def register_fixture(api):
    """register(key, url, events=ALL_EVENTS, **extra) -> the 201 data; the webhooks are
    deleted afterwards."""
    created: list[tuple[str, str]] = []

    def reg(key: str, url: str, events=ALL_EVENTS, **extra) -> dict:
        data = register(api, key, url, events, **extra)
        created.append((key, data["webhookId"]))
        return data

    yield reg
    for key, webhook_id in created:
        try:
            api.delete(f"/ivr/webhooks/{webhook_id}", key)
        except Exception:  # noqa: BLE001 - best effort
            pass


@pytest.fixture(scope="module")
def route_world(api, admin_token):
    """Real objects for every path parameter of the route inventory, so a route that failed
    to check the kind of credential would act on something that exists (the security tests
    of function-level authorization and misconfiguration). Read-only for the tests using it."""
    receiver = Receiver()
    rid = create_restaurant(api, admin_token)["restaurantId"]
    key = create_key(
        api, admin_token, name="function-level " + uuid.uuid4().hex[:6], rateLimitPerMinute=10000
    )
    r = api.post("/ivr/call", key["apiKey"], json=call_body(rid))
    assert r.status_code == 200, r.text
    call_id = r.json()["data"]["callId"]
    wid = register(api, key["apiKey"], receiver.url("/ok/world"))["webhookId"]
    delivery_id = send_test(api, key["apiKey"], wid)
    r = api.post("/ivr/integrations", key["apiKey"],
                 json={"platform": "elevenlabs", "secret": "wsec_" + uuid.uuid4().hex})
    assert r.status_code == 201, r.text
    iid = r.json()["data"]["integrationId"]
    yield {
        "key": key["apiKey"],
        "params": {"keyId": key["keyId"], "restaurantId": rid, "callId": call_id, "webhookId": wid,
                   "deliveryId": delivery_id, "integrationId": iid},
    }
    api.delete(f"/ivr/integrations/{iid}", key["apiKey"])
    api.delete(f"/ivr/webhooks/{wid}", key["apiKey"])
    receiver.close()


# --- fault injection (infra/FAULTS.md) --------------------------------------------------------


@pytest.fixture(scope="session")
def faults() -> Faults:
    if not FAULT_DIR:
        pytest.skip("PULSARA_FAULT_DIR not set (run through infra/test.sh)")
    return Faults(FAULT_DIR)


@pytest.fixture(scope="session")
def proxy() -> Proxy:
    if not FAULT_PROXY_URL:
        pytest.skip("FAULT_PROXY_URL not set (run through infra/test.sh)")
    return Proxy(FAULT_PROXY_URL)


def pytest_runtest_teardown(item, nextitem):
    """After a test that used `faults` or `proxy`: disarm what it left armed."""
    for name in ("faults", "proxy"):
        used = getattr(item, "funcargs", {}).get(name)
        if isinstance(used, (Faults, Proxy)):
            used.clear()


# --- voice platform integrations -------------------------------------------------------------


@pytest.fixture
def world(api, make_key, make_restaurant):
    """An IVR key, an open restaurant with its own e-mail address, and integrations."""
    key = make_key(rateLimitPerMinute=10000)["apiKey"]
    owner = f"owner-{uuid.uuid4().hex[:8]}@luigis.example"
    restaurant = make_restaurant(notificationEmails=[owner])
    created = []

    def integrate(platform: str, secret: str, **extra) -> dict:
        r = api.post("/ivr/integrations", key, json={"platform": platform, "secret": secret,
                                                     **extra})
        assert r.status_code == 201, r.text
        created.append(r.json()["data"]["integrationId"])
        return r.json()["data"]

    yield {"key": key, "restaurant": restaurant, "number": restaurant["phoneNumbers"][0],
           "integrate": integrate}
    for iid in created:
        api.delete(f"/ivr/integrations/{iid}", key)
