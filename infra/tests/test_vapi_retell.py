"""End-to-end: Vapi and Retell pointed at us as they are (issue 15).

The platforms' own libraries hold the formats to theirs: every Vapi message these tests send
validates as the vapi-server-sdk model of its type (`ServerMessageAssistantRequest`,
`ServerMessageEndOfCallReport`, …) and every answer we give validates as the SDK's response
model; every Retell call object validates as retell-sdk's `PhoneCallResponse`, and the Retell
signatures are made by the SDK's own signer and must pass its `verify`. A Vapi HMAC credential
is played by the `standardwebhooks` library.

The stack runs with TranscriptWaitSeconds=4 (infra/test.sh)."""
from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests
from helpers import admin_call, assert_error, calls_of, messages_for, wait_for, wait_mail
from retell.lib.webhook_auth import symmetric as retell_signer
from retell.lib.webhook_auth import verify as retell_verify
from retell.types import PhoneCallResponse
from standardwebhooks.webhooks import Webhook
from vapi.types import (
    ServerMessageAssistantRequest,
    ServerMessageEndOfCallReport,
    ServerMessageResponseAssistantRequest,
    ServerMessageResponseTransferDestinationRequest,
    ServerMessageTransferDestinationRequest,
)

pytestmark = pytest.mark.e2e

TRANSCRIPT_WAIT = 4
VARIABLES = {
    "restaurant_name", "restaurant_id", "is_open_now", "hours_today", "next_open",
    "forwarding_number", "timezone", "local_time", "ai_enabled",
    "transfer_number", "ai_should_answer",
}
ASSISTANT = "4e3b2a1c-9d8e-4f7a-8b6c-5d4e3f2a1b0c"
RETELL_AGENT = "agent_luigi_retell"


def e164(national: str) -> str:
    return "+1" + "".join(c for c in national if c.isdigit())[-10:]


def with_agent(api, admin_token, world, **ids) -> None:
    """Gives the world's restaurant a Vapi assistant and/or a Retell agent."""
    rid = world["restaurant"]["restaurantId"]
    agent = {**world["restaurant"]["agent"], **ids}
    r = api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"agent": agent})
    assert r.status_code == 200, r.text


# --- Vapi, as the tests play it --------------------------------------------------------------


def vapi_secret() -> str:
    return "vsec_" + uuid.uuid4().hex


def vapi_phone(number: str) -> dict:
    """A Vapi phone number object (a Twilio number imported into Vapi)."""
    return {"provider": "twilio", "id": str(uuid.uuid4()), "orgId": str(uuid.uuid4()),
            "number": number, "twilioAccountSid": "AC" + uuid.uuid4().hex,
            "createdAt": "2026-11-01T10:00:00.000Z", "updatedAt": "2026-11-01T10:00:00.000Z"}


def vapi_call(call_id: str, number: str) -> dict:
    return {"id": call_id, "orgId": str(uuid.uuid4()), "type": "inboundPhoneCall",
            "status": "ringing", "phoneNumberId": str(uuid.uuid4()),
            "customer": {"number": "+15559871234"},
            "createdAt": "2026-12-01T18:00:00.000Z", "updatedAt": "2026-12-01T18:00:00.000Z"}


def assistant_request(number: str, call_id: str | None = None) -> dict:
    message = {"type": "assistant-request", "timestamp": int(time.time() * 1000),
               "call": vapi_call(call_id or str(uuid.uuid4()), number),
               "phoneNumber": vapi_phone(number), "customer": {"number": "+15559871234"}}
    ServerMessageAssistantRequest.model_validate(message)
    return {"message": message}


def transfer_request(number: str) -> dict:
    message = {"type": "transfer-destination-request", "timestamp": int(time.time() * 1000),
               "call": vapi_call(str(uuid.uuid4()), number), "phoneNumber": vapi_phone(number),
               "customer": {"number": "+15559871234"}}
    ServerMessageTransferDestinationRequest.model_validate(message)
    return {"message": message}


