#!/usr/bin/env python3
"""Create the local AWS side of the stack (moto) from template.yaml.

Reads the SAM template, and against the endpoint in AWS_ENDPOINT_URL idempotently creates
every AWS::DynamoDB::Table, AWS::SQS::Queue and AWS::SES::EmailIdentity it declares, then
writes an env file (KEY=VALUE lines, as `cargo lambda watch --env-file` reads them) holding the
Globals.Function environment variables resolved for local use.

Local names:
  DynamoDB table   <prefix><LogicalId>           (default prefix "pulsara-")
  SQS queue        <prefix><LogicalId>[.fifo]
  SES identity     the resolved EmailIdentity (plus its domain, so any sender there works)

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

# --------------------------------------------------------------------------------------------
# Template loading
# --------------------------------------------------------------------------------------------

_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Select": "Fn::Select",
    "Join": "Fn::Join",
    "Split": "Fn::Split",
    "FindInMap": "Fn::FindInMap",
    "ImportValue": "Fn::ImportValue",
    "Base64": "Fn::Base64",
    "Cidr": "Fn::Cidr",
    "GetAZs": "Fn::GetAZs",
    "Length": "Fn::Length",
    "ToJsonString": "Fn::ToJsonString",
    "Transform": "Fn::Transform",
}


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation short-form intrinsic tags."""


def _construct_tag(loader: yaml.Loader, tag_suffix: str, node: yaml.Node) -> Any:
    name = _SHORT_TAGS.get(tag_suffix)
    if name is None:
        raise yaml.constructor.ConstructorError(
            None, None, f"unknown CloudFormation tag !{tag_suffix}", node.start_mark
        )
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = value.split(".", 1)
        elif name == "Fn::GetAZs" and value == "":
            value = ""
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str | os.PathLike = DEFAULT_TEMPLATE) -> dict:
    """Parse a CloudFormation/SAM template (YAML or JSON) into plain Python data."""
    with open(path, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


def resources_of_type(template: dict, rtype: str) -> dict[str, dict]:
    return {
        lid: res
        for lid, res in (template.get("Resources") or {}).items()
        if isinstance(res, dict) and res.get("Type") == rtype
    }


def http_routes(template: dict) -> set[tuple[str, str]]:
    """Every (METHOD, path) served through HttpApi events of the template's functions."""
    return set(function_routes(template))


def binary_of(lid: str, res: dict) -> str:
    """The cargo binary SAM builds for a function (Metadata.BuildProperties.Binary)."""
    meta = res.get("Metadata") or {}
    return (meta.get("BuildProperties") or {}).get("Binary") or meta.get("Binary") or lid


def function_routes(template: dict) -> dict[tuple[str, str], str]:
    """(METHOD, path) -> binary name (Metadata.Binary, else the logical id) for HttpApi events."""
    routes: dict[tuple[str, str], str] = {}
    for lid, res in resources_of_type(template, "AWS::Serverless::Function").items():
        binary = binary_of(lid, res)
        events = (res.get("Properties") or {}).get("Events") or {}
        for event in events.values():
            if event.get("Type") != "HttpApi":
                continue
            props = event.get("Properties") or {}
            method = str(props.get("Method", "ANY")).upper()
            path = props.get("Path", "$default")
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
    """Resolves intrinsics against local resource names and parameter values."""

    def __init__(self, template: dict, params: dict[str, str], region: str, account: str):
        self.template = template
        self.region = region
        self.account = account
        self.params: dict[str, Any] = {}
        for name, spec in (template.get("Parameters") or {}).items():
            if name in params:
                self.params[name] = params[name]
            elif "Default" in spec:
                self.params[name] = spec["Default"]
        for name, value in params.items():  # allow extra overrides too
            self.params.setdefault(name, value)
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "pulsara-local",
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account}:stack/pulsara-local/local",
            "AWS::NoValue": None,
            "AWS::NotificationARNs": [],
        }
        # logical id -> {"Ref": ..., "<Attr>": ...}, filled as resources are created
        self.resources: dict[str, dict[str, Any]] = {}

    # -- public ------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not _NOVALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            handler = _INTRINSICS.get(key)
            if handler is not None:
                return handler(self, arg)
        out = {}
        for k, v in value.items():
            r = self.resolve(v)
            if r is not _NOVALUE:
                out[k] = r
        return out

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return _NOVALUE if name == "AWS::NoValue" else self.pseudo[name]
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

    def condition(self, name: str) -> bool:
        spec = (self.template.get("Conditions") or {}).get(name)
        if spec is None:
            raise KeyError(f"unknown condition {name}")
        return bool(self.resolve(spec))


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


