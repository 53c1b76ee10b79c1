"""End-to-end security tests: API5:2023 Broken Function Level Authorization
(OWASP API Security Top 10, 2023).

The stack these run against, and the rules every security module follows, are described
in infra/SECURITY.md and infra/tests/helpers.py.
"""
from __future__ import annotations

import pytest
from helpers import (
    ADMIN_ROUTES,
    IVR_ROUTES,
    LOGIN,
    PROTECTED_ROUTES,
    ROUTES,
    SIGNED_ROUTES,
    assert_error,
    body_kw,
    config_path,
    fill,
    good_claims,
    jwt,
    needs_token_secret,
    route_id,
)

pytestmark = pytest.mark.e2e


class TestAPI5FunctionLevelAuthorization:
    """API5 Broken Function Level Authorization: every route of template.yaml, classified by
    path: admin routes refuse IVR keys (403), IVR routes refuse admin tokens (403), every
    route but sign-in refuses anonymous callers (401); the check comes before anything else,
    and the refusals carry no data."""

    def test_every_route_is_classified(self):
        assert LOGIN in ROUTES
        assert ADMIN_ROUTES and IVR_ROUTES
        assert set(ADMIN_ROUTES) | set(IVR_ROUTES) | set(SIGNED_ROUTES) | {LOGIN} == set(ROUTES)
        assert ("GET", "/ivr/restaurant/{restaurantId}/config") in IVR_ROUTES
        assert ("GET", "/ivr/restaurants/{restaurantId}/calls") in ADMIN_ROUTES

    @pytest.mark.parametrize("route", ADMIN_ROUTES, ids=route_id)
    def test_ivr_key_on_admin_route_is_403(self, api, route_world, route):
        method, path = route
        assert_error(
            api.call(method, fill(path, route_world), route_world["key"], **body_kw(method)),
            403,
            "FORBIDDEN",
        )

    @needs_token_secret
    @pytest.mark.parametrize("route", ADMIN_ROUTES, ids=route_id)
    def test_token_without_the_admin_role_on_admin_route_is_403(
        self, api, admin_token, route_world, route
    ):
        method, path = route
        token = jwt(good_claims(admin_token, role="viewer"))
        assert_error(
            api.call(method, fill(path, route_world), token, **body_kw(method)), 403, "FORBIDDEN"
        )

    @pytest.mark.parametrize("route", IVR_ROUTES, ids=route_id)
    def test_admin_token_on_ivr_route_is_403(self, api, admin_token, route_world, route):
        method, path = route
        assert_error(
            api.call(method, fill(path, route_world), admin_token, **body_kw(method)),
            403,
            "FORBIDDEN",
        )

    @pytest.mark.parametrize("route", PROTECTED_ROUTES, ids=route_id)
    def test_no_credentials_is_401(self, api, route_world, route):
        method, path = route
        body = assert_error(
            api.call(method, fill(path, route_world), **body_kw(method)), 401, "UNAUTHORIZED"
        )
        assert body["message"] == "missing or invalid credentials"

    def test_the_world_is_untouched(self, api, admin_token, route_world):
        """After every refusal above, the objects they pointed at are as they were."""
        p = route_world["params"]
        assert api.get(f"/ivr/restaurants/{p['restaurantId']}", admin_token).status_code == 200
        assert api.get(config_path(p["restaurantId"]), route_world["key"]).status_code == 200, (
            "the key was not revoked"
        )
        call = api.get(f"/ivr/calls/{p['callId']}", admin_token).json()["data"]
        assert call["status"] == "in_progress"
        hooks = api.get("/ivr/webhooks", route_world["key"]).json()["data"]["webhooks"]
        assert [h["webhookId"] for h in hooks] == [p["webhookId"]]