def end_of_call_report(number: str, call_id: str | None = None, **fields) -> dict:
    """An end-of-call-report with every documented field we read, and more we don't."""
    message = {
        "type": "end-of-call-report",
        "timestamp": int(time.time() * 1000),
        "endedReason": "customer-ended-call",
        "startedAt": "2026-12-01T18:00:00.000Z",
        "endedAt": "2026-12-01T18:01:15.250Z",
        "cost": 0.11,
        "costs": [],
        "call": vapi_call(call_id or str(uuid.uuid4()), number),
        "phoneNumber": vapi_phone(number),
        "customer": {"number": "+15559871234"},
        "artifact": {
            "transcript": "AI: Thanks for calling Luigi's!\nUser: A table for four at 7?",
            "messages": [
                {"role": "system", "message": "You answer the phone for Luigi's.", "time": 1,
                 "secondsFromStart": 0},
                {"role": "bot", "message": "Thanks for calling Luigi's, how can I help?",
                 "time": 2, "endTime": 3, "secondsFromStart": 0.5, "duration": 1.2},
                {"role": "user", "message": "Hi, I'd like to book a table for four tonight at 7.",
                 "time": 4, "endTime": 6, "secondsFromStart": 3, "duration": 2.1},
                {"role": "tool_calls", "message": "", "toolCalls": [], "time": 7,
                 "secondsFromStart": 6},
                {"role": "bot", "message": "Done, see you at 7!", "time": 8, "endTime": 9,
                 "secondsFromStart": 8, "duration": 1},
                {"role": "user", "message": "Great, thank you so much!", "time": 10,
                 "endTime": 11, "secondsFromStart": 10, "duration": 1},
            ],
            "recordingUrl": "https://storage.vapi.ai/rec.wav",
            "variableValues": {},
        },
        "analysis": {"summary": "The caller booked a table for four at 7 pm tonight.",
                     "successEvaluation": "true", "structuredData": {"party_size": 4}},
    }
    message.update(fields)
    ServerMessageEndOfCallReport.model_validate(message)
    return {"message": message}


def post_vapi(url: str, payload: dict, secret: str | None = None, headers: dict | None = None,
              raw: bytes | None = None) -> requests.Response:
    h = {"content-type": "application/json", **(headers or {})}
    if secret is not None:
        h["x-vapi-secret"] = secret
    body = raw if raw is not None else json.dumps(payload).encode()
    return requests.post(url, data=body, headers=h, timeout=30)


def hmac_headers(secret: str, body: bytes, at: datetime | None = None) -> dict:
    """What a Vapi HMAC credential set up the Standard Webhooks way sends (the key: the
    secret's own bytes)."""
    wh = Webhook("whsec_" + base64.b64encode(secret.encode()).decode())
    at = at or datetime.now(UTC)
    msg_id = "msg_" + uuid.uuid4().hex
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": wh.sign(msg_id, at, body.decode())}


# --- Retell, as the tests play it ------------------------------------------------------------


def retell_key() -> str:
    return "key_" + uuid.uuid4().hex[:28]


def retell_sign(key: str, body: str, at_ms: int | None = None) -> str:
    sig = retell_signer["sign"](body, key, at_ms)
    if at_ms is None:
        assert retell_verify(body, key, sig), "the SDK must accept what we sign"
    return sig


def post_retell(url: str, key: str, payload: dict, signature: str | None = None,
                raw: str | None = None) -> requests.Response:
    body = raw if raw is not None else json.dumps(payload)
    sig = signature or retell_sign(key, body)
    return requests.post(url, data=body.encode(), timeout=30,
                         headers={"content-type": "application/json",
                                  "x-retell-signature": sig})


def inbound(number: str) -> dict:
    return {"event": "call_inbound",
            "call_inbound": {"agent_id": "agent_default", "agent_version": 3,
                             "from_number": "+15559871234", "to_number": number}}