_NOVALUE = _NoValue()

_SUB_RE = re.compile(r"\$\{([^}!][^}]*)\}")


def _fn_sub(r: Resolver, arg: Any) -> str:
    if isinstance(arg, list):
        text, variables = arg[0], {k: r.resolve(v) for k, v in (arg[1] or {}).items()}
    else:
        text, variables = arg, {}

    def repl(m: re.Match) -> str:
        expr = m.group(1).strip()
        if expr in variables:
            return str(variables[expr])
        if "." in expr and not expr.startswith("AWS::"):
            lid, attr = expr.split(".", 1)
            return str(r.getatt(lid, attr))
        return str(r.ref(expr))

    return _SUB_RE.sub(repl, text).replace("${!", "${")


def _fn_select(r: Resolver, arg: Any) -> Any:
    index, items = r.resolve(arg[0]), r.resolve(arg[1])
    return items[int(index)]


def _fn_find_in_map(r: Resolver, arg: Any) -> Any:
    name, top, second = (r.resolve(a) for a in arg[:3])
    return r.template["Mappings"][name][top][second]


def _fn_if(r: Resolver, arg: Any) -> Any:
    cond, yes, no = arg
    return r.resolve(yes if r.condition(cond) else no)


_INTRINSICS = {
    "Ref": lambda r, a: r.ref(r.resolve(a)),
    "Condition": lambda r, a: r.condition(a),
    "Fn::GetAtt": lambda r, a: r.getatt(*(a.split(".", 1) if isinstance(a, str) else r.resolve(a))),
    "Fn::Sub": _fn_sub,
    "Fn::Join": lambda r, a: str(r.resolve(a[0])).join(str(x) for x in r.resolve(a[1])),
    "Fn::Split": lambda r, a: str(r.resolve(a[1])).split(r.resolve(a[0])),
    "Fn::Select": _fn_select,
    "Fn::FindInMap": _fn_find_in_map,
    "Fn::If": _fn_if,
    "Fn::Equals": lambda r, a: str(r.resolve(a[0])) == str(r.resolve(a[1])),
    "Fn::Not": lambda r, a: not r.resolve(a[0]),
    "Fn::And": lambda r, a: all(r.resolve(x) for x in a),
    "Fn::Or": lambda r, a: any(r.resolve(x) for x in a),
    "Fn::Base64": lambda r, a: __import__("base64").b64encode(str(r.resolve(a)).encode()).decode(),
    "Fn::GetAZs": lambda r, a: [f"{r.region}{s}" for s in "abc"],
    "Fn::ToJsonString": lambda r, a: json.dumps(r.resolve(a), separators=(",", ":")),
    "Fn::Length": lambda r, a: len(r.resolve(a)),
    "Fn::ImportValue": lambda r, a: _unsupported("Fn::ImportValue"),
    "Fn::Cidr": lambda r, a: _unsupported("Fn::Cidr"),
    "Fn::Transform": lambda r, a: _unsupported("Fn::Transform"),
}


def _unsupported(name: str) -> Any:
    raise KeyError(f"{name} cannot be resolved locally")


# --------------------------------------------------------------------------------------------
# Resource creation
# --------------------------------------------------------------------------------------------


def _log(msg: str) -> None:
    print(f"[local_stack] {msg}", file=sys.stderr, flush=True)


