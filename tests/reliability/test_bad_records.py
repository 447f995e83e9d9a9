"""Malformed records sent to the manager's ingest: counted, reported, neighbours kept."""

from __future__ import annotations

import gzip
import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.aws import AwsProfile, cloudtrail_key
from tests.fixtures.system import ManagerProcess, RunningManager, start_link
from tests.reliability.processes import (
    admin_agents_table,
    start_s3_agent,
    stored_count,
    stored_ids,
    wait_for_source_count,
    wait_until,
)
from trailwarden.agent.collector import Collector
from trailwarden.agent.link import LinkClient
from trailwarden.agent.spool import Spool
from trailwarden.common.model import SourceMeta
from trailwarden.common.schema.sources import parse_sources

AREA = "Bad input"
SOURCE = SourceMeta("trail", "trail-bucket", "AWSLogs/111122223333/x.json.gz", "111122223333")


def root_login(**fields: Any) -> dict[str, Any]:
    """A root console login (the default ruleset alerts on it) with a fresh eventID."""
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventID": str(uuid.uuid4()),
        "eventTime": "2026-11-01T10:00:00Z",
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "awsRegion": "us-east-1",
        "recipientAccountId": "111122223333",
        "sourceIPAddress": "203.0.113.9",
        "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"},
        "responseElements": {"ConsoleLogin": "Success"},
        "additionalEventData": {"MFAUsed": "No"},
    }
    record.update(fields)
    return record


def raw(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode()


# Records the manager cannot use at all: counted bad, reported with agent/location/index.
UNUSABLE: dict[str, bytes] = {
    "not JSON": b'{"eventID": "x", "eventName": ',
    "JSON array": b"[1, 2, 3]",
    "JSON string": b'"ConsoleLogin"',
    "JSON null": b"null",
    "invalid UTF-8": b'{"eventID":"\xff\xfe"}',
    "nesting 10,000 deep": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "nesting 50,000 deep": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "NaN constant": b'{"eventID":"nan-1","bytes":NaN}',
    "Infinity constant": b'{"eventID":"inf-1","bytes":Infinity}',
    "empty bytes": b"",
}

# Records that are odd but analysable: stored once, analysed, never crash the batch.
ODD: dict[str, dict[str, Any]] = {
    "eventID missing": {"eventID": None},
    "eventID a number": {"eventID": 12345},
    "eventID an object": {"eventID": {"nested": True}},
    "eventTime missing": {"eventTime": None},
    "eventTime a number": {"eventTime": 1_700_000_000},
    "eventTime not a date": {"eventTime": "yesterday at noon"},
    "eventTime a list": {"eventTime": ["2026-11-01T10:00:00Z"]},
    "eventName missing": {"eventName": None},
    "eventName a number": {"eventName": 7},
    "eventName an object": {"eventName": {"x": 1}},
    "userIdentity missing": {"userIdentity": None},
    "userIdentity a string": {"userIdentity": "root"},
    "userIdentity a list": {"userIdentity": [1, "two"]},
    "recipientAccountId a number": {"recipientAccountId": 111122223333},
    "responseElements a string": {"responseElements": "Success"},
    "lone surrogate in a string": {"userAgent": "\ud800"},
    "number overflowing to infinity": {"bytes": 1e400},
    "NUL and control characters": {"userAgent": "a\u0000b\u001b[31mc"},
    "1 MB field name": {"k" * (1024**2): "v"},
    "requestParameters nested 900 deep": {"requestParameters": {}},
    "10 MB record": {},
}


@dataclass
class Manager:
    """A real manager (in-process, real gRPC) and an enrolled agent's link feeding it."""

    running: RunningManager
    spool: Spool
    client: LinkClient

    @property
    def counters(self) -> dict[str, Any]:
        return self.running.server.counters.snapshot()

    @property
    def alerts_file(self) -> Path:
        return self.running.home.path / "alerts" / "alerts.json"

    @property
    def database(self) -> Path:
        return self.running.home.path / "manager.db"

    def deliver(self, records: list[bytes]) -> None:
        """Spool ``records`` as one object's batch and wait until the manager acked them."""
        acked = self.client.acked_batches
        self.spool.put(SOURCE, records)
        deadline = time.monotonic() + 30
        while self.spool.stats().batches and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.spool.stats().batches == 0, "not acknowledged"
        assert self.client.acked_batches > acked


@pytest.fixture
def manager(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path], tmp_path: Path
) -> Iterator[Manager]:
    home = enrolled_agent("web-1")
    spool = Spool(tmp_path / "spool.db", 1 << 30)
    link = start_link(home, running_manager.home.link_address, spool)
    client = link.client
    try:
        yield Manager(running_manager, spool, client)
    finally:
        link.close()
        spool.close()


