"""ConfigApplier: central revisions applied live to a real collector, never half-applied."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.helpers import drain, event_ids
from tests.fixtures.aws import make_record, write_aws_config
from trailwarden.agent.applier import (
    APPLIED,
    CENTRAL_FILE,
    FAILED,
    ConfigApplier,
)
from trailwarden.agent.collector import Collector
from trailwarden.agent.spool import Spool
from trailwarden.common.errors import ConfigError, SecretInConfigError
from trailwarden.common.schema.central import config_hash, parse_central_config
from trailwarden.common.schema.sources import DirectorySourceConfig, parse_sources
from trailwarden.common.wire import link_pb2


def _folder(root: Path, name: str, events: int = 2) -> tuple[Path, list[str]]:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    records = [make_record() for _ in range(events)]
    (folder / f"{name}-{time.monotonic_ns()}.json").write_text(json.dumps({"Records": records}))
    return folder, [r["eventID"] for r in records]


def _toml(*folders: Path, extra: str = "") -> str:
    parts = [extra] if extra else []
    for folder in folders:
        parts.append(
            f'[[sources]]\ntype = "directory"\nname = "{folder.name}"\npath = "{folder}"\n'
            'interval = "1s"\n'
        )
    return "\n".join(parts)


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return home


def _update(revision: int, text: str) -> link_pb2.ConfigUpdate:
    return link_pb2.ConfigUpdate(revision=revision, hash=config_hash(text), config_toml=text)


@pytest.fixture
def collector(tmp_path: Path, spool: Spool) -> Iterator[Collector]:
    collector = Collector([], spool, state_dir=tmp_path)
    yield collector
    collector.stop()


def _names(collector: Collector) -> list[str]:
    return sorted(s.name for s in collector.status())


def test_apply_swaps_sources_live_and_collection_follows(
    tmp_path: Path, spool: Spool, collector: Collector
) -> None:
    a, a_ids = _folder(tmp_path / "data", "a")
    b, b_ids = _folder(tmp_path / "data", "b")
    applier = ConfigApplier(_home(tmp_path), collector, [])
    status = applier.apply(_update(3, _toml(a)))
    assert (status.state, status.revision, status.error) == (APPLIED, 3, "")
    assert _names(collector) == ["a"]
    collector.run_once()
    assert sorted(event_ids(drain(spool))) == sorted(a_ids)

    status = applier.apply(_update(4, _toml(b)))  # a removed, b added
    assert status.state == APPLIED
    assert _names(collector) == ["b"]
    _folder(tmp_path / "data", "a")  # new file in the removed source: must not be read
    collector.run_once()
    assert sorted(event_ids(drain(spool))) == sorted(b_ids)
    assert applier.applied() == (4, config_hash(_toml(b)))


def test_invalid_revision_fails_and_keeps_the_previous_config(
    tmp_path: Path, collector: Collector
) -> None:
    a, _ = _folder(tmp_path / "data", "a")
    applier = ConfigApplier(_home(tmp_path), collector, [])
    good = _toml(a)
    assert applier.apply(_update(1, good)).state == APPLIED

    bad = '[[sources]]\ntype = "cloudtrail"\nbucket = "org-trail-x"\nregions = "us-east-1"\n'
    status = applier.apply(_update(2, bad))
    assert status.state == FAILED
    assert "sources[0].regions" in status.error
    assert applier.applied() == (1, config_hash(good))
    assert _names(collector) == ["a"]


def test_a_folder_missing_on_this_host_fails_with_the_reason(
    tmp_path: Path, collector: Collector
) -> None:
    applier = ConfigApplier(_home(tmp_path), collector, [])
    text = _toml(tmp_path / "nowhere")
    status = applier.apply(_update(5, text))
    assert status.state == FAILED
    assert "is not a folder on this agent host" in status.error
    assert applier.applied() == (0, "")
    assert _names(collector) == []


def test_an_unknown_aws_profile_fails_on_the_agent(
    tmp_path: Path, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, credentials = write_aws_config(tmp_path / "aws", {"audit": {"region": "us-east-1"}}, {})
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    applier = ConfigApplier(_home(tmp_path), collector, [])
    text = '[[sources]]\ntype = "cloudtrail"\nbucket = "trail"\naws_profile = "missing"\n'
    status = applier.apply(_update(2, text))
    assert status.state == FAILED
    assert "aws_profile" in status.error and "missing" in status.error
    known = '[[sources]]\ntype = "cloudtrail"\nbucket = "trail"\naws_profile = "audit"\n'
    assert applier.apply(_update(3, known)).state == APPLIED


def test_hash_mismatch_is_refused(tmp_path: Path, collector: Collector) -> None:
    applier = ConfigApplier(_home(tmp_path), collector, [])
    update = link_pb2.ConfigUpdate(revision=2, hash="0" * 64, config_toml='log_level = "DEBUG"')
    status = applier.apply(update)
    assert status.state == FAILED and "does not match its hash" in status.error


def test_secrets_are_refused_on_the_agent_too(tmp_path: Path, collector: Collector) -> None:
    applier = ConfigApplier(_home(tmp_path), collector, [])
    text = '[limits]\nmax_workers = 2\n[extra]\naws_secret_access_key = "x"\n'
    status = applier.apply(_update(2, text))
    assert status.state == FAILED
    assert "credentials never go in central config" in status.error
    with pytest.raises(SecretInConfigError):
        parse_central_config('log_level = "INFO"\nnote = "AKIAABCDEFGHIJKLMNOP"', "x")


def test_restart_resumes_the_saved_revision(
    tmp_path: Path, spool: Spool, collector: Collector
) -> None:
    a, _ = _folder(tmp_path / "data", "a")
    home = _home(tmp_path)
    text = _toml(a)
    ConfigApplier(home, collector, []).apply(_update(7, text))
    saved = json.loads((home / CENTRAL_FILE).read_text())
    assert (saved["revision"], saved["hash"]) == (7, config_hash(text))

    fresh = Collector([], spool, state_dir=tmp_path)
    try:
        resumed = ConfigApplier(home, fresh, [])
        assert resumed.applied() == (7, config_hash(text))
        assert _names(fresh) == ["a"]
    finally:
        fresh.stop()


def test_revision_zero_goes_back_to_the_local_sources(tmp_path: Path, collector: Collector) -> None:
    a, _ = _folder(tmp_path / "data", "a")
    local, _ = _folder(tmp_path / "data", "local")
    local_sources = parse_sources(
        [{"type": "directory", "name": "local", "path": str(local)}], "agent.toml"
    )
    collector.reconfigure(local_sources)
    applier = ConfigApplier(_home(tmp_path), collector, local_sources)
    applier.apply(_update(2, _toml(a)))
    assert _names(collector) == ["a"]  # central sources replace agent.toml's
    status = applier.apply(link_pb2.ConfigUpdate(revision=0, hash="", config_toml=""))
    assert status.state == APPLIED
    assert _names(collector) == ["local"]
    assert applier.applied() == (0, "")
    assert not (_home(tmp_path) / CENTRAL_FILE).exists()

    applier.apply(_update(3, _toml(a, extra="keep_local_sources = true")))
    assert _names(collector) == ["a", "local"]


def test_limits_and_log_level_apply(tmp_path: Path, collector: Collector) -> None:
    a, _ = _folder(tmp_path / "data", "a")
    root = logging.getLogger()
    before = root.level
    applier = ConfigApplier(_home(tmp_path), collector, [])
    try:
        extra = 'log_level = "debug"\n[limits]\nmax_workers = 1\nmin_interval = "1m"\n'
        text = _toml(a, extra=extra).replace('"1s"', '"1s"\nworkers = 8')
        assert applier.apply(_update(2, text)).state == APPLIED
        assert root.level == logging.DEBUG
        settings = parse_central_config(text, "x")
        (source,) = settings.effective_sources([])
        assert isinstance(source, DirectorySourceConfig)
        assert (source.workers, source.interval) == (1, 60.0)
        assert applier.apply(_update(3, _toml(a))).state == APPLIED
        assert root.level == before  # back to agent.toml's level when central sets none
    finally:
        root.setLevel(before)


def test_unknown_top_level_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        parse_central_config('log_levle = "INFO"', "central config revision 9")


def test_a_changed_source_keeps_its_checkpoints(
    tmp_path: Path, spool: Spool, collector: Collector
) -> None:
    a, first = _folder(tmp_path / "data", "a")
    applier = ConfigApplier(_home(tmp_path), collector, [])
    assert applier.apply(_update(1, _toml(a))).state == APPLIED
    collector.run_once()
    assert sorted(event_ids(drain(spool))) == sorted(first)

    changed = _toml(a).replace('interval = "1s"', 'interval = "2s"\nworkers = 1')
    assert applier.apply(_update(2, changed)).state == APPLIED
    (source,) = collector.status()
    assert source.name == "a"
    _, second = _folder(tmp_path / "data", "a")
    collector.run_once()
    assert sorted(event_ids(drain(spool))) == sorted(second)  # nothing read twice
