"""Fixtures for the end-to-end tests: they talk HTTP to `cargo lambda watch`
(PULSARA_API) and read the local DynamoDB (moto, AWS_ENDPOINT_URL) to check
what was, or wasn't, stored. `infra/test.sh` sets everything up."""
from __future__ import annotations

import os
import secrets
import subprocess
import uuid
from pathlib import Path

import boto3
import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
API = os.environ.get("PULSARA_API", "")


def pytest_collection_modifyitems(config, items):
    if not API:
        skip = pytest.mark.skip(reason="PULSARA_API not set (run through infra/test.sh)")
        for item in items:
            if "e2e" in item.keywords:
                item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "e2e: needs the local stack (infra/test.sh)")


class Api:
    """Thin HTTP client: every call returns the `requests.Response`."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")
        self.http = requests.Session()

    def call(self, method: str, path: str, token: str | None = None, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.base + path, headers=headers, timeout=60, **kw)

    def get(self, path, token=None, **kw):
        return self.call("GET", path, token, **kw)

    def post(self, path, token=None, **kw):
        return self.call("POST", path, token, **kw)

    def patch(self, path, token=None, **kw):
        return self.call("PATCH", path, token, **kw)

    def delete(self, path, token=None, **kw):
        return self.call("DELETE", path, token, **kw)


@pytest.fixture(scope="session")
def api() -> Api:
    return Api(API)


@pytest.fixture(scope="session")
def dynamodb():
    return boto3.client("dynamodb")


def admin_cli(*args: str, env: dict[str, str]) -> str:
    binary = REPO / "target" / "debug" / "pulsara-admin"
    out = subprocess.run(
        [str(binary), *args], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return out.stdout


@pytest.fixture(scope="session")
def admin_credentials() -> tuple[str, str]:
    email = f"admin-{uuid.uuid4().hex[:8]}@pulsara.test"
    password = "correct-horse-" + secrets.token_hex(8)
    admin_cli("create-admin", "--email", email, env={"PULSARA_ADMIN_PASSWORD": password})
    return email, password


@pytest.fixture(scope="session")
def admin_token(api, admin_credentials) -> str:
    email, password = admin_credentials
    r = api.post("/ivr/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()["data"]["accessToken"]


_phone_counter = iter(range(1000, 9999))


def unique_phone() -> str:
    """A fresh fictional North-American 555 number, in national format."""
    n = next(_phone_counter)
    prefix = uuid.uuid4().int % 800 + 200
    return f"(555) {prefix:03d}-{n:04d}"


def restaurant_body(**overrides) -> dict:
    body = {
        "name": "Luigi's Trattoria",
        "phoneNumbers": [unique_phone()],
        "timezone": "America/New_York",
        "aiEnabled": True,
        "callHoursStart": "00:00",
        "callHoursEnd": "24:00",
        "agent": {
            "elevenlabs_agent_id": "agent_luigi",
            "voice_id": "tnSpp4vdxKPjI9w0GnoV",
            "tools": ["end_call", "get_address", "forward_call"],
        },
        "forwarding_number": unique_phone(),
        "notificationEmails": ["owner@luigis.example"],
    }
    body.update(overrides)
    return body


@pytest.fixture
def make_restaurant(api, admin_token):
    def make(**overrides) -> dict:
        r = api.post("/ivr/restaurants", admin_token, json=restaurant_body(**overrides))
        assert r.status_code == 201, r.text
        return r.json()["data"]

    return make


@pytest.fixture
def make_key(api, admin_token):
    def make(**body) -> dict:
        body.setdefault("name", "Test IVR " + uuid.uuid4().hex[:6])
        r = api.post("/ivr/auth/api-key", admin_token, json=body)
        assert r.status_code == 201, r.text
        return r.json()["data"]

    return make


def scan_all(dynamodb, table_env: str) -> list[dict]:
    items, start = [], None
    while True:
        kw = {"TableName": os.environ[table_env]}
        if start:
            kw["ExclusiveStartKey"] = start
        page = dynamodb.scan(**kw)
        items.extend(page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return items
