"""Each function's policy is exactly the list kept beside its code (functions/<fn>/iam.txt): no
wildcard, no action the code never calls. What the functions really call is checked against the
same grants after the e2e run (infra/iam_check.py, run by test.sh). No local stack needed."""
from __future__ import annotations

import re

import iam_check
import pytest
from helpers import REPO, TEMPLATE, local_stack

TEMPLATE_DATA = local_stack.load_template(TEMPLATE)
FUNCTIONS = iam_check.binaries(TEMPLATE_DATA)

# How the Rust SDK calls each action (a transaction's parts are builders of their own).
CALLS = {
    "dynamodb:GetItem": [r"\.get_item\(\)", r"\bGet::builder\("],
    "dynamodb:PutItem": [r"\.put_item\(\)", r"\bPut::builder\("],
    "dynamodb:UpdateItem": [r"\.update_item\(\)", r"\bUpdate::builder\("],
    "dynamodb:DeleteItem": [r"\.delete_item\(\)", r"\bDelete::builder\("],
    "dynamodb:ConditionCheckItem": [r"\bConditionCheck::builder\("],
    "dynamodb:Query": [r"\.query\(\)"],
    "dynamodb:Scan": [r"\.scan\(\)"],
    "dynamodb:BatchGetItem": [r"\.batch_get_item\(\)"],
    "dynamodb:BatchWriteItem": [r"\.batch_write_item\(\)"],
    "sqs:SendMessage": [r"\.send_message(_batch)?\(\)"],
    "sqs:ChangeMessageVisibility": [r"\.change_message_visibility(_batch)?\(\)"],
    "sqs:DeleteMessage": [r"\.delete_message(_batch)?\(\)"],
    "ses:SendEmail": [r"\.send_email\(\)"],
    "kms:GenerateDataKey": [r"\.generate_data_key\(\)"],
    "kms:Decrypt": [r"\.decrypt\(\)"],
    "secretsmanager:GetSecretValue": [r"\.get_secret_value\(\)"],
}


def sources(binary: str) -> str:
    """The function's crate and the shared crate it is built from."""
    files = [*sorted((REPO / "functions" / binary / "src").rglob("*.rs")),
             *sorted((REPO / "shared" / "src").rglob("*.rs"))]
    return "\n".join(p.read_text() for p in files)


def test_every_function_has_a_list():
    assert FUNCTIONS
    for binary in FUNCTIONS:
        assert (REPO / "functions" / binary / "iam.txt").is_file(), binary


@pytest.mark.parametrize("binary", sorted(FUNCTIONS))
def test_policy_is_exactly_the_list_beside_the_code(binary):
    grants = iam_check.granted(FUNCTIONS[binary])
    listed = set(iam_check.declared(binary))
    assert grants == listed, (
        f"template.yaml grants {binary} {sorted(grants - listed)} beyond "
        f"functions/{binary}/iam.txt, which lists {sorted(listed - grants)} not granted")


@pytest.mark.parametrize("binary", sorted(FUNCTIONS))
def test_no_wildcard_action_or_resource(binary):
    for action, resource in iam_check.granted(FUNCTIONS[binary]):
        assert "*" not in action, (binary, action)
        assert "*" not in resource, (binary, action, resource)


@pytest.mark.parametrize("binary", sorted(FUNCTIONS))
def test_every_granted_action_is_called_by_the_code(binary):
    code = sources(binary)
    for action in sorted({a for a, _ in iam_check.granted(FUNCTIONS[binary])}):
        patterns = CALLS.get(action)
        assert patterns, f"{action}: add how the SDK calls it to CALLS"
        assert any(re.search(p, code) for p in patterns), (
            f"{binary} is granted {action}, which neither its crate nor the shared crate calls")


def test_untested_grants_say_why():
    for binary in FUNCTIONS:
        for pair, comment in iam_check.declared(binary).items():
            if comment.startswith("untested"):
                assert iam_check.untested(comment), (binary, pair, comment)


def test_resource_names_read_as_the_lists_write_them():
    assert iam_check.resource_name({"Fn::GetAtt": ["CallsTable", "Arn"]}) == "CallsTable"
    assert iam_check.resource_name(
        {"Fn::Sub": "${CallsTable.Arn}/index/byRestaurant"}) == "CallsTable/index/byRestaurant"
    assert iam_check.resource_name(
        {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:"
                    "identity/${SenderEmail}"}) == "identity/${SenderEmail}"
    assert iam_check.resource_name({"Ref": "AdminTokenSecret"}) == "AdminTokenSecret"
    with pytest.raises(iam_check.PolicyError):
        iam_check.resource_name({"Fn::Join": ["", ["a"]]})


def test_observed_calls_are_checked_against_the_grants():
    """The after-run check: a call the policy lacks fails, a grant no call used fails under
    --strict unless marked untested, a resource the proxy could not name matches any grant of
    its action, and tools that are not functions are not checked."""
    binary = "restaurant-config"
    grants = iam_check.granted(FUNCTIONS[binary])
    seen = {binary: set(grants)}
    assert not [p for p in iam_check.check_observed(TEMPLATE_DATA, seen, strict=True)
                if p.startswith(f"{binary}:")]
    seen[binary].add(("dynamodb:Scan", "RestaurantsTable"))
    problems = iam_check.check_observed(TEMPLATE_DATA, seen, strict=False)
    assert problems == [f"{binary}: calls dynamodb:Scan on RestaurantsTable, which its policy "
                        "does not grant (AccessDenied on AWS)"]
    one = sorted(grants)[0]
    seen = {binary: set(grants) - {one}}
    strict = [p for p in iam_check.check_observed(TEMPLATE_DATA, seen, strict=True)
              if p.startswith(f"{binary}:")]
    assert strict and one[0] in strict[0]
    assert iam_check.covers(grants, one[0], "*")
    assert not iam_check.covers(grants, "dynamodb:Scan", "*")
    assert iam_check.check_observed(
        TEMPLATE_DATA, {"pulsara-admin": {("dynamodb:Scan", "X")}}, strict=False) == []
