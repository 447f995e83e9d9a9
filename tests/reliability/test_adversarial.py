"""Adversarial: hostile patterns, messages, connections, enrollments and identities."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.fixtures.system import (
    ManagerProcess,
    RunningManager,
    run_cli,
    start_link,
)
from trailwarden.agent.enroll import enroll
from trailwarden.agent.identity import KEY_FILE, AgentIdentity
from trailwarden.agent.spool import Spool
from trailwarden.common import channels, tls
from trailwarden.common.errors import (
    EnrollmentError,
    InsecureKeyFileError,
    TokenError,
)
from trailwarden.common.model import AgentRef, SourceMeta
from trailwarden.common.wire import (
    admin_pb2,
    admin_pb2_grpc,
    enrollment_pb2,
    enrollment_pb2_grpc,
    link_pb2,
    link_pb2_grpc,
)
from trailwarden.manager.agents.registry import Registry, hash_token
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import load_ruleset
from trailwarden.manager.store.sqlite.database import Database

AREA = "Adversarial"
SOURCE = SourceMeta("trail", "bucket", "AWSLogs/111122223333/x.json.gz", "111122223333")


def _record(**fields: Any) -> bytes:
    record: dict[str, Any] = {
        "eventVersion": "1.08",
        "eventID": str(uuid.uuid4()),
        "eventTime": "2026-11-01T10:00:00Z",
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "Root", "arn": "arn:aws:iam::111122223333:root"},
        "responseElements": {"ConsoleLogin": "Success"},
    }
    record.update(fields)
    return json.dumps(record).encode()


def _event_id(raw: bytes) -> str:
    return str(json.loads(raw)["eventID"])


def _agent_channel(address: str, identity: AgentIdentity, **options: Any) -> grpc.Channel:
    creds = channels.client_channel_credentials(
        identity.ca_pem, identity.cert_pem, identity.key_pem
    )
    extra = [(f"grpc.{k}", v) for k, v in options.items()]
    return grpc.secure_channel(
        address, creds, options=channels.channel_options("localhost") + extra
    )


def _link_session(
    address: str, identity: AgentIdentity, batches: list[link_pb2.EventBatch], **options: Any
) -> list[link_pb2.ManagerMessage]:
    """Hello, the batches, end of stream; every manager message until the stream ends."""
    messages = [link_pb2.AgentMessage(hello=link_pb2.Hello(agent_version="t", hostname="h"))]
    messages += [link_pb2.AgentMessage(batch=b) for b in batches]
    with _agent_channel(address, identity, **options) as channel:
        stream = link_pb2_grpc.AgentLinkStub(channel).Connect(iter(messages), timeout=30)
        return list(stream)


def _batch(sequence: int, records: list[bytes], source: SourceMeta = SOURCE) -> link_pb2.EventBatch:
    return link_pb2.EventBatch(
        sequence=sequence,
        source=link_pb2.SourceMeta(
            source=source.source, bucket=source.bucket, key=source.key, account_id=source.account_id
        ),
        records=records,
    )


def _acked(messages: list[link_pb2.ManagerMessage]) -> list[int]:
    return [s for m in messages if m.WhichOneof("body") == "ack" for s in m.ack.sequences]


def _alert_agents(database: Path, event_ids: set[str]) -> dict[str, str]:
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute("SELECT event_id, agent_id FROM alerts").fetchall()
    finally:
        conn.close()
    return {event_id: agent for event_id, agent in rows if event_id in event_ids}


# ---- patterns ---------------------------------------------------------------------------

EVIL_RULES = """
<group name="evil,">
  <rule id="100100" level="5">
    <decoded_as>json</decoded_as>
    <field name="aws.userAgent" type="pcre2">^(a+)+$</field>
    <description>nested quantifier</description>
  </rule>
  <rule id="100101" level="5">
    <decoded_as>json</decoded_as>
    <field name="aws.userAgent" type="pcre2">^(a|aa)*c$</field>
    <description>alternation under a star</description>
  </rule>
  <rule id="100102" level="5">
    <decoded_as>json</decoded_as>
    <regex type="pcre2">(.*a){25}</regex>
    <description>repeated wildcard group over the whole event</description>
  </rule>
