"""End-to-end security tests: API2:2023 Broken Authentication
(OWASP API Security Top 10, 2023).

The stack these run against, and the rules every security module follows, are described
in infra/SECURITY.md and infra/tests/helpers.py.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import (
    KEY_CACHE_SECONDS,
    LOGIN_LIMIT_PER_EMAIL,
    LOGIN_LIMIT_PER_IP,
    LOGIN_PATH,
    TOKEN_SECRET,
    assert_error,
    b64url,
    b64url_decode,
    config_path,
    good_claims,
    jwt,
    needs_token_secret,
    new_admin,
    shape,
    wait_for,
)

pytestmark = pytest.mark.e2e


MALFORMED_KEYS = {
    "wrong-prefix": "psk_test_" + "A1b2C3d4" * 4,
    "no-prefix": "A1b2C3d4" * 4,
    "other-vendor-prefix": "sk_live_" + "A1b2C3d4" * 4,
    "short": "psk_live_abc123",
    "one-short": "psk_live_" + "A" * 31,
    "one-long": "psk_live_" + "A" * 33,
    "non-base62": "psk_live_" + "A1b2C3d4" * 3 + "A1b2C3-4",
    "random-body": "psk_live_"
    + "".join(
        secrets.choice("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        for _ in range(32)
    ),
    "prefix-only": "psk_live_",
    "jwt-lookalike": "eyJhbGciOiJIUzI1NiJ9.e30.",
    "garbage": "not-a-key-at-all",
    "huge-key": "psk_live_" + "A" * 6000,
    "huge-jwt": "eyJ" + "A" * 3000 + "." + "A" * 3000 + "." + "A" * 100,
}


def wait_rejected(api, path: str, key: str, since: float, bound: float, slack: float = 3.0):
    """`key` is refused (401) on `path` at the latest `bound` seconds after `since`
    (time.monotonic()), and from `since + bound` on every instance refuses it."""
    while True:
        r = api.get(path, key)
        if r.status_code == 401:
            break
        assert r.status_code == 200, r.text
        late = time.monotonic() - since
        assert late < bound + slack, (
            f"key still accepted {late:.1f} s after it should stop (bound {bound} s)"
        )
        time.sleep(0.1)
    rest = since + bound + 0.3 - time.monotonic()
    if rest > 0:
        time.sleep(rest)
    for _ in range(8):  # several requests, so several warm instances answer
        assert_error(api.get(path, key), 401, "UNAUTHORIZED")


class TestAPI2BrokenAuthentication:
    """API2 Broken Authentication: malformed, unknown, revoked, expired and rotated-out API
    keys; expired, tampered, wrongly-signed and wrong-algorithm admin tokens; credentials only
    in `Authorization: Bearer`; failures that reveal nothing. (Sign-in brute force:
    TestAPI2SignInBruteForce below.)"""

    @pytest.mark.parametrize("credential", list(MALFORMED_KEYS.values()), ids=list(MALFORMED_KEYS))
    def test_malformed_or_unknown_keys_are_401(self, api, credential):
        for r in (
            api.get(config_path("rst_" + uuid.uuid4().hex), credential),
            api.get("/ivr/auth/api-keys", credential),
        ):
            body = assert_error(r, 401, "UNAUTHORIZED")
            assert body["message"] == "missing or invalid credentials"

    def test_wrong_secret_for_a_known_key_id_reveals_nothing(self, api, make_key):
        key = make_key()["apiKey"]
        known_id = key[: len("psk_live_") + 8] + "".join(
            secrets.choice("abcdefghijkmnopqrstuvwxyz") for _ in range(24)
        )
        unknown_id = "psk_live_" + "".join(
            secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(32)
        )
        path = config_path("rst_" + uuid.uuid4().hex)
        a, b, none = api.get(path, known_id), api.get(path, unknown_id), api.get(path)
        assert_error(a, 401, "UNAUTHORIZED")
        assert shape(a) == shape(b) == shape(none)
        # Same on an admin route: a key-shaped credential that isn't valid is 401, not 403.
        assert shape(api.get("/ivr/auth/api-keys", known_id)) == shape(
            api.get("/ivr/auth/api-keys", unknown_id)
        )
        assert_error(api.get("/ivr/auth/api-keys", known_id), 401, "UNAUTHORIZED")

    def test_guessing_a_known_key_ids_secret_is_limited_per_source(
        self, api, make_key, make_restaurant
    ):
        """Wrong secrets for a known key id count per key id and source address (10 a minute,
        API_KEY_FAILURE_LIMIT_PER_IP_PER_MINUTE); past that the address gets 429 with
        Retry-After, answered before any hash on an instance that saw it. Other keys from the
        same address are unaffected."""
        path = config_path(make_restaurant()["restaurantId"])
        victim, bystander = make_key()["apiKey"], make_key()["apiKey"]
        limit = 10
        for _ in range(3):  # retried only if a window boundary falls right after the 429
            tag = secrets.token_hex(2)
            # Each guess is new (a repeated one is answered from the cache, uncounted).
            guesses = [victim[:-6] + f"{tag}{n:02}" for n in range(2 * limit + 1)]
            tries = 0
            for guess in guesses:
                tries += 1
                r = api.get(path, guess)
                if r.status_code == 429:
                    break
                assert_error(r, 401, "UNAUTHORIZED")
            else:
                pytest.fail(f"no 429 after {len(guesses)} wrong secrets")
            assert tries > limit, f"limited after {tries} guesses"
            assert_error(r, 429, "RATE_LIMITED")
            retry_after = int(r.headers["retry-after"])
            assert 1 <= retry_after <= 60
            if retry_after < 2:
                time.sleep(retry_after + 0.2)
                continue
            assert_error(api.get(path, victim[:-6] + tag + "zz"), 429, "RATE_LIMITED")
            assert api.get(path, bystander).status_code == 200
            return
        pytest.fail("could not fit the sequence into one window")

    def test_a_guessed_secret_on_an_admin_route_counts_as_a_guess(
        self, api, make_key, make_restaurant, proxy
    ):
        """Admin routes check a key-shaped credential as the IVR routes do before refusing it,
        so a wrong secret for a known key id is 401 there too and spends the guesser's budget
        (the same per key id and address), whichever admin function answers."""
        rid = make_restaurant()["restaurantId"]
        routes = [("POST", "/ivr/auth/api-key"), ("GET", "/ivr/auth/api-keys"),
                  ("GET", f"/ivr/restaurants/{rid}"),
                  ("GET", f"/ivr/restaurants/{rid}/calls")]
        for method, path in routes:
            victim = make_key()["apiKey"]
            mark = proxy.mark()
            guess = victim[:-6] + secrets.token_hex(3)
            r = api.call(method, path, guess, json={} if method == "POST" else None)
            assert_error(r, 401, "UNAUTHORIZED")
            counted = [q for q in proxy.requests("dynamodb", "UpdateItem", since=mark)
                       if q.get("table", "").endswith("RateLimitsTable")]
            assert len(counted) == 1, (path, counted)

    def test_credentials_only_count_in_the_authorization_bearer_header(
        self, api, make_key, make_restaurant
    ):
        rid = make_restaurant()["restaurantId"]
        key = make_key()["apiKey"]
        path = config_path(rid)
        assert api.get(path, key).status_code == 200
        for kw in [
            {"headers": {"x-api-key": key}},
            {"params": {"api_key": key}},
            {"params": {"access_token": key}},
            {"headers": {"authorization": key}},
            {
                "headers": {
                    "authorization": f"Basic {base64.b64encode(f'{key}:'.encode()).decode()}"
                }
            },
            {"headers": {"authorization": f"Token {key}"}},
            {"headers": {"authorization": "Bearer"}},
            {"headers": {"authorization": "Bearer "}},
            {"headers": {"cookie": f"token={key}"}},
        ]:
            assert_error(api.get(path, **kw), 401, "UNAUTHORIZED")

    def test_admin_token_only_counts_in_the_authorization_bearer_header(self, api, admin_token):
        assert api.get("/ivr/auth/api-keys", admin_token, params={"limit": 1}).status_code == 200
        for kw in [
            {"params": {"access_token": admin_token}},
            {"headers": {"x-api-key": admin_token}},
            {"headers": {"authorization": admin_token}},
            {"headers": {"authorization": f"JWT {admin_token}"}},
            {"headers": {"cookie": f"token={admin_token}"}},
        ]:
            assert_error(api.get("/ivr/auth/api-keys", **kw), 401, "UNAUTHORIZED")

    def test_revoked_key_is_refused_within_the_cache_bound(
        self, api, admin_token, make_key, make_restaurant
    ):
        rid = make_restaurant()["restaurantId"]
        key = make_key()
        path = config_path(rid)
        assert api.get(path, key["apiKey"]).status_code == 200
        r = api.delete(f"/ivr/auth/api-key/{key['keyId']}", admin_token)
        since = time.monotonic()
        assert r.status_code == 200, r.text
        bound = r.json()["data"]["effectiveWithinSeconds"]
        assert bound <= 60
        wait_rejected(api, path, key["apiKey"], since, bound)
        # A revoked key is 401 on admin routes too (not 403: it is no credential at all) ...
        assert_error(api.get("/ivr/auth/api-keys", key["apiKey"]), 401, "UNAUTHORIZED")
        # ... and cannot be brought back by rotating it.
        assert_error(
            api.post(f"/ivr/auth/api-key/{key['keyId']}/rotate", admin_token, json={}),
            409,
            "CONFLICT",
        )
        assert_error(api.get(path, key["apiKey"]), 401, "UNAUTHORIZED")

    def test_expired_key_is_refused(self, api, admin_token, make_key, make_restaurant):
        rid = make_restaurant()["restaurantId"]
        lifetime = 3.0
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=lifetime + 1)
        expires_mono = time.monotonic() + (expires - datetime.now(UTC)).total_seconds()
        key = make_key(expiresAt=expires.isoformat().replace("+00:00", "Z"))
        path = config_path(rid)
        assert api.get(path, key["apiKey"]).status_code == 200, "usable before it expires"
        wait_rejected(api, path, key["apiKey"], expires_mono, KEY_CACHE_SECONDS)
        listed = api.get("/ivr/auth/api-keys", admin_token, params={"limit": 100})
        views = [k for k in listed.json()["data"]["keys"] if k["keyId"] == key["keyId"]]
        # The list is paginated; when our key is on the first page it says "expired".
        if views:
            assert views[0]["status"] == "expired", views

    def test_rotated_out_key_is_refused_after_its_grace_period(
        self, api, admin_token, make_key, make_restaurant
    ):
        rid = make_restaurant()["restaurantId"]
        old = make_key()
        path = config_path(rid)
        assert api.get(path, old["apiKey"]).status_code == 200
        r = api.post(
            f"/ivr/auth/api-key/{old['keyId']}/rotate", admin_token, json={"gracePeriodSeconds": 1}
        )
        since = time.monotonic()
        assert r.status_code == 201, r.text
        new = r.json()["data"]["apiKey"]
        wait_rejected(api, path, old["apiKey"], since, 1 + KEY_CACHE_SECONDS)
        assert_error(api.get("/ivr/auth/api-keys", old["apiKey"]), 401, "UNAUTHORIZED")
        assert api.get(path, new).status_code == 200

    def test_a_key_in_its_grace_period_can_still_be_revoked(
        self, api, admin_token, make_key, make_restaurant
    ):
        """A leaked key is typically rotated first; revoking it must then end its grace at once."""
        rid = make_restaurant()["restaurantId"]
        old = make_key()
        path = config_path(rid)
        r = api.post(
            f"/ivr/auth/api-key/{old['keyId']}/rotate",
            admin_token,
            json={"gracePeriodSeconds": 3600},
        )
        assert r.status_code == 201, r.text
        new = r.json()["data"]["apiKey"]
        assert api.get(path, old["apiKey"]).status_code == 200, "works during grace"
        r = api.delete(f"/ivr/auth/api-key/{old['keyId']}", admin_token)
        since = time.monotonic()
        assert r.status_code == 200, r.text
        wait_rejected(api, path, old["apiKey"], since, r.json()["data"]["effectiveWithinSeconds"])
        assert api.get(path, new).status_code == 200, "the successor is unaffected"

    # --- admin tokens ----------------------------------------------------------------------

    @needs_token_secret
    def test_crafting_works_for_a_valid_token(self, api, admin_token):
        """Control for the forgery tests below: a token we sign with the real secret and
        valid claims is accepted, so their 401s are about what they change."""
        r = api.get("/ivr/auth/api-keys", jwt(good_claims(admin_token)), params={"limit": 1})
        assert r.status_code == 200, r.text

    @needs_token_secret
    @pytest.mark.parametrize(
        "exp_offset", [-3600, -5, 0], ids=["an-hour-ago", "seconds-ago", "now"]
    )
    def test_expired_admin_token_is_401(self, api, admin_token, exp_offset):
        now = int(time.time())
        token = jwt(good_claims(admin_token, iat=now - 4000, exp=now + exp_offset))
        assert_error(api.get("/ivr/auth/api-keys", token), 401, "UNAUTHORIZED")
        assert_error(api.get(config_path("rst_" + uuid.uuid4().hex), token), 401, "UNAUTHORIZED")

    @pytest.mark.parametrize("change", [
        {"role": "superadmin"}, {"sub": "usr_someone_else"}, {"email": "mallory@evil.example"},
        {"exp": 4102444800}, {"iss": "someone-else"},
    ], ids=["role", "sub", "email", "exp", "iss"])
    def test_tampered_admin_token_is_401(self, api, admin_token, change):
        head, payload, sig = admin_token.split(".")
        claims = json.loads(b64url_decode(payload))
        claims.update(change)
        forged = f"{head}.{b64url(json.dumps(claims, separators=(',', ':')).encode())}.{sig}"
        assert_error(api.get("/ivr/auth/api-keys", forged), 401, "UNAUTHORIZED")

    @needs_token_secret
    @pytest.mark.parametrize(
        "claims",
        [
            {"iat": 3600, "exp": 3900},  # issued an hour from now
            {"iat": 0, "exp": 3 * 365 * 86400},  # valid for three years
            {
                "iat": -60,
                "exp": 3600 + 60,
            },  # a little longer than sign-in issues (ADMIN_TOKEN_TTL_SECONDS)
        ],
        ids=["iat-in-the-future", "exp-three-years-ahead", "lifetime-over-the-ttl"],
    )
    def test_correctly_signed_token_outside_the_issued_lifetime_is_401(
        self, api, admin_token, claims
    ):
        """Whoever holds the secret still cannot mint a future or long-lived token: tokens
        live at most ADMIN_TOKEN_TTL_SECONDS (3600 in the test stack) from their iat, and
        iat may be at most 30 s ahead of the server's clock."""
        now = int(time.time())
        token = jwt(good_claims(admin_token, iat=now + claims["iat"], exp=now + claims["exp"]))
        assert_error(api.get("/ivr/auth/api-keys", token), 401, "UNAUTHORIZED")
        ok = jwt(good_claims(admin_token, iat=now + 20, exp=now + 20 + 3600))  # within skew and TTL
        assert api.get("/ivr/auth/api-keys", ok, params={"limit": 1}).status_code == 200

    @needs_token_secret
    @pytest.mark.parametrize("who", ["unknown-email", "unknown-user-id"])
    def test_correctly_signed_token_for_an_admin_that_does_not_exist_is_401(
        self, api, admin_token, who
    ):
        change = ({"email": f"ghost-{uuid.uuid4().hex[:8]}@pulsara.test"} if who == "unknown-email"
                  else {"sub": "usr_" + uuid.uuid4().hex})
        token = jwt(good_claims(admin_token, **change))
        assert_error(api.get("/ivr/auth/api-keys", token), 401, "UNAUTHORIZED")

    def test_the_local_stack_never_prints_the_token_secret(self, api, admin_token):
        """The emulator logs each function's environment when it spawns one; the secret is
        in no environment (the admin functions read it from Secrets Manager), so in no log."""
        log_path = os.environ.get("WATCH_LOG")
        assert TOKEN_SECRET and log_path, (
            "infra/test.sh's stack has the secret in Secrets Manager and exports WATCH_LOG"
        )
        assert "ADMIN_TOKEN_SECRET" not in os.environ, (
            "the secret itself is in the stack's environment"
        )
        assert api.get("/ivr/auth/api-keys", admin_token, params={"limit": 1}).status_code == 200
        logs = Path(log_path).read_text(encoding="utf-8", errors="replace")
        assert "spawning command" in logs or "ADMIN_TOKEN_SECRET_ARN" in logs, (
            "the watch log holds no function start"
        )
        for name in ("watch.log", "event_sources.log", "moto.log", "fault_proxy.log"):
            other = Path(log_path).with_name(name)
            if other.exists():
                assert TOKEN_SECRET not in other.read_text(encoding="utf-8", errors="replace"), name

    @needs_token_secret
    def test_role_flipped_in_a_non_admin_token_is_401(self, api, admin_token):
        viewer = jwt(good_claims(admin_token, role="viewer"))
        assert_error(api.get("/ivr/auth/api-keys", viewer), 403, "FORBIDDEN")
        head, _, sig = viewer.split(".")
        admin_claims = b64url(json.dumps(good_claims(admin_token), separators=(",", ":")).encode())
        flipped = f"{head}.{admin_claims}.{sig}"
        assert_error(api.get("/ivr/auth/api-keys", flipped), 401, "UNAUTHORIZED")

    @needs_token_secret
    @pytest.mark.parametrize(
        "variant",
        [
            "none-unsigned",
            "none-with-signature",
            "None",
            "NONE",
            "HS512",
            "HS384",
            "RS256-hmac",
            "ES256-hmac",
            "no-alg",
            "alg-array",
            "hs256-lowercase",
        ],
    )
    def test_wrong_algorithm_is_401(self, api, admin_token, variant):
        claims = good_claims(admin_token)
        real = jwt(claims)
        sig = real.split(".")[2]
        token = {
            "none-unsigned": lambda: jwt(
                claims, header={"alg": "none", "typ": "JWT"}, signature=""
            ),
            "none-with-signature": lambda: jwt(
                claims, header={"alg": "none", "typ": "JWT"}, signature=sig
            ),
            "None": lambda: jwt(claims, header={"alg": "None", "typ": "JWT"}, signature=""),
            "NONE": lambda: jwt(claims, header={"alg": "NONE", "typ": "JWT"}, signature=""),
            "HS512": lambda: jwt(
                claims, header={"alg": "HS512", "typ": "JWT"}, digest=hashlib.sha512
            ),
            "HS384": lambda: jwt(
                claims, header={"alg": "HS384", "typ": "JWT"}, digest=hashlib.sha384
            ),
            # Algorithm confusion: an asymmetric alg header over an HMAC made with the secret.
            "RS256-hmac": lambda: jwt(claims, header={"alg": "RS256", "typ": "JWT"}),
            "ES256-hmac": lambda: jwt(claims, header={"alg": "ES256", "typ": "JWT"}),
            "no-alg": lambda: jwt(claims, header={"typ": "JWT"}),
            "alg-array": lambda: jwt(claims, header={"alg": ["HS256"], "typ": "JWT"}),
            "hs256-lowercase": lambda: jwt(claims, header={"alg": "hs256", "typ": "JWT"}),
        }[variant]()
        assert_error(api.get("/ivr/auth/api-keys", token), 401, "UNAUTHORIZED")

    def test_token_signed_with_another_secret_is_401(self, api, admin_token):
        claims = good_claims(admin_token)
        for secret in (
            secrets.token_hex(32).encode(),
            b"",
            b"secret",
            (TOKEN_SECRET + "x").encode(),
        ):
            assert_error(
                api.get("/ivr/auth/api-keys", jwt(claims, secret=secret)), 401, "UNAUTHORIZED"
            )

    @needs_token_secret
    def test_malformed_tokens_are_401(self, api, admin_token):
        claims = good_claims(admin_token)
        no_exp = {k: v for k, v in claims.items() if k != "exp"}
        real = jwt(claims)
        for token in [
            jwt(no_exp),  # exp is required
            jwt({**claims, "exp": str(claims["exp"])}),  # and a number
            real + ".",  # four segments
            real.rsplit(".", 1)[0],  # two segments
            real.replace(".", ". ", 1),
            real + "=",
            ".".join(real.split(".")[::-1]),
        ]:
            assert_error(api.get("/ivr/auth/api-keys", token), 401, "UNAUTHORIZED")

    @pytest.mark.usefixtures("fresh_sign_in_budget")
    def test_failed_sign_ins_do_not_reveal_whether_the_account_exists(self, api):
        email, _ = new_admin("enum")
        existing = api.post(LOGIN_PATH, json={"email": email, "password": "wrong-password-123"})
        missing = api.post(
            LOGIN_PATH,
            json={
                "email": f"nobody-{uuid.uuid4().hex[:8]}@pulsara.test",
                "password": "wrong-password-123",
            },
        )
        assert_error(existing, 401, "UNAUTHORIZED")
        assert shape(existing) == shape(missing)


