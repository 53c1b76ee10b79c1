"""End-to-end: process -> complete -> e-mail, idempotency, races, SES outages
and the dashboard, through `cargo lambda watch`, moto and the local SQS event
source."""
from __future__ import annotations

import concurrent.futures
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from helpers import call_body, call_items, messages_for, scan_all, stored_transcripts, wait_for

pytestmark = pytest.mark.e2e

REASONS = {
    "Hours",
    "Reservation",
    "Order",
    "Delivery",
    "Menu",
    "Location",
    "Catering",
    "Complaint",
    "Billing",
    "Employment",
    "Other",
}
SENDER = os.environ.get("SENDER_EMAIL", "notifications@pulsara.example")


@pytest.fixture
def setup(make_restaurant, make_key):
    restaurant = make_restaurant(
        notificationEmails=["owner@luigis.example", "manager@luigis.example"]
    )
    key = make_key()["apiKey"]
    return restaurant, key


def test_process_call_exactly_as_seed(api, setup):
    restaurant, key = setup
    r = api.post("/ivr/call", key, json=call_body(restaurant["restaurantId"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True and body["message"] == "Call processed successfully"
    data = body["data"]
    assert data["callId"].startswith("call_")
    assert 0 <= data["sentimentScore"] <= 100
    assert data["sentimentLabel"] in {"positive", "neutral", "negative"}
    assert data["reason"] == "Hours"
    assert data["summary"].endswith(".")
    assert r.headers["ratelimit-limit"]


def test_process_is_idempotent_and_longer_transcripts_update(api, setup, dynamodb):
    restaurant, key = setup
    body = call_body(restaurant["restaurantId"], transcript="Customer: hi")
    first = api.post("/ivr/call", key, json=body).json()["data"]
    again = api.post("/ivr/call", key, json=body).json()["data"]
    assert again["callId"] == first["callId"] and again["duplicate"] is True
    longer = dict(body, transcript=[
        {"role": "agent", "message": "Luigi's, how can I help?"},
        {"role": "user", "message": "hi I'd like to book a table for four this friday at 7pm"},
    ])
    updated = api.post("/ivr/call", key, json=longer).json()["data"]
    assert updated["callId"] == first["callId"]
    assert updated["reason"] == "Reservation"
    assert "for 4" in updated["summary"]
    items = [
        i for i in call_items(dynamodb) if i["externalCallId"]["S"] == body["callId"]
    ]
    assert len(items) == 1
    # The same vendor id for another restaurant is another call.
    restaurant_ids = {first["restaurantId"]}
    assert first["restaurantId"] in restaurant_ids


@pytest.mark.parametrize("overrides, field", [
    ({"timestamp": "last tuesday"}, "timestamp"),
    ({"timestamp": "2001-01-01T00:00:00Z"}, "timestamp"),
    ({"callerNumber": "12"}, "callerNumber"),
    ({"audioUrl": "http://storage.example/a.mp3"}, "audioUrl"),
    ({"callId": ""}, "callId"),
    ({"callId": "x" * 129}, "callId"),
    ({"transcript": [{"role": "robot", "message": "beep"}]}, "transcript[0].role"),
    ({"transcript": 42}, "transcript"),
    ({"sentiment": "positive"}, None),
])
def test_invalid_calls_are_422_and_nothing_stored(api, setup, dynamodb, overrides, field):
    restaurant, key = setup
    before = len(scan_all(dynamodb, "CALLS_TABLE"))
    r = api.post("/ivr/call", key, json=call_body(restaurant["restaurantId"], **overrides))
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"
    if field:
        assert field in [d["field"] for d in r.json()["error"]["details"]]
    assert len(scan_all(dynamodb, "CALLS_TABLE")) == before


def test_oversized_transcript_is_413(api, setup, dynamodb):
    restaurant, key = setup
    before = len(scan_all(dynamodb, "CALLS_TABLE"))
    r = api.post(
        "/ivr/call",
        key,
        json=call_body(restaurant["restaurantId"], transcript="Customer: " + "la " * 40_000),
    )
    assert r.status_code == 413, r.text
    assert r.json()["error"]["details"][0]["field"] == "transcript"
    assert len(scan_all(dynamodb, "CALLS_TABLE")) == before


def test_unknown_or_foreign_restaurant_is_404(api, setup, make_key, make_restaurant):
    restaurant, key = setup
    r = api.post("/ivr/call", key, json=call_body("rst_nope"))
    assert r.status_code == 404
    other = make_restaurant()
    restricted = make_key(restaurantIds=[other["restaurantId"]])["apiKey"]
    assert (
        api.post("/ivr/call", restricted, json=call_body(restaurant["restaurantId"])).status_code
        == 404
    )
    # by phone number works too
    r = api.post("/ivr/call", key, json=call_body(restaurant["phoneNumbers"][0]))
    assert r.status_code == 200 and r.json()["data"]["restaurantId"] == restaurant["restaurantId"]


def test_complete_sends_one_escaped_email(api, setup):
    restaurant, key = setup
    hostile = "Customer: <script>alert('x')</script> can I book a table for 2 & <b>bold</b>?"
    call_id = api.post(
        "/ivr/call", key, json=call_body(restaurant["restaurantId"], transcript=hostile)
    ).json()["data"]["callId"]
    done = api.post(f"/ivr/call/{call_id}/complete", key, json={
        "duration": 120, "forwardedTo": "manager", "finalTranscript": hostile,
        "audioUrl": "https://storage.pulsara.ai/calls/x.mp3?a=1&b=2",
    })
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["message"] == "Call completion logged successfully"
    data = body["data"]
    assert data["emailSent"] is True
    assert sorted(data["emailRecipients"]) == ["manager@luigis.example", "owner@luigis.example"]
    assert data["duration"] == 120 and data["reason"] == "Reservation"
    mails = messages_for(call_id)
    assert len(mails) == 1
    mail = mails[0]
    assert sorted(mail["destinations"]["ToAddresses"]) == sorted(data["emailRecipients"])
    assert mail["source"] == SENDER
    assert "Reservation" in mail["subject"] and "(555) 987-1234" in mail["subject"]
    html = mail["body"]
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "x.mp3?a=1&amp;b=2" in html
    assert "Forwarded" in html and "manager" in html
    # A repeat completion returns the stored result and sends nothing.
    again = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 999})
    assert again.status_code == 200
    assert again.json()["data"]["duration"] == 120
    assert again.json()["data"]["emailSent"] is True
    time.sleep(2.5)  # past the safety-net job's delay: it must find the mail sent
    assert len(messages_for(call_id)) == 1


def test_concurrent_completions_send_one_email(api, setup):
    restaurant, key = setup
    call_id = api.post("/ivr/call", key, json=call_body(restaurant["restaurantId"])).json()["data"][
        "callId"
    ]
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(
                lambda _: api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 30}),
                range(4),
            )
        )
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    time.sleep(2.5)
    assert len(messages_for(call_id)) == 1