</group>
"""


def test_catastrophic_backtracking_pattern_and_event_stay_linear(tmp_path: Path) -> None:
    """Rules built to backtrack catastrophically ((a+)+$, (a|aa)*c, (.*a){25}) against a
    100,000-character event: all analysed in well under a second (RE2, linear time); a
    back-reference RE2 cannot run goes to the backtracking engine, where a crafted near miss
    is stopped at the per-match limit and reported with file:line."""
    rules = tmp_path / "evil.xml"
    rules.write_text(EVIL_RULES)
    analyzer = Analyzer(load_ruleset([rules]), "m")
    evil = "a" * 100_000 + "!"
    raw = _record(userAgent=evil)
    # CPU time of this process, not wall time: other processes on a busy machine stretch the
    # wall clock, not the work. Backtracking on these patterns would take longer than the age
    # of the universe; linear matching takes a fraction of a second.
    started = time.process_time()
    for _ in range(5):
        outcome = analyzer.analyse(json.loads(raw), raw, SOURCE, AgentRef("a1", "n"))
    elapsed = time.process_time() - started
    assert elapsed < 2.0, f"5 analyses took {elapsed:.1f}s of CPU"
    assert outcome.rule is not None and outcome.rule.id == "100102"  # the match still works
    backref = tmp_path / "backref.xml"
    backref.write_text(
        '<group name="x,">\n<rule id="100103" level="3">\n<decoded_as>json</decoded_as>\n'
        '<field name="aws.userAgent" type="pcre2">^((a|aa)\\2?)+$</field>\n'
        "<description>d</description>\n</rule>\n</group>\n"
    )
    limited = Analyzer(load_ruleset([backref]), "m")
    near_miss = _record(userAgent="a" * 40 + "b")
    started = time.monotonic()
    outcome = limited.analyse(json.loads(near_miss), near_miss, SOURCE, AgentRef("a1", "n"))
    assert time.monotonic() - started < 2.0
    assert outcome.rule is None  # the stopped test counts as not matching
    (error,) = outcome.rule_errors
    assert error.startswith(f"rule 100103 ({backref}:2): ") and "match limit" in error


# ---- gRPC messages ----------------------------------------------------------------------


def test_oversized_and_garbage_link_messages_are_refused_and_the_manager_keeps_serving(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path]
) -> None:
    """A 65 MB batch (over the 64 MB message limit) is refused with RESOURCE_EXHAUSTED and
    bytes that are not protobuf with a clear error status; the same agent then delivers a
    normal batch on a new stream and gets its ack."""
    identity = AgentIdentity.load(enrolled_agent("web-1"))
    address = running_manager.home.link_address
    huge = _batch(1, [b'{"eventID":"big","x":"' + b"x" * (65 * 1024**2) + b'"}'])
    with pytest.raises(grpc.RpcError) as caught:
        _link_session(address, identity, [huge], max_send_message_length=-1)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    del huge

    with _agent_channel(address, identity) as channel:
        raw_call = channel.stream_stream(
            "/trailwarden.v1.AgentLink/Connect",
            request_serializer=None,
            response_deserializer=None,
        )
        with pytest.raises(grpc.RpcError) as garbage:
            list(raw_call(iter([b"\xff\xff\xff\xff\x0f garbage"]), timeout=10))
    assert garbage.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)

    good = _record()
    messages = _link_session(address, identity, [_batch(7, [good])])
    assert _acked(messages) == [7]
    assert _alert_agents(running_manager.home.path / "manager.db", {_event_id(good)})


def _fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_a_thousand_idle_and_half_open_connections_do_not_starve_a_real_agent(
    manager_process: ManagerProcess, tmp_path: Path
) -> None:
    """1,000 loopback connections to the link and enrollment ports (idle, half a TLS
    ClientHello, garbage) held open: a real agent still enrolls and its records are
    acknowledged; once they close, the manager's open file count returns to near its start."""
    home = manager_process.home
    database = Database(home.path / "manager.db")
    token = Registry(database).create_token(600, 1, "", "test").token
    database.close()
    manager_process.start()
    assert manager_process.proc is not None
    pid = manager_process.proc.pid
    baseline = _fd_count(pid)
    sockets: list[socket.socket] = []
    try:
        for index in range(1000):
            port = home.link_port if index % 4 else home.enroll_port
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if index % 3 == 1:
                sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # half a hello
            elif index % 3 == 2:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # not even TLS
            sockets.append(sock)
        agent_home = tmp_path / "agent"
        enroll(agent_home, home.enroll_address, token, home.ca_fingerprint, "web-1")
        identity = AgentIdentity.load(agent_home)
        records = [_record() for _ in range(50)]
        messages = _link_session(home.link_address, identity, [_batch(1, records)])
        assert _acked(messages) == [1]
        # Idle and half-hello connections are held (garbage ones are closed at once).
        assert _fd_count(pid) >= baseline + 600
    finally:
        for sock in sockets:
            sock.close()
    deadline = time.monotonic() + 30
    while _fd_count(pid) > baseline + 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _fd_count(pid) <= baseline + 20, "connections leaked after the peers closed"
    assert manager_process.proc.poll() is None
    assert manager_process.terminate() == 0


