"""docs/CONFIGURATION.md cannot drift from the parsers.

Each reference table in the doc is marked ``<!-- keys: DOCUMENT TABLE -->``. For every table:

- the keys the real parser accepts are exactly the keys the doc lists. For ``manager.toml`` and
  ``agent.toml`` the accepted keys are observed, not restated: the documents are handed to
  ``parse_manager_config`` / ``build_store`` / ``parse_agent_config`` as mappings that record
  every key the parser looks up. Sources come from their config dataclasses (one field per key),
  central config from ``TOP_LEVEL_KEYS`` and ``CentralSettings``;
- every documented key is accepted by the parser with its documented default (or a sample
  value), and setting a key to its documented default changes nothing;
- an unknown key in the table is refused.

The packaged reference configs (packaging/config/*.toml) parse, every key they set is
documented, and their values match the documented defaults outside ``[[sources]]`` (where they
show examples). Every ``trailwarden …`` command in a fenced block of docs/*.md (synopses such as
``[--since 24h | --from T --to T]`` expanded so that every alternative is tried) parses with the
real CLI.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trailwarden.agent.config import parse_agent_config
from trailwarden.common.cli import build_parser
from trailwarden.common.errors import ConfigError
from trailwarden.common.schema.central import CentralSettings, parse_central_config
from trailwarden.common.schema.sources import (
    CloudTrailSourceConfig,
    DirectorySourceConfig,
    SqsSourceConfig,
    parse_sources,
)
from trailwarden.manager.central.document import (
    ENABLED_KEY,
    TOP_LEVEL_KEYS,
    effective_config,
    parse_document,
)
from trailwarden.manager.central.toml_text import render_toml
from trailwarden.manager.config import parse_manager_config
from trailwarden.manager.pipeline.setup import build_store
from trailwarden.manager.store.sqlite.database import Database

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "CONFIGURATION.md"
_ANCHOR = re.compile(r"^<!-- keys: (.+?) -->$")
_SINGLE_CODE = re.compile(r"^`([^`]+)`$")


# ---- the doc's tables ------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    key: str
    default: str
    """The Default cell as written."""
    wazuh: str

    def literal_default(self) -> tuple[bool, Any]:
        """(True, value) when the default is one code span holding a TOML value."""
        match = _SINGLE_CODE.match(self.default)
        if not match:
            return False, None
        return True, tomllib.loads(f"v = {match.group(1)}")["v"]


def doc_tables(text: str) -> dict[str, list[Row]]:
    """Anchor → rows of the table that follows it (header and separator skipped)."""
    tables: dict[str, list[Row]] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _ANCHOR.match(line.strip())
        if not match:
            continue
        anchor = match.group(1)
        assert anchor not in tables, f"anchor {anchor!r} twice"
        body = []
        for row in lines[index + 1 :]:
            if not row.startswith("|"):
                break
            body.append(row)
        assert len(body) > 2, f"{anchor}: no table after the anchor"
        header = [c.strip() for c in body[0].strip("|").split("|")]
        assert header == ["Key", "Type", "Default", "Meaning", "Wazuh", "Notes"], anchor
        rows = []
        for raw in body[2:]:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", raw.strip().strip("|"))]
            assert len(cells) == 6, f"{anchor}: {raw}"
            key = _SINGLE_CODE.match(cells[0])
            assert key, f"{anchor}: the key cell must be one code span: {raw}"
            assert cells[1] and cells[2] and cells[3] and cells[4], f"{anchor}: empty cell: {raw}"
            rows.append(Row(key.group(1), cells[2], cells[4]))
        keys = [r.key for r in rows]
        assert len(keys) == len(set(keys)), f"{anchor}: a key listed twice"
        tables[anchor] = rows
    return tables


TABLES = doc_tables(DOC.read_text())


def documented(anchor: str) -> set[str]:
    assert anchor in TABLES, f"docs/CONFIGURATION.md has no table marked {anchor!r}"
    return {row.key for row in TABLES[anchor]}


# ---- observing what the manager/agent parsers read -------------------------------------------


class Recorder(dict[str, Any]):
    """A TOML table that notes every key looked up in it, and the default offered."""

    def __init__(
        self, data: Mapping[str, Any], path: tuple[str, ...], seen: dict[tuple[str, ...], Any]
    ) -> None:
        super().__init__(data)
        self.path = path
        self.seen = seen
        seen.setdefault(path, {})

    def get(self, key: str, default: Any = None) -> Any:
        self.seen[self.path][key] = default
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.seen[self.path].setdefault(key, None)
        return super().__contains__(key)

    def __getitem__(self, key: str) -> Any:
        self.seen[self.path].setdefault(key, None)
        return super().__getitem__(key)


def record(
    data: Mapping[str, Any], seen: dict[tuple[str, ...], Any], path: tuple[str, ...] = ()
) -> Recorder:
    """``data`` with itself and every nested table wrapped in a Recorder."""
    return Recorder(
        {k: record(v, seen, (*path, k)) if isinstance(v, Mapping) else v for k, v in data.items()},
        path,
        seen,
    )


def observed_tables(
    base: Mapping[str, Any], parse: Callable[[Recorder], None]
) -> dict[tuple[str, ...], set[str]]:
    """Table path → scalar keys the parser reads. A key looked up with a table as its default is
    a sub-table: it is added (empty) and the parse repeated until no new table appears."""
    document = copy.deepcopy(dict(base))
    for _ in range(10):
        seen: dict[tuple[str, ...], Any] = {}
        parse(record(document, seen))
        added = False
        for path, keys in seen.items():
            for key, default in keys.items():
                if isinstance(default, Mapping):
                    table = _table_at(document, path)
                    if key not in table:
                        table[key] = {}
                        added = True
        if not added:
            return {
                path: {k for k, d in keys.items() if not isinstance(d, Mapping)}
                for path, keys in seen.items()
            }
    raise AssertionError("tables kept appearing")


def _table_at(document: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    table = document
    for part in path:
        table = table.setdefault(part, {})
    return table


# ---- parsing one document the way the product does -------------------------------------------

AGENT_BASE: dict[str, Any] = {"manager": {"address": "manager.example.org:4750"}}
CLOUDTRAIL_BASE: dict[str, Any] = {"type": "cloudtrail", "bucket": "org-trail-logs"}
DIRECTORY_BASE: dict[str, Any] = {"type": "directory", "path": "/srv/cloudtrail-export"}
SQS_QUEUE = "https://sqs.us-east-1.amazonaws.com/111122223333/trail-notifications"
SQS_BASE: dict[str, Any] = {"type": "cloudtrail-sqs", "queue_url": SQS_QUEUE}
DISCARD_BASE: dict[str, Any] = {"field": "eventName", "regex": "^Describe"}
WEBHOOK_BASE: dict[str, Any] = {"type": "webhook", "url": "https://soc.example.org/hook"}
SLACK_BASE: dict[str, Any] = {"type": "slack", "url": "https://hooks.slack.com/services/T/B/X"}
EMAIL_BASE: dict[str, Any] = {
    "type": "email",
    "host": "smtp.example.org",
    "from": "trailwarden@example.org",
    "to": ["soc@example.org"],
}


def parse_manager(document: Mapping[str, Any], home: Path, database: Database) -> Any:
    """ManagerConfig (store table left out) plus what build_store makes of ``[store]``."""
    config = parse_manager_config(document, home, "manager.toml")
    store_table = document.get("store", {})
    store = build_store(dataclasses.replace(config, store=store_table), database)
    store.close()  # a PostgreSQL store holds a pool of connections
    return dataclasses.replace(config, store={}), store.archive, store.retention


def parse_central(document: Mapping[str, Any]) -> CentralSettings:
    """As `admin config set` does: TOML text → checks → effective config → the agent's parser."""
    data = parse_document(render_toml(document), "central")
    effective = effective_config([data], "central")
    return parse_central_config(effective.toml, "central")