def _err_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def create_tables(session, r: Resolver, prefix: str, endpoint: str) -> None:
    ddb = session.client("dynamodb", endpoint_url=endpoint)
    for lid, res in resources_of_type(r.template, "AWS::DynamoDB::Table").items():
        props = r.resolve(res.get("Properties") or {})
        name = f"{prefix}{lid}"
        billing = props.get("BillingMode", "PROVISIONED")
        provisioned = billing != "PAY_PER_REQUEST"
        default_tp = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}

        def index_spec(ix: dict) -> dict:
            out = {
                "IndexName": ix["IndexName"],
                "KeySchema": ix["KeySchema"],
                "Projection": ix.get("Projection") or {"ProjectionType": "ALL"},
            }
            if provisioned and "ProvisionedThroughput" in ix:
                out["ProvisionedThroughput"] = {
                    k: int(v) for k, v in ix["ProvisionedThroughput"].items()
                }
            elif provisioned:
                out["ProvisionedThroughput"] = default_tp
            return out

        gsis = [index_spec(ix) for ix in props.get("GlobalSecondaryIndexes") or []]
        lsis = [
            {k: v for k, v in index_spec(ix).items() if k != "ProvisionedThroughput"}
            for ix in props.get("LocalSecondaryIndexes") or []
        ]
        stream = props.get("StreamSpecification")

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
                "BillingMode": billing,
            }
            if provisioned:
                kwargs["ProvisionedThroughput"] = {
                    k: int(v) for k, v in (props.get("ProvisionedThroughput") or default_tp).items()
                }
            if gsis:
                kwargs["GlobalSecondaryIndexes"] = gsis
            if lsis:
                kwargs["LocalSecondaryIndexes"] = lsis
            if stream:
                kwargs["StreamSpecification"] = {
                    "StreamEnabled": True,
                    "StreamViewType": stream["StreamViewType"],
                }
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
            if stream and not (existing.get("StreamSpecification") or {}).get("StreamEnabled"):
                ddb.update_table(
                    TableName=name,
                    StreamSpecification={
                        "StreamEnabled": True,
                        "StreamViewType": stream["StreamViewType"],
                    },
                )
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


_SQS_ATTRS = [
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
]


def _queue_deps(props: Any) -> set[str]:
    """Logical ids of resources a queue's properties refer to (e.g. its DLQ)."""
    deps: set[str] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            if "Fn::GetAtt" in v and len(v) == 1:
                a = v["Fn::GetAtt"]
                deps.add(a.split(".", 1)[0] if isinstance(a, str) else a[0])
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


def create_queues(session, r: Resolver, prefix: str, endpoint: str, visibility_scale: float = 1.0) -> None:
    queues = resources_of_type(r.template, "AWS::SQS::Queue")
    if not queues:
        return
    sqs = session.client("sqs", endpoint_url=endpoint)
    pending = dict(queues)
    while pending:
        ready = [
            lid
            for lid, res in pending.items()
            if not (_queue_deps(res.get("Properties") or {}) & set(pending))
        ]
        if not ready:
            raise RuntimeError(f"circular references between queues: {sorted(pending)}")
        for lid in ready:
            res = pending.pop(lid)
            props = scaled_visibility(r.resolve(res.get("Properties") or {}), visibility_scale)
            fifo = str(props.get("FifoQueue", False)).lower() == "true"
            name = f"{prefix}{lid}" + (".fifo" if fifo else "")
            attrs = {k: _attr_str(props[k]) for k in _SQS_ATTRS if k in props}
            for k in ("RedrivePolicy", "RedriveAllowPolicy"):
                if k in props:
                    v = props[k]
                    attrs[k] = v if isinstance(v, str) else json.dumps(v)
            create_attrs = dict(attrs)
            if fifo:
                create_attrs["FifoQueue"] = "true"
            try:
                url = sqs.create_queue(QueueName=name, Attributes=create_attrs)["QueueUrl"]
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
            r.resources[lid] = {"Ref": url, "QueueUrl": url, "Arn": arn, "QueueName": name}


