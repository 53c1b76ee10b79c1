"""End-to-end: admin sign-in, API keys, restaurants and the config endpoint,
through `cargo lambda watch` against moto."""
from __future__ import annotations

import hashlib
import json
import os
import time

import pytest
from helpers import (
    KEY_CACHE_SECONDS,
    LOGIN_PATH,
    assert_error,
    config_path,
    restaurant_body,
    scan_all,
    unique_phone,
)

pytestmark = pytest.mark.e2e


# --- admin sign-in ---------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_sign_in_budget")
def test_login_returns_short_lived_token(api, admin_credentials):
    email, password = admin_credentials
    r = api.post(LOGIN_PATH, json={"email": email.upper(), "password": password})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["tokenType"] == "Bearer"
    assert data["accessToken"].count(".") == 2
    assert 0 < data["expiresIn"] <= 3600


@pytest.mark.usefixtures("fresh_sign_in_budget")
def test_login_failures(api, admin_credentials):
    email, _ = admin_credentials
    assert_error(
        api.post(LOGIN_PATH, json={"email": email, "password": "wrong-password"}),
        401,
        "UNAUTHORIZED",
    )
    assert_error(
        api.post(LOGIN_PATH, json={"email": "nobody@pulsara.test", "password": "x" * 12}),
        401,
        "UNAUTHORIZED",
    )
    assert_error(
        api.post(LOGIN_PATH, data="{not json", headers={"content-type": "application/json"}),
        400,
        "BAD_REQUEST",
    )
    assert_error(api.post(LOGIN_PATH, json={"email": email}), 422, "VALIDATION_ERROR")
    assert_error(
        api.post(
            LOGIN_PATH,
            data="email=a",
            headers={"content-type": "application/x-www-form-urlencoded"},
        ),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )


@pytest.mark.usefixtures("fresh_sign_in_budget")
def test_login_is_rate_limited_per_email(api):
    # Fixed one-minute windows: 12 attempts put at least 6 in one window (limit 5).
    email = f"victim-{time.time_ns()}@pulsara.test"
    statuses = []
    for _ in range(12):
        r = api.post(LOGIN_PATH, json={"email": email, "password": "guess-guess-guess"})
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
            assert r.headers["ratelimit-remaining"] == "0"
            break
    assert 429 in statuses, statuses


# --- API keys --------------------------------------------------------------------------