# ---- enrollment -------------------------------------------------------------------------


def test_token_guessing_is_rate_limited_and_tokens_are_hashed_at_rest(
    running_manager: RunningManager, tmp_path: Path, secrets: Any
) -> None:
    """Ten wrong guesses from one address lock it out: the eleventh attempt is refused even
    with the right token; the token exists at rest only as its SHA-256 (the database file
    never holds it), and no log line carries it."""
    token = running_manager.token()
    secrets.add(token)
    home = running_manager.home
    for attempt in range(10):
        with pytest.raises(TokenError):
            enroll(
                tmp_path / f"g{attempt}",
                home.enroll_address,
                f"tw1_guess{attempt:04d}xxxx",
                home.ca_fingerprint,
                f"guess-{attempt}",
            )
    with pytest.raises(EnrollmentError, match="too many failed"):
        enroll(tmp_path / "right", home.enroll_address, token, home.ca_fingerprint, "right")
    data = b"".join(p.read_bytes() for p in home.path.glob("manager.db*"))
    assert token.encode() not in data
    conn = sqlite3.connect(home.path / "manager.db")
    try:
        hashes = {row[0] for row in conn.execute("SELECT token_hash FROM enrollment_tokens")}
    finally:
        conn.close()
    assert hash_token(token) in hashes


def test_a_replayed_enrollment_request_is_refused(
    running_manager: RunningManager, tmp_path: Path
) -> None:
    """The exact same enrollment request (one-use token, same CSR) sent twice: the first gets
    a certificate, the replay is refused and no second agent exists."""
    home = running_manager.home
    ca_pem = tls.fetch_pinned_ca("127.0.0.1", home.enroll_port, home.ca_fingerprint)
    key = tls.new_private_key()
    request = enrollment_pb2.EnrollRequest(
        token=running_manager.token(uses=1),
        csr_pem=tls.build_csr(key, "replayed"),
        name="replayed",
        hostname="h",
        agent_version="t",
    )
    with grpc.secure_channel(
        home.enroll_address,
        channels.client_channel_credentials(ca_pem),
        options=channels.channel_options(),
    ) as channel:
        stub = enrollment_pb2_grpc.EnrollmentStub(channel)
        first = stub.Enroll(request, timeout=10)
        assert first.agent_id
        with pytest.raises(grpc.RpcError) as caught:
            stub.Enroll(request, timeout=10)
    assert caught.value.code() in (
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    names = [a.name for a in running_manager.server.registry.list_agents()]
    assert names.count("replayed") == 1


# ---- identity ---------------------------------------------------------------------------


def test_agent_certificate_cannot_drive_admin_rpcs(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path]
) -> None:
    """An agent certificate calling admin RPCs (tokens, alerts, config) is refused with
    PERMISSION_DENIED: admin rights come only from an admin certificate."""
    identity = AgentIdentity.load(enrolled_agent("web-1"))
    with _agent_channel(running_manager.home.link_address, identity) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        for call, request in (
            (stub.CreateToken, admin_pb2.CreateTokenRequest(ttl_seconds=60, uses=1)),
            (stub.QueryAlerts, admin_pb2.AlertQuery()),
            (stub.Stats, admin_pb2.StatsRequest()),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                call(request, timeout=10)
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_records_are_attributed_to_the_certificate_not_the_message(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path]
) -> None:
    """Agent A says it is B everywhere a message can (hello hostname, source name, an
    'agent' field in the record): every alert is stored under A's certificate ID."""
    a = AgentIdentity.load(enrolled_agent("agent-a"))
    b = AgentIdentity.load(enrolled_agent("agent-b"))
    records = [
        _record(agent={"id": b.agent_id, "name": b.name}, userAgent=f"agent {b.agent_id}")
        for _ in range(5)
    ]
    spoofed = SourceMeta(f"agent:{b.agent_id}", "bucket", "k", "111122223333")
    messages = [link_pb2.AgentMessage(hello=link_pb2.Hello(agent_version="t", hostname=b.name))]
    messages.append(link_pb2.AgentMessage(batch=_batch(1, records, spoofed)))
    with _agent_channel(running_manager.home.link_address, a) as channel:
        replies = list(link_pb2_grpc.AgentLinkStub(channel).Connect(iter(messages), timeout=30))
    assert replies[0].welcome.agent_id == a.agent_id
    assert _acked(replies) == [1]
    owners = _alert_agents(
        running_manager.home.path / "manager.db", {_event_id(r) for r in records}
    )
    assert len(owners) == 5 and set(owners.values()) == {a.agent_id}