def retell_call(number: str, call_id: str | None = None, analyzed: bool = True,
                **fields) -> dict:
    """A Retell phone call object with every documented field we read, and more we don't."""
    start = int(time.time() * 1000) - 90_000
    call = {
        "call_id": call_id or "call_" + uuid.uuid4().hex,
        "call_type": "phone_call", "agent_id": RETELL_AGENT, "agent_version": 3,
        "call_status": "ended", "direction": "inbound",
        "from_number": "+15559871234", "to_number": number,
        "start_timestamp": start, "end_timestamp": start + 75_250, "duration_ms": 75_250,
        "disconnection_reason": "user_hangup",
        "transcript": "Agent: Thanks for calling Luigi's!\nUser: A table for four at 7?",
        "transcript_object": [
            {"role": "agent", "content": "Thanks for calling Luigi's, how can I help?",
             "words": [{"word": "Thanks", "start": 0.1, "end": 0.4}]},
            {"role": "user", "content": "Hi, I'd like to book a table for four tonight at 7.",
             "words": []},
            {"role": "agent", "content": "Done, see you at 7!", "words": []},
            {"role": "user", "content": "Great, thank you so much!", "words": []},
        ],
        "recording_url": "https://retell.example/rec.wav",
        "metadata": {"restaurant_id": "ignored-here"},
        "retell_llm_dynamic_variables": {"restaurant_name": "Luigi's"},
        "opt_out_sensitive_data_storage": False,
    }
    if analyzed:
        call["call_analysis"] = {
            "call_summary": "The caller booked a table for four at 7 pm tonight.",
            "user_sentiment": "Positive", "call_successful": True, "in_voicemail": False,
            "custom_analysis_data": {"party_size": 4},
        }
    call.update(fields)
    PhoneCallResponse.model_validate(call)
    return call


def event(kind: str, call: dict) -> dict:
    return {"event": kind, "call": call}


# --- registration ----------------------------------------------------------------------------


def test_register_vapi_and_retell(api, world, dynamodb):
    from helpers import scan_all

    secret, key = vapi_secret(), retell_key()
    vapi = world["integrate"]("vapi", secret)
    retell = world["integrate"]("retell", key)
    assert vapi["platform"] == "vapi" and retell["platform"] == "retell"
    base = vapi["urls"]["serverUrl"].rsplit("/ivr/", 1)[0]
    assert vapi["urls"] == {"serverUrl": f"{base}/ivr/integrations/{vapi['integrationId']}/vapi"}
    rbase = f"{base}/ivr/integrations/{retell['integrationId']}/retell"
    assert retell["urls"] == {"inboundWebhook": f"{rbase}/inbound", "events": f"{rbase}/events"}
    items = json.dumps(scan_all(dynamodb, "INTEGRATIONS_TABLE"), default=str)
    for text in (json.dumps(vapi), json.dumps(retell), items):
        assert secret not in text and key not in text


@pytest.mark.parametrize("body,field", [
    ({"platform": "vapi", "secret": "short"}, "secret"),
    ({"platform": "retell", "secret": "agent_" + "a" * 24}, "secret"),
    ({"platform": "retell", "secret": "key_short"}, "secret"),
    ({"platform": "vapi", "secret": "v" * 20, "elevenlabsApiKey": "sk_" + "b" * 20},
     "elevenlabsApiKey"),
])
def test_bad_vapi_and_retell_registrations_are_422(api, world, body, field):
    r = api.post("/ivr/integrations", world["key"], json=body)
    assert r.status_code == 422, r.text
    assert field in [d["field"] for d in r.json()["error"]["details"]]


def test_agent_ids_are_validated_like_the_elevenlabs_agent(api, admin_token, world):
    rid = world["restaurant"]["restaurantId"]
    agent = {**world["restaurant"]["agent"], "vapi_assistant_id": "not an id",
             "retell_agent_id": ""}
    r = api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"agent": agent})
    assert r.status_code == 422, r.text
    fields = {d["field"] for d in r.json()["error"]["details"]}
    assert {"agent.vapi_assistant_id", "agent.retell_agent_id"} <= fields
    with_agent(api, admin_token, world, vapi_assistant_id=ASSISTANT, retell_agent_id=RETELL_AGENT)
    stored = api.get(f"/ivr/restaurants/{rid}", admin_token).json()["data"]["agent"]
    assert stored["vapi_assistant_id"] == ASSISTANT and stored["retell_agent_id"] == RETELL_AGENT


# --- Vapi: while the phone rings -------------------------------------------------------------