@pytest.mark.usefixtures("fresh_sign_in_budget")
class TestAPI2SignInBruteForce:
    """API2 Broken Authentication, credential stuffing and brute force: sign-in is limited to
    5 attempts a minute per e-mail and 20 per source address (fixed one-minute windows), and a
    limited attempt is refused even with the right password. Each test starts with a fresh
    sign-in budget and gives back what it spent (the `fresh_sign_in_budget` fixture), so these
    run in any order with every other test that signs in."""

    def _until_limited(self, api, attempts: int, body_for) -> tuple[int, object]:
        for n in range(1, attempts + 1):
            r = api.post(LOGIN_PATH, json=body_for(n))
            if r.status_code == 429:
                return n, r
            assert_error(r, 401, "UNAUTHORIZED")
        pytest.fail(f"no 429 after {attempts} sign-in attempts")

    def _assert_limited(self, r):
        assert_error(r, 429, "RATE_LIMITED")
        retry_after = int(r.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert r.headers.get("ratelimit-remaining") == "0"
        assert "accessToken" not in r.text
        return retry_after

    def test_per_email(self, api):
        email, password = new_admin("victim")
        spellings = [email, email.upper(), f"  {email} "]
        for _ in range(3):  # retried only if a window boundary falls right after the 429
            # 2 * limit + 1 attempts: one fixed window must see more than the limit.
            _, r = self._until_limited(
                api,
                2 * LOGIN_LIMIT_PER_EMAIL + 1,
                lambda n: {"email": spellings[n % 3], "password": f"guess-{n}-guess"},
            )
            retry_after = self._assert_limited(r)
            if retry_after < 2:
                time.sleep(retry_after + 0.2)
                continue
            # The right password no longer helps within the window.
            self._assert_limited(api.post(LOGIN_PATH, json={"email": email, "password": password}))
            return
        pytest.fail("could not fit the sequence into one window")

    def test_per_address(self, api):
        """Every attempt names another e-mail, so only the per-address limit can refuse them."""
        email, password = new_admin("bystander")
        for _ in range(3):
            tag = uuid.uuid4().hex[:6]
            _, r = self._until_limited(api, 2 * LOGIN_LIMIT_PER_IP + 1,
                                       lambda n, tag=tag: {"email": f"spray-{tag}-{n}@pulsara.test",
                                                           "password": "Winter2026!"})
            retry_after = self._assert_limited(r)
            if retry_after < 2:
                time.sleep(retry_after + 0.2)
                continue
            # An account nobody has tried yet is refused too: the address is limited.
            r = api.post(LOGIN_PATH, json={"email": email, "password": password})
            retry_after = self._assert_limited(r)
            # The window's end gives the address its budget back.
            time.sleep(retry_after + 0.5)
            ok = wait_for(
                lambda: (
                    api.post(LOGIN_PATH, json={"email": email, "password": password}).status_code
                    == 200
                ),
                10,
                1,
            )
            assert ok, "sign-in still refused after the window ended"
            return
        pytest.fail("could not fit the sequence into one window")
