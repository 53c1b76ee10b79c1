"""DynamoDB items as our code stores them: their billed size (AWS's published rules, the
same as shared/src/store/item_size.rs) and the stored transcripts' format
(shared/src/domain/transcript_codec.rs). Items are in the low-level client's shape
({"name": {"S": "..."}}), as boto3's client returns them."""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

# One Python implementation of AWS's item-size rules: the fault proxy's (it enforces the limits).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fault_proxy import item_size, number_size, value_size  # noqa: E402, F401

ITEM_LIMIT = 400 * 1024
FORMAT_TEXT = 1
FORMAT_DEFLATE = 2
ROLES = {"a": "agent", "c": "caller", "u": "unknown"}


def write_units(size: int) -> int:
    """Write units of writing an item of `size` bytes: one per KB started."""
    return max(1, -(-size // 1024))


def read_units(size: int, consistent: bool) -> float:
    """Read units of reading an item of `size` bytes: one per 4 KB started, half if eventual."""
    units = max(1, -(-size // 4096))
    return units if consistent else units / 2


def decode_transcript(stored: bytes) -> list[dict]:
    """The turns of a stored transcript (format byte, then compact text, maybe raw deflate)."""
    fmt, body = stored[0], bytes(stored[1:])
    if fmt == FORMAT_DEFLATE:
        body = zlib.decompress(body, -15)
    elif fmt != FORMAT_TEXT:
        raise ValueError(f"unknown transcript format {fmt}")
    turns = []
    for line in body.decode().split("\n")[:-1]:
        message, i, raw = [], 1, line
        while i < len(raw):
            ch = raw[i]
            if ch == "\\":
                message.append({"\\": "\\", "n": "\n", "r": "\r"}[raw[i + 1]])
                i += 2
            else:
                message.append(ch)
                i += 1
        turns.append({"role": ROLES[raw[0]], "message": "".join(message)})
    return turns
