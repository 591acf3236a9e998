"""The drift monitor's shell: every ``spec.monitoring.drift.interval``, pool the recent-rows
windows of a ModelDeployment's ready server pods (through the API server's pod proxy), test
them against the model's training reference, and write ``status.drift`` when the verdict
changes (or at most every few minutes), with an Event on a transition.

It runs as a plain asyncio task (``run_forever``), not a kopf timer: timers add a finalizer and
annotations to the object. Which ModelDeployments to watch is learnt from their reconciles
(``Schedule.set``), so it never lists every ModelDeployment. Decisions are
``modelyard.monitoring``'s; the statistics are ``modelyard_runtime.drift``'s."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException
from modelyard_runtime import drift as statistics

from modelyard import monitoring, naming, serving
from modelyard.api import (
    API_GROUP_VERSION,
    MODEL_DEPLOYMENT_KIND,
    DriftMonitoring,
    DriftStatus,
    FeatureDrift,
    InvalidSpec,
    ModelDeployment,
    ModelStatus,
)
from modelyard.conditions import now
from modelyard.kube import Kube

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0  # how often the task looks for checks that are due


@dataclass
class Watched:
    """One monitored ModelDeployment: its spec, when its next check is due, the streaks and the
    last verdict (in memory), and the reference of the model it serves (fetched once)."""

    spec: DriftMonitoring
    due: float
    streaks: monitoring.Streaks | None = None
    verdict: DriftStatus | None = None
    reference: tuple[str, Any] | None = None  # (model uri@sha, statistics.Reference)


@dataclass
class Schedule:
    """``(namespace, name) -> Watched``; thread-safe (reconciles run in threads)."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _watched: dict[tuple[str, str], Watched] = field(default_factory=dict)

    def set(self, namespace: str, name: str, spec: DriftMonitoring | None) -> None:
        """What a reconcile learnt: monitoring on with ``spec``, or off (``None``)."""
        key = (namespace, name)
        with self._lock:
            if spec is None:
                self._watched.pop(key, None)
                return
            current = self._watched.get(key)
            if current is None:
                self._watched[key] = Watched(spec, due=time.monotonic() + spec.interval_seconds)
            elif current.spec != spec:
                current.spec = spec
                current.due = min(current.due, time.monotonic() + spec.interval_seconds)

    def due(self, at: float) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(key for key, watched in self._watched.items() if watched.due <= at)

    def get(self, namespace: str, name: str) -> Watched | None:
        with self._lock:
            return self._watched.get((namespace, name))

    def __len__(self) -> int:
        with self._lock:
            return len(self._watched)


def _feature(entry: dict[str, Any] | None) -> FeatureDrift | None:
    return None if entry is None else FeatureDrift.model_validate(entry)


def drift_tests(spec: DriftMonitoring) -> statistics.DriftTestSettings:
    return statistics.DriftTestSettings(
        alpha=spec.alpha,
        correction=spec.correction,
        min_effect=spec.min_effect,
        min_samples=spec.min_samples,
        prediction_drift=spec.prediction_drift,
    )


