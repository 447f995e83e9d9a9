"""Property-based tests: whatever the input, only TrailWarden's own errors escape.

Bounded example counts keep the whole file to a few seconds; each finding is pinned by a
regression test at the bottom, named after what it found.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trailwarden.agent.config import parse_agent_config
from trailwarden.common.errors import ConfigError, TrailWardenError
from trailwarden.common.logfile import parse_object
from trailwarden.common.model import AgentRef, SourceMeta
from trailwarden.common.schema.sources import parse_sources
from trailwarden.manager.analysis.decode import decode_record
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import (
    default_lists_root,
    default_ruleset_paths,
    load_ruleset,
)
from trailwarden.manager.central.document import effective_config, parse_document
from trailwarden.manager.central.toml_text import render_toml
from trailwarden.manager.config import parse_manager_config

AREA = "Property-based"
EXAMPLES = int(os.environ.get("TRAILWARDEN_HYPOTHESIS_EXAMPLES", "100"))
"""Examples per property; CI keeps the default, a deep local run sets e.g. 5000."""
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SOURCE = SourceMeta("s", "bucket", "AWSLogs/111122223333/k.json.gz", "111122223333", "us-east-1")
AGENT = AgentRef("a1", "agent-1")

# ---- strategies --------------------------------------------------------------------------

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
CT_KEYS = st.sampled_from(
    [
        "eventVersion",
        "eventID",
        "eventTime",
        "eventName",
        "eventSource",
        "awsRegion",
        "recipientAccountId",
        "sourceIPAddress",
        "userAgent",
        "userIdentity",
        "requestParameters",
        "responseElements",
        "additionalEventData",
        "errorCode",
        "resources",
        "Records",
    ]
)
RECORDS = st.dictionaries(st.one_of(CT_KEYS, st.text(max_size=6)), JSON, max_size=10)


def only_our_errors(call: Callable[[], Any]) -> Any:
    """Run ``call``; a foreign exception fails the test with its type (ours are fine)."""
    try:
        return call()
    except TrailWardenError:
        return None


@st.composite
def log_objects(draw: st.DrawFn) -> bytes:
    """CloudTrail-ish bytes: envelope, array or lines, maybe gzipped, maybe mangled."""
    records = draw(st.lists(st.one_of(RECORDS, JSON), max_size=5))
    shape = draw(st.sampled_from(["records", "array", "lines", "single", "raw"]))
    if shape == "records":
        body = json.dumps({"Records": records, **draw(st.dictionaries(CT_KEYS, JSON, max_size=2))})
    elif shape == "array":
        body = json.dumps(records)
    elif shape == "lines":
        body = "\n".join(json.dumps(r) for r in records)
    elif shape == "single":
        body = json.dumps(draw(JSON))
    else:
        body = draw(st.text(max_size=200))
    data = body.encode("utf-8", "surrogatepass")
    mangle = draw(st.sampled_from(["none", "cut", "flip", "insert"]))
    if data and mangle == "cut":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif data and mangle == "flip":
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    elif mangle == "insert":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(max_size=8)) + data[at:]
    if draw(st.booleans()):
        data = gzip.compress(data, 1)
        if draw(st.booleans()):
            data = data[: draw(st.integers(0, len(data)))]
    return data


# ---- the CloudTrail object parser (agent) ------------------------------------------------


@FAST
@given(st.binary(max_size=512))
def test_object_parser_on_arbitrary_bytes(data: bytes) -> None:
    """The CloudTrail object parser, on arbitrary bytes: ObjectError or records, nothing else."""
    only_our_errors(lambda: parse_object(data, "bucket/key"))


@FAST
@given(log_objects())
def test_object_parser_on_mangled_cloudtrail(data: bytes) -> None:
    """The object parser on envelopes, arrays and JSON lines, gzipped, cut, flipped: only
    ObjectError escapes, and every record returned is a JSON object whose raw bytes parse back
    to exactly that record (forwarded byte for byte)."""
    parsed = only_our_errors(lambda: parse_object(data, "bucket/key"))
    if parsed is None:
        return
    for item in parsed.records:
        assert isinstance(item.record, dict)
        assert json.loads(item.raw) == item.record or _has_nan(item.record)


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return False


# ---- the decoder and analysis (manager) --------------------------------------------------

_ANALYZER: list[Analyzer] = []


def analyzer() -> Analyzer:
    if not _ANALYZER:
        ruleset = load_ruleset(default_ruleset_paths(), default_lists_root())
        _ANALYZER.append(Analyzer(ruleset, "manager"))
    return _ANALYZER[0]


@FAST
@given(st.one_of(RECORDS, JSON))
def test_decoder_on_arbitrary_json(record: Any) -> None:
    """The decoder on arbitrary JSON values: a Wazuh-shaped event or DecodeError; the event
    is JSON-serialisable and keeps the aws.* envelope."""
    event = only_our_errors(lambda: decode_record(record, SOURCE, AGENT))
    if event is None:
        assert not isinstance(record, dict)
        return
    assert event["integration"] == "aws" and event["aws"]["source"] == "cloudtrail"
    json.dumps(event)


@FAST
@given(RECORDS)
def test_rules_and_correlation_on_arbitrary_records(record: dict[str, Any]) -> None:
    """The default ruleset and correlation on arbitrary records (any field any type): analyse
    never raises, and any alert serialises to Wazuh's shape."""
    raw = json.dumps(record).encode()
    outcome = only_our_errors(lambda: analyzer().analyse(record, raw, SOURCE, AGENT))
    assert outcome is not None, "Analyzer.analyse raised one of our errors for bad data"
    if outcome.alert is not None:
        json.dumps(outcome.alert.to_wazuh(), default=str)


