"""Which ModelDeployments follow which TrainingJob, learnt from the ModelDeployments the operator
reconciles: a TrainingJob change then reconciles its followers only, not every ModelDeployment
in its namespace."""

from __future__ import annotations

import threading


class Followers:
    """``(namespace, trainingjob) -> {modeldeployment}``; thread-safe (kopf runs sync handlers
    in threads). A ModelDeployment not reconciled yet is unknown here, which costs nothing: its
    own first reconcile reads the TrainingJob anyway."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._follows: dict[tuple[str, str], str] = {}  # (namespace, md) -> trainingjob

    def set(self, namespace: str, model_deployment: str, training_job: str | None) -> None:
        """Record what ``model_deployment`` follows now (``None``: nothing, or it is gone)."""
        with self._lock:
            if training_job is None:
                self._follows.pop((namespace, model_deployment), None)
            else:
                self._follows[namespace, model_deployment] = training_job

    def of(self, namespace: str, training_job: str) -> list[str]:
        with self._lock:
            return sorted(
                md
                for (ns, md), tj in self._follows.items()
                if ns == namespace and tj == training_job
            )
