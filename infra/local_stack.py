#!/usr/bin/env python3
"""Create the local AWS side of the stack (moto) from template.yaml.

Reads the SAM template, and against the endpoint in AWS_ENDPOINT_URL idempotently creates
every AWS::DynamoDB::Table, AWS::SQS::Queue, AWS::SES::ConfigurationSet (with its
AWS::SES::ConfigurationSetEventDestination), AWS::SES::EmailIdentity, AWS::KMS::Key and
AWS::SecretsManager::Secret it declares, then writes an env file (KEY=VALUE lines, as
`cargo lambda watch --env-file` reads them) holding the Globals.Function environment variables
resolved for local use, and beside it one file per function with that function's own
Environment.Variables (<env-file>.d/<binary>.env, named by PULSARA_FUNCTION_ENV_DIR in the env
file; infra/respawn.sh, the functions' cargo runner, adds them to the one function's
environment, as Lambda gives each function its own).

Local names:
  DynamoDB table   <prefix><LogicalId>           (default prefix "pulsara-")
  SQS queue        <prefix><LogicalId>
  SES identity     the resolved EmailIdentity (a domain: any sender there works; an address:
                   its domain too), verified at once (no DNS locally)
  SES config set   the resolved Name, with its event destinations (the local event sources
                   publish the mailbox simulator's bounces and complaints through them)
  SNS topic        not created: its Ref is a local ARN (arn:aws:sns:<region>:<account>:
                   <prefix><LogicalId>); the event sources invoke its subscribers directly
  KMS key          a symmetric key, aliased alias/<prefix><LogicalId>
  secret           <prefix><LogicalId>, its value generated as GenerateSecretString says

Only what template.yaml uses is emulated; load_template() refuses anything else with a
TemplateError naming the template and the place (see check_template()), so a template change
cannot be silently mis-emulated:
  intrinsics       !Ref, !GetAtt, !Sub (string form); pseudo parameters AWS::Region,
                   AWS::AccountId, AWS::Partition, AWS::URLSuffix, AWS::StackName;
                   no Conditions, no Mappings
  resources        the types in RESOURCE_PROPERTIES, each with the properties listed there
  functions        the properties in FUNCTION_PROPERTIES / GLOBAL_FUNCTION_PROPERTIES;
                   events HttpApi (here), SQS and DynamoDB (checked by event_sources.mappings(),
                   which main() runs before creating anything)

The parsing helpers (load_template, http_routes, ...) are importable for tests.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"  # moto's default account id
# Values of the template's required parameters (no Default) for the local stack only.
LOCAL_PARAMETERS = {"SenderDomain": "pulsara.example",
                    "SenderEmail": "notifications@pulsara.example"}


class TemplateError(ValueError):
    """The template uses something the local emulator does not emulate."""


def template_error(path: Any, where: str, what: str) -> TemplateError:
    return TemplateError(f"{path}: {where}: {what}")


# --------------------------------------------------------------------------------------------
# What the emulator knows (everything template.yaml uses, and nothing more)
# --------------------------------------------------------------------------------------------

TEMPLATE_SECTIONS = {"AWSTemplateFormatVersion", "Transform", "Description", "Parameters",
                     "Globals", "Resources", "Outputs"}
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
PARAMETER_TYPES = {"String", "Number"}
RESOURCE_KEYS = {"Type", "Properties", "Metadata", "DeletionPolicy", "UpdateReplacePolicy"}

# Resource type -> the properties the template uses. Created locally: tables, queues, the SES
# identity; served by cargo lambda watch: functions, the HTTP API. None: not created locally and
# nothing local reads it (the alarms and their topic), so its properties are not looked at.
RESOURCE_PROPERTIES: dict[str, set[str] | None] = {
    # PointInTimeRecovery and SSE have no local effect.
    "AWS::DynamoDB::Table": {"BillingMode", "AttributeDefinitions", "KeySchema",
                             "StreamSpecification", "GlobalSecondaryIndexes",
                             "TimeToLiveSpecification", "PointInTimeRecoverySpecification",
                             "SSESpecification"},
    # SqsManagedSseEnabled has no local effect (moto takes it and ignores it).
    "AWS::SQS::Queue": {"VisibilityTimeout", "MessageRetentionPeriod", "SqsManagedSseEnabled",
                        "RedrivePolicy"},
    "AWS::SES::EmailIdentity": {"EmailIdentity", "DkimSigningAttributes", "MailFromAttributes",
                                "ConfigurationSetAttributes"},
    # Reputation metrics have no local effect; SendingEnabled is passed on.
    "AWS::SES::ConfigurationSet": {"Name", "ReputationOptions", "SendingOptions"},
    "AWS::SES::ConfigurationSetEventDestination": {"ConfigurationSetName", "EventDestination"},
    # SES's permission to publish: moto enforces no topic policies.
    "AWS::SNS::TopicPolicy": None,
    "AWS::Serverless::Function": None,  # FUNCTION_PROPERTIES
    # The stage, warnings and API Gateway throttling have no local equivalent.
    "AWS::Serverless::HttpApi": {"StageName", "FailOnWarnings", "DefaultRouteSettings"},
    "AWS::SNS::Topic": None,
    "AWS::CloudWatch::Alarm": None,
    # Every key is created (the functions seal secrets with one); key policies and rotation
    # have no local effect (moto grants everything).
    "AWS::KMS::Key": {"Description", "EnableKeyRotation", "KeyPolicy"},
    "AWS::SecretsManager::Secret": {"Description", "GenerateSecretString"},
    # The functions' log groups: cargo lambda watch logs to its own output.
    "AWS::Logs::LogGroup": None,
}
GENERATE_SECRET_KEYS = {"PasswordLength", "ExcludePunctuation"}
# Runtime, Architectures, MemorySize, Handler, Tracing, CodeUri, Description, LoggingConfig and
# Policies have no
# local effect (cargo lambda watch runs the debug binaries with full access to moto).
GLOBAL_FUNCTION_PROPERTIES = {"Runtime", "Architectures", "MemorySize", "Timeout", "Handler",
                              "Tracing", "LoggingConfig", "Environment"}
FUNCTION_PROPERTIES = {"CodeUri", "Description", "MemorySize", "Timeout", "Events", "Policies",
                       "LoggingConfig", "Environment"}
EVENT_TYPES = {"HttpApi", "SQS", "DynamoDB", "SNS"}  # SQS, DynamoDB, SNS: event_sources.py
HTTP_EVENT_PROPERTIES = {"ApiId", "Path", "Method"}
TABLE_ATTRIBUTES = {"Arn", "StreamArn"}
QUEUE_ATTRIBUTES = {"Arn", "QueueName"}
KEY_ATTRIBUTES = {"Arn", "KeyId"}
# The DKIM records (stack outputs only: nothing local resolves them).
IDENTITY_ATTRIBUTES = {f"DkimDNSToken{kind}{n}" for kind in ("Name", "Value") for n in (1, 2, 3)}
GETATT_ATTRIBUTES = {"AWS::DynamoDB::Table": TABLE_ATTRIBUTES, "AWS::SQS::Queue": QUEUE_ATTRIBUTES,
                     "AWS::KMS::Key": KEY_ATTRIBUTES,
                     "AWS::SES::EmailIdentity": IDENTITY_ATTRIBUTES}
EVENT_DESTINATION_KEYS = {"Name", "Enabled", "MatchingEventTypes", "SnsDestination"}
REDRIVE_KEYS = {"deadLetterTargetArn", "maxReceiveCount"}

# --------------------------------------------------------------------------------------------
# Template loading
# --------------------------------------------------------------------------------------------

_SHORT_TAGS = {"Ref": "Ref", "GetAtt": "Fn::GetAtt", "Sub": "Fn::Sub"}
INTRINSICS = set(_SHORT_TAGS.values())
PSEUDO_PARAMETERS = ("AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix",
                     "AWS::StackName")
LOCAL_STACK_NAME = "pulsara-local"


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands the CloudFormation short-form tags the template uses."""


