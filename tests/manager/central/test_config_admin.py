"""Central config over the real Admin API and CLI: set, get, diff, history, rollback, status,
assign; secrets and invalid documents refused; admin-only; audited with the admin's identity;
and a live push to a connected agent (real link client, applier and collector)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.fixtures.system import RunningManager, run_cli
from trailwarden.agent.applier import ConfigApplier
from trailwarden.agent.collector import Collector
from trailwarden.agent.identity import AgentIdentity
from trailwarden.agent.link import HelloInfo, LinkClient
from trailwarden.agent.spool import Spool
from trailwarden.common import channels, tls
from trailwarden.common.schema.central import config_hash
from trailwarden.common.wire import admin_pb2, admin_pb2_grpc
from trailwarden.manager.central.store import Target

PROD = '[[sources]]\ntype = "cloudtrail"\nname = "prod"\nbucket = "org-trail"\n'


def _stub(bundle_path: Path) -> tuple[grpc.Channel, admin_pb2_grpc.AdminStub]:
    bundle = tls.AdminBundle.load(bundle_path)
    channel = grpc.secure_channel(
        bundle.address,
        channels.client_channel_credentials(bundle.ca_pem, bundle.cert_pem, bundle.key_pem),
        options=channels.channel_options(bundle.server_name or "localhost"),
    )
    return channel, admin_pb2_grpc.AdminStub(channel)


@pytest.fixture
def admin(running_manager: RunningManager) -> Iterator[admin_pb2_grpc.AdminStub]:
    channel, stub = _stub(running_manager.home.credentials)
    yield stub
    channel.close()


def _bundle_for(running_manager: RunningManager, name: str, path: Path) -> Path:
    """A second admin certificate (another identity), signed by the manager's CA."""
    base = tls.AdminBundle.load(running_manager.home.credentials)
    material = running_manager.server.material
    key = tls.new_private_key()
    cert = tls.issue_client_cert(
        material.ca_key, material.ca_cert, key.public_key(), tls.Role.ADMIN, name, f"admin {name}"
    )
    tls.AdminBundle(
        base.address, base.server_name, base.ca_pem, tls.cert_to_pem(cert), tls.key_to_pem(key)
    ).save(path)
    return path


def _set(stub: Any, text: str, group: str = "prod", agent: str = "") -> admin_pb2.ConfigRevision:
    return stub.SetConfig(
        admin_pb2.SetConfigRequest(
            target=admin_pb2.ConfigTarget(group=group if not agent else "", agent_id=agent),
            config_toml=text,
        ),
        timeout=10,
    )


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError("condition not reached in time")


