"""End-to-end: ElevenLabs and Twilio pointed at us as they are (issue 13).

Integrations are registered with an IVR key; the platforms' requests are made the way the
platforms make them, signed with their own SDKs' schemes: Twilio's `RequestValidator`
(twilio-python) signs the form posts, and the ElevenLabs SDK's own `construct_event` must
accept every post-call signature these tests send (so the scheme is the platform's). The
Twilio hand-over to an agent goes to infra/fake_elevenlabs.py (FAKE_ELEVENLABS_URL), which
answers register-call as ElevenLabs does and can be made slow or failing.

The stack runs with TranscriptWaitSeconds=4 (infra/test.sh)."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
import uuid
import xml.etree.ElementTree as ET

import pytest
import requests
from elevenlabs.client import ElevenLabs
from helpers import (
    API,
    admin_call,
    assert_error,
    calls_of,
    messages_for,
    scan_all,
    unique_phone,
    wait_for,
    wait_mail,
)
from twilio.request_validator import RequestValidator

pytestmark = pytest.mark.e2e

FAKE_ELEVENLABS = os.environ.get("FAKE_ELEVENLABS_URL", "")
FAKE_ELEVENLABS_KEY = os.environ.get("FAKE_ELEVENLABS_API_KEY", "")
TRANSCRIPT_WAIT = 4
VARIABLES = {
    "restaurant_name", "restaurant_id", "is_open_now", "hours_today", "next_open",
    "forwarding_number", "timezone", "local_time", "ai_enabled",
}


# --- the platforms, as the tests play them ---------------------------------------------------


def el_sign(secret: str, body: str, t: int | None = None) -> str:
    """ElevenLabs-Signature as documented: t=<unix>,v0=<hex HMAC-SHA256(secret, "t.body")>."""
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v0={mac}"


def sdk_accepts(secret: str, body: str, header: str) -> bool:
    """Whether the ElevenLabs SDK's own verification accepts the header."""
    try:
        ElevenLabs(api_key="unused").webhooks.construct_event(body, header, secret)
        return True
    except Exception:  # noqa: BLE001 - the SDK raises BadRequestError, or others on junk
        return False


def post_el(url: str, secret: str, payload: dict, t: int | None = None,
            header: str | None = None) -> requests.Response:
    body = json.dumps(payload)
    sig = header or el_sign(secret, body, t)
    if header is None and t is None:
        assert sdk_accepts(secret, body, sig), "the SDK must accept what we sign"
    return requests.post(url, data=body.encode(), timeout=30,
                         headers={"content-type": "application/json", "ElevenLabs-Signature": sig})


def post_twilio(url: str, token: str, params: dict, signature: str | None = None):
    sig = signature or RequestValidator(token).compute_signature(url, params)
    return requests.post(url, data=params, timeout=30, headers={"X-Twilio-Signature": sig})


def call_sid() -> str:
    return "CA" + uuid.uuid4().hex


def twilio_token() -> str:
    return uuid.uuid4().hex  # 32 hex digits, as an auth token


def el_secret() -> str:
    return "wsec_" + uuid.uuid4().hex


def transcription(agent_number: str, conversation_id: str | None = None, sid: str | None = None,
                  **data) -> dict:
    """A post_call_transcription event with every documented field."""
    conv = conversation_id or "conv_" + uuid.uuid4().hex[:20]
    body = {
        "agent_id": "agent_luigi",
        "conversation_id": conv,
        "status": "done",
        "user_id": None,
        "transcript": [
            {"role": "agent", "message": "Thanks for calling Luigi's, how can I help?",
             "time_in_call_secs": 0, "tool_calls": [], "tool_results": [], "feedback": None,
             "conversation_turn_metrics": None},
            {"role": "user", "message": "Hi, I'd like to book a table for four tonight at 7.",
             "time_in_call_secs": 3, "tool_calls": [], "tool_results": [], "feedback": None,
             "conversation_turn_metrics": None},
            {"role": "agent", "message": "Done, see you at 7!", "time_in_call_secs": 9},
            {"role": "user", "message": "Great, thank you so much!", "time_in_call_secs": 11},
        ],
        "metadata": {
            "start_time_unix_secs": int(time.time()) - 60,
            "call_duration_secs": 42,
            "cost": 310,
            "termination_reason": "end_call tool was called.",
            "main_language": "en",
            "phone_call": {
                "type": "twilio", "direction": "inbound", "phone_number_id": "pn_1",
                "agent_number": agent_number, "external_number": "+15559871234",
                "call_sid": sid or call_sid(), "stream_sid": "MZ" + uuid.uuid4().hex,
            },
        },
        "analysis": {
            "evaluation_criteria_results": {},
            "data_collection_results": {
                "party_size": {"data_collection_id": "party_size", "value": 4,
                               "json_schema": {"type": "integer"}, "rationale": "said four"},
            },
            "call_successful": "success",
            "transcript_summary": "The caller booked a table for four at 7 pm tonight.",
            "call_summary_title": "Table booking",
        },
        "conversation_initiation_client_data": {"dynamic_variables": {}},
        "has_audio": True, "has_user_audio": True, "has_response_audio": True,
    }
    body.update(data)
    return {"type": "post_call_transcription", "event_timestamp": int(time.time()), "data": body}