def test_complete_unknown_or_other_tenants_call_is_404(api, setup, make_key):
    restaurant, key = setup
    assert (
        api.post(
            "/ivr/call/call_000000000000000000000000/complete", key, json={"duration": 5}
        ).status_code
        == 404
    )
    call_id = api.post("/ivr/call", key, json=call_body(restaurant["restaurantId"])).json()["data"][
        "callId"
    ]
    stranger = make_key()["apiKey"]
    r = api.post(f"/ivr/call/{call_id}/complete", stranger, json={"duration": 5})
    assert r.status_code == 404
    bad = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": -1})
    assert bad.status_code == 422
    bad = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 10, "audioUrl": "ftp://x"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "audioUrl"


def test_email_survives_ses_outage(api, admin_token, setup, proxy):
    """SES answers 500 to this call's e-mail (every SDK attempt) for a while: the e-mail is
    queued and retried, then sent once SES is back. (A refusal for good, such as an unverified
    sender, fails at once instead: test_email_errors.py.)"""
    restaurant, key = setup
    call_id = api.post("/ivr/call", key, json=call_body(restaurant["restaurantId"])).json()["data"][
        "callId"
    ]
    down = proxy.rule("ses", "SendEmail", "error", times=-1, match=call_id)
    try:
        done = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 61})
        assert done.status_code == 200, done.text
        data = done.json()["data"]
        assert data["emailSent"] is False and data["emailStatus"] == "queued"
        def email() -> dict:
            return api.get(f"/ivr/calls/{call_id}", admin_token).json()["data"]["email"]

        # Retries happen, and fail, while SES is down (each with the SDK's own 3 tries).
        assert wait_for(lambda: email()["attempts"] >= 2, timeout=45), email()
        assert email()["status"] in ("queued", "sending"), "neither sent nor given up"
        assert messages_for(call_id) == []
    finally:
        proxy.remove(down)
    sent = wait_for(
        lambda: (
            api.get(f"/ivr/calls/{call_id}", admin_token).json()["data"]["email"]["status"]
            == "sent"
        ),
        timeout=60,
    )
    assert sent, "the retry function never delivered the queued e-mail"
    assert len(messages_for(call_id)) == 1


