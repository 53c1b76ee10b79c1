"""End-to-end: SES bounces and complaints (configuration set event destination -> SNS ->
email-events). The mailbox simulator's addresses go the whole way: the sender sends through the
configuration set with the call's tags, the local event sources publish the bounce or complaint
SES would, and the call's e-mail and the restaurant's suppression list show it. Redeliveries,
late and transient records, unreadable messages and a failing DynamoDB write are sent to the
function directly, as SNS would deliver them."""
from __future__ import annotations

import json
import os

import pytest
from helpers import (
    SIMULATOR_BOUNCE,
    SIMULATOR_COMPLAINT,
    call_body,
    invoke_function,
    messages_for,
    owner_email,
    ses_feedback,
    wait_for,
)

pytestmark = pytest.mark.e2e

FUNCTION = "email-events"


@pytest.fixture
def ivr(make_key):
    return make_key()["apiKey"]


def completed_call(api, key: str, restaurant_id: str) -> dict:
    """A call processed and completed (its e-mail attempted at once); the complete's data."""
    call_id = api.post("/ivr/call", key, json=call_body(restaurant_id)).json()["data"]["callId"]
    done = api.post(f"/ivr/call/{call_id}/complete", key, json={"duration": 30})
    assert done.status_code == 200, done.text
    return done.json()["data"]


def email_of(api, admin: str, call_id: str) -> dict:
    r = api.get(f"/ivr/calls/{call_id}", admin)
    assert r.status_code == 200, r.text
    return r.json()["data"]["email"]


def restaurant(api, admin: str, restaurant_id: str) -> dict:
    r = api.get(f"/ivr/restaurants/{restaurant_id}", admin)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def wait_status(api, admin: str, call_id: str, status: str, timeout: float = 40) -> dict:
    email = wait_for(lambda: (e := email_of(api, admin, call_id))["status"] == status and e,
                     timeout)
    assert email, f"{call_id}: e-mail never became {status}: {email_of(api, admin, call_id)}"
    return email


def sent_call(api, admin: str, key: str, restaurant_id: str) -> tuple[str, dict]:
    call_id = completed_call(api, key, restaurant_id)["callId"]
    return call_id, wait_status(api, admin, call_id, "sent")


def test_a_bounce_marks_the_email_suppresses_the_address_and_the_next_call_skips_it(
        api, admin_token, make_restaurant, ivr):
    rst = make_restaurant(notificationEmails=[SIMULATOR_BOUNCE])
    rid = rst["restaurantId"]
    first = completed_call(api, ivr, rid)
    assert first["emailSent"] is True, first  # SES accepted it; the bounce comes later
    call_id = first["callId"]
    [mail] = wait_for(lambda: messages_for(call_id), 20)
    assert mail["configuration_set_name"] == os.environ.get("SES_CONFIGURATION_SET",
                                                            "pulsara-local-email")
    assert mail["tags"] == {"callId": [call_id], "restaurantId": [rid]}
    email = wait_status(api, admin_token, call_id, "bounced")
    assert email["recipients"] == [SIMULATOR_BOUNCE]
    suppressions = restaurant(api, admin_token, rid)["emailSuppressions"]
    assert [(s["address"], s["reason"], s["callId"]) for s in suppressions] == \
        [(SIMULATOR_BOUNCE, "bounced", call_id)]

    # The only recipient is suppressed: the next call's e-mail is not sent at all.
    second = completed_call(api, ivr, rid)
    assert second["emailStatus"] == "suppressed", second
    assert second["emailSent"] is False
    detail = email_of(api, admin_token, second["callId"])
    assert detail["suppressed"] == [SIMULATOR_BOUNCE]
    assert messages_for(second["callId"]) == []
    # The restaurant's call list (index rows) shows both outcomes too.
    rows = api.get(f"/ivr/restaurants/{rid}/calls?limit=10", admin_token).json()["data"]["calls"]
    assert {r["callId"]: r["emailStatus"] for r in rows} == {
        call_id: "bounced", second["callId"]: "suppressed"}, rows


def test_a_suppressed_recipient_is_skipped_and_the_others_still_get_the_email(
        api, admin_token, make_restaurant, ivr):
    owner = owner_email()
    rid = make_restaurant(notificationEmails=[SIMULATOR_BOUNCE, owner])["restaurantId"]
    call_id = completed_call(api, ivr, rid)["callId"]
    wait_status(api, admin_token, call_id, "bounced")
    second = completed_call(api, ivr, rid)
    email = wait_status(api, admin_token, second["callId"], "sent")
    assert email["suppressed"] == [SIMULATOR_BOUNCE]
    [mail] = messages_for(second["callId"])
    assert mail["destinations"]["ToAddresses"] == [owner]


def test_a_complaint_marks_the_email_complained_and_a_late_bounce_never_downgrades_it(
        api, admin_token, make_restaurant, ivr):
    rid = make_restaurant(notificationEmails=[SIMULATOR_COMPLAINT])["restaurantId"]
    call_id = completed_call(api, ivr, rid)["callId"]
    email = wait_status(api, admin_token, call_id, "complained")
    [s] = restaurant(api, admin_token, rid)["emailSuppressions"]
    assert (s["address"], s["reason"]) == (SIMULATOR_COMPLAINT, "complained")
    version = restaurant(api, admin_token, rid)["version"]

    ok, _ = invoke_function(FUNCTION, ses_feedback("bounce", email, call_id, rid))
    assert ok
    assert email_of(api, admin_token, call_id)["status"] == "complained"
    after = restaurant(api, admin_token, rid)
    assert [x["reason"] for x in after["emailSuppressions"]] == ["complained"]
    assert after["version"] == version, "nothing was written"