# --- fixtures --------------------------------------------------------------------------------


def fake(path: str, **kw) -> requests.Response:
    assert FAKE_ELEVENLABS, "FAKE_ELEVENLABS_URL is not set (run through infra/test.sh)"
    return requests.request(kw.pop("method", "POST"), FAKE_ELEVENLABS + path, timeout=10, **kw)


@pytest.fixture
def elevenlabs_api():
    fake("/__fake__/reset")
    yield
    fake("/__fake__/reset")


# --- integration settings --------------------------------------------------------------------


def test_register_list_delete_and_secrets_never_returned(api, world, make_key, dynamodb):
    secret, token = el_secret(), twilio_token()
    el = world["integrate"]("elevenlabs", secret, description="Front desk agent")
    tw = world["integrate"]("twilio", token, elevenlabsApiKey="sk_" + uuid.uuid4().hex)
    assert el["integrationId"].startswith("int_") and el["platform"] == "elevenlabs"
    base = f"{API}/ivr/integrations/{el['integrationId']}/elevenlabs"
    assert el["urls"] == {
        "conversationInit": f"{base}/conversation-init",
        "postCall": f"{base}/post-call",
    }
    assert set(tw["urls"]) == {"voice", "status"} and tw["hasElevenlabsApiKey"] is True
    listed = api.get("/ivr/integrations", world["key"]).json()["data"]["integrations"]
    assert {i["integrationId"] for i in listed} == {el["integrationId"], tw["integrationId"]}
    for text in (json.dumps(el), json.dumps(tw), json.dumps(listed)):
        assert secret not in text and token not in text
    # Stored sealed: neither secret is anywhere in the table.
    items = json.dumps(scan_all(dynamodb, "INTEGRATIONS_TABLE"), default=str)
    assert secret not in items and token not in items and el["integrationId"] in items
    # Another key family sees none of them and cannot delete them.
    other = make_key()["apiKey"]
    assert api.get("/ivr/integrations", other).json()["data"]["integrations"] == []
    assert_error(api.delete(f"/ivr/integrations/{el['integrationId']}", other), 404, "NOT_FOUND")
    r = api.delete(f"/ivr/integrations/{el['integrationId']}", world["key"])
    assert r.status_code == 200 and r.json()["data"]["deleted"] is True
    assert_error(api.delete(f"/ivr/integrations/{el['integrationId']}", world["key"]), 404,
                 "NOT_FOUND")


@pytest.mark.parametrize("body,field", [
    ({"platform": "vonage", "secret": "x" * 32}, "platform"),
    ({"platform": "twilio", "secret": "AC" + "0" * 32}, "secret"),
    ({"platform": "elevenlabs", "secret": "short"}, "secret"),
    ({"platform": "elevenlabs", "secret": "wsec_" + "a" * 20, "elevenlabsApiKey": "sk_" + "b" * 20},
     "elevenlabsApiKey"),
    ({"platform": "elevenlabs"}, "secret"),
    ({"platform": "elevenlabs", "secret": "wsec_" + "a" * 20, "admin": True}, "body"),
])
def test_bad_registrations_are_422(api, world, body, field):
    before = api.get("/ivr/integrations", world["key"]).json()["data"]["integrations"]
    r = api.post("/ivr/integrations", world["key"], json=body)
    assert r.status_code == 422, r.text
    fields = [d["field"] for d in r.json()["error"]["details"]]
    assert field in fields or field == "body", fields
    assert api.get("/ivr/integrations", world["key"]).json()["data"]["integrations"] == before


