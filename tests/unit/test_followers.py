"""Which ModelDeployments a TrainingJob change reconciles."""

from __future__ import annotations

import threading

from modelyard.followers import Followers


def test_followers_by_namespace_and_training_job() -> None:
    followers = Followers()
    followers.set("ml", "a", "iris")
    followers.set("ml", "b", "iris")
    followers.set("ml", "c", "wine")
    followers.set("other", "a", "iris")
    assert followers.of("ml", "iris") == ["a", "b"]
    assert followers.of("other", "iris") == ["a"]
    assert followers.of("ml", "absent") == []


def test_a_source_change_or_deletion_moves_the_follower() -> None:
    followers = Followers()
    followers.set("ml", "a", "iris")
    followers.set("ml", "a", "wine")  # the spec now follows another TrainingJob
    assert (followers.of("ml", "iris"), followers.of("ml", "wine")) == ([], ["a"])
    followers.set("ml", "a", None)  # a storageUri now, or the ModelDeployment is gone
    assert followers.of("ml", "wine") == []


def test_concurrent_updates_lose_nothing() -> None:
    followers = Followers()

    def add(start: int) -> None:
        for i in range(start, start + 500):
            followers.set("ml", f"md{i}", "iris")

    threads = [threading.Thread(target=add, args=(k * 500,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(followers.of("ml", "iris")) == 2000