def test_assistant_request_names_the_assistant_with_every_variable(api, admin_token, world):
    with_agent(api, admin_token, world, vapi_assistant_id=ASSISTANT)
    secret = vapi_secret()
    url = world["integrate"]("vapi", secret)["urls"]["serverUrl"]
    call_id = str(uuid.uuid4())
    r = post_vapi(url, assistant_request(e164(world["number"]), call_id), secret)
    assert r.status_code == 200, r.text
    answer = ServerMessageResponseAssistantRequest.model_validate(r.json())
    assert answer.assistant_id == ASSISTANT and answer.destination is None
    v = r.json()["assistantOverrides"]["variableValues"]
    assert set(v) == VARIABLES and all(isinstance(x, str) for x in v.values())
    assert v["restaurant_id"] == world["restaurant"]["restaurantId"]
    assert v["ai_should_answer"] == "true" and v["transfer_number"].startswith("+1")
    assert v["transfer_number"] == v["forwarding_number"]
    # The ringing call is listed at once, as answered by the agent.
    [row] = calls_of(api, admin_token, world["restaurant"]["restaurantId"])
    call = admin_call(api, admin_token, row["callId"])
    assert call["status"] == "in_progress"
    assert call["platform"] == {"name": "vapi", "platformCallId": call_id,
                                "outcome": "answered_by_agent"}


def test_assistant_request_forwards_without_the_ai_or_refuses(api, admin_token, world):
    secret = vapi_secret()
    url = world["integrate"]("vapi", secret)["urls"]["serverUrl"]
    number = e164(world["number"])
    forwarding = e164(world["restaurant"]["forwarding_number"])
    rid = world["restaurant"]["restaurantId"]
    # Open, but no Vapi assistant configured: to the staff.
    r = post_vapi(url, assistant_request(number), secret)
    answer = ServerMessageResponseAssistantRequest.model_validate(r.json())
    assert answer.destination.number == forwarding and answer.assistant_id is None
    assert answer.destination.type == "number" and answer.destination.message
    with_agent(api, admin_token, world, vapi_assistant_id=ASSISTANT)
    api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"aiEnabled": False})
    r = post_vapi(url, assistant_request(number), secret)
    assert r.json() == {"destination": {"type": "number", "number": forwarding,
                                        "message": answer.destination.message}}
    # Nobody to forward to: an error Vapi speaks.
    api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"forwarding_number": None})
    r = post_vapi(url, assistant_request(number), secret)
    assert r.status_code == 200 and set(r.json()) == {"error"}
    assert "can't take your call" in r.json()["error"] or "nobody" in r.json()["error"]
    outcomes = sorted(admin_call(api, admin_token, c["callId"])["platform"]["outcome"]
                      for c in calls_of(api, admin_token, rid))
    assert outcomes == ["forwarded", "forwarded", "no_forwarding_number"]


def test_assistant_request_for_an_unknown_number_is_refused_aloud(world):
    secret = vapi_secret()
    url = world["integrate"]("vapi", secret)["urls"]["serverUrl"]
    r = post_vapi(url, assistant_request("+15550001111"), secret)
    assert r.status_code == 200 and "not set up" in r.json()["error"]


def test_transfer_destination_request_gives_the_forwarding_number(api, admin_token, world):
    secret = vapi_secret()
    url = world["integrate"]("vapi", secret)["urls"]["serverUrl"]
    r = post_vapi(url, transfer_request(e164(world["number"])), secret)
    assert r.status_code == 200, r.text
    answer = ServerMessageResponseTransferDestinationRequest.model_validate(r.json())
    assert answer.destination.number == e164(world["restaurant"]["forwarding_number"])
    rid = world["restaurant"]["restaurantId"]
    api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"forwarding_number": None})
    r = post_vapi(url, transfer_request(e164(world["number"])), secret)
    assert set(r.json()) == {"error"}
    assert calls_of(api, admin_token, rid) == [], "a transfer request records nothing"


# --- Vapi: after the call --------------------------------------------------------------------


