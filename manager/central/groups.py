"""Groups as a whole: list them with their agents and config, remove one, forget an agent.

A group exists while an agent is in it or a config document is set for it. Removing a group
deletes its config document (every revision: a group of the same name made later starts
empty instead of bringing the old document back) and is refused while live agents are in it,
unless ``force``: the group is then taken off each of its agents first, through
``ConfigStore.assign`` (which checks their configs and says what to push). An agent left
without groups runs its agent-level config only — TrailWarden has no implicit default group.
"""

from __future__ import annotations

from dataclasses import dataclass

from trailwarden.common.errors import InUseError, NotFoundError
from trailwarden.manager.central.document import check_group_name
from trailwarden.manager.central.store import AGENT, GROUP, ConfigStore, Desired

SHOWN_AGENTS = 5
"""Agents named in the refusal to remove a group that still has agents."""


@dataclass(frozen=True, slots=True)
class GroupSummary:
    name: str
    agents: int
    """Live (not revoked) agents in the group."""
    config_revision: int
    """The newest revision of the group's config document; 0 = none set."""
    config_updated_ms: int


@dataclass(frozen=True, slots=True)
class GroupRemoval:
    name: str
    agents_moved: tuple[str, ...]
    revisions_removed: int
    pushes: tuple[Desired, ...]
    """The configs to push to the agents taken out of the group."""


def list_groups(store: ConfigStore) -> list[GroupSummary]:
    """Every group that has agents or a config document, by name."""
    counts: dict[str, int] = {}
    for agent in store.registry.list_agents():
        for group in agent.groups:
            counts[group] = counts.get(group, 0) + (0 if agent.revoked else 1)
    rows = (
        store.db.connection()
        .execute(
            "SELECT target, revision, created_ms FROM config_revisions r WHERE scope = ? AND"
            " revision = (SELECT MAX(revision) FROM config_revisions WHERE scope = r.scope"
            " AND target = r.target)",
            (GROUP,),
        )
        .fetchall()
    )
    latest = {str(r[0]): (int(r[1]), int(r[2])) for r in rows}
    return [
        GroupSummary(name, counts.get(name, 0), *latest.get(name, (0, 0)))
        for name in sorted(set(counts) | set(latest))
    ]


def remove_group(store: ConfigStore, name: str, actor: str, *, force: bool) -> GroupRemoval:
    """Remove group ``name`` (see the module docstring); audited as ``group.remove``."""
    check_group_name(name)
    members = [a for a in store.registry.list_agents() if name in a.groups]
    live = [a for a in members if not a.revoked]
    revisions = int(
        store.db.connection()
        .execute(
            "SELECT COUNT(*) FROM config_revisions WHERE scope = ? AND target = ?", (GROUP, name)
        )
        .fetchone()[0]
    )
    if not members and not revisions:
        raise NotFoundError(f"no group {name!r} (no agent is in it and it has no config)")
    if live and not force:
        shown = ", ".join(f"{a.name} ({a.id})" for a in live[:SHOWN_AGENTS])
        more = f" and {len(live) - SHOWN_AGENTS} more" if len(live) > SHOWN_AGENTS else ""
        raise InUseError(
            f"group {name!r} still has {len(live)} agent(s): {shown}{more}; move them first "
            "(admin agents unassign ID --group NAME) or remove it with --force, which takes "
            "the group off them"
        )
    pushes: list[Desired] = []
    for agent in live:
        _, change = store.assign(agent.id, name, actor, unassign=True)
        pushes.extend(change.pushes)
    for agent in members:
        if agent.revoked:  # no config to recompute; only the registry keeps its groups
            store.registry.set_groups(agent.id, [g for g in agent.groups if g != name], actor)
    with store.db.transaction() as tx:
        tx.execute("DELETE FROM config_revisions WHERE scope = ? AND target = ?", (GROUP, name))
    store.registry.audit(
        actor,
        "group.remove",
        name,
        f"force={force} agents_moved={','.join(a.id for a in live) or '-'} "
        f"revisions_removed={revisions}",
    )
    return GroupRemoval(name, tuple(a.id for a in live), revisions, tuple(pushes))


def forget_agent(store: ConfigStore, agent_id: str) -> int:
    """Drop a removed agent's config state and its own documents; the revisions removed."""
    with store.db.transaction() as tx:
        tx.execute("DELETE FROM config_agents WHERE agent_id = ?", (agent_id,))
        return int(
            tx.execute(
                "DELETE FROM config_revisions WHERE scope = ? AND target = ?", (AGENT, agent_id)
            ).rowcount
        )