def test_agent_refuses_a_private_key_others_can_read(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path]
) -> None:
    """An agent key file readable by group or others is refused, by the library and by
    `trailwarden agent run`, with the chmod that fixes it; the key never reaches a log."""
    home = enrolled_agent("web-1")
    key = home / KEY_FILE
    key.chmod(0o640)
    with pytest.raises(InsecureKeyFileError, match="chmod 600"):
        AgentIdentity.load(home)
    result = run_cli("agent", "run", "--home", str(home), "--once", timeout=60)
    assert result.returncode != 0
    assert "chmod 600" in result.stderr + result.stdout
    assert "PRIVATE KEY" not in result.stderr + result.stdout


# ---- secrets in logs --------------------------------------------------------------------


def test_no_secret_in_the_debug_logs_of_a_real_enrollment_and_s3_agent(
    manager_process: ManagerProcess,
    s3: Any,
    new_bucket: Any,
    aws_profile: Any,
    tmp_path: Path,
    secrets: Any,
) -> None:
    """A manager at DEBUG, `trailwarden --debug agent enroll` with a token and `trailwarden
    --debug agent run` reading S3 with a profile's secret key, through delivery: no log
    (every *.log under the test's folder, checked by the autouse fixture) holds the AWS
    secret key, the enrollment token or a private key; the records did arrive."""
    from tests.fixtures.aws import cloudtrail_key
    from tests.reliability.corpus import envelope, record
    from tests.reliability.processes import (
        AgentProcess,
        stored_count,
        wait_until,
        write_agent_toml,
    )

    home = manager_process.home
    toml = home.path / "manager.toml"
    toml.write_text(toml.read_text().replace('log_level = "INFO"', 'log_level = "DEBUG"'))
    database = Database(home.path / "manager.db")
    token = Registry(database).create_token(600, 1, "", "test").token
    database.close()
    secrets.add(token)
    manager_process.start()
    agent_home = tmp_path / "agent"
    enrolled = run_cli(
        "--debug", "agent", "enroll", "--home", str(agent_home), "--manager",
        home.enroll_address, "--token", token, "--ca-sha256", home.ca_fingerprint,
        "--name", "s3-agent",
    )  # fmt: skip
    (tmp_path / "enroll.log").write_text(enrolled.stdout + enrolled.stderr)
    assert enrolled.returncode == 0, enrolled.stderr
    bucket = new_bucket()
    records = [record() for _ in range(30)]
    when = datetime(2026, 11, 1, 10, tzinfo=UTC)
    key = cloudtrail_key("111122223333", "us-east-1", when)
    s3.put_object(Bucket=bucket, Key=key, Body=envelope(records))
    source = {
        "type": "cloudtrail",
        "bucket": bucket,
        "aws_profile": aws_profile.name,
        "service_endpoint": aws_profile.endpoint,
        "only_logs_after": "2026-11-01",
    }
    write_agent_toml(agent_home, home, [source])
    agent = AgentProcess(agent_home, tmp_path / "agent.log")
    agent.start(debug=True)
    try:
        wait_until(lambda: stored_count(home.path / "manager.db") >= 30, 90, "delivery")
        assert agent.terminate() == 0
    finally:
        agent.stop_quietly()
    assert manager_process.terminate() == 0
    assert "DEBUG" in agent.log  # the most talkative setting really was on
    assert aws_profile.credentials_file.read_text().count("aws_secret_access_key") == 1