def _odd_raw(name: str, override: dict[str, Any]) -> tuple[bytes, str]:
    record = root_login(**override)
    if name == "requestParameters nested 900 deep":
        deep = '{"a":' * 900 + "1" + "}" * 900
        text = json.dumps(record)[:-1] + f', "requestParameters": {deep}}}'
        return text.encode(), str(record["eventID"])
    if name == "10 MB record":
        record["requestParameters"] = {"policy": "x" * (10 * 1024**2)}
        return json.dumps(record).encode(), str(record["eventID"])
    if name == "number overflowing to infinity":
        text = json.dumps({**record, "bytes": 0})[:-1].replace('"bytes": 0', '"bytes": 1e400')
        return (text + "}").encode(), str(record["eventID"])
    return json.dumps(record).encode(), str(record.get("eventID"))


def _seen(database: Path) -> set[str]:
    conn = sqlite3.connect(database)
    try:
        return {row[0] for row in conn.execute("SELECT event_key FROM seen_events")}
    finally:
        conn.close()


def test_unusable_records_are_counted_and_their_neighbours_kept(manager: Manager) -> None:
    """Records that are not JSON objects (broken JSON, arrays, invalid UTF-8, NaN, 10,000-deep
    nesting, empty) are counted and reported with agent, bucket/key and index; the good
    records between them are stored and alert."""
    records: list[bytes] = []
    good: list[str] = []
    bad_index: dict[int, str] = {}
    for name, body in UNUSABLE.items():
        before = root_login()
        good.append(before["eventID"])
        records.append(raw(before))
        bad_index[len(records)] = name
        records.append(body)
    manager.deliver(records)
    counters = manager.counters
    # NaN/Infinity must be refused by the manager's record parser (commit 528d9e2).
    assert counters["bad_records"] == len(UNUSABLE), counters["recent_problems"]
    assert counters["analysed"] == len(good)
    assert set(good) <= _seen(manager.database)
    assert counters["alerts"] >= len(good)
    agent_id = manager.client.identity.agent_id
    for index in bad_index:
        expected = f"agent={agent_id} where={SOURCE.location} record={index}:"
        assert any(p.startswith(expected) for p in counters["recent_problems"]), bad_index[index]


def test_odd_records_are_analysed_without_breaking_the_batch(manager: Manager) -> None:
    """Missing or wrongly typed eventID/eventTime/eventName/userIdentity, lone surrogates,
    numbers overflowing to infinity, control characters, huge field names and a 10 MB record:
    each record is stored once and analysed, and every alert written is strict JSON."""
    records: list[bytes] = []
    ids: list[str] = []
    for name, override in ODD.items():
        body, event_id = _odd_raw(name, override)
        records.append(body)
        ids.append(event_id)
    manager.deliver(records)
    counters = manager.counters
    assert counters["bad_records"] == 0, counters["recent_problems"]
    assert counters["analysed"] == len(ODD)
    assert counters["alerts"] >= len(ODD) - 1
    # Records without a usable eventID are keyed by a hash of their bytes instead.
    assert {i for i in ids if i.count("-") == 4} <= _seen(manager.database)
    # Sent again (an agent resend): nothing new, nothing counted twice.
    manager.deliver(records)
    again = manager.counters
    assert again["analysed"] == len(ODD) and again["duplicates"] == len(ODD)
    for line in manager.alerts_file.read_text(encoding="utf-8").splitlines():
        json.loads(line, parse_constant=_refuse)  # strict JSON for Filebeat/Vector/jq


def _refuse(name: str) -> Any:
    raise AssertionError(f"{name} written to alerts.json (not JSON)")


