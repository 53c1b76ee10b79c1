"""README.md's local examples run as written.

The ```sh blocks of "Calling the API locally" (calls, webhooks, "More examples") and of
"Admin users" > "Locally" are concatenated in order and run with `bash -euo pipefail`, as a user
pastes them into a terminal next to `./infra/dev.sh`, against the test stack. The only rewriting:
the README's API URL, moto URL and `.local/env` become the test stack's. The script gets a bare
environment (PATH, HOME, ...), so what it needs must come from the README's own steps.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile

import pytest
from helpers import API, LOGIN_PATH, LOGS, REPO, admin_cli, reset_sign_in_limits

README = REPO / "README.md"
README_API = "http://localhost:5000/api"
README_MOTO = "http://127.0.0.1:4566"
README_ENV = ".local/env"
# dev.sh seeds this admin; the README signs in with it.
DEMO_ADMIN = ("admin@pulsara.local", "pulsara-local-admin")
CLI_ADMIN = ("ops@pulsara.local", "a long passphrase")
CAPTURED = ("RID", "CALL", "KEY", "OLD_KEY_ID", "WH", "DELIVERY")
PLACEHOLDER = re.compile(r"…|\.\.\.|<[A-Za-z][^<>]*>|\bwh_\b|\bmsg_\b|YOUR|your-")
KEEP_ENV = ("PATH", "HOME", "TMPDIR", "LANG", "CARGO_HOME", "RUSTUP_HOME", "CARGO_TARGET_DIR")


def sh_blocks(text: str) -> list[tuple[str, str, str]]:
    """(## heading, ### heading, code) of every ```sh block, in order."""
    blocks, h2, h3, fence, code = [], "", "", None, []
    for line in text.splitlines():
        if fence is not None:
            if line.startswith("```"):
                if fence == "sh":
                    blocks.append((h2, h3, "\n".join(code)))
                fence, code = None, []
            else:
                code.append(line)
        elif line.startswith("```"):
            fence = line[3:].strip()
        elif line.startswith("## "):
            h2, h3 = line[3:].strip(), ""
        elif line.startswith("### "):
            h3 = line[4:].strip()
    return blocks


def local_blocks() -> list[str]:
    return [code for h2, h3, code in sh_blocks(README.read_text(encoding="utf-8"))
            if h2 == "Calling the API locally" or (h2 == "Admin users" and h3 == "Locally")]


def commands(code: str) -> list[str]:
    """The lines that run: comments (whole-line and trailing) removed."""
    lines = (re.sub(r"\s+#\s.*$", "", line) for line in code.splitlines())
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def responses(output: str) -> list[dict]:
    """Every API response printed (curl prints them back to back, without newlines)."""
    decoder, found, i = json.JSONDecoder(), [], output.find("{")
    while i >= 0:
        try:
            value, end = decoder.raw_decode(output, i)
        except json.JSONDecodeError:
            value, end = None, i + 1
        if isinstance(value, dict) and "success" in value:
            found.append(value)
        else:
            end = i + 1
        i = output.find("{", end)
    return found


def platform_answers(output: str) -> list[dict]:
    """The voice platforms' answers printed (their own formats, not our envelope)."""
    decoder, found, i = json.JSONDecoder(), [], output.find("{")
    keys = {"assistantId", "destination", "error", "call_inbound", "received"}
    while i >= 0:
        try:
            value, end = decoder.raw_decode(output, i)
        except json.JSONDecodeError:
            value, end = None, i + 1
        if isinstance(value, dict) and "success" not in value and keys & set(value):
            found.append(value)
        else:
            end = i + 1
        i = output.find("{", end)
    return found


def test_local_examples_are_found_and_complete():
    script = "\n".join(local_blocks())
    for capture in (
        "TOKEN=$(",
        "KEY=$(",
        "RID=$(",
        "CALL=$(",
        "WH=$(",
        "DELIVERY=$(",
        "ROTATED=$(",
    ):
        assert capture in script
    assert README_API in script and README_MOTO in script and f"source {README_ENV}" in script
    assert "sam deploy" not in script
    assert not any(line.startswith("./infra/") for line in commands(script))
    assert "127.0.0.1:8765/hook" in script and "your-ivr-system" not in script


def test_local_examples_have_no_placeholders():
    bad = [line for code in local_blocks() for line in commands(code) if PLACEHOLDER.search(line)]
    assert not bad, f"placeholders in README commands the test runs: {bad}"


def test_readme_admin_is_the_one_dev_sh_seeds():
    dev = (REPO / "infra" / "dev.sh").read_text(encoding="utf-8")
    assert f"PULSARA_ADMIN_EMAIL:-{DEMO_ADMIN[0]}" in dev
    assert f"PULSARA_ADMIN_PASSWORD:-{DEMO_ADMIN[1]}" in dev
    assert f'"email":"{DEMO_ADMIN[0]}","password":"{DEMO_ADMIN[1]}"' in "\n".join(local_blocks())


@pytest.fixture(scope="module")
def readme_run(dynamodb):
    env_file = os.environ.get("PULSARA_ENV_FILE")
    if not env_file:
        pytest.skip("PULSARA_ENV_FILE not set (run through infra/test.sh)")
    email, password = DEMO_ADMIN
    admin_cli(
        "create-admin", "--email", email, "--replace", env={"PULSARA_ADMIN_PASSWORD": password}
    )
    reset_sign_in_limits(
        dynamodb
    )  # the README signs in: with the whole budget, whatever ran before
    script = ("\n".join(local_blocks())
              .replace(README_API, API)
              .replace(README_MOTO, os.environ["MOTO_URL"])
              .replace(f"source {README_ENV}", f"source {env_file}"))
    with tempfile.TemporaryDirectory() as tmp:
        captured = os.path.join(tmp, "captured")
        # Harness, after the README's last line: what the script captured, for the assertions.
        script += "\n" + "".join(f'printf "%s\\n" "${name}" >>{captured}\n' for name in CAPTURED)
        out_path = os.path.join(tmp, "out")
        env = {k: os.environ[k] for k in KEEP_ENV if k in os.environ}
        with open(out_path, "w") as out:
            # Own session: the README's background receiver is stopped with it, whatever happens.
            proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=REPO, env=env,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            try:
                rc = proc.wait(timeout=600)
            except subprocess.TimeoutExpired:
                rc = "timeout"
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        output = open(out_path, encoding="utf-8", errors="replace").read()
        values = open(captured).read().splitlines() if os.path.exists(captured) else []
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / "readme.out").write_text(output, encoding="utf-8")
    assert rc == 0, f"README script failed ({rc}):\n{output[-4000:]}"
    return output, dict(zip(CAPTURED, values, strict=False))


