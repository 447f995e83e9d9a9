"""Split a CloudTrail log object into its records.

CloudTrail writes ``{"Records": [...]}`` gzipped; exports and datasets also come as JSON arrays
or JSON lines, plain or gzipped. Each record is returned parsed *and* as its exact raw JSON bytes
(the span of the original text), so the agent can filter on fields and still forward the record
byte for byte without re-serialising it. There is no record-size limit.

A bad record in a good object is reported and skipped; the good records around it are kept:
a record that is not JSON (NaN, an integer past Python's digit limit, nesting past its stack)
or holds a byte that is not UTF-8 is stepped over by its brackets (``common.jsonspan``), so
one such record never costs the object. An object that cannot be read at all (not gzip, not
JSON as a whole, truncated) raises ObjectError naming it.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from trailwarden.common.errors import ObjectError, ObjectTooLargeError
from trailwarden.common.jsonspan import value_end

GZIP_MAGIC = b"\x1f\x8b"
LARGEST_EVENT_BYTES = 256 * 1024
"""CloudTrail's documented cap on one event (event version 1.05 and newer)."""
MAX_DECOMPRESSED_BYTES = 128 * 1024**2
"""The gzip bomb guard: an object that inflates past this is refused (reported with
bucket/key, counted), and inflation stops at it, so a bomb costs at most this much memory.

Why 128 MiB. AWS documents no cap on a log file, only on an event (256 KB); CloudTrail writes
one file per account and region about every five minutes and several when there is more, so real
files are small: the largest in the public trails under tests/files and the shared datasets
inflates to 0.5 MB, and a busy account's stay in the low megabytes. 128 MiB is 512 events of
the largest size AWS allows and 250 times the largest file seen, so no real object comes near
it, while one object past the agent's ~100 MB collection budget (docs/PERFORMANCE.md) costs,
while it is split, at most ``PARSE_FACTOR`` (3) times this, ~400 MiB above an idle agent,
instead of the 2 GiB (and 2.1 GiB RSS for a 1 GiB bomb) of the earlier guard."""

_DECODER = json.JSONDecoder(parse_constant=lambda name: reject_constant(name))
_WHITESPACE = " \t\n\r"
_WS_RUN = re.compile(r"[ \t\n\r]*").match
_UNDECODABLE = re.compile("[\udc80-\udcff]")
"""What ``surrogateescape`` leaves for a byte that is not UTF-8 (raw text never holds these
otherwise: a JSON ``\\udc80`` escape stays six ASCII characters)."""
_EVENT_FIELDS = frozenset({"eventVersion", "eventID", "eventTime", "eventName", "eventSource"})
"""A lone JSON object is taken as one record only if it has one of these (digests have none)."""


def reject_constant(name: str) -> Any:
    """``parse_constant`` for strict JSON: NaN and Infinity are not JSON (and would make any
    JSON we write from the record invalid)."""
    raise ValueError(f"{name} is not valid JSON")


@dataclass(slots=True)
class ParsedRecord:
    record: dict[str, Any]
    raw: bytes
    index: int
    """0-based position in the object (line number - 1 for JSON lines)."""