def _construct_tag(loader: yaml.Loader, tag_suffix: str, node: yaml.Node) -> Any:
    name = _SHORT_TAGS.get(tag_suffix)
    if name is None:
        raise yaml.constructor.ConstructorError(
            None, None,
            f"!{tag_suffix} is not emulated locally (infra/local_stack.py resolves "
            f"{', '.join('!' + t for t in _SHORT_TAGS)})",
            node.start_mark,
        )
    if not isinstance(node, yaml.ScalarNode):
        if name == "Fn::GetAtt" and isinstance(node, yaml.SequenceNode):
            return {name: loader.construct_sequence(node, deep=True)}
        raise yaml.constructor.ConstructorError(
            None, None, f"!{tag_suffix} takes a string here (other forms are not emulated)",
            node.start_mark,
        )
    value: Any = loader.construct_scalar(node)
    if name == "Fn::GetAtt":
        value = value.split(".", 1)
    return {name: value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str | os.PathLike = DEFAULT_TEMPLATE, check: bool = True) -> dict:
    """Parse a SAM template (YAML or JSON) into plain Python data; with `check`, refuse
    (TemplateError) anything the local emulator does not emulate (check_template)."""
    with open(path, encoding="utf-8") as fh:
        try:
            template = yaml.load(fh, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass
        except yaml.constructor.ConstructorError as exc:
            raise TemplateError(f"{path}: {exc}") from exc
    if check:
        check_template(template, path)
    return template


def resources_of_type(template: dict, rtype: str) -> dict[str, dict]:
    return {
        lid: res
        for lid, res in (template.get("Resources") or {}).items()
        if isinstance(res, dict) and res.get("Type") == rtype
    }


def _props(res: dict) -> dict:
    return res.get("Properties") or {}


def _unknown(path: Any, where: str, keys, known: set[str], what: str = "property") -> None:
    extra = sorted(set(keys) - known)
    if extra:
        raise template_error(
            path, where,
            f"{what} {', '.join(extra)} is not emulated locally "
            f"(known: {', '.join(sorted(known))})",
        )


def check_template(template: dict, path: Any = "template.yaml") -> None:
    """Raise TemplateError for anything in the template the local emulator does not emulate:
    other sections, resource types, properties, intrinsics, pseudo parameters, function
    properties and event types. SQS and DynamoDB event properties: event_sources.mappings()."""
    if not isinstance(template, dict):
        raise template_error(path, "top level", "not a mapping")
    _unknown(path, "top level", template, TEMPLATE_SECTIONS, "section")
    if template.get("Transform", SAM_TRANSFORM) != SAM_TRANSFORM:
        raise template_error(path, "Transform", f"only {SAM_TRANSFORM} is emulated")
    params = template.get("Parameters") or {}
    for name, spec in params.items():
        if (spec or {}).get("Type") not in PARAMETER_TYPES:
            raise template_error(path, f"Parameters.{name}.Type",
                                 f"{(spec or {}).get('Type')!r} is not emulated locally "
                                 f"(known: {', '.join(sorted(PARAMETER_TYPES))})")
    resources = template.get("Resources") or {}
    for lid, res in resources.items():
        where = f"Resources.{lid}"
        rtype = (res or {}).get("Type")
        if rtype not in RESOURCE_PROPERTIES:
            raise template_error(path, f"{where}.Type", f"{rtype} is not emulated locally "
                                 f"(infra/local_stack.py knows {', '.join(RESOURCE_PROPERTIES)})")
        _unknown(path, where, res, RESOURCE_KEYS, "resource attribute")
        known = RESOURCE_PROPERTIES[rtype]
        if known is not None:
            _unknown(path, f"{where}.Properties", _props(res), known)
    glob = template.get("Globals") or {}
    _unknown(path, "Globals", glob, {"Function"}, "section")
    gfn = glob.get("Function") or {}
    _unknown(path, "Globals.Function", gfn, GLOBAL_FUNCTION_PROPERTIES)
    _unknown(path, "Globals.Function.Environment", gfn.get("Environment") or {}, {"Variables"})
    for lid, res in resources_of_type(template, "AWS::Serverless::Function").items():
        _check_function(path, template, lid, res)
    for lid, res in resources_of_type(template, "AWS::DynamoDB::Table").items():
        where = f"Resources.{lid}.Properties"
        props = _props(res)
        if props.get("BillingMode") != "PAY_PER_REQUEST":
            raise template_error(path, f"{where}.BillingMode",
                                 f"{props.get('BillingMode')!r}: only PAY_PER_REQUEST is emulated")
        for n, ix in enumerate(props.get("GlobalSecondaryIndexes") or []):
            _unknown(path, f"{where}.GlobalSecondaryIndexes[{n}]", ix,
                     {"IndexName", "KeySchema", "Projection"})
    for lid, res in resources_of_type(template, "AWS::SecretsManager::Secret").items():
        gen = _props(res).get("GenerateSecretString")
        if not isinstance(gen, dict):
            raise template_error(path, f"Resources.{lid}.Properties", "GenerateSecretString "
                                 "(a mapping) is what is emulated: the value is generated")
        _unknown(path, f"Resources.{lid}.Properties.GenerateSecretString", gen,
                 GENERATE_SECRET_KEYS, "key")
    for lid, res in resources_of_type(template,
                                      "AWS::SES::ConfigurationSetEventDestination").items():
        dest = _props(res).get("EventDestination")
        where = f"Resources.{lid}.Properties.EventDestination"
        if not isinstance(dest, dict) or not isinstance(dest.get("SnsDestination"), dict):
            raise template_error(path, where, "only an SnsDestination is emulated")
        _unknown(path, where, dest, EVENT_DESTINATION_KEYS, "key")
    for lid, res in resources_of_type(template, "AWS::SQS::Queue").items():
        redrive = _props(res).get("RedrivePolicy")
        if redrive is not None:
            where = f"Resources.{lid}.Properties.RedrivePolicy"
            if not isinstance(redrive, dict):
                raise template_error(path, where, "only the mapping form is emulated")
            _unknown(path, where, redrive, REDRIVE_KEYS, "key")
    _check_intrinsics(path, template, template, "")


def _check_function(path: Any, template: dict, lid: str, res: dict) -> None:
    where = f"Resources.{lid}"
    _unknown(path, f"{where}.Properties", _props(res), FUNCTION_PROPERTIES)
    _unknown(path, f"{where}.Properties.Environment", _props(res).get("Environment") or {},
             {"Variables"})
    meta = res.get("Metadata") or {}
    binary = (meta.get("BuildProperties") or {}).get("Binary")
    if meta.get("BuildMethod") != "makefile" or not isinstance(binary, str) or not binary:
        raise template_error(path, f"{where}.Metadata", "BuildMethod makefile and "
                             "BuildProperties.Binary (the cargo binary) are what is emulated")
    for name, event in (_props(res).get("Events") or {}).items():
        ewhere = f"{where}.Properties.Events.{name}"
        kind = (event or {}).get("Type")
        if kind not in EVENT_TYPES:
            raise template_error(path, f"{ewhere}.Type", f"event type {kind} is not emulated "
                                 f"locally (known: {', '.join(sorted(EVENT_TYPES))})")
        if kind != "HttpApi":
            continue  # event_sources.mappings() / sns_subscriptions()
        props = event.get("Properties") or {}
        _unknown(path, f"{ewhere}.Properties", props, HTTP_EVENT_PROPERTIES)
        api = props.get("ApiId")
        api_lid = api.get("Ref") if isinstance(api, dict) else None
        if (template.get("Resources") or {}).get(api_lid, {}).get("Type") \
                != "AWS::Serverless::HttpApi":
            raise template_error(path, f"{ewhere}.Properties.ApiId",
                                 "must be !Ref of an AWS::Serverless::HttpApi")
        if not isinstance(props.get("Path"), str) or not isinstance(props.get("Method"), str):
            raise template_error(path, f"{ewhere}.Properties", "Path and Method are required")


_SUB_RE = re.compile(r"\$\{([^}]*)\}")


def _check_intrinsics(path: Any, template: dict, value: Any, where: str) -> None:
    """Every intrinsic in the template is one the Resolver resolves, aimed at something there."""
    if isinstance(value, list):
        for n, v in enumerate(value):
            _check_intrinsics(path, template, v, f"{where}[{n}]")
        return
    if not isinstance(value, dict):
        return
    fns = [k for k in value if k == "Ref" or str(k).startswith("Fn::")]
    if fns and len(value) == 1:
        (name, arg), = value.items()
        if name not in INTRINSICS:
            raise template_error(path, where, f"{name} is not emulated locally "
                                 f"(infra/local_stack.py resolves {', '.join(sorted(INTRINSICS))})")
        if name == "Ref":
            _check_ref(path, template, arg, where)
        elif name == "Fn::GetAtt":
            if not (isinstance(arg, list) and len(arg) == 2
                    and all(isinstance(a, str) for a in arg)):
                raise template_error(path, where, f"Fn::GetAtt {arg!r}: only [LogicalId, "
                                     "Attribute] is emulated")
            _check_getatt(path, template, arg[0], arg[1], where)
        else:  # Fn::Sub
            if not isinstance(arg, str):
                raise template_error(path, where, "Fn::Sub: only the string form is emulated")
            for m in _SUB_RE.finditer(arg):
                expr = m.group(1)
                if expr.startswith("!"):
                    raise template_error(path, where,
                                         f"Fn::Sub literal ${{{expr}}} is not emulated")
                if "." in expr and not expr.startswith("AWS::"):
                    _check_getatt(path, template, *expr.split(".", 1), where)
                else:
                    _check_ref(path, template, expr, where)
        return
    if fns:
        raise template_error(path, where, f"{fns[0]} must be the only key of its mapping")
    for k, v in value.items():
        _check_intrinsics(path, template, v, f"{where}.{k}" if where else str(k))


def _check_ref(path: Any, template: dict, name: Any, where: str) -> None:
    if name in PSEUDO_PARAMETERS or name in (template.get("Parameters") or {}) \
            or name in (template.get("Resources") or {}):
        return
    if isinstance(name, str) and name.startswith("AWS::"):
        raise template_error(path, where, f"pseudo parameter {name} is not emulated locally "
                             f"(known: {', '.join(PSEUDO_PARAMETERS)})")
    raise template_error(path, where, f"Ref {name!r} names no parameter or resource")


def _check_getatt(path: Any, template: dict, lid: str, attr: str, where: str) -> None:
    res = (template.get("Resources") or {}).get(lid)
    if res is None:
        raise template_error(path, where, f"GetAtt {lid}.{attr}: no resource {lid}")
    known = GETATT_ATTRIBUTES.get(res.get("Type"), set())
    if attr not in known:
        raise template_error(path, where, f"GetAtt {lid}.{attr} is not emulated locally "
                             f"({res.get('Type')}: {', '.join(sorted(known)) or 'none'})")


def http_routes(template: dict) -> set[tuple[str, str]]:
    """Every (METHOD, path) served through HttpApi events of the template's functions."""
    return set(function_routes(template))


def binary_of(lid: str, res: dict) -> str:
    """The cargo binary SAM builds for a function (Metadata.BuildProperties.Binary)."""
    return res["Metadata"]["BuildProperties"]["Binary"]


def function_routes(template: dict) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> binary name for HttpApi events."""
    routes: dict[tuple[str, str], str] = {}
    for lid, res in resources_of_type(template, "AWS::Serverless::Function").items():
        binary = binary_of(lid, res)
        for event in (_props(res).get("Events") or {}).values():
            if event.get("Type") != "HttpApi":
                continue
            props = event["Properties"]
            method, path = str(props["Method"]).upper(), props["Path"]
            key = (method, path)
            if key in routes and routes[key] != binary:
                raise ValueError(f"route {method} {path} is served by two functions")
            routes[key] = binary
    return routes


def function_binaries(template: dict) -> dict[str, str]:
    """Logical id -> cargo binary name for every AWS::Serverless::Function."""
    return {
        lid: binary_of(lid, res)
        for lid, res in resources_of_type(template, "AWS::Serverless::Function").items()
    }


# --------------------------------------------------------------------------------------------
# Intrinsic resolution (local values)
# --------------------------------------------------------------------------------------------


class Resolver:
    """Resolves !Ref, !GetAtt and !Sub against local resource names and parameter values."""

    def __init__(self, template: dict, params: dict[str, str], region: str, account: str):
        self.template = template
        self.params: dict[str, Any] = {}
        for name, spec in (template.get("Parameters") or {}).items():
            if name in params:
                self.params[name] = params[name]
            elif "Default" in spec:
                self.params[name] = spec["Default"]
            elif name in LOCAL_PARAMETERS:
                self.params[name] = LOCAL_PARAMETERS[name]
        for name, value in params.items():  # allow extra overrides too
            self.params.setdefault(name, value)
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": LOCAL_STACK_NAME,
        }
        # logical id -> {"Ref": ..., "<Attr>": ...}, filled as resources are created
        self.resources: dict[str, dict[str, Any]] = {}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                return self.getatt(*arg)
            if key == "Fn::Sub":
                return self.sub(arg)
            if str(key).startswith("Fn::"):
                raise KeyError(f"{key} is not emulated locally")
        return {k: self.resolve(v) for k, v in value.items()}

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in (self.template.get("Parameters") or {}):
            raise KeyError(f"parameter {name} has no Default: pass --param {name}=VALUE")
        if name in self.resources:
            return self.resources[name]["Ref"]
        raise KeyError(f"cannot resolve Ref {name} locally")

    def getatt(self, name: str, attr: str) -> Any:
        res = self.resources.get(name)
        if res is None or attr not in res:
            raise KeyError(f"cannot resolve GetAtt {name}.{attr} locally")
        return res[attr]

    def sub(self, text: str) -> str:
        if not isinstance(text, str):
            raise KeyError("Fn::Sub: only the string form is emulated")

        def repl(m: re.Match) -> str:
            expr = m.group(1)
            if expr.startswith("!"):
                raise KeyError(f"Fn::Sub literal ${{{expr}}} is not emulated")
            if "." in expr and not expr.startswith("AWS::"):
                return str(self.getatt(*expr.split(".", 1)))
            return str(self.ref(expr))

        return _SUB_RE.sub(repl, text)


# --------------------------------------------------------------------------------------------
# Resource creation
# --------------------------------------------------------------------------------------------


def _log(msg: str) -> None:
    print(f"[local_stack] {msg}", file=sys.stderr, flush=True)


def _err_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _index_spec(ix: dict) -> dict:
    return {"IndexName": ix["IndexName"], "KeySchema": ix["KeySchema"],
            "Projection": ix["Projection"]}


def create_tables(session, r: Resolver, prefix: str, endpoint: str) -> None:
    """Every table on demand (PAY_PER_REQUEST), with its GSIs, stream and TTL."""
    ddb = session.client("dynamodb", endpoint_url=endpoint)
    for lid, res in resources_of_type(r.template, "AWS::DynamoDB::Table").items():
        props = r.resolve(_props(res))
        name = f"{prefix}{lid}"
        gsis = [_index_spec(ix) for ix in props.get("GlobalSecondaryIndexes") or []]
        stream = props.get("StreamSpecification")
        stream_spec = stream and {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}

        existing = None
        try:
            existing = ddb.describe_table(TableName=name)["Table"]
        except ddb.exceptions.ResourceNotFoundException:
            pass

        if existing is None:
            kwargs: dict[str, Any] = {
                "TableName": name,
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"],
                "BillingMode": "PAY_PER_REQUEST",
            }
            if gsis:
                kwargs["GlobalSecondaryIndexes"] = gsis
            if stream_spec:
                kwargs["StreamSpecification"] = stream_spec
            ddb.create_table(**kwargs)
            ddb.get_waiter("table_exists").wait(
                TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
            )
            _log(f"created table {name}")
        else:
            # Bring an existing local table up to date with indexes/streams added later.
            have = {ix["IndexName"] for ix in existing.get("GlobalSecondaryIndexes") or []}
            for ix in gsis:
                if ix["IndexName"] not in have:
                    ddb.update_table(
                        TableName=name,
                        AttributeDefinitions=props["AttributeDefinitions"],
                        GlobalSecondaryIndexUpdates=[{"Create": ix}],
                    )
                    _log(f"added index {ix['IndexName']} to table {name}")
            if stream_spec and not (existing.get("StreamSpecification") or {}).get("StreamEnabled"):
                ddb.update_table(TableName=name, StreamSpecification=stream_spec)
                _log(f"enabled stream on table {name}")
            _log(f"table {name} exists")

        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled", True) not in (False, "false", "False"):
            status = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if status.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={
                        "AttributeName": ttl["AttributeName"],
                        "Enabled": True,
                    },
                )
                _log(f"enabled TTL on {name}.{ttl['AttributeName']}")

        table = ddb.describe_table(TableName=name)["Table"]
        r.resources[lid] = {
            "Ref": name,
            "Arn": table["TableArn"],
            "StreamArn": table.get("LatestStreamArn", ""),
        }


_SQS_ATTRS = ["VisibilityTimeout", "MessageRetentionPeriod", "SqsManagedSseEnabled"]


def _queue_deps(props: Any) -> set[str]:
    """Logical ids of resources a queue's properties refer to (e.g. its DLQ)."""
    deps: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if "Fn::GetAtt" in v and len(v) == 1:
                deps.add(v["Fn::GetAtt"][0])
            elif "Ref" in v and len(v) == 1 and isinstance(v["Ref"], str):
                deps.add(v["Ref"])
            else:
                for x in v.values():
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(props)
    return deps


def scaled_visibility(props: dict, scale: float) -> dict:
    """`props` with VisibilityTimeout multiplied by `scale` (whole seconds, at least 1)."""
    if scale == 1.0 or "VisibilityTimeout" not in props:
        return props
    seconds = max(1, round(float(props["VisibilityTimeout"]) * scale))
    return {**props, "VisibilityTimeout": seconds}


def queue_attributes(props: dict) -> dict[str, str]:
    """A queue's resolved Properties as SQS attributes (strings; RedrivePolicy as JSON)."""
    attrs = {k: _attr_str(props[k]) for k in _SQS_ATTRS if k in props}
    if "RedrivePolicy" in props:
        attrs["RedrivePolicy"] = json.dumps(props["RedrivePolicy"])
    return attrs


def create_queues(session, r: Resolver, prefix: str, endpoint: str,
                  visibility_scale: float = 1.0) -> None:
    queues = resources_of_type(r.template, "AWS::SQS::Queue")
    if not queues:
        return
    sqs = session.client("sqs", endpoint_url=endpoint)
    pending = dict(queues)
    while pending:
        ready = [lid for lid, res in pending.items()
                 if not (_queue_deps(_props(res)) & set(pending))]
        if not ready:
            raise RuntimeError(f"circular references between queues: {sorted(pending)}")
        for lid in ready:
            res = pending.pop(lid)
            props = scaled_visibility(r.resolve(_props(res)), visibility_scale)
            name = f"{prefix}{lid}"
            attrs = queue_attributes(props)
            try:
                url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
                _log(f"queue {name} ready"
                     + (f" (visibility {attrs['VisibilityTimeout']}s)" if visibility_scale != 1.0
                        and "VisibilityTimeout" in attrs else ""))
            except Exception as exc:  # QueueAlreadyExists with other attributes
                if "QueueAlreadyExists" not in _err_code(exc):
                    raise
                url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
                if attrs:
                    sqs.set_queue_attributes(QueueUrl=url, Attributes=attrs)
                _log(f"queue {name} updated")
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            r.resources[lid] = {"Ref": url, "Arn": arn, "QueueName": name}


def _attr_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def sns_topic_refs(r: Resolver, prefix: str, region: str, account: str) -> None:
    """Each SNS topic's Ref (its ARN), locally: nothing publishes to it, the event sources
    invoke its subscribers (event_sources.py)."""
    for lid in resources_of_type(r.template, "AWS::SNS::Topic"):
        r.resources[lid] = {"Ref": f"arn:aws:sns:{region}:{account}:{prefix}{lid}"}


def create_configuration_sets(session, r: Resolver, endpoint: str) -> None:
    """Each SES configuration set and its event destinations (SES v2 sets; moto keeps the
    destinations in its v1 API, which shares the state)."""
    sets = resources_of_type(r.template, "AWS::SES::ConfigurationSet")
    if not sets:
        return
    sesv2 = session.client("sesv2", endpoint_url=endpoint)
    ses = session.client("ses", endpoint_url=endpoint)
    for lid, res in sets.items():
        props = r.resolve(_props(res))
        name = props.get("Name") or lid
        kwargs: dict[str, Any] = {"ConfigurationSetName": name}
        if "SendingOptions" in props:
            kwargs["SendingOptions"] = props["SendingOptions"]
        if "ReputationOptions" in props:
            kwargs["ReputationOptions"] = props["ReputationOptions"]
        try:
            sesv2.create_configuration_set(**kwargs)
            _log(f"created SES configuration set {name}")
        except Exception as exc:
            if "AlreadyExists" not in _err_code(exc):
                raise
            _log(f"SES configuration set {name} exists")
        r.resources[lid] = {"Ref": name}
    for lid, res in resources_of_type(r.template,
                                      "AWS::SES::ConfigurationSetEventDestination").items():
        props = r.resolve(_props(res))
        dest = props["EventDestination"]
        try:
            ses.create_configuration_set_event_destination(
                ConfigurationSetName=props["ConfigurationSetName"],
                EventDestination={
                    "Name": dest["Name"],
                    "Enabled": bool(dest.get("Enabled", False)),
                    "MatchingEventTypes": dest["MatchingEventTypes"],
                    "SNSDestination": {"TopicARN": dest["SnsDestination"]["TopicARN"]},
                },
            )
            _log(f"created SES event destination {dest['Name']} -> "
                 f"{dest['SnsDestination']['TopicARN']}")
        except Exception as exc:
            if "AlreadyExists" not in _err_code(exc):
                raise
        r.resources[lid] = {"Ref": dest["Name"]}


def create_email_identities(session, r: Resolver, endpoint: str) -> None:
    identities = resources_of_type(r.template, "AWS::SES::EmailIdentity")
    if not identities:
        return
    sesv2 = session.client("sesv2", endpoint_url=endpoint)
    ses = session.client("ses", endpoint_url=endpoint)
    for lid, res in identities.items():
        props = r.resolve(_props(res))
        identity = props["EmailIdentity"]
        names = [identity]
        if "@" in identity:  # verify the sender's domain too, so any address there can send
            names.append(identity.split("@", 1)[1])
        for name in names:
            try:
                sesv2.get_email_identity(EmailIdentity=name)
                _log(f"SES identity {name} exists")
                continue
            except Exception as exc:
                if "NotFound" not in _err_code(exc):
                    raise
            kwargs: dict[str, Any] = {"EmailIdentity": name}
            config_set = (props.get("ConfigurationSetAttributes") or {}).get("ConfigurationSetName")
            if config_set:
                kwargs["ConfigurationSetName"] = config_set
            try:
                sesv2.create_email_identity(**kwargs)
                _log(f"created SES identity {name}"
                     + (f" (configuration set {config_set})" if config_set else ""))
            except Exception as exc:
                if "AlreadyExists" not in _err_code(exc):
                    raise
        # moto's SES v1 and v2 share state; mark it verified the v1 way as well (idempotent).
        try:
            if "@" in identity:
                ses.verify_email_identity(EmailAddress=identity)
            ses.verify_domain_identity(Domain=names[-1])
            mail_from = props.get("MailFromAttributes") or {}
            if mail_from.get("MailFromDomain"):
                ses.set_identity_mail_from_domain(
                    Identity=identity, MailFromDomain=mail_from["MailFromDomain"],
                    BehaviorOnMXFailure=mail_from.get("BehaviorOnMxFailure",
                                                      "UseDefaultValue").replace(
                        "USE_DEFAULT_VALUE", "UseDefaultValue").replace(
                        "REJECT_MESSAGE", "RejectMessage"))
        except Exception as exc:  # pragma: no cover - best effort
            _log(f"warning: SES v1 verification of {identity} failed: {exc}")
        r.resources[lid] = {"Ref": identity}


def create_kms_keys(session, r: Resolver, prefix: str, endpoint: str) -> None:
    keys = resources_of_type(r.template, "AWS::KMS::Key")
    if not keys:
        return
    kms = session.client("kms", endpoint_url=endpoint)
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in
               kms.list_aliases().get("Aliases", [])}
    for lid, res in keys.items():
        alias = f"alias/{prefix}{lid}"
        key_id = aliases.get(alias)
        if key_id:
            _log(f"KMS key {alias} exists")
        else:
            key_id = kms.create_key(
                Description=str(r.resolve(_props(res).get("Description", lid)))
            )["KeyMetadata"]["KeyId"]
            kms.create_alias(AliasName=alias, TargetKeyId=key_id)
            _log(f"created KMS key {alias}")
        arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
        r.resources[lid] = {"Ref": key_id, "KeyId": key_id, "Arn": arn}


