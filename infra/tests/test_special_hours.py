"""End-to-end: call hours by date (special hours, closures), `nextChangeAt` across clock
changes, and conditional config requests (ETag, If-None-Match -> 304, Cache-Control)."""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from helpers import assert_error, config_path

pytestmark = pytest.mark.e2e

WEEK = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
CLOSED_WEEK = {d: [] for d in WEEK}


def local_today(tz: str) -> date:
    return datetime.now(ZoneInfo(tz)).date()


def calm_zone() -> str:
    """A zone where it is nowhere near midnight, so 'today' holds for the whole test."""
    for tz in ["America/New_York", "Asia/Tokyo", "Europe/London", "Australia/Sydney"]:
        if 2 <= datetime.now(ZoneInfo(tz)).hour < 21:
            return tz
    raise AssertionError("some zone is always between 02:00 and 21:00")


def first_instant(tz: str, day: date, hh: int, mm: int) -> datetime:
    """The first moment the clocks in `tz` show `day hh:mm` or later (a skipped time is reached
    when the clocks jump), walked in UTC minutes: independent of the service's arithmetic."""
    zone = ZoneInfo(tz)
    target = datetime(day.year, day.month, day.day, hh, mm)
    u = datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=15)
    while u.astimezone(zone).replace(tzinfo=None) < target:
        u += timedelta(minutes=1)
    return u


def next_clock_change(tz: str, forward: bool) -> date:
    """The date of `tz`'s next clock change forward (spring) or back (autumn), from tomorrow."""
    zone = ZoneInfo(tz)
    day = local_today(tz) + timedelta(days=1)
    for _ in range(366):
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        # Same-zone arithmetic is wall-clock: the next local midnight.
        before, after = midnight.utcoffset(), (midnight + timedelta(days=1)).utcoffset()
        if (after > before) == forward and after != before:
            return day
        day += timedelta(days=1)
    raise AssertionError(f"{tz} changes its clocks every year")


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def config(api, key: str, rid: str, **headers):
    return api.get(config_path(rid), key, headers=headers)


def test_a_special_date_today_closes_with_its_reason_and_note(api, make_key, make_restaurant):
    tz = calm_zone()
    today = local_today(tz)
    r = make_restaurant(
        timezone=tz,
        specialHours=[
            {"date": str(today + timedelta(days=1)),
             "windows": [{"start": "18:00", "end": "02:00"}]},
            {"date": str(today), "windows": [], "note": "Private event"},
        ],
        closures=[{"from": str(today + timedelta(days=10)), "to": str(today + timedelta(days=12)),
                   "note": "Renovation"}],
    )
    assert [s["date"] for s in r["specialHours"]] == [str(today), str(today + timedelta(days=1))]
    assert r["closures"][0]["note"] == "Renovation"
    key = make_key()["apiKey"]
    data = config(api, key, r["restaurantId"]).json()["data"]
    assert data["currentlyInCallHours"] is False
    assert data["routing"] == {
        "action": "forward",
        "reason": "special_hours_closed",
        "forwardTo": r["forwardingNumberE164"],
    }
    assert data["todayNote"] == "Private event"
    assert data["todayCallHours"] == []
    # Open all day on regular days, 18:00 tomorrow on the special one.
    assert parse(data["nextChangeAt"]) == first_instant(tz, today + timedelta(days=1), 18, 0)
    assert parse(data["nextChangeAt"]).utcoffset() == parse(data["localTime"]).utcoffset()
    assert [s["date"] for s in data["specialHours"]] == [str(today), str(today + timedelta(days=1))]
    assert data["closures"] == r["closures"]


