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


# --- cost model: DynamoDB item sizes and what a write costs --------------------------------

import zlib  # noqa: E402

import cost_model  # noqa: E402
import ddb_items  # noqa: E402


def test_item_sizes_follow_aws_rules():
    item = {
        "id": {"S": "abc"},  # 2 + 3
        "n": {"N": "12345"},  # 1 + 3 + 1
        "b": {"B": b"\0" * 10},  # 1 + 10
        "ok": {"BOOL": True},  # 2 + 1
        "l": {"L": [{"S": "xy"}, {"S": "z"}]},  # 1 + 3 + 3 + 2
        "m": {"M": {"k": {"S": "vv"}}},  # 1 + 3 + 4
    }
    assert ddb_items.item_size(item) == 5 + 5 + 11 + 3 + 9 + 8  # as store/item_size.rs
    assert ddb_items.number_size("1764720000000") == 4
    assert [ddb_items.write_units(n) for n in (1, 1024, 1025)] == [1, 1, 2]
    assert ddb_items.read_units(4097, consistent=False) == 1


def test_stored_transcripts_decode_both_formats():
    text = "aLuigi's, hi\ncI'd like a table \\\\ for 4\\nplease\n"
    turns = [{"role": "agent", "message": "Luigi's, hi"},
             {"role": "caller", "message": "I'd like a table \\ for 4\nplease"}]
    assert ddb_items.decode_transcript(b"\x01" + text.encode()) == turns
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw = deflate.compress(text.encode()) + deflate.flush()
    assert ddb_items.decode_transcript(b"\x02" + raw) == turns
    with pytest.raises(ValueError):
        ddb_items.decode_transcript(b"\x09x")


def call_item(**extra) -> dict:
    item = {"callId": {"S": "call_1"}, "restaurantId": {"S": "rst_1"}, "listKey": {"S": "k"},
            "status": {"S": "completed"}, "updatedAt": {"S": "t1"},
            "email": {"M": {"status": {"S": "sending"}}}, "emailStatus": {"S": "sending"}}
    item.update(extra)
    return item


def test_only_projected_changes_write_the_index_and_writes_bill_the_larger_image():
    before = call_item()
    claimed = call_item(updatedAt={"S": "t2"},
                        email={"M": {"status": {"S": "sending"}, "claimId": {"S": "c" * 32}}})
    assert not cost_model.index_changed(before, claimed)
    assert cost_model.index_changed(before, call_item(emailStatus={"S": "sent"}))
    assert cost_model.index_changed(None, before)
    big = call_item(pad={"S": "x" * 1100})
    assert cost_model.write(big, before) == cost_model.write(before, big) == 2


def test_the_cost_model_defaults_are_the_templates():
    from helpers import TEMPLATE, local_stack

    params = local_stack.load_template(TEMPLATE)["Parameters"]
    for name, default in cost_model.TEMPLATE_DEFAULTS.items():
        assert params[name]["Default"] == default, name


def test_xray_active_sampling_share_falls_with_volume():
    low = cost_model.xray_traces_per_call("Active", 1e6, 5)
    high = cost_model.xray_traces_per_call("Active", 1e8, 5)
    assert 5 > low > high > 5 * 0.05
    assert cost_model.xray_traces_per_call("PassThrough", 1e6, 5) == 0