def test_a_record_too_big_for_the_link_is_reported_and_does_not_block_delivery(
    manager: Manager, tmp_path: Path
) -> None:
    """A file holding a 70 MB record (past the 64 MB link message limit) between small ones,
    collected and sent over the real link: the big record is reported and skipped, every other
    record of every file is acknowledged (before, the oversized batch broke every session and
    nothing more was acknowledged)."""
    folder = tmp_path / "trail"
    folder.mkdir()
    small = [root_login() for _ in range(6)]
    big = root_login(requestParameters={"policy": "x" * (70 * 1024**2)})
    (folder / "a.json").write_text(json.dumps({"Records": [small[0], big, small[1]]}))
    (folder / "b.json").write_text(json.dumps({"Records": small[2:]}))
    table = {"type": "directory", "name": "dir", "path": str(folder)}
    collector = Collector(parse_sources([table], "test"), manager.spool, state_dir=tmp_path)
    result = collector.run_once()
    assert result.ok and result.records_spooled == len(small)
    problems = collector.status()[0].problems
    assert any("record 1:" in p.reason and "link message" in p.reason for p in problems)
    deadline = time.monotonic() + 30
    while manager.spool.stats().batches and time.monotonic() < deadline:
        time.sleep(0.05)
    assert manager.spool.stats().batches == 0
    assert {r["eventID"] for r in small} <= _seen(manager.database)
    assert big["eventID"] not in _seen(manager.database)


def test_records_nested_near_the_parsers_limit_never_stall_the_link(manager: Manager) -> None:
    """Records nested 900, 901, ... 1,000 levels deep (around Python's recursion limit, where
    a record could be read but its alert could not be written) between good ones: each is
    analysed or counted bad, the batch is acknowledged, the good records are stored."""
    good = [root_login() for _ in range(2)]
    records = [raw(good[0])]
    for depth in range(900, 1001):
        text = json.dumps(root_login())[:-1]
        text += ', "requestParameters": ' + '{"a":' * depth + "1" + "}" * depth + "}"
        records.append(text.encode())
    records.append(raw(good[1]))
    manager.deliver(records)
    counters = manager.counters
    assert counters["analysed"] + counters["bad_records"] == len(records)
    assert {r["eventID"] for r in good} <= _seen(manager.database)


# One bad record inside an otherwise good CloudTrail object, as issue 20 found them.
BAD_IN_OBJECT: dict[str, bytes] = {
    "NaN": b'{"eventID":"nan-2","eventName":"GetObject","bytes":NaN}',
    "nested 50,000 deep": b'{"eventID":"deep","a":' + b"[" * 50_000 + b"]" * 50_000 + b"}",
    "invalid UTF-8": b'{"eventID":"utf8","userAgent":"curl \xff\xfe"}',
    "5,000-digit integer": b'{"eventID":"big","bytes":' + b"9" * 5000 + b"}",
}


@pytest.mark.slow
def test_one_bad_record_costs_only_itself_from_s3_to_the_store(
    manager_process: ManagerProcess,
    s3: Any,
    new_bucket: Callable[[], str],
    aws_profile: AwsProfile,
    tmp_path: Path,
) -> None:
    """Objects shaped {"Records": [good, bad, good]} with NaN, 50,000-deep nesting, an invalid
    UTF-8 byte or a 5,000-digit integer in the middle record, read from a moto bucket by an
    agent process and sent to a manager process: every good record is stored once, each bad
    record is refused alone, logged with bucket/key and its index, and counted in `admin
    agents` (before, each whole object was refused and its good records never arrived)."""
    bucket = new_bucket()
    day = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    expected: set[str] = set()
    keys: dict[str, str] = {}
    for index, (name, bad) in enumerate(BAD_IN_OBJECT.items()):
        before, after = root_login(), root_login()
        body = b'{"Records":[' + raw(before) + b"," + bad + b"," + raw(after) + b"]}"
        key = cloudtrail_key("111122223333", "us-east-1", day, unique=f"{index:02d}-bad-record")
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(body))
        keys[name] = key
        expected |= {before["eventID"], after["eventID"]}
    agent = start_s3_agent(manager_process, tmp_path, "bad-records", bucket, aws_profile)
    database = manager_process.home.path / "manager.db"
    try:
        wait_until(lambda: stored_ids(database) >= expected, 60, "the good records")
        status = wait_for_source_count(manager_process.home, "records_refused", len(keys))
        table = admin_agents_table(manager_process.home)
        assert agent.terminate() == 0
    finally:
        agent.stop_quietly()
    assert manager_process.terminate() == 0
    assert stored_ids(database) == expected
    assert stored_count(database) == len(expected)
    assert int(status["records_refused"]) == len(keys)
    assert int(status.get("objects_failed", 0)) == 0
    where = {(p["where"], p["reason"].split(":")[0]) for p in status["problems"]}
    log = agent.log
    for name, key in keys.items():
        assert (f"{bucket}/{key}", "record 1") in where, name
        assert f"{bucket}/{key}: record skipped: record 1: " in log, name
    assert f"{len(keys)} record(s) refused" in table
