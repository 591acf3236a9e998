"""Leader election on a Lease: one leader, standbys wait the lease out, a dead leader's lease
is taken over, concurrent writers cannot both win (resourceVersion), a clean stop hands over."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from modelyard import leader
from modelyard.leader import LeaderElector


class Conflict(Exception):
    """What the API server answers a write based on a stale resourceVersion."""


class LeaseMemory:
    """One Lease with optimistic concurrency, like the API server's."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.lease)

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        if self.lease is not None:
            raise Conflict(409)
        return self._store(manifest)

    def replace(self, manifest: dict[str, Any]) -> dict[str, Any]:
        assert self.lease is not None
        if manifest["metadata"].get("resourceVersion") != self.lease["metadata"]["resourceVersion"]:
            raise Conflict(409)
        return self._store(manifest)

    def _store(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.lease = copy.deepcopy(manifest)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(leader.time, "monotonic", fake)
    return fake


def elector(store: LeaseMemory, identity: str) -> LeaderElector:
    return LeaderElector(
        store, "modelyard-system", "modelyard-operator", identity, lease_seconds=15
    )


def test_one_leader_and_a_standby_until_the_lease_runs_out(clock: Clock) -> None:
    store = LeaseMemory()
    a, b = elector(store, "a"), elector(store, "b")
    assert a.step() is True
    assert b.step() is False
    clock.now += 5
    assert a.step() is True  # renews
    assert b.step() is False  # sees a renewed record: its own wait starts again
    # a dies (no more renewals): b takes over once the record has not moved for 15 s
    clock.now += 14
    assert b.step() is False
    clock.now += 2
    assert b.step() is True
    assert store.lease is not None
    assert store.lease["spec"]["holderIdentity"] == "b"
    assert store.lease["spec"]["leaseTransitions"] == 1


def test_a_leader_that_cannot_renew_steps_down_before_the_lease_ends(clock: Clock) -> None:
    store = LeaseMemory()
    a = elector(store, "a")
    assert a.step()

    def unreachable(*_: Any) -> None:
        raise OSError("connection refused")

    store.get = unreachable  # type: ignore[assignment,method-assign]
    clock.now += 5
    assert a.step() is True  # one missed renewal is fine
    clock.now += 6
    assert a.step() is False  # 11 s >= 2/3 of 15 s: stop acting before anyone may take over


def test_concurrent_candidates_cannot_both_win(clock: Clock) -> None:
    store = LeaseMemory()
    a, b = elector(store, "a"), elector(store, "b")
    assert a.step()
    clock.now += 16
    b.step()  # b observes the record now...
    clock.now += 16
    stale = store.get("", "", "", "")
    assert b.step() is True  # ...and takes it over
    assert stale is not None
    # a write based on the stale record is refused by resourceVersion
    with pytest.raises(Conflict):
        store.replace(stale)
    assert store.lease is not None and store.lease["spec"]["holderIdentity"] == "b"


def test_release_hands_over_at_once(clock: Clock) -> None:
    store = LeaseMemory()
    a, b = elector(store, "a"), elector(store, "b")
    assert a.step()
    assert b.step() is False
    a.release()
    assert not a.leading.is_set()
    clock.now += 1  # leaseDurationSeconds is now 1
    assert b.step() is True