def test_an_email_the_completing_request_sent_queues_no_job(api, setup, proxy):
    """The completion's stream record reaches email-sender after its batching window; the
    completing request has sent the e-mail by then, so the consumer reads the call and queues
    no job (no SQS requests for this call). One the completing request could not send is
    queued (test_email_survives_ses_outage)."""
    restaurant, key = setup
    call_id = api.post("/ivr/call", key, json=call_body(restaurant["restaurantId"])).json()[
        "data"]["callId"]
    jobs = proxy.rule("sqs", "SendMessage", "pass", times=-1, match=call_id)
    # Reads of this call take 1.5 s: whatever this machine's load, the consumer's read comes
    # after the completing request has sent and recorded the e-mail, as the window makes likely.
    slow = proxy.rule("dynamodb", "GetItem", "latency", times=-1, match=call_id, latency_ms=1500)
    try:
        mark = proxy.mark()
        done = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 61})
        assert done.json()["data"]["emailStatus"] == "sent", done.text
        read = wait_for(lambda: [r for r in proxy.requests("dynamodb", "GetItem", since=mark)
                                 if r.get("caller") == "email-sender"
                                 and r.get("table", "").endswith("CallsTable")], timeout=30)
        assert read, "the stream consumer never looked at the completed call"
        time.sleep(1)  # it would queue the job right after its read
        assert proxy.applied(jobs) == 0, "a job was queued for an e-mail already sent"
    finally:
        proxy.remove(jobs)
        proxy.remove(slow)
    assert len(messages_for(call_id)) == 1


