"""Failed-login throttling per client address and per user name, in bounded memory.

After `max_failures` failures within `window_seconds` for the same key, further attempts for
that key are refused (HTTP 429 with Retry-After) until the oldest of those failures leaves the
window. Keys are ``addr:<ip>`` and ``user:<name>``; at most `max_keys` are tracked, the least
recently failed forgotten first, so a flood of made-up names cannot grow memory without end.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable

DEFAULT_MAX_FAILURES = 5
DEFAULT_WINDOW_SECONDS = 300.0
DEFAULT_MAX_KEYS = 10_000


class LoginLimiter:
    def __init__(
        self,
        max_failures: int = DEFAULT_MAX_FAILURES,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or window_seconds <= 0 or max_keys < 1:
            raise ValueError("max_failures, window_seconds and max_keys must be positive")
        self.max_failures = max_failures
        self.window = window_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._reported: OrderedDict[tuple[str, ...], float] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, keys: Iterable[str]) -> int:
        """Seconds until every one of ``keys`` may try again (0: allowed now)."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if times is not None and len(times) >= self.max_failures:
                    wait = max(wait, times[0] + self.window - now)
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, keys: Iterable[str]) -> None:
        now = self._clock()
        with self._lock:
            for key in keys:
                times = self._recent(key, now)
                if times is None:
                    times = deque(maxlen=self.max_failures)
                    self._failures[key] = times
                times.append(now)
                self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def first_refusal(self, keys: Iterable[str]) -> bool:
        """True once per window for the same keys: throttled attempts are audited that often,
        so a flood of refused logins cannot flood the audit log."""
        now = self._clock()
        group = tuple(keys)
        with self._lock:
            last = self._reported.get(group)
            if last is not None and last + self.window > now:
                return False
            self._reported[group] = now
            self._reported.move_to_end(group)
            while len(self._reported) > self.max_keys:
                self._reported.popitem(last=False)
            return True

    def forget(self, key: str) -> None:
        """A successful login clears its user's failures (not its address's)."""
        with self._lock:
            self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)

    def _recent(self, key: str, now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] + self.window <= now:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times
