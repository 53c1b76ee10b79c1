"""End-to-end: SES errors that a retry cannot cure fail the e-mail at once; throttling backs off
and sends. The AWS fault proxy answers SendEmail for one call with SES's own error shape."""
from __future__ import annotations

import time
import uuid

import pytest
from reliability_kit import (
    SES,
    SETTLE,
    ProxyCtl,
    client,
    create_key,
    create_restaurant,
    email_of,
    queue_url,
    wait_email_terminal,
)
from test_reliability import complete, new_call

pytestmark = pytest.mark.e2e


@pytest.fixture
def ctl(proxy):
    return ProxyCtl(proxy.url)


def restaurant_and_key(admin_token) -> tuple[str, str]:
    rst = create_restaurant(
        admin_token, notificationEmails=[f"owner-{uuid.uuid4().hex[:8]}@errors.example"]
    )
    return rst["restaurantId"], create_key(admin_token, [rst["restaurantId"]])["apiKey"]


def dead_lettered(call_id: str) -> bool:
    """Whether the e-mail DLQ holds this call's job (peeked: visibility 0, nothing consumed)."""
    sqs = client("sqs")
    url = queue_url("EmailDeadLetterQueue")
    for _ in range(5):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
        if any(call_id in m["Body"] for m in got.get("Messages", [])):
            return True
    return False


@pytest.mark.parametrize(
    "code", ["MessageRejected", "MailFromDomainNotVerifiedException", "AccountSuspendedException"]
)
def test_a_permanent_ses_error_fails_the_email_on_the_first_attempt(admin_token, ctl, code):
    rid, key = restaurant_and_key(admin_token)
    call_id = new_call(key, rid)
    refused = ctl.rule("ses", "SendEmail", "error", times=-1, match=call_id, status=400,
                       code=code)
    started = time.monotonic()
    done = complete(key, call_id)
    assert done.status == 200, done
    state = wait_email_terminal(call_id, timeout=60)
    assert state["status"] == "failed", state
    assert int(state["attempts"]) == 1, f"a {code} was retried: {state}"
    assert code in state["lastError"], state
    assert time.monotonic() - started < 30, "failed at once, not after the retry schedule"
    assert ctl.applied(refused) == 1, "SES was asked once"
    assert dead_lettered(call_id), "the failed job is kept in the dead-letter queue for a human"
    time.sleep(SETTLE)  # a queued retry, if there were one, would have run by now
    assert int(email_of(call_id)["attempts"]) == 1
    assert SES.for_call(call_id, fresh=True) == []


def test_throttling_backs_off_and_sends(admin_token, ctl):
    rid, key = restaurant_and_key(admin_token)
    call_id = new_call(key, rid)
    # More than the SDK's own 3 attempts: the first send fails, the job retries later.
    throttled = ctl.rule("ses", "SendEmail", "throttle", times=3, match=call_id)
    done = complete(key, call_id)
    assert done.status == 200, done
    state = wait_email_terminal(call_id, timeout=90)
    assert state["status"] == "sent", state
    assert int(state["attempts"]) >= 2, state
    assert ctl.applied(throttled) == 3
    assert len(SES.for_call(call_id, fresh=True)) == 1
