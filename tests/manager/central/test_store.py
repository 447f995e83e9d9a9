"""Config revisions and per-agent desired/applied status in a real SQLite manager database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from trailwarden.common.errors import ConfigError, NotFoundError, SecretInConfigError
from trailwarden.common.schema.central import config_hash
from trailwarden.manager.agents.registry import Registry
from trailwarden.manager.central.store import (
    APPLIED,
    FAILED,
    PENDING,
    ConfigStore,
    StatusReport,
    Target,
)
from trailwarden.manager.store.sqlite.database import Database

PROD = '[[sources]]\ntype = "cloudtrail"\nname = "prod"\nbucket = "org-trail"\n'
PROD_EU = PROD + 'regions = ["eu-west-1"]\n'


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ConfigStore]:
    database = Database(tmp_path / "manager.db")
    registry = Registry(database)
    for agent_id, groups in (("a1", ["prod"]), ("a2", ["prod"]), ("a3", [])):
        registry.add_agent(
            agent_id=agent_id,
            name=f"agent-{agent_id}",
            hostname="h",
            fingerprint=f"fp-{agent_id}",
            groups=groups,
            version="t",
        )
    yield ConfigStore(database, registry)
    database.close()


def test_every_change_gets_the_next_number_and_its_content_hash(store: ConfigStore) -> None:
    first = store.set_document(Target(group="prod"), PROD, "admin:alice", "first")
    second = store.set_document(Target(group="prod"), PROD_EU, "admin:bob")
    assert first.revision is not None and second.revision is not None
    assert second.revision.revision == first.revision.revision + 1
    assert first.revision.hash == config_hash(PROD)
    assert [r.revision for r in store.history(Target(group="prod"))] == [
        second.revision.revision,
        first.revision.revision,
    ]
    current = store.current(Target(group="prod"))
    assert (current.toml, current.author) == (PROD_EU, "admin:bob")


def test_a_group_change_targets_exactly_its_agents(store: ConfigStore) -> None:
    change = store.set_document(Target(group="prod"), PROD, "admin:alice")
    assert change.revision is not None
    assert sorted(p.agent_id for p in change.pushes) == ["a1", "a2"]
    assert {p.revision for p in change.pushes} == {change.revision.revision}
    desired = store.desired("a1")
    assert "org-trail" in desired.toml and desired.hash == config_hash(desired.toml)
    assert store.desired("a3").revision == 0  # not in the group: nothing central


def test_invalid_and_secret_documents_are_refused_and_store_nothing(store: ConfigStore) -> None:
    with pytest.raises(ConfigError, match="regions"):
        store.set_document(Target(group="prod"), PROD + 'regions = "eu-west-1"\n', "admin:a")
    with pytest.raises(SecretInConfigError):
        store.set_document(Target(group="prod"), PROD + 'secret_key = "x"\n', "admin:a")
    with pytest.raises(ConfigError, match="type"):  # groups must be complete
        store.set_document(Target(group="prod"), '[[sources]]\nname = "x"\n', "admin:a")
    with pytest.raises(ConfigError, match="group name"):
        store.set_document(Target(group="no spaces"), PROD, "admin:a")
    with pytest.raises(NotFoundError):
        store.set_document(Target(agent_id="nobody"), PROD, "admin:a")
    assert store.history(Target(group="prod")) == []
    with pytest.raises(NotFoundError):
        store.current(Target(group="prod"))


def test_agent_override_is_merged_and_checked_against_its_groups(store: ConfigStore) -> None:
    store.set_document(Target(group="prod"), PROD, "admin:a")
    override = '[[sources]]\nname = "prod"\nregions = ["eu-west-1"]\n'
    change = store.set_document(Target(agent_id="a1"), override, "admin:a")
    assert [p.agent_id for p in change.pushes] == ["a1"]
    assert 'regions = ["eu-west-1"]' in store.desired("a1").toml
    assert "regions" not in store.desired("a2").toml
    # a3 has no group defining "prod": the same partial override is incomplete there
    with pytest.raises(ConfigError, match="agent a3"):
        store.set_document(Target(agent_id="a3"), override, "admin:a")


def test_rollback_stores_a_new_revision_with_the_old_content(store: ConfigStore) -> None:
    first = store.set_document(Target(group="prod"), PROD, "admin:a").revision
    store.set_document(Target(group="prod"), PROD_EU, "admin:a")
    assert first is not None
    change = store.rollback(Target(group="prod"), first.revision, "admin:b")
    assert change.revision is not None
    assert change.revision.revision > first.revision
    assert change.revision.toml == PROD
    assert change.revision.comment == f"rollback to revision {first.revision}"
    assert store.desired("a1").hash == config_hash(store.desired("a1").toml)
    assert "eu-west-1" not in store.desired("a1").toml
    with pytest.raises(NotFoundError):
        store.rollback(Target(group="other"), first.revision, "admin:b")


def test_assign_and_unassign_recompute_the_agent(store: ConfigStore) -> None:
    store.set_document(Target(group="prod"), PROD, "admin:a")
    record, change = store.assign("a3", "prod", "admin:a")
    assert record.groups == ("prod",)
    assert [p.agent_id for p in change.pushes] == ["a3"]
    assert change.pushes[0].revision > 0 and "org-trail" in change.pushes[0].toml
    record, change = store.assign("a3", "prod", "admin:a", unassign=True)
    assert record.groups == ()
    assert [(p.agent_id, p.revision, p.hash) for p in change.pushes] == [("a3", 0, "")]
    with pytest.raises(NotFoundError):
        store.assign("a3", "prod", "admin:a", unassign=True)


def test_status_follows_hello_and_reports(store: ConfigStore) -> None:
    change = store.set_document(Target(group="prod"), PROD, "admin:a")
    assert change.revision is not None
    wanted = store.desired("a1")
    # An agent that reconnects running nothing is sent the desired config, state pending.
    assert store.record_hello("a1", 0, "") == wanted
    (state,) = store.statuses("a1")
    assert (state.state, state.desired_revision, state.applied_revision) == (
        PENDING,
        wanted.revision,
        0,
    )
    store.record_statuses([StatusReport("a1", wanted.revision, wanted.hash, FAILED, "boom")])
    (state,) = store.statuses("a1")
    assert (state.state, state.error) == (FAILED, "boom")
    applied = store.record_statuses([StatusReport("a1", wanted.revision, wanted.hash, APPLIED)])
    assert [r.agent_id for r in applied] == ["a1"]
    (state,) = store.statuses("a1")
    assert (state.state, state.applied_revision, state.error) == (APPLIED, wanted.revision, "")
    # Running what is desired: nothing to send.
    assert store.record_hello("a1", wanted.revision, wanted.hash) is None
    # A failure report for an older revision does not hide a newer applied state.
    store.record_statuses([StatusReport("a1", wanted.revision - 1, "x", FAILED, "old")])
    assert store.statuses("a1")[0].state == APPLIED


def test_statuses_list_every_active_agent(store: ConfigStore) -> None:
    store.set_document(Target(group="prod"), PROD, "admin:a")
    store.registry.revoke("a2", "admin:a")
    states = {s.agent_id: s for s in store.statuses()}
    assert sorted(states) == ["a1", "a3"]
    assert states["a1"].state == PENDING and states["a1"].desired_revision > 0
    assert (states["a3"].desired_revision, states["a3"].state) == (0, APPLIED)
    assert states["a1"].name == "agent-a1"


def test_target_names_exactly_one() -> None:
    with pytest.raises(ConfigError):
        Target()
    with pytest.raises(ConfigError):
        Target(group="g", agent_id="a")


def test_a_refused_change_leaves_no_trace_in_later_ones(store: ConfigStore) -> None:
    store.set_document(Target(group="prod"), PROD, "admin:a")
    with pytest.raises(ConfigError):  # a3 is in no group: the partial override is refused
        store.set_document(Target(agent_id="a3"), '[[sources]]\nname = "prod"\n', "admin:a")
    other = '[[sources]]\ntype = "cloudtrail"\nname = "dev"\nbucket = "dev-trail"\n'
    change = store.set_document(Target(group="dev"), other, "admin:a")
    assert change.revision is not None and change.revision.toml == other
    store.assign("a3", "dev", "admin:a")
    assert "dev-trail" in store.desired("a3").toml


def test_an_agent_enrolled_later_into_a_group_gets_its_config_on_hello(
    store: ConfigStore,
) -> None:
    change = store.set_document(Target(group="prod"), PROD, "admin:a")
    assert change.revision is not None
    store.registry.add_agent(  # as enrollment does with a token created with --group prod
        agent_id="a9", name="late", hostname="h", fingerprint="fp", groups=["prod"], version="t"
    )
    desired = store.record_hello("a9", 0, "")
    assert desired is not None and "org-trail" in desired.toml
    assert desired.revision == change.revision.revision
    assert store.statuses("a9")[0].state == PENDING