# --- ElevenLabs: conversation initiation -----------------------------------------------------


def init(url: str, key: str | None, number: str, **extra) -> requests.Response:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    body = {"caller_id": "+15559871234", "agent_id": "agent_luigi", "called_number": number,
            "call_sid": call_sid(), **extra}
    return requests.post(url, json=body, headers=headers, timeout=30)


def test_conversation_init_gives_the_agent_its_variables(api, world):
    el = world["integrate"]("elevenlabs", el_secret())
    r = init(el["urls"]["conversationInit"], world["key"], world["number"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["type"] == "conversation_initiation_client_data"
    v = body["dynamic_variables"]
    assert set(v) == VARIABLES and all(isinstance(x, str) for x in v.values())
    assert v["restaurant_id"] == world["restaurant"]["restaurantId"]
    assert v["is_open_now"] == "true" and v["ai_enabled"] == "true"
    assert v["forwarding_number"].startswith("+1")
    assert body["conversation_config_override"]["tts"]["voice_id"] == "tnSpp4vdxKPjI9w0GnoV"
    assert "agent" not in body["conversation_config_override"]


def test_conversation_init_for_a_closed_restaurant_transfers(api, admin_token, world):
    rid = world["restaurant"]["restaurantId"]
    api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"aiEnabled": False})
    el = world["integrate"]("elevenlabs", el_secret())
    body = init(el["urls"]["conversationInit"], world["key"], world["number"]).json()
    v = body["dynamic_variables"]
    assert set(v) == VARIABLES, "the same names whatever the state"
    assert v["ai_enabled"] == "false"
    agent = body["conversation_config_override"]["agent"]
    assert agent["first_message"] and "{{forwarding_number}}" in agent["prompt"]["prompt"]
    assert "transfer_to_number" in agent["prompt"]["prompt"]


def test_conversation_init_authentication(api, world, make_key):
    el = world["integrate"]("elevenlabs", el_secret())
    tw = world["integrate"]("twilio", twilio_token())
    url = el["urls"]["conversationInit"]
    assert_error(init(url, None, world["number"]), 401, "UNAUTHORIZED")
    assert_error(init(url, "pk_live_nonsense", world["number"]), 401, "UNAUTHORIZED")
    # Another family's valid key, a Twilio integration's id, an unknown id: all alike.
    other = make_key()["apiKey"]
    assert_error(init(url, other, world["number"]), 401, "UNAUTHORIZED")
    twilio_url = url.replace(el["integrationId"], tw["integrationId"])
    assert_error(init(twilio_url, world["key"], world["number"]), 401, "UNAUTHORIZED")
    unknown = url.replace(el["integrationId"], "int_" + uuid.uuid4().hex)
    assert_error(init(unknown, world["key"], world["number"]), 401, "UNAUTHORIZED")
    assert_error(init(url, world["key"], unique_phone()), 404, "NOT_FOUND")


def test_a_restricted_key_sees_only_its_restaurants(api, world, make_key, make_restaurant):
    mine = make_restaurant()
    key = make_key(restaurantIds=[mine["restaurantId"]])["apiKey"]
    r = api.post("/ivr/integrations", key, json={"platform": "elevenlabs", "secret": el_secret()})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert data["restaurantIds"] == [mine["restaurantId"]]
    url = data["urls"]["conversationInit"]
    assert init(url, key, mine["phoneNumbers"][0]).status_code == 200
    assert_error(init(url, key, world["number"]), 404, "NOT_FOUND")
    api.delete(f"/ivr/integrations/{data['integrationId']}", key)


# --- ElevenLabs: post-call -------------------------------------------------------------------