def test_create_api_key_exactly_as_seed(api, admin_token, dynamodb):
    r = api.post(
        "/ivr/auth/api-key",
        admin_token,
        json={"name": "Twilio IVR Integration", "description": "API key for Twilio IVR system"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["success"] is True
    assert body["message"] == "API key generated successfully"
    data = body["data"]
    key = data["apiKey"]
    assert key.startswith("psk_live_") and len(key) == len("psk_live_") + 32
    assert key[len("psk_live_"):].isalnum()
    assert data["name"] == "Twilio IVR Integration"
    assert data["createdAt"].endswith("Z")
    # Only the hash is stored.
    items = scan_all(dynamodb, "API_KEYS_TABLE")
    dumped = json.dumps(items)
    assert key not in dumped and key[len("psk_live_") + 8:] not in dumped
    mine = [i for i in items if i["keyId"]["S"] == data["keyId"]]
    # A new key's hash is SHA-256: its secret is ~143 random bits (shared/src/domain/hashing.rs).
    stored = mine[0]["keyHash"]["S"] if mine else ""
    assert stored == "sha256$" + hashlib.sha256(key.encode()).hexdigest()


def test_passwords_are_only_stored_hashed(dynamodb, admin_credentials):
    email, password = admin_credentials
    items = scan_all(dynamodb, "ADMIN_USERS_TABLE")
    assert password not in json.dumps(items)
    mine = [i for i in items if i["email"]["S"] == email]
    assert mine[0]["passwordHash"]["S"].startswith("$argon2id$")


def test_api_key_validation(api, admin_token):
    assert_error(
        api.post("/ivr/auth/api-key", admin_token, json={"name": ""}),
        422,
        "VALIDATION_ERROR",
        "name",
    )
    assert_error(
        api.post(
            "/ivr/auth/api-key",
            admin_token,
            json={"name": "x", "expiresAt": "2001-01-01T00:00:00Z"},
        ),
        422,
        "VALIDATION_ERROR",
        "expiresAt",
    )
    assert_error(
        api.post(
            "/ivr/auth/api-key", admin_token, json={"name": "x", "restaurantIds": ["rst_missing"]}
        ),
        422,
        "VALIDATION_ERROR",
        "restaurantIds[0]",
    )
    assert_error(
        api.post("/ivr/auth/api-key", admin_token, json={"name": "x", "keyHash": "mine"}),
        422,
        "VALIDATION_ERROR",
    )


def test_credentials_are_checked(api, admin_token, make_key, make_restaurant):
    rid = make_restaurant()["restaurantId"]
    path = config_path(rid)
    assert_error(api.get(path), 401, "UNAUTHORIZED")
    assert_error(api.get(path, "psk_live_" + "A" * 32), 401, "UNAUTHORIZED")
    assert_error(api.get(path, "not-a-key"), 401, "UNAUTHORIZED")
    key = make_key()["apiKey"]
    wrong_secret = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    assert_error(api.get(path, wrong_secret), 401, "UNAUTHORIZED")
    assert api.get(path, key).status_code == 200
    # An IVR key on admin routes, an admin token on an IVR route: 403.
    assert_error(api.post("/ivr/restaurants", key, json=restaurant_body()), 403, "FORBIDDEN")
    assert_error(api.get("/ivr/auth/api-keys", key), 403, "FORBIDDEN")
    assert_error(api.post("/ivr/auth/api-key", key, json={"name": "escalate"}), 403, "FORBIDDEN")
    assert_error(api.get(path, admin_token), 403, "FORBIDDEN")
    # A tampered admin token is just invalid.
    head, payload, sig = admin_token.split(".")
    assert_error(
        api.get("/ivr/auth/api-keys", f"{head}.{payload}.{sig[:-2]}xx"), 401, "UNAUTHORIZED"
    )


def test_revoked_key_stops_working(api, admin_token, make_key, make_restaurant):
    rid = make_restaurant()["restaurantId"]
    key = make_key()
    assert api.get(config_path(rid), key["apiKey"]).status_code == 200
    r = api.delete(f"/ivr/auth/api-key/{key['keyId']}", admin_token)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == "revoked"
    assert r.json()["data"]["effectiveWithinSeconds"] <= 60
    time.sleep(KEY_CACHE_SECONDS + 0.5)
    assert_error(api.get(config_path(rid), key["apiKey"]), 401, "UNAUTHORIZED")
    assert_error(api.delete("/ivr/auth/api-key/nosuchid", admin_token), 404, "NOT_FOUND")


def test_rotated_key_works_during_grace_then_stops(api, admin_token, make_key, make_restaurant):
    rid = make_restaurant()["restaurantId"]
    old = make_key(restaurantIds=[rid], rateLimitPerMinute=1000)
    assert api.get(config_path(rid), old["apiKey"]).status_code == 200
    grace = KEY_CACHE_SECONDS + 3
    r = api.post(
        f"/ivr/auth/api-key/{old['keyId']}/rotate", admin_token, json={"gracePeriodSeconds": grace}
    )
    assert r.status_code == 201, r.text
    new = r.json()["data"]
    assert new["apiKey"] != old["apiKey"] and new["previousKeyId"] == old["keyId"]
    assert new["restaurantIds"] == [rid] and new["rateLimitPerMinute"] == 1000
    time.sleep(KEY_CACHE_SECONDS + 0.5)
    assert api.get(config_path(rid), old["apiKey"]).status_code == 200, "old key works during grace"
    assert api.get(config_path(rid), new["apiKey"]).status_code == 200
    # Rotating again while in grace is refused.
    assert_error(api.post(f"/ivr/auth/api-key/{old['keyId']}/rotate", admin_token), 409, "CONFLICT")
    time.sleep(grace + 0.5)  # past grace plus the key cache
    assert_error(api.get(config_path(rid), old["apiKey"]), 401, "UNAUTHORIZED")
    assert api.get(config_path(rid), new["apiKey"]).status_code == 200


def test_list_keys_never_shows_hashes_and_paginates(api, admin_token, make_key):
    make_key()
    make_key()
    r = api.get("/ivr/auth/api-keys", admin_token, params={"limit": 1})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert len(data["keys"]) == 1 and data["nextCursor"]
    assert "keyHash" not in r.text and "$argon2" not in r.text and "psk_live_" not in r.text
    r2 = api.get(
        "/ivr/auth/api-keys", admin_token, params={"limit": 1, "cursor": data["nextCursor"]}
    )
    assert r2.status_code == 200
    assert r2.json()["data"]["keys"][0]["keyId"] != data["keys"][0]["keyId"]
    assert_error(
        api.get("/ivr/auth/api-keys", admin_token, params={"limit": 1000}),
        422,
        "VALIDATION_ERROR",
        "limit",
    )
    assert_error(
        api.get("/ivr/auth/api-keys", admin_token, params={"cursor": "garbage"}),
        422,
        "VALIDATION_ERROR",
        "cursor",
    )


def test_rate_limit_answers_429_with_headers(api, make_key, make_restaurant):
    rid = make_restaurant()["restaurantId"]
    key = make_key(rateLimitPerMinute=3)["apiKey"]
    first = api.get(config_path(rid), key)
    assert first.status_code == 200
    assert first.headers["ratelimit-limit"] == "3"
    assert int(first.headers["ratelimit-remaining"]) <= 2
    limited = None
    for _ in range(8):
        r = api.get(config_path(rid), key)
        if r.status_code == 429:
            limited = r
            break
    assert limited is not None, "no 429 after 9 requests with a limit of 3/min"
    assert_error(limited, 429, "RATE_LIMITED")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.headers["ratelimit-limit"] == "3"
    assert limited.headers["ratelimit-remaining"] == "0"


# --- restaurants and config ------------------------------------------------------------


def test_create_get_update_restaurant(api, admin_token, make_restaurant):
    phone = unique_phone()
    created = make_restaurant(phoneNumbers=[phone], notificationEmails=["Owner@Luigis.Example"])
    rid = created["restaurantId"]
    assert rid.startswith("rst_")
    digits = "".join(c for c in phone if c.isdigit())
    assert created["phoneNumbers"] == ["+1" + digits]
    assert created["notificationEmails"] == ["owner@luigis.example"]
    got = api.get(f"/ivr/restaurants/{rid}", admin_token)
    assert got.status_code == 200 and got.json()["data"] == created
    r = api.patch(
        f"/ivr/restaurants/{rid}", admin_token, json={"name": "Luigi's Two", "agent": None}
    )
    assert r.status_code == 200, r.text
    updated = r.json()["data"]
    assert updated["name"] == "Luigi's Two" and "agent" not in updated
    assert updated["version"] == created["version"] + 1
    assert_error(api.get("/ivr/restaurants/rst_nope", admin_token), 404, "NOT_FOUND")
    assert_error(
        api.patch("/ivr/restaurants/rst_nope", admin_token, json={"name": "x"}), 404, "NOT_FOUND"
    )


def test_config_by_id_and_by_any_phone_format(api, make_key, make_restaurant):
    phone = unique_phone()
    digits = "".join(c for c in phone if c.isdigit())
    r = make_restaurant(phoneNumbers=[phone])
    key = make_key()["apiKey"]
    formats = [
        r["restaurantId"],
        phone,
        "+1" + digits,
        f"{digits[:3]}.{digits[3:6]}.{digits[6:]}",
        f"1-{digits[:3]}-{digits[3:6]}-{digits[6:]}",
    ]
    for ident in formats:
        resp = api.get(config_path(ident), key)
        assert resp.status_code == 200, (ident, resp.text)
        data = resp.json()["data"]
        assert data["restaurantId"] == r["restaurantId"], ident
    body = resp.json()
    assert body["success"] is True
    for field in [
        "restaurantId",
        "name",
        "aiEnabled",
        "callHoursStart",
        "callHoursEnd",
        "currentlyInCallHours",
        "agent",
        "forwarding_number",
    ]:
        assert field in data, field
    assert data["agent"] == {
        "elevenlabs_agent_id": "agent_luigi",
        "voice_id": "tnSpp4vdxKPjI9w0GnoV",
        "tools": ["end_call", "get_address", "forward_call"],
    }
    # Open all day with an agent: the AI answers.
    assert data["currentlyInCallHours"] is True
    assert data["routing"] == {"action": "ai_agent", "reason": "in_call_hours", "forwardTo": None}
    assert_error(api.get(config_path("(555) 000-0000"), key), 404, "NOT_FOUND")
    assert_error(api.get(config_path("rst_unknown"), key), 404, "NOT_FOUND")


def test_config_outside_hours_forwards(api, make_key, make_restaurant):
    # A window that is never "now": closed every day of the week.
    closed = {
        d: []
        for d in ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    }
    r = make_restaurant(schedule=closed)
    key = make_key()["apiKey"]
    data = api.get(config_path(r["restaurantId"]), key).json()["data"]
    assert data["currentlyInCallHours"] is False
    assert data["routing"]["action"] == "forward"
    assert data["routing"]["reason"] == "outside_call_hours"
    assert data["routing"]["forwardTo"] == r["forwardingNumberE164"]


def test_restricted_key_sees_only_its_restaurants(api, make_key, make_restaurant):
    mine, other = make_restaurant(), make_restaurant()
    key = make_key(restaurantIds=[mine["restaurantId"]])["apiKey"]
    assert api.get(config_path(mine["restaurantId"]), key).status_code == 200
    assert_error(api.get(config_path(other["restaurantId"]), key), 404, "NOT_FOUND")
    assert_error(api.get(config_path(other["phoneNumbers"][0]), key), 404, "NOT_FOUND")


def test_phone_numbers_are_unique_across_restaurants(api, admin_token, make_restaurant):
    taken = make_restaurant()["phoneNumbers"][0]
    r = api.post("/ivr/restaurants", admin_token, json=restaurant_body(phoneNumbers=[taken]))
    assert_error(r, 409, "CONFLICT", "phoneNumbers")
    other = make_restaurant()
    r = api.patch(
        f"/ivr/restaurants/{other['restaurantId']}", admin_token, json={"phoneNumbers": [taken]}
    )
    assert_error(r, 409, "CONFLICT", "phoneNumbers")


def test_config_by_phone_follows_every_patch(api, admin_token, dynamodb, make_key, make_restaurant):
    """Each phone item carries a copy of its restaurant (the ring path's lookup by phone is one
    read), written in the same transaction as the restaurant: a PATCH shows by phone at once, a
    number it dropped is not found, and a phone item older than the copies still resolves."""
    keep, drop, add = unique_phone(), unique_phone(), unique_phone()
    r = make_restaurant(phoneNumbers=[keep, drop])
    rid, key = r["restaurantId"], make_key()["apiKey"]
    assert api.get(config_path(drop), key).json()["data"]["restaurantId"] == rid
    resp = api.patch(
        f"/ivr/restaurants/{rid}",
        admin_token,
        json={"name": "Renamed Trattoria", "phoneNumbers": [keep, add]},
    )
    assert resp.status_code == 200, resp.text
    for phone in (keep, add):
        got = api.get(config_path(phone), key)
        assert got.status_code == 200, got.text
        assert (got.json()["data"]["restaurantId"], got.json()["data"]["name"]) == (
            rid,
            "Renamed Trattoria",
        )
    assert_error(api.get(config_path(drop), key), 404, "NOT_FOUND")
    table = os.environ["PHONE_NUMBERS_TABLE"]
    items = {i["phoneNumber"]["S"]: i for i in scan_all(dynamodb, "PHONE_NUMBERS_TABLE")}
    for e164 in resp.json()["data"]["phoneNumbers"]:
        copy = items[e164]["restaurant"]["M"]
        assert copy["name"]["S"] == "Renamed Trattoria" and copy["restaurantId"]["S"] == rid
    # A phone item as written before the copies: the id only, still found (two reads).
    legacy = resp.json()["data"]["phoneNumbers"][1]
    dynamodb.put_item(
        TableName=table, Item={"phoneNumber": {"S": legacy}, "restaurantId": {"S": rid}}
    )
    got = api.get(config_path(legacy), key)
    assert got.status_code == 200 and got.json()["data"]["name"] == "Renamed Trattoria", got.text


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"phoneNumbers": ["12"]}, "phoneNumbers[0]"),
        ({"phoneNumbers": []}, "phoneNumbers"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"callHoursStart": "25:00"}, "callHoursStart"),
        ({"callHoursStart": "10:00", "callHoursEnd": "10:00"}, "callHoursEnd"),
        ({"schedule": {"monday": [{"start": "9am", "end": "17:00"}]}}, "schedule.monday[0].start"),
        ({"schedule": {"funday": []}}, None),
        ({"notificationEmails": ["not-an-email"]}, "notificationEmails[0]"),
        ({"restaurantId": "rst_chosen_by_me"}, None),
        ({"aiEnabled": "yes"}, "aiEnabled"),
    ],
)
def test_invalid_restaurants_are_rejected_and_nothing_written(
    api, admin_token, dynamodb, overrides, field
):
    before = (
        len(scan_all(dynamodb, "RESTAURANTS_TABLE")),
        len(scan_all(dynamodb, "PHONE_NUMBERS_TABLE")),
    )
    r = api.post("/ivr/restaurants", admin_token, json=restaurant_body(**overrides))
    assert_error(r, 422, "VALIDATION_ERROR", field)
    after = (
        len(scan_all(dynamodb, "RESTAURANTS_TABLE")),
        len(scan_all(dynamodb, "PHONE_NUMBERS_TABLE")),
    )
    assert before == after


