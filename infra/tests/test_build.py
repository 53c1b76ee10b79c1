"""`sam build --build-in-source` builds every function through the root Makefile.

template.yaml gives each function
`Metadata: {BuildMethod: makefile, BuildProperties: {Binary: <bin>}}`.
SAM runs `make build-<LogicalId>` per function; the Makefile builds all of the template's binaries
in one `cargo lambda build` and copies `<bin>/bootstrap` into the function's artifacts directory.
The Makefile reads the binaries from the template itself (with awk), so these tests check that it
finds exactly what infra/local_stack.py finds, and that each binary is a bin of the workspace.
Then template checks a real account relies on (the alarm topic's key, log retention, consumer
concurrency). No local stack needed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tomllib

import pytest
from helpers import REPO, TEMPLATE, local_stack

MAKEFILE = REPO / "Makefile"
BENCH_BASELINE = REPO / "infra" / "bench" / "baseline"

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def functions() -> dict[str, dict]:
    return local_stack.resources_of_type(
        local_stack.load_template(TEMPLATE), "AWS::Serverless::Function"
    )


def make(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", "--no-print-directory", "-f", str(MAKEFILE), f"TEMPLATE={TEMPLATE}", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_function_builds_with_the_makefile():
    assert functions(), "template.yaml declares no functions"
    for lid, res in functions().items():
        meta = res.get("Metadata") or {}
        assert meta.get("BuildMethod") == "makefile", (
            f"{lid}: Metadata.BuildMethod must be makefile (the root Makefile builds every "
            f"function in one cargo invocation), got {meta.get('BuildMethod')!r}"
        )
        binary = (meta.get("BuildProperties") or {}).get("Binary")
        assert binary, f"{lid}: Metadata.BuildProperties.Binary names the function's cargo binary"


@needs_make
def test_makefile_finds_the_template_binaries():
    out = make("print-binaries")
    assert out.returncode == 0, out.stderr
    found = dict(line.split("=", 1) for line in out.stdout.split())
    assert found == local_stack.function_binaries(local_stack.load_template(TEMPLATE))


@needs_make
def test_build_target_copies_the_function_bootstrap(tmp_path):
    for lid, binary in local_stack.function_binaries(local_stack.load_template(TEMPLATE)).items():
        out = make("-n", f"build-{lid}", ARTIFACTS_DIR=str(tmp_path / lid))
        assert out.returncode == 0, out.stderr
        assert "cargo lambda build --release --arm64" in out.stdout
        assert f"--bin {binary}" in out.stdout
        assert f"/{binary}/bootstrap' '{tmp_path / lid}/bootstrap'" in out.stdout, out.stdout


@needs_make
def test_build_target_refuses_unknown_functions(tmp_path):
    out = make("-n", "build-NoSuchFunction", ARTIFACTS_DIR=str(tmp_path))
    assert out.returncode != 0
    assert "cargo lambda build" not in out.stdout  # fails before building anything
    assert "NoSuchFunction" in out.stderr


@pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo not installed")
def test_binaries_are_workspace_bins():
    meta = subprocess.run(
        ["cargo", "metadata", "--no-deps", "--format-version", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    bins = {
        target["name"]
        for package in json.loads(meta.stdout)["packages"]
        for target in package["targets"]
        if "bin" in target["kind"]
    }
    for lid, binary in local_stack.function_binaries(local_stack.load_template(TEMPLATE)).items():
        assert binary in bins, f"{lid}: Binary {binary!r} is not a bin target of the workspace"


def test_bench_baselines_are_workspace_members_but_not_functions():
    """infra/bench/baseline (the ring-path bench's baselines) is a workspace member, so it gets
    the functions' release profile, and deliberately not a template function: `sam build` (and
    the Makefile) never build or deploy it."""
    members = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
    assert "infra/bench/baseline" in members
    manifest = tomllib.loads((BENCH_BASELINE / "Cargo.toml").read_text())
    baseline_bins = {b["name"] for b in manifest["bin"]}
    assert baseline_bins == {"baseline-getitem", "baseline-config"}
    template = local_stack.load_template(TEMPLATE)
    template_bins = set(local_stack.function_binaries(template).values())
    assert not baseline_bins & template_bins


def test_memory_sizes_are_template_parameters():
    """Every function's memory is a Number parameter (FunctionMemorySize for all, unless the
    function names its own), so a deployment can size them without editing the template.
    auth-login gets enough for a sign-in under 300 ms: Lambda gives MemorySize/1769 of a
    vCPU, and one argon2id hash at OWASP parameters measured 40-75 ms at 1024 MB's share
    (100-155 ms at 512, 0.4-0.9 s at 128) on x86; arm64 has no AVX2 path, hence the margin."""
    template = local_stack.load_template(TEMPLATE)
    params = template["Parameters"]

    def sized_by(value) -> str:
        assert isinstance(value, dict) and set(value) == {"Ref"}, f"not a !Ref: {value!r}"
        spec = params[value["Ref"]]
        assert spec["Type"] == "Number" and 128 <= int(spec["Default"]) <= 10240, spec
        return value["Ref"]

    assert sized_by(template["Globals"]["Function"]["MemorySize"]) == "FunctionMemorySize"
    own = {
        lid: sized_by(res["Properties"]["MemorySize"])
        for lid, res in functions().items()
        if "MemorySize" in res["Properties"]
    }
    assert own == {
        "AuthLoginFunction": "LoginMemorySize",
        "RestaurantConfigFunction": "RingPathMemorySize",
        # Twilio's voice webhook and ElevenLabs' conversation-init are ring-time too.
        "PlatformHooksFunction": "RingPathMemorySize",
    }
    assert int(params["LoginMemorySize"]["Default"]) >= 1024
    assert int(params["RingPathMemorySize"]["Default"]) == 128


# --- ready for a real account (issue 12, in part) -------------------------------------------


def resources() -> dict[str, dict]:
    return local_stack.load_template(TEMPLATE)["Resources"]


def test_alarm_topic_uses_a_key_cloudwatch_may_use():
    """The AWS-managed alias/aws/sns key's policy does not let CloudWatch use it: alarm actions
    on a topic encrypted with it fail silently. The topic's key is ours, with a statement for
    CloudWatch, and every alarm notifies through that topic."""
    res = resources()
    assert res["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    key = res["AlarmTopicKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [s for s in statements
                  if (s.get("Principal") or {}).get("Service") == "cloudwatch.amazonaws.com"]
    assert len(cloudwatch) == 1 and cloudwatch[0]["Effect"] == "Allow"
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"])
    assert "aws:SourceAccount" in cloudwatch[0]["Condition"]["StringEquals"]
    alarms = {lid: r for lid, r in res.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert alarms
    for lid, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], lid


def test_every_function_logs_to_its_own_group_with_retention():
    """Logs are not kept forever: each function writes to a group the stack creates (before the
    function, so Lambda never makes one without retention), kept LogRetentionDays (30)."""
    template = local_stack.load_template(TEMPLATE)
    res = template["Resources"]
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30
    groups = set()
    for lid, fn in functions().items():
        ref = fn["Properties"]["LoggingConfig"]["LogGroup"]
        assert set(ref) == {"Ref"}, lid
        group = res[ref["Ref"]]
        assert group["Type"] == "AWS::Logs::LogGroup", lid
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, lid
        assert group["DeletionPolicy"] == "Delete", lid
        groups.add(ref["Ref"])
    assert len(groups) == len(functions()), "one group per function"
    assert not {lid for lid, r in res.items() if r["Type"] == "AWS::Logs::LogGroup"} - groups


def test_platform_log_lines_and_tracing_are_parameters_with_cheap_defaults():
    """Lambda's START/END/REPORT lines are most of a call's log bytes and X-Ray would trace
    nearly every call at a restaurant chain's volume: both are parameters, off by default, and
    every function inherits them (no function sets its own)."""
    template = local_stack.load_template(TEMPLATE)
    params = template["Parameters"]
    assert params["PlatformLogLevel"]["Default"] == "WARN"
    assert set(params["PlatformLogLevel"]["AllowedValues"]) == {"DEBUG", "INFO", "WARN"}
    assert params["TracingMode"]["Default"] == "PassThrough"
    assert set(params["TracingMode"]["AllowedValues"]) == {"Active", "PassThrough"}
    glob = template["Globals"]["Function"]
    assert glob["Tracing"] == {"Ref": "TracingMode"}
    # SystemLogLevel needs the JSON log format; our own lines are JSON already.
    assert glob["LoggingConfig"] == {"LogFormat": "JSON",
                                     "SystemLogLevel": {"Ref": "PlatformLogLevel"}}
    for lid, fn in functions().items():
        props = fn["Properties"]
        assert "Tracing" not in props, lid
        assert set(props["LoggingConfig"]) == {"LogGroup"}, lid


def test_queue_consumers_are_capped_so_they_cannot_starve_the_ring_path():
    """A webhook or e-mail backlog scales its consumer to at most ConsumerMaxConcurrency
    instances, leaving the account's concurrency to the functions a ringing phone calls."""
    template = local_stack.load_template(TEMPLATE)
    param = template["Parameters"]["ConsumerMaxConcurrency"]
    assert 2 <= int(param["Default"]) <= 10 and int(param["MinValue"]) == 2
    capped = {}
    for lid, fn in functions().items():
        for name, event in (fn["Properties"].get("Events") or {}).items():
            if event["Type"] == "SQS":
                capped[f"{lid}.{name}"] = event["Properties"].get("ScalingConfig")
    assert capped and all(c == {"MaximumConcurrency": {"Ref": "ConsumerMaxConcurrency"}}
                          for c in capped.values()), capped