def test_end_of_call_report_becomes_one_completed_call_with_one_email(api, admin_token, world):
    with_agent(api, admin_token, world, vapi_assistant_id=ASSISTANT)
    secret = vapi_secret()
    url = world["integrate"]("vapi", secret)["urls"]["serverUrl"]
    number, call_id = e164(world["number"]), str(uuid.uuid4())
    assert post_vapi(url, assistant_request(number, call_id), secret).status_code == 200
    report = end_of_call_report(number, call_id)
    r = post_vapi(url, report, secret)
    assert r.status_code == 200, r.text
    ours = r.json()["callId"]
    [row] = calls_of(api, admin_token, world["restaurant"]["restaurantId"])
    assert row["callId"] == ours, "the ring-time call and the report are one call"
    call = admin_call(api, admin_token, ours)
    assert call["status"] == "completed" and call["completion"]["duration"] == 75
    assert call["analysis"]["summary"] == "The caller booked a table for four at 7 pm tonight."
    assert call["analysis"]["reason"] == "Reservation"
    assert call["analysis"]["producedBy"] == {
        "summary": "vapi", "reason": "pulsara", "sentiment": "pulsara"}
    assert call["platform"] == {"name": "vapi", "platformCallId": call_id,
                                "outcome": "answered_by_agent", "callSuccessful": "success",
                                "terminationReason": "customer-ended-call"}
    assert call["callerNumber"] == "+15559871234"
    assert call["completion"]["audioUrl"] == "https://storage.vapi.ai/rec.wav"
    mail = wait_mail(ours)
    assert "table for four" in mail["body"] and "https://storage.vapi.ai/rec.wav" in mail["body"]
    again = post_vapi(url, report, secret)
    assert again.status_code == 200 and again.json()["callId"] == ours
    time.sleep(2)
    assert len(messages_for(ours)) == 1
    assert admin_call(api, admin_token, ours)["updatedAt"] == call["updatedAt"]


def test_a_forwarded_vapi_call_is_recorded_as_forwarded(api, admin_token, world):
    secret = vapi_secret()
    url = world["integrate"]("vapi", secret)["urls"]["serverUrl"]
    number, call_id = e164(world["number"]), str(uuid.uuid4())
    forwarding = e164(world["restaurant"]["forwarding_number"])
    post_vapi(url, assistant_request(number, call_id), secret)
    report = end_of_call_report(
        number, call_id, endedReason="assistant-request-returned-forwarding-phone-number",
        artifact={"messages": []}, analysis={},
        destination={"type": "number", "number": forwarding})
    r = post_vapi(url, report, secret)
    assert r.status_code == 200, r.text
    call = admin_call(api, admin_token, r.json()["callId"])
    assert call["status"] == "completed"
    assert call["platform"]["outcome"] == "forwarded"
    assert call["completion"]["forwardedTo"] == forwarding
    wait_mail(call["callId"])


def test_other_vapi_messages_are_acknowledged_and_ignored(api, admin_token, world):
    secret = vapi_secret()
    url = world["integrate"]("vapi", secret)["urls"]["serverUrl"]
    number = e164(world["number"])
    for message in ({"type": "status-update", "status": "in-progress"},
                    {"type": "speech-update", "status": "started", "role": "user"},
                    {"type": "conversation-update", "messages": []},
                    {"type": "hang"}, {"type": "some-future-type", "x": {"y": 1}}):
        message["phoneNumber"] = vapi_phone(number)
        r = post_vapi(url, {"message": message}, secret)
        assert r.status_code == 200, r.text
        assert r.json()["received"] is True and "ignored" in r.json()
    assert calls_of(api, admin_token, world["restaurant"]["restaurantId"]) == []


@pytest.mark.parametrize("payload,status,field", [
    ({"message": {"type": "end-of-call-report", "endedReason": "x", "artifact": {},
                  "analysis": {}, "phoneNumber": {"number": "+15551234567"}}}, 422, "call.id"),
    ({"message": {"type": "end-of-call-report", "call": {"id": 5}}}, 422, "message.call.id"),
    ({"message": {"type": "end-of-call-report", "call": {"id": "c"},
                  "artifact": {"messages": "not a list"}}}, 422, "artifact.messages"),
    ({"message": {"type": "assistant-request", "call": {"id": "c"}}}, 422, "phoneNumber"),
    ({"message": "hello"}, 422, "message"),
    ({"msg": {}}, 422, "message"),
    (None, 400, None),
])
def test_hostile_vapi_payloads_are_refused_and_store_nothing(api, admin_token, world, payload,
                                                             status, field):
    secret = vapi_secret()
    url = world["integrate"]("vapi", secret)["urls"]["serverUrl"]
    raw = b"{not json" if payload is None else None
    r = post_vapi(url, payload, secret, raw=raw)
    assert r.status_code == status, r.text
    if field:
        assert field in json.dumps(r.json()["error"]), r.text
    assert calls_of(api, admin_token, world["restaurant"]["restaurantId"]) == []