def test_forwarding_to_own_number_is_a_loop(api, admin_token, make_restaurant):
    body = restaurant_body()
    body["forwarding_number"] = body["phoneNumbers"][0]
    assert_error(
        api.post("/ivr/restaurants", admin_token, json=body),
        422,
        "VALIDATION_ERROR",
        "forwarding_number",
    )
    r = make_restaurant()
    patch = {"forwarding_number": r["phoneNumbers"][0]}
    assert_error(
        api.patch(f"/ivr/restaurants/{r['restaurantId']}", admin_token, json=patch),
        422,
        "VALIDATION_ERROR",
        "forwarding_number",
    )


def test_malformed_and_oversized_bodies(api, admin_token, dynamodb):
    before = len(scan_all(dynamodb, "RESTAURANTS_TABLE"))
    r = api.post(
        "/ivr/restaurants",
        admin_token,
        data='{"name": "x",',
        headers={"content-type": "application/json"},
    )
    assert_error(r, 400, "BAD_REQUEST")
    huge = restaurant_body(name="x" * (70 * 1024))
    assert_error(api.post("/ivr/restaurants", admin_token, json=huge), 413, "PAYLOAD_TOO_LARGE")
    r = api.post(
        "/ivr/restaurants",
        admin_token,
        data=json.dumps(restaurant_body()),
        headers={"content-type": "text/plain"},
    )
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert len(scan_all(dynamodb, "RESTAURANTS_TABLE")) == before