@dataclass(frozen=True)
class Target:
    """Where one documented table sits and how its document is parsed."""

    base: Mapping[str, Any]
    place: Callable[[dict[str, Any]], dict[str, Any]]
    """The table to put keys in, inside a copy of ``base``."""
    parse: Callable[[dict[str, Any]], Any]


def targets(home: Path, database: Database) -> dict[str, Target]:
    def manager(path: tuple[str, ...]) -> Target:
        return Target({}, lambda d: _table_at(d, path), lambda d: parse_manager(d, home, database))

    def agent(section: str) -> Target:
        return Target(
            AGENT_BASE,
            lambda d: d.setdefault(section, {}),
            lambda d: parse_agent_config(d, home, "agent.toml"),
        )

    def source(base: dict[str, Any]) -> Target:
        return Target({"sources": [base]}, lambda d: d["sources"][0], _parse_sources)

    def output(base: dict[str, Any]) -> Target:
        return Target(
            {"outputs": [base]},
            lambda d: d["outputs"][0],
            lambda d: parse_manager(d, home, database),
        )

    central_base = {"sources": [CLOUDTRAIL_BASE]}
    return {
        "manager [manager]": manager(("manager",)),
        "manager [link]": manager(("link",)),
        "manager [enrollment]": manager(("enrollment",)),
        "manager [analysis]": manager(("analysis",)),
        "manager [outputs]": manager(("outputs",)),
        "manager [archives]": manager(("archives",)),
        "output alerts_file": output({"type": "alerts_file"}),
        "output webhook": output(WEBHOOK_BASE),
        "output slack": output(SLACK_BASE),
        "output email": output(EMAIL_BASE),
        "manager [metrics]": manager(("metrics",)),
        "manager [console]": manager(("console",)),
        "manager [store]": manager(("store",)),
        "manager [store.retention]": manager(("store", "retention")),
        "agent [agent]": agent("agent"),
        "agent [manager]": agent("manager"),
        "agent [spool]": agent("spool"),
        "agent [metrics]": agent("metrics"),
        "source cloudtrail": source(CLOUDTRAIL_BASE),
        "source directory": source(DIRECTORY_BASE),
        "source cloudtrail-sqs": source(SQS_BASE),
        "source discard": Target(
            {"sources": [{**CLOUDTRAIL_BASE, "discard": [DISCARD_BASE]}]},
            lambda d: d["sources"][0]["discard"][0],
            _parse_sources,
        ),
        "central top": Target(central_base, lambda d: d, parse_central),
        "central [limits]": Target(
            central_base, lambda d: d.setdefault("limits", {}), parse_central
        ),
        "central [[sources]]": Target(central_base, lambda d: d["sources"][0], parse_central),
    }