def generated_secret(spec: dict) -> str:
    """A value as Secrets Manager's GenerateSecretString makes it (the keys the template
    uses): PasswordLength characters (default 32), letters and digits only when
    ExcludePunctuation."""
    import secrets
    import string

    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += string.punctuation
    return "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))


def create_secrets(session, r: Resolver, prefix: str, endpoint: str) -> None:
    """Each secret with a generated value (kept if it exists: a restarted stack keeps its
    admins signed in); its Ref is the ARN, as in CloudFormation."""
    found = resources_of_type(r.template, "AWS::SecretsManager::Secret")
    if not found:
        return
    sm = session.client("secretsmanager", endpoint_url=endpoint)
    for lid, res in found.items():
        name = f"{prefix}{lid}"
        try:
            arn = sm.describe_secret(SecretId=name)["ARN"]
            _log(f"secret {name} exists")
        except Exception as exc:
            if "ResourceNotFound" not in _err_code(exc):
                raise
            props = _props(res)
            arn = sm.create_secret(
                Name=name,
                Description=str(r.resolve(props.get("Description", lid))),
                SecretString=generated_secret(props["GenerateSecretString"]),
            )["ARN"]
            _log(f"created secret {name}")
        r.resources[lid] = {"Ref": arn}


# --------------------------------------------------------------------------------------------
# Env file
# --------------------------------------------------------------------------------------------