# ---- the rule parser ---------------------------------------------------------------------

ATTR_VALUES = st.one_of(
    st.sampled_from(["1", "0", "-1", "100001", "16", "17", "yes", "no", "", "abc", "9999999"]),
    st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), max_size=6),
)
RULE_CHILDREN = st.sampled_from(
    [
        "description",
        "field",
        "match",
        "regex",
        "if_sid",
        "if_group",
        "if_matched_sid",
        "if_matched_group",
        "same_field",
        "different_field",
        "group",
        "options",
        "mitre",
        "list",
        "decoded_as",
        "info",
        "bogus",
    ]
)
CHILD_ATTRS = st.sampled_from(["name", "type", "negate", "field", "lookup", "check_value", "x"])
PATTERNS = st.one_of(
    st.sampled_from(
        [
            "^Console",
            "(a+)+$",
            r"\d+",
            "[",
            "(?P<x>a)(?P=x)",
            r"(\w+)\1",
            "aws.eventName",
            "80202",
            "$(aws.eventName)",
            "etc/lists/x",
            "a|b|",
            "\\",
        ]
    ),
    st.text(max_size=10),
)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@st.composite
def rule_files(draw: st.DrawFn) -> str:
    rules = []
    for _ in range(draw(st.integers(1, 4))):
        attrs = draw(
            st.dictionaries(
                st.sampled_from(
                    ["id", "level", "frequency", "timeframe", "ignore", "overwrite", "noalert", "z"]
                ),
                ATTR_VALUES,
                max_size=5,
            )
        )
        children = []
        for _ in range(draw(st.integers(0, 5))):
            tag = draw(RULE_CHILDREN)
            child_attrs = draw(st.dictionaries(CHILD_ATTRS, ATTR_VALUES, max_size=2))
            attr_text = "".join(f' {k}="{_esc(v)}"' for k, v in child_attrs.items())
            inner = "<id>T1078</id>" if tag == "mitre" else _esc(draw(PATTERNS))
            children.append(f"<{tag}{attr_text}>{inner}</{tag}>")
        attr_text = "".join(f' {k}="{_esc(v)}"' for k, v in attrs.items())
        rules.append(f"<rule{attr_text}>{''.join(children)}</rule>")
    body = f'<group name="{_esc(draw(st.text(max_size=5)))}">{"".join(rules)}</group>'
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    return body


