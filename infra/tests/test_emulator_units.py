"""Unit tests of the local emulator (no stack needed): what it reads from template.yaml and
what it refuses (local_stack.check_template, event_sources.mappings), the intrinsic resolver,
and the event sources' batch and partial-failure logic against in-memory fakes of SQS and
DynamoDB streams."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

INFRA = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(INFRA))
import event_sources  # noqa: E402
import local_stack  # noqa: E402

TemplateError = local_stack.TemplateError
PARTIAL = ["ReportBatchItemFailures"]


@pytest.fixture(scope="module")
def real() -> dict:
    return local_stack.load_template()


@pytest.fixture
def template(real) -> dict:
    return copy.deepcopy(real)


def event_props(template: dict, function: str, event: str) -> dict:
    return template["Resources"][function]["Properties"]["Events"][event]["Properties"]


def refused(template: dict) -> str:
    """Why the emulator refuses `template` (what its entry points check: load_and_check)."""
    with pytest.raises(TemplateError) as exc:
        local_stack.check_template(template, "T.yaml")
        event_sources.mappings(template, "T.yaml")
    message = str(exc.value)
    assert message.startswith("T.yaml: "), message
    return message


def test_the_entry_points_refuse_with_the_template_path(template, tmp_path):
    path = tmp_path / "template.yaml"
    for change in (lambda t: t["Resources"].update(B={"Type": "AWS::S3::Bucket"}),
                   lambda t: event_props(t, *STREAM).update(MaximumRecordAgeInSeconds=60)):
        broken = copy.deepcopy(template)
        change(broken)
        path.write_text(yaml.safe_dump(broken), encoding="utf-8")
        with pytest.raises(SystemExit) as exc:
            local_stack.load_and_check(path)
        assert str(exc.value).startswith(f"local emulator: {path}: "), exc.value
    # As run by infra/test.sh and dev.sh: a message and exit status 1, not a traceback.
    for script, extra in (("local_stack.py", []),
                          ("event_sources.py", ["--lambda-api", "http://127.0.0.1:9"])):
        out = subprocess.run([sys.executable, str(INFRA / script), "--template", str(path), *extra],
                             env={**os.environ, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
                             capture_output=True, text=True, timeout=60)
        assert (out.returncode, out.stderr.strip().splitlines()) == (1, [
            f"local emulator: {path}: Resources.EmailSenderFunction.Properties.Events."
            "CallCompletions.Properties: property MaximumRecordAgeInSeconds is not emulated "
            "locally (known: BatchSize, BisectBatchOnFunctionError, DestinationConfig, "
            "FilterCriteria, FunctionResponseTypes, MaximumBatchingWindowInSeconds, "
            "MaximumRetryAttempts, StartingPosition, Stream)"]), (script, out.stderr)


# --- what the real template maps to -----------------------------------------------------------


def test_the_real_template_loads_and_checks(real):
    local_stack.check_template(real)
    assert local_stack.load_and_check(local_stack.DEFAULT_TEMPLATE) == real


def test_the_real_template_mappings(real, monkeypatch):
    for name in ("EVENT_SOURCE_TIME_SCALE", "EVENT_SOURCE_STREAM_MAX_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    ms = {m["name"]: m for m in event_sources.mappings(real)}
    assert set(ms) == {"EmailSenderFunction.EmailJobs", "EmailSenderFunction.CallCompletions",
                       "RestaurantEventsFunction.RestaurantChanges",
                       "WebhookDispatcherFunction.Deliveries", "EmailEventsFunction.SesEvents"}
    sns = ms["EmailEventsFunction.SesEvents"]
    assert (sns["kind"], sns["source"], sns["function"], sns["retries"]) == \
        ("SNS", "EmailEventsTopic", "email-events", 2)
    jobs, hooks = ms["EmailSenderFunction.EmailJobs"], ms["WebhookDispatcherFunction.Deliveries"]
    assert (jobs["kind"], jobs["source"], jobs["function"], jobs["batch"], jobs["timeout"]) == \
        ("SQS", "EmailQueue", "email-sender", 10, 30.0)
    assert (hooks["source"], hooks["function"], hooks["batch"]) == \
        ("WebhookQueue", "webhook-dispatcher", 10)
    calls = ms["EmailSenderFunction.CallCompletions"]
    changes = ms["RestaurantEventsFunction.RestaurantChanges"]
    for m, table, function, timeout in ((calls, "CallsTable", "email-sender", 30.0),
                                        (changes, "RestaurantsTable", "restaurant-events", 60.0)):
        assert (m["kind"], m["source"], m["function"], m["timeout"]) == \
            ("DynamoDB", table, function, timeout)
        assert (m["batch"], m["retries"], m["bisect"], m["on_failure"]) == \
            (100, 100, True, "StreamFailureQueue")
    assert changes["filters"] == [] and event_sources.record_filter(changes) is None
    assert calls["filters"] == [json.loads(event_props(
        real, "EmailSenderFunction", "CallCompletions")["FilterCriteria"]["Filters"][0]["Pattern"])]


def completion(new_email: str | None, old_status: str, name: str = "MODIFY") -> dict:
    new = {"callId": {"S": "c1"}, "status": {"S": "completed"}}
    if new_email:
        new["email"] = {"M": {"status": {"S": new_email}}}
    return {"eventName": name, "dynamodb": {"NewImage": new,
                                            "OldImage": {"status": {"S": old_status}}}}


def test_the_call_completion_filter_passes_only_completions_with_an_email(real):
    keep = event_sources.record_filter(
        {m["name"]: m for m in event_sources.mappings(real)}["EmailSenderFunction.CallCompletions"])
    assert keep(completion("sending", "in_progress")) is True
    assert keep(completion("sent", "in_progress")) is False          # e-mail already sent
    assert keep(completion(None, "in_progress")) is False            # no e-mail to send
    assert keep(completion("sending", "completed")) is False         # not the completion write
    assert keep(completion("sending", "in_progress", "INSERT")) is False
    record = completion("sending", "in_progress")
    del record["dynamodb"]["OldImage"]
    assert keep(record) is False


def test_stream_retries_can_be_overridden_and_timeouts_scaled(real, monkeypatch):
    monkeypatch.setenv("EVENT_SOURCE_STREAM_MAX_RETRIES", "3")
    monkeypatch.setenv("EVENT_SOURCE_TIME_SCALE", "0.2")
    ms = {m["name"]: m for m in event_sources.mappings(real)}
    assert ms["RestaurantEventsFunction.RestaurantChanges"]["retries"] == 3
    assert ms["RestaurantEventsFunction.RestaurantChanges"]["timeout"] == pytest.approx(12.0)
    assert ms["EmailSenderFunction.EmailJobs"]["retries"] == -1
    assert ms["EmailSenderFunction.EmailJobs"]["timeout"] == pytest.approx(6.0)


# --- loud failures: what the template doesn't use is refused at load time ---------------------

STREAM = ("EmailSenderFunction", "CallCompletions")
SQS = ("WebhookDispatcherFunction", "Deliveries")


def _set(t, where, key, value):
    event_props(t, *where)[key] = value


def _pattern(rule):
    return {"Filters": [{"Pattern": json.dumps({"dynamodb": {"NewImage": {"x": {"S": rule}}}})}]}


EVENT_CHANGES = {
    "stream MaximumRecordAgeInSeconds": (STREAM, "MaximumRecordAgeInSeconds", 60),
    "stream MaximumBatchingWindowInSeconds 301": (STREAM, "MaximumBatchingWindowInSeconds", 301),
    "stream ParallelizationFactor": (STREAM, "ParallelizationFactor", 2),
    "stream TumblingWindowInSeconds": (STREAM, "TumblingWindowInSeconds", 60),
    "stream StartingPosition LATEST": (STREAM, "StartingPosition", "LATEST"),
    "stream BatchSize 0": (STREAM, "BatchSize", 0),
    "stream retries beyond Lambda's": (STREAM, "MaximumRetryAttempts", 10001),
    "stream bisect as a string": (STREAM, "BisectBatchOnFunctionError", "yes"),
    "stream destination as Ref": (STREAM, "DestinationConfig", {"OnFailure": {
        "Type": "SQS", "Destination": {"Ref": "StreamFailureQueue"}}}),
    "stream destination SNS": (STREAM, "DestinationConfig", {"OnFailure": {
        "Type": "SNS", "Destination": {"Ref": "AlarmTopic"}}}),
    "stream destination an ARN": (STREAM, "DestinationConfig", {"OnFailure": {
        "Type": "SQS", "Destination": "arn:aws:sqs:us-east-1:123456789012:elsewhere"}}),
    "stream destination not a queue": (STREAM, "DestinationConfig", {"OnFailure": {
        "Type": "SQS", "Destination": {"Fn::GetAtt": ["CallsTable", "Arn"]}}}),
    "stream without ReportBatchItemFailures": (STREAM, "FunctionResponseTypes", []),
    "stream of a table without a stream": (STREAM, "Stream",
                                          {"Fn::GetAtt": ["ApiKeysTable", "StreamArn"]}),
    "filter exists": (STREAM, "FilterCriteria", _pattern([{"exists": False}])),
    "filter prefix": (STREAM, "FilterCriteria", _pattern([{"prefix": "a"}])),
    "filter anything-but": (STREAM, "FilterCriteria", _pattern([{"anything-but": ["a"]}])),
    "filter numeric": (STREAM, "FilterCriteria", _pattern([{"numeric": [">", 1]}])),
    "filter number value": (STREAM, "FilterCriteria", _pattern([1])),
    "filter null value": (STREAM, "FilterCriteria", _pattern([None])),
    "filter $or": (STREAM, "FilterCriteria", {"Filters": [{"Pattern": json.dumps(
        {"$or": [{"eventName": ["INSERT"]}, {"eventName": ["MODIFY"]}]})}]}),
    "filter not JSON": (STREAM, "FilterCriteria", {"Filters": [{"Pattern": "{eventName"}]}),
    "SQS BatchSize over 10": (SQS, "BatchSize", 11),
    "SQS MaximumBatchingWindowInSeconds": (SQS, "MaximumBatchingWindowInSeconds", 1),
    "SQS ScalingConfig beyond MaximumConcurrency": (SQS, "ScalingConfig",
                                                    {"MaximumConcurrency": 2, "Other": 1}),
    "SQS FilterCriteria": (SQS, "FilterCriteria", _pattern(["a"])),
    "SQS Enabled": (SQS, "Enabled", False),
    "SQS without ReportBatchItemFailures": (SQS, "FunctionResponseTypes", None),
    "SQS queue as Ref": (SQS, "Queue", {"Ref": "WebhookQueue"}),
}


@pytest.mark.parametrize("change", EVENT_CHANGES.values(), ids=list(EVENT_CHANGES))
def test_unsupported_event_source_settings_are_refused(template, change):
    where, key, value = change
    _set(template, where, key, value)
    message = refused(template)
    assert f"Resources.{where[0]}.Properties.Events.{where[1]}.Properties" in message, message


def _resource(t, lid, props=None, rtype=None):
    if rtype:
        t["Resources"][lid] = {"Type": rtype, "Properties": props or {}}
    else:
        t["Resources"][lid]["Properties"].update(props)


TEMPLATE_CHANGES = {
    "resource type": (lambda t: _resource(t, "Bucket", {}, "AWS::S3::Bucket"), "AWS::S3::Bucket"),
    "FIFO queue": (lambda t: _resource(t, "EmailQueue", {"FifoQueue": True}), "FifoQueue"),
    "queue DelaySeconds": (lambda t: _resource(t, "EmailQueue", {"DelaySeconds": 5}),
                           "DelaySeconds"),
    "queue RedrivePolicy as JSON text": (
        lambda t: _resource(t, "EmailQueue", {"RedrivePolicy": "{}"}), "RedrivePolicy"),
    "provisioned table": (lambda t: _resource(t, "CallsTable", {"BillingMode": "PROVISIONED"}),
                          "BillingMode"),
    "local index": (lambda t: _resource(t, "CallsTable", {"LocalSecondaryIndexes": []}),
                    "LocalSecondaryIndexes"),
    "table name": (lambda t: _resource(t, "CallsTable", {"TableName": "calls"}), "TableName"),
    "function environment other than Variables": (
        lambda t: _resource(t, "CallsFunction", {"Environment": {"KmsKeyArn": "x"}}),
        "Resources.CallsFunction.Properties.Environment"),
    "secret with a value in the template": (
        lambda t: _resource(t, "AdminTokenSecret", {"SecretString": "x"}), "SecretString"),
    "secret without a generated value": (
        lambda t: t["Resources"]["AdminTokenSecret"]["Properties"].pop("GenerateSecretString"),
        "GenerateSecretString"),
    "generated secret from a template": (
        lambda t: t["Resources"]["AdminTokenSecret"]["Properties"]["GenerateSecretString"]
        .update(SecretStringTemplate="{}"), "SecretStringTemplate"),
    "reserved concurrency": (
        lambda t: _resource(t, "EmailSenderFunction", {"ReservedConcurrentExecutions": 1}),
        "ReservedConcurrentExecutions"),
    "schedule event": (lambda t: t["Resources"]["CallsFunction"]["Properties"]["Events"].update(
        Nightly={"Type": "Schedule", "Properties": {"Schedule": "rate(1 day)"}}), "Schedule"),
    "HTTP event auth": (lambda t: event_props(t, "CallsFunction", "GetCall").update(
        Auth={"Authorizer": "NONE"}), "Auth"),
    "Conditions": (lambda t: t.update(Conditions={"IsProd": {"Fn::Equals": ["a", "b"]}}),
                   "Conditions"),
    "Mappings": (lambda t: t.update(Mappings={"M": {"a": {"b": "c"}}}), "Mappings"),
    "resource Condition": (lambda t: t["Resources"]["CallsTable"].update(Condition="IsProd"),
                           "Condition"),
    "Fn::If": (lambda t: _resource(t, "EmailQueue", {"VisibilityTimeout": {
        "Fn::If": ["IsProd", 60, 30]}}), "Fn::If"),
    "Fn::Join": (lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update(
        X={"Fn::Join": ["-", ["a", "b"]]}), "Fn::Join"),
    "Fn::Sub with variables": (lambda t: t["Globals"]["Function"]["Environment"]["Variables"]
                               .update(X={"Fn::Sub": ["${A}", {"A": "b"}]}), "string form"),
    "Fn::Sub literal": (lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update(
        X={"Fn::Sub": "${!Literal}"}), "${!Literal}"),
    "AWS::NoValue": (lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update(
        X={"Ref": "AWS::NoValue"}), "AWS::NoValue"),
    "AWS::StackId in Sub": (lambda t: t["Globals"]["Function"]["Environment"]["Variables"]
                            .update(X={"Fn::Sub": "${AWS::StackId}-x"}), "AWS::StackId"),
    "Ref to nothing": (lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update(
        X={"Ref": "Nowhere"}), "Nowhere"),
    "GetAtt of an attribute not emulated": (
        lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update(
            X={"Fn::GetAtt": ["EmailQueue", "QueueUrl"]}), "EmailQueue.QueueUrl"),
    "GetAtt of a resource not emulated": (
        lambda t: t["Globals"]["Function"]["Environment"]["Variables"].update(
            X={"Fn::GetAtt": ["AlarmTopic", "TopicName"]}), "AlarmTopic.TopicName"),
    "parameter list type": (lambda t: t["Parameters"]["Stage"].update(
        Type="CommaDelimitedList"), "Parameters.Stage.Type"),
    "Globals Api": (lambda t: t["Globals"].update(Api={"Cors": "*"}), "Globals"),
    "Globals Function Layers": (lambda t: t["Globals"]["Function"].update(Layers=["x"]), "Layers"),
}


@pytest.mark.parametrize("change, named", TEMPLATE_CHANGES.values(), ids=list(TEMPLATE_CHANGES))
def test_unsupported_template_features_are_refused(template, change, named):
    change(template)
    message = refused(template)
    assert named in message and ("emulated" in message or "names no" in message), message


@pytest.mark.parametrize("tag", ["!If [IsProd, a, b]", "!Join ['-', [a, b]]", "!Select [0, [a]]",
                                 "!FindInMap [M, a, b]", "!ImportValue Shared"])
def test_unsupported_short_tags_are_refused_with_the_file_and_line(tmp_path, tag):
    path = tmp_path / "t.yaml"
    path.write_text(f"Resources:\n  Q:\n    Type: AWS::SQS::Queue\n"
                    f"    Properties:\n      VisibilityTimeout: {tag}\n", encoding="utf-8")
    with pytest.raises(TemplateError) as exc:
        local_stack.load_template(path)
    message = str(exc.value)
    assert str(path) in message and "line 5" in message and "not emulated" in message, message


def test_a_template_that_only_uses_what_is_emulated_is_accepted(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("""\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev}
Globals:
  Function:
    Timeout: 5
    Environment:
      Variables:
        QUEUE: !Ref Jobs
        ARN: !GetAtt Jobs.Arn
        NAME: !Sub "${Stage}-${Jobs.QueueName}-${AWS::Region}"
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties: {VisibilityTimeout: 30}
  Worker:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile, BuildProperties: {Binary: worker}}
    Properties:
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 3
            FunctionResponseTypes: [ReportBatchItemFailures]