def test_every_response_has_a_request_id(api, admin_token):
    for r in [api.get("/ivr/auth/api-keys", admin_token), api.get("/ivr/auth/api-keys")]:
        assert r.headers.get("x-request-id")
        assert r.headers["content-type"].startswith("application/json")


# --- phone numbers outside North America ------------------------------------------------

# Written as people write them, their E.164 and libphonenumber's international format (which our
# display form is, outside the default region). Each has a 1 right after the country code, which a
# parser defaulting to the US once took for North America's trunk prefix.
WORLD_NUMBERS = [
    ("+44 161 496 0000", "+441614960000", "+44 161 496 0000"),  # Manchester
    ("+44 113 496 0000", "+441134960000", "+44 113 496 0000"),  # Leeds
    ("+33 1 23 45 67 89", "+33123456789", "+33 1 23 45 67 89"),  # Paris
    ("+86 10 1234 5678", "+861012345678", "+86 10 1234 5678"),  # Beijing
    ("+55 11 91234-5678", "+5511912345678", "+55 11 91234-5678"),  # São Paulo mobile
    ("+49 151 23456789", "+4915123456789", "+49 1512 3456789"),  # German mobile
]


@pytest.mark.parametrize("index", range(len(WORLD_NUMBERS)), ids=[n for n, _, _ in WORLD_NUMBERS])
def test_world_numbers_round_trip_through_create_config_and_forwarding(
    api, admin_token, make_restaurant, make_key, index
):
    own, own_e164, _ = WORLD_NUMBERS[index]
    forward, forward_e164, forward_shown = WORLD_NUMBERS[(index + 1) % len(WORLD_NUMBERS)]
    caller, caller_e164, _ = WORLD_NUMBERS[(index + 2) % len(WORLD_NUMBERS)]
    closed = {
        d: []
        for d in ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    }
    created = make_restaurant(phoneNumbers=[own], forwarding_number=forward, schedule=closed)
    assert created["phoneNumbers"] == [own_e164]
    assert created["forwardingNumberE164"] == forward_e164
    assert created["forwarding_number"] == forward_shown
    rid = created["restaurantId"]
    stored = api.get(f"/ivr/restaurants/{rid}", admin_token).json()["data"]
    assert (stored["forwarding_number"], stored["forwardingNumberE164"]) == (
        forward_shown,
        forward_e164,
    )

    key = make_key()["apiKey"]
    for ident in (rid, own, own_e164):
        r = api.get(config_path(ident), key)
        assert r.status_code == 200, (ident, r.text)
        config = r.json()["data"]
        assert config["restaurantId"] == rid
        assert config["phoneNumbers"] == [own_e164]
        assert (config["forwarding_number"], config["forwardingNumberE164"]) == (
            forward_shown,
            forward_e164,
        )
        assert config["routing"] == {
            "action": "forward",
            "reason": "outside_call_hours",
            "forwardTo": forward_e164,
        }

    call = api.post("/ivr/call", key, json={
        "restaurantId": rid, "callId": f"CA{os.urandom(16).hex()}",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "callerNumber": caller, "transcript": "Customer: hi, are you open tonight?",
    })
    assert call.status_code in (200, 201), call.text
    view = api.get(f"/ivr/calls/{call.json()['data']['callId']}", admin_token).json()["data"]
    assert view["callerNumber"] == caller_e164
