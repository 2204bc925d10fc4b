"""Small per-process caches of the runtime's hot path, each entry living a bounded time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

Value = TypeVar("Value")
_MISSING = object()


class TTLCache(Generic[Value]):
    """Map keys to values for at most `seconds_of()` seconds each, holding at most `max_entries` entries.

    Used so that a key's revocation, a promotion or a rollback reaches every worker within that time while
    most requests skip the database reads. Thread-safe; when full, expired entries go first, then all.
    """

    def __init__(self, seconds_of: Callable[[], float], max_entries: int = 4096):
        self._seconds_of = seconds_of
        self._max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: Hashable, load: Callable[[], Value]) -> Value:
        """Return the cached value of `key`, or `load()` it (a failing load caches nothing)."""
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]
        value = load()
        seconds = self._seconds_of()
        if seconds > 0:
            with self._lock:
                if len(self._entries) >= self._max_entries:
                    self._evict(now)
                self._entries[key] = (now + seconds, value)
        return value

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()

    def _evict(self, now: float) -> None:
        """Drop expired entries, or everything when none has expired (called with the lock held)."""
        expired = [key for key, (deadline, _) in self._entries.items() if deadline <= now]
        if not expired:
            self._entries.clear()
        for key in expired:
            del self._entries[key]
