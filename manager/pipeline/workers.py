"""Where batches are analysed: on one thread of the manager process, or in N worker processes.

With N > 1, each worker process holds its own Analyzer (and so its own correlation state) and
every agent is always sent to the same worker, which keeps Wazuh's per-agent correlation
semantics while several agents are analysed in parallel on several cores. The worker only
computes; the manager process still commits and acknowledges, so acks still follow commits.
``submit`` returns a future, so a link waiting for its batch holds no thread.
A worker that dies takes no data with it: the batch is not acknowledged, the pool is rebuilt
and the agent resends.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol

from trailwarden.common.errors import PipelineError
from trailwarden.common.model import AgentRef, SourceMeta
from trailwarden.manager.pipeline.batch_analysis import (
    AnalyzerLike,
    BatchAnalysis,
    EventKeys,
    analyse_batch,
)
from trailwarden.manager.store.base import AlertStore

log = logging.getLogger(__name__)


def worker_count(setting: int) -> int:
    """``0`` means one worker per core."""
    return setting if setting > 0 else max(1, os.cpu_count() or 1)


class Analysis(Protocol):
    def submit(
        self,
        agent: AgentRef,
        source: SourceMeta,
        records: Sequence[bytes],
        also_seen: EventKeys = frozenset(),
    ) -> Future[BatchAnalysis]:
        """Start analysing a batch; the future fails with PipelineError if a worker died."""
        ...

    @property
    def parallelism(self) -> int: ...

    rule_count: int
    """Rules the workers loaded (readiness reports it; 0 = none)."""

    def replace_ruleset(self, ruleset: Any) -> None:
        """Every analyser switches to ``ruleset`` (already validated), between batches."""
        ...

    def close(self) -> None: ...


class InlineAnalysis:
    """One Analyzer in the manager process, on its own thread (one batch at a time)."""

    parallelism = 1

    def __init__(self, analyzer: AnalyzerLike, store: AlertStore) -> None:
        self.analyzer = analyzer
        self.rule_count = int(getattr(analyzer, "rule_count", 0))
        self.store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis")

    def submit(
        self,
        agent: AgentRef,
        source: SourceMeta,
        records: Sequence[bytes],
        also_seen: EventKeys = frozenset(),
    ) -> Future[BatchAnalysis]:
        return self._thread.submit(
            analyse_batch, self.analyzer, self.store.seen_events, agent, source, records, also_seen
        )

    def replace_ruleset(self, ruleset: Any) -> None:
        """Switch the analyser to ``ruleset`` between two batches (on the analysis thread)."""
        self._thread.submit(self.analyzer.replace_ruleset, ruleset).result()
        self.rule_count = len(ruleset)

    def close(self) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)


# ---- worker processes ----------------------------------------------------------------------

_worker_state: dict[str, Any] = {}


PARENT_CHECK_SECONDS = 0.5


def _exit_with_parent(parent: int) -> None:
    """A SIGKILLed manager cannot shut its pools down, and its workers never see EOF (each
    holds its queue's write end too): without this they lived on as orphans, one more set per
    crash. Exit as soon as we are reparented."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _worker_init(home: str) -> None:
    from trailwarden.manager.config import load_manager_config
    from trailwarden.manager.pipeline.analyzer import build_analyzer, build_seen_lookup

    threading.Thread(
        target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True
    ).start()
    config = load_manager_config(Path(home))
    _worker_state["analyzer"] = build_analyzer(config)
    _worker_state["seen"] = build_seen_lookup(config)
    relax_gc()


GC_GEN0_THRESHOLD = 20_000
"""Allocations between young-generation collections (CPython's default is 700)."""


def relax_gc() -> None:
    """Collect cycles less often: analysis allocates dozens of containers per record and frees
    them by reference counting (they hold no cycles), so collecting every 700 allocations only
    walked live objects over and over — ~15% of a worker's time (bench/worker_cost.py). The
    ruleset, built once, is frozen out of the walks altogether."""
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def _worker_run(
    agent: AgentRef,
    source: SourceMeta,
    records: Sequence[bytes],
    also_seen: EventKeys,
) -> BatchAnalysis:
    state = _worker_state
    result = analyse_batch(state["analyzer"], state["seen"], agent, source, records, also_seen)
    # Render each alert's document here, on the worker's core, and send only that across
    # (Alert.__reduce__ leaves the event out once rendered): the manager process, the
    # pipeline's single committer, then never serialises an event.
    for alert in result.alerts:
        alert.document()
    return result


class ProcessAnalysis:
    """N single-process pools; an agent's batches always go to the same process."""

    def __init__(self, home: Path, count: int) -> None:
        self.home = home
        self.parallelism = count
        self.rule_count = 0
        """Set by whoever checked the ruleset before starting the workers (setup)."""
        # spawn, never fork: the manager process runs gRPC threads that must not be forked.
        self._context = multiprocessing.get_context("spawn")
        self._pools = [self._new_pool() for _ in range(count)]
        self._lock = threading.Lock()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=1,
            mp_context=self._context,
            initializer=_worker_init,
            initargs=(str(self.home),),
        )

    def warm_up(self) -> None:
        """Start every worker now (loading the ruleset) rather than on the first batch."""
        for pool in self._pools:
            pool.submit(_noop).result(timeout=120)

    def _slot(self, agent: AgentRef) -> int:
        return zlib.crc32(agent.id.encode()) % self.parallelism

    def submit(
        self,
        agent: AgentRef,
        source: SourceMeta,
        records: Sequence[bytes],
        also_seen: EventKeys = frozenset(),
    ) -> Future[BatchAnalysis]:
        """Queue the batch on the agent's worker. Nothing waits on a thread meanwhile: with
        callers blocked on one busy worker, the other workers used to sit idle while their
        agents' batches queued behind."""
        slot = self._slot(agent)
        pool = self._pools[slot]
        result: Future[BatchAnalysis] = Future()
        try:
            work = pool.submit(_worker_run, agent, source, tuple(records), also_seen)
        except BrokenProcessPool as exc:
            result.set_exception(self._worker_died(slot, pool, exc))
            return result

        def finished(work: Future[BatchAnalysis]) -> None:
            if work.cancelled():  # the pool shut down (manager stopping): not acknowledged
                result.set_exception(PipelineError("analysis cancelled: the manager is stopping"))
                return
            error = work.exception()
            if error is None:
                result.set_result(work.result())
            elif isinstance(error, BrokenProcessPool):
                result.set_exception(self._worker_died(slot, pool, error))
            else:
                result.set_exception(error)

        work.add_done_callback(finished)
        return result

    def _worker_died(
        self, slot: int, pool: ProcessPoolExecutor, exc: BaseException
    ) -> PipelineError:
        with self._lock:
            if self._pools[slot] is pool:
                log.error("stage=match analysis worker %d died; restarting it", slot)
                self._pools[slot] = self._new_pool()
        error = PipelineError(f"analysis worker {slot} died; batch not acknowledged")
        error.__cause__ = exc
        return error

    def replace_ruleset(self, ruleset: Any) -> None:
        """Every worker loads the same files again and switches, each between two of its
        batches; the manager process validated them first (``ruleset``). A worker that dies
        meanwhile is rebuilt by the next batch and loads the new files anyway."""
        futures = [pool.submit(_worker_reload, str(self.home)) for pool in list(self._pools)]
        for future in futures:
            try:
                future.result(timeout=120)
            except BrokenProcessPool:
                continue
        self.rule_count = len(ruleset)

    def close(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)


def _noop() -> None:
    return None


def _worker_reload(home: str) -> int:
    """In a worker: load the ruleset manager.toml names and switch to it (between batches)."""
    from trailwarden.manager.config import load_manager_config
    from trailwarden.manager.pipeline.analyzer import load_configured_rules

    ruleset = load_configured_rules(load_manager_config(Path(home)))
    _worker_state["analyzer"].replace_ruleset(ruleset)
    return len(ruleset.rules)