def test_the_connection_limit_holds_and_frees_up(manager_home: Any, tmp_path: Path) -> None:
    """With max_connections = 2, a third agent's stream is refused with RESOURCE_EXHAUSTED
    while two are connected, an already-connected agent may still reconnect, and the third
    is served as soon as one of the two leaves."""
    from tests.fixtures.system import RunningManager
    from trailwarden.manager.server import BackgroundManager

    toml = manager_home.path / "manager.toml"
    text = toml.read_text()
    assert "max_connections = 5000" in text
    toml.write_text(text.replace("max_connections = 5000", "max_connections = 2"))
    background = BackgroundManager(manager_home.path)
    background.start()
    running = RunningManager(manager_home, background)
    leave = [threading.Event(), threading.Event()]
    channels: list[grpc.Channel] = []
    held: list[Any] = []
    try:
        identities = []
        for name in ("one", "two", "three"):
            home = tmp_path / name
            enroll(
                home,
                manager_home.enroll_address,
                running.token(),
                manager_home.ca_fingerprint,
                name,
            )
            identities.append(AgentIdentity.load(home))
        address = manager_home.link_address
        for identity, event in zip(identities[:2], leave, strict=True):
            channel = _agent_channel(address, identity)
            channels.append(channel)

            def requests(done: threading.Event = event) -> Iterator[link_pb2.AgentMessage]:
                yield link_pb2.AgentMessage(hello=link_pb2.Hello(agent_version="t"))
                done.wait(30)

            stream = link_pb2_grpc.AgentLinkStub(channel).Connect(requests(), timeout=60)
            held.append(stream)  # dropping the call object would cancel it
            assert next(stream).welcome.agent_id == identity.agent_id
        with pytest.raises(grpc.RpcError) as caught:
            _link_session(address, identities[2], [])
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _acked(_link_session(address, identities[1], [_batch(1, [_record()])])) == [1]
        leave[0].set()
        deadline = time.monotonic() + 20
        while len(running.server.sessions) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _acked(_link_session(address, identities[2], [_batch(1, [_record()])])) == [1]
    finally:
        for event in leave:
            event.set()
        for channel in channels:
            channel.close()
        background.stop()


def test_revoking_a_streaming_agent_cuts_it_off_at_once(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path], tmp_path: Path
) -> None:
    """`admin revoke` while an agent streams: its open link is closed at once, nothing it sends
    afterwards is stored, its reconnects are refused (the records wait in its spool)."""
    home = enrolled_agent("web-1")
    spool = Spool(tmp_path / "spool.db", 1 << 30)
    link = start_link(home, running_manager.home.link_address, spool)
    client = link.client
    database = running_manager.home.path / "manager.db"
    try:
        before = _record()
        spool.put(SOURCE, [before])
        deadline = time.monotonic() + 20
        while spool.stats().batches and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _alert_agents(database, {_event_id(before)})
        result = run_cli(
            "admin", "revoke", client.identity.agent_id,
            env={"TRAILWARDEN_CREDENTIALS": str(running_manager.home.credentials)},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        after = _record()
        spool.put(SOURCE, [after])
        time.sleep(3)
        assert not client.connected.is_set()
        assert "revoked" in client.last_error
        assert spool.stats().batches == 1  # kept, not acknowledged
        assert not _alert_agents(database, {_event_id(after)})
    finally:
        link.close()
        spool.close()