def test_post_call_becomes_one_completed_call_with_one_email(api, admin_token, world):
    secret = el_secret()
    el = world["integrate"]("elevenlabs", secret)
    event = transcription(world["number"])
    r = post_el(el["urls"]["postCall"], secret, event)
    assert r.status_code == 200, r.text
    call_id = r.json()["callId"]
    call = admin_call(api, admin_token, call_id)
    assert call["status"] == "completed" and call["completion"]["duration"] == 42
    assert call["analysis"]["summary"] == "The caller booked a table for four at 7 pm tonight."
    assert call["analysis"]["reason"] == "Reservation"
    # ElevenLabs wrote the summary; the reason and sentiment are still ours.
    assert call["analysis"]["producedBy"] == {
        "summary": "elevenlabs", "reason": "pulsara", "sentiment": "pulsara"}
    assert call["callerNumber"] == "+15559871234"
    platform = call["platform"]
    assert platform["name"] == "elevenlabs" and platform["callSuccessful"] == "success"
    assert platform["conversationId"] == event["data"]["conversation_id"]
    assert platform["dataCollection"]["party_size"]["value"] == 4
    mail = wait_mail(call_id)
    assert "table for four" in mail["body"]
    # Redelivered (ElevenLabs retries, or a replay): nothing changes, no second e-mail.
    again = post_el(el["urls"]["postCall"], secret, event)
    assert again.status_code == 200 and again.json()["callId"] == call_id
    time.sleep(2)
    assert len(messages_for(call_id)) == 1
    assert admin_call(api, admin_token, call_id)["updatedAt"] == call["updatedAt"]


def test_bad_stale_and_replayed_signatures_store_nothing(api, admin_token, world):
    secret = el_secret()
    el = world["integrate"]("elevenlabs", secret)
    url = el["urls"]["postCall"]
    rid = world["restaurant"]["restaurantId"]
    event = transcription(world["number"])
    body = json.dumps(event)
    stale_t = int(time.time()) - 31 * 60
    stale = el_sign(secret, body, stale_t)
    assert not sdk_accepts(secret, body, stale), "the SDK refuses it too"
    assert_error(post_el(url, secret, event, header=stale), 401, "UNAUTHORIZED")
    assert_error(post_el(url, secret, event, header=el_sign("wrong-" + secret, body)), 401,
                 "UNAUTHORIZED")
    assert_error(post_el(url, secret, event, header="v0=deadbeef"), 401, "UNAUTHORIZED")
    # A good signature of another body, replayed on this one.
    other = json.dumps(transcription(world["number"]))
    assert_error(post_el(url, secret, event, header=el_sign(secret, other)), 401, "UNAUTHORIZED")
    no_header = requests.post(url, data=body, headers={"content-type": "application/json"},
                              timeout=30)
    assert_error(no_header, 401, "UNAUTHORIZED")
    unknown = url.replace(el["integrationId"], "int_" + uuid.uuid4().hex)
    assert_error(post_el(unknown, secret, event), 401, "UNAUTHORIZED")
    assert calls_of(api, admin_token, rid) == []


def test_initiation_failure_is_a_missed_call_the_owner_sees(api, admin_token, world):
    secret = el_secret()
    el = world["integrate"]("elevenlabs", secret)
    sid = call_sid()
    event = {"type": "call_initiation_failure", "event_timestamp": int(time.time()),
             "data": {"agent_id": "agent_luigi", "conversation_id": "conv_" + uuid.uuid4().hex,
                      "failure_reason": "no-answer",
                      "metadata": {"type": "twilio", "body": {
                          "CallSid": sid, "From": "+15559871234",
                          "To": world["restaurant"]["phoneNumbers"][0],
                          "CallStatus": "no-answer"}}}}
    r = post_el(el["urls"]["postCall"], secret, event)
    assert r.status_code == 200, r.text
    call = admin_call(api, admin_token, r.json()["callId"])
    assert call["status"] == "completed"
    assert call["platform"]["outcome"] == "missed"
    assert "Missed call" in call["analysis"]["summary"]
    assert call["analysis"]["producedBy"]["summary"] == "pulsara"
    wait_mail(call["callId"])


def test_audio_and_unknown_events_are_acknowledged_not_stored(api, admin_token, world):
    secret = el_secret()
    el = world["integrate"]("elevenlabs", secret)
    audio = {"type": "post_call_audio", "event_timestamp": int(time.time()),
             "data": {"agent_id": "a", "conversation_id": "conv_audio",
                      "full_audio": "A" * (10 * 1024 * 1024)}}
    started = time.monotonic()
    r = post_el(el["urls"]["postCall"], secret, audio)
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 10
    r = post_el(el["urls"]["postCall"], secret, {"type": "agent_updated", "data": {}})
    assert r.status_code == 200
    assert calls_of(api, admin_token, world["restaurant"]["restaurantId"]) == []