def test_set_get_history_rollback_over_the_admin_api(
    running_manager: RunningManager, admin: admin_pb2_grpc.AdminStub
) -> None:
    first = _set(admin, PROD)
    second = _set(admin, PROD + 'regions = ["eu-west-1"]\n')
    assert second.revision > first.revision and second.author == "admin:admin"
    target = admin_pb2.ConfigTarget(group="prod")
    assert admin.GetConfig(target, timeout=10).revision == second.revision
    history = admin.ConfigHistory(target, timeout=10)
    assert [r.revision for r in history.revisions] == [second.revision, first.revision]
    back = admin.RollbackConfig(
        admin_pb2.RollbackConfigRequest(target=target, to_revision=first.revision), timeout=10
    )
    assert back.revision > second.revision
    assert (back.config_toml, back.hash) == (PROD, first.hash)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (PROD + 'secret_key = "abc"\n', "credentials never go in central config"),
        (PROD + '[sources.more]\naws_session_token = "abc"\n', "credentials never go"),
        (PROD + 'regions = "us-east-1"\n', "sources[0].regions: expected a list of strings"),
        ("[[sources]\n", "not valid TOML"),
        # A paused source is validated like a running one (it used to be stored unchecked).
        (PROD + 'enabled = false\ncolour = "blue"\n', "sources[0].colour: unknown key"),
        (PROD + 'enabled = false\nregions = ["us-fake-1"]\n', "'us-fake-1' is not an AWS region"),
        (
            PROD + 'enabled = false\n[[sources.discard]]\nfield = "eventName"\nregex = "(?!x)y"\n',
            "discard[0].regex: invalid regular expression",
        ),
    ],
)
def test_invalid_or_secret_config_is_refused_by_the_manager(
    admin: admin_pb2_grpc.AdminStub, text: str, message: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        _set(admin, text)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (caught.value.details() or "")
    with pytest.raises(grpc.RpcError) as missing:
        admin.GetConfig(admin_pb2.ConfigTarget(group="prod"), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_agent_certificate_cannot_touch_config(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path]
) -> None:
    identity = AgentIdentity.load(enrolled_agent("web-1"))
    creds = channels.client_channel_credentials(
        identity.ca_pem, identity.cert_pem, identity.key_pem
    )
    with grpc.secure_channel(
        running_manager.home.link_address, creds, options=channels.channel_options("localhost")
    ) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        target = admin_pb2.ConfigTarget(agent_id=identity.agent_id)
        for call, request in (
            (stub.SetConfig, admin_pb2.SetConfigRequest(target=target, config_toml=PROD)),
            (stub.RollbackConfig, admin_pb2.RollbackConfigRequest(target=target, to_revision=1)),
            (stub.AssignGroup, admin_pb2.AssignGroupRequest(agent_id=identity.agent_id, group="x")),
            (stub.GetConfig, target),
            (stub.ConfigStatus, admin_pb2.ConfigStatusRequest()),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                call(request, timeout=10)
            assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    store = running_manager.server.config_store
    assert store.history(Target(agent_id=identity.agent_id)) == []
    assert running_manager.server.registry.get(identity.agent_id).groups == ()


def test_audit_log_records_the_admin_identity_and_the_change(
    running_manager: RunningManager, tmp_path: Path
) -> None:
    alice = _bundle_for(running_manager, "alice", tmp_path / "alice.credentials")
    channel, stub = _stub(alice)
    try:
        _set(stub, PROD)
        _set(stub, PROD + 'regions = ["eu-west-1"]\n')
    finally:
        channel.close()
    result = run_cli("admin", "audit", "--credentials", str(alice), "--json")
    assert result.returncode == 0, result.stderr
    entries = [e for e in json.loads(result.stdout) if e["action"] == "config.set"]
    assert len(entries) == 2
    assert all(e["actor"] == "admin:alice" and e["target"] == "group prod" for e in entries)
    assert '+regions = ["eu-west-1"]' in entries[0]["detail"]  # newest first: what changed


def test_cli_set_get_diff_history_rollback_status_and_assign(
    running_manager: RunningManager, enrolled_agent: Callable[[str], Path], tmp_path: Path
) -> None:
    agent_id = AgentIdentity.load(enrolled_agent("web-1")).agent_id
    creds = ["--credentials", str(running_manager.home.credentials)]
    first, second = tmp_path / "v1.toml", tmp_path / "v2.toml"
    first.write_text(PROD)
    second.write_text(PROD + 'regions = ["eu-west-1"]\n')

    out = run_cli("admin", "config", "set", "--group", "prod", str(first), *creds, "--json")
    assert out.returncode == 0, out.stderr
    rev1 = json.loads(out.stdout)["revision"]
    diff = run_cli("admin", "config", "diff", "--group", "prod", str(second), *creds)
    assert diff.returncode == 1 and '+regions = ["eu-west-1"]' in diff.stdout
    assert run_cli("admin", "config", "set", "--group", "prod", str(second), *creds).returncode == 0
    got = run_cli("admin", "config", "get", "--group", "prod", *creds)
    assert got.returncode == 0 and 'regions = ["eu-west-1"]' in got.stdout
    history = run_cli("admin", "config", "history", "--group", "prod", *creds, "--json")
    assert [r["revision"] for r in json.loads(history.stdout)][-1] == str(rev1)
    rolled = run_cli("admin", "config", "rollback", "--group", "prod", "--to", str(rev1), *creds)
    assert rolled.returncode == 0, rolled.stderr
    got = run_cli("admin", "config", "get", "--group", "prod", *creds)
    assert "regions" not in got.stdout

    assign = run_cli("admin", "agents", "assign", agent_id, "--group", "prod", *creds)
    assert assign.returncode == 0 and "groups: prod" in assign.stdout
    status = run_cli("admin", "config", "status", *creds, "--json")
    (row,) = json.loads(status.stdout)
    assert row["agent_id"] == agent_id and row["state"] == "pending"  # never connected
    assert int(row["desired_revision"]) > int(rev1)
    unassign = run_cli("admin", "agents", "unassign", agent_id, "--group", "prod", *creds)
    assert unassign.returncode == 0 and "groups: -" in unassign.stdout
    refused = run_cli("admin", "config", "set", "--group", "prod", "-", *creds, input_text="x=")
    assert refused.returncode == 2 and "not valid TOML" in refused.stderr


def test_cli_import_wazuh_sets_a_group(running_manager: RunningManager, tmp_path: Path) -> None:
    conf = tmp_path / "ossec.conf"
    conf.write_text(
        '<ossec_config><wodle name="aws-s3"><interval>5m</interval>'
        '<bucket type="cloudtrail"><name>org-trail</name><access_key>k</access_key></bucket>'
        "</wodle></ossec_config>"
    )
    creds = ["--credentials", str(running_manager.home.credentials)]
    result = run_cli("admin", "config", "import-wazuh", str(conf), "--group", "imported", *creds)
    assert result.returncode == 0, result.stderr
    assert 'bucket = "org-trail"' in result.stdout
    assert "not carried over: wodle[1]/bucket[1]/access_key" in result.stderr
    stored = running_manager.server.config_store.current(Target(group="imported"))
    assert 'interval = "5m"' in stored.toml


def test_cli_import_wazuh_refusals_exit_non_zero_and_store_nothing(
    running_manager: RunningManager, tmp_path: Path
) -> None:
    creds = ["--credentials", str(running_manager.home.credentials)]
    store = running_manager.server.config_store
    cases = {
        "no-bucket.conf": (
            '<ossec_config><wodle name="aws-s3"><interval>5m</interval></wodle></ossec_config>',
            "has no CloudTrail bucket to import",
        ),
        "no-wodle.conf": ("<ossec_config><global/></ossec_config>", "no <wodle"),
        "no-type.conf": (
            '<ossec_config><wodle name="aws-s3"><bucket><name>org-trail</name></bucket>'
            "</wodle></ossec_config>",
            "the bucket has no type attribute",
        ),
        "fake-region.conf": (
            '<ossec_config><wodle name="aws-s3"><bucket type="cloudtrail"><name>org-trail</name>'
            "<regions>us-fake-1</regions></bucket></wodle></ossec_config>",
            "'us-fake-1' is not an AWS region",
        ),
    }
    for name, (text, reason) in cases.items():
        conf = tmp_path / name
        conf.write_text(text)
        result = run_cli("admin", "config", "import-wazuh", str(conf), "--group", "wz", *creds)
        assert result.returncode != 0, (name, result.stdout)
        assert reason in result.stderr, (name, result.stderr)
        assert store.history(Target(group="wz")) == [], name


def test_cli_reimporting_an_identical_block_stores_no_new_revision(
    running_manager: RunningManager, tmp_path: Path
) -> None:
    conf = tmp_path / "ossec.conf"
    conf.write_text(
        '<ossec_config><wodle name="aws-s3"><bucket>org-legacy-trail</bucket></wodle>'
        "</ossec_config>"
    )
    creds = ["--credentials", str(running_manager.home.credentials)]
    for _ in range(2):
        result = run_cli("admin", "config", "import-wazuh", str(conf), "--group", "re", *creds)
        assert result.returncode == 0, result.stderr
    history = running_manager.server.config_store.history(Target(group="re"))
    assert len(history) == 1
    assert 'bucket = "org-legacy-trail"' in history[0].toml


def test_push_reaches_a_connected_agent_within_a_second(
    running_manager: RunningManager,
    enrolled_agent: Callable[[str], Path],
    admin: admin_pb2_grpc.AdminStub,
    tmp_path: Path,
) -> None:
    home = enrolled_agent("web-1")
    identity = AgentIdentity.load(home)
    folder = tmp_path / "logs"
    folder.mkdir()
    spool = Spool(tmp_path / "spool.db", 1 << 20)
    collector = Collector([], spool, state_dir=home)
    applier = ConfigApplier(home, collector, [])
    client = LinkClient(
        identity,
        running_manager.home.link_address,
        spool,
        HelloInfo("t", "h", applied_revision=applier.applied),
        server_name="localhost",
        on_config=applier.apply,
    )
    stop = threading.Event()
    thread = threading.Thread(target=client.run, args=(stop,), daemon=True)
    thread.start()
    try:
        _wait(client.connected.is_set)
        admin.AssignGroup(
            admin_pb2.AssignGroupRequest(agent_id=identity.agent_id, group="web"), timeout=10
        )
        text = f'[[sources]]\ntype = "directory"\nname = "logs"\npath = "{folder}"\n'
        revision = _set(admin, text, group="web")

        def applied() -> bool:
            (row,) = admin.ConfigStatus(
                admin_pb2.ConfigStatusRequest(agent_id=identity.agent_id), timeout=10
            ).agents
            return row.state == "applied" and row.applied_revision == revision.revision

        assert _wait(applied) < 1.0
        assert [s.name for s in collector.status()] == ["logs"]
        assert applier.applied()[1] == config_hash(applier.current.toml if applier.current else "")

        # A revision that fails on the agent: old config kept, status failed with the reason.
        missing = text.replace(str(folder), str(tmp_path / "absent"))
        bad = _set(admin, missing, group="web")

        def failed() -> bool:
            (row,) = admin.ConfigStatus(
                admin_pb2.ConfigStatusRequest(agent_id=identity.agent_id), timeout=10
            ).agents
            return row.state == "failed" and row.desired_revision == bad.revision

        _wait(failed)
        (row,) = admin.ConfigStatus(
            admin_pb2.ConfigStatusRequest(agent_id=identity.agent_id), timeout=10
        ).agents
        assert "is not a folder on this agent host" in row.error
        assert row.applied_revision == revision.revision
        assert applier.applied()[0] == revision.revision
        assert [s.name for s in collector.status()] == ["logs"]
    finally:
        stop.set()
        thread.join(10)
        collector.stop()
        spool.close()