@settings(
    max_examples=max(1, EXAMPLES * 4 // 5),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(rule_files())
def test_rule_loader_on_generated_xml(text: str) -> None:
    """The Wazuh XML rule loader on generated rule files (random attributes, elements,
    patterns, truncation): a Ruleset or RulesetError whose every error names file:line."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "local_rules.xml"
        path.write_text(text, encoding="utf-8")
        try:
            load_ruleset([path])
        except TrailWardenError as exc:
            errors = getattr(exc, "errors", [exc])
            assert errors and all(str(path) in str(e) for e in errors), str(exc)


# ---- the config parsers ------------------------------------------------------------------

TOML_SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
    st.text(max_size=12),
    st.sampled_from(
        [
            "5m",
            "1h",
            "0s",
            "-1s",
            "1e999s",
            "inf",
            "nan",
            "2GiB",
            "1e999",
            "2026-11-01",
            "0001-01-01T00:00:00+05:00",
            "9999-12-31T23:59:59-05:00",
            "2026-NOV-41",
            "us-east-1",
            "111122223333",
            "o-abcdefghij",
            "arn:aws:iam::1:role/x",
            "http://x",
            "127.0.0.1:4750",
            "host:99999",
        ]
    ),
)
TOML_VALUES = st.recursive(
    TOML_SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
SOURCE_KEYS = st.sampled_from(
    [
        "type",
        "name",
        "bucket",
        "path",
        "glob",
        "aws_profile",
        "iam_role_arn",
        "iam_role_duration",
        "regions",
        "aws_account_ids",
        "aws_organization_id",
        "only_logs_after",
        "interval",
        "workers",
        "discard",
        "service_endpoint",
        "skip_on_error",
        "aws_secret_access_key",
    ]
)
SOURCE_TABLES = st.dictionaries(
    SOURCE_KEYS,
    st.one_of(TOML_VALUES, st.sampled_from(["cloudtrail", "directory"])),
    max_size=8,
)


@FAST
@given(st.one_of(st.lists(SOURCE_TABLES, max_size=3), TOML_VALUES))
def test_sources_parser_on_generated_tables(items: Any) -> None:
    """The [[sources]] parser (agent.toml and central config) on generated tables: sources or
    ConfigError naming the document, nothing else."""
    try:
        parse_sources(items, "central config rev 7")
    except TrailWardenError as exc:
        assert "central config rev 7" in str(exc)


SECTIONS = st.sampled_from(
    ["manager", "link", "enrollment", "analysis", "store", "outputs", "agent", "spool", "x"]
)
SECTION_KEYS = st.sampled_from(
    [
        "name",
        "ack_window",
        "max_connections",
        "log_level",
        "listen",
        "advertise",
        "rules",
        "default_rules",
        "lists_root",
        "alerts_file",
        "address",
        "server_name",
        "path",
        "limit",
        "heartbeat",
        "bogus",
    ]
)
DOCUMENTS = st.dictionaries(
    SECTIONS, st.one_of(st.dictionaries(SECTION_KEYS, TOML_VALUES, max_size=4), TOML_VALUES)
)


@FAST
@given(DOCUMENTS)
def test_manager_config_parser_on_generated_documents(document: dict[str, Any]) -> None:
    """manager.toml's parser on generated documents: a config or ConfigError naming the file."""
    try:
        parse_manager_config(document, Path("/srv/tw"), "/srv/tw/manager.toml")
    except TrailWardenError as exc:
        assert "/srv/tw/manager.toml" in str(exc)


@FAST
@given(DOCUMENTS)
def test_agent_config_parser_on_generated_documents(document: dict[str, Any]) -> None:
    """agent.toml's parser on generated documents: a config or ConfigError naming the file."""
    try:
        parse_agent_config(document, Path("/srv/agent"), "/srv/agent/agent.toml")
    except TrailWardenError as exc:
        assert "/srv/agent/agent.toml" in str(exc)


# ---- regressions: what the properties found ----------------------------------------------

AGENT_BASE: dict[str, Any] = {"manager": {"address": "manager.example:4750"}}


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"agent": {"heartbeat": []}}, "agent.heartbeat"),
        ({"agent": {"heartbeat": float("nan")}}, "agent.heartbeat"),
        ({"agent": {"heartbeat": float("inf")}}, "agent.heartbeat"),
        ({"spool": {"limit": "1e999"}}, "spool.limit"),
        ({"spool": {"limit": "1e999GiB"}}, "spool.limit"),
    ],
    ids=["heartbeat-list", "heartbeat-nan", "heartbeat-inf", "limit-1e999", "limit-1e999GiB"],
)
def test_agent_config_odd_values_are_config_errors(document: dict[str, Any], key: str) -> None:
    """Found by the agent.toml property: a list where a duration goes (TypeError), NaN or
    infinite durations (accepted: the heartbeat never came), and a size overflowing to
    infinity (OverflowError) are ConfigErrors naming file and key."""
    with pytest.raises(ConfigError, match=f"agent.toml: {re.escape(key)}"):
        parse_agent_config({**AGENT_BASE, **document}, Path("/a"), "/a/agent.toml")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("interval", float("nan")),
        ("interval", float("inf")),
        ("interval", "9" * 400 + "s"),
        ("interval", [5]),
        ("only_logs_after", "0001-01-01T00:00:00+05:00"),
        ("only_logs_after", "9999-12-31T23:59:59-05:00"),
    ],
    ids=["interval-nan", "interval-inf", "interval-huge", "interval-list", "date-min", "date-max"],
)
def test_source_odd_values_are_config_errors(key: str, value: Any) -> None:
    """Found by the sources property: NaN/infinite intervals (the source would never run
    again, silently), a list as interval (TypeError) and dates whose UTC conversion overflows
    (OverflowError) are ConfigErrors naming the source and key."""
    table = {"type": "cloudtrail", "bucket": "trail", key: value}
    with pytest.raises(ConfigError, match=rf"central: sources\[0\]\.{key}"):
        parse_sources([table], "central")


# ---- pushed (central) config ----------------------------------------------------------------

CENTRAL_DOCUMENTS = st.dictionaries(
    st.sampled_from(["log_level", "keep_local_sources", "limits", "sources", "bogus"]),
    st.one_of(
        TOML_VALUES,
        st.lists(SOURCE_TABLES, max_size=3),
        st.dictionaries(
            st.sampled_from(["max_workers", "min_interval", "x"]), TOML_VALUES, max_size=2
        ),
    ),
    max_size=4,
)


@FAST
@given(CENTRAL_DOCUMENTS, CENTRAL_DOCUMENTS)
def test_pushed_config_documents_on_generated_data(group: Any, agent: Any) -> None:
    """Central config as an admin pushes it (a group document and an agent override, TOML
    text): accepted and merged, or ConfigError naming the document; nothing else escapes."""
    try:
        group_text, agent_text = render_toml(group), render_toml(agent)
    except (TypeError, ValueError):
        return  # data TOML cannot hold (e.g. NaN keys): not a document an admin could send
    try:
        documents = [
            parse_document(group_text, "group:web"),
            parse_document(agent_text, "agent:web-1"),
        ]
        effective_config(documents, "agent web-1")
    except TrailWardenError as exc:
        assert any(o in str(exc) for o in ("group:web", "agent:web-1", "agent web-1")), str(exc)