def _global_variables(template: dict) -> dict:
    glob = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    return glob.get("Variables") or {}


def function_environment(template: dict, r: Resolver) -> dict[str, str]:
    """Globals.Function environment variables, resolved: what every function gets."""
    return {key: _attr_str(r.resolve(raw)) for key, raw in _global_variables(template).items()}


def _own_variables(res: dict) -> dict:
    return ((_props(res).get("Environment") or {}).get("Variables")) or {}


def own_environments(template: dict, r: Resolver) -> dict[str, dict[str, str]]:
    """Cargo binary -> the function's own Environment.Variables, resolved (only functions that
    declare some)."""
    out: dict[str, dict[str, str]] = {}
    for lid, res in resources_of_type(template, "AWS::Serverless::Function").items():
        own = _own_variables(res)
        if own:
            out[binary_of(lid, res)] = {k: _attr_str(r.resolve(v)) for k, v in own.items()}
    return out


def _referenced_params(template: dict) -> set[str]:
    """Template parameters referenced (via Ref or Sub) by the functions' environment variables."""
    params = set(template.get("Parameters") or {})
    tree = [_global_variables(template)] + [
        _own_variables(res)
        for res in resources_of_type(template, "AWS::Serverless::Function").values()
    ]
    found = _queue_deps(tree) & params
    for m in _SUB_RE.finditer(json.dumps(tree)):
        if m.group(1) in params:
            found.add(m.group(1))
    return found


