"""Secrets kept secret (issue 12, item 3), end to end against the local stack.

The admin token secret lives in (moto's) Secrets Manager: only the five functions that sign or
verify admin tokens know its ARN, read it at cold start, and accept tokens signed with it; no
function's environment holds it. Webhook signing secrets are sealed with KMS envelope
encryption: DynamoDB holds no `whsec_`, yet deliveries verify with the Standard Webhooks
library using the secret shown at registration and rotation; KMS down delays deliveries (and
fails registrations with nothing stored), Secrets Manager down fails a cold start loudly.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import time
from pathlib import Path

from helpers import (
    REPO,
    TEMPLATE,
    TOKEN_SECRET,
    admin_token_secret_arn,
    assert_error,
    deliveries_of,
    function_env,
    good_claims,
    jwt,
    local_stack,
    restaurant_body,
    send_test,
    wait_for,
)

TEMPLATE_DATA = local_stack.load_template(TEMPLATE)
BINARIES = local_stack.function_binaries(TEMPLATE_DATA)  # logical id -> binary
ADMIN_TOKEN_BINARIES = {"auth-login", "create-api-key", "api-keys", "restaurants", "calls"}
HTTP_BINARIES = set(local_stack.function_routes(TEMPLATE_DATA).values())


def item_of(dynamodb, webhook_id: str) -> dict:
    out = dynamodb.get_item(
        TableName=os.environ["WEBHOOKS_TABLE"], Key={"webhookId": {"S": webhook_id}},
        ConsistentRead=True,
    )
    return out.get("Item") or {}


def assert_sealed(item: dict, *plaintexts: str) -> None:
    """No secret in the clear anywhere in the item; `secret` is a sealed map."""
    text = json.dumps(item)
    assert "whsec_" not in text, text
    for p in plaintexts:
        assert p.removeprefix("whsec_") not in text
    sealed = item["secret"]["M"]
    assert set(sealed) == {"alg", "encryptedKey", "nonce", "ciphertext"}, sealed
    assert sealed["alg"]["S"] == "AES256GCM-KMS"


# --- the admin token secret -------------------------------------------------------------------


def _our_function_processes() -> dict[str, list[dict[str, str]]]:
    """Binary name -> the environments of this stack's running function processes (found in
    /proc by their PULSARA_FAULT_DIR, which is this test run's own)."""
    ours = os.environ["PULSARA_FAULT_DIR"]
    found: dict[str, list[dict[str, str]]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            exe = os.path.basename(os.readlink(proc / "exe"))
            raw = (proc / "environ").read_bytes()
        except OSError:
            continue
        if exe not in BINARIES.values():
            continue
        env = dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)
        if env.get("PULSARA_FAULT_DIR") == ours:
            found.setdefault(exe, []).append(env)
    return found


def test_no_function_environment_holds_the_token_secret(api):
    """Not in the env file every function gets, not in any running function's environment;
    the secret's ARN only in the five admin-token functions' own variables and processes."""
    assert TOKEN_SECRET, "the token secret is in the local Secrets Manager"
    env_file = Path(os.environ["PULSARA_ENV_FILE"]).read_text(encoding="utf-8")
    assert "ADMIN_TOKEN_SECRET" not in env_file and TOKEN_SECRET not in env_file
    own = {b: function_env(b) for b in BINARIES.values()}
    assert {b for b, env in own.items() if "ADMIN_TOKEN_SECRET_ARN" in env} == \
        ADMIN_TOKEN_BINARIES
    assert not any(TOKEN_SECRET in v for env in own.values() for v in env.values())

    # Wake every HTTP function (no credentials: 401), then read the processes' environments.
    for (method, path), _ in local_stack.function_routes(TEMPLATE_DATA).items():
        api.call(method, path.replace("{", "x").replace("}", ""))
    running = wait_for(lambda: (r := _our_function_processes()) and
                       HTTP_BINARIES <= set(r) and r, timeout=30)
    assert running, f"function processes seen: {sorted(_our_function_processes())}"
    for binary, envs in running.items():
        for env in envs:
            assert "ADMIN_TOKEN_SECRET" not in env and "ADMIN_TOKEN_SECRET_FILE" not in env
            assert not any(TOKEN_SECRET in v for v in env.values()), binary
            has_arn = "ADMIN_TOKEN_SECRET_ARN" in env
            assert has_arn == (binary in ADMIN_TOKEN_BINARIES), binary
            if has_arn:
                assert env["ADMIN_TOKEN_SECRET_ARN"] == admin_token_secret_arn()


