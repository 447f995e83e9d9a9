"""The CloudTrail S3 source: discover account/region folders, list them, hand out objects.

Per pass: accounts (and organizations) and regions are discovered through every page of
delimiter listings unless configured; each account/region folder is a *stream* with its own
checkpoint (agent/checkpoint.py). A stream is re-listed from its watermark's day minus the
source's ``late_window`` (7 days unless set), so files that arrive late, with keys sorting before
ones already taken, are still collected, while remembered keys keep every file taken once. Every
``reconcile_interval`` (a day unless set) a pass lists the stream completely, from the first day
its taken keys are remembered, and collects whatever is older than the window and was never
taken: each such file is logged as a warning with its bucket/key and how late it is, and
counted (``objects_late``): collected, never dropped in silence. Objects that are not log
files (digests, check files, anything not ``.json[.gz]`` in a date folder) are skipped by design
and counted.

The first run of a source without ``only_logs_after`` starts today (UTC), as Wazuh does, and says
so in the log. Streams that appear later start from the source's first day, not from theirs,
so a region enabled after the agent started is read in full.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from trailwarden.agent.checkpoint import (
    ERROR,
    FAILED,
    Checkpoints,
    CheckpointUpdate,
    ObjectTaken,
    StreamReconciled,
    StreamState,
    WatermarkMoved,
)
from trailwarden.agent.sources import layout
from trailwarden.agent.sources.aws import S3Bucket, open_bucket
from trailwarden.agent.sources.pipeline import WorkItem
from trailwarden.agent.spool import Spool
from trailwarden.agent.status import SourceTracker
from trailwarden.common.model import SourceMeta
from trailwarden.common.schema.sources import CloudTrailSourceConfig

log = logging.getLogger(__name__)

LEGACY_LOOKBACK_DAYS = 2
"""The fixed look-back of spools written before ``late_window``: how far back their taken keys
reach when they are first read by this version."""
GIVE_UP_AFTER = 5
"""Passes an object refused for good (denied, archived) is retried before, with
``skip_on_error``, it is recorded as failed. Network errors and throttling never give up."""
WATERMARK_EVERY_S = 2.0
"""Mid-pass, the watermark rides along with an object's checkpoint at most this often (a
lagging watermark is safe: it only widens the next listing); the end of a pass always writes it."""


class Watermark:
    """Tracks objects in flight in one stream to find the newest key with nothing missing before.

    Objects are dispatched in key order and finish in any order; the watermark may only move up
    to the key just before the oldest one still in flight.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight: dict[str, str] = {}
        """key in flight -> the key dispatched just before it."""
        self._last = ""
        self._emitted_at = time.monotonic()

    def dispatch(self, key: str) -> None:
        with self._lock:
            self._in_flight[key] = self._last
            self._last = key

    def candidate(self, key: str) -> str:
        """The watermark once ``key`` completes ('' when it cannot or need not move yet)."""
        with self._lock:
            now = time.monotonic()
            if now - self._emitted_at < WATERMARK_EVERY_S:
                return ""
            others = [k for k in self._in_flight if k != key]
            if not others:
                mark = self._last
            else:
                oldest = min(others)
                mark = self._in_flight[oldest] if key < oldest else ""
            if mark:
                self._emitted_at = now
            return mark

    def complete(self, key: str) -> None:
        with self._lock:
            self._in_flight.pop(key, None)

    def idle(self) -> bool:
        """Nothing dispatched is still in flight (every object finished or failed)."""
        with self._lock:
            return not self._in_flight

    def final(self) -> str:
        """The watermark at the end of a pass (objects abandoned on stop hold it back)."""
        with self._lock:
            if not self._in_flight:
                return self._last
            return self._in_flight[min(self._in_flight)]


@dataclass
class _StreamPass:
    """One stream's share of a pass: its watermark, and whether this pass reconciles it."""

    mark: Watermark
    stream: layout.Stream
    reconciling: bool = False
    listed: bool = False
    """The listing reached its end (not stopped), so a reconcile may be recorded."""


