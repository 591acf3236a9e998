"""The canary monitor's shell: which window a check belongs to, and what each step counts (the
counters since the step began, per pod, from real servers' /metrics pages)."""

from __future__ import annotations

import time
from typing import Any

from modelyard import naming
from modelyard.api import CanaryAnalysis, ModelStatus, RolloutStatus
from modelyard.canary_monitor import CanaryMonitor, CanarySchedule, Step
from modelyard_runtime.serve.metrics import ServerMetrics

CANARY = ModelStatus(uri="pvc://models/iris/v2", version="v2", sha256="2" * 64)
ANALYSIS = CanaryAnalysis(min_requests=10, interval="2s")
STARTED = "2026-12-03T10:00:00Z"


def progressing(step: int = 1, started: str = STARTED) -> RolloutStatus:
    return RolloutStatus(
        phase="Progressing",
        canary=CANARY,
        step=step,
        steps=2,
        step_started_at=started,
        analysis_started_at=started,
    )


class Server:
    """One pod's real metrics registry."""

    def __init__(self, name: str, *, canary: bool, created: str) -> None:
        self.name, self.canary, self.created = name, canary, created
        self.metrics = ServerMetrics()
        self.bound = self.metrics.bind("iris", "v2" if canary else "v1", ["a", "b"])

    def answer(self, n: int, *, errors: int = 0) -> None:
        self.bound.outcome["ok"].inc(n)
        self.bound.outcome["error"].inc(errors)
        for _ in range(n):
            self.bound.latency.observe(0.002)

    def pod(self) -> dict[str, Any]:
        labels = {naming.LABEL_ARM: naming.ARM_CANARY} if self.canary else {}
        return {
            "metadata": {"name": self.name, "labels": labels, "creationTimestamp": self.created},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }


class FakeKube:
    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers

    def list(self, *_: Any) -> list[dict[str, Any]]:
        return [server.pod() for server in self.servers]

    def pod_proxy_text(self, namespace: str, pod: str, port: int, path: str) -> str:
        server = next(s for s in self.servers if s.name == pod)
        return server.metrics.generate().decode()


def test_a_check_belongs_to_one_window() -> None:
    schedule = CanarySchedule()
    step = Step.of(progressing(), ANALYSIS)
    assert step is not None
    schedule.set("ns", "iris", step)
    assert schedule.due(time.monotonic()) == [("ns", "iris")]  # a new step is measured at once
    window = schedule.get("ns", "iris")
    assert window is not None
    window.check = object()  # type: ignore[assignment]
    assert schedule.check_for("ns", "iris", step) is window.check
    assert schedule.check_for("ns", "iris", Step.of(progressing(step=2), ANALYSIS)) is None
    assert Step.of(RolloutStatus(phase="Paused", canary=CANARY), ANALYSIS) is None
    starting = progressing().model_copy(update={"analysis_started_at": None})
    assert Step.of(starting, ANALYSIS) is None, "canary pods still starting: nothing measured"
    schedule.set("ns", "iris", None)
    assert schedule.get("ns", "iris") is None


def test_a_step_counts_only_what_happened_since_it_began() -> None:
    stable = Server("iris-1", canary=False, created="2026-12-03T09:00:00Z")
    canary = Server("iris-canary-1", canary=True, created="2026-12-03T10:00:05Z")
    stable.answer(500)  # before the step: not this step's traffic
    kube = FakeKube([stable, canary])
    schedule, reconciled = CanarySchedule(), []
    monitor = CanaryMonitor(kube, schedule, lambda ns, name: reconciled.append(name))  # type: ignore[arg-type]
    schedule.set("ns", "iris", Step.of(progressing(), ANALYSIS))

    canary.answer(20)  # served before the first check: counted, the pod started in the step
    monitor.check("ns", "iris")
    stable.answer(30)
    canary.answer(10, errors=1)
    monitor.check("ns", "iris")

    window = schedule.get("ns", "iris")
    assert window is not None and window.check is not None and reconciled == ["iris", "iris"]
    assert (window.check.requests, window.check.stable_requests) == (31, 30)
    assert window.check.verdict == "Fail"  # 1 of 31 is a 5xx: above the 1% bound

    # A pod that has gone keeps what it counted; the next step starts from each pod's last count.
    kube.servers = [canary]
    monitor.check("ns", "iris")
    assert window.check is not None and window.check.stable_requests == 30
    schedule.set(
        "ns", "iris", Step.of(progressing(step=2, started="2026-12-03T10:05:00Z"), ANALYSIS)
    )
    canary.answer(5)
    monitor.check("ns", "iris")
    next_window = schedule.get("ns", "iris")
    assert next_window is not None and next_window.check is not None
    assert (next_window.check.requests, next_window.check.stable_requests) == (5, 0)
    assert next_window.check.verdict == "Inconclusive"