@dataclass(slots=True)
class ParsedObject:
    records: list[ParsedRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """One message per record that was skipped, naming its index or line."""
    layout: str = ""
    """``records`` | ``array`` | ``lines`` | ``empty``."""


def decompress(data: bytes, where: str) -> bytes:
    """Gunzip ``data`` if it is gzip (by magic number, not by name); bounded against bombs."""
    if not data.startswith(GZIP_MAGIC):
        return data
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out = bytearray()
    view = memoryview(data)
    try:
        while view:
            # In steps, so a bomb is stopped one step past the guard, never inflated whole.
            room = MAX_DECOMPRESSED_BYTES + 1 - len(out)
            out += inflater.decompress(view, min(room, _INFLATE_STEP))
            if len(out) > MAX_DECOMPRESSED_BYTES:
                raise too_large(where)
            view = (
                memoryview(inflater.unconsumed_tail)
                if inflater.unconsumed_tail
                else (
                    memoryview(inflater.unused_data)
                    if inflater.eof and inflater.unused_data
                    else memoryview(b"")
                )
            )
            if inflater.eof and view:
                # Concatenated gzip members: start a new inflater for the next member.
                inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        if not inflater.eof:
            raise ObjectError("truncated gzip (unexpected end of data)", where=where)
    except zlib.error as exc:
        raise ObjectError(f"corrupt gzip: {exc}", where=where) from exc
    return bytes(out)


_INFLATE_STEP = 8 * 1024**2


def too_large(where: str) -> ObjectTooLargeError:
    """The error for an object past the guard (the wording admins see)."""
    return ObjectTooLargeError(
        f"gzip inflates past {MAX_DECOMPRESSED_BYTES} bytes, the agent's limit for one object "
        "(gzip bomb?)",
        where=where,
    )


def parse_object(data: bytes, where: str) -> ParsedObject:
    """Records of one log object (gzipped or not). ``where`` is bucket/key or a path."""
    raw = decompress(data, where)
    try:
        text = raw.decode("utf-8")
        lossy = False
    except UnicodeDecodeError:
        # Kept as surrogates so the records around a bad byte can still be read; a record
        # holding one is refused alone (``_undecodable``).
        text = raw.decode("utf-8", "surrogateescape")
        lossy = True
    del raw
    start = _skip_ws(text, 0)
    if start >= len(text):
        return ParsedObject(layout="empty")
    if lossy and _UNDECODABLE.match(text, start):
        raise ObjectError("not UTF-8 text", where=where)
    if text[start] == "[":
        return _parse_array(text, start, where, layout="array", lossy=lossy)
    if text[start] == "{":
        fast = _parse_envelope_once(text, start, where, lossy)
        if fast is not None:
            return fast
        try:
            first, end = _DECODER.raw_decode(text, start)
        except (ValueError, RecursionError) as exc:
            # RecursionError: nesting deeper than Python's stack (a crafted object).
            if "\n" in text.strip():
                return _parse_lines(text, where, lossy)
            raise ObjectError(f"not JSON: {_reason(exc)}", where=where) from exc
        if _skip_ws(text, end) < len(text):
            return _parse_lines(text, where, lossy)
        if isinstance(first, dict) and "Records" in first:
            records = first["Records"]
            if not isinstance(records, list):
                raise ObjectError(f"'Records' is {type(records).__name__}, not a list", where=where)
            return _records_from_envelope(text, start, where, records, lossy)
        if lossy:
            raise ObjectError("not UTF-8 text", where=where)
        if isinstance(first, dict) and _EVENT_FIELDS & first.keys():
            # A single record on its own (one JSON object, one line).
            return ParsedObject(
                records=[ParsedRecord(first, text[start:end].encode(), 0)], layout="lines"
            )
        raise ObjectError(
            "JSON object without 'Records' or CloudTrail event fields (a digest or another "
            "AWS file?)",
            where=where,
        )
    return _parse_lines(text, where, lossy)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply to read"
    return str(exc)


def _skip_ws(text: str, pos: int) -> int:
    if pos < len(text) and text[pos] in _WHITESPACE:
        run = _WS_RUN(text, pos)  # C-speed over long runs (pretty-printed files)
        return run.end() if run else pos
    return pos


def _records_from_envelope(
    text: str, start: int, where: str, records: list[Any], lossy: bool
) -> ParsedObject:
    """Re-walk the ``Records`` array to get each element's exact text span."""
    key_pos = _find_records_array(text, start)
    if key_pos < 0:  # pragma: no cover - the key exists, so the array does
        raise ObjectError("cannot locate the 'Records' array", where=where)
    return _parse_array(text, key_pos, where, layout="records", lossy=lossy)


def _find_records_array(text: str, start: int) -> int:
    """Index of the '[' that opens the top-level "Records" value."""
    pos = start + 1
    while True:
        pos = _skip_ws(text, pos)
        if pos >= len(text) or text[pos] == "}":
            return -1
        key, pos = _DECODER.raw_decode(text, pos)
        pos = _skip_ws(text, pos) + 1  # the ':'
        pos = _skip_ws(text, pos)
        if key == "Records":
            return pos
        _, pos = _DECODER.raw_decode(text, pos)
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos += 1


def _parse_envelope_once(text: str, start: int, where: str, lossy: bool) -> ParsedObject | None:
    """The CloudTrail shape in one walk: each record of ``Records`` is decoded once, in place.

    (The general path decodes the whole document first, then every record again for its raw
    span: twice the work on the agent's hottest path.) Returns None unless the text is exactly
    one object with one ``Records`` array; the general path then decides and words any error.
    """
    pos = _skip_ws(text, start + 1)
    found: ParsedObject | None = None
    try:
        while pos < len(text) and text[pos] == '"':
            key, pos = _DECODER.raw_decode(text, pos)
            pos = _skip_ws(text, pos)
            if pos >= len(text) or text[pos] != ":":
                return None
            pos = _skip_ws(text, pos + 1)
            if key == "Records":
                if found is not None or pos >= len(text) or text[pos] != "[":
                    return None
                found, pos = _parse_array_at(text, pos, where, "records", lossy)
            else:
                _, pos = _DECODER.raw_decode(text, pos)
            pos = _skip_ws(text, pos)
            if pos < len(text) and text[pos] == ",":
                pos = _skip_ws(text, pos + 1)
                continue
            if pos < len(text) and text[pos] == "}" and _skip_ws(text, pos + 1) >= len(text):
                return found
            return None
    except (ValueError, RecursionError, ObjectError):
        return None
    return None


def _parse_array(
    text: str, open_pos: int, where: str, layout: str, *, lossy: bool = False
) -> ParsedObject:
    return _parse_array_at(text, open_pos, where, layout, lossy)[0]


def _parse_array_at(
    text: str, open_pos: int, where: str, layout: str, lossy: bool = False
) -> tuple[ParsedObject, int]:
    """The array opening at ``open_pos`` and the position just after its closing ']'.

    The agent's hottest loop (once per record): the common compact ``},{`` case takes no call
    besides the C scanner; whitespace and errors take the slower general path. A record that
    cannot be decoded is reported by index and stepped over; only an array that cannot be
    walked to its end (truncated, no separator) fails the object.
    """
    out = ParsedObject(layout=layout)
    n = len(text)
    pos = _skip_ws(text, open_pos + 1)
    index = 0
    if pos < n and text[pos] == "]":
        return out, pos + 1
    scan = _DECODER.scan_once  # type: ignore[attr-defined]  # the C scanner raw_decode wraps
    records = out.records
    while pos < n:
        try:
            value, end = scan(text, pos)
        except (StopIteration, ValueError, RecursionError):
            try:  # again through raw_decode, for its error message
                value, end = _DECODER.raw_decode(text, pos)
            except (ValueError, RecursionError) as exc:
                end = value_end(text, pos)
                if end < 0:
                    raise ObjectError(
                        f"not JSON at record {index}: {_reason(exc)}", where=where
                    ) from exc
                value = _Unreadable(_reason(exc))
        if type(value) is dict:
            if lossy and _UNDECODABLE.search(text, pos, end):
                out.problems.append(f"record {index}: not UTF-8 text")
            else:
                records.append(ParsedRecord(value, text[pos:end].encode(), index))
        elif type(value) is _Unreadable:
            out.problems.append(f"record {index}: not JSON: {value.reason}")
        else:
            out.problems.append(f"record {index}: {type(value).__name__}, not a JSON object")
        index += 1
        char = text[end] if end < n else ""
        if char and char in _WHITESPACE:
            end = _skip_ws(text, end)
            char = text[end] if end < n else ""
        if char == ",":
            pos = end + 1
            if pos < n and text[pos] in _WHITESPACE:
                pos = _skip_ws(text, pos)
        elif char == "]":
            return out, end + 1
        else:
            raise ObjectError(
                f"not JSON: expected ',' or ']' after record {index - 1}", where=where
            )
    raise ObjectError("not JSON: unterminated array (truncated object?)", where=where)


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """Stands for a record the decoder refused, with its reason."""

    reason: str


def _parse_lines(text: str, where: str, lossy: bool = False) -> ParsedObject:
    out = ParsedObject(layout="lines")
    for number, line in enumerate(_lines(text), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if lossy and _UNDECODABLE.search(stripped):
            out.problems.append(f"line {number}: not UTF-8 text")
            continue
        try:
            value = _DECODER.decode(stripped)
        except (ValueError, RecursionError) as exc:
            out.problems.append(f"line {number}: not JSON: {_reason(exc)}")
            continue
        if isinstance(value, dict):
            out.records.append(ParsedRecord(value, stripped.encode(), number - 1))
        else:
            out.problems.append(f"line {number}: {type(value).__name__}, not a JSON object")
    if not out.records and out.problems:
        raise ObjectError("not JSON: " + out.problems[0], where=where)
    return out


def _lines(text: str) -> Iterator[str]:
    return iter(text.split("\n"))


def read_file(path: str) -> ParsedObject:
    """Records of a local file (``.json``, ``.json.gz``, JSON lines), for logtest and tests."""
    with open(path, "rb") as handle:
        return parse_object(handle.read(), path)


def gzip_records(records: list[dict[str, Any]]) -> bytes:
    """A CloudTrail-shaped gzip object; for the generator, demo and tests."""
    return gzip.compress(json.dumps({"Records": records}, separators=(",", ":")).encode())