def test_a_redelivered_bounce_changes_nothing_more(api, admin_token, make_restaurant, ivr):
    owner = owner_email()
    rid = make_restaurant(notificationEmails=[owner])["restaurantId"]
    call_id, email = sent_call(api, admin_token, ivr, rid)
    event = ses_feedback("bounce", email, call_id, rid)
    ok, _ = invoke_function(FUNCTION, event)
    assert ok
    assert email_of(api, admin_token, call_id)["status"] == "bounced"
    first = restaurant(api, admin_token, rid)
    assert [x["address"] for x in first["emailSuppressions"]] == [owner]
    for _ in range(2):  # SNS and Lambda may deliver the same record again
        ok, _ = invoke_function(FUNCTION, event)
        assert ok
    again = restaurant(api, admin_token, rid)
    assert again["version"] == first["version"] and \
        again["emailSuppressions"] == first["emailSuppressions"]
    assert email_of(api, admin_token, call_id)["status"] == "bounced"
    # The address never reaches the logs whole (email-events masks it).
    log = os.environ.get("WATCH_LOG")
    if log:
        with open(log, encoding="utf-8", errors="replace") as fh:
            assert owner not in fh.read()


def test_a_late_transient_bounce_changes_nothing(api, admin_token, make_restaurant, ivr):
    rid = make_restaurant(notificationEmails=[owner_email()])["restaurantId"]
    call_id, email = sent_call(api, admin_token, ivr, rid)
    version = restaurant(api, admin_token, rid)["version"]
    for kind in ("Transient", "Undetermined"):
        ok, _ = invoke_function(FUNCTION, ses_feedback("bounce", email, call_id, rid,
                                                       bounce_type=kind))
        assert ok
    assert email_of(api, admin_token, call_id)["status"] == "sent"
    after = restaurant(api, admin_token, rid)
    assert after["emailSuppressions"] == [] and after["version"] == version


@pytest.mark.parametrize("event", [
    {"Records": [{"Sns": {"MessageId": "m-1", "Message": "not json at all"}}]},
    {"Records": [{"Sns": {"MessageId": "m-2", "Message": '{"eventType": "Delivery", '
                                                        '"mail": {"messageId": "x"}}'}}]},
    {"Records": [{"Sns": {"MessageId": "m-3", "Message": json.dumps({
        "eventType": "Bounce", "bounce": {"bounceType": "Permanent", "bouncedRecipients": []},
        "mail": {"messageId": "x", "tags": {"callId": ["call_0123456789abcdef01234567"]}}})}}]},
    {"something": "else entirely"},
], ids=["not-json", "other-event-type", "unknown-call", "not-sns"])
def test_an_unusable_message_is_dropped_without_failing(event):
    ok, _ = invoke_function(FUNCTION, event)
    assert ok, "failing would only make SNS deliver the same unusable message again"


def test_a_failed_dynamodb_write_fails_the_invocation_and_the_retry_applies_it(
        api, admin_token, make_restaurant, ivr, proxy):
    owner = owner_email()
    rid = make_restaurant(notificationEmails=[owner])["restaurantId"]
    call_id, email = sent_call(api, admin_token, ivr, rid)
    event = ses_feedback("bounce", email, call_id, rid)
    broken = proxy.rule("dynamodb", "UpdateItem", "error", times=-1, match=call_id)
    try:
        ok, _ = invoke_function(FUNCTION, event)
        assert not ok, "a lost write must fail the invocation, so SNS/Lambda retry it"
        assert proxy.applied(broken) >= 1
    finally:
        proxy.remove(broken)
    assert email_of(api, admin_token, call_id)["status"] == "sent"
    ok, _ = invoke_function(FUNCTION, event)  # Lambda's retry
    assert ok
    assert email_of(api, admin_token, call_id)["status"] == "bounced"
    assert [x["address"] for x in restaurant(api, admin_token, rid)["emailSuppressions"]] == \
        [owner]


def test_listing_an_address_again_lifts_its_suppression(api, admin_token, make_restaurant, ivr):
    owner = owner_email()
    rid = make_restaurant(notificationEmails=[owner, SIMULATOR_BOUNCE])["restaurantId"]
    call_id = completed_call(api, ivr, rid)["callId"]
    wait_status(api, admin_token, call_id, "bounced")
    suppressed = {x["address"] for x in restaurant(api, admin_token, rid)["emailSuppressions"]}
    assert suppressed == {SIMULATOR_BOUNCE}, "only the bounced address"
    # A PATCH that does not list notificationEmails keeps the suppression.
    r = api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"name": "Renamed"})
    assert r.status_code == 200, r.text
    assert [x["address"] for x in r.json()["data"]["emailSuppressions"]] == [SIMULATOR_BOUNCE]
    # Listing it again is how an admin lifts it.
    r = api.patch(f"/ivr/restaurants/{rid}", admin_token,
                  json={"notificationEmails": [owner, SIMULATOR_BOUNCE]})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["emailSuppressions"] == []
    assert restaurant(api, admin_token, rid)["emailSuppressions"] == []
    second = completed_call(api, ivr, rid)
    email = wait_status(api, admin_token, second["callId"], "sent")
    assert email["suppressed"] == []
    [mail] = messages_for(second["callId"])
    assert sorted(mail["destinations"]["ToAddresses"]) == sorted([owner, SIMULATOR_BOUNCE])