def test_every_consumer_and_the_api_have_alarms():
    """Each event-driven function alarms on errors and throttles, each stream consumer on its
    iterator age, each consumed queue on its oldest message's age; SES on the account's bounce
    and complaint rates; the API on its 5xx rate and p99 latency."""
    res = resources()
    alarms = [r["Properties"] for r in res.values() if r["Type"] == "AWS::CloudWatch::Alarm"]

    def watched(namespace: str, metric: str) -> list:
        found = []
        for a in alarms:
            if a.get("Namespace") == namespace and a.get("MetricName") == metric:
                found.append([d["Value"] for d in a.get("Dimensions", [])])
            for m in a.get("Metrics", []):
                stat = (m.get("MetricStat") or {}).get("Metric") or {}
                if stat.get("Namespace") == namespace and stat.get("MetricName") == metric:
                    found.append([d["Value"] for d in stat.get("Dimensions", [])])
        return found

    for lid, fn in functions().items():
        events = (fn["Properties"].get("Events") or {}).values()
        kinds = {e["Type"] for e in events}
        if kinds & {"SQS", "DynamoDB", "SNS"}:
            for metric in ("Errors", "Throttles"):
                assert [{"Ref": lid}] in watched("AWS/Lambda", metric), (lid, metric)
        if "DynamoDB" in kinds:
            assert [{"Ref": lid}] in watched("AWS/Lambda", "IteratorAge"), lid
        for e in events:
            if e["Type"] == "SQS":
                queue = e["Properties"]["Queue"]["Fn::GetAtt"][0]
                assert [{"Fn::GetAtt": [queue, "QueueName"]}] in \
                    watched("AWS/SQS", "ApproximateAgeOfOldestMessage"), queue
    assert watched("AWS/SES", "Reputation.BounceRate") == [[]]
    assert watched("AWS/SES", "Reputation.ComplaintRate") == [[]]
    api = [{"Ref": "HttpApi"}, "v1"]
    assert api in watched("AWS/ApiGateway", "5xx")
    latency = [a for a in alarms if a.get("MetricName") == "Latency"]
    assert len(latency) == 1 and latency[0]["ExtendedStatistic"] == "p99"


