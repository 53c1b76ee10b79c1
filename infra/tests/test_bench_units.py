"""Unit tests of the ring-path bench's pure parts (no stack, no root): memory sizes read from
the template (Globals, per function, `!Ref` to a parameter's default) and the CPU quota's
period and quota arithmetic."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import ring  # noqa: E402
import runtime_bench  # noqa: E402

TEMPLATE = """\
Parameters:
  ConfigMemory:
    Type: Number
    Default: 512
Globals:
  Function:
    MemorySize: 256
Resources:
  ConfigFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile, BuildProperties: {Binary: restaurant-config}}
    Properties:
      MemorySize: !Ref ConfigMemory
      Environment: {Variables: {T: !GetAtt Table.Arn}}
  LoginFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile, BuildProperties: {Binary: auth-login}}
    Properties: {MemorySize: 1024}
  OtherFunction:
    Type: AWS::Serverless::Function
    Metadata: {BuildMethod: makefile, BuildProperties: {Binary: calls}}
    Properties: {}
"""


def test_memory_sizes_follow_globals_functions_and_parameters(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    assert ring.memory_sizes(path) == {"restaurant-config": 512, "auth-login": 1024, "calls": 256}


def test_memory_size_ref_without_default_fails_loudly(tmp_path):
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.replace("    Default: 512\n", ""))
    with pytest.raises(SystemExit, match="ConfigMemory"):
        ring.memory_sizes(path)


def test_the_real_template_sizes_every_ring_function():
    sizes = ring.memory_sizes()
    for binary in [*ring.RING_FUNCTIONS, ring.LOGIN]:
        assert sizes[binary] >= 128


def test_quota_arithmetic_keeps_the_quota_over_a_millisecond():
    assert runtime_bench.quota_for(128 / ring.FULL_VCPU_MB) == (20_000, 1447)
    assert runtime_bench.quota_for(1.0) == (20_000, 20_000)
    period, quota = runtime_bench.quota_for(0.01)
    assert quota >= 1000 and abs(quota / period - 0.01) < 1e-3
    with pytest.raises(SystemExit):
        runtime_bench.quota_for(0.01, period_us=20_000)
