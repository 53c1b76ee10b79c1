"""The fault-injection harness itself (infra/FAULTS.md): the AWS fault proxy, through
boto3 pointed at it (FAULT_PROXY_URL), checked against moto directly; and the
fault-point files. These fail if the proxy forwards what it should answer, answers
in a shape the SDKs don't parse, or loses track of what it did."""
from __future__ import annotations

import os
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from helpers import wait_for

pytestmark = pytest.mark.e2e

KB = 1024


@pytest.fixture(scope="module")
def table():
    """A table of the harness's own (moto, direct): partition + sort key, and an index."""
    ddb = boto3.client("dynamodb")
    name = f"pulsara-harness-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "owner", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byOwner",
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    ddb.delete_table(TableName=name)


@pytest.fixture
def via_proxy(proxy):
    """DynamoDB through the proxy, retries off: every answer is seen as the proxy gave it."""
    return proxy.client("dynamodb")


def uid(prefix: str = "h") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def code_of(call) -> tuple[str, int]:
    with pytest.raises(ClientError) as info:
        call()
    err = info.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def on(entries: list[dict], name: str, key: str = "table") -> list[dict]:
    """The log entries of one table (or queue): the functions' own traffic also goes
    through the proxy, in the background, while these tests run."""
    return [e for e in entries if e.get(key) == name]


def stored(dynamodb, table, pk, sk="a"):
    return dynamodb.get_item(
        TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    ).get("Item")


# --- rules -----------------------------------------------------------------------------------


def test_throttle_rule_then_success(proxy, via_proxy, dynamodb, table):
    pk = uid()
    rule = proxy.rule("dynamodb", "PutItem", "throttle", match=pk)
    item = {"pk": {"S": pk}, "sk": {"S": "a"}}
    assert code_of(lambda: via_proxy.put_item(TableName=table, Item=item)) == (
        "ProvisionedThroughputExceededException", 400)
    assert stored(dynamodb, table, pk) is None, "a throttled write must not reach moto"
    via_proxy.put_item(TableName=table, Item=item)  # times=1: the next one goes through
    assert stored(dynamodb, table, pk) is not None
    assert rule["id"] not in [r["id"] for r in proxy.rules()], "a used-up rule is removed"
    [fault] = proxy.log(action="throttle")
    assert (fault["rule"], fault["operation"], fault["table"]) == (rule["id"], "PutItem", table)
    puts = on(proxy.requests("dynamodb", "PutItem"), table)
    assert [(r["status"], r.get("fault")) for r in puts] == [(400, "throttle"), (200, None)]


def test_throttling_is_retried_by_the_sdk(proxy, dynamodb, table):
    """The throttling answers are classified retryable: standard retries get through."""
    pk = uid()
    proxy.rule("dynamodb", "PutItem", "throttle", times=2, match=pk)
    proxy.client("dynamodb", retries=3).put_item(
        TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "a"}}
    )
    assert stored(dynamodb, table, pk) is not None
    assert [r["status"] for r in on(proxy.requests("dynamodb", "PutItem"), table)] == [
        400,
        400,
        200,
    ]


def test_match_only_hits_its_own_requests(proxy, via_proxy, dynamodb, table):
    mine, other = uid(), uid()
    proxy.rule("dynamodb", "*", "throttle", times=-1, match=mine)
    via_proxy.put_item(TableName=table, Item={"pk": {"S": other}, "sk": {"S": "a"}})
    for _ in range(3):  # times=-1: always
        assert (
            code_of(
                lambda: via_proxy.get_item(
                    TableName=table, Key={"pk": {"S": mine}, "sk": {"S": "a"}}
                )
            )[0]
            == "ProvisionedThroughputExceededException"
        )
    assert len(proxy.log(action="throttle")) == 3
    proxy.clear()
    assert proxy.rules() == []
    via_proxy.get_item(TableName=table, Key={"pk": {"S": mine}, "sk": {"S": "a"}})