def function_env_dir(env_file: Path) -> Path:
    return env_file.with_name(env_file.name + ".d").resolve()


def write_function_envs(env_file: Path, envs: dict[str, dict[str, str]]) -> Path:
    """<env-file>.d/<binary>.env per function with variables of its own (stale ones removed)."""
    d = function_env_dir(env_file)
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("*.env"):
        old.unlink()
    for binary, env in envs.items():
        write_env_file(d / f"{binary}.env", env)
    return d


def write_env_file(path: Path, env: dict[str, str]) -> None:
    lines = []
    for key, value in env.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ValueError(f"invalid environment variable name {key!r}")
        if "\n" in value or "\r" in value:
            raise ValueError(f"environment variable {key} contains a newline")
        lines.append(f"{key}={value}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{flag} expects NAME=VALUE, got {item!r}")
        out[key] = value
    return out


def load_and_check(path: str | os.PathLike) -> dict:
    """load_template() plus the event source mappings' checks (event_sources.mappings()), as
    a SystemExit naming what is not emulated: before anything local is created or started."""
    import event_sources  # late: event_sources imports this module

    try:
        template = load_template(path)
        event_sources.mappings(template, path)
    except (TemplateError, event_sources.local_stack.TemplateError) as exc:  # run as __main__
        raise SystemExit(f"local emulator: {exc}") from exc
    return template


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    ap.add_argument("--prefix", default="pulsara-", help="local resource name prefix")
    ap.add_argument("--env-file", help="write the resolved function environment here")
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="template parameter override")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra/overriding env file line")
    ap.add_argument("--queue-visibility-scale", type=float, default=1.0, metavar="F",
                    help="multiply each queue's VisibilityTimeout from the template by F "
                         "(at least 1 s)")
    args = ap.parse_args(argv)
    if args.queue_visibility_scale <= 0:
        raise SystemExit("--queue-visibility-scale must be > 0")

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise SystemExit("AWS_ENDPOINT_URL must point at the local moto server")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    access_key = os.environ.get("AWS_ACCESS_KEY_ID") or "testing"
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY") or "testing"

    template = load_and_check(args.template)
    import boto3  # imported late so the parsing helpers work without boto3

    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
    )
    resolver = Resolver(template, _pairs(args.param, "--param"), region, DEFAULT_ACCOUNT)
    if args.env_file:  # fail before touching anything if a parameter value is missing
        for name in _referenced_params(template):
            if name not in resolver.params:
                raise SystemExit(
                    f"local_stack: parameter {name} has no Default: pass --param {name}=VALUE"
                )

    started = time.monotonic()
    try:
        create_tables(session, resolver, args.prefix, endpoint)
        create_queues(session, resolver, args.prefix, endpoint, args.queue_visibility_scale)
        sns_topic_refs(resolver, args.prefix, region, DEFAULT_ACCOUNT)
        create_configuration_sets(session, resolver, endpoint)
        create_email_identities(session, resolver, endpoint)
        create_kms_keys(session, resolver, args.prefix, endpoint)
        create_secrets(session, resolver, args.prefix, endpoint)
    except KeyError as exc:
        raise SystemExit(f"local_stack: {exc.args[0]}") from exc
    _log(f"local stack ready in {time.monotonic() - started:.1f}s at {endpoint}")

    if args.env_file:
        try:
            env = function_environment(template, resolver)
            own = own_environments(template, resolver)
        except KeyError as exc:
            raise SystemExit(f"local_stack: {exc.args[0]}") from exc
        env.update(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_REGION": region,
                "AWS_DEFAULT_REGION": region,  # boto3 (e2e tests) reads this one
                "AWS_ACCESS_KEY_ID": access_key,
                "AWS_SECRET_ACCESS_KEY": secret_key,
            }
        )
        env.update(_pairs(args.set, "--set"))
        env["PULSARA_FUNCTION_ENV_DIR"] = str(write_function_envs(Path(args.env_file), own))
        write_env_file(Path(args.env_file), env)
        _log(f"wrote {args.env_file} ({len(env)} variables) and the own variables of "
             f"{len(own)} functions in {env['PULSARA_FUNCTION_ENV_DIR']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