def test_tokens_signed_with_the_stored_secret_are_accepted_and_no_others(api, admin_token):
    """Sign-in's tokens are signed with the value in Secrets Manager; a token the test signs with
    that value works on every admin function, one signed with anything else on none."""
    head, payload, sig = admin_token.split(".")
    assert jwt(json.loads(base64.urlsafe_b64decode(payload + "==")),
               secret=TOKEN_SECRET.encode()).split(".")[2] == sig, "sign-in signs with it"
    rid = api.post("/ivr/restaurants", admin_token, json=restaurant_body()).json()["data"][
        "restaurantId"]
    routes = [("GET", "/ivr/auth/api-keys"), ("GET", f"/ivr/restaurants/{rid}"),
              ("GET", f"/ivr/restaurants/{rid}/calls")]
    good = jwt(good_claims(admin_token), secret=TOKEN_SECRET.encode())
    for other in (secrets.token_hex(32), TOKEN_SECRET[:-1] + "x", ""):
        bad = jwt(good_claims(admin_token), secret=other.encode())
        for method, path in routes:
            assert api.call(method, path, good).status_code == 200, path
            assert_error(api.call(method, path, bad), 401, "UNAUTHORIZED")
    r = api.post("/ivr/auth/api-key", good, json={"name": "signed with the stored secret"})
    assert r.status_code == 201, r.text
    assert_error(api.post("/ivr/auth/api-key", jwt(good_claims(admin_token),
                 secret=secrets.token_bytes(32)), json={"name": "x"}), 401, "UNAUTHORIZED")


def _cold_start(binary: str, proxy_url: str) -> subprocess.CompletedProcess:
    """Starts a function binary outside the runtime: its cold start runs, then (without a
    Lambda Runtime API) it stops, or is stopped after 15 s (returncode None). Its AWS calls
    go through the fault proxy."""
    path = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "debug" / binary
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_LAMBDA")}
    env.update(function_env(binary), AWS_ENDPOINT_URL=proxy_url, RUST_LOG="info")
    try:
        return subprocess.run([str(path)], env=env, capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, None, _text(e.stdout), _text(e.stderr))


def _text(out) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else (out or "")


def test_a_cold_start_without_the_secret_fails_loudly(proxy):
    """Secrets Manager failing (or no ARN): the admin function does not start, and says why;
    never a fallback to an empty or default secret. With it, the cold start gets past the
    secret (and stops only for want of a Lambda Runtime API here)."""
    started = _cold_start("auth-login", proxy.url)
    assert "GetSecretValue" not in started.stdout + started.stderr, started.stderr
    rule = proxy.rule("secretsmanager", "GetSecretValue", action="error", times=-1)
    failed = _cold_start("auth-login", proxy.url)
    proxy.remove(rule)
    out = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "cold start failed" in out and "GetSecretValue" in out, out
    assert proxy.requests("secretsmanager", "GetSecretValue"), "it did ask Secrets Manager"
    env = {k: v for k, v in os.environ.items() if k != "ADMIN_TOKEN_SECRET_ARN"}
    path = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "debug" / "restaurants"
    no_arn = subprocess.run([str(path)], env=env, capture_output=True, text=True, timeout=15)
    assert no_arn.returncode != 0
    assert "ADMIN_TOKEN_SECRET_ARN is required" in no_arn.stdout + no_arn.stderr


# --- webhook signing secrets --------------------------------------------------------------------


def test_secrets_are_sealed_at_rest_and_deliveries_verify(
    api, make_key, register, receiver, dynamodb
):
    """The item holds the secret sealed (no `whsec_` anywhere), before and after a rotation;
    deliveries verify with the standardwebhooks library using the secret the API showed, both
    secrets during the grace period."""
    key = make_key()["apiKey"]
    hook = register(key, receiver.url("/ok/sealed"))
    first = hook["secret"]
    assert first.startswith("whsec_")
    before = item_of(dynamodb, hook["webhookId"])
    assert_sealed(before, first)
    send_test(api, key, hook["webhookId"])
    (hit,) = receiver.wait("/ok/sealed", 1)
    assert hit.verify(first)["type"] == "webhook.test"

    r = api.post(f"/ivr/webhooks/{hook['webhookId']}/rotate-secret", key,
                 json={"gracePeriodSeconds": 600})
    assert r.status_code == 200, r.text
    second = r.json()["data"]["secret"]
    after = item_of(dynamodb, hook["webhookId"])
    assert_sealed(after, first, second)
    assert after["previousSecret"] == before["secret"], "the old sealed secret, kept as it was"
    assert after["secret"] != before["secret"]
    send_test(api, key, hook["webhookId"])
    hits = receiver.wait("/ok/sealed", 2)
    assert hits[1].verify(second) and hits[1].verify(first), "both during the grace period"
    assert not hits[1].verifies("whsec_" + "A" * 32)
    log = os.environ.get("WATCH_LOG")
    if log:
        text = Path(log).read_text(encoding="utf-8", errors="replace")
        assert first not in text and second not in text, "a secret reached the functions' log"