class CloudTrailRun:
    """One CloudTrail source, ready to plan passes (see pipeline.SourceRun)."""

    def __init__(
        self,
        config: CloudTrailSourceConfig,
        spool: Spool,
        tracker: SourceTracker,
        *,
        bucket_factory: Callable[[CloudTrailSourceConfig], S3Bucket] = open_bucket,
        today: Callable[[], date] | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.skip_on_error = config.skip_on_error
        self.discard = config.discard
        self.workers = config.workers
        self.tracker = tracker
        self._spool = spool
        self._checkpoints = Checkpoints(spool)
        self._bucket_factory = bucket_factory
        self._bucket: S3Bucket | None = None
        self._today = today or (lambda: datetime.now(UTC).date())
        self._marks: dict[str, _StreamPass] = {}
        self._late_days = max(1, math.ceil(config.late_window / 86400))

    def plan(self, stop: threading.Event) -> Iterator[WorkItem]:
        if self._bucket is None:
            self._bucket = self._bucket_factory(self.config)
        bucket = self._bucket
        self._marks = {}
        root = layout.logs_root(self.config.path, self.config.path_suffix)
        source_floor = self._source_floor(root)
        streams = 0
        for stream in self._streams(bucket, root):
            if stop.is_set():
                return
            streams += 1
            yield from self._stream_items(bucket, stream, source_floor, stop)
        if streams == 0:
            log.info(
                "fetch: source %s: no CloudTrail folders under s3://%s/%s",
                self.name,
                self.config.bucket,
                root,
            )

    def end_pass(self) -> None:
        bucket = self.config.bucket
        for prefix, part in self._marks.items():
            stream = part.stream
            meta = SourceMeta(self.name, bucket, prefix, stream.account, stream.region)
            final = part.mark.final()
            if final:
                self._spool.put(meta, [], WatermarkMoved(bucket, prefix, final))
            if part.reconciling and part.listed and part.mark.idle():
                self._spool.put(meta, [], StreamReconciled(bucket, prefix))
        self._marks = {}

    # ---- discovery -----------------------------------------------------------------------

    def _streams(self, bucket: S3Bucket, root: str) -> Iterator[layout.Stream]:
        config = self.config
        organizations = [config.aws_organization_id] if config.aws_organization_id else [""]
        if not config.aws_organization_id and not config.aws_account_ids:
            for folder in bucket.common_prefixes(root):
                name = layout.child(root, folder)
                if layout.ORGANIZATION_ID.match(name):
                    organizations.append(name)
        for org in organizations:
            org_root = f"{root}{org}/" if org else root
            if config.aws_account_ids:
                accounts: list[str] = list(config.aws_account_ids)
            else:
                accounts = []
                for folder in bucket.common_prefixes(org_root):
                    name = layout.child(org_root, folder)
                    if layout.ACCOUNT_ID.match(name):
                        accounts.append(name)
                    elif not layout.ORGANIZATION_ID.match(name):
                        log.debug("fetch: source %s: ignoring folder %s", self.name, folder)
            for account in accounts:
                account_prefix = layout.account_prefix(root, org, account)
                if config.regions:
                    regions: list[str] = list(config.regions)
                else:
                    regions = [
                        name
                        for folder in bucket.common_prefixes(account_prefix)
                        if layout.REGION.match(name := layout.child(account_prefix, folder))
                    ]
                for region in regions:
                    yield layout.Stream(
                        account, region, layout.stream_prefix(root, org, account, region), org
                    )

    # ---- checkpoints ---------------------------------------------------------------------

    def _source_floor(self, root: str) -> date:
        """The first day this source reads, fixed at its first run (or by only_logs_after)."""
        bucket = self.config.bucket
        only = self.config.only_logs_after.date() if self.config.only_logs_after else None
        state = self._checkpoints.stream(bucket, root)
        if state is None or not state.floor_day:
            floor = only or self._today()
            if only is None:
                log.info(
                    "fetch: source %s: first run without only_logs_after: reading logs from today "
                    "(%s UTC) on; set only_logs_after to read older ones",
                    self.name,
                    floor.isoformat(),
                )
            self._checkpoints.set_floor(bucket, root, layout.day_folder(floor))
            return floor
        floor = layout.parse_day_folder(state.floor_day)
        if only is not None and only < floor:
            log.info(
                "fetch: source %s: only_logs_after %s is before %s: reading back to it",
                self.name,
                only.isoformat(),
                floor.isoformat(),
            )
            self._checkpoints.set_floor(bucket, root, layout.day_folder(only))
            return only
        return floor

    def _start_day(
        self, stream: layout.Stream, source_floor: date
    ) -> tuple[date, date | None, bool]:
        """The first day this pass lists as usual (the late window's start); when the stream
        is due a reconcile, the first day of that complete listing; and whether this pass's
        listing is complete (a reconcile, or a window reaching back to the first kept day)."""
        bucket, prefix = self.config.bucket, stream.prefix
        state = self._checkpoints.stream(bucket, prefix)
        kept_from = layout.parse_day_folder(state.kept_from) if state and state.kept_from else None
        if state is None or not state.floor_day:
            floor = source_floor
            self._checkpoints.set_floor(bucket, prefix, layout.day_folder(floor))
            kept_from = floor  # a new stream: every key it takes is remembered
        else:
            floor = layout.parse_day_folder(state.floor_day)
            if source_floor < floor:
                floor = source_floor
                self._checkpoints.set_floor(bucket, prefix, layout.day_folder(floor))
                if kept_from is not None:
                    kept_from = min(kept_from, floor)  # days never read: nothing taken there
        start = floor
        watermark_day = (
            layout.key_day(prefix, state.watermark) if state and state.watermark else None
        )
        if watermark_day is not None:
            start = max(floor, watermark_day - timedelta(days=self._late_days))
        if kept_from is None:
            # A spool from before keys were kept behind the window holds them only back to
            # the old fixed look-back: listing (or reconciling) further back than that would
            # take old files a second time, so this stream is complete from there on.
            back = timedelta(days=LEGACY_LOOKBACK_DAYS)
            kept_from = max(floor, watermark_day - back) if watermark_day else floor
        start = max(start, kept_from)  # before it, nothing is known to be taken
        retry = self._checkpoints.oldest_error_key(bucket, prefix)
        retry_day = layout.key_day(prefix, retry) if retry else None
        if retry_day is not None and retry_day < start:
            start = retry_day
        if state is None or layout.day_folder(kept_from) != state.kept_from:
            self._checkpoints.set_kept_from(bucket, prefix, layout.day_folder(kept_from))
        due = self._reconcile_due(state)
        reconcile_from = max(floor, kept_from) if due and kept_from < start else None
        # A listing that starts at or before the first kept day is complete too.
        return start, reconcile_from, reconcile_from is not None or start <= kept_from

    def _reconcile_due(self, state: StreamState | None) -> bool:
        if state is None or not state.watermark:
            return False  # nothing taken yet: the usual listing already starts at the floor
        elapsed_s = time.time() - state.reconciled_ms / 1000
        return elapsed_s >= self.config.reconcile_interval

    def _stream_items(
        self, bucket: S3Bucket, stream: layout.Stream, source_floor: date, stop: threading.Event
    ) -> Iterator[WorkItem]:
        config = self.config
        prefix = stream.prefix
        start, reconcile_from, complete = self._start_day(stream, source_floor)
        only = config.only_logs_after.date() if config.only_logs_after else None
        start_after = prefix + layout.day_folder(start)
        expired = self._checkpoints.expire(config.bucket, prefix, start_after)
        taken = self._checkpoints.taken_keys(config.bucket, prefix, start_after)
        list_from = reconcile_from or start
        log.log(
            logging.INFO if reconcile_from else logging.DEBUG,
            "fetch: source %s: %s s3://%s/%s from %s (%d taken in the late window, %d folded)",
            self.name,
            "reconciling" if reconcile_from else "listing",
            config.bucket,
            prefix,
            list_from.isoformat(),
            len(taken),
            expired,
        )
        mark = Watermark()
        part = _StreamPass(mark, stream, reconciling=complete)
        self._marks[prefix] = part
        newest = self._newest_day(prefix)
        behind: tuple[date, frozenset[str]] | None = None  # the day being reconciled, its keys
        for info in bucket.objects(prefix, prefix + layout.day_folder(list_from)):
            if stop.is_set():
                return
            day = layout.key_day(prefix, info.key)
            if day is None:
                if info.key >= start_after:
                    self.tracker.skipped()  # counted once, by the usual listing's range
                continue
            if only is not None and day < only:
                continue
            time_ms = layout.key_time_ms(info.key)
            if info.key in taken:
                self.tracker.object_listed(prefix, time_ms, taken=True)
                continue
            if info.key < start_after:  # behind the late window: only a reconcile gets here
                if behind is None or behind[0] != day:
                    folder = layout.day_folder(day)
                    behind = (day, self._checkpoints.taken_on_day(config.bucket, prefix, folder))
                if info.key in behind[1]:
                    continue
                self._report_late(info.key, day, newest)
            self.tracker.object_listed(prefix, time_ms)
            mark.dispatch(info.key)
            yield self._item(bucket, stream, info.key, info.size, mark, time_ms)
        part.listed = True

    def _newest_day(self, prefix: str) -> date | None:
        state = self._checkpoints.stream(self.config.bucket, prefix)
        return layout.key_day(prefix, state.watermark) if state and state.watermark else None

    def _report_late(self, key: str, day: date, newest: date | None) -> None:
        late_days = (newest - day).days if newest else 0
        self.tracker.object_late()
        log.warning(
            "fetch: source %s: s3://%s/%s arrived late: its day is %d days behind the "
            "stream's newest collected day, past late_window (%d days); collecting it now",
            self.name,
            self.config.bucket,
            key,
            late_days,
            self._late_days,
        )

    def _item(
        self,
        bucket: S3Bucket,
        stream: layout.Stream,
        key: str,
        size: int,
        mark: Watermark,
        time_ms: int,
    ) -> WorkItem:
        config = self.config

        def finish(state: str, reason: str, retryable: bool) -> CheckpointUpdate:
            if state == ERROR and config.skip_on_error and not retryable:
                tried = self._checkpoints.attempts(config.bucket, key) + 1
                if tried >= GIVE_UP_AFTER:
                    state, reason = FAILED, f"{reason} (gave up after {tried} passes)"
                    log.warning(
                        "fetch: source %s: s3://%s/%s: giving up after %d passes",
                        self.name,
                        config.bucket,
                        key,
                        tried,
                    )
            return ObjectTaken(
                config.bucket, stream.prefix, key, state, reason, watermark=mark.candidate(key)
            )

        return WorkItem(
            meta=SourceMeta(
                source=self.name,
                bucket=config.bucket,
                key=key,
                account_id=stream.account,
                region=stream.region,
                account_alias=config.aws_account_alias,
            ),
            size=size,
            read=lambda: bucket.get(key),
            finish=finish,
            completed=lambda: mark.complete(key),
            after_spooled=(lambda: bucket.delete(key)) if config.remove_from_bucket else None,
            stream=stream.prefix,
            time_ms=time_ms,
        )