def test_skip_lets_the_first_requests_through(proxy, via_proxy, table):
    pk = uid()
    proxy.rule("dynamodb", "GetItem", "error", times=1, skip=2, match=pk)
    key = {"pk": {"S": pk}, "sk": {"S": "a"}}
    via_proxy.get_item(TableName=table, Key=key)
    via_proxy.get_item(TableName=table, Key=key)
    assert code_of(lambda: via_proxy.get_item(TableName=table, Key=key)) == (
        "InternalServerError",
        500,
    )
    via_proxy.get_item(TableName=table, Key=key)


def test_error_rule_answers_5xx_without_forwarding(proxy, via_proxy, dynamodb, table):
    pk = uid()
    proxy.rule("dynamodb", "PutItem", "error", match=pk)
    assert code_of(
        lambda: via_proxy.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "a"}})
    ) == ("InternalServerError", 500)
    proxy.rule("dynamodb", "PutItem", "error", status=503, match=pk)
    assert code_of(
        lambda: via_proxy.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "a"}})
    ) == ("ServiceUnavailable", 503)
    assert stored(dynamodb, table, pk) is None


def test_lose_response_applies_the_write_but_answers_an_error(proxy, via_proxy, dynamodb, table):
    pk = uid()
    proxy.rule("dynamodb", "PutItem", "lose_response", match=pk)
    assert code_of(
        lambda: via_proxy.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "a"}})
    ) == ("InternalServerError", 500)
    assert stored(dynamodb, table, pk) is not None, "moto applied the write"
    [req] = on(proxy.requests("dynamodb", "PutItem"), table)
    assert (req["status"], req["fault"]) == (500, "lose_response")


def test_lose_response_can_drop_the_connection(proxy, via_proxy, dynamodb, table):
    pk = uid()
    proxy.rule("dynamodb", "PutItem", "lose_response", mode="drop", match=pk)
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        via_proxy.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": "a"}})
    assert stored(dynamodb, table, pk) is not None


def test_conflict_cancels_a_transaction_item_by_item(proxy, via_proxy, dynamodb, table):
    a, b = uid(), uid()
    proxy.rule("dynamodb", "TransactWriteItems", "conflict", match=a)
    with pytest.raises(ClientError) as info:
        via_proxy.transact_write_items(TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": a}, "sk": {"S": "a"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": b}, "sk": {"S": "a"}}}},
        ])
    err = info.value.response
    assert err["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in err["CancellationReasons"]] == [
        "TransactionConflict",
        "TransactionConflict",
    ]
    assert stored(dynamodb, table, a) is None and stored(dynamodb, table, b) is None


def test_latency_rule_delays_then_forwards(proxy, via_proxy, table):
    pk = uid()
    proxy.rule("dynamodb", "GetItem", "latency", latency_ms=400, match=pk)
    started = time.monotonic()
    via_proxy.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": "a"}})
    assert time.monotonic() - started >= 0.4
    [req] = on(proxy.requests("dynamodb", "GetItem"), table)
    assert req["status"] == 200 and req["ms"] >= 400


def test_match_list_needs_every_substring(proxy, via_proxy, table):
    pk = uid()
    proxy.rule("dynamodb", "UpdateItem", "error", times=-1, match=[pk, "#status"])
    key = {"pk": {"S": pk}, "sk": {"S": "a"}}
    via_proxy.update_item(TableName=table, Key=key, UpdateExpression="SET n = :n",
                          ExpressionAttributeValues={":n": {"N": "1"}})
    assert (
        code_of(
            lambda: via_proxy.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET #status = :s",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":s": {"S": "x"}},
            )
        )[1]
        == 500
    )


def test_stale_read_hides_fresh_items_from_eventually_consistent_reads(
    proxy, via_proxy, dynamodb, table
):
    pk = uid()
    key = {"pk": {"S": pk}, "sk": {"S": "a"}}
    dynamodb.put_item(TableName=table, Item={**key, "owner": {"S": pk}})
    rule = proxy.rule("dynamodb", "*", "stale_read", times=-1, match=pk)
    assert "Item" not in via_proxy.get_item(TableName=table, Key=key)
    assert via_proxy.query(TableName=table, IndexName="byOwner", KeyConditionExpression="#o = :o",
                           ExpressionAttributeNames={"#o": "owner"},
                           ExpressionAttributeValues={":o": {"S": pk}})["Items"] == []
    # strongly consistent reads see the write, and don't use the rule up
    assert "Item" in via_proxy.get_item(TableName=table, Key=key, ConsistentRead=True)
    assert proxy.applied(rule) == 2
    proxy.remove(rule)
    assert "Item" in via_proxy.get_item(TableName=table, Key=key)


