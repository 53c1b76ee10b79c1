#!/usr/bin/env python3
"""Each function's IAM policy is exactly what its code calls.

Three sources must agree, per function:
  - the grants in template.yaml (its inline `Policies` statements), as (action, resource) pairs
    with resources named by logical id: `CallsTable`, `CallsTable/index/byRestaurant`,
    `identity/${SenderEmail}` (an ARN's `arn:${AWS::Partition}:<service>:...:` prefix dropped);
  - `functions/<binary>/iam.txt`, the list kept beside the code: one `action resource` per line,
    `# untested: why` after a grant no local test exercises;
  - the AWS calls the function really made during a local test run, which the fault proxy
    records by caller (`GET /__faults__/calls`; the SDK's app name is the function's name).

infra/tests/test_iam.py checks the first two (and that every listed action is called somewhere
in the code); after the e2e suite, test.sh runs

    iam_check.py --proxy URL [--strict]

which fails when a function made a call its policy does not grant (AccessDenied on AWS, which
moto never enforces) and, with --strict (the full suite), when a grant was never used and is not
marked untested.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import local_stack  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LOCAL_PREFIX = "pulsara-"  # local_stack.py's default resource name prefix

_ARN_PREFIX = re.compile(r"^arn:\$\{AWS::Partition\}:[a-z0-9-]+:\$\{AWS::Region\}:"
                         r"\$\{AWS::AccountId\}:")
_SUB_ATTR = re.compile(r"\$\{([A-Za-z0-9]+)\.Arn\}")


class PolicyError(ValueError):
    """A policy the checks cannot read as exact grants."""


def resource_name(value) -> str:
    """A statement's resource as the logical name the lists use."""
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Fn::GetAtt" and arg[1] == "Arn":
            return arg[0]
        if fn == "Fn::GetAtt" and arg[1] == "StreamArn":
            return f"{arg[0]}/stream"
        if fn == "Ref":
            return arg
        if fn == "Fn::Sub" and isinstance(arg, str):
            return _SUB_ATTR.sub(r"\1", _ARN_PREFIX.sub("", arg))
    if isinstance(value, str):
        return value
    raise PolicyError(f"resource {value!r} is not one the checks read")


def binaries(template: dict) -> dict[str, dict]:
    """binary -> the function resource."""
    fns = local_stack.resources_of_type(template, "AWS::Serverless::Function")
    return {fn["Metadata"]["BuildProperties"]["Binary"]: fn for fn in fns.values()}


def granted(fn: dict) -> set[tuple[str, str]]:
    """A function's inline grants as (action, resource) pairs."""
    pairs = set()
    for policy in fn["Properties"].get("Policies") or []:
        if not isinstance(policy, dict) or "Statement" not in policy:
            raise PolicyError(f"policy {policy!r}: only inline statements are exact grants")
        for st in policy["Statement"]:
            if st.get("Effect") != "Allow":
                continue
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            for action in actions:
                for r in res:
                    pairs.add((action, resource_name(r)))
    return pairs


def declared(binary: str) -> dict[tuple[str, str], str]:
    """functions/<binary>/iam.txt: (action, resource) -> its comment ("" for none)."""
    out = {}
    path = REPO / "functions" / binary / "iam.txt"
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line, _, comment = raw.partition("#")
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise PolicyError(f"{path}:{n}: want `action resource`, got {raw!r}")
        out[(parts[0], parts[1])] = comment.strip()
    return out


def untested(comment: str) -> bool:
    return comment.startswith("untested:") and len(comment) > len("untested:") + 3


# -- what the functions really called ---------------------------------------------------------

def _logical(physical: str, kms_keys: dict[str, str]) -> str:
    if physical in kms_keys:
        return kms_keys[physical]
    name = physical
    if name.startswith("arn:") and ":secret:" in name:
        # Secrets Manager appends "-" and six random characters to the name in the ARN.
        name = re.sub(r"-[A-Za-z0-9]{6}$", "", name.split(":secret:", 1)[1])
    return name[len(LOCAL_PREFIX):] if name.startswith(LOCAL_PREFIX) else name


def kms_key_names(endpoint: str) -> dict[str, str]:
    """KMS key id and ARN -> the logical id of the template key (alias alias/pulsara-<lid>)."""
    import boto3

    kms = boto3.client("kms", endpoint_url=endpoint)
    out = {}
    for alias in kms.list_aliases()["Aliases"]:
        name = alias["AliasName"].removeprefix("alias/")
        if "TargetKeyId" in alias and name.startswith(LOCAL_PREFIX):
            meta = kms.describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]
            lid = name[len(LOCAL_PREFIX):]
            out[meta["KeyId"]] = out[meta["Arn"]] = lid
    return out


def observed(proxy: str, kms_keys: dict[str, str]) -> dict[str, set[tuple[str, str]]]:
    with urllib.request.urlopen(f"{proxy.rstrip('/')}/__faults__/calls", timeout=10) as r:
        calls = json.load(r)["calls"]
    out: dict[str, set[tuple[str, str]]] = {}
    for c in calls:
        res = "*" if c["resource"] == "*" else _logical(c["resource"], kms_keys)
        out.setdefault(c["caller"], set()).add((c["action"], res))
    return out


def covers(grants: set[tuple[str, str]], action: str, resource: str) -> bool:
    if resource == "*":  # the proxy could not tell: any grant of the action
        return any(a == action for a, _ in grants)
    return (action, resource) in grants


def check_observed(template: dict, seen: dict[str, set[tuple[str, str]]],
                   strict: bool) -> list[str]:
    problems = []
    fns = binaries(template)
    for caller in sorted(seen):
        if caller not in fns:
            # Tools (pulsara-admin, the tests) are not functions; nothing to check.
            continue
        grants = granted(fns[caller])
        for action, res in sorted(seen[caller]):
            if not covers(grants, action, res):
                problems.append(f"{caller}: calls {action} on {res}, which its policy does not "
                                "grant (AccessDenied on AWS)")
    if strict:
        for binary, fn in sorted(fns.items()):
            calls = seen.get(binary, set())
            notes = declared(binary)
            for action, res in sorted(granted(fn)):
                used = any(a == action and r in (res, "*") for a, r in calls)
                if not used and not untested(notes.get((action, res), "")):
                    problems.append(f"{binary}: {action} on {res} is granted but no test made "
                                    "the call (remove it, or mark it `# untested: why` in "
                                    f"functions/{binary}/iam.txt)")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proxy", required=True, help="the fault proxy's URL")
    ap.add_argument("--moto", required=True, help="moto's URL (to name the KMS keys)")
    ap.add_argument("--template", default=str(local_stack.DEFAULT_TEMPLATE))
    ap.add_argument("--dump", help="also write the observed calls here (JSON)")
    ap.add_argument("--strict", action="store_true",
                    help="also fail on grants no test used (after the full suite)")
    args = ap.parse_args(argv)
    template = local_stack.load_template(args.template)
    seen = observed(args.proxy, kms_key_names(args.moto))
    if args.dump:
        Path(args.dump).parent.mkdir(parents=True, exist_ok=True)
        Path(args.dump).write_text(json.dumps(
            {c: sorted(map(list, calls)) for c, calls in sorted(seen.items())}, indent=1))
    callers = sorted(c for c in seen if c in binaries(template))
    print(f"iam_check: AWS calls of {len(callers)} functions: {', '.join(callers)}")
    problems = check_observed(template, seen, args.strict)
    for p in problems:
        print(f"iam_check: {p}", file=sys.stderr)
    if problems:
        return 1
    print("iam_check: every call is granted" + (", every grant used" if args.strict else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
