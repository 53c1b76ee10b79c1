"""DynamoDB items as our code stores them: their billed size (AWS's published rules, the
same as shared/src/store/item_size.rs) and the stored transcripts' format
(shared/src/domain/transcript_codec.rs). Items are in the low-level client's shape
({"name": {"S": "..."}}), as boto3's client returns them."""

from __future__ import annotations

import zlib

ITEM_LIMIT = 400 * 1024
FORMAT_TEXT = 1
FORMAT_DEFLATE = 2
ROLES = {"a": "agent", "c": "caller", "u": "unknown"}


def number_size(raw: str) -> int:
    digits = "".join(ch for ch in raw if ch.isdigit()).strip("0")
    return (max(1, len(digits)) + 1) // 2 + 1


def value_size(v: dict) -> int:
    ((kind, x),) = v.items()
    if kind == "S":
        return len(x.encode())
    if kind == "N":
        return number_size(x)
    if kind == "B":
        return len(x)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode()) for s in x)
    if kind == "NS":
        return sum(number_size(n) for n in x)
    if kind == "BS":
        return sum(len(b) for b in x)
    if kind == "L":
        return 3 + sum(value_size(e) + 1 for e in x)
    if kind == "M":
        return 3 + sum(len(k.encode()) + value_size(e) + 1 for k, e in x.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict) -> int:
    """Bytes of an item: every attribute's name and value."""
    return sum(len(k.encode()) + value_size(v) for k, v in item.items())


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
