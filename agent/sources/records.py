"""One object's records as the agent forwards them: exact raw bytes, no parsed values kept.

The agent forwards each record byte for byte and reads none of its fields unless a ``discard``
rule asks, so holding every record of an object as Python dicts (``common.logfile``'s
``ParsedObject``, ~6 bytes of objects per byte of JSON) only cost memory: with several objects
in flight it was most of a backfill's peak. ``split`` walks CloudTrail's ``{"Records": [...]}``
shape once with the C scanner, checks each record against the discard rules while its value
exists, and keeps only its bytes (sliced from the inflated object itself when the text is
ASCII, as CloudTrail's usually is). Any other layout, and anything unusual in this one (a
record that is not an object, broken JSON), goes to ``parse_object``, which defines the
outcome and words the problems; the fast walk only ever accepts what it would accept the same.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from trailwarden.common import logfile
from trailwarden.common.logfile import GZIP_MAGIC, decompress, parse_object, reject_constant
from trailwarden.common.schema.filters import DiscardRule, first_discarding_rule

MAX_RECORD_BYTES = 64 * 1024**2 - 64 * 1024
"""Largest record forwarded: a batch must fit the link's 64 MiB gRPC message limit
(common/channels.py MAX_MESSAGE_BYTES). A bigger record could never be delivered, and sent anyway it
broke every link session, so nothing more from the agent was acknowledged; it is reported and
skipped instead. (CloudTrail's own records stay far below this.)"""


_SCAN = json.JSONDecoder(parse_constant=reject_constant).scan_once  # type: ignore[attr-defined]
"""The C scanner behind ``raw_decode``: (value, end) of the JSON value at a position."""
_WHITESPACE = " \t\n\r"
_WS_RUN = re.compile(r"[ \t\n\r]*").match


@dataclass(slots=True)
class Split:
    """The records of one object to forward, and what was left out."""

    records: list[bytes] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """One message per record skipped as unusable (naming its index or line)."""
    discarded: int = 0
    """Records dropped by a discard rule."""

    @property
    def payload(self) -> int:
        return sum(map(len, self.records))


def inflated_size(data: bytes) -> int:
    """The object's size once inflated, from the gzip trailer (exact for one gzip member up to
    4 GiB, a lower bound otherwise); ``len(data)`` for plain text. Never more than one byte past
    the inflate guard: inflation stops there, so a bigger claim must not make the object wait
    for the whole memory budget."""
    if data.startswith(GZIP_MAGIC) and len(data) >= 18:
        claimed = int.from_bytes(data[-4:], "little")
        return max(len(data), min(claimed, logfile.MAX_DECOMPRESSED_BYTES + 1))
    return len(data)


def split(data: bytes, where: str, discard: Sequence[DiscardRule] = ()) -> Split:
    """The records of a log object (gzipped or not) to forward; ObjectError when unusable."""
    fast = _split_envelope(_inflate(data, where), discard)
    if fast is not None:
        return fast
    parsed = parse_object(data, where)  # every other layout, and every error's wording
    out = Split(problems=list(parsed.problems))
    for record in parsed.records:
        _take(out, record.raw, record.index, record.record, discard)
    return out


def _inflate(data: bytes, where: str) -> bytes:
    """``logfile.decompress`` without its copy for the usual single gzip member: the inflated
    bytes come straight from zlib. Anything else (several members, truncated, corrupt, past
    the bomb guard) is left to ``decompress``, which also words the error."""
    if not data.startswith(GZIP_MAGIC):
        return data
    limit = logfile.MAX_DECOMPRESSED_BYTES
    claimed = int.from_bytes(data[-4:], "little") if len(data) >= 18 else limit
    if claimed > limit:  # a bomb, or a cut object whose "trailer" is deflate data
        return decompress(data, where)
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        # At most what the trailer claims (+1 to see it lie): a bomb whose trailer is forged
        # small stops there and goes to ``decompress``, which inflates in bounded steps.
        out = inflater.decompress(data, min(limit, max(claimed, len(data))) + 1)
    except zlib.error:
        return decompress(data, where)
    if inflater.eof and not inflater.unused_data and len(out) <= limit:
        return out
    del out
    return decompress(data, where)


def _take(
    out: Split, raw: bytes, index: int, value: dict[str, object], discard: Sequence[DiscardRule]
) -> None:
    if len(raw) > MAX_RECORD_BYTES:
        out.problems.append(
            f"record {index}: {len(raw)} bytes, more than the {MAX_RECORD_BYTES} a link message "
            "can carry"
        )
    elif discard and first_discarding_rule(value, discard):
        out.discarded += 1
    else:
        out.records.append(raw)


def _skip_ws(text: str, pos: int) -> int:
    if pos < len(text) and text[pos] in _WHITESPACE:
        return _WS_RUN(text, pos).end()  # type: ignore[union-attr]  # `*` always matches
    return pos


def _split_envelope(raw: bytes, discard: Sequence[DiscardRule]) -> Split | None:
    """``{"Records": [...]}`` (other keys allowed, any whitespace), every record an object;
    None for anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    source = raw if len(text) == len(raw) else None  # ASCII: character offsets are byte offsets
    n = len(text)
    pos = _skip_ws(text, 0)
    if pos >= n or text[pos] != "{":
        return None
    pos = _skip_ws(text, pos + 1)
    found: Split | None = None
    try:
        while pos < n and text[pos] == '"':
            key, pos = _SCAN(text, pos)
            pos = _skip_ws(text, pos)
            if pos >= n or text[pos] != ":":
                return None
            pos = _skip_ws(text, pos + 1)
            if key == "Records":
                if found is not None:
                    return None
                walked = _split_array(text, source, pos, discard)
                if walked is None:
                    return None
                found, pos = walked
            else:
                _, pos = _SCAN(text, pos)
            pos = _skip_ws(text, pos)
            if pos < n and text[pos] == ",":
                pos = _skip_ws(text, pos + 1)
                continue
            if pos < n and text[pos] == "}" and _skip_ws(text, pos + 1) >= n:
                return found
            return None
    except (StopIteration, ValueError, RecursionError):
        return None
    return None


def _split_array(
    text: str, source: bytes | None, pos: int, discard: Sequence[DiscardRule]
) -> tuple[Split, int] | None:
    """The records of the array opening at ``pos`` and the position after its ']'."""
    n = len(text)
    if pos >= n or text[pos] != "[":
        return None
    out = Split()
    pos = _skip_ws(text, pos + 1)
    if pos < n and text[pos] == "]":
        return out, pos + 1
    records = out.records
    index = 0
    while True:  # once per record: the agent's hottest loop, kept to C-level calls
        value, end = _SCAN(text, pos)
        if type(value) is not dict:
            return None
        raw = source[pos:end] if source is not None else text[pos:end].encode()
        if discard or len(raw) > MAX_RECORD_BYTES:
            _take(out, raw, index, value, discard)
        else:
            records.append(raw)
        del value  # only the bytes stay
        index += 1
        pos = _WS_RUN(text, end).end()  # type: ignore[union-attr]  # `*` always matches
        if text.startswith(",", pos):
            pos = _WS_RUN(text, pos + 1).end()  # type: ignore[union-attr]
        elif text.startswith("]", pos):
            return out, pos + 1
        else:
            return None