def test_a_legacy_plaintext_secret_still_signs_and_is_sealed_at_rotation(
    api, make_key, register, receiver, dynamodb
):
    """Items stored before sealing keep working; their next rotation seals both secrets."""
    key = make_key()["apiKey"]
    hook = register(key, receiver.url("/ok/legacy"))
    legacy = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    dynamodb.update_item(
        TableName=os.environ["WEBHOOKS_TABLE"], Key={"webhookId": {"S": hook["webhookId"]}},
        UpdateExpression="SET secret = :s", ExpressionAttributeValues={":s": {"S": legacy}},
    )
    send_test(api, key, hook["webhookId"])
    (hit,) = receiver.wait("/ok/legacy", 1)
    assert hit.verify(legacy)
    r = api.post(f"/ivr/webhooks/{hook['webhookId']}/rotate-secret", key, json={})
    assert r.status_code == 200, r.text
    new = r.json()["data"]["secret"]
    item = item_of(dynamodb, hook["webhookId"])
    assert_sealed(item, legacy, new)
    assert "M" in item["previousSecret"], "the legacy secret, sealed"
    send_test(api, key, hook["webhookId"])
    hits = receiver.wait("/ok/legacy", 2)
    assert hits[1].verify(new) and hits[1].verify(legacy)


def test_a_sealed_secret_moved_to_another_webhook_opens_nowhere(
    api, make_key, register, receiver, dynamodb
):
    """The encryption context binds a sealed secret to its webhook: copied into another
    webhook's item it does not open, so that webhook's deliveries are not signed with it."""
    key = make_key()["apiKey"]
    a = register(key, receiver.url("/ok/moved-a"))
    b = register(key, receiver.url("/ok/moved-b"))
    sealed_a = item_of(dynamodb, a["webhookId"])["secret"]
    dynamodb.update_item(
        TableName=os.environ["WEBHOOKS_TABLE"], Key={"webhookId": {"S": b["webhookId"]}},
        UpdateExpression="SET secret = :s", ExpressionAttributeValues={":s": sealed_a},
    )
    send_test(api, key, b["webhookId"])
    time.sleep(4)
    assert not receiver.to("/ok/moved-b"), "signed with a secret that is not its own"
    (d,) = deliveries_of(api, key, b["webhookId"])
    assert d["status"] == "pending" and d["attempts"] == [], d
    api.delete(f"/ivr/webhooks/{b['webhookId']}", key)  # its job ends (webhook deleted)


def test_kms_down_delays_a_delivery_without_losing_it(
    api, make_key, register, receiver, proxy
):
    """Decrypt failing: the dispatcher sends nothing unsigned and claims nothing; the job comes
    back (SQS) and, once KMS answers, the delivery arrives, verifiably signed."""
    key = make_key()["apiKey"]
    hook = register(key, receiver.url("/ok/kms-down"))
    mark = proxy.mark()
    rule = proxy.rule("kms", "Decrypt", action="error", times=-1)
    try:
        send_test(api, key, hook["webhookId"])
        assert wait_for(lambda: proxy.requests("kms", "Decrypt", since=mark), timeout=30)
        time.sleep(2)
        assert not receiver.to("/ok/kms-down")
        (d,) = deliveries_of(api, key, hook["webhookId"])
        assert d["status"] == "pending" and d["attempts"] == [], d
    finally:
        proxy.remove(rule)
    (hit,) = receiver.wait("/ok/kms-down", 1, timeout=60)
    assert hit.verify(hook["secret"])
    assert wait_for(
        lambda: deliveries_of(api, key, hook["webhookId"])[0]["status"] == "succeeded")


def test_kms_down_fails_registration_and_rotation_with_nothing_stored(
    api, make_key, register, receiver, proxy, dynamodb
):
    """GenerateDataKey failing: registering is a 500 that stored no webhook; rotating is a 500
    that left the secret as it was."""
    key = make_key()["apiKey"]
    hook = register(key, receiver.url("/ok/kms-rotate"))
    before = item_of(dynamodb, hook["webhookId"])
    rule = proxy.rule("kms", "GenerateDataKey", action="error", times=-1)
    try:
        r = api.post("/ivr/webhooks/register", key,
                     json={"callbackUrl": receiver.url("/ok/kms-register"),
                           "events": ["settings.updated"]})
        assert_error(r, 500, "INTERNAL_ERROR")
        r = api.post(f"/ivr/webhooks/{hook['webhookId']}/rotate-secret", key, json={})
        assert_error(r, 500, "INTERNAL_ERROR")
    finally:
        proxy.remove(rule)
    listed = api.get("/ivr/webhooks", key).json()["data"]["webhooks"]
    assert [w["webhookId"] for w in listed] == [hook["webhookId"]]
    assert item_of(dynamodb, hook["webhookId"]) == before
