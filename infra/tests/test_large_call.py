"""End-to-end: the largest call the API accepts fits its storage. Both transcripts at their
limit (100 KiB each, shared/src/domain/call.rs MAX_TRANSCRIPT_BYTES) in the worst shape for
the old layout (many short plain-text lines: ~10,000 turns each), through process and
complete: the call completes, the e-mail is sent, the detail returns both transcripts intact,
the call lists, and every item in moto stays far below DynamoDB's 400 KB.

Also captures the items of a typical call (5 KB process and 5 KB final transcript of
dialogue) for infra/bench/cost_model.py: written to $CALL_ITEMS_OUT when set."""
from __future__ import annotations

import base64
import json
import os
import random

import pytest
from helpers import (
    TRANSCRIPT_LIMIT,
    call_body,
    ddb_items,
    raw_call_item,
    stored_transcripts,
    wait_for,
    wait_mail,
)

pytestmark = pytest.mark.e2e

WORDS = (
    "table for four tonight at seven please yes the pasta is gluten free do you deliver to "
    "main street thanks what time open sunday pizza large pepperoni half mushroom olives "
    "parking reservation patio birthday cake allergy peanuts vegan menu special soup salad "
    "wine glass bottle corkage fee kids high chair wheelchair ramp downtown location order "
    "pickup twenty minutes card cash tip receipt refund manager cold late wrong missing"
).split()


def short_lines(seed: int, limit: int = TRANSCRIPT_LIMIT) -> tuple[str, list[dict]]:
    """As many one-word labeled lines as fit in `limit` bytes (~10,000), and the turns the
    API should return for them."""
    rng = random.Random(seed)
    lines, turns, size = [], [], 0
    while True:
        role, label = ("agent", "ai") if len(lines) % 2 == 0 else ("caller", "user")
        message = rng.choice(WORDS)
        line = f"{label}:{message}\n"
        if size + len(line) > limit:
            # Exactly the limit: the last message takes up what is left.
            pad = "x" * (limit - size)
            lines[-1] = lines[-1][:-1] + pad + "\n"
            turns[-1]["message"] += pad
            return "".join(lines), turns
        lines.append(line)
        turns.append({"role": role, "message": message})
        size += len(line)


def items_of(dynamodb, call_id: str) -> dict[str, dict]:
    call = raw_call_item(dynamodb, call_id)
    out = {"call": call, "transcript": raw_call_item(dynamodb, f"{call_id}#transcript")}
    if "finalTranscriptTag" in call:
        out["final"] = raw_call_item(dynamodb, f"{call_id}#final.{call['finalTranscriptTag']['S']}")
    return out


def test_the_largest_call_fits(api, make_restaurant, make_key, admin_token, dynamodb):
    restaurant = make_restaurant(notificationEmails=["owner@luigis.example"])
    rid, key = restaurant["restaurantId"], make_key()["apiKey"]
    process_text, process_turns = short_lines(1)
    final_text, final_turns = short_lines(2)
    assert len(process_text.encode()) == TRANSCRIPT_LIMIT
    body = call_body(rid, transcript=process_text)
    r = api.post("/ivr/call", key, json=body)
    assert r.status_code == 200, r.text
    call_id = r.json()["data"]["callId"]
    # One byte more is refused: these are the limits.
    over = call_body(rid, transcript=process_text + "x")
    assert api.post("/ivr/call", key, json=over).status_code == 413

    done = api.post(
        f"/ivr/call/{call_id}/complete", key, json={"duration": 3600, "finalTranscript": final_text}
    )
    assert done.status_code == 200, done.text
    assert done.json()["data"]["status"] == "completed"
    mail = wait_mail(call_id)
    assert mail, "no e-mail sent"
    assert wait_for(
        lambda: (raw_call_item(dynamodb, call_id) or {}).get("emailStatus", {}).get("S") == "sent",
        30,
        0.25,
    )

    detail = api.get(f"/ivr/calls/{call_id}", admin_token)
    assert detail.status_code == 200, detail.text[:300]
    data = detail.json()["data"]
    assert len(process_turns) > 9_000
    assert data["transcript"] == process_turns
    assert data["completion"]["finalTranscript"] == final_turns

    listed = api.get(f"/ivr/restaurants/{rid}/calls", admin_token).json()["data"]["calls"]
    assert [c["callId"] for c in listed] == [call_id]
    assert listed[0]["emailStatus"] == "sent" and listed[0]["duration"] == 3600

    items = items_of(dynamodb, call_id)
    sizes = {name: ddb_items.item_size(item) for name, item in items.items()}
    print(f"\nlargest call, item sizes in moto (bytes): {sizes}")
    assert set(sizes) == {"call", "transcript", "final"}
    assert all(size < ddb_items.ITEM_LIMIT for size in sizes.values()), sizes
    # The call item stays small whatever the transcripts: status updates rewrite ~1 KB.
    assert sizes["call"] < 2048, sizes
    assert stored_transcripts(dynamodb, call_id) == (process_turns, final_turns)


