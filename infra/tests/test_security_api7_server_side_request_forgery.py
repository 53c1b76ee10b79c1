"""End-to-end security tests: API7:2023 Server Side Request Forgery
(OWASP API Security Top 10, 2023).

The stack these run against, and the rules every security module follows, are described
in infra/SECURITY.md and infra/tests/helpers.py.
"""
from __future__ import annotations

import uuid

import pytest
from helpers import (
    ALL_EVENTS,
    assert_error,
    deliveries_of,
    send_test,
    wait_for,
)

pytestmark = pytest.mark.e2e


INWARD_TARGETS = [
    "https://127.0.0.1/",
    "https://10.0.0.5/",
    "https://192.168.0.1/",
    "https://172.16.0.1/",
    "https://[::1]/",
    "https://169.254.169.254/latest/meta-data/",
    "https://[fd00:ec2::254]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://[64:ff9b::a9fe:a9fe]/",  # NAT64 of the metadata address
    "https://[::127.0.0.1]/",  # IPv4-compatible IPv6 (deprecated) of loopback
    "https://[::10.0.0.1]/",  # ... of a private address
    "https://[::169.254.169.254]/",  # ... of the metadata address
    "https://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
    "https://[2002:a9fe:a9fe::1]/",  # 6to4 of the metadata address
    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    "https://198.18.0.1/",  # benchmarking
    "https://192.0.0.8/",  # IETF protocol assignments
    "https://[fe80::1]/",
    "https://[::]/",
    "https://localhost/",
    "https://localhost./",
    "https://api.localhost/",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://intranet/",
    "https://0.0.0.0/",
    "https://100.64.0.1/",
    "https://224.0.0.1/",
    "https://2130706433/",  # 127.0.0.1 in decimal
    "https://0x7f.0.0.1/",  # ... in hex
    "https://0177.0.0.1/",  # ... in octal
    "https://127.1/",
    "http://example.com/",  # not https
    "http://10.0.0.5/",  # plain http is for loopback receivers only, and only in the local stage
    "https://user:pass@example.com/",
    "https://example.com@127.0.0.1/",
    "https://127.0.0.1#@example.com/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://example.com/",
]


class TestAPI7ServerSideRequestForgery:
    """API7 Server Side Request Forgery: webhook callback URLs (the only outbound requests a
    caller controls) must be https to public addresses: loopback, private, link-local,
    unique-local, metadata, reserved, internal names, alternative IP notations,
    credentials and other schemes are refused at registration; redirects are not followed."""

    @pytest.mark.parametrize("url", INWARD_TARGETS)
    def test_inward_callback_urls_are_refused(self, api, make_key, url):
        key = make_key()["apiKey"]
        r = api.post("/ivr/webhooks/register", key, json={"callbackUrl": url, "events": ALL_EVENTS})
        assert_error(r, 422, "VALIDATION_ERROR", "callbackUrl")
        assert api.get("/ivr/webhooks", key).json()["data"]["webhooks"] == []

    def test_redirects_are_not_followed(self, api, make_key, receiver, register):
        key = make_key()["apiKey"]
        tag = uuid.uuid4().hex[:8]
        hook = register(key, receiver.url(f"/redirect/{tag}"), ["agent.updated"])
        delivery_id = send_test(api, key, hook["webhookId"])
        receiver.wait(f"/redirect/{tag}", 2, timeout=30)  # the first attempt and a retry

        def attempts():
            d = next(
                (
                    d
                    for d in deliveries_of(api, key, hook["webhookId"], 100)
                    if d["deliveryId"] == delivery_id
                ),
                None,
            )
            return d if d and len(d["attempts"]) >= 2 else None

        d = wait_for(attempts, 30, 0.2)
        assert d, deliveries_of(api, key, hook["webhookId"], 100)
        assert d["status"] != "succeeded", d
        assert all(a.get("statusCode") == 302 for a in d["attempts"]), d["attempts"]
        assert receiver.to(f"/landed/{tag}") == [], "the dispatcher followed a redirect"