class DriftMonitor:
    """Runs the due checks one at a time (each pools a few small JSON windows and runs a
    handful of scipy tests: cheap, and bounded by the number of monitored objects)."""

    def __init__(self, kube: Kube, schedule: Schedule, reconcile: Callable[[str, str], None]):
        self.kube = kube
        self.schedule = schedule
        self.reconcile = reconcile  # refreshes the DataDrift condition after a verdict write

    def check(self, namespace: str, name: str) -> None:
        watched = self.schedule.get(namespace, name)
        if watched is None:
            return
        watched.due = time.monotonic() + watched.spec.interval_seconds
        body = self.kube.get(API_GROUP_VERSION, MODEL_DEPLOYMENT_KIND, namespace, name)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            self.schedule.set(namespace, name, None)
            return
        try:
            md = ModelDeployment.parse(body)
        except InvalidSpec:
            return  # the reconcile reports it
        spec, model = md.spec.drift, md.status.model
        if spec is None:
            self.schedule.set(namespace, name, None)
            return
        if model is None:
            return  # nothing served yet
        watched.spec = spec
        result = self._measure(md, model, watched)
        if watched.streaks is None:  # first check since the operator started
            watched.streaks = monitoring.Streaks.resumed(md.status.drift, spec)
            watched.verdict = md.status.drift
        verdict, watched.streaks = monitoring.next_verdict(
            watched.verdict, watched.streaks, result, spec, at=now()
        )
        before, watched.verdict = watched.verdict, verdict
        written = md.status.drift
        if not monitoring.worth_writing(written, verdict):
            return
        self.kube.patch_status(
            API_GROUP_VERSION,
            MODEL_DEPLOYMENT_KIND,
            namespace,
            name,
            {"drift": verdict.model_dump(by_alias=True, exclude_none=True, mode="json")},
        )
        event = monitoring.transition_event(before, verdict)
        if event is not None:
            self.kube.event(body, reason=event.reason, message=event.message, warning=event.warning)
        if written is None or written.state != verdict.state or written.message != verdict.message:
            self.reconcile(namespace, name)

    def _measure(
        self, md: ModelDeployment, model: ModelStatus, watched: Watched
    ) -> monitoring.CheckResult:
        """Pool the windows of the ready pods of ``model`` and test them."""
        meta = md.metadata
        selector = ",".join(f"{k}={v}" for k, v in naming.server_selector(meta.name).items())
        pods = serving.ready_server_pods(
            self.kube.list("v1", "Pod", meta.namespace, selector), model
        )
        path = f"v2/models/{meta.name}/drift"
        key = f"{model.uri}@{model.sha256 or ''}"
        windows, unreachable = [], []
        # The pods check their own windows with the same tests (their Prometheus gauges).
        settings = drift_tests(watched.spec)
        for pod in pods:
            want_reference = watched.reference is None or watched.reference[0] != key
            query = settings.to_query() | ({"reference": "true"} if want_reference else {})
            try:
                answer = self.kube.pod_proxy_get(
                    meta.namespace, pod, serving.HTTP_PORT, path, query
                )
                if want_reference:
                    watched.reference = (key, statistics.Reference.from_json(answer["reference"]))
                windows.append(statistics.Window.from_json(answer))
            except (ApiException, OSError, ValueError, KeyError) as error:
                log.info("drift window of pod %s/%s not read: %s", meta.namespace, pod, error)
                unreachable.append(pod)
        if not windows or watched.reference is None:
            why = "no ready server pod of this model" if not pods else "no pod answered"
            if unreachable:
                why += f" (not reachable: {', '.join(unreachable)})"
            return monitoring.CheckResult("InsufficientData", model.version, 0, 0, message=why)
        report = statistics.check(watched.reference[1], statistics.Window.pool(windows), settings)
        shown = report.to_status()
        return monitoring.CheckResult(
            state=report.state,
            model_version=model.version,
            samples=report.samples,
            pods=len(windows),
            features=tuple(FeatureDrift.model_validate(f) for f in shown.get("features", [])),
            prediction=_feature(shown.get("prediction")),
            message=None if report.state != "InsufficientData" else shown.get("message"),
        )


class Monitor(Protocol):
    """A periodic checker: this drift monitor, or the canary monitor."""

    @property
    def schedule(self) -> Due: ...

    def check(self, namespace: str, name: str) -> None: ...


class Due(Protocol):
    def due(self, at: float) -> list[tuple[str, str]]: ...


async def run_forever(monitor: Monitor, leading: Callable[[], bool]) -> None:
    """Every ``TICK_SECONDS``, run the checks that are due (only while this replica leads)."""
    while True:
        await asyncio.sleep(TICK_SECONDS)
        if not leading():
            continue
        for namespace, name in monitor.schedule.due(time.monotonic()):
            try:
                await asyncio.to_thread(monitor.check, namespace, name)
            except Exception:  # one failing check must not stop the others
                log.exception("%s of %s/%s failed", type(monitor).__name__, namespace, name)
