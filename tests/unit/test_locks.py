"""One reconcile per object at a time; bursts coalesce; the slot table stays bounded."""

from __future__ import annotations

import threading

from modelyard.locks import ObjectLocks

KEY = ("ModelDeployment", "ml", "iris")


def test_a_burst_of_triggers_coalesces_behind_the_running_reconcile() -> None:
    locks = ObjectLocks()
    running, release = threading.Event(), threading.Event()
    outcomes: list[bool] = []

    def first() -> None:
        with locks.exclusive(*KEY) as go:
            outcomes.append(go)
            running.set()
            release.wait(5)

    def later() -> None:
        with locks.exclusive(*KEY) as go:
            outcomes.append(go)

    a = threading.Thread(target=first)
    a.start()
    assert running.wait(5)
    b = threading.Thread(target=later)  # waits behind the running one: it will read fresh state
    b.start()
    for _ in range(500):  # until b is queued
        if locks.waiting(*KEY):
            break
        threading.Event().wait(0.01)
    assert locks.waiting(*KEY)
    later()  # a third trigger now adds nothing: b has not read the object yet
    assert outcomes == [True, False]
    release.set()
    a.join(5)
    b.join(5)
    assert outcomes == [True, False, True]
    later()  # idle again: runs
    assert outcomes[-1] is True


def test_slots_exist_only_while_in_use() -> None:
    locks = ObjectLocks()
    for i in range(1000):
        with locks.exclusive("TrainingJob", "ml", f"tj-{i}") as go:
            assert go
            assert len(locks) == 1
    assert len(locks) == 0


def test_an_exception_frees_the_slot() -> None:
    locks = ObjectLocks()
    try:
        with locks.exclusive(*KEY):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert len(locks) == 0
    with locks.exclusive(*KEY) as go:
        assert go
