"""Central config documents: checks, secrets refused anywhere, merge of groups then overrides."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trailwarden.common.errors import ConfigError, SecretInConfigError
from trailwarden.manager.central.document import (
    NO_CONFIG,
    effective_config,
    merge,
    parse_document,
)
from trailwarden.manager.central.toml_text import render_toml

SOURCE = '[[sources]]\ntype = "cloudtrail"\nbucket = "org-trail-b"\n'
GROUP = """
log_level = "INFO"
[limits]
max_workers = 4
[[sources]]
type = "cloudtrail"
name = "prod"
bucket = "org-trail"
aws_profile = "audit"
regions = ["us-east-1"]
interval = "5m"
[[sources]]
type = "cloudtrail"
bucket = "sandbox-trail"
"""


@pytest.mark.parametrize(
    "text",
    [
        SOURCE + 'secret_key = "x"\n',
        SOURCE + 'ACCESS_KEY = "x"\n',
        'session_token = "x"\n',
        '[limits]\naws_session_token = "x"\n',
        SOURCE + '[sources.extra]\naws_secret_access_key = "x"',
        SOURCE + 'aws_account_alias = "AKIAABCDEFGHIJKLMNOP"',
    ],
)
def test_secrets_are_refused_anywhere(text: str) -> None:
    with pytest.raises(SecretInConfigError, match="never go in central config"):
        parse_document(text, "config for group prod")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("log_level = ", "not valid TOML"),
        ('colour = "red"', "unknown key(s) 'colour'"),
        ('log_level = "LOUD"', "log_level: expected one of"),
        ("sources = 3", "expected a list of tables"),
        ('[[sources]]\nregions = ["us-east-1"]', "needs a name"),
        ('[[sources]]\nname = "a"\nenabled = "no"', "enabled: expected true or false"),
        ('[[sources]]\nname = "a"\n[[sources]]\nname = "a"', "already the name of sources[0]"),
    ],
)
def test_document_errors_name_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_document(text, "config for group prod")
    assert message in str(caught.value)
    assert str(caught.value).startswith("config for group prod")


def test_agent_override_changes_only_the_keys_it_sets() -> None:
    group = parse_document(GROUP, "g")
    override = parse_document(
        'log_level = "DEBUG"\n[[sources]]\nname = "prod"\nregions = ["eu-west-1"]\n', "a"
    )
    merged = merge([group, override])
    assert merged["log_level"] == "DEBUG"
    assert merged["limits"] == {"max_workers": 4}
    prod, sandbox = merged["sources"]
    assert prod["regions"] == ["eu-west-1"]
    assert prod["aws_profile"] == "audit" and prod["bucket"] == "org-trail"
    assert sandbox["bucket"] == "sandbox-trail"


def test_groups_merge_in_order_and_enabled_false_pauses_a_source() -> None:
    first = parse_document(GROUP, "g1")
    second = parse_document(
        '[limits]\nmin_interval = "1m"\n[[sources]]\nname = "cloudtrail:sandbox-trail"\n'
        "enabled = false\n",
        "g2",
    )
    config = effective_config([first, second], "agent x")
    data = tomllib.loads(config.toml)
    assert [s["name"] for s in data["sources"]] == ["prod"]
    assert data["limits"] == {"max_workers": 4, "min_interval": "1m"}
    assert "enabled" not in config.toml
    assert len(config.hash) == 64


def test_effective_config_is_checked_with_the_agents_parser() -> None:
    partial = parse_document('[[sources]]\nname = "prod"\nregions = ["eu-west-1"]\n', "a")
    with pytest.raises(ConfigError, match=r"agent x: sources\[0\]\.type"):
        effective_config([partial], "agent x")


def test_nothing_applies_gives_no_config() -> None:
    assert effective_config([], "x") is NO_CONFIG
    assert effective_config([parse_document("", "x")], "x") is NO_CONFIG


def test_same_documents_give_the_same_text_and_hash() -> None:
    documents = [parse_document(GROUP, "g")]
    assert effective_config(documents, "a") == effective_config(documents, "b")


_keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
_scalars = (
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
    | st.integers(-(2**63), 2**63 - 1)
    | st.booleans()
    | st.floats(allow_nan=False)
)
_values = st.recursive(
    _scalars | st.lists(_scalars, max_size=3),
    lambda inner: (
        st.dictionaries(_keys, inner, max_size=3)
        | st.lists(st.dictionaries(_keys, inner, min_size=1, max_size=3), min_size=1, max_size=2)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=5))
def test_rendered_toml_reads_back_the_same(data: dict[str, Any]) -> None:
    assert tomllib.loads(render_toml(data)) == data


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('colour = "blue"\n', "colour"),
        ('regions = ["us-fake-1"]\n', "us-fake-1"),
        ('interval = "-5m"\n', "interval"),
        ('[[sources.discard]]\nfield = "eventName"\nregex = "(?=x)y"\n', "regex"),
    ],
)
def test_a_paused_source_is_validated_like_a_running_one(body: str, reason: str) -> None:
    paused = (
        '[[sources]]\ntype = "cloudtrail"\nname = "paused"\nbucket = "org-paused-trail"\n'
        f'aws_profile = "audit"\nenabled = false\n{body}'
    )
    with pytest.raises(ConfigError, match=reason) as caught:
        effective_config([parse_document(paused, "group g")], "group g")
    assert "paused sources are checked too: paused" in str(caught.value)


def test_a_valid_paused_source_is_left_out_of_the_effective_config() -> None:
    paused = (
        '[[sources]]\ntype = "cloudtrail"\nname = "paused"\nbucket = "org-paused-trail"\n'
        'aws_profile = "audit"\nenabled = false\n'
    )
    config = effective_config([parse_document(GROUP, "g1"), parse_document(paused, "g2")], "a")
    assert len(tomllib.loads(config.toml)["sources"]) == 2  # GROUP's two, not the paused one
    assert "paused" not in config.toml
