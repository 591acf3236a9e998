"""Operator startup and shutdown: kopf settings, the API client, leader election, the periodic
resync. What the handlers share is kept in kopf's ``memo`` as a ``State``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIServer

import kopf

from modelyard import canary_monitor, drift_monitor, naming
from modelyard.kube import Kube, load_client
from modelyard.leader import LeaderElector
from modelyard.operator_metrics import OperatorMetrics
from modelyard.reconcile import Reconciler
from modelyard.settings import OperatorSettings

log = logging.getLogger(__name__)

LEASE_NAME = "modelyard-operator"
RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0)  # seconds between retries of a failed reconcile
# Which kind a retried reconcile is about (for the operator's metrics).
RETRIED_KINDS = {
    "training_job": "TrainingJob",
    "model_deployment": "ModelDeployment",
    "deployments_following": "ModelDeployment",
}
# The children the operator makes, watched (filtered by the API server on our label) so that
# one changed or deleted by hand is put back at once, not at the next resync.
WATCHED_CHILDREN = (
    ("", "pods"),
    ("", "services"),
    ("batch", "jobs"),
    ("apps", "deployments"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("policy", "poddisruptionbudgets"),
)


@dataclass
class State:
    settings: OperatorSettings
    reconciler: Reconciler
    elector: LeaderElector | None
    tasks: list[asyncio.Task[None]]
    metrics: OperatorMetrics = field(default_factory=OperatorMetrics)
    metrics_server: WSGIServer | None = None

    def leading(self) -> bool:
        return self.elector is None or self.elector.leading.is_set()

    def run(self, reconcile: Callable[[str, str], None], namespace: str, name: str) -> None:
        """``reconcile(namespace, name)``; one that fails on the cluster's side (a connection
        reset while the API server restarts, a 5xx, a timeout) is retried with backoff, not
        only logged and left to the next resync."""
        _run_with_retries(self, reconcile, namespace, name, 0)


def _run_with_retries(
    shared: State, reconcile: Callable[[str, str], None], namespace: str, name: str, attempt: int
) -> None:
    if not shared.leading():
        return
    try:
        reconcile(namespace, name)
    except Exception as error:
        if attempt >= len(RETRY_DELAYS):
            log.warning(
                "%s %s/%s still failing (%s); the resync retries it",
                reconcile.__name__,
                namespace,
                name,
                error,
            )
            return
        delay = RETRY_DELAYS[attempt]
        log.warning(
            "%s %s/%s failed (%s); retrying in %ss",
            reconcile.__name__,
            namespace,
            name,
            error,
            delay,
        )
        kind = RETRIED_KINDS.get(reconcile.__name__)
        if kind is not None:
            shared.metrics.retries.labels(kind).inc()

        def retry() -> None:
            if kind is not None:
                shared.metrics.retries.labels(kind).dec()
            _run_with_retries(shared, reconcile, namespace, name, attempt + 1)

        timer = threading.Timer(delay, retry)
        timer.daemon = True
        timer.start()


def state(memo: Any) -> State | None:
    """The operator's state, or ``None`` while this instance must not act (still starting,
    or a standby while another replica leads)."""
    found = getattr(memo, "modelyard", None)
    if not isinstance(found, State) or not found.leading():
        return None
    return found


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf settings that keep it quiet on our objects (see ``modelyard.handlers``)."""
    # kopf would otherwise turn handler log lines into Kubernetes Events; we post our own Events
    # for phase transitions only.
    settings.posting.enabled = False
    # Watches end and are re-established (with a fresh list) every ~40 s: one that hangs on a
    # half-open connection is dropped by the client within 45 s instead of silently starving
    # the operator of events (the fault suite's hanging-connection test).
    settings.watching.server_timeout = 40
    settings.watching.client_timeout = 45
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    ours = f"{naming.LABEL_MANAGED_BY}=modelyard"
    for group, plural in WATCHED_CHILDREN:
        settings.watching.label_selectors[group, plural] = ours
    settings.networking.error_backoffs = [1, 2, 5, 10, 30]


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    configure(settings)
    operator = OperatorSettings()
    kube = Kube(await asyncio.to_thread(load_client))
    elector = None
    if operator.leader_election:
        identity = f"{os.environ.get('HOSTNAME', 'modelyard')}-{uuid.uuid4().hex[:8]}"
        elector = LeaderElector(
            kube,
            operator.leader_election_namespace,
            LEASE_NAME,
            identity,
            lease_seconds=operator.leader_election_lease_seconds,
            renew_seconds=max(1.0, operator.leader_election_lease_seconds / 3),
        )
    metrics = OperatorMetrics()
    shared = State(operator, Reconciler(kube, operator, metrics), elector, [], metrics)
    if operator.metrics_port:
        shared.metrics_server = metrics.serve(operator.metrics_host, operator.metrics_port)
    memo.modelyard = shared

    def reconcile(namespace: str, name: str) -> None:
        shared.run(shared.reconciler.model_deployment, namespace, name)

    drift = drift_monitor.DriftMonitor(kube, shared.reconciler.drift_schedule, reconcile)
    canary = canary_monitor.CanaryMonitor(kube, shared.reconciler.canary_schedule, reconcile)
    shared.tasks.append(asyncio.create_task(resync_forever(shared)))
    for monitor in (drift, canary):
        shared.tasks.append(asyncio.create_task(drift_monitor.run_forever(monitor, shared.leading)))
    if elector is not None:
        shared.tasks.append(asyncio.create_task(elect_forever(shared, elector)))
    log.info("modelyard operator started", extra={"settings": operator.model_dump()})


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    shared = getattr(memo, "modelyard", None)
    if not isinstance(shared, State):
        return
    for task in shared.tasks:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if shared.elector is not None:
        await asyncio.to_thread(shared.elector.release)
    if shared.metrics_server is not None:
        shared.metrics_server.shutdown()


async def elect_forever(shared: State, elector: LeaderElector) -> None:
    """Renew or acquire the Lease; on becoming the leader, reconcile everything once (a
    standby ignored the watch events while it waited)."""
    while True:
        was_leading = elector.leading.is_set()
        leading = await asyncio.to_thread(elector.step)
        if leading and not was_leading:
            shared.tasks.append(asyncio.create_task(resync_once(shared)))
        elif was_leading and not leading:  # the new leader reports the objects' status now
            shared.metrics.objects.clear()
        await asyncio.sleep(elector.renew_seconds)


async def resync_once(shared: State) -> None:
    if not shared.leading():
        return
    try:
        await asyncio.to_thread(shared.reconciler.resync, shared.settings.namespaces)
    except Exception:
        log.exception("resync failed")


async def resync_forever(shared: State) -> None:
    """Every ``MODELYARD_RESYNC_INTERVAL_SECONDS``, reconcile every object once: catches what a
    missed watch event or a failed API call left behind."""
    while True:
        await asyncio.sleep(shared.settings.resync_interval_seconds)
        await resync_once(shared)
