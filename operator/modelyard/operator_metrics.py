"""The operator's own Prometheus metrics, on ``MODELYARD_METRICS_ADDRESS`` (``/metrics``).

Per kind: reconciles by result (``ok``, ``error``: raised, retried with backoff; ``coalesced``:
another trigger for the same object was already waiting, which will see this change),
their duration, the reconciles running or waiting behind their object's lock (the queue
depth), and the failed reconciles waiting for their retry; and the custom resources' status
(``status_metrics``), which the alerts and the dashboard read. One registry per operator (kept in
the handlers' shared state), not the process-global default registry.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from modelyard.status_metrics import StatusMetrics

KINDS = ("TrainingJob", "ModelDeployment")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class Outcome:
    result: str = "ok"


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reconciles = Counter(
            "modelyard_operator_reconciles",
            "Reconciles by kind and result (ok, error, coalesced)",
            ["kind", "result"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "modelyard_operator_reconcile_duration_seconds",
            "Time one reconcile took, by kind",
            ["kind"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.queue = Gauge(
            "modelyard_operator_reconciles_queued",
            "Reconciles running or waiting behind their object's lock, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.retries = Gauge(
            "modelyard_operator_retries_pending",
            "Failed reconciles waiting for their retry, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.objects = StatusMetrics()
        self.registry.register(self.objects)
        for kind in KINDS:  # every series exists from the start (rate() needs a zero)
            for result in ("ok", "error", "coalesced"):
                self.reconciles.labels(kind, result)
            self.duration.labels(kind)
            self.queue.labels(kind)
            self.retries.labels(kind)

    @contextmanager
    def reconcile(self, kind: str) -> Iterator[Outcome]:
        """Count and time one reconcile of ``kind`` (waiting for its object's lock included);
        an exception counts as ``error``, a caller may say ``coalesced``."""
        started, outcome = time.monotonic(), Outcome()
        self.queue.labels(kind).inc()
        try:
            yield outcome
        except BaseException:
            outcome.result = "error"
            raise
        finally:
            self.queue.labels(kind).dec()
            self.reconciles.labels(kind, outcome.result).inc()
            if outcome.result != "coalesced":
                self.duration.labels(kind).observe(time.monotonic() - started)

    def serve(self, host: str, port: int) -> WSGIServer:
        server, _ = start_http_server(port, addr=host, registry=self.registry)
        return server
