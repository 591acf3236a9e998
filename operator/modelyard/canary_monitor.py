"""The canary monitor's shell: every ``spec.rollout.canary.analysis.interval`` while a canary
step is being judged, read the counters of the ModelDeployment's ready server pods of both
arms (their Prometheus ``/metrics``, through the API server's pod proxy: no Prometheus
needed), subtract what each pod had counted when the step began, judge the window
(``canary_analysis.evaluate``) and ask for a reconcile, which decides with that check.

Arms are told apart by pod (the canary Deployment's pods carry ``modelyard.io/arm=canary``),
not by a label the server sets, so a promoted model needs no restart to change arms. The
per-pod baselines live in memory: after an operator restart the step's window starts again
(``minRequests`` keeps it from judging too early)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client.exceptions import ApiException

from modelyard import naming, serving
from modelyard.api import CanaryAnalysis, CanaryAnalysisStatus, RolloutStatus
from modelyard.canary_analysis import Counts, evaluate, parse_server_metrics, total
from modelyard.conditions import now, parse_time
from modelyard.kube import Kube

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """The canary step being judged: a new canary model or a new step is a new window."""

    canary: str  # uri@sha256 of the canary model
    step: int
    started_at: str
    analysis: CanaryAnalysis

    @classmethod
    def of(cls, status: RolloutStatus | None, analysis: CanaryAnalysis) -> Step | None:
        if status is None or status.phase != "Progressing" or status.canary is None:
            return None
        if status.analysis_started_at is None:
            return None  # the step's canary pods are still starting: nothing to measure yet
        model = status.canary
        return cls(
            f"{model.uri}@{model.sha256 or ''}",
            status.step or 1,
            status.analysis_started_at,
            analysis,
        )

    def same_window(self, other: Step | None) -> bool:
        return other is not None and (self.canary, self.step, self.started_at) == (
            other.canary,
            other.step,
            other.started_at,
        )


@dataclass
class Window:
    """What one step has measured so far: each pod's counters when first seen in the step
    (``baselines``) and at the last check (``latest``, kept for a pod that has since gone)."""

    step: Step
    due: float
    baselines: dict[str, Counts] = field(default_factory=dict)
    latest: dict[str, tuple[bool, Counts]] = field(default_factory=dict)  # pod -> (canary?, …)
    check: CanaryAnalysisStatus | None = None


@dataclass
class CanarySchedule:
    """``(namespace, name) -> Window``; thread-safe (reconciles run in threads)."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _windows: dict[tuple[str, str], Window] = field(default_factory=dict)

    def set(self, namespace: str, name: str, step: Step | None) -> None:
        """What a reconcile decided: this step is being judged, or none (``None``). A new step
        is measured at once, from where the last check of the previous one left each pod."""
        key = (namespace, name)
        with self._lock:
            current = self._windows.get(key)
            if step is None:
                self._windows.pop(key, None)
            elif current is None or not step.same_window(current.step):
                carried = {}
                if current is not None and current.step.canary == step.canary:
                    carried = {pod: counts for pod, (_, counts) in current.latest.items()}
                self._windows[key] = Window(step, due=time.monotonic(), baselines=carried)
            else:
                current.step = step  # the analysis settings may have changed

    def check_for(
        self, namespace: str, name: str, step: Step | None
    ) -> CanaryAnalysisStatus | None:
        """The latest check of ``step``'s window, if any."""
        with self._lock:
            window = self._windows.get((namespace, name))
            if window is None or step is None or not step.same_window(window.step):
                return None
            return window.check

    def due(self, at: float) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(key for key, window in self._windows.items() if window.due <= at)

    def get(self, namespace: str, name: str) -> Window | None:
        with self._lock:
            return self._windows.get((namespace, name))


def _created_after(pod: dict[str, Any], started_at: str) -> bool:
    created = (pod.get("metadata") or {}).get("creationTimestamp")
    if not created or not started_at:
        return False
    return parse_time(str(created)) >= parse_time(started_at)


class CanaryMonitor:
    """Runs the due checks one at a time: a ``/metrics`` page per ready server pod."""

    def __init__(self, kube: Kube, schedule: CanarySchedule, reconcile: Callable[[str, str], None]):
        self.kube = kube
        self.schedule = schedule
        self.reconcile = reconcile

    def check(self, namespace: str, name: str) -> None:
        window = self.schedule.get(namespace, name)
        if window is None:
            return
        window.due = time.monotonic() + window.step.analysis.interval_seconds
        selector = ",".join(f"{k}={v}" for k, v in naming.server_selector(name).items())
        pods = self.kube.list("v1", "Pod", namespace, selector)
        ready = set(serving.ready_server_pods(pods))
        for pod in pods:
            pod_name = str(pod["metadata"]["name"])
            if pod_name not in ready:
                continue
            try:
                text = self.kube.pod_proxy_text(namespace, pod_name, serving.HTTP_PORT, "metrics")
            except (ApiException, OSError, ValueError) as error:
                log.info("metrics of pod %s/%s not read: %s", namespace, pod_name, error)
                continue
            counts = parse_server_metrics(text, name)
            if pod_name not in window.baselines:
                # A pod started during the step counted nothing before it.
                fresh = _created_after(pod, window.step.started_at)
                window.baselines[pod_name] = Counts() if fresh else counts
            window.latest[pod_name] = (naming.is_canary_pod(pod), counts)
        arms: dict[bool, list[Counts]] = {True: [], False: []}
        for pod_name, (canary, counts) in window.latest.items():
            arms[canary].append(counts - window.baselines.get(pod_name, Counts()))
        window.check = evaluate(
            total(arms[True]), total(arms[False]), window.step.analysis, at=now()
        )
        self.reconcile(namespace, name)