def test_a_window_past_midnight_runs_into_a_closed_special_date(api, make_key, make_restaurant):
    tz = calm_zone()
    today = local_today(tz)
    tomorrow = today + timedelta(days=1)
    # Open from 00:15 to 00:10 the next day: now is inside it. Tomorrow is closed, but today's
    # window belongs to today and still runs to 00:10 tomorrow; then closed until the day after.
    r = make_restaurant(
        timezone=tz,
        callHoursStart="00:15",
        callHoursEnd="00:10",
        specialHours=[{"date": str(tomorrow), "windows": [], "note": "Closed for a wedding"}],
    )
    data = config(api, make_key()["apiKey"], r["restaurantId"]).json()["data"]
    assert data["currentlyInCallHours"] is True
    assert data["routing"]["reason"] == "in_call_hours"
    assert data["todayNote"] is None
    assert parse(data["nextChangeAt"]) == first_instant(tz, tomorrow, 0, 10)


@pytest.mark.parametrize(
    "forward, window, expect",
    [
        # Spring: a window starting inside the skipped hour opens when the clocks jump.
        (True, {"start": "02:30", "end": "05:00"}, (2, 30)),
        # Autumn: a time shown twice opens the first time it is shown.
        (False, {"start": "01:30", "end": "03:00"}, (1, 30)),
    ],
    ids=["spring-gap", "autumn-repeat"],
)
def test_next_change_is_exact_across_clock_changes(
    api, make_key, make_restaurant, forward, window, expect
):
    tz = "America/New_York"
    day = next_clock_change(tz, forward)
    r = make_restaurant(
        timezone=tz,
        schedule=CLOSED_WEEK,
        specialHours=[{"date": str(day), "windows": [window]}],
    )
    data = config(api, make_key()["apiKey"], r["restaurantId"]).json()["data"]
    assert data["currentlyInCallHours"] is False
    assert data["routing"]["reason"] == "outside_call_hours"
    expected = first_instant(tz, day, *expect)
    assert parse(data["nextChangeAt"]) == expected, (data["nextChangeAt"], expected)
    if forward:
        assert data["nextChangeAt"] == f"{day}T03:00:00-04:00", "02:30 does not exist that night"
    else:
        assert data["nextChangeAt"] == f"{day}T01:30:00-04:00", "the first 01:30 (EDT)"


def test_always_open_has_no_next_change_and_caches_at_most_a_minute(
    api, make_key, make_restaurant
):
    r = make_restaurant()
    key = make_key()["apiKey"]
    resp = config(api, key, r["restaurantId"])
    assert resp.status_code == 200
    assert resp.json()["data"]["nextChangeAt"] is None
    cache = resp.headers["cache-control"]
    assert cache.startswith("private, max-age="), cache
    assert 0 <= int(cache.split("=")[1]) <= 60


def test_cache_control_never_passes_next_change(api, make_key, make_restaurant):
    now = datetime.now(UTC)
    # Hours that end on the minute 15 to 75 seconds from now.
    close = (now + timedelta(seconds=75)).replace(second=0, microsecond=0)
    if close.date() != now.date():
        pytest.skip("too close to midnight UTC for a same-day window")
    r = make_restaurant(timezone="UTC", callHoursEnd=close.strftime("%H:%M"))
    resp = config(api, make_key()["apiKey"], r["restaurantId"])
    data = resp.json()["data"]
    assert data["currentlyInCallHours"] is True
    assert parse(data["nextChangeAt"]) == close
    max_age = int(resp.headers["cache-control"].split("=")[1])
    served = parse(data["localTime"])
    assert served + timedelta(seconds=max_age) <= close
    assert max_age >= min(60, (close - served).total_seconds()) - 3, (max_age, served, close)