def _parse_sources(document: dict[str, Any]) -> Any:
    return parse_sources(document["sources"], "agent.toml")


SAMPLES: dict[tuple[str, str], Any] = {
    ("manager [manager]", "name"): "manager-1",
    ("manager [link]", "advertise"): "manager.example.org:4750",
    ("manager [enrollment]", "advertise"): "manager.example.org:4751",
    ("agent [agent]", "name"): "agent-1",
    ("agent [manager]", "address"): "manager.example.org:4750",
    ("source cloudtrail", "type"): "cloudtrail",
    ("source cloudtrail", "name"): "org",
    ("source cloudtrail", "bucket"): "org-trail-logs",
    ("source cloudtrail", "only_logs_after"): "2026-NOV-01",
    ("source directory", "type"): "directory",
    ("source directory", "name"): "exports",
    ("source directory", "path"): "/srv/cloudtrail-export",
    ("source cloudtrail-sqs", "type"): "cloudtrail-sqs",
    ("source cloudtrail-sqs", "name"): "notes",
    ("source cloudtrail-sqs", "queue_url"): SQS_QUEUE,
    ("source cloudtrail-sqs", "region"): "us-east-1",
    ("source discard", "field"): "userIdentity.type",
    ("source discard", "regex"): "^AWSService$",
    ("output alerts_file", "type"): "alerts_file",
    ("output webhook", "type"): "webhook",
    ("output webhook", "name"): "soc-hook",
    ("output webhook", "url"): "http://127.0.0.1:8080/hook",
    ("output slack", "type"): "slack",
    ("output slack", "name"): "secops",
    ("output slack", "url"): "https://hooks.slack.com/services/T/B/Y",
    ("output email", "type"): "email",
    ("output email", "name"): "oncall",
    ("output email", "host"): "mail.example.org",
    ("output email", "from"): "tw@example.org",
    ("output email", "to"): ["oncall@example.org"],
    ("central top", "log_level"): "DEBUG",
    ("central top", "limits"): {"max_workers": 2},
    ("central top", "sources"): [{**CLOUDTRAIL_BASE, "name": "other"}],
}
"""Values for documented keys whose default is not a TOML literal (required, host name, ...)."""


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = Database(tmp_path / "manager.db")
    yield db
    db.close()


