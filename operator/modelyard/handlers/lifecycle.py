"""Operator startup and shutdown: kopf settings, the API client, the periodic resync."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf

from modelyard import naming
from modelyard.kube import Kube, load_client
from modelyard.reconcile import Reconciler
from modelyard.settings import OperatorSettings

log = logging.getLogger(__name__)

_state: dict[str, Any] = {}


def reconciler() -> Reconciler:
    found = _state.get("reconciler")
    if not isinstance(found, Reconciler):
        raise kopf.TemporaryError("the operator is still starting", delay=5)
    return found


def configure(settings: kopf.OperatorSettings) -> None:
    """kopf settings that keep it quiet on our objects (see ``modelyard.handlers``)."""
    # kopf would otherwise turn handler log lines into Kubernetes Events; we post our own Events
    # for phase transitions only.
    settings.posting.enabled = False
    settings.watching.server_timeout = 600
    # Watch only the children we made, filtered by the API server (not every pod in the cluster).
    ours = f"{naming.LABEL_MANAGED_BY}=modelyard"
    for group, plural in (("", "pods"), ("batch", "jobs"), ("apps", "deployments")):
        settings.watching.label_selectors[group, plural] = ours
    settings.networking.error_backoffs = [1, 2, 5, 10, 30]


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, **_: Any) -> None:
    configure(settings)
    operator = OperatorSettings()
    kube = Kube(await asyncio.to_thread(load_client))
    _state["reconciler"] = Reconciler(kube, operator)
    _state["resync"] = asyncio.create_task(resync_forever(operator))
    log.info("modelyard operator started", extra={"settings": operator.model_dump()})


@kopf.on.cleanup()
async def stop(**_: Any) -> None:
    task = _state.pop("resync", None)
    if isinstance(task, asyncio.Task):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def resync_forever(settings: OperatorSettings) -> None:
    """Every ``MODELYARD_RESYNC_INTERVAL_SECONDS``, reconcile every object once: catches what a
    missed watch event or a failed API call left behind."""
    while True:
        await asyncio.sleep(settings.resync_interval_seconds)
        try:
            await asyncio.to_thread(reconciler().resync, settings.namespaces)
        except Exception:
            log.exception("resync failed; trying again in %ss", settings.resync_interval_seconds)
