"""One reconcile per object at a time, and bursts of triggers coalesced behind it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class _Slot:
    """Per object: the lock its reconcile holds, whether a caller waits for it, and how many
    callers hold or wait for the slot (it is dropped when that falls to zero)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = False
        self.users = 0


class ObjectLocks:
    """An object and its children trigger concurrently (a Deployment's pods alone send a
    burst). ``exclusive`` lets one reconcile run and at most one wait behind it: a caller that
    finds one already waiting gets ``False`` and returns, because the waiting one has not read
    the object yet and will see whatever change this caller was told about. Slots exist only
    while in use, so the table does not grow with every object ever seen."""

    def __init__(self) -> None:
        self._slots: dict[tuple[str, str, str], _Slot] = {}
        self._guard = threading.Lock()

    def __len__(self) -> int:
        with self._guard:
            return len(self._slots)

    def waiting(self, kind: str, namespace: str, name: str) -> bool:
        with self._guard:
            slot = self._slots.get((kind, namespace, name))
            return slot is not None and slot.waiting

    @contextmanager
    def exclusive(self, kind: str, namespace: str, name: str) -> Iterator[bool]:
        key = (kind, namespace, name)
        with self._guard:
            slot = self._slots.setdefault(key, _Slot())
            if slot.waiting:
                coalesced = True
            else:
                coalesced = False
                slot.waiting = True
                slot.users += 1
        if coalesced:
            yield False
            return
        try:
            with slot.lock:
                with self._guard:
                    slot.waiting = False
                yield True
        finally:
            with self._guard:
                slot.users -= 1
                if slot.users == 0:
                    del self._slots[key]