# ---- key sets ----------------------------------------------------------------------------------


def test_every_table_of_the_doc_is_checked(tmp_path: Path, database: Database) -> None:
    assert set(TABLES) == set(targets(tmp_path, database))


def test_manager_toml_keys_match_the_parser(tmp_path: Path, database: Database) -> None:
    def parse(document: Recorder) -> None:
        config = parse_manager_config(document, tmp_path, "manager.toml")
        store = document.get("store", {})
        build_store(dataclasses.replace(config, store=store), database)

    observed = observed_tables({}, parse)
    assert observed.pop(()) == set(), "manager.toml has top-level keys outside any table"
    assert {f"manager [{'.'.join(path)}]" for path in observed} == {
        anchor for anchor in TABLES if anchor.startswith("manager ")
    }
    for path, keys in observed.items():
        anchor = f"manager [{'.'.join(path)}]"
        assert keys == documented(anchor), anchor
    # Sanity of the observation itself: it saw the keys we know are there.
    assert "ack_window" in observed[("manager",)]
    assert "max_db_size" in observed[("store", "retention")]


def test_agent_toml_keys_match_the_parser(tmp_path: Path) -> None:
    def parse(document: Recorder) -> None:
        parse_agent_config(document, tmp_path, "agent.toml")

    observed = observed_tables(AGENT_BASE, parse)
    assert observed.pop(()) == {"sources"}, "the only top-level key is [[sources]]"
    assert {f"agent [{'.'.join(path)}]" for path in observed} == {
        anchor for anchor in TABLES if anchor.startswith("agent ")
    }
    for path, keys in observed.items():
        anchor = f"agent [{'.'.join(path)}]"
        assert keys == documented(anchor), anchor


def test_source_keys_match_the_config_dataclasses() -> None:
    for anchor, model in (
        ("source cloudtrail", CloudTrailSourceConfig),
        ("source directory", DirectorySourceConfig),
        ("source cloudtrail-sqs", SqsSourceConfig),
    ):
        fields = {f.name for f in dataclasses.fields(model)}
        assert documented(anchor) == fields | {"type"}, anchor


def test_discard_keys_match_the_parser() -> None:
    seen: dict[tuple[str, ...], Any] = {}
    table = record(DISCARD_BASE, seen, ("discard",))
    parse_sources([{**CLOUDTRAIL_BASE, "discard": [table]}], "agent.toml")
    assert set(seen[("discard",)]) == documented("source discard")


def test_central_keys_match_the_parser() -> None:
    assert documented("central top") == set(TOP_LEVEL_KEYS)
    settings = {f.name for f in dataclasses.fields(CentralSettings)}
    assert documented("central [limits]") == settings - set(TOP_LEVEL_KEYS)
    assert documented("central [[sources]]") == {ENABLED_KEY}
    # enabled is central-only: agent.toml refuses it.
    with pytest.raises(ConfigError, match="enabled"):
        parse_sources([{**CLOUDTRAIL_BASE, ENABLED_KEY: True}], "agent.toml")


# ---- values ------------------------------------------------------------------------------------