@pytest.mark.e2e
@pytest.mark.usefixtures("fresh_sign_in_budget")
def test_readme_examples_run_top_to_bottom(readme_run, api):
    output, v = readme_run
    assert re.fullmatch(r"rst_[0-9a-f]{32}", v["RID"]), v
    assert re.fullmatch(r"call_[0-9a-f]{24}", v["CALL"]), v
    assert re.fullmatch(r"wh_[0-9a-f]{32}", v["WH"]), v
    assert re.fullmatch(r"msg_[0-9a-f]{24,32}", v["DELIVERY"]), v
    assert re.fullmatch(r"psk_live_[0-9A-Za-z]{32}", v["KEY"]), "KEY is not an API key"
    assert v["KEY"][9:17] != v["OLD_KEY_ID"], "KEY was not replaced by the rotated key"
    # Secrets are kept in variables, never printed.
    assert v["KEY"] not in output and "psk_live_" not in output and "whsec_" not in output
    assert f"{v['RID']}\n" in output and f"{v['CALL']}\n" in output and f"{v['WH']}\n" in output

    got = responses(output)
    assert got and all(r["success"] for r in got), [r for r in got if not r["success"]]
    data = [r["data"] for r in got]
    configs = [d for d in data if "routing" in d]
    assert len(configs) == 5  # four lookups (id, three phone formats), one with the rotated key
    assert all(d["restaurantId"] == v["RID"] and d["phoneNumbers"] == ["+15551234567"]
               for d in configs)
    assert all(d["forwardingNumberE164"] == "+15559876543" for d in configs)
    completed = [d for d in data if d.get("callId") == v["CALL"] and "emailStatus" in d]
    assert completed and completed[0]["status"] == "completed"
    assert completed[0]["emailStatus"] == "sent" and completed[0]["emailRecipients"] == [
        "owner@restaurant.com"
    ]
    assert any(c["callId"] == v["CALL"] for d in data for c in d.get("calls", []))
    deliveries = [x for d in data for x in d.get("deliveries", [])]
    assert any(x["deliveryId"] == v["DELIVERY"] and x["status"] == "succeeded" for x in deliveries)
    replays = [d["deliveryId"] for d in data if list(d) == ["deliveryId"]]
    assert len(replays) == 1 and replays[0] != v["DELIVERY"]
    assert {"webhookId": v["WH"], "deleted": True} in data
    assert {"keyId": v["OLD_KEY_ID"], "status": "revoked"}.items() <= next(
        d for d in data if d.get("status") == "revoked").items()
    patched = [d for d in data if "callHoursEnd" in d and "routing" not in d]  # PATCH, GET, PATCH
    assert len(patched) == 3 and all(
        d["callHoursEnd"] == "22:00" and d["aiEnabled"] is False for d in patched
    )
    assert [s["note"] for s in patched[2]["specialHours"] if "note" in s] == ["Private event"]
    assert patched[2]["closures"][0]["note"] == "Closed for renovation"
    # The conditional config request printed its status alone on a line.
    assert re.search(r"(?:^|\})304\n", output, re.M), "If-None-Match with the ETag got no 304"
    assert any(d.get("keys") for d in data)

    # The receiver printed the test event; the old key's grace period end was printed.
    assert re.search(rf"receiver got {v['DELIVERY']} .*\"type\":\"webhook.test\"", output)
    assert re.search(r"(?:^|\})\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*\n", output, re.M)
    assert '"ToAddresses": [' in output  # an e-mail, as moto's SES stored it
    # Vapi and Retell, faked as the README fakes them: the right answer to each message.
    answers = platform_answers(output)
    assistant = [a for a in answers if "assistantId" in a]
    assert [a["assistantId"] for a in assistant] == ["4e3b2a1c-9d8e-4f7a-8b6c-5d4e3f2a1b0c"]
    assert assistant[0]["assistantOverrides"]["variableValues"]["ai_should_answer"] == "true"
    destinations = [a["destination"]["number"] for a in answers if "destination" in a]
    assert destinations == ["+15559876543", "+15559876543"], answers  # closed; transfer request
    inbound = [a["call_inbound"] for a in answers if "call_inbound" in a]
    assert [i.get("override_agent_id") for i in inbound] == ["agent_luigi_retell", None]
    assert inbound[1]["dynamic_variables"]["ai_should_answer"] == "false"
    assert inbound[1]["dynamic_variables"]["transfer_number"] == "+15559876543"
    acks = [a for a in answers if a.get("received") and "ignored" in a]
    assert len(acks) >= 2, "status-update, with the secret and with the HMAC"
    details = {d["callId"]: d for d in data if "producedBy" in d.get("analysis", {})}
    by = {d["platform"]["name"]: d for d in details.values() if d.get("platform")}
    assert by["vapi"]["status"] == "completed" and by["vapi"]["completion"]["duration"] == 75
    assert by["vapi"]["analysis"]["producedBy"]["summary"] == "vapi"
    assert by["retell"]["status"] == "completed" and by["retell"]["completion"]["duration"] == 52
    assert by["retell"]["platform"]["userSentiment"] == "Neutral"
    assert re.search(r"^1 1 e-mail\(s\)$", output, re.M), "one e-mail each, redeliveries none"

    # The admin CLI example created an admin who can sign in.
    assert f"admin user {CLI_ADMIN[0]} ready" in output
    r = api.post(LOGIN_PATH, json={"email": CLI_ADMIN[0], "password": CLI_ADMIN[1]})
    assert r.status_code == 200, r.text
    # The rotated key works; the webhook is gone.
    r = api.get("/ivr/webhooks", v["KEY"])
    assert r.status_code == 200, r.text
    assert v["WH"] not in {w["webhookId"] for w in r.json()["data"]["webhooks"]}
