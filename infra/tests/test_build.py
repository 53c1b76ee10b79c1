"""`sam build --build-in-source` builds every function through the root Makefile.

template.yaml gives each function
`Metadata: {BuildMethod: makefile, BuildProperties: {Binary: <bin>}}`.
SAM runs `make build-<LogicalId>` per function; the Makefile builds all of the template's binaries
in one `cargo lambda build` and copies `<bin>/bootstrap` into the function's artifacts directory.
The Makefile reads the binaries from the template itself (with awk), so these tests check that it
finds exactly what infra/local_stack.py finds, and that each binary is a bin of the workspace.
No local stack needed.
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
    }
    assert int(params["LoginMemorySize"]["Default"]) >= 1024
    assert int(params["RingPathMemorySize"]["Default"]) == 128