DIALOGUE = [
    ("Agent", "Thanks for calling Luigi's Trattoria on Main Street, this is the virtual host. "
              "How can I help you today?"),
    ("Customer", "Hi, yes, I'd like to book a table for this Friday evening if you have one."),
    ("Agent", "Of course. How many guests will be joining, and what time were you thinking?"),
    ("Customer", "We'll be six adults and two kids, so eight in total, around seven thirty."),
    ("Agent", "Let me check. I have a table for eight at seven thirty on the patio or at eight "
              "fifteen inside. Which would you prefer?"),
    ("Customer", "Inside please, it might be cold. Do you have high chairs for the little one?"),
    ("Agent", "We do, I'll add a high chair. Are there any allergies or dietary needs?"),
    ("Customer", "My sister is allergic to peanuts and one of us is vegan, is that a problem?"),
    ("Agent", "Not at all, our kitchen can prepare vegan pasta and we don't cook with peanuts. "
              "I'll note both allergies on the reservation."),
    ("Customer", "Great. Also it's my mother's birthday, could we bring our own cake?"),
    ("Agent", "Yes, there's a small cake fee of five dollars per person, and we can bring it "
              "out with candles. May I have a name and a phone number for the booking?"),
    ("Customer", "Maria Rossi, and my number is five five five, one two three, "
                 "four five six seven."),
    ("Agent", "Thank you Maria. Friday at eight fifteen, eight guests, inside, one high chair, "
              "peanut allergy, one vegan guest, and a birthday cake. Anything else?"),
    ("Customer", "Is there parking nearby? Last time we circled the block for twenty minutes."),
    ("Agent", "There's a public garage on Elm Street, two minutes' walk, and we validate "
              "parking for three hours."),
]


def dialogue(limit: int, twist: str) -> str:
    """Realistic dialogue, repeated with small changes up to `limit` bytes."""
    out, n = [], 0
    while True:
        for speaker, text in DIALOGUE:
            line = f"{speaker}: {text}{'' if n % 3 else ' ' + twist}\n"
            if sum(map(len, out)) + len(line) > limit:
                return "".join(out)
            out.append(line)
            n += 1


def test_typical_call_items(api, make_restaurant, make_key, dynamodb):
    """The cost model's typical call: its items as moto holds them after process and after
    the completion's e-mail was sent (the item sizes every write is billed by)."""
    restaurant = make_restaurant(notificationEmails=["owner@luigis.example"])
    rid, key = restaurant["restaurantId"], make_key()["apiKey"]
    r = api.post("/ivr/call", key, json=call_body(rid, transcript=dialogue(5 * 1024, "um")))
    assert r.status_code == 200, r.text
    call_id = r.json()["data"]["callId"]
    after_process = items_of(dynamodb, call_id)
    done = api.post(f"/ivr/call/{call_id}/complete", key, json={
        "duration": 245, "forwardedTo": "+15551230000",
        "finalTranscript": dialogue(5 * 1024, "uh"),
    })
    assert done.status_code == 200, done.text
    assert wait_for(
        lambda: (raw_call_item(dynamodb, call_id) or {}).get("emailStatus", {}).get("S") == "sent",
        30,
        0.25,
    )
    after_email = items_of(dynamodb, call_id)
    restaurant_item = dynamodb.get_item(
        TableName=os.environ["RESTAURANTS_TABLE"], Key={"restaurantId": {"S": rid}}
    )["Item"]
    sizes = {
        "process": {k: ddb_items.item_size(v) for k, v in after_process.items()},
        "email sent": {k: ddb_items.item_size(v) for k, v in after_email.items()},
        "restaurant": ddb_items.item_size(restaurant_item),
    }
    print(f"\ntypical call, item sizes in moto (bytes): {sizes}")
    # Under 1 KB, each status write (completion, e-mail sent) is one write unit.
    assert max(sizes["process"]["call"], sizes["email sent"]["call"]) < 1024, sizes
    out = os.environ.get("CALL_ITEMS_OUT")
    if out:
        captured = {
            "after_process": after_process,
            "after_email": after_email,
            "restaurant": restaurant_item,
        }

        def plain(v):
            if isinstance(v, bytes | bytearray):
                return {"__b64__": base64.b64encode(bytes(v)).decode()}
            if isinstance(v, dict):
                return {k: plain(x) for k, x in v.items()}
            if isinstance(v, list):
                return [plain(x) for x in v]
            return v

        with open(out, "w") as f:
            json.dump(plain(captured), f, indent=1, sort_keys=True)
