"""Unit tests of the local harness's pure parts (no stack needed): the fault proxy's
DynamoDB size arithmetic and expression reading, the event sources' filter matching,
timeouts and destinations, and local_stack's visibility scaling. The emulator's batch and
partial-failure logic, intrinsics and template checks: test_emulator_units.py."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import event_sources  # noqa: E402
import fault_proxy  # noqa: E402
import local_stack  # noqa: E402

# --- fault proxy ------------------------------------------------------------------------------


def test_item_sizes_follow_dynamodb_rules():
    size = fault_proxy.item_size
    assert size({"a": {"S": "héllo"}}) == 1 + 6
    assert size({"n": {"N": "12345"}}) == 1 + 4          # 5 significant digits: 3 bytes + 1
    assert size({"n": {"N": "-0.00120"}}) == 1 + 2       # "12"
    assert size({"b": {"B": "AAEC"}}) == 1 + 3           # raw bytes, not base64
    assert size({"f": {"BOOL": True}, "z": {"NULL": True}}) == 2 + 2
    assert size({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}) == 1 + 3 + (2 + 1) + (2 + 1)
    assert size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + (1 + 1 + 1)
    assert size({"s": {"SS": ["a", "bb"]}}) == 1 + 3


def test_key_lengths():
    assert fault_proxy.key_value_size({"S": "é" * 1024}) == 2048
    assert fault_proxy.key_value_size({"B": "AAAA"}) == 3


def test_updated_attributes_tell_replacements_from_appends():
    names = {"#t": "transcript", "#s": "status"}
    replaced, assigned = fault_proxy.updated_attributes(
        "SET #t = :t, #s = :s, log = list_append(log, :l), a.b = :x REMOVE old, m.n ADD c :one",
        names)
    assert replaced == {"transcript", "status", "old"}
    assert assigned == {"transcript", "status", "log", "a"}
    replaced, _ = fault_proxy.updated_attributes(
        "set transcript = if_not_exists(transcript, :e)", {})
    assert replaced == set()


def test_key_equalities():
    pairs = fault_proxy.key_equalities("#o = :o AND begins_with(createdAt, :c)", {"#o": "ownerId"})
    assert pairs == [("ownerId", ":o"), ("createdAt", ":c")]
    assert fault_proxy.key_equalities(":v = pk", {}) == [("pk", ":v")]


def request(target: str = "", path: str = "/", body: bytes = b"", auth_service: str = "dynamodb",
            method: str = "POST", ctype: str = "application/x-amz-json-1.0"):
    headers = [("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/"
                                 f"{auth_service}/aws4_request, SignedHeaders=host, Signature=x"),
               ("Content-Type", ctype)]
    if target:
        headers.append(("X-Amz-Target", target))
    return fault_proxy.Request(method, path, headers, body)


def test_requests_are_identified():
    r = request("DynamoDB_20120810.PutItem", body=b'{"TableName": "t"}')
    assert (r.service, r.operation, r.resource()) == ("dynamodb", "PutItem", {"table": "t"})
    r = request("AmazonSQS.SendMessage", auth_service="sqs", body=b'{"QueueUrl": "http://h/1/q1"}')
    assert (r.service, r.operation, r.resource()) == ("sqs", "SendMessage", {"queue": "q1"})
    r = request(path="/", auth_service="sqs", body=b"Action=ReceiveMessage&QueueUrl=x",
                ctype="application/x-www-form-urlencoded")
    assert (r.service, r.operation, r.protocol) == ("sqs", "ReceiveMessage", "query")
    r = request(path="/v2/email/outbound-emails", auth_service="ses", ctype="application/json")
    assert (r.service, r.operation, r.protocol) == ("ses", "SendEmail", "rest-json")
    r = request(path="/v2/email/identities/a%40b.example", auth_service="ses", method="GET")
    assert r.operation == "GetEmailIdentity"
    r = request("DynamoDB_20120810.TransactWriteItems", body=b'{"TransactItems": ['
                b'{"Put": {"TableName": "a"}}, {"Update": {"TableName": "b"}}]}')
    assert r.resource() == {"tables": ["a", "b"]}


def test_error_shapes():
    import json

    ddb = fault_proxy.throttle_error(request("DynamoDB_20120810.PutItem"))
    assert ddb.status == 400
    assert json.loads(ddb.body)["__type"].endswith("#ProvisionedThroughputExceededException")
    headers = dict(ddb.headers)
    assert int(headers["x-amz-crc32"]) == fault_proxy.zlib.crc32(ddb.body)
    sqs = fault_proxy.throttle_error(request("AmazonSQS.SendMessage", auth_service="sqs"))
    assert dict(sqs.headers)["x-amzn-query-error"] == "ThrottlingException;Sender"
    ses = fault_proxy.throttle_error(request(path="/v2/email/outbound-emails", auth_service="ses"))
    assert (ses.status, dict(ses.headers)["x-amzn-ErrorType"]) == (429, "TooManyRequestsException")
    query = fault_proxy.server_error(request(path="/", auth_service="sqs",
                                             body=b"Action=SendMessage",
                                             ctype="application/x-www-form-urlencoded"))
    assert query.status == 500 and b"<Code>InternalFailure</Code>" in query.body
    for resp in (ddb, sqs, ses, query):
        assert resp.error_code() in ("ProvisionedThroughputExceededException",
                                     "ThrottlingException", "TooManyRequestsException",
                                     "InternalFailure")


def test_rules_are_validated():
    make = fault_proxy.make_rule
    assert make({"service": "sesv2", "action": "throttle"}, "r1")["service"] == "ses"
    for bad in ({"service": "dynamodb", "action": "nope"}, {"action": "error"},
                {"service": "dynamodb", "action": "latency"},
                {"service": "sqs", "action": "conflict"},
                {"service": "dynamodb", "action": "error", "times": -2},
                {"service": "dynamodb", "action": "error", "colour": "red"},
                {"service": "dynamodb", "operation": "UpdateItem", "action": "stale_read"},
                {"service": "dynamodb", "action": "error", "match": ["ok", ""]}):
        with pytest.raises(fault_proxy.RuleError):
            make(bad, "r1")


# --- event sources ----------------------------------------------------------------------------

RECORD = {
    "eventName": "MODIFY",
    "dynamodb": {
        "Keys": {"callId": {"S": "call_1"}},
        "NewImage": {
            "callId": {"S": "call_1"},
            "email": {"M": {"status": {"S": "pending"}}},
            "recipients": {"SS": ["a@x.example", "b@x.example"]},
            "parts": {"L": [{"S": "one"}, {"S": "two"}]},
        },
    },
}


# Filter patterns as the template writes them: exact string values (operators such as exists
# and prefix are not emulated: test_emulator_units.py checks they are refused at load time).
@pytest.mark.parametrize("pattern, matches", [
    ({"dynamodb": {"NewImage": {"email": {"M": {"status": {"S": ["pending"]}}}}}}, True),
    ({"dynamodb": {"NewImage": {"email": {"M": {"status": {"S": ["sent"]}}}}}}, False),
    ({"dynamodb": {"NewImage": {"recipients": {"SS": ["b@x.example"]}}}}, True),
    ({"dynamodb": {"NewImage": {"parts": {"L": {"S": ["two"]}}}}}, True),
    ({"dynamodb": {"NewImage": {"parts": {"L": {"S": ["three"]}}}}}, False),
    ({"eventName": ["INSERT", "MODIFY"], "dynamodb": {"Keys": {"callId": {"S": ["call_1"]}}}},
     True),
    # an object is not a leaf: a value list never matches a map there
    ({"dynamodb": {"NewImage": {"email": ["pending"]}}}, False),
    ({"dynamodb": {"OldImage": {"callId": {"S": ["call_1"]}}}}, False),   # no OldImage at all
])
def test_filter_patterns(pattern, matches):
    assert event_sources._match_pattern(pattern, RECORD) is matches


def _stream(table: str) -> dict:
    return {"Fn::GetAtt": [table, "StreamArn"]}


def test_mappings_take_timeouts_retries_and_destinations(monkeypatch):
    table = {"Type": "AWS::DynamoDB::Table",
             "Properties": {"StreamSpecification": {"StreamViewType": "NEW_AND_OLD_IMAGES"}}}
    partial = ["ReportBatchItemFailures"]
    to_failures = {"OnFailure": {"Type": "SQS",
                                 "Destination": {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}}}
    template = {
        "Globals": {"Function": {"Timeout": 10}},
        "Resources": {
            "StreamFailureQueue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "EmailQueue": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "CallsTable": table,
            "RestaurantsTable": table,
            "Sender": {
                "Type": "AWS::Serverless::Function",
                "Metadata": {"BuildProperties": {"Binary": "email-sender"}},
                "Properties": {"Timeout": 30, "Events": {
                    "Jobs": {"Type": "SQS", "Properties": {
                        "Queue": {"Fn::GetAtt": ["EmailQueue", "Arn"]},
                        "FunctionResponseTypes": partial}},
                    "Calls": {"Type": "DynamoDB", "Properties": {
                        "Stream": _stream("CallsTable"),
                        "StartingPosition": "TRIM_HORIZON",
                        "FunctionResponseTypes": partial,
                        "MaximumRetryAttempts": 100,
                        "DestinationConfig": to_failures,
                        "FilterCriteria": {"Filters": [{"Pattern": '{"eventName": ["INSERT"]}'}]},
                    }},
                }},
            },
            "Events": {
                "Type": "AWS::Serverless::Function",
                "Metadata": {"BuildProperties": {"Binary": "restaurant-events"}},
                "Properties": {"Events": {"S": {"Type": "DynamoDB", "Properties": {
                    "Stream": _stream("RestaurantsTable"),
                    "StartingPosition": "TRIM_HORIZON",
                    "FunctionResponseTypes": partial,
                    "DestinationConfig": to_failures,
                }}}},
            },
        },
    }
    monkeypatch.setenv("EVENT_SOURCE_TIME_SCALE", "0.2")
    monkeypatch.setenv("EVENT_SOURCE_STREAM_MAX_RETRIES", "3")
    by_name = {m["name"]: m for m in event_sources.mappings(template)}
    assert by_name["Sender.Jobs"]["timeout"] == pytest.approx(6.0)
    assert by_name["Sender.Jobs"]["retries"] == -1          # SQS: untouched
    calls = by_name["Sender.Calls"]
    assert (calls["retries"], calls["on_failure"], calls["function"]) == \
        (3, "StreamFailureQueue", "email-sender")
    assert event_sources.record_filter(calls)({"eventName": "INSERT"}) is True
    assert by_name["Events.S"]["timeout"] == pytest.approx(2.0)  # Globals' 10 s x 0.2
    assert by_name["Events.S"]["on_failure"] == "StreamFailureQueue"
    monkeypatch.delenv("EVENT_SOURCE_STREAM_MAX_RETRIES")
    monkeypatch.delenv("EVENT_SOURCE_TIME_SCALE")
    again = {m["name"]: m for m in event_sources.mappings(template)}
    assert (again["Sender.Calls"]["retries"], again["Sender.Calls"]["timeout"]) == (100, 30.0)
    assert again["Events.S"]["retries"] == -1


def test_the_real_template_maps_and_scales():
    template = local_stack.load_template()
    ms = event_sources.mappings(template)
    assert ms and all(m["timeout"] > 0 for m in ms)


# --- local_stack ------------------------------------------------------------------------------


def test_queue_visibility_scale():
    scaled = local_stack.scaled_visibility
    assert scaled({"VisibilityTimeout": 60}, 0.2) == {"VisibilityTimeout": 12}
    assert scaled({"VisibilityTimeout": 3}, 0.1) == {"VisibilityTimeout": 1}
    assert scaled({"MessageRetentionPeriod": 5}, 0.2) == {"MessageRetentionPeriod": 5}
    assert scaled({"VisibilityTimeout": 60}, 1.0) == {"VisibilityTimeout": 60}