def test_if_none_match_gets_304_until_the_restaurant_changes(
    api, admin_token, make_key, make_restaurant
):
    r = make_restaurant()
    rid = r["restaurantId"]
    key = make_key()["apiKey"]
    first = config(api, key, rid)
    etag = first.headers["etag"]
    assert etag.startswith('W/"'), etag

    again = config(api, key, rid, **{"If-None-Match": etag})
    assert again.status_code == 304, again.text
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"].startswith("private, max-age=")
    assert again.headers.get("x-request-id")
    assert "ratelimit-remaining" in {h.lower() for h in again.headers}
    # A list holding it, or the strong form of the same tag, match too (weak comparison).
    assert config(api, key, rid, **{"If-None-Match": f'"x", {etag}'}).status_code == 304
    assert config(api, key, rid, **{"If-None-Match": etag[2:]}).status_code == 304
    assert config(api, key, rid, **{"If-None-Match": '"something-else"'}).status_code == 200

    # By phone number: the same answer, the same tag.
    by_phone = config(api, key, r["phoneNumbers"][0], **{"If-None-Match": etag})
    assert by_phone.status_code == 304

    patched = api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"aiEnabled": False})
    assert patched.status_code == 200, patched.text
    fresh = config(api, key, rid, **{"If-None-Match": etag})
    assert fresh.status_code == 200, "a new version is a new answer"
    assert fresh.headers["etag"] != etag
    assert fresh.json()["data"]["routing"]["reason"] == "ai_disabled"

    # Authentication still comes first: no key, no 304.
    assert_error(api.get(config_path(rid), headers={"If-None-Match": etag}), 401, "UNAUTHORIZED")


def test_bad_date_exceptions_are_422_and_change_nothing(api, admin_token, make_restaurant):
    tz = "America/New_York"
    today = local_today(tz)
    r = make_restaurant(timezone=tz)
    rid = r["restaurantId"]

    def day(n: int) -> str:
        return str(today + timedelta(days=n))

    cases = [
        ({"specialHours": [{"date": str(today + timedelta(days=400)), "windows": []}]},
         "specialHours[0].date"),
        ({"specialHours": [{"date": str(today), "windows": []},
                           {"date": str(today), "windows": []}]}, "specialHours[1].date"),
        ({"specialHours": [{"date": str(today), "windows": [{"start": "09:00", "end": "12:00"},
                                                             {"start": "11:00", "end": "13:00"}]}]},
         "specialHours[0].windows[1]"),
        ({"closures": [{"from": str(today + timedelta(days=5)), "to": str(today)}]},
         "closures[0].to"),
        ({"closures": [{"from": day(0), "to": day(5)}, {"from": day(3), "to": day(9)}]},
         "closures[1]"),
        ({"specialHours": [{"date": str(today + timedelta(days=d)), "windows": []}
                           for d in range(101)]}, "specialHours"),
        ({"specialHours": [{"date": "2026-02-30", "windows": []}]}, None),
        ({"closures": [{"from": str(today), "to": str(today), "extra": 1}]}, None),
    ]
    for patch, field in cases:
        resp = api.patch(f"/ivr/restaurants/{rid}", admin_token, json=patch)
        if field is None:
            assert resp.status_code in (400, 422), (patch, resp.text)
        else:
            assert_error(resp, 422, "VALIDATION_ERROR", field)
    after = api.get(f"/ivr/restaurants/{rid}", admin_token).json()["data"]
    assert after["version"] == r["version"]
    assert after["specialHours"] == [] and after["closures"] == []


def test_hours_edits_emit_settings_updated(api, admin_token, make_key, make_restaurant,
                                           receiver, register):
    r = make_restaurant()
    rid = r["restaurantId"]
    # A key for this restaurant only, so its webhook hears no other test's edits.
    key = make_key(restaurantIds=[rid])["apiKey"]
    path = f"/hours/{uuid.uuid4().hex[:8]}"
    hook = register(key, receiver.url(path), ["settings.updated"])
    today = local_today("America/New_York")
    special = [{"date": str(today + timedelta(days=20)), "windows": [], "note": "Inventory"}]
    resp = api.patch(f"/ivr/restaurants/{rid}", admin_token, json={"specialHours": special})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["specialHours"] == special
    closures = [{"from": str(today + timedelta(days=30)), "to": str(today + timedelta(days=31))}]
    resp = api.patch(
        f"/ivr/restaurants/{rid}", admin_token, json={"specialHours": None, "closures": closures}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"]["specialHours"] == []
    hits = receiver.wait(path, 2, timeout=30)
    fields = sorted(tuple(h.verify(hook["secret"])["data"]["changedFields"]) for h in hits)
    assert fields == [("specialHours",), ("specialHours", "closures")]