# --- secrets (issue 12, item 3) ---------------------------------------------------------------

# Who signs or verifies admin tokens: sign-in signs, the admin routes verify.
ADMIN_TOKEN_FUNCTIONS = {"AuthLoginFunction", "CreateApiKeyFunction", "ApiKeysFunction",
                         "RestaurantsFunction", "CallsFunction"}
# Who seals webhook signing secrets (register, rotate) and who opens them (signs deliveries).
SEALING_FUNCTIONS = {"RegisterWebhookFunction", "WebhooksFunction", "IntegrationsFunction"}
OPENING_FUNCTIONS = {"WebhookDispatcherFunction", "PlatformHooksFunction"}
# What each may seal or open: webhook signing secrets, or an integration's two secrets.
INTEGRATION_PURPOSES = ["integration-platform-secret", "integration-elevenlabs-api-key"]
PURPOSES = {"IntegrationsFunction": INTEGRATION_PURPOSES,
            "PlatformHooksFunction": INTEGRATION_PURPOSES}


def statements_of(fn: dict) -> list[dict]:
    return [s for p in fn["Properties"].get("Policies") or [] if isinstance(p, dict)
            for s in p.get("Statement", [])]


def grants(fn: dict, prefix: str) -> list[tuple[str, object]]:
    """(action, resource) pairs of a function's policy whose action starts with `prefix`."""
    out = []
    for s in statements_of(fn):
        actions = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
        resources = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
        out += [(a, r) for a in actions if a.startswith(prefix) for r in resources]
    return out