def test_vapi_credentials(api, admin_token, world):
    """X-Vapi-Secret, a bearer credential, or an HMAC credential the Standard Webhooks way;
    anything else is 401 and stores nothing."""
    secret = vapi_secret()
    vapi = world["integrate"]("vapi", secret)
    url = vapi["urls"]["serverUrl"]
    number = e164(world["number"])
    rid = world["restaurant"]["restaurantId"]
    report = end_of_call_report(number)
    body = json.dumps(report).encode()
    refused = [
        post_vapi(url, report),
        post_vapi(url, report, "wrong-" + secret),
        post_vapi(url, report, headers={"authorization": f"Bearer {secret}x"}),
        post_vapi(url, report, raw=body, headers=hmac_headers("wrong-" + secret, body)),
        post_vapi(url, report, raw=body, headers=hmac_headers(
            secret, body, datetime.fromtimestamp(time.time() - 6 * 60, UTC))),
        # A good signature of another body, replayed on this one.
        post_vapi(url, report, raw=body, headers=hmac_headers(secret, b'{"message": {}}')),
        post_vapi(url.replace(vapi["integrationId"], "int_" + uuid.uuid4().hex), report, secret),
    ]
    for r in refused:
        assert_error(r, 401, "UNAUTHORIZED")
    assert calls_of(api, admin_token, rid) == []
    ok = [
        post_vapi(url, report, headers={"authorization": f"Bearer {secret}"}),
        post_vapi(url, end_of_call_report(number), raw=None, secret=secret),
    ]
    signed_report = end_of_call_report(number)
    signed = json.dumps(signed_report).encode()
    ok.append(post_vapi(url, signed_report, raw=signed, headers=hmac_headers(secret, signed)))
    for r in ok:
        assert r.status_code == 200, r.text
    assert len(calls_of(api, admin_token, rid)) == 3


# --- Retell: while the phone rings -----------------------------------------------------------


def test_inbound_gives_the_agent_and_every_variable(api, admin_token, world):
    with_agent(api, admin_token, world, retell_agent_id=RETELL_AGENT)
    key = retell_key()
    url = world["integrate"]("retell", key)["urls"]["inboundWebhook"]
    r = post_retell(url, key, inbound(e164(world["number"])))
    assert r.status_code == 200, r.text
    answer = r.json()["call_inbound"]
    assert answer["override_agent_id"] == RETELL_AGENT
    v = answer["dynamic_variables"]
    assert set(v) == VARIABLES and all(isinstance(x, str) for x in v.values())
    assert v["ai_should_answer"] == "true"
    assert v["transfer_number"] == e164(world["restaurant"]["forwarding_number"])
    assert answer["metadata"] == {"restaurant_id": world["restaurant"]["restaurantId"],
                                  "decision": "agent"}
    assert calls_of(api, admin_token, world["restaurant"]["restaurantId"]) == [], (
        "no call exists yet at Retell: call_started records it")