def test_sqs_throttle_and_error_shapes(proxy):
    name = uid("harness")
    url = boto3.client("sqs").create_queue(QueueName=name)["QueueUrl"]
    sqs = proxy.client("sqs")
    proxy.rule("sqs", "SendMessage", "throttle", match=name)
    assert code_of(lambda: sqs.send_message(QueueUrl=url, MessageBody="x")) == (
        "ThrottlingException",
        400,
    )
    proxy.rule("sqs", "SendMessage", "error", match=name)
    assert code_of(lambda: sqs.send_message(QueueUrl=url, MessageBody="x")) == (
        "InternalFailure",
        500,
    )
    sqs.send_message(QueueUrl=url, MessageBody="x")
    [throttled, failed, sent] = on(proxy.requests("sqs", "SendMessage"), name, "queue")
    assert (throttled["status"], failed["status"], sent["status"]) == (400, 500, 200)
    boto3.client("sqs").delete_queue(QueueUrl=url)


def test_ses_throttle_shape(proxy):
    ses = proxy.client("sesv2")
    subject = uid("harness-subject")
    proxy.rule("ses", "SendEmail", "throttle", match=subject)
    assert code_of(lambda: ses.send_email(
        FromEmailAddress=os.environ.get("SENDER_EMAIL", "notifications@pulsara.example"),
        Destination={"ToAddresses": ["nobody@harness.example"]},
        Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": "b"}}}},
    )) == ("TooManyRequestsException", 429)
    [fault] = proxy.log(action="throttle")
    assert (fault["service"], fault["operation"]) == ("ses", "SendEmail")


def test_bad_rules_are_refused(proxy):
    for spec in ({"service": "dynamodb", "action": "explode"},
                 {"action": "throttle"},
                 {"service": "dynamodb", "action": "latency"},
                 {"service": "sqs", "action": "conflict"},
                 {"service": "dynamodb", "operation": "PutItem", "action": "stale_read"},
                 {"service": "dynamodb", "action": "error", "match": []},
                 {"service": "dynamodb", "action": "throttle", "times": 0}):
        r = proxy.http.post(f"{proxy.url}/__faults__/rules", json=spec, timeout=10)
        assert r.status_code == 400, spec


# --- DynamoDB limits (always on) ----------------------------------------------------------------


def test_partition_key_over_2048_bytes_is_refused(proxy, via_proxy, dynamodb, table):
    key = {"pk": {"S": "k" * 2049}, "sk": {"S": "a"}}
    assert code_of(lambda: via_proxy.get_item(TableName=table, Key=key)) == (
        "ValidationException",
        400,
    )
    assert "hashkey" in on(proxy.log(action="limit"), table)[0]["detail"]
    dynamodb.get_item(TableName=table, Key=key)  # moto alone lets it through
    via_proxy.get_item(
        TableName=table, Key={"pk": {"S": "k" * 2048}, "sk": {"S": "a"}}
    )  # at the limit: fine
    # multi-byte characters count in UTF-8 bytes
    assert (
        code_of(
            lambda: via_proxy.get_item(
                TableName=table, Key={"pk": {"S": "é" * 1025}, "sk": {"S": "a"}}
            )
        )[0]
        == "ValidationException"
    )


def test_sort_key_over_1024_bytes_is_refused(via_proxy, table):
    assert (
        code_of(
            lambda: via_proxy.delete_item(
                TableName=table, Key={"pk": {"S": uid()}, "sk": {"S": "s" * 1025}}
            )
        )[0]
        == "ValidationException"
    )
    via_proxy.delete_item(TableName=table, Key={"pk": {"S": uid()}, "sk": {"S": "s" * 1024}})