def _with(target: Target, key: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(dict(target.base))
    target.place(document)[key] = copy.deepcopy(value)
    return document


def test_every_documented_key_is_accepted(
    tmp_path: Path, database: Database, postgres_url: str
) -> None:
    """``[store] url`` is tried on the test run's real PostgreSQL database."""
    samples = {**SAMPLES, ("manager [store]", "url"): postgres_url}
    checked = 0
    for anchor, target in targets(tmp_path, database).items():
        for row in TABLES[anchor]:
            literal, value = row.literal_default()
            if (anchor, row.key) in samples:
                value = samples[(anchor, row.key)]
            else:
                assert literal, (
                    f"{anchor} {row.key}: give a TOML literal default in the doc or a sample here"
                )
            try:
                target.parse(_with(target, row.key, value))
            except ConfigError as exc:
                pytest.fail(f"{anchor}: {row.key} = {value!r} refused: {exc}")
            checked += 1
    assert checked == sum(len(rows) for rows in TABLES.values())


def test_documented_defaults_are_the_defaults(tmp_path: Path, database: Database) -> None:
    checked = 0
    for anchor, target in targets(tmp_path, database).items():
        without = target.parse(copy.deepcopy(dict(target.base)))
        for row in TABLES[anchor]:
            literal, value = row.literal_default()
            if not literal:
                continue
            assert target.parse(_with(target, row.key, value)) == without, (
                f"{anchor}: {row.key} = {value!r} is the documented default but changes the config"
            )
            checked += 1
    assert checked >= 50


def test_unknown_keys_are_refused(tmp_path: Path, database: Database) -> None:
    for target in targets(tmp_path, database).values():
        with pytest.raises(ConfigError):
            target.parse(_with(target, "no_such_option", True))


# ---- the packaged reference configs -------------------------------------------------------------


def _scalars(table: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in table.items() if not isinstance(v, Mapping)}


def _defaults(anchor: str) -> dict[str, Any]:
    out = {}
    for row in TABLES[anchor]:
        literal, value = row.literal_default()
        if literal:
            out[row.key] = value
    return out


def _check_table(anchor: str, table: Mapping[str, Any], compare_values: bool) -> None:
    values = _scalars(table)
    assert set(values) <= documented(anchor), (
        f"{anchor}: undocumented {set(values) - documented(anchor)}"
    )
    if compare_values:
        defaults = _defaults(anchor)
        for key, value in values.items():
            if key in defaults:
                assert value == defaults[key], (
                    f"packaging {anchor}: {key} = {value!r}, doc {defaults[key]!r}"
                )


def test_packaged_manager_toml_matches_the_doc(tmp_path: Path, database: Database) -> None:
    data = tomllib.loads((REPO / "packaging/config/manager.toml").read_text())
    parse_manager(data, tmp_path, database)
    for name, table in data.items():
        _check_table(f"manager [{name}]", table, compare_values=True)
    _check_table("manager [store.retention]", data["store"]["retention"], compare_values=True)


def test_packaged_agent_toml_matches_the_doc(tmp_path: Path) -> None:
    data = tomllib.loads((REPO / "packaging/config/agent.toml").read_text())
    config = parse_agent_config(data, tmp_path, "agent.toml")
    assert config.sources, "the reference agent.toml shows a source"
    for name, table in data.items():
        if name == "sources":
            for source in table:
                _check_table(f"source {source['type']}", source, compare_values=False)
        else:
            _check_table(f"agent [{name}]", table, compare_values=True)


# ---- commands ----------------------------------------------------------------------------------

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
_PLACEHOLDERS = {
    "N": "5",
    "REVISION": "12",
    "T": "2026-11-01",
    "ID": "3f9c0d2e11aa",
    "G": "prod",
    "FILE": "prod.toml",
    "TEXT": "note",
    "A": "111122223333",
    "R": "us-east-1",
    "U": "alice",
    "E": "ConsoleLogin",
}
"""Synopsis placeholders (``--limit N``) and values the parser takes for them."""


def documented_commands() -> list[tuple[str, str]]:
    """(doc, command) for each ``trailwarden`` line of a fenced block in docs/*.md.

    Continuations (a trailing backslash, or an indented line under a synopsis) are joined;
    ``  # comments``, a ``$ `` prompt and ``sudo -u USER`` are dropped.
    """
    found: list[tuple[str, str]] = []
    for doc in sorted((REPO / "docs").glob("*.md")):
        for block in _FENCE.findall(doc.read_text()):
            current: str | None = None
            for raw in block.splitlines():
                line = raw.split("  #", 1)[0].rstrip()
                stripped = line.strip().removeprefix("$ ")
                if current is not None and (current.endswith("\\") or raw[:1].isspace()):
                    current = current.removesuffix("\\").rstrip() + " " + stripped
                    continue
                if current is not None:
                    found.append((doc.name, current))
                    current = None
                words = stripped.split()
                if words[:2] == ["sudo", "-u"]:
                    stripped = " ".join(words[3:])
                if stripped.startswith("trailwarden "):
                    current = stripped
            if current is not None:
                found.append((doc.name, current))
    return found


def _tokens(command: str) -> list[str]:
    if not re.search(r"[\[\]()]| \| ", command):
        words = shlex.split(command)
    else:
        words = re.sub(r"([\[\]()])", r" \1 ", command).split()
    out: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word in ("<", ">"):
            skip = True  # a redirection and its file
            continue
        out.append(word)
    return out


def _parse_group(tokens: list[str], index: int, end: str | None) -> tuple[Any, int]:
    """Synopsis grammar → ("seq", items) / ("opt"|"req", [seq, ...]) / ("word", [alternatives])."""
    alternatives: list[Any] = []
    items: list[Any] = []
    while index < len(tokens):
        token = tokens[index]
        if token == end:
            alternatives.append(("seq", items))
            return ("opt" if end == "]" else "req", alternatives), index + 1
        if token == "|":
            alternatives.append(("seq", items))
            items = []
        elif token in ("[", "("):
            group, index = _parse_group(tokens, index + 1, "]" if token == "[" else ")")
            items.append(group)
            continue
        else:
            items.append(("word", token.split("|") if "|" in token else [token]))
        index += 1
    assert end is None, f"unclosed group in {' '.join(tokens)}"
    if alternatives:
        return ("req", [*alternatives, ("seq", items)]), index
    return ("seq", items), index


def _default(node: Any, maximal: bool) -> list[str]:
    kind, body = node
    if kind == "word":
        return [body[0]]
    if kind == "seq":
        return [w for item in body for w in _default(item, maximal)]
    if kind == "opt" and not maximal:
        return []
    return _default(body[0], maximal)


def _variants(node: Any) -> list[list[str]]:
    """The default choice and every choice that differs from it in one place."""
    kind, body = node
    if kind == "word":
        return [[w] for w in body]
    if kind in ("opt", "req"):
        choices: list[list[str]] = [[]] if kind == "opt" else []
        return choices + [v for alt in body for v in _variants(alt)]
    base = [_default(item, False) for item in body]
    out = [[w for part in base for w in part]]
    for position, item in enumerate(body):
        for variant in _variants(item):
            parts = [*base[:position], variant, *base[position + 1 :]]
            out.append([w for part in parts for w in part])
    return out


def expand(command: str) -> list[list[str]]:
    """Argument lists (after ``trailwarden``) covering every alternative of a synopsis."""
    tree, _ = _parse_group(_tokens(command), 0, None)
    unique: dict[tuple[str, ...], None] = {}
    for words in [*_variants(tree), _default(tree, True)]:
        unique[tuple(_PLACEHOLDERS.get(w, w) for w in words)] = None
    return [list(words[1:]) for words in unique]


COMMANDS = documented_commands()


def test_the_docs_show_commands_including_configuration() -> None:
    docs = {doc for doc, _ in COMMANDS}
    assert {"CONFIGURATION.md", "CONFIG.md", "ALERTS.md", "RULES.md"} <= docs
    assert len(COMMANDS) >= 40
    alerts = next(c for d, c in COMMANDS if d == "ALERTS.md" and "--page-token" in c)
    assert len(expand(alerts)) >= 15  # the synopsis is expanded, not parsed as one line


@pytest.mark.parametrize(("doc", "command"), COMMANDS)
def test_documented_command_parses(doc: str, command: str) -> None:
    for args in expand(command):
        errors = io.StringIO()
        try:
            with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
                parsed = build_parser().parse_args(args)
        except SystemExit as exc:  # argparse refuses (2); --help/--version print (0)
            assert exc.code == 0, f"{doc}: {command}\n  as: {' '.join(args)}\n{errors.getvalue()}"
            continue
        assert callable(parsed.func), f"{doc}: {' '.join(args)}"


# ---- the index and the links ---------------------------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_docs_index_lists_every_doc() -> None:
    index = (REPO / "docs" / "README.md").read_text()
    listed = {link for link in _LINK.findall(index) if not link.startswith("../")}
    on_disk = {p.name for p in (REPO / "docs").glob("*.md")} - {"README.md"}
    assert listed == on_disk


def test_relative_links_in_the_docs_resolve() -> None:
    checked = 0
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for link in _LINK.findall(page.read_text()):
            if re.match(r"^[a-z]+:", link) or link.startswith("#"):
                continue
            target = (page.parent / link.split("#", 1)[0]).resolve()
            assert target.exists(), f"{page.relative_to(REPO)}: broken link {link}"
            checked += 1
    assert checked >= 20