def test_inbound_for_a_closed_restaurant_makes_the_agent_transfer(api, admin_token, world):
    rid = world["restaurant"]["restaurantId"]
    api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"aiEnabled": False})
    key = retell_key()
    url = world["integrate"]("retell", key)["urls"]["inboundWebhook"]
    answer = post_retell(url, key, inbound(e164(world["number"]))).json()["call_inbound"]
    v = answer["dynamic_variables"]
    assert v["ai_should_answer"] == "false" and v["ai_enabled"] == "false"
    assert v["transfer_number"] == e164(world["restaurant"]["forwarding_number"])
    assert answer["metadata"]["decision"] == "transfer"
    assert "override_agent_id" not in answer, "no Retell agent configured: the number's own"
    # With one configured, it takes the call to transfer it (only an agent can, on Retell).
    with_agent(api, admin_token, world, retell_agent_id=RETELL_AGENT)
    answer = post_retell(url, key, inbound(e164(world["number"]))).json()["call_inbound"]
    assert answer["override_agent_id"] == RETELL_AGENT
    assert answer["dynamic_variables"]["ai_should_answer"] == "false"
    # A number no restaurant has: an empty answer, so the number's own agent answers.
    r = post_retell(url, key, inbound("+15550001111"))
    assert r.status_code == 200 and r.json() == {"call_inbound": {}}
    # The same webhook for an inbound SMS: nothing of ours to add.
    sms = {"event": "chat_inbound",
           "chat_inbound": {"from_number": "+15559871234", "to_number": e164(world["number"])}}
    r = post_retell(url, key, sms)
    assert r.status_code == 200 and r.json() == {}


def test_retell_signatures(api, admin_token, world):
    key = retell_key()
    retell = world["integrate"]("retell", key)
    rid = world["restaurant"]["restaurantId"]
    number = e164(world["number"])
    for url in retell["urls"].values():
        payload = (inbound(number) if url.endswith("/inbound")
                   else event("call_analyzed", retell_call(number)))
        body = json.dumps(payload)
        stale_ms = int(time.time() * 1000) - 6 * 60 * 1000
        stale = retell_sign(key, body, stale_ms)
        assert not retell_verify(body, key, stale), "the SDK refuses it too"
        future = retell_sign(key, body, int(time.time() * 1000) + 6 * 60 * 1000)
        for sig in (stale, future, retell_sign("key_" + "0" * 28, body), "v=1,d=00",
                    retell_sign(key, json.dumps({"event": "call_inbound"}))):
            assert_error(post_retell(url, key, payload, signature=sig), 401, "UNAUTHORIZED")
        no_header = requests.post(url, data=body, timeout=30,
                                  headers={"content-type": "application/json"})
        assert_error(no_header, 401, "UNAUTHORIZED")
    assert calls_of(api, admin_token, rid) == []


# --- Retell: the call's events ---------------------------------------------------------------


def test_call_events_become_one_completed_call_with_one_email(api, admin_token, world):
    key = retell_key()
    url = world["integrate"]("retell", key)["urls"]["events"]
    number = e164(world["number"])
    rid = world["restaurant"]["restaurantId"]
    analyzed = retell_call(number)
    started = {k: v for k, v in analyzed.items()
               if k not in ("call_analysis", "end_timestamp", "duration_ms",
                            "disconnection_reason", "transcript", "transcript_object")}
    started["call_status"] = "ongoing"
    ended = {k: v for k, v in analyzed.items() if k != "call_analysis"}
    r = post_retell(url, key, event("call_started", started))
    assert r.status_code == 200, r.text
    ours = r.json()["callId"]
    assert admin_call(api, admin_token, ours)["status"] == "in_progress"
    assert post_retell(url, key, event("call_ended", ended)).json()["callId"] == ours
    assert admin_call(api, admin_token, ours)["status"] == "in_progress", (
        "no e-mail until analysed")
    assert messages_for(ours) == []
    r = post_retell(url, key, event("call_analyzed", analyzed))
    assert r.status_code == 200 and r.json()["callId"] == ours
    call = admin_call(api, admin_token, ours)
    assert call["status"] == "completed" and call["completion"]["duration"] == 75
    assert call["analysis"]["summary"] == "The caller booked a table for four at 7 pm tonight."
    # Retell wrote the summary; the sentiment is ours, Retell's is kept beside it.
    assert call["analysis"]["producedBy"] == {
        "summary": "retell", "reason": "pulsara", "sentiment": "pulsara"}
    assert call["analysis"]["reason"] == "Reservation"
    assert call["platform"] == {
        "name": "retell", "platformCallId": analyzed["call_id"], "outcome": "answered_by_agent",
        "callSuccessful": "success", "userSentiment": "Positive",
        "terminationReason": "user_hangup"}
    assert call["completion"]["audioUrl"] == "https://retell.example/rec.wav"
    mail = wait_mail(ours)
    assert "table for four" in mail["body"] and "https://retell.example/rec.wav" in mail["body"]
    # Retell redelivers; a late call_ended comes after the analysis: nothing changes.
    for again in (event("call_analyzed", analyzed), event("call_ended", ended),
                  event("call_started", started)):
        assert post_retell(url, key, again).json()["callId"] == ours
    time.sleep(TRANSCRIPT_WAIT + 3)
    assert len(messages_for(ours)) == 1
    assert admin_call(api, admin_token, ours)["updatedAt"] == call["updatedAt"]
    assert len(calls_of(api, admin_token, rid)) == 1