def test_index_key_in_query_and_put_is_checked(via_proxy, table):
    assert (
        code_of(
            lambda: via_proxy.query(
                TableName=table,
                IndexName="byOwner",
                KeyConditionExpression="#o = :o",
                ExpressionAttributeNames={"#o": "owner"},
                ExpressionAttributeValues={":o": {"S": "o" * 2049}},
            )
        )[0]
        == "ValidationException"
    )
    assert code_of(lambda: via_proxy.put_item(
        TableName=table, Item={"pk": {"S": uid()}, "sk": {"S": "a"}, "owner": {"S": "o" * 2049}},
    ))[0] == "ValidationException"
    via_proxy.query(
        TableName=table,
        IndexName="byOwner",
        KeyConditionExpression="#o = :o",
        ExpressionAttributeNames={"#o": "owner"},
        ExpressionAttributeValues={":o": {"S": "o"}},
    )


def test_item_over_400_kb_is_refused(proxy, via_proxy, dynamodb, table):
    pk = uid()
    big = {"pk": {"S": pk}, "sk": {"S": "a"}, "blob": {"S": "x" * (401 * KB)}}
    assert code_of(lambda: via_proxy.put_item(TableName=table, Item=big)) == (
        "ValidationException",
        400,
    )
    [refused] = on(proxy.log(action="limit"), table)
    assert refused["operation"] == "PutItem" and "Item size" in refused["detail"]
    assert on(proxy.requests("dynamodb", "PutItem"), table)[0]["code"] == "ValidationException"
    # the same in a batch and in a transaction, and nothing of either is written
    other = uid()
    assert code_of(lambda: via_proxy.batch_write_item(RequestItems={table: [
        {"PutRequest": {"Item": {"pk": {"S": other}, "sk": {"S": "a"}}}},
        {"PutRequest": {"Item": big}},
    ]}))[0] == "ValidationException"
    assert code_of(lambda: via_proxy.transact_write_items(TransactItems=[
        {"Put": {"TableName": table, "Item": {"pk": {"S": other}, "sk": {"S": "b"}}}},
        {"Put": {"TableName": table, "Item": big}},
    ]))[0] == "ValidationException"
    assert [f["operation"] for f in on(proxy.log(action="limit"), table)] == [
        "PutItem", "BatchWriteItem", "TransactWriteItems"]
    assert stored(dynamodb, table, pk) is None and stored(dynamodb, table, other) is None
    # a large item under the limit goes through
    via_proxy.put_item(TableName=table, Item={**big, "blob": {"S": "x" * (390 * KB)}})
    assert stored(dynamodb, table, pk) is not None


def test_update_growing_an_item_past_400_kb_is_refused(proxy, via_proxy, dynamodb, table):
    pk = uid()
    key = {"pk": {"S": pk}, "sk": {"S": "a"}}
    dynamodb.put_item(TableName=table, Item={**key, "transcript": {"S": "t" * (200 * KB)}})
    # adding 250 KB next to the stored 200 KB: over the limit
    assert code_of(lambda: via_proxy.update_item(
        TableName=table, Key=key, UpdateExpression="SET summary = :s",
        ExpressionAttributeValues={":s": {"S": "s" * (250 * KB)}},
    )) == ("ValidationException", 400)
    assert "update" in on(proxy.log(action="limit"), table)[0]["detail"]
    # replacing the 200 KB attribute with 180 KB: well within it
    # (moto itself counts the old and the new value while replacing: keep their sum < 395 KB)
    via_proxy.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET #t = :t",
        ExpressionAttributeNames={"#t": "transcript"},
        ExpressionAttributeValues={":t": {"S": "u" * (180 * KB)}},
    )
    assert stored(dynamodb, table, pk)["transcript"]["S"].startswith("u")
    # keeping the attribute (it's read on the right) and adding 225 KB: over
    assert (
        code_of(
            lambda: via_proxy.update_item(
                TableName=table,
                Key=key,
                UpdateExpression="SET transcript = if_not_exists(transcript, :e), more = :m",
                ExpressionAttributeValues={":e": {"S": ""}, ":m": {"S": "m" * (225 * KB)}},
            )
        )[0]
        == "ValidationException"
    )
    assert len(on(proxy.log(action="limit"), table)) == 2
    # adding 20 KB: fine
    via_proxy.update_item(TableName=table, Key=key, UpdateExpression="SET more = :m",
                          ExpressionAttributeValues={":m": {"S": "m" * (20 * KB)}})
    assert len(stored(dynamodb, table, pk)["more"]["S"]) == 20 * KB