def test_dashboard_lists_and_reads_calls(api, admin_token, setup, make_key, dynamodb):
    restaurant, key = setup
    rid = restaurant["restaurantId"]
    base = datetime.now(UTC) - timedelta(hours=3)
    ids = []
    for n in range(3):
        ts = (base + timedelta(minutes=n)).isoformat().replace("+00:00", "Z")
        ids.append(
            api.post("/ivr/call", key, json=call_body(rid, timestamp=ts)).json()["data"]["callId"]
        )
    page = api.get(f"/ivr/restaurants/{rid}/calls", admin_token, params={"limit": 2})
    assert page.status_code == 200, page.text
    data = page.json()["data"]
    assert [c["callId"] for c in data["calls"]] == [ids[2], ids[1]], "newest first"
    assert "transcript" not in page.text
    rest = api.get(
        f"/ivr/restaurants/{rid}/calls",
        admin_token,
        params={"limit": 2, "cursor": data["nextCursor"]},
    ).json()["data"]
    assert [c["callId"] for c in rest["calls"]] == [ids[0]]
    window = api.get(
        f"/ivr/restaurants/{rid}/calls",
        admin_token,
        params={
            "from": (base + timedelta(seconds=30)).isoformat(),
            "to": (base + timedelta(seconds=90)).isoformat(),
        },
    ).json()["data"]
    assert [c["callId"] for c in window["calls"]] == [ids[1]]
    one = api.get(f"/ivr/calls/{ids[0]}", admin_token)
    assert one.status_code == 200
    assert one.json()["data"]["analysis"]["reason"] == "Hours"
    assert "ownerId" not in one.text
    assert (
        api.get(f"/ivr/restaurants/{rid}/calls", admin_token, params={"from": "soon"}).status_code
        == 422
    )
    assert (
        api.get(f"/ivr/restaurants/{rid}/calls", admin_token, params={"limit": 500}).status_code
        == 422
    )
    assert api.get(f"/ivr/restaurants/{rid}/calls", key).status_code == 403
    assert api.get("/ivr/calls/call_nope", admin_token).status_code == 404
    # Retention: an expired record is gone for every read, before DynamoDB deletes it.
    dynamodb.update_item(
        TableName=os.environ["CALLS_TABLE"],
        Key={"callId": {"S": ids[0]}},
        UpdateExpression="SET expiresAt = :past",
        ExpressionAttributeValues={":past": {"N": "1000"}},
    )
    assert api.get(f"/ivr/calls/{ids[0]}", admin_token).status_code == 404
    listed = api.get(f"/ivr/restaurants/{rid}/calls", admin_token).json()["data"]["calls"]
    assert ids[0] not in [c["callId"] for c in listed]
    assert api.post(f"/ivr/call/{ids[0]}/complete", key, json={"duration": 1}).status_code == 404


def test_records_from_before_transcript_items_still_read_and_list(
    api, setup, admin_token, dynamodb
):
    """Stacks hold records with both transcripts inline and no index copies of `duration`
    and `emailStatus`: the detail reads the inline transcripts, the list reads such a
    completed record whole. New records keep neither transcript inline."""
    restaurant, key = setup
    rid = restaurant["restaurantId"]
    call_id = api.post("/ivr/call", key, json=call_body(rid)).json()["data"]["callId"]
    final = "Customer: I'd like to order two large pizzas for delivery"
    done = api.post(
        f"/ivr/call/{call_id}/complete", key, json={"duration": 77, "finalTranscript": final}
    )
    assert done.status_code == 200, done.text
    assert wait_for(lambda: messages_for(call_id), 30)
    table = os.environ["CALLS_TABLE"]
    item = dynamodb.get_item(TableName=table, Key={"callId": {"S": call_id}})["Item"]
    assert "transcript" not in item and "finalTranscript" not in item["completion"]["M"]
    process, final_turns = stored_transcripts(dynamodb, call_id)
    assert process[0]["role"] == "agent" and final_turns[0]["message"].startswith("I'd like")

    def inline(turns):
        return {"L": [{"M": {"role": {"S": t["role"]}, "message": {"S": t["message"] + "!"}}}
                      for t in turns]}

    legacy = {k: v for k, v in item.items()
              if k not in ("finalTranscriptTag", "emailStatus", "duration")}
    legacy["transcript"] = inline(process)
    legacy["completion"]["M"]["finalTranscript"] = inline(final_turns)
    dynamodb.put_item(TableName=table, Item=legacy)
    for k in (f"{call_id}#transcript", f"{call_id}#final.{item['finalTranscriptTag']['S']}"):
        dynamodb.delete_item(TableName=table, Key={"callId": {"S": k}})

    data = api.get(f"/ivr/calls/{call_id}", admin_token).json()["data"]
    assert [t["message"] for t in data["transcript"]] == [t["message"] + "!" for t in process]
    assert data["completion"]["finalTranscript"][0]["message"].endswith("delivery!")
    (row,) = api.get(f"/ivr/restaurants/{rid}/calls", admin_token).json()["data"]["calls"]
    assert (row["callId"], row["duration"], row["emailStatus"]) == (call_id, 77, "sent")