""", encoding="utf-8")
    template = local_stack.load_and_check(path)
    (m,) = event_sources.mappings(template)
    assert (m["source"], m["function"], m["batch"], m["timeout"]) == ("Jobs", "worker", 3, 5.0)


# --- intrinsics -------------------------------------------------------------------------------


@pytest.fixture
def resolver(real) -> local_stack.Resolver:
    r = local_stack.Resolver(real, {"Stage": "local"},
                             "eu-west-1", "111122223333")
    r.resources["CallsTable"] = {"Ref": "pulsara-CallsTable", "Arn": "arn:calls",
                                 "StreamArn": "arn:calls/stream/1"}
    r.resources["EmailQueue"] = {"Ref": "http://q/EmailQueue", "Arn": "arn:q:EmailQueue",
                                 "QueueName": "pulsara-EmailQueue"}
    return r


def test_ref_resolves_parameters_resources_and_pseudo_parameters(resolver):
    assert resolver.resolve({"Ref": "Stage"}) == "local"                  # --param
    assert resolver.resolve({"Ref": "WebhookAllowLoopbackHttp"}) == "false"  # Default
    # A required parameter (no Default) takes its local value.
    assert resolver.resolve({"Ref": "SenderEmail"}) == \
        local_stack.LOCAL_PARAMETERS["SenderEmail"] == "notifications@pulsara.example"
    assert resolver.resolve({"Ref": "CallsTable"}) == "pulsara-CallsTable"
    assert resolver.resolve({"Ref": "EmailQueue"}) == "http://q/EmailQueue"
    assert [resolver.resolve({"Ref": p}) for p in local_stack.PSEUDO_PARAMETERS] == \
        ["eu-west-1", "111122223333", "aws", "amazonaws.com", local_stack.LOCAL_STACK_NAME]


def test_getatt_and_sub(resolver):
    assert resolver.resolve({"Fn::GetAtt": ["CallsTable", "StreamArn"]}) == "arn:calls/stream/1"
    assert resolver.resolve({"Fn::GetAtt": ["EmailQueue", "QueueName"]}) == "pulsara-EmailQueue"
    assert resolver.resolve({"Fn::Sub": "${CallsTable.Arn}/index/*"}) == "arn:calls/index/*"
    assert resolver.resolve({"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:"
                                        "${AWS::AccountId}:identity/${Stage}"}) == \
        "arn:aws:ses:eu-west-1:111122223333:identity/local"
    nested = {"deadLetterTargetArn": {"Fn::GetAtt": ["EmailQueue", "Arn"]},
              "list": [{"Ref": "Stage"}, 3], "maxReceiveCount": 5}
    assert resolver.resolve(nested) == {"deadLetterTargetArn": "arn:q:EmailQueue",
                                        "list": ["local", 3], "maxReceiveCount": 5}


@pytest.mark.parametrize("value, message", [
    ({"Fn::Join": ["-", ["a", "b"]]}, "Fn::Join is not emulated"),
    ({"Fn::If": ["C", "a", "b"]}, "Fn::If is not emulated"),
    ({"Fn::Sub": ["${A}", {"A": "b"}]}, "only the string form"),
    ({"Fn::Sub": "${!Literal}"}, "literal"),
    ({"Ref": "AWS::NoValue"}, "cannot resolve Ref AWS::NoValue"),
    ({"Ref": "WebhookQueue"}, "cannot resolve Ref WebhookQueue"),       # not created yet
    ({"Fn::GetAtt": ["CallsTable", "Foo"]}, "cannot resolve GetAtt CallsTable.Foo"),
])
def test_the_resolver_refuses_what_it_does_not_resolve(resolver, value, message):
    with pytest.raises(KeyError, match=message.replace("*", r"\*")):
        resolver.resolve(value)


def test_a_parameter_without_default_must_be_passed(template):
    template["Parameters"]["Needed"] = {"Type": "String"}
    template["Resources"]["CallsFunction"]["Properties"]["Environment"] = {
        "Variables": {"NEEDED": {"Ref": "Needed"}}}
    r = local_stack.Resolver(template, {}, "us-east-1", "123456789012")
    with pytest.raises(KeyError, match="pass --param Needed=VALUE"):
        r.resolve({"Ref": "Needed"})
    assert "Needed" in local_stack._referenced_params(template), "a function's own variables"


def test_each_function_gets_its_own_variables(real, resolver):
    resolver.resources["AdminTokenSecret"] = {"Ref": "arn:secret"}
    resolver.resources["SecretsKey"] = {"Ref": "k", "KeyId": "k", "Arn": "arn:key"}
    own = local_stack.own_environments(real, resolver)
    assert {b for b, env in own.items() if "ADMIN_TOKEN_SECRET_ARN" in env} == {
        "auth-login", "create-api-key", "api-keys", "restaurants", "calls"}
    assert own["auth-login"]["ADMIN_TOKEN_SECRET_ARN"] == "arn:secret"
    assert own["webhook-dispatcher"] == {"SECRETS_KMS_KEY_ARN": "arn:key"}


def test_generated_secrets_follow_the_template():
    value = local_stack.generated_secret({"PasswordLength": 64, "ExcludePunctuation": True})
    assert len(value) == 64 and value.isalnum()
    assert local_stack.generated_secret({"PasswordLength": 64}) != value


def test_the_function_environment_is_the_globals_resolved(real, resolver):
    for lid in local_stack.resources_of_type(real, "AWS::SQS::Queue"):
        resolver.resources[lid] = {"Ref": f"http://q/{lid}", "Arn": f"arn:{lid}",
                                   "QueueName": lid}
    for lid in local_stack.resources_of_type(real, "AWS::DynamoDB::Table"):
        resolver.resources.setdefault(lid, {"Ref": f"pulsara-{lid}"})
    for lid in local_stack.resources_of_type(real, "AWS::SES::ConfigurationSet"):
        resolver.resources[lid] = {"Ref": f"set-{lid}"}
    env = local_stack.function_environment(real, resolver)
    assert set(env) == set(real["Globals"]["Function"]["Environment"]["Variables"])
    assert env["SES_CONFIGURATION_SET"] == "set-EmailConfigurationSet"
    assert (env["SENDER_DOMAIN"], env["SENDER_EMAIL"]) == ("pulsara.example",
                                                           "notifications@pulsara.example")
    assert env["EMAIL_QUEUE_URL"] == "http://q/EmailQueue"
    assert env["CALLS_TABLE"] == "pulsara-CallsTable"
    assert (env["PULSARA_STAGE"], env["EMAIL_MAX_ATTEMPTS"]) == ("local", "6")  # numbers as text


def test_queue_attributes(resolver, real):
    resolver.resources["EmailDeadLetterQueue"] = {"Ref": "u", "Arn": "arn:dlq", "QueueName": "d"}
    props = resolver.resolve(real["Resources"]["EmailQueue"]["Properties"])
    attrs = local_stack.queue_attributes(local_stack.scaled_visibility(props, 0.2))
    assert attrs == {"VisibilityTimeout": "12", "MessageRetentionPeriod": "1209600",
                     "SqsManagedSseEnabled": "true",
                     "RedrivePolicy": json.dumps({"deadLetterTargetArn": "arn:dlq",
                                                  "maxReceiveCount": 50})}


# --- partial batch responses ------------------------------------------------------------------

IDS = ["a", "b", "c"]


@pytest.mark.parametrize("ok, answer, retried", [
    (True, None, set()),                                          # empty answer
    (True, {}, set()),
    (True, {"batchItemFailures": []}, set()),
    (True, {"batchItemFailures": None}, set()),
    (True, {"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
    (True, {"batchItemFailures": [{"itemIdentifier": "c"}, {"itemIdentifier": "a"}]}, {"a", "c"}),
    (False, None, set(IDS)),                                      # function error / timeout
    (True, event_sources.INVALID, set(IDS)),                      # not JSON
    (True, ["b"], set(IDS)),                                      # not an object
    (True, "b", set(IDS)),
    (True, {"batchItemFailures": "b"}, set(IDS)),                 # not a list
    (True, {"batchItemFailures": [{"itemIdentifier": "z"}]}, set(IDS)),   # not in the batch
    (True, {"batchItemFailures": [{"itemIdentifier": ""}]}, set(IDS)),
    (True, {"batchItemFailures": [{"itemIdentifier": None}]}, set(IDS)),
    (True, {"batchItemFailures": [{"itemId": "b"}]}, set(IDS)),   # bad key name
    (True, {"batchItemFailures": [{"itemIdentifier": "b"}, "c"]}, set(IDS)),
])
def test_reported_failures(ok, answer, retried):
    assert event_sources.reported_failures(ok, answer, IDS) == retried


# --- SQS --------------------------------------------------------------------------------------


class FakeQueue:
    """An SQS queue: received messages are in flight until deleted or `expire()` (their
    visibility timeout) makes them visible again."""

    def __init__(self, n: int):
        self.visible = [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": f"body {i}",
                         "Attributes": {"ApproximateReceiveCount": "1"}} for i in range(n)]
        self.in_flight: dict[str, dict] = {}
        self.deleted: list[str] = []
        self.asked: list[int] = []

    def receive_message(self, QueueUrl, MaxNumberOfMessages, **kw):  # noqa: N803 - boto3's names
        self.asked.append(MaxNumberOfMessages)
        got, self.visible = self.visible[:MaxNumberOfMessages], self.visible[MaxNumberOfMessages:]
        self.in_flight.update({m["ReceiptHandle"]: m for m in got})
        return {"Messages": got} if got else {}

    def delete_message_batch(self, QueueUrl, Entries):  # noqa: N803
        assert len(Entries) <= 10 and len({e["Id"] for e in Entries}) == len(Entries)
        for e in Entries:
            self.deleted.append(self.in_flight.pop(e["ReceiptHandle"])["MessageId"])

    def expire(self):
        self.visible += self.in_flight.values()
        self.in_flight = {}


SQS_MAPPING = {"function": "f", "batch": 3, "kind": "SQS"}


def sqs_round(queue: FakeQueue, answer) -> list[list[str]]:
    events = []

    def call(event):
        events.append(event)
        return answer(event) if callable(answer) else answer

    event_sources.sqs_round(queue, "url", "arn:q", "eu-west-1", SQS_MAPPING, call)
    return [[r["messageId"] for r in e["Records"]] for e in events]


def test_sqs_batches_by_batch_size():
    queue = FakeQueue(7)
    seen = [sqs_round(queue, (True, None)) for _ in range(4)]
    assert seen == [[["m0", "m1", "m2"]], [["m3", "m4", "m5"]], [["m6"]], []]
    assert queue.asked == [3, 3, 3, 3] and queue.deleted == [f"m{i}" for i in range(7)]


def test_sqs_event_shape():
    queue = FakeQueue(1)
    events = []
    event_sources.sqs_round(queue, "url", "arn:q", "eu-west-1", SQS_MAPPING,
                            lambda e: (events.append(e), (True, None))[1])
    (record,) = events[0]["Records"]
    assert record == {"messageId": "m0", "receiptHandle": "r0", "body": "body 0",
                      "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                      "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:q",
                      "awsRegion": "eu-west-1"}


def test_sqs_failed_messages_come_back_and_the_rest_are_deleted():
    queue = FakeQueue(3)
    assert sqs_round(queue, (True, {"batchItemFailures": [{"itemIdentifier": "m1"}]})) == \
        [["m0", "m1", "m2"]]
    assert queue.deleted == ["m0", "m2"] and list(queue.in_flight) == ["r1"]
    assert sqs_round(queue, (True, None)) == []          # in flight until its visibility timeout
    queue.expire()
    assert sqs_round(queue, (True, None)) == [["m1"]]
    assert queue.deleted == ["m0", "m2", "m1"]


@pytest.mark.parametrize("answer", [
    (False, None),
    (True, event_sources.INVALID),
    (True, {"batchItemFailures": [{"itemIdentifier": "elsewhere"}]}),
    (True, {"batchItemFailures": [{"itemIdentifier": ""}]}),
], ids=["function error", "not JSON", "unknown id", "empty id"])
def test_sqs_whole_batch_failures_delete_nothing(answer):
    queue = FakeQueue(2)
    sqs_round(queue, answer)
    assert queue.deleted == [] and set(queue.in_flight) == {"r0", "r1"}
    queue.expire()
    assert sqs_round(queue, (True, {"batchItemFailures": []})) == [["m0", "m1"]]
    assert queue.deleted == ["m0", "m1"]


# --- DynamoDB streams -------------------------------------------------------------------------


class FakeStreams:
    """One table's stream with one open shard, as boto3's dynamodb/dynamodbstreams clients
    (and the sqs client for the on-failure destination) answer."""

    ARN = "arn:aws:dynamodb:eu-west-1:123456789012:table/pulsara-T/stream/1"

    def __init__(self, records: list[dict]):
        self.records = records
        self.sent: list[dict] = []
        self.queues_asked: list[str] = []

    # dynamodb
    def describe_table(self, TableName):  # noqa: N803
        assert TableName == "pulsara-T"
        return {"Table": {"LatestStreamArn": self.ARN}}

    # dynamodbstreams
    def describe_stream(self, StreamArn, **kw):  # noqa: N803
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, StreamArn, ShardId, ShardIteratorType, SequenceNumber=None):  # noqa: N803
        if ShardIteratorType == "TRIM_HORIZON":
            return {"ShardIterator": "0"}
        assert ShardIteratorType == "AFTER_SEQUENCE_NUMBER"
        index = [r["dynamodb"]["SequenceNumber"] for r in self.records].index(SequenceNumber)
        return {"ShardIterator": str(index + 1)}

    def get_records(self, ShardIterator, Limit):  # noqa: N803
        at = int(ShardIterator)
        got = self.records[at:at + Limit]
        return {"Records": got, "NextShardIterator": str(at + len(got))}

    # sqs
    def get_queue_url(self, QueueName):  # noqa: N803
        self.queues_asked.append(QueueName)
        return {"QueueUrl": f"http://q/{QueueName}"}

    def send_message(self, QueueUrl, MessageBody):  # noqa: N803
        self.sent.append({"queue": QueueUrl, **json.loads(MessageBody)})


def stream_record(seq: int, name: str = "MODIFY") -> dict:
    return {"eventID": f"e{seq}", "eventName": name, "dynamodb": {
        "ApproximateCreationDateTime": datetime(2026, 1, 1, 12, 0, seq, tzinfo=UTC),
        "Keys": {"id": {"S": f"k{seq}"}}, "NewImage": {"id": {"S": f"k{seq}"}, "b": {"B": b"\x01"}},
        "SequenceNumber": f"{seq:03d}", "SizeBytes": 10, "StreamViewType": "NEW_AND_OLD_IMAGES"}}


def stream_mapping(**kw) -> dict:
    return {"kind": "DynamoDB", "function": "fn", "name": "Fn.S", "timeout": 1.0, "source": "T",
            "batch": 100, "retries": -1, "bisect": False, "on_failure": "Failures",
            "filters": [], **kw}


def run_stream(n: int, answer, steps: int = 50, **kw) -> tuple[list[list[int]], FakeStreams]:
    """Feed records 1..n through a StreamPoller whose function answers `answer(seqs)`;
    returns the batches (as sequence numbers) it was invoked with, and the fake."""
    fake = FakeStreams([stream_record(i) for i in range(1, n + 1)])
    batches: list[list[int]] = []

    def call(event):
        seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in event["Records"]]
        batches.append(seqs)
        return answer(seqs)

    poller = event_sources.StreamPoller(fake, fake, fake, stream_mapping(**kw), "pulsara-",
                                        "eu-west-1", call)
    poller.retry_delay = 0.0
    for _ in range(steps):
        poller.step()
    return batches, fake


def ok(seqs):
    return True, None


def fails(*bad: int):
    """A function that reports the records `bad` as failed (ReportBatchItemFailures)."""
    def answer(seqs):
        return True, {"batchItemFailures": [{"itemIdentifier": f"{s:03d}"} for s in seqs
                                            if s in bad]}
    return answer


def errors_on(*bad: int):
    """A function that fails with an error (or times out) on a batch holding any of `bad`."""
    return lambda seqs: (False, None) if set(seqs) & set(bad) else (True, None)


def test_stream_records_wait_for_the_batching_window_unless_the_batch_is_full():
    def poller_for(n: int, **kw):
        fake = FakeStreams([stream_record(i) for i in range(1, n + 1)])
        sizes: list[int] = []

        def call(event):
            sizes.append(len(event["Records"]))
            return True, None

        return event_sources.StreamPoller(fake, fake, fake, stream_mapping(**kw), "pulsara-",
                                          "eu-west-1", call), sizes

    poller, sizes = poller_for(2, window=0.3)
    poller.step()
    assert sizes == [], "held for the window"
    time.sleep(0.35)
    poller.step()
    assert sizes == [2]
    full, sizes = poller_for(2, batch=2, window=60)
    full.step()
    assert sizes == [2], "a full batch goes at once"


def test_stream_records_are_sent_in_order_in_batches_of_batch_size():
    batches, fake = run_stream(5, ok, batch=2)
    assert batches == [[1, 2], [3, 4], [5]]
    assert fake.sent == []


def test_stream_event_records_are_lambdas_shape():
    fake = FakeStreams([stream_record(7)])
    events = []
    poller = event_sources.StreamPoller(fake, fake, fake, stream_mapping(), "pulsara-",
                                        "eu-west-1", lambda e: (events.append(e), (True, None))[1])
    poller.step()
    (record,) = events[0]["Records"]
    assert record["eventSourceARN"] == FakeStreams.ARN and record["eventSource"] == "aws:dynamodb"
    assert record["dynamodb"]["ApproximateCreationDateTime"] == \
        datetime(2026, 1, 1, 12, 0, 7, tzinfo=UTC).timestamp()
    assert record["dynamodb"]["NewImage"]["b"] == {"B": "AQ=="}          # binary as base64
    assert (record["eventName"], record["awsRegion"]) == ("MODIFY", "eu-west-1")


def test_stream_partial_failure_checkpoints_at_the_first_failed_record():
    seen = {}

    def answer(seqs):  # 3 and 5 fail once each, reported out of order
        bad = [s for s in (5, 3) if s in seqs and not seen.get(s)]
        seen.update(dict.fromkeys(bad, True))
        return True, {"batchItemFailures": [{"itemIdentifier": f"{s:03d}"} for s in bad]}

    batches, fake = run_stream(6, answer)
    assert batches == [[1, 2, 3, 4, 5, 6], [3, 4, 5, 6]]   # retried from 3, nothing before it
    assert fake.sent == []


def test_stream_whole_batch_failures_retry_from_the_start():
    answers = iter([(True, {"batchItemFailures": [{"itemIdentifier": "999"}]}),
                    (True, event_sources.INVALID), (False, None), (True, None)])
    batches, _ = run_stream(3, lambda seqs: next(answers))
    assert batches == [[1, 2, 3]] * 4


def test_stream_records_failing_every_retry_go_to_the_on_failure_queue():
    batches, fake = run_stream(4, fails(2), retries=2)
    # 1 passes; 2..4 are sent three times (the first try and two retries), then discarded.
    assert batches == [[1, 2, 3, 4], [2, 3, 4], [2, 3, 4]]
    (record,) = fake.sent
    assert record["queue"] == "http://q/pulsara-Failures"
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["functionArn"] == \
        "arn:aws:lambda:eu-west-1:123456789012:function:fn"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    info = record["DDBStreamBatchInfo"]
    assert (info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"]) == \
        ("shard-1", "002", "004")
    assert (info["batchSize"], info["streamArn"]) == (3, FakeStreams.ARN)
    assert (info["approximateArrivalOfFirstRecord"], info["approximateArrivalOfLastRecord"]) == \
        ("2026-01-01T12:00:02Z", "2026-01-01T12:00:04Z")


def test_stream_progress_resets_the_retry_count():
    calls = {"n": 0}

    def answer(seqs):  # every batch fails at its second record the first time it is seen
        calls["n"] += 1
        return fails(seqs[1])(seqs) if calls["n"] <= 3 and len(seqs) > 1 else (True, None)

    batches, fake = run_stream(4, answer, retries=1)
    assert batches == [[1, 2, 3, 4], [2, 3, 4], [3, 4], [4]]
    assert fake.sent == []                         # never two failures in a row at one record


def test_stream_function_errors_bisect_the_batch_without_using_retries():
    batches, fake = run_stream(4, errors_on(3), retries=1, bisect=True)
    assert batches == [[1, 2, 3, 4], [1, 2], [3, 4], [3], [3], [4]]
    (record,) = fake.sent
    info = record["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == \
        ("003", "003", 1)
    assert record["requestContext"]["approximateInvokeCount"] == 2


def test_stream_function_errors_without_bisect_retry_the_whole_batch():
    batches, fake = run_stream(3, errors_on(2), retries=1)
    assert batches == [[1, 2, 3], [1, 2, 3]]
    assert fake.sent[0]["DDBStreamBatchInfo"]["batchSize"] == 3


def test_stream_retries_unlimited_by_default():
    batches, fake = run_stream(2, errors_on(1), steps=30)
    assert batches == [[1, 2]] * 30 and fake.sent == []


def test_stream_without_destination_drops_the_records_after_the_retries():
    batches, fake = run_stream(2, errors_on(1), retries=0, on_failure=None)
    assert batches == [[1, 2]]
    assert fake.sent == [] and fake.queues_asked == []


def test_stream_filters_drop_records_before_the_function():
    pattern = [{"eventName": ["INSERT"]}]
    fake = FakeStreams([stream_record(1, "INSERT"), stream_record(2), stream_record(3, "INSERT")])
    batches = []
    poller = event_sources.StreamPoller(
        fake, fake, fake, stream_mapping(filters=pattern), "pulsara-", "eu-west-1",
        lambda e: (batches.append([r["eventID"] for r in e["Records"]]), (True, None))[1])
    for _ in range(3):
        poller.step()
    assert batches == [["e1", "e3"]]


def test_stream_reads_on_after_the_last_record_when_more_arrive():
    fake = FakeStreams([stream_record(1)])
    batches = []
    poller = event_sources.StreamPoller(
        fake, fake, fake, stream_mapping(), "pulsara-", "eu-west-1",
        lambda e: (batches.append([r["eventID"] for r in e["Records"]]), (True, None))[1])
    for _ in range(3):
        poller.step()
    fake.records.append(stream_record(2))
    for _ in range(3):
        poller.step()
    assert batches == [["e1"], ["e2"]]


# --- invoking ---------------------------------------------------------------------------------


class _Function(BaseHTTPRequestHandler):
    answers: dict[str, tuple[dict, bytes]] = {
        "ok": ({}, b'{"batchItemFailures": [{"itemIdentifier": "x"}]}'),
        "empty": ({}, b""),
        "garbage": ({}, b"not json"),
        "error": ({"X-Amz-Function-Error": "Unhandled"}, b'{"errorMessage": "boom"}'),
    }

    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers["content-length"]))
        name = self.path.split("/")[3]
        if name == "slow":
            threading.Event().wait(2)
        headers, body = self.answers.get(name, ({}, b""))
        self.send_response(200)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def lambda_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Function)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("function, outcome", [
    ("ok", (True, {"batchItemFailures": [{"itemIdentifier": "x"}]})),
    ("empty", (True, None)),
    ("garbage", (True, event_sources.INVALID)),
    ("error", (False, None)),
    ("slow", (False, None)),                       # no answer within the timeout
])
def test_invoke_outcomes(lambda_api, monkeypatch, function, outcome):
    monkeypatch.setattr(event_sources._warmth, "grace", 0.0)
    assert event_sources.invoke(lambda_api, function, {"Records": []}, timeout=0.5) == outcome


def test_invoking_nothing_is_a_failed_invocation(monkeypatch):
    monkeypatch.setattr(event_sources._warmth, "grace", 0.0)
    assert event_sources.invoke("http://127.0.0.1:9", "f", {}, timeout=0.5) == (False, None)


# --- SES event publishing (mailbox simulator) -------------------------------------------------


def _feedback(real):
    r = local_stack.Resolver(real, {}, "us-east-1", local_stack.DEFAULT_ACCOUNT)
    dests = event_sources.event_destinations(real, r)
    subs = [m for m in event_sources.mappings(real) if m["kind"] == "SNS"]
    return dests, event_sources.SesFeedback("http://unused", dests, subs, "pulsara-",
                                            "us-east-1", lambda m, e: (True, None))


def _sent(to, config_set="pulsara-local-email", tags=None):
    return {"id": "m-1", "source": "notifications@pulsara.example",
            "destinations": {"ToAddresses": to}, "configuration_set_name": config_set,
            "tags": tags if tags is not None else {"callId": ["call_1"], "restaurantId": ["rst_1"]}}


def test_the_templates_event_destination_sends_bounces_and_complaints_to_the_topic(real):
    dests, _ = _feedback(real)
    assert dests == {"pulsara-local-email": [({"bounce", "complaint"}, "EmailEventsTopic")]}


@pytest.mark.parametrize("address, event_type", [
    ("bounce@simulator.amazonses.com", "Bounce"), ("complaint@simulator.amazonses.com",
                                                   "Complaint")])
def test_a_simulator_address_becomes_the_ses_record_wrapped_as_sns_delivers_it(real, address,
                                                                                event_type):
    _, fb = _feedback(real)
    [(m, event)] = fb.feedback_of(_sent(["owner@x.example", address]))
    assert m["function"] == "email-events"
    sns = event["Records"][0]["Sns"]
    assert event["Records"][0]["EventSource"] == "aws:sns"
    assert sns["TopicArn"].endswith(":pulsara-EmailEventsTopic")
    record = json.loads(sns["Message"])
    assert record["eventType"] == event_type
    assert record["mail"]["messageId"] == "m-1"
    assert record["mail"]["tags"]["callId"] == ["call_1"]
    assert record["mail"]["tags"]["ses:configuration-set"] == ["pulsara-local-email"]
    who = (record["bounce"]["bouncedRecipients"] if event_type == "Bounce"
           else record["complaint"]["complainedRecipients"])
    assert [w["emailAddress"] for w in who] == [address], "only the simulator address"
    if event_type == "Bounce":
        assert record["bounce"]["bounceType"] == "Permanent"


def test_ordinary_recipients_and_mail_outside_the_configuration_set_publish_nothing(real):
    _, fb = _feedback(real)
    assert fb.feedback_of(_sent(["owner@x.example"])) == []
    assert fb.feedback_of(_sent(["bounce@simulator.amazonses.com"], config_set=None)) == []
    assert fb.feedback_of(_sent(["bounce@simulator.amazonses.com"], config_set="other")) == []


def test_a_failed_sns_invocation_is_retried_twice_then_dropped(real, monkeypatch):
    monkeypatch.setattr(event_sources, "ASYNC_RETRY_DELAYS", (0.0, 0.0))
    calls = []
    dests, _ = _feedback(real)
    subs = [m for m in event_sources.mappings(real) if m["kind"] == "SNS"]
    fb = event_sources.SesFeedback("http://unused", dests, subs, "pulsara-", "us-east-1",
                                   lambda m, e: (calls.append(e) or (False, None)))
    fb.delay = 0.0
    monkeypatch.setattr(fb, "messages", lambda: [_sent(["bounce@simulator.amazonses.com"])])
    for _ in range(5):
        fb.step()
    assert len(calls) == 3, "the first invocation and Lambda's two retries"
    assert calls[0] is calls[2], "the same event each time"
    assert fb.due == []