def _attr_str(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def create_email_identities(session, r: Resolver, endpoint: str) -> None:
    identities = resources_of_type(r.template, "AWS::SES::EmailIdentity")
    if not identities:
        return
    sesv2 = session.client("sesv2", endpoint_url=endpoint)
    ses = session.client("ses", endpoint_url=endpoint)
    for lid, res in identities.items():
        identity = r.resolve((res.get("Properties") or {})["EmailIdentity"])
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
            try:
                sesv2.create_email_identity(EmailIdentity=name)
                _log(f"created SES identity {name}")
            except Exception as exc:
                if "AlreadyExists" not in _err_code(exc):
                    raise
        # moto's SES v1 and v2 share state; mark it verified the v1 way as well (idempotent).
        try:
            if "@" in identity:
                ses.verify_email_identity(EmailAddress=identity)
            ses.verify_domain_identity(Domain=names[-1])
        except Exception as exc:  # pragma: no cover - best effort
            _log(f"warning: SES v1 verification of {identity} failed: {exc}")
        r.resources[lid] = {"Ref": identity}


# --------------------------------------------------------------------------------------------
# Env file
# --------------------------------------------------------------------------------------------


def function_environment(template: dict, r: Resolver) -> dict[str, str]:
    """Globals.Function environment, then any per-function variables (first value wins)."""
    env: dict[str, str] = {}
    glob = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {})
    sources = [("Globals", glob.get("Variables") or {})]
    for lid, res in resources_of_type(template, "AWS::Serverless::Function").items():
        fenv = ((res.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        sources.append((lid, fenv))
    for origin, variables in sources:
        for key, raw in variables.items():
            value = r.resolve(raw)
            if value is _NOVALUE:
                continue
            value = _attr_str(value)
            if key in env and env[key] != value:
                _log(f"warning: {origin} sets {key}={value!r}, keeping {env[key]!r}")
                continue
            env[key] = value
    return env


def _referenced_params(template: dict) -> set[str]:
    """Template parameters referenced (via Ref) by the functions' environment variables."""
    params = set(template.get("Parameters") or {})
    found: set[str] = set()
    glob = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    trees = [glob] + [
        (res.get("Properties") or {}).get("Environment") or {}
        for res in resources_of_type(template, "AWS::Serverless::Function").values()
    ]
    for tree in trees:
        found |= _queue_deps(tree) & params
        for m in _SUB_RE.finditer(json.dumps(tree)):
            if m.group(1).strip() in params:
                found.add(m.group(1).strip())
    return found


# Secrets the functions read from a file named by <NAME>_FILE: cargo lambda watch logs every
# function's environment when it spawns one, so a secret in the environment ends up in logs.
FILE_SECRETS = ("ADMIN_TOKEN_SECRET",)


def move_secrets_to_files(env_file: Path, env: dict[str, str]) -> None:
    for name in FILE_SECRETS:
        if name not in env:
            continue
        secret_file = env_file.with_name(f"{env_file.name}.{name.lower()}").resolve()
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(env.pop(name))
        env[f"{name}_FILE"] = str(secret_file)


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
                    help="multiply each queue's VisibilityTimeout from the template by F (at least 1 s)")
    args = ap.parse_args(argv)
    if args.queue_visibility_scale <= 0:
        raise SystemExit("--queue-visibility-scale must be > 0")

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        raise SystemExit("AWS_ENDPOINT_URL must point at the local moto server")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    access_key = os.environ.get("AWS_ACCESS_KEY_ID") or "testing"
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY") or "testing"

    import boto3  # imported late so the parsing helpers work without boto3

    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
    )
    template = load_template(args.template)
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
        create_email_identities(session, resolver, endpoint)
    except KeyError as exc:
        raise SystemExit(f"local_stack: {exc.args[0]}") from exc
    _log(f"local stack ready in {time.monotonic() - started:.1f}s at {endpoint}")

    if args.env_file:
        try:
            env = function_environment(template, resolver)
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
        move_secrets_to_files(Path(args.env_file), env)
        write_env_file(Path(args.env_file), env)
        _log(f"wrote {args.env_file} ({len(env)} variables)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