# --- TransactWriteItems idempotency -------------------------------------------------------------


def counter_tx(table, pk, add="1"):
    return [{"Update": {
        "TableName": table,
        "Key": {"pk": {"S": pk}, "sk": {"S": "a"}},
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": add}},
    }}]


def test_transaction_token_is_idempotent(proxy, via_proxy, dynamodb, table):
    pk, token = uid(), uuid.uuid4().hex
    via_proxy.transact_write_items(TransactItems=counter_tx(table, pk), ClientRequestToken=token)
    via_proxy.transact_write_items(TransactItems=counter_tx(table, pk), ClientRequestToken=token)
    assert stored(dynamodb, table, pk)["n"] == {"N": "1"}, "the same token must not apply twice"
    assert code_of(lambda: via_proxy.transact_write_items(
        TransactItems=counter_tx(table, pk, add="5"), ClientRequestToken=token,
    )) == ("IdempotentParameterMismatchException", 400)
    via_proxy.transact_write_items(
        TransactItems=counter_tx(table, pk), ClientRequestToken=uuid.uuid4().hex
    )
    assert stored(dynamodb, table, pk)["n"] == {"N": "2"}, "a new token applies again"
    txs = on(proxy.requests("dynamodb", "TransactWriteItems"), table)
    assert [(r["status"], bool(r.get("replayed"))) for r in txs] == [
        (200, False), (200, True), (400, False), (200, False)]


def test_sdk_retry_after_a_lost_response_applies_a_transaction_once(proxy, dynamodb, table):
    """The SDKs fill ClientRequestToken and keep it across retries: after a lost answer
    the retry gets the first answer back, as from DynamoDB."""
    pk = uid()
    proxy.rule("dynamodb", "TransactWriteItems", "lose_response", match=pk)
    proxy.client("dynamodb", retries=3).transact_write_items(TransactItems=counter_tx(table, pk))
    assert stored(dynamodb, table, pk)["n"] == {"N": "1"}
    txs = on(proxy.requests("dynamodb", "TransactWriteItems"), table)
    assert [(r["status"], r.get("fault"), bool(r.get("replayed"))) for r in txs] == [
        (500, "lose_response", False), (200, None, True)]


# --- fault points (files) ---------------------------------------------------------------------


def test_fault_files_follow_the_contract(faults):
    one = faults.arm("harness.point", "error", match="call_123")
    always = faults.arm("harness.point", "hang 3", always=True, function="complete-call")
    assert one.parent.name == "harness.point" and one.read_text() == "error match=call_123\n"
    assert always.parent.name == "complete-call:harness.point" and always.name.startswith("always")
    assert always.read_text() == "hang 3\n"
    assert set(faults.armed()) == {one, always}
    with pytest.raises(ValueError):
        faults.arm("harness.point", "explode")
    # what a function appends when it fires (shared/src/faults.rs)
    with open(faults.log_path, "a", encoding="utf-8") as fh:
        fh.write("harness.point hang 3 complete-call 4242\nother.point error calls 7\n")
    assert [(f.point, f.action, f.function, f.pid) for f in faults.fired("harness.point")] == [
        ("harness.point", "hang 3", "complete-call", 4242)]
    assert len(faults.fired()) == 2
    faults.disarm(one)
    assert faults.armed() == [always]
    faults.clear()
    assert faults.armed() == [] and faults.fired() == []


def test_wait_for_returns_the_value_or_the_last_falsy_one():
    values = iter([0, None, "", "yes"])
    assert wait_for(lambda: next(values), timeout=5, interval=0.01) == "yes"
    assert wait_for(lambda: [], timeout=0.05, interval=0.01) == []