def own_variables(fn: dict) -> dict:
    return (fn["Properties"].get("Environment") or {}).get("Variables") or {}


def test_the_admin_token_secret_is_generated_in_secrets_manager():
    """A fresh deploy needs no secret parameter: Secrets Manager generates 64 characters. No
    function has the secret in its environment; Globals has neither the secret nor its ARN."""
    template = local_stack.load_template(TEMPLATE)
    secret = template["Resources"]["AdminTokenSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    gen = secret["Properties"]["GenerateSecretString"]
    assert gen["PasswordLength"] >= 32 and "SecretStringTemplate" not in gen
    assert "AdminTokenSecret" not in (template.get("Parameters") or {})
    glob = template["Globals"]["Function"]["Environment"]["Variables"]
    assert not {k for k in glob if "SECRET" in k or "KMS" in k}, glob
    assert template["Outputs"]["AdminTokenSecretArn"]["Value"] == {"Ref": "AdminTokenSecret"}


def test_only_the_admin_token_functions_can_read_the_secret():
    """Exactly the functions that sign or verify admin tokens get the secret's ARN and
    secretsmanager:GetSecretValue on exactly that secret; no other function gets either."""
    for lid, fn in functions().items():
        env = own_variables(fn)
        sm = grants(fn, "secretsmanager:")
        if lid in ADMIN_TOKEN_FUNCTIONS:
            assert env.get("ADMIN_TOKEN_SECRET_ARN") == {"Ref": "AdminTokenSecret"}, lid
            assert sm == [("secretsmanager:GetSecretValue", {"Ref": "AdminTokenSecret"})], lid
        else:
            assert "ADMIN_TOKEN_SECRET_ARN" not in env and not sm, lid


def test_the_secrets_key_rotates_and_only_sealers_and_signers_may_use_it():
    """The secrets' KMS key rotates yearly, the account administers it (so IAM policies
    decide who uses it), and exactly: the registering and rotating functions may
    GenerateDataKey, the dispatcher and the platform hooks may Decrypt, each only for its own
    kind of secret (encryption context); no function gets any other KMS action or key."""
    res = resources()
    key = res["SecretsKey"]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    (root,) = key["Properties"]["KeyPolicy"]["Statement"]
    account = "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"
    assert root["Principal"] == {"AWS": {"Fn::Sub": account}}
    arn = {"Fn::GetAtt": ["SecretsKey", "Arn"]}
    for lid, fn in functions().items():
        kms = grants(fn, "kms:")
        env = own_variables(fn)
        expected = ("kms:GenerateDataKey" if lid in SEALING_FUNCTIONS
                    else "kms:Decrypt" if lid in OPENING_FUNCTIONS else None)
        if expected is None:
            assert not kms and "SECRETS_KMS_KEY_ARN" not in env, lid
            continue
        assert kms == [(expected, arn)], lid
        assert env["SECRETS_KMS_KEY_ARN"] == arn, lid
        (stmt,) = [s for s in statements_of(fn) if s["Action"] == [expected]]
        purpose = PURPOSES.get(lid, "webhook-signing-secret")
        assert stmt["Condition"] == {
            "StringEquals": {"kms:EncryptionContext:purpose": purpose}}, lid


def test_the_template_passes_cfn_lint():
    """What CI runs (cfn-lint; `sam validate --lint` is the same linter through SAM)."""
    lint = shutil.which("cfn-lint") or str(REPO / ".venv" / "bin" / "cfn-lint")
    if not os.path.exists(lint):
        pytest.skip("cfn-lint not installed")
    r = subprocess.run([lint, str(TEMPLATE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# --- e-mail: SES domain identity, configuration set, bounces and complaints (issue 12, item 2) -


def test_the_sender_domain_and_address_are_required_parameters():
    """No default sender: a deploy must name the domain it owns (and an address there)."""
    params = local_stack.load_template(TEMPLATE)["Parameters"]
    for name in ("SenderDomain", "SenderEmail"):
        assert "Default" not in params[name], name
        assert params[name]["AllowedPattern"], name
    import re

    domain = re.compile(params["SenderDomain"]["AllowedPattern"])
    assert domain.fullmatch("pulsara.example") and domain.fullmatch("mail.luigis-pizza.com")
    for bad in ("calls@pulsara.example", "Pulsara.Example", "localhost", "-x.example", ""):
        assert not domain.fullmatch(bad), bad
    env = local_stack.load_template(TEMPLATE)["Globals"]["Function"]["Environment"]["Variables"]
    assert env["SENDER_DOMAIN"] == {"Ref": "SenderDomain"}
    assert env["SES_CONFIGURATION_SET"] == {"Ref": "EmailConfigurationSet"}


def test_the_sender_identity_is_the_domain_with_dkim_mail_from_and_the_configuration_set():
    res = resources()
    [identity] = [r["Properties"] for r in res.values() if r["Type"] == "AWS::SES::EmailIdentity"]
    assert identity["EmailIdentity"] == {"Ref": "SenderDomain"}
    assert identity["DkimSigningAttributes"] == {"NextSigningKeyLength": "RSA_2048_BIT"}
    assert identity["MailFromAttributes"] == {"MailFromDomain": {"Fn::Sub": "mail.${SenderDomain}"},
                                              "BehaviorOnMxFailure": "USE_DEFAULT_VALUE"}
    assert identity["ConfigurationSetAttributes"] == {
        "ConfigurationSetName": {"Ref": "EmailConfigurationSet"}}
    config_set = res["EmailConfigurationSet"]
    assert config_set["Type"] == "AWS::SES::ConfigurationSet"
    assert config_set["Properties"]["ReputationOptions"] == {"ReputationMetricsEnabled": True}
    assert config_set["Properties"]["SendingOptions"] == {"SendingEnabled": True}
    outputs = local_stack.load_template(TEMPLATE)["Outputs"]
    text = json.dumps(outputs)
    for n in (1, 2, 3):
        assert f"SenderIdentity.DkimDNSTokenName{n}" in text
        assert f"SenderIdentity.DkimDNSTokenValue{n}" in text
    assert "feedback-smtp.${AWS::Region}.amazonses.com" in outputs["MailFromMxRecord"]["Value"][
        "Fn::Sub"]
    assert "v=spf1 include:amazonses.com ~all" in outputs["MailFromSpfRecord"]["Value"]["Fn::Sub"]
    assert "v=DMARC1" in outputs["DmarcRecordSuggestion"]["Value"]["Fn::Sub"]


def test_bounces_and_complaints_go_through_an_ses_only_topic_to_email_events():
    res = resources()
    [dest] = [r["Properties"] for r in res.values()
              if r["Type"] == "AWS::SES::ConfigurationSetEventDestination"]
    assert dest["ConfigurationSetName"] == {"Ref": "EmailConfigurationSet"}
    ed = dest["EventDestination"]
    assert ed["Enabled"] is True and sorted(ed["MatchingEventTypes"]) == ["bounce", "complaint"]
    topic = ed["SnsDestination"]["TopicARN"]
    assert topic == {"Ref": "EmailEventsTopic"}
    assert res["EmailEventsTopic"]["Type"] == "AWS::SNS::Topic"
    [policy] = [r["Properties"] for r in res.values() if r["Type"] == "AWS::SNS::TopicPolicy"]
    assert policy["Topics"] == [topic]
    [stmt] = policy["PolicyDocument"]["Statement"]
    assert stmt["Principal"] == {"Service": "ses.amazonaws.com"}
    assert stmt["Action"] == "sns:Publish" and stmt["Resource"] == topic
    assert stmt["Condition"]["StringEquals"] == {"AWS:SourceAccount": {"Ref": "AWS::AccountId"}}
    subscribers = {lid: e for lid, fn in functions().items()
                   for e in (fn["Properties"].get("Events") or {}).values() if e["Type"] == "SNS"}
    assert list(subscribers) == ["EmailEventsFunction"]
    assert subscribers["EmailEventsFunction"]["Properties"] == {"Topic": topic}
    fn = functions()["EmailEventsFunction"]
    assert fn["Metadata"]["BuildProperties"]["Binary"] == "email-events"
    # Exactly what it calls, on exact tables: no scans, no deletes, no wildcards.
    assert sorted(grants(fn, ""), key=json.dumps) == sorted([
        ("dynamodb:GetItem", {"Fn::GetAtt": ["CallsTable", "Arn"]}),
        ("dynamodb:UpdateItem", {"Fn::GetAtt": ["CallsTable", "Arn"]}),
        ("dynamodb:GetItem", {"Fn::GetAtt": ["RestaurantsTable", "Arn"]}),
        ("dynamodb:PutItem", {"Fn::GetAtt": ["RestaurantsTable", "Arn"]}),
        ("dynamodb:PutItem", {"Fn::GetAtt": ["PhoneNumbersTable", "Arn"]}),
    ], key=json.dumps)


def test_the_senders_may_send_only_from_the_domain_through_the_configuration_set():
    exact = [
        {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:"
                    "identity/${SenderDomain}"},
        {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:"
                    "configuration-set/${EmailConfigurationSet}"},
    ]
    senders = {}
    for lid, fn in functions().items():
        ses = grants(fn, "ses:")
        if ses:
            senders[lid] = ses
    expected = {"EmailSenderFunction", "CompleteCallFunction", "PlatformHooksFunction"}
    assert set(senders) == expected, senders
    for lid, ses in senders.items():
        assert sorted(ses, key=json.dumps) == sorted(
            [("ses:SendEmail", r) for r in exact], key=json.dumps), lid
        assert "*" not in json.dumps(ses), lid


def test_the_call_list_index_projects_exactly_a_list_row():
    """byRestaurant holds rows, not records: exactly the attributes a CallRow reads
    (domain::call::LISTED_ATTRIBUTES), and none the e-mail claim or a status write's
    bookkeeping changes, so those updates write no index item."""
    import re

    table = local_stack.load_template(TEMPLATE)["Resources"]["CallsTable"]["Properties"]
    (index,) = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == "byRestaurant"]
    projection = index["Projection"]
    assert projection["ProjectionType"] == "INCLUDE"
    listed = projection["NonKeyAttributes"]
    source = (REPO / "shared" / "src" / "domain" / "call.rs").read_text()
    block = re.search(r"LISTED_ATTRIBUTES: \[&str; \d+\] = \[(.*?)\];", source, re.S)
    assert block, "LISTED_ATTRIBUTES not found in call.rs"
    assert listed == re.findall(r'"(\w+)"', block.group(1))
    for changing in ("email", "updatedAt", "transcript", "completion", "finalTranscriptTag"):
        assert changing not in listed, changing


def test_samconfig_lets_the_readme_commands_run_without_questions():
    """`sam build` and `sam deploy --parameter-overrides ...` as the README shows them need no
    flags or answers: samconfig.toml builds in source, allows the per-function roles, makes the
    artifact bucket and skips the change-set prompt, and the README's deploy line sets every
    parameter that has no default."""
    config = tomllib.loads((REPO / "samconfig.toml").read_text())["default"]
    assert config["global"]["parameters"]["stack_name"] == "pulsara-ivr"
    assert config["build"]["parameters"]["build_in_source"] is True
    deploy = config["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True and deploy["confirm_changeset"] is False
    assert config["validate"]["parameters"]["lint"] is True
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Deploying with SAM"):]
    [deploy_line] = [line for line in section.splitlines() if line.startswith("sam deploy ")]
    required = [name for name, p in local_stack.load_template(TEMPLATE)["Parameters"].items()
                if "Default" not in p]
    assert required, "SenderDomain and SenderEmail have no default"
    for name in required:
        assert f" {name}=" in deploy_line, name
    assert any(line.strip() == "sam build" or line.startswith("sam build ")
               for line in section.splitlines())
