"""`LRUCache`: the one bounded least-recently-used cache (decoded frames in `masklet.io`,
image encodings in `masklet.session`). A leaf module: it imports nothing of masklet."""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

Key = TypeVar("Key")
Value = TypeVar("Value")


class LRUCache(Generic[Key, Value]):
    """At most `capacity` entries; `get` and `put` mark an entry most recently used and `put`
    evicts the least recently used ones beyond `capacity` (capacity 0 stores nothing)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"cache size must be >= 0, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[Key, Value] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: Key) -> Value | None:
        """The entry for `key` (now most recently used), or None."""
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: Key, value: Value) -> None:
        """Store `value` under `key`, evicting least recently used entries beyond capacity."""
        if self.capacity == 0:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def keys(self) -> list[Key]:
        """Cached keys, least recently used first."""
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()