@pytest.mark.parametrize("mutate,field", [
    (lambda e: e["data"].pop("conversation_id"), "conversation_id"),
    (lambda e: e["data"].update(transcript="not a list"), "transcript"),
    (lambda e: e["data"]["metadata"].update(phone_call=None), "agent_number"),
])
def test_malformed_post_calls_are_422_and_store_nothing(api, admin_token, world, mutate, field):
    secret = el_secret()
    el = world["integrate"]("elevenlabs", secret)
    event = transcription(world["number"])
    mutate(event)
    r = post_el(el["urls"]["postCall"], secret, event)
    assert r.status_code == 422, r.text
    assert field in json.dumps(r.json()["error"])
    assert calls_of(api, admin_token, world["restaurant"]["restaurantId"]) == []


# --- Twilio: voice and status ----------------------------------------------------------------


def twiml(r: requests.Response) -> ET.Element:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/xml")
    root = ET.fromstring(r.text)
    assert root.tag == "Response"
    return root


def voice_params(to: str, sid: str | None = None) -> dict:
    return {"CallSid": sid or call_sid(), "AccountSid": "AC" + uuid.uuid4().hex,
            "From": "+15559871234", "To": to, "CallStatus": "ringing", "Direction": "inbound",
            "ApiVersion": "2010-04-01", "Caller": "+15559871234", "Called": to}


def e164(national: str) -> str:
    digits = "".join(c for c in national if c.isdigit())
    return "+1" + digits[-10:]


def test_voice_hands_an_open_restaurants_call_to_its_agent(api, admin_token, world,
                                                          elevenlabs_api):
    token = twilio_token()
    tw = world["integrate"]("twilio", token, elevenlabsApiKey=FAKE_ELEVENLABS_KEY)
    to = e164(world["number"])
    root = twiml(post_twilio(tw["urls"]["voice"], token, voice_params(to)))
    assert root.find("./Connect/Stream") is not None, ET.tostring(root)
    got = fake("/__fake__/requests", method="GET").json()
    assert len(got) == 1
    sent = got[0]["body"]
    assert sent["agent_id"] == "agent_luigi" and sent["to_number"] == to
    assert sent["direction"] == "inbound"
    variables = sent["conversation_initiation_client_data"]["dynamic_variables"]
    assert set(variables) == VARIABLES
    calls = calls_of(api, admin_token, world["restaurant"]["restaurantId"])
    assert len(calls) == 1 and calls[0]["status"] == "in_progress"


def test_voice_forwards_a_closed_restaurant_and_says_sorry_without_a_number(
        api, admin_token, world):
    token = twilio_token()
    tw = world["integrate"]("twilio", token)
    rid = world["restaurant"]["restaurantId"]
    forwarding = e164(world["restaurant"]["forwarding_number"])
    api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"aiEnabled": False})
    root = twiml(post_twilio(tw["urls"]["voice"], token, voice_params(e164(world["number"]))))
    assert root.find("./Dial").text == forwarding
    assert root.find("./Say") is not None and root.find("./Hangup") is not None
    api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"forwarding_number": None})
    root = twiml(post_twilio(tw["urls"]["voice"], token, voice_params(e164(world["number"]))))
    assert root.find("./Dial") is None
    assert [c.tag for c in root] == ["Say", "Hangup"]


@pytest.mark.parametrize("mode", [{"delayMs": 6000}, {"status": 500}, {"status": 200,
                                                                      "body": "not twiml"}])
def test_voice_forwards_when_elevenlabs_is_slow_or_down(world, elevenlabs_api, mode):
    token = twilio_token()
    tw = world["integrate"]("twilio", token, elevenlabsApiKey=FAKE_ELEVENLABS_KEY)
    fake("/__fake__/mode", json=mode)
    started = time.monotonic()
    root = twiml(post_twilio(tw["urls"]["voice"], token, voice_params(e164(world["number"]))))
    assert time.monotonic() - started < 4, "decided within the 2 s budget (plus slack)"
    assert root.find("./Dial").text == e164(world["restaurant"]["forwarding_number"])