def test_an_ended_call_never_analysed_still_reaches_the_owner(api, admin_token, world):
    key = retell_key()
    url = world["integrate"]("retell", key)["urls"]["events"]
    ended = retell_call(e164(world["number"]), analyzed=False)
    ours = post_retell(url, key, event("call_ended", ended)).json()["callId"]
    done = wait_for(lambda: admin_call(api, admin_token, ours)["status"] == "completed",
                    TRANSCRIPT_WAIT + 30)
    assert done, "completed after the bounded wait"
    call = admin_call(api, admin_token, ours)
    assert call["completion"]["duration"] == 75
    # What call_ended said is kept: the transcript, and our analysis of it.
    assert "table for four" in json.dumps(call["transcript"])
    assert call["analysis"]["reason"] == "Reservation"
    assert "table for four" in wait_mail(ours)["body"]
    # The analysis arriving late changes nothing and sends nothing more.
    post_retell(url, key, event("call_analyzed", {**ended, **retell_call(
        e164(world["number"]), call_id=ended["call_id"])}))
    time.sleep(2)
    assert len(messages_for(ours)) == 1


def test_a_transferred_retell_call_is_recorded_as_forwarded(api, admin_token, world):
    key = retell_key()
    url = world["integrate"]("retell", key)["urls"]["events"]
    forwarding = e164(world["restaurant"]["forwarding_number"])
    call = retell_call(e164(world["number"]), disconnection_reason="call_transfer",
                       transfer_destination=forwarding,
                       recording_url="http://user:pw@retell.example/rec.wav")
    r = post_retell(url, key, event("call_analyzed", call))
    assert r.status_code == 200, r.text
    got = admin_call(api, admin_token, r.json()["callId"])
    assert got["platform"]["outcome"] == "forwarded"
    assert got["completion"]["forwardedTo"] == forwarding
    assert got["completion"].get("audioUrl") is None, "only an https URL without credentials"


@pytest.mark.parametrize("payload,status,field", [
    ({"event": "call_analyzed", "call": {"to_number": "+15551234567"}}, 422, "call_id"),
    ({"event": "call_analyzed"}, 422, "call"),
    ({"event": "call_analyzed", "call": {"call_id": "c", "transcript_object": "no"}}, 422,
     "transcript_object"),
    ({"event": "call_analyzed", "call": {"call_id": "c"}}, 422, "to_number"),
    ({"call": {"call_id": "c"}}, 422, "event"),
    (None, 400, None),
])
def test_hostile_retell_events_are_refused_and_store_nothing(api, admin_token, world, payload,
                                                             status, field):
    key = retell_key()
    url = world["integrate"]("retell", key)["urls"]["events"]
    raw = "{not json" if payload is None else None
    r = post_retell(url, key, payload, raw=raw)
    assert r.status_code == status, r.text
    if field:
        assert field in json.dumps(r.json()["error"]), r.text
    assert calls_of(api, admin_token, world["restaurant"]["restaurantId"]) == []


def test_other_retell_events_are_acknowledged_and_ignored(api, admin_token, world):
    key = retell_key()
    url = world["integrate"]("retell", key)["urls"]["events"]
    call = retell_call(e164(world["number"]))
    for kind in ("transcript_updated", "transfer_started", "chat_ended"):
        r = post_retell(url, key, event(kind, call))
        assert r.status_code == 200 and "ignored" in r.json()
    assert calls_of(api, admin_token, world["restaurant"]["restaurantId"]) == []