def test_twilio_signatures(api, admin_token, world):
    token = twilio_token()
    tw = world["integrate"]("twilio", token)
    url = tw["urls"]["voice"]
    params = voice_params(e164(world["number"]))
    bad = RequestValidator("f" * 32).compute_signature(url, params)
    assert_error(post_twilio(url, token, params, signature=bad), 401, "UNAUTHORIZED")
    # Signed for another URL (the status one): refused here.
    other = RequestValidator(token).compute_signature(tw["urls"]["status"], params)
    assert_error(post_twilio(url, token, params, signature=other), 401, "UNAUTHORIZED")
    # A parameter changed after signing.
    sig = RequestValidator(token).compute_signature(url, params)
    assert_error(post_twilio(url, token, {**params, "From": "+15550000000"}, signature=sig), 401,
                 "UNAUTHORIZED")
    assert_error(requests.post(url, data=params, timeout=30), 401, "UNAUTHORIZED")
    assert calls_of(api, admin_token, world["restaurant"]["restaurantId"]) == []


def status(tw: dict, token: str, sid: str, to: str, call_status="completed", duration="37"):
    params = {"CallSid": sid, "AccountSid": "AC" + uuid.uuid4().hex, "From": "+15559871234",
              "To": to, "CallStatus": call_status, "CallDuration": duration,
              "Timestamp": "Tue, 04 Mar 2025 17:00:00 +0000", "SequenceNumber": "3"}
    r = post_twilio(tw["urls"]["status"], token, params)
    assert r.status_code == 200, r.text
    return r


def test_status_completes_a_forwarded_call_once(api, admin_token, world):
    token = twilio_token()
    tw = world["integrate"]("twilio", token)
    rid = world["restaurant"]["restaurantId"]
    api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"aiEnabled": False})
    sid, to = call_sid(), e164(world["number"])
    twiml(post_twilio(tw["urls"]["voice"], token, voice_params(to, sid)))
    status(tw, token, sid, to)
    [row] = calls_of(api, admin_token, rid)
    call = admin_call(api, admin_token, row["callId"])
    assert call["status"] == "completed" and call["completion"]["duration"] == 37
    assert call["platform"]["outcome"] == "forwarded"
    wait_mail(row["callId"])
    status(tw, token, sid, to)  # Twilio may repeat itself: nothing more happens
    time.sleep(2)
    assert len(messages_for(row["callId"])) == 1


def test_an_agent_call_waits_for_its_transcript(api, admin_token, world, elevenlabs_api):
    """Twilio hands the call to the agent; the status callback comes first, ElevenLabs'
    post-call (same CallSid) after: one call, completed with the transcript, one e-mail."""
    token, secret = twilio_token(), el_secret()
    tw = world["integrate"]("twilio", token, elevenlabsApiKey=FAKE_ELEVENLABS_KEY)
    el = world["integrate"]("elevenlabs", secret)
    sid, to = call_sid(), e164(world["number"])
    twiml(post_twilio(tw["urls"]["voice"], token, voice_params(to, sid)))
    status(tw, token, sid, to, duration="42")
    [row] = calls_of(api, admin_token, world["restaurant"]["restaurantId"])
    assert row["status"] == "in_progress", "the status callback waits for the transcript"
    r = post_el(el["urls"]["postCall"], secret, transcription(to, sid=sid))
    assert r.status_code == 200 and r.json()["callId"] == row["callId"]
    mail = wait_mail(row["callId"])
    assert "table for four" in mail["body"]
    time.sleep(TRANSCRIPT_WAIT + 3)  # the deferred completion finds it done
    assert len(messages_for(row["callId"])) == 1
    call = admin_call(api, admin_token, row["callId"])
    assert call["analysis"]["summary"].startswith("The caller booked")


def test_an_agent_call_without_a_transcript_still_reaches_the_owner(api, admin_token, world,
                                                                     elevenlabs_api):
    token = twilio_token()
    tw = world["integrate"]("twilio", token, elevenlabsApiKey=FAKE_ELEVENLABS_KEY)
    sid, to = call_sid(), e164(world["number"])
    twiml(post_twilio(tw["urls"]["voice"], token, voice_params(to, sid)))
    status(tw, token, sid, to, duration="15")
    [row] = calls_of(api, admin_token, world["restaurant"]["restaurantId"])
    done = wait_for(lambda: admin_call(api, admin_token, row["callId"])["status"] == "completed",
                    TRANSCRIPT_WAIT + 30)
    assert done, "completed after the transcript wait"
    assert admin_call(api, admin_token, row["callId"])["completion"]["duration"] == 15
    wait_mail(row["callId"])
